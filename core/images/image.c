/* image.c — files -> 8-bit RGB images: JPEG (but CMYK) through libjpeg
 * directly (image-jpeg.c), everything else through gdk-pixbuf.
 *
 * The result equals PIL's Image.open(f).convert("RGB") after EXIF orientation
 * (ImageOps.exif_transpose for JPEG; PIL applies a TIFF's orientation tag
 * itself), which is what the reference Python preprocessing sees.  Checked
 * in tests/reference/test_preprocess.py; the known differences are:
 * - 16-bit grey PNG/TIFF: we keep the high byte of each sample (gdk-pixbuf);
 *   PIL's convert("RGB") of modes "I;16"/"I" clips values above 255, which
 *   turns the picture nearly white.  16-bit RGB PNGs agree (high byte).
 * - TIFF with translucent alpha: libtiff's RGBA reader returns colours
 *   multiplied by alpha (as if composited on black); PIL keeps them.
 * - EXIF orientation is applied where gdk-pixbuf reports it (JPEG, TIFF),
 *   not from a PNG eXIf chunk or WebP EXIF, which exif_transpose would use.
 */
#include "agriclip.h"

#include <errno.h>
#include <string.h>
#include <glib/gstdio.h>
#include <gdk-pixbuf/gdk-pixbuf.h>
#include <unistd.h>

#include "images/image-jpeg.h"
#include "support/huge-alloc.h"
#include "support/regular-file.h"

/* Larger images are refused before decoding (see agc_image_load): 2^27
 * pixels (134 MP, 11585 x 11585) take 0.5 GiB as RGBA in gdk-pixbuf plus
 * 0.4 GiB as RGB; a 16384 x 16384 PNG took 1.76 GB. */
#define MAX_PIXELS ((gint64) 1 << 27)

AgcImage *
agc_image_new (int width, int height)
{
  g_return_val_if_fail (width > 0 && height > 0, NULL);

  // the pixels follow the struct: one allocation, freed by one g_free
  gsize bytes = sizeof (AgcImage) + (gsize) width * (gsize) height * 3;
  AgcImage *image = agc_huge_alloc (bytes);
  if (image == NULL)
    return NULL;
  memset (image, 0, bytes);
  *image = (AgcImage){ .width = width, .height = height, .pixels = (guint8 *) (image + 1) };
  return image;
}

void
agc_image_free (AgcImage *image)
{
  g_free (image); // its pixels with it (agc_image_new)
}

/* gdk-pixbuf's messages repeat the file name ("Failed to load image “x”: why");
 * keep only the why when the message has that shape. */
static const char *
pixbuf_reason (const GError *error)
{
  const char *tail = strstr (error->message, "”: ");
  return tail != NULL ? tail + strlen ("”: ") : error->message;
}

static guint16
read_be16 (const guint8 *p)
{
  return (guint16) ((p[0] << 8) | p[1]);
}

/* libjpeg finishes a truncated JPEG with grey rows and only a warning, which
 * gdk-pixbuf ignores; PIL refuses such files ("image file is truncated").
 * Walk the marker segments to the first scan, then look for the end-of-image
 * marker: entropy-coded data never contains 0xFF 0xD9, so a complete file
 * has one after the scan.  Unparsable headers are left to libjpeg. */
static gboolean
jpeg_has_end (const guint8 *data, gsize size)
{
  gsize p = 2; /* after SOI */
  while (p + 4 <= size)
    {
      if (data[p] != 0xFF)
        return TRUE;
      guint8 marker = data[p + 1];
      if (marker == 0xFF) /* fill byte */
        {
          p++;
          continue;
        }
      if (marker == 0xDA) /* start of scan */
        {
          /* from the end: a complete file ends with it (a 12 MP photo is
           * megabytes of entropy-coded data to scan forwards) */
          for (gsize j = size - 1; j >= p + 3; j--)
            if (data[j - 1] == 0xFF && data[j] == 0xD9)
              return TRUE;
          return FALSE;
        }
      if (marker == 0x01 || (marker >= 0xD0 && marker <= 0xD7)) /* no length */
        p += 2;
      else
        p += 2 + (gsize) read_be16 (data + p + 2);
    }
  return FALSE;
}

