/* test-zip-archive.c — the ZIP reader on archives laid out here byte by byte
 * from the ZIP specification (APPNOTE 4.3: local headers, central directory,
 * ZIP64 extra field, ZIP64 end records), stored and deflated (deflated by
 * GIO's GZlibCompressor), then on damaged and hostile variants.  CRC-32 is
 * checked against its published check value and a bitwise reference. */
#include "agriclip.h"
#include "formats/zip-archive.h"

#include <string.h>

/* ---- CRC-32 ----------------------------------------------------------------- */

/* The definition, one bit at a time (reflected polynomial 0xedb88320). */
static guint32
crc32_bitwise (const guint8 *data, size_t size)
{
  guint32 crc = 0xffffffffu;
  for (size_t i = 0; i < size; i++)
    {
      crc ^= data[i];
      for (int k = 0; k < 8; k++)
        crc = (crc >> 1) ^ (0xedb88320u & (0u - (crc & 1)));
    }
  return ~crc;
}

static void
test_crc32 (void)
{
  g_assert_cmphex (agc_crc32 (0, (const guint8 *) "123456789", 9), ==, 0xcbf43926u);
  g_assert_cmphex (agc_crc32 (0, NULL, 0), ==, 0);
  guint8 data[1000];
  for (size_t i = 0; i < sizeof data; i++)
    data[i] = (guint8) g_test_rand_int ();
  for (size_t start = 0; start < 9; start++)
    for (size_t size = 0; size + start <= sizeof data; size += 37)
      g_assert_cmphex (agc_crc32 (0, data + start, size), ==, crc32_bitwise (data + start, size));
  // continuing from a previous value equals one pass
  guint32 crc = agc_crc32 (0, data, 333);
  g_assert_cmphex (agc_crc32 (crc, data + 333, 667), ==, crc32_bitwise (data, 1000));
}

/* ---- an archive writer --------------------------------------------------------- */

typedef struct
{
  const char *name;
  const void *data;
  size_t size;
  guint16 method;          /* 0 stored, 8 deflated (compressed here), other: data as is */
  gboolean zip64;          /* sizes and offset in a ZIP64 extra field of the central header */
  guint16 flags;
  gboolean crc_given;      /* else computed */
  guint32 crc;
  const char *local_name;  /* else name */
  gboolean central_size_given;
  guint32 central_size;    /* uncompressed size written in the central header */
  gboolean ff_without_extra;
} Spec;

static void
put16 (GByteArray *out, guint v)
{
  guint8 b[2] = { v & 0xff, (v >> 8) & 0xff };
  g_byte_array_append (out, b, 2);
}

static void
put32 (GByteArray *out, guint32 v)
{
  put16 (out, v & 0xffff);
  put16 (out, v >> 16);
}

static void
put64 (GByteArray *out, guint64 v)
{
  put32 (out, (guint32) v);
  put32 (out, (guint32) (v >> 32));
}

static GBytes *
deflate_raw (const void *data, size_t size)
{
  GZlibCompressor *compressor = g_zlib_compressor_new (G_ZLIB_COMPRESSOR_FORMAT_RAW, 9);
  GByteArray *out = g_byte_array_new ();
  guint8 buffer[4096];
  size_t done = 0;
  for (;;)
    {
      gsize n_read = 0, n_written = 0;
      GError *error = NULL;
      GConverterResult result = g_converter_convert (
        G_CONVERTER (compressor), (const guint8 *) data + done, size - done, buffer,
        sizeof buffer, G_CONVERTER_INPUT_AT_END, &n_read, &n_written, &error);
      g_assert_no_error (error);
      done += n_read;
      g_byte_array_append (out, buffer, (guint) n_written);
      if (result == G_CONVERTER_FINISHED)
        break;
    }
  g_object_unref (compressor);
  return g_byte_array_free_to_bytes (out);
}

/* Local headers (each with a 6-byte padding extra field, as torch pads),
 * data, central directory, optional ZIP64 end record and locator, end
 * record with an optional comment. */
