/* gemm-kernels.h — the register-tile kernels behind gemm-packed.c, one file
 * per instruction set, each compiled with its own target attribute and only
 * called after the CPU was checked.
 *
 * A tile: c[mr, nc] (row stride ldc) = (accumulate ? c : 0) + bias + A_tile @ B_tile
 * (bias: the tile's nc columns, or NULL for none), then max (c, 0) if relu,
 * where a points at the tile's first row of A at the slice's first k (row i
 * of step k at a[i lda + k], read in place: packing A cost more than the
 * strided broadcasts do) and bp at a slice of one weight panel ([kc][32]).
 * nc <= 32 columns are written; the panel's columns past nc are zeros and
 * ignored. */
#pragma once

#include <glib.h>

enum
{
  AGC_AVX512_TILE_ROWS = 12, // 24 accumulators of the 32 zmm registers
  AGC_AVX2_TILE_ROWS = 6,    // 12 accumulators of the 16 ymm registers
};

void agc_avx512_gemm_tile (float *c, int ldc, const float *a, int lda, const float *bp,
                           const float *bias, int kc, int mr, int nc, gboolean accumulate,
                           gboolean relu);
void agc_avx2_gemm_tile (float *c, int ldc, const float *a, int lda, const float *bp,
                         const float *bias, int kc, int mr, int nc, gboolean accumulate,
                         gboolean relu);

/* panel[n_in][32] = rows[32][n_in]^T, rows with row stride ld. */
void agc_avx2_transpose_panel (float *panel, const float *rows, int ld, int n_in);
/* out[cols][ld_out] = in[rows][ld_in]^T (rows x cols floats read). */
void agc_avx2_transpose (float *out, int ld_out, const float *in, int ld_in, int rows, int cols);
