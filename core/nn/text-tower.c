/* text-tower.c — CLIP's causal text encoder (Hugging Face layout).
 *
 * ids -> token + position embedding -> causal transformer -> the hidden state
 * at the end-of-text token (the largest id, so argmax finds it) ->
 * final_layer_norm -> @ proj^T.  With a causal mask no token sees a later
 * one, so the tokens after a text's end-of-text cannot change its result:
 * they are not computed.  Texts of different lengths are packed one after
 * another, so a batch costs the sum of its lengths, not batch x 77. */
#include "nn/text-tower.h"

#include "nn/tower-core.h"

#include "kernels/ops.h"
#include "nn/backward.h"
#include "nn/block-train.h"
#include "support/error.h"

#include <string.h>

struct AgcTextTower
{
  AgcTowerConfig config;
  int embed_dim;                  // E
  /* the float32 tensors (text-tower.h), the projection possibly mapped
   * from the file (read only); token_embedding and blocks NULL: the table
   * and the blocks stay as stored, below */
  AgcTextParams params;
  AgcParam token_table;           // [V, W], as stored: rows converted on lookup
  AgcTransformer transformer;
  GPtrArray *owned;               // float32 copies made at load
  GHashTable *replaced;           // name -> float32 array set by an adapter, or NULL
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
    return agc_fail_at (error, AGC_ERROR_UNSUPPORTED, "text tower",
                        "vocabulary size %d, context length %d and projection_dim %d must be "
                        "positive",
                        c->vocab_size, c->context_length, config->projection_dim),
           NULL;

  g_autoptr (AgcTextTower) t = g_new0 (AgcTextTower, 1);
  t->config = *c;
  t->embed_dim = config->projection_dim;
  t->owned = g_ptr_array_new_with_free_func (g_free);
  int64_t w = c->width;
  int64_t tok_shape[2] = { c->vocab_size, w }, pos_shape[2] = { c->context_length, w };
  int64_t proj_shape[2] = { t->embed_dim, w };
  const AgcWeights *ws = weights;
  GPtrArray *o = t->owned;
  gboolean ok
    = agc_param_view (&t->token_table, ws, "text_model.embeddings.token_embedding.weight", 2,
                      tok_shape, o, error)
      && (t->params.position = agc_param_take_f32 (
            ws, "text_model.embeddings.position_embedding.weight", 2, pos_shape, o, error))
      && agc_transformer_load (&t->transformer, ws, "text_model.encoder.layers.", c, error)
      && (t->params.final_ln_weight
          = agc_param_take_f32 (ws, "text_model.final_layer_norm.weight", 1, &w, o, error))
      && (t->params.final_ln_bias
          = agc_param_take_f32 (ws, "text_model.final_layer_norm.bias", 1, &w, o, error))
      && (t->params.projection
          = (float *) agc_param_view_f32 (ws, "text_projection.weight", 2, proj_shape, o, error));
  return ok ? g_steal_pointer (&t) : NULL;
}

void
agc_text_tower_free (AgcTextTower *t)
{
  if (t == NULL)
    return;
  agc_transformer_clear (&t->transformer);
  g_ptr_array_unref (t->owned);
  g_clear_pointer (&t->replaced, g_hash_table_unref);
  agc_arena_clear (&t->arena);
  g_free (t);
}

/* ---- replacing tensors (adapters) ------------------------------------------ */

// the slot of name (Hugging Face naming).  The token table is not
// replaceable: adapters train blocks and the head.
static gboolean
find_slot (AgcTensorSlot *slot, void *tower, const char *name)
{
  AgcTextTower *t = tower;
  int64_t w = t->config.width;
  const AgcNamedTensor table[] = {
    { "text_model.embeddings.position_embedding.weight", &t->params.position, 2,
      { t->config.context_length, w } },
    { "text_model.final_layer_norm.weight", &t->params.final_ln_weight, 1, { w } },
    { "text_model.final_layer_norm.bias", &t->params.final_ln_bias, 1, { w } },
    { "text_projection.weight", &t->params.projection, 2, { t->embed_dim, w } },
  };
  return agc_tensor_slot_of_layers (slot, t->transformer.layers, &t->config,
                                    "text_model.encoder.layers.", name)
         || agc_tensor_slot_of_table (slot, table, G_N_ELEMENTS (table), name);
}

