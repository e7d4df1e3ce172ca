/* agc-label-set-chooser.c — the label-set chooser, see agc-label-set-chooser.h. */
#include "agc-label-set-chooser.h"

#include "agc-label-set-editor.h"

#include <glib/gi18n-lib.h>

enum
{
  COL_TITLE,   /* or, for a set that cannot be read, the loader's message */
  COL_CLASSES, /* -1: unreadable */
  COL_CLASSES_TEXT,
  COL_KEY,     /* the id or the path */
  COL_TOOLTIP,
  N_COLUMNS
};

struct _AgcLabelSetChooser
{
  GtkBox parent_instance;

  GtkListStore *store;
  GtkWidget *view, *edit_button;
  GtkWidget *editor; /* while open */
};

enum
{
  SIGNAL_CHANGED,
  N_SIGNALS
};
static guint signals[N_SIGNALS];

G_DEFINE_FINAL_TYPE (AgcLabelSetChooser, agc_label_set_chooser, GTK_TYPE_BOX)

static gboolean
find_row (AgcLabelSetChooser *self, const char *key, GtkTreeIter *iter)
{
  GtkTreeModel *model = GTK_TREE_MODEL (self->store);
  for (gboolean ok = gtk_tree_model_get_iter_first (model, iter); ok;
       ok = gtk_tree_model_iter_next (model, iter))
    {
      g_autofree char *row_key = NULL;
      gtk_tree_model_get (model, iter, COL_KEY, &row_key, -1);
      if (g_strcmp0 (row_key, key) == 0)
        return TRUE;
    }
  return FALSE;
}

/* The row of the installed set whose own file path is, if there is one
 * (a file chosen before, or a script's path, is not listed twice). */
static gboolean
find_installed_file (AgcLabelSetChooser *self, const char *path, GtkTreeIter *iter)
{
  AgcLabelSet *set = agc_label_set_load (path, NULL);
  g_autofree char *installed = set ? agc_label_set_find (agc_label_set_id (set), NULL) : NULL;
  g_autofree char *wanted = g_canonicalize_filename (path, NULL);
  g_autofree char *found = installed ? g_canonicalize_filename (installed, NULL) : NULL;
  gboolean same = found && g_str_equal (found, wanted)
                  && find_row (self, agc_label_set_id (set), iter);
  agc_label_set_free (set);
  return same;
}

/* A row for key (an id or a file); the loader's message when it fails. */
static void
add_row (AgcLabelSetChooser *self, const char *key, GtkTreeIter *iter)
{
  GError *error = NULL;
  AgcLabelSet *set = agc_label_set_open (key, &error);
  int n = set ? agc_label_set_n_classes (set) : -1;
  g_autofree char *count = n >= 0 ? g_strdup_printf ("%d", n) : g_strdup ("—");
  g_autofree char *tooltip = set ? g_strdup_printf ("%s\n%s", key, agc_label_set_description (set))
                                 : g_strdup (error->message);
  gtk_list_store_insert_with_values (self->store, iter, -1, COL_TITLE,
                                     set ? agc_label_set_title (set) : error->message,
                                     COL_CLASSES, n, COL_CLASSES_TEXT, count, COL_KEY, key,
                                     COL_TOOLTIP, tooltip, -1);
  agc_label_set_free (set);
  g_clear_error (&error);
}

void
agc_label_set_chooser_refresh (AgcLabelSetChooser *self)
{
  g_return_if_fail (AGC_IS_LABEL_SET_CHOOSER (self));
  g_autofree char *selected = agc_label_set_chooser_get_selected (self);
  gtk_list_store_clear (self->store);
  g_auto (GStrv) ids = agc_label_set_list_installed ();
  GtkTreeIter iter;
  for (int i = 0; ids[i]; i++)
    add_row (self, ids[i], &iter);
  if (selected)
    agc_label_set_chooser_select (self, selected);
}

char *
agc_label_set_chooser_get_selected (AgcLabelSetChooser *self)
{
  g_return_val_if_fail (AGC_IS_LABEL_SET_CHOOSER (self), NULL);
  GtkTreeIter iter;
  char *key = NULL;
  int n = -1;
  if (gtk_tree_selection_get_selected (gtk_tree_view_get_selection (GTK_TREE_VIEW (self->view)),
                                       NULL, &iter))
    gtk_tree_model_get (GTK_TREE_MODEL (self->store), &iter, COL_KEY, &key, COL_CLASSES, &n, -1);
  if (n < 0)
    g_clear_pointer (&key, g_free);
  return key;
}

