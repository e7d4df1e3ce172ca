/* test-probe.c — the probe's numbers against references written here in
 * double precision from the definitions: the class-weighted cross-entropy
 * (value, and gradient by central finite differences), AdamW as Loshchilov
 * & Hutter write it (decoupled decay, bias-corrected moments); and the
 * checkpoint files: an exact round trip, and refusal of a checkpoint from
 * other settings.  PyTorch checks the same functions in
 * tests/reference/test_train.py. */
#include "agriclip.h"
#include "train/optimizer.h"
#include "train/probe.h"

#include <glib/gstdio.h>
#include <math.h>
#include <string.h>

enum
{
  N = 7,
  E = 5,
  C = 3,
};

/* The reference loss in double: Σ_i w_yi (lse(z_i) - z_i[y_i]) / Σ_i w_yi. */
static double
reference_loss (const double *x, const int *y, const double *cw, const double *w,
                const double *b)
{
  double total = 0.0, weight_sum = 0.0;
  for (int i = 0; i < N; i++)
    {
      double z[C], max = -INFINITY, sum = 0.0;
      for (int c = 0; c < C; c++)
        {
          z[c] = b[c];
          for (int e = 0; e < E; e++)
            z[c] += x[i * E + e] * w[c * E + e];
          max = fmax (max, z[c]);
        }
      for (int c = 0; c < C; c++)
        sum += exp (z[c] - max);
      total += cw[y[i]] * (max + log (sum) - z[y[i]]);
      weight_sum += cw[y[i]];
    }
  return total / weight_sum;
}

typedef struct
{
  float x[N * E], w[C * E], b[C], cw[C];
  double xd[N * E], wd[C * E], bd[C], cwd[C];
  int y[N];
} Problem;

/* Unit-norm rows like image embeddings, a head at CLIP's scale (logits of
 * tens), unequal class weights. */
static void
make_problem (Problem *p, guint32 seed)
{
  GRand *rand = g_rand_new_with_seed (seed);
  for (int i = 0; i < N; i++)
    {
      double norm = 0.0;
      for (int e = 0; e < E; e++)
        {
          p->x[i * E + e] = (float) g_rand_double_range (rand, -1, 1);
          norm += p->x[i * E + e] * p->x[i * E + e];
        }
      for (int e = 0; e < E; e++)
        p->x[i * E + e] /= (float) sqrt (norm);
      p->y[i] = i % C;
    }
  for (int k = 0; k < C * E; k++)
    p->w[k] = (float) g_rand_double_range (rand, -8, 8);
  for (int c = 0; c < C; c++)
    {
      p->b[c] = (float) g_rand_double_range (rand, -1, 1);
      p->cw[c] = (float) (0.5 + c);
    }
  for (int k = 0; k < N * E; k++)
    p->xd[k] = p->x[k];
  for (int k = 0; k < C * E; k++)
    p->wd[k] = p->w[k];
  for (int c = 0; c < C; c++)
    p->bd[c] = p->b[c], p->cwd[c] = p->cw[c];
  g_rand_free (rand);
}

static void
test_loss_and_gradient (void)
{
  for (guint32 seed = 1; seed <= 3; seed++)
    {
      Problem p;
      make_problem (&p, seed);
      float gw[C * E] = { 0 }, gb[C] = { 0 };
      double loss = agc_probe_loss_backward (gw, gb, p.x, p.y, p.cw, p.w, p.b, N, E, C);
      double want = reference_loss (p.xd, p.y, p.cwd, p.wd, p.bd);
      g_assert_cmpfloat_with_epsilon (loss, want, 1e-5 * fmax (1.0, want));
      g_assert_cmpfloat (want, >, 0.1); /* not a trivially solved problem */

      /* central differences of the double reference, h = 1e-5 */
      const double h = 1e-5;
      double max_error = 0.0, max_grad = 0.0;
      for (int k = 0; k < C * E + C; k++)
        {
          double *param = k < C * E ? &p.wd[k] : &p.bd[k - C * E];
          double saved = *param;
          *param = saved + h;
          double up = reference_loss (p.xd, p.y, p.cwd, p.wd, p.bd);
          *param = saved - h;
          double down = reference_loss (p.xd, p.y, p.cwd, p.wd, p.bd);
          *param = saved;
          double numeric = (up - down) / (2 * h);
          double analytic = k < C * E ? gw[k] : gb[k - C * E];
          max_error = fmax (max_error, fabs (numeric - analytic));
          max_grad = fmax (max_grad, fabs (numeric));
        }
      g_assert_cmpfloat (max_grad, >, 1e-3);
      g_assert_cmpfloat (max_error, <, 1e-5 * fmax (1.0, max_grad));
    }
}

