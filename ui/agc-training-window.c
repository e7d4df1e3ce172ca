/* agc-training-window.c — the training window, see agc-training-window.h. */
#include "agc-training-window.h"

#include "agc-model-chooser.h"
#include "agc-ui-progress.h"
#include "agc-ui-settings.h"

#include <glib/gi18n-lib.h>
#include <math.h>

/* A wrapping label asks for its whole text on one line unless capped: the
 * status and the summary's first line (a long path, a translation) would
 * widen the window past a 1280-pixel screen. */
#define WRAPPED_CHARS 50

typedef struct
{
  int epoch;
  double train_loss, val_loss, val_accuracy;
} EpochPoint;

typedef struct Training Training;

struct _AgcTrainingWindow
{
  GtkWindow parent_instance;

  char *folder;
  /* what the scan found: the tagged classes (or why the folder is not
   * tagged), every photo under it, and whether it holds image-text pairs */
  char *tag_problem;
  int n_photos;
  gboolean has_pairs;
  gboolean adapter_chosen;  /* the user set the adapter file: keep it */
  Training *training;       /* the running one (scan or training), or NULL */
  GArray *points;           /* EpochPoint of the current run */
  int planned_epochs;
  /* DINO's steps: the epoch running, and when the run's first step was reported (ETA) */
  int current_epoch;
  gint64 steps_started_at;
  gint64 steps_at_start; /* steps of the run before that first report */
  gboolean plot_pending; /* a run started: its first report decides what the plot keeps */
  AgcTrainResult result;
  gboolean has_result;
  AgcEvaluation *evaluation;

  GtkWidget *models, *folder_button, *classes, *adapter_entry, *browse;
  GtkWidget *method, *epochs, *patience, *val_share, *seed, *rate, *blocks, *mix;
  GtkWidget *folder_label, *base_entry, *base_browse;
  GtkWidget *local_crops, *out_dim, *accumulate, *crop_size;
  GtkWidget *dino_labels[4]; /* of the four above */
  GtkWidget *finetune_labels[2]; /* of blocks and mix */
  GtkWidget *train_button, *cancel_button, *progress, *status, *plot, *summary;
  GtkListStore *class_store;
};

enum
{
  SIGNAL_SCANNED,
  SIGNAL_EPOCH,
  SIGNAL_FINISHED,
  N_SIGNALS
};
static guint signals[N_SIGNALS];

G_DEFINE_FINAL_TYPE (AgcTrainingWindow, agc_training_window, GTK_TYPE_WINDOW)

enum
{
  COLUMN_CLASS,
  COLUMN_IMAGES,
  COLUMN_UNREADABLE,
  N_COLUMNS
};

/* What the worker thread and the window share while a job runs. */
struct Training
{
  AgcTrainingWindow *self; /* NULL once the window is gone */
  GCancellable *cancellable;
  char *model_dir, *data_dir, *out_path, *base_adapter;
  AgcTrainParams params;
  AgcTrainResult result;
  AgcEvaluation *evaluation;
  /* epochs handed to the window, and shown by it */
  GMutex lock;
  GCond shown;
  int epochs_sent, epochs_shown;
  /* scan */
  char *tag_problem;
  int n_photos;
  gboolean has_pairs;
  int n_classes;
  char **class_names;
  int *n_images, *n_unreadable;
};

static void
training_free (Training *t)
{
  g_object_unref (t->cancellable);
  g_free (t->model_dir);
  g_free (t->data_dir);
  g_free (t->out_path);
  g_free (t->base_adapter);
  g_free (t->tag_problem);
  agc_evaluation_free (t->evaluation);
  g_strfreev (t->class_names);
  g_free (t->n_images);
  g_free (t->n_unreadable);
  g_mutex_clear (&t->lock);
  g_cond_clear (&t->shown);
  g_free (t);
}

static Training *
training_new (AgcTrainingWindow *self)
{
  Training *t = g_new0 (Training, 1);
  t->self = self;
  t->cancellable = g_cancellable_new ();
  g_mutex_init (&t->lock);
  g_cond_init (&t->shown);
  return t;
}

static void
set_status (AgcTrainingWindow *self, const char *text)
{
  gtk_label_set_text (GTK_LABEL (self->status), text ? text : "");
}

/* The method chosen (its name is the chooser's active id). */
static AgcTrainMethod
chosen_method (AgcTrainingWindow *self)
{
  AgcTrainMethod method = AGC_TRAIN_PROBE;
  agc_train_method_from_name (&method,
                              gtk_combo_box_get_active_id (GTK_COMBO_BOX (self->method)));
  return method;
}

/* NULL when the scanned folder holds what the chosen method learns from,
 * else why not (g_free). */
static char *
folder_problem (AgcTrainingWindow *self)
{
  switch (agc_train_method_data (chosen_method (self)))
    {
    case AGC_TRAIN_DATA_PHOTOS:
      /* Translators: DINO learns from at least two photos, tags or not */
      return self->n_photos >= 2 ? NULL
                                 : g_strdup_printf (_("%d photos in this folder: DINO needs at "
                                                      "least two"), self->n_photos);
    case AGC_TRAIN_DATA_PAIRS:
      return self->has_pairs ? NULL
                             : g_strdup (_("No captions.jsonl in this folder: \"agriclip "
                                           "captions\" writes the image-text pairs"));
    case AGC_TRAIN_DATA_TAGGED:
    default:
      return g_strdup (self->tag_problem);
    }
}

/* What the folder holds, as the chosen method sees it. */
static void
show_folder (AgcTrainingWindow *self)
{
  if (!self->folder || self->training)
    return;
  g_autofree char *problem = folder_problem (self);
  if (problem)
    {
      set_status (self, problem);
      return;
    }
  GtkTreeModel *store = GTK_TREE_MODEL (self->class_store);
  GtkTreeIter iter;
  int classes = 0, images = 0, unreadable = 0;
  for (gboolean ok = gtk_tree_model_get_iter_first (store, &iter); ok;
       ok = gtk_tree_model_iter_next (store, &iter), classes++)
    {
      int n_images, n_unreadable;
      gtk_tree_model_get (store, &iter, COLUMN_IMAGES, &n_images, COLUMN_UNREADABLE,
                          &n_unreadable, -1);
      images += n_images, unreadable += n_unreadable;
    }
  g_autofree char *text
    = agc_train_method_data (chosen_method (self)) == AGC_TRAIN_DATA_TAGGED
        /* Translators: what the chosen folder holds */
        ? g_strdup_printf (_("%d classes, %d images, %d unreadable files"), classes, images,
                           unreadable)
        /* Translators: the photos DINO (or contrastive training) learns from, tags not needed */
        : g_strdup_printf (_("%d photos under the folder (no tags needed)"), self->n_photos);
  set_status (self, text);
}

static void
update_buttons (AgcTrainingWindow *self)
{
  gboolean busy = self->training != NULL;
  g_autofree char *model = agc_model_chooser_get_path (AGC_MODEL_CHOOSER (self->models));
  g_autofree char *problem = self->folder ? folder_problem (self) : NULL;
  gboolean ready = model && self->folder && !problem;
  gtk_widget_set_sensitive (self->train_button, !busy && ready);
  agc_ui_progress_set_busy (self->progress, self->cancel_button, busy);
  gtk_widget_set_sensitive (self->folder_button, !busy);
  gtk_widget_set_sensitive (self->models, !busy);
  AgcTrainMethod method = chosen_method (self);
  gboolean finetune = method == AGC_TRAIN_FINETUNE;
  gboolean validated = agc_train_method_data (method) == AGC_TRAIN_DATA_TAGGED;
  // fine-tuning's settings likewise only with it: the window stays short enough for 800 pixels
  GtkWidget *finetuning[] = { self->blocks, self->mix };
  for (int i = 0; i < 2; i++)
    {
      gtk_widget_set_visible (finetuning[i], finetune);
      gtk_widget_set_visible (self->finetune_labels[i], finetune);
      gtk_widget_set_sensitive (finetuning[i], finetune && !busy);
    }
  gtk_widget_set_sensitive (self->patience, validated && !busy);
  gtk_widget_set_sensitive (self->val_share, validated && !busy);
  // DINO's own settings are there only when DINO is chosen
  GtkWidget *dino[] = { self->local_crops, self->out_dim, self->accumulate, self->crop_size };
  for (int i = 0; i < 4; i++)
    {
      gtk_widget_set_visible (dino[i], method == AGC_TRAIN_DINO);
      gtk_widget_set_visible (self->dino_labels[i], method == AGC_TRAIN_DINO);
      gtk_widget_set_sensitive (dino[i], !busy);
    }
  gtk_widget_set_sensitive (self->base_entry, !busy);
  gtk_widget_set_sensitive (self->base_browse, !busy);
}

