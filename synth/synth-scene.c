/* synth-scene.c — drawing lots for one photo: colours, ground, pose,
 * veins and marks.  Colours are chosen in HSV so that each colour word
 * covers a band of hues and shades; leaves are always more saturated than
 * the ground (soil and grass tones are dull), which keeps them apart. */
#include "synth-scene.h"

#include <math.h>

gboolean
synth_condition_has_marks (SynthCondition condition)
{
  return condition != SYNTH_HEALTHY && condition != SYNTH_HOLES;
}

gboolean
synth_kind_is_valid (SynthLeafKind kind)
{
  return !(synth_condition_has_marks (kind.condition) && kind.colour == SYNTH_LEAF_BROWN
           && kind.mark == SYNTH_MARK_BROWN);
}

SynthLeafKind
synth_kind_random (SynthRng *rng)
{
  SynthLeafKind kind = {
    .shape = synth_below (rng, SYNTH_N_SHAPES),
    .colour = synth_below (rng, SYNTH_N_LEAF_COLOURS),
    .condition = synth_below (rng, SYNTH_N_CONDITIONS),
  };
  if (synth_condition_has_marks (kind.condition))
    do
      kind.mark = synth_below (rng, SYNTH_N_MARK_COLOURS);
    while (!synth_kind_is_valid (kind));
  return kind;
}

float
synth_segment_distance2 (const SynthSegment *s, float x, float y, float *t)
{
  float px = x - s->x0, py = y - s->y0;
  float along = (px * s->dx + py * s->dy) * s->inv_len2;
  along = along < 0.0f ? 0.0f : along > 1.0f ? 1.0f : along;
  float ex = px - along * s->dx, ey = py - along * s->dy;
  if (t)
    *t = along;
  return ex * ex + ey * ey;
}

static SynthSegment
segment (float x0, float y0, float x1, float y1)
{
  float dx = x1 - x0, dy = y1 - y0, len2 = dx * dx + dy * dy;
  return (SynthSegment) { x0, y0, dx, dy, len2 > 0.0f ? 1.0f / len2 : 0.0f };
}

/* ---- colours ------------------------------------------------------------ */

static void
hsv_to_rgb (float *rgb, float hue_degrees, float s, float v)
{
  float h = fmodf (hue_degrees + 360.0f, 360.0f) / 60.0f;
  float c = v * s, x = c * (1.0f - fabsf (fmodf (h, 2.0f) - 1.0f)), m = v - c;
  float r = 0, g = 0, b = 0;
  switch ((int) h)
    {
    case 0: r = c, g = x; break;
    case 1: r = x, g = c; break;
    case 2: g = c, b = x; break;
    case 3: g = x, b = c; break;
    case 4: r = x, b = c; break;
    default: r = c, b = x; break;
    }
  rgb[0] = r + m, rgb[1] = g + m, rgb[2] = b + m;
}

/* A colour drawn from a box in HSV: {hue lo, hi, sat lo, hi, value lo, hi}. */
static void
sample_hsv (float *rgb, SynthRng *rng, const float box[6])
{
  hsv_to_rgb (rgb, synth_uniform (rng, box[0], box[1]), synth_uniform (rng, box[2], box[3]),
              synth_uniform (rng, box[4], box[5]));
}

static const float leaf_boxes[SYNTH_N_LEAF_COLOURS][6] = {
  [SYNTH_LEAF_GREEN] = { 88, 132, 0.58f, 0.82f, 0.45f, 0.72f },
  [SYNTH_LEAF_YELLOW] = { 47, 59, 0.68f, 0.9f, 0.78f, 0.95f },
  [SYNTH_LEAF_BROWN] = { 22, 34, 0.58f, 0.76f, 0.34f, 0.5f },
  [SYNTH_LEAF_RED] = { -8, 7, 0.68f, 0.86f, 0.58f, 0.8f },
};

static const float mark_boxes[SYNTH_N_MARK_COLOURS][6] = {
  [SYNTH_MARK_BLACK] = { 0, 60, 0.0f, 0.3f, 0.05f, 0.13f },
  [SYNTH_MARK_WHITE] = { 40, 70, 0.0f, 0.08f, 0.88f, 0.97f },
  [SYNTH_MARK_ORANGE] = { 22, 32, 0.86f, 0.98f, 0.88f, 1.0f },
  [SYNTH_MARK_BROWN] = { 20, 30, 0.6f, 0.8f, 0.27f, 0.38f },
};

