/* agc-label-set-editor.c — the label-set editor, see agc-label-set-editor.h. */
#include "agc-label-set-editor.h"

#include <glib/gi18n-lib.h>
#include <glib/gstdio.h>
#include <string.h>

/* Checking waits for typing to pause this long. */
#define CHECK_DELAY_MS 250

enum
{
  RESPONSE_PREVIEW = 1,
  RESPONSE_SAVE,
};

enum
{
  COL_NAME,
  COL_DISPLAY,
  COL_TEXT,
  COL_PROMPTS, /* the class's own sentences, one per line */
  COL_USE_TEMPLATES,
  COL_DOMAIN,     /* not shown: kept as loaded for agriclip captions */
  COL_ATTRIBUTES, /* not shown: likewise (strv) */
  N_COLUMNS
};

struct _AgcLabelSetEditor
{
  GtkDialog parent_instance;

  char *origin;
  char *source; /* kept as the file had it; not edited here */
  GtkListStore *store;
  GtkWidget *id, *title, *description, *templates, *view, *prompts, *problem;
  GtkWidget *preview;
  gulong prompts_changed;
  guint check_source;
};

enum
{
  SIGNAL_SAVED,
  N_SIGNALS
};
static guint signals[N_SIGNALS];

G_DEFINE_FINAL_TYPE (AgcLabelSetEditor, agc_label_set_editor, GTK_TYPE_DIALOG)

/* ---- the draft the widgets hold ------------------------------------------ */

static char *
buffer_text (GtkWidget *text_view)
{
  GtkTextBuffer *buffer = gtk_text_view_get_buffer (GTK_TEXT_VIEW (text_view));
  GtkTextIter start, end;
  gtk_text_buffer_get_bounds (buffer, &start, &end);
  return gtk_text_buffer_get_text (buffer, &start, &end, FALSE);
}

/* Non-blank lines, as typed (the loader judges their content). */
static char **
lines (const char *text)
{
  g_auto (GStrv) all = g_strsplit (text ? text : "", "\n", -1);
  g_autoptr (GPtrArray) kept = g_ptr_array_new ();
  for (int i = 0; all[i]; i++)
    if (*g_strstrip (all[i]))
      g_ptr_array_add (kept, g_strdup (all[i]));
  g_ptr_array_add (kept, NULL);
  return (char **) g_ptr_array_steal (kept, NULL);
}

AgcLabelSetDraft *
agc_label_set_editor_get_draft (AgcLabelSetEditor *self)
{
  g_return_val_if_fail (AGC_IS_LABEL_SET_EDITOR (self), NULL);
  AgcLabelSetDraft *draft = agc_label_set_draft_new ();
  g_free (draft->id);
  g_free (draft->title);
  g_free (draft->description);
  g_free (draft->source);
  g_strfreev (draft->templates);
  draft->id = g_strdup (gtk_entry_get_text (GTK_ENTRY (self->id)));
  draft->title = g_strdup (gtk_entry_get_text (GTK_ENTRY (self->title)));
  draft->description = g_strdup (gtk_entry_get_text (GTK_ENTRY (self->description)));
  draft->source = g_strdup (self->source);
  g_autofree char *templates = buffer_text (self->templates);
  draft->templates = lines (templates);
  GtkTreeModel *model = GTK_TREE_MODEL (self->store);
  GtkTreeIter iter;
  for (gboolean ok = gtk_tree_model_get_iter_first (model, &iter); ok;
       ok = gtk_tree_model_iter_next (model, &iter))
    {
      g_autofree char *name = NULL, *display = NULL, *text = NULL, *prompts = NULL;
      char *domain = NULL, **attributes = NULL; // owned by the draft below
      gboolean use_templates = TRUE;
      gtk_tree_model_get (model, &iter, COL_NAME, &name, COL_DISPLAY, &display, COL_TEXT, &text,
                          COL_PROMPTS, &prompts, COL_USE_TEMPLATES, &use_templates, COL_DOMAIN,
                          &domain, COL_ATTRIBUTES, &attributes, -1);
      g_auto (GStrv) sentences = lines (prompts);
      agc_label_set_draft_add_class (draft, name, display, text,
                                     (const char *const *) sentences, use_templates);
      AgcLabelClassDraft *c = &g_array_index (draft->classes, AgcLabelClassDraft,
                                              draft->classes->len - 1);
      c->domain = domain;
      c->attributes = attributes;
    }
  return draft;
}

