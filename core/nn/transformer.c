/* transformer.c — CLIP's pre-norm residual attention blocks.
 *
 * Per layer, four thick products over all tokens of all sequences ([rows, D]
 * with rows = every token of the batch), each one agc_linear_apply
 * (linear.h), whatever the storage of its matrix: qkv (into one fused
 * activation, bias added), out_proj, fc1 (bias and activation), fc2; the
 * residual adds are the products' own accumulation.  Between them, one pass
 * each over the rows, split over the pool (threads.h):  x += previous bias,
 * h = ln(x)  |  attention per (sequence, head), reading q, k and v in place
 * from the fused activations (attention.h).  How the products run (own
 * kernels or OpenBLAS, float32 or int8, products only) is the
 * transformer's options.
 *
 * Training runs the same block forward with activations kept
 * (agc_block_forward): the same calls on float32 views of its arrays, the
 * kernels also writing what the backward beside it needs (layer-norm
 * statistics, attention probabilities, values before the activation); it
 * may run inside the shards' parallel region, where the pool's calls run
 * on the calling thread. */
#include "nn/transformer.h"

#include "nn/backward.h"
#include "nn/block-train.h"
#include "kernels/attention.h"
#include "kernels/ops.h"
#include "kernels/threads.h"

#include <string.h>

/* ---- loading ------------------------------------------------------------ */

static char *
block_name (const char *prefix, int layer, const char *name)
{
  return g_strdup_printf ("%s%d.%s", prefix, layer, name);
}

static float *
take_vector (const AgcWeights *weights, const char *prefix, int layer, const char *name,
             int64_t n, GPtrArray *owned, GError **error)
{
  g_autofree char *full = block_name (prefix, layer, name);
  return agc_param_take_f32 (weights, full, 1, &n, owned, error);
}

static gboolean
view_matrix (AgcParam *p, const AgcWeights *weights, const char *prefix, int layer,
             const char *name, int64_t rows, int64_t cols, GPtrArray *owned, GError **error)
{
  g_autofree char *full = block_name (prefix, layer, name);
  int64_t shape[2] = { rows, cols };
  return agc_param_view (p, weights, full, 2, shape, owned, error);
}

// q, k, v stored apart in HF checkpoints: three parts of one linear, their
// biases fused here (small)
static gboolean
load_qkv (AgcLayer *layer, const AgcWeights *weights, const char *prefix, int layer_index,
          int64_t d, GPtrArray *owned, GError **error)
{
  static const char *const names[3] = { "q_proj", "k_proj", "v_proj" };
  AgcParam parts[3];
  int rows[3] = { d, d, d };
  float *qkv_bias = g_new (float, 3 * d);
  g_ptr_array_add (owned, qkv_bias);
  for (int i = 0; i < 3; i++)
    {
      g_autofree char *w_name = g_strdup_printf ("self_attn.%s.weight", names[i]);
      g_autofree char *b_name = g_strdup_printf ("self_attn.%s.bias", names[i]);
      float *bias;
      if (!view_matrix (&parts[i], weights, prefix, layer_index, w_name, d, d, owned, error)
          || !(bias = take_vector (weights, prefix, layer_index, b_name, d, owned, error)))
        return FALSE;
      memcpy (qkv_bias + i * d, bias, d * sizeof (float));
    }
  agc_linear_init (&layer->qkv, parts, rows, 3, d, qkv_bias, weights);
  return TRUE;
}

// lin = the matrix name [rows, cols] with bias [rows] beside it
static gboolean
load_linear (AgcLinear *lin, const AgcWeights *weights, const char *prefix, int layer_index,
             const char *name, int64_t rows, int64_t cols, GPtrArray *owned, GError **error)
{
  g_autofree char *w_name = g_strconcat (name, ".weight", NULL);
  g_autofree char *b_name = g_strconcat (name, ".bias", NULL);
  AgcParam w;
  float *bias;
  if (!view_matrix (&w, weights, prefix, layer_index, w_name, rows, cols, owned, error)
      || !(bias = take_vector (weights, prefix, layer_index, b_name, rows, owned, error)))
    return FALSE;
  int n_out = (int) rows;
  agc_linear_init (lin, &w, &n_out, 1, (int) cols, bias, weights);
  return TRUE;
}

