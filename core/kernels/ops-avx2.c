/* ops-avx2.c — AVX2+FMA kernels for layer norm, activations, softmax and
 * half-precision conversion.
 *
 * Compiled for the baseline target like the rest of the library; only these
 * functions carry a target attribute, and ops.c calls them after checking the
 * CPU, so one binary runs everywhere.  Row tails go through masked loads so
 * that every element gets the same arithmetic wherever it sits in a row.
 *
 * exp: Cody-Waite range reduction x = n ln2 + r, a degree-6 polynomial for
 * e^r (Cephes' coefficients), 2^n put into the exponent bits.
 * erf: Abramowitz & Stegun 7.1.26, |error| < 1.5e-7. */
#include "kernels/ops-avx2.h"

#include <immintrin.h>
#include <math.h>

#define TARGET __attribute__ ((target ("avx2,fma,f16c")))

TARGET static inline __m256i
tail_mask (int n) // lanes [0, n) set
{
  return _mm256_cmpgt_epi32 (_mm256_set1_epi32 (n), _mm256_setr_epi32 (0, 1, 2, 3, 4, 5, 6, 7));
}

TARGET static inline float
hsum (__m256 v)
{
  __m128 s = _mm_add_ps (_mm256_castps256_ps128 (v), _mm256_extractf128_ps (v, 1));
  s = _mm_add_ps (s, _mm_movehl_ps (s, s));
  s = _mm_add_ss (s, _mm_movehdup_ps (s));
  return _mm_cvtss_f32 (s);
}

TARGET static inline float
hmax (__m256 v)
{
  __m128 s = _mm_max_ps (_mm256_castps256_ps128 (v), _mm256_extractf128_ps (v, 1));
  s = _mm_max_ps (s, _mm_movehl_ps (s, s));
  s = _mm_max_ss (s, _mm_movehdup_ps (s));
  return _mm_cvtss_f32 (s);
}

