/* transformer.c — CLIP's pre-norm residual attention blocks.
 *
 * Per layer, four thick GEMMs over all tokens of all sequences ([rows, D]
 * with rows = every token of the batch; gemm.h): qkv (into one fused
 * activation), out_proj, fc1, fc2; the residual adds are the GEMMs' own
 * accumulation (beta = 1), the qkv bias and fc1's bias and activation are
 * applied to each tile of C by the packed GEMM (else in a pass of their
 * own).  Between them, one pass each over the rows, split over the pool
 * (threads.h):  x += previous bias, h = ln(x)  |  attention per (sequence,
 * head), reading q, k and v in place from the fused activations
 * (attention.h).
 *
 * The four weight GEMMs run on our packed kernels (gemm-packed.h) where the
 * CPU has them: float32 layers are packed on their first run and kept,
 * half-precision layers are packed into one layer-sized scratch just before
 * they run.  Elsewhere they go to OpenBLAS (gemm.h), half-precision layers
 * converted to float32 in that scratch.
 *
 * In int8 mode (agc_transformer_set_int8) the four go to gemm-int8.h
 * instead, every layer quantised on its first run and kept, whatever its
 * stored dtype; nothing float32 is packed then. */
#include "nn/transformer.h"

#include "kernels/attention.h"
#include "kernels/gemm.h"
#include "nn/int8-block.h"
#include "nn/packed-block.h"
#include "kernels/ops.h"
#include "kernels/threads.h"

#include <string.h>

static gboolean gemm_only;

void
agc_set_gemm_only (gboolean value)
{
  gemm_only = value;
}

gboolean
agc_get_gemm_only (void)
{
  return gemm_only;
}

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

// q, k, v stored apart in HF checkpoints; their biases fused here (small)
static gboolean
load_qkv (AgcBlock *b, AgcStoredBlock *s, const AgcWeights *weights, const char *prefix,
          int layer, int64_t d, GPtrArray *owned, GError **error)
{
  static const char *const names[3] = { "q_proj", "k_proj", "v_proj" };
  AgcParam *parts[3] = { &s->q, &s->k, &s->v };
  b->qkv_bias = g_new (float, 3 * d);
  g_ptr_array_add (owned, b->qkv_bias);
  for (int i = 0; i < 3; i++)
    {
      g_autofree char *w_name = g_strdup_printf ("self_attn.%s.weight", names[i]);
      g_autofree char *b_name = g_strdup_printf ("self_attn.%s.bias", names[i]);
      float *bias;
      if (!view_matrix (parts[i], weights, prefix, layer, w_name, d, d, owned, error)
          || !(bias = take_vector (weights, prefix, layer, b_name, d, owned, error)))
        return FALSE;
      memcpy (b->qkv_bias + i * d, bias, d * sizeof (float));
    }
  return TRUE;
}

