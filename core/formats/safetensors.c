/* safetensors.c — a validating reader of the safetensors format.
 *
 * Layout: u64 little-endian header length N, N bytes of JSON, data section.
 * The JSON maps tensor name -> {dtype, shape, data_offsets [begin, end)}
 * (offsets relative to the data section) plus an optional "__metadata__"
 * string map.  We trust nothing: every number is range-checked with
 * overflow-safe arithmetic before it becomes a pointer. */
#include "formats/safetensors.h"
#include "formats/name-index.h"
#include "support/error.h"
#include "support/json-check.h"
#include "support/json-file.h"
#include "support/regular-file.h"

#include "agriclip.h"

#include <json-glib/json-glib.h>
#include <string.h>

struct AgcSafetensors
{
  char *path; /* display name, for messages */
  GMappedFile *mapping;
  AgcNameIndex index;     /* name -> AgcTensorView* */
  AgcTensorView *tensors; /* [n_tensors], in data section order */
  int n_tensors;
  GHashTable *metadata; /* string -> string, or NULL */
};

/* A tensor while the header is checked: the view plus its byte range. */
typedef struct
{
  AgcTensorView view;
  guint64 begin;
  guint64 end;
} Entry;

/* ---- strict JSON tokens ---------------------------------------------------
 * json-glib 1.6 is lenient where a file format must not be: it reads 0x10 and
 * 012 as numbers, accepts single-quoted strings and comments, and wraps
 * integers beyond 64 bits silently (2^64 + 10 becomes 10).  This pass checks
 * that every token is strict JSON and every integer fits in int64 before
 * json-glib builds the tree. */

static gboolean
is_hex (char c)
{
  return g_ascii_isxdigit (c);
}

/* Checks the number at text[*i]; advances *i past it. */
static gboolean
check_number (const char *text, size_t len, size_t *i, GString *problem)
{
  size_t start = *i, p = *i;
  gboolean is_integer = TRUE;

  if (text[p] == '-')
    p++;
  if (p < len && text[p] == '0')
    p++;
  else if (p < len && text[p] >= '1' && text[p] <= '9')
    while (p < len && g_ascii_isdigit (text[p]))
      p++;
  else
    goto malformed;
  if (p < len && text[p] == '.')
    {
      is_integer = FALSE;
      if (++p >= len || !g_ascii_isdigit (text[p]))
        goto malformed;
      while (p < len && g_ascii_isdigit (text[p]))
        p++;
    }
  if (p < len && (text[p] == 'e' || text[p] == 'E'))
    {
      is_integer = FALSE;
      p++;
      if (p < len && (text[p] == '+' || text[p] == '-'))
        p++;
      if (p >= len || !g_ascii_isdigit (text[p]))
        goto malformed;
      while (p < len && g_ascii_isdigit (text[p]))
        p++;
    }
  if (p < len && (g_ascii_isalnum (text[p]) || text[p] == '.'))
    goto malformed; // "012", "1x", "1.2.3"
  if (is_integer)
    {
      char *token = g_strndup (text + start, p - start);
      gint64 value;
      gboolean fits = g_ascii_string_to_signed (token, 10, G_MININT64, G_MAXINT64, &value, NULL);
      if (!fits)
        g_string_printf (problem, "integer %s at byte %zu is out of range", token, start);
      g_free (token);
      if (!fits)
        return FALSE;
    }
  *i = p;
  return TRUE;

malformed:
  g_string_printf (problem, "malformed number at byte %zu", start);
  return FALSE;
}

