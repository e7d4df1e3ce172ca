/* agc-results-window.c — the results window, see agc-results-window.h. */
#include "agc-results-window.h"

#include "agc-close-on-escape.h"
#include "agc-ui-settings.h"

#include <glib/gi18n-lib.h>
#include <string.h>

/* Side of the thumbnail, in logical pixels (GTK doubles them at scale 2). */
#define THUMBNAIL_SIZE 160

struct _AgcResultsWindow
{
  GtkWindow parent_instance;

  AgcModel *model;
  char *model_name;
  int top_k;
  GPtrArray *items; /* of Item: what was labelled, one per layer */
  int current;      /* the item shown */

  /* What the listed labels came from: a label set or an adapter. */
  AgcLabelSet *labels;
  AgcAdapter *adapter;
  AgcClassifier *classifier;
  char *labels_name;

  GCancellable *cancellable; /* of the running relabelling, or NULL */
  gboolean disposed;         /* a relabelling that ends later finds no widgets */

  GtkWidget *item_box, *item_combo;
  GtkWidget *picture, *source_label, *list, *status, *spinner;
  GtkWidget *relabel_box, *set_combo, *relabel_button;
  GtkWidget *layer_button, *keywords_button, *copy_button;
};

enum
{
  SIGNAL_ADD_TEXT_LAYER,
  SIGNAL_ADD_KEYWORDS,
  SIGNAL_RELABELLED,
  N_SIGNALS
};
static guint signals[N_SIGNALS];

G_DEFINE_FINAL_TYPE (AgcResultsWindow, agc_results_window, GTK_TYPE_WINDOW)

/* One labelled thing (an image or a layer) and its current result. */
typedef struct
{
  char *name;
  float *embedding; /* [E], L2-normalised */
  GdkPixbuf *thumbnail;
  float *probs; /* [n_classes] */
  int *top;     /* [n_top] class indices, most probable first */
  int n_top;
} Item;

static void
item_free (Item *item)
{
  g_free (item->name);
  g_free (item->embedding);
  g_clear_object (&item->thumbnail);
  g_free (item->probs);
  g_free (item->top);
  g_free (item);
}

/* Item number item, or the shown one when item is negative. */
static Item *
item_at (AgcResultsWindow *self, int item)
{
  return g_ptr_array_index (self->items, item < 0 ? self->current : item);
}

static gboolean
valid_item (AgcResultsWindow *self, int item)
{
  return item < (int) self->items->len && (item >= 0 || self->items->len > 0);
}

/* ---- reading the current result ----------------------------------------- */

static const char *
class_name (AgcResultsWindow *self, int class_index)
{
  return self->adapter ? agc_adapter_class_name (self->adapter, class_index)
                       : agc_label_set_class_name (self->labels, class_index);
}

static const char *
class_display_name (AgcResultsWindow *self, int class_index)
{
  return self->adapter ? agc_adapter_class_display_name (self->adapter, class_index)
                       : agc_label_set_class_translated_name (self->labels, class_index);
}

char *
agc_results_window_get_text (AgcResultsWindow *self, int item)
{
  g_return_val_if_fail (AGC_IS_RESULTS_WINDOW (self) && valid_item (self, item), NULL);
  const Item *it = item_at (self, item);
  GString *text = g_string_new (NULL);
  for (int k = 0; k < it->n_top; k++)
    g_string_append_printf (text, "%s%s %.0f%%", k ? "\n" : "",
                            class_display_name (self, it->top[k]),
                            100.0 * it->probs[it->top[k]]);
  return g_string_free (text, FALSE);
}

char **
agc_results_window_get_labels (AgcResultsWindow *self, int item)
{
  g_return_val_if_fail (AGC_IS_RESULTS_WINDOW (self) && valid_item (self, item), NULL);
  const Item *it = item_at (self, item);
  char **labels = g_new0 (char *, it->n_top + 1);
  for (int k = 0; k < it->n_top; k++)
    labels[k] = g_strdup (class_name (self, it->top[k]));
  return labels;
}

float *
agc_results_window_get_probabilities (AgcResultsWindow *self, int item, int *n_labels)
{
  g_return_val_if_fail (AGC_IS_RESULTS_WINDOW (self) && valid_item (self, item), NULL);
  const Item *it = item_at (self, item);
  float *probs = g_new (float, MAX (it->n_top, 1));
  for (int k = 0; k < it->n_top; k++)
    probs[k] = it->probs[it->top[k]];
  *n_labels = it->n_top;
  return probs;
}

