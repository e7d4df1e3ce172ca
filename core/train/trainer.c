/* trainer.c — the training loop every method of agc_train runs
 * (trainer.h). */
#include "train/trainer.h"

#include "models/adapter.h"
#include "support/json-file.h"
#include "train/train-common.h"

#include <math.h>
#include <string.h>

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
fingerprint_of (const Loop *loop, const char *identity, const char *base_digest,
                const AgcLabelSet *labels, const GString *images)
{
  const AgcTrainParams *p = loop->params;
  g_autoptr (GString) text = g_string_new (NULL);
  g_string_append_printf (text, "agriclip %s 1\nmodel %s\nseed %" G_GUINT64_FORMAT "\n"
                          "val_fraction %a\nlearning_rate %a\nweight_decay %a\nbatch_size %d\n",
                          loop->method->name, identity, p->seed, p->val_fraction,
                          p->learning_rate, p->weight_decay, p->batch_size);
  if (base_digest != NULL) // trained on a base adapter
    g_string_append_printf (text, "base %s\n", base_digest);
  if (loop->method->fingerprint != NULL)
    loop->method->fingerprint (loop->self, text);
  for (int c = 0; labels != NULL && c < agc_label_set_n_classes (labels); c++)
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

/* Stacking: the base's tensors that the method does not replace join
 * views; returns agriclip.stack (the base's bases, then the base).  The
 * base must be the one applied to the model (the file may have changed). */
static char *
add_base (GArray *views, const char *path, AgcModel *model, AgcAdapter **base, GError **error)
{
  *base = agc_adapter_load (path, error);
  if (*base == NULL)
    return NULL;
  if (g_strcmp0 (agc_adapter_digest (*base), agc_model_adapter_digest (model)) != 0)
    {
      g_set_error (error, AGC_ERROR, AGC_ERROR_INPUT,
                   "%s: changed while training on it; train again", agc_adapter_path (*base));
      return NULL;
    }
  guint n_own = views->len;
  for (int i = 0; i < agc_adapter_n_tensors (*base); i++)
    {
      AgcTensorView view = { .dtype = AGC_DTYPE_F32 };
      int n_dims;
      const float *data = agc_adapter_tensor (*base, i, &view.name, &n_dims, view.shape);
      gboolean replaced = FALSE;
      for (guint j = 0; j < n_own && !replaced; j++)
        replaced = strcmp (g_array_index (views, AgcTensorView, j).name, view.name) == 0;
      if (replaced)
        continue;
      view.n_dims = n_dims;
      view.data = (const guint8 *) data;
      view.n_bytes = sizeof (float) * (size_t) agc_tensor_n_elements (&view);
      g_array_append_val (views, view);
    }
  g_autoptr (JsonParser) parser = json_parser_new ();
  const char *stack = agc_adapter_stack (*base);
  // the base's stack: checked when the adapter was loaded
  JsonNode *entries
    = stack != NULL && agc_json_parse_data (parser, stack, strlen (stack), "stack", NULL)
        ? json_parser_get_root (parser) : NULL;
  g_autoptr (JsonBuilder) b = json_builder_new ();
  json_builder_begin_array (b);
  for (guint i = 0; entries != NULL && i < json_array_get_length (json_node_get_array (entries));
       i++)
    json_builder_add_value (b, json_node_copy (
                                   json_array_get_element (json_node_get_array (entries), i)));
  if (strcmp (agc_adapter_method (*base), "probe") != 0) // a probe's head is left behind
    {
      g_autofree char *file = g_path_get_basename (path);
      json_builder_begin_object (b);
      agc_json_add_string (b, "method", agc_adapter_method (*base));
      agc_json_add_string (b, "digest", agc_adapter_digest (*base));
      agc_json_add_string (b, "file", file);
      json_builder_end_object (b);
    }
  json_builder_end_array (b);
  g_autoptr (JsonNode) root = json_builder_get_root (b);
  return json_to_string (root, FALSE);
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
  AgcAdapter *base = NULL; // owns the base's tensors until written
  g_autofree char *stack = NULL;
  gboolean ok = loop->params->base_adapter == NULL
                || (stack = add_base (views, loop->params->base_adapter, model, &base, error))
                       != NULL;
  ok = ok && agc_adapter_write (out_path, loop->method->name, model, identity, labels,
                                (const AgcTensorView *) views->data, (int) views->len,
                                metrics, training, stack, error);
  agc_adapter_free (base);
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
  AgcDataset *data = NULL;
  if (method->unlabelled)
    {
      data = g_new0 (AgcDataset, 1);
      data->dir = g_strdup (data_dir);
    }
  else
    data = agc_dataset_open (data_dir, params->report, params->user_data, error);
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
        loop.fingerprint = fingerprint_of (&loop, identity, agc_model_adapter_digest (model),
                                           data->labels, images);
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
