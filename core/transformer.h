/* transformer.h — the pre-norm residual attention blocks shared by CLIP's
 * image and text towers:
 *   x = x + out_proj(attention(ln_1(x)))   (causal for text)
 *   x = x + fc2(act(fc1(ln_2(x)))) */
#pragma once

#include "clip-config.h"
#include "weights.h"

typedef struct
{
  float *ln1_weight, *ln1_bias; /* [D] */
  float *qkv_weight;            /* [3D, D], rows q then k then v */
  float *qkv_bias;              /* [3D] */
  float *out_weight;            /* [D, D] */
  float *out_bias;              /* [D] */
  float *ln2_weight, *ln2_bias; /* [D] */
  float *fc1_weight;            /* [M, D] */
  float *fc1_bias;              /* [M] */
  float *fc2_weight;            /* [D, M] */
  float *fc2_bias;              /* [D] */
} AgcBlock;

typedef struct
{
  AgcTowerConfig config;
  AgcBlock *blocks; /* [config.layers] */
} AgcTransformer;

/* Loads blocks named in the Hugging Face layout under prefix, e.g.
 * "vision_model.encoder.layers." (q/k/v projections fused on load). */
gboolean agc_transformer_load (AgcTransformer *transformer, const AgcWeights *weights,
                               const char *prefix, const AgcTowerConfig *config, GError **error);
void agc_transformer_clear (AgcTransformer *transformer);

/* x[batch, n_tokens, D] in place.  causal: token t attends to tokens <= t. */
gboolean agc_transformer_forward (const AgcTransformer *transformer, float *x, int batch,
                                  int n_tokens, gboolean causal, GError **error);
