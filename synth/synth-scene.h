/* synth-scene.h — what one synthetic photo shows: a leaf of a given kind
 * (shape, colour, condition, mark colour) on a background, with every
 * random choice made (pose, proportions, veins, where the marks go,
 * colours).  Sampling a scene is cheap; synth-draw.h turns it into pixels.
 *
 * Sizes are chosen in pixels of a 64-pixel image and scaled with the
 * image, so that a larger --size gives the same pictures, sharper. */
#pragma once

#include "synth-shape.h"

typedef enum
{
  SYNTH_LEAF_GREEN,
  SYNTH_LEAF_YELLOW,
  SYNTH_LEAF_BROWN,
  SYNTH_LEAF_RED,
  SYNTH_N_LEAF_COLOURS,
} SynthLeafColour;

typedef enum
{
  SYNTH_HEALTHY,
  SYNTH_SPOTS,
  SYNTH_STRIPES, /* along the veins */
  SYNTH_RINGS,   /* target-like concentric spots */
  SYNTH_HOLES,   /* pest bites: the background shows through */
  SYNTH_POWDERY, /* soft powdery patches */
  SYNTH_N_CONDITIONS,
} SynthCondition;

typedef enum
{
  SYNTH_MARK_BLACK,
  SYNTH_MARK_WHITE,
  SYNTH_MARK_ORANGE,
  SYNTH_MARK_BROWN,
  SYNTH_N_MARK_COLOURS,
} SynthMarkColour;

typedef struct
{
  SynthShape shape;
  SynthLeafColour colour;
  SynthCondition condition;
  SynthMarkColour mark; /* only when synth_condition_has_marks () */
} SynthLeafKind;

/* Spots, stripes, rings and powder have a colour; health and holes not. */
gboolean synth_condition_has_marks (SynthCondition condition);
/* FALSE for marks that would not show: brown marks on a brown leaf. */
gboolean synth_kind_is_valid (SynthLeafKind kind);
/* Uniform over the valid kinds' attributes. */
SynthLeafKind synth_kind_random (SynthRng *rng);

#define SYNTH_MAX_VEINS 20
#define SYNTH_MAX_MARKS 24
#define SYNTH_MAX_CLUTTER 14

/* A line segment with round ends (a capsule when thick). */
typedef struct
{
  float x0, y0, dx, dy; /* start and direction vector (end - start) */
  float inv_len2;       /* 1 / |d|^2, 0 for a point */
} SynthSegment;

typedef struct
{
  SynthSegment line;   /* leaf coordinates */
  float half_width;    /* leaf units */
  float stripe_half;   /* a stripe along it (leaf units); 0: none */
  float stripe_t0, stripe_t1; /* the stretch of the vein it covers, 0..1 */
} SynthVein;

/* An ellipse in leaf coordinates: semi-axes r and r * aspect, the first
 * along (c, s).  Spots, ring spots, holes and powder patches. */
typedef struct
{
  float x, y, r, aspect, c, s;
} SynthMark;

/* A pebble (point) or twig on the ground, in pixels. */
typedef struct
{
  SynthSegment line;
  float radius;
  float rgb[3];
} SynthClutter;

typedef struct
{
  SynthLeafKind kind;
  int size; /* pixels per side */

  /* background: a linear gradient between two colours, with noise */
  float ground_rgb[2][3];
  float ground_dir[2];  /* gradient direction, per pixel */
  float ground_noise;   /* relative brightness variation */
  guint32 noise_seed;
  int n_clutter;
  SynthClutter clutter[SYNTH_MAX_CLUTTER];

  /* pose: leaf coordinates = rotate(-angle) (pixel - centre) / scale */
  float centre_x, centre_y, scale, cos_angle, sin_angle;
  SynthOutline outline;

  /* surface */
  float leaf_rgb[3], vein_rgb[3], mark_rgb[3], halo_rgb[3], rim_rgb[3];
  float fold;      /* one half of the leaf is this much darker */
  float pixel;     /* one pixel in leaf units */
  int n_veins;
  SynthVein veins[SYNTH_MAX_VEINS];
  int n_marks;     /* spots, ring spots, holes or powder patches */
  SynthMark marks[SYNTH_MAX_MARKS];
} SynthScene;

/* A random photo of a leaf of this kind, size x size pixels.  cluttered:
 * twigs and pebbles on the ground and a closer, less tidy framing (the
 * "own photos" set). */
void synth_scene_sample (SynthScene *scene, SynthRng *rng, SynthLeafKind kind, int size,
                         gboolean cluttered);

/* Distance from (x, y) to a segment, squared, and where along it (0..1)
 * the nearest point lies. */
float synth_segment_distance2 (const SynthSegment *segment, float x, float y, float *t);
