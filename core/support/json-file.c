/* json-file.c — JSON checked strictly, then parsed, with errors that name
 * the file. */
#include "support/json-file.h"

#include "agriclip.h"
#include "support/regular-file.h"

#include <string.h>

typedef enum
{
  WANT_VALUE,
  WANT_VALUE_OR_CLOSE, /* just after '[' */
  WANT_KEY,
  WANT_KEY_OR_CLOSE, /* just after '{' */
  WANT_COLON,
  WANT_COMMA_OR_CLOSE,
  WANT_END,
} Want;

typedef struct
{
  const char *text;
  gsize length;
  gsize at;
  const char *problem; /* untranslated English, like json-glib's own messages */
} Scan;

static int
hex_value (char c)
{
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  return -1;
}

/* Reads the 4 hex digits of a \u escape at s->at; -1 when they are not. */
static int
scan_u_escape (Scan *s)
{
  if (s->length - s->at < 4)
    return -1;
  int value = 0;
  for (int i = 0; i < 4; i++)
    {
      int digit = hex_value (s->text[s->at + i]);
      if (digit < 0)
        return -1;
      value = value * 16 + digit;
    }
  s->at += 4;
  return value;
}

/* s->at is just after the opening quote; leaves it after the closing one. */
static gboolean
scan_string (Scan *s)
{
  while (s->at < s->length)
    {
      guchar c = (guchar) s->text[s->at++];
      if (c == '"')
        return TRUE;
      if (c < 0x20)
        {
          s->problem = "control character in a string";
          s->at--;
          return FALSE;
        }
      if (c != '\\')
        continue;
      if (s->at >= s->length)
        break;
      char e = s->text[s->at++];
      if (strchr ("\"\\/bfnrt", e) != NULL && e != '\0')
        continue;
      if (e != 'u')
        {
          s->problem = "invalid escape in a string";
          s->at -= 2;
          return FALSE;
        }
      int unit = scan_u_escape (s);
      if (unit < 0)
        {
          s->problem = "invalid \\u escape in a string";
          s->at -= 2;
          return FALSE;
        }
      if (unit == 0)
        {
          s->problem = "\\u0000 (a NUL character) in a string";
          s->at -= 6;
          return FALSE;
        }
      if (unit >= 0xDC00 && unit <= 0xDFFF)
        {
          s->problem = "unpaired UTF-16 surrogate escape in a string";
          s->at -= 6;
          return FALSE;
        }
      if (unit >= 0xD800 && unit <= 0xDBFF)
        {
          gsize high_at = s->at - 6;
          int low = -1;
          if (s->length - s->at >= 2 && s->text[s->at] == '\\' && s->text[s->at + 1] == 'u')
            {
              s->at += 2;
              low = scan_u_escape (s);
            }
          if (low < 0xDC00 || low > 0xDFFF)
            {
              s->problem = "unpaired UTF-16 surrogate escape in a string";
              s->at = high_at;
              return FALSE;
            }
        }
    }
  s->problem = "unterminated string";
  return FALSE;
}

static gboolean
is_digit (const Scan *s)
{
  return s->at < s->length && s->text[s->at] >= '0' && s->text[s->at] <= '9';
}

/* -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? */
static gboolean
scan_number (Scan *s)
{
  gsize start = s->at;
  if (s->text[s->at] == '-')
    s->at++;
  if (!is_digit (s))
    goto bad;
  if (s->text[s->at] == '0')
    s->at++;
  else
    while (is_digit (s))
      s->at++;
  if (s->at < s->length && s->text[s->at] == '.')
    {
      s->at++;
      if (!is_digit (s))
        goto bad;
      while (is_digit (s))
        s->at++;
    }
  if (s->at < s->length && (s->text[s->at] == 'e' || s->text[s->at] == 'E'))
    {
      s->at++;
      if (s->at < s->length && (s->text[s->at] == '+' || s->text[s->at] == '-'))
        s->at++;
      if (!is_digit (s))
        goto bad;
      while (is_digit (s))
        s->at++;
    }
  return TRUE;
bad:
  s->problem = "invalid number";
  s->at = start;
  return FALSE;
}

static gboolean
scan_literal (Scan *s)
{
  static const char *const literals[] = { "true", "false", "null" };
  for (guint i = 0; i < G_N_ELEMENTS (literals); i++)
    {
      gsize n = strlen (literals[i]);
      if (s->length - s->at >= n && memcmp (s->text + s->at, literals[i], n) == 0)
        {
          s->at += n;
          return TRUE;
        }
    }
  s->problem = "unexpected character";
  return FALSE;
}

