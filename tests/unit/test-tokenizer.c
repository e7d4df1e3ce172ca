/* test-tokenizer.c — the CLIP tokenizer: REFERENCE.md §3's known ids in both
 * vocabulary layouts, truncation and padding, BPE order on a tiny
 * hand-made vocabulary, and the errors of broken tokenizer files. */
#include "agriclip.h"
#include "text/tokenizer.h"
#include "unit-util.h"

#include <gio/gio.h>
#include <glib/gstdio.h>
#include <string.h>
#include <unistd.h>

#define CONTEXT 77

/* ---- helpers --------------------------------------------------------------- */

static char *
shared_vocab (const char *name)
{
  const char *shared = g_getenv ("AGC_SHARED_DIR");
  char *path = g_build_filename (shared ? shared : "../shared", "clip-vocab", name, NULL);
  char *absolute = g_canonicalize_filename (path, NULL); // symlinks need it
  g_free (path);
  return absolute;
}

static char *
make_temp_dir (void)
{
  GError *error = NULL;
  char *dir = g_dir_make_tmp ("agc-tokenizer-XXXXXX", &error);
  g_assert_no_error (error);
  return dir;
}

static char *
write_file (const char *dir, const char *name, const char *contents, gssize length)
{
  GError *error = NULL;
  char *path = g_build_filename (dir, name, NULL);
  g_file_set_contents (path, contents, length, &error);
  g_assert_no_error (error);
  return path;
}

static void
write_gzip (const char *path, const char *contents)
{
  GError *error = NULL;
  GFile *file = g_file_new_for_path (path);
  GFileOutputStream *raw = g_file_replace (file, NULL, FALSE, 0, NULL, &error);
  g_assert_no_error (error);
  GZlibCompressor *gzip = g_zlib_compressor_new (G_ZLIB_COMPRESSOR_FORMAT_GZIP, -1);
  GOutputStream *out = g_converter_output_stream_new (G_OUTPUT_STREAM (raw), G_CONVERTER (gzip));
  g_output_stream_write_all (out, contents, strlen (contents), NULL, NULL, &error);
  g_assert_no_error (error);
  g_output_stream_close (out, NULL, &error);
  g_assert_no_error (error);
  g_object_unref (out);
  g_object_unref (gzip);
  g_object_unref (raw);
  g_object_unref (file);
}

/* Asserts ids[CONTEXT] == expected[n] followed by zeros. */
static void
assert_ids (const int32_t *ids, const int32_t *expected, int n)
{
  for (int i = 0; i < CONTEXT; i++)
    g_assert_cmpint (ids[i], ==, i < n ? expected[i] : 0);
}

/* error is read only here, after the loader in the first argument ran. */
static void
expect_load_error (AgcTokenizer *tokenizer, GError **error_ptr, int code, const char *needle)
{
  GError *error = *error_ptr;
  *error_ptr = NULL;
  g_assert_null (tokenizer);
  g_assert_error (error, AGC_ERROR, code);
  if (!strstr (error->message, needle))
    g_test_message ("message \"%s\" lacks \"%s\"", error->message, needle);
  g_assert_nonnull (strstr (error->message, needle));
  g_error_free (error);
}

/* ---- known ids ------------------------------------------------------------- */

static const struct
{
  const char *text;
  int32_t ids[8];
  int n;
} known[] = {
  { "a photo of a fox", { 49406, 320, 1125, 539, 320, 3240, 49407 }, 7 },
  { "hello world", { 49406, 3306, 1002, 49407 }, 4 },
  { "You should've done this", { 49406, 592, 1535, 1200, 1700, 589, 49407 }, 7 },
};

static void
check_known_ids (AgcTokenizer *tokenizer)
{
  GError *error = NULL;
  int32_t ids[CONTEXT];
  g_assert_cmpint (agc_tokenizer_sot (tokenizer), ==, 49406);
  g_assert_cmpint (agc_tokenizer_eot (tokenizer), ==, 49407);
  g_assert_cmpint (agc_tokenizer_vocab_size (tokenizer), ==, 49408);
  for (gsize k = 0; k < G_N_ELEMENTS (known); k++)
    {
      g_assert_true (agc_tokenizer_encode (tokenizer, known[k].text, CONTEXT, ids, &error));
      g_assert_no_error (error);
      assert_ids (ids, known[k].ids, known[k].n);
    }
}

static void
test_known_ids_hf (void)
{
  char *vocab = shared_vocab ("vocab.json"), *merges = shared_vocab ("merges.txt");
  GError *error = NULL;
  AgcTokenizer *tokenizer = agc_tokenizer_load_hf (vocab, merges, &error);
  g_assert_no_error (error);
  check_known_ids (tokenizer);
  agc_tokenizer_free (tokenizer);
  g_free (vocab);
  g_free (merges);
}

