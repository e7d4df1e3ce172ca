/* image-batch.c — the pipeline's images -> preprocessed batch, one failure at a time. */
#include "image-batch.h"

#include <string.h>

int
cli_next_images (AgcImagePipeline *pipeline, int size, int n_files, float *pixels, int *loaded,
                 void (*report) (const GError *error), GError **error)
{
  g_return_val_if_fail (n_files <= CLI_IMAGE_BATCH, -1);
  gsize image_floats = (gsize) 3 * size * size;
  int n_ok = 0;
  for (int i = 0; i < n_files; i++)
    {
      const AgcPipelineImage *image = agc_image_pipeline_next (pipeline);
      if (image->error == NULL)
        {
          memcpy (pixels + n_ok * image_floats, image->pixels, image_floats * sizeof (float));
          loaded[n_ok++] = i;
        }
      else if (report)
        report (image->error);
      else
        {
          g_propagate_error (error, g_error_copy (image->error));
          return -1;
        }
    }
  return n_ok;
}