const float *
agc_results_window_get_class_probabilities (AgcResultsWindow *self, int item)
{
  g_return_val_if_fail (AGC_IS_RESULTS_WINDOW (self) && valid_item (self, item), NULL);
  return item_at (self, item)->probs;
}

const char *
agc_results_window_get_source (AgcResultsWindow *self, const AgcLabelSet **labels,
                               const AgcAdapter **adapter)
{
  g_return_val_if_fail (AGC_IS_RESULTS_WINDOW (self), NULL);
  if (labels)
    *labels = self->labels;
  if (adapter)
    *adapter = self->adapter;
  return self->labels_name;
}

int
agc_results_window_get_n_items (AgcResultsWindow *self)
{
  g_return_val_if_fail (AGC_IS_RESULTS_WINDOW (self), 0);
  return (int) self->items->len;
}

int
agc_results_window_get_item (AgcResultsWindow *self)
{
  g_return_val_if_fail (AGC_IS_RESULTS_WINDOW (self), -1);
  return self->items->len ? self->current : -1;
}

void
agc_results_window_set_item (AgcResultsWindow *self, int item)
{
  g_return_if_fail (AGC_IS_RESULTS_WINDOW (self) && item >= 0 && valid_item (self, item));
  gtk_combo_box_set_active (GTK_COMBO_BOX (self->item_combo), item);
}

/* ---- showing a result --------------------------------------------------- */

static GtkWidget *
label_row (const char *display, float p)
{
  GtkWidget *box = gtk_box_new (GTK_ORIENTATION_VERTICAL, 2);
  GtkWidget *name = gtk_label_new (display);
  gtk_label_set_xalign (GTK_LABEL (name), 0.0f);
  gtk_label_set_ellipsize (GTK_LABEL (name), PANGO_ELLIPSIZE_END);
  GtkWidget *bar = gtk_progress_bar_new ();
  gtk_progress_bar_set_fraction (GTK_PROGRESS_BAR (bar), p);
  g_autofree char *percent = g_strdup_printf ("%.0f%%", 100.0 * p);
  gtk_progress_bar_set_text (GTK_PROGRESS_BAR (bar), percent);
  gtk_progress_bar_set_show_text (GTK_PROGRESS_BAR (bar), TRUE);
  gtk_container_add (GTK_CONTAINER (box), name);
  gtk_container_add (GTK_CONTAINER (box), bar);
  g_object_set (box, "margin", 6, NULL);

  GtkWidget *row = gtk_list_box_row_new ();
  gtk_container_add (GTK_CONTAINER (row), box);
  /* Translators: a label and its probability, read by screen readers */
  g_autofree char *spoken = g_strdup_printf (_("%s: %.0f percent"), display, 100.0 * p);
  atk_object_set_name (gtk_widget_get_accessible (row), spoken);
  atk_object_set_name (gtk_widget_get_accessible (bar), spoken);
  return row;
}

static void
set_status (AgcResultsWindow *self, const char *message)
{
  gtk_label_set_text (GTK_LABEL (self->status), message ? message : "");
  gtk_widget_set_visible (self->status, message != NULL);
}

/* The shown item's labels in the list, its thumbnail in the picture. */
static void
show_item (AgcResultsWindow *self)
{
  GList *old = gtk_container_get_children (GTK_CONTAINER (self->list));
  for (GList *l = old; l; l = l->next)
    gtk_widget_destroy (l->data);
  g_list_free (old);
  const Item *it = self->items->len ? item_at (self, -1) : NULL;
  int n_top = it && it->probs ? it->n_top : 0;
  for (int k = 0; k < n_top; k++)
    gtk_container_add (GTK_CONTAINER (self->list),
                       label_row (class_display_name (self, it->top[k]),
                                  it->probs[it->top[k]]));
  gtk_widget_show_all (self->list);
  gtk_widget_queue_draw (self->picture);
  gboolean any = n_top > 0;
  gtk_widget_set_sensitive (self->layer_button, any);
  gtk_widget_set_sensitive (self->keywords_button, any);
  gtk_widget_set_sensitive (self->copy_button, any);
}

