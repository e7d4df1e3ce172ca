/* embedding-cache.c — content hashes remembered by stat, and image
 * embeddings (or other per-image values) remembered by content hash and
 * model identity (or another key). */
#include "models/embedding-cache.h"

#include "models/adapter.h"
#include "support/error.h"
#include "formats/safetensors-write.h"
#include "support/regular-file.h"
#include "formats/safetensors.h"

#include <errno.h>
#include <fcntl.h>
#include <glib/gstdio.h>
#include <math.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Images decoded and encoded together: thick GEMMs, bounded memory.  The
 * batches are files[8k .. 8k+7] whatever the cache holds, and a batch with
 * any file missing from the cache is encoded whole: an image's values
 * differ in the last bits with the batch it is encoded in (the GEMMs sum in
 * another order for another number of rows), so this way a run stopped
 * halfway and run again gets the very bits of one never stopped. */
#define EMBED_BATCH 8
/* Batches looked up before their misses are decoded (by the image
 * pipeline, on all cores, ahead of the encoder): the pipeline empties once
 * per window, and a window is the work done before progress is first
 * reported. */
#define WINDOW_BATCHES 64
/* Changes whenever what a cached value means changes. */
#define HASH_MEMO_VERSION "agriclip-hash-memo 2"

char *
agc_cache_dir (void)
{
  return g_build_filename (g_get_user_cache_dir (), "agriclip", NULL);
}

/* ---- content hashes ------------------------------------------------------- */

static gboolean
is_hex_digest (const char *s, gsize length)
{
  if (length != AGC_SHA256_HEX - 1)
    return FALSE;
  for (gsize i = 0; i < length; i++)
    if (!g_ascii_isxdigit (s[i]) || g_ascii_isupper (s[i]))
      return FALSE;
  return TRUE;
}

/* The checksum that follows the digest in a memo: of the memo's key text
 * and the digest, so that a damaged memo or one copied from another file's
 * is a miss. */
static char *
memo_checksum (const char *key_text, const char *hex)
{
  g_autofree char *text = g_strconcat (key_text, "\n", hex, NULL);
  return g_compute_checksum_for_string (G_CHECKSUM_SHA256, text, -1);
}

/* A memo is "DIGEST CHECKSUM", 64 hex digits each. */
static gboolean
memo_is_valid (const char *memo, gsize length, const char *key_text)
{
  enum { HEX = AGC_SHA256_HEX - 1 };
  if (length != 2 * HEX + 1 || memo[HEX] != ' ' || !is_hex_digest (memo, HEX))
    return FALSE;
  g_autofree char *hex = g_strndup (memo, HEX);
  g_autofree char *sum = memo_checksum (key_text, hex);
  return memcmp (sum, memo + HEX + 1, HEX) == 0;
}

/* The memo file of a path in its present state, and the text its key is
 * the hash of (*key_text). */
static char *
memo_path (const char *path, const struct stat *st, char **key_text_out)
{
  g_autofree char *canonical = g_canonicalize_filename (path, NULL);
  g_autofree char *key_text = g_strdup_printf (
      HASH_MEMO_VERSION "\n%s\n%ju %ju %jd %jd.%09ld %jd.%09ld", canonical, (uintmax_t) st->st_dev,
      (uintmax_t) st->st_ino, (intmax_t) st->st_size, (intmax_t) st->st_mtim.tv_sec,
      (long) st->st_mtim.tv_nsec, (intmax_t) st->st_ctim.tv_sec, (long) st->st_ctim.tv_nsec);
  g_autofree char *key = g_compute_checksum_for_string (G_CHECKSUM_SHA256, key_text, -1);
  g_autofree char *cache = agc_cache_dir ();
  char shard[3] = { key[0], key[1], '\0' };
  *key_text_out = g_steal_pointer (&key_text);
  return g_build_filename (cache, "hashes", shard, key, NULL);
}

static gboolean
same_file_state (const struct stat *a, const struct stat *b)
{
  return a->st_dev == b->st_dev && a->st_ino == b->st_ino && a->st_size == b->st_size
         && a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec
         && a->st_ctim.tv_sec == b->st_ctim.tv_sec && a->st_ctim.tv_nsec == b->st_ctim.tv_nsec;
}

