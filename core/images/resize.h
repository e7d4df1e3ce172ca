/* resize.h — image resampling that reproduces Pillow's Image.resize
 * bit for bit on 8-bit RGB: separable convolution, horizontal pass first,
 * filter support widened by the scale factor when downscaling
 * (antialiasing), fixed-point coefficients and rounding as Pillow does. */
#pragma once

#include <glib.h>

typedef enum
{
  AGC_FILTER_BILINEAR, /* PIL.Image.BILINEAR (2): triangle filter, support 1 */
  AGC_FILTER_BICUBIC,  /* PIL.Image.BICUBIC (3): cubic, a = -0.5, support 2 */
} AgcFilter;

/* src[src_h, src_w, 3] -> dst[dst_h, dst_w, 3]; all sizes positive.
 * Returns FALSE only when memory for the intermediate image cannot be had. */
gboolean agc_resize_rgb8 (const guint8 *src, int src_w, int src_h,
                          guint8 *dst, int dst_w, int dst_h, AgcFilter filter);

/* The same resize fed one source row at a time, top to bottom, as a decoder
 * delivers them: it keeps only the horizontally resampled rows the vertical
 * pass reads ([rows, dst_w, 3]), never the source image.  dst[dst_h, dst_w, 3]
 * must live until agc_resize_rows_finish.  NULL when memory runs out. */
typedef struct AgcResizeRows AgcResizeRows;
AgcResizeRows *agc_resize_rows_new (guint8 *dst, int src_w, int src_h, int dst_w, int dst_h,
                                    AgcFilter filter);
/* The next source row (0, 1, ...): row[src_w * 3], of which readable bytes
 * (at least src_w * 3) may be read (vector loads run on past the row). */
void agc_resize_rows_push (AgcResizeRows *r, const guint8 *row, gsize readable);
/* After every row (at least up to the last one the vertical pass reads): writes dst. */
void agc_resize_rows_finish (AgcResizeRows *r);
void agc_resize_rows_free (AgcResizeRows *r);

/* Tests: the passes used at most: 0 the plain loops, 1 AVX2, 2 AVX-512 (the
 * default).  Returns what the CPU has, 0..2.  Process-wide. */
int agc_resize_limit_passes (int limit);
