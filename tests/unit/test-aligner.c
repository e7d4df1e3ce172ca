/* test-aligner.c — the aligner's solver and its per-image cache.
 *
 * Ridge regression (aligner-fit.h) against a reference written here from
 * another formulation: the bias as an extra, unpenalised input column of
 * ones, the normal equations (Xaᵀ Xa + λ diag(1, …, 1, 0)) θ = Xaᵀ y solved
 * by Gaussian elimination with partial pivoting, in double.  The solver
 * centres instead and uses Cholesky, so agreement checks both.  Also: the
 * limits (λ → ∞ leaves only the mean; λ = 0 with fewer rows than inputs is
 * refused), and the cache of values that are not embeddings
 * (agc_encode_files_cached): kept although not unit vectors, read back
 * exactly, a torn entry computed again; its misses decoded by the image
 * pipeline (order, errors, progress, cancellation).  PyTorch checks the whole method
 * in tests/reference/test_aligner.py. */
#include "agriclip.h"
#include "train/aligner-fit.h"
#include "models/embedding-cache.h"
#include "formats/safetensors-write.h"
#include "unit-util.h"

#include <gdk-pixbuf/gdk-pixbuf.h>
#include <glib/gstdio.h>
#include <math.h>
#include <string.h>

/* A reproducible x[n, in], y[n, out]: y depends linearly on x, plus noise,
 * and x has a common offset so that centring matters. */
static void
make_problem (float *x, float *y, int n, int in, int out, guint32 seed)
{
  GRand *rand = g_rand_new_with_seed (seed);
  double *true_w = g_new (double, in * out);
  for (int k = 0; k < in * out; k++)
    true_w[k] = g_rand_double_range (rand, -1.0, 1.0);
  for (int i = 0; i < n; i++)
    for (int d = 0; d < in; d++)
      x[i * in + d] = (float) (3.0 + g_rand_double_range (rand, -1.0, 1.0));
  for (int i = 0; i < n; i++)
    for (int o = 0; o < out; o++)
      {
        double v = 0.5 * o + 0.1 * g_rand_double_range (rand, -1.0, 1.0);
        for (int d = 0; d < in; d++)
          v += true_w[o * in + d] * x[i * in + d];
        y[i * out + o] = (float) v;
      }
  g_free (true_w);
  g_rand_free (rand);
}

/* theta[in + 1, out] (last row: the bias) from the augmented normal equations. */
static void
reference_ridge (double *theta, const float *x, const float *y, int n, int in, int out,
                 double lambda)
{
  int m = in + 1, cols = m + out; // [A | B], A [m, m], B [m, out]
  double *ab = g_new0 (double, m * cols);
  for (int i = 0; i < n; i++)
    for (int r = 0; r < m; r++)
      {
        double xr = r < in ? x[i * in + r] : 1.0;
        for (int c = 0; c < m; c++)
          ab[r * cols + c] += xr * (c < in ? x[i * in + c] : 1.0);
        for (int o = 0; o < out; o++)
          ab[r * cols + m + o] += xr * y[i * out + o];
      }
  for (int d = 0; d < in; d++)
    ab[d * cols + d] += lambda;
  for (int k = 0; k < m; k++)
    {
      int pivot = k;
      for (int r = k + 1; r < m; r++)
        if (fabs (ab[r * cols + k]) > fabs (ab[pivot * cols + k]))
          pivot = r;
      for (int c = 0; c < cols; c++)
        {
          double t = ab[k * cols + c];
          ab[k * cols + c] = ab[pivot * cols + c];
          ab[pivot * cols + c] = t;
        }
      for (int r = 0; r < m; r++)
        if (r != k)
          {
            double f = ab[r * cols + k] / ab[k * cols + k];
            for (int c = k; c < cols; c++)
              ab[r * cols + c] -= f * ab[k * cols + c];
          }
    }
  for (int r = 0; r < m; r++)
    for (int o = 0; o < out; o++)
      theta[r * out + o] = ab[r * cols + m + o] / ab[r * cols + r];
  g_free (ab);
}