static GByteArray *
build_zip (const Spec *specs, int n, gboolean zip64_end, const char *comment)
{
  GByteArray *out = g_byte_array_new ();
  guint64 *offsets = g_new0 (guint64, n);
  guint64 *compressed = g_new0 (guint64, n);
  guint32 *crcs = g_new0 (guint32, n);
  for (int i = 0; i < n; i++)
    {
      const Spec *s = &specs[i];
      GBytes *payload = s->method == 8 ? deflate_raw (s->data, s->size)
                                       : g_bytes_new (s->data, s->size);
      const char *local_name = s->local_name != NULL ? s->local_name : s->name;
      crcs[i] = s->crc_given ? s->crc : agc_crc32 (0, s->data, s->size);
      compressed[i] = g_bytes_get_size (payload);
      offsets[i] = out->len;
      put32 (out, 0x04034b50);
      put16 (out, 20);
      put16 (out, s->flags | 0x0808); // data descriptor: sizes only in the directory
      put16 (out, s->method);
      put32 (out, 0); // time, date
      put32 (out, 0);
      put32 (out, 0);
      put32 (out, 0);
      put16 (out, (guint) strlen (local_name));
      put16 (out, 6);
      g_byte_array_append (out, (const guint8 *) local_name, (guint) strlen (local_name));
      put16 (out, 0x4246); // "FB" padding, as torch writes
      put16 (out, 2);
      put16 (out, 0x5a5a);
      g_byte_array_append (out, g_bytes_get_data (payload, NULL), (guint) compressed[i]);
      g_bytes_unref (payload);
    }
  guint64 cd_offset = out->len;
  for (int i = 0; i < n; i++)
    {
      const Spec *s = &specs[i];
      gboolean ff = s->zip64 || s->ff_without_extra;
      put32 (out, 0x02014b50);
      put16 (out, 0x031e);
      put16 (out, 45);
      put16 (out, s->flags | 0x0808);
      put16 (out, s->method);
      put32 (out, 0);
      put32 (out, crcs[i]);
      put32 (out, ff ? 0xffffffffu : (guint32) compressed[i]);
      put32 (out, ff ? 0xffffffffu : s->central_size_given ? s->central_size : (guint32) s->size);
      put16 (out, (guint) strlen (s->name));
      put16 (out, s->zip64 ? 28 : 0);
      put16 (out, 0); // comment
      put16 (out, 0); // disk
      put16 (out, 0);
      put32 (out, 0);
      put32 (out, ff ? 0xffffffffu : (guint32) offsets[i]);
      g_byte_array_append (out, (const guint8 *) s->name, (guint) strlen (s->name));
      if (s->zip64)
        {
          put16 (out, 0x0001);
          put16 (out, 24);
          put64 (out, s->size);
          put64 (out, compressed[i]);
          put64 (out, offsets[i]);
        }
    }
  guint64 cd_size = out->len - cd_offset;
  if (zip64_end)
    {
      guint64 end64 = out->len;
      put32 (out, 0x06064b50);
      put64 (out, 44);
      put16 (out, 0x031e);
      put16 (out, 45);
      put32 (out, 0);
      put32 (out, 0);
      put64 (out, (guint64) n);
      put64 (out, (guint64) n);
      put64 (out, cd_size);
      put64 (out, cd_offset);
      put32 (out, 0x07064b50);
      put32 (out, 0);
      put64 (out, end64);
      put32 (out, 1);
    }
  size_t comment_len = comment != NULL ? strlen (comment) : 0;
  put32 (out, 0x06054b50);
  put16 (out, 0);
  put16 (out, 0);
  put16 (out, zip64_end ? 0xffff : (guint) n);
  put16 (out, zip64_end ? 0xffff : (guint) n);
  put32 (out, zip64_end ? 0xffffffffu : (guint32) cd_size);
  put32 (out, zip64_end ? 0xffffffffu : (guint32) cd_offset);
  put16 (out, (guint) comment_len);
  g_byte_array_append (out, (const guint8 *) comment, (guint) comment_len);
  g_free (offsets);
  g_free (compressed);
  g_free (crcs);
  return out;
}

static AgcZipArchive *
open_bytes (GByteArray *zip, GError **error)
{
  GBytes *bytes = g_bytes_new (zip->data, zip->len);
  AgcZipArchive *archive = agc_zip_archive_new_from_bytes (bytes, "test.zip", error);
  g_bytes_unref (bytes);
  return archive;
}

