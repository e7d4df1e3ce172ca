/* model-files.c — finds a model's files (Hugging Face, open_clip, OpenAI
 * layouts) and opens them as Hugging Face-named weights, config and
 * preprocessing. */
#include "models/model-files.h"

#include "agriclip.h"
#include "models/clip-config-infer.h"
#include "models/open-clip-config.h"
#include "formats/weight-names.h"

#include <string.h>

/* The files a model is read from; NULL for those absent. */
typedef struct
{
  char *folder;
  char *weights;           /* checkpoint, or a shard index */
  char *config;            /* config.json */
  char *open_clip_config;  /* open_clip_config.json */
  char *preprocessor;      /* preprocessor_config.json (may not exist) */
} ModelFiles;

static void
model_files_clear (ModelFiles *f)
{
  g_free (f->folder);
  g_free (f->weights);
  g_free (f->config);
  g_free (f->open_clip_config);
  g_free (f->preprocessor);
}

/* folder/name when that file exists, else NULL. */
static char *
existing (const char *folder, const char *name)
{
  char *path = g_build_filename (folder, name, NULL);
  if (g_file_test (path, G_FILE_TEST_IS_REGULAR))
    return path;
  g_free (path);
  return NULL;
}

static char *
first_existing (const char *folder, const char *const *names, size_t n_names)
{
  char *path = NULL;
  for (size_t i = 0; path == NULL && i < n_names; i++)
    path = existing (folder, names[i]);
  return path;
}

static gboolean
is_checkpoint_name (const char *name)
{
  return g_str_has_suffix (name, ".pt") || g_str_has_suffix (name, ".pth")
         || g_str_has_suffix (name, ".safetensors") || g_str_has_suffix (name, ".bin");
}

static int
compare_names (gconstpointer a, gconstpointer b)
{
  return strcmp (*(char *const *) a, *(char *const *) b);
}

/* The folder's only checkpoint file; an error when there are several. */
static gboolean
lone_checkpoint (char **out, const char *folder, GError **error)
{
  *out = NULL;
  GDir *dir = g_dir_open (folder, 0, NULL);
  if (dir == NULL)
    return TRUE;
  g_autoptr (GPtrArray) names = g_ptr_array_new_with_free_func (g_free);
  const char *name;
  while ((name = g_dir_read_name (dir)) != NULL)
    {
      g_autofree char *path = g_build_filename (folder, name, NULL);
      if (is_checkpoint_name (name) && g_file_test (path, G_FILE_TEST_IS_REGULAR))
        g_ptr_array_add (names, g_strdup (name));
    }
  g_dir_close (dir);
  if (names->len == 1)
    *out = g_build_filename (folder, g_ptr_array_index (names, 0), NULL);
  if (names->len <= 1)
    return TRUE;
  g_ptr_array_sort (names, compare_names);
  g_ptr_array_add (names, NULL);
  g_autofree char *list = g_strjoinv (", ", (char **) names->pdata);
  g_set_error (error, AGC_ERROR, AGC_ERROR_INPUT,
               "%s: several checkpoints (%s) and no config.json or open_clip_config.json to "
               "choose one; give the checkpoint file itself as the model",
               folder, list);
  return FALSE;
}

static gboolean
find_in_folder (ModelFiles *f, GError **error)
{
  static const char *const hf_weights[] = { "model.safetensors", "model.safetensors.index.json",
                                            "pytorch_model.bin", "pytorch_model.bin.index.json" };
  static const char *const open_clip_weights[] = { "open_clip_model.safetensors",
                                                   "open_clip_pytorch_model.bin" };
  if (f->config != NULL)
    f->weights = first_existing (f->folder, hf_weights, G_N_ELEMENTS (hf_weights));
  if (f->weights == NULL && f->open_clip_config != NULL)
    f->weights = first_existing (f->folder, open_clip_weights, G_N_ELEMENTS (open_clip_weights));
  if (f->weights == NULL && !lone_checkpoint (&f->weights, f->folder, error))
    return FALSE;
  if (f->weights == NULL)
    {
      g_set_error (error, AGC_ERROR, AGC_ERROR_IO,
                   "%s: no model weights: expected config.json with model.safetensors "
                   "(Hugging Face), open_clip_config.json with open_clip_model.safetensors or "
                   "open_clip_pytorch_model.bin (open_clip), or a single .pt/.pth checkpoint "
                   "(OpenAI)",
                   f->folder);
      return FALSE;
    }
  return TRUE;
}

static gboolean
check_tokenizer_files (const char *path, const ModelFiles *f, GError **error)
{
  g_autofree char *vocab = existing (f->folder, "vocab.json");
  g_autofree char *merges = existing (f->folder, "merges.txt");
  g_autofree char *bpe = existing (f->folder, "bpe_simple_vocab_16e6.txt.gz");
  if ((vocab != NULL && merges != NULL) || bpe != NULL)
    return TRUE;
  g_autofree char *display = g_filename_display_name (path);
  g_autofree char *folder = g_filename_display_name (f->folder);
  g_set_error (error, AGC_ERROR, AGC_ERROR_IO,
               "%s: no tokenizer files: put vocab.json and merges.txt (Hugging Face layout) or "
               "bpe_simple_vocab_16e6.txt.gz (OpenAI layout) into %s",
               display, folder);
  return FALSE;
}

