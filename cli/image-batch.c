/* image-batch.c — files -> preprocessed batch, one failure at a time. */
#include "image-batch.h"

int
cli_prepare_images (AgcModel *model, const char *const *files, int n_files, float *pixels,
                    int *loaded, void (*report) (const GError *error), GError **error)
{
  g_return_val_if_fail (n_files <= CLI_IMAGE_BATCH, -1);
  int size = agc_model_image_size (model);
  gsize image_floats = (gsize) 3 * size * size;
  int n_ok = 0;
  for (int i = 0; i < n_files; i++)
    {
      GError *local = NULL;
      AgcImage *image = agc_image_load (files[i], &local);
      gboolean ok = image && agc_model_preprocess (model, image, pixels + n_ok * image_floats,
                                                   &local);
      if (image != NULL && !ok) // the library's preprocessing does not know the file
        {
          g_autofree char *shown = g_filename_display_name (files[i]);
          g_prefix_error (&local, "%s: ", shown);
        }
      agc_image_free (image);
      if (ok)
        loaded[n_ok++] = i;
      else if (report)
        {
          report (local);
          g_error_free (local);
        }
      else
        {
          g_propagate_error (error, local);
          return -1;
        }
    }
  return n_ok;
}
