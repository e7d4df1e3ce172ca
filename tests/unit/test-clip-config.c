/* test-clip-config.c — config.json and preprocessor_config.json as
 * transformers writes them: defaults for missing keys (the transformers
 * defaults listed in REFERENCE.md §2 and §4), overrides, both size forms, and
 * a clear refusal of everything else. */
#include "agriclip.h"
#include "models/clip-config.h"

#include <glib/gstdio.h>
#include <math.h>
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

static AgcClipConfig
load_config_ok (const char *json)
{
  g_autofree char *path = write_text ("config.json", json);
  AgcClipConfig config;
  GError *error = NULL;
  gboolean ok = agc_clip_config_load (path, &config, &error);
  g_assert_no_error (error);
  g_assert_true (ok);
  return config;
}

/* Loading fails with code, the message starts with the file and contains needle. */
static void
assert_config_fails (const char *json, int code, const char *needle)
{
  g_autofree char *path = write_text ("config.json", json);
  AgcClipConfig config;
  GError *error = NULL;
  g_assert_false (agc_clip_config_load (path, &config, &error));
  g_assert_error (error, AGC_ERROR, code);
  if (!g_str_has_prefix (error->message, path) || strstr (error->message, needle) == NULL)
    g_error ("message lacks the file or \"%s\": %s", needle, error->message);
  g_test_message ("%s", error->message);
  g_error_free (error);
}

/* transformers CLIPTextConfig / CLIPVisionConfig defaults (REFERENCE.md §2). */
static void
assert_text_defaults (const AgcTowerConfig *t)
{
  g_assert_cmpint (t->width, ==, 512);
  g_assert_cmpint (t->layers, ==, 12);
  g_assert_cmpint (t->heads, ==, 8);
  g_assert_cmpint (t->mlp_width, ==, 2048);
  g_assert_cmpint (t->context_length, ==, 77);
  g_assert_cmpint (t->vocab_size, ==, 49408);
  g_assert_cmpint (t->act, ==, AGC_ACT_QUICK_GELU);
  g_assert_cmpfloat (t->layer_norm_eps, ==, 1e-5f);
}

static void
test_defaults (void)
{
  AgcClipConfig c = load_config_ok ("{}");
  assert_text_defaults (&c.text);
  g_assert_cmpint (c.vision.width, ==, 768);
  g_assert_cmpint (c.vision.layers, ==, 12);
  g_assert_cmpint (c.vision.heads, ==, 12);
  g_assert_cmpint (c.vision.mlp_width, ==, 3072);
  g_assert_cmpint (c.vision.image_size, ==, 224);
  g_assert_cmpint (c.vision.patch_size, ==, 32);
  g_assert_cmpint (c.vision.act, ==, AGC_ACT_QUICK_GELU);
  g_assert_cmpfloat (c.vision.layer_norm_eps, ==, 1e-5f);
  g_assert_cmpint (c.projection_dim, ==, 512);

  // empty and null sections change nothing
  c = load_config_ok ("{\"model_type\": \"clip\", \"text_config\": {}, \"vision_config\": null,"
                      " \"text_config_dict\": null, \"architectures\": [\"CLIPModel\"]}");
  assert_text_defaults (&c.text);
  g_assert_cmpint (c.vision.patch_size, ==, 32);
}

/* Shaped like openai/clip-vit-large-patch14: sections that list only
 * overrides, plus keys we do not use. */
