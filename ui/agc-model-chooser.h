/* agc-model-chooser.h — picking the model: the models agriclip knows
 * (the catalogue's, by name, with family, size on disk and licence; folders
 * in agc_models_dir(); folders used recently), "Browse folder…", and
 * "Download…", which pulls the selected catalogue model into
 * agc_models_dir() with a progress bar and Cancel inside the widget.
 *
 * Every folder listed is opened once on a worker thread (agc_model_load):
 * one that cannot be opened stays in the list with the loader's reason.
 * Downloads run on a worker thread too (agc_model_pull), reporting through
 * g_idle_add: the window never freezes. */
#pragma once

#include <gtk/gtk.h>

#include "agriclip.h"

G_BEGIN_DECLS

#define AGC_TYPE_MODEL_CHOOSER (agc_model_chooser_get_type ())
G_DECLARE_FINAL_TYPE (AgcModelChooser, agc_model_chooser, AGC, MODEL_CHOOSER, GtkBox)

GtkWidget *agc_model_chooser_new (void);

/* The selected model's folder, NULL when none is selected or the selected
 * catalogue model is not downloaded (g_free). */
char *agc_model_chooser_get_path (AgcModelChooser *self);
/* Selects the row of folder path (a catalogue name is found too), adding
 * it as a recently used folder when it is not listed.  FALSE when path is
 * neither an existing folder nor a listed name. */
gboolean agc_model_chooser_select (AgcModelChooser *self, const char *path);

/* What the list says about the row of path or catalogue name: its status
 * ("Ready", "Not downloaded", "Checking…" or why it cannot be opened),
 * NULL when there is no such row (g_free). */
char *agc_model_chooser_get_status (AgcModelChooser *self, const char *path_or_name);

/* Pulls the catalogue model name (as "Download…" does for the selected
 * one); "download-finished" follows with NULL or what went wrong. */
void agc_model_chooser_download (AgcModelChooser *self, const char *name);
/* Stops a running download (as its Cancel button does). */
void agc_model_chooser_cancel_download (AgcModelChooser *self);
/* The download's progress, 0..1, and whether one runs. */
double agc_model_chooser_get_download_fraction (AgcModelChooser *self);
gboolean agc_model_chooser_is_downloading (AgcModelChooser *self);
/* TRUE once every listed folder has been opened (or failed to). */
gboolean agc_model_chooser_is_checked (AgcModelChooser *self);

G_END_DECLS
