/* test-evaluate.c — agc_evaluate's counting (agriclip.h, "evaluation"):
 * every readable image counted once, in its tag's row; unreadable files
 * skipped and reported; the columns are the data's classes and then an
 * adapter's others.  The model is a tiny CLIP made here with agc_pretrain
 * (one epoch on coloured squares), so the test goes through the public
 * calls alone; what the numbers are is not the point, that they add up is. */
#include "agriclip.h"
#include "tiny-model.h"
#include "unit-util.h"

#include <gdk-pixbuf/gdk-pixbuf.h>
#include <string.h>

static char *root;

/* DATA/COLOUR/N.png for the first n_classes colours, n_per_class each. */
static char *
write_data (const char *name, int n_classes, int n_per_class)
{
  char *dir = g_build_filename (root, name, NULL);
  tiny_write_tagged (dir, n_classes, n_per_class, 0x010101);
  return dir;
}

static void
on_report (const GError *problem, gpointer user_data)
{
  (void) problem;
  (*(int *) user_data)++;
}

static int progress_calls;

static void
on_progress (int done, int total, gpointer user_data)
{
  (void) user_data;
  g_assert_cmpint (done, <=, total);
  progress_calls++;
}

/* Each row adds up to its class's images, the rows to all images. */
static void
assert_counts_add_up (const AgcEvaluation *e)
{
  int n_rows = agc_label_set_n_classes (agc_evaluation_labels (e)), all = 0, right = 0;
  for (int r = 0; r < n_rows; r++)
    {
      int row = 0;
      for (int c = 0; c < agc_evaluation_n_predicted (e); c++)
        row += agc_evaluation_count (e, r, c);
      g_assert_cmpint (row, ==, agc_evaluation_class_n_images (e, r));
      all += row;
      right += agc_evaluation_count (e, r, r);
    }
  g_assert_cmpint (all, ==, agc_evaluation_n_images (e));
  g_assert_cmpint (right, ==, agc_evaluation_n_correct (e));
}

static void
test_evaluate (void)
{
  g_autofree char *model_dir = tiny_model_new (root, "tiny");
  g_autofree char *data = write_data ("eval", 2, 3);
  g_autofree char *stray = g_build_filename (data, "stray.png", NULL); // in no tag folder
  tiny_save_square (stray, 0);
  g_autofree char *broken = g_build_filename (data, "red", "broken.png", NULL);
  g_assert_true (g_file_set_contents (broken, "not a png", -1, NULL));

  GError *error = NULL;
  int n_reports = 0;
  AgcEvaluation *e = agc_evaluation_open (data, on_report, &n_reports, &error);
  g_assert_no_error (error);
  g_assert_cmpint (n_reports, ==, 1); // the stray file
  AgcModel *model = agc_model_load (model_dir, &error);
  g_assert_no_error (error);

  g_assert_true (agc_evaluate (e, model, NULL, on_progress, on_report, &n_reports, NULL, &error));
  g_assert_no_error (error);
  g_assert_cmpint (n_reports, ==, 2); // and the broken one
  g_assert_cmpint (progress_calls, >, 0);
  g_assert_cmpint (agc_evaluation_n_images (e), ==, 6);
  g_assert_cmpint (agc_evaluation_n_skipped (e), ==, 1);
  g_assert_cmpint (agc_evaluation_class_n_images (e, 0), ==, 3);
  g_assert_cmpint (agc_evaluation_n_predicted (e), ==, 2);
  g_assert_cmpstr (agc_evaluation_predicted_name (e, 0), ==, "blue"); // tags sorted
  g_assert_cmpstr (agc_evaluation_predicted_name (e, 1), ==, "red");
  assert_counts_add_up (e);

  // an adapter over three colours: its extra class is a third column
  g_autofree char *three = write_data ("three", 3, 2);
  g_autofree char *adapter = g_build_filename (root, "three.safetensors", NULL);
  AgcTrainParams params = agc_train_default_params ();
  params.max_epochs = 0; // the zero-shot head: enough to have its classes
  params.checkpoint_every = 0;
  g_assert_true (agc_train (model, three, adapter, &params, NULL, NULL, &error));
  g_assert_no_error (error);
  g_assert_true (agc_evaluate (e, model, adapter, NULL, NULL, NULL, NULL, &error));
  g_assert_no_error (error);
  g_assert_cmpint (agc_evaluation_n_predicted (e), ==, 3);
  g_assert_cmpstr (agc_evaluation_predicted_name (e, 2), ==, "green");
  g_assert_cmpint (agc_evaluation_n_images (e), ==, 6); // counted afresh
  assert_counts_add_up (e);

  // a missing adapter is the adapter's error
  g_assert_false (agc_evaluate (e, model, "no-such.safetensors", NULL, NULL, NULL, NULL, &error));
  g_assert_nonnull (error);
  g_clear_error (&error);

  agc_model_free (model);
  agc_evaluation_free (e);
}

int
main (int argc, char **argv)
{
  root = temp_cache_root_new (NULL, "agc-evaluate-XXXXXX");
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/evaluate/counts", test_evaluate);
  int status = g_test_run ();
  remove_tree (root);
  g_free (root);
  return status;
}
