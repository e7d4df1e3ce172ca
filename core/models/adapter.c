/* adapter.c — adapter files (safetensors with agriclip.* metadata) and the
 * identity of the base model they belong to. */
#include "models/adapter.h"

#include "models/embedding-cache.h"
#include "formats/safetensors-write.h"
#include "formats/safetensors.h"
#include "support/error.h"
#include "support/folder.h"
#include "support/json-file.h"

#include <errno.h>
#include <glib/gstdio.h>
#include <json-glib/json-glib.h>
#include <string.h>

#define IDENTITY_VERSION "agriclip-model-identity 1"
#define ADAPTER_KIND "adapter"

typedef struct
{
  char *name;
  char *display;
  char **prompts; /* NULL-terminated; empty when the file lists none */
} AdapterClass;

typedef struct
{
  char *name;
  int n_dims;
  int64_t shape[4];
  float *data;
} AdapterTensor;

struct AgcAdapter
{
  char *path; /* display name, for messages */
  char *method;
  char *base_model;      /* identity, 64 hex digits */
  char *base_model_name; /* folder name, for messages */
  GHashTable *metadata;  /* all of it, string -> string */
  int n_classes;
  AdapterClass *classes; /* [n_classes] */
  int dim;               /* E */
  float *head_weight;    /* probe: [C, E] */
  float *head_bias;      /* probe: [C] */
  int n_tensors;
  AdapterTensor *tensors; /* the model's tensors it replaces (finetune, aligner: every tensor
                           * of the file; a probe on a base: the base's), as float32 */
  char *digest;           /* SHA-256 of those tensors' names, shapes and values; NULL: none */
  char *tensors_method;   /* the method whose model family the tensors fit: its own, or for
                           * a probe its base's (agriclip.stack); NULL without tensors */
};

/* ---- model identity --------------------------------------------------------- */

/* The files that decide an image embedding (see agriclip.h). */
static gboolean
counts_for_identity (const char *name)
{
  static const char *const configs[] = { "config.json", "preprocessor_config.json",
                                         "open_clip_config.json", "agriclip.json", NULL };
  static const char *const weight_suffixes[] = { ".safetensors", ".bin", ".pt", ".pth",
                                                 ".index.json", NULL };
  if (g_strv_contains (configs, name))
    return TRUE;
  for (const char *const *s = weight_suffixes; *s != NULL; s++)
    if (g_str_has_suffix (name, *s))
      return TRUE;
  return FALSE;
}

/* Appends "relative/name\tSHA-256\n" for the files of folder, sub-folders
 * included (AgriCLIP keeps its weights in Weights/), in name order. */
static gboolean
hash_folder (GString *lines, const char *root, const char *relative, int depth, GError **error)
{
  g_autofree char *folder = g_build_filename (root, relative, NULL);
  g_autoptr (GPtrArray) names = agc_list_folder (folder, error);
  if (names == NULL)
    return FALSE;

  for (guint i = 0; i < names->len; i++)
    {
      g_autofree char *rel = relative[0] != '\0'
                               ? g_strconcat (relative, "/", names->pdata[i], NULL)
                               : g_strdup (names->pdata[i]);
      g_autofree char *path = g_build_filename (root, rel, NULL);
      if (g_file_test (path, G_FILE_TEST_IS_DIR))
        {
          if (depth < 4 && !hash_folder (lines, root, rel, depth + 1, error))
            return FALSE;
        }
      else if (counts_for_identity (names->pdata[i]))
        {
          char hex[AGC_SHA256_HEX];
          if (!agc_file_sha256 (hex, path, error))
            return FALSE;
          g_string_append_printf (lines, "%s\t%s\n", rel, hex);
        }
    }
  return TRUE;
}

