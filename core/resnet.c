/* resnet.c — torchvision ResNet-50 (no fc) on OpenBLAS.
 *
 * Activations are channel-major, [C, B, H, W] = [C, B*H*W]: every conv is one
 * GEMM weight[C_out, C_in*k*k] @ col[C_in*k*k, B*H'*W'] whose N grows with the
 * batch (thick even at layer4's 7x7), a 1x1 stride-1 conv reads the
 * activation itself as its right-hand matrix with no copy, and the folded
 * BatchNorm bias and ReLU act on whole rows. */
#include "resnet.h"

#include <cblas.h>
#include <math.h>
#include <string.h>

#define N_LAYERS 4
#define N_BLOCKS 16 /* 3 + 4 + 6 + 3 */
#define EXPANSION 4 /* bottleneck output channels / width */
#define STEM_WIDTH 64
#define BN_EPS 1e-5

static const int blocks_per_layer[N_LAYERS] = { 3, 4, 6, 3 };
static const int layer_width[N_LAYERS] = { 64, 128, 256, 512 };

typedef struct
{
  int c_in, c_out, kernel, stride, padding;
  float *weight; // [c_out, c_in * kernel * kernel], BatchNorm scale folded in
  float *bias;   // [c_out], BatchNorm shift
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
};

/* ---- loading ----------------------------------------------------------- */

static void
conv_clear (Conv *conv)
{
  g_clear_pointer (&conv->weight, g_free);
  g_clear_pointer (&conv->bias, g_free);
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
  g_free (net);
}

// conv (no bias, as torchvision's) followed by BatchNorm in eval mode:
// y = (W x - mean) * s + beta with s = gamma / sqrt(var + eps), i.e. a conv
// with weight s * W and bias beta - mean * s
static gboolean
conv_bn_load (Conv *conv, const AgcWeights *weights, const char *prefix, const char *conv_name,
              const char *bn_name, int c_in, int c_out, int kernel, int stride, GError **error)
{
  *conv = (Conv) { .c_in = c_in, .c_out = c_out, .kernel = kernel, .stride = stride,
                   .padding = kernel / 2 };
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
      size_t k = (size_t) c_in * kernel * kernel;
      conv->bias = g_new (float, c_out);
      for (int o = 0; o < c_out; o++)
        {
          double scale = bn[0][o] / sqrt ((double) bn[3][o] + BN_EPS);
          float *row = conv->weight + (size_t) o * k;
          for (size_t i = 0; i < k; i++)
            row[i] = (float) (row[i] * scale);
          conv->bias[o] = (float) (bn[1][o] - bn[2][o] * scale);
        }
    }
  for (int f = 0; f < 4; f++)
    g_free (bn[f]);
  return ok;
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
        = g_strdup_printf ("%slayer%d.%d.conv1.weight", prefix, l + 1, blocks_per_layer[l]);
      const AgcTensorView *t = agc_weights_find (weights, name);
      if (t != NULL)
        {
          g_set_error (error, AGC_ERROR, AGC_ERROR_UNSUPPORTED,
                       "%s: tensor '%s' means more than %d blocks in layer%d, a deeper ResNet "
                       "than ResNet-50, the only depth supported",
                       t->file, name, blocks_per_layer[l], l + 1);
          return FALSE;
        }
    }
  return TRUE;
}

static gboolean
block_load (Bottleneck *block, const AgcWeights *weights, const char *prefix, int layer,
            int index, int c_in, GError **error)
{
  int width = layer_width[layer], c_out = EXPANSION * width;
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

  AgcResNet *net = g_new0 (AgcResNet, 1);
  gboolean ok = conv_bn_load (&net->stem, weights, prefix, "conv1", "bn1", 3, STEM_WIDTH, 7, 2,
                              error);
  int c_in = STEM_WIDTH, b = 0;
  for (int l = 0; ok && l < N_LAYERS; l++)
    for (int i = 0; ok && i < blocks_per_layer[l]; i++)
      {
        ok = block_load (&net->blocks[b++], weights, prefix, l, i, c_in, error);
        c_in = EXPANSION * layer_width[l];
      }
  if (!ok)
    {
      agc_resnet_free (net);
      return NULL;
    }
  return net;
}