static gboolean
fail_read (GError **error, const char *path, int saved_errno)
{
  g_autofree char *shown = g_filename_display_name (path);
  g_set_error (error, AGC_ERROR, AGC_ERROR_IO, "%s: cannot read: %s", shown,
               g_strerror (saved_errno));
  return FALSE;
}

gboolean
agc_file_sha256 (char hex[AGC_SHA256_HEX], const char *path, GError **error)
{
  g_return_val_if_fail (hex != NULL && path != NULL, FALSE);
  hex[0] = '\0';
  struct stat before;
  int fd = agc_open_regular (path, &before, error);
  if (fd < 0)
    return FALSE;

  g_autofree char *key_text = NULL;
  g_autofree char *memo = memo_path (path, &before, &key_text);
  g_autofree char *remembered = NULL;
  gsize length = 0;
  if (g_file_get_contents (memo, &remembered, &length, NULL)
      && memo_is_valid (remembered, length, key_text))
    {
      close (fd);
      memcpy (hex, remembered, AGC_SHA256_HEX - 1);
      hex[AGC_SHA256_HEX - 1] = '\0';
      return TRUE;
    }

  GChecksum *checksum = g_checksum_new (G_CHECKSUM_SHA256);
  enum { CHUNK = 1 << 20 };
  guint8 *buffer = g_malloc (CHUNK);
  ssize_t n;
  while ((n = read (fd, buffer, CHUNK)) != 0)
    {
      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0)
        break;
      g_checksum_update (checksum, buffer, (gsize) n);
    }
  int saved = errno;
  g_free (buffer);
  struct stat after;
  gboolean unchanged = n == 0 && fstat (fd, &after) == 0 && same_file_state (&before, &after);
  close (fd);
  if (n != 0)
    {
      g_checksum_free (checksum);
      return fail_read (error, path, saved);
    }
  g_strlcpy (hex, g_checksum_get_string (checksum), AGC_SHA256_HEX);
  g_checksum_free (checksum);

  /* a file that changed while it was read gets no memo: the hash belongs to
   * neither state for sure */
  if (unchanged)
    {
      g_autofree char *folder = g_path_get_dirname (memo);
      g_autofree char *sum = memo_checksum (key_text, hex);
      g_autofree char *text = g_strconcat (hex, " ", sum, NULL);
      if (g_mkdir_with_parents (folder, 0755) == 0)
        agc_write_file_atomic (memo, text, strlen (text), FALSE, NULL);
    }
  return TRUE;
}

/* ---- embeddings ------------------------------------------------------------ */

typedef struct
{
  char *folder; /* embeddings/KEY */
  const AgcCachedEncoder *encoder;
  int dim;
  AgcTrainReportFunc report;
  gpointer user_data;
  gboolean store_failed; /* reported once: one broken cache folder is one problem */
} Cache;

static char *
entry_path (const Cache *cache, const char *hash)
{
  char shard[3] = { hash[0], hash[1], '\0' };
  g_autofree char *name = g_strconcat (hash, ".safetensors", NULL);
  return g_build_filename (cache->folder, shard, name, NULL);
}

/* What an entry's "agriclip.checksum" holds: the SHA-256 of its key (the
 * encoder's key and the image's content hash) and of its values, so that
 * values swapped, negated or taken from another image's entry are a miss. */
static char *
entry_checksum (const Cache *cache, const char *hash, const float *values)
{
  g_autoptr (GChecksum) sum = g_checksum_new (G_CHECKSUM_SHA256);
  const char *key = cache->encoder->key;
  g_checksum_update (sum, (const guchar *) key, (gssize) strlen (key) + 1); // with its NUL
  g_checksum_update (sum, (const guchar *) hash, (gssize) strlen (hash) + 1);
  g_checksum_update (sum, (const guchar *) values, (gssize) (sizeof (float) * cache->dim));
  return g_strdup (g_checksum_get_string (sum));
}

