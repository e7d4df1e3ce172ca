/* tokenizer.c — the CLIP byte-level BPE tokenizer (REFERENCE.md §3).
 *
 * A word is kept as an array of vocabulary ids, not strings: every symbol a
 * merge can produce is in the vocabulary, so a merge is a pair of ids ->
 * (rank, id of the joined symbol), looked up in an open-addressing table.
 * Words already seen are cached, because prompts repeat the same words.
 *
 * The pre-tokeniser is OpenAI's pattern, matched case-insensitively by
 * Python's regex module:
 *   <\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+
 * written out by hand with GLib's Unicode tables.  Characters no alternative
 * matches (whitespace) are dropped. */
#include "text/tokenizer.h"

#include "agriclip.h"
#include "support/json-file.h"
#include "support/regular-file.h"
#include "text/text-clean.h"

#include <gio/gio.h>
#include <json-glib/json-glib.h>
#include <string.h>

#define N_OPENAI_MERGES 48894 /* 49152 - 256 - 2: the merges CLIP uses of the 16e6 file */
#define NO_RANK G_MAXINT32
#define MERGES_MAX_BYTES ((gsize) 64 << 20) /* CLIP's merges.txt is 0.5 MB */
#define CACHE_MAX_WORDS 65536 /* then the cache starts over: bounded memory */
#define CACHE_MAX_BYTES 64     /* longer words are rare and not worth keeping */

static const char SOT[] = "<|startoftext|>";
static const char EOT[] = "<|endoftext|>";

/* One slot of the merge table; rank < 0 marks a free slot. */
typedef struct
{
  guint64 pair; /* first id << 32 | second id */
  int32_t rank;
  int32_t id; /* the joined symbol */
} Merge;

struct AgcTokenizer
{
  GHashTable *vocab; /* symbol (UTF-8, owned) -> GINT_TO_POINTER (id) */
  int n_vocab;
  int32_t byte_ids[256];     /* each byte as a symbol inside a word */
  int32_t byte_end_ids[256]; /* the same at the end of a word: symbol + "</w>" */
  Merge *merges;             /* [merge_mask + 1] */
  guint64 merge_mask;
  int32_t sot;
  int32_t eot;
  /* The only state that changes after loading, hence the lock. */
  GMutex cache_lock;
  GHashTable *cache; /* word bytes (owned) -> int32_t[1 + n]: n, then the ids */
};

/* A merges line while loading: two symbols pointing into the file's text. */
typedef struct
{
  const char *first;
  const char *second;
  int line;
} MergeText;

/* ---- GPT-2's byte <-> unicode table -------------------------------------- */

/* Printable Latin-1 bytes stand for themselves; the others, in byte order,
 * for U+0100 onwards, so that no symbol contains whitespace or controls. */
static gboolean
byte_is_printable (int b)
{
  return (b >= '!' && b <= '~') || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
}

static void
byte_symbols (gunichar symbols[256])
{
  int n_shifted = 0;
  for (int b = 0; b < 256; b++)
    symbols[b] = byte_is_printable (b) ? (gunichar) b : (gunichar) (256 + n_shifted++);
}

/* ---- tokenizer object ---------------------------------------------------- */

static AgcTokenizer *
tokenizer_new (void)
{
  AgcTokenizer *tokenizer = g_new0 (AgcTokenizer, 1);
  tokenizer->vocab = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  tokenizer->cache = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  g_mutex_init (&tokenizer->cache_lock);
  return tokenizer;
}

void
agc_tokenizer_free (AgcTokenizer *tokenizer)
{
  if (!tokenizer)
    return;
  g_hash_table_destroy (tokenizer->vocab);
  g_hash_table_destroy (tokenizer->cache);
  g_mutex_clear (&tokenizer->cache_lock);
  g_free (tokenizer->merges);
  g_free (tokenizer);
}

int32_t
agc_tokenizer_sot (const AgcTokenizer *tokenizer)
{
  g_return_val_if_fail (tokenizer != NULL, -1);
  return tokenizer->sot;
}

