/* engine.c — the arguments that pick a model and a label set, and the
 * classifier they make.  Opened on every run: GIMP starts a plug-in process
 * per call, so there is nothing to keep between runs. */
#include "agriclip-plugin.h"

#include <string.h>

/* How many crops go through the image tower at once: big enough for GEMM
 * efficiency, small enough to report progress often. */
#define BATCH_SIZE 8

/* The model is a folder, yet the argument says CREATE_FOLDER: GIMP rejects a
 * SELECT_FOLDER value that does not exist before the plug-in runs, with a
 * message that does not name it, while CREATE_FOLDER lets it through to
 * engine_open, which says which folder is missing.  The dialog shows a path
 * entry with a folder button either way.  A model pulled with `agriclip
 * models pull NAME` is found by its NAME too (plugin_resolve_model). */
void
engine_add_arguments (GimpProcedure *procedure)
{
  gimp_procedure_add_file_argument (procedure, "model", _("_Model folder"),
                                    _("A CLIP model folder in Hugging Face layout "
                                      "(config.json, model.safetensors, vocab.json, merges.txt)"),
                                    GIMP_FILE_CHOOSER_ACTION_CREATE_FOLDER, TRUE, NULL,
                                    G_PARAM_READWRITE);
  gimp_procedure_add_string_argument (procedure, "labels", _("_Labels"),
                                      _("A label-set file, or the name of a label set shipped "
                                        "with AgriCLIP"),
                                      "plantvillage", G_PARAM_READWRITE);
  gimp_procedure_add_int_argument (procedure, "top-k", _("_Top labels"),
                                   _("How many of the most probable labels to report"), 1, 100,
                                   5, G_PARAM_READWRITE);
}

/* The config's "adapter" file, or NULL when it has none (unset means
 * zero-shot; a procedure may lack the argument). */
static char *
adapter_path (GimpProcedureConfig *config)
{
  if (!g_object_class_find_property (G_OBJECT_GET_CLASS (config), "adapter"))
    return NULL;
  g_autoptr (GFile) file = NULL;
  g_object_get (config, "adapter", &file, NULL);
  if (!file)
    return NULL;
  char *path = g_file_get_path (file);
  if (!path)
    path = g_file_get_uri (file);
  if (!*path)
    g_clear_pointer (&path, g_free);
  return path;
}

/* The classifier over the adapter's classes; the model check comes first
 * so that a mismatch is reported as such (naming the adapter file).  A
 * finetune or aligner adapter also replaces the model's weights here
 * (agc_classifier_new_from_adapter applies it), before any pixel is
 * encoded. */
static gboolean
open_adapter (Engine *engine, GError **error)
{
  gimp_progress_set_text (_("Loading the adapter"));
  engine->adapter = agc_adapter_load (engine->adapter_path, error);
  if (engine->adapter && agc_adapter_check_model (engine->adapter, engine->model, error))
    engine->classifier = agc_classifier_new_from_adapter (engine->model, engine->adapter, error);
  plugin_name_path (error, engine->adapter_path);
  return engine->classifier != NULL;
}

