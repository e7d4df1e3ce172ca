/* interrupt.h — Ctrl-C (SIGINT) and SIGTERM as cancellation for long
 * commands: the first one cancels the work through a GCancellable, so the
 * library stops at its next check and keeps what lets the same command
 * resume (a training checkpoint, a tagging run's journal); a second one
 * ends the process at once, as the signal normally does. */
#pragma once

#include <gio/gio.h>

/* Starts watching; the returned cancellable is cancelled by the first
 * SIGINT or SIGTERM.  Call before the work starts its threads. */
GCancellable *cli_interrupt_begin (void);

/* Stops watching (the signals' usual meaning back) and frees cancellable. */
void cli_interrupt_end (GCancellable *cancellable);

/* Whether error is the cancellation of an interrupted command. */
gboolean cli_interrupt_matches (const GError *error);

/* Prints "agriclip: interrupted" and, if not NULL, how to go on (one
 * line on stderr), frees error and returns the shell's status for a
 * process ended by SIGINT (130). */
int cli_interrupted (GError *error, const char *how_to_go_on);
