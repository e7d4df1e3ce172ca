/* folder.h — listing a folder the one way every reader does: in name order
 * (byte order, the same on every machine), hidden entries left out. */
#pragma once

#include <glib.h>

/* The names of the entries of folder (not paths), ".name" ones left out,
 * sorted by strcmp; a new array that frees its strings.  NULL with
 * g_dir_open's error (G_FILE_ERROR) when the folder cannot be read. */
GPtrArray *agc_list_folder (const char *folder, GError **error);
