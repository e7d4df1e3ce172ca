/* agc-ui-progress.c — a window's work in progress, see agc-ui-progress.h. */
#include "agc-ui-progress.h"

#include <glib/gi18n-lib.h>

GtkWidget *
agc_ui_progress_new (void)
{
  GtkWidget *bar = gtk_progress_bar_new ();
  gtk_progress_bar_set_show_text (GTK_PROGRESS_BAR (bar), TRUE);
  gtk_widget_set_valign (bar, GTK_ALIGN_CENTER);
  atk_object_set_name (gtk_widget_get_accessible (bar), _("Progress"));
  return bar;
}

void
agc_ui_progress_show (GtkWidget *bar, int done, int total, const char *text)
{
  gtk_progress_bar_set_fraction (GTK_PROGRESS_BAR (bar), total > 0 ? (double) done / total : 0.0);
  gtk_progress_bar_set_text (GTK_PROGRESS_BAR (bar), text);
}

void
agc_ui_progress_set_busy (GtkWidget *bar, GtkWidget *cancel, gboolean busy)
{
  gtk_widget_set_visible (bar, busy);
  gtk_widget_set_visible (cancel, busy);
}
