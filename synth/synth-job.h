/* synth-job.h — a list of images to draw and the files to write them to,
 * drawn on all threads in batches, with progress and cancellation between
 * batches. */
#pragma once

#include "synth.h"

typedef struct
{
  const SynthOptions *options;
  SynthSplit split;
  int n;
  char **paths;    /* [n] */
  int *klass;      /* [n] class index; -1: a random kind (pre-training) */
  int *index;      /* [n] index within the class: the generator's stream */
  char **captions; /* [n] pre-training captions, filled when drawn; else NULL */
  /* while drawing */
  int offset;      /* first item of the batch being drawn */
  gint failed;
  GMutex lock;
  GError *error;   /* the first failure */
} SynthJob;

/* n images of split, paths, classes and indices for the caller to fill;
 * with_captions: keep a caption per image. */
void synth_job_init (SynthJob *job, const SynthOptions *options, SynthSplit split, int n,
                     gboolean with_captions);
void synth_job_clear (SynthJob *job);

/* Draws and writes every image.  FALSE on a write error or, with
 * G_IO_ERROR_CANCELLED, when options->cancel is set. */
gboolean synth_job_run (SynthJob *job, GError **error);
