/* agc-region-labels.h — where the text of region boxes goes so that it
 * stays readable: one label per local maximum (a box kept only when no
 * overlapping box of the same class is more probable), most probable
 * first, centred on its box, sized to the image, and left out when its
 * text would collide with a label already placed or with an occupied
 * rectangle (e.g. the whole-image label of Label…).  Pure layout, no
 * drawing: the GIMP plug-in turns the result into text layers. */
#pragma once

#include "agriclip.h"

G_BEGIN_DECLS

typedef struct
{
  int box;              /* index into the boxes given */
  int x, y;             /* top-left corner of the text, image pixels */
  int width, height;    /* its estimated extent */
} AgcRegionLabel;

/* The text size, in pixels, for labels on a width x height image: a
 * twenty-fifth of its shorter side, at least 10 px. */
double agc_region_label_size (int width, int height);

/* Picks and places the labels of boxes[n_boxes] (in any order; texts[i]
 * is what box i shows) on a width x height image, avoiding occupied[n_occupied]
 * (may be NULL).  Returns an array of AgcRegionLabel (g_array_unref). */
GArray *agc_region_labels_place (const AgcTagBox *boxes, const char *const *texts, int n_boxes,
                                 int width, int height, const AgcRect *occupied, int n_occupied);

/* The extent text of size_px pixels is given (an estimate good for sans
 * fonts: 0.6 em per character, 1.3 em per line). */
void agc_region_label_extent (const char *text, double size_px, int *width, int *height);

G_END_DECLS
