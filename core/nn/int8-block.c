/* int8-block.c — a transformer block's matrices quantised to int8. */
#include "nn/int8-block.h"

// m = the rows of parts[0 .. n_parts) stacked, quantised: float32 parts are
// read in place when alone, others go through one float32 buffer
static AgcInt8Matrix *
quantise (const AgcParam *const *parts, int n_parts, int rows_each, int n_in, float *buffer,
          GError **error)
{
  if (n_parts == 1 && parts[0]->dtype == AGC_DTYPE_F32)
    return agc_int8_matrix_new (parts[0]->data, rows_each, n_in, error);
  size_t part_len = (size_t) rows_each * n_in;
  for (int i = 0; i < n_parts; i++)
    agc_param_convert (buffer + i * part_len, parts[i], 0, part_len);
  return agc_int8_matrix_new (buffer, n_parts * rows_each, n_in, error);
}

gboolean
agc_int8_block_init (AgcInt8Block *b, const AgcStoredBlock *s, const AgcTowerConfig *c,
                     GError **error)
{
  g_return_val_if_fail (b != NULL && s != NULL && c != NULL, FALSE);
  int d = c->width, m = c->mlp_width;
  const AgcParam *qkv[3] = { &s->q, &s->k, &s->v };
  const AgcParam *out[1] = { &s->out }, *fc1[1] = { &s->fc1 }, *fc2[1] = { &s->fc2 };
  // big enough for the fused qkv [3D, D] and for fc1 / fc2 [M, D]
  float *buffer = g_try_new (float, MAX ((size_t) 3 * d * d, (size_t) m * d));
  *b = (AgcInt8Block){ 0 };
  if (buffer == NULL)
    {
      g_set_error (error, AGC_ERROR, AGC_ERROR_INPUT,
                   "int8 weights: cannot allocate a %d x %d float32 matrix to quantise",
                   MAX (3 * d, m), d);
      return FALSE;
    }
  gboolean ok = (b->qkv = quantise (qkv, 3, d, d, buffer, error))
                && (b->out = quantise (out, 1, d, d, buffer, error))
                && (b->fc1 = quantise (fc1, 1, m, d, buffer, error))
                && (b->fc2 = quantise (fc2, 1, d, m, buffer, error));
  g_free (buffer);
  if (!ok)
    agc_int8_block_clear (b);
  return ok;
}

void
agc_int8_block_clear (AgcInt8Block *b)
{
  g_clear_pointer (&b->qkv, agc_int8_matrix_free);
  g_clear_pointer (&b->out, agc_int8_matrix_free);
  g_clear_pointer (&b->fc1, agc_int8_matrix_free);
  g_clear_pointer (&b->fc2, agc_int8_matrix_free);
}

gboolean
agc_int8_block_ready (const AgcInt8Block *b)
{
  return b->qkv != NULL;
}
