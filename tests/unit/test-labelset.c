/* test-labelset.c — label set files, labels from names, and top-k ranking.
 *
 * Expected prompts are written out by hand from the format in
 * models/labels/README.md; the PlantVillage names are the dataset's folder
 * names. */
#include "agriclip.h"

#include <glib/gstdio.h>
#include <math.h>
#include <string.h>

static char *tmp_dir;

/* Writes content to tmp_dir/file_name and returns the path. */
static char *
write_file (const char *file_name, const char *content, gssize length)
{
  char *path = g_build_filename (tmp_dir, file_name, NULL);
  GError *error = NULL;
  g_file_set_contents (path, content, length, &error);
  g_assert_no_error (error);
  return path;
}

static void
assert_prompts (const AgcLabelSet *set, int class_index, const char *const *expected)
{
  const char *const *prompts = agc_label_set_class_prompts (set, class_index);
  g_assert_nonnull (prompts);
  g_assert_cmpstrv (prompts, expected);
}

/* ---- a valid file ---------------------------------------------------------- */

static const char valid_json[] =
  "{\n"
  "  \"_comment\": \"keys starting with _ are ignored\",\n"
  "  \"id\": \"test-set_1.0\",\n"
  "  \"title\": \"Test set\",\n"
  "  \"description\": \"Two fruits and a tree\",\n"
  "  \"source\": \"written by hand\",\n"
  "  \"templates\": [\"a photo of {}.\", \"{} in a field\"],\n"
  "  \"classes\": [\n"
  "    {\"name\": \"Apple___healthy\", \"display\": \"Apple: healthy\",\n"
  "     \"text\": \"a healthy apple leaf\"},\n"
  "    {\"name\": \"pear\", \"display\": \"Pear\", \"_note\": \"no text\"},\n"
  "    {\"name\": \"Pepper,_bell___Bacterial_spot\", \"display\": \"Pepper\",\n"
  "     \"text\": \"a pepper leaf\", \"prompts\": [\"spots on a pepper leaf\"]},\n"
  "    {\"name\": \"oak tree\", \"display\": \"Oak\", \"use_templates\": false,\n"
  "     \"prompts\": [\"an oak tree\", \"oak leaves\"]}\n"
  "  ]\n"
  "}\n";

static void
test_load_valid (void)
{
  g_autofree char *path = write_file ("valid.json", valid_json, -1);
  GError *error = NULL;
  AgcLabelSet *set = agc_label_set_load (path, &error);
  g_assert_no_error (error);
  g_assert_nonnull (set);

  g_assert_cmpstr (agc_label_set_id (set), ==, "test-set_1.0");
  g_assert_cmpstr (agc_label_set_title (set), ==, "Test set");
  g_assert_cmpstr (agc_label_set_description (set), ==, "Two fruits and a tree");
  g_assert_cmpint (agc_label_set_n_classes (set), ==, 4);

  g_assert_cmpstr (agc_label_set_class_name (set, 0), ==, "Apple___healthy");
  g_assert_cmpstr (agc_label_set_class_display_name (set, 0), ==, "Apple: healthy");
  assert_prompts (set, 0, (const char *[]){ "a photo of a healthy apple leaf.",
                                            "a healthy apple leaf in a field", NULL });
  /* text defaults to the display name */
  g_assert_cmpstr (agc_label_set_class_name (set, 1), ==, "pear");
  assert_prompts (set, 1, (const char *[]){ "a photo of Pear.", "Pear in a field", NULL });
  /* own prompts come after the templates */
  g_assert_cmpstr (agc_label_set_class_name (set, 2), ==, "Pepper,_bell___Bacterial_spot");
  assert_prompts (set, 2, (const char *[]){ "a photo of a pepper leaf.", "a pepper leaf in a field",
                                            "spots on a pepper leaf", NULL });
  /* use_templates false: only its own prompts */
  g_assert_cmpstr (agc_label_set_class_name (set, 3), ==, "oak tree");
  g_assert_cmpstr (agc_label_set_class_display_name (set, 3), ==, "Oak");
  assert_prompts (set, 3, (const char *[]){ "an oak tree", "oak leaves", NULL });

  /* the fields as written, for editors */
  g_assert_cmpstr (agc_label_set_source (set), ==, "written by hand");
  g_assert_cmpstrv (agc_label_set_templates (set),
                    ((const char *[]){ "a photo of {}.", "{} in a field", NULL }));
  g_assert_cmpstr (agc_label_set_class_text (set, 0), ==, "a healthy apple leaf");
  g_assert_null (agc_label_set_class_text (set, 1));
  g_assert_cmpstrv (agc_label_set_class_own_prompts (set, 1), ((const char *[]){ NULL }));
  g_assert_cmpstrv (agc_label_set_class_own_prompts (set, 2),
                    ((const char *[]){ "spots on a pepper leaf", NULL }));
  g_assert_true (agc_label_set_class_uses_templates (set, 2));
  g_assert_false (agc_label_set_class_uses_templates (set, 3));
  agc_label_set_free (set);
}

