/* json-write.c — JSON string literals and arrays of them, the one
 * definition every JSON text the library and its front ends write uses
 * (agriclip.h, "JSON text"). */
#include "agriclip.h"

#include <string.h>

// s[0..n), valid UTF-8, inside a string literal
static void
append_chars (GString *out, const char *s, size_t n)
{
  for (const unsigned char *p = (const unsigned char *) s; p < (const unsigned char *) s + n; p++)
    switch (*p)
      {
      case '"': g_string_append (out, "\\\""); break;
      case '\\': g_string_append (out, "\\\\"); break;
      case '\n': g_string_append (out, "\\n"); break;
      case '\r': g_string_append (out, "\\r"); break;
      case '\t': g_string_append (out, "\\t"); break;
      default:
        if (*p < 0x20 || *p == 0x7f)
          g_string_append_printf (out, "\\u%04x", *p);
        else
          g_string_append_c (out, (char) *p);
      }
}

void
agc_json_append_string (GString *out, const char *s)
{
  g_return_if_fail (out != NULL && s != NULL);
  g_string_append_c (out, '"');
  for (const char *p = s; *p;)
    {
      const char *end;
      g_utf8_validate (p, -1, &end); // the longest valid run from p
      append_chars (out, p, (size_t) (end - p));
      p = end;
      if (*p) // a byte that starts no valid sequence
        g_string_append_printf (out, "\\u%04x", 0xDC00 + (unsigned char) *p++);
    }
  g_string_append_c (out, '"');
}

void
agc_json_append_string_array (GString *out, const char *const *strings, int n)
{
  g_return_if_fail (out != NULL);
  g_string_append_c (out, '[');
  for (int i = 0; strings != NULL && (n < 0 ? strings[i] != NULL : i < n); i++)
    {
      g_string_append (out, i ? ", " : "");
      agc_json_append_string (out, strings[i]);
    }
  g_string_append_c (out, ']');
}
