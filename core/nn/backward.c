/* backward.c — training forwards and their backward passes, one layer per
 * pair (see backward.h).  Each backward comment quotes the forward line it
 * differentiates.  Row sums are accumulated in double: gradients are checked
 * against PyTorch to 1e-4 relative error. */
#include "nn/backward.h"

#include "kernels/gemm-train.h"
#include "kernels/ops.h"

#include <cblas.h>
#include <glib.h>
#include <math.h>
#include <string.h>

/* ---- layer norm --------------------------------------------------------- */

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

// sums[c] += Σ_r x[r, c], in double, row by row (the memory order)
static void
column_sums_add (float *sums, const float *x, int n_rows, int n_cols)
{
  double small[1024];
  double *acc = n_cols <= (int) G_N_ELEMENTS (small) ? small : g_new (double, n_cols);
  memset (acc, 0, (size_t) n_cols * sizeof (double));
  for (int r = 0; r < n_rows; r++)
    {
      const float *xr = x + (size_t) r * n_cols;
      for (int c = 0; c < n_cols; c++)
        acc[c] += xr[c];
    }
  for (int c = 0; c < n_cols; c++)
    sums[c] += (float) acc[c];
  if (acc != small)
    g_free (acc);
}

void
agc_linear_backward (float *dx, float *dweight, float *dbias, const float *dout, const float *x,
                     const float *weight, int n_rows, int n_in, int n_out)
{
  // out[n, o] = x[n, :] @ weight[o, :] + bias[o]
  if (dx != NULL) // dx[N, I] += dout[N, O] @ weight[O, I]
    agc_gemm_train (FALSE, FALSE, n_rows, n_in, n_out, dout, n_out, weight, n_in, 1.0f, dx, n_in);
  // dweight[O, I] += dout[N, O]^T @ x[N, I]
  agc_gemm_train (TRUE, FALSE, n_out, n_in, n_rows, dout, n_out, x, n_in, 1.0f, dweight, n_in);
  if (dbias != NULL)
    column_sums_add (dbias, dout, n_rows, n_out);
}

/* ---- activations -------------------------------------------------------- */

#define SQRT1_2 0.70710678118654752440      // 1 / sqrt(2)
#define INV_SQRT_2PI 0.39894228040143267794 // 1 / sqrt(2 pi)

/* e^x for |x| <= 87, within 2 ulp: Cody-Waite reduction x = n ln2 + r
 * and a degree-6 polynomial (Cephes' expf coefficients), with no call and
 * no branch, so that loops over it vectorise (the act backward spends most
 * of its time in exp).  Callers keep x in range (all_below). */
static inline float
exp_poly (float x)
{
  const float round = 12582912.0f; // 1.5 * 2^23: adding it rounds to an integer
  float n = (x * 1.44269504088896341f + round) - round;
  float r = x - n * 0.693359375f;
  r = r - n * -2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  float y = p * r * r + r + 1.0f;
  int32_t bits = ((int32_t) n + 127) << 23; // 2^n
  float scale;
  memcpy (&scale, &bits, sizeof scale);
  return y * scale;
}

// whether every |x[i]| < limit (NaN is not), on the bit patterns: an
// integer max that vectorises where a float compare would not
static gboolean
all_below (const float *x, size_t n, float limit)
{
  uint32_t top = 0, limit_bits;
  memcpy (&limit_bits, &limit, sizeof limit_bits);
  for (size_t i = 0; i < n; i++)
    {
      uint32_t b;
      memcpy (&b, &x[i], sizeof b);
      b &= 0x7fffffffu;
      top = b > top ? b : top;
    }
  return top < limit_bits;
}

void
agc_act_backward (float *dx, const float *dout, const float *x, size_t n, AgcActivation act)
{
  // in float: one derivative per element, no sum, so double buys nothing
  // but time (erff and expf are within a few ulp, exp_poly 2)
  if (act == AGC_ACT_RELU)
    for (size_t i = 0; i < n; i++)
      dx[i] += x[i] > 0.0f ? dout[i] : 0.0f;
  else if (act == AGC_ACT_GELU)
    // out = 0.5 x (1 + erf(x / sqrt 2)) = x Phi(x): Phi(x) + x phi(x)
    for (size_t i = 0; i < n; i++)
      {
        float v = x[i];
        float cdf = 0.5f * (1.0f + erff (v * (float) SQRT1_2));
        float pdf = expf (-0.5f * v * v) * (float) INV_SQRT_2PI;
        dx[i] += dout[i] * (cdf + v * pdf);
      }
  else if (all_below (x, n, 50.0f)) // |1.702 x| < 86: exp_poly's range
    // out = x * sigmoid(1.702 x): s + 1.702 x s (1 - s)
    for (size_t i = 0; i < n; i++)
      {
        float v = x[i], s = 1.0f / (1.0f + exp_poly (-1.702f * v));
        dx[i] += dout[i] * (s + 1.702f * v * s * (1.0f - s));
      }
  else
    for (size_t i = 0; i < n; i++)
      {
        float v = x[i], s = 1.0f / (1.0f + expf (-1.702f * v));
        dx[i] += dout[i] * (s + 1.702f * v * s * (1.0f - s));
      }
}

