/* results.c — what the plug-in leaves in an image: parasites (JSON, saved in
 * XCF, undoable), Xmp.dc.subject keywords (survive export to JPEG/PNG/TIFF
 * and are read by photo managers) and text layers.  Callers wrap these in
 * one undo group. */
#include "agriclip-plugin.h"

#include <string.h>

void
results_attach_parasite (GimpImage *image, GimpItem *item, const char *name, const char *json)
{
  GimpParasite *parasite = gimp_parasite_new (name,
                                              GIMP_PARASITE_PERSISTENT | GIMP_PARASITE_UNDOABLE,
                                              (guint32) strlen (json) + 1, json);
  if (item)
    gimp_item_attach_parasite (item, parasite);
  else
    gimp_image_attach_parasite (image, parasite);
  gimp_parasite_free (parasite);
}

gboolean
results_add_keywords (GimpImage *image, const char *const *labels, int n_labels, GError **error)
{
  GimpMetadata *metadata = gimp_image_get_metadata (image);
  if (!metadata)
    metadata = gimp_metadata_new ();
  GExiv2Metadata *exiv = GEXIV2_METADATA (metadata);

  // Keep the keywords people already gave; add ours once.
  g_autoptr (GPtrArray) keywords = g_ptr_array_new_with_free_func (g_free);
  g_auto (GStrv) old = gexiv2_metadata_try_get_tag_multiple (exiv, "Xmp.dc.subject", NULL);
  for (int i = 0; old && old[i]; i++)
    g_ptr_array_add (keywords, g_strdup (old[i]));
  for (int i = 0; i < n_labels; i++)
    if (!g_ptr_array_find_with_equal_func (keywords, labels[i], g_str_equal, NULL))
      g_ptr_array_add (keywords, g_strdup (labels[i]));
  g_ptr_array_add (keywords, NULL);

  gboolean ok = gexiv2_metadata_try_set_tag_multiple (exiv, "Xmp.dc.subject",
                                                      (const char **) keywords->pdata, error)
                && gimp_image_set_metadata (image, metadata);
  if (!ok && error && !*error)
    g_set_error (error, AGC_ERROR, AGC_ERROR_IO, _("Cannot set the image's metadata"));
  g_object_unref (metadata);
  return ok;
}

GimpLayer *
results_add_text_layer (GimpImage *image, GimpGroupLayer *parent, const char *text, int x, int y,
                        double size_px, const char *name)
{
  GimpFont *font = gimp_context_get_font ();
  GimpTextLayer *layer = font ? gimp_text_layer_new (image, text, font, size_px,
                                                     gimp_unit_pixel ())
                              : NULL;
  if (!layer)
    {
      // GIMP without fonts (minimal systems, some CI): the results are in the parasite anyway.
      g_message (_("AgriCLIP: no usable font, so no text layer was added"));
      return NULL;
    }
  if (name)
    gimp_item_set_name (GIMP_ITEM (layer), name);
  gimp_image_insert_layer (image, GIMP_LAYER (layer), GIMP_LAYER (parent), 0);
  gimp_layer_set_offsets (GIMP_LAYER (layer), x, y);
  return GIMP_LAYER (layer);
}

void
results_json_source (JsonBuilder *builder, const Engine *engine)
{
  json_builder_set_member_name (builder, "model");
  json_builder_add_string_value (builder, engine->model_path);
  if (engine->adapter)
    {
      json_builder_set_member_name (builder, "adapter");
      json_builder_add_string_value (builder, engine->adapter_path);
    }
  else
    {
      json_builder_set_member_name (builder, "label_set");
      json_builder_add_string_value (builder, engine->labels_path);
      json_builder_set_member_name (builder, "label_set_id");
      json_builder_add_string_value (builder, agc_label_set_id (engine->labels));
    }
}

void
results_json_labels (JsonBuilder *builder, const Engine *engine, const float *probs,
                     const int *top, int n_top)
{
  json_builder_set_member_name (builder, "labels");
  json_builder_begin_array (builder);
  for (int k = 0; k < n_top; k++)
    {
      json_builder_begin_object (builder);
      json_builder_set_member_name (builder, "label");
      json_builder_add_string_value (builder, engine_class_name (engine, top[k]));
      json_builder_set_member_name (builder, "display");
      json_builder_add_string_value (builder,
                                     engine_class_display_name (engine, top[k]));
      json_builder_set_member_name (builder, "p");
      json_builder_add_double_value (builder, probs[top[k]]);
      json_builder_end_object (builder);
    }
  json_builder_end_array (builder);
}

char *
results_label_json (const Engine *engine, gboolean drawable, const AgcRect *region,
                    gboolean masked, const float *probs, const int *top, int n_top)
{
  g_autoptr (JsonBuilder) builder = json_builder_new ();
  json_builder_begin_object (builder);
  results_json_source (builder, engine);
  json_builder_set_member_name (builder, "source");
  json_builder_add_string_value (builder, drawable ? "drawable" : "image");
  results_json_region (builder, "region", region);
  json_builder_set_member_name (builder, "selection");
  json_builder_add_boolean_value (builder, masked);
  json_builder_set_member_name (builder, "mask_grey");
  json_builder_add_int_value (builder, AGC_PLUGIN_MASK_GREY);
  results_json_labels (builder, engine, probs, top, n_top);
  json_builder_end_object (builder);
  return results_json_text (builder);
}

void
results_json_region (JsonBuilder *builder, const char *member, const AgcRect *region)
{
  json_builder_set_member_name (builder, member);
  json_builder_begin_object (builder);
  json_builder_set_member_name (builder, "x");
  json_builder_add_int_value (builder, region->x);
  json_builder_set_member_name (builder, "y");
  json_builder_add_int_value (builder, region->y);
  json_builder_set_member_name (builder, "width");
  json_builder_add_int_value (builder, region->width);
  json_builder_set_member_name (builder, "height");
  json_builder_add_int_value (builder, region->height);
  json_builder_end_object (builder);
}

char *
results_json_text (JsonBuilder *builder)
{
  JsonNode *root = json_builder_get_root (builder);
  char *text = json_to_string (root, FALSE);
  json_node_unref (root);
  return text;
}
