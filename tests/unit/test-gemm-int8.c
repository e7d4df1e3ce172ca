/* test-gemm-int8.c — agc_gemm_int8 on every kernel this CPU can run, against
 * two references computed here:
 *  - the quantised product: activations and weights quantised by the
 *    definition of gemm-int8.h (written again here), dot products in int64,
 *    dequantised in double.  Only float rounding may differ, so every element
 *    must agree to 1e-6 of its size;
 *  - the float64 product of the unquantised matrices, within the
 *    quantisation bound derived below.
 * Odd sizes, beta 0 and 1, leading dimensions wider than the rows, a row of
 * zeros, rows with one huge value; one thread against the pool; the two VNNI
 * kernels against each other. */
#include "agriclip.h"
#include "kernels/gemm-int8.h"

#include <float.h>
#include <math.h>
#include <string.h>

static GRand *rng;

static const AgcInt8Kernel all_kernels[] = {
  AGC_INT8_KERNEL_AVX512VNNI,
  AGC_INT8_KERNEL_AVXVNNI,
  AGC_INT8_KERNEL_AVX2,
};

/* ---- the quantisation of gemm-int8.h, written independently ---- */

typedef struct
{
  int rows, cols;
  gint32 *q;     // [rows, cols]
  double *scale; // [rows]
  gint64 *zero;  // [rows]
} Quantized;

static void
quantized_free (Quantized *x)
{
  g_free (x->q);
  g_free (x->scale);
  g_free (x->zero);
}

// weights: symmetric per row, -127 .. 127
static Quantized
quantize_weights (const float *w, int n_out, int n_in)
{
  Quantized x = { n_out, n_in, g_new (gint32, (size_t) n_out * n_in), g_new (double, n_out),
                  g_new0 (gint64, n_out) };
  for (int n = 0; n < n_out; n++)
    {
      const float *row = w + (size_t) n * n_in;
      float amax = 0.0f;
      for (int k = 0; k < n_in; k++)
        if (fabsf (row[k]) > amax)
          amax = fabsf (row[k]);
      float s = amax / 127.0f;
      if (s < FLT_MIN)
        s = 0.0f;
      float inv = s > 0.0f ? 1.0f / s : 0.0f;
      x.scale[n] = s;
      for (int k = 0; k < n_in; k++)
        {
          float p = row[k] * inv;
          x.q[(size_t) n * n_in + k] = (gint32) fmin (127.0, fmax (-127.0, rintf (p)));
        }
    }
  return x;
}

// activations: asymmetric per row, 0 .. max_q, the range stretched to include 0
static Quantized
quantize_activations (const float *a, int lda, int rows, int n_in, int max_q)
{
  Quantized x = { rows, n_in, g_new (gint32, (size_t) rows * n_in), g_new (double, rows),
                  g_new (gint64, rows) };
  for (int r = 0; r < rows; r++)
    {
      const float *row = a + (size_t) r * lda;
      float lo = 0.0f, hi = 0.0f;
      for (int k = 0; k < n_in; k++)
        {
          lo = fminf (lo, row[k]);
          hi = fmaxf (hi, row[k]);
        }
      float s = (float) (((double) hi - (double) lo) / max_q);
      float inv = 0.0f;
      gint64 zero = 0;
      if (s >= FLT_MIN)
        {
          inv = 1.0f / s;
          float z = -lo * inv;
          zero = (gint64) fmin (max_q, fmax (0.0, rintf (z)));
        }
      else
        s = 0.0f;
      x.scale[r] = s;
      x.zero[r] = zero;
      for (int k = 0; k < n_in; k++)
        {
          float p = row[k] * inv;
          double q = rintf (p) + (double) zero;
          x.q[(size_t) r * n_in + k] = (gint32) fmin (max_q, fmax (0.0, q));
        }
    }
  return x;
}

/* ---- a case ---- */

