/* resize.c — Pillow-exact resampling of 8-bit RGB (Image.resize with
 * BILINEAR or BICUBIC, no box, no reducing_gap).
 *
 * The facts that make the result bit-identical to Pillow (libImaging/Resample.c):
 * - output pixel i of n_out covers input centre (i + 0.5) * scale, scale = n_in / n_out;
 * - when downscaling the filter is stretched by scale (antialiasing), so the
 *   support grows to support * scale and tap positions are divided by scale;
 * - taps run over [(int)(centre - support + 0.5), (int)(centre + support + 0.5))
 *   clamped to the image; weights are normalised to sum 1 in double precision,
 *   then turned into fixed point with 22 fraction bits, rounding half away from 0;
 * - sums start at 0.5 (1 << 21), are shifted right by 22 and clipped to 0..255;
 * - the horizontal pass runs first, over only the rows the vertical pass reads,
 *   and its 8-bit output is the vertical pass's input (so it can run on each
 *   row as a decoder delivers it: AgcResizeRows);
 * - a pass whose size does not change is skipped (it would be the identity).
 */
#include "images/resize.h"

#include "images/resample-kernel.h"

#include <math.h>
#include <string.h>

#define PRECISION_BITS AGC_RESAMPLE_PRECISION_BITS

typedef AgcResampleKernel Kernel;

/* The passes' row functions: the plain loops below or their AVX2/AVX-512
 * versions (resize-avx2.c, resize-avx512.c), chosen once from the CPU. */
typedef struct
{
  AgcResampleRowFn row;
  AgcResampleColumnFn column;
} Passes;

static int max_level = 2; // tests: agc_resize_limit_passes

static double
bilinear_filter (double x)
{
  x = fabs (x);
  return x < 1.0 ? 1.0 - x : 0.0;
}

/* Keys' cubic convolution with a = -0.5.  The expressions are evaluated in the
 * same order as Pillow's so the doubles round the same way. */
static double
bicubic_filter (double x)
{
  const double a = -0.5;
  x = fabs (x);
  if (x < 1.0)
    return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
  if (x < 2.0)
    return (((x - 5) * x + 8) * x - 4) * a;
  return 0.0;
}

static void
kernel_clear (Kernel *k)
{
  g_free (k->first);
  g_free (k->count);
  g_free (k->weights);
  memset (k, 0, sizeof *k);
}

static gboolean
kernel_init (Kernel *k, int n_in, int n_out, AgcFilter filter)
{
  double (*filter_fn) (double) = filter == AGC_FILTER_BILINEAR ? bilinear_filter : bicubic_filter;
  double filter_support = filter == AGC_FILTER_BILINEAR ? 1.0 : 2.0;

  double scale = (double) n_in / n_out;
  double filter_scale = scale < 1.0 ? 1.0 : scale;
  double support = filter_support * filter_scale;
  double inv_filter_scale = 1.0 / filter_scale;

  memset (k, 0, sizeof *k);
  // rounded up to whole groups of 4 taps for the vector loops
  k->n_taps = ((int) ceil (support) * 2 + 1 + 3) / 4 * 4;
  k->first = g_try_new (int, n_out);
  k->count = g_try_new (int, n_out);
  k->weights = g_try_new0 (int32_t, (gsize) n_out * (gsize) k->n_taps);
  double *w = g_try_new (double, k->n_taps);
  if (k->first == NULL || k->count == NULL || k->weights == NULL || w == NULL)
    {
      g_free (w);
      kernel_clear (k);
      return FALSE;
    }

  for (int i = 0; i < n_out; i++)
    {
      double center = (i + 0.5) * scale;
      int lo = (int) (center - support + 0.5);
      int hi = (int) (center + support + 0.5);
      lo = MAX (lo, 0);
      hi = MIN (hi, n_in);
      int count = hi - lo;

      double sum = 0.0;
      for (int j = 0; j < count; j++)
        {
          w[j] = filter_fn ((j + lo - center + 0.5) * inv_filter_scale);
          sum += w[j];
        }
      int32_t *out = k->weights + (gsize) i * (gsize) k->n_taps;
      for (int j = 0; j < count; j++)
        {
          double v = sum != 0.0 ? w[j] / sum : w[j];
          out[j] = (int32_t) (v < 0 ? v * (1 << PRECISION_BITS) - 0.5
                                    : v * (1 << PRECISION_BITS) + 0.5);
        }
      k->first[i] = lo;
      k->count[i] = count;
    }
  g_free (w);
  return TRUE;
}

