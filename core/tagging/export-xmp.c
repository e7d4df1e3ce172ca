/* export-xmp.c — `--format xmp`: a sidecar IMAGE.xmp beside each original
 * (leaf.jpg.xmp, darktable's and digiKam's name), merged into the one that
 * is there.  The sidecar is read into a small tree (GMarkup), in which
 * earlier agriclip properties are removed, the most probable label is added
 * to dc:subject's bag, and a new rdf:Description with the agriclip
 * properties is appended to rdf:RDF; everything else (other properties,
 * comments, processing instructions, text) is written back as it was.
 * The rewrite is atomic.  DEST/sidecars.json lists the sidecars. */
#include "tagging/export.h"

#include "formats/safetensors-write.h"

#include <errno.h>
#include <string.h>

#define NS_AGRICLIP "http://ns.agriclip.org/tag/1.0/"
#define NS_DC "http://purl.org/dc/elements/1.1/"
#define NS_RDF "http://www.w3.org/1999/02/22-rdf-syntax-ns#"

/* A new sidecar is this, merged into like any other. */
static const char empty_sidecar[] =
  "<?xpacket begin=\"\xEF\xBB\xBF\" id=\"W5M0MpCehiHzreSzNTczkc9d\"?>\n"
  "<x:xmpmeta xmlns:x=\"adobe:ns:meta/\">\n"
  " <rdf:RDF xmlns:rdf=\"" NS_RDF "\">\n"
  " </rdf:RDF>\n"
  "</x:xmpmeta>\n"
  "<?xpacket end=\"w\"?>\n";

typedef struct Node Node;
struct Node
{
  char *name;       /* element name with its prefix; NULL for text and raw */
  GPtrArray *attrs; /* element: names and values, alternating */
  GPtrArray *children;
  char *text;       /* text (unescaped), or raw markup (comments, PIs, CDATA) */
  gboolean raw;
};

static void
node_free (gpointer data)
{
  Node *node = data;
  if (!node)
    return;
  g_free (node->name);
  if (node->attrs)
    g_ptr_array_unref (node->attrs);
  if (node->children)
    g_ptr_array_unref (node->children);
  g_free (node->text);
  g_free (node);
}

static Node *
element_new (const char *name)
{
  Node *node = g_new0 (Node, 1);
  node->name = g_strdup (name);
  node->attrs = g_ptr_array_new_with_free_func (g_free);
  node->children = g_ptr_array_new_with_free_func (node_free);
  return node;
}

static Node *
text_new (const char *text, gsize length, gboolean raw)
{
  Node *node = g_new0 (Node, 1);
  node->text = g_strndup (text, length);
  node->raw = raw;
  return node;
}

/* ---- reading: GMarkup into the tree ---- */

typedef struct
{
  GPtrArray *stack; /* Node *, the document (a nameless element) at the bottom */
} Reader;

static Node *
top (Reader *reader)
{
  return reader->stack->pdata[reader->stack->len - 1];
}

static void
on_start (GMarkupParseContext *context, const char *name, const char **attr_names,
          const char **attr_values, gpointer user_data, GError **error)
{
  (void) context, (void) error;
  Reader *reader = user_data;
  Node *node = element_new (name);
  for (int i = 0; attr_names[i]; i++)
    {
      g_ptr_array_add (node->attrs, g_strdup (attr_names[i]));
      g_ptr_array_add (node->attrs, g_strdup (attr_values[i]));
    }
  g_ptr_array_add (top (reader)->children, node);
  g_ptr_array_add (reader->stack, node);
}

static void
on_end (GMarkupParseContext *context, const char *name, gpointer user_data, GError **error)
{
  (void) context, (void) name, (void) error;
  Reader *reader = user_data;
  g_ptr_array_set_size (reader->stack, reader->stack->len - 1);
}

static void
on_text (GMarkupParseContext *context, const char *text, gsize length, gpointer user_data,
         GError **error)
{
  (void) context, (void) error;
  Reader *reader = user_data;
  g_ptr_array_add (top (reader)->children, text_new (text, length, FALSE));
}

static void
on_passthrough (GMarkupParseContext *context, const char *text, gsize length,
                gpointer user_data, GError **error)
{
  (void) context, (void) error;
  Reader *reader = user_data;
  g_ptr_array_add (top (reader)->children, text_new (text, length, TRUE));
}

