/* clip-config-infer.c — CLIP hyper-parameters of OpenAI-named checkpoints
 * from their tensor shapes.
 *
 * A bare OpenAI checkpoint says everything but the head count and the
 * activation through its shapes; OpenAI used 64-wide heads and QuickGELU
 * throughout.  open_clip states both (head_width, quick_gelu), and its
 * sizes must agree with the shapes, or open_clip itself would fail to load
 * the file. */
#include "models/clip-config-infer.h"

#include "formats/weight-names.h"

#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

// larger sizes are not a CLIP, and keep products of two sizes far from overflow
#define MAX_SIZE (1 << 20)
#define OPENAI_HEAD_WIDTH 64

/* The tensor, floating point with n_dims dimensions of 1 .. MAX_SIZE. */
static const AgcTensorView *
need (const AgcWeights *w, const char *name, int n_dims, const char *expected, GError **error)
{
  const char *path = agc_weights_path (w);
  const AgcTensorView *t = agc_weights_find (w, name);
  if (t == NULL)
    {
      g_set_error (error, AGC_ERROR, AGC_ERROR_MODEL, "%s: missing tensor '%s'", path, name);
      return NULL;
    }
  gboolean ok = agc_dtype_is_float (t->dtype) && t->n_dims == n_dims;
  for (int d = 0; ok && d < n_dims; d++)
    ok = t->shape[d] >= 1 && t->shape[d] <= MAX_SIZE;
  if (!ok)
    {
      g_autofree char *shape = agc_shape_text (t->n_dims, t->shape);
      g_set_error (error, AGC_ERROR, AGC_ERROR_MODEL,
                   "%s: tensor '%s' has shape %s (%s), expected a floating-point %s", path, name,
                   shape, agc_dtype_name (t->dtype), expected);
      return NULL;
    }
  return t;
}

/* Existence, floating-point dtype and this exact shape. */
static gboolean
check (const AgcWeights *w, const char *name, int n_dims, const int64_t *shape, GError **error)
{
  g_autofree char *want = agc_shape_text (n_dims, shape);
  const AgcTensorView *t = need (w, name, n_dims, want, error);
  if (t == NULL)
    return FALSE;
  for (int d = 0; d < n_dims; d++)
    if (t->shape[d] != shape[d])
      {
        g_autofree char *have = agc_shape_text (t->n_dims, t->shape);
        g_set_error (error, AGC_ERROR, AGC_ERROR_MODEL,
                     "%s: tensor '%s' has shape %s, expected %s", agc_weights_path (w), name,
                     have, want);
        return FALSE;
      }
  return TRUE;
}

static gboolean
check_1d (const AgcWeights *w, const char *name, int64_t n, GError **error)
{
  return check (w, name, 1, &n, error);
}

static gboolean
check_2d (const AgcWeights *w, const char *name, int64_t rows, int64_t cols, GError **error)
{
  int64_t shape[2] = { rows, cols };
  return check (w, name, 2, shape, error);
}

/* 1 + the largest N of "prefixN." names; 0 when there are none. */
static int
count_layers (const AgcWeights *w, const char *prefix)
{
  size_t len = strlen (prefix);
  int n = 0;
  for (int i = 0; i < agc_weights_n_tensors (w); i++)
    {
      const char *name = agc_weights_tensor (w, i)->name;
      size_t n_digits = strncmp (name, prefix, len) == 0 ? strspn (name + len, "0123456789") : 0;
      if (n_digits > 0 && n_digits <= 6 && name[len + n_digits] == '.')
        n = MAX (n, atoi (name + len) + 1);
    }
  return n;
}

static gboolean
check_in_block (const AgcWeights *w, const char *prefix, int layer, const char *suffix,
                int n_dims, int64_t rows, int64_t cols, GError **error)
{
  g_autofree char *name = g_strdup_printf ("%s%d.%s", prefix, layer, suffix);
  int64_t shape[2] = { rows, cols };
  return check (w, name, n_dims, shape, error);
}

