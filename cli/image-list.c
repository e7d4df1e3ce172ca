/* image-list.c — expanding folders into the images they hold. */
#include "image-list.h"

#include <gdk-pixbuf/gdk-pixbuf.h>
#include <string.h>

#include "agriclip.h"

/* Lower-case extensions that some gdk-pixbuf loader handles. */
static GHashTable *
image_extensions (void)
{
  GHashTable *set = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  GSList *formats = gdk_pixbuf_get_formats ();
  for (GSList *f = formats; f; f = f->next)
    {
      char **extensions = gdk_pixbuf_format_get_extensions (f->data);
      for (char **e = extensions; *e; e++)
        g_hash_table_add (set, g_ascii_strdown (*e, -1));
      g_strfreev (extensions);
    }
  g_slist_free (formats);
  return set;
}

static gboolean
has_image_extension (GHashTable *extensions, const char *name)
{
  const char *dot = strrchr (name, '.');
  if (!dot)
    return FALSE;
  g_autofree char *lower = g_ascii_strdown (dot + 1, -1);
  return g_hash_table_contains (extensions, lower);
}

static int
compare_names (gconstpointer a, gconstpointer b)
{
  return strcmp (*(char *const *) a, *(char *const *) b);
}

static int
collect_folder (const char *folder, gboolean recursive, GHashTable *extensions, GPtrArray *files,
                void (*report) (const GError *error))
{
  GError *error = NULL;
  GDir *dir = g_dir_open (folder, 0, &error);
  if (!dir)
    {
      g_autofree char *shown = g_filename_display_name (folder);
      GError *named = g_error_new (AGC_ERROR, AGC_ERROR_IO, "%s: cannot read folder: %s", shown,
                                   error->message);
      report (named);
      g_error_free (named);
      g_error_free (error);
      return 1;
    }
  g_autoptr (GPtrArray) names = g_ptr_array_new_with_free_func (g_free);
  for (const char *name; (name = g_dir_read_name (dir));)
    if (name[0] != '.')
      g_ptr_array_add (names, g_strdup (name));
  g_dir_close (dir);
  g_ptr_array_sort (names, compare_names);

  int problems = 0;
  for (guint i = 0; i < names->len; i++)
    {
      char *path = g_build_filename (folder, names->pdata[i], NULL);
      if (g_file_test (path, G_FILE_TEST_IS_DIR))
        {
          if (recursive)
            problems += collect_folder (path, recursive, extensions, files, report);
          g_free (path);
        }
      else if (has_image_extension (extensions, names->pdata[i]))
        g_ptr_array_add (files, path);
      else
        g_free (path);
    }
  return problems;
}

int
cli_collect_images (char **paths, int n_paths, gboolean recursive, GPtrArray *files,
                    void (*report) (const GError *error))
{
  g_autoptr (GHashTable) extensions = image_extensions ();
  int problems = 0;
  for (int i = 0; i < n_paths; i++)
    {
      if (g_file_test (paths[i], G_FILE_TEST_IS_DIR))
        problems += collect_folder (paths[i], recursive, extensions, files, report);
      else
        g_ptr_array_add (files, g_strdup (paths[i])); /* named files are always tried */
    }
  return problems;
}
