/* json-check.c — value checks shared by the configuration readers. */
#include "support/json-check.h"

#include <string.h>

#include "agriclip.h"

char *
agc_json_describe (JsonNode *node)
{
  if (JSON_NODE_HOLDS_OBJECT (node))
    return g_strdup ("an object");
  if (JSON_NODE_HOLDS_ARRAY (node))
    return g_strdup ("an array");
  if (JSON_NODE_HOLDS_NULL (node))
    return g_strdup ("null");
  GType type = json_node_get_value_type (node);
  if (type == G_TYPE_INT64)
    return g_strdup_printf ("%" G_GINT64_FORMAT, json_node_get_int (node));
  if (type == G_TYPE_DOUBLE) // "2.0", not "2": the point is why an integer was refused
    {
      char text[G_ASCII_DTOSTR_BUF_SIZE];
      g_ascii_formatd (text, sizeof text, "%g", json_node_get_double (node));
      gboolean integral = strspn (text, "-0123456789") == strlen (text);
      return g_strconcat (text, integral ? ".0" : "", NULL);
    }
  if (type == G_TYPE_BOOLEAN)
    return g_strdup (json_node_get_boolean (node) ? "true" : "false");
  return g_strdup_printf ("\"%s\"", json_node_get_string (node));
}

gboolean
agc_json_wrong_value (GError **error, int code, const char *path, const char *section,
                      const char *key, JsonNode *node, const char *expected)
{
  g_autofree char *got = agc_json_describe (node);
  g_set_error (error, AGC_ERROR, code, "%s: %s%s is %s, expected %s", path, section, key, got,
               expected);
  return FALSE;
}

gboolean
agc_json_is_value_of (JsonNode *node, GType type)
{
  return node != NULL && JSON_NODE_HOLDS_VALUE (node) && json_node_get_value_type (node) == type;
}

gboolean
agc_json_is_number (JsonNode *node)
{
  return agc_json_is_value_of (node, G_TYPE_INT64) || agc_json_is_value_of (node, G_TYPE_DOUBLE);
}