/* Dull soil, grass, gravel and straw tones: never as saturated as a leaf. */
static const float ground_boxes[][6] = {
  { 20, 35, 0.25f, 0.4f, 0.22f, 0.32f },  // dark soil
  { 25, 40, 0.2f, 0.35f, 0.45f, 0.6f },   // light soil
  { 75, 110, 0.25f, 0.4f, 0.22f, 0.35f }, // grass
  { 0, 360, 0.0f, 0.08f, 0.3f, 0.6f },    // gravel
  { 38, 50, 0.25f, 0.4f, 0.5f, 0.65f },   // straw
};

static void
mix (float *out, const float *a, const float *b, float t)
{
  for (int c = 0; c < 3; c++)
    out[c] = a[c] + (b[c] - a[c]) * t;
}

static void
sample_surface (SynthScene *scene, SynthRng *rng)
{
  static const float white[3] = { 1, 1, 1 }, tan[3] = { 0.85f, 0.76f, 0.45f };
  static const float necrotic[3] = { 0.33f, 0.23f, 0.12f };
  sample_hsv (scene->leaf_rgb, rng, leaf_boxes[scene->kind.colour]);
  /* veins: lighter, of the same hue, so that the leaf keeps its colour */
  float lighter = synth_uniform (rng, 1.2f, 1.4f);
  for (int c = 0; c < 3; c++)
    scene->vein_rgb[c] = fminf (1.0f, scene->leaf_rgb[c] * lighter);
  mix (scene->vein_rgb, scene->vein_rgb, white, 0.1f);
  sample_hsv (scene->mark_rgb, rng, mark_boxes[scene->kind.mark]);
  /* between the rings of a target spot: a tan halo, or a darker band
   * around white rings so that they stay apart */
  if (scene->kind.mark == SYNTH_MARK_WHITE)
    for (int c = 0; c < 3; c++)
      scene->halo_rgb[c] = scene->leaf_rgb[c] * 0.6f;
  else
    mix (scene->halo_rgb, scene->leaf_rgb, tan, 0.55f);
  mix (scene->rim_rgb, scene->leaf_rgb, necrotic, 0.6f);
  scene->fold = synth_uniform (rng, 0.0f, 0.12f);
}

/* ---- ground ------------------------------------------------------------- */

static void
add_clutter (SynthScene *scene, SynthRng *rng, gboolean twig, float k)
{
  if (scene->n_clutter >= SYNTH_MAX_CLUTTER)
    return;
  SynthClutter *c = &scene->clutter[scene->n_clutter++];
  float x = synth_uniform (rng, 0, (float) scene->size), y = synth_uniform (rng, 0, (float) scene->size);
  if (twig)
    {
      static const float box[6] = { 20, 40, 0.3f, 0.55f, 0.15f, 0.6f };
      float len = synth_uniform (rng, 10, 30) * k, a = synth_uniform (rng, 0, 2 * (float) G_PI);
      c->line = segment (x, y, x + len * cosf (a), y + len * sinf (a));
      c->radius = synth_uniform (rng, 0.6f, 1.3f) * k;
      sample_hsv (c->rgb, rng, box);
    }
  else
    {
      static const float box[6] = { 20, 60, 0.0f, 0.2f, 0.35f, 0.75f };
      c->line = segment (x, y, x, y);
      c->radius = synth_uniform (rng, 1.2f, 3.5f) * k;
      sample_hsv (c->rgb, rng, box);
    }
}

static void
sample_ground (SynthScene *scene, SynthRng *rng, gboolean cluttered, float k)
{
  const float *box = ground_boxes[synth_below (rng, G_N_ELEMENTS (ground_boxes))];
  sample_hsv (scene->ground_rgb[0], rng, box);
  float shade = synth_uniform (rng, 0.7f, 1.25f);
  for (int c = 0; c < 3; c++)
    scene->ground_rgb[1][c] = fminf (1.0f, scene->ground_rgb[0][c] * shade);
  float a = synth_uniform (rng, 0, 2 * (float) G_PI);
  scene->ground_dir[0] = cosf (a) / (float) scene->size;
  scene->ground_dir[1] = sinf (a) / (float) scene->size;
  scene->ground_noise = synth_uniform (rng, 0.06f, 0.16f);
  scene->noise_seed = (guint32) synth_rng_next (rng);
  int n_pebbles = cluttered ? 3 + synth_below (rng, 5) : synth_below (rng, 3);
  int n_twigs = cluttered ? 2 + synth_below (rng, 5) : 0;
  for (int i = 0; i < n_pebbles; i++)
    add_clutter (scene, rng, FALSE, k);
  for (int i = 0; i < n_twigs; i++)
    add_clutter (scene, rng, TRUE, k);
}

