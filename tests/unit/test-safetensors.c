/* test-safetensors.c — the safetensors reader against hand-written files
 * (one per way a header can be wrong) and against a file written by PyTorch,
 * whose own float16/bfloat16 -> float32 conversion is the reference. */
#include "agriclip.h"
#include "formats/safetensors.h"
#include "unit-util.h"

#include <glib/gstdio.h>
#include <math.h>
#include <stdarg.h>
#include <string.h>

/* ---- files in a temporary folder ------------------------------------------ */

static char *tmp_dir;

static char *
write_bytes (const char *name, const void *bytes, size_t n_bytes)
{
  char *path = g_build_filename (tmp_dir, name, NULL);
  GError *error = NULL;
  g_file_set_contents (path, bytes, (gssize) n_bytes, &error);
  g_assert_no_error (error);
  return path;
}

/* A safetensors file: u64 LE length, then header, then data, exactly as given. */
static char *
write_st_with_length (const char *name, guint64 header_length, const char *header,
                      const void *data, size_t n_data)
{
  size_t n_header = strlen (header);
  GByteArray *bytes = g_byte_array_new ();
  guint64 le = GUINT64_TO_LE (header_length);
  g_byte_array_append (bytes, (const guint8 *) &le, 8);
  g_byte_array_append (bytes, (const guint8 *) header, (guint) n_header);
  if (n_data > 0)
    g_byte_array_append (bytes, data, (guint) n_data);
  char *path = write_bytes (name, bytes->data, bytes->len);
  g_byte_array_unref (bytes);
  return path;
}

static char *
write_st (const char *name, const char *header, const void *data, size_t n_data)
{
  return write_st_with_length (name, strlen (header), header, data, n_data);
}

/* Opening path fails with code and a message that starts with the file and
 * contains each of the NULL-terminated needles. */
static void
assert_open_fails (const char *path, int code, ...)
{
  GError *error = NULL;
  AgcSafetensors *file = agc_safetensors_open (path, &error);
  g_assert_null (file);
  g_assert_error (error, AGC_ERROR, code);
  if (!g_str_has_prefix (error->message, path))
    g_error ("message does not start with the file: %s", error->message);
  va_list args;
  va_start (args, code);
  for (const char *needle; (needle = va_arg (args, const char *)) != NULL;)
    if (strstr (error->message, needle) == NULL)
      g_error ("message lacks \"%s\": %s", needle, error->message);
  va_end (args);
  g_test_message ("%s", error->message);
  g_error_free (error);
}

static AgcSafetensors *
open_ok (const char *path)
{
  GError *error = NULL;
  AgcSafetensors *file = agc_safetensors_open (path, &error);
  g_assert_no_error (error);
  g_assert_nonnull (file);
  return file;
}

static float *
to_f32 (const AgcTensorView *t)
{
  float *out = g_new (float, MAX (agc_tensor_n_elements (t), 1));
  agc_tensor_to_f32 (t, out);
  return out;
}

static void
assert_same_float (float got, float want)
{
  if (isnan (want))
    g_assert_true (isnan (got));
  else
    {
      guint32 a, b;
      memcpy (&a, &got, 4);
      memcpy (&b, &want, 4);
      if (a != b)
        g_error ("got %.9g (0x%08x), want %.9g (0x%08x)", got, a, want, b);
    }
}

/* ---- valid files ---------------------------------------------------------- */

/* Expected values are IEEE 754 facts: half 0x0001 is 2^-24, 0x03ff the largest
 * subnormal 1023 * 2^-24, 0x7bff the largest finite 65504; bfloat16 is the top
 * half of a float32. */
