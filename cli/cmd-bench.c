/* cmd-bench.c — `agriclip bench`: times image and text encoding in-process,
 * and the same encoders' matrix products alone, on our kernels and on
 * OpenBLAS (the floors they allow).
 * With --resnet instead of --model it times a bare ResNet-50 backbone
 * (torchvision weights, 224 x 224 pixels -> 2048 features), the image
 * encoder of AgriCLIP models, to put it beside torchvision's: on our
 * kernels (image), and on OpenBLAS (image_blas) unless --no-floor.
 *
 * --fma-peak first measures the FMA throughput this machine allows
 * (fma-peak.h: AVX2 and AVX-512, one thread and --threads), the ceiling the
 * GEMM floors are read against; alone (no --model) it is all that runs.
 *
 * --int8 times the image encoder in int8 mode (agc_model_set_int8, or
 * agc_resnet_set_options): its results are named image_int8 and
 * image_int8_floor (the GEMMs alone; not for a ResNet), and --dump writes
 * the int8 embeddings.
 *
 * Prints one JSON object per measurement, so that tests/bench/bench.py can
 * put the project beside PyTorch and ONNX Runtime; --table prints the same
 * for people.  Times are medians over --iterations calls after one warm-up
 * call. */
#include "cli.h"
#include "fma-peak.h"

#include <glib/gstdio.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

extern const CliCommand cli_bench_command;

// OpenBLAS extension, weak so that another CBLAS still links
extern char *openblas_get_corename (void) __attribute__ ((weak));

#define RESNET_IMAGE_SIZE 224

typedef struct
{
  AgcModel *model;     // or
  AgcResNet *resnet;   // with --resnet
  const float *pixels; // [n, 3, S, S]
  const char *const *texts;
  int n;
  float *out; // [n, E]
} Work;

typedef gboolean (*WorkFn) (Work *work, GError **error);

static gboolean
run_images (Work *w, GError **error)
{
  return agc_model_embed_pixels (w->model, w->pixels, w->n, TRUE, w->out, NULL, error);
}

static gboolean
run_resnet (Work *w, GError **error)
{
  return agc_resnet_forward (w->resnet, w->pixels, w->n, RESNET_IMAGE_SIZE, RESNET_IMAGE_SIZE,
                             w->out, error);
}

static gboolean
run_texts (Work *w, GError **error)
{
  return agc_model_embed_texts (w->model, w->texts, w->n, TRUE, w->out, NULL, error);
}

static int
compare_doubles (const void *a, const void *b)
{
  double x = *(const double *) a, y = *(const double *) b;
  return (x > y) - (x < y);
}

// median seconds of iterations calls, after one warm-up call
static gboolean
time_work (double *median, double *times, WorkFn fn, Work *work, int iterations, GError **error)
{
  if (!fn (work, error))
    return FALSE;
  for (int i = 0; i < iterations; i++)
    {
      gint64 start = g_get_monotonic_time ();
      if (!fn (work, error))
        return FALSE;
      times[i] = (g_get_monotonic_time () - start) * 1e-6;
    }
  double *sorted = g_memdup2 (times, sizeof (double) * iterations);
  qsort (sorted, iterations, sizeof (double), compare_doubles);
  *median = iterations % 2 ? sorted[iterations / 2]
                           : 0.5 * (sorted[iterations / 2 - 1] + sorted[iterations / 2]);
  g_free (sorted);
  return TRUE;
}

// peak resident memory of this process so far, in MB (Linux), or -1
static double
peak_rss_mb (void)
{
  g_autofree char *status = NULL;
  if (!g_file_get_contents ("/proc/self/status", &status, NULL, NULL))
    return -1.0;
  const char *line = strstr (status, "VmHWM:");
  return line != NULL ? g_ascii_strtod (line + 6, NULL) / 1024.0 : -1.0;
}

