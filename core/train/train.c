/* train.c — agc_train: the settings checked once, the method's defaults
 * filled in, the method run; and the pieces every method shares
 * (train-common.h). */
#include "train/train-common.h"

#include "models/adapter.h"
#include "train/dataset.h"
#include "formats/safetensors-write.h"

#include <glib/gstdio.h>
#include <math.h>

/* Marks a display name for xgettext (po/POTFILES); the chooser translates it. */
#define N_(text) (text)

/* One entry per method, in the order choosers list them. */
static const struct
{
  const char *name;
  double learning_rate; /* the method's default */
  double weight_decay;
  AgcTrainData data;
  const char *display_name;
} methods[] = {
  [AGC_TRAIN_PROBE] = { "probe", 0.05, 0.01, AGC_TRAIN_DATA_TAGGED, /* the head starts at logit_scale scale */
                        N_("Probe: a linear head on the image embeddings") },
  [AGC_TRAIN_ALIGNER] = { "aligner", 1e-3, 0.01, AGC_TRAIN_DATA_TAGGED,
                          N_("Aligner: an AgriCLIP model's aligner") },
  [AGC_TRAIN_FINETUNE] = { "finetune", 1e-5, 0.01, AGC_TRAIN_DATA_TAGGED, /* pretrained blocks: small steps */
                           N_("Finetune: the last image blocks of a ViT model") },
  /* main_dino.py's lr (per 256 images) and the start of its weight decay schedule */
  [AGC_TRAIN_DINO] = { "dino", 5e-4, 0.04, AGC_TRAIN_DATA_PHOTOS,
                       N_("DINO: an AgriCLIP model's ResNet-50 or a ViT model's image tower, on "
                          "untagged photos") },
  [AGC_TRAIN_CONTRASTIVE] = { "contrastive", 1e-5, 0.01, AGC_TRAIN_DATA_PAIRS, /* pretrained blocks */
                              N_("Contrastive: the last blocks of both towers of a ViT model, on "
                                 "image-text pairs") },
};

static const AgcTrainMethod method_order[] = { AGC_TRAIN_PROBE, AGC_TRAIN_ALIGNER,
                                               AGC_TRAIN_FINETUNE, AGC_TRAIN_DINO,
                                               AGC_TRAIN_CONTRASTIVE };
G_STATIC_ASSERT (G_N_ELEMENTS (method_order) == G_N_ELEMENTS (methods));

const AgcTrainMethod *
agc_train_methods (int *n_methods)
{
  *n_methods = (int) G_N_ELEMENTS (method_order);
  return method_order;
}

const char *
agc_train_method_name (AgcTrainMethod method)
{
  return (unsigned) method < G_N_ELEMENTS (methods) ? methods[method].name : NULL;
}

const char *
agc_train_method_display_name (AgcTrainMethod method)
{
  return agc_train_method_name (method) != NULL ? methods[method].display_name : NULL;
}

double
agc_train_method_learning_rate (AgcTrainMethod method)
{
  return agc_train_method_name (method) != NULL ? methods[method].learning_rate : 0.0;
}

double
agc_train_method_weight_decay (AgcTrainMethod method)
{
  return agc_train_method_name (method) != NULL ? methods[method].weight_decay : 0.0;
}

AgcTrainData
agc_train_method_data (AgcTrainMethod method)
{
  return agc_train_method_name (method) != NULL ? methods[method].data : AGC_TRAIN_DATA_TAGGED;
}

gboolean
agc_train_method_from_name (AgcTrainMethod *method, const char *name)
{
  for (unsigned m = 0; m < G_N_ELEMENTS (methods); m++)
    if (g_strcmp0 (name, methods[m].name) == 0)
      {
        *method = (AgcTrainMethod) m;
        return TRUE;
      }
  return FALSE;
}