char *
agc_model_identity (const AgcModel *model, GError **error)
{
  g_return_val_if_fail (model != NULL, NULL);
  const char *dir = agc_model_path (model);
  g_autoptr (GString) lines = g_string_new (IDENTITY_VERSION "\n");
  GError *local = NULL;
  char hex[AGC_SHA256_HEX];
  g_autofree char *base = g_path_get_basename (dir);
  // a model given as one weights file (model.pt): that file is the model
  gboolean ok = g_file_test (dir, G_FILE_TEST_IS_DIR)
                  ? hash_folder (lines, dir, "", 0, &local)
                  : agc_file_sha256 (hex, dir, &local)
                      && (g_string_append_printf (lines, "%s\t%s\n", base, hex), TRUE);
  if (!ok)
    {
      g_autofree char *shown = g_filename_display_name (dir);
      g_set_error (error, AGC_ERROR, AGC_ERROR_IO, "%s: cannot compute the model identity: %s",
                   shown, local->message);
      g_error_free (local);
      return NULL;
    }
  return g_compute_checksum_for_string (G_CHECKSUM_SHA256, lines->str, (gssize) lines->len);
}

/* ---- writing ---------------------------------------------------------------- */

static char *
classes_json (const AgcLabelSet *labels)
{
  g_autoptr (JsonBuilder) b = json_builder_new ();
  json_builder_begin_array (b);
  for (int c = 0; labels != NULL && c < agc_label_set_n_classes (labels); c++)
    {
      json_builder_begin_object (b);
      json_builder_set_member_name (b, "name");
      json_builder_add_string_value (b, agc_label_set_class_name (labels, c));
      json_builder_set_member_name (b, "display");
      json_builder_add_string_value (b, agc_label_set_class_display_name (labels, c));
      json_builder_set_member_name (b, "prompts");
      json_builder_begin_array (b);
      for (const char *const *p = agc_label_set_class_prompts (labels, c); *p != NULL; p++)
        json_builder_add_string_value (b, *p);
      json_builder_end_array (b);
      json_builder_end_object (b);
    }
  json_builder_end_array (b);
  g_autoptr (JsonNode) root = json_builder_get_root (b);
  return json_to_string (root, FALSE);
}

gboolean
agc_adapter_write (const char *path, const char *method, const AgcModel *model,
                   const char *identity, const AgcLabelSet *labels,
                   const AgcTensorView *tensors, int n_tensors, const char *metrics_json,
                   const char *training_json, const char *stack_json, GError **error)
{
  g_autofree char *model_name = g_path_get_basename (agc_model_path (model));
  g_autofree char *classes = classes_json (labels);
  g_autoptr (GHashTable) meta = g_hash_table_new (g_str_hash, g_str_equal);
  g_hash_table_insert (meta, "agriclip.kind", ADAPTER_KIND);
  g_hash_table_insert (meta, "agriclip.version", AGRICLIP_VERSION);
  g_hash_table_insert (meta, "agriclip.method", (gpointer) method);
  g_hash_table_insert (meta, "agriclip.base_model", (gpointer) identity);
  g_hash_table_insert (meta, "agriclip.base_model_name", model_name);
  g_hash_table_insert (meta, "agriclip.classes", classes);
  g_hash_table_insert (meta, "agriclip.metrics", (gpointer) metrics_json);
  g_hash_table_insert (meta, "agriclip.training", (gpointer) training_json);
  if (stack_json != NULL)
    g_hash_table_insert (meta, "agriclip.stack", (gpointer) stack_json);
  return agc_safetensors_write (path, tensors, n_tensors, meta, TRUE, error);
}

/* ---- reading ---------------------------------------------------------------- */

void
agc_adapter_free (AgcAdapter *adapter)
{
  if (adapter == NULL)
    return;
  for (int c = 0; c < adapter->n_classes; c++)
    {
      g_free (adapter->classes[c].name);
      g_free (adapter->classes[c].display);
      g_strfreev (adapter->classes[c].prompts);
    }
  for (int i = 0; i < adapter->n_tensors; i++)
    {
      g_free (adapter->tensors[i].name);
      g_free (adapter->tensors[i].data);
    }
  g_free (adapter->tensors);
  g_free (adapter->digest);
  g_free (adapter->tensors_method);
  g_free (adapter->classes);
  g_free (adapter->path);
  g_free (adapter->method);
  g_free (adapter->base_model);
  g_free (adapter->base_model_name);
  if (adapter->metadata != NULL)
    g_hash_table_unref (adapter->metadata);
  g_free (adapter->head_weight);
  g_free (adapter->head_bias);
  g_free (adapter);
}

