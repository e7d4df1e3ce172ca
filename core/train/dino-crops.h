/* dino-crops.h — DINO's multi-crop augmentation (facebookresearch/dino,
 * main_dino.py DataAugmentationDINO), deterministic for a seed.
 *
 * Of one RGB photo: two global crops and n_local local crops, each
 *   RandomResizedCrop (torchvision's sampling: 10 tries of an area share in
 *     [scale_min, scale_max] and a log-uniform aspect in [3/4, 4/3], else
 *     the centre crop; resized bicubically as Pillow does, images/resize.h)
 *     — global scale (0.4, 1) to global_size, local (0.05, 0.4) to local_size,
 *   horizontal flip (p 0.5),
 *   colour jitter (p 0.8): brightness 0.4, contrast 0.4, saturation 0.2,
 *     hue 0.1, in a random order, each as Pillow's ImageEnhance (a blend
 *     with black, the grey mean, the grey image) and a hue shift in HSV,
 *     computed in float and rounded to 8 bits after each,
 *   grayscale (p 0.2, ITU-R 601 luma as Pillow's "L"),
 *   Gaussian blur with a radius in U(0.1, 2): p 1.0 for the first global
 *     crop, 0.1 for the second, 0.5 for the local ones (a true Gaussian,
 *     sigma = radius, cut at 3 sigma, edges repeated; Pillow approximates
 *     it with box blurs),
 *   solarize (p 0.2, second global crop only: values >= 128 inverted),
 *   normalisation by mean and std (ImageNet's; a CLIP model's own), [3, S, S]
 *   float.
 * The random numbers come from GRand seeded with (seed, image index,
 * epoch): the same run crops the same way on every machine. */
#pragma once

#include <glib.h>

typedef struct
{
  int global_size, local_size, n_local;   /* 224, 96, 6 */
  double global_scale[2], local_scale[2]; /* (0.4, 1), (0.05, 0.4) */
  float mean[3], std[3];                  /* ImageNet's */
} AgcDinoCropParams;

AgcDinoCropParams agc_dino_crop_defaults (void);

/* rgb[height, width, 3] -> global[2, 3, G, G], local[n_local, 3, L, L].
 * FALSE only without memory for a resize. */
gboolean agc_dino_crops (const AgcDinoCropParams *params, const guint8 *rgb, int width,
                         int height, guint64 seed, guint64 image, guint64 epoch, float *global,
                         float *local);
