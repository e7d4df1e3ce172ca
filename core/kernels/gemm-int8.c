/* gemm-int8.c — quantisation and packing of the weights, the per-call
 * quantisation of the activations, the split over the pool and the choice of
 * kernel (gemm-int8-avx512.c, gemm-int8-avx2.c) for gemm-int8.h.
 *
 * Work items are blocks of up to ROW_BLOCK rows x one packed group of
 * columns, handed out row block by row block, so that both threads share
 * the block of quantised activations in cache while each streams its own
 * weight groups. */
#include "kernels/gemm-int8.h"

#include "agriclip.h"
#include "kernels/threads.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

enum
{
  ROW_BLOCK = 96,            // rows of a work item: a multiple of every kernel's tile height
  QUANT_GRAIN_FLOATS = 32768 // activations quantised per chunk of the first region
};

struct AgcInt8Matrix
{
  int n_out, n_in;
  int n_pad, k_pad;  // n_out up to a multiple of AGC_INT8_GROUP, n_in of 4
  gint8 *packed;     // [n_pad / GROUP][k_pad / 4][GROUP][4], after the struct in its block
  float *scale;      // [n_pad] sw, 0 in the padding
  gint32 *colsum;    // [n_pad] sum_k wq
};

/* ---- the kernel ---- */

static int best_kernel = -1; // AgcInt8Kernel; -1: not checked yet
static int forced_kernel;    // AGC_INT8_KERNEL_NONE: the best one

static gboolean
cpu_has (AgcInt8Kernel kernel)
{
#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
  __builtin_cpu_init ();
  gboolean avx2 = __builtin_cpu_supports ("avx2") && __builtin_cpu_supports ("fma");
  switch (kernel)
    {
    case AGC_INT8_KERNEL_AVX512VNNI:
      return avx2 && __builtin_cpu_supports ("avx512f") && __builtin_cpu_supports ("avx512bw")
             && __builtin_cpu_supports ("avx512vl") && __builtin_cpu_supports ("avx512vnni");
    case AGC_INT8_KERNEL_AVXVNNI:
#if defined(__clang__) && __clang_major__ < 15
      return FALSE; // clang 14 (the fuzzing build) cannot ask: the AVX2 kernel then
#else
      return avx2 && __builtin_cpu_supports ("avxvnni");
#endif
    case AGC_INT8_KERNEL_AVX2:
      return avx2;
    case AGC_INT8_KERNEL_NONE:
      break;
    }
#else
  (void) kernel;
#endif
  return FALSE;
}

AgcInt8Kernel
agc_int8_kernel (void)
{
  int forced = g_atomic_int_get (&forced_kernel);
  if (forced != AGC_INT8_KERNEL_NONE)
    return forced;
  if (G_UNLIKELY (g_atomic_int_get (&best_kernel) < 0))
    {
      AgcInt8Kernel best = AGC_INT8_KERNEL_NONE;
      if (cpu_has (AGC_INT8_KERNEL_AVX512VNNI))
        best = AGC_INT8_KERNEL_AVX512VNNI;
      else if (cpu_has (AGC_INT8_KERNEL_AVXVNNI))
        best = AGC_INT8_KERNEL_AVXVNNI;
      else if (cpu_has (AGC_INT8_KERNEL_AVX2))
        best = AGC_INT8_KERNEL_AVX2;
      g_atomic_int_set (&best_kernel, best);
    }
  return g_atomic_int_get (&best_kernel);
}

gboolean
agc_int8_force_kernel (AgcInt8Kernel kernel)
{
  if (kernel != AGC_INT8_KERNEL_NONE && !cpu_has (kernel))
    return FALSE;
  g_atomic_int_set (&forced_kernel, kernel);
  return TRUE;
}

gboolean
agc_int8_available (void)
{
  return agc_int8_kernel () != AGC_INT8_KERNEL_NONE;
}

int
agc_int8_activation_max (void)
{
  return agc_int8_kernel () == AGC_INT8_KERNEL_AVX2 ? 127 : 255;
}

/* ---- quantisation ---- */

void
agc_int8_row_params (float *scale, float *inv_scale, gint32 *zero, float lo, float hi, int max_q)
{
  // in double: hi - lo of two huge values of opposite sign overflows float
  float s = (float) (((double) hi - (double) lo) / max_q);
  if (!(s >= FLT_MIN)) // zero, denormal or NaN: a row of zeros
    {
      *scale = *inv_scale = 0.0f;
      *zero = 0;
      return;
    }
  float inv = 1.0f / s;
  *scale = s;
  *inv_scale = inv;
  *zero = CLAMP ((gint32) lrintf (-lo * inv), 0, max_q);
}

