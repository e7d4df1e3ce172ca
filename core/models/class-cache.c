/* class-cache.c — class embeddings on disk, keyed by model and label set. */
#include "models/class-cache.h"
#include "models/adapter.h"

#include "models/embedding-cache.h"
#include "formats/safetensors-write.h"
#include "support/folder.h"
#include "support/regular-file.h"

#include <errno.h>
#include <glib/gstdio.h>
#include <string.h>
#include <unistd.h>

// changes whenever the entry format or what enters the key changes
#define KEY_VERSION "agriclip class embeddings 2"
#define KEY_HEX 64

static const char magic[8] = { 'A', 'G', 'C', 'C', 'L', 'S', '0', '2' };

typedef struct
{
  char magic[8];
  gint32 n_classes;
  gint32 dim;
  char key[KEY_HEX];  // the entry's own key: a file under another name is a miss
  guint8 digest[32];  // SHA-256 of the rows: a corrupt entry is a miss
} Header;

G_STATIC_ASSERT (sizeof (Header) == 112);

static gboolean
turned_off (void)
{
  const char *env = g_getenv ("AGRICLIP_NO_CLASS_CACHE");
  return env != NULL && env[0] != '\0' && g_strcmp0 (env, "0") != 0;
}

static char *
classes_dir (void)
{
  g_autofree char *cache = agc_cache_dir ();
  return g_build_filename (cache, "classes", NULL);
}

/* ---- the key ---------------------------------------------------------------- */

static gboolean
is_tokenizer_or_config (const char *name)
{
  static const char *const names[] = { "vocab.json", "merges.txt", "bpe_simple_vocab_16e6.txt.gz",
                                       "config.json", "open_clip_config.json", NULL };
  return g_strv_contains (names, name);
}

static gboolean
is_weights (const char *name)
{
  static const char *const suffixes[] = { ".safetensors", ".bin", ".pt", ".pth", ".index.json",
                                          NULL };
  for (const char *const *s = suffixes; *s != NULL; s++)
    if (g_str_has_suffix (name, *s))
      return TRUE;
  return FALSE;
}

static gboolean
append_hash (GString *lines, const char *name, const char *path, GError **error)
{
  char hex[AGC_SHA256_HEX];
  if (!agc_file_sha256 (hex, path, error))
    return FALSE;
  g_string_append_printf (lines, "%s\t%s\n", name, hex);
  return TRUE;
}

/* "name\tSHA-256\n" for the text side's files (see class-cache.h): a
 * checkpoint file and the tokenizer and configurations beside it, or a
 * folder's tokenizer, configurations and weights.  Content hashes are
 * remembered by stat (agc_file_sha256), so this reads no weights twice. */
static gboolean
append_text_files (GString *lines, const char *source, GError **error)
{
  gboolean is_file = !g_file_test (source, G_FILE_TEST_IS_DIR);
  g_autofree char *folder = is_file ? g_path_get_dirname (source) : g_strdup (source);
  if (is_file)
    {
      g_autofree char *base = g_path_get_basename (source);
      if (!append_hash (lines, base, source, error))
        return FALSE;
    }
  g_autoptr (GPtrArray) names = agc_list_folder (folder, error);
  if (names == NULL)
    return FALSE;
  for (guint i = 0; i < names->len; i++)
    {
      const char *name = names->pdata[i];
      if (!is_tokenizer_or_config (name) && (is_file || !is_weights (name)))
        continue;
      g_autofree char *path = g_build_filename (folder, name, NULL);
      if (g_file_test (path, G_FILE_TEST_IS_REGULAR)
          && !append_hash (lines, names->pdata[i], path, error))
        return FALSE;
    }
  return TRUE;
}

