/* open-clip-config.c — CLIP hyper-parameters and preprocessing from
 * open_clip's open_clip_config.json.
 *
 * open_clip builds a model from model_cfg with its dataclass defaults for
 * what the file leaves out, so a missing key means that default.  Options
 * that change the architecture away from a plain ViT CLIP are refused by
 * name rather than ignored: running without them gives wrong embeddings. */
#include "models/open-clip-config.h"
#include "support/json-file.h"

#include "support/json-check.h"
#include <math.h>
#include <string.h>

// larger sizes are not a CLIP, and keep products of two sizes far from overflow
#define MAX_SIZE (1 << 20)

/* Messages read "path: <section><key> is <value>, expected <what>" (json-check.h). */

/* Absent, null, false, "", an empty object or array: the option is off. */
static gboolean
is_unset (JsonNode *node)
{
  if (node == NULL || JSON_NODE_HOLDS_NULL (node))
    return TRUE;
  if (JSON_NODE_HOLDS_OBJECT (node))
    return json_object_get_size (json_node_get_object (node)) == 0;
  if (JSON_NODE_HOLDS_ARRAY (node))
    return json_array_get_length (json_node_get_array (node)) == 0;
  if (agc_json_is_value_of (node, G_TYPE_BOOLEAN))
    return !json_node_get_boolean (node);
  return agc_json_is_value_of (node, G_TYPE_STRING) && json_node_get_string (node)[0] == '\0';
}

/* n, or [n, n] (open_clip's to_2tuple forms); absent leaves *value alone. */
static gboolean
read_size (int *value, JsonObject *o, const char *key, gboolean pair_ok, const char *path,
           const char *section, GError **error)
{
  JsonNode *node = json_object_get_member (o, key);
  if (node == NULL)
    return TRUE;
  JsonNode *first = node, *second = node;
  JsonArray *pair = pair_ok && JSON_NODE_HOLDS_ARRAY (node) ? json_node_get_array (node) : NULL;
  if (pair != NULL && json_array_get_length (pair) == 2)
    {
      first = json_array_get_element (pair, 0);
      second = json_array_get_element (pair, 1);
    }
  gboolean ok = agc_json_is_value_of (first, G_TYPE_INT64) && agc_json_is_value_of (second, G_TYPE_INT64);
  gint64 a = ok ? json_node_get_int (first) : 0, b = ok ? json_node_get_int (second) : 0;
  if (!ok || a < 1 || a > MAX_SIZE || b < 1 || b > MAX_SIZE)
    return agc_json_wrong_value (error, AGC_ERROR_FORMAT, path, section, key, node,
                        pair_ok ? "an integer from 1 to 1048576, or two equal ones"
                                : "an integer from 1 to 1048576");
  if (a != b)
    return agc_json_wrong_value (error, AGC_ERROR_UNSUPPORTED, path, section, key, node,
                        "a square size (only square images are supported)");
  *value = (int) a;
  return TRUE;
}

static gboolean
read_positive (double *value, JsonObject *o, const char *key, const char *path,
               const char *section, GError **error)
{
  JsonNode *node = json_object_get_member (o, key);
  if (node == NULL)
    return TRUE;
  double v = agc_json_is_number (node) ? json_node_get_double (node) : NAN;
  if (!(v > 0.0 && v < MAX_SIZE))
    return agc_json_wrong_value (error, AGC_ERROR_FORMAT, path, section, key, node, "a positive number");
  *value = v;
  return TRUE;
}

/* A string option; absent or null leaves *value alone. */
static gboolean
read_string (const char **value, JsonObject *o, const char *key, const char *path,
             const char *section, GError **error)
{
  JsonNode *node = json_object_get_member (o, key);
  if (node == NULL || JSON_NODE_HOLDS_NULL (node))
    return TRUE;
  if (!agc_json_is_value_of (node, G_TYPE_STRING))
    return agc_json_wrong_value (error, AGC_ERROR_FORMAT, path, section, key, node, "a string");
  *value = json_node_get_string (node);
  return TRUE;
}

typedef struct
{
  const char *key;
  const char *what; /* what the option asks for, in the message */
} Refused;

