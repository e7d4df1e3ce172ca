/* vision-train.c — the image tower in training mode (clip-train.h): a
 * forward that keeps its activations and the backward beside it.
 *   embed = patch_embed(pixels) + [class, 0...] + position   // [B, T, D]
 *   x = ln_pre(embed); x = block_l(x) for each l
 *   emb = ln_post(x[:, 0]) @ visual_projection^T             // [B, E] */
#include "train/clip-train.h"

#include "nn/backward.h"
#include "kernels/ops.h"

#include <string.h>

struct AgcVisionActs
{
  int batch, n_tokens, n_layers;
  float *patches;              // [B*T, 3pp], class rows 0
  float *embed;                // [B*T, D] before ln_pre
  float *pre_mean, *pre_rstd;  // [B*T]
  float *x;                    // [B*T, D] ln_pre output, then each block's output
  float *dx, *dx_below;        // [B*T, D] gradients of the residual stream
  AgcBlockActs **blocks;       // [L]
  float *block_scratch;        // the blocks' backward scratch, shared
  int *class_rows;             // [B] row b*T
  float *pooled, *pooled_ln;   // [B, D]
  float *post_mean, *post_rstd; // [B]
  float *dpooled, *dpooled_ln; // [B, D]
  float *memory;
};

AgcVisionActs *
agc_vision_acts_new (const AgcClipConfig *config, int batch)
{
  const AgcTowerConfig *c = &config->vision;
  int grid = c->image_size / c->patch_size;
  AgcVisionActs *a = g_new0 (AgcVisionActs, 1);
  a->batch = batch;
  a->n_tokens = grid * grid + 1;
  size_t r = (size_t) batch * a->n_tokens, d = c->width, b = batch;
  size_t pp = (size_t) 3 * c->patch_size * c->patch_size;
  size_t sizes[] = { r * pp, r * d, r, r, r * d, r * d, r * d, b * d, b * d, b, b, b * d, b * d };
  float **slots[] = { &a->patches, &a->embed, &a->pre_mean, &a->pre_rstd, &a->x, &a->dx,
                      &a->dx_below, &a->pooled, &a->pooled_ln, &a->post_mean, &a->post_rstd,
                      &a->dpooled, &a->dpooled_ln };
  size_t total = 0;
  for (size_t i = 0; i < G_N_ELEMENTS (sizes); i++)
    total += sizes[i];
  a->memory = g_new0 (float, total);
  float *at = a->memory;
  for (size_t i = 0; i < G_N_ELEMENTS (sizes); i++)
    {
      *slots[i] = at;
      at += sizes[i];
    }
  a->n_layers = c->layers;
  a->blocks = g_new0 (AgcBlockActs *, MAX (c->layers, 1));
  a->block_scratch = g_new0 (float, agc_block_scratch_floats (c, batch, a->n_tokens));
  for (int l = 0; l < c->layers; l++)
    {
      a->blocks[l] = agc_block_acts_new (c, batch, a->n_tokens);
      a->blocks[l]->scratch = a->block_scratch;
    }
  a->class_rows = g_new (int, batch);
  for (int i = 0; i < batch; i++)
    a->class_rows[i] = i * a->n_tokens;
  return a;
}

void
agc_vision_acts_free (AgcVisionActs *a)
{
  if (a == NULL)
    return;
  for (int l = 0; l < a->n_layers; l++)
    agc_block_acts_free (a->blocks[l]);
  g_free (a->blocks);
  g_free (a->block_scratch);
  g_free (a->class_rows);
  g_free (a->memory);
  g_free (a);
}

