/* int8-block.h — the four weight matrices of a transformer block quantised
 * for gemm-int8.h: q, k and v fused into one [3D, D] matrix, out_proj, fc1
 * and fc2.  Made from the stored matrices in any dtype (half precision is
 * converted to float32 in a temporary buffer first); the quantisation is
 * per output row, so fusing q, k and v changes nothing in the values. */
#pragma once

#include "kernels/gemm-int8.h"
#include "nn/transformer.h"

typedef struct AgcInt8Block
{
  AgcInt8Matrix *qkv; /* [3D, D], rows q then k then v */
  AgcInt8Matrix *out; /* [D, D] */
  AgcInt8Matrix *fc1; /* [M, D] */
  AgcInt8Matrix *fc2; /* [D, M] */
} AgcInt8Block;

/* Quantises the stored matrices of s into b (all four, or none with error
 * set).  Needs agc_int8_available (). */
gboolean agc_int8_block_init (AgcInt8Block *b, const AgcStoredBlock *s,
                              const AgcTowerConfig *config, GError **error);
/* Frees the matrices; b is empty (all NULL) afterwards. */
void agc_int8_block_clear (AgcInt8Block *b);
/* TRUE once agc_int8_block_init filled b. */
gboolean agc_int8_block_ready (const AgcInt8Block *b);
