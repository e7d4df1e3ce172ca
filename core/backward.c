/* backward.c — training forwards and their backward passes, one layer per
 * pair (see backward.h).  Each backward comment quotes the forward line it
 * differentiates.  Row sums are accumulated in double: gradients are checked
 * against PyTorch to 1e-4 relative error. */
#include "backward.h"

#include "ops.h"

#include <cblas.h>
#include <glib.h>
#include <math.h>
#include <string.h>

/* ---- layer norm --------------------------------------------------------- */

void
agc_layernorm_forward_train (float *out, float *mean, float *rstd, const float *x,
                             const float *weight, const float *bias, int n_rows, int width,
                             float eps)
{
  for (int r = 0; r < n_rows; r++)
    {
      const float *xr = x + (size_t) r * width;
      float *o = out + (size_t) r * width;
      double sum = 0.0, sum_sq = 0.0;
      for (int i = 0; i < width; i++)
        sum += xr[i];
      double m = sum / width;
      for (int i = 0; i < width; i++)
        sum_sq += (xr[i] - m) * (xr[i] - m);
      float s = (float) (1.0 / sqrt (sum_sq / width + eps));
      for (int i = 0; i < width; i++)
        o[i] = ((xr[i] - (float) m) * s) * weight[i] + bias[i];
      mean[r] = (float) m;
      rstd[r] = s;
    }
}

void
agc_layernorm_backward (float *dx, float *dweight, float *dbias, const float *dout,
                        const float *x, const float *weight, const float *mean,
                        const float *rstd, int n_rows, int width)
{
  for (int r = 0; r < n_rows; r++)
    {
      const float *xr = x + (size_t) r * width, *dr = dout + (size_t) r * width;
      float *dxr = dx + (size_t) r * width;
      float m = mean[r], s = rstd[r];
      // the two reductions of the normalisation's Jacobian
      double dnorm_mean = 0.0, dnorm_norm_mean = 0.0;
      for (int i = 0; i < width; i++)
        {
          double norm = (xr[i] - m) * s, dnorm = (double) weight[i] * dr[i];
          dnorm_mean += dnorm;
          dnorm_norm_mean += dnorm * norm;
        }
      dnorm_mean /= width;
      dnorm_norm_mean /= width;
      for (int i = 0; i < width; i++)
        {
          float norm = (xr[i] - m) * s;
          // out = norm * weight + bias
          dbias[i] += dr[i];
          dweight[i] += norm * dr[i];
          // norm = (x - mean) * rstd, with mean and rstd functions of x
          double dnorm = (double) weight[i] * dr[i];
          dxr[i] += (float) ((dnorm - dnorm_mean - norm * dnorm_norm_mean) * s);
        }
    }
}

/* ---- linear ------------------------------------------------------------- */

void
agc_linear_backward (float *dx, float *dweight, float *dbias, const float *dout, const float *x,
                     const float *weight, int n_rows, int n_in, int n_out)
{
  // out[n, o] = x[n, :] @ weight[o, :] + bias[o]
  if (dx != NULL) // dx[N, I] += dout[N, O] @ weight[O, I]
    cblas_sgemm (CblasRowMajor, CblasNoTrans, CblasNoTrans, n_rows, n_in, n_out, 1.0f, dout,
                 n_out, weight, n_in, 1.0f, dx, n_in);
  // dweight[O, I] += dout[N, O]^T @ x[N, I]
  cblas_sgemm (CblasRowMajor, CblasTrans, CblasNoTrans, n_out, n_in, n_rows, 1.0f, dout, n_out, x,
               n_in, 1.0f, dweight, n_in);
  if (dbias != NULL)
    for (int o = 0; o < n_out; o++)
      {
        double sum = 0.0;
        for (int r = 0; r < n_rows; r++)
          sum += dout[(size_t) r * n_out + o];
        dbias[o] += (float) sum;
      }
}

/* ---- activations -------------------------------------------------------- */

#define SQRT1_2 0.70710678118654752440      // 1 / sqrt(2)
#define INV_SQRT_2PI 0.39894228040143267794 // 1 / sqrt(2 pi)

