/* block-train.h — what a block in training mode (transformer.h) needs
 * besides its forward and backward: its activations, and float32 arrays
 * for weights, gradients and AdamW moments as AgcBlock structs with the
 * fused qkv_weight [3D, D] (q_weight, k_weight, v_weight unused).  The
 * forward reads the weights through agc_layer_view. */
#pragma once

#include "nn/transformer.h"


/* The one way a struct of arrays is carved out of one allocation with one
 * owner (llm.c's way): the same sequence of agc_carve_take calls runs
 * twice, first counting (memory NULL: each take returns NULL), then, after
 * agc_carver_allocate, pointing:
 *   AgcCarver k = { 0 };
 *   carve_params (&p, &k);                 // counts
 *   p.memory = agc_carver_allocate (&k);   // zeroed
 *   carve_params (&p, &k);                 // points */
typedef struct
{
  float *memory;   // NULL while counting
  size_t n_floats; // taken so far
} AgcCarver;

static inline float *
agc_carve_take (AgcCarver *k, size_t n)
{
  float *at = k->memory != NULL ? k->memory + k->n_floats : NULL;
  k->n_floats += n;
  return at;
}

/* Zeroed memory for the floats counted; the next takes point into it. */
float *agc_carver_allocate (AgcCarver *k);

/* Points *slots[i] at sizes[i] consecutive floats of one zeroed
 * allocation, i < n, and returns it (the caller frees it): a carver over
 * a list of slots. */
float *agc_carve (float **const *slots, const size_t *sizes, size_t n);

/* Takes a block's twelve arrays from k (agc_block_train_arrays order). */
void agc_block_carve (AgcBlock *block, AgcCarver *k, const AgcTowerConfig *config);

/* Floats of the backward's scratch for batch sequences of n_tokens: blocks
 * run one after another, so a tower can lend all its blocks one buffer
 * and save a fresh zeroed allocation (page faults) per call. */
size_t agc_block_scratch_floats (const AgcTowerConfig *config, int batch, int n_tokens);

/* Allocates activations for batch sequences of n_tokens. */
AgcBlockActs *agc_block_acts_new (const AgcTowerConfig *config, int batch, int n_tokens);
void agc_block_acts_free (AgcBlockActs *acts);
/* Activations for batch sequences of n_tokens carved out of memory (not
 * owned) of at least agc_block_acts_floats: a text batch's T changes from
 * step to step, and allocating anew each time costs page faults. */
size_t agc_block_acts_floats (const AgcTowerConfig *config, int batch, int n_tokens);
void agc_block_acts_view (AgcBlockActs *acts, float *memory, const AgcTowerConfig *config,
                          int batch, int n_tokens);

/* An AgcBlock whose arrays are all zero (qkv fused), for gradients or
 * AdamW moments; one allocation, freed by agc_block_train_free.
 * agc_block_train_zero sets its arrays to 0 again. */
AgcBlock *agc_block_train_new (const AgcTowerConfig *config);
/* The same arrays in a block the caller holds (a tower's array of blocks);
 * agc_block_train_clear frees them. */
void agc_block_train_init (AgcBlock *block, const AgcTowerConfig *config);
void agc_block_train_clear (AgcBlock *block);
void agc_block_train_zero (AgcBlock *block, const AgcTowerConfig *config);
void agc_block_train_free (AgcBlock *block);
/* The arrays of a train block in order, with their lengths: for AdamW.
 * Returns the count (12); arrays[i] has sizes[i] floats.  decays[i] tells
 * whether weight decay applies (matrices yes; biases and norms no). */
int agc_block_train_arrays (float **arrays, size_t *sizes, gboolean *decays, AgcBlock *block,
                            const AgcTowerConfig *config);
