/* regions-procedure.c — plug-in-agriclip-regions: where in the image each
 * class is.  The selection's bounding box (or the image) is cut into square
 * tiles of tile-size pixels every stride pixels, the tiles are classified in
 * batches, and the result becomes a layer group with
 *   - one heatmap layer per chosen class: the class colour, with opacity the
 *     class probability averaged over the tiles that cover each pixel;
 *   - a text layer on every tile whose top probability reaches threshold;
 * plus the parasite "agriclip-regions" with every tile's box and labels.
 *
 * Classification comes first and the image is only touched afterwards, so
 * cancelling from GIMP's progress bar (which ends the plug-in) leaves it as
 * it was.
 *
 * Interactive runs show ui's regions window instead (after the procedure's
 * dialog): the heatmap of a class with a live threshold, and its actions
 * "Selection from heatmap" (a channel, then the selection), "Boxes to
 * paths" (a path of the boxes left by non-maximum suppression) and "Add
 * layers" (the layer group above, with readable labels: only local maxima
 * whose text collides with no other label and no text layer already in the
 * image, sized to the image).  Scripted runs keep their layers as before. */
#include "agriclip-plugin.h"

#include <string.h>

/* Tiles read and classified together: bounds the memory held in crops. */
#define CROP_BATCH 32

typedef struct
{
  AgcRect box;
  double coverage;
} Tile;

/* Tiles (the library's grid over the box, agc_tile_grid) with at least one
 * selected, visible pixel. */
static GArray *
make_tiles (const Pixels *pixels, int tile, int stride)
{
  GArray *tiles = g_array_new (FALSE, FALSE, sizeof (Tile));
  g_autoptr (GArray) grid = agc_tile_grid (pixels->width, pixels->height, tile, stride);
  for (guint i = 0; i < grid->len; i++)
    {
      const AgcRect *r = &g_array_index (grid, AgcRect, i);
      Tile t = { { pixels->x + r->x, pixels->y + r->y, r->width, r->height }, 0 };
      t.coverage = pixels_coverage (pixels, &t.box);
      if (t.coverage > 0)
        g_array_append_val (tiles, t);
    }
  return tiles;
}

/* probs[n_tiles, n_classes], a batch of crops at a time. */
static gboolean
classify_tiles (float *probs, Engine *engine, const Pixels *pixels, const Tile *tiles,
                int n_tiles, GError **error)
{
  int n_classes = agc_classifier_n_classes (engine->classifier);
  AgcImage *crops[CROP_BATCH];
  for (int start = 0; start < n_tiles; start += CROP_BATCH)
    {
      int n = MIN (CROP_BATCH, n_tiles - start);
      for (int i = 0; i < n; i++)
        crops[i] = pixels_crop (pixels, &tiles[start + i].box);
      gboolean ok = engine_classify (probs + (gsize) start * n_classes, engine, crops, n,
                                     0.05 + 0.8 * start / n_tiles,
                                     0.05 + 0.8 * (start + n) / n_tiles, error);
      for (int i = 0; i < n; i++)
        agc_image_free (crops[i]);
      if (!ok)
        return FALSE;
    }
  return TRUE;
}

/* The n_chosen classes with the highest probability anywhere. */
static int
choose_classes (int *chosen, const float *probs, int n_tiles, int n_classes, int n_chosen)
{
  g_autofree float *best = g_new0 (float, n_classes);
  for (int t = 0; t < n_tiles; t++)
    for (int c = 0; c < n_classes; c++)
      best[c] = MAX (best[c], probs[(gsize) t * n_classes + c]);
  return agc_top_k (best, n_classes, n_chosen, chosen);
}

static const guint8 palette[][3] = {
  { 230, 25, 75 }, { 60, 180, 75 }, { 0, 130, 200 }, { 255, 225, 25 },
  { 145, 30, 180 }, { 70, 240, 240 }, { 245, 130, 48 }, { 240, 50, 230 },
};

