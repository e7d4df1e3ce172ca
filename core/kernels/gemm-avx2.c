/* gemm-avx2.c — the AVX2+FMA register tile (up to 6 rows x 16 columns, two
 * ymm accumulators per row, run once per half of a 32-column panel) and the
 * transpositions that pack weight rows into panels and training's operands. */
#include "kernels/gemm-kernels.h"

#include <immintrin.h>

#define TARGET __attribute__ ((target ("avx2,fma")))

TARGET static inline __m256i
lanes_below (int n) // lanes [0, n) set
{
  return _mm256_cmpgt_epi32 (_mm256_set1_epi32 (n), _mm256_setr_epi32 (0, 1, 2, 3, 4, 5, 6, 7));
}

// row[0 .. n) as a vector, zeros past n
TARGET static inline __m256
load (const float *row, int n)
{
  if (n >= 8)
    return _mm256_loadu_ps (row);
  return n > 0 ? _mm256_maskload_ps (row, lanes_below (n)) : _mm256_setzero_ps ();
}

TARGET static inline void
store (float *row, __m256 v, int n, gboolean accumulate, gboolean relu)
{
  if (accumulate)
    v = _mm256_add_ps (v, load (row, n));
  if (relu) // as agc_bias_act_forward's: max (x, 0)
    v = _mm256_max_ps (v, _mm256_setzero_ps ());
  if (n >= 8)
    _mm256_storeu_ps (row, v);
  else if (n > 0)
    _mm256_maskstore_ps (row, lanes_below (n), v);
}

// 16 columns of the panel (row stride 32) into c; MR is a constant
TARGET static inline __attribute__ ((always_inline)) void
half_tile (int MR, float *c, int ldc, const float *a, size_t lda, const float *bp,
           const float *bias, int kc, int nc, gboolean accumulate, gboolean relu)
{
  __m256 start0 = _mm256_setzero_ps (), start1 = _mm256_setzero_ps ();
  if (bias != NULL)
    {
      start0 = load (bias, nc);
      start1 = load (bias + 8, nc - 8);
    }
  __m256 acc[AGC_AVX2_TILE_ROWS][2];
#pragma GCC unroll 6
  for (int i = 0; i < MR; i++)
    {
      acc[i][0] = start0;
      acc[i][1] = start1;
    }
  for (int k = 0; k < kc; k++)
    {
      __m256 b0 = _mm256_load_ps (bp + 32 * k), b1 = _mm256_load_ps (bp + 32 * k + 8);
#pragma GCC unroll 6
      for (int i = 0; i < MR; i++)
        {
          __m256 ai = _mm256_broadcast_ss (a + i * lda + k);
          acc[i][0] = _mm256_fmadd_ps (ai, b0, acc[i][0]);
          acc[i][1] = _mm256_fmadd_ps (ai, b1, acc[i][1]);
        }
    }
#pragma GCC unroll 6
  for (int i = 0; i < MR; i++)
    {
      store (c + (size_t) i * ldc, acc[i][0], nc, accumulate, relu);
      store (c + (size_t) i * ldc + 8, acc[i][1], nc - 8, accumulate, relu);
    }
}

TARGET static void
tile (int mr, float *c, int ldc, const float *a, size_t lda, const float *bp, const float *bias,
      int kc, int nc, gboolean accumulate, gboolean relu)
{
  switch (mr)
    {
#define TILE(n)                                                                                    \
  case n:                                                                                          \
    half_tile (n, c, ldc, a, lda, bp, bias, kc, nc, accumulate, relu);                             \
    break;
      TILE (1) TILE (2) TILE (3) TILE (4) TILE (5) TILE (6)
#undef TILE
    default:
      g_assert_not_reached ();
    }
}

TARGET void
agc_avx2_gemm_tile (float *c, int ldc, const float *a, int lda, const float *bp,
                    const float *bias, int kc, int mr, int nc, gboolean accumulate,
                    gboolean relu)
{
  tile (mr, c, ldc, a, lda, bp, bias, kc, MIN (nc, 16), accumulate, relu);
  if (nc > 16)
    tile (mr, c + 16, ldc, a, lda, bp + 16, bias != NULL ? bias + 16 : NULL, kc, nc - 16,
          accumulate, relu);
}

// out[8][ld_out] = in[8][ld_in]^T, 8 x 8 floats
TARGET static inline void
transpose8 (float *out, int ld_out, const float *in, int ld_in)
{
  __m256 r[8], t[8];
  for (int i = 0; i < 8; i++)
    r[i] = _mm256_loadu_ps (in + (size_t) i * ld_in);
  for (int i = 0; i < 4; i++)
    {
      t[2 * i] = _mm256_unpacklo_ps (r[2 * i], r[2 * i + 1]);
      t[2 * i + 1] = _mm256_unpackhi_ps (r[2 * i], r[2 * i + 1]);
    }
  for (int i = 0; i < 2; i++)
    for (int j = 0; j < 2; j++)
      {
        __m256 a = t[4 * i + j], b = t[4 * i + j + 2];
        r[4 * i + 2 * j] = _mm256_shuffle_ps (a, b, _MM_SHUFFLE (1, 0, 1, 0));
        r[4 * i + 2 * j + 1] = _mm256_shuffle_ps (a, b, _MM_SHUFFLE (3, 2, 3, 2));
      }
  for (int i = 0; i < 4; i++)
    {
      _mm256_storeu_ps (out + (size_t) i * ld_out,
                        _mm256_permute2f128_ps (r[i], r[i + 4], 0x20));
      _mm256_storeu_ps (out + (size_t) (i + 4) * ld_out,
                        _mm256_permute2f128_ps (r[i], r[i + 4], 0x31));
    }
}

TARGET void
agc_avx2_transpose_panel (float *panel, const float *rows, int ld, int n_in)
{
  int k = 0;
  for (; k + 8 <= n_in; k += 8)
    for (int j = 0; j < 32; j += 8)
      transpose8 (panel + (size_t) k * 32 + j, 32, rows + (size_t) j * ld + k, ld);
  for (; k < n_in; k++)
    for (int j = 0; j < 32; j++)
      panel[(size_t) k * 32 + j] = rows[(size_t) j * ld + k];
}

TARGET void
agc_avx2_transpose (float *out, int ld_out, const float *in, int ld_in, int rows, int cols)
{
  int r = 0;
  for (; r + 8 <= rows; r += 8)
    {
      int c = 0;
      for (; c + 8 <= cols; c += 8)
        transpose8 (out + (size_t) c * ld_out + r, ld_out, in + (size_t) r * ld_in + c, ld_in);
      for (; c < cols; c++)
        for (int i = r; i < r + 8; i++)
          out[(size_t) c * ld_out + i] = in[(size_t) i * ld_in + c];
    }
  for (; r < rows; r++)
    for (int c = 0; c < cols; c++)
      out[(size_t) c * ld_out + r] = in[(size_t) r * ld_in + c];
}