int32_t
agc_tokenizer_eot (const AgcTokenizer *tokenizer)
{
  g_return_val_if_fail (tokenizer != NULL, -1);
  return tokenizer->eot;
}

int
agc_tokenizer_vocab_size (const AgcTokenizer *tokenizer)
{
  g_return_val_if_fail (tokenizer != NULL, 0);
  return tokenizer->n_vocab;
}

static gboolean
vocab_lookup (const AgcTokenizer *tokenizer, const char *symbol, int32_t *id)
{
  gpointer value;
  if (!g_hash_table_lookup_extended (tokenizer->vocab, symbol, NULL, &value))
    return FALSE;
  *id = GPOINTER_TO_INT (value);
  return TRUE;
}

/* ---- merge table ---------------------------------------------------------- */

static guint64
pair_of (int32_t first, int32_t second)
{
  return (guint64) (guint32) first << 32 | (guint32) second;
}

static guint64
pair_hash (guint64 pair)
{
  pair *= G_GUINT64_CONSTANT (0x9e3779b97f4a7c15);
  return pair ^ (pair >> 29);
}

static const Merge *
find_merge (const AgcTokenizer *tokenizer, int32_t first, int32_t second)
{
  guint64 pair = pair_of (first, second);
  for (guint64 i = pair_hash (pair) & tokenizer->merge_mask;; i = (i + 1) & tokenizer->merge_mask)
    {
      const Merge *slot = &tokenizer->merges[i];
      if (slot->rank < 0)
        return NULL;
      if (slot->pair == pair)
        return slot;
    }
}

static int32_t
merge_rank (const AgcTokenizer *tokenizer, int32_t first, int32_t second)
{
  const Merge *merge = find_merge (tokenizer, first, second);
  return merge ? merge->rank : NO_RANK;
}

/* A pair listed twice keeps its later rank, as Python's dict(zip(merges,
 * range(n))) does. */
static void
insert_merge (AgcTokenizer *tokenizer, int32_t first, int32_t second, int32_t rank, int32_t id)
{
  guint64 pair = pair_of (first, second);
  guint64 i = pair_hash (pair) & tokenizer->merge_mask;
  while (tokenizer->merges[i].rank >= 0 && tokenizer->merges[i].pair != pair)
    i = (i + 1) & tokenizer->merge_mask;
  tokenizer->merges[i] = (Merge){ pair, rank, id };
}

/* ---- loading -------------------------------------------------------------- */

static int
line_of_offset (const char *text, const char *at)
{
  int line = 1;
  for (const char *p = text; p < at; p++)
    line += *p == '\n';
  return line;
}

static gboolean
check_utf8 (const char *text, gsize length, const char *path, GError **error)
{
  const char *bad;
  if (g_utf8_validate (text, length, &bad))
    return TRUE;
  g_set_error (error, AGC_ERROR, AGC_ERROR_FORMAT, "%s:%d: not valid UTF-8", path,
               line_of_offset (text, bad));
  return FALSE;
}

/* Cuts text into lines in place (on '\n'); returns them, NULL-terminated. */
static char **
split_lines (char *text, int *n_lines)
{
  GPtrArray *lines = g_ptr_array_new ();
  for (char *p = text;;)
    {
      g_ptr_array_add (lines, p);
      char *newline = strchr (p, '\n');
      if (!newline)
        break;
      *newline = '\0';
      p = newline + 1;
    }
  *n_lines = lines->len;
  g_ptr_array_add (lines, NULL);
  return (char **) g_ptr_array_free (lines, FALSE);
}

static gboolean
is_merge_space (char c)
{
  return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f';
}

/* Splits a merges line in place into exactly two symbols. */
static gboolean
parse_merge (char *line, int line_number, const char *path, MergeText *merge, GError **error)
{
  char *fields[2] = { NULL, NULL };
  int n_fields = 0;
  for (char *p = line; *p;)
    {
      if (is_merge_space (*p))
        {
          *p++ = '\0';
          continue;
        }
      if (n_fields < 2)
        fields[n_fields] = p;
      n_fields++;
      while (*p && !is_merge_space (*p))
        p++;
    }
  if (n_fields != 2)
    {
      g_set_error (error, AGC_ERROR, AGC_ERROR_FORMAT,
                   "%s:%d: expected two symbols separated by a space, found %d", path,
                   line_number, n_fields);
      return FALSE;
    }
  *merge = (MergeText){ fields[0], fields[1], line_number };
  return TRUE;
}

