/* test-training-window.c — the training window (ui/agc-training-window.h)
 * under Xvfb on a real tiny model and a folder of red, blue and green
 * squares with one broken file: the class table counts each class's
 * images and unreadable files; "Train" plots every epoch; Cancel pressed
 * during epoch 7 leaves no adapter and a checkpoint; "Train" again
 * continues after epoch 7 (agc_train says so), finishes, writes the
 * adapter, removes the checkpoint, lists the adapter among the recent
 * ones and shows a confusion matrix equal to agc_evaluate's for that
 * adapter.
 * The method chooser lists the library's methods (agc_train_methods) by
 * their translated display names; DINO shows its own settings (and only
 * DINO), takes an untagged folder that the tagged methods refuse, and the
 * settings and base adapter read back as set.  Fine-tuning's settings are
 * shown only for it, and with every method (and after training, with the
 * summary) the window's natural size fits a 1280x800 screen. */
#include "agc-training-window.h"
#include "agc-ui-settings.h"
#include "ui-test-util.h"

#define EPOCHS 30
#define CANCEL_AT 7

static char *model_dir, *data_dir;

typedef struct
{
  gboolean scanned, finished;
  char *message;
  int first_epoch, last_epoch, n_epochs;
  GtkWidget *cancel; /* pressed when epoch CANCEL_AT is shown, if set */
} Watch;

static void
on_scanned (AgcTrainingWindow *window, const char *message, Watch *w)
{
  (void) window;
  g_assert_null (message);
  w->scanned = TRUE;
}

static void
on_epoch (AgcTrainingWindow *window, int epoch, int total, double train_loss, double val_loss,
          double val_accuracy, Watch *w)
{
  (void) window;
  (void) val_loss;
  (void) val_accuracy;
  g_assert_cmpint (total, ==, EPOCHS);
  g_assert_true (train_loss >= 0);
  if (!w->n_epochs++)
    w->first_epoch = epoch;
  else
    g_assert_cmpint (epoch, ==, w->last_epoch + 1); // none missed
  w->last_epoch = epoch;
  if (w->cancel && epoch == CANCEL_AT)
    gtk_button_clicked (GTK_BUTTON (w->cancel));
}

static void
on_finished (AgcTrainingWindow *window, const char *message, Watch *w)
{
  (void) window;
  g_free (w->message);
  w->message = g_strdup (message);
  w->finished = TRUE;
}

/* WINDOW-scaleN.png in $AGC_SCREENSHOT_DIR, when set. */
static void
screenshot (GtkWidget *widget, const char *what)
{
  if (!g_getenv ("AGC_SCREENSHOT_DIR"))
    return;
  gtk_widget_queue_draw (widget);
  ui_test_settle (500);
  GdkWindow *gdk = gtk_widget_get_window (widget);
  GdkPixbuf *shot = gdk_pixbuf_get_from_window (gdk, 0, 0, gdk_window_get_width (gdk),
                                                gdk_window_get_height (gdk));
  g_autofree char *name = g_strdup_printf ("%s-scale%d.png", what,
                                           gdk_window_get_scale_factor (gdk));
  g_autofree char *path = g_build_filename (g_getenv ("AGC_SCREENSHOT_DIR"), name, NULL);
  gdk_pixbuf_save (shot, path, "png", NULL, NULL);
  g_object_unref (shot);
}

/* The smallest screen the window must fit, in logical pixels: a 1280x800
 * laptop, at any scale; its height less a title bar and a panel. */
#define SCREEN_WIDTH 1280
#define SCREEN_HEIGHT (800 - 64)

/* The window's natural size, what GTK opens it at, fits that screen: a
 * long method name, status or summary line would push Close off it. */
static void
assert_fits_screen (GtkWidget *widget, const char *when)
{
  int minimum, natural, min_height, nat_height;
  gtk_widget_get_preferred_width (widget, &minimum, &natural);
  gtk_widget_get_preferred_height_for_width (widget, natural, &min_height, &nat_height);
  g_test_message ("%s: natural width %d, height at it %d (at least %d)", when, natural,
                   nat_height, min_height);
  g_assert_cmpint (natural, <, SCREEN_WIDTH);
  g_assert_cmpint (min_height, <, SCREEN_HEIGHT);
}

static void
make_data (void)
{
  tiny_write_tagged (data_dir, 3, 6, 0x040404);
  g_autofree char *broken = g_strdup_printf ("%s/red/broken.png", data_dir);
  ui_test_write (broken, "not an image at all");
}

