/* weight-names.h — OpenAI / open_clip CLIP checkpoints seen under the
 * Hugging Face names the towers read (REFERENCE.md §2).
 *
 *   if (agc_weights_has_openai_names (weights))
 *     weights = agc_weights_new_hf_view (weights, &error); // consumes weights
 *
 * The view renames tensors without copying them, with three exceptions:
 * - attn.in_proj_weight [3D, D] / in_proj_bias [3D] become the q, k and v
 *   projections (rows 0..D-1, D..2D-1, 2D..3D-1), each a view into the
 *   original bytes, in its stored dtype;
 * - visual.proj [D, E] and text_projection [W, E], which OpenAI applies as
 *   x @ proj, become visual_projection.weight [E, D] and
 *   text_projection.weight [E, W]: transposed float32 copies owned by the
 *   view.
 * Buffers that OpenAI archives carry besides the weights (any tensor whose
 * last name component is attn_mask, input_resolution, context_length or
 * vocab_size) are left out.  open_clip's CustomTextCLIP keeps its text tower
 * under "text." ("text.token_embedding.weight"); both layouts are read.
 *
 * Only the names are translated here: hyper-parameters and shapes are
 * checked by clip-config-infer.h. */
#pragma once

#include "formats/weights.h"

/* TRUE when weights use OpenAI / open_clip names: a tensor under "visual.",
 * or a text token embedding at the top level or under "text.".  Hugging Face
 * names never start so ("visual_projection.weight" has an underscore). */
gboolean agc_weights_has_openai_names (const AgcWeights *weights);

/* "text." for open_clip's CustomTextCLIP layout, otherwise "". */
const char *agc_weights_openai_text_prefix (const AgcWeights *weights);

/* A derived set (weights.h) holding every tensor of openai under its
 * Hugging Face name, in openai's order.  Takes ownership of openai, also on
 * failure (then freed).  Errors name the file and the tensor:
 * AGC_ERROR_UNSUPPORTED for a tensor that belongs to no part of a ViT CLIP
 * (a ResNet image tower, attentional pooling, layer scale: running the rest
 * without it would give wrong embeddings), AGC_ERROR_MODEL for an
 * in_proj_weight that is not [3D, D] (an in_proj_bias not [3D]) or a
 * projection that is not a floating-point matrix. */
AgcWeights *agc_weights_new_hf_view (AgcWeights *openai, GError **error);
