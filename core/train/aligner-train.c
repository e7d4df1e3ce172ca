/* aligner-train.c — agc_train for AgriCLIP: the aligner a = W f + b from the
 * DINO ResNet-50's features f[2048] into CLIP's text space, fitted again on
 * the user's tagged images.
 *
 * Targets: where the AgriCLIP folder's text model (a CLIP ViT-B/16) also
 * holds its image tower, the CLIP image embeddings of the same images, as
 * the paper fits the aligner; otherwise the zero-shot class embedding of
 * each image's tag (the prompts' embeddings by the model's recipe).  Either
 * is L2-normalised and scaled to the mean length of the current aligner's
 * outputs: the scorer compares cosines, so only directions matter, and the
 * new aligner's outputs keep the old ones' size.
 *
 * The fit is closed-form ridge regression (aligner-fit.h), not the paper's
 * SGD: the same least-squares objective, solved exactly and in seconds.
 * λ is relative: λ = ridge · trace(Fcᵀ Fc) / 2048.  Unless the caller
 * fixes it, each ridge of 10^-3 .. 10^3 is tried and judged by what the
 * user sees, the zero-shot scorer with the new aligner on the validation
 * images (class-weighted cross-entropy of temperature · cosine); the
 * current aligner is the baseline and stays unless a fit beats it.
 * Without validation images the ridge is 1.  Each ridge tried is reported
 * as one "epoch"; result->best_epoch is the one kept (0: the current).
 *
 * Nothing is checkpointed: features and targets are cached per image
 * (embedding-cache.h, under their own keys), so a run stopped at any point
 * redoes only the solves, which take seconds. */
#include "models/adapter.h"
#include "models/agriclip-manifest.h"
#include "models/agriclip-model.h"
#include "train/aligner-fit.h"
#include "train/dataset.h"
#include "models/embedding-cache.h"
#include "models/model-files.h"
#include "kernels/ops.h"
#include "train/probe.h"
#include "nn/resnet.h"
#include "train/train-common.h"
#include "nn/vision-tower.h"

#include <math.h>
#include <string.h>

#define N_RIDGES 7 /* 10^-3 .. 10^3 */
#define TARGETS_KEY_VERSION "agriclip clip-image targets 1"

enum { FEATURES = AGC_RESNET_FEATURES };

typedef enum
{
  TARGETS_CLIP_IMAGE, /* the text model's image tower */
  TARGETS_CLASS_TEXT, /* the tag's prompts */
} Targets;

static const char *const target_names[] = {
  [TARGETS_CLIP_IMAGE] = "CLIP image embeddings",
  [TARGETS_CLASS_TEXT] = "class text embeddings",
};

/* The images as the solver and the scorer see them. */
typedef struct
{
  const AgcTrainParams *params;
  int n_classes;
  int dim;          /* E */
  float *head;      /* [C, E] temperature · unit class embeddings: the zero-shot scorer */
  int n_train;
  float *f_train;   /* [n_train, 2048] */
  float *y_train;   /* [n_train, E] the targets, scaled */
  int n_val;
  float *f_val;     /* [n_val, 2048] */
  int *c_val;       /* [n_val] */
  float *val_weights; /* [C] 1 / n_val_c */
  double scale;     /* the targets' length */
} Fit;

static void
fit_clear (Fit *fit)
{
  g_free (fit->head);
  g_free (fit->f_train);
  g_free (fit->y_train);
  g_free (fit->f_val);
  g_free (fit->c_val);
  g_free (fit->val_weights);
}

/* ---- the encoders behind the cache ------------------------------------------ */

static gboolean
features_preprocess (float *pixels, const AgcImage *image, gpointer data, GError **error)
{
  const AgcModel *model = ((gpointer *) data)[0]; // AgriCLIP's own preprocessing
  return agc_model_preprocess (model, image, pixels, error);
}

static gboolean
features_encode (float *out, const float *pixels, int n, gpointer data,
                 GCancellable *cancellable, GError **error)
{
  (void) cancellable; // checked between batches by the cache
  return agc_agriclip_image_features (((gpointer *) data)[1], pixels, n, out, error);
}

