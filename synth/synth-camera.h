/* synth-camera.h — the look of "my own photos" in `agriclip synth`: the
 * fine-tuning set is shot with another camera than the pre-training set,
 * a domain shift that zero-shot classification suffers from and a trained
 * adapter can learn: warm indoor light (a strong colour cast), dim
 * exposure, soft focus, sensor noise and JPEG-like chroma and block
 * artefacts.  The camera is the same for the whole set, with a little
 * variation from photo to photo, as with one phone. */
#pragma once

#include "synth-random.h"

typedef struct
{
  float gain[3];   /* colour cast: per-channel gain */
  float exposure;  /* overall brightness factor */
  float gamma;     /* > 1 darkens the mid-tones */
  int blur_passes; /* passes of a [1 2 1] / 4 blur in x and y */
  float noise;     /* standard deviation of per-pixel noise */
  float blocking;  /* brightness offsets of 8 x 8 blocks, at most */
} SynthCamera;

/* The fine-tuning set's camera, varied slightly per photo. */
void synth_camera_sample (SynthCamera *camera, SynthRng *rng);

/* Applies the camera to rgb[size, size, 3] in place; the noise comes
 * from rng. */
void synth_camera_apply (float *rgb, int size, const SynthCamera *camera, SynthRng *rng);
