/* download.c — one resumable, verified HTTP(S) download with libcurl. */
#include "hub/download.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <glib/gstdio.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

G_DEFINE_QUARK (agc-hub-error-quark, agc_hub_error)

enum
{
  MAX_ATTEMPTS = 3,      // per call; a later call resumes where the last one stopped
  CONNECT_TIMEOUT_S = 30,
  MIN_RATE = 1024,       // bytes/s: a connection slower than this for MIN_RATE_S
  MIN_RATE_S = 60,       // seconds counts as broken (a 2 bytes/s drip ends)
  READ_CHUNK = 1 << 20,
};

typedef struct
{
  const AgcDownload *d;
  CURL *curl;
  int fd;              // DEST.part, opened for appending
  const char *part;
  GChecksum *sum;      // of every byte in DEST.part
  gint64 offset;       // bytes in DEST.part before this request
  gint64 received;     // bytes appended by this request
  gboolean body_started;
  gint64 range_start;  // start of the latest response's Content-Range, -1 when none
  char *hub_message;   // X-Error-Message of the latest response (Hugging Face)
  int write_errno;     // why a write failed, 0 when none did
  char *problem;       // why the body was refused, or NULL
  gboolean refused;    // the body is not the file (too long, a web page): no retry
  // what the server says about the file; kept across redirects and requests
  gint64 linked_size;  // X-Linked-Size (the Hub, for LFS files), -1 when not sent
  char linked_sha256[AGC_HUB_SHA256_HEX]; // X-Linked-Etag or a SHA-256 ETag, "" when none
  gint64 announced;    // the file's size by the latest response, -1 when not said
  // of the latest response only
  gint64 content_length; // -1 when not sent
  gint64 range_total;    // the "/TOTAL" of its Content-Range, -1 when none
  gboolean html;         // Content-Type: text/html
} Transfer;

/* ---- hashing ----------------------------------------------------------- */

/* Feeds the first length bytes of path into sum. */
static gboolean
hash_prefix (GChecksum *sum, const char *path, gint64 length, GError **error)
{
  int fd = open (path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    {
      int e = errno;
      g_set_error (error, AGC_HUB_ERROR, AGC_HUB_ERROR_DISK, "%s: cannot read: %s",
                   path, g_strerror (e));
      return FALSE;
    }
  g_autofree guint8 *buffer = g_malloc (READ_CHUNK);
  gint64 done = 0;
  while (length < 0 || done < length)
    {
      size_t want = length < 0 ? READ_CHUNK : (size_t) MIN (READ_CHUNK, length - done);
      ssize_t n = read (fd, buffer, want);
      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0 || (n == 0 && length >= 0))
        {
          int e = n < 0 ? errno : EIO;
          close (fd);
          g_set_error (error, AGC_HUB_ERROR, AGC_HUB_ERROR_DISK,
                       "%s: cannot read: %s", path, n < 0 ? g_strerror (e) : "file shrank");
          return FALSE;
        }
      if (n == 0)
        break;
      g_checksum_update (sum, buffer, n);
      done += n;
    }
  close (fd);
  return TRUE;
}

gboolean
agc_hub_file_sha256 (char sha256[AGC_HUB_SHA256_HEX], const char *path, GError **error)
{
  g_autoptr (GChecksum) sum = g_checksum_new (G_CHECKSUM_SHA256);
  if (!hash_prefix (sum, path, -1, error))
    return FALSE;
  g_strlcpy (sha256, g_checksum_get_string (sum), AGC_HUB_SHA256_HEX);
  return TRUE;
}

/* ---- progress ---------------------------------------------------------- */

void
agc_download_report (const AgcDownload *d, AgcPullStage stage, AgcPullProgress *progress)
{
  if (d->progress == NULL)
    return;
  progress->stage = stage;
  progress->file = d->file;
  if (progress->dest == NULL)
    progress->dest = d->dest;
  d->progress (progress, d->user_data);
}

static void
report_bytes (Transfer *t, gint64 total)
{
  AgcPullProgress p = { .bytes = t->offset + t->received, .total = total,
                        .request_bytes = t->received };
  agc_download_report (t->d, AGC_PULL_BYTES, &p);
}

static int
on_progress (void *user, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
             curl_off_t ulnow)
{
  (void) dlnow, (void) ultotal, (void) ulnow;
  Transfer *t = user;
  if (g_cancellable_is_cancelled (t->d->cancellable))
    return 1; // curl ends the transfer with CURLE_ABORTED_BY_CALLBACK
  gint64 total = t->d->size;
  if (total < 0 && t->body_started && dltotal > 0)
    total = t->offset + dltotal;
  report_bytes (t, total);
  return 0;
}

