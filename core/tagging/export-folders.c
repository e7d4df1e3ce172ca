/* export-folders.c — `--format folders`: DEST/<label>/<image> for each
 * image's most probable label, and DEST/_review/<label>/<image> for images
 * the run marked for review; symbolic links to the originals, or copies. */
#include "tagging/export.h"

/* The bucket of review images: not a valid folder of a label (labels with
 * this name are refused rather than mixed with it). */
#define REVIEW_FOLDER "_review"

gboolean
agc_export_folders (AgcExport *export, GError **error)
{
  if (!agc_export_check_label_folders (export->run, REVIEW_FOLDER, error))
    return FALSE;
  for (guint i = 0; i < export->results->len; i++)
    {
      const AgcTagResult *r = export->results->pdata[i];
      g_autofree char *folder = agc_export_label_folder (r->labels[0].label);
      g_autofree char *dir = r->review
                               ? g_build_filename (export->stage, REVIEW_FOLDER, folder, NULL)
                               : g_build_filename (export->stage, folder, NULL);
      GError *local = NULL;
      if (!agc_export_place_image (export, i, dir, &local) && local)
        return g_propagate_error (error, local), FALSE;
    }
  return TRUE;
}
