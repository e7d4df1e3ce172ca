/* catalogue.c — reading and validating models/catalogue.json (agriclip.h,
 * "model hub"). */
#include "agriclip.h"
#include "support/error.h"
#include "support/json-file.h"
#include "support/data-dirs.h"

#include <json-glib/json-glib.h>
#include <string.h>

/* The strings of every entry live in the catalogue's string chunk: an entry
 * owns only its arrays. */
static void
model_free (gpointer data)
{
  AgcCatalogueModel *m = data;
  g_strfreev (m->unverified);
  g_ptr_array_unref (m->files); // of AgcCatalogueFile, each one g_free
  g_free (m);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC (AgcCatalogueModel, model_free)

void
agc_catalogue_free (AgcCatalogue *catalogue)
{
  if (!catalogue)
    return;
  g_ptr_array_unref (catalogue->models);
  g_string_chunk_free (catalogue->strings);
  g_free (catalogue);
}

/* Errors name the file and the entry: "catalogue.json: models[2] (bioclip): ...". */
typedef struct
{
  const char *path;
  GString *where;
  GStringChunk *strings; // the catalogue's: what the entries point into
} Context;

static gboolean
fail (const Context *cx, GError **error, const char *problem)
{
  return agc_fail_at (error, AGC_ERROR_FORMAT, cx->path, "%s%s", cx->where->str, problem);
}

/* An optional string member: FALSE (error set) when present but not a string. */
static gboolean
get_string (char **out, JsonObject *object, const char *member, gboolean required,
            const Context *cx, GError **error)
{
  *out = NULL;
  JsonNode *node = json_object_get_member (object, member);
  if (node == NULL || JSON_NODE_HOLDS_NULL (node))
    {
      if (!required)
        return TRUE;
      g_autofree char *problem = g_strdup_printf ("\"%s\" is missing", member);
      return fail (cx, error, problem);
    }
  if (json_node_get_value_type (node) != G_TYPE_STRING || !*json_node_get_string (node))
    {
      g_autofree char *problem = g_strdup_printf ("\"%s\" must be a non-empty string", member);
      return fail (cx, error, problem);
    }
  *out = g_string_chunk_insert_const (cx->strings, json_node_get_string (node));
  return TRUE;
}

static gboolean
valid_name (const char *name)
{
  if (name[0] == '.')
    return FALSE;
  for (const char *p = name; *p; p++)
    if (!g_ascii_isalnum (*p) && !strchr ("-_.", *p))
      return FALSE;
  return TRUE;
}

/* A relative path that stays inside the model folder: no "", ".", ".."
 * components, no backslash, no control characters, not hidden at the top
 * (the staging folder's own files start with '.'). */
static gboolean
valid_relative_path (const char *path)
{
  if (path[0] == '.' || path[0] == '/' || strchr (path, '\\'))
    return FALSE;
  for (const char *p = path; *p; p++)
    if ((unsigned char) *p < 0x20)
      return FALSE;
  g_auto (GStrv) parts = g_strsplit (path, "/", -1);
  for (char **part = parts; *part; part++)
    if (**part == '\0' || strcmp (*part, ".") == 0 || strcmp (*part, "..") == 0)
      return FALSE;
  return TRUE;
}

static gboolean
parse_sha256 (AgcCatalogueFile *f, JsonObject *object, const Context *cx, GError **error)
{
  if (!get_string (&f->sha256, object, "sha256", FALSE, cx, error))
    return FALSE;
  if (f->sha256 == NULL)
    return TRUE;
  g_autofree char *lower = g_ascii_strdown (f->sha256, -1);
  f->sha256 = g_string_chunk_insert_const (cx->strings, lower);
  gboolean ok = strlen (f->sha256) == 64;
  for (const char *p = f->sha256; ok && *p; p++)
    ok = g_ascii_isxdigit (*p);
  return ok || fail (cx, error, "\"sha256\" must be 64 hexadecimal digits or null");
}

static gboolean
parse_size (AgcCatalogueFile *f, JsonObject *object, const Context *cx, GError **error)
{
  f->size = -1;
  JsonNode *node = json_object_get_member (object, "size");
  if (node == NULL || JSON_NODE_HOLDS_NULL (node))
    return TRUE;
  if (json_node_get_value_type (node) != G_TYPE_INT64 || json_node_get_int (node) < 0)
    return fail (cx, error, "\"size\" must be a whole number of bytes or null");
  f->size = json_node_get_int (node);
  return TRUE;
}

static AgcCatalogueFile *
parse_file (JsonNode *node, const AgcCatalogueModel *model, const Context *cx, GError **error)
{
  if (!JSON_NODE_HOLDS_OBJECT (node))
    return fail (cx, error, "must be an object"), NULL;
  JsonObject *object = json_node_get_object (node);
  g_autofree AgcCatalogueFile *f = g_new0 (AgcCatalogueFile, 1);
  char *revision = NULL;
  gboolean ok = get_string (&f->path, object, "path", TRUE, cx, error)
                && get_string (&f->repository, object, "repository", FALSE, cx, error)
                && get_string (&revision, object, "revision", FALSE, cx, error)
                && get_string (&f->remote_path, object, "remote_path", FALSE, cx, error)
                && get_string (&f->url, object, "url", FALSE, cx, error)
                && get_string (&f->manual, object, "manual", FALSE, cx, error)
                && parse_size (f, object, cx, error) && parse_sha256 (f, object, cx, error);
  if (ok && !valid_relative_path (f->path))
    ok = fail (cx, error, "\"path\" must be relative, '/'-separated, without '.' or '..' parts");
  int n_sources = !!f->repository + !!f->url + !!f->manual;
  if (ok && n_sources > 1)
    ok = fail (cx, error, "give only one of \"repository\", \"url\" and \"manual\"");
  if (ok && f->url && !g_str_has_prefix (f->url, "https://") && !g_str_has_prefix (f->url, "http://"))
    ok = fail (cx, error, "\"url\" must start with https:// or http://");
  if (ok && n_sources == 0)
    {
      if (model->repository == NULL)
        ok = fail (cx, error, "no source: give \"repository\", \"url\" or \"manual\" "
                              "(the model has no \"repository\")");
      else
        f->repository = model->repository;
    }
  if (ok && f->repository && revision == NULL && model->revision
      && g_strcmp0 (f->repository, model->repository) == 0)
    revision = model->revision;
  if (ok && f->repository)
    {
      f->revision = revision ? revision : g_string_chunk_insert_const (cx->strings, "main");
      if (f->remote_path == NULL)
        f->remote_path = f->path;
    }
  return ok ? g_steal_pointer (&f) : NULL;
}

static gboolean
parse_files (AgcCatalogueModel *m, JsonObject *object, Context *cx, GError **error)
{
  JsonNode *node = json_object_get_member (object, "files");
  if (node == NULL || !JSON_NODE_HOLDS_ARRAY (node)
      || json_array_get_length (json_node_get_array (node)) == 0)
    return fail (cx, error, "\"files\" must be a non-empty array");
  JsonArray *array = json_node_get_array (node);
  gsize prefix = cx->where->len;
  g_autoptr (GHashTable) paths = g_hash_table_new (g_str_hash, g_str_equal); // a set: linear
  for (guint i = 0; i < json_array_get_length (array); i++)
    {
      g_string_append_printf (cx->where, "files[%u]: ", i);
      AgcCatalogueFile *f = parse_file (json_array_get_element (array, i), m, cx, error);
      if (f == NULL)
        return FALSE;
      g_ptr_array_add (m->files, f);
      if (!g_hash_table_add (paths, f->path))
        return fail (cx, error, "the same \"path\" appears twice");
      g_string_truncate (cx->where, prefix);
    }
  return TRUE;
}

static gboolean
parse_unverified (AgcCatalogueModel *m, JsonObject *object, const Context *cx, GError **error)
{
  g_autoptr (GStrvBuilder) fields = g_strv_builder_new ();
  JsonNode *node = json_object_get_member (object, "unverified");
  if (node != NULL && !JSON_NODE_HOLDS_NULL (node))
    {
      if (!JSON_NODE_HOLDS_ARRAY (node))
        return fail (cx, error, "\"unverified\" must be an array of field names");
      JsonArray *array = json_node_get_array (node);
      for (guint i = 0; i < json_array_get_length (array); i++)
        {
          JsonNode *item = json_array_get_element (array, i);
          if (json_node_get_value_type (item) != G_TYPE_STRING)
            return fail (cx, error, "\"unverified\" must be an array of field names");
          g_strv_builder_add (fields, json_node_get_string (item));
        }
    }
  m->unverified = g_strv_builder_end (fields);
  return TRUE;
}

static AgcCatalogueModel *
parse_model (JsonNode *node, Context *cx, GError **error)
{
  static const char *const families[] = { "hf-clip", "open_clip", "openai", "agriclip", NULL };
  if (!JSON_NODE_HOLDS_OBJECT (node))
    return fail (cx, error, "must be an object"), NULL;
  JsonObject *object = json_node_get_object (node);
  g_autoptr (AgcCatalogueModel) m = g_new0 (AgcCatalogueModel, 1);
  m->files = g_ptr_array_new_with_free_func (g_free);
  gboolean ok = get_string (&m->name, object, "name", TRUE, cx, error);
  if (ok)
    {
      if (!valid_name (m->name))
        ok = fail (cx, error, "\"name\" may hold only ASCII letters, digits, '-', '_' and '.', "
                              "and must not start with '.'");
      g_string_truncate (cx->where, cx->where->len - 2);
      g_string_append_printf (cx->where, " (%s): ", m->name);
    }
  ok = ok && get_string (&m->title, object, "title", TRUE, cx, error)
       && get_string (&m->family, object, "family", TRUE, cx, error)
       && get_string (&m->homepage, object, "homepage", FALSE, cx, error)
       && get_string (&m->repository, object, "repository", FALSE, cx, error)
       && get_string (&m->revision, object, "revision", FALSE, cx, error)
       && get_string (&m->licence, object, "licence", FALSE, cx, error)
       && get_string (&m->good_for, object, "good_for", FALSE, cx, error)
       && get_string (&m->notes, object, "notes", FALSE, cx, error)
       && parse_unverified (m, object, cx, error);
  if (ok && !g_strv_contains (families, m->family))
    ok = fail (cx, error, "\"family\" must be hf-clip, open_clip, openai or agriclip");
  ok = ok && parse_files (m, object, cx, error);
  return ok ? g_steal_pointer (&m) : NULL;
}

AgcCatalogue *
agc_catalogue_load (const char *path, GError **error)
{
  g_return_val_if_fail (path != NULL, NULL);
  g_autoptr (JsonParser) parser = json_parser_new ();
  if (!agc_json_parse_file (parser, path, path, error))
    return NULL;
  g_autoptr (GString) where = g_string_new ("");
  g_autoptr (AgcCatalogue) catalogue = g_new0 (AgcCatalogue, 1);
  catalogue->strings = g_string_chunk_new (1024);
  catalogue->path = g_string_chunk_insert (catalogue->strings, path);
  catalogue->models = g_ptr_array_new_with_free_func (model_free);
  Context cx = { path, where, catalogue->strings };
  JsonNode *root = json_parser_get_root (parser);
  JsonObject *object = root && JSON_NODE_HOLDS_OBJECT (root) ? json_node_get_object (root) : NULL;
  if (object == NULL)
    return fail (&cx, error, "not a JSON object"), NULL;
  JsonNode *format = json_object_get_member (object, "format");
  if (format == NULL || json_node_get_value_type (format) != G_TYPE_INT64
      || json_node_get_int (format) != 1)
    return fail (&cx, error, "\"format\" must be 1 (the only version this agriclip reads)"), NULL;
  JsonNode *models = json_object_get_member (object, "models");
  if (models == NULL || !JSON_NODE_HOLDS_ARRAY (models))
    return fail (&cx, error, "\"models\" must be an array"), NULL;

  JsonArray *array = json_node_get_array (models);
  for (guint i = 0; i < json_array_get_length (array); i++)
    {
      g_string_printf (where, "models[%u]: ", i);
      g_autoptr (AgcCatalogueModel) m = parse_model (json_array_get_element (array, i), &cx,
                                                     error);
      if (m == NULL)
        return NULL;
      if (agc_catalogue_find (catalogue, m->name) != NULL)
        return fail (&cx, error, "the same \"name\" appears twice"), NULL;
      g_ptr_array_add (catalogue->models, g_steal_pointer (&m));
    }
  return g_steal_pointer (&catalogue);
}

AgcCatalogue *
agc_catalogue_open (GError **error)
{
  const char *env = g_getenv ("AGRICLIP_CATALOGUE");
  if (env && *env)
    return agc_catalogue_load (env, error);
  g_autoptr (GPtrArray) tried = g_ptr_array_new_with_free_func (g_free);
  g_autoptr (GPtrArray) data_dirs = agc_data_dirs ();
  for (guint i = 0; i < data_dirs->len; i++)
    g_ptr_array_add (tried, g_build_filename (data_dirs->pdata[i], "catalogue.json", NULL));
  for (guint i = 0; i < tried->len; i++)
    if (g_file_test (tried->pdata[i], G_FILE_TEST_IS_REGULAR))
      return agc_catalogue_load (tried->pdata[i], error);
  g_ptr_array_add (tried, NULL);
  g_autofree char *list = g_strjoinv (", ", (char **) tried->pdata);
  g_set_error (error, AGC_ERROR, AGC_ERROR_IO,
               "no model catalogue found (looked for %s); install agriclip, or set "
               "AGRICLIP_CATALOGUE to a catalogue file",
               list);
  return NULL;
}

const AgcCatalogueModel *
agc_catalogue_find (const AgcCatalogue *catalogue, const char *name)
{
  for (guint i = 0; i < catalogue->models->len; i++)
    {
      const AgcCatalogueModel *m = catalogue->models->pdata[i];
      if (strcmp (m->name, name) == 0)
        return m;
    }
  return NULL;
}

gboolean
agc_catalogue_model_unverified (const AgcCatalogueModel *model, const char *field)
{
  return g_strv_contains ((const char *const *) model->unverified, field);
}