static void
test_overrides (void)
{
  AgcClipConfig c = load_config_ok (
    "{\"architectures\": [\"CLIPModel\"], \"initializer_factor\": 1.0,\n"
    " \"logit_scale_init_value\": 2.6592, \"model_type\": \"clip\", \"projection_dim\": 768,\n"
    " \"text_config\": {\"hidden_size\": 768, \"intermediate_size\": 3072,\n"
    "   \"num_attention_heads\": 12, \"projection_dim\": 768, \"dropout\": 0.0,\n"
    "   \"bos_token_id\": 0, \"eos_token_id\": 2},\n"
    " \"vision_config\": {\"hidden_size\": 1024, \"intermediate_size\": 4096,\n"
    "   \"num_attention_heads\": 16, \"num_hidden_layers\": 24, \"patch_size\": 14,\n"
    "   \"image_size\": 336, \"hidden_act\": \"gelu\", \"layer_norm_eps\": 1e-6},\n"
    " \"torch_dtype\": \"float32\", \"transformers_version\": null}");
  g_assert_cmpint (c.projection_dim, ==, 768);
  g_assert_cmpint (c.text.width, ==, 768);
  g_assert_cmpint (c.text.heads, ==, 12);
  g_assert_cmpint (c.text.mlp_width, ==, 3072);
  g_assert_cmpint (c.text.layers, ==, 12); // not listed: default
  g_assert_cmpint (c.text.context_length, ==, 77);
  g_assert_cmpint (c.text.act, ==, AGC_ACT_QUICK_GELU);
  g_assert_cmpint (c.vision.width, ==, 1024);
  g_assert_cmpint (c.vision.layers, ==, 24);
  g_assert_cmpint (c.vision.heads, ==, 16);
  g_assert_cmpint (c.vision.mlp_width, ==, 4096);
  g_assert_cmpint (c.vision.patch_size, ==, 14);
  g_assert_cmpint (c.vision.image_size, ==, 336);
  g_assert_cmpint (c.vision.act, ==, AGC_ACT_GELU);
  g_assert_cmpfloat (c.vision.layer_norm_eps, ==, 1e-6f);

  // *_config_dict wins over *_config, as in transformers
  c = load_config_ok ("{\"text_config\": {\"hidden_size\": 640, \"num_attention_heads\": 16},"
                      " \"text_config_dict\": {\"hidden_size\": 768,"
                      "                        \"max_position_embeddings\": 64},"
                      " \"vision_config_dict\": {\"patch_size\": 16, \"layer_norm_eps\": 0.001}}");
  g_assert_cmpint (c.text.width, ==, 768);
  g_assert_cmpint (c.text.heads, ==, 16);
  g_assert_cmpint (c.text.context_length, ==, 64);
  g_assert_cmpint (c.vision.patch_size, ==, 16);
  g_assert_cmpfloat (c.vision.layer_norm_eps, ==, 0.001f);
}

static void
test_config_errors (void)
{
  assert_config_fails ("{\"text_config\": {\"hidden_size\": 512,}}", AGC_ERROR_FORMAT,
                       "not valid JSON");
  assert_config_fails ("{\"text_config\": ", AGC_ERROR_FORMAT, "config.json");
  assert_config_fails ("", AGC_ERROR_FORMAT, "expected a JSON object");
  assert_config_fails ("[1, 2]", AGC_ERROR_FORMAT, "expected a JSON object");
  // types
  assert_config_fails ("{\"text_config\": {\"hidden_size\": \"512\"}}", AGC_ERROR_FORMAT,
                       "text_config.hidden_size is \"512\", expected an integer");
  assert_config_fails ("{\"vision_config\": {\"num_hidden_layers\": 12.0}}", AGC_ERROR_FORMAT,
                       "vision_config.num_hidden_layers is 12.0, expected an integer");
  assert_config_fails ("{\"vision_config\": {\"patch_size\": true}}", AGC_ERROR_FORMAT,
                       "vision_config.patch_size is true");
  assert_config_fails ("{\"projection_dim\": null}", AGC_ERROR_FORMAT,
                       "projection_dim is null, expected an integer");
  assert_config_fails ("{\"text_config\": [512]}", AGC_ERROR_FORMAT,
                       "text_config is an array, expected an object");
  assert_config_fails ("{\"text_config\": {\"layer_norm_eps\": \"1e-5\"}}", AGC_ERROR_FORMAT,
                       "text_config.layer_norm_eps");
  assert_config_fails ("{\"text_config\": {\"hidden_act\": 1}}", AGC_ERROR_FORMAT,
                       "text_config.hidden_act is 1, expected a string");
  // ranges
  assert_config_fails ("{\"text_config\": {\"num_hidden_layers\": 0}}", AGC_ERROR_FORMAT,
                       "text_config.num_hidden_layers is 0");
  assert_config_fails ("{\"vision_config\": {\"hidden_size\": -768}}", AGC_ERROR_FORMAT,
                       "vision_config.hidden_size is -768");
  assert_config_fails ("{\"text_config\": {\"vocab_size\": 4294967296}}", AGC_ERROR_FORMAT,
                       "text_config.vocab_size is 4294967296");
  assert_config_fails ("{\"text_config\": {\"layer_norm_eps\": 0}}", AGC_ERROR_FORMAT,
                       "text_config.layer_norm_eps is 0");
  // shapes that cannot be built
  assert_config_fails ("{\"text_config\": {\"hidden_size\": 500}}", AGC_ERROR_FORMAT,
                       "text_config.hidden_size 500 is not divisible by num_attention_heads 8");
  assert_config_fails ("{\"vision_config\": {\"image_size\": 224, \"patch_size\": 48}}",
                       AGC_ERROR_FORMAT,
                       "vision_config.image_size 224 is not divisible by patch_size 48");
  // well-formed, but not something we run
  assert_config_fails ("{\"text_config\": {\"hidden_act\": \"gelu_pytorch_tanh\"}}",
                       AGC_ERROR_UNSUPPORTED,
                       "text_config.hidden_act is \"gelu_pytorch_tanh\", "
                       "expected \"quick_gelu\" or \"gelu\"");
  assert_config_fails ("{\"vision_config_dict\": {\"hidden_act\": \"relu\"}}",
                       AGC_ERROR_UNSUPPORTED, "vision_config_dict.hidden_act is \"relu\"");
  assert_config_fails ("{\"model_type\": \"siglip\"}", AGC_ERROR_UNSUPPORTED,
                       "model_type is \"siglip\"");
  assert_config_fails ("{\"vision_config\": {\"num_channels\": 1}}", AGC_ERROR_UNSUPPORTED,
                       "num_channels is 1");

  GError *error = NULL;
  AgcClipConfig config;
  g_autofree char *missing = g_build_filename (tmp_dir, "missing", "config.json", NULL);
  g_assert_false (agc_clip_config_load (missing, &config, &error));
  g_assert_error (error, AGC_ERROR, AGC_ERROR_IO);
  g_assert_nonnull (strstr (error->message, missing));
  g_clear_error (&error);
}

