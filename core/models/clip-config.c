/* clip-config.c — CLIP hyper-parameters from a Hugging Face config.json and
 * preprocessing from preprocessor_config.json.
 *
 * transformers writes only the values that differ from its defaults, so a
 * missing key means "the CLIPTextConfig / CLIPVisionConfig default", and old
 * files repeat overrides in text_config_dict / vision_config_dict, which win
 * over text_config / vision_config as in transformers. */
#include "models/clip-config.h"
#include "support/json-file.h"

#include "support/json-check.h"
#include <math.h>
#include <string.h>

// sizes larger than this are not a CLIP, and keep products of two sizes far from overflow
#define MAX_SIZE (1 << 20)
#define MAX_IMAGE_SIZE 16384

static const AgcTowerConfig text_defaults = {
  .width = 512, .layers = 12, .heads = 8, .mlp_width = 2048, .layer_norm_eps = 1e-5f,
  .act = AGC_ACT_QUICK_GELU, .vocab_size = 49408, .context_length = 77,
};

static const AgcTowerConfig vision_defaults = {
  .width = 768, .layers = 12, .heads = 12, .mlp_width = 3072, .layer_norm_eps = 1e-5f,
  .act = AGC_ACT_QUICK_GELU, .image_size = 224, .patch_size = 32,
};

/* Messages read "path: <section><key> is <value>, expected <what>" (json-check.h). */

/* Leaves *value alone when key is absent. */
static gboolean
read_int (int *value, JsonObject *object, const char *key, int max, const char *path,
          const char *section, GError **error)
{
  JsonNode *node = json_object_get_member (object, key);
  if (node == NULL)
    return TRUE;
  if (!agc_json_is_value_of (node, G_TYPE_INT64))
    return agc_json_wrong_value (error, AGC_ERROR_FORMAT, path, section, key, node, "an integer");
  gint64 v = json_node_get_int (node);
  if (v < 1 || v > max)
    {
      g_autofree char *expected = g_strdup_printf ("an integer from 1 to %d", max);
      return agc_json_wrong_value (error, AGC_ERROR_FORMAT, path, section, key, node, expected);
    }
  *value = (int) v;
  return TRUE;
}

static gboolean
read_bool (gboolean *value, JsonObject *object, const char *key, const char *path,
           GError **error)
{
  JsonNode *node = json_object_get_member (object, key);
  if (node == NULL)
    return TRUE;
  if (!agc_json_is_value_of (node, G_TYPE_BOOLEAN))
    return agc_json_wrong_value (error, AGC_ERROR_FORMAT, path, "", key, node, "true or false");
  *value = json_node_get_boolean (node);
  return TRUE;
}

/* Parses a JSON file whose root must be an object; *parser owns the result. */
static JsonObject *
load_object (JsonParser **parser, const char *path, const char *display, GError **error)
{
  *parser = json_parser_new ();
  if (!agc_json_parse_file (*parser, path, display, error))
    return NULL;
  JsonNode *root = json_parser_get_root (*parser);
  if (root == NULL || !JSON_NODE_HOLDS_OBJECT (root))
    {
      g_set_error (error, AGC_ERROR, AGC_ERROR_FORMAT, "%s: expected a JSON object", display);
      return NULL;
    }
  return json_node_get_object (root);
}

/* ---- config.json -------------------------------------------------------------- */