static Node *
parse (const char *text, gsize length, GError **error)
{
  static const GMarkupParser parser = { on_start, on_end, on_text, on_passthrough, NULL };
  Node *document = element_new (NULL);
  Reader reader = { g_ptr_array_new () };
  g_ptr_array_add (reader.stack, document);
  GMarkupParseContext *context = g_markup_parse_context_new (&parser, 0, &reader, NULL);
  gboolean ok = g_markup_parse_context_parse (context, text, (gssize) length, error)
                && g_markup_parse_context_end_parse (context, error);
  g_markup_parse_context_free (context);
  g_ptr_array_unref (reader.stack);
  if (!ok)
    {
      node_free (document);
      return NULL;
    }
  return document;
}

/* ---- writing the tree back ---- */

static void
serialize (const Node *node, GString *out)
{
  if (!node->name && node->attrs == NULL)
    {
      if (node->raw)
        g_string_append (out, node->text);
      else
        {
          g_autofree char *escaped = g_markup_escape_text (node->text, -1);
          g_string_append (out, escaped);
        }
      return;
    }
  if (node->name)
    {
      g_string_append_printf (out, "<%s", node->name);
      for (guint i = 0; i + 1 < node->attrs->len; i += 2)
        {
          g_autofree char *value = g_markup_escape_text (node->attrs->pdata[i + 1], -1);
          g_string_append_printf (out, " %s=\"%s\"", (char *) node->attrs->pdata[i], value);
        }
      if (node->children->len == 0)
        {
          g_string_append (out, "/>");
          return;
        }
      g_string_append_c (out, '>');
    }
  for (guint i = 0; i < node->children->len; i++)
    {
      serialize (node->children->pdata[i], out);
      if (!node->name) // GMarkup keeps no text outside the root: lines between
        g_string_append_c (out, '\n');
    }
  if (node->name)
    g_string_append_printf (out, "</%s>", node->name);
}

/* ---- namespaces, as the document binds them ---- */

/* The prefix the document binds to uri anywhere (sidecars declare each
 * namespace once, usually on rdf:Description), or NULL. */
static const char *
find_prefix (const Node *node, const char *uri)
{
  if (!node->name && node->attrs == NULL)
    return NULL;
  for (guint i = 0; i + 1 < node->attrs->len; i += 2)
    if (g_str_has_prefix (node->attrs->pdata[i], "xmlns:")
        && g_str_equal (node->attrs->pdata[i + 1], uri))
      return (const char *) node->attrs->pdata[i] + strlen ("xmlns:");
  for (guint i = 0; i < node->children->len; i++)
    {
      const char *prefix = find_prefix (node->children->pdata[i], uri);
      if (prefix)
        return prefix;
    }
  return NULL;
}

static gboolean
has_name (const Node *node, const char *prefix, const char *local)
{
  if (!node->name || !prefix)
    return FALSE;
  gsize n = strlen (prefix);
  return strncmp (node->name, prefix, n) == 0 && node->name[n] == ':'
         && g_str_equal (node->name + n + 1, local);
}

static gboolean
in_namespace (const char *name, const char *prefix)
{
  gsize n = prefix ? strlen (prefix) : 0;
  return prefix && strncmp (name, prefix, n) == 0 && name[n] == ':';
}

static Node *
find_element (Node *node, const char *prefix, const char *local)
{
  if (has_name (node, prefix, local))
    return node;
  for (guint i = 0; node->children && i < node->children->len; i++)
    {
      Node *found = find_element (node->children->pdata[i], prefix, local);
      if (found)
        return found;
    }
  return NULL;
}

static char *
element_text (const Node *node)
{
  GString *text = g_string_new (NULL);
  for (guint i = 0; i < node->children->len; i++)
    {
      const Node *child = node->children->pdata[i];
      if (!child->name && !child->raw)
        g_string_append (text, child->text);
    }
  return g_string_free (text, FALSE);
}

/* ---- the merge ---- */

typedef struct
{
  char *rdf, *dc, *ours; /* the document's prefixes (ours: of NS_AGRICLIP), or NULL */
  char *added_before;          /* the keyword an earlier export added */
} Names;