static gboolean
check_blocks (const AgcWeights *w, const char *prefix, const AgcTowerConfig *c, GError **error)
{
  int64_t d = c->width, m = c->mlp_width;
  const char *p = prefix;
  for (int l = 0; l < c->layers; l++)
    if (!check_in_block (w, p, l, "ln_1.weight", 1, d, 0, error)
        || !check_in_block (w, p, l, "ln_1.bias", 1, d, 0, error)
        || !check_in_block (w, p, l, "attn.in_proj_weight", 2, 3 * d, d, error)
        || !check_in_block (w, p, l, "attn.in_proj_bias", 1, 3 * d, 0, error)
        || !check_in_block (w, p, l, "attn.out_proj.weight", 2, d, d, error)
        || !check_in_block (w, p, l, "attn.out_proj.bias", 1, d, 0, error)
        || !check_in_block (w, p, l, "ln_2.weight", 1, d, 0, error)
        || !check_in_block (w, p, l, "ln_2.bias", 1, d, 0, error)
        || !check_in_block (w, p, l, "mlp.c_fc.weight", 2, m, d, error)
        || !check_in_block (w, p, l, "mlp.c_fc.bias", 1, m, 0, error)
        || !check_in_block (w, p, l, "mlp.c_proj.weight", 2, d, m, error)
        || !check_in_block (w, p, l, "mlp.c_proj.bias", 1, d, 0, error))
      return FALSE;
  return TRUE;
}

/* Layers and MLP width of the blocks under prefix. */
static gboolean
infer_blocks (AgcTowerConfig *c, const AgcWeights *w, const char *prefix, GError **error)
{
  c->layers = count_layers (w, prefix);
  g_autofree char *fc = g_strconcat (prefix, "0.mlp.c_fc.weight", NULL);
  const AgcTensorView *t = need (w, fc, 2, "[mlp_width, width]", error);
  if (t == NULL)
    return FALSE;
  c->mlp_width = (int) t->shape[0];
  return TRUE;
}

static gboolean
infer_shapes (AgcClipConfig *out, const AgcWeights *w, const char *text_prefix, GError **error)
{
  const char *path = agc_weights_path (w);
  AgcClipConfig c = { 0 };
  AgcTowerConfig *v = &c.vision, *t = &c.text;

  const AgcTensorView *conv = need (w, "visual.conv1.weight", 4, "[width, 3, patch, patch]", error);
  if (conv == NULL)
    return FALSE;
  if (conv->shape[1] != 3 || conv->shape[2] != conv->shape[3])
    {
      g_autofree char *shape = agc_shape_text (4, conv->shape);
      g_set_error (error, AGC_ERROR, AGC_ERROR_UNSUPPORTED,
                   "%s: tensor 'visual.conv1.weight' has shape %s; only square patches of RGB "
                   "images, [width, 3, patch, patch], are supported",
                   path, shape);
      return FALSE;
    }
  v->width = (int) conv->shape[0];
  v->patch_size = (int) conv->shape[2];
  const AgcTensorView *pos = need (w, "visual.positional_embedding", 2, "[1 + patches, width]",
                                   error);
  if (pos == NULL)
    return FALSE;
  int64_t n_patches = pos->shape[0] - 1, grid = (int64_t) llround (sqrt ((double) n_patches));
  if (n_patches < 1 || grid * grid != n_patches || grid * v->patch_size > MAX_SIZE)
    {
      g_set_error (error, AGC_ERROR, AGC_ERROR_MODEL,
                   "%s: tensor 'visual.positional_embedding' has %" G_GINT64_FORMAT " rows, "
                   "expected 1 + a square number of patches (50 for 7 x 7)",
                   path, pos->shape[0]);
      return FALSE;
    }
  v->image_size = (int) grid * v->patch_size;
  if (!infer_blocks (v, w, "visual.transformer.resblocks.", error))
    return FALSE;

  g_autofree char *token = g_strconcat (text_prefix, "token_embedding.weight", NULL);
  g_autofree char *position = g_strconcat (text_prefix, "positional_embedding", NULL);
  g_autofree char *blocks = g_strconcat (text_prefix, "transformer.resblocks.", NULL);
  g_autofree char *projection = g_strconcat (text_prefix, "text_projection", NULL);
  const AgcTensorView *tok = need (w, token, 2, "[vocab_size, width]", error);
  const AgcTensorView *tpos = tok ? need (w, position, 2, "[context_length, width]", error) : NULL;
  const AgcTensorView *proj = tpos ? need (w, projection, 2, "[width, embed_dim]", error) : NULL;
  if (proj == NULL || !infer_blocks (t, w, blocks, error))
    return FALSE;
  t->vocab_size = (int) tok->shape[0];
  t->width = (int) tok->shape[1];
  t->context_length = (int) tpos->shape[0];
  c.projection_dim = (int) proj->shape[1];
  *out = c;
  return TRUE;
}