/* ---- preprocessor_config.json -------------------------------------------------- */

static AgcPreprocess
load_pre_ok (const char *json, int image_size)
{
  g_autofree char *path = write_text ("preprocessor_config.json", json);
  AgcPreprocess pre;
  GError *error = NULL;
  gboolean ok = agc_preprocess_config_load (path, image_size, &pre, &error);
  g_assert_no_error (error);
  g_assert_true (ok);
  return pre;
}

static void
assert_pre_fails (const char *json, int image_size, int code, const char *needle)
{
  g_autofree char *path = write_text ("preprocessor_config.json", json);
  AgcPreprocess pre;
  GError *error = NULL;
  g_assert_false (agc_preprocess_config_load (path, image_size, &pre, &error));
  g_assert_error (error, AGC_ERROR, code);
  if (!g_str_has_prefix (error->message, path) || strstr (error->message, needle) == NULL)
    g_error ("message lacks the file or \"%s\": %s", needle, error->message);
  g_test_message ("%s", error->message);
  g_error_free (error);
}

/* CLIP's numbers from REFERENCE.md §4. */
static void
assert_clip_pre (const AgcPreprocess *pre, int size)
{
  const float mean[3] = { 0.48145466f, 0.4578275f, 0.40821073f };
  const float std[3] = { 0.26862954f, 0.26130258f, 0.27577711f };
  g_assert_cmpint (pre->shortest_edge, ==, size);
  g_assert_cmpint (pre->crop_width, ==, size);
  g_assert_cmpint (pre->crop_height, ==, size);
  g_assert_cmpint (pre->filter, ==, AGC_FILTER_BICUBIC);
  for (int c = 0; c < 3; c++)
    {
      g_assert_cmpfloat (pre->mean[c], ==, mean[c]);
      g_assert_cmpfloat (pre->std[c], ==, std[c]);
    }
}