char *
agc_class_cache_key (const AgcModel *model, const AgcLabelSet *labels, GError **error)
{
  g_return_val_if_fail (model != NULL && labels != NULL, NULL);
  if (turned_off ())
    return NULL;
  // without a writable cache every use would hash the weights again for nothing
  g_autofree char *dir = classes_dir ();
  if (g_mkdir_with_parents (dir, 0700) != 0 || g_access (dir, W_OK) != 0)
    return NULL;

  g_autoptr (GString) lines = g_string_new (KEY_VERSION "\nagriclip " AGRICLIP_VERSION "\n");
  const char *path = agc_model_path (model);
  if (g_file_test (path, G_FILE_TEST_IS_DIR))
    {
      g_autofree char *identity = agc_model_identity (model, error);
      if (identity == NULL)
        return NULL;
      g_string_append_printf (lines, "model\t%s\n", identity);
    }
  else // a checkpoint file: the text files below hold all of it
    g_string_append (lines, "model\tfile\n");
  if (!append_text_files (lines, agc_model_text_source (model), error))
    return NULL;
  // an adapter may change the text tower (contrastive): its digest is part
  // of what the class embeddings come from
  const char *adapter = agc_model_adapter_digest (model);
  if (adapter != NULL)
    g_string_append_printf (lines, "adapter\t%s\n", adapter);
  g_string_append_printf (lines, "recipe\t%d\nclasses\t%d\n", (int) agc_model_class_recipe (model),
                          agc_label_set_n_classes (labels));

  // lengths before strings: no two label sets give the same byte stream
  g_autoptr (GChecksum) sum = g_checksum_new (G_CHECKSUM_SHA256);
  g_checksum_update (sum, (const guchar *) lines->str, (gssize) lines->len);
  for (int c = 0; c < agc_label_set_n_classes (labels); c++)
    {
      const char *const *prompts = agc_label_set_class_prompts (labels, c);
      g_string_printf (lines, "class\t%u\n", g_strv_length ((char **) prompts));
      g_checksum_update (sum, (const guchar *) lines->str, (gssize) lines->len);
      for (const char *const *p = prompts; *p != NULL; p++)
        {
          g_string_printf (lines, "%zu:", strlen (*p));
          g_checksum_update (sum, (const guchar *) lines->str, (gssize) lines->len);
          g_checksum_update (sum, (const guchar *) *p, (gssize) strlen (*p));
        }
    }
  return g_strdup (g_checksum_get_string (sum));
}

/* ---- entries ---------------------------------------------------------------- */

static char *
entry_path (const char *key)
{
  g_autofree char *dir = classes_dir ();
  char ab[3] = { key[0], key[1], '\0' };
  g_autofree char *name = g_strconcat (key, ".f32", NULL);
  return g_build_filename (dir, ab, name, NULL);
}

static void
rows_digest (guint8 digest[32], const float *rows, size_t n)
{
  g_autoptr (GChecksum) sum = g_checksum_new (G_CHECKSUM_SHA256);
  g_checksum_update (sum, (const guchar *) rows, (gssize) (n * sizeof (float)));
  gsize length = 32;
  g_checksum_get_digest (sum, digest, &length);
}

gboolean
agc_class_cache_load (float *classes, const char *key, int n_classes, int dim)
{
  g_return_val_if_fail (classes != NULL && key != NULL && strlen (key) == KEY_HEX, FALSE);
  g_return_val_if_fail (n_classes >= 0 && dim >= 0, FALSE);
  g_autofree char *path = entry_path (key);
  g_autofree char *data = NULL;
  gsize size = 0;
  if (!agc_read_regular_file (path, G_MAXSSIZE, &data, &size, NULL))
    return FALSE;
  size_t n = (size_t) n_classes * dim;
  Header h;
  if (size != sizeof h + n * sizeof (float))
    return FALSE;
  memcpy (&h, data, sizeof h);
  if (memcmp (h.magic, magic, sizeof magic) != 0 || h.n_classes != n_classes || h.dim != dim
      || memcmp (h.key, key, KEY_HEX) != 0)
    return FALSE;
  float *rows = g_new (float, MAX (n, 1));
  memcpy (rows, data + sizeof h, n * sizeof (float));
  guint8 digest[32];
  rows_digest (digest, rows, n);
  gboolean intact = memcmp (digest, h.digest, sizeof digest) == 0;
  if (intact)
    memcpy (classes, rows, n * sizeof (float));
  g_free (rows);
  return intact;
}

gboolean
agc_class_cache_store (const char *key, const float *classes, int n_classes, int dim,
                       GError **error)
{
  g_return_val_if_fail (classes != NULL && key != NULL && strlen (key) == KEY_HEX, FALSE);
  g_return_val_if_fail (n_classes >= 0 && dim >= 0, FALSE);
  g_autofree char *path = entry_path (key);
  g_autofree char *dir = g_path_get_dirname (path);
  if (g_mkdir_with_parents (dir, 0700) != 0)
    {
      g_set_error (error, AGC_ERROR, AGC_ERROR_IO, "%s: cannot create the folder: %s", dir,
                   g_strerror (errno));
      return FALSE;
    }
  size_t n = (size_t) n_classes * dim;
  Header h = { .n_classes = n_classes, .dim = dim };
  memcpy (h.magic, magic, sizeof magic);
  memcpy (h.key, key, KEY_HEX);
  rows_digest (h.digest, classes, n);
  size_t size = sizeof h + n * sizeof (float);
  g_autofree char *data = g_malloc (size);
  memcpy (data, &h, sizeof h);
  memcpy (data + sizeof h, classes, n * sizeof (float));
  // a crash leaves the old entry or none, never a partial one
  return agc_write_file_atomic (path, data, size, FALSE, error);
}
