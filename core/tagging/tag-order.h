/* tag-order.h — the order of a run's images: by source, then by relative
 * path compared component by component (agc_image_collect's order). */
#pragma once

#include "agriclip.h"

/* One image of a run: where it is and what results.jsonl calls it. */
typedef struct
{
  int source;     /* index into the run's sources */
  char *relative; /* path under the source, '/'-separated */
  char *path;     /* the file to open */
} AgcTagImage;

void agc_tag_image_free (AgcTagImage *image);
/* strcmp on each '/'-separated component in turn. */
int agc_tag_path_compare (const char *a, const char *b);
/* A GCompareFunc on AgcTagImage pointers (g_ptr_array_sort). */
int agc_tag_image_compare (gconstpointer a, gconstpointer b);
