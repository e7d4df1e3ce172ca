/* model-files-dump.c — exposes agc_model_files_open (model-files.h: Hugging
 * Face, open_clip and OpenAI layouts) to the Python reference tests
 * (tests/reference/test_openai_names.py).
 *
 *   model-files-dump PATH OUT.bin
 *       prints, one per line, tab-separated:
 *         config  KEY  VALUE        every AgcClipConfig field ("vision.width",
 *                                   "text.act" is quick_gelu or gelu, …)
 *         preprocess  KEY  VALUE    shortest_edge, crop_width, crop_height,
 *                                   filter (bicubic, bilinear), mean, std
 *                                   (comma-separated, %.9g)
 *         folder  PATH              agc_model_files_folder
 *         tensor  NAME  DTYPE  SHAPE  OFFSET  N_BYTES
 *       for every Hugging Face-named tensor in order; its values converted
 *       to float32 are at OFFSET in OUT.bin.  DTYPE is the stored one, SHAPE
 *       comma-separated.
 * Errors go to stderr, prefixed "error: " with the error code's name, exit
 * status 1: "error: MODEL: …".
 */
#include "agriclip.h"
#include "models/model-files.h"

#include <stdio.h>

static void
print_tower (const char *tower, const AgcTowerConfig *c)
{
  printf ("config\t%s.width\t%d\n", tower, c->width);
  printf ("config\t%s.layers\t%d\n", tower, c->layers);
  printf ("config\t%s.heads\t%d\n", tower, c->heads);
  printf ("config\t%s.mlp_width\t%d\n", tower, c->mlp_width);
  printf ("config\t%s.layer_norm_eps\t%.9g\n", tower, c->layer_norm_eps);
  printf ("config\t%s.act\t%s\n", tower, c->act == AGC_ACT_QUICK_GELU ? "quick_gelu" : "gelu");
  printf ("config\t%s.vocab_size\t%d\n", tower, c->vocab_size);
  printf ("config\t%s.context_length\t%d\n", tower, c->context_length);
  printf ("config\t%s.image_size\t%d\n", tower, c->image_size);
  printf ("config\t%s.patch_size\t%d\n", tower, c->patch_size);
}

static const char *
code_name (int code)
{
  static const char *const names[] = { "IO", "FORMAT", "UNSUPPORTED", "MODEL", "INPUT",
                                       "CANCELLED" };
  return code >= 0 && code < (int) G_N_ELEMENTS (names) ? names[code] : "?";
}

int
main (int argc, char **argv)
{
  if (argc != 3)
    {
      fprintf (stderr, "usage: model-files-dump PATH OUT.bin\n");
      return 2;
    }
  GError *error = NULL;
  AgcWeights *weights = NULL;
  AgcClipConfig config;
  AgcPreprocess pre;
  if (!agc_model_files_open (argv[1], &weights, &config, &pre, &error))
    {
      fprintf (stderr, "error: %s: %s\n", code_name (error->code), error->message);
      g_error_free (error);
      return 1;
    }
  FILE *out = fopen (argv[2], "wb");
  if (out == NULL)
    {
      fprintf (stderr, "error: cannot write %s\n", argv[2]);
      agc_weights_free (weights);
      return 1;
    }

  printf ("config\tprojection_dim\t%d\n", config.projection_dim);
  print_tower ("text", &config.text);
  print_tower ("vision", &config.vision);
  printf ("preprocess\tshortest_edge\t%d\n", pre.shortest_edge);
  printf ("preprocess\tcrop_width\t%d\n", pre.crop_width);
  printf ("preprocess\tcrop_height\t%d\n", pre.crop_height);
  printf ("preprocess\tfilter\t%s\n", pre.filter == AGC_FILTER_BICUBIC ? "bicubic" : "bilinear");
  printf ("preprocess\tmean\t%.9g,%.9g,%.9g\n", pre.mean[0], pre.mean[1], pre.mean[2]);
  printf ("preprocess\tstd\t%.9g,%.9g,%.9g\n", pre.std[0], pre.std[1], pre.std[2]);
  char *folder = agc_model_files_folder (argv[1]);
  printf ("folder\t%s\n", folder);
  g_free (folder);

  guint64 offset = 0;
  int status = 0;
  for (int i = 0; i < agc_weights_n_tensors (weights) && status == 0; i++)
    {
      const AgcTensorView *tensor = agc_weights_tensor (weights, i);
      size_t n_bytes = (size_t) agc_tensor_n_elements (tensor) * sizeof (float);
      float *converted = g_malloc (MAX (n_bytes, 1));
      agc_tensor_to_f32 (tensor, converted);
      if (n_bytes > 0 && fwrite (converted, 1, n_bytes, out) != n_bytes)
        {
          fprintf (stderr, "error: cannot write %s\n", argv[2]);
          status = 1;
        }
      g_free (converted);
      printf ("tensor\t%s\t%s\t", tensor->name, agc_dtype_name (tensor->dtype));
      for (int d = 0; d < tensor->n_dims; d++)
        printf ("%s%" G_GINT64_FORMAT, d > 0 ? "," : "", tensor->shape[d]);
      printf ("\t%" G_GUINT64_FORMAT "\t%zu\n", offset, n_bytes);
      offset += n_bytes;
    }
  if (fclose (out) != 0 && status == 0)
    {
      fprintf (stderr, "error: cannot write %s\n", argv[2]);
      status = 1;
    }
  agc_weights_free (weights);
  return status;
}
