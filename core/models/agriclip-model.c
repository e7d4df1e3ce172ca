/* agriclip-model.c — AgriCLIP's parts: the text side of a CLIP model, a
 * ResNet-50 and the linear aligner between them. */
#include "models/agriclip-model.h"
#include "models/embedding-cache.h"
#include "models/adapter.h"

#include "models/model-files.h"
#include "kernels/ops.h"
#include "nn/resnet.h"

#include <string.h>

struct AgcAgriclipImage
{
  AgcImageEncoder base; // agriclip_class
  AgcResNet *resnet;
  int embed_dim; // E
  int size;      // S: the input is [3, S, S] (the manifest's image_size)
  float *weight; // [E, 2048], the aligner's W as a torch Linear weight
  float *bias;   // [E], in the same allocation, after W
};

static const AgcImageEncoderClass agriclip_class; // defined with its functions below

// the aligner's W and b (zero: no bias) in one block, filled by load_aligner
static AgcAgriclipImage *
image_new (int embed_dim, int size)
{
  AgcAgriclipImage *image = g_new0 (AgcAgriclipImage, 1);
  *image = (AgcAgriclipImage) {
    .base.klass = &agriclip_class, .embed_dim = embed_dim, .size = size,
    .weight = g_new0 (float, (size_t) embed_dim * (AGC_RESNET_FEATURES + 1)),
  };
  image->bias = image->weight + (size_t) embed_dim * AGC_RESNET_FEATURES;
  return image;
}

void
agc_agriclip_image_free (AgcAgriclipImage *image)
{
  if (image == NULL)
    return;
  agc_resnet_free (image->resnet);
  g_free (image->weight); // and the bias after it
  g_free (image);
}

/* ---- the aligner ------------------------------------------------------------ */

// in[rows, cols] -> out[cols, rows]
static void
transpose_into (float *out, const float *in, int64_t rows, int64_t cols)
{
  for (int64_t r = 0; r < rows; r++)
    for (int64_t c = 0; c < cols; c++)
      out[c * rows + r] = in[r * cols + c];
}

// W and b of the aligner file; W [E, 2048] or [2048, E], E = embed_dim
static gboolean
load_aligner (AgcAgriclipImage *image, const char *path, int embed_dim, GError **error)
{
  AgcWeights *weights = agc_weights_open (path, error);
  if (weights == NULL)
    return FALSE;
  const char *file = agc_weights_path (weights);
  const AgcTensorView *w = agc_weights_find (weights, "W");
  gboolean ok = FALSE;
  const int64_t in = AGC_RESNET_FEATURES;
  if (w == NULL)
    g_set_error (error, AGC_ERROR, AGC_ERROR_MODEL,
                 "%s: no tensor 'W': not an AgriCLIP aligner (a dict {'W': [%d, %d], "
                 "'b': [%d]})",
                 file, embed_dim, AGC_RESNET_FEATURES, embed_dim);
  else if (w->n_dims != 2 || (w->shape[1] != in && w->shape[0] != in))
    {
      g_autofree char *shape = agc_shape_text (w->n_dims, w->shape);
      g_set_error (error, AGC_ERROR, AGC_ERROR_MODEL,
                   "%s: tensor 'W' has shape %s, expected [%d, %d] (or [%d, %d]): %d is the "
                   "size of the ResNet-50's features",
                   file, shape, embed_dim, AGC_RESNET_FEATURES, AGC_RESNET_FEATURES,
                   embed_dim, AGC_RESNET_FEATURES);
    }
  else
    {
      gboolean stored_out_in = w->shape[1] == in; // as torch's Linear, the released one
      int64_t out = stored_out_in ? w->shape[0] : w->shape[1];
      if (out != embed_dim)
        g_set_error (error, AGC_ERROR, AGC_ERROR_MODEL,
                     "%s: the aligner maps the %d image features to %" G_GINT64_FORMAT
                     " values, but the text model's projection gives %d: the aligner and the "
                     "text model do not belong together",
                     file, AGC_RESNET_FEATURES, out, embed_dim);
      else
        {
          g_autofree float *stored = agc_weights_take_2d (weights, "W", stored_out_in ? out : in,
                                                          stored_out_in ? in : out, error);
          if ((ok = stored != NULL) && stored_out_in)
            memcpy (image->weight, stored, sizeof (float) * (size_t) out * in);
          else if (ok)
            transpose_into (image->weight, stored, in, out);
        }
    }
  if (ok && agc_weights_find (weights, "b") != NULL) // else saved as None: no bias, zeros
    {
      g_autofree float *b = agc_weights_take_1d (weights, "b", embed_dim, error);
      if ((ok = b != NULL))
        memcpy (image->bias, b, sizeof (float) * (size_t) embed_dim);
    }
  agc_weights_free (weights);
  return ok;
}

