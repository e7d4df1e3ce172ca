/* json-file.h — reading a JSON file, with the library's errors: the one
 * place every configuration, index and manifest file is parsed. */
#pragma once

#include <json-glib/json-glib.h>

/* Parses the file at path into parser.  AGC_ERROR_IO when it cannot be
 * read, AGC_ERROR_FORMAT when it is not JSON; the message names the file
 * (as display, unless GLib's or json-glib's message names it already). */
gboolean agc_json_parse_file (JsonParser *parser, const char *path, const char *display,
                              GError **error);
