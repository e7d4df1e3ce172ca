/* fma-peak.h — what this machine's FMA units can do at most: the ceiling
 * that `agriclip bench --fma-peak` prints and tests/bench/bench.py puts the
 * encoders' matrix products against ("% of peak"). */
#pragma once

#include <glib.h>

typedef enum
{
  FMA_PEAK_AVX2,   // 8 lanes, ymm
  FMA_PEAK_AVX512, // 16 lanes, zmm
} FmaPeakIsa;

/* TRUE when this CPU runs isa's FMAs. */
gboolean fma_peak_supported (FmaPeakIsa isa);

/* Float32 GFLOP/s (an FMA counted as 2) of independent FMA chains on
 * n_threads threads at once, each thread timing its own share: the best of
 * repeats runs of about seconds each, so that other processes on the
 * machine show as a lower median (*median_gflops) rather than a lower peak.
 * Needs fma_peak_supported (isa). */
double fma_peak_gflops (FmaPeakIsa isa, int n_threads, int repeats, double seconds,
                        double *median_gflops);
