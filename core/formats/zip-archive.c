/* zip-archive.c — a read-only, validating ZIP reader (see zip-archive.h).
 *
 * Layout, back to front: the end of central directory record (EOCD, 22
 * bytes plus a comment) gives the central directory's offset and size; a
 * ZIP64 locator just before it points to the ZIP64 EOCD with 64-bit values.
 * The central directory lists each entry's sizes, CRC and local header
 * offset; the local header repeats the name and has its own extra field
 * (torch pads it so that the data start 64-byte aligned), then the data.
 * Every number is range-checked with overflow-safe arithmetic before it
 * becomes a pointer. */
#include "formats/zip-archive.h"

#include "agriclip.h"
#include "formats/name-index.h"
#include "support/error.h"
#include "support/regular-file.h"

#include <string.h>

#define SIG_LOCAL 0x04034b50u
#define SIG_CENTRAL 0x02014b50u
#define SIG_EOCD 0x06054b50u
#define SIG_EOCD64 0x06064b50u
#define SIG_LOCATOR64 0x07064b50u

#define EOCD_SIZE 22
#define LOCATOR64_SIZE 20
#define EOCD64_SIZE 56
#define CENTRAL_SIZE 46
#define LOCAL_SIZE 30

/* Deflate cannot expand a byte into more than 1032 bytes (258-byte matches
 * coded in 2 bits); a recorded size beyond that is a lie, not a model. */
#define DEFLATE_MAX_RATIO 1032

struct AgcZipArchive
{
  char *path; /* display name, for messages */
  GBytes *bytes;
  const guint8 *data;
  guint64 size;
  AgcZipEntry *entries; /* [n_entries] */
  int n_entries;
  AgcNameIndex index;   /* name -> AgcZipEntry* */
  guint8 **inflated;    /* [n_entries], owned buffers of deflated entries read so far */
  gboolean *verified;   /* [n_entries], CRC checked */
  guint64 inflated_bytes; /* in inflated, together */
};

/* ---- CRC-32 ------------------------------------------------------------
 * Slicing by 8: eight tables let the loop fold 8 bytes per step, several
 * times faster than the classic byte loop; storages of hundreds of MB are
 * checked when a checkpoint opens. */

static guint32 crc_tables[8][256];

static void
crc_tables_init (void)
{
  for (guint32 i = 0; i < 256; i++)
    {
      guint32 c = i;
      for (int k = 0; k < 8; k++)
        c = (c & 1) != 0 ? 0xedb88320u ^ (c >> 1) : c >> 1;
      crc_tables[0][i] = c;
    }
  for (guint32 i = 0; i < 256; i++)
    for (int t = 1; t < 8; t++)
      crc_tables[t][i] = (crc_tables[t - 1][i] >> 8) ^ crc_tables[0][crc_tables[t - 1][i] & 0xff];
}

guint32
agc_crc32 (guint32 crc, const guint8 *data, size_t size)
{
  static gsize initialised = 0;
  if (g_once_init_enter (&initialised))
    {
      crc_tables_init ();
      g_once_init_leave (&initialised, 1);
    }
  const guint32 (*t)[256] = (const guint32 (*)[256]) crc_tables;

  crc = ~crc;
  for (; size >= 8; data += 8, size -= 8)
    {
      guint32 lo, hi;
      memcpy (&lo, data, 4);
      memcpy (&hi, data + 4, 4);
      lo = GUINT32_FROM_LE (lo) ^ crc;
      hi = GUINT32_FROM_LE (hi);
      crc = t[7][lo & 0xff] ^ t[6][(lo >> 8) & 0xff] ^ t[5][(lo >> 16) & 0xff] ^ t[4][lo >> 24]
            ^ t[3][hi & 0xff] ^ t[2][(hi >> 8) & 0xff] ^ t[1][(hi >> 16) & 0xff]
            ^ t[0][hi >> 24];
    }
  for (; size > 0; data++, size--)
    crc = t[0][(crc ^ *data) & 0xff] ^ (crc >> 8);
  return ~crc;
}

/* ---- little-endian fields ---------------------------------------------- */

static guint16
read16 (const guint8 *p)
{
  return (guint16) (p[0] | p[1] << 8);
}

