/* test-results-window.c — the results window (ui/agc-results-window.h) on a
 * real tiny model under Xvfb: it lists the classifier's top labels in order
 * with their probabilities; its actions, pressed through their mnemonics,
 * emit the labels, copy them to the clipboard and label the kept embedding
 * again with another set, giving what a classifier of that set gives for
 * the same embedding; a failure is shown in the window; several labelled
 * layers are picked one at a time and relabelled together; its size is
 * remembered. */
#include "agc-results-window.h"
#include "agc-ui-settings.h"
#include "ui-test-util.h"

static char *model_dir;
static AgcModel *model;
static float *embedding;      /* [E] of a red square */
static float *blue_embedding; /* [E] of a blue one */

static const char *colours_json
  = "{\"id\": \"colours\", \"title\": \"Colours of squares\", \"templates\": [\"a {} square\"],"
    " \"classes\": [{\"name\": \"red\", \"display\": \"Red\"},"
    " {\"name\": \"blue\", \"display\": \"Blue\"},"
    " {\"name\": \"green\", \"display\": \"Green\"}]}";
static const char *words_json
  = "{\"id\": \"words\", \"title\": \"Other words\", \"templates\": [\"a photo of {}.\"],"
    " \"classes\": [{\"name\": \"leaf\", \"display\": \"Leaf\"},"
    " {\"name\": \"cow\", \"display\": \"Cow\"},"
    " {\"name\": \"fish\", \"display\": \"Fish\"},"
    " {\"name\": \"soil\", \"display\": \"Soil\"}]}";

/* The rows a window must show for label set id: the classifier's top
 * classes for the embedding e, as "Display: NN percent". */
static char **
expected_rows_of (const float *e, const char *id, int top_k)
{
  AgcLabelSet *set = agc_label_set_open (id, NULL);
  g_assert_nonnull (set);
  GError *error = NULL;
  AgcClassifier *classifier = agc_classifier_new (model, set, NULL, &error);
  g_assert_no_error (error);
  int n = agc_classifier_n_classes (classifier);
  float probs[16];
  int top[16];
  agc_classifier_probabilities (classifier, e, probs);
  int n_top = agc_top_k (probs, n, top_k, top);
  char **rows = g_new0 (char *, n_top + 1);
  for (int k = 0; k < n_top; k++)
    rows[k] = g_strdup_printf ("%s: %.0f percent", agc_label_set_class_display_name (set, top[k]),
                               100.0 * probs[top[k]]);
  agc_classifier_free (classifier);
  agc_label_set_free (set);
  return rows;
}

static char **
expected_rows (const char *id, int top_k)
{
  return expected_rows_of (embedding, id, top_k);
}

static AgcResultsWindow *
new_window (const char *set_id, int top_k)
{
  GdkPixbuf *thumb = ui_test_square (0xd02020, 300);
  AgcModel *own = agc_model_load (model_dir, NULL);
  GtkWidget *window = agc_results_window_new (own, "tiny", top_k);
  agc_results_window_add_item (AGC_RESULTS_WINDOW (window), NULL, embedding, thumb);
  g_object_unref (thumb);
  AgcLabelSet *set = agc_label_set_open (set_id, NULL);
  AgcClassifier *classifier = agc_classifier_new (own, set, NULL, NULL);
  agc_results_window_show_label_set (AGC_RESULTS_WINDOW (window), set, set_id, classifier);
  return AGC_RESULTS_WINDOW (window);
}

static void
on_text_layer (AgcResultsWindow *window, const char *text, char **out)
{
  (void) window;
  *out = g_strdup (text);
}

static void
on_keywords (AgcResultsWindow *window, char **labels, char ***out)
{
  (void) window;
  *out = g_strdupv (labels);
}

static void
assert_rows (GtkWidget *window, const char *set_id, int top_k)
{
  g_auto (GStrv) want = expected_rows (set_id, top_k);
  g_auto (GStrv) got = ui_test_row_names (ui_test_get (window, "Top labels"));
  g_assert_cmpstrv (got, want);
}