static void
classify_item (AgcResultsWindow *self, Item *item)
{
  if (!self->classifier)
    return;
  int n_classes = agc_classifier_n_classes (self->classifier);
  g_free (item->probs);
  g_free (item->top);
  item->probs = g_new (float, n_classes);
  item->top = g_new (int, n_classes);
  agc_classifier_probabilities (self->classifier, item->embedding, item->probs);
  item->n_top = agc_top_k (item->probs, n_classes, self->top_k, item->top);
}

/* Drops the current result's sources and keeps the new ones (all taken). */
static void
replace_result (AgcResultsWindow *self, AgcLabelSet *labels, AgcAdapter *adapter,
                const char *labels_name, AgcClassifier *classifier)
{
  g_clear_pointer (&self->labels, agc_label_set_free);
  g_clear_pointer (&self->adapter, agc_adapter_free);
  g_clear_pointer (&self->classifier, agc_classifier_free);
  g_free (self->labels_name);
  self->labels = labels;
  self->adapter = adapter;
  self->classifier = classifier;
  self->labels_name = g_strdup (labels_name);

  for (guint i = 0; i < self->items->len; i++)
    classify_item (self, g_ptr_array_index (self->items, i));
  show_item (self);

  // A set opened from a file joins the installed ones in the picker.
  if (labels && labels_name
      && !gtk_combo_box_set_active_id (GTK_COMBO_BOX (self->set_combo), labels_name))
    {
      gtk_combo_box_text_append (GTK_COMBO_BOX_TEXT (self->set_combo), labels_name,
                                 agc_label_set_title (labels));
      gtk_combo_box_set_active_id (GTK_COMBO_BOX (self->set_combo), labels_name);
      gtk_widget_set_sensitive (self->relabel_button, TRUE);
    }

  const char *title = labels ? agc_label_set_title (labels) : labels_name;
  g_autofree char *source = g_markup_printf_escaped (
    /* Translators: the model and the label set (or adapter) that gave the labels */
    _("<b>Model:</b> %s\n<b>Labels:</b> %s"), self->model_name, title);
  gtk_label_set_markup (GTK_LABEL (self->source_label), source);
  gtk_widget_set_tooltip_text (self->source_label, labels_name);
}

void
agc_results_window_show_label_set (AgcResultsWindow *self, AgcLabelSet *labels,
                                   const char *labels_name, AgcClassifier *classifier)
{
  g_return_if_fail (AGC_IS_RESULTS_WINDOW (self) && labels && classifier);
  replace_result (self, labels, NULL, labels_name, classifier);
}

void
agc_results_window_show_adapter (AgcResultsWindow *self, AgcAdapter *adapter,
                                 const char *adapter_name, AgcClassifier *classifier)
{
  g_return_if_fail (AGC_IS_RESULTS_WINDOW (self) && adapter && classifier);
  // a head alone: a probe not stacked on an adapter that changes the encoder
  gboolean probe = agc_adapter_n_tensors (adapter) == 0;
  replace_result (self, NULL, adapter, adapter_name, classifier);
  if (!probe)
    {
      gtk_widget_set_sensitive (self->relabel_box, FALSE);
      set_status (self, _("This adapter changed the image encoder: to label with other "
                          "classes, label the image again from the start"));
    }
}

/* ---- labelling again on a worker thread ----------------------------------- */

typedef struct
{
  AgcModel *model; /* the window's: only this thread uses it while it runs */
  char *name;      /* label-set file or id, or adapter file */
  gboolean is_adapter;
  AgcLabelSet *labels;
  AgcAdapter *adapter;
  AgcClassifier *classifier;
} Relabelling;

static void
relabelling_free (Relabelling *r)
{
  agc_label_set_free (r->labels);
  agc_adapter_free (r->adapter);
  agc_classifier_free (r->classifier);
  g_free (r->name);
  g_free (r);
}

static gboolean
open_adapter (Relabelling *r, GError **error)
{
  r->adapter = agc_adapter_load (r->name, error);
  if (!r->adapter || !agc_adapter_check_model (r->adapter, r->model, error))
    return FALSE;
  // Other methods change the image encoder: the kept embedding would be stale.
  if (agc_adapter_n_tensors (r->adapter) > 0) // a probe stacked on one, too
    {
      g_set_error (error, AGC_ERROR, AGC_ERROR_INPUT,
                   _("%s: a %s adapter changes the image encoder; label again without "
                     "re-encoding works with probe adapters only"),
                   r->name, agc_adapter_method (r->adapter));
      return FALSE;
    }
  r->classifier = agc_classifier_new_from_adapter (r->model, r->adapter, error);
  return r->classifier != NULL;
}

