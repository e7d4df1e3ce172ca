/* agc-label-set-draft.h — a label set being edited, as the file format
 * (models/labels/README.md) spells it, and its JSON text.  Whether it is
 * valid is for the library's loader to say (agc_label_set_draft_check), so
 * that the editor shows exactly the messages the loader gives. */
#pragma once

#include <glib.h>

#include "agriclip.h"

G_BEGIN_DECLS

typedef struct
{
  char *name, *display;
  char *text;        /* NULL or "": none (the display name fills the templates) */
  char **prompts;    /* the class's own sentences, NULL-terminated */
  gboolean use_templates;
  /* for captions, kept as loaded (the editor does not show them): */
  char *domain;      /* NULL or "": none */
  char **attributes; /* NULL or NULL-terminated */
} AgcLabelClassDraft;

typedef struct
{
  char *id, *title, *description, *source; /* description, source: "" for none */
  char **templates;  /* NULL-terminated, each with its {} */
  GArray *classes;   /* of AgcLabelClassDraft */
} AgcLabelSetDraft;

AgcLabelSetDraft *agc_label_set_draft_new (void);
/* A draft of a loaded set: its fields as the file wrote them. */
AgcLabelSetDraft *agc_label_set_draft_new_from_set (const AgcLabelSet *set);
void agc_label_set_draft_free (AgcLabelSetDraft *draft);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (AgcLabelSetDraft, agc_label_set_draft_free)

/* Appends a class (strings copied; prompts may be NULL). */
void agc_label_set_draft_add_class (AgcLabelSetDraft *draft, const char *name,
                                    const char *display, const char *text,
                                    const char *const *prompts, gboolean use_templates);

/* The label-set file's text (g_free). */
char *agc_label_set_draft_to_json (const AgcLabelSetDraft *draft);

/* The set the loader makes of the draft: it is written to a temporary file
 * and read back with agc_label_set_load, whose message (naming the field
 * and class) is the error; the file name in it is file_name. */
AgcLabelSet *agc_label_set_draft_check (const AgcLabelSetDraft *draft, const char *file_name,
                                        GError **error);

G_END_DECLS
