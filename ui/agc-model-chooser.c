/* agc-model-chooser.c — the model chooser, see agc-model-chooser.h. */
#include "agc-model-chooser.h"

#include "agc-ui-settings.h"

#include <glib/gi18n-lib.h>
#include <glib/gstdio.h>

/* Progress reaches the window at most this often (agc_model_pull reports
 * every few kilobytes). */
#define PROGRESS_INTERVAL_US (100 * 1000)

enum
{
  COL_NAME,      /* catalogue name or folder name */
  COL_FAMILY,
  COL_SIZE,      /* on disk, "" when not downloaded */
  COL_LICENCE,
  COL_STATUS,    /* "Ready", "Not downloaded", "Checking…" or the loader's message */
  COL_PATH,      /* the folder, NULL for a catalogue model not downloaded */
  COL_CATALOGUE, /* the catalogue name, NULL for other folders */
  COL_TOOLTIP,
  N_COLUMNS
};

struct _AgcModelChooser
{
  GtkBox parent_instance;

  AgcCatalogue *catalogue; /* NULL when it cannot be read (message shown) */
  GtkListStore *store;
  GtkWidget *view, *message, *download_button;
  GtkWidget *progress_box, *progress, *cancel_button;
  GCancellable *download; /* of the running pull, or NULL */
  GCancellable *checks;   /* of the running model checks */
  int n_checking;
  double fraction;
  gboolean disposed; /* workers' late reports find no widgets to update */
};

enum
{
  SIGNAL_CHANGED,
  SIGNAL_DOWNLOAD_FINISHED,
  SIGNAL_CHECKED,
  N_SIGNALS
};
static guint signals[N_SIGNALS];

G_DEFINE_FINAL_TYPE (AgcModelChooser, agc_model_chooser, GTK_TYPE_BOX)

static void refresh (AgcModelChooser *self);

/* ---- finding rows ------------------------------------------------------- */

static gboolean
find_row (AgcModelChooser *self, const char *path_or_name, GtkTreeIter *iter)
{
  GtkTreeModel *model = GTK_TREE_MODEL (self->store);
  for (gboolean ok = gtk_tree_model_get_iter_first (model, iter); ok;
       ok = gtk_tree_model_iter_next (model, iter))
    {
      g_autofree char *path = NULL, *name = NULL;
      gtk_tree_model_get (model, iter, COL_PATH, &path, COL_CATALOGUE, &name, -1);
      if (g_strcmp0 (path, path_or_name) == 0 || g_strcmp0 (name, path_or_name) == 0)
        return TRUE;
    }
  return FALSE;
}

char *
agc_model_chooser_get_status (AgcModelChooser *self, const char *path_or_name)
{
  g_return_val_if_fail (AGC_IS_MODEL_CHOOSER (self), NULL);
  GtkTreeIter iter;
  char *status = NULL;
  if (find_row (self, path_or_name, &iter))
    gtk_tree_model_get (GTK_TREE_MODEL (self->store), &iter, COL_STATUS, &status, -1);
  return status;
}

static gboolean
selected_row (AgcModelChooser *self, GtkTreeIter *iter)
{
  GtkTreeSelection *selection = gtk_tree_view_get_selection (GTK_TREE_VIEW (self->view));
  return gtk_tree_selection_get_selected (selection, NULL, iter);
}

char *
agc_model_chooser_get_path (AgcModelChooser *self)
{
  g_return_val_if_fail (AGC_IS_MODEL_CHOOSER (self), NULL);
  GtkTreeIter iter;
  char *path = NULL;
  if (selected_row (self, &iter))
    gtk_tree_model_get (GTK_TREE_MODEL (self->store), &iter, COL_PATH, &path, -1);
  return path;
}

/* ---- checking every folder on a worker thread ----------------------------- */

typedef struct
{
  AgcModelChooser *self; /* a reference */
  char *path;
  char *status;
  char *size;
} Check;

static guint64
folder_bytes (const char *path)
{
  if (!g_file_test (path, G_FILE_TEST_IS_DIR))
    {
      GStatBuf st;
      return g_stat (path, &st) == 0 ? (guint64) st.st_size : 0;
    }
  guint64 total = 0;
  GDir *dir = g_dir_open (path, 0, NULL);
  for (const char *name; dir && (name = g_dir_read_name (dir));)
    {
      g_autofree char *child = g_build_filename (path, name, NULL);
      if (!g_file_test (child, G_FILE_TEST_IS_SYMLINK))
        total += folder_bytes (child);
    }
  if (dir)
    g_dir_close (dir);
  return total;
}

