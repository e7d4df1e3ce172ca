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

enum
{
  SOURCE_IMAGE,
  SOURCE_DRAWABLES,
};

/* One classified target: the visible image, or one drawable. */
typedef struct
{
  GimpDrawable *drawable; /* NULL for the visible image */
  Region region;
  char *json;             /* parasite text */
  char **top_labels;      /* export names, most probable first, NULL-terminated */
  char *text;             /* text-layer text */
  double top_p;
} Result;

static void
result_clear (Result *result)
{
  g_free (result->json);
  g_strfreev (result->top_labels);
  g_free (result->text);
}

static gboolean
classify_target (Result *result, Engine *engine, GimpImage *image, int top_k, GError **error)
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
  gboolean ok = engine_classify (probs, engine, &crop, 1, 0.1, 0.9, error);
  agc_image_free (crop);
  if (!ok)
    return FALSE;
  int n_top = agc_top_k (probs, n_classes, top_k, top);

  g_autoptr (JsonBuilder) builder = json_builder_new ();
  json_builder_begin_object (builder);
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
  json_builder_set_member_name (builder, "source");
  json_builder_add_string_value (builder, result->drawable ? "drawable" : "image");
  results_json_region (builder, "region", &result->region);
  json_builder_set_member_name (builder, "selection");
  json_builder_add_boolean_value (builder, masked);
  json_builder_set_member_name (builder, "mask_grey");
  json_builder_add_int_value (builder, AGC_PLUGIN_MASK_GREY);
  results_json_labels (builder, engine, probs, top, n_top);
  json_builder_end_object (builder);
  result->json = results_json_text (builder);

  result->top_labels = g_new0 (char *, n_top + 1);
  GString *text = g_string_new (NULL);
  for (int k = 0; k < n_top; k++)
    {
      result->top_labels[k] = g_strdup (engine_class_name (engine, top[k]));
      g_string_append_printf (text, "%s%s %.0f%%", k ? "\n" : "",
                              engine_class_display_name (engine, top[k]),
                              100.0 * probs[top[k]]);
    }
  result->text = g_string_free (text, FALSE);
  result->top_p = probs[top[0]];
  return TRUE;
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
      double size = MAX (12.0, MIN (result->region.width, result->region.height) / 16.0);
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
  if (run_mode == GIMP_RUN_INTERACTIVE
      && !plugin_dialog_run (procedure, config, _("AgriCLIP: Label")))
    return gimp_procedure_new_return_values (procedure, GIMP_PDB_CANCEL, NULL);

  int top_k = 5;
  gboolean write_layer = TRUE, write_metadata = FALSE;
  g_object_get (config, "top-k", &top_k, "write-layer", &write_layer, "write-metadata",
                &write_metadata, NULL);
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
      if (!classify_target (&result, engine, image, top_k, &error))
        {
          result_clear (&result);
          break;
        }
      g_array_append_val (results, result);
    }
  engine_free (engine);
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
    return plugin_fail (procedure, error);

  const Result *first = &g_array_index (results, Result, 0);
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
