/* Training's products (core/kernels/gemm-train.c) against a float64 product
 * written here: each operand plain or transposed, sizes that are no
 * multiple of the panel (32), the tile (12, 6) or the transposition (8),
 * leading dimensions wider than the matrices, beta 0 and 1, on the packed
 * kernels (AVX-512, AVX2) and on the OpenBLAS fallback (scalar mode). */
#include "kernels/gemm-packed.h"
#include "kernels/gemm-train.h"
#include "kernels/ops.h"

#include <agriclip.h>
#include <math.h>

static float
random_float (guint32 *state)
{
  *state = *state * 1664525u + 1013904223u;
  return (float) (*state >> 8) / (float) (1u << 24) - 0.5f;
}

// c = beta c + op(a) @ op(b) in agc_gemm_train and in float64; the error
// relative to Σ |op(a)| |op(b)| per element
static void
check (gboolean ta, gboolean tb, int m, int n, int k, float beta)
{
  int pad = 3;
  int lda = (ta ? m : k) + pad, ldb = (tb ? k : n) + pad, ldc = n + pad;
  size_t na = (size_t) (ta ? k : m) * lda, nb = (size_t) (tb ? n : k) * ldb;
  size_t nc = (size_t) m * ldc;
  float *a = g_new (float, na), *b = g_new (float, nb), *c = g_new (float, nc);
  float *c0 = g_new (float, nc);
  guint32 s = (guint32) (m * 7919 + n * 31 + k + ta * 2 + tb);
  for (size_t i = 0; i < na; i++)
    a[i] = random_float (&s);
  for (size_t i = 0; i < nb; i++)
    b[i] = random_float (&s);
  for (size_t i = 0; i < nc; i++)
    c0[i] = c[i] = random_float (&s);
  agc_gemm_train (ta, tb, m, n, k, a, lda, b, ldb, beta, c, ldc);
  double worst = 0.0;
  for (int i = 0; i < m; i++)
    for (int j = 0; j < n; j++)
      {
        double sum = beta * c0[(size_t) i * ldc + j], size = fabs (sum);
        for (int p = 0; p < k; p++)
          {
            double x = ta ? a[(size_t) p * lda + i] : a[(size_t) i * lda + p];
            double y = tb ? b[(size_t) j * ldb + p] : b[(size_t) p * ldb + j];
            sum += x * y;
            size += fabs (x * y);
          }
        worst = MAX (worst, fabs (c[(size_t) i * ldc + j] - sum) / size);
      }
  if (worst > 1e-6)
    g_test_message ("ta %d tb %d m %d n %d k %d beta %g: error %g", ta, tb, m, n, k, beta, worst);
  g_assert_cmpfloat (worst, <=, 1e-6);
  // the padding of c is left alone
  for (int i = 0; i < m; i++)
    for (int j = n; j < ldc; j++)
      g_assert_cmpfloat (c[(size_t) i * ldc + j], ==, c0[(size_t) i * ldc + j]);
  g_free (a);
  g_free (b);
  g_free (c);
  g_free (c0);
}

static void
check_all (void)
{
  // thick (training's rows x widths, scaled down), thin, and too small to pack
  static const int shapes[][3] = { { 130, 77, 290 }, { 33, 300, 333 }, { 301, 45, 160 },
                                   { 7, 20, 9 } };
  for (size_t s = 0; s < G_N_ELEMENTS (shapes); s++)
    for (int ta = 0; ta < 2; ta++)
      for (int tb = 0; tb < 2; tb++)
        for (int beta = 0; beta < 2; beta++)
          check (ta, tb, shapes[s][0], shapes[s][1], shapes[s][2], (float) beta);
}

static void
test_packed (void)
{
  if (!agc_packed_gemm_available ())
    {
      g_test_skip ("no AVX2+FMA: no packed kernel");
      return;
    }
  check_all ();
  agc_packed_gemm_limit_to_avx2 (TRUE);
  check_all ();
  agc_packed_gemm_limit_to_avx2 (FALSE);
}

static void
test_openblas (void)
{
  agc_ops_force_scalar (TRUE);
  g_assert_false (agc_packed_gemm_available ());
  check_all ();
  agc_ops_force_scalar (FALSE);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/gemm-train/packed", test_packed);
  g_test_add_func ("/gemm-train/openblas", test_openblas);
  return g_test_run ();
}
