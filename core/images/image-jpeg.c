/* image-jpeg.c — JPEG through libjpeg(-turbo) directly, the library PIL
 * decodes with: libjpeg's defaults (islow IDCT, fancy upsampling, block
 * smoothing of progressive files), colour conversion to RGB inside libjpeg,
 * rows written straight into the AgcImage.  gdk-pixbuf, which image.c uses
 * for other formats, decodes to its own buffer first and copies.
 *
 * Pillow's Image.draft("RGB", (w, h)) sets libjpeg's scale_denom to the
 * largest of 8, 4, 2, 1 not above min(W // w, H // h), and the output is
 * ceil(W / s) x ceil(H / s), as libjpeg computes it; the same here. */
#include "images/image-jpeg.h"

#include <setjmp.h>
#include <stdio.h>
#include <string.h>
#include <jpeglib.h>

typedef struct
{
  struct jpeg_error_mgr mgr;
  jmp_buf jump;
  char message[JMSG_LENGTH_MAX];
} ErrorJump;

static void
error_exit (j_common_ptr cinfo)
{
  ErrorJump *e = (ErrorJump *) cinfo->err;
  e->mgr.format_message (cinfo, e->message);
  longjmp (e->jump, 1);
}

static void
ignore_message (j_common_ptr cinfo, int level)
{
  /* warnings (corrupt data libjpeg recovers from) pass, as in PIL */
  (void) cinfo;
  (void) level;
}

gboolean
agc_jpeg_sniff (const guint8 *data, gsize size)
{
  return size >= 3 && data[0] == 0xFF && data[1] == 0xD8 && data[2] == 0xFF;
}

static int
draft_scale (int width, int height, int draft_w, int draft_h)
{
  if (draft_w <= 0 || draft_h <= 0)
    return 1;
  int scale = MIN (width / draft_w, height / draft_h);
  for (int s = 8; s > 1; s /= 2)
    if (scale >= s)
      return s;
  return 1;
}

/* The rows into r, one at a time through a small buffer that stays in
 * cache.  Its rows start off 32-byte alignment on purpose: libjpeg-turbo's
 * AVX2 colour conversion writes aligned rows with non-temporal stores,
 * which send them to memory just before the resize reads them back. */
static void
read_rows_resized (struct jpeg_decompress_struct *cinfo, AgcResizeRows *r, guint8 *buffer,
                   gsize readable)
{
  JSAMPROW row = buffer;
  while (cinfo->output_scanline < cinfo->output_height)
    {
      jpeg_read_scanlines (cinfo, &row, 1);
      agc_resize_rows_push (r, row, readable);
    }
  agc_resize_rows_finish (r);
}

enum
{
  ROW_OFFSET = 8, /* not a multiple of 32: see read_rows_resized */
  ROW_SLACK = 64, /* the resize's vector loads run up to 16 bytes past a row */
};

