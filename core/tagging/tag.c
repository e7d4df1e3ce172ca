/* tag.c — agc_tag: every image of some folders through a classifier into a
 * run folder, resumable (agriclip.h, "tagging: running"). */
#include "tagging/tag-journal.h"
#include "tagging/tag-order.h"
#include "tagging/tag-results.h"

#include "formats/safetensors-write.h"

#include <errno.h>
#include <fcntl.h>
#include <glib/gstdio.h>
#include <string.h>
#include <unistd.h>

AgcTagOptions
agc_tag_default_options (void)
{
  return (AgcTagOptions) { .recursive = FALSE, .n_workers = 0 };
}

/* ---- the run's description ----------------------------------------------- */

static void
checksum_string (GChecksum *sum, const char *s)
{
  g_checksum_update (sum, (const guchar *) s, strlen (s) + 1); /* with the NUL: unambiguous */
}

/* Everything the classifier is made of besides the model's weights. */
static char *
classes_sha256 (const AgcLabelSet *labels, const AgcAdapter *adapter)
{
  GChecksum *sum = g_checksum_new (G_CHECKSUM_SHA256);
  if (labels)
    for (int c = 0; c < agc_label_set_n_classes (labels); c++)
      {
        checksum_string (sum, agc_label_set_class_name (labels, c));
        for (const char *const *p = agc_label_set_class_prompts (labels, c); *p; p++)
          checksum_string (sum, *p);
      }
  else
    {
      checksum_string (sum, agc_adapter_method (adapter));
      for (int c = 0; c < agc_adapter_n_classes (adapter); c++)
        checksum_string (sum, agc_adapter_class_name (adapter, c));
      for (int t = 0; t < agc_adapter_n_tensors (adapter); t++)
        {
          const char *name;
          int n_dims;
          int64_t shape[8];
          const float *data = agc_adapter_tensor (adapter, t, &name, &n_dims, shape);
          gsize n = 1;
          for (int d = 0; d < n_dims; d++)
            n *= (gsize) shape[d];
          checksum_string (sum, name);
          g_checksum_update (sum, (const guchar *) shape, sizeof (int64_t) * n_dims);
          g_checksum_update (sum, (const guchar *) data, n * sizeof (float));
        }
    }
  char *hex = g_strdup (g_checksum_get_string (sum));
  g_checksum_free (sum);
  return hex;
}

AgcTagRun *
agc_tag_run_new (const AgcModel *model, const char *model_name, const AgcLabelSet *labels,
                 const AgcAdapter *adapter, const char *label_set_name, GError **error)
{
  g_return_val_if_fail ((labels == NULL) != (adapter == NULL), NULL);
  char *identity = agc_model_identity (model, error);
  if (!identity)
    return NULL;
  AgcTagRun *run = g_new0 (AgcTagRun, 1);
  run->model = g_strdup (model_name);
  run->model_identity = identity;
  run->label_set = g_strdup (label_set_name);
  run->classes_sha256 = classes_sha256 (labels, adapter);
  run->n_classes = labels ? agc_label_set_n_classes (labels) : agc_adapter_n_classes (adapter);
  run->labels = g_new0 (char *, run->n_classes + 1);
  run->displays = g_new0 (char *, run->n_classes + 1);
  for (int c = 0; c < run->n_classes; c++)
    {
      run->labels[c] = g_strdup (labels ? agc_label_set_class_name (labels, c)
                                        : agc_adapter_class_name (adapter, c));
      run->displays[c] = g_strdup (labels ? agc_label_set_class_display_name (labels, c)
                                          : agc_adapter_class_display_name (adapter, c));
    }
  run->top = 5;
  run->review_below = -1;
  run->int8 = agc_model_get_int8 (model);
  return run;
}

/* ---- the images ------------------------------------------------------------ */

static int
add_source (AgcTagRun *run, GHashTable *index, const char *folder)
{
  gpointer found;
  if (g_hash_table_lookup_extended (index, folder, NULL, &found))
    return GPOINTER_TO_INT (found);
  run->sources = g_renew (char *, run->sources, run->n_sources + 2);
  run->sources[run->n_sources] = g_strdup (folder);
  run->sources[run->n_sources + 1] = NULL;
  g_hash_table_insert (index, run->sources[run->n_sources], GINT_TO_POINTER (run->n_sources));
  return run->n_sources++;
}