typedef struct
{
  AgcPreprocess preprocess;
  AgcVisionTower *tower;
  int image_size; /* S */
  int dim;        /* E */
} ClipImage;

static gboolean
clip_preprocess (float *pixels, const AgcImage *image, gpointer data, GError **error)
{
  return agc_preprocess_image (&((ClipImage *) data)->preprocess, image, pixels, error);
}

static gboolean
clip_encode (float *out, const float *pixels, int n, gpointer data, GCancellable *cancellable,
             GError **error)
{
  (void) cancellable;
  ClipImage *clip = data;
  if (!agc_vision_tower_forward (clip->tower, pixels, n, out, error))
    return FALSE;
  for (int i = 0; i < n; i++)
    agc_l2_normalize (out + (size_t) i * clip->dim, clip->dim);
  return TRUE;
}

static int
compare_names (gconstpointer a, gconstpointer b)
{
  return strcmp (*(char *const *) a, *(char *const *) b);
}

/* The cache key of the text model's image embeddings: its configuration
 * and weight files by content (the files a model identity counts). */
static char *
clip_targets_key (const char *text_model, GError **error)
{
  static const char *const suffixes[] = { "config.json", ".safetensors", ".bin", ".pt", ".pth",
                                          ".index.json", NULL };
  g_autofree char *folder = agc_model_files_folder (text_model);
  GDir *dir = g_dir_open (folder, 0, error);
  if (dir == NULL)
    return NULL;
  g_autoptr (GPtrArray) names = g_ptr_array_new_with_free_func (g_free);
  for (const char *name; (name = g_dir_read_name (dir)) != NULL;)
    for (const char *const *s = suffixes; *s != NULL; s++)
      if (name[0] != '.' && g_str_has_suffix (name, *s))
        {
          g_ptr_array_add (names, g_strdup (name));
          break;
        }
  g_dir_close (dir);
  g_ptr_array_sort (names, compare_names);
  g_autoptr (GString) text = g_string_new (TARGETS_KEY_VERSION "\n");
  g_autofree char *canonical = g_canonicalize_filename (text_model, NULL);
  g_string_append_printf (text, "%s\n", canonical); // which file of a folder of several
  for (guint i = 0; i < names->len; i++)
    {
      g_autofree char *path = g_build_filename (folder, names->pdata[i], NULL);
      char hex[AGC_SHA256_HEX];
      if (!agc_file_sha256 (hex, path, error))
        return NULL;
      g_string_append_printf (text, "%s\t%s\n", (const char *) names->pdata[i], hex);
    }
  return g_compute_checksum_for_string (G_CHECKSUM_SHA256, text->str, (gssize) text->len);
}

/* The text model's image tower, when it has one: its Hugging Face-named
 * weights then hold the patch embedding, which every CLIP ViT has and a
 * text-only checkpoint (CLIPTextModelWithProjection) lacks.  *found is
 * FALSE without one; a tower that is there but cannot be loaded is an
 * error, not a reason to fall back. */
static gboolean
open_clip_image (ClipImage *clip, AgcWeights **weights, gboolean *found, const char *text_model,
                 int dim, GError **error)
{
  AgcClipConfig config;
  *found = FALSE;
  if (!agc_model_files_open (text_model, weights, &config, &clip->preprocess, error))
    return FALSE;
  if (agc_weights_find (*weights, "vision_model.embeddings.patch_embedding.weight") == NULL)
    return TRUE;
  *found = TRUE;
  if (!(clip->tower = agc_vision_tower_load (*weights, &config, error)))
    return FALSE;
  clip->image_size = config.vision.image_size;
  clip->dim = agc_vision_tower_embed_dim (clip->tower);
  if (clip->dim != dim)
    {
      g_set_error (error, AGC_ERROR, AGC_ERROR_MODEL,
                   "%s: its image tower gives %d values, the aligner %d: they do not belong "
                   "together",
                   agc_weights_path (*weights), clip->dim, dim);
      return FALSE;
    }
  return TRUE;
}

/* ---- the images --------------------------------------------------------------- */

/* The unit class embeddings unit[C, E] and the scorer fit->head: the
 * zero-shot classifier of the tags' prompts. */
