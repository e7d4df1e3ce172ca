/* resample-kernel.h — the fixed-point weights of one resampling pass
 * (resize.c) and the vectorised passes that apply them (resize-avx2.c,
 * resize-avx512.c), which give the same sums as the plain loops: integer
 * sums do not depend on the order of the additions. */
#pragma once

#include <glib.h>
#include <stdint.h>

/* 32-bit sums: 8 bits of pixel, 2 bits of headroom for the negative lobes. */
#define AGC_RESAMPLE_PRECISION_BITS (32 - 8 - 2)

/* Output i reads inputs first[i] .. first[i] + count[i] - 1 with weights
 * weights[i * n_taps + j]; n_taps is a multiple of 4 and the weights past
 * count[i] are 0, so the vector loops may run over whole groups of 4 taps. */
typedef struct
{
  int n_taps;
  int *first;       // [n_out]
  int *count;       // [n_out]
  int32_t *weights; // [n_out, n_taps]
} AgcResampleKernel;

/* One row of the horizontal pass: out[dst_w, 3] from row[.., 3]; no byte at
 * or after end (the end of the source image) is read. */
typedef void (*AgcResampleRowFn) (guint8 *out, const guint8 *row, const guint8 *end, int dst_w,
                                  const AgcResampleKernel *k);
/* One row of the vertical pass: out[x] = sum_j rows[j * stride + x] * weights[j],
 * x < stride, j < count. */
typedef void (*AgcResampleColumnFn) (guint8 *out, const guint8 *rows, gsize stride, int count,
                                     const int32_t *weights);

void agc_resample_row_avx2 (guint8 *out, const guint8 *row, const guint8 *end, int dst_w,
                            const AgcResampleKernel *k);
void agc_resample_column_avx2 (guint8 *out, const guint8 *rows, gsize stride, int count,
                               const int32_t *weights);
void agc_resample_row_avx512 (guint8 *out, const guint8 *row, const guint8 *end, int dst_w,
                              const AgcResampleKernel *k);
void agc_resample_column_avx512 (guint8 *out, const guint8 *rows, gsize stride, int count,
                                 const int32_t *weights);

/* Fixed-point sum -> 8 bits.  Clipping before the shift keeps the shift of a
 * negative number (implementation-defined) out of the way; the result is the
 * same as Pillow's floor-then-clip. */
static inline guint8
agc_resample_clip8 (int32_t sum)
{
  if (sum < 0)
    return 0;
  int32_t v = sum >> AGC_RESAMPLE_PRECISION_BITS;
  return v > 255 ? 255 : (guint8) v;
}
