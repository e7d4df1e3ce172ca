/* pull.c — fetching every file of a catalogue model into DIR/NAME
 * (agriclip.h, "model hub"): a staging folder DIR/.NAME.partial/, locked,
 * renamed to DIR/NAME only when every file is there and checked, so a
 * folder named after a model is always complete and an interrupted pull
 * resumes. */
#include "hub/download.h"

#include "formats/weights.h"
#include "support/json-file.h"

#include <errno.h>
#include <fcntl.h>
#include <glib/gstdio.h>
#include <string.h>
#include <unistd.h>

/* Where progress goes, and what stops the pull. */
typedef struct
{
  AgcPullProgressFunc progress;
  gpointer user_data;
  GCancellable *cancellable;
  gint64 deadline;             // monotonic time, 0 for none
  int min_rate, min_rate_s;    // 0: download.c's defaults
} Pull;

enum
{
  TIME_LIMIT_S = 24 * 3600, // a pull that takes longer than this is given up
};

/* The non-negative integer in environment variable name, or fallback when
 * unset; an error when it is set to something else. */
static gboolean
env_integer (const char *name, gint64 fallback, gint64 *value, GError **error)
{
  const char *text = g_getenv (name);
  *value = fallback;
  if (text == NULL || *text == '\0')
    return TRUE;
  guint64 n;
  if (!g_ascii_string_to_unsigned (text, 10, 0, G_MAXINT32, &n, NULL))
    {
      g_set_error (error, AGC_ERROR, AGC_ERROR_INPUT,
                   "%s=%s: not a whole number from 0 to %d", name, text, G_MAXINT32);
      return FALSE;
    }
  *value = (gint64) n;
  return TRUE;
}

/* The limits of agriclip.h ("model hub") from the environment. */
static gboolean
read_limits (Pull *pull, GError **error)
{
  gint64 time_limit, rate, rate_s;
  if (!env_integer ("AGRICLIP_PULL_TIME_LIMIT", TIME_LIMIT_S, &time_limit, error)
      || !env_integer ("AGRICLIP_PULL_MIN_RATE", 0, &rate, error)
      || !env_integer ("AGRICLIP_PULL_MIN_RATE_TIME", 0, &rate_s, error))
    return FALSE;
  pull->deadline = time_limit > 0 ? g_get_monotonic_time () + time_limit * G_USEC_PER_SEC : 0;
  pull->min_rate = (int) rate;
  pull->min_rate_s = (int) rate_s;
  return TRUE;
}

static void
report (const Pull *pull, AgcPullStage stage, const AgcCatalogueFile *f, AgcPullProgress *p)
{
  AgcDownload d = { .file = f, .progress = pull->progress, .user_data = pull->user_data };
  agc_download_report (&d, stage, p);
}

static char *
staging_folder (const char *dir, const char *name)
{
  g_autofree char *hidden = g_strdup_printf (".%s.partial", name);
  return g_build_filename (dir, hidden, NULL);
}

/* Holds an exclusive lock on staging/.lock so that two pulls of one model
 * do not write the same files.  Returns the descriptor, -1 on error. */
