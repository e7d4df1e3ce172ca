/* agc-label-set-editor.h — writing a label set: id, title, description,
 * templates, and the classes (export name, display name, text, own
 * prompts, whether the templates apply) with add, remove and reorder.
 * Every change is checked by the library's loader (agc-label-set-draft.h):
 * the message shown is the loader's.  "Preview prompts" lists the exact
 * sentences each class becomes (agc_label_set_class_prompts).  "Save"
 * writes $XDG_DATA_HOME/agriclip/labels/ID.json atomically and refuses to
 * replace an installed set or another file of the user's. */
#pragma once

#include <gtk/gtk.h>

#include "agc-label-set-draft.h"
#include "agriclip.h"

G_BEGIN_DECLS

#define AGC_TYPE_LABEL_SET_EDITOR (agc_label_set_editor_get_type ())
G_DECLARE_FINAL_TYPE (AgcLabelSetEditor, agc_label_set_editor, AGC, LABEL_SET_EDITOR, GtkDialog)

/* An editor of a copy of set (NULL: a new set) read from origin (its file,
 * NULL for a new set: saving may replace origin when it is the user's own
 * file and nothing else). */
GtkWidget *agc_label_set_editor_new (GtkWindow *parent, const AgcLabelSet *set,
                                     const char *origin);

/* What the editor holds now. */
AgcLabelSetDraft *agc_label_set_editor_get_draft (AgcLabelSetEditor *self);
/* The loader's message about it, NULL when it is a valid set (g_free). */
char *agc_label_set_editor_get_problem (AgcLabelSetEditor *self);
/* The text "Preview prompts" shows: each class's display name, then its
 * sentences; NULL and the loader's error when the set is not valid. */
char *agc_label_set_editor_get_preview (AgcLabelSetEditor *self, GError **error);
/* Where Save writes the set with this id (g_free). */
char *agc_label_set_editor_target (const char *id);
/* Saves as "Save" does; the path written (g_free), or NULL and why not. */
char *agc_label_set_editor_save (AgcLabelSetEditor *self, GError **error);

G_END_DECLS
