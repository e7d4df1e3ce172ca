/* test-resnet-train.c — the training backward passes of DINO by finite
 * differences: ResNet-50 in training mode (nn/resnet-train.h), the DINO head
 * (nn/dino-head.h) and the DINO loss (train/dino-loss.h).  The loss is
 * L = sum_i r_i out_i for fixed random r (the DINO loss itself for the
 * loss); central differences of L against the analytic gradient.  (The
 * exact comparison with PyTorch autograd is tests/reference/test_resnet_train.py
 * and test_dino.py.) */
#include "nn/dino-head.h"
#include "nn/resnet-train.h"
#include "train/dino-loss.h"
#include "unit-util.h"

#include <string.h>

static double
features_loss (AgcResNetTrain *net, AgcResNetActs **acts, const float *pixels, int batch,
               int size, const float *r)
{
  float *f = g_new (float, (size_t) batch * 2048);
  GError *error = NULL;
  g_assert_true (agc_resnet_train_forward (net, acts, pixels, batch, size, size, f, FALSE,
                                           &error));
  double loss = 0.0;
  for (size_t i = 0; i < (size_t) batch * 2048; i++)
    loss += (double) r[i] * f[i];
  g_free (f);
  return loss;
}

static void
test_resnet (void)
{
  GRand *rng = g_rand_new_with_seed (11);
  AgcResNetTrain *net = random_resnet (rng);
  int batch = 2, size = 48;
  float *pixels = random_floats (rng, (size_t) batch * 3 * size * size, 1.0, 0.0);
  float *r = random_floats (rng, (size_t) batch * 2048, 1.0, 0.0);
  AgcResNetActs *acts = NULL;
  features_loss (net, &acts, pixels, batch, size, r);
  GError *error = NULL;
  g_assert_true (agc_resnet_train_backward (net, acts, r, &error)); // dL/dfeatures = r
  // elements of the stem, early and late BatchNorms, a 3x3 conv, a projection
  const char *const units[] = { "conv1", "layer1.0.conv2", "layer2.0.downsample.0",
                                "layer3.3.conv1", "layer4.2.conv3" };
  double worst = 0.0;
  for (size_t k = 0; k < G_N_ELEMENTS (units); k++)
    {
      AgcConvBN *cb = NULL;
      for (int u = 0; u < AGC_RESNET_UNITS; u++)
        if (g_strcmp0 (net->units[u].conv_name, units[k]) == 0)
          cb = &net->units[u];
      g_assert_nonnull (cb);
      size_t k_w = (size_t) cb->conv.kernel * cb->conv.kernel * cb->conv.c_in * cb->conv.c_out;
      float *params[3] = { cb->conv.weight, cb->gamma, cb->beta };
      float *grads[3] = { cb->dweight, cb->dgamma, cb->dbeta };
      size_t sizes[3] = { k_w, cb->conv.c_out, cb->conv.c_out };
      for (int which = 0; which < 3; which++)
        {
          // directional derivatives of the whole tensor: along its gradient
          // (expects |g|) and along a random direction (expects g . v):
          // large enough against float32's rounding of L, and each element
          // moves so little that few ReLUs flip
          size_t n = sizes[which];
          float *saved = g_memdup2 (params[which], n * sizeof (float));
          double norm_g = 0.0, norm_p = 0.0;
          for (size_t i = 0; i < n; i++)
            {
              norm_g += (double) grads[which][i] * grads[which][i];
              norm_p += (double) saved[i] * saved[i];
            }
          norm_g = sqrt (norm_g), norm_p = sqrt (norm_p);
          float *random = random_floats (rng, n, 1.0, 0.0);
          for (int dir = 0; dir < 2; dir++)
            {
              double *v = g_new (double, n), vnorm = 0.0, expected = 0.0;
              for (size_t i = 0; i < n; i++)
                {
                  v[i] = dir == 0 ? grads[which][i] : random[i];
                  vnorm += v[i] * v[i];
                }
              vnorm = sqrt (vnorm);
              for (size_t i = 0; i < n; i++)
                expected += grads[which][i] * (v[i] /= vnorm);
              double h = 1e-3 * MAX (norm_p, 1.0);
              for (size_t i = 0; i < n; i++)
                params[which][i] = (float) (saved[i] + h * v[i]);
              double up = features_loss (net, &acts, pixels, batch, size, r);
              for (size_t i = 0; i < n; i++)
                params[which][i] = (float) (saved[i] - h * v[i]);
              double down = features_loss (net, &acts, pixels, batch, size, r);
              memcpy (params[which], saved, n * sizeof (float));
              double fd = (up - down) / (2 * h);
              double err = fabs (fd - expected) / norm_g;
              g_test_message ("%s array %d direction %d: fd %g analytic %g", units[k], which,
                              dir, fd, expected);
              worst = MAX (worst, err);
              g_free (v);
            }
          g_free (random);
          g_free (saved);
        }
    }
  g_test_message ("worst relative difference %g", worst);
  g_assert_cmpfloat (worst, <, 3e-2); // the differences' own error in float32: ~2 %
  agc_resnet_acts_free (acts);
  agc_resnet_train_free (net);
  g_free (pixels);
  g_free (r);
  g_rand_free (rng);
}

