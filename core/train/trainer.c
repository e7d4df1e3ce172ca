/* trainer.c — the training loop every method of agc_train runs
 * (trainer.h). */
#include "train/trainer.h"

#include "models/adapter.h"
#include "train/train-common.h"

#include <math.h>

/* What the loop needs beside the method. */
typedef struct
{
  const AgcTrainerMethod *method;
  gpointer self;
  const AgcTrainParams *params;
  AgcTrainerRun run;
  char *checkpoint;    /* OUT.checkpoint */
  char *fingerprint;   /* NULL without checkpoints */
  gint64 saved_steps;  /* the steps of the last checkpoint (or of the start) */
} Loop;

/* The SHA-256 that tells whether a checkpoint belongs to this run: of the
 * settings that decide the result (not when to stop, which only cuts the
 * same sequence of epochs shorter), the method's own, every class with its
 * display name and prompts, then images (one line per image kept). */
static char *
fingerprint_of (const Loop *loop, const char *identity, const AgcLabelSet *labels,
                const GString *images)
{
  const AgcTrainParams *p = loop->params;
  g_autoptr (GString) text = g_string_new (NULL);
  g_string_append_printf (text, "agriclip %s 1\nmodel %s\nseed %" G_GUINT64_FORMAT "\n"
                          "val_fraction %a\nlearning_rate %a\nweight_decay %a\nbatch_size %d\n",
                          loop->method->name, identity, p->seed, p->val_fraction,
                          p->learning_rate, p->weight_decay, p->batch_size);
  if (loop->method->fingerprint != NULL)
    loop->method->fingerprint (loop->self, text);
  for (int c = 0; c < agc_label_set_n_classes (labels); c++)
    {
      g_string_append_printf (text, "class %s\t%s\n", agc_label_set_class_name (labels, c),
                              agc_label_set_class_display_name (labels, c));
      for (const char *const *q = agc_label_set_class_prompts (labels, c); *q != NULL; q++)
        g_string_append_printf (text, "prompt %s\n", *q);
    }
  g_string_append_len (text, images->str, (gssize) images->len);
  return g_compute_checksum_for_string (G_CHECKSUM_SHA256, text->str, (gssize) text->len);
}

static gboolean
save (Loop *loop, GError **error)
{
  if (!loop->method->checkpoint_write (loop->self, loop->checkpoint, &loop->run,
                                       loop->fingerprint, error))
    return FALSE;
  loop->saved_steps = loop->method->steps (loop->self);
  return TRUE;
}

/* The method's start, or a matching checkpoint's state. */
static void
start (Loop *loop)
{
  const AgcTrainParams *params = loop->params;
  loop->method->start (loop->self);
  if (loop->fingerprint != NULL && params->resume
      && g_file_test (loop->checkpoint, G_FILE_TEST_EXISTS))
    {
      GError *problem = NULL;
      AgcTrainerRun fresh = loop->run;
      if (loop->method->checkpoint_read (loop->self, loop->checkpoint, &loop->run,
                                         loop->fingerprint, &problem))
        agc_train_report (params, AGC_TRAIN_STAGE_RESUME, loop->run.epoch, loop->run.n_epochs,
                          NAN, NAN, NAN);
      else
        {
          // a half-read checkpoint: back to the start
          loop->run = fresh;
          g_prefix_error (&problem, "not resuming, starting afresh: ");
          agc_train_report_problem (params, problem);
          g_error_free (problem);
          loop->method->start (loop->self);
        }
    }
  if (loop->fingerprint != NULL)
    loop->saved_steps = loop->method->steps (loop->self);
}

static gboolean
finished (const Loop *loop)
{
  const AgcTrainerRun *run = &loop->run;
  return run->epoch >= run->n_epochs
         || (run->judged && run->patience > 0 && run->epoch - run->best_epoch >= run->patience);
}

/* Epochs until done; a checkpoint every checkpoint_every epochs, and one
 * when cancelled with steps taken since the last. */
