/* contrastive-train.c — agc_train for method "contrastive", as a method of
 * the trainer (trainer.h): the last K blocks and the heads of both towers
 * of a ViT CLIP, and the logit scale, trained on the image-text pairs of
 * DATA/captions.jsonl (pairs.h; `agriclip captions` writes them) with the
 * pretraining loss (contrastive.h takes the steps), and an adapter holding
 * the new tensors under their Hugging Face names.
 *
 * The frozen blocks below run once per image and per caption, at the start,
 * with the inference forward; their outputs stay in memory (an image's
 * Tv·D·4 bytes, a caption's length·W·4), refused above HIDDEN_LIMIT, and
 * are computed again, the same way, by a resumed run.
 *
 * Validation holds out a seeded share of the images (val_fraction; every
 * pair of a held-out image goes with it, so no photo is seen in training
 * under another caption): the validation loss is the same symmetric loss
 * over the held-out pairs in chunks of VAL_CHUNK, in file order; the
 * accuracy is image -> caption retrieval, the share of held-out pairs whose
 * image is closest to its own caption among all held-out captions (a
 * caption of the same image, or of the same words, counts as its own).
 *
 * The adapter's classes: those of PAIRS/photos when it is a tagged folder
 * (agriclip captions links the tagged folder there), so that classify
 * --adapter uses them; otherwise none.
 *
 * Determinism as for finetune: the split from the seed, each epoch's pair
 * order from (seed, epoch), a checkpoint holding every number the next
 * batch reads. */
#include "train/contrastive.h"

#include "support/error.h"
#include "formats/safetensors-write.h"
#include "formats/safetensors.h"
#include "models/embedding-cache.h"
#include "models/vit-encoder.h"
#include "nn/backward.h"
#include "train/checkpoint.h"
#include "train/finetune.h"
#include "train/pairs.h"
#include "train/train-common.h"
#include "train/trainer.h"

#include <math.h>
#include <string.h>

/* Shuffle streams: the split uses the class index (< 2^32), epoch e this. */
#define EPOCH_STREAM(e) (((guint64) 1 << 32) | (guint64) (e))

/* Hidden states kept in memory at most, images and captions together. */
#define HIDDEN_LIMIT ((guint64) 4 << 30)

enum
{
  IMAGE_BATCH = 8, /* images per frozen forward */
  TEXT_BATCH = 32, /* captions per frozen forward */
  EVAL_BATCH = 32, /* pairs per evaluation forward */
  VAL_CHUNK = 256, /* pairs per term of the validation loss */
  N_RUN = 6,       /* checkpoint: epoch, batch_done, loss_sum, best_epoch, best_val_loss, step */
};

typedef struct
{
  const AgcTrainParams *params;
  AgcModel *model;
  AgcVisionTower *vision;
  const AgcTextTower *text;
  AgcContrastiveShape shape;   /* layers = K of each tower */
  int vision_first, text_first; /* Lv - Kv, Lt - Kt */
  size_t image_floats;         /* Tv · D */
  int n_images;                /* readable images */
  float *image_hidden;         /* [n_images, Tv, D] input of vision block Lv - Kv */
  char (*image_hash)[AGC_SHA256_HEX]; /* [n_images] their contents' SHA-256 */
  int n_pairs;                 /* pairs of readable images */
  int *image_of;               /* [n_pairs] */
  char **captions;             /* [n_pairs], owned */
  int *text_length;            /* [n_pairs] tokens up to the end-of-text */
  size_t *text_offset;         /* [n_pairs] first float of each caption in text_hidden */
  float *text_hidden;          /* packed [sum of lengths, W] input of text block Lt - Kt */
  int n_train, n_val;          /* pairs */
  int *train, *val;            /* pair indices */
  AgcContrastiveWeights *original; /* the tops as loaded: the start */
  AgcContrastive *cs;
  AgcContrastiveWeights *best;
  int batch_done;              /* batches of the current epoch taken */
  double loss_sum;             /* Σ batch size · loss over those */
} Fit;