static gboolean
class_embeddings (Fit *fit, float *unit, AgcModel *model, const AgcLabelSet *labels,
                  GCancellable *cancellable, GError **error)
{
  AgcClassifier *classifier = agc_classifier_new (model, labels, cancellable, error);
  if (classifier == NULL)
    return FALSE;
  size_t n = (size_t) fit->n_classes * fit->dim;
  fit->head = g_new (float, n);
  g_autofree float *bias = g_new (float, fit->n_classes); // zero
  agc_classifier_head (classifier, fit->head, bias);
  agc_classifier_free (classifier);
  float temperature = agc_model_logit_scale (model);
  for (size_t i = 0; i < n; i++)
    unit[i] = fit->head[i] / temperature;
  return TRUE;
}

/* The images still in play: paths, classes, features[n, 2048], targets. */
typedef struct
{
  int n;
  const char **files; /* [n] */
  int *class_of;      /* [n] */
  float *features;    /* [n, 2048] */
  float *y;           /* [n, E] unit targets; NULL until known */
} Images;

static void
images_clear (Images *im)
{
  g_free (im->files);
  g_free (im->class_of);
  g_free (im->features);
  g_free (im->y);
}

/* Keeps the images where ok[i], in order. */
static void
keep (Images *im, const gboolean *ok, int dim)
{
  int kept = 0;
  for (int i = 0; i < im->n; i++)
    if (ok[i])
      {
        memmove (im->features + (size_t) kept * FEATURES, im->features + (size_t) i * FEATURES,
                 sizeof (float) * FEATURES);
        if (im->y != NULL)
          memmove (im->y + (size_t) kept * dim, im->y + (size_t) i * dim, sizeof (float) * dim);
        im->files[kept] = im->files[i];
        im->class_of[kept++] = im->class_of[i];
      }
  im->n = kept;
}

/* The ResNet features through the cache, under the model identity and
 * "-resnet-features"; unreadable files reported and dropped. */
static gboolean
read_features (Images *im, AgcTrainResult *result, AgcModel *model,
               const AgcAgriclipImage *image, const char *identity,
               const AgcTrainParams *params, GCancellable *cancellable, GError **error)
{
  g_autofree char *key = g_strconcat (identity, "-resnet-features", NULL);
  gconstpointer both[2] = { model, image };
  AgcCachedEncoder encoder = {
    .key = key, .dim = FEATURES, .unit_norm = FALSE,
    .image_size = agc_model_image_size (model), .preprocess = features_preprocess,
    .encode = features_encode, .data = (gpointer) both,
  };
  g_autofree gboolean *ok = g_new (gboolean, MAX (im->n, 1));
  char (*hashes)[AGC_SHA256_HEX] = g_malloc_n (MAX (im->n, 1), AGC_SHA256_HEX);
  AgcEmbedCounts counts;
  gboolean good = agc_encode_files_cached (im->features, ok, hashes, &counts, &encoder,
                                           im->files, im->n, agc_train_on_embed_problem,
                                           agc_train_on_embed_progress,
                                           (gpointer) params, cancellable, error);
  g_free (hashes);
  if (!good)
    return FALSE;
  result->n_skipped = counts.n_failed;
  result->n_cached = counts.n_cached;
  keep (im, ok, 0);
  return TRUE;
}

/* The CLIP image embeddings of the images (readable so far: a broken file
 * is reported once) through the cache; a file that fails now is dropped. */
static gboolean
read_clip_targets (Images *im, AgcTrainResult *result, ClipImage *clip, const char *text_model,
                   const AgcTrainParams *params, GCancellable *cancellable, GError **error)
{
  g_autofree char *key = clip_targets_key (text_model, error);
  if (key == NULL)
    return FALSE;
  AgcCachedEncoder encoder = {
    .key = key, .dim = clip->dim, .unit_norm = TRUE,
    .image_size = clip->image_size, .preprocess = clip_preprocess,
    .encode = clip_encode, .data = clip,
  };
  im->y = g_new (float, (size_t) MAX (im->n, 1) * clip->dim);
  g_autofree gboolean *ok = g_new (gboolean, MAX (im->n, 1));
  char (*hashes)[AGC_SHA256_HEX] = g_malloc_n (MAX (im->n, 1), AGC_SHA256_HEX);
  AgcEmbedCounts counts;
  gboolean good = agc_encode_files_cached (im->y, ok, hashes, &counts, &encoder, im->files,
                                           im->n, agc_train_on_embed_problem,
                                           agc_train_on_embed_progress,
                                           (gpointer) params, cancellable, error);
  g_free (hashes);
  if (!good)
    return FALSE;
  result->n_skipped += counts.n_failed; // changed since the features were read
  keep (im, ok, clip->dim);
  return TRUE;
}

