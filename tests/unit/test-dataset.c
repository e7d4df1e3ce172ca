/* test-dataset.c — tagged folders to classes and files (hidden files,
 * nested folders, stray files, labels.json matched against the folders),
 * the refusals with their messages, and the seeded stratified split. */
#include "agriclip.h"
#include "train/dataset.h"
#include "unit-util.h"

#include <glib/gstdio.h>
#include <string.h>

static char *tmp_root;

/* A fresh data folder with files at the given relative paths ("" content). */
static char *
make_data (const char *name, const char *const *files)
{
  char *dir = g_build_filename (tmp_root, name, NULL);
  g_mkdir_with_parents (dir, 0755);
  for (const char *const *f = files; *f != NULL; f++)
    {
      g_autofree char *path = g_build_filename (dir, *f, NULL);
      g_autofree char *folder = g_path_get_dirname (path);
      g_mkdir_with_parents (folder, 0755);
      g_assert_true (g_file_set_contents (path, "x", 1, NULL));
    }
  return dir;
}

static void
write_labels (const char *dir, const char *json)
{
  g_autofree char *path = g_build_filename (dir, "labels.json", NULL);
  g_assert_true (g_file_set_contents (path, json, -1, NULL));
}

static void
collect_report (const GError *problem, gpointer user_data)
{
  g_ptr_array_add (user_data, g_strdup (problem->message));
}

/* The file's path relative to the data folder. */
static const char *
relative (const AgcDataset *data, int i)
{
  return data->files[i] + strlen (data->dir) + 1;
}

static void
test_folders (void)
{
  const char *files[] = { "rust/b.jpg", "rust/a.jpg", "rust/.hidden.jpg", "rust/2023/c.png",
                          "blight/x.png", ".cache/y.png", "notes.txt", "healthy/z.webp",
                          NULL };
  g_autofree char *dir = make_data ("folders", files);
  g_autoptr (GPtrArray) reports = g_ptr_array_new_with_free_func (g_free);
  GError *error = NULL;
  AgcDataset *data = agc_dataset_open (dir, collect_report, reports, &error);
  g_assert_no_error (error);

  /* tags sorted by name; the default template */
  AgcLabelSet *labels = data->labels;
  g_assert_cmpint (agc_label_set_n_classes (labels), ==, 3);
  g_assert_cmpstr (agc_label_set_class_name (labels, 0), ==, "blight");
  g_assert_cmpstr (agc_label_set_class_name (labels, 1), ==, "healthy");
  g_assert_cmpstr (agc_label_set_class_name (labels, 2), ==, "rust");
  g_assert_cmpstr (agc_label_set_class_prompts (labels, 2)[0], ==, "a photo of a rust.");

  /* class by class, sorted by path, sub-folders included, hidden left out */
  const char *want[] = { "blight/x.png", "healthy/z.webp", "rust/2023/c.png", "rust/a.jpg",
                         "rust/b.jpg" };
  const int want_class[] = { 0, 1, 2, 2, 2 };
  g_assert_cmpint (data->n_files, ==, G_N_ELEMENTS (want));
  for (int i = 0; i < data->n_files; i++)
    {
      g_assert_cmpstr (relative (data, i), ==, want[i]);
      g_assert_cmpint (data->class_of[i], ==, want_class[i]);
    }
  /* the stray file is reported by name */
  g_assert_cmpuint (reports->len, ==, 1);
  g_assert_nonnull (strstr (reports->pdata[0], "notes.txt"));
  agc_dataset_free (data);
}

