/* resnet-winograd.c — stride-1 3x3 convolutions as Winograd F(4x4, 3x3) or
 * F(2x2, 3x3).
 *
 * The tiles are taken in chunks of bounded memory; each chunk in three
 * passes over the pool: the input transform of its tiles into V (36 or 16
 * matrices [tiles, c_in]), the 36 or 16 products into M ([tiles, c_out]) on the
 * packed kernels in jobs of up to JOB_ROWS tiles, and the output transform
 * with the bias and ReLU into the pixels of out that the tiles cover
 * (those past the image's edge are dropped).  The transforms run on eight
 * channels at a time in AVX2 registers: B^T and A^T's entries are small
 * integers, so each is a handful of adds and FMAs per row. */
#include "nn/resnet-winograd.h"

#include "agriclip.h"

#include "kernels/param.h"
#include "kernels/threads.h"

#include <immintrin.h>
#include <string.h>

#define TARGET __attribute__ ((target ("avx2,fma")))

enum
{
  MAX_ALPHA = 6, // input tile side: output tile side + 3 - 1
  JOB_ROWS = 192, // tiles per product job, as resnet.c's direct convolution's pixels
  // V and M of one chunk: 16 MB (or JOB_ROWS tiles), whatever the batch; 4
  // MB took layer1's 3 convs at batch 8 in 7 chunks of 3 pool regions each,
  // 25-50 % slower on 2 threads (of a loaded machine)
  CHUNK_FLOATS = 1 << 22,
  ALIASING_STRIDE = 128,  // row strides that are multiples of this share L1 sets (gemm-packed.c)
};

// G of F(2, 3) for the points 0, +-1 and infinity
static const double G2[4][3] = {
  { 1, 0, 0 },
  { 0.5, 0.5, 0.5 },
  { 0.5, -0.5, 0.5 },
  { 0, 0, 1 },
};

// G of F(4, 3) for the points 0, +-1, +-2 and infinity
static const double G4[6][3] = {
  { 1.0 / 4, 0, 0 },
  { -1.0 / 6, -1.0 / 6, -1.0 / 6 },
  { -1.0 / 6, 1.0 / 6, -1.0 / 6 },
  { 1.0 / 24, 1.0 / 12, 1.0 / 6 },
  { 1.0 / 24, -1.0 / 12, 1.0 / 6 },
  { 0, 0, 1 },
};

gboolean
agc_winograd_supports (int c_in, int c_out)
{
  return c_in % 8 == 0 && c_out % 8 == 0 && agc_packed_gemm_available ();
}

void
agc_winograd_clear (AgcWinograd *w)
{
  for (int x = 0; x < AGC_WINOGRAD_POSITIONS; x++)
    agc_packed_matrix_clear (&w->u[x]);
}

typedef struct
{
  const float *weight; // [3][3][c_in][c_out]
  float *rows;         // [alpha][c_out][c_in]: U_x for x = alpha y .. alpha y + alpha - 1
  const double (*g)[3]; // G, [alpha][3]
  int c_in, c_out, alpha, y;
} Transform;

// rows of U for output channels [begin, end): U_yx = G_y g G_x^T, G_y g
// first (each row written in order; the reads of one o, 9 c_in lines, stay
// in L2 for the next)
static void
transform_weights (void *ctx, int begin, int end, int thread)
{
  (void) thread;
  const Transform *t = ctx;
  const double *gy = t->g[t->y];
  size_t tap = (size_t) t->c_in * t->c_out; // floats from one tap of g to the next
  for (int o = begin; o < end; o++)
    for (int c = 0; c < t->c_in; c++)
      {
        const float *g = t->weight + (size_t) c * t->c_out + o;
        double h[3]; // (G_y g)[kx]
        for (int kx = 0; kx < 3; kx++)
          h[kx] = gy[0] * g[kx * tap] + gy[1] * g[(3 + kx) * tap] + gy[2] * g[(6 + kx) * tap];
        for (int x = 0; x < t->alpha; x++)
          t->rows[((size_t) x * t->c_out + o) * t->c_in + c]
            = (float) (t->g[x][0] * h[0] + t->g[x][1] * h[1] + t->g[x][2] * h[2]);
      }
}

