/* preprocess.c — AgcImage -> normalised model input, the torchvision way:
 * Compose(Resize(shortest_edge), CenterCrop(crop), ToTensor(), Normalize(mean, std))
 * on a PIL image.  The float arithmetic follows ToTensor and Normalize in
 * float32 ((v / 255 - mean) / std), so equal pixels give equal floats. */
#include "images/preprocess.h"

#include "images/image-jpeg.h"

#include <string.h>

/* A resized image this large only comes from an absurd aspect ratio
 * (e.g. 1 x 100000 resized to 224 x 22400000). */
#define MAX_RESIZED_PIXELS ((gint64) 1 << 26) /* 192 MiB as RGB */

// resize the shorter side to the crop's size, then centre-crop a square
static AgcPreprocess
square_crop (int image_size, AgcFilter filter, const float mean[3], const float std[3])
{
  AgcPreprocess config = {
    .shortest_edge = image_size,
    .crop_width = image_size,
    .crop_height = image_size,
    .filter = filter,
  };
  memcpy (config.mean, mean, sizeof config.mean);
  memcpy (config.std, std, sizeof config.std);
  return config;
}

AgcPreprocess
agc_preprocess_clip_defaults (int image_size)
{
  static const float mean[3] = { 0.48145466f, 0.4578275f, 0.40821073f };
  static const float std[3] = { 0.26862954f, 0.26130258f, 0.27577711f };
  return square_crop (image_size, AGC_FILTER_BICUBIC, mean, std);
}

AgcPreprocess
agc_preprocess_imagenet_defaults (int image_size)
{
  static const float mean[3] = { 0.485f, 0.456f, 0.406f };
  static const float std[3] = { 0.229f, 0.224f, 0.225f };
  return square_crop (image_size, AGC_FILTER_BILINEAR, mean, std);
}

/* torchvision Resize(int): the shorter side becomes n, the longer one
 * int(n * long / short) (truncated, computed in double as Python does). */
static void
resized_size (gint64 *out_w, gint64 *out_h, int width, int height, int n)
{
  // in double, then 64 bits: 224 * 70,000,000 does not fit an int
  if (width <= height)
    {
      *out_w = n;
      *out_h = (gint64) ((double) n * height / width);
    }
  else
    {
      *out_w = (gint64) ((double) n * width / height);
      *out_h = n;
    }
}

static gboolean
resized_size_fits (gint64 width, gint64 height)
{
  return width >= 1 && height >= 1 && width <= G_MAXINT / 3 && height <= G_MAXINT / 3
         && width * height <= MAX_RESIZED_PIXELS;
}

AgcImage *
agc_preprocess_resize (const AgcPreprocess *config, const AgcImage *image, GError **error)
{
  g_return_val_if_fail (config != NULL && config->shortest_edge > 0, NULL);
  g_return_val_if_fail (image != NULL && image->width > 0 && image->height > 0, NULL);

  gint64 width, height;
  resized_size (&width, &height, image->width, image->height, config->shortest_edge);
  if (!resized_size_fits (width, height))
    {
      g_set_error (error, AGC_ERROR, AGC_ERROR_INPUT,
                   "image of %d x %d pixels is too elongated: resized it would be %" G_GINT64_FORMAT
                   " x %" G_GINT64_FORMAT,
                   image->width, image->height, width, height);
      return NULL;
    }
  AgcImage *resized = agc_image_new ((int) width, (int) height);
  if (resized == NULL
      || !agc_resize_rgb8 (image->pixels, image->width, image->height, resized->pixels,
                           (int) width, (int) height, config->filter))
    {
      agc_image_free (resized);
      g_set_error (error, AGC_ERROR, AGC_ERROR_INPUT,
                   "not enough memory to resize a %d x %d image to %" G_GINT64_FORMAT
                   " x %" G_GINT64_FORMAT, image->width, image->height, width, height);
      return NULL;
    }
  return resized;
}