void
agc_vision_forward_train (float *emb, AgcVisionActs *a, const float *pixels,
                          const AgcClipParams *w)
{
  const AgcTowerConfig *c = &w->config.vision;
  int d = c->width, n_tok = a->n_tokens, rows = a->batch * n_tok;
  agc_patch_embed_forward_train (a->embed, a->patches, pixels, w->patch_weight, a->batch,
                                 c->image_size, c->patch_size, d);
  for (int r = 0; r < rows; r++)
    {
      float *er = a->embed + (size_t) r * d;
      const float *pos = w->vision_position + (size_t) (r % n_tok) * d;
      for (int i = 0; i < d; i++)
        er[i] += pos[i];
      if (r % n_tok == 0)
        for (int i = 0; i < d; i++)
          er[i] += w->class_embedding[i];
    }
  agc_layernorm_forward_train (a->x, a->pre_mean, a->pre_rstd, a->embed, w->pre_ln_weight,
                               w->pre_ln_bias, rows, d, c->layer_norm_eps);
  for (int l = 0; l < c->layers; l++)
    agc_block_forward_train (a->x, a->blocks[l], a->x, &w->vision_blocks[l], c, FALSE);
  agc_rows_gather (a->pooled, a->x, a->class_rows, a->batch, d);
  agc_layernorm_forward_train (a->pooled_ln, a->post_mean, a->post_rstd, a->pooled,
                               w->post_ln_weight, w->post_ln_bias, a->batch, d,
                               c->layer_norm_eps);
  agc_linear_forward (emb, a->pooled_ln, w->visual_projection, NULL, a->batch, d,
                      w->config.projection_dim);
}

void
agc_vision_backward (AgcClipParams *g, const float *demb, AgcVisionActs *a,
                     const AgcClipParams *w)
{
  const AgcTowerConfig *c = &w->config.vision;
  int d = c->width, n_tok = a->n_tokens, rows = a->batch * n_tok, e = w->config.projection_dim;
  size_t rd = (size_t) rows * d, bd = (size_t) a->batch * d;
  memset (a->dpooled_ln, 0, bd * sizeof (float));
  memset (a->dpooled, 0, bd * sizeof (float));
  memset (a->dx, 0, rd * sizeof (float));
  // emb = pooled_ln @ visual_projection^T
  agc_linear_backward (a->dpooled_ln, g->visual_projection, NULL, demb, a->pooled_ln,
                       w->visual_projection, a->batch, d, e);
  // pooled_ln = ln_post(pooled)
  agc_layernorm_backward (a->dpooled, g->post_ln_weight, g->post_ln_bias, a->dpooled_ln,
                          a->pooled, w->post_ln_weight, a->post_mean, a->post_rstd, a->batch, d);
  // pooled = x[class rows]
  agc_rows_gather_backward (a->dx, a->dpooled, a->class_rows, a->batch, d);
  // x = block_l(x)
  for (int l = c->layers - 1; l >= 0; l--)
    {
      memset (a->dx_below, 0, rd * sizeof (float));
      agc_block_backward (a->dx_below, &g->vision_blocks[l], a->dx, a->blocks[l],
                          &w->vision_blocks[l], c);
      float *t = a->dx;
      a->dx = a->dx_below;
      a->dx_below = t;
    }
  // x = ln_pre(embed): dembed into dx_below
  memset (a->dx_below, 0, rd * sizeof (float));
  agc_layernorm_backward (a->dx_below, g->pre_ln_weight, g->pre_ln_bias, a->dx, a->embed,
                          w->pre_ln_weight, a->pre_mean, a->pre_rstd, rows, d);
  const float *dembed = a->dx_below;
  // embed = patches @ patch_weight^T + position[t] + (t == 0) class
  for (int r = 0; r < rows; r++)
    {
      const float *dr = dembed + (size_t) r * d;
      float *dpos = g->vision_position + (size_t) (r % n_tok) * d;
      for (int i = 0; i < d; i++)
        dpos[i] += dr[i];
      if (r % n_tok == 0)
        for (int i = 0; i < d; i++)
          g->class_embedding[i] += dr[i];
    }
  agc_patch_embed_backward (g->patch_weight, dembed, a->patches, a->batch, c->image_size,
                            c->patch_size, d);
}
