/* packed-block.h — the four weight matrices of a transformer block packed
 * for gemm-packed.h: q, k and v fused into one [3D, D] matrix, out_proj,
 * fc1 and fc2.  Float32 layers are packed once, into memory of their own;
 * half-precision ones each time they run, into a layer-sized scratch, so
 * that their weights stay half-sized in memory. */
#pragma once

#include "kernels/gemm-packed.h"
#include "nn/transformer.h"

typedef struct AgcPackedBlock
{
  AgcPackedMatrix qkv, out, fc1, fc2;
  gboolean ready;
} AgcPackedBlock;

/* Floats of scratch that agc_packed_block_init needs for one block. */
size_t agc_packed_block_floats (const AgcTowerConfig *config);

/* Packs the stored matrices of s: into scratch[agc_packed_block_floats ()]
 * (64-byte aligned), or into memory of its own when scratch is NULL. */
gboolean agc_packed_block_init (AgcPackedBlock *b, float *scratch, const AgcStoredBlock *s,
                                const AgcTowerConfig *config, GError **error);
void agc_packed_block_clear (AgcPackedBlock *b);