static void
print_result (gboolean table, const char *what, int n, double median, const double *times,
              int iterations)
{
  if (table)
    {
      printf ("%-16s n=%-4d %10.2f ms per call %10.2f ms per item\n", what, n, median * 1e3,
              median * 1e3 / n);
      return;
    }
  printf ("{\"what\": \"%s\", \"n\": %d, \"median_s\": %.6f, \"times_s\": [", what, n, median);
  for (int i = 0; i < iterations; i++)
    printf (i ? ", %.6f" : "%.6f", times[i]);
  printf ("]}\n");
}

// embeddings as raw float32, for comparing with another engine
static gboolean
dump (const char *path, const float *data, size_t n, GError **error)
{
  // replaces only an earlier dump (a whole number of float32), never another file
  GStatBuf st;
  if (g_stat (path, &st) == 0 && (!S_ISREG (st.st_mode) || st.st_size % sizeof (float) != 0))
    {
      g_autofree char *shown = g_filename_display_name (path);
      g_set_error (error, AGC_ERROR, AGC_ERROR_INPUT,
                   _("%s: exists and is not an earlier --dump output: not overwritten"), shown);
      return FALSE;
    }
  return g_file_set_contents (path, (const char *) data, (gssize) (n * sizeof (float)), error);
}

// one line per instruction set and thread count: the best and the median
// of the repeats
static void
print_fma_peaks (gboolean table)
{
  static const struct
  {
    FmaPeakIsa isa;
    const char *name;
  } isas[] = { { FMA_PEAK_AVX2, "avx2" }, { FMA_PEAK_AVX512, "avx512" } };
  int counts[] = { 1, agc_get_threads () };
  for (size_t i = 0; i < G_N_ELEMENTS (isas); i++)
    for (int c = 0; c < (counts[1] > 1 ? 2 : 1) && fma_peak_supported (isas[i].isa); c++)
      {
        double median, best = fma_peak_gflops (isas[i].isa, counts[c], 7, 0.1, &median);
        if (table)
          printf ("FMA peak %-6s %d thread%s %8.1f GFLOP/s (median %.1f)\n", isas[i].name,
                  counts[c], counts[c] > 1 ? "s" : "", best, median);
        else
          printf ("{\"what\": \"fma_peak\", \"isa\": \"%s\", \"threads\": %d, "
                  "\"gflops\": %.2f, \"median_gflops\": %.2f}\n",
                  isas[i].name, counts[c], best, median);
      }
  fflush (stdout);
}

static float *
read_pixels (const char *path, size_t image_len, int *n_images, GError **error)
{
  char *data;
  gsize size;
  if (!g_file_get_contents (path, &data, &size, error))
    return NULL;
  if (size == 0 || size % (image_len * sizeof (float)) != 0)
    {
      g_set_error (error, AGC_ERROR, AGC_ERROR_INPUT,
                   "%s: %zu bytes is not a whole number of float32 images of %zu values", path,
                   (size_t) size, image_len);
      g_free (data);
      return NULL;
    }
  *n_images = (int) (size / (image_len * sizeof (float)));
  return (float *) data;
}

// a fixed pseudo-random batch: normalised pixels have about unit variance
static float *
make_pixels (size_t n)
{
  float *p = g_new (float, n);
  GRand *rng = g_rand_new_with_seed (7);
  for (size_t i = 0; i < n; i++)
    p[i] = (float) g_rand_double_range (rng, -1.7, 1.7);
  g_rand_free (rng);
  return p;
}

static char **
read_lines (const char *path, int *n, GError **error)
{
  g_autofree char *text = NULL;
  if (!g_file_get_contents (path, &text, NULL, error))
    return NULL;
  char **lines = g_strsplit (text, "\n", -1);
  int kept = 0;
  for (int i = 0; lines[i] != NULL; i++)
    if (lines[i][0] != '\0')
      lines[kept++] = lines[i];
    else
      g_free (lines[i]);
  lines[kept] = NULL;
  *n = kept;
  return lines;
}

// what is timed: a model folder, or with --resnet a bare ResNet-50
typedef struct
{
  AgcModel *model;
  AgcResNet *resnet;
  int image_size, embed_dim;
} Subject;

