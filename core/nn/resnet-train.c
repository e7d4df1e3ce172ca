/* resnet-train.c — ResNet-50 in training mode (resnet-train.h).
 *
 * The forward runs each conv with agc_conv_forward (resnet.c's tiles) into
 * z, the conv's output before BatchNorm, then BatchNorm on the batch's
 * statistics (+ the identity, + ReLU) into the unit's out.  The backward
 * walks the blocks in reverse with two gradient buffers for the stream
 * (block outputs) and two for the bottleneck's middle, each conv's
 * gradients as two GEMMs on its col matrix (weight: col^T dz; input:
 * dz W^T, put back on the pixels by col2im). */
#include "nn/resnet-train.h"

#include "kernels/threads.h"
#include "nn/block-train.h"

#include <cblas.h>
#include <math.h>
#include <string.h>

#define N_BLOCKS 16
#define STEM_WIDTH 64
#define BN_EPS 1e-5
#define BN_MOMENTUM 0.1
#define FEATURES 2048

static int
unit_index (int block, int i)
{
  return 1 + 4 * block + i;
}

/* ---- parameters -------------------------------------------------------- */

// walks every unit's geometry and names; with params set, points its arrays
static void
carve (AgcResNetTrain *net, AgcCarver *params, AgcCarver *grads, AgcCarver *buffers)
{
  for (int u = 0; u < AGC_RESNET_UNITS; u++)
    {
      AgcConvBN *cb = &net->units[u];
      int c_out = cb->conv.c_out;
      if (c_out == 0)
        continue;
      size_t k = (size_t) cb->conv.kernel * cb->conv.kernel * cb->conv.c_in;
      cb->conv.weight = agc_carve_take (params, k * c_out);
      cb->gamma = agc_carve_take (params, c_out);
      cb->beta = agc_carve_take (params, c_out);
      cb->dweight = agc_carve_take (grads, k * c_out);
      cb->dgamma = agc_carve_take (grads, c_out);
      cb->dbeta = agc_carve_take (grads, c_out);
      cb->running_mean = agc_carve_take (buffers, c_out);
      cb->running_var = agc_carve_take (buffers, c_out);
    }
}

static void
unit_set (AgcConvBN *cb, const char *conv_name, const char *bn_name, int c_in, int c_out,
          int kernel, int stride)
{
  cb->conv = (AgcConv) { .c_in = c_in, .c_out = c_out, .kernel = kernel, .stride = stride,
                         .padding = kernel / 2 };
  cb->conv_name = g_strdup (conv_name);
  cb->bn_name = g_strdup (bn_name);
}

AgcResNetTrain *
agc_resnet_train_new (void)
{
  AgcResNetTrain *net = g_new0 (AgcResNetTrain, 1);
  unit_set (&net->units[0], "conv1", "bn1", 3, STEM_WIDTH, 7, 2);
  int c_in = STEM_WIDTH, b = 0;
  for (int l = 0; l < 4; l++)
    for (int i = 0; i < agc_resnet_blocks_per_layer[l]; i++, b++)
      {
        int width = agc_resnet_layer_width[l], c_out = 4 * width;
        int stride = l > 0 && i == 0 ? 2 : 1;
        g_autofree char *p = g_strdup_printf ("layer%d.%d.", l + 1, i);
        g_autofree char *c1 = g_strconcat (p, "conv1", NULL), *n1 = g_strconcat (p, "bn1", NULL);
        g_autofree char *c2 = g_strconcat (p, "conv2", NULL), *n2 = g_strconcat (p, "bn2", NULL);
        g_autofree char *c3 = g_strconcat (p, "conv3", NULL), *n3 = g_strconcat (p, "bn3", NULL);
        unit_set (&net->units[unit_index (b, 0)], c1, n1, c_in, width, 1, 1);
        unit_set (&net->units[unit_index (b, 1)], c2, n2, width, width, 3, stride);
        unit_set (&net->units[unit_index (b, 2)], c3, n3, width, c_out, 1, 1);
        if (i == 0)
          {
            g_autofree char *cd = g_strconcat (p, "downsample.0", NULL);
            g_autofree char *nd = g_strconcat (p, "downsample.1", NULL);
            unit_set (&net->units[unit_index (b, 3)], cd, nd, c_in, c_out, 1, stride);
          }
        c_in = c_out;
      }
  AgcCarver params = { 0 }, grads = { 0 }, buffers = { 0 };
  carve (net, &params, &grads, &buffers);
  net->n_params = params.n_floats;
  net->n_buffers = buffers.n_floats;
  net->params = agc_carver_allocate (&params);
  net->grads = agc_carver_allocate (&grads);
  net->buffers = agc_carver_allocate (&buffers);
  params.n_floats = grads.n_floats = buffers.n_floats = 0;
  carve (net, &params, &grads, &buffers);
  return net;
}

