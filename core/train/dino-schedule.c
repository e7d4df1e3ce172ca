/* dino-schedule.c — DINO's schedules, see dino-schedule.h. */
#include "train/dino-schedule.h"

#include "train/dino-step.h"

#include <math.h>

/* main_dino.py's defaults for the schedules */
#define WARMUP_EPOCHS 10
#define MIN_LR 1e-6
#define WEIGHT_DECAY_END_FACTOR 10.0 /* 0.04 -> 0.4 */
#define FREEZE_LAST_LAYER_EPOCHS 1

double
agc_cosine_schedule (double base, double final, int epochs, gint64 steps_per_epoch,
                     int warmup_epochs, double start_warmup, gint64 it)
{
  gint64 warmup = (gint64) warmup_epochs * steps_per_epoch;
  gint64 total = (gint64) epochs * steps_per_epoch;
  if (it < warmup) // np.linspace: both ends included
    return warmup == 1 ? start_warmup
                       : start_warmup + (base - start_warmup) * (double) it / (double) (warmup - 1);
  return final + 0.5 * (base - final) * (1.0 + cos (G_PI * (double) (it - warmup)
                                                    / (double) (total - warmup)));
}

AgcDinoSchedule
agc_dino_schedule (const AgcTrainParams *p, int step_images, int epochs, gint64 steps_per_epoch,
                   gint64 it)
{
  double lr = p->learning_rate * step_images / 256.0; // the linear scaling rule
  int warmup = MIN (WARMUP_EPOCHS, epochs / 10);
  return (AgcDinoSchedule){
    .learning_rate = agc_cosine_schedule (lr, MIN_LR, epochs, steps_per_epoch, warmup, 0.0, it),
    .weight_decay = agc_cosine_schedule (p->weight_decay,
                                         WEIGHT_DECAY_END_FACTOR * p->weight_decay, epochs,
                                         steps_per_epoch, 0, 0.0, it),
    .teacher_momentum = agc_dino_momentum (p->dino_teacher_momentum, it, (gint64) epochs
                                                                   * steps_per_epoch),
    .freeze_last_layer = it < FREEZE_LAST_LAYER_EPOCHS * steps_per_epoch,
  };
}
