/* agriclip-manifest.c — agriclip.json, or the released layout's defaults. */
#include "models/agriclip-manifest.h"
#include "support/folder.h"
#include "support/json-file.h"

#include "agriclip.h"

#include <json-glib/json-glib.h>
#include <string.h>

#define WEIGHTS_DIR "Weights"
#define DEFAULT_IMAGE_WEIGHTS "Weights/dino_pretrain.pth"
#define ALIGNER_PREFIX "Agri_Dino_aligner_"
#define ALIGNER_SUFFIX ".pth"

void
agc_agriclip_manifest_clear (AgcAgriclipManifest *manifest)
{
  g_clear_pointer (&manifest->image_weights, g_free);
  g_clear_pointer (&manifest->image_prefix, g_free);
  g_clear_pointer (&manifest->aligner, g_free);
  g_clear_pointer (&manifest->text_model, g_free);
  manifest->temperature = 0.0;
  manifest->image_size = 0;
}

/* The names of Weights/Agri_Dino_aligner_*.pth, sorted (the Model Zoo's aligners). */
static GPtrArray *
list_aligners (const char *dir)
{
  GPtrArray *names = g_ptr_array_new_with_free_func (g_free);
  g_autofree char *weights_dir = g_build_filename (dir, WEIGHTS_DIR, NULL);
  g_autoptr (GPtrArray) listed = agc_list_folder (weights_dir, NULL);
  for (guint i = 0; listed != NULL && i < listed->len; i++)
    {
      const char *name = listed->pdata[i];
      if (g_str_has_prefix (name, ALIGNER_PREFIX) && g_str_has_suffix (name, ALIGNER_SUFFIX))
        g_ptr_array_add (names, g_strconcat (WEIGHTS_DIR, "/", name, NULL));
    }
  return names;
}

static gboolean
exists_in (const char *dir, const char *relative)
{
  g_autofree char *path = g_build_filename (dir, relative, NULL);
  return g_file_test (path, G_FILE_TEST_EXISTS);
}

gboolean
agc_agriclip_is_folder (const char *dir)
{
  g_return_val_if_fail (dir != NULL, FALSE);
  if (exists_in (dir, AGC_AGRICLIP_MANIFEST) || exists_in (dir, DEFAULT_IMAGE_WEIGHTS))
    return TRUE;
  g_autoptr (GPtrArray) aligners = list_aligners (dir);
  return aligners->len > 0;
}

/* ---- JSON ------------------------------------------------------------------ */

static gboolean
fail_key (GError **error, int code, const char *key, const char *problem)
{
  g_set_error (error, AGC_ERROR, code, AGC_AGRICLIP_MANIFEST ": %s %s", key, problem);
  return FALSE;
}

/* Every member of object is among allowed (NULL-terminated). */
static gboolean
check_keys (JsonObject *object, const char *const *allowed, const char *section, GError **error)
{
  g_autoptr (GList) members = json_object_get_members (object);
  for (GList *m = members; m != NULL; m = m->next)
    if (!g_strv_contains (allowed, m->data))
      {
        g_autofree char *list = g_strjoinv (", ", (char **) allowed);
        g_set_error (error, AGC_ERROR, AGC_ERROR_FORMAT,
                     AGC_AGRICLIP_MANIFEST ": unknown key \"%s%s\" (known: %s)", section,
                     (const char *) m->data, list);
        return FALSE;
      }
  return TRUE;
}

/* *value = the string at member (left alone when absent); key names it in messages. */
static gboolean
read_string (const char **value, JsonObject *object, const char *member, const char *key,
             GError **error)
{
  JsonNode *node = json_object_get_member (object, member);
  if (node == NULL)
    return TRUE;
  if (!JSON_NODE_HOLDS_VALUE (node) || json_node_get_value_type (node) != G_TYPE_STRING)
    return fail_key (error, AGC_ERROR_FORMAT, key, "must be a string");
  *value = json_node_get_string (node);
  return TRUE;
}

static gboolean
read_temperature (double *value, JsonObject *object, GError **error)
{
  JsonNode *node = json_object_get_member (object, "temperature");
  if (node == NULL)
    return TRUE;
  GType type = JSON_NODE_HOLDS_VALUE (node) ? json_node_get_value_type (node) : G_TYPE_INVALID;
  if (type != G_TYPE_INT64 && type != G_TYPE_DOUBLE)
    return fail_key (error, AGC_ERROR_FORMAT, "temperature", "must be a number");
  double t = type == G_TYPE_INT64 ? (double) json_node_get_int (node) : json_node_get_double (node);
  // beyond 1e4 the softmax of cosines is an argmax in float32 anyway
  if (!(t > 0.0 && t <= 1e4))
    return fail_key (error, AGC_ERROR_FORMAT, "temperature", "must be above 0 and at most 10000");
  *value = t;
  return TRUE;
}