#define clip8 agc_resample_clip8

static void
row_scalar (guint8 *out, const guint8 *row, const guint8 *end, int dst_w, const Kernel *k)
{
  (void) end;
  for (int x = 0; x < dst_w; x++)
    {
      const int32_t *w = k->weights + (gsize) x * (gsize) k->n_taps;
      const guint8 *p = row + (gsize) k->first[x] * 3;
      int32_t s0 = 1 << (PRECISION_BITS - 1), s1 = s0, s2 = s0;
      for (int j = 0; j < k->count[x]; j++)
        {
          s0 += p[j * 3 + 0] * w[j];
          s1 += p[j * 3 + 1] * w[j];
          s2 += p[j * 3 + 2] * w[j];
        }
      out[x * 3 + 0] = clip8 (s0);
      out[x * 3 + 1] = clip8 (s1);
      out[x * 3 + 2] = clip8 (s2);
    }
}

/* Sums a whole row at a time so memory is read in order; acc[stride]
 * lives on the stack in chunks. */
static void
column_scalar (guint8 *out, const guint8 *rows, gsize stride, int count, const int32_t *w)
{
  enum { CHUNK = 1024 };
  int32_t acc[CHUNK];
  for (gsize x0 = 0; x0 < stride; x0 += CHUNK)
    {
      gsize n = MIN (stride - x0, (gsize) CHUNK);
      for (gsize x = 0; x < n; x++)
        acc[x] = 1 << (PRECISION_BITS - 1);
      for (int j = 0; j < count; j++)
        {
          const guint8 *row = rows + (gsize) j * stride + x0;
          for (gsize x = 0; x < n; x++)
            acc[x] += row[x] * w[j];
        }
      for (gsize x = 0; x < n; x++)
        out[x0 + x] = clip8 (acc[x]);
    }
}

static Passes
passes (void)
{
  static const Passes scalar = { row_scalar, column_scalar };
  static int level = -1; // 0 plain, 1 AVX2, 2 AVX-512: checked once
  if (G_UNLIKELY (g_atomic_int_get (&level) < 0))
    {
      int found = 0;
#if defined(__GNUC__) && defined(__x86_64__)
      __builtin_cpu_init ();
      found = __builtin_cpu_supports ("avx512f") ? 2 : __builtin_cpu_supports ("avx2") ? 1 : 0;
#endif
      g_atomic_int_set (&level, found);
    }
#if defined(__GNUC__) && defined(__x86_64__)
  switch (MIN (g_atomic_int_get (&level), g_atomic_int_get (&max_level)))
    {
    case 2:
      return (Passes) { agc_resample_row_avx512, agc_resample_column_avx512 };
    case 1:
      return (Passes) { agc_resample_row_avx2, agc_resample_column_avx2 };
    }
#endif
  return scalar;
}

int
agc_resize_limit_passes (int limit)
{
  g_atomic_int_set (&max_level, 2);
  Passes p = passes ();
  int found = p.row == row_scalar ? 0 : p.row == agc_resample_row_avx2 ? 1 : 2;
  g_atomic_int_set (&max_level, limit);
  return found;
}

/* dst[dst_h, width, 3] from src[.., width, 3]; the kernel's row indices are
 * relative to src_row0 (the first row kept by the horizontal pass). */
static void
resample_vertical (guint8 *dst, const guint8 *src, int src_row0, int width, int dst_h,
                   const Kernel *k)
{
  AgcResampleColumnFn column_fn = passes ().column;
  gsize stride = (gsize) width * 3;
  for (int y = 0; y < dst_h; y++)
    column_fn (dst + (gsize) y * stride, src + (gsize) (k->first[y] - src_row0) * stride, stride,
               k->count[y], k->weights + (gsize) y * (gsize) k->n_taps);
}