static void
test_dtypes (void)
{
  const guint16 f16[] = { 0x3c00, 0xc000, 0x7bff, 0x0001, 0x03ff, 0x0400, 0x7c00,
                          0xfc00, 0x7e00, 0x8000, 0x3555, 0x8001 };
  const float f16_want[] = { 1.0f, -2.0f, 65504.0f, ldexpf (1, -24), ldexpf (1023, -24),
                             ldexpf (1, -14), INFINITY, -INFINITY, NAN, -0.0f,
                             0.333251953125f, -ldexpf (1, -24) };
  const guint16 bf16[] = { 0x3f80, 0xc049, 0x7f80, 0x0001, 0x7fc0, 0x8000 };
  const float bf16_want[] = { 1.0f, -3.140625f, INFINITY, ldexpf (1, -133), NAN, -0.0f };
  const double f64[] = { 0.1, -2.5, 1e300, 1e-50 };
  const float f64_want[] = { 0.1f, -2.5f, INFINITY, 0.0f };
  const float f32[] = { 1.5f, -0.25f, 3.0e38f };
  const gint64 i64[] = { -5, 1LL << 40 };
  const gint32 i32[] = { -7, 100000 };
  const gint16 i16[] = { -300, 300 };
  const gint8 i8[] = { -128, 127 };
  const guint8 u8[] = { 0, 255 };
  const guint8 boolean[] = { 1, 0, 1 };

  struct
  {
    const char *name, *dtype;
    const void *data;
    size_t n_bytes;
    int n;
  } parts[] = {
    { "f16", "F16", f16, sizeof f16, G_N_ELEMENTS (f16) },
    { "bf16", "BF16", bf16, sizeof bf16, G_N_ELEMENTS (bf16) },
    { "f64", "F64", f64, sizeof f64, G_N_ELEMENTS (f64) },
    { "f32", "F32", f32, sizeof f32, G_N_ELEMENTS (f32) },
    { "i64", "I64", i64, sizeof i64, G_N_ELEMENTS (i64) },
    { "i32", "I32", i32, sizeof i32, G_N_ELEMENTS (i32) },
    { "i16", "I16", i16, sizeof i16, G_N_ELEMENTS (i16) },
    { "i8", "I8", i8, sizeof i8, G_N_ELEMENTS (i8) },
    { "u8", "U8", u8, sizeof u8, G_N_ELEMENTS (u8) },
    { "bool", "BOOL", boolean, sizeof boolean, G_N_ELEMENTS (boolean) },
  };
  // this test writes little-endian data from memory
  g_assert_cmpint (G_BYTE_ORDER, ==, G_LITTLE_ENDIAN);
  GString *header
    = g_string_new ("{\"__metadata__\": {\"format\": \"pt\", \"note\": \"x\\u00e9\"}");
  GByteArray *data = g_byte_array_new ();
  for (size_t i = 0; i < G_N_ELEMENTS (parts); i++)
    {
      g_string_append_printf (header, ", \"%s\": {\"dtype\": \"%s\", \"shape\": [%d], "
                              "\"data_offsets\": [%u, %u]}",
                              parts[i].name, parts[i].dtype, parts[i].n, data->len,
                              data->len + (guint) parts[i].n_bytes);
      g_byte_array_append (data, parts[i].data, (guint) parts[i].n_bytes);
    }
  // a scalar and an empty tensor take no / one element
  g_string_append_printf (header, ", \"empty\": {\"dtype\": \"F32\", \"shape\": [2, 0], "
                          "\"data_offsets\": [%u, %u]}", data->len, data->len);
  float scalar = 42.0f;
  g_string_append_printf (header, ", \"scalar\": {\"dtype\": \"F32\", \"shape\": [], "
                          "\"data_offsets\": [%u, %u]}}", data->len, data->len + 4);
  g_byte_array_append (data, (const guint8 *) &scalar, 4);

  g_autofree char *path = write_st ("all.safetensors", header->str, data->data, data->len);
  AgcSafetensors *file = open_ok (path);
  g_assert_cmpint (agc_safetensors_n_tensors (file), ==, G_N_ELEMENTS (parts) + 2);
  g_assert_cmpstr (agc_safetensors_path (file), ==, path);

  GHashTable *metadata = agc_safetensors_metadata (file);
  g_assert_nonnull (metadata);
  g_assert_cmpuint (g_hash_table_size (metadata), ==, 2);
  g_assert_cmpstr (g_hash_table_lookup (metadata, "format"), ==, "pt");
  g_assert_cmpstr (g_hash_table_lookup (metadata, "note"), ==, "x\xc3\xa9");

  const struct
  {
    const char *name;
    AgcDType dtype;
    const float *want;
  } checks[] = {
    { "f16", AGC_DTYPE_F16, f16_want }, { "bf16", AGC_DTYPE_BF16, bf16_want },
    { "f64", AGC_DTYPE_F64, f64_want }, { "f32", AGC_DTYPE_F32, f32 },
  };
  for (size_t c = 0; c < G_N_ELEMENTS (checks); c++)
    {
      const AgcTensorView *t = agc_safetensors_find (file, checks[c].name);
      g_assert_nonnull (t);
      g_assert_cmpint (t->dtype, ==, checks[c].dtype);
      g_assert_cmpstr (t->name, ==, checks[c].name);
      g_assert_cmpstr (t->file, ==, path);
      g_assert_true (agc_dtype_is_float (t->dtype));
      g_autofree float *got = to_f32 (t);
      for (int i = 0; i < agc_tensor_n_elements (t); i++)
        assert_same_float (got[i], checks[c].want[i]);
    }

  const AgcTensorView *t = agc_safetensors_find (file, "i64");
  g_assert_cmpint (t->dtype, ==, AGC_DTYPE_I64);
  g_assert_false (agc_dtype_is_float (t->dtype));
  g_assert_cmpuint (t->n_bytes, ==, 16);
  gint64 v64;
  memcpy (&v64, t->data + 8, 8);
  g_assert_cmpint (v64, ==, 1LL << 40);
  g_autofree float *i64_f = to_f32 (t);
  g_assert_cmpfloat (i64_f[0], ==, -5.0f);
  g_assert_cmpfloat (i64_f[1], ==, 1099511627776.0f);

  const struct
  {
    const char *name;
    AgcDType dtype;
    float first, second;
  } ints[] = {
    { "i32", AGC_DTYPE_I32, -7, 100000 }, { "i16", AGC_DTYPE_I16, -300, 300 },
    { "i8", AGC_DTYPE_I8, -128, 127 },    { "u8", AGC_DTYPE_U8, 0, 255 },
    { "bool", AGC_DTYPE_BOOL, 1, 0 },
  };
  for (size_t c = 0; c < G_N_ELEMENTS (ints); c++)
    {
      t = agc_safetensors_find (file, ints[c].name);
      g_assert_cmpint (t->dtype, ==, ints[c].dtype);
      g_assert_cmpstr (agc_dtype_name (t->dtype), ==, parts[c + 5].dtype);
      g_autofree float *got = to_f32 (t);
      g_assert_cmpfloat (got[0], ==, ints[c].first);
      g_assert_cmpfloat (got[1], ==, ints[c].second);
    }

  t = agc_safetensors_find (file, "empty");
  g_assert_cmpint (t->n_dims, ==, 2);
  g_assert_cmpint (agc_tensor_n_elements (t), ==, 0);
  g_assert_cmpuint (t->n_bytes, ==, 0);
  t = agc_safetensors_find (file, "scalar");
  g_assert_cmpint (t->n_dims, ==, 0);
  g_assert_cmpint (agc_tensor_n_elements (t), ==, 1);
  g_autofree float *s = to_f32 (t);
  g_assert_cmpfloat (s[0], ==, 42.0f);

  // tensors are listed in data order
  for (int i = 1; i < agc_safetensors_n_tensors (file); i++)
    g_assert_true (agc_safetensors_tensor (file, i - 1)->data
                   <= agc_safetensors_tensor (file, i)->data);
  g_assert_null (agc_safetensors_find (file, "absent"));
  g_assert_null (agc_safetensors_find (file, "__metadata__"));

  agc_safetensors_free (file);
  g_byte_array_unref (data);
  g_string_free (header, TRUE);
}

