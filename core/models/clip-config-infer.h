/* clip-config-infer.h — hyper-parameters of OpenAI / open_clip checkpoints,
 * which carry no config.json: inferred from the shapes of their OpenAI-named
 * tensors (weight-names.h), or declared by open_clip's open_clip_config.json
 * (open-clip-config.h) and checked against those shapes. */
#pragma once

#include "models/clip-config.h"
#include "formats/weights.h"

/* Fills *config from openai's tensor shapes:
 *   vision width D, patch p   visual.conv1.weight [D, 3, p, p]
 *   image size                p * sqrt(rows of visual.positional_embedding - 1)
 *   layers                    resblocks numbered 0 .. layers-1
 *   MLP width M               resblocks.0.mlp.c_fc.weight [M, D]
 *   text width W, vocabulary  token_embedding.weight [V, W]
 *   context length            positional_embedding [C, W]
 *   projection dim E          text_projection [W, E] (and visual.proj [D, E])
 * then checks every tensor the towers read (existence, floating-point dtype,
 * exact shape), so a broken file is reported in its own names
 * ("visual.ln_pre.weight has shape [48], expected [64]").
 *
 * declared NULL: OpenAI's conventions: heads = width / 64 (a width that is no
 * multiple of 64 is AGC_ERROR_UNSUPPORTED: the head count cannot be told),
 * QuickGELU, layer norm eps 1e-5.
 * declared non-NULL (from agc_open_clip_config_load; declared_path names it
 * in messages): its heads, activation and eps are used, and every size it
 * states must equal the inferred one (AGC_ERROR_MODEL naming the key and the
 * tensor).
 *
 * AGC_ERROR_UNSUPPORTED for a ResNet image tower (visual.layer1…) or
 * attentional pooling (visual.attn_pool…); AGC_ERROR_MODEL for missing or
 * misshapen tensors. */
gboolean agc_clip_config_infer (AgcClipConfig *config, const AgcWeights *openai,
                                const AgcClipConfig *declared, const char *declared_path,
                                GError **error);