/* Every symbol of the vocabulary is a byte, a special token or the result of
 * a merge: a truncated or empty merges.txt would otherwise load and give
 * other token ids (each word left in smaller pieces). */
static gboolean
check_every_symbol_made (const AgcTokenizer *tokenizer, int n_merges, const char *merges_path,
                         const char *vocab_path, GError **error)
{
  g_autofree gboolean *made = g_new0 (gboolean, MAX (tokenizer->n_vocab, 1));
  for (int b = 0; b < 256; b++)
    made[tokenizer->byte_ids[b]] = made[tokenizer->byte_end_ids[b]] = TRUE;
  made[tokenizer->sot] = made[tokenizer->eot] = TRUE;
  int n_base = 0;
  for (int id = 0; id < tokenizer->n_vocab; id++)
    n_base += made[id];
  for (guint64 i = 0; i <= tokenizer->merge_mask; i++)
    if (tokenizer->merges[i].rank >= 0)
      made[tokenizer->merges[i].id] = TRUE;
  int n_made = 0;
  for (int id = 0; id < tokenizer->n_vocab; id++)
    n_made += made[id];
  if (n_made == tokenizer->n_vocab)
    return TRUE;
  GHashTableIter iter;
  gpointer symbol = NULL, id = NULL;
  g_hash_table_iter_init (&iter, tokenizer->vocab);
  while (g_hash_table_iter_next (&iter, &symbol, &id) && made[GPOINTER_TO_INT (id)])
    ;
  g_set_error (error, AGC_ERROR, AGC_ERROR_FORMAT,
               "%s: its %d merges make %d of the %d merged symbols of %s (none makes \"%s\"): "
               "truncated, or not that vocabulary's merges",
               merges_path, n_merges, n_made - n_base, tokenizer->n_vocab - n_base, vocab_path,
               (const char *) symbol);
  return FALSE;
}

/* Looks up every merge's symbols and joined symbol in the vocabulary and
 * fills the merge table; rank = position in the list. */
static gboolean
add_merges (AgcTokenizer *tokenizer, const MergeText *merges, int n_merges,
            const char *merges_path, const char *vocab_path, GError **error)
{
  guint64 capacity = 16;
  while (capacity < 2 * (guint64) n_merges)
    capacity *= 2;
  tokenizer->merge_mask = capacity - 1;
  tokenizer->merges = g_new (Merge, capacity);
  for (guint64 i = 0; i < capacity; i++)
    tokenizer->merges[i].rank = -1;

  GString *joined = g_string_new (NULL);
  for (int rank = 0; rank < n_merges; rank++)
    {
      const MergeText *merge = &merges[rank];
      int32_t first = 0, second = 0, id = 0;
      g_string_assign (joined, merge->first);
      g_string_append (joined, merge->second);
      const char *unknown = !vocab_lookup (tokenizer, merge->first, &first) ? merge->first
                            : !vocab_lookup (tokenizer, merge->second, &second) ? merge->second
                            : !vocab_lookup (tokenizer, joined->str, &id) ? joined->str
                                                                         : NULL;
      if (unknown)
        {
          g_set_error (error, AGC_ERROR, AGC_ERROR_FORMAT, "%s:%d: symbol \"%s\" is not in %s",
                       merges_path, merge->line, unknown, vocab_path);
          g_string_free (joined, TRUE);
          return FALSE;
        }
      insert_merge (tokenizer, first, second, rank, id);
    }
  g_string_free (joined, TRUE);
  return check_every_symbol_made (tokenizer, n_merges, merges_path, vocab_path, error);
}