static gboolean
load_layer (AgcLayer *layer, const AgcWeights *weights, const char *prefix, int l,
            const AgcTowerConfig *c, GPtrArray *owned, GError **error)
{
  int64_t d = c->width, m = c->mlp_width;
  const AgcWeights *w = weights;
  return (layer->ln1_weight = take_vector (w, prefix, l, "layer_norm1.weight", d, owned, error))
         && (layer->ln1_bias = take_vector (w, prefix, l, "layer_norm1.bias", d, owned, error))
         && load_qkv (layer, w, prefix, l, d, owned, error)
         && load_linear (&layer->out, w, prefix, l, "self_attn.out_proj", d, d, owned, error)
         && (layer->ln2_weight = take_vector (w, prefix, l, "layer_norm2.weight", d, owned, error))
         && (layer->ln2_bias = take_vector (w, prefix, l, "layer_norm2.bias", d, owned, error))
         && load_linear (&layer->fc1, w, prefix, l, "mlp.fc1", m, d, owned, error)
         && load_linear (&layer->fc2, w, prefix, l, "mlp.fc2", d, m, owned, error);
}

gboolean
agc_transformer_load (AgcTransformer *transformer, const AgcWeights *weights, const char *prefix,
                      const AgcTowerConfig *config, GError **error)
{
  g_return_val_if_fail (transformer != NULL && weights != NULL && prefix != NULL, FALSE);
  g_return_val_if_fail (config != NULL, FALSE);

  memset (transformer, 0, sizeof *transformer);
  if (config->layers < 0 || config->width <= 0 || config->mlp_width <= 0 || config->heads <= 0
      || config->width % config->heads != 0)
    {
      g_set_error (error, AGC_ERROR, AGC_ERROR_MODEL,
                   "%s*: cannot build %d layers of width %d, %d heads, MLP width %d "
                   "(width must be a positive multiple of heads)",
                   prefix, config->layers, config->width, config->heads, config->mlp_width);
      return FALSE;
    }
  transformer->config = *config;
  transformer->layers = g_new0 (AgcLayer, MAX (config->layers, 1));
  transformer->owned = g_ptr_array_new_with_free_func (g_free);
  transformer->scratch = g_new0 (AgcArena, 1);
  for (int l = 0; l < config->layers; l++)
    if (!load_layer (&transformer->layers[l], weights, prefix, l, config, transformer->owned,
                     error))
      {
        agc_transformer_clear (transformer);
        return FALSE;
      }
  return TRUE;
}

static void
layer_clear (AgcLayer *layer)
{
  agc_linear_clear (&layer->qkv);
  agc_linear_clear (&layer->out);
  agc_linear_clear (&layer->fc1);
  agc_linear_clear (&layer->fc2);
}

void
agc_transformer_view (AgcTransformer *t, const AgcBlock *blocks, const AgcTowerConfig *config)
{
  g_return_if_fail (t != NULL && config != NULL && (blocks != NULL || config->layers == 0));
  *t = (AgcTransformer){ .config = *config, .layers = g_new0 (AgcLayer, MAX (config->layers, 1)) };
  for (int l = 0; l < config->layers; l++)
    agc_layer_view (&t->layers[l], &blocks[l], config);
}

void
agc_transformer_clear (AgcTransformer *transformer)
{
  if (transformer == NULL || transformer->layers == NULL)
    return;
  for (int l = 0; l < transformer->config.layers; l++)
    layer_clear (&transformer->layers[l]);
  g_clear_pointer (&transformer->layers, g_free);
  if (transformer->owned == NULL) // not loaded: its scratch, if any, is lent
    return;
  g_clear_pointer (&transformer->owned, g_ptr_array_unref);
  agc_arena_clear (transformer->scratch);
  g_clear_pointer (&transformer->scratch, g_free);
}