static void
check_against_reference (int n, int in, int out, double lambda, guint32 seed)
{
  float *x = g_new (float, n * in), *y = g_new (float, n * out);
  make_problem (x, y, n, in, out, seed);
  double *theta = g_new (double, (in + 1) * out);
  reference_ridge (theta, x, y, n, in, out, lambda);

  AgcRidge *ridge = agc_ridge_new (x, y, n, in, out);
  float *w = g_new (float, out * in), *b = g_new (float, out);
  GError *error = NULL;
  g_assert_true (agc_ridge_solve (w, b, ridge, lambda, &error));
  g_assert_no_error (error);
  double scale = 0.0, worst = 0.0;
  for (int o = 0; o < out; o++)
    {
      for (int d = 0; d < in; d++)
        {
          scale = fmax (scale, fabs (theta[d * out + o]));
          worst = fmax (worst, fabs (w[o * in + d] - theta[d * out + o]));
        }
      g_assert_cmpfloat_with_epsilon (b[o], theta[in * out + o],
                                      1e-5 * fmax (1.0, fabs (theta[in * out + o])));
    }
  g_assert_cmpfloat (worst, <=, 1e-5 * scale);
  g_test_message ("n %d, in %d, out %d, lambda %g: largest W error %.2e of %.2e", n, in, out,
                  lambda, worst, scale);

  // the trace: n times the summed variances of the inputs
  double trace = 0.0;
  for (int d = 0; d < in; d++)
    {
      double mean = 0.0;
      for (int i = 0; i < n; i++)
        mean += x[i * in + d] / n;
      for (int i = 0; i < n; i++)
        trace += (x[i * in + d] - mean) * (x[i * in + d] - mean);
    }
  g_assert_cmpfloat_with_epsilon (agc_ridge_trace (ridge), trace, 1e-9 * trace);
  g_free (b);
  g_free (w);
  agc_ridge_free (ridge);
  g_free (theta);
  g_free (y);
  g_free (x);
}

static void
test_ridge_matches_reference (void)
{
  check_against_reference (40, 6, 3, 0.5, 1);  // more rows than inputs
  check_against_reference (40, 6, 3, 1e-6, 2); // nearly least squares
  check_against_reference (9, 30, 4, 2.0, 3);  // fewer rows than inputs: λ decides
}

static void
test_ridge_limits (void)
{
  enum { n = 8, in = 12, out = 2 };
  float x[n * in], y[n * out], w[out * in], b[out];
  make_problem (x, y, n, in, out, 4);
  AgcRidge *ridge = agc_ridge_new (x, y, n, in, out);

  // λ → ∞: W → 0, and the unpenalised bias → the mean target
  g_assert_true (agc_ridge_solve (w, b, ridge, 1e12, NULL));
  for (int o = 0; o < out; o++)
    {
      double mean = 0.0;
      for (int i = 0; i < n; i++)
        mean += y[i * out + o] / n;
      g_assert_cmpfloat_with_epsilon (b[o], mean, 1e-4 * fabs (mean));
      for (int d = 0; d < in; d++)
        g_assert_cmpfloat (fabs (w[o * in + d]), <, 1e-6);
    }

  // λ = 0 with fewer rows than inputs: singular, refused
  GError *error = NULL;
  g_assert_false (agc_ridge_solve (w, b, ridge, 0.0, &error));
  g_assert_error (error, AGC_ERROR, AGC_ERROR_INPUT);
  g_assert_nonnull (strstr (error->message, "singular"));
  g_error_free (error);
  agc_ridge_free (ridge);
}

/* ---- the cache of other values --------------------------------------------- */

enum { VALUES = 3 };

typedef struct
{
  int calls; /* images encoded */
} Counter;

static gboolean
fake_preprocess (float *pixels, const AgcImage *image, gpointer data, GError **error)
{
  (void) data, (void) error;
  pixels[0] = image->pixels[0]; // the red of the first pixel
  pixels[1] = (float) image->width;
  pixels[2] = 0.0f;
  return TRUE;
}

/* Values far from unit length, one of them negative. */
static gboolean
fake_encode (float *out, const float *pixels, int n, gpointer data, GCancellable *cancellable,
             GError **error)
{
  (void) cancellable, (void) error;
  Counter *counter = data;
  for (int i = 0; i < n; i++)
    {
      out[i * VALUES + 0] = pixels[i * 3 + 0] * 10.0f;
      out[i * VALUES + 1] = pixels[i * 3 + 1];
      out[i * VALUES + 2] = -7.5f;
    }
  counter->calls += n;
  return TRUE;
}

static void
write_png (const char *path, int width, guint8 red)
{
  GdkPixbuf *pixbuf = gdk_pixbuf_new (GDK_COLORSPACE_RGB, FALSE, 8, width, 4);
  gdk_pixbuf_fill (pixbuf, ((guint32) red << 24) | 0x004000ffu);
  g_assert_true (gdk_pixbuf_save (pixbuf, path, "png", NULL, NULL));
  g_object_unref (pixbuf);
}