static gboolean
refuse_set (const Refused *refused, size_t n, JsonObject *o, const char *path,
            const char *section, GError **error)
{
  for (size_t i = 0; i < n; i++)
    {
      JsonNode *node = json_object_get_member (o, refused[i].key);
      if (is_unset (node))
        continue;
      g_autofree char *got = agc_json_describe (node);
      g_set_error (error, AGC_ERROR, AGC_ERROR_UNSUPPORTED, "%s: %s%s is %s: %s is not supported",
                   path, section, refused[i].key, got, refused[i].what);
      return FALSE;
    }
  return TRUE;
}

/* key must be absent, null or the one value the towers implement. */
static gboolean
require_string (JsonObject *o, const char *key, const char *only, const char *path,
                const char *section, GError **error)
{
  const char *value = only;
  if (!read_string (&value, o, key, path, section, error))
    return FALSE;
  if (strcmp (value, only) == 0)
    return TRUE;
  g_autofree char *expected = g_strdup_printf ("\"%s\" (the only one supported)", only);
  return agc_json_wrong_value (error, AGC_ERROR_UNSUPPORTED, path, section, key,
                      json_object_get_member (o, key), expected);
}

static const Refused vision_refused[] = {
  { "timm_model_name", "a timm image tower" },
  { "hf_model_name", "a Hugging Face image tower" },
  { "dino_model_name", "a DINO image tower" },
  { "eva_model_name", "an EVA image tower" },
  { "attentional_pool", "attentional pooling" },
  { "global_average_pool", "average pooling of the patch tokens" },
  { "no_ln_pre", "a tower without ln_pre" },
  { "input_patchnorm", "patch normalisation" },
  { "ls_init_value", "layer scale" },
  { "act_kwargs", "an activation with options" },
  { "norm_kwargs", "a layer norm with options" },
};

static const Refused text_refused[] = {
  { "hf_model_name", "a Hugging Face text tower" },
  { "hf_tokenizer_name", "a tokenizer other than CLIP's BPE" },
  { "ls_init_value", "layer scale" },
  { "embed_cls", "a class token in the text tower" },
  { "no_causal_mask", "a text tower without the causal mask" },
  { "proj_bias", "a text projection with a bias" },
  { "act_kwargs", "an activation with options" },
  { "norm_kwargs", "a layer norm with options" },
};

static const Refused model_refused[] = {
  { "multimodal_cfg", "a CoCa text decoder" },
  { "init_logit_bias", "a logit bias (SigLIP)" },
};

static JsonObject *
get_object (JsonObject *o, const char *key, const char *path, const char *section,
            gboolean *bad, GError **error)
{
  JsonNode *node = json_object_get_member (o, key);
  *bad = FALSE;
  if (node == NULL || JSON_NODE_HOLDS_NULL (node))
    return NULL;
  if (!JSON_NODE_HOLDS_OBJECT (node))
    {
      *bad = TRUE;
      agc_json_wrong_value (error, AGC_ERROR_FORMAT, path, section, key, node, "an object");
      return NULL;
    }
  return json_node_get_object (node);
}

static gboolean
check_heads (const AgcTowerConfig *c, const char *path, const char *section, const char *heads_key,
             int heads_value, GError **error)
{
  if (c->width % heads_value == 0)
    return TRUE;
  g_set_error (error, AGC_ERROR, AGC_ERROR_FORMAT, "%s: %swidth %d is not divisible by %s %d",
               path, section, c->width, heads_key, heads_value);
  return FALSE;
}