static void
test_known_ids_openai (void)
{
  char *bpe = shared_vocab ("bpe_simple_vocab_16e6.txt.gz");
  GError *error = NULL;
  AgcTokenizer *tokenizer = agc_tokenizer_load_openai (bpe, &error);
  g_assert_no_error (error);
  check_known_ids (tokenizer);
  agc_tokenizer_free (tokenizer);
  g_free (bpe);
}

static void
test_known_ids_dir (void)
{
  char *dir = shared_vocab (NULL);
  GError *error = NULL;
  AgcTokenizer *tokenizer = agc_tokenizer_load_dir (dir, &error);
  g_assert_no_error (error);
  check_known_ids (tokenizer);
  agc_tokenizer_free (tokenizer);
  g_free (dir);

  // a folder with only OpenAI's file
  char *tmp = make_temp_dir ();
  char *bpe = shared_vocab ("bpe_simple_vocab_16e6.txt.gz");
  char *link = g_build_filename (tmp, "bpe_simple_vocab_16e6.txt.gz", NULL);
  g_assert_cmpint (symlink (bpe, link), ==, 0);
  tokenizer = agc_tokenizer_load_dir (tmp, &error);
  g_assert_no_error (error);
  check_known_ids (tokenizer);
  agc_tokenizer_free (tokenizer);
  g_free (link);
  g_free (bpe);
  remove_tree (tmp);
  g_free (tmp);
}

/* ---- truncation, padding, input errors ------------------------------------- */

static AgcTokenizer *
load_shared (void)
{
  char *dir = shared_vocab (NULL);
  GError *error = NULL;
  AgcTokenizer *tokenizer = agc_tokenizer_load_dir (dir, &error);
  g_assert_no_error (error);
  g_free (dir);
  return tokenizer;
}

static void
test_truncation (void)
{
  AgcTokenizer *tokenizer = load_shared ();
  GError *error = NULL;
  int32_t ids[CONTEXT];
  const int32_t *fox = known[0].ids; // SOT a photo of a fox EOT

  // 30 repetitions: 150 word ids, cut to SOT + 75 ids + EOT
  GString *text = g_string_new (NULL);
  for (int i = 0; i < 30; i++)
    g_string_append (text, "a photo of a fox ");
  g_assert_true (agc_tokenizer_encode (tokenizer, text->str, CONTEXT, ids, &error));
  g_assert_no_error (error);
  g_assert_cmpint (ids[0], ==, 49406);
  for (int i = 1; i < CONTEXT - 1; i++)
    g_assert_cmpint (ids[i], ==, fox[1 + (i - 1) % 5]);
  g_assert_cmpint (ids[CONTEXT - 1], ==, 49407);
  g_string_free (text, TRUE);

  // short contexts: exact fit, one too short, only room for one id
  int32_t small[8];
  for (int context = 1; context <= 8; context++)
    {
      g_assert_true (agc_tokenizer_encode (tokenizer, "a photo of a fox", context, small, &error));
      for (int i = 0; i < context; i++)
        {
          int32_t expected = i == context - 1 && context <= 7 ? 49407 : i < 7 ? fox[i] : 0;
          g_assert_cmpint (small[i], ==, expected);
        }
    }
  agc_tokenizer_free (tokenizer);
}

static void
test_empty_and_special (void)
{
  AgcTokenizer *tokenizer = load_shared ();
  GError *error = NULL;
  int32_t ids[CONTEXT];
  static const int32_t empty[] = { 49406, 49407 };
  g_assert_true (agc_tokenizer_encode (tokenizer, " \t\n", CONTEXT, ids, &error));
  assert_ids (ids, empty, 2);
  // the special tokens written in a text are the special ids
  static const int32_t special[] = { 49406, 49407, 3306, 49406, 49407 };
  g_assert_true (agc_tokenizer_encode (tokenizer, "<|endoftext|>hello<|startoftext|>", CONTEXT,
                                       ids, &error));
  assert_ids (ids, special, 5);
  agc_tokenizer_free (tokenizer);
}

static void
test_invalid_utf8 (void)
{
  AgcTokenizer *tokenizer = load_shared ();
  int32_t ids[CONTEXT];
  GError *error = NULL;
  g_assert_false (agc_tokenizer_encode (tokenizer, "ok \xc3\x28", CONTEXT, ids, &error));
  g_assert_error (error, AGC_ERROR, AGC_ERROR_INPUT);
  g_error_free (error);
  agc_tokenizer_free (tokenizer);
}

/* ---- BPE order on a tiny vocabulary ------------------------------------------ */

/* GPT-2's byte table, written out again: printable bytes stand for
 * themselves, the rest for U+0100 onwards in byte order. */