/* ---- scanning the folder --------------------------------------------------- */

static void
scan_thread (GTask *task, gpointer source, gpointer data, GCancellable *cancellable)
{
  (void) source;
  (void) cancellable;
  Training *t = data;
  // every photo (DINO), image-text pairs (contrastive), and the tags (the others)
  g_autoptr (GPtrArray) photos = g_ptr_array_new_with_free_func (g_free);
  const char *dirs[] = { t->data_dir };
  agc_image_collect (dirs, 1, TRUE, photos, NULL, NULL);
  t->n_photos = (int) photos->len;
  g_autofree char *pairs = g_build_filename (t->data_dir, "captions.jsonl", NULL);
  t->has_pairs = g_file_test (pairs, G_FILE_TEST_IS_REGULAR);
  GError *error = NULL;
  AgcEvaluation *e = agc_evaluation_open (t->data_dir, NULL, NULL, &error);
  if (!e)
    {
      t->tag_problem = g_strdup (error->message);
      g_error_free (error);
      g_task_return_boolean (task, TRUE);
      return;
    }
  const AgcLabelSet *labels = agc_evaluation_labels (e);
  t->n_classes = agc_label_set_n_classes (labels);
  t->class_names = g_new0 (char *, t->n_classes + 1);
  t->n_images = g_new0 (int, t->n_classes);
  t->n_unreadable = g_new0 (int, t->n_classes);
  for (int c = 0; c < t->n_classes; c++)
    {
      t->class_names[c] = g_strdup (agc_label_set_class_display_name (labels, c));
      int n = agc_evaluation_class_n_files (e, c);
      // the header alone: decoding every photo is training's work
      for (int i = 0; i < n; i++)
        if (gdk_pixbuf_get_file_info (agc_evaluation_class_file (e, c, i), NULL, NULL))
          t->n_images[c]++;
        else
          t->n_unreadable[c]++;
    }
  agc_evaluation_free (e);
  g_task_return_boolean (task, TRUE);
}

static void
scan_done (GObject *source, GAsyncResult *result, gpointer user_data)
{
  (void) source;
  (void) user_data;
  Training *t = g_task_get_task_data (G_TASK (result));
  AgcTrainingWindow *self = t->self;
  if (!self)
    return;
  self->training = NULL;
  g_task_propagate_boolean (G_TASK (result), NULL);
  gtk_list_store_clear (self->class_store);
  for (int c = 0; c < t->n_classes; c++)
    gtk_list_store_insert_with_values (self->class_store, NULL, -1, COLUMN_CLASS,
                                       t->class_names[c], COLUMN_IMAGES, t->n_images[c],
                                       COLUMN_UNREADABLE, t->n_unreadable[c], -1);
  g_free (self->tag_problem);
  self->tag_problem = g_steal_pointer (&t->tag_problem);
  self->n_photos = t->n_photos;
  self->has_pairs = t->has_pairs;
  show_folder (self);
  update_buttons (self);
  g_autofree char *problem = folder_problem (self);
  g_signal_emit (self, signals[SIGNAL_SCANNED], 0, problem);
}

static void
default_adapter_path (AgcTrainingWindow *self)
{
  if (self->adapter_chosen || !self->folder)
    return;
  g_autofree char *dir = agc_ui_adapters_dir ();
  g_autofree char *base = g_path_get_basename (self->folder);
  g_autofree char *file = g_strconcat (base, ".safetensors", NULL);
  g_autofree char *path = g_build_filename (dir, file, NULL);
  gtk_entry_set_text (GTK_ENTRY (self->adapter_entry), path);
  self->adapter_chosen = FALSE; // set_text marked it chosen
}

void
agc_training_window_set_folder (AgcTrainingWindow *self, const char *data_dir)
{
  g_return_if_fail (AGC_IS_TRAINING_WINDOW (self) && data_dir && !self->training);
  g_free (self->folder);
  self->folder = g_strdup (data_dir);
  g_autofree char *current = gtk_file_chooser_get_filename (
    GTK_FILE_CHOOSER (self->folder_button));
  if (g_strcmp0 (current, data_dir) != 0)
    gtk_file_chooser_set_filename (GTK_FILE_CHOOSER (self->folder_button), data_dir);
  default_adapter_path (self);
  Training *t = training_new (self);
  t->data_dir = g_strdup (data_dir);
  self->training = t;
  set_status (self, _("Looking at the folder…"));
  update_buttons (self);
  GTask *task = g_task_new (NULL, t->cancellable, scan_done, NULL);
  g_task_set_task_data (task, t, (GDestroyNotify) training_free);
  g_task_run_in_thread (task, scan_thread);
  g_object_unref (task);
}

const char *
agc_training_window_get_folder (AgcTrainingWindow *self)
{
  return self->folder;
}

/* ---- training on a worker thread ------------------------------------------- */

typedef struct
{
  Training *t;
  AgcTrainProgress progress;
} Report;

/* A resumed run keeps the plotted epochs up to its checkpoint's; a fresh
 * one starts an empty plot. */
static void
trim_plot (AgcTrainingWindow *self, const AgcTrainProgress *p)
{
  if (!self->plot_pending || p->stage == AGC_TRAIN_STAGE_EMBED)
    return;
  int keep = p->stage == AGC_TRAIN_STAGE_RESUME ? p->done : 0;
  guint n = 0;
  while (n < self->points->len && g_array_index (self->points, EpochPoint, n).epoch <= keep)
    n++;
  g_array_set_size (self->points, n);
  self->plot_pending = FALSE;
}

static void
show_epoch (AgcTrainingWindow *self, const AgcTrainProgress *p)
{
  EpochPoint point = { p->done, p->train_loss, p->val_loss, p->val_accuracy };
  g_array_append_val (self->points, point);
  self->planned_epochs = p->total;
  g_autofree char *text
    = isnan (p->val_accuracy)
        /* Translators: training progress; the run may stop before the last epoch */
        ? g_strdup_printf (_("Epoch %d of at most %d: loss %.3f"), p->done, p->total,
                           p->train_loss)
        : g_strdup_printf (_("Epoch %d of at most %d: loss %.3f, validation accuracy %.1f %%"),
                           p->done, p->total, p->train_loss, 100.0 * p->val_accuracy);
  agc_ui_progress_show (self->progress, p->done, p->total, text);
  gtk_widget_queue_draw (self->plot);
  g_signal_emit (self, signals[SIGNAL_EPOCH], 0, p->done, p->total, p->train_loss, p->val_loss,
                 p->val_accuracy);
}

/* "about N min left" from the pace of the run's steps so far (g_free); NULL
 * before there is a pace. */
