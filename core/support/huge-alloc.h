/* huge-alloc.h — large buffers on transparent huge pages. */
#pragma once

#include <glib.h>

/* bytes of uninitialised memory, 64-byte aligned, freed by free() (or
 * g_free); NULL when memory is short.  From 4 MiB up it is 2 MiB aligned
 * and asks the kernel for transparent huge pages (MADV_HUGEPAGE, which
 * THP's common "madvise" setting requires): first touching 36 MB in 4 KiB
 * pages took ~0.45 s on the project's virtual machines (a page fault costs
 * ~10 us there), in 2 MiB pages ~17 ms. */
void *agc_huge_alloc (gsize bytes);