/* An F32 and an F16 tensor at odd addresses (after a 3-byte U8 tensor; the
 * mapping itself is page-aligned): nothing may assume alignment. */
static void
test_unaligned (void)
{
  guint8 data[3 + 8 + 4];
  const float f[2] = { 0.5f, -1024.25f };
  const guint16 h[2] = { 0x3c00, 0x0200 }; // 1, 2^-15 (subnormal)
  data[0] = 1, data[1] = 2, data[2] = 3;
  memcpy (data + 3, f, 8);
  memcpy (data + 11, h, 4);
  const char *header = "{\"b\":{\"dtype\":\"U8\",\"shape\":[3],\"data_offsets\":[0,3]},"
                       "\"a\":{\"dtype\":\"F32\",\"shape\":[1,2],\"data_offsets\":[3,11]},"
                       "\"c\":{\"dtype\":\"F16\",\"shape\":[2],\"data_offsets\":[11,15]}}";
  g_assert_cmpint (strlen (header) % 2, ==, 0); // so a and c start at odd addresses
  g_autofree char *path = write_st ("unaligned.safetensors", header, data, sizeof data);
  AgcSafetensors *file = open_ok (path);
  const AgcTensorView *a = agc_safetensors_find (file, "a");
  g_assert_cmpuint ((guintptr) a->data % 4, !=, 0); // the case under test really happens
  g_assert_cmpint (a->shape[0], ==, 1);
  g_assert_cmpint (a->shape[1], ==, 2);
  g_autofree float *fa = to_f32 (a);
  g_assert_cmpfloat (fa[0], ==, 0.5f);
  g_assert_cmpfloat (fa[1], ==, -1024.25f);
  const AgcTensorView *c = agc_safetensors_find (file, "c");
  g_assert_cmpuint ((guintptr) c->data % 2, !=, 0);
  g_autofree float *fc = to_f32 (c);
  g_assert_cmpfloat (fc[0], ==, 1.0f);
  g_assert_cmpfloat (fc[1], ==, ldexpf (1, -15));
  g_assert_true (agc_safetensors_tensor (file, 0) == agc_safetensors_find (file, "b"));
  g_assert_null (agc_safetensors_metadata (file));
  agc_safetensors_free (file);
}

