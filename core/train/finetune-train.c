/* finetune-train.c — agc_train for method "finetune", as a method of the
 * trainer (trainer.h): the last K blocks of a ViT image tower, ln_post and
 * the projection trained contrastively against the fixed zero-shot class
 * embeddings of the tags' prompts (finetune.h takes the steps), and an
 * adapter holding the new tensors under their Hugging Face names.
 *
 * The frozen blocks below run once per image, at the start, with the
 * inference forward (agc_vision_tower_forward_hidden); their output
 * hidden[T, D] is kept in memory for every image: T·D·4 bytes each (ViT-B/32:
 * 50·768·4 = 150 KiB, ViT-B/16: 591 KiB, ViT-L/14: 1 MiB), refused above
 * HIDDEN_LIMIT.  They are not cached on disk: a resumed run computes them
 * again, the same way, so the training that follows is the same.
 *
 * Determinism is what makes resuming exact, as for the probe: the split
 * and each epoch's batch order come from (seed, class) and (seed, epoch)
 * alone, and a checkpoint holds every number the next batch reads (weights,
 * AdamW moments, step, the position inside an interrupted epoch). */
#include "train/finetune.h"

#include "models/adapter.h"
#include "train/dataset.h"
#include "models/embedding-cache.h"
#include "kernels/ops.h"
#include "train/train-common.h"
#include "models/vit-encoder.h"

#include <math.h>
#include <string.h>

/* Shuffle streams: the split uses the class index (< 2^32), epoch e this. */
#define EPOCH_STREAM(e) (((guint64) 1 << 32) | (guint64) (e))

/* Hidden states kept in memory at most (about 27,000 ViT-B/32 images). */
#define HIDDEN_LIMIT ((guint64) 4 << 30)

enum
{
  IMAGE_BATCH = 8,  /* images per frozen forward */
  EVAL_BATCH = 32,  /* images per evaluation forward */
  MAX_ARRAYS = 12 * 64 + 3,
};

typedef struct
{
  const AgcTrainParams *params;
  AgcModel *model;
  AgcVisionTower *tower;
  AgcTowerConfig config; /* the tower's, layers = K for the trained top */
  int n_blocks;          /* K */
  int first_layer;       /* L - K */
  int n_tokens, width, dim, n_classes;
  size_t image_floats;   /* T · D */
  float *hidden;         /* [n_images, T, D] input of block L - K */
  int *class_of;         /* [n_images] */
  AgcTrainSplit split;
  float *text;           /* [C, E] L2-normalised class embeddings */
  float logit_scale;
  AgcArena arena;        /* the evaluation transformer's activations */
  AgcFinetuneWeights *original; /* the top of the tower as loaded: the start */
  AgcFinetune *ft;       /* the weights being trained, their moments and step */
  AgcFinetuneWeights *best;
  AgcFinetuneRun in_epoch;
} Fit;

static void
fit_clear (Fit *fit)
{
  g_free (fit->hidden);
  g_free (fit->class_of);
  agc_train_split_clear (&fit->split);
  g_free (fit->text);
  agc_arena_clear (&fit->arena);
  agc_finetune_free (fit->ft);
  agc_finetune_weights_free (fit->best);
  agc_finetune_weights_free (fit->original);
}

/* ---- the images: decoded, preprocessed, through the frozen blocks ------------- */

/* The frozen forward of pixels[n] into the next n hidden rows. */
static gboolean
flush_batch (Fit *fit, const float *pixels, int n, int *n_done, GError **error)
{
  if (n == 0)
    return TRUE;
  float *out = fit->hidden + (size_t) *n_done * fit->image_floats;
  if (!agc_vision_tower_forward_hidden (fit->tower, pixels, n, fit->first_layer, out, error))
    return FALSE;
  *n_done += n;
  return TRUE;
}

/* Decodes every file (skipping and reporting the unreadable ones), runs
 * the frozen blocks, and splits.  fingerprint receives the class and
 * content hash of each image kept. */