/* The run's images, in order, without duplicates; sets run->sources. */
static GPtrArray *
collect_images (AgcTagRun *run, const char *const *paths, int n_paths, gboolean recursive,
                AgcReportFunc report, gpointer user_data, int *problems)
{
  GPtrArray *images = g_ptr_array_new_with_free_func ((GDestroyNotify) agc_tag_image_free);
  g_autoptr (GHashTable) index = g_hash_table_new (g_str_hash, g_str_equal);
  for (int i = 0; i < run->n_sources; i++)
    g_free (run->sources[i]);
  g_clear_pointer (&run->sources, g_free);
  run->n_sources = 0;
  for (int i = 0; i < n_paths; i++)
    {
      g_autofree char *absolute = g_canonicalize_filename (paths[i], NULL);
      gboolean folder = g_file_test (absolute, G_FILE_TEST_IS_DIR);
      g_autofree char *base = folder ? g_strdup (absolute) : g_path_get_dirname (absolute);
      int source = add_source (run, index, base);
      g_autoptr (GPtrArray) files = g_ptr_array_new_with_free_func (g_free);
      const char *one = absolute;
      *problems += agc_image_collect (&one, 1, recursive, files, report, user_data);
      size_t prefix = strlen (base) + (g_str_has_suffix (base, G_DIR_SEPARATOR_S) ? 0 : 1);
      for (guint f = 0; f < files->len; f++)
        {
          AgcTagImage *image = g_new0 (AgcTagImage, 1);
          image->source = source;
          image->path = g_strdup (files->pdata[f]);
          image->relative = g_strdup (image->path + prefix);
          g_ptr_array_add (images, image);
        }
    }
  g_ptr_array_sort (images, agc_tag_image_compare);
  /* the same file named twice (a folder and a file in it) is tagged once */
  for (guint i = 1; i < images->len;)
    if (agc_tag_image_compare (&images->pdata[i - 1], &images->pdata[i]) == 0)
      g_ptr_array_remove_index (images, i);
    else
      i++;
  return images;
}

/* ---- the run folder ------------------------------------------------------------ */

/* What differs between an existing run and this one, or NULL. */
static const char *
difference (const AgcTagRun *old, const AgcTagRun *new)
{
  if (g_strcmp0 (old->model_identity, new->model_identity) != 0)
    return "another model";
  if (g_strcmp0 (old->classes_sha256, new->classes_sha256) != 0
      || old->n_classes != new->n_classes)
    return "another label set";
  for (int c = 0; c < old->n_classes; c++)
    if (strcmp (old->labels[c], new->labels[c]) != 0
        || strcmp (old->displays[c], new->displays[c]) != 0)
      return "another label set";
  if (old->top != new->top)
    return "another --top";
  if (old->review_below != new->review_below)
    return "another --review-below";
  if (old->tile != new->tile || old->stride != new->stride)
    return "other --regions";
  /* the pixels, hence the labels, differ between the two */
  if (old->fast_decode != new->fast_decode)
    return old->fast_decode ? "--fast-decode" : "the exact decode (no --fast-decode)";
  /* int8 weights move the probabilities too */
  if (old->int8 != new->int8)
    return old->int8 ? "--int8" : "float32 weights (no --int8)";
  if (old->shard_index != new->shard_index || old->shard_count != new->shard_count)
    return "another --shard";
  if (old->n_sources != new->n_sources)
    return "other sources";
  for (int i = 0; i < old->n_sources; i++)
    if (strcmp (old->sources[i], new->sources[i]) != 0)
      return "other sources";
  return NULL;
}

/* Creates run_dir with run.json, or checks that it holds a run of the same
 * description. */
