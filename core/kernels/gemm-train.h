/* gemm-train.h — training's float32 products (forward on float32 views,
 * backward's dX = dY W and dW = dY^T X) on the packed kernels
 * (gemm-packed.h), as cblas_sgemm with row-major arrays and alpha 1:
 *
 *   c[m, n] = beta c + op(a) @ op(b)
 *     op(a) = a[m, k] (row stride lda), or a[k, m]^T when trans_a
 *     op(b) = b[k, n] (row stride ldb), or b[n, k]^T when trans_b
 *
 * Each call packs op(b) into panels, and a transposed into rows when
 * trans_a, in the calling thread's scratch (kept for the next call: a
 * training step repeats the same shapes); the pool shares packing and
 * product, or the calling thread does all inside a parallel region
 * (pretraining's shards).  Without a packed kernel (or while
 * agc_ops_force_scalar), or for products too small to repay the packing,
 * OpenBLAS's sgemm.  The sums run in another order than OpenBLAS's: results
 * differ from it by rounding. */
#pragma once

#include <glib.h>

void agc_gemm_train (gboolean trans_a, gboolean trans_b, int m, int n, int k, const float *a,
                     int lda, const float *b, int ldb, float beta, float *c, int ldc);
