/* optimizer.c — AdamW, its learning-rate schedule and gradient clipping
 * (optimizer.h), with the scalars computed as PyTorch computes them. */
#include "train/optimizer.h"

#include <math.h>

AgcAdamWParams
agc_adamw_params (double lr, double weight_decay)
{
  return (AgcAdamWParams){ .lr = lr, .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8,
                           .weight_decay = weight_decay };
}

double
agc_adamw_lr (const AgcAdamWParams *p, gint64 step)
{
  if (step <= p->warmup_steps)
    return p->lr * (double) step / p->warmup_steps;
  int decay_steps = p->total_steps - p->warmup_steps;
  if (decay_steps <= 0)
    return p->lr;
  double progress = MIN (1.0, (double) (step - p->warmup_steps) / decay_steps);
  return p->lr * 0.5 * (1.0 + cos (G_PI * progress));
}

void
agc_adamw_step (float *param, float *m, float *v, const float *grad, size_t n,
                const AgcAdamWParams *p, double lr, gboolean decay, gint64 step)
{
  // the scalars as PyTorch computes them, in double, then used on floats
  float decay_factor = (float) (1.0 - lr * (decay ? p->weight_decay : 0.0));
  float beta1 = (float) p->beta1, beta2 = (float) p->beta2;
  float one_minus_beta1 = (float) (1.0 - p->beta1);
  float one_minus_beta2 = (float) (1.0 - p->beta2);
  float step_size = (float) (lr / (1.0 - pow (p->beta1, (double) step)));
  float correction2_sqrt = (float) sqrt (1.0 - pow (p->beta2, (double) step));
  float eps = (float) p->eps;
  for (size_t i = 0; i < n; i++)
    {
      param[i] *= decay_factor;
      m[i] = m[i] * beta1 + one_minus_beta1 * grad[i];
      v[i] = v[i] * beta2 + one_minus_beta2 * grad[i] * grad[i];
      float denom = sqrtf (v[i]) / correction2_sqrt + eps;
      param[i] -= step_size * m[i] / denom;
    }
}

double
agc_grad_norm (float *const *grads, const size_t *sizes, int n_arrays)
{
  double sum_sq = 0.0;
  for (int i = 0; i < n_arrays; i++)
    for (size_t j = 0; j < sizes[i]; j++)
      sum_sq += (double) grads[i][j] * grads[i][j];
  return sqrt (sum_sq);
}

double
agc_clip_factor (double norm, double clip_norm)
{
  if (clip_norm <= 0.0)
    return 1.0;
  double factor = clip_norm / (norm + 1e-6);
  return factor < 1.0 ? factor : 1.0;
}

void
agc_grad_scale (float *const *grads, const size_t *sizes, int n_arrays, double factor)
{
  if (factor == 1.0)
    return;
  for (int i = 0; i < n_arrays; i++)
    for (size_t j = 0; j < sizes[i]; j++)
      grads[i][j] = (float) (grads[i][j] * factor);
}

AgcTrainable *
agc_trainable_new (float *weights, float *grads, size_t n)
{
  // the struct, m, v and the mask: one allocation, freed by one g_free
  size_t rows = MAX (n, 1);
  AgcTrainable *t = g_malloc0 (sizeof *t + rows * (2 * sizeof (float) + sizeof (gboolean)));
  *t = (AgcTrainable){ .n = n, .weights = weights, .grads = grads, .m = (float *) (t + 1) };
  t->v = t->m + rows;
  t->decay = (gboolean *) (t->v + rows);
  return t;
}

void
agc_trainable_free (AgcTrainable *t)
{
  g_free (t); // its moments and mask with it (agc_trainable_new)
}

void
agc_trainable_adamw_step (AgcTrainable *t, size_t begin, size_t end, const AgcAdamWParams *p,
                          double lr, gint64 step)
{
  size_t i = begin;
  while (i < end)
    {
      size_t j = i;
      while (j < end && t->decay[j] == t->decay[i])
        j++;
      agc_adamw_step (t->weights + i, t->m + i, t->v + i, t->grads + i, j - i, p, lr,
                      t->decay[i], step);
      i = j;
    }
}
