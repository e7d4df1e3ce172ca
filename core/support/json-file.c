/* json-file.c — JSON files parsed with errors that name them. */
#include "support/json-file.h"

#include "agriclip.h"

gboolean
agc_json_parse_file (JsonParser *parser, const char *path, const char *display, GError **error)
{
  GError *local = NULL;
  if (json_parser_load_from_mapped_file (parser, path, &local))
    return TRUE;
  int code = local->domain == JSON_PARSER_ERROR ? AGC_ERROR_FORMAT : AGC_ERROR_IO;
  // GLib's open errors and json-glib's syntax errors name the file already
  if (g_strstr_len (local->message, -1, path) != NULL)
    g_set_error_literal (error, AGC_ERROR, code, local->message);
  else
    g_set_error (error, AGC_ERROR, code, "%s: %s", display, local->message);
  g_error_free (local);
  return FALSE;
}
