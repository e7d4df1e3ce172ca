/* dino-schedule.c — exposes DINO's per-step schedules (core/train/
 * dino-schedule.h) and their use by AdamW to tests/reference/
 * test_dino_schedule.py, which checks them against facebookresearch/dino's
 * utils.cosine_scheduler and torch.optim.AdamW with main_dino.py's
 * parameter groups.
 *
 *   dino-schedule LR WEIGHT_DECAY STEP_IMAGES EPOCHS STEPS_PER_EPOCH [MOMENTUM]
 *
 * (MOMENTUM: the teacher's at the first step, --teacher-momentum; default
 * the library's.)
 * Prints one line per step: "lr weight_decay momentum freeze_last_layer";
 * then "weights W..." and "biases B..." after AdamW steps at those values
 * on 4 decayed and 4 undecayed floats (start 0.5 + 0.1 i and -0.2 + 0.05
 * i; gradient sin (it + i) and cos (it + i) at step it). */
#include "agriclip.h"
#include "train/dino-schedule.h"
#include "train/optimizer.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#define N 4

int
main (int argc, char **argv)
{
  if (argc != 6 && argc != 7)
    {
      fprintf (stderr, "usage: dino-schedule LR WEIGHT_DECAY STEP_IMAGES EPOCHS "
                       "STEPS_PER_EPOCH [MOMENTUM]\n");
      return 2;
    }
  AgcTrainParams p = agc_train_default_params ();
  p.method = AGC_TRAIN_DINO;
  p.learning_rate = g_ascii_strtod (argv[1], NULL);
  p.weight_decay = g_ascii_strtod (argv[2], NULL);
  if (argc == 7)
    p.dino_teacher_momentum = g_ascii_strtod (argv[6], NULL);
  int step_images = atoi (argv[3]), epochs = atoi (argv[4]);
  gint64 per_epoch = atoi (argv[5]);
  float w[N], b[N], mw[N] = { 0 }, vw[N] = { 0 }, mb[N] = { 0 }, vb[N] = { 0 }, gw[N], gb[N];
  for (int i = 0; i < N; i++)
    w[i] = 0.5f + 0.1f * i, b[i] = -0.2f + 0.05f * i;
  for (gint64 it = 0; it < epochs * per_epoch; it++)
    {
      AgcDinoSchedule s = agc_dino_schedule (&p, step_images, epochs, per_epoch, it);
      printf ("%.17g %.17g %.17g %d\n", s.learning_rate, s.weight_decay, s.teacher_momentum,
              s.freeze_last_layer ? 1 : 0);
      for (int i = 0; i < N; i++)
        gw[i] = (float) sin ((double) (it + i)), gb[i] = (float) cos ((double) (it + i));
      AgcAdamWParams adamw = agc_adamw_params (s.learning_rate, s.weight_decay);
      agc_adamw_step (w, mw, vw, gw, N, &adamw, s.learning_rate, TRUE, it + 1);
      agc_adamw_step (b, mb, vb, gb, N, &adamw, s.learning_rate, FALSE, it + 1);
    }
  printf ("weights");
  for (int i = 0; i < N; i++)
    printf (" %.9g", w[i]);
  printf ("\nbiases");
  for (int i = 0; i < N; i++)
    printf (" %.9g", b[i]);
  printf ("\n");
  return 0;
}