gboolean
agc_transformer_set_options (AgcTransformer *transformer, const AgcEngineOptions *options,
                             GError **error)
{
  g_return_val_if_fail (transformer != NULL && options != NULL, FALSE);
  AgcTransformer *t = transformer;
  if (options->int8 && !agc_int8_available ())
    {
      g_set_error (error, AGC_ERROR, AGC_ERROR_UNSUPPORTED,
                   "int8 mode needs a CPU with AVX2 (or AVX-VNNI / AVX-512 VNNI); this one "
                   "has none of them");
      return FALSE;
    }
  gboolean views = t->layers == NULL || (t->config.layers > 0 && t->layers[0].qkv.is_view);
  if (options->int8 && views)
    {
      g_set_error (error, AGC_ERROR, AGC_ERROR_UNSUPPORTED,
                   "int8 mode needs a loaded transformer (these blocks are float32 views)");
      return FALSE;
    }
  // off: the quantised matrices go; on: layers are quantised when they first run
  for (int l = 0; !options->int8 && t->layers != NULL && l < t->config.layers; l++)
    {
      agc_linear_drop_int8 (&t->layers[l].qkv);
      agc_linear_drop_int8 (&t->layers[l].out);
      agc_linear_drop_int8 (&t->layers[l].fc1);
      agc_linear_drop_int8 (&t->layers[l].fc2);
    }
  t->options = *options;
  return TRUE;
}

/* ---- forward ------------------------------------------------------------ */

void
agc_layer_view (AgcLayer *view, const AgcBlock *b, const AgcTowerConfig *config)
{
  int d = config->width, m = config->mlp_width;
  int rows_d[1] = { d }, rows_m[1] = { m }, rows_3d[1] = { 3 * d }, thirds[3] = { d, d, d };
  const float *fused[1] = { b->qkv_weight }, *apart[3] = { b->q_weight, b->k_weight, b->v_weight };
  const float *out[1] = { b->out_weight }, *fc1[1] = { b->fc1_weight }, *fc2[1] = { b->fc2_weight };
  *view = (AgcLayer){ .ln1_weight = b->ln1_weight, .ln1_bias = b->ln1_bias,
                      .ln2_weight = b->ln2_weight, .ln2_bias = b->ln2_bias };
  if (b->qkv_weight != NULL)
    agc_linear_view (&view->qkv, fused, rows_3d, 1, d, b->qkv_bias);
  else
    agc_linear_view (&view->qkv, apart, thirds, 3, d, b->qkv_bias);
  agc_linear_view (&view->out, out, rows_d, 1, d, b->out_bias);
  agc_linear_view (&view->fc1, fc1, rows_m, 1, d, b->fc1_bias);
  agc_linear_view (&view->fc2, fc2, rows_d, 1, m, b->fc2_bias);
}

// floats of scratch the largest of the products needs (linear.h)
static size_t
linear_scratch_floats (const AgcTransformer *t)
{
  size_t most = 0;
  for (int l = 0; t->layers != NULL && l < t->config.layers; l++)
    {
      const AgcLayer *layer = &t->layers[l];
      const AgcLinear *linears[] = { &layer->qkv, &layer->out, &layer->fc1, &layer->fc2 };
      for (size_t i = 0; i < G_N_ELEMENTS (linears); i++)
        most = MAX (most, agc_linear_scratch_floats (linears[i], &t->options));
    }
  return most;
}

typedef struct
{
  const AgcTowerConfig *c;
  float *x; // [R, D]
  // x += add_bias, ln_out = ln(x) when ln_out, keeping mean and rstd when
  // not NULL (training)
  const float *add_bias, *ln_weight, *ln_bias;
  float *ln_out, *mean, *rstd;
} Residual;

static void
residual_rows (void *ctx, int begin, int end, int thread)
{
  (void) thread;
  const Residual *p = ctx;
  int d = p->c->width;
  agc_bias_layernorm_forward (p->ln_out != NULL ? p->ln_out + (size_t) begin * d : NULL,
                              p->mean != NULL ? p->mean + begin : NULL,
                              p->rstd != NULL ? p->rstd + begin : NULL, p->x + (size_t) begin * d,
                              p->add_bias, p->ln_weight, p->ln_bias, end - begin, d,
                              p->c->layer_norm_eps);
}

