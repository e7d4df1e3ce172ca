/* safetensors-write.c — atomic writes: a temporary file next to the
 * destination, flushed, then renamed over it.  rename() within one folder
 * is atomic on POSIX file systems, which is the whole trick. */
#include "formats/safetensors-write.h"

#include "agriclip.h"

#include <errno.h>
#include <fcntl.h>
#include <glib/gstdio.h>
#include <json-glib/json-glib.h>
#include <string.h>
#include <unistd.h>

/* A temporary file on its way to becoming path. */
typedef struct
{
  const char *path;
  char *shown; /* display name of path, for messages */
  char *tmp_path;
  int fd;
} AtomicFile;

static gboolean
fail_errno (GError **error, const AtomicFile *f, const char *what, int saved_errno)
{
  g_set_error (error, AGC_ERROR, AGC_ERROR_IO, "%s: cannot %s: %s", f->shown, what,
               g_strerror (saved_errno));
  return FALSE;
}

static gboolean
atomic_open (AtomicFile *f, const char *path, GError **error)
{
  f->path = path;
  f->shown = g_filename_display_name (path);
  g_autofree char *dir = g_path_get_dirname (path);
  g_autofree char *base = g_path_get_basename (path);
  /* hidden and not ending in the real name's extension: a leftover of a
   * killed process never looks like a finished file */
  f->tmp_path = g_strdup_printf ("%s%s.%s.tmp-XXXXXX", dir, G_DIR_SEPARATOR_S, base);
  f->fd = g_mkstemp_full (f->tmp_path, O_WRONLY | O_CLOEXEC, 0666); /* umask applies */
  if (f->fd < 0)
    {
      fail_errno (error, f, "create a temporary file in its folder", errno);
      g_free (f->tmp_path);
      g_free (f->shown);
      return FALSE;
    }
  return TRUE;
}

static gboolean
atomic_write (AtomicFile *f, const void *data, size_t n_bytes, GError **error)
{
  const guint8 *p = data;
  while (n_bytes > 0)
    {
      ssize_t n = write (f->fd, p, MIN (n_bytes, (size_t) 1 << 30));
      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0)
        return fail_errno (error, f, "write", errno);
      p += n;
      n_bytes -= (size_t) n;
    }
  return TRUE;
}