/* Checks the string whose opening quote is at text[*i]; advances *i past it. */
static gboolean
check_string (const char *text, size_t len, size_t *i, GString *problem)
{
  size_t start = *i, p = *i + 1;

  while (p < len)
    {
      guchar c = text[p];
      if (c == '"')
        {
          *i = p + 1;
          return TRUE;
        }
      if (c < 0x20)
        {
          g_string_printf (problem, "control character in the string at byte %zu", start);
          return FALSE;
        }
      if (c != '\\')
        {
          p++;
          continue;
        }
      if (p + 1 >= len)
        break;
      char e = text[p + 1];
      if (strchr ("\"\\/bfnrt", e) != NULL)
        {
          p += 2;
          continue;
        }
      if (e != 'u' || p + 5 >= len || !is_hex (text[p + 2]) || !is_hex (text[p + 3])
          || !is_hex (text[p + 4]) || !is_hex (text[p + 5]))
        {
          g_string_printf (problem, "invalid escape in the string at byte %zu", start);
          return FALSE;
        }
      if (strncmp (text + p + 2, "0000", 4) == 0) // names are C strings
        {
          g_string_printf (problem, "\\u0000 in the string at byte %zu", start);
          return FALSE;
        }
      p += 6;
    }
  g_string_printf (problem, "unterminated string at byte %zu", start);
  return FALSE;
}

/* Also checks that nothing but whitespace follows the top-level value
 * (json-glib 1.6 accepts "{} {}"). */
static gboolean
check_json_tokens (const char *text, size_t len, GString *problem)
{
  size_t i = 0;
  int depth = 0;
  gboolean done = FALSE;
  while (i < len)
    {
      char c = text[i];
      if (strchr (" \t\r\n", c) != NULL && c != '\0')
        {
          i++;
          continue;
        }
      if (done)
        {
          g_string_printf (problem, "data after the top-level object at byte %zu", i);
          return FALSE;
        }
      if (strchr ("{}[]:,", c) != NULL && c != '\0')
        {
          depth += c == '{' || c == '[' ? 1 : c == '}' || c == ']' ? -1 : 0;
          done = depth == 0 && (c == '}' || c == ']');
          i++;
        }
      else if (c == '"')
        {
          if (!check_string (text, len, &i, problem))
            return FALSE;
        }
      else if (c == '-' || g_ascii_isdigit (c))
        {
          if (!check_number (text, len, &i, problem))
            return FALSE;
        }
      else if (g_ascii_isalpha (c))
        {
          size_t start = i;
          while (i < len && g_ascii_isalnum (text[i]))
            i++;
          size_t n = i - start;
          if (!((n == 4 && strncmp (text + start, "true", 4) == 0)
                || (n == 5 && strncmp (text + start, "false", 5) == 0)
                || (n == 4 && strncmp (text + start, "null", 4) == 0)))
            {
              g_string_printf (problem, "unexpected word at byte %zu", start);
              return FALSE;
            }
        }
      else
        {
          g_string_printf (problem, "unexpected byte 0x%02x at byte %zu", (guchar) c, i);
          return FALSE;
        }
    }
  return TRUE;
}

/* ---- duplicate keys ---------------------------------------------------------
 * json-glib keeps the last of two equal keys without a word.  It signals
 * every member after adding it, so a member that does not grow its object
 * was a duplicate. */

typedef struct
{
  GHashTable *n_seen;     /* JsonObject* -> members signalled so far */
  GHashTable *duplicates; /* JsonObject* -> first duplicate key (owned) */
} DuplicateTracker;

static void
on_object_member (JsonParser *parser, JsonObject *object, const char *name, gpointer user_data)
{
  (void) parser;
  DuplicateTracker *tracker = user_data;
  guint n_seen = GPOINTER_TO_UINT (g_hash_table_lookup (tracker->n_seen, object)) + 1;
  g_hash_table_insert (tracker->n_seen, object, GUINT_TO_POINTER (n_seen));
  if (json_object_get_size (object) < n_seen
      && !g_hash_table_contains (tracker->duplicates, object))
    g_hash_table_insert (tracker->duplicates, object, g_strdup (name));
}

/* ---- header fields --------------------------------------------------------- */

static gboolean
is_string (JsonNode *node)
{
  return JSON_NODE_HOLDS_VALUE (node) && json_node_get_value_type (node) == G_TYPE_STRING;
}

