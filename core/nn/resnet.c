/* resnet.c — torchvision ResNet-50 (no fc) on the library's packed kernels
 * (or on OpenBLAS, or int8, as the engine options say).
 *
 * Activations are pixel-major (NHWC), [B*H*W, C] row-major, so that a conv
 * is the GEMM out[P, C_out] = col[P, k*k*C_in] @ weight[k*k*C_in, C_out]
 * over its P output pixels, where a col row is the input's k*k neighbours
 * of one pixel side by side (each a contiguous run of C_in floats), and a
 * 1x1 stride-1 conv reads its input itself as col.  BatchNorm is folded into
 * each conv's weight and bias on load.
 *
 * Own kernels (the default): each conv's weight is packed into panels
 * (gemm-packed.h) on load.  The output is cut into jobs of up to 192 pixels
 * by blocks of whole panels (output channels); a pool thread builds its
 * job's col rows in its own scratch and runs the packed product on them
 * with the bias, the ReLU and the residual in the tile's epilogue.  When the
 * pixels are too few to give every thread jobs (layer3 and 4 at small
 * batches) the col rows are built once and the jobs are blocks of channels.
 * The stride-1 3x3 convs run as Winograd F(4x4, 3x3) or F(2x2, 3x3)
 * (resnet-winograd.h), whichever is faster for their channels and tiles:
 * F(4x4) in layers 1-2, F(2x2) in layer3, F(4x4) in layer4 from batch 2
 * (direct at batch 1), its weights built on that first call.
 * OpenBLAS: resnet-conv.h's convolution (im2col tiles + sgemm), which
 * training runs too.  int8: col rows in chunks of bounded size, each one
 * product of gemm-int8.h over the pool, then bias and ReLU.  Scratch lives
 * in an arena kept from call to call. */
#include "nn/resnet.h"
#include "nn/resnet-conv.h"
#include "nn/resnet-winograd.h"

#include "kernels/arena.h"
#include "kernels/gemm-int8.h"
#include "kernels/gemm-packed.h"
#include "kernels/threads.h"

#include <cblas.h>
#include <math.h>
#include <string.h>

#define N_LAYERS 4
#define N_BLOCKS 16 /* 3 + 4 + 6 + 3 */
#define EXPANSION 4 /* bottleneck output channels / width */
#define STEM_WIDTH 64
#define BN_EPS 1e-5
/* F(2x2, 3x3) rather than F(4x4) from this many channels, F(4x4) again,
 * built on first use, from the other (winograd_form) */
#define WINOGRAD_F2_CHANNELS 256
#define WINOGRAD_WIDE_CHANNELS 512

const int agc_resnet_blocks_per_layer[N_LAYERS] = { 3, 4, 6, 3 };
const int agc_resnet_layer_width[N_LAYERS] = { 64, 128, 256, 512 };

typedef struct
{
  // the weight with BatchNorm's scale folded in, the bias its shift; the
  // OpenBLAS form (resnet-conv.h), always kept
  AgcConv blas;
  AgcPackedMatrix packed; // the same weight in panels; panels NULL without a packed kernel
  // the 3x3 stride-1 convs' Winograd form beside it (winograd_form; when it
  // runs: winograd_tile): built on load for layers 1-3, which run it from
  // batch 1, layer4's F(4x4) (36 MB each) on the first call that uses it;
  // NULL until then
  AgcWinograd *winograd;
  AgcInt8Matrix *int8; // quantised while int8 is on, else NULL
} Conv;

typedef struct
{
  Conv conv1;      // 1x1, c_in -> width
  Conv conv2;      // 3x3, width -> width, carries the stride
  Conv conv3;      // 1x1, width -> 4 * width
  Conv downsample; // 1x1 with the stride, c_in -> 4 * width; weight NULL when absent
} Bottleneck;

struct AgcResNet
{
  Conv stem; // 7x7/2, 3 -> 64
  Bottleneck blocks[N_BLOCKS];
  AgcEngineOptions options;
  AgcArena scratch; // activations and per-thread col tiles, reused across calls
};

/* ---- loading ----------------------------------------------------------- */

static void
conv_clear (Conv *conv)
{
  g_clear_pointer (&conv->blas.weight, g_free);
  g_clear_pointer (&conv->blas.bias, g_free);
  agc_packed_matrix_clear (&conv->packed);
  if (conv->winograd != NULL)
    agc_winograd_clear (conv->winograd);
  g_clear_pointer (&conv->winograd, g_free);
  g_clear_pointer (&conv->int8, agc_int8_matrix_free);
}

void
agc_resnet_free (AgcResNet *net)
{
  if (net == NULL)
    return;
  conv_clear (&net->stem);
  for (int i = 0; i < N_BLOCKS; i++)
    {
      conv_clear (&net->blocks[i].conv1);
      conv_clear (&net->blocks[i].conv2);
      conv_clear (&net->blocks[i].conv3);
      conv_clear (&net->blocks[i].downsample);
    }
  agc_arena_clear (&net->scratch);
  g_free (net);
}

// the folded weight as rows [c_out, k*k*c_in] (PyTorch's [out, in], the
// taps in the order of a col row): what the packed and int8 forms take
static float *
conv_weight_rows (const AgcConv *c)
{
  size_t k = (size_t) c->kernel * c->kernel * c->c_in;
  float *rows = g_try_new (float, k * c->c_out);
  if (rows != NULL)
    for (size_t i = 0; i < k; i++)
      for (int o = 0; o < c->c_out; o++)
        rows[o * k + i] = c->weight[i * c->c_out + o];
  return rows;
}

static gboolean
no_memory (GError **error, const AgcConv *c, const char *form)
{
  g_set_error (error, AGC_ERROR, AGC_ERROR_INPUT,
               "cannot allocate the %s weights of a %d x %d ResNet convolution", form, c->c_out,
               c->kernel * c->kernel * c->c_in);
  return FALSE;
}

// the output tile side of the Winograd form a conv has: 0 (none: not a
// 3x3 stride-1 conv the kernels support), 4 for F(4x4, 3x3), 2 for
// F(2x2, 3x3) (layer3's channels); winograd_tile says when it runs
static int
winograd_form (const AgcConv *c)
{
  if (c->kernel != 3 || c->stride != 1 || !agc_winograd_supports (c->c_in, c->c_out))
    return 0;
  return c->c_in >= WINOGRAD_F2_CHANNELS && c->c_in < WINOGRAD_WIDE_CHANNELS ? 2 : 4;
}

