/* cmd-evaluate.c — `agriclip evaluate`: how often the zero-shot labels (or
 * an adapter's) are right on a folder of tagged photos: overall accuracy,
 * accuracy per class and the confusion matrix, as a table or JSON.
 *
 * The folder is read as for training (agc_dataset_open: DATA/TAG/…, with
 * labels.json for display names and prompts) and images are encoded
 * through the embedding cache, so evaluating and then training on the same
 * photos encodes them once. */
#include "cli.h"
#include "train/dataset.h"
#include "models/embedding-cache.h"

#include <math.h>
#include <string.h>

extern const CliCommand cli_evaluate_command;

typedef struct
{
  int n_rows;             /* the data's classes */
  int n_columns;          /* the data's classes, then any others the classifier has */
  GPtrArray *column_names;
  int *column_of;         /* [classifier classes] column of each predicted class */
  int *counts;            /* [n_rows, n_columns] */
  int n_images;           /* evaluated */
  int n_skipped;          /* unreadable */
} Confusion;

static void
on_progress (int done, int total, gpointer user_data)
{
  cli_progress_printf (user_data, _("images %d/%d"), done, total);
}

/* Columns: the data's classes in their order, then the classifier's other
 * classes (an adapter may know more), matched by export name. */
static void
confusion_init (Confusion *m, const AgcLabelSet *data_labels, const char *const *predicted,
                int n_predicted)
{
  m->n_rows = agc_label_set_n_classes (data_labels);
  m->column_names = g_ptr_array_new ();
  for (int r = 0; r < m->n_rows; r++)
    g_ptr_array_add (m->column_names, (gpointer) agc_label_set_class_name (data_labels, r));
  m->column_of = g_new (int, n_predicted);
  for (int p = 0; p < n_predicted; p++)
    {
      m->column_of[p] = -1;
      for (guint c = 0; c < m->column_names->len; c++)
        if (g_str_equal (predicted[p], m->column_names->pdata[c]))
          m->column_of[p] = (int) c;
      if (m->column_of[p] < 0)
        {
          m->column_of[p] = (int) m->column_names->len;
          g_ptr_array_add (m->column_names, (gpointer) predicted[p]);
        }
    }
  m->n_columns = (int) m->column_names->len;
  m->counts = g_new0 (int, (gsize) m->n_rows * m->n_columns);
}

static void
confusion_clear (Confusion *m)
{
  g_ptr_array_unref (m->column_names);
  g_free (m->column_of);
  g_free (m->counts);
}

static int
row_total (const Confusion *m, int r)
{
  int total = 0;
  for (int c = 0; c < m->n_columns; c++)
    total += m->counts[r * m->n_columns + c];
  return total;
}

static int
correct (const Confusion *m)
{
  int total = 0;
  for (int r = 0; r < m->n_rows; r++)
    total += m->counts[r * m->n_columns + r];
  return total;
}

/* ---- output ------------------------------------------------------------- */

static void
write_ratio_json (FILE *out, int part, int whole)
{
  if (whole == 0)
    fputs ("null", out);
  else
    fprintf (out, "%.9g", (double) part / whole);
}

static void
write_json (const Confusion *m, const AgcLabelSet *labels, const char *model, const char *data,
            const char *adapter)
{
  FILE *out = stdout;
  g_autofree char *model_shown = g_filename_display_name (model);
  g_autofree char *data_shown = g_filename_display_name (data);
  fputs ("{\n  \"model\": ", out);
  cli_write_json_string (out, model_shown);
  fputs (",\n  \"data\": ", out);
  cli_write_json_string (out, data_shown);
  fputs (",\n  \"adapter\": ", out);
  if (adapter)
    {
      g_autofree char *shown = g_filename_display_name (adapter);
      cli_write_json_string (out, shown);
    }
  else
    fputs ("null", out);
  fprintf (out, ",\n  \"n_images\": %d,\n  \"n_skipped\": %d,\n  \"accuracy\": ", m->n_images,
           m->n_skipped);
  write_ratio_json (out, correct (m), m->n_images);
  fputs (",\n  \"classes\": [", out);
  for (int r = 0; r < m->n_rows; r++)
    {
      int n = row_total (m, r), right = m->counts[r * m->n_columns + r];
      fputs (r ? ",\n    {\"name\": " : "\n    {\"name\": ", out);
      cli_write_json_string (out, agc_label_set_class_name (labels, r));
      fputs (", \"display\": ", out);
      cli_write_json_string (out, agc_label_set_class_display_name (labels, r));
      fprintf (out, ", \"n_images\": %d, \"n_correct\": %d, \"accuracy\": ", n, right);
      write_ratio_json (out, right, n);
      fputc ('}', out);
    }
  fputs ("\n  ],\n  \"predicted_classes\": [", out);
  for (int c = 0; c < m->n_columns; c++)
    {
      fputs (c ? ", " : "", out);
      cli_write_json_string (out, m->column_names->pdata[c]);
    }
  fputs ("],\n  \"confusion\": [", out);
  for (int r = 0; r < m->n_rows; r++)
    {
      fputs (r ? ",\n    [" : "\n    [", out);
      for (int c = 0; c < m->n_columns; c++)
        fprintf (out, c ? ", %d" : "%d", m->counts[r * m->n_columns + c]);
      fputc (']', out);
    }
  fputs ("\n  ]\n}\n", out);
}