static GimpImageType
layer_type (GimpImage *image)
{
  switch (gimp_image_get_base_type (image))
    {
    case GIMP_GRAY: return GIMP_GRAYA_IMAGE;
    case GIMP_INDEXED: return GIMP_INDEXEDA_IMAGE;
    default: return GIMP_RGBA_IMAGE;
    }
}

/* One heatmap layer over the region: colour with alpha = mean probability of
 * class over the tiles covering each pixel. */
static void
add_heatmap (GimpImage *image, GimpGroupLayer *group, const AgcRect *region, const Tile *tiles,
             int n_tiles, const float *probs, int n_classes, int class_index, const guint8 *rgb,
             const char *name)
{
  gsize n = (gsize) region->width * region->height;
  g_autofree float *sum = g_new0 (float, n);
  g_autofree guint16 *count = g_new0 (guint16, n);
  for (int t = 0; t < n_tiles; t++)
    {
      const AgcRect *b = &tiles[t].box;
      float p = probs[(gsize) t * n_classes + class_index];
      for (int y = b->y - region->y; y < b->y - region->y + b->height; y++)
        for (int x = b->x - region->x; x < b->x - region->x + b->width; x++)
          {
            sum[(gsize) y * region->width + x] += p;
            count[(gsize) y * region->width + x]++;
          }
    }
  g_autofree guint8 *rgba = g_malloc (n * 4);
  for (gsize i = 0; i < n; i++)
    {
      memcpy (rgba + i * 4, rgb, 3);
      rgba[i * 4 + 3] = count[i] ? (guint8) (255.0f * sum[i] / count[i] + 0.5f) : 0;
    }
  GimpLayer *layer = gimp_layer_new (image, name, region->width, region->height,
                                     layer_type (image), 100.0, GIMP_LAYER_MODE_NORMAL);
  gimp_image_insert_layer (image, layer, GIMP_LAYER (group), 0);
  gimp_layer_set_offsets (layer, region->x, region->y);
  GeglBuffer *buffer = gimp_drawable_get_buffer (GIMP_DRAWABLE (layer));
  gegl_buffer_set (buffer, GEGL_RECTANGLE (0, 0, region->width, region->height), 0,
                   babl_format ("R'G'B'A u8"), rgba, GEGL_AUTO_ROWSTRIDE);
  g_object_unref (buffer);
  gimp_drawable_update (GIMP_DRAWABLE (layer), 0, 0, region->width, region->height);
}

static char *
regions_json (const Engine *engine, const AgcRect *region, int tile_size, int stride,
              double threshold, const int *chosen, int n_chosen, const Tile *tiles, int n_tiles,
              const float *probs, int top_k)
{
  int n_classes = agc_classifier_n_classes (engine->classifier);
  g_autofree int *top = g_new (int, n_classes);
  g_autoptr (JsonBuilder) builder = json_builder_new ();
  json_builder_begin_object (builder);
  results_json_source (builder, engine);
  results_json_region (builder, "region", region);
  json_builder_set_member_name (builder, "tile_size");
  json_builder_add_int_value (builder, tile_size);
  json_builder_set_member_name (builder, "stride");
  json_builder_add_int_value (builder, stride);
  json_builder_set_member_name (builder, "threshold");
  json_builder_add_double_value (builder, threshold);
  json_builder_set_member_name (builder, "classes");
  json_builder_begin_array (builder);
  for (int c = 0; c < n_chosen; c++)
    json_builder_add_string_value (builder, engine_class_name (engine, chosen[c]));
  json_builder_end_array (builder);
  json_builder_set_member_name (builder, "tiles");
  json_builder_begin_array (builder);
  for (int t = 0; t < n_tiles; t++)
    {
      json_builder_begin_object (builder);
      results_json_region (builder, "box", &tiles[t].box);
      json_builder_set_member_name (builder, "coverage");
      json_builder_add_double_value (builder, tiles[t].coverage);
      const float *p = probs + (gsize) t * n_classes;
      results_json_labels (builder, engine, p, top, agc_top_k (p, n_classes, top_k, top));
      json_builder_end_object (builder);
    }
  json_builder_end_array (builder);
  json_builder_end_object (builder);
  return results_json_text (builder);
}

