/* test-text-clean.c — agc_text_clean against the behaviour of the Python
 * functions CLIP uses (ftfy's ligatures and quotes, unicodedata NFC,
 * html.unescape twice, str.strip, regex \s, str.lower).  Each expected
 * string is what those Python functions return for the input. */
#include "agriclip.h"
#include "text/text-clean.h"

#include <string.h>

typedef struct
{
  const char *text;
  const char *clean;
} Case;

static void
check_cases (const Case *cases, gsize n_cases)
{
  for (gsize i = 0; i < n_cases; i++)
    {
      GError *error = NULL;
      char *clean = agc_text_clean (cases[i].text, &error);
      g_assert_no_error (error);
      if (g_strcmp0 (clean, cases[i].clean) != 0)
        g_test_message ("input \"%s\"", cases[i].text);
      g_assert_cmpstr (clean, ==, cases[i].clean);
      g_free (clean);
    }
}

static void
test_whitespace (void)
{
  static const Case cases[] = {
    { "  Hello\t\n  World  ", "hello world" },
    { "a\xc2\xa0\xe2\x80\x83" "b", "a b" },      /* no-break space, em space */
    { "a\xe2\x80\xa8" "b\xe3\x80\x80" "c", "a b c" }, /* line separator, ideographic space */
    { "\x1c a \x1c", "a" },                      /* str.strip() takes U+001C ... */
    { "a\x1c" "b", "a\x1c" "b" },                /* ... but \s does not */
    { "a\xe2\x80\x8b" "b", "a\xe2\x80\x8b" "b" }, /* zero-width space is not whitespace */
    { "", "" },
    { " \t\r\n ", "" },
  };
  check_cases (cases, G_N_ELEMENTS (cases));
}

static void
test_html_entities (void)
{
  static const Case cases[] = {
    { "&lt;3 &gt;", "<3 >" },
    { "&amp;amp;", "&" },          /* unescaped twice ... */
    { "&amp;amp;amp;", "&amp;" },  /* ... not three times */
    { "&#65;&#x42;&#X43;", "abc" },
    { "caf&eacute; &copy;", "caf\xc3\xa9 \xc2\xa9" },
    { "&fjlig;", "fj" },           /* HTML5 entity of two characters */
    { "&notit;", "\xc2\xac" "it;" }, /* longest known prefix, "&not" */
    { "&ampx", "&x" },             /* legacy name without ';' */
    { "&nosuch;", "&nosuch;" },
    { "&#0;", "\xef\xbf\xbd" },
    { "&#x110000;", "\xef\xbf\xbd" },
    { "&#xD800;", "\xef\xbf\xbd" },
    { "&#99999999999999999999;", "\xef\xbf\xbd" },
    { "&#128;", "\xe2\x82\xac" },  /* Windows-1252 euro */
    { "&#1;x", "x" },              /* control characters vanish */
    { "&#13;a", "a" },
    { "&#x;&#;& amp;", "&#x;&#;& amp;" },
    { "e&#x301;", "e\xcc\x81" },   /* NFC comes before unescaping */
  };
  check_cases (cases, G_N_ELEMENTS (cases));
}

static void
test_ftfy_subset (void)
{
  static const Case cases[] = {
    { "\xef\xac\x81sh \xef\xac\x82ower o\xef\xac\x80 \xef\xac\x83 \xef\xac\x84 \xef\xac\x85 \xef\xac\x86",
      "fish flower off ffi ffl \xc5\xbft st" },
    { "\xc4\xb2 \xc5\x89 \xc7\x85", "ij 'n d\xc5\xbe" }, /* IJ, 'n, Dž digraphs */
    { "\xe2\x80\x9cHi\xe2\x80\x9d \xe2\x80\x98there\xe2\x80\x99 \xe2\x80\x9ax\xe2\x80\x9b "
      "\xe2\x80\x9ey\xe2\x80\x9f \xca\xbc",
      "\"hi\" 'there' 'x' \"y\" '" },
    { "e\xcc\x81", "\xc3\xa9" },    /* NFC: e + combining acute */
    { "\xe2\x84\xab", "\xc3\xa5" }, /* NFC: Angstrom sign -> a ring, lower-cased */
  };
  check_cases (cases, G_N_ELEMENTS (cases));
}

static void
test_lower_case (void)
{
  static const Case cases[] = {
    { "\xc3\x89" "COLE Stra\xc3\x9f" "e", "\xc3\xa9" "cole stra\xc3\x9f" "e" },
    { "\xc4\xb0", "i\xcc\x87" }, /* dotted capital I: i + combining dot */
    { "\xce\x9f\xce\x94\xce\xa5\xce\xa3\xce\xa3\xce\x95\xce\xa5\xce\xa3",
      "\xce\xbf\xce\xb4\xcf\x85\xcf\x83\xcf\x83\xce\xb5\xcf\x85\xcf\x82" }, /* final sigma */
    { "\xce\xa3", "\xcf\x83" },                   /* a lone sigma is not final */
    { "\xce\x91\xce\xa3.", "\xce\xb1\xcf\x82." }, /* final before punctuation */
    { "\xe2\x85\xab \xe2\x92\xb6", "\xe2\x85\xbb \xe2\x93\x90" }, /* Roman XII, circled A */
  };
  check_cases (cases, G_N_ELEMENTS (cases));
}

static void
test_invalid_utf8 (void)
{
  static const char *const bad[] = { "\xff", "abc\xc3", "\xed\xa0\x80", "\xc0\xaf" };
  for (gsize i = 0; i < G_N_ELEMENTS (bad); i++)
    {
      GError *error = NULL;
      char *clean = agc_text_clean (bad[i], &error);
      g_assert_null (clean);
      g_assert_error (error, AGC_ERROR, AGC_ERROR_INPUT);
      g_assert_nonnull (strstr (error->message, "UTF-8"));
      g_error_free (error);
    }
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/text-clean/whitespace", test_whitespace);
  g_test_add_func ("/text-clean/html-entities", test_html_entities);
  g_test_add_func ("/text-clean/ftfy-subset", test_ftfy_subset);
  g_test_add_func ("/text-clean/lower-case", test_lower_case);
  g_test_add_func ("/text-clean/invalid-utf8", test_invalid_utf8);
  return g_test_run ();
}
