/* test-resnet.c — loading a torchvision ResNet-50: the errors a wrong or
 * foreign checkpoint must produce, naming the file and the tensor.  (The
 * numbers are compared with torchvision in tests/reference/test_resnet.py.) */
#include "agriclip.h"
#include "nn/resnet.h"

#include <glib/gstdio.h>
#include <string.h>

static char *tmp_dir;

/* A safetensors file of F32 tensors, built up tensor by tensor; every value
 * of a tensor is the same. */
typedef struct
{
  GString *header;
  GByteArray *data;
} Builder;

static Builder *
builder_new (void)
{
  Builder *b = g_new0 (Builder, 1);
  b->header = g_string_new ("{");
  b->data = g_byte_array_new ();
  return b;
}

static void
add (Builder *b, const char *name, float value, int n_dims, const int *shape)
{
  guint begin = b->data->len;
  gsize n = 1;
  GString *dims = g_string_new ("[");
  for (int d = 0; d < n_dims; d++)
    {
      n *= (gsize) shape[d];
      g_string_append_printf (dims, "%s%d", d > 0 ? ", " : "", shape[d]);
    }
  g_string_append_c (dims, ']');
  for (gsize i = 0; i < n; i++)
    g_byte_array_append (b->data, (const guint8 *) &value, sizeof value);
  g_string_append_printf (b->header, "%s\"%s\": {\"dtype\": \"F32\", \"shape\": %s, "
                          "\"data_offsets\": [%u, %u]}",
                          b->header->len > 1 ? ", " : "", name, dims->str, begin, b->data->len);
  g_string_free (dims, TRUE);
}

// conv weight [c_out, c_in, k, k] and its BatchNorm (running_var = var)
static void
add_conv_bn (Builder *b, const char *prefix, const char *conv, const char *bn, int c_in,
             int c_out, int k, float var)
{
  int shape[4] = { c_out, c_in, k, k };
  g_autofree char *weight = g_strconcat (prefix, conv, ".weight", NULL);
  add (b, weight, 0.01f, 4, shape);
  static const char *const fields[4] = { "weight", "bias", "running_mean", "running_var" };
  const float values[4] = { 1.0f, 0.0f, 0.0f, var };
  for (int f = 0; f < 4; f++)
    {
      g_autofree char *name = g_strconcat (prefix, bn, ".", fields[f], NULL);
      add (b, name, values[f], 1, &c_out);
    }
}

static void
add_stem (Builder *b, const char *prefix)
{
  add_conv_bn (b, prefix, "conv1", "bn1", 3, 64, 7, 1.0f);
}

// the bottleneck layer1.0 (64 -> 64 -> 64 -> 256), without its projection
static void
add_layer1_block0 (Builder *b, const char *prefix)
{
  g_autofree char *p = g_strconcat (prefix, "layer1.0.", NULL);
  add_conv_bn (b, p, "conv1", "bn1", 64, 64, 1, 1.0f);
  add_conv_bn (b, p, "conv2", "bn2", 64, 64, 3, 1.0f);
  add_conv_bn (b, p, "conv3", "bn3", 64, 256, 1, 1.0f);
}

static char *
builder_write (Builder *b, const char *file_name)
{
  g_string_append_c (b->header, '}');
  GByteArray *bytes = g_byte_array_new ();
  guint64 n_header = GUINT64_TO_LE ((guint64) b->header->len);
  g_byte_array_append (bytes, (const guint8 *) &n_header, 8);
  g_byte_array_append (bytes, (const guint8 *) b->header->str, (guint) b->header->len);
  g_byte_array_append (bytes, b->data->data, b->data->len);
  char *path = g_build_filename (tmp_dir, file_name, NULL);
  GError *error = NULL;
  g_file_set_contents (path, (const char *) bytes->data, bytes->len, &error);
  g_assert_no_error (error);
  g_byte_array_unref (bytes);
  g_byte_array_unref (b->data);
  g_string_free (b->header, TRUE);
  g_free (b);
  return path;
}

// loads the file with the prefix, expects failure with the code, and a
// message naming the file and containing every needle
static void
expect_error (Builder *b, const char *prefix, int code, const char *const *needles)
{
  g_autofree char *path = builder_write (b, "resnet.safetensors");
  GError *error = NULL;
  AgcWeights *weights = agc_weights_open (path, &error);
  g_assert_no_error (error);
  AgcResNet *net = agc_resnet_load (weights, prefix, &error);
  g_assert_null (net);
  g_assert_error (error, AGC_ERROR, code);
  g_test_message ("%s", error->message);
  if (strstr (error->message, "resnet.safetensors") == NULL)
    g_error ("message does not name the file: %s", error->message);
  for (int i = 0; needles[i] != NULL; i++)
    if (strstr (error->message, needles[i]) == NULL)
      g_error ("message lacks \"%s\": %s", needles[i], error->message);
  g_error_free (error);
  agc_weights_free (weights);
  g_remove (path);
}

