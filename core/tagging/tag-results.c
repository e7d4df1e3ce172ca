/* tag-results.c — the files of a tagging run: run.json and the lines of
 * results.jsonl (formats in agriclip.h, "tagging runs"), written and read
 * in this one place. */
#include "tagging/tag-results.h"

#include "support/error.h"
#include "support/json-file.h"

#include <math.h>
#include <string.h>

/* ---- writing ------------------------------------------------------------ */

/* A file-system name: as it is when UTF-8, else its display form plus the
 * exact bytes (see agriclip.h). */
static void
append_path_member (GString *out, const char *key, const char *path)
{
  g_string_append_printf (out, "\"%s\": ", key);
  if (g_utf8_validate (path, -1, NULL))
    {
      agc_json_append_string (out, path);
      return;
    }
  g_autofree char *shown = g_utf8_make_valid (path, -1);
  g_autofree char *bytes = g_base64_encode ((const guchar *) path, strlen (path));
  agc_json_append_string (out, shown);
  g_string_append_printf (out, ", \"%s_base64\": \"%s\"", key, bytes);
}

/* classify's 6 decimals; JSON has no NaN (only a broken model makes one) */
static void
append_probability (GString *out, float p)
{
  if (isfinite (p))
    g_string_append_printf (out, "%.6f", p);
  else
    g_string_append (out, "null");
}

char *
agc_tag_result_to_json (const AgcTagResult *r)
{
  GString *out = g_string_new ("{");
  append_path_member (out, "image", r->image);
  g_string_append_printf (out, ", \"source\": %d, \"width\": %d, \"height\": %d, \"labels\": [",
                          r->source, r->width, r->height);
  for (int k = 0; k < r->n_labels; k++)
    {
      g_string_append (out, k ? ", {\"label\": " : "{\"label\": ");
      agc_json_append_string (out, r->labels[k].label);
      g_string_append (out, ", \"p\": ");
      append_probability (out, r->labels[k].p);
      g_string_append_c (out, '}');
    }
  g_string_append_printf (out, "], \"review\": %s", r->review ? "true" : "false");
  if (r->has_boxes)
    {
      g_string_append (out, ", \"boxes\": [");
      for (int b = 0; b < r->n_boxes; b++)
        {
          const AgcTagBox *box = &r->boxes[b];
          g_string_append_printf (out, "%s{\"x\": %d, \"y\": %d, \"width\": %d, \"height\": %d, "
                                  "\"label\": ", b ? ", " : "", box->x, box->y, box->width,
                                  box->height);
          agc_json_append_string (out, box->label);
          g_string_append (out, ", \"p\": ");
          append_probability (out, box->p);
          g_string_append_c (out, '}');
        }
      g_string_append_c (out, ']');
    }
  g_string_append_c (out, '}');
  return g_string_free (out, FALSE);
}

/* paths in their display form (the exact bytes go beside, in base64) */
// display forms of file-system names (invalid bytes as U+FFFD; the exact
// bytes go to a *_base64 member beside)
static void
append_path_array (GString *out, char *const *paths, int n)
{
  g_auto (GStrv) shown = g_new0 (char *, n + 1);
  for (int i = 0; i < n; i++)
    shown[i] = g_utf8_make_valid (paths[i], -1);
  agc_json_append_string_array (out, (const char *const *) shown, n);
}

