/* probe-train.c — agc_train for the probe, as a method of the trainer
 * (trainer.h): the tagged folder's images embedded through the cache, split
 * and class-weighted, the zero-shot head as the start, epochs of AdamW.
 *
 * Determinism is what makes resuming exact: the split and each epoch's
 * batch order come from (seed, class) and (seed, epoch) alone, and the
 * checkpoint holds every number the next epoch reads, so an epoch run after
 * a restart is the same epoch as without one. */
#include "train/probe.h"

#include "models/adapter.h"
#include "train/dataset.h"
#include "models/embedding-cache.h"
#include "train/optimizer.h"
#include "train/train-common.h"

#include <json-glib/json-glib.h>
#include <math.h>
#include <string.h>

/* Shuffle streams: the split uses the class index (< 2^32), epoch e this. */
#define EPOCH_STREAM(e) (((guint64) 1 << 32) | (guint64) (e))

/* The images as the optimiser sees them. */
typedef struct
{
  const AgcTrainParams *params;
  AgcModel *model;
  const char *identity;
  float *init;          /* [C, E] the zero-shot head: the start */
  AgcProbeState *s;     /* the head being trained */
  int n_classes;
  int dim;
  int n_train;
  float *x_train;       /* [n_train, E] */
  int *y_train;         /* [n_train] */
  float *train_weights; /* [C] n_train / (C · n_train_c): every class weighs the same */
  int n_val;
  float *x_val;         /* [n_val, E] */
  int *y_val;           /* [n_val] */
  float *val_weights;   /* [C] 1 / n_val_c: the loss is the mean of the per-class means */
} Fit;

static void
fit_clear (Fit *fit)
{
  g_free (fit->x_train);
  g_free (fit->y_train);
  g_free (fit->train_weights);
  g_free (fit->x_val);
  g_free (fit->y_val);
  g_free (fit->val_weights);
  g_free (fit->init);
  agc_probe_state_free (fit->s);
}

/* Splits the readable images x[n, E] of classes class_of[n] into the
 * training and validation sets of fit. */
static void
split_images (Fit *fit, const float *x, const int *class_of, int n)
{
  const AgcTrainParams *params = fit->params;
  int dim = fit->dim;
  AgcTrainSplit split;
  agc_train_split (&split, class_of, n, fit->n_classes, params->val_fraction, params->seed);
  fit->n_train = split.n_train;
  fit->n_val = split.n_val;
  fit->x_train = g_new (float, (size_t) MAX (fit->n_train, 1) * dim);
  fit->y_train = g_new (int, MAX (fit->n_train, 1));
  fit->x_val = g_new (float, (size_t) MAX (fit->n_val, 1) * dim);
  fit->y_val = g_new (int, MAX (fit->n_val, 1));
  for (int t = 0; t < split.n_train; t++)
    {
      int i = split.train[t];
      memcpy (fit->x_train + (size_t) t * dim, x + (size_t) i * dim, sizeof (float) * dim);
      fit->y_train[t] = class_of[i];
    }
  for (int v = 0; v < split.n_val; v++)
    {
      int i = split.val[v];
      memcpy (fit->x_val + (size_t) v * dim, x + (size_t) i * dim, sizeof (float) * dim);
      fit->y_val[v] = class_of[i];
    }
  fit->train_weights = g_steal_pointer (&split.train_weights);
  fit->val_weights = g_steal_pointer (&split.val_weights);
  agc_train_split_clear (&split);
}

/* Embeds the dataset through the cache, drops the unreadable files and
 * splits the rest.  fingerprint receives the class and content hash of
 * each image kept: everything about the images that decides training. */
static gboolean
prepare (Fit *fit, AgcTrainResult *result, GString *fingerprint, AgcDataset *data,
         AgcModel *model, const char *identity, GCancellable *cancellable, GError **error)
{
  const AgcTrainParams *params = fit->params;
  int n_files = data->n_files, dim = fit->dim;
  float *x = g_new (float, (size_t) n_files * dim);
  gboolean *ok = g_new (gboolean, n_files);
  char (*hashes)[AGC_SHA256_HEX] = g_malloc_n (MAX (n_files, 1), AGC_SHA256_HEX);
  AgcEmbedCounts counts;
  gboolean good = agc_embed_files_cached (x, ok, hashes, &counts, model, identity,
                                          (const char *const *) data->files, n_files,
                                          agc_train_on_embed_problem,
                                          agc_train_on_embed_progress, (gpointer) params,
                                          cancellable, error);
  /* the readable images move to the front of x, in dataset order */
  int n = 0;
  int *class_of = g_new (int, MAX (n_files, 1));
  for (int i = 0; good && i < n_files; i++)
    if (ok[i])
      {
        memmove (x + (size_t) n * dim, x + (size_t) i * dim, sizeof (float) * dim);
        class_of[n++] = data->class_of[i];
        g_string_append_printf (fingerprint, "image %d %s\n", data->class_of[i], hashes[i]);
      }
  good = good && agc_train_check_classes (data, class_of, n, error);
  if (good)
    {
      result->n_images = n;
      result->n_skipped = counts.n_failed;
      result->n_cached = counts.n_cached;
      split_images (fit, x, class_of, n);
    }
  g_free (class_of);
  g_free (hashes);
  g_free (ok);
  g_free (x);
  return good;
}

