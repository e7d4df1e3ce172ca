/* synth-draw.c — colour and region of a point, layer by layer (ground,
 * clutter, leaf, veins, marks), and the adaptive supersampling. */
#include "synth-draw.h"

#include <math.h>
#include <string.h>

/* Region codes: equal codes at a pixel's corners mean "no edge inside". */
enum
{
  REGION_LEAF = 1u << 8,
  REGION_HALF = 1u << 9,   /* the darker half of a folded leaf */
  REGION_STRIPE = 1u << 10,
  REGION_HOLE = 1u << 11,
  REGION_RIM = 1u << 12,
  REGION_MARK_SHIFT = 13,  /* (mark index + 1) * 8 + ring band */
};

static void
scale3 (float *rgb, const float *colour, float factor)
{
  for (int c = 0; c < 3; c++)
    rgb[c] = colour[c] * factor;
}

static void
blend (float *rgb, const float *colour, float alpha)
{
  for (int c = 0; c < 3; c++)
    rgb[c] += (colour[c] - rgb[c]) * alpha;
}

/* Squared elliptic radius of (u, v) in a mark: < 1 inside. */
static float
mark_norm2 (const SynthMark *m, float u, float v)
{
  float du = u - m->x, dv = v - m->y;
  float a = (du * m->c + dv * m->s) / m->r;
  float b = (dv * m->c - du * m->s) / (m->r * m->aspect);
  return a * a + b * b;
}

/* ---- ground ------------------------------------------------------------- */

static guint32
ground (const SynthScene *s, float x, float y, float *rgb)
{
  float half = 0.5f * (float) s->size;
  float t = 0.5f + (x - half) * s->ground_dir[0] + (y - half) * s->ground_dir[1];
  t = fminf (1.0f, fmaxf (0.0f, t));
  for (int c = 0; c < 3; c++)
    rgb[c] = s->ground_rgb[0][c] + (s->ground_rgb[1][c] - s->ground_rgb[0][c]) * t;
  float k = 64.0f / (float) s->size; // noise features in 64-pixel units
  float n = 0.7f * synth_value_noise (s->noise_seed, x * k / 9.0f, y * k / 9.0f)
            + 0.3f * synth_value_noise (s->noise_seed + 1, x * k / 2.5f, y * k / 2.5f);
  scale3 (rgb, rgb, 1.0f + s->ground_noise * n);
  for (int i = s->n_clutter - 1; i >= 0; i--) // the last one lies on top
    {
      const SynthClutter *c = &s->clutter[i];
      float d2 = synth_segment_distance2 (&c->line, x, y, NULL);
      if (d2 < c->radius * c->radius)
        {
          /* lit from the top left: a hint of volume */
          float light = 1.0f - 0.25f * ((x - c->line.x0) + (y - c->line.y0)) / (3.0f * c->radius);
          scale3 (rgb, c->rgb, fminf (1.3f, fmaxf (0.6f, light)));
          return 1u + (guint32) i;
        }
    }
  return 0;
}

/* ---- leaf --------------------------------------------------------------- */

/* Holes show the ground, ringed by a thin dead rim.  Returns 0 when (u, v)
 * is in no hole or rim. */
static guint32
holes (const SynthScene *s, float u, float v, float x, float y, float *rgb)
{
  for (int i = 0; i < s->n_marks; i++)
    if (mark_norm2 (&s->marks[i], u, v) < 1.0f)
      return ground (s, x, y, rgb) | REGION_HOLE;
  for (int i = 0; i < s->n_marks; i++)
    {
      float rim = 1.0f + 0.8f * s->pixel / s->marks[i].r;
      if (mark_norm2 (&s->marks[i], u, v) < rim * rim)
        {
          memcpy (rgb, s->rim_rgb, sizeof s->rim_rgb);
          return REGION_LEAF | REGION_RIM;
        }
    }
  return 0;
}

static guint32
surface (const SynthScene *s, float u, float v, float *rgb)
{
  float n = synth_value_noise (s->noise_seed + 2, u * 5.0f, v * 5.0f);
  float light = 1.0f + 0.07f * n + 0.06f * u;
  guint32 region = REGION_LEAF;
  if (v < 0.0f)
    light -= s->fold, region |= REGION_HALF;
  scale3 (rgb, s->leaf_rgb, light);
  for (int i = 0; i < s->n_veins; i++)
    {
      const SynthVein *vein = &s->veins[i];
      float t, d2 = synth_segment_distance2 (&vein->line, u, v, &t);
      if (vein->stripe_half > 0.0f && d2 < vein->stripe_half * vein->stripe_half
          && t >= vein->stripe_t0 && t <= vein->stripe_t1)
        {
          scale3 (rgb, s->mark_rgb, 1.0f + 0.08f * n);
          return region | REGION_STRIPE;
        }
      float reach = vein->half_width + s->pixel; // soft edge of one pixel
      if (d2 < reach * reach)
        {
          /* analytic coverage of a line: veins are thinner than a pixel */
          float alpha = (reach - sqrtf (d2)) / s->pixel;
          blend (rgb, s->vein_rgb, 0.65f * fminf (1.0f, alpha));
        }
    }
  return region;
}

static guint32
spots (const SynthScene *s, float u, float v, float *rgb)
{
  for (int i = 0; i < s->n_marks; i++)
    if (mark_norm2 (&s->marks[i], u, v) < 1.0f)
      {
        float n = synth_value_noise (s->noise_seed + 3, u * 9.0f, v * 9.0f);
        scale3 (rgb, s->mark_rgb, 1.0f + 0.1f * n);
        return (guint32) (i + 1) * 8u << REGION_MARK_SHIFT;
      }
  return 0;
}