static gboolean
is_blank (const Node *node)
{
  if (node->name || node->raw)
    return FALSE;
  for (const char *p = node->text; *p; p++)
    if (!g_ascii_isspace (*p))
      return FALSE;
  return TRUE;
}

/* Removes children[i] and the indentation before it. */
static void
remove_child (Node *parent, guint i)
{
  g_ptr_array_remove_index (parent->children, i);
  if (i > 0 && is_blank (parent->children->pdata[i - 1]))
    g_ptr_array_remove_index (parent->children, i - 1);
}

/* An rdf:Description left with no property (attributes other than
 * rdf:about and namespace declarations are properties). */
static gboolean
is_empty_description (const Node *description, const Names *names)
{
  for (guint i = 0; i < description->children->len; i++)
    if (((Node *) description->children->pdata[i])->name)
      return FALSE;
  g_autofree char *about = g_strconcat (names->rdf, ":about", NULL);
  for (guint i = 0; i + 1 < description->attrs->len; i += 2)
    {
      const char *name = description->attrs->pdata[i];
      if (!g_str_has_prefix (name, "xmlns:") && !g_str_equal (name, about))
        return FALSE;
    }
  return TRUE;
}

/* Takes earlier agriclip properties out of the rdf:Descriptions (element
 * and attribute forms), remembering the keyword that export added, and
 * the Descriptions they leave empty, so that exports do not pile up. */
static void
remove_ours (Node *rdf, Names *names)
{
  for (guint d = 0; d < rdf->children->len; d++)
    {
      Node *description = rdf->children->pdata[d];
      if (!has_name (description, names->rdf, "Description"))
        continue;
      gboolean had_ours = FALSE;
      for (guint i = 0; i + 1 < description->attrs->len;)
        if (in_namespace (description->attrs->pdata[i], names->ours))
          g_ptr_array_remove_range (description->attrs, i, 2), had_ours = TRUE;
        else
          i += 2;
      for (guint i = 0; i < description->children->len;)
        {
          Node *child = description->children->pdata[i];
          if (child->name && in_namespace (child->name, names->ours))
            {
              if (has_name (child, names->ours, "AddedKeyword"))
                {
                  g_free (names->added_before);
                  names->added_before = element_text (child);
                }
              gboolean indented = i > 0 && is_blank (description->children->pdata[i - 1]);
              remove_child (description, i);
              i -= indented;
              had_ours = TRUE;
            }
          else
            i++;
        }
      if (had_ours && is_empty_description (description, names))
        {
          gboolean indented = d > 0 && is_blank (rdf->children->pdata[d - 1]);
          remove_child (rdf, d);
          d -= 1 + indented;
        }
    }
}

static Node *
li_new (const char *rdf, const char *text)
{
  g_autofree char *name = g_strconcat (rdf, ":li", NULL);
  Node *li = element_new (name);
  g_ptr_array_add (li->children, text_new (text, strlen (text), FALSE));
  return li;
}

/* Adds keyword to the bag of dc:subject unless it is there, first taking
 * out the one an earlier export added.  FALSE when there is no dc:subject
 * bag; *added tells whether keyword was new. */
static gboolean
merge_keyword (Node *rdf, const Names *names, const char *keyword, gboolean *added)
{
  Node *subject = names->dc ? find_element (rdf, names->dc, "subject") : NULL;
  Node *bag = subject ? find_element (subject, names->rdf, "Bag") : NULL;
  *added = FALSE;
  if (!bag)
    return FALSE;
  gboolean present = FALSE;
  for (guint i = 0; i < bag->children->len;)
    {
      Node *li = bag->children->pdata[i];
      g_autofree char *text = has_name (li, names->rdf, "li") ? element_text (li) : NULL;
      if (text && names->added_before && g_str_equal (text, names->added_before)
          && !g_str_equal (text, keyword))
        {
          g_ptr_array_remove_index (bag->children, i);
          continue;
        }
      present |= text && g_str_equal (text, keyword);
      i++;
    }
  if (!present)
    {
      /* indented like the first item, before the bag's closing indentation */
      guint n = bag->children->len;
      Node *last = n ? bag->children->pdata[n - 1] : NULL;
      if (n >= 2 && is_blank (last) && is_blank (bag->children->pdata[0]))
        {
          const char *indent = ((Node *) bag->children->pdata[0])->text;
          g_ptr_array_insert (bag->children, (gint) n - 1,
                              text_new (indent, strlen (indent), FALSE));
          g_ptr_array_insert (bag->children, (gint) n, li_new (names->rdf, keyword));
        }
      else
        g_ptr_array_add (bag->children, li_new (names->rdf, keyword));
    }
  *added = !present || (names->added_before && g_str_equal (names->added_before, keyword));
  return TRUE;
}

