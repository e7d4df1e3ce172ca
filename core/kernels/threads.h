/* threads.h — the worker threads that run the non-GEMM parts of the
 * encoders (layer norms, activations, attention heads) beside OpenBLAS.
 *
 * One process-wide pool of agc_threads_count () threads, the calling thread
 * included.  OpenBLAS keeps its own threads for the big GEMMs; the two never
 * run at the same time (a parallel region starts after a GEMM returns), so
 * the machine is not oversubscribed.  A GEMM issued from inside a region must
 * run single-threaded: wrap the region in agc_threads_blas_serial_begin/end.
 *
 * The public agc_set_threads () (agriclip.h) sets both counts. */
#pragma once

#include <glib.h>

/* Work on items [begin, end); thread is 0 .. agc_threads_count () - 1, for
 * per-thread scratch. */
typedef void (*AgcRangeFn) (void *ctx, int begin, int end, int thread);

/* Threads used for our own parallel regions, the caller included. */
int agc_threads_count (void);

/* Runs fn over [0, n_items) on the pool, items handed out in chunks of about
 * grain (>= 1) so that uneven items balance; returns when all are done.
 * Runs on the caller alone when n_items <= grain, the pool has one thread, or
 * another thread is already using the pool (a second model in a second
 * thread stays correct, merely slower). */
void agc_parallel_for (int n_items, int grain, AgcRangeFn fn, void *ctx);

/* Threads outside the pool that keep the cores busy meanwhile (the image
 * pipeline's decoders) start (+n) and end (-n): while there are any, the
 * pool's threads wait for a region by spinning a twentieth as long
 * before they sleep, leaving the core to them. */
void agc_threads_competing (int n);

/* The grain for a pass over n_rows rows of width floats: four chunks per
 * thread, so that a thread the OS delays leaves its chunks to the others,
 * but never chunks so small that a second thread is not worth waking. */
int agc_threads_row_grain (int n_rows, int width);

/* Memory that the calling thread reuses from one call to the next: at
 * least bytes, 64-byte aligned, grown when too small (contents then not
 * kept) and freed when the thread exits; NULL when memory is short.  key is
 * the caller's own, declared G_PRIVATE_INIT (agc_thread_scratch_free), so
 * that two users on one thread never share a block. */
void *agc_thread_scratch (GPrivate *key, size_t bytes);
void agc_thread_scratch_free (gpointer scratch);

/* OpenBLAS single-threaded between begin and end, so that GEMMs issued from
 * pool threads do not each wake OpenBLAS's own threads.  Call from the
 * thread that calls agc_parallel_for.  Pairs nest: inside an outer pair (or
 * inside a region, where OpenBLAS is already serial) they change nothing. */
void agc_threads_blas_serial_begin (void);
void agc_threads_blas_serial_end (void);