// the conv's Winograd form, built if it is not yet
static AgcWinograd *
conv_winograd (Conv *conv, GError **error)
{
  const AgcConv *c = &conv->blas;
  if (conv->winograd != NULL)
    return conv->winograd;
  conv->winograd = g_new0 (AgcWinograd, 1);
  if (!agc_winograd_init (conv->winograd, c->weight, c->c_in, c->c_out, winograd_form (c),
                          error))
    g_clear_pointer (&conv->winograd, g_free);
  return conv->winograd;
}

// the panels of our kernels, where the CPU has one
static gboolean
conv_pack (Conv *conv, GError **error)
{
  if (!agc_packed_gemm_available ())
    return TRUE;
  const AgcConv *c = &conv->blas;
  float *rows = conv_weight_rows (c);
  if (rows == NULL)
    return no_memory (error, c, "packed");
  int n_in = c->kernel * c->kernel * c->c_in;
  AgcParam param = { AGC_DTYPE_F32, rows, (size_t) c->c_out * n_in };
  const AgcParam *parts[1] = { &param };
  gboolean ok = agc_packed_matrix_init (&conv->packed, NULL, parts, &c->c_out, 1, n_in, error);
  g_free (rows);
  // the form of layers 1-3 now, layer4's on first use
  return ok
         && (winograd_form (c) == 0 || c->c_in >= WINOGRAD_WIDE_CHANNELS
             || conv_winograd (conv, error) != NULL);
}

static gboolean
conv_quantise (Conv *conv, GError **error)
{
  if (conv->blas.weight == NULL || conv->int8 != NULL)
    return TRUE;
  const AgcConv *c = &conv->blas;
  float *rows = conv_weight_rows (c);
  if (rows == NULL)
    return no_memory (error, c, "int8");
  conv->int8 = agc_int8_matrix_new (rows, c->c_out, c->kernel * c->kernel * c->c_in, error);
  g_free (rows);
  return conv->int8 != NULL;
}

// conv (no bias, as torchvision's) followed by BatchNorm in eval mode:
// y = (W x - mean) * s + beta with s = gamma / sqrt(var + eps), i.e. a conv
// with weight s * W and bias beta - mean * s
static gboolean
conv_bn_load (Conv *folded, const AgcWeights *weights, const char *prefix, const char *conv_name,
              const char *bn_name, int c_in, int c_out, int kernel, int stride, GError **error)
{
  *folded = (Conv) { .blas = { .c_in = c_in, .c_out = c_out, .kernel = kernel, .stride = stride,
                               .padding = kernel / 2 } };
  AgcConv *conv = &folded->blas;
  g_autofree char *weight_name = g_strconcat (prefix, conv_name, ".weight", NULL);
  int64_t shape[4] = { c_out, c_in, kernel, kernel };
  conv->weight = agc_weights_take_f32 (weights, weight_name, 4, shape, error);
  if (conv->weight == NULL)
    return FALSE;

  static const char *const fields[4] = { "weight", "bias", "running_mean", "running_var" };
  float *bn[4] = { NULL };
  gboolean ok = TRUE;
  for (int f = 0; ok && f < 4; f++)
    {
      g_autofree char *name = g_strconcat (prefix, bn_name, ".", fields[f], NULL);
      ok = (bn[f] = agc_weights_take_1d (weights, name, c_out, error)) != NULL;
    }
  for (int o = 0; ok && o < c_out; o++)
    if (!(bn[3][o] >= 0.0f)) // also catches NaN
      {
        g_autofree char *name = g_strconcat (prefix, bn_name, ".running_var", NULL);
        g_set_error (error, AGC_ERROR, AGC_ERROR_MODEL,
                     "%s: tensor '%s' holds %g at index %d; a variance must be >= 0",
                     agc_weights_find (weights, name)->file, name, bn[3][o], o);
        ok = FALSE;
      }
  if (ok)
    {
      // [c_out, c_in, ky, kx] -> [ky, kx, c_in, c_out]: the GEMM's right-hand
      // matrix, its rows in the order of a col row
      size_t taps = (size_t) kernel * kernel, k = (size_t) c_in * taps;
      float *weight = g_new (float, k * c_out);
      conv->bias = g_new (float, c_out);
      for (int o = 0; o < c_out; o++)
        {
          double scale = bn[0][o] / sqrt ((double) bn[3][o] + BN_EPS);
          const float *src = conv->weight + (size_t) o * k;
          for (int c = 0; c < c_in; c++)
            for (size_t t = 0; t < taps; t++)
              weight[(t * c_in + c) * c_out + o] = (float) (src[c * taps + t] * scale);
          conv->bias[o] = (float) (bn[1][o] - bn[2][o] * scale);
        }
      g_free (conv->weight);
      conv->weight = weight;
    }
  for (int f = 0; f < 4; f++)
    g_free (bn[f]);
  return ok && conv_pack (folded, error);
}

// conv1.weight missing: a checkpoint saved from a wrapper (DINO's
// "module.backbone.", "teacher.") has it under a prefix; name it
static gboolean
check_stem_prefix (const AgcWeights *weights, const char *prefix, GError **error)
{
  g_autofree char *stem = g_strconcat (prefix, "conv1.weight", NULL);
  if (agc_weights_find (weights, stem) != NULL)
    return TRUE;
  int n = agc_weights_n_tensors (weights);
  for (int i = 0; i < n; i++)
    {
      const AgcTensorView *t = agc_weights_tensor (weights, i);
      if (!g_str_has_suffix (t->name, "conv1.weight"))
        continue;
      g_autofree char *other = g_strndup (t->name, strlen (t->name) - strlen ("conv1.weight"));
      g_autofree char *block = g_strconcat (other, "layer1.0.conv1.weight", NULL);
      if (agc_weights_find (weights, block) == NULL)
        continue;
      g_set_error (error, AGC_ERROR, AGC_ERROR_MODEL,
                   "%s: missing tensor '%s', but the file has '%s': a ResNet under the prefix "
                   "'%s'", t->file, stem, t->name, other);
      return FALSE;
    }
  return TRUE; // no better hint: loading reports the missing tensor
}

