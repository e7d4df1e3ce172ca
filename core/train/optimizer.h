/* optimizer.h — the one optimiser of every training method (probe,
 * finetune, CLIP pretraining): AdamW with decoupled weight decay
 * (torch.optim.AdamW, PyTorch 1.13), a learning rate that rises linearly
 * over a warm-up and then falls as a half cosine to 0, and global-norm
 * gradient clipping (torch.nn.utils.clip_grad_norm_).
 *
 * Its state is the step count and the moments m, v of every array, which
 * the caller keeps in the layout of its weights: that is what checkpoints
 * save.  A step: sum the squares of every gradient array (agc_grad_norm),
 * scale them by agc_clip_factor, then agc_adamw_step each array at
 * agc_adamw_lr of the step.  AgcTrainable keeps one parameter set's weights,
 * gradients, moments and decay mask together, in one layout. */
#pragma once

#include <glib.h>
#include <stddef.h>

typedef struct
{
  double lr;           /* peak learning rate */
  double beta1, beta2; /* 0.9, 0.999 */
  double eps;          /* 1e-8 */
  double weight_decay; /* on the arrays that decay */
  int warmup_steps;    /* lr rises linearly over these steps */
  int total_steps;     /* then falls as a half cosine, reaching 0 here; none: lr stays */
  double clip_norm;    /* global gradient norm limit; <= 0: none */
} AgcAdamWParams;

/* lr and weight decay as given, betas 0.9 / 0.999, eps 1e-8, a constant
 * learning rate (no warm-up, no decay), no clipping. */
AgcAdamWParams agc_adamw_params (double lr, double weight_decay);

/* The learning rate of step (1 for the first). */
double agc_adamw_lr (const AgcAdamWParams *params, gint64 step);

/* One AdamW step on param[n] with moments m[n], v[n] at learning rate lr:
 * param *= 1 - lr · weight_decay (when decay), then the Adam update with
 * bias correction for step (1 for the first). */
void agc_adamw_step (float *param, float *m, float *v, const float *grad, size_t n,
                     const AgcAdamWParams *params, double lr, gboolean decay, gint64 step);

/* The global norm of grads[n_arrays] (sizes[n_arrays] floats each): the
 * squares summed in double, array after array. */
double agc_grad_norm (float *const *grads, const size_t *sizes, int n_arrays);

/* What clip_grad_norm_ multiplies the gradients by: clip_norm / (norm +
 * 1e-6) when that is below 1, else (and when clip_norm <= 0) 1. */
double agc_clip_factor (double norm, double clip_norm);

/* grads[i] *= factor, each product rounded once to float; nothing when
 * factor is 1. */
void agc_grad_scale (float *const *grads, const size_t *sizes, int n_arrays, double factor);

/* One parameter set's trainable arrays, n floats each in the layout of the
 * weights: weights and gradients (the model's: not owned), AdamW's moments
 * (zero at first) and the decay mask (FALSE at first: the caller marks the
 * elements that decay). */
typedef struct
{
  size_t n;
  float *weights, *grads; /* [n], the model's */
  float *m, *v;           /* [n] AdamW moments, in the struct's allocation */
  gboolean *decay;        /* [n], in it too */
} AgcTrainable;

AgcTrainable *agc_trainable_new (float *weights, float *grads, size_t n);
void agc_trainable_free (AgcTrainable *trainable);
/* AgcTrainable's offset of an array of the weights: arrays of the same
 * layout (grads, m, v) sit at the same offset. */
#define AGC_TRAINABLE_AT(t, array) ((size_t) ((array) - (t)->weights))

/* One AdamW step on elements [begin, end) of t: agc_adamw_step on each run
 * of the same decay flag (elements are independent: the result is that of
 * one call per array). */
void agc_trainable_adamw_step (AgcTrainable *t, size_t begin, size_t end,
                               const AgcAdamWParams *params, double lr, gint64 step);
