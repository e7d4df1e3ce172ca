/* train-procedure.c — plug-in-agriclip-train: teaches a model the classes of
 * a folder of tagged photos (one sub-folder per tag, see agriclip.h
 * "training") and writes an adapter for plug-in-agriclip-label, like
 * `agriclip train`.  Needs no image, so the menu entry works with none open.
 *
 * Cancelling: GIMP's Cancel button on a plug-in's progress does not reach
 * the plug-in; GIMP answers the call with CANCEL and kills the process
 * (libgimp has no cancel notification for the progress a plug-in shows).
 * That is safe here because agc_train writes the adapter to a temporary
 * file and renames it only when training is done, so a killed run leaves
 * no adapter, only ADAPTER.checkpoint, from which the next run with the
 * same settings continues.
 *
 * Interactive runs show ui's training window instead of GIMP's dialog: it
 * trains on its own worker thread with a live plot, and its Cancel does
 * reach the training (it stops at a safe point, keeping the checkpoint).
 * GIMP's progress bar follows the epochs too.  The window's last settings
 * go back into the procedure's config ("Repeat" and scripts see them). */
#include "agriclip-plugin.h"

#include <math.h>

/* Problems (skipped files) shown one by one before only counting them. */
#define MAX_REPORTS 10

typedef struct
{
  AgcTrainStage stage; /* of the last progress call, to set the text once per stage */
  gboolean started;
  int n_reports;
} TrainView;

/* Encoding the images is the first half of the bar, the epochs the second
 * (the epochs may end early: the bar then jumps to the end). */
static void
on_progress (const AgcTrainProgress *p, gpointer user_data)
{
  TrainView *view = user_data;
  gboolean new_stage = !view->started || view->stage != p->stage;
  view->started = TRUE;
  view->stage = p->stage;
  double fraction = p->total > 0 ? (double) p->done / p->total : 0.0;
  switch (p->stage)
    {
    case AGC_TRAIN_STAGE_EMBED:
      if (new_stage)
        gimp_progress_set_text (_("Encoding the images"));
      gimp_progress_update (0.5 * fraction);
      break;
    case AGC_TRAIN_STAGE_STEP: // dino: steps within an epoch
      /* Translators: DINO's progress within an epoch; the loss is the epoch's mean so far */
      gimp_progress_set_text_printf (_("Step %d of %d of the epoch: loss %.3f"), p->done,
                                     p->total, p->train_loss);
      break;
    case AGC_TRAIN_STAGE_RESUME:
      gimp_progress_set_text_printf (_("Continuing the interrupted run after epoch %d"),
                                     p->done);
      break;
    case AGC_TRAIN_STAGE_EPOCH:
      if (isnan (p->val_accuracy))
        gimp_progress_set_text_printf (_("Epoch %d of at most %d"), p->done, p->total);
      else
        gimp_progress_set_text_printf (_("Epoch %d of at most %d: validation accuracy %.1f %%"),
                                       p->done, p->total, 100.0 * p->val_accuracy);
      gimp_progress_update (0.5 + 0.5 * fraction);
      break;
    }
}

static void
on_report (const GError *problem, gpointer user_data)
{
  TrainView *view = user_data;
  if (view->n_reports++ < MAX_REPORTS)
    g_message ("%s", problem->message);
}

/* ---- interactive: the training window ----------------------------------------- */

static void
on_window_epoch (AgcTrainingWindow *window, int epoch, int total, double train_loss,
                 double val_loss, double val_accuracy, gpointer data)
{
  (void) window;
  (void) train_loss;
  (void) val_loss;
  (void) data;
  if (isnan (val_accuracy))
    gimp_progress_set_text_printf (_("Epoch %d of at most %d"), epoch, total);
  else
    gimp_progress_set_text_printf (_("Epoch %d of at most %d: validation accuracy %.1f %%"),
                                   epoch, total, 100.0 * val_accuracy);
  gimp_progress_update (total > 0 ? (double) epoch / total : 1.0);
}

