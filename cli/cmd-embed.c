/* cmd-embed.c — `agriclip embed`: embeddings of images and texts as JSON
 * lines, in the order the inputs were given. */
#include "cli.h"
#include "image-batch.h"

#include <string.h>

typedef struct
{
  gboolean is_image;
  char *value; /* a file name or a text */
} EmbedInput;

typedef struct
{
  GArray *inputs; /* of EmbedInput, command-line order */
} EmbedArgs;

static void
embed_input_clear (gpointer data)
{
  g_free (((EmbedInput *) data)->value);
}

static gboolean
add_input (const char *option_name, const char *value, gpointer data, GError **error)
{
  (void) error;
  EmbedArgs *args = data;
  EmbedInput input = { .is_image = g_str_equal (option_name, "--image")
                                   || g_str_equal (option_name, "-i"),
                       .value = g_strdup (value) };
  g_array_append_val (args->inputs, input);
  return TRUE;
}

static void
write_line (const char *kind, const char *input, const float *embedding, int dim)
{
  printf ("{\"kind\": \"%s\", \"input\": ", kind);
  cli_write_json_string (stdout, input); // a text is UTF-8: written as it is
  fputs (", \"embedding\": [", stdout);
  for (int d = 0; d < dim; d++)
    {
      if (d)
        fputs (", ", stdout);
      cli_write_float (stdout, embedding[d]);
    }
  fputs ("]}\n", stdout);
}

/* Embeds the texts among inputs: row i of out[n_inputs, E] for input i. */
static gboolean
embed_texts (AgcModel *model, GArray *inputs, gboolean normalize, float *out, GError **error)
{
  int dim = agc_model_embed_dim (model);
  g_autoptr (GPtrArray) texts = g_ptr_array_new ();
  g_autoptr (GArray) rows = g_array_new (FALSE, FALSE, sizeof (int));
  for (guint i = 0; i < inputs->len; i++)
    if (!g_array_index (inputs, EmbedInput, i).is_image)
      {
        g_ptr_array_add (texts, g_array_index (inputs, EmbedInput, i).value);
        g_array_append_val (rows, i);
      }
  if (texts->len == 0)
    return TRUE;
  g_autofree float *text_out = g_new (float, (gsize) texts->len * dim);
  if (!agc_model_embed_texts (model, (const char *const *) texts->pdata, (int) texts->len,
                              normalize, text_out, NULL, error))
    return FALSE;
  for (guint t = 0; t < texts->len; t++)
    memcpy (out + (gsize) g_array_index (rows, int, t) * dim, text_out + (gsize) t * dim,
            sizeof (float) * dim);
  return TRUE;
}

/* The same for the images, in batches. */
static gboolean
embed_images (AgcModel *model, GArray *inputs, gboolean normalize, gboolean fast_decode,
              float *out, GError **error)
{
  int dim = agc_model_embed_dim (model), size = agc_model_image_size (model);
  g_autoptr (GPtrArray) files = g_ptr_array_new ();
  g_autoptr (GArray) rows = g_array_new (FALSE, FALSE, sizeof (int));
  for (guint i = 0; i < inputs->len; i++)
    if (g_array_index (inputs, EmbedInput, i).is_image)
      {
        g_ptr_array_add (files, g_array_index (inputs, EmbedInput, i).value);
        g_array_append_val (rows, i);
      }
  g_autofree float *pixels = g_new (float, (gsize) CLI_IMAGE_BATCH * 3 * size * size);
  g_autofree float *batch_out = g_new (float, (gsize) CLI_IMAGE_BATCH * dim);
  AgcImagePipelineOptions options = { .fast_decode = fast_decode };
  AgcImagePipeline *pipeline = agc_image_pipeline_new (model, (const char *const *) files->pdata,
                                                       (int) files->len, &options);
  gboolean ok = TRUE;
  for (guint start = 0; ok && start < files->len; start += CLI_IMAGE_BATCH)
    {
      int n_files = MIN (CLI_IMAGE_BATCH, (int) (files->len - start));
      int loaded[CLI_IMAGE_BATCH];
      ok = cli_next_images (pipeline, size, n_files, pixels, loaded, NULL, error) >= 0
           && agc_model_embed_pixels (model, pixels, n_files, normalize, batch_out, NULL, error);
      for (int j = 0; ok && j < n_files; j++)
        memcpy (out + (gsize) g_array_index (rows, int, start + j) * dim,
                batch_out + (gsize) j * dim, sizeof (float) * dim);
    }
  agc_image_pipeline_free (pipeline);
  return ok;
}

