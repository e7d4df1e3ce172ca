/* dino-schedule.h — DINO's per-step schedules (facebookresearch/dino,
 * main_dino.py and utils.cosine_scheduler): the learning rate (linear
 * scaling by the images of a step, linear warm-up, cosine decay), the
 * weight decay (cosine rise), the teacher momentum (cosine to 1) and the
 * frozen last layer of the first epoch. */
#pragma once

#include "agriclip.h"

/* utils.cosine_scheduler (base, final, epochs, steps_per_epoch,
 * warmup_epochs, start_warmup)[it]: np.linspace (start_warmup, base,
 * W) over the first W = warmup_epochs · steps_per_epoch steps, then
 * final + (base - final) (1 + cos (pi j / L)) / 2 for the j-th of the
 * L others.  it is 0-based over all epochs. */
double agc_cosine_schedule (double base, double final, int epochs, gint64 steps_per_epoch,
                            int warmup_epochs, double start_warmup, gint64 it);

typedef struct
{
  double learning_rate;
  double weight_decay;      /* of the weights (not of biases and BatchNorm) */
  double teacher_momentum;
  gboolean freeze_last_layer;
} AgcDinoSchedule;

/* The values of step it (0-based over the epochs · steps_per_epoch steps
 * of the run) for params (learning_rate already the method's when 0)
 * when a step sees step_images images (the reference's batch size summed
 * over its GPUs). */
AgcDinoSchedule agc_dino_schedule (const AgcTrainParams *params, int step_images, int epochs,
                                   gint64 steps_per_epoch, gint64 it);