static gboolean
check_apply (gpointer data)
{
  Check *check = data;
  AgcModelChooser *self = check->self;
  GtkTreeIter iter;
  if (!self->disposed && find_row (self, check->path, &iter))
    gtk_list_store_set (self->store, &iter, COL_STATUS, check->status, COL_SIZE, check->size,
                        -1);
  if (--self->n_checking == 0 && !self->disposed)
    g_signal_emit (self, signals[SIGNAL_CHECKED], 0);
  g_object_unref (check->self);
  g_free (check->path);
  g_free (check->status);
  g_free (check->size);
  g_free (check);
  return G_SOURCE_REMOVE;
}

static void
check_thread (GTask *task, gpointer source, gpointer data, GCancellable *cancellable)
{
  (void) cancellable;
  GPtrArray *paths = data;
  for (guint i = 0; i < paths->len; i++)
    {
      Check *check = g_new0 (Check, 1);
      check->self = g_object_ref (source);
      check->path = g_strdup (paths->pdata[i]);
      check->size = g_format_size (folder_bytes (check->path));
      GError *error = NULL;
      AgcModel *model = g_cancellable_is_cancelled (cancellable)
                          ? NULL
                          : agc_model_load (check->path, &error);
      check->status = model ? g_strdup (_("Ready"))
                            : g_strdup (error ? error->message : _("Not checked"));
      agc_model_free (model);
      g_clear_error (&error);
      g_idle_add (check_apply, check);
    }
  g_task_return_boolean (task, TRUE);
}

static void
check_paths (AgcModelChooser *self, GPtrArray *paths)
{
  if (paths->len == 0)
    return;
  self->n_checking += (int) paths->len;
  GTask *task = g_task_new (self, self->checks, NULL, NULL);
  g_task_set_task_data (task, g_ptr_array_ref (paths), (GDestroyNotify) g_ptr_array_unref);
  g_task_run_in_thread (task, check_thread);
  g_object_unref (task);
}

gboolean
agc_model_chooser_is_checked (AgcModelChooser *self)
{
  g_return_val_if_fail (AGC_IS_MODEL_CHOOSER (self), FALSE);
  return self->n_checking == 0;
}

/* ---- the list ----------------------------------------------------------- */

static void
add_folder_row (AgcModelChooser *self, const char *path, const char *family,
                GPtrArray *to_check)
{
  g_autofree char *name = g_path_get_basename (path);
  gtk_list_store_insert_with_values (self->store, NULL, -1, COL_NAME, name, COL_FAMILY, family,
                                     COL_SIZE, "", COL_LICENCE, "", COL_STATUS, _("Checking…"),
                                     COL_PATH, path, COL_TOOLTIP, path, -1);
  g_ptr_array_add (to_check, g_strdup (path));
}

static void
add_catalogue_rows (AgcModelChooser *self, const char *models_dir, GPtrArray *to_check)
{
  for (guint i = 0; self->catalogue && i < self->catalogue->models->len; i++)
    {
      const AgcCatalogueModel *m = self->catalogue->models->pdata[i];
      g_autofree char *folder = g_build_filename (models_dir, m->name, NULL);
      gboolean pulled = g_file_test (folder, G_FILE_TEST_IS_DIR);
      g_autofree char *tooltip = g_strdup_printf ("%s\n%s%s%s", m->title,
                                                  m->good_for ? m->good_for : "",
                                                  m->licence ? "\n\n" : "",
                                                  m->licence ? m->licence : "");
      gtk_list_store_insert_with_values (
        self->store, NULL, -1, COL_NAME, m->name, COL_FAMILY, m->family, COL_SIZE, "",
        COL_LICENCE, m->licence ? m->licence : "", COL_STATUS,
        pulled ? _("Checking…") : _("Not downloaded"), COL_PATH, pulled ? folder : NULL,
        COL_CATALOGUE, m->name, COL_TOOLTIP, tooltip, -1);
      if (pulled)
        g_ptr_array_add (to_check, g_strdup (folder));
    }
}

