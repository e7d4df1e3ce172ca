/* agc-training-window.h — teaching a model the classes of a folder of
 * tagged photos (agriclip.h, "training"), watched as it happens: the
 * model (ui's model chooser), the folder with its classes (images and
 * files no image loader recognises, per class), the method (the
 * library's list, agc_train_methods) and its options with the library's
 * defaults (DINO's own shown only for DINO, which takes any folder of
 * photos, tags or not), a base adapter to train on top of, a live plot of
 * the losses and the validation accuracy, per-epoch progress (DINO: per
 * step, with the time left), Cancel, and at the end a summary with each
 * class's accuracy and the confusion matrix (tagged folders only).
 *
 * Training runs on a worker thread (agc_train) that reports through
 * g_idle_add; after each epoch it waits for the window to have shown it
 * (so the plot misses none and Cancel takes effect at the next epoch, or
 * DINO's next step).
 * Cancel stops at agc_train's next safe point: no adapter is written and
 * the checkpoint OUT.checkpoint stays, from which "Train" continues.  The
 * adapter is written under agc_ui_adapters_dir() unless another file is
 * chosen, and is added to the recently trained adapters
 * (agc_ui_recent_adapters), which the label dialogs list. */
#pragma once

#include <gtk/gtk.h>

#include "agriclip.h"

G_BEGIN_DECLS

#define AGC_TYPE_TRAINING_WINDOW (agc_training_window_get_type ())
G_DECLARE_FINAL_TYPE (AgcTrainingWindow, agc_training_window, AGC, TRAINING_WINDOW, GtkWindow)

GtkWidget *agc_training_window_new (void);

/* Selects the model folder (as the model chooser does). */
gboolean agc_training_window_set_model (AgcTrainingWindow *self, const char *model_dir);
/* Shows the classes of data_dir, listed on a worker thread; "scanned"
 * follows with NULL or what is wrong with the folder.  The adapter file
 * becomes agc_ui_adapters_dir()/FOLDER-NAME.safetensors unless one was set. */
void agc_training_window_set_folder (AgcTrainingWindow *self, const char *data_dir);
/* The folder shown, or NULL (owned by the window). */
const char *agc_training_window_get_folder (AgcTrainingWindow *self);
void agc_training_window_set_adapter_path (AgcTrainingWindow *self, const char *path);
char *agc_training_window_get_adapter_path (AgcTrainingWindow *self); /* g_free */
/* The settings as the window shows them (callbacks unset). */
AgcTrainParams agc_training_window_get_params (AgcTrainingWindow *self);
void agc_training_window_set_params (AgcTrainingWindow *self, const AgcTrainParams *params);

/* Starts training (as "Train" does); "epoch" after each epoch shown,
 * "finished" at the end with NULL or what went wrong. */
void agc_training_window_start (AgcTrainingWindow *self);
/* Stops training at the next safe point (as Cancel does). */
void agc_training_window_cancel (AgcTrainingWindow *self);
gboolean agc_training_window_is_busy (AgcTrainingWindow *self);
/* The numbers of the last finished training (NULL before one). */
const AgcTrainResult *agc_training_window_get_result (AgcTrainingWindow *self);
/* The evaluation of the written adapter on the whole folder (NULL before). */
const AgcEvaluation *agc_training_window_get_evaluation (AgcTrainingWindow *self);

G_END_DECLS