/* The balanced validation loss and the share of validation images right. */
static void
evaluate (double *loss, double *accuracy, const Fit *fit, const float *weight, const float *bias)
{
  if (fit->n_val == 0)
    {
      *loss = *accuracy = NAN;
      return;
    }
  *loss = agc_probe_loss_backward (NULL, NULL, fit->x_val, fit->y_val, fit->val_weights, weight,
                                   bias, fit->n_val, fit->dim, fit->n_classes);
  float *logits = g_new (float, (size_t) fit->n_val * fit->n_classes);
  agc_probe_logits (logits, fit->x_val, weight, bias, fit->n_val, fit->dim, fit->n_classes);
  int right = 0;
  for (int i = 0; i < fit->n_val; i++)
    {
      const float *z = logits + (size_t) i * fit->n_classes;
      int best = 0;
      for (int c = 1; c < fit->n_classes; c++)
        if (z[c] > z[best])
          best = c;
      right += best == fit->y_val[i];
    }
  g_free (logits);
  *accuracy = (double) right / fit->n_val;
}

/* One pass over the training images in a seeded order, one AdamW step per
 * batch; returns the mean training loss. */
static double
run_epoch (AgcProbeState *s, const Fit *fit, int epoch)
{
  const AgcTrainParams *params = fit->params;
  int dim = fit->dim, n_classes = fit->n_classes, batch = params->batch_size;
  int *order = g_new (int, MAX (fit->n_train, 1));
  for (int i = 0; i < fit->n_train; i++)
    order[i] = i;
  agc_shuffle (order, fit->n_train, params->seed, EPOCH_STREAM (epoch));
  int rows = MIN (batch, fit->n_train);
  float *xb = g_new (float, (size_t) rows * dim); // [rows, E]
  int *yb = g_new (int, rows);
  float *grad_weight = g_new (float, (size_t) n_classes * dim);
  float *grad_bias = g_new (float, n_classes);
  AgcAdamWParams adamw = agc_adamw_params (params->learning_rate, params->weight_decay);
  double loss_sum = 0.0;
  for (int start = 0; start < fit->n_train; start += batch)
    {
      int n = MIN (batch, fit->n_train - start);
      for (int j = 0; j < n; j++)
        {
          int i = order[start + j];
          memcpy (xb + (size_t) j * dim, fit->x_train + (size_t) i * dim, sizeof (float) * dim);
          yb[j] = fit->y_train[i];
        }
      memset (grad_weight, 0, sizeof (float) * n_classes * dim);
      memset (grad_bias, 0, sizeof (float) * n_classes);
      loss_sum += n * agc_probe_loss_backward (grad_weight, grad_bias, xb, yb,
                                               fit->train_weights, s->weight, s->bias, n, dim,
                                               n_classes);
      s->step++;
      double lr = agc_adamw_lr (&adamw, s->step);
      agc_adamw_step (s->weight, s->m_weight, s->v_weight, grad_weight,
                      (size_t) n_classes * dim, &adamw, lr, TRUE, s->step);
      agc_adamw_step (s->bias, s->m_bias, s->v_bias, grad_bias, n_classes, &adamw, lr, FALSE,
                      s->step);
    }
  g_free (grad_bias);
  g_free (grad_weight);
  g_free (yb);
  g_free (xb);
  g_free (order);
  return loss_sum / MAX (fit->n_train, 1);
}

static char *
training_json (const AgcTrainParams *p, const char *data_dir)
{
  return agc_train_settings_json (p, data_dir, "AdamW", "class-weighted cross-entropy", NULL);
}

/* The zero-shot classifier of the classes as the starting head [C, E]. */
static float *
zero_shot_head (AgcModel *model, const AgcLabelSet *labels, GCancellable *cancellable,
                GError **error)
{
  AgcClassifier *classifier = agc_classifier_new (model, labels, cancellable, error);
  if (classifier == NULL)
    return NULL;
  int n_classes = agc_label_set_n_classes (labels);
  float *weight = g_new (float, (size_t) n_classes * agc_model_embed_dim (model));
  float *bias = g_new (float, n_classes);
  agc_classifier_head (classifier, weight, bias);
  agc_classifier_free (classifier);
  g_free (bias); // zero
  return weight;
}

/* ---- the method's table ---------------------------------------------------- */