static void
test_gradient_accumulates (void)
{
  Problem p;
  make_problem (&p, 9);
  float once_w[C * E] = { 0 }, once_b[C] = { 0 }, twice_w[C * E] = { 0 }, twice_b[C] = { 0 };
  agc_probe_loss_backward (once_w, once_b, p.x, p.y, p.cw, p.w, p.b, N, E, C);
  for (int r = 0; r < 2; r++)
    agc_probe_loss_backward (twice_w, twice_b, p.x, p.y, p.cw, p.w, p.b, N, E, C);
  for (int k = 0; k < C * E; k++)
    g_assert_cmpfloat_with_epsilon (twice_w[k], 2 * once_w[k], 1e-6);
  for (int c = 0; c < C; c++)
    g_assert_cmpfloat_with_epsilon (twice_b[c], 2 * once_b[c], 1e-6);
  /* no images: no loss, no gradient */
  float zero_w[C * E] = { 0 }, zero_b[C] = { 0 };
  g_assert_cmpfloat (agc_probe_loss_backward (zero_w, zero_b, p.x, p.y, p.cw, p.w, p.b, 0, E, C),
                     ==, 0.0);
  for (int k = 0; k < C * E; k++)
    g_assert_cmpfloat (zero_w[k], ==, 0.0f);
}

static void
test_adamw (void)
{
  const double lr = 0.05, wd = 0.1, b1 = 0.9, b2 = 0.999, eps = 1e-8;
  AgcAdamWParams adamw = agc_adamw_params (lr, wd);
  adamw.beta1 = b1, adamw.beta2 = b2, adamw.eps = eps;
  enum { K = 4, STEPS = 5 };
  float p[K] = { 1.0f, -2.0f, 0.5f, 3.0f }, m[K] = { 0 }, v[K] = { 0 };
  double pd[K], md[K] = { 0 }, vd[K] = { 0 };
  for (int k = 0; k < K; k++)
    pd[k] = p[k];
  for (int t = 1; t <= STEPS; t++)
    {
      /* gradients that change size and sign from step to step */
      float g[K] = { 0.3f * t, -0.01f, (t % 2) ? 2.0f : -1.0f, 1e-4f * t };
      agc_adamw_step (p, m, v, g, K, &adamw, lr, TRUE, t);
      for (int k = 0; k < K; k++)
        {
          pd[k] -= lr * wd * pd[k];
          md[k] = b1 * md[k] + (1 - b1) * g[k];
          vd[k] = b2 * vd[k] + (1 - b2) * g[k] * g[k];
          double m_hat = md[k] / (1 - pow (b1, t)), v_hat = vd[k] / (1 - pow (b2, t));
          pd[k] -= lr * m_hat / (sqrt (v_hat) + eps);
        }
      for (int k = 0; k < K; k++)
        g_assert_cmpfloat_with_epsilon (p[k], pd[k], 1e-5);
    }
  /* the first step moves every parameter by about lr, whatever the gradient's size */
  float q[1] = { 0.0f }, mq[1] = { 0 }, vq[1] = { 0 }, gq[1] = { 1e-3f };
  agc_adamw_step (q, mq, vq, gq, 1, &adamw, lr, FALSE, 1);
  g_assert_cmpfloat_with_epsilon (q[0], -lr, 1e-6);
}

/* ---- checkpoints ------------------------------------------------------------------ */

static AgcProbeState *
random_state (AgcTrainerRun *run, guint32 seed)
{
  GRand *rand = g_rand_new_with_seed (seed);
  float w[C * E];
  for (int k = 0; k < C * E; k++)
    w[k] = (float) g_rand_double_range (rand, -5, 5);
  AgcProbeState *s = agc_probe_state_new (C, E, w);
  float *arrays[] = { s->m_weight, s->v_weight, s->best_weight };
  for (size_t a = 0; a < G_N_ELEMENTS (arrays); a++)
    for (int k = 0; k < C * E; k++)
      arrays[a][k] = (float) g_rand_double (rand);
  float *biases[] = { s->bias, s->m_bias, s->v_bias, s->best_bias };
  for (size_t a = 0; a < G_N_ELEMENTS (biases); a++)
    for (int c = 0; c < C; c++)
      biases[a][c] = (float) g_rand_double (rand);
  s->step = 1234567890123;
  *run = (AgcTrainerRun){ .epoch = 17, .best_epoch = 12,
                          .best_val_loss = 0.1 + 1e-17 * g_rand_double (rand) };
  g_rand_free (rand);
  return s;
}

