/* image-batch.h — decoding and preprocessing a group of image files into one
 * batch of model input, so the encoder runs on thick GEMMs while a bad file
 * costs only itself. */
#pragma once

#include "agriclip.h"

/* Most images encoded together. */
#define CLI_IMAGE_BATCH 8

/* Loads files[0..n_files) (n_files <= CLI_IMAGE_BATCH) and preprocesses them
 * into pixels[n_ok, 3, S, S]; loaded[j] is the index in files of batch row j.
 * Files that fail are reported through report (when not NULL) or, without
 * report, stop the batch with *error set.  Returns n_ok, or -1 on error. */
int cli_prepare_images (AgcModel *model, const char *const *files, int n_files, float *pixels,
                        int *loaded, void (*report) (const GError *error), GError **error);