Engine *
engine_open (GimpProcedureConfig *config, GError **error)
{
  g_autoptr (GFile) model_file = NULL;
  g_autofree char *labels = NULL;
  g_object_get (config, "model", &model_file, "labels", &labels, NULL);
  g_autofree char *adapter = adapter_path (config);
  if (!model_file)
    {
      g_set_error (error, AGC_ERROR, AGC_ERROR_IO,
                   _("No model folder chosen: set \"Model folder\" to a CLIP model folder"));
      return NULL;
    }
  if (!adapter && (!labels || !*labels))
    {
      g_set_error (error, AGC_ERROR, AGC_ERROR_IO,
                   _("No label set chosen: set \"Labels\" to a label-set file or a shipped set"));
      return NULL;
    }

  Engine *engine = g_new0 (Engine, 1);
  engine->model_path = g_file_get_path (model_file);
  if (engine->model_path)
    engine->model_path = plugin_resolve_model (engine->model_path);
  else
    engine->model_path = g_file_get_uri (model_file);
  engine->adapter_path = g_steal_pointer (&adapter);

  gboolean ok = TRUE;
  if (!engine->adapter_path)
    {
      // the CLI's --labels lookup: a file, or an installed set's id
      gimp_progress_set_text (_("Loading the label set"));
      engine->labels_path = agc_label_set_find (labels, error);
      engine->labels = engine->labels_path ? agc_label_set_load (engine->labels_path, error)
                                           : NULL;
      if (engine->labels_path)
        plugin_name_path (error, engine->labels_path);
      ok = engine->labels != NULL;
    }
  if (ok)
    {
      gimp_progress_set_text (_("Loading the model"));
      engine->model = agc_model_load (engine->model_path, error);
      plugin_name_path (error, engine->model_path);
      ok = engine->model != NULL;
    }
  if (ok && engine->adapter_path)
    ok = open_adapter (engine, error);
  else if (ok)
    {
      gimp_progress_set_text (_("Encoding the label prompts"));
      engine->classifier = agc_classifier_new (engine->model, engine->labels, NULL, error);
      plugin_name_path (error, engine->model_path);
      ok = engine->classifier != NULL;
    }
  if (!ok)
    {
      engine_free (engine);
      return NULL;
    }
  return engine;
}

void
engine_free (Engine *engine)
{
  if (!engine)
    return;
  agc_classifier_free (engine->classifier);
  agc_model_free (engine->model);
  agc_label_set_free (engine->labels);
  agc_adapter_free (engine->adapter);
  g_free (engine->model_path);
  g_free (engine->labels_path);
  g_free (engine->adapter_path);
  g_free (engine);
}

const char *
engine_class_name (const Engine *engine, int class_index)
{
  return engine->adapter ? agc_adapter_class_name (engine->adapter, class_index)
                         : agc_label_set_class_name (engine->labels, class_index);
}

const char *
engine_class_display_name (const Engine *engine, int class_index)
{
  return engine->adapter ? agc_adapter_class_display_name (engine->adapter, class_index)
                         : agc_label_set_class_display_name (engine->labels, class_index);
}

const char *
engine_class_translated_name (const Engine *engine, int class_index)
{
  return engine->adapter ? agc_adapter_class_display_name (engine->adapter, class_index)
                         : agc_label_set_class_translated_name (engine->labels, class_index);
}

gboolean
engine_classify (float *probs, Engine *engine, AgcImage *const *images, int n_images,
                 double progress_from, double progress_to, GError **error)
{
  return engine_classify_embedded (probs, NULL, engine, images, n_images, progress_from,
                                   progress_to, error);
}

gboolean
engine_classify_embedded (float *probs, float *embeddings_out, Engine *engine,
                          AgcImage *const *images, int n_images, double progress_from,
                          double progress_to, GError **error)
{
  int dim = agc_model_embed_dim (engine->model);
  int n_classes = agc_classifier_n_classes (engine->classifier);
  g_autofree float *embeddings = g_new (float, (gsize) BATCH_SIZE * dim); // [B, E]
  for (int start = 0; start < n_images; start += BATCH_SIZE)
    {
      int n = MIN (BATCH_SIZE, n_images - start);
      if (!agc_model_embed_images (engine->model, images + start, n, TRUE, embeddings, NULL,
                                   error))
        return FALSE;
      for (int i = 0; i < n; i++)
        agc_classifier_probabilities (engine->classifier, embeddings + (gsize) i * dim,
                                      probs + (gsize) (start + i) * n_classes);
      if (embeddings_out)
        memcpy (embeddings_out + (gsize) start * dim, embeddings,
                sizeof (float) * (gsize) n * dim);
      gimp_progress_update (progress_from + (progress_to - progress_from) * (start + n)
                                                / n_images);
    }
  return TRUE;
}
