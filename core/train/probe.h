/* probe.h — the linear probe: logits = x W^T + b on L2-normalised image
 * embeddings, its class-weighted cross-entropy with gradients, AdamW, and
 * the training state that checkpoints save.  agc_train (probe.c) runs it.
 * Matrices are row-major; W is [C, E] like a PyTorch Linear weight. */
#pragma once

#include "agriclip.h"

#include <stddef.h>

/* logits[n, C] = x[n, E] W[C, E]^T + b[C]. */
void agc_probe_logits (float *logits, const float *x, const float *weight, const float *bias,
                       int n, int dim, int n_classes);

/* loss = Σ_i cw[y_i] · (logsumexp(z_i) - z_i[y_i]) / Σ_i cw[y_i], with
 * z = x W^T + b: PyTorch's cross_entropy (weight=cw, reduction "mean").
 * Adds dloss/dW into grad_weight[C, E] and dloss/db into grad_bias[C] (zero
 * them first), unless they are NULL.  Returns the loss; 0 for n = 0. */
double agc_probe_loss_backward (float *grad_weight, float *grad_bias, const float *x,
                                const int *labels, const float *class_weights,
                                const float *weight, const float *bias, int n, int dim,
                                int n_classes);

typedef struct
{
  double lr;
  double beta1; /* 0.9 */
  double beta2; /* 0.999 */
  double eps;   /* 1e-8 */
} AgcAdamW;

/* One AdamW step on param[n] with moments m[n], v[n] (torch.optim.AdamW,
 * PyTorch 1.13): param *= 1 - lr·weight_decay, then the Adam update with
 * bias correction for step (1 for the first step). */
void agc_adamw_step (float *param, float *m, float *v, const float *grad, size_t n,
                     const AgcAdamW *adamw, double weight_decay, gint64 step);

/* Everything that decides how training goes on: a checkpoint is exactly
 * this.  One allocation holds the eight arrays. */
typedef struct
{
  int n_classes;
  int dim;
  float *weight;      /* [C, E] the head being trained */
  float *bias;        /* [C] */
  float *m_weight;    /* [C, E] AdamW first moments */
  float *v_weight;    /* [C, E] second moments */
  float *m_bias;      /* [C] */
  float *v_bias;      /* [C] */
  float *best_weight; /* [C, E] the head of best_epoch */
  float *best_bias;   /* [C] */
  int epoch;          /* epochs finished */
  gint64 step;        /* AdamW steps taken */
  int best_epoch;     /* 0: the initial head */
  double best_val_loss;
} AgcProbeState;

/* Starts from weight[C, E] and a zero bias. */
AgcProbeState *agc_probe_state_new (int n_classes, int dim, const float *weight);
void agc_probe_state_free (AgcProbeState *state);

/* Checkpoint files: the state plus a fingerprint of what produced it
 * (model, data, settings); reading fails unless the fingerprint and the
 * sizes match. */
gboolean agc_probe_checkpoint_write (const char *path, const AgcProbeState *state,
                                     const char *fingerprint, GError **error);
AgcProbeState *agc_probe_checkpoint_read (const char *path, const char *fingerprint,
                                          int n_classes, int dim, GError **error);