/* The process's cache folder (main: GLib reads XDG_CACHE_HOME once, so
 * every test shares it) and the temporary folder holding it. */
static char *cache, *cache_root;

static void
test_cache_other_values (void)
{
  g_autofree char *dir = g_dir_make_tmp ("agc-aligner-XXXXXX", NULL);
  g_assert_nonnull (dir);
  g_autofree char *a = g_build_filename (dir, "a.png", NULL);
  g_autofree char *b = g_build_filename (dir, "b.png", NULL);
  write_png (a, 5, 200);
  write_png (b, 7, 10);
  const char *files[2] = { a, b };

  Counter counter = { 0 };
  AgcCachedEncoder encoder = { .key = "test-key-features", .dim = VALUES, .unit_norm = FALSE,
                               .image_size = 1, .preprocess = fake_preprocess,
                               .encode = fake_encode, .data = &counter };
  float first[2 * VALUES], second[2 * VALUES];
  gboolean ok[2];
  char hashes[2][AGC_SHA256_HEX];
  AgcEmbedCounts counts;
  GError *error = NULL;
  g_assert_true (agc_encode_files_cached (first, ok, hashes, &counts, &encoder, files, 2, NULL,
                                          NULL, NULL, NULL, &error));
  g_assert_no_error (error);
  g_assert_cmpint (counter.calls, ==, 2);
  g_assert_cmpint (counts.n_embedded, ==, 2);
  g_assert_cmpfloat (first[0], ==, 2000.0f);
  g_assert_cmpfloat (first[VALUES + 1], ==, 7.0f);

  // again: every value from the cache, although none is a unit vector
  g_assert_true (agc_encode_files_cached (second, ok, hashes, &counts, &encoder, files, 2, NULL,
                                          NULL, NULL, NULL, &error));
  g_assert_cmpint (counter.calls, ==, 2);
  g_assert_cmpint (counts.n_cached, ==, 2);
  g_assert_cmpmem (first, sizeof first, second, sizeof second);

  // a torn entry (zeros) of b is computed again
  char shard[3] = { hashes[1][0], hashes[1][1], '\0' };
  g_autofree char *name = g_strconcat (hashes[1], ".safetensors", NULL);
  g_autofree char *entry
      = g_build_filename (cache, "agriclip", "embeddings", "test-key-features", shard, name, NULL);
  g_assert_true (g_file_test (entry, G_FILE_TEST_IS_REGULAR));
  float zeros[VALUES] = { 0 };
  AgcTensorView t = { .name = "embedding", .dtype = AGC_DTYPE_F32, .n_dims = 1,
                      .shape = { VALUES }, .data = (const guint8 *) zeros,
                      .n_bytes = sizeof zeros };
  g_autoptr (GHashTable) meta = g_hash_table_new (g_str_hash, g_str_equal);
  g_hash_table_insert (meta, "agriclip.model", "test-key-features");
  g_hash_table_insert (meta, "agriclip.content", hashes[1]);
  g_assert_true (agc_safetensors_write (entry, &t, 1, meta, FALSE, NULL));
  g_assert_true (agc_encode_files_cached (second, ok, hashes, &counts, &encoder, files, 2, NULL,
                                          NULL, NULL, NULL, &error));
  // (with a again: a batch with a miss is encoded whole, a's cached value is kept)
  g_assert_cmpint (counter.calls, ==, 4);
  g_assert_cmpint (counts.n_cached, ==, 1);
  g_assert_cmpmem (first, sizeof first, second, sizeof second);

  // another key is another folder: nothing found
  encoder.key = "test-key-other";
  g_assert_true (agc_encode_files_cached (second, ok, hashes, &counts, &encoder, files, 2, NULL,
                                          NULL, NULL, NULL, &error));
  g_assert_cmpint (counts.n_cached, ==, 0);

  remove_tree (dir);
}

/* The misses go through the decoding pipeline (image-pipeline.h): values
 * in file order whatever thread decoded which file, a file that cannot be
 * decoded reported by name, progress after every batch of 8, and a
 * cancellation seen between batches (only the batches before it encoded). */
typedef struct
{
  Counter counter;
  GPtrArray *problems; /* messages */
  GArray *done;        /* progress's done values */
  GCancellable *cancel_after_first;
} Watch;

