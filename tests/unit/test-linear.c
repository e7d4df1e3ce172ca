/* test-linear.c — the linear-layer backend (kernels/linear.h) and the
 * engine options it runs under: every storage (float32 whole or in parts,
 * half precision) on every path (own kernels, OpenBLAS, int8) against a
 * float64 product; and transformers with different options side by side in
 * one process, each close to a float64 forward and none changing what
 * another computes. */
#include "kernels/gemm-int8.h"
#include "kernels/gemm-packed.h"
#include "kernels/linear.h"
#include "kernels/ops.h"
#include "nn/transformer.h"
#include "unit-util.h"

#include <math.h>
#include <string.h>

static GRand *rng;

static double
ref_act (double x, AgcActivation act)
{
  return act == AGC_ACT_GELU ? 0.5 * x * (1.0 + erf (x / sqrt (2.0)))
                             : x / (1.0 + exp (-1.702 * x));
}

/* ---- one linear, every storage and path ---- */

enum
{
  N_OUT = 70, // three parts of 20, 25, 25 rows
  N_IN = 45,
  ROWS = 13,
};

typedef enum
{
  STORE_F32,
  STORE_F32_PARTS,
  STORE_BF16_PARTS,
} Storage;

// out = epilogue (x @ w^T) in double, w given by its float32 values
static void
ref_apply (double *out, const float *x, const float *w, const float *bias,
           const AgcLinearEpilogue *e)
{
  for (int r = 0; r < ROWS; r++)
    for (int n = 0; n < N_OUT; n++)
      {
        double acc = 0.0;
        for (int k = 0; k < N_IN; k++)
          acc += (double) x[r * N_IN + k] * w[n * N_IN + k];
        if (e->add_bias)
          acc += bias[n];
        if (e->apply_act)
          acc = ref_act (acc, e->act);
        out[r * N_OUT + n] = e->residual ? out[r * N_OUT + n] + acc : acc;
      }
}

static void
check_linear (Storage storage, const AgcEngineOptions *options, const AgcLinearEpilogue *e)
{
  float *w = random_floats (rng, (size_t) N_OUT * N_IN, 0.3, 0.0);
  float *bias = random_floats (rng, N_OUT, 0.5, 0.0);
  float *x = random_floats (rng, (size_t) ROWS * N_IN, 1.0, 0.0);
  float *out = random_floats (rng, (size_t) ROWS * N_OUT, 1.0, 0.0);
  guint16 *half = g_new (guint16, (size_t) N_OUT * N_IN);
  if (storage == STORE_BF16_PARTS) // w rounded to what bfloat16 keeps, the reference too
    for (size_t i = 0; i < (size_t) N_OUT * N_IN; i++)
      {
        guint32 bits;
        memcpy (&bits, &w[i], 4);
        half[i] = (guint16) (bits >> 16);
        bits = (guint32) half[i] << 16;
        memcpy (&w[i], &bits, 4);
      }
  double *want = g_new (double, (size_t) ROWS * N_OUT);
  for (size_t i = 0; i < (size_t) ROWS * N_OUT; i++)
    want[i] = out[i];
  ref_apply (want, x, w, bias, e);

  AgcLinear lin;
  int whole[1] = { N_OUT }, thirds[3] = { 20, 25, 25 };
  AgcParam parts[3];
  for (int i = 0, row = 0; i < 3; row += thirds[i], i++)
    parts[i] = storage == STORE_BF16_PARTS
                 ? (AgcParam){ AGC_DTYPE_BF16, half + row * N_IN, (size_t) thirds[i] * N_IN }
                 : (AgcParam){ AGC_DTYPE_F32, w + row * N_IN, (size_t) thirds[i] * N_IN };
  if (storage == STORE_F32)
    {
      AgcParam one = { AGC_DTYPE_F32, w, (size_t) N_OUT * N_IN };
      agc_linear_init (&lin, &one, whole, 1, N_IN, bias, NULL);
    }
  else
    agc_linear_init (&lin, parts, thirds, 3, N_IN, bias, NULL);
  size_t n_scratch = agc_linear_scratch_floats (&lin, options);
  g_assert_true ((n_scratch > 0) == (storage == STORE_BF16_PARTS && !options->int8));
  float *scratch = n_scratch > 0 ? g_aligned_alloc (n_scratch, sizeof (float), 64) : NULL;

  GError *error = NULL;
  g_assert_true (agc_linear_apply (&lin, options, out, x, ROWS, e, scratch, &error));
  g_assert_no_error (error);
  double tolerance = options->int8 ? 3e-2 : 1e-5;
  g_assert_cmpfloat (normalized_error (out, want, (size_t) ROWS * N_OUT), <, tolerance);
  // what was kept tells the path taken
  gboolean own = !options->use_openblas && agc_packed_gemm_available ();
  g_assert_true ((lin.int8 != NULL) == options->int8);
  g_assert_true ((lin.packed.panels != NULL) == (!options->int8 && own && storage != STORE_BF16_PARTS));
  agc_linear_clear (&lin);
  g_aligned_free (scratch);
  g_free (w), g_free (bias), g_free (x), g_free (out), g_free (half), g_free (want);
}

