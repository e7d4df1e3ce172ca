/* data-dirs.h — the folders where agriclip's data (label sets in labels/,
 * the model catalogue catalogue.json) is looked for: one list for every kind
 * of data, so that label sets and the catalogue are found in the same places. */
#pragma once

#include <glib.h>

/* The agriclip data folders, most specific first: the user's
 * ($XDG_DATA_HOME/agriclip); the source tree's models/ when this library runs
 * from its build tree (an uninstalled build works with no environment
 * variables; an installed one never looks there); the system data folders'
 * agriclip/ ($XDG_DATA_DIRS); the install prefix's share/agriclip.  Each
 * appears once.  Free with g_ptr_array_unref. */
GPtrArray *agc_data_dirs (void);

/* TRUE when the code calling it was loaded from the build tree it was built
 * in (an uninstalled build). */
gboolean agc_running_from_build_tree (void);
