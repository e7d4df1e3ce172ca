/* image-orient.c — EXIF orientation: reading the tag from an Exif APP1
 * segment and turning the pixels upright as PIL's ImageOps.exif_transpose
 * does (2 mirror, 3 rotate 180, 4 flip, 5 transpose, 6 rotate 90 clockwise,
 * 7 transverse, 8 rotate 90 counter-clockwise). */
#include "images/image-jpeg.h"

#include <string.h>

static guint32
read_u (const guint8 *p, int n, gboolean big_endian)
{
  guint32 v = 0;
  for (int i = 0; i < n; i++)
    v |= (guint32) p[big_endian ? i : n - 1 - i] << (8 * (n - 1 - i));
  return v;
}

int
agc_exif_orientation (const guint8 *app1, gsize size)
{
  if (size < 6 + 8 || memcmp (app1, "Exif\0\0", 6) != 0)
    return 1;
  const guint8 *tiff = app1 + 6;
  gsize n = size - 6;
  gboolean big;
  if (memcmp (tiff, "MM\0*", 4) == 0)
    big = TRUE;
  else if (memcmp (tiff, "II*\0", 4) == 0)
    big = FALSE;
  else
    return 1;
  guint32 ifd = read_u (tiff + 4, 4, big);
  if (ifd > n || n - ifd < 2)
    return 1;
  guint32 entries = read_u (tiff + ifd, 2, big);
  for (guint32 e = 0; e < entries; e++)
    {
      gsize at = ifd + 2 + (gsize) e * 12;
      if (at + 12 > n)
        break;
      if (read_u (tiff + at, 2, big) == 0x0112 && read_u (tiff + at + 2, 2, big) == 3)
        {
          guint32 v = read_u (tiff + at + 8, 2, big);
          return v >= 1 && v <= 8 ? (int) v : 1;
        }
    }
  return 1;
}

/* The source pixel of upright pixel (ox, oy) in a w x h image. */
static gsize
source_index (int orientation, gsize ox, gsize oy, gsize w, gsize h)
{
  gsize sx, sy;
  switch (orientation)
    {
    case 2: sx = w - 1 - ox; sy = oy; break;
    case 3: sx = w - 1 - ox; sy = h - 1 - oy; break;
    case 4: sx = ox; sy = h - 1 - oy; break;
    case 5: sx = oy; sy = ox; break;
    case 6: sx = oy; sy = h - 1 - ox; break;
    case 7: sx = w - 1 - oy; sy = h - 1 - ox; break;
    default: sx = w - 1 - oy; sy = ox; break; // 8
    }
  return sy * w + sx;
}

AgcImage *
agc_image_orient (AgcImage *image, int orientation)
{
  if (orientation < 2 || orientation > 8)
    return image;
  int w = image->width, h = image->height;
  gboolean swap = orientation >= 5;
  AgcImage *out = agc_image_new (swap ? h : w, swap ? w : h);
  if (out == NULL)
    return NULL;
  /* The source index is linear in (ox, oy): a step per output column and
   * per output row.  Tiles keep the rotations' strided reads in cache (a
   * row at a time, a 90-degree turn read each pixel from another line). */
  enum { TILE = 64 };
  gssize origin = (gssize) source_index (orientation, 0, 0, w, h);
  gssize step_x = (gssize) source_index (orientation, 1, 0, w, h) - origin;
  gssize step_y = (gssize) source_index (orientation, 0, 1, w, h) - origin;
  if (out->width == 1)
    step_x = 0; // (1, 0) lies outside: never used
  if (out->height == 1)
    step_y = 0;
  for (int ty = 0; ty < out->height; ty += TILE)
    for (int tx = 0; tx < out->width; tx += TILE)
      for (int oy = ty; oy < MIN (ty + TILE, out->height); oy++)
        {
          guint8 *dst = out->pixels + ((gsize) oy * out->width + tx) * 3;
          const guint8 *src = image->pixels + (origin + oy * step_y + tx * step_x) * 3;
          for (int ox = tx; ox < MIN (tx + TILE, out->width); ox++, dst += 3, src += step_x * 3)
            memcpy (dst, src, 3);
        }
  return out;
}