/* Where the image's text layers are (image pixels): readable labels avoid
 * them (e.g. the whole-image label of Label…). */
static GArray *
text_layer_rects (GimpImage *image)
{
  GArray *rects = g_array_new (FALSE, FALSE, sizeof (AgcRect));
  g_autofree GimpLayer **layers = gimp_image_get_layers (image);
  for (int i = 0; layers && layers[i]; i++)
    if (gimp_item_is_text_layer (GIMP_ITEM (layers[i])))
      {
        AgcRect r = { 0, 0, gimp_drawable_get_width (GIMP_DRAWABLE (layers[i])),
                      gimp_drawable_get_height (GIMP_DRAWABLE (layers[i])) };
        gimp_drawable_get_offsets (GIMP_DRAWABLE (layers[i]), &r.x, &r.y);
        g_array_append_val (rects, r);
      }
  return rects;
}

/* Text layers on the local maxima of the tiles' top classes that reach
 * threshold and whose text collides with nothing (agc-region-labels.h). */
static void
add_readable_labels (GimpImage *image, GimpGroupLayer *group, const Engine *engine,
                     const Tile *tiles, int n_tiles, const float *probs, double threshold)
{
  int n_classes = agc_classifier_n_classes (engine->classifier);
  g_autofree AgcTagBox *boxes = g_new0 (AgcTagBox, MAX (n_tiles, 1));
  g_autoptr (GPtrArray) texts = g_ptr_array_new_with_free_func (g_free);
  int n = 0;
  for (int t = 0; t < n_tiles; t++)
    {
      int best;
      agc_top_k (probs + (gsize) t * n_classes, n_classes, 1, &best);
      float p = probs[(gsize) t * n_classes + best];
      if (p < threshold)
        continue;
      const AgcRect *b = &tiles[t].box;
      boxes[n++] = (AgcTagBox) { b->x, b->y, b->width, b->height,
                                 (char *) engine_class_name (engine, best), p };
      g_ptr_array_add (texts, g_strdup_printf ("%s %.0f%%",
                                               engine_class_translated_name (engine, best),
                                               100.0 * p));
    }
  int width = gimp_image_get_width (image), height = gimp_image_get_height (image);
  g_autoptr (GArray) occupied = text_layer_rects (image);
  g_autoptr (GArray) placed = agc_region_labels_place (
    boxes, (const char *const *) texts->pdata, n, width, height,
    (const AgcRect *) (void *) occupied->data, (int) occupied->len);
  double size = agc_region_label_size (width, height);
  for (guint i = 0; i < placed->len; i++)
    {
      const AgcRegionLabel *l = &g_array_index (placed, AgcRegionLabel, i);
      const AgcTagBox *b = &boxes[l->box];
      g_autofree char *name = g_strdup_printf ("region %d,%d: %s", b->x, b->y, b->label);
      if (!results_add_text_layer (image, group, texts->pdata[l->box], l->x, l->y, size, name))
        break; // no font: one message is enough
    }
}

/* Layer group, heatmaps, tile labels and parasite, in one undo group.
 * readable: labels as add_readable_labels places them; otherwise (scripted
 * runs, unchanged) a text layer on every tile that reaches threshold. */
