/* dino-loss.h — DINO's loss (facebookresearch/dino, main_dino.py DINOLoss):
 * the teacher's outputs of the 2 global crops, centred and sharpened,
 * softmax((t - center) / teacher_temp), are the targets of the student's
 * outputs of every other crop, log_softmax(s / student_temp):
 *   loss = mean over the pairs (teacher crop iq, student crop v != iq) of
 *          the batch mean of sum_k -q_k log p_k.
 * Rows are crop-major: crop v of image b is row v * batch + b. */
#pragma once

#include <glib.h>

/* student[n_crops * batch, K], teacher[2 * batch, K], center[K]: returns
 * the loss; adds scale * dloss/dstudent into dstudent (same shape). */
double agc_dino_loss_backward (float *dstudent, const float *student, const float *teacher,
                               const float *center, int n_crops, int batch, int dim,
                               double student_temp, double teacher_temp, double scale);

/* center = center * momentum + mean of teacher's 2 * batch rows * (1 - momentum). */
void agc_dino_center_update (float *center, const float *teacher, int n_rows, int dim,
                             double momentum);
