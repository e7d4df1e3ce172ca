/* text-clean.c — the text normalisation OpenAI's simple_tokenizer applies
 * before pre-tokenising (REFERENCE.md §3), reproduced step by step:
 *
 *   ftfy.fix_text   the subset that matters for prompts, in ftfy's order:
 *                   Latin ligatures and digraphs split, curly quotes
 *                   straightened, NFC.  Mojibake repair, HTML unescaping
 *                   inside ftfy, character width and control-character
 *                   removal are not done.
 *   html.unescape   twice, with Python's rules for malformed references;
 *   whitespace      str.strip(), runs of regex \s to one space, str.strip();
 *   str.lower()     full Unicode lower case, independent of the locale.
 *
 * Where GLib's Unicode functions differ from Python's, the differences were
 * found by comparing every code point and are handled explicitly below. */
#include "text/text-clean.h"

#include "agriclip.h"
#include "text/html-entities.h"

#include <string.h>

/* ---- character classes ---------------------------------------------------- */

gboolean
agc_unichar_is_white_space (gunichar c)
{
  switch (c)
    {
    case 0x09: case 0x0a: case 0x0b: case 0x0c: case 0x0d: case 0x20: case 0x85: case 0xa0:
    case 0x1680: case 0x2028: case 0x2029: case 0x202f: case 0x205f: case 0x3000:
      return TRUE;
    default:
      return c >= 0x2000 && c <= 0x200a;
    }
}

/* str.strip() uses str.isspace(), which also counts the information
 * separators U+001C..U+001F that \s (White_Space) does not. */
static gboolean
is_python_space (gunichar c)
{
  return agc_unichar_is_white_space (c) || (c >= 0x1c && c <= 0x1f);
}

/* ---- ftfy subset ---------------------------------------------------------- */

/* ftfy's LIGATURES table: typographic ligatures and legacy digraphs. */
static const char *
ligature_letters (gunichar c)
{
  switch (c)
    {
    case 0x0132: return "IJ";
    case 0x0133: return "ij";
    case 0x0149: return "\xca\xbcn"; /* U+02BC n; uncurled to 'n below */
    case 0x01c4: return "D\xc5\xbd";
    case 0x01c5: return "D\xc5\xbe";
    case 0x01c6: return "d\xc5\xbe";
    case 0x01c7: return "LJ";
    case 0x01c8: return "Lj";
    case 0x01c9: return "lj";
    case 0x01ca: return "NJ";
    case 0x01cb: return "Nj";
    case 0x01cc: return "nj";
    case 0x01f1: return "DZ";
    case 0x01f2: return "Dz";
    case 0x01f3: return "dz";
    case 0xfb00: return "ff";
    case 0xfb01: return "fi";
    case 0xfb02: return "fl";
    case 0xfb03: return "ffi";
    case 0xfb04: return "ffl";
    case 0xfb05: return "\xc5\xbft"; /* long s, t */
    case 0xfb06: return "st";
    default: return NULL;
    }
}

/* ftfy's uncurl_quotes: the quote a curly one stands for, or 0. */
static char
straight_quote (gunichar c)
{
  if (c == 0x02bc || (c >= 0x2018 && c <= 0x201b))
    return '\'';
  if (c >= 0x201c && c <= 0x201f)
    return '"';
  return 0;
}

static void
append_unichar (GString *out, gunichar c)
{
  char utf8[6];
  g_string_append_len (out, utf8, g_unichar_to_utf8 (c, utf8));
}

/* Appends one character after ligature splitting and quote uncurling: both
 * run before NFC in ftfy, and NFC never creates a ligature or curly quote,
 * so one pass reaches ftfy's fixed point. */
static void
append_fixed (GString *out, gunichar c)
{
  const char *letters = ligature_letters (c);
  if (letters)
    {
      for (const char *p = letters; *p; p = g_utf8_next_char (p))
        {
          gunichar l = g_utf8_get_char (p);
          char quote = straight_quote (l);
          if (quote)
            g_string_append_c (out, quote);
          else
            append_unichar (out, l);
        }
      return;
    }
  char quote = straight_quote (c);
  if (quote)
    g_string_append_c (out, quote);
  else
    append_unichar (out, c);
}

static char *
fix_text (const char *text)
{
  GString *fixed = g_string_sized_new (strlen (text));
  for (const char *p = text; *p; p = g_utf8_next_char (p))
    append_fixed (fixed, g_utf8_get_char (p));
  char *nfc = g_utf8_normalize (fixed->str, fixed->len, G_NORMALIZE_NFC);
  g_string_free (fixed, TRUE);
  return nfc;
}

/* ---- html.unescape -------------------------------------------------------- */

/* What Python substitutes for the numeric reference &#num;: HTML5's table
 * for 0x00, 0x0D and the Windows-1252 range, U+FFFD for surrogates and
 * numbers beyond Unicode, nothing for control and non-characters. */