static void
fit_clear (Fit *fit)
{
  g_free (fit->image_hidden);
  g_free (fit->image_hash);
  g_free (fit->image_of);
  for (int i = 0; fit->captions != NULL && i < fit->n_pairs; i++)
    g_free (fit->captions[i]);
  g_free (fit->captions);
  g_free (fit->text_length);
  g_free (fit->text_offset);
  g_free (fit->text_hidden);
  g_free (fit->train);
  g_free (fit->val);
  agc_contrastive_free (fit->cs);
  agc_contrastive_weights_free (fit->best);
  agc_contrastive_weights_free (fit->original);
}

/* ---- the pairs: images and captions through the frozen blocks ---------------- */

static gboolean
flush_images (Fit *fit, const float *pixels, int n, GError **error)
{
  if (n == 0)
    return TRUE;
  float *out = fit->image_hidden + (size_t) fit->n_images * fit->image_floats;
  if (!agc_vision_tower_forward_hidden (fit->vision, pixels, n, fit->vision_first, out, error))
    return FALSE;
  fit->n_images += n;
  return TRUE;
}

/* Every distinct image of paths once, through the frozen blocks
 * (unreadable ones reported and their pairs left out); rows maps a path
 * kept to its row + 1. */
static gboolean
load_images (Fit *fit, GPtrArray *paths, GHashTable *rows, AgcTrainResult *result,
             GCancellable *cancellable, GError **error)
{
  const AgcTrainParams *params = fit->params;
  int n_paths = (int) paths->len;
  guint64 need = (guint64) n_paths * fit->image_floats * sizeof (float);
  if (need > HIDDEN_LIMIT)
    {
      g_set_error (error, AGC_ERROR, AGC_ERROR_INPUT,
                   "%d images need %" G_GUINT64_FORMAT " MiB of hidden states for contrastive "
                   "training, more than the %" G_GUINT64_FORMAT " MiB allowed",
                   n_paths, need >> 20, HIDDEN_LIMIT >> 20);
      return FALSE;
    }
  fit->image_hidden = g_try_malloc (MAX (need, 1));
  fit->image_hash = g_malloc ((size_t) MAX (n_paths, 1) * AGC_SHA256_HEX);
  if (fit->image_hidden == NULL)
    {
      g_set_error (error, AGC_ERROR, AGC_ERROR_INPUT,
                   "not enough memory for the hidden states of %d images", n_paths);
      return FALSE;
    }
  int s = agc_model_image_size (fit->model);
  size_t image_len = (size_t) 3 * s * s;
  float *pixels = g_new (float, IMAGE_BATCH * image_len); // [IMAGE_BATCH, 3, S, S]
  int n_pending = 0;
  gboolean ok = TRUE;
  for (int i = 0; ok && i < n_paths; i++)
    {
      if (agc_cancelled (cancellable, error, "training cancelled"))
        {
          ok = FALSE;
          break;
        }
      const char *path = paths->pdata[i];
      GError *problem = NULL;
      char *hash = fit->image_hash[fit->n_images + n_pending];
      AgcImage *image = agc_file_sha256 (hash, path, &problem)
                            ? agc_image_load (path, &problem)
                            : NULL;
      if (image != NULL
          && !agc_model_preprocess (fit->model, image, pixels + n_pending * image_len, &problem))
        g_prefix_error (&problem, "%s: ", path);
      agc_image_free (image);
      if (problem != NULL)
        {
          result->n_skipped++;
          agc_train_report_problem (params, problem);
          g_error_free (problem);
        }
      else
        {
          // its row, + 1 (NULL: not found)
          g_hash_table_insert (rows, (gpointer) path,
                               GINT_TO_POINTER (fit->n_images + n_pending + 1));
          if (++n_pending == IMAGE_BATCH)
            {
              ok = flush_images (fit, pixels, n_pending, error);
              n_pending = 0;
            }
        }
      agc_train_report (params, AGC_TRAIN_STAGE_EMBED, i + 1, n_paths, NAN, NAN, NAN);
    }
  ok = ok && flush_images (fit, pixels, n_pending, error);
  g_free (pixels);
  return ok;
}