gboolean
agc_text_tower_owns_tensor (const char *name)
{
  return g_str_has_prefix (name, "text_model.") || g_str_has_prefix (name, "text_projection.");
}

gboolean
agc_text_tower_set_tensor (AgcTextTower *t, const char *name, const float *data, int n_dims,
                           const int64_t *shape, GError **error)
{
  return agc_tower_set_tensor (t, find_slot, "text tower", t != NULL ? &t->replaced : NULL,
                               name, data, n_dims, shape, error);
}

const AgcTowerConfig *
agc_text_tower_config (const AgcTextTower *t)
{
  g_return_val_if_fail (t != NULL, NULL);
  return &t->config;
}

int
agc_text_tower_embed_dim (const AgcTextTower *t)
{
  g_return_val_if_fail (t != NULL, 0);
  return t->embed_dim;
}

int
agc_text_ids_length (const int32_t *row, int context_length)
{
  int eot = 0; // pooling position: the first largest id, as torch.argmax
  for (int i = 1; i < context_length; i++)
    if (row[i] > row[eot])
      eot = i;
  return eot + 1;
}

// lengths[b] of each text (up to its end-of-text token), *rows their sum;
// ids outside the vocabulary are an error
static gboolean
text_lengths (const AgcTextTower *t, const int32_t *ids, int batch, int *lengths, size_t *rows,
              GError **error)
{
  int ctx = t->config.context_length;
  *rows = 0;
  for (int b = 0; b < batch; b++)
    {
      const int32_t *row = ids + (size_t) b * ctx;
      for (int i = 0; i < ctx; i++)
        if (row[i] < 0 || row[i] >= t->config.vocab_size)
          {
            g_set_error (error, AGC_ERROR, AGC_ERROR_INPUT,
                         "text %d of the batch: token id %d at position %d is outside "
                         "the vocabulary [0, %d)",
                         b, row[i], i, t->config.vocab_size);
            return FALSE;
          }
      lengths[b] = agc_text_ids_length (row, ctx);
      *rows += lengths[b];
    }
  return TRUE;
}

// x[sum of lengths, W]: each text's tokens up to its end-of-text, packed one
// after another, token + position embedding
static void
embed_packed (const AgcTextTower *t, const int32_t *ids, int batch, const int *lengths, float *x)
{
  int ctx = t->config.context_length, w = t->config.width;
  float *xr = x;
  for (int b = 0; b < batch; b++)
    {
      const int32_t *row = ids + (size_t) b * ctx;
      for (int i = 0; i < lengths[b]; i++, xr += w)
        {
          const float *pos = t->params.position + (size_t) i * w;
          agc_param_convert (xr, &t->token_table, (size_t) row[i] * w, w);
          for (int j = 0; j < w; j++)
            xr[j] += pos[j];
        }
    }
}

