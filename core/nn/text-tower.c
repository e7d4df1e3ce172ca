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