// one block more than ResNet-50 has in some layer: ResNet-101 or -152
static gboolean
check_depth (const AgcWeights *weights, const char *prefix, GError **error)
{
  for (int l = 0; l < N_LAYERS; l++)
    {
      g_autofree char *name
        = g_strdup_printf ("%slayer%d.%d.conv1.weight", prefix, l + 1,
                           agc_resnet_blocks_per_layer[l]);
      const AgcTensorView *t = agc_weights_find (weights, name);
      if (t != NULL)
        {
          g_set_error (error, AGC_ERROR, AGC_ERROR_UNSUPPORTED,
                       "%s: tensor '%s' means more than %d blocks in layer%d, a deeper ResNet "
                       "than ResNet-50, the only depth supported",
                       t->file, name, agc_resnet_blocks_per_layer[l], l + 1);
          return FALSE;
        }
    }
  return TRUE;
}

static gboolean
block_load (Bottleneck *block, const AgcWeights *weights, const char *prefix, int layer,
            int index, int c_in, GError **error)
{
  int width = agc_resnet_layer_width[layer], c_out = EXPANSION * width;
  int stride = layer > 0 && index == 0 ? 2 : 1;
  g_autofree char *p = g_strdup_printf ("%slayer%d.%d.", prefix, layer + 1, index);
  const AgcWeights *w = weights;
  return conv_bn_load (&block->conv1, w, p, "conv1", "bn1", c_in, width, 1, 1, error)
         && conv_bn_load (&block->conv2, w, p, "conv2", "bn2", width, width, 3, stride, error)
         && conv_bn_load (&block->conv3, w, p, "conv3", "bn3", width, c_out, 1, 1, error)
         && (index > 0
             || conv_bn_load (&block->downsample, w, p, "downsample.0", "downsample.1", c_in,
                              c_out, 1, stride, error));
}

AgcResNet *
agc_resnet_load (const AgcWeights *weights, const char *prefix, GError **error)
{
  g_return_val_if_fail (weights != NULL && prefix != NULL, NULL);

  if (!check_stem_prefix (weights, prefix, error) || !check_depth (weights, prefix, error))
    return NULL;

  g_autoptr (AgcResNet) net = g_new0 (AgcResNet, 1);
  gboolean ok = conv_bn_load (&net->stem, weights, prefix, "conv1", "bn1", 3, STEM_WIDTH, 7, 2,
                              error);
  int c_in = STEM_WIDTH, b = 0;
  for (int l = 0; ok && l < N_LAYERS; l++)
    for (int i = 0; ok && i < agc_resnet_blocks_per_layer[l]; i++)
      {
        ok = block_load (&net->blocks[b++], weights, prefix, l, i, c_in, error);
        c_in = EXPANSION * agc_resnet_layer_width[l];
      }
  return ok ? g_steal_pointer (&net) : NULL;
}

/* ---- forward ----------------------------------------------------------- */

enum
{
  // output pixels per tile: enough rows to amortise the packing of the
  // weights that each sgemm call repeats, few enough that the tile's col
  // rows stay in cache between im2col and the GEMM
  TILE_ROWS = 256,
  MIN_TILE_ROWS = 32, // fewer pixels per thread: split the output channels
  ROW_ALIGN = 16,     // tile heights: whole register blocks of OpenBLAS
  COLUMN_ALIGN = 64,
  JOBS_PER_THREAD = 2, // so that a delayed thread leaves work to the others
};

int
agc_conv_out_size (const AgcConv *c, int size)
{
  return (size + 2 * c->padding - c->kernel) / c->stride + 1;
}

static gboolean
conv_needs_col (const AgcConv *c)
{
  return c->kernel != 1 || c->stride != 1;
}

static int
conv_k (const AgcConv *c)
{
  return c->kernel * c->kernel * c->c_in;
}

// how a conv's output pixels are shared out over the threads
typedef struct
{
  int n_rows;    // output pixels, B * H' * W'
  int tile_rows; // 0: one GEMM over all rows, split by output channels
  int n_tiles;
} Plan;

static Plan
conv_plan (int n_rows, int threads)
{
  Plan plan = { .n_rows = n_rows };
  int n_tiles = (n_rows + TILE_ROWS - 1) / TILE_ROWS;
  if (n_tiles < threads)
    n_tiles = MIN (threads, n_rows / MIN_TILE_ROWS);
  if (n_tiles <= 1 && threads > 1)
    return plan;
  n_tiles = MAX (n_tiles, 1);
  int rows = (n_rows + n_tiles - 1) / n_tiles;
  plan.tile_rows = (rows + ROW_ALIGN - 1) / ROW_ALIGN * ROW_ALIGN;
  plan.n_tiles = (n_rows + plan.tile_rows - 1) / plan.tile_rows;
  return plan;
}

// col floats the plan needs: one tile per thread, or all rows at once
static size_t
plan_col_floats (const Plan *plan, const AgcConv *c, int threads)
{
  if (!conv_needs_col (c))
    return 0;
  size_t rows = plan->tile_rows > 0 ? (size_t) threads * plan->tile_rows : (size_t) plan->n_rows;
  return rows * conv_k (c);
}

typedef struct
{
  const AgcConv *conv;
  float *out;       // [P, c_out]
  const float *in;  // [B, H, W, c_in]
  float *col;       // tiles: thread t's [tile_rows, K] at col + t * col_stride; else [P, K]
  size_t col_stride;
  int ld_col;       // the row stride of col: K, or more (packed_ld)
  int height, width, out_h, out_w;
  Plan plan;
  float beta; // 1: add to what out holds (the residual)
  gboolean relu;
  int block; // output channels per job when split by channels
} ConvRun;

