/* text-tower.h — CLIP's causal text encoder: token + position embedding,
 * transformer with a causal mask, final layer norm, the hidden state at the
 * end-of-text token (the argmax id), projection.  Because the mask is causal
 * each text runs only up to its own end-of-text token. */
#pragma once

#include "nn/transformer.h"

typedef struct AgcTextTower AgcTextTower;

/* Hugging Face names: text_model.*, text_projection.weight. */
AgcTextTower *agc_text_tower_load (const AgcWeights *weights, const AgcClipConfig *config,
                                   GError **error);
void agc_text_tower_free (AgcTextTower *tower);

/* The options the tower runs with from its next call (agriclip.h); int8 is
 * ignored: texts stay float32. */
gboolean agc_text_tower_set_options (AgcTextTower *tower, const AgcEngineOptions *options,
                                     GError **error);

/* ids[batch, context_length] -> out[batch, E], not normalised.  Ids outside
 * the vocabulary are an AGC_ERROR_INPUT error. */
gboolean agc_text_tower_forward (const AgcTextTower *tower, const int32_t *ids, int batch,
                                 float *out, GError **error);
