/* synth-output.c — atomic files and PNG encoding. */
#include "synth-output.h"

#include "agriclip.h"

#include <stdlib.h>
#include <zlib.h>

/* stb's own deflate allocates a large hash table per image, which costs
 * more than drawing one; zlib with a small window and hash (images are
 * small, rows a few hundred bytes) allocates little and runs faster. */
static unsigned char *
zlib_compress (unsigned char *data, int data_len, int *out_len, int quality)
{
  (void) quality;
  z_stream z = { 0 };
  if (deflateInit2 (&z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 12, 5, Z_DEFAULT_STRATEGY) != Z_OK)
    return NULL;
  uLong bound = deflateBound (&z, (uLong) data_len);
  unsigned char *out = malloc (bound); // stb frees it with free ()
  z.next_in = data;
  z.avail_in = (uInt) data_len;
  z.next_out = out;
  z.avail_out = (uInt) bound;
  gboolean ok = out && deflate (&z, Z_FINISH) == Z_STREAM_END;
  *out_len = (int) z.total_out;
  deflateEnd (&z);
  if (ok)
    return out;
  free (out);
  return NULL;
}

/* The encoder only: in memory, no stdio, private to this file. */
#define STB_IMAGE_WRITE_IMPLEMENTATION
#define STB_IMAGE_WRITE_STATIC
#define STBI_WRITE_NO_STDIO
#define STBIW_ZLIB_COMPRESS zlib_compress
/* Unused encoders of the header (BMP, TGA, HDR, JPEG) are static here: GCC
 * warns about them at the end of the file, so this stays on for all of it. */
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wsign-compare"
#include <stb_image_write.h>
#pragma GCC diagnostic pop

gboolean
synth_write_file (const char *path, const void *data, gsize len, GError **error)
{
  /* CONSISTENT: temporary file + rename.  ONLY_EXISTING: fsync only when
   * replacing a file, so writing thousands of new images stays fast. */
  GError *local = NULL;
  if (g_file_set_contents_full (path, data, (gssize) len,
                                G_FILE_SET_CONTENTS_CONSISTENT
                                    | G_FILE_SET_CONTENTS_ONLY_EXISTING,
                                0666, &local))
    return TRUE;
  /* GLib's message already names the file. */
  g_set_error_literal (error, AGC_ERROR, AGC_ERROR_IO, local->message);
  g_error_free (local);
  return FALSE;
}

static void
append (void *context, void *data, int size)
{
  g_byte_array_append (context, data, (guint) size);
}

gboolean
synth_write_png (const char *path, const guint8 *rgb, int width, int height, GError **error)
{
  g_autoptr (GByteArray) png = g_byte_array_sized_new ((guint) (width * height * 3 + 1024));
  if (!stbi_write_png_to_func (append, png, width, height, 3, rgb, width * 3))
    {
      g_autofree char *shown = g_filename_display_name (path);
      g_set_error (error, AGC_ERROR, AGC_ERROR_IO, "%s: PNG encoding failed", shown);
      return FALSE;
    }
  return synth_write_file (path, png->data, png->len, error);
}