/* The ids every word is built from, and the two special tokens. */
static gboolean
find_base_symbols (AgcTokenizer *tokenizer, const char *vocab_path, GError **error)
{
  gunichar symbols[256];
  byte_symbols (symbols);
  for (int b = 0; b < 256; b++)
    {
      char symbol[16];
      int len = g_unichar_to_utf8 (symbols[b], symbol);
      strcpy (symbol + len, "</w>");
      gboolean found = vocab_lookup (tokenizer, symbol, &tokenizer->byte_end_ids[b]);
      symbol[len] = '\0';
      if (!found || !vocab_lookup (tokenizer, symbol, &tokenizer->byte_ids[b]))
        {
          g_set_error (error, AGC_ERROR, AGC_ERROR_FORMAT,
                       "%s: no symbol \"%s\" or \"%s</w>\" for byte 0x%02x", vocab_path, symbol,
                       symbol, b);
          return FALSE;
        }
    }
  if (!vocab_lookup (tokenizer, SOT, &tokenizer->sot)
      || !vocab_lookup (tokenizer, EOT, &tokenizer->eot))
    {
      g_set_error (error, AGC_ERROR, AGC_ERROR_FORMAT, "%s: no %s or %s token", vocab_path, SOT,
                   EOT);
      return FALSE;
    }
  return TRUE;
}

/* vocab.json: one JSON object, symbol -> id, the ids 0 .. n-1 each once. */
static gboolean
load_vocab_json (AgcTokenizer *tokenizer, const char *path, GError **error)
{
  g_autoptr (JsonParser) parser = json_parser_new ();
  if (!agc_json_parse_file (parser, path, NULL, error))
    return FALSE;
  JsonNode *root = json_parser_get_root (parser);
  if (!root || !JSON_NODE_HOLDS_OBJECT (root))
    {
      g_set_error (error, AGC_ERROR, AGC_ERROR_FORMAT,
                   "%s: expected a JSON object mapping symbols to ids", path);
      return FALSE;
    }

  JsonObject *object = json_node_get_object (root);
  int n = json_object_get_size (object);
  const char **by_id = g_new0 (const char *, n > 0 ? n : 1);
  gboolean ok = TRUE;
  JsonObjectIter iter;
  const char *symbol;
  JsonNode *node;
  json_object_iter_init (&iter, object);
  while (ok && json_object_iter_next (&iter, &symbol, &node))
    {
      if (!JSON_NODE_HOLDS_VALUE (node) || json_node_get_value_type (node) != G_TYPE_INT64)
        {
          g_set_error (error, AGC_ERROR, AGC_ERROR_FORMAT,
                       "%s: the id of \"%s\" is not an integer", path, symbol);
          ok = FALSE;
        }
      else if (json_node_get_int (node) < 0 || json_node_get_int (node) >= n)
        {
          g_set_error (error, AGC_ERROR, AGC_ERROR_FORMAT,
                       "%s: the id %" G_GINT64_FORMAT " of \"%s\" is outside 0..%d", path,
                       json_node_get_int (node), symbol, n - 1);
          ok = FALSE;
        }
      else if (by_id[json_node_get_int (node)])
        {
          g_set_error (error, AGC_ERROR, AGC_ERROR_FORMAT,
                       "%s: the id %" G_GINT64_FORMAT " is given to both \"%s\" and \"%s\"", path,
                       json_node_get_int (node), by_id[json_node_get_int (node)], symbol);
          ok = FALSE;
        }
      else
        {
          int id = json_node_get_int (node);
          by_id[id] = symbol;
          g_hash_table_insert (tokenizer->vocab, g_strdup (symbol), GINT_TO_POINTER (id));
        }
    }
  g_free (by_id);
  tokenizer->n_vocab = n;
  return ok;
}