/* Splits the images into fit's training and validation sets and scales
 * the training targets to the current aligner's mean output length. */
static void
split_images (Fit *fit, const Images *im, const AgcAgriclipImage *image)
{
  const AgcTrainParams *params = fit->params;
  int dim = fit->dim;
  AgcTrainSplit split;
  agc_train_split (&split, im->class_of, im->n, fit->n_classes, params->val_fraction,
                   params->seed);
  fit->n_train = split.n_train;
  fit->n_val = split.n_val;
  fit->f_train = g_new (float, (size_t) MAX (fit->n_train, 1) * FEATURES);
  fit->y_train = g_new (float, (size_t) MAX (fit->n_train, 1) * dim);
  fit->f_val = g_new (float, (size_t) MAX (fit->n_val, 1) * FEATURES);
  fit->c_val = g_new (int, MAX (fit->n_val, 1));
  for (int t = 0; t < split.n_train; t++)
    {
      int i = split.train[t];
      memcpy (fit->f_train + (size_t) t * FEATURES, im->features + (size_t) i * FEATURES,
              sizeof (float) * FEATURES);
      memcpy (fit->y_train + (size_t) t * dim, im->y + (size_t) i * dim, sizeof (float) * dim);
    }
  for (int v = 0; v < split.n_val; v++)
    {
      int i = split.val[v];
      memcpy (fit->f_val + (size_t) v * FEATURES, im->features + (size_t) i * FEATURES,
              sizeof (float) * FEATURES);
      fit->c_val[v] = im->class_of[i];
    }
  fit->val_weights = g_steal_pointer (&split.val_weights);
  agc_train_split_clear (&split);

  const float *weight, *bias;
  agc_agriclip_image_aligner (image, &weight, &bias);
  float *a = g_new (float, (size_t) MAX (fit->n_train, 1) * dim); // [n_train, E]
  agc_linear_forward (a, fit->f_train, weight, bias, fit->n_train, FEATURES, dim);
  double sum = 0.0;
  for (int t = 0; t < fit->n_train; t++)
    {
      double norm2 = 0.0;
      for (int e = 0; e < dim; e++)
        norm2 += (double) a[(size_t) t * dim + e] * a[(size_t) t * dim + e];
      sum += sqrt (norm2);
    }
  g_free (a);
  fit->scale = sum > 0.0 && isfinite (sum) ? sum / fit->n_train : 1.0;
  for (size_t i = 0; i < (size_t) fit->n_train * dim; i++)
    fit->y_train[i] *= (float) fit->scale;
}

/* Everything fit needs: cheap failures first (the text model, the
 * prompts), then the features, the targets (*targets says which), the
 * split. */