void
agc_resnet_train_free (AgcResNetTrain *net)
{
  if (net == NULL)
    return;
  for (int u = 0; u < AGC_RESNET_UNITS; u++)
    {
      g_free (net->units[u].conv_name);
      g_free (net->units[u].bn_name);
    }
  g_free (net->params);
  g_free (net->grads);
  g_free (net->buffers);
  g_free (net);
}

static gboolean
unit_load (AgcConvBN *cb, const AgcWeights *weights, const char *prefix, GError **error)
{
  const AgcConv *c = &cb->conv;
  int k = c->kernel, c_in = c->c_in, c_out = c->c_out;
  g_autofree char *name = g_strconcat (prefix, cb->conv_name, ".weight", NULL);
  int64_t shape[4] = { c_out, c_in, k, k };
  float *w = agc_weights_take_f32 (weights, name, 4, shape, error);
  if (w == NULL)
    return FALSE;
  // [c_out, c_in, ky, kx] -> [ky, kx, c_in, c_out]
  size_t taps = (size_t) k * k;
  for (int o = 0; o < c_out; o++)
    for (int i = 0; i < c_in; i++)
      for (size_t t = 0; t < taps; t++)
        c->weight[(t * c_in + i) * c_out + o] = w[((size_t) o * c_in + i) * taps + t];
  g_free (w);
  static const char *const fields[4] = { "weight", "bias", "running_mean", "running_var" };
  float *dst[4] = { cb->gamma, cb->beta, cb->running_mean, cb->running_var };
  for (int f = 0; f < 4; f++)
    {
      g_autofree char *bn = g_strconcat (prefix, cb->bn_name, ".", fields[f], NULL);
      float *v = agc_weights_take_1d (weights, bn, c_out, error);
      if (v == NULL)
        return FALSE;
      memcpy (dst[f], v, sizeof (float) * c_out);
      g_free (v);
    }
  return TRUE;
}

AgcResNetTrain *
agc_resnet_train_load (const AgcWeights *weights, const char *prefix, GError **error)
{
  g_return_val_if_fail (weights != NULL && prefix != NULL, NULL);
  AgcResNetTrain *net = agc_resnet_train_new ();
  if (net->params == NULL || net->grads == NULL || net->buffers == NULL)
    {
      g_set_error (error, AGC_ERROR, AGC_ERROR_INPUT, "out of memory for the ResNet-50 to train");
      agc_resnet_train_free (net);
      return NULL;
    }
  for (int u = 0; u < AGC_RESNET_UNITS; u++)
    if (net->units[u].conv.c_out > 0 && !unit_load (&net->units[u], weights, prefix, error))
      {
        agc_resnet_train_free (net);
        return NULL;
      }
  return net;
}

AgcResNetTrain *
agc_resnet_train_copy (const AgcResNetTrain *net)
{
  AgcResNetTrain *copy = agc_resnet_train_new ();
  memcpy (copy->params, net->params, sizeof (float) * net->n_params);
  memcpy (copy->buffers, net->buffers, sizeof (float) * net->n_buffers);
  copy->num_batches_tracked = net->num_batches_tracked;
  return copy;
}

void
agc_resnet_train_decay_mask (const AgcResNetTrain *net, gboolean *mask)
{
  for (int u = 0; u < AGC_RESNET_UNITS; u++)
    {
      const AgcConvBN *cb = &net->units[u];
      if (cb->conv.c_out == 0)
        continue;
      size_t w0 = (size_t) (cb->conv.weight - net->params);
      size_t k = (size_t) cb->conv.kernel * cb->conv.kernel * cb->conv.c_in * cb->conv.c_out;
      for (size_t i = 0; i < k; i++)
        mask[w0 + i] = TRUE;
      for (size_t i = 0; i < 2 * (size_t) cb->conv.c_out; i++)
        mask[w0 + k + i] = FALSE;
    }
}