static char *
time_left (AgcTrainingWindow *self, gint64 step, gint64 total_steps)
{
  gint64 now = g_get_monotonic_time ();
  if (self->steps_started_at == 0)
    {
      self->steps_started_at = now, self->steps_at_start = step;
      return NULL;
    }
  if (step <= self->steps_at_start)
    return NULL;
  double per_step = (double) (now - self->steps_started_at) / G_USEC_PER_SEC
                    / (double) (step - self->steps_at_start);
  double left = per_step * (double) (total_steps - step);
  if (left < 90)
    /* Translators: estimated time to the end of training */
    return g_strdup_printf (_("about %d s left"), (int) ceil (left));
  if (left < 90 * 60)
    /* Translators: estimated time to the end of training */
    return g_strdup_printf (_("about %d min left"), (int) ceil (left / 60));
  /* Translators: estimated time to the end of training */
  return g_strdup_printf (_("about %.1f h left"), left / 3600);
}

/* DINO: step `done` of `total` of the running epoch, with the loss so far
 * and the time left at the pace so far. */
static void
show_step (AgcTrainingWindow *self, const AgcTrainProgress *p)
{
  int epochs = MAX (self->planned_epochs, 1), epoch = MIN (self->current_epoch, epochs);
  gint64 step = (gint64) (epoch - 1) * p->total + p->done, all = (gint64) epochs * p->total;
  g_autofree char *left = time_left (self, step, all);
  /* Translators: DINO's progress within an epoch; the loss is the epoch's mean so far */
  g_autofree char *text = g_strdup_printf (_("Epoch %d of %d, step %d of %d: loss %.3f"),
                                           epoch, epochs, p->done, p->total, p->train_loss);
  g_autofree char *shown = left ? g_strdup_printf ("%s; %s", text, left) : g_strdup (text);
  agc_ui_progress_show (self->progress, (int) MIN (step, G_MAXINT), (int) MIN (all, G_MAXINT),
                        shown);
}

static gboolean
show_report (gpointer data)
{
  Report *r = data;
  Training *t = r->t;
  AgcTrainingWindow *self = t->self;
  if (self && self->training == t)
    {
      const AgcTrainProgress *p = &r->progress;
      trim_plot (self, p);
      if (p->stage == AGC_TRAIN_STAGE_EPOCH)
        {
          self->current_epoch = p->done + 1;
          show_epoch (self, p);
        }
      else if (p->stage == AGC_TRAIN_STAGE_STEP)
        show_step (self, p);
      else if (p->stage == AGC_TRAIN_STAGE_RESUME)
        {
          self->current_epoch = p->done + 1;
          /* Translators: a cancelled or interrupted run is continued */
          g_autofree char *text = g_strdup_printf (_("Continuing after epoch %d"), p->done);
          set_status (self, text);
        }
      else
        {
          /* Translators: images encoded before training, of all */
          g_autofree char *text = g_strdup_printf (_("Encoding images: %d of %d"), p->done,
                                                   p->total);
          agc_ui_progress_show (self->progress, p->done, p->total, text);
        }
    }
  if (r->progress.stage == AGC_TRAIN_STAGE_EPOCH)
    {
      g_mutex_lock (&t->lock);
      t->epochs_shown++;
      g_cond_signal (&t->shown);
      g_mutex_unlock (&t->lock);
    }
  g_free (r);
  return G_SOURCE_REMOVE;
}

/* On the worker thread: hands the progress to the window; after an epoch,
 * waits until the window has shown it (or Cancel was pressed). */
static void
on_progress (const AgcTrainProgress *progress, gpointer user_data)
{
  Training *t = user_data;
  Report *r = g_new (Report, 1);
  r->t = t;
  r->progress = *progress;
  gboolean epoch = progress->stage == AGC_TRAIN_STAGE_EPOCH;
  g_mutex_lock (&t->lock);
  int wanted = epoch ? ++t->epochs_sent : 0;
  g_mutex_unlock (&t->lock);
  g_idle_add (show_report, r);
  if (!epoch)
    return;
  g_mutex_lock (&t->lock);
  while (t->epochs_shown < wanted && !g_cancellable_is_cancelled (t->cancellable))
    g_cond_wait_until (&t->shown, &t->lock, g_get_monotonic_time () + G_TIME_SPAN_SECOND / 10);
  g_mutex_unlock (&t->lock);
}

static void
train_thread (GTask *task, gpointer source, gpointer data, GCancellable *cancellable)
{
  (void) source;
  Training *t = data;
  GError *error = NULL;
  AgcModel *model = agc_model_load (t->model_dir, &error);
  t->params.progress = on_progress;
  t->params.user_data = t;
  g_autofree char *dir = g_path_get_dirname (t->out_path);
  g_mkdir_with_parents (dir, 0700);
  gboolean ok = model
                && agc_train (model, t->data_dir, t->out_path, &t->params, &t->result,
                              cancellable, &error);
  // the summary needs tags: a method on untagged photos or pairs has none
  if (ok && agc_train_method_data (t->params.method) == AGC_TRAIN_DATA_TAGGED)
    {
      // the summary: the new adapter on every image of the folder
      t->evaluation = agc_evaluation_open (t->data_dir, NULL, NULL, &error);
      ok = t->evaluation
           && agc_evaluate (t->evaluation, model, t->out_path, NULL, NULL, NULL, cancellable,
                            &error);
    }
  agc_model_free (model);
  if (ok)
    g_task_return_boolean (task, TRUE);
  else
    g_task_return_error (task, error);
}

static void
clear_summary (AgcTrainingWindow *self)
{
  GList *children = gtk_container_get_children (GTK_CONTAINER (self->summary));
  for (GList *l = children; l; l = l->next)
    gtk_widget_destroy (l->data);
  g_list_free (children);
}

static GtkWidget *
cell (const char *text, gboolean bold)
{
  GtkWidget *label = gtk_label_new (NULL);
  g_autofree char *markup = g_markup_printf_escaped (bold ? "<b>%s</b>" : "%s", text);
  gtk_label_set_markup (GTK_LABEL (label), markup);
  gtk_label_set_xalign (GTK_LABEL (label), bold ? 0.0f : 1.0f);
  gtk_label_set_selectable (GTK_LABEL (label), TRUE);
  gtk_widget_set_can_focus (label, FALSE);
  return label;
}

/* Per-class accuracy and the confusion matrix (rows: tags; columns: top label). */
static void
show_summary (AgcTrainingWindow *self)
{
  clear_summary (self);
  const AgcEvaluation *e = self->evaluation;
  const AgcLabelSet *labels = agc_evaluation_labels (e);
  int rows = agc_label_set_n_classes (labels), columns = agc_evaluation_n_predicted (e);
  GtkGrid *grid = GTK_GRID (self->summary);
  g_autofree char *heading = g_strdup_printf (
    /* Translators: the summary after training; the adapter judged on every image of the folder */
    _("Right on %d of %d images of the folder; validation accuracy %.1f %% "
      "(zero-shot %.1f %%), epoch %d of %d kept"),
    agc_evaluation_n_correct (e), agc_evaluation_n_images (e), 100.0 * self->result.val_accuracy,
    100.0 * self->result.zero_shot_val_accuracy, self->result.best_epoch, self->result.epochs);
  GtkWidget *top = gtk_label_new (heading);
  gtk_label_set_xalign (GTK_LABEL (top), 0.0f);
  gtk_label_set_line_wrap (GTK_LABEL (top), TRUE);
  gtk_label_set_max_width_chars (GTK_LABEL (top), WRAPPED_CHARS);
  gtk_grid_attach (grid, top, 0, 0, columns + 2, 1);
  gtk_grid_attach (grid, cell (_("Tag \\ labelled as"), TRUE), 0, 1, 1, 1);
  for (int p = 0; p < columns; p++)
    gtk_grid_attach (grid, cell (agc_evaluation_predicted_name (e, p), TRUE), p + 1, 1, 1, 1);
  gtk_grid_attach (grid, cell (_("Accuracy"), TRUE), columns + 1, 1, 1, 1);
  for (int r = 0; r < rows; r++)
    {
      gtk_grid_attach (grid, cell (agc_label_set_class_display_name (labels, r), TRUE), 0, r + 2,
                       1, 1);
      for (int p = 0; p < columns; p++)
        {
          g_autofree char *n = g_strdup_printf ("%d", agc_evaluation_count (e, r, p));
          gtk_grid_attach (grid, cell (n, FALSE), p + 1, r + 2, 1, 1);
        }
      int n = agc_evaluation_class_n_images (e, r);
      g_autofree char *accuracy = n ? g_strdup_printf ("%.0f %%", 100.0
                                                                     * agc_evaluation_count (e, r, r)
                                                                     / n)
                                    : g_strdup ("–");
      gtk_grid_attach (grid, cell (accuracy, FALSE), columns + 1, r + 2, 1, 1);
    }
  gtk_widget_show_all (self->summary);
}