static gboolean
load_block (AgcBlock *b, AgcStoredBlock *s, const AgcWeights *weights, const char *prefix,
            int layer, const AgcTowerConfig *c, GPtrArray *owned, GError **error)
{
  int64_t d = c->width, m = c->mlp_width;
  const AgcWeights *w = weights;
  gboolean ok
    = (b->ln1_weight = take_vector (w, prefix, layer, "layer_norm1.weight", d, owned, error))
      && (b->ln1_bias = take_vector (w, prefix, layer, "layer_norm1.bias", d, owned, error))
      && load_qkv (b, s, w, prefix, layer, d, owned, error)
      && view_matrix (&s->out, w, prefix, layer, "self_attn.out_proj.weight", d, d, owned, error)
      && (b->out_bias
          = take_vector (w, prefix, layer, "self_attn.out_proj.bias", d, owned, error))
      && (b->ln2_weight = take_vector (w, prefix, layer, "layer_norm2.weight", d, owned, error))
      && (b->ln2_bias = take_vector (w, prefix, layer, "layer_norm2.bias", d, owned, error))
      && view_matrix (&s->fc1, w, prefix, layer, "mlp.fc1.weight", m, d, owned, error)
      && (b->fc1_bias = take_vector (w, prefix, layer, "mlp.fc1.bias", m, owned, error))
      && view_matrix (&s->fc2, w, prefix, layer, "mlp.fc2.weight", d, m, owned, error)
      && (b->fc2_bias = take_vector (w, prefix, layer, "mlp.fc2.bias", d, owned, error));
  if (!ok)
    return FALSE;
  // float32 matrices are read in place; half-precision ones at run time
  b->qkv_weight = NULL;
  b->q_weight = s->q.dtype == AGC_DTYPE_F32 ? (float *) s->q.data : NULL;
  b->k_weight = s->k.dtype == AGC_DTYPE_F32 ? (float *) s->k.data : NULL;
  b->v_weight = s->v.dtype == AGC_DTYPE_F32 ? (float *) s->v.data : NULL;
  b->out_weight = s->out.dtype == AGC_DTYPE_F32 ? (float *) s->out.data : NULL;
  b->fc1_weight = s->fc1.dtype == AGC_DTYPE_F32 ? (float *) s->fc1.data : NULL;
  b->fc2_weight = s->fc2.dtype == AGC_DTYPE_F32 ? (float *) s->fc2.data : NULL;
  return TRUE;
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
  transformer->blocks = g_new0 (AgcBlock, MAX (config->layers, 1));
  transformer->stored = g_new0 (AgcStoredBlock, MAX (config->layers, 1));
  transformer->owned = g_ptr_array_new_with_free_func (g_free);
  transformer->scratch = g_new0 (AgcArena, 1);
  transformer->packed = g_new0 (AgcPackedBlock, MAX (config->layers, 1));
  transformer->weights = weights;
  for (int l = 0; l < config->layers; l++)
    if (!load_block (&transformer->blocks[l], &transformer->stored[l], weights, prefix, l, config,
                     transformer->owned, error))
      {
        agc_transformer_clear (transformer);
        return FALSE;
      }
  return TRUE;
}

static void
block_free_arrays (AgcBlock *b)
{
  float *arrays[] = { b->ln1_weight, b->ln1_bias, b->qkv_weight, b->qkv_bias,
                      b->q_weight, b->k_weight, b->v_weight,
                      b->out_weight, b->out_bias, b->ln2_weight, b->ln2_bias,
                      b->fc1_weight, b->fc1_bias, b->fc2_weight, b->fc2_bias };
  for (size_t i = 0; i < G_N_ELEMENTS (arrays); i++)
    g_free (arrays[i]);
}

void
agc_transformer_clear (AgcTransformer *transformer)
{
  if (transformer == NULL || transformer->blocks == NULL)
    return;
  if (transformer->owned == NULL) // built by hand: each array is its own
    for (int l = 0; l < transformer->config.layers; l++)
      block_free_arrays (&transformer->blocks[l]);
  g_clear_pointer (&transformer->owned, g_ptr_array_unref);
  g_clear_pointer (&transformer->stored, g_free);
  for (int l = 0; transformer->packed != NULL && l < transformer->config.layers; l++)
    agc_packed_block_clear (&transformer->packed[l]);
  g_clear_pointer (&transformer->packed, g_free);
  agc_transformer_set_int8 (transformer, FALSE, NULL);
  agc_arena_clear (transformer->scratch);
  g_clear_pointer (&transformer->scratch, g_free);
  g_clear_pointer (&transformer->blocks, g_free);
}

void
agc_transformer_forget_packed (AgcTransformer *transformer, int layer)
{
  g_return_if_fail (transformer != NULL && layer >= 0 && layer < transformer->config.layers);
  if (transformer->packed != NULL)
    agc_packed_block_clear (&transformer->packed[layer]);
  if (transformer->int8 != NULL)
    agc_int8_block_clear (&transformer->int8[layer]);
}