static void
write_regions (GimpImage *image, const Engine *engine, const AgcRect *region, const Tile *tiles,
               int n_tiles, const float *probs, const int *chosen, int n_chosen,
               double threshold, const char *json, gboolean readable)
{
  int n_classes = agc_classifier_n_classes (engine->classifier);
  gimp_image_undo_group_start (image);
  GimpGroupLayer *group = gimp_group_layer_new (image, _("AgriCLIP regions"));
  gimp_image_insert_layer (image, GIMP_LAYER (group), NULL, 0);
  for (int c = n_chosen - 1; c >= 0; c--)
    {
      const char *label = engine_class_name (engine, chosen[c]);
      g_autofree char *name = g_strdup_printf (_("heatmap: %s"), label);
      add_heatmap (image, group, region, tiles, n_tiles, probs, n_classes, chosen[c],
                   palette[c % G_N_ELEMENTS (palette)], name);
    }
  if (readable)
    add_readable_labels (image, group, engine, tiles, n_tiles, probs, threshold);
  for (int t = 0; t < n_tiles && !readable; t++)
    {
      int best;
      agc_top_k (probs + (gsize) t * n_classes, n_classes, 1, &best);
      float p = probs[(gsize) t * n_classes + best];
      if (p < threshold)
        continue;
      const AgcRect *b = &tiles[t].box;
      g_autofree char *text = g_strdup_printf ("%s %.0f%%",
                                               engine_class_translated_name (engine, best),
                                               100.0 * p);
      g_autofree char *name = g_strdup_printf ("tile %d,%d: %s", b->x, b->y,
                                               engine_class_name (engine, best));
      if (!results_add_text_layer (image, group, text, b->x + 2, b->y + 2,
                                   MAX (8.0, b->width / 10.0), name))
        break; // no font: one message is enough
    }
  results_attach_parasite (image, NULL, "agriclip-regions", json);
  gimp_image_undo_group_end (image);
}

/* ---- interactive: the regions window --------------------------------------- */

typedef struct
{
  GimpImage *image;
  const Engine *engine; /* its model and classifier are the window's */
  AgcRect region;
  const Pixels *pixels;
  int n_wanted, top_k;
} RegionsView;

static void
on_regions_progress (AgcRegionsWindow *window, double fraction, RegionsView *v)
{
  (void) window;
  (void) v;
  gimp_progress_update (fraction);
}

static void
on_add_layers (AgcRegionsWindow *window, RegionsView *v)
{
  if (!gimp_image_is_valid (v->image))
    return; // closed in GIMP meanwhile
  int n_tiles, tile, stride;
  const AgcRect *rects = agc_regions_window_get_tiles (window, &n_tiles);
  const float *probs = agc_regions_window_get_probabilities (window);
  agc_regions_window_get_tiling (window, &tile, &stride);
  g_autofree Tile *tiles = g_new0 (Tile, MAX (n_tiles, 1));
  for (int t = 0; t < n_tiles; t++)
    {
      tiles[t].box = (AgcRect) { v->region.x + rects[t].x, v->region.y + rects[t].y,
                                rects[t].width, rects[t].height };
      tiles[t].coverage = pixels_coverage (v->pixels, &tiles[t].box);
    }
  int n_classes = agc_classifier_n_classes (v->engine->classifier);
  g_autofree int *chosen = g_new (int, n_classes);
  int n_chosen = choose_classes (chosen, probs, n_tiles, n_classes, v->n_wanted);
  double threshold = agc_regions_window_get_threshold (window);
  g_autofree char *json = regions_json (v->engine, &v->region, tile, stride, threshold, chosen,
                                        n_chosen, tiles, n_tiles, probs, v->top_k);
  write_regions (v->image, v->engine, &v->region, tiles, n_tiles, probs, chosen, n_chosen,
                 threshold, json, TRUE);
  gimp_displays_flush ();
}

/* A channel of the mask (image-sized, zero outside the region), then the
 * selection from it; both in one undo group. */
