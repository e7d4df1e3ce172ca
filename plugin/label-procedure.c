/* label-procedure.c — plug-in-agriclip-label: the most probable labels of the
 * selection (its bounding box, unselected pixels greyed out, see pixels.c)
 * or of the whole image, left in the image as a parasite, optionally as a
 * text layer and as keywords, and returned as the top label and its
 * probability.
 *
 * Everything slow (model, classification) happens before the image is
 * touched, so a cancelled or failed run leaves the image as it was; the
 * changes then go into one undo group. */
#include "agriclip-plugin.h"

#include <string.h>

enum
{
  SOURCE_IMAGE,
  SOURCE_DRAWABLES,
};

/* One classified target: the visible image, or one drawable. */
typedef struct
{
  GimpDrawable *drawable; /* NULL for the visible image */
  AgcRect region;
  char *json;             /* parasite text */
  char **top_labels;      /* export names, most probable first, NULL-terminated */
  char *text;             /* text-layer text */
  double top_p;
  float *embedding;       /* [E], kept for the results window (interactive runs) */
  GdkPixbuf *thumbnail;   /* what was classified, likewise */
  gboolean masked;        /* a selection shaped what was classified */
} Result;

/* Longest side of the results window's thumbnail, in image pixels: sharp
 * at twice its 160-pixel logical size on a HiDPI screen. */
#define THUMBNAIL_MAX 512

static void
result_clear (Result *result)
{
  g_free (result->json);
  g_strfreev (result->top_labels);
  g_free (result->text);
  g_free (result->embedding);
  g_clear_object (&result->thumbnail);
}

/* The crop as a pixbuf no larger than THUMBNAIL_MAX on its longest side. */
static GdkPixbuf *
thumbnail_of (const AgcImage *crop)
{
  GdkPixbuf *full = gdk_pixbuf_new (GDK_COLORSPACE_RGB, FALSE, 8, crop->width, crop->height);
  guint8 *rows = gdk_pixbuf_get_pixels (full);
  int stride = gdk_pixbuf_get_rowstride (full);
  for (int y = 0; y < crop->height; y++)
    memcpy (rows + (gsize) y * stride, crop->pixels + (gsize) y * crop->width * 3,
            (gsize) crop->width * 3);
  double scale = (double) THUMBNAIL_MAX / MAX (crop->width, crop->height);
  if (scale >= 1.0)
    return full;
  GdkPixbuf *small = gdk_pixbuf_scale_simple (full, MAX (1, (int) (crop->width * scale)),
                                              MAX (1, (int) (crop->height * scale)),
                                              GDK_INTERP_BILINEAR);
  g_object_unref (full);
  return small;
}

/* keep: also keep the embedding and a thumbnail, for the results window. */
static gboolean
classify_target (Result *result, Engine *engine, GimpImage *image, int top_k, gboolean keep,
                 GError **error)
{
  Pixels *pixels = pixels_read (image, result->drawable, &result->region, error);
  if (!pixels)
    return FALSE;
  AgcImage *crop = pixels_crop (pixels, &result->region);
  gboolean masked = pixels->mask != NULL;
  pixels_free (pixels);

  int n_classes = agc_classifier_n_classes (engine->classifier);
  g_autofree float *probs = g_new (float, n_classes);
  g_autofree int *top = g_new (int, n_classes);
  if (keep)
    {
      result->embedding = g_new (float, agc_model_embed_dim (engine->model));
      result->thumbnail = thumbnail_of (crop);
    }
  gboolean ok = engine_classify_embedded (probs, result->embedding, engine, &crop, 1, 0.1, 0.9,
                                          error);
  agc_image_free (crop);
  if (!ok)
    return FALSE;
  int n_top = agc_top_k (probs, n_classes, top_k, top);

  result->masked = masked;
  result->json = results_label_json (engine, result->drawable != NULL, &result->region, masked,
                                     probs, top, n_top);

  result->top_labels = g_new0 (char *, n_top + 1);
  GString *text = g_string_new (NULL);
  for (int k = 0; k < n_top; k++)
    {
      result->top_labels[k] = g_strdup (engine_class_name (engine, top[k]));
      g_string_append_printf (text, "%s%s %.0f%%", k ? "\n" : "",
                              engine_class_translated_name (engine, top[k]),
                              100.0 * probs[top[k]]);
    }
  result->text = g_string_free (text, FALSE);
  result->top_p = probs[top[0]];
  return TRUE;
}

