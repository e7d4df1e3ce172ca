/* regular-file.c — files opened for reading only when they are regular. */
#include "support/regular-file.h"

#include "agriclip.h"

#include <errno.h>
#include <fcntl.h>
#include <glib/gstdio.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *
kind_of (mode_t mode)
{
  if (S_ISDIR (mode))
    return "a folder";
  if (S_ISFIFO (mode))
    return "a FIFO";
  if (S_ISSOCK (mode))
    return "a socket";
  if (S_ISCHR (mode) || S_ISBLK (mode))
    return "a device";
  return "not a file";
}

static void
fail_errno (GError **error, const char *path, const char *what, int saved)
{
  g_autofree char *shown = g_filename_display_name (path);
  g_set_error (error, AGC_ERROR, AGC_ERROR_IO, "%s: %s (%s)", shown, what, g_strerror (saved));
}

int
agc_open_regular (const char *path, GStatBuf *st, GError **error)
{
  g_return_val_if_fail (path != NULL, -1);
  // O_NONBLOCK: opening a FIFO for reading waits for a writer otherwise
  int fd = open (path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
  if (fd < 0)
    {
      fail_errno (error, path, "cannot open", errno);
      return -1;
    }
  struct stat status;
  if (fstat (fd, &status) != 0)
    {
      int saved = errno;
      close (fd);
      fail_errno (error, path, "cannot read", saved);
      return -1;
    }
  if (!S_ISREG (status.st_mode))
    {
      close (fd);
      g_autofree char *shown = g_filename_display_name (path);
      g_set_error (error, AGC_ERROR, AGC_ERROR_IO, "%s: not a regular file (%s)", shown,
                   kind_of (status.st_mode));
      return -1;
    }
  int flags = fcntl (fd, F_GETFL);
  if (flags < 0 || fcntl (fd, F_SETFL, flags & ~O_NONBLOCK) != 0)
    {
      int saved = errno;
      close (fd);
      fail_errno (error, path, "cannot read", saved);
      return -1;
    }
  if (st != NULL)
    *st = status;
  return fd;
}

gboolean
agc_read_regular_file (const char *path, gsize max_size, char **contents, gsize *length,
                       GError **error)
{
  g_return_val_if_fail (contents != NULL, FALSE);
  *contents = NULL;
  struct stat st;
  int fd = agc_open_regular (path, &st, error);
  if (fd < 0)
    return FALSE;
  if ((guint64) st.st_size > max_size)
    {
      close (fd);
      g_autofree char *shown = g_filename_display_name (path);
      g_set_error (error, AGC_ERROR, AGC_ERROR_FORMAT,
                   "%s: file is %" G_GUINT64_FORMAT " bytes, more than the %" G_GSIZE_FORMAT
                   " accepted", shown, (guint64) st.st_size, max_size);
      return FALSE;
    }
  // read to the end rather than trusting st_size: the file may grow or shrink
  gsize capacity = (gsize) st.st_size + 1, used = 0;
  char *buffer = g_malloc (capacity + 1);
  for (;;)
    {
      if (used == capacity)
        {
          if (capacity > max_size)
            {
              g_free (buffer);
              close (fd);
              g_autofree char *shown = g_filename_display_name (path);
              g_set_error (error, AGC_ERROR, AGC_ERROR_FORMAT,
                           "%s: file is more than the %" G_GSIZE_FORMAT " bytes accepted", shown,
                           max_size);
              return FALSE;
            }
          capacity = MIN (capacity * 2, max_size + 1);
          buffer = g_realloc (buffer, capacity + 1);
        }
      ssize_t n = read (fd, buffer + used, capacity - used);
      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0)
        {
          int saved = errno;
          g_free (buffer);
          close (fd);
          fail_errno (error, path, "cannot read", saved);
          return FALSE;
        }
      if (n == 0)
        break;
      used += (gsize) n;
    }
  close (fd);
  buffer[used] = '\0';
  *contents = buffer;
  if (length != NULL)
    *length = used;
  return TRUE;
}

GMappedFile *
agc_map_regular_file (const char *path, GError **error)
{
  int fd = agc_open_regular (path, NULL, error);
  if (fd < 0)
    return NULL;
  GError *local = NULL;
  GMappedFile *mapped = g_mapped_file_new_from_fd (fd, FALSE, &local);
  close (fd);
  if (mapped == NULL)
    {
      g_autofree char *shown = g_filename_display_name (path);
      g_set_error (error, AGC_ERROR, AGC_ERROR_IO, "%s: cannot read (%s)", shown, local->message);
      g_error_free (local);
    }
  return mapped;
}
