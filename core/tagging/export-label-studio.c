/* export-label-studio.c — `--format label-studio`: DEST/tasks.json, a task
 * list with predictions that Label Studio imports as is, and
 * DEST/labeling-config.xml, the labelling interface those predictions are
 * made for (paste it in the project's Settings > Labeling Interface > Code).
 *
 * Each task's data.image is the original served by Label Studio's local
 * files storage with the document root "/"
 * (LABEL_STUDIO_LOCAL_FILES_SERVING_ENABLED=true,
 * LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT=/): "/data/local-files/?d=" and the
 * absolute path, percent-encoded; data.path is the path as it is.  Its one
 * prediction holds a "choices" result (from_name "label") with the most
 * probable class and, with regions, a "rectanglelabels" result (from_name
 * "box") per box, in percent of original_width/original_height. */
#include "tagging/export.h"

static void
append_result_head (GString *out, const char *id, const char *type, const char *from_name)
{
  g_string_append_printf (out,
                          "\n        {\"id\": \"%s\", \"type\": \"%s\", \"from_name\": \"%s\", "
                          "\"to_name\": \"image\", ",
                          id, type, from_name);
}

static void
append_percent (GString *out, const char *key, double value)
{
  g_string_append_printf (out, "\"%s\": ", key);
  agc_export_append_number (out, "%.4f", CLAMP (value, 0.0, 100.0));
}

static void
append_task (AgcExport *export, guint i, GString *out)
{
  const AgcTagResult *r = export->results->pdata[i];
  g_autofree char *display = agc_export_display (export->originals[i]);
  // relative to the document root "/"
  const char *relative = display[0] == '/' ? display + 1 : display;
  g_autofree char *escaped = g_uri_escape_string (relative, "/", FALSE);
  g_autofree char *url = g_strconcat ("/data/local-files/?d=", escaped, NULL);
  // no task "id": Label Studio numbers the tasks it imports itself
  g_string_append_printf (out, "%s\n  {\"data\": {\"image\": ", i ? "," : "");
  agc_export_append_json (out, url);
  g_string_append (out, ", \"path\": ");
  agc_export_append_json (out, export->originals[i]);
  g_string_append_printf (out, ", \"review\": %s},\n   \"predictions\": [{\"model_version\": ",
                          r->review ? "true" : "false");
  agc_export_append_json (out, export->run->model_identity);
  g_string_append (out, ", \"score\": ");
  agc_export_append_number (out, "%.6f", r->labels[0].p);
  g_string_append (out, ", \"result\": [");
  append_result_head (out, "label", "choices", "label");
  g_string_append (out, "\"value\": {\"choices\": [");
  agc_export_append_json (out, r->labels[0].label);
  g_string_append (out, "]}, \"score\": ");
  agc_export_append_number (out, "%.6f", r->labels[0].p);
  g_string_append_c (out, '}');
  for (int b = 0; b < r->n_boxes; b++)
    {
      const AgcTagBox *box = &r->boxes[b];
      g_autofree char *id = g_strdup_printf ("box%d", b + 1);
      g_string_append_c (out, ',');
      append_result_head (out, id, "rectanglelabels", "box");
      g_string_append_printf (out, "\"original_width\": %d, \"original_height\": %d, "
                                   "\"image_rotation\": 0, \"value\": {",
                              r->width, r->height);
      append_percent (out, "x", 100.0 * box->x / r->width);
      g_string_append (out, ", ");
      append_percent (out, "y", 100.0 * box->y / r->height);
      g_string_append (out, ", ");
      append_percent (out, "width", 100.0 * box->width / r->width);
      g_string_append (out, ", ");
      append_percent (out, "height", 100.0 * box->height / r->height);
      g_string_append (out, ", \"rotation\": 0, \"rectanglelabels\": [");
      agc_export_append_json (out, box->label);
      g_string_append (out, "]}, \"score\": ");
      agc_export_append_number (out, "%.6f", box->p);
      g_string_append_c (out, '}');
    }
  g_string_append (out, "\n      ]}]}");
}

static void
append_class_tags (GString *out, const AgcTagRun *run, const char *tag)
{
  for (int c = 0; c < run->n_classes; c++)
    {
      g_autofree char *value = g_markup_escape_text (run->labels[c], -1);
      g_autofree char *hint = g_markup_escape_text (run->displays[c], -1);
      g_string_append_printf (out, "    <%s value=\"%s\" hint=\"%s\"/>\n", tag, value, hint);
    }
}

gboolean
agc_export_label_studio (AgcExport *export, GError **error)
{
  g_autoptr (GString) tasks = g_string_new ("[");
  for (guint i = 0; i < export->results->len; i++)
    append_task (export, i, tasks);
  g_string_append (tasks, "\n]\n");

  g_autoptr (GString) config = g_string_new ("<View>\n  <Image name=\"image\" value=\"$image\"/>\n"
                                             "  <Choices name=\"label\" toName=\"image\" "
                                             "choice=\"single\" showInline=\"true\">\n");
  append_class_tags (config, export->run, "Choice");
  g_string_append (config, "  </Choices>\n");
  if (export->has_boxes)
    {
      g_string_append (config, "  <RectangleLabels name=\"box\" toName=\"image\">\n");
      append_class_tags (config, export->run, "Label");
      g_string_append (config, "  </RectangleLabels>\n");
    }
  g_string_append (config, "</View>\n");
  return agc_export_write (export, "tasks.json", tasks, error)
         && agc_export_write (export, "labeling-config.xml", config, error);
}