/* The text layer's size for a region: readable on small and large images. */
static double
text_size (const AgcRect *region)
{
  return MAX (12.0, MIN (region->width, region->height) / 16.0);
}

/* Leaves one result in the image (inside the caller's undo group). */
static gboolean
write_result (const Result *result, GimpImage *image, gboolean write_layer,
              gboolean write_metadata, GError **error)
{
  results_attach_parasite (image, result->drawable ? GIMP_ITEM (result->drawable) : NULL,
                           "agriclip-labels", result->json);
  if (write_layer)
    {
      double size = text_size (&result->region);
      g_autofree char *name = g_strdup_printf ("AgriCLIP: %s", result->top_labels[0]);
      results_add_text_layer (image, NULL, result->text, result->region.x, result->region.y,
                              size, name);
    }
  if (write_metadata)
    return results_add_keywords (image, (const char *const *) result->top_labels,
                                 (int) g_strv_length (result->top_labels), error);
  return TRUE;
}

static GimpValueArray *
label_run (GimpProcedure *procedure, GimpRunMode run_mode, GimpImage *image,
           GimpDrawable **drawables, GimpProcedureConfig *config, gpointer run_data)
{
  (void) run_data;
  // Interactive runs: our own dialog, and the results window instead of a
  // text layer and keywords written unasked (it offers both).
  gboolean interactive = run_mode == GIMP_RUN_INTERACTIVE;
  if (interactive && !label_dialog_run (procedure, config))
    return gimp_procedure_new_return_values (procedure, GIMP_PDB_CANCEL, NULL);

  int top_k = 5;
  gboolean write_layer = TRUE, write_metadata = FALSE;
  g_object_get (config, "top-k", &top_k, "write-layer", &write_layer, "write-metadata",
                &write_metadata, NULL);
  if (interactive)
    write_layer = write_metadata = FALSE;
  gboolean per_drawable = gimp_procedure_config_get_choice_id (config, "source")
                          == SOURCE_DRAWABLES
                          && drawables && drawables[0];

  gimp_progress_init (_("AgriCLIP: labelling"));
  GError *error = NULL;
  Engine *engine = engine_open (config, &error);
  if (!engine)
    return plugin_fail (procedure, error);

  g_autoptr (GArray) results = g_array_new (FALSE, TRUE, sizeof (Result));
  g_array_set_clear_func (results, (GDestroyNotify) result_clear);
  for (int i = 0; per_drawable ? drawables[i] != NULL : i < 1; i++)
    {
      Result result = { .drawable = per_drawable ? drawables[i] : NULL };
      if (!pixels_region (&result.region, image, result.drawable))
        continue; // the selection misses this layer
      gimp_progress_set_text (_("Classifying"));
      if (!classify_target (&result, engine, image, top_k, interactive, &error))
        {
          result_clear (&result);
          break;
        }
      g_array_append_val (results, result);
    }
  if (!interactive || error || results->len == 0)
    g_clear_pointer (&engine, engine_free);
  if (!error && results->len == 0)
    g_set_error (&error, AGC_ERROR, AGC_ERROR_INPUT,
                 _("The selection does not touch any of the selected layers"));
  if (error)
    return plugin_fail (procedure, error);

  gimp_image_undo_group_start (image);
  for (guint i = 0; i < results->len && !error; i++)
    write_result (&g_array_index (results, Result, i), image, write_layer, write_metadata,
                  &error);
  gimp_image_undo_group_end (image);
  gimp_progress_update (1.0);
  if (error)
    {
      engine_free (engine);
      return plugin_fail (procedure, error);
    }

  const Result *first = &g_array_index (results, Result, 0);
  if (interactive)
    {
      gimp_progress_end ();
      gimp_displays_flush ();
      g_autofree LabelTarget *targets = g_new0 (LabelTarget, results->len);
      for (guint i = 0; i < results->len; i++)
        {
          const Result *r = &g_array_index (results, Result, i);
          targets[i] = (LabelTarget) { r->drawable, r->region, r->masked, r->embedding,
                                       r->thumbnail, text_size (&r->region) };
        }
      label_results_run (g_steal_pointer (&engine), image, targets, (int) results->len, top_k);
    }
  GimpValueArray *values = gimp_procedure_new_return_values (procedure, GIMP_PDB_SUCCESS, NULL);
  GIMP_VALUES_SET_STRING (values, 1, first->top_labels[0]);
  GIMP_VALUES_SET_DOUBLE (values, 2, first->top_p);
  return values;
}

