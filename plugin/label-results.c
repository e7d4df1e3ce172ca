/* label-results.c — the results window (ui/agc-results-window.h) after an
 * interactive Label…: its "Add as text layer" and "Add as keywords" become
 * GIMP objects, each in an undo group of its own.  The plug-in process runs
 * until the window is closed; GIMP stays usable meanwhile (the window is
 * not modal). */
#include "agriclip-plugin.h"

typedef struct
{
  GimpImage *image;
  int x, y;
  double size_px;
} Target;

static void
on_add_text_layer (AgcResultsWindow *window, const char *text, Target *target)
{
  if (!gimp_image_is_valid (target->image))
    return; // closed in GIMP meanwhile
  g_auto (GStrv) labels = agc_results_window_get_labels (window);
  g_autofree char *name = g_strdup_printf ("AgriCLIP: %s", labels[0] ? labels[0] : "");
  gimp_image_undo_group_start (target->image);
  results_add_text_layer (target->image, NULL, text, target->x, target->y, target->size_px,
                          name);
  gimp_image_undo_group_end (target->image);
  gimp_displays_flush ();
}

static void
on_add_keywords (AgcResultsWindow *window, char **labels, Target *target)
{
  (void) window;
  if (!gimp_image_is_valid (target->image))
    return;
  GError *error = NULL;
  gimp_image_undo_group_start (target->image);
  if (!results_add_keywords (target->image, (const char *const *) labels,
                             (int) g_strv_length (labels), &error))
    {
      g_message ("%s", error->message);
      g_error_free (error);
    }
  gimp_image_undo_group_end (target->image);
}

void
label_results_run (Engine *engine, GimpImage *image, const float *image_embedding,
                   GdkPixbuf *thumbnail, int top_k, int x, int y, double size_px)
{
  g_autofree char *model_name = g_path_get_basename (engine->model_path);
  GtkWidget *window = agc_results_window_new (g_steal_pointer (&engine->model), model_name,
                                              image_embedding, thumbnail, top_k);
  AgcClassifier *classifier = g_steal_pointer (&engine->classifier);
  if (engine->adapter)
    agc_results_window_show_adapter (AGC_RESULTS_WINDOW (window),
                                     g_steal_pointer (&engine->adapter), engine->adapter_path,
                                     classifier);
  else
    agc_results_window_show_label_set (AGC_RESULTS_WINDOW (window),
                                       g_steal_pointer (&engine->labels), engine->labels_path,
                                       classifier);
  engine_free (engine);

  Target target = { image, x, y, size_px };
  g_signal_connect (window, "add-text-layer", G_CALLBACK (on_add_text_layer), &target);
  g_signal_connect (window, "add-keywords", G_CALLBACK (on_add_keywords), &target);
  g_signal_connect (window, "destroy", G_CALLBACK (gtk_main_quit), NULL);
  gimp_window_set_transient (GTK_WINDOW (window));
  gtk_window_present (GTK_WINDOW (window));
  gtk_main ();
}
