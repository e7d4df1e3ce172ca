/* block-train.c — a residual block forward that keeps its activations, and
 * its backward (block-train.h), composed from backward.h's layers. */
#include "nn/block-train.h"

#include "nn/backward.h"
#include "kernels/ops.h"

#include <cblas.h>
#include <string.h>

AgcBlockActs *
agc_block_acts_new (const AgcTowerConfig *c, int batch, int n_tokens)
{
  size_t r = (size_t) batch * n_tokens, d = c->width, m = c->mlp_width;
  size_t att = (size_t) batch * c->heads * n_tokens * n_tokens;
  size_t sizes[] = { r * d, r * d, r, r, r * 3 * d, att, r * d, r * d, r * d, r, r, r * m, r * m };
  AgcBlockActs *a = g_new0 (AgcBlockActs, 1);
  float **slots[] = { &a->x, &a->ln1, &a->ln1_mean, &a->ln1_rstd, &a->qkv, &a->att, &a->atty,
                      &a->x_mid, &a->ln2, &a->ln2_mean, &a->ln2_rstd, &a->fc1, &a->act };
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
  a->batch = batch;
  a->n_tokens = n_tokens;
  return a;
}

size_t
agc_block_scratch_floats (const AgcTowerConfig *c, int batch, int n_tokens)
{
  size_t r = (size_t) batch * n_tokens;
  return 7 * r * c->width + 2 * r * c->mlp_width;
}

void
agc_block_acts_free (AgcBlockActs *acts)
{
  if (acts == NULL)
    return;
  g_free (acts->memory);
  g_free (acts);
}

int
agc_block_train_arrays (float **arrays, size_t *sizes, gboolean *decays, AgcBlock *b,
                        const AgcTowerConfig *c)
{
  size_t d = c->width, m = c->mlp_width;
  float *a[] = { b->ln1_weight, b->ln1_bias, b->qkv_weight, b->qkv_bias, b->out_weight,
                 b->out_bias, b->ln2_weight, b->ln2_bias, b->fc1_weight, b->fc1_bias,
                 b->fc2_weight, b->fc2_bias };
  size_t s[] = { d, d, 3 * d * d, 3 * d, d * d, d, d, d, m * d, m, d * m, d };
  gboolean k[] = { FALSE, FALSE, TRUE, FALSE, TRUE, FALSE, FALSE, FALSE, TRUE, FALSE, TRUE, FALSE };
  for (size_t i = 0; i < G_N_ELEMENTS (a); i++)
    {
      arrays[i] = a[i];
      sizes[i] = s[i];
      if (decays != NULL)
        decays[i] = k[i];
    }
  return (int) G_N_ELEMENTS (a);
}

AgcBlock *
agc_block_train_new (const AgcTowerConfig *c)
{
  size_t d = c->width, m = c->mlp_width;
  AgcBlock *b = g_new0 (AgcBlock, 1);
  float **slots[] = { &b->ln1_weight, &b->ln1_bias, &b->qkv_weight, &b->qkv_bias, &b->out_weight,
                      &b->out_bias, &b->ln2_weight, &b->ln2_bias, &b->fc1_weight, &b->fc1_bias,
                      &b->fc2_weight, &b->fc2_bias };
  size_t sizes[] = { d, d, 3 * d * d, 3 * d, d * d, d, d, d, m * d, m, d * m, d };
  size_t total = 0;
  for (size_t i = 0; i < G_N_ELEMENTS (sizes); i++)
    total += sizes[i];
  float *at = g_new0 (float, total); // owned through ln1_weight, the first slot
  for (size_t i = 0; i < G_N_ELEMENTS (sizes); i++)
    {
      *slots[i] = at;
      at += sizes[i];
    }
  return b;
}

void
agc_block_train_zero (AgcBlock *b, const AgcTowerConfig *c)
{
  float *arrays[12];
  size_t sizes[12];
  int n = agc_block_train_arrays (arrays, sizes, NULL, b, c);
  for (int i = 0; i < n; i++)
    memset (arrays[i], 0, sizes[i] * sizeof (float));
}

void
agc_block_train_free (AgcBlock *block)
{
  if (block == NULL)
    return;
  g_free (block->ln1_weight);
  g_free (block);
}

