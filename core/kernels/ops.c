/* ops.c — layer norm, linear, activations, softmax, L2 normalisation,
 * half-precision conversion.
 *
 * The plain loops here are the reference and the fallback; where the CPU has
 * AVX2+FMA+F16C the element-wise ops go to ops-avx2.c instead (checked once,
 * at first use).  The only heavy op, linear, is one OpenBLAS sgemm. */
#include "kernels/ops.h"

#include "kernels/ops-avx2.h"
#include "formats/tensor.h"

#include <cblas.h>
#include <math.h>
#include <string.h>

static int use_avx2 = -1; // -1: not checked yet
static int force_scalar;

static gboolean
have_avx2 (void)
{
  if (G_UNLIKELY (g_atomic_int_get (&use_avx2) < 0))
    {
      int ok = 0;
#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
      __builtin_cpu_init ();
#if defined(__clang__) && __clang_major__ < 15
      // clang 14 (the fuzzing build) does not know "f16c" here; every AVX2 CPU has it
      ok = __builtin_cpu_supports ("avx2") && __builtin_cpu_supports ("fma");
#else
      ok = __builtin_cpu_supports ("avx2") && __builtin_cpu_supports ("fma")
           && __builtin_cpu_supports ("f16c");
#endif
#endif
      g_atomic_int_set (&use_avx2, ok);
    }
  return g_atomic_int_get (&use_avx2) && !g_atomic_int_get (&force_scalar);
}

gboolean
agc_ops_simd (void)
{
  return have_avx2 ();
}

int
agc_ops_force_scalar (int force)
{
  g_atomic_int_set (&force_scalar, force != 0);
  return have_avx2 ();
}

static void
layernorm_row_scalar (float *out, float *stats, float *x, const float *add_bias,
                      const float *weight, const float *bias, int width, float eps)
{
  if (add_bias != NULL)
    for (int i = 0; i < width; i++)
      x[i] += add_bias[i];
  if (out == NULL)
    return;
  // two passes in double: the residual stream can have |mean| >> std, where
  // float sums (or the one-pass E[x^2] - E[x]^2) lose the digits that matter
  double sum = 0.0;
  for (int i = 0; i < width; i++)
    sum += x[i];
  double mean = sum / width;
  double sum_sq = 0.0;
  for (int i = 0; i < width; i++)
    {
      double d = x[i] - mean;
      sum_sq += d * d;
    }
  float rstd = (float) (1.0 / sqrt (sum_sq / width + eps)); // biased variance, as PyTorch
  float meanf = (float) mean;
  if (stats != NULL)
    {
      stats[0] = meanf;
      stats[1] = rstd;
    }
  for (int i = 0; i < width; i++)
    out[i] = (x[i] - meanf) * rstd * weight[i] + bias[i];
}

void
agc_bias_layernorm_forward (float *out, float *mean, float *rstd, float *x,
                            const float *add_bias, const float *weight, const float *bias,
                            int n_rows, int width, float eps)
{
  gboolean simd = have_avx2 ();
  gboolean keep = out != NULL && mean != NULL && rstd != NULL;
  for (int r = 0; r < n_rows; r++)
    {
      float *xr = x + (size_t) r * width;
      float *outr = out != NULL ? out + (size_t) r * width : NULL;
      float stats[2];
      // statistics kept for training come from the two passes in double:
      // its backward and AdamW magnify the float passes' rounding
      if (simd && !keep)
        agc_avx2_bias_layernorm_row (outr, xr, add_bias, weight, bias, width, eps);
      else
        layernorm_row_scalar (outr, keep ? stats : NULL, xr, add_bias, weight, bias, width, eps);
      if (keep)
        {
          mean[r] = stats[0];
          rstd[r] = stats[1];
        }
    }
}

void
agc_layernorm_forward (float *out, const float *x, const float *weight, const float *bias,
                       int n_rows, int width, float eps)
{
  // without add_bias x is only read
  agc_bias_layernorm_forward (out, NULL, NULL, (float *) x, NULL, weight, bias, n_rows, width,
                              eps);
}

void
agc_linear_forward (float *out, const float *x, const float *weight, const float *bias,
                    int n_rows, int n_in, int n_out)
{
  // the bias goes in first so the GEMM can accumulate onto it (beta = 1)
  float beta = 0.0f;
  if (bias != NULL)
    {
      for (int r = 0; r < n_rows; r++)
        memcpy (out + (size_t) r * n_out, bias, (size_t) n_out * sizeof (float));
      beta = 1.0f;
    }
  cblas_sgemm (CblasRowMajor, CblasNoTrans, CblasTrans, n_rows, n_out, n_in,
               1.0f, x, n_in, weight, n_in, beta, out, n_out);
}