/* ---- attention ---------------------------------------------------------- */

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
agc_cross_entropy_backward (float *logits, const int *labels, const float *class_weights, int n,
                            int n_classes)
{
  int c = n_classes;
  double total_weight = 0.0, loss = 0.0;
  for (int i = 0; i < n; i++)
    total_weight += class_weights != NULL ? class_weights[labels[i]] : 1.0;
  for (int i = 0; i < n; i++)
    {
      float *z = logits + (size_t) i * c;
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
  return loss;
}

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
  double loss = agc_cross_entropy_backward (dlogits, labels, class_weights, n, c);
  // logits = logit_scale * image @ text^T
  cblas_sgemm (CblasRowMajor, CblasNoTrans, CblasNoTrans, n, dim, c, logit_scale, dlogits, c, text,
               dim, 1.0f, dimage, dim);
  if (dtext != NULL)
    cblas_sgemm (CblasRowMajor, CblasTrans, CblasNoTrans, c, dim, n, logit_scale, dlogits, c,
                 image, dim, 1.0f, dtext, dim);
  g_free (dlogits);
  return loss;
}

/* ---- CLIP's symmetric contrastive loss ------------------------------------- */

double
agc_clip_loss_backward (float *dimage, float *dtext, float *dlog_scale, const float *image,
                        const float *text, float log_scale, int n, int dim)
{
  if (n == 0)
    return 0.0;
  float scale = expf (log_scale);
  float *logits = g_new (float, 2 * (size_t) n * n); // [n, n], then dlogits [n, n]
  float *dlogits = logits + (size_t) n * n;
  // logits = scale * image @ text^T
  cblas_sgemm (CblasRowMajor, CblasNoTrans, CblasTrans, n, n, dim, scale, image, dim, text, dim,
               0.0f, logits, n);
  double loss = 0.0;
  // rows (image -> text) then columns (text -> image); each direction's
  // loss_i = (logsumexp(z_i) - z_ii) / (2n):  dz = (softmax(z_i) - onehot(i)) / (2n)
  for (int dir = 0; dir < 2; dir++)
    for (int i = 0; i < n; i++)
      {
        // z_i: row i of logits, or column i read with stride n
        size_t at = dir == 0 ? (size_t) i * n : (size_t) i;
        size_t step = dir == 0 ? 1 : (size_t) n;
        double max = logits[at], sum = 0.0;
        for (int j = 1; j < n; j++)
          max = MAX (max, logits[at + j * step]);
        for (int j = 0; j < n; j++)
          sum += exp (logits[at + j * step] - max);
        double lse = max + log (sum);
        loss += (lse - logits[at + i * step]) / (2.0 * n);
        for (int j = 0; j < n; j++)
          {
            double dz = (exp (logits[at + j * step] - lse) - (j == i)) / (2.0 * n);
            if (dir == 0)
              dlogits[at + j * step] = (float) dz;
            else
              dlogits[at + j * step] += (float) dz;
          }
      }
  // logits = exp(log_scale) * image @ text^T:  dlog_scale = Σ dlogits ⊙ logits
  if (dlog_scale != NULL)
    {
      double sum = 0.0;
      for (size_t i = 0; i < (size_t) n * n; i++)
        sum += (double) dlogits[i] * logits[i];
      *dlog_scale += (float) sum;
    }
  // dimage += scale dlogits @ text,  dtext += scale dlogits^T @ image
  if (dimage != NULL)
    cblas_sgemm (CblasRowMajor, CblasNoTrans, CblasNoTrans, n, dim, n, scale, dlogits, n, text,
                 dim, 1.0f, dimage, dim);
  if (dtext != NULL)
    cblas_sgemm (CblasRowMajor, CblasTrans, CblasNoTrans, n, dim, n, scale, dlogits, n, image, dim,
                 1.0f, dtext, dim);
  g_free (logits);
  return loss;
}

/* ---- embedding lookup and row pooling ---------------------------------------- */

void
agc_embedding_forward (float *out, const int32_t *ids, const float *table, int n, int width)
{
  for (int i = 0; i < n; i++)
    memcpy (out + (size_t) i * width, table + (size_t) ids[i] * width, width * sizeof (float));
}

void
agc_embedding_backward (float *dtable, const float *dout, const int32_t *ids, int n, int width)
{
  // out[i] = table[ids[i]]
  for (int i = 0; i < n; i++)
    {
      float *row = dtable + (size_t) ids[i] * width;
      const float *d = dout + (size_t) i * width;
      for (int j = 0; j < width; j++)
        row[j] += d[j];
    }
}

void
agc_rows_gather (float *out, const float *x, const int *rows, int n_seqs, int width)
{
  for (int s = 0; s < n_seqs; s++)
    memcpy (out + (size_t) s * width, x + (size_t) rows[s] * width, width * sizeof (float));
}

void
agc_rows_gather_backward (float *dx, const float *dout, const int *rows, int n_seqs, int width)
{
  // out[s] = x[rows[s]]
  agc_embedding_backward (dx, dout, rows, n_seqs, width);
}

/* ---- ViT patch embedding ---------------------------------------------------- */

void
agc_patch_embed_forward_train (float *out, float *patches, const float *pixels,
                               const float *weight, int batch, int image_size, int patch_size,
                               int width)
{
  int s = image_size, p = patch_size, grid = s / p, n_tok = grid * grid + 1;
  size_t row_len = (size_t) 3 * p * p, rows = (size_t) batch * n_tok;
  agc_patch_rows (patches, pixels, s, p, 0, rows);
  // out[B*T, D] = patches @ weight[D, 3pp]^T; the zero rows give 0
  agc_linear_forward (out, patches, weight, NULL, (int) rows, (int) row_len, width);
}

void
agc_patch_embed_backward (float *dweight, const float *dout, const float *patches, int batch,
                          int image_size, int patch_size, int width)
{
  int grid = image_size / patch_size, n_tok = grid * grid + 1;
  int row_len = 3 * patch_size * patch_size;
  // out = patches @ weight^T (class rows of patches are 0: they add nothing)
  agc_linear_backward (NULL, dweight, NULL, dout, patches, NULL, batch * n_tok, row_len, width);
}