void
agc_block_forward_train (float *out, AgcBlockActs *a, const float *x, const AgcBlock *w,
                         const AgcTowerConfig *c, gboolean causal)
{
  int r = a->batch * a->n_tokens, d = c->width, m = c->mlp_width;
  size_t rd = (size_t) r * d;
  memmove (a->x, x, rd * sizeof (float));
  // x_mid = x + out_proj(attention(ln_1(x)))
  agc_layernorm_forward_train (a->ln1, a->ln1_mean, a->ln1_rstd, a->x, w->ln1_weight,
                               w->ln1_bias, r, d, c->layer_norm_eps);
  agc_linear_forward (a->qkv, a->ln1, w->qkv_weight, w->qkv_bias, r, d, 3 * d);
  agc_attention_forward_train (a->atty, a->att, a->qkv, a->batch, a->n_tokens, d, c->heads,
                               causal);
  agc_linear_forward (a->x_mid, a->atty, w->out_weight, w->out_bias, r, d, d);
  for (size_t i = 0; i < rd; i++)
    a->x_mid[i] += a->x[i];
  // out = x_mid + fc2(act(fc1(ln_2(x_mid))))
  agc_layernorm_forward_train (a->ln2, a->ln2_mean, a->ln2_rstd, a->x_mid, w->ln2_weight,
                               w->ln2_bias, r, d, c->layer_norm_eps);
  agc_linear_forward (a->fc1, a->ln2, w->fc1_weight, w->fc1_bias, r, d, m);
  agc_act_forward_train (a->act, a->fc1, (size_t) r * m, c->act);
  agc_linear_forward (out, a->act, w->fc2_weight, w->fc2_bias, r, m, d);
  for (size_t i = 0; i < rd; i++)
    out[i] += a->x_mid[i];
}

void
agc_block_backward (float *dx, AgcBlock *g, const float *dout, const AgcBlockActs *a,
                    const AgcBlock *w, const AgcTowerConfig *c)
{
  int r = a->batch * a->n_tokens, d = c->width, m = c->mlp_width;
  size_t rd = (size_t) r * d;
  size_t rm = (size_t) r * m;
  // one scratch for the gradients of the activations, all zero: backwards
  // add (dx_mid, the first, is copied over)
  size_t n_scratch = agc_block_scratch_floats (c, a->batch, a->n_tokens);
  float *scratch = a->scratch;
  if (scratch != NULL)
    memset (scratch + rd, 0, (n_scratch - rd) * sizeof (float));
  else
    scratch = g_new0 (float, n_scratch);
  float *dx_mid = scratch, *dln2 = dx_mid + rd, *datty = dln2 + rd, *dln1 = datty + rd;
  float *dqkv = dln1 + rd, *dact = dqkv + 3 * rd, *dfc1 = dact + rm;
  // out = x_mid + fc2(act(fc1(ln_2(x_mid))))
  memcpy (dx_mid, dout, rd * sizeof (float));
  agc_linear_backward (dact, g->fc2_weight, g->fc2_bias, dout, a->act, w->fc2_weight, r, m, d);
  agc_act_backward (dfc1, dact, a->fc1, (size_t) r * m, c->act);
  agc_linear_backward (dln2, g->fc1_weight, g->fc1_bias, dfc1, a->ln2, w->fc1_weight, r, d, m);
  agc_layernorm_backward (dx_mid, g->ln2_weight, g->ln2_bias, dln2, a->x_mid, w->ln2_weight,
                          a->ln2_mean, a->ln2_rstd, r, d);
  // x_mid = x + out_proj(attention(ln_1(x)))
  agc_linear_backward (datty, g->out_weight, g->out_bias, dx_mid, a->atty, w->out_weight, r, d, d);
  agc_attention_backward (dqkv, datty, a->qkv, a->att, a->batch, a->n_tokens, d, c->heads);
  agc_linear_backward (dln1, g->qkv_weight, NULL, dqkv, a->ln1, w->qkv_weight, r, d, 3 * d);
  // qkv = ln1 @ qkv_weight^T + qkv_bias.  The key bias adds q . bias_k to a
  // whole row of scores, which softmax ignores: its gradient is exactly 0,
  // and adding the rounding noise instead would let AdamW (which scales
  // every gradient to about lr) move it
  // (row by row, the memory order; each column summed in double)
  double *sums = g_new0 (double, 3 * (size_t) d);
  for (int i = 0; i < r; i++)
    {
      const float *row = dqkv + (size_t) i * 3 * d;
      for (int j = 0; j < 3 * d; j++)
        sums[j] += row[j];
    }
  for (int j = 0; j < 3 * d; j++)
    if (j < d || j >= 2 * d)
      g->qkv_bias[j] += (float) sums[j];
  g_free (sums);
  if (dx != NULL)
    {
      for (size_t i = 0; i < rd; i++)
        dx[i] += dx_mid[i];
      agc_layernorm_backward (dx, g->ln1_weight, g->ln1_bias, dln1, a->x, w->ln1_weight,
                              a->ln1_mean, a->ln1_rstd, r, d);
    }
  else
    {
      // the weights of ln_1 still need their gradient; dx goes to scratch
      float *sink = dln2;
      memset (sink, 0, rd * sizeof (float));
      agc_layernorm_backward (sink, g->ln1_weight, g->ln1_bias, dln1, a->x, w->ln1_weight,
                              a->ln1_mean, a->ln1_rstd, r, d);
    }
  if (scratch != a->scratch)
    g_free (scratch);
}
