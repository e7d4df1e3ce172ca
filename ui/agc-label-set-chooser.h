/* agc-label-set-chooser.h — picking a label set: the installed sets by
 * title with their class counts (agc_label_set_list_installed, sets that
 * fail to load listed with the loader's message), "Open file…" for any
 * label-set file, "New…" and "Edit…" through the label-set editor; a set
 * saved in the editor appears in the list, selected. */
#pragma once

#include <gtk/gtk.h>

#include "agriclip.h"

G_BEGIN_DECLS

#define AGC_TYPE_LABEL_SET_CHOOSER (agc_label_set_chooser_get_type ())
G_DECLARE_FINAL_TYPE (AgcLabelSetChooser, agc_label_set_chooser, AGC, LABEL_SET_CHOOSER,
                      GtkBox)

GtkWidget *agc_label_set_chooser_new (void);

/* The selected set as agc_label_set_open takes it: an installed set's id
 * or a file's path; NULL when nothing usable is selected (g_free). */
char *agc_label_set_chooser_get_selected (AgcLabelSetChooser *self);
/* Selects an installed id or a file (added to the list); FALSE when it
 * is neither. */
gboolean agc_label_set_chooser_select (AgcLabelSetChooser *self, const char *id_or_path);
/* Reads the installed sets again. */
void agc_label_set_chooser_refresh (AgcLabelSetChooser *self);
/* The editor opened by New… or Edit…, while it is open; else NULL. */
GtkWidget *agc_label_set_chooser_get_editor (AgcLabelSetChooser *self);
/* What the row of id_or_path shows in its Title and Classes columns
 * (g_free); FALSE when there is no such row. */
gboolean agc_label_set_chooser_get_row (AgcLabelSetChooser *self, const char *id_or_path,
                                        char **title, int *n_classes);

G_END_DECLS
