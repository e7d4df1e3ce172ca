/* transformer.c — CLIP's pre-norm residual attention blocks.
 *
 * All tokens of all batch items go through each projection as one thick
 * GEMM ([B*T, D] rows); attention itself is two small GEMMs per (batch,
 * head) reading q, k and v in place from the fused qkv activations. */
#include "transformer.h"

#include "ops.h"

#include <cblas.h>
#include <math.h>
#include <string.h>

static float *
take_block_1d (const AgcWeights *weights, const char *prefix, int layer, const char *name,
               int64_t n, GError **error)
{
  char *full = g_strdup_printf ("%s%d.%s", prefix, layer, name);
  float *t = agc_weights_take_1d (weights, full, n, error);
  g_free (full);
  return t;
}

static float *
take_block_2d (const AgcWeights *weights, const char *prefix, int layer, const char *name,
               int64_t rows, int64_t cols, GError **error)
{
  char *full = g_strdup_printf ("%s%d.%s", prefix, layer, name);
  float *t = agc_weights_take_2d (weights, full, rows, cols, error);
  g_free (full);
  return t;
}

static void
block_clear (AgcBlock *b)
{
  g_free (b->ln1_weight);
  g_free (b->ln1_bias);
  g_free (b->qkv_weight);
  g_free (b->qkv_bias);
  g_free (b->out_weight);
  g_free (b->out_bias);
  g_free (b->ln2_weight);
  g_free (b->ln2_bias);
  g_free (b->fc1_weight);
  g_free (b->fc1_bias);
  g_free (b->fc2_weight);
  g_free (b->fc2_bias);
  memset (b, 0, sizeof *b);
}

// q, k, v stored apart in HF checkpoints, fused here so one GEMM makes all three
static gboolean
load_qkv (AgcBlock *b, const AgcWeights *weights, const char *prefix, int layer, int64_t d,
          GError **error)
{
  static const char *const names[3] = { "q_proj", "k_proj", "v_proj" };
  b->qkv_weight = g_new (float, 3 * d * d);
  b->qkv_bias = g_new (float, 3 * d);
  for (int i = 0; i < 3; i++)
    {
      char *w_name = g_strdup_printf ("self_attn.%s.weight", names[i]);
      char *b_name = g_strdup_printf ("self_attn.%s.bias", names[i]);
      float *w = take_block_2d (weights, prefix, layer, w_name, d, d, error);
      float *bias = w ? take_block_1d (weights, prefix, layer, b_name, d, error) : NULL;
      g_free (w_name);
      g_free (b_name);
      if (bias == NULL)
        {
          g_free (w);
          return FALSE;
        }
      memcpy (b->qkv_weight + i * d * d, w, d * d * sizeof (float));
      memcpy (b->qkv_bias + i * d, bias, d * sizeof (float));
      g_free (w);
      g_free (bias);
    }
  return TRUE;
}

static gboolean
load_block (AgcBlock *b, const AgcWeights *weights, const char *prefix, int layer,
            const AgcTowerConfig *c, GError **error)
{
  int64_t d = c->width, m = c->mlp_width;
  return (b->ln1_weight = take_block_1d (weights, prefix, layer, "layer_norm1.weight", d, error))
      && (b->ln1_bias = take_block_1d (weights, prefix, layer, "layer_norm1.bias", d, error))
      && load_qkv (b, weights, prefix, layer, d, error)
      && (b->out_weight
          = take_block_2d (weights, prefix, layer, "self_attn.out_proj.weight", d, d, error))
      && (b->out_bias = take_block_1d (weights, prefix, layer, "self_attn.out_proj.bias", d, error))
      && (b->ln2_weight = take_block_1d (weights, prefix, layer, "layer_norm2.weight", d, error))
      && (b->ln2_bias = take_block_1d (weights, prefix, layer, "layer_norm2.bias", d, error))
      && (b->fc1_weight = take_block_2d (weights, prefix, layer, "mlp.fc1.weight", m, d, error))
      && (b->fc1_bias = take_block_1d (weights, prefix, layer, "mlp.fc1.bias", m, error))
      && (b->fc2_weight = take_block_2d (weights, prefix, layer, "mlp.fc2.weight", d, m, error))
      && (b->fc2_bias = take_block_1d (weights, prefix, layer, "mlp.fc2.bias", d, error));
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
  for (int l = 0; l < config->layers; l++)
    if (!load_block (&transformer->blocks[l], weights, prefix, l, config, error))
      {
        agc_transformer_clear (transformer);
        return FALSE;
      }
  return TRUE;
}

void
agc_transformer_clear (AgcTransformer *transformer)
{
  if (transformer == NULL || transformer->blocks == NULL)
    return;
  for (int l = 0; l < transformer->config.layers; l++)
    block_clear (&transformer->blocks[l]);
  g_clear_pointer (&transformer->blocks, g_free);
}

