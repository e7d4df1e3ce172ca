/* synth-caption.h — captions of the synthetic leaves, so that a CLIP
 * trained on them learns words rather than one sentence.
 *
 * Grammar (square brackets: left out in about one caption in three):
 *
 *   0  a photo of a COLOUR [SHAPE] leaf COND.
 *   1  [SHAPE] COLOUR leaf, SHORT
 *   2  COLOUR [SHAPE] leaf COND
 *   3  MARKS on a COLOUR [SHAPE] leaf   (holes: "MARKS in a ...";
 *                                        healthy: "a healthy COLOUR [SHAPE] leaf")
 *   4  a [SHAPE] leaf, COLOUR, SHORT
 *   5  close-up of a COLOUR [SHAPE] leaf COND
 *   6  this [SHAPE] leaf is COLOUR and has MARKS   (healthy: "... is COLOUR and healthy")
 *
 *   COLOUR  green | bright green;  yellow | yellowed;  brown | dry brown;  red | reddish
 *   SHAPE   oval | elliptical;  long narrow | grass-like | blade-shaped;
 *           heart-shaped | cordate;  lobed | maple-like | palmate;  round | circular
 *   MARKS   spots:   M spots | small M spots | M dots
 *           stripes: M stripes along the veins | M streaks along the veins | M stripes
 *           rings:   M ring spots | M target-like rings | concentric M rings
 *           holes:   holes | insect bite holes | holes chewed by pests
 *           powdery: M powdery patches | M powder patches | M powder
 *   M       black;  white | whitish;  orange;  brown | dark brown
 *   COND    " with MARKS" | " covered in MARKS" | " showing MARKS";
 *           healthy: ", healthy" | " with no marks" | " that looks healthy"
 *   SHORT   MARKS; healthy: "healthy" | "no marks"
 *
 * A mark colour always comes right before the word that names the marks
 * (spots, dots, stripes, streaks, ring, target-like, rings, powdery,
 * powder), so a reader can tell it from the leaf's colour.  The first word
 * of each list is the most frequent (half the time) and the one the
 * evaluation prompts use.  "a" becomes "an" before a vowel. */
#pragma once

#include "synth-scene.h"

/* A random caption of a leaf of this kind (g_free). */
char *synth_caption (SynthLeafKind kind, SynthRng *rng);

/* The evaluation prompts of a class: no shape, first words only. */
#define SYNTH_N_PROMPTS 4
/* Prompt number i (0 .. SYNTH_N_PROMPTS - 1) for a kind (g_free);
 * kind.shape is ignored. */
char *synth_prompt (SynthLeafKind kind, int i);
