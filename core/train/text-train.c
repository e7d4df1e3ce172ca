/* text-train.c — the text tower in training mode (clip-train.h): a forward
 * that keeps its activations and the backward beside it.
 *   x = token_embedding[ids] + position                      // [B, T, W]
 *   x = causal_block_l(x) for each l
 *   emb = final_ln(x[b, eot_b]) @ text_projection^T          // [B, E]
 * With the causal mask, tokens after a text's end-of-text token cannot
 * change its result, so the batch runs only T = max_b eot_b + 1 tokens. */
#include "train/clip-train.h"

#include "nn/backward.h"
#include "kernels/ops.h"

#include <string.h>

struct AgcTextActs
{
  int batch, context, n_layers;
  int n_tokens;                // T of the last forward; block acts are views for it
  int32_t *row_ids;            // [B*T] the ids that were looked up
  int *eot_rows;               // [B] row b*T + eot_b
  float *x;                    // [B*ctx, W] the embeddings, then each block's output
  float *dx, *dx_below;        // [B*ctx, W]
  AgcBlockActs *blocks;        // [L] views for n_tokens into block_memory
  float *block_memory;         // [L] block activations, room for T = ctx
  float *block_scratch;        // the blocks' backward scratch, room for T = ctx
  size_t block_floats;         // floats per layer in block_memory
  float *pooled, *pooled_ln;   // [B, W]
  float *ln_mean, *ln_rstd;    // [B]
  float *dpooled, *dpooled_ln; // [B, W]
  float *memory;
};

// the sizes of AgcBlockActs' arrays, in its field order
static int
block_acts_sizes (size_t *sizes, const AgcTowerConfig *c, int batch, int n_tokens)
{
  size_t r = (size_t) batch * n_tokens, d = c->width, m = c->mlp_width;
  size_t att = (size_t) batch * c->heads * n_tokens * n_tokens;
  size_t s[] = { r * d, r * d, r, r, r * 3 * d, att, r * d, r * d, r * d, r, r, r * m, r * m };
  memcpy (sizes, s, sizeof s);
  return (int) G_N_ELEMENTS (s);
}

static size_t
block_acts_floats (const AgcTowerConfig *c, int batch, int n_tokens)
{
  size_t sizes[16], total = 0;
  int n = block_acts_sizes (sizes, c, batch, n_tokens);
  for (int i = 0; i < n; i++)
    total += sizes[i];
  return total;
}

/* Block activations for T tokens carved out of memory sized for the
 * context: the batch's T changes from step to step, and allocating anew
 * each time costs page faults. */
static void
block_acts_view (AgcBlockActs *a, float *memory, const AgcTowerConfig *c, int batch,
                 int n_tokens)
{
  size_t sizes[16];
  int n = block_acts_sizes (sizes, c, batch, n_tokens);
  float **slots[] = { &a->x, &a->ln1, &a->ln1_mean, &a->ln1_rstd, &a->qkv, &a->att, &a->atty,
                      &a->x_mid, &a->ln2, &a->ln2_mean, &a->ln2_rstd, &a->fc1, &a->act };
  g_assert (n == (int) G_N_ELEMENTS (slots));
  for (int i = 0; i < n; i++)
    {
      *slots[i] = memory;
      memory += sizes[i];
    }
  a->batch = batch;
  a->n_tokens = n_tokens;
  a->memory = NULL; // not owned
}

AgcTextActs *
agc_text_acts_new (const AgcClipConfig *config, int batch)
{
  const AgcTowerConfig *c = &config->text;
  AgcTextActs *a = g_new0 (AgcTextActs, 1);
  a->batch = batch;
  a->context = c->context_length;
  a->n_layers = c->layers;
  size_t r = (size_t) batch * c->context_length, w = c->width, b = batch;
  size_t sizes[] = { r * w, r * w, r * w, b * w, b * w, b, b, b * w, b * w };
  float **slots[] = { &a->x, &a->dx, &a->dx_below, &a->pooled, &a->pooled_ln, &a->ln_mean,
                      &a->ln_rstd, &a->dpooled, &a->dpooled_ln };
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
  a->row_ids = g_new0 (int32_t, r);
  a->eot_rows = g_new0 (int, batch);
  a->blocks = g_new0 (AgcBlockActs, MAX (c->layers, 1));
  a->block_floats = block_acts_floats (c, batch, c->context_length);
  a->block_memory = g_new0 (float, a->block_floats * c->layers);
  a->block_scratch = g_new0 (float, agc_block_scratch_floats (c, batch, c->context_length));
  for (int l = 0; l < c->layers; l++)
    a->blocks[l].scratch = a->block_scratch;
  return a;
}