static gboolean
prepare (Fit *fit, AgcTrainResult *result, GString *fingerprint, AgcDataset *data,
         AgcModel *model, GCancellable *cancellable, GError **error)
{
  const AgcTrainParams *params = fit->params;
  int n_files = data->n_files;
  guint64 need = (guint64) n_files * fit->image_floats * sizeof (float);
  if (need > HIDDEN_LIMIT)
    {
      g_autofree char *shown = g_filename_display_name (data->dir);
      g_set_error (error, AGC_ERROR, AGC_ERROR_INPUT,
                   "%s: %d images need %" G_GUINT64_FORMAT " MiB of hidden states for "
                   "finetune (%zu KiB each), more than the %" G_GUINT64_FORMAT " MiB allowed; "
                   "use at most %" G_GUINT64_FORMAT " images, or the probe method",
                   shown, n_files, need >> 20, fit->image_floats * sizeof (float) >> 10,
                   HIDDEN_LIMIT >> 20,
                   HIDDEN_LIMIT / (fit->image_floats * sizeof (float)));
      return FALSE;
    }
  fit->hidden = g_try_malloc (MAX (need, 1));
  if (fit->hidden == NULL)
    {
      g_set_error (error, AGC_ERROR, AGC_ERROR_INPUT,
                   "not enough memory for the hidden states of %d images (%" G_GUINT64_FORMAT
                   " MiB)", n_files, need >> 20);
      return FALSE;
    }
  fit->class_of = g_new (int, MAX (n_files, 1));
  int s = agc_model_image_size (model);
  size_t image_len = (size_t) 3 * s * s;
  float *pixels = g_new (float, IMAGE_BATCH * image_len); // [IMAGE_BATCH, 3, S, S]
  int n_done = 0, n_pending = 0, n_skipped = 0;
  gboolean ok = TRUE;
  for (int i = 0; ok && i < n_files; i++)
    {
      if (g_cancellable_is_cancelled (cancellable))
        {
          g_set_error (error, AGC_ERROR, AGC_ERROR_CANCELLED, "training cancelled");
          ok = FALSE;
          break;
        }
      GError *problem = NULL;
      char hash[AGC_SHA256_HEX];
      AgcImage *image = agc_file_sha256 (hash, data->files[i], &problem)
                            ? agc_image_load (data->files[i], &problem)
                            : NULL;
      if (image != NULL
          && !agc_model_preprocess (model, image, pixels + n_pending * image_len, &problem))
        g_prefix_error (&problem, "%s: ", data->files[i]);
      agc_image_free (image);
      if (problem != NULL)
        {
          n_skipped++;
          agc_train_report_problem (params, problem);
          g_error_free (problem);
        }
      else
        {
          int c = data->class_of[i];
          fit->class_of[n_done + n_pending++] = c;
          g_string_append_printf (fingerprint, "image %d %s\n", c, hash);
          if (n_pending == IMAGE_BATCH)
            {
              ok = flush_batch (fit, pixels, n_pending, &n_done, error);
              n_pending = 0;
            }
        }
      agc_train_report (params, AGC_TRAIN_STAGE_EMBED, i + 1, n_files, NAN, NAN, NAN);
    }
  ok = ok && flush_batch (fit, pixels, n_pending, &n_done, error);
  ok = ok && agc_train_check_classes (data, fit->class_of, n_done, error);
  if (ok)
    {
      result->n_images = n_done;
      result->n_skipped = n_skipped;
      agc_train_split (&fit->split, fit->class_of, n_done, fit->n_classes, params->val_fraction,
                       params->seed);
    }
  g_free (pixels);
  return ok;
}

/* The L2-normalised zero-shot class embeddings [C, E] of the prompts. */
static gboolean
class_embeddings (Fit *fit, AgcModel *model, const AgcLabelSet *labels,
                  GCancellable *cancellable, GError **error)
{
  AgcClassifier *classifier = agc_classifier_new (model, labels, cancellable, error);
  if (classifier == NULL)
    return FALSE;
  fit->text = g_new (float, (size_t) fit->n_classes * fit->dim);
  float *bias = g_new (float, fit->n_classes);
  agc_classifier_head (classifier, fit->text, bias); // logit_scale · classes
  for (int c = 0; c < fit->n_classes; c++)
    agc_l2_normalize (fit->text + (size_t) c * fit->dim, fit->dim);
  g_free (bias);
  agc_classifier_free (classifier);
  return TRUE;
}

/* ---- evaluation: the trained top with the inference forward (vision-tower.h) -------- */

/* out[n, E] (L2-normalised) for the images idx[n], through weights. */
static gboolean
embed_top (Fit *fit, float *out, const AgcFinetuneWeights *w, const int *idx, int n,
           GError **error)
{
  float *x = g_new (float, (size_t) n * fit->image_floats); // [n, T, D]
  for (int j = 0; j < n; j++)
    memcpy (x + (size_t) j * fit->image_floats, fit->hidden + (size_t) idx[j] * fit->image_floats,
            fit->image_floats * sizeof (float));
  gboolean ok = agc_vision_top_forward (out, x, n, fit->n_tokens, &w->top, &fit->config, fit->dim,
                                        &fit->arena, error);
  for (int j = 0; ok && j < n; j++)
    agc_l2_normalize (out + (size_t) j * fit->dim, fit->dim);
  g_free (x);
  return ok;
}

