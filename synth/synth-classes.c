/* synth-classes.c — the class table and its label set. */
#include "synth-classes.h"

#include <json-glib/json-glib.h>

#include "synth-caption.h"

const SynthClass synth_classes[] = {
  { "healthy-green", "Healthy (green leaf)", SYNTH_LEAF_GREEN, SYNTH_HEALTHY, 0 },
  { "chlorosis", "Chlorosis (yellow leaf)", SYNTH_LEAF_YELLOW, SYNTH_HEALTHY, 0 },
  { "senescence", "Senescence (dry brown leaf)", SYNTH_LEAF_BROWN, SYNTH_HEALTHY, 0 },
  { "reddening", "Reddening (red leaf)", SYNTH_LEAF_RED, SYNTH_HEALTHY, 0 },
  { "rust", "Rust (orange spots)", SYNTH_LEAF_GREEN, SYNTH_SPOTS, SYNTH_MARK_ORANGE },
  { "black-spot", "Black spot (black spots)", SYNTH_LEAF_GREEN, SYNTH_SPOTS, SYNTH_MARK_BLACK },
  { "blight", "Blight (brown leaf, black spots)", SYNTH_LEAF_BROWN, SYNTH_SPOTS,
    SYNTH_MARK_BLACK },
  { "powdery-mildew", "Powdery mildew (white powder)", SYNTH_LEAF_GREEN, SYNTH_POWDERY,
    SYNTH_MARK_WHITE },
  { "sooty-mould", "Sooty mould (black powder)", SYNTH_LEAF_GREEN, SYNTH_POWDERY,
    SYNTH_MARK_BLACK },
  { "target-spot", "Target spot (brown rings)", SYNTH_LEAF_GREEN, SYNTH_RINGS,
    SYNTH_MARK_BROWN },
  { "streak", "Streak (brown stripes along the veins)", SYNTH_LEAF_GREEN, SYNTH_STRIPES,
    SYNTH_MARK_BROWN },
  { "pest-damage", "Pest damage (holes)", SYNTH_LEAF_GREEN, SYNTH_HOLES, 0 },
};

const int synth_n_classes = G_N_ELEMENTS (synth_classes);

SynthLeafKind
synth_class_kind (const SynthClass *klass, SynthShape shape)
{
  return (SynthLeafKind) { shape, klass->colour, klass->condition, klass->mark };
}

char *
synth_classes_labels_json (const char *id, const char *title, const char *description)
{
  g_autoptr (JsonBuilder) b = json_builder_new ();
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "id");
  json_builder_add_string_value (b, id);
  json_builder_set_member_name (b, "title");
  json_builder_add_string_value (b, title);
  json_builder_set_member_name (b, "description");
  json_builder_add_string_value (b, description);
  json_builder_set_member_name (b, "source");
  json_builder_add_string_value (b, "agriclip synth");
  json_builder_set_member_name (b, "domain"); // agriclip captions: the crop templates
  json_builder_add_string_value (b, "crop");
  json_builder_set_member_name (b, "templates");
  json_builder_begin_array (b);
  json_builder_end_array (b);
  json_builder_set_member_name (b, "classes");
  json_builder_begin_array (b);
  for (int c = 0; c < synth_n_classes; c++)
    {
      json_builder_begin_object (b);
      json_builder_set_member_name (b, "name");
      json_builder_add_string_value (b, synth_classes[c].name);
      json_builder_set_member_name (b, "display");
      json_builder_add_string_value (b, synth_classes[c].display);
      // what agriclip captions puts into its templates ("black spots on a green leaf")
      json_builder_set_member_name (b, "text");
      g_autofree char *text = synth_prompt (synth_class_kind (&synth_classes[c], 0), 2);
      json_builder_add_string_value (b, text);
      json_builder_set_member_name (b, "prompts");
      json_builder_begin_array (b);
      for (int i = 0; i < SYNTH_N_PROMPTS; i++)
        {
          g_autofree char *prompt = synth_prompt (synth_class_kind (&synth_classes[c], 0), i);
          json_builder_add_string_value (b, prompt);
        }
      json_builder_end_array (b);
      json_builder_end_object (b);
    }
  json_builder_end_array (b);
  json_builder_end_object (b);
  g_autoptr (JsonNode) root = json_builder_get_root (b);
  g_autofree char *text = json_to_string (root, TRUE);
  return g_strconcat (text, "\n", NULL);
}