// the residual stream's pass between products; nothing when timing the
// products alone
static void
residual_pass (Residual *p, const AgcEngineOptions *options, int n_rows, const float *add_bias,
               const float *ln_weight, const float *ln_bias, float *ln_out, float *mean,
               float *rstd)
{
  if (options->products_only)
    return;
  p->add_bias = add_bias;
  p->ln_weight = ln_weight;
  p->ln_bias = ln_bias;
  p->ln_out = ln_out;
  p->mean = mean;
  p->rstd = rstd;
  agc_parallel_for (n_rows, agc_threads_row_grain (n_rows, p->c->width), residual_rows, p);
}

// what a block's forward works in: inference's shared scratch, or
// (training) each block's kept activations
typedef struct
{
  const AgcTowerConfig *c;
  const AgcEngineOptions *o;
  int n_rows;
  Residual p;
  AgcAttention attention;
  float *h, *qkv, *mlp;        // [R, D], [R, 3D], [R, M]
  float *linear_scratch;
  const float *pending_bias;   // fc2 bias of the previous layer, not yet added to x
} Run;

/* One block on x[R, D] in place, transformer.h's two lines, over the pool.
 * acts NULL: inference, nothing kept, the output projections' biases left
 * for the next residual pass (run->pending_bias).  acts: the same calls
 * writing every intermediate agc_block_backward needs into acts (layer-norm
 * statistics, attention probabilities, values before the activation), the
 * biases added at once so that x holds the whole residual stream. */
static gboolean
block_forward (Run *run, float *x, AgcBlockActs *a, AgcLayer *w, GError **error)
{
  static const AgcLinearEpilogue with_bias = { .add_bias = TRUE };
  static const AgcLinearEpilogue residual = { .residual = TRUE };
  static const AgcLinearEpilogue residual_bias = { .add_bias = TRUE, .residual = TRUE };
  const AgcTowerConfig *c = run->c;
  const AgcEngineOptions *o = run->o;
  const AgcLinearEpilogue *into_x = a != NULL ? &residual_bias : &residual;
  const AgcLinearEpilogue with_act = { .add_bias = TRUE, .apply_act = TRUE, .act = c->act,
                                       .pre_act = a != NULL ? a->fc1 : NULL };
  int r = run->n_rows;
  size_t rd = (size_t) r * c->width;
  float *ln1 = run->h, *ln2 = run->h, *mlp = run->mlp;
  if (a != NULL)
    {
      ln1 = a->ln1;
      ln2 = a->ln2;
      mlp = a->act;
      run->qkv = a->qkv;
      run->attention.qkv = a->qkv;
      run->attention.out = a->atty;
      run->attention.probs = a->att;
      memcpy (a->x, x, rd * sizeof (float));
    }
  // x = x + out_proj(attention(ln_1(x)))
  residual_pass (&run->p, o, r, run->pending_bias, w->ln1_weight, w->ln1_bias, ln1,
                 a != NULL ? a->ln1_mean : NULL, a != NULL ? a->ln1_rstd : NULL);
  if (!agc_linear_apply (&w->qkv, o, run->qkv, ln1, r, &with_bias, run->linear_scratch, error))
    return FALSE;
  agc_attention_forward (&run->attention);
  if (!agc_linear_apply (&w->out, o, x, run->attention.out, r, into_x, run->linear_scratch,
                         error))
    return FALSE;
  if (a != NULL)
    memcpy (a->x_mid, x, rd * sizeof (float));
  // x = x + fc2(act(fc1(ln_2(x))))
  residual_pass (&run->p, o, r, a != NULL ? NULL : w->out.bias, w->ln2_weight, w->ln2_bias, ln2,
                 a != NULL ? a->ln2_mean : NULL, a != NULL ? a->ln2_rstd : NULL);
  if (!agc_linear_apply (&w->fc1, o, mlp, ln2, r, &with_act, run->linear_scratch, error)
      || !agc_linear_apply (&w->fc2, o, x, mlp, r, into_x, run->linear_scratch, error))
    return FALSE;
  run->pending_bias = a != NULL ? NULL : w->fc2.bias;
  return TRUE;
}