static gboolean
read_image_size (int *value, JsonObject *object, GError **error)
{
  JsonNode *node = json_object_get_member (object, "image_size");
  if (node == NULL)
    return TRUE;
  gint64 size = JSON_NODE_HOLDS_VALUE (node) && json_node_get_value_type (node) == G_TYPE_INT64
                  ? json_node_get_int (node)
                  : -1;
  if (size < AGC_AGRICLIP_MIN_IMAGE_SIZE || size > AGC_AGRICLIP_MAX_IMAGE_SIZE)
    return fail_key (error, AGC_ERROR_FORMAT, "image_size",
                     "must be a whole number of pixels from "
                     G_STRINGIFY (AGC_AGRICLIP_MIN_IMAGE_SIZE) " to "
                     G_STRINGIFY (AGC_AGRICLIP_MAX_IMAGE_SIZE));
  *value = (int) size;
  return TRUE;
}

/* The manifest's values, pointing into the parser's tree (NULL: absent). */
typedef struct
{
  const char *image_weights, *image_prefix, *aligner, *text_model;
  double temperature;
  int image_size;
} Fields;

static gboolean
read_image_encoder (Fields *fields, JsonObject *root, GError **error)
{
  JsonNode *node = json_object_get_member (root, "image_encoder");
  if (node == NULL)
    return TRUE;
  if (!JSON_NODE_HOLDS_OBJECT (node))
    return fail_key (error, AGC_ERROR_FORMAT, "image_encoder", "must be an object");
  JsonObject *object = json_node_get_object (node);
  static const char *const keys[] = { "type", "weights", "prefix", NULL };
  const char *type = "resnet50";
  if (!check_keys (object, keys, "image_encoder.", error)
      || !read_string (&type, object, "type", "image_encoder.type", error)
      || !read_string (&fields->image_weights, object, "weights", "image_encoder.weights", error)
      || !read_string (&fields->image_prefix, object, "prefix", "image_encoder.prefix", error))
    return FALSE;
  if (strcmp (type, "resnet50") != 0)
    {
      g_set_error (error, AGC_ERROR, AGC_ERROR_UNSUPPORTED,
                   AGC_AGRICLIP_MANIFEST ": image_encoder.type \"%s\" is not supported; the "
                   "only image encoder is \"resnet50\" (AgriCLIP's DINO ResNet-50)",
                   type);
      return FALSE;
    }
  return TRUE;
}

static gboolean
read_manifest (Fields *fields, JsonParser *parser, const char *path, GError **error)
{
  if (!agc_json_parse_file (parser, path, AGC_AGRICLIP_MANIFEST, error))
    return FALSE;
  JsonNode *root_node = json_parser_get_root (parser);
  if (root_node == NULL || !JSON_NODE_HOLDS_OBJECT (root_node))
    {
      g_set_error (error, AGC_ERROR, AGC_ERROR_FORMAT,
                   AGC_AGRICLIP_MANIFEST ": expected a JSON object");
      return FALSE;
    }
  JsonObject *root = json_node_get_object (root_node);
  static const char *const keys[] = { "family", "image_encoder", "aligner", "text_model",
                                      "temperature", "image_size", NULL };
  const char *family = NULL;
  if (!check_keys (root, keys, "", error)
      || !read_string (&family, root, "family", "family", error))
    return FALSE;
  if (family == NULL)
    return fail_key (error, AGC_ERROR_FORMAT, "family", "is missing; expected \"agriclip\"");
  if (strcmp (family, "agriclip") != 0)
    {
      g_set_error (error, AGC_ERROR, AGC_ERROR_UNSUPPORTED,
                   AGC_AGRICLIP_MANIFEST ": family \"%s\" is not supported; expected \"agriclip\"",
                   family);
      return FALSE;
    }
  return read_image_encoder (fields, root, error)
         && read_string (&fields->aligner, root, "aligner", "aligner", error)
         && read_string (&fields->text_model, root, "text_model", "text_model", error)
         && read_temperature (&fields->temperature, root, error)
         && read_image_size (&fields->image_size, root, error);
}

