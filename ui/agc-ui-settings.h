/* agc-ui-settings.h — what the windows remember between runs: their sizes
 * and the model folders used recently, in one GKeyFile,
 * $XDG_CONFIG_HOME/agriclip/ui.ini, rewritten atomically (temp + rename,
 * g_key_file_save_to_file) on every change. */
#pragma once

#include <gtk/gtk.h>

G_BEGIN_DECLS

/* The settings file (g_free). */
char *agc_ui_settings_path (void);

/* Gives window the size it had when last hidden under key (the group name,
 * e.g. "results-window"), and saves its size whenever it is hidden. */
void agc_ui_remember_window_size (GtkWindow *window, const char *key);

/* Model folders used recently, most recent first, at most
 * AGC_UI_MAX_RECENT_FOLDERS (g_strfreev; never NULL). */
#define AGC_UI_MAX_RECENT_FOLDERS 8
char **agc_ui_recent_model_folders (void);
/* Puts folder first in that list. */
void agc_ui_add_recent_model_folder (const char *folder);

/* Where the training window writes adapters by default:
 * $XDG_DATA_HOME/agriclip/adapters (g_free). */
char *agc_ui_adapters_dir (void);
/* Adapters trained recently, most recent first, at most
 * AGC_UI_MAX_RECENT_FOLDERS, those still on disk (g_strfreev; never NULL). */
char **agc_ui_recent_adapters (void);
/* Puts adapter first in that list. */
void agc_ui_add_recent_adapter (const char *adapter);

G_END_DECLS