/* out[E] from the cache; FALSE for a miss, a broken or a mismatched entry. */
static gboolean
lookup (const Cache *cache, const char *hash, float *out)
{
  g_autofree char *path = entry_path (cache, hash);
  if (!g_file_test (path, G_FILE_TEST_IS_REGULAR))
    return FALSE;
  AgcSafetensors *file = agc_safetensors_open (path, NULL);
  if (file == NULL)
    return FALSE;
  const AgcTensorView *t = agc_safetensors_find (file, "embedding");
  GHashTable *meta = agc_safetensors_metadata (file);
  gboolean ok = t != NULL && t->dtype == AGC_DTYPE_F32 && t->n_dims == 1
                && t->shape[0] == cache->dim && meta != NULL
                && g_strcmp0 (g_hash_table_lookup (meta, "agriclip.model"), cache->encoder->key)
                       == 0
                && g_strcmp0 (g_hash_table_lookup (meta, "agriclip.content"), hash) == 0;
  if (ok)
    {
      memcpy (out, t->data, sizeof (float) * cache->dim);
      g_autofree char *checksum = entry_checksum (cache, hash, out);
      ok = g_strcmp0 (g_hash_table_lookup (meta, "agriclip.checksum"), checksum) == 0;
    }
  if (ok)
    {
      /* a torn entry (e.g. zeros after a crash) is not a unit vector, nor
       * anything else the encoders give */
      double norm2 = 0.0;
      for (int d = 0; d < cache->dim; d++)
        norm2 += (double) out[d] * out[d];
      ok = isfinite (norm2)
           && (cache->encoder->unit_norm ? fabs (norm2 - 1.0) < 1e-3 : norm2 > 0.0);
      if (!ok)
        memset (out, 0, sizeof (float) * cache->dim);
    }
  agc_safetensors_free (file);
  return ok;
}

static void
store (Cache *cache, const char *hash, const float *embedding)
{
  g_autofree char *path = entry_path (cache, hash);
  g_autofree char *folder = g_path_get_dirname (path);
  GError *error = NULL;
  if (g_mkdir_with_parents (folder, 0755) != 0)
    {
      int saved = errno;
      g_autofree char *shown = g_filename_display_name (folder);
      g_set_error (&error, AGC_ERROR, AGC_ERROR_IO, "%s: cannot create the cache folder: %s",
                   shown, g_strerror (saved));
    }
  else
    {
      int64_t shape[1] = { cache->dim };
      AgcTensorView t = { .name = "embedding", .dtype = AGC_DTYPE_F32, .n_dims = 1,
                          .data = (const guint8 *) embedding,
                          .n_bytes = sizeof (float) * cache->dim };
      memcpy (t.shape, shape, sizeof shape);
      g_autoptr (GHashTable) meta = g_hash_table_new (g_str_hash, g_str_equal);
      g_hash_table_insert (meta, "agriclip.model", (gpointer) cache->encoder->key);
      g_hash_table_insert (meta, "agriclip.content", (gpointer) hash);
      g_autofree char *checksum = entry_checksum (cache, hash, embedding);
      g_hash_table_insert (meta, "agriclip.checksum", checksum);
      /* not durable: losing a cache entry in a crash only costs time */
      agc_safetensors_write (path, &t, 1, meta, FALSE, &error);
    }
  if (error != NULL && !cache->store_failed && cache->report != NULL)
    {
      g_prefix_error (&error, "embedding cache (further failures not shown): ");
      cache->report (error, cache->user_data);
    }
  cache->store_failed |= error != NULL;
  g_clear_error (&error);
}

static void
report_skipped (const Cache *cache, GError *problem)
{
  if (cache->report != NULL)
    {
      GError *skipped = g_error_new (problem->domain, problem->code, "%s; skipped",
                                     problem->message);
      cache->report (skipped, cache->user_data);
      g_error_free (skipped);
    }
  g_error_free (problem);
}

/* Files encoded together. */
typedef struct
{
  int rows[EMBED_BATCH]; /* indices into files and out */
  gboolean cached[EMBED_BATCH]; /* encoded for the others' sake: its value is the cache's */
  int n;
  int end;           /* files[..end) are done with this batch */
  gboolean missing;  /* some file is not in the cache: the batch goes to the encoder */
} Batch;

/* Takes the batch's decoded files from the pipeline, encodes and stores
 * them; pixels[EMBED_BATCH, 3, S, S] and embeddings[EMBED_BATCH, E] are
 * scratch. */