/* Folders in the models folder that the catalogue does not name
 * (placed there by hand), then the recently used ones. */
static void
add_other_rows (AgcModelChooser *self, const char *models_dir, GPtrArray *to_check)
{
  GDir *dir = g_dir_open (models_dir, 0, NULL);
  g_autoptr (GPtrArray) names = g_ptr_array_new_with_free_func (g_free);
  for (const char *name; dir && (name = g_dir_read_name (dir));)
    if (name[0] != '.') // .NAME.partial: a pull in progress
      g_ptr_array_add (names, g_strdup (name));
  if (dir)
    g_dir_close (dir);
  g_ptr_array_sort (names, (GCompareFunc) (void (*) (void)) g_strcmp0);
  GtkTreeIter iter;
  for (guint i = 0; i < names->len; i++)
    {
      g_autofree char *folder = g_build_filename (models_dir, names->pdata[i], NULL);
      /* Translators: the family column of a model folder that the catalogue does not name */
      if (g_file_test (folder, G_FILE_TEST_IS_DIR) && !find_row (self, folder, &iter))
        add_folder_row (self, folder, _("folder"), to_check);
    }
  g_auto (GStrv) recent = agc_ui_recent_model_folders ();
  for (int i = 0; recent[i]; i++)
    if (!find_row (self, recent[i], &iter))
      add_folder_row (self, recent[i], _("recently used"), to_check);
}

static void
refresh (AgcModelChooser *self)
{
  g_autofree char *selected = NULL;
  GtkTreeIter iter;
  if (selected_row (self, &iter))
    gtk_tree_model_get (GTK_TREE_MODEL (self->store), &iter, COL_NAME, &selected, -1);
  gtk_list_store_clear (self->store);
  g_autofree char *models_dir = agc_models_dir ();
  g_autoptr (GPtrArray) to_check = g_ptr_array_new_with_free_func (g_free);
  add_catalogue_rows (self, models_dir, to_check);
  add_other_rows (self, models_dir, to_check);
  check_paths (self, to_check);
  GtkTreeModel *model = GTK_TREE_MODEL (self->store);
  for (gboolean ok = gtk_tree_model_get_iter_first (model, &iter); ok && selected;
       ok = gtk_tree_model_iter_next (model, &iter))
    {
      g_autofree char *name = NULL;
      gtk_tree_model_get (model, &iter, COL_NAME, &name, -1);
      if (g_str_equal (name, selected))
        {
          gtk_tree_selection_select_iter (
            gtk_tree_view_get_selection (GTK_TREE_VIEW (self->view)), &iter);
          break;
        }
    }
}

gboolean
agc_model_chooser_select (AgcModelChooser *self, const char *path)
{
  g_return_val_if_fail (AGC_IS_MODEL_CHOOSER (self) && path != NULL, FALSE);
  GtkTreeIter iter;
  if (!find_row (self, path, &iter))
    {
      if (!g_file_test (path, G_FILE_TEST_IS_DIR))
        return FALSE;
      agc_ui_add_recent_model_folder (path);
      g_autoptr (GPtrArray) to_check = g_ptr_array_new_with_free_func (g_free);
      add_folder_row (self, path, _("recently used"), to_check);
      check_paths (self, to_check);
      find_row (self, path, &iter);
    }
  GtkTreeSelection *selection = gtk_tree_view_get_selection (GTK_TREE_VIEW (self->view));
  gtk_tree_selection_select_iter (selection, &iter);
  g_autoptr (GtkTreePath) tree_path = gtk_tree_model_get_path (GTK_TREE_MODEL (self->store),
                                                               &iter);
  gtk_tree_view_scroll_to_cell (GTK_TREE_VIEW (self->view), tree_path, NULL, FALSE, 0, 0);
  return TRUE;
}

/* ---- downloading on a worker thread ------------------------------------ */

typedef struct
{
  AgcModelChooser *self; /* a reference */
  const AgcCatalogueModel *model; /* in self->catalogue, alive as long as self */
  char *dir;
  gint64 total;      /* bytes of the files of known size */
  gint64 done;       /* bytes of the files finished */
  gint64 last_report;
} Pull;

typedef struct
{
  AgcModelChooser *self; /* a reference */
  double fraction;       /* < 0: unknown, pulse */
  char *text;
} Progress;