/* Writers pad the header with spaces; whitespace before '{' is JSON too. */
static void
test_padded_header (void)
{
  const float f = 2.0f;
  g_autofree char *path = write_st (
    "padded.safetensors",
    "{\"x\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 4]}, "
    "\"__metadata__\": null}        ",
    &f, 4);
  AgcSafetensors *file = open_ok (path);
  g_assert_cmpint (agc_safetensors_n_tensors (file), ==, 1);
  g_assert_null (agc_safetensors_metadata (file));
  agc_safetensors_free (file);

  g_autofree char *empty = write_st ("empty.safetensors", "{}  ", NULL, 0);
  file = open_ok (empty);
  g_assert_cmpint (agc_safetensors_n_tensors (file), ==, 0);
  agc_safetensors_free (file);
}

/* ---- broken framing ----------------------------------------------------------- */

static const char good_header[]
  = "{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}";

static void
test_framing (void)
{
  const float f[2] = { 1, 2 };
  g_autofree char *missing = g_build_filename (tmp_dir, "missing.safetensors", NULL);
  GError *error = NULL;
  g_assert_null (agc_safetensors_open (missing, &error));
  g_assert_error (error, AGC_ERROR, AGC_ERROR_IO);
  g_assert_nonnull (strstr (error->message, "missing.safetensors"));
  g_clear_error (&error);

  g_autofree char *tiny = write_bytes ("tiny.safetensors", "\x10\0\0", 3);
  assert_open_fails (tiny, AGC_ERROR_FORMAT, "3 bytes", "too short", NULL);
  g_autofree char *zero = write_bytes ("zero.safetensors", "", 0);
  assert_open_fails (zero, AGC_ERROR_FORMAT, "0 bytes", NULL);

  g_autofree char *huge = write_st_with_length ("huge.safetensors", G_GUINT64_CONSTANT (1) << 63,
                                                good_header, f, 8);
  assert_open_fails (huge, AGC_ERROR_FORMAT, "header length 9223372036854775808",
                     "exceeds the file size", NULL);
  g_autofree char *max = write_st_with_length ("max.safetensors", G_MAXUINT64, good_header, f, 8);
  assert_open_fails (max, AGC_ERROR_FORMAT, "header length 18446744073709551615", NULL);
  size_t file_size = 8 + strlen (good_header) + 8;
  g_autofree char *beyond = write_st_with_length ("beyond.safetensors", file_size - 7,
                                                  good_header, f, 8);
  assert_open_fails (beyond, AGC_ERROR_FORMAT, "exceeds the file size", NULL);
  g_autofree char *empty = write_st_with_length ("nohead.safetensors", 0, "", NULL, 0);
  assert_open_fails (empty, AGC_ERROR_FORMAT, "header length is 0", NULL);

  // a header length that cuts the JSON short
  g_autofree char *cut = write_st_with_length ("cut.safetensors", strlen (good_header) - 5,
                                               good_header, f, 8);
  assert_open_fails (cut, AGC_ERROR_FORMAT, "not valid JSON", NULL);
  // a valid file missing its last 3 bytes
  g_autofree char *truncated = write_st ("truncated.safetensors", good_header, f, 5);
  assert_open_fails (truncated, AGC_ERROR_FORMAT, "tensor 'w'", "[0, 8)",
                     "exceed the data section of 5 bytes", NULL);
  // and one with 3 bytes too many
  guint8 longer[11] = { 0 };
  g_autofree char *trailing = write_st ("trailing.safetensors", good_header, longer, 11);
  assert_open_fails (trailing, AGC_ERROR_FORMAT, "3 bytes after the last tensor", NULL);
}