static char *
file_name (AgcLabelSetEditor *self)
{
  const char *id = gtk_entry_get_text (GTK_ENTRY (self->id));
  return g_strdup_printf ("%s.json", *id ? id : "labels");
}

/* The editor's draft (set, free it) and the set the loader makes of it, or
 * NULL and the loader's message. */
static AgcLabelSet *
check_draft (AgcLabelSetEditor *self, AgcLabelSetDraft **draft, GError **error)
{
  *draft = agc_label_set_editor_get_draft (self);
  g_autofree char *name = file_name (self);
  return agc_label_set_draft_check (*draft, name, error);
}

char *
agc_label_set_editor_get_problem (AgcLabelSetEditor *self)
{
  g_return_val_if_fail (AGC_IS_LABEL_SET_EDITOR (self), NULL);
  g_autoptr (AgcLabelSetDraft) draft = NULL;
  GError *error = NULL;
  agc_label_set_free (check_draft (self, &draft, &error));
  if (!error)
    return NULL;
  char *message = g_strdup (error->message);
  g_error_free (error);
  return message;
}

char *
agc_label_set_editor_get_preview (AgcLabelSetEditor *self, GError **error)
{
  g_return_val_if_fail (AGC_IS_LABEL_SET_EDITOR (self), NULL);
  g_autoptr (AgcLabelSetDraft) draft = NULL;
  AgcLabelSet *set = check_draft (self, &draft, error);
  if (!set)
    return NULL;
  GString *text = g_string_new (NULL);
  for (int c = 0; c < agc_label_set_n_classes (set); c++)
    {
      g_string_append_printf (text, "%s%s (%s)\n", c ? "\n" : "",
                              agc_label_set_class_display_name (set, c),
                              agc_label_set_class_name (set, c));
      for (const char *const *p = agc_label_set_class_prompts (set, c); *p; p++)
        g_string_append_printf (text, "    %s\n", *p);
    }
  agc_label_set_free (set);
  return g_string_free (text, FALSE);
}

/* ---- checking as the user types ------------------------------------------ */

static gboolean
check_now (gpointer data)
{
  AgcLabelSetEditor *self = data;
  self->check_source = 0;
  g_autofree char *problem = agc_label_set_editor_get_problem (self);
  g_autofree char *fine = NULL;
  if (!problem)
    {
      int n = gtk_tree_model_iter_n_children (GTK_TREE_MODEL (self->store), NULL);
      fine = g_strdup_printf (g_dngettext (GETTEXT_PACKAGE, "A valid label set of %d class",
                                           "A valid label set of %d classes", (gulong) n),
                              n);
    }
  gtk_label_set_text (GTK_LABEL (self->problem), problem ? problem : fine);
  gtk_dialog_set_response_sensitive (GTK_DIALOG (self), RESPONSE_PREVIEW, problem == NULL);
  return G_SOURCE_REMOVE;
}

static void
changed (AgcLabelSetEditor *self)
{
  if (self->check_source)
    g_source_remove (self->check_source);
  self->check_source = g_timeout_add (CHECK_DELAY_MS, check_now, self);
}

/* ---- saving --------------------------------------------------------------- */

char *
agc_label_set_editor_target (const char *id)
{
  g_autofree char *name = g_strdup_printf ("%s.json", id);
  return g_build_filename (g_get_user_data_dir (), "agriclip", "labels", name, NULL);
}

/* FALSE when saving to target would replace something not ours to replace:
 * an installed set of that id found elsewhere (the user's file would hide
 * it), or a file of the user's other than the one being edited. */
