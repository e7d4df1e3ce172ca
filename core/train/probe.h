/* probe.h — the linear probe: logits = x W^T + b on L2-normalised image
 * embeddings, its class-weighted cross-entropy with gradients, and the
 * training state that checkpoints save.  agc_train (probe-train.c) runs it.
 * Matrices are row-major; W is [C, E] like a PyTorch Linear weight. */
#pragma once

#include "agriclip.h"
#include "train/trainer.h"

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

/* Everything that decides how training goes on: a checkpoint is exactly
 * this and the trainer's run.  One allocation holds the eight arrays. */
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
  gint64 step;        /* AdamW steps taken */
} AgcProbeState;

/* Starts from weight[C, E] and a zero bias. */
AgcProbeState *agc_probe_state_new (int n_classes, int dim, const float *weight);
void agc_probe_state_free (AgcProbeState *state);

/* Checkpoint files: the state and run (epoch, best_epoch, best_val_loss)
 * plus a fingerprint of what produced them (model, data, settings); reading
 * into a state of the same sizes fails unless the fingerprint and the sizes
 * match (leaving state partly filled: start afresh with a new one). */
gboolean agc_probe_checkpoint_write (const char *path, const AgcProbeState *state,
                                     const AgcTrainerRun *run, const char *fingerprint,
                                     GError **error);
gboolean agc_probe_checkpoint_read (const char *path, AgcProbeState *state, AgcTrainerRun *run,
                                    const char *fingerprint, GError **error);
