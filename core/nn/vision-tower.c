/* vision-tower.c — CLIP's ViT image encoder (Hugging Face layout).
 *
 * pixels -> patches (im2col) @ conv weight^T -> [class, patches] + position
 * -> pre_layrnorm -> transformer -> post_layernorm(class token) @ proj^T.
 *
 * im2col leaves a zero row where each image's class token goes, so the patch
 * GEMM writes straight into the token matrix x[B, T, D] (the class row comes
 * out 0 and gets the class embedding added with the positions). */
#include "nn/vision-tower.h"

#include "nn/tower-core.h"

#include "kernels/ops.h"
#include "nn/backward.h"
#include "nn/block-train.h"
#include "support/error.h"
#include "kernels/threads.h"

#include <string.h>

struct AgcVisionTower
{
  AgcTowerConfig config;
  int embed_dim;                      // E
  int grid;                           // patches per side, S / p
  int n_tokens;                       // T = grid^2 + 1
  /* the tensors (vision-tower.h), float32, the larger ones possibly mapped
   * from the file (read only); blocks NULL: the loaded blocks, as stored,
   * are the transformer's */
  AgcVisionParams params;
  AgcTransformer transformer;
  GPtrArray *owned;                   // float32 copies made at load
  GHashTable *replaced;               // name -> float32 array set by an adapter, or NULL
  AgcArena arena;                     // patches
  AgcArena tokens;                    // tokens and pooled rows of the whole forward
  AgcLinear patch;                    // patch_weight [D, 3 * p * p] as a linear
  AgcEngineOptions options;           // the transformer's, int8 aside (its blocks only)
};

AgcVisionTower *
agc_vision_tower_load (const AgcWeights *weights, const AgcClipConfig *config, GError **error)
{
  g_return_val_if_fail (weights != NULL && config != NULL, NULL);

  const AgcTowerConfig *c = &config->vision;
  if (c->patch_size <= 0 || c->image_size <= 0 || c->image_size % c->patch_size != 0
      || config->projection_dim <= 0)
    return agc_fail_at (error, AGC_ERROR_UNSUPPORTED, "vision tower",
                        "image size %d is not a positive multiple of patch size %d "
                        "(projection_dim %d)",
                        c->image_size, c->patch_size, config->projection_dim),
           NULL;

  g_autoptr (AgcVisionTower) t = g_new0 (AgcVisionTower, 1);
  t->config = *c;
  t->embed_dim = config->projection_dim;
  t->grid = c->image_size / c->patch_size;
  t->n_tokens = t->grid * t->grid + 1;
  t->owned = g_ptr_array_new_with_free_func (g_free);
  int64_t d = c->width, p = c->patch_size, n_tok = t->n_tokens, e = t->embed_dim;
  int64_t conv_shape[4] = { d, 3, p, p }, pos_shape[2] = { n_tok, d }, proj_shape[2] = { e, d };

  const AgcWeights *w = weights;
  GPtrArray *o = t->owned;
  AgcVisionParams *ps = &t->params;
  gboolean ok
    = (ps->patch_weight = (float *) agc_param_view_f32 (
         w, "vision_model.embeddings.patch_embedding.weight", 4, conv_shape, o, error))
      && (ps->class_embedding = agc_param_take_f32 (w, "vision_model.embeddings.class_embedding",
                                                    1, &d, o, error))
      && (ps->position = agc_param_take_f32 (
            w, "vision_model.embeddings.position_embedding.weight", 2, pos_shape, o, error))
      && (ps->pre_ln_weight
          = agc_param_take_f32 (w, "vision_model.pre_layrnorm.weight", 1, &d, o, error))
      && (ps->pre_ln_bias
          = agc_param_take_f32 (w, "vision_model.pre_layrnorm.bias", 1, &d, o, error))
      && agc_transformer_load (&t->transformer, w, "vision_model.encoder.layers.", c, error)
      && (ps->post_ln_weight
          = agc_param_take_f32 (w, "vision_model.post_layernorm.weight", 1, &d, o, error))
      && (ps->post_ln_bias
          = agc_param_take_f32 (w, "vision_model.post_layernorm.bias", 1, &d, o, error))
      && (ps->projection
          = (float *) agc_param_view_f32 (w, "visual_projection.weight", 2, proj_shape, o, error));
  if (!ok)
    return NULL;
  AgcParam kernel = { AGC_DTYPE_F32, t->params.patch_weight, (size_t) (d * 3 * p * p) };
  int heights[1] = { (int) d };
  agc_linear_init (&t->patch, &kernel, heights, 1, (int) (3 * p * p), NULL, NULL);
  return g_steal_pointer (&t);
}