gboolean
agc_winograd_init (AgcWinograd *w, const float *weight, int c_in, int c_out, int tile,
                   GError **error)
{
  g_return_val_if_fail (agc_winograd_supports (c_in, c_out), FALSE);
  g_return_val_if_fail (tile == 2 || tile == 4, FALSE);
  *w = (AgcWinograd){ .c_in = c_in, .c_out = c_out, .tile = tile };
  // U for one row of positions at a time (6 MB for layer4's)
  int alpha = tile + 2;
  Transform t = { .weight = weight, .rows = g_try_new (float, (size_t) alpha * c_out * c_in),
                  .g = tile == 2 ? G2 : G4, .c_in = c_in, .c_out = c_out, .alpha = alpha };
  if (t.rows == NULL)
    {
      g_set_error (error, AGC_ERROR, AGC_ERROR_INPUT,
                   "cannot allocate the Winograd weights of a %d x %d convolution", c_out, c_in);
      return FALSE;
    }
  gboolean ok = TRUE;
  for (t.y = 0; ok && t.y < alpha; t.y++)
    {
      agc_parallel_for (c_out, agc_threads_row_grain (c_out, 9 * alpha * c_in), transform_weights,
                        &t);
      for (int x = 0; ok && x < alpha; x++)
        {
          AgcParam param = { AGC_DTYPE_F32, t.rows + (size_t) x * c_out * c_in,
                             (size_t) c_out * c_in };
          const AgcParam *parts[1] = { &param };
          ok = agc_packed_matrix_init (&w->u[t.y * alpha + x], NULL, parts, &c_out, 1, c_in,
                                       error);
        }
    }
  g_free (t.rows);
  if (!ok)
    agc_winograd_clear (w);
  return ok;
}

int
agc_winograd_tiles (int tile, int batch, int height, int width)
{
  return batch * ((height + tile - 1) / tile) * ((width + tile - 1) / tile);
}

static int
positions (int tile)
{
  return (tile + 2) * (tile + 2);
}

static int
row_stride (int n)
{
  return n % ALIASING_STRIDE == 0 ? n + 16 : n;
}

static int
chunk_tiles (int c_in, int c_out, int tile, int tiles)
{
  int per_tile = positions (tile) * (row_stride (c_in) + row_stride (c_out));
  return CLAMP (CHUNK_FLOATS / per_tile, JOB_ROWS, MAX (tiles, 1));
}

static size_t
zeros_floats (int c_in)
{
  return (size_t) (c_in + 15) / 16 * 16;
}

size_t
agc_winograd_scratch_floats (int c_in, int c_out, int tile, int batch, int height, int width)
{
  size_t chunk = chunk_tiles (c_in, c_out, tile, agc_winograd_tiles (tile, batch, height, width));
  return zeros_floats (c_in) + positions (tile) * chunk * (row_stride (c_in) + row_stride (c_out));
}

typedef struct
{
  const AgcWinograd *w;
  float *out;         // [B, H, W, c_out]
  const float *in;    // [B, H, W, c_in]
  const float *zeros; // [c_in]: what the padding reads
  const float *bias;
  float *v; // [alpha^2][n][ldv]
  float *m; // [alpha^2][n][ldm]
  int tile, height, width, tiles_y, tiles_x;
  int t0, n; // the chunk's tiles
  int ldv, ldm, job_rows, n_row_jobs;
  gboolean relu;
} Run;

// o = B^T d: the rows of F(4, 3)'s B^T, [4 0 -5 0 1 0], [0 -4 -4 1 1 0], ...
TARGET static inline void
b_transpose_4 (__m256 o[6], const __m256 d[6])
{
  __m256 four = _mm256_set1_ps (4.0f), two = _mm256_set1_ps (2.0f), m5 = _mm256_set1_ps (-5.0f);
  o[0] = _mm256_fmadd_ps (four, d[0], _mm256_fmadd_ps (m5, d[2], d[4]));
  o[1] = _mm256_fnmadd_ps (four, _mm256_add_ps (d[1], d[2]), _mm256_add_ps (d[3], d[4]));
  o[2] = _mm256_fmadd_ps (four, _mm256_sub_ps (d[1], d[2]), _mm256_sub_ps (d[4], d[3]));
  o[3] = _mm256_fmadd_ps (two, _mm256_sub_ps (d[3], d[1]), _mm256_sub_ps (d[4], d[2]));
  o[4] = _mm256_fmadd_ps (two, _mm256_sub_ps (d[1], d[3]), _mm256_sub_ps (d[4], d[2]));
  o[5] = _mm256_fmadd_ps (four, d[1], _mm256_fmadd_ps (m5, d[3], d[5]));
}

