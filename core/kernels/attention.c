/* attention.c — see attention.h. */
#include "kernels/attention.h"

#include "kernels/arena.h"
#include "kernels/gemm-packed.h"
#include "kernels/ops.h"
#include "kernels/threads.h"

#include <cblas.h>
#include <math.h>
#include <string.h>

enum
{
  // below this much work all of attention runs on the caller alone
  MIN_FLOP_PER_THREAD = 1 << 21,
};

static int
panels_floats (int n_out, int n_in)
{
  return (n_out + AGC_PANEL_WIDTH - 1) / AGC_PANEL_WIDTH * AGC_PANEL_WIDTH * n_in;
}

size_t
agc_attention_scratch_floats (int max_len, int width, int heads)
{
  int hd = width / heads;
  return agc_arena_size ((size_t) max_len * max_len)               // scores
         + agc_arena_size (panels_floats (max_len, hd))            // k^T
         + agc_arena_size (panels_floats (hd, max_len));           // v
}

// panels of scale k^T: panel p holds tokens [32p, 32p + 32) as columns,
// [hd][32]; columns past n are zeros
static void
pack_keys (float *panels, const float *k, int ld, int n, int hd, float scale)
{
  for (int first = 0; first < n; first += AGC_PANEL_WIDTH)
    {
      float *panel = panels + (size_t) first * hd;
      int nc = MIN (AGC_PANEL_WIDTH, n - first);
      for (int i = 0; i < hd; i++)
        {
          float *out = panel + (size_t) i * AGC_PANEL_WIDTH;
          for (int j = 0; j < nc; j++)
            out[j] = scale * k[(size_t) (first + j) * ld + i];
          for (int j = nc; j < AGC_PANEL_WIDTH; j++)
            out[j] = 0.0f;
        }
    }
}

// panels of v: panel p holds columns [32p, 32p + 32) of every token, [n][32]
static void
pack_values (float *panels, const float *v, int ld, int n, int hd)
{
  for (int first = 0; first < hd; first += AGC_PANEL_WIDTH)
    {
      float *panel = panels + (size_t) first * n;
      int nc = MIN (AGC_PANEL_WIDTH, hd - first);
      for (int t = 0; t < n; t++)
        {
          float *out = panel + (size_t) t * AGC_PANEL_WIDTH;
          memcpy (out, v + (size_t) t * ld + first, nc * sizeof (float));
          memset (out + nc, 0, (AGC_PANEL_WIDTH - nc) * sizeof (float));
        }
    }
}

static void
softmax (const AgcAttention *a, float *scores, int n)
{
  if (a->products_only)
    return;
  if (!a->causal)
    {
      agc_softmax_rows (scores, n, n);
      return;
    }
  for (int t = 0; t < n; t++)
    {
      // a softmax over the visible prefix; the future gets exactly 0
      float *row = scores + (size_t) t * n;
      agc_softmax_rows (row, 1, t + 1);
      memset (row + t + 1, 0, (size_t) (n - t - 1) * sizeof (float));
    }
}

// items are (sequence, head) pairs
static void
attention_items (void *ctx, int begin, int end, int thread)
{
  const AgcAttention *a = ctx;
  int d = a->width, hd = d / a->heads, ld = 3 * d;
  float scale = 1.0f / sqrtf ((float) hd);
  float *own_scores = a->scratch + agc_attention_scratch_floats (a->max_len, d, a->heads) * thread;
  float *k_panels = own_scores + agc_arena_size ((size_t) a->max_len * a->max_len);
  float *v_panels = k_panels + agc_arena_size (panels_floats (a->max_len, hd));
  gboolean packed = !a->use_openblas && agc_packed_gemm_available ();
  for (int item = begin; item < end; item++)
    {
      int s = item / a->heads, head = item % a->heads, n = a->lengths[s];
      const float *q = a->qkv + (size_t) a->offsets[s] * ld + head * hd; // [n, hd], stride 3D
      const float *k = q + d;
      const float *v = q + 2 * d;
      float *o = a->out + (size_t) a->offsets[s] * d + head * hd;         // [n, hd], stride D
      // scores, then probabilities [n, n]: where training keeps them, or ours
      float *scores = a->probs != NULL ? a->probs + (size_t) item * n * n : own_scores;
      if (packed)
        {
          pack_keys (k_panels, k, ld, n, hd, scale);
          agc_gemm_panels_serial (scores, n, q, ld, k_panels, n, hd, n);
          softmax (a, scores, n);
          pack_values (v_panels, v, ld, n, hd);
          agc_gemm_panels_serial (o, d, scores, n, v_panels, hd, n, n);
          continue;
        }
      cblas_sgemm (CblasRowMajor, CblasNoTrans, CblasTrans, n, n, hd, scale, q, ld, k, ld, 0.0f,
                   scores, n);
      softmax (a, scores, n);
      cblas_sgemm (CblasRowMajor, CblasNoTrans, CblasNoTrans, n, hd, n, 1.0f, scores, n, v, ld,
                   0.0f, o, d);
    }
}

gboolean
agc_attention_init_batch (AgcAttention *a, AgcArena *arena, int batch, int n_tokens, int width,
                          int heads, gboolean causal, GError **error)
{
  g_return_val_if_fail (a != NULL && arena != NULL && batch > 0 && n_tokens > 0, FALSE);
  size_t slot = agc_attention_scratch_floats (n_tokens, width, heads);
  size_t slots = slot * agc_threads_count ();
  float *cursor = agc_arena_reserve (arena, slots + 2 * agc_arena_size ((size_t) batch),
                                     "the attention's scratch", error);
  if (cursor == NULL)
    return FALSE;
  *a = (AgcAttention){ .n_seqs = batch, .width = width, .heads = heads, .max_len = n_tokens,
                       .causal = causal };
  a->scratch = agc_arena_take (&cursor, slots);
  int *lengths = (int *) agc_arena_take (&cursor, batch);
  int *offsets = (int *) agc_arena_take (&cursor, batch);
  for (int b = 0; b < batch; b++)
    {
      lengths[b] = n_tokens;
      offsets[b] = b * n_tokens;
    }
  a->lengths = lengths;
  a->offsets = offsets;
  return TRUE;
}

void
agc_attention_forward (const AgcAttention *a)
{
  g_return_if_fail (a != NULL && a->scratch != NULL && a->heads > 0);
  // (sequence, head) items one at a time, so uneven lengths balance, unless
  // all of attention is too little work to share: two GEMMs of 2 T^2 hd flop
  double flop = 4.0 * (double) a->max_len * a->max_len * a->width * a->n_seqs;
  int n_items = a->n_seqs * a->heads;
  agc_threads_blas_serial_begin ();
  agc_parallel_for (n_items, flop < 2.0 * MIN_FLOP_PER_THREAD ? n_items : 1, attention_items,
                    (void *) a);
  agc_threads_blas_serial_end ();
}