static gboolean
check_jpeg_complete (const guint8 *data, gsize size, const char *name, GError **error)
{
  gboolean complete = jpeg_has_end (data, size);
  if (!complete)
    g_set_error (error, AGC_ERROR, AGC_ERROR_FORMAT,
                 "%s: truncated JPEG (the image data has no end marker)", name);
  return complete;
}

/* Files up to this size are read into a buffer that each thread keeps
 * (at most this much) rather than mapped: mapping a 2.5 MB photo, its page
 * faults and the unmapping cost ~1.8 ms of kernel time per file on these
 * virtual machines (a TLB shootdown on every thread of the process), more
 * than copying it. */
#define REUSED_READ_MAX ((gsize) 16 << 20)

typedef struct
{
  guint8 *data;
  gsize size;
} ReadBuffer;

static void
read_buffer_free (gpointer data)
{
  ReadBuffer *b = data;
  g_free (b->data);
  g_free (b);
}

static GPrivate thread_read_buffer = G_PRIVATE_INIT (read_buffer_free);

/* The whole of fd (size bytes by fstat) in this thread's buffer; NULL with
 * *error when it cannot be read.  *length: the bytes read (fewer if the file
 * shrank meanwhile). */
static const guint8 *
read_reused (int fd, gsize size, const char *name, gsize *length, GError **error)
{
  ReadBuffer *b = g_private_get (&thread_read_buffer);
  if (b == NULL)
    g_private_set (&thread_read_buffer, b = g_new0 (ReadBuffer, 1));
  if (b->size < MAX (size, 1))
    {
      g_free (b->data);
      b->size = MAX (size, 1);
      b->data = g_malloc (b->size);
    }
  gsize done = 0;
  while (done < size)
    {
      ssize_t n = read (fd, b->data + done, size - done);
      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0)
        {
          g_set_error (error, AGC_ERROR, AGC_ERROR_IO, "%s: cannot read (%s)", name,
                       g_strerror (errno));
          return NULL;
        }
      if (n == 0)
        break;
      done += (gsize) n;
    }
  *length = done;
  return b->data;
}

/* A JPEG file through image-jpeg.c: *handled FALSE (no error) when the
 * file is not a JPEG or is one left to gdk-pixbuf (CMYK). */
static AgcImage *
load_jpeg (const char *path, const char *name, int draft_w, int draft_h,
           const AgcJpegResize *resize, AgcJpegDecoded *decoded, gboolean *handled,
           GError **error)
{
  *handled = FALSE;
  struct stat st;
  int fd = agc_open_regular (path, &st, error);
  if (fd < 0)
    {
      *handled = TRUE;
      return NULL;
    }
  GMappedFile *mapped = NULL;
  const guint8 *data = NULL;
  gsize size = 0;
  if ((gsize) st.st_size <= REUSED_READ_MAX)
    data = read_reused (fd, (gsize) st.st_size, name, &size, error);
  close (fd);
  if ((gsize) st.st_size > REUSED_READ_MAX
      && (mapped = agc_map_regular_file (path, error)) != NULL)
    {
      data = (const guint8 *) g_mapped_file_get_contents (mapped);
      size = g_mapped_file_get_length (mapped);
    }
  if (data == NULL)
    {
      *handled = TRUE;
      return NULL;
    }
  AgcImage *image = NULL;
  if (agc_jpeg_sniff (data, size))
    {
      *handled = TRUE;
      if (check_jpeg_complete (data, size, name, error))
        image = agc_jpeg_decode (data, size, name, draft_w, draft_h, MAX_PIXELS, resize, decoded,
                                 handled, error);
    }
  if (mapped != NULL)
    g_mapped_file_unref (mapped);
  return image;
}

