/* probe.c — the linear probe's numbers (logits, class-weighted
 * cross-entropy and its gradient) and its training state with the
 * checkpoint files.  The run around them is in probe-train.c. */
#include "train/probe.h"

#include "kernels/ops.h"
#include "nn/backward.h"
#include "train/checkpoint.h"
#include "formats/safetensors-write.h"
#include "formats/safetensors.h"

#include <cblas.h>
#include <math.h>
#include <string.h>

void
agc_probe_logits (float *logits, const float *x, const float *weight, const float *bias, int n,
                  int dim, int n_classes)
{
  if (n > 0)
    agc_linear_forward (logits, x, weight, bias, n, dim, n_classes);
}

double
agc_probe_loss_backward (float *grad_weight, float *grad_bias, const float *x,
                         const int *labels, const float *class_weights, const float *weight,
                         const float *bias, int n, int dim, int n_classes)
{
  if (n <= 0)
    return 0.0;
  float *z = g_new (float, (size_t) n * n_classes); // [n, C] logits, then dloss/dlogits
  agc_probe_logits (z, x, weight, bias, n, dim, n_classes);
  double loss = agc_cross_entropy_backward (z, labels, class_weights, n, n_classes);
  // z = x W^T + b  =>  dW[C, E] += dz^T[C, n] x[n, E],  db[C] += Σ_i dz_i
  if (grad_weight != NULL)
    cblas_sgemm (CblasRowMajor, CblasTrans, CblasNoTrans, n_classes, dim, n, 1.0f, z, n_classes,
                 x, dim, 1.0f, grad_weight, dim);
  if (grad_bias != NULL)
    for (int c = 0; c < n_classes; c++)
      {
        double sum = 0.0;
        for (int i = 0; i < n; i++)
          sum += z[(size_t) i * n_classes + c];
        grad_bias[c] += (float) sum;
      }
  g_free (z);
  return loss;
}

/* ---- the state and its checkpoints -------------------------------------------- */

AgcProbeState *
agc_probe_state_new (int n_classes, int dim, const float *weight)
{
  g_return_val_if_fail (n_classes > 0 && dim > 0 && weight != NULL, NULL);
  size_t w = (size_t) n_classes * dim, b = (size_t) n_classes;
  AgcProbeState *s = g_new0 (AgcProbeState, 1);
  s->n_classes = n_classes;
  s->dim = dim;
  float *block = g_new0 (float, 4 * w + 4 * b);
  s->weight = block;
  s->m_weight = block + w;
  s->v_weight = block + 2 * w;
  s->best_weight = block + 3 * w;
  s->bias = block + 4 * w;
  s->m_bias = s->bias + b;
  s->v_bias = s->bias + 2 * b;
  s->best_bias = s->bias + 3 * b;
  memcpy (s->weight, weight, sizeof (float) * w);
  memcpy (s->best_weight, weight, sizeof (float) * w);
  return s;
}

void
agc_probe_state_free (AgcProbeState *state)
{
  if (state == NULL)
    return;
  g_free (state->weight); // the block
  g_free (state);
}

/* The tensors of a checkpoint, in file order, pointing into state. */
typedef struct
{
  const char *name;
  float *data;
  gboolean is_bias; /* [C] rather than [C, E] */
} StateTensor;

static int
state_tensors (StateTensor *out, const AgcProbeState *s)
{
  const StateTensor list[] = {
    { "head.weight", s->weight, FALSE },       { "head.bias", s->bias, TRUE },
    { "adamw.m.weight", s->m_weight, FALSE },  { "adamw.v.weight", s->v_weight, FALSE },
    { "adamw.m.bias", s->m_bias, TRUE },       { "adamw.v.bias", s->v_bias, TRUE },
    { "best.weight", s->best_weight, FALSE },  { "best.bias", s->best_bias, TRUE },
  };
  memcpy (out, list, sizeof list);
  return (int) G_N_ELEMENTS (list);
}

#define N_STATE_TENSORS 8