static gboolean
has_hf_names (const AgcWeights *weights)
{
  for (int i = 0; i < agc_weights_n_tensors (weights); i++)
    {
      const char *name = agc_weights_tensor (weights, i)->name;
      if (g_str_has_prefix (name, "vision_model.") || g_str_has_prefix (name, "text_model."))
        return TRUE;
    }
  return FALSE;
}

/* OpenAI / open_clip names: config declared or inferred, then the HF view. */
static gboolean
open_openai (AgcWeights **weights, AgcClipConfig *config, AgcPreprocess *pre, const ModelFiles *f,
             GError **error)
{
  g_autofree char *base = g_path_get_basename (f->weights);
  if (f->open_clip_config == NULL && g_str_has_prefix (base, "open_clip_"))
    {
      g_set_error (error, AGC_ERROR, AGC_ERROR_IO,
                   "%s: open_clip_config.json is missing beside it; an open_clip checkpoint "
                   "needs it (it tells exact GELU from QuickGELU, which the weights do not)",
                   agc_weights_path (*weights));
      return FALSE;
    }
  AgcClipConfig c, declared;
  AgcPreprocess p;
  if (f->open_clip_config != NULL)
    {
      g_autofree char *display = g_filename_display_name (f->open_clip_config);
      if (!agc_open_clip_config_load (f->open_clip_config, &declared, &p, error)
          || !agc_clip_config_infer (&c, *weights, &declared, display, error))
        return FALSE;
    }
  else if (!agc_clip_config_infer (&c, *weights, NULL, NULL, error)
           || !agc_preprocess_config_load (f->preprocessor, c.vision.image_size, &p, error))
    return FALSE;
  AgcWeights *hf = agc_weights_new_hf_view (*weights, error); // consumes *weights
  *weights = hf;
  if (hf == NULL)
    return FALSE;
  *config = c;
  *pre = p;
  return TRUE;
}

static gboolean
open_hf (AgcClipConfig *config, AgcPreprocess *pre, const AgcWeights *weights,
         const ModelFiles *f, GError **error)
{
  if (!has_hf_names (weights))
    {
      g_set_error (error, AGC_ERROR, AGC_ERROR_UNSUPPORTED,
                   "%s: not a CLIP checkpoint: its tensors have neither Hugging Face names "
                   "(vision_model.*, text_model.*) nor OpenAI ones (visual.*, "
                   "token_embedding.weight)",
                   agc_weights_path (weights));
      return FALSE;
    }
  if (f->config == NULL)
    {
      g_autofree char *folder = g_filename_display_name (f->folder);
      g_set_error (error, AGC_ERROR, AGC_ERROR_IO,
                   "%s: config.json is missing (%s has Hugging Face tensor names, which need it)",
                   folder, agc_weights_path (weights));
      return FALSE;
    }
  AgcClipConfig c;
  AgcPreprocess p;
  if (!agc_clip_config_load (f->config, &c, error)
      || !agc_preprocess_config_load (f->preprocessor, c.vision.image_size, &p, error))
    return FALSE;
  *config = c;
  *pre = p;
  return TRUE;
}

char *
agc_model_files_folder (const char *path)
{
  g_return_val_if_fail (path != NULL, NULL);
  return g_file_test (path, G_FILE_TEST_IS_DIR) ? g_strdup (path) : g_path_get_dirname (path);
}

gboolean
agc_model_files_open (const char *path, AgcWeights **weights_hf_named, AgcClipConfig *config,
                      AgcPreprocess *pre, GError **error)
{
  g_return_val_if_fail (path != NULL && weights_hf_named != NULL, FALSE);
  g_return_val_if_fail (config != NULL && pre != NULL, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  *weights_hf_named = NULL;
  if (!g_file_test (path, G_FILE_TEST_EXISTS))
    {
      g_autofree char *display = g_filename_display_name (path);
      g_set_error (error, AGC_ERROR, AGC_ERROR_IO, "%s: no such folder or file", display);
      return FALSE;
    }
  gboolean is_dir = g_file_test (path, G_FILE_TEST_IS_DIR);
  ModelFiles f = { .folder = agc_model_files_folder (path) };
  f.config = existing (f.folder, "config.json");
  f.open_clip_config = existing (f.folder, "open_clip_config.json");
  f.preprocessor = g_build_filename (f.folder, "preprocessor_config.json", NULL);
  if (!is_dir)
    f.weights = g_strdup (path);

  g_autoptr (AgcWeights) weights = NULL;
  gboolean ok = (is_dir ? find_in_folder (&f, error) : TRUE)
                && check_tokenizer_files (path, &f, error)
                && (weights = agc_weights_open (f.weights, error)) != NULL;
  if (ok)
    ok = agc_weights_has_openai_names (weights)
             ? open_openai (&weights, config, pre, &f, error)
             : open_hf (config, pre, weights, &f, error);
  model_files_clear (&f);
  if (ok)
    *weights_hf_named = g_steal_pointer (&weights);
  return ok;
}