/* ---- the ResNet ------------------------------------------------------------- */

// "conv1.weight" and "layer1.0.conv1.weight" both under prefix: a ResNet there
static GPtrArray *
resnet_prefixes (const AgcWeights *weights)
{
  static const char block[] = "layer1.0.conv1.weight";
  GPtrArray *prefixes = g_ptr_array_new_with_free_func (g_free);
  for (int i = 0; i < agc_weights_n_tensors (weights); i++)
    {
      const char *name = agc_weights_tensor (weights, i)->name;
      if (!g_str_has_suffix (name, block))
        continue;
      char *prefix = g_strndup (name, strlen (name) - strlen (block));
      g_autofree char *stem = g_strconcat (prefix, "conv1.weight", NULL);
      if (agc_weights_find (weights, stem) != NULL)
        g_ptr_array_add (prefixes, prefix);
      else
        g_free (prefix);
    }
  return prefixes;
}

static char *
detect_prefix (const AgcWeights *weights, GError **error)
{
  g_autoptr (GPtrArray) prefixes = resnet_prefixes (weights);
  if (prefixes->len == 0) // loading names the missing tensor
    return g_strdup ("");
  if (prefixes->len == 1)
    return g_strdup (g_ptr_array_index (prefixes, 0));
  int teacher = -1, n_teachers = 0;
  for (guint i = 0; i < prefixes->len; i++)
    if (g_str_has_prefix (g_ptr_array_index (prefixes, i), "teacher"))
      teacher = (int) i, n_teachers++;
  if (n_teachers == 1)
    return g_strdup (g_ptr_array_index (prefixes, teacher));
  g_autoptr (GString) list = g_string_new (NULL);
  for (guint i = 0; i < prefixes->len; i++)
    g_string_append_printf (list, "%s'%s'", i > 0 ? ", " : "",
                            (const char *) g_ptr_array_index (prefixes, i));
  g_set_error (error, AGC_ERROR, AGC_ERROR_MODEL,
               "%s: several ResNets, under the prefixes %s: choose one with "
               "\"image_encoder\": {\"prefix\": …} in " AGC_AGRICLIP_MANIFEST,
               agc_weights_path (weights), list->str);
  return NULL;
}

char *
agc_agriclip_resnet_prefix (const AgcWeights *weights, const char *prefix, GError **error)
{
  return prefix != NULL ? g_strdup (prefix) : detect_prefix (weights, error);
}

static AgcResNet *
load_resnet (const char *path, const char *prefix, GError **error)
{
  AgcWeights *weights = agc_weights_open (path, error);
  if (weights == NULL)
    return NULL;
  g_autofree char *detected = prefix == NULL ? detect_prefix (weights, error) : NULL;
  AgcResNet *resnet = NULL;
  if (prefix != NULL || detected != NULL)
    resnet = agc_resnet_load (weights, prefix != NULL ? prefix : detected, error);
  agc_weights_free (weights); // the ResNet holds folded copies
  return resnet;
}

/* ---- the whole ---------------------------------------------------------------- */

static void
parts_clear (AgcAgriclipParts *parts)
{
  agc_agriclip_image_free (parts->image);
  agc_text_tower_free (parts->text);
  agc_weights_free (parts->text_weights);
  g_free (parts->text_model);
  *parts = (AgcAgriclipParts) { 0 };
}