static void
test_training (void)
{
  GtkWidget *widget = agc_training_window_new ();
  AgcTrainingWindow *window = AGC_TRAINING_WINDOW (widget);
  Watch w = { 0 };
  g_signal_connect (window, "scanned", G_CALLBACK (on_scanned), &w);
  g_signal_connect (window, "epoch", G_CALLBACK (on_epoch), &w);
  g_signal_connect (window, "finished", G_CALLBACK (on_finished), &w);
  ui_test_show (widget);
  g_assert_true (agc_training_window_set_model (window, model_dir));
  agc_training_window_set_folder (window, data_dir);
  ui_test_wait_for (&w.scanned);

  // the class table: tag, images, unreadable files
  GtkTreeModel *classes = gtk_tree_view_get_model (GTK_TREE_VIEW (ui_test_get (widget,
                                                                               "Classes")));
  g_assert_cmpint (gtk_tree_model_iter_n_children (classes, NULL), ==, 3);
  GtkTreeIter iter;
  int unreadable_total = 0;
  for (gboolean ok = gtk_tree_model_get_iter_first (classes, &iter); ok;
       ok = gtk_tree_model_iter_next (classes, &iter))
    {
      g_autofree char *name = NULL;
      int images, unreadable;
      gtk_tree_model_get (classes, &iter, 0, &name, 1, &images, 2, &unreadable, -1);
      g_assert_cmpint (images, ==, 6);
      g_assert_cmpint (unreadable, ==, g_str_equal (name, "red") ? 1 : 0);
      unreadable_total += unreadable;
    }
  g_assert_cmpint (unreadable_total, ==, 1);

  // the defaults are the library's
  AgcTrainParams defaults = agc_train_default_params (), shown
                                                         = agc_training_window_get_params (window);
  g_assert_cmpint (shown.method, ==, defaults.method);
  g_assert_cmpint (shown.max_epochs, ==, defaults.max_epochs);
  g_assert_cmpfloat (shown.learning_rate, ==, defaults.learning_rate);
  g_assert_cmpint (shown.patience, ==, defaults.patience);
  // a learning rate left at 0 shows the method's own (placeholder), and follows the method
  GtkWidget *rate = ui_test_get (widget, "Learning rate"), *method = ui_test_get (widget, "Method");
  g_autofree char *probe_rate
    = g_strdup_printf ("default (%g)", agc_train_method_learning_rate (AGC_TRAIN_PROBE));
  g_assert_cmpstr (gtk_entry_get_text (GTK_ENTRY (rate)), ==, "");
  g_assert_cmpstr (gtk_entry_get_placeholder_text (GTK_ENTRY (rate)), ==, probe_rate);
  gtk_combo_box_set_active_id (GTK_COMBO_BOX (method), "finetune");
  g_autofree char *finetune_rate
    = g_strdup_printf ("default (%g)", agc_train_method_learning_rate (AGC_TRAIN_FINETUNE));
  g_assert_cmpstr (gtk_entry_get_placeholder_text (GTK_ENTRY (rate)), ==, finetune_rate);
  gtk_combo_box_set_active_id (GTK_COMBO_BOX (method), "probe");
  g_assert_cmpfloat (agc_training_window_get_params (window).learning_rate, ==, 0.0);
  gtk_entry_set_text (GTK_ENTRY (rate), "0.02"); // a typed number is taken as it is
  gtk_spin_button_update (GTK_SPIN_BUTTON (rate));
  g_assert_cmpfloat (agc_training_window_get_params (window).learning_rate, ==, 0.02);
  gtk_spin_button_set_value (GTK_SPIN_BUTTON (rate), 0.0);

  g_autofree char *adapter = ui_test_path ("colours.safetensors");
  g_autofree char *checkpoint = g_strconcat (adapter, ".checkpoint", NULL);
  agc_training_window_set_adapter_path (window, adapter);
  gtk_spin_button_set_value (GTK_SPIN_BUTTON (ui_test_get (widget, "Epochs (at most)")), EPOCHS);
  gtk_spin_button_set_value (GTK_SPIN_BUTTON (ui_test_get (widget, "Patience")), EPOCHS);

  // Train, then Cancel during epoch CANCEL_AT
  w.cancel = ui_test_get (widget, "Cancel");
  ui_test_press_mnemonic (widget, GDK_KEY_t);
  ui_test_wait_for (&w.finished);
  g_assert_nonnull (w.message);
  g_test_message ("first run: %s", w.message);
  g_assert_cmpint (w.first_epoch, ==, 1);
  g_assert_cmpint (w.last_epoch, ==, CANCEL_AT);
  g_assert_false (g_file_test (adapter, G_FILE_TEST_EXISTS));
  g_assert_true (g_file_test (checkpoint, G_FILE_TEST_EXISTS));
  g_assert_null (agc_training_window_get_result (window));

  // Train again: continues after the checkpoint and finishes
  w = (Watch) { .scanned = TRUE };
  ui_test_press_mnemonic (widget, GDK_KEY_t);
  ui_test_wait_for (&w.finished);
  g_assert_null (w.message);
  g_assert_cmpint (w.first_epoch, ==, CANCEL_AT + 1);
  g_assert_cmpint (w.last_epoch, ==, EPOCHS);
  g_assert_false (agc_training_window_is_busy (window));
  g_assert_true (gtk_widget_get_sensitive (ui_test_get (widget, "Train")));
  const AgcTrainResult *result = agc_training_window_get_result (window);
  g_assert_nonnull (result);
  g_assert_cmpint (result->resumed_epoch, ==, CANCEL_AT);
  g_assert_cmpint (result->epochs, ==, EPOCHS);
  g_assert_cmpint (result->n_skipped, ==, 1);
  g_assert_true (g_file_test (adapter, G_FILE_TEST_IS_REGULAR));
  g_assert_false (g_file_test (checkpoint, G_FILE_TEST_EXISTS));
  g_auto (GStrv) recent = agc_ui_recent_adapters ();
  g_assert_cmpstr (recent[0], ==, adapter);

  // the summary is agc_evaluate's confusion matrix for the adapter
  const AgcEvaluation *shown_e = agc_training_window_get_evaluation (window);
  AgcModel *model = agc_model_load (model_dir, NULL);
  GError *error = NULL;
  AgcEvaluation *e = agc_evaluation_open (data_dir, NULL, NULL, &error);
  g_assert_no_error (error);
  g_assert_true (agc_evaluate (e, model, adapter, NULL, NULL, NULL, NULL, &error));
  g_assert_cmpint (agc_evaluation_n_images (shown_e), ==, 18);
  for (int r = 0; r < 3; r++)
    for (int p = 0; p < agc_evaluation_n_predicted (e); p++)
      g_assert_cmpint (agc_evaluation_count (shown_e, r, p), ==, agc_evaluation_count (e, r, p));
  GtkWidget *summary = ui_test_get (widget, "Summary");
  g_autofree char *cell = g_strdup_printf ("%d", agc_evaluation_count (e, 0, 0));
  GtkWidget *first = gtk_grid_get_child_at (GTK_GRID (summary), 1, 2);
  g_assert_cmpstr (gtk_label_get_text (GTK_LABEL (first)), ==, cell);
  agc_evaluation_free (e);
  agc_model_free (model);

  assert_fits_screen (widget, "trained, with the summary");
  screenshot (widget, "training-window");
  g_free (w.message);
  gtk_widget_destroy (widget);
}