char *
agc_tag_run_to_json (const AgcTagRun *run)
{
  GString *out = g_string_new ("{\n  \"format\": \"agriclip-tag-run\",\n  \"version\": 1,\n");
  g_string_append (out, "  ");
  append_path_member (out, "model", run->model);
  g_string_append (out, ",\n  \"model_identity\": ");
  agc_json_append_string (out, run->model_identity);
  if (run->classes_sha256)
    g_string_append_printf (out, ",\n  \"classes_sha256\": \"%s\"", run->classes_sha256);
  g_string_append (out, ",\n  \"labels\": [");
  for (int c = 0; c < run->n_classes; c++)
    {
      g_string_append (out, c ? ",\n    {\"label\": " : "\n    {\"label\": ");
      agc_json_append_string (out, run->labels[c]);
      g_string_append (out, ", \"display\": ");
      agc_json_append_string (out, run->displays[c]);
      g_string_append_c (out, '}');
    }
  g_string_append (out, "\n  ],\n  ");
  append_path_member (out, "label_set", run->label_set);
  g_string_append_printf (out, ",\n  \"settings\": {\"top\": %d, \"review_below\": ", run->top);
  if (run->review_below >= 0)
    {
      /* the shortest text that reads back as the same double */
      char text[32];
      g_snprintf (text, sizeof text, "%.15g", run->review_below);
      if (g_ascii_strtod (text, NULL) != run->review_below)
        g_snprintf (text, sizeof text, "%.17g", run->review_below);
      g_string_append (out, text);
    }
  else
    g_string_append (out, "null");
  g_string_append_printf (out, ", \"decode\": \"%s\"", run->fast_decode ? "fast" : "exact");
  g_string_append_printf (out, ", \"precision\": \"%s\"", run->int8 ? "int8" : "float32");
  if (run->tile > 0)
    g_string_append_printf (out, ", \"regions\": {\"tile\": %d, \"stride\": %d}}", run->tile,
                            run->stride);
  else
    g_string_append (out, ", \"regions\": null}");
  g_string_append (out, ",\n  \"sources\": ");
  append_path_array (out, run->sources, run->n_sources);
  for (int i = 0; i < run->n_sources; i++)
    if (!g_utf8_validate (run->sources[i], -1, NULL))
      {
        /* the exact bytes of every source, when one is not UTF-8 */
        g_auto (GStrv) bytes = g_new0 (char *, run->n_sources + 1);
        for (int j = 0; j < run->n_sources; j++)
          bytes[j] = g_base64_encode ((const guchar *) run->sources[j], strlen (run->sources[j]));
        g_string_append (out, ",\n  \"sources_base64\": ");
        agc_json_append_string_array (out, (const char *const *) bytes, run->n_sources);
        break;
      }
  if (run->shard_count > 0)
    g_string_append_printf (out, ",\n  \"shard\": {\"index\": %d, \"count\": %d}\n}\n",
                            run->shard_index, run->shard_count);
  else
    g_string_append (out, ",\n  \"shard\": null\n}\n");
  return g_string_free (out, FALSE);
}

/* ---- reading ------------------------------------------------------------ */

static gboolean
bad (GError **error, const char *where, const char *what)
{
  return agc_fail_at (error, AGC_ERROR_FORMAT, where, "%s", what);
}

static const char *
member_string (JsonObject *o, const char *key)
{
  JsonNode *n = json_object_get_member (o, key);
  if (!n || !JSON_NODE_HOLDS_VALUE (n) || json_node_get_value_type (n) != G_TYPE_STRING)
    return NULL;
  return json_node_get_string (n);
}

static gboolean
member_int (JsonObject *o, const char *key, int *out)
{
  JsonNode *n = json_object_get_member (o, key);
  if (!n || !JSON_NODE_HOLDS_VALUE (n) || json_node_get_value_type (n) != G_TYPE_INT64)
    return FALSE;
  gint64 v = json_node_get_int (n);
  if (v < G_MININT || v > G_MAXINT)
    return FALSE;
  *out = (int) v;
  return TRUE;
}

static gboolean
member_number (JsonObject *o, const char *key, double *out)
{
  JsonNode *n = json_object_get_member (o, key);
  if (!n || !JSON_NODE_HOLDS_VALUE (n))
    return FALSE;
  GType t = json_node_get_value_type (n);
  if (t != G_TYPE_INT64 && t != G_TYPE_DOUBLE)
    return FALSE;
  *out = json_node_get_double (n);
  return TRUE;
}

/* key's path: key_base64's bytes when present, else key's string (g_free);
 * NULL when neither is valid. */
static char *
member_path (JsonObject *o, const char *key)
{
  g_autofree char *raw_key = g_strconcat (key, "_base64", NULL);
  const char *raw = member_string (o, raw_key);
  if (raw)
    {
      gsize n;
      guchar *bytes = g_base64_decode (raw, &n);
      if (n == 0 || memchr (bytes, 0, n))
        {
          g_free (bytes);
          return NULL;
        }
      char *path = g_strndup ((const char *) bytes, n);
      g_free (bytes);
      return path;
    }
  const char *s = member_string (o, key);
  return s ? g_strdup (s) : NULL;
}

