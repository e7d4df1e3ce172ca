/* class-cache.h — the class embeddings of a label set for a model, kept on
 * disk so that building the same classifier again does no text work.
 *
 * Under $XDG_CACHE_HOME/agriclip (the embedding cache's base,
 * embedding-cache.h): classes/AB/KEY.f32, AB the key's first two hex digits.
 * KEY = SHA-256 of everything that decides the class embeddings:
 *   - the entry format and the agriclip version (a fix to the text tower
 *     must not meet embeddings of the old code);
 *   - agc_model_identity () (content hashes of the model folder's weights
 *     and configurations, remembered by file stat: after the first use of a
 *     model this reads no weights);
 *   - the content of the text side's files that the identity leaves out:
 *     the tokenizer's, and the text model's own when it is a checkpoint file
 *     or an AgriCLIP text_model outside the folder (agc_model_text_source);
 *   - the digest of the adapter applied to the model, if any (a contrastive
 *     adapter changes the text tower; nothing is added without one);
 *   - the class recipe (agc_model_class_recipe);
 *   - every class's prompts, in order.
 * Names and display names do not enter the key: they do not change the
 * embeddings.  Content, not paths: a copied model folder hits the cache, a
 * file written again with other weights misses it.
 *
 * An entry holds a header (magic, n_classes, E, the key, the SHA-256 of the
 * rows) and the classifier's rows, [n_classes, E] float32, each
 * L2-normalised, in this machine's byte order.  A cache never changes a
 * result and never fails a classification: an entry that is missing, short,
 * corrupt or of other sizes is a miss (then computed and written again,
 * atomically), and a cache folder that cannot be written turns the cache
 * off.  AGRICLIP_NO_CLASS_CACHE=1 turns it off too (the reference tests do,
 * so that they always run the text tower).
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

/* The key (64 hex digits, g_free), or NULL when not to cache: turned off,
 * the cache folder cannot be written (no error then), or a file of the model
 * cannot be read (error set). */
char *agc_class_cache_key (const AgcModel *model, const AgcLabelSet *labels, GError **error);

/* TRUE when the entry of key exists, is intact and holds exactly
 * [n_classes, dim]: classes is filled.  FALSE otherwise, classes untouched. */
gboolean agc_class_cache_load (float *classes, const char *key, int n_classes, int dim);

/* Writes the entry atomically (temporary file, then rename). */
gboolean agc_class_cache_store (const char *key, const float *classes, int n_classes, int dim,
                                GError **error);

/* model.c: the CLIP checkpoint (file or folder) whose text tower and
 * tokenizer the model uses: the model's own path, or an AgriCLIP folder's
 * text_model. */
const char *agc_model_text_source (const AgcModel *model);
/* model.c: how many texts the model's text tower has encoded since it was
 * loaded; for tests (a cache hit encodes none). */
int agc_model_n_texts_encoded (const AgcModel *model);
