/* int8-embed.c — runs a sequence of steps on one loaded model, so that the
 * Python tests (tests/reference/test_int8.py) can check that int8 mode and
 * adapters hold in any order:
 *
 *   int8-embed MODEL PIXELS.f32 STEP...
 *     PIXELS.f32  raw float32 [n, 3, S, S], already normalised
 *     int8        agc_model_set_int8 (TRUE)
 *     f32         agc_model_set_int8 (FALSE)
 *     adapter=F   agc_adapter_load + agc_model_apply_adapter
 *     kernel=K    agc_int8_force_kernel: avx2, avxvnni or avx512vnni (an
 *                 error where the CPU cannot run it)
 *     embed       prints one line: the n raw image embeddings (not
 *                 normalised), values separated by spaces, images by " | "
 *     hidden=K    prints one line: the residual stream [n, T, D] after the
 *                 first K blocks (agc_vision_tower_forward_hidden), images
 *                 separated by " | "
 *
 * Errors go to stderr, prefixed "error: ", exit status 1.
 */
#include "agriclip.h"
#include "kernels/gemm-int8.h"
#include "models/vit-encoder.h"

#include <stdio.h>
#include <string.h>

static int
fail_error (GError *error)
{
  fprintf (stderr, "error: %s\n", error->message);
  g_error_free (error);
  return 1;
}

static void
print_rows (const float *values, int n, size_t row_len)
{
  for (int i = 0; i < n; i++)
    for (size_t j = 0; j < row_len; j++)
      printf (j ? " %.9g" : (i ? " | %.9g" : "%.9g"), values[(size_t) i * row_len + j]);
  putchar ('\n');
}

static gboolean
embed (AgcModel *model, const float *pixels, int n, GError **error)
{
  int e = agc_model_embed_dim (model);
  float *out = g_new (float, (size_t) n * e);
  gboolean ok = agc_model_embed_pixels (model, pixels, n, FALSE, out, NULL, error);
  if (ok)
    print_rows (out, n, e);
  g_free (out);
  return ok;
}

static gboolean
hidden (AgcModel *model, const float *pixels, int n, const char *layers, GError **error)
{
  AgcVisionTower *tower = agc_model_vision_tower (model);
  char *end;
  guint64 k = g_ascii_strtoull (layers, &end, 10);
  if (tower == NULL || end == layers || *end != '\0'
      || k > (guint64) agc_vision_tower_config (tower)->layers)
    {
      g_set_error (error, AGC_ERROR, AGC_ERROR_INPUT, "hidden=%s: no such layer", layers);
      return FALSE;
    }
  int n_tokens = agc_vision_tower_n_tokens (tower), width = agc_vision_tower_config (tower)->width;
  size_t row_len = (size_t) n_tokens * width; // [T, D] per image
  float *out = g_new (float, (size_t) n * row_len);
  gboolean ok = agc_vision_tower_forward_hidden (tower, pixels, n, (int) k, out, error);
  if (ok)
    print_rows (out, n, row_len);
  g_free (out);
  return ok;
}

static gboolean
apply_adapter (AgcModel *model, const char *path, GError **error)
{
  AgcAdapter *adapter = agc_adapter_load (path, error);
  gboolean ok = adapter != NULL && agc_model_apply_adapter (model, adapter, error);
  agc_adapter_free (adapter);
  return ok;
}

static gboolean
force_kernel (const char *name, GError **error)
{
  static const struct
  {
    const char *name;
    AgcInt8Kernel kernel;
  } kernels[] = {
    { "avx2", AGC_INT8_KERNEL_AVX2 },
    { "avxvnni", AGC_INT8_KERNEL_AVXVNNI },
    { "avx512vnni", AGC_INT8_KERNEL_AVX512VNNI },
  };
  for (size_t i = 0; i < G_N_ELEMENTS (kernels); i++)
    if (strcmp (name, kernels[i].name) == 0)
      {
        if (agc_int8_force_kernel (kernels[i].kernel))
          return TRUE;
        g_set_error (error, AGC_ERROR, AGC_ERROR_UNSUPPORTED, "this CPU cannot run %s", name);
        return FALSE;
      }
  g_set_error (error, AGC_ERROR, AGC_ERROR_INPUT, "unknown kernel '%s'", name);
  return FALSE;
}

int
main (int argc, char **argv)
{
  if (argc < 4)
    {
      fprintf (stderr, "usage: int8-embed MODEL PIXELS.f32 (int8|f32|adapter=FILE|embed)...\n");
      return 2;
    }
  GError *error = NULL;
  AgcModel *model = agc_model_load (argv[1], &error);
  if (model == NULL)
    return fail_error (error);
  int s = agc_model_image_size (model);
  size_t image_bytes = (size_t) 3 * s * s * sizeof (float);
  char *pixels = NULL;
  gsize size = 0;
  int status = 0;
  if (!g_file_get_contents (argv[2], &pixels, &size, &error))
    status = fail_error (error);
  else if (size == 0 || size % image_bytes != 0)
    {
      fprintf (stderr, "error: %s: %zu bytes is not a whole number of images\n", argv[2],
               (size_t) size);
      status = 1;
    }
  int n = (int) (size / image_bytes);
  for (int i = 3; status == 0 && i < argc; i++)
    {
      const char *step = argv[i];
      gboolean ok;
      if (strcmp (step, "int8") == 0 || strcmp (step, "f32") == 0)
        ok = agc_model_set_int8 (model, step[0] == 'i', &error)
             && agc_model_get_int8 (model) == (step[0] == 'i');
      else if (g_str_has_prefix (step, "kernel="))
        ok = force_kernel (step + strlen ("kernel="), &error);
      else if (g_str_has_prefix (step, "adapter="))
        ok = apply_adapter (model, step + strlen ("adapter="), &error);
      else if (strcmp (step, "embed") == 0)
        ok = embed (model, (const float *) pixels, n, &error);
      else if (g_str_has_prefix (step, "hidden="))
        ok = hidden (model, (const float *) pixels, n, step + strlen ("hidden="), &error);
      else
        {
          fprintf (stderr, "error: unknown step '%s'\n", step);
          status = 2;
          break;
        }
      if (!ok)
        status = error != NULL ? fail_error (error) : (fprintf (stderr, "error: %s\n", step), 1);
    }
  g_free (pixels);
  agc_model_free (model);
  return status;
}