/* Walks the text once with an explicit stack of open containers. */
static gboolean
scan_json (Scan *s)
{
  char open[AGC_JSON_MAX_DEPTH]; /* '{' or '[' per level */
  int depth = 0;
  Want want = WANT_VALUE;
  for (;;)
    {
      while (s->at < s->length && strchr (" \t\r\n", s->text[s->at]) != NULL
             && s->text[s->at] != '\0')
        s->at++;
      if (s->at >= s->length)
        {
          // empty text passes: json-glib gives no root, and the caller says what it expected
          if (want == WANT_END || (depth == 0 && want == WANT_VALUE))
            return TRUE;
          s->problem = "the text ends before the JSON value does";
          return FALSE;
        }
      char c = s->text[s->at];
      if (c == '/' && want != WANT_END)
        {
          s->problem = "comment (JSON has none)";
          return FALSE;
        }
      gboolean closes = depth > 0 && ((c == '}' && (want == WANT_KEY_OR_CLOSE || want == WANT_COMMA_OR_CLOSE)
                         && open[depth - 1] == '{')
                        || (c == ']' && (want == WANT_VALUE_OR_CLOSE || want == WANT_COMMA_OR_CLOSE)
                            && open[depth - 1] == '['));
      if (closes)
        {
          s->at++;
          depth--;
          want = depth == 0 ? WANT_END : WANT_COMMA_OR_CLOSE;
          continue;
        }
      switch (want)
        {
        case WANT_END:
          s->problem = "content after the JSON value";
          return FALSE;
        case WANT_COLON:
          if (c != ':')
            {
              s->problem = "expected ':'";
              return FALSE;
            }
          s->at++;
          want = WANT_VALUE;
          continue;
        case WANT_COMMA_OR_CLOSE:
          if (c != ',')
            {
              s->problem = open[depth - 1] == '{' ? "expected ',' or '}'" : "expected ',' or ']'";
              return FALSE;
            }
          s->at++;
          want = open[depth - 1] == '{' ? WANT_KEY : WANT_VALUE;
          continue;
        case WANT_KEY:
        case WANT_KEY_OR_CLOSE:
          if (c != '"')
            {
              s->problem = "expected a member name in double quotes";
              return FALSE;
            }
          s->at++;
          if (!scan_string (s))
            return FALSE;
          want = WANT_COLON;
          continue;
        case WANT_VALUE:
        case WANT_VALUE_OR_CLOSE:
          break;
        }
      if (c == '{' || c == '[')
        {
          if (depth == AGC_JSON_MAX_DEPTH)
            {
              s->problem = "nested more than " G_STRINGIFY (AGC_JSON_MAX_DEPTH) " levels deep";
              return FALSE;
            }
          open[depth++] = c;
          s->at++;
          want = c == '{' ? WANT_KEY_OR_CLOSE : WANT_VALUE_OR_CLOSE;
          continue;
        }
      gboolean ok;
      if (c == '"')
        {
          s->at++;
          ok = scan_string (s);
        }
      else if (c == '-' || (c >= '0' && c <= '9'))
        ok = scan_number (s);
      else
        ok = scan_literal (s);
      if (!ok)
        return FALSE;
      want = depth == 0 ? WANT_END : WANT_COMMA_OR_CLOSE;
    }
}

gboolean
agc_json_check_text (const char *text, gsize length, const char *display, GError **error)
{
  g_return_val_if_fail (text != NULL || length == 0, FALSE);
  const char *invalid = NULL;
  Scan s = { text, length, 0, NULL };
  // g_utf8_validate_len also refuses NUL bytes
  if (!g_utf8_validate_len (text, length, &invalid))
    {
      s.at = (gsize) (invalid - text);
      s.problem = *invalid == '\0' && s.at < length ? "NUL byte" : "invalid UTF-8";
    }
  else if (scan_json (&s))
    return TRUE;
  int line = 1, column = 1;
  for (gsize i = 0; i < s.at && i < length; i++)
    if (text[i] == '\n')
      line++, column = 1;
    else if (((guchar) text[i] & 0xC0) != 0x80)
      column++;
  g_set_error (error, AGC_ERROR, AGC_ERROR_FORMAT, "%s: not valid JSON (line %d, column %d: %s)",
               display, line, column, s.problem);
  return FALSE;
}

gboolean
agc_json_parse_data (JsonParser *parser, const char *text, gsize length, const char *display,
                     GError **error)
{
  if (length >= 3 && memcmp (text, "\xEF\xBB\xBF", 3) == 0) // editors on Windows add a BOM
    text += 3, length -= 3;
  if (!agc_json_check_text (text, length, display, error))
    return FALSE;
  GError *local = NULL;
  if (json_parser_load_from_data (parser, text, (gssize) length, &local))
    return TRUE;
  // json-glib calls the text "<data>": put the name in its place
  const char *message = local->message;
  if (g_str_has_prefix (message, "<data>:"))
    message += strlen ("<data>:");
  g_set_error (error, AGC_ERROR, AGC_ERROR_FORMAT, "%s: %s", display, message);
  g_error_free (local);
  return FALSE;
}

gboolean
agc_json_parse_file (JsonParser *parser, const char *path, const char *display, GError **error)
{
  g_autofree char *shown = display == NULL ? g_filename_display_name (path) : NULL;
  g_autofree char *text = NULL;
  gsize length = 0;
  if (!agc_read_regular_file (path, AGC_JSON_MAX_BYTES, &text, &length, error))
    return FALSE;
  return agc_json_parse_data (parser, text, length, display != NULL ? display : shown, error);
}
