/* synth-random.h — the randomness of `agriclip synth`: a seeded generator
 * that gives the same numbers on every machine, and smooth value noise for
 * textures.
 *
 * Every image draws from its own generator, seeded from (seed, split,
 * class, index), so images can be drawn in any order or in parallel and
 * still come out byte for byte the same. */
#pragma once

#include <glib.h>

typedef struct
{
  guint64 state;
} SynthRng;

/* splitmix64: tiny, fast and well mixed; the same sequence everywhere. */
static inline guint64
synth_rng_next (SynthRng *rng)
{
  guint64 z = (rng->state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

/* Uniform in [lo, hi). */
static inline float
synth_uniform (SynthRng *rng, float lo, float hi)
{
  /* 24 bits: exactly representable in a float, so never reaches hi. */
  return lo + (hi - lo) * (float) (synth_rng_next (rng) >> 40) * (1.0f / 16777216.0f);
}

/* Uniform in [0, n), n > 0. */
static inline int
synth_below (SynthRng *rng, int n)
{
  return (int) ((synth_rng_next (rng) >> 33) % (guint64) n);
}

/* TRUE with probability p. */
static inline gboolean
synth_chance (SynthRng *rng, float p)
{
  return synth_uniform (rng, 0.0f, 1.0f) < p;
}

/* A generator for one image, independent of all others. */
SynthRng synth_rng_for (guint64 seed, guint64 split, guint64 klass, guint64 index);

/* Smooth noise in [-1, 1] with features about one unit apart: values on
 * the integer lattice, hashed from (seed, x, y), blended with smoothstep. */
float synth_value_noise (guint32 seed, float x, float y);
