/* dataset.c — DATA/TAG/… folders to classes and files, and the split.
 *
 * Every regular file under a tag folder is a candidate: whether it is an
 * image is for the decoder to say, and a file it refuses is reported by
 * name (a .heic photo the loaders do not know is worth a message, not
 * silence). */
#include "train/dataset.h"
#include "support/folder.h"

#include <math.h>
#include <string.h>

#define LABELS_FILE "labels.json"
/* Sub-folders of a tag folder are followed this deep; deeper is a link loop. */
#define MAX_DEPTH 16

void
agc_dataset_free (AgcDataset *dataset)
{
  if (dataset == NULL)
    return;
  g_free (dataset->dir);
  agc_label_set_free (dataset->labels);
  g_strfreev (dataset->files);
  g_free (dataset->class_of);
  g_free (dataset);
}

static void
report_problem (AgcTrainReportFunc report, gpointer user_data, AgcErrorCode code,
                const char *path, const char *problem)
{
  if (report == NULL)
    return;
  g_autofree char *shown = g_filename_display_name (path);
  GError *error = g_error_new (AGC_ERROR, code, "%s: %s", shown, problem);
  report (error, user_data);
  g_error_free (error);
}

static int
compare_strings (gconstpointer a, gconstpointer b)
{
  return strcmp (*(char *const *) a, *(char *const *) b);
}

/* agc_list_folder, its error an AGC_ERROR_IO naming the folder. */
static GPtrArray *
list_folder (const char *folder, GError **error)
{
  GError *local = NULL;
  GPtrArray *names = agc_list_folder (folder, &local);
  if (names == NULL)
    {
      g_autofree char *shown = g_filename_display_name (folder);
      g_set_error (error, AGC_ERROR, AGC_ERROR_IO, "%s: cannot read the folder: %s", shown,
                   local->message);
      g_error_free (local);
      return NULL;
    }
  return names;
}

/* Appends the regular files under folder to files; unreadable sub-folders
 * are reported, not fatal. */
static void
collect_files (GPtrArray *files, const char *folder, int depth, AgcTrainReportFunc report,
               gpointer user_data)
{
  GError *error = NULL;
  g_autoptr (GPtrArray) names = list_folder (folder, &error);
  if (names == NULL)
    {
      if (report != NULL)
        report (error, user_data);
      g_error_free (error);
      return;
    }
  for (guint i = 0; i < names->len; i++)
    {
      char *path = g_build_filename (folder, names->pdata[i], NULL);
      if (g_file_test (path, G_FILE_TEST_IS_DIR))
        {
          if (depth < MAX_DEPTH)
            collect_files (files, path, depth + 1, report, user_data);
          else
            report_problem (report, user_data, AGC_ERROR_IO, path,
                            "folders nested too deep (a link loop?); skipped");
          g_free (path);
        }
      else if (g_file_test (path, G_FILE_TEST_IS_REGULAR))
        g_ptr_array_add (files, path);
      else
        {
          report_problem (report, user_data, AGC_ERROR_IO, path,
                          "not a regular file (a broken link?); skipped");
          g_free (path);
        }
    }
}

/* The classes: labels.json checked against the tag folders, or the tags. */
static AgcLabelSet *
make_labels (const char *dir, GPtrArray *tags, GError **error)
{
  g_autofree char *labels_path = g_build_filename (dir, LABELS_FILE, NULL);
  if (!g_file_test (labels_path, G_FILE_TEST_EXISTS))
    return agc_label_set_new_from_names ((const char *const *) tags->pdata, (int) tags->len,
                                         NULL, 0, error);

  AgcLabelSet *labels = agc_label_set_load (labels_path, error);
  if (labels == NULL)
    return NULL;
  g_autofree char *shown = g_filename_display_name (labels_path);
  g_autoptr (GHashTable) classes = g_hash_table_new (g_str_hash, g_str_equal);
  for (int c = 0; c < agc_label_set_n_classes (labels); c++)
    g_hash_table_add (classes, (gpointer) agc_label_set_class_name (labels, c));
  for (guint t = 0; t < tags->len; t++)
    if (!g_hash_table_remove (classes, tags->pdata[t]))
      {
        g_autofree char *tag = g_filename_display_name (tags->pdata[t]);
        g_set_error (error, AGC_ERROR, AGC_ERROR_FORMAT,
                     "%s: no class is named \"%s\" like the folder of that name (each tag "
                     "folder needs a class whose \"name\" is the folder name)",
                     shown, tag);
        agc_label_set_free (labels);
        return NULL;
      }
  if (g_hash_table_size (classes) > 0)
    {
      GHashTableIter iter;
      gpointer name;
      g_hash_table_iter_init (&iter, classes);
      g_hash_table_iter_next (&iter, &name, NULL);
      g_set_error (error, AGC_ERROR, AGC_ERROR_FORMAT,
                   "%s: class \"%s\" has no folder of that name with its images", shown,
                   (const char *) name);
      agc_label_set_free (labels);
      return NULL;
    }
  return labels;
}