// e^x; +inf above the float range, exactly 0 below the normal range
TARGET static inline __m256
exp8 (__m256 x)
{
  __m256 overflow = _mm256_cmp_ps (x, _mm256_set1_ps (88.72283935546875f), _CMP_GT_OQ);
  __m256 underflow = _mm256_cmp_ps (x, _mm256_set1_ps (-87.33654475f), _CMP_LT_OQ);
  x = _mm256_min_ps (_mm256_max_ps (x, _mm256_set1_ps (-87.33654475f)), _mm256_set1_ps (88.0f));
  __m256 n = _mm256_round_ps (_mm256_mul_ps (x, _mm256_set1_ps (1.44269504088896341f)),
                              _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256 r = _mm256_fnmadd_ps (n, _mm256_set1_ps (0.693359375f), x);
  r = _mm256_fnmadd_ps (n, _mm256_set1_ps (-2.12194440e-4f), r);
  __m256 p = _mm256_set1_ps (1.9875691500e-4f);
  p = _mm256_fmadd_ps (p, r, _mm256_set1_ps (1.3981999507e-3f));
  p = _mm256_fmadd_ps (p, r, _mm256_set1_ps (8.3334519073e-3f));
  p = _mm256_fmadd_ps (p, r, _mm256_set1_ps (4.1665795894e-2f));
  p = _mm256_fmadd_ps (p, r, _mm256_set1_ps (1.6666665459e-1f));
  p = _mm256_fmadd_ps (p, r, _mm256_set1_ps (5.0000001201e-1f));
  p = _mm256_fmadd_ps (p, _mm256_mul_ps (r, r), _mm256_add_ps (r, _mm256_set1_ps (1.0f)));
  __m256i e = _mm256_slli_epi32 (_mm256_add_epi32 (_mm256_cvtps_epi32 (n), _mm256_set1_epi32 (127)),
                                 23);
  __m256 y = _mm256_mul_ps (p, _mm256_castsi256_ps (e));
  y = _mm256_blendv_ps (y, _mm256_set1_ps (INFINITY), overflow);
  return _mm256_andnot_ps (underflow, y);
}

// x * Phi(x), Phi(x) = (1 + erf(x / sqrt 2)) / 2; the negative side is
// computed as the small tail itself, not 1 minus something close to 1
TARGET static inline __m256
gelu8 (__m256 x)
{
  __m256 z = _mm256_mul_ps (_mm256_andnot_ps (_mm256_set1_ps (-0.0f), x),
                            _mm256_set1_ps (0.70710678118654752f));
  __m256 t = _mm256_div_ps (_mm256_set1_ps (1.0f),
                            _mm256_fmadd_ps (z, _mm256_set1_ps (0.3275911f), _mm256_set1_ps (1.0f)));
  __m256 p = _mm256_set1_ps (1.061405429f);
  p = _mm256_fmadd_ps (p, t, _mm256_set1_ps (-1.453152027f));
  p = _mm256_fmadd_ps (p, t, _mm256_set1_ps (1.421413741f));
  p = _mm256_fmadd_ps (p, t, _mm256_set1_ps (-0.284496736f));
  p = _mm256_fmadd_ps (p, t, _mm256_set1_ps (0.254829592f));
  p = _mm256_mul_ps (p, t);
  __m256 e = exp8 (_mm256_mul_ps (_mm256_sub_ps (_mm256_setzero_ps (), z), z));
  __m256 tail = _mm256_mul_ps (_mm256_mul_ps (_mm256_set1_ps (0.5f), p), e); // Phi(-|x|)
  __m256 negative = _mm256_cmp_ps (x, _mm256_setzero_ps (), _CMP_LT_OQ);
  __m256 phi = _mm256_blendv_ps (_mm256_sub_ps (_mm256_set1_ps (1.0f), tail), tail, negative);
  return _mm256_mul_ps (x, phi);
}

// x / (1 + e^(-1.702 x)): e^ overflows to inf for very negative x, giving -0
TARGET static inline __m256
quick_gelu8 (__m256 x)
{
  __m256 e = exp8 (_mm256_mul_ps (x, _mm256_set1_ps (-1.702f)));
  return _mm256_div_ps (x, _mm256_add_ps (_mm256_set1_ps (1.0f), e));
}

TARGET static inline __m256
load_bias (const float *bias, size_t i, __m256i mask)
{
  return bias != NULL ? _mm256_maskload_ps (bias + i, mask) : _mm256_setzero_ps ();
}

enum
{
  ACT_GELU,
  ACT_QUICK_GELU,
  ACT_RELU,
};

TARGET static inline __m256
act8 (__m256 v, int act)
{
  return act == ACT_RELU ? _mm256_max_ps (v, _mm256_setzero_ps ())
         : act == ACT_QUICK_GELU ? quick_gelu8 (v)
                                 : gelu8 (v);
}

// x = act(x + bias); act is a constant at every call site, so each gets
// its own loop with the activation inlined
TARGET static inline void
bias_act (float *x, const float *bias, size_t n, int act)
{
  __m256i all = _mm256_set1_epi32 (-1);
  size_t i = 0;
  for (; i + 8 <= n; i += 8)
    {
      __m256 v = _mm256_add_ps (_mm256_loadu_ps (x + i), load_bias (bias, i, all));
      _mm256_storeu_ps (x + i, act8 (v, act));
    }
  if (i < n)
    {
      __m256i m = tail_mask ((int) (n - i));
      __m256 v = _mm256_add_ps (_mm256_maskload_ps (x + i, m), load_bias (bias, i, m));
      _mm256_maskstore_ps (x + i, m, act8 (v, act));
    }
}

TARGET void
agc_avx2_gelu (float *x, const float *bias, size_t n)
{
  bias_act (x, bias, n, ACT_GELU);
}

TARGET void
agc_avx2_quick_gelu (float *x, const float *bias, size_t n)
{
  bias_act (x, bias, n, ACT_QUICK_GELU);
}

TARGET void
agc_avx2_relu (float *x, const float *bias, size_t n)
{
  bias_act (x, bias, n, ACT_RELU);
}

TARGET void
agc_avx2_bias_layernorm_row (float *out, float *x, const float *add_bias, const float *weight,
                             const float *bias, int width, float eps)
{
  int full = width & ~7;
  __m256i tail = tail_mask (width - full);
  // pass 1: x += add_bias, sum
  __m256 sum = _mm256_setzero_ps ();
  for (int i = 0; i < full; i += 8)
    {
      __m256 v = _mm256_loadu_ps (x + i);
      if (add_bias != NULL)
        {
          v = _mm256_add_ps (v, _mm256_loadu_ps (add_bias + i));
          _mm256_storeu_ps (x + i, v);
        }
      sum = _mm256_add_ps (sum, v);
    }
  if (full < width)
    {
      __m256 v = _mm256_maskload_ps (x + full, tail);
      if (add_bias != NULL)
        {
          v = _mm256_add_ps (v, _mm256_maskload_ps (add_bias + full, tail));
          _mm256_maskstore_ps (x + full, tail, v);
        }
      sum = _mm256_add_ps (sum, v);
    }
  if (out == NULL)
    return;
  // pass 2: deviations from the float mean; their sum corrects the mean
  // itself, so a residual stream with |mean| >> std keeps its digits
  float mean0 = hsum (sum) / width;
  __m256 m0 = _mm256_set1_ps (mean0);
  __m256 sum_d = _mm256_setzero_ps (), sum_d2 = _mm256_setzero_ps ();
  for (int i = 0; i < full; i += 8)
    {
      __m256 d = _mm256_sub_ps (_mm256_loadu_ps (x + i), m0);
      sum_d = _mm256_add_ps (sum_d, d);
      sum_d2 = _mm256_fmadd_ps (d, d, sum_d2);
    }
  if (full < width)
    {
      __m256 d = _mm256_and_ps (_mm256_sub_ps (_mm256_maskload_ps (x + full, tail), m0),
                                _mm256_castsi256_ps (tail));
      sum_d = _mm256_add_ps (sum_d, d);
      sum_d2 = _mm256_fmadd_ps (d, d, sum_d2);
    }
  float shift = hsum (sum_d) / width;
  float var = hsum (sum_d2) / width - shift * shift; // biased, as PyTorch
  float rstd = 1.0f / sqrtf (fmaxf (var, 0.0f) + eps);
  __m256 mean = _mm256_set1_ps (mean0 + shift), r = _mm256_set1_ps (rstd);
  // pass 3: normalise, scale, shift
  for (int i = 0; i < full; i += 8)
    {
      __m256 n = _mm256_mul_ps (_mm256_sub_ps (_mm256_loadu_ps (x + i), mean), r);
      _mm256_storeu_ps (out + i, _mm256_fmadd_ps (n, _mm256_loadu_ps (weight + i),
                                                  _mm256_loadu_ps (bias + i)));
    }
  if (full < width)
    {
      __m256 n = _mm256_mul_ps (_mm256_sub_ps (_mm256_maskload_ps (x + full, tail), mean), r);
      __m256 y = _mm256_fmadd_ps (n, _mm256_maskload_ps (weight + full, tail),
                                  _mm256_maskload_ps (bias + full, tail));
      _mm256_maskstore_ps (out + full, tail, y);
    }
}

TARGET void
agc_avx2_softmax_row (float *x, int n)
{
  int full = n & ~7;
  __m256i tail = tail_mask (n - full);
  __m256 neg_inf = _mm256_set1_ps (-INFINITY);
  __m256 vmax = neg_inf;
  for (int i = 0; i < full; i += 8)
    vmax = _mm256_max_ps (vmax, _mm256_loadu_ps (x + i));
  if (full < n)
    vmax = _mm256_max_ps (vmax, _mm256_blendv_ps (neg_inf, _mm256_maskload_ps (x + full, tail),
                                                  _mm256_castsi256_ps (tail)));
  __m256 max = _mm256_set1_ps (hmax (vmax)); // shifted: the largest term is exactly 1
  __m256 sum = _mm256_setzero_ps ();
  for (int i = 0; i < full; i += 8)
    {
      __m256 e = exp8 (_mm256_sub_ps (_mm256_loadu_ps (x + i), max));
      _mm256_storeu_ps (x + i, e);
      sum = _mm256_add_ps (sum, e);
    }
  if (full < n)
    {
      __m256 e = exp8 (_mm256_sub_ps (_mm256_maskload_ps (x + full, tail), max));
      e = _mm256_and_ps (e, _mm256_castsi256_ps (tail));
      _mm256_maskstore_ps (x + full, tail, e);
      sum = _mm256_add_ps (sum, e);
    }
  __m256 inv = _mm256_set1_ps (1.0f / hsum (sum));
  for (int i = 0; i < full; i += 8)
    _mm256_storeu_ps (x + i, _mm256_mul_ps (_mm256_loadu_ps (x + i), inv));
  if (full < n)
    _mm256_maskstore_ps (x + full, tail, _mm256_mul_ps (_mm256_maskload_ps (x + full, tail), inv));
}

TARGET void
agc_avx2_f16_to_f32 (float *out, const uint16_t *in, size_t n)
{
  size_t i = 0;
  for (; i + 8 <= n; i += 8)
    _mm256_storeu_ps (out + i, _mm256_cvtph_ps (_mm_loadu_si128 ((const __m128i *) (in + i))));
  if (i < n)
    {
      uint16_t buf[8] = { 0 };
      float tmp[8];
      for (size_t j = 0; i + j < n; j++)
        buf[j] = in[i + j];
      _mm256_storeu_ps (tmp, _mm256_cvtph_ps (_mm_loadu_si128 ((const __m128i *) buf)));
      for (size_t j = 0; i + j < n; j++)
        out[i + j] = tmp[j];
    }
}

TARGET void
agc_avx2_bf16_to_f32 (float *out, const uint16_t *in, size_t n)
{
  size_t i = 0;
  for (; i + 8 <= n; i += 8)
    {
      __m256i v = _mm256_cvtepu16_epi32 (_mm_loadu_si128 ((const __m128i *) (in + i)));
      _mm256_storeu_ps (out + i, _mm256_castsi256_ps (_mm256_slli_epi32 (v, 16)));
    }
  for (; i < n; i++)
    {
      uint32_t bits = (uint32_t) in[i] << 16;
      __builtin_memcpy (out + i, &bits, sizeof bits);
    }
}