static void
check_error (GError *error, int code, const char *fragment)
{
  g_assert_error (error, AGC_ERROR, code);
  if (!g_str_has_prefix (error->message, "test.zip: ") || strstr (error->message, fragment) == NULL)
    g_error ("message \"%s\" lacks \"%s\"", error->message, fragment);
}

/* Takes zip. */
static void
open_fails (GByteArray *zip, int code, const char *fragment)
{
  GError *error = NULL;
  g_assert_null (open_bytes (zip, &error));
  check_error (error, code, fragment);
  g_error_free (error);
  g_byte_array_unref (zip);
}

/* Opens zip (taken), then reading entry index must fail. */
static void
read_fails (GByteArray *zip, int index, int code, const char *fragment)
{
  GError *error = NULL;
  AgcZipArchive *archive = open_bytes (zip, &error);
  g_assert_no_error (error);
  g_assert_null (agc_zip_archive_read (archive, agc_zip_archive_entry (archive, index), &error));
  check_error (error, code, fragment);
  g_error_free (error);
  agc_zip_archive_free (archive);
  g_byte_array_unref (zip);
}

/* ---- archives that must read ------------------------------------------------------ */

static guint8 *
pattern (size_t size)
{
  guint8 *data = g_malloc (MAX (size, 1));
  for (size_t i = 0; i < size; i++)
    data[i] = (guint8) (i * 7 / 5 + (i >> 9)); // compressible, not constant
  return data;
}

static void
check_reads (GByteArray *zip, const Spec *specs, int n)
{
  GError *error = NULL;
  AgcZipArchive *archive = open_bytes (zip, &error);
  g_assert_no_error (error);
  g_assert_cmpint (agc_zip_archive_n_entries (archive), ==, n);
  g_assert_cmpuint (agc_zip_archive_size (archive), ==, zip->len);
  for (int i = 0; i < n; i++)
    {
      const AgcZipEntry *entry = agc_zip_archive_find (archive, specs[i].name);
      g_assert_true (entry == agc_zip_archive_entry (archive, i));
      g_assert_cmpstr (entry->name, ==, specs[i].name);
      g_assert_cmpuint (entry->size, ==, specs[i].size);
      g_assert_cmpuint (entry->method, ==, specs[i].method);
      for (int twice = 0; twice < 2; twice++)
        {
          const guint8 *data = agc_zip_archive_read (archive, entry, &error);
          g_assert_no_error (error);
          g_assert_cmpmem (data, entry->size, specs[i].data, specs[i].size);
          if (entry->method == 0) // a view of the file itself
            g_assert_true (memcmp (zip->data + entry->data_offset, specs[i].data, specs[i].size)
                           == 0);
        }
    }
  g_assert_null (agc_zip_archive_find (archive, "absent"));
  agc_zip_archive_free (archive);
  g_byte_array_unref (zip);
}

static void
test_stored (void)
{
  g_autofree guint8 *big = pattern (100000);
  Spec specs[] = {
    { .name = "archive/data.pkl", .data = "\x80\x02}.", .size = 4 },
    { .name = "archive/data/0", .data = big, .size = 100000 },
    { .name = "archive/data/empty", .data = "", .size = 0 },
  };
  check_reads (build_zip (specs, 3, FALSE, NULL), specs, 3);
  check_reads (build_zip (specs, 3, TRUE, NULL), specs, 3);
  check_reads (build_zip (specs, 3, FALSE, "a comment after the end record"), specs, 3);
}

static void
test_deflated (void)
{
  g_autofree guint8 *big = pattern (300000);
  Spec specs[] = {
    { .name = "a/data.pkl", .data = "\x80\x02}.", .size = 4, .method = 8 },
    { .name = "a/data/0", .data = big, .size = 300000, .method = 8 },
    { .name = "a/empty", .data = "", .size = 0, .method = 8 },
  };
  check_reads (build_zip (specs, 3, FALSE, NULL), specs, 3);
}

static void
test_zip64 (void)
{
  g_autofree guint8 *big = pattern (5000);
  Spec specs[] = {
    { .name = "m/data.pkl", .data = "\x80\x02}.", .size = 4, .zip64 = TRUE },
    { .name = "m/data/0", .data = big, .size = 5000, .zip64 = TRUE, .method = 8 },
    { .name = "m/version", .data = "3\n", .size = 2 },
  };
  check_reads (build_zip (specs, 3, TRUE, "zip64"), specs, 3);
}