gboolean
agc_label_set_chooser_select (AgcLabelSetChooser *self, const char *id_or_path)
{
  g_return_val_if_fail (AGC_IS_LABEL_SET_CHOOSER (self) && id_or_path, FALSE);
  GtkTreeIter iter;
  if (!find_row (self, id_or_path, &iter))
    {
      if (!g_file_test (id_or_path, G_FILE_TEST_IS_REGULAR))
        return FALSE;
      if (!find_installed_file (self, id_or_path, &iter))
        add_row (self, id_or_path, &iter);
    }
  gtk_tree_selection_select_iter (gtk_tree_view_get_selection (GTK_TREE_VIEW (self->view)),
                                  &iter);
  g_autoptr (GtkTreePath) path = gtk_tree_model_get_path (GTK_TREE_MODEL (self->store), &iter);
  gtk_tree_view_scroll_to_cell (GTK_TREE_VIEW (self->view), path, NULL, FALSE, 0, 0);
  return TRUE;
}

gboolean
agc_label_set_chooser_get_row (AgcLabelSetChooser *self, const char *id_or_path, char **title,
                               int *n_classes)
{
  g_return_val_if_fail (AGC_IS_LABEL_SET_CHOOSER (self), FALSE);
  GtkTreeIter iter;
  if (!find_row (self, id_or_path, &iter))
    return FALSE;
  gtk_tree_model_get (GTK_TREE_MODEL (self->store), &iter, COL_TITLE, title, COL_CLASSES,
                      n_classes, -1);
  return TRUE;
}

GtkWidget *
agc_label_set_chooser_get_editor (AgcLabelSetChooser *self)
{
  g_return_val_if_fail (AGC_IS_LABEL_SET_CHOOSER (self), NULL);
  return self->editor;
}

/* ---- controls ------------------------------------------------------------ */

static void
on_saved (AgcLabelSetEditor *editor, const char *path, AgcLabelSetChooser *self)
{
  (void) editor;
  agc_label_set_chooser_refresh (self);
  // Saved sets live in the user's labels folder: installed, found by id.
  AgcLabelSet *set = agc_label_set_load (path, NULL);
  if (set)
    agc_label_set_chooser_select (self, agc_label_set_id (set));
  agc_label_set_free (set);
}

static void
open_editor (AgcLabelSetChooser *self, const AgcLabelSet *set, const char *origin)
{
  if (self->editor)
    gtk_widget_destroy (self->editor);
  GtkWidget *toplevel = gtk_widget_get_toplevel (GTK_WIDGET (self));
  self->editor = agc_label_set_editor_new (GTK_IS_WINDOW (toplevel) ? GTK_WINDOW (toplevel)
                                                                    : NULL,
                                           set, origin);
  g_object_add_weak_pointer (G_OBJECT (self->editor), (gpointer *) &self->editor);
  g_signal_connect (self->editor, "saved", G_CALLBACK (on_saved), self);
  gtk_widget_show (self->editor);
}

static void
on_new_clicked (GtkButton *button, AgcLabelSetChooser *self)
{
  (void) button;
  open_editor (self, NULL, NULL);
}

static void
on_edit_clicked (GtkButton *button, AgcLabelSetChooser *self)
{
  (void) button;
  g_autofree char *key = agc_label_set_chooser_get_selected (self);
  if (!key)
    return;
  g_autofree char *path = agc_label_set_find (key, NULL);
  AgcLabelSet *set = path ? agc_label_set_load (path, NULL) : NULL;
  if (set)
    open_editor (self, set, path);
  agc_label_set_free (set);
}

static void
on_open_clicked (GtkButton *button, AgcLabelSetChooser *self)
{
  (void) button;
  GtkWidget *toplevel = gtk_widget_get_toplevel (GTK_WIDGET (self));
  GtkFileChooserNative *chooser = gtk_file_chooser_native_new (
    _("Open a label set"), GTK_IS_WINDOW (toplevel) ? GTK_WINDOW (toplevel) : NULL,
    GTK_FILE_CHOOSER_ACTION_OPEN, _("_Open"), _("_Cancel"));
  GtkFileFilter *filter = gtk_file_filter_new ();
  gtk_file_filter_add_pattern (filter, "*.json");
  gtk_file_filter_set_name (filter, _("Label sets (*.json)"));
  gtk_file_chooser_add_filter (GTK_FILE_CHOOSER (chooser), filter);
  if (gtk_native_dialog_run (GTK_NATIVE_DIALOG (chooser)) == GTK_RESPONSE_ACCEPT)
    {
      g_autofree char *path = gtk_file_chooser_get_filename (GTK_FILE_CHOOSER (chooser));
      if (path)
        agc_label_set_chooser_select (self, path);
    }
  g_object_unref (chooser);
}

static void
on_selection_changed (GtkTreeSelection *selection, AgcLabelSetChooser *self)
{
  (void) selection;
  g_autofree char *key = agc_label_set_chooser_get_selected (self);
  gtk_widget_set_sensitive (self->edit_button, key != NULL);
  g_signal_emit (self, signals[SIGNAL_CHANGED], 0);
}

static GtkWidget *
button (const char *mnemonic, const char *name, const char *tooltip, GCallback clicked,
        AgcLabelSetChooser *self)
{
  GtkWidget *b = gtk_button_new_with_mnemonic (mnemonic);
  atk_object_set_name (gtk_widget_get_accessible (b), name);
  gtk_widget_set_tooltip_text (b, tooltip);
  g_signal_connect (b, "clicked", clicked, self);
  return b;
}