static gboolean
prepare (Fit *fit, Targets *targets, AgcTrainResult *result, AgcDataset *data, AgcModel *model,
         const AgcAgriclipImage *image, const char *identity, const char *text_model,
         GCancellable *cancellable, GError **error)
{
  const AgcTrainParams *params = fit->params;
  int dim = fit->dim;
  Images im = {
    .n = data->n_files,
    .files = g_memdup2 (data->files, sizeof (char *) * MAX (data->n_files, 1)),
    .class_of = g_memdup2 (data->class_of, sizeof (int) * MAX (data->n_files, 1)),
    .features = g_new (float, (size_t) MAX (data->n_files, 1) * FEATURES),
  };
  float *unit = g_new (float, (size_t) fit->n_classes * dim); // [C, E]
  ClipImage clip = { 0 };
  AgcWeights *clip_weights = NULL;
  gboolean found = FALSE;
  gboolean good = open_clip_image (&clip, &clip_weights, &found, text_model, dim, error)
                  && class_embeddings (fit, unit, model, data->labels, cancellable, error)
                  && read_features (&im, result, model, image, identity, params, cancellable,
                                    error)
                  && agc_train_check_classes (data, im.class_of, im.n, error);
  *targets = found ? TARGETS_CLIP_IMAGE : TARGETS_CLASS_TEXT;
  if (good && found)
    good = read_clip_targets (&im, result, &clip, text_model, params, cancellable, error)
           && agc_train_check_classes (data, im.class_of, im.n, error);
  else if (good)
    {
      im.y = g_new (float, (size_t) MAX (im.n, 1) * dim);
      for (int i = 0; i < im.n; i++)
        memcpy (im.y + (size_t) i * dim, unit + (size_t) im.class_of[i] * dim,
                sizeof (float) * dim);
    }
  if (good)
    {
      result->n_images = im.n;
      split_images (fit, &im, image);
    }
  agc_vision_tower_free (clip.tower);
  agc_weights_free (clip_weights);
  g_free (unit);
  images_clear (&im);
  return good;
}

/* ---- fitting ------------------------------------------------------------------- */

/* The zero-shot scorer with the aligner (weight, bias) on the validation
 * images: class-weighted cross-entropy of temperature · cosine, and the
 * share right. */
static void
evaluate (double *loss, double *accuracy, const Fit *fit, const float *weight, const float *bias)
{
  *loss = *accuracy = NAN;
  if (fit->n_val == 0)
    return;
  int n = fit->n_val, dim = fit->dim, n_classes = fit->n_classes;
  float *a = g_new (float, (size_t) n * dim); // [n_val, E]
  float *logits = g_new (float, (size_t) n * n_classes);
  float *zero = g_new0 (float, n_classes);
  agc_linear_forward (a, fit->f_val, weight, bias, n, FEATURES, dim);
  for (int i = 0; i < n; i++)
    agc_l2_normalize (a + (size_t) i * dim, dim);
  *loss = agc_probe_loss_backward (NULL, NULL, a, fit->c_val, fit->val_weights, fit->head, zero,
                                   n, dim, n_classes);
  agc_probe_logits (logits, a, fit->head, zero, n, dim, n_classes);
  int right = 0;
  for (int i = 0; i < n; i++)
    {
      const float *z = logits + (size_t) i * n_classes;
      int best = 0;
      for (int c = 1; c < n_classes; c++)
        if (z[c] > z[best])
          best = c;
      right += best == fit->c_val[i];
    }
  *accuracy = (double) right / n;
  g_free (zero);
  g_free (logits);
  g_free (a);
}

/* Mean squared distance of the training outputs from their targets, in
 * units of the targets' squared length. */
static double
train_error (const Fit *fit, const float *weight, const float *bias)
{
  int n = fit->n_train, dim = fit->dim;
  float *a = g_new (float, (size_t) MAX (n, 1) * dim);
  agc_linear_forward (a, fit->f_train, weight, bias, n, FEATURES, dim);
  double sum = 0.0;
  for (size_t i = 0; i < (size_t) n * dim; i++)
    sum += ((double) a[i] - fit->y_train[i]) * ((double) a[i] - fit->y_train[i]);
  g_free (a);
  return sum / (MAX (n, 1) * fit->scale * fit->scale);
}

/* What was kept: the aligner and how it was chosen. */
typedef struct
{
  float *weight;   /* [E, 2048] */
  float *bias;     /* [E] */
  int index;       /* 0: the current aligner; k: the k-th ridge tried */
  double ridge;    /* relative; 0 for the current aligner */
  double lambda;   /* absolute */
  double val_loss;
  double val_accuracy;
} Kept;

/* Tries the ridges and keeps the best into kept (which holds the current
 * aligner and its validation numbers on entry). */
