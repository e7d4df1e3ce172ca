/* pairs.c — DATA/captions.jsonl read into image paths and captions
 * (pairs.h). */
#include "train/pairs.h"

#include "support/json-file.h"
#include "support/regular-file.h"

#include <json-glib/json-glib.h>
#include <string.h>

#define CAPTIONS_MAX_BYTES ((gsize) 1 << 30) /* captions.jsonl: ~100 bytes a pair */

static const char *
member_string (JsonObject *object, const char *key)
{
  JsonNode *node = json_object_get_member (object, key);
  if (node == NULL || !JSON_NODE_HOLDS_VALUE (node)
      || json_node_get_value_type (node) != G_TYPE_STRING)
    return NULL;
  return json_node_get_string (node);
}

/* Captions name files inside their folder, so that a captions.jsonl from
 * elsewhere reads nothing outside it (agriclip captions links the photos
 * in: DATA/photos/…). */
static gboolean
inside_folder (const char *image)
{
  if (image[0] == '\0' || g_path_is_absolute (image) || G_IS_DIR_SEPARATOR (image[0]))
    return FALSE;
  g_auto (GStrv) parts = g_strsplit_set (image, G_DIR_SEPARATOR_S "/", -1);
  for (int i = 0; parts[i] != NULL; i++)
    if (strcmp (parts[i], "..") == 0)
      return FALSE;
  return TRUE;
}

gboolean
agc_pairs_read (const char *data_dir, GPtrArray **paths, GPtrArray **captions, GError **error)
{
  *paths = g_ptr_array_new_with_free_func (g_free);
  *captions = g_ptr_array_new_with_free_func (g_free);
  g_autofree char *path = g_build_filename (data_dir, "captions.jsonl", NULL);
  g_autofree char *text = NULL;
  if (!agc_read_regular_file (path, CAPTIONS_MAX_BYTES, &text, NULL, error))
    return FALSE;
  g_autoptr (JsonParser) parser = json_parser_new ();
  char **lines = g_strsplit (text, "\n", -1);
  gboolean ok = TRUE;
  for (int i = 0; ok && lines[i] != NULL; i++)
    {
      char *line = g_strstrip (lines[i]);
      if (*line == '\0')
        continue;
      GError *json_error = NULL;
      g_autofree char *where = g_strdup_printf ("%s: line %d", path, i + 1);
      JsonNode *root = agc_json_parse_data (parser, line, strlen (line), where, &json_error)
                         ? json_parser_get_root (parser) : NULL;
      JsonObject *object = root != NULL && JSON_NODE_HOLDS_OBJECT (root)
                             ? json_node_get_object (root) : NULL;
      const char *image = object != NULL ? member_string (object, "image") : NULL;
      const char *caption = object != NULL ? member_string (object, "caption") : NULL;
      if (image == NULL || caption == NULL)
        {
          if (json_error != NULL)
            g_propagate_error (error, g_steal_pointer (&json_error));
          else
            g_set_error (error, AGC_ERROR, AGC_ERROR_FORMAT,
                         "%s: wants an object with strings \"image\" and \"caption\"", where);
          ok = FALSE;
        }
      else if (!inside_folder (image))
        {
          g_set_error (error, AGC_ERROR, AGC_ERROR_FORMAT,
                       "%s: \"image\" must name a file inside the folder (a relative path "
                       "without \"..\"), not \"%s\"", where, image);
          ok = FALSE;
        }
      else
        {
          g_ptr_array_add (*paths, g_build_filename (data_dir, image, NULL));
          g_ptr_array_add (*captions, g_strdup (caption));
        }
      g_clear_error (&json_error);
    }
  g_strfreev (lines);
  if (ok && (*paths)->len == 0)
    {
      g_set_error (error, AGC_ERROR, AGC_ERROR_INPUT, "%s: no image-caption pairs", path);
      ok = FALSE;
    }
  return ok;
}

