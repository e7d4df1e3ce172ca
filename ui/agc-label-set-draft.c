/* agc-label-set-draft.c — label sets being edited, see agc-label-set-draft.h. */
#include "agc-label-set-draft.h"

#include <glib/gstdio.h>
#include <string.h>

static void
class_clear (AgcLabelClassDraft *c)
{
  g_free (c->name);
  g_free (c->display);
  g_free (c->text);
  g_strfreev (c->prompts);
  g_free (c->domain);
  g_strfreev (c->attributes);
}

AgcLabelSetDraft *
agc_label_set_draft_new (void)
{
  AgcLabelSetDraft *draft = g_new0 (AgcLabelSetDraft, 1);
  draft->id = g_strdup ("");
  draft->title = g_strdup ("");
  draft->description = g_strdup ("");
  draft->source = g_strdup ("");
  draft->templates = g_new0 (char *, 1);
  draft->classes = g_array_new (FALSE, TRUE, sizeof (AgcLabelClassDraft));
  g_array_set_clear_func (draft->classes, (GDestroyNotify) class_clear);
  return draft;
}

void
agc_label_set_draft_add_class (AgcLabelSetDraft *draft, const char *name, const char *display,
                               const char *text, const char *const *prompts,
                               gboolean use_templates)
{
  AgcLabelClassDraft c = {
    .name = g_strdup (name ? name : ""),
    .display = g_strdup (display ? display : ""),
    .text = g_strdup (text),
    .prompts = prompts ? g_strdupv ((char **) prompts) : g_new0 (char *, 1),
    .use_templates = use_templates,
  };
  g_array_append_val (draft->classes, c);
}

AgcLabelSetDraft *
agc_label_set_draft_new_from_set (const AgcLabelSet *set)
{
  AgcLabelSetDraft *draft = agc_label_set_draft_new ();
  g_free (draft->id);
  g_free (draft->title);
  g_free (draft->description);
  g_free (draft->source);
  g_strfreev (draft->templates);
  draft->id = g_strdup (agc_label_set_id (set));
  draft->title = g_strdup (agc_label_set_title (set));
  draft->description = g_strdup (agc_label_set_description (set));
  draft->source = g_strdup (agc_label_set_source (set));
  draft->templates = g_strdupv ((char **) agc_label_set_templates (set));
  for (int i = 0; i < agc_label_set_n_classes (set); i++)
    {
      agc_label_set_draft_add_class (draft, agc_label_set_class_name (set, i),
                                     agc_label_set_class_display_name (set, i),
                                     agc_label_set_class_text (set, i),
                                     agc_label_set_class_own_prompts (set, i),
                                     agc_label_set_class_uses_templates (set, i));
      // saving from the editor must not lose what agriclip captions reads
      AgcLabelClassDraft *c = &g_array_index (draft->classes, AgcLabelClassDraft, i);
      c->domain = g_strdup (agc_label_set_class_domain (set, i));
      c->attributes = g_strdupv ((char **) agc_label_set_class_attributes (set, i));
    }
  return draft;
}

void
agc_label_set_draft_free (AgcLabelSetDraft *draft)
{
  if (!draft)
    return;
  g_free (draft->id);
  g_free (draft->title);
  g_free (draft->description);
  g_free (draft->source);
  g_strfreev (draft->templates);
  g_array_unref (draft->classes);
  g_free (draft);
}

/* ---- JSON text ---------------------------------------------------------- */

static void
append_member (GString *out, const char *indent, const char *key, const char *value)
{
  g_string_append_printf (out, "%s\"%s\": ", indent, key);
  agc_json_append_string (out, value);
}

char *
agc_label_set_draft_to_json (const AgcLabelSetDraft *draft)
{
  GString *out = g_string_new ("{\n");
  append_member (out, "  ", "id", draft->id);
  g_string_append (out, ",\n");
  append_member (out, "  ", "title", draft->title);
  if (*draft->description)
    {
      g_string_append (out, ",\n");
      append_member (out, "  ", "description", draft->description);
    }
  if (*draft->source)
    {
      g_string_append (out, ",\n");
      append_member (out, "  ", "source", draft->source);
    }
  g_string_append (out, ",\n  \"templates\": ");
  agc_json_append_string_array (out, (const char *const *) draft->templates, -1);
  g_string_append (out, ",\n  \"classes\": [");
  for (guint i = 0; i < draft->classes->len; i++)
    {
      const AgcLabelClassDraft *c = &g_array_index (draft->classes, AgcLabelClassDraft, i);
      g_string_append (out, i ? ",\n    {" : "\n    {");
      append_member (out, "", "name", c->name);
      g_string_append (out, ", ");
      append_member (out, "", "display", c->display);
      if (c->text && *c->text)
        {
          g_string_append (out, ", ");
          append_member (out, "", "text", c->text);
        }
      if (c->prompts && c->prompts[0])
        {
          g_string_append (out, ", \"prompts\": ");
          agc_json_append_string_array (out, (const char *const *) c->prompts, -1);
        }
      if (!c->use_templates)
        g_string_append (out, ", \"use_templates\": false");
      if (c->domain && *c->domain)
        {
          g_string_append (out, ", ");
          append_member (out, "", "domain", c->domain);
        }
      if (c->attributes && c->attributes[0])
        {
          g_string_append (out, ", \"attributes\": ");
          agc_json_append_string_array (out, (const char *const *) c->attributes, -1);
        }
      g_string_append (out, "}");
    }
  g_string_append (out, draft->classes->len ? "\n  ]\n}\n" : "]\n}\n");
  return g_string_free (out, FALSE);
}

AgcLabelSet *
agc_label_set_draft_check (const AgcLabelSetDraft *draft, const char *file_name, GError **error)
{
  g_autofree char *dir = g_dir_make_tmp ("agriclip-labels-XXXXXX", error);
  if (!dir)
    return NULL;
  g_autofree char *path = g_build_filename (dir, file_name, NULL);
  g_autofree char *json = agc_label_set_draft_to_json (draft);
  AgcLabelSet *set = NULL;
  if (g_file_set_contents (path, json, -1, error))
    set = agc_label_set_load (path, error);
  g_unlink (path);
  g_rmdir (dir);
  // The loader names the temporary file by its full path: name it as the user will see it.
  if (error && *error && strstr ((*error)->message, path))
    {
      g_autofree char *display = g_filename_display_name (path);
      GString *message = g_string_new ((*error)->message);
      g_string_replace (message, display, file_name, 0);
      g_free ((*error)->message);
      (*error)->message = g_string_free (message, FALSE);
    }
  return set;
}
