/* linear.h — a linear layer's weight matrix W[n_out, n_in] (PyTorch's
 * layout) with an optional bias[n_out], and its one call:
 *   out[rows, n_out] = epilogue (x[rows, n_in] @ W^T)
 *
 * W stays as the checkpoint stores it (param.h), in up to three parts
 * stacked along its rows (attention's q, k and v: one product for three
 * matrices).  Each call picks how to multiply from the storage and the
 * engine options (agriclip.h):
 *   options->int8             quantised on first use (gemm-int8.h), kept
 *   own kernels, float32      packed into panels on first use (gemm-packed.h), kept
 *   own kernels, half         packed into the caller's scratch at every call
 *   OpenBLAS, float32         read in place (gemm.h), one product per part
 *   OpenBLAS, half            converted into the caller's scratch at every call
 * A kept form is what is read from then on, so the file's pages of the
 * stored parts are released (weights.h); they are read again if the options
 * change back.  A view (agc_linear_view: float32 arrays of the caller's,
 * such as training's blocks) keeps nothing: its products are packed per call
 * (gemm-train.h; OpenBLAS with options->use_openblas), never int8.
 *
 * Not thread-safe: a call may make the kept forms.  agc_linear_forward
 * (ops.h) is the plain float32 product of training and projections. */
#pragma once

#include "agriclip.h"
#include "kernels/activation.h"
#include "kernels/gemm-int8.h"
#include "kernels/gemm-packed.h"
#include "kernels/param.h"

enum
{
  AGC_LINEAR_MAX_PARTS = 3,
};

typedef struct
{
  int n_out, n_in;
  float *bias;                            /* [n_out] or NULL; not owned */
  int n_parts;
  AgcParam parts[AGC_LINEAR_MAX_PARTS];   /* W's rows in this order */
  int part_rows[AGC_LINEAR_MAX_PARTS];    /* rows of each part; they sum to n_out */
  gboolean is_view;                       /* agc_linear_view: nothing kept */
  const AgcWeights *weights;              /* where parts may be mapped from, or NULL */
  AgcPackedMatrix packed;                 /* kept panels (panels NULL until made) */
  AgcInt8Matrix *int8;                    /* kept int8 matrix, or NULL */
} AgcLinear;

/* What follows the product: result = act (x @ W^T + bias), each step only
 * when asked; then out = result, or out += result when residual (out
 * holding the residual stream; then the bias, if added, joins the sum in
 * the kernel's order).  NULL: the bare product. */
typedef struct
{
  gboolean add_bias;
  gboolean apply_act;
  AgcActivation act;
  gboolean residual;
  /* NULL, or (training, with apply_act, not residual) where the values
   * before the activation go, [rows, n_out], for its backward; the
   * epilogue then runs as a pass of its own after the product */
  float *pre_act;
} AgcLinearEpilogue;

/* A linear over parts[0 .. n_parts) (rows[i] x n_in values each, any float
 * dtype) stacked, with bias (may be NULL).  weights: where the parts are
 * mapped from, for releasing their pages once a kept form replaces them
 * (NULL: nothing released).  Nothing is copied. */
void agc_linear_init (AgcLinear *lin, const AgcParam *parts, const int *rows, int n_parts,
                      int n_in, float *bias, const AgcWeights *weights);
/* A view of float32 parts (rows[i] x n_in each), nothing kept (see above). */
void agc_linear_view (AgcLinear *lin, const float *const *parts, const int *rows, int n_parts,
                      int n_in, float *bias);
/* Frees the kept forms; the stored parts are the caller's. */
void agc_linear_clear (AgcLinear *lin);
/* Part i now reads param (same shape); the kept forms are dropped. */
void agc_linear_set_part (AgcLinear *lin, int i, const AgcParam *param);
/* Frees the kept int8 matrix (int8 turned off). */
void agc_linear_drop_int8 (AgcLinear *lin);

/* Floats of the scratch agc_linear_apply needs with options (0 for most;
 * half-precision parts converted or packed per call), 64-byte aligned. */
size_t agc_linear_scratch_floats (const AgcLinear *lin, const AgcEngineOptions *options);

/* out[rows, n_out] = epilogue (x[rows, n_in] @ W^T), rows contiguous, over
 * the pool.  Inside a parallel region (training's shards) only on a view,
 * which keeps nothing: it then runs on the calling thread.  With
 * options->products_only the epilogue (and the conversion of half-precision
 * parts for OpenBLAS) is skipped.  FALSE with error set when memory for a
 * kept form or for int8 activations cannot be allocated. */
gboolean agc_linear_apply (AgcLinear *lin, const AgcEngineOptions *options, float *out,
                           const float *x, int rows, const AgcLinearEpilogue *epilogue,
                           float *scratch, GError **error);