static void
relabel_thread (GTask *task, gpointer source, gpointer data, GCancellable *cancellable)
{
  (void) source;
  Relabelling *r = data;
  GError *error = NULL;
  gboolean ok;
  if (r->is_adapter)
    ok = open_adapter (r, &error);
  else
    {
      r->labels = agc_label_set_open (r->name, &error);
      r->classifier = r->labels ? agc_classifier_new (r->model, r->labels, cancellable, &error)
                                : NULL;
      ok = r->classifier != NULL;
    }
  if (ok)
    g_task_return_boolean (task, TRUE);
  else
    g_task_return_error (task, error);
}

static void
set_busy (AgcResultsWindow *self, gboolean busy)
{
  gtk_widget_set_sensitive (self->relabel_box, !busy);
  gtk_widget_set_visible (self->spinner, busy);
  if (busy)
    gtk_spinner_start (GTK_SPINNER (self->spinner));
  else
    gtk_spinner_stop (GTK_SPINNER (self->spinner));
}

static void
relabel_done (GObject *source, GAsyncResult *result, gpointer user_data)
{
  (void) user_data;
  AgcResultsWindow *self = AGC_RESULTS_WINDOW (source);
  Relabelling *r = g_task_get_task_data (G_TASK (result));
  GError *error = NULL;
  g_clear_object (&self->cancellable);
  if (self->disposed)
    return;
  set_busy (self, FALSE);
  if (g_task_propagate_boolean (G_TASK (result), &error))
    {
      replace_result (self, g_steal_pointer (&r->labels), g_steal_pointer (&r->adapter), r->name,
                      g_steal_pointer (&r->classifier));
      set_status (self, NULL);
      g_signal_emit (self, signals[SIGNAL_RELABELLED], 0, NULL);
    }
  else
    {
      set_status (self, error->message);
      g_signal_emit (self, signals[SIGNAL_RELABELLED], 0, error->message);
      g_error_free (error);
    }
}

static void
relabel_start (AgcResultsWindow *self, const char *name, gboolean is_adapter)
{
  g_return_if_fail (AGC_IS_RESULTS_WINDOW (self) && name != NULL);
  g_return_if_fail (self->cancellable == NULL); // one at a time: they share the model
  Relabelling *r = g_new0 (Relabelling, 1);
  r->model = self->model;
  r->name = g_strdup (name);
  r->is_adapter = is_adapter;
  self->cancellable = g_cancellable_new ();
  set_busy (self, TRUE);
  set_status (self, _("Encoding the label prompts…"));
  GTask *task = g_task_new (self, self->cancellable, relabel_done, NULL);
  g_task_set_task_data (task, r, (GDestroyNotify) relabelling_free);
  g_task_run_in_thread (task, relabel_thread);
  g_object_unref (task);
}

void
agc_results_window_relabel (AgcResultsWindow *self, const char *file_or_id)
{
  relabel_start (self, file_or_id, FALSE);
}

void
agc_results_window_relabel_adapter (AgcResultsWindow *self, const char *adapter_path)
{
  relabel_start (self, adapter_path, TRUE);
}

/* ---- actions ------------------------------------------------------------ */

static void
on_relabel_clicked (GtkButton *button, AgcResultsWindow *self)
{
  (void) button;
  const char *id = gtk_combo_box_get_active_id (GTK_COMBO_BOX (self->set_combo));
  if (id)
    agc_results_window_relabel (self, id);
}

static char *
choose_file (AgcResultsWindow *self, const char *title, const char *pattern,
             const char *pattern_name)
{
  GtkFileChooserNative *chooser = gtk_file_chooser_native_new (
    title, GTK_WINDOW (self), GTK_FILE_CHOOSER_ACTION_OPEN, _("_Open"), _("_Cancel"));
  GtkFileFilter *filter = gtk_file_filter_new ();
  gtk_file_filter_add_pattern (filter, pattern);
  gtk_file_filter_set_name (filter, pattern_name);
  gtk_file_chooser_add_filter (GTK_FILE_CHOOSER (chooser), filter);
  char *path = NULL;
  if (gtk_native_dialog_run (GTK_NATIVE_DIALOG (chooser)) == GTK_RESPONSE_ACCEPT)
    path = gtk_file_chooser_get_filename (GTK_FILE_CHOOSER (chooser));
  g_object_unref (chooser);
  return path;
}

