/* fuzz-safetensors.c — libFuzzer harness for the safetensors reader (its
 * header is JSON) and, on the same file, the adapter reader (its metadata
 * holds JSON): every tensor of a file that opens is converted to float32, so
 * that a view reaching outside the file shows up under ASan.  Built and run
 * by tests/fuzz/run.sh. */
#include "fuzz-common.h"

#include "formats/safetensors.h"
#include "formats/tensor.h"

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  char *path = fuzz_write ("model.safetensors", data, size);
  GError *error = NULL;
  AgcSafetensors *file = agc_safetensors_open (path, &error);
  if (file != NULL)
    {
      for (int i = 0; i < agc_safetensors_n_tensors (file); i++)
        {
          const AgcTensorView *tensor = agc_safetensors_tensor (file, i);
          if (agc_safetensors_find (file, tensor->name) == NULL)
            __builtin_trap ();
          if ((size_t) agc_tensor_n_elements (tensor) * agc_dtype_size (tensor->dtype)
              != tensor->n_bytes)
            __builtin_trap ();
          float *out = g_new (float, MAX (agc_tensor_n_elements (tensor), 1));
          agc_tensor_to_f32 (tensor, out);
          g_free (out);
        }
      agc_safetensors_free (file);
    }
  else
    fuzz_check_failure (g_steal_pointer (&error));

  AgcAdapter *adapter = agc_adapter_load (path, &error);
  if (adapter != NULL)
    agc_adapter_free (adapter);
  else
    fuzz_check_failure (g_steal_pointer (&error));
  g_free (path);
  return 0;
}