/* ---- forward ----------------------------------------------------------- */

static int
conv_out_size (const Conv *c, int size)
{
  return (size + 2 * c->padding - c->kernel) / c->stride + 1;
}

static gboolean
conv_needs_col (const Conv *c)
{
  return c->kernel != 1 || c->stride != 1;
}

// im2col works on a few whole images at a time: this budget (8 MB) keeps the
// matrix warm in cache between im2col and the GEMM and the scratch small,
// while a chunk still has hundreds of columns or more
#define COL_BUDGET_FLOATS ((size_t) 1 << 21)

// images per im2col chunk for a conv with out_pixels output pixels per image
static int
col_chunk_images (const Conv *c, int batch, int out_pixels)
{
  size_t per_image = (size_t) c->c_in * c->kernel * c->kernel * out_pixels;
  return (int) CLAMP (COL_BUDGET_FLOATS / per_image, 1, (size_t) batch);
}

// the output indices o in [0, n_out) whose input index o * stride + offset
// falls inside [0, size): o_begin <= o < o_end
static void
valid_range (int *o_begin, int *o_end, int offset, int stride, int size, int n_out)
{
  int begin = offset >= 0 ? 0 : (-offset + stride - 1) / stride;
  int end = size - 1 - offset < 0 ? 0 : (size - 1 - offset) / stride + 1;
  *o_begin = MIN (begin, n_out);
  *o_end = CLAMP (end, *o_begin, n_out);
}

// col[C_in * k * k, n_images * H' * W'] for images [first, first + n_images)
// of in[C_in, batch, H, W]: row (c, ky, kx) holds, for every output pixel,
// the input pixel that kernel tap sees (0 in the padding), so the conv
// becomes a GEMM
static void
im2col (float *col, const float *in, const Conv *c, int batch, int first, int n_images,
        int height, int width)
{
  int k = c->kernel, s = c->stride, p = c->padding;
  int out_h = conv_out_size (c, height), out_w = conv_out_size (c, width);
  size_t n = (size_t) n_images * out_h * out_w;
  for (int ch = 0; ch < c->c_in; ch++)
    for (int ky = 0; ky < k; ky++)
      for (int kx = 0; kx < k; kx++)
        {
          float *row = col + ((size_t) (ch * k + ky) * k + kx) * n;
          int x0, x1;
          valid_range (&x0, &x1, kx - p, s, width, out_w);
          for (int b = 0; b < n_images; b++)
            {
              const float *plane = in + ((size_t) ch * batch + first + b) * height * width;
              for (int oy = 0; oy < out_h; oy++)
                {
                  float *dst = row + ((size_t) b * out_h + oy) * out_w;
                  int iy = oy * s - p + ky;
                  if (iy < 0 || iy >= height)
                    {
                      memset (dst, 0, (size_t) out_w * sizeof (float));
                      continue;
                    }
                  const float *src = plane + (size_t) iy * width;
                  for (int ox = 0; ox < x0; ox++)
                    dst[ox] = 0.0f;
                  if (s == 1)
                    memcpy (dst + x0, src + x0 + kx - p, (size_t) (x1 - x0) * sizeof (float));
                  else
                    for (int ox = x0; ox < x1; ox++)
                      dst[ox] = src[ox * s + kx - p];
                  for (int ox = x1; ox < out_w; ox++)
                    dst[ox] = 0.0f;
                }
            }
        }
}

// row[n] += bias, then max(row, 0) if relu.  Blocks of 8 with a comparison,
// not fmaxf: GCC turns them into vector max at -O2, without -ffast-math
static void
bias_relu (float *row, float bias, int n, gboolean relu)
{
  int i = 0;
  if (relu)
    for (; i + 8 <= n; i += 8)
      for (int j = 0; j < 8; j++)
        {
          float v = row[i + j] + bias;
          row[i + j] = v > 0.0f ? v : 0.0f;
        }
  for (; i < n; i++)
    {
      float v = row[i] + bias;
      row[i] = relu && v < 0.0f ? 0.0f : v;
    }
}