void
agc_act_forward_train (float *out, const float *x, size_t n, AgcActivation act)
{
  memcpy (out, x, n * sizeof (float));
  if (act == AGC_ACT_GELU)
    agc_gelu_forward (out, n);
  else
    agc_quick_gelu_forward (out, n);
}

void
agc_act_backward (float *dx, const float *dout, const float *x, size_t n, AgcActivation act)
{
  if (act == AGC_ACT_GELU)
    // out = 0.5 x (1 + erf(x / sqrt 2)) = x Phi(x): Phi(x) + x phi(x)
    for (size_t i = 0; i < n; i++)
      {
        double v = x[i];
        double cdf = 0.5 * (1.0 + erf (v * SQRT1_2));
        double pdf = exp (-0.5 * v * v) * INV_SQRT_2PI;
        dx[i] += (float) (dout[i] * (cdf + v * pdf));
      }
  else
    // out = x * sigmoid(1.702 x): s + 1.702 x s (1 - s)
    for (size_t i = 0; i < n; i++)
      {
        double v = x[i], s = 1.0 / (1.0 + exp (-1.702 * v));
        dx[i] += (float) (dout[i] * (s + 1.702 * v * s * (1.0 - s)));
      }
}

/* ---- attention ---------------------------------------------------------- */

void
agc_attention_forward_train (float *out, float *att, const float *qkv, int batch, int n_tokens,
                             int width, int heads, int causal)
{
  int d = width, hd = d / heads, ld = 3 * d, n = n_tokens;
  float scale = 1.0f / sqrtf ((float) hd);
  for (int b = 0; b < batch; b++)
    for (int h = 0; h < heads; h++)
      {
        const float *q = qkv + (size_t) b * n * ld + h * hd; // [n, hd], stride 3D
        const float *k = q + d, *v = q + 2 * d;
        float *p = att + ((size_t) b * heads + h) * n * n;   // [n, n]
        float *o = out + (size_t) b * n * d + h * hd;        // [n, hd], stride D
        // scores = scale * q @ k^T
        cblas_sgemm (CblasRowMajor, CblasNoTrans, CblasTrans, n, n, hd, scale, q, ld, k, ld, 0.0f,
                     p, n);
        if (causal)
          for (int t = 0; t < n; t++)
            {
              float *row = p + (size_t) t * n;
              agc_softmax_rows (row, 1, t + 1);
              memset (row + t + 1, 0, (size_t) (n - t - 1) * sizeof (float));
            }
        else
          agc_softmax_rows (p, n, n);
        // o = p @ v
        cblas_sgemm (CblasRowMajor, CblasNoTrans, CblasNoTrans, n, hd, n, 1.0f, p, n, v, ld, 0.0f,
                     o, d);
      }
}

void
agc_attention_backward (float *dqkv, const float *dout, const float *qkv, const float *att,
                        int batch, int n_tokens, int width, int heads)
{
  int d = width, hd = d / heads, ld = 3 * d, n = n_tokens;
  float scale = 1.0f / sqrtf ((float) hd);
  float *dp = g_new (float, (size_t) n * n);
  for (int b = 0; b < batch; b++)
    for (int h = 0; h < heads; h++)
      {
        size_t at = (size_t) b * n * ld + h * hd;
        const float *q = qkv + at, *k = q + d, *v = q + 2 * d;
        float *dq = dqkv + at, *dk = dq + d, *dv = dq + 2 * d;
        const float *p = att + ((size_t) b * heads + h) * n * n;
        const float *dox = dout + (size_t) b * n * d + h * hd;
        // o = p @ v:  dp = do @ v^T,  dv += p^T @ do
        cblas_sgemm (CblasRowMajor, CblasNoTrans, CblasTrans, n, n, hd, 1.0f, dox, d, v, ld, 0.0f,
                     dp, n);
        cblas_sgemm (CblasRowMajor, CblasTrans, CblasNoTrans, n, hd, n, 1.0f, p, n, dox, d, 1.0f,
                     dv, ld);
        // p = softmax(scores):  ds = p * (dp - Σ_j p_j dp_j); masked p are 0, so ds too
        for (int t = 0; t < n; t++)
          {
            const float *pr = p + (size_t) t * n;
            float *dr = dp + (size_t) t * n;
            double dot = 0.0;
            for (int j = 0; j < n; j++)
              dot += (double) pr[j] * dr[j];
            for (int j = 0; j < n; j++)
              dr[j] = pr[j] * (float) (dr[j] - dot);
          }
        // scores = scale * q @ k^T:  dq += scale ds @ k,  dk += scale ds^T @ q
        cblas_sgemm (CblasRowMajor, CblasNoTrans, CblasNoTrans, n, hd, n, scale, dp, n, k, ld,
                     1.0f, dq, ld);
        cblas_sgemm (CblasRowMajor, CblasTrans, CblasNoTrans, n, hd, n, scale, dp, n, q, ld, 1.0f,
                     dk, ld);
      }
  g_free (dp);
}

