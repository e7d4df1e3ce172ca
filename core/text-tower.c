/* text-tower.c — CLIP's causal text encoder (Hugging Face layout).
 *
 * ids -> token + position embedding -> causal transformer -> the hidden state
 * at the end-of-text token (the largest id, so argmax finds it) ->
 * final_layer_norm -> @ proj^T.  With a causal mask no token sees a later
 * one, so tokens after the last end-of-text of the batch cannot change the
 * result: they are not computed. */
#include "text-tower.h"

#include "ops.h"

#include <string.h>

struct AgcTextTower
{
  AgcTowerConfig config;
  int embed_dim;             // E
  float *token_embedding;    // [V, W]
  float *position_embedding; // [ctx, W]
  AgcTransformer transformer;
  float *final_ln_weight, *final_ln_bias; // [W]
  float *projection;         // [E, W]
};

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
  int64_t w = c->width;
  const AgcWeights *ws = weights;
  gboolean ok
    = (t->token_embedding = agc_weights_take_2d (ws, "text_model.embeddings.token_embedding.weight",
                                                 c->vocab_size, w, error))
      && (t->position_embedding
          = agc_weights_take_2d (ws, "text_model.embeddings.position_embedding.weight",
                                 c->context_length, w, error))
      && agc_transformer_load (&t->transformer, ws, "text_model.encoder.layers.", c, error)
      && (t->final_ln_weight
          = agc_weights_take_1d (ws, "text_model.final_layer_norm.weight", w, error))
      && (t->final_ln_bias = agc_weights_take_1d (ws, "text_model.final_layer_norm.bias", w, error))
      && (t->projection
          = agc_weights_take_2d (ws, "text_projection.weight", t->embed_dim, w, error));
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
  g_free (t->token_embedding);
  g_free (t->position_embedding);
  agc_transformer_clear (&t->transformer);
  g_free (t->final_ln_weight);
  g_free (t->final_ln_bias);
  g_free (t->projection);
  g_free (t);
}

gboolean
agc_text_tower_forward (const AgcTextTower *t, const int32_t *ids, int batch, float *out,
                        GError **error)
{
  g_return_val_if_fail (t != NULL && ids != NULL && out != NULL && batch > 0, FALSE);

  int ctx = t->config.context_length, w = t->config.width;
  int *eot = g_new (int, batch); // pooling position of each text: argmax of its ids
  int n_tok = 1;
  for (int b = 0; b < batch; b++)
    {
      const int32_t *row = ids + (size_t) b * ctx;
      eot[b] = 0;
      for (int i = 0; i < ctx; i++)
        {
          if (row[i] < 0 || row[i] >= t->config.vocab_size)
            {
              g_set_error (error, AGC_ERROR, AGC_ERROR_INPUT,
                           "text %d of the batch: token id %d at position %d is outside "
                           "the vocabulary [0, %d)",
                           b, row[i], i, t->config.vocab_size);
              g_free (eot);
              return FALSE;
            }
          if (row[i] > row[eot[b]]) // strict: the first maximum, as torch.argmax
            eot[b] = i;
        }
      n_tok = MAX (n_tok, eot[b] + 1);
    }

  size_t rows = (size_t) batch * n_tok;
  size_t n_floats = rows * w + (size_t) batch * w;
  float *scratch = g_try_new (float, n_floats);
  if (scratch == NULL)
    {
      g_set_error (error, AGC_ERROR, AGC_ERROR_INPUT,
                   "cannot allocate %zu MB for a batch of %d texts",
                   n_floats * sizeof (float) >> 20, batch);
      g_free (eot);
      return FALSE;
    }
  float *x = scratch;                // [B, n_tok, W]
  float *pooled = x + rows * w;      // [B, W]

  for (int b = 0; b < batch; b++)
    for (int i = 0; i < n_tok; i++)
      {
        const float *tok = t->token_embedding + (size_t) ids[(size_t) b * ctx + i] * w;
        const float *pos = t->position_embedding + (size_t) i * w;
        float *xr = x + ((size_t) b * n_tok + i) * w;
        for (int j = 0; j < w; j++)
          xr[j] = tok[j] + pos[j];
      }

  gboolean ok = agc_transformer_forward (&t->transformer, x, batch, n_tok, TRUE, error);
  if (ok)
    {
      // layer norm is per token, so normalising only the pooled rows is exact
      for (int b = 0; b < batch; b++)
        memcpy (pooled + (size_t) b * w, x + ((size_t) b * n_tok + eot[b]) * w,
                (size_t) w * sizeof (float));
      agc_layernorm_forward (pooled, pooled, t->final_ln_weight, t->final_ln_bias, batch, w,
                             t->config.layer_norm_eps);
      agc_linear_forward (out, pooled, t->projection, NULL, batch, w, t->embed_dim);
    }
  g_free (scratch);
  g_free (eot);
  return ok;
}
