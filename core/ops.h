/* ops.h — the numeric building blocks of the encoders, forward only.
 * Arguments: outputs first, then inputs, weights, sizes.  Matrices are
 * row-major; linear weights are [out_features, in_features] as PyTorch
 * stores them. */
#pragma once

#include <stddef.h>

/* out[n_rows, width] = (x - mean) / sqrt(var + eps) * weight + bias, per row.
 * out may equal x. */
void agc_layernorm_forward (float *out, const float *x, const float *weight, const float *bias,
                            int n_rows, int width, float eps);

/* out[n_rows, n_out] = x[n_rows, n_in] @ weight[n_out, n_in]^T + bias[n_out]
 * (bias may be NULL).  out must not alias x.  One sgemm. */
void agc_linear_forward (float *out, const float *x, const float *weight, const float *bias,
                         int n_rows, int n_in, int n_out);

void agc_gelu_forward (float *x, size_t n);       /* exact: 0.5 x (1 + erf(x / sqrt 2)) */
void agc_quick_gelu_forward (float *x, size_t n); /* x * sigmoid(1.702 x) */

/* Numerically stable softmax of each row of x[n_rows, n_cols], in place. */
void agc_softmax_rows (float *x, int n_rows, int n_cols);

/* x[n] /= ||x||; a zero vector stays zero. */
void agc_l2_normalize (float *x, int n);