/* wq[k_pad] = the quantised row w[n_in] (zeros after n_in); returns sw. */
static float
quantize_weight_row (gint8 *wq, const float *w, int n_in, int k_pad)
{
  float amax = 0.0f;
  for (int k = 0; k < n_in; k++)
    amax = fmaxf (amax, fabsf (w[k]));
  float s = amax / 127.0f;
  float inv = s >= FLT_MIN ? 1.0f / s : 0.0f;
  for (int k = 0; k < n_in; k++)
    wq[k] = (gint8) CLAMP (lrintf (w[k] * inv), -127, 127);
  memset (wq + n_in, 0, k_pad - n_in);
  return s >= FLT_MIN ? s : 0.0f;
}

AgcInt8Matrix *
agc_int8_matrix_new (const float *w, int n_out, int n_in, GError **error)
{
  g_return_val_if_fail (w != NULL && n_out > 0 && n_in > 0, NULL);
  if (n_in > AGC_INT8_MAX_IN)
    {
      g_set_error (error, AGC_ERROR, AGC_ERROR_UNSUPPORTED,
                   "int8 GEMM: %d inputs per row exceed the limit of %d", n_in, AGC_INT8_MAX_IN);
      return NULL;
    }
  int n_pad = (n_out + AGC_INT8_GROUP - 1) / AGC_INT8_GROUP * AGC_INT8_GROUP;
  int k_pad = (n_in + 3) / 4 * 4;
  size_t packed_bytes = (size_t) n_pad * k_pad; // a multiple of 128
  size_t bytes = packed_bytes + (size_t) n_pad * (sizeof (float) + sizeof (gint32));
  // the struct, then (64-byte aligned) the packed weights, scales and sums: one block, one free
  size_t header = (sizeof (AgcInt8Matrix) + 63) / 64 * 64;
  void *block = NULL;
  g_autofree gint8 *row = g_try_malloc (k_pad);
  if (row == NULL || posix_memalign (&block, 64, header + bytes) != 0)
    {
      g_set_error (error, AGC_ERROR, AGC_ERROR_INPUT,
                   "int8 GEMM: cannot allocate %zu MB for a %d x %d weight", bytes >> 20, n_out,
                   n_in);
      return NULL;
    }
  memset (block, 0, header + bytes); // the padding columns: zero weights, scales and sums
  AgcInt8Matrix *m = block;
  m->n_out = n_out;
  m->n_in = n_in;
  m->n_pad = n_pad;
  m->k_pad = k_pad;
  m->packed = (gint8 *) block + header;
  m->scale = (float *) (m->packed + packed_bytes);
  m->colsum = (gint32 *) (m->scale + n_pad);

  int k4 = k_pad / 4;
  for (int n = 0; n < n_out; n++)
    {
      m->scale[n] = quantize_weight_row (row, w + (size_t) n * n_in, n_in, k_pad);
      gint32 sum = 0;
      gint8 *dst = m->packed + (size_t) (n / AGC_INT8_GROUP) * k4 * AGC_INT8_GROUP * 4
                   + (n % AGC_INT8_GROUP) * 4;
      for (int k = 0; k < k_pad; k++)
        {
          sum += row[k];
          dst[(size_t) (k / 4) * AGC_INT8_GROUP * 4 + k % 4] = row[k];
        }
      m->colsum[n] = sum;
    }
  return m;
}

void
agc_int8_matrix_free (AgcInt8Matrix *m)
{
  free (m); // its weights with it (agc_int8_matrix_new)
}

int
agc_int8_matrix_n_out (const AgcInt8Matrix *m)
{
  return m->n_out;
}

int
agc_int8_matrix_n_in (const AgcInt8Matrix *m)
{
  return m->n_in;
}

/* ---- the product ---- */

/* The calling thread's buffer for the quantised activations, kept between
 * calls so that the hot path does not allocate. */
static GPrivate scratch_key = G_PRIVATE_INIT (agc_thread_scratch_free);

typedef struct
{
  AgcInt8Job job;
  AgcInt8Kernel kernel;
  const float *a;
  int lda, n_in, k_pad, rows;
  guint8 *aq;
  float *a_scale;
  gint32 *a_zero;
  int n_groups; // work items per row block
} Call;