AgcTokenizer *
agc_tokenizer_load_hf (const char *vocab_json_path, const char *merges_txt_path, GError **error)
{
  g_return_val_if_fail (vocab_json_path != NULL && merges_txt_path != NULL, NULL);

  AgcTokenizer *tokenizer = tokenizer_new ();
  g_autofree char *text = NULL;
  g_autofree char **lines = NULL; // into text
  g_autofree MergeText *merges = NULL;
  gsize length;
  if (!load_vocab_json (tokenizer, vocab_json_path, error)
      || !find_base_symbols (tokenizer, vocab_json_path, error))
    goto fail;
  if (!agc_read_regular_file (merges_txt_path, MERGES_MAX_BYTES, &text, &length, error))
    goto fail;
  if (!check_utf8 (text, length, merges_txt_path, error))
    goto fail;

  // a "#version: 0.2" header, then one merge per line; blank lines at the end are ignored
  int n_lines;
  lines = split_lines (text, &n_lines);
  int first = lines[0] && g_str_has_prefix (lines[0], "#version") ? 1 : 0;
  int last = n_lines;
  while (last > first && g_strstrip (lines[last - 1])[0] == '\0')
    last--;
  merges = g_new (MergeText, MAX (last - first, 1));
  for (int i = first; i < last; i++)
    if (!parse_merge (lines[i], i + 1, merges_txt_path, &merges[i - first], error))
      goto fail;
  if (!add_merges (tokenizer, merges, last - first, merges_txt_path, vocab_json_path, error))
    goto fail;
  return tokenizer;

fail:
  agc_tokenizer_free (tokenizer);
  return NULL;
}

/* The whole decompressed content of a gzip file, NUL-terminated. */
static char *
read_gzip (const char *path, gsize *length, GError **error)
{
  char *packed;
  gsize packed_length;
  if (!agc_read_regular_file (path, MERGES_MAX_BYTES, &packed, &packed_length, error))
    return NULL;
  GError *local = NULL;
  GInputStream *raw = g_memory_input_stream_new_from_data (packed, (gssize) packed_length, g_free);
  GZlibDecompressor *gunzip = g_zlib_decompressor_new (G_ZLIB_COMPRESSOR_FORMAT_GZIP);
  GInputStream *in = g_converter_input_stream_new (G_INPUT_STREAM (raw), G_CONVERTER (gunzip));
  GByteArray *bytes = g_byte_array_new ();
  guint8 chunk[65536];
  gssize n;
  while ((n = g_input_stream_read (in, chunk, sizeof chunk, NULL, &local)) > 0
         && bytes->len <= MERGES_MAX_BYTES)
    g_byte_array_append (bytes, chunk, n);
  if (n > 0)
    n = -1, local = g_error_new (G_IO_ERROR, G_IO_ERROR_FAILED, "more than %d MB unpacked",
                                 (int) (MERGES_MAX_BYTES >> 20));
  g_object_unref (in);
  g_object_unref (gunzip);
  g_object_unref (raw);
  if (n < 0)
    {
      g_set_error (error, AGC_ERROR, AGC_ERROR_FORMAT, "%s: not a readable gzip file (%s)", path,
                   local->message);
      g_error_free (local);
      g_byte_array_free (bytes, TRUE);
      return NULL;
    }
  *length = bytes->len;
  g_byte_array_append (bytes, (const guint8 *) "", 1);
  return (char *) g_byte_array_free (bytes, FALSE);
}

/* OpenAI's layout: lines 1 .. 48894 of the file are the merges; the
 * vocabulary is the 256 byte symbols, the same with "</w>", each merge's
 * joined symbol, then the two special tokens. */
static void
build_openai_vocab (AgcTokenizer *tokenizer, const MergeText *merges, int n_merges)
{
  gunichar symbols[256];
  byte_symbols (symbols);
  int id = 0;
  for (int pass = 0; pass < 2; pass++)
    for (int printable = 1; printable >= 0; printable--) // printable bytes come first
      for (int b = 0; b < 256; b++)
        if (byte_is_printable (b) == printable)
          {
            char symbol[16];
            symbol[g_unichar_to_utf8 (symbols[b], symbol)] = '\0';
            char *key = g_strconcat (symbol, pass ? "</w>" : "", NULL);
            g_hash_table_insert (tokenizer->vocab, key, GINT_TO_POINTER (id++));
          }
  // a repeated symbol keeps its last id, as Python's dict(zip(vocab, ids)) does
  for (int i = 0; i < n_merges; i++)
    g_hash_table_insert (tokenizer->vocab, g_strconcat (merges[i].first, merges[i].second, NULL),
                         GINT_TO_POINTER (id++));
  g_hash_table_insert (tokenizer->vocab, g_strdup (SOT), GINT_TO_POINTER (id++));
  g_hash_table_insert (tokenizer->vocab, g_strdup (EOT), GINT_TO_POINTER (id++));
  tokenizer->n_vocab = id;
}

