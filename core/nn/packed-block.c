/* packed-block.c — a transformer block's matrices packed into panels. */
#include "nn/packed-block.h"

size_t
agc_packed_block_floats (const AgcTowerConfig *c)
{
  int d = c->width, m = c->mlp_width;
  return agc_packed_floats (3 * d, d) + agc_packed_floats (d, d) + agc_packed_floats (m, d)
         + agc_packed_floats (d, m);
}

gboolean
agc_packed_block_init (AgcPackedBlock *b, float *scratch, const AgcStoredBlock *s,
                       const AgcTowerConfig *c, GError **error)
{
  int d = c->width, m = c->mlp_width;
  const AgcParam *qkv[3] = { &s->q, &s->k, &s->v };
  const AgcParam *out[1] = { &s->out }, *fc1[1] = { &s->fc1 }, *fc2[1] = { &s->fc2 };
  int qkv_rows[3] = { d, d, d }, d_rows[1] = { d }, m_rows[1] = { m };
  struct
  {
    AgcPackedMatrix *packed;
    const AgcParam *const *parts;
    const int *rows;
    int n_parts, n_in;
  } matrices[] = {
    { &b->qkv, qkv, qkv_rows, 3, d },
    { &b->out, out, d_rows, 1, d },
    { &b->fc1, fc1, m_rows, 1, d },
    { &b->fc2, fc2, d_rows, 1, m },
  };
  *b = (AgcPackedBlock){ 0 };
  for (size_t i = 0; i < G_N_ELEMENTS (matrices); i++)
    {
      if (!agc_packed_matrix_init (matrices[i].packed, scratch, matrices[i].parts,
                                   matrices[i].rows, matrices[i].n_parts, matrices[i].n_in,
                                   error))
        {
          agc_packed_block_clear (b);
          return FALSE;
        }
      if (scratch != NULL)
        scratch += agc_packed_floats (matrices[i].packed->n_out, matrices[i].n_in);
    }
  b->ready = TRUE;
  return TRUE;
}

void
agc_packed_block_clear (AgcPackedBlock *b)
{
  agc_packed_matrix_clear (&b->qkv);
  agc_packed_matrix_clear (&b->out);
  agc_packed_matrix_clear (&b->fc1);
  agc_packed_matrix_clear (&b->fc2);
  b->ready = FALSE;
}