static void
test_storages (void)
{
  AgcEngineOptions own = agc_engine_default_options (), blas = own, int8 = own;
  blas.use_openblas = TRUE;
  int8.int8 = TRUE;
  const AgcEngineOptions *all[] = { &own, &blas, &int8 };
  const AgcLinearEpilogue epilogues[] = {
    { .add_bias = TRUE, .apply_act = TRUE, .act = AGC_ACT_GELU },
    { .add_bias = TRUE },
    { .residual = TRUE },
  };
  for (int s = STORE_F32; s <= STORE_BF16_PARTS; s++)
    for (size_t o = 0; o < G_N_ELEMENTS (all); o++)
      for (size_t e = 0; e < G_N_ELEMENTS (epilogues); e++)
        if (!all[o]->int8 || agc_int8_available ())
          check_linear ((Storage) s, all[o], &epilogues[e]);
}

/* ---- transformers with their own options ---- */

static void
ref_layernorm (double *out, const double *x, const float *w, const float *b, int rows, int d,
               double eps)
{
  for (int r = 0; r < rows; r++)
    {
      const double *xr = x + (size_t) r * d;
      double mean = 0.0, var = 0.0;
      for (int i = 0; i < d; i++)
        mean += xr[i] / d;
      for (int i = 0; i < d; i++)
        var += (xr[i] - mean) * (xr[i] - mean) / d;
      for (int i = 0; i < d; i++)
        out[(size_t) r * d + i] = (xr[i] - mean) / sqrt (var + eps) * w[i] + b[i];
    }
}

static void
ref_dense (double *out, const double *x, const float *w, const float *b, int rows, int n_in,
           int n_out)
{
  for (int r = 0; r < rows; r++)
    for (int n = 0; n < n_out; n++)
      {
        double acc = b[n];
        for (int k = 0; k < n_in; k++)
          acc += x[(size_t) r * n_in + k] * w[(size_t) n * n_in + k];
        out[(size_t) r * n_out + n] = acc;
      }
}

