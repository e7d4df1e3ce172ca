/* train-common.h — what every training method of agc_train shares: the
 * progress calls, the seeded stratified split with its class weights, the
 * adapter's metrics and settings JSON, and the end of a successful run.
 * train.c checks the settings and picks the method; the trainer
 * (trainer.h) runs it with the method's table (probe-train.c,
 * finetune-train.c, aligner-train.c). */
#pragma once

#include "agriclip.h"
#include "train/dataset.h"

#include <json-glib/json-glib.h>

/* Calls params->progress, if any. */
void agc_train_report (const AgcTrainParams *params, AgcTrainStage stage, int done, int total,
                       double train_loss, double val_loss, double val_accuracy);

/* A problem that does not stop training (an unreadable image, a damaged
 * checkpoint not resumed from) to params->report with params->user_data. */
void agc_train_report_problem (const AgcTrainParams *params, const GError *problem);

/* Callbacks for agc_embed_files_cached () and agc_encode_files_cached (),
 * whose one user_data is then the AgcTrainParams: progress as the embedding
 * stage, unreadable images to params->report with params->user_data. */
void agc_train_on_embed_progress (int done, int total, gpointer params);
void agc_train_on_embed_problem (const GError *problem, gpointer params);

/* AGC_ERROR_INPUT naming the tag folder when a class of data has none of
 * the n readable images of classes class_of[n]. */
gboolean agc_train_check_classes (const AgcDataset *data, const int *class_of, int n,
                                  GError **error);

/* The split of n readable images of classes class_of[n] into training and
 * validation (agc_dataset_split: seeded, per class, every class keeps a
 * training image), as image indices in image order, and the class weights
 * that make every class count the same. */
typedef struct
{
  int n_train;
  int *train;           /* [n_train] */
  int n_val;
  int *val;             /* [n_val] */
  float *train_weights; /* [C] n_train / (C · n_train_c) */
  float *val_weights;   /* [C] 1 / n_val_c: the loss is the mean of the per-class means */
} AgcTrainSplit;

void agc_train_split (AgcTrainSplit *split, const int *class_of, int n, int n_classes,
                      double val_fraction, guint64 seed);
void agc_train_split_clear (AgcTrainSplit *split);

/* JSON helpers that write null for a NaN (JSON has none). */
void agc_json_add_number (JsonBuilder *b, const char *name, double value);
void agc_json_add_int (JsonBuilder *b, const char *name, gint64 value);
void agc_json_add_string (JsonBuilder *b, const char *name, const char *value);

/* agriclip.metrics: the numbers of result. */
char *agc_train_metrics_json (const AgcTrainResult *result);

/* agriclip.training: the settings every method has (seed, data folder
 * name, split, learning rate, weight decay, batch, epochs, patience), the
 * optimiser and loss; add (may be NULL) appends the method's own members. */
typedef void (*AgcTrainJsonAdd) (JsonBuilder *b, const AgcTrainParams *params);
char *agc_train_settings_json (const AgcTrainParams *params, const char *data_dir,
                               const char *optimizer, const char *loss, AgcTrainJsonAdd add);

/* After the adapter is safely written: removes out_path.checkpoint and the
 * temporary files of killed runs. */
void agc_train_clean_up (const char *out_path);

/* A method, with agc_train's contract; params are checked and their
 * defaults resolved (learning_rate > 0). */
typedef gboolean AgcTrainMethodRun (AgcModel *model, const char *data_dir, const char *out_path,
                                    const AgcTrainParams *params, AgcTrainResult *result,
                                    GCancellable *cancellable, GError **error);

AgcTrainMethodRun agc_train_probe, agc_train_finetune, agc_train_dino, agc_train_contrastive,
  agc_train_aligner;