static gboolean
check_target (AgcLabelSetEditor *self, const char *id, const char *target, GError **error)
{
  g_autofree char *installed = agc_label_set_find (id, NULL);
  if (installed && !g_str_equal (installed, target))
    {
      g_set_error (error, AGC_ERROR, AGC_ERROR_INPUT,
                   _("“%s” is the id of an installed label set (%s): give yours another id"),
                   id, installed);
      return FALSE;
    }
  if (g_file_test (target, G_FILE_TEST_EXISTS) && g_strcmp0 (self->origin, target) != 0)
    {
      g_set_error (error, AGC_ERROR, AGC_ERROR_INPUT,
                   _("%s already exists: open it to edit it, or give this set another id"),
                   target);
      return FALSE;
    }
  return TRUE;
}

char *
agc_label_set_editor_save (AgcLabelSetEditor *self, GError **error)
{
  g_return_val_if_fail (AGC_IS_LABEL_SET_EDITOR (self), NULL);
  g_autoptr (AgcLabelSetDraft) draft = NULL;
  AgcLabelSet *set = check_draft (self, &draft, error);
  if (!set)
    return NULL;
  agc_label_set_free (set);
  g_autofree char *target = agc_label_set_editor_target (draft->id);
  if (!check_target (self, draft->id, target, error))
    return NULL;
  g_autofree char *dir = g_path_get_dirname (target);
  g_autofree char *json = agc_label_set_draft_to_json (draft);
  if (g_mkdir_with_parents (dir, 0755) != 0)
    {
      g_set_error (error, AGC_ERROR, AGC_ERROR_IO, _("%s: cannot create the folder: %s"), dir,
                   g_strerror (errno));
      return NULL;
    }
  // g_file_set_contents writes a temporary file and renames it over the target.
  if (!g_file_set_contents (target, json, -1, error))
    return NULL;
  g_free (self->origin);
  self->origin = g_strdup (target);
  return g_steal_pointer (&target);
}

/* ---- the class list ------------------------------------------------------- */

static gboolean
selected_class (AgcLabelSetEditor *self, GtkTreeIter *iter)
{
  return gtk_tree_selection_get_selected (
    gtk_tree_view_get_selection (GTK_TREE_VIEW (self->view)), NULL, iter);
}

static void
on_class_selected (GtkTreeSelection *selection, AgcLabelSetEditor *self)
{
  (void) selection;
  GtkTreeIter iter;
  g_autofree char *prompts = NULL;
  gboolean any = selected_class (self, &iter);
  if (any)
    gtk_tree_model_get (GTK_TREE_MODEL (self->store), &iter, COL_PROMPTS, &prompts, -1);
  GtkTextBuffer *buffer = gtk_text_view_get_buffer (GTK_TEXT_VIEW (self->prompts));
  g_signal_handler_block (buffer, self->prompts_changed);
  gtk_text_buffer_set_text (buffer, prompts ? prompts : "", -1);
  g_signal_handler_unblock (buffer, self->prompts_changed);
  gtk_widget_set_sensitive (self->prompts, any);
}

static void
on_prompts_changed (GtkTextBuffer *buffer, AgcLabelSetEditor *self)
{
  (void) buffer;
  GtkTreeIter iter;
  if (!selected_class (self, &iter))
    return;
  g_autofree char *text = buffer_text (self->prompts);
  gtk_list_store_set (self->store, &iter, COL_PROMPTS, text, -1);
  changed (self);
}

static void
on_cell_edited (GtkCellRendererText *cell, const char *path, const char *text,
                AgcLabelSetEditor *self)
{
  int column = GPOINTER_TO_INT (g_object_get_data (G_OBJECT (cell), "column"));
  GtkTreeIter iter;
  if (gtk_tree_model_get_iter_from_string (GTK_TREE_MODEL (self->store), &iter, path))
    gtk_list_store_set (self->store, &iter, column, text, -1);
  changed (self);
}

