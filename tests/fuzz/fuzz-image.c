/* fuzz-image.c — libFuzzer harness for image loading and preprocessing:
 * the input is decoded as an image file (gdk-pixbuf sniffs the format) and
 * preprocessed the CLIP way at 224 and the ImageNet way at 7 (an elongated
 * image meets the resize checks; at 224 only when the resized image stays
 * small).  Inputs whose header announces more than 2^20 pixels are skipped: the pixel limit itself is tested by
 * tests/reference/test_hostile_input.py, and decoding 2^27 pixels under ASan
 * would only measure memory.  Built and run by tests/fuzz/run.sh. */
#include "fuzz-common.h"

#include "images/preprocess.h"

#include <gdk-pixbuf/gdk-pixbuf.h>

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  char *path = fuzz_write ("image", data, size);
  int width = 0, height = 0;
  if (gdk_pixbuf_get_file_info (path, &width, &height) != NULL
      && (gint64) width * height > ((gint64) 1 << 20))
    {
      g_free (path);
      return 0;
    }
  GError *error = NULL;
  AgcImage *image = agc_image_load (path, &error);
  if (image != NULL)
    {
      AgcPreprocess configs[2] = { agc_preprocess_clip_defaults (224),
                                   agc_preprocess_imagenet_defaults (7) };
      gint64 longer = MAX (image->width, image->height), shorter = MIN (image->width, image->height);
      for (int i = 0; i < 2; i++)
        {
          // the resize costs its output's size: at -O0 under the sanitizers a
          // 1 x 40 image resized to 224 x 8960 takes seconds (a libFuzzer
          // timeout, not a hang); the size checks are reached at 7
          gint64 edge = configs[i].shortest_edge;
          if (edge * edge * (longer / shorter) > ((gint64) 1 << 18))
            continue;
          float *pixels = g_new (float, (gsize) 3 * configs[i].crop_width * configs[i].crop_height);
          if (!agc_preprocess_image (&configs[i], image, pixels, &error))
            fuzz_check_failure (g_steal_pointer (&error));
          g_free (pixels);
        }
      agc_image_free (image);
    }
  else
    fuzz_check_failure (error);
  g_free (path);
  return 0;
}