static gboolean
parse_classes (AgcAdapter *adapter, const char *text, gboolean unlabelled, GError **error)
{
  g_autoptr (JsonParser) parser = json_parser_new ();
  if (text == NULL || !agc_json_parse_data (parser, text, strlen (text), adapter->path, NULL)
      || !JSON_NODE_HOLDS_ARRAY (json_parser_get_root (parser)))
    return agc_fail_at (error, AGC_ERROR_FORMAT, adapter->path,
                        "agriclip.classes is missing or not a JSON array");
  JsonArray *array = json_node_get_array (json_parser_get_root (parser));
  int n = (int) json_array_get_length (array);
  if (n < 1 && !unlabelled) // learnt from unlabelled photos or untagged pairs: no classes
    return agc_fail_at (error, AGC_ERROR_FORMAT, adapter->path, "agriclip.classes is empty");
  adapter->classes = g_new0 (AdapterClass, n);
  adapter->n_classes = n;
  g_autoptr (GHashTable) seen = g_hash_table_new (g_str_hash, g_str_equal);
  for (int c = 0; c < n; c++)
    {
      JsonNode *node = json_array_get_element (array, c);
      JsonObject *object = JSON_NODE_HOLDS_OBJECT (node) ? json_node_get_object (node) : NULL;
      const char *name = object != NULL
                             ? json_object_get_string_member_with_default (object, "name", NULL)
                             : NULL;
      if (name == NULL || name[0] == '\0' || !g_utf8_validate (name, -1, NULL))
        return agc_fail_at (error, AGC_ERROR_FORMAT, adapter->path,
                            "agriclip.classes[%d] has no valid \"name\"", c);
      if (!g_hash_table_add (seen, (gpointer) name))
        return agc_fail_at (error, AGC_ERROR_FORMAT, adapter->path,
                            "agriclip.classes[%d] \"%s\" appears twice", c, name);
      const char *display = json_object_get_string_member_with_default (object, "display", name);
      adapter->classes[c].name = g_strdup (name);
      adapter->classes[c].display = g_strdup (display);
      g_autoptr (GPtrArray) prompts = g_ptr_array_new_with_free_func (g_free);
      JsonArray *list = json_object_has_member (object, "prompts")
                            ? json_object_get_array_member (object, "prompts")
                            : NULL;
      for (guint i = 0; list != NULL && i < json_array_get_length (list); i++)
        {
          const char *prompt = JSON_NODE_HOLDS_VALUE (json_array_get_element (list, i))
                                   ? json_array_get_string_element (list, i)
                                   : NULL;
          if (prompt == NULL || !g_utf8_validate (prompt, -1, NULL))
            return agc_fail_at (error, AGC_ERROR_FORMAT, adapter->path,
                                "agriclip.classes[%d] prompt %u is not a string", c, i + 1);
          g_ptr_array_add (prompts, g_strdup (prompt));
        }
      g_ptr_array_add (prompts, NULL);
      adapter->classes[c].prompts = (char **) g_ptr_array_steal (prompts, NULL);
    }
  return TRUE;
}

/* A float tensor of exactly the given shape, copied to float32. */
static float *
take (const AgcSafetensors *file, const AgcAdapter *adapter, const char *name, int n_dims,
      const int64_t *shape, GError **error)
{
  const AgcTensorView *t = agc_safetensors_find (file, name);
  gboolean ok = t != NULL && agc_dtype_is_float (t->dtype) && t->n_dims == n_dims;
  for (int d = 0; ok && d < n_dims; d++)
    ok = t->shape[d] == shape[d];
  if (!ok)
    {
      agc_fail_at (error, AGC_ERROR_FORMAT, adapter->path,
                   "tensor '%s' is missing or not a float tensor of %d classes", name,
                   (int)shape[0]);
      return NULL;
    }
  GError *local = NULL;
  if (!agc_tensor_check_finite (t, name, &local))
    {
      g_propagate_error (error, local); // names the file already
      return NULL;
    }
  float *out = g_new (float, agc_tensor_n_elements (t));
  agc_tensor_to_f32 (t, out);
  return out;
}

