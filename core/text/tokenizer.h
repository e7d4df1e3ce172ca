/* tokenizer.h — the CLIP byte-level BPE tokenizer (REFERENCE.md §3).
 *
 * Loads the Hugging Face layout (vocab.json + merges.txt) or OpenAI's
 * bpe_simple_vocab_16e6.txt.gz, and encodes text exactly as OpenAI's
 * simple_tokenizer does: clean (NFC, quotes, HTML entities, whitespace,
 * lower case), pre-tokenise, byte-encode, merge by rank, wrap in
 * <|startoftext|> … <|endoftext|>, truncate and pad. */
#pragma once

#include "agriclip.h"

/* AgcTokenizer, agc_tokenizer_load_dir, agc_tokenizer_encode and
 * agc_tokenizer_free are public (agriclip.h, "tokenizers"). */

AgcTokenizer *agc_tokenizer_load_hf (const char *vocab_json_path, const char *merges_txt_path,
                                     GError **error);
AgcTokenizer *agc_tokenizer_load_openai (const char *bpe_gz_path, GError **error);

int32_t agc_tokenizer_sot (const AgcTokenizer *tokenizer); /* 49406 for CLIP */
int32_t agc_tokenizer_eot (const AgcTokenizer *tokenizer); /* 49407 for CLIP */
int agc_tokenizer_vocab_size (const AgcTokenizer *tokenizer);

