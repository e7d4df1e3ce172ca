/* param.h — a weight tensor kept as the checkpoint stores it.
 *
 * Float32 tensors are used in place in the memory-mapped file (no copy, so a
 * model opens at once); F16 and BF16 tensors stay half-sized and are made
 * float32 by the layer that needs them, just before it runs.  Tensors that
 * cannot be used in place (F64, misaligned F32) get a float32 copy. */
#pragma once

#include "formats/weights.h"

typedef struct
{
  AgcDType dtype;   /* AGC_DTYPE_F32, AGC_DTYPE_F16 or AGC_DTYPE_BF16 */
  const void *data; /* n elements, in the file or in owned memory */
  size_t n;
} AgcParam;

/* Checks existence, floating-point dtype and the exact shape (the same
 * errors as agc_weights_take_f32), then views the tensor.  Copies made go to
 * owned (g_free'd with it). */
gboolean agc_param_view (AgcParam *param, const AgcWeights *weights, const char *name,
                         int n_dims, const int64_t *shape, GPtrArray *owned, GError **error);

/* Float32 values of param: its own data when already float32, otherwise
 * converted into scratch[param->n]. */
const float *agc_param_f32 (const AgcParam *param, float *scratch);
/* out[n] = float32 of elements [first, first + n) of param. */
void agc_param_convert (float *out, const AgcParam *param, size_t first, size_t n);

/* A float32 copy of a small tensor (biases, layer norms), owned by owned. */
float *agc_param_take_f32 (const AgcWeights *weights, const char *name, int n_dims,
                           const int64_t *shape, GPtrArray *owned, GError **error);

/* Float32 values of a checked tensor: in place when stored as float32,
 * otherwise a float32 copy in owned.  For tensors that are read whole every
 * call (patch kernel, projections), where per-call conversion would cost
 * more than the memory saved. */
const float *agc_param_view_f32 (const AgcWeights *weights, const char *name, int n_dims,
                                 const int64_t *shape, GPtrArray *owned, GError **error);
