/* label-results.c — the results window (ui/agc-results-window.h) after an
 * interactive Label…: one item per labelled layer (or the image); its "Add
 * as text layer" and "Add as keywords" become GIMP objects for the item
 * shown, each in an undo group of its own, and labelling again rewrites
 * every item's "agriclip-labels" parasite (one undo group).  The plug-in
 * process runs until the window is closed; GIMP stays usable meanwhile (the
 * window is not modal). */
#include "agriclip-plugin.h"

typedef struct
{
  GimpImage *image;
  const LabelTarget *targets; /* [n_targets], item i is targets[i] */
  int n_targets;
  int top_k;
  const char *model_path;
} View;

static void
on_add_text_layer (AgcResultsWindow *window, const char *text, View *view)
{
  if (!gimp_image_is_valid (view->image))
    return; // closed in GIMP meanwhile
  const LabelTarget *target = &view->targets[agc_results_window_get_item (window)];
  g_auto (GStrv) labels = agc_results_window_get_labels (window, -1);
  g_autofree char *name = g_strdup_printf ("AgriCLIP: %s", labels[0] ? labels[0] : "");
  gimp_image_undo_group_start (view->image);
  results_add_text_layer (view->image, NULL, text, target->region.x, target->region.y,
                          target->text_size, name);
  gimp_image_undo_group_end (view->image);
  gimp_displays_flush ();
}

static void
on_add_keywords (AgcResultsWindow *window, char **labels, View *view)
{
  (void) window;
  if (!gimp_image_is_valid (view->image))
    return;
  GError *error = NULL;
  gimp_image_undo_group_start (view->image);
  if (!results_add_keywords (view->image, (const char *const *) labels,
                             (int) g_strv_length (labels), &error))
    {
      g_message ("%s", error->message);
      g_error_free (error);
    }
  gimp_image_undo_group_end (view->image);
}

/* The labels the window shows now replace what the first run attached. */
static void
on_relabelled (AgcResultsWindow *window, const char *message, View *view)
{
  if (message || !gimp_image_is_valid (view->image))
    return; // the window says what went wrong; the old labels stay
  const AgcLabelSet *labels = NULL;
  const AgcAdapter *adapter = NULL;
  const char *name = agc_results_window_get_source (window, &labels, &adapter);
  // The parasite names the set's file, as the first run did (name may be an id).
  g_autofree char *labels_path = labels ? agc_label_set_find (name, NULL) : NULL;
  Engine source = { .labels = (AgcLabelSet *) labels,
                    .adapter = (AgcAdapter *) adapter,
                    .model_path = (char *) view->model_path,
                    .labels_path = labels_path ? labels_path : (char *) name,
                    .adapter_path = adapter ? (char *) name : NULL };
  int n_classes = labels ? agc_label_set_n_classes (labels) : agc_adapter_n_classes (adapter);
  g_autofree int *top = g_new (int, n_classes);
  gimp_image_undo_group_start (view->image);
  for (int i = 0; i < view->n_targets; i++)
    {
      const LabelTarget *t = &view->targets[i];
      if (t->drawable && !gimp_item_is_valid (GIMP_ITEM (t->drawable)))
        continue; // deleted meanwhile
      const float *probs = agc_results_window_get_class_probabilities (window, i);
      int n_top = agc_top_k (probs, n_classes, view->top_k, top);
      g_autofree char *json = results_label_json (&source, t->drawable != NULL, &t->region,
                                                  t->masked, probs, top, n_top);
      results_attach_parasite (view->image, t->drawable ? GIMP_ITEM (t->drawable) : NULL,
                               "agriclip-labels", json);
    }
  gimp_image_undo_group_end (view->image);
}

void
label_results_run (Engine *engine, GimpImage *image, const LabelTarget *targets, int n_targets,
                   int top_k)
{
  g_autofree char *model_name = g_path_get_basename (engine->model_path);
  g_autofree char *model_path = g_strdup (engine->model_path);
  GtkWidget *window = agc_results_window_new (g_steal_pointer (&engine->model), model_name,
                                              top_k);
  for (int i = 0; i < n_targets; i++)
    {
      g_autofree char *name = targets[i].drawable
                                ? gimp_item_get_name (GIMP_ITEM (targets[i].drawable))
                                : g_strdup (_("The visible image"));
      agc_results_window_add_item (AGC_RESULTS_WINDOW (window), name, targets[i].embedding,
                                   targets[i].thumbnail);
    }
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

  View view = { image, targets, n_targets, top_k, model_path };
  g_signal_connect (window, "add-text-layer", G_CALLBACK (on_add_text_layer), &view);
  g_signal_connect (window, "add-keywords", G_CALLBACK (on_add_keywords), &view);
  g_signal_connect (window, "relabelled", G_CALLBACK (on_relabelled), &view);
  g_signal_connect (window, "destroy", G_CALLBACK (gtk_main_quit), NULL);
  gimp_window_set_transient (GTK_WINDOW (window));
  gtk_window_present (GTK_WINDOW (window));
  gtk_main ();
}