gboolean
agc_text_tower_forward (const AgcTextTower *t, const int32_t *ids, int batch, float *out,
                        GError **error)
{
  g_return_val_if_fail (t != NULL && ids != NULL && out != NULL && batch > 0, FALSE);

  int w = t->config.width;
  // the tower is not thread-safe (agriclip.h): its scratch is its own
  AgcArena *arena = (AgcArena *) &t->arena;
  size_t rows;
  g_autofree int *lengths = g_new (int, batch);
  if (!text_lengths (t, ids, batch, lengths, &rows, error))
    return FALSE;
  size_t need = agc_arena_size (rows * w) + agc_arena_size ((size_t) batch * w)
                + agc_arena_size ((size_t) batch);

  float *cursor = agc_arena_reserve (arena, need, "a batch of texts", error);
  if (cursor == NULL)
    return FALSE;
  float *x = agc_arena_take (&cursor, rows * w);                 // [sum of lengths, W]
  float *pooled = agc_arena_take (&cursor, (size_t) batch * w);  // [B, W]
  int *eot_rows = (int *) agc_arena_take (&cursor, (size_t) batch); // [B]

  embed_packed (t, ids, batch, lengths, x);
  for (int b = 0, first = 0; b < batch; first += lengths[b], b++)
    eot_rows[b] = first + lengths[b] - 1; // its last row
  if (!agc_transformer_forward_packed (&t->transformer, x, batch, lengths, TRUE, error))
    return FALSE;
  const AgcTextParams *p = &t->params;
  agc_head_forward (out, NULL, pooled, x, eot_rows, batch, p->final_ln_weight, p->final_ln_bias,
                    p->projection, &t->config, t->embed_dim,
                    t->transformer.options.products_only);
  return TRUE;
}

gboolean
agc_text_tower_forward_hidden (const AgcTextTower *t, const int32_t *ids, int batch,
                               int n_layers, float *hidden, GError **error)
{
  g_return_val_if_fail (t != NULL && ids != NULL && hidden != NULL && batch > 0, FALSE);
  g_return_val_if_fail (n_layers >= 0 && n_layers <= t->config.layers, FALSE);
  size_t rows;
  g_autofree int *lengths = g_new (int, batch);
  if (!text_lengths (t, ids, batch, lengths, &rows, error))
    return FALSE;
  embed_packed (t, ids, batch, lengths, hidden);
  if (n_layers == 0)
    return TRUE;
  AgcTransformer lower = t->transformer;
  lower.config.layers = n_layers;
  return agc_transformer_forward_packed (&lower, hidden, batch, lengths, TRUE, error);
}

void
agc_text_tower_copy_top (const AgcTextTower *t, int first_layer, AgcTextParams *out)
{
  g_return_if_fail (t != NULL && first_layer >= 0 && first_layer <= t->config.layers);
  agc_tower_copy_top (out->blocks, out->final_ln_weight, out->final_ln_bias, out->projection,
                      &t->transformer, first_layer, t->params.final_ln_weight,
                      t->params.final_ln_bias, t->params.projection, t->embed_dim);
}

/* ---- training mode (text-tower.h) ----------------------------------------- */

void
agc_text_params_carve (AgcTextParams *p, AgcCarver *k, const AgcTowerConfig *c, int embed_dim,
                       int n_blocks, gboolean embeds)
{
  size_t w = c->width, e = embed_dim;
  if (embeds)
    p->position = agc_carve_take (k, (size_t) c->context_length * w);
  for (int l = 0; l < n_blocks; l++)
    agc_block_carve (&p->blocks[l], k, c);
  p->final_ln_weight = agc_carve_take (k, w);
  p->final_ln_bias = agc_carve_take (k, w);
  p->projection = agc_carve_take (k, e * w);
}

AgcTextActs *
agc_text_acts_new (const AgcClipConfig *config, int batch)
{
  const AgcTowerConfig *c = &config->text;
  AgcTowerActs *a = g_new0 (AgcTowerActs, 1);
  agc_tower_acts_init (a, c, config->projection_dim, c->layers, batch, c->context_length);
  a->row_ids = g_new0 (int32_t, (size_t) batch * c->context_length);
  return a;
}

AgcTextActs *
agc_text_acts_new_top (const AgcTowerConfig *config, int embed_dim, int n_blocks, int batch)
{
  AgcTowerActs *a = g_new0 (AgcTowerActs, 1);
  agc_tower_acts_init (a, config, embed_dim, n_blocks, batch, config->context_length);
  return a;
}