static AgcErrorCode
decode_error_code (const GError *error)
{
  if (error->domain == G_FILE_ERROR)
    return AGC_ERROR_IO;
  if (error->domain == GDK_PIXBUF_ERROR
      && (error->code == GDK_PIXBUF_ERROR_UNKNOWN_TYPE
          || error->code == GDK_PIXBUF_ERROR_UNSUPPORTED_OPERATION))
    return AGC_ERROR_UNSUPPORTED;
  return AGC_ERROR_FORMAT;
}

static gboolean
check_pixel_count (gint64 width, gint64 height, const char *name, GError **error)
{
  if (width <= 0 || height <= 0)
    {
      g_set_error (error, AGC_ERROR, AGC_ERROR_FORMAT, "%s: image has no pixels (%" G_GINT64_FORMAT
                   " x %" G_GINT64_FORMAT ")", name, width, height);
      return FALSE;
    }
  if (width * height > MAX_PIXELS)
    {
      g_set_error (error, AGC_ERROR, AGC_ERROR_UNSUPPORTED,
                   "%s: image is %" G_GINT64_FORMAT " x %" G_GINT64_FORMAT
                   " pixels, more than the %" G_GINT64_FORMAT " pixels accepted",
                   name, width, height, MAX_PIXELS);
      return FALSE;
    }
  return TRUE;
}

/* RGB or RGBA pixbuf with any rowstride -> packed RGB; alpha is dropped. */
static AgcImage *
image_from_pixbuf (GdkPixbuf *pixbuf, const char *name, GError **error)
{
  int width = gdk_pixbuf_get_width (pixbuf);
  int height = gdk_pixbuf_get_height (pixbuf);
  int n_channels = gdk_pixbuf_get_n_channels (pixbuf);
  int rowstride = gdk_pixbuf_get_rowstride (pixbuf);

  if (gdk_pixbuf_get_colorspace (pixbuf) != GDK_COLORSPACE_RGB
      || gdk_pixbuf_get_bits_per_sample (pixbuf) != 8 || n_channels < 3)
    {
      g_set_error (error, AGC_ERROR, AGC_ERROR_UNSUPPORTED,
                   "%s: decoder returned an unexpected pixel layout (%d channels, %d bits)",
                   name, n_channels, gdk_pixbuf_get_bits_per_sample (pixbuf));
      return NULL;
    }
  AgcImage *image = agc_image_new (width, height);
  if (image == NULL)
    {
      g_set_error (error, AGC_ERROR, AGC_ERROR_IO, "%s: not enough memory for %d x %d pixels",
                   name, width, height);
      return NULL;
    }
  const guint8 *src = gdk_pixbuf_read_pixels (pixbuf);
  for (int y = 0; y < height; y++)
    {
      const guint8 *row = src + (gsize) y * (gsize) rowstride;
      guint8 *out = image->pixels + (gsize) y * (gsize) width * 3;
      for (int x = 0; x < width; x++)
        {
          out[x * 3 + 0] = row[x * n_channels + 0];
          out[x * 3 + 1] = row[x * n_channels + 1];
          out[x * 3 + 2] = row[x * n_channels + 2];
        }
    }
  return image;
}

AgcImage *
agc_image_load (const char *path, GError **error)
{
  return agc_image_load_draft (path, 0, 0, error);
}

AgcImage *
agc_image_load_draft (const char *path, int draft_w, int draft_h, GError **error)
{
  return agc_image_load_resized (path, draft_w, draft_h, NULL, NULL, error);
}