static void
append_byte_symbol (GString *out, int b)
{
  static int shifted[256];
  static gboolean ready;
  if (!ready)
    {
      int n = 0;
      for (int i = 0; i < 256; i++)
        shifted[i] = (i >= '!' && i <= '~') || (i >= 0xa1 && i <= 0xac) || (i >= 0xae) ? i : 256 + n++;
      ready = TRUE;
    }
  g_string_append_printf (out, "\\u%04x", shifted[b]); // as a JSON escape
}

/* vocab.json with the 512 byte symbols (ids = byte, byte + 256), then extra[]. */
static char *
tiny_vocab (const char *const *extra, int n_extra)
{
  GString *json = g_string_new ("{");
  for (int pass = 0; pass < 2; pass++)
    for (int b = 0; b < 256; b++)
      {
        g_string_append (json, json->len > 1 ? ", \"" : "\"");
        append_byte_symbol (json, b);
        g_string_append_printf (json, "%s\": %d", pass ? "</w>" : "", pass * 256 + b);
      }
  for (int i = 0; i < n_extra; i++)
    g_string_append_printf (json, ", \"%s\": %d", extra[i], 512 + i);
  g_string_append (json, "}");
  return g_string_free (json, FALSE);
}

static void
test_bpe_order (void)
{
  // ranks: "b c" before "a b"; "a a" then "aa a</w>"
  static const char *const extra[] = { "bc", "ab", "aa", "aaa</w>", "<|startoftext|>",
                                       "<|endoftext|>" };
  char *dir = make_temp_dir ();
  char *json = tiny_vocab (extra, G_N_ELEMENTS (extra));
  char *vocab = write_file (dir, "vocab.json", json, -1);
  char *merges = write_file (dir, "merges.txt", "#version: 0.2\nb c\na b\na a\naa a</w>\n", -1);
  GError *error = NULL;
  AgcTokenizer *tokenizer = agc_tokenizer_load_hf (vocab, merges, &error);
  g_assert_no_error (error);
  g_assert_cmpint (agc_tokenizer_sot (tokenizer), ==, 516);
  g_assert_cmpint (agc_tokenizer_eot (tokenizer), ==, 517);
  int32_t ids[CONTEXT];

  // lowest rank first: a|bc|d</w>, not ab|c|d</w>
  static const int32_t abcd[] = { 516, 'a', 512, 256 + 'd', 517 };
  g_assert_true (agc_tokenizer_encode (tokenizer, "abcd", CONTEXT, ids, &error));
  assert_ids (ids, abcd, G_N_ELEMENTS (abcd));
  // "aaa": a a a</w> -> aa a</w> -> aaa</w>
  static const int32_t aaa[] = { 516, 515, 517 };
  g_assert_true (agc_tokenizer_encode (tokenizer, "aaa", CONTEXT, ids, &error));
  assert_ids (ids, aaa, G_N_ELEMENTS (aaa));
  // "aaaa": pairs merge left to right without overlap: aa a a</w>, then nothing applies
  static const int32_t aaaa[] = { 516, 514, 'a', 256 + 'a', 517 };
  g_assert_true (agc_tokenizer_encode (tokenizer, "aaaa", CONTEXT, ids, &error));
  assert_ids (ids, aaaa, G_N_ELEMENTS (aaaa));
  // "aaaaa": aa aa a</w> -> no (aa, aa) merge; (aa, a</w>) gives aa aaa</w>
  static const int32_t aaaaa[] = { 516, 514, 515, 517 };
  g_assert_true (agc_tokenizer_encode (tokenizer, "aaaaa", CONTEXT, ids, &error));
  assert_ids (ids, aaaaa, G_N_ELEMENTS (aaaaa));
  // a word of one byte is that byte's end symbol
  static const int32_t b[] = { 516, 256 + 'b', 517 };
  g_assert_true (agc_tokenizer_encode (tokenizer, "B", CONTEXT, ids, &error));
  assert_ids (ids, b, G_N_ELEMENTS (b));

  agc_tokenizer_free (tokenizer);
  g_free (vocab);
  g_free (merges);
  g_free (json);
  remove_tree (dir);
  g_free (dir);
}

/* ---- loading errors ------------------------------------------------------------ */

static void
test_missing_files (void)
{
  GError *error = NULL;
  char *merges = shared_vocab ("merges.txt");
  expect_load_error (agc_tokenizer_load_hf ("/nonexistent/vocab.json", merges, &error), &error,
                     AGC_ERROR_IO, "/nonexistent/vocab.json");
  char *vocab = shared_vocab ("vocab.json");
  expect_load_error (agc_tokenizer_load_hf (vocab, "/nonexistent/merges.txt", &error), &error,
                     AGC_ERROR_IO, "/nonexistent/merges.txt");
  expect_load_error (agc_tokenizer_load_openai ("/nonexistent/bpe.txt.gz", &error), &error,
                     AGC_ERROR_IO, "/nonexistent/bpe.txt.gz");
  expect_load_error (agc_tokenizer_load_dir ("/nonexistent-folder", &error), &error, AGC_ERROR_IO,
                     "/nonexistent-folder");
  char *dir = make_temp_dir ();
  expect_load_error (agc_tokenizer_load_dir (dir, &error), &error, AGC_ERROR_IO, dir);
  // vocab.json alone is not enough
  g_free (write_file (dir, "vocab.json", "{}", -1));
  expect_load_error (agc_tokenizer_load_dir (dir, &error), &error, AGC_ERROR_IO, "merges.txt");
  remove_tree (dir);
  g_free (dir);
  g_free (vocab);
  g_free (merges);
}

