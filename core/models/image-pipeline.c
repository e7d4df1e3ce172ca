/* image-pipeline.c — worker threads that decode and preprocess image files
 * into a ring of `ahead` slots while the caller encodes earlier ones (moved
 * here from tagging/tag-pipeline.c so that every command uses it).
 *
 * Image i goes to slot i % ahead; a worker claims the next image only when
 * its slot is free (the caller has given back image i - ahead), so memory
 * stays bounded (ahead model inputs, plus one decoded file per worker) and
 * the caller receives images in order.  Each slot keeps its model input's
 * buffer from image to image: a fresh 0.6 MB buffer per image (ViT-B at
 * 224) came back as ~35 page faults of new memory, each ~10 us on these
 * virtual machines. */
#include "models/image-pipeline.h"

#include "kernels/threads.h"

#include <string.h>

typedef struct
{
  AgcPipelineImage image;
  float *buffer; /* [3, S, S], image.pixels while it holds an image; kept after */
  gboolean ready;
} Slot;

struct AgcImagePipeline
{
  AgcImageDecoder decoder;
  const char *const *paths;
  int n_paths;
  AgcImagePipelineOptions options;
  int ahead;
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
image_clear (const AgcImagePipeline *p, AgcPipelineImage *d)
{
  g_clear_error (&d->error);
  if (d->extra != NULL && p->options.extra_free != NULL)
    p->options.extra_free (d->extra);
  *d = (AgcPipelineImage) { 0 };
}

// path -> d, into pixels[3, S, S]
static void
decode (const AgcImagePipeline *p, const char *path, float *pixels, AgcPipelineImage *d)
{
  const AgcImageDecoder *decoder = &p->decoder;
  if (decoder->load_input != NULL && p->options.extra == NULL)
    {
      d->pixels = pixels;
      decoder->load_input (path, d->pixels, &d->width, &d->height, decoder->data, &d->error);
      return;
    }
  AgcImage *image = decoder->load != NULL ? decoder->load (path, decoder->data, &d->error)
                                          : agc_image_load (path, &d->error);
  if (image)
    {
      d->width = image->width;
      d->height = image->height;
      d->pixels = pixels;
      gboolean ok = decoder->preprocess (d->pixels, image, decoder->data, &d->error);
      if (!ok) // the preprocessing does not know the file
        {
          g_autofree char *shown = g_filename_display_name (path);
          g_prefix_error (&d->error, "%s: ", shown);
        }
      else if (p->options.extra != NULL)
        p->options.extra (image, &d->extra, p->options.user_data, &d->error);
    }
  agc_image_free (image);
}

static gpointer
work (gpointer data)
{
  AgcImagePipeline *p = data;
  g_mutex_lock (&p->lock);
  for (;;)
    {
      while (!p->stopping && p->next_claim < p->n_paths
             && p->next_claim >= p->released + p->ahead)
        g_cond_wait (&p->changed, &p->lock);
      if (p->stopping || p->next_claim >= p->n_paths)
        break;
      int i = p->next_claim++;
      Slot *slot = &p->slots[i % p->ahead]; // free: the caller gave back image i - ahead
      float *pixels = slot->buffer;
      g_mutex_unlock (&p->lock);
      int size = p->decoder.image_size;
      if (pixels == NULL)
        pixels = g_new (float, (gsize) 3 * size * size);
      AgcPipelineImage decoded = { 0 };
      decode (p, p->paths[i], pixels, &decoded);
      g_mutex_lock (&p->lock);
      slot->buffer = pixels;
      slot->image = decoded;
      slot->ready = TRUE;
      g_cond_broadcast (&p->changed);
    }
  g_mutex_unlock (&p->lock);
  agc_threads_competing (-1);
  return NULL;
}

static AgcImage *
model_load_full (const char *path, gpointer model, GError **error)
{
  return agc_model_load_image (model, path, FALSE, error);
}

static AgcImage *
model_load_fast (const char *path, gpointer model, GError **error)
{
  return agc_model_load_image (model, path, TRUE, error);
}

static gboolean
model_load_input_full (const char *path, float *pixels, int *width, int *height, gpointer model,
                       GError **error)
{
  return agc_model_load_input (model, path, FALSE, pixels, width, height, error);
}

static gboolean
model_load_input_fast (const char *path, float *pixels, int *width, int *height, gpointer model,
                       GError **error)
{
  return agc_model_load_input (model, path, TRUE, pixels, width, height, error);
}

static gboolean
model_preprocess (float *pixels, const AgcImage *image, gpointer model, GError **error)
{
  return agc_model_preprocess (model, image, pixels, error);
}

AgcImagePipeline *
agc_image_pipeline_new (const AgcModel *model, const char *const *paths, int n_paths,
                        const AgcImagePipelineOptions *options)
{
  g_return_val_if_fail (model != NULL, NULL);
  gboolean fast = options != NULL && options->fast_decode;
  AgcImageDecoder decoder = {
    .image_size = agc_model_image_size (model),
    .load = fast ? model_load_fast : model_load_full,
    .preprocess = model_preprocess,
    .load_input = fast ? model_load_input_fast : model_load_input_full,
    .data = (gpointer) model,
  };
  return agc_image_pipeline_new_with_decoder (&decoder, paths, n_paths, options);
}

AgcImagePipeline *
agc_image_pipeline_new_with_decoder (const AgcImageDecoder *decoder, const char *const *paths,
                                     int n_paths, const AgcImagePipelineOptions *options)
{
  g_return_val_if_fail (decoder != NULL && decoder->preprocess != NULL && decoder->image_size > 0,
                        NULL);
  g_return_val_if_fail (n_paths >= 0 && (n_paths == 0 || paths != NULL), NULL);
  AgcImagePipeline *p = g_new0 (AgcImagePipeline, 1);
  p->decoder = *decoder;
  p->paths = paths;
  p->n_paths = n_paths;
  if (options != NULL)
    p->options = *options;
  // as many as the encoder's threads (--threads), which share the same cores
  int n_workers = p->options.n_workers > 0 ? p->options.n_workers : agc_threads_count ();
  n_workers = MAX (1, MIN (n_workers, n_paths));
  p->ahead = p->options.ahead > 0 ? p->options.ahead : 32;
  p->threads = g_ptr_array_new ();
  g_mutex_init (&p->lock);
  g_cond_init (&p->changed);
  p->slots = g_new0 (Slot, p->ahead);
  for (int w = 0; w < n_workers && n_paths > 0; w++)
    {
      agc_threads_competing (1); // until the worker has no more files to take
      g_ptr_array_add (p->threads, g_thread_new ("agc-decode", work, p));
    }
  return p;
}

const AgcPipelineImage *
agc_image_pipeline_next (AgcImagePipeline *p)
{
  g_return_val_if_fail (p != NULL, NULL);
  g_mutex_lock (&p->lock);
  if (p->next_out > 0) /* the caller is done with the previous image: free its slot */
    {
      Slot *done = &p->slots[(p->next_out - 1) % p->ahead];
      image_clear (p, &done->image);
      done->ready = FALSE;
      p->released = p->next_out;
    }
  if (p->next_out >= p->n_paths)
    {
      g_mutex_unlock (&p->lock);
      return NULL;
    }
  Slot *slot = &p->slots[p->next_out % p->ahead];
  /* the previous image's slot is free now: a worker may claim into it */
  g_cond_broadcast (&p->changed);
  while (!slot->ready)
    g_cond_wait (&p->changed, &p->lock);
  p->next_out++;
  g_mutex_unlock (&p->lock);
  return &slot->image;
}

void
agc_image_pipeline_free (AgcImagePipeline *p)
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
    {
      image_clear (p, &p->slots[s].image);
      g_free (p->slots[s].buffer);
    }
  g_free (p->slots);
  g_mutex_clear (&p->lock);
  g_cond_clear (&p->changed);
  g_free (p);
}