static void
on_open_set_clicked (GtkButton *button, AgcResultsWindow *self)
{
  (void) button;
  g_autofree char *path = choose_file (self, _("Label with a label-set file"), "*.json",
                                       _("Label sets (*.json)"));
  if (path)
    agc_results_window_relabel (self, path);
}

static void
on_adapter_clicked (GtkButton *button, AgcResultsWindow *self)
{
  (void) button;
  g_autofree char *path = choose_file (self, _("Label with an adapter"), "*.safetensors",
                                       _("Adapters (*.safetensors)"));
  if (path)
    agc_results_window_relabel_adapter (self, path);
}

static void
on_layer_clicked (GtkButton *button, AgcResultsWindow *self)
{
  (void) button;
  g_autofree char *text = agc_results_window_get_text (self, -1);
  g_signal_emit (self, signals[SIGNAL_ADD_TEXT_LAYER], 0, text);
}

static void
on_keywords_clicked (GtkButton *button, AgcResultsWindow *self)
{
  (void) button;
  g_auto (GStrv) labels = agc_results_window_get_labels (self, -1);
  g_signal_emit (self, signals[SIGNAL_ADD_KEYWORDS], 0, labels);
}

static void
on_copy_clicked (GtkButton *button, AgcResultsWindow *self)
{
  (void) button;
  g_autofree char *text = agc_results_window_get_text (self, -1);
  GtkClipboard *clipboard = gtk_widget_get_clipboard (GTK_WIDGET (self),
                                                      GDK_SELECTION_CLIPBOARD);
  gtk_clipboard_set_text (clipboard, text, -1);
  gtk_clipboard_store (clipboard); // outlives a plug-in process that exits next
  set_status (self, _("Copied"));
}

/* ---- construction ---------------------------------------------------------- */

static gboolean
draw_thumbnail (GtkWidget *area, cairo_t *cr, AgcResultsWindow *self)
{
  GdkPixbuf *thumbnail = self->items->len ? item_at (self, -1)->thumbnail : NULL;
  if (!thumbnail)
    return FALSE;
  // Drawn through cairo, scaled to fit: at GDK_SCALE=2 the surface has twice
  // the device pixels and the thumbnail keeps its detail.
  double w = gtk_widget_get_allocated_width (area), h = gtk_widget_get_allocated_height (area);
  double pw = gdk_pixbuf_get_width (thumbnail), ph = gdk_pixbuf_get_height (thumbnail);
  double scale = MIN (w / pw, h / ph);
  cairo_translate (cr, (w - pw * scale) / 2, (h - ph * scale) / 2);
  cairo_scale (cr, scale, scale);
  gdk_cairo_set_source_pixbuf (cr, thumbnail, 0, 0);
  cairo_pattern_set_filter (cairo_get_source (cr), CAIRO_FILTER_GOOD);
  cairo_paint (cr);
  return FALSE;
}

/* A button with a mnemonic and the accessible name its label reads as. */
static GtkWidget *
action_button (const char *mnemonic_label, const char *tooltip, GCallback clicked,
               AgcResultsWindow *self)
{
  GtkWidget *button = gtk_button_new_with_mnemonic (mnemonic_label);
  gtk_widget_set_tooltip_text (button, tooltip);
  if (clicked)
    g_signal_connect (button, "clicked", clicked, self);
  g_autofree char *plain = g_strdup (mnemonic_label);
  char *w = plain;
  for (const char *r = plain; *r; r++)
    if (*r != '_')
      *w++ = *r;
  *w = '\0';
  atk_object_set_name (gtk_widget_get_accessible (button), plain);
  return button;
}

static void
fill_set_combo (AgcResultsWindow *self)
{
  g_auto (GStrv) ids = agc_label_set_list_installed ();
  for (int i = 0; ids[i]; i++)
    {
      AgcLabelSet *set = agc_label_set_open (ids[i], NULL);
      gtk_combo_box_text_append (GTK_COMBO_BOX_TEXT (self->set_combo), ids[i],
                                 set ? agc_label_set_title (set) : ids[i]);
      agc_label_set_free (set);
    }
  gtk_combo_box_set_active (GTK_COMBO_BOX (self->set_combo), 0);
  gtk_widget_set_sensitive (self->relabel_button, ids[0] != NULL);
}