static gboolean
open_run_folder (const char *run_dir, const AgcTagRun *run, GError **error)
{
  g_autofree char *shown = g_filename_display_name (run_dir);
  g_autofree char *run_json = g_build_filename (run_dir, AGC_TAG_RUN_FILE, NULL);
  if (g_mkdir_with_parents (run_dir, 0755) != 0)
    {
      g_set_error (error, AGC_ERROR, AGC_ERROR_IO, "%s: cannot create the folder: %s", shown,
                   g_strerror (errno));
      return FALSE;
    }
  if (g_file_test (run_json, G_FILE_TEST_EXISTS))
    {
      g_autoptr (AgcTagRun) old = agc_tag_run_load (run_dir, error);
      if (!old)
        return FALSE;
      const char *what = difference (old, run);
      if (what)
        {
          g_set_error (error, AGC_ERROR, AGC_ERROR_INPUT,
                       "%s: holds a run made with %s; give another --out folder (or that "
                       "run's command, to resume it)", shown, what);
          return FALSE;
        }
      return TRUE;
    }
  /* a new run: only into an empty folder, so nothing of the user's is mixed in
   * (a run killed while writing run.json leaves only its temporary file) */
  agc_remove_stale_temporaries (run_json);
  GDir *dir = g_dir_open (run_dir, 0, NULL);
  gboolean empty = dir && g_dir_read_name (dir) == NULL;
  if (dir)
    g_dir_close (dir);
  if (!empty)
    {
      g_set_error (error, AGC_ERROR, AGC_ERROR_INPUT,
                   "%s: is not empty and holds no run (run.json): give a new --out folder",
                   shown);
      return FALSE;
    }
  g_autofree char *text = agc_tag_run_to_json (run);
  return agc_write_file_atomic (run_json, text, strlen (text), TRUE, error);
}

/* ---- tagging ------------------------------------------------------------------ */

typedef struct
{
  AgcModel *model;
  const AgcClassifier *classifier;
  const AgcTagRun *run;
  int n_classes, dim, image_floats;
  float *batch_pixels; /* [AGC_TAG_BATCH, 3, S, S] */
  float *embeddings;   /* [AGC_TAG_BATCH, E] */
  int *top;            /* [C] */
} Tagger;

/* probs[n, C] of n <= AGC_TAG_BATCH rows of pixels, run as a full batch. */
static gboolean
classify_rows (Tagger *t, const float *pixels, int n, float *probs, GCancellable *cancellable,
               GError **error)
{
  if (pixels != t->batch_pixels)
    memcpy (t->batch_pixels, pixels, (gsize) n * t->image_floats * sizeof (float));
  memset (t->batch_pixels + (gsize) n * t->image_floats, 0,
          (gsize) (AGC_TAG_BATCH - n) * t->image_floats * sizeof (float));
  if (!agc_model_embed_pixels (t->model, t->batch_pixels, AGC_TAG_BATCH, TRUE, t->embeddings,
                               cancellable, error))
    return FALSE;
  for (int j = 0; j < n; j++)
    agc_classifier_probabilities (t->classifier, t->embeddings + (gsize) j * t->dim,
                                  probs + (gsize) j * t->n_classes);
  return TRUE;
}

/* One image's tiles of agc_tile_grid (regions), preprocessed on the
 * decoding thread (the pipeline's extra work; it was tag-pipeline.c's). */
typedef struct
{
  int n_tiles;
  AgcRect *tiles;     /* [n_tiles] */
  float *tile_pixels; /* [n_tiles, 3, S, S] */
} Tiles;

static void
tiles_free (gpointer data)
{
  Tiles *d = data;
  g_free (d->tiles);
  g_free (d->tile_pixels);
  g_free (d);
}

static gboolean
make_tiles (const AgcImage *image, gpointer *extra, gpointer user_data, GError **error)
{
  const Tagger *t = user_data;
  Tiles *d = g_new0 (Tiles, 1);
  *extra = d;
  g_autoptr (GArray) grid = agc_tile_grid (image->width, image->height, t->run->tile,
                                           t->run->stride);
  d->n_tiles = (int) grid->len;
  d->tiles = g_memdup2 (grid->data, grid->len * sizeof (AgcRect));
  d->tile_pixels = g_new (float, d->n_tiles * t->image_floats);
  for (int i = 0; i < d->n_tiles; i++)
    {
      AgcImage *crop = agc_image_crop (image, &d->tiles[i]);
      gboolean ok = agc_model_preprocess (t->model, crop, d->tile_pixels + i * t->image_floats,
                                          error);
      agc_image_free (crop);
      if (!ok)
        return FALSE;
    }
  return TRUE;
}

/* The boxes of one image's tiles: the top class of each tile at or above
 * AGC_TAG_BOX_THRESHOLD, then non-maximum suppression. */