static void
test_not_json (void)
{
  const struct
  {
    const char *header, *needle;
  } cases[] = {
    { "not json at all", "not a JSON object" },
    { "{not json at all", "not valid JSON" },
    { "       ", "not a JSON object" },
    { "[1, 2]", "not a JSON object" },
    { "\"w\"", "not a JSON object" },
    { "{\"w\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 8]}", "not valid JSON" },
    { "{\"w\": {\"dtype\": \"F32\",}}", "not valid JSON" },
    { "{'w': 1}", "not valid JSON" },
    // json-glib alone would take these as numbers: hex, octal-looking, 2^64 + 8 wrapping to 8
    { "{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,0x8]}}", "malformed number" },
    { "{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,010]}}", "malformed number" },
    { "{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,18446744073709551624]}}",
      "integer 18446744073709551624" },
    { "{/* c */ \"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}",
      "unexpected byte 0x2f" },
    { "{\x01\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}",
      "unexpected byte 0x01" },
    { "{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}} x", "data after" },
    { "{\"w\\u0000\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", "\\u0000" },
    { "{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}, \"\xff\": 1}", "UTF-8" },
    { "{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8],}}", "not valid JSON" },
    { "{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}} {}",
      "data after the top-level object" },
    { "{\"w\":{\"dtype\":True,\"shape\":[2],\"data_offsets\":[0,8]}}", "unexpected word" },
  };
  const float f[2] = { 1, 2 };
  for (size_t i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autofree char *name = g_strdup_printf ("bad-%zu.safetensors", i);
      g_autofree char *path = write_st (name, cases[i].header, f, 8);
      assert_open_fails (path, AGC_ERROR_FORMAT, cases[i].needle, NULL);
    }
  // a NUL byte inside a name (C strings could not hold it)
  static const char with_nul[]
    = "{\"w\0\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}";
  GByteArray *bytes = g_byte_array_new ();
  guint64 le = GUINT64_TO_LE ((guint64) (sizeof with_nul - 1));
  g_byte_array_append (bytes, (const guint8 *) &le, 8);
  g_byte_array_append (bytes, (const guint8 *) with_nul, sizeof with_nul - 1);
  g_byte_array_append (bytes, (const guint8 *) f, 8);
  g_autofree char *path = write_bytes ("nul.safetensors", bytes->data, bytes->len);
  g_byte_array_unref (bytes);
  assert_open_fails (path, AGC_ERROR_FORMAT, "not valid UTF-8", NULL);
}

/* ---- broken tensor entries ------------------------------------------------------ */

static void
check_header (const char *header, size_t n_data, int code, ...)
{
  static int counter;
  g_autofree char *name = g_strdup_printf ("entry-%d.safetensors", counter++);
  guint8 *data = g_malloc0 (MAX (n_data, 1));
  g_autofree char *path = write_st (name, header, data, n_data);
  g_free (data);

  GError *error = NULL;
  g_assert_null (agc_safetensors_open (path, &error));
  g_assert_error (error, AGC_ERROR, code);
  g_assert_true (g_str_has_prefix (error->message, path));
  va_list args;
  va_start (args, code);
  for (const char *needle; (needle = va_arg (args, const char *)) != NULL;)
    if (strstr (error->message, needle) == NULL)
      g_error ("message lacks \"%s\": %s", needle, error->message);
  va_end (args);
  g_test_message ("%s", error->message);
  g_error_free (error);
}

#define T(name, dtype, shape, begin, end)                                                    \
  "\"" name "\":{\"dtype\":\"" dtype "\",\"shape\":" shape ",\"data_offsets\":["         \
  #begin "," #end "]}"

