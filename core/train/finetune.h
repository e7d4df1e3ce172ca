/* finetune.h — contrastive fine-tuning of the top of the vision tower: the
 * last K residual blocks, ln_post and the projection, against fixed class
 * (prompt) embeddings.
 *
 * The frozen layers below run once per image with the inference forward;
 * a step starts from their output, hidden[B, T, D] (the input of block
 * L - K), and goes through the tower's training mode for its top
 * (vision-tower.h)
 *   K blocks -> class token -> ln_post -> @ projection^T -> L2 -> loss
 * with agc_contrastive_loss_backward's loss, then clips the global gradient
 * norm, and takes one AdamW step at the learning rate of a linear warm-up
 * followed by a cosine decay to 0 (optimizer.h).  Weight decay applies to
 * matrices only (not to biases and norm weights). */
#pragma once

#include "nn/block-train.h"
#include "nn/vision-tower.h"
#include "train/optimizer.h"
#include "train/trainer.h"

/* Every trainable tensor; one layout for weights, gradients and moments. */
typedef struct
{
  int n_blocks;          // K
  AgcVisionParams top;   // the tower's top (vision-tower.h): blocks [K] lowest first, ln_post,
                         // projection; the embedding's arrays NULL
  float *memory;         // owns every array of top (agc_vision_params_carve)
  size_t n_floats;       // of memory
} AgcFinetuneWeights;

AgcFinetuneWeights *agc_finetune_weights_new (const AgcTowerConfig *config, int n_blocks,
                                              int embed_dim);
void agc_finetune_weights_free (AgcFinetuneWeights *weights);
/* A tower's trained top as arrays: its blocks' (agc_block_train_arrays
 * order), then the final norm's weight and bias [D] and the projection
 * [E, D]; decays (may be NULL) says which decay (the matrices).  Returns
 * the count, 12 n_blocks + 3. */
int agc_tower_top_arrays (float **arrays, size_t *sizes, gboolean *decays, AgcBlock *blocks,
                          int n_blocks, const AgcTowerConfig *config, float *norm_weight,
                          float *norm_bias, float *projection, int embed_dim);
/* Arrays of weights in a fixed order (block 0's twelve, ..., ln_post weight,
 * bias, projection); returns their count, at most 12 K + 3. */
int agc_finetune_weights_arrays (float **arrays, size_t *sizes, gboolean *decays,
                                 AgcFinetuneWeights *weights, const AgcTowerConfig *config,
                                 int embed_dim);
/* dst = src, both of config and embed_dim. */
void agc_finetune_weights_copy (AgcFinetuneWeights *dst, AgcFinetuneWeights *src,
                                const AgcTowerConfig *config, int embed_dim);

typedef struct
{
  AgcAdamWParams adamw; /* with the schedule and the clip norm */
  float logit_scale;    /* CLIP's exp(logit_scale), e.g. 100 */
} AgcFinetuneParams;

/* lr 1e-5, betas 0.9 / 0.999, eps 1e-8, weight decay 0.1, no warm-up, one
 * step, clip norm 1, logit scale 100. */
AgcFinetuneParams agc_finetune_default_params (void);

typedef struct
{
  AgcTowerConfig config;
  int embed_dim;
  AgcFinetuneParams params;
  AgcFinetuneWeights *weights, *grads;
  AgcTrainable *trainable; /* over weights->memory and grads->memory: moments, decay mask */
  gint64 step;          /* steps taken */
  int batch, n_tokens;  /* what acts are sized for */
  AgcVisionActs *acts;  /* the top's, for batch sequences of n_tokens */
} AgcFinetune;

/* Starts from a copy of start (start->n_blocks blocks). */
AgcFinetune *agc_finetune_new (const AgcTowerConfig *config, int embed_dim,
                               const AgcFinetuneWeights *start, const AgcFinetuneParams *params);
void agc_finetune_free (AgcFinetune *ft);

/* One step on hidden[batch, n_tokens, D] with labels[batch] against
 * text[n_classes, E] (L2-normalised); class_weights may be NULL.  Returns
 * the loss before the step; *grad_norm (may be NULL) gets the gradient
 * norm before clipping. */
double agc_finetune_step (AgcFinetune *ft, double *grad_norm, const float *hidden, int batch,
                          int n_tokens, const float *text, const int *labels,
                          const float *class_weights, int n_classes);