static gboolean
run_ridges (Kept *kept, AgcTrainResult *result, const Fit *fit, GCancellable *cancellable,
            GError **error)
{
  const AgcTrainParams *params = fit->params;
  double ridges[N_RIDGES];
  int n_ridges = 1;
  gboolean choose = params->aligner_ridge == 0.0 && fit->n_val > 0;
  if (params->aligner_ridge > 0.0)
    ridges[0] = params->aligner_ridge;
  else if (!choose)
    ridges[0] = 1.0; // nothing to judge by: the middle of the range
  else
    for (n_ridges = 0; n_ridges < N_RIDGES; n_ridges++)
      ridges[n_ridges] = pow (10.0, n_ridges - N_RIDGES / 2);

  int dim = fit->dim;
  AgcRidge *ridge = agc_ridge_new (fit->f_train, fit->y_train, fit->n_train, FEATURES, dim);
  double unit = agc_ridge_trace (ridge) / FEATURES;
  if (!(unit > 0.0 && isfinite (unit)))
    unit = 1.0; // features that do not vary: every λ gives W = 0
  float *weight = g_new (float, (size_t) dim * FEATURES), *bias = g_new (float, dim);
  gboolean ok = TRUE;
  for (int k = 0; ok && k < n_ridges; k++)
    {
      if (g_cancellable_is_cancelled (cancellable))
        {
          g_set_error (error, AGC_ERROR, AGC_ERROR_CANCELLED,
                       "training cancelled after %d of %d ridge strengths", k, n_ridges);
          ok = FALSE;
          break;
        }
      double lambda = ridges[k] * unit, val_loss, val_accuracy;
      if (!(ok = agc_ridge_solve (weight, bias, ridge, lambda, error)))
        break;
      evaluate (&val_loss, &val_accuracy, fit, weight, bias);
      agc_train_report (params, AGC_TRAIN_STAGE_EPOCH, k + 1, n_ridges,
                        train_error (fit, weight, bias), val_loss, val_accuracy);
      if (!choose || val_loss < kept->val_loss)
        {
          memcpy (kept->weight, weight, sizeof (float) * dim * FEATURES);
          memcpy (kept->bias, bias, sizeof (float) * dim);
          *kept = (Kept){ kept->weight, kept->bias, k + 1, ridges[k], lambda, val_loss,
                          val_accuracy };
        }
    }
  result->epochs = n_ridges;
  g_free (bias);
  g_free (weight);
  agc_ridge_free (ridge);
  return ok;
}

/* ---- the adapter --------------------------------------------------------------- */

/* The shared settings less those of gradient descent, plus the fit's own. */
static char *
training_json (const AgcTrainParams *params, const char *data_dir, Targets targets,
               const Kept *kept, double scale)
{
  g_autofree char *shared = agc_train_settings_json (
      params, data_dir, "ridge regression (closed form)",
      "squared error to the targets; ridge chosen by the class-weighted cross-entropy of "
      "the zero-shot scorer on the validation images",
      NULL);
  g_autoptr (JsonNode) root = json_from_string (shared, NULL);
  JsonObject *o = json_node_get_object (root);
  static const char *const unused[] = { "learning_rate", "weight_decay", "batch_size",
                                        "max_epochs", "patience" };
  for (unsigned i = 0; i < G_N_ELEMENTS (unused); i++)
    json_object_remove_member (o, unused[i]);
  json_object_set_string_member (o, "targets", target_names[targets]);
  json_object_set_double_member (o, "target_scale", scale);
  json_object_set_string_member (o, "aligner", kept->index > 0 ? "fitted" : "original kept");
  // ridge: the caller's setting; ridge_used / lambda: what the kept aligner was fitted with
  json_object_set_double_member (o, "ridge", params->aligner_ridge);
  if (kept->index > 0)
    {
      json_object_set_double_member (o, "ridge_used", kept->ridge);
      json_object_set_double_member (o, "lambda", kept->lambda);
    }
  return json_to_string (root, FALSE);
}