static guint32
read32 (const guint8 *p)
{
  return (guint32) p[0] | (guint32) p[1] << 8 | (guint32) p[2] << 16 | (guint32) p[3] << 24;
}

static guint64
read64 (const guint8 *p)
{
  return (guint64) read32 (p) | (guint64) read32 (p + 4) << 32;
}

/* ---- end of central directory ------------------------------------------ */

typedef struct
{
  guint64 n_entries;
  guint64 cd_offset;
  guint64 cd_size;
  guint64 cd_limit; /* the central directory must end here or before */
} Directory;

/* The EOCD is the last 22 bytes plus its comment; scanning back from the end,
 * the first signature whose comment reaches exactly to the end is it. */
static gboolean
find_eocd (const AgcZipArchive *archive, guint64 *eocd, GError **error)
{
  if (archive->size < EOCD_SIZE)
    return agc_fail_at (error, AGC_ERROR_FORMAT, archive->path,
                 "file is %" G_GUINT64_FORMAT " bytes, too short for a ZIP archive",
                 archive->size);
  guint64 last = archive->size - EOCD_SIZE;
  guint64 first = last > 0xffff ? last - 0xffff : 0;
  for (guint64 pos = last + 1; pos-- > first;)
    {
      const guint8 *p = archive->data + pos;
      if (read32 (p) == SIG_EOCD && read16 (p + 20) == archive->size - pos - EOCD_SIZE)
        {
          *eocd = pos;
          return TRUE;
        }
    }
  return agc_fail_at (error, AGC_ERROR_FORMAT, archive->path,
               "no ZIP end of central directory record (not a ZIP archive, or truncated)");
}

static gboolean
read_directory (const AgcZipArchive *archive, Directory *dir, GError **error)
{
  guint64 eocd = 0;
  if (!find_eocd (archive, &eocd, error))
    return FALSE;
  const guint8 *p = archive->data + eocd;
  if (read16 (p + 4) != 0 || read16 (p + 6) != 0 || read16 (p + 8) != read16 (p + 10))
    return agc_fail_at (error, AGC_ERROR_UNSUPPORTED, archive->path,
                 "multi-disk ZIP archives are not supported");
  dir->n_entries = read16 (p + 10);
  dir->cd_size = read32 (p + 12);
  dir->cd_offset = read32 (p + 16);
  dir->cd_limit = eocd;

  // torch always writes the ZIP64 records; other writers only when needed
  if (eocd >= LOCATOR64_SIZE && read32 (archive->data + eocd - LOCATOR64_SIZE) == SIG_LOCATOR64)
    {
      const guint8 *locator = archive->data + eocd - LOCATOR64_SIZE;
      guint64 offset = read64 (locator + 8);
      if (read32 (locator + 4) != 0 || read32 (locator + 16) > 1)
        return agc_fail_at (error, AGC_ERROR_UNSUPPORTED, archive->path,
                     "multi-disk ZIP archives are not supported");
      guint64 locator_pos = eocd - LOCATOR64_SIZE;
      if (offset > locator_pos || locator_pos - offset < EOCD64_SIZE)
        return agc_fail_at (error, AGC_ERROR_FORMAT, archive->path,
                     "ZIP64 end of central directory offset %" G_GUINT64_FORMAT
                     " is outside the file",
                     offset);
      const guint8 *e64 = archive->data + offset;
      if (read32 (e64) != SIG_EOCD64)
        return agc_fail_at (error, AGC_ERROR_FORMAT, archive->path,
                     "no ZIP64 end of central directory record at offset %" G_GUINT64_FORMAT,
                     offset);
      if (read32 (e64 + 16) != 0 || read32 (e64 + 20) != 0
          || read64 (e64 + 24) != read64 (e64 + 32))
        return agc_fail_at (error, AGC_ERROR_UNSUPPORTED, archive->path,
                     "multi-disk ZIP archives are not supported");
      dir->n_entries = read64 (e64 + 32);
      dir->cd_size = read64 (e64 + 40);
      dir->cd_offset = read64 (e64 + 48);
      dir->cd_limit = offset;
    }

  if (dir->cd_offset > dir->cd_limit || dir->cd_size > dir->cd_limit - dir->cd_offset)
    return agc_fail_at (error, AGC_ERROR_FORMAT, archive->path,
                 "central directory [%" G_GUINT64_FORMAT ", +%" G_GUINT64_FORMAT
                 ") runs past its end record at %" G_GUINT64_FORMAT " (truncated file?)",
                 dir->cd_offset, dir->cd_size, dir->cd_limit);
  // each entry takes at least 46 bytes: this bounds the allocation below
  if (dir->n_entries > dir->cd_size / CENTRAL_SIZE || dir->n_entries > G_MAXINT)
    return agc_fail_at (error, AGC_ERROR_FORMAT, archive->path,
                 "%" G_GUINT64_FORMAT " entries cannot fit in a central directory of %"
                 G_GUINT64_FORMAT " bytes",
                 dir->n_entries, dir->cd_size);
  return TRUE;
}