static void
assert_states_equal (const AgcProbeState *a, const AgcProbeState *b)
{
  size_t w = sizeof (float) * C * E, bias = sizeof (float) * C;
  g_assert_cmpmem (a->weight, w, b->weight, w);
  g_assert_cmpmem (a->m_weight, w, b->m_weight, w);
  g_assert_cmpmem (a->v_weight, w, b->v_weight, w);
  g_assert_cmpmem (a->best_weight, w, b->best_weight, w);
  g_assert_cmpmem (a->bias, bias, b->bias, bias);
  g_assert_cmpmem (a->m_bias, bias, b->m_bias, bias);
  g_assert_cmpmem (a->v_bias, bias, b->v_bias, bias);
  g_assert_cmpmem (a->best_bias, bias, b->best_bias, bias);
  g_assert_cmpint (a->step, ==, b->step);
}

static void
assert_runs_equal (const AgcTrainerRun *a, const AgcTrainerRun *b)
{
  g_assert_cmpint (a->epoch, ==, b->epoch);
  g_assert_cmpint (a->best_epoch, ==, b->best_epoch);
  g_assert_cmpmem (&a->best_val_loss, sizeof (double), &b->best_val_loss, sizeof (double));
}

static AgcProbeState *
zero_state (int n_classes)
{
  float *zeros = g_new0 (float, (size_t) n_classes * E);
  AgcProbeState *s = agc_probe_state_new (n_classes, E, zeros);
  g_free (zeros);
  return s;
}

static void
test_checkpoint (void)
{
  g_autofree char *dir = g_dir_make_tmp ("agc-probe-XXXXXX", NULL);
  g_autofree char *path = g_build_filename (dir, "out.safetensors.checkpoint", NULL);
  AgcTrainerRun run, run_back = { 0 };
  AgcProbeState *s = random_state (&run, 5);
  GError *error = NULL;
  g_assert_true (agc_probe_checkpoint_write (path, s, &run, "fingerprint-1", &error));
  g_assert_no_error (error);

  AgcProbeState *back = zero_state (C);
  g_assert_true (agc_probe_checkpoint_read (path, back, &run_back, "fingerprint-1", &error));
  g_assert_no_error (error);
  assert_states_equal (s, back);
  assert_runs_equal (&run, &run_back);

  /* infinity (no validation images) survives too */
  run.best_val_loss = INFINITY;
  g_assert_true (agc_probe_checkpoint_write (path, s, &run, "fingerprint-1", &error));
  g_assert_true (agc_probe_checkpoint_read (path, back, &run_back, "fingerprint-1", &error));
  g_assert_true (isinf (run_back.best_val_loss));
  agc_probe_state_free (back);

  /* other settings or sizes: refused, with the file named */
  back = zero_state (C);
  g_assert_false (agc_probe_checkpoint_read (path, back, &run_back, "fingerprint-2", &error));
  g_assert_error (error, AGC_ERROR, AGC_ERROR_FORMAT);
  g_assert_nonnull (strstr (error->message, "out.safetensors.checkpoint"));
  g_assert_nonnull (strstr (error->message, "other settings"));
  g_clear_error (&error);
  agc_probe_state_free (back);
  back = zero_state (C + 1);
  g_assert_false (agc_probe_checkpoint_read (path, back, &run_back, "fingerprint-1", &error));
  g_assert_error (error, AGC_ERROR, AGC_ERROR_FORMAT);
  g_clear_error (&error);
  agc_probe_state_free (back);

  /* and a checkpoint is not an adapter */
  g_assert_null (agc_adapter_load (path, &error));
  g_assert_error (error, AGC_ERROR, AGC_ERROR_FORMAT);
  g_assert_nonnull (strstr (error->message, "checkpoint, not a finished adapter"));
  g_clear_error (&error);

  agc_probe_state_free (s);
  g_unlink (path);
  g_rmdir (dir);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/probe/loss-and-gradient", test_loss_and_gradient);
  g_test_add_func ("/probe/gradient-accumulates", test_gradient_accumulates);
  g_test_add_func ("/probe/adamw", test_adamw);
  g_test_add_func ("/probe/checkpoint", test_checkpoint);
  return g_test_run ();
}
