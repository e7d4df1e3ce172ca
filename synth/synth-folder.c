/* synth-folder.c — preparing and marking the output folder. */
#include "synth-folder.h"

#include "agriclip.h"
#include "synth-output.h"

#include <errno.h>
#include <glib/gi18n.h>
#include <glib/gstdio.h>
#include <string.h>
#include <sys/stat.h>

#define MARKER ".agriclip-synth"

/* Removes path and, for a folder, everything in it; symbolic links are
 * removed, never followed. */
static gboolean
remove_tree (const char *path, GError **error)
{
  GStatBuf st;
  if (g_lstat (path, &st) != 0)
    return TRUE; // nothing there
  if (S_ISDIR (st.st_mode))
    {
      GDir *dir = g_dir_open (path, 0, error);
      if (!dir)
        return FALSE;
      const char *name;
      gboolean ok = TRUE;
      while (ok && (name = g_dir_read_name (dir)))
        {
          g_autofree char *child = g_build_filename (path, name, NULL);
          ok = remove_tree (child, error);
        }
      g_dir_close (dir);
      if (!ok)
        return FALSE;
    }
  if (g_remove (path) != 0)
    {
      int code = errno;
      g_autofree char *shown = g_filename_display_name (path);
      g_set_error (error, AGC_ERROR, AGC_ERROR_IO, _("%s: cannot remove: %s"), shown,
                   g_strerror (code));
      return FALSE;
    }
  return TRUE;
}

gboolean
synth_folder_prepare (const char *dir, GError **error)
{
  g_autofree char *shown = g_filename_display_name (dir);
  if (g_file_test (dir, G_FILE_TEST_EXISTS))
    {
      if (!g_file_test (dir, G_FILE_TEST_IS_DIR))
        {
          g_set_error (error, AGC_ERROR, AGC_ERROR_INPUT, _("%s: not a folder"), shown);
          return FALSE;
        }
      GDir *d = g_dir_open (dir, 0, error);
      if (!d)
        return FALSE;
      gboolean empty = g_dir_read_name (d) == NULL;
      g_dir_close (d);
      g_autofree char *marker = g_build_filename (dir, MARKER, NULL);
      if (!empty && !g_file_test (marker, G_FILE_TEST_IS_REGULAR))
        {
          g_set_error (error, AGC_ERROR, AGC_ERROR_INPUT,
                       _("%s: the folder is not empty and was not written by 'agriclip synth'; "
                         "give a new or empty folder"), shown);
          return FALSE;
        }
      const char *parts[] = { "pretrain", "eval", "finetune" };
      for (gsize i = 0; i < G_N_ELEMENTS (parts); i++)
        {
          g_autofree char *sub = g_build_filename (dir, parts[i], NULL);
          if (!remove_tree (sub, error))
            return FALSE;
        }
    }
  return synth_folder_make (dir, error);
}

gboolean
synth_folder_make (const char *path, GError **error)
{
  if (g_mkdir_with_parents (path, 0777) == 0)
    return TRUE;
  int code = errno;
  g_autofree char *shown = g_filename_display_name (path);
  g_set_error (error, AGC_ERROR, AGC_ERROR_IO, _("%s: cannot create the folder: %s"), shown,
               g_strerror (code));
  return FALSE;
}

gboolean
synth_folder_mark (const SynthOptions *o, gboolean complete, GError **error)
{
  g_autofree char *text = g_strdup_printf (
      "{\"generator\": \"agriclip synth\", \"seed\": %" G_GUINT64_FORMAT ", \"size\": %d, "
      "\"pretrain\": %d, \"eval_per_class\": %d, \"finetune_per_class\": %d, "
      "\"complete\": %s}\n",
      o->seed, o->size, o->n_pretrain, o->eval_per_class, o->finetune_per_class,
      complete ? "true" : "false");
  g_autofree char *path = g_build_filename (o->out, MARKER, NULL);
  return synth_write_file (path, text, strlen (text), error);
}
