/* vision-tower.c — CLIP's ViT image encoder (Hugging Face layout).
 *
 * pixels -> patches (im2col) @ conv weight^T -> [class, patches] + position
 * -> pre_layrnorm -> transformer -> post_layernorm(class token) @ proj^T.
 *
 * im2col leaves a zero row where each image's class token goes, so the patch
 * GEMM writes straight into the token matrix x[B, T, D] (the class row comes
 * out 0 and gets the class embedding added with the positions). */
#include "vision-tower.h"

#include "gemm.h"
#include "ops.h"
#include "threads.h"

#include <string.h>

struct AgcVisionTower
{
  AgcTowerConfig config;
  int embed_dim;                      // E
  int grid;                           // patches per side, S / p
  int n_tokens;                       // T = grid^2 + 1
  const float *patch_weight;          // [D, 3 * p * p], the conv kernel [D, 3, p, p] flattened
  const float *class_embedding;       // [D]
  const float *position_embedding;    // [T, D]
  const float *pre_ln_weight, *pre_ln_bias;   // [D]
  AgcTransformer transformer;
  const float *post_ln_weight, *post_ln_bias; // [D]
  const float *projection;            // [E, D]
  GPtrArray *owned;                   // float32 copies made at load
  AgcArena arena;                     // patches, tokens, pooled rows
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
  t->owned = g_ptr_array_new_with_free_func (g_free);
  int64_t d = c->width, p = c->patch_size, n_tok = t->n_tokens, e = t->embed_dim;
  int64_t conv_shape[4] = { d, 3, p, p }, pos_shape[2] = { n_tok, d }, proj_shape[2] = { e, d };

  const AgcWeights *w = weights;
  GPtrArray *o = t->owned;
  gboolean ok
    = (t->patch_weight = agc_param_view_f32 (w, "vision_model.embeddings.patch_embedding.weight",
                                             4, conv_shape, o, error))
      && (t->class_embedding = agc_param_take_f32 (w, "vision_model.embeddings.class_embedding", 1,
                                                   &d, o, error))
      && (t->position_embedding = agc_param_take_f32 (
            w, "vision_model.embeddings.position_embedding.weight", 2, pos_shape, o, error))
      && (t->pre_ln_weight
          = agc_param_take_f32 (w, "vision_model.pre_layrnorm.weight", 1, &d, o, error))
      && (t->pre_ln_bias = agc_param_take_f32 (w, "vision_model.pre_layrnorm.bias", 1, &d, o, error))
      && agc_transformer_load (&t->transformer, w, "vision_model.encoder.layers.", c, error)
      && (t->post_ln_weight
          = agc_param_take_f32 (w, "vision_model.post_layernorm.weight", 1, &d, o, error))
      && (t->post_ln_bias
          = agc_param_take_f32 (w, "vision_model.post_layernorm.bias", 1, &d, o, error))
      && (t->projection
          = agc_param_view_f32 (w, "visual_projection.weight", 2, proj_shape, o, error));
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
  agc_transformer_clear (&t->transformer);
  g_ptr_array_unref (t->owned);
  agc_arena_clear (&t->arena);
  g_free (t);
}

typedef struct
{
  const AgcVisionTower *t;
  const float *pixels; // [B, 3, S, S]
  float *patches;      // [B * T, 3 * p * p], row b * T zero
  float *x;            // [B, T, D]
} Embed;

// patch rows in the conv kernel's (channel, y, x) order, so the stride-p
// convolution becomes one GEMM; items are token rows of the batch
static void
im2col_rows (void *ctx, int begin, int end, int thread)
{
  (void) thread;
  const Embed *e = ctx;
  int s = e->t->config.image_size, p = e->t->config.patch_size, grid = e->t->grid;
  int n_tok = e->t->n_tokens;
  size_t row_len = (size_t) 3 * p * p;
  for (int r = begin; r < end; r++)
    {
      float *row = e->patches + (size_t) r * row_len;
      int b = r / n_tok, tok = r % n_tok;
      if (tok == 0)
        {
          memset (row, 0, row_len * sizeof (float));
          continue;
        }
      int gy = (tok - 1) / grid, gx = (tok - 1) % grid;
      for (int c = 0; c < 3; c++)
        for (int y = 0; y < p; y++)
          {
            const float *src = e->pixels + (((size_t) b * 3 + c) * s + gy * p + y) * s + gx * p;
            memcpy (row + ((size_t) c * p + y) * p, src, (size_t) p * sizeof (float));
          }
    }
}

// x[r] = ln_pre(x[r] + position[t] (+ class embedding on the class row))
static void
embed_rows (void *ctx, int begin, int end, int thread)
{
  (void) thread;
  const Embed *e = ctx;
  const AgcVisionTower *t = e->t;
  int d = t->config.width, n_tok = t->n_tokens;
  for (int r = begin; r < end; r++)
    {
      float *xr = e->x + (size_t) r * d;
      int tok = r % n_tok;
      if (tok == 0)
        for (int i = 0; i < d; i++)
          xr[i] += t->class_embedding[i];
      agc_bias_layernorm_forward (xr, xr, t->position_embedding + (size_t) tok * d,
                                  t->pre_ln_weight, t->pre_ln_bias, 1, d,
                                  t->config.layer_norm_eps);
    }
}

gboolean
agc_vision_tower_forward (const AgcVisionTower *t, const float *pixels, int batch, float *out,
                          GError **error)
{
  g_return_val_if_fail (t != NULL && pixels != NULL && out != NULL && batch > 0, FALSE);

  int d = t->config.width, p = t->config.patch_size, n_tok = t->n_tokens;
  size_t patch_len = (size_t) 3 * p * p;
  size_t rows = (size_t) batch * n_tok;
  gboolean gemm_only = agc_get_gemm_only ();
  size_t need = agc_arena_size (rows * patch_len) + agc_arena_size (rows * d)
                + agc_arena_size ((size_t) batch * d);
  // the tower is not thread-safe (agriclip.h): its scratch is its own
  AgcArena *arena = (AgcArena *) &t->arena;

  float *cursor = agc_arena_reserve (arena, need, "a batch of images", error);
  if (cursor == NULL)
    return FALSE;
  Embed e = { .t = t, .pixels = pixels };
  e.patches = agc_arena_take (&cursor, rows * patch_len); // [B * T, 3 * p * p]
  e.x = agc_arena_take (&cursor, rows * d);               // [B, T, D]
  float *pooled = agc_arena_take (&cursor, (size_t) batch * d); // [B, D]

  // small batches on the caller alone: waking a thread costs more
  int grain = MAX ((int) (rows + 1) / 2, (1 << 16) / d);
  if (!gemm_only)
    agc_parallel_for ((int) rows, grain, im2col_rows, &e);
  agc_gemm_nt (e.x, d, e.patches, (int) patch_len, t->patch_weight, (int) rows, d,
               (int) patch_len, 0.0f);
  if (!gemm_only)
    agc_parallel_for ((int) rows, grain, embed_rows, &e);

  if (!agc_transformer_forward (&t->transformer, e.x, batch, n_tok, FALSE, error))
    return FALSE;
  for (int b = 0; b < batch; b++)
    memcpy (pooled + (size_t) b * d, e.x + (size_t) b * n_tok * d, (size_t) d * sizeof (float));
  if (!gemm_only)
    agc_layernorm_forward (pooled, pooled, t->post_ln_weight, t->post_ln_bias, batch, d,
                           t->config.layer_norm_eps);
  agc_linear_forward (out, pooled, t->projection, NULL, batch, d, t->embed_dim);
  return TRUE;
}
