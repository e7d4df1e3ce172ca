/* tower-core.h — what CLIP's two towers share past their embeddings: the
 * stack of residual blocks (transformer.h) and the head on one pooled row
 * per sequence, with the activations training keeps for both (one helper
 * allocates them for the image tower and the text tower alike):
 *   x = block_l(x) for each l                               // [B, T, D]
 *   emb = ln(x[pool_rows[b]]) @ projection^T                // [B, E]
 * The image tower pools the class token, the text tower the end-of-text
 * token. */
#pragma once

#include "nn/transformer.h"

#include <stdint.h>

/* Activations of a head: what its backward needs. */
typedef struct
{
  float *pooled, *pooled_ln;   // [B, D]
  float *mean, *rstd;          // [B]
} AgcHeadActs;

/* emb[batch, E] = ln(x[rows[b]]) @ projection^T (rows index x's rows of
 * width D).  acts NULL: inference, through pooled[batch, D], the layer norm
 * skipped when skip_ln (timing the products alone, agriclip.h); acts: the
 * same calls keeping what the head's backward needs (pooled unused). */
void agc_head_forward (float *emb, AgcHeadActs *acts, float *pooled, const float *x,
                       const int *rows, int batch, const float *ln_weight, const float *ln_bias,
                       const float *projection, const AgcTowerConfig *config, int embed_dim,
                       gboolean skip_ln);

/* The activations of n_blocks blocks and a head for batch sequences of up
 * to max_tokens tokens, each array carved from one allocation.  The
 * towers add their embeddings' own. */
typedef struct
{
  AgcTowerConfig config;       // width D, heads, ...
  int embed_dim;               // E
  int batch, max_tokens;
  int n_tokens;                // T of the last forward; blocks are views for it
  int n_blocks;
  float *x;                    // [B*Tmax, D] the first block's input, then each block's output
  float *dx, *dx_below;        // [B*Tmax, D] gradients of the residual stream
  AgcBlockActs *blocks;        // [n_blocks] views for n_tokens into block_memory
  float *block_memory;         // [n_blocks] block activations, room for Tmax each
  size_t block_floats;         // floats per block in block_memory
  float *block_scratch;        // the blocks' backward scratch, shared, room for Tmax
  AgcArena attention_scratch;  // the blocks' forward attention scratch, shared
  int *pool_rows;              // [B] the pooled row of each sequence in x
  AgcHeadActs head;
  float *dpooled, *dpooled_ln; // [B, D]
  float *memory;               // owns the float arrays above
  // the embedding below the blocks, when the tower trains it (else NULL):
  float *patches;              // ViT: [B*T, 3pp], class rows 0
  float *embed;                // ViT: [B*T, D] before ln_pre
  float *pre_mean, *pre_rstd;  // ViT: [B*T]
  float *embed_memory;         // owns the four above
  int32_t *row_ids;            // text: [B*T] the ids that were looked up
} AgcTowerActs;

void agc_tower_acts_init (AgcTowerActs *acts, const AgcTowerConfig *config, int embed_dim,
                          int n_blocks, int batch, int max_tokens);
void agc_tower_acts_clear (AgcTowerActs *acts);
/* Frees acts made by agc_vision_acts_new*, agc_text_acts_new (the towers'
 * training activations are this one type). */
void agc_tower_acts_free (AgcTowerActs *acts);
/* Makes the blocks' activations views for sequences of n_tokens (<=
 * max_tokens); nothing when they already are. */
void agc_tower_acts_set_tokens (AgcTowerActs *acts, int n_tokens);

/* emb[B, E] = head(blocks(acts->x)) in place in acts->x, keeping the
 * activations (blocks[n_blocks], float32 views of training's arrays). */
void agc_tower_stack_forward (float *emb, AgcTowerActs *acts, const AgcBlock *blocks,
                              const float *ln_weight, const float *ln_bias,
                              const float *projection, gboolean causal);
/* Adds the weight gradients for demb[B, E] into gblocks, gln_weight,
 * gln_bias and gprojection.  Returns the gradient of the first block's
 * input [B*T, D] (acts->dx), or NULL when not want_dinput (the bottom block
 * then skips computing it). */
float *agc_tower_stack_backward (AgcBlock *gblocks, float *gln_weight, float *gln_bias,
                                 float *gprojection, const float *demb, AgcTowerActs *acts,
                                 const AgcBlock *blocks, const float *ln_weight,
                                 const float *projection, gboolean want_dinput);

/* A loaded block (the inference transformer's, any dtype) as float32
 * arrays of a training block (agc_block_train_init layout, fused qkv
 * [3D, D], rows q, k, v): the start of training a tower's top. */
void agc_block_copy_f32 (AgcBlock *out, const AgcLayer *layer, const AgcTowerConfig *config);
/* Float32 copies of a loaded tower's top for training it: the blocks
 * first_layer .. L-1 of transformer into blocks[0 ..] (as
 * agc_block_copy_f32), the head's layer norm (from_ln_weight,
 * from_ln_bias [D]) and projection [E, D] into ln_weight, ln_bias and
 * projection. */
void agc_tower_copy_top (AgcBlock *blocks, float *ln_weight, float *ln_bias, float *projection,
                         const AgcTransformer *transformer, int first_layer,
                         const float *from_ln_weight, const float *from_ln_bias,
                         const float *from_projection, int embed_dim);

/* ---- replacing a loaded tower's tensors (adapters) ---- */

/* Where a tensor of a loaded tower lives: a float32 array to overwrite
 * (vectors the tower owns), a pointer to redirect (matrices that may be
 * mapped from the file), and a part of a linear to read the new copy
 * (block matrices, the patch kernel); its shape (up to four dimensions). */
typedef struct
{
  float *overwrite;
  float **pointer;
  AgcLinear *linear;
  int part;
  int n_dims;
  int64_t shape[4];
} AgcTensorSlot;

/* A tensor a tower points to (a pointer to redirect) by its Hugging Face
 * name, with its shape: a row of a tower's table of them. */
typedef struct
{
  const char *name;
  float **pointer;
  int n_dims;
  int64_t shape[2];
} AgcNamedTensor;

/* The slot of name among table[n_table]; FALSE: not one. */
gboolean agc_tensor_slot_of_table (AgcTensorSlot *slot, const AgcNamedTensor *table,
                                   size_t n_table, const char *name);

/* The slot of a block's tensor by its Hugging Face name "PREFIX.N.REST"
 * (prefix e.g. "vision_model.encoder.layers.", N below config->layers,
 * REST e.g. "self_attn.q_proj.weight") in layers [config->layers], which
 * may be NULL (then none); FALSE: not one. */
gboolean agc_tensor_slot_of_layers (AgcTensorSlot *slot, AgcLayer *layers,
                                    const AgcTowerConfig *config, const char *prefix,
                                    const char *name);
/* A tower's own search for the slot of its tensor name; FALSE: none. */
typedef gboolean (*AgcTensorSlotFinder) (AgcTensorSlot *slot, void *tower, const char *name);

/* Replaces tower's tensor name, found by find_slot, with data (float32 of
 * shape[n_dims]): AGC_ERROR_MODEL naming the tensor when the tower (what,
 * e.g. "text tower") has none of that name or its shape differs; data
 * NULL: those checks alone, nothing set.  New values of redirected tensors
 * go to a float32 copy kept in *replaced (name -> array, made on first
 * use, the tower's to unref), made once per name. */
gboolean agc_tower_set_tensor (void *tower, AgcTensorSlotFinder find_slot, const char *what,
                               GHashTable **replaced, const char *name, const float *data,
                               int n_dims, const int64_t *shape, GError **error);