static AgcImage *
image_load (const char *path, int draft_w, int draft_h, const AgcJpegResize *resize,
            AgcJpegDecoded *decoded, GError **error)
{
  g_return_val_if_fail (path != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  g_autofree char *name = g_filename_display_name (path);

  GStatBuf st;
  if (g_stat (path, &st) != 0)
    {
      int saved_errno = errno;
      g_set_error (error, AGC_ERROR, AGC_ERROR_IO, "%s: cannot open (%s)", name,
                   g_strerror (saved_errno));
      return NULL;
    }
  if (S_ISDIR (st.st_mode))
    {
      g_set_error (error, AGC_ERROR, AGC_ERROR_IO, "%s: is a folder, not an image", name);
      return NULL;
    }
  /* A FIFO or a device would block gdk-pixbuf's read forever: only regular
   * files go on (gdk-pixbuf opens the path again; a swap in between is the
   * owner's own doing). */
  int fd = agc_open_regular (path, &st, error);
  if (fd < 0)
    return NULL;
  close (fd);
  if (st.st_size == 0)
    {
      g_set_error (error, AGC_ERROR, AGC_ERROR_FORMAT, "%s: empty file (0 bytes)", name);
      return NULL;
    }

  gboolean handled;
  AgcImage *jpeg = load_jpeg (path, name, draft_w, draft_h, resize, decoded, &handled, error);
  if (handled)
    return jpeg;

  /* The header alone gives the size, so absurd images are refused before
   * gdk-pixbuf allocates anything for them. */
  int width = 0, height = 0;
  GdkPixbufFormat *format = gdk_pixbuf_get_file_info (path, &width, &height);
  g_autofree char *format_name = format != NULL ? gdk_pixbuf_format_get_name (format) : NULL;
  if (format != NULL)
    {
      if (!check_pixel_count (width, height, name, error))
        return NULL;
      if (strcmp (format_name, "jpeg") == 0)
        {
          GMappedFile *mapped = agc_map_regular_file (path, error);
          gboolean complete
            = mapped != NULL
              && check_jpeg_complete ((const guint8 *) g_mapped_file_get_contents (mapped),
                                      g_mapped_file_get_length (mapped), name, error);
          if (mapped != NULL)
            g_mapped_file_unref (mapped);
          if (!complete)
            return NULL;
        }
    }

  /* gdk_pixbuf_new_from_file uses each loader's one-shot path; for JPEG that
   * decodes progressive files in one go with libjpeg's defaults, as PIL does
   * (the incremental loader turns block smoothing off between scans). */
  GError *pixbuf_error = NULL;
  GdkPixbuf *pixbuf = gdk_pixbuf_new_from_file (path, &pixbuf_error);
  if (pixbuf == NULL)
    {
      if (format == NULL)
        g_set_error (error, AGC_ERROR, AGC_ERROR_UNSUPPORTED, "%s: not a supported image (%s)",
                     name, pixbuf_reason (pixbuf_error));
      else
        g_set_error (error, AGC_ERROR, decode_error_code (pixbuf_error),
                     "%s: cannot decode %s image (%s)", name,
                     format_name, pixbuf_reason (pixbuf_error));
      g_error_free (pixbuf_error);
      return NULL;
    }
  if (format == NULL
      && !check_pixel_count (gdk_pixbuf_get_width (pixbuf), gdk_pixbuf_get_height (pixbuf),
                             name, error))
    {
      g_object_unref (pixbuf);
      return NULL;
    }

  GdkPixbuf *oriented = gdk_pixbuf_apply_embedded_orientation (pixbuf);
  g_object_unref (pixbuf);
  if (oriented == NULL)
    {
      g_set_error (error, AGC_ERROR, AGC_ERROR_IO,
                   "%s: not enough memory to apply the EXIF orientation", name);
      return NULL;
    }
  AgcImage *image = image_from_pixbuf (oriented, name, error);
  g_object_unref (oriented);
  return image;
}

AgcImage *
agc_image_load_resized (const char *path, int draft_w, int draft_h, const AgcJpegResize *resize,
                        AgcJpegDecoded *decoded, GError **error)
{
  AgcJpegDecoded info = { 0 };
  AgcImage *image = image_load (path, draft_w, draft_h, resize, &info, error);
  if (image != NULL && !info.resized) /* not through agc_jpeg_decode, or left whole */
    info = (AgcJpegDecoded) { .width = image->width, .height = image->height };
  if (decoded != NULL)
    *decoded = info;
  return image;
}
