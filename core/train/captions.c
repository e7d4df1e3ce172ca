/* captions.c — image-text pairs from a tagged folder (agc_captions_write):
 * the prompt generation of AgriCLIP's ALive set, where expert class labels
 * become varied captions through templates of the class's domain (crops,
 * livestock, fishery).
 *
 * A class's candidates are, in this order: every template of its domain
 * with {} replaced by the class text (its "text", else its display name),
 * every attribute template with each of its "attributes", and its own
 * "prompts".  A photo's captions are the first N of the candidates in an
 * order shuffled by (seed, FNV-1a of the photo's path inside the folder),
 * wrapping around when N exceeds them: the same photo gets the same
 * captions whatever else the folder holds. */
#define _DEFAULT_SOURCE // realpath, symlink
#include "train/dataset.h"

#include "formats/safetensors-write.h"
#include "support/error.h"

#include <errno.h>
#include <json-glib/json-glib.h>
#include <stdlib.h>
#include <string.h>

#define PHOTOS_LINK "photos"
#define CAPTIONS_FILE "captions.jsonl"

typedef struct
{
  const char *domain;           /* "" for classes without one */
  const char *const *templates; /* {}: the class text */
  const char *const *with;      /* {}: the class text, then %s: one attribute */
} Family;

static const char *const general_templates[] = {
  "a photo of {}.", "a close-up photo of {}.", "an image of {}.", "a cropped photo of {}.",
  "a bright photo of {}.", NULL,
};
static const char *const general_with[] = { "a photo of {} with %s.", "{}, showing %s.", NULL };

static const char *const crop_templates[] = {
  "a photo of {}.",          "a close-up photo of {}.",       "a field photo of {}.",
  "{} growing in a field.",  "an agricultural photo of {}.",  "a crop image showing {}.",
  "{}, photographed on a farm.", NULL,
};
static const char *const crop_with[] = {
  "a photo of {} with %s.", "{}, showing %s.", "a close-up of {}: %s.", NULL,
};

static const char *const livestock_templates[] = {
  "a photo of {}.",          "a photo of {} on a farm.",   "{} grazing in a pasture.",
  "{} standing in a barn.",  "a livestock photo of {}.",   "a farm animal: {}.", NULL,
};
static const char *const livestock_with[] = {
  "a photo of {} with %s.", "{}, recognisable by %s.", NULL,
};

static const char *const fish_templates[] = {
  "a photo of {}.",           "a photo of {}, a type of fish.", "{} in a fish farm.",
  "{} caught by a fisherman.", "a fishery photo of {}.",        "a close-up photo of {} on ice.",
  NULL,
};
static const char *const fish_with[] = { "a photo of {} with %s.", "{}, a fish with %s.", NULL };

static const Family families[] = {
  { "", general_templates, general_with },
  { "crop", crop_templates, crop_with },
  { "livestock", livestock_templates, livestock_with },
  { "fish", fish_templates, fish_with },
};

static const Family *
family_of (const char *domain)
{
  for (guint i = 0; i < G_N_ELEMENTS (families); i++)
    if (strcmp (families[i].domain, domain) == 0)
      return &families[i];
  return &families[0]; // labelset.c admits no other domain
}

/* template with its {} replaced by text (and %s by attribute). */
static char *
fill (const char *template, const char *text, const char *attribute)
{
  const char *at = strstr (template, "{}");
  g_autofree char *filled
      = g_strdup_printf ("%.*s%s%s", (int) (at - template), template, text, at + 2);
  if (attribute == NULL)
    return g_steal_pointer (&filled);
  GString *out = g_string_new (NULL);
  const char *s = strstr (filled, "%s");
  g_string_append_len (out, filled, s - filled);
  g_string_append (out, attribute);
  g_string_append (out, s + 2);
  return g_string_free (out, FALSE);
}