static gboolean
read_vision (AgcTowerConfig *v, JsonObject *o, const char *path, GError **error)
{
  const char *section = "model_cfg.vision_cfg.";
  JsonNode *layers = json_object_get_member (o, "layers");
  if (layers != NULL && JSON_NODE_HOLDS_ARRAY (layers))
    return agc_json_wrong_value (error, AGC_ERROR_UNSUPPORTED, path, section, "layers", layers,
                        "an integer (a list means a ResNet image tower, which is not supported)");
  int head_width = 64;
  double mlp_ratio = 4.0;
  if (!refuse_set (vision_refused, G_N_ELEMENTS (vision_refused), o, path, section, error)
      || !require_string (o, "pool_type", "tok", path, section, error)
      || !require_string (o, "pos_embed_type", "learnable", path, section, error)
      || !read_size (&v->layers, o, "layers", FALSE, path, section, error)
      || !read_size (&v->width, o, "width", FALSE, path, section, error)
      || !read_size (&head_width, o, "head_width", FALSE, path, section, error)
      || !read_positive (&mlp_ratio, o, "mlp_ratio", path, section, error)
      || !read_size (&v->patch_size, o, "patch_size", TRUE, path, section, error)
      || !read_size (&v->image_size, o, "image_size", TRUE, path, section, error)
      || !check_heads (v, path, section, "head_width", head_width, error))
    return FALSE;
  v->heads = v->width / head_width;
  v->mlp_width = (int) (v->width * mlp_ratio); // int() in open_clip truncates too
  if (v->image_size % v->patch_size != 0)
    {
      g_set_error (error, AGC_ERROR, AGC_ERROR_FORMAT,
                   "%s: %simage_size %d is not divisible by patch_size %d", path, section,
                   v->image_size, v->patch_size);
      return FALSE;
    }
  return TRUE;
}

static gboolean
read_text (AgcTowerConfig *t, JsonObject *o, const char *path, GError **error)
{
  const char *section = "model_cfg.text_cfg.";
  double mlp_ratio = 4.0;
  if (!refuse_set (text_refused, G_N_ELEMENTS (text_refused), o, path, section, error)
      || !require_string (o, "pool_type", "argmax", path, section, error)
      || !require_string (o, "proj_type", "linear", path, section, error)
      || !read_size (&t->context_length, o, "context_length", FALSE, path, section, error)
      || !read_size (&t->vocab_size, o, "vocab_size", FALSE, path, section, error)
      || !read_size (&t->width, o, "width", FALSE, path, section, error)
      || !read_size (&t->heads, o, "heads", FALSE, path, section, error)
      || !read_size (&t->layers, o, "layers", FALSE, path, section, error)
      || !read_positive (&mlp_ratio, o, "mlp_ratio", path, section, error)
      || !check_heads (t, path, section, "heads", t->heads, error))
    return FALSE;
  t->mlp_width = (int) (t->width * mlp_ratio);
  return TRUE;
}

/* mean / std: 3 numbers, or one for all channels (open_clip accepts both). */
static gboolean
read_triple (float *out, JsonObject *o, const char *key, gboolean positive, const char *path,
             GError **error)
{
  const char *section = "preprocess_cfg.";
  JsonNode *node = json_object_get_member (o, key);
  if (node == NULL || JSON_NODE_HOLDS_NULL (node))
    return TRUE;
  JsonArray *array = JSON_NODE_HOLDS_ARRAY (node) ? json_node_get_array (node) : NULL;
  gboolean ok = array == NULL ? agc_json_is_number (node) : json_array_get_length (array) == 3;
  for (guint c = 0; ok && c < 3; c++)
    {
      JsonNode *element = array != NULL ? json_array_get_element (array, c) : node;
      double v = agc_json_is_number (element) ? json_node_get_double (element) : NAN;
      ok = isfinite (v) && (!positive || v > 0.0);
      out[c] = (float) v;
    }
  if (!ok)
    return agc_json_wrong_value (error, AGC_ERROR_FORMAT, path, section, key, node,
                        positive ? "3 positive numbers" : "3 numbers");
  return TRUE;
}

static gboolean
read_preprocess (AgcPreprocess *pre, JsonObject *o, int image_size, const char *path,
                 GError **error)
{
  const char *section = "preprocess_cfg.";
  AgcPreprocess p = agc_preprocess_clip_defaults (image_size);
  int size = image_size;
  const char *interpolation = "bicubic";
  if (o != NULL
      && (!read_size (&size, o, "size", TRUE, path, section, error)
          || !require_string (o, "mode", "RGB", path, section, error)
          || !require_string (o, "resize_mode", "shortest", path, section, error)
          || !read_string (&interpolation, o, "interpolation", path, section, error)
          || !read_triple (p.mean, o, "mean", FALSE, path, error)
          || !read_triple (p.std, o, "std", TRUE, path, error)))
    return FALSE;
  // "random" only applies to training; open_clip evaluates it as bicubic
  if (strcmp (interpolation, "bilinear") == 0)
    p.filter = AGC_FILTER_BILINEAR;
  else if (strcmp (interpolation, "bicubic") != 0 && strcmp (interpolation, "random") != 0)
    return agc_json_wrong_value (error, AGC_ERROR_UNSUPPORTED, path, section, "interpolation",
                        json_object_get_member (o, "interpolation"),
                        "\"bicubic\" or \"bilinear\"");
  if (size != image_size)
    {
      g_set_error (error, AGC_ERROR, AGC_ERROR_MODEL,
                   "%s: preprocess_cfg.size %d differs from the model's image_size %d", path, size,
                   image_size);
      return FALSE;
    }
  *pre = p;
  return TRUE;
}