/* The captions of the kept pairs through the frozen text blocks, packed. */
static gboolean
load_captions (Fit *fit, GCancellable *cancellable, GError **error)
{
  const AgcTowerConfig *tc = agc_text_tower_config (fit->text);
  int ctx = tc->context_length, w = tc->width;
  int32_t *ids = g_new (int32_t, (size_t) MAX (fit->n_pairs, 1) * ctx);
  fit->text_length = g_new (int, MAX (fit->n_pairs, 1));
  fit->text_offset = g_new (size_t, MAX (fit->n_pairs, 1));
  size_t rows = 0;
  for (int i = 0; i < fit->n_pairs; i++)
    {
      int32_t *row = ids + (size_t) i * ctx;
      if (!agc_model_tokenize (fit->model, fit->captions[i], row, error))
        {
          g_prefix_error (error, "caption \"%s\": ", fit->captions[i]);
          g_free (ids);
          return FALSE;
        }
      fit->text_length[i] = agc_text_ids_length (row, ctx);
      fit->text_offset[i] = rows * w;
      rows += fit->text_length[i];
    }
  guint64 need = (guint64) rows * w * sizeof (float);
  fit->text_hidden = need + fit->n_images * fit->image_floats * sizeof (float) <= HIDDEN_LIMIT
                       ? g_try_malloc (MAX (need, 1)) : NULL;
  gboolean ok = fit->text_hidden != NULL;
  if (!ok)
    g_set_error (error, AGC_ERROR, AGC_ERROR_INPUT,
                 "%d captions need %" G_GUINT64_FORMAT " MiB of hidden states: too many",
                 fit->n_pairs, need >> 20);
  for (int i = 0; ok && i < fit->n_pairs; i += TEXT_BATCH)
    ok = !agc_cancelled (cancellable, error, "training cancelled")
         && agc_text_tower_forward_hidden (fit->text, ids + (size_t) i * ctx,
                                           MIN (TEXT_BATCH, fit->n_pairs - i), fit->text_first,
                                           fit->text_hidden + fit->text_offset[i], error);
  g_free (ids);
  return ok;
}

/* The pairs of data_dir/captions.jsonl whose image reads, through the
 * frozen blocks; fingerprint gets a line per pair kept. */
static gboolean
load_pairs (Fit *fit, const char *data_dir, AgcTrainResult *result, GString *fingerprint,
            GCancellable *cancellable, GError **error)
{
  GPtrArray *paths = NULL, *captions = NULL;
  gboolean ok = agc_pairs_read (data_dir, &paths, &captions, error);
  // the distinct images, in order of first appearance
  GHashTable *rows = g_hash_table_new (g_str_hash, g_str_equal);
  GPtrArray *distinct = g_ptr_array_new ();
  GHashTable *seen = g_hash_table_new (g_str_hash, g_str_equal);
  for (guint i = 0; ok && i < paths->len; i++)
    if (g_hash_table_add (seen, paths->pdata[i]))
      g_ptr_array_add (distinct, paths->pdata[i]);
  ok = ok && load_images (fit, distinct, rows, result, cancellable, error);
  if (ok)
    {
      fit->image_of = g_new (int, MAX (paths->len, 1));
      fit->captions = g_new0 (char *, MAX (paths->len, 1));
      for (guint i = 0; i < paths->len; i++)
        {
          int row = GPOINTER_TO_INT (g_hash_table_lookup (rows, paths->pdata[i])) - 1;
          if (row < 0)
            continue;
          fit->image_of[fit->n_pairs] = row;
          fit->captions[fit->n_pairs++] = g_strdup (captions->pdata[i]);
          g_string_append_printf (fingerprint, "pair %s %s\n", fit->image_hash[row],
                                  (const char *) captions->pdata[i]);
        }
      result->n_images = fit->n_images;
    }
  if (ok && fit->n_pairs == 0)
    {
      g_set_error (error, AGC_ERROR, AGC_ERROR_INPUT, "%s: no pair has a readable image",
                   data_dir);
      ok = FALSE;
    }
  ok = ok && load_captions (fit, cancellable, error);
  g_hash_table_unref (seen);
  g_hash_table_unref (rows);
  g_ptr_array_unref (distinct);
  if (paths != NULL)
    g_ptr_array_unref (paths);
  if (captions != NULL)
    g_ptr_array_unref (captions);
  return ok;
}