/* ---- entries ------------------------------------------------------------ */

/* Replaces the 0xffffffff placeholders of a central header by the 64-bit
 * values of its ZIP64 extra field (id 1), which lists only those, in order. */
static gboolean
read_zip64_extra (const AgcZipArchive *archive, const char *name, const guint8 *extra,
                  guint16 extra_len, guint64 *size, guint64 *compressed, guint64 *local,
                  GError **error)
{
  size_t pos = 0;
  while (pos + 4 <= extra_len)
    {
      guint16 id = read16 (extra + pos), len = read16 (extra + pos + 2);
      if (len > extra_len - pos - 4)
        break;
      if (id == 0x0001)
        {
          const guint8 *field = extra + pos + 4;
          size_t used = 0;
          guint64 *targets[] = { size, compressed, local };
          for (size_t i = 0; i < G_N_ELEMENTS (targets); i++)
            if (*targets[i] == 0xffffffffu)
              {
                if (used + 8 > len)
                  return agc_fail_at (error, AGC_ERROR_FORMAT, archive->path,
                               "entry '%s': ZIP64 extra field is too short", name);
                *targets[i] = read64 (field + used);
                used += 8;
              }
          return TRUE;
        }
      pos += 4 + (size_t) len;
    }
  if (*size == 0xffffffffu || *compressed == 0xffffffffu || *local == 0xffffffffu)
    return agc_fail_at (error, AGC_ERROR_FORMAT, archive->path,
                 "entry '%s' needs a ZIP64 extra field but has none", name);
  return TRUE;
}

/* The local header must agree with the central one; the data follow it and
 * end before the central directory. */
static gboolean
locate_data (const AgcZipArchive *archive, AgcZipEntry *entry, guint64 local,
             guint64 cd_offset, GError **error)
{
  size_t name_len = strlen (entry->name);
  if (local > cd_offset || cd_offset - local < LOCAL_SIZE)
    return agc_fail_at (error, AGC_ERROR_FORMAT, archive->path,
                 "entry '%s': local header offset %" G_GUINT64_FORMAT
                 " is not before the central directory",
                 entry->name, local);
  const guint8 *p = archive->data + local;
  if (read32 (p) != SIG_LOCAL)
    return agc_fail_at (error, AGC_ERROR_FORMAT, archive->path,
                 "entry '%s': no local header at offset %" G_GUINT64_FORMAT, entry->name,
                 local);
  guint64 begin = local + LOCAL_SIZE + read16 (p + 26) + read16 (p + 28);
  if (read16 (p + 26) != name_len || begin > cd_offset
      || memcmp (p + LOCAL_SIZE, entry->name, name_len) != 0)
    return agc_fail_at (error, AGC_ERROR_FORMAT, archive->path,
                 "entry '%s': local header at offset %" G_GUINT64_FORMAT
                 " does not match the central directory",
                 entry->name, local);
  if (entry->compressed_size > cd_offset - begin)
    return agc_fail_at (error, AGC_ERROR_FORMAT, archive->path,
                 "entry '%s': %" G_GUINT64_FORMAT " bytes at offset %" G_GUINT64_FORMAT
                 " run past the end of the data (truncated file?)",
                 entry->name, entry->compressed_size, begin);
  entry->data_offset = begin;
  return TRUE;
}

