/* cmd-tokenize.c — `agriclip tokenize`: the token ids of texts, one line each. */
#include "cli.h"

static int
run (int argc, char **argv)
{
  g_autofree char *model_dir = NULL;
  const GOptionEntry entries[] = {
    { "model", 'm', 0, G_OPTION_ARG_FILENAME, &model_dir,
      N_("Model folder with the tokenizer files"), N_("DIR") },
    { NULL },
  };
  g_autoptr (GOptionContext) context = cli_option_context_new (&cli_tokenize_command, entries);
  if (!cli_parse (context, &cli_tokenize_command, &argc, &argv))
    return CLI_EXIT_USAGE;
  if (!model_dir)
    return cli_usage (&cli_tokenize_command, _("--model is required"));
  if (argc < 2)
    return cli_usage (&cli_tokenize_command, _("no TEXT given"));

  GError *error = NULL;
  int context_length;
  agc_model_resolve_path_in_place (&model_dir); // a pulled model's NAME, or a folder
  if (!agc_model_dir_context_length (model_dir, &context_length, &error))
    return cli_fail (error);
  AgcTokenizer *tokenizer = agc_tokenizer_load_dir (model_dir, &error);
  if (!tokenizer)
    return cli_fail (error);

  g_autofree int32_t *ids = g_new (int32_t, context_length);
  int status = CLI_EXIT_OK;
  for (int i = 1; i < argc && status == CLI_EXIT_OK; i++)
    {
      if (!agc_tokenizer_encode (tokenizer, argv[i], context_length, ids, &error))
        {
          status = cli_fail (error);
          break;
        }
      for (int t = 0; t < context_length; t++)
        printf (t ? " %d" : "%d", ids[t]);
      putchar ('\n');
    }
  agc_tokenizer_free (tokenizer);
  return status;
}

const CliCommand cli_tokenize_command = {
  .name = "tokenize",
  .parameters = "TEXT...",
  .summary = N_("Print the token ids of each TEXT, one line per text"),
  .run = run,
};