static float
gelu1 (float x)
{
  return 0.5f * x * (1.0f + erff (x * 0.70710678118654752f));
}

static float
quick_gelu1 (float x)
{
  // x / (1 + e^(-1.702 x)): for very negative x the exponential overflows to
  // inf and the result is a clean -0, never NaN
  return x / (1.0f + expf (-1.702f * x));
}

void
agc_bias_act_forward (float *x, const float *bias, int n_rows, int width, AgcActivation act)
{
  gboolean simd = have_avx2 ();
  for (int r = 0; r < n_rows; r++)
    {
      float *xr = x + (size_t) r * width;
      if (simd && act == AGC_ACT_RELU)
        agc_avx2_relu (xr, bias, width);
      else if (act == AGC_ACT_RELU)
        for (int i = 0; i < width; i++)
          {
            float v = bias != NULL ? xr[i] + bias[i] : xr[i];
            xr[i] = v > 0.0f ? v : 0.0f;
          }
      else if (simd && act == AGC_ACT_GELU)
        agc_avx2_gelu (xr, bias, width);
      else if (simd)
        agc_avx2_quick_gelu (xr, bias, width);
      else
        for (int i = 0; i < width; i++)
          {
            float v = bias != NULL ? xr[i] + bias[i] : xr[i];
            xr[i] = act == AGC_ACT_GELU ? gelu1 (v) : quick_gelu1 (v);
          }
    }
}

void
agc_softmax_rows (float *x, int n_rows, int n_cols)
{
  gboolean simd = have_avx2 ();
  for (int r = 0; r < n_rows; r++)
    {
      float *row = x + (size_t) r * n_cols;
      if (simd)
        {
          agc_avx2_softmax_row (row, n_cols);
          continue;
        }
      float max = -INFINITY;
      for (int i = 0; i < n_cols; i++)
        max = row[i] > max ? row[i] : max;
      float sum = 0.0f;
      for (int i = 0; i < n_cols; i++)
        {
          row[i] = expf (row[i] - max); // shifted: the largest term is exactly 1
          sum += row[i];
        }
      float inv_sum = 1.0f / sum;
      for (int i = 0; i < n_cols; i++)
        row[i] *= inv_sum;
    }
}

void
agc_l2_normalize (float *x, int n)
{
  double sum_sq = 0.0;
  for (int i = 0; i < n; i++)
    sum_sq += (double) x[i] * x[i];
  if (sum_sq == 0.0)
    return;
  float inv_norm = (float) (1.0 / sqrt (sum_sq));
  for (int i = 0; i < n; i++)
    x[i] *= inv_norm;
}

// the portable path: tensor.c's exact conversion, through a view
static void
half_to_f32_scalar (float *out, const uint16_t *in, size_t n, AgcDType dtype)
{
  AgcTensorView view = { .name = "", .dtype = dtype, .n_dims = 1, .shape = { (int64_t) n },
                         .data = (const guint8 *) in, .n_bytes = n * 2, .file = "" };
  agc_tensor_to_f32 (&view, out);
}

void
agc_f16_to_f32 (float *out, const uint16_t *in, size_t n)
{
  if (have_avx2 () && G_BYTE_ORDER == G_LITTLE_ENDIAN)
    agc_avx2_f16_to_f32 (out, in, n);
  else
    half_to_f32_scalar (out, in, n, AGC_DTYPE_F16);
}

void
agc_bf16_to_f32 (float *out, const uint16_t *in, size_t n)
{
  if (have_avx2 () && G_BYTE_ORDER == G_LITTLE_ENDIAN)
    agc_avx2_bf16_to_f32 (out, in, n);
  else
    half_to_f32_scalar (out, in, n, AGC_DTYPE_BF16);
}

void
agc_patch_rows (float *patches, const float *pixels, int image_size, int patch_size,
                size_t row_begin, size_t row_end)
{
  int s = image_size, p = patch_size, grid = s / p, n_tok = grid * grid + 1;
  size_t row_len = (size_t) 3 * p * p;
  for (size_t r = row_begin; r < row_end; r++)
    {
      float *row = patches + r * row_len;
      int b = (int) (r / n_tok), tok = (int) (r % n_tok);
      if (tok == 0)
        {
          memset (row, 0, row_len * sizeof (float));
          continue;
        }
      int gy = (tok - 1) / grid, gx = (tok - 1) % grid;
      for (int c = 0; c < 3; c++)
        for (int y = 0; y < p; y++)
          memcpy (row + ((size_t) c * p + y) * p,
                  pixels + (((size_t) b * 3 + c) * s + gy * p + y) * s + gx * p,
                  (size_t) p * sizeof (float));
    }
}
