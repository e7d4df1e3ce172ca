/* preprocess.h — image -> model input, as CLIP's and torchvision's
 * transforms do it: resize the shorter side (long side int(n * long / short)),
 * centre crop with offset round((size - crop) / 2) (Python rounding), /255,
 * normalise per channel, channels first. */
#pragma once

#include "agriclip.h"
#include "images/resize.h"

typedef struct
{
  int shortest_edge; /* resize target of the shorter side */
  int crop_width;
  int crop_height;
  AgcFilter filter;
  float mean[3];
  float std[3];
} AgcPreprocess;

/* OpenAI CLIP at a given input size: bicubic, CLIP mean/std. */
AgcPreprocess agc_preprocess_clip_defaults (int image_size);
/* torchvision ImageNet models (AgriCLIP's ResNet-50): bilinear, antialiased
 * as PIL always is, ImageNet mean/std. */
AgcPreprocess agc_preprocess_imagenet_defaults (int image_size);

/* pixels[3, crop_height, crop_width]. */
gboolean agc_preprocess_image (const AgcPreprocess *config, const AgcImage *image,
                               float *pixels, GError **error);

/* The file at path (a JPEG at Pillow's draft scale for draft x draft when
 * draft > 0, as agc_image_load_draft) -> pixels[3, crop_height, crop_width],
 * equal to agc_preprocess_image of the loaded image; a JPEG is resized as
 * its rows are decoded, without the full image in memory.  *width, *height:
 * the (upright, drafted) image's size. */
gboolean agc_preprocess_file (const AgcPreprocess *config, const char *path, int draft,
                              float *pixels, int *width, int *height, GError **error);

/* The resized 8-bit image before cropping (exposed for tests and previews). */
AgcImage *agc_preprocess_resize (const AgcPreprocess *config, const AgcImage *image,
                                 GError **error);
