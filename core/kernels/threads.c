/* threads.c — a small fork-join pool for the non-GEMM parts of the encoders.
 *
 * Regions are short (tens of microseconds to a few milliseconds) and come
 * a hundred times per forward pass, the weight GEMMs (gemm-packed.h)
 * included, so a worker spins for the next one before it sleeps on a
 * condition variable: waking a sleeper costs tens of microseconds, which at
 * batch 1 added up to a tenth of the encoder's time. */
#include "kernels/threads.h"

#include "agriclip.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>

// OpenBLAS extensions, weak so that another CBLAS still links
extern void openblas_set_num_threads (int n) __attribute__ ((weak));
extern int openblas_get_num_threads (void) __attribute__ ((weak));

enum
{
  MAX_THREADS = 64,
  SPIN_ROUNDS = 40000, // ~0.2-0.6 ms of pause before a worker or the caller sleeps
  // while other threads compete for the cores (agc_threads_competing): a
  // spinner there takes a core from them, and the worker it waits for may
  // not even be running.  Measured on 48 12 MP photos with 2 decoders on 2
  // cores: 0.6-1.9 CPU-s less than SPIN_ROUNDS.
  COMPETING_SPIN_ROUNDS = 2000,
};

typedef struct
{
  pthread_mutex_t lock;
  pthread_cond_t wake; // workers: a new region (or stop)
  pthread_cond_t done; // caller: the last worker finished
  int n_threads;       // the caller included; 0 while not started
  pthread_t workers[MAX_THREADS];
  atomic_uint generation; // bumped once per region
  unsigned start_generation;
  atomic_bool stopping;
  // the current region, written before generation is bumped
  AgcRangeFn fn;
  void *ctx;
  int n_items, grain;
  atomic_int next;      // first item not yet handed out
  atomic_int busy;      // workers still in the current region
  atomic_flag in_use;   // a caller is inside agc_parallel_for
} Pool;

static Pool pool = {
  .lock = PTHREAD_MUTEX_INITIALIZER,
  .wake = PTHREAD_COND_INITIALIZER,
  .done = PTHREAD_COND_INITIALIZER,
  .in_use = ATOMIC_FLAG_INIT,
};
static atomic_int competing; // agc_threads_competing
static pthread_mutex_t config_lock = PTHREAD_MUTEX_INITIALIZER;
static int requested_threads; // from agc_set_threads, 0 = default
static _Thread_local int saved_blas_threads;
// begin/end pairs open on this thread: only the outermost switches OpenBLAS
// (a region's work may itself run a GEMM wrapped in a pair)
static _Thread_local int blas_serial_depth;

static inline void
cpu_relax (void)
{
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause ();
#endif
}

static int
spin_rounds (void)
{
  return atomic_load_explicit (&competing, memory_order_relaxed) > 0 ? COMPETING_SPIN_ROUNDS
                                                                     : SPIN_ROUNDS;
}

void
agc_threads_competing (int n)
{
  atomic_fetch_add (&competing, n);
}

static void
run_items (int thread)
{
  for (;;)
    {
      int begin = atomic_fetch_add (&pool.next, pool.grain);
      if (begin >= pool.n_items)
        return;
      pool.fn (pool.ctx, begin, MIN (begin + pool.grain, pool.n_items), thread);
    }
}

static void *
worker_main (void *arg)
{
  int thread = (int) (intptr_t) arg;
  // the generation when the pool started, not now: a region may already
  // have begun before this thread first runs
  unsigned seen = pool.start_generation;
  for (;;)
    {
      unsigned gen = seen;
      for (int spin = 0, rounds = spin_rounds (); spin < rounds && gen == seen; spin++)
        {
          cpu_relax ();
          gen = atomic_load_explicit (&pool.generation, memory_order_acquire);
        }
      if (gen == seen)
        {
          pthread_mutex_lock (&pool.lock);
          while ((gen = atomic_load (&pool.generation)) == seen)
            pthread_cond_wait (&pool.wake, &pool.lock);
          pthread_mutex_unlock (&pool.lock);
        }
      seen = gen;
      if (atomic_load (&pool.stopping))
        return NULL;
      run_items (thread);
      if (atomic_fetch_sub (&pool.busy, 1) == 1)
        {
          pthread_mutex_lock (&pool.lock);
          pthread_cond_signal (&pool.done);
          pthread_mutex_unlock (&pool.lock);
        }
    }
}

static int
default_threads (void)
{
  if (requested_threads > 0)
    return requested_threads;
  // OpenBLAS's own count honours OPENBLAS_NUM_THREADS / OMP_NUM_THREADS
  int n = openblas_get_num_threads != NULL ? openblas_get_num_threads () : 0;
  return n > 0 ? n : (int) g_get_num_processors ();
}

// config_lock held; the pool is idle
static void
pool_stop (void)
{
  if (pool.n_threads <= 1)
    {
      pool.n_threads = 0;
      return;
    }
  pthread_mutex_lock (&pool.lock);
  atomic_store (&pool.stopping, TRUE);
  atomic_fetch_add (&pool.generation, 1);
  pthread_cond_broadcast (&pool.wake);
  pthread_mutex_unlock (&pool.lock);
  for (int i = 1; i < pool.n_threads; i++)
    pthread_join (pool.workers[i], NULL);
  atomic_store (&pool.stopping, FALSE);
  pool.n_threads = 0;
}