// x[batch, T, D] through the blocks, bidirectional, in double
static void
ref_forward (double *x, const AgcBlock *blocks, const AgcTowerConfig *c, int batch, int n_tok)
{
  int d = c->width, m = c->mlp_width, heads = c->heads, hd = d / heads, rows = batch * n_tok;
  double *h = g_new (double, (size_t) rows * d), *qkv = g_new (double, (size_t) rows * 3 * d);
  double *att = g_new (double, (size_t) rows * d), *proj = g_new (double, (size_t) rows * d);
  double *mlp = g_new (double, (size_t) rows * m), *p = g_new (double, n_tok);
  for (int l = 0; l < c->layers; l++)
    {
      const AgcBlock *blk = &blocks[l];
      ref_layernorm (h, x, blk->ln1_weight, blk->ln1_bias, rows, d, c->layer_norm_eps);
      ref_dense (qkv, h, blk->qkv_weight, blk->qkv_bias, rows, d, 3 * d);
      for (int b = 0; b < batch; b++)
        for (int hh = 0; hh < heads; hh++)
          for (int t = 0; t < n_tok; t++)
            {
              const double *q = qkv + ((size_t) b * n_tok + t) * 3 * d + hh * hd;
              double max = -INFINITY, sum = 0.0;
              for (int s = 0; s < n_tok; s++)
                {
                  const double *k = qkv + ((size_t) b * n_tok + s) * 3 * d + d + hh * hd;
                  double dot = 0.0;
                  for (int i = 0; i < hd; i++)
                    dot += q[i] * k[i];
                  max = fmax (max, p[s] = dot / sqrt (hd));
                }
              for (int s = 0; s < n_tok; s++)
                sum += (p[s] = exp (p[s] - max));
              for (int i = 0; i < hd; i++)
                {
                  double acc = 0.0;
                  for (int s = 0; s < n_tok; s++)
                    acc += p[s] / sum * qkv[((size_t) b * n_tok + s) * 3 * d + 2 * d + hh * hd + i];
                  att[((size_t) b * n_tok + t) * d + hh * hd + i] = acc;
                }
            }
      ref_dense (proj, att, blk->out_weight, blk->out_bias, rows, d, d);
      for (size_t i = 0; i < (size_t) rows * d; i++)
        x[i] += proj[i];
      ref_layernorm (h, x, blk->ln2_weight, blk->ln2_bias, rows, d, c->layer_norm_eps);
      ref_dense (mlp, h, blk->fc1_weight, blk->fc1_bias, rows, d, m);
      for (size_t i = 0; i < (size_t) rows * m; i++)
        mlp[i] = ref_act (mlp[i], c->act);
      ref_dense (proj, mlp, blk->fc2_weight, blk->fc2_bias, rows, m, d);
      for (size_t i = 0; i < (size_t) rows * d; i++)
        x[i] += proj[i];
    }
  g_free (h), g_free (qkv), g_free (att), g_free (proj), g_free (mlp), g_free (p);
}

// a "loaded" transformer whose linears read the float32 arrays of blocks
static AgcTransformer
transformer_over (const AgcBlock *blocks, const AgcTowerConfig *c, const AgcEngineOptions *o)
{
  int d = c->width, m = c->mlp_width, r3d[1] = { 3 * d }, rd[1] = { d }, rm[1] = { m };
  AgcTransformer t = { .config = *c, .layers = g_new0 (AgcLayer, c->layers) };
  for (int l = 0; l < c->layers; l++)
    {
      const AgcBlock *b = &blocks[l];
      AgcLayer *layer = &t.layers[l];
      AgcParam qkv = { AGC_DTYPE_F32, b->qkv_weight, (size_t) 3 * d * d };
      AgcParam out = { AGC_DTYPE_F32, b->out_weight, (size_t) d * d };
      AgcParam fc1 = { AGC_DTYPE_F32, b->fc1_weight, (size_t) m * d };
      AgcParam fc2 = { AGC_DTYPE_F32, b->fc2_weight, (size_t) d * m };
      *layer = (AgcLayer){ .ln1_weight = b->ln1_weight, .ln1_bias = b->ln1_bias,
                           .ln2_weight = b->ln2_weight, .ln2_bias = b->ln2_bias };
      agc_linear_init (&layer->qkv, &qkv, r3d, 1, d, b->qkv_bias, NULL);
      agc_linear_init (&layer->out, &out, rd, 1, d, b->out_bias, NULL);
      agc_linear_init (&layer->fc1, &fc1, rm, 1, d, b->fc1_bias, NULL);
      agc_linear_init (&layer->fc2, &fc2, rd, 1, m, b->fc2_bias, NULL);
    }
  GError *error = NULL;
  g_assert_true (agc_transformer_set_options (&t, o, &error));
  g_assert_no_error (error);
  return t;
}

static float *
run (const AgcTransformer *t, const float *x, size_t n, int batch, int n_tok)
{
  float *y = g_memdup2 (x, n * sizeof (float));
  GError *error = NULL;
  g_assert_true (agc_transformer_forward (t, y, batch, n_tok, FALSE, &error));
  g_assert_no_error (error);
  return y;
}