/* ---- leaf --------------------------------------------------------------- */

static void
sample_pose (SynthScene *scene, SynthRng *rng, gboolean cluttered, float k)
{
  float scale;
  switch (scene->kind.shape)
    {
    case SYNTH_SHAPE_NARROW: scale = synth_uniform (rng, 25, 30); break;
    case SYNTH_SHAPE_LOBED: scale = synth_uniform (rng, 21, 27); break;
    case SYNTH_SHAPE_ROUND: scale = synth_uniform (rng, 15, 21); break;
    default: scale = synth_uniform (rng, 17, 24); break;
    }
  if (cluttered)
    scale *= synth_uniform (rng, 0.95f, 1.25f); // phone photos: often closer
  scene->scale = scale * k;
  scene->pixel = 1.0f / scene->scale;
  float half = 0.5f * (float) scene->size;
  scene->centre_x = half + synth_uniform (rng, -0.12f, 0.12f) * (float) scene->size;
  scene->centre_y = half + synth_uniform (rng, -0.12f, 0.12f) * (float) scene->size;
  float a = synth_uniform (rng, 0, 2 * (float) G_PI);
  scene->cos_angle = cosf (a), scene->sin_angle = sinf (a);
}

static void
add_vein (SynthScene *scene, float x0, float y0, float x1, float y1, float half_px)
{
  if (scene->n_veins >= SYNTH_MAX_VEINS)
    return;
  scene->veins[scene->n_veins++] = (SynthVein) {
    .line = segment (x0, y0, x1, y1),
    .half_width = half_px * scene->pixel,
  };
}

/* Side veins leave the midrib at an angle towards the tip, on both sides;
 * they run past the margin, where the outline cuts them. */
static void
add_pinnate_veins (SynthScene *scene, SynthRng *rng, float k)
{
  const SynthOutline *o = &scene->outline;
  float base = o->shape == SYNTH_SHAPE_HEART ? o->heart_u - 0.5f * o->heart_r : -1.0f;
  add_vein (scene, base, 0, 0.97f, 0, 0.6f * k);
  float first = o->shape == SYNTH_SHAPE_HEART ? o->heart_u : -0.75f;
  int n = 4 + synth_below (rng, 3);
  float angle = synth_uniform (rng, 0.6f, 0.95f), len = 1.3f;
  for (int i = 0; i < n; i++)
    {
      float u = first + (0.62f - first) * ((float) i + 0.5f) / (float) n
                + synth_uniform (rng, -0.04f, 0.04f);
      for (int side = -1; side <= 1; side += 2)
        add_vein (scene, u, 0, u + len * cosf (angle), (float) side * len * sinf (angle),
                  0.38f * k);
    }
  if (o->shape == SYNTH_SHAPE_HEART) // into the basal lobes
    for (int side = -1; side <= 1; side += 2)
      add_vein (scene, o->heart_u, 0, o->heart_u - 0.6f, (float) side * 0.75f, 0.4f * k);
}

static void
add_veins (SynthScene *scene, SynthRng *rng, float k)
{
  const SynthOutline *o = &scene->outline;
  switch (o->shape)
    {
    case SYNTH_SHAPE_NARROW: // parallel veins along the blade
      add_vein (scene, -1.0f, 0, 1.0f, 0, 0.5f * k);
      for (int side = -1; side <= 1; side += 2)
        for (int j = 1; j <= 2; j++)
          {
            float v = (float) side * o->width * (j == 1 ? 0.42f : 0.78f);
            add_vein (scene, -1.0f, v, 0.95f, v * 0.3f, 0.3f * k);
          }
      break;
    case SYNTH_SHAPE_LOBED: // palmate: one vein into each lobe
      for (int i = 0; i < o->n_lobes; i++)
        add_vein (scene, -0.12f, 0, 1.02f * cosf (o->lobe_angle[i]),
                  1.02f * sinf (o->lobe_angle[i]), 0.5f * k);
      break;
    default:
      add_pinnate_veins (scene, rng, k);
      break;
    }
}

