/* synth.h — the synthetic leaf set of `agriclip synth`, the one header a
 * front end includes.  synth_run () writes into options.out:
 *
 *   pretrain/NNNNNN.png, captions.jsonl   random leaves and captions
 *   eval/TAG/NNN.png, labels.json         held-out classes, zero-shot test
 *   finetune/TAG/NNN.png, labels.json     the same classes shot with another
 *                                         camera (synth-camera.h)
 *   .agriclip-synth                       marks the folder as ours
 *
 * Each image is drawn from its own generator, seeded from (seed, split,
 * class, index), so a seed gives the same files byte for byte whatever the
 * thread count (agc_get_threads ()).
 *
 *   SynthOptions o = synth_default_options ();
 *   o.out = "leaves";
 *   if (!synth_run (&o, &error)) ...
 */
#pragma once

#include <gio/gio.h>

/* The three parts of the set.  The value also seeds the generator: never
 * renumber. */
typedef enum
{
  SYNTH_SPLIT_PRETRAIN,
  SYNTH_SPLIT_EVAL,
  SYNTH_SPLIT_FINETUNE,
} SynthSplit;

/* Called from the calling thread after each batch of images: done of total
 * images of split are written. */
typedef void (*SynthProgressFunc) (SynthSplit split, int done, int total, gpointer user_data);

typedef struct
{
  const char *out;        /* folder: new, empty, or an earlier output (replaced) */
  guint64 seed;
  int size;               /* image side in pixels, 16 .. 1024 */
  int n_pretrain;         /* captioned images, 0 .. 10000000 */
  int eval_per_class;     /* 1 .. 100000 */
  int finetune_per_class; /* 1 .. 100000 */
  SynthProgressFunc progress; /* may be NULL */
  gpointer progress_data;
  /* May be NULL.  Cancelled: stop after the images being drawn. */
  GCancellable *cancel;
} SynthOptions;

/* out NULL, seed 0, 64 pixels, 20000 pre-training images, 40 per class. */
SynthOptions synth_default_options (void);

/* Writes the set.  FALSE with the error set on a failure, or with
 * G_IO_ERROR_CANCELLED when cancelled; the folder is then incomplete (its
 * marker says so) and a new run may overwrite it. */
gboolean synth_run (const SynthOptions *options, GError **error);

/* Classes of eval/ and finetune/. */
extern const int synth_n_classes;