// col[r1 - r0, K] (row stride ld) for output pixels [r0, r1): row r holds,
// for each tap (ky, kx), the c_in values of the input pixel that tap sees (0
// in the padding); the taps of one ky are one contiguous run of the input
static void
im2col_rows (float *col, size_t ld, const ConvRun *r, int r0, int r1)
{
  const AgcConv *c = r->conv;
  int k = c->kernel, s = c->stride, p = c->padding, c_in = c->c_in;
  size_t run = (size_t) k * c_in;
  for (int row = r0; row < r1; row++)
    {
      int ox = row % r->out_w, oy = row / r->out_w % r->out_h, b = row / r->out_w / r->out_h;
      int x0 = ox * s - p, y0 = oy * s - p;
      int kx0 = MAX (0, -x0), kx1 = MAX (kx0, MIN (k, r->width - x0));
      float *dst = col + (size_t) (row - r0) * ld;
      for (int ky = 0; ky < k; ky++, dst += run)
        {
          int iy = y0 + ky;
          if (iy < 0 || iy >= r->height || kx0 == kx1)
            {
              memset (dst, 0, run * sizeof (float));
              continue;
            }
          const float *src = r->in + (((size_t) b * r->height + iy) * r->width + x0) * c_in;
          // the stem's runs are 21 floats, 7 per pixel: no calls for nothing
          if (kx0 > 0)
            memset (dst, 0, (size_t) kx0 * c_in * sizeof (float));
          memcpy (dst + (size_t) kx0 * c_in, src + (size_t) kx0 * c_in,
                  (size_t) (kx1 - kx0) * c_in * sizeof (float));
          if (kx1 < k)
            memset (dst + (size_t) kx1 * c_in, 0, (size_t) (k - kx1) * c_in * sizeof (float));
        }
    }
}

static void
im2col_job (void *ctx, int begin, int end, int thread)
{
  (void) thread;
  const ConvRun *r = ctx;
  size_t ld = r->ld_col > 0 ? (size_t) r->ld_col : (size_t) conv_k (r->conv);
  im2col_rows (r->col + (size_t) begin * ld, ld, r, begin, end);
}

void
agc_conv_im2col (float *col, const AgcConv *c, const float *in, int batch, int height, int width)
{
  ConvRun r = { .conv = c, .in = in, .col = col, .height = height, .width = width,
                .out_h = agc_conv_out_size (c, height), .out_w = agc_conv_out_size (c, width) };
  int n_rows = batch * r.out_h * r.out_w;
  agc_parallel_for (n_rows, agc_threads_row_grain (n_rows, conv_k (c)), im2col_job, &r);
}

// out[n_rows, n_cols] (row stride ldo) += bias (unless NULL), then max(out,
// 0) if relu.
// A comparison, not fmaxf: GCC makes it a vector max without -ffast-math
static void
bias_act (float *out, int ldo, const float *bias, int n_rows, int n_cols, gboolean relu)
{
  if (bias == NULL && !relu)
    return;
  for (int i = 0; i < n_rows; i++)
    {
      float *row = out + (size_t) i * ldo;
      if (bias == NULL)
        for (int j = 0; j < n_cols; j++)
          row[j] = row[j] > 0.0f ? row[j] : 0.0f;
      else if (relu)
        for (int j = 0; j < n_cols; j++)
          {
            float v = row[j] + bias[j];
            row[j] = v > 0.0f ? v : 0.0f;
          }
      else
        for (int j = 0; j < n_cols; j++)
          row[j] += bias[j];
    }
}

static void
conv_tiles (void *ctx, int begin, int end, int thread)
{
  const ConvRun *r = ctx;
  const AgcConv *c = r->conv;
  int k = conv_k (c);
  for (int t = begin; t < end; t++)
    {
      int r0 = t * r->plan.tile_rows, rows = MIN (r->plan.tile_rows, r->plan.n_rows - r0);
      const float *a = r->in + (size_t) r0 * c->c_in;
      if (conv_needs_col (c))
        {
          float *col = r->col + thread * r->col_stride;
          im2col_rows (col, k, r, r0, r0 + rows);
          a = col;
        }
      float *out = r->out + (size_t) r0 * c->c_out;
      cblas_sgemm (CblasRowMajor, CblasNoTrans, CblasNoTrans, rows, c->c_out, k, 1.0f, a, k,
                   c->weight, c->c_out, r->beta, out, c->c_out);
      bias_act (out, c->c_out, c->bias, rows, c->c_out, r->relu);
    }
}

// jobs are blocks of output channels; the col rows (or the input) are shared
static void
conv_channels (void *ctx, int begin, int end, int thread)
{
  (void) thread;
  const ConvRun *r = ctx;
  const AgcConv *c = r->conv;
  int k = conv_k (c), n = r->plan.n_rows;
  const float *a = conv_needs_col (c) ? r->col : r->in;
  for (int j = begin; j < end; j++)
    {
      int first = j * r->block, cols = MIN (r->block, c->c_out - first);
      cblas_sgemm (CblasRowMajor, CblasNoTrans, CblasNoTrans, n, cols, k, 1.0f, a, k,
                   c->weight + first, c->c_out, r->beta, r->out + first, c->c_out);
      bias_act (r->out + first, c->c_out, c->bias != NULL ? c->bias + first : NULL, n, cols,
                r->relu);
    }
}

// out[B*H'*W', c_out] = conv(in[B, H, W, c_in]) + bias (+ out when
// accumulate: the residual), then ReLU if asked.  Runs on the pool with
// OpenBLAS single-threaded.
void
agc_conv_forward (float *out, const float *in, float *col, size_t col_stride, const AgcConv *c,
                  int batch, int height, int width, gboolean accumulate, gboolean relu)
{
  int threads = agc_threads_count ();
  ConvRun r = { .conv = c, .out = out, .in = in, .col = col, .col_stride = col_stride,
                .height = height, .width = width, .out_h = agc_conv_out_size (c, height),
                .out_w = agc_conv_out_size (c, width), .beta = accumulate ? 1.0f : 0.0f,
                .relu = relu };
  r.plan = conv_plan (batch * r.out_h * r.out_w, threads);
  if (r.plan.tile_rows > 0)
    {
      agc_parallel_for (r.plan.n_tiles, 1, conv_tiles, &r);
      return;
    }
  if (conv_needs_col (c))
    im2col_rows (col, conv_k (c), &r, 0, r.plan.n_rows);
  int n_jobs = threads * JOBS_PER_THREAD;
  r.block = (c->c_out + n_jobs - 1) / n_jobs;
  r.block = (r.block + COLUMN_ALIGN - 1) / COLUMN_ALIGN * COLUMN_ALIGN;
  agc_parallel_for ((c->c_out + r.block - 1) / r.block, 1, conv_channels, &r);
}

