/* text-tower.c — CLIP's causal text encoder (Hugging Face layout).
 *
 * ids -> token + position embedding -> causal transformer -> the hidden state
 * at the end-of-text token (the largest id, so argmax finds it) ->
 * final_layer_norm -> @ proj^T.  With a causal mask no token sees a later
 * one, so the tokens after a text's end-of-text cannot change its result:
 * they are not computed.  Texts of different lengths are packed one after
 * another, so a batch costs the sum of its lengths, not batch x 77. */
#include "nn/text-tower.h"

#include "kernels/ops.h"
#include "nn/backward.h"
#include "nn/block-train.h"

#include <string.h>

struct AgcTextTower
{
  AgcTowerConfig config;
  int embed_dim;                  // E
  AgcParam token_embedding;       // [V, W], as stored: rows converted on lookup
  const float *position_embedding; // [ctx, W]
  AgcTransformer transformer;
  const float *final_ln_weight, *final_ln_bias; // [W]
  const float *projection;        // [E, W]
  GPtrArray *owned;               // float32 copies made at load
  AgcArena arena;                 // tokens, pooled rows, lengths
};

gboolean
agc_text_tower_set_options (AgcTextTower *t, const AgcEngineOptions *options, GError **error)
{
  g_return_val_if_fail (t != NULL && options != NULL, FALSE);
  AgcEngineOptions text = *options;
  text.int8 = FALSE; // texts stay float32
  return agc_transformer_set_options (&t->transformer, &text, error);
}

AgcTextTower *
agc_text_tower_load (const AgcWeights *weights, const AgcClipConfig *config, GError **error)
{
  g_return_val_if_fail (weights != NULL && config != NULL, NULL);

  const AgcTowerConfig *c = &config->text;
  if (c->vocab_size <= 0 || c->context_length <= 0 || config->projection_dim <= 0)
    {
      g_set_error (error, AGC_ERROR, AGC_ERROR_UNSUPPORTED,
                   "text tower: vocabulary size %d, context length %d and projection_dim %d "
                   "must be positive",
                   c->vocab_size, c->context_length, config->projection_dim);
      return NULL;
    }

  AgcTextTower *t = g_new0 (AgcTextTower, 1);
  t->config = *c;
  t->embed_dim = config->projection_dim;
  t->owned = g_ptr_array_new_with_free_func (g_free);
  int64_t w = c->width;
  int64_t tok_shape[2] = { c->vocab_size, w }, pos_shape[2] = { c->context_length, w };
  int64_t proj_shape[2] = { t->embed_dim, w };
  const AgcWeights *ws = weights;
  GPtrArray *o = t->owned;
  gboolean ok
    = agc_param_view (&t->token_embedding, ws, "text_model.embeddings.token_embedding.weight", 2,
                      tok_shape, o, error)
      && (t->position_embedding = agc_param_take_f32 (
            ws, "text_model.embeddings.position_embedding.weight", 2, pos_shape, o, error))
      && agc_transformer_load (&t->transformer, ws, "text_model.encoder.layers.", c, error)
      && (t->final_ln_weight
          = agc_param_take_f32 (ws, "text_model.final_layer_norm.weight", 1, &w, o, error))
      && (t->final_ln_bias
          = agc_param_take_f32 (ws, "text_model.final_layer_norm.bias", 1, &w, o, error))
      && (t->projection
          = agc_param_view_f32 (ws, "text_projection.weight", 2, proj_shape, o, error));
  if (!ok)
    {
      agc_text_tower_free (t);
      return NULL;
    }
  return t;
}

void
agc_text_tower_free (AgcTextTower *t)
{
  if (t == NULL)
    return;
  agc_transformer_clear (&t->transformer);
  g_ptr_array_unref (t->owned);
  agc_arena_clear (&t->arena);
  g_free (t);
}

