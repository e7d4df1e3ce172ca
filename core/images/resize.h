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

/* Tests: the passes used at most: 0 the plain loops, 1 AVX2, 2 AVX-512 (the
 * default).  Returns what the CPU has, 0..2.  Process-wide. */
int agc_resize_limit_passes (int limit);
