/* gemm-packed.c — packing weights into panels, and the loop around the
 * register-tile kernels (gemm-kernels.h).
 *
 * Blocking: k in slices of KC so that a panel slice (48 KB) and a tile of A
 * (12 rows x KC, read in place) stay in L1/L2 while a tile is computed;
 * slices of 384 rather than 256 measured 2-3 % faster (fewer passes over
 * each tile of C; the kernel reads only 128 bytes of panel per 24 FMAs, which
 * L2 keeps up with where L1 is smaller).  The pool's threads take groups of
 * panels (output columns), each running every row of A against its panels,
 * so no two threads write the same part of C.  Rows are cut into tiles of
 * nearly equal height (50 = 5 x 10, not 4 x 12 + 2), because a short tile
 * wastes most of the kernel's FMA slots.
 *
 * A tile broadcasts from 12 rows of A at once.  Where A's row stride is a
 * multiple of 128 floats (768, 2304, 3072: every ViT-B activation) those
 * rows fall into at most 8 of L1's 64 sets (3072: all into one) and evict
 * each other and the panel; such an A is first copied to a stride one cache
 * line longer (odd in lines: 12 rows, 12 sets).  The MLP's second product
 * (3072 -> 768, 400 rows) ran at 58 % of one core's FMA peak on a stride of
 * 3072 and 80 % on 3088 (74 % with the copy counted).  The values and
 * their order are unchanged. */
#include "kernels/gemm-packed.h"

#include "agriclip.h"

#include "kernels/gemm-kernels.h"
#include "kernels/ops.h"
#include "kernels/threads.h"
#include "support/huge-alloc.h"

#include <stdlib.h>
#include <string.h>

enum
{
  KC = 384,                 // k per slice
  PANELS_PER_ITEM = 4,      // 128 columns per work item: small enough to balance
  FRONT_TO_BACK_TILES = 16, // up to this many tiles, each panel is read once
  TILES_PER_GROUP = 8,      // else rows of A per pass over a panel: 8 x 12 x KC floats
  MIN_FLOP_PER_ITEM = 1 << 21,
  ALIASING_STRIDE = 128,    // floats: row strides that are multiples of this are copied
  MIN_ROWS_TO_COPY = 8,     // fewer rows share few sets anyway
};

static GPrivate copy_key = G_PRIVATE_INIT (agc_thread_scratch_free);

typedef enum
{
  ISA_UNCHECKED = -1,
  ISA_NONE,
  ISA_AVX2,
  ISA_AVX512,
} Isa;

static int isa = ISA_UNCHECKED;
static int limit_to_avx2;

static Isa
kernel_isa (void)
{
  if (G_UNLIKELY (g_atomic_int_get (&isa) == ISA_UNCHECKED))
    {
      Isa found = ISA_NONE;
#if defined(__GNUC__) && defined(__x86_64__)
      __builtin_cpu_init ();
      if (__builtin_cpu_supports ("avx512f"))
        found = ISA_AVX512;
      else if (__builtin_cpu_supports ("avx2") && __builtin_cpu_supports ("fma"))
        found = ISA_AVX2;
#endif
      g_atomic_int_set (&isa, found);
    }
  int found = g_atomic_int_get (&isa);
  return found == ISA_AVX512 && g_atomic_int_get (&limit_to_avx2) ? ISA_AVX2 : found;
}

void
agc_packed_gemm_limit_to_avx2 (gboolean limit)
{
  g_atomic_int_set (&limit_to_avx2, limit != FALSE);
}

gboolean
agc_packed_gemm_available (void)
{
  // agc_ops_force_scalar () (tests) also turns these kernels off
  return kernel_isa () != ISA_NONE && agc_ops_simd ();
}

size_t
agc_packed_floats (int n_out, int n_in)
{
  size_t n_panels = (size_t) (n_out + AGC_PANEL_WIDTH - 1) / AGC_PANEL_WIDTH;
  return n_panels * n_in * AGC_PANEL_WIDTH;
}