gboolean
agc_text_tower_forward (const AgcTextTower *t, const int32_t *ids, int batch, float *out,
                        GError **error)
{
  g_return_val_if_fail (t != NULL && ids != NULL && out != NULL && batch > 0, FALSE);

  int ctx = t->config.context_length, w = t->config.width;
  size_t rows = 0;
  for (int b = 0; b < batch; b++)
    {
      const int32_t *row = ids + (size_t) b * ctx;
      int eot = 0; // pooling position: argmax of the ids
      for (int i = 0; i < ctx; i++)
        {
          if (row[i] < 0 || row[i] >= t->config.vocab_size)
            {
              g_set_error (error, AGC_ERROR, AGC_ERROR_INPUT,
                           "text %d of the batch: token id %d at position %d is outside "
                           "the vocabulary [0, %d)",
                           b, row[i], i, t->config.vocab_size);
              return FALSE;
            }
          if (row[i] > row[eot]) // strict: the first maximum, as torch.argmax
            eot = i;
        }
      rows += eot + 1;
    }

  // the tower is not thread-safe (agriclip.h): its scratch is its own
  AgcArena *arena = (AgcArena *) &t->arena;
  size_t need = agc_arena_size (rows * w) + agc_arena_size ((size_t) batch * w)
                + agc_arena_size ((size_t) batch);

  float *cursor = agc_arena_reserve (arena, need, "a batch of texts", error);
  if (cursor == NULL)
    return FALSE;
  float *x = agc_arena_take (&cursor, rows * w);                 // [sum of lengths, W]
  float *pooled = agc_arena_take (&cursor, (size_t) batch * w);  // [B, W]
  int *lengths = (int *) agc_arena_take (&cursor, (size_t) batch); // [B]

  // each text only up to its end-of-text token, packed one after another
  float *xr = x;
  for (int b = 0; b < batch; b++)
    {
      const int32_t *row = ids + (size_t) b * ctx;
      int eot = 0;
      for (int i = 1; i < ctx; i++)
        if (row[i] > row[eot])
          eot = i;
      lengths[b] = eot + 1;
      for (int i = 0; i <= eot; i++, xr += w)
        {
          const float *pos = t->position_embedding + (size_t) i * w;
          agc_param_convert (xr, &t->token_embedding, (size_t) row[i] * w, w);
          for (int j = 0; j < w; j++)
            xr[j] += pos[j];
        }
    }

  if (!agc_transformer_forward_packed (&t->transformer, x, batch, lengths, TRUE, error))
    return FALSE;
  // the last row of each text is its end-of-text token; layer norm is per
  // token, so normalising only the pooled rows is exact
  size_t at = 0;
  for (int b = 0; b < batch; b++)
    {
      at += lengths[b];
      memcpy (pooled + (size_t) b * w, x + (at - 1) * w, (size_t) w * sizeof (float));
    }
  if (!t->transformer.options.products_only)
    agc_layernorm_forward (pooled, pooled, t->final_ln_weight, t->final_ln_bias, batch, w,
                           t->config.layer_norm_eps);
  agc_linear_forward (out, pooled, t->projection, NULL, batch, w, t->embed_dim);
  return TRUE;
}

/* ---- training mode (text-tower.h) ----------------------------------------- */