static gboolean
load_probe (AgcAdapter *adapter, const AgcSafetensors *file, GError **error)
{
  const AgcTensorView *w = agc_safetensors_find (file, "head.weight");
  if (w == NULL || w->n_dims != 2 || w->shape[1] < 1 || w->shape[1] > G_MAXINT)
    return agc_fail_at (error, AGC_ERROR_FORMAT, adapter->path,
                        "tensor 'head.weight' is missing or not [classes, dim]");
  adapter->dim = (int) w->shape[1];
  int64_t weight_shape[2] = { adapter->n_classes, adapter->dim };
  int64_t bias_shape[1] = { adapter->n_classes };
  adapter->head_weight = take (file, adapter, "head.weight", 2, weight_shape, error);
  adapter->head_bias = adapter->head_weight != NULL
                           ? take (file, adapter, "head.bias", 1, bias_shape, error)
                           : NULL;
  return adapter->head_bias != NULL;
}

static gboolean
is_probe_head (const char *name)
{
  return strcmp (name, "head.weight") == 0 || strcmp (name, "head.bias") == 0;
}

/* The tensors that replace the model's: every tensor of the file but a
 * probe's head, as float32, in file order, and a digest of them
 * (agc_model_apply_adapter tells adapters apart by it). */
static gboolean
load_tensors (AgcAdapter *adapter, const AgcSafetensors *file, GError **error)
{
  int n = agc_safetensors_n_tensors (file);
  gboolean probe = strcmp (adapter->method, "probe") == 0;
  if (n < 1)
    return agc_fail_at (error, AGC_ERROR_FORMAT, adapter->path, "holds no tensors");
  adapter->tensors = g_new0 (AdapterTensor, n);
  GChecksum *digest = g_checksum_new (G_CHECKSUM_SHA256);
  gboolean ok = TRUE;
  for (int i = 0; ok && i < n; i++)
    {
      const AgcTensorView *t = agc_safetensors_tensor (file, i);
      if (probe && is_probe_head (t->name))
        continue;
      if (!agc_dtype_is_float (t->dtype) || t->n_dims < 1 || t->n_dims > 4)
        {
          ok = agc_fail_at (error, AGC_ERROR_FORMAT, adapter->path,
                            "tensor '%s' is not a floating-point tensor of 1 to 4 "
                            "dimensions",
                            t->name);
          break;
        }
      if (!agc_tensor_check_finite (t, t->name, error))
        {
          ok = FALSE;
          break;
        }
      AdapterTensor *a = &adapter->tensors[adapter->n_tensors++];
      a->name = g_strdup (t->name);
      a->n_dims = t->n_dims;
      memcpy (a->shape, t->shape, sizeof (int64_t) * t->n_dims);
      size_t count = (size_t) agc_tensor_n_elements (t);
      a->data = g_new (float, MAX (count, 1));
      agc_tensor_to_f32 (t, a->data);
      g_checksum_update (digest, (const guchar *) a->name, (gssize) strlen (a->name) + 1);
      g_checksum_update (digest, (const guchar *) a->shape, sizeof (int64_t) * a->n_dims);
      g_checksum_update (digest, (const guchar *) a->data, (gssize) (count * sizeof (float)));
    }
  if (adapter->n_tensors > 0)
    adapter->digest = g_strdup (g_checksum_get_string (digest));
  g_checksum_free (digest);
  if (!ok)
    return FALSE;
  for (int c = 0; c < adapter->n_classes && !probe; c++)
    if (adapter->classes[c].prompts[0] == NULL)
      return agc_fail_at (error, AGC_ERROR_FORMAT, adapter->path,
                          "class \"%s\" has no prompts (agriclip.classes)",
                          adapter->classes[c].name);
  if (strcmp (adapter->method, "aligner") == 0)
    {
      const float *w = agc_adapter_find_tensor (adapter, "W", 2, NULL);
      const float *b = agc_adapter_find_tensor (adapter, "b", 1, NULL);
      if (w == NULL || b == NULL)
        return agc_fail_at (error, AGC_ERROR_FORMAT, adapter->path,
                            "an aligner adapter needs tensors 'W' [out, in] and "
                            "'b' [out]");
    }
  return TRUE;
}