/* ---- packing -------------------------------------------------------------- */

typedef struct
{
  float *panels;
  const AgcParam *const *parts;
  const int *rows;
  int n_parts, n_out, n_in;
} Pack;

// the float32 values of weight row r (of all parts stacked) into out[n_in]
static void
convert_row (float *out, const Pack *p, int r)
{
  for (int i = 0; i < p->n_parts; r -= p->rows[i], i++)
    if (r < p->rows[i])
      {
        agc_param_convert (out, p->parts[i], (size_t) r * p->n_in, p->n_in);
        return;
      }
}

static void
pack_panels (void *ctx, int begin, int end, int thread)
{
  (void) thread;
  const Pack *p = ctx;
  // the panel's 32 rows converted to float32, then transposed
  float *rows = g_new (float, (size_t) AGC_PANEL_WIDTH * p->n_in);
  for (int panel = begin; panel < end; panel++)
    {
      int first = panel * AGC_PANEL_WIDTH;
      for (int j = 0; j < AGC_PANEL_WIDTH; j++)
        if (first + j < p->n_out)
          convert_row (rows + (size_t) j * p->n_in, p, first + j);
        else
          memset (rows + (size_t) j * p->n_in, 0, p->n_in * sizeof (float));
      agc_avx2_transpose_panel (p->panels + (size_t) panel * p->n_in * AGC_PANEL_WIDTH, rows,
                                p->n_in, p->n_in);
    }
  g_free (rows);
}

gboolean
agc_packed_matrix_init (AgcPackedMatrix *m, float *panels, const AgcParam *const *parts,
                        const int *rows, int n_parts, int n_in, GError **error)
{
  g_return_val_if_fail (m != NULL && parts != NULL && rows != NULL && n_in > 0, FALSE);
  g_return_val_if_fail (agc_packed_gemm_available (), FALSE);

  int n_out = 0;
  for (int i = 0; i < n_parts; i++)
    n_out += rows[i];
  *m = (AgcPackedMatrix){ .n_out = n_out, .n_in = n_in, .panels = panels };
  size_t n = agc_packed_floats (n_out, n_in);
  if (panels == NULL)
    {
      void *memory = agc_huge_alloc (MAX (n, 16) * sizeof (float));
      if (memory == NULL)
        {
          g_set_error (error, AGC_ERROR, AGC_ERROR_INPUT,
                       "cannot allocate %zu MB for a %d x %d weight matrix", n * sizeof (float) >> 20,
                       n_out, n_in);
          return FALSE;
        }
      m->panels = memory;
      m->owns_panels = TRUE;
    }
  Pack p = { .parts = parts, .rows = rows, .n_parts = n_parts, .n_out = n_out, .n_in = n_in };
  p.panels = m->panels;
  int n_panels = (n_out + AGC_PANEL_WIDTH - 1) / AGC_PANEL_WIDTH;
  agc_parallel_for (n_panels, 1, pack_panels, &p);
  return TRUE;
}

void
agc_packed_matrix_clear (AgcPackedMatrix *m)
{
  if (m->owns_panels)
    free (m->panels);
  *m = (AgcPackedMatrix){ 0 };
}

/* ---- multiplying ---------------------------------------------------------- */

typedef struct
{
  float *c;
  const float *a;
  const AgcPackedMatrix *w;
  AgcGemmEpilogue epilogue;
  int ldc, lda, rows, n_tiles, panels_per_item;
  gboolean accumulate;
  Isa isa;
} Job;

