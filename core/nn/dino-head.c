/* dino-head.c — DINO's projection head (dino-head.h), built from the
 * layers of backward.h. */
#include "nn/dino-head.h"

#include "kernels/ops.h"
#include "nn/backward.h"
#include "nn/block-train.h"

#include <math.h>
#include <string.h>

const char *const agc_dino_head_tensor_names[AGC_DINO_HEAD_TENSORS]
  = { "mlp.0.weight", "mlp.0.bias", "mlp.2.weight", "mlp.2.bias",
      "mlp.4.weight", "mlp.4.bias", "last_layer.weight_v" };

struct AgcDinoHeadActs
{
  int capacity;                   // rows
  float *x;                       // [n, D] a copy of the input
  float *h1_pre, *h1, *h2_pre, *h2; // [n, H]
  float *z, *zn;                  // [n, bottleneck], before and after normalising
  float *w;                       // [K, bottleneck] V normalised per row
  float *memory;
  int n;
};

void
agc_dino_head_tensors (const AgcDinoHead *h, float **arrays, float **grads, size_t *sizes)
{
  float *a[] = { h->w1, h->b1, h->w2, h->b2, h->w3, h->b3, h->v };
  float *g[] = { h->dw1, h->db1, h->dw2, h->db2, h->dw3, h->db3, h->dv };
  size_t s[] = { (size_t) h->hidden * h->in_dim, h->hidden, (size_t) h->hidden * h->hidden,
                 h->hidden, (size_t) h->bottleneck * h->hidden, h->bottleneck,
                 (size_t) h->out_dim * h->bottleneck };
  for (int i = 0; i < AGC_DINO_HEAD_TENSORS; i++)
    {
      if (arrays != NULL)
        arrays[i] = a[i];
      if (grads != NULL)
        grads[i] = g[i];
      if (sizes != NULL)
        sizes[i] = s[i];
    }
}

static AgcDinoHead *
head_alloc (int in_dim, int hidden, int bottleneck, int out_dim)
{
  AgcDinoHead *h = g_new0 (AgcDinoHead, 1);
  h->in_dim = in_dim, h->hidden = hidden, h->bottleneck = bottleneck, h->out_dim = out_dim;
  size_t sizes[AGC_DINO_HEAD_TENSORS];
  agc_dino_head_tensors (h, NULL, NULL, sizes);
  for (int i = 0; i < AGC_DINO_HEAD_TENSORS; i++)
    h->n_params += sizes[i];
  h->params = g_new0 (float, 2 * h->n_params); // the grads after them: one allocation
  h->grads = h->params + h->n_params;
  float **p[] = { &h->w1, &h->b1, &h->w2, &h->b2, &h->w3, &h->b3, &h->v };
  float **d[] = { &h->dw1, &h->db1, &h->dw2, &h->db2, &h->dw3, &h->db3, &h->dv };
  size_t at = 0;
  for (int i = 0; i < AGC_DINO_HEAD_TENSORS; i++)
    {
      *p[i] = h->params + at;
      *d[i] = h->grads + at;
      at += sizes[i];
    }
  return h;
}

AgcDinoHead *
agc_dino_head_new (int in_dim, int hidden, int bottleneck, int out_dim, guint64 seed)
{
  AgcDinoHead *h = head_alloc (in_dim, hidden, bottleneck, out_dim);
  GRand *rand = g_rand_new_with_seed_array ((const guint32 *) &seed, 2);
  float *weights[] = { h->w1, h->w2, h->w3 };
  size_t sizes[AGC_DINO_HEAD_TENSORS];
  agc_dino_head_tensors (h, NULL, NULL, sizes);
  for (int i = 0; i < 3; i++)
    for (size_t j = 0; j < sizes[2 * i]; j += 2)
      {
        // Box-Muller: two normals per two uniforms
        double u1 = 1.0 - g_rand_double (rand), u2 = g_rand_double (rand);
        double r = sqrt (-2.0 * log (u1));
        weights[i][j] = (float) (0.02 * r * cos (2 * G_PI * u2));
        if (j + 1 < sizes[2 * i])
          weights[i][j + 1] = (float) (0.02 * r * sin (2 * G_PI * u2));
      }
  double bound = 1.0 / sqrt ((double) bottleneck);
  for (size_t j = 0; j < sizes[6]; j++)
    h->v[j] = (float) g_rand_double_range (rand, -bound, bound);
  g_rand_free (rand);
  return h;
}

AgcDinoHead *
agc_dino_head_copy (const AgcDinoHead *head)
{
  AgcDinoHead *h = head_alloc (head->in_dim, head->hidden, head->bottleneck, head->out_dim);
  memcpy (h->params, head->params, head->n_params * sizeof (float));
  return h;
}