static gboolean
embed_batch (float *out, gboolean *ok, char (*hashes)[AGC_SHA256_HEX], AgcEmbedCounts *counts,
             Cache *cache, const Batch *batch, AgcImagePipeline *pipeline, float *pixels,
             float *embeddings, GCancellable *cancellable, GError **error)
{
  const AgcCachedEncoder *encoder = cache->encoder;
  int size = encoder->image_size, dim = cache->dim;
  size_t image_len = (size_t) 3 * size * size;
  int loaded[EMBED_BATCH], n_loaded = 0;
  gboolean was_cached[EMBED_BATCH];
  for (int j = 0; j < batch->n; j++)
    {
      const AgcPipelineImage *decoded = agc_image_pipeline_next (pipeline);
      if (decoded->error == NULL)
        {
          memcpy (pixels + n_loaded * image_len, decoded->pixels, sizeof (float) * image_len);
          was_cached[n_loaded] = batch->cached[j];
          loaded[n_loaded++] = batch->rows[j];
        }
      else if (!batch->cached[j]) // a cached one's value stands (same bytes, same result)
        {
          counts->n_failed++;
          report_skipped (cache, g_error_copy (decoded->error));
        }
    }
  if (n_loaded > 0
      && !encoder->encode (embeddings, pixels, n_loaded, encoder->data, cancellable, error))
    return FALSE;
  for (int j = 0; j < n_loaded; j++)
    {
      int row = loaded[j];
      if (was_cached[j])
        continue;
      const float *embedding = embeddings + (size_t) j * dim;
      memcpy (out + (size_t) row * dim, embedding, sizeof (float) * dim);
      ok[row] = TRUE;
      counts->n_embedded++;
      store (cache, hashes[row], embedding);
    }
  return TRUE;
}

/* Hashes files[start, end) and looks them up: out, ok, counts and batch
 * filled for the files found. */
static void
look_up_batch (float *out, gboolean *ok, char (*hashes)[AGC_SHA256_HEX], AgcEmbedCounts *counts,
               Cache *cache, const char *const *files, int start, int end, Batch *batch)
{
  *batch = (Batch) { .end = end };
  for (int i = start; i < end; i++)
    {
      ok[i] = FALSE;
      GError *problem = NULL;
      if (!agc_file_sha256 (hashes[i], files[i], &problem))
        {
          counts->n_failed++;
          report_skipped (cache, problem);
          continue;
        }
      gboolean cached = lookup (cache, hashes[i], out + (size_t) i * cache->dim);
      if (cached)
        {
          ok[i] = TRUE;
          counts->n_cached++;
        }
      batch->missing |= !cached;
      batch->cached[batch->n] = cached;
      batch->rows[batch->n++] = i;
    }
}

static gboolean
model_preprocess (float *pixels, const AgcImage *image, gpointer model, GError **error)
{
  return agc_model_preprocess (model, image, pixels, error);
}

static AgcImage *
model_load (const char *path, gpointer model, GError **error)
{
  return agc_model_load_image (model, path, agc_model_get_fast_decode (model), error);
}

static gboolean
model_load_input (const char *path, float *pixels, int *width, int *height, gpointer model,
                  GError **error)
{
  return agc_model_load_input (model, path, agc_model_get_fast_decode (model), pixels, width,
                               height, error);
}

static gboolean
model_embed (float *out, const float *pixels, int n, gpointer model, GCancellable *cancellable,
             GError **error)
{
  return agc_model_embed_pixels (model, pixels, n, TRUE, out, cancellable, error);
}

char *
agc_model_cache_key (const AgcModel *model, const char *model_identity, const char *what)
{
  const char *digest = agc_model_adapter_digest (model);
  return g_strconcat (model_identity, what, digest != NULL ? "-adapter-" : "",
                      digest != NULL ? digest : "", agc_model_cache_variant (model), NULL);
}

