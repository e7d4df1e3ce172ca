/* resnet-winograd.c — stride-1 3x3 convolutions as Winograd F(4x4, 3x3).
 *
 * The tiles are taken in chunks of bounded memory; each chunk in three
 * passes over the pool: the input transform of its tiles into V (36
 * matrices [tiles, c_in]), the 36 products into M ([tiles, c_out]) on the
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
  ALPHA = 6,     // input tile side: 4 + 3 - 1
  TILE = 4,      // output tile side
  JOB_ROWS = 192, // tiles per product job, as resnet.c's direct convolution's pixels
  CHUNK_FLOATS = 1 << 20, // V and M of one chunk: 4 MB (or JOB_ROWS tiles), whatever the batch
  ALIASING_STRIDE = 128,  // row strides that are multiples of this share L1 sets (gemm-packed.c)
};

// G of F(4, 3) for the points 0, +-1, +-2 and infinity
static const double G[ALPHA][3] = {
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

gboolean
agc_winograd_init (AgcWinograd *w, const float *weight, int c_in, int c_out, GError **error)
{
  g_return_val_if_fail (agc_winograd_supports (c_in, c_out), FALSE);
  *w = (AgcWinograd){ .c_in = c_in, .c_out = c_out };
  float *rows = g_try_new (float, (size_t) c_out * c_in); // U_x as [c_out, c_in]
  if (rows == NULL)
    {
      g_set_error (error, AGC_ERROR, AGC_ERROR_INPUT,
                   "cannot allocate the Winograd weights of a %d x %d convolution", c_out, c_in);
      return FALSE;
    }
  gboolean ok = TRUE;
  for (int x = 0; ok && x < AGC_WINOGRAD_POSITIONS; x++)
    {
      const double *gy = G[x / ALPHA], *gx = G[x % ALPHA];
      for (int c = 0; c < c_in; c++)
        for (int o = 0; o < c_out; o++)
          {
            double sum = 0;
            for (int ky = 0; ky < 3; ky++)
              for (int kx = 0; kx < 3; kx++)
                sum += gy[ky] * gx[kx] * weight[((size_t) (ky * 3 + kx) * c_in + c) * c_out + o];
            rows[(size_t) o * c_in + c] = (float) sum;
          }
      AgcParam param = { AGC_DTYPE_F32, rows, (size_t) c_out * c_in };
      const AgcParam *parts[1] = { &param };
      ok = agc_packed_matrix_init (&w->u[x], NULL, parts, &c_out, 1, c_in, error);
    }
  g_free (rows);
  if (!ok)
    agc_winograd_clear (w);
  return ok;
}

int
agc_winograd_tiles (int batch, int height, int width)
{
  return batch * ((height + TILE - 1) / TILE) * ((width + TILE - 1) / TILE);
}

static int
row_stride (int n)
{
  return n % ALIASING_STRIDE == 0 ? n + 16 : n;
}

static int
chunk_tiles (const AgcWinograd *w, int tiles)
{
  int per_tile = AGC_WINOGRAD_POSITIONS * (row_stride (w->c_in) + row_stride (w->c_out));
  return CLAMP (CHUNK_FLOATS / per_tile, JOB_ROWS, MAX (tiles, 1));
}

static size_t
zeros_floats (const AgcWinograd *w)
{
  return (size_t) (w->c_in + 15) / 16 * 16;
}

size_t
agc_winograd_scratch_floats (const AgcWinograd *w, int batch, int height, int width)
{
  size_t chunk = chunk_tiles (w, agc_winograd_tiles (batch, height, width));
  return zeros_floats (w)
         + AGC_WINOGRAD_POSITIONS * chunk * (row_stride (w->c_in) + row_stride (w->c_out));
}

typedef struct
{
  const AgcWinograd *w;
  float *out;         // [B, H, W, c_out]
  const float *in;    // [B, H, W, c_in]
  const float *zeros; // [c_in]: what the padding reads
  const float *bias;
  float *v; // [36][n][ldv]
  float *m; // [36][n][ldm]
  int height, width, tiles_y, tiles_x;
  int t0, n; // the chunk's tiles
  int ldv, ldm, job_rows, n_row_jobs;
  gboolean relu;
} Run;

// o = B^T d: the rows of F(4, 3)'s B^T, [4 0 -5 0 1 0], [0 -4 -4 1 1 0], ...
TARGET static inline void
b_transpose (__m256 o[ALPHA], const __m256 d[ALPHA])
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
a_transpose (__m256 o[TILE], const __m256 m[ALPHA])
{
  __m256 s12 = _mm256_add_ps (m[1], m[2]), d12 = _mm256_sub_ps (m[1], m[2]);
  __m256 s34 = _mm256_add_ps (m[3], m[4]), d34 = _mm256_sub_ps (m[3], m[4]);
  o[0] = _mm256_add_ps (_mm256_add_ps (m[0], s12), s34);
  o[1] = _mm256_fmadd_ps (_mm256_set1_ps (2.0f), d34, d12);
  o[2] = _mm256_fmadd_ps (_mm256_set1_ps (4.0f), s34, s12);
  o[3] = _mm256_add_ps (_mm256_fmadd_ps (_mm256_set1_ps (8.0f), d34, d12), m[5]);
}

// tile t of the batch: its image and its top-left output pixel
static void
tile_origin (const Run *r, int t, int *b, int *y, int *x)
{
  *x = t % r->tiles_x * TILE;
  *y = t / r->tiles_x % r->tiles_y * TILE;
  *b = t / r->tiles_x / r->tiles_y;
}

TARGET static void
input_tiles (void *ctx, int begin, int end, int thread)
{
  (void) thread;
  const Run *r = ctx;
  int c_in = r->w->c_in;
  size_t plane = (size_t) r->n * r->ldv; // floats from V_x to V_x+1
  for (int i = begin; i < end; i++)
    {
      int b, y0, x0;
      tile_origin (r, r->t0 + i, &b, &y0, &x0);
      const float *d[ALPHA][ALPHA]; // the 6 x 6 input pixels, padding 1
      for (int y = 0; y < ALPHA; y++)
        for (int x = 0; x < ALPHA; x++)
          {
            int iy = y0 - 1 + y, ix = x0 - 1 + x;
            gboolean inside = iy >= 0 && iy < r->height && ix >= 0 && ix < r->width;
            d[y][x] = inside ? r->in + (((size_t) b * r->height + iy) * r->width + ix) * c_in
                             : r->zeros;
          }
      float *dst = r->v + (size_t) i * r->ldv;
      for (int c = 0; c < c_in; c += 8)
        {
          __m256 cols[ALPHA][ALPHA]; // cols[x] = B^T d[., x]
          for (int x = 0; x < ALPHA; x++)
            {
              __m256 column[ALPHA];
              for (int y = 0; y < ALPHA; y++)
                column[y] = _mm256_loadu_ps (d[y][x] + c);
              b_transpose (cols[x], column);
            }
          for (int y = 0; y < ALPHA; y++)
            {
              __m256 row[ALPHA], v[ALPHA];
              for (int x = 0; x < ALPHA; x++)
                row[x] = cols[x][y];
              b_transpose (v, row);
              for (int x = 0; x < ALPHA; x++)
                _mm256_storeu_ps (dst + (y * ALPHA + x) * plane + c, v[x]);
            }
        }
    }
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

TARGET static void
output_tiles (void *ctx, int begin, int end, int thread)
{
  (void) thread;
  const Run *r = ctx;
  int c_out = r->w->c_out;
  size_t plane = (size_t) r->n * r->ldm;
  __m256 zero = _mm256_setzero_ps ();
  for (int i = begin; i < end; i++)
    {
      int b, y0, x0;
      tile_origin (r, r->t0 + i, &b, &y0, &x0);
      int rows = MIN (TILE, r->height - y0), cols = MIN (TILE, r->width - x0);
      const float *src = r->m + (size_t) i * r->ldm;
      float *dst = r->out + (((size_t) b * r->height + y0) * r->width + x0) * c_out;
      for (int o = 0; o < c_out; o += 8)
        {
          __m256 half[ALPHA][TILE]; // half[x] = A^T m[., x]
          for (int x = 0; x < ALPHA; x++)
            {
              __m256 column[ALPHA];
              for (int y = 0; y < ALPHA; y++)
                column[y] = _mm256_loadu_ps (src + (y * ALPHA + x) * plane + o);
              a_transpose (half[x], column);
            }
          __m256 bias = _mm256_loadu_ps (r->bias + o);
          for (int y = 0; y < rows; y++)
            {
              __m256 row[ALPHA], out[TILE];
              for (int x = 0; x < ALPHA; x++)
                row[x] = half[x][y];
              a_transpose (out, row);
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

void
agc_winograd_forward (float *out, const float *in, float *scratch, const AgcWinograd *w,
                      const float *bias, int batch, int height, int width, gboolean relu)
{
  int tiles = agc_winograd_tiles (batch, height, width), chunk = chunk_tiles (w, tiles);
  Run r = { .w = w, .out = out, .in = in, .zeros = scratch, .bias = bias, .height = height,
            .width = width, .tiles_y = (height + TILE - 1) / TILE,
            .tiles_x = (width + TILE - 1) / TILE, .ldv = row_stride (w->c_in),
            .ldm = row_stride (w->c_out), .relu = relu };
  memset (scratch, 0, zeros_floats (w) * sizeof (float));
  r.v = scratch + zeros_floats (w);
  r.m = r.v + (size_t) AGC_WINOGRAD_POSITIONS * chunk * r.ldv;
  for (r.t0 = 0; r.t0 < tiles; r.t0 += chunk)
    {
      r.n = MIN (chunk, tiles - r.t0);
      r.n_row_jobs = (r.n + JOB_ROWS - 1) / JOB_ROWS;
      r.job_rows = (r.n + r.n_row_jobs - 1) / r.n_row_jobs; // nearly equal heights
      agc_parallel_for (r.n, agc_threads_row_grain (r.n, AGC_WINOGRAD_POSITIONS * w->c_in),
                        input_tiles, &r);
      agc_parallel_for (AGC_WINOGRAD_POSITIONS * r.n_row_jobs, 1, products, &r);
      agc_parallel_for (r.n, agc_threads_row_grain (r.n, AGC_WINOGRAD_POSITIONS * w->c_out),
                        output_tiles, &r);
    }
}