void
agc_dino_head_free (AgcDinoHead *head)
{
  if (head == NULL)
    return;
  g_free (head->params); // and the grads
  g_free (head);
}

void
agc_dino_head_decay_mask (const AgcDinoHead *head, gboolean *mask)
{
  float *arrays[AGC_DINO_HEAD_TENSORS];
  size_t sizes[AGC_DINO_HEAD_TENSORS];
  agc_dino_head_tensors (head, arrays, NULL, sizes);
  for (int i = 0; i < AGC_DINO_HEAD_TENSORS; i++)
    for (size_t j = 0; j < sizes[i]; j++)
      mask[(arrays[i] - head->params) + j] = i % 2 == 0; // weights, not biases
}

void
agc_dino_head_acts_free (AgcDinoHeadActs *acts)
{
  if (acts == NULL)
    return;
  g_free (acts->memory);
  g_free (acts);
}

void
agc_dino_head_forward (const AgcDinoHead *h, AgcDinoHeadActs **acts, const float *x, int n,
                       float *out)
{
  AgcDinoHeadActs *a = *acts;
  if (a == NULL)
    a = *acts = g_new0 (AgcDinoHeadActs, 1);
  if (a->capacity < n)
    {
      g_free (a->memory);
      float **slots[] = { &a->x, &a->h1_pre, &a->h1, &a->h2_pre, &a->h2, &a->z, &a->zn, &a->w };
      size_t sizes[] = { (size_t) n * h->in_dim, (size_t) n * h->hidden, (size_t) n * h->hidden,
                         (size_t) n * h->hidden, (size_t) n * h->hidden,
                         (size_t) n * h->bottleneck, (size_t) n * h->bottleneck,
                         (size_t) h->out_dim * h->bottleneck };
      a->memory = agc_carve (slots, sizes, G_N_ELEMENTS (sizes));
      a->capacity = n;
    }
  a->n = n;
  size_t nh = (size_t) n * h->hidden;
  memcpy (a->x, x, (size_t) n * h->in_dim * sizeof (float));
  agc_linear_forward (a->h1_pre, x, h->w1, h->b1, n, h->in_dim, h->hidden);
  memcpy (a->h1, a->h1_pre, nh * sizeof (float));
  agc_bias_act_forward (a->h1, NULL, n, h->hidden, AGC_ACT_GELU);
  agc_linear_forward (a->h2_pre, a->h1, h->w2, h->b2, n, h->hidden, h->hidden);
  memcpy (a->h2, a->h2_pre, nh * sizeof (float));
  agc_bias_act_forward (a->h2, NULL, n, h->hidden, AGC_ACT_GELU);
  agc_linear_forward (a->z, a->h2, h->w3, h->b3, n, h->hidden, h->bottleneck);
  agc_l2_normalize_forward_train (a->zn, a->z, n, h->bottleneck);
  agc_l2_normalize_forward_train (a->w, h->v, h->out_dim, h->bottleneck);
  agc_linear_forward (out, a->zn, a->w, NULL, n, h->bottleneck, h->out_dim);
}

void
agc_dino_head_backward (AgcDinoHead *h, const AgcDinoHeadActs *a, const float *dout, float *dx)
{
  int n = a->n;
  size_t nh = (size_t) n * h->hidden;
  float *dw = g_new0 (float, (size_t) h->out_dim * h->bottleneck);
  float *dzn = g_new0 (float, (size_t) n * h->bottleneck);
  float *dz = g_new0 (float, (size_t) n * h->bottleneck);
  float *dh = g_new0 (float, nh), *dpre = g_new0 (float, nh);
  agc_linear_backward (dzn, dw, NULL, dout, a->zn, a->w, n, h->bottleneck, h->out_dim);
  // W = V / ||V|| per row (weight_g = 1)
  agc_l2_normalize_backward (h->dv, dw, h->v, h->out_dim, h->bottleneck);
  agc_l2_normalize_backward (dz, dzn, a->z, n, h->bottleneck);
  agc_linear_backward (dh, h->dw3, h->db3, dz, a->h2, h->w3, n, h->hidden, h->bottleneck);
  agc_act_backward (dpre, dh, a->h2_pre, nh, AGC_ACT_GELU);
  memset (dh, 0, nh * sizeof (float));
  agc_linear_backward (dh, h->dw2, h->db2, dpre, a->h1, h->w2, n, h->hidden, h->hidden);
  memset (dpre, 0, nh * sizeof (float));
  agc_act_backward (dpre, dh, a->h1_pre, nh, AGC_ACT_GELU);
  agc_linear_backward (dx, h->dw1, h->db1, dpre, a->x, h->w1, n, h->in_dim, h->hidden);
  g_free (dpre);
  g_free (dh);
  g_free (dz);
  g_free (dzn);
  g_free (dw);
}
