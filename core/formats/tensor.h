/* tensor.h — views of stored tensors and conversion to float32. */
#pragma once

#include <glib.h>
#include <stdint.h>

#define AGC_MAX_DIMS 8

typedef enum
{
  AGC_DTYPE_F32,
  AGC_DTYPE_F16,
  AGC_DTYPE_BF16,
  AGC_DTYPE_F64,
  AGC_DTYPE_I64,
  AGC_DTYPE_I32,
  AGC_DTYPE_I16,
  AGC_DTYPE_I8,
  AGC_DTYPE_U8,
  AGC_DTYPE_BOOL,
} AgcDType;

/* A tensor stored in a file: little-endian, contiguous, row-major.
 * data may be unaligned.  Owned by the file it comes from. */
typedef struct
{
  const char *name;
  AgcDType dtype;
  int n_dims;
  int64_t shape[AGC_MAX_DIMS];
  const guint8 *data;
  size_t n_bytes;
  const char *file; /* path, for error messages */
} AgcTensorView;

size_t agc_dtype_size (AgcDType dtype);
const char *agc_dtype_name (AgcDType dtype); /* "F32", "BF16", … as in safetensors */
/* "[2, 3]": a shape for messages (g_free). */
char *agc_shape_text (int n_dims, const int64_t *shape);
gboolean agc_dtype_is_float (AgcDType dtype);
int64_t agc_tensor_n_elements (const AgcTensorView *tensor);

/* Converts a tensor to float32: out[n_elements].  Floats convert exactly
 * (F64 rounds to nearest); integers and BOOL are accepted too. */
void agc_tensor_to_f32 (const AgcTensorView *tensor, float *out);
/* FALSE with AGC_ERROR_MODEL ("FILE: tensor 'NAME' holds a non-finite value
 * (NaN or infinity) at index I") when a floating-point tensor has a NaN or
 * an infinity: such weights give NaN scores, uniform probabilities and exit
 * status 0 otherwise.  Integer tensors pass.  One read of the data. */
gboolean agc_tensor_check_finite (const AgcTensorView *tensor, const char *name, GError **error);