static void
on_use_templates_toggled (GtkCellRendererToggle *cell, const char *path,
                          AgcLabelSetEditor *self)
{
  (void) cell;
  GtkTreeIter iter;
  gboolean use = TRUE;
  if (!gtk_tree_model_get_iter_from_string (GTK_TREE_MODEL (self->store), &iter, path))
    return;
  gtk_tree_model_get (GTK_TREE_MODEL (self->store), &iter, COL_USE_TEMPLATES, &use, -1);
  gtk_list_store_set (self->store, &iter, COL_USE_TEMPLATES, !use, -1);
  changed (self);
}

static void
select_and_edit (AgcLabelSetEditor *self, GtkTreeIter *iter, gboolean edit)
{
  g_autoptr (GtkTreePath) path = gtk_tree_model_get_path (GTK_TREE_MODEL (self->store), iter);
  GtkTreeViewColumn *first = gtk_tree_view_get_column (GTK_TREE_VIEW (self->view), 0);
  gtk_tree_view_set_cursor (GTK_TREE_VIEW (self->view), path, first, edit);
}

static void
on_add_clicked (GtkButton *button, AgcLabelSetEditor *self)
{
  (void) button;
  int n = gtk_tree_model_iter_n_children (GTK_TREE_MODEL (self->store), NULL);
  /* Translators: the export name and display name of a class just added */
  g_autofree char *name = g_strdup_printf ("class-%d", n + 1);
  g_autofree char *display = g_strdup_printf (_("Class %d"), n + 1);
  GtkTreeIter iter;
  gtk_list_store_insert_with_values (self->store, &iter, -1, COL_NAME, name, COL_DISPLAY, display,
                                     COL_TEXT, "", COL_PROMPTS, "", COL_USE_TEMPLATES, TRUE, -1);
  gtk_widget_grab_focus (self->view);
  select_and_edit (self, &iter, TRUE);
  changed (self);
}

static void
on_remove_clicked (GtkButton *button, AgcLabelSetEditor *self)
{
  (void) button;
  GtkTreeIter iter;
  if (!selected_class (self, &iter))
    return;
  GtkTreeIter next = iter;
  gboolean has_next = gtk_tree_model_iter_next (GTK_TREE_MODEL (self->store), &next);
  GtkTreeIter prev = iter;
  gboolean has_prev = gtk_tree_model_iter_previous (GTK_TREE_MODEL (self->store), &prev);
  GtkTreeIter keep = has_next ? next : prev;
  gtk_list_store_remove (self->store, &iter);
  if (has_next || has_prev)
    select_and_edit (self, &keep, FALSE);
  changed (self);
}

static void
move_selected (AgcLabelSetEditor *self, gboolean up)
{
  GtkTreeIter iter, other;
  if (!selected_class (self, &iter))
    return;
  other = iter;
  gboolean ok = up ? gtk_tree_model_iter_previous (GTK_TREE_MODEL (self->store), &other)
                   : gtk_tree_model_iter_next (GTK_TREE_MODEL (self->store), &other);
  if (!ok)
    return;
  gtk_list_store_swap (self->store, &iter, &other);
  select_and_edit (self, &iter, FALSE);
  changed (self);
}

static void
on_up_clicked (GtkButton *button, AgcLabelSetEditor *self)
{
  (void) button;
  move_selected (self, TRUE);
}

static void
on_down_clicked (GtkButton *button, AgcLabelSetEditor *self)
{
  (void) button;
  move_selected (self, FALSE);
}

/* ---- the dialog ------------------------------------------------------------ */