/* ---- the transfer ------------------------------------------------------ */

/* A header's non-negative size, -1 when it is not one. */
static gint64
header_size (const char *value)
{
  guint64 n;
  g_autofree char *v = g_strstrip (g_strdup (value));
  return g_ascii_string_to_unsigned (v, 10, 0, G_MAXINT64, &n, NULL) ? (gint64) n : -1;
}

/* An ETag that is a SHA-256 (64 hex digits, maybe quoted or weak) into
 * sha256, lower-cased; other ETags leave it unchanged. */
static void
header_sha256 (char sha256[AGC_HUB_SHA256_HEX], const char *value)
{
  g_autofree char *v = g_strstrip (g_strdup (value));
  const char *tag = g_str_has_prefix (v, "W/") ? v + 2 : v;
  gsize n = strlen (tag);
  if (n >= 2 && tag[0] == '"' && tag[n - 1] == '"')
    tag++, n -= 2;
  if (n != AGC_HUB_SHA256_HEX - 1)
    return;
  for (gsize i = 0; i < n; i++)
    if (!g_ascii_isxdigit (tag[i]))
      return;
  for (gsize i = 0; i < n; i++)
    sha256[i] = g_ascii_tolower (tag[i]);
  sha256[n] = '\0';
}

/* The file's size as far as it is known: the catalogue's, else the Hub's,
 * else what the latest response said; -1 when unknown. */
static gint64
expected_size (const Transfer *t)
{
  return t->d->size >= 0 ? t->d->size : t->linked_size >= 0 ? t->linked_size : t->announced;
}

static gboolean
refuse_body (Transfer *t, char *problem)
{
  t->problem = problem;
  t->refused = TRUE;
  return FALSE;
}

static size_t
on_header (char *data, size_t size, size_t count, void *user)
{
  Transfer *t = user;
  size_t n = size * count;
  g_autofree char *line = g_strchomp (g_strndup (data, n));
  if (g_str_has_prefix (line, "HTTP/"))
    {
      // a new response (after a redirect, say): forget the previous one's headers
      t->range_start = -1;
      t->range_total = -1;
      t->content_length = -1;
      t->html = FALSE;
      g_clear_pointer (&t->hub_message, g_free);
    }
  else if (g_ascii_strncasecmp (line, "content-range:", 14) == 0)
    {
      const char *value = line + 14;
      while (*value == ' ')
        value++;
      long long start, end, total;
      if (sscanf (value, "bytes %lld-%lld/%lld", &start, &end, &total) == 3 && total >= 0)
        t->range_total = total;
      if (sscanf (value, "bytes %lld-", &start) == 1)
        t->range_start = start;
    }
  else if (g_ascii_strncasecmp (line, "content-length:", 15) == 0)
    t->content_length = header_size (line + 15);
  else if (g_ascii_strncasecmp (line, "x-linked-size:", 14) == 0)
    t->linked_size = header_size (line + 14);
  else if (g_ascii_strncasecmp (line, "x-linked-etag:", 14) == 0)
    header_sha256 (t->linked_sha256, line + 14);
  else if (g_ascii_strncasecmp (line, "etag:", 5) == 0 && t->linked_sha256[0] == '\0')
    header_sha256 (t->linked_sha256, line + 5); // a git blob's SHA-1 (40 digits) is not taken
  else if (g_ascii_strncasecmp (line, "content-type:", 13) == 0)
    {
      g_autofree char *type = g_ascii_strdown (g_strstrip (line + 13), -1);
      t->html = g_str_has_prefix (type, "text/html");
    }
  else if (g_ascii_strncasecmp (line, "x-error-message:", 16) == 0)
    {
      g_free (t->hub_message);
      t->hub_message = g_strdup (g_strstrip (line + 16));
    }
  return n;
}

/* Empties DEST.part: the next bytes are the file's first. */
static gboolean
restart_part (Transfer *t)
{
  if (ftruncate (t->fd, 0) != 0)
    {
      t->write_errno = errno;
      return FALSE;
    }
  g_checksum_reset (t->sum);
  t->offset = 0;
  return TRUE;
}

