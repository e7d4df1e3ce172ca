/* resnet-train.h — ResNet-50 (resnet.h) in training mode: the same
 * convolutions (resnet-conv.h) with BatchNorm kept apart and run on the
 * batch's statistics, a forward that keeps its activations, and the
 * backward of every layer (conv, BatchNorm, ReLU, max-pool, residual sums,
 * global average pool).  As torch.nn.BatchNorm2d in train mode: the batch
 * mean and biased variance normalise (eps 1e-5); the running mean and the
 * unbiased variance move by momentum 0.1 when asked.
 *
 * Every trainable float (conv weights in the GEMM layout [k*k*c_in, c_out],
 * BatchNorm weights and biases) lives in one array, params, the gradients
 * in grads of the same layout, the running statistics in buffers: an
 * optimiser or an EMA runs over the flat arrays.  Tensors come in and go
 * out under torchvision's names. */
#pragma once

#include "formats/weights.h"
#include "nn/resnet-conv.h"

#include <glib.h>

#define AGC_RESNET_UNITS (1 + 16 * 4) /* the stem, then conv1..3 and downsample of each block */

/* A conv and the BatchNorm after it. */
typedef struct
{
  AgcConv conv;                      /* weight in params; bias NULL; c_out 0 when absent */
  float *gamma, *beta;               /* [c_out], in params */
  float *running_mean, *running_var; /* [c_out], in buffers */
  float *dweight, *dgamma, *dbeta;   /* in grads */
  char *conv_name, *bn_name;         /* "layer1.0.conv1", "layer1.0.bn1" */
} AgcConvBN;

typedef struct
{
  AgcConvBN units[AGC_RESNET_UNITS]; /* 0: stem; 1 + 4 b + i: block b's conv i+1 (3: downsample) */
  float *params, *grads, *buffers;
  size_t n_params, n_buffers;
  gint64 num_batches_tracked;
} AgcResNetTrain;

/* The activations of one training forward (opaque), kept for its backward. */
typedef struct AgcResNetActs AgcResNetActs;

/* From torchvision's tensors under prefix; shapes checked. */
AgcResNetTrain *agc_resnet_train_load (const AgcWeights *weights, const char *prefix,
                                       GError **error);
/* ResNet-50's shapes and names, every array zeroed (NULL arrays when
 * memory is short): for filling. */
AgcResNetTrain *agc_resnet_train_new (void);
/* An independent copy (DINO's teacher). */
AgcResNetTrain *agc_resnet_train_copy (const AgcResNetTrain *net);
void agc_resnet_train_free (AgcResNetTrain *net);

/* Whether params[i] decays (conv weights) or not (BatchNorm): mask[n_params]. */
void agc_resnet_train_decay_mask (const AgcResNetTrain *net, gboolean *mask);

/* features[B, 2048] of pixels[B, 3, H, W] in training mode; update_stats:
 * move the running statistics (and num_batches_tracked).  *acts (NULL the
 * first time) is reused while large enough.  FALSE without memory. */
gboolean agc_resnet_train_forward (AgcResNetTrain *net, AgcResNetActs **acts,
                                   const float *pixels, int batch, int height, int width,
                                   float *features, gboolean update_stats, GError **error);
/* Adds the gradients of the loss whose gradient w.r.t. features is
 * dfeatures[B, 2048] into net->grads (the pixels get none). */
gboolean agc_resnet_train_backward (AgcResNetTrain *net, AgcResNetActs *acts,
                                    const float *dfeatures, GError **error);
void agc_resnet_acts_free (AgcResNetActs *acts);

/* The tensors under torchvision's names (prefix prepended): conv weights
 * [c_out, c_in, k, k], BatchNorm weight, bias, running_mean, running_var,
 * num_batches_tracked (I64 [] ).  Appends AgcTensorViews to views; their
 * names and data are owned by owned (free with it). */
void agc_resnet_train_export (const AgcResNetTrain *net, const char *prefix, GArray *views,
                              GPtrArray *owned);
