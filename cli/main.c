/* main.c — the agriclip command: dispatches to one subcommand per file. */
#include "cli.h"

#include <locale.h>
#include <string.h>

static const CliCommand *const commands[] = {
  &cli_classify_command,
  &cli_embed_command,
  &cli_tokenize_command,
};

static void
print_help (FILE *out)
{
  fprintf (out, _("Usage: agriclip COMMAND [OPTION...]\n\n"
                  "Zero-shot labelling of agricultural photos with CLIP models.\n\n"
                  "Commands:\n"));
  for (gsize i = 0; i < G_N_ELEMENTS (commands); i++)
    fprintf (out, "  %-10s %s\n", commands[i]->name, _(commands[i]->summary));
  fprintf (out, _("\nRun 'agriclip COMMAND --help' for the options of a command.\n"));
}

int
main (int argc, char **argv)
{
  setlocale (LC_ALL, "");
  bindtextdomain (GETTEXT_PACKAGE, LOCALEDIR);
  bind_textdomain_codeset (GETTEXT_PACKAGE, "UTF-8");
  textdomain (GETTEXT_PACKAGE);

  if (argc < 2)
    {
      print_help (stderr);
      return CLI_EXIT_USAGE;
    }
  const char *name = argv[1];
  if (strcmp (name, "--help") == 0 || strcmp (name, "-h") == 0 || strcmp (name, "help") == 0)
    {
      print_help (stdout);
      return CLI_EXIT_OK;
    }
  if (strcmp (name, "--version") == 0)
    {
      printf ("agriclip %s\n", AGRICLIP_VERSION);
      return CLI_EXIT_OK;
    }
  for (gsize i = 0; i < G_N_ELEMENTS (commands); i++)
    if (strcmp (name, commands[i]->name) == 0)
      return commands[i]->run (argc - 1, argv + 1);

  fprintf (stderr, _("agriclip: unknown command '%s'\n"), name);
  print_help (stderr);
  return CLI_EXIT_USAGE;
}
