/* test-ops.c — every op of ops.c, and one transformer forward pass, against
 * plain double-precision loops written here; GELU against known values of
 * the normal distribution; softmax on inputs that overflow a naive exp. */
#include "kernels/ops.h"
#include "nn/transformer.h"
#include "unit-util.h"

#include <math.h>
#include <string.h>

static GRand *rng;

/* ---- plain references ---- */

static void
ref_layernorm (double *out, const double *x, const float *w, const float *b, size_t rows,
               int width, double eps)
{
  for (size_t r = 0; r < rows; r++)
    {
      const double *xr = x + r * width;
      double mean = 0.0, var = 0.0;
      for (int i = 0; i < width; i++)
        mean += xr[i];
      mean /= width;
      for (int i = 0; i < width; i++)
        var += (xr[i] - mean) * (xr[i] - mean);
      var /= width;
      for (int i = 0; i < width; i++)
        out[r * width + i] = (xr[i] - mean) / sqrt (var + eps) * w[i] + b[i];
    }
}

static double *
to_double (const float *x, size_t n)
{
  double *y = g_new (double, n);
  for (size_t i = 0; i < n; i++)
    y[i] = x[i];
  return y;
}

static void
ref_linear (double *out, const double *x, const float *w, const float *b, int rows, int n_in,
            int n_out)
{
  for (int r = 0; r < rows; r++)
    for (int o = 0; o < n_out; o++)
      {
        double acc = b ? b[o] : 0.0;
        for (int i = 0; i < n_in; i++)
          acc += x[(size_t) r * n_in + i] * w[(size_t) o * n_in + i];
        out[(size_t) r * n_out + o] = acc;
      }
}

static double
ref_gelu (double x)
{
  return 0.5 * x * (1.0 + erf (x / sqrt (2.0)));
}

static double
ref_quick_gelu (double x)
{
  return x / (1.0 + exp (-1.702 * x));
}

/* ---- ops ---- */

static void
test_layernorm (void)
{
  int rows = 7, width = 129;
  // a large mean and small spread: catches one-pass variance
  float *x = random_floats (rng, (size_t) rows * width, 0.5, 30.0);
  float *w = random_floats (rng, width, 0.5, 1.0);
  float *b = random_floats (rng, width, 0.3, 0.0);
  float *out = g_new (float, (size_t) rows * width);
  double *want = g_new (double, (size_t) rows * width);
  double *xd = to_double (x, (size_t) rows * width);

  ref_layernorm (want, xd, w, b, rows, width, 1e-5);
  agc_layernorm_forward (out, x, w, b, rows, width, 1e-5f);
  g_assert_cmpfloat (normalized_error (out, want, (size_t) rows * width), <, 1e-5);

  agc_layernorm_forward (x, x, w, b, rows, width, 1e-5f); // in place, as documented
  g_assert_cmpmem (x, rows * width * sizeof (float), out, rows * width * sizeof (float));

  // eps matters when a row is constant: the output is then exactly the bias
  for (int i = 0; i < width; i++)
    x[i] = 3.0f;
  agc_layernorm_forward (out, x, w, b, 1, width, 1e-5f);
  for (int i = 0; i < width; i++)
    g_assert_cmpfloat_with_epsilon (out[i], b[i], 1e-6);

  g_free (x), g_free (w), g_free (b), g_free (out), g_free (want), g_free (xd);
}

static void
test_linear (void)
{
  int rows = 13, n_in = 70, n_out = 37; // odd sizes: no lucky tiling
  float *x = random_floats (rng, (size_t) rows * n_in, 1.0, 0.0);
  float *w = random_floats (rng, (size_t) n_out * n_in, 0.2, 0.0);
  float *b = random_floats (rng, n_out, 1.0, 0.0);
  double *xd = to_double (x, (size_t) rows * n_in);
  float *out = g_new (float, (size_t) rows * n_out);
  double *want = g_new (double, (size_t) rows * n_out);

  ref_linear (want, xd, w, b, rows, n_in, n_out);
  for (int i = 0; i < rows * n_out; i++)
    out[i] = NAN; // must be overwritten, not accumulated into
  agc_linear_forward (out, x, w, b, rows, n_in, n_out);
  g_assert_cmpfloat (normalized_error (out, want, (size_t) rows * n_out), <, 1e-5);

  ref_linear (want, xd, w, NULL, rows, n_in, n_out);
  for (int i = 0; i < rows * n_out; i++)
    out[i] = NAN;
  agc_linear_forward (out, x, w, NULL, rows, n_in, n_out);
  g_assert_cmpfloat (normalized_error (out, want, (size_t) rows * n_out), <, 1e-5);

  g_free (x), g_free (w), g_free (b), g_free (xd), g_free (out), g_free (want);
}