static gboolean
run_epochs (Loop *loop, GCancellable *cancellable, GError **error)
{
  const AgcTrainerMethod *method = loop->method;
  const AgcTrainParams *params = loop->params;
  AgcTrainerRun *run = &loop->run;
  gboolean checkpoints = loop->fingerprint != NULL && params->checkpoint_every > 0;
  while (!finished (loop))
    {
      double train_loss, val_loss, val_accuracy;
      GError *stop = NULL;
      if (!method->epoch (loop->self, run, &train_loss, cancellable, &stop))
        {
          if (g_error_matches (stop, AGC_ERROR, AGC_ERROR_CANCELLED) && checkpoints
              && method->steps (loop->self) > loop->saved_steps)
            {
              GError *failed = NULL;
              if (!save (loop, &failed))
                g_clear_error (&stop), stop = failed;
            }
          g_propagate_error (error, stop);
          return FALSE;
        }
      run->epoch++;
      if (!method->validate (loop->self, AGC_TRAINER_CURRENT, &val_loss, &val_accuracy, error))
        return FALSE;
      if (!run->judged || val_loss < run->best_val_loss)
        {
          method->keep (loop->self, run->epoch);
          run->best_epoch = run->epoch;
          run->best_val_loss = run->judged ? val_loss : INFINITY;
        }
      agc_train_report (params, AGC_TRAIN_STAGE_EPOCH, run->epoch, run->n_epochs, train_loss,
                        val_loss, val_accuracy);
      if (checkpoints && run->epoch % params->checkpoint_every == 0 && !finished (loop)
          && !save (loop, error))
        return FALSE;
    }
  return TRUE;
}

static gboolean
write_adapter (const Loop *loop, const char *out_path, AgcModel *model, const char *identity,
               const AgcLabelSet *labels, const AgcTrainResult *result, const char *data_dir,
               GError **error)
{
  GArray *views = g_array_new (FALSE, TRUE, sizeof (AgcTensorView));
  GPtrArray *names = g_ptr_array_new_with_free_func (g_free);
  g_autofree char *training = loop->method->adapter (loop->self, views, names, data_dir);
  g_autofree char *metrics = agc_train_metrics_json (result);
  gboolean ok = agc_adapter_write (out_path, loop->method->name, model, identity, labels,
                                   (const AgcTensorView *) views->data, (int) views->len,
                                   metrics, training, error);
  g_ptr_array_unref (names);
  g_array_unref (views);
  return ok;
}

gboolean
agc_trainer_run (const AgcTrainerMethod *method, gpointer self, AgcModel *model,
                 const char *identity, const char *data_dir, const char *out_path,
                 const AgcTrainParams *params, AgcTrainResult *result,
                 GCancellable *cancellable, GError **error)
{
  AgcDataset *data = agc_dataset_open (data_dir, params->report, params->user_data, error);
  if (data == NULL)
    return FALSE;
  Loop loop = { .method = method, .self = self, .params = params,
                .run = { .n_epochs = params->max_epochs, .patience = params->patience,
                         .judged = TRUE },
                .checkpoint = g_strconcat (out_path, ".checkpoint", NULL) };
  g_autoptr (GString) images = g_string_new (NULL);
  double start_loss;
  gboolean ok = method->prepare (self, &loop.run, result, images, data, cancellable, error)
                && method->validate (self, AGC_TRAINER_START, &start_loss,
                                     &result->zero_shot_val_accuracy, error);
  if (ok)
    {
      // a trained epoch must beat the start to be kept
      loop.run.judged = loop.run.judged && result->n_val > 0;
      loop.run.best_val_loss = loop.run.judged ? start_loss : INFINITY;
      if (method->checkpoint_write != NULL)
        loop.fingerprint = fingerprint_of (&loop, identity, data->labels, images);
      start (&loop);
      result->resumed_epoch = loop.run.epoch;
      ok = run_epochs (&loop, cancellable, error);
    }
  if (ok)
    {
      if (method->finish != NULL)
        method->finish (self);
      result->epochs = loop.run.epoch;
      result->best_epoch = loop.run.best_epoch;
      ok = method->validate (self, AGC_TRAINER_BEST, &result->val_loss, &result->val_accuracy,
                             error)
           && write_adapter (&loop, out_path, model, identity, data->labels, result, data_dir,
                             error);
    }
  if (ok) // the adapter is safe on disk: the checkpoint and leftovers of killed runs can go
    agc_train_clean_up (out_path);
  g_free (loop.fingerprint);
  g_free (loop.checkpoint);
  agc_dataset_free (data);
  return ok;
}
