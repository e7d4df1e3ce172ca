/* vision-tower.c — CLIP's ViT image encoder (Hugging Face layout).
 *
 * pixels -> patches (im2col) @ conv weight^T -> [class, patches] + position
 * -> pre_layrnorm -> transformer -> post_layernorm(class token) @ proj^T. */
#include "vision-tower.h"

#include "ops.h"

#include <string.h>

struct AgcVisionTower
{
  AgcTowerConfig config;
  int embed_dim;        // E
  int grid;             // patches per side, S / p
  int n_tokens;         // T = grid^2 + 1
  float *patch_weight;  // [D, 3 * p * p], the conv kernel [D, 3, p, p] flattened
  float *class_embedding;    // [D]
  float *position_embedding; // [T, D]
  float *pre_ln_weight, *pre_ln_bias;   // [D]
  AgcTransformer transformer;
  float *post_ln_weight, *post_ln_bias; // [D]
  float *projection;    // [E, D]
};

AgcVisionTower *
agc_vision_tower_load (const AgcWeights *weights, const AgcClipConfig *config, GError **error)
{
  g_return_val_if_fail (weights != NULL && config != NULL, NULL);

  const AgcTowerConfig *c = &config->vision;
  if (c->patch_size <= 0 || c->image_size <= 0 || c->image_size % c->patch_size != 0
      || config->projection_dim <= 0)
    {
      g_set_error (error, AGC_ERROR, AGC_ERROR_UNSUPPORTED,
                   "vision tower: image size %d is not a positive multiple of patch size %d "
                   "(projection_dim %d)",
                   c->image_size, c->patch_size, config->projection_dim);
      return NULL;
    }

  AgcVisionTower *t = g_new0 (AgcVisionTower, 1);
  t->config = *c;
  t->embed_dim = config->projection_dim;
  t->grid = c->image_size / c->patch_size;
  t->n_tokens = t->grid * t->grid + 1;
  int64_t d = c->width, p = c->patch_size;
  int64_t conv_shape[4] = { d, 3, p, p };

  const AgcWeights *w = weights;
  gboolean ok
    = (t->patch_weight = agc_weights_take_f32 (w, "vision_model.embeddings.patch_embedding.weight",
                                               4, conv_shape, error))
      && (t->class_embedding
          = agc_weights_take_1d (w, "vision_model.embeddings.class_embedding", d, error))
      && (t->position_embedding
          = agc_weights_take_2d (w, "vision_model.embeddings.position_embedding.weight",
                                 t->n_tokens, d, error))
      && (t->pre_ln_weight = agc_weights_take_1d (w, "vision_model.pre_layrnorm.weight", d, error))
      && (t->pre_ln_bias = agc_weights_take_1d (w, "vision_model.pre_layrnorm.bias", d, error))
      && agc_transformer_load (&t->transformer, w, "vision_model.encoder.layers.", c, error)
      && (t->post_ln_weight
          = agc_weights_take_1d (w, "vision_model.post_layernorm.weight", d, error))
      && (t->post_ln_bias = agc_weights_take_1d (w, "vision_model.post_layernorm.bias", d, error))
      && (t->projection
          = agc_weights_take_2d (w, "visual_projection.weight", t->embed_dim, d, error));
  if (!ok)
    {
      agc_vision_tower_free (t);
      return NULL;
    }
  return t;
}

void
agc_vision_tower_free (AgcVisionTower *t)
{
  if (t == NULL)
    return;
  g_free (t->patch_weight);
  g_free (t->class_embedding);
  g_free (t->position_embedding);
  g_free (t->pre_ln_weight);
  g_free (t->pre_ln_bias);
  agc_transformer_clear (&t->transformer);
  g_free (t->post_ln_weight);
  g_free (t->post_ln_bias);
  g_free (t->projection);
  g_free (t);
}

// patches[B * grid^2, 3 * p * p]: each row one patch in the conv kernel's
// (channel, y, x) order, so the stride-p convolution becomes one GEMM
static void
im2col (float *patches, const float *pixels, int batch, int image_size, int patch_size)
{
  int s = image_size, p = patch_size, grid = s / p;
  size_t row_len = (size_t) 3 * p * p;
  for (int b = 0; b < batch; b++)
    for (int gy = 0; gy < grid; gy++)
      for (int gx = 0; gx < grid; gx++)
        {
          float *row = patches + ((size_t) (b * grid + gy) * grid + gx) * row_len;
          for (int c = 0; c < 3; c++)
            for (int y = 0; y < p; y++)
              {
                const float *src = pixels + (((size_t) b * 3 + c) * s + gy * p + y) * s + gx * p;
                memcpy (row + ((size_t) c * p + y) * p, src, (size_t) p * sizeof (float));
              }
        }
}

gboolean
agc_vision_tower_forward (const AgcVisionTower *t, const float *pixels, int batch, float *out,
                          GError **error)
{
  g_return_val_if_fail (t != NULL && pixels != NULL && out != NULL && batch > 0, FALSE);

  int d = t->config.width, p = t->config.patch_size, n_tok = t->n_tokens;
  size_t n_patches = (size_t) batch * (n_tok - 1);
  size_t patch_len = (size_t) 3 * p * p;
  size_t rows = (size_t) batch * n_tok;
  size_t n_floats = n_patches * patch_len // patches
                    + n_patches * d       // patch embeddings
                    + rows * d            // x
                    + (size_t) batch * d; // pooled class tokens
  float *scratch = g_try_new (float, n_floats);
  if (scratch == NULL)
    {
      g_set_error (error, AGC_ERROR, AGC_ERROR_INPUT,
                   "cannot allocate %zu MB for a batch of %d images",
                   n_floats * sizeof (float) >> 20, batch);
      return FALSE;
    }
  float *patches = scratch;                     // [B * N, 3 * p * p]
  float *embedded = patches + n_patches * patch_len; // [B * N, D]
  float *x = embedded + n_patches * d;          // [B, T, D]
  float *pooled = x + rows * d;                 // [B, D]

  im2col (patches, pixels, batch, t->config.image_size, p);
  agc_linear_forward (embedded, patches, t->patch_weight, NULL, (int) n_patches, (int) patch_len,
                      d);

  // x[b] = [class_embedding; patches of b] + position_embedding
  for (int b = 0; b < batch; b++)
    {
      float *xb = x + (size_t) b * n_tok * d;
      const float *eb = embedded + (size_t) b * (n_tok - 1) * d;
      for (int i = 0; i < d; i++)
        xb[i] = t->class_embedding[i] + t->position_embedding[i];
      for (size_t i = 0; i < (size_t) (n_tok - 1) * d; i++)
        xb[d + i] = eb[i] + t->position_embedding[d + i];
    }

  agc_layernorm_forward (x, x, t->pre_ln_weight, t->pre_ln_bias, (int) rows, d,
                         t->config.layer_norm_eps);
  if (!agc_transformer_forward (&t->transformer, x, batch, n_tok, FALSE, error))
    {
      g_free (scratch);
      return FALSE;
    }
  for (int b = 0; b < batch; b++)
    memcpy (pooled + (size_t) b * d, x + (size_t) b * n_tok * d, (size_t) d * sizeof (float));
  agc_layernorm_forward (pooled, pooled, t->post_ln_weight, t->post_ln_bias, batch, d,
                         t->config.layer_norm_eps);
  agc_linear_forward (out, pooled, t->projection, NULL, batch, d, t->embed_dim);
  g_free (scratch);
  return TRUE;
}