/* A {"label", "p"} object. */
static gboolean
read_label (JsonNode *n, char **label, float *p)
{
  if (!n || !JSON_NODE_HOLDS_OBJECT (n))
    return FALSE;
  JsonObject *o = json_node_get_object (n);
  const char *name = member_string (o, "label");
  double value;
  JsonNode *pn = json_object_get_member (o, "p");
  if (!name)
    return FALSE;
  if (pn && JSON_NODE_HOLDS_NULL (pn))
    value = NAN;
  else if (!member_number (o, "p", &value))
    return FALSE;
  *label = g_strdup (name);
  *p = (float) value;
  return TRUE;
}

static JsonArray *
member_array (JsonObject *o, const char *key)
{
  JsonNode *n = json_object_get_member (o, key);
  return n && JSON_NODE_HOLDS_ARRAY (n) ? json_node_get_array (n) : NULL;
}

static gboolean
read_result (JsonObject *o, AgcTagResult *r, const char **problem)
{
  JsonArray *labels = member_array (o, "labels");
  JsonNode *review = json_object_get_member (o, "review");
  if (!(r->image = member_path (o, "image")))
    return (*problem = "\"image\" is missing or not a string", FALSE);
  if (!member_int (o, "source", &r->source) || r->source < 0)
    return (*problem = "\"source\" is not an index", FALSE);
  if (!member_int (o, "width", &r->width) || !member_int (o, "height", &r->height))
    return (*problem = "\"width\" or \"height\" is not an integer", FALSE);
  if (!labels)
    return (*problem = "\"labels\" is not an array", FALSE);
  if (!review || !JSON_NODE_HOLDS_VALUE (review)
      || json_node_get_value_type (review) != G_TYPE_BOOLEAN)
    return (*problem = "\"review\" is not true or false", FALSE);
  r->review = json_node_get_boolean (review);
  r->labels = g_new0 (AgcTagLabel, json_array_get_length (labels));
  for (guint k = 0; k < json_array_get_length (labels); k++, r->n_labels++)
    if (!read_label (json_array_get_element (labels, k), &r->labels[k].label, &r->labels[k].p))
      return (*problem = "a label is not {\"label\": NAME, \"p\": NUMBER}", FALSE);
  JsonArray *boxes = member_array (o, "boxes");
  if (json_object_has_member (o, "boxes") && !boxes)
    return (*problem = "\"boxes\" is not an array", FALSE);
  if (!boxes)
    return TRUE;
  r->has_boxes = TRUE;
  r->boxes = g_new0 (AgcTagBox, json_array_get_length (boxes));
  for (guint b = 0; b < json_array_get_length (boxes); b++, r->n_boxes++)
    {
      JsonNode *n = json_array_get_element (boxes, b);
      AgcTagBox *box = &r->boxes[b];
      JsonObject *bo = JSON_NODE_HOLDS_OBJECT (n) ? json_node_get_object (n) : NULL;
      if (!bo || !member_int (bo, "x", &box->x) || !member_int (bo, "y", &box->y)
          || !member_int (bo, "width", &box->width) || !member_int (bo, "height", &box->height)
          || !read_label (n, &box->label, &box->p))
        return (*problem = "a box is not {\"x\", \"y\", \"width\", \"height\", \"label\", \"p\"}",
                FALSE);
    }
  return TRUE;
}

gboolean
agc_tag_result_from_json (const char *line, gssize length, const char *where,
                          AgcTagResult *result, GError **error)
{
  g_autoptr (JsonParser) parser = json_parser_new ();
  GError *local = NULL;
  if (!json_parser_load_from_data (parser, line, length, &local))
    {
      g_set_error (error, AGC_ERROR, AGC_ERROR_FORMAT, "%s: %s", where, local->message);
      g_error_free (local);
      return FALSE;
    }
  JsonNode *root = json_parser_get_root (parser);
  if (!root || !JSON_NODE_HOLDS_OBJECT (root))
    return bad (error, where, "not a JSON object");
  const char *problem = NULL;
  if (!read_result (json_node_get_object (root), result, &problem))
    {
      agc_tag_result_clear (result);
      return bad (error, where, problem);
    }
  return TRUE;
}

void
agc_tag_result_clear (AgcTagResult *r)
{
  if (!r)
    return;
  g_free (r->image);
  for (int k = 0; k < r->n_labels; k++)
    g_free (r->labels[k].label);
  g_free (r->labels);
  for (int b = 0; b < r->n_boxes; b++)
    g_free (r->boxes[b].label);
  g_free (r->boxes);
  *r = (AgcTagResult) { 0 };
}