char **
agc_caption_candidates (const AgcLabelSet *labels, int class_index)
{
  g_return_val_if_fail (labels != NULL, NULL);
  g_return_val_if_fail (class_index >= 0 && class_index < agc_label_set_n_classes (labels),
                        NULL);
  const Family *family = family_of (agc_label_set_class_domain (labels, class_index));
  const char *text = agc_label_set_class_text (labels, class_index);
  if (text == NULL)
    text = agc_label_set_class_display_name (labels, class_index);
  GPtrArray *out = g_ptr_array_new ();
  for (const char *const *t = family->templates; *t != NULL; t++)
    g_ptr_array_add (out, fill (*t, text, NULL));
  const char *const *attributes = agc_label_set_class_attributes (labels, class_index);
  for (const char *const *t = family->with; *t != NULL; t++)
    for (const char *const *a = attributes; *a != NULL; a++)
      g_ptr_array_add (out, fill (*t, text, *a));
  for (const char *const *p = agc_label_set_class_own_prompts (labels, class_index); *p != NULL;
       p++)
    g_ptr_array_add (out, g_strdup (*p));
  g_ptr_array_add (out, NULL);
  return (char **) g_ptr_array_free (out, FALSE);
}

/* FNV-1a: a stable hash of a path, the photo's stream of the seed. */
static guint64
path_hash (const char *path)
{
  guint64 h = 0xcbf29ce484222325ull;
  for (const guchar *p = (const guchar *) path; *p != '\0'; p++)
    h = (h ^ *p) * 0x100000001b3ull;
  return h;
}

AgcCaptionParams
agc_caption_default_params (void)
{
  return (AgcCaptionParams){ .per_image = 3, .seed = 0 };
}

static gboolean
fail_at (GError **error, AgcErrorCode code, const char *path, const char *problem)
{
  g_autofree char *shown = g_filename_display_name (path);
  return agc_fail_at (error, code, shown, "%s", problem);
}

/* out_dir/photos: a link to the folder (absolute), made or found there. */
static gboolean
link_photos (const char *out_dir, const char *data_real, GError **error)
{
  g_autofree char *link = g_build_filename (out_dir, PHOTOS_LINK, NULL);
  g_autofree char *target = g_file_read_link (link, NULL);
  if (target != NULL && strcmp (target, data_real) == 0)
    return TRUE;
  if (target != NULL || g_file_test (link, G_FILE_TEST_EXISTS)
      || g_file_test (link, G_FILE_TEST_IS_SYMLINK))
    return fail_at (error, AGC_ERROR_INPUT, link,
                    "exists and is not a link to the tagged folder: not replaced (write the "
                    "captions to a new folder)");
  if (symlink (data_real, link) != 0)
    {
      int saved = errno;
      return fail_at (error, AGC_ERROR_IO, link, g_strerror (saved));
    }
  return TRUE;
}

/* The JSON line of one pair. */
static void
append_pair (GString *lines, const char *image, const char *caption)
{
  g_autoptr (JsonBuilder) b = json_builder_new ();
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "image");
  json_builder_add_string_value (b, image);
  json_builder_set_member_name (b, "caption");
  json_builder_add_string_value (b, caption);
  json_builder_end_object (b);
  g_autoptr (JsonNode) root = json_builder_get_root (b);
  g_autofree char *line = json_to_string (root, FALSE);
  g_string_append (lines, line);
  g_string_append_c (lines, '\n');
}

/* Every pair of the dataset, the images as PHOTOS_LINK/TAG/… */
static int
write_pairs (GString *lines, const AgcDataset *data, const AgcCaptionParams *params)
{
  int n_pairs = 0;
  for (int i = 0; i < data->n_files; i++)
    {
      // files are g_build_filename (DIR, TAG, …): the part from TAG on
      const char *tag = agc_label_set_class_name (data->labels, data->class_of[i]);
      g_autofree char *folder = g_build_filename (data->dir, tag, NULL);
      g_autofree char *inside
          = g_build_filename (tag, data->files[i] + strlen (folder), NULL);
      if (!g_utf8_validate (inside, -1, NULL))
        {
          // JSON holds UTF-8 text alone
          g_autofree char *shown = g_filename_display_name (data->files[i]);
          GError *problem = g_error_new (AGC_ERROR, AGC_ERROR_INPUT,
                                         "%s: its name is not UTF-8; skipped", shown);
          if (params->report != NULL)
            params->report (problem, params->user_data);
          g_error_free (problem);
          continue;
        }
      g_auto (GStrv) candidates = agc_caption_candidates (data->labels, data->class_of[i]);
      int n = (int) g_strv_length (candidates);
      int *order = g_new (int, n);
      for (int k = 0; k < n; k++)
        order[k] = k;
      agc_shuffle (order, n, params->seed, path_hash (inside));
      g_autofree char *image = g_build_filename (PHOTOS_LINK, inside, NULL);
      for (int k = 0; k < params->per_image; k++)
        append_pair (lines, image, candidates[order[k % n]]);
      n_pairs += params->per_image;
      g_free (order);
    }
  return n_pairs;
}