static void
test_gelu_known_values (void)
{
  // gelu(x) = x * Phi(x); Phi(1), Phi(2), Phi(-1) and erf(1) from tables
  float x[] = { 0.0f, 1.0f, -1.0f, 2.0f, 1.4142135623730951f, -8.0f, 8.0f };
  double want[] = { 0.0,
                    0.8413447460685429,
                    -0.15865525393145707,
                    2.0 * 0.9772498680518208,
                    1.4142135623730951 * 0.5 * (1.0 + 0.8427007929497149),
                    -8.0 * 6.22096057427178e-16,
                    8.0 };
  agc_bias_act_forward (x, NULL, 1, (int) G_N_ELEMENTS (x), AGC_ACT_GELU);
  for (size_t i = 0; i < G_N_ELEMENTS (x); i++)
    g_assert_cmpfloat_with_epsilon (x[i], want[i], 2e-7 * fmax (1.0, fabs (want[i])));
}

static void
test_activations (void)
{
  size_t n = 1001;
  float *x = g_new (float, n);
  float *y = g_new (float, n);
  double *want = g_new (double, n);
  for (size_t i = 0; i < n; i++)
    x[i] = -10.0f + 20.0f * i / (n - 1);

  // gelu(x) - gelu(-x) = x, because erf is odd
  memcpy (y, x, n * sizeof (float));
  agc_bias_act_forward (y, NULL, 1, (int) n, AGC_ACT_GELU);
  for (size_t i = 0; i < n; i++)
    {
      want[i] = ref_gelu (x[i]);
      g_assert_cmpfloat_with_epsilon (y[i] - y[n - 1 - i], x[i], 1e-5);
    }
  g_assert_cmpfloat (normalized_error (y, want, n), <, 1e-6);

  memcpy (y, x, n * sizeof (float));
  agc_bias_act_forward (y, NULL, 1, (int) n, AGC_ACT_QUICK_GELU);
  for (size_t i = 0; i < n; i++)
    want[i] = ref_quick_gelu (x[i]);
  g_assert_cmpfloat (normalized_error (y, want, n), <, 1e-6);

  // far tails: identity and zero, never NaN (exp overflows there)
  float tails[] = { -200.0f, 200.0f };
  agc_bias_act_forward (tails, NULL, 1, 2, AGC_ACT_QUICK_GELU);
  g_assert_cmpfloat (tails[0], ==, 0.0f);
  g_assert_cmpfloat (tails[1], ==, 200.0f);
  float gtails[] = { -200.0f, 200.0f };
  agc_bias_act_forward (gtails, NULL, 1, 2, AGC_ACT_GELU);
  g_assert_cmpfloat (gtails[0], ==, 0.0f);
  g_assert_cmpfloat (gtails[1], ==, 200.0f);

  g_free (x), g_free (y), g_free (want);
}