static int
name_width (const Confusion *m)
{
  int width = 5;
  for (int c = 0; c < m->n_columns; c++)
    width = MAX (width, (int) g_utf8_strlen (m->column_names->pdata[c], -1));
  return MIN (width, 40);
}

static void
write_text (const Confusion *m)
{
  int right = correct (m), width = name_width (m);
  if (m->n_images > 0)
    printf (_("accuracy: %.1f %% (%d of %d images)\n"), 100.0 * right / m->n_images, right,
            m->n_images);
  if (m->n_skipped > 0)
    printf (_("skipped: %d unreadable images\n"), m->n_skipped);
  printf ("\n%-*s %8s %9s\n", width + 4, _("class"), _("images"), _("accuracy"));
  for (int r = 0; r < m->n_rows; r++)
    {
      int n = row_total (m, r);
      printf ("%3d %-*s %8d ", r + 1, width, (const char *) m->column_names->pdata[r], n);
      if (n > 0)
        printf ("%7.1f %%\n", 100.0 * m->counts[r * m->n_columns + r] / n);
      else
        printf ("%9s\n", "-");
    }
  for (int c = m->n_rows; c < m->n_columns; c++) // classes the data does not have
    printf ("%3d %-*s %8s %9s\n", c + 1, width, (const char *) m->column_names->pdata[c], "-",
            "-");
  printf (_("\nconfusion matrix (rows: true class, columns: predicted class, by number)\n"));
  printf ("%*s", width + 4, "");
  for (int c = 0; c < m->n_columns; c++)
    printf (" %4d", c + 1);
  putchar ('\n');
  for (int r = 0; r < m->n_rows; r++)
    {
      printf ("%3d %-*s", r + 1, width, (const char *) m->column_names->pdata[r]);
      for (int c = 0; c < m->n_columns; c++)
        printf (" %4d", m->counts[r * m->n_columns + c]);
      putchar ('\n');
    }
}

/* ---- evaluation ---------------------------------------------------------- */

/* Encodes every file of the data and counts the classifier's top label
 * against its tag. */
static gboolean
evaluate (Confusion *m, AgcModel *model, const AgcClassifier *classifier,
          const AgcDataset *data, CliProgress *line, GError **error)
{
  g_autofree char *identity = agc_model_identity (model, error);
  if (!identity)
    return FALSE;
  int n = data->n_files, dim = agc_model_embed_dim (model);
  int n_classes = agc_classifier_n_classes (classifier);
  g_autofree float *embeddings = g_new (float, (gsize) MAX (n, 1) * dim);
  g_autofree gboolean *ok = g_new (gboolean, MAX (n, 1));
  g_autofree char (*hashes)[AGC_SHA256_HEX] = g_malloc (sizeof *hashes * (gsize) MAX (n, 1));
  g_autofree float *probs = g_new (float, n_classes);
  AgcEmbedCounts counts;
  gboolean done = agc_embed_files_cached (embeddings, ok, hashes, &counts, model, identity,
                                          (const char *const *) data->files, n,
                                          cli_progress_report, on_progress, line, NULL, error);
  cli_progress_end (line);
  if (!done)
    return FALSE;
  for (int i = 0; i < n; i++)
    {
      if (!ok[i])
        {
          m->n_skipped++;
          continue;
        }
      int top;
      agc_classifier_probabilities (classifier, embeddings + (gsize) i * dim, probs);
      agc_top_k (probs, n_classes, 1, &top);
      m->counts[data->class_of[i] * m->n_columns + m->column_of[top]]++;
      m->n_images++;
    }
  if (m->n_images == 0)
    {
      g_autofree char *shown = g_filename_display_name (data->dir);
      g_set_error (error, AGC_ERROR, AGC_ERROR_INPUT, _("%s: no readable images"), shown);
      return FALSE;
    }
  return TRUE;
}