/* Reads the central header at *pos into entry and advances *pos. */
static gboolean
read_entry (AgcZipArchive *archive, AgcZipEntry *entry, guint64 *pos, guint64 cd_end,
            guint64 cd_offset, GError **error)
{
  if (cd_end - *pos < CENTRAL_SIZE || read32 (archive->data + *pos) != SIG_CENTRAL)
    return agc_fail_at (error, AGC_ERROR_FORMAT, archive->path,
                 "central directory entry %d at offset %" G_GUINT64_FORMAT " is malformed",
                 (int) (entry - archive->entries), *pos);
  const guint8 *p = archive->data + *pos;
  guint16 flags = read16 (p + 8);
  guint16 name_len = read16 (p + 28), extra_len = read16 (p + 30), comment_len = read16 (p + 32);
  guint64 record = (guint64) CENTRAL_SIZE + name_len + extra_len + comment_len;
  if (record > cd_end - *pos)
    return agc_fail_at (error, AGC_ERROR_FORMAT, archive->path,
                 "central directory entry %d at offset %" G_GUINT64_FORMAT
                 " runs past the directory",
                 (int) (entry - archive->entries), *pos);
  const char *raw_name = (const char *) p + CENTRAL_SIZE;
  if (name_len == 0 || memchr (raw_name, '\0', name_len) != NULL)
    return agc_fail_at (error, AGC_ERROR_FORMAT, archive->path,
                 "central directory entry %d has an empty or invalid name",
                 (int) (entry - archive->entries));
  entry->name = agc_name_index_intern (&archive->index, raw_name, name_len);
  if (agc_name_index_find (&archive->index, entry->name) != NULL)
    return agc_fail_at (error, AGC_ERROR_FORMAT, archive->path, "entry '%s' appears twice",
                        entry->name);
  agc_name_index_add (&archive->index, entry->name, entry);

  if ((flags & 0x0041) != 0) // bit 0: encrypted, bit 6: strong encryption
    return agc_fail_at (error, AGC_ERROR_UNSUPPORTED, archive->path, "entry '%s' is encrypted",
                        entry->name);
  entry->method = read16 (p + 10);
  entry->crc32 = read32 (p + 16);
  entry->compressed_size = read32 (p + 20);
  entry->size = read32 (p + 24);
  guint64 local = read32 (p + 42);
  if (!read_zip64_extra (archive, entry->name, p + CENTRAL_SIZE + name_len, extra_len,
                         &entry->size, &entry->compressed_size, &local, error))
    return FALSE;
  if (entry->method == 0 && entry->size != entry->compressed_size)
    return agc_fail_at (error, AGC_ERROR_FORMAT, archive->path,
                 "stored entry '%s' records %" G_GUINT64_FORMAT " bytes but occupies %"
                 G_GUINT64_FORMAT,
                 entry->name, entry->size, entry->compressed_size);
  *pos += record;
  return locate_data (archive, entry, local, cd_offset, error);
}

static gboolean
parse_archive (AgcZipArchive *archive, GError **error)
{
  Directory dir = { 0 };
  if (!read_directory (archive, &dir, error))
    return FALSE;
  archive->n_entries = (int) dir.n_entries;
  archive->entries = g_new0 (AgcZipEntry, MAX (dir.n_entries, 1));
  archive->inflated = g_new0 (guint8 *, MAX (dir.n_entries, 1));
  archive->verified = g_new0 (gboolean, MAX (dir.n_entries, 1));

  guint64 pos = dir.cd_offset, cd_end = dir.cd_offset + dir.cd_size;
  for (int i = 0; i < archive->n_entries; i++)
    if (!read_entry (archive, &archive->entries[i], &pos, cd_end, dir.cd_offset, error))
      return FALSE;
  if (pos != cd_end)
    return agc_fail_at (error, AGC_ERROR_FORMAT, archive->path,
                 "central directory has %" G_GUINT64_FORMAT
                 " bytes after its %d entries",
                 cd_end - pos, archive->n_entries);
  return TRUE;
}