static void
on_selection (AgcRegionsWindow *window, RegionsView *v)
{
  if (!gimp_image_is_valid (v->image))
    return;
  gsize n_selected;
  g_autofree guint8 *mask = agc_regions_window_get_mask (window, &n_selected);
  int c = agc_regions_window_get_class (window);
  /* Translators: the name of the channel made from the heatmap of a class */
  g_autofree char *name = g_strdup_printf (_("AgriCLIP: %s from %.2f"),
                                           engine_class_translated_name (v->engine, c),
                                           agc_regions_window_get_threshold (window));
  gimp_image_undo_group_start (v->image);
  GeglColor *color = gegl_color_new ("red");
  GimpChannel *channel = gimp_channel_new (v->image, name, gimp_image_get_width (v->image),
                                           gimp_image_get_height (v->image), 50.0, color);
  g_object_unref (color);
  gimp_image_insert_channel (v->image, channel, NULL, 0);
  GeglBuffer *buffer = gimp_drawable_get_buffer (GIMP_DRAWABLE (channel));
  gegl_buffer_clear (buffer, NULL);
  gegl_buffer_set (buffer,
                   GEGL_RECTANGLE (v->region.x, v->region.y, v->region.width, v->region.height),
                   0, babl_format ("Y u8"), mask, GEGL_AUTO_ROWSTRIDE);
  g_object_unref (buffer);
  gimp_drawable_update (GIMP_DRAWABLE (channel), 0, 0, gimp_image_get_width (v->image),
                        gimp_image_get_height (v->image));
  gimp_image_select_item (v->image, GIMP_CHANNEL_OP_REPLACE, GIMP_ITEM (channel));
  gimp_image_undo_group_end (v->image);
  gimp_displays_flush ();
}

/* One path with a closed rectangular stroke per box. */
static void
on_boxes_to_paths (AgcRegionsWindow *window, RegionsView *v)
{
  if (!gimp_image_is_valid (v->image))
    return;
  int n_boxes;
  AgcTagBox *boxes = agc_regions_window_get_boxes (window, &n_boxes);
  int c = agc_regions_window_get_class (window);
  /* Translators: the name of the path made from the boxes of a class */
  g_autofree char *name = g_strdup_printf (_("AgriCLIP: %s boxes"),
                                           engine_class_translated_name (v->engine, c));
  gimp_image_undo_group_start (v->image);
  GimpPath *path = gimp_path_new (v->image, name);
  gimp_image_insert_path (v->image, path, NULL, 0);
  for (int i = 0; i < n_boxes; i++)
    {
      double x0 = v->region.x + boxes[i].x, y0 = v->region.y + boxes[i].y;
      double x1 = x0 + boxes[i].width, y1 = y0 + boxes[i].height;
      double corners[4][2] = { { x0, y0 }, { x1, y0 }, { x1, y1 }, { x0, y1 } };
      double points[24]; // each corner: control in, anchor, control out (straight edges)
      for (int k = 0; k < 4; k++)
        for (int j = 0; j < 3; j++)
          points[k * 6 + j * 2] = corners[k][0], points[k * 6 + j * 2 + 1] = corners[k][1];
      gimp_path_stroke_new_from_points (path, GIMP_PATH_STROKE_TYPE_BEZIER, 24, points, TRUE);
    }
  gimp_image_undo_group_end (v->image);
  agc_regions_window_free_boxes (boxes, n_boxes);
  gimp_displays_flush ();
}

/* Runs the regions window until it is closed; returns how many tiles it
 * had classified.  Takes the engine's model and classifier. */
