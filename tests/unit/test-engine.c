/* test-engine.c — the speed machinery of the encoders must not change
 * results: AVX2 ops against the plain C ones (and those against double
 * loops in test-ops.c), every half-precision value converted as tensor.c
 * does, the thread pool covering each item exactly once, packed sequences of
 * different lengths giving what each sequence gives alone.  The class
 * cache has its own test-class-cache.c. */
#include "kernels/gemm.h"
#include "kernels/ops.h"
#include "formats/tensor.h"
#include "kernels/threads.h"
#include "nn/transformer.h"
#include "unit-util.h"

#include <glib/gstdio.h>
#include <math.h>
#include <string.h>

static GRand *rng;

static double
max_abs_diff (const float *a, const float *b, size_t n)
{
  double m = 0.0;
  for (size_t i = 0; i < n; i++)
    {
      g_assert_true (isfinite (a[i]) == isfinite (b[i]));
      if (isfinite (a[i]))
        m = fmax (m, fabs ((double) a[i] - b[i]));
    }
  return m;
}

/* ---- SIMD against plain C ---- */

static void
test_simd_matches_scalar (void)
{
  if (!agc_ops_force_scalar (FALSE))
    {
      g_test_skip ("this CPU has no AVX2+FMA+F16C: only the plain C code runs");
      return;
    }
  // widths that are and are not multiples of 8; a large mean on some rows
  for (int width = 1; width <= 77; width += 19)
    {
      int rows = 5;
      size_t n = (size_t) rows * width;
      float *x = random_floats (rng, n, 3.0, 20.0), *w = random_floats (rng, width, 0.5, 1.0);
      float *b = random_floats (rng, width, 0.5, 0.0), *add = random_floats (rng, width, 2.0, 0.0);
      float *x_simd = g_memdup2 (x, n * sizeof (float)), *x_plain = g_memdup2 (x, n * sizeof (float));
      float *out_simd = g_new (float, n), *out_plain = g_new (float, n);
      agc_ops_force_scalar (TRUE);
      agc_bias_layernorm_forward (out_plain, NULL, NULL, x_plain, add, w, b, rows, width, 1e-5f);
      agc_ops_force_scalar (FALSE);
      agc_bias_layernorm_forward (out_simd, NULL, NULL, x_simd, add, w, b, rows, width, 1e-5f);
      g_assert_cmpfloat (max_abs_diff (x_simd, x_plain, n), ==, 0.0); // the bias add is exact
      if (width > 1)
        g_assert_cmpfloat (max_abs_diff (out_simd, out_plain, n), <, 2e-5);

      float *a_simd = random_floats (rng, n, 12.0, 0.0), *a_plain = g_memdup2 (a_simd, n * 4);
      for (int act = 0; act < 2; act++)
        {
          memcpy (a_plain, a_simd, n * 4);
          float *copy = g_memdup2 (a_simd, n * 4);
          agc_ops_force_scalar (TRUE);
          agc_bias_act_forward (a_plain, b, rows, width, act);
          agc_ops_force_scalar (FALSE);
          agc_bias_act_forward (copy, b, rows, width, act);
          g_assert_cmpfloat (max_abs_diff (copy, a_plain, n), <, 3e-6);
          g_free (copy);
        }
      memcpy (a_plain, a_simd, n * 4);
      agc_ops_force_scalar (TRUE);
      agc_softmax_rows (a_plain, rows, width);
      agc_ops_force_scalar (FALSE);
      agc_softmax_rows (a_simd, rows, width);
      g_assert_cmpfloat (max_abs_diff (a_simd, a_plain, n), <, 1e-6);

      g_free (x), g_free (w), g_free (b), g_free (add), g_free (x_simd), g_free (x_plain);
      g_free (out_simd), g_free (out_plain), g_free (a_simd), g_free (a_plain);
    }
  // exp's edges: overflow to inf (quick GELU's -0), underflow to exactly 0
  float edges[] = { -200.0f, -60.0f, -51.5f, 0.0f, 51.5f, 200.0f, -1e4f, 1e-30f, -1e-30f };
  float plain[G_N_ELEMENTS (edges)], simd[G_N_ELEMENTS (edges)];
  for (int act = 0; act < 2; act++)
    {
      memcpy (plain, edges, sizeof edges);
      memcpy (simd, edges, sizeof edges);
      agc_ops_force_scalar (TRUE);
      agc_bias_act_forward (plain, NULL, 1, G_N_ELEMENTS (edges) - 1, act);
      agc_ops_force_scalar (FALSE);
      agc_bias_act_forward (simd, NULL, 1, G_N_ELEMENTS (edges) - 1, act);
      for (size_t i = 0; i + 1 < G_N_ELEMENTS (edges); i++)
        g_assert_cmpfloat (fabsf (simd[i] - plain[i]), <=, 1e-6f * fmaxf (1.0f, fabsf (plain[i])));
    }
}