static void
show_preview (AgcLabelSetEditor *self)
{
  GError *error = NULL;
  g_autofree char *text = agc_label_set_editor_get_preview (self, &error);
  if (!text)
    {
      gtk_label_set_text (GTK_LABEL (self->problem), error->message);
      g_error_free (error);
      return;
    }
  if (!self->preview)
    {
      self->preview = gtk_dialog_new_with_buttons (_("AgriCLIP: Sentences per Class"), GTK_WINDOW (self),
                                                   GTK_DIALOG_DESTROY_WITH_PARENT, _("_Close"),
                                                   GTK_RESPONSE_CLOSE, NULL);
      gtk_window_set_default_size (GTK_WINDOW (self->preview), 520, 420);
      g_signal_connect (self->preview, "response", G_CALLBACK (gtk_widget_hide), NULL);
      g_signal_connect (self->preview, "delete-event", G_CALLBACK (gtk_widget_hide_on_delete),
                        NULL);
      GtkWidget *view = gtk_text_view_new ();
      gtk_text_view_set_editable (GTK_TEXT_VIEW (view), FALSE);
      gtk_text_view_set_wrap_mode (GTK_TEXT_VIEW (view), GTK_WRAP_WORD_CHAR);
      gtk_text_view_set_left_margin (GTK_TEXT_VIEW (view), 8);
      gtk_text_view_set_right_margin (GTK_TEXT_VIEW (view), 8);
      gtk_text_view_set_top_margin (GTK_TEXT_VIEW (view), 6);
      atk_object_set_name (gtk_widget_get_accessible (view), _("Prompt preview"));
      GtkWidget *scroll = gtk_scrolled_window_new (NULL, NULL);
      gtk_container_add (GTK_CONTAINER (scroll), view);
      g_object_set (scroll, "margin", 6, NULL);
      GtkWidget *area = gtk_dialog_get_content_area (GTK_DIALOG (self->preview));
      gtk_box_pack_start (GTK_BOX (area), scroll, TRUE, TRUE, 0);
      g_object_set_data (G_OBJECT (self->preview), "view", view);
      gtk_widget_show_all (area);
    }
  GtkWidget *view = g_object_get_data (G_OBJECT (self->preview), "view");
  gtk_text_buffer_set_text (gtk_text_view_get_buffer (GTK_TEXT_VIEW (view)), text, -1);
  gtk_window_present (GTK_WINDOW (self->preview));
}

static void
on_response (GtkDialog *dialog, int response, gpointer data)
{
  (void) data;
  AgcLabelSetEditor *self = AGC_LABEL_SET_EDITOR (dialog);
  if (response == RESPONSE_PREVIEW)
    show_preview (self);
  else if (response == RESPONSE_SAVE)
    {
      GError *error = NULL;
      g_autofree char *path = agc_label_set_editor_save (self, &error);
      if (!path)
        {
          gtk_label_set_text (GTK_LABEL (self->problem), error->message);
          g_error_free (error);
          return;
        }
      /* Translators: %s is the file a label set was saved to */
      g_autofree char *saved = g_strdup_printf (_("Saved as %s"), path);
      gtk_label_set_text (GTK_LABEL (self->problem), saved);
      g_signal_emit (self, signals[SIGNAL_SAVED], 0, path);
    }
  else
    gtk_widget_destroy (GTK_WIDGET (self));
}

/* A labelled control in row of grid: the label's mnemonic focuses it, and
 * it reads as name to screen readers. */
static void
attach_row (GtkGrid *grid, int row, const char *mnemonic, const char *name, GtkWidget *control)
{
  GtkWidget *label = gtk_label_new_with_mnemonic (mnemonic);
  gtk_label_set_xalign (GTK_LABEL (label), 0.0f);
  gtk_widget_set_valign (label, GTK_ALIGN_START);
  GtkWidget *target = GTK_IS_SCROLLED_WINDOW (control) ? gtk_bin_get_child (GTK_BIN (control))
                                                       : control;
  gtk_label_set_mnemonic_widget (GTK_LABEL (label), target);
  atk_object_set_name (gtk_widget_get_accessible (target), name);
  gtk_widget_set_hexpand (control, TRUE);
  gtk_grid_attach (grid, label, 0, row, 1, 1);
  gtk_grid_attach (grid, control, 1, row, 1, 1);
}