AgcTrainParams
agc_train_default_params (void)
{
  return (AgcTrainParams){
    .method = AGC_TRAIN_PROBE,
    .seed = 0,
    .val_fraction = 0.2,
    .max_epochs = 100,
    .patience = 10,
    .batch_size = 32,
    .learning_rate = 0.0,
    .weight_decay = 0.01,
    .checkpoint_every = 5,
    .resume = TRUE,
    .finetune_blocks = 2,
    .finetune_mix = 1.0,
    .finetune_warmup = 0.1,
    .aligner_ridge = 0.0, /* chosen by validation */
    .dino_local_crops = 2,
    .dino_out_dim = 4096,
    .dino_accumulate = 1,
    .dino_crop_size = 0, /* the model's input size */
    .dino_teacher_momentum = 0.996,
    .dino_teacher_temp = 0.04,
    .dino_blocks = 0,
  };
}

/* Stacking: the base adapter applied to the model, so that the method
 * trains on the adapted features; the trainer writes its tensors into the
 * new adapter. */
static gboolean
apply_base (AgcModel *model, const char *path, GError **error)
{
  AgcAdapter *base = agc_adapter_load (path, error);
  if (base == NULL)
    return FALSE;
  gboolean ok = TRUE;
  if (agc_adapter_n_tensors (base) == 0)
    {
      g_set_error (error, AGC_ERROR, AGC_ERROR_INPUT,
                   "%s: a probe adapter changes none of the model's tensors, so there is "
                   "nothing to train on top of (train on the model itself)",
                   agc_adapter_path (base));
      ok = FALSE;
    }
  ok = ok && agc_model_apply_adapter (model, base, error);
  agc_adapter_free (base);
  return ok;
}

static gboolean
check_params (const AgcTrainParams *p, GError **error)
{
  const char *problem = NULL;
  if (agc_train_method_name (p->method) == NULL)
    problem = "unknown method";
  else if (!(p->val_fraction >= 0.0 && p->val_fraction <= 0.9))
    problem = "the validation share must be between 0 and 0.9";
  else if (p->max_epochs < 0 || p->patience < 1 || p->batch_size < 1 || p->checkpoint_every < 0)
    problem = "epochs and checkpoint interval must not be negative, patience and batch size "
              "must be at least 1";
  else if (!(p->learning_rate > 0.0 && isfinite (p->learning_rate))
           || !(p->weight_decay >= 0.0 && p->learning_rate * p->weight_decay < 1.0))
    problem = "the learning rate must be positive and learning rate × weight decay below 1";
  else if (p->method == AGC_TRAIN_DINO
           && (p->dino_local_crops < 0 || p->dino_out_dim < 1 || p->dino_accumulate < 1
               || (p->dino_crop_size != 0 && p->dino_crop_size < 32) || p->dino_blocks < 0
               || !(p->dino_teacher_momentum >= 0.0 && p->dino_teacher_momentum <= 1.0)
               || !(p->dino_teacher_temp > 0.0 && isfinite (p->dino_teacher_temp))))
    problem = "DINO needs local crops >= 0, an output size and accumulation >= 1, crops of "
              "at least 32 pixels (or 0: the model's input size), blocks >= 0, a teacher "
              "momentum from 0 to 1 and a teacher temperature above 0";
  if (problem != NULL)
    g_set_error (error, AGC_ERROR, AGC_ERROR_INPUT, "training settings: %s", problem);
  return problem == NULL;
}

