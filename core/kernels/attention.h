/* attention.h — multi-head self-attention of a batch of sequences whose
 * q, k and v were produced by one fused GEMM (transformer.c).
 *
 * Per (sequence, head): scores = q k^T / sqrt(hd), softmax per row (over
 * the visible prefix when causal), out = scores v; the pairs are spread over
 * the pool.  Where the packed kernels run (gemm-packed.h), k and v are
 * packed into panels per head (k scaled and transposed, v copied) and both
 * products go through them on the worker's own thread; elsewhere (or when
 * use_openblas) through OpenBLAS, single-threaded per head. */
#pragma once

#include "kernels/arena.h"

#include <glib.h>

typedef struct
{
  const float *qkv;           /* [rows, 3 width]: q, k, v of every token */
  float *out;                 /* [rows, width] */
  const int *offsets;         /* first row of each sequence */
  const int *lengths;         /* tokens of each sequence */
  int n_seqs, width, heads, max_len;
  gboolean causal;
  gboolean products_only;     /* skip the softmax (benchmarks' floor) */
  gboolean use_openblas;      /* OpenBLAS even where the packed kernels run */
  float *scratch;             /* agc_attention_scratch_floats () per pool thread, 64-byte aligned */
  /* NULL, or where training keeps the probabilities (its backward reads
   * them): [n_seqs, heads, max_len, max_len], every sequence max_len long */
  float *probs;
} AgcAttention;

/* Floats of scratch one pool thread needs (a multiple of 16). */
size_t agc_attention_scratch_floats (int max_len, int width, int heads);

/* *a for batch sequences of n_tokens each (training's batches): lengths,
 * offsets and one scratch slot per pool thread reserved in arena (grown as
 * needed); qkv, out and probs are the caller's to set.  FALSE (error set)
 * when memory is short. */
gboolean agc_attention_init_batch (AgcAttention *a, AgcArena *arena, int batch, int n_tokens,
                                   int width, int heads, gboolean causal, GError **error);

/* Runs over the pool.  Inside a parallel region (training's shards) it
 * runs on the calling thread alone, with the scratch of pool thread 0. */
void agc_attention_forward (const AgcAttention *a);
