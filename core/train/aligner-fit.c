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
  // the four arrays above follow the struct in its allocation
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
  size_t in = in_dim, out = out_dim;
  AgcRidge *r = g_malloc0 (sizeof *r + sizeof (double) * (in + out + in * in + in * out));
  r->n = n, r->in_dim = in_dim, r->out_dim = out_dim;
  r->x_mean = (double *) (r + 1);
  r->y_mean = r->x_mean + in;
  r->gram = r->y_mean + out;
  r->cross = r->gram + in * in;
  double *xc = centre (r->x_mean, x, n, in_dim);  // [n, in]
  double *yc = centre (r->y_mean, y, n, out_dim); // [n, out]
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
  g_free (ridge); // its arrays with it
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