/* A byte-order mark (added by some editors) is not an error; no description gives "". */
static void
test_load_bom (void)
{
  g_autofree char *path = write_file (
    "bom.json",
    "\xEF\xBB\xBF{\"id\": \"b\", \"title\": \"B\", \"templates\": [\"{}\"],"
    " \"classes\": [{\"name\": \"x\", \"display\": \"\xC3\xA9t\xC3\xA9\"}]}",
    -1);
  GError *error = NULL;
  AgcLabelSet *set = agc_label_set_load (path, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (agc_label_set_description (set), ==, "");
  assert_prompts (set, 0, (const char *[]){ "\xC3\xA9t\xC3\xA9", NULL });
  agc_label_set_free (set);
}

/* ---- invalid files ------------------------------------------------------- */

typedef struct
{
  const char *test_name;
  const char *content; /* a file that differs from a valid one in one way */
  gssize length;       /* -1: NUL-terminated */
  const char *expect[3]; /* substrings of the message besides the file name */
} BadFile;

#define HEAD "\"id\": \"t\", \"title\": \"T\", "
#define TPL "\"templates\": [\"a photo of {}.\"], "
#define CLASS_A "{\"name\": \"a\", \"display\": \"A\"}"
#define NUL_FILE "{" HEAD TPL "\"classes\": [" CLASS_A "]}\0" /* length includes the \0 */

static const BadFile bad_files[] = {
  { "malformed", "{" HEAD TPL "\"classes\": [" CLASS_A ",]}", -1, { "line 1,", "not valid JSON" } },
  { "truncated", "{" HEAD TPL "\"classes\": [", -1, { "line 1," } },
  { "empty-file", "", -1, { "empty" } },
  { "not-an-object", "[1, 2]", -1, { "top level", "an array" } },
  { "invalid-utf8",
    "{" HEAD TPL "\n\"classes\": [\n{\"name\": \"caf\xE9\", \"display\": \"A\"}]}", -1,
    { "invalid UTF-8", "line 3" } },
  { "nul-byte", NUL_FILE, sizeof (NUL_FILE) - 1, { "NUL" } },
  { "unknown-key", "{" HEAD TPL "\"clases\": []}", -1, { "unknown field \"clases\"" } },
  { "missing-id", "{\"title\": \"T\", " TPL "\"classes\": [" CLASS_A "]}", -1,
    { "missing field \"id\"" } },
  { "bad-id", "{\"id\": \"a b\", \"title\": \"T\", " TPL "\"classes\": [" CLASS_A "]}", -1,
    { "\"id\"", "ASCII" } },
  { "id-not-string", "{\"id\": 7, \"title\": \"T\", " TPL "\"classes\": [" CLASS_A "]}", -1,
    { "\"id\" must be a string, not a number" } },
  { "missing-title", "{\"id\": \"t\", " TPL "\"classes\": [" CLASS_A "]}", -1,
    { "missing field \"title\"" } },
  { "missing-templates", "{" HEAD "\"classes\": [" CLASS_A "]}", -1,
    { "missing field \"templates\"" } },
  { "templates-not-array", "{" HEAD "\"templates\": \"a {}\", \"classes\": [" CLASS_A "]}", -1,
    { "\"templates\" must be an array of strings, not a string" } },
  { "template-not-string", "{" HEAD "\"templates\": [\"a {}\", null], \"classes\": [" CLASS_A "]}",
    -1, { "templates[1] must be a string, not null" } },
  { "template-no-placeholder", "{" HEAD "\"templates\": [\"a photo\"], \"classes\": [" CLASS_A "]}",
    -1, { "templates[0] \"a photo\"", "exactly one {}", "found 0" } },
  { "template-two-placeholders",
    "{" HEAD "\"templates\": [\"{}\", \"{} and {}\"], \"classes\": [" CLASS_A "]}", -1,
    { "templates[1] \"{} and {}\"", "found 2" } },
  { "unknown-domain", "{" HEAD TPL "\"domain\": \"poultry\", \"classes\": [" CLASS_A "]}", -1,
    { "\"domain\" \"poultry\"", "crop, livestock, fish" } },
  { "class-domain-not-string",
    "{" HEAD TPL "\"classes\": [{\"name\": \"a\", \"display\": \"A\", \"domain\": 3}]}", -1,
    { "classes[0] \"a\"", "\"domain\" must be a string" } },
  { "attributes-not-array",
    "{" HEAD TPL "\"classes\": [{\"name\": \"a\", \"display\": \"A\", \"attributes\": \"x\"}]}",
    -1, { "classes[0] \"a\"", "\"attributes\" must be an array of strings" } },
  { "missing-classes", "{" HEAD TPL "\"source\": \"s\"}", -1, { "missing field \"classes\"" } },
  { "classes-not-array", "{" HEAD TPL "\"classes\": {}}", -1,
    { "\"classes\" must be an array, not an object" } },
  { "empty-class-list", "{" HEAD TPL "\"classes\": []}", -1, { "class list is empty" } },
  { "class-not-object", "{" HEAD TPL "\"classes\": [" CLASS_A ", \"b\"]}", -1,
    { "classes[1]:", "must be an object, not a string" } },
  { "missing-name", "{" HEAD TPL "\"classes\": [" CLASS_A ", {\"display\": \"B\"}]}", -1,
    { "classes[1]:", "missing field \"name\"" } },
  { "empty-name", "{" HEAD TPL "\"classes\": [{\"name\": \" \", \"display\": \"B\"}]}", -1,
    { "classes[0]:", "\"name\" is empty" } },
  { "name-with-spaces-around",
    "{" HEAD TPL "\"classes\": [{\"name\": \"b \", \"display\": \"B\"}]}", -1,
    { "classes[0]:", "whitespace" } },
  { "name-with-control", "{" HEAD TPL "\"classes\": [{\"name\": \"b\\tc\", \"display\": \"B\"}]}",
    -1, { "classes[0]:", "control character" } },
  { "missing-display", "{" HEAD TPL "\"classes\": [" CLASS_A ", {\"name\": \"b\"}]}", -1,
    { "classes[1] \"b\":", "missing field \"display\"" } },
  { "display-not-string",
    "{" HEAD TPL "\"classes\": [" CLASS_A ", {\"name\": \"b\", \"display\": 3}]}", -1,
    { "classes[1] \"b\":", "\"display\" must be a string, not a number" } },
  { "text-not-string",
    "{" HEAD TPL "\"classes\": [{\"name\": \"b\", \"display\": \"B\", \"text\": [\"x\"]}]}", -1,
    { "classes[0] \"b\":", "\"text\" must be a string, not an array" } },
  { "unknown-class-key",
    "{" HEAD TPL "\"classes\": [{\"name\": \"b\", \"display\": \"B\", \"promts\": []}]}", -1,
    { "classes[0] \"b\":", "unknown field \"promts\"" } },
  { "duplicate-name",
    "{" HEAD TPL "\"classes\": [" CLASS_A ", {\"name\": \"b\", \"display\": \"B\"}, "
    "{\"name\": \"a\", \"display\": \"A again\"}]}", -1,
    { "classes[2] \"a\":", "duplicate" } },
  { "prompts-not-array",
    "{" HEAD TPL "\"classes\": [{\"name\": \"b\", \"display\": \"B\", \"prompts\": \"x\"}]}", -1,
    { "classes[0] \"b\":", "\"prompts\" must be an array of strings, not a string" } },
  { "prompt-not-string",
    "{" HEAD TPL "\"classes\": [{\"name\": \"b\", \"display\": \"B\", \"prompts\": [\"x\", 1]}]}",
    -1, { "classes[0] \"b\":", "prompts[1] must be a string, not a number" } },
  { "prompt-with-placeholder",
    "{" HEAD TPL "\"classes\": [{\"name\": \"b\", \"display\": \"B\", \"prompts\": [\"a {}\"]}]}",
    -1, { "classes[0] \"b\":", "prompts[0] contains {}" } },
  { "use-templates-not-boolean",
    "{" HEAD TPL "\"classes\": [{\"name\": \"b\", \"display\": \"B\", \"use_templates\": 0}]}", -1,
    { "classes[0] \"b\":", "\"use_templates\" must be true or false, not a number" } },
  { "no-prompts-without-templates",
    "{" HEAD "\"templates\": [], \"classes\": [{\"name\": \"b\", \"display\": \"B\"}]}", -1,
    { "classes[0] \"b\":", "has no prompts" } },
  { "no-prompts-with-use-templates-false",
    "{" HEAD TPL "\"classes\": [{\"name\": \"b\", \"display\": \"B\", \"use_templates\": false}]}",
    -1, { "classes[0] \"b\":", "has no prompts", "use_templates" } },
};

static void
test_load_invalid (gconstpointer data)
{
  const BadFile *bad = data;
  g_autofree char *file_name = g_strdup_printf ("%s.json", bad->test_name);
  g_autofree char *path = write_file (file_name, bad->content, bad->length);
  GError *error = NULL;
  AgcLabelSet *set = agc_label_set_load (path, &error);
  g_assert_null (set);
  g_assert_error (error, AGC_ERROR, AGC_ERROR_FORMAT);
  g_test_message ("%s", error->message);
  g_assert_nonnull (strstr (error->message, file_name));
  for (int i = 0; i < 3 && bad->expect[i] != NULL; i++)
    if (strstr (error->message, bad->expect[i]) == NULL)
      g_error ("message \"%s\" lacks \"%s\"", error->message, bad->expect[i]);
  g_error_free (error);
}

/* domain and attributes, for captions: the class's domain, else the file's */
static void
test_load_domain_and_attributes (void)
{
  g_autofree char *path = write_file (
      "domain.json",
      "{" HEAD TPL "\"domain\": \"livestock\", \"classes\": [" CLASS_A ", {\"name\": \"b\", "
      "\"display\": \"B\", \"domain\": \"fish\", \"attributes\": [\"red fins\", \"scales\"]}]}",
      -1);
  GError *error = NULL;
  AgcLabelSet *set = agc_label_set_load (path, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (agc_label_set_class_domain (set, 0), ==, "livestock");
  g_assert_cmpstr (agc_label_set_class_domain (set, 1), ==, "fish");
  g_assert_cmpstrv (agc_label_set_class_attributes (set, 0), ((const char *[]){ NULL }));
  g_assert_cmpstrv (agc_label_set_class_attributes (set, 1),
                    ((const char *[]){ "red fins", "scales", NULL }));
  assert_prompts (set, 1, (const char *[]){ "a photo of B.", NULL }); // prompts unchanged
  agc_label_set_free (set);
}

static void
test_load_missing_file (void)
{
  g_autofree char *path = g_build_filename (tmp_dir, "no-such-labels.json", NULL);
  GError *error = NULL;
  g_assert_null (agc_label_set_load (path, &error));
  g_assert_error (error, AGC_ERROR, AGC_ERROR_IO);
  g_assert_nonnull (strstr (error->message, "no-such-labels.json"));
  g_error_free (error);
}

/* ---- labels from names ---------------------------------------------------- */

static void
test_from_names (void)
{
  const char *names[] = { "healthy leaf", "leaf rust" };
  GError *error = NULL;
  AgcLabelSet *set = agc_label_set_new_from_names (names, 2, NULL, 0, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (agc_label_set_id (set), ==, "custom");
  g_assert_cmpint (agc_label_set_n_classes (set), ==, 2);
  g_assert_cmpstr (agc_label_set_class_name (set, 1), ==, "leaf rust");
  g_assert_cmpstr (agc_label_set_class_display_name (set, 1), ==, "leaf rust");
  assert_prompts (set, 0, (const char *[]){ "a photo of a healthy leaf.", NULL });
  assert_prompts (set, 1, (const char *[]){ "a photo of a leaf rust.", NULL });
  agc_label_set_free (set);

  const char *templates[] = { "{}", "a close-up of {} on a leaf" };
  set = agc_label_set_new_from_names (names, 2, templates, 2, &error);
  g_assert_no_error (error);
  assert_prompts (set, 1, (const char *[]){ "leaf rust", "a close-up of leaf rust on a leaf", NULL });
  agc_label_set_free (set);
}

static void
test_from_names_invalid (void)
{
  GError *error = NULL;
  const char *dup[] = { "rust", "blight", "rust" };
  g_assert_null (agc_label_set_new_from_names (dup, 3, NULL, 0, &error));
  g_assert_error (error, AGC_ERROR, AGC_ERROR_INPUT);
  g_assert_nonnull (strstr (error->message, "duplicate"));
  g_assert_nonnull (strstr (error->message, "names[2] \"rust\""));
  g_clear_error (&error);

  const char *names[] = { "rust" };
  const char *bad_template[] = { "a photo of {}", "no placeholder" };
  g_assert_null (agc_label_set_new_from_names (names, 1, bad_template, 2, &error));
  g_assert_error (error, AGC_ERROR, AGC_ERROR_INPUT);
  g_assert_nonnull (strstr (error->message, "\"no placeholder\""));
  g_clear_error (&error);

  g_assert_null (agc_label_set_new_from_names (names, 0, NULL, 0, &error));
  g_assert_error (error, AGC_ERROR, AGC_ERROR_INPUT);
  g_clear_error (&error);

  const char *bad_names[][1] = { { "" }, { "caf\xE9" }, { "two\nlines" }, { " padded" } };
  for (guint i = 0; i < G_N_ELEMENTS (bad_names); i++)
    {
      g_assert_null (agc_label_set_new_from_names (bad_names[i], 1, NULL, 0, &error));
      g_assert_error (error, AGC_ERROR, AGC_ERROR_INPUT);
      g_assert_nonnull (strstr (error->message, "names[0]"));
      g_assert_true (g_utf8_validate (error->message, -1, NULL)); /* the bad name is not echoed */
      g_clear_error (&error);
    }
}

/* ---- top-k ---------------------------------------------------------------- */

static void
test_top_k (void)
{
  const float probs[] = { 0.1f, 0.3f, 0.05f, 0.3f, 0.2f, 0.05f };
  int indices[8];
  memset (indices, 0xff, sizeof indices);

  g_assert_cmpint (agc_top_k (probs, 6, 3, indices), ==, 3);
  g_assert_cmpint (indices[0], ==, 1); /* tie 1 / 3: class order */
  g_assert_cmpint (indices[1], ==, 3);
  g_assert_cmpint (indices[2], ==, 4);

  /* k larger than the class count is clamped; the full order is a stable sort */
  g_assert_cmpint (agc_top_k (probs, 6, 8, indices), ==, 6);
  const int all[] = { 1, 3, 4, 0, 2, 5 };
  for (int i = 0; i < 6; i++)
    g_assert_cmpint (indices[i], ==, all[i]);
  g_assert_cmpint (indices[6], ==, -1); /* nothing written past n_classes */

  g_assert_cmpint (agc_top_k (probs, 6, 0, indices), ==, 0);

  /* all equal: identity order; NaN sorts last */
  const float equal[] = { 0.25f, 0.25f, 0.25f, 0.25f };
  g_assert_cmpint (agc_top_k (equal, 4, 4, indices), ==, 4);
  for (int i = 0; i < 4; i++)
    g_assert_cmpint (indices[i], ==, i);
  const float with_nan[] = { NAN, 0.1f, 0.9f };
  g_assert_cmpint (agc_top_k (with_nan, 3, 3, indices), ==, 3);
  g_assert_cmpint (indices[0], ==, 2);
  g_assert_cmpint (indices[1], ==, 1);
  g_assert_cmpint (indices[2], ==, 0);
}

/* ---- the shipped label sets ------------------------------------------------- */

/* The class folders of the PlantVillage dataset, spelled as the dataset does. */
static const char *const plantvillage_folders[] = {
  "Apple___Apple_scab", "Apple___Black_rot", "Apple___Cedar_apple_rust", "Apple___healthy",
  "Blueberry___healthy", "Cherry_(including_sour)___Powdery_mildew",
  "Cherry_(including_sour)___healthy", "Corn_(maize)___Cercospora_leaf_spot Gray_leaf_spot",
  "Corn_(maize)___Common_rust_", "Corn_(maize)___Northern_Leaf_Blight", "Corn_(maize)___healthy",
  "Grape___Black_rot", "Grape___Esca_(Black_Measles)", "Grape___Leaf_blight_(Isariopsis_Leaf_Spot)",
  "Grape___healthy", "Orange___Haunglongbing_(Citrus_greening)", "Peach___Bacterial_spot",
  "Peach___healthy", "Pepper,_bell___Bacterial_spot", "Pepper,_bell___healthy",
  "Potato___Early_blight", "Potato___Late_blight", "Potato___healthy", "Raspberry___healthy",
  "Soybean___healthy", "Squash___Powdery_mildew", "Strawberry___Leaf_scorch",
  "Strawberry___healthy", "Tomato___Bacterial_spot", "Tomato___Early_blight",
  "Tomato___Late_blight", "Tomato___Leaf_Mold", "Tomato___Septoria_leaf_spot",
  "Tomato___Spider_mites Two-spotted_spider_mite", "Tomato___Target_Spot",
  "Tomato___Tomato_Yellow_Leaf_Curl_Virus", "Tomato___Tomato_mosaic_virus", "Tomato___healthy",
};

static char *
labels_dir (void)
{
  const char *source_dir = g_getenv ("AGC_SOURCE_DIR");
  g_assert_nonnull (source_dir);
  return g_build_filename (source_dir, "models", "labels", NULL);
}

static void
test_shipped_sets (void)
{
  g_autofree char *dir_path = labels_dir ();
  GError *error = NULL;
  GDir *dir = g_dir_open (dir_path, 0, &error);
  g_assert_no_error (error);
  int n_files = 0;
  for (const char *entry; (entry = g_dir_read_name (dir)) != NULL;)
    {
      if (!g_str_has_suffix (entry, ".json"))
        continue;
      g_autofree char *path = g_build_filename (dir_path, entry, NULL);
      AgcLabelSet *set = agc_label_set_load (path, &error);
      g_assert_no_error (error);
      g_test_message ("%s: %s, %d classes", entry, agc_label_set_id (set),
                      agc_label_set_n_classes (set));
      g_assert_cmpint (agc_label_set_n_classes (set), >=, 2);
      for (int c = 0; c < agc_label_set_n_classes (set); c++)
        {
          const char *const *prompts = agc_label_set_class_prompts (set, c);
          g_assert_cmpuint (g_strv_length ((char **) prompts), >=, 2);
        }
      agc_label_set_free (set);
      n_files++;
    }
  g_dir_close (dir);
  g_assert_cmpint (n_files, >=, 3);
}

static void
test_plantvillage_names (void)
{
  g_autofree char *dir_path = labels_dir ();
  g_autofree char *path = g_build_filename (dir_path, "plantvillage.json", NULL);
  GError *error = NULL;
  AgcLabelSet *set = agc_label_set_load (path, &error);
  g_assert_no_error (error);
  g_assert_cmpint (agc_label_set_n_classes (set), ==, G_N_ELEMENTS (plantvillage_folders));
  for (guint i = 0; i < G_N_ELEMENTS (plantvillage_folders); i++)
    g_assert_cmpstr (agc_label_set_class_name (set, (int) i), ==, plantvillage_folders[i]);
  agc_label_set_free (set);
}

static void
test_other_shipped_sets (void)
{
  g_autofree char *dir_path = labels_dir ();
  struct { const char *file, *names[4]; } sets[] = {
    { "cattle-breeds.json", { "holstein_friesian", "gir", "sahiwal", "red_sindhi" } },
    { "fish-species.json", { "nile_tilapia", "rohu", "catla", "pangasius" } },
  };
  for (guint s = 0; s < G_N_ELEMENTS (sets); s++)
    {
      g_autofree char *path = g_build_filename (dir_path, sets[s].file, NULL);
      GError *error = NULL;
      AgcLabelSet *set = agc_label_set_load (path, &error);
      g_assert_no_error (error);
      for (int n = 0; n < 4; n++)
        {
          gboolean found = FALSE;
          for (int c = 0; c < agc_label_set_n_classes (set); c++)
            found |= g_strcmp0 (agc_label_set_class_name (set, c), sets[s].names[n]) == 0;
          if (!found)
            g_error ("%s lacks %s", sets[s].file, sets[s].names[n]);
        }
      agc_label_set_free (set);
    }
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  GError *error = NULL;
  tmp_dir = g_dir_make_tmp ("test-labelset-XXXXXX", &error);
  g_assert_no_error (error);

  g_test_add_func ("/labelset/load/valid", test_load_valid);
  g_test_add_func ("/labelset/load/bom", test_load_bom);
  g_test_add_func ("/labelset/load/missing-file", test_load_missing_file);
  g_test_add_func ("/labelset/load/domain-and-attributes", test_load_domain_and_attributes);
  for (guint i = 0; i < G_N_ELEMENTS (bad_files); i++)
    {
      g_autofree char *name = g_strdup_printf ("/labelset/load/invalid/%s", bad_files[i].test_name);
      g_test_add_data_func (name, &bad_files[i], test_load_invalid);
    }
  g_test_add_func ("/labelset/from-names/valid", test_from_names);
  g_test_add_func ("/labelset/from-names/invalid", test_from_names_invalid);
  g_test_add_func ("/labelset/top-k", test_top_k);
  g_test_add_func ("/labelset/shipped/all-load", test_shipped_sets);
  g_test_add_func ("/labelset/shipped/plantvillage-names", test_plantvillage_names);
  g_test_add_func ("/labelset/shipped/cattle-and-fish", test_other_shipped_sets);
  int status = g_test_run ();

  /* remove the files the tests wrote */
  GDir *dir = g_dir_open (tmp_dir, 0, NULL);
  for (const char *entry; dir != NULL && (entry = g_dir_read_name (dir)) != NULL;)
    {
      g_autofree char *path = g_build_filename (tmp_dir, entry, NULL);
      g_unlink (path);
    }
  if (dir != NULL)
    g_dir_close (dir);
  g_rmdir (tmp_dir);
  g_free (tmp_dir);
  return status;
}