typedef struct
{
  gboolean scanned;
  char *message;
} Scan;

static void
on_scan (AgcTrainingWindow *window, const char *message, Scan *scan)
{
  (void) window;
  g_free (scan->message);
  scan->message = g_strdup (message);
  scan->scanned = TRUE;
}

static gboolean
shown (GtkWidget *widget)
{
  return gtk_widget_is_visible (widget) && gtk_widget_is_sensitive (widget);
}

static void
test_methods (void)
{
  GtkWidget *widget = agc_training_window_new ();
  AgcTrainingWindow *window = AGC_TRAINING_WINDOW (widget);
  ui_test_show (widget);
  g_assert_true (agc_training_window_set_model (window, model_dir));

  // one entry per library method, in its order, named by its display name
  GtkComboBox *method = GTK_COMBO_BOX (ui_test_get (widget, "Method"));
  GtkTreeModel *list = gtk_combo_box_get_model (method);
  int n_methods;
  const AgcTrainMethod *methods = agc_train_methods (&n_methods);
  g_assert_cmpint (n_methods, >=, 4);
  g_assert_cmpint (gtk_tree_model_iter_n_children (list, NULL), ==, n_methods);
  for (int m = 0; m < n_methods; m++)
    {
      g_assert_true (gtk_combo_box_set_active_id (method, agc_train_method_name (methods[m])));
      g_assert_cmpint (agc_training_window_get_params (window).method, ==, methods[m]);
      GtkTreeIter iter;
      g_assert_true (gtk_combo_box_get_active_iter (method, &iter));
      g_autofree char *text = NULL;
      gtk_tree_model_get (list, &iter, 0, &text, -1);
      g_assert_cmpstr (text, ==, agc_train_method_display_name (methods[m]));
      assert_fits_screen (widget, agc_train_method_name (methods[m]));
    }

  // DINO's settings only with DINO; validation settings not with DINO
  GtkWidget *crops = ui_test_get (widget, "Local crops"), *outputs = ui_test_get (widget, "Outputs"),
            *accumulate = ui_test_get (widget, "Accumulate"),
            *crop_size = ui_test_get (widget, "Crop size");
  gtk_combo_box_set_active_id (method, "probe");
  g_assert_false (gtk_widget_is_visible (crops));
  g_assert_true (shown (ui_test_get (widget, "Patience")));
  gtk_combo_box_set_active_id (method, "dino");
  g_assert_true (shown (crops) && shown (outputs) && shown (accumulate) && shown (crop_size));
  g_assert_false (gtk_widget_is_sensitive (ui_test_get (widget, "Patience")));
  g_assert_false (gtk_widget_is_sensitive (ui_test_get (widget, "Blocks")));
  g_assert_false (gtk_widget_is_visible (ui_test_get (widget, "Mix")));
  gtk_combo_box_set_active_id (method, "finetune"); // fine-tuning's settings only with it
  g_assert_true (shown (ui_test_get (widget, "Blocks")) && shown (ui_test_get (widget, "Mix")));
  g_assert_false (gtk_widget_is_visible (crops));
  gtk_combo_box_set_active_id (method, "dino");

  // the settings read back as set, the base adapter included
  AgcTrainParams set = agc_train_default_params ();
  set.method = AGC_TRAIN_ALIGNER;
  set.dino_local_crops = 3, set.dino_out_dim = 512, set.dino_accumulate = 4;
  set.dino_crop_size = 96;
  set.base_adapter = "/some/where/dino.safetensors";
  agc_training_window_set_params (window, &set);
  AgcTrainParams got = agc_training_window_get_params (window);
  g_assert_cmpint (got.method, ==, AGC_TRAIN_ALIGNER);
  g_assert_cmpint (got.dino_local_crops, ==, 3);
  g_assert_cmpint (got.dino_out_dim, ==, 512);
  g_assert_cmpint (got.dino_accumulate, ==, 4);
  g_assert_cmpint (got.dino_crop_size, ==, 96);
  g_assert_cmpstr (got.base_adapter, ==, set.base_adapter);
  g_assert_cmpstr (gtk_entry_get_text (GTK_ENTRY (ui_test_get (widget, "Base adapter"))), ==,
                   set.base_adapter);
  set.base_adapter = NULL;
  agc_training_window_set_params (window, &set);
  g_assert_null (agc_training_window_get_params (window).base_adapter);
  g_assert_cmpfloat (agc_training_window_get_params (window).weight_decay, ==,
                     agc_train_method_weight_decay (AGC_TRAIN_ALIGNER));

  // an untagged folder (photos, some in a sub-folder): refused by the probe, DINO's data
  g_autofree char *photos = ui_test_path ("untagged");
  g_autofree char *sub = g_build_filename (photos, "field-2", NULL);
  g_mkdir_with_parents (sub, 0700);
  for (int i = 0; i < 3; i++)
    {
      g_autofree char *name = g_strdup_printf ("%s/%d.png", i < 2 ? photos : sub, i);
      tiny_save_square (name, 0x203040u * (guint32) (i + 1));
    }
  Scan scan = { 0 };
  g_signal_connect (window, "scanned", G_CALLBACK (on_scan), &scan);
  gtk_combo_box_set_active_id (method, "probe");
  agc_training_window_set_folder (window, photos);
  ui_test_wait_for (&scan.scanned);
  g_assert_nonnull (scan.message);
  GtkWidget *train = ui_test_get (widget, "Train");
  g_assert_false (gtk_widget_is_sensitive (train));
  gtk_combo_box_set_active_id (method, "dino");
  g_assert_true (gtk_widget_is_sensitive (train));
  g_assert_nonnull (ui_test_find (widget, "Photo folder"));
  scan.scanned = FALSE;
  agc_training_window_set_folder (window, photos); // scanned again with DINO chosen
  ui_test_wait_for (&scan.scanned);
  g_assert_null (scan.message);
  g_assert_true (gtk_widget_is_sensitive (train));
  g_assert_false (gtk_widget_is_sensitive (ui_test_get (widget, "Patience")));
  assert_fits_screen (widget, "dino, untagged folder");
  screenshot (widget, "training-window-dino");
  gtk_combo_box_set_active_id (method, "aligner");
  g_assert_false (gtk_widget_is_sensitive (train));
  g_free (scan.message);
  gtk_widget_destroy (widget);
}

int
main (int argc, char **argv)
{
  ui_test_init (&argc, &argv, "test-training-window");
  model_dir = ui_test_tiny_model ("tiny");
  data_dir = ui_test_path ("squares");
  make_data ();
  g_test_add_func ("/training-window/methods", test_methods);
  g_test_add_func ("/training-window/cancel-and-resume", test_training);
  int status = g_test_run ();
  g_free (model_dir);
  g_free (data_dir);
  ui_test_cleanup ();
  return status;
}