void
agc_vision_tower_free (AgcVisionTower *t)
{
  if (t == NULL)
    return;
  agc_transformer_clear (&t->transformer);
  agc_linear_clear (&t->patch);
  g_ptr_array_unref (t->owned);
  g_clear_pointer (&t->replaced, g_hash_table_unref);
  agc_arena_clear (&t->arena);
  agc_arena_clear (&t->tokens);
  g_free (t);
}

typedef struct
{
  const AgcVisionTower *t;
  const float *pixels; // [B, 3, S, S]
  float *patches;      // [B * T, 3 * p * p], row b * T zero
  float *x;            // [B, T, D]
} Embed;

// the convolution's input as rows (agc_patch_rows); items are token rows
static void
im2col_rows (void *ctx, int begin, int end, int thread)
{
  (void) thread;
  const Embed *e = ctx;
  agc_patch_rows (e->patches, e->pixels, e->t->config.image_size, e->t->config.patch_size,
                  (size_t) begin, (size_t) end);
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
          xr[i] += t->params.class_embedding[i];
      agc_bias_layernorm_forward (xr, NULL, NULL, xr, t->params.position + (size_t) tok * d,
                                  t->params.pre_ln_weight, t->params.pre_ln_bias, 1, d,
                                  t->config.layer_norm_eps);
    }
}

// x[B, T, D] = ln_pre(patches @ conv^T + class + positions): the tokens
// the transformer starts from
static gboolean
embed_tokens (const AgcVisionTower *t, const float *pixels, int batch, float *x, GError **error)
{
  int d = t->config.width, p = t->config.patch_size, n_tok = t->n_tokens;
  size_t patch_len = (size_t) 3 * p * p;
  size_t rows = (size_t) batch * n_tok;
  gboolean products_only = t->options.products_only;
  // the tower is not thread-safe (agriclip.h): its scratch is its own
  AgcArena *arena = (AgcArena *) &t->arena;
  float *cursor = agc_arena_reserve (arena, agc_arena_size (rows * patch_len),
                                     "a batch of images", error);
  if (cursor == NULL)
    return FALSE;
  Embed e = { .t = t, .pixels = pixels, .x = x };
  e.patches = agc_arena_take (&cursor, rows * patch_len); // [B * T, 3 * p * p]

  // small batches on the caller alone: waking a thread costs more
  int grain = MAX ((int) (rows + 1) / 2, (1 << 16) / d);
  if (!products_only)
    agc_parallel_for ((int) rows, grain, im2col_rows, &e);
  // the patch kernel is packed on the first run (the tower is not
  // thread-safe, see above)
  if (!agc_linear_apply ((AgcLinear *) &t->patch, &t->options, e.x, e.patches, (int) rows, NULL,
                         NULL, error))
    return FALSE;
  if (!products_only)
    agc_parallel_for ((int) rows, grain, embed_rows, &e);
  return TRUE;
}

// x[B, T, D] through blocks [0, n_layers) in place: the transformer as
// loaded, told to stop early (blocks, weights and scratch are shared)
static gboolean
run_layers (const AgcVisionTower *t, float *x, int batch, int n_layers, GError **error)
{
  if (n_layers == 0)
    return TRUE;
  AgcTransformer lower = t->transformer;
  lower.config.layers = n_layers;
  return agc_transformer_forward (&lower, x, batch, t->n_tokens, FALSE, error);
}

gboolean
agc_vision_tower_forward_hidden (const AgcVisionTower *t, const float *pixels, int batch,
                                 int n_layers, float *hidden, GError **error)
{
  g_return_val_if_fail (t != NULL && pixels != NULL && hidden != NULL && batch > 0, FALSE);
  g_return_val_if_fail (n_layers >= 0 && n_layers <= t->config.layers, FALSE);
  return embed_tokens (t, pixels, batch, hidden, error)
         && run_layers (t, hidden, batch, n_layers, error);
}