typedef struct
{
  int rows, n_out, n_in;
  int lda, ldc; // >= n_in, n_out
  float beta;
  float *a;     // [rows, lda]
  float *w;     // [n_out, n_in]
  float *c0;    // [rows, ldc] c before the call
} Case;

static float
uniform (double lo, double hi)
{
  return (float) g_rand_double_range (rng, lo, hi);
}

/* Random activations, half the rows shifted positive as after a GELU. */
static Case
make_case (int rows, int n_out, int n_in, int lda_extra, int ldc_extra, float beta)
{
  Case t = { .rows = rows, .n_out = n_out, .n_in = n_in, .lda = n_in + lda_extra,
             .ldc = n_out + ldc_extra, .beta = beta };
  t.a = g_new (float, (size_t) rows * t.lda);
  t.w = g_new (float, (size_t) n_out * n_in);
  t.c0 = g_new (float, (size_t) rows * t.ldc);
  for (int r = 0; r < rows; r++)
    for (int k = 0; k < t.lda; k++)
      t.a[(size_t) r * t.lda + k] = r % 2 ? uniform (-2.0, 2.0) : uniform (-0.17, 3.0);
  for (size_t i = 0; i < (size_t) n_out * n_in; i++)
    t.w[i] = uniform (-0.1, 0.1);
  for (size_t i = 0; i < (size_t) rows * t.ldc; i++)
    t.c0[i] = beta != 0.0f ? uniform (-5.0, 5.0) : NAN; // beta 0 must not read c
  return t;
}

static void
case_free (Case *t)
{
  g_free (t->a);
  g_free (t->w);
  g_free (t->c0);
}

static float *
run_int8 (const Case *t, const AgcInt8Matrix *m)
{
  float *c = g_memdup2 (t->c0, sizeof (float) * t->rows * t->ldc);
  g_assert_true (agc_gemm_int8 (c, t->ldc, t->a, t->lda, m, t->rows, t->beta, NULL));
  return c;
}

/* c against both references; returns the largest error of the second in
 * units of its bound. */
static double
check_case (const Case *t)
{
  g_autoptr (GError) error = NULL;
  AgcInt8Matrix *m = agc_int8_matrix_new (t->w, t->n_out, t->n_in, &error);
  g_assert_no_error (error);
  g_assert_cmpint (agc_int8_matrix_n_out (m), ==, t->n_out);
  g_assert_cmpint (agc_int8_matrix_n_in (m), ==, t->n_in);
  float *c = run_int8 (t, m);

  int max_q = agc_int8_activation_max ();
  Quantized qa = quantize_activations (t->a, t->lda, t->rows, t->n_in, max_q);
  Quantized qw = quantize_weights (t->w, t->n_out, t->n_in);
  double worst = 0.0;
  for (int r = 0; r < t->rows; r++)
    {
      const float *a = t->a + (size_t) r * t->lda;
      const gint32 *aq = qa.q + (size_t) r * t->n_in;
      double a_l1 = 0.0;
      for (int k = 0; k < t->n_in; k++)
        a_l1 += fabs (a[k]);
      for (int n = 0; n < t->n_out; n++)
        {
          const float *w = t->w + (size_t) n * t->n_in;
          const gint32 *wq = qw.q + (size_t) n * t->n_in;
          gint64 dot = 0, wq_sum = 0;
          double exact = 0.0, abs_dot = 0.0, w_hat_l1 = 0.0;
          for (int k = 0; k < t->n_in; k++)
            {
              dot += (gint64) aq[k] * wq[k];
              wq_sum += wq[k];
              exact += (double) a[k] * w[k];
              abs_dot += fabs ((double) a[k] * w[k]);
              w_hat_l1 += fabs (qw.scale[n] * wq[k]);
            }
          size_t at = (size_t) r * t->ldc + n;
          double old = t->beta != 0.0f ? t->c0[at] : 0.0;
          double term = (double) (dot - qa.zero[r] * wq_sum) * qa.scale[r] * qw.scale[n];
          double got = c[at];
          // float: the int32 -> float conversion, sa sw, the product, the sum
          double tol = 1e-6 * (fabs (term) + fabs (old)) + 1e-30;
          if (!(fabs (got - (term + old)) <= tol))
            g_error ("rows %d n_out %d n_in %d beta %g: c[%d,%d] = %.9g, quantised reference "
                     "%.9g",
                     t->rows, t->n_out, t->n_in, t->beta, r, n, got, term + old);
          /* a = sa (aq - za) + ea with |ea| <= sa / 2 (a rounding; the
           * range includes every a), w = sw wq + ew with |ew| <= sw / 2, so
           * |a.w - a^.w^| <= sw/2 sum |a| + sa/2 sum |w^|.  Slack: 0.1 %
           * for the float rounding of a inv near the ends of the range, and
           * 1e-6 of the float sums. */
          double bound = 0.5005 * (qw.scale[n] * a_l1 + qa.scale[r] * w_hat_l1)
                         + 1e-6 * (abs_dot + fabs (old)) + 1e-30;
          double err = fabs (got - (exact + old));
          if (!(err <= bound))
            g_error ("rows %d n_out %d n_in %d: c[%d,%d] = %.9g, float64 product %.9g, error "
                     "%.3g over the bound %.3g",
                     t->rows, t->n_out, t->n_in, r, n, got, exact + old, err, bound);
          worst = fmax (worst, err / bound);
        }
      // the columns between n_out and ldc are not written
      for (int n = t->n_out; n < t->ldc; n++)
        {
          size_t at = (size_t) r * t->ldc + n;
          g_assert_true (memcmp (&c[at], &t->c0[at], sizeof (float)) == 0);
        }
    }
  quantized_free (&qa);
  quantized_free (&qw);
  g_free (c);
  agc_int8_matrix_free (m);
  return worst;
}