static void
append_numeric_reference (GString *out, guint32 num)
{
  static const guint16 windows_1252[32] = {
    0x20ac, 0x0081, 0x201a, 0x0192, 0x201e, 0x2026, 0x2020, 0x2021,
    0x02c6, 0x2030, 0x0160, 0x2039, 0x0152, 0x008d, 0x017d, 0x008f,
    0x0090, 0x2018, 0x2019, 0x201c, 0x201d, 0x2022, 0x2013, 0x2014,
    0x02dc, 0x2122, 0x0161, 0x203a, 0x0153, 0x009d, 0x017e, 0x0178,
  };
  if (num == 0x00)
    append_unichar (out, 0xfffd);
  else if (num == 0x0d)
    g_string_append_c (out, '\r');
  else if (num >= 0x80 && num <= 0x9f)
    append_unichar (out, windows_1252[num - 0x80]);
  else if ((num >= 0xd800 && num <= 0xdfff) || num > 0x10ffff)
    append_unichar (out, 0xfffd);
  else if ((num >= 0x01 && num <= 0x08) || num == 0x0b || (num >= 0x0e && num <= 0x1f)
           || num == 0x7f || (num >= 0xfdd0 && num <= 0xfdef) || (num & 0xfffe) == 0xfffe)
    return;
  else
    append_unichar (out, num);
}

/* Parses the digits at p (hex or decimal); returns the number of digits and
 * sets *num, saturated just above U+10FFFF (Python's int has no limit). */
static int
parse_reference_number (const char *p, gboolean hex, guint32 *num)
{
  int n = 0;
  guint32 value = 0;
  for (; hex ? g_ascii_isxdigit (p[n]) : g_ascii_isdigit (p[n]); n++)
    {
      value = value * (hex ? 16 : 10) + g_ascii_xdigit_value (p[n]);
      if (value > 0x110000)
        value = 0x110000;
    }
  *num = value;
  return n;
}

static gboolean
ends_entity_name (gunichar c)
{
  return c == 0 || c == '\t' || c == '\n' || c == '\f' || c == ' ' || c == '<' || c == '&'
         || c == '#' || c == ';';
}

/* Handles the reference starting at amp ('&'); returns where scanning goes
 * on.  Python's pattern: &(#[0-9]+;?|#[xX][0-9a-fA-F]+;?|[^\t\n\f <&#;]{1,32};?) */
static const char *
unescape_reference (GString *out, const char *amp)
{
  const char *p = amp + 1;
  if (*p == '#')
    {
      gboolean hex = p[1] == 'x' || p[1] == 'X';
      const char *digits = p + (hex ? 2 : 1);
      guint32 num;
      int n_digits = parse_reference_number (digits, hex, &num);
      if (n_digits == 0)
        {
          g_string_append_c (out, '&');
          return p;
        }
      append_numeric_reference (out, num);
      p = digits + n_digits;
      return *p == ';' ? p + 1 : p;
    }

  /* A name: up to 32 characters, then an optional ';'. */
  const char *name = p;
  int n_chars = 0;
  while (n_chars < 32 && !ends_entity_name (g_utf8_get_char (p)))
    {
      p = g_utf8_next_char (p);
      n_chars++;
    }
  if (n_chars == 0)
    {
      g_string_append_c (out, '&');
      return p;
    }
  if (*p == ';')
    p++;
  size_t len = p - name;
  const char *value = agc_html_entity_lookup (name, len);
  if (value)
    {
      g_string_append (out, value);
      return p;
    }
  /* Else the longest known prefix of at least two characters, e.g. "&ampx"
   * -> "&x".  Known names are ASCII, so byte lengths serve. */
  for (size_t prefix = len - 1; prefix >= 2; prefix--)
    if ((value = agc_html_entity_lookup (name, prefix)) != NULL)
      {
        g_string_append (out, value);
        g_string_append_len (out, name + prefix, len - prefix);
        return p;
      }
  g_string_append_len (out, amp, p - amp);
  return p;
}

static char *
html_unescape (const char *text)
{
  GString *out = g_string_sized_new (strlen (text));
  const char *p = text;
  while (*p)
    {
      const char *amp = strchr (p, '&');
      if (!amp)
        {
          g_string_append (out, p);
          break;
        }
      g_string_append_len (out, p, amp - p);
      p = unescape_reference (out, amp);
    }
  return g_string_free (out, FALSE);
}

/* ---- whitespace ----------------------------------------------------------- */

/* Python's str.strip(), in place on a GString. */
static void
strip (GString *s)
{
  const char *start = s->str, *end = s->str + s->len;
  while (start < end && is_python_space (g_utf8_get_char (start)))
    start = g_utf8_next_char (start);
  while (end > start)
    {
      const char *last = g_utf8_find_prev_char (start, end);
      if (!is_python_space (g_utf8_get_char (last)))
        break;
      end = last;
    }
  g_string_truncate (s, end - s->str);
  g_string_erase (s, 0, start - s->str);
}

