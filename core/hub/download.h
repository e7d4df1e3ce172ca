/* download.h — fetching one file over HTTP(S) with libcurl: resumable,
 * verified, and never leaving a file that looks complete when it is not.
 *
 * Bytes gather in DEST.part.  A later call resumes it with an HTTP Range
 * request; a server that answers 206 from the right offset is appended to,
 * one that answers 200 restarts the file from the beginning.  Only when the
 * transfer ended and the size and SHA-256 (when known) match is DEST.part
 * renamed to DEST.  When the catalogue knows no size or digest, what the
 * server announces stands in: the Hub's X-Linked-Size and X-Linked-Etag (or
 * an ETag of 64 hex digits: an LFS file's SHA-256), else the response's
 * Content-Length or Content-Range total.  A body longer than the known size
 * is cut off there and refused, and a web page (text/html) sent for a file
 * that is not one is refused, both without retrying.  Nothing is printed: progress goes to the pull's
 * progress function (agriclip.h, AgcPullStage RESUME to TRANSFERRED).  A
 * call retries a broken connection a few times before giving up.  Errors
 * are AGC_HUB_ERROR (agriclip.h), or AGC_ERROR_CANCELLED. */
#pragma once

#include "agriclip.h"

#define AGC_HUB_SHA256_HEX 65 /* 64 hex digits and a NUL */

typedef struct
{
  const char *url;
  const char *bearer_token; /* or NULL; sent to url's host only, never to redirect targets */
  const char *dest;         /* the final file; its folder must exist */
  const char *label;        /* what messages call the file */
  gint64 size;              /* expected bytes, -1 when unknown */
  const char *sha256;       /* expected digest (lower-case hex), NULL when unknown */
  const char *denied_hint;  /* added to the message of a 401/403 answer, or NULL */
  const AgcCatalogueFile *file;  /* named in progress reports */
  AgcPullProgressFunc progress;  /* may be NULL */
  gpointer user_data;
  GCancellable *cancellable;     /* checked as bytes arrive; may be NULL */
  gint64 deadline;  /* g_get_monotonic_time () by which to give up, 0 for none */
  int min_rate;     /* bytes per second below which, for min_rate_s seconds, a */
  int min_rate_s;   /* connection counts as broken; 0: the defaults */
} AgcDownload;

/* Downloads download->url to download->dest as described above and stores
 * the file's SHA-256 in sha256 (lower-case hex) and what it was checked
 * against in check.  Errors name the URL or the file and say whether running
 * again resumes. */
gboolean agc_download (char sha256[AGC_HUB_SHA256_HEX], AgcPullCheck *check,
                       const AgcDownload *download, GError **error);

/* The SHA-256 of a whole file (lower-case hex). */
gboolean agc_hub_file_sha256 (char sha256[AGC_HUB_SHA256_HEX], const char *path, GError **error);

/* Sends one progress report, filled in by the caller but for stage, file,
 * dest (when unset) and the function's user data. */
void agc_download_report (const AgcDownload *download, AgcPullStage stage,
                          AgcPullProgress *progress);
