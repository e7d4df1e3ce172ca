/* test-weights.c — checkpoints as one file or as a sharded index, and the
 * typed, shape-checked access the model loader relies on. */
#include "agriclip.h"
#include "unit-util.h"
#include "formats/weights.h"

#include <glib/gstdio.h>
#include <string.h>

static char *tmp_dir;

static char *
write_text (const char *name, const char *text)
{
  char *path = g_build_filename (tmp_dir, name, NULL);
  GError *error = NULL;
  g_file_set_contents (path, text, -1, &error);
  g_assert_no_error (error);
  return path;
}

/* A file of F32 / F16 / I64 tensors.  Each spec: name, dtype, shape as JSON,
 * n_elements; the values are 0, 1, 2, … (exact in every dtype used). */
typedef struct
{
  const char *name, *dtype, *shape;
  int n;
} Spec;

static char *
write_st (const char *name, const Spec *specs, int n_specs)
{
  GString *header = g_string_new ("{");
  GByteArray *data = g_byte_array_new ();
  for (int s = 0; s < n_specs; s++)
    {
      guint begin = data->len;
      for (int i = 0; i < specs[s].n; i++)
        {
          if (strcmp (specs[s].dtype, "F32") == 0)
            {
              float v = (float) i;
              g_byte_array_append (data, (const guint8 *) &v, 4);
            }
          else if (strcmp (specs[s].dtype, "F16") == 0)
            {
              // 0 and 1, 2, 3 as IEEE half: exponent 15 + e, mantissa bits
              static const guint16 halves[] = { 0x0000, 0x3c00, 0x4000, 0x4200 };
              g_assert_cmpint (i, <, 4);
              g_byte_array_append (data, (const guint8 *) &halves[i], 2);
            }
          else
            {
              gint64 v = i;
              g_byte_array_append (data, (const guint8 *) &v, 8);
            }
        }
      g_string_append_printf (header, "%s\"%s\": {\"dtype\": \"%s\", \"shape\": %s, "
                              "\"data_offsets\": [%u, %u]}",
                              s > 0 ? ", " : "", specs[s].name, specs[s].dtype, specs[s].shape,
                              begin, data->len);
    }
  g_string_append_c (header, '}');

  GByteArray *bytes = g_byte_array_new ();
  guint64 n_header = GUINT64_TO_LE ((guint64) header->len);
  g_byte_array_append (bytes, (const guint8 *) &n_header, 8);
  g_byte_array_append (bytes, (const guint8 *) header->str, (guint) header->len);
  g_byte_array_append (bytes, data->data, data->len);
  char *path = g_build_filename (tmp_dir, name, NULL);
  GError *error = NULL;
  g_file_set_contents (path, (const char *) bytes->data, bytes->len, &error);
  g_assert_no_error (error);
  g_byte_array_unref (bytes);
  g_byte_array_unref (data);
  g_string_free (header, TRUE);
  return path;
}

static AgcWeights *
open_ok (const char *path)
{
  GError *error = NULL;
  AgcWeights *weights = agc_weights_open (path, &error);
  g_assert_no_error (error);
  g_assert_nonnull (weights);
  return weights;
}

static void
assert_message (const GError *error, const char *needle)
{
  if (strstr (error->message, needle) == NULL)
    g_error ("message lacks \"%s\": %s", needle, error->message);
  g_test_message ("%s", error->message);
}