/* The classifier, and the export name of each of its classes. */
static AgcClassifier *
open_classifier (AgcModel *model, const AgcDataset *data, const char *adapter_path,
                 GPtrArray *names, GError **error)
{
  if (!adapter_path)
    {
      for (int c = 0; c < agc_label_set_n_classes (data->labels); c++)
        g_ptr_array_add (names, g_strdup (agc_label_set_class_name (data->labels, c)));
      return agc_classifier_new (model, data->labels, NULL, error);
    }
  AgcAdapter *adapter = agc_adapter_load (adapter_path, error);
  if (!adapter)
    return NULL;
  for (int c = 0; c < agc_adapter_n_classes (adapter); c++)
    g_ptr_array_add (names, g_strdup (agc_adapter_class_name (adapter, c)));
  AgcClassifier *classifier = agc_classifier_new_from_adapter (model, adapter, error);
  agc_adapter_free (adapter);
  return classifier;
}

static int
run (int argc, char **argv)
{
  g_autofree char *model_dir = NULL, *data_dir = NULL, *adapter_path = NULL;
  g_autofree char *format = NULL;
  gboolean int8 = FALSE;
  const GOptionEntry entries[] = {
    { "model", 'm', 0, G_OPTION_ARG_FILENAME, &model_dir, N_("Model folder"), N_("DIR") },
    { "data", 'd', 0, G_OPTION_ARG_FILENAME, &data_dir,
      N_("Folder with one sub-folder of images per class (the tag), and optionally "
         "labels.json"), N_("DIR") },
    { "adapter", 'a', 0, G_OPTION_ARG_FILENAME, &adapter_path,
      N_("Evaluate an adapter made by 'agriclip train' instead of zero-shot labels"),
      N_("FILE") },
    { "format", 'f', 0, G_OPTION_ARG_STRING, &format, N_("Output format: text (default) or json"),
      N_("FORMAT") },
    { "int8", 0, 0, G_OPTION_ARG_NONE, &int8,
      N_("Encode images with 8-bit integer weights in the image tower's transformer "
         "(faster on CPUs with VNNI; embeddings within a cosine of about 0.999 of float32)"),
      NULL },
    { NULL },
  };
  const CliCommand *command = &cli_evaluate_command;
  g_autoptr (GOptionContext) context = cli_option_context_new (command, entries);
  if (!cli_parse (context, command, &argc, &argv))
    return CLI_EXIT_USAGE;
  if (!model_dir || !data_dir)
    return cli_usage (command, _("--model and --data are required"));
  if (argc > 1)
    return cli_usage (command, _("unexpected argument '%s'"), argv[1]);
  gboolean json = format && g_str_equal (format, "json");
  if (format && !json && !g_str_equal (format, "text"))
    return cli_usage (command, _("unknown format '%s' (text or json)"), format);

  CliProgress line;
  cli_progress_init (&line);
  GError *error = NULL;
  AgcDataset *data = agc_dataset_open (data_dir, cli_progress_report, &line, &error);
  if (!data)
    return cli_fail (error);
  agc_model_resolve_path_in_place (&model_dir);
  AgcModel *model = agc_model_load (model_dir, &error);
  g_autoptr (GPtrArray) names = g_ptr_array_new_with_free_func (g_free);
  if (model && int8 && !agc_model_set_int8 (model, TRUE, &error))
    g_clear_pointer (&model, agc_model_free);
  AgcClassifier *classifier = model ? open_classifier (model, data, adapter_path, names, &error)
                                    : NULL;
  Confusion m = { 0 };
  gboolean ok = classifier != NULL;
  if (ok)
    {
      confusion_init (&m, data->labels, (const char *const *) names->pdata, (int) names->len);
      ok = evaluate (&m, model, classifier, data, &line, &error);
    }
  if (ok && json)
    write_json (&m, data->labels, model_dir, data_dir, adapter_path);
  else if (ok)
    write_text (&m);
  if (classifier)
    confusion_clear (&m);
  agc_classifier_free (classifier);
  agc_model_free (model);
  agc_dataset_free (data);
  return ok ? CLI_EXIT_OK : cli_fail (error);
}

const CliCommand cli_evaluate_command = {
  .name = "evaluate",
  .parameters = "",
  .summary = N_("Measure the accuracy of zero-shot labels or an adapter on tagged photos"),
  .run = run,
};