static gboolean
progress_apply (gpointer data)
{
  Progress *p = data;
  if (p->self->download && !p->self->disposed) // a late report after the pull is dropped
    {
      p->self->fraction = p->fraction;
      if (p->fraction >= 0)
        gtk_progress_bar_set_fraction (GTK_PROGRESS_BAR (p->self->progress), p->fraction);
      else
        gtk_progress_bar_pulse (GTK_PROGRESS_BAR (p->self->progress));
      gtk_progress_bar_set_text (GTK_PROGRESS_BAR (p->self->progress), p->text);
    }
  g_object_unref (p->self);
  g_free (p->text);
  g_free (p);
  return G_SOURCE_REMOVE;
}

static void
on_pull_progress (const AgcPullProgress *progress, gpointer user_data)
{
  Pull *pull = user_data;
  gint64 now = g_get_monotonic_time ();
  gint64 file_size = progress->file->size > 0 ? progress->file->size : 0;
  gint64 in_file = 0;
  if (progress->stage == AGC_PULL_CHECKED)
    pull->done += file_size;
  else if (progress->stage == AGC_PULL_BYTES || progress->stage == AGC_PULL_RESUME)
    in_file = MIN (progress->bytes, file_size);
  if (progress->stage == AGC_PULL_BYTES && now - pull->last_report < PROGRESS_INTERVAL_US)
    return;
  pull->last_report = now;

  Progress *p = g_new0 (Progress, 1);
  p->self = g_object_ref (pull->self);
  p->fraction = pull->total > 0 ? (double) (pull->done + in_file) / (double) pull->total : -1;
  p->fraction = MIN (p->fraction, 1.0);
  g_autofree char *have = g_format_size ((guint64) (pull->done + in_file));
  g_autofree char *all = g_format_size ((guint64) pull->total);
  /* Translators: download progress: file name, bytes so far, bytes in all */
  p->text = g_strdup_printf (_("%s: %s of %s"), progress->file->path, have, all);
  g_idle_add (progress_apply, p);
}

static void
pull_thread (GTask *task, gpointer source, gpointer data, GCancellable *cancellable)
{
  (void) source;
  Pull *pull = data;
  AgcPullResult result = { 0 };
  GError *error = NULL;
  if (!agc_model_pull (pull->model, pull->dir, on_pull_progress, pull, &result, cancellable,
                       &error))
    {
      g_task_return_error (task, error);
      return;
    }
  char *message = NULL;
  if (result.manual->len > 0)
    {
      GString *text = g_string_new (_("Downloaded what can be; these files must be fetched by "
                                      "hand into the folder"));
      g_string_append_printf (text, " %s:", result.staging);
      for (guint i = 0; i < result.manual->len; i++)
        {
          const AgcCatalogueFile *file = result.manual->pdata[i];
          g_string_append_printf (text, "\n%s (%s)", file->path, file->manual);
        }
      message = g_string_free (text, FALSE);
    }
  agc_pull_result_clear (&result);
  g_task_return_pointer (task, message, g_free);
}

static void
pull_free (Pull *pull)
{
  g_object_unref (pull->self);
  g_free (pull->dir);
  g_free (pull);
}

static void
pull_done (GObject *source, GAsyncResult *result, gpointer user_data)
{
  (void) user_data;
  AgcModelChooser *self = AGC_MODEL_CHOOSER (source);
  GError *error = NULL;
  g_autofree char *manual = g_task_propagate_pointer (G_TASK (result), &error);
  g_clear_object (&self->download);
  if (self->disposed)
    {
      g_clear_error (&error);
      return;
    }
  gtk_widget_hide (self->progress_box);
  gtk_widget_set_sensitive (self->download_button, TRUE);
  const char *message = error ? error->message : manual;
  gtk_label_set_text (GTK_LABEL (self->message), message ? message : _("Downloaded"));
  gtk_widget_show (self->message);
  refresh (self);
  g_signal_emit (self, signals[SIGNAL_DOWNLOAD_FINISHED], 0, error ? error->message : NULL);
  g_clear_error (&error);
}

