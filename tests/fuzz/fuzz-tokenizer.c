/* fuzz-tokenizer.c — libFuzzer harness for the tokenizer files: the input is
 * vocab.json, a NUL byte, then merges.txt (no NUL: both files are the
 * input).  A tokenizer that loads tokenizes a fixed text and the input's
 * own bytes.  Built and run by tests/fuzz/run.sh. */
#include "fuzz-common.h"

#include "text/tokenizer.h"

#include <string.h>

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  const uint8_t *nul = memchr (data, 0, size);
  size_t vocab_size = nul != NULL ? (size_t) (nul - data) : size;
  const uint8_t *merges = nul != NULL ? nul + 1 : data + size;
  size_t merges_size = size - (size_t) (merges - data);

  char *vocab_path = fuzz_write ("vocab.json", data, vocab_size);
  char *merges_path = fuzz_write ("merges.txt", merges, merges_size);
  GError *error = NULL;
  AgcTokenizer *tokenizer = agc_tokenizer_load_hf (vocab_path, merges_path, &error);
  if (tokenizer != NULL)
    {
      int32_t ids[77];
      char *text = g_strndup ((const char *) merges, MIN (merges_size, 256));
      const char *texts[] = { "a photo of a leaf with rust, 2 spots!", text };
      for (int i = 0; i < 2; i++)
        {
          if (!agc_tokenizer_encode (tokenizer, texts[i], 77, ids, &error))
            fuzz_check_failure (g_steal_pointer (&error));
          else
            for (int j = 0; j < 77; j++)
              if (ids[j] < 0 || ids[j] >= agc_tokenizer_vocab_size (tokenizer))
                __builtin_trap ();
        }
      g_free (text);
      agc_tokenizer_free (tokenizer);
    }
  else
    fuzz_check_failure (error);
  g_free (vocab_path);
  g_free (merges_path);
  return 0;
}