struct AgcTextActs
{
  AgcTowerConfig config;
  int embed_dim;               // E
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

AgcTextActs *
agc_text_acts_new (const AgcClipConfig *config, int batch)
{
  const AgcTowerConfig *c = &config->text;
  AgcTextActs *a = g_new0 (AgcTextActs, 1);
  a->config = *c;
  a->embed_dim = config->projection_dim;
  a->batch = batch;
  a->context = c->context_length;
  a->n_layers = c->layers;
  size_t r = (size_t) batch * c->context_length, w = c->width, b = batch;
  size_t sizes[] = { r * w, r * w, r * w, b * w, b * w, b, b, b * w, b * w };
  float **slots[] = { &a->x, &a->dx, &a->dx_below, &a->pooled, &a->pooled_ln, &a->ln_mean,
                      &a->ln_rstd, &a->dpooled, &a->dpooled_ln };
  a->memory = agc_carve (slots, sizes, G_N_ELEMENTS (sizes));
  a->row_ids = g_new0 (int32_t, r);
  a->eot_rows = g_new0 (int, batch);
  a->blocks = g_new0 (AgcBlockActs, MAX (c->layers, 1));
  a->block_floats = agc_block_acts_floats (c, batch, c->context_length);
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
agc_text_tower_forward_train (float *emb, AgcTextActs *a, const int32_t *ids,
                              const AgcTextParams *w)
{
  const AgcTowerConfig *c = &a->config;
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
      agc_block_acts_view (&a->blocks[l], a->block_memory + l * a->block_floats, c, batch, n_tok);
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
      const float *pos = w->position + (size_t) (r % n_tok) * width;
      for (int i = 0; i < width; i++)
        xr[i] += pos[i];
    }
  for (int l = 0; l < c->layers; l++)
    {
      AgcLayer layer;
      agc_layer_view (&layer, &w->blocks[l], c);
      agc_block_forward (a->x, &a->blocks[l], &layer, c, TRUE);
    }
  agc_rows_gather (a->pooled, a->x, a->eot_rows, batch, width);
  agc_layernorm_forward_train (a->pooled_ln, a->ln_mean, a->ln_rstd, a->pooled,
                               w->final_ln_weight, w->final_ln_bias, batch, width,
                               c->layer_norm_eps);
  agc_linear_forward (emb, a->pooled_ln, w->projection, NULL, batch, width,
                      a->embed_dim);
}

void
agc_text_tower_backward (AgcTextParams *g, const float *demb, AgcTextActs *a,
                         const AgcTextParams *w, const float **dtokens,
                         const int32_t **row_ids, int *n_rows)
{
  const AgcTowerConfig *c = &a->config;
  int width = c->width, n_tok = a->n_tokens, rows = a->batch * n_tok;
  size_t rw = (size_t) rows * width, bw = (size_t) a->batch * width;
  memset (a->dpooled_ln, 0, bw * sizeof (float));
  memset (a->dpooled, 0, bw * sizeof (float));
  memset (a->dx, 0, rw * sizeof (float));
  // emb = pooled_ln @ text_projection^T
  agc_linear_backward (a->dpooled_ln, g->projection, NULL, demb, a->pooled_ln,
                       w->projection, a->batch, width, a->embed_dim);
  // pooled_ln = final_ln(pooled)
  agc_layernorm_backward (a->dpooled, g->final_ln_weight, g->final_ln_bias, a->dpooled_ln,
                          a->pooled, w->final_ln_weight, a->ln_mean, a->ln_rstd, a->batch,
                          width);
  // pooled = x[eot rows]
  agc_rows_gather_backward (a->dx, a->dpooled, a->eot_rows, a->batch, width);
  // x = causal_block_l(x)
  for (int l = c->layers - 1; l >= 0; l--)
    {
      AgcLayer layer;
      agc_layer_view (&layer, &w->blocks[l], c);
      memset (a->dx_below, 0, rw * sizeof (float));
      agc_block_backward (a->dx_below, &g->blocks[l], a->dx, &a->blocks[l], &layer, c);
      float *t = a->dx;
      a->dx = a->dx_below;
      a->dx_below = t;
    }
  // x = token_embedding[ids] + position[t]: the table's share goes to the caller
  for (int r = 0; r < rows; r++)
    {
      const float *dr = a->dx + (size_t) r * width;
      float *dpos = g->position + (size_t) (r % n_tok) * width;
      for (int i = 0; i < width; i++)
        dpos[i] += dr[i];
    }
  *dtokens = a->dx;
  *row_ids = a->row_ids;
  *n_rows = rows;
}
