/* synth-parallel.h — drawing on several threads with GLib alone (the
 * library's own pool is private to core/). */
#pragma once

#include <glib.h>

/* Work on items [begin, end). */
typedef void (*SynthRangeFunc) (gpointer data, int begin, int end);

/* Runs fn over [0, n_items) on agc_get_threads () threads, the caller
 * included, handing out grain (>= 1) items at a time so that uneven items
 * balance; returns when all are done.  Items must not depend on each other:
 * the order is not fixed. */
void synth_parallel_for (int n_items, int grain, SynthRangeFunc fn, gpointer data);