static GtkWidget *
text_area (GtkWidget **view, int lines_shown)
{
  *view = gtk_text_view_new ();
  gtk_text_view_set_wrap_mode (GTK_TEXT_VIEW (*view), GTK_WRAP_WORD_CHAR);
  gtk_text_view_set_accepts_tab (GTK_TEXT_VIEW (*view), FALSE); // Tab moves on
  // the entries' inner space, so that the text does not touch the frame
  gtk_text_view_set_left_margin (GTK_TEXT_VIEW (*view), 6);
  gtk_text_view_set_right_margin (GTK_TEXT_VIEW (*view), 6);
  gtk_text_view_set_top_margin (GTK_TEXT_VIEW (*view), 4);
  gtk_text_view_set_bottom_margin (GTK_TEXT_VIEW (*view), 4);
  GtkWidget *scroll = gtk_scrolled_window_new (NULL, NULL);
  gtk_scrolled_window_set_shadow_type (GTK_SCROLLED_WINDOW (scroll), GTK_SHADOW_IN);
  gtk_container_add (GTK_CONTAINER (scroll), *view);
  // Lines in font units rather than pixels: the height follows the font and the scale.
  PangoContext *context = gtk_widget_get_pango_context (*view);
  PangoFontMetrics *metrics = pango_context_get_metrics (context, NULL, NULL);
  int line = PANGO_PIXELS (pango_font_metrics_get_ascent (metrics)
                           + pango_font_metrics_get_descent (metrics));
  pango_font_metrics_unref (metrics);
  gtk_scrolled_window_set_min_content_height (GTK_SCROLLED_WINDOW (scroll),
                                              line * lines_shown + 8);
  return scroll;
}

static void
add_text_column (AgcLabelSetEditor *self, const char *title, int column)
{
  GtkCellRenderer *cell = gtk_cell_renderer_text_new ();
  g_object_set (cell, "editable", TRUE, "ellipsize", PANGO_ELLIPSIZE_END, NULL);
  g_object_set_data (G_OBJECT (cell), "column", GINT_TO_POINTER (column));
  g_signal_connect (cell, "edited", G_CALLBACK (on_cell_edited), self);
  GtkTreeViewColumn *col = gtk_tree_view_column_new_with_attributes (title, cell, "text", column,
                                                                     NULL);
  gtk_tree_view_column_set_resizable (col, TRUE);
  gtk_tree_view_column_set_expand (col, TRUE);
  gtk_tree_view_append_column (GTK_TREE_VIEW (self->view), col);
}

static GtkWidget *
class_button (const char *mnemonic, const char *name, GCallback clicked, AgcLabelSetEditor *self)
{
  GtkWidget *button = gtk_button_new_with_mnemonic (mnemonic);
  atk_object_set_name (gtk_widget_get_accessible (button), name);
  g_signal_connect (button, "clicked", clicked, self);
  return button;
}

static GtkWidget *
class_list (AgcLabelSetEditor *self)
{
  self->store = gtk_list_store_new (N_COLUMNS, G_TYPE_STRING, G_TYPE_STRING, G_TYPE_STRING,
                                    G_TYPE_STRING, G_TYPE_BOOLEAN, G_TYPE_STRING, G_TYPE_STRV);
  self->view = gtk_tree_view_new_with_model (GTK_TREE_MODEL (self->store));
  gtk_tree_view_set_reorderable (GTK_TREE_VIEW (self->view), TRUE);
  add_text_column (self, _("Export name"), COL_NAME);
  add_text_column (self, _("Display name"), COL_DISPLAY);
  add_text_column (self, _("Text in templates"), COL_TEXT);
  GtkCellRenderer *toggle = gtk_cell_renderer_toggle_new ();
  g_signal_connect (toggle, "toggled", G_CALLBACK (on_use_templates_toggled), self);
  gtk_tree_view_append_column (GTK_TREE_VIEW (self->view),
                               gtk_tree_view_column_new_with_attributes (
                                 _("Templates"), toggle, "active", COL_USE_TEMPLATES, NULL));
  g_signal_connect (gtk_tree_view_get_selection (GTK_TREE_VIEW (self->view)), "changed",
                    G_CALLBACK (on_class_selected), self);
  g_signal_connect_swapped (self->store, "row-deleted", G_CALLBACK (changed), self);
  GtkWidget *scroll = gtk_scrolled_window_new (NULL, NULL);
  gtk_scrolled_window_set_shadow_type (GTK_SCROLLED_WINDOW (scroll), GTK_SHADOW_IN);
  gtk_scrolled_window_set_min_content_height (GTK_SCROLLED_WINDOW (scroll), 160);
  gtk_container_add (GTK_CONTAINER (scroll), self->view);
  gtk_widget_set_vexpand (scroll, TRUE);
  return scroll;
}

