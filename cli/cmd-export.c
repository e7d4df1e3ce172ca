/* cmd-export.c — `agriclip export`: a tagging run written in a format that
 * dataset and photo tools read (agc_tag_export). */
#include "cli.h"

static int
run (int argc, char **argv)
{
  g_autofree char *format_name = NULL, *dest = NULL;
  gboolean copy = FALSE;
  const GOptionEntry entries[] = {
    { "format", 'f', 0, G_OPTION_ARG_STRING, &format_name,
      N_("folders, csv, coco, yolo, label-studio or xmp"), N_("FORMAT") },
    { "out", 'o', 0, G_OPTION_ARG_FILENAME, &dest,
      N_("Folder to write (a new one, or an earlier export of the same format)"), N_("DEST") },
    { "copy", 0, 0, G_OPTION_ARG_NONE, &copy,
      N_("Copy the images instead of linking to them (folders, yolo)"), NULL },
    { NULL },
  };
  const CliCommand *command = &cli_export_command;
  g_autoptr (GOptionContext) context = cli_option_context_new (command, entries);
  if (!cli_parse (context, command, &argc, &argv))
    return CLI_EXIT_USAGE;
  if (argc != 2)
    return cli_usage (command, _("give one RUN folder"));
  AgcExportFormat format;
  if (!format_name)
    return cli_usage (command, _("--format is required"));
  if (!agc_export_format_from_name (format_name, &format))
    return cli_usage (command,
                      _("unknown format '%s' (folders, csv, coco, yolo, label-studio or xmp)"),
                      format_name);
  if (!dest)
    return cli_usage (command, _("--out is required"));
  if (copy && format != AGC_EXPORT_FOLDERS && format != AGC_EXPORT_YOLO)
    return cli_usage (command, _("--copy applies to the folders and yolo formats only"));

  GError *error = NULL;
  int n_problems = 0;
  CliProgress no_line; // nothing is showing: a report is a warning line
  cli_progress_init (&no_line);
  if (!agc_tag_export (argv[1], format, dest, copy, cli_progress_report, &no_line, &n_problems,
                       &error))
    return cli_fail (error);
  return n_problems > 0 ? CLI_EXIT_ERROR : CLI_EXIT_OK;
}

const CliCommand cli_export_command = {
  .name = "export",
  .parameters = "RUN",
  .summary = N_("Write a tagging run for dataset and photo tools"),
  .run = run,
};