void
agc_text_acts_free (AgcTextActs *a)
{
  if (a == NULL)
    return;
  g_free (a->blocks);
  g_free (a->block_memory);
  g_free (a->block_scratch);
  g_free (a->row_ids);
  g_free (a->eot_rows);
  g_free (a->memory);
  g_free (a);
}

void
agc_text_forward_train (float *emb, AgcTextActs *a, const int32_t *ids, const AgcClipParams *w)
{
  const AgcTowerConfig *c = &w->config.text;
  int width = c->width, ctx = a->context, batch = a->batch;
  int n_tok = 1;
  for (int b = 0; b < batch; b++)
    {
      const int32_t *row = ids + (size_t) b * ctx;
      int eot = 0; // the first largest id, as torch.argmax
      for (int i = 1; i < ctx; i++)
        if (row[i] > row[eot])
          eot = i;
      a->eot_rows[b] = eot; // position for now, row below
      n_tok = MAX (n_tok, eot + 1);
    }
  if (n_tok != a->n_tokens) // the blocks' activations depend on T
    for (int l = 0; l < c->layers; l++)
      block_acts_view (&a->blocks[l], a->block_memory + l * a->block_floats, c, batch, n_tok);
  a->n_tokens = n_tok;
  int rows = batch * n_tok;
  for (int b = 0; b < batch; b++)
    {
      memcpy (a->row_ids + (size_t) b * n_tok, ids + (size_t) b * ctx, n_tok * sizeof (int32_t));
      a->eot_rows[b] += b * n_tok;
    }
  agc_embedding_forward (a->x, a->row_ids, w->token_embedding, rows, width);
  for (int r = 0; r < rows; r++)
    {
      float *xr = a->x + (size_t) r * width;
      const float *pos = w->text_position + (size_t) (r % n_tok) * width;
      for (int i = 0; i < width; i++)
        xr[i] += pos[i];
    }
  for (int l = 0; l < c->layers; l++)
    agc_block_forward_train (a->x, &a->blocks[l], a->x, &w->text_blocks[l], c, TRUE);
  agc_rows_gather (a->pooled, a->x, a->eot_rows, batch, width);
  agc_layernorm_forward_train (a->pooled_ln, a->ln_mean, a->ln_rstd, a->pooled,
                               w->final_ln_weight, w->final_ln_bias, batch, width,
                               c->layer_norm_eps);
  agc_linear_forward (emb, a->pooled_ln, w->text_projection, NULL, batch, width,
                      w->config.projection_dim);
}

void
agc_text_backward (AgcClipParams *g, const float *demb, AgcTextActs *a, const AgcClipParams *w,
                   const float **dtokens, const int32_t **row_ids, int *n_rows)
{
  const AgcTowerConfig *c = &w->config.text;
  int width = c->width, n_tok = a->n_tokens, rows = a->batch * n_tok;
  size_t rw = (size_t) rows * width, bw = (size_t) a->batch * width;
  memset (a->dpooled_ln, 0, bw * sizeof (float));
  memset (a->dpooled, 0, bw * sizeof (float));
  memset (a->dx, 0, rw * sizeof (float));
  // emb = pooled_ln @ text_projection^T
  agc_linear_backward (a->dpooled_ln, g->text_projection, NULL, demb, a->pooled_ln,
                       w->text_projection, a->batch, width, w->config.projection_dim);
  // pooled_ln = final_ln(pooled)
  agc_layernorm_backward (a->dpooled, g->final_ln_weight, g->final_ln_bias, a->dpooled_ln,
                          a->pooled, w->final_ln_weight, a->ln_mean, a->ln_rstd, a->batch,
                          width);
  // pooled = x[eot rows]
  agc_rows_gather_backward (a->dx, a->dpooled, a->eot_rows, a->batch, width);
  // x = causal_block_l(x)
  for (int l = c->layers - 1; l >= 0; l--)
    {
      memset (a->dx_below, 0, rw * sizeof (float));
      agc_block_backward (a->dx_below, &g->text_blocks[l], a->dx, &a->blocks[l],
                          &w->text_blocks[l], c);
      float *t = a->dx;
      a->dx = a->dx_below;
      a->dx_below = t;
    }
  // x = token_embedding[ids] + position[t]: the table's share goes to the caller
  for (int r = 0; r < rows; r++)
    {
      const float *dr = a->dx + (size_t) r * width;
      float *dpos = g->text_position + (size_t) (r % n_tok) * width;
      for (int i = 0; i < width; i++)
        dpos[i] += dr[i];
    }
  *dtokens = a->dx;
  *row_ids = a->row_ids;
  *n_rows = rows;
}
