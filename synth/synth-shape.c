/* synth-shape.c — the five leaf outlines: a half-width profile along the
 * midrib for the simple shapes, two overlapping discs under a tapered tip
 * for the heart, and a radius by angle for the maple-like leaf. */
#include "synth-shape.h"

#include <math.h>

void
synth_outline_sample (SynthOutline *o, SynthRng *rng, SynthShape shape)
{
  *o = (SynthOutline) { .shape = shape };
  switch (shape)
    {
    case SYNTH_SHAPE_OVAL:
      o->width = synth_uniform (rng, 0.48f, 0.64f);
      o->tip = synth_uniform (rng, 0.15f, 0.45f);
      break;
    case SYNTH_SHAPE_NARROW:
      o->width = synth_uniform (rng, 0.11f, 0.16f);
      break;
    case SYNTH_SHAPE_ROUND:
      o->width = synth_uniform (rng, 0.88f, 1.0f);
      break;
    case SYNTH_SHAPE_HEART:
      o->heart_u = synth_uniform (rng, -0.42f, -0.3f);
      o->heart_v = synth_uniform (rng, 0.3f, 0.38f);
      o->heart_r = o->heart_v + synth_uniform (rng, 0.1f, 0.16f);
      break;
    case SYNTH_SHAPE_LOBED:
      {
        /* Mostly five lobes, as a maple; the spread keeps the outer lobes
         * clear of the stalk at the base (angle pi). */
        static const int lobes[] = { 3, 5, 5, 5, 7 };
        o->n_lobes = lobes[synth_below (rng, G_N_ELEMENTS (lobes))];
        float spread = (o->n_lobes == 3 ? synth_uniform (rng, 1.0f, 1.2f)
                        : o->n_lobes == 5 ? synth_uniform (rng, 0.75f, 0.9f)
                                          : synth_uniform (rng, 0.58f, 0.66f));
        for (int k = 0; k < o->n_lobes; k++)
          o->lobe_angle[k] = (float) (k - o->n_lobes / 2) * spread
                             + synth_uniform (rng, -0.06f, 0.06f);
        o->lobe_half = spread * synth_uniform (rng, 0.62f, 0.72f);
        o->lobe_inner = synth_uniform (rng, 0.48f, 0.6f);
        o->teeth = (float) (16 + synth_below (rng, 10));
      }
      break;
    case SYNTH_N_SHAPES:
      g_return_if_reached ();
    }
}

static gboolean
inside_profile (const SynthOutline *o, float u, float v)
{
  if (u <= -1.0f || u >= 1.0f)
    return FALSE;
  float half;
  if (o->shape == SYNTH_SHAPE_NARROW)
    {
      /* a blade: even width that tapers to a point over the last part */
      float to_tip = fminf (1.0f, (1.0f - u) / 0.45f);
      float from_base = fminf (1.0f, (u + 1.0f) / 0.1f);
      half = o->width * to_tip * (0.7f + 0.3f * from_base);
    }
  else
    {
      half = o->width * sqrtf (1.0f - u * u);
      if (u > 0.0f)
        half *= 1.0f - o->tip * u * u; // a pointed tip
    }
  return fabsf (v) < half;
}

static gboolean
inside_heart (const SynthOutline *o, float u, float v)
{
  float av = fabsf (v);
  if (u >= o->heart_u)
    {
      /* the tip half: convex sides from the lobes' extent to the tip */
      if (u >= 1.0f)
        return FALSE;
      float t = (1.0f - u) / (1.0f - o->heart_u);
      return av < (o->heart_v + o->heart_r) * powf (t, 0.7f);
    }
  float du = u - o->heart_u, dv = av - o->heart_v;
  return du * du + dv * dv < o->heart_r * o->heart_r;
}

static gboolean
inside_lobed (const SynthOutline *o, float u, float v)
{
  float d2 = u * u + v * v;
  if (d2 >= 1.1f * 1.1f)
    return FALSE;
  if (d2 < o->lobe_inner * o->lobe_inner * 0.5f)
    return TRUE;
  float angle = atan2f (v, u), bump = 0.0f;
  for (int k = 0; k < o->n_lobes; k++)
    {
      float x = 1.0f - fabsf (angle - o->lobe_angle[k]) / o->lobe_half;
      if (x > bump)
        bump = x;
    }
  float r = o->lobe_inner + (1.0f - o->lobe_inner) * powf (bump, 1.1f);
  /* the notch where the stalk joins, opposite the tip */
  float from_stalk = (float) G_PI - fabsf (angle);
  if (from_stalk < 0.5f)
    r *= 0.55f + 0.45f * (from_stalk / 0.5f);
  r *= 1.0f + 0.035f * sinf (angle * o->teeth);
  return d2 < r * r;
}

gboolean
synth_outline_inside (const SynthOutline *o, float u, float v)
{
  switch (o->shape)
    {
    case SYNTH_SHAPE_HEART:
      return inside_heart (o, u, v);
    case SYNTH_SHAPE_LOBED:
      return inside_lobed (o, u, v);
    default:
      return inside_profile (o, u, v);
    }
}