static void
test_softmax (void)
{
  int rows = 3, cols = 5;
  // row 0 ordinary; rows 1 and 2 overflow or underflow expf without the max
  // shift, and are the same logits 2000 apart
  float x[] = { 0.1f, -1.0f, 2.0f, 0.0f, 0.5f,
                1000.0f, 1001.0f, 999.0f, 1000.5f, 990.0f,
                -1000.0f, -999.0f, -1001.0f, -999.5f, -1010.0f };
  double want[15];
  for (int r = 0; r < rows; r++)
    {
      double max = -INFINITY, sum = 0.0;
      for (int i = 0; i < cols; i++)
        max = fmax (max, x[r * cols + i]);
      for (int i = 0; i < cols; i++)
        sum += exp (x[r * cols + i] - max);
      for (int i = 0; i < cols; i++)
        want[r * cols + i] = exp (x[r * cols + i] - max) / sum;
    }
  agc_softmax_rows (x, rows, cols);
  g_assert_cmpfloat (normalized_error (x, want, 15), <, 1e-6);
  for (int r = 0; r < rows; r++)
    {
      double sum = 0.0;
      for (int i = 0; i < cols; i++)
        sum += x[r * cols + i];
      g_assert_cmpfloat_with_epsilon (sum, 1.0, 1e-6);
    }
  for (int i = 0; i < cols; i++)
    g_assert_cmpfloat_with_epsilon (x[cols + i], x[2 * cols + i], 1e-7);
  g_assert_cmpfloat (x[cols + 1], >, 0.4); // not a uniform row: the shift kept the contrast

  // a -inf logit gets probability 0
  float y[] = { 1.0f, -INFINITY, 1.0f };
  agc_softmax_rows (y, 1, 3);
  g_assert_cmpfloat (y[1], ==, 0.0f);
  g_assert_cmpfloat_with_epsilon (y[0], 0.5, 1e-7);
}

static void
test_l2_normalize (void)
{
  float x[] = { 3.0f, -4.0f, 0.0f, 12.0f }; // norm 13
  agc_l2_normalize (x, 4);
  float want[] = { 3.0f / 13, -4.0f / 13, 0.0f, 12.0f / 13 };
  for (int i = 0; i < 4; i++)
    g_assert_cmpfloat_with_epsilon (x[i], want[i], 1e-7);

  // tiny values whose squares underflow float must still normalise
  float tiny[] = { 3e-30f, 4e-30f };
  agc_l2_normalize (tiny, 2);
  g_assert_cmpfloat_with_epsilon (tiny[0], 0.6, 1e-6);
  g_assert_cmpfloat_with_epsilon (tiny[1], 0.8, 1e-6);

  float zero[] = { 0.0f, 0.0f, 0.0f };
  agc_l2_normalize (zero, 3);
  for (int i = 0; i < 3; i++)
    g_assert_cmpfloat (zero[i], ==, 0.0f);
}

/* ---- a transformer against a loop-by-loop reference ---- */

// x[B, T, D] in place, double precision, one (batch, head, query, key) at a time
static void
ref_transformer (double *x, const AgcBlock *blocks, const AgcTowerConfig *c, int batch,
                 int n_tok, gboolean causal)
{
  int d = c->width, m = c->mlp_width, heads = c->heads, hd = d / heads;
  size_t rows = (size_t) batch * n_tok;
  double *h = g_new (double, rows * d);
  double *qkv = g_new (double, rows * 3 * d);
  double *att = g_new (double, rows * d);
  double *proj = g_new (double, rows * d);
  double *mlp = g_new (double, rows * m);
  double *p = g_new (double, n_tok);

  for (int l = 0; l < c->layers; l++)
    {
      const AgcBlock *blk = &blocks[l];
      ref_layernorm (h, x, blk->ln1_weight, blk->ln1_bias, rows, d, c->layer_norm_eps);
      ref_linear (qkv, h, blk->qkv_weight, blk->qkv_bias, (int) rows, d, 3 * d);
      for (int b = 0; b < batch; b++)
        for (int hh = 0; hh < heads; hh++)
          for (int t = 0; t < n_tok; t++)
            {
              const double *q = qkv + ((size_t) b * n_tok + t) * 3 * d + hh * hd;
              int n_keys = causal ? t + 1 : n_tok;
              double max = -INFINITY, sum = 0.0;
              for (int s = 0; s < n_keys; s++)
                {
                  const double *k = qkv + ((size_t) b * n_tok + s) * 3 * d + d + hh * hd;
                  double dot = 0.0;
                  for (int i = 0; i < hd; i++)
                    dot += q[i] * k[i];
                  p[s] = dot / sqrt (hd);
                  max = fmax (max, p[s]);
                }
              for (int s = 0; s < n_keys; s++)
                sum += (p[s] = exp (p[s] - max));
              for (int i = 0; i < hd; i++)
                {
                  double acc = 0.0;
                  for (int s = 0; s < n_keys; s++)
                    acc += p[s] / sum * qkv[((size_t) b * n_tok + s) * 3 * d + 2 * d + hh * hd + i];
                  att[((size_t) b * n_tok + t) * d + hh * hd + i] = acc;
                }
            }
      ref_linear (proj, att, blk->out_weight, blk->out_bias, (int) rows, d, d);
      for (size_t i = 0; i < rows * d; i++)
        x[i] += proj[i];
      ref_layernorm (h, x, blk->ln2_weight, blk->ln2_bias, rows, d, c->layer_norm_eps);
      ref_linear (mlp, h, blk->fc1_weight, blk->fc1_bias, (int) rows, d, m);
      for (size_t i = 0; i < rows * m; i++)
        mlp[i] = c->act == AGC_ACT_GELU ? ref_gelu (mlp[i]) : ref_quick_gelu (mlp[i]);
      ref_linear (proj, mlp, blk->fc2_weight, blk->fc2_bias, (int) rows, m, d);
      for (size_t i = 0; i < rows * d; i++)
        x[i] += proj[i];
    }
  g_free (h), g_free (qkv), g_free (att), g_free (proj), g_free (mlp), g_free (p);
}

