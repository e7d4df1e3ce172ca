/* export-csv.c — `--format csv`: DEST/labels.csv, one row per image and
 * label (path,image,source,rank,label,display,p,review), and with regions
 * DEST/boxes.csv (path,image,label,p,x,y,width,height in pixels).  RFC 4180:
 * fields with commas, quotes or line breaks are quoted. */
#include "tagging/export.h"

#include <string.h>

static void
append_field (GString *out, const char *text)
{
  g_autofree char *s = agc_export_display (text);
  if (strpbrk (s, ",\"\r\n") == NULL)
    {
      g_string_append (out, s);
      return;
    }
  g_string_append_c (out, '"');
  for (const char *p = s; *p; p++)
    {
      if (*p == '"')
        g_string_append_c (out, '"');
      g_string_append_c (out, *p);
    }
  g_string_append_c (out, '"');
}

gboolean
agc_export_csv (AgcExport *export, GError **error)
{
  g_autoptr (GString) labels = g_string_new ("path,image,source,rank,label,display,p,review\r\n");
  g_autoptr (GString) boxes = g_string_new ("path,image,label,p,x,y,width,height\r\n");
  for (guint i = 0; i < export->results->len; i++)
    {
      const AgcTagResult *r = export->results->pdata[i];
      for (int k = 0; k < r->n_labels; k++)
        {
          int c = agc_export_class_index (export->run, r->labels[k].label);
          append_field (labels, export->originals[i]);
          g_string_append_c (labels, ',');
          append_field (labels, r->image);
          g_string_append_printf (labels, ",%d,%d,", r->source, k + 1);
          append_field (labels, r->labels[k].label);
          g_string_append_c (labels, ',');
          append_field (labels, export->run->displays[c]);
          g_string_append_c (labels, ',');
          agc_export_append_number (labels, "%.6f", r->labels[k].p);
          g_string_append (labels, r->review ? ",true\r\n" : ",false\r\n");
        }
      for (int b = 0; b < r->n_boxes; b++)
        {
          const AgcTagBox *box = &r->boxes[b];
          append_field (boxes, export->originals[i]);
          g_string_append_c (boxes, ',');
          append_field (boxes, r->image);
          g_string_append_c (boxes, ',');
          append_field (boxes, box->label);
          g_string_append_c (boxes, ',');
          agc_export_append_number (boxes, "%.6f", box->p);
          g_string_append_printf (boxes, ",%d,%d,%d,%d\r\n", box->x, box->y, box->width,
                                  box->height);
        }
    }
  return agc_export_write (export, "labels.csv", labels, error)
         && (!export->has_boxes || agc_export_write (export, "boxes.csv", boxes, error));
}