/* Every tensor the towers read, in OpenAI names, against the final config. */
static gboolean
check_all (const AgcWeights *w, const AgcClipConfig *c, const char *text_prefix, GError **error)
{
  const AgcTowerConfig *v = &c->vision, *t = &c->text;
  int64_t d = v->width, p = v->patch_size, grid = v->image_size / v->patch_size;
  int64_t conv_shape[4] = { d, 3, p, p };
  g_autofree char *tok = g_strconcat (text_prefix, "token_embedding.weight", NULL);
  g_autofree char *pos = g_strconcat (text_prefix, "positional_embedding", NULL);
  g_autofree char *blocks = g_strconcat (text_prefix, "transformer.resblocks.", NULL);
  g_autofree char *ln_w = g_strconcat (text_prefix, "ln_final.weight", NULL);
  g_autofree char *ln_b = g_strconcat (text_prefix, "ln_final.bias", NULL);
  g_autofree char *proj = g_strconcat (text_prefix, "text_projection", NULL);
  gboolean ok
    = check (w, "visual.conv1.weight", 4, conv_shape, error)
      && check_1d (w, "visual.class_embedding", d, error)
      && check_2d (w, "visual.positional_embedding", grid * grid + 1, d, error)
      && check_1d (w, "visual.ln_pre.weight", d, error)
      && check_1d (w, "visual.ln_pre.bias", d, error)
      && check_blocks (w, "visual.transformer.resblocks.", v, error)
      && check_1d (w, "visual.ln_post.weight", d, error)
      && check_1d (w, "visual.ln_post.bias", d, error)
      && check_2d (w, "visual.proj", d, c->projection_dim, error)
      && check_2d (w, tok, t->vocab_size, t->width, error)
      && check_2d (w, pos, t->context_length, t->width, error)
      && check_blocks (w, blocks, t, error) && check_1d (w, ln_w, t->width, error)
      && check_1d (w, ln_b, t->width, error)
      && check_2d (w, proj, t->width, c->projection_dim, error);
  if (!ok)
    return FALSE;
  const AgcTensorView *scale = agc_weights_find (w, "logit_scale");
  if (scale == NULL || !agc_dtype_is_float (scale->dtype) || agc_tensor_n_elements (scale) != 1
      || scale->n_dims > 1)
    {
      g_set_error (error, AGC_ERROR, AGC_ERROR_MODEL, "%s: %s", agc_weights_path (w),
                   scale == NULL ? "missing tensor 'logit_scale'"
                                 : "tensor 'logit_scale' must be one floating-point value");
      return FALSE;
    }
  return TRUE;
}

typedef struct
{
  const char *key;    /* in open_clip_config.json */
  const char *tensor; /* that tells the value; text tensors take the text prefix */
  size_t offset;      /* of the int in AgcClipConfig */
} SizeField;

