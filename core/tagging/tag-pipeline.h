/* tag-pipeline.h — decoding and preprocessing on worker threads, ahead of
 * the encoder: images are handed out in order, a bounded number ahead. */
#pragma once

#include "tagging/tag-order.h"

typedef struct AgcTagPipeline AgcTagPipeline;

/* One decoded image. */
typedef struct
{
  GError *error;       /* the file could not be read, decoded or preprocessed */
  int width, height;   /* of the original image */
  float *pixels;       /* [3, S, S] model input */
  int n_tiles;         /* with regions */
  AgcRect *tiles;      /* [n_tiles] */
  float *tile_pixels;  /* [n_tiles, 3, S, S] */
} AgcTagDecoded;

/* Starts n_workers threads over images[n_images] (AgcTagImage, kept by the
 * caller).  tile > 0: each image's tiles of agc_tile_grid too.  ahead:
 * images decoded before the encoder takes them. */
AgcTagPipeline *agc_tag_pipeline_new (const AgcModel *model, AgcTagImage *const *images,
                                      int n_images, int tile, int stride, int n_workers,
                                      int ahead);
/* The next image in order (waits for it); valid until the next call. */
const AgcTagDecoded *agc_tag_pipeline_next (AgcTagPipeline *pipeline);
/* Stops the workers and frees everything. */
void agc_tag_pipeline_free (AgcTagPipeline *pipeline);