static void
append_text_element (GString *out, const char *name, const char *text)
{
  g_autofree char *escaped = g_markup_escape_text (text, -1);
  g_string_append_printf (out, "   <%s>%s</%s>\n", name, escaped, name);
}

static void
append_list (GString *out, const char *ours, const char *rdf, const char *property,
             const char *kind, char **items, int n)
{
  g_string_append_printf (out, "   <%s:%s>\n    <%s:%s>\n", ours, property, rdf, kind);
  for (int i = 0; i < n; i++)
    {
      g_autofree char *escaped = g_markup_escape_text (items[i], -1);
      g_string_append_printf (out, "     <%s:li>%s</%s:li>\n", rdf, escaped, rdf);
    }
  g_string_append_printf (out, "    </%s:%s>\n   </%s:%s>\n", rdf, kind, ours, property);
}

/* The rdf:Description of this export, as markup. */
static char *
our_description (const AgcExport *export, const AgcTagResult *r, const Names *names,
                 const char *about, gboolean with_subject, gboolean added)
{
  const char *ours = names->ours ? names->ours : "agriclip";
  const char *dc = names->dc ? names->dc : "dc";
  g_autofree char *about_escaped = g_markup_escape_text (about, -1);
  GString *out = g_string_new (NULL);
  g_string_append_printf (out, " <%s:Description %s:about=\"%s\"", names->rdf, names->rdf,
                          about_escaped);
  /* declared again here: the earlier declaration may have gone with the
   * Description of an earlier export */
  g_string_append_printf (out, " xmlns:%s=\"" NS_AGRICLIP "\"", ours);
  if (with_subject)
    g_string_append_printf (out, " xmlns:%s=\"" NS_DC "\"", dc);
  g_string_append (out, ">\n");
  if (with_subject)
    {
      g_autofree char *keyword = g_markup_escape_text (r->labels[0].label, -1);
      g_string_append_printf (out, "   <%s:subject>\n    <%s:Bag>\n     <%s:li>%s</%s:li>\n"
                                   "    </%s:Bag>\n   </%s:subject>\n",
                              dc, names->rdf, names->rdf, keyword, names->rdf, names->rdf, dc);
    }
  g_autofree char *model = g_strconcat (ours, ":Model", NULL);
  append_text_element (out, model, export->run->model_identity);
  g_autofree char *review = g_strconcat (ours, ":Review", NULL);
  append_text_element (out, review, r->review ? "True" : "False");
  g_auto (GStrv) labels = g_new0 (char *, r->n_labels + 1);
  g_auto (GStrv) probabilities = g_new0 (char *, r->n_labels + 1);
  for (int k = 0; k < r->n_labels; k++)
    {
      labels[k] = g_strdup (r->labels[k].label);
      g_autoptr (GString) p = g_string_new (NULL);
      agc_export_append_number (p, "%.6f", r->labels[k].p);
      probabilities[k] = g_strdup (p->str);
    }
  append_list (out, ours, names->rdf, "Labels", "Seq", labels, r->n_labels);
  append_list (out, ours, names->rdf, "Probabilities", "Seq", probabilities, r->n_labels);
  if (added)
    {
      g_autofree char *added_name = g_strconcat (ours, ":AddedKeyword", NULL);
      append_text_element (out, added_name, r->labels[0].label);
    }
  g_string_append (out, "  </");
  g_string_append (out, names->rdf);
  g_string_append (out, ":Description>\n ");
  return g_string_free (out, FALSE);
}

