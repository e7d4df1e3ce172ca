/* backward.h — the layers fine-tuning differentiates, forward and backward
 * side by side (llm.c style).  The forwards of the block's layers are
 * inference's (ops.h, linear.h, attention.h), asked to keep what these
 * backwards need (layer-norm statistics, attention probabilities, values
 * before the activation); the others are here.
 *
 * Conventions: outputs first, then inputs, weights, sizes; matrices
 * row-major, linear weights [out_features, in_features] as PyTorch stores
 * them.  Every backward ADDS into its gradients (dx, dweight, ...): zeroing
 * them is the caller's explicit step, so gradients of a tensor used twice
 * (the residual stream) simply accumulate.  A gradient pointer documented
 * "may be NULL" is skipped. */
#pragma once

#include "kernels/activation.h"

#include <glib.h>

#include <stddef.h>

/* Backward of out[n_rows, width] = (x - mean) * rstd * weight + bias, from
 * the mean[n_rows] and rstd[n_rows] the forward kept
 * (agc_bias_layernorm_forward, ops.h). */
void agc_layernorm_backward (float *dx, float *dweight, float *dbias, const float *dout,
                             const float *x, const float *weight, const float *mean,
                             const float *rstd, int n_rows, int width);

/* Backward of out[n_rows, n_out] = x[n_rows, n_in] @ weight[n_out, n_in]^T + bias
 * (agc_linear_forward): dx, dbias may be NULL. */
void agc_linear_backward (float *dx, float *dweight, float *dbias, const float *dout,
                          const float *x, const float *weight, int n_rows, int n_in, int n_out);

/* Backward of out[n] = act(x[n]), from the input x (kept by the forward:
 * AgcLinearEpilogue.pre_act, linear.h). */
void agc_act_backward (float *dx, const float *dout, const float *x, size_t n, AgcActivation act);

/* Backward of multi-head self-attention (attention.h) of `batch` sequences
 * of n_tokens from q, k, v (biases included) in qkv[batch * n_tokens, 3D]
 * (columns q, then k, then v; head h is columns h*hd .. h*hd+hd-1 of each)
 * and the probabilities att[batch, heads, T, T] the forward kept
 * (AgcAttention.probs; zero above the diagonal when causal). */
void agc_attention_backward (float *dqkv, const float *dout, const float *qkv, const float *att,
                             int batch, int n_tokens, int width, int heads);

/* out[n_rows, width] = x / ||x|| per row (a zero row stays zero). */
void agc_l2_normalize_forward_train (float *out, const float *x, int n_rows, int width);
void agc_l2_normalize_backward (float *dx, const float *dout, const float *x, int n_rows,
                                int width);

/* Weighted cross-entropy of logits[n, C] against labels[n], PyTorch's
 * cross_entropy with weight=class_weights and mean reduction:
 * Σ_i cw[y_i] · CE(logits_i, y_i) / Σ_i cw[y_i] (class_weights NULL: all 1),
 * returned; logits are replaced by dloss/dlogits.  The loss of the
 * contrastive fine-tuning below and of the linear probe (probe.h). */
double agc_cross_entropy_backward (float *logits, const int *labels, const float *class_weights,
                                   int n, int n_classes);

/* The contrastive image -> class loss against fixed class (prompt)
 * embeddings: logits[n, C] = logit_scale · image[n, E] @ text[C, E]^T,
 * loss = Σ_i cw[y_i] · CE(logits_i, y_i) / Σ_i cw[y_i] (PyTorch's
 * cross_entropy with weight=cw, mean; class_weights NULL: all 1).  Both
 * embeddings are expected L2-normalised.  Adds dloss/dimage into dimage and,
 * unless NULL, dloss/dtext into dtext.  Returns the loss (0 for n = 0). */
double agc_contrastive_loss_backward (float *dimage, float *dtext, const float *image,
                                      const float *text, const int *labels,
                                      const float *class_weights, float logit_scale, int n,
                                      int dim, int n_classes);

/* ---- whole-CLIP training (clip-train.h) ---------------------------------- */

/* CLIP's symmetric contrastive loss over a batch of n matching pairs:
 * logits[n, n] = scale · image[n, E] @ text[n, E]^T with scale =
 * exp(log_scale), pair i the right answer of row i and of column i,
 * loss = (CE(rows) + CE(columns)) / 2, each a mean over the n pairs.  Both
 * embeddings are expected L2-normalised.  Adds dloss/dimage into dimage,
 * dloss/dtext into dtext and dloss/dlog_scale into *dlog_scale (each may be
 * NULL).  Returns the loss (0 for n = 0). */
double agc_clip_loss_backward (float *dimage, float *dtext, float *dlog_scale,
                               const float *image, const float *text, float log_scale, int n,
                               int dim);

/* Embedding lookup: out[n, width] = table[ids[i]] (ids checked by the
 * caller).  The backward adds dout's rows into the rows of dtable they came
 * from (a scatter-add: a repeated id collects every occurrence). */
void agc_embedding_forward (float *out, const int32_t *ids, const float *table, int n,
                            int width);
void agc_embedding_backward (float *dtable, const float *dout, const int32_t *ids, int n,
                             int width);

/* Pooling one row per sequence: out[n_seqs, width] = x[rows[s]] (the class
 * token, the end-of-text token).  The backward adds dout[s] into dx[rows[s]];
 * the other rows of dx are left alone. */
void agc_rows_gather (float *out, const float *x, const int *rows, int n_seqs, int width);
void agc_rows_gather_backward (float *dx, const float *dout, const int *rows, int n_seqs,
                               int width);

/* The ViT patch embedding, a stride-p convolution without bias done as one
 * GEMM on image patches: pixels[batch, 3, S, S] -> out[batch, T, D] with
 * T = (S/p)^2 + 1, row 0 of each image left 0 for its class token, rows 1..
 * the patches in raster order.  weight is the conv kernel [D, 3, p, p].
 * patches[batch * T, 3 p p] receives the im2col matrix (zero rows for the
 * class tokens): the backward needs it.  The input pixels get no gradient. */
void agc_patch_embed_forward_train (float *out, float *patches, const float *pixels,
                                    const float *weight, int batch, int image_size,
                                    int patch_size, int width);
void agc_patch_embed_backward (float *dweight, const float *dout, const float *patches,
                               int batch, int image_size, int patch_size, int width);
