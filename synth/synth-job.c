/* synth-job.c — drawing one image, and the batches of a job. */
#include "synth-job.h"

#include "synth-camera.h"
#include "synth-caption.h"
#include "synth-classes.h"
#include "synth-draw.h"
#include "synth-output.h"
#include "synth-parallel.h"

#include <gio/gio.h>

#define BATCH 256 /* images between progress reports */
#define GRAIN 4   /* images handed to a thread at a time */

void
synth_job_init (SynthJob *job, const SynthOptions *options, SynthSplit split, int n,
                gboolean with_captions)
{
  *job = (SynthJob) { .options = options, .split = split, .n = n };
  job->paths = g_new0 (char *, n);
  job->klass = g_new (int, n);
  job->index = g_new (int, n);
  if (with_captions)
    job->captions = g_new0 (char *, n);
  g_mutex_init (&job->lock);
}

void
synth_job_clear (SynthJob *job)
{
  for (int i = 0; i < job->n; i++)
    {
      g_free (job->paths[i]);
      if (job->captions)
        g_free (job->captions[i]);
    }
  g_free (job->paths);
  g_free (job->klass);
  g_free (job->index);
  g_free (job->captions);
  g_mutex_clear (&job->lock);
}

static gboolean
cancelled (const SynthJob *job)
{
  return g_cancellable_is_cancelled (job->options->cancel);
}

static SynthLeafKind
kind_of (const SynthJob *job, int i, SynthRng *rng)
{
  if (job->klass[i] < 0)
    return synth_kind_random (rng);
  return synth_class_kind (&synth_classes[job->klass[i]], synth_below (rng, SYNTH_N_SHAPES));
}

/* Image i from its own generator: the same bytes in any order. */
static gboolean
draw_one (SynthJob *job, int i, float *rgb, guint8 *bytes, GError **error)
{
  int size = job->options->size;
  SynthRng rng = synth_rng_for (job->options->seed, (guint64) job->split,
                                (guint64) (job->klass[i] + 1), (guint64) job->index[i]);
  SynthLeafKind kind = kind_of (job, i, &rng);
  SynthScene scene;
  synth_scene_sample (&scene, &rng, kind, size, job->split == SYNTH_SPLIT_FINETUNE);
  synth_draw (rgb, &scene);
  if (job->split == SYNTH_SPLIT_FINETUNE)
    {
      SynthCamera camera;
      synth_camera_sample (&camera, &rng);
      synth_camera_apply (rgb, size, &camera, &rng);
    }
  if (job->captions)
    job->captions[i] = synth_caption (kind, &rng);
  synth_to_bytes (bytes, rgb, size * size * 3);
  return synth_write_png (job->paths[i], bytes, size, size, error);
}

static void
draw_range (gpointer data, int begin, int end)
{
  SynthJob *job = data;
  gsize n_values = (gsize) job->options->size * job->options->size * 3;
  float *rgb = g_new (float, n_values);
  guint8 *bytes = g_new (guint8, n_values);
  for (int i = job->offset + begin; i < job->offset + end; i++)
    {
      GError *error = NULL;
      if (cancelled (job) || g_atomic_int_get (&job->failed))
        break;
      if (!draw_one (job, i, rgb, bytes, &error))
        {
          g_mutex_lock (&job->lock);
          if (!job->error)
            job->error = error, error = NULL;
          g_atomic_int_set (&job->failed, 1);
          g_mutex_unlock (&job->lock);
          g_clear_error (&error);
        }
    }
  g_free (rgb);
  g_free (bytes);
}

gboolean
synth_job_run (SynthJob *job, GError **error)
{
  const SynthOptions *o = job->options;
  for (job->offset = 0; job->offset < job->n; job->offset += BATCH)
    {
      if (cancelled (job))
        break;
      synth_parallel_for (MIN (BATCH, job->n - job->offset), GRAIN, draw_range, job);
      if (job->error)
        {
          g_propagate_error (error, job->error);
          job->error = NULL;
          return FALSE;
        }
      if (o->progress)
        o->progress (job->split, MIN (job->offset + BATCH, job->n), job->n, o->progress_data);
    }
  if (!cancelled (job))
    return TRUE;
  /* The caller's own message tells the user; this one is for logs. */
  g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_CANCELLED, "stopped before the end");
  return FALSE;
}
