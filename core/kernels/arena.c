/* arena.c — grow-only, 64-byte aligned scratch memory. */
#include "kernels/arena.h"

#include "agriclip.h"
#include "support/huge-alloc.h"

#include <stdlib.h>

float *
agc_arena_reserve (AgcArena *arena, size_t n_floats, const char *what, GError **error)
{
  g_return_val_if_fail (arena != NULL, NULL);
  if (n_floats <= arena->n_floats && arena->data != NULL)
    return arena->data;
  agc_arena_clear (arena);
  // g_aligned_alloc aborts when memory is short: a big batch must fail softly
  void *p = agc_huge_alloc (MAX (n_floats, 1) * sizeof (float));
  if (p == NULL)
    {
      g_set_error (error, AGC_ERROR, AGC_ERROR_INPUT, "cannot allocate %zu MB of scratch for %s",
                   n_floats * sizeof (float) >> 20, what);
      return NULL;
    }
  arena->data = p;
  arena->n_floats = n_floats;
  return arena->data;
}

void
agc_arena_clear (AgcArena *arena)
{
  if (arena == NULL)
    return;
  free (arena->data);
  arena->data = NULL;
  arena->n_floats = 0;
}
