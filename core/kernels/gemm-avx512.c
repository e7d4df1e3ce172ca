/* gemm-avx512.c — the AVX-512 register tile: up to 12 rows x 32 columns,
 * two zmm accumulators per row.  Each step of k loads the panel's 32 values
 * once and broadcasts one value per row of A (rows lda apart; one base
 * register and the row offsets in eleven more): 24 FMAs against 2 loads and
 * 12 broadcasts, which keeps both FMA pipes busy. */
#include "kernels/gemm-kernels.h"

#include <immintrin.h>

#define TARGET __attribute__ ((target ("avx512f,fma")))

// MR is a constant in every caller: the loops over rows unroll completely
TARGET static inline __attribute__ ((always_inline)) void
tile (int MR, float *c, int ldc, const float *a, size_t lda, const float *bp, const float *bias,
      int kc, int nc, gboolean accumulate, gboolean relu)
{
  __mmask16 m0 = nc >= 16 ? 0xffff : (__mmask16) ((1u << nc) - 1);
  __mmask16 m1 = nc >= 32 ? 0xffff : nc <= 16 ? 0 : (__mmask16) ((1u << (nc - 16)) - 1);
  __m512 start0 = _mm512_setzero_ps (), start1 = _mm512_setzero_ps ();
  if (bias != NULL)
    {
      start0 = _mm512_maskz_loadu_ps (m0, bias);
      start1 = _mm512_maskz_loadu_ps (m1, bias + 16);
    }
  __m512 acc[AGC_AVX512_TILE_ROWS][2];
#pragma GCC unroll 12
  for (int i = 0; i < MR; i++)
    {
      acc[i][0] = start0;
      acc[i][1] = start1;
      // the tile of C is read (accumulate) or written at the end: with a
      // short k (a ResNet's 1x1 convs, 64-256) the misses on a C that
      // lives in memory (the residual) stalled the kernel; fetched now,
      // they overlap the FMAs
      _mm_prefetch ((const char *) (c + (size_t) i * ldc), _MM_HINT_T0);
      _mm_prefetch ((const char *) (c + (size_t) i * ldc + 16), _MM_HINT_T0);
    }
  for (int k = 0; k < kc; k++)
    {
      // the panel streams from memory at small batches: ask for it early
      _mm_prefetch ((const char *) (bp + 32 * k + 32 * 24), _MM_HINT_T0);
      _mm_prefetch ((const char *) (bp + 32 * k + 32 * 24 + 16), _MM_HINT_T0);
      __m512 b0 = _mm512_load_ps (bp + 32 * k), b1 = _mm512_load_ps (bp + 32 * k + 16);
#pragma GCC unroll 12
      for (int i = 0; i < MR; i++)
        {
          __m512 ai = _mm512_set1_ps (a[i * lda + k]);
          acc[i][0] = _mm512_fmadd_ps (ai, b0, acc[i][0]);
          acc[i][1] = _mm512_fmadd_ps (ai, b1, acc[i][1]);
        }
    }
#pragma GCC unroll 12
  for (int i = 0; i < MR; i++)
    {
      float *row = c + (size_t) i * ldc;
      if (accumulate)
        {
          acc[i][0] = _mm512_add_ps (acc[i][0], _mm512_maskz_loadu_ps (m0, row));
          acc[i][1] = _mm512_add_ps (acc[i][1], _mm512_maskz_loadu_ps (m1, row + 16));
        }
      if (relu) // as agc_bias_act_forward's: max (x, 0)
        {
          acc[i][0] = _mm512_max_ps (acc[i][0], _mm512_setzero_ps ());
          acc[i][1] = _mm512_max_ps (acc[i][1], _mm512_setzero_ps ());
        }
      _mm512_mask_storeu_ps (row, m0, acc[i][0]);
      _mm512_mask_storeu_ps (row + 16, m1, acc[i][1]);
    }
}

TARGET void
agc_avx512_gemm_tile (float *c, int ldc, const float *a, int lda, const float *bp,
                      const float *bias, int kc, int mr, int nc, gboolean accumulate,
                      gboolean relu)
{
  switch (mr)
    {
#define TILE(n)                                                                                    \
  case n:                                                                                          \
    tile (n, c, ldc, a, lda, bp, bias, kc, nc, accumulate, relu);                                  \
    break;
      TILE (1) TILE (2) TILE (3) TILE (4) TILE (5) TILE (6)
      TILE (7) TILE (8) TILE (9) TILE (10) TILE (11) TILE (12)
#undef TILE
    default:
      g_assert_not_reached ();
    }
}