static gboolean
write_adapter (const char *out_path, const Kept *kept, const Fit *fit, Targets targets,
               AgcModel *model, const char *identity, const AgcLabelSet *labels,
               const AgcTrainResult *result, const char *data_dir, GError **error)
{
  int dim = fit->dim;
  AgcTensorView views[2] = {
    { .name = "W", .dtype = AGC_DTYPE_F32, .n_dims = 2, .shape = { dim, FEATURES },
      .data = (const guint8 *) kept->weight, .n_bytes = sizeof (float) * dim * FEATURES },
    { .name = "b", .dtype = AGC_DTYPE_F32, .n_dims = 1, .shape = { dim },
      .data = (const guint8 *) kept->bias, .n_bytes = sizeof (float) * dim },
  };
  g_autofree char *metrics = agc_train_metrics_json (result);
  g_autofree char *training = training_json (fit->params, data_dir, targets, kept, fit->scale);
  return agc_adapter_write (out_path, "aligner", model, identity, labels, views, 2, metrics,
                            training, error);
}

/* ---- the method ---------------------------------------------------------------- */

static gboolean
check_agriclip (const AgcModel *model, const AgcTrainParams *params, GError **error)
{
  const char *path = agc_model_path (model);
  if (!g_file_test (path, G_FILE_TEST_IS_DIR) || !agc_agriclip_is_folder (path))
    {
      g_autofree char *shown = g_filename_display_name (path);
      g_set_error (error, AGC_ERROR, AGC_ERROR_INPUT,
                   "%s: not an AgriCLIP model: method \"aligner\" fits AgriCLIP's DINO → CLIP "
                   "aligner again; for CLIP models use \"probe\" or \"finetune\"",
                   shown);
      return FALSE;
    }
  if (!(params->aligner_ridge >= 0.0 && isfinite (params->aligner_ridge)))
    {
      g_set_error (error, AGC_ERROR, AGC_ERROR_INPUT,
                   "training settings: the ridge must be positive, or 0 to choose it by "
                   "validation");
      return FALSE;
    }
  return TRUE;
}

gboolean
agc_train_aligner (AgcModel *model, const char *data_dir, const char *out_path,
                   const AgcTrainParams *params, AgcTrainResult *result,
                   GCancellable *cancellable, GError **error)
{
  if (!check_agriclip (model, params, error))
    return FALSE;
  g_autofree char *identity = agc_model_identity (model, error);
  if (identity == NULL)
    return FALSE;
  /* The model's own image path is private to model.c: the same files are
   * read again here (the manifest decides which). */
  AgcAgriclipManifest manifest;
  if (!agc_agriclip_manifest_load (&manifest, agc_model_path (model), error))
    return FALSE;
  int dim = agc_model_embed_dim (model);
  AgcAgriclipImage *image = agc_agriclip_image_load (&manifest, dim, error);
  AgcDataset *data = image != NULL
                         ? agc_dataset_open (data_dir, params->report, params->user_data, error)
                         : NULL;
  Fit fit = { .params = params, .dim = dim,
              .n_classes = data != NULL ? agc_label_set_n_classes (data->labels) : 0 };
  Targets targets;
  gboolean ok = data != NULL
                && prepare (&fit, &targets, result, data, model, image, identity,
                            manifest.text_model, cancellable, error);
  Kept kept = { 0 };
  if (ok)
    {
      result->n_classes = fit.n_classes;
      result->n_train = fit.n_train;
      result->n_val = fit.n_val;
      const float *weight, *bias;
      agc_agriclip_image_aligner (image, &weight, &bias);
      kept.weight = g_memdup2 (weight, sizeof (float) * dim * FEATURES);
      kept.bias = g_memdup2 (bias, sizeof (float) * dim);
      evaluate (&kept.val_loss, &kept.val_accuracy, &fit, weight, bias);
      result->zero_shot_val_accuracy = kept.val_accuracy;
      ok = run_ridges (&kept, result, &fit, cancellable, error);
    }
  if (ok)
    {
      result->best_epoch = kept.index;
      result->val_loss = kept.val_loss;
      result->val_accuracy = kept.val_accuracy;
      ok = write_adapter (out_path, &kept, &fit, targets, model, identity, data->labels, result,
                          data_dir, error);
    }
  if (ok) // leftovers of killed runs of other methods into the same file can go
    agc_train_clean_up (out_path);
  g_free (kept.weight);
  g_free (kept.bias);
  fit_clear (&fit);
  agc_dataset_free (data);
  agc_agriclip_image_free (image);
  agc_agriclip_manifest_clear (&manifest);
  return ok;
}
