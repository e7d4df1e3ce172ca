/* zip-archive.h — a read-only, validating ZIP reader over memory-mapped bytes.
 *
 * Made for PyTorch checkpoints (torch.save since 1.6, TorchScript archives):
 * they are ZIP files whose entries are "stored" (uncompressed), 64-byte
 * aligned, described by data descriptors, and always closed by a ZIP64 end
 * record.  What this reader does:
 * - finds the end of central directory (EOCD), and the ZIP64 EOCD through its
 *   locator when present; single-disk archives only;
 * - reads sizes, CRC-32 and offsets from the central directory (the local
 *   headers of torch files carry zeros there), ZIP64 extra fields included;
 * - checks every entry against the file: local header signature and name,
 *   data inside the file, stored sizes equal, no duplicate names, no
 *   encryption;
 * - stored entries are returned as pointers into the mapping; deflated
 *   entries (a checkpoint re-zipped by hand) are inflated with GIO's
 *   GZlibDecompressor into memory the archive owns, refused when the
 *   recorded size is beyond what deflate can produce from the input;
 *   other methods (bzip2, LZMA, …) are AGC_ERROR_UNSUPPORTED; all the
 *   entries inflated together stay within agc_zip_archive_inflate_budget,
 *   so that a small file of deflated zeros cannot take gigabytes;
 * - the CRC-32 of an entry is checked when the entry is read, unless it is
 *   recorded as 0: torch.serialization.set_crc32_options(False) writes 0.
 * Errors: AGC_ERROR_IO (cannot open), AGC_ERROR_FORMAT (malformed, the
 * message names the file and the entry), AGC_ERROR_UNSUPPORTED. */
#pragma once

#include <gio/gio.h>

typedef struct AgcZipArchive AgcZipArchive;

typedef struct
{
  const char *name;
  guint16 method;          /* 0 stored, 8 deflated */
  guint32 crc32;           /* as recorded; 0 means "not computed" */
  guint64 compressed_size; /* bytes in the archive */
  guint64 size;            /* bytes once read */
  guint64 data_offset;     /* of the (compressed) data, from the start of the file */
} AgcZipEntry;

AgcZipArchive *agc_zip_archive_open (const char *path, GError **error);
/* Same, over bytes already in memory (kept alive by the archive); the
 * display name is used in messages. */
AgcZipArchive *agc_zip_archive_new_from_bytes (GBytes *bytes, const char *display_name,
                                               GError **error);
void agc_zip_archive_free (AgcZipArchive *archive);

const char *agc_zip_archive_path (const AgcZipArchive *archive);
guint64 agc_zip_archive_size (const AgcZipArchive *archive); /* of the whole file */
/* The bytes all deflated entries may inflate to, together: a generous
 * multiple of the file's size (weights compress little; zeros by 1000x). */
#define AGC_ZIP_INFLATE_RATIO 16
#define AGC_ZIP_INFLATE_SLACK ((guint64) 64 << 20)
guint64 agc_zip_archive_inflate_budget (const AgcZipArchive *archive);
int agc_zip_archive_n_entries (const AgcZipArchive *archive);
/* In central directory order. */
const AgcZipEntry *agc_zip_archive_entry (const AgcZipArchive *archive, int index);
/* NULL when absent. */
const AgcZipEntry *agc_zip_archive_find (const AgcZipArchive *archive, const char *name);

/* The entry's contents, entry->size bytes, checked against its CRC-32 (once).
 * Stored entries point into the file, deflated ones into memory the archive
 * keeps; either way valid until agc_zip_archive_free.  Not aligned. */
const guint8 *agc_zip_archive_read (AgcZipArchive *archive, const AgcZipEntry *entry,
                                    GError **error);

/* CRC-32 (ISO-HDLC, as in ZIP and zlib) of size bytes, continuing from crc
 * (0 to start). */
guint32 agc_crc32 (guint32 crc, const guint8 *data, size_t size);