AgcZipArchive *
agc_zip_archive_new_from_bytes (GBytes *bytes, const char *display_name, GError **error)
{
  g_return_val_if_fail (bytes != NULL && display_name != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  AgcZipArchive *archive = g_new0 (AgcZipArchive, 1);
  archive->path = g_strdup (display_name);
  archive->bytes = g_bytes_ref (bytes);
  gsize size = 0;
  archive->data = g_bytes_get_data (bytes, &size);
  archive->size = size;
  agc_name_index_init (&archive->index);
  if (!parse_archive (archive, error))
    {
      agc_zip_archive_free (archive);
      return NULL;
    }
  return archive;
}

AgcZipArchive *
agc_zip_archive_open (const char *path, GError **error)
{
  g_return_val_if_fail (path != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  GMappedFile *mapping = agc_map_regular_file (path, error);
  if (mapping == NULL)
    return NULL;
  GBytes *bytes = g_mapped_file_get_bytes (mapping);
  g_mapped_file_unref (mapping);
  g_autofree char *display_name = g_filename_display_name (path);
  AgcZipArchive *archive = agc_zip_archive_new_from_bytes (bytes, display_name, error);
  g_bytes_unref (bytes);
  return archive;
}

void
agc_zip_archive_free (AgcZipArchive *archive)
{
  if (archive == NULL)
    return;
  for (int i = 0; archive->inflated != NULL && i < archive->n_entries; i++)
    g_free (archive->inflated[i]);
  g_free (archive->inflated);
  g_free (archive->verified);
  g_free (archive->entries);
  agc_name_index_clear (&archive->index);
  g_bytes_unref (archive->bytes);
  g_free (archive->path);
  g_free (archive);
}

const char *
agc_zip_archive_path (const AgcZipArchive *archive)
{
  return archive->path;
}

guint64
agc_zip_archive_inflate_budget (const AgcZipArchive *archive)
{
  return (guint64) AGC_ZIP_INFLATE_RATIO * archive->size + AGC_ZIP_INFLATE_SLACK;
}

guint64
agc_zip_archive_size (const AgcZipArchive *archive)
{
  return archive->size;
}

int
agc_zip_archive_n_entries (const AgcZipArchive *archive)
{
  return archive->n_entries;
}

const AgcZipEntry *
agc_zip_archive_entry (const AgcZipArchive *archive, int index)
{
  g_return_val_if_fail (index >= 0 && index < archive->n_entries, NULL);
  return &archive->entries[index];
}

const AgcZipEntry *
agc_zip_archive_find (const AgcZipArchive *archive, const char *name)
{
  return agc_name_index_find (&archive->index, name);
}

/* ---- reading ------------------------------------------------------------ */

/* Inflates a raw deflate stream into exactly entry->size bytes.  GIO's
 * converter takes sizes as gsize but zlib counts in 32 bits, so the data go
 * through in chunks of at most 1 GiB. */
static guint8 *
inflate_entry (const AgcZipArchive *archive, const AgcZipEntry *entry, GError **error)
{
  const gsize chunk = (gsize) 1 << 30;
  if (entry->size > entry->compressed_size * DEFLATE_MAX_RATIO + 1024)
    {
      agc_fail_at (error, AGC_ERROR_FORMAT, archive->path,
            "entry '%s' records %" G_GUINT64_FORMAT " bytes, more than deflate can produce from %"
            G_GUINT64_FORMAT,
            entry->name, entry->size, entry->compressed_size);
      return NULL;
    }
  // a total budget: many entries each within deflate's ratio still add up
  guint64 budget = agc_zip_archive_inflate_budget (archive);
  if (entry->size > budget - MIN (archive->inflated_bytes, budget))
    {
      agc_fail_at (error, AGC_ERROR_FORMAT, archive->path,
            "entry '%s' would take the archive's inflated entries beyond %" G_GUINT64_FORMAT
            " bytes (a ZIP bomb?); save the checkpoint with torch.save, which does not compress",
            entry->name, budget);
      return NULL;
    }
  // one spare byte: output that fills it is longer than recorded
  guint8 *out = entry->size < G_MAXSIZE ? g_try_malloc (entry->size + 1) : NULL;
  if (out == NULL)
    {
      agc_fail_at (error, AGC_ERROR_IO, archive->path, "not enough memory to inflate entry '%s' (%"
            G_GUINT64_FORMAT " bytes)", entry->name, entry->size);
      return NULL;
    }
  GZlibDecompressor *decompressor = g_zlib_decompressor_new (G_ZLIB_COMPRESSOR_FORMAT_RAW);
  const guint8 *in = archive->data + entry->data_offset;
  gsize in_size = entry->compressed_size, out_size = entry->size + 1;
  gsize in_done = 0, out_done = 0;
  GError *local = NULL;
  gboolean ok = FALSE;
  for (;;)
    {
      gsize in_chunk = MIN (in_size - in_done, chunk);
      gsize out_chunk = MIN (out_size - out_done, chunk);
      gsize n_read = 0, n_written = 0;
      if (out_chunk == 0) // the spare byte is used up
        {
          g_set_error_literal (&local, G_IO_ERROR, G_IO_ERROR_NO_SPACE, "too long");
          break;
        }
      GConverterFlags flags = in_done + in_chunk == in_size ? G_CONVERTER_INPUT_AT_END
                                                            : G_CONVERTER_NO_FLAGS;
      GConverterResult result = g_converter_convert (G_CONVERTER (decompressor), in + in_done,
                                                     in_chunk, out + out_done, out_chunk, flags,
                                                     &n_read, &n_written, &local);
      in_done += n_read;
      out_done += n_written;
      if (result == G_CONVERTER_ERROR)
        break;
      if (result == G_CONVERTER_FINISHED)
        {
          ok = TRUE;
          break;
        }
      if (n_read == 0 && n_written == 0)
        {
          g_set_error_literal (&local, G_IO_ERROR, G_IO_ERROR_PARTIAL_INPUT,
                               "the deflate stream is truncated");
          break;
        }
    }
  g_object_unref (decompressor);
  if (!ok)
    {
      if (g_error_matches (local, G_IO_ERROR, G_IO_ERROR_NO_SPACE))
        agc_fail_at (error, AGC_ERROR_FORMAT, archive->path,
              "entry '%s' inflates to more than its recorded %" G_GUINT64_FORMAT " bytes",
              entry->name, entry->size);
      else
        agc_fail_at (error, AGC_ERROR_FORMAT, archive->path, "entry '%s' cannot be inflated: %s",
              entry->name, local->message);
      g_error_free (local);
      g_free (out);
      return NULL;
    }
  if (out_done != entry->size)
    {
      agc_fail_at (error, AGC_ERROR_FORMAT, archive->path,
            "entry '%s' inflates to %" G_GSIZE_FORMAT " bytes, the archive records %"
            G_GUINT64_FORMAT,
            entry->name, out_done, entry->size);
      g_free (out);
      return NULL;
    }
  return out;
}

const guint8 *
agc_zip_archive_read (AgcZipArchive *archive, const AgcZipEntry *entry, GError **error)
{
  g_return_val_if_fail (archive != NULL && entry != NULL, NULL);
  g_return_val_if_fail (entry >= archive->entries && entry < archive->entries + archive->n_entries,
                        NULL);
  int index = (int) (entry - archive->entries);

  const guint8 *contents;
  if (entry->method == 0)
    contents = archive->data + entry->data_offset;
  else if (entry->method == 8)
    {
      if (archive->inflated[index] == NULL)
        {
          archive->inflated[index] = inflate_entry (archive, entry, error);
          if (archive->inflated[index] != NULL)
            archive->inflated_bytes += entry->size;
        }
      contents = archive->inflated[index];
      if (contents == NULL)
        return NULL;
    }
  else
    {
      agc_fail_at (error, AGC_ERROR_UNSUPPORTED, archive->path,
            "entry '%s' is compressed with method %u; only stored (0) and deflated (8) entries "
            "can be read",
            entry->name, entry->method);
      return NULL;
    }

  if (!archive->verified[index] && entry->crc32 != 0)
    {
      guint32 crc = agc_crc32 (0, contents, entry->size);
      if (crc != entry->crc32)
        {
          agc_fail_at (error, AGC_ERROR_FORMAT, archive->path,
                "entry '%s' is corrupt: its CRC-32 is %08x, the archive records %08x",
                entry->name, crc, entry->crc32);
          return NULL;
        }
    }
  archive->verified[index] = TRUE;
  return contents;
}