// out[C_out, B*H'*W'] = conv(in[C_in, B*H*W]) + bias (+ out when
// accumulate: the residual), then ReLU if asked
static void
conv_forward (float *out, const float *in, float *col, const Conv *c, int batch, int height,
              int width, gboolean accumulate, gboolean relu)
{
  int out_pixels = conv_out_size (c, height) * conv_out_size (c, width);
  int n = batch * out_pixels;
  int k = c->c_in * c->kernel * c->kernel;
  float beta = accumulate ? 1.0f : 0.0f;
  if (!conv_needs_col (c))
    cblas_sgemm (CblasRowMajor, CblasNoTrans, CblasNoTrans, c->c_out, n, k, 1.0f, c->weight, k,
                 in, n, beta, out, n);
  else
    {
      int step = col_chunk_images (c, batch, out_pixels);
      for (int first = 0; first < batch; first += step)
        {
          int n_images = MIN (step, batch - first), n_cols = n_images * out_pixels;
          im2col (col, in, c, batch, first, n_images, height, width);
          // the chunk's columns of out: same rows, leading dimension n
          cblas_sgemm (CblasRowMajor, CblasNoTrans, CblasNoTrans, c->c_out, n_cols, k, 1.0f,
                       c->weight, k, col, n_cols, beta, out + (size_t) first * out_pixels, n);
        }
    }
  for (int o = 0; o < c->c_out; o++)
    bias_relu (out + (size_t) o * n, c->bias[o], n, relu);
}

// 3x3, stride 2, padding 1 (never chosen, as if -inf) on each of the
// n_planes [height, width] planes
static void
maxpool_forward (float *out, const float *in, int n_planes, int height, int width)
{
  int out_h = (height - 1) / 2 + 1, out_w = (width - 1) / 2 + 1;
  for (int p = 0; p < n_planes; p++)
    {
      const float *plane = in + (size_t) p * height * width;
      float *dst = out + (size_t) p * out_h * out_w;
      for (int oy = 0; oy < out_h; oy++)
        for (int ox = 0; ox < out_w; ox++)
          {
            float m = -INFINITY;
            for (int y = MAX (2 * oy - 1, 0); y <= MIN (2 * oy + 1, height - 1); y++)
              for (int x = MAX (2 * ox - 1, 0); x <= MIN (2 * ox + 1, width - 1); x++)
                {
                  float v = plane[(size_t) y * width + x];
                  m = v > m ? v : m;
                }
            dst[(size_t) oy * out_w + ox] = m;
          }
    }
}

// floats each scratch buffer needs, found by walking the same geometry as
// the forward pass
typedef struct
{
  size_t act; // each of the two ping-pong activations [C, B*H*W]
  size_t mid; // each of the two bottleneck intermediates [width, B*H*W]
  size_t col; // the im2col matrix
} ScratchSizes;

// im2col floats a conv needs for in[.., batch, height, width]
static size_t
col_floats (const Conv *c, int batch, int height, int width)
{
  if (!conv_needs_col (c))
    return 0;
  int out_pixels = conv_out_size (c, height) * conv_out_size (c, width);
  return (size_t) col_chunk_images (c, batch, out_pixels) * c->c_in * c->kernel * c->kernel
         * out_pixels;
}

static ScratchSizes
scratch_sizes (const AgcResNet *net, int batch, int height, int width)
{
  ScratchSizes s = { .act = (size_t) 3 * batch * height * width };
  const Conv *stem = &net->stem;
  s.col = col_floats (stem, batch, height, width);
  int h = conv_out_size (stem, height), w = conv_out_size (stem, width);
  s.act = MAX (s.act, (size_t) stem->c_out * batch * h * w);
  h = (h - 1) / 2 + 1, w = (w - 1) / 2 + 1; // max-pool
  for (int i = 0; i < N_BLOCKS; i++)
    {
      const Bottleneck *blk = &net->blocks[i];
      s.mid = MAX (s.mid, (size_t) blk->conv1.c_out * batch * h * w);
      s.col = MAX (s.col, col_floats (&blk->conv2, batch, h, w));
      if (blk->downsample.weight != NULL)
        s.col = MAX (s.col, col_floats (&blk->downsample, batch, h, w));
      h = conv_out_size (&blk->conv2, h), w = conv_out_size (&blk->conv2, w);
      s.mid = MAX (s.mid, (size_t) blk->conv2.c_out * batch * h * w);
      s.act = MAX (s.act, (size_t) blk->conv3.c_out * batch * h * w);
    }
  return s;
}