static int
regions_window_run (GimpImage *image, Engine *engine, const AgcRect *region, const Pixels *pixels,
                    int tile_size, int stride, int n_wanted, int top_k)
{
  gimp_ui_init (PLUG_IN_BINARY);
  int n_classes = agc_classifier_n_classes (engine->classifier);
  g_autoptr (GPtrArray) names = g_ptr_array_new ();
  g_autoptr (GPtrArray) displays = g_ptr_array_new ();
  for (int c = 0; c < n_classes; c++)
    {
      g_ptr_array_add (names, (gpointer) engine_class_name (engine, c));
      g_ptr_array_add (displays, (gpointer) engine_class_translated_name (engine, c));
    }
  g_ptr_array_add (names, NULL);
  g_ptr_array_add (displays, NULL);
  gsize n = (gsize) region->width * region->height;
  g_autofree guint8 *coverage = g_new (guint8, n);
  for (gsize i = 0; i < n; i++)
    coverage[i] = (!pixels->mask || pixels->mask[i]) && pixels->rgba[i * 4 + 3] ? 255 : 0;
  GtkWidget *window = agc_regions_window_new (
    engine->model, engine->classifier, (const char *const *) names->pdata,
    (const char *const *) displays->pdata, pixels_crop (pixels, region), coverage, tile_size,
    stride);
  RegionsView view = { image, engine, *region, pixels, n_wanted, top_k };
  g_signal_connect (window, "progress", G_CALLBACK (on_regions_progress), &view);
  g_signal_connect (window, "add-layers", G_CALLBACK (on_add_layers), &view);
  g_signal_connect (window, "selection-from-heatmap", G_CALLBACK (on_selection), &view);
  g_signal_connect (window, "boxes-to-paths", G_CALLBACK (on_boxes_to_paths), &view);
  g_signal_connect (window, "destroy", G_CALLBACK (gtk_main_quit), NULL);
  int n_tiles = 0;
  g_object_ref (window);
  gimp_window_set_transient (GTK_WINDOW (window));
  gtk_window_present (GTK_WINDOW (window));
  gtk_main ();
  agc_regions_window_get_tiles (AGC_REGIONS_WINDOW (window), &n_tiles);
  // the window owns them now; it is finalized with its last reference
  engine->model = NULL;
  engine->classifier = NULL;
  g_object_unref (window);
  return n_tiles;
}

static GimpValueArray *
regions_run (GimpProcedure *procedure, GimpRunMode run_mode, GimpImage *image,
             GimpDrawable **drawables, GimpProcedureConfig *config, gpointer run_data)
{
  (void) drawables;
  (void) run_data;
  if (run_mode == GIMP_RUN_INTERACTIVE
      && !plugin_dialog_run (procedure, config, _("AgriCLIP: Regions")))
    return gimp_procedure_new_return_values (procedure, GIMP_PDB_CANCEL, NULL);

  int top_k = 5, tile_size = 224, stride = 224, n_wanted = 3;
  double threshold = 0.5;
  g_object_get (config, "top-k", &top_k, "tile-size", &tile_size, "stride", &stride, "classes",
                &n_wanted, "threshold", &threshold, NULL);

  gimp_progress_init (_("AgriCLIP: labelling regions"));
  GError *error = NULL;
  Engine *engine = engine_open (config, &error);
  if (!engine)
    return plugin_fail (procedure, error);

  AgcRect region;
  pixels_region (&region, image, NULL);
  Pixels *pixels = pixels_read (image, NULL, &region, &error);
  if (!pixels)
    {
      engine_free (engine);
      return plugin_fail (procedure, error);
    }
  if (run_mode == GIMP_RUN_INTERACTIVE)
    {
      int n = regions_window_run (image, engine, &region, pixels, tile_size, stride, n_wanted,
                                  top_k);
      pixels_free (pixels);
      engine_free (engine);
      GimpValueArray *values = gimp_procedure_new_return_values (procedure, GIMP_PDB_SUCCESS,
                                                                 NULL);
      GIMP_VALUES_SET_INT (values, 1, n);
      return values;
    }
  g_autoptr (GArray) tile_array = make_tiles (pixels, tile_size, stride);
  const Tile *tiles = (const Tile *) (void *) tile_array->data;
  int n_tiles = (int) tile_array->len;
  int n_classes = agc_classifier_n_classes (engine->classifier);
  g_autofree float *probs = g_new (float, (gsize) MAX (1, n_tiles) * n_classes); // [T, C]
  gimp_progress_set_text_printf (_("Classifying %d tiles"), n_tiles);
  gboolean ok = n_tiles > 0 && classify_tiles (probs, engine, pixels, tiles, n_tiles, &error);
  pixels_free (pixels);
  if (!ok)
    {
      if (!error)
        g_set_error (&error, AGC_ERROR, AGC_ERROR_INPUT, _("Nothing visible is selected"));
      engine_free (engine);
      return plugin_fail (procedure, error);
    }

  g_autofree int *chosen = g_new (int, n_classes);
  int n_chosen = choose_classes (chosen, probs, n_tiles, n_classes, n_wanted);
  g_autofree char *json = regions_json (engine, &region, tile_size, stride, threshold, chosen,
                                        n_chosen, tiles, n_tiles, probs, top_k);
  gimp_progress_set_text (_("Adding layers"));
  write_regions (image, engine, &region, tiles, n_tiles, probs, chosen, n_chosen, threshold,
                 json, FALSE);
  engine_free (engine);
  gimp_progress_update (1.0);

  GimpValueArray *values = gimp_procedure_new_return_values (procedure, GIMP_PDB_SUCCESS, NULL);
  GIMP_VALUES_SET_INT (values, 1, n_tiles);
  return values;
}

