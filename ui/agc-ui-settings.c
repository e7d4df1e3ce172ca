/* agc-ui-settings.c — the windows' memory, see agc-ui-settings.h. */
#include "agc-ui-settings.h"

#include <glib/gstdio.h>

#define RECENT_GROUP "model-chooser"
#define RECENT_KEY "recent-folders"

char *
agc_ui_settings_path (void)
{
  return g_build_filename (g_get_user_config_dir (), "agriclip", "ui.ini", NULL);
}

/* The file as it is now; empty when missing or unreadable (settings are a
 * convenience: a broken file is replaced, not reported). */
static GKeyFile *
settings_load (void)
{
  GKeyFile *settings = g_key_file_new ();
  g_autofree char *path = agc_ui_settings_path ();
  g_key_file_load_from_file (settings, path, G_KEY_FILE_KEEP_COMMENTS, NULL);
  return settings;
}

static void
settings_save (GKeyFile *settings)
{
  g_autofree char *path = agc_ui_settings_path ();
  g_autofree char *dir = g_path_get_dirname (path);
  g_mkdir_with_parents (dir, 0700);
  // g_file_set_contents underneath: a temp file renamed over the old one.
  if (!g_key_file_save_to_file (settings, path, NULL))
    g_debug ("cannot save %s", path);
}

static void
save_size (GtkWidget *widget, gpointer key)
{
  int width = 0, height = 0;
  gtk_window_get_size (GTK_WINDOW (widget), &width, &height);
  if (width <= 0 || height <= 0)
    return;
  g_autoptr (GKeyFile) settings = settings_load ();
  g_key_file_set_integer (settings, key, "width", width);
  g_key_file_set_integer (settings, key, "height", height);
  settings_save (settings);
}

void
agc_ui_remember_window_size (GtkWindow *window, const char *key)
{
  g_return_if_fail (GTK_IS_WINDOW (window) && key != NULL);
  g_autoptr (GKeyFile) settings = settings_load ();
  // gtk_window_get_size and set_default_size both count logical pixels:
  // the size stays right at any GDK_SCALE.
  int width = g_key_file_get_integer (settings, key, "width", NULL);
  int height = g_key_file_get_integer (settings, key, "height", NULL);
  if (width > 0 && height > 0)
    gtk_window_set_default_size (window, width, height);
  g_signal_connect_data (window, "hide", G_CALLBACK (save_size), g_strdup (key),
                         (GClosureNotify) (void (*) (void)) g_free, 0);
}

char **
agc_ui_recent_model_folders (void)
{
  g_autoptr (GKeyFile) settings = settings_load ();
  char **folders = g_key_file_get_string_list (settings, RECENT_GROUP, RECENT_KEY, NULL, NULL);
  return folders ? folders : g_new0 (char *, 1);
}

/* Puts item first in the list group/key, without duplicates. */
static void
add_recent (const char *group, const char *key, const char *item)
{
  g_autoptr (GKeyFile) settings = settings_load ();
  g_auto (GStrv) old = g_key_file_get_string_list (settings, group, key, NULL, NULL);
  g_autoptr (GPtrArray) folders = g_ptr_array_new ();
  g_ptr_array_add (folders, (gpointer) item);
  for (int i = 0; old && old[i] && folders->len < AGC_UI_MAX_RECENT_FOLDERS; i++)
    if (!g_str_equal (old[i], item))
      g_ptr_array_add (folders, old[i]);
  g_key_file_set_string_list (settings, group, key, (const char *const *) folders->pdata,
                              folders->len);
  settings_save (settings);
}

void
agc_ui_add_recent_model_folder (const char *folder)
{
  g_return_if_fail (folder != NULL);
  add_recent (RECENT_GROUP, RECENT_KEY, folder);
}

char *
agc_ui_adapters_dir (void)
{
  return g_build_filename (g_get_user_data_dir (), "agriclip", "adapters", NULL);
}

char **
agc_ui_recent_adapters (void)
{
  g_autoptr (GKeyFile) settings = settings_load ();
  g_auto (GStrv) all = g_key_file_get_string_list (settings, "training-window",
                                                   "recent-adapters", NULL, NULL);
  g_autoptr (GPtrArray) kept = g_ptr_array_new ();
  for (int i = 0; all && all[i]; i++)
    if (g_file_test (all[i], G_FILE_TEST_IS_REGULAR))
      g_ptr_array_add (kept, g_strdup (all[i]));
  g_ptr_array_add (kept, NULL);
  return (char **) g_ptr_array_steal (kept, NULL);
}

void
agc_ui_add_recent_adapter (const char *adapter)
{
  g_return_if_fail (adapter != NULL);
  add_recent ("training-window", "recent-adapters", adapter);
}
