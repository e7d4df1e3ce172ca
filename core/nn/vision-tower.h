/* vision-tower.h — CLIP's ViT image encoder: patch embedding (conv without
 * bias), class token, position embedding, ln_pre, transformer, ln_post on
 * the class token, projection.
 *
 * Fine-tuning (finetune-train.c) runs the tower in two parts: the frozen
 * layers once per image (agc_vision_tower_forward_hidden, the same code as
 * the whole forward), then the top in training mode (below) from float32
 * copies of its blocks and head (agc_vision_tower_copy_top).  Adapters
 * replace tensors of a loaded tower with agc_vision_tower_set_tensor. */
#pragma once

#include "nn/block-train.h"
#include "nn/tower-core.h"
#include "nn/transformer.h"

typedef struct AgcVisionTower AgcVisionTower;

/* Hugging Face names: vision_model.*, visual_projection.weight. */
AgcVisionTower *agc_vision_tower_load (const AgcWeights *weights, const AgcClipConfig *config,
                                       GError **error);
void agc_vision_tower_free (AgcVisionTower *tower);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (AgcVisionTower, agc_vision_tower_free)

/* pixels[batch, 3, S, S] -> out[batch, E], not normalised. */
gboolean agc_vision_tower_forward (const AgcVisionTower *tower, const float *pixels, int batch,
                                   float *out, GError **error);

/* The options the tower runs with from its next call (agriclip.h), given
 * to its transformer (agc_transformer_set_options, with its errors): int8
 * applies to the transformer blocks alone, the patch embedding, layer
 * norms, attention and projection stay float32.  Replacing a block matrix
 * (set_tensor) drops its int8 copy. */
gboolean agc_vision_tower_set_options (AgcVisionTower *tower, const AgcEngineOptions *options,
                                       GError **error);
AgcEngineOptions agc_vision_tower_get_options (const AgcVisionTower *tower);

/* The tower's transformer settings (width D, layers L, heads ...). */
const AgcTowerConfig *agc_vision_tower_config (const AgcVisionTower *tower);
int agc_vision_tower_n_tokens (const AgcVisionTower *tower); /* T = (S / p)^2 + 1 */
int agc_vision_tower_embed_dim (const AgcVisionTower *tower); /* E */

/* pixels[batch, 3, S, S] -> hidden[batch, T, D]: the residual stream after
 * the first n_layers blocks (0 .. L), i.e. the input of block n_layers. */
gboolean agc_vision_tower_forward_hidden (const AgcVisionTower *tower, const float *pixels,
                                          int batch, int n_layers, float *hidden,
                                          GError **error);

/* Replaces the tower's tensor of Hugging Face name (vision_model.* or
 * visual_projection.weight) with the float32 values data[shape]; the tower
 * keeps its own copy.  AGC_ERROR_MODEL naming the tensor when the tower has
 * no tensor of that name or its shape differs.  Setting the same tensor
 * again reuses the copy.  data NULL: the same checks, nothing set
 * (agc_tower_set_tensor). */
gboolean agc_vision_tower_set_tensor (AgcVisionTower *tower, const char *name, const float *data,
                                      int n_dims, const int64_t *shape, GError **error);

/* ---- training mode (clip-train.h, finetune.h): float32 parameters, a
 * forward that keeps its activations, the backward beside it ----
 *   embed = patch_embed(pixels) + [class, 0...] + position   // [B, T, D]
 *   x = ln_pre(embed); x = block_l(x) for each l
 *   emb = ln_post(x[:, 0]) @ projection^T                    // [B, E]
 * Fine-tuning trains the top alone: the last K blocks and the head, from
 * hidden[B, T, D], the output of the frozen blocks below. */

/* The tower's tensors, one layout for the loaded tower and for training's
 * weights, gradients and AdamW moments (carved by agc_vision_params_carve).
 * A loaded tower's are float32 (mapped from the file or copied), its blocks
 * NULL: those stay as stored, in its transformer.  The top alone: blocks
 * [K] are layers L-K .., the embedding's arrays unused. */
typedef struct
{
  float *patch_weight;                  // [D, 3, p, p]
  float *class_embedding;               // [D]
  float *position;                      // [T, D], T = (S/p)^2 + 1
  float *pre_ln_weight, *pre_ln_bias;   // [D]
  AgcBlock *blocks;                     // [L] (the top: [K]), fused qkv
  float *post_ln_weight, *post_ln_bias; // [D]
  float *projection;                    // [E, D]
} AgcVisionParams;

/* Takes p's arrays from k (block-train.h), in the order of the struct: the
 * whole tower, or (embeds FALSE) the top alone, n_blocks blocks and the
 * head.  p->blocks[n_blocks] is the caller's. */
void agc_vision_params_carve (AgcVisionParams *p, AgcCarver *k, const AgcTowerConfig *config,
                              int embed_dim, int n_blocks, gboolean embeds);

/* The tower's training activations: tower-core.h's, with the embedding's
 * arrays (the whole tower) or without (the top alone). */
typedef AgcTowerActs AgcVisionActs;

/* Activations for batch images of a tower of config. */
AgcVisionActs *agc_vision_acts_new (const AgcClipConfig *config, int batch);
/* Activations for the top n_blocks blocks (config's width, heads, ...;
 * its layers unread) and the head, batch sequences of n_tokens. */
AgcVisionActs *agc_vision_acts_new_top (const AgcTowerConfig *config, int embed_dim, int n_blocks,
                                        int batch, int n_tokens);
/* (freed by agc_tower_acts_free) */
/* emb[batch, E] = tower(pixels[batch, 3, S, S]), keeping activations
 * (acts of agc_vision_acts_new). */
void agc_vision_tower_forward_train (float *emb, AgcVisionActs *acts, const float *pixels,
                                     const AgcVisionParams *w);
/* emb[batch, E] = top(hidden[batch, T, D]), keeping activations (acts of
 * agc_vision_acts_new_top). */
void agc_vision_tower_forward_top (float *emb, AgcVisionActs *acts, const float *hidden,
                                   const AgcVisionParams *w);
/* Adds the weight gradients for demb[batch, E] into grads (the top's
 * acts: its blocks and head only). */
void agc_vision_tower_backward (AgcVisionParams *grads, const float *demb, AgcVisionActs *acts,
                                const AgcVisionParams *w);

/* Inference of the top in training's layout (validating while training):
 * x[batch, n_tokens, D], the input of its first block (overwritten) ->
 * out[batch, E], not normalised, through the blocks of w (config->layers of
 * them) and the head, keeping nothing.  scratch: the blocks' reused
 * activations (transformer.h). */
gboolean agc_vision_top_forward (float *out, float *x, int batch, int n_tokens,
                                 const AgcVisionParams *w, const AgcTowerConfig *config,
                                 int embed_dim, AgcArena *scratch, GError **error);

/* Float32 copies of the top for training it: blocks first_layer .. L-1
 * into out->blocks[0 ..] (agc_block_train_init arrays, fused qkv [3D, D],
 * rows q, k, v), ln_post and the projection into out's arrays. */
void agc_vision_tower_copy_top (const AgcVisionTower *tower, int first_layer,
                                AgcVisionParams *out);
/* Float32 copies of the embedding (patch kernel, class and position
 * embeddings, ln_pre) into out's arrays: with copy_top (first_layer 0),
 * the whole tower for training it (DINO). */
void agc_vision_tower_copy_embeddings (const AgcVisionTower *tower, AgcVisionParams *out);