struct AgcResizeRows
{
  guint8 *dst;       /* [dst_h, dst_w, 3] */
  int src_w, src_h, dst_w, dst_h;
  gboolean need_horizontal, need_vertical;
  Kernel kh, kv;
  int row0, row1;    /* the source rows the vertical pass reads */
  int next_row;      /* the source row the next push brings */
  guint8 *mid;       /* the vertical pass's input: rows row0 .. row1 - 1 (dst without it) */
  guint8 *tmp;       /* mid when allocated here */
};

AgcResizeRows *
agc_resize_rows_new (guint8 *dst, int src_w, int src_h, int dst_w, int dst_h, AgcFilter filter)
{
  g_return_val_if_fail (dst != NULL, NULL);
  g_return_val_if_fail (src_w > 0 && src_h > 0 && dst_w > 0 && dst_h > 0, NULL);
  g_return_val_if_fail (filter == AGC_FILTER_BILINEAR || filter == AGC_FILTER_BICUBIC, NULL);

  AgcResizeRows *r = g_new0 (AgcResizeRows, 1);
  *r = (AgcResizeRows) { .dst = dst, .src_w = src_w, .src_h = src_h, .dst_w = dst_w,
                         .dst_h = dst_h, .need_horizontal = dst_w != src_w,
                         .need_vertical = dst_h != src_h, .row1 = src_h, .mid = dst };
  if (r->need_vertical)
    {
      if (!kernel_init (&r->kv, src_h, dst_h, filter))
        goto fail;
      r->row0 = r->kv.first[0];
      r->row1 = r->kv.first[dst_h - 1] + r->kv.count[dst_h - 1];
      /* rows [row0, row1) of the horizontal pass's (or the source's) width */
      r->mid = r->tmp = g_try_malloc_n ((gsize) (r->row1 - r->row0) * (gsize) dst_w, 3);
      if (r->tmp == NULL)
        goto fail;
    }
  if (r->need_horizontal && !kernel_init (&r->kh, src_w, dst_w, filter))
    goto fail;
  return r;

fail:
  agc_resize_rows_free (r);
  return NULL;
}

void
agc_resize_rows_push (AgcResizeRows *r, const guint8 *row, gsize readable)
{
  int y = r->next_row++;
  if (y < r->row0 || y >= r->row1)
    return;
  guint8 *out = r->mid + (gsize) (y - r->row0) * (gsize) r->dst_w * 3;
  if (r->need_horizontal)
    passes ().row (out, row, row + readable, r->dst_w, &r->kh);
  else
    memcpy (out, row, (gsize) r->src_w * 3);
}

void
agc_resize_rows_finish (AgcResizeRows *r)
{
  g_return_if_fail (r->next_row >= r->row1);
  if (r->need_vertical)
    resample_vertical (r->dst, r->mid, r->row0, r->dst_w, r->dst_h, &r->kv);
}

void
agc_resize_rows_free (AgcResizeRows *r)
{
  if (r == NULL)
    return;
  g_free (r->tmp);
  kernel_clear (&r->kh);
  kernel_clear (&r->kv);
  g_free (r);
}

gboolean
agc_resize_rgb8 (const guint8 *src, int src_w, int src_h,
                 guint8 *dst, int dst_w, int dst_h, AgcFilter filter)
{
  g_return_val_if_fail (src != NULL && dst != NULL, FALSE);
  AgcResizeRows *r = agc_resize_rows_new (dst, src_w, src_h, dst_w, dst_h, filter);
  if (r == NULL)
    return FALSE;
  /* a row's vector loads may run on into the next rows, up to the image's end */
  gsize stride = (gsize) src_w * 3, size = stride * (gsize) src_h;
  for (int y = 0; y < r->row1; y++)
    agc_resize_rows_push (r, src + y * stride, size - y * stride);
  agc_resize_rows_finish (r);
  agc_resize_rows_free (r);
  return TRUE;
}
