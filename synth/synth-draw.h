/* synth-draw.h — the rasteriser of `agriclip synth`: a scene
 * (synth-scene.h) to anti-aliased RGB pixels.
 *
 * Every point of the image has a colour and a region (ground, a pebble,
 * the leaf, a spot, a ring band, a hole ...).  Pixels whose four corners
 * lie in one region take the mean of the corners; pixels on an edge
 * between regions are supersampled 4 x 4.  Colours within a region vary
 * smoothly (gradients, noise, soft veins), so the cost stays near one
 * sample per pixel while edges are anti-aliased like a 16x supersample. */
#pragma once

#include "synth-scene.h"

/* rgb[size, size, 3], 0..1 per channel (values may leave that range slightly;
 * synth_to_bytes clamps). */
void synth_draw (float *rgb, const SynthScene *scene);

/* out[n] = round(255 * clamp(rgb[n], 0, 1)). */
void synth_to_bytes (guint8 *out, const float *rgb, int n);
