/* contrastive.h — contrastive fine-tuning of both towers of a CLIP on
 * image-text pairs (issue 16, part 3): the last K blocks and the head of
 * each tower, and the learned logit scale, with the pretraining loss
 * (clip-train.h).
 *
 * The frozen layers below run once per image and per caption with the
 * inference forward; a step starts from their outputs, image_hidden[B, Tv,
 * D] (the input of vision block Lv - Kv) and the captions' packed
 * text_hidden (the input of text block Lt - Kt, agc_text_tower_forward_hidden),
 * and goes through each tower's training mode for its top:
 *   image: Kv blocks -> class token -> ln_post -> @ visual_projection^T -> L2
 *   text:  Kt causal blocks -> end-of-text token -> final_layer_norm
 *          -> @ text_projection^T -> L2
 *   loss:  agc_clip_loss_backward (symmetric InfoNCE over the batch, scale
 *          exp(log_scale))
 * then clips the global gradient norm (all three parts together), takes one
 * AdamW step at the scheduled learning rate (optimizer.h; weight decay on
 * the matrices only, not on biases, norms or the scale) and clamps
 * log_scale to [0, ln 100] as CLIP does. */
#pragma once

#include "nn/text-tower.h"
#include "nn/vision-tower.h"
#include "train/optimizer.h"

/* Every trainable tensor, carved out of one allocation in this order: one
 * layout for weights, gradients and AdamW moments. */
typedef struct
{
  AgcVisionParams vision; // the image tower's top: blocks [Kv] lowest first, ln_post, projection
  AgcTextParams text;     // the text tower's top: blocks [Kt], final_layer_norm, projection
  float *log_scale;       // [1]: the scale is exp of it
  size_t n_floats;        // of memory
  float *memory;          // owns every array above
} AgcContrastiveWeights;

/* The sizes: each tower's config with layers = K (its trained blocks). */
typedef struct
{
  AgcTowerConfig vision, text;
  int embed_dim;    // E
  int image_tokens; // Tv = (S / p)^2 + 1
} AgcContrastiveShape;

AgcContrastiveWeights *agc_contrastive_weights_new (const AgcContrastiveShape *shape);
void agc_contrastive_weights_free (AgcContrastiveWeights *weights);
/* dst = src (of the same shape). */
void agc_contrastive_weights_copy (AgcContrastiveWeights *dst, const AgcContrastiveWeights *src);
/* The arrays in memory order (the image blocks' twelve each, ln_post
 * weight, bias, projection, the text blocks', final_layer_norm weight,
 * bias, projection, log_scale), their sizes and whether weight decay
 * applies; returns their count, at most AGC_CONTRASTIVE_MAX_ARRAYS. */
#define AGC_CONTRASTIVE_MAX_ARRAYS (2 * (12 * 64 + 3) + 1)
int agc_contrastive_weights_arrays (float **arrays, size_t *sizes, gboolean *decays,
                                    AgcContrastiveWeights *weights,
                                    const AgcContrastiveShape *shape);

typedef struct
{
  AgcContrastiveShape shape;
  AgcAdamWParams adamw;        /* with the schedule and the clip norm */
  AgcContrastiveWeights *weights, *grads;
  AgcTrainable *trainable;     /* over weights and grads: AdamW moments, decay mask */
  gint64 step;                 /* steps taken */
  int batch;                   /* what the activations are sized for */
  AgcVisionActs *vision_acts;  /* the tops' */
  AgcTextActs *text_acts;
} AgcContrastive;

/* Starts from a copy of start. */
AgcContrastive *agc_contrastive_new (const AgcContrastiveShape *shape,
                                     const AgcContrastiveWeights *start,
                                     const AgcAdamWParams *adamw);
void agc_contrastive_free (AgcContrastive *cs);

/* One step on batch pairs: image_hidden[batch, Tv, D] and text_hidden
 * (packed: caption b's text_lengths[b] rows of W).  Returns the loss
 * before the step; *grad_norm (may be NULL) gets the norm before
 * clipping. */
double agc_contrastive_step (AgcContrastive *cs, double *grad_norm, const float *image_hidden,
                             const float *text_hidden, const int *text_lengths, int batch);

/* Embeddings through weights, L2-normalised, without training:
 * image_out[batch, E] of image_hidden[batch, Tv, D] (NULL: none) and
 * text_out[batch, E] of the packed text_hidden (NULL: none).  The
 * activations are cs's, sized for batch (a step after re-sizes them). */
void agc_contrastive_embed (AgcContrastive *cs, const AgcContrastiveWeights *weights,
                            float *image_out, const float *image_hidden, float *text_out,
                            const float *text_hidden, const int *text_lengths, int batch);