/* Stripes follow some veins (not all), over a stretch of each. */
static void
add_stripes (SynthScene *scene, SynthRng *rng, float k)
{
  gboolean narrow = scene->outline.shape == SYNTH_SHAPE_NARROW;
  /* the midrib of pinnate leaves is vein 0: stripes go along side veins */
  int first = scene->outline.shape == SYNTH_SHAPE_LOBED || narrow ? 0 : 1;
  int n_candidates = scene->n_veins - first;
  int n_stripes = narrow ? 2 + synth_below (rng, 2) : 3 + synth_below (rng, 4);
  n_stripes = MIN (n_stripes, n_candidates);
  int order[SYNTH_MAX_VEINS];
  for (int i = 0; i < n_candidates; i++)
    order[i] = first + i;
  for (int i = 0; i < n_stripes; i++) // a partial Fisher-Yates draw
    {
      int j = i + synth_below (rng, n_candidates - i), chosen = order[j];
      order[j] = order[i];
      SynthVein *vein = &scene->veins[chosen];
      float half_px = narrow ? synth_uniform (rng, 0.6f, 0.9f) : synth_uniform (rng, 0.75f, 1.3f);
      vein->stripe_half = half_px * k * scene->pixel;
      vein->stripe_t0 = synth_uniform (rng, 0.0f, 0.25f);
      vein->stripe_t1 = synth_uniform (rng, 0.6f, 1.0f);
    }
}

/* Centres are drawn until they fall on the leaf; sizes in pixels. */
static void
add_marks (SynthScene *scene, SynthRng *rng, int n, float r_lo, float r_hi, float aspect_lo,
           float k)
{
  /* on a grass blade, keep marks about as wide as the blade */
  float r_max = scene->outline.shape == SYNTH_SHAPE_NARROW ? 1.1f * scene->outline.width : 1.0f;
  for (int i = 0; i < n && scene->n_marks < SYNTH_MAX_MARKS; i++)
    for (int attempt = 0; attempt < 64; attempt++)
      {
        float u = synth_uniform (rng, -1.0f, 1.0f), v = synth_uniform (rng, -1.0f, 1.0f);
        if (!synth_outline_inside (&scene->outline, u, v))
          continue;
        float a = synth_uniform (rng, 0, (float) G_PI);
        float r = synth_uniform (rng, r_lo, r_hi) * k * scene->pixel;
        scene->marks[scene->n_marks++] = (SynthMark) {
          .x = u, .y = v, .r = fminf (r, fmaxf (r_max, r_lo * k * scene->pixel)),
          .aspect = synth_uniform (rng, aspect_lo, 1.0f), .c = cosf (a), .s = sinf (a),
        };
        break;
      }
}

static void
sample_condition (SynthScene *scene, SynthRng *rng, float k)
{
  switch (scene->kind.condition)
    {
    case SYNTH_HEALTHY:
      break;
    case SYNTH_SPOTS:
      add_marks (scene, rng, 5 + synth_below (rng, 10), 1.3f, 3.0f, 0.7f, k);
      break;
    case SYNTH_STRIPES:
      add_stripes (scene, rng, k);
      break;
    case SYNTH_RINGS:
      add_marks (scene, rng, 1 + synth_below (rng, 4), 3.5f, 6.5f, 0.85f, k);
      break;
    case SYNTH_HOLES:
      add_marks (scene, rng, 2 + synth_below (rng, 5), 1.8f, 4.5f, 0.6f, k);
      break;
    case SYNTH_POWDERY:
      add_marks (scene, rng, 3 + synth_below (rng, 5), 4.0f, 9.0f, 0.5f, k);
      break;
    case SYNTH_N_CONDITIONS:
      g_return_if_reached ();
    }
}

void
synth_scene_sample (SynthScene *scene, SynthRng *rng, SynthLeafKind kind, int size,
                    gboolean cluttered)
{
  g_return_if_fail (synth_kind_is_valid (kind));
  *scene = (SynthScene) { .kind = kind, .size = size };
  float k = (float) size / 64.0f; // sizes below are pixels of a 64-pixel image
  sample_ground (scene, rng, cluttered, k);
  sample_pose (scene, rng, cluttered, k);
  synth_outline_sample (&scene->outline, rng, kind.shape);
  sample_surface (scene, rng);
  add_veins (scene, rng, k);
  sample_condition (scene, rng, k);
}