static void
test_crc_zero_means_unchecked (void)
{
  Spec specs[] = { { .name = "x/y", .data = "abc", .size = 3, .crc_given = TRUE, .crc = 0 } };
  check_reads (build_zip (specs, 1, TRUE, NULL), specs, 1);
}

/* ---- archives that must not ------------------------------------------------------- */

static void
test_not_zips (void)
{
  GByteArray *short_file = g_byte_array_new ();
  g_byte_array_append (short_file, (const guint8 *) "PK\x03\x04", 4);
  open_fails (short_file, AGC_ERROR_FORMAT, "file is 4 bytes, too short for a ZIP archive");

  GByteArray *noise = g_byte_array_new ();
  for (int i = 0; i < 200; i++)
    {
      guint8 b = (guint8) (i * 31);
      g_byte_array_append (noise, &b, 1);
    }
  open_fails (noise, AGC_ERROR_FORMAT, "no ZIP end of central directory record");

  Spec specs[] = { { .name = "x/y", .data = "abcdef", .size = 6 } };
  GByteArray *cut = build_zip (specs, 1, TRUE, NULL);
  g_byte_array_set_size (cut, cut->len - 3);
  open_fails (cut, AGC_ERROR_FORMAT, "no ZIP end of central directory record");

  // every cut of a valid archive is refused (and read within bounds: ASan)
  GByteArray *whole = build_zip (specs, 1, TRUE, NULL);
  for (guint n = 0; n < whole->len; n++)
    {
      GByteArray *prefix = g_byte_array_new ();
      g_byte_array_append (prefix, whole->data, n);
      GError *error = NULL;
      g_assert_null (open_bytes (prefix, &error));
      g_assert_error (error, AGC_ERROR, AGC_ERROR_FORMAT);
      g_error_free (error);
      g_byte_array_unref (prefix);
    }
  g_byte_array_unref (whole);
}

static void
test_bad_directories (void)
{
  Spec one[] = { { .name = "x/y", .data = "abcdef", .size = 6 } };
  GByteArray *zip;

  // end record fields (no comment: it is the last 22 bytes)
  zip = build_zip (one, 1, FALSE, NULL);
  zip->data[zip->len - 22 + 16] = 0x7f; // central directory offset
  open_fails (zip, AGC_ERROR_FORMAT, "runs past its end record");
  zip = build_zip (one, 1, FALSE, NULL);
  zip->data[zip->len - 22 + 10] = 0xff; // entries
  zip->data[zip->len - 22 + 8] = 0xff;
  open_fails (zip, AGC_ERROR_FORMAT, "255 entries cannot fit in a central directory of");
  zip = build_zip (one, 1, FALSE, NULL);
  zip->data[zip->len - 22 + 4] = 1; // disk number
  open_fails (zip, AGC_ERROR_UNSUPPORTED, "multi-disk");

  // ZIP64 end record: 64-bit entry count, and its offset
  zip = build_zip (one, 1, TRUE, NULL);
  guint64 count = G_GUINT64_CONSTANT (1) << 40;
  size_t end64 = zip->len - 22 - 20 - 56;
  for (int b = 0; b < 8; b++)
    zip->data[end64 + 24 + b] = zip->data[end64 + 32 + b] = (guint8) (count >> (8 * b));
  open_fails (zip, AGC_ERROR_FORMAT, "1099511627776 entries cannot fit");
  zip = build_zip (one, 1, TRUE, NULL);
  zip->data[zip->len - 22 - 20 + 8] ^= 0x40; // locator's offset of the ZIP64 end record
  open_fails (zip, AGC_ERROR_FORMAT, "ZIP64 end of central directory");

  Spec twice[] = { { .name = "x/y", .data = "a", .size = 1 },
                   { .name = "x/y", .data = "b", .size = 1 } };
  open_fails (build_zip (twice, 2, TRUE, NULL), AGC_ERROR_FORMAT, "entry 'x/y' appears twice");

  Spec encrypted[] = { { .name = "x/y", .data = "abc", .size = 3, .flags = 1 } };
  open_fails (build_zip (encrypted, 1, TRUE, NULL), AGC_ERROR_UNSUPPORTED,
              "entry 'x/y' is encrypted");

  Spec renamed[] = { { .name = "x/y", .data = "abc", .size = 3, .local_name = "x/z" } };
  open_fails (build_zip (renamed, 1, TRUE, NULL), AGC_ERROR_FORMAT,
              "entry 'x/y': local header at offset 0 does not match the central directory");

  Spec sizes[] = { { .name = "x/y", .data = "abc", .size = 3, .central_size_given = TRUE,
                     .central_size = 4000000000u } };
  open_fails (build_zip (sizes, 1, TRUE, NULL), AGC_ERROR_FORMAT,
              "stored entry 'x/y' records 4000000000 bytes but occupies 3");

  Spec no_extra[] = { { .name = "x/y", .data = "abc", .size = 3, .ff_without_extra = TRUE } };
  open_fails (build_zip (no_extra, 1, TRUE, NULL), AGC_ERROR_FORMAT,
              "entry 'x/y' needs a ZIP64 extra field but has none");

  // data running into the central directory
  Spec big_deflated[] = { { .name = "x/y", .data = "abc", .size = 3, .method = 99 } };
  zip = build_zip (big_deflated, 1, TRUE, NULL);
  size_t central = 30 + 3 + 6 + 3;
  zip->data[central + 20 + 3] = 0x10; // compressed size 0x10000003
  open_fails (zip, AGC_ERROR_FORMAT, "run past the end of the data");
}

