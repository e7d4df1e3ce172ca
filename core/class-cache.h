/* class-cache.h — the class embeddings of a label set for a model, kept on
 * disk so that building the same classifier again does no text work.
 *
 * Under $XDG_CACHE_HOME/agriclip: classes/AB/KEY.f32 (AB: the key's first
 * two hex digits), where KEY = SHA-256 of a format version, the model
 * folder's canonical path and its files' names, sizes, inodes, mtimes and
 * ctimes (no file is read: a ctime cannot be set back, so a file written
 * again is a new model), and every class's prompts in order.  Names and
 * display names do not enter the key: they do not change the embeddings.  A file holds the classifier's rows,
 * [n_classes, E] float32, each L2-normalised, after a header that is checked
 * on load.  A cache never changes a result: an entry that is missing, short
 * or of other sizes is a miss, and a failed write only costs the next run.
 *
 * Use (classifier.c):
 *   g_autofree char *key = agc_class_cache_key (model, labels, NULL);
 *   if (key != NULL && agc_class_cache_load (classes, key, n_classes, dim))
 *     return;  // no text work
 *   ... encode the prompts into classes ...
 *   if (key != NULL)
 *     agc_class_cache_store (key, classes, n_classes, dim, NULL);
 */
#pragma once

#include "agriclip.h"

/* The key (64 hex digits, g_free), or NULL with error when the model folder
 * cannot be listed (then simply do not cache). */
char *agc_class_cache_key (const AgcModel *model, const AgcLabelSet *labels, GError **error);

/* TRUE when the entry exists and holds exactly [n_classes, dim]: classes is
 * filled.  FALSE otherwise, classes untouched. */
gboolean agc_class_cache_load (float *classes, const char *key, int n_classes, int dim);

/* Writes the entry atomically (temporary file, then rename). */
gboolean agc_class_cache_store (const char *key, const float *classes, int n_classes, int dim,
                                GError **error);
