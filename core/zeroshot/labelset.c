/* labelset.c — label sets: classes with an export name, a display name and
 * the prompts that describe them, read from the JSON files documented in
 * models/labels/README.md or built from bare names.
 *
 * Validation is strict because a label file is data that people edit by
 * hand: a typo in a key or a template without its {} would otherwise give
 * silently wrong classifications.  Every message starts with the file name
 * and says which class (index and export name) and which field is wrong. */
#include "agriclip.h"
#include "support/error.h"
#include "support/json-file.h"

#include <json-glib/json-glib.h>
#include <stdarg.h>
#include <string.h>

#define DEFAULT_TEMPLATE "a photo of a {}."

/* Every string lives in the set's string chunk: a class owns only its arrays. */
typedef struct
{
  char *name;     /* export name: stable, written to files */
  char *display;  /* shown to people */
  char **prompts; /* NULL-terminated, templates filled with the class text, then its own prompts */
  /* As the file wrote them, for editors: */
  char *text;          /* NULL when the file has none (the display name fills the templates) */
  char **own_prompts;  /* NULL-terminated, the class's "prompts" */
  gboolean use_templates;
  /* For captions (agc_captions_write): */
  char *domain;        /* "crop", "livestock", "fish", or "" (the class's, else the set's) */
  char **attributes;   /* NULL-terminated, the class's "attributes" */
} LabelClass;

struct AgcLabelSet
{
  GStringChunk *strings; /* every string of the set and its classes: immutable once loaded */
  char *id;
  char *title;
  char *description;
  char *source;     /* "" when the file has none */
  char **templates; /* NULL-terminated, with their {} */
  int n_classes;
  LabelClass *classes; /* [n_classes] */
};

/* Where a problem is, for messages: the file, and the class if any. */
typedef struct
{
  const char *file;       /* display name of the file, or "labels" for bare names */
  const char *list;       /* "classes" in files, "names" for bare names */
  int class_index;        /* -1 outside the class list */
  const char *class_name; /* NULL while the name is not known yet */
  AgcErrorCode code;
} Where;

/* Sets the error and returns FALSE, so that checks can end in `return fail (…)`. */
G_GNUC_PRINTF (3, 4) static gboolean
fail (GError **error, const Where *where, const char *format, ...)
{
  g_autofree char *place
    = where->class_index < 0 ? g_strdup (where->file)
      : where->class_name != NULL
        ? g_strdup_printf ("%s: %s[%d] \"%s\"", where->file, where->list, where->class_index,
                           where->class_name)
        : g_strdup_printf ("%s: %s[%d]", where->file, where->list, where->class_index);
  va_list args;
  va_start (args, format);
  agc_fail_at_valist (error, where->code, place, format, args);
  va_end (args);
  return FALSE;
}

static void
label_class_clear (LabelClass *c)
{
  g_free (c->prompts);
  g_free (c->own_prompts);
  g_free (c->attributes);
}

