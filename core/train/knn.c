/* knn.c — weighted k-nearest-neighbour voting (knn.h). */
#include "train/knn.h"

#include <math.h>

void
agc_knn_normalise (float *rows, int n, int dim)
{
  for (int i = 0; i < n; i++)
    {
      float *row = rows + (gsize) i * dim;
      double sum = 0;
      for (int d = 0; d < dim; d++)
        sum += (double) row[d] * row[d];
      if (sum > 0)
        for (int d = 0; d < dim; d++)
          row[d] = (float) (row[d] / sqrt (sum));
    }
}

void
agc_knn_classify (const float *bank, const int *bank_class, int n_bank, const float *queries,
                  int n, int dim, int k, double temperature, int n_classes, int *predicted)
{
  k = MIN (k, n_bank);
  double *sim = g_new (double, n_bank);
  int *top = g_new (int, k);      // [k] bank rows, most similar first
  double *votes = g_new (double, n_classes);
  gboolean *taken = g_new (gboolean, n_bank);
  for (int q = 0; q < n; q++)
    {
      const float *x = queries + (gsize) q * dim;
      for (int b = 0; b < n_bank; b++)
        {
          const float *y = bank + (gsize) b * dim;
          double dot = 0;
          for (int d = 0; d < dim; d++)
            dot += (double) x[d] * y[d];
          sim[b] = dot;
          taken[b] = FALSE;
        }
      // k passes of selection: k (20) is small beside the bank
      for (int j = 0; j < k; j++)
        {
          int best = -1;
          for (int b = 0; b < n_bank; b++)
            if (!taken[b] && (best < 0 || sim[b] > sim[best]))
              best = b;
          taken[best] = TRUE;
          top[j] = best;
        }
      for (int c = 0; c < n_classes; c++)
        votes[c] = 0;
      for (int j = 0; j < k; j++)
        votes[bank_class[top[j]]] += exp (sim[top[j]] / temperature);
      int winner = 0;
      for (int c = 1; c < n_classes; c++)
        if (votes[c] > votes[winner])
          winner = c;
      predicted[q] = winner;
    }
  g_free (sim);
  g_free (top);
  g_free (votes);
  g_free (taken);
}