gboolean
agc_open_clip_config_load (const char *path, AgcClipConfig *config, AgcPreprocess *pre,
                           GError **error)
{
  g_return_val_if_fail (path != NULL && config != NULL && pre != NULL, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  g_autofree char *display = g_filename_display_name (path);
  g_autoptr (JsonParser) parser = json_parser_new ();
  if (!agc_json_parse_file (parser, path, display, error))
    return FALSE;
  JsonNode *root_node = json_parser_get_root (parser);
  JsonObject *root = root_node != NULL && JSON_NODE_HOLDS_OBJECT (root_node)
                         ? json_node_get_object (root_node) : NULL;
  gboolean bad = FALSE;
  JsonObject *model
    = root != NULL ? get_object (root, "model_cfg", display, "", &bad, error) : NULL;
  if (bad)
    return FALSE;
  if (model == NULL && root != NULL && json_object_has_member (root, "embed_dim"))
    model = root; // a bare model_cfg, as open_clip's model_configs/*.json
  if (model == NULL)
    {
      g_set_error (error, AGC_ERROR, AGC_ERROR_FORMAT,
                   "%s: expected a JSON object with a \"model_cfg\" object", display);
      return FALSE;
    }

  AgcClipConfig c = {
    .vision = { .width = 768, .layers = 12, .heads = 12, .mlp_width = 3072, .image_size = 224,
                .patch_size = 16 },
    .text = { .width = 512, .layers = 12, .heads = 8, .mlp_width = 2048, .vocab_size = 49408,
              .context_length = 77 },
  };
  JsonNode *embed_dim = json_object_get_member (model, "embed_dim");
  if (embed_dim == NULL)
    {
      g_set_error (error, AGC_ERROR, AGC_ERROR_FORMAT, "%s: model_cfg.embed_dim is missing",
                   display);
      return FALSE;
    }
  JsonNode *quick_gelu = json_object_get_member (model, "quick_gelu");
  if (quick_gelu != NULL && !JSON_NODE_HOLDS_NULL (quick_gelu)
      && !agc_json_is_value_of (quick_gelu, G_TYPE_BOOLEAN))
    return agc_json_wrong_value (error, AGC_ERROR_FORMAT, display, "model_cfg.", "quick_gelu", quick_gelu,
                        "true or false");
  if (!read_size (&c.projection_dim, model, "embed_dim", FALSE, display, "model_cfg.", error)
      || !refuse_set (model_refused, G_N_ELEMENTS (model_refused), model, display, "model_cfg.",
                      error))
    return FALSE;
  JsonObject *vision = get_object (model, "vision_cfg", display, "model_cfg.", &bad, error);
  if (bad || (vision != NULL && !read_vision (&c.vision, vision, display, error)))
    return FALSE;
  JsonObject *text = get_object (model, "text_cfg", display, "model_cfg.", &bad, error);
  if (bad || (text != NULL && !read_text (&c.text, text, display, error)))
    return FALSE;
  JsonObject *preprocess = model != root ? get_object (root, "preprocess_cfg", display, "", &bad,
                                                       error)
                                         : NULL;
  if (bad || !read_preprocess (pre, preprocess, c.vision.image_size, display, error))
    return FALSE;

  AgcActivation act = is_unset (quick_gelu) ? AGC_ACT_GELU : AGC_ACT_QUICK_GELU;
  c.vision.act = c.text.act = act;
  c.vision.layer_norm_eps = c.text.layer_norm_eps = 1e-5f;
  *config = c;
  return TRUE;
}
