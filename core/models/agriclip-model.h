/* agriclip-model.h — AgriCLIP as its authors' code runs it (REFERENCE.md §1).
 *
 * Image: ImageNet preprocessing at 224 (bilinear; the manifest's image_size
 * when it gives one), a DINO-trained ResNet-50
 * (resnet.h) pooled to f[2048], the linear aligner a = W f + b into the
 * text space, L2-normalised by the caller like any embedding.
 * Text: the text tower of a CLIP ViT-B/16 (any model-files.h layout: a
 * Hugging Face folder, an OpenAI .pt), its tokenizer from the same folder.
 * Classes: the mean of the *unnormalised* prompt embeddings, normalised
 * (AGC_CLASS_MEAN_OF_RAW); probabilities softmax(temperature · cos), the
 * temperature from the manifest (agriclip-manifest.h), 100 by default: the
 * released code has no logit scale and compares cosines only.
 *
 * The aligner file holds {'W', 'b'} (torch.save'd).  The released code
 * computes f @ W.T + b, so W is stored [E, 2048] as a torch Linear weight;
 * a W stored [2048, E] (someone's f @ W) is recognised by its shape and
 * transposed.  A square W (E = 2048) is read as [out, in].  A missing 'b'
 * (saved as None by aligners trained without bias) means b = 0.
 *
 * ResNet tensor names: image_encoder.prefix when the manifest gives one;
 * otherwise the prefix is detected as the one under which both
 * "conv1.weight" and "layer1.0.conv1.weight" exist ("" for the released
 * dino_pretrain.pth, "backbone." for the teacher or student dict of a DINO
 * training checkpoint, whose "module." the checkpoint reader strips).  If
 * several ResNets are found, the one under a "teacher" prefix is used (DINO
 * evaluates its teacher); otherwise the manifest must choose.
 *
 * model.c uses these calls (the AgcModel owns the parts afterwards);
 * aligner-train.c the image-path calls at the end. */
#pragma once

#include "models/agriclip-manifest.h" /* agc_agriclip_is_folder */
#include "models/clip-config.h"
#include "models/embedding-cache.h" /* agc_agriclip_features_cached */
#include "models/image-encoder.h"
#include "nn/text-tower.h"
#include "text/tokenizer.h"
#include "formats/weights.h"

typedef struct AgcAgriclipImage AgcAgriclipImage;

typedef struct
{
  AgcAgriclipImage *image;  /* ResNet-50 + aligner */
  AgcClipConfig config;     /* text: the text model's; projection_dim = E; vision: only
                               image_size (the manifest's, 224) is set */
  AgcWeights *text_weights; /* Hugging Face-named, mapped: the text tower reads them */
  AgcTextTower *text;
  char *text_model;         /* the manifest's text_model: model.c reads its tokenizer
                               when text is first encoded */
  AgcPreprocess preprocess; /* ImageNet mean/std, bilinear, image_size */
  float temperature;
} AgcAgriclipParts;

/* Loads every part of the AgriCLIP folder dir.  Errors name the file: those
 * of agriclip-manifest.h, model-files.h and resnet.h, and AGC_ERROR_MODEL
 * for an aligner that is not {'W', 'b'} or whose output size differs from
 * the text tower's projection.  On failure every part is freed and *parts
 * zeroed. */
gboolean agc_agriclip_load (AgcAgriclipParts *parts, const char *dir, GError **error);

/* The image path as a model's image encoder (image-encoder.h): forward
 * pixels[batch, 3, S, S] (preprocessed, S the manifest's image_size) -> out[batch, E], the aligner's
 * output, not normalised; "aligner" adapters; no int8 mode.  The encoder is
 * the image: freeing one frees the other. */
AgcImageEncoder *agc_agriclip_image_encoder (AgcAgriclipImage *image);
void agc_agriclip_image_free (AgcAgriclipImage *image);

/* ---- for training the aligner (aligner-train.c) and applying its adapters
 * (model.c) ---- */

/* The prefix of the ResNet's tensor names in weights: the manifest's
 * prefix when not NULL, else the one found (a teacher's among several). */
char *agc_agriclip_resnet_prefix (const AgcWeights *weights, const char *prefix, GError **error);

/* An adapter's ResNet-50 tensors (a dino adapter's, or those an aligner
 * stacked on one carries; torchvision's names) replace image's ResNet;
 * nothing when it has none. */
gboolean agc_agriclip_image_apply_resnet (AgcAgriclipImage *image, const AgcAdapter *adapter,
                                          GError **error);

/* The image path alone (ResNet-50 and aligner to embed_dim values) of the
 * folder a manifest describes, with agc_agriclip_load's errors: training
 * needs the features, not the text side. */
AgcAgriclipImage *agc_agriclip_image_load (const AgcAgriclipManifest *manifest, int embed_dim,
                                           GError **error);
/* pixels[batch, 3, S, S] (preprocessed) -> features[batch, 2048]: the
 * ResNet's pooled features f, before the aligner. */
gboolean agc_agriclip_image_features (const AgcAgriclipImage *image, const float *pixels,
                                      int batch, float *features, GError **error);
/* The aligner in use, a = W f + b: *weight [E, 2048] and *bias [E], owned by
 * the image.  Returns E. */
int agc_agriclip_image_aligner (const AgcAgriclipImage *image, const float **weight,
                                const float **bias);
/* Replaces the aligner by copies of weight[out_dim, in_dim] and
 * bias[out_dim] (an "aligner" adapter's "W" and "b").  AGC_ERROR_MODEL,
 * naming both shapes, unless out_dim = E and in_dim = 2048. */
gboolean agc_agriclip_image_set_aligner (AgcAgriclipImage *image, const float *weight,
                                         const float *bias, int out_dim, int in_dim,
                                         GError **error);

/* The ResNet features out[n_files, AGC_RESNET_FEATURES] (before the
 * aligner, not normalised) of image files, computed by image with model's
 * preprocessing, through the embedding cache (embedding-cache.h) under the
 * key of model as it runs now (agc_model_cache_key: a dino adapter, or one
 * stacked on it, changes the ResNet); otherwise as agc_encode_files_cached. */
gboolean agc_agriclip_features_cached (float *out, gboolean *ok,
                                       char (*hashes)[AGC_SHA256_HEX], AgcEmbedCounts *counts,
                                       const AgcModel *model, const AgcAgriclipImage *image,
                                       const char *const *files, int n_files,
                                       AgcTrainReportFunc report,
                                       void (*progress) (int done, int total, gpointer user_data),
                                       gpointer user_data, GCancellable *cancellable,
                                       GError **error);
