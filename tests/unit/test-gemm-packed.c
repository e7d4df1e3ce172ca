/* The packed GEMM (core/kernels/gemm-packed.c) against a float64 product written
 * here, on both kernels (AVX-512 where the CPU has it, AVX2), for thin and
 * thick products, odd sizes, float32 and float16 weights stacked from
 * parts, beta 0 and 1, leading dimensions wider than the matrices (and the
 * strides that gemm-packed.c copies A away from), and the
 * epilogues (bias, bias and activation, activation alone; ReLU in the
 * kernels' registers, after the residual). */
#include "kernels/gemm-packed.h"
#include "kernels/ops.h"
#include "kernels/threads.h"

#include <agriclip.h>
#include <math.h>
#include <string.h>

static float
random_float (guint32 *state)
{
  *state = *state * 1664525u + 1013904223u;
  return (float) (*state >> 8) / (float) (1u << 24) - 0.5f;
}

// float32 -> float16 bits, round to nearest even (normal range only)
static uint16_t
to_half (float f)
{
  union { float f; uint32_t u; } v = { f };
  uint32_t sign = (v.u >> 16) & 0x8000, exp = (v.u >> 23) & 0xff, man = v.u & 0x7fffff;
  if (exp == 0 || (int) exp - 127 < -14)
    return (uint16_t) sign;
  uint32_t half = sign | ((exp - 127 + 15) << 10) | (man >> 13);
  uint32_t rest = man & 0x1fff;
  if (rest > 0x1000 || (rest == 0x1000 && (half & 1)))
    half++;
  return (uint16_t) half;
}

static float
from_half (uint16_t h)
{
  uint32_t sign = (uint32_t) (h & 0x8000) << 16, exp = (h >> 10) & 0x1f, man = h & 0x3ff;
  union { uint32_t u; float f; } v = { exp == 0 ? sign : sign | ((exp - 15 + 127) << 23) | (man << 13) };
  return v.f;
}

typedef enum
{
  NONE,
  BIAS,
  BIAS_QUICK_GELU,
  BIAS_GELU,
  GELU, // activation without a bias
  BIAS_RELU,
} Epilogue;

static double
activation (double v, AgcActivation act)
{
  if (act == AGC_ACT_RELU)
    return v > 0 ? v : 0;
  return act == AGC_ACT_GELU ? 0.5 * v * (1.0 + erf (v / sqrt (2.0))) : v / (1.0 + exp (-1.702 * v));
}

typedef struct
{
  int rows, n_out, n_in, lda, ldc, n_parts;
  float beta;
  gboolean half;
  Epilogue epilogue;
} Case;

static void
check_case (const Case *k)
{
  guint32 state = (guint32) (k->rows * 7919 + k->n_out * 31 + k->n_in);
  float *a = g_new (float, (size_t) k->rows * k->lda);
  float *w = g_new (float, (size_t) k->n_out * k->n_in);    // float32 values of the weights
  uint16_t *w16 = g_new (uint16_t, (size_t) k->n_out * k->n_in);
  float *c = g_new (float, (size_t) k->rows * k->ldc);
  double *want = g_new (double, (size_t) k->rows * k->ldc);
  for (size_t i = 0; i < (size_t) k->rows * k->lda; i++)
    a[i] = random_float (&state);
  for (size_t i = 0; i < (size_t) k->n_out * k->n_in; i++)
    {
      w[i] = random_float (&state);
      w16[i] = to_half (w[i]);
      if (k->half)
        w[i] = from_half (w16[i]);
    }
  for (size_t i = 0; i < (size_t) k->rows * k->ldc; i++)
    want[i] = c[i] = random_float (&state);
  float *bias = g_new (float, k->n_out);
  for (int n = 0; n < k->n_out; n++)
    bias[n] = random_float (&state);
  AgcGemmEpilogue epilogue = {
    .bias = k->epilogue != NONE && k->epilogue != GELU ? bias : NULL,
    .apply_act = k->epilogue >= BIAS_QUICK_GELU,
    .act = k->epilogue == BIAS_QUICK_GELU ? AGC_ACT_QUICK_GELU
           : k->epilogue == BIAS_RELU     ? AGC_ACT_RELU
                                          : AGC_ACT_GELU,
  };
  for (int r = 0; r < k->rows; r++)
    for (int n = 0; n < k->n_out; n++)
      {
        double sum = 0;
        for (int i = 0; i < k->n_in; i++)
          sum += (double) a[(size_t) r * k->lda + i] * w[(size_t) n * k->n_in + i];
        double *out = &want[(size_t) r * k->ldc + n];
        *out = k->beta * *out + sum + (epilogue.bias != NULL ? bias[n] : 0.0);
        if (epilogue.apply_act)
          *out = activation (*out, epilogue.act);
      }

  // the weight rows cut into n_parts stacked parts of (nearly) equal height
  AgcParam params[3];
  const AgcParam *parts[3];
  int heights[3], first = 0;
  for (int i = 0; i < k->n_parts; i++)
    {
      heights[i] = k->n_out / k->n_parts + (i < k->n_out % k->n_parts);
      size_t offset = (size_t) first * k->n_in, n = (size_t) heights[i] * k->n_in;
      params[i] = k->half ? (AgcParam){ AGC_DTYPE_F16, w16 + offset, n }
                          : (AgcParam){ AGC_DTYPE_F32, w + offset, n };
      parts[i] = &params[i];
      first += heights[i];
    }
  AgcPackedMatrix packed;
  GError *error = NULL;
  g_assert_true (agc_packed_matrix_init (&packed, NULL, parts, heights, k->n_parts, k->n_in,
                                         &error));
  g_assert_no_error (error);
  agc_gemm_packed (c, k->ldc, a, k->lda, &packed, k->rows, k->beta,
                   k->epilogue != NONE ? &epilogue : NULL);

  double worst = 0;
  for (int r = 0; r < k->rows; r++)
    for (int n = 0; n < k->ldc; n++)
      {
        size_t i = (size_t) r * k->ldc + n;
        // columns past n_out are the caller's: untouched
        double err = fabs (c[i] - want[i]) / sqrt ((double) k->n_in);
        worst = MAX (worst, err);
      }
  // float32 sums of n_in products of size <= 1/4: rounding grows ~sqrt(n_in)
  if (worst > 2e-6)
    g_error ("rows %d n_out %d n_in %d beta %g epilogue %d: error %g x sqrt(n_in)", k->rows,
             k->n_out, k->n_in, k->beta, k->epilogue, worst);
  agc_packed_matrix_clear (&packed);
  g_free (bias);
  g_free (a);
  g_free (w);
  g_free (w16);
  g_free (c);
  g_free (want);
}

