/* regular-file.h — opening files to read without hanging: only regular
 * files are opened (a FIFO, a device or a socket in a model folder, a cache or
 * an image folder would block a read forever). */
#pragma once

#include <glib.h>
#include <sys/stat.h>

/* Opens path read-only (O_CLOEXEC).  The open itself is non-blocking, so a
 * FIFO with no writer cannot stop it; then fstat refuses anything that is not
 * a regular file, and O_NONBLOCK is cleared again.  Returns the descriptor, or
 * -1 with AGC_ERROR_IO ("NAME: cannot open (…)" / "NAME: not a regular file
 * (a FIFO)"; NAME is path's display name).  When st is not NULL it receives the
 * file's status. */
int agc_open_regular (const char *path, struct stat *st, GError **error);

/* Reads the whole of a regular file of at most max_size bytes into a new
 * NUL-terminated buffer (g_free it); *length (may be NULL) excludes the NUL.
 * AGC_ERROR_IO when it cannot be read, AGC_ERROR_FORMAT when it is larger. */
gboolean agc_read_regular_file (const char *path, gsize max_size, char **contents, gsize *length,
                                GError **error);

/* Maps a regular file read-only (g_mapped_file_new_from_fd); errors as above. */
GMappedFile *agc_map_regular_file (const char *path, GError **error);