/* path resolved as far as it exists (links followed), the rest appended:
 * where a folder not made yet will be. */
static char *
resolve_to_be (const char *path)
{
  char *real = realpath (path, NULL);
  if (real != NULL)
    return real;
  g_autofree char *parent = g_path_get_dirname (path);
  g_autofree char *name = g_path_get_basename (path);
  if (strcmp (parent, path) == 0)
    return g_strdup (path);
  g_autofree char *resolved = resolve_to_be (parent);
  return g_build_filename (resolved, name, NULL);
}

/* OUT made when missing, unless inside DATA (it would become one more tag
 * folder); *data_real the folder's absolute path. */
static gboolean
prepare_out (const char *data_dir, const char *out_dir, char **data_real, GError **error)
{
  g_autofree char *absolute = g_canonicalize_filename (out_dir, NULL);
  g_autofree char *out_real = resolve_to_be (absolute);
  *data_real = realpath (data_dir, NULL);
  if (*data_real == NULL)
    return fail_at (error, AGC_ERROR_IO, data_dir, "cannot resolve the folder's path");
  size_t n_data = strlen (*data_real);
  if (strncmp (out_real, *data_real, n_data) == 0
      && (out_real[n_data] == '\0' || G_IS_DIR_SEPARATOR (out_real[n_data])))
    return fail_at (error, AGC_ERROR_INPUT, out_dir,
                    "is inside the tagged folder; write the captions to a folder outside it");
  if (g_mkdir_with_parents (out_dir, 0755) != 0)
    {
      int saved = errno;
      return fail_at (error, AGC_ERROR_IO, out_dir, g_strerror (saved));
    }
  return TRUE;
}

gboolean
agc_captions_write (const char *data_dir, const char *out_dir, const AgcCaptionParams *params,
                    int *n_pairs, GError **error)
{
  g_return_val_if_fail (data_dir != NULL && out_dir != NULL && params != NULL, FALSE);
  if (params->per_image < 1 || params->per_image > AGC_CAPTIONS_MAX_PER_IMAGE)
    {
      g_set_error (error, AGC_ERROR, AGC_ERROR_INPUT,
                   "captions per image must be between 1 and %d, not %d",
                   AGC_CAPTIONS_MAX_PER_IMAGE, params->per_image);
      return FALSE;
    }
  AgcDataset *data = agc_dataset_open (data_dir, params->report, params->user_data, error);
  if (data == NULL)
    return FALSE;
  g_autofree char *data_real = NULL;
  g_autofree char *path = g_build_filename (out_dir, CAPTIONS_FILE, NULL);
  GString *lines = g_string_new (NULL);
  int n = 0;
  gboolean ok = prepare_out (data_dir, out_dir, &data_real, error);
  if (ok && (n = write_pairs (lines, data, params)) == 0)
    ok = fail_at (error, AGC_ERROR_INPUT, data_dir, "no photo could be named in captions");
  ok = ok && link_photos (out_dir, data_real, error)
       && agc_write_file_atomic (path, lines->str, lines->len, TRUE, error);
  if (ok && n_pairs != NULL)
    *n_pairs = n;
  g_string_free (lines, TRUE);
  agc_dataset_free (data);
  return ok;
}