gboolean
agc_transformer_set_int8 (AgcTransformer *transformer, gboolean int8, GError **error)
{
  g_return_val_if_fail (transformer != NULL, FALSE);
  AgcTransformer *t = transformer;
  if (!int8)
    {
      for (int l = 0; t->int8 != NULL && l < t->config.layers; l++)
        agc_int8_block_clear (&t->int8[l]);
      g_clear_pointer (&t->int8, g_free);
      return TRUE;
    }
  if (!agc_int8_available ())
    {
      g_set_error (error, AGC_ERROR, AGC_ERROR_UNSUPPORTED,
                   "int8 mode needs a CPU with AVX2 (or AVX-VNNI / AVX-512 VNNI); this one "
                   "has none of them");
      return FALSE;
    }
  if (t->stored == NULL)
    {
      g_set_error (error, AGC_ERROR, AGC_ERROR_UNSUPPORTED,
                   "int8 mode needs a loaded transformer (these blocks were built by hand)");
      return FALSE;
    }
  if (t->int8 == NULL) // layers are quantised when they first run
    t->int8 = g_new0 (AgcInt8Block, MAX (t->config.layers, 1));
  return TRUE;
}

gboolean
agc_transformer_get_int8 (const AgcTransformer *transformer)
{
  g_return_val_if_fail (transformer != NULL, FALSE);
  return transformer->int8 != NULL;
}

enum
{
  N_MATRICES = 6, // q, k, v, out, fc1, fc2
};

static gboolean
layer_is_compact (const AgcTransformer *t, int l)
{
  if (t->stored == NULL)
    return FALSE;
  const AgcStoredBlock *s = &t->stored[l];
  return s->q.dtype != AGC_DTYPE_F32 || s->k.dtype != AGC_DTYPE_F32
         || s->v.dtype != AGC_DTYPE_F32 || s->out.dtype != AGC_DTYPE_F32
         || s->fc1.dtype != AGC_DTYPE_F32 || s->fc2.dtype != AGC_DTYPE_F32;
}

/* ---- forward ------------------------------------------------------------ */

typedef struct
{
  const AgcTowerConfig *c;
  const AgcBlock *blk;
  float *x, *h, *qkv, *mlp; // [R, D], [R, D], [R, 3D], [R, M]
  // the residual-stream pass: x += add_bias, ln_out = ln(x) when ln_out
  const float *add_bias, *ln_weight, *ln_bias;
  float *ln_out;
  // a product's bias and activation, where its GEMM did not apply them
  float *epi_out;
  const float *epi_bias;
  int epi_width;
  gboolean epi_act;
  // a layer's half-precision weights being converted
  const AgcParam *convert[N_MATRICES];
  float *convert_to[N_MATRICES];
} Pass;

static void
residual_rows (void *ctx, int begin, int end, int thread)
{
  (void) thread;
  const Pass *p = ctx;
  int d = p->c->width;
  agc_bias_layernorm_forward (p->ln_out != NULL ? p->ln_out + (size_t) begin * d : NULL,
                              p->x + (size_t) begin * d, p->add_bias, p->ln_weight, p->ln_bias,
                              end - begin, d, p->c->layer_norm_eps);
}

enum
{
  // below these amounts a region runs on the caller alone: waking a worker
  // costs more than it saves (a few microseconds of work per thread)
  MIN_FLOATS_PER_THREAD = 1 << 16,
};

// rows per chunk for a pass over rows of width floats: four chunks per
// thread, so that a thread the OS delays leaves its chunks to the others,
// but never chunks so small that a second thread is not worth waking
static int
row_grain (int n_rows, int width)
{
  int n_chunks = 4 * agc_threads_count ();
  return MAX ((n_rows + n_chunks - 1) / n_chunks, MIN_FLOATS_PER_THREAD / MAX (width, 1));
}

static void
residual_pass (Pass *p, int n_rows, const float *add_bias, const float *ln_weight,
               const float *ln_bias, float *ln_out)
{
  if (gemm_only)
    return;
  p->add_bias = add_bias;
  p->ln_weight = ln_weight;
  p->ln_bias = ln_bias;
  p->ln_out = ln_out;
  agc_parallel_for (n_rows, row_grain (n_rows, p->c->width), residual_rows, p);
}

static void
epilogue_rows (void *ctx, int begin, int end, int thread)
{
  (void) thread;
  const Pass *p = ctx;
  int w = p->epi_width;
  float *out = p->epi_out + (size_t) begin * w;
  if (p->epi_act)
    agc_bias_act_forward (out, p->epi_bias, end - begin, w, p->c->act);
  else
    for (int r = 0; r < end - begin; r++)
      for (int i = 0; i < w; i++)
        out[(size_t) r * w + i] += p->epi_bias[i];
}