static gboolean
probe_prepare (gpointer self, AgcTrainerRun *run, AgcTrainResult *result, GString *images,
               AgcDataset *data, GCancellable *cancellable, GError **error)
{
  (void) run;
  Fit *fit = self;
  fit->n_classes = agc_label_set_n_classes (data->labels);
  if (!prepare (fit, result, images, data, fit->model, fit->identity, cancellable, error)
      || (fit->init = zero_shot_head (fit->model, data->labels, cancellable, error)) == NULL)
    return FALSE;
  result->n_classes = fit->n_classes;
  result->n_train = fit->n_train;
  result->n_val = fit->n_val;
  return TRUE;
}

static gboolean
probe_validate (gpointer self, AgcTrainerWeights which, double *loss, double *accuracy,
                GError **error)
{
  (void) error;
  Fit *fit = self;
  if (which == AGC_TRAINER_START)
    {
      float *zero_bias = g_new0 (float, fit->n_classes);
      evaluate (loss, accuracy, fit, fit->init, zero_bias);
      g_free (zero_bias);
    }
  else if (which == AGC_TRAINER_CURRENT)
    evaluate (loss, accuracy, fit, fit->s->weight, fit->s->bias);
  else
    evaluate (loss, accuracy, fit, fit->s->best_weight, fit->s->best_bias);
  return TRUE;
}

static void
probe_start (gpointer self)
{
  Fit *fit = self;
  agc_probe_state_free (fit->s);
  fit->s = agc_probe_state_new (fit->n_classes, fit->dim, fit->init);
}

/* One pass over the training images; cancelling stops between epochs. */
static gboolean
probe_epoch (gpointer self, const AgcTrainerRun *run, double *train_loss,
             GCancellable *cancellable, GError **error)
{
  Fit *fit = self;
  if (g_cancellable_is_cancelled (cancellable))
    {
      g_set_error (error, AGC_ERROR, AGC_ERROR_CANCELLED, "training cancelled after epoch %d",
                   run->epoch);
      return FALSE;
    }
  *train_loss = run_epoch (fit->s, fit, run->epoch + 1);
  return TRUE;
}

static void
probe_keep (gpointer self, int epoch)
{
  (void) epoch;
  AgcProbeState *s = ((Fit *) self)->s;
  memcpy (s->best_weight, s->weight, sizeof (float) * s->n_classes * s->dim);
  memcpy (s->best_bias, s->bias, sizeof (float) * s->n_classes);
}

static char *
probe_adapter (gpointer self, GArray *views, GPtrArray *names, const char *data_dir)
{
  (void) names;
  const Fit *fit = self;
  const AgcProbeState *s = fit->s;
  AgcTensorView head[2] = {
    { .name = "head.weight", .dtype = AGC_DTYPE_F32, .n_dims = 2,
      .shape = { s->n_classes, s->dim }, .data = (const guint8 *) s->best_weight,
      .n_bytes = sizeof (float) * s->n_classes * s->dim },
    { .name = "head.bias", .dtype = AGC_DTYPE_F32, .n_dims = 1, .shape = { s->n_classes },
      .data = (const guint8 *) s->best_bias, .n_bytes = sizeof (float) * s->n_classes },
  };
  g_array_append_vals (views, head, 2);
  return training_json (fit->params, data_dir);
}

static gint64
probe_steps (gpointer self)
{
  return ((Fit *) self)->s->step;
}

static gboolean
probe_checkpoint_write (gpointer self, const char *path, const AgcTrainerRun *run,
                        const char *fingerprint, GError **error)
{
  return agc_probe_checkpoint_write (path, ((Fit *) self)->s, run, fingerprint, error);
}

static gboolean
probe_checkpoint_read (gpointer self, const char *path, AgcTrainerRun *run,
                       const char *fingerprint, GError **error)
{
  return agc_probe_checkpoint_read (path, ((Fit *) self)->s, run, fingerprint, error);
}

static const AgcTrainerMethod probe_method = {
  .name = "probe",
  .prepare = probe_prepare,
  .validate = probe_validate,
  .start = probe_start,
  .epoch = probe_epoch,
  .keep = probe_keep,
  .adapter = probe_adapter,
  .steps = probe_steps,
  .checkpoint_write = probe_checkpoint_write,
  .checkpoint_read = probe_checkpoint_read,
};

gboolean
agc_train_probe (AgcModel *model, const char *data_dir, const char *out_path,
                 const AgcTrainParams *params, AgcTrainResult *result, GCancellable *cancellable,
                 GError **error)
{
  g_autofree char *identity = agc_model_identity (model, error);
  if (identity == NULL)
    return FALSE;
  Fit fit = { .params = params, .model = model, .identity = identity,
              .dim = agc_model_embed_dim (model) };
  gboolean ok = agc_trainer_run (&probe_method, &fit, model, identity, data_dir, out_path,
                                 params, result, cancellable, error);
  fit_clear (&fit);
  return ok;
}