static gboolean
find_boxes (Tagger *t, const Tiles *d, AgcTagResult *result, GCancellable *cancellable,
            GError **error)
{
  result->has_boxes = TRUE;
  result->boxes = g_new0 (AgcTagBox, MAX (1, d->n_tiles));
  g_autofree float *probs = g_new (float, (gsize) AGC_TAG_BATCH * t->n_classes);
  for (int start = 0; start < d->n_tiles; start += AGC_TAG_BATCH)
    {
      int n = MIN (AGC_TAG_BATCH, d->n_tiles - start);
      if (!classify_rows (t, d->tile_pixels + (gsize) start * t->image_floats, n, probs,
                          cancellable, error))
        return FALSE;
      for (int j = 0; j < n; j++)
        {
          int best;
          agc_top_k (probs + (gsize) j * t->n_classes, t->n_classes, 1, &best);
          float p = probs[(gsize) j * t->n_classes + best];
          if (p < AGC_TAG_BOX_THRESHOLD)
            continue;
          const AgcRect *r = &d->tiles[start + j];
          result->boxes[result->n_boxes++] = (AgcTagBox) { r->x, r->y, r->width, r->height,
                                                           g_strdup (t->run->labels[best]), p };
        }
    }
  result->n_boxes = agc_boxes_suppress (result->boxes, result->n_boxes, AGC_TAG_BOX_MAX_IOU);
  return TRUE;
}

typedef struct
{
  const char *run_dir;
  int fd;                 /* results.jsonl, appending */
  gint64 bytes, images;   /* committed */
} Writer;

static gboolean
write_failed (const Writer *w, const char *what, GError **error)
{
  g_autofree char *path = g_build_filename (w->run_dir, AGC_TAG_RESULTS_FILE, NULL);
  g_autofree char *shown = g_filename_display_name (path);
  g_set_error (error, AGC_ERROR, AGC_ERROR_IO, "%s: %s: %s", shown, what, g_strerror (errno));
  return FALSE;
}

/* Appends lines, flushes them to disk, then journals the new length: a
 * kill before the journal line leaves bytes that resuming cuts off. */
static gboolean
commit (Writer *w, const GString *lines, int n_lines, GError **error)
{
  if (n_lines == 0)
    return TRUE;
  for (gsize written = 0; written < lines->len;)
    {
      ssize_t n = write (w->fd, lines->str + written, lines->len - written);
      if (n < 0 && errno == EINTR)
        continue;
      if (n <= 0)
        return write_failed (w, "cannot write", error);
      written += (gsize) n;
    }
  if (fdatasync (w->fd) != 0)
    return write_failed (w, "cannot flush", error);
  w->bytes += (gint64) lines->len;
  w->images += n_lines;
  g_autofree char *line = g_strdup_printf ("committed %" G_GINT64_FORMAT " %" G_GINT64_FORMAT
                                           "\n", w->bytes, w->images);
  return agc_tag_journal_append (w->run_dir, line, error);
}

/* An image waiting in the batch for its whole-image labels. */
typedef struct
{
  const AgcTagImage *image;
  AgcTagResult result; /* boxes filled already */
} Pending;

static gboolean
finish_batch (Tagger *t, Writer *w, Pending *pending, int n, GCancellable *cancellable,
              GError **error)
{
  if (n == 0)
    return TRUE;
  g_autofree float *probs = g_new (float, (gsize) AGC_TAG_BATCH * t->n_classes);
  if (!classify_rows (t, t->batch_pixels, n, probs, cancellable, error))
    {
      for (int j = 0; j < n; j++)
        {
          pending[j].result.image = NULL; /* borrowed from the image */
          agc_tag_result_clear (&pending[j].result);
        }
      return FALSE;
    }
  g_autoptr (GString) lines = g_string_new (NULL);
  for (int j = 0; j < n; j++)
    {
      AgcTagResult *r = &pending[j].result;
      const float *p = probs + (gsize) j * t->n_classes;
      r->labels = g_new0 (AgcTagLabel, t->n_classes);
      r->n_labels = agc_top_k (p, t->n_classes, t->run->top, t->top);
      for (int k = 0; k < r->n_labels; k++)
        r->labels[k] = (AgcTagLabel) { t->run->labels[t->top[k]], p[t->top[k]] };
      r->review = t->run->review_below >= 0 && r->labels[0].p < t->run->review_below;
      g_autofree char *line = agc_tag_result_to_json (r);
      g_string_append (lines, line);
      g_string_append_c (lines, '\n');
      for (int k = 0; k < r->n_labels; k++)
        r->labels[k].label = NULL; /* borrowed from the run */
      r->image = NULL;             /* borrowed from the image */
      agc_tag_result_clear (r);
    }
  return commit (w, lines, n, error);
}

