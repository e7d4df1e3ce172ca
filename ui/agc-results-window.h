/* agc-results-window.h — what an image was labelled as: its thumbnail, the
 * most probable labels with probability bars, the model and label set that
 * gave them, and what to do with them.
 *
 * Several layers labelled each on its own are items of one window, picked
 * in its "Result for" list.  The window keeps the model and the items'
 * embeddings, so "Label again"
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

/* model (taken: freed with the window) is how the items were encoded;
 * model_name is how the model is shown; top_k labels are listed.  Add what
 * was labelled with agc_results_window_add_item, then show results with
 * agc_results_window_show_label_set or _show_adapter. */
GtkWidget *agc_results_window_new (AgcModel *model, const char *model_name, int top_k);

/* One labelled thing: the image, or one of several layers labelled each on
 * its own.  name (a layer's) is how the "Result for" picker, shown from the
 * second item on, lists it; image_embedding[E] (copied, L2-normalised);
 * thumbnail (may be NULL; a reference is taken) is what was classified.
 * Returns the item's number (0, 1, …).  Every item is labelled again
 * together; the actions and the getters below with item -1 concern the
 * item shown. */
int agc_results_window_add_item (AgcResultsWindow *self, const char *name,
                                 const float *image_embedding, GdkPixbuf *thumbnail);
int agc_results_window_get_n_items (AgcResultsWindow *self);
/* The item shown (-1 when there is none); showing another one. */
int agc_results_window_get_item (AgcResultsWindow *self);
void agc_results_window_set_item (AgcResultsWindow *self, int item);

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

/* An item's labels as text, one "Display name 85%" per line, display names
 * in the user's language (what "Copy as text" copies and what
 * "add-text-layer" carries) (g_free). */
char *agc_results_window_get_text (AgcResultsWindow *self, int item);
/* An item's listed labels' export names, most probable first (g_strfreev). */
char **agc_results_window_get_labels (AgcResultsWindow *self, int item);
/* An item's listed probabilities, most probable first; n_labels set (g_free). */
float *agc_results_window_get_probabilities (AgcResultsWindow *self, int item, int *n_labels);
/* An item's probabilities of every class [n_classes] of the current label
 * set or adapter (owned by the window, valid until the next relabelling). */
const float *agc_results_window_get_class_probabilities (AgcResultsWindow *self, int item);
/* What the listed labels came from: the label set's file or id or the
 * adapter's file as given; labels and adapter (either may be NULL) are set
 * to the window's own (one of them NULL). */
const char *agc_results_window_get_source (AgcResultsWindow *self, const AgcLabelSet **labels,
                                           const AgcAdapter **adapter);

G_END_DECLS