AgcTokenizer *
agc_tokenizer_load_openai (const char *bpe_gz_path, GError **error)
{
  g_return_val_if_fail (bpe_gz_path != NULL, NULL);

  gsize length;
  g_autofree char *text = read_gzip (bpe_gz_path, &length, error);
  if (!text)
    return NULL;
  AgcTokenizer *tokenizer = tokenizer_new ();
  g_autofree char **lines = NULL; // into text
  g_autofree MergeText *merges = NULL;
  if (!check_utf8 (text, length, bpe_gz_path, error))
    goto fail;
  int n_lines;
  lines = split_lines (text, &n_lines);
  if (n_lines < 1 + N_OPENAI_MERGES)
    {
      g_set_error (error, AGC_ERROR, AGC_ERROR_FORMAT,
                   "%s: %d lines, but CLIP's vocabulary needs a header and %d merges",
                   bpe_gz_path, n_lines, N_OPENAI_MERGES);
      goto fail;
    }
  merges = g_new (MergeText, N_OPENAI_MERGES);
  for (int i = 0; i < N_OPENAI_MERGES; i++)
    if (!parse_merge (lines[1 + i], 2 + i, bpe_gz_path, &merges[i], error))
      goto fail;
  build_openai_vocab (tokenizer, merges, N_OPENAI_MERGES);
  if (!find_base_symbols (tokenizer, bpe_gz_path, error)
      || !add_merges (tokenizer, merges, N_OPENAI_MERGES, bpe_gz_path, bpe_gz_path, error))
    goto fail;
  return tokenizer;

fail:
  agc_tokenizer_free (tokenizer);
  return NULL;
}

AgcTokenizer *
agc_tokenizer_load_dir (const char *dir, GError **error)
{
  g_return_val_if_fail (dir != NULL, NULL);

  if (!g_file_test (dir, G_FILE_TEST_IS_DIR))
    {
      g_set_error (error, AGC_ERROR, AGC_ERROR_IO, "%s: no such folder", dir);
      return NULL;
    }
  char *vocab = g_build_filename (dir, "vocab.json", NULL);
  char *merges = g_build_filename (dir, "merges.txt", NULL);
  char *bpe = g_build_filename (dir, "bpe_simple_vocab_16e6.txt.gz", NULL);
  AgcTokenizer *tokenizer = NULL;
  if (g_file_test (vocab, G_FILE_TEST_EXISTS) && g_file_test (merges, G_FILE_TEST_EXISTS))
    tokenizer = agc_tokenizer_load_hf (vocab, merges, error);
  else if (g_file_test (bpe, G_FILE_TEST_EXISTS))
    tokenizer = agc_tokenizer_load_openai (bpe, error);
  else
    g_set_error (error, AGC_ERROR, AGC_ERROR_IO,
                 "%s: no tokenizer files (looked for vocab.json + merges.txt, and for "
                 "bpe_simple_vocab_16e6.txt.gz)",
                 dir);
  g_free (vocab);
  g_free (merges);
  g_free (bpe);
  return tokenizer;
}

/* ---- pre-tokeniser -------------------------------------------------------- */

static gboolean
is_letter (gunichar c) /* \p{L} */
{
  switch (g_unichar_type (c))
    {
    case G_UNICODE_UPPERCASE_LETTER:
    case G_UNICODE_LOWERCASE_LETTER:
    case G_UNICODE_TITLECASE_LETTER:
    case G_UNICODE_MODIFIER_LETTER:
    case G_UNICODE_OTHER_LETTER:
      return TRUE;
    default:
      return FALSE;
    }
}

