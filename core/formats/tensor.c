/* tensor.c — dtype facts and conversion of stored tensors to float32.
 * Stored data are little-endian and may sit at any address, so every element
 * is read with memcpy; the compiler turns that into plain loads. */
#include "formats/tensor.h"

#include "agriclip.h"

#include <string.h>

size_t
agc_dtype_size (AgcDType dtype)
{
  switch (dtype)
    {
    case AGC_DTYPE_F64:
    case AGC_DTYPE_I64:
      return 8;
    case AGC_DTYPE_F32:
    case AGC_DTYPE_I32:
      return 4;
    case AGC_DTYPE_F16:
    case AGC_DTYPE_BF16:
    case AGC_DTYPE_I16:
      return 2;
    case AGC_DTYPE_I8:
    case AGC_DTYPE_U8:
    case AGC_DTYPE_BOOL:
      return 1;
    }
  g_return_val_if_reached (0);
}

const char *
agc_dtype_name (AgcDType dtype)
{
  switch (dtype)
    {
    case AGC_DTYPE_F32: return "F32";
    case AGC_DTYPE_F16: return "F16";
    case AGC_DTYPE_BF16: return "BF16";
    case AGC_DTYPE_F64: return "F64";
    case AGC_DTYPE_I64: return "I64";
    case AGC_DTYPE_I32: return "I32";
    case AGC_DTYPE_I16: return "I16";
    case AGC_DTYPE_I8: return "I8";
    case AGC_DTYPE_U8: return "U8";
    case AGC_DTYPE_BOOL: return "BOOL";
    }
  g_return_val_if_reached ("?");
}

gboolean
agc_dtype_is_float (AgcDType dtype)
{
  return dtype == AGC_DTYPE_F32 || dtype == AGC_DTYPE_F16 || dtype == AGC_DTYPE_BF16
         || dtype == AGC_DTYPE_F64;
}

int64_t
agc_tensor_n_elements (const AgcTensorView *tensor)
{
  // the reader has already checked that this product fits
  int64_t n = 1;
  for (int d = 0; d < tensor->n_dims; d++)
    n *= tensor->shape[d];
  return n;
}

static float
f32_from_bits (guint32 bits)
{
  float f;
  memcpy (&f, &bits, sizeof f);
  return f;
}

/* IEEE half: 1 sign, 5 exponent (bias 15), 10 mantissa bits.  Every half is
 * exactly representable as a float, so this is a pure re-encoding. */
static float
f16_to_f32 (guint16 h)
{
  guint32 sign = (guint32) (h & 0x8000) << 16;
  guint32 exponent = (h >> 10) & 0x1f;
  guint32 mantissa = h & 0x3ff;

  if (exponent == 0x1f) // inf, or NaN with its payload kept
    return f32_from_bits (sign | 0x7f800000u | (mantissa << 13));
  if (exponent != 0) // normal: rebias 15 -> 127
    return f32_from_bits (sign | ((exponent + 112) << 23) | (mantissa << 13));
  if (mantissa == 0)
    return f32_from_bits (sign);
  // subnormal half (mantissa * 2^-24) is a normal float: shift the leading 1
  // into the implicit position, lowering the exponent once per shift
  exponent = 113;
  while ((mantissa & 0x400) == 0)
    {
      mantissa <<= 1;
      exponent--;
    }
  return f32_from_bits (sign | (exponent << 23) | ((mantissa & 0x3ff) << 13));
}

