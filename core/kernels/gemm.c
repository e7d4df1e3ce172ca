/* gemm.c — weight-column blocks of one sgemm spread over the pool. */
#include "kernels/gemm.h"

#include "kernels/threads.h"

#include <cblas.h>

enum
{
  COLUMN_ALIGN = 64,        // block widths: whole SIMD kernels of OpenBLAS
  BLOCKS_PER_THREAD = 2,    // so that a delayed thread leaves work to the others
  MIN_FLOP_PER_BLOCK = 1 << 22,
  // above this many rows OpenBLAS's own threading does as well: leave it be
  MAX_SPLIT_ROWS = 256,
};

typedef struct
{
  float *c;
  const float *a, *w;
  int ldc, lda, rows, n_out, n_in, block;
  float beta;
} Gemm;

static void
gemm_blocks (void *ctx, int begin, int end, int thread)
{
  (void) thread;
  const Gemm *g = ctx;
  for (int b = begin; b < end; b++)
    {
      int col = b * g->block, cols = MIN (g->block, g->n_out - col);
      cblas_sgemm (CblasRowMajor, CblasNoTrans, CblasTrans, g->rows, cols, g->n_in, 1.0f, g->a,
                   g->lda, g->w + (size_t) col * g->n_in, g->n_in, g->beta, g->c + col, g->ldc);
    }
}

void
agc_gemm_nt (float *c, int ldc, const float *a, int lda, const float *w, int rows, int n_out,
             int n_in, float beta)
{
  int threads = agc_threads_count ();
  double flop = 2.0 * rows * n_out * n_in;
  if (threads == 1 || rows > MAX_SPLIT_ROWS || flop < 2.0 * MIN_FLOP_PER_BLOCK)
    {
      cblas_sgemm (CblasRowMajor, CblasNoTrans, CblasTrans, rows, n_out, n_in, 1.0f, a, lda, w,
                   n_in, beta, c, ldc);
      return;
    }
  int n_blocks = threads * BLOCKS_PER_THREAD;
  int block = (n_out + n_blocks - 1) / n_blocks;
  block = (block + COLUMN_ALIGN - 1) / COLUMN_ALIGN * COLUMN_ALIGN;
  Gemm g = { c, a, w, ldc, lda, rows, n_out, n_in, block, beta };
  agc_threads_blas_serial_begin ();
  agc_parallel_for ((n_out + block - 1) / block, 1, gemm_blocks, &g);
  agc_threads_blas_serial_end ();
}