gboolean
agc_train (AgcModel *model, const char *data_dir, const char *out_path,
           const AgcTrainParams *params, AgcTrainResult *result, GCancellable *cancellable,
           GError **error)
{
  g_return_val_if_fail (model != NULL && data_dir != NULL && out_path != NULL, FALSE);
  AgcTrainParams p = params != NULL ? *params : agc_train_default_params ();
  if (p.learning_rate == 0.0)
    p.learning_rate = agc_train_method_learning_rate (p.method);
  AgcTrainResult local_result;
  if (result == NULL)
    result = &local_result;
  *result = (AgcTrainResult){ .zero_shot_val_accuracy = NAN, .val_accuracy = NAN,
                              .val_loss = NAN };
  if (!check_params (&p, error))
    return FALSE;
  g_autofree char *out_dir = g_path_get_dirname (out_path);
  if (!g_file_test (out_dir, G_FILE_TEST_IS_DIR)) // found now, not after the first epochs
    {
      g_autofree char *shown = g_filename_display_name (out_path);
      g_set_error (error, AGC_ERROR, AGC_ERROR_IO, "%s: its folder does not exist", shown);
      return FALSE;
    }
  if (!agc_adapter_check_destination (out_path, error))
    return FALSE;
  if (agc_model_has_adapter (model)) // its embeddings are not those of its identity
    {
      g_autofree char *shown = g_filename_display_name (agc_model_path (model));
      g_set_error (error, AGC_ERROR, AGC_ERROR_INPUT,
                   "%s: an adapter is applied to this model; train on the model as loaded",
                   shown);
      return FALSE;
    }
  if (agc_model_get_int8 (model)) // training reads and writes float32 weights
    {
      g_autofree char *shown = g_filename_display_name (agc_model_path (model));
      g_set_error (error, AGC_ERROR, AGC_ERROR_INPUT,
                   "%s: int8 mode is on; train with it off (int8 is for labelling)", shown);
      return FALSE;
    }
  if (p.base_adapter != NULL && !apply_base (model, p.base_adapter, error))
    return FALSE;
  switch (p.method)
    {
    case AGC_TRAIN_PROBE:
      return agc_train_probe (model, data_dir, out_path, &p, result, cancellable, error);
    case AGC_TRAIN_ALIGNER:
      return agc_train_aligner (model, data_dir, out_path, &p, result, cancellable, error);
    case AGC_TRAIN_FINETUNE:
      return agc_train_finetune (model, data_dir, out_path, &p, result, cancellable, error);
    case AGC_TRAIN_DINO:
      return agc_train_dino (model, data_dir, out_path, &p, result, cancellable, error);
    case AGC_TRAIN_CONTRASTIVE:
      return agc_train_contrastive (model, data_dir, out_path, &p, result, cancellable, error);
    }
  g_assert_not_reached ();
}

/* ---- shared by the methods ------------------------------------------------- */

void
agc_train_report (const AgcTrainParams *params, AgcTrainStage stage, int done, int total,
                  double train_loss, double val_loss, double val_accuracy)
{
  if (params->progress == NULL)
    return;
  AgcTrainProgress p = { stage, done, total, train_loss, val_loss, val_accuracy };
  params->progress (&p, params->user_data);
}

void
agc_train_on_embed_progress (int done, int total, gpointer params)
{
  agc_train_report (params, AGC_TRAIN_STAGE_EMBED, done, total, NAN, NAN, NAN);
}

void
agc_train_report_problem (const AgcTrainParams *params, const GError *problem)
{
  if (params->report != NULL)
    params->report (problem, params->user_data);
}

void
agc_train_on_embed_problem (const GError *problem, gpointer params)
{
  agc_train_report_problem (params, problem);
}

gboolean
agc_train_check_classes (const AgcDataset *data, const int *class_of, int n, GError **error)
{
  int n_classes = agc_label_set_n_classes (data->labels);
  g_autofree int *per_class = g_new0 (int, n_classes);
  for (int i = 0; i < n; i++)
    per_class[class_of[i]]++;
  for (int c = 0; c < n_classes; c++)
    if (per_class[c] == 0)
      {
        g_autofree char *folder =
            g_build_filename (data->dir, agc_label_set_class_name (data->labels, c), NULL);
        g_autofree char *shown = g_filename_display_name (folder);
        g_set_error (error, AGC_ERROR, AGC_ERROR_INPUT,
                     "%s: none of the files in this tag folder is a readable image", shown);
        return FALSE;
      }
  return TRUE;
}