static void
agc_label_set_editor_init (AgcLabelSetEditor *self)
{
  gtk_window_set_title (GTK_WINDOW (self), _("AgriCLIP: Edit Label Set"));
  gtk_window_set_default_size (GTK_WINDOW (self), 720, 640);
  gtk_dialog_add_buttons (GTK_DIALOG (self), _("Pre_view prompts"), RESPONSE_PREVIEW,
                          _("_Close"), GTK_RESPONSE_CLOSE, _("_Save"), RESPONSE_SAVE, NULL);
  g_signal_connect (self, "response", G_CALLBACK (on_response), NULL);

  GtkGrid *grid = GTK_GRID (gtk_grid_new ());
  gtk_grid_set_row_spacing (grid, 6);
  gtk_grid_set_column_spacing (grid, 12);
  g_object_set (grid, "margin", 12, NULL);
  self->id = gtk_entry_new ();
  gtk_widget_set_tooltip_text (self->id, _("Short identifier: letters, digits, - _ ."));
  self->title = gtk_entry_new ();
  self->description = gtk_entry_new ();
  attach_row (grid, 0, _("_Id:"), _("Id"), self->id);
  attach_row (grid, 1, _("_Title:"), _("Title"), self->title);
  attach_row (grid, 2, _("D_escription:"), _("Description"), self->description);
  GtkWidget *templates = text_area (&self->templates, 3);
  gtk_widget_set_tooltip_text (self->templates,
                               _("One sentence per line, each with {} where the class's text "
                                 "goes, e.g. \"a photo of {}.\""));
  attach_row (grid, 3, _("Te_mplates:"), _("Templates"), templates);
  attach_row (grid, 4, _("C_lasses:"), _("Classes"), class_list (self));

  GtkWidget *buttons = gtk_box_new (GTK_ORIENTATION_HORIZONTAL, 6);
  gtk_container_add (GTK_CONTAINER (buttons),
                     class_button (_("_Add class"), _("Add class"), G_CALLBACK (on_add_clicked),
                                   self));
  gtk_container_add (GTK_CONTAINER (buttons),
                     class_button (_("_Remove class"), _("Remove class"),
                                   G_CALLBACK (on_remove_clicked), self));
  gtk_container_add (GTK_CONTAINER (buttons),
                     class_button (_("Move _up"), _("Move up"), G_CALLBACK (on_up_clicked),
                                   self));
  gtk_container_add (GTK_CONTAINER (buttons),
                     class_button (_("Move _down"), _("Move down"), G_CALLBACK (on_down_clicked),
                                   self));
  gtk_grid_attach (grid, buttons, 1, 5, 1, 1);
  GtkWidget *prompts = text_area (&self->prompts, 3);
  gtk_widget_set_tooltip_text (self->prompts,
                               _("The selected class's own sentences, one per line, used "
                                 "besides the templates"));
  attach_row (grid, 6, _("Class _prompts:"), _("Class prompts"), prompts);
  self->problem = gtk_label_new (NULL);
  gtk_label_set_xalign (GTK_LABEL (self->problem), 0.0f);
  gtk_label_set_line_wrap (GTK_LABEL (self->problem), TRUE);
  gtk_label_set_selectable (GTK_LABEL (self->problem), TRUE);
  gtk_widget_set_can_focus (self->problem, FALSE);
  atk_object_set_name (gtk_widget_get_accessible (self->problem), _("Check result"));
  gtk_grid_attach (grid, self->problem, 0, 7, 2, 1);

  GtkWidget *area = gtk_dialog_get_content_area (GTK_DIALOG (self));
  gtk_box_pack_start (GTK_BOX (area), GTK_WIDGET (grid), TRUE, TRUE, 0);
  gtk_widget_show_all (area);

  g_signal_connect_swapped (self->id, "changed", G_CALLBACK (changed), self);
  g_signal_connect_swapped (self->title, "changed", G_CALLBACK (changed), self);
  g_signal_connect_swapped (self->description, "changed", G_CALLBACK (changed), self);
  g_signal_connect_swapped (gtk_text_view_get_buffer (GTK_TEXT_VIEW (self->templates)),
                            "changed", G_CALLBACK (changed), self);
  self->prompts_changed = g_signal_connect (
    gtk_text_view_get_buffer (GTK_TEXT_VIEW (self->prompts)), "changed",
    G_CALLBACK (on_prompts_changed), self);
  gtk_widget_set_sensitive (self->prompts, FALSE);
}