/* Held-out images (agc_train_split as one class), their pairs with them. */
static void
split_pairs (Fit *fit)
{
  int *one_class = g_new0 (int, MAX (fit->n_images, 1));
  AgcTrainSplit split;
  agc_train_split (&split, one_class, fit->n_images, 1, fit->params->val_fraction,
                   fit->params->seed);
  gboolean *held_out = g_new0 (gboolean, MAX (fit->n_images, 1));
  for (int i = 0; i < split.n_val; i++)
    held_out[split.val[i]] = TRUE;
  fit->train = g_new (int, MAX (fit->n_pairs, 1));
  fit->val = g_new (int, MAX (fit->n_pairs, 1));
  for (int p = 0; p < fit->n_pairs; p++)
    if (held_out[fit->image_of[p]])
      fit->val[fit->n_val++] = p;
    else
      fit->train[fit->n_train++] = p;
  g_free (held_out);
  agc_train_split_clear (&split);
  g_free (one_class);
}

/* ---- batches --------------------------------------------------------------------- */

/* The hidden states of pairs idx[n]: images [n, Tv, D], captions packed,
 * their lengths[n]; *text sized for them (g_free). */
static void
gather (const Fit *fit, const int *idx, int n, float *images, float **text, int *lengths)
{
  size_t w = agc_text_tower_config (fit->text)->width, rows = 0;
  for (int j = 0; j < n; j++)
    {
      int p = idx[j];
      memcpy (images + (size_t) j * fit->image_floats,
              fit->image_hidden + (size_t) fit->image_of[p] * fit->image_floats,
              fit->image_floats * sizeof (float));
      lengths[j] = fit->text_length[p];
      rows += lengths[j];
    }
  *text = g_renew (float, *text, MAX (rows * w, 1));
  float *at = *text;
  for (int j = 0; j < n; j++)
    {
      size_t floats = (size_t) lengths[j] * w;
      memcpy (at, fit->text_hidden + fit->text_offset[idx[j]], floats * sizeof (float));
      at += floats;
    }
}

/* ---- evaluation ------------------------------------------------------------------ */

static gboolean
same_answer (const Fit *fit, int p, int q)
{
  return fit->image_of[p] == fit->image_of[q] || strcmp (fit->captions[p], fit->captions[q]) == 0;
}

/* The validation loss (mean over chunks of VAL_CHUNK held-out pairs of the
 * symmetric loss at the weights' scale) and the retrieval accuracy; NaN
 * without held-out pairs. */
