/* tag-order.c — which shard an image is in, and the order of a run's
 * images, which a merge of shards restores. */
#include "tagging/tag-order.h"

#include <string.h>

int
agc_tag_shard_of (const char *relative_path, int n_shards)
{
  g_return_val_if_fail (n_shards > 0, 0);
  guint64 hash = 0xcbf29ce484222325u; /* FNV-1a 64: offset basis, prime */
  for (const unsigned char *p = (const unsigned char *) relative_path; *p; p++)
    hash = (hash ^ *p) * 0x100000001b3u;
  return (int) (hash % (guint64) n_shards);
}

int
agc_tag_path_compare (const char *a, const char *b)
{
  for (;;)
    {
      size_t la = strcspn (a, "/"), lb = strcspn (b, "/");
      int c = strncmp (a, b, MIN (la, lb));
      if (c != 0)
        return c;
      if (la != lb) /* one component is a prefix of the other: the shorter first */
        return la < lb ? -1 : 1;
      if (a[la] == '\0' || b[lb] == '\0')
        return (a[la] != '\0') - (b[lb] != '\0');
      a += la + 1;
      b += lb + 1;
    }
}

int
agc_tag_image_compare (gconstpointer pa, gconstpointer pb)
{
  const AgcTagImage *a = *(AgcTagImage *const *) pa, *b = *(AgcTagImage *const *) pb;
  if (a->source != b->source)
    return a->source < b->source ? -1 : 1;
  return agc_tag_path_compare (a->relative, b->relative);
}

void
agc_tag_image_free (AgcTagImage *image)
{
  if (!image)
    return;
  g_free (image->relative);
  g_free (image->path);
  g_free (image);
}