typedef struct
{
  float *out;      // [B, H', W', C]
  const float *in; // [B, H, W, C]
  int channels, height, width, out_h, out_w;
} PoolRun;

// 3x3, stride 2, padding 1 (never chosen, as if -inf); items are output rows
static void
maxpool_rows (void *ctx, int begin, int end, int thread)
{
  (void) thread;
  const PoolRun *p = ctx;
  int n_c = p->channels;
  for (int item = begin; item < end; item++)
    {
      int b = item / p->out_h, oy = item % p->out_h;
      const float *plane = p->in + (size_t) b * p->height * p->width * n_c;
      float *dst = p->out + (size_t) item * p->out_w * n_c;
      for (int ox = 0; ox < p->out_w; ox++, dst += n_c)
        {
          for (int ch = 0; ch < n_c; ch++)
            dst[ch] = -INFINITY;
          for (int y = MAX (2 * oy - 1, 0); y <= MIN (2 * oy + 1, p->height - 1); y++)
            for (int x = MAX (2 * ox - 1, 0); x <= MIN (2 * ox + 1, p->width - 1); x++)
              {
                const float *src = plane + ((size_t) y * p->width + x) * n_c;
                for (int ch = 0; ch < n_c; ch++)
                  dst[ch] = src[ch] > dst[ch] ? src[ch] : dst[ch];
              }
        }
    }
}

typedef struct
{
  float *out;         // [B, H, W, 3]
  const float *in;    // [B, 3, H, W]
  int height, width;
} ToPixelMajor;

// items are image rows (b, y)
static void
to_pixel_major_rows (void *ctx, int begin, int end, int thread)
{
  (void) thread;
  const ToPixelMajor *t = ctx;
  size_t plane = (size_t) t->height * t->width;
  for (int item = begin; item < end; item++)
    {
      int b = item / t->height, y = item % t->height;
      float *dst = t->out + (size_t) item * t->width * 3;
      const float *src = t->in + (size_t) b * 3 * plane + (size_t) y * t->width;
      for (int x = 0; x < t->width; x++)
        for (int c = 0; c < 3; c++)
          dst[x * 3 + c] = src[c * plane + x];
    }
}

/* ---- our kernels and int8 ------------------------------------------------ */

typedef enum
{
  ENGINE_BLAS,   // resnet-conv.h's convolution on OpenBLAS
  ENGINE_PACKED, // our packed kernels
  ENGINE_INT8,
} Engine;

static Engine
engine_of (const AgcResNet *net)
{
  if (net->options.int8 && net->stem.int8 != NULL && agc_int8_available ())
    return ENGINE_INT8;
  // the panels exist when the CPU had a kernel at load; tests may turn it off since
  if (!net->options.use_openblas && net->stem.packed.panels != NULL
      && agc_packed_gemm_available ())
    return ENGINE_PACKED;
  return ENGINE_BLAS;
}

enum
{
  // output pixels per job: up to 16 of the AVX-512 kernel's tiles, the col
  // rows of a 3x3 conv of layer2 (192 x 1152 floats) within L2
  JOB_TILE_ROWS = 12, // the AVX-512 kernel's tile (gemm-kernels.h); AVX2's 6 divides it
  JOB_TILES = 16,
  JOBS_PER_THREAD_PACKED = 4, // fewer jobs: split the channels too
  WINOGRAD_MIN_TILES = 8,       // F(4x4)'s
  WINOGRAD_F2_MIN_TILES = 16,   // F(2x2)'s
  // A row strides that are multiples of this many floats put the 12 rows a
  // tile broadcasts from into a few L1 sets, where they evict each other
  // and the panel: col rows get a longer one
  ALIASING_FLOATS = 128,
  // floats of int8 mode's col chunk: a bounded 16 MB whatever the batch
  INT8_CHUNK_FLOATS = 1 << 22,
};

// the row stride of the packed path's col rows: K rounded up to whole
// vectors and clear of multiples of ALIASING_FLOATS (layer2-4's 3x3 convs,
// 1152-4608 floats), or K itself for a 1x1 conv that reads its input in
// place (copying layer3-4's 1024-2048 channels to such a stride cost what
// it saved)
static int
packed_ld (const AgcConv *c)
{
  int k = conv_k (c);
  if (!conv_needs_col (c))
    return k;
  int ld = (k + 15) / 16 * 16;
  return ld % ALIASING_FLOATS == 0 ? ld + 16 : ld;
}

// how a conv's output is cut into jobs: blocks of rows x blocks of panels,
// row blocks of nearly equal numbers of whole tiles of the AVX-512 kernel,
// and as many jobs as a multiple of the threads where they are few (layer3
// at batch 8 was 9 jobs on 2 threads: one thread ran 5 while the other ran
// 4, a tenth of the conv's time lost)
typedef struct
{
  int n_rows, n_tiles, n_row_jobs, job_rows; // job_rows: the most rows of a row block
  int n_panels, n_col_jobs;
  gboolean shared_col; // col rows built once for all jobs (channel blocks share them)
} PackedPlan;

static PackedPlan
packed_plan (const AgcConv *c, int n_rows, int threads)
{
  PackedPlan p = { .n_rows = n_rows,
                   .n_tiles = (n_rows + JOB_TILE_ROWS - 1) / JOB_TILE_ROWS,
                   .n_panels = (c->c_out + AGC_PANEL_WIDTH - 1) / AGC_PANEL_WIDTH };
  p.n_row_jobs = (p.n_tiles + JOB_TILES - 1) / JOB_TILES;
  int want = threads * JOBS_PER_THREAD_PACKED;
  if (p.n_row_jobs >= want)
    {
      p.n_row_jobs = MIN ((p.n_row_jobs + threads - 1) / threads * threads, p.n_tiles);
      p.n_col_jobs = 1;
    }
  else
    {
      p.n_col_jobs = MIN (p.n_panels, (want + p.n_row_jobs - 1) / p.n_row_jobs);
      while (p.n_row_jobs * p.n_col_jobs % threads != 0 && p.n_col_jobs < p.n_panels)
        p.n_col_jobs++;
    }
  p.job_rows = (p.n_tiles + p.n_row_jobs - 1) / p.n_row_jobs * JOB_TILE_ROWS;
  p.shared_col = conv_needs_col (c) && p.n_col_jobs > 1;
  return p;
}

