/* tensor-dump.c — exposes checkpoint reading (agc_weights_open: safetensors,
 * PyTorch ZIP and TorchScript files, shard indexes) to the Python reference
 * tests (tests/reference/test_torch_checkpoint.py).
 *
 *   tensor-dump [--f32] FILE OUT.bin
 *       writes the bytes of every tensor, one after the other, to OUT.bin
 *       (as stored, or converted to float32 with --f32) and prints one line
 *       per tensor, in order: NAME \t DTYPE \t SHAPE \t OFFSET \t N_BYTES
 *       where SHAPE is comma-separated ("" for a scalar) and OFFSET, N_BYTES
 *       locate its bytes in OUT.bin.
 * Errors go to stderr, prefixed "error: ", exit status 1.
 */
#include "agriclip.h"
#include "formats/weights.h"

#include <stdio.h>
#include <string.h>

int
main (int argc, char **argv)
{
  gboolean f32 = argc > 1 && strcmp (argv[1], "--f32") == 0;
  if (argc != 3 + f32)
    {
      fprintf (stderr, "usage: tensor-dump [--f32] FILE OUT.bin\n");
      return 2;
    }
  const char *path = argv[1 + f32], *out_path = argv[2 + f32];

  GError *error = NULL;
  AgcWeights *weights = agc_weights_open (path, &error);
  if (weights == NULL)
    {
      fprintf (stderr, "error: %s\n", error->message);
      g_error_free (error);
      return 1;
    }
  FILE *out = fopen (out_path, "wb");
  if (out == NULL)
    {
      fprintf (stderr, "error: cannot write %s\n", out_path);
      agc_weights_free (weights);
      return 1;
    }
  guint64 offset = 0;
  for (int i = 0; i < agc_weights_n_tensors (weights); i++)
    {
      const AgcTensorView *tensor = agc_weights_tensor (weights, i);
      size_t n_bytes = tensor->n_bytes;
      const void *bytes = tensor->data;
      float *converted = NULL;
      if (f32)
        {
          n_bytes = (size_t) agc_tensor_n_elements (tensor) * sizeof (float);
          converted = g_malloc (MAX (n_bytes, 1));
          agc_tensor_to_f32 (tensor, converted);
          bytes = converted;
        }
      if (n_bytes > 0 && fwrite (bytes, 1, n_bytes, out) != n_bytes)
        {
          fprintf (stderr, "error: cannot write %s\n", out_path);
          return 1;
        }
      g_free (converted);
      printf ("%s\t%s\t", tensor->name, agc_dtype_name (tensor->dtype));
      for (int d = 0; d < tensor->n_dims; d++)
        printf ("%s%" G_GINT64_FORMAT, d > 0 ? "," : "", tensor->shape[d]);
      printf ("\t%" G_GUINT64_FORMAT "\t%zu\n", offset, n_bytes);
      offset += n_bytes;
    }
  fclose (out);
  agc_weights_free (weights);
  return 0;
}
