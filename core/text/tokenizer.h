/* tokenizer.h — the CLIP byte-level BPE tokenizer (REFERENCE.md §3).
 *
 * Loads the Hugging Face layout (vocab.json + merges.txt) or OpenAI's
 * bpe_simple_vocab_16e6.txt.gz, and encodes text exactly as OpenAI's
 * simple_tokenizer does: clean (NFC, quotes, HTML entities, whitespace,
 * lower case), pre-tokenise, byte-encode, merge by rank, wrap in
 * <|startoftext|> … <|endoftext|>, truncate and pad. */
#pragma once

#include <glib.h>
#include <stdint.h>

typedef struct AgcTokenizer AgcTokenizer;

AgcTokenizer *agc_tokenizer_load_hf (const char *vocab_json_path, const char *merges_txt_path,
                                     GError **error);
AgcTokenizer *agc_tokenizer_load_openai (const char *bpe_gz_path, GError **error);
/* A model folder: vocab.json + merges.txt, else bpe_simple_vocab_16e6.txt.gz;
 * an AGC_ERROR_IO error naming the folder and the files looked for otherwise. */
AgcTokenizer *agc_tokenizer_load_dir (const char *dir, GError **error);
void agc_tokenizer_free (AgcTokenizer *tokenizer);

int32_t agc_tokenizer_sot (const AgcTokenizer *tokenizer); /* 49406 for CLIP */
int32_t agc_tokenizer_eot (const AgcTokenizer *tokenizer); /* 49407 for CLIP */
int agc_tokenizer_vocab_size (const AgcTokenizer *tokenizer);

/* ids[context_length]: SOT, the text's tokens, EOT, zeros.  A text too long
 * is truncated and its last id forced to EOT.  Invalid UTF-8 is an
 * AGC_ERROR_INPUT error. */
gboolean agc_tokenizer_encode (const AgcTokenizer *tokenizer, const char *text,
                               int context_length, int32_t *ids, GError **error);