static void
check_transformer (AgcActivation act, gboolean causal)
{
  AgcTowerConfig c = { .width = 48, .layers = 2, .heads = 3, .mlp_width = 80,
                       .layer_norm_eps = 1e-5f, .act = act };
  AgcBlock *blocks = random_blocks (rng, &c);
  AgcTransformer tr;
  agc_transformer_view (&tr, blocks, &c);
  int d = c.width;
  int batch = 3, n_tok = 7;
  size_t n = (size_t) batch * n_tok * d;
  float *x = random_floats (rng, n, 1.0, 0.0);
  double *want = g_new (double, n);
  for (size_t i = 0; i < n; i++)
    want[i] = x[i];

  ref_transformer (want, blocks, &c, batch, n_tok, causal);
  g_assert_true (agc_transformer_forward (&tr, x, batch, n_tok, causal, NULL));
  g_assert_cmpfloat (normalized_error (x, want, n), <, 1e-5);

  // causal: the first token of each item is what a 1-token sequence gives
  if (causal)
    {
      float *one = g_new (float, d);
      for (int b = 0; b < batch; b++)
        {
          float *first = random_floats (rng, d, 1.0, 0.0);
          memcpy (one, first, d * sizeof (float));
          float *seq = random_floats (rng, (size_t) n_tok * d, 1.0, 0.0);
          memcpy (seq, first, d * sizeof (float));
          g_assert_true (agc_transformer_forward (&tr, one, 1, 1, TRUE, NULL));
          g_assert_true (agc_transformer_forward (&tr, seq, 1, n_tok, TRUE, NULL));
          for (int i = 0; i < d; i++)
            g_assert_cmpfloat_with_epsilon (seq[i], one[i], 1e-5 * fmax (1.0, fabs (one[i])));
          g_free (first), g_free (seq);
        }
      g_free (one);
    }
  g_free (x), g_free (want);
  agc_transformer_clear (&tr);
  g_assert_null (tr.layers);
  free_random_blocks (blocks, c.layers);
}

static void
test_transformer_bidirectional_quick_gelu (void)
{
  check_transformer (AGC_ACT_QUICK_GELU, FALSE);
}

static void
test_transformer_causal_gelu (void)
{
  check_transformer (AGC_ACT_GELU, TRUE);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  rng = g_rand_new_with_seed (1234);
  g_test_add_func ("/ops/layernorm", test_layernorm);
  g_test_add_func ("/ops/linear", test_linear);
  g_test_add_func ("/ops/gelu-known-values", test_gelu_known_values);
  g_test_add_func ("/ops/activations", test_activations);
  g_test_add_func ("/ops/softmax", test_softmax);
  g_test_add_func ("/ops/l2-normalize", test_l2_normalize);
  g_test_add_func ("/transformer/bidirectional-quick-gelu",
                   test_transformer_bidirectional_quick_gelu);
  g_test_add_func ("/transformer/causal-gelu", test_transformer_causal_gelu);
  int status = g_test_run ();
  g_rand_free (rng);
  return status;
}