// config_lock held
static void
pool_start (int n)
{
  n = CLAMP (n, 1, MAX_THREADS);
  pool.start_generation = atomic_load (&pool.generation);
  int started = 1;
  for (; started < n; started++)
    if (pthread_create (&pool.workers[started], NULL, worker_main, (void *) (intptr_t) started)
        != 0)
      break; // fewer threads is slower, not wrong
  pool.n_threads = started;
}

static int
pool_size (void)
{
  pthread_mutex_lock (&config_lock);
  if (pool.n_threads == 0)
    pool_start (default_threads ());
  int n = pool.n_threads;
  pthread_mutex_unlock (&config_lock);
  return n;
}

int
agc_threads_count (void)
{
  return pool_size ();
}

enum
{
  // below this many floats a region runs on the caller alone: waking a
  // worker costs more than it saves (a few microseconds of work per thread)
  MIN_FLOATS_PER_THREAD = 1 << 16,
};

int
agc_threads_row_grain (int n_rows, int width)
{
  int n_chunks = 4 * agc_threads_count ();
  return MAX ((n_rows + n_chunks - 1) / n_chunks, MIN_FLOATS_PER_THREAD / MAX (width, 1));
}

void
agc_set_threads (int n_threads)
{
  if (n_threads <= 0)
    n_threads = (int) g_get_num_processors ();
  n_threads = MIN (n_threads, MAX_THREADS);
  pthread_mutex_lock (&config_lock);
  // wait until no region runs, so the workers can be joined
  while (atomic_flag_test_and_set (&pool.in_use))
    g_usleep (100);
  requested_threads = n_threads;
  if (pool.n_threads != 0 && pool.n_threads != n_threads)
    pool_stop ();
  atomic_flag_clear (&pool.in_use);
  pthread_mutex_unlock (&config_lock);
  if (openblas_set_num_threads != NULL)
    openblas_set_num_threads (n_threads);
}

int
agc_get_threads (void)
{
  return pool_size ();
}

void
agc_parallel_for (int n_items, int grain, AgcRangeFn fn, void *ctx)
{
  if (n_items <= 0)
    return;
  int n_threads = pool_size ();
  if (grain <= 0)
    grain = (n_items + n_threads - 1) / n_threads;
  if (n_threads == 1 || n_items <= grain || atomic_flag_test_and_set (&pool.in_use))
    {
      fn (ctx, 0, n_items, 0);
      return;
    }
  pool.fn = fn;
  pool.ctx = ctx;
  pool.n_items = n_items;
  pool.grain = grain;
  atomic_store (&pool.next, 0);
  atomic_store (&pool.busy, n_threads - 1);
  pthread_mutex_lock (&pool.lock);
  atomic_fetch_add_explicit (&pool.generation, 1, memory_order_release);
  pthread_cond_broadcast (&pool.wake);
  pthread_mutex_unlock (&pool.lock);

  run_items (0);

  for (int spin = 0, rounds = spin_rounds (); spin < rounds && atomic_load (&pool.busy) != 0;
       spin++)
    cpu_relax ();
  if (atomic_load (&pool.busy) != 0)
    {
      pthread_mutex_lock (&pool.lock);
      while (atomic_load (&pool.busy) != 0)
        pthread_cond_wait (&pool.done, &pool.lock);
      pthread_mutex_unlock (&pool.lock);
    }
  atomic_flag_clear (&pool.in_use);
}

typedef struct
{
  void *data;
  size_t bytes;
} Scratch;

void
agc_thread_scratch_free (gpointer scratch)
{
  Scratch *s = scratch;
  free (s->data);
  g_free (s);
}

void *
agc_thread_scratch (GPrivate *key, size_t bytes)
{
  Scratch *s = g_private_get (key);
  if (s == NULL)
    g_private_set (key, s = g_new0 (Scratch, 1));
  if (s->bytes < bytes)
    {
      // by half again, so that slowly growing requests reallocate rarely
      size_t want = MAX (bytes, s->bytes / 2 * 3);
      void *memory = NULL;
      if (posix_memalign (&memory, 64, want) != 0)
        return NULL;
      free (s->data);
      *s = (Scratch){ memory, want };
    }
  return s->data;
}

void
agc_threads_blas_serial_begin (void)
{
  if (blas_serial_depth++ > 0)
    return;
  saved_blas_threads = 0;
  if (openblas_get_num_threads == NULL || openblas_set_num_threads == NULL)
    return;
  int n = openblas_get_num_threads ();
  if (n > 1)
    {
      saved_blas_threads = n;
      openblas_set_num_threads (1);
    }
}

void
agc_threads_blas_serial_end (void)
{
  if (blas_serial_depth == 0 || --blas_serial_depth > 0)
    return;
  if (saved_blas_threads > 1)
    openblas_set_num_threads (saved_blas_threads);
  saved_blas_threads = 0;
}
