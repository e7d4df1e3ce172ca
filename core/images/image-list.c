/* image-list.c — expanding folders into the images they hold
 * (agc_image_collect). */
#include "agriclip.h"
#include "support/folder.h"

#include <gdk-pixbuf/gdk-pixbuf.h>
#include <glib/gstdio.h>
#include <stdint.h>
#include <string.h>

typedef struct
{
  GHashTable *extensions;
  AgcReportFunc report;
  gpointer user_data;
  GHashTable *visited; /* "device:inode" of each folder listed: links to a folder
                        * already listed (self -> ., sub/up -> ..) are not followed again */
} Collect;

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
collect_folder (const char *folder, gboolean recursive, const Collect *c, GPtrArray *files)
{
  GStatBuf st;
  if (g_stat (folder, &st) == 0)
    {
      char *key = g_strdup_printf ("%ju:%ju", (uintmax_t) st.st_dev, (uintmax_t) st.st_ino);
      if (!g_hash_table_add (c->visited, key))
        return 0;
    }
  GError *error = NULL;
  g_autoptr (GPtrArray) names = agc_list_folder (folder, &error);
  if (names == NULL)
    {
      g_autofree char *shown = g_filename_display_name (folder);
      GError *named = g_error_new (AGC_ERROR, AGC_ERROR_IO, "%s: cannot read folder: %s", shown,
                                   error->message);
      if (c->report != NULL)
        c->report (named, c->user_data);
      g_error_free (named);
      g_error_free (error);
      return 1;
    }

  int problems = 0;
  for (guint i = 0; i < names->len; i++)
    {
      char *path = g_build_filename (folder, names->pdata[i], NULL);
      if (g_file_test (path, G_FILE_TEST_IS_DIR))
        {
          if (recursive)
            problems += collect_folder (path, recursive, c, files);
          g_free (path);
        }
      else if (has_image_extension (c->extensions, names->pdata[i]))
        g_ptr_array_add (files, path);
      else
        g_free (path);
    }
  return problems;
}

int
agc_image_collect (const char *const *paths, int n_paths, gboolean recursive, GPtrArray *files,
                   AgcReportFunc report, gpointer user_data)
{
  g_return_val_if_fail (n_paths == 0 || (paths != NULL && files != NULL), 0);
  g_autoptr (GHashTable) extensions = image_extensions ();
  g_autoptr (GHashTable) visited = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  Collect c = { extensions, report, user_data, visited };
  int problems = 0;
  for (int i = 0; i < n_paths; i++)
    {
      if (g_file_test (paths[i], G_FILE_TEST_IS_DIR))
        problems += collect_folder (paths[i], recursive, &c, files);
      else
        g_ptr_array_add (files, g_strdup (paths[i])); /* named files are always tried */
    }
  return problems;
}