static void
add_view (GArray *views, GPtrArray *owned, const char *prefix, const char *unit,
          const char *field, const float *data, int n_dims, const int64_t *shape)
{
  AgcTensorView v = { .dtype = AGC_DTYPE_F32, .n_dims = n_dims, .file = "" };
  char *name = g_strconcat (prefix, unit, ".", field, NULL);
  size_t n = 1;
  for (int d = 0; d < n_dims; d++)
    n *= (size_t) (v.shape[d] = shape[d]);
  float *copy = g_memdup2 (data, n * sizeof (float));
  g_ptr_array_add (owned, name);
  g_ptr_array_add (owned, copy);
  v.name = name;
  v.data = (const guint8 *) copy;
  v.n_bytes = n * sizeof (float);
  g_array_append_val (views, v);
}

void
agc_resnet_train_export (const AgcResNetTrain *net, const char *prefix, GArray *views,
                         GPtrArray *owned)
{
  for (int u = 0; u < AGC_RESNET_UNITS; u++)
    {
      const AgcConvBN *cb = &net->units[u];
      const AgcConv *c = &cb->conv;
      if (c->c_out == 0)
        continue;
      int k = c->kernel, c_in = c->c_in, c_out = c->c_out;
      size_t taps = (size_t) k * k;
      float *w = g_new (float, taps * c_in * c_out);
      for (int o = 0; o < c_out; o++)
        for (int i = 0; i < c_in; i++)
          for (size_t t = 0; t < taps; t++)
            w[((size_t) o * c_in + i) * taps + t] = c->weight[(t * c_in + i) * c_out + o];
      int64_t shape[4] = { c_out, c_in, k, k }, n = c_out;
      add_view (views, owned, prefix, cb->conv_name, "weight", w, 4, shape);
      g_free (w);
      add_view (views, owned, prefix, cb->bn_name, "weight", cb->gamma, 1, &n);
      add_view (views, owned, prefix, cb->bn_name, "bias", cb->beta, 1, &n);
      add_view (views, owned, prefix, cb->bn_name, "running_mean", cb->running_mean, 1, &n);
      add_view (views, owned, prefix, cb->bn_name, "running_var", cb->running_var, 1, &n);
    }
}

/* ---- activations ------------------------------------------------------- */

typedef struct
{
  float *z;          // [P, c_out] the conv's output
  float *mean, *rstd; // [c_out] the batch's statistics
  float *out;        // [P, c_out] after BatchNorm (+ identity) (+ ReLU); NULL: downsample
  int in_h, in_w;    // the conv's input size
} UnitActs;

struct AgcResNetActs
{
  int batch, height, width;
  float *memory;
  size_t capacity;
  float *pixels; // [B*H*W, 3]
  UnitActs u[AGC_RESNET_UNITS];
  float *pool;   // [B*ph*pw, 64]
  int stem_h, stem_w, pool_h, pool_w, final_h, final_w;
  float *col;    // the forward's tiles, the backward's col and dcol
  size_t col_stride;
  float *grad_a, *grad_b, *grad_mid1, *grad_mid2, *grad_z; // the backward's
};

void
agc_resnet_acts_free (AgcResNetActs *acts)
{
  if (acts == NULL)
    return;
  g_free (acts->memory);
  g_free (acts);
}