// c[tile t, panel p] (+)= a[tile t, k0 .. k0 + kc] @ panel p's slice at k0,
// where rows are cut into n_tiles tiles of nearly equal height
static inline void
tile (const Job *j, int t, int p, int k0, int kc)
{
  int base = j->rows / j->n_tiles, extra = j->rows % j->n_tiles;
  int first = t * base + MIN (t, extra), mr = base + (t < extra);
  int col = p * AGC_PANEL_WIDTH, nc = MIN (AGC_PANEL_WIDTH, j->w->n_out - col);
  float *c = j->c + (size_t) first * j->ldc + col;
  const float *a = j->a + (size_t) first * j->lda + k0;
  const float *bp = j->w->panels + ((size_t) p * j->w->n_in + k0) * AGC_PANEL_WIDTH;
  gboolean accumulate = k0 > 0 || j->accumulate;
  const float *bias = k0 == 0 && j->epilogue.bias != NULL ? j->epilogue.bias + col : NULL;
  // the activation after the last slice: ReLU in the registers (a call per
  // row cost a third of a 1x1 conv's 64-long k), the others while in L1
  gboolean last = k0 + kc == j->w->n_in;
  gboolean relu = last && j->epilogue.apply_act && j->epilogue.act == AGC_ACT_RELU;
  if (j->isa == ISA_AVX512)
    agc_avx512_gemm_tile (c, j->ldc, a, j->lda, bp, bias, kc, mr, nc, accumulate, relu);
  else
    agc_avx2_gemm_tile (c, j->ldc, a, j->lda, bp, bias, kc, mr, nc, accumulate, relu);
  if (last && j->epilogue.apply_act && !relu)
    for (int i = 0; i < mr; i++)
      agc_bias_act_forward (c + (size_t) i * j->ldc, NULL, 1, nc, j->epilogue.act);
}

static void
multiply_items (void *ctx, int begin, int end, int thread)
{
  (void) thread;
  const Job *j = ctx;
  int n_in = j->w->n_in, n_panels = (j->w->n_out + AGC_PANEL_WIDTH - 1) / AGC_PANEL_WIDTH;
  for (int item = begin; item < end; item++)
    {
      int p0 = item * j->panels_per_item, p1 = MIN (p0 + j->panels_per_item, n_panels);
      if (j->n_tiles <= FRONT_TO_BACK_TILES)
        {
          // few rows (small batches): A stays in L2 and each panel is read
          // once, front to back, the weights streaming from memory in order
          for (int p = p0; p < p1; p++)
            for (int k0 = 0; k0 < n_in; k0 += KC)
              for (int t = 0; t < j->n_tiles; t++)
                tile (j, t, p, k0, MIN (KC, n_in - k0));
          continue;
        }
      // a panel's slice (48 KB) stays close while a group of tiles of A
      // (up to 144 KB) passes from L2
      for (int k0 = 0; k0 < n_in; k0 += KC)
        for (int t0 = 0; t0 < j->n_tiles; t0 += TILES_PER_GROUP)
          for (int p = p0; p < p1; p++)
            for (int t = t0; t < MIN (t0 + TILES_PER_GROUP, j->n_tiles); t++)
              tile (j, t, p, k0, MIN (KC, n_in - k0));
    }
}

// rows cut into tiles as high as the kernel's
static Job
job_new (float *c, int ldc, const float *a, int lda, const AgcPackedMatrix *w, int rows, Isa isa)
{
  int tile_max = isa == ISA_AVX512 ? AGC_AVX512_TILE_ROWS : AGC_AVX2_TILE_ROWS;
  return (Job){ .c = c, .a = a, .w = w, .ldc = ldc, .lda = lda, .rows = rows,
                .n_tiles = (rows + tile_max - 1) / tile_max, .panels_per_item = PANELS_PER_ITEM,
                .isa = isa };
}

typedef struct
{
  float *to;
  const float *from;
  int width, ld_to, ld_from;
} CopyRows;

static void
copy_rows (void *ctx, int begin, int end, int thread)
{
  (void) thread;
  const CopyRows *r = ctx;
  for (int i = begin; i < end; i++)
    memcpy (r->to + (size_t) i * r->ld_to, r->from + (size_t) i * r->ld_from,
            r->width * sizeof (float));
}