GimpProcedure *
regions_procedure_new (GimpPlugIn *plug_in)
{
  GimpProcedure *procedure = gimp_image_procedure_new (plug_in, REGIONS_PROC,
                                                       GIMP_PDB_PROC_TYPE_PLUGIN, regions_run,
                                                       NULL, NULL);
  gimp_procedure_set_image_types (procedure, "*");
  gimp_procedure_set_sensitivity_mask (procedure, GIMP_PROCEDURE_SENSITIVE_DRAWABLE
                                                    | GIMP_PROCEDURE_SENSITIVE_DRAWABLES
                                                    | GIMP_PROCEDURE_SENSITIVE_NO_DRAWABLES);
  gimp_procedure_set_menu_label (procedure, _("_Regions…"));
  gimp_procedure_add_menu_path (procedure, MENU_PATH);
  gimp_procedure_set_documentation (
    procedure, _("Find where each AgriCLIP class is, tile by tile"),
    _("Cuts the selection's bounding box (or the image) into tiles, classifies them and adds "
      "a layer group with a heatmap layer per class (opacity = probability), a text layer on "
      "each tile whose top probability reaches the threshold, and the parasite "
      "\"agriclip-regions\" (JSON) with every tile's box and labels. Returns the number of "
      "tiles."),
    REGIONS_PROC);
  gimp_procedure_set_attribution (procedure, "AgriCLIP authors", "AgriCLIP authors", "2025");

  engine_add_arguments (procedure);
  gimp_procedure_add_int_argument (procedure, "tile-size", _("Tile si_ze"),
                                   _("Side of the square tiles, in pixels"), 8, 8192, 224,
                                   G_PARAM_READWRITE);
  gimp_procedure_add_int_argument (procedure, "stride", _("_Stride"),
                                   _("Distance between tile origins, in pixels"), 1, 8192, 224,
                                   G_PARAM_READWRITE);
  gimp_procedure_add_int_argument (procedure, "classes", _("_Heatmaps"),
                                   _("How many classes get a heatmap layer: those with the "
                                     "highest probability in any tile"),
                                   1, 64, 3, G_PARAM_READWRITE);
  gimp_procedure_add_double_argument (procedure, "threshold", _("Label _threshold"),
                                      _("Tiles whose top probability reaches this get a text "
                                        "layer"),
                                      0.0, 1.0, 0.5, G_PARAM_READWRITE);
  /* Last, so that callers passing the earlier arguments by position keep working. */
  gimp_procedure_add_file_argument (procedure, "adapter", _("_Adapter"),
                                    _("An adapter made by \"Train on Tagged Folders\" or "
                                      "'agriclip train' for this model: use its classes (and "
                                      "its weights, for finetune and aligner adapters) instead "
                                      "of the label set (none: zero-shot with the label set)"),
                                    GIMP_FILE_CHOOSER_ACTION_OPEN, TRUE, NULL,
                                    G_PARAM_READWRITE);
  gimp_procedure_add_int_return_value (procedure, "n-tiles", _("Tiles"),
                                       _("How many tiles were classified"), 0, G_MAXINT, 0,
                                       G_PARAM_READWRITE);
  return procedure;
}