// the same walk counts (k->memory NULL) and points
static void
acts_carve (const AgcResNetTrain *net, AgcResNetActs *a, AgcCarver *k)
{
  int batch = a->batch, threads = agc_threads_count ();
  size_t col_fwd = 0, col_bwd = 0, act = 0, mid = 0, z_max = 0;
  a->pixels = agc_carve_take (k, (size_t) batch * a->height * a->width * 3);
  int h = a->height, w = a->width;
  for (int u = 0; u < AGC_RESNET_UNITS; u++)
    {
      const AgcConv *c = &net->units[u].conv;
      UnitActs *ua = &a->u[u];
      if (c->c_out == 0)
        continue;
      int i = (u - 1) % 4; // 0..3 within a block
      if (u > 0 && i == 0) // a block's input: the pool's output or the last block's
        h = a->final_h, w = a->final_w;
      int in_h = h, in_w = w;
      if (u > 0 && i == 1)
        in_h = a->u[u - 1].in_h, in_w = a->u[u - 1].in_w;
      if (u > 0 && (i == 2))
        in_h = agc_conv_out_size (&net->units[u - 1].conv, a->u[u - 1].in_h),
        in_w = agc_conv_out_size (&net->units[u - 1].conv, a->u[u - 1].in_w);
      if (u > 0 && i == 3)
        in_h = a->u[u - 3].in_h, in_w = a->u[u - 3].in_w;
      ua->in_h = in_h, ua->in_w = in_w;
      int oh = agc_conv_out_size (c, in_h), ow = agc_conv_out_size (c, in_w);
      size_t p = (size_t) batch * oh * ow, n = p * c->c_out;
      ua->z = agc_carve_take (k, n);
      ua->mean = agc_carve_take (k, c->c_out);
      ua->rstd = agc_carve_take (k, c->c_out);
      ua->out = i == 3 ? NULL : agc_carve_take (k, n);
      col_fwd = MAX (col_fwd, agc_conv_col_floats (c, batch, in_h, in_w, threads));
      if (c->kernel != 1 || c->stride != 1)
        col_bwd = MAX (col_bwd, p * c->kernel * c->kernel * c->c_in);
      z_max = MAX (z_max, n);
      if (u == 0)
        {
          a->stem_h = oh, a->stem_w = ow;
          a->pool_h = (oh - 1) / 2 + 1, a->pool_w = (ow - 1) / 2 + 1;
          a->pool = agc_carve_take (k, (size_t) batch * a->pool_h * a->pool_w * STEM_WIDTH);
          act = MAX (act, n);
          a->final_h = a->pool_h, a->final_w = a->pool_w;
        }
      else if (i == 2)
        {
          act = MAX (act, n);
          a->final_h = oh, a->final_w = ow;
        }
      else if (i < 2)
        mid = MAX (mid, n);
    }
  a->col_stride = col_fwd / threads;
  a->col = agc_carve_take (k, MAX (col_fwd, col_bwd));
  a->grad_a = agc_carve_take (k, act);
  a->grad_b = agc_carve_take (k, act);
  a->grad_mid1 = agc_carve_take (k, mid);
  a->grad_mid2 = agc_carve_take (k, mid);
  a->grad_z = agc_carve_take (k, z_max);
}

static AgcResNetActs *
acts_for (const AgcResNetTrain *net, AgcResNetActs **acts, int batch, int height, int width,
          GError **error)
{
  AgcResNetActs *a = *acts;
  if (a == NULL)
    a = *acts = g_new0 (AgcResNetActs, 1);
  a->batch = batch, a->height = height, a->width = width;
  AgcCarver k = { 0 };
  acts_carve (net, a, &k);
  if (k.n_floats > a->capacity)
    {
      g_free (a->memory);
      a->capacity = 0;
      a->memory = g_try_new (float, k.n_floats);
      if (a->memory == NULL)
        {
          g_set_error (error, AGC_ERROR, AGC_ERROR_INPUT,
                       "out of memory for the training activations of %d images of %d x %d "
                       "pixels (%.0f MiB)", batch, width, height,
                       k.n_floats * 4.0 / (1 << 20));
          return NULL;
        }
      a->capacity = k.n_floats;
    }
  k = (AgcCarver) { .memory = a->memory };
  acts_carve (net, a, &k);
  return a;
}

/* ---- BatchNorm ------------------------------------------------------------ */