/* torchvision CenterCrop along one axis: the source index of output index 0.
 * A crop larger than the image pads it with zeros first, (crop - size) // 2
 * before; otherwise the offset is Python's round((size - crop) / 2), which
 * rounds halves to even. */
static int
crop_offset (int size, int crop)
{
  if (crop > size)
    return -((crop - size) / 2);
  int twice = size - crop; /* 2 * offset */
  int offset = twice / 2;
  if (twice % 2 == 1 && offset % 2 == 1)
    offset++;
  return offset;
}

/* resized (the shorter side at shortest_edge) -> pixels[3, crop_height, crop_width] */
static void
crop_normalize (const AgcPreprocess *config, const AgcImage *resized, float *pixels)
{
  /* Each channel maps 256 byte values to 256 floats; padding is byte 0. */
  float table[3][256];
  for (int c = 0; c < 3; c++)
    for (int v = 0; v < 256; v++)
      table[c][v] = ((float) v / 255.0f - config->mean[c]) / config->std[c];

  int cw = config->crop_width, ch = config->crop_height;
  int x0 = crop_offset (resized->width, cw);
  int y0 = crop_offset (resized->height, ch);
  gsize plane = (gsize) cw * (gsize) ch;
  for (int y = 0; y < ch; y++)
    for (int x = 0; x < cw; x++)
      {
        static const guint8 zero[3] = { 0, 0, 0 };
        int sx = x + x0, sy = y + y0;
        gboolean inside = sx >= 0 && sx < resized->width && sy >= 0 && sy < resized->height;
        const guint8 *p = inside ? resized->pixels + ((gsize) sy * resized->width + sx) * 3 : zero;
        for (int c = 0; c < 3; c++)
          pixels[c * plane + (gsize) y * cw + x] = table[c][p[c]];
      }
}

gboolean
agc_preprocess_image (const AgcPreprocess *config, const AgcImage *image, float *pixels,
                      GError **error)
{
  g_return_val_if_fail (config != NULL && config->crop_width > 0 && config->crop_height > 0,
                        FALSE);
  g_return_val_if_fail (pixels != NULL, FALSE);

  AgcImage *resized = agc_preprocess_resize (config, image, error);
  if (resized == NULL)
    return FALSE;
  crop_normalize (config, resized, pixels);
  agc_image_free (resized);
  return TRUE;
}

/* AgcJpegResize's size: agc_preprocess_resize's, FALSE where that refuses
 * (the whole image is then decoded, and agc_preprocess_resize says why). */
static gboolean
stream_size (int width, int height, int *resized_w, int *resized_h, gconstpointer data)
{
  const AgcPreprocess *config = data;
  gint64 w, h;
  resized_size (&w, &h, width, height, config->shortest_edge);
  if (!resized_size_fits (w, h))
    return FALSE;
  *resized_w = (int) w;
  *resized_h = (int) h;
  return TRUE;
}

gboolean
agc_preprocess_file (const AgcPreprocess *config, const char *path, int draft, float *pixels,
                     int *width, int *height, GError **error)
{
  g_return_val_if_fail (config != NULL && config->crop_width > 0 && config->crop_height > 0,
                        FALSE);
  g_return_val_if_fail (path != NULL && pixels != NULL, FALSE);

  AgcJpegResize resize = { stream_size, config, config->filter };
  AgcJpegDecoded decoded;
  AgcImage *image = agc_image_load_resized (path, draft, draft, &resize, &decoded, error);
  if (image == NULL)
    return FALSE;
  gboolean ok = TRUE;
  if (decoded.resized)
    crop_normalize (config, image, pixels);
  else if (!(ok = agc_preprocess_image (config, image, pixels, error)))
    {
      g_autofree char *shown = g_filename_display_name (path);
      g_prefix_error (error, "%s: ", shown);
    }
  agc_image_free (image);
  *width = decoded.width;
  *height = decoded.height;
  return ok;
}
