/* probe-step.c — exposes the probe's loss, gradient and AdamW step
 * (core/train/probe.h) to tests/reference/test_train.py, which checks them
 * against PyTorch autograd and torch.optim.AdamW.
 *
 *   probe-step IN.safetensors OUT.safetensors
 *
 * IN holds x F32 [N, E], labels I64 [N], class_weights F32 [C], weight F32
 * [C, E], bias F32 [C], and metadata lr, weight_decay, steps (decimal text).
 * The tool takes `steps` AdamW steps on that one batch (weight decay on the
 * weight only) and writes OUT (with the project's safetensors writer):
 * loss F64 [steps] (before each step), grad.weight / grad.bias of the first
 * step, and weight / bias after the last.
 * Errors go to stderr, prefixed "error: ", exit status 1. */
#include "agriclip.h"
#include "train/optimizer.h"
#include "train/probe.h"
#include "formats/safetensors-write.h"
#include "formats/safetensors.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int
fail (const char *message)
{
  fprintf (stderr, "error: %s\n", message);
  return 1;
}

static const AgcTensorView *
find (const AgcSafetensors *file, const char *name, AgcDType dtype, int n_dims)
{
  const AgcTensorView *t = agc_safetensors_find (file, name);
  return t != NULL && t->dtype == dtype && t->n_dims == n_dims ? t : NULL;
}

static AgcTensorView
view (const char *name, AgcDType dtype, const void *data, int64_t rows, int64_t cols)
{
  AgcTensorView v = { .name = name, .dtype = dtype, .n_dims = cols > 0 ? 2 : 1,
                      .shape = { rows, cols }, .data = data };
  v.n_bytes = agc_dtype_size (dtype) * rows * (cols > 0 ? cols : 1);
  return v;
}

int
main (int argc, char **argv)
{
  if (argc != 3)
    {
      fprintf (stderr, "usage: probe-step IN.safetensors OUT.safetensors\n");
      return 2;
    }
  GError *error = NULL;
  AgcSafetensors *in = agc_safetensors_open (argv[1], &error);
  if (in == NULL)
    return fail (error->message);
  const AgcTensorView *x = find (in, "x", AGC_DTYPE_F32, 2);
  const AgcTensorView *labels = find (in, "labels", AGC_DTYPE_I64, 1);
  const AgcTensorView *class_weights = find (in, "class_weights", AGC_DTYPE_F32, 1);
  const AgcTensorView *weight = find (in, "weight", AGC_DTYPE_F32, 2);
  const AgcTensorView *bias = find (in, "bias", AGC_DTYPE_F32, 1);
  GHashTable *meta = agc_safetensors_metadata (in);
  if (!x || !labels || !class_weights || !weight || !bias || !meta
      || !g_hash_table_contains (meta, "lr") || !g_hash_table_contains (meta, "weight_decay")
      || !g_hash_table_contains (meta, "steps"))
    return fail ("IN lacks a tensor or a metadata value");
  int n = (int) x->shape[0], dim = (int) x->shape[1], n_classes = (int) weight->shape[0];
  double lr = g_ascii_strtod (g_hash_table_lookup (meta, "lr"), NULL);
  double weight_decay = g_ascii_strtod (g_hash_table_lookup (meta, "weight_decay"), NULL);
  int steps = atoi (g_hash_table_lookup (meta, "steps"));
  if (steps < 1)
    return fail ("steps must be at least 1");

  float *xs = g_new (float, (size_t) n * dim);
  float *cw = g_new (float, n_classes);
  int *ys = g_new (int, n);
  agc_tensor_to_f32 (x, xs);
  agc_tensor_to_f32 (class_weights, cw);
  for (int i = 0; i < n; i++)
    {
      gint64 label;
      memcpy (&label, labels->data + 8 * i, 8);
      ys[i] = (int) label;
    }
  float *w = g_new (float, (size_t) n_classes * dim);
  agc_tensor_to_f32 (weight, w);
  AgcProbeState *s = agc_probe_state_new (n_classes, dim, w);
  agc_tensor_to_f32 (bias, s->bias);

  double *losses = g_new (double, steps);
  float *grad_weight = g_new (float, (size_t) n_classes * dim), *first_grad_weight = NULL;
  float *grad_bias = g_new (float, n_classes), *first_grad_bias = NULL;
  AgcAdamWParams adamw = agc_adamw_params (lr, weight_decay);
  for (int step = 1; step <= steps; step++)
    {
      memset (grad_weight, 0, sizeof (float) * n_classes * dim);
      memset (grad_bias, 0, sizeof (float) * n_classes);
      losses[step - 1] = agc_probe_loss_backward (grad_weight, grad_bias, xs, ys, cw, s->weight,
                                                  s->bias, n, dim, n_classes);
      if (step == 1)
        {
          first_grad_weight = g_memdup2 (grad_weight, sizeof (float) * n_classes * dim);
          first_grad_bias = g_memdup2 (grad_bias, sizeof (float) * n_classes);
        }
      agc_adamw_step (s->weight, s->m_weight, s->v_weight, grad_weight,
                      (size_t) n_classes * dim, &adamw, lr, TRUE, step);
      agc_adamw_step (s->bias, s->m_bias, s->v_bias, grad_bias, n_classes, &adamw, lr, FALSE, step);
    }
  AgcTensorView out[] = {
    view ("loss", AGC_DTYPE_F64, losses, steps, 0),
    view ("grad.weight", AGC_DTYPE_F32, first_grad_weight, n_classes, dim),
    view ("grad.bias", AGC_DTYPE_F32, first_grad_bias, n_classes, 0),
    view ("weight", AGC_DTYPE_F32, s->weight, n_classes, dim),
    view ("bias", AGC_DTYPE_F32, s->bias, n_classes, 0),
  };
  if (!agc_safetensors_write (argv[2], out, G_N_ELEMENTS (out), NULL, FALSE, &error))
    return fail (error->message);
  agc_probe_state_free (s);
  agc_safetensors_free (in);
  g_free (xs);
  g_free (cw);
  g_free (ys);
  g_free (w);
  g_free (losses);
  g_free (grad_weight);
  g_free (grad_bias);
  g_free (first_grad_weight);
  g_free (first_grad_bias);
  return 0;
}
