/* test-label-sets.c — the label-set chooser and editor under Xvfb: the
 * chooser lists installed sets by title and class count, and a broken one
 * with the loader's message; "New…" opens the editor, which is filled and
 * driven through its mnemonics and cell editing like a person would: it
 * shows the loader's message for a bad template, reorders classes, previews
 * the sentences, and saves a file that agc_label_set_load accepts with the
 * classes and sentences typed; saving under an installed id is refused; a
 * real shipped set (plantvillage) comes back unchanged through the editor. */
#include "agc-label-set-chooser.h"
#include "agc-label-set-editor.h"
#include "ui-test-util.h"

static const char *colours_json
  = "{\"id\": \"colours\", \"title\": \"Colours of squares\", \"templates\": [\"a {} square\"],"
    " \"classes\": [{\"name\": \"red\", \"display\": \"Red\"},"
    " {\"name\": \"blue\", \"display\": \"Blue\"},"
    " {\"name\": \"green\", \"display\": \"Green\"}]}";
/* "promts": the kind of typo the loader exists to catch */
static const char *bad_json
  = "{\"id\": \"bad\", \"title\": \"Bad\", \"templates\": [\"a {}\"],"
    " \"classes\": [{\"name\": \"x\", \"display\": \"X\", \"promts\": [\"an x\"]}]}";

static GtkWidget *
editor_window (AgcLabelSetChooser *chooser)
{
  GtkWidget *editor = agc_label_set_chooser_get_editor (chooser);
  g_assert_nonnull (editor);
  gtk_test_widget_wait_for_draw (editor);
  ui_test_settle (50);
  return editor;
}

/* Types text into the entry GTK opened for editing a cell, then Return. */
static void
type_in_cell (GtkWidget *editor, const char *text)
{
  GtkWidget *entry = gtk_window_get_focus (GTK_WINDOW (editor));
  g_assert_true (GTK_IS_ENTRY (entry));
  gtk_entry_set_text (GTK_ENTRY (entry), text);
  gtk_widget_activate (entry); // Return: the cell's "edited"
  ui_test_settle (20);
}

static void
edit_cell (GtkWidget *editor, int row, int column, const char *text)
{
  GtkTreeView *view = GTK_TREE_VIEW (ui_test_get (editor, "Classes"));
  g_autoptr (GtkTreePath) path = gtk_tree_path_new_from_indices (row, -1);
  gtk_widget_grab_focus (GTK_WIDGET (view));
  gtk_tree_view_set_cursor (view, path, gtk_tree_view_get_column (view, column), TRUE);
  ui_test_settle (20);
  type_in_cell (editor, text);
}

static void
set_text_view (GtkWidget *editor, const char *name, const char *text)
{
  GtkWidget *view = ui_test_get (editor, name);
  gtk_text_buffer_set_text (gtk_text_view_get_buffer (GTK_TEXT_VIEW (view)), text, -1);
}

/* Waits for the editor's check (it runs when typing pauses). */
static char *
check_result (GtkWidget *editor)
{
  ui_test_settle (400);
  return g_strdup (gtk_label_get_text (GTK_LABEL (ui_test_get (editor, "Check result"))));
}

typedef struct
{
  gboolean done;
  char *path;
} Saved;

static void
on_saved (AgcLabelSetEditor *editor, const char *path, Saved *s)
{
  (void) editor;
  s->done = TRUE;
  s->path = g_strdup (path);
}

static void
test_chooser_lists (void)
{
  GtkWidget *window = gtk_window_new (GTK_WINDOW_TOPLEVEL);
  AgcLabelSetChooser *chooser = AGC_LABEL_SET_CHOOSER (agc_label_set_chooser_new ());
  gtk_container_add (GTK_CONTAINER (window), GTK_WIDGET (chooser));
  ui_test_show (window);
  g_autofree char *title = NULL;
  int n = 0;
  g_assert_true (agc_label_set_chooser_get_row (chooser, "colours", &title, &n));
  g_assert_cmpstr (title, ==, "Colours of squares");
  g_assert_cmpint (n, ==, 3);
  g_clear_pointer (&title, g_free);

  GError *error = NULL;
  g_assert_null (agc_label_set_open ("bad", &error));
  g_assert_true (agc_label_set_chooser_get_row (chooser, "bad", &title, &n));
  g_assert_cmpstr (title, ==, error->message);
  g_assert_cmpint (n, ==, -1);
  g_clear_error (&error);
  g_assert_true (agc_label_set_chooser_select (chooser, "bad"));
  g_assert_null (agc_label_set_chooser_get_selected (chooser)); // not usable
  g_assert_true (agc_label_set_chooser_select (chooser, "colours"));
  g_autofree char *selected = agc_label_set_chooser_get_selected (chooser);
  g_assert_cmpstr (selected, ==, "colours");
  // an installed set's own file is that set's row, not a second one
  int rows = gtk_tree_model_iter_n_children (
    gtk_tree_view_get_model (GTK_TREE_VIEW (ui_test_get (window, "Label sets"))), NULL);
  g_assert_true (agc_label_set_chooser_select (chooser, "bad"));
  g_autofree char *file = agc_label_set_find ("colours", NULL);
  g_assert_true (agc_label_set_chooser_select (chooser, file));
  g_autofree char *again = agc_label_set_chooser_get_selected (chooser);
  g_assert_cmpstr (again, ==, "colours");
  g_assert_cmpint (gtk_tree_model_iter_n_children (
                     gtk_tree_view_get_model (GTK_TREE_VIEW (ui_test_get (window, "Label sets"))),
                     NULL),
                   ==, rows);
  gtk_widget_destroy (window);
}