static void
test_lists_and_acts (void)
{
  AgcResultsWindow *window = new_window ("colours", 2);
  ui_test_show (GTK_WIDGET (window));
  assert_rows (GTK_WIDGET (window), "colours", 2);
  int n = 0;
  g_autofree float *probs = agc_results_window_get_probabilities (window, -1, &n);
  g_assert_cmpint (n, ==, 2);
  g_assert_cmpfloat (probs[0], >=, probs[1]);

  // Alt+L: add as text layer; the text is the one copied, one line per label
  g_autofree char *layer_text = NULL;
  g_signal_connect (window, "add-text-layer", G_CALLBACK (on_text_layer), &layer_text);
  ui_test_press_mnemonic (GTK_WIDGET (window), GDK_KEY_l);
  g_assert_nonnull (layer_text);
  g_autofree char *text = agc_results_window_get_text (window, -1);
  g_assert_cmpstr (layer_text, ==, text);
  g_auto (GStrv) lines = g_strsplit (text, "\n", -1);
  g_assert_cmpint (g_strv_length (lines), ==, 2);

  // Alt+K: keywords are the export names, most probable first
  g_auto (GStrv) keywords = NULL;
  g_signal_connect (window, "add-keywords", G_CALLBACK (on_keywords), &keywords);
  ui_test_press_mnemonic (GTK_WIDGET (window), GDK_KEY_k);
  g_auto (GStrv) labels = agc_results_window_get_labels (window, -1);
  g_assert_cmpstrv (keywords, labels);
  g_assert_true (g_str_has_prefix (lines[0], "Red ") || g_str_has_prefix (lines[0], "Blue ")
                 || g_str_has_prefix (lines[0], "Green "));

  // Alt+Y: copy as text, read back from the X clipboard
  ui_test_press_mnemonic (GTK_WIDGET (window), GDK_KEY_y);
  g_autofree char *copied = gtk_clipboard_wait_for_text (
    gtk_widget_get_clipboard (GTK_WIDGET (window), GDK_SELECTION_CLIPBOARD));
  g_assert_cmpstr (copied, ==, text);

  // Alt+W focuses the label-set picker; choose "words", Alt+G labels again
  ui_test_press_mnemonic (GTK_WIDGET (window), GDK_KEY_w);
  GtkWidget *combo = ui_test_get (GTK_WIDGET (window), "Label set");
  GtkWidget *focus = gtk_window_get_focus (GTK_WINDOW (window));
  g_assert_true (focus == combo || gtk_widget_is_ancestor (focus, combo));
  g_assert_true (gtk_combo_box_set_active_id (GTK_COMBO_BOX (combo), "words"));
  UiTestEnded r = { 0 };
  g_signal_connect (window, "relabelled", G_CALLBACK (ui_test_on_ended), &r);
  ui_test_press_mnemonic (GTK_WIDGET (window), GDK_KEY_g);
  ui_test_wait_for (&r.done);
  g_assert_null (r.message);
  assert_rows (GTK_WIDGET (window), "words", 2);
  g_auto (GStrv) relabelled = agc_results_window_get_labels (window, -1);
  g_assert_true (g_strv_contains ((const char *const *) relabelled, "leaf")
                 || g_strv_contains ((const char *const *) relabelled, "cow")
                 || g_strv_contains ((const char *const *) relabelled, "fish")
                 || g_strv_contains ((const char *const *) relabelled, "soil"));

  // a set that cannot be opened: the loader's message, the old result kept
  r.done = FALSE;
  g_autofree char *missing = ui_test_path ("no-such-set.json");
  agc_results_window_relabel (window, missing);
  ui_test_wait_for (&r.done);
  g_assert_nonnull (r.message);
  g_assert_nonnull (strstr (r.message, "no-such-set.json"));
  assert_rows (GTK_WIDGET (window), "words", 2);
  g_free (r.message);
  gtk_widget_destroy (GTK_WIDGET (window));
}

