/* labelset-search.c — finding installed label sets by id, so users and
 * scripts can say "plantvillage" instead of a path. */
#include "agriclip.h"
#include "support/data-dirs.h"

#include <string.h>

/* The folders searched, most specific first: $AGRICLIP_LABELS_PATH, then
 * labels/ in each data folder. */
static GPtrArray *
search_folders (void)
{
  GPtrArray *folders = g_ptr_array_new_with_free_func (g_free);
  const char *env = g_getenv ("AGRICLIP_LABELS_PATH");
  if (env)
    {
      g_auto (GStrv) parts = g_strsplit (env, G_SEARCHPATH_SEPARATOR_S, -1);
      for (char **p = parts; *p; p++)
        if (**p)
          g_ptr_array_add (folders, g_strdup (*p));
    }
  g_autoptr (GPtrArray) data_dirs = agc_data_dirs ();
  for (guint i = 0; i < data_dirs->len; i++)
    g_ptr_array_add (folders, g_build_filename (data_dirs->pdata[i], "labels", NULL));
  return folders;
}

/* An id is a bare name: no folder, no extension. */
static gboolean
looks_like_id (const char *s)
{
  return *s && strchr (s, G_DIR_SEPARATOR) == NULL && !g_str_has_suffix (s, ".json");
}

char *
agc_label_set_find (const char *file_or_id, GError **error)
{
  g_return_val_if_fail (file_or_id != NULL, NULL);
  if (!looks_like_id (file_or_id) || g_file_test (file_or_id, G_FILE_TEST_EXISTS))
    return g_strdup (file_or_id);

  g_autoptr (GPtrArray) folders = search_folders ();
  g_autofree char *file_name = g_strconcat (file_or_id, ".json", NULL);
  for (guint i = 0; i < folders->len; i++)
    {
      char *path = g_build_filename (folders->pdata[i], file_name, NULL);
      if (g_file_test (path, G_FILE_TEST_IS_REGULAR))
        return path;
      g_free (path);
    }
  g_auto (GStrv) known = agc_label_set_list_installed ();
  g_autofree char *known_list = g_strjoinv (", ", known);
  g_set_error (error, AGC_ERROR, AGC_ERROR_IO,
               "%s: no such label-set file, nor an installed label set of that id "
               "(installed: %s)", file_or_id, *known_list ? known_list : "none");
  return NULL;
}

AgcLabelSet *
agc_label_set_open (const char *file_or_id, GError **error)
{
  g_return_val_if_fail (file_or_id != NULL, NULL);
  g_autofree char *path = agc_label_set_find (file_or_id, error);
  return path ? agc_label_set_load (path, error) : NULL;
}

static int
compare_ids (gconstpointer a, gconstpointer b)
{
  return strcmp (*(char *const *) a, *(char *const *) b);
}

char **
agc_label_set_list_installed (void)
{
  g_autoptr (GPtrArray) folders = search_folders ();
  g_autoptr (GHashTable) seen = g_hash_table_new (g_str_hash, g_str_equal);
  GPtrArray *ids = g_ptr_array_new ();
  for (guint i = 0; i < folders->len; i++)
    {
      GDir *dir = g_dir_open (folders->pdata[i], 0, NULL);
      if (!dir)
        continue;
      for (const char *name; (name = g_dir_read_name (dir));)
        if (g_str_has_suffix (name, ".json") && name[0] != '.')
          {
            char *id = g_strndup (name, strlen (name) - strlen (".json"));
            if (g_hash_table_add (seen, id))
              g_ptr_array_add (ids, id);
            else
              g_free (id);
          }
      g_dir_close (dir);
    }
  g_ptr_array_sort (ids, compare_ids);
  g_ptr_array_add (ids, NULL);
  return (char **) g_ptr_array_free (ids, FALSE);
}

/* Installed sets' display names are in the message catalogue (context
 * "label-set class", extracted by tools/label-names-pot.py); a set the user
 * wrote keeps its own words. */
const char *
agc_label_set_class_translated_name (const AgcLabelSet *set, int class_index)
{
  const char *display = agc_label_set_class_display_name (set, class_index);
  g_return_val_if_fail (display != NULL, NULL);
  g_auto (GStrv) installed = agc_label_set_list_installed ();
  if (!g_strv_contains ((const char *const *) installed, agc_label_set_id (set)))
    return display;
  return g_dpgettext2 (GETTEXT_PACKAGE, "label-set class", display);
}