static void
test_editor_writes_a_set_the_loader_accepts (void)
{
  GtkWidget *window = gtk_window_new (GTK_WINDOW_TOPLEVEL);
  AgcLabelSetChooser *chooser = AGC_LABEL_SET_CHOOSER (agc_label_set_chooser_new ());
  gtk_container_add (GTK_CONTAINER (window), GTK_WIDGET (chooser));
  ui_test_show (window);
  ui_test_press_mnemonic (window, GDK_KEY_n); // New…
  GtkWidget *editor = editor_window (chooser);

  ui_test_press_mnemonic (editor, GDK_KEY_i); // Id
  g_assert_true (gtk_window_get_focus (GTK_WINDOW (editor)) == ui_test_get (editor, "Id"));
  gtk_entry_set_text (GTK_ENTRY (ui_test_get (editor, "Id")), "pests");
  gtk_entry_set_text (GTK_ENTRY (ui_test_get (editor, "Title")), "Pests on leaves");
  set_text_view (editor, "Templates", "a photo of {}.\na close-up of");

  ui_test_press_mnemonic (editor, GDK_KEY_a); // Add class: editing its export name
  type_in_cell (editor, "aphid");
  edit_cell (editor, 0, 1, "Aphids");
  edit_cell (editor, 0, 2, "aphids on a leaf");
  ui_test_press_mnemonic (editor, GDK_KEY_a);
  type_in_cell (editor, "mite");
  edit_cell (editor, 1, 1, "Spider mites");
  ui_test_press_mnemonic (editor, GDK_KEY_p); // the selected class's own prompts
  set_text_view (editor, "Class prompts", "a leaf covered in fine webbing.");

  // the template without {}: the loader's message, naming the file and the field
  g_autofree char *problem = check_result (editor);
  g_assert_true (g_str_has_prefix (problem, "pests.json"));
  g_assert_nonnull (strstr (problem, "templates[1]"));
  g_assert_nonnull (strstr (problem, "exactly one {}"));
  set_text_view (editor, "Templates", "a photo of {}.\na close-up of {}.");
  g_autofree char *fine = check_result (editor);
  g_assert_cmpstr (fine, ==, "A valid label set of 2 classes");

  // mites first: select the second row, Move up
  GtkTreeView *view = GTK_TREE_VIEW (ui_test_get (editor, "Classes"));
  g_autoptr (GtkTreePath) second = gtk_tree_path_new_from_indices (1, -1);
  gtk_tree_view_set_cursor (view, second, NULL, FALSE);
  ui_test_press_mnemonic (editor, GDK_KEY_u);

  // the sentences each class becomes, as typed: templates filled with the text, then prompts
  const char *want_preview = "Spider mites (mite)\n"
                             "    a photo of Spider mites.\n"
                             "    a close-up of Spider mites.\n"
                             "    a leaf covered in fine webbing.\n"
                             "\n"
                             "Aphids (aphid)\n"
                             "    a photo of aphids on a leaf.\n"
                             "    a close-up of aphids on a leaf.\n";
  ui_test_press_mnemonic (editor, GDK_KEY_v); // Preview prompts
  GtkWidget *preview = NULL;
  GList *toplevels = gtk_window_list_toplevels ();
  for (GList *l = toplevels; l && !preview; l = l->next)
    if (gtk_widget_get_visible (l->data) && l->data != editor && l->data != window)
      preview = ui_test_find (l->data, "Prompt preview");
  g_list_free (toplevels);
  g_assert_nonnull (preview);
  GtkTextBuffer *buffer = gtk_text_view_get_buffer (GTK_TEXT_VIEW (preview));
  GtkTextIter start, end;
  gtk_text_buffer_get_bounds (buffer, &start, &end);
  g_autofree char *shown = gtk_text_buffer_get_text (buffer, &start, &end, FALSE);
  g_assert_cmpstr (shown, ==, want_preview);

  Saved saved = { 0 };
  g_signal_connect (editor, "saved", G_CALLBACK (on_saved), &saved);
  gtk_window_present (GTK_WINDOW (editor));
  ui_test_press_mnemonic (editor, GDK_KEY_s); // Save
  ui_test_wait_for (&saved.done);
  g_autofree char *want_path = g_build_filename (g_get_user_data_dir (), "agriclip", "labels",
                                                 "pests.json", NULL);
  g_assert_cmpstr (saved.path, ==, want_path);

  GError *error = NULL;
  AgcLabelSet *set = agc_label_set_load (saved.path, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (agc_label_set_id (set), ==, "pests");
  g_assert_cmpstr (agc_label_set_title (set), ==, "Pests on leaves");
  g_assert_cmpint (agc_label_set_n_classes (set), ==, 2);
  g_assert_cmpstr (agc_label_set_class_name (set, 0), ==, "mite");
  g_assert_cmpstr (agc_label_set_class_display_name (set, 1), ==, "Aphids");
  const char *want_mite[] = { "a photo of Spider mites.", "a close-up of Spider mites.",
                              "a leaf covered in fine webbing.", NULL };
  g_assert_cmpstrv (agc_label_set_class_prompts (set, 0), want_mite);
  agc_label_set_free (set);

  // the chooser lists the new set by title, selected
  g_autofree char *selected = agc_label_set_chooser_get_selected (chooser);
  g_assert_cmpstr (selected, ==, "pests");
  g_free (saved.path);
  gtk_widget_destroy (window);
}

static void
test_refuses_installed_id (void)
{
  AgcLabelSet *colours = agc_label_set_open ("colours", NULL);
  GtkWidget *editor = agc_label_set_editor_new (NULL, colours, NULL);
  agc_label_set_free (colours);
  ui_test_show (editor);
  ui_test_press_mnemonic (editor, GDK_KEY_s);
  g_autofree char *message = g_strdup (
    gtk_label_get_text (GTK_LABEL (ui_test_get (editor, "Check result"))));
  g_assert_nonnull (strstr (message, "installed label set"));
  g_autofree char *target = agc_label_set_editor_target ("colours");
  g_assert_false (g_file_test (target, G_FILE_TEST_EXISTS));
  gtk_widget_destroy (editor);
}

/* A shipped 38-class set with texts and own prompts, through the editor
 * under a new id: the same classes and the same sentences. */
static void
test_round_trip_of_a_shipped_set (void)
{
  g_autofree char *path = g_build_filename (g_getenv ("AGC_SOURCE_DIR"), "models", "labels",
                                            "plantvillage.json", NULL);
  GError *error = NULL;
  AgcLabelSet *original = agc_label_set_load (path, &error);
  g_assert_no_error (error);
  GtkWidget *editor = agc_label_set_editor_new (NULL, original, path);
  gtk_entry_set_text (GTK_ENTRY (ui_test_get (editor, "Id")), "plantvillage-mine");
  g_autofree char *saved = agc_label_set_editor_save (AGC_LABEL_SET_EDITOR (editor), &error);
  g_assert_no_error (error);
  AgcLabelSet *copy = agc_label_set_load (saved, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (agc_label_set_title (copy), ==, agc_label_set_title (original));
  g_assert_cmpstr (agc_label_set_description (copy), ==, agc_label_set_description (original));
  g_assert_cmpstr (agc_label_set_source (copy), ==, agc_label_set_source (original));
  g_assert_cmpint (agc_label_set_n_classes (copy), ==, agc_label_set_n_classes (original));
  for (int c = 0; c < agc_label_set_n_classes (original); c++)
    {
      g_assert_cmpstr (agc_label_set_class_name (copy, c), ==,
                       agc_label_set_class_name (original, c));
      g_assert_cmpstr (agc_label_set_class_display_name (copy, c), ==,
                       agc_label_set_class_display_name (original, c));
      g_assert_cmpstrv (agc_label_set_class_prompts (copy, c),
                        agc_label_set_class_prompts (original, c));
      // what agriclip captions reads survives the editor
      g_assert_cmpstr (agc_label_set_class_domain (copy, c), ==,
                       agc_label_set_class_domain (original, c));
      g_assert_cmpstrv (agc_label_set_class_attributes (copy, c),
                        agc_label_set_class_attributes (original, c));
    }
  g_assert_cmpstr (agc_label_set_class_domain (original, 0), ==, "crop");
  agc_label_set_free (copy);
  agc_label_set_free (original);
  gtk_widget_destroy (editor);
}

int
main (int argc, char **argv)
{
  ui_test_init (&argc, &argv, "agc-label-sets");
  g_autofree char *colours = ui_test_path ("labels/colours.json");
  g_autofree char *bad = ui_test_path ("labels/bad.json");
  ui_test_write (colours, colours_json);
  ui_test_write (bad, bad_json);
  g_test_add_func ("/label-sets/chooser-lists", test_chooser_lists);
  g_test_add_func ("/label-sets/editor-writes-a-set-the-loader-accepts",
                   test_editor_writes_a_set_the_loader_accepts);
  g_test_add_func ("/label-sets/refuses-installed-id", test_refuses_installed_id);
  g_test_add_func ("/label-sets/round-trip-of-a-shipped-set", test_round_trip_of_a_shipped_set);
  int status = g_test_run ();
  ui_test_cleanup ();
  return status;
}
