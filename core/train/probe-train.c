/* probe-train.c — agc_train for the probe: the tagged folder's images
 * embedded through the cache, split and class-weighted, the zero-shot head
 * as the start, epochs of AdamW with early stopping on the validation loss,
 * checkpoints, and the adapter at the end.
 *
 * Determinism is what makes resuming exact: the split and each epoch's
 * batch order come from (seed, class) and (seed, epoch) alone, and the
 * checkpoint holds every number the next epoch reads, so an epoch run after
 * a restart is the same epoch as without one. */
#include "train/probe.h"

#include "models/adapter.h"
#include "train/dataset.h"
#include "models/embedding-cache.h"
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
run_epoch (AgcProbeState *s, const Fit *fit)
{
  const AgcTrainParams *params = fit->params;
  int dim = fit->dim, n_classes = fit->n_classes, batch = params->batch_size;
  int epoch = s->epoch + 1;
  int *order = g_new (int, MAX (fit->n_train, 1));
  for (int i = 0; i < fit->n_train; i++)
    order[i] = i;
  agc_shuffle (order, fit->n_train, params->seed, EPOCH_STREAM (epoch));
  int rows = MIN (batch, fit->n_train);
  float *xb = g_new (float, (size_t) rows * dim); // [rows, E]
  int *yb = g_new (int, rows);
  float *grad_weight = g_new (float, (size_t) n_classes * dim);
  float *grad_bias = g_new (float, n_classes);
  AgcAdamW adamw = { params->learning_rate, 0.9, 0.999, 1e-8 };
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
      agc_adamw_step (s->weight, s->m_weight, s->v_weight, grad_weight,
                      (size_t) n_classes * dim, &adamw, params->weight_decay, s->step);
      agc_adamw_step (s->bias, s->m_bias, s->v_bias, grad_bias, n_classes, &adamw, 0.0, s->step);
    }
  s->epoch = epoch;
  g_free (grad_bias);
  g_free (grad_weight);
  g_free (yb);
  g_free (xb);
  g_free (order);
  return loss_sum / MAX (fit->n_train, 1);
}

static gboolean
finished (const AgcProbeState *s, const Fit *fit)
{
  return s->epoch >= fit->params->max_epochs
         || (fit->n_val > 0 && s->epoch - s->best_epoch >= fit->params->patience);
}

/* Epochs until done; a checkpoint every checkpoint_every epochs, and one
 * when cancelled, so that no finished epoch is lost. */
static gboolean
run_epochs (AgcProbeState *s, const Fit *fit, const char *checkpoint, const char *fingerprint,
            GCancellable *cancellable, GError **error)
{
  const AgcTrainParams *params = fit->params;
  size_t n_weight = (size_t) fit->n_classes * fit->dim;
  int saved_epoch = s->epoch;
  while (!finished (s, fit))
    {
      if (g_cancellable_is_cancelled (cancellable))
        {
          if (params->checkpoint_every > 0 && s->epoch > saved_epoch
              && !agc_probe_checkpoint_write (checkpoint, s, fingerprint, error))
            return FALSE;
          g_set_error (error, AGC_ERROR, AGC_ERROR_CANCELLED,
                       "training cancelled after epoch %d", s->epoch);
          return FALSE;
        }
      double train_loss = run_epoch (s, fit), val_loss, val_accuracy;
      evaluate (&val_loss, &val_accuracy, fit, s->weight, s->bias);
      if (fit->n_val == 0 || val_loss < s->best_val_loss)
        {
          memcpy (s->best_weight, s->weight, sizeof (float) * n_weight);
          memcpy (s->best_bias, s->bias, sizeof (float) * fit->n_classes);
          s->best_epoch = s->epoch;
          s->best_val_loss = fit->n_val > 0 ? val_loss : INFINITY;
        }
      agc_train_report (params, AGC_TRAIN_STAGE_EPOCH, s->epoch, params->max_epochs, train_loss,
                       val_loss, val_accuracy);
      if (params->checkpoint_every > 0 && s->epoch % params->checkpoint_every == 0
          && !finished (s, fit))
        {
          if (!agc_probe_checkpoint_write (checkpoint, s, fingerprint, error))
            return FALSE;
          saved_epoch = s->epoch;
        }
    }
  return TRUE;
}

/* The settings that decide the result (not when to stop, which only cuts
 * the same sequence of epochs shorter), and the images. */
