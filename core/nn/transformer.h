/* transformer.h — the pre-norm residual attention blocks shared by CLIP's
 * image and text towers:
 *   x = x + out_proj(attention(ln_1(x)))   (causal for text)
 *   x = x + fc2(act(fc1(ln_2(x)))) */
#pragma once

#include "agriclip.h"
#include "kernels/arena.h"
#include "nn/tower-config.h"
#include "kernels/param.h"
#include "formats/weights.h"

/* Float32 weights of one block, as the forward pass reads them. */
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

/* The matrices of a loaded block as stored (see param.h). */
typedef struct
{
  AgcParam q, k, v, out, fc1, fc2;
} AgcStoredBlock;

typedef struct
{
  AgcTowerConfig config;
  /* [config.layers].  Loaded blocks point into the checkpoint or into owned;
   * their matrix pointers are NULL for half-precision layers, which are
   * converted from stored[] into scratch when they run.  Blocks built by
   * hand (tests) own each array and have stored == NULL. */
  AgcBlock *blocks;
  AgcStoredBlock *stored; /* [config.layers] or NULL */
  GPtrArray *owned;       /* copies made at load, or NULL */
  /* [config.layers]: float32 layers packed for gemm-packed.h on their first
   * run, or NULL (blocks built by hand, no AVX2) */
  struct AgcPackedBlock *packed;
  /* [config.layers] while int8 is on (agc_transformer_set_int8): layers
   * quantised for gemm-int8.h on their first run; NULL while off */
  struct AgcInt8Block *int8;
  const AgcWeights *weights; /* what loaded blocks were viewed in, or NULL */
  AgcArena *scratch;      /* reused activations; NULL: allocated per call */
} AgcTransformer;

/* Loads blocks named in the Hugging Face layout under prefix, e.g.
 * "vision_model.encoder.layers.".  Nothing big is copied: float32 q, k and v
 * stay apart in the file (three GEMMs into one fused qkv activation), half-
 * precision ones are converted into one fused [3D, D] matrix per layer.
 * weights must outlive the transformer: float32 and half-precision matrices
 * are used in place. */
gboolean agc_transformer_load (AgcTransformer *transformer, const AgcWeights *weights,
                               const char *prefix, const AgcTowerConfig *config, GError **error);
void agc_transformer_clear (AgcTransformer *transformer);

/* Drops layer's packed (and int8) matrices after its stored ones were
 * replaced: the next forward packs (quantises) the new ones. */
void agc_transformer_forget_packed (AgcTransformer *transformer, int layer);

/* On: the four weight GEMMs of every block (qkv, out_proj, fc1, fc2) run
 * on gemm-int8.h, each layer quantised from its stored matrices on its first
 * run and kept (a quarter of their float32 size); everything else stays
 * float32.  Off: back to float32, the int8 matrices freed.
 * AGC_ERROR_UNSUPPORTED when turning on where agc_int8_available () is
 * FALSE or the blocks were built by hand (nothing stored to quantise). */
gboolean agc_transformer_set_int8 (AgcTransformer *transformer, gboolean int8, GError **error);
gboolean agc_transformer_get_int8 (const AgcTransformer *transformer);

/* x[batch, n_tokens, D] in place.  causal: token t attends to tokens <= t. */
gboolean agc_transformer_forward (const AgcTransformer *transformer, float *x, int batch,
                                  int n_tokens, gboolean causal, GError **error);

/* Sequences of different lengths packed one after another: x[sum of
 * lengths, D] in place, sequence s in the lengths[s] rows after those of
 * sequences 0 .. s-1.  All tokens of all sequences go through each
 * projection as one GEMM; attention stays within each sequence. */
gboolean agc_transformer_forward_packed (const AgcTransformer *transformer, float *x, int n_seqs,
                                         const int *lengths, gboolean causal, GError **error);

/* agc_set_gemm_only (agriclip.h): TRUE while the towers run GEMMs only. */
gboolean agc_get_gemm_only (void);