static void
test_missing_batchnorm (void)
{
  Builder *b = builder_new ();
  add (b, "conv1.weight", 0.0f, 4, (int[]) { 64, 3, 7, 7 });
  expect_error (b, "", AGC_ERROR_MODEL,
                (const char *[]) { "missing tensor 'bn1.weight'", NULL });

  b = builder_new ();
  add_conv_bn (b, "", "conv1", "bn1", 3, 64, 7, 1.0f);
  add_layer1_block0 (b, "");
  // layer1.0 takes 64 channels and gives 256: it needs a projection
  expect_error (b, "", AGC_ERROR_MODEL,
                (const char *[]) { "missing tensor 'layer1.0.downsample.0.weight'", NULL });
}

static void
test_wrong_shapes (void)
{
  // a ResNet-18/34 stem is the same; its first block is a 3x3 BasicBlock
  Builder *b = builder_new ();
  add (b, "conv1.weight", 0.0f, 4, (int[]) { 64, 3, 3, 3 });
  expect_error (b, "", AGC_ERROR_MODEL,
                (const char *[]) { "'conv1.weight' has shape [64, 3, 3, 3], expected [64, 3, 7, 7]",
                                   NULL });

  b = builder_new ();
  add_stem (b, "");
  add_conv_bn (b, "layer1.0.", "conv1", "bn1", 64, 64, 3, 1.0f);
  expect_error (b, "", AGC_ERROR_MODEL,
                (const char *[]) { "'layer1.0.conv1.weight' has shape [64, 64, 3, 3], "
                                   "expected [64, 64, 1, 1]",
                                   NULL });

  // a BatchNorm of the wrong width
  b = builder_new ();
  add (b, "conv1.weight", 0.0f, 4, (int[]) { 64, 3, 7, 7 });
  add (b, "bn1.weight", 1.0f, 1, (int[]) { 32 });
  expect_error (b, "", AGC_ERROR_MODEL,
                (const char *[]) { "'bn1.weight' has shape [32], expected [64]", NULL });

  // Wide ResNet-50-2: the bottleneck is twice as wide
  b = builder_new ();
  add_stem (b, "");
  add_conv_bn (b, "layer1.0.", "conv1", "bn1", 64, 128, 1, 1.0f);
  expect_error (b, "", AGC_ERROR_MODEL,
                (const char *[]) { "'layer1.0.conv1.weight' has shape [128, 64, 1, 1]", NULL });
}

static void
test_negative_variance (void)
{
  Builder *b = builder_new ();
  add_conv_bn (b, "", "conv1", "bn1", 3, 64, 7, -0.5f);
  expect_error (b, "", AGC_ERROR_MODEL, (const char *[]) { "'bn1.running_var'", "-0.5", NULL });
}

static void
test_prefix_hint (void)
{
  // DINO saves the backbone inside wrappers: the message names the prefix
  Builder *b = builder_new ();
  add_stem (b, "module.backbone.");
  add_layer1_block0 (b, "module.backbone.");
  expect_error (b, "", AGC_ERROR_MODEL,
                (const char *[]) { "missing tensor 'conv1.weight'",
                                   "'module.backbone.conv1.weight'", "prefix 'module.backbone.'",
                                   NULL });

  b = builder_new ();
  add_stem (b, "teacher.backbone.");
  add_layer1_block0 (b, "teacher.backbone.");
  expect_error (b, "backbone.", AGC_ERROR_MODEL,
                (const char *[]) { "missing tensor 'backbone.conv1.weight'",
                                   "prefix 'teacher.backbone.'", NULL });

  // with the right prefix the stem loads and the error moves on
  b = builder_new ();
  add_stem (b, "backbone.");
  expect_error (b, "backbone.", AGC_ERROR_MODEL,
                (const char *[]) { "missing tensor 'backbone.layer1.0.conv1.weight'", NULL });

  // nothing that looks like a ResNet: the plain message
  b = builder_new ();
  add (b, "vision_model.pre_layrnorm.weight", 1.0f, 1, (int[]) { 8 });
  expect_error (b, "", AGC_ERROR_MODEL, (const char *[]) { "missing tensor 'conv1.weight'", NULL });
}

static void
test_deeper_resnet_refused (void)
{
  // ResNet-101 has 23 blocks in layer3: loading 6 of them would run a
  // different, wrong network
  Builder *b = builder_new ();
  add_stem (b, "");
  add (b, "layer3.6.conv1.weight", 0.0f, 4, (int[]) { 256, 1024, 1, 1 });
  expect_error (b, "", AGC_ERROR_UNSUPPORTED,
                (const char *[]) { "'layer3.6.conv1.weight'", "layer3", "ResNet-50", NULL });
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  tmp_dir = g_dir_make_tmp ("agc-resnet-XXXXXX", NULL);
  g_assert_nonnull (tmp_dir);
  g_test_add_func ("/resnet/missing-batchnorm", test_missing_batchnorm);
  g_test_add_func ("/resnet/wrong-shapes", test_wrong_shapes);
  g_test_add_func ("/resnet/negative-variance", test_negative_variance);
  g_test_add_func ("/resnet/prefix-hint", test_prefix_hint);
  g_test_add_func ("/resnet/deeper-resnet-refused", test_deeper_resnet_refused);
  int status = g_test_run ();
  g_rmdir (tmp_dir);
  g_free (tmp_dir);
  return status;
}
