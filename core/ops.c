/* ops.c — layer norm, linear, activations, softmax, L2 normalisation.
 * Plain loops the compiler can vectorise; the only heavy op, linear, is one
 * OpenBLAS sgemm. */
#include "ops.h"

#include <cblas.h>
#include <math.h>
#include <string.h>

void
agc_layernorm_forward (float *out, const float *x, const float *weight, const float *bias,
                       int n_rows, int width, float eps)
{
  for (int r = 0; r < n_rows; r++)
    {
      const float *xr = x + (size_t) r * width;
      float *outr = out + (size_t) r * width;
      // two passes in double: the residual stream can have |mean| >> std, where
      // float sums (or the one-pass E[x^2] - E[x]^2) lose the digits that matter
      double sum = 0.0;
      for (int i = 0; i < width; i++)
        sum += xr[i];
      double mean = sum / width;
      double sum_sq = 0.0;
      for (int i = 0; i < width; i++)
        {
          double d = xr[i] - mean;
          sum_sq += d * d;
        }
      float rstd = (float) (1.0 / sqrt (sum_sq / width + eps)); // biased variance, as PyTorch
      float meanf = (float) mean;
      for (int i = 0; i < width; i++)
        outr[i] = (xr[i] - meanf) * rstd * weight[i] + bias[i];
    }
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

void
agc_gelu_forward (float *x, size_t n)
{
  const float inv_sqrt2 = 0.70710678118654752f;
  for (size_t i = 0; i < n; i++)
    x[i] = 0.5f * x[i] * (1.0f + erff (x[i] * inv_sqrt2));
}

void
agc_quick_gelu_forward (float *x, size_t n)
{
  // x / (1 + e^(-1.702 x)): for very negative x the exponential overflows to
  // inf and the result is a clean -0, never NaN
  for (size_t i = 0; i < n; i++)
    x[i] = x[i] / (1.0f + expf (-1.702f * x[i]));
}

void
agc_softmax_rows (float *x, int n_rows, int n_cols)
{
  for (int r = 0; r < n_rows; r++)
    {
      float *row = x + (size_t) r * n_cols;
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