void
agc_train_split (AgcTrainSplit *split, const int *class_of, int n, int n_classes,
                 double val_fraction, guint64 seed)
{
  gboolean *is_val = g_new (gboolean, MAX (n, 1));
  agc_dataset_split (is_val, class_of, n, n_classes, val_fraction, seed);
  *split = (AgcTrainSplit){ 0 };
  split->train = g_new (int, MAX (n, 1));
  split->val = g_new (int, MAX (n, 1));
  int *train_count = g_new0 (int, n_classes), *val_count = g_new0 (int, n_classes);
  for (int i = 0; i < n; i++)
    if (is_val[i])
      split->val[split->n_val++] = i, val_count[class_of[i]]++;
    else
      split->train[split->n_train++] = i, train_count[class_of[i]]++;
  split->train_weights = g_new (float, n_classes);
  split->val_weights = g_new (float, n_classes);
  for (int c = 0; c < n_classes; c++)
    {
      /* every class keeps a training image, so train_count[c] > 0 */
      split->train_weights[c] =
          (float) split->n_train / ((float) n_classes * MAX (train_count[c], 1));
      split->val_weights[c] = val_count[c] > 0 ? 1.0f / (float) val_count[c] : 0.0f;
    }
  g_free (val_count);
  g_free (train_count);
  g_free (is_val);
}

void
agc_train_split_clear (AgcTrainSplit *split)
{
  g_free (split->train);
  g_free (split->val);
  g_free (split->train_weights);
  g_free (split->val_weights);
  *split = (AgcTrainSplit){ 0 };
}

void
agc_json_add_number (JsonBuilder *b, const char *name, double value)
{
  json_builder_set_member_name (b, name);
  if (isfinite (value))
    json_builder_add_double_value (b, value);
  else
    json_builder_add_null_value (b);
}

void
agc_json_add_int (JsonBuilder *b, const char *name, gint64 value)
{
  json_builder_set_member_name (b, name);
  json_builder_add_int_value (b, value);
}

void
agc_json_add_string (JsonBuilder *b, const char *name, const char *value)
{
  json_builder_set_member_name (b, name);
  json_builder_add_string_value (b, value);
}

static char *
to_json (JsonBuilder *b)
{
  g_autoptr (JsonNode) root = json_builder_get_root (b);
  return json_to_string (root, FALSE);
}

char *
agc_train_metrics_json (const AgcTrainResult *r)
{
  g_autoptr (JsonBuilder) b = json_builder_new ();
  json_builder_begin_object (b);
  agc_json_add_number (b, "zero_shot_val_accuracy", r->zero_shot_val_accuracy);
  agc_json_add_number (b, "val_accuracy", r->val_accuracy);
  agc_json_add_number (b, "val_loss", r->val_loss);
  agc_json_add_int (b, "best_epoch", r->best_epoch);
  agc_json_add_int (b, "epochs", r->epochs);
  agc_json_add_int (b, "n_train", r->n_train);
  agc_json_add_int (b, "n_val", r->n_val);
  agc_json_add_int (b, "n_skipped", r->n_skipped);
  json_builder_end_object (b);
  return to_json (b);
}

char *
agc_train_settings_json (const AgcTrainParams *p, const char *data_dir, const char *optimizer,
                         const char *loss, AgcTrainJsonAdd add)
{
  g_autoptr (JsonBuilder) b = json_builder_new ();
  g_autofree char *seed = g_strdup_printf ("%" G_GUINT64_FORMAT, p->seed);
  g_autofree char *data = g_path_get_basename (data_dir);
  json_builder_begin_object (b);
  agc_json_add_string (b, "seed", seed); // a string: JSON numbers stop at 2^53 in many readers
  agc_json_add_string (b, "data", data);
  agc_json_add_string (b, "optimizer", optimizer);
  agc_json_add_string (b, "loss", loss);
  agc_json_add_number (b, "val_fraction", p->val_fraction);
  agc_json_add_number (b, "learning_rate", p->learning_rate);
  agc_json_add_number (b, "weight_decay", p->weight_decay);
  agc_json_add_int (b, "batch_size", p->batch_size);
  agc_json_add_int (b, "max_epochs", p->max_epochs);
  agc_json_add_int (b, "patience", p->patience);
  if (add != NULL)
    add (b, p);
  json_builder_end_object (b);
  return to_json (b);
}

void
agc_train_clean_up (const char *out_path)
{
  g_autofree char *checkpoint = g_strconcat (out_path, ".checkpoint", NULL);
  g_unlink (checkpoint);
  agc_remove_stale_temporaries (checkpoint);
  agc_remove_stale_temporaries (out_path);
}