AgcDataset *
agc_dataset_open (const char *dir, AgcTrainReportFunc report, gpointer user_data,
                  GError **error)
{
  g_return_val_if_fail (dir != NULL, NULL);
  g_autofree char *shown = g_filename_display_name (dir);
  if (!g_file_test (dir, G_FILE_TEST_IS_DIR))
    {
      g_set_error (error, AGC_ERROR, AGC_ERROR_IO,
                   "%s: not a folder (training data is a folder with one sub-folder of images "
                   "per class)",
                   shown);
      return NULL;
    }
  g_autoptr (GPtrArray) names = list_folder (dir, error);
  if (names == NULL)
    return NULL;
  g_autoptr (GPtrArray) tags = g_ptr_array_new ();
  for (guint i = 0; i < names->len; i++)
    {
      const char *name = names->pdata[i];
      g_autofree char *path = g_build_filename (dir, name, NULL);
      if (g_file_test (path, G_FILE_TEST_IS_DIR))
        g_ptr_array_add (tags, (gpointer) name);
      else if (strcmp (name, LABELS_FILE) != 0)
        report_problem (report, user_data, AGC_ERROR_INPUT, path,
                        "not in a tag folder, so it has no class; skipped");
    }
  if (tags->len < 2)
    {
      g_set_error (error, AGC_ERROR, AGC_ERROR_INPUT,
                   "%s: %u tag folder%s; training needs at least two classes, one sub-folder "
                   "of images each",
                   shown, tags->len, tags->len == 1 ? "" : "s");
      return NULL;
    }

  AgcLabelSet *labels = make_labels (dir, tags, error);
  if (labels == NULL)
    return NULL;
  int n_classes = agc_label_set_n_classes (labels);
  /* files in class order (the label file's order), sorted within a class */
  g_autoptr (GPtrArray) files = g_ptr_array_new_with_free_func (g_free);
  g_autoptr (GArray) class_of = g_array_new (FALSE, FALSE, sizeof (int));
  for (int c = 0; c < n_classes; c++)
    {
      const char *tag = agc_label_set_class_name (labels, c);
      g_autofree char *folder = g_build_filename (dir, tag, NULL);
      g_autoptr (GPtrArray) class_files = g_ptr_array_new ();
      collect_files (class_files, folder, 0, report, user_data);
      g_ptr_array_sort (class_files, compare_strings);
      if (class_files->len == 0)
        {
          g_autofree char *folder_shown = g_filename_display_name (folder);
          g_set_error (error, AGC_ERROR, AGC_ERROR_INPUT, "%s: no files in this tag folder",
                       folder_shown);
          agc_label_set_free (labels);
          return NULL;
        }
      for (guint i = 0; i < class_files->len; i++)
        {
          g_ptr_array_add (files, class_files->pdata[i]);
          g_array_append_val (class_of, c);
        }
    }

  AgcDataset *dataset = g_new0 (AgcDataset, 1);
  dataset->dir = g_strdup (dir);
  dataset->labels = labels;
  dataset->n_files = (int) files->len;
  dataset->class_of = (int *) g_array_free (g_steal_pointer (&class_of), FALSE);
  g_ptr_array_set_free_func (files, NULL);
  g_ptr_array_add (files, NULL); // a GStrv: one g_strfreev
  dataset->files = (char **) g_ptr_array_free (g_steal_pointer (&files), FALSE);
  return dataset;
}

/* ---- shuffles and the split ------------------------------------------------ */

/* splitmix64: one 64-bit state, good statistics, and the same numbers
 * everywhere, which GRand and rand() do not promise. */
guint64
agc_splitmix64 (guint64 *state)
{
  guint64 z = (*state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

void
agc_shuffle (int *items, int n, guint64 seed, guint64 stream)
{
  guint64 state = seed;
  state = agc_splitmix64 (&state) ^ stream; /* streams of one seed are unrelated */
  for (int i = n - 1; i > 0; i--)
    {
      /* the modulo bias is below 2^-32 for any n we can hold in memory */
      int j = (int) (agc_splitmix64 (&state) % (guint64) (i + 1));
      int t = items[i];
      items[i] = items[j];
      items[j] = t;
    }
}

void
agc_dataset_split (gboolean *is_val, const int *class_of, int n, int n_classes,
                   double val_fraction, guint64 seed)
{
  g_return_if_fail (is_val != NULL && (class_of != NULL || n == 0));
  int *members = g_new (int, MAX (n, 1));
  for (int c = 0; c < n_classes; c++)
    {
      int n_c = 0;
      for (int i = 0; i < n; i++)
        if (class_of[i] == c)
          members[n_c++] = i;
      int n_val = (int) floor (n_c * val_fraction + 0.5);
      n_val = CLAMP (n_val, 0, MAX (n_c - 1, 0)); /* every class keeps a training image */
      agc_shuffle (members, n_c, seed, (guint64) c);
      for (int k = 0; k < n_c; k++)
        is_val[members[k]] = k < n_val;
    }
  g_free (members);
}
