/* synth-parallel.c — threads started per call: a call draws hundreds of
 * images, next to which starting a thread costs nothing, and no pool
 * outlives the run. */
#include "synth-parallel.h"

#include "agriclip.h"

typedef struct
{
  int n_items;
  int grain;
  gint next; /* first item not yet handed out */
  SynthRangeFunc fn;
  gpointer data;
} Work;

static gpointer
worker (gpointer user_data)
{
  Work *work = user_data;
  for (;;)
    {
      int begin = g_atomic_int_add (&work->next, work->grain);
      if (begin >= work->n_items)
        return NULL;
      work->fn (work->data, begin, MIN (begin + work->grain, work->n_items));
    }
}

void
synth_parallel_for (int n_items, int grain, SynthRangeFunc fn, gpointer data)
{
  g_return_if_fail (grain >= 1 && fn != NULL);
  Work work = { .n_items = n_items, .grain = grain, .fn = fn, .data = data };
  int n_threads = MIN (agc_get_threads (), (n_items + grain - 1) / grain);
  g_autofree GThread **threads = g_new (GThread *, MAX (n_threads, 1));
  int started = 0;
  for (int t = 1; t < n_threads; t++)
    {
      /* Without a thread the others take its share. */
      GThread *thread = g_thread_try_new ("synth", worker, &work, NULL);
      if (thread)
        threads[started++] = thread;
    }
  worker (&work);
  for (int t = 0; t < started; t++)
    g_thread_join (threads[t]);
}