/* The config's values shown in the window. */
static void
window_from_config (AgcTrainingWindow *window, GimpProcedureConfig *config)
{
  int epochs = 100, seed = 0, blocks = 2;
  double mix = 1.0;
  g_object_get (config, "epochs", &epochs, "seed", &seed, "blocks", &blocks, "mix", &mix, NULL);
  AgcTrainParams params = agc_train_default_params ();
  params.max_epochs = epochs;
  params.seed = (guint64) seed;
  params.method = gimp_procedure_config_get_choice_id (config, "method");
  params.finetune_blocks = blocks;
  params.finetune_mix = mix;
  g_autofree char *base = plugin_file_path (config, "base-adapter", NULL, NULL);
  params.base_adapter = base;
  agc_training_window_set_params (window, &params);
  g_autofree char *model = plugin_resolve_model (plugin_file_path (config, "model", NULL, NULL));
  if (model)
    agc_training_window_set_model (window, model);
  g_autofree char *adapter = plugin_file_path (config, "adapter", NULL, NULL);
  if (adapter)
    agc_training_window_set_adapter_path (window, adapter);
  g_autofree char *data = plugin_file_path (config, "data", NULL, NULL);
  if (data && g_file_test (data, G_FILE_TEST_IS_DIR))
    agc_training_window_set_folder (window, data);
}

static void
config_from_window (GimpProcedureConfig *config, AgcTrainingWindow *window)
{
  const char *data_dir = agc_training_window_get_folder (window);
  AgcTrainParams params = agc_training_window_get_params (window);
  g_autofree char *adapter = agc_training_window_get_adapter_path (window);
  g_autoptr (GFile) adapter_file = *adapter ? g_file_new_for_path (adapter) : NULL;
  g_autoptr (GFile) data_file = data_dir ? g_file_new_for_path (data_dir) : NULL;
  g_object_set (config, "epochs", params.max_epochs, "seed", (int) params.seed, "blocks",
                params.finetune_blocks, "mix", params.finetune_mix, "method",
                agc_train_method_name (params.method), NULL);
  if (adapter_file)
    g_object_set (config, "adapter", adapter_file, NULL);
  g_autoptr (GFile) base_file = params.base_adapter ? g_file_new_for_path (params.base_adapter)
                                                    : NULL;
  g_object_set (config, "base-adapter", base_file, NULL);
  if (data_file)
    g_object_set (config, "data", data_file, NULL);
}

/* What the window held when it closed, read while its controls still exist. */
typedef struct
{
  GimpProcedureConfig *config;
  gboolean trained;
  double accuracy;
  char *adapter;
} Outcome;

/* Connected before the window's own "destroy" handler tears its controls
 * down (GtkContainer's runs last). */
static void
on_window_destroy (AgcTrainingWindow *window, Outcome *outcome)
{
  const AgcTrainResult *result = agc_training_window_get_result (window);
  outcome->trained = result != NULL;
  outcome->accuracy = result && !isnan (result->val_accuracy) ? result->val_accuracy : -1.0;
  outcome->adapter = agc_training_window_get_adapter_path (window);
  config_from_window (outcome->config, window);
  gtk_main_quit ();
}

static GimpValueArray *
train_window_run (GimpProcedure *procedure, GimpProcedureConfig *config)
{
  gimp_ui_init (PLUG_IN_BINARY);
  gimp_progress_init (_("AgriCLIP: training"));
  GtkWidget *window = agc_training_window_new ();
  window_from_config (AGC_TRAINING_WINDOW (window), config);
  Outcome outcome = { config, FALSE, -1.0, NULL };
  g_signal_connect (window, "epoch", G_CALLBACK (on_window_epoch), NULL);
  g_signal_connect (window, "destroy", G_CALLBACK (on_window_destroy), &outcome);
  gimp_window_set_transient (GTK_WINDOW (window));
  gtk_window_present (GTK_WINDOW (window));
  gtk_main ();
  GimpValueArray *values;
  if (!outcome.trained)
    values = gimp_procedure_new_return_values (procedure, GIMP_PDB_CANCEL, NULL);
  else
    {
      g_autoptr (GFile) out_file = g_file_new_for_path (outcome.adapter);
      values = gimp_procedure_new_return_values (procedure, GIMP_PDB_SUCCESS, NULL);
      GIMP_VALUES_SET_DOUBLE (values, 1, outcome.accuracy);
      GIMP_VALUES_SET_FILE (values, 2, out_file);
    }
  g_free (outcome.adapter);
  return values;
}