static gboolean
parse_dtype (const char *name, AgcDType *dtype)
{
  static const struct
  {
    const char *name;
    AgcDType dtype;
  } table[] = {
    { "F32", AGC_DTYPE_F32 }, { "F16", AGC_DTYPE_F16 }, { "BF16", AGC_DTYPE_BF16 },
    { "F64", AGC_DTYPE_F64 }, { "I64", AGC_DTYPE_I64 }, { "I32", AGC_DTYPE_I32 },
    { "I16", AGC_DTYPE_I16 }, { "I8", AGC_DTYPE_I8 },   { "U8", AGC_DTYPE_U8 },
    { "BOOL", AGC_DTYPE_BOOL },
  };
  for (size_t i = 0; i < G_N_ELEMENTS (table); i++)
    if (strcmp (name, table[i].name) == 0)
      {
        *dtype = table[i].dtype;
        return TRUE;
      }
  return FALSE;
}

static gboolean
fail (GError **error, int code, const AgcSafetensors *file, const char *tensor,
      const char *format, ...) G_GNUC_PRINTF (5, 6);

/* Sets "path: tensor 'name': message" (the tensor part when tensor != NULL). */
static gboolean
fail (GError **error, int code, const AgcSafetensors *file, const char *tensor,
      const char *format, ...)
{
  g_autofree char *where
    = tensor != NULL ? g_strdup_printf ("%s: tensor '%s'", file->path, tensor) : NULL;
  va_list args;
  va_start (args, format);
  agc_fail_at_valist (error, code, where != NULL ? where : file->path, format, args);
  va_end (args);
  return FALSE;
}

static gboolean
parse_metadata (AgcSafetensors *file, JsonNode *node, const DuplicateTracker *tracker,
                GError **error)
{
  if (JSON_NODE_HOLDS_NULL (node))
    return TRUE;
  if (!JSON_NODE_HOLDS_OBJECT (node))
    {
      g_autofree char *got = agc_json_describe (node);
      return fail (error, AGC_ERROR_FORMAT, file, NULL,
                   "__metadata__ is %s, expected an object of strings", got);
    }
  JsonObject *object = json_node_get_object (node);
  const char *duplicate = g_hash_table_lookup (tracker->duplicates, object);
  if (duplicate != NULL)
    return fail (error, AGC_ERROR_FORMAT, file, NULL, "__metadata__ has key '%s' twice",
                 duplicate);

  file->metadata = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  JsonObjectIter iter;
  const char *key;
  JsonNode *value;
  json_object_iter_init (&iter, object);
  while (json_object_iter_next (&iter, &key, &value))
    {
      if (!is_string (value))
        {
          g_autofree char *got = agc_json_describe (value);
          return fail (error, AGC_ERROR_FORMAT, file, NULL,
                       "__metadata__ '%s' is %s, expected a string", key, got);
        }
      g_hash_table_insert (file->metadata, g_strdup (key), g_strdup (json_node_get_string (value)));
    }
  return TRUE;
}

/* Reads dtype, shape and data_offsets of one tensor and checks them against
 * each other and the data section size; placement is checked later. */
