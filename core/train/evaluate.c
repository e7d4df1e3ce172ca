/* evaluate.c — how often a classifier's top label matches the tag of each
 * photo of a tagged folder (agriclip.h, "evaluation"): a confusion matrix
 * whose columns are the data's classes, then any others the classifier has. */
#include "train/dataset.h"

#include <math.h>
#include <string.h>

#include "train/knn.h"
#include "models/adapter.h"
#include "models/agriclip-model.h"
#include "models/embedding-cache.h"


struct AgcEvaluation
{
  AgcDataset *data;
  int n_rows;             /* the data's classes */
  int n_columns;          /* the data's classes, then any others the classifier has */
  GPtrArray *column_names; /* [n_columns] export names, owned */
  int *counts;            /* [n_rows, n_columns] */
  int n_images;           /* evaluated */
  int n_skipped;          /* unreadable */
};

AgcEvaluation *
agc_evaluation_open (const char *data_dir, AgcTrainReportFunc report, gpointer user_data,
                     GError **error)
{
  g_return_val_if_fail (data_dir != NULL, NULL);
  AgcDataset *data = agc_dataset_open (data_dir, report, user_data, error);
  if (!data)
    return NULL;
  AgcEvaluation *e = g_new0 (AgcEvaluation, 1);
  e->data = data;
  e->n_rows = agc_label_set_n_classes (data->labels);
  return e;
}

/* Back to no counts and no columns. */
static void
clear_counts (AgcEvaluation *e)
{
  g_clear_pointer (&e->column_names, g_ptr_array_unref);
  g_clear_pointer (&e->counts, g_free);
  e->n_columns = e->n_images = e->n_skipped = 0;
}

void
agc_evaluation_free (AgcEvaluation *evaluation)
{
  if (!evaluation)
    return;
  clear_counts (evaluation);
  agc_dataset_free (evaluation->data);
  g_free (evaluation);
}

const AgcLabelSet *
agc_evaluation_labels (const AgcEvaluation *evaluation)
{
  return evaluation->data->labels;
}

int
agc_evaluation_class_n_files (const AgcEvaluation *evaluation, int class_index)
{
  g_return_val_if_fail (class_index >= 0 && class_index < evaluation->n_rows, 0);
  int n = 0;
  for (int f = 0; f < evaluation->data->n_files; f++)
    n += evaluation->data->class_of[f] == class_index;
  return n;
}

const char *
agc_evaluation_class_file (const AgcEvaluation *evaluation, int class_index, int i)
{
  g_return_val_if_fail (class_index >= 0 && class_index < evaluation->n_rows, NULL);
  // files are listed class by class: the class's i-th follows its first
  for (int f = 0; f < evaluation->data->n_files; f++)
    if (evaluation->data->class_of[f] == class_index)
      return f + i < evaluation->data->n_files && evaluation->data->class_of[f + i] == class_index
               ? evaluation->data->files[f + i]
               : NULL;
  return NULL;
}

/* Columns: the data's classes in their order, then the classifier's other
 * classes (an adapter may know more), matched by export name.
 * column_of[predicted class] receives each one's column. */
static void
init_columns (AgcEvaluation *e, GPtrArray *predicted, int *column_of)
{
  const AgcLabelSet *labels = e->data->labels;
  e->column_names = g_ptr_array_new_with_free_func (g_free);
  for (int r = 0; r < e->n_rows; r++)
    g_ptr_array_add (e->column_names, g_strdup (agc_label_set_class_name (labels, r)));
  for (guint p = 0; p < predicted->len; p++)
    {
      column_of[p] = -1;
      for (guint c = 0; c < e->column_names->len; c++)
        if (g_str_equal (predicted->pdata[p], e->column_names->pdata[c]))
          column_of[p] = (int) c;
      if (column_of[p] < 0)
        {
          column_of[p] = (int) e->column_names->len;
          g_ptr_array_add (e->column_names, g_strdup (predicted->pdata[p]));
        }
    }
  e->n_columns = (int) e->column_names->len;
  e->counts = g_new0 (int, (gsize) e->n_rows * e->n_columns);
}