static void
train_done (GObject *source, GAsyncResult *result, gpointer user_data)
{
  (void) source;
  (void) user_data;
  Training *t = g_task_get_task_data (G_TASK (result));
  AgcTrainingWindow *self = t->self;
  GError *error = NULL;
  gboolean ok = g_task_propagate_boolean (G_TASK (result), &error);
  if (self)
    {
      self->training = NULL;
      if (ok)
        {
          self->result = t->result;
          self->has_result = TRUE;
          agc_evaluation_free (self->evaluation);
          self->evaluation = g_steal_pointer (&t->evaluation); // NULL without tags
          agc_ui_add_recent_adapter (t->out_path);
          if (self->evaluation)
            show_summary (self);
          /* Translators: the adapter file written */
          g_autofree char *text = g_strdup_printf (_("Adapter written: %s"), t->out_path);
          set_status (self, text);
        }
      else if (g_error_matches (error, AGC_ERROR, AGC_ERROR_CANCELLED)
               || g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
        set_status (self, _("Cancelled: no adapter was written; \"Train\" continues from the "
                            "last checkpoint"));
      else
        set_status (self, error->message);
      update_buttons (self);
      g_signal_emit (self, signals[SIGNAL_FINISHED], 0, error ? error->message : NULL);
    }
  g_clear_error (&error);
}

void
agc_training_window_start (AgcTrainingWindow *self)
{
  g_return_if_fail (AGC_IS_TRAINING_WINDOW (self) && !self->training);
  g_autofree char *model = agc_model_chooser_get_path (AGC_MODEL_CHOOSER (self->models));
  g_autofree char *out = agc_training_window_get_adapter_path (self);
  if (!model || !self->folder || !*out)
    {
      set_status (self, _("Choose a model, a folder of tagged photos and an adapter file."));
      return;
    }
  agc_ui_add_recent_model_folder (model);
  Training *t = training_new (self);
  t->model_dir = g_steal_pointer (&model);
  t->data_dir = g_strdup (self->folder);
  t->out_path = g_steal_pointer (&out);
  t->params = agc_training_window_get_params (self);
  t->base_adapter = g_strdup (t->params.base_adapter); // the entry's text may change
  t->params.base_adapter = t->base_adapter;
  self->training = t;
  self->plot_pending = TRUE;
  self->planned_epochs = t->params.max_epochs;
  self->current_epoch = 1;
  self->steps_started_at = 0;
  self->has_result = FALSE;
  clear_summary (self);
  gtk_widget_queue_draw (self->plot);
  agc_ui_progress_show (self->progress, 0, 0, _("Loading the model…"));
  set_status (self, _("Training…"));
  update_buttons (self);
  GTask *task = g_task_new (NULL, t->cancellable, train_done, NULL);
  g_task_set_task_data (task, t, (GDestroyNotify) training_free);
  g_task_run_in_thread (task, train_thread);
  g_object_unref (task);
}

void
agc_training_window_cancel (AgcTrainingWindow *self)
{
  if (!self->training)
    return;
  g_cancellable_cancel (self->training->cancellable);
  set_status (self, _("Stopping at the next safe point…"));
}

gboolean
agc_training_window_is_busy (AgcTrainingWindow *self)
{
  return self->training != NULL;
}

const AgcTrainResult *
agc_training_window_get_result (AgcTrainingWindow *self)
{
  return self->has_result ? &self->result : NULL;
}

const AgcEvaluation *
agc_training_window_get_evaluation (AgcTrainingWindow *self)
{
  return self->evaluation;
}

/* ---- the plot --------------------------------------------------------------- */

static void
plot_text (GtkWidget *area, cairo_t *cr, double x, double y, const char *text, double align)
{
  PangoLayout *layout = gtk_widget_create_pango_layout (area, text);
  int w, h;
  pango_layout_get_pixel_size (layout, &w, &h);
  cairo_move_to (cr, x - align * w, y - h / 2.0);
  pango_cairo_show_layout (cr, layout);
  g_object_unref (layout);
}

/* Series s of the plot at point p, 0..1 of its axis (NaN: none). */
static double
plotted_value (const EpochPoint *p, int s, double max_loss)
{
  return s == 0 ? p->train_loss / max_loss : s == 1 ? p->val_loss / max_loss : p->val_accuracy;
}

/* Losses (left axis, from 0) and validation accuracy (right axis, 0..1)
 * against the epoch, in logical pixels (crisp at any scale). */
static gboolean
draw_plot (GtkWidget *area, cairo_t *cr, AgcTrainingWindow *self)
{
  double w = gtk_widget_get_allocated_width (area), h = gtk_widget_get_allocated_height (area);
  GtkStyleContext *style = gtk_widget_get_style_context (area);
  GdkRGBA fg;
  gtk_style_context_get_color (style, gtk_style_context_get_state (style), &fg);
  double left = 48, right = 48, bottom = 28;
  static const double colours[3][3] = { { 0.12, 0.47, 0.71 }, { 1.0, 0.5, 0.05 },
                                        { 0.17, 0.63, 0.17 } };
  const char *names[3] = { _("training loss"), _("validation loss"), _("validation accuracy") };
  // The legend's entries wrap onto as many lines as the width needs (narrow
  // windows, long translations); the plot starts below them.
  PangoLayout *legend[3];
  double legend_x[3], legend_y[3], x = left, y = 4, line_height = 0;
  for (int s = 0; s < 3; s++)
    {
      legend[s] = gtk_widget_create_pango_layout (area, names[s]);
      int tw, th;
      pango_layout_get_pixel_size (legend[s], &tw, &th);
      if (x > left && x + 16 + tw > w - 4)
        x = left, y += line_height + 4;
      legend_x[s] = x, legend_y[s] = y;
      line_height = MAX (line_height, th);
      x += 16 + tw + 16;
    }
  double top = y + line_height + 8;
  double pw = w - left - right, ph = h - top - bottom;
  if (pw < 20 || ph < 20)
    {
      for (int s = 0; s < 3; s++)
        g_object_unref (legend[s]);
      return FALSE;
    }
  int n = (int) self->points->len;
  int last = MAX (self->planned_epochs, 1);
  if (n > 0)
    last = MAX (last, g_array_index (self->points, EpochPoint, n - 1).epoch);
  double max_loss = 1e-6;
  for (int i = 0; i < n; i++)
    {
      const EpochPoint *p = &g_array_index (self->points, EpochPoint, i);
      max_loss = MAX (max_loss, p->train_loss);
      if (!isnan (p->val_loss))
        max_loss = MAX (max_loss, p->val_loss);
    }
  gdk_cairo_set_source_rgba (cr, &fg);
  cairo_set_line_width (cr, 1);
  cairo_rectangle (cr, left + 0.5, top + 0.5, pw, ph);
  cairo_stroke (cr);
  g_autofree char *loss_top = g_strdup_printf ("%.2f", max_loss);
  plot_text (area, cr, left - 4, top, loss_top, 1.0);
  plot_text (area, cr, left - 4, top + ph, "0", 1.0);
  plot_text (area, cr, w - right + 4, top, "100 %", 0.0);
  plot_text (area, cr, w - right + 4, top + ph, "0 %", 0.0);
  g_autofree char *epochs = g_strdup_printf (_("epoch %d"), last);
  plot_text (area, cr, left + pw, top + ph + bottom / 2, epochs, 1.0);

  for (int s = 0; s < 3; s++)
    {
      cairo_set_source_rgb (cr, colours[s][0], colours[s][1], colours[s][2]);
      cairo_rectangle (cr, legend_x[s], legend_y[s] + line_height / 2 - 4, 12, 8);
      cairo_fill (cr);
      gdk_cairo_set_source_rgba (cr, &fg);
      cairo_move_to (cr, legend_x[s] + 16, legend_y[s]);
      pango_cairo_show_layout (cr, legend[s]);
      g_object_unref (legend[s]);

      cairo_set_source_rgb (cr, colours[s][0], colours[s][1], colours[s][2]);
      cairo_set_line_width (cr, 2);
      gboolean drawing = FALSE;
      for (int i = 0; i < n; i++)
        {
          const EpochPoint *p = &g_array_index (self->points, EpochPoint, i);
          double v = plotted_value (p, s, max_loss);
          if (isnan (v))
            continue;
          double x = left + pw * p->epoch / last, y = top + ph * (1.0 - CLAMP (v, 0.0, 1.0));
          if (drawing)
            cairo_line_to (cr, x, y);
          else
            cairo_move_to (cr, x, y);
          drawing = TRUE;
        }
      cairo_stroke (cr);
      // a dot at each epoch: a one-epoch run (DINO's often) has no line to show
      for (int i = 0; i < n; i++)
        {
          const EpochPoint *p = &g_array_index (self->points, EpochPoint, i);
          double v = plotted_value (p, s, max_loss);
          if (isnan (v))
            continue;
          cairo_arc (cr, left + pw * p->epoch / last, top + ph * (1.0 - CLAMP (v, 0.0, 1.0)), 3,
                     0, 2 * G_PI);
          cairo_fill (cr);
        }
    }
  return FALSE;
}

/* ---- settings ----------------------------------------------------------- */

AgcTrainParams
agc_training_window_get_params (AgcTrainingWindow *self)
{
  AgcTrainParams p = agc_train_default_params ();
  p.method = chosen_method (self);
  p.weight_decay = agc_train_method_weight_decay (p.method);
  p.max_epochs = gtk_spin_button_get_value_as_int (GTK_SPIN_BUTTON (self->epochs));
  p.patience = gtk_spin_button_get_value_as_int (GTK_SPIN_BUTTON (self->patience));
  p.val_fraction = gtk_spin_button_get_value (GTK_SPIN_BUTTON (self->val_share));
  p.seed = (guint64) gtk_spin_button_get_value (GTK_SPIN_BUTTON (self->seed));
  p.learning_rate = gtk_spin_button_get_value (GTK_SPIN_BUTTON (self->rate));
  p.finetune_blocks = gtk_spin_button_get_value_as_int (GTK_SPIN_BUTTON (self->blocks));
  p.finetune_mix = gtk_spin_button_get_value (GTK_SPIN_BUTTON (self->mix));
  p.dino_local_crops = gtk_spin_button_get_value_as_int (GTK_SPIN_BUTTON (self->local_crops));
  p.dino_out_dim = gtk_spin_button_get_value_as_int (GTK_SPIN_BUTTON (self->out_dim));
  p.dino_accumulate = gtk_spin_button_get_value_as_int (GTK_SPIN_BUTTON (self->accumulate));
  p.dino_crop_size = gtk_spin_button_get_value_as_int (GTK_SPIN_BUTTON (self->crop_size));
  const char *base = gtk_entry_get_text (GTK_ENTRY (self->base_entry));
  p.base_adapter = *base ? base : NULL; // owned by the entry
  // fine-tuning and DINO epochs are long: a checkpoint after each keeps what a stop would lose
  if (p.method == AGC_TRAIN_FINETUNE || p.method == AGC_TRAIN_DINO)
    p.checkpoint_every = 1;
  return p;
}

static gboolean on_rate_output (GtkSpinButton *spin, AgcTrainingWindow *self);

void
agc_training_window_set_params (AgcTrainingWindow *self, const AgcTrainParams *p)
{
  gtk_combo_box_set_active_id (GTK_COMBO_BOX (self->method), agc_train_method_name (p->method));
  gtk_spin_button_set_value (GTK_SPIN_BUTTON (self->epochs), p->max_epochs);
  gtk_spin_button_set_value (GTK_SPIN_BUTTON (self->patience), p->patience);
  gtk_spin_button_set_value (GTK_SPIN_BUTTON (self->val_share), p->val_fraction);
  gtk_spin_button_set_value (GTK_SPIN_BUTTON (self->seed), (double) p->seed);
  gtk_spin_button_set_value (GTK_SPIN_BUTTON (self->rate), p->learning_rate);
  gtk_spin_button_set_value (GTK_SPIN_BUTTON (self->blocks), p->finetune_blocks);
  gtk_spin_button_set_value (GTK_SPIN_BUTTON (self->mix), p->finetune_mix);
  gtk_spin_button_set_value (GTK_SPIN_BUTTON (self->local_crops), p->dino_local_crops);
  gtk_spin_button_set_value (GTK_SPIN_BUTTON (self->out_dim), p->dino_out_dim);
  gtk_spin_button_set_value (GTK_SPIN_BUTTON (self->accumulate), p->dino_accumulate);
  gtk_spin_button_set_value (GTK_SPIN_BUTTON (self->crop_size), p->dino_crop_size);
  gtk_entry_set_text (GTK_ENTRY (self->base_entry), p->base_adapter ? p->base_adapter : "");
  on_rate_output (GTK_SPIN_BUTTON (self->rate), self); // a value left unchanged shows no text yet
}

gboolean
agc_training_window_set_model (AgcTrainingWindow *self, const char *model_dir)
{
  gboolean ok = agc_model_chooser_select (AGC_MODEL_CHOOSER (self->models), model_dir);
  update_buttons (self);
  return ok;
}

void
agc_training_window_set_adapter_path (AgcTrainingWindow *self, const char *path)
{
  gtk_entry_set_text (GTK_ENTRY (self->adapter_entry), path);
}

char *
agc_training_window_get_adapter_path (AgcTrainingWindow *self)
{
  return g_strdup (gtk_entry_get_text (GTK_ENTRY (self->adapter_entry)));
}

/* ---- construction ---------------------------------------------------------- */

static char *
plain_text (const char *mnemonic)
{
  char *plain = g_strdup (mnemonic), *w = plain;
  for (const char *r = plain; *r; r++)
    if (*r != '_')
      *w++ = *r;
  *w = '\0';
  return g_strchomp (g_strdelimit (plain, ":", ' '));
}

static GtkWidget *
button (const char *mnemonic, const char *tooltip)
{
  GtkWidget *b = gtk_button_new_with_mnemonic (mnemonic);
  gtk_widget_set_tooltip_text (b, tooltip);
  g_autofree char *plain = plain_text (mnemonic);
  atk_object_set_name (gtk_widget_get_accessible (b), plain);
  return b;
}

/* The control with its mnemonic label (returned) at (column, row), named
 * for screen readers by the label's text. */
static GtkWidget *
attach (GtkGrid *grid, int column, int row, const char *mnemonic, GtkWidget *control,
        const char *tooltip)
{
  GtkWidget *label = gtk_label_new_with_mnemonic (mnemonic);
  gtk_label_set_xalign (GTK_LABEL (label), 0.0f);
  gtk_label_set_mnemonic_widget (GTK_LABEL (label), control);
  g_autofree char *plain = plain_text (mnemonic);
  atk_object_set_name (gtk_widget_get_accessible (control), plain);
  gtk_widget_set_tooltip_text (control, tooltip);
  gtk_widget_set_hexpand (control, TRUE);
  gtk_grid_attach (grid, label, column, row, 1, 1);
  gtk_grid_attach (grid, control, column + 1, row, 1, 1);
  return label;
}

static GtkWidget *
spin (double low, double high, double step, int digits)
{
  GtkWidget *s = gtk_spin_button_new_with_range (low, high, step);
  gtk_spin_button_set_digits (GTK_SPIN_BUTTON (s), digits);
  return s;
}

static void
on_folder_set (GtkFileChooserButton *chooser, AgcTrainingWindow *self)
{
  g_autofree char *dir = gtk_file_chooser_get_filename (GTK_FILE_CHOOSER (chooser));
  if (dir && !self->training && g_strcmp0 (dir, self->folder) != 0)
    agc_training_window_set_folder (self, dir);
}

static void
on_adapter_edited (GtkEditable *editable, AgcTrainingWindow *self)
{
  (void) editable;
  self->adapter_chosen = TRUE;
}

static void
on_browse (GtkButton *b, AgcTrainingWindow *self)
{
  (void) b;
  GtkFileChooserNative *chooser = gtk_file_chooser_native_new (
    _("Write the adapter to"), GTK_WINDOW (self), GTK_FILE_CHOOSER_ACTION_SAVE, _("_Save"),
    _("_Cancel"));
  gtk_file_chooser_set_do_overwrite_confirmation (GTK_FILE_CHOOSER (chooser), TRUE);
  g_autofree char *current = agc_training_window_get_adapter_path (self);
  if (*current)
    gtk_file_chooser_set_filename (GTK_FILE_CHOOSER (chooser), current);
  if (gtk_native_dialog_run (GTK_NATIVE_DIALOG (chooser)) == GTK_RESPONSE_ACCEPT)
    {
      g_autofree char *path = gtk_file_chooser_get_filename (GTK_FILE_CHOOSER (chooser));
      agc_training_window_set_adapter_path (self, path);
    }
  g_object_unref (chooser);
}

static void
on_changed (GtkWidget *widget, AgcTrainingWindow *self)
{
  (void) widget;
  update_buttons (self);
}

static void
on_browse_base (GtkButton *b, AgcTrainingWindow *self)
{
  (void) b;
  GtkFileChooserNative *chooser = gtk_file_chooser_native_new (
    _("Train on top of the adapter"), GTK_WINDOW (self), GTK_FILE_CHOOSER_ACTION_OPEN,
    _("_Open"), _("_Cancel"));
  GtkFileFilter *filter = gtk_file_filter_new ();
  gtk_file_filter_set_name (filter, _("Adapters (*.safetensors)"));
  gtk_file_filter_add_pattern (filter, "*.safetensors");
  gtk_file_chooser_add_filter (GTK_FILE_CHOOSER (chooser), filter);
  const char *current = gtk_entry_get_text (GTK_ENTRY (self->base_entry));
  if (*current)
    gtk_file_chooser_set_filename (GTK_FILE_CHOOSER (chooser), current);
  if (gtk_native_dialog_run (GTK_NATIVE_DIALOG (chooser)) == GTK_RESPONSE_ACCEPT)
    {
      g_autofree char *path = gtk_file_chooser_get_filename (GTK_FILE_CHOOSER (chooser));
      gtk_entry_set_text (GTK_ENTRY (self->base_entry), path);
    }
  g_object_unref (chooser);
}

/* The learning rate 0 stands for the method's own: the field is left empty
 * with that value as its placeholder, so that nobody reads "0.00000" as no
 * learning at all. */
static gboolean
on_rate_output (GtkSpinButton *spin, AgcTrainingWindow *self)
{
  if (gtk_spin_button_get_value (spin) != 0.0)
    return FALSE;
  AgcTrainMethod method = chosen_method (self);
  g_autofree char *text
    /* Translators: the learning rate field when left at the method's default */
    = g_strdup_printf (_("default (%g)"), agc_train_method_learning_rate (method));
  gtk_entry_set_placeholder_text (GTK_ENTRY (spin), text);
  gtk_entry_set_text (GTK_ENTRY (spin), "");
  return TRUE;
}

/* An empty field (or text that is not a number) means 0: the method's own. */
static int
on_rate_input (GtkSpinButton *spin, double *value, gpointer data)
{
  (void) data;
  const char *text = gtk_entry_get_text (GTK_ENTRY (spin));
  char *end = NULL;
  double typed = g_strtod (text, &end);
  if (end != text && *end == '\0')
    return FALSE; // a number: the spin button's own parsing
  (void) typed;
  *value = 0.0;
  return TRUE;
}

static void
on_method_changed (GtkWidget *widget, AgcTrainingWindow *self)
{
  if (self->rate == NULL) // still being built
    return;
  gtk_spin_button_update (GTK_SPIN_BUTTON (self->rate));
  on_rate_output (GTK_SPIN_BUTTON (self->rate), self);
  gboolean tagged = agc_train_method_data (chosen_method (self)) == AGC_TRAIN_DATA_TAGGED;
  const char *folder = tagged ? _("Tagged _folder:") : _("Photo _folder:");
  gtk_label_set_text_with_mnemonic (GTK_LABEL (self->folder_label), folder);
  g_autofree char *plain = plain_text (folder);
  atk_object_set_name (gtk_widget_get_accessible (self->folder_button), plain);
  show_folder (self);
  on_changed (widget, self);
}

static gboolean
on_key_press (GtkWidget *widget, GdkEventKey *event, gpointer data)
{
  (void) data;
  if (event->keyval != GDK_KEY_Escape || AGC_TRAINING_WINDOW (widget)->training)
    return GDK_EVENT_PROPAGATE;
  gtk_window_close (GTK_WINDOW (widget));
  return GDK_EVENT_STOP;
}

static GtkWidget *
class_table (AgcTrainingWindow *self)
{
  self->class_store = gtk_list_store_new (N_COLUMNS, G_TYPE_STRING, G_TYPE_INT, G_TYPE_INT);
  self->classes = gtk_tree_view_new_with_model (GTK_TREE_MODEL (self->class_store));
  const char *titles[] = { _("Class"), _("Images"), _("Unreadable files") };
  for (int c = 0; c < N_COLUMNS; c++)
    {
      GtkCellRenderer *renderer = gtk_cell_renderer_text_new ();
      if (c > 0)
        g_object_set (renderer, "xalign", 1.0f, NULL);
      gtk_tree_view_insert_column_with_attributes (GTK_TREE_VIEW (self->classes), -1, titles[c],
                                                   renderer, "text", c, NULL);
    }
  GtkWidget *scroll = gtk_scrolled_window_new (NULL, NULL);
  gtk_scrolled_window_set_policy (GTK_SCROLLED_WINDOW (scroll), GTK_POLICY_NEVER,
                                  GTK_POLICY_AUTOMATIC);
  gtk_widget_set_size_request (scroll, -1, 88);
  gtk_container_add (GTK_CONTAINER (scroll), self->classes);
  return scroll;
}

static void
agc_training_window_init (AgcTrainingWindow *self)
{
  gtk_window_set_title (GTK_WINDOW (self), _("AgriCLIP: Train on Tagged Folders"));
  gtk_window_set_default_size (GTK_WINDOW (self), 1040, 700);
  agc_ui_remember_window_size (GTK_WINDOW (self), "training-window");
  g_signal_connect (self, "key-press-event", G_CALLBACK (on_key_press), NULL);
  self->points = g_array_new (FALSE, FALSE, sizeof (EpochPoint));

  // two columns: what to train on the left, how it goes on the right
  GtkWidget *window_box = gtk_box_new (GTK_ORIENTATION_VERTICAL, 8);
  g_object_set (window_box, "margin", 12, NULL);
  GtkWidget *columns = gtk_box_new (GTK_ORIENTATION_HORIZONTAL, 18);
  gtk_box_pack_start (GTK_BOX (window_box), columns, TRUE, TRUE, 0);
  GtkWidget *outer = gtk_box_new (GTK_ORIENTATION_VERTICAL, 8);
  GtkWidget *watch = gtk_box_new (GTK_ORIENTATION_VERTICAL, 8);
  gtk_box_pack_start (GTK_BOX (columns), outer, TRUE, TRUE, 0);
  gtk_box_pack_start (GTK_BOX (columns), watch, TRUE, TRUE, 0);
  self->models = agc_model_chooser_new ();
  gtk_widget_set_size_request (self->models, -1, 120);
  g_signal_connect (self->models, "changed", G_CALLBACK (on_changed), self);
  gtk_box_pack_start (GTK_BOX (outer), self->models, TRUE, TRUE, 0);

  GtkGrid *data = GTK_GRID (gtk_grid_new ());
  gtk_grid_set_row_spacing (data, 6);
  gtk_grid_set_column_spacing (data, 12);
  self->folder_button = gtk_file_chooser_button_new (_("Folder of tagged photos"),
                                                     GTK_FILE_CHOOSER_ACTION_SELECT_FOLDER);
  g_signal_connect (self->folder_button, "file-set", G_CALLBACK (on_folder_set), self);
  self->folder_label = attach (
    data, 0, 0, _("Tagged _folder:"), self->folder_button,
    _("A folder with one sub-folder of photos per class (the folder name is the class); "
      "DINO takes any folder of photos, tagged or not"));
  GtkWidget *classes = class_table (self);
  GtkWidget *classes_label = gtk_label_new_with_mnemonic (_("_Classes:"));
  gtk_label_set_xalign (GTK_LABEL (classes_label), 0.0f);
  gtk_widget_set_valign (classes_label, GTK_ALIGN_START);
  gtk_label_set_mnemonic_widget (GTK_LABEL (classes_label), self->classes);
  atk_object_set_name (gtk_widget_get_accessible (self->classes), _("Classes"));
  gtk_grid_attach (data, classes_label, 0, 1, 1, 1);
  gtk_grid_attach (data, classes, 1, 1, 1, 1);
  GtkWidget *adapter_box = gtk_box_new (GTK_ORIENTATION_HORIZONTAL, 6);
  self->adapter_entry = gtk_entry_new ();
  g_signal_connect (self->adapter_entry, "changed", G_CALLBACK (on_adapter_edited), self);
  self->browse = button (_("Bro_wse…"), _("Choose where to write the adapter"));
  g_signal_connect (self->browse, "clicked", G_CALLBACK (on_browse), self);
  gtk_box_pack_start (GTK_BOX (adapter_box), self->adapter_entry, TRUE, TRUE, 0);
  gtk_container_add (GTK_CONTAINER (adapter_box), self->browse);
  GtkWidget *adapter_label = gtk_label_new_with_mnemonic (_("Ada_pter file:"));
  gtk_label_set_xalign (GTK_LABEL (adapter_label), 0.0f);
  gtk_label_set_mnemonic_widget (GTK_LABEL (adapter_label), self->adapter_entry);
  atk_object_set_name (gtk_widget_get_accessible (self->adapter_entry), _("Adapter file"));
  gtk_grid_attach (data, adapter_label, 0, 2, 1, 1);
  gtk_grid_attach (data, adapter_box, 1, 2, 1, 1);
  // stacking: e.g. the aligner trained on top of a DINO adapter
  GtkWidget *base_box = gtk_box_new (GTK_ORIENTATION_HORIZONTAL, 6);
  self->base_entry = gtk_entry_new ();
  /* Translators: the base adapter field left empty: train on the model itself */
  gtk_entry_set_placeholder_text (GTK_ENTRY (self->base_entry), _("none: the model as it is"));
  g_signal_connect (self->base_entry, "changed", G_CALLBACK (on_changed), self);
  self->base_browse = button (_("B_rowse…"), _("Choose the adapter to train on top of"));
  g_signal_connect (self->base_browse, "clicked", G_CALLBACK (on_browse_base), self);
  gtk_box_pack_start (GTK_BOX (base_box), self->base_entry, TRUE, TRUE, 0);
  gtk_container_add (GTK_CONTAINER (base_box), self->base_browse);
  gtk_widget_set_tooltip_text (
    self->base_entry,
    _("An adapter applied to the model before training (for example DINO's, then the "
      "aligner on top of it); the new adapter holds both"));
  GtkWidget *base_label = gtk_label_new_with_mnemonic (_("_Base adapter:"));
  gtk_label_set_xalign (GTK_LABEL (base_label), 0.0f);
  gtk_label_set_mnemonic_widget (GTK_LABEL (base_label), self->base_entry);
  atk_object_set_name (gtk_widget_get_accessible (self->base_entry), _("Base adapter"));
  gtk_grid_attach (data, base_label, 0, 3, 1, 1);
  gtk_grid_attach (data, base_box, 1, 3, 1, 1);
  gtk_container_add (GTK_CONTAINER (outer), GTK_WIDGET (data));

  GtkGrid *options = GTK_GRID (gtk_grid_new ());
  gtk_grid_set_row_spacing (options, 6);
  gtk_grid_set_column_spacing (options, 12);
  self->method = gtk_combo_box_text_new ();
  // the library's methods, each under its name as the id
  int n_methods;
  const AgcTrainMethod *methods = agc_train_methods (&n_methods);
  for (int m = 0; m < n_methods; m++)
    {
      const char *shown = agc_train_method_display_name (methods[m]);
      gtk_combo_box_text_append (GTK_COMBO_BOX_TEXT (self->method),
                                 agc_train_method_name (methods[m]),
                                 shown ? _(shown) : agc_train_method_name (methods[m]));
    }
  // A display name is a sentence (DINO's some 90 characters, longer in
  // translations): wrapped, it leaves the window narrow enough for a
  // 1280-pixel screen, in the chooser and its list alike.
  GList *cells = gtk_cell_layout_get_cells (GTK_CELL_LAYOUT (self->method));
  for (GList *c = cells; c; c = c->next)
    g_object_set (c->data, "wrap-mode", PANGO_WRAP_WORD, "wrap-width", 300, "max-width-chars", 56,
                  NULL);
  g_list_free (cells);
  g_signal_connect (self->method, "changed", G_CALLBACK (on_method_changed), self);
  self->epochs = spin (0, 10000, 1, 0);
  self->patience = spin (1, 10000, 1, 0);
  self->val_share = spin (0.0, 0.9, 0.05, 2);
  self->seed = spin (0, G_MAXINT, 1, 0);
  self->rate = spin (0.0, 10.0, 0.001, 5);
  gtk_entry_set_width_chars (GTK_ENTRY (self->rate), 16); // "default (0.0005)" whole
  g_signal_connect (self->rate, "output", G_CALLBACK (on_rate_output), self);
  g_signal_connect (self->rate, "input", G_CALLBACK (on_rate_input), NULL);
  self->blocks = spin (1, 64, 1, 0);
  self->mix = spin (0.0, 1.0, 0.05, 2);
  attach (options, 0, 0, _("Met_hod:"), self->method, _("What to train"));
  // across the settings' columns: the widest control does not widen one column
  gtk_container_child_set (GTK_CONTAINER (options), self->method, "width", 3, NULL);
  attach (options, 0, 1, _("_Epochs (at most):"), self->epochs,
          _("Training stops earlier when the validation loss stops improving"));
  attach (options, 2, 1, _("Pat_ience:"), self->patience,
          _("Epochs without a lower validation loss before stopping"));
  attach (options, 0, 2, _("_Validation share:"), self->val_share,
          _("Share of each class held out to judge the epochs"));
  attach (options, 2, 2, _("_Seed:"), self->seed,
          _("Seed of the validation split and batch order: the same seed gives the same "
            "adapter"));
  attach (options, 0, 3, _("_Learning rate:"), self->rate, _("AdamW's learning rate (0: the method's own default)"));
  self->finetune_labels[0] = attach (options, 2, 3, _("Bloc_ks:"), self->blocks,
          _("Finetune: how many of the last image blocks to train"));
  self->finetune_labels[1] = attach (options, 0, 4, _("Mi_x:"), self->mix,
          _("Finetune: share of the trained weights in the adapter, the rest the original "
            "ones (1: trained only)"));

  // DINO's own settings, shown only for DINO
  self->local_crops = spin (0, 16, 1, 0);
  self->out_dim = spin (1, 65536, 256, 0);
  self->accumulate = spin (1, 1024, 1, 0);
  self->crop_size = spin (0, 1024, 16, 0); // 0: the model's input size
  self->dino_labels[0] = attach (options, 0, 5, _("Loc_al crops:"), self->local_crops,
          _("DINO: small crops per photo besides the two large ones (the reference: 6)"));
  self->dino_labels[1] = attach (options, 2, 5, _("O_utputs:"), self->out_dim,
          _("DINO: outputs of the projection head (the reference: 65536)"));
  self->dino_labels[2] = attach (options, 0, 6, _("Accu_mulate:"), self->accumulate,
          _("DINO: batches whose gradients add up to one step, so that little memory does "
            "the work of a large batch"));
  self->dino_labels[3] = attach (options, 2, 6, _("Crop si_ze:"), self->crop_size,
          _("DINO: side of the large crops in pixels (the small ones 96/224 of it); 0: the "
            "model's input size"));
  gtk_container_add (GTK_CONTAINER (outer), GTK_WIDGET (options));

  GtkWidget *run_box = gtk_box_new (GTK_ORIENTATION_HORIZONTAL, 6);
  self->train_button = button (_("_Train"), _("Train and write the adapter; a cancelled run "
                                              "continues from its checkpoint"));
  g_signal_connect_swapped (self->train_button, "clicked",
                            G_CALLBACK (agc_training_window_start), self);
  self->cancel_button = button (_("Ca_ncel"), _("Stop at the next safe point, keeping the "
                                                "checkpoint"));
  g_signal_connect_swapped (self->cancel_button, "clicked",
                            G_CALLBACK (agc_training_window_cancel), self);
  self->progress = agc_ui_progress_new ();
  gtk_container_add (GTK_CONTAINER (run_box), self->train_button);
  gtk_container_add (GTK_CONTAINER (run_box), self->cancel_button);
  gtk_box_pack_start (GTK_BOX (run_box), self->progress, TRUE, TRUE, 0);
  gtk_container_add (GTK_CONTAINER (watch), run_box);
  self->status = gtk_label_new (NULL);
  gtk_label_set_xalign (GTK_LABEL (self->status), 0.0f);
  gtk_label_set_line_wrap (GTK_LABEL (self->status), TRUE);
  gtk_label_set_max_width_chars (GTK_LABEL (self->status), WRAPPED_CHARS);
  gtk_label_set_selectable (GTK_LABEL (self->status), TRUE);
  gtk_widget_set_can_focus (self->status, FALSE);
  gtk_container_add (GTK_CONTAINER (watch), self->status);

  self->plot = gtk_drawing_area_new ();
  gtk_widget_set_size_request (self->plot, 360, 180);
  g_signal_connect (self->plot, "draw", G_CALLBACK (draw_plot), self);
  atk_object_set_name (gtk_widget_get_accessible (self->plot),
                       _("Plot of the losses and the validation accuracy by epoch"));
  gtk_box_pack_start (GTK_BOX (watch), self->plot, TRUE, TRUE, 0);
  self->summary = gtk_grid_new ();
  gtk_grid_set_column_spacing (GTK_GRID (self->summary), 12);
  gtk_grid_set_row_spacing (GTK_GRID (self->summary), 2);
  atk_object_set_name (gtk_widget_get_accessible (self->summary), _("Summary"));
  gtk_container_add (GTK_CONTAINER (watch), self->summary);

  GtkWidget *actions = gtk_button_box_new (GTK_ORIENTATION_HORIZONTAL);
  gtk_button_box_set_layout (GTK_BUTTON_BOX (actions), GTK_BUTTONBOX_END);
  GtkWidget *close = button (_("Cl_ose"), _("Close this window"));
  g_signal_connect_swapped (close, "clicked", G_CALLBACK (gtk_window_close), self);
  gtk_container_add (GTK_CONTAINER (actions), close);
  gtk_container_add (GTK_CONTAINER (window_box), actions);
  gtk_container_add (GTK_CONTAINER (self), window_box);

  AgcTrainParams defaults = agc_train_default_params ();
  agc_training_window_set_params (self, &defaults);
  gtk_widget_show_all (window_box);
  GtkWidget *dino[] = { self->local_crops, self->out_dim, self->accumulate, self->crop_size };
  for (int i = 0; i < 4; i++) // these and fine-tuning's shown by update_buttons only
    {
      gtk_widget_set_no_show_all (dino[i], TRUE);
      gtk_widget_set_no_show_all (self->dino_labels[i], TRUE);
    }
  GtkWidget *finetuning[] = { self->blocks, self->mix };
  for (int i = 0; i < 2; i++)
    {
      gtk_widget_set_no_show_all (finetuning[i], TRUE);
      gtk_widget_set_no_show_all (self->finetune_labels[i], TRUE);
    }
  update_buttons (self);
}

static void
agc_training_window_dispose (GObject *object)
{
  AgcTrainingWindow *self = AGC_TRAINING_WINDOW (object);
  if (self->training)
    {
      // the worker finishes on its own; what it reports then goes nowhere
      self->training->self = NULL;
      g_cancellable_cancel (self->training->cancellable);
      self->training = NULL;
    }
  G_OBJECT_CLASS (agc_training_window_parent_class)->dispose (object);
}

static void
agc_training_window_finalize (GObject *object)
{
  AgcTrainingWindow *self = AGC_TRAINING_WINDOW (object);
  g_free (self->folder);
  g_free (self->tag_problem);
  g_array_unref (self->points);
  agc_evaluation_free (self->evaluation);
  g_clear_object (&self->class_store);
  G_OBJECT_CLASS (agc_training_window_parent_class)->finalize (object);
}

static void
agc_training_window_class_init (AgcTrainingWindowClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  object_class->dispose = agc_training_window_dispose;
  object_class->finalize = agc_training_window_finalize;
  /* (message): the folder's classes are listed; NULL, or what is wrong with it */
  signals[SIGNAL_SCANNED] = g_signal_new ("scanned", G_TYPE_FROM_CLASS (klass),
                                          G_SIGNAL_RUN_LAST, 0, NULL, NULL, NULL, G_TYPE_NONE, 1,
                                          G_TYPE_STRING);
  /* (epoch, total, train_loss, val_loss, val_accuracy): an epoch was shown */
  signals[SIGNAL_EPOCH] = g_signal_new ("epoch", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST, 0,
                                        NULL, NULL, NULL, G_TYPE_NONE, 5, G_TYPE_INT, G_TYPE_INT,
                                        G_TYPE_DOUBLE, G_TYPE_DOUBLE, G_TYPE_DOUBLE);
  /* (message): training ended; NULL on success, else what went wrong */
  signals[SIGNAL_FINISHED] = g_signal_new ("finished", G_TYPE_FROM_CLASS (klass),
                                           G_SIGNAL_RUN_LAST, 0, NULL, NULL, NULL, G_TYPE_NONE,
                                           1, G_TYPE_STRING);
}

GtkWidget *
agc_training_window_new (void)
{
  return g_object_new (AGC_TYPE_TRAINING_WINDOW, NULL);
}