/* Target spots: mark-coloured centre and rings with halo bands between,
 * and a faint halo around. */
static guint32
rings (const SynthScene *s, float u, float v, float *rgb)
{
  static const float bands[] = { 0.3f, 0.5f, 0.72f, 0.88f, 1.0f };
  for (int i = 0; i < s->n_marks; i++)
    {
      float e = mark_norm2 (&s->marks[i], u, v);
      if (e >= 1.3f * 1.3f)
        continue;
      float rho = sqrtf (e);
      guint32 band = 0;
      while (band < G_N_ELEMENTS (bands) && rho >= bands[band])
        band++;
      if (band == G_N_ELEMENTS (bands))
        blend (rgb, s->halo_rgb, 0.45f);
      else
        memcpy (rgb, band % 2 == 0 ? s->mark_rgb : s->halo_rgb, sizeof s->mark_rgb);
      return ((guint32) (i + 1) * 8u + band) << REGION_MARK_SHIFT;
    }
  return 0;
}

/* Powder: soft patches with a fine speckle, no hard edge. */
static void
powder (const SynthScene *s, float u, float v, float *rgb)
{
  float density = 0.0f;
  for (int i = 0; i < s->n_marks; i++)
    density += fmaxf (0.0f, 1.0f - mark_norm2 (&s->marks[i], u, v));
  if (density <= 0.0f)
    return;
  float speckle = synth_value_noise (s->noise_seed + 4, u * s->scale / 1.6f,
                                     v * s->scale / 1.6f);
  float alpha = (density * (0.7f + 0.6f * speckle) - 0.08f) * 2.0f;
  blend (rgb, s->mark_rgb, fminf (0.85f, fmaxf (0.0f, alpha)));
}

static guint32
leaf (const SynthScene *s, float u, float v, float x, float y, float *rgb)
{
  if (s->kind.condition == SYNTH_HOLES && s->n_marks > 0)
    {
      guint32 region = holes (s, u, v, x, y, rgb);
      if (region)
        return region;
    }
  guint32 region = surface (s, u, v, rgb);
  if (region & REGION_STRIPE)
    return region;
  switch (s->kind.condition)
    {
    case SYNTH_SPOTS: return region | spots (s, u, v, rgb);
    case SYNTH_RINGS: return region | rings (s, u, v, rgb);
    case SYNTH_POWDERY: powder (s, u, v, rgb); return region;
    default: return region;
    }
}

/* The colour (rgb[3]) and region of image point (x, y), in pixels. */
static guint32
sample (const SynthScene *s, float x, float y, float *rgb)
{
  float dx = x - s->centre_x, dy = y - s->centre_y;
  float u = (dx * s->cos_angle + dy * s->sin_angle) * s->pixel;
  float v = (dy * s->cos_angle - dx * s->sin_angle) * s->pixel;
  if (synth_outline_inside (&s->outline, u, v))
    return leaf (s, u, v, x, y, rgb);
  return ground (s, x, y, rgb);
}

/* ---- supersampling ------------------------------------------------------ */

#define EDGE_SAMPLES 4 /* per axis, on pixels with an edge */

static void
supersample (const SynthScene *s, int x, int y, float *rgb)
{
  float sum[3] = { 0, 0, 0 }, one[3];
  for (int j = 0; j < EDGE_SAMPLES; j++)
    for (int i = 0; i < EDGE_SAMPLES; i++)
      {
        sample (s, (float) x + ((float) i + 0.5f) / EDGE_SAMPLES,
                (float) y + ((float) j + 0.5f) / EDGE_SAMPLES, one);
        for (int c = 0; c < 3; c++)
          sum[c] += one[c];
      }
  for (int c = 0; c < 3; c++)
    rgb[c] = sum[c] / (EDGE_SAMPLES * EDGE_SAMPLES);
}

void
synth_draw (float *rgb, const SynthScene *s)
{
  int n = s->size, stride = n + 1;
  float *corner_rgb = g_new (float, (gsize) stride * stride * 3);
  guint32 *corner_region = g_new (guint32, (gsize) stride * stride);
  for (int y = 0; y <= n; y++)
    for (int x = 0; x <= n; x++)
      corner_region[y * stride + x] = sample (s, (float) x, (float) y,
                                              corner_rgb + (gsize) (y * stride + x) * 3);
  for (int y = 0; y < n; y++)
    for (int x = 0; x < n; x++)
      {
        const int corners[4] = { y * stride + x, y * stride + x + 1, (y + 1) * stride + x,
                                 (y + 1) * stride + x + 1 };
        float *out = rgb + (gsize) (y * n + x) * 3;
        guint32 region = corner_region[corners[0]];
        if (corner_region[corners[1]] != region || corner_region[corners[2]] != region
            || corner_region[corners[3]] != region)
          {
            supersample (s, x, y, out);
            continue;
          }
        for (int c = 0; c < 3; c++)
          out[c] = 0.25f * (corner_rgb[corners[0] * 3 + c] + corner_rgb[corners[1] * 3 + c]
                            + corner_rgb[corners[2] * 3 + c] + corner_rgb[corners[3] * 3 + c]);
      }
  g_free (corner_rgb);
  g_free (corner_region);
}

void
synth_to_bytes (guint8 *out, const float *rgb, int n)
{
  for (int i = 0; i < n; i++)
    {
      float v = rgb[i] * 255.0f + 0.5f;
      out[i] = (guint8) (v < 0.0f ? 0.0f : v > 255.0f ? 255.0f : v);
    }
}