static void
test_single_file (void)
{
  const Spec specs[] = {
    { "vision_model.pre_layrnorm.weight", "F32", "[512]", 512 },
    { "visual_projection.weight", "F32", "[2, 3]", 6 },
    { "logit_scale", "F16", "[]", 1 },
    { "half", "F16", "[2, 2]", 4 },
    { "text_model.embeddings.position_ids", "I64", "[1, 4]", 4 },
  };
  g_autofree char *path = write_st ("model.safetensors", specs, G_N_ELEMENTS (specs));
  AgcWeights *weights = open_ok (path);
  GError *error = NULL;

  g_autofree float *ln = agc_weights_take_1d (weights, "vision_model.pre_layrnorm.weight", 512,
                                              &error);
  g_assert_no_error (error);
  for (int i = 0; i < 512; i++)
    g_assert_cmpfloat (ln[i], ==, (float) i);

  g_autofree float *proj = agc_weights_take_2d (weights, "visual_projection.weight", 2, 3, &error);
  g_assert_no_error (error);
  g_assert_cmpfloat (proj[5], ==, 5.0f);

  float *scalar = agc_weights_take_f32 (weights, "logit_scale", 0, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpfloat (scalar[0], ==, 0.0f);
  g_free (scalar);

  const int64_t shape[] = { 2, 2 };
  g_autofree float *half = agc_weights_take_f32 (weights, "half", 2, shape, &error);
  g_assert_no_error (error);
  g_assert_cmpfloat (half[3], ==, 3.0f);

  g_assert_nonnull (agc_weights_find (weights, "text_model.embeddings.position_ids"));
  g_assert_null (agc_weights_find (weights, "absent"));

  // the messages the model loader passes on to users, word for word
  g_assert_null (agc_weights_take_1d (weights, "vision_model.pre_layrnorm.weight", 768, &error));
  g_assert_error (error, AGC_ERROR, AGC_ERROR_MODEL);
  g_autofree char *want_shape = g_strdup_printf (
    "%s: tensor 'vision_model.pre_layrnorm.weight' has shape [512], expected [768]", path);
  g_assert_cmpstr (error->message, ==, want_shape);
  g_clear_error (&error);

  g_assert_null (agc_weights_take_2d (weights, "text_projection.weight", 512, 512, &error));
  g_assert_error (error, AGC_ERROR, AGC_ERROR_MODEL);
  g_autofree char *want_missing = g_strdup_printf ("%s: missing tensor 'text_projection.weight'",
                                                   path);
  g_assert_cmpstr (error->message, ==, want_missing);
  g_clear_error (&error);

  // same element count, other layout; and a different number of dimensions
  g_assert_null (agc_weights_take_2d (weights, "visual_projection.weight", 3, 2, &error));
  g_assert_error (error, AGC_ERROR, AGC_ERROR_MODEL);
  assert_message (error, "has shape [2, 3], expected [3, 2]");
  g_clear_error (&error);
  g_assert_null (agc_weights_take_1d (weights, "visual_projection.weight", 6, &error));
  assert_message (error, "has shape [2, 3], expected [6]");
  g_clear_error (&error);
  g_assert_null (agc_weights_take_1d (weights, "logit_scale", 1, &error));
  assert_message (error, "has shape [], expected [1]");
  g_clear_error (&error);

  // integer buffers are not weights
  g_assert_null (agc_weights_take_2d (weights, "text_model.embeddings.position_ids", 1, 4, &error));
  g_assert_error (error, AGC_ERROR, AGC_ERROR_MODEL);
  assert_message (error, "tensor 'text_model.embeddings.position_ids' has dtype I64");
  g_clear_error (&error);

  agc_weights_free (weights);
  agc_weights_free (NULL);
}

static void
test_single_file_errors (void)
{
  GError *error = NULL;
  g_autofree char *missing = g_build_filename (tmp_dir, "nothing.safetensors", NULL);
  g_assert_null (agc_weights_open (missing, &error));
  g_assert_error (error, AGC_ERROR, AGC_ERROR_IO);
  assert_message (error, "nothing.safetensors");
  g_clear_error (&error);

  g_autofree char *junk = write_text ("junk.safetensors", "0123456789abcdef");
  g_assert_null (agc_weights_open (junk, &error));
  g_assert_error (error, AGC_ERROR, AGC_ERROR_FORMAT);
  assert_message (error, "junk.safetensors: header length");
  g_clear_error (&error);
}

/* Two shards in a sub-folder, where the indexes go too; the tests run from
 * another folder, so shard paths must be resolved against the index's. */
static void
write_shards (char **p1, char **p2)
{
  g_autofree char *folder = g_build_filename (tmp_dir, "sharded", NULL);
  g_assert_cmpint (g_mkdir_with_parents (folder, 0700), ==, 0);
  const Spec shard1[] = {
    { "a.weight", "F32", "[2, 2]", 4 },
    { "a.bias", "F32", "[2]", 2 },
    { "not_in_map", "F32", "[1]", 1 },
  };
  const Spec shard2[] = {
    { "b.weight", "F16", "[3]", 3 },
    { "b.bias", "F32", "[3]", 3 },
  };
  *p1 = write_st ("sharded/model-00001-of-00002.safetensors", shard1, 3);
  *p2 = write_st ("sharded/model-00002-of-00002.safetensors", shard2, 2);
}

static void
test_sharded (void)
{
  g_autofree char *p1 = NULL, *p2 = NULL;
  write_shards (&p1, &p2);
  g_autofree char *index = write_text (
    "sharded/model.safetensors.index.json",
    "{\"metadata\": {\"total_size\": 42},\n"
    " \"weight_map\": {\"a.weight\": \"model-00001-of-00002.safetensors\",\n"
    "                \"b.weight\": \"model-00002-of-00002.safetensors\",\n"
    "                \"a.bias\": \"model-00001-of-00002.safetensors\",\n"
    "                \"b.bias\": \"model-00002-of-00002.safetensors\"}}");

  AgcWeights *weights = open_ok (index);
  const AgcTensorView *aw = agc_weights_find (weights, "a.weight");
  const AgcTensorView *ab = agc_weights_find (weights, "a.bias");
  const AgcTensorView *bw = agc_weights_find (weights, "b.weight");
  const AgcTensorView *bb = agc_weights_find (weights, "b.bias");
  g_assert_nonnull (aw);
  g_assert_nonnull (ab);
  g_assert_nonnull (bw);
  g_assert_nonnull (bb);
  g_assert_cmpstr (aw->file, ==, p1);
  g_assert_cmpstr (bw->file, ==, p2);
  // each shard is opened once: tensors of one shard share its path string
  g_assert_true (aw->file == ab->file);
  g_assert_true (bw->file == bb->file);
  // the index decides what exists
  g_assert_null (agc_weights_find (weights, "not_in_map"));

  GError *error = NULL;
  g_autofree float *b = agc_weights_take_1d (weights, "b.weight", 3, &error);
  g_assert_no_error (error);
  g_assert_cmpfloat (b[2], ==, 2.0f);
  g_assert_null (agc_weights_take_1d (weights, "c.weight", 3, &error));
  g_autofree char *want = g_strdup_printf ("%s: missing tensor 'c.weight'", index);
  g_assert_cmpstr (error->message, ==, want);
  g_clear_error (&error);
  // shape errors name the shard the tensor lives in
  g_assert_null (agc_weights_take_1d (weights, "b.bias", 4, &error));
  g_autofree char *want_shape = g_strdup_printf ("%s: tensor 'b.bias' has shape [3], expected [4]",
                                                 p2);
  g_assert_cmpstr (error->message, ==, want_shape);
  g_clear_error (&error);
  agc_weights_free (weights);
}

static void
assert_index_fails (const char *index_json, int code, const char *needle1, const char *needle2)
{
  static int counter;
  g_autofree char *name = g_strdup_printf ("sharded/bad-%d.index.json", counter++);
  g_autofree char *path = write_text (name, index_json);
  GError *error = NULL;
  g_assert_null (agc_weights_open (path, &error));
  g_assert_error (error, AGC_ERROR, code);
  g_assert_true (g_str_has_prefix (error->message, path));
  assert_message (error, needle1);
  if (needle2 != NULL)
    assert_message (error, needle2);
  g_error_free (error);
}

static void
test_sharded_errors (void)
{
  g_autofree char *p1 = NULL, *p2 = NULL;
  write_shards (&p1, &p2);
  assert_index_fails ("{\"weight_map\": {\"a.weight\": \"model-00001-of-00002.safetensors\","
                      " \"z.weight\": \"model-00003-of-00003.safetensors\"}}",
                      AGC_ERROR_IO, "shard of tensor 'z.weight'",
                      "model-00003-of-00003.safetensors");
  assert_index_fails ("{\"weight_map\": {\"b.weight\": \"model-00001-of-00002.safetensors\"}}",
                      AGC_ERROR_FORMAT,
                      "tensor 'b.weight' is mapped to 'model-00001-of-00002.safetensors', "
                      "which does not contain it", NULL);
  assert_index_fails ("{\"weight_map\": {\"a.weight\": \"/etc/passwd\"}}", AGC_ERROR_FORMAT,
                      "weight_map entry 'a.weight'", NULL);
  assert_index_fails ("{\"weight_map\": {\"a.weight\": 3}}", AGC_ERROR_FORMAT,
                      "weight_map entry 'a.weight'", NULL);
  assert_index_fails ("{\"metadata\": {}}", AGC_ERROR_FORMAT, "weight_map", NULL);
  assert_index_fails ("{\"weight_map\": [1]}", AGC_ERROR_FORMAT, "weight_map", NULL);
  assert_index_fails ("{\"weight_map\": {\"a.weight\": ", AGC_ERROR_FORMAT, "not valid JSON", NULL);
  assert_index_fails ("", AGC_ERROR_FORMAT, "weight_map", NULL);

  // a broken shard: its own message, after the index's name
  g_autofree char *junk = write_text ("sharded/junk.safetensors", "\x01\x02");
  assert_index_fails ("{\"weight_map\": {\"a.weight\": \"junk.safetensors\"}}", AGC_ERROR_FORMAT,
                      "junk.safetensors: file is 2 bytes", NULL);

  GError *error = NULL;
  g_autofree char *missing = g_build_filename (tmp_dir, "sharded", "none.index.json", NULL);
  g_assert_null (agc_weights_open (missing, &error));
  g_assert_error (error, AGC_ERROR, AGC_ERROR_IO);
  assert_message (error, "none.index.json");
  g_clear_error (&error);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  GError *error = NULL;
  tmp_dir = g_dir_make_tmp ("agc-weights-XXXXXX", &error);
  g_assert_no_error (error);

  g_test_add_func ("/weights/single-file", test_single_file);
  g_test_add_func ("/weights/single-file-errors", test_single_file_errors);
  g_test_add_func ("/weights/sharded", test_sharded);
  g_test_add_func ("/weights/sharded-errors", test_sharded_errors);
  int result = g_test_run ();

  remove_tree (tmp_dir);
  g_free (tmp_dir);
  return result;
}