/* Decides, once the final response's headers are in, what its body is. */
static gboolean
start_body (Transfer *t)
{
  long code = 0;
  curl_easy_getinfo (t->curl, CURLINFO_RESPONSE_CODE, &code);
  t->body_started = TRUE;
  if (code == 206 && t->range_start != t->offset)
    {
      t->problem = g_strdup_printf ("the server sent bytes from offset %" G_GINT64_FORMAT
                                    " where offset %" G_GINT64_FORMAT " was asked for",
                                    t->range_start, t->offset);
      return FALSE;
    }
  if (code != 200 && code != 206)
    return FALSE;
  // a web page where a file was asked for: a login wall, a proxy's error page
  if (t->html && !g_str_has_suffix (t->d->label, ".html") && !g_str_has_suffix (t->d->label, ".htm"))
    return refuse_body (t, g_strdup ("the server sent a web page (text/html), not the file"));
  gint64 total = code == 206 ? t->range_total
                 : t->content_length >= 0 ? t->content_length : -1;
  if (total >= 0)
    t->announced = total;
  gint64 expected = expected_size (t);
  if (expected >= 0 && total > expected)
    return refuse_body (t, g_strdup_printf ("the server announced %" G_GINT64_FORMAT
                                            " bytes for a file of %" G_GINT64_FORMAT,
                                            total, expected));
  if (code == 200 && t->offset > 0)
    return restart_part (t); // the server ignored the Range: start over
  return TRUE;
}

static gboolean
write_all (int fd, const char *data, size_t n)
{
  while (n > 0)
    {
      ssize_t written = write (fd, data, n);
      if (written < 0 && errno == EINTR)
        continue;
      if (written <= 0)
        return FALSE;
      data += written;
      n -= (size_t) written;
    }
  return TRUE;
}

static size_t
on_body (char *data, size_t size, size_t count, void *user)
{
  Transfer *t = user;
  size_t n = size * count;
  if (!t->body_started && !start_body (t))
    return 0; // error statuses end here: their body is not the file
  gint64 expected = expected_size (t);
  if (expected >= 0 && t->offset + t->received + (gint64) n > expected)
    {
      // stop at the known size: a server may send without end
      refuse_body (t, g_strdup_printf ("the server sent more than the file's %" G_GINT64_FORMAT
                                       " bytes",
                                       expected));
      return 0;
    }
  if (!write_all (t->fd, data, n))
    {
      t->write_errno = errno ? errno : EIO;
      return 0;
    }
  g_checksum_update (t->sum, (const guchar *) data, n);
  t->received += (gint64) n;
  return n;
}

