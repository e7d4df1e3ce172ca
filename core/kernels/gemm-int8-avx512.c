/* gemm-int8-avx512.c — the AVX-512 VNNI kernel of gemm-int8.h.
 *
 * A register tile of MR rows x GROUP columns: per 4 k, the GROUP/16 weight
 * vectors of the packed group are loaded once, each row's 4 activation bytes
 * are broadcast to all lanes, and vpdpbusd adds u8 x s8 products, 4 at a time,
 * into int32 lanes: 2 MR accumulators + 2 weight vectors + 1 broadcast of
 * the 32 zmm registers.  The weight group (GROUP x k_pad bytes) stays in L1/L2
 * while the row tiles of a block walk over it.
 *
 * Compiled for the baseline target; only these functions carry a target
 * attribute and gemm-int8.c calls them after checking the CPU. */
#include "kernels/gemm-int8.h"

#include <immintrin.h>
#include <string.h>

#define TARGET __attribute__ ((target ("avx512f,avx512bw,avx512vl,avx512vnni,fma")))
#define INLINE static inline __attribute__ ((always_inline))

enum
{
  MR = 12,                  // rows per register tile
  NV = AGC_INT8_GROUP / 16, // zmm vectors per row of a tile
};

TARGET INLINE __m512i
broadcast4 (const guint8 *p)
{
  gint32 v;
  memcpy (&v, p, 4);
  return _mm512_set1_epi32 (v);
}

/* c[row0 .. row0+mr, col0 .. col0+GROUP] = beta c + the dequantised tile. */
TARGET INLINE void
tile (const AgcInt8Job *job, int row0, int mr, int col0)
{
  // the unroll pragmas keep acc in registers: GCC -O2 would leave it on the stack
  __m512i acc[MR][NV];
  #pragma GCC unroll 16
  for (int r = 0; r < mr; r++)
    #pragma GCC unroll 16
    for (int v = 0; v < NV; v++)
      acc[r][v] = _mm512_setzero_si512 ();

  size_t lda = job->lda_q;
  const guint8 *a = job->aq + (size_t) row0 * lda;
  const gint8 *w = job->wq + (size_t) (col0 / AGC_INT8_GROUP) * job->k4 * AGC_INT8_GROUP * 4;
  for (int k = 0; k < job->k4; k++, a += 4, w += AGC_INT8_GROUP * 4)
    {
      __m512i wv[NV];
      #pragma GCC unroll 16
      for (int v = 0; v < NV; v++)
        wv[v] = _mm512_load_si512 (w + 64 * v);
      #pragma GCC unroll 16
      for (int r = 0; r < mr; r++)
        {
          __m512i av = broadcast4 (a + r * lda);
          #pragma GCC unroll 16
          for (int v = 0; v < NV; v++)
            acc[r][v] = _mm512_dpbusd_epi32 (acc[r][v], av, wv[v]);
        }
    }

  #pragma GCC unroll 16
  for (int v = 0; v < NV; v++)
    {
      int col = col0 + 16 * v;
      if (col >= job->n_out)
        break;
      __mmask16 mask = col + 16 <= job->n_out ? 0xffff : (1u << (job->n_out - col)) - 1;
      __m512 sw = _mm512_load_ps (job->w_scale + col);
      __m512i colsum = _mm512_load_si512 (job->w_colsum + col);
      #pragma GCC unroll 16
      for (int r = 0; r < mr; r++)
        {
          int row = row0 + r;
          // acc - za colsum is exact in int32; one rounding in the conversion
          __m512i zc = _mm512_mullo_epi32 (_mm512_set1_epi32 (job->a_zero[row]), colsum);
          __m512 x = _mm512_cvtepi32_ps (_mm512_sub_epi32 (acc[r][v], zc));
          x = _mm512_mul_ps (x, _mm512_mul_ps (_mm512_set1_ps (job->a_scale[row]), sw));
          float *c = job->c + (size_t) row * job->ldc + col;
          if (job->beta != 0.0f)
            x = _mm512_fmadd_ps (_mm512_set1_ps (job->beta), _mm512_maskz_loadu_ps (mask, c), x);
          _mm512_mask_storeu_ps (c, mask, x);
        }
    }
}

// one instance per tile height, so that the accumulators live in registers
#define TILE_CASE(n)                                                                         \
  case n:                                                                                    \
    tile (job, r, n, col);                                                                   \
    break;

TARGET void
agc_int8_avx512vnni_block (const AgcInt8Job *job, int row0, int n_rows, int col0, int n_cols)
{
  for (int col = col0; col < col0 + n_cols; col += AGC_INT8_GROUP)
    for (int r = row0; r < row0 + n_rows; r += MR)
      switch (MIN (MR, row0 + n_rows - r))
        {
          TILE_CASE (1) TILE_CASE (2) TILE_CASE (3) TILE_CASE (4) TILE_CASE (5) TILE_CASE (6)
          TILE_CASE (7) TILE_CASE (8) TILE_CASE (9) TILE_CASE (10) TILE_CASE (11) TILE_CASE (12)
        }
}

TARGET void
agc_int8_avx512_quantize_row (guint8 *out, float *scale, gint32 *zero, const float *a, int n,
                              int max_q)
{
  // masked-off lanes load 0, which the range includes anyway
  __m512 lo = _mm512_setzero_ps (), hi = _mm512_setzero_ps ();
  for (int k = 0; k < n; k += 16)
    {
      __mmask16 mask = n - k >= 16 ? 0xffff : (1u << (n - k)) - 1;
      __m512 x = _mm512_maskz_loadu_ps (mask, a + k);
      lo = _mm512_min_ps (lo, x);
      hi = _mm512_max_ps (hi, x);
    }
  float inv;
  agc_int8_row_params (scale, &inv, zero, _mm512_reduce_min_ps (lo), _mm512_reduce_max_ps (hi),
                       max_q);

  __m512 vinv = _mm512_set1_ps (inv);
  __m512i vzero = _mm512_set1_epi32 (*zero), vmax = _mm512_set1_epi32 (max_q);
  for (int k = 0; k < n; k += 16)
    {
      __mmask16 mask = n - k >= 16 ? 0xffff : (1u << (n - k)) - 1;
      __m512 x = _mm512_maskz_loadu_ps (mask, a + k);
      // cvtps rounds half to even under the default MXCSR, as rint
      __m512i q = _mm512_add_epi32 (_mm512_cvtps_epi32 (_mm512_mul_ps (x, vinv)), vzero);
      q = _mm512_min_epi32 (_mm512_max_epi32 (q, _mm512_setzero_si512 ()), vmax);
      _mm512_mask_cvtepi32_storeu_epi8 (out + k, mask, q);
    }
}
