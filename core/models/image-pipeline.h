/* image-pipeline.h — the decoding pipeline of agriclip.h (agc_image_pipeline_*)
 * for any decoding and preprocessing, not only a model's own: the embedding
 * cache's encoders (AgriCLIP's ResNet features, a second model's tower) use
 * it with theirs. */
#pragma once

#include "agriclip.h"

/* How a file is decoded (NULL where a loader is optional: agc_image_load). */
typedef AgcImage *(*AgcImageLoadFunc) (const char *path, gpointer data, GError **error);
/* image -> pixels[3, S, S], the encoder's input. */
typedef gboolean (*AgcImagePreprocessFunc) (float *pixels, const AgcImage *image,
                                            gpointer data, GError **error);

/* Both at once, file -> pixels[3, S, S] (width, height: the decoded image's),
 * without the decoded image: a JPEG resized as its rows are decoded. */
typedef gboolean (*AgcImageLoadInputFunc) (const char *path, float *pixels, int *width,
                                           int *height, gpointer data, GError **error);

/* They are called on the worker threads, several at once and while the
 * caller encodes: they must not change shared state. */
typedef struct
{
  int image_size;                    /* S */
  AgcImageLoadFunc load;             /* NULL: agc_image_load */
  AgcImagePreprocessFunc preprocess;
  /* NULL, or load + preprocess in one, used where no options.extra needs the image */
  AgcImageLoadInputFunc load_input;
  gpointer data;                     /* for all */
} AgcImageDecoder;

/* The model's load_input (model.c): agc_model_load_image + agc_model_preprocess. */
gboolean agc_model_load_input (const AgcModel *model, const char *path, gboolean fast_decode,
                               float *pixels, int *width, int *height, GError **error);

/* As agc_image_pipeline_new, with decoder's functions instead of the
 * model's (options->fast_decode is then the loader's business). */
AgcImagePipeline *agc_image_pipeline_new_with_decoder (const AgcImageDecoder *decoder,
                                                      const char *const *paths, int n_paths,
                                                      const AgcImagePipelineOptions *options);