/* ---- resolving -------------------------------------------------------------- */

/* The one aligner of the released layout. */
static gboolean
find_aligner (const char **name, GPtrArray *aligners, gboolean have_manifest, GError **error)
{
  if (aligners->len == 1)
    {
      *name = g_ptr_array_index (aligners, 0);
      return TRUE;
    }
  if (aligners->len == 0)
    {
      g_set_error (error, AGC_ERROR, AGC_ERROR_IO,
                   "no aligner: %s" WEIGHTS_DIR "/ holds no " ALIGNER_PREFIX "*" ALIGNER_SUFFIX
                   " (one of the AgriCLIP Model Zoo's aligner files, which map the image "
                   "features into the text space)",
                   have_manifest ? AGC_AGRICLIP_MANIFEST " names no \"aligner\" and " : "");
      return FALSE;
    }
  g_autoptr (GString) list = g_string_new (NULL);
  for (guint i = 0; i < aligners->len; i++)
    g_string_append_printf (list, "%s%s", i > 0 ? ", " : "",
                            (const char *) g_ptr_array_index (aligners, i));
  g_set_error (error, AGC_ERROR, AGC_ERROR_IO,
               "several aligners (%s): name the one to use in " AGC_AGRICLIP_MANIFEST
               ", e.g. {\"family\": \"agriclip\", \"aligner\": \"%s\"}",
               list->str, (const char *) g_ptr_array_index (aligners, 0));
  return FALSE;
}

/* dir/value (value itself when absolute), which must exist.  named: the
 * value comes from the manifest (key names it), otherwise it is the default
 * that what describes. */
static char *
resolve (const char *dir, const char *value, const char *key, gboolean named, const char *what,
         GError **error)
{
  if (value[0] == '\0')
    {
      fail_key (error, AGC_ERROR_FORMAT, key, "is empty");
      return NULL;
    }
  char *path = g_path_is_absolute (value) ? g_strdup (value) : g_build_filename (dir, value, NULL);
  if (g_file_test (path, G_FILE_TEST_EXISTS))
    return path;
  if (named)
    g_set_error (error, AGC_ERROR, AGC_ERROR_IO,
                 AGC_AGRICLIP_MANIFEST ": %s \"%s\" does not exist", key, value);
  else
    g_set_error (error, AGC_ERROR, AGC_ERROR_IO,
                 "%s does not exist (%s; or name another file as %s in " AGC_AGRICLIP_MANIFEST ")",
                 value, what, key);
  g_free (path);
  return NULL;
}

gboolean
agc_agriclip_manifest_load (AgcAgriclipManifest *manifest, const char *dir, GError **error)
{
  g_return_val_if_fail (manifest != NULL && dir != NULL, FALSE);
  *manifest = (AgcAgriclipManifest) { 0 };

  g_autofree char *path = g_build_filename (dir, AGC_AGRICLIP_MANIFEST, NULL);
  gboolean have_manifest = g_file_test (path, G_FILE_TEST_EXISTS);
  g_autoptr (JsonParser) parser = json_parser_new ();
  Fields f = { .temperature = AGC_AGRICLIP_DEFAULT_TEMPERATURE,
                .image_size = AGC_AGRICLIP_DEFAULT_IMAGE_SIZE };
  if (have_manifest && !read_manifest (&f, parser, path, error))
    return FALSE;

  g_autoptr (GPtrArray) aligners = list_aligners (dir);
  gboolean aligner_named = f.aligner != NULL;
  gboolean ok
    = (aligner_named || find_aligner (&f.aligner, aligners, have_manifest, error))
      && (manifest->aligner = resolve (dir, f.aligner, "aligner", aligner_named, "the aligner",
                                       error))
      && (manifest->image_weights
          = resolve (dir, f.image_weights ? f.image_weights : DEFAULT_IMAGE_WEIGHTS,
                     "image_encoder.weights", f.image_weights != NULL,
                     "the DINO ResNet-50 of the AgriCLIP Model Zoo", error))
      && (manifest->text_model = resolve (dir, f.text_model ? f.text_model : ".", "text_model",
                                          f.text_model != NULL, "the text model", error));
  if (!ok)
    {
      agc_agriclip_manifest_clear (manifest);
      return FALSE;
    }
  manifest->image_prefix = g_strdup (f.image_prefix);
  manifest->temperature = f.temperature;
  manifest->image_size = f.image_size;
  return TRUE;
}