/* Runs fn once per kernel this CPU has; skips when it has none. */
static void
for_each_kernel (void (*fn) (void))
{
  int ran = 0;
  for (size_t i = 0; i < G_N_ELEMENTS (all_kernels); i++)
    if (agc_int8_force_kernel (all_kernels[i]))
      {
        g_test_message ("kernel %d", all_kernels[i]);
        fn ();
        ran++;
      }
  agc_int8_force_kernel (AGC_INT8_KERNEL_NONE);
  if (ran == 0)
    g_test_skip ("no int8 kernel on this CPU");
}

/* ---- tests ---- */

static void
sizes_once (void)
{
  static const int shapes[][3] = {
    // rows, n_out, n_in: each odd size meets several others
    { 1, 1, 3 },     { 1, 17, 64 },    { 7, 17, 3 },     { 7, 768, 770 },  { 50, 1, 768 },
    { 50, 17, 770 }, { 50, 2304, 64 }, { 197, 17, 768 }, { 197, 768, 64 }, { 1, 2304, 770 },
    { 7, 2304, 3 },  { 197, 1, 770 },
  };
  for (size_t s = 0; s < G_N_ELEMENTS (shapes); s++)
    for (int beta = 0; beta <= 1; beta++)
      {
        Case t = make_case (shapes[s][0], shapes[s][1], shapes[s][2], s % 3 == 0 ? 0 : 5,
                            s % 2 == 0 ? 0 : 3, (float) beta);
        double worst = check_case (&t);
        g_test_message ("%dx%dx%d beta %d: worst error %.2f of the bound", t.rows, t.n_out,
                        t.n_in, beta, worst);
        case_free (&t);
      }
}

static void
test_sizes (void)
{
  for_each_kernel (sizes_once);
}

