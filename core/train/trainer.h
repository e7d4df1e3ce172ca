/* trainer.h — the one training loop of agc_train: epochs, early stopping
 * on the validation loss, cancellation, progress reports, checkpoint files
 * and their fingerprints, and the adapter at the end.  A method (probe,
 * finetune, aligner) is a table of what differs: how the images are made
 * ready, what an epoch does, how its state is saved, which tensors the
 * adapter holds.
 *
 * The run: prepare, judge the starting weights on the validation images
 * (the zero-shot numbers, and the loss a trained epoch must beat), resume
 * from OUT.checkpoint when it has the run's fingerprint, then epochs until
 * n_epochs or until patience epochs brought no lower validation loss; a
 * checkpoint every checkpoint_every epochs, and one when cancelled, so that
 * no step taken is lost.  The best epoch's weights become the adapter. */
#pragma once

#include "agriclip.h"
#include "train/dataset.h"

/* Where a run is: what every checkpoint saves beside the method's state. */
typedef struct
{
  int n_epochs;         /* at most; the progress reports' total (max_epochs) */
  int patience;         /* epochs without a lower validation loss before stopping; 0: never */
  gboolean judged;      /* the validation loss picks the epoch kept (else the last) */
  int epoch;            /* epochs finished */
  int best_epoch;       /* 0: the starting weights */
  double best_val_loss; /* the loss to beat; INFINITY when not judged */
} AgcTrainerRun;

/* Which weights validate judges. */
typedef enum
{
  AGC_TRAINER_START,   /* before training: the zero-shot numbers */
  AGC_TRAINER_CURRENT, /* after the epoch just run */
  AGC_TRAINER_BEST,    /* of best_epoch (after finish) */
} AgcTrainerWeights;

/* A method: self is its own run state, given to every call. */
typedef struct
{
  const char *name; /* "probe": the adapter's method, the checkpoint's agriclip.method */
  /* TRUE: the data folder holds unlabelled photos (no tag folders, no
   * labels.json): prepare gets a dataset with dir only (labels NULL, no
   * files) and lists the images itself; the adapter has no classes. */
  gboolean unlabelled;
  /* Reads the dataset's images, splits them, makes the starting weights:
   * result gets the counts (n_images, n_skipped, n_cached, n_classes,
   * n_train, n_val); images one line per image kept ("image CLASS SHA256"),
   * for the fingerprint.  May change run's n_epochs, patience, judged
   * (judged is cleared after without validation images). */
  gboolean (*prepare) (gpointer self, AgcTrainerRun *run, AgcTrainResult *result,
                       GString *images, AgcDataset *data, GCancellable *cancellable,
                       GError **error);
  /* The balanced validation loss and the share right (NaN without
   * validation images). */
  gboolean (*validate) (gpointer self, AgcTrainerWeights which, double *loss, double *accuracy,
                        GError **error);
  /* The training state of the start, the best weights the starting ones;
   * called again after a checkpoint that could not be read. */
  void (*start) (gpointer self);
  /* Runs epoch run->epoch + 1 (or what is left of it): *train_loss its mean
   * training loss.  Checks cancellable where it can stop, and stops there
   * with AGC_ERROR_CANCELLED. */
  gboolean (*epoch) (gpointer self, const AgcTrainerRun *run, double *train_loss,
                     GCancellable *cancellable, GError **error);
  /* The current weights become the best, of epoch. */
  void (*keep) (gpointer self, int epoch);
  /* After the last epoch, before the best weights are judged and written;
   * may be NULL. */
  void (*finish) (gpointer self);
  /* The adapter: its tensors (views, their names owned by names) and its
   * agriclip.training settings. */
  char *(*adapter) (gpointer self, GArray *views, GPtrArray *names, const char *data_dir);

  /* Checkpoints; all NULL for a method without (then nothing is saved nor
   * resumed). */
  /* The method's lines of the fingerprint, after the shared ones (model,
   * seed, split, learning rate, weight decay, batch). */
  void (*fingerprint) (gpointer self, GString *text);
  /* Optimiser steps taken: a checkpoint on cancelling only when some were
   * taken since the last. */
  gint64 (*steps) (gpointer self);
  gboolean (*checkpoint_write) (gpointer self, const char *path, const AgcTrainerRun *run,
                                const char *fingerprint, GError **error);
  /* Fills self and run's epoch, best_epoch, best_val_loss. */
  gboolean (*checkpoint_read) (gpointer self, const char *path, AgcTrainerRun *run,
                               const char *fingerprint, GError **error);
} AgcTrainerMethod;

/* agc_train with method (params checked, defaults resolved): opens the
 * dataset and runs; identity is the model's.  On success the checkpoint
 * and the temporary files of killed runs are gone. */
gboolean agc_trainer_run (const AgcTrainerMethod *method, gpointer self, AgcModel *model,
                          const char *identity, const char *data_dir, const char *out_path,
                          const AgcTrainParams *params, AgcTrainResult *result,
                          GCancellable *cancellable, GError **error);
