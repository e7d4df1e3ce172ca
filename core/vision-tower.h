/* vision-tower.h — CLIP's ViT image encoder: patch embedding (conv without
 * bias), class token, position embedding, ln_pre, transformer, ln_post on
 * the class token, projection. */
#pragma once

#include "transformer.h"

typedef struct AgcVisionTower AgcVisionTower;

/* Hugging Face names: vision_model.*, visual_projection.weight. */
AgcVisionTower *agc_vision_tower_load (const AgcWeights *weights, const AgcClipConfig *config,
                                       GError **error);
void agc_vision_tower_free (AgcVisionTower *tower);

/* pixels[batch, 3, S, S] -> out[batch, E], not normalised. */
gboolean agc_vision_tower_forward (const AgcVisionTower *tower, const float *pixels, int batch,
                                   float *out, GError **error);