static gboolean
load_text (AgcAgriclipParts *parts, const char *text_model, int image_size, GError **error)
{
  AgcPreprocess unused; // the CLIP's: AgriCLIP's images go to the ResNet
  if (!agc_model_files_open (text_model, &parts->text_weights, &parts->config, &unused, error)
      || !(parts->text = agc_text_tower_load (parts->text_weights, &parts->config, error)))
    return FALSE;
  parts->text_model = g_strdup (text_model); // its tokenizer is read on first use (model.c)
  // the CLIP's image tower is not used: only the input size is the model's
  parts->config.vision = (AgcTowerConfig) { .image_size = image_size };
  return TRUE;
}

gboolean
agc_agriclip_load (AgcAgriclipParts *parts, const char *dir, GError **error)
{
  g_return_val_if_fail (parts != NULL && dir != NULL, FALSE);
  *parts = (AgcAgriclipParts) { 0 };
  AgcAgriclipManifest manifest;
  if (!agc_agriclip_manifest_load (&manifest, dir, error))
    return FALSE;

  // cheap checks first: the ResNet is the largest file
  gboolean ok = load_text (parts, manifest.text_model, manifest.image_size, error);
  AgcAgriclipImage *image = parts->image
    = image_new (parts->config.projection_dim, manifest.image_size);
  ok = ok && load_aligner (image, manifest.aligner, image->embed_dim, error)
       && (image->resnet = load_resnet (manifest.image_weights, manifest.image_prefix, error));
  if (ok)
    {
      parts->preprocess = agc_preprocess_imagenet_defaults (manifest.image_size);
      parts->temperature = (float) manifest.temperature;
    }
  else
    parts_clear (parts);
  agc_agriclip_manifest_clear (&manifest);
  return ok;
}

static gboolean
image_forward (AgcImageEncoder *encoder, const float *pixels, int batch, float *out,
               GError **error)
{
  AgcAgriclipImage *image = (AgcAgriclipImage *) encoder;
  g_return_val_if_fail (image != NULL && batch >= 0, FALSE);
  if (batch == 0)
    return TRUE;
  float *features = g_try_new (float, (size_t) batch * AGC_RESNET_FEATURES); // [B, 2048]
  if (features == NULL)
    {
      g_set_error (error, AGC_ERROR, AGC_ERROR_INPUT,
                   "out of memory for the features of %d images", batch);
      return FALSE;
    }
  gboolean ok = agc_resnet_forward (image->resnet, pixels, batch, image->size, image->size,
                                    features, error);
  if (ok) // a = f @ W^T + b
    agc_linear_forward (out, features, image->weight, image->bias, batch, AGC_RESNET_FEATURES,
                        image->embed_dim);
  g_free (features);
  return ok;
}

static gboolean
set_options (AgcImageEncoder *encoder, const AgcEngineOptions *options, GError **error)
{
  return agc_resnet_set_options (((AgcAgriclipImage *) encoder)->resnet, options, error);
}

static gboolean
is_resnet_tensor (const char *name)
{
  return g_str_has_prefix (name, "conv1.") || g_str_has_prefix (name, "bn1.")
         || g_str_has_prefix (name, "layer");
}

// the adapter's ResNet-50 (*resnet NULL when it has no ResNet tensors),
// with the options of the one it replaces
static gboolean
load_adapter_resnet (const AgcAdapter *adapter, const AgcResNet *current, AgcResNet **resnet,
                     GError **error)
{
  AgcWeights *weights = agc_weights_new_empty (agc_adapter_path (adapter));
  int n = 0;
  for (int i = 0; i < agc_adapter_n_tensors (adapter); i++)
    {
      AgcTensorView view = { .dtype = AGC_DTYPE_F32 };
      int n_dims;
      const float *data = agc_adapter_tensor (adapter, i, &view.name, &n_dims, view.shape);
      if (!is_resnet_tensor (view.name))
        continue;
      view.n_dims = n_dims;
      view.data = (const guint8 *) data;
      view.n_bytes = sizeof (float) * (size_t) agc_tensor_n_elements (&view);
      agc_weights_add (weights, view.name, &view, NULL);
      n++;
    }
  *resnet = n > 0 ? agc_resnet_load (weights, "", error) : NULL;
  agc_weights_free (weights);
  AgcEngineOptions options = agc_resnet_get_options (current);
  if (*resnet != NULL && !agc_resnet_set_options (*resnet, &options, error))
    g_clear_pointer (resnet, agc_resnet_free);
  if (n > 0 && *resnet == NULL)
    {
      g_prefix_error (error, "%s: ", agc_adapter_path (adapter));
      return FALSE;
    }
  return TRUE;
}