static gboolean
parse_entry (AgcSafetensors *file, Entry *entry, const char *name, JsonNode *node,
             guint64 data_size, const DuplicateTracker *tracker, GError **error)
{
  if (!JSON_NODE_HOLDS_OBJECT (node))
    {
      g_autofree char *got = agc_json_describe (node);
      return fail (error, AGC_ERROR_FORMAT, file, name, "is %s, expected an object", got);
    }
  JsonObject *object = json_node_get_object (node);
  const char *duplicate = g_hash_table_lookup (tracker->duplicates, object);
  if (duplicate != NULL)
    return fail (error, AGC_ERROR_FORMAT, file, name, "key '%s' appears twice", duplicate);
  static const char *const required[] = { "dtype", "shape", "data_offsets" };
  for (size_t k = 0; k < G_N_ELEMENTS (required); k++)
    if (!json_object_has_member (object, required[k]))
      return fail (error, AGC_ERROR_FORMAT, file, name, "no '%s'", required[k]);

  entry->view.name = agc_name_index_intern (&file->index, name, -1);
  entry->view.file = file->path;

  JsonNode *dtype = json_object_get_member (object, "dtype");
  if (!is_string (dtype))
    {
      g_autofree char *got = agc_json_describe (dtype);
      return fail (error, AGC_ERROR_FORMAT, file, name, "dtype is %s, expected a string", got);
    }
  if (!parse_dtype (json_node_get_string (dtype), &entry->view.dtype))
    return fail (error, AGC_ERROR_UNSUPPORTED, file, name, "dtype '%s' is not supported",
                 json_node_get_string (dtype));

  JsonNode *shape = json_object_get_member (object, "shape");
  if (!JSON_NODE_HOLDS_ARRAY (shape))
    {
      g_autofree char *got = agc_json_describe (shape);
      return fail (error, AGC_ERROR_FORMAT, file, name, "shape is %s, expected an array", got);
    }
  JsonArray *dims = json_node_get_array (shape);
  guint n_dims = json_array_get_length (dims);
  if (n_dims > AGC_MAX_DIMS)
    return fail (error, AGC_ERROR_UNSUPPORTED, file, name,
                 "shape has %u dimensions, at most %d are supported", n_dims, AGC_MAX_DIMS);
  entry->view.n_dims = (int) n_dims;
  guint64 n_elements = 1;
  gboolean overflow = FALSE;
  for (guint d = 0; d < n_dims; d++)
    {
      JsonNode *dim = json_array_get_element (dims, d);
      if (!agc_json_is_value_of (dim, G_TYPE_INT64) || json_node_get_int (dim) < 0)
        {
          g_autofree char *got = agc_json_describe (dim);
          return fail (error, AGC_ERROR_FORMAT, file, name,
                       "shape[%u] is %s, expected a non-negative integer", d, got);
        }
      entry->view.shape[d] = json_node_get_int (dim);
      overflow |= !g_uint64_checked_mul (&n_elements, n_elements, (guint64) entry->view.shape[d]);
    }
  guint64 n_bytes = 0;
  overflow |= !g_uint64_checked_mul (&n_bytes, n_elements, agc_dtype_size (entry->view.dtype));
  if (overflow)
    return fail (error, AGC_ERROR_FORMAT, file, name, "shape has too many elements");

  JsonNode *offsets = json_object_get_member (object, "data_offsets");
  JsonArray *pair = JSON_NODE_HOLDS_ARRAY (offsets) ? json_node_get_array (offsets) : NULL;
  if (pair == NULL || json_array_get_length (pair) != 2
      || !agc_json_is_value_of (json_array_get_element (pair, 0), G_TYPE_INT64)
      || !agc_json_is_value_of (json_array_get_element (pair, 1), G_TYPE_INT64)
      || json_array_get_int_element (pair, 0) < 0 || json_array_get_int_element (pair, 1) < 0)
    return fail (error, AGC_ERROR_FORMAT, file, name,
                 "data_offsets must be two non-negative integers [begin, end]");
  entry->begin = (guint64) json_array_get_int_element (pair, 0);
  entry->end = (guint64) json_array_get_int_element (pair, 1);
  if (entry->begin > entry->end)
    return fail (error, AGC_ERROR_FORMAT, file, name,
                 "data_offsets [%" G_GUINT64_FORMAT ", %" G_GUINT64_FORMAT
                 ") end before they begin",
                 entry->begin, entry->end);
  if (entry->end > data_size)
    return fail (error, AGC_ERROR_FORMAT, file, name,
                 "data_offsets [%" G_GUINT64_FORMAT ", %" G_GUINT64_FORMAT
                 ") exceed the data section of %" G_GUINT64_FORMAT " bytes",
                 entry->begin, entry->end, data_size);
  if (entry->end - entry->begin != n_bytes)
    return fail (error, AGC_ERROR_FORMAT, file, name,
                 "%" G_GUINT64_FORMAT " %s elements need %" G_GUINT64_FORMAT
                 " bytes, but data_offsets [%" G_GUINT64_FORMAT ", %" G_GUINT64_FORMAT
                 ") hold %" G_GUINT64_FORMAT,
                 n_elements, agc_dtype_name (entry->view.dtype), n_bytes, entry->begin,
                 entry->end, entry->end - entry->begin);
  entry->view.n_bytes = (size_t) n_bytes;
  return TRUE;
}

static int
compare_entries (const void *a, const void *b)
{
  const Entry *x = a, *y = b;
  if (x->begin != y->begin)
    return x->begin < y->begin ? -1 : 1;
  if (x->end != y->end)
    return x->end < y->end ? -1 : 1;
  return strcmp (x->view.name, y->view.name);
}