static void
test_side_by_side (void)
{
  AgcTowerConfig c = { .width = 48, .layers = 2, .heads = 4, .mlp_width = 96,
                       .layer_norm_eps = 1e-5f, .act = AGC_ACT_QUICK_GELU };
  AgcBlock *blocks = random_blocks (rng, &c);
  AgcTransformer hand;
  agc_transformer_view (&hand, blocks, &c);
  int batch = 2, n_tok = 9;
  size_t n = (size_t) batch * n_tok * c.width;
  float *x = random_floats (rng, n, 1.0, 0.0);
  double *want = g_new (double, n);
  for (size_t i = 0; i < n; i++)
    want[i] = x[i];
  ref_forward (want, blocks, &c, batch, n_tok);

  AgcEngineOptions own_o = agc_engine_default_options (), blas_o = own_o, int8_o = own_o;
  AgcEngineOptions floor_o = own_o;
  blas_o.use_openblas = TRUE;
  int8_o.int8 = agc_int8_available ();
  floor_o.products_only = TRUE;
  AgcTransformer own = transformer_over (blocks, &c, &own_o);
  AgcTransformer blas = transformer_over (blocks, &c, &blas_o);
  AgcTransformer int8 = transformer_over (blocks, &c, &int8_o);
  AgcTransformer floor = transformer_over (blocks, &c, &floor_o);

  // interleaved: each keeps to its own options
  float *y_own = run (&own, x, n, batch, n_tok);
  float *y_blas = run (&blas, x, n, batch, n_tok);
  float *y_int8 = run (&int8, x, n, batch, n_tok);
  float *y_floor = run (&floor, x, n, batch, n_tok);
  float *y_own2 = run (&own, x, n, batch, n_tok);
  float *y_blas2 = run (&blas, x, n, batch, n_tok);
  g_assert_cmpfloat (normalized_error (y_own, want, n), <, 1e-5);
  g_assert_cmpfloat (normalized_error (y_blas, want, n), <, 1e-5);
  g_assert_cmpfloat (normalized_error (y_int8, want, n), <, 5e-2);
  g_assert_cmpmem (y_own, n * sizeof (float), y_own2, n * sizeof (float));
  g_assert_cmpmem (y_blas, n * sizeof (float), y_blas2, n * sizeof (float));

  // the kept forms show which path each ran: panels for own kernels only,
  // int8 matrices for the int8 one only
  gboolean packed = agc_packed_gemm_available ();
  for (int l = 0; l < c.layers; l++)
    {
      g_assert_true ((own.layers[l].fc1.packed.panels != NULL) == packed);
      g_assert_null (blas.layers[l].fc1.packed.panels);
      g_assert_null (own.layers[l].fc1.int8);
      g_assert_null (blas.layers[l].fc1.int8);
      g_assert_true ((int8.layers[l].fc1.int8 != NULL) == int8_o.int8);
    }

  // int8 turned off: its matrices go, and it computes what the own one does
  GError *error = NULL;
  g_assert_true (agc_transformer_set_options (&int8, &own_o, &error));
  g_assert_null (int8.layers[0].qkv.int8);
  float *y_back = run (&int8, x, n, batch, n_tok);
  g_assert_cmpmem (y_back, n * sizeof (float), y_own, n * sizeof (float));

  // a view of float32 blocks: int8 refused, options unchanged
  int8_o.int8 = TRUE;
  g_assert_false (agc_transformer_set_options (&hand, &int8_o, &error));
  g_assert_error (error, AGC_ERROR, AGC_ERROR_UNSUPPORTED);
  g_clear_error (&error);
  g_assert_false (hand.options.int8);

  AgcTransformer *all[] = { &own, &blas, &int8, &floor };
  for (size_t i = 0; i < G_N_ELEMENTS (all); i++)
    agc_transformer_clear (all[i]);
  agc_transformer_clear (&hand);
  free_random_blocks (blocks, c.layers);
  g_free (x), g_free (want), g_free (y_own), g_free (y_blas), g_free (y_int8);
  g_free (y_floor), g_free (y_own2), g_free (y_blas2), g_free (y_back);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  rng = g_rand_new_with_seed (20261205);
  g_test_add_func ("/linear/storages", test_storages);
  g_test_add_func ("/linear/transformers-side-by-side", test_side_by_side);
  int status = g_test_run ();
  g_rand_free (rng);
  return status;
}