void
agc_label_set_free (AgcLabelSet *set)
{
  if (set == NULL)
    return;
  for (int i = 0; i < set->n_classes; i++)
    label_class_clear (&set->classes[i]);
  g_free (set->classes);
  g_free (set->templates);
  g_string_chunk_free (set->strings);
  g_free (set);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC (AgcLabelSet, agc_label_set_free)

/* A set with its string chunk and no class yet. */
static AgcLabelSet *
label_set_new (void)
{
  AgcLabelSet *set = g_new0 (AgcLabelSet, 1);
  set->strings = g_string_chunk_new (1024);
  return set;
}

/* s in the set's string chunk (NULL stays NULL). */
static char *
keep (AgcLabelSet *set, const char *s)
{
  return s != NULL ? g_string_chunk_insert_const (set->strings, s) : NULL;
}

/* A NULL-terminated copy of strings[n] whose elements live in the set's chunk. */
static char **
keep_all (AgcLabelSet *set, const char *const *strings, guint n)
{
  char **kept = g_new0 (char *, n + 1);
  for (guint i = 0; i < n; i++)
    kept[i] = keep (set, strings[i]);
  return kept;
}

/* ---- checks shared by files and bare names ----------------------------- */

static int
count_placeholders (const char *s)
{
  int n = 0;
  for (const char *p = strstr (s, "{}"); p != NULL; p = strstr (p + 2, "{}"))
    n++;
  return n;
}

static gboolean
is_blank (const char *s)
{
  for (; *s != '\0'; s = g_utf8_next_char (s))
    if (!g_unichar_isspace (g_utf8_get_char (s)))
      return FALSE;
  return TRUE;
}

/* Export names end up in CSV files, JSON lines and layer names: no control
 * characters, no invisible whitespace at either end. */
static gboolean
check_export_name (const char *name, const Where *where, GError **error)
{
  if (!g_utf8_validate (name, -1, NULL))
    return fail (error, where, "the name is not valid UTF-8");
  if (name[0] == '\0')
    return fail (error, where, "the name is empty");
  for (const char *p = name; *p != '\0'; p++)
    if ((guchar) *p < 0x20 || *p == 0x7f)
      return fail (error, where, "the name contains a control character");
  gunichar first = g_utf8_get_char (name);
  gunichar last = g_utf8_get_char (g_utf8_find_prev_char (name, name + strlen (name)));
  if (g_unichar_isspace (first) || g_unichar_isspace (last))
    return fail (error, where, "the name starts or ends with whitespace");
  return TRUE;
}

static gboolean
check_template (const char *template, int index, const Where *where, GError **error)
{
  if (!g_utf8_validate (template, -1, NULL))
    return fail (error, where, "templates[%d] is not valid UTF-8", index);
  int n = count_placeholders (template);
  if (n != 1)
    return fail (error, where, "templates[%d] \"%s\" must contain exactly one {} (found %d)",
                 index, template, n);
  return TRUE;
}

/* Every template with {} replaced by text, then the extra prompts (in the set's chunk). */
static char **
build_prompts (AgcLabelSet *set, const char *const *templates, int n_templates, const char *text,
               const char *const *extra, int n_extra)
{
  char **prompts = g_new0 (char *, n_templates + n_extra + 1);
  for (int t = 0; t < n_templates; t++)
    {
      const char *at = strstr (templates[t], "{}");
      g_autofree char *prompt = g_strdup_printf ("%.*s%s%s", (int) (at - templates[t]),
                                                 templates[t], text, at + 2);
      prompts[t] = keep (set, prompt);
    }
  for (int e = 0; e < n_extra; e++)
    prompts[n_templates + e] = keep (set, extra[e]);
  return prompts;
}

/* ---- bare names ----------------------------------------------------------- */

AgcLabelSet *
agc_label_set_new_from_names (const char *const *names, int n_names,
                              const char *const *templates, int n_templates, GError **error)
{
  g_return_val_if_fail (names != NULL || n_names == 0, NULL);
  g_return_val_if_fail (templates != NULL || n_templates == 0, NULL);
  static const char *const default_templates[] = { DEFAULT_TEMPLATE };
  if (templates == NULL || n_templates <= 0)
    {
      templates = default_templates;
      n_templates = 1;
    }

  Where where = { "labels", "names", -1, NULL, AGC_ERROR_INPUT };
  if (n_names <= 0)
    {
      fail (error, &where, "no class names given");
      return NULL;
    }
  for (int t = 0; t < n_templates; t++)
    if (!check_template (templates[t], t, &where, error))
      return NULL;

  g_autoptr (AgcLabelSet) set = label_set_new ();
  set->id = keep (set, "custom");
  set->title = keep (set, "Custom labels");
  set->description = keep (set, "");
  set->source = keep (set, "");
  set->templates = keep_all (set, templates, (guint) n_templates);
  set->classes = g_new0 (LabelClass, n_names);
  g_autoptr (GHashTable) seen = g_hash_table_new (g_str_hash, g_str_equal);
  for (int i = 0; i < n_names; i++)
    {
      where.class_index = i;
      where.class_name = NULL;
      if (!check_export_name (names[i], &where, error))
        return NULL;
      where.class_name = names[i];
      if (!g_hash_table_add (seen, (gpointer) names[i]))
        return fail (error, &where, "duplicate name"), NULL;
      LabelClass *c = &set->classes[i];
      c->name = keep (set, names[i]);
      c->display = c->name;
      c->prompts = build_prompts (set, templates, n_templates, names[i], NULL, 0);
      c->own_prompts = g_new0 (char *, 1);
      c->use_templates = TRUE;
      c->domain = keep (set, "");
      c->attributes = g_new0 (char *, 1);
      set->n_classes = i + 1;
    }
  return g_steal_pointer (&set);
}

/* ---- JSON files ----------------------------------------------------------- */

static const char *
node_kind (JsonNode *node)
{
  switch (JSON_NODE_TYPE (node))
    {
    case JSON_NODE_OBJECT:
      return "an object";
    case JSON_NODE_ARRAY:
      return "an array";
    case JSON_NODE_NULL:
      return "null";
    case JSON_NODE_VALUE:
      break;
    }
  GType type = json_node_get_value_type (node);
  if (type == G_TYPE_STRING)
    return "a string";
  if (type == G_TYPE_BOOLEAN)
    return "a boolean";
  return "a number";
}

static gboolean
holds_string (JsonNode *node)
{
  return JSON_NODE_HOLDS_VALUE (node) && json_node_get_value_type (node) == G_TYPE_STRING;
}

/* A typo in a key would otherwise be ignored silently; keys starting with
 * "_" are free for comments. */
static gboolean
check_keys (JsonObject *object, const char *const *allowed, const Where *where, GError **error)
{
  GList *keys = json_object_get_members (object);
  for (GList *k = keys; k != NULL; k = k->next)
    {
      const char *key = k->data;
      if (key[0] == '_' || g_strv_contains (allowed, key))
        continue;
      char *expected = g_strjoinv (", ", (char **) allowed);
      fail (error, where, "unknown field \"%s\" (expected %s)", key, expected);
      g_free (expected);
      g_list_free (keys);
      return FALSE;
    }
  g_list_free (keys);
  return TRUE;
}

/* *out = the string member, or NULL when it is absent and optional.  Names
 * and prompts must say something: blank strings are refused unless
 * may_be_blank. */
static gboolean
get_string (const char **out, JsonObject *object, const char *key, gboolean required,
            gboolean may_be_blank, const Where *where, GError **error)
{
  *out = NULL;
  JsonNode *node = json_object_get_member (object, key);
  if (node == NULL)
    {
      if (required)
        return fail (error, where, "missing field \"%s\"", key);
      return TRUE;
    }
  if (!holds_string (node))
    return fail (error, where, "field \"%s\" must be a string, not %s", key, node_kind (node)),
           FALSE;
  const char *s = json_node_get_string (node);
  if (!may_be_blank && is_blank (s))
    return fail (error, where, "field \"%s\" is empty", key);
  *out = s;
  return TRUE;
}

/* strings receives the elements (owned by the JSON tree). */
static gboolean
get_string_array (GPtrArray *strings, JsonObject *object, const char *key, gboolean required,
                  const Where *where, GError **error)
{
  JsonNode *node = json_object_get_member (object, key);
  if (node == NULL)
    {
      if (required)
        return fail (error, where, "missing field \"%s\"", key);
      return TRUE;
    }
  if (!JSON_NODE_HOLDS_ARRAY (node))
    return fail (error, where, "field \"%s\" must be an array of strings, not %s", key,
                 node_kind (node));
  JsonArray *array = json_node_get_array (node);
  for (guint i = 0; i < json_array_get_length (array); i++)
    {
      JsonNode *element = json_array_get_element (array, i);
      if (!holds_string (element))
        return fail (error, where, "%s[%u] must be a string, not %s", key, i,
                     node_kind (element));
      const char *s = json_node_get_string (element);
      if (is_blank (s))
        return fail (error, where, "%s[%u] is empty", key, i);
      g_ptr_array_add (strings, (gpointer) s);
    }
  return TRUE;
}

static gboolean
check_id (const char *id, const Where *where, GError **error)
{
  for (const char *p = id; *p != '\0'; p++)
    if (!g_ascii_isalnum (*p) && *p != '-' && *p != '_' && *p != '.')
      return fail (error, where,
                   "field \"id\" \"%s\" may only contain ASCII letters, digits, '-', '_' and '.'",
                   id);
  return TRUE;
}

/* The domains captions know (agc_captions_write); *out the member or
 * NULL when absent. */
static gboolean
get_domain (const char **out, JsonObject *object, const Where *where, GError **error)
{
  static const char *const domains[] = { "crop", "livestock", "fish", NULL };
  if (!get_string (out, object, "domain", FALSE, FALSE, where, error))
    return FALSE;
  if (*out != NULL && !g_strv_contains (domains, *out))
    return fail (error, where, "field \"domain\" \"%s\" is not one of crop, livestock, fish",
                 *out);
  return TRUE;
}

static gboolean
parse_class (AgcLabelSet *set, LabelClass *c, JsonNode *node, const GPtrArray *templates,
             const char *set_domain, GHashTable *seen, Where *where, GError **error)
{
  static const char *const keys[] = { "name",       "display", "text",       "prompts",
                                      "use_templates", "domain", "attributes", NULL };
  if (!JSON_NODE_HOLDS_OBJECT (node))
    return fail (error, where, "must be an object, not %s", node_kind (node));
  JsonObject *object = json_node_get_object (node);

  const char *name, *display, *text;
  if (!get_string (&name, object, "name", TRUE, FALSE, where, error)
      || !check_export_name (name, where, error))
    return FALSE;
  where->class_name = name;
  if (!g_hash_table_add (seen, (gpointer) name))
    return fail (error, where, "duplicate name (export names must be unique)");
  if (!check_keys (object, keys, where, error)
      || !get_string (&display, object, "display", TRUE, FALSE, where, error)
      || !get_string (&text, object, "text", FALSE, FALSE, where, error))
    return FALSE;

  gboolean use_templates = TRUE;
  JsonNode *use = json_object_get_member (object, "use_templates");
  if (use != NULL)
    {
      if (!JSON_NODE_HOLDS_VALUE (use) || json_node_get_value_type (use) != G_TYPE_BOOLEAN)
        return fail (error, where, "field \"use_templates\" must be true or false, not %s",
                     node_kind (use));
      use_templates = json_node_get_boolean (use);
    }

  const char *domain;
  g_autoptr (GPtrArray) attributes = g_ptr_array_new ();
  if (!get_domain (&domain, object, where, error)
      || !get_string_array (attributes, object, "attributes", FALSE, where, error))
    return FALSE;

  g_autoptr (GPtrArray) extra = g_ptr_array_new ();
  if (!get_string_array (extra, object, "prompts", FALSE, where, error))
    return FALSE;
  for (guint i = 0; i < extra->len; i++)
    if (count_placeholders (extra->pdata[i]) > 0)
      return fail (error, where,
                   "prompts[%u] contains {}: prompts are complete sentences, "
                   "placeholders belong in \"templates\"", i);

  int n_templates = use_templates ? (int) templates->len : 0;
  if (n_templates + extra->len == 0)
    return fail (error, where, "has no prompts: %s", use_templates
                 ? "the file has no templates and the class no \"prompts\""
                 : "\"use_templates\" is false and the class has no \"prompts\"");

  c->name = keep (set, name);
  c->display = keep (set, display);
  c->prompts = build_prompts (set, (const char *const *) templates->pdata, n_templates,
                              text != NULL ? text : display,
                              (const char *const *) extra->pdata, (int) extra->len);
  c->text = keep (set, text);
  c->own_prompts = keep_all (set, (const char *const *) extra->pdata, extra->len);
  c->use_templates = use_templates;
  c->domain = keep (set, domain != NULL ? domain : set_domain != NULL ? set_domain : "");
  c->attributes = keep_all (set, (const char *const *) attributes->pdata, attributes->len);
  return TRUE;
}

static AgcLabelSet *
parse_label_set (JsonNode *root, Where *where, GError **error)
{
  static const char *const keys[] = { "id",        "title",   "description", "source",
                                      "templates", "classes", "domain",      NULL };
  if (root == NULL)
    {
      fail (error, where, "the file is empty (expected a JSON object)");
      return NULL;
    }
  if (!JSON_NODE_HOLDS_OBJECT (root))
    {
      fail (error, where, "the top level must be a JSON object, not %s", node_kind (root));
      return NULL;
    }
  JsonObject *object = json_node_get_object (root);

  const char *id, *title, *description, *source, *domain;
  g_autoptr (GPtrArray) templates = g_ptr_array_new ();
  if (!check_keys (object, keys, where, error)
      || !get_domain (&domain, object, where, error)
      || !get_string (&id, object, "id", TRUE, FALSE, where, error)
      || !check_id (id, where, error)
      || !get_string (&title, object, "title", TRUE, FALSE, where, error)
      || !get_string (&description, object, "description", FALSE, TRUE, where, error)
      || !get_string (&source, object, "source", FALSE, TRUE, where, error)
      || !get_string_array (templates, object, "templates", TRUE, where, error))
    return NULL;
  for (guint t = 0; t < templates->len; t++)
    if (!check_template (templates->pdata[t], (int) t, where, error))
      return NULL;

  JsonNode *classes = json_object_get_member (object, "classes");
  if (classes == NULL)
    {
      fail (error, where, "missing field \"classes\"");
      return NULL;
    }
  if (!JSON_NODE_HOLDS_ARRAY (classes))
    {
      fail (error, where, "field \"classes\" must be an array, not %s", node_kind (classes));
      return NULL;
    }
  JsonArray *array = json_node_get_array (classes);
  int n_classes = (int) json_array_get_length (array);
  if (n_classes == 0)
    {
      fail (error, where, "the class list is empty");
      return NULL;
    }

  g_autoptr (AgcLabelSet) set = label_set_new ();
  set->id = keep (set, id);
  set->title = keep (set, title);
  set->description = keep (set, description != NULL ? description : "");
  set->source = keep (set, source != NULL ? source : "");
  set->templates = keep_all (set, (const char *const *) templates->pdata, templates->len);
  set->classes = g_new0 (LabelClass, n_classes);
  g_autoptr (GHashTable) seen = g_hash_table_new (g_str_hash, g_str_equal);
  for (int i = 0; i < n_classes; i++)
    {
      where->class_index = i;
      where->class_name = NULL;
      set->n_classes = i + 1; /* so that a half-filled class is freed too */
      if (!parse_class (set, &set->classes[i], json_array_get_element (array, i), templates,
                        domain, seen, where, error))
        return NULL;
    }
  return g_steal_pointer (&set);
}

AgcLabelSet *
agc_label_set_load (const char *path, GError **error)
{
  g_return_val_if_fail (path != NULL, NULL);
  g_autofree char *file = g_filename_display_name (path);
  Where where = { file, "classes", -1, NULL, AGC_ERROR_FORMAT };

  g_autoptr (JsonParser) parser = json_parser_new ();
  if (!agc_json_parse_file (parser, path, file, error))
    return NULL;
  return parse_label_set (json_parser_get_root (parser), &where, error);
}

/* ---- accessors ------------------------------------------------------------ */

/* set, or after a critical (as for any bad argument) an empty set: its
 * fields NULL, 0 and FALSE are what the accessors then return. */
static const AgcLabelSet *
checked (const AgcLabelSet *set)
{
  static const AgcLabelSet none;
  g_return_val_if_fail (set != NULL, &none);
  return set;
}

/* The class at class_index, or after a critical an empty class, as checked. */
static const LabelClass *
class_at (const AgcLabelSet *set, int class_index)
{
  static const LabelClass none;
  g_return_val_if_fail (set != NULL, &none);
  g_return_val_if_fail (class_index >= 0 && class_index < set->n_classes, &none);
  return &set->classes[class_index];
}

const char *
agc_label_set_id (const AgcLabelSet *set)
{
  return checked (set)->id;
}

const char *
agc_label_set_title (const AgcLabelSet *set)
{
  return checked (set)->title;
}

const char *
agc_label_set_description (const AgcLabelSet *set)
{
  return checked (set)->description;
}

int
agc_label_set_n_classes (const AgcLabelSet *set)
{
  return checked (set)->n_classes;
}

const char *
agc_label_set_class_name (const AgcLabelSet *set, int class_index)
{
  return class_at (set, class_index)->name;
}

const char *
agc_label_set_class_display_name (const AgcLabelSet *set, int class_index)
{
  return class_at (set, class_index)->display;
}

const char *const *
agc_label_set_class_prompts (const AgcLabelSet *set, int class_index)
{
  return (const char *const *) class_at (set, class_index)->prompts;
}

/* ---- the fields as written, for editors ----------------------------------- */

const char *
agc_label_set_source (const AgcLabelSet *set)
{
  return checked (set)->source;
}

const char *const *
agc_label_set_templates (const AgcLabelSet *set)
{
  return (const char *const *) checked (set)->templates;
}

const char *
agc_label_set_class_text (const AgcLabelSet *set, int class_index)
{
  return class_at (set, class_index)->text;
}

const char *const *
agc_label_set_class_own_prompts (const AgcLabelSet *set, int class_index)
{
  return (const char *const *) class_at (set, class_index)->own_prompts;
}

gboolean
agc_label_set_class_uses_templates (const AgcLabelSet *set, int class_index)
{
  return class_at (set, class_index)->use_templates;
}

const char *
agc_label_set_class_domain (const AgcLabelSet *set, int class_index)
{
  return class_at (set, class_index)->domain;
}

const char *const *
agc_label_set_class_attributes (const AgcLabelSet *set, int class_index)
{
  return (const char *const *) class_at (set, class_index)->attributes;
}