// out[P, C] (= or += when accumulate) (z - mean) * rstd * gamma + beta, then
// ReLU if relu; mean, rstd of the batch saved; running statistics moved
static void
batchnorm_forward (float *out, float *mean, float *rstd, const float *z, AgcConvBN *cb,
                   size_t n_rows, gboolean accumulate, gboolean relu, gboolean update_stats)
{
  int c_out = cb->conv.c_out;
  double *sum = g_new0 (double, 2 * (size_t) c_out), *sq = sum + c_out;
  for (size_t r = 0; r < n_rows; r++)
    for (int c = 0; c < c_out; c++)
      sum[c] += z[r * c_out + c];
  for (int c = 0; c < c_out; c++)
    sum[c] /= (double) n_rows;
  for (size_t r = 0; r < n_rows; r++)
    for (int c = 0; c < c_out; c++)
      {
        double d = z[r * c_out + c] - sum[c];
        sq[c] += d * d;
      }
  float *scale = g_new (float, c_out);
  for (int c = 0; c < c_out; c++)
    {
      double var = sq[c] / (double) n_rows;
      double r = 1.0 / sqrt (var + BN_EPS);
      mean[c] = (float) sum[c];
      rstd[c] = (float) r;
      scale[c] = (float) (r * cb->gamma[c]);
      if (update_stats)
        {
          double unbiased = n_rows > 1 ? sq[c] / (double) (n_rows - 1) : var;
          cb->running_mean[c]
            = (float) ((1.0 - BN_MOMENTUM) * cb->running_mean[c] + BN_MOMENTUM * sum[c]);
          cb->running_var[c]
            = (float) ((1.0 - BN_MOMENTUM) * cb->running_var[c] + BN_MOMENTUM * unbiased);
        }
    }
  for (size_t r = 0; r < n_rows; r++)
    {
      const float *zr = z + r * c_out;
      float *o = out + r * c_out;
      for (int c = 0; c < c_out; c++)
        {
          float v = (zr[c] - mean[c]) * scale[c] + cb->beta[c] + (accumulate ? o[c] : 0.0f);
          o[c] = relu && !(v > 0.0f) ? 0.0f : v;
        }
    }
  g_free (scale);
  g_free (sum);
}

// dz[P, C] = the gradient through training-mode BatchNorm of dy; adds into
// dgamma, dbeta
static void
batchnorm_backward (float *dz, const float *dy, const float *z, const float *mean,
                    const float *rstd, AgcConvBN *cb, size_t n_rows)
{
  int c_out = cb->conv.c_out;
  double *sum_dy = g_new0 (double, 2 * (size_t) c_out), *sum_dy_xhat = sum_dy + c_out;
  for (size_t r = 0; r < n_rows; r++)
    for (int c = 0; c < c_out; c++)
      {
        double g = dy[r * c_out + c];
        sum_dy[c] += g;
        sum_dy_xhat[c] += g * (z[r * c_out + c] - mean[c]) * rstd[c];
      }
  float *a = g_new (float, 3 * (size_t) c_out), *b = a + c_out, *m = b + c_out;
  for (int c = 0; c < c_out; c++)
    {
      cb->dgamma[c] += (float) sum_dy_xhat[c];
      cb->dbeta[c] += (float) sum_dy[c];
      // dz = gamma rstd (dy - mean(dy) - xhat mean(dy xhat))
      double k = cb->gamma[c] * rstd[c];
      a[c] = (float) k;
      b[c] = (float) (k * sum_dy_xhat[c] / (double) n_rows * rstd[c]);
      m[c] = (float) (k * sum_dy[c] / (double) n_rows);
    }
  for (size_t r = 0; r < n_rows; r++)
    for (int c = 0; c < c_out; c++)
      {
        size_t i = r * c_out + c;
        dz[i] = a[c] * dy[i] - m[c] - b[c] * (z[i] - mean[c]);
      }
  g_free (a);
  g_free (sum_dy);
}

// g[n] *= (out[n] > 0): back through a ReLU from its output
static void
relu_backward (float *g, const float *out, size_t n)
{
  for (size_t i = 0; i < n; i++)
    g[i] = out[i] > 0.0f ? g[i] : 0.0f;
}

/* ---- forward ------------------------------------------------------------- */