static GimpValueArray *
train_run (GimpProcedure *procedure, GimpProcedureConfig *config, gpointer run_data)
{
  (void) run_data;
  GimpRunMode run_mode = GIMP_RUN_NONINTERACTIVE;
  g_object_get (config, "run-mode", &run_mode, NULL);
  if (run_mode == GIMP_RUN_INTERACTIVE)
    return train_window_run (procedure, config);

  int epochs = 100, seed = 0, blocks = 2;
  double mix = 1.0;
  g_object_get (config, "epochs", &epochs, "seed", &seed, "blocks", &blocks, "mix", &mix, NULL);
  AgcTrainMethod method = gimp_procedure_config_get_choice_id (config, "method");
  GError *error = NULL;
  g_autofree char *model_path
    = plugin_resolve_model (plugin_file_path (config, "model", _("Model folder"), &error));
  g_autofree char *data_path = model_path ? plugin_file_path (config, "data",
                                                              _("Tagged folders"), &error)
                                          : NULL;
  g_autofree char *out_path = data_path ? plugin_file_path (config, "adapter",
                                                            _("Adapter file"), &error)
                                        : NULL;
  if (!out_path)
    return plugin_fail (procedure, error);
  if (!g_file_test (data_path, G_FILE_TEST_IS_DIR))
    {
      if (agc_train_method_data (method) == AGC_TRAIN_DATA_TAGGED)
        g_set_error (&error, AGC_ERROR, AGC_ERROR_IO,
                     _("%s: not a folder (expected one sub-folder of images per tag)"),
                     data_path);
      else
        g_set_error (&error, AGC_ERROR, AGC_ERROR_IO, _("%s: not a folder"), data_path);
      return plugin_fail (procedure, error);
    }

  TrainView view = { 0 };
  AgcTrainParams params = agc_train_default_params ();
  params.max_epochs = epochs;
  params.seed = (guint64) seed;
  params.method = method;
  params.finetune_blocks = blocks;
  params.finetune_mix = mix;
  params.weight_decay = agc_train_method_weight_decay (method);
  g_autofree char *base = plugin_file_path (config, "base-adapter", NULL, NULL);
  params.base_adapter = base;
  /* GIMP's Cancel kills the process (see the top): with epochs as long as
   * fine-tuning's or DINO's, a checkpoint after each keeps what cancelling would lose */
  if (method == AGC_TRAIN_FINETUNE || method == AGC_TRAIN_DINO)
    params.checkpoint_every = 1;
  params.progress = on_progress;
  params.report = on_report;
  params.user_data = &view;

  gimp_progress_init (_("AgriCLIP: training"));
  gimp_progress_set_text (_("Loading the model"));
  AgcModel *model = agc_model_load (model_path, &error);
  plugin_name_path (&error, model_path);
  AgcTrainResult result;
  gboolean ok = model && agc_train (model, data_path, out_path, &params, &result, NULL, &error);
  agc_model_free (model);
  if (!ok)
    return plugin_fail (procedure, error);
  if (view.n_reports > MAX_REPORTS)
    g_message (_("%d more files were skipped"), view.n_reports - MAX_REPORTS);
  gimp_progress_update (1.0);

  g_autoptr (GFile) out_file = g_file_new_for_path (out_path);
  GimpValueArray *values = gimp_procedure_new_return_values (procedure, GIMP_PDB_SUCCESS, NULL);
  GIMP_VALUES_SET_DOUBLE (values, 1, isnan (result.val_accuracy) ? -1.0 : result.val_accuracy);
  GIMP_VALUES_SET_FILE (values, 2, out_file);
  return values;
}