static gboolean
read_tower (AgcTowerConfig *tower, JsonObject *object, gboolean is_vision, const char *path,
            const char *section, GError **error)
{
  if (!read_int (&tower->width, object, "hidden_size", MAX_SIZE, path, section, error)
      || !read_int (&tower->layers, object, "num_hidden_layers", MAX_SIZE, path, section, error)
      || !read_int (&tower->heads, object, "num_attention_heads", MAX_SIZE, path, section, error)
      || !read_int (&tower->mlp_width, object, "intermediate_size", MAX_SIZE, path, section,
                    error))
    return FALSE;
  if (is_vision)
    {
      int n_channels = 3;
      if (!read_int (&tower->image_size, object, "image_size", MAX_IMAGE_SIZE, path, section,
                     error)
          || !read_int (&tower->patch_size, object, "patch_size", MAX_IMAGE_SIZE, path, section,
                        error)
          || !read_int (&n_channels, object, "num_channels", MAX_SIZE, path, section, error))
        return FALSE;
      if (n_channels != 3)
        {
          g_set_error (error, AGC_ERROR, AGC_ERROR_UNSUPPORTED,
                       "%s: %snum_channels is %d, only RGB (3) is supported", path, section,
                       n_channels);
          return FALSE;
        }
    }
  else if (!read_int (&tower->vocab_size, object, "vocab_size", MAX_SIZE, path, section, error)
           || !read_int (&tower->context_length, object, "max_position_embeddings", MAX_SIZE,
                         path, section, error))
    return FALSE;

  JsonNode *eps = json_object_get_member (object, "layer_norm_eps");
  if (eps != NULL)
    {
      double v = agc_json_is_number (eps) ? json_node_get_double (eps) : -1.0;
      if (!(v > 0.0 && v < 1.0))
        return agc_json_wrong_value (error, AGC_ERROR_FORMAT, path, section, "layer_norm_eps", eps,
                            "a number between 0 and 1");
      tower->layer_norm_eps = (float) v;
    }

  JsonNode *act = json_object_get_member (object, "hidden_act");
  if (act != NULL)
    {
      if (!agc_json_is_value_of (act, G_TYPE_STRING))
        return agc_json_wrong_value (error, AGC_ERROR_FORMAT, path, section, "hidden_act", act,
                            "a string");
      const char *name = json_node_get_string (act);
      if (g_strcmp0 (name, "quick_gelu") == 0)
        tower->act = AGC_ACT_QUICK_GELU;
      else if (g_strcmp0 (name, "gelu") == 0) // transformers' "gelu" is the exact erf form
        tower->act = AGC_ACT_GELU;
      else
        return agc_json_wrong_value (error, AGC_ERROR_UNSUPPORTED, path, section, "hidden_act", act,
                            "\"quick_gelu\" or \"gelu\"");
    }
  return TRUE;
}

/* Applies object[key] (absent or null: nothing) on top of *tower. */
static gboolean
apply_section (AgcTowerConfig *tower, JsonObject *root, const char *key, gboolean is_vision,
               const char *path, GError **error)
{
  JsonNode *node = json_object_get_member (root, key);
  if (node == NULL || JSON_NODE_HOLDS_NULL (node))
    return TRUE;
  if (!JSON_NODE_HOLDS_OBJECT (node))
    return agc_json_wrong_value (error, AGC_ERROR_FORMAT, path, "", key, node, "an object");
  g_autofree char *section = g_strconcat (key, ".", NULL);
  return read_tower (tower, json_node_get_object (node), is_vision, path, section, error);
}

static gboolean
check_tower (const AgcTowerConfig *tower, gboolean is_vision, const char *path, GError **error)
{
  const char *section = is_vision ? "vision_config" : "text_config";
  if (tower->width % tower->heads != 0)
    {
      g_set_error (error, AGC_ERROR, AGC_ERROR_FORMAT,
                   "%s: %s.hidden_size %d is not divisible by num_attention_heads %d", path,
                   section, tower->width, tower->heads);
      return FALSE;
    }
  if (is_vision && tower->image_size % tower->patch_size != 0)
    {
      g_set_error (error, AGC_ERROR, AGC_ERROR_FORMAT,
                   "%s: %s.image_size %d is not divisible by patch_size %d", path, section,
                   tower->image_size, tower->patch_size);
      return FALSE;
    }
  return TRUE;
}