/* The folder entry of a renamed file is only durable once the folder is synced. */
static gboolean
sync_folder (const AtomicFile *f, GError **error)
{
  g_autofree char *dir = g_path_get_dirname (f->path);
  int fd = open (dir, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return fail_errno (error, f, "open its folder to sync it", errno);
  int status = fsync (fd);
  int saved = errno;
  close (fd);
  /* some file systems cannot sync folders; the rename itself is done */
  if (status != 0 && saved != EINVAL && saved != ENOTSUP)
    return fail_errno (error, f, "sync its folder", saved);
  return TRUE;
}

/* Consumes f: on success path holds the new content, on failure the
 * temporary file is gone and path is untouched. */
static gboolean
atomic_finish (AtomicFile *f, gboolean ok, gboolean durable, GError **error)
{
  if (ok && durable && fsync (f->fd) != 0)
    ok = fail_errno (error, f, "sync", errno);
  if (close (f->fd) != 0 && ok) /* NFS reports write errors at close */
    ok = fail_errno (error, f, "write (at close)", errno);
  if (ok && g_rename (f->tmp_path, f->path) != 0)
    ok = fail_errno (error, f, "replace it with the new file", errno);
  if (!ok)
    g_unlink (f->tmp_path);
  else if (durable)
    ok = sync_folder (f, error);
  g_free (f->tmp_path);
  g_free (f->shown);
  return ok;
}

gboolean
agc_write_file_atomic (const char *path, const void *data, size_t n_bytes, gboolean durable,
                       GError **error)
{
  g_return_val_if_fail (path != NULL && (data != NULL || n_bytes == 0), FALSE);
  AtomicFile f;
  if (!atomic_open (&f, path, error))
    return FALSE;
  gboolean ok = atomic_write (&f, data, n_bytes, error);
  return atomic_finish (&f, ok, durable, error);
}

void
agc_remove_stale_temporaries (const char *path)
{
  g_return_if_fail (path != NULL);
  g_autofree char *dir = g_path_get_dirname (path);
  g_autofree char *base = g_path_get_basename (path);
  g_autofree char *prefix = g_strdup_printf (".%s.tmp-", base);
  GDir *d = g_dir_open (dir, 0, NULL);
  if (d == NULL)
    return;
  for (const char *name; (name = g_dir_read_name (d)) != NULL;)
    if (g_str_has_prefix (name, prefix) && strlen (name) == strlen (prefix) + 6)
      {
        g_autofree char *leftover = g_build_filename (dir, name, NULL);
        g_unlink (leftover);
      }
  g_dir_close (d);
}

/* ---- the header ------------------------------------------------------------ */

static int
compare_strings (const void *a, const void *b)
{
  return strcmp (*(char *const *) a, *(char *const *) b);
}

/* Checks the views and returns the JSON header, padded to a multiple of 8. */
static GString *
build_header (const char *shown, const AgcTensorView *tensors, int n_tensors,
              GHashTable *metadata, GError **error)
{
  g_autoptr (JsonBuilder) builder = json_builder_new ();
  json_builder_begin_object (builder);
  if (metadata != NULL && g_hash_table_size (metadata) > 0)
    {
      guint n_keys;
      g_autofree gpointer *keys = g_hash_table_get_keys_as_array (metadata, &n_keys);
      qsort (keys, n_keys, sizeof (gpointer), compare_strings);
      json_builder_set_member_name (builder, "__metadata__");
      json_builder_begin_object (builder);
      for (guint k = 0; k < n_keys; k++)
        {
          json_builder_set_member_name (builder, keys[k]);
          json_builder_add_string_value (builder, g_hash_table_lookup (metadata, keys[k]));
        }
      json_builder_end_object (builder);
    }

  g_autoptr (GHashTable) seen = g_hash_table_new (g_str_hash, g_str_equal);
  guint64 offset = 0;
  for (int i = 0; i < n_tensors; i++)
    {
      const AgcTensorView *t = &tensors[i];
      guint64 n_elements = 1;
      for (int d = 0; d < t->n_dims; d++)
        n_elements *= (guint64) t->shape[d];
      if (strcmp (t->name, "__metadata__") == 0 || !g_hash_table_add (seen, (char *) t->name)
          || t->n_dims < 0 || t->n_dims > AGC_MAX_DIMS
          || n_elements * agc_dtype_size (t->dtype) != t->n_bytes)
        {
          g_set_error (error, AGC_ERROR, AGC_ERROR_INPUT,
                       "%s: tensor '%s': duplicate or reserved name, or %zu bytes that do not "
                       "match its shape",
                       shown, t->name, t->n_bytes);
          return NULL;
        }
      json_builder_set_member_name (builder, t->name);
      json_builder_begin_object (builder);
      json_builder_set_member_name (builder, "dtype");
      json_builder_add_string_value (builder, agc_dtype_name (t->dtype));
      json_builder_set_member_name (builder, "shape");
      json_builder_begin_array (builder);
      for (int d = 0; d < t->n_dims; d++)
        json_builder_add_int_value (builder, t->shape[d]);
      json_builder_end_array (builder);
      json_builder_set_member_name (builder, "data_offsets");
      json_builder_begin_array (builder);
      json_builder_add_int_value (builder, (gint64) offset);
      json_builder_add_int_value (builder, (gint64) (offset + t->n_bytes));
      json_builder_end_array (builder);
      json_builder_end_object (builder);
      offset += t->n_bytes;
    }
  json_builder_end_object (builder);

  g_autoptr (JsonNode) root = json_builder_get_root (builder);
  g_autoptr (JsonGenerator) generator = json_generator_new ();
  json_generator_set_root (generator, root);
  GString *header = g_string_new (NULL);
  g_autofree char *text = json_generator_to_data (generator, NULL);
  g_string_append (header, text);
  while (header->len % 8 != 0) /* keeps the data section 8-byte aligned for readers that map it */
    g_string_append_c (header, ' ');
  return header;
}

gboolean
agc_safetensors_write (const char *path, const AgcTensorView *tensors, int n_tensors,
                       GHashTable *metadata, gboolean durable, GError **error)
{
  g_return_val_if_fail (path != NULL && (tensors != NULL || n_tensors == 0), FALSE);
  g_autofree char *shown = g_filename_display_name (path);
  g_autoptr (GString) header = build_header (shown, tensors, n_tensors, metadata, error);
  if (header == NULL)
    return FALSE;

  AtomicFile f;
  if (!atomic_open (&f, path, error))
    return FALSE;
  guint64 length = GUINT64_TO_LE ((guint64) header->len);
  gboolean ok = atomic_write (&f, &length, sizeof length, error)
                && atomic_write (&f, header->str, header->len, error);
  for (int i = 0; ok && i < n_tensors; i++)
    ok = atomic_write (&f, tensors[i].data, tensors[i].n_bytes, error);
  return atomic_finish (&f, ok, durable, error);
}
