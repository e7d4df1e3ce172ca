/* pixels.c — what the classifier sees of an image.
 *
 * GEGL converts whatever GIMP stores (8/16/32-bit, integer or float, linear
 * or perceptual, RGB, grayscale, indexed) to R'G'B'A u8, the sRGB bytes an
 * exported PNG would hold, so that `agriclip classify` on an export of the
 * same crop sees the same numbers.  Source pixels are only read.
 *
 * Masking: a pixel is weighted by w = selection coverage × alpha (each 0..255)
 * and blended towards neutral grey G = 128 in those same sRGB bytes:
 *   out = (p·w + G·(255² − w) + 255²/2) / 255²     (integer division)
 * so unselected or transparent pixels become flat grey, which carries no
 * texture or colour for the model to latch onto, and a feathered edge fades.
 * tests/gimp recomputes this formula independently. */
#include "agriclip-plugin.h"

#define FULL (255 * 255)

gboolean
pixels_region (AgcRect *region, GimpImage *image, GimpDrawable *drawable)
{
  if (drawable)
    {
      int x, y, width, height, offset_x, offset_y;
      if (!gimp_drawable_mask_intersect (drawable, &x, &y, &width, &height))
        return FALSE;
      gimp_drawable_get_offsets (drawable, &offset_x, &offset_y);
      *region = (AgcRect) { x + offset_x, y + offset_y, width, height };
      return width > 0 && height > 0;
    }
  gboolean non_empty = FALSE;
  int x1, y1, x2, y2;
  if (gimp_selection_bounds (image, &non_empty, &x1, &y1, &x2, &y2) && non_empty)
    *region = (AgcRect) { x1, y1, x2 - x1, y2 - y1 };
  else
    *region = (AgcRect) { 0, 0, gimp_image_get_width (image), gimp_image_get_height (image) };
  return region->width > 0 && region->height > 0;
}

/* Reads region (image coordinates) of drawable as R'G'B'A u8; what lies
 * outside the drawable reads as transparent. */
static void
read_rgba (guint8 *rgba, GimpDrawable *drawable, const AgcRect *region)
{
  int offset_x, offset_y;
  gimp_drawable_get_offsets (drawable, &offset_x, &offset_y);
  GeglBuffer *buffer = gimp_drawable_get_buffer (drawable);
  GeglRectangle rect = { region->x - offset_x, region->y - offset_y, region->width,
                         region->height };
  gegl_buffer_get (buffer, &rect, 1.0, babl_format ("R'G'B'A u8"), rgba, GEGL_AUTO_ROWSTRIDE,
                   GEGL_ABYSS_NONE);
  g_object_unref (buffer);
}

/* The visible image: a duplicate, merged, read and deleted, so that layer
 * modes, opacity, masks and hidden layers count as they do on screen. */
static gboolean
read_composite (guint8 *rgba, GimpImage *image, const AgcRect *region, GError **error)
{
  GimpImage *copy = gimp_image_duplicate (image);
  if (!copy)
    {
      g_set_error (error, AGC_ERROR, AGC_ERROR_INPUT, _("Cannot duplicate the image"));
      return FALSE;
    }
  gimp_image_undo_disable (copy);
  GimpLayer *merged = gimp_image_merge_visible_layers (copy, GIMP_CLIP_TO_IMAGE);
  if (merged)
    read_rgba (rgba, GIMP_DRAWABLE (merged), region);
  else
    g_set_error (error, AGC_ERROR, AGC_ERROR_INPUT, _("The image has no visible layer"));
  gimp_image_delete (copy);
  return merged != NULL;
}

Pixels *
pixels_read (GimpImage *image, GimpDrawable *drawable, const AgcRect *region, GError **error)
{
  Pixels *pixels = g_new0 (Pixels, 1);
  pixels->x = region->x;
  pixels->y = region->y;
  pixels->width = region->width;
  pixels->height = region->height;
  gsize n = (gsize) region->width * region->height;
  pixels->rgba = g_malloc (n * 4);
  if (drawable)
    read_rgba (pixels->rgba, drawable, region);
  else if (!read_composite (pixels->rgba, image, region, error))
    {
      pixels_free (pixels);
      return NULL;
    }
  if (!gimp_selection_is_empty (image))
    {
      pixels->mask = g_malloc (n);
      GimpSelection *selection = gimp_image_get_selection (image);
      GeglBuffer *buffer = gimp_drawable_get_buffer (GIMP_DRAWABLE (selection));
      GeglRectangle rect = { region->x, region->y, region->width, region->height };
      gegl_buffer_get (buffer, &rect, 1.0, babl_format ("Y u8"), pixels->mask,
                       GEGL_AUTO_ROWSTRIDE, GEGL_ABYSS_NONE);
      g_object_unref (buffer);
    }
  return pixels;
}

void
pixels_free (Pixels *pixels)
{
  if (!pixels)
    return;
  g_free (pixels->rgba);
  g_free (pixels->mask);
  g_free (pixels);
}

/* w = coverage × alpha of pixel i, 0..FULL. */
static inline int
weight (const Pixels *pixels, gsize i)
{
  int coverage = pixels->mask ? pixels->mask[i] : 255;
  return coverage * pixels->rgba[i * 4 + 3];
}

AgcImage *
pixels_crop (const Pixels *pixels, const AgcRect *rect)
{
  AgcImage *image = agc_image_new (rect->width, rect->height);
  for (int y = 0; y < rect->height; y++)
    for (int x = 0; x < rect->width; x++)
      {
        gsize i = (gsize) (rect->y - pixels->y + y) * pixels->width + (rect->x - pixels->x + x);
        int w = weight (pixels, i);
        guint8 *out = image->pixels + ((gsize) y * rect->width + x) * 3;
        for (int c = 0; c < 3; c++)
          out[c] = (guint8) ((pixels->rgba[i * 4 + c] * w + AGC_PLUGIN_MASK_GREY * (FULL - w)
                              + FULL / 2) / FULL);
      }
  return image;
}

double
pixels_coverage (const Pixels *pixels, const AgcRect *rect)
{
  double sum = 0;
  for (int y = 0; y < rect->height; y++)
    for (int x = 0; x < rect->width; x++)
      sum += weight (pixels,
                     (gsize) (rect->y - pixels->y + y) * pixels->width + (rect->x - pixels->x + x));
  return sum / ((double) FULL * rect->width * rect->height);
}
