/* fuzz-checkpoint.c — libFuzzer harness for the ZIP reader and the PyTorch
 * checkpoint reader on the same input: every entry of an archive that opens
 * is read (CRC, inflate); a checkpoint that opens has every tensor converted
 * to float32, so that a view reaching outside the file shows up under ASan.
 * Built and run by tests/fuzz/run.sh. */
#include "agriclip.h"
#include "formats/torch-checkpoint.h"
#include "formats/zip-archive.h"

#include <stdint.h>

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  GBytes *bytes = g_bytes_new (data, size);
  GError *error = NULL;

  AgcZipArchive *archive = agc_zip_archive_new_from_bytes (bytes, "fuzz.zip", &error);
  if (archive != NULL)
    {
      for (int i = 0; i < agc_zip_archive_n_entries (archive); i++)
        {
          const AgcZipEntry *entry = agc_zip_archive_entry (archive, i);
          const guint8 *contents = agc_zip_archive_read (archive, entry, &error);
          if (contents != NULL && entry->size > 0)
            {
              volatile guint8 sink = contents[0] ^ contents[entry->size - 1];
              (void) sink;
            }
          g_clear_error (&error);
        }
      agc_zip_archive_free (archive);
    }
  g_clear_error (&error);

  AgcTorchCheckpoint *checkpoint = agc_torch_checkpoint_new_from_bytes (bytes, "fuzz.pt", &error);
  if (checkpoint != NULL)
    {
      for (int i = 0; i < agc_torch_checkpoint_n_tensors (checkpoint); i++)
        {
          const AgcTensorView *tensor = agc_torch_checkpoint_tensor (checkpoint, i);
          if (agc_torch_checkpoint_find (checkpoint, tensor->name) == NULL)
            __builtin_trap ();
          if ((size_t) agc_tensor_n_elements (tensor) * agc_dtype_size (tensor->dtype)
              != tensor->n_bytes)
            __builtin_trap ();
          float *out = g_new (float, MAX (agc_tensor_n_elements (tensor), 1));
          agc_tensor_to_f32 (tensor, out);
          g_free (out);
        }
      agc_torch_checkpoint_free (checkpoint);
    }
  else if (error == NULL || error->domain != AGC_ERROR)
    __builtin_trap (); // every failure must say why
  g_clear_error (&error);
  g_bytes_unref (bytes);
  return 0;
}