GimpProcedure *
train_procedure_new (GimpPlugIn *plug_in)
{
  GimpProcedure *procedure = gimp_procedure_new (plug_in, TRAIN_PROC, GIMP_PDB_PROC_TYPE_PLUGIN,
                                                 train_run, NULL, NULL);
  /* Without NO_IMAGE GIMP greys the entry out when no image is open; the
   * other flags keep it active whatever the image's layers. */
  gimp_procedure_set_sensitivity_mask (procedure, GIMP_PROCEDURE_SENSITIVE_NO_IMAGE
                                                    | GIMP_PROCEDURE_SENSITIVE_DRAWABLE
                                                    | GIMP_PROCEDURE_SENSITIVE_DRAWABLES
                                                    | GIMP_PROCEDURE_SENSITIVE_NO_DRAWABLES);
  gimp_procedure_set_menu_label (procedure, _("_Train on Tagged Folders…"));
  gimp_procedure_add_menu_path (procedure, MENU_PATH);
  gimp_procedure_set_documentation (
    procedure, _("Teach AgriCLIP your own classes from folders of tagged photos"),
    _("Learns the classes of a folder with one sub-folder of photos per tag (the folder "
      "name is the class) and writes an adapter file, to use with \"Label…\" and "
      "\"Regions…\".  Methods: probe trains a linear head on the model's image embeddings; "
      "finetune trains the last blocks of a ViT model's image tower, its final norm and "
      "projection against the classes' prompts; aligner fits an AgriCLIP model's aligner "
      "again; dino adapts an AgriCLIP model's ResNet-50 by self-distillation on a folder of "
      "photos, tagged or not (no validation).  A seeded share of each class is held out for "
      "validation; returns the validation accuracy (-1 without validation images) and the "
      "adapter file.  The same model, data, epochs and seed give the same adapter.  A "
      "cancelled run leaves no adapter; running it again continues from its checkpoint."),
    TRAIN_PROC);
  gimp_procedure_set_attribution (procedure, "AgriCLIP authors", "AgriCLIP authors", "2025");

  gimp_procedure_add_enum_argument (procedure, "run-mode", _("Run mode"), _("The run mode"),
                                    GIMP_TYPE_RUN_MODE, GIMP_RUN_NONINTERACTIVE,
                                    G_PARAM_READWRITE);
  /* CREATE_FOLDER for existing folders: see engine_add_arguments. */
  gimp_procedure_add_file_argument (procedure, "model", _("_Model folder"),
                                    _("A CLIP model folder in Hugging Face layout"),
                                    GIMP_FILE_CHOOSER_ACTION_CREATE_FOLDER, TRUE, NULL,
                                    G_PARAM_READWRITE);
  gimp_procedure_add_file_argument (procedure, "data", _("_Tagged folders"),
                                    _("A folder with one sub-folder of photos per tag, and "
                                      "optionally labels.json with display names and prompts"),
                                    GIMP_FILE_CHOOSER_ACTION_CREATE_FOLDER, TRUE, NULL,
                                    G_PARAM_READWRITE);
  gimp_procedure_add_file_argument (procedure, "adapter", _("_Adapter file"),
                                    _("Where to write the adapter (.safetensors)"),
                                    GIMP_FILE_CHOOSER_ACTION_SAVE, TRUE, NULL,
                                    G_PARAM_READWRITE);
  gimp_procedure_add_int_argument (procedure, "epochs", _("_Epochs"),
                                   _("Most epochs; training stops earlier when the validation "
                                     "loss stops improving (0: the zero-shot head)"),
                                   0, 10000, 100, G_PARAM_READWRITE);
  gimp_procedure_add_int_argument (procedure, "seed", _("_Seed"),
                                   _("Seed of the validation split and batch order"), 0,
                                   G_MAXINT, 0, G_PARAM_READWRITE);

  // the library's methods, by name, as the training window lists them
  GimpChoice *methods = gimp_choice_new ();
  int n_methods;
  const AgcTrainMethod *listed = agc_train_methods (&n_methods);
  for (int m = 0; m < n_methods; m++)
    {
      const char *shown = agc_train_method_display_name (listed[m]);
      gimp_choice_add (methods, agc_train_method_name (listed[m]), (int) listed[m],
                       shown ? _(shown) : agc_train_method_name (listed[m]), NULL);
    }
  gimp_procedure_add_choice_argument (procedure, "method", _("_Method"), _("What to train"),
                                      methods, "probe", G_PARAM_READWRITE);
  gimp_procedure_add_int_argument (procedure, "blocks", _("_Blocks"),
                                   _("Finetune: how many of the last image blocks to train"), 1,
                                   64, 2, G_PARAM_READWRITE);
  gimp_procedure_add_double_argument (procedure, "mix", _("Mi_x"),
                                      _("Finetune: share of the trained weights in the adapter, "
                                        "the rest the original ones (1: trained only)"),
                                      0.0, 1.0, 1.0, G_PARAM_READWRITE);

  gimp_procedure_add_file_argument (procedure, "base-adapter", _("_Base adapter"),
                                    _("An adapter applied to the model before training (for "
                                      "example DINO's, then the aligner on top of it); the new "
                                      "adapter holds both.  None: the model as it is"),
                                    GIMP_FILE_CHOOSER_ACTION_OPEN, TRUE, NULL,
                                    G_PARAM_READWRITE);

  gimp_procedure_add_double_return_value (procedure, "accuracy", _("Accuracy"),
                                          _("Validation accuracy of the kept epoch, 0..1 "
                                            "(-1 without validation images)"),
                                          -1.0, 1.0, -1.0, G_PARAM_READWRITE);
  gimp_procedure_add_file_return_value (procedure, "adapter", _("Adapter"),
                                        _("The adapter file written"), G_PARAM_READWRITE);
  return procedure;
}