static GtkWidget *
relabel_row (AgcResultsWindow *self)
{
  GtkWidget *box = gtk_box_new (GTK_ORIENTATION_HORIZONTAL, 6);
  GtkWidget *label = gtk_label_new_with_mnemonic (_("Label again _with:"));
  self->set_combo = gtk_combo_box_text_new ();
  /* long set titles are ellipsized: the window's width stays the user's */
  g_autoptr (GList) cells = gtk_cell_layout_get_cells (GTK_CELL_LAYOUT (self->set_combo));
  if (cells)
    g_object_set (cells->data, "ellipsize", PANGO_ELLIPSIZE_END, "width-chars", 16, NULL);
  gtk_label_set_mnemonic_widget (GTK_LABEL (label), self->set_combo);
  atk_object_set_name (gtk_widget_get_accessible (self->set_combo), _("Label set"));
  self->relabel_button = action_button (_("Label a_gain"),
                                        _("Label the same image with the chosen label set, "
                                          "without encoding it again"),
                                        G_CALLBACK (on_relabel_clicked), self);
  fill_set_combo (self);
  gtk_container_add (GTK_CONTAINER (box), label);
  gtk_box_pack_start (GTK_BOX (box), self->set_combo, TRUE, TRUE, 0);
  gtk_container_add (GTK_CONTAINER (box), self->relabel_button);
  gtk_container_add (GTK_CONTAINER (box),
                     action_button (_("Label set _file…"),
                                    _("Label the same image with a label-set file"),
                                    G_CALLBACK (on_open_set_clicked), self));
  gtk_container_add (GTK_CONTAINER (box),
                     action_button (_("A_dapter…"),
                                    _("Label the same image with the classes of a probe "
                                      "adapter trained for this model"),
                                    G_CALLBACK (on_adapter_clicked), self));
  return box;
}

static GtkWidget *
actions_row (AgcResultsWindow *self)
{
  GtkWidget *box = gtk_button_box_new (GTK_ORIENTATION_HORIZONTAL);
  gtk_button_box_set_layout (GTK_BUTTON_BOX (box), GTK_BUTTONBOX_END);
  gtk_box_set_spacing (GTK_BOX (box), 6);
  self->layer_button = action_button (_("Add as text _layer"),
                                      _("Add a text layer with these labels"),
                                      G_CALLBACK (on_layer_clicked), self);
  self->keywords_button = action_button (_("Add as _keywords"),
                                         _("Add the labels to the image's keywords "
                                           "(Xmp.dc.subject), kept when exporting"),
                                         G_CALLBACK (on_keywords_clicked), self);
  self->copy_button = action_button (_("Cop_y as text"), _("Copy the labels to the clipboard"),
                                     G_CALLBACK (on_copy_clicked), self);
  GtkWidget *close = action_button (_("_Close"), _("Close this window"), NULL, self);
  g_signal_connect_swapped (close, "clicked", G_CALLBACK (gtk_window_close), self);
  gtk_container_add (GTK_CONTAINER (box), self->layer_button);
  gtk_container_add (GTK_CONTAINER (box), self->keywords_button);
  gtk_container_add (GTK_CONTAINER (box), self->copy_button);
  gtk_container_add (GTK_CONTAINER (box), close);
  gtk_button_box_set_child_secondary (GTK_BUTTON_BOX (box), close, FALSE);
  return box;
}

static void
on_item_changed (GtkComboBox *combo, AgcResultsWindow *self)
{
  int active = gtk_combo_box_get_active (combo);
  if (active < 0 || active >= (int) self->items->len)
    return;
  self->current = active;
  show_item (self);
}

