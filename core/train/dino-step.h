/* dino-step.h — one DINO iteration (facebookresearch/dino, main_dino.py
 * train_one_epoch) on a backbone (dino-backbone.h: ResNet-50 or a ViT
 * tower) student and its EMA teacher, each with its projection head
 * (nn/dino-head.h):
 *   teacher (BatchNorm in training mode, as the reference leaves it) on the
 *   2 global crops; student on the global crops, then on the local crops
 *   (one backbone call per resolution, as MultiCropWrapper); the loss
 *   (dino-loss.h); the centre moved by the teacher's outputs; backward;
 *   gradients clipped per tensor (utils.clip_gradients); the last layer's
 *   gradient dropped while it is frozen (cancel_gradients_last_layer: no
 *   AdamW step at all for it then); AdamW (decay on weights, not on biases,
 *   norms and other 1-D tensors); the teacher's parameters moved towards the student's,
 *   t = m t + (1 - m) s (its running statistics are its own).
 * Gradient accumulation: agc_dino_accumulate per micro-batch (its loss
 * scaled by 1 / N), then agc_dino_update once. */
#pragma once

#include "nn/dino-head.h"
#include "train/dino-backbone.h"
#include "train/optimizer.h"

typedef struct
{
  AgcDinoBackbone *student, *teacher;
  AgcDinoHead *student_head, *teacher_head;
  float *center; /* [out_dim] */
  AgcTrainable *backbone, *head; /* the student's: its weights, gradients, moments */
  gint64 steps;            /* AdamW steps of every tensor but the last layer */
  gint64 last_layer_steps; /* those of the last layer (none while frozen) */
  /* activations, kept from call to call */
  AgcDinoBackboneActs *acts_global, *acts_local; /* the teacher uses acts_global too */
  AgcDinoHeadActs *head_teacher, *head_student;
} AgcDino;

/* Takes backbone (the student; the teacher a copy); head from seed, its
 * input the backbone's features. */
AgcDino *agc_dino_new (AgcDinoBackbone *backbone, int hidden, int bottleneck, int out_dim,
                       guint64 seed);
void agc_dino_free (AgcDino *dino);

typedef struct
{
  double student_temp;    /* 0.1 */
  double teacher_temp;    /* this epoch's (warm-up schedule) */
  double center_momentum; /* 0.9 */
  double scale;           /* 1 / micro-batches per step */
} AgcDinoLossParams;

/* One micro-batch: global[2 * batch, 3, G, G] (crop-major: the first crop
 * of every image, then the second), local[n_local * batch, 3, L, L] (NULL
 * when n_local is 0).  Adds the scaled gradients, moves the centre; *loss
 * is this micro-batch's loss. */
gboolean agc_dino_accumulate (AgcDino *dino, const float *global, int batch, int global_size,
                              const float *local, int n_local, int local_size,
                              const AgcDinoLossParams *params, double *loss, GError **error);

/* Clip (clip <= 0: none), AdamW at lr (params' weight decay), the last
 * layer left alone while freeze_last_layer, the teacher's EMA with
 * momentum, gradients zeroed. */
void agc_dino_update (AgcDino *dino, const AgcAdamWParams *adamw, double lr, double clip,
                      gboolean freeze_last_layer, double momentum);

/* cosine_scheduler(base, 1, ...): the teacher momentum of iteration it of
 * total: 1 - (1 - base) (cos(pi it / total) + 1) / 2. */
double agc_dino_momentum (double base, gint64 it, gint64 total);
/* The teacher temperature of epoch (0-based): linear from warmup_temp to
 * temp over warmup_epochs, then temp. */
double agc_dino_teacher_temp (double warmup_temp, double temp, int warmup_epochs, int epoch);
