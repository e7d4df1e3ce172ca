/* gemm-int8-avx2.c — the ymm kernels of gemm-int8.h, for CPUs without
 * AVX-512 VNNI: AVX-VNNI (vpdpbusd on ymm) and plain AVX2.
 *
 * Both work on register tiles of MR rows x 16 columns, half a packed 32-
 * column group (two ymm vectors of 8 columns x 4 k), of the 16 ymm
 * registers.  Plain AVX2 has no 4-way u8 x s8 dot product: vpmaddubsw sums
 * pairs into int16, which saturates above 32767, so its activations are
 * quantised to 0 .. 127 (127 x 127 x 2 fits), then vpmaddwd by ones sums
 * the pairs into int32; the extra register for the products leaves room
 * for 4 rows instead of 6.
 *
 * Compiled for the baseline target; only these functions carry a target
 * attribute and gemm-int8.c calls them after checking the CPU. */
#include "kernels/gemm-int8.h"

#include <immintrin.h>
#include <math.h>
#include <string.h>

#define TARGET_AVX2 __attribute__ ((target ("avx2,fma")))
#define TARGET_VNNI __attribute__ ((target ("avxvnni,avx2,fma")))
#define INLINE static inline __attribute__ ((always_inline))

enum
{
  MR_MAX = 6,
  MR_VNNI = 6,
  MR_AVX2 = 4,
  GROUP_BYTES = AGC_INT8_GROUP * 4, // one k4 step of a packed group
};

TARGET_AVX2 INLINE __m256i
broadcast4 (const guint8 *p)
{
  gint32 v;
  memcpy (&v, p, 4);
  return _mm256_set1_epi32 (v);
}

TARGET_AVX2 INLINE __m256i
tail_mask (int n) // lanes [0, n) set
{
  return _mm256_cmpgt_epi32 (_mm256_set1_epi32 (n), _mm256_setr_epi32 (0, 1, 2, 3, 4, 5, 6, 7));
}

/* Dequantises acc[mr][2] (16 columns from col) into c. */
TARGET_AVX2 INLINE void
store_tile (const AgcInt8Job *job, __m256i acc[][2], int row0, int mr, int col)
{
  #pragma GCC unroll 16
  for (int v = 0; v < 2; v++, col += 8)
    {
      if (col >= job->n_out)
        break;
      __m256i mask = tail_mask (job->n_out - col);
      __m256 sw = _mm256_load_ps (job->w_scale + col);
      __m256i colsum = _mm256_load_si256 ((const __m256i *) (job->w_colsum + col));
      #pragma GCC unroll 16
      for (int r = 0; r < mr; r++)
        {
          int row = row0 + r;
          __m256i zc = _mm256_mullo_epi32 (_mm256_set1_epi32 (job->a_zero[row]), colsum);
          __m256 x = _mm256_cvtepi32_ps (_mm256_sub_epi32 (acc[r][v], zc));
          x = _mm256_mul_ps (x, _mm256_mul_ps (_mm256_set1_ps (job->a_scale[row]), sw));
          float *c = job->c + (size_t) row * job->ldc + col;
          if (job->beta != 0.0f)
            x = _mm256_fmadd_ps (_mm256_set1_ps (job->beta), _mm256_maskload_ps (c, mask), x);
          _mm256_maskstore_ps (c, mask, x);
        }
    }
}

/* The loop over k of a tile, DOT(acc, activations, weights) being the
 * kernel's 4-way multiply-add; w points at 16 columns of a packed group.
 * The unroll pragmas keep acc in registers (GCC -O2 would not). */
#define TILE_LOOP(DOT)                                                                       \
  __m256i acc[MR_MAX][2];                                                                    \
  _Pragma ("GCC unroll 16")                                                                  \
  for (int r = 0; r < mr; r++)                                                               \
    acc[r][0] = acc[r][1] = _mm256_setzero_si256 ();                                         \
  size_t lda = job->lda_q;                                                                   \
  const guint8 *a = job->aq + (size_t) row0 * lda;                                           \
  for (int k = 0; k < job->k4; k++, a += 4, w += GROUP_BYTES)                                \
    {                                                                                        \
      __m256i w0 = _mm256_load_si256 ((const __m256i *) w);                                  \
      __m256i w1 = _mm256_load_si256 ((const __m256i *) (w + 32));                           \
      _Pragma ("GCC unroll 16")                                                              \
      for (int r = 0; r < mr; r++)                                                           \
        {                                                                                    \
          __m256i av = broadcast4 (a + r * lda);                                             \
          DOT (acc[r][0], av, w0);                                                           \
          DOT (acc[r][1], av, w1);                                                           \
        }                                                                                    \
    }                                                                                        \
  store_tile (job, acc, row0, mr, col)

#define DOT_VNNI(acc, a, w) acc = _mm256_dpbusd_avx_epi32 (acc, a, w)
#define DOT_AVX2(acc, a, w) \
  acc = _mm256_add_epi32 (acc, _mm256_madd_epi16 (_mm256_maddubs_epi16 (a, w), ones))