static char *
fingerprint_of (const Fit *fit, const char *identity, const AgcLabelSet *labels,
                const GString *images)
{
  const AgcTrainParams *p = fit->params;
  g_autoptr (GString) text = g_string_new ("agriclip probe 1\n");
  g_string_append_printf (text, "model %s\nseed %" G_GUINT64_FORMAT "\nval_fraction %a\n"
                          "learning_rate %a\nweight_decay %a\nbatch_size %d\n",
                          identity, p->seed, p->val_fraction, p->learning_rate, p->weight_decay,
                          p->batch_size);
  return agc_train_fingerprint (text, labels, images);
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

/* The state to go on from: a matching checkpoint, or the initial head. */
static AgcProbeState *
start_state (const Fit *fit, const float *init, const char *checkpoint, const char *fingerprint)
{
  const AgcTrainParams *params = fit->params;
  if (params->resume && g_file_test (checkpoint, G_FILE_TEST_EXISTS))
    {
      GError *problem = NULL;
      AgcProbeState *s = agc_probe_checkpoint_read (checkpoint, fingerprint, fit->n_classes,
                                                    fit->dim, &problem);
      if (s != NULL)
        {
          agc_train_report (params, AGC_TRAIN_STAGE_RESUME, s->epoch, params->max_epochs, NAN,
                           NAN, NAN);
          return s;
        }
      g_prefix_error (&problem, "not resuming, starting afresh: ");
      agc_train_report_problem (params, problem);
      g_error_free (problem);
    }
  AgcProbeState *s = agc_probe_state_new (fit->n_classes, fit->dim, init);
  double loss, accuracy;
  evaluate (&loss, &accuracy, fit, s->weight, s->bias);
  if (fit->n_val > 0)
    s->best_val_loss = loss; // a trained epoch must beat zero-shot to be kept
  return s;
}

static gboolean
write_adapter (const char *out_path, const AgcProbeState *s, AgcModel *model,
               const char *identity, const AgcLabelSet *labels, const AgcTrainResult *result,
               const AgcTrainParams *params, const char *data_dir, GError **error)
{
  AgcTensorView views[2] = {
    { .name = "head.weight", .dtype = AGC_DTYPE_F32, .n_dims = 2,
      .shape = { s->n_classes, s->dim }, .data = (const guint8 *) s->best_weight,
      .n_bytes = sizeof (float) * s->n_classes * s->dim },
    { .name = "head.bias", .dtype = AGC_DTYPE_F32, .n_dims = 1, .shape = { s->n_classes },
      .data = (const guint8 *) s->best_bias, .n_bytes = sizeof (float) * s->n_classes },
  };
  g_autofree char *metrics = agc_train_metrics_json (result);
  g_autofree char *training = training_json (params, data_dir);
  return agc_adapter_write (out_path, "probe", model, identity, labels, views, 2, metrics,
                            training, error);
}

gboolean
agc_train_probe (AgcModel *model, const char *data_dir, const char *out_path,
                 const AgcTrainParams *params, AgcTrainResult *result, GCancellable *cancellable,
                 GError **error)
{
  g_autofree char *identity = agc_model_identity (model, error);
  if (identity == NULL)
    return FALSE;
  AgcDataset *data = agc_dataset_open (data_dir, params->report, params->user_data, error);
  if (data == NULL)
    return FALSE;
  Fit fit = { .params = params, .n_classes = agc_label_set_n_classes (data->labels),
              .dim = agc_model_embed_dim (model) };
  g_autoptr (GString) images = g_string_new (NULL);
  g_autofree char *checkpoint = g_strconcat (out_path, ".checkpoint", NULL);
  g_autofree char *fingerprint = NULL;
  float *init = NULL;
  AgcProbeState *s = NULL;
  gboolean ok = prepare (&fit, result, images, data, model, identity, cancellable, error)
                && (init = zero_shot_head (model, data->labels, cancellable, error)) != NULL;
  if (ok)
    {
      result->n_classes = fit.n_classes;
      result->n_train = fit.n_train;
      result->n_val = fit.n_val;
      double zero_shot_loss;
      float *zero_bias = g_new0 (float, fit.n_classes);
      evaluate (&zero_shot_loss, &result->zero_shot_val_accuracy, &fit, init, zero_bias);
      g_free (zero_bias);
      fingerprint = fingerprint_of (&fit, identity, data->labels, images);
      s = start_state (&fit, init, checkpoint, fingerprint);
      result->resumed_epoch = s->epoch;
      ok = run_epochs (s, &fit, checkpoint, fingerprint, cancellable, error);
    }
  if (ok)
    {
      result->epochs = s->epoch;
      result->best_epoch = s->best_epoch;
      evaluate (&result->val_loss, &result->val_accuracy, &fit, s->best_weight, s->best_bias);
      ok = write_adapter (out_path, s, model, identity, data->labels, result, params, data_dir,
                          error);
    }
  if (ok) // the adapter is safe on disk: the checkpoint and leftovers of killed runs can go
    agc_train_clean_up (out_path);
  agc_probe_state_free (s);
  g_free (init);
  fit_clear (&fit);
  agc_dataset_free (data);
  return ok;
}