void
agc_model_chooser_download (AgcModelChooser *self, const char *name)
{
  g_return_if_fail (AGC_IS_MODEL_CHOOSER (self) && name != NULL);
  g_return_if_fail (self->download == NULL);
  const AgcCatalogueModel *model = self->catalogue ? agc_catalogue_find (self->catalogue, name)
                                                   : NULL;
  g_return_if_fail (model != NULL);
  Pull *pull = g_new0 (Pull, 1);
  pull->self = g_object_ref (self);
  pull->model = model;
  pull->dir = agc_models_dir ();
  for (guint i = 0; i < model->files->len; i++)
    {
      const AgcCatalogueFile *file = model->files->pdata[i];
      pull->total += MAX (file->size, 0);
    }
  self->download = g_cancellable_new ();
  self->fraction = 0;
  gtk_progress_bar_set_fraction (GTK_PROGRESS_BAR (self->progress), 0);
  /* Translators: %s is a model's name */
  g_autofree char *starting = g_strdup_printf (_("Downloading %s…"), name);
  gtk_progress_bar_set_text (GTK_PROGRESS_BAR (self->progress), starting);
  gtk_widget_show (self->progress_box);
  gtk_widget_hide (self->message);
  gtk_widget_set_sensitive (self->download_button, FALSE);
  gtk_widget_grab_focus (self->cancel_button);
  GTask *task = g_task_new (self, self->download, pull_done, NULL);
  g_task_set_task_data (task, pull, (GDestroyNotify) pull_free);
  g_task_run_in_thread (task, pull_thread);
  g_object_unref (task);
}

void
agc_model_chooser_cancel_download (AgcModelChooser *self)
{
  g_return_if_fail (AGC_IS_MODEL_CHOOSER (self));
  if (self->download)
    g_cancellable_cancel (self->download);
}

double
agc_model_chooser_get_download_fraction (AgcModelChooser *self)
{
  g_return_val_if_fail (AGC_IS_MODEL_CHOOSER (self), 0.0);
  return self->fraction;
}

gboolean
agc_model_chooser_is_downloading (AgcModelChooser *self)
{
  g_return_val_if_fail (AGC_IS_MODEL_CHOOSER (self), FALSE);
  return self->download != NULL;
}

/* ---- controls ----------------------------------------------------------- */

static void
on_selection_changed (GtkTreeSelection *selection, AgcModelChooser *self)
{
  (void) selection;
  GtkTreeIter iter;
  g_autofree char *path = NULL, *name = NULL;
  if (selected_row (self, &iter))
    gtk_tree_model_get (GTK_TREE_MODEL (self->store), &iter, COL_PATH, &path, COL_CATALOGUE,
                        &name, -1);
  // Download… fetches a catalogue model; a pulled one is checked again (pull verifies).
  gtk_widget_set_sensitive (self->download_button, name != NULL && self->download == NULL);
  g_signal_emit (self, signals[SIGNAL_CHANGED], 0);
}

static void
on_download_clicked (GtkButton *button, AgcModelChooser *self)
{
  (void) button;
  GtkTreeIter iter;
  g_autofree char *name = NULL;
  if (selected_row (self, &iter))
    gtk_tree_model_get (GTK_TREE_MODEL (self->store), &iter, COL_CATALOGUE, &name, -1);
  if (name)
    agc_model_chooser_download (self, name);
}

static void
on_browse_clicked (GtkButton *button, AgcModelChooser *self)
{
  (void) button;
  GtkWidget *toplevel = gtk_widget_get_toplevel (GTK_WIDGET (self));
  GtkFileChooserNative *chooser = gtk_file_chooser_native_new (
    _("Choose a model folder"), GTK_IS_WINDOW (toplevel) ? GTK_WINDOW (toplevel) : NULL,
    GTK_FILE_CHOOSER_ACTION_SELECT_FOLDER, _("_Choose"), _("_Cancel"));
  if (gtk_native_dialog_run (GTK_NATIVE_DIALOG (chooser)) == GTK_RESPONSE_ACCEPT)
    {
      g_autofree char *path = gtk_file_chooser_get_filename (GTK_FILE_CHOOSER (chooser));
      if (path)
        agc_model_chooser_select (self, path);
    }
  g_object_unref (chooser);
}

