/* aligner-fit.c — ridge regression by Cholesky, on OpenBLAS's BLAS and
 * LAPACK. */
#include "train/aligner-fit.h"

#include <cblas.h>
#include <math.h>
#include <string.h>

/* LAPACK's Cholesky factorisation.  Debian's libopenblas exports the
 * Fortran symbol but no header declares it (lapacke.h is another package):
 * Fortran calling convention, arguments by reference, the length of the
 * character argument last (gfortran's hidden argument; OpenBLAS's own C
 * implementation ignores it). */
extern void dpotrf_ (const char *uplo, const int *n, double *a, const int *lda, int *info,
                     size_t uplo_length);

struct AgcRidge
{
  int n, in_dim, out_dim;
  double *x_mean; // [in]
  double *y_mean; // [out]
  double *gram;   // [in, in] Xcᵀ Xc, upper triangle (row-major) filled
  double *cross;  // [in, out] Xcᵀ Yc
  double trace;
};

// centred[n, dim] = rows - their mean; mean[dim]
static double *
centre (double *mean, const float *rows, int n, int dim)
{
  double *centred = g_new (double, (size_t) n * dim);
  memset (mean, 0, sizeof (double) * dim);
  for (int i = 0; i < n; i++)
    for (int d = 0; d < dim; d++)
      mean[d] += rows[(size_t) i * dim + d];
  for (int d = 0; d < dim; d++)
    mean[d] /= n;
  for (int i = 0; i < n; i++)
    for (int d = 0; d < dim; d++)
      centred[(size_t) i * dim + d] = rows[(size_t) i * dim + d] - mean[d];
  return centred;
}

AgcRidge *
agc_ridge_new (const float *x, const float *y, int n, int in_dim, int out_dim)
{
  g_return_val_if_fail (x != NULL && y != NULL && n >= 1 && in_dim >= 1 && out_dim >= 1, NULL);
  AgcRidge *r = g_new0 (AgcRidge, 1);
  r->n = n, r->in_dim = in_dim, r->out_dim = out_dim;
  r->x_mean = g_new (double, in_dim);
  r->y_mean = g_new (double, out_dim);
  double *xc = centre (r->x_mean, x, n, in_dim);  // [n, in]
  double *yc = centre (r->y_mean, y, n, out_dim); // [n, out]
  r->gram = g_new0 (double, (size_t) in_dim * in_dim);
  r->cross = g_new (double, (size_t) in_dim * out_dim);
  cblas_dsyrk (CblasRowMajor, CblasUpper, CblasTrans, in_dim, n, 1.0, xc, in_dim, 0.0, r->gram,
               in_dim);
  cblas_dgemm (CblasRowMajor, CblasTrans, CblasNoTrans, in_dim, out_dim, n, 1.0, xc, in_dim, yc,
               out_dim, 0.0, r->cross, out_dim);
  for (int d = 0; d < in_dim; d++)
    r->trace += r->gram[(size_t) d * in_dim + d];
  g_free (yc);
  g_free (xc);
  return r;
}

void
agc_ridge_free (AgcRidge *ridge)
{
  if (ridge == NULL)
    return;
  g_free (ridge->x_mean);
  g_free (ridge->y_mean);
  g_free (ridge->gram);
  g_free (ridge->cross);
  g_free (ridge);
}

double
agc_ridge_trace (const AgcRidge *ridge)
{
  g_return_val_if_fail (ridge != NULL, 0.0);
  return ridge->trace;
}

gboolean
agc_ridge_solve (float *weight, float *bias, const AgcRidge *ridge, double lambda,
                 GError **error)
{
  g_return_val_if_fail (weight != NULL && bias != NULL && ridge != NULL, FALSE);
  g_return_val_if_fail (lambda >= 0.0 && isfinite (lambda), FALSE);
  int in = ridge->in_dim, out = ridge->out_dim;
  double *a = g_new (double, (size_t) in * in);  // [in, in] Xcᵀ Xc + λ I, then its factor
  double *z = g_new (double, (size_t) in * out); // [in, out] the right side, then Wᵀ
  memcpy (a, ridge->gram, sizeof (double) * in * in);
  memcpy (z, ridge->cross, sizeof (double) * in * out);
  for (int d = 0; d < in; d++)
    a[(size_t) d * in + d] += lambda;

  /* The row-major upper triangle is LAPACK's column-major lower one: dpotrf
   * "L" leaves L there with A = L Lᵀ, which row-major reads as U = Lᵀ,
   * A = Uᵀ U.  Then Uᵀ V = Xcᵀ Yc and U Wᵀ = V. */
  int info = 0;
  dpotrf_ ("L", &in, a, &in, &info, 1);
  gboolean ok = info == 0;
  if (ok)
    {
      cblas_dtrsm (CblasRowMajor, CblasLeft, CblasUpper, CblasTrans, CblasNonUnit, in, out, 1.0,
                   a, in, z, out);
      cblas_dtrsm (CblasRowMajor, CblasLeft, CblasUpper, CblasNoTrans, CblasNonUnit, in, out,
                   1.0, a, in, z, out);
      for (int o = 0; o < out && ok; o++)
        {
          double b = ridge->y_mean[o];
          for (int d = 0; d < in; d++)
            {
              double w = z[(size_t) d * out + o];
              weight[(size_t) o * in + d] = (float) w;
              b -= w * ridge->x_mean[d];
              ok = ok && isfinite (w);
            }
          bias[o] = (float) b;
          ok = ok && isfinite (b);
        }
    }
  if (!ok)
    g_set_error (error, AGC_ERROR, AGC_ERROR_INPUT,
                 "ridge regression: the system is singular at λ = %g (%d images, %d features%s): "
                 "choose a larger ridge",
                 lambda, ridge->n, in, info > 0 ? ", not positive definite" : "");
  g_free (z);
  g_free (a);
  return ok;
}