static void
test_labels_file (void)
{
  const char *files[] = { "rust/a.jpg", "blight/b.jpg", "healthy/c.jpg", NULL };
  g_autofree char *dir = make_data ("labelled", files);
  write_labels (dir, "{\"id\": \"farm\", \"title\": \"Farm\", \"templates\": [\"a leaf with {}.\"],"
                     " \"classes\": ["
                     "{\"name\": \"healthy\", \"display\": \"Healthy\", \"text\": \"no disease\"},"
                     "{\"name\": \"rust\", \"display\": \"Leaf rust\", \"prompts\": [\"orange "
                     "pustules on a wheat leaf.\"]},"
                     "{\"name\": \"blight\", \"display\": \"Blight\"}]}");
  GError *error = NULL;
  AgcDataset *data = agc_dataset_open (dir, NULL, NULL, &error);
  g_assert_no_error (error);
  /* the label file's class order, display names and prompts */
  AgcLabelSet *labels = data->labels;
  g_assert_cmpstr (agc_label_set_class_name (labels, 0), ==, "healthy");
  g_assert_cmpstr (agc_label_set_class_display_name (labels, 1), ==, "Leaf rust");
  g_assert_cmpstr (agc_label_set_class_prompts (labels, 0)[0], ==, "a leaf with no disease.");
  g_assert_cmpstr (agc_label_set_class_prompts (labels, 1)[1], ==,
                   "orange pustules on a wheat leaf.");
  g_assert_cmpstr (relative (data, 0), ==, "healthy/c.jpg");
  g_assert_cmpint (data->class_of[0], ==, 0);
  g_assert_cmpstr (relative (data, 2), ==, "blight/b.jpg");
  g_assert_cmpint (data->class_of[2], ==, 2);
  agc_dataset_free (data);

  /* a folder without a class, a class without a folder */
  write_labels (dir, "{\"id\": \"farm\", \"title\": \"Farm\", \"templates\": [\"{}\"], "
                     "\"classes\": [{\"name\": \"rust\", \"display\": \"Rust\"}, "
                     "{\"name\": \"healthy\", \"display\": \"Healthy\"}]}");
  g_assert_null (agc_dataset_open (dir, NULL, NULL, &error));
  g_assert_error (error, AGC_ERROR, AGC_ERROR_FORMAT);
  g_assert_nonnull (strstr (error->message, "labels.json"));
  g_assert_nonnull (strstr (error->message, "\"blight\""));
  g_clear_error (&error);
  write_labels (dir, "{\"id\": \"farm\", \"title\": \"Farm\", \"templates\": [\"{}\"], "
                     "\"classes\": [{\"name\": \"rust\", \"display\": \"Rust\"}, "
                     "{\"name\": \"healthy\", \"display\": \"Healthy\"}, "
                     "{\"name\": \"blight\", \"display\": \"Blight\"}, "
                     "{\"name\": \"mildew\", \"display\": \"Mildew\"}]}");
  g_assert_null (agc_dataset_open (dir, NULL, NULL, &error));
  g_assert_error (error, AGC_ERROR, AGC_ERROR_FORMAT);
  g_assert_nonnull (strstr (error->message, "\"mildew\" has no folder"));
  g_clear_error (&error);
  /* a broken label file is the label-set loader's message */
  write_labels (dir, "{\"id\": \"farm\", \"title\": \"Farm\", \"templates\": [\"{}\"], "
                     "\"classes\": [{\"name\": \"rust\", \"display\": \"Rust\", \"promts\": []}]}");
  g_assert_null (agc_dataset_open (dir, NULL, NULL, &error));
  g_assert_nonnull (strstr (error->message, "promts"));
  g_clear_error (&error);
}

static void
test_refusals (void)
{
  GError *error = NULL;
  const char *one[] = { "rust/a.jpg", NULL };
  g_autofree char *one_dir = make_data ("one-class", one);
  g_assert_null (agc_dataset_open (one_dir, NULL, NULL, &error));
  g_assert_error (error, AGC_ERROR, AGC_ERROR_INPUT);
  g_assert_nonnull (strstr (error->message, "at least two classes"));
  g_clear_error (&error);

  const char *hollow[] = { "rust/a.jpg", "blight/.hidden", NULL };
  g_autofree char *hollow_dir = make_data ("hollow", hollow);
  g_assert_null (agc_dataset_open (hollow_dir, NULL, NULL, &error));
  g_assert_error (error, AGC_ERROR, AGC_ERROR_INPUT);
  g_assert_nonnull (strstr (error->message, "blight: no files"));
  g_clear_error (&error);

  g_autofree char *missing = g_build_filename (tmp_root, "no-such-folder", NULL);
  g_assert_null (agc_dataset_open (missing, NULL, NULL, &error));
  g_assert_error (error, AGC_ERROR, AGC_ERROR_IO);
  g_assert_nonnull (strstr (error->message, "no-such-folder"));
  g_clear_error (&error);
}