/* The class-balanced validation loss (mean of the per-class mean
 * cross-entropies of logit_scale · cos) and the share of validation images
 * right; NaN without validation images. */
static gboolean
evaluate (double *loss, double *accuracy, Fit *fit, const AgcFinetuneWeights *w, GError **error)
{
  const AgcTrainSplit *split = &fit->split;
  *loss = *accuracy = NAN;
  if (split->n_val == 0)
    return TRUE;
  int e = fit->dim, n_classes = fit->n_classes;
  float *emb = g_new (float, (size_t) EVAL_BATCH * e);
  double *z = g_new (double, n_classes);
  double weighted = 0.0, total_weight = 0.0;
  int right = 0;
  gboolean ok = TRUE;
  for (int start = 0; ok && start < split->n_val; start += EVAL_BATCH)
    {
      int n = MIN (EVAL_BATCH, split->n_val - start);
      ok = embed_top (fit, emb, w, split->val + start, n, error);
      for (int j = 0; ok && j < n; j++)
        {
          int y = fit->class_of[split->val[start + j]], best = 0;
          double max = -INFINITY, sum = 0.0;
          for (int c = 0; c < n_classes; c++)
            {
              double dot = 0.0;
              for (int i = 0; i < e; i++)
                dot += (double) emb[(size_t) j * e + i] * fit->text[(size_t) c * e + i];
              z[c] = fit->logit_scale * dot;
              if (z[c] > max)
                max = z[c], best = c;
            }
          for (int c = 0; c < n_classes; c++)
            sum += exp (z[c] - max);
          double cw = split->val_weights[y];
          weighted += cw * (max + log (sum) - z[y]);
          total_weight += cw;
          right += best == y;
        }
    }
  g_free (z);
  g_free (emb);
  if (ok)
    {
      *loss = weighted / total_weight;
      *accuracy = (double) right / split->n_val;
    }
  return ok;
}

/* ---- training ----------------------------------------------------------------------- */

static int
n_batches (const Fit *fit)
{
  int batch = fit->params->batch_size;
  return (fit->split.n_train + batch - 1) / batch;
}

/* The rest of epoch: one step per batch of the epoch's seeded order, from
 * batch in_epoch.batch_done on.  Cancelling between batches keeps the
 * batches taken (the trainer's checkpoint, when they are on). */
static gboolean
run_epoch (Fit *fit, int epoch, GCancellable *cancellable, GError **error)
{
  const AgcTrainParams *params = fit->params;
  const AgcTrainSplit *split = &fit->split;
  int batch = params->batch_size;
  int *order = g_new (int, MAX (split->n_train, 1));
  for (int i = 0; i < split->n_train; i++)
    order[i] = split->train[i];
  agc_shuffle (order, split->n_train, params->seed, EPOCH_STREAM (epoch));
  int rows = MIN (batch, split->n_train);
  float *xb = g_new (float, (size_t) MAX (rows, 1) * fit->image_floats); // [rows, T, D]
  int *yb = g_new (int, MAX (rows, 1));
  gboolean ok = TRUE;
  for (int b = fit->in_epoch.batch_done; ok && b < n_batches (fit); b++)
    {
      if (g_cancellable_is_cancelled (cancellable))
        {
          g_set_error (error, AGC_ERROR, AGC_ERROR_CANCELLED,
                       "training cancelled in epoch %d (%d of %d batches done)", epoch, b,
                       n_batches (fit));
          ok = FALSE;
          break;
        }
      int start = b * batch, n = MIN (batch, split->n_train - start);
      for (int j = 0; j < n; j++)
        {
          int i = order[start + j];
          memcpy (xb + (size_t) j * fit->image_floats, fit->hidden + (size_t) i * fit->image_floats,
                  fit->image_floats * sizeof (float));
          yb[j] = fit->class_of[i];
        }
      double loss = agc_finetune_step (fit->ft, NULL, xb, n, fit->n_tokens, fit->text, yb,
                                       split->train_weights, fit->n_classes);
      fit->in_epoch.loss_sum += n * loss;
      fit->in_epoch.batch_done = b + 1;
    }
  g_free (yb);
  g_free (xb);
  g_free (order);
  return ok;
}

