/* class-cache.c — class embeddings on disk, keyed by model and label set. */
#include "class-cache.h"

#include <glib/gstdio.h>
#include <string.h>
#include <sys/stat.h>

#define KEY_VERSION "agriclip class embeddings 1"

static const char magic[8] = { 'A', 'G', 'C', 'C', 'L', 'S', '0', '1' };

typedef struct
{
  char magic[8];
  gint32 n_classes;
  gint32 dim;
} Header;

// The model folder's files by name, size, inode and times: cheap (no file is
// read) and safe, since a file written again gets a new ctime, which no tool
// can set back
static char *
model_stamp (const char *dir, GError **error)
{
  GDir *d = g_dir_open (dir, 0, error);
  if (d == NULL)
    return NULL;
  g_autoptr (GPtrArray) names = g_ptr_array_new_with_free_func (g_free);
  const char *name;
  while ((name = g_dir_read_name (d)) != NULL)
    if (name[0] != '.')
      g_ptr_array_add (names, g_strdup (name));
  g_dir_close (d);
  g_ptr_array_sort (names, (GCompareFunc) g_strcmp0);
  g_autoptr (GString) stamp = g_string_new (NULL);
  for (guint i = 0; i < names->len; i++)
    {
      g_autofree char *path = g_build_filename (dir, names->pdata[i], NULL);
      GStatBuf st;
      if (g_stat (path, &st) != 0 || !S_ISREG (st.st_mode))
        continue;
      g_string_append_printf (stamp, "%s\t%lld\t%llu\t%llu\t%lld.%09ld\t%lld.%09ld\n",
                              (char *) names->pdata[i], (long long) st.st_size,
                              (unsigned long long) st.st_dev, (unsigned long long) st.st_ino,
                              (long long) st.st_mtim.tv_sec, st.st_mtim.tv_nsec,
                              (long long) st.st_ctim.tv_sec, st.st_ctim.tv_nsec);
    }
  return g_string_free (g_steal_pointer (&stamp), FALSE);
}

char *
agc_class_cache_key (const AgcModel *model, const AgcLabelSet *labels, GError **error)
{
  g_return_val_if_fail (model != NULL && labels != NULL, NULL);
  g_autofree char *canonical = g_canonicalize_filename (agc_model_path (model), NULL);
  g_autofree char *identity = model_stamp (canonical, error);
  if (identity == NULL)
    return NULL;
  // lengths before strings: no two label sets give the same byte stream
  g_autoptr (GChecksum) sum = g_checksum_new (G_CHECKSUM_SHA256);
  g_autoptr (GString) item = g_string_new (NULL);
  g_string_printf (item, "%s\n%s\n%s%d\n", KEY_VERSION, canonical, identity,
                   agc_label_set_n_classes (labels));
  g_checksum_update (sum, (const guchar *) item->str, (gssize) item->len);
  for (int c = 0; c < agc_label_set_n_classes (labels); c++)
    {
      const char *const *prompts = agc_label_set_class_prompts (labels, c);
      g_string_printf (item, "class %u\n", g_strv_length ((char **) prompts));
      g_checksum_update (sum, (const guchar *) item->str, (gssize) item->len);
      for (const char *const *p = prompts; *p != NULL; p++)
        {
          g_string_printf (item, "%zu:", strlen (*p));
          g_checksum_update (sum, (const guchar *) item->str, (gssize) item->len);
          g_checksum_update (sum, (const guchar *) *p, (gssize) strlen (*p));
        }
    }
  return g_strdup (g_checksum_get_string (sum));
}

static char *
entry_path (const char *key)
{
  char ab[3] = { key[0], key[0] ? key[1] : '\0', '\0' };
  g_autofree char *name = g_strconcat (key, ".f32", NULL);
  return g_build_filename (g_get_user_cache_dir (), "agriclip", "classes", ab, name, NULL);
}

gboolean
agc_class_cache_load (float *classes, const char *key, int n_classes, int dim)
{
  g_return_val_if_fail (classes != NULL && key != NULL, FALSE);
  g_autofree char *path = entry_path (key);
  g_autofree char *data = NULL;
  gsize size = 0;
  if (!g_file_get_contents (path, &data, &size, NULL))
    return FALSE;
  size_t n = (size_t) n_classes * dim;
  Header h;
  if (size != sizeof h + n * sizeof (float))
    return FALSE;
  memcpy (&h, data, sizeof h);
  if (memcmp (h.magic, magic, sizeof magic) != 0 || h.n_classes != n_classes || h.dim != dim)
    return FALSE;
  memcpy (classes, data + sizeof h, n * sizeof (float));
  return TRUE;
}

gboolean
agc_class_cache_store (const char *key, const float *classes, int n_classes, int dim,
                       GError **error)
{
  g_return_val_if_fail (classes != NULL && key != NULL, FALSE);
  g_autofree char *path = entry_path (key);
  g_autofree char *dir = g_path_get_dirname (path);
  if (g_mkdir_with_parents (dir, 0700) != 0)
    {
      g_set_error (error, AGC_ERROR, AGC_ERROR_IO, "%s: cannot create the folder", dir);
      return FALSE;
    }
  size_t n = (size_t) n_classes * dim;
  Header h = { .n_classes = n_classes, .dim = dim };
  memcpy (h.magic, magic, sizeof magic);
  g_autofree char *data = g_malloc (sizeof h + n * sizeof (float));
  memcpy (data, &h, sizeof h);
  memcpy (data + sizeof h, classes, n * sizeof (float));
  GError *local = NULL;
  // g_file_set_contents writes a temporary file and renames it over path
  if (!g_file_set_contents (path, data, (gssize) (sizeof h + n * sizeof (float)), &local))
    {
      g_set_error (error, AGC_ERROR, AGC_ERROR_IO, "%s", local->message);
      g_error_free (local);
      return FALSE;
    }
  return TRUE;
}
