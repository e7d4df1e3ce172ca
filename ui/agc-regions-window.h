/* agc-regions-window.h — where in an image a class is: the image with the
 * heatmap of a chosen class over it, drawn with cairo from the tile
 * probabilities.  The class, the threshold and the opacity change the
 * picture at once, from the probabilities already computed (the model
 * does not run again); a new tile size or stride classifies the tiles
 * again on a worker thread, with a progress bar and Cancel.
 *
 * Heatmap: each pixel's value is the class's probability averaged over
 * the tiles that cover it (as the plug-in's heatmap layers); the mask is
 * the covered pixels whose value reaches the threshold.  "Selection from
 * heatmap", "Boxes to paths" and "Add layers" are signals: the program
 * showing the window (the GIMP plug-in) reads the mask, boxes or tiles
 * through the getters below.  Non-modal; its size is remembered. */
#pragma once

#include <gtk/gtk.h>

#include "agriclip.h"

G_BEGIN_DECLS

#define AGC_TYPE_REGIONS_WINDOW (agc_regions_window_get_type ())
G_DECLARE_FINAL_TYPE (AgcRegionsWindow, agc_regions_window, AGC, REGIONS_WINDOW, GtkWindow)

/* Shows image (taken) classified by classifier (taken) with model (taken;
 * only the window's worker thread uses it); names[C] and displays[C] are
 * the classes' export and display names (copied); coverage[height, width]
 * (may be NULL: all of it; copied) says which pixels count (0: not
 * selected), and tiles with none are skipped.  The first classification
 * (tile, stride) starts at once; "computed" follows. */
GtkWidget *agc_regions_window_new (AgcModel *model, AgcClassifier *classifier,
                                   const char *const *names, const char *const *displays,
                                   AgcImage *image, const guint8 *coverage, int tile, int stride);

/* Classifies the tiles again with this tile size and stride (what
 * "Recompute" does); "computed" follows with NULL or what went wrong
 * ("cancelled" too: the earlier tiles then stay); "progress" (a fraction)
 * as tiles are done. */
void agc_regions_window_compute (AgcRegionsWindow *self, int tile, int stride);
/* Stops a running classification (as Cancel does). */
void agc_regions_window_cancel (AgcRegionsWindow *self);
gboolean agc_regions_window_is_computing (AgcRegionsWindow *self);

void agc_regions_window_set_class (AgcRegionsWindow *self, int class_index);
int agc_regions_window_get_class (AgcRegionsWindow *self);
void agc_regions_window_set_threshold (AgcRegionsWindow *self, double threshold);
double agc_regions_window_get_threshold (AgcRegionsWindow *self);
double agc_regions_window_get_opacity (AgcRegionsWindow *self);

/* The classified tiles (image pixels) and their probabilities[n_tiles, C],
 * owned by the window, valid until the next "computed"; tile and stride
 * they were made with. */
const AgcRect *agc_regions_window_get_tiles (AgcRegionsWindow *self, int *n_tiles);
const float *agc_regions_window_get_probabilities (AgcRegionsWindow *self);
void agc_regions_window_get_tiling (AgcRegionsWindow *self, int *tile, int *stride);

/* mask[height, width]: 255 where the chosen class's heatmap reaches the
 * threshold on a covered pixel, else 0; *n_selected the 255s (g_free). */
guint8 *agc_regions_window_get_mask (AgcRegionsWindow *self, gsize *n_selected);
/* Boxes of the tiles whose chosen-class probability reaches the
 * threshold, after non-maximum suppression (agc_boxes_suppress,
 * AGC_TAG_BOX_MAX_IOU), most probable first; free with
 * agc_regions_window_free_boxes. */
AgcTagBox *agc_regions_window_get_boxes (AgcRegionsWindow *self, int *n_boxes);
void agc_regions_window_free_boxes (AgcTagBox *boxes, int n_boxes);

G_END_DECLS
