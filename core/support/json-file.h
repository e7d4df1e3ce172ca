/* json-file.h — reading JSON, with the library's errors: the one place every
 * configuration, index, manifest, vocabulary, label set and metadata text is
 * parsed.  The text is checked first, without recursion, against RFC 8259
 * (json-glib accepts comments, trailing content and more, and recurses once
 * per nesting level: 80,000 levels overflow the stack). */
#pragma once

#include <json-glib/json-glib.h>

/* Deepest nesting of arrays and objects accepted (configurations use ~5). */
#define AGC_JSON_MAX_DEPTH 128
/* Largest JSON file accepted (vocab.json is 1.6 MB; a catalogue of 10^5
 * files ~20 MB). */
#define AGC_JSON_MAX_BYTES ((gsize) 256 << 20)

/* Checks that text[0..length) is one JSON value, strictly: UTF-8, no NUL
 * (nor \u0000, which C strings cannot hold), no unpaired surrogate escape, no
 * comment, nothing after the value, at most AGC_JSON_MAX_DEPTH levels deep.
 * AGC_ERROR_FORMAT otherwise: "display: not valid JSON (line L, column C: …)".
 * Empty text (or only whitespace) passes: json-glib parses it to no root,
 * which each caller refuses in its own words. */
gboolean agc_json_check_text (const char *text, gsize length, const char *display,
                              GError **error);

/* agc_json_check_text (after a UTF-8 byte order mark, which is skipped),
 * then parses text into parser.  AGC_ERROR_FORMAT with a
 * message naming display when either fails. */
gboolean agc_json_parse_data (JsonParser *parser, const char *text, gsize length,
                              const char *display, GError **error);

/* Reads the file at path (a regular file of at most AGC_JSON_MAX_BYTES) and
 * parses it as agc_json_parse_data does.  AGC_ERROR_IO when it cannot be
 * read, AGC_ERROR_FORMAT when it is not JSON; the message names the file (as
 * display, or path's display name when display is NULL). */
gboolean agc_json_parse_file (JsonParser *parser, const char *path, const char *display,
                              GError **error);