static void
agc_label_set_editor_dispose (GObject *object)
{
  AgcLabelSetEditor *self = AGC_LABEL_SET_EDITOR (object);
  if (self->check_source)
    g_source_remove (self->check_source);
  self->check_source = 0;
  g_clear_object (&self->store);
  G_OBJECT_CLASS (agc_label_set_editor_parent_class)->dispose (object);
}

static void
agc_label_set_editor_finalize (GObject *object)
{
  AgcLabelSetEditor *self = AGC_LABEL_SET_EDITOR (object);
  g_free (self->origin);
  g_free (self->source);
  G_OBJECT_CLASS (agc_label_set_editor_parent_class)->finalize (object);
}

static void
agc_label_set_editor_class_init (AgcLabelSetEditorClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  object_class->dispose = agc_label_set_editor_dispose;
  object_class->finalize = agc_label_set_editor_finalize;
  /* (path): the set was saved there */
  signals[SIGNAL_SAVED] = g_signal_new ("saved", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST, 0,
                                        NULL, NULL, NULL, G_TYPE_NONE, 1, G_TYPE_STRING);
}

GtkWidget *
agc_label_set_editor_new (GtkWindow *parent, const AgcLabelSet *set, const char *origin)
{
  AgcLabelSetEditor *self = g_object_new (AGC_TYPE_LABEL_SET_EDITOR, "transient-for", parent,
                                          "use-header-bar", FALSE, NULL);
  self->origin = g_strdup (origin);
  g_autoptr (AgcLabelSetDraft) draft = set ? agc_label_set_draft_new_from_set (set)
                                           : agc_label_set_draft_new ();
  if (!set)
    {
      g_strfreev (draft->templates);
      draft->templates = g_strsplit ("a photo of {}.", "\n", -1);
    }
  self->source = g_strdup (draft->source);
  gtk_entry_set_text (GTK_ENTRY (self->id), draft->id);
  gtk_entry_set_text (GTK_ENTRY (self->title), draft->title);
  gtk_entry_set_text (GTK_ENTRY (self->description), draft->description);
  g_autofree char *templates = g_strjoinv ("\n", draft->templates);
  gtk_text_buffer_set_text (gtk_text_view_get_buffer (GTK_TEXT_VIEW (self->templates)), templates,
                            -1);
  for (guint i = 0; i < draft->classes->len; i++)
    {
      const AgcLabelClassDraft *c = &g_array_index (draft->classes, AgcLabelClassDraft, i);
      g_autofree char *prompts = g_strjoinv ("\n", c->prompts);
      gtk_list_store_insert_with_values (self->store, NULL, -1, COL_NAME, c->name, COL_DISPLAY,
                                         c->display, COL_TEXT, c->text ? c->text : "",
                                         COL_PROMPTS, prompts, COL_USE_TEMPLATES,
                                         c->use_templates, COL_DOMAIN, c->domain,
                                         COL_ATTRIBUTES, c->attributes, -1);
    }
  check_now (self);
  return GTK_WIDGET (self);
}