static void
test_bad_vocab_json (void)
{
  static const struct
  {
    const char *json;
    const char *needle;
  } cases[] = {
    { "{\"a\": 1,", "not valid JSON" },
    { "[1, 2]", "JSON object" },
    { "{\"a\": \"x\"}", "\"a\" is not an integer" },
    { "{\"a\": 0.5}", "\"a\" is not an integer" },
    { "{\"a\": 0, \"b\": 0}", "given to both" },
    { "{\"a\": 0, \"b\": 7}", "outside 0..1" },
    { "{\"a\": 0}", "no symbol" }, /* well-formed, but no byte symbols */
  };
  char *dir = make_temp_dir ();
  char *merges = shared_vocab ("merges.txt");
  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      char *vocab = write_file (dir, "vocab.json", cases[i].json, -1);
      GError *error = NULL;
      AgcTokenizer *tokenizer = agc_tokenizer_load_hf (vocab, merges, &error);
      g_assert_nonnull (error);
      g_assert_nonnull (strstr (error->message, vocab));
      expect_load_error (tokenizer, &error, AGC_ERROR_FORMAT, cases[i].needle);
      g_free (vocab);
    }
  g_free (merges);
  remove_tree (dir);
  g_free (dir);
}

static void
test_bad_merges_txt (void)
{
  static const struct
  {
    const char *text;
    const char *needle;
  } cases[] = {
    { "#version: 0.2\ni n\nbadline\n", "merges.txt:3: expected two symbols" },
    { "#version: 0.2\ni n\nt h e\n", "merges.txt:3: expected two symbols" },
    { "#version: 0.2\n\ni n\n", "merges.txt:2: expected two symbols" },
    { "#version: 0.2\ni n\n\xe2\x98\x83\xe2\x98\x83 x\n", "merges.txt:3: symbol \"\xe2\x98\x83\xe2\x98\x83\"" },
    { "#version: 0.2\ni n\nt \xff\n", "merges.txt:3: not valid UTF-8" },
  };
  char *dir = make_temp_dir ();
  char *vocab = shared_vocab ("vocab.json");
  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      char *merges = write_file (dir, "merges.txt", cases[i].text, -1);
      GError *error = NULL;
      expect_load_error (agc_tokenizer_load_hf (vocab, merges, &error), &error, AGC_ERROR_FORMAT,
                         cases[i].needle);
      g_free (merges);
    }
  g_free (vocab);
  remove_tree (dir);
  g_free (dir);
}

static void
test_bad_openai_file (void)
{
  char *dir = make_temp_dir ();
  GError *error = NULL;
  char *plain = write_file (dir, "plain.txt.gz", "#version: 0.2\ni n\n", -1);
  expect_load_error (agc_tokenizer_load_openai (plain, &error), &error, AGC_ERROR_FORMAT, plain);
  char *short_gz = g_build_filename (dir, "short.txt.gz", NULL);
  write_gzip (short_gz, "#version: 0.2\ni n\nt h\n");
  expect_load_error (agc_tokenizer_load_openai (short_gz, &error), &error, AGC_ERROR_FORMAT,
                     "48894 merges");
  g_free (plain);
  g_free (short_gz);
  remove_tree (dir);
  g_free (dir);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/tokenizer/known-ids/hf", test_known_ids_hf);
  g_test_add_func ("/tokenizer/known-ids/openai", test_known_ids_openai);
  g_test_add_func ("/tokenizer/known-ids/dir", test_known_ids_dir);
  g_test_add_func ("/tokenizer/truncation", test_truncation);
  g_test_add_func ("/tokenizer/empty-and-special", test_empty_and_special);
  g_test_add_func ("/tokenizer/invalid-utf8", test_invalid_utf8);
  g_test_add_func ("/tokenizer/bpe-order", test_bpe_order);
  g_test_add_func ("/tokenizer/errors/missing-files", test_missing_files);
  g_test_add_func ("/tokenizer/errors/vocab-json", test_bad_vocab_json);
  g_test_add_func ("/tokenizer/errors/merges-txt", test_bad_merges_txt);
  g_test_add_func ("/tokenizer/errors/openai-file", test_bad_openai_file);
  return g_test_run ();
}
