/* image-jpeg.h — JPEG files decoded by libjpeg(-turbo) straight into an
 * AgcImage, as PIL's Image.open().convert("RGB") + exif_transpose does;
 * optionally at a reduced DCT scale as PIL's Image.draft("RGB", size). */
#pragma once

#include "agriclip.h"
#include "images/resize.h"

/* data[size] is a JPEG (it starts with the SOI marker). */
gboolean agc_jpeg_sniff (const guint8 *data, gsize size);

/* A resize applied to the rows as libjpeg delivers them, so that the full
 * image never exists: size gives the resized size of a width x height
 * (upright) image, or FALSE to have the whole image instead. */
typedef struct
{
  gboolean (*size) (int width, int height, int *resized_w, int *resized_h, gconstpointer data);
  gconstpointer data;
  AgcFilter filter;
} AgcJpegResize;

/* What agc_jpeg_decode returned: the upright image's size, and whether the
 * image is that resized by the AgcJpegResize. */
typedef struct
{
  int width, height;
  gboolean resized;
} AgcJpegDecoded;

/* Decodes data[size] (a JPEG; name: the file as shown in messages).
 * draft_w, draft_h > 0: the largest scale 1/8, 1/4, 1/2 at which both sides
 * stay at least that large, Pillow's Image.draft rule; 0: full size.  Images
 * of more than max_pixels (at full size) are refused before decoding.
 * Returns NULL with *error set, or NULL and *handled FALSE (error unset) for
 * colour spaces left to gdk-pixbuf (CMYK, YCCK).
 * resize (or NULL): resized as decoded where the image needs no EXIF
 * orientation (decoded->resized then says so); decoded may be NULL. */
AgcImage *agc_jpeg_decode (const guint8 *data, gsize size, const char *name, int draft_w,
                           int draft_h, gint64 max_pixels, const AgcJpegResize *resize,
                           AgcJpegDecoded *decoded, gboolean *handled, GError **error);

/* agc_image_load_draft (image.c), a JPEG resized by resize as it is decoded
 * where agc_jpeg_decode can (decoded->resized says so; decoded->width and
 * height are the upright image's size either way). */
AgcImage *agc_image_load_resized (const char *path, int draft_w, int draft_h,
                                  const AgcJpegResize *resize, AgcJpegDecoded *decoded,
                                  GError **error);

/* The EXIF orientation (1..8) of a JPEG's first Exif APP1 segment, 1 without. */
int agc_exif_orientation (const guint8 *app1, gsize size);
/* image turned upright for EXIF orientation 2..8 (a new image), or image
 * itself for 1; NULL when memory runs out. */
AgcImage *agc_image_orient (AgcImage *image, int orientation);