static void
evaluate (double *loss, double *accuracy, Fit *fit, const AgcContrastiveWeights *w)
{
  *loss = *accuracy = NAN;
  int n = fit->n_val, e = fit->shape.embed_dim;
  if (n == 0)
    return;
  float *image = g_new (float, (size_t) n * e), *text = g_new (float, (size_t) n * e);
  float *images = g_new (float, EVAL_BATCH * fit->image_floats), *packed = NULL;
  int lengths[EVAL_BATCH];
  for (int start = 0; start < n; start += EVAL_BATCH)
    {
      int count = MIN (EVAL_BATCH, n - start);
      gather (fit, fit->val + start, count, images, &packed, lengths);
      agc_contrastive_embed (fit->cs, w, image + (size_t) start * e, images,
                             text + (size_t) start * e, packed, lengths, count);
    }
  double sum = 0.0;
  int n_chunks = 0;
  for (int start = 0; start < n; start += VAL_CHUNK, n_chunks++)
    sum += agc_clip_loss_backward (NULL, NULL, NULL, image + (size_t) start * e,
                                   text + (size_t) start * e, *w->log_scale,
                                   MIN (VAL_CHUNK, n - start), e);
  int right = 0;
  for (int i = 0; i < n; i++)
    {
      int best = 0;
      double best_dot = -INFINITY;
      for (int j = 0; j < n; j++)
        {
          double dot = 0.0;
          for (int k = 0; k < e; k++)
            dot += (double) image[(size_t) i * e + k] * text[(size_t) j * e + k];
          if (dot > best_dot)
            best_dot = dot, best = j;
        }
      right += same_answer (fit, fit->val[i], fit->val[best]);
    }
  *loss = sum / n_chunks;
  *accuracy = (double) right / n;
  g_free (packed);
  g_free (images);
  g_free (text);
  g_free (image);
}

/* ---- training -------------------------------------------------------------------- */

static int
n_batches (const Fit *fit)
{
  int batch = fit->params->batch_size;
  return (fit->n_train + batch - 1) / batch;
}

/* The rest of epoch, from batch batch_done on; cancelling between batches
 * keeps the batches taken. */
static gboolean
run_epoch (Fit *fit, int epoch, GCancellable *cancellable, GError **error)
{
  int batch = fit->params->batch_size;
  int *order = g_new (int, MAX (fit->n_train, 1));
  memcpy (order, fit->train, fit->n_train * sizeof (int));
  agc_shuffle (order, fit->n_train, fit->params->seed, EPOCH_STREAM (epoch));
  int rows = MIN (batch, fit->n_train);
  float *images = g_new (float, (size_t) MAX (rows, 1) * fit->image_floats), *packed = NULL;
  int *lengths = g_new (int, MAX (rows, 1));
  gboolean ok = TRUE;
  for (int b = fit->batch_done; ok && b < n_batches (fit); b++)
    {
      if (g_cancellable_is_cancelled (cancellable))
        {
          g_set_error (error, AGC_ERROR, AGC_ERROR_CANCELLED,
                       "training cancelled in epoch %d (%d of %d batches done)", epoch, b,
                       n_batches (fit));
          ok = FALSE;
          break;
        }
      int start = b * batch, n = MIN (batch, fit->n_train - start);
      gather (fit, order + start, n, images, &packed, lengths);
      double loss = agc_contrastive_step (fit->cs, NULL, images, packed, lengths, n);
      fit->loss_sum += n * loss;
      fit->batch_done = b + 1;
    }
  g_free (lengths);
  g_free (packed);
  g_free (images);
  g_free (order);
  return ok;
}

/* ---- the method's table ------------------------------------------------------------ */

static gboolean
contrastive_prepare (gpointer self, AgcTrainerRun *run, AgcTrainResult *result, GString *images,
                     AgcDataset *data, GCancellable *cancellable, GError **error)
{
  (void) run;
  Fit *fit = self;
  fit->original = agc_contrastive_weights_new (&fit->shape);
  agc_vision_tower_copy_top (fit->vision, fit->vision_first, &fit->original->vision);
  agc_text_tower_copy_top (fit->text, fit->text_first, &fit->original->text);
  *fit->original->log_scale = logf (agc_model_logit_scale (fit->model));
  if (!load_pairs (fit, data->dir, result, images, cancellable, error))
    return FALSE;
  split_pairs (fit);
  // the classes of the tagged folder the captions were made from, if any
  g_autofree char *photos = g_build_filename (data->dir, "photos", NULL);
  if (g_file_test (photos, G_FILE_TEST_IS_DIR))
    {
      AgcDataset *tagged = agc_dataset_open (photos, NULL, NULL, NULL);
      if (tagged != NULL)
        data->labels = g_steal_pointer (&tagged->labels);
      agc_dataset_free (tagged);
    }
  result->n_classes = data->labels != NULL ? agc_label_set_n_classes (data->labels) : 0;
  result->n_train = fit->n_train;
  result->n_val = fit->n_val;
  return TRUE;
}

