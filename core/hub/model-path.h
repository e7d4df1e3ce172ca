/* model-path.h — where model folders live, so that `--model NAME` can name
 * a model pulled with `agriclip models pull NAME` instead of giving a path.
 *
 * Pulled models go to $XDG_DATA_HOME/agriclip/models/NAME (by default
 * ~/.local/share/agriclip/models/NAME).  The catalogue is not read here:
 * any folder placed there by hand resolves the same way. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* The folder of pulled models: $XDG_DATA_HOME/agriclip/models (g_free). */
char *agc_models_dir (void);

/* What `--model` means: an existing file or folder wins; otherwise a bare
 * name (no directory separator) that is a folder in agc_models_dir(); else
 * name_or_path unchanged, so that loading it reports what the user typed.
 * Never NULL (g_free). */
char *agc_model_resolve_path (const char *name_or_path);

/* The same for an option value: replaces *name_or_path (g_malloc'ed; NULL
 * is left alone) by its resolution, freeing the old string. */
void agc_model_resolve_path_in_place (char **name_or_path);

G_END_DECLS