#define FIELD(member) offsetof (AgcClipConfig, member)
static const SizeField size_fields[] = {
  { "vision_cfg.width", "visual.conv1.weight", FIELD (vision.width) },
  { "vision_cfg.patch_size", "visual.conv1.weight", FIELD (vision.patch_size) },
  { "vision_cfg.image_size", "visual.positional_embedding", FIELD (vision.image_size) },
  { "vision_cfg.layers", "visual.transformer.resblocks.*", FIELD (vision.layers) },
  { "vision_cfg.mlp_ratio x width", "visual.transformer.resblocks.0.mlp.c_fc.weight",
    FIELD (vision.mlp_width) },
  { "text_cfg.width", "token_embedding.weight", FIELD (text.width) },
  { "text_cfg.vocab_size", "token_embedding.weight", FIELD (text.vocab_size) },
  { "text_cfg.context_length", "positional_embedding", FIELD (text.context_length) },
  { "text_cfg.layers", "transformer.resblocks.*", FIELD (text.layers) },
  { "text_cfg.mlp_ratio x width", "transformer.resblocks.0.mlp.c_fc.weight",
    FIELD (text.mlp_width) },
  { "embed_dim", "text_projection", FIELD (projection_dim) },
};
#undef FIELD

static int
size_at (const AgcClipConfig *c, size_t offset)
{
  int value;
  memcpy (&value, (const char *) c + offset, sizeof value);
  return value;
}

gboolean
agc_clip_config_infer (AgcClipConfig *config, const AgcWeights *openai,
                       const AgcClipConfig *declared, const char *declared_path, GError **error)
{
  g_return_val_if_fail (config != NULL && openai != NULL, FALSE);
  g_return_val_if_fail (declared == NULL || declared_path != NULL, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  const char *path = agc_weights_path (openai);
  if (agc_weights_find (openai, "visual.layer1.0.conv1.weight") != NULL
      || agc_weights_find (openai, "visual.attnpool.c_proj.weight") != NULL)
    {
      g_set_error (error, AGC_ERROR, AGC_ERROR_UNSUPPORTED,
                   "%s: a ResNet image tower (OpenAI's RN50, RN101, RN50x4 …) is not supported; "
                   "only ViT CLIP models are",
                   path);
      return FALSE;
    }
  for (int i = 0; i < agc_weights_n_tensors (openai); i++)
    if (g_str_has_prefix (agc_weights_tensor (openai, i)->name, "visual.attn_pool."))
      {
        g_set_error (error, AGC_ERROR, AGC_ERROR_UNSUPPORTED,
                     "%s: attentional pooling (visual.attn_pool) is not supported", path);
        return FALSE;
      }

  const char *text_prefix = agc_weights_openai_text_prefix (openai);
  AgcClipConfig c;
  if (!infer_shapes (&c, openai, text_prefix, error))
    return FALSE;

  if (declared != NULL)
    {
      for (size_t i = 0; i < G_N_ELEMENTS (size_fields); i++)
        {
          const SizeField *f = &size_fields[i];
          int want = size_at (declared, f->offset), have = size_at (&c, f->offset);
          if (want == have)
            continue;
          gboolean text
            = g_str_has_prefix (f->key, "text_cfg") || strcmp (f->key, "embed_dim") == 0;
          g_set_error (error, AGC_ERROR, AGC_ERROR_MODEL,
                       "%s: model_cfg.%s is %d, but the weights in %s have %d (%s%s)",
                       declared_path, f->key, want, path, have, text ? text_prefix : "", f->tensor);
          return FALSE;
        }
      c = *declared;
    }
  else
    {
      AgcTowerConfig *towers[2] = { &c.vision, &c.text };
      for (int i = 0; i < 2; i++)
        {
          if (towers[i]->width % OPENAI_HEAD_WIDTH != 0)
            {
              g_set_error (error, AGC_ERROR, AGC_ERROR_UNSUPPORTED,
                           "%s: the %s width %d is not a multiple of %d, so the number of "
                           "attention heads cannot be inferred; put the model's "
                           "open_clip_config.json beside it",
                           path, i == 0 ? "image tower's" : "text tower's", towers[i]->width,
                           OPENAI_HEAD_WIDTH);
              return FALSE;
            }
          towers[i]->heads = towers[i]->width / OPENAI_HEAD_WIDTH;
          towers[i]->act = AGC_ACT_QUICK_GELU;
          towers[i]->layer_norm_eps = 1e-5f;
        }
    }
  if (!check_all (openai, &c, text_prefix, error))
    return FALSE;
  *config = c;
  return TRUE;
}