GimpProcedure *
label_procedure_new (GimpPlugIn *plug_in)
{
  GimpProcedure *procedure = gimp_image_procedure_new (plug_in, LABEL_PROC,
                                                       GIMP_PDB_PROC_TYPE_PLUGIN, label_run,
                                                       NULL, NULL);
  gimp_procedure_set_image_types (procedure, "*");
  gimp_procedure_set_sensitivity_mask (procedure, GIMP_PROCEDURE_SENSITIVE_DRAWABLE
                                                    | GIMP_PROCEDURE_SENSITIVE_DRAWABLES
                                                    | GIMP_PROCEDURE_SENSITIVE_NO_DRAWABLES);
  gimp_procedure_set_menu_label (procedure, _("_Label…"));
  gimp_procedure_add_menu_path (procedure, MENU_PATH);
  gimp_procedure_set_documentation (
    procedure, _("Label the selection or the image with AgriCLIP"),
    _("Classifies the selection's bounding box (pixels outside the selection and transparent "
      "pixels count as neutral grey) or the whole image with a CLIP model and a label set, "
      "or the classes of a trained adapter. "
      "The labels and their probabilities are attached as the parasite \"agriclip-labels\" "
      "(JSON), optionally written as a text layer and as Xmp.dc.subject keywords; the top "
      "label and its probability are returned."),
    LABEL_PROC);
  gimp_procedure_set_attribution (procedure, "AgriCLIP authors", "AgriCLIP authors", "2025");

  engine_add_arguments (procedure);
  /* OPEN: GIMP itself refuses a file that does not exist. */
  gimp_procedure_add_file_argument (procedure, "adapter", _("_Adapter"),
                                    _("An adapter made by \"Train on Tagged Folders\" or "
                                      "'agriclip train' for this model: classify with its "
                                      "classes (and its weights, for finetune and aligner "
                                      "adapters) instead of the label set (none: zero-shot "
                                      "with the label set)"),
                                    GIMP_FILE_CHOOSER_ACTION_OPEN, TRUE, NULL,
                                    G_PARAM_READWRITE);
  gimp_procedure_add_choice_argument (
    procedure, "source", _("_Source"), _("What to classify"),
    gimp_choice_new_with_values ("image", SOURCE_IMAGE, _("The visible image"), NULL,
                                 "drawables", SOURCE_DRAWABLES, _("Each selected layer"), NULL,
                                 NULL),
    "image", G_PARAM_READWRITE);
  gimp_procedure_add_boolean_argument (procedure, "write-layer", _("Add a text _layer"),
                                       _("Add a text layer with the labels"), TRUE,
                                       G_PARAM_READWRITE);
  gimp_procedure_add_boolean_argument (procedure, "write-metadata", _("Add _keywords"),
                                       _("Add the labels to the image's Xmp.dc.subject "
                                         "keywords, kept when exporting"),
                                       FALSE, G_PARAM_READWRITE);

  gimp_procedure_add_string_return_value (procedure, "label", _("Label"),
                                          _("The most probable label (export name)"), NULL,
                                          G_PARAM_READWRITE);
  gimp_procedure_add_double_return_value (procedure, "probability", _("Probability"),
                                          _("Its probability"), 0.0, 1.0, 0.0,
                                          G_PARAM_READWRITE);
  return procedure;
}
