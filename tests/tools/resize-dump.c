/* resize-dump.c — exposes image decoding, resizing and preprocessing to the
 * Python reference tests (tests/reference/test_preprocess.py).
 *
 *   resize-dump --decode IN OUT.raw
 *       decoded RGB bytes [H, W, 3]; prints "W H"
 *   --draft SIZE before either of the others: IN loaded with
 *       agc_image_load_draft (IN, SIZE, SIZE) (Pillow's Image.draft)
 *   resize-dump [--bilinear] IN W H OUT.raw
 *       IN decoded and resized to W x H: RGB bytes [H, W, 3]
 *   resize-dump [--bilinear] [--crop W H] --preprocess SIZE IN OUT.f32
 *       CLIP preprocessing with shortest edge SIZE (crop SIZE x SIZE unless
 *       --crop): float32 [3, CH, CW]; prints the resized "W H"
 * Errors go to stderr, prefixed "error: ", exit status 1.
 */
#include "agriclip.h"
#include "images/preprocess.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
write_file (const char *path, const void *data, gsize size)
{
  GError *error = NULL;
  if (!g_file_set_contents (path, data, (gssize) size, &error))
    return fail_error (error);
  return 0;
}

static int
usage (void)
{
  return fail ("usage: resize-dump [--draft SIZE] --decode IN OUT.raw\n"
               "       resize-dump [--bilinear] IN W H OUT.raw\n"
               "       resize-dump [--draft SIZE] [--bilinear] [--crop W H] --preprocess SIZE IN "
               "OUT.f32");
}

int
main (int argc, char **argv)
{
  gboolean decode = FALSE;
  AgcFilter filter = AGC_FILTER_BICUBIC;
  int preprocess_size = 0, crop_w = 0, crop_h = 0, draft = 0;
  const char *positional[4];
  int n_positional = 0;

  for (int i = 1; i < argc; i++)
    {
      if (strcmp (argv[i], "--decode") == 0)
        decode = TRUE;
      else if (strcmp (argv[i], "--bilinear") == 0)
        filter = AGC_FILTER_BILINEAR;
      else if (strcmp (argv[i], "--draft") == 0 && i + 1 < argc)
        {
          if (!parse_int (argv[++i], &draft))
            return usage ();
        }
      else if (strcmp (argv[i], "--preprocess") == 0 && i + 1 < argc)
        {
          if (!parse_int (argv[++i], &preprocess_size))
            return usage ();
        }
      else if (strcmp (argv[i], "--crop") == 0 && i + 2 < argc)
        {
          if (!parse_int (argv[i + 1], &crop_w) || !parse_int (argv[i + 2], &crop_h))
            return usage ();
          i += 2;
        }
      else if (n_positional < (int) G_N_ELEMENTS (positional))
        positional[n_positional++] = argv[i];
      else
        return usage ();
    }

  int expected = decode || preprocess_size > 0 ? 2 : 4;
  if (n_positional != expected || (decode && preprocess_size > 0))
    return usage ();

  GError *error = NULL;
  AgcImage *image = agc_image_load_draft (positional[0], draft, draft, &error);
  if (image == NULL)
    return fail_error (error);

  int status = 0;
  if (decode)
    {
      printf ("%d %d\n", image->width, image->height);
      status = write_file (positional[1], image->pixels,
                           (gsize) image->width * image->height * 3);
    }
  else if (preprocess_size > 0)
    {
      AgcPreprocess config = agc_preprocess_clip_defaults (preprocess_size);
      config.filter = filter;
      if (crop_w > 0)
        {
          config.crop_width = crop_w;
          config.crop_height = crop_h;
        }
      AgcImage *resized = agc_preprocess_resize (&config, image, &error);
      if (resized == NULL)
        status = fail_error (error);
      else
        {
          printf ("%d %d\n", resized->width, resized->height);
          agc_image_free (resized);
          gsize n = (gsize) 3 * config.crop_width * config.crop_height;
          float *pixels = g_new (float, n), *streamed = g_new (float, n);
          int width, height;
          /* the pipeline's way (a JPEG resized as it is decoded) must give
           * the same floats as preprocessing the decoded image */
          if (!agc_preprocess_image (&config, image, pixels, &error)
              || !agc_preprocess_file (&config, positional[0], draft, streamed, &width, &height,
                                       &error))
            status = fail_error (error);
          else if (memcmp (pixels, streamed, n * sizeof (float)) != 0 || width != image->width
                   || height != image->height)
            status = fail ("agc_preprocess_file differs from agc_preprocess_image");
          else
            status = write_file (positional[1], pixels, n * sizeof (float));
          g_free (pixels);
          g_free (streamed);
        }
    }
  else
    {
      int w, h;
      if (!parse_int (positional[1], &w) || !parse_int (positional[2], &h))
        status = usage ();
      else
        {
          guint8 *out = g_new (guint8, (gsize) w * h * 3);
          if (!agc_resize_rgb8 (image->pixels, image->width, image->height, out, w, h, filter))
            status = fail ("out of memory");
          else
            status = write_file (positional[3], out, (gsize) w * h * 3);
          g_free (out);
        }
    }
  agc_image_free (image);
  return status;
}
