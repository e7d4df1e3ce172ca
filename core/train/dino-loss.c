/* dino-loss.c — DINO's loss and centre (dino-loss.h). */
#include "train/dino-loss.h"

#include <math.h>

// out[dim] = softmax(x[dim] * inv_temp (- shift * inv_temp)), in double
static void
softmax_row (double *out, const float *x, const float *shift, int dim, double inv_temp)
{
  double max = -INFINITY, sum = 0.0;
  for (int k = 0; k < dim; k++)
    {
      out[k] = ((double) x[k] - (shift != NULL ? shift[k] : 0.0)) * inv_temp;
      max = MAX (max, out[k]);
    }
  for (int k = 0; k < dim; k++)
    sum += out[k] = exp (out[k] - max);
  for (int k = 0; k < dim; k++)
    out[k] /= sum;
}

double
agc_dino_loss_backward (float *dstudent, const float *student, const float *teacher,
                        const float *center, int n_crops, int batch, int dim,
                        double student_temp, double teacher_temp, double scale)
{
  double *q = g_new (double, 2 * (size_t) dim), *p = g_new (double, dim);
  int n_terms = 2 * n_crops - 2;
  double total = 0.0;
  for (int b = 0; b < batch; b++)
    {
      softmax_row (q, teacher + (size_t) b * dim, center, dim, 1.0 / teacher_temp);
      softmax_row (q + dim, teacher + (size_t) (batch + b) * dim, center, dim,
                   1.0 / teacher_temp);
      for (int v = 0; v < n_crops; v++)
        {
          size_t row = (size_t) (v * batch + b) * dim;
          softmax_row (p, student + row, NULL, dim, 1.0 / student_temp);
          // d/ds of -q . log p over the teachers iq != v: (n_q p - sum q) / T
          int n_q = 0;
          for (int iq = 0; iq < 2; iq++)
            {
              if (iq == v)
                continue;
              n_q++;
              const double *qq = q + (size_t) iq * dim;
              double ce = 0.0;
              for (int k = 0; k < dim; k++)
                ce -= qq[k] * log (MAX (p[k], 1e-300));
              total += ce;
            }
          double g = scale / (n_terms * (double) batch * student_temp);
          for (int k = 0; k < dim; k++)
            {
              double sum_q = 0.0;
              for (int iq = 0; iq < 2; iq++)
                if (iq != v)
                  sum_q += q[(size_t) iq * dim + k];
              dstudent[row + k] += (float) (g * (n_q * p[k] - sum_q));
            }
        }
    }
  g_free (p);
  g_free (q);
  return total / (n_terms * (double) batch);
}

void
agc_dino_center_update (float *center, const float *teacher, int n_rows, int dim,
                        double momentum)
{
  for (int k = 0; k < dim; k++)
    {
      double sum = 0.0;
      for (int r = 0; r < n_rows; r++)
        sum += teacher[(size_t) r * dim + k];
      center[k] = (float) (center[k] * momentum + sum / n_rows * (1.0 - momentum));
    }
}
