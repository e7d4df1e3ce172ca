/* synth-caption.c — the caption grammar of synth-caption.h. */
#include "synth-caption.h"

#include <string.h>

typedef struct
{
  const char *word[3];
} Words; /* synonyms, the first the usual one; unused slots NULL */

static const Words colour_words[SYNTH_N_LEAF_COLOURS] = {
  [SYNTH_LEAF_GREEN] = { { "green", "bright green" } },
  [SYNTH_LEAF_YELLOW] = { { "yellow", "yellowed" } },
  [SYNTH_LEAF_BROWN] = { { "brown", "dry brown" } },
  [SYNTH_LEAF_RED] = { { "red", "reddish" } },
};

static const Words shape_words[SYNTH_N_SHAPES] = {
  [SYNTH_SHAPE_OVAL] = { { "oval", "elliptical" } },
  [SYNTH_SHAPE_NARROW] = { { "long narrow", "grass-like", "blade-shaped" } },
  [SYNTH_SHAPE_HEART] = { { "heart-shaped", "cordate" } },
  [SYNTH_SHAPE_LOBED] = { { "lobed", "maple-like", "palmate" } },
  [SYNTH_SHAPE_ROUND] = { { "round", "circular" } },
};

static const Words mark_colour_words[SYNTH_N_MARK_COLOURS] = {
  [SYNTH_MARK_BLACK] = { { "black" } },
  [SYNTH_MARK_WHITE] = { { "white", "whitish" } },
  [SYNTH_MARK_ORANGE] = { { "orange" } },
  [SYNTH_MARK_BROWN] = { { "brown", "dark brown" } },
};

/* Noun phrases of the marks; "%s" is the mark colour. */
static const Words mark_phrases[SYNTH_N_CONDITIONS] = {
  [SYNTH_SPOTS] = { { "%s spots", "small %s spots", "%s dots" } },
  [SYNTH_STRIPES] = { { "%s stripes along the veins", "%s streaks along the veins",
                        "%s stripes" } },
  [SYNTH_RINGS] = { { "%s ring spots", "%s target-like rings", "concentric %s rings" } },
  [SYNTH_HOLES] = { { "holes", "insect bite holes", "holes chewed by pests" } },
  [SYNTH_POWDERY] = { { "%s powdery patches", "%s powder patches", "%s powder" } },
};

static const Words healthy_suffixes = { { ", healthy", " with no marks", " that looks healthy" } };
static const Words healthy_short = { { "healthy", "no marks" } };
static const Words connectors = { { " with ", " covered in ", " showing " } };

/* The usual word half the time, else one of the others; rng NULL: the usual. */
static const char *
pick (const Words *words, SynthRng *rng)
{
  int n = 0;
  while (n < 3 && words->word[n])
    n++;
  if (!rng || n == 1 || synth_chance (rng, 0.5f))
    return words->word[0];
  return words->word[1 + synth_below (rng, n - 1)];
}

static char *
marks_phrase (SynthLeafKind kind, SynthRng *rng)
{
  const char *phrase = pick (&mark_phrases[kind.condition], rng);
  if (!synth_condition_has_marks (kind.condition))
    return g_strdup (phrase);
  GString *s = g_string_new (NULL);
  g_string_append_printf (s, phrase, pick (&mark_colour_words[kind.mark], rng));
  return g_string_free (s, FALSE);
}

/* " with black spots", ", healthy" ... */
static char *
condition_suffix (SynthLeafKind kind, SynthRng *rng)
{
  if (kind.condition == SYNTH_HEALTHY)
    return g_strdup (pick (&healthy_suffixes, rng));
  g_autofree char *marks = marks_phrase (kind, rng);
  /* "showing holes chewed by pests" reads oddly: holes keep "with" */
  const char *connector = kind.condition == SYNTH_HOLES ? " with " : pick (&connectors, rng);
  return g_strconcat (connector, marks, NULL);
}

static char *
condition_short (SynthLeafKind kind, SynthRng *rng)
{
  if (kind.condition == SYNTH_HEALTHY)
    return g_strdup (pick (&healthy_short, rng));
  return marks_phrase (kind, rng);
}

/* Single spaces, no space before a comma or full stop, "a" -> "an"
 * before a vowel. */
static char *
tidy (const char *text)
{
  g_auto (GStrv) words = g_strsplit (text, " ", -1);
  GString *out = g_string_new (NULL);
  for (int i = 0; words[i]; i++)
    {
      if (words[i][0] == '\0')
        continue;
      gboolean punctuation = words[i][0] == ',' || words[i][0] == '.';
      if (out->len > 0 && !punctuation)
        g_string_append_c (out, ' ');
      g_string_append (out, words[i]);
      if (g_str_equal (words[i], "a"))
        for (int j = i + 1; words[j]; j++)
          if (words[j][0] != '\0')
            {
              if (strchr ("aeiou", words[j][0]))
                g_string_append_c (out, 'n');
              break;
            }
    }
  return g_string_free (out, FALSE);
}

/* Template number t of synth-caption.h; shape may be "". */
static char *
render (int t, SynthLeafKind kind, const char *colour, const char *shape, SynthRng *rng)
{
  g_autofree char *text = NULL;
  gboolean healthy = kind.condition == SYNTH_HEALTHY;
  switch (t)
    {
    case 0:
      {
        g_autofree char *cond = condition_suffix (kind, rng);
        text = g_strdup_printf ("a photo of a %s %s leaf%s.", colour, shape, cond);
      }
      break;
    case 1:
    case 4:
      {
        g_autofree char *cond = condition_short (kind, rng);
        text = t == 1 ? g_strdup_printf ("%s %s leaf, %s", shape, colour, cond)
                      : g_strdup_printf ("a %s leaf, %s, %s", shape, colour, cond);
      }
      break;
    case 2:
    case 5:
      {
        g_autofree char *cond = condition_suffix (kind, rng);
        text = g_strdup_printf ("%s%s %s leaf%s", t == 5 ? "close-up of a " : "", colour, shape,
                                cond);
      }
      break;
    case 3:
      if (healthy)
        text = g_strdup_printf ("a healthy %s %s leaf", colour, shape);
      else
        {
          g_autofree char *marks = marks_phrase (kind, rng);
          text = g_strdup_printf ("%s %s a %s %s leaf", marks,
                                  kind.condition == SYNTH_HOLES ? "in" : "on", colour, shape);
        }
      break;
    default:
      if (healthy)
        text = g_strdup_printf ("this %s leaf is %s and healthy", shape, colour);
      else
        {
          g_autofree char *marks = marks_phrase (kind, rng);
          text = g_strdup_printf ("this %s leaf is %s and has %s", shape, colour, marks);
        }
      break;
    }
  return tidy (text);
}

char *
synth_caption (SynthLeafKind kind, SynthRng *rng)
{
  int t = synth_below (rng, 7);
  const char *colour = pick (&colour_words[kind.colour], rng);
  const char *shape = synth_chance (rng, 0.3f) ? "" : pick (&shape_words[kind.shape], rng);
  return render (t, kind, colour, shape, rng);
}

char *
synth_prompt (SynthLeafKind kind, int i)
{
  static const int templates[SYNTH_N_PROMPTS] = { 0, 1, 3, 6 };
  g_return_val_if_fail (i >= 0 && i < SYNTH_N_PROMPTS, NULL);
  return render (templates[i], kind, pick (&colour_words[kind.colour], NULL), "", NULL);
}
