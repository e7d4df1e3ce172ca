/* agc-ui-progress.h — the progress of a window's work on a worker thread
 * (the regions window's tiles, the training window's encoding and epochs):
 * a bar that shows its text and reads as "Progress" to screen readers, what
 * it says as reports arrive on the main loop, and the bar and its Cancel
 * button shown only while the work runs. */
#pragma once

#include <gtk/gtk.h>

G_BEGIN_DECLS

GtkWidget *agc_ui_progress_new (void);
/* done of total (0 of 0: empty) with text on the bar. */
void agc_ui_progress_show (GtkWidget *bar, int done, int total, const char *text);
/* Shows bar and cancel while busy, hides them after. */
void agc_ui_progress_set_busy (GtkWidget *bar, GtkWidget *cancel, gboolean busy);

G_END_DECLS
