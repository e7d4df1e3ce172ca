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
 * Without validation images the ridge is 1.  Each ridge tried is one
 * "epoch" of the trainer (trainer.h), without early stopping;
 * result->best_epoch is the one kept (0: the current).
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
#include "train/trainer.h"
#include "nn/vision-tower.h"
#include "support/folder.h"
#include "support/json-file.h"

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

/* What was kept: the aligner and how it was chosen. */
typedef struct
{
  float *weight;   /* [E, 2048] */
  float *bias;     /* [E] */
  int index;       /* 0: the current aligner; k: the k-th ridge tried */
  double ridge;    /* relative; 0 for the current aligner */
  double lambda;   /* absolute */
} Kept;

/* The images as the solver and the scorer see them, and the fits. */
typedef struct
{
  const AgcTrainParams *params;
  AgcModel *model;
  const AgcAgriclipImage *image; /* the current aligner, the feature extractor */
  const char *text_model;
  Targets targets;
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
  AgcRidge *ridge;  /* the problem of (f_train, y_train) */
  double unit;      /* λ of ridge 1 */
  double ridges[N_RIDGES]; /* relative, one per epoch */
  Kept fitted;      /* the fit of the epoch just run */
  Kept kept;
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
  agc_ridge_free (fit->ridge);
  g_free (fit->fitted.weight);
  g_free (fit->fitted.bias);
  g_free (fit->kept.weight);
  g_free (fit->kept.bias);
}

/* ---- the encoders behind the cache ------------------------------------------ */

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