static gboolean
is_number (gunichar c) /* \p{N} */
{
  switch (g_unichar_type (c))
    {
    case G_UNICODE_DECIMAL_NUMBER:
    case G_UNICODE_LETTER_NUMBER:
    case G_UNICODE_OTHER_NUMBER:
      return TRUE;
    default:
      return FALSE;
    }
}

/* [^\s\p{L}\p{N}] under IGNORECASE.  U+0345 COMBINING GREEK YPOGEGRAMMENI is
 * the one exception (checked over all code points): its case variants are
 * letters, so the regex module matches it by neither class and drops it. */
static gboolean
is_other (gunichar c)
{
  return !is_letter (c) && !is_number (c) && !agc_unichar_is_white_space (c) && c != 0x0345;
}

/* Whether c matches the ASCII pattern character x ignoring case, as the
 * regex module does: U+017F long s folds to s as well. */
static gboolean
same_ignoring_case (gunichar c, char x)
{
  if (c == (guchar) x)
    return TRUE;
  if (!g_ascii_islower (x))
    return FALSE;
  return c == (guchar) g_ascii_toupper (x) || (x == 's' && c == 0x17f);
}

/* The length of the match of an ASCII pattern at p, or 0. */
static size_t
match_ignoring_case (const char *p, const char *pattern)
{
  const char *q = p;
  for (; *pattern; pattern++, q = g_utf8_next_char (q))
    if (!*q || !same_ignoring_case (g_utf8_get_char (q), *pattern))
      return 0;
  return q - p;
}

/* The next pre-token at or after p: sets *start and *len and returns the
 * position after it, or NULL when the text has no more tokens. */
static const char *
next_pretoken (const char *p, const char **start, size_t *len)
{
  static const char *const specials_and_contractions[] = {
    SOT, EOT, "'s", "'t", "'re", "'ve", "'m", "'ll", "'d",
  };
  for (; *p; p = g_utf8_next_char (p))
    {
      if (*p == '<' || *p == '\'')
        for (gsize i = 0; i < G_N_ELEMENTS (specials_and_contractions); i++)
          if ((*len = match_ignoring_case (p, specials_and_contractions[i])) > 0)
            {
              *start = p;
              return p + *len;
            }
      gunichar c = g_utf8_get_char (p);
      const char *end = g_utf8_next_char (p);
      if (is_letter (c) || is_other (c)) // a run of the same class
        {
          gboolean (*same_class) (gunichar) = is_letter (c) ? is_letter : is_other;
          while (*end && same_class (g_utf8_get_char (end)))
            end = g_utf8_next_char (end);
        }
      else if (!is_number (c)) // whitespace: no alternative matches
        continue;
      *start = p;
      *len = end - p;
      return end;
    }
  return NULL;
}

/* ---- byte-pair encoding --------------------------------------------------- */

/* Merges word[n] in place, lowest rank first, every non-overlapping
 * occurrence left to right, as OpenAI's bpe() does; returns the new length.
 * rank[i] is the rank of (word[i], word[i + 1]); after a merge only pairs
 * touching a new symbol (fresh) are looked up again. */
static int
bpe (const AgcTokenizer *tokenizer, int32_t *word, int32_t *rank, gboolean *fresh, int n)
{
  for (int i = 0; i + 1 < n; i++)
    rank[i] = merge_rank (tokenizer, word[i], word[i + 1]);
  while (n > 1)
    {
      int best = 0;
      for (int i = 1; i + 1 < n; i++)
        if (rank[i] < rank[best])
          best = i;
      if (rank[best] == NO_RANK)
        break;
      int32_t first = word[best], second = word[best + 1];
      int32_t joined = find_merge (tokenizer, first, second)->id;
      int j = 0;
      for (int i = 0; i < n; j++)
        if (i + 1 < n && word[i] == first && word[i + 1] == second)
          {
            word[j] = joined;
            fresh[j] = TRUE;
            i += 2;
          }
        else
          {
            word[j] = word[i];
            rank[j] = i + 1 < n ? rank[i] : NO_RANK;
            fresh[j] = FALSE;
            i++;
          }
      n = j;
      for (int i = 0; i + 1 < n; i++)
        if (fresh[i] || fresh[i + 1])
          rank[i] = merge_rank (tokenizer, word[i], word[i + 1]);
    }
  return n;
}

