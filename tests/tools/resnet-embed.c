/* resnet-embed.c — exposes the ResNet-50 backbone and the ImageNet
 * preprocessing to the Python reference tests (tests/reference/test_resnet.py).
 *
 *   resnet-embed [--prefix P] [--repeat N] WEIGHTS --raw IN.f32 BATCH HEIGHT WIDTH
 *       float32 pixels [BATCH, 3, HEIGHT, WIDTH] through the backbone
 *   resnet-embed [--prefix P] [--repeat N] WEIGHTS --image IN...
 *       the images, ImageNet-preprocessed at 224, through the backbone as one batch
 *   resnet-embed --preprocess SIZE IN OUT.f32
 *       ImageNet preprocessing alone: float32 [3, SIZE, SIZE]
 * The backbone modes print one line of 2048 features per image.  --repeat N
 * runs the forward N times and prints the mean "ms/image" on stderr.
 * Errors go to stderr, prefixed "error: ", exit status 1.
 */
#include "agriclip.h"
#include "images/preprocess.h"
#include "nn/resnet.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define IMAGE_SIZE 224

static int
fail (const char *message)
{
  fprintf (stderr, "error: %s\n", message);
  return 1;
}

static int
fail_error (GError *error)
{
  int status = fail (error->message);
  g_error_free (error);
  return status;
}

static int
usage (void)
{
  return fail ("usage: resnet-embed [--prefix P] [--repeat N] WEIGHTS --raw IN.f32 B H W\n"
               "       resnet-embed [--prefix P] [--repeat N] WEIGHTS --image IN...\n"
               "       resnet-embed --preprocess SIZE IN OUT.f32");
}

static gboolean
parse_int (const char *text, int *value)
{
  char *end = NULL;
  long v = strtol (text, &end, 10);
  if (end == text || *end != '\0' || v <= 0 || v > G_MAXINT)
    return FALSE;
  *value = (int) v;
  return TRUE;
}

static int
preprocess (int argc, char **argv)
{
  int size;
  if (argc != 5 || !parse_int (argv[2], &size))
    return usage ();
  GError *error = NULL;
  AgcImage *image = agc_image_load (argv[3], &error);
  if (image == NULL)
    return fail_error (error);
  AgcPreprocess config = agc_preprocess_imagenet_defaults (size);
  gsize n = (gsize) 3 * size * size;
  float *pixels = g_new (float, n);
  int status = 0;
  if (!agc_preprocess_image (&config, image, pixels, &error)
      || !g_file_set_contents (argv[4], (const char *) pixels, (gssize) (n * sizeof (float)),
                               &error))
    status = fail_error (error);
  g_free (pixels);
  agc_image_free (image);
  return status;
}

// pixels[batch, 3, height, width] from --raw or --image arguments
static float *
read_input (char **args, int n_args, gboolean raw, int *batch, int *height, int *width,
            GError **error)
{
  if (raw)
    {
      if (n_args != 4 || !parse_int (args[1], batch) || !parse_int (args[2], height)
          || !parse_int (args[3], width))
        {
          g_set_error_literal (error, AGC_ERROR, AGC_ERROR_INPUT, "--raw wants IN.f32 B H W");
          return NULL;
        }
      gchar *data;
      gsize length;
      if (!g_file_get_contents (args[0], &data, &length, error))
        return NULL;
      gsize want = (gsize) *batch * 3 * *height * *width * sizeof (float);
      if (length != want)
        {
          g_set_error (error, AGC_ERROR, AGC_ERROR_INPUT, "%s: %zu bytes, expected %zu",
                       args[0], length, want);
          g_free (data);
          return NULL;
        }
      return (float *) data;
    }
  if (n_args < 1)
    {
      g_set_error_literal (error, AGC_ERROR, AGC_ERROR_INPUT, "--image wants files");
      return NULL;
    }
  *batch = n_args, *height = IMAGE_SIZE, *width = IMAGE_SIZE;
  AgcPreprocess config = agc_preprocess_imagenet_defaults (IMAGE_SIZE);
  gsize per_image = (gsize) 3 * IMAGE_SIZE * IMAGE_SIZE;
  float *pixels = g_new (float, per_image * n_args);
  for (int i = 0; i < n_args; i++)
    {
      AgcImage *image = agc_image_load (args[i], error);
      gboolean ok = image != NULL
                    && agc_preprocess_image (&config, image, pixels + per_image * i, error);
      agc_image_free (image);
      if (!ok)
        {
          g_free (pixels);
          return NULL;
        }
    }
  return pixels;
}

int
main (int argc, char **argv)
{
  if (argc > 1 && strcmp (argv[1], "--preprocess") == 0)
    return preprocess (argc, argv);

  const char *prefix = "";
  int repeat = 0, i = 1;
  for (; i + 1 < argc && g_str_has_prefix (argv[i], "--"); i += 2)
    if (strcmp (argv[i], "--prefix") == 0)
      prefix = argv[i + 1];
    else if (strcmp (argv[i], "--repeat") != 0 || !parse_int (argv[i + 1], &repeat))
      return usage ();
  if (i + 2 > argc
      || (strcmp (argv[i + 1], "--raw") != 0 && strcmp (argv[i + 1], "--image") != 0))
    return usage ();
  gboolean raw = strcmp (argv[i + 1], "--raw") == 0;

  GError *error = NULL;
  int batch, height, width;
  float *pixels = read_input (argv + i + 2, argc - i - 2, raw, &batch, &height, &width, &error);
  if (pixels == NULL)
    return fail_error (error);
  AgcWeights *weights = agc_weights_open (argv[i], &error);
  AgcResNet *net = weights != NULL ? agc_resnet_load (weights, prefix, &error) : NULL;
  float *features = g_new (float, (gsize) batch * AGC_RESNET_FEATURES);
  int status = 0;
  if (net == NULL
      || !agc_resnet_forward (net, pixels, batch, height, width, features, &error))
    status = fail_error (error);
  else
    {
      gint64 start = g_get_monotonic_time ();
      for (int r = 0; r < repeat && status == 0; r++)
        if (!agc_resnet_forward (net, pixels, batch, height, width, features, &error))
          status = fail_error (error);
      if (repeat > 0 && status == 0)
        fprintf (stderr, "%.1f ms/image\n",
                 (g_get_monotonic_time () - start) / 1000.0 / repeat / batch);
      for (int b = 0; b < batch && status == 0; b++)
        for (int c = 0; c < AGC_RESNET_FEATURES; c++)
          printf ("%.9g%c", features[(gsize) b * AGC_RESNET_FEATURES + c],
                  c + 1 < AGC_RESNET_FEATURES ? ' ' : '\n');
    }
  g_free (features);
  agc_resnet_free (net);
  agc_weights_free (weights);
  g_free (pixels);
  return status;
}