static void
special_rows_once (void)
{
  Case t = make_case (9, 40, 100, 2, 1, 1.0f);
  float *row = t.a;
  memset (row, 0, sizeof (float) * t.lda); // a row of zeros: c unchanged
  t.a[1 * t.lda + 37] = 1e30f;             // one huge value among small ones
  t.a[2 * t.lda + 0] = 3e38f;              // the range hi - lo overflows float
  t.a[2 * t.lda + 99] = -3e38f;
  t.a[3 * t.lda + 5] = -1e-37f;            // a range below FLT_MIN x 255: zeros
  for (int k = 0; k < t.n_in; k++)
    if (k != 5)
      t.a[3 * t.lda + k] = 0.0f;
  for (int k = 0; k < t.n_in; k++)           // all negative
    t.a[4 * t.lda + k] = -fabsf (t.a[4 * t.lda + k]) - 0.5f;
  for (int k = 0; k < t.n_in; k++)           // a weight row of zeros
    t.w[7 * t.n_in + k] = 0.0f;
  t.w[8 * t.n_in + 3] = 50.0f;               // one huge weight
  check_case (&t);

  AgcInt8Matrix *m = agc_int8_matrix_new (t.w, t.n_out, t.n_in, NULL);
  float *c = run_int8 (&t, m);
  g_assert_true (memcmp (c, t.c0, sizeof (float) * t.n_out) == 0);
  g_free (c);
  agc_int8_matrix_free (m);
  case_free (&t);
}

static void
test_special_rows (void)
{
  for_each_kernel (special_rows_once);
}

static void
threads_once (void)
{
  Case t = make_case (197, 2304, 770, 3, 1, 1.0f);
  AgcInt8Matrix *m = agc_int8_matrix_new (t.w, t.n_out, t.n_in, NULL);
  agc_set_threads (1);
  float *one = run_int8 (&t, m);
  agc_set_threads (3);
  float *pool = run_int8 (&t, m);
  agc_set_threads (0);
  g_assert_true (memcmp (one, pool, sizeof (float) * t.rows * t.ldc) == 0);
  g_free (one);
  g_free (pool);
  agc_int8_matrix_free (m);
  case_free (&t);
}

static void
test_threads (void)
{
  for_each_kernel (threads_once);
}

/* Same quantisation (0 .. 255) and integer sums: the same floats. */
static void
test_vnni_kernels_agree (void)
{
  if (!agc_int8_force_kernel (AGC_INT8_KERNEL_AVX512VNNI)
      || !agc_int8_force_kernel (AGC_INT8_KERNEL_AVXVNNI))
    {
      g_test_skip ("this CPU lacks one of the VNNI kernels");
      return;
    }
  Case t = make_case (50, 100, 770, 0, 0, 1.0f);
  AgcInt8Matrix *m = agc_int8_matrix_new (t.w, t.n_out, t.n_in, NULL);
  agc_int8_force_kernel (AGC_INT8_KERNEL_AVX512VNNI);
  float *zmm = run_int8 (&t, m);
  agc_int8_force_kernel (AGC_INT8_KERNEL_AVXVNNI);
  float *ymm = run_int8 (&t, m);
  agc_int8_force_kernel (AGC_INT8_KERNEL_NONE);
  g_assert_true (memcmp (zmm, ymm, sizeof (float) * t.rows * t.ldc) == 0);
  g_free (zmm);
  g_free (ymm);
  agc_int8_matrix_free (m);
  case_free (&t);
}

static void
test_too_wide (void)
{
  int n_in = AGC_INT8_MAX_IN + 1;
  float *w = g_new0 (float, n_in);
  g_autoptr (GError) error = NULL;
  g_assert_null (agc_int8_matrix_new (w, 1, n_in, &error));
  g_assert_error (error, AGC_ERROR, AGC_ERROR_UNSUPPORTED);
  g_free (w);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  rng = g_rand_new_with_seed (20240611);
  g_test_add_func ("/gemm-int8/sizes", test_sizes);
  g_test_add_func ("/gemm-int8/special-rows", test_special_rows);
  g_test_add_func ("/gemm-int8/threads", test_threads);
  g_test_add_func ("/gemm-int8/vnni-kernels-agree", test_vnni_kernels_agree);
  g_test_add_func ("/gemm-int8/too-wide", test_too_wide);
  int status = g_test_run ();
  g_rand_free (rng);
  return status;
}