static const Case cases[] = {
  { 1, 32, 8, 8, 32, 1, 0, FALSE, NONE },
  { 50, 2304, 768, 768, 2304, 3, 0, FALSE, NONE },   // ViT-B/32 qkv at batch 1
  { 50, 768, 3072, 3072, 768, 1, 1, FALSE, NONE },   // fc2 with the residual
  { 400, 768, 768, 800, 770, 1, 1, FALSE, NONE },     // batch 8, wide strides
  { 197, 100, 300, 300, 100, 1, 0, TRUE, NONE },
  { 7, 17, 3, 5, 20, 1, 1, FALSE, NONE },
  { 13, 120, 40, 40, 120, 3, 0, TRUE, NONE },        // fused qkv of width 40
  { 25, 33, 400, 410, 40, 2, 1, FALSE, NONE },       // k crosses a slice boundary
  { 3, 1, 1, 1, 1, 1, 0, FALSE, NONE },
  { 50, 3072, 768, 768, 3072, 1, 0, FALSE, BIAS_QUICK_GELU }, // ViT-B fc1
  { 400, 2304, 768, 768, 2304, 3, 0, TRUE, BIAS },            // qkv, batch 8, half
  { 25, 33, 400, 410, 40, 2, 1, FALSE, BIAS_GELU },           // bias once over 2 slices
  { 13, 70, 40, 40, 75, 1, 1, FALSE, GELU },
  { 7, 17, 3, 5, 20, 1, 0, FALSE, BIAS },
  { 30, 64, 200, 256, 64, 1, 1, FALSE, BIAS }, // A's stride aliases: copied to 208
  { 20, 40, 128, 128, 40, 1, 0, FALSE, NONE }, // copied to 144
  { 37, 70, 64, 64, 70, 1, 0, FALSE, BIAS_RELU },   // a ResNet 1x1 conv
  { 25, 33, 400, 410, 40, 2, 1, FALSE, BIAS_RELU }, // onto the residual, after 2 slices
};

static void
check_all (gconstpointer limit)
{
  agc_packed_gemm_limit_to_avx2 (GPOINTER_TO_INT (limit));
  for (size_t i = 0; i < G_N_ELEMENTS (cases); i++)
    check_case (&cases[i]);
  agc_packed_gemm_limit_to_avx2 (FALSE);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  if (!agc_packed_gemm_available ())
    {
      g_test_message ("no AVX2 + FMA here: the packed GEMM is not used");
      return g_test_run ();
    }
  g_test_add_data_func ("/gemm-packed/best-kernel", GINT_TO_POINTER (FALSE), check_all);
  g_test_add_data_func ("/gemm-packed/avx2-kernel", GINT_TO_POINTER (TRUE), check_all);
  return g_test_run ();
}