static void
quantize_rows (void *ctx, int begin, int end, int thread)
{
  (void) thread;
  Call *call = ctx;
  int max_q = call->kernel == AGC_INT8_KERNEL_AVX2 ? 127 : 255;
  for (int r = begin; r < end; r++)
    {
      guint8 *out = call->aq + (size_t) r * call->job.lda_q;
      const float *a = call->a + (size_t) r * call->lda;
      if (call->kernel == AGC_INT8_KERNEL_AVX512VNNI)
        agc_int8_avx512_quantize_row (out, &call->a_scale[r], &call->a_zero[r], a, call->n_in,
                                      max_q);
      else
        agc_int8_avx2_quantize_row (out, &call->a_scale[r], &call->a_zero[r], a, call->n_in,
                                    max_q);
      memset (out + call->n_in, 0, call->k_pad - call->n_in);
    }
}

static void
multiply_blocks (void *ctx, int begin, int end, int thread)
{
  (void) thread;
  Call *call = ctx;
  for (int i = begin; i < end; i++)
    {
      int row0 = i / call->n_groups * ROW_BLOCK;
      int n_rows = MIN (ROW_BLOCK, call->rows - row0);
      int col0 = i % call->n_groups * AGC_INT8_GROUP;
      switch (call->kernel)
        {
        case AGC_INT8_KERNEL_AVX512VNNI:
          agc_int8_avx512vnni_block (&call->job, row0, n_rows, col0, AGC_INT8_GROUP);
          break;
        case AGC_INT8_KERNEL_AVXVNNI:
          agc_int8_avxvnni_block (&call->job, row0, n_rows, col0, AGC_INT8_GROUP);
          break;
        case AGC_INT8_KERNEL_AVX2:
          agc_int8_avx2_block (&call->job, row0, n_rows, col0, AGC_INT8_GROUP);
          break;
        case AGC_INT8_KERNEL_NONE:
          g_assert_not_reached ();
        }
    }
}

gboolean
agc_gemm_int8 (float *c, int ldc, const float *a, int lda, const AgcInt8Matrix *w, int rows,
               float beta, GError **error)
{
  g_return_val_if_fail (c != NULL && a != NULL && w != NULL, FALSE);
  g_return_val_if_fail (ldc >= w->n_out && lda >= w->n_in && (beta == 0.0f || beta == 1.0f),
                        FALSE);
  AgcInt8Kernel kernel = agc_int8_kernel ();
  g_return_val_if_fail (kernel != AGC_INT8_KERNEL_NONE, FALSE);
  if (rows <= 0)
    return TRUE;

  int lda_q = (w->k_pad + 63) / 64 * 64;
  size_t aq_bytes = (size_t) rows * lda_q;
  size_t bytes = aq_bytes + (size_t) rows * (sizeof (float) + sizeof (gint32));
  guint8 *buf = agc_thread_scratch (&scratch_key, bytes);
  if (buf == NULL)
    {
      g_set_error (error, AGC_ERROR, AGC_ERROR_INPUT,
                   "cannot allocate %zu MB for the quantised activations of %d rows",
                   (bytes + (1 << 20) - 1) >> 20, rows);
      return FALSE;
    }
  Call call = {
    .job = {
      .c = c,
      .ldc = ldc,
      .beta = beta,
      .aq = buf,
      .lda_q = lda_q,
      .a_scale = (float *) (buf + aq_bytes),
      .a_zero = (gint32 *) (buf + aq_bytes) + rows,
      .wq = w->packed,
      .w_scale = w->scale,
      .w_colsum = w->colsum,
      .k4 = w->k_pad / 4,
      .n_out = w->n_out,
    },
    .kernel = kernel,
    .a = a,
    .lda = lda,
    .n_in = w->n_in,
    .k_pad = w->k_pad,
    .rows = rows,
    .aq = buf,
    .a_scale = (float *) (buf + aq_bytes),
    .a_zero = (gint32 *) (buf + aq_bytes) + rows,
    .n_groups = w->n_pad / AGC_INT8_GROUP,
  };
  agc_parallel_for (rows, MAX (1, QUANT_GRAIN_FLOATS / w->n_in), quantize_rows, &call);
  int n_row_blocks = (rows + ROW_BLOCK - 1) / ROW_BLOCK;
  agc_parallel_for (n_row_blocks * call.n_groups, 1, multiply_blocks, &call);
  return TRUE;
}
