/* cmd-classify.c — `agriclip classify`: zero-shot labels (or those of a
 * trained adapter) for images and folders of images, as CSV or JSON lines,
 * streamed one image at a time. */
#include "cli.h"
#include "image-batch.h"

#include <string.h>
#include <unistd.h>

typedef enum
{
  FORMAT_CSV,
  FORMAT_JSONL,
} OutputFormat;

static void
write_result (OutputFormat format, const char *image, const char *const *names,
              const float *probs, const int *top, int n_top)
{
  if (format == FORMAT_JSONL)
    {
      fputs ("{\"image\": ", stdout);
      cli_write_json_string (stdout, image);
      fputs (", \"labels\": [", stdout);
      for (int k = 0; k < n_top; k++)
        {
          fputs (k ? ", {\"label\": " : "{\"label\": ", stdout);
          cli_write_json_string (stdout, names[top[k]]);
          printf (", \"p\": %.6f}", probs[top[k]]);
        }
      fputs ("]}\n", stdout);
    }
  else
    for (int k = 0; k < n_top; k++)
      {
        cli_write_csv_field (stdout, image);
        printf (",%d,", k + 1);
        cli_write_csv_field (stdout, names[top[k]]);
        printf (",%.6f\n", probs[top[k]]);
      }
  fflush (stdout); /* partial results stay useful if a long run is stopped */
}

static AgcLabelSet *
open_labels (const char *labels_path, char **names, char **templates, GError **error)
{
  if (labels_path)
    return agc_label_set_open (labels_path, error);
  return agc_label_set_new_from_names ((const char *const *) names,
                                       (int) g_strv_length (names),
                                       (const char *const *) templates,
                                       templates ? (int) g_strv_length (templates) : 0, error);
}

static void
show_progress (int done, int total)
{
  if (isatty (STDERR_FILENO))
    fprintf (stderr, done < total ? "\r%d/%d" : "\r%d/%d\n", done, total);
}

/* Classifies every file; returns the number that failed (each reported). */
static int
classify_files (AgcModel *model, const AgcClassifier *classifier, const char *const *names,
                GPtrArray *files, int top_k, OutputFormat format, gboolean fast_decode)
{
  int n_classes = agc_classifier_n_classes (classifier);
  int dim = agc_model_embed_dim (model), size = agc_model_image_size (model);
  g_autofree float *pixels = g_new (float, (gsize) CLI_IMAGE_BATCH * 3 * size * size);
  g_autofree float *embeddings = g_new (float, (gsize) CLI_IMAGE_BATCH * dim);
  g_autofree float *probs = g_new (float, n_classes);
  g_autofree int *top = g_new (int, n_classes);
  int failures = 0;
  AgcImagePipelineOptions options = { .fast_decode = fast_decode };
  AgcImagePipeline *pipeline = agc_image_pipeline_new (model, (const char *const *) files->pdata,
                                                       (int) files->len, &options);
  for (guint start = 0; start < files->len; start += CLI_IMAGE_BATCH)
    {
      const char *const *batch = (const char *const *) files->pdata + start;
      int n_files = MIN (CLI_IMAGE_BATCH, (int) (files->len - start));
      int loaded[CLI_IMAGE_BATCH];
      int n_ok = cli_next_images (pipeline, size, n_files, pixels, loaded, cli_warn, NULL);
      failures += n_files - n_ok;
      GError *error = NULL;
      if (n_ok > 0
          && !agc_model_embed_pixels (model, pixels, n_ok, TRUE, embeddings, NULL, &error))
        {
          cli_warn (error);
          g_clear_error (&error);
          failures += n_ok;
          n_ok = 0;
        }
      for (int j = 0; j < n_ok; j++)
        {
          agc_classifier_probabilities (classifier, embeddings + (gsize) j * dim, probs);
          int n_top = agc_top_k (probs, n_classes, top_k, top);
          // the name's own bytes (CSV as they are, JSON escaped by agc_json_append_string)
          write_result (format, batch[loaded[j]], names, probs, top, n_top);
        }
      show_progress ((int) start + n_files, (int) files->len);
    }
  agc_image_pipeline_free (pipeline);
  return failures;
}