// the output pixels [*r0, *r1) of row block i: tiles of nearly equal number
static void
plan_row_block (const PackedPlan *p, int i, int *r0, int *r1)
{
  *r0 = (int) ((gint64) i * p->n_tiles / p->n_row_jobs) * JOB_TILE_ROWS;
  *r1 = MIN ((int) ((gint64) (i + 1) * p->n_tiles / p->n_row_jobs) * JOB_TILE_ROWS, p->n_rows);
}

static int
int8_chunk_rows (const AgcConv *c, int n_rows)
{
  return CLAMP (INT8_CHUNK_FLOATS / conv_k (c), 1, n_rows);
}

// col floats of a conv of n_rows output pixels on engine e
static size_t
engine_col_floats (Engine e, const AgcConv *c, int n_rows, int threads)
{
  if (e == ENGINE_BLAS)
    {
      Plan plan = conv_plan (n_rows, threads);
      return plan_col_floats (&plan, c, threads);
    }
  if (!conv_needs_col (c))
    return 0;
  if (e == ENGINE_INT8)
    return (size_t) int8_chunk_rows (c, n_rows) * conv_k (c);
  PackedPlan p = packed_plan (c, n_rows, threads);
  return (size_t) packed_ld (c)
         * (p.shared_col ? (size_t) n_rows : (size_t) threads * p.job_rows);
}

// The Winograd form that runs (4: F(4x4, 3x3), 2: F(2x2, 3x3), 0: none,
// the direct conv), where its weights (4 or 16 / 9 times the direct conv's)
// are read for enough tiles.  Measured at 224 x 224, CPU ms per conv,
// single-threaded, direct / F(4x4) / F(2x2) (5-10 % noise):
//                            batch 1              batch 8
//   layer1, 64 ch, 56 x 56   -   / 0.6  / 0.9     -    / 5.5 / 7.2
//   layer2, 128 ch, 28 x 28  -   / 0.5  / 0.65    -    / 5.5 / 5.1
//   layer3, 256 ch, 14 x 14  1.3 / 0.78 / 0.69    -    / 4.9 / 5.1
//   layer4, 512 ch, 7 x 7    1.4 / 2.0  / 1.3     10.5 / 5.0 / 6.6
// and layer4 at batch 2: 2.5 / 2.25 / 1.9, batch 4: 4.9 / 3.45 / 3.5.
// On 2 threads at batch 8 (16 MB chunks, a layer's convs summed, ms per
// call) F(4x4) / F(2x2): layer2 7.6 / 10.5, layer3 14.3 / 13.8.
// Layer4's F(2x2) (32 MB) is not worth its memory at batch 1-2; layer3's
// takes half F(4x4)'s (21 MB against 47).
static int
winograd_tile (const Conv *conv, int batch, int height, int width)
{
  int tile = winograd_form (&conv->blas);
  int min_tiles = tile == 2 ? WINOGRAD_F2_MIN_TILES : WINOGRAD_MIN_TILES;
  return tile != 0 && agc_winograd_tiles (tile, batch, height, width) >= min_tiles ? tile : 0;
}

typedef struct
{
  ConvRun geometry; // conv, in, out, sizes
  const Conv *conv;
  PackedPlan plan;
  gboolean accumulate, relu;
} PackedRun;

static void
packed_jobs (void *ctx, int begin, int end, int thread)
{
  const PackedRun *r = ctx;
  const AgcConv *c = &r->conv->blas;
  const PackedPlan *p = &r->plan;
  int k = conv_k (c), lda = r->geometry.ld_col;
  for (int job = begin; job < end; job++)
    {
      int row_job = job / p->n_col_jobs, col_job = job % p->n_col_jobs, r0, r1;
      plan_row_block (p, row_job, &r0, &r1);
      int rows = r1 - r0;
      const float *a = r->geometry.in + (size_t) r0 * c->c_in;
      if (p->shared_col)
        a = r->geometry.col + (size_t) r0 * lda;
      else if (conv_needs_col (c))
        {
          float *col = r->geometry.col + thread * r->geometry.col_stride;
          im2col_rows (col, lda, &r->geometry, r0, r0 + rows);
          a = col;
        }
      // this job's panels as a matrix of their own
      int panel0 = col_job * p->n_panels / p->n_col_jobs;
      int panel1 = (col_job + 1) * p->n_panels / p->n_col_jobs;
      int first = panel0 * AGC_PANEL_WIDTH;
      AgcPackedMatrix block = {
        .n_out = MIN (c->c_out, panel1 * AGC_PANEL_WIDTH) - first, .n_in = k,
        .panels = r->conv->packed.panels + (size_t) first * k
      };
      AgcGemmEpilogue epilogue = { .bias = c->bias + first, .apply_act = r->relu,
                                   .act = AGC_ACT_RELU };
      agc_gemm_packed_serial (r->geometry.out + (size_t) r0 * c->c_out + first, c->c_out, a, lda,
                              &block, rows, r->accumulate ? 1.0f : 0.0f, &epilogue);
    }
}

static gboolean
packed_forward (float *out, const float *in, float *col, size_t col_stride, const Conv *conv,
                int batch, int height, int width, gboolean accumulate, gboolean relu,
                GError **error)
{
  const AgcConv *c = &conv->blas;
  int tile = winograd_tile (conv, batch, height, width);
  if (tile != 0 && !accumulate)
    {
      // built on first use (agc_resnet_forward's caller owns the net for the
      // call, as for the scratch arena)
      const AgcWinograd *w = conv_winograd ((Conv *) conv, error);
      if (w == NULL)
        return FALSE;
      agc_winograd_forward (out, in, col, w, c->bias, batch, height, width, relu);
      return TRUE;
    }
  PackedRun r = { .geometry = { .conv = c, .out = out, .in = in, .col = col,
                                .col_stride = col_stride, .ld_col = packed_ld (c),
                                .height = height, .width = width,
                                .out_h = agc_conv_out_size (c, height),
                                .out_w = agc_conv_out_size (c, width) },
                  .conv = conv, .accumulate = accumulate, .relu = relu };
  int n_rows = batch * r.geometry.out_h * r.geometry.out_w;
  r.plan = packed_plan (c, n_rows, agc_threads_count ());
  if (r.plan.shared_col)
    agc_parallel_for (n_rows, agc_threads_row_grain (n_rows, conv_k (c)), im2col_job,
                      &r.geometry);
  agc_parallel_for (r.plan.n_row_jobs * r.plan.n_col_jobs, 1, packed_jobs, &r);
  return TRUE;
}