static GtkWidget *
mnemonic_button (const char *label, const char *accessible, const char *tooltip)
{
  GtkWidget *button = gtk_button_new_with_mnemonic (label);
  atk_object_set_name (gtk_widget_get_accessible (button), accessible);
  gtk_widget_set_tooltip_text (button, tooltip);
  return button;
}

/* Long texts (status, licence) expand and are cut with "…"; short ones
 * (name, family, size) keep their whole width. */
static void
add_column (GtkTreeView *view, const char *title, int column, gboolean expand)
{
  GtkCellRenderer *cell = gtk_cell_renderer_text_new ();
  if (expand)
    g_object_set (cell, "ellipsize", PANGO_ELLIPSIZE_END, NULL);
  GtkTreeViewColumn *col = gtk_tree_view_column_new_with_attributes (title, cell, "text", column,
                                                                     NULL);
  gtk_tree_view_column_set_resizable (col, TRUE);
  gtk_tree_view_column_set_expand (col, expand);
  gtk_tree_view_append_column (view, col);
}

static void
agc_model_chooser_init (AgcModelChooser *self)
{
  gtk_orientable_set_orientation (GTK_ORIENTABLE (self), GTK_ORIENTATION_VERTICAL);
  gtk_box_set_spacing (GTK_BOX (self), 6);
  self->checks = g_cancellable_new ();
  self->store = gtk_list_store_new (N_COLUMNS, G_TYPE_STRING, G_TYPE_STRING, G_TYPE_STRING,
                                    G_TYPE_STRING, G_TYPE_STRING, G_TYPE_STRING, G_TYPE_STRING,
                                    G_TYPE_STRING);

  GtkWidget *heading = gtk_label_new_with_mnemonic (_("_Models:"));
  gtk_label_set_xalign (GTK_LABEL (heading), 0.0f);
  self->view = gtk_tree_view_new_with_model (GTK_TREE_MODEL (self->store));
  gtk_label_set_mnemonic_widget (GTK_LABEL (heading), self->view);
  atk_object_set_name (gtk_widget_get_accessible (self->view), _("Models"));
  gtk_tree_view_set_tooltip_column (GTK_TREE_VIEW (self->view), COL_TOOLTIP);
  GtkTreeView *view = GTK_TREE_VIEW (self->view);
  add_column (view, _("Name"), COL_NAME, FALSE);
  add_column (view, _("Family"), COL_FAMILY, FALSE);
  add_column (view, _("Size"), COL_SIZE, FALSE);
  add_column (view, _("Status"), COL_STATUS, TRUE);
  add_column (view, _("Licence"), COL_LICENCE, TRUE);
  g_signal_connect (gtk_tree_view_get_selection (view), "changed",
                    G_CALLBACK (on_selection_changed), self);
  GtkWidget *scroll = gtk_scrolled_window_new (NULL, NULL);
  gtk_scrolled_window_set_policy (GTK_SCROLLED_WINDOW (scroll), GTK_POLICY_AUTOMATIC,
                                  GTK_POLICY_AUTOMATIC);
  gtk_scrolled_window_set_min_content_height (GTK_SCROLLED_WINDOW (scroll), 120);
  gtk_container_add (GTK_CONTAINER (scroll), self->view);

  GtkWidget *buttons = gtk_box_new (GTK_ORIENTATION_HORIZONTAL, 6);
  GtkWidget *browse = mnemonic_button (_("_Browse folder…"), _("Browse folder"),
                                       _("Use a model folder from anywhere"));
  g_signal_connect (browse, "clicked", G_CALLBACK (on_browse_clicked), self);
  self->download_button = mnemonic_button (_("_Download…"), _("Download"),
                                           _("Download the selected catalogue model into "
                                             "your models folder"));
  g_signal_connect (self->download_button, "clicked", G_CALLBACK (on_download_clicked), self);
  gtk_widget_set_sensitive (self->download_button, FALSE);
  gtk_container_add (GTK_CONTAINER (buttons), browse);
  gtk_container_add (GTK_CONTAINER (buttons), self->download_button);

  self->progress_box = gtk_box_new (GTK_ORIENTATION_HORIZONTAL, 6);
  self->progress = gtk_progress_bar_new ();
  gtk_progress_bar_set_show_text (GTK_PROGRESS_BAR (self->progress), TRUE);
  gtk_progress_bar_set_ellipsize (GTK_PROGRESS_BAR (self->progress), PANGO_ELLIPSIZE_MIDDLE);
  atk_object_set_name (gtk_widget_get_accessible (self->progress), _("Download progress"));
  gtk_widget_set_valign (self->progress, GTK_ALIGN_CENTER);
  self->cancel_button = mnemonic_button (_("C_ancel download"), _("Cancel download"),
                                         _("Stop the download; what arrived is kept for the "
                                           "next try"));
  g_signal_connect_swapped (self->cancel_button, "clicked",
                            G_CALLBACK (agc_model_chooser_cancel_download), self);
  gtk_box_pack_start (GTK_BOX (self->progress_box), self->progress, TRUE, TRUE, 0);
  gtk_container_add (GTK_CONTAINER (self->progress_box), self->cancel_button);

  self->message = gtk_label_new (NULL);
  gtk_label_set_xalign (GTK_LABEL (self->message), 0.0f);
  gtk_label_set_line_wrap (GTK_LABEL (self->message), TRUE);
  gtk_label_set_selectable (GTK_LABEL (self->message), TRUE);
  gtk_widget_set_can_focus (self->message, FALSE);
  atk_object_set_name (gtk_widget_get_accessible (self->message), _("Model message"));

  gtk_container_add (GTK_CONTAINER (self), heading);
  gtk_box_pack_start (GTK_BOX (self), scroll, TRUE, TRUE, 0);
  gtk_container_add (GTK_CONTAINER (self), buttons);
  gtk_container_add (GTK_CONTAINER (self), self->progress_box);
  gtk_container_add (GTK_CONTAINER (self), self->message);
  gtk_widget_show_all (GTK_WIDGET (self));
  gtk_widget_set_no_show_all (self->progress_box, TRUE);
  gtk_widget_set_no_show_all (self->message, TRUE);
  gtk_widget_hide (self->progress_box);
  gtk_widget_hide (self->message);

  GError *error = NULL;
  self->catalogue = agc_catalogue_open (&error);
  if (!self->catalogue)
    {
      // Shown, not hidden: without a catalogue only folders can be chosen.
      gtk_label_set_text (GTK_LABEL (self->message), error->message);
      gtk_widget_show (self->message);
      g_error_free (error);
    }
  refresh (self);
}

