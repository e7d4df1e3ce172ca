/* agc-close-on-escape.h — Escape closes a non-modal window, as in GIMP's own. */
#pragma once
#include <gtk/gtk.h>

void agc_ui_close_on_escape (GtkWindow *window);