// x[n_rows, n_out] += h[n_rows, n_in] @ weight[n_out, n_in]^T + bias: the
// residual add done by the GEMM itself (beta = 1), no extra buffer
static void
residual_linear (float *x, const float *h, const float *weight, const float *bias, int n_rows,
                 int n_in, int n_out)
{
  cblas_sgemm (CblasRowMajor, CblasNoTrans, CblasTrans, n_rows, n_out, n_in,
               1.0f, h, n_in, weight, n_in, 1.0f, x, n_out);
  for (int r = 0; r < n_rows; r++)
    {
      float *xr = x + (size_t) r * n_out;
      for (int i = 0; i < n_out; i++)
        xr[i] += bias[i];
    }
}

// out[B*T, D] = softmax(q k^T / sqrt(hd)) v for every (batch, head), reading
// q, k, v from qkv[B*T, 3D] in place through the GEMM leading dimensions
static void
attention_forward (float *out, const float *qkv, float *scores, int batch, int n_tokens, int width,
                   int heads, gboolean causal)
{
  int hd = width / heads, ld = 3 * width;
  float scale = 1.0f / sqrtf ((float) hd);
  for (int b = 0; b < batch; b++)
    for (int h = 0; h < heads; h++)
      {
        const float *q = qkv + (size_t) b * n_tokens * ld + h * hd; // [T, hd], stride 3D
        const float *k = q + width;
        const float *v = q + 2 * width;
        float *o = out + (size_t) b * n_tokens * width + h * hd;    // [T, hd], stride D
        // scores[T, T] = scale * q @ k^T
        cblas_sgemm (CblasRowMajor, CblasNoTrans, CblasTrans, n_tokens, n_tokens, hd,
                     scale, q, ld, k, ld, 0.0f, scores, n_tokens);
        if (causal)
          for (int t = 0; t < n_tokens; t++)
            {
              // a softmax over the visible prefix; the future gets exactly 0
              float *row = scores + (size_t) t * n_tokens;
              agc_softmax_rows (row, 1, t + 1);
              memset (row + t + 1, 0, (size_t) (n_tokens - t - 1) * sizeof (float));
            }
        else
          agc_softmax_rows (scores, n_tokens, n_tokens);
        // o[T, hd] = scores @ v
        cblas_sgemm (CblasRowMajor, CblasNoTrans, CblasNoTrans, n_tokens, hd, n_tokens,
                     1.0f, scores, n_tokens, v, ld, 0.0f, o, width);
      }
}

gboolean
agc_transformer_forward (const AgcTransformer *transformer, float *x, int batch, int n_tokens,
                         gboolean causal, GError **error)
{
  g_return_val_if_fail (transformer != NULL && x != NULL, FALSE);
  g_return_val_if_fail (batch > 0 && n_tokens > 0, FALSE);

  const AgcTowerConfig *c = &transformer->config;
  int d = c->width, m = c->mlp_width;
  int n_rows = batch * n_tokens;
  size_t rows = (size_t) n_rows;

  // scratch for the whole forward pass, reused by every layer
  size_t n_floats = rows * d       // h: layer-norm output, then attention output
                    + rows * 3 * d // qkv
                    + rows * m     // mlp hidden
                    + (size_t) n_tokens * n_tokens; // attention scores of one head
  float *scratch = g_try_new (float, n_floats);
  if (scratch == NULL)
    {
      g_set_error (error, AGC_ERROR, AGC_ERROR_INPUT,
                   "cannot allocate %zu MB of transformer scratch for %d inputs of %d tokens",
                   n_floats * sizeof (float) >> 20, batch, n_tokens);
      return FALSE;
    }
  float *h = scratch;             // [B*T, D]
  float *qkv = h + rows * d;      // [B*T, 3D]
  float *mlp = qkv + rows * 3 * d; // [B*T, M]
  float *scores = mlp + rows * m; // [T, T]

  for (int l = 0; l < c->layers; l++)
    {
      const AgcBlock *blk = &transformer->blocks[l];
      // x = x + out_proj(attention(ln_1(x)))
      agc_layernorm_forward (h, x, blk->ln1_weight, blk->ln1_bias, n_rows, d, c->layer_norm_eps);
      agc_linear_forward (qkv, h, blk->qkv_weight, blk->qkv_bias, n_rows, d, 3 * d);
      attention_forward (h, qkv, scores, batch, n_tokens, d, c->heads, causal);
      residual_linear (x, h, blk->out_weight, blk->out_bias, n_rows, d, d);
      // x = x + fc2(act(fc1(ln_2(x))))
      agc_layernorm_forward (h, x, blk->ln2_weight, blk->ln2_bias, n_rows, d, c->layer_norm_eps);
      agc_linear_forward (mlp, h, blk->fc1_weight, blk->fc1_bias, n_rows, d, m);
      if (c->act == AGC_ACT_GELU)
        agc_gelu_forward (mlp, rows * m);
      else
        agc_quick_gelu_forward (mlp, rows * m);
      residual_linear (x, mlp, blk->fc2_weight, blk->fc2_bias, n_rows, m, d);
    }
  g_free (scratch);
  return TRUE;
}
