/* gemm-int8-bench.c — times agc_gemm_int8 against cblas_sgemm on the
 * encoders' shapes, same threads for both, and prints the throughput of each
 * (2 rows n_out n_in operations per product) and their ratio.
 *
 *   gemm-int8-bench [THREADS [KERNEL]]   KERNEL: avx512vnni, avxvnni, avx2
 *
 * Each figure is the median of 9 timings of a batch of products lasting
 * about 40 ms: the machine is shared, the median ignores the slow ones.
 * The int8 kernel is also timed by the process's CPU time (all threads),
 * which other processes on a loaded machine disturb less: operations per
 * CPU-second, i.e. per busy core. */
#include "agriclip.h"
#include "kernels/gemm-int8.h"

#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum
{
  N_TIMINGS = 9
};

typedef struct
{
  float *c;
  const float *a, *w;
  const AgcInt8Matrix *wq;
  int rows, n_out, n_in;
} Product;

static void
run_int8 (const Product *p)
{
  if (!agc_gemm_int8 (p->c, p->n_out, p->a, p->n_in, p->wq, p->rows, 0.0f, NULL))
    g_error ("cannot allocate the quantised activations");
}

static void
run_sgemm (const Product *p)
{
  cblas_sgemm (CblasRowMajor, CblasNoTrans, CblasTrans, p->rows, p->n_out, p->n_in, 1.0f, p->a,
               p->n_in, p->w, p->n_in, 0.0f, p->c, p->n_out);
}

static double
cpu_seconds (void)
{
  struct timespec t;
  clock_gettime (CLOCK_PROCESS_CPUTIME_ID, &t);
  return t.tv_sec + t.tv_nsec * 1e-9;
}

static int
compare_double (const void *x, const void *y)
{
  double a = *(const double *) x, b = *(const double *) y;
  return (a > b) - (a < b);
}

/* Median seconds per product, wall clock; *cpu: the same in CPU time. */
static double
time_product (void (*run) (const Product *), const Product *p, double *cpu)
{
  run (p); // warm-up: caches, pool threads, scratch
  gint64 t0 = g_get_monotonic_time ();
  run (p);
  double once = MAX (1e-6, (g_get_monotonic_time () - t0) * 1e-6);
  int reps = MAX (1, (int) (0.04 / once));
  double t[N_TIMINGS], t_cpu[N_TIMINGS];
  for (int i = 0; i < N_TIMINGS; i++)
    {
      t0 = g_get_monotonic_time ();
      double c0 = cpu_seconds ();
      for (int r = 0; r < reps; r++)
        run (p);
      t_cpu[i] = (cpu_seconds () - c0) / reps;
      t[i] = (g_get_monotonic_time () - t0) * 1e-6 / reps;
    }
  qsort (t, N_TIMINGS, sizeof *t, compare_double);
  qsort (t_cpu, N_TIMINGS, sizeof *t_cpu, compare_double);
  *cpu = t_cpu[N_TIMINGS / 2];
  return t[N_TIMINGS / 2];
}

static float *
random_floats (GRand *rng, size_t n)
{
  float *x = g_new (float, n);
  for (size_t i = 0; i < n; i++)
    x[i] = (float) g_rand_double_range (rng, -1.0, 1.0);
  return x;
}

int
main (int argc, char **argv)
{
  int threads = argc > 1 ? atoi (argv[1]) : 1;
  static const struct
  {
    const char *name;
    AgcInt8Kernel kernel;
  } kernels[] = {
    { "avx512vnni", AGC_INT8_KERNEL_AVX512VNNI },
    { "avxvnni", AGC_INT8_KERNEL_AVXVNNI },
    { "avx2", AGC_INT8_KERNEL_AVX2 },
  };
  if (argc > 2)
    {
      gboolean ok = FALSE;
      for (size_t i = 0; i < G_N_ELEMENTS (kernels); i++)
        if (strcmp (argv[2], kernels[i].name) == 0)
          ok = agc_int8_force_kernel (kernels[i].kernel);
      if (!ok)
        {
          fprintf (stderr, "gemm-int8-bench: kernel %s unknown or not on this CPU\n", argv[2]);
          return 1;
        }
    }
  if (!agc_int8_available ())
    {
      fprintf (stderr, "gemm-int8-bench: no int8 kernel on this CPU\n");
      return 1;
    }
  agc_set_threads (threads);
  static const int shapes[][3] = {
    { 50, 2304, 768 }, { 50, 3072, 768 }, { 50, 768, 3072 }, { 400, 2304, 768 }, { 400, 768, 3072 },
  };
  const char *coretype = g_getenv ("OPENBLAS_CORETYPE");
  printf ("threads %d, int8 kernel %d, OPENBLAS_CORETYPE %s\n", threads, agc_int8_kernel (),
          coretype != NULL ? coretype : "(unset)");
  printf ("%-16s %12s %12s %8s %14s\n", "rows x out x in", "f32 GFLOP/s", "int8 GOP/s", "ratio",
          "int8 GOP/cpu-s");
  GRand *rng = g_rand_new_with_seed (1);
  for (size_t s = 0; s < G_N_ELEMENTS (shapes); s++)
    {
      Product p = { .rows = shapes[s][0], .n_out = shapes[s][1], .n_in = shapes[s][2] };
      float *a = random_floats (rng, (size_t) p.rows * p.n_in);
      float *w = random_floats (rng, (size_t) p.n_out * p.n_in);
      GError *error = NULL;
      AgcInt8Matrix *wq = agc_int8_matrix_new (w, p.n_out, p.n_in, &error);
      if (wq == NULL)
        {
          fprintf (stderr, "gemm-int8-bench: %s\n", error->message);
          return 1;
        }
      p.a = a;
      p.w = w;
      p.wq = wq;
      p.c = g_new (float, (size_t) p.rows * p.n_out);
      double ops = 2.0 * p.rows * p.n_out * p.n_in;
      double cpu_f32, cpu_int8;
      double t_f32 = time_product (run_sgemm, &p, &cpu_f32);
      double t_int8 = time_product (run_int8, &p, &cpu_int8);
      char name[32];
      g_snprintf (name, sizeof name, "%dx%dx%d", p.rows, p.n_out, p.n_in);
      printf ("%-16s %12.1f %12.1f %8.2f %14.1f\n", name, ops / t_f32 * 1e-9, ops / t_int8 * 1e-9,
              t_f32 / t_int8, ops / cpu_int8 * 1e-9);
      fflush (stdout);
      agc_int8_matrix_free (wq);
      g_free (a);
      g_free (w);
      g_free (p.c);
    }
  g_rand_free (rng);
  return 0;
}