static void
test_placement (void)
{
  // x covers [0, 8), y [4, 12): they overlap; the message names both
  check_header ("{" T ("x", "F32", "[2]", 0, 8) "," T ("y", "F32", "[2]", 4, 12) "}", 12,
                AGC_ERROR_FORMAT, "tensor 'y': data_offsets [4, 12) overlap tensor 'x'", NULL);
  // the same, listed the other way round
  check_header ("{" T ("y", "F32", "[2]", 4, 12) "," T ("x", "F32", "[2]", 0, 8) "}", 12,
                AGC_ERROR_FORMAT, "tensor 'y'", "overlap tensor 'x'", NULL);
  // identical ranges
  check_header ("{" T ("x", "F32", "[2]", 0, 8) "," T ("y", "F32", "[2]", 0, 8) "}", 8,
                AGC_ERROR_FORMAT, "overlap", NULL);
  // a gap of 4 bytes between x and y
  check_header ("{" T ("x", "F32", "[2]", 0, 8) "," T ("y", "F32", "[1]", 12, 16) "}", 16,
                AGC_ERROR_FORMAT, "tensor 'y'", "gap of 4 bytes after tensor 'x'", NULL);
  // unused bytes before the first tensor
  check_header ("{" T ("x", "F32", "[1]", 4, 8) "}", 8, AGC_ERROR_FORMAT, "tensor 'x'",
                "first 4 bytes", NULL);
  // beyond the data section
  check_header ("{" T ("x", "F32", "[2]", 0, 8) "," T ("y", "F32", "[2]", 8, 16) "}", 12,
                AGC_ERROR_FORMAT, "tensor 'y'", "[8, 16) exceed the data section of 12 bytes",
                NULL);
  check_header ("{" T ("x", "F32", "[0]", 9223372036854775807, 9223372036854775807) "}", 0,
                AGC_ERROR_FORMAT, "tensor 'x'", "exceed", NULL);
  // reversed
  check_header ("{" T ("x", "F32", "[0]", 8, 4) "}", 8, AGC_ERROR_FORMAT, "tensor 'x'",
                "[8, 4) end before they begin", NULL);
  // shape x dtype size disagrees with the byte range
  check_header ("{" T ("x", "F32", "[2, 3]", 0, 20) "}", 20, AGC_ERROR_FORMAT, "tensor 'x'",
                "6 F32 elements need 24 bytes", "hold 20", NULL);
  check_header ("{" T ("x", "F16", "[3]", 0, 12) "}", 12, AGC_ERROR_FORMAT, "tensor 'x'",
                "need 6 bytes", NULL);
  // shapes
  check_header ("{" T ("x", "F32", "[2, -3]", 0, 8) "}", 8, AGC_ERROR_FORMAT, "tensor 'x'",
                "shape[1] is -3, expected a non-negative integer", NULL);
  check_header ("{" T ("x", "F32", "[2.0]", 0, 8) "}", 8, AGC_ERROR_FORMAT, "shape[0] is 2.0,",
                NULL);
  check_header ("{" T ("x", "F32", "[\"2\"]", 0, 8) "}", 8, AGC_ERROR_FORMAT,
                "shape[0] is \"2\"", NULL);
  check_header ("{" T ("x", "F32", "2", 0, 8) "}", 8, AGC_ERROR_FORMAT,
                "shape is 2, expected an array", NULL);
  check_header ("{" T ("x", "F32", "[4294967296, 4294967296, 4294967296]", 0, 8) "}", 8,
                AGC_ERROR_FORMAT, "tensor 'x'", "too many elements", NULL);
  check_header ("{" T ("x", "F64", "[4294967296, 536870912]", 0, 8) "}", 8, AGC_ERROR_FORMAT,
                "too many elements", NULL);
  check_header ("{" T ("x", "F32", "[1,1,1,1,1,1,1,1,2]", 0, 8) "}", 8, AGC_ERROR_UNSUPPORTED,
                "tensor 'x'", "9 dimensions", NULL);
}

