/* ops.h — the numeric building blocks of the encoders, forward only.
 * Arguments: outputs first, then inputs, weights, sizes.  Matrices are
 * row-major; linear weights are [out_features, in_features] as PyTorch
 * stores them.
 *
 * Each op runs on the calling thread; the transformer splits rows over the
 * pool (threads.h).  The element-wise ops pick AVX2+FMA code at run time
 * when the CPU has it (no -march flags needed), plain C otherwise. */
#pragma once

#include "kernels/activation.h"

#include <glib.h>

#include <stddef.h>
#include <stdint.h>

/* out[n_rows, width] = (x - mean) / sqrt(var + eps) * weight + bias, per row.
 * out may equal x. */
void agc_layernorm_forward (float *out, const float *x, const float *weight, const float *bias,
                            int n_rows, int width, float eps);

/* The residual stream step between two GEMMs: x[n_rows, width] += add_bias
 * (the bias of the GEMM that just accumulated into x; may be NULL), then,
 * when out is not NULL, out = layernorm(x).  One pass over x instead of two.
 * mean, rstd: NULL, or (training) where each row's mean and 1 / sqrt(var +
 * eps) go, [n_rows] each, for agc_layernorm_backward (backward.h); those
 * rows run the plain C code (sums in double) even where the CPU has AVX2. */
void agc_bias_layernorm_forward (float *out, float *mean, float *rstd, float *x,
                                 const float *add_bias, const float *weight, const float *bias,
                                 int n_rows, int width, float eps);

/* out[n_rows, n_out] = x[n_rows, n_in] @ weight[n_out, n_in]^T + bias[n_out]
 * (bias may be NULL).  out must not alias x.  One sgemm. */
void agc_linear_forward (float *out, const float *x, const float *weight, const float *bias,
                         int n_rows, int n_in, int n_out);

/* x[n_rows, width] = act(x + bias) (bias may be NULL): the MLP's first bias
 * and activation in one pass.  AGC_ACT_GELU is exact, 0.5 x (1 + erf(x /
 * sqrt 2)); AGC_ACT_QUICK_GELU x * sigmoid(1.702 x); AGC_ACT_RELU max(x, 0). */
void agc_bias_act_forward (float *x, const float *bias, int n_rows, int width,
                           AgcActivation act);

/* Numerically stable softmax of each row of x[n_rows, n_cols], in place. */
void agc_softmax_rows (float *x, int n_rows, int n_cols);

/* x[n] /= ||x||; a zero vector stays zero. */
void agc_l2_normalize (float *x, int n);

/* Stored half-precision weights to float32: out[n] from little-endian in[n]. */
void agc_f16_to_f32 (float *out, const uint16_t *in, size_t n);
void agc_bf16_to_f32 (float *out, const uint16_t *in, size_t n);

/* For tests and benchmarks: TRUE forces the plain C code even where the CPU
 * has AVX2.  Returns whether AVX2 code is in use afterwards. */
int agc_ops_force_scalar (int force);
/* Whether the SIMD code is in use (AVX2 present and not forced off). */
gboolean agc_ops_simd (void);

/* Rows row_begin .. row_end - 1 of a ViT's patch matrix patches[B * T, 3 p p]
 * for pixels[B, 3, s, s] (p = patch_size, s = image_size, T = (s/p)² + 1):
 * row b T + t holds patch t - 1 (row-major over the grid) in the conv
 * kernel's (channel, y, x) order, so that the stride-p convolution is one
 * GEMM; row b T, the class token's, is zeros. */
void agc_patch_rows (float *patches, const float *pixels, int image_size, int patch_size,
                     size_t row_begin, size_t row_end);
