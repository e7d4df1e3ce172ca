/* synth-output.h — files of `agriclip synth`, each written atomically
 * (a temporary file in the same folder, renamed over the name), so that a
 * stopped run never leaves a half-written image or caption list. */
#pragma once

#include <glib.h>

/* Writes len bytes to path atomically; the error names the file. */
gboolean synth_write_file (const char *path, const void *data, gsize len, GError **error);

/* rgb[height, width, 3] as a PNG (stb_image_write: the same bytes for the
 * same pixels), written atomically. */
gboolean synth_write_png (const char *path, const guint8 *rgb, int width, int height,
                          GError **error);