/* agriclip.stack (adapters trained on a base adapter): a JSON array of the
 * bases, the first applied first, each {"method", "digest", "file"}.
 * Sets tensors_method: for a probe with tensors, its last base's method. */
static gboolean
parse_stack (AgcAdapter *adapter, GError **error)
{
  const char *text = g_hash_table_lookup (adapter->metadata, "agriclip.stack");
  gboolean probe = strcmp (adapter->method, "probe") == 0;
  if (text == NULL)
    {
      if (probe && adapter->n_tensors > 0)
        return agc_fail_at (error, AGC_ERROR_FORMAT, adapter->path,
                            "a probe adapter with tensors besides its head needs "
                            "agriclip.stack");
      adapter->tensors_method = adapter->n_tensors > 0 ? g_strdup (adapter->method) : NULL;
      return TRUE;
    }
  g_autoptr (JsonParser) parser = json_parser_new ();
  JsonArray *array = NULL;
  if (agc_json_parse_data (parser, text, strlen (text), adapter->path, NULL)
      && JSON_NODE_HOLDS_ARRAY (json_parser_get_root (parser)))
    array = json_node_get_array (json_parser_get_root (parser));
  guint n = array != NULL ? json_array_get_length (array) : 0;
  const char *last = NULL;
  for (guint i = 0; i < n; i++)
    {
      JsonNode *node = json_array_get_element (array, i);
      JsonObject *object = JSON_NODE_HOLDS_OBJECT (node) ? json_node_get_object (node) : NULL;
      last = object != NULL
                 ? json_object_get_string_member_with_default (object, "method", NULL)
                 : NULL;
      if (last == NULL)
        break;
    }
  if (n == 0 || last == NULL)
    return agc_fail_at (error, AGC_ERROR_FORMAT, adapter->path,
                        "agriclip.stack is not a JSON array of objects with a "
                        "\"method\"");
  adapter->tensors_method = g_strdup (probe ? last : adapter->method);
  return TRUE;
}

gboolean
agc_adapter_check_destination (const char *path, GError **error)
{
  GStatBuf st = { 0 }; // a stat that fails otherwise: refused as not an adapter
  if (g_stat (path, &st) != 0 && errno == ENOENT)
    return TRUE;
  const char *kind = NULL;
  AgcSafetensors *file = S_ISREG (st.st_mode) ? agc_safetensors_open (path, NULL) : NULL;
  GHashTable *meta = file != NULL ? agc_safetensors_metadata (file) : NULL;
  if (meta != NULL)
    kind = g_hash_table_lookup (meta, "agriclip.kind");
  gboolean ok = g_strcmp0 (kind, ADAPTER_KIND) == 0;
  agc_safetensors_free (file);
  if (!ok)
    {
      g_autofree char *shown = g_filename_display_name (path);
      g_set_error (error, AGC_ERROR, AGC_ERROR_INPUT,
                   "%s: exists and is not an agriclip adapter: not overwritten (write the adapter "
                   "to a new file)", shown);
    }
  return ok;
}

