/* cmd-captions.c — `agriclip captions`: image-text pairs from a folder of
 * tagged photos (agc_captions_write), in the format pretrain reads. */
#include "cli.h"

extern const CliCommand cli_captions_command;

static void
on_problem (const GError *problem, gpointer user_data)
{
  (void) user_data;
  cli_warn (problem);
}

static int
run (int argc, char **argv)
{
  AgcCaptionParams params = agc_caption_default_params ();
  g_autofree char *data_dir = NULL, *out = NULL, *seed_text = NULL;
  const GOptionEntry entries[] = {
    { "data", 'd', 0, G_OPTION_ARG_FILENAME, &data_dir,
      N_("Folder with one sub-folder of images per class (the tag), and optionally "
         "labels.json with each class's domain and attributes"), N_("DIR") },
    { "out", 'o', 0, G_OPTION_ARG_FILENAME, &out,
      N_("Folder to write captions.jsonl and the link photos to (outside DIR)"), N_("PAIRS") },
    { "per-image", 0, 0, G_OPTION_ARG_INT, &params.per_image,
      N_("Captions per photo (default 3)"), N_("N") },
    { "seed", 0, 0, G_OPTION_ARG_STRING, &seed_text,
      N_("Seed: the same seed gives the same captions (default 0)"), N_("N") },
    { NULL },
  };
  const CliCommand *command = &cli_captions_command;
  g_autoptr (GOptionContext) context = cli_option_context_new (command, entries);
  g_option_context_set_description (
      context, _("Each class's label becomes varied sentences through templates of its "
                 "domain (crop, livestock, fish). The photos are linked, not copied."));
  if (!cli_parse (context, command, &argc, &argv))
    return CLI_EXIT_USAGE;
  if (!data_dir || !out)
    return cli_usage (command, _("--data and --out are required"));
  if (argc > 1)
    return cli_usage (command, _("unexpected argument '%s'"), argv[1]);
  if (seed_text
      && !g_ascii_string_to_unsigned (seed_text, 10, 0, G_MAXUINT64, &params.seed, NULL))
    return cli_usage (command, _("--seed must be a non-negative integer, not '%s'"), seed_text);
  if (params.per_image < 1 || params.per_image > AGC_CAPTIONS_MAX_PER_IMAGE)
    return cli_usage (command, _("--per-image must be between 1 and %d"),
                      AGC_CAPTIONS_MAX_PER_IMAGE);
  params.report = on_problem;

  GError *error = NULL;
  int n_pairs = 0;
  if (!agc_captions_write (data_dir, out, &params, &n_pairs, &error))
    return cli_fail (error);
  g_autofree char *shown = g_filename_display_name (out);
  printf (g_dngettext (GETTEXT_PACKAGE, "wrote %d image-text pair to %s/captions.jsonl\n",
                    "wrote %d image-text pairs to %s/captions.jsonl\n", n_pairs),
          n_pairs, shown);
  return CLI_EXIT_OK;
}

const CliCommand cli_captions_command = {
  .name = "captions",
  .parameters = "",
  .summary = N_("Write image-text pairs from a folder of tagged photos (for contrastive "
                "training)"),
  .run = run,
};