/* The ids of one pre-token: int32_t[1 + n] holding n, then the ids. */
static int32_t *
encode_word (const AgcTokenizer *tokenizer, const char *bytes, size_t len)
{
  // OpenAI's cache holds exactly these two spellings; "<|ſtartoftext|>" goes through BPE
  if ((len == strlen (SOT) && memcmp (bytes, SOT, len) == 0)
      || (len == strlen (EOT) && memcmp (bytes, EOT, len) == 0))
    {
      int32_t *ids = g_new (int32_t, 2);
      ids[0] = 1;
      ids[1] = len == strlen (SOT) ? tokenizer->sot : tokenizer->eot;
      return ids;
    }
  int32_t *ids = g_new (int32_t, 1 + len);
  int32_t *rank = g_new (int32_t, len);
  gboolean *fresh = g_new (gboolean, len);
  for (size_t i = 0; i < len; i++)
    ids[1 + i] = (i + 1 < len ? tokenizer->byte_ids : tokenizer->byte_end_ids)[(guint8) bytes[i]];
  ids[0] = bpe (tokenizer, ids + 1, rank, fresh, len);
  g_free (rank);
  g_free (fresh);
  return ids;
}

/* Appends ids (n, then the ids) to out[n], at most up to out[limit - 1];
 * returns the new n. */
static int
append_ids (int32_t *out, int n, int limit, const int32_t *ids)
{
  for (int i = 0; i < ids[0] && n < limit; i++)
    out[n++] = ids[1 + i];
  return n;
}

/* append_ids for one pre-token, through the cache. */
static int
append_word (const AgcTokenizer *tokenizer, const char *bytes, size_t len, int32_t *out, int n,
             int limit)
{
  if (len > CACHE_MAX_BYTES)
    {
      int32_t *ids = encode_word (tokenizer, bytes, len);
      n = append_ids (out, n, limit, ids);
      g_free (ids);
      return n;
    }
  GMutex *lock = (GMutex *) &tokenizer->cache_lock;
  char *key = g_strndup (bytes, len);
  g_mutex_lock (lock);
  const int32_t *cached = g_hash_table_lookup (tokenizer->cache, key);
  if (cached)
    n = append_ids (out, n, limit, cached);
  g_mutex_unlock (lock);
  if (cached)
    {
      g_free (key);
      return n;
    }

  int32_t *ids = encode_word (tokenizer, bytes, len);
  n = append_ids (out, n, limit, ids);
  g_mutex_lock (lock);
  if (g_hash_table_size (tokenizer->cache) >= CACHE_MAX_WORDS)
    g_hash_table_remove_all (tokenizer->cache);
  g_hash_table_replace (tokenizer->cache, key, ids);
  g_mutex_unlock (lock);
  return n;
}

gboolean
agc_tokenizer_encode (const AgcTokenizer *tokenizer, const char *text, int context_length,
                      int32_t *ids, GError **error)
{
  g_return_val_if_fail (tokenizer != NULL && text != NULL && ids != NULL, FALSE);
  g_return_val_if_fail (context_length > 0, FALSE);

  char *clean = agc_text_clean (text, error);
  if (!clean)
    return FALSE;
  // [SOT] + tokens + [EOT], cut to context_length with the last id forced to EOT
  int n = 0;
  ids[n++] = tokenizer->sot;
  const char *p = clean, *start;
  size_t len;
  while (n < context_length && (p = next_pretoken (p, &start, &len)) != NULL)
    n = append_word (tokenizer, start, len, ids, n, context_length);
  if (n < context_length)
    ids[n++] = tokenizer->eot;
  else
    ids[context_length - 1] = tokenizer->eot;
  memset (ids + n, 0, (context_length - n) * sizeof *ids);
  g_free (clean);
  return TRUE;
}