// both at once: a JPEG resized as its rows are decoded
static gboolean
clip_load_input (const char *path, float *pixels, int *width, int *height, gpointer data,
                 GError **error)
{
  return agc_preprocess_file (&((ClipImage *) data)->preprocess, path, 0, pixels, width, height,
                              error);
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

/* The cache key of the text model's image embeddings: its configuration
 * and weight files by content (the files a model identity counts). */
static char *
clip_targets_key (const char *text_model, GError **error)
{
  static const char *const suffixes[] = { "config.json", ".safetensors", ".bin", ".pt", ".pth",
                                          ".index.json", NULL };
  g_autofree char *folder = agc_model_files_folder (text_model);
  g_autoptr (GPtrArray) listed = agc_list_folder (folder, error);
  if (listed == NULL)
    return NULL;
  g_autoptr (GPtrArray) names = g_ptr_array_new ();
  for (guint i = 0; i < listed->len; i++)
    for (const char *const *s = suffixes; *s != NULL; s++)
      if (g_str_has_suffix (listed->pdata[i], *s))
        {
          g_ptr_array_add (names, listed->pdata[i]);
          break;
        }
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

/* The ResNet features through the cache (agc_agriclip_features_cached: a
 * dino base's ResNet makes other features than the folder's); unreadable
 * files reported and dropped. */
static gboolean
read_features (Images *im, AgcTrainResult *result, AgcModel *model,
               const AgcAgriclipImage *image, const AgcTrainParams *params,
               GCancellable *cancellable, GError **error)
{
  g_autofree gboolean *ok = g_new (gboolean, MAX (im->n, 1));
  char (*hashes)[AGC_SHA256_HEX] = g_malloc_n (MAX (im->n, 1), AGC_SHA256_HEX);
  AgcEmbedCounts counts;
  gboolean good = agc_agriclip_features_cached (im->features, ok, hashes, &counts, model, image,
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
    .encode = clip_encode, .data = clip, .load_input = clip_load_input,
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
         const AgcAgriclipImage *image, const char *text_model, GCancellable *cancellable,
         GError **error)
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
                  && read_features (&im, result, model, image, params, cancellable,
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

/* The ridges to try (into fit->ridges, their count into run) and the
 * problem they are tried on. */
static void
plan_ridges (Fit *fit, AgcTrainerRun *run)
{
  const AgcTrainParams *params = fit->params;
  gboolean choose = params->aligner_ridge == 0.0 && fit->n_val > 0;
  run->n_epochs = 1;
  run->patience = 0; // every ridge is tried
  run->judged = choose;
  if (params->aligner_ridge > 0.0)
    fit->ridges[0] = params->aligner_ridge;
  else if (!choose)
    fit->ridges[0] = 1.0; // nothing to judge by: the middle of the range
  else
    for (run->n_epochs = 0; run->n_epochs < N_RIDGES; run->n_epochs++)
      fit->ridges[run->n_epochs] = pow (10.0, run->n_epochs - N_RIDGES / 2);
  fit->ridge = agc_ridge_new (fit->f_train, fit->y_train, fit->n_train, FEATURES, fit->dim);
  fit->unit = agc_ridge_trace (fit->ridge) / FEATURES;
  if (!(fit->unit > 0.0 && isfinite (fit->unit)))
    fit->unit = 1.0; // features that do not vary: every λ gives W = 0
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
  g_autoptr (JsonParser) parser = json_parser_new ();
  agc_json_parse_data (parser, shared, strlen (shared), "settings", NULL); // ours: valid
  JsonNode *root = json_parser_get_root (parser);
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

/* ---- the method's table ---------------------------------------------------------- */

static gboolean
aligner_prepare (gpointer self, AgcTrainerRun *run, AgcTrainResult *result, GString *images,
                 AgcDataset *data, GCancellable *cancellable, GError **error)
{
  (void) images; // nothing is checkpointed
  Fit *fit = self;
  fit->n_classes = agc_label_set_n_classes (data->labels);
  if (!prepare (fit, &fit->targets, result, data, fit->model, fit->image,
                fit->text_model, cancellable, error))
    return FALSE;
  result->n_classes = fit->n_classes;
  result->n_train = fit->n_train;
  result->n_val = fit->n_val;
  plan_ridges (fit, run);
  return TRUE;
}

static gboolean
aligner_validate (gpointer self, AgcTrainerWeights which, double *loss, double *accuracy,
                  GError **error)
{
  (void) error;
  const Fit *fit = self;
  const float *weight, *bias;
  if (which == AGC_TRAINER_START) // the current aligner
    agc_agriclip_image_aligner (fit->image, &weight, &bias);
  else
    {
      const Kept *k = which == AGC_TRAINER_CURRENT ? &fit->fitted : &fit->kept;
      weight = k->weight, bias = k->bias;
    }
  evaluate (loss, accuracy, fit, weight, bias);
  return TRUE;
}

static void
aligner_start (gpointer self)
{
  Fit *fit = self;
  const float *weight, *bias;
  agc_agriclip_image_aligner (fit->image, &weight, &bias);
  g_free (fit->kept.weight);
  g_free (fit->kept.bias);
  fit->kept = (Kept){ .weight = g_memdup2 (weight, sizeof (float) * fit->dim * FEATURES),
                      .bias = g_memdup2 (bias, sizeof (float) * fit->dim) };
  if (fit->fitted.weight == NULL)
    fit->fitted = (Kept){ .weight = g_new (float, (size_t) fit->dim * FEATURES),
                          .bias = g_new (float, fit->dim) };
}

/* The fit of the next ridge; cancelling stops between ridges. */
static gboolean
aligner_epoch (gpointer self, const AgcTrainerRun *run, double *train_loss,
               GCancellable *cancellable, GError **error)
{
  Fit *fit = self;
  int k = run->epoch;
  if (g_cancellable_is_cancelled (cancellable))
    {
      g_set_error (error, AGC_ERROR, AGC_ERROR_CANCELLED,
                   "training cancelled after %d of %d ridge strengths", k, run->n_epochs);
      return FALSE;
    }
  Kept *f = &fit->fitted;
  f->ridge = fit->ridges[k];
  f->lambda = fit->ridges[k] * fit->unit;
  if (!agc_ridge_solve (f->weight, f->bias, fit->ridge, f->lambda, error))
    return FALSE;
  *train_loss = train_error (fit, f->weight, f->bias);
  return TRUE;
}

static void
aligner_keep (gpointer self, int epoch)
{
  Fit *fit = self;
  memcpy (fit->kept.weight, fit->fitted.weight, sizeof (float) * fit->dim * FEATURES);
  memcpy (fit->kept.bias, fit->fitted.bias, sizeof (float) * fit->dim);
  fit->kept.index = epoch;
  fit->kept.ridge = fit->fitted.ridge;
  fit->kept.lambda = fit->fitted.lambda;
}

static char *
aligner_adapter (gpointer self, GArray *views, GPtrArray *names, const char *data_dir)
{
  (void) names;
  const Fit *fit = self;
  int dim = fit->dim;
  AgcTensorView aligner[2] = {
    { .name = "W", .dtype = AGC_DTYPE_F32, .n_dims = 2, .shape = { dim, FEATURES },
      .data = (const guint8 *) fit->kept.weight, .n_bytes = sizeof (float) * dim * FEATURES },
    { .name = "b", .dtype = AGC_DTYPE_F32, .n_dims = 1, .shape = { dim },
      .data = (const guint8 *) fit->kept.bias, .n_bytes = sizeof (float) * dim },
  };
  g_array_append_vals (views, aligner, 2);
  return training_json (fit->params, data_dir, fit->targets, &fit->kept, fit->scale);
}

static const AgcTrainerMethod aligner_method = {
  .name = "aligner",
  .prepare = aligner_prepare,
  .validate = aligner_validate,
  .start = aligner_start,
  .epoch = aligner_epoch,
  .keep = aligner_keep,
  .adapter = aligner_adapter,
};

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
  if (image != NULL && params->base_adapter != NULL) // a dino base: its ResNet makes the features
    {
      AgcAdapter *base = agc_adapter_load (params->base_adapter, error);
      if (base == NULL || !agc_agriclip_image_apply_resnet (image, base, error))
        g_clear_pointer (&image, agc_agriclip_image_free);
      agc_adapter_free (base);
    }
  Fit fit = { .params = params, .model = model, .image = image,
              .text_model = manifest.text_model, .dim = dim };
  gboolean ok = image != NULL
                && agc_trainer_run (&aligner_method, &fit, model, identity, data_dir, out_path,
                                    params, result, cancellable, error);
  fit_clear (&fit);
  agc_agriclip_image_free (image);
  agc_agriclip_manifest_clear (&manifest);
  return ok;
}