// out[rows, width] = act? (out + bias); nothing when timing the products alone
static void
epilogue_pass (Pass *p, float *out, int rows, int width, const float *bias, gboolean act)
{
  if (gemm_only || (bias == NULL && !act))
    return;
  p->epi_out = out;
  p->epi_bias = bias;
  p->epi_width = width;
  p->epi_act = act;
  agc_parallel_for (rows, row_grain (rows, width), epilogue_rows, p);
}

enum
{
  CONVERT_CHUNK = 1 << 16, // elements per task when converting a layer
};

static void
convert_chunks (void *ctx, int begin, int end, int thread)
{
  (void) thread;
  const Pass *p = ctx;
  for (int chunk = begin; chunk < end; chunk++)
    {
      size_t first = (size_t) chunk * CONVERT_CHUNK;
      for (int i = 0; i < N_MATRICES; i++)
        {
          const AgcParam *param = p->convert[i];
          if (first < param->n)
            {
              agc_param_convert (p->convert_to[i] + first, param, first,
                                 MIN ((size_t) CONVERT_CHUNK, param->n - first));
              break;
            }
          first -= (param->n + CONVERT_CHUNK - 1) / CONVERT_CHUNK * CONVERT_CHUNK;
        }
    }
}

// layer l's weights as float32: in place, or converted into layer_scratch
static void
layer_weights (AgcBlock *out, Pass *p, const AgcTransformer *t, int l, float *layer_scratch)
{
  *out = t->blocks[l];
  if (!layer_is_compact (t, l))
    return;
  const AgcStoredBlock *s = &t->stored[l];
  const AgcParam *params[N_MATRICES] = { &s->q, &s->k, &s->v, &s->out, &s->fc1, &s->fc2 };
  // q, k, v converted next to each other: one fused [3D, D] matrix, one GEMM
  size_t sizes[N_MATRICES] = { s->q.n, s->k.n, s->v.n, agc_arena_size (s->out.n),
                               agc_arena_size (s->fc1.n), agc_arena_size (s->fc2.n) };
  int n_chunks = 0;
  float *at = layer_scratch;
  for (int i = 0; i < N_MATRICES; i++)
    {
      p->convert[i] = params[i];
      p->convert_to[i] = at;
      at += sizes[i];
      n_chunks += (int) ((params[i]->n + CONVERT_CHUNK - 1) / CONVERT_CHUNK);
    }
  out->qkv_weight = p->convert_to[0];
  out->out_weight = p->convert_to[3];
  out->fc1_weight = p->convert_to[4];
  out->fc2_weight = p->convert_to[5];
  if (!gemm_only)
    agc_parallel_for (n_chunks, 1, convert_chunks, p);
}

// the packed or quantised copy of layer l is the one read from now on:
// the file's pages of its stored matrices can go
static void
release_stored (const AgcTransformer *t, int l)
{
  const AgcStoredBlock *s = &t->stored[l];
  const AgcParam *stored[] = { &s->q, &s->k, &s->v, &s->out, &s->fc1, &s->fc2 };
  for (size_t i = 0; i < G_N_ELEMENTS (stored); i++)
    agc_weights_release (t->weights, stored[i]->data,
                         stored[i]->n * (stored[i]->dtype == AGC_DTYPE_F32 ? 4 : 2));
}

// layer l's matrices packed: kept from an earlier run (float32, packed
// now if not yet), or packed into layer_scratch (half precision)
static const AgcPackedBlock *
packed_weights (AgcPackedBlock *per_call, const AgcTransformer *t, int l, float *layer_scratch,
                GError **error)
{
  if (layer_is_compact (t, l))
    return agc_packed_block_init (per_call, layer_scratch, &t->stored[l], &t->config, error)
               ? per_call
               : NULL;
  AgcPackedBlock *kept = &t->packed[l];
  if (kept->ready)
    return kept;
  if (!agc_packed_block_init (kept, NULL, &t->stored[l], &t->config, error))
    return NULL;
  release_stored (t, l);
  return kept;
}