// out[B, E] = ln_post(x[:, 0]) @ projection^T for x[B, T, D] (the shared
// head, tower-core.h), through pooled[B, D] and class_rows[B]
static void
head_forward (float *out, float *pooled, int *class_rows, const float *x, int batch,
              int n_tokens, const AgcTowerConfig *c, int embed_dim, const AgcVisionParams *w,
              gboolean products_only)
{
  for (int b = 0; b < batch; b++)
    class_rows[b] = b * n_tokens;
  agc_head_forward (out, NULL, pooled, x, class_rows, batch, w->post_ln_weight, w->post_ln_bias,
                    w->projection, c, embed_dim, products_only);
}

gboolean
agc_vision_tower_forward (const AgcVisionTower *t, const float *pixels, int batch, float *out,
                          GError **error)
{
  g_return_val_if_fail (t != NULL && pixels != NULL && out != NULL && batch > 0, FALSE);

  int d = t->config.width, n_tok = t->n_tokens;
  size_t rows = (size_t) batch * n_tok;
  // tokens and pooled rows in the model's own arena: embed_tokens uses the
  // tower's for the patches
  AgcArena *arena = (AgcArena *) &t->tokens;
  float *cursor = agc_arena_reserve (arena, agc_arena_size (rows * d)
                                     + agc_arena_size ((size_t) batch * d)
                                     + agc_arena_size ((size_t) batch),
                                     "a batch of images", error);
  if (cursor == NULL)
    return FALSE;
  float *x = agc_arena_take (&cursor, rows * d);                // [B, T, D]
  float *pooled = agc_arena_take (&cursor, (size_t) batch * d); // [B, D]
  int *class_rows = (int *) agc_arena_take (&cursor, (size_t) batch); // [B]
  if (!agc_vision_tower_forward_hidden (t, pixels, batch, t->config.layers, x, error))
    return FALSE;
  head_forward (out, pooled, class_rows, x, batch, n_tok, &t->config, t->embed_dim, &t->params,
                t->options.products_only);
  return TRUE;
}

gboolean
agc_vision_top_forward (float *out, float *x, int batch, int n_tokens, const AgcVisionParams *w,
                        const AgcTowerConfig *config, int embed_dim, AgcArena *scratch,
                        GError **error)
{
  g_return_val_if_fail (out != NULL && x != NULL && w != NULL && batch > 0, FALSE);
  // training's float32 blocks, fused qkv, read in place
  AgcTransformer top;
  agc_transformer_view (&top, w->blocks, config);
  top.scratch = scratch;
  gboolean ok = agc_transformer_forward (&top, x, batch, n_tokens, FALSE, error);
  agc_transformer_clear (&top);
  if (!ok)
    return FALSE;
  float *pooled = g_new (float, (size_t) batch * config->width); // [B, D]
  int *class_rows = g_new (int, batch);
  head_forward (out, pooled, class_rows, x, batch, n_tokens, config, embed_dim, w, FALSE);
  g_free (class_rows);
  g_free (pooled);
  return TRUE;
}

gboolean
agc_vision_tower_set_options (AgcVisionTower *t, const AgcEngineOptions *options,
                              GError **error)
{
  g_return_val_if_fail (t != NULL && options != NULL, FALSE);
  if (!agc_transformer_set_options (&t->transformer, options, error))
    return FALSE;
  t->options = *options;
  t->options.int8 = FALSE;
  return TRUE;
}

AgcEngineOptions
agc_vision_tower_get_options (const AgcVisionTower *t)
{
  return t->transformer.options;
}

/* ---- parts for training and adapters ------------------------------------------ */

const AgcTowerConfig *
agc_vision_tower_config (const AgcVisionTower *t)
{
  return &t->config;
}

int
agc_vision_tower_n_tokens (const AgcVisionTower *t)
{
  return t->n_tokens;
}

int
agc_vision_tower_embed_dim (const AgcVisionTower *t)
{
  return t->embed_dim;
}

void
agc_vision_tower_copy_top (const AgcVisionTower *t, int first_layer, AgcVisionParams *out)
{
  g_return_if_fail (first_layer >= 0 && first_layer <= t->config.layers);
  agc_tower_copy_top (out->blocks, out->post_ln_weight, out->post_ln_bias, out->projection,
                      &t->transformer, first_layer, t->params.post_ln_weight,
                      t->params.post_ln_bias, t->params.projection, t->embed_dim);
}

