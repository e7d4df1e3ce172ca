/* model-dir-context.c — a model folder's text context length without
 * loading its weights, for tokenising alone (agriclip.h, "tokenizers"). */
#include "models/clip-config.h"

gboolean
agc_model_dir_context_length (const char *dir, int *context_length, GError **error)
{
  g_return_val_if_fail (dir != NULL && context_length != NULL, FALSE);
  g_autofree char *config_path = g_build_filename (dir, "config.json", NULL);
  *context_length = 77;
  if (!g_file_test (config_path, G_FILE_TEST_EXISTS))
    return TRUE;
  AgcClipConfig config;
  if (!agc_clip_config_load (config_path, &config, error))
    return FALSE;
  *context_length = config.text.context_length;
  return TRUE;
}