/* ---- settings, fingerprint, adapter ------------------------------------------------ */

static gboolean
check_settings (const AgcTrainParams *p, AgcModel *model, AgcVisionTower *tower, GError **error)
{
  if (tower == NULL)
    {
      g_autofree char *shown = g_filename_display_name (agc_model_path (model));
      g_set_error (error, AGC_ERROR, AGC_ERROR_UNSUPPORTED,
                   "%s: finetune trains the last blocks of a ViT image tower, and this model has "
                   "none (an AgriCLIP ResNet-50 model); use --method aligner or probe",
                   shown);
      return FALSE;
    }
  int layers = agc_vision_tower_config (tower)->layers;
  const char *problem = NULL;
  if (p->finetune_blocks < 1 || p->finetune_blocks > MIN (layers, 64))
    problem = "the number of blocks to train must be between 1 and the image tower's layers";
  else if (!(p->finetune_mix >= 0.0 && p->finetune_mix <= 1.0))
    problem = "the mix with the original weights must be between 0 and 1";
  else if (!(p->finetune_warmup >= 0.0 && p->finetune_warmup < 1e9))
    problem = "the warm-up must not be negative";
  if (problem != NULL)
    {
      g_set_error (error, AGC_ERROR, AGC_ERROR_INPUT,
                   "training settings: %s (blocks %d, the model has %d; mix %g; warm-up %g)",
                   problem, p->finetune_blocks, layers, p->finetune_mix, p->finetune_warmup);
      return FALSE;
    }
  return TRUE;
}

static void
add_finetune_settings (JsonBuilder *b, const AgcTrainParams *p)
{
  agc_json_add_int (b, "blocks", p->finetune_blocks);
  agc_json_add_number (b, "mix", p->finetune_mix);
  agc_json_add_number (b, "warmup", p->finetune_warmup);
  agc_json_add_number (b, "clip_norm", agc_finetune_default_params ().adamw.clip_norm);
}

/* The tensors of the best weights under their Hugging Face names, q, k
 * and v apart, and the settings. */
static char *
finetune_adapter (gpointer self, GArray *views, GPtrArray *names, const char *data_dir)
{
  const Fit *fit = self;
  const AgcFinetuneWeights *w = fit->best;
  agc_tower_top_tensor_views (views, names, &agc_vision_tower_names, &fit->config,
                              w->top.blocks, fit->n_blocks, fit->first_layer,
                              w->top.post_ln_weight, w->top.post_ln_bias, w->top.projection,
                              fit->dim);
  return agc_train_settings_json (
      fit->params, data_dir, "AdamW, warm-up + cosine, gradient norm clipped at 1",
      "class-weighted contrastive (image vs. prompt classes)", add_finetune_settings);
}

/* ---- the method's table ---------------------------------------------------------- */

static gboolean
finetune_prepare (gpointer self, AgcTrainerRun *run, AgcTrainResult *result, GString *images,
                  AgcDataset *data, GCancellable *cancellable, GError **error)
{
  (void) run;
  Fit *fit = self;
  fit->n_classes = agc_label_set_n_classes (data->labels);
  // the starting point: copies of the top of the tower
  fit->original = agc_finetune_weights_new (&fit->config, fit->n_blocks, fit->dim);
  agc_vision_tower_copy_top (fit->tower, fit->first_layer, &fit->original->top);
  if (!prepare (fit, result, images, data, fit->model, cancellable, error)
      || !class_embeddings (fit, fit->model, data->labels, cancellable, error))
    return FALSE;
  result->n_classes = fit->n_classes;
  result->n_train = fit->split.n_train;
  result->n_val = fit->split.n_val;
  return TRUE;
}

static gboolean
finetune_validate (gpointer self, AgcTrainerWeights which, double *loss, double *accuracy,
                   GError **error)
{
  Fit *fit = self;
  const AgcFinetuneWeights *w = which == AGC_TRAINER_START     ? fit->original
                                : which == AGC_TRAINER_CURRENT ? fit->ft->weights
                                                               : fit->best;
  return evaluate (loss, accuracy, fit, w, error);
}

static void
finetune_start (gpointer self)
{
  Fit *fit = self;
  const AgcTrainParams *params = fit->params;
  AgcFinetuneParams fp = agc_finetune_default_params ();
  fp.adamw = agc_top_adamw (params, n_batches (fit));
  fp.logit_scale = fit->logit_scale;
  agc_finetune_free (fit->ft);
  fit->ft = agc_finetune_new (&fit->config, fit->dim, fit->original, &fp);
  agc_finetune_weights_free (fit->best);
  fit->best = agc_finetune_weights_new (&fit->config, fit->n_blocks, fit->dim);
  agc_finetune_weights_copy (fit->best, fit->original, &fit->config, fit->dim);
  fit->in_epoch = (AgcFinetuneRun){ 0 };
}