// layer l's int8 matrices: kept from an earlier run, or quantised now
static const AgcInt8Block *
int8_weights (const AgcTransformer *t, int l, GError **error)
{
  AgcInt8Block *kept = &t->int8[l];
  if (agc_int8_block_ready (kept))
    return kept;
  if (!agc_int8_block_init (kept, &t->stored[l], &t->config, error))
    return NULL;
  release_stored (t, l);
  return kept;
}

// x[R, D] += a[R, K] @ w[D, K]^T, or out[R, N] = act? (a @ w^T + bias) with
// beta 0; through the int8 or packed matrix when there is one (the packed
// GEMM adds the bias and applies act to each tile while it is in cache).
// FALSE only when the int8 GEMM cannot allocate its activations.
static gboolean
gemm_nt (Pass *p, float *out, const float *a, const AgcInt8Matrix *q8,
         const AgcPackedMatrix *packed, const float *w, int rows, int n_out, int n_in, float beta,
         const float *bias, gboolean act, GError **error)
{
  if (packed != NULL && q8 == NULL)
    {
      // timing the products alone leaves the epilogue out, as epilogue_pass does
      AgcGemmEpilogue epilogue = { .bias = bias, .apply_act = act, .act = p->c->act };
      agc_gemm_packed (out, n_out, a, n_in, packed, rows, beta, gemm_only ? NULL : &epilogue);
      return TRUE;
    }
  if (q8 != NULL)
    {
      if (!agc_gemm_int8 (out, n_out, a, n_in, q8, rows, beta, error))
        return FALSE;
    }
  else
    agc_gemm_nt (out, n_out, a, n_in, w, rows, n_out, n_in, beta);
  epilogue_pass (p, out, rows, n_out, bias, act);
  return TRUE;
}

// qkv[R, 3D] = h[R, D] @ [q; k; v]^T + bias: one GEMM when fused, else
// three writing their column blocks of qkv through its leading dimension
static gboolean
qkv_gemm (Pass *p, float *qkv, const float *h, const AgcBlock *blk, const AgcInt8Block *q8,
          const AgcPackedBlock *packed, int rows, int d, GError **error)
{
  if (q8 != NULL || packed != NULL || blk->qkv_weight != NULL)
    return gemm_nt (p, qkv, h, q8 != NULL ? q8->qkv : NULL, packed != NULL ? &packed->qkv : NULL,
                    blk->qkv_weight, rows, 3 * d, d, 0.0f, blk->qkv_bias, FALSE, error);
  const float *w[3] = { blk->q_weight, blk->k_weight, blk->v_weight };
  for (int i = 0; i < 3; i++)
    agc_gemm_nt (qkv + i * d, 3 * d, h, d, w[i], rows, d, d, 0.0f);
  epilogue_pass (p, qkv, rows, 3 * d, blk->qkv_bias, FALSE);
  return TRUE;
}