typedef struct
{
  AgcTagProgress progress;
  gint64 start_us;
  const AgcTagOptions *options;
} Progress;

static void
report_progress (Progress *p, int done_now)
{
  p->progress.done += done_now;
  double seconds = (g_get_monotonic_time () - p->start_us) / 1e6;
  int tagged_here = p->progress.done - p->progress.resumed;
  p->progress.images_per_second = seconds > 0 ? tagged_here / seconds : 0;
  int left = p->progress.total - p->progress.done - p->progress.skipped;
  p->progress.eta_seconds = p->progress.images_per_second > 0
                              ? MAX (0, left) / p->progress.images_per_second
                              : -1;
  if (p->options->progress)
    p->options->progress (&p->progress, p->options->user_data);
}

/* The images of todo through the model, results appended in order. */
static gboolean
tag_images (Tagger *t, Writer *w, GPtrArray *todo, Progress *progress, int n_workers,
            GCancellable *cancellable, GError **error)
{
  const AgcTagRun *run = t->run;
  /* regions hold every tile of an image: fewer images ahead */
  int ahead = run->tile > 0 ? 2 * n_workers + 2 : 4 * AGC_TAG_BATCH;
  g_autofree const char **paths = g_new (const char *, MAX (1, todo->len));
  for (guint i = 0; i < todo->len; i++)
    paths[i] = ((AgcTagImage *) todo->pdata[i])->path;
  AgcImagePipelineOptions options = { .n_workers = n_workers, .ahead = ahead,
                                      .fast_decode = run->fast_decode,
                                      .extra = run->tile > 0 ? make_tiles : NULL,
                                      .extra_free = tiles_free, .user_data = t };
  AgcImagePipeline *pipeline = agc_image_pipeline_new (t->model, paths, (int) todo->len,
                                                       &options);
  Pending pending[AGC_TAG_BATCH];
  int n_pending = 0;
  gboolean ok = TRUE;
  for (guint i = 0; ok && i < todo->len; i++)
    {
      const AgcPipelineImage *d = agc_image_pipeline_next (pipeline);
      const AgcTagImage *image = todo->pdata[i];
      if (d->error)
        {
          if (progress->options->report)
            progress->options->report (d->error, progress->options->user_data);
          progress->progress.skipped++;
          continue;
        }
      Pending *p = &pending[n_pending];
      *p = (Pending) { image, { .image = image->relative, .source = image->source,
                                .width = d->width, .height = d->height } };
      memcpy (t->batch_pixels + (gsize) n_pending * t->image_floats, d->pixels,
              (gsize) t->image_floats * sizeof (float));
      n_pending++;
      if (run->tile > 0)
        {
          /* the tiles go through the batch buffer: keep the whole images aside */
          g_autofree float *saved = g_memdup2 (t->batch_pixels,
                                               (gsize) n_pending * t->image_floats * sizeof (float));
          ok = find_boxes (t, d->extra, &p->result, cancellable, error);
          memcpy (t->batch_pixels, saved, (gsize) n_pending * t->image_floats * sizeof (float));
        }
      if (ok && (n_pending == AGC_TAG_BATCH || i + 1 == todo->len))
        {
          ok = finish_batch (t, w, pending, n_pending, cancellable, error);
          report_progress (progress, n_pending);
          n_pending = 0;
        }
    }
  if (ok && n_pending > 0) /* the last images failed after some were pending */
    {
      ok = finish_batch (t, w, pending, n_pending, cancellable, error);
      report_progress (progress, n_pending);
      n_pending = 0;
    }
  for (int j = 0; j < n_pending; j++)
    {
      pending[j].result.image = NULL;
      agc_tag_result_clear (&pending[j].result);
    }
  agc_image_pipeline_free (pipeline);
  return ok;
}

