/* data-dirs.c — one search path for agriclip's data (data-dirs.h). */
#define _GNU_SOURCE /* dladdr */
#include "support/data-dirs.h"

#include <dlfcn.h>
#include <stdlib.h>
#include <string.h>

/* The file this code was loaded from: libagriclip.so, or a program that links
 * the library's objects statically (the tests). */
static char *
loaded_from (void)
{
  Dl_info info;
  if (dladdr ((void *) agc_running_from_build_tree, &info) && info.dli_fname
      && strchr (info.dli_fname, '/'))
    {
      char *real = realpath (info.dli_fname, NULL);
      if (real)
        {
          char *copy = g_strdup (real);
          free (real);
          return copy;
        }
    }
  // the main program is named by argv[0], which may be a bare name
  return g_file_read_link ("/proc/self/exe", NULL);
}

static gboolean
compute_running_from_build_tree (void)
{
  g_autofree char *object = loaded_from ();
  char *real = realpath (AGRICLIP_BUILD_ROOT, NULL);
  if (object == NULL || real == NULL)
    {
      free (real);
      return FALSE;
    }
  g_autofree char *build_root = g_strconcat (real, "/", NULL);
  free (real);
  return g_str_has_prefix (object, build_root);
}

gboolean
agc_running_from_build_tree (void)
{
  static gsize answer = 0; // 0: not yet known, 1: no, 2: yes
  if (g_once_init_enter (&answer))
    g_once_init_leave (&answer, compute_running_from_build_tree () ? 2 : 1);
  return answer == 2;
}

static void
add_once (GPtrArray *dirs, char *dir)
{
  for (guint i = 0; i < dirs->len; i++)
    if (strcmp (dirs->pdata[i], dir) == 0)
      {
        g_free (dir);
        return;
      }
  g_ptr_array_add (dirs, dir);
}

GPtrArray *
agc_data_dirs (void)
{
  GPtrArray *dirs = g_ptr_array_new_with_free_func (g_free);
  add_once (dirs, g_build_filename (g_get_user_data_dir (), "agriclip", NULL));
  if (agc_running_from_build_tree ())
    add_once (dirs, g_strdup (AGRICLIP_SOURCE_DATADIR));
  for (const char *const *d = g_get_system_data_dirs (); *d; d++)
    add_once (dirs, g_build_filename (*d, "agriclip", NULL));
  add_once (dirs, g_strdup (AGRICLIP_DATADIR));
  return dirs;
}