static void
test_preprocess_forms (void)
{
  // the current form (openai/clip-vit-large-patch14-336)
  AgcPreprocess pre = load_pre_ok (
    "{\"crop_size\": {\"height\": 336, \"width\": 336}, \"do_center_crop\": true,\n"
    " \"do_convert_rgb\": true, \"do_normalize\": true, \"do_rescale\": true,\n"
    " \"do_resize\": true,\n"
    " \"image_mean\": [0.48145466, 0.4578275, 0.40821073],\n"
    " \"image_processor_type\": \"CLIPImageProcessor\",\n"
    " \"image_std\": [0.26862954, 0.26130258, 0.27577711], \"resample\": 3,\n"
    " \"rescale_factor\": 0.00392156862745098, \"size\": {\"shortest_edge\": 336}}", 336);
  assert_clip_pre (&pre, 336);

  // the older form with plain integers (CLIPFeatureExtractor)
  pre = load_pre_ok ("{\"crop_size\": 224, \"do_center_crop\": true, \"do_normalize\": true,\n"
                     " \"do_resize\": true, \"feature_extractor_type\": \"CLIPFeatureExtractor\",\n"
                     " \"image_mean\": [0.5, 0.5, 0.5], \"image_std\": [0.25, 0.5, 1],\n"
                     " \"resample\": 2, \"size\": 256}", 224);
  g_assert_cmpint (pre.shortest_edge, ==, 256);
  g_assert_cmpint (pre.crop_width, ==, 224);
  g_assert_cmpint (pre.crop_height, ==, 224);
  g_assert_cmpint (pre.filter, ==, AGC_FILTER_BILINEAR);
  g_assert_cmpfloat (pre.mean[1], ==, 0.5f);
  g_assert_cmpfloat (pre.std[0], ==, 0.25f);
  g_assert_cmpfloat (pre.std[2], ==, 1.0f);

  // missing keys take the CLIP values for the model's size
  pre = load_pre_ok ("{}", 224);
  assert_clip_pre (&pre, 224);

  // no file at all: the same
  g_autofree char *missing = g_build_filename (tmp_dir, "none.json", NULL);
  GError *error = NULL;
  g_assert_true (agc_preprocess_config_load (missing, 336, &pre, &error));
  g_assert_no_error (error);
  assert_clip_pre (&pre, 336);
}

/* transformers normalises (x * rescale_factor - mean) / std on 0..255 pixels
 * (without the parts switched off); the pipeline computes (x / 255 - mean') /
 * std'.  Both must agree on every pixel value. */
static void
assert_same_normalisation (const AgcPreprocess *pre, double rescale, const double *mean,
                           const double *std)
{
  for (int c = 0; c < 3; c++)
    for (int x = 0; x <= 255; x += 15)
      {
        double want = (x * rescale - mean[c]) / std[c];
        double got = ((float) x / 255.0f - pre->mean[c]) / pre->std[c];
        g_assert_cmpfloat_with_epsilon (got, want, 1e-5 * MAX (1.0, fabs (want)));
      }
}

static void
test_preprocess_switches (void)
{
  const double mean[3] = { 0.5, 0.25, 0.125 }, std[3] = { 0.5, 0.25, 2.0 };
  const double zero[3] = { 0, 0, 0 }, one[3] = { 1, 1, 1 };
  const char *values = "\"image_mean\": [0.5, 0.25, 0.125], \"image_std\": [0.5, 0.25, 2.0]";

  g_autofree char *plain = g_strdup_printf ("{%s}", values);
  AgcPreprocess pre = load_pre_ok (plain, 224);
  assert_same_normalisation (&pre, 1.0 / 255.0, mean, std);

  g_autofree char *no_norm = g_strdup_printf ("{%s, \"do_normalize\": false}", values);
  pre = load_pre_ok (no_norm, 224);
  assert_same_normalisation (&pre, 1.0 / 255.0, zero, one);

  g_autofree char *no_rescale = g_strdup_printf ("{%s, \"do_rescale\": false}", values);
  pre = load_pre_ok (no_rescale, 224);
  assert_same_normalisation (&pre, 1.0, mean, std);

  g_autofree char *factor = g_strdup_printf ("{%s, \"rescale_factor\": 0.00784313725490196}",
                                             values);
  pre = load_pre_ok (factor, 224);
  assert_same_normalisation (&pre, 2.0 / 255.0, mean, std);
}