/* "SOURCE/RELATIVE" of the results already in results.jsonl */
static GHashTable *
done_images (const char *run_dir, GError **error)
{
  GHashTable *done = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  g_autofree char *path = g_build_filename (run_dir, AGC_TAG_RESULTS_FILE, NULL);
  if (!g_file_test (path, G_FILE_TEST_EXISTS)) /* a new run */
    return done;
  g_autoptr (GPtrArray) results = agc_tag_results_load (run_dir, error);
  if (!results)
    return (g_hash_table_unref (done), NULL);
  for (guint i = 0; i < results->len; i++)
    {
      const AgcTagResult *r = results->pdata[i];
      g_hash_table_add (done, g_strdup_printf ("%d/%s", r->source, r->image));
    }
  return done;
}

int
agc_tag (AgcModel *model, const AgcClassifier *classifier, AgcTagRun *run,
         const char *const *sources, int n_sources, const char *run_dir,
         const AgcTagOptions *options, GCancellable *cancellable, GError **error)
{
  g_return_val_if_fail (agc_classifier_n_classes (classifier) == run->n_classes, -1);
  AgcTagOptions defaults = agc_tag_default_options ();
  options = options ? options : &defaults;
  run->int8 = agc_model_get_int8 (model); // what runs, whatever the caller set
  int problems = 0;
  g_autoptr (GPtrArray) images = collect_images (run, sources, n_sources, options->recursive,
                                                 options->report, options->user_data, &problems);
  for (guint i = 0; run->shard_count > 0 && i < images->len;)
    {
      const AgcTagImage *image = images->pdata[i];
      if (agc_tag_shard_of (image->relative, run->shard_count) != run->shard_index)
        g_ptr_array_remove_index (images, i); /* keeps the order */
      else
        i++;
    }

  AgcTagJournalState journal;
  if (!open_run_folder (run_dir, run, error) || !agc_tag_journal_recover (run_dir, &journal, error))
    return -1;
  g_autoptr (GHashTable) done = done_images (run_dir, error);
  if (!done)
    return -1;
  g_autoptr (GPtrArray) todo = g_ptr_array_new ();
  for (guint i = 0; i < images->len; i++)
    {
      const AgcTagImage *image = images->pdata[i];
      g_autofree char *key = g_strdup_printf ("%d/%s", image->source, image->relative);
      if (!g_hash_table_contains (done, key))
        g_ptr_array_add (todo, images->pdata[i]);
    }

  g_autofree char *results_path = g_build_filename (run_dir, AGC_TAG_RESULTS_FILE, NULL);
  Writer w = { run_dir, g_open (results_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644),
               journal.committed_bytes, journal.committed_images };
  if (w.fd < 0)
    {
      g_autofree char *shown = g_filename_display_name (results_path);
      g_set_error (error, AGC_ERROR, AGC_ERROR_IO, "%s: cannot open: %s", shown,
                   g_strerror (errno));
      return -1;
    }
  int size = agc_model_image_size (model);
  Tagger t = { .model = model, .classifier = classifier, .run = run,
               .n_classes = run->n_classes, .dim = agc_model_embed_dim (model),
               .image_floats = 3 * size * size };
  t.batch_pixels = g_new (float, (gsize) AGC_TAG_BATCH * t.image_floats);
  t.embeddings = g_new (float, (gsize) AGC_TAG_BATCH * t.dim);
  t.top = g_new (int, t.n_classes);
  int n_workers = options->n_workers > 0 ? options->n_workers : agc_get_threads ();
  Progress progress = { .progress = { .done = (int) (images->len - todo->len),
                                      .total = (int) images->len,
                                      .resumed = (int) (images->len - todo->len),
                                      .eta_seconds = -1 },
                        .start_us = g_get_monotonic_time (), .options = options };
  gboolean ok = tag_images (&t, &w, todo, &progress, n_workers, cancellable, error);
  close (w.fd);
  g_free (t.batch_pixels);
  g_free (t.embeddings);
  g_free (t.top);
  problems += progress.progress.skipped;
  if (ok)
    {
      g_autofree char *line = g_strdup_printf ("complete %d\n", problems);
      ok = agc_tag_journal_append (run_dir, line, error);
    }
  return ok ? problems : -1;
}
