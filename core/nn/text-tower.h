/* text-tower.h — CLIP's causal text encoder: token + position embedding,
 * transformer with a causal mask, final layer norm, the hidden state at the
 * end-of-text token (the argmax id), projection.  Because the mask is causal
 * each text runs only up to its own end-of-text token. */
#pragma once

#include "nn/block-train.h"
#include "nn/tower-core.h"
#include "nn/transformer.h"

typedef struct AgcTextTower AgcTextTower;

/* Hugging Face names: text_model.*, text_projection.weight. */
AgcTextTower *agc_text_tower_load (const AgcWeights *weights, const AgcClipConfig *config,
                                   GError **error);
void agc_text_tower_free (AgcTextTower *tower);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (AgcTextTower, agc_text_tower_free)

/* The options the tower runs with from its next call (agriclip.h); int8 is
 * ignored: texts stay float32. */
gboolean agc_text_tower_set_options (AgcTextTower *tower, const AgcEngineOptions *options,
                                     GError **error);

/* Whether a Hugging Face CLIPModel tensor name is the text tower's
 * (text_model.*, text_projection.*). */
gboolean agc_text_tower_owns_tensor (const char *name);
/* Replaces a tensor of the loaded tower by its Hugging Face name
 * (text_model.encoder.layers.N.*, the position table, final_layer_norm,
 * text_projection.weight; not the token table) with data (float32 of
 * shape[n_dims], which must be the tower's): AGC_ERROR_MODEL for another
 * name or shape.  data NULL: the same checks, nothing set
 * (agc_tower_set_tensor). */
gboolean agc_text_tower_set_tensor (AgcTextTower *tower, const char *name, const float *data,
                                    int n_dims, const int64_t *shape, GError **error);

/* ids[batch, context_length] -> out[batch, E], not normalised.  Ids outside
 * the vocabulary are an AGC_ERROR_INPUT error. */
gboolean agc_text_tower_forward (const AgcTextTower *tower, const int32_t *ids, int batch,
                                 float *out, GError **error);

/* The tower's transformer settings (width W, layers L, context ...) and E. */
const AgcTowerConfig *agc_text_tower_config (const AgcTextTower *tower);
int agc_text_tower_embed_dim (const AgcTextTower *tower);

/* The tokens of a text that count, ids row[context_length]: up to its
 * end-of-text token (the first largest id), that one included. */
int agc_text_ids_length (const int32_t *row, int context_length);

/* ids[batch, ctx] -> hidden: the residual stream after the first n_layers
 * blocks (0 .. L), i.e. the input of block n_layers, of each text's
 * agc_text_ids_length tokens, packed one text after another: [sum of the
 * lengths, W].  The same code as the whole forward. */
gboolean agc_text_tower_forward_hidden (const AgcTextTower *tower, const int32_t *ids, int batch,
                                        int n_layers, float *hidden, GError **error);

/* ---- training mode (clip-train.h, contrastive.h): float32 parameters, a
 * forward that keeps its activations, the backward beside it ----
 *   x = token_embedding[ids] + position                      // [B, T, W]
 *   x = causal_block_l(x) for each l
 *   emb = final_ln(x[b, eot_b]) @ projection^T               // [B, E]
 * With the causal mask, tokens after a text's end-of-text token cannot
 * change its result, so the batch runs only T = max_b eot_b + 1 tokens.
 * Fine-tuning trains the top alone, as the image tower's (vision-tower.h):
 * the last K blocks and the head, from the packed output of the frozen
 * blocks below (agc_text_tower_forward_hidden). */

/* The tower's tensors, one layout for the loaded tower and for training's
 * weights, gradients and AdamW moments (carved by agc_text_params_carve).
 * A loaded tower's are float32 (mapped from the file or copied), its token
 * table and blocks NULL: those stay as stored (half precision read row by
 * row; the blocks in its transformer). */
typedef struct
{
  float *token_embedding;                 // [V, W]
  float *position;                        // [ctx, W]
  AgcBlock *blocks;                       // [L], fused qkv
  float *final_ln_weight, *final_ln_bias; // [W]
  float *projection;                      // [E, W]
} AgcTextParams;

/* Takes p's arrays from k (block-train.h), in the order of the struct but
 * for the token table, which is left to the caller (a CLIP's goes last:
 * clip-train.h): the whole tower (embeds TRUE: with the position table,
 * n_blocks = L), or the top alone (embeds FALSE: n_blocks blocks and the
 * head).  p->blocks[n_blocks] is the caller's. */
void agc_text_params_carve (AgcTextParams *p, AgcCarver *k, const AgcTowerConfig *config,
                            int embed_dim, int n_blocks, gboolean embeds);

/* The tower's training activations: tower-core.h's, with the looked-up
 * ids. */
typedef AgcTowerActs AgcTextActs;

AgcTextActs *agc_text_acts_new (const AgcClipConfig *config, int batch);
/* Activations for the top n_blocks blocks (config's width, heads,
 * context; its layers unread) and the head, batch texts. */
AgcTextActs *agc_text_acts_new_top (const AgcTowerConfig *config, int embed_dim, int n_blocks,
                                    int batch);
/* (freed by agc_tower_acts_free) */
/* emb[batch, E] = tower(ids[batch, ctx]), keeping activations; only the
 * first max(end-of-text position) + 1 tokens run (causal: exact). */
void agc_text_tower_forward_train (float *emb, AgcTextActs *acts, const int32_t *ids,
                                   const AgcTextParams *w);
/* emb[batch, E] = top(hidden), keeping activations (acts of
 * agc_text_acts_new_top): hidden packed as agc_text_tower_forward_hidden
 * writes it, text b's lengths[b] rows; run as [batch, max length] with
 * zeros after each text (the causal mask keeps them out). */
void agc_text_tower_forward_top (float *emb, AgcTextActs *acts, const float *hidden,
                                 const int *lengths, const AgcTextParams *w);
/* Adds the weight gradients for demb[batch, E] into grads, except the
 * token table's: the gradient of the looked-up rows is left in dtokens,
 * [*n_rows, W] for the ids *row_ids (both owned by acts).  The top's acts:
 * its blocks and head only (*dtokens NULL, *n_rows 0). */
void agc_text_tower_backward (AgcTextParams *grads, const float *demb, AgcTextActs *acts,
                              const AgcTextParams *w, const float **dtokens,
                              const int32_t **row_ids, int *n_rows);

/* Float32 copies of the top for training it: blocks first_layer .. L-1
 * into out->blocks[0 ..] (fused qkv [3W, W], rows q, k, v),
 * final_layer_norm and the projection into out's arrays. */
void agc_text_tower_copy_top (const AgcTextTower *tower, int first_layer, AgcTextParams *out);