static void
test_entry_types (void)
{
  check_header ("{" T ("layer.weight", "F8_E4M3", "[8]", 0, 8) "}", 8, AGC_ERROR_UNSUPPORTED,
                "tensor 'layer.weight'", "dtype 'F8_E4M3' is not supported", NULL);
  check_header ("{" T ("x", "f32", "[2]", 0, 8) "}", 8, AGC_ERROR_UNSUPPORTED, "'f32'", NULL);
  check_header ("{\"x\":{\"dtype\":5,\"shape\":[2],\"data_offsets\":[0,8]}}", 8, AGC_ERROR_FORMAT,
                "tensor 'x'", "dtype is 5, expected a string", NULL);
  check_header ("{\"x\":{\"shape\":[2],\"data_offsets\":[0,8]}}", 8, AGC_ERROR_FORMAT,
                "tensor 'x'", "no 'dtype'", NULL);
  check_header ("{\"x\":{\"dtype\":\"F32\",\"shape\":[2]}}", 8, AGC_ERROR_FORMAT,
                "no 'data_offsets'", NULL);
  check_header ("{\"x\":{\"dtype\":\"F32\",\"data_offsets\":[0,8]}}", 8, AGC_ERROR_FORMAT,
                "no 'shape'", NULL);
  check_header ("{\"x\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8]}}", 8,
                AGC_ERROR_FORMAT, "tensor 'x'", "data_offsets must be", NULL);
  check_header ("{\"x\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8,8]}}", 8,
                AGC_ERROR_FORMAT, "data_offsets must be", NULL);
  check_header ("{\"x\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[-8,0]}}", 8,
                AGC_ERROR_FORMAT, "data_offsets must be", NULL);
  check_header ("{\"x\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":\"0-8\"}}", 8,
                AGC_ERROR_FORMAT, "data_offsets must be", NULL);
  check_header ("{\"x\": [1, 2]}", 8, AGC_ERROR_FORMAT, "tensor 'x'", "is an array", NULL);
  check_header ("{\"__metadata__\": {\"a\": 1}," T ("x", "F32", "[2]", 0, 8) "}", 8,
                AGC_ERROR_FORMAT, "__metadata__ 'a' is 1, expected a string", NULL);
  check_header ("{\"__metadata__\": [\"a\"]," T ("x", "F32", "[2]", 0, 8) "}", 8,
                AGC_ERROR_FORMAT, "__metadata__ is an array", NULL);
}

static void
test_duplicates (void)
{
  // the second "x" would silently replace the first in a plain JSON reader
  check_header ("{" T ("x", "F32", "[2]", 0, 8) "," T ("x", "F32", "[2]", 8, 16) "}", 16,
                AGC_ERROR_FORMAT, "tensor 'x' appears twice", NULL);
  check_header ("{\"x\":{\"dtype\":\"F32\",\"dtype\":\"F16\","
                "\"shape\":[2],\"data_offsets\":[0,8]}}",
                8, AGC_ERROR_FORMAT, "tensor 'x'", "'dtype' appears twice", NULL);
  check_header ("{\"__metadata__\":{\"a\":\"1\",\"a\":\"2\"}," T ("x", "F32", "[2]", 0, 8) "}", 8,
                AGC_ERROR_FORMAT, "__metadata__ has key 'a' twice", NULL);
}

/* ---- PyTorch as the reference for float16 / bfloat16 / float64 ------------------ */

/* Writes torch.safetensors with every float16 and bfloat16 bit pattern, some
 * values rounded by torch's .half() / .bfloat16(), some float64 values, and
 * torch's .float() of each as the expected result.  The header is written by
 * Python's json module, padded with spaces to 8 bytes as the Rust writer does. */
static const char torch_script[] =
  "import json, struct, sys\n"
  "try:\n"
  "    import torch\n"
  "except ImportError:\n"
  "    sys.exit(77)\n"
  "bits = torch.arange(-32768, 32768, dtype=torch.int32).to(torch.int16)\n"
  "values = torch.tensor([1/3, 65504.0, 65520.0, 70000.0, 1e-7, 6e-8, 2e-8, -0.0, 2.5e-6,\n"
  "                       -1e-5, 3.14159, float('inf'), float('-inf'), float('nan'),\n"
  "                       1e38, 1e-39])\n"
  "f64 = torch.tensor([0.1, -2.5, 1e-40, 1e-46, 1e39, -1e39, 3.4028235e38,\n"
  "                    3.4028235677973366e38, 1 + 2**-24, 1 + 3 * 2**-24, 5e-324,\n"
  "                    float('inf'), float('nan'), 0.0, -0.0, 123456789.123],\n"
  "                   dtype=torch.float64)\n"
  "pairs = [('f16_all', bits.view(torch.float16)), ('bf16_all', bits.view(torch.bfloat16)),\n"
  "         ('f16_rounded', values.half()), ('bf16_rounded', values.bfloat16()), ('f64', f64)]\n"
  "names = {torch.float16: 'F16', torch.bfloat16: 'BF16', torch.float64: 'F64',\n"
  "         torch.float32: 'F32'}\n"
  "def raw(t):\n"
  "    if t.dtype in (torch.float16, torch.bfloat16):\n"
  "        t = t.view(torch.int16)\n"
  "    return t.contiguous().numpy().tobytes()\n"
  "header, blobs, offset = {}, [], 0\n"
  "for name, t in pairs:\n"
  "    for key, u in ((name, t), (name + '_as_f32', t.float())):\n"
  "        b = raw(u)\n"
  "        header[key] = {'dtype': names[u.dtype], 'shape': list(u.shape),\n"
  "                       'data_offsets': [offset, offset + len(b)]}\n"
  "        blobs.append(b)\n"
  "        offset += len(b)\n"
  "h = json.dumps(header).encode()\n"
  "h += b' ' * (-len(h) % 8)\n"
  "with open(sys.argv[1], 'wb') as f:\n"
  "    f.write(struct.pack('<Q', len(h)) + h + b''.join(blobs))\n";

