/* cli.h — what the agriclip subcommands share: exit codes, error
 * reporting, option parsing and output helpers. */
#pragma once

#include <glib.h>
#include <glib/gi18n.h>
#include <stdio.h>

#include "agriclip.h"

enum
{
  CLI_EXIT_OK = 0,
  CLI_EXIT_ERROR = 1, /* runtime error: one line on stderr */
  CLI_EXIT_USAGE = 2, /* the command line is wrong */
};

typedef struct
{
  const char *name;
  const char *parameters; /* shown after the name in --help, e.g. "TEXT..." */
  const char *summary;
  int (*run) (int argc, char **argv);
} CliCommand;

extern const CliCommand cli_tokenize_command;
extern const CliCommand cli_embed_command;
extern const CliCommand cli_classify_command;
extern const CliCommand cli_train_command;
extern const CliCommand cli_export_command;
extern const CliCommand cli_tag_command;
extern const CliCommand cli_merge_command;

/* A GOptionContext for a subcommand, titled "agriclip NAME PARAMETERS". */
GOptionContext *cli_option_context_new (const CliCommand *command, const GOptionEntry *entries);

/* Parses argv; on failure prints the reason and returns FALSE (exit 2). */
gboolean cli_parse (GOptionContext *context, const CliCommand *command, int *argc, char ***argv);

/* Prints "agriclip: MESSAGE" on stderr, frees error, returns CLI_EXIT_ERROR. */
int cli_fail (GError *error);
/* Prints "agriclip: MESSAGE" and a hint to --help, returns CLI_EXIT_USAGE. */
int cli_usage (const CliCommand *command, const char *format, ...) G_GNUC_PRINTF (2, 3);
/* Reports a runtime error and goes on (for batch work). */
void cli_warn (const GError *error);

/* Writes s as a JSON string literal, quotes included (agc_json_append_string:
 * a file name that is not UTF-8 gets each byte of an invalid sequence as the
 * escape of the lone surrogate U+DC00 + byte, PEP 383's "surrogateescape":
 * byte 0xFF is written "\udcff"; Python's os.fsencode(json.loads(line)["image"])
 * gives back the bytes). */
void cli_write_json_string (FILE *out, const char *s);
/* Writes s as one CSV field, quoted when it needs to be (RFC 4180). */
void cli_write_csv_field (FILE *out, const char *s);
/* Writes a float so that it reads back as the same float. */
void cli_write_float (FILE *out, float value);

/* A progress line on stderr that rewrites itself ('\r') on a terminal.
 * Elsewhere (batch logs, pipes) long work writes it as a whole line every
 * AGRICLIP_PROGRESS_INTERVAL seconds (default 60; 0: never), so that a Slurm
 * job's log shows how far it got and short runs print nothing. */
typedef struct
{
  gboolean tty;        /* stderr is a terminal */
  gboolean mid_line;   /* a progress line is showing */
  gint64 interval_us;  /* off a terminal: time between lines, 0 for none */
  gint64 next_line_us; /* off a terminal: when the next line is due */
} CliProgress;

/* Starts with no line showing. */
void cli_progress_init (CliProgress *progress);
/* Replaces the progress line by the formatted text (on a terminal), or
 * writes it as a line when one is due (elsewhere). */
void cli_progress_printf (CliProgress *progress, const char *format, ...) G_GNUC_PRINTF (2, 3);
/* Ends a showing progress line, so that what follows starts a line. */
void cli_progress_end (CliProgress *progress);
/* An AgcTrainReportFunc: ends the progress line, then cli_warn.  user_data
 * is a CliProgress, or a struct whose first member is one. */
void cli_progress_report (const GError *problem, gpointer user_data);
