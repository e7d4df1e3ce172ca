/* cmd-evaluate.c — `agriclip evaluate`: how often the zero-shot labels (or
 * an adapter's) are right on a folder of tagged photos: overall accuracy,
 * accuracy per class and the confusion matrix, as a table or JSON.
 *
 * The counting is agc_evaluate's (agriclip.h, "evaluation"): the folder is
 * read as for training and images are encoded through the embedding cache,
 * so evaluating and then training on the same photos encodes them once. */
#include "cli.h"

#include <math.h>
#include <string.h>

extern const CliCommand cli_evaluate_command;

static void
on_progress (int done, int total, gpointer user_data)
{
  cli_progress_printf (user_data, _("images %d/%d"), done, total);
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

/* A file name as a JSON string (its display form), or null when there is none. */
static void
write_path_json (FILE *out, const char *path)
{
  if (path == NULL)
    {
      fputs ("null", out);
      return;
    }
  g_autofree char *shown = g_filename_display_name (path);
  cli_write_json_string (out, shown);
}

static void
write_json (const AgcEvaluation *m, const char *model, const char *data, const char *adapter)
{
  FILE *out = stdout;
  const AgcLabelSet *labels = agc_evaluation_labels (m);
  int n_rows = agc_label_set_n_classes (labels), n_columns = agc_evaluation_n_predicted (m);
  fputs ("{\n  \"model\": ", out);
  write_path_json (out, model);
  fputs (",\n  \"data\": ", out);
  write_path_json (out, data);
  fputs (",\n  \"adapter\": ", out);
  write_path_json (out, adapter);
  fprintf (out, ",\n  \"n_images\": %d,\n  \"n_skipped\": %d,\n  \"accuracy\": ",
           agc_evaluation_n_images (m), agc_evaluation_n_skipped (m));
  write_ratio_json (out, agc_evaluation_n_correct (m), agc_evaluation_n_images (m));
  fputs (",\n  \"classes\": [", out);
  for (int r = 0; r < n_rows; r++)
    {
      int n = agc_evaluation_class_n_images (m, r), right = agc_evaluation_count (m, r, r);
      fputs (r ? ",\n    {\"name\": " : "\n    {\"name\": ", out);
      cli_write_json_string (out, agc_label_set_class_name (labels, r));
      fputs (", \"display\": ", out);
      cli_write_json_string (out, agc_label_set_class_display_name (labels, r));
      fprintf (out, ", \"n_images\": %d, \"n_correct\": %d, \"accuracy\": ", n, right);
      write_ratio_json (out, right, n);
      fputc ('}', out);
    }
  fputs ("\n  ],\n  \"predicted_classes\": [", out);
  for (int c = 0; c < n_columns; c++)
    {
      fputs (c ? ", " : "", out);
      cli_write_json_string (out, agc_evaluation_predicted_name (m, c));
    }
  fputs ("],\n  \"confusion\": [", out);
  for (int r = 0; r < n_rows; r++)
    {
      fputs (r ? ",\n    [" : "\n    [", out);
      for (int c = 0; c < n_columns; c++)
        fprintf (out, c ? ", %d" : "%d", agc_evaluation_count (m, r, c));
      fputc (']', out);
    }
  fputs ("\n  ]\n}\n", out);
}

static int
name_width (const AgcEvaluation *m)
{
  int width = 5;
  for (int c = 0; c < agc_evaluation_n_predicted (m); c++)
    width = MAX (width, (int) g_utf8_strlen (agc_evaluation_predicted_name (m, c), -1));
  return MIN (width, 40);
}

static void
write_text (const AgcEvaluation *m)
{
  int right = agc_evaluation_n_correct (m), width = name_width (m);
  int n_images = agc_evaluation_n_images (m), n_skipped = agc_evaluation_n_skipped (m);
  int n_rows = agc_label_set_n_classes (agc_evaluation_labels (m));
  int n_columns = agc_evaluation_n_predicted (m);
  if (n_images > 0)
    printf (_("accuracy: %.1f %% (%d of %d images)\n"), 100.0 * right / n_images, right,
            n_images);
  if (n_skipped > 0)
    printf (_("skipped: %d unreadable images\n"), n_skipped);
  printf ("\n%-*s %8s %9s\n", width + 4, _("class"), _("images"), _("accuracy"));
  for (int r = 0; r < n_rows; r++)
    {
      int n = agc_evaluation_class_n_images (m, r);
      printf ("%3d %-*s %8d ", r + 1, width, agc_evaluation_predicted_name (m, r), n);
      if (n > 0)
        printf ("%7.1f %%\n", 100.0 * agc_evaluation_count (m, r, r) / n);
      else
        printf ("%9s\n", "-");
    }
  for (int c = n_rows; c < n_columns; c++) // classes the data does not have
    printf ("%3d %-*s %8s %9s\n", c + 1, width, agc_evaluation_predicted_name (m, c), "-", "-");
  printf (_("\nconfusion matrix (rows: true class, columns: predicted class, by number)\n"));
  printf ("%*s", width + 4, "");
  for (int c = 0; c < n_columns; c++)
    printf (" %4d", c + 1);
  putchar ('\n');
  for (int r = 0; r < n_rows; r++)
    {
      printf ("%3d %-*s", r + 1, width, agc_evaluation_predicted_name (m, r));
      for (int c = 0; c < n_columns; c++)
        printf (" %4d", agc_evaluation_count (m, r, c));
      putchar ('\n');
    }
}

/* ---- several folders: the table of the paper ---------------------------- */

typedef struct
{
  int n_images, n_correct, n_skipped;
} Score;

static double
score_accuracy (Score s)
{
  return s.n_images > 0 ? (double) s.n_correct / s.n_images : NAN;
}

/* The mean of the folders' accuracies (each folder counts the same). */
static double
mean_accuracy (const Score *scores, int n)
{
  double sum = 0;
  for (int i = 0; i < n; i++)
    sum += score_accuracy (scores[i]);
  return sum / n;
}

static void
write_percent (double accuracy, int width)
{
  if (isnan (accuracy))
    printf (" %*s", width, "-");
  else
    printf (" %*.1f %%", width - 2, 100.0 * accuracy);
}

/* The columns of the table: zero-shot, then (each when asked) adapted,
 * k-NN of the model's features and k-NN with the adapter. */
typedef struct
{
  Score *zero_shot, *adapted, *knn, *knn_adapted;
} Scores;

static void
write_table_text (char **data, int n, const Scores *s)
{
  int width = (int) g_utf8_strlen (_("average"), -1);
  for (int i = 0; i < n; i++)
    {
      g_autofree char *shown = g_filename_display_name (data[i]);
      width = MAX (width, (int) g_utf8_strlen (shown, -1));
    }
  const Score *columns[] = { s->zero_shot, s->adapted, s->knn, s->knn_adapted };
  const char *titles[] = { _("zero-shot"), _("adapted"), _("k-NN"), _("k-NN adapted") };
  printf ("%-*s %8s", width, _("data"), _("images"));
  for (int c = 0; c < 4; c++)
    if (columns[c])
      printf (" %12s", titles[c]);
  putchar ('\n');
  for (int i = 0; i < n; i++)
    {
      g_autofree char *shown = g_filename_display_name (data[i]);
      printf ("%-*s %8d", width, shown, s->zero_shot[i].n_images);
      for (int c = 0; c < 4; c++)
        if (columns[c])
          write_percent (score_accuracy (columns[c][i]), 12);
      putchar ('\n');
    }
  printf ("%-*s %8s", width, _("average"), "");
  for (int c = 0; c < 4; c++)
    if (columns[c])
      write_percent (mean_accuracy (columns[c], n), 12);
  putchar ('\n');
}

static void
write_accuracy_json (FILE *out, double accuracy)
{
  if (isnan (accuracy))
    fputs ("null", out);
  else
    fprintf (out, "%.9g", accuracy);
}

static void
write_table_json (const char *model, char **data, int n, const char *adapter,
                  const char *knn_bank, const Scores *s)
{
  const Score *columns[] = { s->zero_shot, s->adapted, s->knn, s->knn_adapted };
  const char *keys[] = { "zero_shot", "adapted", "knn", "knn_adapted" };
  FILE *out = stdout;
  fputs ("{\n  \"model\": ", out);
  write_path_json (out, model);
  fputs (",\n  \"adapter\": ", out);
  write_path_json (out, adapter);
  fputs (",\n  \"knn_bank\": ", out);
  write_path_json (out, knn_bank);
  fputs (",\n  \"datasets\": [", out);
  for (int i = 0; i < n; i++)
    {
      g_autofree char *shown = g_filename_display_name (data[i]);
      fputs (i ? ",\n    {\"data\": " : "\n    {\"data\": ", out);
      cli_write_json_string (out, shown);
      fprintf (out, ", \"n_images\": %d, \"n_skipped\": %d", s->zero_shot[i].n_images,
               s->zero_shot[i].n_skipped);
      for (int c = 0; c < 4; c++)
        if (columns[c])
          {
            fprintf (out, ", \"%s\": ", keys[c]);
            write_accuracy_json (out, score_accuracy (columns[c][i]));
          }
      fputc ('}', out);
    }
  fputs ("\n  ],\n  \"average\": {", out);
  for (int c = 0; c < 4; c++)
    if (columns[c])
      {
        fprintf (out, c ? ", \"%s\": " : "\"%s\": ", keys[c]);
        write_accuracy_json (out, mean_accuracy (columns[c], n));
      }
  fputs ("}\n}\n", out);
}

/* scores[n] of the model (with the adapter when adapter_path is set) on
 * each of evaluations[n]. */
/* With a bank (knn_bank not NULL): the k-NN labels of the features
 * instead (agc_evaluate_knn: k nearest, temperature 0.07 as DINO's). */
typedef struct
{
  const AgcEvaluation *bank;
  int k;
} Knn;

#define KNN_TEMPERATURE 0.07 /* DINO's eval_knn.py */

static gboolean
score_all (Score *scores, AgcEvaluation **evaluations, char **data, int n, AgcModel *model,
           const char *adapter_path, const Knn *knn, CliProgress *line, GError **error)
{
  for (int i = 0; i < n; i++)
    {
      gboolean ok = knn ? agc_evaluate_knn (evaluations[i], knn->bank, model, adapter_path,
                                            knn->k, KNN_TEMPERATURE, on_progress,
                                            cli_progress_report, line, NULL, error)
                        : agc_evaluate (evaluations[i], model, adapter_path, on_progress,
                                        cli_progress_report, line, NULL, error);
      cli_progress_end (line);
      if (!ok)
        return FALSE;
      scores[i] = (Score){ agc_evaluation_n_images (evaluations[i]),
                           agc_evaluation_n_correct (evaluations[i]),
                           agc_evaluation_n_skipped (evaluations[i]) };
      if (scores[i].n_images == 0)
        {
          g_autofree char *shown = g_filename_display_name (data[i]);
          g_set_error (error, AGC_ERROR, AGC_ERROR_INPUT, _("%s: no readable images"), shown);
          return FALSE;
        }
    }
  return TRUE;
}

/* Zero-shot (and k-NN) on every folder, then (the adapter changes the
 * model for good) with the adapter. */
static gboolean
evaluate_several (const char *model_dir, AgcModel *model, char **data, int n,
                  const char *adapter_path, const char *knn_bank, int knn_k, gboolean json,
                  CliProgress *line, GError **error)
{
  AgcEvaluation **evaluations = g_new0 (AgcEvaluation *, n);
  Scores s = { .zero_shot = g_new0 (Score, n) };
  if (adapter_path)
    s.adapted = g_new0 (Score, n);
  if (knn_bank)
    s.knn = g_new0 (Score, n);
  if (knn_bank && adapter_path)
    s.knn_adapted = g_new0 (Score, n);
  Knn knn = { .k = knn_k };
  AgcEvaluation *bank = NULL;
  gboolean ok = TRUE;
  for (int i = 0; ok && i < n; i++)
    ok = (evaluations[i] = agc_evaluation_open (data[i], cli_progress_report, line, error))
         != NULL;
  if (ok && knn_bank)
    ok = (knn.bank = bank = agc_evaluation_open (knn_bank, cli_progress_report, line, error))
         != NULL;
  ok = ok && score_all (s.zero_shot, evaluations, data, n, model, NULL, NULL, line, error);
  if (s.knn)
    ok = ok && score_all (s.knn, evaluations, data, n, model, NULL, &knn, line, error);
  if (s.adapted)
    ok = ok && score_all (s.adapted, evaluations, data, n, model, adapter_path, NULL, line, error);
  if (s.knn_adapted)
    ok = ok && score_all (s.knn_adapted, evaluations, data, n, model, adapter_path, &knn, line,
                          error);
  if (ok && json)
    write_table_json (model_dir, data, n, adapter_path, knn_bank, &s);
  else if (ok)
    write_table_text (data, n, &s);
  for (int i = 0; i < n; i++)
    agc_evaluation_free (evaluations[i]);
  agc_evaluation_free (bank);
  g_free (evaluations);
  g_free (s.zero_shot);
  g_free (s.adapted);
  g_free (s.knn);
  g_free (s.knn_adapted);
  return ok;
}

static int
run (int argc, char **argv)
{
  g_autofree char *model_dir = NULL, *adapter_path = NULL, *knn_bank = NULL;
  int knn_k = 20; // DINO's eval_knn.py
  g_autofree char *format = NULL;
  g_auto (GStrv) data = NULL;
  gboolean int8 = FALSE, fast_decode = FALSE;
  const GOptionEntry entries[] = {
    { "model", 'm', 0, G_OPTION_ARG_FILENAME, &model_dir, N_("Model folder"), N_("DIR") },
    { "data", 'd', 0, G_OPTION_ARG_FILENAME_ARRAY, &data,
      N_("Folder with one sub-folder of images per class (the tag), and optionally "
         "labels.json; repeated: a table of the accuracy on each and their average"),
      N_("DIR") },
    { "adapter", 'a', 0, G_OPTION_ARG_FILENAME, &adapter_path,
      N_("Evaluate an adapter made by 'agriclip train' instead of zero-shot labels (with "
         "several --data: beside them)"),
      N_("FILE") },
    { "knn-bank", 0, 0, G_OPTION_ARG_FILENAME, &knn_bank,
      N_("Also measure k-nearest-neighbour accuracy of the image features (an AgriCLIP "
         "model's ResNet features, a CLIP model's embeddings) against this tagged folder, as "
         "DINO's eval_knn.py (cosine, votes weighted by exp(cos / 0.07)); prints the table"),
      N_("DIR") },
    { "knn-k", 0, 0, G_OPTION_ARG_INT, &knn_k, N_("Neighbours that vote (default 20)"), N_("K") },
    { "format", 'f', 0, G_OPTION_ARG_STRING, &format, N_("Output format: text (default) or json"),
      N_("FORMAT") },
    { "int8", 0, 0, G_OPTION_ARG_NONE, &int8,
      N_("Encode images with 8-bit integer weights in the image tower's transformer "
         "(faster on CPUs with VNNI; embeddings within a cosine of about 0.999 of float32)"),
      NULL },
    { "fast-decode", 0, 0, G_OPTION_ARG_NONE, &fast_decode,
      N_("Decode JPEGs at a reduced DCT scale (1/2, 1/4 or 1/8) that still covers the "
         "model's input, as Pillow's Image.draft does: several times faster on large photos, "
         "embeddings slightly different from the full decode's"),
      NULL },
    { NULL },
  };
  const CliCommand *command = &cli_evaluate_command;
  g_autoptr (GOptionContext) context = cli_option_context_new (command, entries);
  if (!cli_parse (context, command, &argc, &argv))
    return CLI_EXIT_USAGE;
  if (!model_dir || !data)
    return cli_usage (command, _("--model and --data are required"));
  if (argc > 1)
    return cli_usage (command, _("unexpected argument '%s'"), argv[1]);
  if (knn_k < 1)
    return cli_usage (command, _("--knn-k must be at least 1"));
  gboolean json = format && g_str_equal (format, "json");
  if (format && !json && !g_str_equal (format, "text"))
    return cli_usage (command, _("unknown format '%s' (text or json)"), format);

  CliProgress line;
  cli_progress_init (&line);
  GError *error = NULL;
  int n_data = (int) g_strv_length (data);
  if (n_data > 1 || knn_bank)
    {
      agc_model_resolve_path_in_place (&model_dir);
      AgcModel *model = agc_model_load (model_dir, &error);
      if (model && int8 && !agc_model_set_int8 (model, TRUE, &error))
        g_clear_pointer (&model, agc_model_free);
      if (model)
        agc_model_set_fast_decode (model, fast_decode);
      gboolean ok = model != NULL
                    && evaluate_several (model_dir, model, data, n_data, adapter_path,
                                         knn_bank, knn_k, json, &line, &error);
      agc_model_free (model);
      return ok ? CLI_EXIT_OK : cli_fail (error);
    }
  const char *data_dir = data[0];
  AgcEvaluation *evaluation = agc_evaluation_open (data_dir, cli_progress_report, &line, &error);
  if (!evaluation)
    return cli_fail (error);
  agc_model_resolve_path_in_place (&model_dir);
  AgcModel *model = agc_model_load (model_dir, &error);
  if (model && int8 && !agc_model_set_int8 (model, TRUE, &error))
    g_clear_pointer (&model, agc_model_free);
  if (model)
    agc_model_set_fast_decode (model, fast_decode);
  gboolean ok = model != NULL;
  if (ok)
    {
      ok = agc_evaluate (evaluation, model, adapter_path, on_progress, cli_progress_report, &line,
                         NULL, &error);
      cli_progress_end (&line);
    }
  if (ok && agc_evaluation_n_images (evaluation) == 0)
    {
      g_autofree char *shown = g_filename_display_name (data_dir);
      g_set_error (&error, AGC_ERROR, AGC_ERROR_INPUT, _("%s: no readable images"), shown);
      ok = FALSE;
    }
  if (ok && json)
    write_json (evaluation, model_dir, data_dir, adapter_path);
  else if (ok)
    write_text (evaluation);
  agc_model_free (model);
  agc_evaluation_free (evaluation);
  return ok ? CLI_EXIT_OK : cli_fail (error);
}

const CliCommand cli_evaluate_command = {
  .name = "evaluate",
  .parameters = "",
  .summary = N_("Measure the accuracy of zero-shot labels or an adapter on tagged photos"),
  .run = run,
};
