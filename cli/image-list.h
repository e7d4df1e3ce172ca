/* image-list.h — the image files named by command-line arguments: files as
 * given, folders expanded to the images inside them (sorted by name). */
#pragma once

#include <glib.h>

/* Appends file names (newly allocated) to files.  A folder contributes the
 * files whose extension a gdk-pixbuf loader claims, hidden files excluded;
 * recursive descends into sub-folders.  Unreadable folders are reported
 * through report (one GError each) and skipped; returns the number of
 * problems reported. */
int cli_collect_images (char **paths, int n_paths, gboolean recursive, GPtrArray *files,
                        void (*report) (const GError *error));
