/* resize-avx512.c — resize.c's passes on AVX-512: the horizontal pass takes
 * four taps (four RGB pixels, widened to R G B 0 x 4) per 32-bit multiply-add,
 * the vertical pass sixteen bytes of a row per tap. */
#include "images/resample-kernel.h"

#include <immintrin.h>

#define TARGET __attribute__ ((target ("avx512f")))
#define HALF (1 << (AGC_RESAMPLE_PRECISION_BITS - 1))

TARGET void
agc_resample_row_avx512 (guint8 *out, const guint8 *row, const guint8 *end, int dst_w,
                         const AgcResampleKernel *k)
{
  const __m128i spread = _mm_setr_epi8 (0, 1, 2, -1, 3, 4, 5, -1, 6, 7, 8, -1, 9, 10, 11, -1);
  const __m512i quads = _mm512_setr_epi32 (0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3);
  for (int x = 0; x < dst_w; x++)
    {
      const int32_t *w = k->weights + (gsize) x * (gsize) k->n_taps;
      const guint8 *p = row + (gsize) k->first[x] * 3;
      int count = k->count[x];
      __m512i acc = _mm512_setzero_si512 ();
      int j = 0;
      // the weights past count are 0 up to a multiple of 4 (n_taps)
      for (; j < count && p + 3 * j + 16 <= end; j += 4)
        {
          __m512i v = _mm512_cvtepu8_epi32 (
            _mm_shuffle_epi8 (_mm_loadu_si128 ((const __m128i *) (p + 3 * j)), spread));
          __m512i wj = _mm512_permutexvar_epi32 (
            quads, _mm512_castsi128_si512 (_mm_loadu_si128 ((const __m128i *) (w + j))));
          acc = _mm512_add_epi32 (acc, _mm512_mullo_epi32 (v, wj));
        }
      __m128i s4 = _mm_add_epi32 (
        _mm_add_epi32 (_mm512_extracti32x4_epi32 (acc, 0), _mm512_extracti32x4_epi32 (acc, 1)),
        _mm_add_epi32 (_mm512_extracti32x4_epi32 (acc, 2), _mm512_extracti32x4_epi32 (acc, 3)));
      int32_t s[4];
      _mm_storeu_si128 ((__m128i *) s, s4);
      int32_t s0 = s[0] + HALF, s1 = s[1] + HALF, s2 = s[2] + HALF;
      for (; j < count; j++) // the image's last bytes
        {
          s0 += p[j * 3 + 0] * w[j];
          s1 += p[j * 3 + 1] * w[j];
          s2 += p[j * 3 + 2] * w[j];
        }
      out[x * 3 + 0] = agc_resample_clip8 (s0);
      out[x * 3 + 1] = agc_resample_clip8 (s1);
      out[x * 3 + 2] = agc_resample_clip8 (s2);
    }
}

TARGET void
agc_resample_column_avx512 (guint8 *out, const guint8 *rows, gsize stride, int count,
                            const int32_t *weights)
{
  const __m512i zero = _mm512_setzero_si512 ();
  gsize x = 0;
  for (; x + 16 <= stride; x += 16)
    {
      __m512i acc = _mm512_set1_epi32 (HALF);
      for (int j = 0; j < count; j++)
        {
          __m512i v = _mm512_cvtepu8_epi32 (
            _mm_loadu_si128 ((const __m128i *) (rows + (gsize) j * stride + x)));
          acc = _mm512_add_epi32 (acc, _mm512_mullo_epi32 (v, _mm512_set1_epi32 (weights[j])));
        }
      // negative sums to 0 first: the narrowing saturates as unsigned
      acc = _mm512_max_epi32 (_mm512_srai_epi32 (acc, AGC_RESAMPLE_PRECISION_BITS), zero);
      _mm_storeu_si128 ((__m128i *) (out + x), _mm512_cvtusepi32_epi8 (acc));
    }
  for (; x < stride; x++)
    {
      int32_t s = HALF;
      for (int j = 0; j < count; j++)
        s += rows[(gsize) j * stride + x] * weights[j];
      out[x] = agc_resample_clip8 (s);
    }
}
