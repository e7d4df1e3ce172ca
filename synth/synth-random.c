/* synth-random.c — seeding per image, and value noise. */
#include "synth-random.h"

#include <math.h>

SynthRng
synth_rng_for (guint64 seed, guint64 split, guint64 klass, guint64 index)
{
  /* Each coordinate goes through the mixer on its own, so that nearby
   * tuples (index 1 and 2) give unrelated streams. */
  SynthRng rng = { seed };
  guint64 parts[3] = { split, klass, index };
  for (int i = 0; i < 3; i++)
    {
      rng.state ^= parts[i] * 0xD1B54A32D192ED03ull;
      rng.state = synth_rng_next (&rng);
    }
  return rng;
}

static inline float
lattice (guint32 seed, gint32 x, gint32 y)
{
  guint32 h = seed ^ ((guint32) x * 0x27D4EB2Fu) ^ ((guint32) y * 0x165667B1u);
  h ^= h >> 15;
  h *= 0x85EBCA6Bu;
  h ^= h >> 13;
  h *= 0xC2B2AE35u;
  h ^= h >> 16;
  return (float) (h >> 8) * (2.0f / 16777216.0f) - 1.0f;
}

static inline float
smooth (float t)
{
  return t * t * (3.0f - 2.0f * t);
}

float
synth_value_noise (guint32 seed, float x, float y)
{
  float fx = floorf (x), fy = floorf (y);
  gint32 ix = (gint32) fx, iy = (gint32) fy;
  float tx = smooth (x - fx), ty = smooth (y - fy);
  float a = lattice (seed, ix, iy), b = lattice (seed, ix + 1, iy);
  float c = lattice (seed, ix, iy + 1), d = lattice (seed, ix + 1, iy + 1);
  float top = a + (b - a) * tx, bottom = c + (d - c) * tx;
  return top + (bottom - top) * ty;
}