/* ---- L2 normalisation ---------------------------------------------------- */

void
agc_l2_normalize_forward_train (float *out, const float *x, int n_rows, int width)
{
  memcpy (out, x, (size_t) n_rows * width * sizeof (float));
  for (int r = 0; r < n_rows; r++)
    agc_l2_normalize (out + (size_t) r * width, width);
}

void
agc_l2_normalize_backward (float *dx, const float *dout, const float *x, int n_rows, int width)
{
  for (int r = 0; r < n_rows; r++)
    {
      const float *xr = x + (size_t) r * width, *dr = dout + (size_t) r * width;
      float *dxr = dx + (size_t) r * width;
      double sum_sq = 0.0, dot = 0.0;
      for (int i = 0; i < width; i++)
        {
          sum_sq += (double) xr[i] * xr[i];
          dot += (double) xr[i] * dr[i];
        }
      if (sum_sq == 0.0) // the forward leaves zero alone: no gradient defined, none given
        continue;
      // out = x / ||x||:  dx = (dout - out (out . dout)) / ||x||
      double inv = 1.0 / sqrt (sum_sq);
      for (int i = 0; i < width; i++)
        dxr[i] += (float) ((dr[i] - xr[i] * dot * inv * inv) * inv);
    }
}

/* ---- contrastive loss ------------------------------------------------------ */

double
agc_contrastive_loss_backward (float *dimage, float *dtext, const float *image, const float *text,
                               const int *labels, const float *class_weights, float logit_scale,
                               int n, int dim, int n_classes)
{
  if (n == 0)
    return 0.0;
  int c = n_classes;
  float *dlogits = g_new (float, (size_t) n * c); // logits, then their gradient
  // logits[n, C] = logit_scale * image @ text^T
  cblas_sgemm (CblasRowMajor, CblasNoTrans, CblasTrans, n, c, dim, logit_scale, image, dim, text,
               dim, 0.0f, dlogits, c);
  double total_weight = 0.0, loss = 0.0;
  for (int i = 0; i < n; i++)
    total_weight += class_weights != NULL ? class_weights[labels[i]] : 1.0;
  for (int i = 0; i < n; i++)
    {
      float *z = dlogits + (size_t) i * c;
      double max = z[0], sum = 0.0;
      for (int j = 1; j < c; j++)
        max = MAX (max, z[j]);
      for (int j = 0; j < c; j++)
        sum += exp (z[j] - max);
      double w = (class_weights != NULL ? class_weights[labels[i]] : 1.0) / total_weight;
      // loss_i = w (logsumexp(z) - z[y]):  dz = w (softmax(z) - onehot(y))
      loss += w * (max + log (sum) - z[labels[i]]);
      for (int j = 0; j < c; j++)
        z[j] = (float) (w * (exp (z[j] - max) / sum - (j == labels[i])));
    }
  // logits = logit_scale * image @ text^T
  cblas_sgemm (CblasRowMajor, CblasNoTrans, CblasNoTrans, n, dim, c, logit_scale, dlogits, c, text,
               dim, 1.0f, dimage, dim);
  if (dtext != NULL)
    cblas_sgemm (CblasRowMajor, CblasTrans, CblasNoTrans, c, dim, n, logit_scale, dlogits, c,
                 image, dim, 1.0f, dtext, dim);
  g_free (dlogits);
  return loss;
}
