/* cmd-merge.c — `agriclip merge`: the shards of a tagging run (agriclip tag
 * --shard I/N) joined into one run folder, as one process would have made
 * it.  The work is the library's agc_tag_merge. */
#include "cli.h"

static int
run (int argc, char **argv)
{
  g_autofree char *out = NULL;
  const GOptionEntry entries[] = {
    { "out", 'o', 0, G_OPTION_ARG_FILENAME, &out,
      N_("The merged run folder (must not exist)"), N_("RUN") },
    { NULL },
  };
  const CliCommand *command = &cli_merge_command;
  g_autoptr (GOptionContext) context = cli_option_context_new (command, entries);
  g_option_context_set_description (context, _(
    "RUN_0 ... RUN_N-1 are the folders of 'agriclip tag --shard I/N', every shard once,\n"
    "each finished.  Runs made with other settings, overlapping shards and unfinished\n"
    "ones are refused."));
  if (!cli_parse (context, command, &argc, &argv))
    return CLI_EXIT_USAGE;
  if (!out)
    return cli_usage (command, _("--out RUN is required"));
  if (argc < 2)
    return cli_usage (command, _("no shard folders given"));
  GError *error = NULL;
  if (!agc_tag_merge (out, (const char *const *) argv + 1, argc - 1, &error))
    return cli_fail (error);
  return CLI_EXIT_OK;
}

const CliCommand cli_merge_command = {
  .name = "merge",
  .parameters = "RUN_0 ... RUN_N-1",
  .summary = N_("Join the shard folders of a tagging run"),
  .run = run,
};