static void
test_torch_reference (void)
{
  if (!g_file_test ("/usr/bin/python3", G_FILE_TEST_IS_EXECUTABLE))
    {
      g_test_skip ("/usr/bin/python3 not found");
      return;
    }
  g_autofree char *path = g_build_filename (tmp_dir, "torch.safetensors", NULL);
  const char *argv[] = { "/usr/bin/python3", "-c", torch_script, path, NULL };
  g_autofree char *err = NULL;
  int status = 0;
  GError *error = NULL;
  g_spawn_sync (NULL, (char **) argv, NULL, G_SPAWN_STDOUT_TO_DEV_NULL, NULL, NULL, NULL, &err,
                &status, &error);
  g_assert_no_error (error);
  if (!g_spawn_check_wait_status (status, &error))
    {
      if (g_error_matches (error, G_SPAWN_EXIT_ERROR, 77))
        {
          g_test_skip ("/usr/bin/python3 has no torch");
          g_error_free (error);
          return;
        }
      g_error ("the torch script failed: %s\n%s", error->message, err);
    }

  AgcSafetensors *file = open_ok (path);
  g_assert_cmpint (agc_safetensors_n_tensors (file), ==, 10);
  const char *names[] = { "f16_all", "bf16_all", "f16_rounded", "bf16_rounded", "f64" };
  for (size_t n = 0; n < G_N_ELEMENTS (names); n++)
    {
      const AgcTensorView *t = agc_safetensors_find (file, names[n]);
      g_autofree char *ref_name = g_strconcat (names[n], "_as_f32", NULL);
      const AgcTensorView *ref = agc_safetensors_find (file, ref_name);
      g_assert_nonnull (t);
      g_assert_nonnull (ref);
      g_assert_cmpint (ref->dtype, ==, AGC_DTYPE_F32);
      int64_t count = agc_tensor_n_elements (t);
      g_assert_cmpint (count, ==, agc_tensor_n_elements (ref));
      g_autofree float *got = to_f32 (t);
      g_autofree float *want = to_f32 (ref);
      int n_nan = 0;
      for (int64_t i = 0; i < count; i++)
        {
          n_nan += isnan (want[i]) != 0;
          assert_same_float (got[i], want[i]);
        }
      if (n == 0) // 2 * 1023 NaN patterns of half: the test saw all of them
        g_assert_cmpint (n_nan, ==, 2046);
      g_test_message ("%s: %" G_GINT64_FORMAT " values agree with torch", names[n], count);
    }
  agc_safetensors_free (file);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  GError *error = NULL;
  tmp_dir = g_dir_make_tmp ("agc-safetensors-XXXXXX", &error);
  g_assert_no_error (error);

  g_test_add_func ("/safetensors/dtypes", test_dtypes);
  g_test_add_func ("/safetensors/unaligned", test_unaligned);
  g_test_add_func ("/safetensors/padded-header", test_padded_header);
  g_test_add_func ("/safetensors/framing", test_framing);
  g_test_add_func ("/safetensors/not-json", test_not_json);
  g_test_add_func ("/safetensors/placement", test_placement);
  g_test_add_func ("/safetensors/entry-types", test_entry_types);
  g_test_add_func ("/safetensors/duplicates", test_duplicates);
  g_test_add_func ("/safetensors/torch-reference", test_torch_reference);
  int result = g_test_run ();

  remove_tree (tmp_dir);
  g_free (tmp_dir);
  return result;
}