static gboolean
contrastive_validate (gpointer self, AgcTrainerWeights which, double *loss, double *accuracy,
                      GError **error)
{
  (void) error;
  Fit *fit = self;
  if (fit->cs == NULL) // before start: activations for the evaluation
    {
      AgcAdamWParams none = agc_adamw_params (0.0, 0.0);
      fit->cs = agc_contrastive_new (&fit->shape, fit->original, &none);
    }
  const AgcContrastiveWeights *w = which == AGC_TRAINER_START     ? fit->original
                                   : which == AGC_TRAINER_CURRENT ? fit->cs->weights
                                                                  : fit->best;
  evaluate (loss, accuracy, fit, w);
  return TRUE;
}

static void
contrastive_start (gpointer self)
{
  Fit *fit = self;
  const AgcTrainParams *params = fit->params;
  AgcAdamWParams opt = agc_top_adamw (params, n_batches (fit));
  agc_contrastive_free (fit->cs);
  fit->cs = agc_contrastive_new (&fit->shape, fit->original, &opt);
  agc_contrastive_weights_free (fit->best);
  fit->best = agc_contrastive_weights_new (&fit->shape);
  agc_contrastive_weights_copy (fit->best, fit->original);
  fit->batch_done = 0;
  fit->loss_sum = 0.0;
}

static gboolean
contrastive_epoch (gpointer self, const AgcTrainerRun *run, double *train_loss,
                   GCancellable *cancellable, GError **error)
{
  Fit *fit = self;
  if (!run_epoch (fit, run->epoch + 1, cancellable, error))
    return FALSE;
  *train_loss = fit->loss_sum / MAX (fit->n_train, 1);
  fit->batch_done = 0;
  fit->loss_sum = 0.0;
  return TRUE;
}

static void
contrastive_keep (gpointer self, int epoch)
{
  (void) epoch;
  Fit *fit = self;
  agc_contrastive_weights_copy (fit->best, fit->cs->weights);
}

static void
add_settings (JsonBuilder *b, const AgcTrainParams *p)
{
  agc_json_add_int (b, "blocks", p->finetune_blocks);
  agc_json_add_number (b, "warmup", p->finetune_warmup);
  agc_json_add_number (b, "clip_norm", 1.0);
}

/* The best weights under their Hugging Face names, and the settings. */
static char *
contrastive_adapter (gpointer self, GArray *views, GPtrArray *names, const char *data_dir)
{
  const Fit *fit = self;
  const AgcContrastiveWeights *w = fit->best;
  const AgcContrastiveShape *s = &fit->shape;
  agc_tower_top_tensor_views (views, names, &agc_vision_tower_names, &s->vision,
                              w->vision.blocks, s->vision.layers, fit->vision_first,
                              w->vision.post_ln_weight, w->vision.post_ln_bias,
                              w->vision.projection, s->embed_dim);
  agc_tower_top_tensor_views (views, names, &agc_text_tower_names, &s->text, w->text.blocks,
                              s->text.layers, fit->text_first, w->text.final_ln_weight,
                              w->text.final_ln_bias, w->text.projection, s->embed_dim);
  agc_tensor_views_add (views, "logit_scale", w->log_scale, 1, 0);
  return agc_train_settings_json (fit->params, data_dir,
                                  "AdamW, warm-up + cosine, gradient norm clipped at 1",
                                  "CLIP's symmetric contrastive loss (image-text pairs, learned "
                                  "logit scale)",
                                  add_settings);
}