typedef struct
{
  const ConvRun *geometry;
  float *col; // rows from r0 on
  int r0;
  gboolean relu;
} Int8Chunk;

static void
int8_im2col_job (void *ctx, int begin, int end, int thread)
{
  (void) thread;
  const Int8Chunk *ch = ctx;
  size_t k = conv_k (ch->geometry->conv);
  im2col_rows (ch->col + begin * k, k, ch->geometry, ch->r0 + begin, ch->r0 + end);
}

static void
int8_bias_act_job (void *ctx, int begin, int end, int thread)
{
  (void) thread;
  const Int8Chunk *ch = ctx;
  const AgcConv *c = ch->geometry->conv;
  bias_act (ch->geometry->out + (size_t) (ch->r0 + begin) * c->c_out, c->c_out, c->bias,
            end - begin, c->c_out, ch->relu);
}

// chunks of rows: col rows on the pool, one int8 product over the pool,
// bias and ReLU on the pool
static gboolean
int8_forward (float *out, const float *in, float *col, const Conv *conv, int batch, int height,
              int width, gboolean accumulate, gboolean relu, GError **error)
{
  const AgcConv *c = &conv->blas;
  ConvRun g = { .conv = c, .out = out, .in = in, .height = height, .width = width,
                .out_h = agc_conv_out_size (c, height), .out_w = agc_conv_out_size (c, width) };
  int n_rows = batch * g.out_h * g.out_w, k = conv_k (c), chunk = int8_chunk_rows (c, n_rows);
  for (int r0 = 0; r0 < n_rows; r0 += chunk)
    {
      int rows = MIN (chunk, n_rows - r0);
      Int8Chunk ch = { .geometry = &g, .col = col, .r0 = r0, .relu = relu };
      const float *a = in + (size_t) r0 * c->c_in;
      if (conv_needs_col (c))
        {
          agc_parallel_for (rows, agc_threads_row_grain (rows, k), int8_im2col_job, &ch);
          a = col;
        }
      if (!agc_gemm_int8 (out + (size_t) r0 * c->c_out, c->c_out, a, k, conv->int8, rows,
                          accumulate ? 1.0f : 0.0f, error))
        return FALSE;
      agc_parallel_for (rows, agc_threads_row_grain (rows, c->c_out), int8_bias_act_job, &ch);
    }
  return TRUE;
}

// out[B*H'*W', c_out] = conv(in[B, H, W, c_in]) + bias (+ out when
// accumulate: the residual), then ReLU if asked, on engine e
static gboolean
conv_run (Engine e, float *out, const float *in, float *col, size_t col_stride, const Conv *conv,
          int batch, int height, int width, gboolean accumulate, gboolean relu, GError **error)
{
  if (e == ENGINE_INT8)
    return int8_forward (out, in, col, conv, batch, height, width, accumulate, relu, error);
  if (e == ENGINE_PACKED)
    return packed_forward (out, in, col, col_stride, conv, batch, height, width, accumulate,
                           relu, error);
  else
    agc_conv_forward (out, in, col, col_stride, &conv->blas, batch, height, width, accumulate,
                      relu);
  return TRUE;
}

gboolean
agc_resnet_set_options (AgcResNet *net, const AgcEngineOptions *options, GError **error)
{
  g_return_val_if_fail (net != NULL && options != NULL, FALSE);
  if (options->int8 && !agc_int8_available ())
    {
      g_set_error (error, AGC_ERROR, AGC_ERROR_UNSUPPORTED,
                   "int8 mode needs a CPU with AVX2 at least");
      return FALSE;
    }
  Conv *convs[1 + 4 * N_BLOCKS] = { &net->stem };
  int n = 1;
  for (int i = 0; i < N_BLOCKS; i++)
    {
      convs[n++] = &net->blocks[i].conv1;
      convs[n++] = &net->blocks[i].conv2;
      convs[n++] = &net->blocks[i].conv3;
      convs[n++] = &net->blocks[i].downsample;
    }
  for (int i = 0; i < n; i++)
    if (!options->int8)
      g_clear_pointer (&convs[i]->int8, agc_int8_matrix_free);
    else if (!conv_quantise (convs[i], error))
      {
        for (int j = 0; j < n; j++) // unchanged: int8 stays off
          g_clear_pointer (&convs[j]->int8, agc_int8_matrix_free);
        return FALSE;
      }
  net->options = *options;
  return TRUE;
}

AgcEngineOptions
agc_resnet_get_options (const AgcResNet *net)
{
  g_return_val_if_fail (net != NULL, agc_engine_default_options ());
  return net->options;
}

// floats each scratch buffer needs, found by walking the same geometry as
// the forward pass
typedef struct
{
  size_t act; // each of the two ping-pong activations [B*H*W, C]
  size_t mid; // each of the two bottleneck intermediates [B*H*W, width]
  size_t col; // the col tiles of all threads
} ScratchSizes;

size_t
agc_conv_col_floats (const AgcConv *c, int batch, int height, int width, int threads)
{
  int n_rows = batch * agc_conv_out_size (c, height) * agc_conv_out_size (c, width);
  Plan plan = conv_plan (n_rows, threads);
  return plan_col_floats (&plan, c, threads);
}

// col floats of conv on engine e for an input of batch x height x width
static size_t
col_floats (Engine e, const Conv *conv, int batch, int height, int width, int threads)
{
  const AgcConv *c = &conv->blas;
  int n_rows = batch * agc_conv_out_size (c, height) * agc_conv_out_size (c, width);
  size_t floats = engine_col_floats (e, c, n_rows, threads);
  int tile = e == ENGINE_PACKED ? winograd_tile (conv, batch, height, width) : 0;
  if (tile != 0)
    floats
      = MAX (floats, agc_winograd_scratch_floats (c->c_in, c->c_out, tile, batch, height, width));
  return floats;
}

