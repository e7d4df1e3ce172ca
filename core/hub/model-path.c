/* model-path.c — resolving a model NAME to a pulled model's folder
 * (agriclip.h, "finding models and label sets"): pulled models go to
 * $XDG_DATA_HOME/agriclip/models/NAME.  The catalogue is not read here: any
 * folder placed there by hand resolves the same way. */
#include "agriclip.h"

#include <string.h>

char *
agc_models_dir (void)
{
  return g_build_filename (g_get_user_data_dir (), "agriclip", "models", NULL);
}

char *
agc_model_resolve_path (const char *name_or_path)
{
  g_return_val_if_fail (name_or_path != NULL, NULL);
  if (g_file_test (name_or_path, G_FILE_TEST_EXISTS))
    return g_strdup (name_or_path);
  // only a bare name: "a/b" is a path that does not exist, reported as such
  // ("." and "..", which would reach outside the folder, always exist)
  if (*name_or_path && strchr (name_or_path, G_DIR_SEPARATOR) == NULL)
    {
      g_autofree char *models = agc_models_dir ();
      char *pulled = g_build_filename (models, name_or_path, NULL);
      if (g_file_test (pulled, G_FILE_TEST_IS_DIR))
        return pulled;
      g_free (pulled);
    }
  return g_strdup (name_or_path);
}

void
agc_model_resolve_path_in_place (char **name_or_path)
{
  g_return_if_fail (name_or_path != NULL);
  if (*name_or_path == NULL)
    return;
  char *resolved = agc_model_resolve_path (*name_or_path);
  g_free (*name_or_path);
  *name_or_path = resolved;
}