static double
head_loss (const AgcDinoHead *head, AgcDinoHeadActs **acts, const float *x, int n,
           const float *r)
{
  float *out = g_new (float, (size_t) n * head->out_dim);
  agc_dino_head_forward (head, acts, x, n, out);
  double loss = 0.0;
  for (size_t i = 0; i < (size_t) n * head->out_dim; i++)
    loss += (double) r[i] * out[i];
  g_free (out);
  return loss;
}

static void
test_head (void)
{
  GRand *rng = g_rand_new_with_seed (12);
  int n = 3, d = 8;
  AgcDinoHead *head = agc_dino_head_new (d, 16, 5, 12, 3);
  for (size_t i = 0; i < head->n_params; i++) // weights larger than 0.02: GELU's curve shows
    head->params[i] = (float) g_rand_double_range (rng, -0.5, 0.5);
  float *x = random_floats (rng, (size_t) n * d, 1.0, 0.0);
  float *r = random_floats (rng, (size_t) n * 12, 1.0, 0.0);
  float *dx = g_new0 (float, (size_t) n * d);
  AgcDinoHeadActs *acts = NULL;
  head_loss (head, &acts, x, n, r);
  agc_dino_head_backward (head, acts, r, dx);
  double worst = 0.0;
  for (size_t i = 0; i < head->n_params + (size_t) n * d; i++)
    {
      gboolean is_x = i >= head->n_params;
      float *p = is_x ? x + (i - head->n_params) : head->params + i;
      double analytic = is_x ? dx[i - head->n_params] : head->grads[i];
      float saved = *p;
      double h = 1e-2;
      *p = (float) (saved + h);
      double up = head_loss (head, &acts, x, n, r);
      *p = (float) (saved - h);
      double down = head_loss (head, &acts, x, n, r);
      *p = saved;
      double fd = (up - down) / (2 * h);
      worst = MAX (worst, fabs (fd - analytic) / MAX (fabs (fd), 1e-1));
    }
  g_test_message ("worst relative difference %g", worst);
  g_assert_cmpfloat (worst, <, 1e-2);
  agc_dino_head_acts_free (acts);
  agc_dino_head_free (head);
  g_free (x);
  g_free (r);
  g_free (dx);
  g_rand_free (rng);
}

static void
test_loss (void)
{
  GRand *rng = g_rand_new_with_seed (13);
  int batch = 2, n_crops = 4, dim = 10, rows = n_crops * batch;
  float *student = random_floats (rng, (size_t) rows * dim, 1.0, 0.0);
  float *teacher = random_floats (rng, (size_t) 2 * batch * dim, 1.0, 0.0);
  float *center = random_floats (rng, dim, 0.1, 0.0);
  float *grad = g_new0 (float, (size_t) rows * dim), *scratch = g_new0 (float, (size_t) rows * dim);
  agc_dino_loss_backward (grad, student, teacher, center, n_crops, batch, dim, 0.1, 0.04, 1.0);
  double worst = 0.0;
  for (int i = 0; i < rows * dim; i++)
    {
      float saved = student[i];
      double h = 1e-3;
      student[i] = (float) (saved + h);
      double up = agc_dino_loss_backward (scratch, student, teacher, center, n_crops, batch, dim,
                                          0.1, 0.04, 1.0);
      student[i] = (float) (saved - h);
      double down = agc_dino_loss_backward (scratch, student, teacher, center, n_crops, batch,
                                            dim, 0.1, 0.04, 1.0);
      student[i] = saved;
      double fd = (up - down) / (2 * h);
      worst = MAX (worst, fabs (fd - grad[i]) / MAX (fabs (fd), 1e-1));
    }
  g_test_message ("worst relative difference %g", worst);
  g_assert_cmpfloat (worst, <, 1e-3);
  // the centre: an exponential moving average of the teacher's mean row
  float before = center[0];
  double mean = 0.0;
  for (int r = 0; r < 2 * batch; r++)
    mean += teacher[(size_t) r * dim] / (2.0 * batch);
  agc_dino_center_update (center, teacher, 2 * batch, dim, 0.9);
  g_assert_cmpfloat (fabs (center[0] - (0.9 * before + 0.1 * mean)), <, 1e-6);
  g_free (student);
  g_free (teacher);
  g_free (center);
  g_free (grad);
  g_free (scratch);
  g_rand_free (rng);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/resnet-train/finite-differences", test_resnet);
  g_test_add_func ("/dino-head/finite-differences", test_head);
  g_test_add_func ("/dino-loss/finite-differences", test_loss);
  return g_test_run ();
}
