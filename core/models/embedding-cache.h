/* embedding-cache.h — the on-disk caches that make training again quick.
 *
 * Under $XDG_CACHE_HOME/agriclip (~/.cache/agriclip):
 *   hashes/AB/KEY                          the SHA-256 of a file's content,
 *                                          KEY = hash of its path and stat data
 *   embeddings/MODEL/AB/HASH.safetensors   an image's L2-normalised embedding,
 *                                          MODEL = agc_model_identity (), then
 *                                          -adapter-DIGEST with an adapter
 *                                          applied, -int8 in int8 mode,
 *                                          -fast-decode with the model's
 *                                          fast decode (agriclip.h),
 *                                          HASH = SHA-256 of the image file
 *   embeddings/KEY/AB/HASH.safetensors     other per-image values
 *                                          (agc_encode_files_cached), e.g.
 *                                          KEY = MODEL-resnet-features
 * (AB: the first two hex digits, to keep folders small).  Keying embeddings
 * by content, not by name, means renamed or copied photos hit the cache and
 * an edited photo misses it.  A cache never changes a result: an entry that
 * cannot be read or does not match is computed again (and rewritten), and
 * one that cannot be written is reported and otherwise ignored.  Every entry
 * and memo holds a SHA-256 of its key and its value, so that a damaged one,
 * or one copied from another image's, does not match. */
#pragma once

#include "agriclip.h"
#include "models/image-pipeline.h"

#define AGC_SHA256_HEX 65 /* 64 hex digits and a NUL */

/* $XDG_CACHE_HOME/agriclip, newly allocated. */
char *agc_cache_dir (void);

/* hex = the SHA-256 of the file's bytes.  Remembered under the file's
 * canonical path, device, inode, size, mtime and ctime (which no tool can
 * set back), so an unchanged file is not read again: hashing a 600 MB model
 * takes seconds, a memo lookup microseconds. */
gboolean agc_file_sha256 (char hex[AGC_SHA256_HEX], const char *path, GError **error);

typedef struct
{
  int n_cached;   /* found in the cache */
  int n_embedded; /* encoded now (and stored) */
  int n_failed;   /* skipped: unreadable or undecodable */
} AgcEmbedCounts;

/* Embeddings out[n_files, E] (L2-normalised) of image files, through the
 * cache.  A file that cannot be read or decoded gets ok[i] = FALSE and a zero
 * row, and its problem goes to report (when not NULL); hashes[i] receives the
 * content hash ("" when unreadable).  progress (may be NULL) is called as
 * files are done.  model_identity: agc_model_identity (model).  Returns
 * FALSE only when cancelled or when the encoder itself fails. */
gboolean agc_embed_files_cached (float *out, gboolean *ok, char (*hashes)[AGC_SHA256_HEX],
                                 AgcEmbedCounts *counts, AgcModel *model,
                                 const char *model_identity, const char *const *files,
                                 int n_files, AgcTrainReportFunc report,
                                 void (*progress) (int done, int total, gpointer user_data),
                                 gpointer user_data, GCancellable *cancellable, GError **error);

/* Any per-image values through the same cache: what agc_embed_files_cached
 * does for a model's embeddings, for another encoder (AgriCLIP's ResNet
 * features before the aligner, a second model's embeddings). */
typedef struct
{
  const char *key;    /* the cache folder embeddings/KEY; stored in every entry.  It must
                         name everything that decides the values: e.g. a model identity
                         and what is taken from the model */
  int dim;            /* values per image */
  gboolean unit_norm; /* the values are L2-normalised (a torn entry shows by its norm;
                         otherwise one that is all zeros or not finite is recomputed) */
  int image_size;     /* S: preprocess writes pixels[3, S, S] */
  /* load (NULL: agc_image_load) and preprocess run on the decoding
   * pipeline's worker threads (image-pipeline.h), encode on the caller's */
  AgcImagePreprocessFunc preprocess;
  gboolean (*encode) (float *out, const float *pixels, int n, gpointer data,
                      GCancellable *cancellable, GError **error); /* out[n, dim] */
  gpointer data;      /* for all of them */
  AgcImageLoadFunc load;
  /* NULL, or load + preprocess in one (AgcImageDecoder.load_input): a JPEG
   * resized as its rows are decoded, without the whole decoded image */
  AgcImageLoadInputFunc load_input;
} AgcCachedEncoder;

/* The cache key of values a model computes from an image: model_identity,
 * then what names the values ("" for embeddings, "-resnet-features" for
 * AgriCLIP's backbone features), then the adapter applied to the model (a
 * finetune, aligner or DINO adapter changes what it computes) and the
 * encoder's mode (int8).  Without an adapter or mode, identity + what. */
char *agc_model_cache_key (const AgcModel *model, const char *model_identity, const char *what);

/* As agc_embed_files_cached, with out[n_files, encoder->dim]. */
gboolean agc_encode_files_cached (float *out, gboolean *ok, char (*hashes)[AGC_SHA256_HEX],
                                  AgcEmbedCounts *counts, const AgcCachedEncoder *encoder,
                                  const char *const *files, int n_files,
                                  AgcTrainReportFunc report,
                                  void (*progress) (int done, int total, gpointer user_data),
                                  gpointer user_data, GCancellable *cancellable, GError **error);