static int
run (int argc, char **argv)
{
  g_autofree char *model_dir = NULL, *adapter_path = NULL;
  gboolean raw = FALSE, int8 = FALSE, fast_decode = FALSE;
  EmbedArgs args = { .inputs = g_array_new (FALSE, FALSE, sizeof (EmbedInput)) };
  g_array_set_clear_func (args.inputs, embed_input_clear);
  const GOptionEntry entries[] = {
    { "model", 'm', 0, G_OPTION_ARG_FILENAME, &model_dir, N_("Model folder"), N_("DIR") },
    /* FILENAME: the bytes as given, so the library can name invalid UTF-8 itself. */
    { "image", 'i', G_OPTION_FLAG_FILENAME, G_OPTION_ARG_CALLBACK, (gpointer) add_input,
      N_("An image to embed (repeatable)"), N_("FILE") },
    { "text", 't', G_OPTION_FLAG_FILENAME, G_OPTION_ARG_CALLBACK, (gpointer) add_input,
      N_("A text to embed (repeatable)"), N_("TEXT") },
    { "raw", 0, 0, G_OPTION_ARG_NONE, &raw,
      N_("Print the projection output without L2 normalisation"), NULL },
    { "int8", 0, 0, G_OPTION_ARG_NONE, &int8,
      N_("Encode images with 8-bit integer weights in the image tower's transformer "
         "(faster on CPUs with VNNI; embeddings within a cosine of about 0.999 of float32)"),
      NULL },
    { "fast-decode", 0, 0, G_OPTION_ARG_NONE, &fast_decode,
      N_("Decode JPEGs at a reduced DCT scale (1/2, 1/4 or 1/8) that still covers the "
         "model's input, as Pillow's Image.draft does: several times faster on large photos, "
         "embeddings slightly different from the full decode's"),
      NULL },
    { "adapter", 'a', 0, G_OPTION_ARG_FILENAME, &adapter_path,
      N_("Embed with the weights of a finetune or aligner adapter made by 'agriclip train' "
         "for this model (a probe adapter only adds a head and is refused)"), N_("FILE") },
    { NULL },
  };
  g_autoptr (GOptionContext) context = cli_option_context_new (&cli_embed_command, NULL);
  GOptionGroup *group = g_option_group_new ("embed", "", "", &args, NULL);
  g_option_group_add_entries (group, entries);
  g_option_group_set_translation_domain (group, GETTEXT_PACKAGE);
  g_option_context_set_main_group (context, group);

  int status = CLI_EXIT_OK;
  if (!cli_parse (context, &cli_embed_command, &argc, &argv))
    status = CLI_EXIT_USAGE;
  else if (!model_dir)
    status = cli_usage (&cli_embed_command, _("--model is required"));
  else if (argc > 1)
    status = cli_usage (&cli_embed_command, _("unexpected argument '%s'"), argv[1]);
  else if (args.inputs->len == 0)
    status = cli_usage (&cli_embed_command, _("nothing to embed: give --image or --text"));
  if (status != CLI_EXIT_OK)
    {
      g_array_unref (args.inputs);
      return status;
    }

  GError *error = NULL;
  agc_model_resolve_path_in_place (&model_dir); // a pulled model's NAME, or a folder
  AgcModel *model = agc_model_load (model_dir, &error);
  AgcAdapter *adapter = NULL;
  if (model && adapter_path)
    {
      /* a probe's head does not change embeddings: saying so beats printing
       * the plain model's embeddings as if the adapter had been used */
      if ((adapter = agc_adapter_load (adapter_path, &error))
          && agc_adapter_n_tensors (adapter) == 0)
        {
          g_autofree char *shown = g_filename_display_name (adapter_path);
          g_set_error (&error, AGC_ERROR, AGC_ERROR_INPUT,
                       _("%s: a probe adapter does not change embeddings (it is a classifier "
                         "head); use it with 'agriclip classify --adapter'"),
                       shown);
        }
      else if (adapter)
        agc_model_apply_adapter (model, adapter, &error);
    }
  if (model && !error && int8)
    agc_model_set_int8 (model, TRUE, &error);
  if (model && !error)
    {
      int dim = agc_model_embed_dim (model);
      g_autofree float *out = g_new (float, (gsize) args.inputs->len * dim);
      if (embed_texts (model, args.inputs, !raw, out, &error)
          && embed_images (model, args.inputs, !raw, fast_decode, out, &error))
        for (guint i = 0; i < args.inputs->len; i++)
          {
            const EmbedInput *input = &g_array_index (args.inputs, EmbedInput, i);
            write_line (input->is_image ? "image" : "text", input->value, out + (gsize) i * dim,
                        dim);
          }
    }
  if (error)
    status = cli_fail (error);
  agc_model_free (model);
  agc_adapter_free (adapter);
  g_array_unref (args.inputs);
  return status;
}

const CliCommand cli_embed_command = {
  .name = "embed",
  .parameters = "",
  .summary = N_("Print embeddings of images and texts as JSON lines, in input order"),
  .run = run,
};
