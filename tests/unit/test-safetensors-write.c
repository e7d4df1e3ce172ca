/* test-safetensors-write.c — the safetensors writer: files it writes read
 * back through the validating reader (every dtype, empty and scalar
 * shapes, metadata with characters JSON must escape), the header is padded
 * to 8 bytes, and writes are atomic: a failed write leaves the old file and
 * no temporary behind.  tests/reference/test_train.py reads its files with
 * an independent Python reader. */
#include "agriclip.h"
#include "formats/safetensors-write.h"
#include "formats/safetensors.h"

#include <glib/gstdio.h>
#include <string.h>

static char *tmp_dir;

static char *
tmp_path (const char *name)
{
  return g_build_filename (tmp_dir, name, NULL);
}

static int
compare_names (gconstpointer a, gconstpointer b)
{
  return strcmp (*(char *const *) a, *(char *const *) b);
}

/* The names in tmp_dir, sorted, space-separated (hidden ones included). */
static char *
folder_listing (void)
{
  GDir *dir = g_dir_open (tmp_dir, 0, NULL);
  g_autoptr (GPtrArray) names = g_ptr_array_new_with_free_func (g_free);
  for (const char *name; (name = g_dir_read_name (dir)) != NULL;)
    g_ptr_array_add (names, g_strdup (name));
  g_dir_close (dir);
  g_ptr_array_sort (names, compare_names);
  g_ptr_array_add (names, NULL);
  return g_strjoinv (" ", (char **) names->pdata);
}

static void
clear_folder (void)
{
  GDir *dir = g_dir_open (tmp_dir, 0, NULL);
  for (const char *name; (name = g_dir_read_name (dir)) != NULL;)
    {
      g_autofree char *path = tmp_path (name);
      g_unlink (path);
    }
  g_dir_close (dir);
}

static AgcTensorView
view (const char *name, AgcDType dtype, const void *data, int n_dims, const int64_t *shape)
{
  AgcTensorView v = { .name = name, .dtype = dtype, .n_dims = n_dims, .data = data };
  size_t n = 1;
  for (int d = 0; d < n_dims; d++)
    {
      v.shape[d] = shape[d];
      n *= (size_t) shape[d];
    }
  v.n_bytes = n * agc_dtype_size (dtype);
  return v;
}

