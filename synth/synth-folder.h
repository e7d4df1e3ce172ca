/* synth-folder.h — the output folder of `agriclip synth`: made or reused,
 * never someone else's, marked as ours. */
#pragma once

#include "synth.h"

/* An empty or new folder, or the output of an earlier run, whose parts are
 * removed so that no image of a larger run lingers.  Refuses any other
 * non-empty folder. */
gboolean synth_folder_prepare (const char *dir, GError **error);

/* Makes path and its parents. */
gboolean synth_folder_make (const char *path, GError **error);

/* The marker file in options->out: the options, and whether the run
 * finished (an interrupted run leaves complete = false). */
gboolean synth_folder_mark (const SynthOptions *options, gboolean complete, GError **error);
