/* block-train.c — a block's activations and float32 training arrays
 * (block-train.h). */
#include "nn/block-train.h"

#include <string.h>

float *
agc_carver_allocate (AgcCarver *k)
{
  k->memory = g_new0 (float, MAX (k->n_floats, 1));
  k->n_floats = 0;
  return k->memory;
}

// points slots[i] at sizes[i] floats taken from k
static void
carve_slots (AgcCarver *k, float **const *slots, const size_t *sizes, size_t n)
{
  for (size_t i = 0; i < n; i++)
    {
      float *at = agc_carve_take (k, sizes[i]);
      if (k->memory != NULL)
        *slots[i] = at;
    }
}

float *
agc_carve (float **const *slots, const size_t *sizes, size_t n)
{
  AgcCarver k = { 0 };
  carve_slots (&k, slots, sizes, n);
  agc_carver_allocate (&k);
  carve_slots (&k, slots, sizes, n);
  return k.memory;
}

// a block's twelve arrays and their sizes, in agc_block_train_arrays order
static void
block_slots (float ***slots, size_t *sizes, AgcBlock *b, const AgcTowerConfig *c)
{
  size_t d = c->width, m = c->mlp_width;
  float **s[] = { &b->ln1_weight, &b->ln1_bias, &b->qkv_weight, &b->qkv_bias, &b->out_weight,
                  &b->out_bias, &b->ln2_weight, &b->ln2_bias, &b->fc1_weight, &b->fc1_bias,
                  &b->fc2_weight, &b->fc2_bias };
  size_t n[] = { d, d, 3 * d * d, 3 * d, d * d, d, d, d, m * d, m, d * m, d };
  memcpy (slots, s, sizeof s);
  memcpy (sizes, n, sizeof n);
}

void
agc_block_carve (AgcBlock *b, AgcCarver *k, const AgcTowerConfig *c)
{
  float **slots[12];
  size_t sizes[12];
  block_slots (slots, sizes, b, c);
  carve_slots (k, slots, sizes, 12);
}

// the sizes of AgcBlockActs' arrays, in its field order
static int
block_acts_sizes (size_t *sizes, const AgcTowerConfig *c, int batch, int n_tokens)
{
  size_t r = (size_t) batch * n_tokens, d = c->width, m = c->mlp_width;
  size_t att = (size_t) batch * c->heads * n_tokens * n_tokens;
  size_t s[] = { r * d, r * d, r, r, r * 3 * d, att, r * d, r * d, r * d, r, r, r * m, r * m };
  memcpy (sizes, s, sizeof s);
  return (int) G_N_ELEMENTS (s);
}

size_t
agc_block_acts_floats (const AgcTowerConfig *c, int batch, int n_tokens)
{
  size_t sizes[16], total = 0;
  int n = block_acts_sizes (sizes, c, batch, n_tokens);
  for (int i = 0; i < n; i++)
    total += sizes[i];
  return total;
}

void
agc_block_acts_view (AgcBlockActs *a, float *memory, const AgcTowerConfig *c, int batch,
                     int n_tokens)
{
  size_t sizes[16];
  int n = block_acts_sizes (sizes, c, batch, n_tokens);
  float **slots[] = { &a->x, &a->ln1, &a->ln1_mean, &a->ln1_rstd, &a->qkv, &a->att, &a->atty,
                      &a->x_mid, &a->ln2, &a->ln2_mean, &a->ln2_rstd, &a->fc1, &a->act };
  g_assert (n == (int) G_N_ELEMENTS (slots));
  AgcCarver k = { .memory = memory };
  carve_slots (&k, slots, sizes, n);
  a->batch = batch;
  a->n_tokens = n_tokens;
  a->memory = NULL; // not owned
}

AgcBlockActs *
agc_block_acts_new (const AgcTowerConfig *c, int batch, int n_tokens)
{
  AgcBlockActs *a = g_new0 (AgcBlockActs, 1);
  float *memory = g_new0 (float, agc_block_acts_floats (c, batch, n_tokens));
  agc_block_acts_view (a, memory, c, batch, n_tokens);
  a->memory = memory;
  return a;
}

size_t
agc_block_scratch_floats (const AgcTowerConfig *c, int batch, int n_tokens)
{
  size_t r = (size_t) batch * n_tokens;
  return 7 * r * c->width + 2 * r * c->mlp_width;
}

void
agc_block_acts_free (AgcBlockActs *acts)
{
  if (acts == NULL)
    return;
  g_free (acts->memory);
  g_free (acts);
}

int
agc_block_train_arrays (float **arrays, size_t *sizes, gboolean *decays, AgcBlock *b,
                        const AgcTowerConfig *c)
{
  float **slots[12];
  block_slots (slots, sizes, b, c);
  // weight decay on the four matrices
  gboolean k[] = { FALSE, FALSE, TRUE, FALSE, TRUE, FALSE, FALSE, FALSE, TRUE, FALSE, TRUE, FALSE };
  for (size_t i = 0; i < G_N_ELEMENTS (slots); i++)
    {
      arrays[i] = *slots[i];
      if (decays != NULL)
        decays[i] = k[i];
    }
  return (int) G_N_ELEMENTS (slots);
}

void
agc_block_train_init (AgcBlock *b, const AgcTowerConfig *c)
{
  *b = (AgcBlock){ 0 };
  AgcCarver k = { 0 };
  agc_block_carve (b, &k, c);
  agc_carver_allocate (&k); // owned through ln1_weight, the first array
  agc_block_carve (b, &k, c);
}

void
agc_block_train_clear (AgcBlock *b)
{
  g_clear_pointer (&b->ln1_weight, g_free);
}

AgcBlock *
agc_block_train_new (const AgcTowerConfig *c)
{
  AgcBlock *b = g_new0 (AgcBlock, 1);
  agc_block_train_init (b, c);
  return b;
}

void
agc_block_train_zero (AgcBlock *b, const AgcTowerConfig *c)
{
  float *arrays[12];
  size_t sizes[12];
  int n = agc_block_train_arrays (arrays, sizes, NULL, b, c);
  for (int i = 0; i < n; i++)
    memset (arrays[i], 0, sizes[i] * sizeof (float));
}

void
agc_block_train_free (AgcBlock *block)
{
  if (block == NULL)
    return;
  agc_block_train_clear (block);
  g_free (block);
}
