/* gemm-packed.h — the encoders' weight GEMMs on our own SIMD kernels.
 *
 * A weight matrix W[n_out, n_in] (PyTorch's layout) is repacked once into
 * panels of 32 output columns, each panel [n_in][32]: the kernels stream a
 * panel with aligned vector loads while broadcasting activations from A in
 * place, so a 12 x 32 (AVX-512) or 6 x 16 (AVX2) block of C stays in
 * registers for a whole slice of k.  OpenBLAS's kernels for thin
 * products (50 rows at batch 1) reach about half of what this machine can
 * do; these are close to its FMA throughput at every batch size.
 *
 * Half-precision weights are converted while packing, so the packed form is
 * always float32.  Without AVX2+FMA (or while agc_ops_force_scalar, ops.h,
 * is on) nothing is packed and callers use gemm.h. */
#pragma once

#include "kernels/activation.h"

#include <glib.h>
#include "kernels/param.h"

enum
{
  AGC_PANEL_WIDTH = 32,
};

typedef struct
{
  int n_out, n_in;
  float *panels; /* [ceil(n_out / 32)][n_in][32], 64-byte aligned; zero past n_out */
  gboolean owns_panels;
} AgcPackedMatrix;

/* TRUE when this CPU has a packed kernel (and scalar-only mode is off). */
gboolean agc_packed_gemm_available (void);

/* For tests: TRUE keeps to the AVX2 kernel even where AVX-512 is present. */
void agc_packed_gemm_limit_to_avx2 (gboolean limit);

/* Floats of the panels of an n_out x n_in matrix (a multiple of 16). */
size_t agc_packed_floats (int n_out, int n_in);

/* Packs the matrices parts[0..n_parts) stacked along their rows (each
 * parts[i] holds rows[i] x n_in values of any float dtype) into panels:
 * into memory of its own when panels is NULL (then NULL with error set if it
 * cannot be allocated), else into panels[agc_packed_floats ()], 64-byte
 * aligned.  Spreads the work over the pool. */
gboolean agc_packed_matrix_init (AgcPackedMatrix *m, float *panels, const AgcParam *const *parts,
                                 const int *rows, int n_parts, int n_in, GError **error);
void agc_packed_matrix_clear (AgcPackedMatrix *m);

/* c[rows, n_out] (row stride ldc) = a[rows, n_in] (row stride lda) @ B on
 * the calling thread alone, B given as panels ([ceil(n_out / 32)][n_in][32],
 * 64-byte aligned, zeros past n_out): for products too small to share, such
 * as attention's per head.  Needs agc_packed_gemm_available (). */
void agc_gemm_panels_serial (float *c, int ldc, const float *a, int lda, const float *panels,
                             int n_out, int n_in, int rows);

/* What happens to each tile of C while it is still in cache: bias[n_out]
 * added (NULL: none), then act applied when apply_act. */
typedef struct
{
  const float *bias;
  gboolean apply_act;
  AgcActivation act;
} AgcGemmEpilogue;

/* c[rows, n_out] (row stride ldc) = epilogue (beta c + a[rows, n_in] (row
 * stride lda) @ W^T), beta 0 or 1, epilogue NULL for none, over the pool.
 * Needs agc_packed_gemm_available (). */
void agc_gemm_packed (float *c, int ldc, const float *a, int lda, const AgcPackedMatrix *w,
                      int rows, float beta, const AgcGemmEpilogue *epilogue);

/* agc_gemm_packed on the calling thread alone, for callers that share the
 * work out themselves (the ResNet's convolutions: tiles of output pixels,
 * each product too narrow to split by its columns).  w may be a block of
 * whole panels of a larger matrix (panels and n_out set to the block's). */
void agc_gemm_packed_serial (float *c, int ldc, const float *a, int lda, const AgcPackedMatrix *w,
                             int rows, float beta, const AgcGemmEpilogue *epilogue);