/* Two layers labelled each on its own: the "Result for" picker (Alt+U)
 * shows each one's labels, the actions carry the shown one's, and labelling
 * again relabels both. */
static void
test_items (void)
{
  AgcResultsWindow *window = new_window ("colours", 2);
  GtkWidget *picker = ui_test_get (GTK_WIDGET (window), "Result for");
  ui_test_show (GTK_WIDGET (window));
  g_assert_false (gtk_widget_is_visible (picker)); // one item: no picker
  GdkPixbuf *thumb = ui_test_square (0x2020d0, 300);
  g_assert_cmpint (agc_results_window_add_item (window, "Blue layer", blue_embedding, thumb), ==,
                   1);
  g_object_unref (thumb);
  ui_test_settle (100);
  g_assert_true (gtk_widget_is_visible (picker));
  g_assert_cmpint (agc_results_window_get_n_items (window), ==, 2);
  assert_rows (GTK_WIDGET (window), "colours", 2);

  ui_test_press_mnemonic (GTK_WIDGET (window), GDK_KEY_u);
  GtkWidget *focus = gtk_window_get_focus (GTK_WINDOW (window));
  g_assert_true (focus == picker || gtk_widget_is_ancestor (focus, picker));
  gtk_combo_box_set_active (GTK_COMBO_BOX (picker), 1);
  g_assert_cmpint (agc_results_window_get_item (window), ==, 1);
  g_auto (GStrv) want = expected_rows_of (blue_embedding, "colours", 2);
  g_auto (GStrv) got = ui_test_row_names (ui_test_get (GTK_WIDGET (window), "Top labels"));
  g_assert_cmpstrv (got, want);
  g_autofree char *layer_text = NULL;
  g_signal_connect (window, "add-text-layer", G_CALLBACK (on_text_layer), &layer_text);
  ui_test_press_mnemonic (GTK_WIDGET (window), GDK_KEY_l);
  g_autofree char *blue_text = agc_results_window_get_text (window, 1);
  g_autofree char *red_text = agc_results_window_get_text (window, 0);
  g_assert_cmpstr (layer_text, ==, blue_text);

  UiTestEnded r = { 0 };
  g_signal_connect (window, "relabelled", G_CALLBACK (ui_test_on_ended), &r);
  agc_results_window_relabel (window, "words");
  ui_test_wait_for (&r.done);
  g_assert_null (r.message);
  const float *embeddings[] = { embedding, blue_embedding };
  for (int item = 0; item < 2; item++)
    {
      g_auto (GStrv) rows = expected_rows_of (embeddings[item], "words", 2);
      agc_results_window_set_item (window, item);
      g_auto (GStrv) shown = ui_test_row_names (ui_test_get (GTK_WIDGET (window),
                                                             "Top labels"));
      g_assert_cmpstrv (shown, rows);
    }
  const AgcLabelSet *set = NULL;
  g_assert_cmpstr (agc_results_window_get_source (window, &set, NULL), ==, "words");
  g_assert_cmpstr (agc_label_set_id (set), ==, "words");
  gtk_widget_destroy (GTK_WIDGET (window));
}

/* Closing the window while it labels again: the worker finishes with the
 * model it was given, then the window goes. */
static void
test_close_while_relabelling (void)
{
  AgcResultsWindow *window = new_window ("colours", 2);
  ui_test_show (GTK_WIDGET (window));
  GWeakRef ref;
  g_weak_ref_init (&ref, window);
  agc_results_window_relabel (window, "words");
  gtk_widget_destroy (GTK_WIDGET (window));
  gint64 end = g_get_monotonic_time () + 30 * G_USEC_PER_SEC;
  GObject *alive;
  while ((alive = g_weak_ref_get (&ref)) && g_get_monotonic_time () < end)
    {
      g_object_unref (alive);
      g_main_context_iteration (NULL, TRUE);
    }
  g_assert_null (alive);
  g_weak_ref_clear (&ref);
}