/* The classifier, and the export name of each of its classes. */
static AgcClassifier *
open_classifier (AgcModel *model, const AgcLabelSet *labels, const char *adapter_path,
                 GPtrArray *names, GError **error)
{
  if (!adapter_path)
    {
      for (int c = 0; c < agc_label_set_n_classes (labels); c++)
        g_ptr_array_add (names, g_strdup (agc_label_set_class_name (labels, c)));
      return agc_classifier_new (model, labels, NULL, error);
    }
  AgcAdapter *adapter = agc_adapter_load (adapter_path, error);
  if (!adapter)
    return NULL;
  for (int c = 0; c < agc_adapter_n_classes (adapter); c++)
    g_ptr_array_add (names, g_strdup (agc_adapter_class_name (adapter, c)));
  AgcClassifier *classifier = agc_classifier_new_from_adapter (model, adapter, error);
  agc_adapter_free (adapter);
  return classifier;
}

/* Encodes every file of the data and counts the classifier's top label
 * against its tag. */
static gboolean
count_top_labels (AgcEvaluation *e, AgcModel *model, const AgcClassifier *classifier,
                  const int *column_of, AgcEvaluateProgressFunc progress,
                  AgcTrainReportFunc report, gpointer user_data, GCancellable *cancellable,
                  GError **error)
{
  g_autofree char *identity = agc_model_identity (model, error);
  if (!identity)
    return FALSE;
  const AgcDataset *data = e->data;
  int n = data->n_files, dim = agc_model_embed_dim (model);
  int n_classes = agc_classifier_n_classes (classifier);
  g_autofree float *embeddings = g_new (float, (gsize) MAX (n, 1) * dim);
  g_autofree gboolean *ok = g_new (gboolean, MAX (n, 1));
  g_autofree char (*hashes)[AGC_SHA256_HEX] = g_malloc (sizeof *hashes * (gsize) MAX (n, 1));
  g_autofree float *probs = g_new (float, n_classes);
  AgcEmbedCounts counts;
  if (!agc_embed_files_cached (embeddings, ok, hashes, &counts, model, identity,
                               (const char *const *) data->files, n, report, progress, user_data,
                               cancellable, error))
    return FALSE;
  for (int i = 0; i < n; i++)
    {
      if (!ok[i])
        {
          e->n_skipped++;
          continue;
        }
      int top;
      agc_classifier_probabilities (classifier, embeddings + (gsize) i * dim, probs);
      agc_top_k (probs, n_classes, 1, &top);
      e->counts[data->class_of[i] * e->n_columns + column_of[top]]++;
      e->n_images++;
    }
  return TRUE;
}

gboolean
agc_evaluate (AgcEvaluation *evaluation, AgcModel *model, const char *adapter_path,
              AgcEvaluateProgressFunc progress, AgcTrainReportFunc report, gpointer user_data,
              GCancellable *cancellable, GError **error)
{
  g_return_val_if_fail (evaluation != NULL && model != NULL, FALSE);
  clear_counts (evaluation);
  g_autoptr (GPtrArray) names = g_ptr_array_new_with_free_func (g_free);
  AgcClassifier *classifier = open_classifier (model, evaluation->data->labels, adapter_path,
                                               names, error);
  if (!classifier)
    return FALSE;
  g_autofree int *column_of = g_new (int, MAX (names->len, 1));
  init_columns (evaluation, names, column_of);
  gboolean ok = count_top_labels (evaluation, model, classifier, column_of, progress, report,
                                  user_data, cancellable, error);
  agc_classifier_free (classifier);
  return ok;
}

/* ---- k-NN ------------------------------------------------------------------ */

/* The ResNet of an AgriCLIP model as it runs now: the folder's, or the one
 * of the adapter the model carries (adapter_path, already applied). */