/* WiSE-FT: out[n] = (1 - alpha) original + alpha finetuned (alpha 1: the
 * fine-tuned weights, 0: the original ones).  out may equal either input. */
void agc_finetune_interpolate (float *out, const float *original, const float *finetuned,
                               size_t n, double alpha);

/* ---- adapters' tensors (finetune-train.c, contrastive-train.c) ---- */

/* Appends a float32 view of data, shape [rows] (cols 0) or [rows, cols];
 * name must outlive views. */
void agc_tensor_views_add (GArray *views, const char *name, const float *data, int64_t rows,
                           int64_t cols);
/* One of a block's sixteen tensors as Hugging Face holds it: data [rows]
 * (cols 0) or [rows, cols]. */
typedef struct
{
  const char *suffix;  /* after "PREFIX.LAYER.", e.g. "self_attn.q_proj.weight" */
  float *data;
  int64_t rows, cols;
} AgcBlockTensor;

enum { AGC_BLOCK_TENSORS = 16 };

/* The sixteen tensors of block, in adapter order (q, k and v apart). */
void agc_block_tensors (AgcBlockTensor parts[AGC_BLOCK_TENSORS], const AgcBlock *block,
                        const AgcTowerConfig *config);
/* Appends the sixteen tensors of a training block under their Hugging Face
 * names "PREFIX.LAYER.*" (prefix e.g. "vision_model.encoder.layers"; q, k
 * and v apart); the names go to names, which owns them. */
void agc_block_tensor_views (GArray *views, GPtrArray *names, const AgcBlock *block,
                             const AgcTowerConfig *config, const char *prefix, int layer);

/* A tower's Hugging Face names: its blocks' prefix, its final norm's
 * weight and bias, its projection. */
typedef struct
{
  const char *layers, *norm_weight, *norm_bias, *projection;
} AgcTowerNames;

extern const AgcTowerNames agc_vision_tower_names, agc_text_tower_names;

/* Appends a tower's trained top under its Hugging Face names: blocks
 * [n_blocks] as layers first_layer.., the final norm [D] and the
 * projection [E, D]; names owns the names it makes. */
void agc_tower_top_tensor_views (GArray *views, GPtrArray *names, const AgcTowerNames *hf,
                                 const AgcTowerConfig *config, const AgcBlock *blocks,
                                 int n_blocks, int first_layer, const float *norm_weight,
                                 const float *norm_bias, const float *projection,
                                 int64_t embed_dim);

/* ---- training a tower's top (finetune-train.c, contrastive-train.c) ---- */

/* AdamW for params' learning rate and decay, warm-up + cosine over
 * params->max_epochs of batches_per_epoch steps, the gradient norm
 * clipped at 1. */
AgcAdamWParams agc_top_adamw (const AgcTrainParams *params, int batches_per_epoch);
/* The settings beside the shared ones that change the weights: the
 * blocks, the warm-up and the epochs (which set the schedule). */
void agc_top_fingerprint (GString *text, const AgcTrainParams *params);

/* ---- checkpoints (finetune-train.c) ---- */

/* Where a run is inside an epoch, beside the trainer's run and the
 * AgcFinetune's weights, moments and step. */
typedef struct
{
  int batch_done;       /* batches of epoch + 1 already taken (a cancelled epoch) */
  double loss_sum;      /* Σ batch size · loss over those batches */
} AgcFinetuneRun;

/* A checkpoint: the weights, AdamW moments and step of ft, the weights of
 * the best epoch (best, same layout), run, in_epoch and a fingerprint of
 * what produced them (model, data, settings).  Written atomically and
 * durably; agriclip.kind "checkpoint", so that it is never taken for an
 * adapter. */
gboolean agc_finetune_checkpoint_write (const char *path, AgcFinetune *ft,
                                        AgcFinetuneWeights *best, const AgcTrainerRun *run,
                                        const AgcFinetuneRun *in_epoch, const char *fingerprint,
                                        GError **error);
/* Fills ft, best, run and in_epoch from a checkpoint written for the same
 * fingerprint and sizes; fails (leaving them partly filled: start afresh
 * with new ones) otherwise. */
gboolean agc_finetune_checkpoint_read (const char *path, AgcFinetune *ft,
                                       AgcFinetuneWeights *best, AgcTrainerRun *run,
                                       AgcFinetuneRun *in_epoch, const char *fingerprint,
                                       GError **error);