gboolean
agc_probe_checkpoint_write (const char *path, const AgcProbeState *state,
                            const AgcTrainerRun *run, const char *fingerprint, GError **error)
{
  StateTensor list[N_STATE_TENSORS];
  int n = state_tensors (list, state);
  AgcTensorView views[N_STATE_TENSORS + 1] = { 0 };
  for (int i = 0; i < n; i++)
    {
      AgcTensorView *v = &views[i];
      v->name = list[i].name;
      v->dtype = AGC_DTYPE_F32;
      v->n_dims = list[i].is_bias ? 1 : 2;
      v->shape[0] = state->n_classes;
      v->shape[1] = state->dim;
      v->data = (const guint8 *) list[i].data;
      v->n_bytes = sizeof (float) * state->n_classes * (list[i].is_bias ? 1 : state->dim);
    }
  // exactly, not as decimal text: a resumed run must compare losses as the first did
  views[n] = (AgcTensorView){ .name = "best.val_loss", .dtype = AGC_DTYPE_F64, .n_dims = 1,
                              .shape = { 1 }, .data = (const guint8 *) &run->best_val_loss,
                              .n_bytes = sizeof (double) };

  g_autofree char *epoch = g_strdup_printf ("%d", run->epoch);
  g_autofree char *step = g_strdup_printf ("%" G_GINT64_FORMAT, state->step);
  g_autofree char *best_epoch = g_strdup_printf ("%d", run->best_epoch);
  g_autoptr (GHashTable) meta = agc_checkpoint_metadata_new ("probe", fingerprint);
  g_hash_table_insert (meta, "agriclip.epoch", epoch);
  g_hash_table_insert (meta, "agriclip.step", step);
  g_hash_table_insert (meta, "agriclip.best_epoch", best_epoch);
  return agc_safetensors_write (path, views, n + 1, meta, TRUE, error);
}

static gboolean
parse_count (gint64 *out, GHashTable *meta, const char *key, gint64 max)
{
  const char *text = meta != NULL ? g_hash_table_lookup (meta, key) : NULL;
  guint64 value;
  if (text == NULL || !g_ascii_string_to_unsigned (text, 10, 0, (guint64) max, &value, NULL))
    return FALSE;
  *out = (gint64) value;
  return TRUE;
}

/* Copies the stored state into s and run; NULL, or the reason it does not fit. */
static const char *
read_state (AgcProbeState *s, AgcTrainerRun *run, const AgcSafetensors *file)
{
  GHashTable *meta = agc_safetensors_metadata (file);
  gint64 epoch, step, best_epoch;
  if (!parse_count (&epoch, meta, "agriclip.epoch", G_MAXINT)
      || !parse_count (&step, meta, "agriclip.step", G_MAXINT64)
      || !parse_count (&best_epoch, meta, "agriclip.best_epoch", epoch))
    return "its epoch and step counts are missing or malformed";

  StateTensor list[N_STATE_TENSORS];
  int n = state_tensors (list, s);
  for (int i = 0; i < n; i++)
    {
      const AgcTensorView *t = agc_safetensors_find (file, list[i].name);
      gboolean fits = t != NULL && t->dtype == AGC_DTYPE_F32
                      && t->n_dims == (list[i].is_bias ? 1 : 2)
                      && t->shape[0] == s->n_classes && (list[i].is_bias || t->shape[1] == s->dim);
      if (!fits)
        return "a tensor is missing or has another shape";
      memcpy (list[i].data, t->data, t->n_bytes);
    }
  const AgcTensorView *loss = agc_safetensors_find (file, "best.val_loss");
  if (loss == NULL || loss->dtype != AGC_DTYPE_F64 || loss->n_bytes != sizeof (double))
    return "best.val_loss is missing";
  memcpy (&run->best_val_loss, loss->data, sizeof (double));
  run->epoch = (int) epoch;
  s->step = step;
  run->best_epoch = (int) best_epoch;
  return NULL;
}

gboolean
agc_probe_checkpoint_read (const char *path, AgcProbeState *state, AgcTrainerRun *run,
                           const char *fingerprint, GError **error)
{
  AgcSafetensors *file = agc_checkpoint_open (path, "probe", fingerprint, error);
  if (file == NULL)
    return FALSE;
  const char *reason = read_state (state, run, file);
  if (reason != NULL)
    agc_checkpoint_refuse (error, path, reason);
  agc_safetensors_free (file);
  return reason == NULL;
}
