/* agc-region-labels.c — readable region labels, see agc-region-labels.h. */
#include "agc-region-labels.h"

#include <stdlib.h>

double
agc_region_label_size (int width, int height)
{
  return MAX (10.0, MIN (width, height) / 25.0);
}

void
agc_region_label_extent (const char *text, double size_px, int *width, int *height)
{
  glong chars = g_utf8_strlen (text, -1);
  *width = (int) (0.6 * size_px * MAX (chars, 1) + 0.5);
  *height = (int) (1.3 * size_px + 0.5);
}

static gboolean
collides (const AgcRect *a, const AgcRect *b)
{
  return a->x < b->x + b->width && b->x < a->x + a->width && a->y < b->y + b->height
         && b->y < a->y + a->height;
}

/* Same class and overlapping boxes: the less probable is not a local maximum. */
static gboolean
local_maximum (const AgcTagBox *boxes, int n_boxes, int i)
{
  AgcRect r = { boxes[i].x, boxes[i].y, boxes[i].width, boxes[i].height };
  for (int j = 0; j < n_boxes; j++)
    {
      AgcRect s = { boxes[j].x, boxes[j].y, boxes[j].width, boxes[j].height };
      gboolean better = boxes[j].p > boxes[i].p || (boxes[j].p == boxes[i].p && j < i);
      if (j != i && better && g_strcmp0 (boxes[j].label, boxes[i].label) == 0
          && collides (&r, &s))
        return FALSE;
    }
  return TRUE;
}

typedef struct
{
  int index;
  float p;
} Ranked;

/* Most probable first; ties in the order given. */
static int
by_probability (const void *pa, const void *pb)
{
  const Ranked *a = pa, *b = pb;
  if (a->p != b->p)
    return a->p > b->p ? -1 : 1;
  return a->index - b->index;
}

GArray *
agc_region_labels_place (const AgcTagBox *boxes, const char *const *texts, int n_boxes,
                         int width, int height, const AgcRect *occupied, int n_occupied)
{
  GArray *placed = g_array_new (FALSE, FALSE, sizeof (AgcRegionLabel));
  g_autofree Ranked *order = g_new (Ranked, MAX (n_boxes, 1));
  for (int i = 0; i < n_boxes; i++)
    order[i] = (Ranked) { i, boxes[i].p };
  qsort (order, n_boxes, sizeof *order, by_probability);
  double size = agc_region_label_size (width, height);
  for (int k = 0; k < n_boxes; k++)
    {
      int i = order[k].index;
      if (!local_maximum (boxes, n_boxes, i))
        continue;
      AgcRegionLabel label = { .box = i };
      agc_region_label_extent (texts[i], size, &label.width, &label.height);
      // centred on the box, kept inside the image
      label.x = boxes[i].x + (boxes[i].width - label.width) / 2;
      label.y = boxes[i].y + (boxes[i].height - label.height) / 2;
      label.x = CLAMP (label.x, 0, MAX (0, width - label.width));
      label.y = CLAMP (label.y, 0, MAX (0, height - label.height));
      AgcRect r = { label.x, label.y, label.width, label.height };
      gboolean free_spot = TRUE;
      for (int o = 0; o < n_occupied && free_spot; o++)
        free_spot = !collides (&r, &occupied[o]);
      for (guint p = 0; p < placed->len && free_spot; p++)
        {
          const AgcRegionLabel *q = &g_array_index (placed, AgcRegionLabel, p);
          AgcRect s = { q->x, q->y, q->width, q->height };
          free_spot = !collides (&r, &s);
        }
      if (free_spot)
        g_array_append_val (placed, label);
    }
  return placed;
}