/* Beside the shared settings: the epochs, which set the schedule. */
static void
contrastive_fingerprint (gpointer self, GString *text)
{
  agc_top_fingerprint (text, ((Fit *) self)->params);
}

static gint64
contrastive_steps (gpointer self)
{
  return ((Fit *) self)->cs->step;
}

static const char *const set_names[4] = { "weights", "m", "v", "best" };

static void
checkpoint_sets (float *sets[4], Fit *fit)
{
  sets[0] = fit->cs->weights->memory;
  sets[1] = fit->cs->trainable->m;
  sets[2] = fit->cs->trainable->v;
  sets[3] = fit->best->memory;
}

static gboolean
contrastive_checkpoint_write (gpointer self, const char *path, const AgcTrainerRun *run,
                              const char *fingerprint, GError **error)
{
  Fit *fit = self;
  float *sets[4]; // [n_floats] each
  size_t n_floats = fit->best->n_floats;
  checkpoint_sets (sets, fit);
  double numbers[N_RUN] = { run->epoch, fit->batch_done, fit->loss_sum, run->best_epoch,
                            run->best_val_loss, (double) fit->cs->step };
  AgcTensorView views[5] = { { .name = "run", .dtype = AGC_DTYPE_F64, .n_dims = 1,
                               .shape = { N_RUN }, .data = (const guint8 *) numbers,
                               .n_bytes = sizeof numbers } };
  for (int i = 0; i < 4; i++)
    views[1 + i] = (AgcTensorView){ .name = set_names[i], .dtype = AGC_DTYPE_F32, .n_dims = 1,
                                    .shape = { (int64_t) n_floats },
                                    .data = (const guint8 *) sets[i],
                                    .n_bytes = n_floats * sizeof (float) };
  g_autoptr (GHashTable) meta = agc_checkpoint_metadata_new ("contrastive", fingerprint);
  return agc_safetensors_write (path, views, 5, meta, TRUE, error);
}

static gboolean
contrastive_checkpoint_read (gpointer self, const char *path, AgcTrainerRun *run,
                             const char *fingerprint, GError **error)
{
  Fit *fit = self;
  AgcSafetensors *file = agc_checkpoint_open (path, "contrastive", fingerprint, error);
  if (file == NULL)
    return FALSE;
  const char *reason = NULL;
  const AgcTensorView *t = agc_safetensors_find (file, "run");
  if (t == NULL || t->dtype != AGC_DTYPE_F64 || t->n_dims != 1 || t->shape[0] != N_RUN)
    reason = "its run state is missing";
  float *sets[4]; // [n_floats] each
  size_t n_floats = fit->best->n_floats;
  checkpoint_sets (sets, fit);
  for (int i = 0; reason == NULL && i < 4; i++)
    {
      const AgcTensorView *set = agc_safetensors_find (file, set_names[i]);
      if (set == NULL || set->dtype != AGC_DTYPE_F32 || set->n_dims != 1
          || set->shape[0] != (int64_t) n_floats)
        reason = "its tensors do not fit these settings";
    }
  if (reason == NULL)
    {
      double numbers[N_RUN];
      memcpy (numbers, t->data, sizeof numbers);
      run->epoch = (int) numbers[0];
      fit->batch_done = (int) numbers[1];
      fit->loss_sum = numbers[2];
      run->best_epoch = (int) numbers[3];
      run->best_val_loss = numbers[4];
      fit->cs->step = (gint64) numbers[5];
      for (int i = 0; i < 4; i++)
        memcpy (sets[i], agc_safetensors_find (file, set_names[i])->data,
                n_floats * sizeof (float));
    }
  agc_safetensors_free (file);
  if (reason != NULL)
    agc_checkpoint_refuse (error, path, reason);
  return reason == NULL;
}

