/* interrupt.c — SIGINT/SIGTERM cancel a GCancellable.
 *
 * A signal handler may not call g_cancellable_cancel (it takes locks), so
 * GLib's own unix-signal sources deliver the signal on a small watcher
 * thread with a main context of its own.  Each source removes itself when
 * it fires: GLib then puts back the default action, and a second Ctrl-C
 * ends the process. */
#include "interrupt.h"

#include <glib-unix.h>
#include <signal.h>
#include <stdio.h>

#include "cli.h"

typedef struct
{
  GMainContext *context;
  GThread *thread;
  GSource *sources[2];
  gint stop;
} Watch;

static Watch watch;

static gboolean
on_signal (gpointer cancellable)
{
  g_cancellable_cancel (cancellable);
  return G_SOURCE_REMOVE;
}

/* Not a GMainLoop: a quit before the thread runs it would be lost.  A
 * wake-up before the thread blocks is kept by the context. */
static gpointer
run_watch (gpointer data)
{
  (void) data;
  while (!g_atomic_int_get (&watch.stop))
    g_main_context_iteration (watch.context, TRUE);
  return NULL;
}

GCancellable *
cli_interrupt_begin (void)
{
  GCancellable *cancellable = g_cancellable_new ();
  watch.context = g_main_context_new ();
  const int signals[2] = { SIGINT, SIGTERM };
  for (int i = 0; i < 2; i++)
    {
      watch.sources[i] = g_unix_signal_source_new (signals[i]);
      g_source_set_callback (watch.sources[i], on_signal, cancellable, NULL);
      g_source_attach (watch.sources[i], watch.context);
    }
  watch.thread = g_thread_new ("agriclip-interrupt", run_watch, NULL);
  return cancellable;
}

void
cli_interrupt_end (GCancellable *cancellable)
{
  if (watch.thread == NULL)
    return;
  g_atomic_int_set (&watch.stop, 1);
  g_main_context_wakeup (watch.context);
  g_thread_join (watch.thread);
  for (int i = 0; i < 2; i++)
    {
      g_source_destroy (watch.sources[i]); // a fired one is destroyed already: harmless
      g_source_unref (watch.sources[i]);
    }
  g_main_context_unref (watch.context);
  watch = (Watch) { 0 };
  g_clear_object (&cancellable);
}

gboolean
cli_interrupt_matches (const GError *error)
{
  return g_error_matches (error, AGC_ERROR, AGC_ERROR_CANCELLED)
         || g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
}

int
cli_interrupted (GError *error, const char *how_to_go_on)
{
  g_clear_error (&error);
  if (how_to_go_on != NULL)
    fprintf (stderr, _("agriclip: interrupted; %s\n"), how_to_go_on);
  else
    fprintf (stderr, _("agriclip: interrupted\n"));
  return 128 + SIGINT;
}
