/* dino-head.h — DINO's projection head (facebookresearch/dino,
 * vision_transformer.py DINOHead, nlayers 3, no BatchNorm, norm_last_layer):
 *   x[n, D] -> Linear(D, H) -> GELU -> Linear(H, H) -> GELU
 *           -> Linear(H, bottleneck) -> L2-normalise
 *           -> weight-normalised Linear(bottleneck, K) without bias,
 * the last weight W = g * V / ||V|| per output row with g frozen at 1 (so
 * W's rows are unit vectors and only V, "last_layer.weight_v", trains).
 * Its training forward keeps its activations; the backward adds into grads.
 * Tensors: mlp.0.{weight,bias}, mlp.2.*, mlp.4.*, last_layer.weight_v
 * (+ last_layer.weight_g, all 1), in PyTorch's [out, in] layout. */
#pragma once

#include <glib.h>
#include <stddef.h>

typedef struct
{
  int in_dim, hidden, bottleneck, out_dim;
  float *params, *grads; /* [n_params] each: w1 b1 w2 b2 w3 b3 v, in that order; one
                          * allocation (params owns it) */
  size_t n_params;
  float *w1, *b1, *w2, *b2, *w3, *b3, *v;        /* into params */
  float *dw1, *db1, *dw2, *db2, *dw3, *db3, *dv; /* into grads */
} AgcDinoHead;

/* Activations of one training forward of n rows (opaque). */
typedef struct AgcDinoHeadActs AgcDinoHeadActs;

/* Weights as the reference initialises them, from seed: normal (std 0.02)
 * linear weights, zero biases, V uniform in +-1/sqrt(bottleneck). */
AgcDinoHead *agc_dino_head_new (int in_dim, int hidden, int bottleneck, int out_dim,
                                guint64 seed);
AgcDinoHead *agc_dino_head_copy (const AgcDinoHead *head);
void agc_dino_head_free (AgcDinoHead *head);

/* Whether params[i] decays: the weights (V included), not the biases. */
void agc_dino_head_decay_mask (const AgcDinoHead *head, gboolean *mask);

/* The tensor arrays in order w1 b1 w2 b2 w3 b3 v, with their PyTorch names
 * and sizes (for per-tensor clipping, checkpoints, tests). */
#define AGC_DINO_HEAD_TENSORS 7
extern const char *const agc_dino_head_tensor_names[AGC_DINO_HEAD_TENSORS];
void agc_dino_head_tensors (const AgcDinoHead *head, float **arrays, float **grads,
                            size_t *sizes);

/* out[n, K] of x[n, D]; *acts (NULL the first time) reused when large
 * enough. */
void agc_dino_head_forward (const AgcDinoHead *head, AgcDinoHeadActs **acts, const float *x,
                            int n, float *out);
/* Adds dloss/dparams into head->grads and dloss/dx into dx[n, D]. */
void agc_dino_head_backward (AgcDinoHead *head, const AgcDinoHeadActs *acts, const float *dout,
                             float *dx);
void agc_dino_head_acts_free (AgcDinoHeadActs *acts);