/* "Result for: [layer]", shown when there is more than one thing labelled. */
static GtkWidget *
item_row (AgcResultsWindow *self)
{
  GtkWidget *box = gtk_box_new (GTK_ORIENTATION_HORIZONTAL, 6);
  GtkWidget *label = gtk_label_new_with_mnemonic (_("Res_ult for:"));
  self->item_combo = gtk_combo_box_text_new ();
  gtk_label_set_mnemonic_widget (GTK_LABEL (label), self->item_combo);
  atk_object_set_name (gtk_widget_get_accessible (self->item_combo), _("Result for"));
  gtk_widget_set_tooltip_text (self->item_combo,
                               _("Each selected layer was labelled on its own: the labels, "
                                 "the picture and the actions below are this layer's"));
  g_signal_connect (self->item_combo, "changed", G_CALLBACK (on_item_changed), self);
  gtk_container_add (GTK_CONTAINER (box), label);
  gtk_box_pack_start (GTK_BOX (box), self->item_combo, TRUE, TRUE, 0);
  return box;
}

static void
agc_results_window_init (AgcResultsWindow *self)
{
  self->items = g_ptr_array_new_with_free_func ((GDestroyNotify) item_free);
  gtk_window_set_title (GTK_WINDOW (self), _("AgriCLIP: Results"));
  gtk_window_set_default_size (GTK_WINDOW (self), 560, 420);
  agc_ui_remember_window_size (GTK_WINDOW (self), "results-window");
  agc_ui_close_on_escape (GTK_WINDOW (self));

  GtkWidget *outer = gtk_box_new (GTK_ORIENTATION_VERTICAL, 12);
  g_object_set (outer, "margin", 12, NULL);
  self->item_box = item_row (self);
  gtk_container_add (GTK_CONTAINER (outer), self->item_box);
  GtkWidget *top = gtk_box_new (GTK_ORIENTATION_HORIZONTAL, 12);

  self->picture = gtk_drawing_area_new ();
  gtk_widget_set_size_request (self->picture, THUMBNAIL_SIZE, THUMBNAIL_SIZE);
  gtk_widget_set_valign (self->picture, GTK_ALIGN_START);
  g_signal_connect (self->picture, "draw", G_CALLBACK (draw_thumbnail), self);
  atk_object_set_name (gtk_widget_get_accessible (self->picture), _("What was labelled"));

  GtkWidget *right = gtk_box_new (GTK_ORIENTATION_VERTICAL, 6);
  self->source_label = gtk_label_new (NULL);
  gtk_label_set_xalign (GTK_LABEL (self->source_label), 0.0f);
  gtk_label_set_line_wrap (GTK_LABEL (self->source_label), TRUE);
  gtk_label_set_selectable (GTK_LABEL (self->source_label), TRUE);
  gtk_widget_set_can_focus (self->source_label, FALSE); // the labels list gets it first
  GtkWidget *heading = gtk_label_new_with_mnemonic (_("_Top labels:"));
  gtk_label_set_xalign (GTK_LABEL (heading), 0.0f);
  self->list = gtk_list_box_new ();
  gtk_list_box_set_selection_mode (GTK_LIST_BOX (self->list), GTK_SELECTION_BROWSE);
  gtk_label_set_mnemonic_widget (GTK_LABEL (heading), self->list);
  atk_object_set_name (gtk_widget_get_accessible (self->list), _("Top labels"));
  GtkWidget *scroll = gtk_scrolled_window_new (NULL, NULL);
  gtk_scrolled_window_set_policy (GTK_SCROLLED_WINDOW (scroll), GTK_POLICY_NEVER,
                                  GTK_POLICY_AUTOMATIC);
  gtk_container_add (GTK_CONTAINER (scroll), self->list);
  gtk_container_add (GTK_CONTAINER (right), self->source_label);
  gtk_container_add (GTK_CONTAINER (right), heading);
  gtk_box_pack_start (GTK_BOX (right), scroll, TRUE, TRUE, 0);

  gtk_container_add (GTK_CONTAINER (top), self->picture);
  gtk_box_pack_start (GTK_BOX (top), right, TRUE, TRUE, 0);
  gtk_box_pack_start (GTK_BOX (outer), top, TRUE, TRUE, 0);

  self->relabel_box = relabel_row (self);
  gtk_container_add (GTK_CONTAINER (outer), self->relabel_box);
  GtkWidget *status_box = gtk_box_new (GTK_ORIENTATION_HORIZONTAL, 6);
  self->spinner = gtk_spinner_new ();
  self->status = gtk_label_new (NULL);
  gtk_label_set_xalign (GTK_LABEL (self->status), 0.0f);
  gtk_label_set_line_wrap (GTK_LABEL (self->status), TRUE);
  gtk_label_set_selectable (GTK_LABEL (self->status), TRUE);
  gtk_widget_set_can_focus (self->status, FALSE);
  gtk_container_add (GTK_CONTAINER (status_box), self->spinner);
  gtk_box_pack_start (GTK_BOX (status_box), self->status, TRUE, TRUE, 0);
  gtk_container_add (GTK_CONTAINER (outer), status_box);
  gtk_container_add (GTK_CONTAINER (outer), actions_row (self));
  gtk_container_add (GTK_CONTAINER (self), outer);
  gtk_widget_show_all (outer);
  gtk_widget_hide (self->spinner);
  gtk_widget_hide (self->status);
  gtk_widget_hide (self->item_box);
}

