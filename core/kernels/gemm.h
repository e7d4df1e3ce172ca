/* gemm.h — the encoders' big matrix products, C = beta C + A W^T with the
 * weights W in PyTorch's [out, in] layout.  Thin products (small batches: 50
 * rows against a 7 MB weight) are split over the pool (threads.h) by blocks
 * of output columns, each thread streaming only its share of W through a
 * single-threaded sgemm: measured 15 % faster at batch 1 than OpenBLAS's own
 * threading.  Thick ones go to OpenBLAS whole. */
#pragma once

/* c[rows, n_out] (row stride ldc) = beta c + a[rows, n_in] (row stride lda)
 * @ w[n_out, n_in]^T (rows contiguous). */
void agc_gemm_nt (float *c, int ldc, const float *a, int lda, const float *w, int rows, int n_out,
                  int n_in, float beta);
