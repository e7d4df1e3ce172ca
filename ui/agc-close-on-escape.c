/* agc-close-on-escape.c — Escape closes a non-modal window (agc-close-on-escape.h). */
#include "agc-close-on-escape.h"

static gboolean
on_key_press (GtkWidget *widget, GdkEventKey *event, gpointer data)
{
  (void) data;
  if (event->keyval != GDK_KEY_Escape)
    return GDK_EVENT_PROPAGATE;
  gtk_window_close (GTK_WINDOW (widget));
  return GDK_EVENT_STOP;
}

void
agc_ui_close_on_escape (GtkWindow *window)
{
  g_signal_connect (window, "key-press-event", G_CALLBACK (on_key_press), NULL);
}
