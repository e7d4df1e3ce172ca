/* main.c — the agriclip command: dispatches to one subcommand per file. */
#include "cli.h"

#include <locale.h>
#include <stdlib.h>
#include <string.h>

extern const CliCommand cli_bench_command;
extern const CliCommand cli_captions_command;
extern const CliCommand cli_models_command;
extern const CliCommand cli_evaluate_command;
extern const CliCommand cli_synth_command;
extern const CliCommand cli_pretrain_command;

static const CliCommand *const commands[] = {
  &cli_bench_command,
  &cli_captions_command,
  &cli_classify_command,
  &cli_embed_command,
  &cli_evaluate_command,
  &cli_export_command,
  &cli_models_command,
  &cli_merge_command,
  &cli_synth_command,
  &cli_pretrain_command,
  &cli_tag_command,
  &cli_tokenize_command,
  &cli_train_command,
};

static void
print_help (FILE *out)
{
  fprintf (out, _("Usage: agriclip COMMAND [OPTION...]\n\n"
                  "Zero-shot labelling of agricultural photos with CLIP models.\n\n"
                  "Commands:\n"));
  for (gsize i = 0; i < G_N_ELEMENTS (commands); i++)
    fprintf (out, "  %-10s %s\n", commands[i]->name, _(commands[i]->summary));
  fprintf (out, _("\nOption of every command:\n"
                  "  --threads N   threads for encoding (default: OpenBLAS's count, one per core)\n"));
  fprintf (out, _("\nRun 'agriclip COMMAND --help' for the options of a command.\n"));
}

/* Takes "--threads N" / "--threads=N" out of argv (before any "--") and
 * applies it, so that every command honours it.  FALSE on a bad value. */
static gboolean
take_threads_option (int *argc, char **argv)
{
  for (int i = 1; i < *argc && strcmp (argv[i], "--") != 0; i++)
    {
      const char *value = NULL;
      int used = 0;
      if (strcmp (argv[i], "--threads") == 0 && i + 1 < *argc)
        value = argv[i + 1], used = 2;
      else if (g_str_has_prefix (argv[i], "--threads="))
        value = argv[i] + strlen ("--threads="), used = 1;
      if (used == 0)
        continue;
      char *end;
      long n = strtol (value, &end, 10);
      if (*value == '\0' || *end != '\0' || n < 1 || n > 1024)
        {
          fprintf (stderr, _("agriclip: --threads wants a positive number, not '%s'\n"), value);
          return FALSE;
        }
      agc_set_threads ((int) n);
      memmove (argv + i, argv + i + used, sizeof (char *) * (*argc - i - used + 1));
      *argc -= used;
      i--;
    }
  return TRUE;
}

int
main (int argc, char **argv)
{
  setlocale (LC_ALL, "");
  /* CSV and JSON output need '.' decimals whatever the user's language. */
  setlocale (LC_NUMERIC, "C");
  /* AGRICLIP_LOCALEDIR: catalogs of an uninstalled build, e.g. for tests. */
  const char *localedir = g_getenv ("AGRICLIP_LOCALEDIR");
  bindtextdomain (GETTEXT_PACKAGE, localedir ? localedir : LOCALEDIR);
  bind_textdomain_codeset (GETTEXT_PACKAGE, "UTF-8");
  textdomain (GETTEXT_PACKAGE);

  if (!take_threads_option (&argc, argv))
    return CLI_EXIT_USAGE;
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