// 3x3/2 max-pool, padding 1 (as resnet.c's)
static void
maxpool_forward (float *out, const float *in, int batch, int h, int w, int oh, int ow, int n_c)
{
  for (int b = 0; b < batch; b++)
    for (int oy = 0; oy < oh; oy++)
      for (int ox = 0; ox < ow; ox++)
        {
          float *dst = out + (((size_t) b * oh + oy) * ow + ox) * n_c;
          for (int c = 0; c < n_c; c++)
            dst[c] = -INFINITY;
          for (int y = MAX (2 * oy - 1, 0); y <= MIN (2 * oy + 1, h - 1); y++)
            for (int x = MAX (2 * ox - 1, 0); x <= MIN (2 * ox + 1, w - 1); x++)
              {
                const float *src = in + (((size_t) b * h + y) * w + x) * n_c;
                for (int c = 0; c < n_c; c++)
                  dst[c] = src[c] > dst[c] ? src[c] : dst[c];
              }
        }
}

// the gradient goes to the first maximum of the window in scan order, as
// PyTorch's; din zeroed by the caller
static void
maxpool_backward (float *din, const float *dout, const float *in, const float *out, int batch,
                  int h, int w, int oh, int ow, int n_c)
{
  for (int b = 0; b < batch; b++)
    for (int oy = 0; oy < oh; oy++)
      for (int ox = 0; ox < ow; ox++)
        {
          size_t o = (((size_t) b * oh + oy) * ow + ox) * n_c;
          for (int c = 0; c < n_c; c++)
            {
              gboolean done = FALSE;
              for (int y = MAX (2 * oy - 1, 0); !done && y <= MIN (2 * oy + 1, h - 1); y++)
                for (int x = MAX (2 * ox - 1, 0); !done && x <= MIN (2 * ox + 1, w - 1); x++)
                  {
                    size_t i = (((size_t) b * h + y) * w + x) * n_c + c;
                    if (in[i] == out[o + c])
                      {
                        din[i] += dout[o + c];
                        done = TRUE;
                      }
                  }
            }
        }
}

static void
unit_forward (AgcResNetTrain *net, AgcResNetActs *a, int u, const float *in, float *out,
              gboolean accumulate, gboolean relu, gboolean update_stats)
{
  AgcConvBN *cb = &net->units[u];
  UnitActs *ua = &a->u[u];
  agc_threads_blas_serial_begin ();
  agc_conv_forward (ua->z, in, a->col, a->col_stride, &cb->conv, a->batch, ua->in_h, ua->in_w,
                    FALSE, FALSE);
  agc_threads_blas_serial_end ();
  size_t p = (size_t) a->batch * agc_conv_out_size (&cb->conv, ua->in_h)
             * agc_conv_out_size (&cb->conv, ua->in_w);
  batchnorm_forward (out, ua->mean, ua->rstd, ua->z, cb, p, accumulate, relu, update_stats);
}

gboolean
agc_resnet_train_forward (AgcResNetTrain *net, AgcResNetActs **acts, const float *pixels,
                          int batch, int height, int width, float *features,
                          gboolean update_stats, GError **error)
{
  g_return_val_if_fail (net != NULL && acts != NULL && pixels != NULL && features != NULL, FALSE);
  AgcResNetActs *a = acts_for (net, acts, batch, height, width, error);
  if (a == NULL)
    return FALSE;
  size_t plane = (size_t) height * width;
  for (int b = 0; b < batch; b++)
    for (size_t i = 0; i < plane; i++)
      for (int c = 0; c < 3; c++)
        a->pixels[((size_t) b * plane + i) * 3 + c] = pixels[((size_t) b * 3 + c) * plane + i];

  unit_forward (net, a, 0, a->pixels, a->u[0].out, FALSE, TRUE, update_stats);
  maxpool_forward (a->pool, a->u[0].out, batch, a->stem_h, a->stem_w, a->pool_h, a->pool_w,
                   STEM_WIDTH);
  const float *x = a->pool;
  for (int b = 0; b < N_BLOCKS; b++)
    {
      int u1 = unit_index (b, 0), u2 = u1 + 1, u3 = u1 + 2, ud = u1 + 3;
      float *out = a->u[u3].out;
      unit_forward (net, a, u1, x, a->u[u1].out, FALSE, TRUE, update_stats);
      unit_forward (net, a, u2, a->u[u1].out, a->u[u2].out, FALSE, TRUE, update_stats);
      size_t n_out = (size_t) a->batch * agc_conv_out_size (&net->units[u2].conv, a->u[u2].in_h)
                     * agc_conv_out_size (&net->units[u2].conv, a->u[u2].in_w)
                     * net->units[u3].conv.c_out;
      // the identity first into out, then the block's own BatchNorm adds to it
      if (net->units[ud].conv.c_out > 0)
        unit_forward (net, a, ud, x, out, FALSE, FALSE, update_stats);
      else
        memcpy (out, x, n_out * sizeof (float));
      unit_forward (net, a, u3, a->u[u2].out, out, TRUE, TRUE, update_stats);
      x = out;
    }
  if (update_stats)
    net->num_batches_tracked++;

  size_t n_pixels = (size_t) a->final_h * a->final_w;
  for (int b = 0; b < batch; b++)
    {
      double sum[FEATURES] = { 0 };
      const float *img = x + (size_t) b * n_pixels * FEATURES;
      for (size_t i = 0; i < n_pixels; i++)
        for (int c = 0; c < FEATURES; c++)
          sum[c] += img[i * FEATURES + c];
      for (int c = 0; c < FEATURES; c++)
        features[(size_t) b * FEATURES + c] = (float) (sum[c] / n_pixels);
    }
  return TRUE;
}