static ScratchSizes
scratch_sizes (const AgcResNet *net, Engine e, int batch, int height, int width, int threads)
{
  ScratchSizes s = { .act = (size_t) 3 * batch * height * width };
  const AgcConv *stem = &net->stem.blas;
  s.col = col_floats (e, &net->stem, batch, height, width, threads);
  int h = agc_conv_out_size (stem, height), w = agc_conv_out_size (stem, width);
  s.act = MAX (s.act, (size_t) stem->c_out * batch * h * w);
  h = (h - 1) / 2 + 1, w = (w - 1) / 2 + 1; // max-pool
  for (int i = 0; i < N_BLOCKS; i++)
    {
      const Bottleneck *blk = &net->blocks[i];
      s.mid = MAX (s.mid, (size_t) blk->conv1.blas.c_out * batch * h * w);
      s.col = MAX (s.col, col_floats (e, &blk->conv2, batch, h, w, threads));
      if (blk->downsample.blas.weight != NULL)
        s.col = MAX (s.col, col_floats (e, &blk->downsample, batch, h, w, threads));
      h = agc_conv_out_size (&blk->conv2.blas, h), w = agc_conv_out_size (&blk->conv2.blas, w);
      s.mid = MAX (s.mid, (size_t) blk->conv2.blas.c_out * batch * h * w);
      s.act = MAX (s.act, (size_t) blk->conv3.blas.c_out * batch * h * w);
    }
  return s;
}

gboolean
agc_resnet_forward (const AgcResNet *net, const float *pixels, int batch, int height, int width,
                    float *features, GError **error)
{
  g_return_val_if_fail (net != NULL && pixels != NULL && features != NULL, FALSE);
  g_return_val_if_fail (batch > 0 && height > 0 && width > 0, FALSE);

  // keeps every GEMM dimension (never more than B*H*W rows) well inside the
  // int that BLAS takes
  if ((gint64) batch * height * width > G_MAXINT / 64)
    {
      g_set_error (error, AGC_ERROR, AGC_ERROR_INPUT,
                   "a batch of %d images of %d x %d pixels is too large for one pass", batch,
                   width, height);
      return FALSE;
    }
  int threads = agc_threads_count ();
  Engine e = engine_of (net);
  ScratchSizes s = scratch_sizes (net, e, batch, height, width, threads);
  size_t col_stride = s.col / threads; // one tile per thread, where tiles are used
  float *cursor = agc_arena_reserve ((AgcArena *) &net->scratch,
                                     2 * agc_arena_size (s.act) + 2 * agc_arena_size (s.mid)
                                       + agc_arena_size (s.col),
                                     "the ResNet-50 activations", error);
  if (cursor == NULL)
    return FALSE;
  float *x = agc_arena_take (&cursor, s.act);   // [B*H*W, C], the block input
  float *y = agc_arena_take (&cursor, s.act);   // [B*H*W, C], the next one
  float *t1 = agc_arena_take (&cursor, s.mid);  // [B*H*W, width]
  float *t2 = agc_arena_take (&cursor, s.mid);  // [B*H'*W', width]
  float *col = agc_arena_take (&cursor, s.col); // tiles of [rows, k*k*C_in]

  // the convs' GEMMs run inside pool regions, one per thread
  agc_threads_blas_serial_begin ();
  ToPixelMajor t = { .out = x, .in = pixels, .height = height, .width = width };
  agc_parallel_for (batch * height, 0, to_pixel_major_rows, &t);

  int h = height, w = width;
  gboolean ok = conv_run (e, y, x, col, col_stride, &net->stem, batch, h, w, FALSE, TRUE, error);
  h = agc_conv_out_size (&net->stem.blas, h), w = agc_conv_out_size (&net->stem.blas, w);
  PoolRun pool = { .out = x, .in = y, .channels = STEM_WIDTH, .height = h, .width = w,
                   .out_h = (h - 1) / 2 + 1, .out_w = (w - 1) / 2 + 1 };
  if (ok)
    agc_parallel_for (batch * pool.out_h, 0, maxpool_rows, &pool);
  h = pool.out_h, w = pool.out_w;

  for (int i = 0; ok && i < N_BLOCKS; i++)
    {
      const Bottleneck *blk = &net->blocks[i];
      const AgcConv *conv2 = &blk->conv2.blas;
      int h2 = agc_conv_out_size (conv2, h), w2 = agc_conv_out_size (conv2, w);
      ok = conv_run (e, t1, x, col, col_stride, &blk->conv1, batch, h, w, FALSE, TRUE, error)
           && conv_run (e, t2, t1, col, col_stride, &blk->conv2, batch, h, w, FALSE, TRUE, error);
      // the residual sum builds up in the identity's buffer: x itself, or
      // the projection in y
      float *sum = x;
      if (ok && blk->downsample.blas.weight != NULL)
        {
          ok = conv_run (e, y, x, col, col_stride, &blk->downsample, batch, h, w, FALSE, FALSE,
                         error);
          sum = y;
        }
      ok = ok
           && conv_run (e, sum, t2, col, col_stride, &blk->conv3, batch, h2, w2, TRUE, TRUE, error);
      if (sum == y)
        y = x, x = sum;
      h = h2, w = w2;
    }
  agc_threads_blas_serial_end ();
  if (!ok)
    return FALSE;

  // global average pool: features[b, c] = mean of x[b, :, :, c]
  size_t n_pixels = (size_t) h * w;
  for (int b = 0; b < batch; b++)
    {
      double sum[AGC_RESNET_FEATURES] = { 0 };
      const float *img = x + (size_t) b * n_pixels * AGC_RESNET_FEATURES;
      for (size_t i = 0; i < n_pixels; i++)
        for (int c = 0; c < AGC_RESNET_FEATURES; c++)
          sum[c] += img[i * AGC_RESNET_FEATURES + c];
      for (int c = 0; c < AGC_RESNET_FEATURES; c++)
        features[(size_t) b * AGC_RESNET_FEATURES + c] = (float) (sum[c] / n_pixels);
    }
  return TRUE;
}