void
agc_text_tower_forward_top (float *emb, AgcTextActs *a, const float *hidden, const int *lengths,
                            const AgcTextParams *w)
{
  g_return_if_fail (a->row_ids == NULL);
  AgcTowerActs *s = a;
  int width = s->config.width, batch = s->batch, n_tok = 1;
  for (int b = 0; b < batch; b++)
    n_tok = MAX (n_tok, lengths[b]);
  agc_tower_acts_set_tokens (s, n_tok);
  // [B, T, W] padded with zeros after each end-of-text: the causal mask
  // keeps the padding out of every row that counts
  memset (s->x, 0, (size_t) batch * n_tok * width * sizeof (float));
  const float *from = hidden;
  for (int b = 0; b < batch; b++)
    {
      size_t n = (size_t) lengths[b] * width;
      memcpy (s->x + (size_t) b * n_tok * width, from, n * sizeof (float));
      from += n;
      s->pool_rows[b] = b * n_tok + lengths[b] - 1;
    }
  agc_tower_stack_forward (emb, s, w->blocks, w->final_ln_weight, w->final_ln_bias,
                           w->projection, TRUE);
}

void
agc_text_tower_forward_train (float *emb, AgcTextActs *a, const int32_t *ids,
                              const AgcTextParams *w)
{
  AgcTowerActs *s = a;
  int width = s->config.width, ctx = s->config.context_length, batch = s->batch;
  int n_tok = 1;
  for (int b = 0; b < batch; b++)
    {
      const int32_t *row = ids + (size_t) b * ctx;
      int eot = 0; // the first largest id, as torch.argmax
      for (int i = 1; i < ctx; i++)
        if (row[i] > row[eot])
          eot = i;
      s->pool_rows[b] = eot; // position for now, row below
      n_tok = MAX (n_tok, eot + 1);
    }
  agc_tower_acts_set_tokens (s, n_tok);
  int rows = batch * n_tok;
  for (int b = 0; b < batch; b++)
    {
      memcpy (a->row_ids + (size_t) b * n_tok, ids + (size_t) b * ctx, n_tok * sizeof (int32_t));
      s->pool_rows[b] += b * n_tok;
    }
  agc_embedding_forward (s->x, a->row_ids, w->token_embedding, rows, width);
  for (int r = 0; r < rows; r++)
    {
      float *xr = s->x + (size_t) r * width;
      const float *pos = w->position + (size_t) (r % n_tok) * width;
      for (int i = 0; i < width; i++)
        xr[i] += pos[i];
    }
  agc_tower_stack_forward (emb, s, w->blocks, w->final_ln_weight, w->final_ln_bias,
                           w->projection, TRUE);
}

void
agc_text_tower_backward (AgcTextParams *g, const float *demb, AgcTextActs *a,
                         const AgcTextParams *w, const float **dtokens,
                         const int32_t **row_ids, int *n_rows)
{
  AgcTowerActs *s = a;
  int width = s->config.width, n_tok = s->n_tokens, rows = s->batch * n_tok;
  gboolean embeds = a->row_ids != NULL; // the top alone has no use for its input's gradient
  const float *dx = agc_tower_stack_backward (g->blocks, g->final_ln_weight, g->final_ln_bias,
                                              g->projection, demb, s, w->blocks,
                                              w->final_ln_weight, w->projection, embeds);
  if (!embeds)
    {
      *dtokens = NULL, *row_ids = NULL, *n_rows = 0;
      return;
    }
  // x = token_embedding[ids] + position[t]: the table's share goes to the caller
  for (int r = 0; r < rows; r++)
    {
      const float *dr = dx + (size_t) r * width;
      float *dpos = g->position + (size_t) (r % n_tok) * width;
      for (int i = 0; i < width; i++)
        dpos[i] += dr[i];
    }
  *dtokens = dx;
  *row_ids = a->row_ids;
  *n_rows = rows;
}