void
agc_tag_result_free (AgcTagResult *r)
{
  agc_tag_result_clear (r);
  g_free (r);
}

GPtrArray *
agc_tag_results_load (const char *run_dir, GError **error)
{
  g_autofree char *path = g_build_filename (run_dir, AGC_TAG_RESULTS_FILE, NULL);
  g_autofree char *shown = g_filename_display_name (path);
  g_autofree char *data = NULL;
  gsize size;
  GError *local = NULL;
  if (!g_file_get_contents (path, &data, &size, &local))
    {
      g_set_error (error, AGC_ERROR, AGC_ERROR_IO, "%s: %s", shown, local->message);
      g_error_free (local);
      return NULL;
    }
  GPtrArray *results = g_ptr_array_new_with_free_func ((GDestroyNotify) agc_tag_result_free);
  int line_number = 1;
  for (const char *line = data, *end; (end = memchr (line, '\n', data + size - line));
       line = end + 1, line_number++)
    {
      g_autofree char *where = g_strdup_printf ("%s:%d", shown, line_number);
      AgcTagResult *r = g_new0 (AgcTagResult, 1);
      if (!agc_tag_result_from_json (line, end - line, where, r, error))
        {
          g_free (r);
          g_ptr_array_unref (results);
          return NULL;
        }
      g_ptr_array_add (results, r);
    }
  return results;
}

/* ---- run.json ------------------------------------------------------------ */

void
agc_tag_run_free (AgcTagRun *run)
{
  if (!run)
    return;
  g_free (run->model);
  g_free (run->model_identity);
  g_free (run->classes_sha256);
  g_free (run->label_set);
  for (int c = 0; c < run->n_classes; c++)
    {
      g_free (run->labels[c]);
      g_free (run->displays[c]);
    }
  g_free (run->labels);
  g_free (run->displays);
  for (int i = 0; i < run->n_sources; i++)
    g_free (run->sources[i]);
  g_free (run->sources);
  g_free (run);
}

static gboolean
read_settings (JsonObject *o, AgcTagRun *run, const char **problem)
{
  JsonNode *settings = json_object_get_member (o, "settings");
  JsonObject *s = settings && JSON_NODE_HOLDS_OBJECT (settings) ? json_node_get_object (settings)
                                                                 : NULL;
  if (!s || !member_int (s, "top", &run->top) || run->top < 1)
    return (*problem = "\"settings\" has no \"top\" of at least 1", FALSE);
  JsonNode *review = json_object_get_member (s, "review_below");
  run->review_below = -1;
  if (review && !JSON_NODE_HOLDS_NULL (review) && !member_number (s, "review_below",
                                                                  &run->review_below))
    return (*problem = "\"settings\".\"review_below\" is not a number or null", FALSE);
  // absent in runs made before --fast-decode existed: they decoded exactly
  const char *decode = member_string (s, "decode");
  if (decode != NULL && strcmp (decode, "exact") != 0 && strcmp (decode, "fast") != 0)
    return (*problem = "\"settings\".\"decode\" is not \"exact\" or \"fast\"", FALSE);
  run->fast_decode = g_strcmp0 (decode, "fast") == 0;
  // absent in runs made before the precision was recorded: taken as float32
  const char *precision = member_string (s, "precision");
  if (precision != NULL && strcmp (precision, "float32") != 0 && strcmp (precision, "int8") != 0)
    return (*problem = "\"settings\".\"precision\" is not \"float32\" or \"int8\"", FALSE);
  run->int8 = g_strcmp0 (precision, "int8") == 0;
  JsonNode *regions = json_object_get_member (s, "regions");
  if (regions && JSON_NODE_HOLDS_OBJECT (regions))
    {
      JsonObject *ro = json_node_get_object (regions);
      if (!member_int (ro, "tile", &run->tile) || !member_int (ro, "stride", &run->stride)
          || run->tile < 1 || run->stride < 1)
        return (*problem = "\"settings\".\"regions\" is not {\"tile\", \"stride\"}", FALSE);
    }
  else if (regions && !JSON_NODE_HOLDS_NULL (regions))
    return (*problem = "\"settings\".\"regions\" is not an object or null", FALSE);
  return TRUE;
}