static void
watch_report (const GError *problem, gpointer data)
{
  g_ptr_array_add (((Watch *) data)->problems, g_strdup (problem->message));
}

static void
watch_progress (int done, int total, gpointer data)
{
  Watch *watch = data;
  (void) total;
  g_array_append_val (watch->done, done);
  if (watch->cancel_after_first != NULL)
    g_cancellable_cancel (watch->cancel_after_first);
}

static void
test_cache_pipeline (void)
{
  g_autofree char *dir = g_dir_make_tmp ("agc-aligner-XXXXXX", NULL);
  g_assert_nonnull (dir);
  enum { N = 19, BROKEN = 5 };
  char *files[N];
  for (int i = 0; i < N; i++)
    {
      files[i] = g_strdup_printf ("%s/%02d.png", dir, i);
      if (i == BROKEN)
        g_assert_true (g_file_set_contents (files[i], "not a picture", -1, NULL));
      else
        write_png (files[i], i + 1, (guint8) (10 * i));
    }
  Watch watch = { .problems = g_ptr_array_new_with_free_func (g_free),
                  .done = g_array_new (FALSE, FALSE, sizeof (int)) };
  AgcCachedEncoder encoder = { .key = "test-key-pipeline", .dim = VALUES, .unit_norm = FALSE,
                               .image_size = 1, .preprocess = fake_preprocess,
                               .encode = fake_encode, .data = &watch.counter };
  float out[N * VALUES];
  gboolean ok[N];
  char hashes[N][AGC_SHA256_HEX];
  AgcEmbedCounts counts;
  GError *error = NULL;
  g_assert_true (agc_encode_files_cached (out, ok, hashes, &counts, &encoder,
                                          (const char *const *) files, N, watch_report,
                                          watch_progress, &watch, NULL, &error));
  g_assert_no_error (error);
  for (int i = 0; i < N; i++)
    {
      g_assert_cmpint (ok[i], ==, i != BROKEN);
      float red = i == BROKEN ? 0.0f : 100.0f * i, width = i == BROKEN ? 0.0f : i + 1.0f;
      g_assert_cmpfloat (out[i * VALUES + 0], ==, red);
      g_assert_cmpfloat (out[i * VALUES + 1], ==, width);
    }
  g_assert_cmpint (counts.n_embedded, ==, N - 1);
  g_assert_cmpint (counts.n_failed, ==, 1);
  g_assert_cmpuint (watch.problems->len, ==, 1);
  g_assert_nonnull (strstr (watch.problems->pdata[0], files[BROKEN]));
  g_assert_cmpuint (watch.done->len, ==, 3);
  g_assert_cmpint (g_array_index (watch.done, int, 0), ==, 8);
  g_assert_cmpint (g_array_index (watch.done, int, 1), ==, 16);
  g_assert_cmpint (g_array_index (watch.done, int, 2), ==, N);

  // another key (nothing cached), cancelled once the first batch is done
  encoder.key = "test-key-pipeline-cancelled";
  watch.counter.calls = 0;
  g_array_set_size (watch.done, 0);
  watch.cancel_after_first = g_cancellable_new ();
  g_assert_false (agc_encode_files_cached (out, ok, hashes, &counts, &encoder,
                                           (const char *const *) files, N, watch_report,
                                           watch_progress, &watch, watch.cancel_after_first,
                                           &error));
  g_assert_error (error, AGC_ERROR, AGC_ERROR_CANCELLED);
  g_clear_error (&error);
  g_assert_cmpint (watch.counter.calls, ==, 8 - 1); // the broken one is in the first batch
  g_assert_cmpuint (watch.done->len, ==, 1);

  g_object_unref (watch.cancel_after_first);
  g_ptr_array_free (watch.problems, TRUE);
  g_array_free (watch.done, TRUE);
  for (int i = 0; i < N; i++)
    g_free (files[i]);
  remove_tree (dir);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/aligner/ridge-matches-reference", test_ridge_matches_reference);
  g_test_add_func ("/aligner/ridge-limits", test_ridge_limits);
  g_test_add_func ("/aligner/cache-other-values", test_cache_other_values);
  g_test_add_func ("/aligner/cache-pipeline", test_cache_pipeline);
  cache_root = temp_cache_root_new (&cache, "agc-aligner-cache-XXXXXX");
  int status = g_test_run ();
  remove_tree (cache_root);
  g_free (cache_root);
  g_free (cache);
  return status;
}
