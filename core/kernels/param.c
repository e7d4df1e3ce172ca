/* param.c — weight tensors viewed in place or kept half-sized. */
#include "kernels/param.h"

#include "agriclip.h"

#include "kernels/ops.h"

#include <string.h>

gboolean
agc_param_view (AgcParam *param, const AgcWeights *weights, const char *name, int n_dims,
                const int64_t *shape, GPtrArray *owned, GError **error)
{
  const AgcTensorView *t = agc_weights_find (weights, name);
  gboolean ok = t != NULL && agc_dtype_is_float (t->dtype) && t->n_dims == n_dims;
  for (int d = 0; ok && d < n_dims; d++)
    ok = t->shape[d] == shape[d];
  if (!ok)
    {
      // agc_weights_take_f32 words the error; it only succeeds if the
      // checks above disagree with it, and then the copy is simply used
      float *copy = agc_weights_take_f32 (weights, name, n_dims, shape, error);
      if (copy == NULL)
        return FALSE;
      g_ptr_array_add (owned, copy);
      *param = (AgcParam){ AGC_DTYPE_F32, copy, (size_t) agc_tensor_n_elements (t) };
      return TRUE;
    }
  if (!agc_tensor_check_finite (t, name, error))
    return FALSE;
  size_t n = (size_t) agc_tensor_n_elements (t);
  gboolean in_place = (t->dtype == AGC_DTYPE_F32 && (uintptr_t) t->data % sizeof (float) == 0)
                      || ((t->dtype == AGC_DTYPE_F16 || t->dtype == AGC_DTYPE_BF16)
                          && (uintptr_t) t->data % 2 == 0);
  if (in_place && G_BYTE_ORDER == G_LITTLE_ENDIAN)
    {
      *param = (AgcParam){ t->dtype, t->data, n };
      return TRUE;
    }
  float *copy = g_try_new (float, MAX (n, 1));
  if (copy == NULL)
    {
      g_set_error (error, AGC_ERROR, AGC_ERROR_INPUT, "%s: cannot allocate %zu MB for tensor '%s'",
                   t->file, n * sizeof (float) >> 20, name);
      return FALSE;
    }
  agc_tensor_to_f32 (t, copy);
  g_ptr_array_add (owned, copy);
  *param = (AgcParam){ AGC_DTYPE_F32, copy, n };
  return TRUE;
}

void
agc_param_convert (float *out, const AgcParam *param, size_t first, size_t n)
{
  const uint16_t *half = (const uint16_t *) param->data + first;
  switch (param->dtype)
    {
    case AGC_DTYPE_F16:
      agc_f16_to_f32 (out, half, n);
      break;
    case AGC_DTYPE_BF16:
      agc_bf16_to_f32 (out, half, n);
      break;
    default:
      memcpy (out, (const float *) param->data + first, n * sizeof (float));
      break;
    }
}

const float *
agc_param_f32 (const AgcParam *param, float *scratch)
{
  if (param->dtype == AGC_DTYPE_F32)
    return param->data;
  agc_param_convert (scratch, param, 0, param->n);
  return scratch;
}

float *
agc_param_take_f32 (const AgcWeights *weights, const char *name, int n_dims, const int64_t *shape,
                    GPtrArray *owned, GError **error)
{
  float *t = agc_weights_take_f32 (weights, name, n_dims, shape, error);
  if (t != NULL)
    g_ptr_array_add (owned, t);
  return t;
}

const float *
agc_param_view_f32 (const AgcWeights *weights, const char *name, int n_dims, const int64_t *shape,
                    GPtrArray *owned, GError **error)
{
  AgcParam p;
  if (!agc_param_view (&p, weights, name, n_dims, shape, owned, error))
    return NULL;
  if (p.dtype == AGC_DTYPE_F32)
    return p.data;
  float *copy = g_new (float, MAX (p.n, 1));
  agc_param_convert (copy, &p, 0, p.n);
  g_ptr_array_add (owned, copy);
  return copy;
}