gboolean
agc_transformer_forward_packed (const AgcTransformer *t, float *x, int n_seqs, const int *lengths,
                                gboolean causal, GError **error)
{
  g_return_val_if_fail (t != NULL && x != NULL && lengths != NULL && n_seqs > 0, FALSE);

  const AgcTowerConfig *c = &t->config;
  int d = c->width, m = c->mlp_width, n_threads = agc_threads_count ();
  size_t rows = 0;
  int max_len = 0;
  for (int s = 0; s < n_seqs; s++)
    {
      g_return_val_if_fail (lengths[s] > 0, FALSE);
      rows += lengths[s];
      max_len = MAX (max_len, lengths[s]);
    }
  // int8: all four matrices of every layer quantised, none converted or packed
  gboolean int8 = t->int8 != NULL;
  gboolean compact = FALSE, packed = !int8 && t->packed != NULL && agc_packed_gemm_available ();
  size_t layer_floats = 0;
  for (int l = 0; !int8 && l < c->layers; l++)
    compact = compact || layer_is_compact (t, l);
  if (compact && packed)
    layer_floats = agc_packed_block_floats (c);
  else if (compact)
    {
      const AgcStoredBlock *s = &t->stored[0];
      layer_floats = agc_arena_size (s->q.n + s->k.n + s->v.n) + agc_arena_size (s->out.n)
                     + agc_arena_size (s->fc1.n) + agc_arena_size (s->fc2.n);
    }

  size_t attention_floats = n_threads * agc_attention_scratch_floats (max_len, d, c->heads);
  size_t need = agc_arena_size (rows * d)                                  // h
                + agc_arena_size (rows * 3 * d)                            // qkv
                + agc_arena_size (rows * m)                                // mlp
                + attention_floats
                + layer_floats + 2 * agc_arena_size ((size_t) n_seqs);     // offsets
  AgcArena local = { 0 };
  AgcArena *arena = t->scratch != NULL ? t->scratch : &local;
  float *cursor = agc_arena_reserve (arena, need, "the transformer's activations", error);
  if (cursor == NULL)
    return FALSE;

  Pass p = { .c = c, .x = x };
  p.h = agc_arena_take (&cursor, rows * d);
  p.qkv = agc_arena_take (&cursor, rows * 3 * d);
  p.mlp = agc_arena_take (&cursor, rows * m);
  AgcAttention attention = {
    .qkv = p.qkv, .out = p.h, .lengths = lengths, .n_seqs = n_seqs, .width = d,
    .heads = c->heads, .max_len = max_len, .causal = causal, .products_only = gemm_only,
  };
  attention.scratch = agc_arena_take (&cursor, attention_floats);
  float *layer_scratch = compact ? agc_arena_take (&cursor, layer_floats) : NULL;
  int *offsets = (int *) agc_arena_take (&cursor, 2 * (size_t) n_seqs);
  offsets[0] = 0;
  for (int s = 1; s < n_seqs; s++)
    offsets[s] = offsets[s - 1] + lengths[s - 1];
  attention.offsets = offsets;

  int n_rows = (int) rows;
  const float *pending_bias = NULL; // fc2 bias of the previous layer, not yet added to x
  for (int l = 0; l < c->layers; l++)
    {
      AgcBlock blk = t->blocks[l];
      AgcPackedBlock per_call;
      const AgcPackedBlock *pk = NULL;
      const AgcInt8Block *q8 = NULL;
      if ((int8 && !(q8 = int8_weights (t, l, error)))
          || (packed && !(pk = packed_weights (&per_call, t, l, layer_scratch, error))))
        {
          agc_arena_clear (&local);
          return FALSE;
        }
      if (!packed && !int8)
        layer_weights (&blk, &p, t, l, layer_scratch);
      p.blk = &blk;
      // x = x + out_proj(attention(ln_1(x)))
      residual_pass (&p, n_rows, pending_bias, blk.ln1_weight, blk.ln1_bias, p.h);
      gboolean ok = qkv_gemm (&p, p.qkv, p.h, &blk, q8, pk, n_rows, d, error);
      if (ok)
        {
          agc_attention_forward (&attention);
          ok = gemm_nt (&p, x, p.h, q8 ? q8->out : NULL, pk ? &pk->out : NULL, blk.out_weight,
                        n_rows, d, d, 1.0f, NULL, FALSE, error);
        }
      // x = x + fc2(act(fc1(ln_2(x))))
      if (ok)
        {
          residual_pass (&p, n_rows, blk.out_bias, blk.ln2_weight, blk.ln2_bias, p.h);
          ok = gemm_nt (&p, p.mlp, p.h, q8 ? q8->fc1 : NULL, pk ? &pk->fc1 : NULL,
                        blk.fc1_weight, n_rows, m, d, 0.0f, blk.fc1_bias, TRUE, error)
               && gemm_nt (&p, x, p.mlp, q8 ? q8->fc2 : NULL, pk ? &pk->fc2 : NULL,
                           blk.fc2_weight, n_rows, d, m, 1.0f, NULL, FALSE, error);
        }
      if (!ok)
        {
          agc_arena_clear (&local);
          return FALSE;
        }
      pending_bias = t->blocks[l].fc2_bias;
    }
  if (pending_bias != NULL)
    residual_pass (&p, n_rows, pending_bias, NULL, NULL, NULL);
  agc_arena_clear (&local);
  return TRUE;
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
