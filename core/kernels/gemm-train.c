/* gemm-train.c — training's products on the packed kernels (gemm-train.h). */
#include "kernels/gemm-train.h"

#include "kernels/gemm-kernels.h"
#include "kernels/gemm-packed.h"
#include "kernels/threads.h"

#include <cblas.h>
#include <string.h>

enum
{
  // below this the packing (k n + m k floats moved) is not repaid
  MIN_ROWS = 32,
  MIN_FLOP = 1 << 22,
  TRANSPOSE_ROWS = 64, // rows of a per task when transposing it
};

static GPrivate panels_key = G_PRIVATE_INIT (agc_thread_scratch_free);
static GPrivate rows_key = G_PRIVATE_INIT (agc_thread_scratch_free);

typedef struct
{
  float *panels; // [ceil(n / 32)][k][32]
  const float *b;
  int ldb, n, k;
  gboolean trans_b;
} Pack;

// panels p of op(b) (k x n): 32 columns each, zeros past n
static void
pack_panels (void *ctx, int begin, int end, int thread)
{
  (void) thread;
  const Pack *p = ctx;
  for (int panel = begin; panel < end; panel++)
    {
      int first = panel * AGC_PANEL_WIDTH, cols = MIN (AGC_PANEL_WIDTH, p->n - first);
      float *out = p->panels + (size_t) panel * p->k * AGC_PANEL_WIDTH;
      if (!p->trans_b) // b[k, n]: each row's 32 columns in place
        for (int i = 0; i < p->k; i++)
          {
            float *row = out + (size_t) i * AGC_PANEL_WIDTH;
            memcpy (row, p->b + (size_t) i * p->ldb + first, cols * sizeof (float));
            memset (row + cols, 0, (AGC_PANEL_WIDTH - cols) * sizeof (float));
          }
      else if (cols == AGC_PANEL_WIDTH) // b[n, k]: 32 rows of b transposed
        agc_avx2_transpose_panel (out, p->b + (size_t) first * p->ldb, p->ldb, p->k);
      else
        {
          memset (out, 0, (size_t) p->k * AGC_PANEL_WIDTH * sizeof (float));
          agc_avx2_transpose (out, AGC_PANEL_WIDTH, p->b + (size_t) first * p->ldb, p->ldb, cols,
                              p->k);
        }
    }
}

typedef struct
{
  float *out; // [m, k]
  const float *a; // [k, m], row stride lda
  int lda, m, k;
} Transpose;

// rows [begin, end) of out = columns of a
static void
transpose_rows (void *ctx, int begin, int end, int thread)
{
  (void) thread;
  const Transpose *t = ctx;
  int r0 = begin * TRANSPOSE_ROWS, r1 = MIN (end * TRANSPOSE_ROWS, t->m);
  // out[r0 .. r1, :] = a[:, r0 .. r1]^T
  agc_avx2_transpose (t->out + (size_t) r0 * t->k, t->k, t->a + r0, t->lda, t->k, r1 - r0);
}

void
agc_gemm_train (gboolean trans_a, gboolean trans_b, int m, int n, int k, const float *a, int lda,
                const float *b, int ldb, float beta, float *c, int ldc)
{
  g_return_if_fail (beta == 0.0f || beta == 1.0f);
  if (m <= 0 || n <= 0)
    return;
  float *panels = NULL, *rows = NULL;
  if (agc_packed_gemm_available () && m >= MIN_ROWS && 2.0 * m * n * k >= MIN_FLOP)
    {
      panels = agc_thread_scratch (&panels_key, agc_packed_floats (n, k) * sizeof (float));
      if (trans_a)
        rows = agc_thread_scratch (&rows_key, (size_t) m * k * sizeof (float));
    }
  if (panels == NULL || (trans_a && rows == NULL)) // no kernel, too small, or memory short
    {
      cblas_sgemm (CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans,
                   trans_b ? CblasTrans : CblasNoTrans, m, n, k, 1.0f, a, lda, b, ldb, beta, c,
                   ldc);
      return;
    }
  Pack p = { panels, b, ldb, n, k, trans_b };
  agc_parallel_for ((n + AGC_PANEL_WIDTH - 1) / AGC_PANEL_WIDTH, 1, pack_panels, &p);
  if (trans_a)
    {
      Transpose t = { rows, a, lda, m, k };
      agc_parallel_for ((m + TRANSPOSE_ROWS - 1) / TRANSPOSE_ROWS, 1, transpose_rows, &t);
      a = rows;
      lda = k;
    }
  AgcPackedMatrix w = { .n_out = n, .n_in = k, .panels = panels };
  agc_gemm_packed (c, ldc, a, lda, &w, m, beta, NULL);
}