/* ---- backward ------------------------------------------------------------ */

typedef struct
{
  float *dx;         // [B, H, W, c_in], added to
  const float *dcol; // [P, k*k*c_in]
  const AgcConv *conv;
  int height, width, out_h, out_w;
} Col2Im;

// items are images: their dx never overlap
static void
col2im_images (void *ctx, int begin, int end, int thread)
{
  (void) thread;
  const Col2Im *t = ctx;
  const AgcConv *c = t->conv;
  int k = c->kernel, s = c->stride, p = c->padding, c_in = c->c_in;
  for (int b = begin; b < end; b++)
    for (int oy = 0; oy < t->out_h; oy++)
      for (int ox = 0; ox < t->out_w; ox++)
        {
          size_t row = ((size_t) b * t->out_h + oy) * t->out_w + ox;
          const float *src = t->dcol + row * k * k * c_in;
          for (int ky = 0; ky < k; ky++)
            {
              int iy = oy * s - p + ky;
              for (int kx = 0; kx < k; kx++, src += c_in)
                {
                  int ix = ox * s - p + kx;
                  if (iy < 0 || iy >= t->height || ix < 0 || ix >= t->width)
                    continue;
                  float *dst = t->dx + (((size_t) b * t->height + iy) * t->width + ix) * c_in;
                  for (int ch = 0; ch < c_in; ch++)
                    dst[ch] += src[ch];
                }
            }
        }
}

// dweight += col(x)^T dz; dx += col2im(dz W^T) (dx NULL: none)
static void
conv_backward (AgcResNetTrain *net, AgcResNetActs *a, int u, const float *dz, const float *x,
               float *dx)
{
  AgcConvBN *cb = &net->units[u];
  const AgcConv *c = &cb->conv;
  const UnitActs *ua = &a->u[u];
  int oh = agc_conv_out_size (c, ua->in_h), ow = agc_conv_out_size (c, ua->in_w);
  int p = a->batch * oh * ow, k = c->kernel * c->kernel * c->c_in;
  if (c->kernel == 1 && c->stride == 1)
    {
      cblas_sgemm (CblasRowMajor, CblasTrans, CblasNoTrans, k, c->c_out, p, 1.0f, x, k, dz,
                   c->c_out, 1.0f, cb->dweight, c->c_out);
      if (dx != NULL)
        cblas_sgemm (CblasRowMajor, CblasNoTrans, CblasTrans, p, k, c->c_out, 1.0f, dz,
                     c->c_out, c->weight, c->c_out, 1.0f, dx, k);
      return;
    }
  agc_conv_im2col (a->col, c, x, a->batch, ua->in_h, ua->in_w);
  cblas_sgemm (CblasRowMajor, CblasTrans, CblasNoTrans, k, c->c_out, p, 1.0f, a->col, k, dz,
               c->c_out, 1.0f, cb->dweight, c->c_out);
  if (dx == NULL)
    return;
  cblas_sgemm (CblasRowMajor, CblasNoTrans, CblasTrans, p, k, c->c_out, 1.0f, dz, c->c_out,
               c->weight, c->c_out, 0.0f, a->col, k);
  Col2Im t = { .dx = dx, .dcol = a->col, .conv = c, .height = ua->in_h, .width = ua->in_w,
               .out_h = oh, .out_w = ow };
  agc_parallel_for (a->batch, 1, col2im_images, &t);
}

