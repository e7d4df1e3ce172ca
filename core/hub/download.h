/* download.h — fetching one file over HTTP(S) with libcurl: resumable,
 * verified, and never leaving a file that looks complete when it is not.
 *
 * Bytes gather in DEST.part.  A later call resumes it with an HTTP Range
 * request; a server that answers 206 from the right offset is appended to,
 * one that answers 200 restarts the file from the beginning.  Only when the
 * transfer ended and the size and SHA-256 (when known) match is DEST.part
 * renamed to DEST.  Progress goes to stderr: a redrawn bar on a terminal,
 * a line every few seconds otherwise.  A call retries a broken connection a
 * few times before giving up. */
#pragma once

#include <glib.h>

#define CLI_DOWNLOAD_ERROR (cli_download_error_quark ())
GQuark cli_download_error_quark (void);

typedef enum
{
  CLI_DOWNLOAD_ERROR_OFFLINE,  /* the server cannot be reached at all */
  CLI_DOWNLOAD_ERROR_NETWORK,  /* the connection broke or stalled; DEST.part is kept */
  CLI_DOWNLOAD_ERROR_HTTP,     /* the server answered with an error status (404 ...) */
  CLI_DOWNLOAD_ERROR_CHECKSUM, /* wrong size or SHA-256; the bytes were deleted */
  CLI_DOWNLOAD_ERROR_DISK,     /* the file cannot be written (disk full ...); DEST.part is kept */
} CliDownloadError;

#define CLI_SHA256_HEX 65 /* 64 hex digits and a NUL */

typedef struct
{
  const char *url;
  const char *bearer_token; /* or NULL; sent to url's host only, never to redirect targets */
  const char *dest;         /* the final file; its folder must exist */
  const char *label;        /* what progress lines call the file */
  gint64 size;              /* expected bytes, -1 when unknown */
  const char *sha256;       /* expected digest (lower-case hex), NULL when unknown */
  const char *denied_hint;  /* added to the message of a 401/403 answer, or NULL */
} CliDownload;

/* Downloads download->url to download->dest as described above and stores
 * the file's SHA-256 in sha256 (lower-case hex).  Errors name the URL or the
 * file and say whether running again resumes. */
gboolean cli_download (char sha256[CLI_SHA256_HEX], const CliDownload *download, GError **error);

/* The SHA-256 of a whole file (lower-case hex). */
gboolean cli_file_sha256 (char sha256[CLI_SHA256_HEX], const char *path, GError **error);
