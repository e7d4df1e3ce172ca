/* dino-backbone.h — what DINO (dino-step.h) trains under its head: a
 * network from pixels to one feature row per image, with its trainable
 * floats in one flat array (params, grads of the same layout: AdamW and the
 * teacher's EMA run over them), a training forward that keeps its
 * activations, the backward beside it, and its tensors one by one (the
 * reference clips gradients per tensor).  Two implementations, neither
 * knowing the other:
 *   dino-resnet.c — AgriCLIP's ResNet-50 (nn/resnet-train.h): features the
 *     2048 pooled channels, BatchNorm in training mode (running statistics
 *     in buffers);
 *   dino-vit.c — a CLIP ViT image tower (nn/vision-tower.h): the whole
 *     tower, or its last K blocks, ln_post and the projection above frozen
 *     ones; features the projected class token (E). */
#pragma once

#include "formats/weights.h"
#include "nn/resnet-train.h"
#include "nn/vision-tower.h"

#include <glib.h>

typedef struct AgcDinoBackbone AgcDinoBackbone;

/* Tensors of a backbone at most (ViT-L/14's 24 blocks of 16 and 8 more). */
#define AGC_DINO_BACKBONE_TENSORS 1024

/* The activations of one training forward (the implementation's own). */
typedef struct AgcDinoBackboneActs AgcDinoBackboneActs;

typedef struct
{
  /* An independent copy (the teacher): parameters and buffers, no
   * gradients pending. */
  AgcDinoBackbone *(*copy) (const AgcDinoBackbone *backbone);
  void (*free) (AgcDinoBackbone *backbone);
  /* features[batch, features] of pixels[batch, 3, size, size], keeping
   * the activations in *acts (NULL the first time; reused, grown when
   * needed).  Any backbone's acts may be lent to another of its kind. */
  gboolean (*forward) (AgcDinoBackbone *backbone, AgcDinoBackboneActs **acts,
                       const float *pixels, int batch, int size, float *features,
                       GError **error);
  /* Adds the gradients for dfeatures[batch, features] into grads. */
  gboolean (*backward) (AgcDinoBackbone *backbone, AgcDinoBackboneActs *acts,
                        const float *dfeatures, GError **error);
  void (*acts_free) (AgcDinoBackboneActs *acts);
  /* The gradient arrays of its tensors (PyTorch's parameters, one by
   * one) and their sizes; returns the count (at most max). */
  int (*tensor_grads) (AgcDinoBackbone *backbone, float **grads, size_t *sizes, int max);
  /* Whether params[i] decays: mask[n_params] (the reference: not biases
   * and 1-D tensors). */
  void (*decay_mask) (const AgcDinoBackbone *backbone, gboolean *mask);
  /* The adapter's tensors under the model's own names (views' data and
   * names owned by owned), float32 only. */
  void (*export) (const AgcDinoBackbone *backbone, GArray *views, GPtrArray *owned);
} AgcDinoBackboneOps;

struct AgcDinoBackbone
{
  const AgcDinoBackboneOps *ops;
  int features;             /* D of a feature row */
  float *params, *grads;    /* [n_params] each */
  float *buffers;           /* [n_buffers] not trained (BatchNorm's running statistics) */
  size_t n_params, n_buffers;
  gint64 *num_batches_tracked; /* BatchNorm's counter; NULL without BatchNorm */
};

/* AgriCLIP's ResNet-50 (dino-resnet.c); takes net. */
AgcDinoBackbone *agc_dino_resnet_new (AgcResNetTrain *net);

/* A ViT image tower (dino-vit.c): its last n_blocks blocks, ln_post and
 * the projection trained, starting from the tower's values; n_blocks equal
 * to its layers trains the embeddings too (patch kernel, class and
 * position embeddings, ln_pre).  The blocks below run frozen, with the
 * tower's inference forward; tower is borrowed (the teacher shares it) and
 * must outlive the backbone and its copies.  Pixels are the tower's input
 * size. */
AgcDinoBackbone *agc_dino_vit_new (AgcVisionTower *tower, int n_blocks);

static inline void
agc_dino_backbone_free (AgcDinoBackbone *backbone)
{
  if (backbone != NULL)
    backbone->ops->free (backbone);
}
