/* image-batch.h — groups of images from the library's decoding pipeline
 * (agc_image_pipeline_*) gathered into one batch of model input, so the
 * encoder runs on thick GEMMs while a bad file costs only itself. */
#pragma once

#include "agriclip.h"

/* Most images encoded together. */
#define CLI_IMAGE_BATCH 8

/* Takes the next n_files (<= CLI_IMAGE_BATCH) images of pipeline into
 * pixels[n_ok, 3, S, S]; loaded[j] is the index among those n_files of batch
 * row j.  Files that fail are reported through report (when not NULL) or,
 * without report, stop the batch with *error set.  Returns n_ok, or -1 on
 * error. */
int cli_next_images (AgcImagePipeline *pipeline, int size, int n_files, float *pixels,
                     int *loaded, void (*report) (const GError *error), GError **error);
