/* tag-pipeline.c — worker threads that decode and preprocess images into a
 * ring of `ahead` slots while the caller encodes earlier ones.
 *
 * Image i goes to slot i % ahead; a worker claims the next image only when
 * its slot is free (the caller has given back image i - ahead), so memory
 * stays bounded and the caller receives images in order. */
#include "tagging/tag-pipeline.h"

#include <string.h>

typedef struct
{
  AgcTagDecoded decoded;
  gboolean ready;
} Slot;

struct AgcTagPipeline
{
  const AgcModel *model;
  AgcTagImage *const *images;
  int n_images, tile, stride, ahead;
  GMutex lock;
  GCond changed;
  int next_claim;   /* the next image a worker takes */
  int next_out;     /* the next image the caller receives */
  int released;     /* images whose slots the caller has given back */
  gboolean stopping;
  Slot *slots;      /* [ahead] */
  GPtrArray *threads;
};

static void
decoded_clear (AgcTagDecoded *d)
{
  g_clear_error (&d->error);
  g_free (d->pixels);
  g_free (d->tiles);
  g_free (d->tile_pixels);
  *d = (AgcTagDecoded) { 0 };
}

static gboolean
decode_tiles (const AgcTagPipeline *p, const AgcImage *image, AgcTagDecoded *d, GError **error)
{
  gsize image_floats = (gsize) 3 * agc_model_image_size (p->model) * agc_model_image_size (p->model);
  g_autoptr (GArray) grid = agc_tile_grid (image->width, image->height, p->tile, p->stride);
  d->n_tiles = (int) grid->len;
  d->tiles = g_memdup2 (grid->data, grid->len * sizeof (AgcRect));
  d->tile_pixels = g_new (float, d->n_tiles * image_floats);
  for (int t = 0; t < d->n_tiles; t++)
    {
      AgcImage *crop = agc_image_crop (image, &d->tiles[t]);
      gboolean ok = agc_model_preprocess (p->model, crop, d->tile_pixels + t * image_floats,
                                          error);
      agc_image_free (crop);
      if (!ok)
        return FALSE;
    }
  return TRUE;
}

static void
decode (const AgcTagPipeline *p, const AgcTagImage *item, AgcTagDecoded *d)
{
  int size = agc_model_image_size (p->model);
  AgcImage *image = agc_image_load (item->path, &d->error);
  if (image)
    {
      d->width = image->width;
      d->height = image->height;
      d->pixels = g_new (float, (gsize) 3 * size * size);
      if (agc_model_preprocess (p->model, image, d->pixels, &d->error) && p->tile > 0)
        decode_tiles (p, image, d, &d->error);
    }
  agc_image_free (image);
}

static gpointer
work (gpointer data)
{
  AgcTagPipeline *p = data;
  g_mutex_lock (&p->lock);
  for (;;)
    {
      while (!p->stopping && p->next_claim < p->n_images
             && p->next_claim >= p->released + p->ahead)
        g_cond_wait (&p->changed, &p->lock);
      if (p->stopping || p->next_claim >= p->n_images)
        break;
      int i = p->next_claim++;
      g_mutex_unlock (&p->lock);
      AgcTagDecoded decoded = { 0 };
      decode (p, p->images[i], &decoded);
      g_mutex_lock (&p->lock);
      Slot *slot = &p->slots[i % p->ahead];
      slot->decoded = decoded;
      slot->ready = TRUE;
      g_cond_broadcast (&p->changed);
    }
  g_mutex_unlock (&p->lock);
  return NULL;
}

AgcTagPipeline *
agc_tag_pipeline_new (const AgcModel *model, AgcTagImage *const *images, int n_images, int tile,
                      int stride, int n_workers, int ahead)
{
  AgcTagPipeline *p = g_new0 (AgcTagPipeline, 1);
  *p = (AgcTagPipeline) { .model = model, .images = images, .n_images = n_images, .tile = tile,
                          .stride = stride, .ahead = MAX (1, ahead),
                          .threads = g_ptr_array_new () };
  g_mutex_init (&p->lock);
  g_cond_init (&p->changed);
  p->slots = g_new0 (Slot, p->ahead);
  for (int w = 0; w < MAX (1, n_workers); w++)
    g_ptr_array_add (p->threads, g_thread_new ("agc-decode", work, p));
  return p;
}

const AgcTagDecoded *
agc_tag_pipeline_next (AgcTagPipeline *p)
{
  g_mutex_lock (&p->lock);
  if (p->next_out > 0) /* the caller is done with the previous image: free its slot */
    {
      Slot *done = &p->slots[(p->next_out - 1) % p->ahead];
      decoded_clear (&done->decoded);
      done->ready = FALSE;
      p->released = p->next_out;
    }
  g_return_val_if_fail (p->next_out < p->n_images, (g_mutex_unlock (&p->lock), NULL));
  Slot *slot = &p->slots[p->next_out % p->ahead];
  /* the previous image's slot is free now: a worker may claim into it */
  g_cond_broadcast (&p->changed);
  while (!slot->ready)
    g_cond_wait (&p->changed, &p->lock);
  p->next_out++;
  g_mutex_unlock (&p->lock);
  return &slot->decoded;
}

void
agc_tag_pipeline_free (AgcTagPipeline *p)
{
  if (!p)
    return;
  g_mutex_lock (&p->lock);
  p->stopping = TRUE;
  g_cond_broadcast (&p->changed);
  g_mutex_unlock (&p->lock);
  for (guint t = 0; t < p->threads->len; t++)
    g_thread_join (p->threads->pdata[t]);
  g_ptr_array_free (p->threads, TRUE);
  for (int s = 0; s < p->ahead; s++)
    decoded_clear (&p->slots[s].decoded);
  g_free (p->slots);
  g_mutex_clear (&p->lock);
  g_cond_clear (&p->changed);
  g_free (p);
}
