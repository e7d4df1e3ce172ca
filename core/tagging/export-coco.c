/* export-coco.c — `--format coco`: DEST/annotations.json in the COCO
 * detection format (images, categories, annotations).
 *
 * - images: id 1…N, file_name the absolute path of the original (so that
 *   tools joining an image root to it find the file whatever the root),
 *   width, height; agriclip_labels (the top K: category_id, score) and
 *   agriclip_review carry the whole-image labels.
 * - categories: id 1…C in the label set's order, name the export name.
 * - annotations: with regions, one per box (bbox [x, y, width, height] in
 *   pixels, area, iscrowd 0, score); without, one per image for its most
 *   probable label, whose bbox is the whole image. */
#include "tagging/export.h"

static void
append_annotation (GString *out, int id, int image_id, int category_id, int x, int y, int width,
                   int height, float p)
{
  g_string_append_printf (out,
                          "%s\n    {\"id\": %d, \"image_id\": %d, \"category_id\": %d, "
                          "\"bbox\": [%d, %d, %d, %d], \"area\": %lld, \"iscrowd\": 0, "
                          "\"score\": ",
                          id > 1 ? "," : "", id, image_id, category_id, x, y, width, height,
                          (long long) width * height);
  agc_export_append_number (out, "%.6f", p);
  g_string_append_c (out, '}');
}

gboolean
agc_export_coco (AgcExport *export, GError **error)
{
  const AgcTagRun *run = export->run;
  g_autoptr (GString) out = g_string_new ("{\n  \"info\": {\"description\": ");
  agc_export_append_json (out, "agriclip tag run");
  g_string_append (out, ", \"model\": ");
  agc_export_append_json (out, run->model);
  g_string_append (out, ", \"label_set\": ");
  agc_export_append_json (out, run->label_set);
  g_string_append (out, "},\n  \"licenses\": [],\n  \"images\": [");
  for (guint i = 0; i < export->results->len; i++)
    {
      const AgcTagResult *r = export->results->pdata[i];
      g_string_append_printf (out, "%s\n    {\"id\": %u, \"file_name\": ", i ? "," : "", i + 1);
      agc_export_append_json (out, export->originals[i]);
      g_string_append_printf (out, ", \"width\": %d, \"height\": %d, \"agriclip_review\": %s, "
                                   "\"agriclip_labels\": [",
                              r->width, r->height, r->review ? "true" : "false");
      for (int k = 0; k < r->n_labels; k++)
        {
          g_string_append_printf (out, "%s{\"category_id\": %d, \"score\": ", k ? ", " : "",
                                  agc_export_class_index (run, r->labels[k].label) + 1);
          agc_export_append_number (out, "%.6f", r->labels[k].p);
          g_string_append_c (out, '}');
        }
      g_string_append (out, "]}");
    }
  g_string_append (out, "\n  ],\n  \"categories\": [");
  for (int c = 0; c < run->n_classes; c++)
    {
      g_string_append_printf (out, "%s\n    {\"id\": %d, \"name\": ", c ? "," : "", c + 1);
      agc_export_append_json (out, run->labels[c]);
      g_string_append (out, ", \"supercategory\": \"agriclip\", \"agriclip_display\": ");
      agc_export_append_json (out, run->displays[c]);
      g_string_append_c (out, '}');
    }
  g_string_append (out, "\n  ],\n  \"annotations\": [");
  int id = 0;
  for (guint i = 0; i < export->results->len; i++)
    {
      const AgcTagResult *r = export->results->pdata[i];
      if (!export->has_boxes)
        append_annotation (out, ++id, (int) i + 1,
                           agc_export_class_index (run, r->labels[0].label) + 1, 0, 0, r->width,
                           r->height, r->labels[0].p);
      for (int b = 0; b < r->n_boxes; b++)
        {
          const AgcTagBox *box = &r->boxes[b];
          append_annotation (out, ++id, (int) i + 1, agc_export_class_index (run, box->label) + 1,
                             box->x, box->y, box->width, box->height, box->p);
        }
    }
  g_string_append (out, "\n  ]\n}\n");
  return agc_export_write (export, "annotations.json", out, error);
}
