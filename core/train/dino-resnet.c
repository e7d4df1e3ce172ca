/* dino-resnet.c — AgriCLIP's ResNet-50 as DINO's backbone (dino-backbone.h):
 * nn/resnet-train.h in training mode, BatchNorm on the batch's statistics
 * with its running statistics moved (the reference never puts the teacher
 * in eval mode). */
#include "train/dino-backbone.h"

typedef struct
{
  AgcDinoBackbone base;
  AgcResNetTrain *net;
} DinoResNet;

static const AgcDinoBackboneOps resnet_ops;

AgcDinoBackbone *
agc_dino_resnet_new (AgcResNetTrain *net)
{
  DinoResNet *r = g_new0 (DinoResNet, 1);
  r->net = net;
  r->base = (AgcDinoBackbone){ .ops = &resnet_ops, .features = 2048, .params = net->params,
                               .grads = net->grads, .buffers = net->buffers,
                               .n_params = net->n_params, .n_buffers = net->n_buffers,
                               .num_batches_tracked = &net->num_batches_tracked };
  return &r->base;
}

static AgcResNetTrain *
net_of (const AgcDinoBackbone *b)
{
  return ((const DinoResNet *) b)->net;
}

static AgcDinoBackbone *
resnet_copy (const AgcDinoBackbone *b)
{
  return agc_dino_resnet_new (agc_resnet_train_copy (net_of (b)));
}

static void
resnet_free (AgcDinoBackbone *b)
{
  agc_resnet_train_free (net_of (b));
  g_free (b);
}

static gboolean
resnet_forward (AgcDinoBackbone *b, AgcDinoBackboneActs **acts, const float *pixels, int batch,
                int size, float *features, GError **error)
{
  return agc_resnet_train_forward (net_of (b), (AgcResNetActs **) acts, pixels, batch, size,
                                   size, features, TRUE, error);
}

static gboolean
resnet_backward (AgcDinoBackbone *b, AgcDinoBackboneActs *acts, const float *dfeatures,
                 GError **error)
{
  return agc_resnet_train_backward (net_of (b), (AgcResNetActs *) acts, dfeatures, error);
}

static void
resnet_acts_free (AgcDinoBackboneActs *acts)
{
  agc_resnet_acts_free ((AgcResNetActs *) acts);
}

// per unit: weight, gamma, beta
static int
resnet_tensor_grads (AgcDinoBackbone *b, float **grads, size_t *sizes, int max)
{
  const AgcResNetTrain *net = net_of (b);
  int n = 0;
  for (int u = 0; u < AGC_RESNET_UNITS && n + 3 <= max; u++)
    {
      const AgcConvBN *cb = &net->units[u];
      if (cb->conv.c_out == 0)
        continue;
      grads[n] = cb->dweight;
      sizes[n++] = (size_t) cb->conv.kernel * cb->conv.kernel * cb->conv.c_in * cb->conv.c_out;
      grads[n] = cb->dgamma;
      sizes[n++] = cb->conv.c_out;
      grads[n] = cb->dbeta;
      sizes[n++] = cb->conv.c_out;
    }
  return n;
}

static void
resnet_decay_mask (const AgcDinoBackbone *b, gboolean *mask)
{
  agc_resnet_train_decay_mask (net_of (b), mask);
}

/* Torchvision's names, no prefix; num_batches_tracked (an int64 scalar)
 * left out: adapters hold float tensors, and the eval-mode forward ignores
 * it. */
static void
resnet_export (const AgcDinoBackbone *b, GArray *views, GPtrArray *owned)
{
  g_autoptr (GArray) all = g_array_new (FALSE, TRUE, sizeof (AgcTensorView));
  agc_resnet_train_export (net_of (b), "", all, owned);
  for (guint i = 0; i < all->len; i++)
    {
      const AgcTensorView *view = &g_array_index (all, AgcTensorView, i);
      if (view->dtype == AGC_DTYPE_F32)
        g_array_append_val (views, *view);
    }
}

static const AgcDinoBackboneOps resnet_ops = {
  .copy = resnet_copy,
  .free = resnet_free,
  .forward = resnet_forward,
  .backward = resnet_backward,
  .acts_free = resnet_acts_free,
  .tensor_grads = resnet_tensor_grads,
  .decay_mask = resnet_decay_mask,
  .export = resnet_export,
};