static CURL *
new_handle (Transfer *t, char *error_text)
{
  const AgcDownload *d = t->d;
  CURL *curl = curl_easy_init ();
  if (curl == NULL)
    return NULL;
  curl_easy_setopt (curl, CURLOPT_URL, d->url);
  curl_easy_setopt (curl, CURLOPT_ERRORBUFFER, error_text);
  curl_easy_setopt (curl, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt (curl, CURLOPT_USERAGENT, "agriclip/" AGRICLIP_VERSION);
  curl_easy_setopt (curl, CURLOPT_PROTOCOLS_STR, "http,https");
  // no downgrade from HTTPS to plain HTTP through a redirect
  curl_easy_setopt (curl, CURLOPT_REDIR_PROTOCOLS_STR,
                    g_str_has_prefix (d->url, "https:") ? "https" : "http,https");
  curl_easy_setopt (curl, CURLOPT_FOLLOWLOCATION, 1L); // the Hub redirects to its CDN
  curl_easy_setopt (curl, CURLOPT_MAXREDIRS, 10L);
  curl_easy_setopt (curl, CURLOPT_CONNECTTIMEOUT, (long) CONNECT_TIMEOUT_S);
  curl_easy_setopt (curl, CURLOPT_LOW_SPEED_LIMIT, (long) (d->min_rate > 0 ? d->min_rate : MIN_RATE));
  curl_easy_setopt (curl, CURLOPT_LOW_SPEED_TIME,
                    (long) (d->min_rate_s > 0 ? d->min_rate_s : MIN_RATE_S));
  if (d->deadline > 0)
    {
      // the whole pull's deadline bounds every request (at least 1 ms: 0 means none)
      gint64 left_ms = (d->deadline - g_get_monotonic_time ()) / 1000;
      curl_easy_setopt (curl, CURLOPT_TIMEOUT_MS, (long) MAX (left_ms, 1));
    }
  if (d->bearer_token)
    {
      // libcurl sends these credentials to the first host only, not to the
      // CDN a redirect points at
      curl_easy_setopt (curl, CURLOPT_HTTPAUTH, (long) CURLAUTH_BEARER);
      curl_easy_setopt (curl, CURLOPT_XOAUTH2_BEARER, d->bearer_token);
    }
  if (t->offset > 0)
    {
      // CURLOPT_RANGE, not RESUME_FROM: a 200 answer must restart, not fail
      g_autofree char *range = g_strdup_printf ("%" G_GINT64_FORMAT "-", t->offset);
      curl_easy_setopt (curl, CURLOPT_RANGE, range);
    }
  curl_easy_setopt (curl, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt (curl, CURLOPT_HEADERDATA, t);
  curl_easy_setopt (curl, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt (curl, CURLOPT_WRITEDATA, t);
  curl_easy_setopt (curl, CURLOPT_XFERINFOFUNCTION, on_progress);
  curl_easy_setopt (curl, CURLOPT_XFERINFODATA, t);
  curl_easy_setopt (curl, CURLOPT_NOPROGRESS, 0L);
  return curl;
}

static void
set_disk_error (GError **error, const char *path, int e)
{
  gboolean full = e == ENOSPC || e == EDQUOT;
  g_set_error (error, AGC_HUB_ERROR, AGC_HUB_ERROR_DISK, "%s: cannot write: %s%s", path,
               g_strerror (e),
               full ? " (the disk is full: free some space, then run the same command again "
                      "to resume)"
                    : "");
}

/* The error of an answer with status code. */
static void
set_http_error (GError **error, const Transfer *t, long code)
{
  const char *what = code == 404   ? "not found"
                     : code == 401 ? "authentication required"
                     : code == 403 ? "access denied"
                     : code >= 500 ? "server error"
                                   : "unexpected answer";
  g_autofree char *hub = t->hub_message ? g_strdup_printf (": %s", t->hub_message) : NULL;
  const char *hint = (code == 401 || code == 403) && t->d->denied_hint ? t->d->denied_hint : NULL;
  g_set_error (error, AGC_HUB_ERROR, AGC_HUB_ERROR_HTTP, "%s: %s (HTTP %ld)%s%s%s",
               t->d->url, what, code, hub ? hub : "", hint ? "; " : "", hint ? hint : "");
}

/* One request.  On failure *retry says whether another request may help. */
static gboolean
transfer_once (Transfer *t, gboolean *retry, GError **error)
{
  char error_text[CURL_ERROR_SIZE] = "";
  *retry = FALSE;
  t->received = 0;
  t->body_started = FALSE;
  t->write_errno = 0;
  t->range_start = -1;
  t->range_total = -1;
  t->content_length = -1;
  t->html = FALSE;
  t->refused = FALSE;
  g_clear_pointer (&t->problem, g_free);
  AgcPullProgress request = { 0 };
  agc_download_report (t->d, AGC_PULL_REQUEST, &request);
  t->curl = new_handle (t, error_text);
  if (t->curl == NULL)
    {
      g_set_error (error, AGC_HUB_ERROR, AGC_HUB_ERROR_NETWORK,
                   "%s: cannot start a transfer (libcurl failed to initialise)", t->d->url);
      return FALSE;
    }
  CURLcode rc = curl_easy_perform (t->curl);
  long code = 0;
  curl_easy_getinfo (t->curl, CURLINFO_RESPONSE_CODE, &code);
  // an answer without a body (an empty file, an error page) never reached on_body
  if (rc == CURLE_OK && !t->body_started && !start_body (t))
    rc = CURLE_WRITE_ERROR;
  curl_easy_cleanup (t->curl);
  t->curl = NULL;
  const char *detail = error_text[0] ? error_text : curl_easy_strerror (rc);

  if (rc == CURLE_OK)
    return TRUE;
  if (rc == CURLE_ABORTED_BY_CALLBACK)
    {
      g_set_error (error, AGC_ERROR, AGC_ERROR_CANCELLED,
                   "%s: cancelled; the %" G_GINT64_FORMAT " bytes received are kept in %s",
                   t->d->url, t->offset + t->received, t->part);
      return FALSE;
    }
  if (t->write_errno != 0)
    {
      set_disk_error (error, t->part, t->write_errno);
      return FALSE;
    }
  if (t->problem != NULL && t->refused)
    {
      unlink (t->part); // not a prefix of the file: nothing to resume from
      g_set_error (error, AGC_HUB_ERROR, AGC_HUB_ERROR_CHECKSUM,
                   "%s: %s; the download was deleted", t->d->url, t->problem);
      return FALSE;
    }
  if (t->d->deadline > 0 && g_get_monotonic_time () >= t->d->deadline)
    {
      g_set_error (error, AGC_HUB_ERROR, AGC_HUB_ERROR_NETWORK,
                   "%s: the pull's time limit ran out after %" G_GINT64_FORMAT " bytes",
                   t->d->url, t->offset + t->received);
      return FALSE;
    }
  if (t->problem != NULL)
    {
      // a server that answers a Range request wrongly: start from scratch
      *retry = restart_part (t);
      g_set_error (error, AGC_HUB_ERROR, AGC_HUB_ERROR_NETWORK, "%s: %s", t->d->url,
                   t->problem);
      return FALSE;
    }
  if (rc == CURLE_WRITE_ERROR && code != 200 && code != 206)
    {
      if (code == 416)
        *retry = restart_part (t); // what we hold is not a prefix of the file any more
      else
        *retry = code >= 500;
      set_http_error (error, t, code);
      return FALSE;
    }
  switch (rc)
    {
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_COULDNT_CONNECT:
      g_set_error (error, AGC_HUB_ERROR, AGC_HUB_ERROR_OFFLINE, "cannot reach %s: %s",
                   t->d->url, detail);
      return FALSE;
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_TOO_MANY_REDIRECTS:
      g_set_error (error, AGC_HUB_ERROR, AGC_HUB_ERROR_NETWORK, "%s: %s", t->d->url,
                   detail);
      return FALSE;
    case CURLE_OPERATION_TIMEDOUT:
      *retry = TRUE;
      g_set_error (error, AGC_HUB_ERROR, AGC_HUB_ERROR_NETWORK,
                   "%s: the transfer stalled after %" G_GINT64_FORMAT " bytes (slower than %d "
                   "bytes/s for %d s)",
                   t->d->url, t->offset + t->received,
                   t->d->min_rate > 0 ? t->d->min_rate : MIN_RATE,
                   t->d->min_rate_s > 0 ? t->d->min_rate_s : MIN_RATE_S);
      return FALSE;
    default:
      *retry = TRUE;
      g_set_error (error, AGC_HUB_ERROR, AGC_HUB_ERROR_NETWORK,
                   "%s: the transfer broke off after %" G_GINT64_FORMAT " bytes: %s", t->d->url,
                   t->offset + t->received, detail);
      return FALSE;
    }
}

/* Downloads into the open DEST.part until it holds the whole file. */
static gboolean
fetch (Transfer *t, GError **error)
{
  for (int attempt = 1;; attempt++)
    {
      gboolean retry;
      GError *attempt_error = NULL;
      if (transfer_once (t, &retry, &attempt_error))
        return TRUE;
      t->offset += t->received;
      t->received = 0;
      if (retry && attempt < MAX_ATTEMPTS)
        {
          AgcPullProgress p = { .message = attempt_error->message, .attempt = attempt + 1,
                                .max_attempts = MAX_ATTEMPTS };
          agc_download_report (t->d, AGC_PULL_RETRY, &p);
          g_error_free (attempt_error);
          g_usleep ((gulong) attempt * G_USEC_PER_SEC);
          continue;
        }
      if (g_error_matches (attempt_error, AGC_HUB_ERROR, AGC_HUB_ERROR_NETWORK) && t->offset > 0)
        g_set_error (error, AGC_HUB_ERROR, AGC_HUB_ERROR_NETWORK,
                     "%s; the %" G_GINT64_FORMAT " bytes received are kept in %s: run the same "
                     "command again to resume",
                     attempt_error->message, t->offset, t->part);
      else
        g_propagate_error (error, g_steal_pointer (&attempt_error));
      g_clear_error (&attempt_error);
      return FALSE;
    }
}

static void
curl_init_once (void)
{
  static gsize done = 0;
  if (g_once_init_enter (&done))
    {
      curl_global_init (CURL_GLOBAL_DEFAULT);
      g_once_init_leave (&done, 1);
    }
}

/* Opens DEST.part for appending; *size is what it already holds. */
static int
open_part (const char *part, gint64 *size, GError **error)
{
  int fd = open (part, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  struct stat st;
  if (fd < 0 || fstat (fd, &st) != 0)
    {
      int e = errno;
      if (fd >= 0)
        close (fd);
      set_disk_error (error, part, e);
      return -1;
    }
  *size = S_ISREG (st.st_mode) ? (gint64) st.st_size : 0;
  return fd;
}

/* Size and digest against the catalogue; a mismatch deletes DEST.part. */
static gboolean
verify (const Transfer *t, GError **error)
{
  const AgcDownload *d = t->d;
  gint64 size = t->offset + t->received;
  const char *digest = g_checksum_get_string (t->sum);
  gint64 expected = expected_size (t);
  const char *says = d->size >= 0 ? "the catalogue says" : "the server announced";
  if (expected >= 0 && size != expected)
    {
      unlink (t->part);
      g_set_error (error, AGC_HUB_ERROR, AGC_HUB_ERROR_CHECKSUM,
                   "%s: %" G_GINT64_FORMAT " bytes where %s %" G_GINT64_FORMAT
                   " (from %s); the download was deleted",
                   d->label, size, says, expected, d->url);
      return FALSE;
    }
  const char *sha256 = d->sha256 ? d->sha256 : t->linked_sha256[0] ? t->linked_sha256 : NULL;
  if (sha256 && g_ascii_strcasecmp (digest, sha256) != 0)
    {
      unlink (t->part);
      g_set_error (error, AGC_HUB_ERROR, AGC_HUB_ERROR_CHECKSUM,
                   "%s: SHA-256 mismatch: expected %s (%s), got %s (from %s); the download "
                   "was deleted",
                   d->label, sha256, d->sha256 ? "the catalogue's" : "the server's", digest,
                   d->url);
      return FALSE;
    }
  return TRUE;
}

/* What verify checked the file against, once it passed. */
static AgcPullCheck
checked_against (const Transfer *t)
{
  const AgcDownload *d = t->d;
  if (d->sha256)
    return AGC_PULL_CHECK_CATALOGUE_SHA256;
  if (t->linked_sha256[0])
    return AGC_PULL_CHECK_SERVER_SHA256;
  if (d->size >= 0)
    return AGC_PULL_CHECK_CATALOGUE_SIZE;
  return expected_size (t) >= 0 ? AGC_PULL_CHECK_SERVER_SIZE : AGC_PULL_CHECK_NONE;
}

gboolean
agc_download (char sha256[AGC_HUB_SHA256_HEX], AgcPullCheck *check, const AgcDownload *d,
              GError **error)
{
  g_return_val_if_fail (d != NULL && d->url != NULL && d->dest != NULL, FALSE);
  curl_init_once ();
  g_autofree char *part = g_strconcat (d->dest, ".part", NULL);
  Transfer t = { .d = d, .part = part, .linked_size = -1, .announced = -1 };
  t.fd = open_part (part, &t.offset, error);
  if (t.fd < 0)
    return FALSE;
  t.sum = g_checksum_new (G_CHECKSUM_SHA256);
  gboolean ok = TRUE;
  if (d->size >= 0 && t.offset > d->size)
    {
      ok = restart_part (&t);
      if (!ok)
        set_disk_error (error, part, t.write_errno);
    }
  else if (t.offset > 0)
    {
      AgcPullProgress p = { .bytes = t.offset };
      agc_download_report (d, AGC_PULL_RESUME, &p);
      ok = hash_prefix (t.sum, part, t.offset, error);
    }
  // a .part that already holds the catalogue's size was cut off before its
  // rename: it only needs checking
  if (ok && !(d->size >= 0 && t.offset == d->size))
    {
      ok = fetch (&t, error);
      AgcPullProgress p = { .ok = ok, .bytes = t.offset + t.received,
                            .request_bytes = t.received };
      agc_download_report (d, AGC_PULL_TRANSFERRED, &p);
    }
  if (ok && fsync (t.fd) != 0 && errno != EINVAL)
    {
      set_disk_error (error, part, errno);
      ok = FALSE;
    }
  close (t.fd);
  ok = ok && verify (&t, error);
  GStatBuf st;
  if (!ok && g_lstat (part, &st) == 0 && S_ISREG (st.st_mode) && st.st_size == 0)
    unlink (part); // nothing to resume from

  if (ok && rename (part, d->dest) != 0)
    {
      int e = errno;
      g_set_error (error, AGC_HUB_ERROR, AGC_HUB_ERROR_DISK,
                   "%s: cannot rename to %s: %s", part, d->dest, g_strerror (e));
      ok = FALSE;
    }
  if (ok)
    {
      g_strlcpy (sha256, g_checksum_get_string (t.sum), AGC_HUB_SHA256_HEX);
      *check = checked_against (&t);
    }
  g_checksum_free (t.sum);
  g_free (t.hub_message);
  g_free (t.problem);
  return ok;
}
