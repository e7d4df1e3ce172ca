/* transformer.h — the pre-norm residual attention blocks shared by CLIP's
 * image and text towers:
 *   x = x + out_proj(attention(ln_1(x)))   (causal for text)
 *   x = x + fc2(act(fc1(ln_2(x)))) */
#pragma once

#include "agriclip.h"
#include "kernels/arena.h"
#include "nn/tower-config.h"
#include "kernels/linear.h"
#include "kernels/param.h"
#include "formats/weights.h"

/* Float32 arrays of one block, as training keeps them (block-train.h) and
 * as blocks built by hand give them to the forward pass. */
typedef struct
{
  float *ln1_weight, *ln1_bias; /* [D] */
  float *qkv_weight;            /* [3D, D], rows q then k then v; NULL when apart: */
  float *q_weight, *k_weight, *v_weight; /* [D, D] each, used when qkv_weight is NULL */
  float *qkv_bias;              /* [3D] */
  float *out_weight;            /* [D, D] */
  float *out_bias;              /* [D] */
  float *ln2_weight, *ln2_bias; /* [D] */
  float *fc1_weight;            /* [M, D] */
  float *fc1_bias;              /* [M] */
  float *fc2_weight;            /* [D, M] */
  float *fc2_bias;              /* [D] */
} AgcBlock;

/* One loaded block's parameters, as the forward pass reads them: the four
 * matrices in whatever storage (linear.h), vectors float32. */
typedef struct
{
  float *ln1_weight, *ln1_bias; /* [D] */
  AgcLinear qkv;                /* [3D, D] in parts q, k, v; bias [3D] */
  AgcLinear out;                /* [D, D]; bias [D] */
  float *ln2_weight, *ln2_bias; /* [D] */
  AgcLinear fc1;                /* [M, D]; bias [M] */
  AgcLinear fc2;                /* [D, M]; bias [D] */
} AgcLayer;

typedef struct
{
  AgcTowerConfig config;
  /* [config.layers], the blocks' parameters as the forward reads them:
   * loaded (agc_transformer_load), vectors in owned, matrices in the
   * checkpoint as stored; or views of float32 blocks (agc_transformer_view) */
  AgcLayer *layers;
  GPtrArray *owned;       /* copies made at load, or NULL: views */
  AgcArena *scratch;      /* reused activations; NULL: allocated per call */
  /* how the forward runs (agc_transformer_set_options); all FALSE when
   * built by hand */
  AgcEngineOptions options;
} AgcTransformer;

/* Loads blocks named in the Hugging Face layout under prefix, e.g.
 * "vision_model.encoder.layers.".  Nothing big is copied: the matrices stay
 * as stored in the file (linear.h), q, k and v as the three parts of one
 * [3D, D] linear.  weights must outlive the transformer. */
gboolean agc_transformer_load (AgcTransformer *transformer, const AgcWeights *weights,
                               const char *prefix, const AgcTowerConfig *config, GError **error);
/* A transformer over float32 blocks[config->layers] read in place (the
 * caller's arrays, which must outlive it): training's weights, blocks built
 * by hand.  scratch NULL (activations allocated per call) until the caller
 * lends one. */
void agc_transformer_view (AgcTransformer *transformer, const AgcBlock *blocks,
                           const AgcTowerConfig *config);
void agc_transformer_clear (AgcTransformer *transformer);

/* Applies options from the next forward on: int8 (linear.h) for the four
 * weight products of every block, each layer quantised on its first run
 * and kept, everything else float32; turned off, the int8 matrices are
 * freed.  AGC_ERROR_UNSUPPORTED, options unchanged, when turning int8 on
 * where agc_int8_available () is FALSE or on a view (agc_transformer_view). */
gboolean agc_transformer_set_options (AgcTransformer *transformer,
                                      const AgcEngineOptions *options, GError **error);

/* x[batch, n_tokens, D] in place.  causal: token t attends to tokens <= t. */
gboolean agc_transformer_forward (const AgcTransformer *transformer, float *x, int batch,
                                  int n_tokens, gboolean causal, GError **error);

/* Sequences of different lengths packed one after another: x[sum of
 * lengths, D] in place, sequence s in the lengths[s] rows after those of
 * sequences 0 .. s-1.  All tokens of all sequences go through each
 * projection as one GEMM; attention stays within each sequence. */
gboolean agc_transformer_forward_packed (const AgcTransformer *transformer, float *x, int n_seqs,
                                         const int *lengths, gboolean causal, GError **error);

/* ---- training: the same block forward keeping its activations, and its
 * backward.  Sequences all have n_tokens tokens; rows R = batch * n_tokens.
 *   x_mid = x + out_proj(attention(ln_1(x)))
 *   out   = x_mid + fc2(act(fc1(ln_2(x_mid)))) */

typedef struct
{
  int batch, n_tokens;
  float *x;                    // [R, D] block input
  float *ln1, *ln1_mean, *ln1_rstd; // [R, D], [R], [R]
  float *qkv;                  // [R, 3D] biases included
  float *att;                  // [batch, heads, T, T] probabilities
  float *atty;                 // [R, D] attention output, before out_proj
  float *x_mid;                // [R, D] residual stream after attention
  float *ln2, *ln2_mean, *ln2_rstd; // [R, D], [R], [R]
  float *fc1;                  // [R, M] before the activation
  float *act;                  // [R, M]
  float *memory;               // the one allocation all of the above live in
  float *scratch;              // agc_block_scratch_floats for the backward, not owned;
                               // NULL: the backward allocates its own each call
  AgcArena *attention_scratch; // the forward's attention scratch, grown as needed, not
                               // owned (one per shard); NULL: allocated each call
} AgcBlockActs;

/* A layer reading block's float32 arrays in place (no copy): training's
 * weights, which the optimiser updates between calls, and blocks built by
 * hand. */
void agc_layer_view (AgcLayer *layer, const AgcBlock *block, const AgcTowerConfig *config);

/* x[R, D] = block(x) in place: the forward inference runs, keeping the
 * activations in acts.  Safe inside a parallel region (training's shards,
 * each with its own acts).  w: float32 views (agc_layer_view), qkv fused. */
void agc_block_forward (float *x, AgcBlockActs *acts, const AgcLayer *w,
                        const AgcTowerConfig *config, gboolean causal);

/* Adds the gradients of the loss w.r.t. the block input into dx[R, D] (may
 * be NULL) and w.r.t. the weights into grads, from dout[R, D]. */
void agc_block_backward (float *dx, AgcBlock *grads, const float *dout, const AgcBlockActs *acts,
                         const AgcLayer *w, const AgcTowerConfig *config);