gboolean
agc_tensor_check_finite (const AgcTensorView *tensor, const char *name, GError **error)
{
  int64_t n = agc_tensor_n_elements (tensor);
  const guint8 *p = tensor->data;
  int64_t bad = -1;
  // all-ones exponent: infinity or NaN, whatever the sign and mantissa
  switch (tensor->dtype)
    {
    case AGC_DTYPE_F32:
      for (int64_t i = 0; i < n && bad < 0; i++)
        {
          guint32 v;
          memcpy (&v, p + 4 * i, 4);
          bad = (GUINT32_FROM_LE (v) & 0x7f800000u) == 0x7f800000u ? i : -1;
        }
      break;
    case AGC_DTYPE_F16:
    case AGC_DTYPE_BF16:
      {
        guint16 mask = tensor->dtype == AGC_DTYPE_F16 ? 0x7c00 : 0x7f80;
        for (int64_t i = 0; i < n && bad < 0; i++)
          {
            guint16 v;
            memcpy (&v, p + 2 * i, 2);
            bad = (GUINT16_FROM_LE (v) & mask) == mask ? i : -1;
          }
        break;
      }
    case AGC_DTYPE_F64:
      for (int64_t i = 0; i < n && bad < 0; i++)
        {
          guint64 v;
          memcpy (&v, p + 8 * i, 8);
          bad = (GUINT64_FROM_LE (v) & G_GUINT64_CONSTANT (0x7ff0000000000000))
                    == G_GUINT64_CONSTANT (0x7ff0000000000000) ? i : -1;
        }
      break;
    default:
      break;
    }
  if (bad < 0)
    return TRUE;
  g_set_error (error, AGC_ERROR, AGC_ERROR_MODEL,
               "%s: tensor '%s' holds a non-finite value (NaN or infinity) at index %" G_GINT64_FORMAT,
               tensor->file, name, bad);
  return FALSE;
}

void
agc_tensor_to_f32 (const AgcTensorView *tensor, float *out)
{
  int64_t n = agc_tensor_n_elements (tensor);
  const guint8 *p = tensor->data;

  switch (tensor->dtype)
    {
    case AGC_DTYPE_F32:
#if G_BYTE_ORDER == G_LITTLE_ENDIAN
      memcpy (out, p, (size_t) n * 4);
#else
      for (int64_t i = 0; i < n; i++)
        {
          guint32 v;
          memcpy (&v, p + 4 * i, 4);
          out[i] = f32_from_bits (GUINT32_FROM_LE (v));
        }
#endif
      break;
    case AGC_DTYPE_F16:
      for (int64_t i = 0; i < n; i++)
        {
          guint16 v;
          memcpy (&v, p + 2 * i, 2);
          out[i] = f16_to_f32 (GUINT16_FROM_LE (v));
        }
      break;
    case AGC_DTYPE_BF16: // the upper half of a float32
      for (int64_t i = 0; i < n; i++)
        {
          guint16 v;
          memcpy (&v, p + 2 * i, 2);
          out[i] = f32_from_bits ((guint32) GUINT16_FROM_LE (v) << 16);
        }
      break;
    case AGC_DTYPE_F64:
      for (int64_t i = 0; i < n; i++)
        {
          guint64 v;
          double d;
          memcpy (&v, p + 8 * i, 8);
          v = GUINT64_FROM_LE (v);
          memcpy (&d, &v, 8);
          out[i] = (float) d;
        }
      break;
    // integers are converted too: harmless, and handy for buffers such as position_ids
    case AGC_DTYPE_I64:
      for (int64_t i = 0; i < n; i++)
        {
          guint64 v;
          memcpy (&v, p + 8 * i, 8);
          out[i] = (float) (gint64) GUINT64_FROM_LE (v);
        }
      break;
    case AGC_DTYPE_I32:
      for (int64_t i = 0; i < n; i++)
        {
          guint32 v;
          memcpy (&v, p + 4 * i, 4);
          out[i] = (float) (gint32) GUINT32_FROM_LE (v);
        }
      break;
    case AGC_DTYPE_I16:
      for (int64_t i = 0; i < n; i++)
        {
          guint16 v;
          memcpy (&v, p + 2 * i, 2);
          out[i] = (float) (gint16) GUINT16_FROM_LE (v);
        }
      break;
    case AGC_DTYPE_I8:
      for (int64_t i = 0; i < n; i++)
        out[i] = (float) (gint8) p[i];
      break;
    case AGC_DTYPE_U8:
      for (int64_t i = 0; i < n; i++)
        out[i] = (float) p[i];
      break;
    case AGC_DTYPE_BOOL:
      for (int64_t i = 0; i < n; i++)
        out[i] = p[i] != 0 ? 1.0f : 0.0f;
      break;
    }
}

char *
agc_shape_text (int n_dims, const int64_t *shape)
{
  GString *out = g_string_new ("[");
  for (int d = 0; d < n_dims; d++)
    g_string_append_printf (out, "%s%" G_GINT64_FORMAT, d > 0 ? ", " : "", shape[d]);
  g_string_append_c (out, ']');
  return g_string_free (out, FALSE);
}