void
agc_vision_tower_copy_embeddings (const AgcVisionTower *t, AgcVisionParams *out)
{
  size_t d = t->config.width, p = t->config.patch_size;
  memcpy (out->patch_weight, t->params.patch_weight, d * 3 * p * p * sizeof (float));
  memcpy (out->class_embedding, t->params.class_embedding, d * sizeof (float));
  memcpy (out->position, t->params.position, (size_t) t->n_tokens * d * sizeof (float));
  memcpy (out->pre_ln_weight, t->params.pre_ln_weight, d * sizeof (float));
  memcpy (out->pre_ln_bias, t->params.pre_ln_bias, d * sizeof (float));
}

static gboolean
find_slot (AgcTensorSlot *slot, void *tower, const char *name)
{
  AgcVisionTower *t = tower;
  int64_t d = t->config.width, e = t->embed_dim, p = t->config.patch_size;
  const AgcNamedTensor table[] = {
    { "vision_model.embeddings.class_embedding", &t->params.class_embedding, 1, { d } },
    { "vision_model.embeddings.position_embedding.weight", &t->params.position, 2,
      { t->n_tokens, d } },
    { "vision_model.pre_layrnorm.weight", &t->params.pre_ln_weight, 1, { d } },
    { "vision_model.pre_layrnorm.bias", &t->params.pre_ln_bias, 1, { d } },
    { "vision_model.post_layernorm.weight", &t->params.post_ln_weight, 1, { d } },
    { "vision_model.post_layernorm.bias", &t->params.post_ln_bias, 1, { d } },
    { "visual_projection.weight", &t->params.projection, 2, { e, d } },
  };
  if (agc_tensor_slot_of_layers (slot, t->transformer.layers, &t->config,
                                 "vision_model.encoder.layers.", name)
      || agc_tensor_slot_of_table (slot, table, G_N_ELEMENTS (table), name))
    return TRUE;
  // the patch kernel [D, 3, p, p] is also read by its linear
  if (strcmp (name, "vision_model.embeddings.patch_embedding.weight") == 0)
    return *slot = (AgcTensorSlot){ .pointer = &t->params.patch_weight, .linear = &t->patch,
                                    .n_dims = 4, .shape = { d, 3, p, p } },
           TRUE;
  return FALSE;
}

gboolean
agc_vision_tower_set_tensor (AgcVisionTower *t, const char *name, const float *data, int n_dims,
                             const int64_t *shape, GError **error)
{
  return agc_tower_set_tensor (t, find_slot, "image tower", t != NULL ? &t->replaced : NULL,
                               name, data, n_dims, shape, error);
}

/* ---- training mode (vision-tower.h) --------------------------------------- */

void
agc_vision_params_carve (AgcVisionParams *p, AgcCarver *k, const AgcTowerConfig *c,
                         int embed_dim, int n_blocks, gboolean embeds)
{
  size_t d = c->width, e = embed_dim;
  if (embeds)
    {
      size_t grid = c->image_size / c->patch_size, n_tok = grid * grid + 1;
      p->patch_weight = agc_carve_take (k, d * 3 * c->patch_size * c->patch_size);
      p->class_embedding = agc_carve_take (k, d);
      p->position = agc_carve_take (k, n_tok * d);
      p->pre_ln_weight = agc_carve_take (k, d);
      p->pre_ln_bias = agc_carve_take (k, d);
    }
  for (int l = 0; l < n_blocks; l++)
    agc_block_carve (&p->blocks[l], k, c);
  p->post_ln_weight = agc_carve_take (k, d);
  p->post_ln_bias = agc_carve_take (k, d);
  p->projection = agc_carve_take (k, e * d);
}

// activations of n_layers blocks for batch sequences of n_tokens; embeds:
// with the embedding below them (patch_size then gives its sizes)
static AgcVisionActs *
acts_new (const AgcTowerConfig *c, int embed_dim, int batch, int n_tokens, int n_layers,
          gboolean embeds)
{
  AgcTowerActs *a = g_new0 (AgcTowerActs, 1);
  agc_tower_acts_init (a, c, embed_dim, n_layers, batch, n_tokens);
  agc_tower_acts_set_tokens (a, n_tokens);
  for (int i = 0; i < batch; i++)
    a->pool_rows[i] = i * n_tokens; // the class tokens
  if (embeds)
    {
      size_t r = (size_t) batch * n_tokens, d = c->width;
      size_t sizes[] = { r * 3 * c->patch_size * c->patch_size, r * d, r, r };
      float **slots[] = { &a->patches, &a->embed, &a->pre_mean, &a->pre_rstd };
      a->embed_memory = agc_carve (slots, sizes, G_N_ELEMENTS (sizes));
    }
  return a;
}