static void
test_round_trip (void)
{
  const float f32[6] = { 1.5f, -2.0f, 3.25f, 0.0f, -0.0f, 1e-30f };
  const double f64[1] = { 0.1 };
  const gint64 i64[3] = { -1, 0, G_MAXINT64 };
  const guint16 f16[2] = { 0x3c00, 0xc000 }; /* 1.0, -2.0 */
  const guint8 u8[4] = { 0, 1, 254, 255 };
  const float scalar = 42.0f;
  AgcTensorView tensors[] = {
    view ("b.weight", AGC_DTYPE_F32, f32, 2, (int64_t[]){ 2, 3 }),
    view ("a.loss", AGC_DTYPE_F64, f64, 1, (int64_t[]){ 1 }),
    view ("steps", AGC_DTYPE_I64, i64, 1, (int64_t[]){ 3 }),
    view ("half", AGC_DTYPE_F16, f16, 1, (int64_t[]){ 2 }),
    view ("bytes", AGC_DTYPE_U8, u8, 3, (int64_t[]){ 1, 2, 2 }),
    view ("empty", AGC_DTYPE_F32, NULL, 2, (int64_t[]){ 0, 7 }),
    view ("scalar", AGC_DTYPE_F32, &scalar, 0, NULL),
  };
  int n = G_N_ELEMENTS (tensors);
  g_autoptr (GHashTable) meta = g_hash_table_new (g_str_hash, g_str_equal);
  g_hash_table_insert (meta, "quote\"back\\slash", "line\nbreak\ttab \x01 ctrl");
  g_hash_table_insert (meta, "unicode", "Blé — rouille 🌾");
  g_hash_table_insert (meta, "json", "[{\"name\":\"rust\"}]");

  g_autofree char *path = tmp_path ("round.safetensors");
  GError *error = NULL;
  g_assert_true (agc_safetensors_write (path, tensors, n, meta, TRUE, &error));
  g_assert_no_error (error);

  AgcSafetensors *file = agc_safetensors_open (path, &error);
  g_assert_no_error (error);
  g_assert_cmpint (agc_safetensors_n_tensors (file), ==, n);
  for (int i = 0; i < n; i++)
    {
      const AgcTensorView *t = agc_safetensors_find (file, tensors[i].name);
      g_assert_nonnull (t);
      g_assert_cmpint (t->dtype, ==, tensors[i].dtype);
      g_assert_cmpint (t->n_dims, ==, tensors[i].n_dims);
      for (int d = 0; d < t->n_dims; d++)
        g_assert_cmpint (t->shape[d], ==, tensors[i].shape[d]);
      g_assert_cmpmem (t->data, t->n_bytes, tensors[i].data, tensors[i].n_bytes);
      /* written in the order given: the data section follows that order */
      if (i > 0 && tensors[i].n_bytes > 0)
        g_assert_true (t->data >= agc_safetensors_find (file, tensors[i - 1].name)->data);
    }
  GHashTable *read_meta = agc_safetensors_metadata (file);
  g_assert_nonnull (read_meta);
  g_assert_cmpuint (g_hash_table_size (read_meta), ==, 3);
  GHashTableIter iter;
  gpointer key, value;
  g_hash_table_iter_init (&iter, meta);
  while (g_hash_table_iter_next (&iter, &key, &value))
    g_assert_cmpstr (g_hash_table_lookup (read_meta, key), ==, value);
  agc_safetensors_free (file);

  /* the header length is a multiple of 8, so the data are 8-byte aligned */
  g_autofree char *bytes = NULL;
  gsize length;
  g_assert_true (g_file_get_contents (path, &bytes, &length, NULL));
  guint64 header_length;
  memcpy (&header_length, bytes, 8);
  header_length = GUINT64_FROM_LE (header_length);
  g_assert_cmpuint (header_length % 8, ==, 0);
  g_assert_cmpuint (header_length + 8 + sizeof f32 + sizeof f64 + sizeof i64 + sizeof f16
                        + sizeof u8 + sizeof scalar,
                    ==, length);

  /* equal content, equal bytes (sorted metadata keys), durable or not */
  g_autofree char *again = tmp_path ("again.safetensors");
  g_assert_true (agc_safetensors_write (again, tensors, n, meta, FALSE, &error));
  g_autofree char *bytes2 = NULL;
  gsize length2;
  g_assert_true (g_file_get_contents (again, &bytes2, &length2, NULL));
  g_assert_cmpmem (bytes, length, bytes2, length2);
  clear_folder ();
}