// o = A^T m: [1 1 1 1 1 0], [0 1 -1 2 -2 0], [0 1 1 4 4 0], [0 1 -1 8 -8 1]
TARGET static inline void
a_transpose_4 (__m256 o[4], const __m256 m[6])
{
  __m256 s12 = _mm256_add_ps (m[1], m[2]), d12 = _mm256_sub_ps (m[1], m[2]);
  __m256 s34 = _mm256_add_ps (m[3], m[4]), d34 = _mm256_sub_ps (m[3], m[4]);
  o[0] = _mm256_add_ps (_mm256_add_ps (m[0], s12), s34);
  o[1] = _mm256_fmadd_ps (_mm256_set1_ps (2.0f), d34, d12);
  o[2] = _mm256_fmadd_ps (_mm256_set1_ps (4.0f), s34, s12);
  o[3] = _mm256_add_ps (_mm256_fmadd_ps (_mm256_set1_ps (8.0f), d34, d12), m[5]);
}

// F(2, 3)'s B^T: [1 0 -1 0], [0 1 1 0], [0 -1 1 0], [0 1 0 -1]
TARGET static inline void
b_transpose_2 (__m256 o[4], const __m256 d[4])
{
  o[0] = _mm256_sub_ps (d[0], d[2]);
  o[1] = _mm256_add_ps (d[1], d[2]);
  o[2] = _mm256_sub_ps (d[2], d[1]);
  o[3] = _mm256_sub_ps (d[1], d[3]);
}

// F(2, 3)'s A^T: [1 1 1 0], [0 1 -1 -1]
TARGET static inline void
a_transpose_2 (__m256 o[2], const __m256 m[4])
{
  o[0] = _mm256_add_ps (_mm256_add_ps (m[0], m[1]), m[2]);
  o[1] = _mm256_sub_ps (_mm256_sub_ps (m[1], m[2]), m[3]);
}

// tile t of the batch: its image and its top-left output pixel
static void
tile_origin (const Run *r, int t, int *b, int *y, int *x)
{
  *x = t % r->tiles_x * r->tile;
  *y = t / r->tiles_x % r->tiles_y * r->tile;
  *b = t / r->tiles_x / r->tiles_y;
}

// V of tiles [begin, end) for F(alpha - 2, 3) (a constant once inlined)
TARGET static inline __attribute__ ((always_inline)) void
input_tiles_of (const Run *r, int begin, int end, int alpha)
{
  int c_in = r->w->c_in;
  size_t plane = (size_t) r->n * r->ldv; // floats from V_x to V_x+1
  for (int i = begin; i < end; i++)
    {
      int b, y0, x0;
      tile_origin (r, r->t0 + i, &b, &y0, &x0);
      const float *d[MAX_ALPHA][MAX_ALPHA]; // the alpha x alpha input pixels, padding 1
      for (int y = 0; y < alpha; y++)
        for (int x = 0; x < alpha; x++)
          {
            int iy = y0 - 1 + y, ix = x0 - 1 + x;
            gboolean inside = iy >= 0 && iy < r->height && ix >= 0 && ix < r->width;
            d[y][x] = inside ? r->in + (((size_t) b * r->height + iy) * r->width + ix) * c_in
                             : r->zeros;
          }
      float *dst = r->v + (size_t) i * r->ldv;
      for (int c = 0; c < c_in; c += 8)
        {
          __m256 cols[MAX_ALPHA][MAX_ALPHA]; // cols[x] = B^T d[., x]
          for (int x = 0; x < alpha; x++)
            {
              __m256 column[MAX_ALPHA];
              for (int y = 0; y < alpha; y++)
                column[y] = _mm256_loadu_ps (d[y][x] + c);
              if (alpha == 6)
                b_transpose_4 (cols[x], column);
              else
                b_transpose_2 (cols[x], column);
            }
          for (int y = 0; y < alpha; y++)
            {
              __m256 row[MAX_ALPHA], v[MAX_ALPHA];
              for (int x = 0; x < alpha; x++)
                row[x] = cols[x][y];
              if (alpha == 6)
                b_transpose_4 (v, row);
              else
                b_transpose_2 (v, row);
              for (int x = 0; x < alpha; x++)
                _mm256_storeu_ps (dst + (y * alpha + x) * plane + c, v[x]);
            }
        }
    }
}

TARGET static void
input_tiles (void *ctx, int begin, int end, int thread)
{
  (void) thread;
  const Run *r = ctx;
  if (r->tile == 4)
    input_tiles_of (r, begin, end, 6);
  else
    input_tiles_of (r, begin, end, 4);
}