// a[rows, n_in] (row stride *lda) copied to a stride whose rows fall into
// distinct L1 sets, when its own does not: returns the copy and sets *lda,
// or a itself (also when memory is short: slower, not wrong)
static const float *
unaliased (const float *a, int *lda, int rows, int n_in)
{
  if (*lda % ALIASING_STRIDE != 0 || rows < MIN_ROWS_TO_COPY)
    return a;
  int ld = (n_in + 15) / 16 * 16;
  ld += ld % ALIASING_STRIDE == 0 ? 16 : 0;
  float *copy = agc_thread_scratch (&copy_key, (size_t) rows * ld * sizeof (float));
  if (copy == NULL)
    return a;
  CopyRows r = { copy, a, n_in, ld, *lda };
  agc_parallel_for (rows, agc_threads_row_grain (rows, n_in), copy_rows, &r);
  *lda = ld;
  return copy;
}

void
agc_gemm_packed (float *c, int ldc, const float *a, int lda, const AgcPackedMatrix *w, int rows,
                 float beta, const AgcGemmEpilogue *epilogue)
{
  g_return_if_fail (c != NULL && a != NULL && w != NULL && rows >= 0);
  g_return_if_fail (beta == 0.0f || beta == 1.0f);
  if (rows == 0)
    return;
  Isa found = kernel_isa ();
  g_return_if_fail (found != ISA_NONE);
  int n_panels = (w->n_out + AGC_PANEL_WIDTH - 1) / AGC_PANEL_WIDTH;
  a = unaliased (a, &lda, rows, w->n_in);
  Job j = job_new (c, ldc, a, lda, w, rows, found);
  j.accumulate = beta != 0.0f;
  if (epilogue != NULL)
    j.epilogue = *epilogue;
  int n_items = (n_panels + j.panels_per_item - 1) / j.panels_per_item;
  // too little work to wake the pool: the caller runs everything
  double flop_per_item = 2.0 * rows * w->n_in * j.panels_per_item * AGC_PANEL_WIDTH;
  gboolean alone = flop_per_item * n_items < 2.0 * MIN_FLOP_PER_ITEM;
  agc_parallel_for (n_items, alone ? n_items : 1, multiply_items, &j);
}

void
agc_gemm_panels_serial (float *c, int ldc, const float *a, int lda, const float *panels,
                        int n_out, int n_in, int rows)
{
  g_return_if_fail (c != NULL && a != NULL && panels != NULL && rows >= 0);
  Isa found = kernel_isa ();
  g_return_if_fail (found != ISA_NONE);
  if (rows == 0 || n_out == 0)
    return;
  AgcPackedMatrix w = { .n_out = n_out, .n_in = n_in, .panels = (float *) panels };
  Job j = job_new (c, ldc, a, lda, &w, rows, found);
  j.panels_per_item = (n_out + AGC_PANEL_WIDTH - 1) / AGC_PANEL_WIDTH; // one item: all of it
  multiply_items (&j, 0, 1, 0);
}

void
agc_gemm_packed_serial (float *c, int ldc, const float *a, int lda, const AgcPackedMatrix *w,
                        int rows, float beta, const AgcGemmEpilogue *epilogue)
{
  g_return_if_fail (c != NULL && a != NULL && w != NULL && rows >= 0);
  g_return_if_fail (beta == 0.0f || beta == 1.0f);
  Isa found = kernel_isa ();
  g_return_if_fail (found != ISA_NONE);
  if (rows == 0 || w->n_out == 0)
    return;
  Job j = job_new (c, ldc, a, lda, w, rows, found);
  j.accumulate = beta != 0.0f;
  if (epilogue != NULL)
    j.epilogue = *epilogue;
  j.panels_per_item = (w->n_out + AGC_PANEL_WIDTH - 1) / AGC_PANEL_WIDTH; // one item: all of it
  multiply_items (&j, 0, 1, 0);
}
