/* synth-classes.h — the classes of the synthetic evaluation and
 * fine-tuning sets: leaf colour and condition (and mark colour) fixed,
 * shape free, named like the crop problems they stand for.  Pairs of
 * classes differ in a single attribute (rust / black-spot: mark colour;
 * black-spot / blight: leaf colour; target-spot / streak: condition), so
 * zero-shot accuracy shows whether each word was learnt. */
#pragma once

#include "synth-scene.h"
#include "synth.h" /* synth_n_classes */

typedef struct
{
  const char *name;    /* tag folder and export name */
  const char *display;
  SynthLeafColour colour;
  SynthCondition condition;
  SynthMarkColour mark;
} SynthClass;

extern const SynthClass synth_classes[];

/* The kind of a class's leaves with the given shape. */
SynthLeafKind synth_class_kind (const SynthClass *klass, SynthShape shape);

/* labels.json of a set of these classes (models/labels/README.md): the
 * prompts are synth_prompt ()'s (g_free). */
char *synth_classes_labels_json (const char *id, const char *title, const char *description);