AgcVisionActs *
agc_vision_acts_new (const AgcClipConfig *config, int batch)
{
  const AgcTowerConfig *c = &config->vision;
  int grid = c->image_size / c->patch_size;
  return acts_new (c, config->projection_dim, batch, grid * grid + 1, c->layers, TRUE);
}

AgcVisionActs *
agc_vision_acts_new_top (const AgcTowerConfig *config, int embed_dim, int n_blocks, int batch,
                         int n_tokens)
{
  return acts_new (config, embed_dim, batch, n_tokens, n_blocks, FALSE);
}

void
agc_vision_tower_forward_train (float *emb, AgcVisionActs *a, const float *pixels,
                                const AgcVisionParams *w)
{
  g_return_if_fail (a->embed != NULL);
  AgcTowerActs *s = a;
  const AgcTowerConfig *c = &s->config;
  int d = c->width, n_tok = s->n_tokens, rows = s->batch * n_tok;
  agc_patch_embed_forward_train (a->embed, a->patches, pixels, w->patch_weight, s->batch,
                                 c->image_size, c->patch_size, d);
  for (int r = 0; r < rows; r++)
    {
      float *er = a->embed + (size_t) r * d;
      const float *pos = w->position + (size_t) (r % n_tok) * d;
      for (int i = 0; i < d; i++)
        er[i] += pos[i];
      if (r % n_tok == 0)
        for (int i = 0; i < d; i++)
          er[i] += w->class_embedding[i];
    }
  agc_bias_layernorm_forward (s->x, a->pre_mean, a->pre_rstd, a->embed, NULL, w->pre_ln_weight,
                              w->pre_ln_bias, rows, d, c->layer_norm_eps);
  agc_tower_stack_forward (emb, s, w->blocks, w->post_ln_weight, w->post_ln_bias, w->projection,
                           FALSE);
}

void
agc_vision_tower_forward_top (float *emb, AgcVisionActs *a, const float *hidden,
                              const AgcVisionParams *w)
{
  g_return_if_fail (a->embed == NULL);
  AgcTowerActs *s = a;
  memcpy (s->x, hidden, (size_t) s->batch * s->n_tokens * s->config.width * sizeof (float));
  agc_tower_stack_forward (emb, s, w->blocks, w->post_ln_weight, w->post_ln_bias, w->projection,
                           FALSE);
}

void
agc_vision_tower_backward (AgcVisionParams *g, const float *demb, AgcVisionActs *a,
                           const AgcVisionParams *w)
{
  AgcTowerActs *s = a;
  const AgcTowerConfig *c = &s->config;
  int d = c->width, n_tok = s->n_tokens, rows = s->batch * n_tok;
  gboolean embeds = a->embed != NULL;
  // the top alone has no use for the gradient of its input
  float *dx = agc_tower_stack_backward (g->blocks, g->post_ln_weight, g->post_ln_bias,
                                        g->projection, demb, s, w->blocks, w->post_ln_weight,
                                        w->projection, embeds);
  if (!embeds)
    return;
  // x = ln_pre(embed): dembed into dx_below
  float *dembed = s->dx_below;
  memset (dembed, 0, (size_t) rows * d * sizeof (float));
  agc_layernorm_backward (dembed, g->pre_ln_weight, g->pre_ln_bias, dx, a->embed,
                          w->pre_ln_weight, a->pre_mean, a->pre_rstd, rows, d);
  // embed = patches @ patch_weight^T + position[t] + (t == 0) class
  for (int r = 0; r < rows; r++)
    {
      const float *dr = dembed + (size_t) r * d;
      float *dpos = g->position + (size_t) (r % n_tok) * d;
      for (int i = 0; i < d; i++)
        dpos[i] += dr[i];
      if (r % n_tok == 0)
        for (int i = 0; i < d; i++)
          g->class_embedding[i] += dr[i];
    }
  agc_patch_embed_backward (g->patch_weight, dembed, a->patches, s->batch, c->image_size,
                            c->patch_size, d);
}
