/* fma-peak.c — the FMA-throughput microbenchmark (fma-peak.h).
 *
 * Each thread runs CHAINS independent accumulator chains, more than the FMA
 * latency (4 cycles) times the FMA pipes (2) of current x86 cores, so the
 * pipes never wait for a result: the loop is pure FMA issue.  The chains'
 * values stay finite (x * 1 + 0, scaled by a factor a hair below one). */
#include "fma-peak.h"

#include <stdlib.h>
#include <string.h>

#if defined(__GNUC__) && defined(__x86_64__)
#include <immintrin.h>
#define HAVE_X86 1
#endif

enum
{
  CHAINS = 12,            // accumulators per thread (registers: 12 + 2 constants)
  STEPS_PER_CALL = 1 << 16 // loop trips between clock reads
};

gboolean
fma_peak_supported (FmaPeakIsa isa)
{
#ifdef HAVE_X86
  __builtin_cpu_init ();
  if (isa == FMA_PEAK_AVX512)
    return __builtin_cpu_supports ("avx512f");
  return __builtin_cpu_supports ("avx2") && __builtin_cpu_supports ("fma");
#else
  (void) isa;
  return FALSE;
#endif
}

#ifdef HAVE_X86
// steps x CHAINS FMAs of 16 lanes; returns a value that depends on all of them
__attribute__ ((target ("avx512f"))) static float
chains_avx512 (long steps)
{
  __m512 acc[CHAINS];
  for (int i = 0; i < CHAINS; i++)
    acc[i] = _mm512_set1_ps (1.0f + i);
  __m512 scale = _mm512_set1_ps (0.999999f), add = _mm512_set1_ps (1e-6f);
  for (long s = 0; s < steps; s++)
    {
#pragma GCC unroll 12
      for (int i = 0; i < CHAINS; i++)
        acc[i] = _mm512_fmadd_ps (acc[i], scale, add);
    }
  for (int i = 1; i < CHAINS; i++)
    acc[0] = _mm512_add_ps (acc[0], acc[i]);
  return _mm512_reduce_add_ps (acc[0]);
}

// steps x CHAINS FMAs of 8 lanes
__attribute__ ((target ("avx2,fma"))) static float
chains_avx2 (long steps)
{
  __m256 acc[CHAINS];
  for (int i = 0; i < CHAINS; i++)
    acc[i] = _mm256_set1_ps (1.0f + i);
  __m256 scale = _mm256_set1_ps (0.999999f), add = _mm256_set1_ps (1e-6f);
  for (long s = 0; s < steps; s++)
    {
#pragma GCC unroll 12
      for (int i = 0; i < CHAINS; i++)
        acc[i] = _mm256_fmadd_ps (acc[i], scale, add);
    }
  for (int i = 1; i < CHAINS; i++)
    acc[0] = _mm256_add_ps (acc[0], acc[i]);
  float lanes[8];
  _mm256_storeu_ps (lanes, acc[0]);
  return lanes[0] + lanes[7];
}
#endif

typedef struct
{
  FmaPeakIsa isa;
  long steps;
  gint *ready;          // threads waiting at the start line
  gint *go;             // set once all are ready
  float sink;
} Runner;

static float
chains (FmaPeakIsa isa, long steps)
{
#ifdef HAVE_X86
  return isa == FMA_PEAK_AVX512 ? chains_avx512 (steps) : chains_avx2 (steps);
#else
  (void) isa;
  (void) steps;
  return 0.0f;
#endif
}

static gpointer
run_thread (gpointer data)
{
  Runner *r = data;
  chains (r->isa, STEPS_PER_CALL); // the clock up and the code in cache
  g_atomic_int_inc (r->ready);
  while (!g_atomic_int_get (r->go))
    ;
  r->sink = chains (r->isa, r->steps);
  return NULL;
}

static int
compare_doubles (const void *a, const void *b)
{
  double x = *(const double *) a, y = *(const double *) b;
  return (x > y) - (x < y);
}

// GFLOP/s of one run of n_threads threads doing steps each
static double
one_run (FmaPeakIsa isa, int n_threads, long steps)
{
  gint ready = 0, go = 0;
  Runner *runners = g_new0 (Runner, n_threads);
  GThread **threads = g_new (GThread *, n_threads);
  for (int t = 0; t < n_threads; t++)
    {
      runners[t] = (Runner){ .isa = isa, .steps = steps, .ready = &ready, .go = &go };
      threads[t] = g_thread_new ("fma-peak", run_thread, &runners[t]);
    }
  while (g_atomic_int_get (&ready) < n_threads)
    g_thread_yield ();
  // from the start line until the last thread is done: threads that did
  // not overlap (the OS ran them one after the other) do not count twice
  gint64 start = g_get_monotonic_time ();
  g_atomic_int_set (&go, 1);
  for (int t = 0; t < n_threads; t++)
    g_thread_join (threads[t]);
  double seconds = MAX ((g_get_monotonic_time () - start) * 1e-6, 1e-9);
  g_free (threads);
  g_free (runners);
  double flop_per_step = 2.0 * CHAINS * (isa == FMA_PEAK_AVX512 ? 16 : 8);
  return flop_per_step * steps * n_threads / seconds * 1e-9;
}

double
fma_peak_gflops (FmaPeakIsa isa, int n_threads, int repeats, double seconds,
                 double *median_gflops)
{
  g_return_val_if_fail (fma_peak_supported (isa) && n_threads >= 1 && repeats >= 1, 0.0);
  // steps for about `seconds`, from a short calibration run on one thread
  long probe = 4 * STEPS_PER_CALL;
  double probe_gflops = one_run (isa, 1, probe);
  double flop_per_step = 2.0 * CHAINS * (isa == FMA_PEAK_AVX512 ? 16 : 8);
  long steps = MAX (probe, (long) (seconds * probe_gflops * 1e9 / flop_per_step));
  double *runs = g_new (double, repeats);
  for (int i = 0; i < repeats; i++)
    runs[i] = one_run (isa, n_threads, steps);
  qsort (runs, repeats, sizeof (double), compare_doubles);
  if (median_gflops != NULL)
    *median_gflops = repeats % 2 ? runs[repeats / 2]
                                 : 0.5 * (runs[repeats / 2 - 1] + runs[repeats / 2]);
  double best = runs[repeats - 1];
  g_free (runs);
  return best;
}