/* Sorted by begin, the tensors tile [0, data_size) when each one starts
 * where the previous one ended and the last one ends at data_size. */
static gboolean
check_tiling (AgcSafetensors *file, const Entry *entries, int n, guint64 data_size,
              GError **error)
{
  guint64 previous_end = 0;
  for (int i = 0; i < n; i++)
    {
      const Entry *e = &entries[i];
      if (e->begin < previous_end)
        return fail (error, AGC_ERROR_FORMAT, file, e->view.name,
                     "data_offsets [%" G_GUINT64_FORMAT ", %" G_GUINT64_FORMAT
                     ") overlap tensor '%s'",
                     e->begin, e->end, entries[i - 1].view.name);
      if (e->begin > previous_end)
        {
          if (i == 0)
            return fail (error, AGC_ERROR_FORMAT, file, e->view.name,
                         "data_offsets [%" G_GUINT64_FORMAT ", %" G_GUINT64_FORMAT
                         ") leave the first %" G_GUINT64_FORMAT " bytes of the data unused",
                         e->begin, e->end, e->begin);
          return fail (error, AGC_ERROR_FORMAT, file, e->view.name,
                       "data_offsets [%" G_GUINT64_FORMAT ", %" G_GUINT64_FORMAT
                       ") leave a gap of %" G_GUINT64_FORMAT " bytes after tensor '%s'",
                       e->begin, e->end, e->begin - previous_end, entries[i - 1].view.name);
        }
      previous_end = e->end;
    }
  if (previous_end != data_size)
    return fail (error, AGC_ERROR_FORMAT, file, NULL,
                 "%" G_GUINT64_FORMAT " bytes after the last tensor are not part of any tensor",
                 data_size - previous_end);
  return TRUE;
}

static gboolean
parse_tensors (AgcSafetensors *file, JsonObject *root, const guint8 *data, guint64 data_size,
               const DuplicateTracker *tracker, GError **error)
{
  guint n_members = json_object_get_size (root);
  if (n_members > G_MAXINT)
    return fail (error, AGC_ERROR_FORMAT, file, NULL, "too many tensors");
  Entry *entries = g_new0 (Entry, MAX (n_members, 1));
  int n = 0;
  gboolean ok = TRUE;

  JsonObjectIter iter;
  const char *name;
  JsonNode *node;
  json_object_iter_init (&iter, root);
  while (ok && json_object_iter_next (&iter, &name, &node))
    {
      if (strcmp (name, "__metadata__") == 0)
        ok = parse_metadata (file, node, tracker, error);
      else
        ok = parse_entry (file, &entries[n++], name, node, data_size, tracker, error);
    }
  if (ok)
    {
      qsort (entries, n, sizeof (Entry), compare_entries);
      ok = check_tiling (file, entries, n, data_size, error);
    }
  if (ok)
    {
      file->n_tensors = n;
      file->tensors = g_new0 (AgcTensorView, MAX (n, 1));
      for (int i = 0; i < n; i++)
        {
          file->tensors[i] = entries[i].view;
          file->tensors[i].data = data + entries[i].begin;
          agc_name_index_add (&file->index, file->tensors[i].name, &file->tensors[i]);
        }
    }
  g_free (entries);
  return ok;
}