/* strip, then each run of \s to one space, then strip again. */
static char *
clean_whitespace (const char *text)
{
  GString *stripped = g_string_new (text);
  strip (stripped);
  GString *out = g_string_sized_new (stripped->len);
  gboolean in_space = FALSE;
  for (const char *p = stripped->str; *p; p = g_utf8_next_char (p))
    {
      gunichar c = g_utf8_get_char (p);
      if (agc_unichar_is_white_space (c))
        {
          if (!in_space)
            g_string_append_c (out, ' ');
          in_space = TRUE;
          continue;
        }
      in_space = FALSE;
      g_string_append_len (out, p, g_utf8_next_char (p) - p);
    }
  g_string_free (stripped, TRUE);
  strip (out);
  return g_string_free (out, FALSE);
}

/* ---- lower case ----------------------------------------------------------- */

/* Case_Ignorable: marks, format characters, modifier letters and symbols,
 * and the Word_Break MidLetter / MidNumLet / Single_Quote characters. */
static gboolean
is_case_ignorable (gunichar c)
{
  switch (g_unichar_type (c))
    {
    case G_UNICODE_NON_SPACING_MARK:
    case G_UNICODE_ENCLOSING_MARK:
    case G_UNICODE_FORMAT:
    case G_UNICODE_MODIFIER_LETTER:
    case G_UNICODE_MODIFIER_SYMBOL:
      return TRUE;
    default:
      break;
    }
  switch (c)
    {
    case 0x0027: case 0x002e: case 0x003a: case 0x00b7: case 0x0387: case 0x055f:
    case 0x05f4: case 0x2018: case 0x2019: case 0x2024: case 0x2027: case 0xfe13:
    case 0xfe52: case 0xfe55: case 0xff07: case 0xff0e: case 0xff1a:
      return TRUE;
    default:
      return FALSE;
    }
}

/* Cased: cased letters plus the Other_Lowercase / Other_Uppercase characters
 * that are not case-ignorable (ordinal indicators, Roman numerals, circled
 * and squared Latin letters). */
static gboolean
is_cased (gunichar c)
{
  GUnicodeType type = g_unichar_type (c);
  return type == G_UNICODE_UPPERCASE_LETTER || type == G_UNICODE_LOWERCASE_LETTER
         || type == G_UNICODE_TITLECASE_LETTER || c == 0xaa || c == 0xba
         || (c >= 0x2160 && c <= 0x217f) || (c >= 0x24b6 && c <= 0x24e9)
         || (c >= 0x1f130 && c <= 0x1f149) || (c >= 0x1f150 && c <= 0x1f169)
         || (c >= 0x1f170 && c <= 0x1f189);
}

/* Unicode's Final_Sigma condition, as Python applies it: a cased letter
 * before the sigma and none after it, skipping case-ignorables both ways. */
static gboolean
sigma_is_final (const char *text, const char *sigma)
{
  const char *p = sigma;
  gunichar c = 0;
  while ((p = g_utf8_find_prev_char (text, p)) != NULL)
    if (!is_case_ignorable (c = g_utf8_get_char (p)))
      break;
  if (p == NULL || !is_cased (c))
    return FALSE;
  for (p = g_utf8_next_char (sigma); *p; p = g_utf8_next_char (p))
    if (!is_case_ignorable (c = g_utf8_get_char (p)))
      return !is_cased (c);
  return TRUE;
}

/* Python's str.lower().  g_utf8_strdown is not used: it follows the
 * process locale (Turkish dotless i), and it leaves Roman numerals and
 * circled letters alone, which Python lower-cases. */
static char *
lower (const char *text)
{
  GString *out = g_string_sized_new (strlen (text));
  for (const char *p = text; *p; p = g_utf8_next_char (p))
    {
      gunichar c = g_utf8_get_char (p);
      if (c == 0x0130) /* İ: i + combining dot above */
        g_string_append (out, "i\xcc\x87");
      else if (c == 0x03a3)
        append_unichar (out, sigma_is_final (text, p) ? 0x03c2 : 0x03c3);
      else if (c >= 0x2160 && c <= 0x216f)
        append_unichar (out, c + 0x10);
      else if (c >= 0x24b6 && c <= 0x24cf)
        append_unichar (out, c + 0x1a);
      else
        append_unichar (out, g_unichar_tolower (c));
    }
  return g_string_free (out, FALSE);
}

/* ---- the pipeline --------------------------------------------------------- */

char *
agc_text_clean (const char *text, GError **error)
{
  g_return_val_if_fail (text != NULL, NULL);

  const char *bad;
  if (!g_utf8_validate (text, -1, &bad))
    {
      g_set_error (error, AGC_ERROR, AGC_ERROR_INPUT,
                   "text is not valid UTF-8 (byte 0x%02x at offset %ld)",
                   (guint8) *bad, (long) (bad - text));
      return NULL;
    }
  char *fixed = fix_text (text);
  char *unescaped_once = html_unescape (fixed);
  char *unescaped = html_unescape (unescaped_once);
  char *spaced = clean_whitespace (unescaped);
  char *lowered = lower (spaced);
  g_free (fixed);
  g_free (unescaped_once);
  g_free (unescaped);
  g_free (spaced);
  return lowered;
}
