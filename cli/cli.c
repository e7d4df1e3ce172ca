/* cli.c — shared helpers of the agriclip subcommands. */
#include "cli.h"

#include <math.h>
#include <stdarg.h>
#include <string.h>
#include <unistd.h>

GOptionContext *
cli_option_context_new (const CliCommand *command, const GOptionEntry *entries)
{
  /* --help then reads "Usage: agriclip NAME [OPTION…] PARAMETERS". */
  g_autofree char *program = g_strdup_printf ("agriclip %s", command->name);
  g_set_prgname (program);
  GOptionContext *context = g_option_context_new (command->parameters);
  g_option_context_set_summary (context, _(command->summary));
  if (entries)
    g_option_context_add_main_entries (context, entries, GETTEXT_PACKAGE);
  return context;
}

gboolean
cli_parse (GOptionContext *context, const CliCommand *command, int *argc, char ***argv)
{
  GError *error = NULL;
  if (g_option_context_parse (context, argc, argv, &error))
    {
      /* GOption leaves the "--" that ends the options (needed for a TEXT
       * starting with '-') in argv: drop it. */
      for (int i = 1; i < *argc; i++)
        if (strcmp ((*argv)[i], "--") == 0)
          {
            memmove (*argv + i, *argv + i + 1, sizeof (char *) * (*argc - i));
            (*argc)--;
            break;
          }
      return TRUE;
    }
  cli_usage (command, "%s", error->message);
  g_error_free (error);
  return FALSE;
}

int
cli_fail (GError *error)
{
  cli_warn (error);
  g_clear_error (&error);
  return CLI_EXIT_ERROR;
}

void
cli_warn (const GError *error)
{
  /* One line per error, so that scripts can parse stderr. */
  g_autofree char *line = g_strdup (error ? error->message : _("unknown error"));
  g_strdelimit (line, "\r\n", ' ');
  fprintf (stderr, "agriclip: %s\n", line);
}

int
cli_usage (const CliCommand *command, const char *format, ...)
{
  va_list args;
  va_start (args, format);
  g_autofree char *message = g_strdup_vprintf (format, args);
  va_end (args);
  fprintf (stderr, "agriclip: %s\n", message);
  fprintf (stderr, _("Try 'agriclip %s --help'.\n"), command->name);
  return CLI_EXIT_USAGE;
}

void
cli_write_json_string (FILE *out, const char *s)
{
  g_autoptr (GString) text = g_string_new (NULL);
  agc_json_append_string (text, s);
  fputs (text->str, out);
}

void
cli_write_csv_field (FILE *out, const char *s)
{
  if (strpbrk (s, ",\"\r\n") == NULL)
    {
      fputs (s, out);
      return;
    }
  fputc ('"', out);
  for (const char *p = s; *p; p++)
    {
      if (*p == '"')
        fputc ('"', out);
      fputc (*p, out);
    }
  fputc ('"', out);
}

void
cli_write_float (FILE *out, float value)
{
  /* JSON has no NaN or infinity; they would only come from a broken model. */
  if (!isfinite (value))
    fputs ("null", out);
  else
    fprintf (out, "%.9g", value);
}

void
cli_progress_init (CliProgress *progress)
{
  *progress = (CliProgress) { .tty = isatty (STDERR_FILENO) };
  if (progress->tty)
    return;
  const char *setting = g_getenv ("AGRICLIP_PROGRESS_INTERVAL");
  char *end = NULL;
  double seconds = setting && *setting ? g_ascii_strtod (setting, &end) : 60;
  if (end != NULL && (*end != '\0' || !(seconds >= 0 && seconds <= 1e6)))
    seconds = 60; // not a number of seconds: the default rather than a failed run
  progress->interval_us = (gint64) (seconds * G_USEC_PER_SEC);
  progress->next_line_us = g_get_monotonic_time () + progress->interval_us;
}

/* Off a terminal: the text as one line, when one is due. */
static void
progress_line (CliProgress *progress, const char *format, va_list args)
{
  gint64 now = g_get_monotonic_time ();
  if (progress->interval_us <= 0 || now < progress->next_line_us)
    return;
  progress->next_line_us = now + progress->interval_us;
  g_autofree char *text = g_strdup_vprintf (format, args);
  g_strchomp (text); // the padding that overwrites a longer line on a terminal
  fprintf (stderr, "agriclip: %s\n", text);
  fflush (stderr);
}

void
cli_progress_printf (CliProgress *progress, const char *format, ...)
{
  va_list args;
  va_start (args, format);
  if (!progress->tty)
    {
      progress_line (progress, format, args);
      va_end (args);
      return;
    }
  fputc ('\r', stderr);
  vfprintf (stderr, format, args);
  va_end (args);
  progress->mid_line = TRUE;
}

void
cli_progress_end (CliProgress *progress)
{
  if (progress->mid_line)
    fputc ('\n', stderr);
  progress->mid_line = FALSE;
}

void
cli_progress_report (const GError *problem, gpointer user_data)
{
  cli_progress_end (user_data);
  cli_warn (problem);
}
