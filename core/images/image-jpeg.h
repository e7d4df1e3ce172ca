/* image-jpeg.h — JPEG files decoded by libjpeg(-turbo) straight into an
 * AgcImage, as PIL's Image.open().convert("RGB") + exif_transpose does;
 * optionally at a reduced DCT scale as PIL's Image.draft("RGB", size). */
#pragma once

#include "agriclip.h"

/* data[size] is a JPEG (it starts with the SOI marker). */
gboolean agc_jpeg_sniff (const guint8 *data, gsize size);

/* Decodes data[size] (a JPEG; name: the file as shown in messages).
 * draft_w, draft_h > 0: the largest scale 1/8, 1/4, 1/2 at which both sides
 * stay at least that large, Pillow's Image.draft rule; 0: full size.  Images
 * of more than max_pixels (at full size) are refused before decoding.
 * Returns NULL with *error set, or NULL and *handled FALSE (error unset) for
 * colour spaces left to gdk-pixbuf (CMYK, YCCK). */
AgcImage *agc_jpeg_decode (const guint8 *data, gsize size, const char *name, int draft_w,
                           int draft_h, gint64 max_pixels, gboolean *handled, GError **error);

/* The EXIF orientation (1..8) of a JPEG's first Exif APP1 segment, 1 without. */
int agc_exif_orientation (const guint8 *app1, gsize size);
/* image turned upright for EXIF orientation 2..8 (a new image), or image
 * itself for 1; NULL when memory runs out. */
AgcImage *agc_image_orient (AgcImage *image, int orientation);
