/* json-check.h — checking values read from JSON configuration files, with
 * messages of one shape: "path: <section><key> is <value>, expected <what>". */
#pragma once

#include <json-glib/json-glib.h>

/* A short description of a value for messages: 12, 2.0, "gelu", an object… */
char *agc_json_describe (JsonNode *node);

/* Sets error (domain AGC_ERROR, code) in the shape above; returns FALSE. */
gboolean agc_json_wrong_value (GError **error, int code, const char *path, const char *section,
                               const char *key, JsonNode *node, const char *expected);

/* node is a plain value of that GType (NULL is not). */
gboolean agc_json_is_value_of (JsonNode *node, GType type);
/* An integer or a floating-point value. */
gboolean agc_json_is_number (JsonNode *node);
