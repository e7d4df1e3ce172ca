/* tower-core.c — the blocks and pooled head both CLIP towers share, and the
 * activations training keeps for them (tower-core.h). */
#include "nn/tower-core.h"

#include "kernels/ops.h"
#include "nn/backward.h"
#include "nn/block-train.h"

#include <string.h>

void
agc_head_forward (float *emb, AgcHeadActs *a, float *pooled, const float *x, const int *rows,
                  int batch, const float *ln_weight, const float *ln_bias,
                  const float *projection, const AgcTowerConfig *c, int embed_dim,
                  gboolean skip_ln)
{
  int d = c->width;
  // layer norm is per row: normalising only the pooled rows is exact;
  // training keeps the pooled rows apart, their norm and its statistics
  float *normed = a != NULL ? a->pooled_ln : pooled;
  agc_rows_gather (a != NULL ? a->pooled : pooled, x, rows, batch, d);
  if (a != NULL || !skip_ln)
    agc_bias_layernorm_forward (normed, a != NULL ? a->mean : NULL, a != NULL ? a->rstd : NULL,
                                a != NULL ? a->pooled : pooled, NULL, ln_weight, ln_bias, batch, d,
                                c->layer_norm_eps);
  agc_linear_forward (emb, normed, projection, NULL, batch, d, embed_dim);
}

void
agc_tower_acts_init (AgcTowerActs *a, const AgcTowerConfig *c, int embed_dim, int n_blocks,
                     int batch, int max_tokens)
{
  *a = (AgcTowerActs){ .config = *c, .embed_dim = embed_dim, .batch = batch,
                       .max_tokens = max_tokens, .n_blocks = n_blocks };
  size_t r = (size_t) batch * max_tokens, d = c->width, b = batch;
  a->block_floats = agc_block_acts_floats (c, batch, max_tokens);
  size_t sizes[] = { r * d, r * d, r * d, a->block_floats * n_blocks,
                     agc_block_scratch_floats (c, batch, max_tokens),
                     b * d, b * d, b, b, b * d, b * d };
  float **slots[] = { &a->x, &a->dx, &a->dx_below, &a->block_memory, &a->block_scratch,
                      &a->head.pooled, &a->head.pooled_ln, &a->head.mean, &a->head.rstd,
                      &a->dpooled, &a->dpooled_ln };
  a->memory = agc_carve (slots, sizes, G_N_ELEMENTS (sizes));
  a->blocks = g_new0 (AgcBlockActs, MAX (n_blocks, 1));
  for (int l = 0; l < n_blocks; l++)
    {
      a->blocks[l].scratch = a->block_scratch;
      a->blocks[l].attention_scratch = &a->attention_scratch;
    }
  a->pool_rows = g_new0 (int, batch);
}

void
agc_tower_acts_clear (AgcTowerActs *a)
{
  g_clear_pointer (&a->blocks, g_free);
  agc_arena_clear (&a->attention_scratch);
  g_clear_pointer (&a->pool_rows, g_free);
  g_clear_pointer (&a->memory, g_free);
  g_clear_pointer (&a->embed_memory, g_free);
  g_clear_pointer (&a->row_ids, g_free);
}

void
agc_tower_acts_free (AgcTowerActs *acts)
{
  if (acts != NULL)
    agc_tower_acts_clear (acts);
  g_free (acts);
}

void
agc_tower_acts_set_tokens (AgcTowerActs *a, int n_tokens)
{
  g_return_if_fail (n_tokens > 0 && n_tokens <= a->max_tokens);
  if (n_tokens == a->n_tokens) // the blocks' activations depend on T
    return;
  for (int l = 0; l < a->n_blocks; l++) // (their scratch stays)
    agc_block_acts_view (&a->blocks[l], a->block_memory + l * a->block_floats, &a->config,
                         a->batch, n_tokens);
  a->n_tokens = n_tokens;
}

void
agc_tower_stack_forward (float *emb, AgcTowerActs *a, const AgcBlock *blocks,
                         const float *ln_weight, const float *ln_bias, const float *projection,
                         gboolean causal)
{
  const AgcTowerConfig *c = &a->config;
  for (int l = 0; l < a->n_blocks; l++)
    {
      AgcLayer layer;
      agc_layer_view (&layer, &blocks[l], c);
      agc_block_forward (a->x, &a->blocks[l], &layer, c, causal);
    }
  agc_head_forward (emb, &a->head, NULL, a->x, a->pool_rows, a->batch, ln_weight, ln_bias,
                    projection, c, a->embed_dim, FALSE);
}

