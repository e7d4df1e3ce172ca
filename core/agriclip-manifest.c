/* agriclip-manifest.c — agriclip.json, or the released layout's defaults. */
#include "agriclip-manifest.h"

#include "agriclip.h"

#include <json-glib/json-glib.h>
#include <math.h>
#include <string.h>

#define WEIGHTS_DIR "Weights"
#define DEFAULT_IMAGE_WEIGHTS "Weights/dino_pretrain.pth"
#define ALIGNER_PREFIX "Agri_Dino_aligner_"
#define ALIGNER_SUFFIX ".pth"

void
agc_agriclip_manifest_clear (AgcAgriclipManifest *manifest)
{
  g_clear_pointer (&manifest->image_weights, g_free);
  g_clear_pointer (&manifest->image_prefix, g_free);
  g_clear_pointer (&manifest->aligner, g_free);
  g_clear_pointer (&manifest->text_model, g_free);
  manifest->temperature = 0.0;
}

static int
compare_names (gconstpointer a, gconstpointer b)
{
  return strcmp (*(char *const *) a, *(char *const *) b);
}

/* The names of Weights/Agri_Dino_aligner_*.pth, sorted (the Model Zoo's aligners). */
static GPtrArray *
list_aligners (const char *dir)
{
  GPtrArray *names = g_ptr_array_new_with_free_func (g_free);
  g_autofree char *weights_dir = g_build_filename (dir, WEIGHTS_DIR, NULL);
  GDir *d = g_dir_open (weights_dir, 0, NULL);
  if (d == NULL)
    return names;
  for (const char *name; (name = g_dir_read_name (d)) != NULL;)
    if (g_str_has_prefix (name, ALIGNER_PREFIX) && g_str_has_suffix (name, ALIGNER_SUFFIX))
      g_ptr_array_add (names, g_strconcat (WEIGHTS_DIR, "/", name, NULL));
  g_dir_close (d);
  g_ptr_array_sort (names, compare_names);
  return names;
}

static gboolean
exists_in (const char *dir, const char *relative)
{
  g_autofree char *path = g_build_filename (dir, relative, NULL);
  return g_file_test (path, G_FILE_TEST_EXISTS);
}

gboolean
agc_agriclip_is_folder (const char *dir)
{
  g_return_val_if_fail (dir != NULL, FALSE);
  if (exists_in (dir, AGC_AGRICLIP_MANIFEST) || exists_in (dir, DEFAULT_IMAGE_WEIGHTS))
    return TRUE;
  g_autoptr (GPtrArray) aligners = list_aligners (dir);
  gboolean aligner_named = f.aligner != NULL;
  gboolean ok
    = (aligner_named || find_aligner (&f.aligner, aligners, have_manifest, error))
      && (manifest->aligner = resolve (dir, f.aligner, "aligner", aligner_named, "the aligner",
                                       error))
      && (manifest->image_weights
          = resolve (dir, f.image_weights ? f.image_weights : DEFAULT_IMAGE_WEIGHTS,
                     "image_encoder.weights", f.image_weights != NULL,
                     "the DINO ResNet-50 of the AgriCLIP Model Zoo", error))
      && (manifest->text_model = resolve (dir, f.text_model ? f.text_model : ".", "text_model",
                                          f.text_model != NULL, "the text model", error));
  if (!ok)
    {
      agc_agriclip_manifest_clear (manifest);
      return FALSE;
    }
  manifest->image_prefix = g_strdup (f.image_prefix);
  manifest->temperature = f.temperature;
  return TRUE;
}