static void
test_bad_contents (void)
{
  Spec wrong_crc[] = { { .name = "x/y", .data = "abc", .size = 3, .crc_given = TRUE,
                         .crc = 0x12345678 } };
  read_fails (build_zip (wrong_crc, 1, TRUE, NULL), 0, AGC_ERROR_FORMAT,
              "entry 'x/y' is corrupt: its CRC-32 is 352441c2, the archive records 12345678");

  Spec bzip2[] = { { .name = "x/y", .data = "BZh9", .size = 4, .method = 12 } };
  read_fails (build_zip (bzip2, 1, TRUE, NULL), 0, AGC_ERROR_UNSUPPORTED,
              "entry 'x/y' is compressed with method 12");

  // a deflate stream cut short, and one with garbage
  g_autofree guint8 *big = pattern (50000);
  GBytes *deflated = deflate_raw (big, 50000);
  gsize deflated_size = 0;
  const guint8 *deflated_data = g_bytes_get_data (deflated, &deflated_size);
  // method 99 keeps the bytes as given; the central header then says 8
  Spec cut[] = { { .name = "x/y", .data = deflated_data, .size = deflated_size / 2,
                   .method = 99 } };
  GByteArray *zip = build_zip (cut, 1, TRUE, NULL);
  size_t central = 30 + 3 + 6 + deflated_size / 2;
  zip->data[central + 10] = 8;
  zip->data[central + 24] = 50000 & 0xff; // uncompressed size 50000
  zip->data[central + 25] = 50000 >> 8;
  read_fails (zip, 0, AGC_ERROR_FORMAT, "entry 'x/y' cannot be inflated");
  g_bytes_unref (deflated);

  Spec garbage[] = { { .name = "x/y", .data = "\xff\xff\xff\xff", .size = 4, .method = 99 } };
  zip = build_zip (garbage, 1, TRUE, NULL);
  central = 30 + 3 + 6 + 4;
  zip->data[central + 10] = 8;
  read_fails (zip, 0, AGC_ERROR_FORMAT, "entry 'x/y' cannot be inflated");

  // a size that deflate cannot reach from 4 bytes
  Spec bomb[] = { { .name = "x/y", .data = "abcd", .size = 4, .method = 8,
                    .central_size_given = TRUE, .central_size = 4000000000u } };
  read_fails (build_zip (bomb, 1, TRUE, NULL), 0, AGC_ERROR_FORMAT,
              "records 4000000000 bytes, more than deflate can produce");
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/zip/crc32", test_crc32);
  g_test_add_func ("/zip/stored", test_stored);
  g_test_add_func ("/zip/deflated", test_deflated);
  g_test_add_func ("/zip/zip64", test_zip64);
  g_test_add_func ("/zip/crc-zero", test_crc_zero_means_unchecked);
  g_test_add_func ("/zip/not-zips", test_not_zips);
  g_test_add_func ("/zip/bad-directories", test_bad_directories);
  g_test_add_func ("/zip/bad-contents", test_bad_contents);
  return g_test_run ();
}