static void
test_half_conversion (void)
{
  // every 16-bit pattern, as F16 and as BF16, against tensor.c
  uint16_t *all = g_new (uint16_t, 65536);
  for (int i = 0; i < 65536; i++)
    all[i] = (uint16_t) i;
  float *want = g_new (float, 65536), *got = g_new (float, 65536);
  for (int dtype = 0; dtype < 2; dtype++)
    {
      AgcTensorView view = { .name = "all", .dtype = dtype ? AGC_DTYPE_BF16 : AGC_DTYPE_F16,
                             .n_dims = 1, .shape = { 65536 }, .data = (const guint8 *) all,
                             .n_bytes = 65536 * 2, .file = "test" };
      agc_tensor_to_f32 (&view, want);
      for (int scalar = 0; scalar < 2; scalar++)
        {
          agc_ops_force_scalar (scalar);
          memset (got, 0, 65536 * sizeof (float));
          // an odd length and offset: the tail path too
          if (dtype)
            agc_bf16_to_f32 (got + 3, all + 3, 65533);
          else
            agc_f16_to_f32 (got + 3, all + 3, 65533);
          for (int i = 3; i < 65536; i++)
            if (!(isnan (want[i]) && isnan (got[i])))
              g_assert_cmpmem (&got[i], sizeof (float), &want[i], sizeof (float));
        }
    }
  agc_ops_force_scalar (FALSE);
  g_free (all), g_free (want), g_free (got);
}

/* ---- threads ---- */

typedef struct
{
  gint *hits;
  int n_threads;
} Hits;

static void
count_hits (void *ctx, int begin, int end, int thread)
{
  Hits *h = ctx;
  g_assert_cmpint (thread, >=, 0);
  g_assert_cmpint (thread, <, h->n_threads);
  for (int i = begin; i < end; i++)
    g_atomic_int_inc (&h->hits[i]);
}

static void
check_each_once (int n_items, int grain)
{
  Hits h = { g_new0 (gint, MAX (n_items, 1)), agc_threads_count () };
  agc_parallel_for (n_items, grain, count_hits, &h);
  for (int i = 0; i < n_items; i++)
    g_assert_cmpint (h.hits[i], ==, 1);
  g_free (h.hits);
}

static gpointer
hammer (gpointer data)
{
  (void) data;
  for (int r = 0; r < 200; r++)
    check_each_once (1 + r % 37, 1 + r % 5);
  return NULL;
}

static void
test_parallel_for (void)
{
  int sizes[] = { 3, 1, 2, 4 };
  for (size_t s = 0; s < G_N_ELEMENTS (sizes); s++)
    {
      agc_set_threads (sizes[s]);
      g_assert_cmpint (agc_get_threads (), ==, sizes[s]);
      for (int r = 0; r < 300; r++) // many short regions: the wake-up path
        check_each_once (r % 50, 1 + r % 7);
      check_each_once (100000, 0);
      // two callers at once: one gets the pool, the other runs alone
      GThread *a = g_thread_new ("a", hammer, NULL), *b = g_thread_new ("b", hammer, NULL);
      g_thread_join (a);
      g_thread_join (b);
    }
  agc_set_threads (0);
}

/* ---- split GEMM ---- */