AgcImage *
agc_jpeg_decode (const guint8 *data, gsize size, const char *name, int draft_w, int draft_h,
                 gint64 max_pixels, const AgcJpegResize *resize, AgcJpegDecoded *decoded,
                 gboolean *handled, GError **error)
{
  struct jpeg_decompress_struct cinfo;
  ErrorJump err = { 0 };
  /* volatile: changed between setjmp and a longjmp back to it */
  AgcImage *volatile image = NULL;
  AgcResizeRows *volatile rows = NULL;
  guint8 *volatile row_buffer = NULL;
  *handled = TRUE;

  cinfo.err = jpeg_std_error (&err.mgr);
  err.mgr.error_exit = error_exit;
  err.mgr.emit_message = ignore_message;
  if (setjmp (err.jump))
    {
      jpeg_destroy_decompress (&cinfo);
      agc_image_free (image);
      agc_resize_rows_free (rows);
      g_free (row_buffer);
      g_set_error (error, AGC_ERROR, AGC_ERROR_FORMAT, "%s: cannot decode jpeg image (%s)", name,
                   err.message);
      return NULL;
    }
  jpeg_create_decompress (&cinfo);
  jpeg_mem_src (&cinfo, data, (unsigned long) size);
  jpeg_save_markers (&cinfo, JPEG_APP0 + 1, 0xFFFF);
  jpeg_read_header (&cinfo, TRUE);

  gint64 width = cinfo.image_width, height = cinfo.image_height;
  if (cinfo.jpeg_color_space == JCS_CMYK || cinfo.jpeg_color_space == JCS_YCCK
      || cinfo.num_components == 4)
    {
      jpeg_destroy_decompress (&cinfo);
      *handled = FALSE;
      return NULL;
    }
  if (width * height > max_pixels)
    {
      jpeg_destroy_decompress (&cinfo);
      g_set_error (error, AGC_ERROR, AGC_ERROR_UNSUPPORTED,
                   "%s: image is %" G_GINT64_FORMAT " x %" G_GINT64_FORMAT
                   " pixels, more than the %" G_GINT64_FORMAT " pixels accepted",
                   name, width, height, max_pixels);
      return NULL;
    }

  int orientation = 1;
  for (jpeg_saved_marker_ptr m = cinfo.marker_list; m != NULL; m = m->next)
    if (m->marker == JPEG_APP0 + 1 && m->data_length >= 6
        && memcmp (m->data, "Exif\0\0", 6) == 0)
      {
        orientation = agc_exif_orientation (m->data, m->data_length);
        break; // the first Exif segment, as PIL
      }

  cinfo.out_color_space = JCS_RGB;
  cinfo.scale_num = 1;
  cinfo.scale_denom = (unsigned) draft_scale ((int) width, (int) height, draft_w, draft_h);
  jpeg_start_decompress (&cinfo);
  int out_w = (int) cinfo.output_width, out_h = (int) cinfo.output_height;
  int resized_w = 0, resized_h = 0;
  gboolean streamed = resize != NULL && orientation == 1
                      && resize->size (out_w, out_h, &resized_w, &resized_h, resize->data);
  gsize readable = (gsize) out_w * 3 + ROW_SLACK;
  image = streamed ? agc_image_new (resized_w, resized_h) : agc_image_new (out_w, out_h);
  if (streamed && image != NULL)
    {
      row_buffer = g_try_malloc0 (ROW_OFFSET + readable); /* the slack is read, never used */
      rows = row_buffer != NULL ? agc_resize_rows_new (image->pixels, out_w, out_h, resized_w,
                                                       resized_h, resize->filter)
                                : NULL;
    }
  if (image == NULL || (streamed && rows == NULL))
    {
      jpeg_destroy_decompress (&cinfo);
      agc_image_free (image);
      agc_resize_rows_free (rows);
      g_free (row_buffer);
      g_set_error (error, AGC_ERROR, AGC_ERROR_IO, "%s: not enough memory for %u x %u pixels",
                   name, cinfo.output_width, cinfo.output_height);
      return NULL;
    }
  if (streamed)
    read_rows_resized (&cinfo, rows, row_buffer + ROW_OFFSET, readable);
  else
    while (cinfo.output_scanline < cinfo.output_height)
      {
        JSAMPROW row = image->pixels + (gsize) cinfo.output_scanline * image->width * 3;
        jpeg_read_scanlines (&cinfo, &row, 1);
      }
  jpeg_finish_decompress (&cinfo);
  jpeg_destroy_decompress (&cinfo);
  agc_resize_rows_free (rows);
  g_free (row_buffer);

  AgcImage *upright = agc_image_orient (image, orientation);
  if (upright != image)
    agc_image_free (image);
  if (upright == NULL)
    g_set_error (error, AGC_ERROR, AGC_ERROR_IO,
                 "%s: not enough memory to apply the EXIF orientation", name);
  else if (decoded != NULL)
    {
      gboolean swap = orientation >= 5;
      *decoded = (AgcJpegDecoded) { .width = swap ? out_h : out_w, .height = swap ? out_w : out_h,
                                    .resized = streamed };
    }
  return upright;
}