void
agc_block_forward (float *x, AgcBlockActs *acts, const AgcLayer *w, const AgcTowerConfig *config,
                   gboolean causal)
{
  g_return_if_fail (x != NULL && acts != NULL && w != NULL && config != NULL);
  g_return_if_fail (w->qkv.is_view); // views keep nothing: safe inside the shards' region
  static const AgcEngineOptions training = { 0 };
  // the attention's scratch lent by the tower (one per shard), or ours
  AgcArena local = { 0 };
  AgcArena *arena = acts->attention_scratch != NULL ? acts->attention_scratch : &local;
  Run run = { .c = config, .o = &training, .n_rows = acts->batch * acts->n_tokens,
              .p = { .c = config, .x = x } };
  if (!agc_attention_init_batch (&run.attention, arena, acts->batch, acts->n_tokens,
                                 config->width, config->heads, causal, NULL))
    g_return_if_reached ();
  // a view's products allocate nothing: they cannot fail
  block_forward (&run, x, acts, (AgcLayer *) w, NULL);
  agc_arena_clear (&local);
}

// a float32 view's matrix (agc_layer_view, qkv fused), as the backward reads it
static const float *
view_f32 (const AgcLinear *lin)
{
  return lin->parts[0].data;
}

void
agc_block_backward (float *dx, AgcBlock *g, const float *dout, const AgcBlockActs *a,
                    const AgcLayer *w, const AgcTowerConfig *c)
{
  int r = a->batch * a->n_tokens, d = c->width, m = c->mlp_width;
  size_t rd = (size_t) r * d;
  size_t rm = (size_t) r * m;
  // one scratch for the gradients of the activations, all zero: backwards
  // add (dx_mid, the first, is copied over)
  size_t n_scratch = agc_block_scratch_floats (c, a->batch, a->n_tokens);
  float *scratch = a->scratch;
  if (scratch != NULL)
    memset (scratch + rd, 0, (n_scratch - rd) * sizeof (float));
  else
    scratch = g_new0 (float, n_scratch);
  float *dx_mid = scratch, *dln2 = dx_mid + rd, *datty = dln2 + rd, *dln1 = datty + rd;
  float *dqkv = dln1 + rd, *dact = dqkv + 3 * rd, *dfc1 = dact + rm;
  // out = x_mid + fc2(act(fc1(ln_2(x_mid))))
  memcpy (dx_mid, dout, rd * sizeof (float));
  agc_linear_backward (dact, g->fc2_weight, g->fc2_bias, dout, a->act, view_f32 (&w->fc2), r, m, d);
  agc_act_backward (dfc1, dact, a->fc1, (size_t) r * m, c->act);
  agc_linear_backward (dln2, g->fc1_weight, g->fc1_bias, dfc1, a->ln2, view_f32 (&w->fc1), r, d, m);
  agc_layernorm_backward (dx_mid, g->ln2_weight, g->ln2_bias, dln2, a->x_mid, w->ln2_weight,
                          a->ln2_mean, a->ln2_rstd, r, d);
  // x_mid = x + out_proj(attention(ln_1(x)))
  agc_linear_backward (datty, g->out_weight, g->out_bias, dx_mid, a->atty, view_f32 (&w->out), r, d, d);
  agc_attention_backward (dqkv, datty, a->qkv, a->att, a->batch, a->n_tokens, d, c->heads);
  agc_linear_backward (dln1, g->qkv_weight, NULL, dqkv, a->ln1, view_f32 (&w->qkv), r, d, 3 * d);
  // qkv = ln1 @ qkv_weight^T + qkv_bias.  The key bias adds q . bias_k to a
  // whole row of scores, which softmax ignores: its gradient is exactly 0,
  // and adding the rounding noise instead would let AdamW (which scales
  // every gradient to about lr) move it
  // (row by row, the memory order; each column summed in double)
  double *sums = g_new0 (double, 3 * (size_t) d);
  for (int i = 0; i < r; i++)
    {
      const float *row = dqkv + (size_t) i * 3 * d;
      for (int j = 0; j < 3 * d; j++)
        sums[j] += row[j];
    }
  for (int j = 0; j < 3 * d; j++)
    if (j < d || j >= 2 * d)
      g->qkv_bias[j] += (float) sums[j];
  g_free (sums);
  if (dx != NULL)
    {
      for (size_t i = 0; i < rd; i++)
        dx[i] += dx_mid[i];
      agc_layernorm_backward (dx, g->ln1_weight, g->ln1_bias, dln1, a->x, w->ln1_weight,
                              a->ln1_mean, a->ln1_rstd, r, d);
    }
  else
    {
      // the weights of ln_1 still need their gradient; dx goes to scratch
      float *sink = dln2;
      memset (sink, 0, rd * sizeof (float));
      agc_layernorm_backward (sink, g->ln1_weight, g->ln1_bias, dln1, a->x, w->ln1_weight,
                              a->ln1_mean, a->ln1_rstd, r, d);
    }
  if (scratch != a->scratch)
    g_free (scratch);
}