static gboolean
load_parts (AgcAdapter *adapter, const AgcSafetensors *file, GError **error)
{
  GHashTable *meta = agc_safetensors_metadata (file);
  const char *kind = meta != NULL ? g_hash_table_lookup (meta, "agriclip.kind") : NULL;
  if (g_strcmp0 (kind, "checkpoint") == 0)
    return agc_fail_at (error, AGC_ERROR_FORMAT, adapter->path,
                 "a training checkpoint, not a finished adapter (run the same agriclip train "
                 "command again to finish the training)");
  if (g_strcmp0 (kind, ADAPTER_KIND) != 0)
    return agc_fail_at (error, AGC_ERROR_FORMAT, adapter->path,
                        "not an agriclip adapter (no agriclip.kind \"adapter\")");
  adapter->metadata = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  GHashTableIter iter;
  gpointer key, value;
  g_hash_table_iter_init (&iter, meta);
  while (g_hash_table_iter_next (&iter, &key, &value))
    g_hash_table_insert (adapter->metadata, g_strdup (key), g_strdup (value));

  const char *method = g_hash_table_lookup (meta, "agriclip.method");
  const char *base = g_hash_table_lookup (meta, "agriclip.base_model");
  const char *base_name = g_hash_table_lookup (meta, "agriclip.base_model_name");
  if (base == NULL || strlen (base) != AGC_SHA256_HEX - 1)
    return agc_fail_at (error, AGC_ERROR_FORMAT, adapter->path,
                        "agriclip.base_model is missing or not a SHA-256");
  adapter->base_model = g_strdup (base);
  adapter->base_model_name = g_strdup (base_name != NULL ? base_name : "?");
  if (!parse_classes (adapter, g_hash_table_lookup (meta, "agriclip.classes"),
                      g_strcmp0 (method, "dino") == 0 // unlabelled photos
                          || g_strcmp0 (method, "contrastive") == 0, // pairs: classes if tagged
                      error))
    return FALSE;
  if (g_strcmp0 (method, "finetune") == 0 || g_strcmp0 (method, "aligner") == 0
      || g_strcmp0 (method, "contrastive") == 0 // both towers' blocks, the logit scale
      || g_strcmp0 (method, "dino") == 0)
    {
      adapter->method = g_strdup (method);
      return load_tensors (adapter, file, error) && parse_stack (adapter, error);
    }
  if (g_strcmp0 (method, "probe") != 0)
    {
      g_set_error (error, AGC_ERROR, AGC_ERROR_UNSUPPORTED,
                   "%s: adapter method \"%s\" is not supported by this version", adapter->path,
                   method != NULL ? method : "(none)");
      return FALSE;
    }
  adapter->method = g_strdup (method);
  return load_probe (adapter, file, error)
         && (agc_safetensors_n_tensors (file) == 2 || load_tensors (adapter, file, error))
         && parse_stack (adapter, error);
}

AgcAdapter *
agc_adapter_load (const char *path, GError **error)
{
  g_return_val_if_fail (path != NULL, NULL);
  AgcSafetensors *file = agc_safetensors_open (path, error);
  if (file == NULL)
    return NULL;
  g_autoptr (AgcAdapter) adapter = g_new0 (AgcAdapter, 1);
  adapter->path = g_filename_display_name (path);
  gboolean ok = load_parts (adapter, file, error);
  agc_safetensors_free (file);
  return ok ? g_steal_pointer (&adapter) : NULL;
}

/* ---- accessors -------------------------------------------------------------- */

const char *
agc_adapter_method (const AgcAdapter *adapter)
{
  g_return_val_if_fail (adapter != NULL, NULL);
  return adapter->method;
}

int
agc_adapter_n_classes (const AgcAdapter *adapter)
{
  g_return_val_if_fail (adapter != NULL, 0);
  return adapter->n_classes;
}

const char *
agc_adapter_class_name (const AgcAdapter *adapter, int class_index)
{
  g_return_val_if_fail (adapter != NULL, NULL);
  g_return_val_if_fail (class_index >= 0 && class_index < adapter->n_classes, NULL);
  return adapter->classes[class_index].name;
}

const char *
agc_adapter_class_display_name (const AgcAdapter *adapter, int class_index)
{
  g_return_val_if_fail (adapter != NULL, NULL);
  g_return_val_if_fail (class_index >= 0 && class_index < adapter->n_classes, NULL);
  return adapter->classes[class_index].display;
}

const char *
agc_adapter_metadata (const AgcAdapter *adapter, const char *key)
{
  g_return_val_if_fail (adapter != NULL && key != NULL, NULL);
  return g_hash_table_lookup (adapter->metadata, key);
}