static gboolean
subject_open (Subject *subject, const char *model_dir, const char *resnet_path,
              const char *prefix, GError **error)
{
  if (resnet_path == NULL)
    {
      if (!(subject->model = agc_model_load (model_dir, error)))
        return FALSE;
      subject->image_size = agc_model_image_size (subject->model);
      subject->embed_dim = agc_model_embed_dim (subject->model);
      return TRUE;
    }
  subject->resnet = agc_resnet_open (resnet_path, prefix, error);
  subject->image_size = RESNET_IMAGE_SIZE;
  subject->embed_dim = AGC_RESNET_FEATURES;
  return subject->resnet != NULL;
}

static void
subject_close (Subject *subject)
{
  agc_model_free (subject->model);
  agc_resnet_free (subject->resnet);
}

// the embeddings of all n images, not normalised, as another engine gives them
static gboolean
embed_all (const Subject *subject, const float *pixels, int n, float *out, GError **error)
{
  if (subject->resnet != NULL)
    return agc_resnet_forward (subject->resnet, pixels, n, RESNET_IMAGE_SIZE, RESNET_IMAGE_SIZE,
                               out, error);
  return agc_model_embed_pixels (subject->model, pixels, n, FALSE, out, NULL, error);
}

static int
run (int argc, char **argv)
{
  g_autofree char *model_dir = NULL, *batches = NULL, *pixels_path = NULL, *prompts_path = NULL;
  g_autofree char *dump_prefix = NULL, *resnet_path = NULL, *prefix = NULL;
  int iterations = 5, threads = 0;
  gboolean table = FALSE, no_floor = FALSE, no_text = FALSE, no_image = FALSE, int8 = FALSE;
  gboolean fma_peak = FALSE;
  const GOptionEntry entries[] = {
    { "model", 'm', 0, G_OPTION_ARG_FILENAME, &model_dir, N_("Model folder"), N_("DIR") },
    { "resnet", 0, 0, G_OPTION_ARG_FILENAME, &resnet_path,
      N_("Instead of a model: torchvision ResNet-50 weights, timed alone (224 x 224 images)"),
      N_("FILE") },
    { "prefix", 0, 0, G_OPTION_ARG_STRING, &prefix,
      N_("With --resnet: the prefix of the weight names (default none)"), N_("PREFIX") },
    { "threads", 't', 0, G_OPTION_ARG_INT, &threads,
      N_("Threads (default: OpenBLAS's default)"), N_("N") },
    { "batch", 'b', 0, G_OPTION_ARG_STRING, &batches,
      N_("Image batch sizes, comma-separated (default 1,8)"), N_("LIST") },
    { "iterations", 'n', 0, G_OPTION_ARG_INT, &iterations,
      N_("Timed calls per measurement (default 5)"), N_("N") },
    { "pixels", 0, 0, G_OPTION_ARG_FILENAME, &pixels_path,
      N_("Preprocessed images, raw float32 [n, 3, S, S] (default: pseudo-random)"), N_("FILE") },
    { "prompts", 0, 0, G_OPTION_ARG_FILENAME, &prompts_path,
      N_("Texts to encode as one zero-shot label set, one per line"), N_("FILE") },
    { "dump", 0, 0, G_OPTION_ARG_FILENAME, &dump_prefix,
      N_("Write the embeddings to PREFIX-images.f32 and PREFIX-texts.f32"), N_("PREFIX") },
    { "no-floor", 0, 0, G_OPTION_ARG_NONE, &no_floor, N_("Skip the GEMM-only runs"), NULL },
    { "no-image", 0, 0, G_OPTION_ARG_NONE, &no_image, N_("Skip image encoding"), NULL },
    { "no-text", 0, 0, G_OPTION_ARG_NONE, &no_text, N_("Skip text encoding"), NULL },
    { "fma-peak", 0, 0, G_OPTION_ARG_NONE, &fma_peak,
      N_("First measure the FMA throughput of this machine (AVX2, AVX-512; 1 and --threads "
         "threads); without --model or --resnet only that"), NULL },
    { "table", 0, 0, G_OPTION_ARG_NONE, &table, N_("Print a table instead of JSON lines"),
      NULL },
    { "int8", 0, 0, G_OPTION_ARG_NONE, &int8,
      N_("Run the image encoder with 8-bit integer weights (results image_int8 and "
         "image_int8_floor)"), NULL },
    { NULL },
  };
  g_autoptr (GOptionContext) context = cli_option_context_new (&cli_bench_command, entries);
  if (!cli_parse (context, &cli_bench_command, &argc, &argv))
    return CLI_EXIT_USAGE;
  if (model_dir != NULL && resnet_path != NULL)
    return cli_usage (&cli_bench_command, _("give either --model or --resnet"));
  if (model_dir == NULL && resnet_path == NULL && !fma_peak)
    return cli_usage (&cli_bench_command, _("give either --model or --resnet"));
  if (resnet_path != NULL && prompts_path != NULL)
    return cli_usage (&cli_bench_command, _("--prompts needs --model: a ResNet has no text tower"));
  if (prefix != NULL && resnet_path == NULL)
    return cli_usage (&cli_bench_command, _("--prefix goes with --resnet"));
  if (iterations < 1)
    return cli_usage (&cli_bench_command, _("--iterations must be at least 1"));
  g_auto (GStrv) batch_list = g_strsplit (batches ? batches : "1,8", ",", -1);
  int n_batches = (int) g_strv_length (batch_list), max_batch = 0;
  g_autofree int *batch_sizes = g_new (int, MAX (n_batches, 1));
  for (int i = 0; i < n_batches; i++)
    {
      batch_sizes[i] = atoi (batch_list[i]);
      if (batch_sizes[i] < 1)
        return cli_usage (&cli_bench_command, _("bad batch size '%s'"), batch_list[i]);
      max_batch = MAX (max_batch, batch_sizes[i]);
    }
  if (threads > 0)
    agc_set_threads (threads);
  if (fma_peak)
    print_fma_peaks (table);
  if (model_dir == NULL && resnet_path == NULL)
    return CLI_EXIT_OK;
  // a ResNet has no GEMM-only mode (the models'); its second run is on OpenBLAS
  int n_runs = no_floor ? 1 : resnet_path != NULL ? (int8 ? 1 : 2) : int8 ? 2 : 3;

  GError *error = NULL;
  Subject subject = { 0 };
  gint64 start = g_get_monotonic_time ();
  if (!subject_open (&subject, model_dir, resnet_path, prefix, &error))
    {
      subject_close (&subject);
      return cli_fail (error);
    }
  double load_s = (g_get_monotonic_time () - start) * 1e-6;
  AgcEngineOptions int8_options = agc_engine_default_options ();
  int8_options.int8 = TRUE;
  if (int8 && (subject.model != NULL ? !agc_model_set_int8 (subject.model, TRUE, &error)
                                     : !agc_resnet_set_options (subject.resnet, &int8_options,
                                                                &error)))
    {
      subject_close (&subject);
      return cli_fail (error);
    }
  int s = subject.image_size, e = subject.embed_dim;
  size_t image_len = (size_t) 3 * s * s;

  int n_pixels = max_batch;
  g_autofree float *pixels = NULL;
  if (pixels_path != NULL && !(pixels = read_pixels (pixels_path, image_len, &n_pixels, &error)))
    {
      subject_close (&subject);
      return cli_fail (error);
    }
  if (pixels == NULL)
    pixels = make_pixels (max_batch * image_len);
  int n_texts = 0;
  g_auto (GStrv) texts = NULL;
  if (prompts_path != NULL && !(texts = read_lines (prompts_path, &n_texts, &error)))
    {
      subject_close (&subject);
      return cli_fail (error);
    }

  const char *core = openblas_get_corename != NULL ? openblas_get_corename () : "unknown";
  const char *name = resnet_path != NULL ? resnet_path : model_dir;
  if (table)
    printf ("%s %s: opened in %.3f s; %d threads; OpenBLAS core %s\n",
            resnet_path != NULL ? "ResNet-50" : "model", name, load_s, agc_get_threads (), core);
  else
    printf ("{\"what\": \"info\", \"load_s\": %.6f, \"threads\": %d, \"openblas_core\": \"%s\", "
            "\"image_size\": %d, \"embed_dim\": %d}\n",
            load_s, agc_get_threads (), core, s, e);

  g_autofree float *out = g_new (float, (size_t) MAX (MAX (max_batch, n_pixels), n_texts) * e);
  g_autofree double *times = g_new (double, iterations);
  int status = CLI_EXIT_OK;
  double median;
  WorkFn image_fn = subject.resnet != NULL ? run_resnet : run_images;
  for (int i = 0; !no_image && i < n_batches && status == CLI_EXIT_OK; i++)
    {
      int n = batch_sizes[i];
      if (n > n_pixels)
        continue;
      Work w = { .model = subject.model, .resnet = subject.resnet, .pixels = pixels, .n = n,
                 .out = out };
      // the whole encoder; its GEMMs alone on our kernels; on OpenBLAS's
      // (not in int8 mode: OpenBLAS has no int8 product)
      static const char *const runs[] = { "image", "image_floor", "image_floor_blas" };
      static const char *const int8_runs[] = { "image_int8", "image_int8_floor" };
      static const char *const resnet_runs[] = { "image", "image_blas" };
      for (int run = 0; run < n_runs; run++)
        {
          AgcEngineOptions options = { 0 };
          if (subject.resnet != NULL && !int8)
            {
              AgcEngineOptions run_options = agc_engine_default_options ();
              run_options.use_openblas = run == 1;
              agc_resnet_set_options (subject.resnet, &run_options, NULL); // cannot fail
            }
          if (subject.model != NULL)
            {
              options = agc_model_get_options (subject.model);
              AgcEngineOptions run_options = options;
              run_options.products_only = run > 0;
              run_options.use_openblas = run >= 2;
              agc_model_set_options (subject.model, &run_options, NULL); // int8 as it is
            }
          gboolean ok = time_work (&median, times, image_fn, &w, iterations, &error);
          if (subject.model != NULL)
            agc_model_set_options (subject.model, &options, NULL);
          if (subject.resnet != NULL && !int8) // --dump: our kernels
            agc_resnet_set_options (subject.resnet, &options, NULL);
          if (!ok)
            {
              status = cli_fail (error);
              break;
            }
          const char *what = int8                      ? int8_runs[run]
                             : subject.resnet != NULL ? resnet_runs[run]
                                                      : runs[run];
          print_result (table, what, n, median, times, iterations);
        }
    }
  if (status == CLI_EXIT_OK && !no_text && n_texts > 0)
    {
      Work w = { .model = subject.model, .texts = (const char *const *) texts, .n = n_texts,
                 .out = out };
      if (time_work (&median, times, run_texts, &w, iterations, &error))
        print_result (table, "texts", n_texts, median, times, iterations);
      else
        status = cli_fail (error);
    }
  if (status == CLI_EXIT_OK && dump_prefix != NULL)
    {
      g_autofree char *image_path = g_strconcat (dump_prefix, "-images.f32", NULL);
      g_autofree char *text_path = g_strconcat (dump_prefix, "-texts.f32", NULL);
      gboolean ok = embed_all (&subject, pixels, n_pixels, out, &error)
                    && dump (image_path, out, (size_t) n_pixels * e, &error);
      if (ok && n_texts > 0)
        ok = agc_model_embed_texts (subject.model, (const char *const *) texts, n_texts, FALSE,
                                    out, NULL, &error)
             && dump (text_path, out, (size_t) n_texts * e, &error);
      if (!ok)
        status = cli_fail (error);
    }
  if (status == CLI_EXIT_OK)
    {
      if (table)
        printf ("peak memory %.1f MB\n", peak_rss_mb ());
      else
        printf ("{\"what\": \"memory\", \"peak_rss_mb\": %.1f}\n", peak_rss_mb ());
    }
  subject_close (&subject);
  return status;
}

const CliCommand cli_bench_command = {
  .name = "bench",
  .parameters = "",
  .summary = N_("Time image and text encoding, and their matrix products alone"),
  .run = run,
};