gboolean
agc_resnet_forward (const AgcResNet *net, const float *pixels, int batch, int height, int width,
                    float *features, GError **error)
{
  g_return_val_if_fail (net != NULL && pixels != NULL && features != NULL, FALSE);
  g_return_val_if_fail (batch > 0 && height > 0 && width > 0, FALSE);

  // keeps every GEMM dimension (never more than B*H*W columns) well inside the
  // int that BLAS takes
  if ((gint64) batch * height * width > G_MAXINT / 64)
    {
      g_set_error (error, AGC_ERROR, AGC_ERROR_INPUT,
                   "a batch of %d images of %d x %d pixels is too large for one pass", batch,
                   width, height);
      return FALSE;
    }
  ScratchSizes s = scratch_sizes (net, batch, height, width);
  size_t n_floats = 2 * s.act + 2 * s.mid + s.col;
  float *scratch = g_try_new (float, n_floats);
  if (scratch == NULL)
    {
      g_set_error (error, AGC_ERROR, AGC_ERROR_INPUT,
                   "cannot allocate %zu MB for a batch of %d images of %d x %d pixels",
                   n_floats * sizeof (float) >> 20, batch, width, height);
      return FALSE;
    }
  float *x = scratch;       // [C, B*H*W], the block input
  float *y = x + s.act;     // [C, B*H*W], the next one
  float *t1 = y + s.act;    // [width, B*H*W]
  float *t2 = t1 + s.mid;   // [width, B*H'*W']
  float *col = t2 + s.mid;  // [C_in*k*k, a few images' H'*W']

  // [B, 3, H, W] -> [3, B, H, W]
  size_t plane = (size_t) height * width;
  for (int c = 0; c < 3; c++)
    for (int b = 0; b < batch; b++)
      memcpy (x + ((size_t) c * batch + b) * plane, pixels + ((size_t) b * 3 + c) * plane,
              plane * sizeof (float));

  int h = height, w = width;
  conv_forward (y, x, col, &net->stem, batch, h, w, FALSE, TRUE);
  h = conv_out_size (&net->stem, h), w = conv_out_size (&net->stem, w);
  maxpool_forward (x, y, STEM_WIDTH * batch, h, w);
  h = (h - 1) / 2 + 1, w = (w - 1) / 2 + 1;

  for (int i = 0; i < N_BLOCKS; i++)
    {
      const Bottleneck *blk = &net->blocks[i];
      int h2 = conv_out_size (&blk->conv2, h), w2 = conv_out_size (&blk->conv2, w);
      conv_forward (t1, x, col, &blk->conv1, batch, h, w, FALSE, TRUE);
      conv_forward (t2, t1, col, &blk->conv2, batch, h, w, FALSE, TRUE);
      // the residual sum builds up in the identity's buffer: x itself, or
      // the projection in y
      float *sum = x;
      if (blk->downsample.weight != NULL)
        {
          conv_forward (y, x, col, &blk->downsample, batch, h, w, FALSE, FALSE);
          sum = y;
        }
      conv_forward (sum, t2, col, &blk->conv3, batch, h2, w2, TRUE, TRUE);
      if (sum == y)
        y = x, x = sum;
      h = h2, w = w2;
    }

  // global average pool: features[b, c] = mean of x[c, b, :, :]
  size_t n_pixels = (size_t) h * w;
  for (int c = 0; c < AGC_RESNET_FEATURES; c++)
    for (int b = 0; b < batch; b++)
      {
        const float *p = x + ((size_t) c * batch + b) * n_pixels;
        double sum = 0.0;
        for (size_t i = 0; i < n_pixels; i++)
          sum += p[i];
        features[(size_t) b * AGC_RESNET_FEATURES + c] = (float) (sum / n_pixels);
      }
  g_free (scratch);
  return TRUE;
}