static size_t
unit_rows (const AgcResNetTrain *net, const AgcResNetActs *a, int u)
{
  const AgcConv *c = &net->units[u].conv;
  return (size_t) a->batch * agc_conv_out_size (c, a->u[u].in_h)
         * agc_conv_out_size (c, a->u[u].in_w);
}

// dy is the gradient after BatchNorm (ReLU already applied): through
// BatchNorm into grad_z, then through the conv into dx
static void
unit_backward (AgcResNetTrain *net, AgcResNetActs *a, int u, const float *dy, const float *x,
               float *dx)
{
  size_t p = unit_rows (net, a, u);
  const UnitActs *ua = &a->u[u];
  batchnorm_backward (a->grad_z, dy, ua->z, ua->mean, ua->rstd, &net->units[u], p);
  conv_backward (net, a, u, a->grad_z, x, dx);
}

gboolean
agc_resnet_train_backward (AgcResNetTrain *net, AgcResNetActs *a, const float *dfeatures,
                           GError **error)
{
  g_return_val_if_fail (net != NULL && a != NULL && dfeatures != NULL, FALSE);
  (void) error;
  int batch = a->batch;
  size_t n_pixels = (size_t) a->final_h * a->final_w;
  float *g = a->grad_a, *g_in = a->grad_b;
  for (int b = 0; b < batch; b++)
    for (size_t i = 0; i < n_pixels; i++)
      for (int c = 0; c < FEATURES; c++)
        g[((size_t) b * n_pixels + i) * FEATURES + c]
          = dfeatures[(size_t) b * FEATURES + c] / (float) n_pixels;

  for (int b = N_BLOCKS - 1; b >= 0; b--)
    {
      int u1 = unit_index (b, 0), u2 = u1 + 1, u3 = u1 + 2, ud = u1 + 3;
      const float *x = b > 0 ? a->u[unit_index (b - 1, 2)].out : a->pool;
      size_t n_out = unit_rows (net, a, u3) * net->units[u3].conv.c_out;
      size_t n_mid1 = unit_rows (net, a, u1) * net->units[u1].conv.c_out;
      size_t n_mid2 = unit_rows (net, a, u2) * net->units[u2].conv.c_out;
      size_t n_in = (size_t) batch * a->u[u1].in_h * a->u[u1].in_w * net->units[u1].conv.c_in;
      relu_backward (g, a->u[u3].out, n_out);
      memset (a->grad_mid2, 0, n_mid2 * sizeof (float));
      unit_backward (net, a, u3, g, a->u[u2].out, a->grad_mid2);
      relu_backward (a->grad_mid2, a->u[u2].out, n_mid2);
      memset (a->grad_mid1, 0, n_mid1 * sizeof (float));
      unit_backward (net, a, u2, a->grad_mid2, a->u[u1].out, a->grad_mid1);
      relu_backward (a->grad_mid1, a->u[u1].out, n_mid1);
      memset (g_in, 0, n_in * sizeof (float));
      unit_backward (net, a, u1, a->grad_mid1, x, g_in);
      if (net->units[ud].conv.c_out > 0)
        unit_backward (net, a, ud, g, x, g_in);
      else
        for (size_t i = 0; i < n_in; i++)
          g_in[i] += g[i];
      float *t = g;
      g = g_in, g_in = t;
    }
  // g: the gradient of the pool's output
  size_t n_stem = (size_t) batch * a->stem_h * a->stem_w * STEM_WIDTH;
  memset (g_in, 0, n_stem * sizeof (float));
  maxpool_backward (g_in, g, a->u[0].out, a->pool, batch, a->stem_h, a->stem_w, a->pool_h,
                    a->pool_w, STEM_WIDTH);
  relu_backward (g_in, a->u[0].out, n_stem);
  unit_backward (net, a, 0, g_in, a->pixels, NULL);
  return TRUE;
}
