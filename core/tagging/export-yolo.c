/* export-yolo.c — `--format yolo`, as Ultralytics reads datasets.
 *
 * Without regions, classification in the ImageFolder layout:
 * DEST/<label>/<image> for each image's most probable label.  With regions,
 * detection: DEST/images/<image>, DEST/labels/<image stem>.txt with one
 * line "class cx cy w h" per box (normalised to the image, in [0, 1];
 * class = index in the label set), an empty file for an image without
 * boxes, and DEST/data.yaml (path, train, val, names).  Images are symbolic
 * links to the originals, or copies. */
#include "tagging/export.h"

#include <errno.h>
#include <glib/gstdio.h>
#include <string.h>

static gboolean
classification (AgcExport *export, GError **error)
{
  if (!agc_export_check_label_folders (export->run, NULL, error))
    return FALSE;
  for (guint i = 0; i < export->results->len; i++)
    {
      const AgcTagResult *r = export->results->pdata[i];
      g_autofree char *folder = agc_export_label_folder (r->labels[0].label);
      g_autofree char *dir = g_build_filename (export->stage, folder, NULL);
      GError *local = NULL;
      if (!agc_export_place_image (export, i, dir, &local) && local)
        return g_propagate_error (error, local), FALSE;
    }
  return TRUE;
}

static void
append_coordinate (GString *out, double value)
{
  g_string_append_c (out, ' ');
  agc_export_append_number (out, "%.6f", CLAMP (value, 0.0, 1.0));
}

static char *
label_file_name (const char *image_name)
{
  const char *dot = strrchr (image_name, '.');
  gsize stem = dot && dot != image_name ? (gsize) (dot - image_name) : strlen (image_name);
  return g_strdup_printf ("labels/%.*s.txt", (int) stem, image_name);
}

static gboolean
detection (AgcExport *export, GError **error)
{
  const AgcTagRun *run = export->run;
  g_autofree char *images = g_build_filename (export->stage, "images", NULL);
  g_autofree char *labels = g_build_filename (export->stage, "labels", NULL);
  if (g_mkdir (labels, 0777) != 0)
    return g_set_error (error, AGC_ERROR, AGC_ERROR_IO, "%s: %s", labels,
                        g_strerror (errno)), FALSE;
  for (guint i = 0; i < export->results->len; i++)
    {
      const AgcTagResult *r = export->results->pdata[i];
      GError *local = NULL;
      if (!agc_export_place_image (export, i, images, &local))
        {
          if (local)
            return g_propagate_error (error, local), FALSE;
          continue; // a copy that failed, reported: no label file either
        }
      g_autoptr (GString) lines = g_string_new (NULL);
      for (int b = 0; b < r->n_boxes; b++)
        {
          const AgcTagBox *box = &r->boxes[b];
          g_string_append_printf (lines, "%d", agc_export_class_index (run, box->label));
          append_coordinate (lines, (box->x + box->width / 2.0) / r->width);
          append_coordinate (lines, (box->y + box->height / 2.0) / r->height);
          append_coordinate (lines, (double) box->width / r->width);
          append_coordinate (lines, (double) box->height / r->height);
          g_string_append_c (lines, '\n');
        }
      g_autofree char *name = label_file_name (export->names[i]);
      if (!agc_export_write (export, name, lines, error))
        return FALSE;
    }
  // YAML double-quoted scalars take JSON's escapes
  g_autoptr (GString) yaml = g_string_new ("# written by agriclip export --format yolo\npath: ");
  agc_export_append_json (yaml, export->dest);
  g_string_append_printf (yaml, "\ntrain: images\nval: images\nnc: %d\nnames:\n", run->n_classes);
  for (int c = 0; c < run->n_classes; c++)
    {
      g_string_append_printf (yaml, "  %d: ", c);
      agc_export_append_json (yaml, run->labels[c]);
      g_string_append_c (yaml, '\n');
    }
  return agc_export_write (export, "data.yaml", yaml, error);
}

gboolean
agc_export_yolo (AgcExport *export, GError **error)
{
  return export->has_boxes ? detection (export, error) : classification (export, error);
}
