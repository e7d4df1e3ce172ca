/* gemm-int8.h — an opt-in 8-bit integer GEMM for the encoders' linear
 * layers: c = beta c + a @ w^T with w in PyTorch's [out, in] layout.
 *
 * Weights are quantised once, symmetrically per output row:
 *   sw[n] = max_k |w[n,k]| / 127,  wq[n,k] = clamp(rint(w[n,k] / sw[n]), -127, 127)
 * (rint: round half to even; the division is a multiplication by the float
 * 1 / sw[n]).  Activations are quantised at every call, asymmetrically per
 * row, to 0 .. L (L = agc_int8_activation_max (): 255, or 127 on CPUs
 * without VNNI, whose vpmaddubsw would saturate int16 with 8-bit values):
 *   lo = min(0, min_k a[k]),  hi = max(0, max_k a[k])
 *   sa = (float) ((hi - lo) / L in double),  inv = 1.0f / sa
 *   za = clamp(rint(-lo * inv), 0, L),  aq[k] = clamp(rint(a[k] * inv) + za, 0, L)
 * (sa below FLT_MIN: the row quantises to zeros with sa = 0).  Then
 *   c[r,n] = (float) (sum_k aq[k] wq[n,k] - za sum_k wq[n,k]) * (sa[r] * sw[n])
 * with the sum in exact int32 arithmetic (n_in <= AGC_INT8_MAX_IN).
 *
 * Kernels: AVX-512 VNNI (vpdpbusd on zmm), AVX-VNNI (ymm), or plain AVX2
 * (vpmaddubsw + vpmaddwd); chosen at run time, no -march flags needed.
 * A matrix is packed independently of the kernel. */
#pragma once

#include <glib.h>

typedef struct AgcInt8Matrix AgcInt8Matrix;

/* TRUE when this CPU has a kernel (AVX512-VNNI, AVX-VNNI or AVX2). */
gboolean agc_int8_available (void);

/* Quantises w[n_out, n_in] (float32, rows contiguous) per output row and
 * packs it for the kernels.  NULL with error set when memory cannot be
 * allocated or n_in > AGC_INT8_MAX_IN.  Any positive sizes (padded inside). */
AgcInt8Matrix *agc_int8_matrix_new (const float *w, int n_out, int n_in, GError **error);
void agc_int8_matrix_free (AgcInt8Matrix *m);
int agc_int8_matrix_n_out (const AgcInt8Matrix *m);
int agc_int8_matrix_n_in (const AgcInt8Matrix *m);

/* c[rows, n_out] (row stride ldc) = beta c + a[rows, n_in] (row stride lda)
 * @ dequant(w)^T; beta is 0 (c is not read) or 1.  Split over the pool
 * (threads.h): call it outside any parallel region.  Only valid when
 * agc_int8_available ().  FALSE with error set when the quantised
 * activations (rows x n_in bytes, kept per thread) cannot be allocated. */
gboolean agc_gemm_int8 (float *c, int ldc, const float *a, int lda, const AgcInt8Matrix *w,
                        int rows, float beta, GError **error);

/* The int32 accumulator holds 255 * 127 * n_in exactly up to here. */
#define AGC_INT8_MAX_IN 65536

/* ---- for tests and benchmarks ---- */

typedef enum
{
  AGC_INT8_KERNEL_NONE,
  AGC_INT8_KERNEL_AVX2,       /* vpmaddubsw + vpmaddwd, 7-bit activations */
  AGC_INT8_KERNEL_AVXVNNI,    /* vpdpbusd on ymm */
  AGC_INT8_KERNEL_AVX512VNNI, /* vpdpbusd on zmm */
} AgcInt8Kernel;

/* The kernel in use. */
AgcInt8Kernel agc_int8_kernel (void);
/* Uses kernel from now on (NONE: back to the best one).  FALSE, and no
 * change, when this CPU cannot run it.  Not while a GEMM runs. */
gboolean agc_int8_force_kernel (AgcInt8Kernel kernel);
/* L of the activation quantisation for the kernel in use: 255 or 127. */
int agc_int8_activation_max (void);

/* ---- between gemm-int8.c and the kernel files ---- */

/* Output columns per packed group: the packed weights are
 * [n_pad / GROUP][k_pad / 4][GROUP columns][4 consecutive k] int8, so that
 * one 64-byte load gives 16 columns x 4 k, as vpdpbusd wants them. */
#define AGC_INT8_GROUP 32

typedef struct
{
  float *c;
  int ldc;
  float beta;
  const guint8 *aq;       // [rows][lda_q] quantised activations, k padded with zeros
  int lda_q;              // bytes, a multiple of 64
  const float *a_scale;   // [rows] sa
  const gint32 *a_zero;   // [rows] za
  const gint8 *wq;        // packed weights, see AGC_INT8_GROUP
  const float *w_scale;   // [n_pad] sw, 0 in the padding
  const gint32 *w_colsum; // [n_pad] sum_k wq[n,k]
  int k4;                 // k_pad / 4
  int n_out;              // valid columns of c
} AgcInt8Job;

/* c[row0 .. row0+n_rows, col0 .. col0+n_cols] of a job; col0 and n_cols
 * multiples of AGC_INT8_GROUP (columns from n_out on are not written). */
void agc_int8_avx512vnni_block (const AgcInt8Job *job, int row0, int n_rows, int col0, int n_cols);
void agc_int8_avxvnni_block (const AgcInt8Job *job, int row0, int n_rows, int col0, int n_cols);
void agc_int8_avx2_block (const AgcInt8Job *job, int row0, int n_rows, int col0, int n_cols);

/* sa, 1 / sa and za of a row whose min and max are lo and hi (the
 * definition above; shared so that every kernel quantises alike). */
void agc_int8_row_params (float *scale, float *inv_scale, gint32 *zero, float lo, float hi,
                          int max_q);

/* Quantises a[n] as described above into out[n] (0 .. max_q), returns sa
 * and za.  Bit-identical to the definition on every kernel. */
void agc_int8_avx512_quantize_row (guint8 *out, float *scale, gint32 *zero, const float *a, int n,
                                   int max_q);
void agc_int8_avx2_quantize_row (guint8 *out, float *scale, gint32 *zero, const float *a, int n,
                                 int max_q);
