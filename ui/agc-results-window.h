/* agc-results-window.h — what an image was labelled as: its thumbnail, the
 * most probable labels with probability bars, the model and label set that
 * gave them, and what to do with them.
 *
 * The window keeps the model and the image's embedding, so "Label again"
 * with another label set (or a linear-probe adapter) only encodes that
 * set's prompts, on a worker thread, and never the image again.  "Add as
 * text layer" and "Add as keywords" are signals: the program showing the
 * window (the GIMP plug-in) decides what they do.  "Copy as text" puts the
 * labels on the clipboard.  Non-modal; its size is remembered
 * (agc-ui-settings.h). */
#pragma once

#include <gtk/gtk.h>

#include "agriclip.h"

G_BEGIN_DECLS

#define AGC_TYPE_RESULTS_WINDOW (agc_results_window_get_type ())
G_DECLARE_FINAL_TYPE (AgcResultsWindow, agc_results_window, AGC, RESULTS_WINDOW, GtkWindow)

/* model (taken: freed with the window) encoded the image into
 * image_embedding[E] (copied, L2-normalised); model_name is how the model
 * is shown; thumbnail (may be NULL; a reference is taken) is what was
 * classified; top_k labels are listed.  Show results with
 * agc_results_window_show_label_set or _show_adapter. */
GtkWidget *agc_results_window_new (AgcModel *model, const char *model_name,
                                   const float *image_embedding, GdkPixbuf *thumbnail,
                                   int top_k);

/* Lists the top labels of classifier (taken) over labels (taken), whose
 * name (file or id) is labels_name. */
void agc_results_window_show_label_set (AgcResultsWindow *self, AgcLabelSet *labels,
                                        const char *labels_name, AgcClassifier *classifier);
/* The same for the classes of an adapter (taken).  An adapter that changes
 * the image encoder (finetune, aligner) means that the kept embedding is
 * the adapted model's: "Label again" is then turned off. */
void agc_results_window_show_adapter (AgcResultsWindow *self, AgcAdapter *adapter,
                                      const char *adapter_name, AgcClassifier *classifier);

/* Labels the kept embedding again with the label set file_or_id (a file
 * or an installed set's id), or with the classes of a linear-probe adapter
 * file, on a worker thread; emits "relabelled" when done (its message
 * argument is NULL on success, else what went wrong, also shown in the
 * window). */
void agc_results_window_relabel (AgcResultsWindow *self, const char *file_or_id);
void agc_results_window_relabel_adapter (AgcResultsWindow *self, const char *adapter_path);

/* The listed labels as text, one "Display name 85%" per line (what "Copy
 * as text" copies and what "add-text-layer" carries) (g_free). */
char *agc_results_window_get_text (AgcResultsWindow *self);
/* The listed labels' export names, most probable first (g_strfreev). */
char **agc_results_window_get_labels (AgcResultsWindow *self);
/* The listed probabilities, most probable first; n_labels set (g_free). */
float *agc_results_window_get_probabilities (AgcResultsWindow *self, int *n_labels);

G_END_DECLS