static void
products (void *ctx, int begin, int end, int thread)
{
  (void) thread;
  const Run *r = ctx;
  for (int job = begin; job < end; job++)
    {
      int x = job / r->n_row_jobs, r0 = job % r->n_row_jobs * r->job_rows;
      int rows = MIN (r->job_rows, r->n - r0);
      agc_gemm_packed_serial (r->m + ((size_t) x * r->n + r0) * r->ldm, r->ldm,
                              r->v + ((size_t) x * r->n + r0) * r->ldv, r->ldv, &r->w->u[x], rows,
                              0.0f, NULL);
    }
}

// out of tiles [begin, end) for F(alpha - 2, 3) (a constant once inlined)
TARGET static inline __attribute__ ((always_inline)) void
output_tiles_of (const Run *r, int begin, int end, int alpha)
{
  int c_out = r->w->c_out, tile = alpha - 2;
  size_t plane = (size_t) r->n * r->ldm;
  __m256 zero = _mm256_setzero_ps ();
  for (int i = begin; i < end; i++)
    {
      int b, y0, x0;
      tile_origin (r, r->t0 + i, &b, &y0, &x0);
      int rows = MIN (tile, r->height - y0), cols = MIN (tile, r->width - x0);
      const float *src = r->m + (size_t) i * r->ldm;
      float *dst = r->out + (((size_t) b * r->height + y0) * r->width + x0) * c_out;
      for (int o = 0; o < c_out; o += 8)
        {
          __m256 half[MAX_ALPHA][MAX_ALPHA - 2]; // half[x] = A^T m[., x]
          for (int x = 0; x < alpha; x++)
            {
              __m256 column[MAX_ALPHA];
              for (int y = 0; y < alpha; y++)
                column[y] = _mm256_loadu_ps (src + (y * alpha + x) * plane + o);
              if (alpha == 6)
                a_transpose_4 (half[x], column);
              else
                a_transpose_2 (half[x], column);
            }
          __m256 bias = _mm256_loadu_ps (r->bias + o);
          for (int y = 0; y < rows; y++)
            {
              __m256 row[MAX_ALPHA], out[MAX_ALPHA - 2];
              for (int x = 0; x < alpha; x++)
                row[x] = half[x][y];
              if (alpha == 6)
                a_transpose_4 (out, row);
              else
                a_transpose_2 (out, row);
              for (int x = 0; x < cols; x++)
                {
                  __m256 v = _mm256_add_ps (out[x], bias);
                  if (r->relu)
                    v = _mm256_max_ps (v, zero);
                  _mm256_storeu_ps (dst + ((size_t) y * r->width + x) * c_out + o, v);
                }
            }
        }
    }
}

TARGET static void
output_tiles (void *ctx, int begin, int end, int thread)
{
  (void) thread;
  const Run *r = ctx;
  if (r->tile == 4)
    output_tiles_of (r, begin, end, 6);
  else
    output_tiles_of (r, begin, end, 4);
}

void
agc_winograd_forward (float *out, const float *in, float *scratch, const AgcWinograd *w,
                      const float *bias, int batch, int height, int width, gboolean relu)
{
  int tile = w->tile, n_positions = positions (tile);
  int tiles = agc_winograd_tiles (tile, batch, height, width);
  int chunk = chunk_tiles (w->c_in, w->c_out, tile, tiles);
  Run r = { .w = w, .out = out, .in = in, .zeros = scratch, .bias = bias, .tile = tile,
            .height = height, .width = width, .tiles_y = (height + tile - 1) / tile,
            .tiles_x = (width + tile - 1) / tile, .ldv = row_stride (w->c_in),
            .ldm = row_stride (w->c_out), .relu = relu };
  memset (scratch, 0, zeros_floats (w->c_in) * sizeof (float));
  r.v = scratch + zeros_floats (w->c_in);
  r.m = r.v + (size_t) n_positions * chunk * r.ldv;
  for (r.t0 = 0; r.t0 < tiles; r.t0 += chunk)
    {
      r.n = MIN (chunk, tiles - r.t0);
      r.n_row_jobs = (r.n + JOB_ROWS - 1) / JOB_ROWS;
      r.job_rows = (r.n + r.n_row_jobs - 1) / r.n_row_jobs; // nearly equal heights
      agc_parallel_for (r.n, agc_threads_row_grain (r.n, n_positions * w->c_in), input_tiles,
                        &r);
      agc_parallel_for (n_positions * r.n_row_jobs, 1, products, &r);
      agc_parallel_for (r.n, agc_threads_row_grain (r.n, n_positions * w->c_out), output_tiles,
                        &r);
    }
}