static void
test_preprocess_errors (void)
{
  assert_pre_fails ("{\"size\": {\"height\": 224, \"width\": 224}}", 224, AGC_ERROR_UNSUPPORTED,
                    "size {\"height\", \"width\"}");
  assert_pre_fails ("{\"size\": {\"longest_edge\": 224}}", 224, AGC_ERROR_FORMAT,
                    "size is an object");
  assert_pre_fails ("{\"size\": \"224\"}", 224, AGC_ERROR_FORMAT, "size is \"224\"");
  assert_pre_fails ("{\"size\": {\"shortest_edge\": 0}}", 224, AGC_ERROR_FORMAT,
                    "size.shortest_edge is 0");
  assert_pre_fails ("{\"crop_size\": {\"height\": 224}}", 224, AGC_ERROR_FORMAT, "crop_size");
  assert_pre_fails ("{\"crop_size\": {\"height\": 224, \"width\": 224.5}}", 224, AGC_ERROR_FORMAT,
                    "crop_size.width is 224.5");
  assert_pre_fails ("{\"crop_size\": 336}", 224, AGC_ERROR_MODEL,
                    "crop_size 336x336 differs from the model's image_size 224");
  assert_pre_fails ("{\"crop_size\": {\"height\": 224, \"width\": 256}, \"size\": 256}", 224,
                    AGC_ERROR_MODEL, "crop_size 256x224");
  assert_pre_fails ("{\"size\": 200}", 224, AGC_ERROR_UNSUPPORTED, "size 200 is smaller");
  assert_pre_fails ("{\"resample\": 1}", 224, AGC_ERROR_UNSUPPORTED,
                    "resample is 1, expected 2 (bilinear) or 3 (bicubic)");
  assert_pre_fails ("{\"resample\": \"bicubic\"}", 224, AGC_ERROR_FORMAT,
                    "resample is \"bicubic\"");
  assert_pre_fails ("{\"image_mean\": [0.5, 0.5]}", 224, AGC_ERROR_FORMAT,
                    "image_mean is an array");
  assert_pre_fails ("{\"image_mean\": 0.5}", 224, AGC_ERROR_FORMAT, "image_mean is 0.5");
  assert_pre_fails ("{\"image_std\": [0.5, 0, 0.5]}", 224, AGC_ERROR_FORMAT,
                    "expected 3 positive numbers");
  assert_pre_fails ("{\"image_std\": [0.5, \"x\", 0.5]}", 224, AGC_ERROR_FORMAT, "image_std");
  assert_pre_fails ("{\"do_resize\": false}", 224, AGC_ERROR_UNSUPPORTED, "do_resize false");
  assert_pre_fails ("{\"do_center_crop\": false}", 224, AGC_ERROR_UNSUPPORTED,
                    "do_center_crop false");
  assert_pre_fails ("{\"do_normalize\": 0}", 224, AGC_ERROR_FORMAT,
                    "do_normalize is 0, expected true or false");
  assert_pre_fails ("{\"rescale_factor\": 0}", 224, AGC_ERROR_FORMAT, "rescale_factor is 0");
  assert_pre_fails ("{\"size\": 224,}", 224, AGC_ERROR_FORMAT, "preprocessor_config.json");
  assert_pre_fails ("[]", 224, AGC_ERROR_FORMAT, "expected a JSON object");
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  GError *error = NULL;
  tmp_dir = g_dir_make_tmp ("agc-clip-config-XXXXXX", &error);
  g_assert_no_error (error);

  g_test_add_func ("/clip-config/defaults", test_defaults);
  g_test_add_func ("/clip-config/overrides", test_overrides);
  g_test_add_func ("/clip-config/errors", test_config_errors);
  g_test_add_func ("/clip-config/preprocess-forms", test_preprocess_forms);
  g_test_add_func ("/clip-config/preprocess-switches", test_preprocess_switches);
  g_test_add_func ("/clip-config/preprocess-errors", test_preprocess_errors);
  int result = g_test_run ();

  const char *names[] = { "config.json", "preprocessor_config.json" };
  for (size_t i = 0; i < G_N_ELEMENTS (names); i++)
    {
      g_autofree char *path = g_build_filename (tmp_dir, names[i], NULL);
      g_remove (path);
    }
  g_rmdir (tmp_dir);
  g_free (tmp_dir);
  return result;
}