static AgcAgriclipImage *
open_backbone (AgcModel *model, const char *adapter_path, GError **error)
{
  AgcAgriclipManifest manifest;
  if (!agc_agriclip_manifest_load (&manifest, agc_model_path (model), error))
    return NULL;
  AgcAgriclipImage *image = agc_agriclip_image_load (&manifest, agc_model_embed_dim (model),
                                                     error);
  agc_agriclip_manifest_clear (&manifest);
  if (image != NULL && adapter_path != NULL)
    {
      AgcAdapter *adapter = agc_adapter_load (adapter_path, error);
      if (adapter == NULL || !agc_agriclip_image_apply_resnet (image, adapter, error))
        g_clear_pointer (&image, agc_agriclip_image_free);
      agc_adapter_free (adapter);
    }
  return image;
}

/* features[n, *dim] of the data's files, L2-normalised (ok[n]: readable):
 * an AgriCLIP model's ResNet features before the aligner, else the model's
 * image embeddings; through the embedding cache. */
static float *
knn_features (const AgcDataset *data, AgcModel *model, const char *adapter_path,
              gboolean *ok, int *dim, AgcEvaluateProgressFunc progress,
              AgcTrainReportFunc report, gpointer user_data, GCancellable *cancellable,
              GError **error)
{
  g_autofree char *identity = agc_model_identity (model, error);
  if (!identity)
    return NULL;
  int n = data->n_files;
  char (*hashes)[AGC_SHA256_HEX] = g_malloc (sizeof *hashes * (gsize) MAX (n, 1));
  AgcEmbedCounts counts;
  float *features = NULL;
  gboolean good;
  if (agc_agriclip_is_folder (agc_model_path (model)))
    {
      AgcAgriclipImage *image = open_backbone (model, adapter_path, error);
      *dim = AGC_RESNET_FEATURES;
      features = g_new (float, (gsize) MAX (n, 1) * *dim);
      good = image != NULL
             && agc_agriclip_features_cached (features, ok, hashes, &counts, model, image,
                                              (const char *const *) data->files, n, report,
                                              progress, user_data, cancellable, error);
      agc_agriclip_image_free (image);
    }
  else
    {
      *dim = agc_model_embed_dim (model);
      features = g_new (float, (gsize) MAX (n, 1) * *dim);
      good = agc_embed_files_cached (features, ok, hashes, &counts, model, identity,
                                     (const char *const *) data->files, n, report, progress,
                                     user_data, cancellable, error);
    }
  g_free (hashes);
  if (!good)
    {
      g_free (features);
      return NULL;
    }
  agc_knn_normalise (features, n, *dim);
  return features;
}