float *
agc_tower_stack_backward (AgcBlock *gblocks, float *gln_weight, float *gln_bias,
                          float *gprojection, const float *demb, AgcTowerActs *a,
                          const AgcBlock *blocks, const float *ln_weight,
                          const float *projection, gboolean want_dinput)
{
  const AgcTowerConfig *c = &a->config;
  int d = c->width;
  size_t rd = (size_t) a->batch * a->n_tokens * d, bd = (size_t) a->batch * d;
  memset (a->dpooled_ln, 0, bd * sizeof (float));
  memset (a->dpooled, 0, bd * sizeof (float));
  memset (a->dx, 0, rd * sizeof (float));
  // emb = pooled_ln @ projection^T
  agc_linear_backward (a->dpooled_ln, gprojection, NULL, demb, a->head.pooled_ln, projection,
                       a->batch, d, a->embed_dim);
  // pooled_ln = ln(pooled)
  agc_layernorm_backward (a->dpooled, gln_weight, gln_bias, a->dpooled_ln, a->head.pooled,
                          ln_weight, a->head.mean, a->head.rstd, a->batch, d);
  // pooled = x[pool rows]
  agc_rows_gather_backward (a->dx, a->dpooled, a->pool_rows, a->batch, d);
  // x = block_l(x)
  for (int l = a->n_blocks - 1; l >= 0; l--)
    {
      AgcLayer layer;
      agc_layer_view (&layer, &blocks[l], c);
      gboolean below = want_dinput || l > 0;
      if (below)
        memset (a->dx_below, 0, rd * sizeof (float));
      agc_block_backward (below ? a->dx_below : NULL, &gblocks[l], a->dx, &a->blocks[l], &layer,
                          c);
      float *t = a->dx;
      a->dx = a->dx_below;
      a->dx_below = t;
    }
  return want_dinput ? a->dx : NULL;
}

/* ---- a loaded block as training's float32 arrays (tower-core.h) ------------ */

void
agc_block_copy_f32 (AgcBlock *out, const AgcLayer *b, const AgcTowerConfig *config)
{
  // matrices from the stored tensors (any dtype); vectors are float32 copies already
  size_t d = config->width, m = config->mlp_width;
  for (int i = 0; i < 3; i++)
    agc_param_convert (out->qkv_weight + i * d * d, &b->qkv.parts[i], 0, d * d);
  agc_param_convert (out->out_weight, &b->out.parts[0], 0, d * d);
  agc_param_convert (out->fc1_weight, &b->fc1.parts[0], 0, m * d);
  agc_param_convert (out->fc2_weight, &b->fc2.parts[0], 0, d * m);
  memcpy (out->qkv_bias, b->qkv.bias, 3 * d * sizeof (float));
  memcpy (out->ln1_weight, b->ln1_weight, d * sizeof (float));
  memcpy (out->ln1_bias, b->ln1_bias, d * sizeof (float));
  memcpy (out->out_bias, b->out.bias, d * sizeof (float));
  memcpy (out->ln2_weight, b->ln2_weight, d * sizeof (float));
  memcpy (out->ln2_bias, b->ln2_bias, d * sizeof (float));
  memcpy (out->fc1_bias, b->fc1.bias, m * sizeof (float));
  memcpy (out->fc2_bias, b->fc2.bias, d * sizeof (float));
}

void
agc_tower_copy_top (AgcBlock *blocks, float *ln_weight, float *ln_bias, float *projection,
                    const AgcTransformer *transformer, int first_layer,
                    const float *from_ln_weight, const float *from_ln_bias,
                    const float *from_projection, int embed_dim)
{
  const AgcTowerConfig *c = &transformer->config;
  for (int l = first_layer; l < c->layers; l++)
    agc_block_copy_f32 (&blocks[l - first_layer], &transformer->layers[l], c);
  size_t d = c->width;
  memcpy (ln_weight, from_ln_weight, d * sizeof (float));
  memcpy (ln_bias, from_ln_bias, d * sizeof (float));
  memcpy (projection, from_projection, (size_t) embed_dim * d * sizeof (float));
}

/* ---- replacing a loaded tower's tensors (tower-core.h) ---------------------- */

// the slot of a block's tensor by its name inside the block, rest
static gboolean
slot_of_block (AgcTensorSlot *slot, AgcLayer *b, const AgcTowerConfig *config, const char *rest)
{
  int64_t d = config->width, m = config->mlp_width;
  static const char *const qkv[3] = { "q_proj", "k_proj", "v_proj" };
  for (int i = 0; i < 3; i++)
    {
      g_autofree char *w = g_strdup_printf ("self_attn.%s.weight", qkv[i]);
      g_autofree char *bias = g_strdup_printf ("self_attn.%s.bias", qkv[i]);
      if (strcmp (rest, w) == 0)
        return *slot = (AgcTensorSlot){ .linear = &b->qkv, .part = i, .n_dims = 2, .shape = { d, d } },
               TRUE;
      if (strcmp (rest, bias) == 0)
        return *slot = (AgcTensorSlot){ .overwrite = b->qkv.bias + i * d, .n_dims = 1, .shape = { d } },
               TRUE;
    }
  const struct
  {
    const char *name;
    AgcLinear *linear; // matrices
    float *vector;     // vectors
    int64_t rows, cols;
  } table[] = {
    { "self_attn.out_proj.weight", &b->out, NULL, d, d },
    { "self_attn.out_proj.bias", NULL, b->out.bias, d, 0 },
    { "layer_norm1.weight", NULL, b->ln1_weight, d, 0 },
    { "layer_norm1.bias", NULL, b->ln1_bias, d, 0 },
    { "layer_norm2.weight", NULL, b->ln2_weight, d, 0 },
    { "layer_norm2.bias", NULL, b->ln2_bias, d, 0 },
    { "mlp.fc1.weight", &b->fc1, NULL, m, d },
    { "mlp.fc1.bias", NULL, b->fc1.bias, m, 0 },
    { "mlp.fc2.weight", &b->fc2, NULL, d, m },
    { "mlp.fc2.bias", NULL, b->fc2.bias, d, 0 },
  };
  for (size_t i = 0; i < G_N_ELEMENTS (table); i++)
    if (strcmp (rest, table[i].name) == 0)
      {
        if (table[i].linear != NULL)
          *slot = (AgcTensorSlot){ .linear = table[i].linear, .n_dims = 2,
                          .shape = { table[i].rows, table[i].cols } };
        else
          *slot = (AgcTensorSlot){ .overwrite = table[i].vector, .n_dims = 1,
                          .shape = { table[i].rows } };
        return TRUE;
      }
  return FALSE;
}

