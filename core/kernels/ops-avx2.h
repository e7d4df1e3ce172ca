/* ops-avx2.h — AVX2+FMA versions of the element-wise ops of ops.c.  Only
 * call them when the CPU has avx2, fma and f16c (ops.c checks at run time).
 * Same contracts as the ops.h functions they stand in for, one row each. */
#pragma once

#include <stddef.h>
#include <stdint.h>

void agc_avx2_bias_layernorm_row (float *out, float *x, const float *add_bias,
                                  const float *weight, const float *bias, int width, float eps);
void agc_avx2_gelu (float *x, const float *bias, size_t n);
void agc_avx2_quick_gelu (float *x, const float *bias, size_t n);
void agc_avx2_relu (float *x, const float *bias, size_t n);
void agc_avx2_softmax_row (float *x, int n);
void agc_avx2_f16_to_f32 (float *out, const uint16_t *in, size_t n);
void agc_avx2_bf16_to_f32 (float *out, const uint16_t *in, size_t n);