gboolean
agc_evaluate_knn (AgcEvaluation *evaluation, const AgcEvaluation *bank, AgcModel *model,
                  const char *adapter_path, int k, double temperature,
                  AgcEvaluateProgressFunc progress, AgcTrainReportFunc report,
                  gpointer user_data, GCancellable *cancellable, GError **error)
{
  g_return_val_if_fail (evaluation != NULL && bank != NULL && model != NULL, FALSE);
  if (k < 1 || !(temperature > 0) || !isfinite (temperature))
    {
      g_set_error (error, AGC_ERROR, AGC_ERROR_INPUT,
                   "k-NN: k must be at least 1 and the temperature above 0");
      return FALSE;
    }
  clear_counts (evaluation);
  if (adapter_path != NULL) // the same model as agc_evaluate's with the adapter
    {
      AgcAdapter *adapter = agc_adapter_load (adapter_path, error);
      gboolean applied = adapter != NULL && agc_model_apply_adapter (model, adapter, error);
      agc_adapter_free (adapter);
      if (!applied)
        return FALSE;
    }
  else if (agc_model_has_adapter (model))
    {
      g_set_error (error, AGC_ERROR, AGC_ERROR_INPUT,
                   "%s: the model carries an adapter; open it again for its own features",
                   agc_model_path (model));
      return FALSE;
    }
  const AgcDataset *data = evaluation->data, *bank_data = bank->data;
  int n_bank_all = bank_data->n_files, dim = 0;
  g_autofree gboolean *bank_ok = g_new (gboolean, MAX (n_bank_all, 1));
  g_autofree gboolean *ok = g_new (gboolean, MAX (data->n_files, 1));
  g_autofree float *bank_features
    = knn_features (bank_data, model, adapter_path, bank_ok, &dim, progress, report, user_data,
                    cancellable, error);
  if (!bank_features)
    return FALSE;
  g_autofree float *features = knn_features (data, model, adapter_path, ok, &dim, progress,
                                             report, user_data, cancellable, error);
  if (!features)
    return FALSE;
  // the readable bank images, packed
  g_autofree int *bank_class = g_new (int, MAX (n_bank_all, 1));
  int n_bank = 0;
  for (int b = 0; b < n_bank_all; b++)
    if (bank_ok[b])
      {
        memmove (bank_features + (gsize) n_bank * dim, bank_features + (gsize) b * dim,
                 sizeof (float) * dim);
        bank_class[n_bank++] = bank_data->class_of[b];
      }
  if (n_bank == 0)
    {
      g_autofree char *shown = g_filename_display_name (bank_data->dir);
      g_set_error (error, AGC_ERROR, AGC_ERROR_INPUT, "%s: no readable images", shown);
      return FALSE;
    }
  const AgcLabelSet *bank_labels = bank_data->labels;
  int n_bank_classes = agc_label_set_n_classes (bank_labels);
  g_autoptr (GPtrArray) names = g_ptr_array_new_with_free_func (g_free);
  for (int c = 0; c < n_bank_classes; c++)
    g_ptr_array_add (names, g_strdup (agc_label_set_class_name (bank_labels, c)));
  g_autofree int *column_of = g_new (int, n_bank_classes);
  init_columns (evaluation, names, column_of);
  g_autofree int *predicted = g_new (int, MAX (data->n_files, 1));
  agc_knn_classify (bank_features, bank_class, n_bank, features, data->n_files, dim, k,
                    temperature, n_bank_classes, predicted);
  for (int i = 0; i < data->n_files; i++)
    {
      if (!ok[i])
        {
          evaluation->n_skipped++;
          continue;
        }
      evaluation->counts[data->class_of[i] * evaluation->n_columns + column_of[predicted[i]]]++;
      evaluation->n_images++;
    }
  return TRUE;
}

int
agc_evaluation_n_images (const AgcEvaluation *evaluation)
{
  return evaluation->n_images;
}

int
agc_evaluation_n_skipped (const AgcEvaluation *evaluation)
{
  return evaluation->n_skipped;
}

int
agc_evaluation_n_correct (const AgcEvaluation *evaluation)
{
  int total = 0;
  for (int r = 0; r < evaluation->n_rows && evaluation->counts; r++)
    total += evaluation->counts[r * evaluation->n_columns + r];
  return total;
}

int
agc_evaluation_class_n_images (const AgcEvaluation *evaluation, int class_index)
{
  g_return_val_if_fail (class_index >= 0 && class_index < evaluation->n_rows, 0);
  int total = 0;
  for (int c = 0; c < evaluation->n_columns; c++)
    total += evaluation->counts[class_index * evaluation->n_columns + c];
  return total;
}

int
agc_evaluation_n_predicted (const AgcEvaluation *evaluation)
{
  return evaluation->n_columns;
}

const char *
agc_evaluation_predicted_name (const AgcEvaluation *evaluation, int predicted)
{
  g_return_val_if_fail (predicted >= 0 && predicted < evaluation->n_columns, NULL);
  return evaluation->column_names->pdata[predicted];
}

int
agc_evaluation_count (const AgcEvaluation *evaluation, int class_index, int predicted)
{
  g_return_val_if_fail (class_index >= 0 && class_index < evaluation->n_rows, 0);
  g_return_val_if_fail (predicted >= 0 && predicted < evaluation->n_columns, 0);
  return evaluation->counts[class_index * evaluation->n_columns + predicted];
}
