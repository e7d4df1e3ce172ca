/* dino-step.c — one DINO iteration (dino-step.h). */
#include "train/dino-step.h"

#include "train/dino-loss.h"

#include <math.h>
#include <string.h>

AgcDino *
agc_dino_new (AgcDinoBackbone *backbone, int hidden, int bottleneck, int out_dim, guint64 seed)
{
  AgcDino *d = g_new0 (AgcDino, 1);
  d->student = backbone;
  d->teacher = backbone->ops->copy (backbone);
  d->student_head = agc_dino_head_new (backbone->features, hidden, bottleneck, out_dim, seed);
  d->teacher_head = agc_dino_head_copy (d->student_head);
  d->center = g_new0 (float, out_dim);
  AgcDinoHead *h = d->student_head;
  d->backbone = agc_trainable_new (backbone->params, backbone->grads, backbone->n_params);
  d->head = agc_trainable_new (h->params, h->grads, h->n_params);
  backbone->ops->decay_mask (backbone, d->backbone->decay);
  agc_dino_head_decay_mask (h, d->head->decay);
  return d;
}

void
agc_dino_free (AgcDino *d)
{
  if (d == NULL)
    return;
  // the activations first: their kind's free is the backbone's
  if (d->student != NULL)
    {
      d->student->ops->acts_free (d->acts_global);
      d->student->ops->acts_free (d->acts_local);
    }
  agc_dino_backbone_free (d->student);
  agc_dino_backbone_free (d->teacher);
  agc_dino_head_free (d->student_head);
  agc_dino_head_free (d->teacher_head);
  g_free (d->center);
  agc_trainable_free (d->backbone);
  agc_trainable_free (d->head);
  agc_dino_head_acts_free (d->head_teacher);
  agc_dino_head_acts_free (d->head_student);
  g_free (d);
}

gboolean
agc_dino_accumulate (AgcDino *d, const float *global, int batch, int global_size,
                     const float *local, int n_local, int local_size,
                     const AgcDinoLossParams *params, double *loss, GError **error)
{
  int n_global = 2 * batch, n_local_rows = n_local * batch, n_rows = n_global + n_local_rows;
  int dim = d->student_head->out_dim;
  const AgcDinoBackboneOps *ops = d->student->ops;
  const size_t n_features = (size_t) d->student->features;
  float *features = g_new (float, (size_t) n_rows * n_features);
  float *teacher_out = g_new (float, (size_t) n_global * dim);
  float *student_out = g_new (float, (size_t) n_rows * dim);
  float *dstudent = g_new0 (float, (size_t) n_rows * dim);
  float *dfeatures = g_new0 (float, (size_t) n_rows * n_features);
  // the teacher's activations are not needed after its forward: it lends
  // the student's global ones, which the student's forward then overwrites
  gboolean ok
    = ops->forward (d->teacher, &d->acts_global, global, n_global, global_size, features, error);
  if (ok)
    agc_dino_head_forward (d->teacher_head, &d->head_teacher, features, n_global, teacher_out);
  ok = ok
       && ops->forward (d->student, &d->acts_global, global, n_global, global_size, features,
                        error)
       && (n_local == 0
           || ops->forward (d->student, &d->acts_local, local, n_local_rows, local_size,
                            features + (size_t) n_global * n_features, error));
  if (ok)
    {
      agc_dino_head_forward (d->student_head, &d->head_student, features, n_rows, student_out);
      *loss = agc_dino_loss_backward (dstudent, student_out, teacher_out, d->center,
                                      2 + n_local, batch, dim, params->student_temp,
                                      params->teacher_temp, params->scale);
      agc_dino_center_update (d->center, teacher_out, n_global, dim, params->center_momentum);
      agc_dino_head_backward (d->student_head, d->head_student, dstudent, dfeatures);
      ok = ops->backward (d->student, d->acts_global, dfeatures, error)
           && (n_local == 0
               || ops->backward (d->student, d->acts_local,
                                 dfeatures + (size_t) n_global * n_features, error));
    }
  g_free (dfeatures);
  g_free (dstudent);
  g_free (student_out);
  g_free (teacher_out);
  g_free (features);
  return ok;
}

// utils.clip_gradients: each tensor's gradient to norm at most clip (the
// optimiser's global-norm clipping, one tensor at a time)
static void
clip_tensor (float *grad, size_t n, double clip)
{
  agc_grad_scale (&grad, &n, 1, agc_clip_factor (agc_grad_norm (&grad, &n, 1), clip));
}

static void
ema (float *teacher, const float *student, size_t n, double momentum)
{
  float m = (float) momentum, rest = (float) (1.0 - momentum);
  for (size_t i = 0; i < n; i++)
    teacher[i] = teacher[i] * m + rest * student[i];
}

void
agc_dino_update (AgcDino *d, const AgcAdamWParams *adamw, double lr, double clip,
                 gboolean freeze_last_layer, double momentum)
{
  AgcDinoHead *h = d->student_head;
  if (clip > 0)
    {
      float *grads[AGC_DINO_BACKBONE_TENSORS];
      size_t sizes[AGC_DINO_BACKBONE_TENSORS];
      int n = d->student->ops->tensor_grads (d->student, grads, sizes,
                                             AGC_DINO_BACKBONE_TENSORS);
      for (int i = 0; i < n; i++)
        clip_tensor (grads[i], sizes[i], clip);
      float *hg[AGC_DINO_HEAD_TENSORS];
      size_t hs[AGC_DINO_HEAD_TENSORS];
      agc_dino_head_tensors (h, NULL, hg, hs);
      for (int i = 0; i < AGC_DINO_HEAD_TENSORS; i++)
        clip_tensor (hg[i], hs[i], clip);
    }
  d->steps++;
  agc_trainable_adamw_step (d->backbone, 0, d->backbone->n, adamw, lr, d->steps);
  // the head but its last layer (V, the last array)
  size_t n_mlp = h->n_params - (size_t) h->out_dim * h->bottleneck;
  agc_trainable_adamw_step (d->head, 0, n_mlp, adamw, lr, d->steps);
  if (!freeze_last_layer)
    {
      d->last_layer_steps++;
      agc_trainable_adamw_step (d->head, n_mlp, h->n_params, adamw, lr, d->last_layer_steps);
    }
  ema (d->teacher->params, d->student->params, d->student->n_params, momentum);
  ema (d->teacher_head->params, h->params, h->n_params, momentum);
  memset (d->student->grads, 0, d->student->n_params * sizeof (float));
  memset (h->grads, 0, h->n_params * sizeof (float));
}

double
agc_dino_momentum (double base, gint64 it, gint64 total)
{
  if (total <= 0)
    return base;
  return 1.0 + 0.5 * (base - 1.0) * (1.0 + cos (G_PI * (double) it / (double) total));
}

double
agc_dino_teacher_temp (double warmup_temp, double temp, int warmup_epochs, int epoch)
{
  if (epoch >= warmup_epochs)
    return temp;
  if (warmup_epochs == 1)
    return warmup_temp;
  return warmup_temp + (temp - warmup_temp) * epoch / (double) (warmup_epochs - 1);
}