static gboolean
finetune_epoch (gpointer self, const AgcTrainerRun *run, double *train_loss,
                GCancellable *cancellable, GError **error)
{
  Fit *fit = self;
  if (!run_epoch (fit, run->epoch + 1, cancellable, error))
    return FALSE;
  *train_loss = fit->in_epoch.loss_sum / MAX (fit->split.n_train, 1);
  fit->in_epoch = (AgcFinetuneRun){ 0 };
  return TRUE;
}

static void
finetune_keep (gpointer self, int epoch)
{
  (void) epoch;
  Fit *fit = self;
  agc_finetune_weights_copy (fit->best, fit->ft->weights, &fit->config, fit->dim);
}

/* WiSE-FT: the kept epoch's weights mixed with the original ones. */
static void
finetune_finish (gpointer self)
{
  Fit *fit = self;
  float *kept[MAX_ARRAYS], *start[MAX_ARRAYS];
  size_t sizes[MAX_ARRAYS];
  int n = agc_finetune_weights_arrays (kept, sizes, NULL, fit->best, &fit->config, fit->dim);
  agc_finetune_weights_arrays (start, sizes, NULL, fit->original, &fit->config, fit->dim);
  for (int i = 0; i < n; i++)
    agc_finetune_interpolate (kept[i], start[i], kept[i], sizes[i], fit->params->finetune_mix);
}

/* Beside the shared settings: not patience (it only cuts the same sequence
 * of epochs shorter) nor the mix (applied when writing), but the epochs,
 * which set the learning-rate schedule. */
static void
finetune_fingerprint (gpointer self, GString *text)
{
  agc_top_fingerprint (text, ((Fit *) self)->params);
}

static gint64
finetune_steps (gpointer self)
{
  return ((Fit *) self)->ft->step;
}

static gboolean
finetune_checkpoint_write (gpointer self, const char *path, const AgcTrainerRun *run,
                           const char *fingerprint, GError **error)
{
  Fit *fit = self;
  return agc_finetune_checkpoint_write (path, fit->ft, fit->best, run, &fit->in_epoch,
                                        fingerprint, error);
}

static gboolean
finetune_checkpoint_read (gpointer self, const char *path, AgcTrainerRun *run,
                          const char *fingerprint, GError **error)
{
  Fit *fit = self;
  return agc_finetune_checkpoint_read (path, fit->ft, fit->best, run, &fit->in_epoch,
                                       fingerprint, error);
}

static const AgcTrainerMethod finetune_method = {
  .name = "finetune",
  .prepare = finetune_prepare,
  .validate = finetune_validate,
  .start = finetune_start,
  .epoch = finetune_epoch,
  .keep = finetune_keep,
  .finish = finetune_finish,
  .adapter = finetune_adapter,
  .fingerprint = finetune_fingerprint,
  .steps = finetune_steps,
  .checkpoint_write = finetune_checkpoint_write,
  .checkpoint_read = finetune_checkpoint_read,
};

gboolean
agc_train_finetune (AgcModel *model, const char *data_dir, const char *out_path,
                    const AgcTrainParams *params, AgcTrainResult *result,
                    GCancellable *cancellable, GError **error)
{
  AgcVisionTower *tower = agc_model_vision_tower (model);
  if (!check_settings (params, model, tower, error))
    return FALSE;
  g_autofree char *identity = agc_model_identity (model, error);
  if (identity == NULL)
    return FALSE;
  const AgcTowerConfig *tc = agc_vision_tower_config (tower);
  Fit fit = { .params = params, .model = model, .tower = tower, .config = *tc,
              .n_blocks = params->finetune_blocks,
              .first_layer = tc->layers - params->finetune_blocks,
              .n_tokens = agc_vision_tower_n_tokens (tower), .width = tc->width,
              .dim = agc_vision_tower_embed_dim (tower),
              .logit_scale = agc_model_logit_scale (model) };
  fit.config.layers = fit.n_blocks;
  fit.image_floats = (size_t) fit.n_tokens * fit.width;
  gboolean ok = agc_trainer_run (&finetune_method, &fit, model, identity, data_dir, out_path,
                                 params, result, cancellable, error);
  fit_clear (&fit);
  return ok;
}
