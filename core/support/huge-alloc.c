/* huge-alloc.c — large buffers on transparent huge pages (huge-alloc.h). */
#define _DEFAULT_SOURCE // madvise
#include "support/huge-alloc.h"

#include <stdlib.h>
#include <sys/mman.h>

enum
{
  HUGE_PAGE = 2 << 20,
  HUGE_FROM = 4 << 20, // below, most of a huge page could be wasted
};

void *
agc_huge_alloc (gsize bytes)
{
  void *memory = NULL;
  gboolean huge = bytes >= HUGE_FROM;
  if (posix_memalign (&memory, huge ? HUGE_PAGE : 64, MAX (bytes, 1)) != 0)
    return NULL;
#ifdef MADV_HUGEPAGE
  if (huge) // the whole huge pages inside; a kernel without THP says no, harmlessly
    madvise (memory, bytes & ~(gsize) (HUGE_PAGE - 1), MADV_HUGEPAGE);
#endif
  return memory;
}