static void
agc_results_window_dispose (GObject *object)
{
  AgcResultsWindow *self = AGC_RESULTS_WINDOW (object);
  self->disposed = TRUE;
  if (self->cancellable)
    g_cancellable_cancel (self->cancellable);
  G_OBJECT_CLASS (agc_results_window_parent_class)->dispose (object);
}

static void
agc_results_window_finalize (GObject *object)
{
  AgcResultsWindow *self = AGC_RESULTS_WINDOW (object);
  agc_label_set_free (self->labels);
  agc_adapter_free (self->adapter);
  agc_classifier_free (self->classifier);
  agc_model_free (self->model);
  g_free (self->model_name);
  g_free (self->labels_name);
  g_ptr_array_unref (self->items);
  G_OBJECT_CLASS (agc_results_window_parent_class)->finalize (object);
}

static void
agc_results_window_class_init (AgcResultsWindowClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  object_class->dispose = agc_results_window_dispose;
  object_class->finalize = agc_results_window_finalize;

  /* (text): "Add as text layer" was chosen; text is agc_results_window_get_text's */
  signals[SIGNAL_ADD_TEXT_LAYER] = g_signal_new ("add-text-layer", G_TYPE_FROM_CLASS (klass),
                                                 G_SIGNAL_RUN_LAST, 0, NULL, NULL, NULL,
                                                 G_TYPE_NONE, 1, G_TYPE_STRING);
  /* (labels): "Add as keywords" was chosen; the export names, most probable first */
  signals[SIGNAL_ADD_KEYWORDS] = g_signal_new ("add-keywords", G_TYPE_FROM_CLASS (klass),
                                               G_SIGNAL_RUN_LAST, 0, NULL, NULL, NULL,
                                               G_TYPE_NONE, 1, G_TYPE_STRV);
  /* (message): a relabelling ended; NULL on success, else what went wrong */
  signals[SIGNAL_RELABELLED] = g_signal_new ("relabelled", G_TYPE_FROM_CLASS (klass),
                                             G_SIGNAL_RUN_LAST, 0, NULL, NULL, NULL,
                                             G_TYPE_NONE, 1, G_TYPE_STRING);
}

GtkWidget *
agc_results_window_new (AgcModel *model, const char *model_name, int top_k)
{
  g_return_val_if_fail (model != NULL && top_k > 0, NULL);
  AgcResultsWindow *self = g_object_new (AGC_TYPE_RESULTS_WINDOW, NULL);
  self->model = model;
  self->model_name = g_strdup (model_name ? model_name : agc_model_path (model));
  self->top_k = top_k;
  return GTK_WIDGET (self);
}

int
agc_results_window_add_item (AgcResultsWindow *self, const char *name,
                             const float *image_embedding, GdkPixbuf *thumbnail)
{
  g_return_val_if_fail (AGC_IS_RESULTS_WINDOW (self) && image_embedding != NULL, -1);
  Item *item = g_new0 (Item, 1);
  int dim = agc_model_embed_dim (self->model);
  item->name = g_strdup (name ? name : "");
  item->embedding = g_memdup2 (image_embedding, sizeof (float) * (gsize) dim);
  item->thumbnail = thumbnail ? g_object_ref (thumbnail) : NULL;
  classify_item (self, item);
  g_ptr_array_add (self->items, item);
  gtk_combo_box_text_append_text (GTK_COMBO_BOX_TEXT (self->item_combo), item->name);
  gtk_widget_set_visible (self->item_box, self->items->len > 1);
  if (self->items->len == 1)
    gtk_combo_box_set_active (GTK_COMBO_BOX (self->item_combo), 0);
  return (int) self->items->len - 1;
}