static const AgcTrainerMethod contrastive_method = {
  .name = "contrastive",
  .unlabelled = TRUE, // image-text pairs: the classes, if any, come with them
  .prepare = contrastive_prepare,
  .validate = contrastive_validate,
  .start = contrastive_start,
  .epoch = contrastive_epoch,
  .keep = contrastive_keep,
  .adapter = contrastive_adapter,
  .fingerprint = contrastive_fingerprint,
  .steps = contrastive_steps,
  .checkpoint_write = contrastive_checkpoint_write,
  .checkpoint_read = contrastive_checkpoint_read,
};

static gboolean
check_settings (const AgcTrainParams *p, AgcModel *model, AgcVisionTower *vision,
                const AgcTextTower *text, GError **error)
{
  if (vision == NULL || text == NULL)
    {
      g_autofree char *shown = g_filename_display_name (agc_model_path (model));
      g_set_error (error, AGC_ERROR, AGC_ERROR_UNSUPPORTED,
                   "%s: contrastive trains the last blocks of a CLIP's ViT image tower and its "
                   "text tower, and this model has no ViT image tower (an AgriCLIP ResNet-50 "
                   "model); use --method dino, aligner or probe",
                   shown);
      return FALSE;
    }
  int lv = agc_vision_tower_config (vision)->layers, lt = agc_text_tower_config (text)->layers;
  const char *problem = NULL;
  if (p->finetune_blocks < 0 || p->finetune_blocks > MIN (MIN (lv, lt), 64))
    problem = "the number of blocks to train must be between 1 and the towers' layers (0: all)";
  else if (!(p->finetune_warmup >= 0.0 && p->finetune_warmup < 1e9))
    problem = "the warm-up must not be negative";
  else if (MAX (lv, lt) > 64)
    problem = "at most 64 blocks of a tower can be trained";
  if (problem != NULL)
    {
      g_set_error (error, AGC_ERROR, AGC_ERROR_INPUT,
                   "training settings: %s (blocks %d, the image tower has %d, the text tower "
                   "%d; warm-up %g)",
                   problem, p->finetune_blocks, lv, lt, p->finetune_warmup);
      return FALSE;
    }
  return TRUE;
}

gboolean
agc_train_contrastive (AgcModel *model, const char *data_dir, const char *out_path,
                       const AgcTrainParams *params, AgcTrainResult *result,
                       GCancellable *cancellable, GError **error)
{
  AgcVisionTower *vision = agc_model_vision_tower (model);
  const AgcTextTower *text = agc_model_text_tower (model);
  if (!check_settings (params, model, vision, text, error))
    return FALSE;
  g_autofree char *identity = agc_model_identity (model, error);
  if (identity == NULL)
    return FALSE;
  const AgcTowerConfig *vc = agc_vision_tower_config (vision), *tc = agc_text_tower_config (text);
  int k = params->finetune_blocks;
  Fit fit = { .params = params, .model = model, .vision = vision, .text = text,
              .shape = { .vision = *vc, .text = *tc,
                         .embed_dim = agc_vision_tower_embed_dim (vision),
                         .image_tokens = agc_vision_tower_n_tokens (vision) } };
  fit.shape.vision.layers = k > 0 ? k : vc->layers; // 0: every block
  fit.shape.text.layers = k > 0 ? k : tc->layers;
  fit.vision_first = vc->layers - fit.shape.vision.layers;
  fit.text_first = tc->layers - fit.shape.text.layers;
  fit.image_floats = (size_t) fit.shape.image_tokens * vc->width;
  gboolean ok = agc_trainer_run (&contrastive_method, &fit, model, identity, data_dir, out_path,
                                 params, result, cancellable, error);
  fit_clear (&fit);
  return ok;
}