gboolean
agc_agriclip_image_apply_resnet (AgcAgriclipImage *image, const AgcAdapter *adapter,
                                 GError **error)
{
  AgcResNet *resnet;
  if (!load_adapter_resnet (adapter, image->resnet, &resnet, error))
    return FALSE;
  if (resnet != NULL)
    {
      agc_resnet_free (image->resnet);
      image->resnet = resnet;
    }
  return TRUE;
}

// an "aligner" adapter: its W [E, 2048] and b [E] replace the aligner; a
// "dino" one (or an aligner stacked on it): its ResNet-50 tensors, under
// torchvision's names, replace the ResNet
static gboolean
apply_aligner (AgcImageEncoder *encoder, const AgcAdapter *adapter, GError **error)
{
  for (int i = 0; i < agc_adapter_n_tensors (adapter); i++)
    {
      // a stacked adapter may carry tensors of another method: never drop them silently
      const char *name;
      agc_adapter_tensor (adapter, i, &name, NULL, NULL);
      if (strcmp (name, "W") != 0 && strcmp (name, "b") != 0 && !is_resnet_tensor (name))
        {
          g_set_error (error, AGC_ERROR, AGC_ERROR_UNSUPPORTED,
                       "%s: tensor '%s' is not one this version applies to an AgriCLIP model",
                       agc_adapter_path (adapter), name);
          return FALSE;
        }
    }
  int64_t w_shape[2], b_shape[1];
  const float *w = agc_adapter_find_tensor (adapter, "W", 2, w_shape);
  const float *b = agc_adapter_find_tensor (adapter, "b", 1, b_shape);
  gboolean dino = strcmp (agc_adapter_method (adapter), "dino") == 0;
  if (!dino && (w == NULL || b == NULL || b_shape[0] != w_shape[0]))
    {
      g_set_error (error, AGC_ERROR, AGC_ERROR_FORMAT,
                   "%s: an aligner adapter holds 'W' [E, 2048] and 'b' [E]",
                   agc_adapter_path (adapter));
      return FALSE;
    }
  AgcAgriclipImage *image = (AgcAgriclipImage *) encoder;
  AgcResNet *resnet; // loaded before anything is set: a bad adapter changes nothing
  if (!load_adapter_resnet (adapter, image->resnet, &resnet, error))
    return FALSE;
  if (!dino
      && !agc_agriclip_image_set_aligner (image, w, b, (int) w_shape[0], (int) w_shape[1],
                                          error))
    {
      g_prefix_error (error, "%s: ", agc_adapter_path (adapter));
      agc_resnet_free (resnet);
      return FALSE;
    }
  if (resnet != NULL)
    {
      agc_resnet_free (image->resnet);
      image->resnet = resnet;
    }
  return TRUE;
}

static void
encoder_free (AgcImageEncoder *encoder)
{
  agc_agriclip_image_free ((AgcAgriclipImage *) encoder);
}

static const AgcImageEncoderClass agriclip_class = {
  .forward = image_forward,
  .set_options = set_options,
  .cache_variant = agc_image_encoder_int8_variant,
  .adapter_method = "aligner",
  .adapter_method_too = "dino",
  .apply_adapter = apply_aligner,
  .class_recipe = AGC_CLASS_MEAN_OF_RAW,
  .free = encoder_free,
};

AgcImageEncoder *
agc_agriclip_image_encoder (AgcAgriclipImage *image)
{
  g_return_val_if_fail (image != NULL, NULL);
  return &image->base;
}

/* ---- for training the aligner and applying its adapters ---------------------- */

