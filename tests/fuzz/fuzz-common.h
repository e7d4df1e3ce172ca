/* fuzz-common.h — what the file-reading harnesses share: the input written
 * to a file of a private folder (the readers take paths), and the rule that
 * every failure says why in AGC_ERROR. */
#pragma once

#include "agriclip.h"

#include <glib.h>
#include <glib/gstdio.h>
#include <stdint.h>
#include <stdlib.h>

/* The harness's private folder, made once. */
static const char *
fuzz_dir (void)
{
  static char *dir;
  if (dir == NULL)
    {
      dir = g_dir_make_tmp ("agc-fuzz-XXXXXX", NULL);
      if (dir == NULL)
        abort ();
    }
  return dir;
}

/* Writes size bytes to NAME in the private folder; returns its path (g_free). */
static char *
fuzz_write (const char *name, const uint8_t *data, size_t size)
{
  char *path = g_build_filename (fuzz_dir (), name, NULL);
  if (!g_file_set_contents (path, (const char *) data, (gssize) size, NULL))
    abort ();
  return path;
}

/* A reader that failed must have said why, in the library's domain. */
static void
fuzz_check_failure (GError *error)
{
  if (error == NULL || error->domain != AGC_ERROR || error->message == NULL)
    __builtin_trap ();
  g_error_free (error);
}