static void
test_remembers_size (void)
{
  AgcResultsWindow *window = new_window ("colours", 3);
  gtk_window_resize (GTK_WINDOW (window), 700, 530);
  ui_test_show (GTK_WIDGET (window));
  int width = 0, height = 0;
  gtk_window_get_size (GTK_WINDOW (window), &width, &height);
  g_assert_cmpint (width, ==, 700);
  gtk_widget_hide (GTK_WIDGET (window));
  gtk_widget_destroy (GTK_WIDGET (window));

  g_autofree char *path = agc_ui_settings_path ();
  g_autoptr (GKeyFile) settings = g_key_file_new ();
  g_assert_true (g_key_file_load_from_file (settings, path, 0, NULL));
  g_assert_cmpint (g_key_file_get_integer (settings, "results-window", "width", NULL), ==,
                   width);
  g_assert_cmpint (g_key_file_get_integer (settings, "results-window", "height", NULL), ==,
                   height);

  window = new_window ("colours", 3);
  int default_width = 0, default_height = 0;
  gtk_window_get_default_size (GTK_WINDOW (window), &default_width, &default_height);
  g_assert_cmpint (default_width, ==, width);
  g_assert_cmpint (default_height, ==, height);
  gtk_widget_destroy (GTK_WIDGET (window));
}

/* Every button has an accessible name and a mnemonic. */
static void
check_button (GtkWidget *widget, gpointer data)
{
  (void) data;
  if (GTK_IS_BUTTON (widget) && gtk_button_get_label (GTK_BUTTON (widget)))
    {
      g_assert_true (gtk_button_get_use_underline (GTK_BUTTON (widget)));
      g_assert_nonnull (strchr (gtk_button_get_label (GTK_BUTTON (widget)), '_'));
      const char *name = atk_object_get_name (gtk_widget_get_accessible (widget));
      g_assert_true (name && *name && !strchr (name, '_'));
    }
  if (GTK_IS_CONTAINER (widget))
    gtk_container_forall (GTK_CONTAINER (widget), check_button, NULL);
}

static void
test_accessible (void)
{
  AgcResultsWindow *window = new_window ("colours", 3);
  check_button (GTK_WIDGET (window), NULL);
  gtk_widget_destroy (GTK_WIDGET (window));
}

int
main (int argc, char **argv)
{
  ui_test_init (&argc, &argv, "agc-results-window");
  g_autofree char *colours = ui_test_path ("labels/colours.json");
  g_autofree char *words = ui_test_path ("labels/words.json");
  ui_test_write (colours, colours_json);
  ui_test_write (words, words_json);
  model_dir = ui_test_tiny_model ("tiny");
  GError *error = NULL;
  model = agc_model_load (model_dir, &error);
  g_assert_no_error (error);
  g_autofree char *red_path = ui_test_path ("captions/0.png");
  AgcImage *red = agc_image_load (red_path, &error);
  g_assert_no_error (error);
  embedding = g_new (float, agc_model_embed_dim (model));
  g_assert_true (agc_model_embed_images (model, &red, 1, TRUE, embedding, NULL, &error));
  agc_image_free (red);
  g_autofree char *blue_path = ui_test_path ("captions/1.png");
  AgcImage *blue = agc_image_load (blue_path, &error);
  g_assert_no_error (error);
  blue_embedding = g_new (float, agc_model_embed_dim (model));
  g_assert_true (agc_model_embed_images (model, &blue, 1, TRUE, blue_embedding, NULL, &error));
  agc_image_free (blue);

  g_test_add_func ("/results-window/lists-and-acts", test_lists_and_acts);
  g_test_add_func ("/results-window/items", test_items);
  g_test_add_func ("/results-window/close-while-relabelling", test_close_while_relabelling);
  g_test_add_func ("/results-window/remembers-size", test_remembers_size);
  g_test_add_func ("/results-window/accessible", test_accessible);
  int status = g_test_run ();
  agc_model_free (model);
  g_free (embedding);
  g_free (blue_embedding);
  g_free (model_dir);
  ui_test_cleanup ();
  return status;
}