gboolean
agc_tensor_slot_of_layers (AgcTensorSlot *slot, AgcLayer *layers, const AgcTowerConfig *config,
                           const char *prefix, const char *name)
{
  if (!g_str_has_prefix (name, prefix) || layers == NULL)
    return FALSE;
  const char *digits = name + strlen (prefix);
  char *end;
  guint64 layer = g_ascii_strtoull (digits, &end, 10);
  if (end == digits || *end != '.' || layer >= (guint64) config->layers)
    return FALSE;
  return slot_of_block (slot, &layers[layer], config, end + 1);
}


gboolean
agc_tensor_slot_of_table (AgcTensorSlot *slot, const AgcNamedTensor *table, size_t n_table,
                          const char *name)
{
  for (size_t i = 0; i < n_table; i++)
    if (strcmp (name, table[i].name) == 0)
      return *slot = (AgcTensorSlot){ .pointer = table[i].pointer, .n_dims = table[i].n_dims,
                                      .shape = { table[i].shape[0], table[i].shape[1] } },
             TRUE;
  return FALSE;
}

// AGC_ERROR_MODEL unless shape[n_dims] equals want[want_dims]; *n gets the
// element count
static gboolean
check_shape (int64_t *n, const char *name, int want_dims, const int64_t *want, int n_dims,
             const int64_t *shape, GError **error)
{
  gboolean same = n_dims == want_dims;
  *n = 1;
  for (int i = 0; same && i < n_dims; i++)
    {
      same = shape[i] == want[i];
      *n *= shape[i];
    }
  if (!same)
    {
      g_autoptr (GString) want_text = g_string_new (NULL), got_text = g_string_new (NULL);
      for (int i = 0; i < want_dims; i++)
        g_string_append_printf (want_text, "%s%" G_GINT64_FORMAT, i ? ", " : "", want[i]);
      for (int i = 0; i < n_dims; i++)
        g_string_append_printf (got_text, "%s%" G_GINT64_FORMAT, i ? ", " : "", shape[i]);
      g_set_error (error, AGC_ERROR, AGC_ERROR_MODEL,
                   "tensor '%s' has shape [%s], the model's has [%s]", name, got_text->str,
                   want_text->str);
      return FALSE;
    }
  return TRUE;
}

static void
slot_set (const AgcTensorSlot *slot, GHashTable **replaced, const char *name, const float *data,
          int64_t n)
{
  if (slot->overwrite != NULL)
    {
      memcpy (slot->overwrite, data, (size_t) n * sizeof (float));
      return;
    }
  // small vectors were copied at load, matrices may point into the mapped
  // file: either way the new values go to a copy of the tower's own, made
  // once per name
  if (*replaced == NULL)
    *replaced = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  float *copy = g_hash_table_lookup (*replaced, name);
  if (copy == NULL)
    {
      copy = g_new (float, n);
      g_hash_table_insert (*replaced, g_strdup (name), copy);
    }
  memcpy (copy, data, (size_t) n * sizeof (float));
  if (slot->pointer != NULL)
    *slot->pointer = copy;
  if (slot->linear != NULL) // read as float32 in place from now on, kept forms made anew
    agc_linear_set_part (slot->linear, slot->part, &(AgcParam){ AGC_DTYPE_F32, copy, (size_t) n });
}

gboolean
agc_tower_set_tensor (void *tower, AgcTensorSlotFinder find_slot, const char *what,
                      GHashTable **replaced, const char *name, const float *data, int n_dims,
                      const int64_t *shape, GError **error)
{
  g_return_val_if_fail (tower != NULL && name != NULL && shape != NULL, FALSE);
  AgcTensorSlot slot;
  int64_t n;
  if (!find_slot (&slot, tower, name))
    {
      g_set_error (error, AGC_ERROR, AGC_ERROR_MODEL, "tensor '%s' is not one of this model's %s",
                   name, what);
      return FALSE;
    }
  if (!check_shape (&n, name, slot.n_dims, slot.shape, n_dims, shape, error))
    return FALSE;
  if (data != NULL)
    slot_set (&slot, replaced, name, data, n);
  return TRUE;
}
