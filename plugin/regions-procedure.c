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
 * it was. */
#include "agriclip-plugin.h"

#include <string.h>

/* Tiles read and classified together: bounds the memory held in crops. */
#define CROP_BATCH 32

typedef struct
{
  Region box;
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
add_heatmap (GimpImage *image, GimpGroupLayer *group, const Region *region, const Tile *tiles,
             int n_tiles, const float *probs, int n_classes, int class_index, const guint8 *rgb,
             const char *name)
{
  gsize n = (gsize) region->width * region->height;
  g_autofree float *sum = g_new0 (float, n);
  g_autofree guint16 *count = g_new0 (guint16, n);
  for (int t = 0; t < n_tiles; t++)
    {
      const Region *b = &tiles[t].box;
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
regions_json (const Engine *engine, const Region *region, int tile_size, int stride,
              double threshold, const int *chosen, int n_chosen, const Tile *tiles, int n_tiles,
              const float *probs, int top_k)
{
  int n_classes = agc_classifier_n_classes (engine->classifier);
  g_autofree int *top = g_new (int, n_classes);
  g_autoptr (JsonBuilder) builder = json_builder_new ();
  json_builder_begin_object (builder);
  json_builder_set_member_name (builder, "model");
  json_builder_add_string_value (builder, engine->model_path);
  json_builder_set_member_name (builder, "label_set");
  json_builder_add_string_value (builder, engine->labels_path);
  json_builder_set_member_name (builder, "label_set_id");
  json_builder_add_string_value (builder, agc_label_set_id (engine->labels));
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
    json_builder_add_string_value (builder, agc_label_set_class_name (engine->labels, chosen[c]));
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

/* Layer group, heatmaps, tile labels and parasite, in one undo group. */
static void
write_regions (GimpImage *image, const Engine *engine, const Region *region, const Tile *tiles,
               int n_tiles, const float *probs, const int *chosen, int n_chosen,
               double threshold, const char *json)
{
  int n_classes = agc_classifier_n_classes (engine->classifier);
  gimp_image_undo_group_start (image);
  GimpGroupLayer *group = gimp_group_layer_new (image, _("AgriCLIP regions"));
  gimp_image_insert_layer (image, GIMP_LAYER (group), NULL, 0);
  for (int c = n_chosen - 1; c >= 0; c--)
    {
      const char *label = agc_label_set_class_name (engine->labels, chosen[c]);
      g_autofree char *name = g_strdup_printf (_("heatmap: %s"), label);
      add_heatmap (image, group, region, tiles, n_tiles, probs, n_classes, chosen[c],
                   palette[c % G_N_ELEMENTS (palette)], name);
    }
  for (int t = 0; t < n_tiles; t++)
    {
      int best;
      agc_top_k (probs + (gsize) t * n_classes, n_classes, 1, &best);
      float p = probs[(gsize) t * n_classes + best];
      if (p < threshold)
        continue;
      const Region *b = &tiles[t].box;
      g_autofree char *text = g_strdup_printf ("%s %.0f%%",
                                               agc_label_set_class_display_name (engine->labels,
                                                                                 best),
                                               100.0 * p);
      g_autofree char *name = g_strdup_printf ("tile %d,%d: %s", b->x, b->y,
                                               agc_label_set_class_name (engine->labels, best));
      if (!results_add_text_layer (image, group, text, b->x + 2, b->y + 2,
                                   MAX (8.0, b->width / 10.0), name))
        break; // no font: one message is enough
    }
  results_attach_parasite (image, NULL, "agriclip-regions", json);
  gimp_image_undo_group_end (image);
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

  Region region;
  pixels_region (&region, image, NULL);
  Pixels *pixels = pixels_read (image, NULL, &region, &error);
  if (!pixels)
    {
      engine_free (engine);
      return plugin_fail (procedure, error);
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
                 json);
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