gboolean
agc_embed_files_cached (float *out, gboolean *ok, char (*hashes)[AGC_SHA256_HEX],
                        AgcEmbedCounts *counts, AgcModel *model, const char *model_identity,
                        const char *const *files, int n_files, AgcTrainReportFunc report,
                        void (*progress) (int done, int total, gpointer user_data),
                        gpointer user_data, GCancellable *cancellable, GError **error)
{
  g_return_val_if_fail (model != NULL && model_identity != NULL, FALSE);
  // JPEGs decoded at a reduced scale give other embeddings: cached apart
  g_autofree char *base = agc_model_cache_key (model, model_identity, "");
  g_autofree char *key
    = g_strconcat (base, agc_model_get_fast_decode (model) ? "-fast-decode" : "", NULL);
  AgcCachedEncoder encoder = {
    .key = key,
    .dim = agc_model_embed_dim (model),
    .unit_norm = TRUE,
    .image_size = agc_model_image_size (model),
    .preprocess = model_preprocess,
    .encode = model_embed,
    .data = model,
    .load = model_load,
    .load_input = model_load_input,
  };
  return agc_encode_files_cached (out, ok, hashes, counts, &encoder, files, n_files, report,
                                  progress, user_data, cancellable, error);
}

gboolean
agc_encode_files_cached (float *out, gboolean *ok, char (*hashes)[AGC_SHA256_HEX],
                         AgcEmbedCounts *counts, const AgcCachedEncoder *encoder,
                         const char *const *files, int n_files, AgcTrainReportFunc report,
                         void (*progress) (int done, int total, gpointer user_data),
                         gpointer user_data, GCancellable *cancellable, GError **error)
{
  g_return_val_if_fail (out != NULL && ok != NULL && hashes != NULL && counts != NULL, FALSE);
  g_return_val_if_fail (encoder != NULL && encoder->key != NULL && encoder->dim > 0, FALSE);
  g_return_val_if_fail (files != NULL || n_files == 0, FALSE);

  int dim = encoder->dim, size = encoder->image_size;
  g_autofree char *root = agc_cache_dir ();
  Cache cache = {
    .folder = g_build_filename (root, "embeddings", encoder->key, NULL),
    .encoder = encoder,
    .dim = dim,
    .report = report,
    .user_data = user_data,
  };
  *counts = (AgcEmbedCounts){ 0 };
  memset (out, 0, sizeof (float) * (size_t) n_files * dim);
  AgcImageDecoder decoder = {
    .image_size = size, .load = encoder->load, .preprocess = encoder->preprocess,
    .load_input = encoder->load_input, .data = encoder->data,
  };
  float *pixels = g_new (float, (size_t) EMBED_BATCH * 3 * size * size);
  float *embeddings = g_new (float, (size_t) EMBED_BATCH * dim);
  Batch *batches = g_new (Batch, WINDOW_BATCHES);
  const char **to_decode = g_new (const char *, WINDOW_BATCHES * EMBED_BATCH);
  gboolean good = TRUE;
  for (int window = 0; good && window < n_files; window += WINDOW_BATCHES * EMBED_BATCH)
    {
      int n_batches = 0, n_decode = 0;
      for (int start = window; start < MIN (window + WINDOW_BATCHES * EMBED_BATCH, n_files);
           start += EMBED_BATCH)
        {
          if (agc_cancelled (cancellable, error, "cancelled while encoding the images"))
            {
              good = FALSE;
              break;
            }
          Batch *batch = &batches[n_batches++];
          look_up_batch (out, ok, hashes, counts, &cache, files, start,
                         MIN (start + EMBED_BATCH, n_files), batch);
          /* the whole batch (see EMBED_BATCH), or none of it, goes to the encoder */
          for (int j = 0; batch->missing && j < batch->n; j++)
            to_decode[n_decode++] = files[batch->rows[j]];
        }
      /* the files to encode, decoded on all cores ahead of the encoder */
      AgcImagePipeline *pipeline
        = good && n_decode > 0
            ? agc_image_pipeline_new_with_decoder (&decoder, to_decode, n_decode, NULL)
            : NULL;
      for (int k = 0; good && k < n_batches; k++)
        {
          if (batches[k].missing)
            good = !agc_cancelled (cancellable, error, "cancelled while encoding the images")
                   && embed_batch (out, ok, hashes, counts, &cache, &batches[k], pipeline,
                                   pixels, embeddings, cancellable, error);
          if (good && progress != NULL)
            progress (batches[k].end, n_files, user_data);
        }
      agc_image_pipeline_free (pipeline);
    }
  g_free (to_decode);
  g_free (batches);
  g_free (pixels);
  g_free (embeddings);
  g_free (cache.folder);
  return good;
}