static const char *
first_about (const Node *rdf, const char *rdf_prefix)
{
  g_autofree char *about = g_strconcat (rdf_prefix, ":about", NULL);
  for (guint d = 0; d < rdf->children->len; d++)
    {
      const Node *description = rdf->children->pdata[d];
      if (!has_name (description, rdf_prefix, "Description"))
        continue;
      for (guint i = 0; i + 1 < description->attrs->len; i += 2)
        if (g_str_equal (description->attrs->pdata[i], about))
          return description->attrs->pdata[i + 1];
    }
  return "";
}

/* The sidecar text with this export merged into it; NULL (error set) when
 * text is not XMP this can merge into. */
static char *
merge (const AgcExport *export, const AgcTagResult *r, const char *text, gsize length,
       GError **error)
{
  Node *document = parse (text, length, error);
  if (!document)
    return NULL;
  Names names = {
    .rdf = g_strdup (find_prefix (document, NS_RDF)),
    .dc = g_strdup (find_prefix (document, NS_DC)),
    .ours = g_strdup (find_prefix (document, NS_AGRICLIP)),
  };
  Node *rdf = names.rdf ? find_element (document, names.rdf, "RDF") : NULL;
  if (!rdf)
    {
      node_free (document);
      g_free (names.rdf), g_free (names.dc), g_free (names.ours);
      g_set_error_literal (error, AGC_ERROR, AGC_ERROR_FORMAT, "no rdf:RDF element");
      return NULL;
    }
  remove_ours (rdf, &names);
  gboolean added;
  gboolean has_subject = merge_keyword (rdf, &names, r->labels[0].label, &added);
  char *description = our_description (export, r, &names, first_about (rdf, names.rdf),
                                       !has_subject, !has_subject || added);
  Node *raw = text_new (description, strlen (description), TRUE);
  g_free (description);
  g_ptr_array_add (rdf->children, raw);
  GString *out = g_string_new (NULL);
  serialize (document, out);
  node_free (document);
  g_free (names.added_before);
  g_free (names.rdf), g_free (names.dc), g_free (names.ours);
  return g_string_free (out, FALSE);
}

/* Writes or merges the sidecar of result i; FALSE when it was reported and
 * left as it was. */
static gboolean
write_sidecar (AgcExport *export, guint i, const char *sidecar)
{
  const AgcTagResult *r = export->results->pdata[i];
  g_autofree char *shown = agc_export_display (sidecar);
  if (!g_file_test (export->originals[i], G_FILE_TEST_EXISTS))
    {
      g_autofree char *image = agc_export_display (export->originals[i]);
      agc_export_problem (export, AGC_ERROR_IO, "%s: no such image (no sidecar written)", image);
      return FALSE;
    }
  g_autofree char *existing = NULL;
  gsize length = 0;
  GError *local = NULL;
  if (!g_file_get_contents (sidecar, &existing, &length, &local))
    {
      if (!g_error_matches (local, G_FILE_ERROR, G_FILE_ERROR_NOENT))
        {
          agc_export_problem (export, AGC_ERROR_IO, "%s: %s (left unchanged)", shown,
                              local->message);
          g_error_free (local);
          return FALSE;
        }
      g_clear_error (&local);
    }
  const char *text = existing ? existing : empty_sidecar;
  g_autofree char *merged = merge (export, r, text, existing ? length : strlen (text), &local);
  if (!merged || !agc_write_file_atomic (sidecar, merged, strlen (merged), TRUE, &local))
    {
      agc_export_problem (export, local->domain == AGC_ERROR ? local->code : AGC_ERROR_FORMAT,
                          "%s: %s (left unchanged)", shown, local->message);
      g_error_free (local);
      return FALSE;
    }
  return TRUE;
}

gboolean
agc_export_xmp (AgcExport *export, GError **error)
{
  g_autoptr (GString) list = g_string_new ("[");
  int n_written = 0;
  for (guint i = 0; i < export->results->len; i++)
    {
      g_autofree char *sidecar = g_strconcat (export->originals[i], ".xmp", NULL);
      if (!write_sidecar (export, i, sidecar))
        continue;
      g_string_append (list, n_written++ ? ",\n " : "\n ");
      agc_export_append_json (list, sidecar);
    }
  g_string_append (list, "\n]\n");
  return agc_export_write (export, "sidecars.json", list, error);
}
