/* block-train.h — one pre-norm residual block (transformer.h) in training
 * mode: a forward that keeps its activations and the backward beside it.
 *   x_mid = x + out_proj(attention(ln_1(x)))
 *   out   = x_mid + fc2(act(fc1(ln_2(x_mid))))
 * Weights and gradients are AgcBlock structs with the fused qkv_weight
 * [3D, D] (q_weight, k_weight, v_weight unused).  Sequences all have
 * n_tokens tokens; rows R = batch * n_tokens. */
#pragma once

#include "nn/transformer.h"

typedef struct
{
  int batch, n_tokens;
  float *x;                    // [R, D] block input
  float *ln1, *ln1_mean, *ln1_rstd; // [R, D], [R], [R]
  float *qkv;                  // [R, 3D] biases included
  float *att;                  // [batch, heads, T, T] probabilities
  float *atty;                 // [R, D] attention output, before out_proj
  float *x_mid;                // [R, D] residual stream after attention
  float *ln2, *ln2_mean, *ln2_rstd; // [R, D], [R], [R]
  float *fc1;                  // [R, M] before the activation
  float *act;                  // [R, M]
  float *memory;               // the one allocation all of the above live in
  float *scratch;              // agc_block_scratch_floats for the backward, not owned;
                               // NULL: the backward allocates its own each call
} AgcBlockActs;

/* Floats of the backward's scratch for batch sequences of n_tokens: blocks
 * run one after another, so a tower can lend all its blocks one buffer
 * and save a fresh zeroed allocation (page faults) per call. */
size_t agc_block_scratch_floats (const AgcTowerConfig *config, int batch, int n_tokens);

/* Allocates activations for batch sequences of n_tokens. */
AgcBlockActs *agc_block_acts_new (const AgcTowerConfig *config, int batch, int n_tokens);
void agc_block_acts_free (AgcBlockActs *acts);

/* An AgcBlock whose arrays are all zero (qkv fused), for gradients or
 * AdamW moments; one allocation, freed by agc_block_train_free.
 * agc_block_train_zero sets its arrays to 0 again. */
AgcBlock *agc_block_train_new (const AgcTowerConfig *config);
void agc_block_train_zero (AgcBlock *block, const AgcTowerConfig *config);
void agc_block_train_free (AgcBlock *block);
/* The arrays of a train block in order, with their lengths: for AdamW.
 * Returns the count (12); arrays[i] has sizes[i] floats.  decays[i] tells
 * whether weight decay applies (matrices yes; biases and norms no). */
int agc_block_train_arrays (float **arrays, size_t *sizes, gboolean *decays, AgcBlock *block,
                            const AgcTowerConfig *config);

/* out[R, D] = block(x[R, D]); x is copied into acts (out may equal x). */
void agc_block_forward_train (float *out, AgcBlockActs *acts, const float *x, const AgcBlock *w,
                              const AgcTowerConfig *config, gboolean causal);

/* Adds the gradients of the loss w.r.t. the block input into dx[R, D] (may
 * be NULL) and w.r.t. the weights into grads, from dout[R, D]. */
void agc_block_backward (float *dx, AgcBlock *grads, const float *dout, const AgcBlockActs *acts,
                         const AgcBlock *w, const AgcTowerConfig *config);