static void
test_gemm_split (void)
{
  // thin enough to be split by columns (300: not a multiple of the block
  // width), strided a and c, beta 0 and 1; against a double loop
  int rows = 50, n_out = 300, n_in = 320, lda = n_in + 3, ldc = 2 * n_out;
  float *a = random_floats (rng, (size_t) rows * lda, 1.0, 0.0);
  float *w = random_floats (rng, (size_t) n_out * n_in, 0.1, 0.0);
  float *c0 = random_floats (rng, (size_t) rows * ldc, 1.0, 0.0);
  for (int threads = 1; threads <= 3; threads++)
    for (int beta = 0; beta <= 1; beta++)
      {
        agc_set_threads (threads);
        float *c = g_memdup2 (c0, (size_t) rows * ldc * sizeof (float));
        agc_gemm_nt (c, ldc, a, lda, w, rows, n_out, n_in, (float) beta);
        for (int r = 0; r < rows; r++)
          for (int o = 0; o < ldc; o++)
            {
              double want = c0[(size_t) r * ldc + o]; // columns past n_out untouched
              if (o < n_out)
                {
                  want = beta ? want : 0.0;
                  for (int i = 0; i < n_in; i++)
                    want += (double) a[(size_t) r * lda + i] * w[(size_t) o * n_in + i];
                }
              g_assert_cmpfloat (fabs (c[(size_t) r * ldc + o] - want), <, 1e-4);
            }
        g_free (c);
      }
  agc_set_threads (0);
  g_free (a), g_free (w), g_free (c0);
}

/* ---- packed sequences ---- */

static void
check_packed (gboolean causal, int n_threads)
{
  agc_set_threads (n_threads);
  AgcTowerConfig c = { .width = 40, .layers = 2, .heads = 5, .mlp_width = 72,
                       .layer_norm_eps = 1e-5f, .act = AGC_ACT_QUICK_GELU };
  AgcBlock *blocks = random_blocks (rng, &c);
  AgcTransformer tr;
  agc_transformer_view (&tr, blocks, &c);
  int lengths[] = { 3, 9, 1, 6, 9 }, n_seqs = G_N_ELEMENTS (lengths), rows = 0;
  for (int s = 0; s < n_seqs; s++)
    rows += lengths[s];
  size_t n = (size_t) rows * c.width;
  float *packed = random_floats (rng, n, 1.0, 0.0), *alone = g_memdup2 (packed, n * sizeof (float));
  g_assert_true (agc_transformer_forward_packed (&tr, packed, n_seqs, lengths, causal, NULL));
  size_t at = 0;
  for (int s = 0; s < n_seqs; s++)
    {
      float *seq = alone + at * c.width;
      g_assert_true (agc_transformer_forward (&tr, seq, 1, lengths[s], causal, NULL));
      at += lengths[s];
    }
  // the same arithmetic row by row, whatever the GEMM blocking: float noise only
  g_assert_cmpfloat (max_abs_diff (packed, alone, n), <, 2e-5);
  g_free (packed), g_free (alone);
  agc_transformer_clear (&tr);
  free_random_blocks (blocks, c.layers);
  agc_set_threads (0);
}

static void
test_packed_causal (void)
{
  check_packed (TRUE, 2);
  check_packed (TRUE, 1);
}

static void
test_packed_bidirectional (void)
{
  check_packed (FALSE, 3);
}

int
main (int argc, char **argv)
{
  // the cache goes to a throwaway folder, set before GLib reads it
  g_autofree char *cache_root = temp_cache_root_new (NULL, "agc-test-engine-XXXXXX");
  g_test_init (&argc, &argv, NULL);
  rng = g_rand_new_with_seed (99);
  g_test_add_func ("/ops/simd-matches-scalar", test_simd_matches_scalar);
  g_test_add_func ("/ops/half-conversion", test_half_conversion);
  g_test_add_func ("/threads/parallel-for", test_parallel_for);
  g_test_add_func ("/gemm/split", test_gemm_split);
  g_test_add_func ("/transformer/packed-causal", test_packed_causal);
  g_test_add_func ("/transformer/packed-bidirectional", test_packed_bidirectional);
  int status = g_test_run ();
  g_rand_free (rng);
  remove_tree (cache_root);
  return status;
}