gboolean
agc_clip_config_load (const char *config_json_path, AgcClipConfig *config, GError **error)
{
  g_return_val_if_fail (config_json_path != NULL && config != NULL, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  g_autofree char *path = g_filename_display_name (config_json_path);
  g_autoptr (JsonParser) parser = NULL;
  JsonObject *root = load_object (&parser, config_json_path, path, error);
  if (root == NULL)
    return FALSE;

  JsonNode *model_type = json_object_get_member (root, "model_type");
  if (model_type != NULL
      && !(agc_json_is_value_of (model_type, G_TYPE_STRING)
           && g_strcmp0 (json_node_get_string (model_type), "clip") == 0))
    return agc_json_wrong_value (error, AGC_ERROR_UNSUPPORTED, path, "", "model_type", model_type,
                        "\"clip\"");

  AgcClipConfig c = { .text = text_defaults, .vision = vision_defaults, .projection_dim = 512 };
  if (!read_int (&c.projection_dim, root, "projection_dim", MAX_SIZE, path, "", error)
      || !apply_section (&c.text, root, "text_config", FALSE, path, error)
      || !apply_section (&c.text, root, "text_config_dict", FALSE, path, error)
      || !apply_section (&c.vision, root, "vision_config", TRUE, path, error)
      || !apply_section (&c.vision, root, "vision_config_dict", TRUE, path, error)
      || !check_tower (&c.text, FALSE, path, error) || !check_tower (&c.vision, TRUE, path, error))
    return FALSE;
  *config = c;
  return TRUE;
}

/* ---- preprocessor_config.json ------------------------------------------------- */

/* "crop_size": 224 or {"height": 224, "width": 224}. */
static gboolean
read_crop (AgcPreprocess *pre, JsonObject *root, const char *path, GError **error)
{
  JsonNode *node = json_object_get_member (root, "crop_size");
  if (node == NULL)
    return TRUE;
  if (agc_json_is_value_of (node, G_TYPE_INT64))
    {
      if (!read_int (&pre->crop_width, root, "crop_size", MAX_IMAGE_SIZE, path, "", error))
        return FALSE;
      pre->crop_height = pre->crop_width;
      return TRUE;
    }
  if (!JSON_NODE_HOLDS_OBJECT (node))
    return agc_json_wrong_value (error, AGC_ERROR_FORMAT, path, "", "crop_size", node,
                        "an integer or {\"height\", \"width\"}");
  JsonObject *object = json_node_get_object (node);
  if (!json_object_has_member (object, "height") || !json_object_has_member (object, "width"))
    return agc_json_wrong_value (error, AGC_ERROR_FORMAT, path, "", "crop_size", node,
                        "{\"height\", \"width\"}");
  return read_int (&pre->crop_height, object, "height", MAX_IMAGE_SIZE, path, "crop_size.", error)
         && read_int (&pre->crop_width, object, "width", MAX_IMAGE_SIZE, path, "crop_size.",
                      error);
}

/* "size": 224 (older files) or {"shortest_edge": 224}.  {"height", "width"}
 * asks for a resize that ignores the aspect ratio, which the pipeline in
 * preprocess.h cannot do. */
static gboolean
read_size (AgcPreprocess *pre, JsonObject *root, const char *path, GError **error)
{
  JsonNode *node = json_object_get_member (root, "size");
  if (node == NULL)
    return TRUE;
  if (agc_json_is_value_of (node, G_TYPE_INT64))
    return read_int (&pre->shortest_edge, root, "size", MAX_IMAGE_SIZE, path, "", error);
  if (!JSON_NODE_HOLDS_OBJECT (node))
    return agc_json_wrong_value (error, AGC_ERROR_FORMAT, path, "", "size", node,
                        "an integer or {\"shortest_edge\"}");
  JsonObject *object = json_node_get_object (node);
  if (json_object_has_member (object, "shortest_edge"))
    return read_int (&pre->shortest_edge, object, "shortest_edge", MAX_IMAGE_SIZE, path,
                     "size.", error);
  if (json_object_has_member (object, "height") || json_object_has_member (object, "width"))
    {
      g_set_error (error, AGC_ERROR, AGC_ERROR_UNSUPPORTED,
                   "%s: size {\"height\", \"width\"} (resizing without keeping the aspect "
                   "ratio) is not supported, only {\"shortest_edge\"}", path);
      return FALSE;
    }
  return agc_json_wrong_value (error, AGC_ERROR_FORMAT, path, "", "size", node, "{\"shortest_edge\"}");
}

static gboolean
read_triple (float *out, JsonObject *root, const char *key, gboolean positive, const char *path,
             GError **error)
{
  JsonNode *node = json_object_get_member (root, key);
  if (node == NULL)
    return TRUE;
  JsonArray *array = JSON_NODE_HOLDS_ARRAY (node) ? json_node_get_array (node) : NULL;
  gboolean ok = array != NULL && json_array_get_length (array) == 3;
  for (guint c = 0; ok && c < 3; c++)
    {
      JsonNode *element = json_array_get_element (array, c);
      double v = agc_json_is_number (element) ? json_node_get_double (element) : NAN;
      ok = isfinite (v) && (!positive || v > 0.0);
      out[c] = (float) v;
    }
  if (!ok)
    return agc_json_wrong_value (error, AGC_ERROR_FORMAT, path, "", key, node,
                        positive ? "3 positive numbers" : "3 numbers");
  return TRUE;
}

gboolean
agc_preprocess_config_load (const char *path, int image_size, AgcPreprocess *pre,
                            GError **error)
{
  g_return_val_if_fail (path != NULL && pre != NULL && image_size > 0, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  AgcPreprocess p = agc_preprocess_clip_defaults (image_size);
  if (!g_file_test (path, G_FILE_TEST_EXISTS))
    {
      *pre = p;
      return TRUE;
    }
  g_autofree char *display = g_filename_display_name (path);
  g_autoptr (JsonParser) parser = NULL;
  JsonObject *root = load_object (&parser, path, display, error);
  if (root == NULL)
    return FALSE;

  gboolean do_resize = TRUE, do_center_crop = TRUE, do_normalize = TRUE, do_rescale = TRUE;
  if (!read_bool (&do_resize, root, "do_resize", display, error)
      || !read_bool (&do_center_crop, root, "do_center_crop", display, error)
      || !read_bool (&do_normalize, root, "do_normalize", display, error)
      || !read_bool (&do_rescale, root, "do_rescale", display, error))
    return FALSE;
  // the pipeline always resizes and crops; without either, the model input
  // would not be a fixed square
  if (!do_resize || !do_center_crop)
    {
      g_set_error (error, AGC_ERROR, AGC_ERROR_UNSUPPORTED, "%s: %s false is not supported",
                   display, !do_resize ? "do_resize" : "do_center_crop");
      return FALSE;
    }
  if (!read_size (&p, root, display, error) || !read_crop (&p, root, display, error)
      || !read_triple (p.mean, root, "image_mean", FALSE, display, error)
      || !read_triple (p.std, root, "image_std", TRUE, display, error))
    return FALSE;

  JsonNode *resample = json_object_get_member (root, "resample");
  if (resample != NULL)
    {
      if (!agc_json_is_value_of (resample, G_TYPE_INT64))
        return agc_json_wrong_value (error, AGC_ERROR_FORMAT, display, "", "resample", resample,
                            "an integer");
      if (json_node_get_int (resample) == 2)
        p.filter = AGC_FILTER_BILINEAR;
      else if (json_node_get_int (resample) == 3)
        p.filter = AGC_FILTER_BICUBIC;
      else
        return agc_json_wrong_value (error, AGC_ERROR_UNSUPPORTED, display, "", "resample", resample,
                            "2 (bilinear) or 3 (bicubic)");
    }

  // transformers computes (x * rescale_factor - mean) / std; the pipeline
  // computes (x / 255 - mean') / std'.  With k = rescale_factor * 255 these
  // agree for mean' = mean / k, std' = std / k.
  double rescale_factor = 1.0 / 255.0;
  JsonNode *factor = json_object_get_member (root, "rescale_factor");
  if (factor != NULL)
    {
      rescale_factor = agc_json_is_number (factor) ? json_node_get_double (factor) : -1.0;
      if (!(rescale_factor > 0.0 && isfinite (rescale_factor)))
        return agc_json_wrong_value (error, AGC_ERROR_FORMAT, display, "", "rescale_factor", factor,
                            "a positive number");
    }
  double k = do_rescale ? rescale_factor * 255.0 : 255.0;
  if (fabs (k - 1.0) < 1e-9) // 1/255 written in decimal
    k = 1.0;
  for (int c = 0; c < 3; c++)
    {
      double mean = do_normalize ? p.mean[c] : 0.0, std = do_normalize ? p.std[c] : 1.0;
      p.mean[c] = (float) (mean / k);
      p.std[c] = (float) (std / k);
    }

  if (p.crop_width != image_size || p.crop_height != image_size)
    {
      g_set_error (error, AGC_ERROR, AGC_ERROR_MODEL,
                   "%s: crop_size %dx%d differs from the model's image_size %d", display,
                   p.crop_width, p.crop_height, image_size);
      return FALSE;
    }
  if (p.shortest_edge < image_size)
    {
      g_set_error (error, AGC_ERROR, AGC_ERROR_UNSUPPORTED,
                   "%s: size %d is smaller than crop_size %d (padding is not supported)",
                   display, p.shortest_edge, image_size);
      return FALSE;
    }
  *pre = p;
  return TRUE;
}
