/* synth-shape.h — leaf outlines for `agriclip synth`, in leaf coordinates.
 *
 * Leaf coordinates: u runs along the midrib from the base (u = -1) to the
 * tip (u = +1), v across it; one unit is half the leaf's length (the scene
 * maps units to pixels).  An outline is a point-in-leaf test, which the
 * rasteriser samples several times per pixel on edges. */
#pragma once

#include <glib.h>

#include "synth-random.h"

typedef enum
{
  SYNTH_SHAPE_OVAL,
  SYNTH_SHAPE_NARROW, /* a grass blade */
  SYNTH_SHAPE_HEART,
  SYNTH_SHAPE_LOBED,  /* maple-like */
  SYNTH_SHAPE_ROUND,
  SYNTH_N_SHAPES,
} SynthShape;

#define SYNTH_MAX_LOBES 7

typedef struct
{
  SynthShape shape;
  float width;       /* oval, narrow, round: largest half-width */
  float tip;         /* oval: how much the tip half narrows (0: an ellipse) */
  float heart_u;     /* heart: centre of the two basal lobes on the midrib */
  float heart_v;     /* heart: their distance from the midrib */
  float heart_r;     /* heart: their radius (> heart_v, which makes the notch) */
  int n_lobes;       /* lobed: 3, 5 or 7 */
  float lobe_angle[SYNTH_MAX_LOBES]; /* lobed: direction of each lobe, 0 = tip */
  float lobe_half;   /* lobed: half the angular width of a lobe */
  float lobe_inner;  /* lobed: radius of the sinuses between lobes */
  float teeth;       /* lobed: number of serrations around the margin */
} SynthOutline;

/* Random proportions for a shape. */
void synth_outline_sample (SynthOutline *outline, SynthRng *rng, SynthShape shape);

/* Whether (u, v) lies in the leaf. */
gboolean synth_outline_inside (const SynthOutline *outline, float u, float v);