static void
test_replaces_atomically (void)
{
  g_autofree char *path = tmp_path ("adapter.safetensors");
  const float old_values[2] = { 1, 2 }, new_values[3] = { 3, 4, 5 };
  AgcTensorView old_view = view ("w", AGC_DTYPE_F32, old_values, 1, (int64_t[]){ 2 });
  GError *error = NULL;
  g_assert_true (agc_safetensors_write (path, &old_view, 1, NULL, TRUE, &error));
  g_autofree char *old_bytes = NULL;
  gsize old_length;
  g_assert_true (g_file_get_contents (path, &old_bytes, &old_length, NULL));

  /* a failing write (bytes that do not match the shape) leaves the old file */
  AgcTensorView bad = view ("w", AGC_DTYPE_F32, new_values, 1, (int64_t[]){ 3 });
  bad.n_bytes = 8;
  g_assert_false (agc_safetensors_write (path, &bad, 1, NULL, TRUE, &error));
  g_assert_error (error, AGC_ERROR, AGC_ERROR_INPUT);
  g_assert_nonnull (strstr (error->message, "adapter.safetensors"));
  g_clear_error (&error);
  AgcTensorView twice[2] = { old_view, old_view };
  g_assert_false (agc_safetensors_write (path, twice, 2, NULL, TRUE, &error));
  g_assert_error (error, AGC_ERROR, AGC_ERROR_INPUT);
  g_clear_error (&error);
  g_autofree char *still = NULL;
  gsize still_length;
  g_assert_true (g_file_get_contents (path, &still, &still_length, NULL));
  g_assert_cmpmem (still, still_length, old_bytes, old_length);

  /* a successful one replaces it, with nothing else left in the folder */
  AgcTensorView new_view = view ("w", AGC_DTYPE_F32, new_values, 1, (int64_t[]){ 3 });
  g_assert_true (agc_safetensors_write (path, &new_view, 1, NULL, TRUE, &error));
  AgcSafetensors *file = agc_safetensors_open (path, &error);
  g_assert_no_error (error);
  g_assert_cmpmem (agc_safetensors_find (file, "w")->data, 12, new_values, 12);
  agc_safetensors_free (file);
  g_autofree char *listing = folder_listing ();
  g_assert_cmpstr (listing, ==, "adapter.safetensors");

  /* a folder that does not exist: an I/O error naming the file */
  g_autofree char *nowhere = tmp_path ("missing/adapter.safetensors");
  g_assert_false (agc_safetensors_write (nowhere, &new_view, 1, NULL, TRUE, &error));
  g_assert_error (error, AGC_ERROR, AGC_ERROR_IO);
  g_assert_nonnull (strstr (error->message, "missing/adapter.safetensors"));
  g_clear_error (&error);
  clear_folder ();
}

static void
test_write_file_atomic (void)
{
  g_autofree char *path = tmp_path ("memo");
  GError *error = NULL;
  g_assert_true (agc_write_file_atomic (path, "first", 5, FALSE, &error));
  g_assert_true (agc_write_file_atomic (path, "second", 6, TRUE, &error));
  g_assert_no_error (error);
  g_autofree char *text = NULL;
  g_assert_true (g_file_get_contents (path, &text, NULL, NULL));
  g_assert_cmpstr (text, ==, "second");
  g_autofree char *listing = folder_listing ();
  g_assert_cmpstr (listing, ==, "memo");
  clear_folder ();
}

static void
test_remove_stale_temporaries (void)
{
  const char *names[] = { ".out.safetensors.tmp-a1B2c3", /* a leftover: removed */
                          ".out.safetensors.tmp-a1B2c3d", /* not the pattern: kept */
                          ".other.safetensors.tmp-a1B2c3", "out.safetensors" };
  for (size_t i = 0; i < G_N_ELEMENTS (names); i++)
    {
      g_autofree char *path = tmp_path (names[i]);
      g_assert_true (g_file_set_contents (path, "x", 1, NULL));
    }
  g_autofree char *out = tmp_path ("out.safetensors");
  agc_remove_stale_temporaries (out);
  g_autofree char *listing = folder_listing ();
  g_assert_cmpstr (listing, ==,
                   ".other.safetensors.tmp-a1B2c3 .out.safetensors.tmp-a1B2c3d out.safetensors");
  clear_folder ();
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  tmp_dir = g_dir_make_tmp ("agc-st-write-XXXXXX", NULL);
  g_test_add_func ("/safetensors-write/round-trip", test_round_trip);
  g_test_add_func ("/safetensors-write/replaces-atomically", test_replaces_atomically);
  g_test_add_func ("/safetensors-write/write-file-atomic", test_write_file_atomic);
  g_test_add_func ("/safetensors-write/remove-stale-temporaries", test_remove_stale_temporaries);
  int status = g_test_run ();
  clear_folder ();
  g_rmdir (tmp_dir);
  g_free (tmp_dir);
  return status;
}