static void
add_column (GtkTreeView *view, const char *title, int column, gboolean expand)
{
  GtkCellRenderer *cell = gtk_cell_renderer_text_new ();
  g_object_set (cell, "ellipsize", PANGO_ELLIPSIZE_END, NULL);
  GtkTreeViewColumn *col = gtk_tree_view_column_new_with_attributes (title, cell, "text", column,
                                                                     NULL);
  gtk_tree_view_column_set_expand (col, expand);
  gtk_tree_view_column_set_resizable (col, TRUE);
  gtk_tree_view_append_column (view, col);
}

static void
agc_label_set_chooser_init (AgcLabelSetChooser *self)
{
  gtk_orientable_set_orientation (GTK_ORIENTABLE (self), GTK_ORIENTATION_VERTICAL);
  gtk_box_set_spacing (GTK_BOX (self), 6);
  self->store = gtk_list_store_new (N_COLUMNS, G_TYPE_STRING, G_TYPE_INT, G_TYPE_STRING,
                                    G_TYPE_STRING, G_TYPE_STRING);
  GtkWidget *heading = gtk_label_new_with_mnemonic (_("Label _sets:"));
  gtk_label_set_xalign (GTK_LABEL (heading), 0.0f);
  self->view = gtk_tree_view_new_with_model (GTK_TREE_MODEL (self->store));
  gtk_label_set_mnemonic_widget (GTK_LABEL (heading), self->view);
  atk_object_set_name (gtk_widget_get_accessible (self->view), _("Label sets"));
  gtk_tree_view_set_tooltip_column (GTK_TREE_VIEW (self->view), COL_TOOLTIP);
  add_column (GTK_TREE_VIEW (self->view), _("Title"), COL_TITLE, TRUE);
  add_column (GTK_TREE_VIEW (self->view), _("Classes"), COL_CLASSES_TEXT, FALSE);
  add_column (GTK_TREE_VIEW (self->view), _("Id or file"), COL_KEY, FALSE);
  g_signal_connect (gtk_tree_view_get_selection (GTK_TREE_VIEW (self->view)), "changed",
                    G_CALLBACK (on_selection_changed), self);
  GtkWidget *scroll = gtk_scrolled_window_new (NULL, NULL);
  gtk_scrolled_window_set_shadow_type (GTK_SCROLLED_WINDOW (scroll), GTK_SHADOW_IN);
  gtk_scrolled_window_set_min_content_height (GTK_SCROLLED_WINDOW (scroll), 100);
  gtk_container_add (GTK_CONTAINER (scroll), self->view);

  GtkWidget *buttons = gtk_box_new (GTK_ORIENTATION_HORIZONTAL, 6);
  gtk_container_add (GTK_CONTAINER (buttons),
                     button (_("_Open file…"), _("Open file"), _("Use a label-set file"),
                             G_CALLBACK (on_open_clicked), self));
  gtk_container_add (GTK_CONTAINER (buttons),
                     button (_("_New…"), _("New label set"), _("Write a label set of your own"),
                             G_CALLBACK (on_new_clicked), self));
  self->edit_button = button (_("_Edit…"), _("Edit label set"),
                              _("Edit a copy of the selected label set"),
                              G_CALLBACK (on_edit_clicked), self);
  gtk_widget_set_sensitive (self->edit_button, FALSE);
  gtk_container_add (GTK_CONTAINER (buttons), self->edit_button);

  gtk_container_add (GTK_CONTAINER (self), heading);
  gtk_box_pack_start (GTK_BOX (self), scroll, TRUE, TRUE, 0);
  gtk_container_add (GTK_CONTAINER (self), buttons);
  gtk_widget_show_all (GTK_WIDGET (self));
  agc_label_set_chooser_refresh (self);
}

static void
agc_label_set_chooser_dispose (GObject *object)
{
  AgcLabelSetChooser *self = AGC_LABEL_SET_CHOOSER (object);
  if (self->editor)
    gtk_widget_destroy (self->editor);
  g_clear_object (&self->store);
  G_OBJECT_CLASS (agc_label_set_chooser_parent_class)->dispose (object);
}

static void
agc_label_set_chooser_class_init (AgcLabelSetChooserClass *klass)
{
  G_OBJECT_CLASS (klass)->dispose = agc_label_set_chooser_dispose;
  /* (): the selection changed */
  signals[SIGNAL_CHANGED] = g_signal_new ("changed", G_TYPE_FROM_CLASS (klass),
                                          G_SIGNAL_RUN_LAST, 0, NULL, NULL, NULL, G_TYPE_NONE,
                                          0);
}

GtkWidget *
agc_label_set_chooser_new (void)
{
  return g_object_new (AGC_TYPE_LABEL_SET_CHOOSER, NULL);
}
