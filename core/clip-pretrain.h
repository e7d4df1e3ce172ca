/* clip-pretrain.h — training a small CLIP from scratch on a folder of
 * captioned images, written as a Hugging Face CLIP folder that loads like
 * any model.
 *
 * Data: DATA/captions.jsonl, one JSON object per line,
 *   {"image": "file.png", "caption": "a red circle on a blue ground"}
 * with the image path relative to DATA.  Blank lines are skipped; a bad
 * line, a missing or undecodable image is an error naming the file and line.
 * Every image goes through the model's preprocessing (CLIP's, at the model's
 * input size) once and stays in memory as 8-bit pixels (3 S² bytes each),
 * normalised a batch at a time; every caption is tokenised once.
 *
 * Training (clip-train.h): both towers from a seeded random initialisation,
 * the symmetric contrastive loss, AdamW with a linear warm-up and a cosine
 * decay to 0, global-norm clipping.  Batches are drawn from a seeded
 * shuffle each epoch; the last incomplete batch of an epoch is dropped.  The
 * same data, settings, seed and thread count give the same model.
 *
 * Output: OUT (which must not exist) with config.json, model.safetensors,
 * preprocessor_config.json and the tokenizer's vocab.json and merges.txt.
 * It is built in a temporary folder beside OUT and renamed into place at
 * the end, so OUT is either absent or complete.  There is no checkpoint: a
 * cancelled or failed run leaves nothing behind and starts again from 0. */
#pragma once

#include "clip-config.h"

typedef struct
{
  int epoch, n_epochs;     /* the epoch running, from 1 */
  gint64 step, n_steps;    /* steps taken, of all */
  double loss;             /* mean loss of the epoch's steps so far */
  double logit_scale;      /* exp of the learned log scale */
  double images_per_second;
} AgcPretrainProgress;

typedef void (*AgcPretrainProgressFunc) (const AgcPretrainProgress *progress,
                                         gpointer user_data);

typedef struct
{
  AgcClipConfig model;     /* vocab_size is taken from the tokenizer */
  int epochs;
  int batch_size;
  double lr;               /* peak AdamW learning rate */
  double weight_decay;     /* on matrices only */
  int warmup_steps;        /* < 0: 10 % of the steps */
  double clip_norm;        /* <= 0: no clipping */
  guint64 seed;            /* initial weights and batch order */
  int n_shards;            /* <= 0: one per thread (agc_threads_count) */
  AgcPretrainProgressFunc progress; /* after every step; may be NULL */
  gpointer user_data;
} AgcPretrainParams;

/* Starting values for the synthetic set of `agriclip synth` (64 px images,
 * patch 8, width 128, 3 blocks and 4 heads per tower, context 32,
 * embeddings of 128, 12 epochs of 128 pairs, lr 1e-3, weight decay 0.1,
 * clip norm 1).  Not yet tuned to the 90 % zero-shot target. */
AgcPretrainParams agc_pretrain_default_params (void);

typedef struct
{
  int n_pairs;
  gint64 steps;
  double final_loss;        /* mean loss of the last epoch */
  double logit_scale;       /* exp of the learned log scale */
  double seconds;           /* training alone, not loading */
  double images_per_second; /* training throughput */
} AgcPretrainResult;

/* Trains on data_dir/captions.jsonl with the tokenizer of tokenizer_dir
 * (vocab.json + merges.txt, agc_tokenizer_load_dir) and writes out_dir.
 * result may be NULL.  AGC_ERROR_CANCELLED when cancelled between steps. */
gboolean agc_pretrain (const char *data_dir, const char *tokenizer_dir, const char *out_dir,
                       const AgcPretrainParams *params, AgcPretrainResult *result,
                       GCancellable *cancellable, GError **error);