/* Checks the header framing, then hands the JSON to parse_tensors. */
static gboolean
parse_file (AgcSafetensors *file, GError **error)
{
  const guint8 *bytes = (const guint8 *) g_mapped_file_get_contents (file->mapping);
  guint64 file_size = g_mapped_file_get_length (file->mapping);

  if (file_size < 8)
    return fail (error, AGC_ERROR_FORMAT, file, NULL,
                 "file is %" G_GUINT64_FORMAT " bytes, too short for a safetensors header",
                 file_size);
  guint64 header_size;
  memcpy (&header_size, bytes, 8);
  header_size = GUINT64_FROM_LE (header_size);
  if (header_size > file_size - 8) // the subtraction cannot wrap, the sum could
    return fail (error, AGC_ERROR_FORMAT, file, NULL,
                 "header length %" G_GUINT64_FORMAT " exceeds the file size %" G_GUINT64_FORMAT,
                 header_size, file_size);
  if (header_size == 0)
    return fail (error, AGC_ERROR_FORMAT, file, NULL, "header length is 0");

  const char *header = (const char *) bytes + 8;
  if (!g_utf8_validate_len (header, header_size, NULL))
    return fail (error, AGC_ERROR_FORMAT, file, NULL, "header is not valid UTF-8");
  size_t first = 0;
  while (first < header_size && g_ascii_isspace (header[first]))
    first++;
  if (first == header_size || header[first] != '{')
    return fail (error, AGC_ERROR_FORMAT, file, NULL, "header is not a JSON object");
  g_autoptr (GString) problem = g_string_new (NULL);
  if (!check_json_tokens (header, header_size, problem))
    return fail (error, AGC_ERROR_FORMAT, file, NULL, "header is not valid JSON: %s",
                 problem->str);

  DuplicateTracker tracker = {
    g_hash_table_new (NULL, NULL),
    g_hash_table_new_full (NULL, NULL, NULL, g_free),
  };
  JsonParser *parser = json_parser_new ();
  g_signal_connect (parser, "object-member", G_CALLBACK (on_object_member), &tracker);
  g_autofree char *display = g_strdup_printf ("%s: header", file->path);
  gboolean ok = agc_json_parse_data (parser, header, header_size, display, error);
  JsonNode *root = ok ? json_parser_get_root (parser) : NULL;
  if (!ok)
    ;
  else if (root == NULL || !JSON_NODE_HOLDS_OBJECT (root))
    ok = fail (error, AGC_ERROR_FORMAT, file, NULL, "header is not a JSON object");
  else if (g_hash_table_contains (tracker.duplicates, json_node_get_object (root)))
    ok = fail (error, AGC_ERROR_FORMAT, file, NULL, "tensor '%s' appears twice",
               (const char *) g_hash_table_lookup (tracker.duplicates,
                                                   json_node_get_object (root)));
  else
    ok = parse_tensors (file, json_node_get_object (root), bytes + 8 + header_size,
                        file_size - 8 - header_size, &tracker, error);

  g_object_unref (parser);
  g_hash_table_unref (tracker.n_seen);
  g_hash_table_unref (tracker.duplicates);
  return ok;
}

AgcSafetensors *
agc_safetensors_open (const char *path, GError **error)
{
  g_return_val_if_fail (path != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  AgcSafetensors *file = g_new0 (AgcSafetensors, 1);
  file->path = g_filename_display_name (path);
  agc_name_index_init (&file->index);

  file->mapping = agc_map_regular_file (path, error);
  if (file->mapping == NULL)
    {
      agc_safetensors_free (file);
      return NULL;
    }
  if (!parse_file (file, error))
    {
      agc_safetensors_free (file);
      return NULL;
    }
  return file;
}

gboolean
agc_safetensors_maps (const AgcSafetensors *file, const void *data, size_t n)
{
  const char *start = g_mapped_file_get_contents (file->mapping), *p = data;
  size_t length = g_mapped_file_get_length (file->mapping);
  return start != NULL && p >= start && n <= length && (size_t) (p - start) <= length - n;
}

void
agc_safetensors_free (AgcSafetensors *file)
{
  if (file == NULL)
    return;
  g_clear_pointer (&file->mapping, g_mapped_file_unref);
  g_clear_pointer (&file->metadata, g_hash_table_unref);
  agc_name_index_clear (&file->index);
  g_free (file->tensors);
  g_free (file->path);
  g_free (file);
}

const char *
agc_safetensors_path (const AgcSafetensors *file)
{
  return file->path;
}

int
agc_safetensors_n_tensors (const AgcSafetensors *file)
{
  return file->n_tensors;
}

const AgcTensorView *
agc_safetensors_tensor (const AgcSafetensors *file, int index)
{
  g_return_val_if_fail (index >= 0 && index < file->n_tensors, NULL);
  return &file->tensors[index];
}

const AgcTensorView *
agc_safetensors_find (const AgcSafetensors *file, const char *name)
{
  return agc_name_index_find (&file->index, name);
}

GHashTable *
agc_safetensors_metadata (const AgcSafetensors *file)
{
  return file->metadata;
}