static int
lock_staging (const char *staging, GError **error)
{
  g_autofree char *path = g_build_filename (staging, ".lock", NULL);
  int fd = open (path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  struct flock lock = { .l_type = F_WRLCK, .l_whence = SEEK_SET };
  if (fd >= 0 && fcntl (fd, F_SETLK, &lock) == 0)
    return fd;
  int e = errno;
  if (fd >= 0)
    close (fd);
  if (e == EACCES || e == EAGAIN)
    g_set_error (error, AGC_ERROR, AGC_ERROR_IO,
                 "%s: another agriclip is pulling into this folder; wait for it to finish",
                 staging);
  else
    g_set_error (error, AGC_ERROR, AGC_ERROR_IO, "%s: %s", path, g_strerror (e));
  return -1;
}

static void
report_file (const Pull *pull, const AgcCatalogueFile *f, const char *dest, const char *sha256,
             AgcPullCheck check)
{
  GStatBuf st;
  AgcPullProgress p = { .dest = dest, .sha256 = sha256, .check = check,
                        .bytes = g_stat (dest, &st) == 0 ? (gint64) st.st_size : -1 };
  report (pull, AGC_PULL_CHECKED, f, &p);
}

/* A file already in the staging folder (an earlier pull, or placed by
 * hand): kept when it matches what the catalogue knows, deleted otherwise. */
static gboolean
check_present (const Pull *pull, const AgcCatalogueFile *f, const char *dest, gboolean *present,
               GError **error)
{
  *present = g_file_test (dest, G_FILE_TEST_IS_REGULAR);
  if (!*present)
    return TRUE;
  char sha256[AGC_HUB_SHA256_HEX];
  if (!agc_hub_file_sha256 (sha256, dest, error))
    return FALSE;
  GStatBuf st;
  gboolean size_ok = f->size < 0 || (g_stat (dest, &st) == 0 && st.st_size == f->size);
  if (size_ok && (f->sha256 == NULL || strcmp (sha256, f->sha256) == 0))
    {
      report_file (pull, f, dest, sha256,
                   f->sha256 ? AGC_PULL_CHECK_CATALOGUE_SHA256
                   : f->size >= 0 ? AGC_PULL_CHECK_CATALOGUE_SIZE : AGC_PULL_CHECK_NONE);
      return TRUE;
    }
  unlink (dest);
  *present = FALSE;
  if (f->repository || f->url)
    {
      AgcPullProgress p = { .dest = dest };
      report (pull, AGC_PULL_MISMATCH, f, &p);
      return TRUE;
    }
  g_set_error (error, AGC_HUB_ERROR, AGC_HUB_ERROR_CHECKSUM,
               "%s: size or SHA-256 differs from the catalogue's (%s); it was deleted: fetch "
               "it again (%s)",
               dest, f->sha256 ? f->sha256 : "size only", f->manual);
  return FALSE;
}

static gboolean
download_file (const Pull *pull, const AgcCatalogueFile *f, const char *dest, GError **error)
{
  g_autofree char *url = agc_catalogue_file_url (f);
  const char *token = f->repository ? g_getenv ("HF_TOKEN") : NULL;
  if (token && !*token)
    token = NULL;
  g_autofree char *hint
    = f->repository == NULL ? NULL
      : token ? g_strdup_printf ("HF_TOKEN was sent: check that its account may read %s",
                                 f->repository)
              : g_strdup_printf ("if %s is gated or private, accept its terms on the Hub and "
                                 "set HF_TOKEN to an access token",
                                 f->repository);
  AgcDownload download = {
    .url = url, .bearer_token = token, .dest = dest, .label = f->path,
    .size = f->size, .sha256 = f->sha256, .denied_hint = hint,
    .file = f, .progress = pull->progress, .user_data = pull->user_data,
    .cancellable = pull->cancellable,
    .deadline = pull->deadline, .min_rate = pull->min_rate, .min_rate_s = pull->min_rate_s,
  };
  AgcPullProgress p = { .url = url };
  agc_download_report (&download, AGC_PULL_DOWNLOAD, &p);
  char sha256[AGC_HUB_SHA256_HEX];
  AgcPullCheck check;
  if (!agc_download (sha256, &check, &download, error))
    return FALSE;
  report_file (pull, f, dest, sha256, check);
  return TRUE;
}

/* Fetches every file of m into staging; manual_missing lists the files a
 * person has to put there. */
static gboolean
fill_staging (const Pull *pull, const AgcCatalogueModel *m, const char *staging,
              GPtrArray *manual_missing, GError **error)
{
  for (guint i = 0; i < m->files->len; i++)
    {
      const AgcCatalogueFile *f = m->files->pdata[i];
      if (g_cancellable_set_error_if_cancelled (pull->cancellable, error))
        return FALSE;
      g_autofree char *dest = agc_catalogue_file_dest (f, staging);
      g_autofree char *parent = g_path_get_dirname (dest);
      if (g_mkdir_with_parents (parent, 0755) != 0)
        {
          int e = errno;
          g_set_error (error, AGC_ERROR, AGC_ERROR_IO, "%s: %s", parent, g_strerror (e));
          return FALSE;
        }
      gboolean present;
      if (!check_present (pull, f, dest, &present, error))
        return FALSE;
      if (present)
        continue;
      if (f->repository == NULL && f->url == NULL)
        g_ptr_array_add (manual_missing, (gpointer) f);
      else if (!download_file (pull, f, dest, error))
        return FALSE;
    }
  return TRUE;
}

/* Whether the file at dest, when the catalogue has no digest for it, reads
 * as what its name says: JSON parses, a
 * checkpoint opens (headers, offsets, CRCs), so that a page of HTML, a
 * truncated or altered file that no size or digest caught is not taken for
 * the model.  A file that fails is deleted, to be fetched again. */
static gboolean
check_contents (const AgcCatalogueFile *f, const char *dest, GError **error)
{
  static const char *const checkpoints[] = { ".safetensors", ".bin", ".pt", ".pth", ".ckpt",
                                             NULL };
  if (f->sha256 != NULL)
    return TRUE; // the catalogue's digest pins the very bytes
  GError *problem = NULL;
  gboolean ok = TRUE;
  if (g_str_has_suffix (f->path, ".json"))
    {
      g_autoptr (JsonParser) parser = json_parser_new_immutable ();
      ok = agc_json_parse_file (parser, dest, dest, &problem);
    }
  else
    for (const char *const *s = checkpoints; *s != NULL; s++)
      if (g_str_has_suffix (f->path, *s))
        {
          AgcWeights *weights = agc_weights_open (dest, &problem);
          agc_weights_free (weights);
          // a valid checkpoint agriclip cannot read (a legacy pickle) is still the file
          ok = weights != NULL || g_error_matches (problem, AGC_ERROR, AGC_ERROR_UNSUPPORTED);
          break;
        }
  if (ok)
    {
      g_clear_error (&problem);
      return TRUE;
    }
  unlink (dest);
  g_set_error (error, AGC_HUB_ERROR, AGC_HUB_ERROR_CHECKSUM,
               "%s (the download is damaged); it was deleted: run the same command again to "
               "fetch it again",
               problem->message);
  g_error_free (problem);
  return FALSE;
}

static gboolean
check_all_contents (const AgcCatalogueModel *m, const char *staging, GError **error)
{
  for (guint i = 0; i < m->files->len; i++)
    {
      const AgcCatalogueFile *f = m->files->pdata[i];
      g_autofree char *dest = agc_catalogue_file_dest (f, staging);
      if (!check_contents (f, dest, error))
        return FALSE;
    }
  return TRUE;
}

/* GCancellable's error in the library's domain, as every other call. */
static void
cancelled_to_agc (GError **error)
{
  if (error && *error && g_error_matches (*error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    {
      g_autofree char *message = g_strdup ((*error)->message);
      g_clear_error (error);
      g_set_error_literal (error, AGC_ERROR, AGC_ERROR_CANCELLED, message);
    }
}

gboolean
agc_model_pull (const AgcCatalogueModel *model, const char *dir, AgcPullProgressFunc progress,
                gpointer user_data, AgcPullResult *result, GCancellable *cancellable,
                GError **error)
{
  g_return_val_if_fail (model != NULL && dir != NULL && result != NULL, FALSE);
  *result = (AgcPullResult){ .folder = g_build_filename (dir, model->name, NULL),
                             .staging = staging_folder (dir, model->name),
                             .manual = g_ptr_array_new () };
  if (g_file_test (result->folder, G_FILE_TEST_EXISTS))
    {
      result->was_present = TRUE;
      return TRUE;
    }
  if (g_mkdir_with_parents (result->staging, 0755) != 0)
    {
      int e = errno;
      g_set_error (error, AGC_ERROR, AGC_ERROR_IO, "%s: %s", result->staging, g_strerror (e));
      agc_pull_result_clear (result);
      return FALSE;
    }
  int lock = lock_staging (result->staging, error);
  if (lock < 0)
    {
      agc_pull_result_clear (result);
      return FALSE;
    }

  Pull pull = { .progress = progress, .user_data = user_data, .cancellable = cancellable };
  g_autofree char *lock_path = g_build_filename (result->staging, ".lock", NULL);
  gboolean ok = read_limits (&pull, error)
                && fill_staging (&pull, model, result->staging, result->manual, error);
  cancelled_to_agc (error);
  if (ok && result->manual->len == 0)
    ok = check_all_contents (model, result->staging, error);
  if (ok && result->manual->len == 0)
    {
      // complete and checked: make it visible in one step
      unlink (lock_path);
      if (rename (result->staging, result->folder) != 0)
        {
          int e = errno;
          g_set_error (error, AGC_ERROR, AGC_ERROR_IO, "%s: cannot rename to %s: %s",
                       result->staging, result->folder, g_strerror (e));
          ok = FALSE;
        }
    }
  if (!ok && result->manual->len == 0)
    {
      // leave no empty staging folder behind (one with files stays, to resume)
      unlink (lock_path);
      g_rmdir (result->staging);
    }
  close (lock);
  if (!ok)
    agc_pull_result_clear (result);
  return ok;
}

void
agc_pull_result_clear (AgcPullResult *result)
{
  if (!result)
    return;
  g_clear_pointer (&result->folder, g_free);
  g_clear_pointer (&result->staging, g_free);
  g_clear_pointer (&result->manual, g_ptr_array_unref);
  result->was_present = FALSE;
}
