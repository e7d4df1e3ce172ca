/* Attention (core/kernels/attention.c) against a float64 computation written here:
 * sequences of uneven lengths in one batch (1 token, a panel and one more,
 * ViT-B/16's 197), head widths of 64 and 40 (columns that do not fill a
 * panel), causal and not, on the packed kernels and on OpenBLAS. */
#include "kernels/attention.h"
#include "kernels/gemm-packed.h"
#include "kernels/ops.h"
#include "kernels/threads.h"
#include "unit-util.h"

#include <agriclip.h>

typedef struct
{
  int width, heads;
  gboolean causal;
  int n_seqs;
  int lengths[4];
} Case;

// out[rows, width] of the double reference
static double *
reference (const Case *k, const float *qkv, const int *offsets)
{
  int d = k->width, hd = d / k->heads, ld = 3 * d;
  int rows = offsets[k->n_seqs - 1] + k->lengths[k->n_seqs - 1];
  double *out = g_new0 (double, (size_t) rows * d);
  double *p = g_new (double, 256);
  for (int s = 0; s < k->n_seqs; s++)
    for (int h = 0; h < k->heads; h++)
      for (int i = 0; i < k->lengths[s]; i++)
        {
          const float *q = qkv + (size_t) (offsets[s] + i) * ld + h * hd;
          int visible = k->causal ? i + 1 : k->lengths[s];
          double max = -INFINITY, sum = 0.0;
          for (int j = 0; j < visible; j++)
            {
              const float *key = qkv + (size_t) (offsets[s] + j) * ld + d + h * hd;
              double dot = 0.0;
              for (int c = 0; c < hd; c++)
                dot += (double) q[c] * key[c];
              p[j] = dot / sqrt ((double) hd);
              max = fmax (max, p[j]);
            }
          for (int j = 0; j < visible; j++)
            sum += p[j] = exp (p[j] - max);
          double *o = out + (size_t) (offsets[s] + i) * d + h * hd;
          for (int j = 0; j < visible; j++)
            {
              const float *v = qkv + (size_t) (offsets[s] + j) * ld + 2 * d + h * hd;
              for (int c = 0; c < hd; c++)
                o[c] += p[j] / sum * v[c];
            }
        }
  g_free (p);
  return out;
}

static void
check_case (const Case *k)
{
  GRand *rng = g_rand_new_with_seed ((guint32) (k->width * 31 + k->lengths[0]));
  int offsets[4], rows = 0, max_len = 0, d = k->width;
  for (int s = 0; s < k->n_seqs; s++)
    {
      offsets[s] = rows;
      rows += k->lengths[s];
      max_len = MAX (max_len, k->lengths[s]);
    }
  // scores of a few units, so that the softmax is neither flat nor one-hot
  float *qkv = random_floats (rng, (size_t) rows * 3 * d, 1.5, 0.0);
  float *out = g_new (float, (size_t) rows * d);
  size_t scratch_floats
    = agc_threads_count () * agc_attention_scratch_floats (max_len, d, k->heads);
  float *scratch = g_aligned_alloc (scratch_floats, sizeof (float), 64);
  AgcAttention a = {
    .qkv = qkv, .out = out, .offsets = offsets, .lengths = k->lengths, .n_seqs = k->n_seqs,
    .width = d, .heads = k->heads, .max_len = max_len, .causal = k->causal, .scratch = scratch,
  };
  agc_attention_forward (&a);
  double *want = reference (k, qkv, offsets);
  double err = normalized_error (out, want, (size_t) rows * d);
  if (err > 1e-5)
    g_error ("width %d heads %d causal %d lengths %d...: error %g", d, k->heads, k->causal,
             k->lengths[0], err);
  g_free (want);
  g_aligned_free (scratch);
  g_free (out);
  g_free (qkv);
  g_rand_free (rng);
}

static const Case cases[] = {
  { 768, 12, FALSE, 2, { 50, 50 } },          // ViT-B/32, batch 2
  { 768, 12, FALSE, 1, { 197 } },             // ViT-B/16
  { 512, 8, TRUE, 3, { 77, 9, 1 } },          // text tower: prompts stopped at their EOT
  { 120, 3, FALSE, 4, { 33, 1, 32, 64 } },    // heads of 40 columns
  { 80, 2, TRUE, 2, { 65, 31 } },
};

static void
check_all (gconstpointer scalar)
{
  agc_ops_force_scalar (GPOINTER_TO_INT (scalar));
  g_assert_true (GPOINTER_TO_INT (scalar) || !agc_ops_simd () || agc_packed_gemm_available ());
  for (size_t i = 0; i < G_N_ELEMENTS (cases); i++)
    check_case (&cases[i]);
  agc_ops_force_scalar (FALSE);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  agc_set_threads (2);
  g_test_add_data_func ("/attention/best", GINT_TO_POINTER (FALSE), check_all);
  g_test_add_data_func ("/attention/openblas", GINT_TO_POINTER (TRUE), check_all);
  return g_test_run ();
}
