/* clip-train.h — training a whole CLIP, both towers, from random weights
 * with the symmetric contrastive loss (clip-pretrain.c runs it on a folder
 * of captioned images).
 *
 *   image: pixels -> patch embedding (GEMM on im2col patches) + class
 *          embedding + positions -> ln_pre -> L blocks -> ln_post(class
 *          token) -> @ visual_projection^T
 *   text:  ids -> token embedding + positions -> L causal blocks ->
 *          final_layer_norm(end-of-text token) -> @ text_projection^T
 *   loss:  agc_clip_loss_backward on the L2-normalised pairs, with the
 *          learnable log_scale (clamped to [0, ln 100] after each step).
 *
 * A step runs the batch in shards, one per thread of the pool (threads.h),
 * each with its own activations and gradients and single-threaded BLAS:
 * shard s takes the samples [s B / n, (s + 1) B / n).  Only the loss sees the
 * whole batch.  Then the shards' gradients are summed, the global norm is
 * clipped and AdamW takes one step at the scheduled learning rate
 * (optimizer.h).  Weight decay applies to the linear and convolution
 * matrices and the projections, not to embeddings, positions, biases, norms
 * or the scale; so rows of the token table that no caption has used yet
 * keep zero moments and AdamW leaves them exactly alone: only rows seen so
 * far are updated (identical to a dense update, and 49408 rows cheaper).
 * Results depend on the shard count only through float rounding. */
#pragma once

#include "nn/text-tower.h"
#include "nn/vision-tower.h"
#include "train/optimizer.h"

/* Every tensor of the model, carved out of one allocation with the token
 * table last.  One layout for weights, gradients and AdamW moments. */
typedef struct
{
  AgcClipConfig config;
  AgcVisionParams vision;                   // vision-tower.h
  AgcTextParams text;                       // text-tower.h, its token table last
  float *log_scale;                         // [1], the scale is exp of it
  size_t n_dense;                           // floats before text.token_embedding
  float *memory;                            // owns everything
} AgcClipParams;

/* A tensor in Hugging Face CLIPModel naming: q, k and v are views into the
 * fused qkv arrays (their rows are consecutive). */
typedef struct
{
  char name[80];
  float *data;
  size_t size;
  int n_dims;
  int64_t shape[4];
  gboolean decay;
} AgcClipTensor;

/* All zero; agc_clip_params_init draws the initial weights. */
AgcClipParams *agc_clip_params_new (const AgcClipConfig *config);
void agc_clip_params_free (AgcClipParams *params);
/* open_clip's initialisation, from a seeded generator (deterministic
 * everywhere): token table N(0, 0.02), text positions N(0, 0.01), class
 * embedding, image positions and both projections N(0, D^-1/2); in the
 * blocks qkv N(0, D^-1/2), out_proj and fc2 N(0, D^-1/2 (2L)^-1/2), fc1
 * N(0, (2D)^-1/2); the patch kernel with PyTorch's conv variance
 * (1 / (3 · 3 p p)); biases 0, norm gains 1, log_scale ln(1 / 0.07). */
void agc_clip_params_init (AgcClipParams *params, guint64 seed);
/* Number of tensors: 16 per block + 14. */
int agc_clip_params_n_tensors (const AgcClipConfig *config);
/* Fills tensors[agc_clip_params_n_tensors]; returns the count. */
int agc_clip_params_tensors (AgcClipTensor *tensors, const AgcClipParams *params);

typedef struct AgcClipShard AgcClipShard;

typedef struct
{
  AgcClipConfig config;
  AgcAdamWParams opt;       // lr, betas, eps, weight decay, schedule, clip norm
  AgcClipParams *weights;   // owned
  AgcTrainable *trainable;  // over weights and grads: AdamW moments, decay mask
  AgcClipParams *grads;     // the last step's summed, clipped gradients (of the token
                            // table only the rows in step_rows are meaningful)
  int n_shards;
  AgcClipShard **shards;
  guint8 *token_seen;       // [V] flags: used by some step so far, by the last step
  GArray *seen_rows;        // int: token rows used by some step so far
  GArray *step_rows;        // int: token rows with a gradient in the last step
  gint64 step;              // steps taken
} AgcClipTrain;

/* Takes ownership of weights.  n_shards <= 0: agc_threads_count (). */
AgcClipTrain *agc_clip_train_new (AgcClipParams *weights, const AgcAdamWParams *opt,
                                  int n_shards);
void agc_clip_train_free (AgcClipTrain *train);

/* One step on pixels[batch, 3, S, S] (normalised) and their captions'
 * ids[batch, ctx] (start, tokens, end-of-text = the largest id, padding):
 * returns the loss before the step; *grad_norm (may be NULL) gets the norm
 * before clipping.  Ids must lie in [0, V). */
double agc_clip_train_step (AgcClipTrain *train, double *grad_norm, const float *pixels,
                            const int32_t *ids, int batch);

/* For a checkpoint: seen[V] gets 1 for the token rows used by some step so
 * far (the rows AdamW updates), 0 for the others. */
void agc_clip_train_seen_rows (guint8 *seen, const AgcClipTrain *train);
/* Resuming from a checkpoint: after the weights and moments were copied
 * back, sets the steps taken and the rows seen (seen[V] as above).  The
 * next step then equals the one the interrupted run would have taken. */
void agc_clip_train_restore (AgcClipTrain *train, gint64 step, const guint8 *seen);