AgcAgriclipImage *
agc_agriclip_image_load (const AgcAgriclipManifest *manifest, int embed_dim, GError **error)
{
  g_return_val_if_fail (manifest != NULL && embed_dim > 0, NULL);
  AgcAgriclipImage *image = image_new (embed_dim, manifest->image_size);
  if (!load_aligner (image, manifest->aligner, embed_dim, error)
      || !(image->resnet = load_resnet (manifest->image_weights, manifest->image_prefix, error)))
    g_clear_pointer (&image, agc_agriclip_image_free);
  return image;
}

gboolean
agc_agriclip_image_features (const AgcAgriclipImage *image, const float *pixels, int batch,
                             float *features, GError **error)
{
  g_return_val_if_fail (image != NULL && batch >= 0, FALSE);
  return batch == 0
         || agc_resnet_forward (image->resnet, pixels, batch, image->size, image->size,
                                features, error);
}

int
agc_agriclip_image_aligner (const AgcAgriclipImage *image, const float **weight,
                            const float **bias)
{
  g_return_val_if_fail (image != NULL, 0);
  *weight = image->weight;
  *bias = image->bias;
  return image->embed_dim;
}

gboolean
agc_agriclip_image_set_aligner (AgcAgriclipImage *image, const float *weight, const float *bias,
                                int out_dim, int in_dim, GError **error)
{
  g_return_val_if_fail (image != NULL && weight != NULL && bias != NULL, FALSE);
  if (out_dim != image->embed_dim || in_dim != AGC_RESNET_FEATURES)
    {
      g_set_error (error, AGC_ERROR, AGC_ERROR_MODEL,
                   "aligner 'W' [%d, %d], 'b' [%d]: the model's aligner maps its %d image "
                   "features to %d values (W [%d, %d], b [%d])",
                   out_dim, in_dim, out_dim, AGC_RESNET_FEATURES, image->embed_dim,
                   image->embed_dim, AGC_RESNET_FEATURES, image->embed_dim);
      return FALSE;
    }
  // the same sizes: the copies go where the old values were (memmove: the
  // caller may hand back the arrays of agc_agriclip_image_aligner)
  memmove (image->weight, weight, sizeof (float) * (size_t) out_dim * in_dim);
  memmove (image->bias, bias, sizeof (float) * (size_t) out_dim);
  return TRUE;
}

static gboolean
features_preprocess (float *pixels, const AgcImage *image, gpointer data, GError **error)
{
  const AgcModel *model = ((gpointer *) data)[0]; // AgriCLIP's own preprocessing
  return agc_model_preprocess (model, image, pixels, error);
}

// both at once, a JPEG resized as it is decoded; the full decode, as the cache key says
static gboolean
features_load_input (const char *path, float *pixels, int *width, int *height, gpointer data,
                     GError **error)
{
  const AgcModel *model = ((gpointer *) data)[0];
  return agc_model_load_input (model, path, FALSE, pixels, width, height, error);
}

static gboolean
features_encode (float *out, const float *pixels, int n, gpointer data,
                 GCancellable *cancellable, GError **error)
{
  (void) cancellable; // checked between batches by the cache
  return agc_agriclip_image_features (((gpointer *) data)[1], pixels, n, out, error);
}

gboolean
agc_agriclip_features_cached (float *out, gboolean *ok, char (*hashes)[AGC_SHA256_HEX],
                              AgcEmbedCounts *counts, const AgcModel *model,
                              const AgcAgriclipImage *image, const char *const *files,
                              int n_files, AgcTrainReportFunc report,
                              void (*progress) (int done, int total, gpointer user_data),
                              gpointer user_data, GCancellable *cancellable, GError **error)
{
  g_autofree char *identity = agc_model_identity (model, error);
  if (identity == NULL)
    return FALSE;
  g_autofree char *key = agc_model_cache_key (model, identity, "-resnet-features");
  gconstpointer both[2] = { model, image };
  AgcCachedEncoder encoder = {
    .key = key, .dim = AGC_RESNET_FEATURES, .unit_norm = FALSE,
    .image_size = agc_model_image_size (model), .preprocess = features_preprocess,
    .encode = features_encode, .data = (gpointer) both, .load_input = features_load_input,
  };
  return agc_encode_files_cached (out, ok, hashes, counts, &encoder, files, n_files, report,
                                  progress, user_data, cancellable, error);
}