TARGET_VNNI INLINE void
tile_vnni (const AgcInt8Job *job, const gint8 *w, int row0, int mr, int col)
{
  TILE_LOOP (DOT_VNNI);
}

TARGET_AVX2 INLINE void
tile_avx2 (const AgcInt8Job *job, const gint8 *w, int row0, int mr, int col)
{
  const __m256i ones = _mm256_set1_epi16 (1);
  TILE_LOOP (DOT_AVX2);
}

// one instance per tile height, so that the accumulators live in registers
#define TILE_CASE(fn, n)                                                                     \
  case n:                                                                                    \
    fn (job, w, r, n, col);                                                                  \
    break;

/* Each 16-column half of each group, row tiles of at most mr_max rows. */
#define BLOCK_LOOP(...)                                                                      \
  for (int group = col0; group < col0 + n_cols; group += AGC_INT8_GROUP)                    \
    for (int half = 0; half < AGC_INT8_GROUP; half += 16)                                    \
      {                                                                                      \
        int col = group + half;                                                              \
        if (col >= job->n_out)                                                               \
          break;                                                                             \
        const gint8 *w = job->wq + (size_t) (group / AGC_INT8_GROUP) * job->k4 * GROUP_BYTES \
                         + half * 4;                                                         \
        for (int r = row0; r < row0 + n_rows; r += mr_max)                                   \
          switch (MIN (mr_max, row0 + n_rows - r))                                           \
            {                                                                                \
              __VA_ARGS__                                                                    \
            }                                                                                \
      }

TARGET_VNNI void
agc_int8_avxvnni_block (const AgcInt8Job *job, int row0, int n_rows, int col0, int n_cols)
{
  const int mr_max = MR_VNNI;
  BLOCK_LOOP (TILE_CASE (tile_vnni, 1) TILE_CASE (tile_vnni, 2) TILE_CASE (tile_vnni, 3)
                TILE_CASE (tile_vnni, 4) TILE_CASE (tile_vnni, 5) TILE_CASE (tile_vnni, 6))
}

TARGET_AVX2 void
agc_int8_avx2_block (const AgcInt8Job *job, int row0, int n_rows, int col0, int n_cols)
{
  const int mr_max = MR_AVX2;
  BLOCK_LOOP (TILE_CASE (tile_avx2, 1) TILE_CASE (tile_avx2, 2) TILE_CASE (tile_avx2, 3)
                TILE_CASE (tile_avx2, 4))
}

TARGET_AVX2 void
agc_int8_avx2_quantize_row (guint8 *out, float *scale, gint32 *zero, const float *a, int n,
                            int max_q)
{
  // masked-off lanes load 0, which the range includes anyway
  __m256 lo = _mm256_setzero_ps (), hi = _mm256_setzero_ps ();
  for (int k = 0; k < n; k += 8)
    {
      __m256 x = _mm256_maskload_ps (a + k, tail_mask (n - k));
      lo = _mm256_min_ps (lo, x);
      hi = _mm256_max_ps (hi, x);
    }
  float lo8[8], hi8[8];
  _mm256_storeu_ps (lo8, lo);
  _mm256_storeu_ps (hi8, hi);
  for (int i = 1; i < 8; i++)
    {
      lo8[0] = fminf (lo8[0], lo8[i]);
      hi8[0] = fmaxf (hi8[0], hi8[i]);
    }
  float inv;
  agc_int8_row_params (scale, &inv, zero, lo8[0], hi8[0], max_q);

  __m256 vinv = _mm256_set1_ps (inv);
  __m256i vzero = _mm256_set1_epi32 (*zero), vmax = _mm256_set1_epi32 (max_q);
  // 0 .. 255 survive both packs unchanged; the permute undoes their lane interleave
  const __m256i order = _mm256_setr_epi32 (0, 4, 1, 5, 2, 6, 3, 7);
  for (int k = 0; k < n; k += 32)
    {
      __m256i q[4];
      for (int i = 0; i < 4; i++)
        {
          __m256 x = _mm256_maskload_ps (a + k + 8 * i, tail_mask (n - k - 8 * i));
          // cvtps rounds half to even under the default MXCSR, as rint
          q[i] = _mm256_add_epi32 (_mm256_cvtps_epi32 (_mm256_mul_ps (x, vinv)), vzero);
          q[i] = _mm256_min_epi32 (_mm256_max_epi32 (q[i], _mm256_setzero_si256 ()), vmax);
        }
      __m256i bytes = _mm256_packus_epi16 (_mm256_packs_epi32 (q[0], q[1]),
                                           _mm256_packs_epi32 (q[2], q[3]));
      bytes = _mm256_permutevar8x32_epi32 (bytes, order);
      if (n - k >= 32)
        _mm256_storeu_si256 ((__m256i *) (out + k), bytes);
      else
        {
          guint8 tmp[32];
          _mm256_storeu_si256 ((__m256i *) tmp, bytes);
          memcpy (out + k, tmp, n - k);
        }
    }
}
