/* resize-avx2.c — resize.c's passes on AVX2: the horizontal pass takes two
 * taps (two RGB pixels, widened to R G B 0 R G B 0) per 32-bit multiply-add,
 * the vertical pass eight bytes of a row per tap. */
#include "images/resample-kernel.h"

#include <immintrin.h>

#define TARGET __attribute__ ((target ("avx2")))
#define HALF (1 << (AGC_RESAMPLE_PRECISION_BITS - 1))

TARGET void
agc_resample_row_avx2 (guint8 *out, const guint8 *row, const guint8 *end, int dst_w,
                       const AgcResampleKernel *k)
{
  const __m128i spread = _mm_setr_epi8 (0, 1, 2, -1, 3, 4, 5, -1, -1, -1, -1, -1, -1, -1, -1, -1);
  const __m256i pairs = _mm256_setr_epi32 (0, 0, 0, 0, 1, 1, 1, 1);
  for (int x = 0; x < dst_w; x++)
    {
      const int32_t *w = k->weights + (gsize) x * (gsize) k->n_taps;
      const guint8 *p = row + (gsize) k->first[x] * 3;
      int count = k->count[x];
      __m256i acc = _mm256_setzero_si256 ();
      int j = 0;
      // an odd count's last pair has weight 0 on its second pixel
      for (; j < count && p + 3 * j + 8 <= end; j += 2)
        {
          __m256i v = _mm256_cvtepu8_epi32 (
            _mm_shuffle_epi8 (_mm_loadl_epi64 ((const __m128i *) (p + 3 * j)), spread));
          __m256i wj = _mm256_permutevar8x32_epi32 (
            _mm256_castsi128_si256 (_mm_loadl_epi64 ((const __m128i *) (w + j))), pairs);
          acc = _mm256_add_epi32 (acc, _mm256_mullo_epi32 (v, wj));
        }
      int32_t s[4];
      _mm_storeu_si128 ((__m128i *) s, _mm_add_epi32 (_mm256_castsi256_si128 (acc),
                                                      _mm256_extracti128_si256 (acc, 1)));
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
agc_resample_column_avx2 (guint8 *out, const guint8 *rows, gsize stride, int count,
                          const int32_t *weights)
{
  gsize x = 0;
  for (; x + 8 <= stride; x += 8)
    {
      __m256i acc = _mm256_set1_epi32 (HALF);
      for (int j = 0; j < count; j++)
        {
          __m256i v = _mm256_cvtepu8_epi32 (
            _mm_loadl_epi64 ((const __m128i *) (rows + (gsize) j * stride + x)));
          acc = _mm256_add_epi32 (acc, _mm256_mullo_epi32 (v, _mm256_set1_epi32 (weights[j])));
        }
      acc = _mm256_srai_epi32 (acc, AGC_RESAMPLE_PRECISION_BITS);
      // signed saturation to 16 bits, then unsigned to 8: clips to 0..255
      __m128i words = _mm_packs_epi32 (_mm256_castsi256_si128 (acc),
                                       _mm256_extracti128_si256 (acc, 1));
      _mm_storel_epi64 ((__m128i *) (out + x), _mm_packus_epi16 (words, words));
    }
  for (; x < stride; x++)
    {
      int32_t s = HALF;
      for (int j = 0; j < count; j++)
        s += rows[(gsize) j * stride + x] * weights[j];
      out[x] = agc_resample_clip8 (s);
    }
}
