/* tag-journal.c — the journal that makes a tagging run resumable after a
 * kill at any point (format in tag-journal.h). */
#include "tagging/tag-journal.h"

#include "tagging/tag-results.h"

#include <errno.h>
#include <fcntl.h>
#include <glib/gstdio.h>
#include <string.h>
#include <unistd.h>

static gboolean
io_error (GError **error, const char *path, const char *what, int code)
{
  g_autofree char *shown = g_filename_display_name (path);
  g_set_error (error, AGC_ERROR, AGC_ERROR_IO, "%s: %s: %s", shown, what, g_strerror (code));
  return FALSE;
}

gboolean
agc_tag_journal_read (const char *run_dir, AgcTagJournalState *state, GError **error)
{
  *state = (AgcTagJournalState) { 0 };
  g_autofree char *path = g_build_filename (run_dir, AGC_TAG_JOURNAL_FILE, NULL);
  g_autofree char *data = NULL;
  gsize size = 0;
  GError *local = NULL;
  if (!g_file_get_contents (path, &data, &size, &local))
    {
      gboolean missing = g_error_matches (local, G_FILE_ERROR, G_FILE_ERROR_NOENT);
      if (!missing)
        io_error (error, path, "cannot read", EIO);
      g_error_free (local);
      return missing;
    }
  for (const char *line = data, *end; (end = memchr (line, '\n', data + size - line));
       line = end + 1)
    {
      gint64 bytes, images;
      int skipped;
      g_autofree char *text = g_strndup (line, end - line);
      if (sscanf (text, "committed %" G_GINT64_FORMAT " %" G_GINT64_FORMAT, &bytes, &images) == 2)
        {
          state->committed_bytes = bytes;
          state->committed_images = images;
          state->complete = FALSE;
        }
      else if (sscanf (text, "complete %d", &skipped) == 1)
        {
          state->complete = TRUE;
          state->skipped = skipped;
        }
      state->journal_bytes = end + 1 - data;
    }
  return TRUE;
}

static gboolean
truncate_to (const char *path, gint64 length, GError **error)
{
  GStatBuf st;
  if (g_stat (path, &st) != 0)
    return errno == ENOENT && length == 0 ? TRUE : io_error (error, path, "cannot read", errno);
  if (st.st_size == length)
    return TRUE;
  if (st.st_size < length)
    {
      g_autofree char *shown = g_filename_display_name (path);
      g_set_error (error, AGC_ERROR, AGC_ERROR_FORMAT,
                   "%s: shorter (%" G_GINT64_FORMAT " bytes) than its journal says "
                   "(%" G_GINT64_FORMAT "): the run folder was changed by hand",
                   shown, (gint64) st.st_size, length);
      return FALSE;
    }
  if (truncate (path, length) != 0)
    return io_error (error, path, "cannot cut back", errno);
  return TRUE;
}

gboolean
agc_tag_journal_recover (const char *run_dir, AgcTagJournalState *state, GError **error)
{
  if (!agc_tag_journal_read (run_dir, state, error))
    return FALSE;
  g_autofree char *results = g_build_filename (run_dir, AGC_TAG_RESULTS_FILE, NULL);
  g_autofree char *journal = g_build_filename (run_dir, AGC_TAG_JOURNAL_FILE, NULL);
  return truncate_to (results, state->committed_bytes, error)
         && truncate_to (journal, state->journal_bytes, error);
}

gboolean
agc_tag_journal_append (const char *run_dir, const char *line, GError **error)
{
  g_autofree char *path = g_build_filename (run_dir, AGC_TAG_JOURNAL_FILE, NULL);
  int fd = g_open (path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0)
    return io_error (error, path, "cannot open", errno);
  size_t n = strlen (line);
  gboolean ok = write (fd, line, n) == (ssize_t) n;
  int code = errno;
  close (fd);
  return ok ? TRUE : io_error (error, path, "cannot write", code);
}
