/* regions.c — where in an image each class is: a grid of square tiles, and
 * non-maximum suppression of the boxes of the tiles that were sure enough.
 * Shared by `agriclip tag --regions` and the GIMP plug-in's regions
 * procedure. */
#include "agriclip.h"

#include <string.h>

/* Tile origins along one axis: every stride, plus one flush with the end so
 * that the last pixels are covered too. */
static GArray *
tile_starts (int length, int tile, int stride)
{
  GArray *starts = g_array_new (FALSE, FALSE, sizeof (int));
  int last = MAX (0, length - tile);
  for (int s = 0; s < last; s += stride)
    g_array_append_val (starts, s);
  g_array_append_val (starts, last);
  return starts;
}

GArray *
agc_tile_grid (int width, int height, int tile, int stride)
{
  g_return_val_if_fail (width > 0 && height > 0 && tile > 0 && stride > 0, NULL);
  GArray *tiles = g_array_new (FALSE, FALSE, sizeof (AgcRect));
  int w = MIN (tile, width), h = MIN (tile, height);
  g_autoptr (GArray) xs = tile_starts (width, w, stride);
  g_autoptr (GArray) ys = tile_starts (height, h, stride);
  for (guint j = 0; j < ys->len; j++)
    for (guint i = 0; i < xs->len; i++)
      {
        AgcRect r = { g_array_index (xs, int, i), g_array_index (ys, int, j), w, h };
        g_array_append_val (tiles, r);
      }
  return tiles;
}

AgcImage *
agc_image_crop (const AgcImage *image, const AgcRect *rect)
{
  g_return_val_if_fail (rect->x >= 0 && rect->y >= 0 && rect->width > 0 && rect->height > 0
                          && rect->x + rect->width <= image->width
                          && rect->y + rect->height <= image->height, NULL);
  AgcImage *crop = agc_image_new (rect->width, rect->height);
  for (int y = 0; y < rect->height; y++)
    memcpy (crop->pixels + (gsize) y * rect->width * 3,
            image->pixels + ((gsize) (rect->y + y) * image->width + rect->x) * 3,
            (gsize) rect->width * 3);
  return crop;
}

static double
overlap (const AgcTagBox *a, const AgcTagBox *b)
{
  int w = MIN (a->x + a->width, b->x + b->width) - MAX (a->x, b->x);
  int h = MIN (a->y + a->height, b->y + b->height) - MAX (a->y, b->y);
  if (w <= 0 || h <= 0)
    return 0;
  double inter = (double) w * h;
  return inter / ((double) a->width * a->height + (double) b->width * b->height - inter);
}

/* Most probable first; ties by position, so the order never depends on qsort. */
static int
by_probability (const void *pa, const void *pb)
{
  const AgcTagBox *a = pa, *b = pb;
  if (a->p != b->p)
    return a->p > b->p ? -1 : 1;
  if (a->y != b->y)
    return a->y < b->y ? -1 : 1;
  return a->x < b->x ? -1 : a->x > b->x;
}

int
agc_boxes_suppress (AgcTagBox *boxes, int n_boxes, double max_iou)
{
  qsort (boxes, n_boxes, sizeof *boxes, by_probability);
  int kept = 0;
  for (int i = 0; i < n_boxes; i++)
    {
      gboolean suppressed = FALSE;
      for (int k = 0; k < kept && !suppressed; k++)
        suppressed = strcmp (boxes[k].label, boxes[i].label) == 0
                     && overlap (&boxes[k], &boxes[i]) > max_iou;
      if (suppressed)
        g_free (boxes[i].label);
      else
        boxes[kept++] = boxes[i];
    }
  return kept;
}