static gboolean
read_run (JsonObject *o, AgcTagRun *run, const char **problem)
{
  int version = 0;
  const char *format = member_string (o, "format");
  if (!format || strcmp (format, "agriclip-tag-run") != 0)
    return (*problem = "\"format\" is not \"agriclip-tag-run\"", FALSE);
  if (!member_int (o, "version", &version) || version != 1)
    return (*problem = "\"version\" is not 1 (made by another agriclip?)", FALSE);
  const char *identity = member_string (o, "model_identity");
  run->model = member_path (o, "model");
  run->label_set = member_path (o, "label_set");
  if (!run->model || !identity || !run->label_set)
    return (*problem = "\"model\", \"model_identity\" or \"label_set\" is missing", FALSE);
  run->model_identity = g_strdup (identity);
  run->classes_sha256 = g_strdup (member_string (o, "classes_sha256"));
  JsonArray *labels = member_array (o, "labels");
  if (!labels || json_array_get_length (labels) == 0)
    return (*problem = "\"labels\" is not a list of classes", FALSE);
  int n = (int) json_array_get_length (labels);
  run->labels = g_new0 (char *, n + 1);
  run->displays = g_new0 (char *, n + 1);
  for (; run->n_classes < n; run->n_classes++)
    {
      JsonNode *c = json_array_get_element (labels, run->n_classes);
      JsonObject *co = JSON_NODE_HOLDS_OBJECT (c) ? json_node_get_object (c) : NULL;
      const char *label = co ? member_string (co, "label") : NULL;
      const char *display = co ? member_string (co, "display") : NULL;
      if (!label || !display)
        return (*problem = "a class is not {\"label\", \"display\"}", FALSE);
      run->labels[run->n_classes] = g_strdup (label);
      run->displays[run->n_classes] = g_strdup (display);
    }
  if (!read_settings (o, run, problem))
    return FALSE;
  JsonArray *sources = member_array (o, "sources");
  JsonArray *raw = member_array (o, "sources_base64");
  if (!sources || (raw && json_array_get_length (raw) != json_array_get_length (sources)))
    return (*problem = "\"sources\" is not a list of folders", FALSE);
  int n_sources = (int) json_array_get_length (sources);
  run->sources = g_new0 (char *, n_sources + 1);
  for (; run->n_sources < n_sources; run->n_sources++)
    {
      JsonNode *s = json_array_get_element (raw ? raw : sources, run->n_sources);
      if (!JSON_NODE_HOLDS_VALUE (s) || json_node_get_value_type (s) != G_TYPE_STRING)
        return (*problem = "\"sources\" is not a list of folders", FALSE);
      if (!raw)
        run->sources[run->n_sources] = g_strdup (json_node_get_string (s));
      else
        {
          gsize len;
          guchar *bytes = g_base64_decode (json_node_get_string (s), &len);
          run->sources[run->n_sources] = g_strndup ((const char *) bytes, len);
          g_free (bytes);
        }
    }
  JsonNode *shard = json_object_get_member (o, "shard");
  if (shard && JSON_NODE_HOLDS_OBJECT (shard))
    {
      JsonObject *so = json_node_get_object (shard);
      if (!member_int (so, "index", &run->shard_index)
          || !member_int (so, "count", &run->shard_count) || run->shard_count < 1
          || run->shard_index < 0 || run->shard_index >= run->shard_count)
        return (*problem = "\"shard\" is not {\"index\": I, \"count\": N}, 0 <= I < N", FALSE);
    }
  else if (shard && !JSON_NODE_HOLDS_NULL (shard))
    return (*problem = "\"shard\" is not an object or null", FALSE);
  return TRUE;
}

AgcTagRun *
agc_tag_run_load (const char *run_dir, GError **error)
{
  g_autofree char *path = g_build_filename (run_dir, AGC_TAG_RUN_FILE, NULL);
  g_autofree char *shown = g_filename_display_name (path);
  g_autoptr (JsonParser) parser = json_parser_new ();
  if (!agc_json_parse_file (parser, path, shown, error))
    return NULL;
  JsonNode *root = json_parser_get_root (parser);
  AgcTagRun *run = g_new0 (AgcTagRun, 1);
  const char *problem = "not a JSON object";
  if (root && JSON_NODE_HOLDS_OBJECT (root) && read_run (json_node_get_object (root), run,
                                                         &problem))
    return run;
  bad (error, shown, problem);
  agc_tag_run_free (run);
  return NULL;
}