static int
run (int argc, char **argv)
{
  g_autofree char *model_dir = NULL, *labels_path = NULL, *format_name = NULL;
  g_autofree char *adapter_path = NULL;
  g_auto (GStrv) names = NULL, templates = NULL;
  int top_k = 5;
  gboolean recursive = FALSE, int8 = FALSE, fast_decode = FALSE;
  const GOptionEntry entries[] = {
    { "model", 'm', 0, G_OPTION_ARG_FILENAME, &model_dir, N_("Model folder"), N_("DIR") },
    { "labels", 'l', 0, G_OPTION_ARG_FILENAME, &labels_path,
      N_("Label-set file (see models/labels/README.md), or the id of an installed set "
         "such as plantvillage"), N_("FILE|ID") },
    /* FILENAME_ARRAY: the bytes as given, so the library can name invalid UTF-8 itself. */
    { "label", 0, 0, G_OPTION_ARG_FILENAME_ARRAY, &names,
      N_("A class name (repeatable), instead of --labels"), N_("NAME") },
    { "adapter", 'a', 0, G_OPTION_ARG_FILENAME, &adapter_path,
      N_("Classify with the classes (and, for finetune and aligner adapters, the weights) "
         "of an adapter made by 'agriclip train' for this model, instead of --labels"),
      N_("FILE") },
    { "template", 0, 0, G_OPTION_ARG_FILENAME_ARRAY, &templates,
      N_("Prompt template for --label classes, with {} for the name (repeatable; "
         "default \"a photo of a {}.\")"), N_("T") },
    { "top", 'k', 0, G_OPTION_ARG_INT, &top_k, N_("How many labels per image (default 5)"),
      N_("K") },
    { "format", 'f', 0, G_OPTION_ARG_STRING, &format_name,
      N_("Output format: csv (default) or jsonl"), N_("FORMAT") },
    { "recursive", 'r', 0, G_OPTION_ARG_NONE, &recursive,
      N_("Also classify images in sub-folders of FOLDER arguments"), NULL },
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
  const CliCommand *command = &cli_classify_command;
  g_autoptr (GOptionContext) context = cli_option_context_new (command, entries);
  if (!cli_parse (context, command, &argc, &argv))
    return CLI_EXIT_USAGE;
  if (!model_dir)
    return cli_usage (command, _("--model is required"));
  if (!!labels_path + !!names + !!adapter_path != 1)
    return cli_usage (command, _("give one of --labels FILE, --label NAME... or --adapter FILE"));
  if (templates && !names)
    return cli_usage (command, _("--template applies to --label classes only"));
  if (top_k < 1)
    return cli_usage (command, _("--top must be at least 1"));
  OutputFormat format = FORMAT_CSV;
  if (format_name && g_str_equal (format_name, "jsonl"))
    format = FORMAT_JSONL;
  else if (format_name && !g_str_equal (format_name, "csv"))
    return cli_usage (command, _("unknown format '%s' (csv or jsonl)"), format_name);
  if (argc < 2)
    return cli_usage (command, _("no IMAGE or FOLDER given"));

  GError *error = NULL;
  AgcLabelSet *labels = NULL;
  AgcAdapter *adapter = NULL;
  if (adapter_path ? !(adapter = agc_adapter_load (adapter_path, &error))
                   : !(labels = open_labels (labels_path, names, templates, &error)))
    return cli_fail (error);
  /* the export names of the classes, for the output */
  g_autoptr (GPtrArray) class_names = g_ptr_array_new ();
  int n_classes = labels ? agc_label_set_n_classes (labels) : agc_adapter_n_classes (adapter);
  for (int c = 0; c < n_classes; c++)
    g_ptr_array_add (class_names, (gpointer) (labels ? agc_label_set_class_name (labels, c)
                                                     : agc_adapter_class_name (adapter, c)));
  g_autoptr (GPtrArray) files = g_ptr_array_new_with_free_func (g_free);
  CliProgress no_line; // nothing is showing yet: a report is a warning line
  cli_progress_init (&no_line);
  int problems = agc_image_collect ((const char *const *) argv + 1, argc - 1, recursive, files,
                                    cli_progress_report, &no_line);

  agc_model_resolve_path_in_place (&model_dir); // a pulled model's NAME, or a folder
  AgcModel *model = agc_model_load (model_dir, &error);
  AgcClassifier *classifier = NULL;
  if (model && (!int8 || agc_model_set_int8 (model, TRUE, &error)))
    classifier = adapter ? agc_classifier_new_from_adapter (model, adapter, &error)
                         : agc_classifier_new (model, labels, NULL, &error);
  int status = CLI_EXIT_OK;
  if (!classifier)
    status = cli_fail (error);
  else
    {
      if (format == FORMAT_CSV)
        puts ("image,rank,label,p");
      problems += classify_files (model, classifier, (const char *const *) class_names->pdata,
                                  files, top_k, format, fast_decode);
      if (problems > 0)
        status = CLI_EXIT_ERROR;
    }
  agc_classifier_free (classifier);
  agc_model_free (model);
  agc_label_set_free (labels);
  agc_adapter_free (adapter);
  return status;
}

const CliCommand cli_classify_command = {
  .name = "classify",
  .parameters = "IMAGE_OR_FOLDER...",
  .summary = N_("Label images with the most probable classes of a label set"),
  .run = run,
};