static void
agc_model_chooser_dispose (GObject *object)
{
  AgcModelChooser *self = AGC_MODEL_CHOOSER (object);
  self->disposed = TRUE;
  if (self->download)
    g_cancellable_cancel (self->download);
  g_cancellable_cancel (self->checks);
  g_clear_object (&self->store);
  G_OBJECT_CLASS (agc_model_chooser_parent_class)->dispose (object);
}

static void
agc_model_chooser_finalize (GObject *object)
{
  AgcModelChooser *self = AGC_MODEL_CHOOSER (object);
  // Threads hold references: by now none runs, and the catalogue can go.
  agc_catalogue_free (self->catalogue);
  g_clear_object (&self->checks);
  G_OBJECT_CLASS (agc_model_chooser_parent_class)->finalize (object);
}

static void
agc_model_chooser_class_init (AgcModelChooserClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  object_class->dispose = agc_model_chooser_dispose;
  object_class->finalize = agc_model_chooser_finalize;
  /* (): the selection changed */
  signals[SIGNAL_CHANGED] = g_signal_new ("changed", G_TYPE_FROM_CLASS (klass),
                                          G_SIGNAL_RUN_LAST, 0, NULL, NULL, NULL, G_TYPE_NONE,
                                          0);
  /* (message): a download ended; NULL when complete, else why not */
  signals[SIGNAL_DOWNLOAD_FINISHED] = g_signal_new ("download-finished",
                                                    G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST,
                                                    0, NULL, NULL, NULL, G_TYPE_NONE, 1,
                                                    G_TYPE_STRING);
  /* (): every listed folder has been opened or has failed to */
  signals[SIGNAL_CHECKED] = g_signal_new ("checked", G_TYPE_FROM_CLASS (klass),
                                          G_SIGNAL_RUN_LAST, 0, NULL, NULL, NULL, G_TYPE_NONE,
                                          0);
}

GtkWidget *
agc_model_chooser_new (void)
{
  return g_object_new (AGC_TYPE_MODEL_CHOOSER, NULL);
}