gboolean
agc_adapter_check_model (const AgcAdapter *adapter, const AgcModel *model, GError **error)
{
  g_return_val_if_fail (adapter != NULL && model != NULL, FALSE);
  g_autofree char *identity = agc_model_identity (model, error);
  if (identity == NULL)
    return FALSE;
  if (strcmp (identity, adapter->base_model) != 0)
    {
      g_autofree char *model_shown = g_filename_display_name (agc_model_path (model));
      g_set_error (error, AGC_ERROR, AGC_ERROR_INPUT,
                   "%s: trained on another model (\"%s\", identity %.12s…), not on %s "
                   "(identity %.12s…); train an adapter for this model",
                   adapter->path, adapter->base_model_name, adapter->base_model, model_shown,
                   identity);
      return FALSE;
    }
  if (adapter->head_weight != NULL && adapter->dim != agc_model_embed_dim (model))
    {
      g_set_error (error, AGC_ERROR, AGC_ERROR_FORMAT,
                   "%s: the head takes %d-dimensional embeddings, the model gives %d",
                   adapter->path, adapter->dim, agc_model_embed_dim (model));
      return FALSE;
    }
  return TRUE;
}

gboolean
agc_adapter_probe_head (const AgcAdapter *adapter, const float **weight, const float **bias,
                        int *dim)
{
  g_return_val_if_fail (adapter != NULL, FALSE);
  if (adapter->head_weight == NULL)
    return FALSE;
  *weight = adapter->head_weight;
  *bias = adapter->head_bias;
  *dim = adapter->dim;
  return TRUE;
}

const char *const *
agc_adapter_class_prompts (const AgcAdapter *adapter, int class_index)
{
  g_return_val_if_fail (adapter != NULL, NULL);
  g_return_val_if_fail (class_index >= 0 && class_index < adapter->n_classes, NULL);
  return (const char *const *) adapter->classes[class_index].prompts;
}

int
agc_adapter_n_tensors (const AgcAdapter *adapter)
{
  g_return_val_if_fail (adapter != NULL, 0);
  return adapter->n_tensors;
}

const float *
agc_adapter_tensor (const AgcAdapter *adapter, int index, const char **name, int *n_dims,
                    int64_t *shape)
{
  g_return_val_if_fail (adapter != NULL, NULL);
  g_return_val_if_fail (index >= 0 && index < adapter->n_tensors, NULL);
  const AdapterTensor *t = &adapter->tensors[index];
  if (name != NULL)
    *name = t->name;
  if (n_dims != NULL)
    *n_dims = t->n_dims;
  if (shape != NULL)
    memcpy (shape, t->shape, sizeof (int64_t) * t->n_dims);
  return t->data;
}

const float *
agc_adapter_find_tensor (const AgcAdapter *adapter, const char *name, int n_dims,
                         int64_t *shape)
{
  g_return_val_if_fail (adapter != NULL && name != NULL, NULL);
  for (int i = 0; i < adapter->n_tensors; i++)
    {
      const AdapterTensor *t = &adapter->tensors[i];
      if (strcmp (t->name, name) == 0 && t->n_dims == n_dims)
        {
          if (shape != NULL)
            memcpy (shape, t->shape, sizeof (int64_t) * n_dims);
          return t->data;
        }
    }
  return NULL;
}

const char *
agc_adapter_digest (const AgcAdapter *adapter)
{
  g_return_val_if_fail (adapter != NULL, NULL);
  return adapter->digest;
}

const char *
agc_adapter_stack (const AgcAdapter *adapter)
{
  g_return_val_if_fail (adapter != NULL, NULL);
  return g_hash_table_lookup (adapter->metadata, "agriclip.stack");
}

const char *
agc_adapter_tensors_method (const AgcAdapter *adapter)
{
  g_return_val_if_fail (adapter != NULL, NULL);
  return adapter->tensors_method;
}

const char *
agc_adapter_path (const AgcAdapter *adapter)
{
  g_return_val_if_fail (adapter != NULL, NULL);
  return adapter->path;
}