static void
test_shuffle (void)
{
  int a[50], b[50], c[50];
  for (int i = 0; i < 50; i++)
    a[i] = b[i] = c[i] = i;
  agc_shuffle (a, 50, 7, 0);
  agc_shuffle (b, 50, 7, 0);
  agc_shuffle (c, 50, 7, 1);
  g_assert_cmpmem (a, sizeof a, b, sizeof b);
  g_assert_false (memcmp (a, c, sizeof a) == 0);
  /* a permutation */
  gboolean seen[50] = { FALSE };
  int fixed = 0;
  for (int i = 0; i < 50; i++)
    {
      g_assert_false (seen[a[i]]);
      seen[a[i]] = TRUE;
      fixed += a[i] == i;
    }
  g_assert_cmpint (fixed, <, 10); /* shuffled, not left alone */
}

static void
test_split (void)
{
  /* classes of 10, 5, 2 and 1 images, interleaved */
  int class_of[18], n = 0, sizes[4] = { 10, 5, 2, 1 };
  for (int c = 0, left[4] = { 10, 5, 2, 1 }; n < 18; c = (c + 1) % 4)
    if (left[c] > 0)
      class_of[n++] = c, left[c]--;
  gboolean split_a[18], split_b[18], split_c[18];
  agc_dataset_split (split_a, class_of, n, 4, 0.2, 1);
  agc_dataset_split (split_b, class_of, n, 4, 0.2, 1);
  g_assert_cmpmem (split_a, sizeof split_a, split_b, sizeof split_b);

  /* round(n_c · 0.2), every class keeping a training image */
  const int want_val[4] = { 2, 1, 0, 0 };
  for (int c = 0; c < 4; c++)
    {
      int n_val = 0;
      for (int i = 0; i < n; i++)
        n_val += class_of[i] == c && split_a[i];
      g_assert_cmpint (n_val, ==, want_val[c]);
    }
  const int want_half[4] = { 5, 3, 1, 0 }; /* 2.5 rounds up; 2 and 1 keep one for training */
  agc_dataset_split (split_c, class_of, n, 4, 0.5, 1);
  for (int c = 0; c < 4; c++)
    {
      int n_val = 0;
      for (int i = 0; i < n; i++)
        n_val += class_of[i] == c && split_c[i];
      g_assert_cmpint (n_val, ==, want_half[c]);
      g_assert_cmpint (n_val, <=, MAX (sizes[c] - 1, 0));
    }

  /* another seed picks other images (of the same numbers) */
  gboolean differs = FALSE;
  for (guint64 seed = 2; seed < 6 && !differs; seed++)
    {
      agc_dataset_split (split_b, class_of, n, 4, 0.2, seed);
      differs = memcmp (split_a, split_b, sizeof split_a) != 0;
    }
  g_assert_true (differs);

  agc_dataset_split (split_b, class_of, n, 4, 0.0, 1);
  for (int i = 0; i < n; i++)
    g_assert_false (split_b[i]);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  tmp_root = g_dir_make_tmp ("agc-dataset-XXXXXX", NULL);
  g_test_add_func ("/dataset/folders", test_folders);
  g_test_add_func ("/dataset/labels-file", test_labels_file);
  g_test_add_func ("/dataset/refusals", test_refusals);
  g_test_add_func ("/dataset/shuffle", test_shuffle);
  g_test_add_func ("/dataset/split", test_split);
  int status = g_test_run ();
  remove_tree (tmp_root);
  g_free (tmp_root);
  return status;
}