gboolean
agc_transformer_forward_packed (const AgcTransformer *t, float *x, int n_seqs, const int *lengths,
                                gboolean causal, GError **error)
{
  g_return_val_if_fail (t != NULL && x != NULL && lengths != NULL && n_seqs > 0, FALSE);
  g_return_val_if_fail (t->layers != NULL || t->config.layers == 0, FALSE);

  const AgcTowerConfig *c = &t->config;
  const AgcEngineOptions *o = &t->options;
  int d = c->width, m = c->mlp_width, n_threads = agc_threads_count ();
  size_t rows = 0;
  int max_len = 0;
  for (int s = 0; s < n_seqs; s++)
    {
      g_return_val_if_fail (lengths[s] > 0, FALSE);
      rows += lengths[s];
      max_len = MAX (max_len, lengths[s]);
    }
  size_t linear_floats = linear_scratch_floats (t);
  size_t attention_floats = n_threads * agc_attention_scratch_floats (max_len, d, c->heads);
  size_t need = agc_arena_size (rows * d)                                  // h
                + agc_arena_size (rows * 3 * d)                            // qkv
                + agc_arena_size (rows * m)                                // mlp
                + attention_floats
                + linear_floats + 2 * agc_arena_size ((size_t) n_seqs);    // offsets
  AgcArena local = { 0 };
  AgcArena *arena = t->scratch != NULL ? t->scratch : &local;
  float *cursor = agc_arena_reserve (arena, need, "the transformer's activations", error);
  if (cursor == NULL)
    return FALSE;

  Run run = { .c = c, .o = o, .n_rows = (int) rows, .p = { .c = c, .x = x } };
  run.h = agc_arena_take (&cursor, rows * d);         // [R, D]
  run.qkv = agc_arena_take (&cursor, rows * 3 * d);   // [R, 3D]
  run.mlp = agc_arena_take (&cursor, rows * m);       // [R, M]
  run.attention = (AgcAttention){
    .qkv = run.qkv, .out = run.h, .lengths = lengths, .n_seqs = n_seqs, .width = d,
    .heads = c->heads, .max_len = max_len, .causal = causal,
    .products_only = o->products_only, .use_openblas = o->use_openblas,
  };
  run.attention.scratch = agc_arena_take (&cursor, attention_floats);
  run.linear_scratch = linear_floats > 0 ? agc_arena_take (&cursor, linear_floats) : NULL;
  int *offsets = (int *) agc_arena_take (&cursor, 2 * (size_t) n_seqs);
  offsets[0] = 0;
  for (int s = 1; s < n_seqs; s++)
    offsets[s] = offsets[s - 1] + lengths[s - 1];
  run.attention.offsets = offsets;

  gboolean ok = TRUE;
  for (int l = 0; ok && l < c->layers; l++)
    ok = block_forward (&run, x, NULL, &t->layers[l], error);
  if (ok && run.pending_bias != NULL)
    residual_pass (&run.p, o, run.n_rows, run.pending_bias, NULL, NULL, NULL, NULL, NULL);
  agc_arena_clear (&local);
  return ok;
}

gboolean
agc_transformer_forward (const AgcTransformer *t, float *x, int batch, int n_tokens,
                         gboolean causal, GError **error)
{
  g_return_val_if_fail (t != NULL && x != NULL, FALSE);
  g_return_val_if_fail (batch > 0 && n_tokens > 0, FALSE);
  int stack[64];
  int *lengths = batch <= (int) G_N_ELEMENTS (stack) ? stack : g_new (int, batch);
  for (int b = 0; b < batch; b++)
    lengths[b] = n_tokens;
  gboolean ok = agc_transformer_forward_packed (t, x, batch, lengths, causal, error);
  if (lengths != stack)
    g_free (lengths);
  return ok;
}
