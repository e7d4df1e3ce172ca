/* weights.c — the named tensors of a checkpoint: one file (safetensors or
 * PyTorch, told apart by their first bytes) or the shards of an index, behind
 * one name lookup. */
#define _DEFAULT_SOURCE // madvise
#include "formats/weights.h"
#include "support/json-file.h"
#include "support/regular-file.h"

#include "agriclip.h"
#include "formats/safetensors.h"
#include "formats/torch-checkpoint.h"

#include <errno.h>
#include <glib/gstdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>
#include <json-glib/json-glib.h>
#include <stdio.h>
#include <string.h>

/* One opened file; the two readers have the same accessors. */
typedef struct
{
  AgcSafetensors *safetensors;
  AgcTorchCheckpoint *torch;
} TensorFile;

struct AgcWeights
{
  char *path;          /* display name of the file opened, for messages */
  GPtrArray *files;    /* TensorFile*, each shard once */
  GHashTable *by_name; /* name -> const AgcTensorView* */
  GPtrArray *order;    /* const AgcTensorView*, each visible name once */
  AgcWeights *base;    /* derived sets: the weights their tensors point into */
  GPtrArray *added;    /* derived sets: views, names and data made for them */
};

static void
tensor_file_free (TensorFile *file)
{
  agc_safetensors_free (file->safetensors);
  agc_torch_checkpoint_free (file->torch);
  g_free (file);
}

static int
tensor_file_n_tensors (const TensorFile *file)
{
  return file->torch != NULL ? agc_torch_checkpoint_n_tensors (file->torch)
                             : agc_safetensors_n_tensors (file->safetensors);
}

static const AgcTensorView *
tensor_file_tensor (const TensorFile *file, int index)
{
  return file->torch != NULL ? agc_torch_checkpoint_tensor (file->torch, index)
                             : agc_safetensors_tensor (file->safetensors, index);
}

static const AgcTensorView *
tensor_file_find (const TensorFile *file, const char *name)
{
  return file->torch != NULL ? agc_torch_checkpoint_find (file->torch, name)
                             : agc_safetensors_find (file->safetensors, name);
}

void
agc_weights_release (const AgcWeights *weights, const void *data, size_t n)
{
  g_return_if_fail (weights != NULL);
  for (; weights != NULL; weights = weights->base)
    for (guint i = 0; weights->files != NULL && i < weights->files->len; i++)
      {
        const TensorFile *file = g_ptr_array_index (weights->files, i);
        if (file->safetensors == NULL || !agc_safetensors_maps (file->safetensors, data, n))
          continue;
        // a private read-only file mapping: dropped pages are read again
        // from the file when touched, never lost
        uintptr_t page = (uintptr_t) sysconf (_SC_PAGESIZE);
        uintptr_t first = ((uintptr_t) data + page - 1) / page * page;
        uintptr_t end = ((uintptr_t) data + n) / page * page;
        if (end > first)
          madvise ((void *) first, end - first, MADV_DONTNEED);
        return;
      }
}

/* PyTorch files start with a ZIP local header since torch 1.6.  Before,
 * torch.save wrote a pickle (protocol 2) of a magic number, and before 0.4
 * even a tar file; neither is worth a reader of its own today. */
static const guint8 zip_magic[4] = { 'P', 'K', 0x03, 0x04 };
static const guint8 legacy_torch_magic[14] = { 0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c,
                                               0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19 };

typedef enum
{
  FORMAT_SAFETENSORS, /* also whatever is unreadable: its reader reports it */
  FORMAT_TORCH_ZIP,
  FORMAT_TORCH_LEGACY,
  FORMAT_PICKLE,
} FileFormat;

static FileFormat
sniff_format (const char *path)
{
  guint8 head[512];
  size_t n = 0;
  int fd = agc_open_regular (path, NULL, NULL); // the reader reports why it cannot
  if (fd >= 0)
    {
      ssize_t got = read (fd, head, sizeof head);
      n = got > 0 ? (size_t) got : 0;
      close (fd);
    }
  if (n >= sizeof zip_magic && memcmp (head, zip_magic, sizeof zip_magic) == 0)
    return FORMAT_TORCH_ZIP;
  if (n >= sizeof legacy_torch_magic
      && memcmp (head, legacy_torch_magic, sizeof legacy_torch_magic) == 0)
    return FORMAT_TORCH_LEGACY;
  if (n >= 262 && memcmp (head + 257, "ustar", 5) == 0)
    return FORMAT_TORCH_LEGACY;
  if (n >= 2 && head[0] == 0x80 && head[1] <= 5) // pickle PROTO
    return FORMAT_PICKLE;
  return FORMAT_SAFETENSORS;
}

static TensorFile *
tensor_file_open (const char *path, GError **error)
{
  FileFormat format = sniff_format (path);
  if (format == FORMAT_TORCH_LEGACY || format == FORMAT_PICKLE)
    {
      g_autofree char *display_name = g_filename_display_name (path);
      if (format == FORMAT_TORCH_LEGACY)
        g_set_error (error, AGC_ERROR, AGC_ERROR_UNSUPPORTED,
                     "%s: legacy PyTorch format (torch < 1.6, or saved with "
                     "_use_new_zipfile_serialization=False); re-save it with torch >= 1.6: "
                     "torch.save(torch.load(path), path)",
                     display_name);
      else
        g_set_error (error, AGC_ERROR, AGC_ERROR_UNSUPPORTED,
                     "%s: a plain Python pickle, not a PyTorch checkpoint; save the tensors "
                     "with torch.save (torch >= 1.6) or as safetensors",
                     display_name);
      return NULL;
    }
  TensorFile *file = g_new0 (TensorFile, 1);
  if (format == FORMAT_TORCH_ZIP)
    file->torch = agc_torch_checkpoint_open (path, error);
  else
    file->safetensors = agc_safetensors_open (path, error);
  if (file->torch == NULL && file->safetensors == NULL)
    {
      g_free (file);
      return NULL;
    }
  return file;
}

static AgcWeights *
weights_new (char *display_name)
{
  AgcWeights *weights = g_new0 (AgcWeights, 1);
  weights->path = display_name;
  weights->files = g_ptr_array_new_with_free_func ((GDestroyNotify) tensor_file_free);
  weights->by_name = g_hash_table_new (g_str_hash, g_str_equal);
  weights->order = g_ptr_array_new ();
  return weights;
}

/* A name seen again (in an index) replaces the earlier tensor in place. */
static void
add_visible (AgcWeights *weights, const AgcTensorView *tensor)
{
  const AgcTensorView *old = g_hash_table_lookup (weights->by_name, tensor->name);
  if (old != NULL)
    {
      guint index;
      if (g_ptr_array_find (weights->order, old, &index))
        weights->order->pdata[index] = (gpointer) tensor;
    }
  else
    g_ptr_array_add (weights->order, (gpointer) tensor);
  g_hash_table_insert (weights->by_name, (char *) tensor->name, (gpointer) tensor);
}

static gboolean
open_single (AgcWeights *weights, const char *path, GError **error)
{
  TensorFile *file = tensor_file_open (path, error);
  if (file == NULL)
    return FALSE;
  g_ptr_array_add (weights->files, file);
  for (int i = 0; i < tensor_file_n_tensors (file); i++)
    add_visible (weights, tensor_file_tensor (file, i));
  return TRUE;
}

/* A shard must be in the model folder once links are resolved: an index
 * naming "../../etc/passwd" is refused before that file is opened (whose
 * bytes a format error would otherwise quote). */
static gboolean
inside_folder (const char *shard_path, const char *folder, const char *index, const char *tensor,
               GError **error)
{
  g_autofree char *real_folder = realpath (folder, NULL);
  g_autofree char *real_shard = realpath (shard_path, NULL);
  int saved = errno;
  if (real_folder != NULL && real_shard == NULL)
    {
      g_autofree char *shown = g_filename_display_name (shard_path);
      g_set_error (error, AGC_ERROR, AGC_ERROR_IO, "%s: shard of tensor '%s': %s: cannot open (%s)",
                   index, tensor, shown, g_strerror (saved));
      return FALSE;
    }
  gsize n = real_folder != NULL ? strlen (real_folder) : 0;
  if (real_folder == NULL || strncmp (real_shard, real_folder, n) != 0
      || (real_shard[n] != '/' && n > 1))
    {
      g_set_error (error, AGC_ERROR, AGC_ERROR_FORMAT,
                   "%s: the shard of tensor '%s' is outside the model folder", index, tensor);
      return FALSE;
    }
  return TRUE;
}

/* The index is authoritative: only tensors its weight_map lists are visible,
 * each taken from the shard the map names. */
static gboolean
open_index (AgcWeights *weights, const char *path, GError **error)
{
  GError *local = NULL;
  g_autoptr (JsonParser) parser = json_parser_new ();
  if (!agc_json_parse_file (parser, path, weights->path, error))
    return FALSE;
  JsonNode *root = json_parser_get_root (parser);
  JsonObject *object = root != NULL && JSON_NODE_HOLDS_OBJECT (root)
                           ? json_node_get_object (root) : NULL;
  JsonNode *map_node = object != NULL ? json_object_get_member (object, "weight_map") : NULL;
  if (map_node == NULL || !JSON_NODE_HOLDS_OBJECT (map_node))
    {
      g_set_error (error, AGC_ERROR, AGC_ERROR_FORMAT,
                   "%s: expected an object with a \"weight_map\" object", weights->path);
      return FALSE;
    }

  g_autofree char *folder = g_path_get_dirname (path);
  g_autoptr (GHashTable) shards = g_hash_table_new (g_str_hash, g_str_equal); // name -> file
  JsonObjectIter iter;
  const char *name;
  JsonNode *value;
  json_object_iter_init (&iter, json_node_get_object (map_node));
  while (json_object_iter_next (&iter, &name, &value))
    {
      const char *shard_name = JSON_NODE_HOLDS_VALUE (value)
                                       && json_node_get_value_type (value) == G_TYPE_STRING
                                   ? json_node_get_string (value) : NULL;
      if (shard_name == NULL || shard_name[0] == '\0' || g_path_is_absolute (shard_name))
        {
          g_set_error (error, AGC_ERROR, AGC_ERROR_FORMAT,
                       "%s: weight_map entry '%s' must be a shard file name relative to the index",
                       weights->path, name);
          return FALSE;
        }
      TensorFile *shard = g_hash_table_lookup (shards, shard_name);
      if (shard == NULL)
        {
          g_autofree char *shard_path = g_build_filename (folder, shard_name, NULL);
          if (!inside_folder (shard_path, folder, weights->path, name, error))
            return FALSE;
          shard = tensor_file_open (shard_path, &local);
          if (shard == NULL)
            {
              g_propagate_prefixed_error (error, local, "%s: shard of tensor '%s': ",
                                          weights->path, name);
              return FALSE;
            }
          g_ptr_array_add (weights->files, shard);
          g_hash_table_insert (shards, (char *) shard_name, shard); // owned by the parser
        }
      const AgcTensorView *tensor = tensor_file_find (shard, name);
      if (tensor == NULL)
        {
          g_set_error (error, AGC_ERROR, AGC_ERROR_FORMAT,
                       "%s: tensor '%s' is mapped to '%s', which does not contain it",
                       weights->path, name, shard_name);
          return FALSE;
        }
      add_visible (weights, tensor);
    }
  return TRUE;
}

AgcWeights *
agc_weights_open (const char *path, GError **error)
{
  g_return_val_if_fail (path != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  g_autoptr (AgcWeights) weights = weights_new (g_filename_display_name (path));
  gboolean ok = g_str_has_suffix (path, ".json") ? open_index (weights, path, error)
                                                 : open_single (weights, path, error);
  return ok ? g_steal_pointer (&weights) : NULL;
}

void
agc_weights_free (AgcWeights *weights)
{
  if (weights == NULL)
    return;
  g_hash_table_unref (weights->by_name);
  g_ptr_array_unref (weights->order);
  g_ptr_array_unref (weights->files);
  g_clear_pointer (&weights->added, g_ptr_array_unref); // derived weights only
  agc_weights_free (weights->base);
  g_free (weights->path);
  g_free (weights);
}

AgcWeights *
agc_weights_new_derived (AgcWeights *base)
{
  g_return_val_if_fail (base != NULL, NULL);
  AgcWeights *weights = weights_new (g_strdup (base->path));
  weights->base = base;
  weights->added = g_ptr_array_new_with_free_func (g_free);
  return weights;
}

AgcWeights *
agc_weights_new_empty (const char *path)
{
  g_return_val_if_fail (path != NULL, NULL);
  AgcWeights *weights = weights_new (g_strdup (path));
  weights->added = g_ptr_array_new_with_free_func (g_free);
  return weights;
}

const AgcTensorView *
agc_weights_add (AgcWeights *weights, const char *name, const AgcTensorView *tensor,
                 gpointer data_to_free)
{
  g_return_val_if_fail (weights != NULL && weights->added != NULL, NULL);
  g_return_val_if_fail (name != NULL && tensor != NULL, NULL);

  AgcTensorView *view = g_new (AgcTensorView, 1);
  *view = *tensor;
  view->name = g_strdup (name);
  g_ptr_array_add (weights->added, view);
  g_ptr_array_add (weights->added, (char *) view->name);
  if (data_to_free != NULL)
    g_ptr_array_add (weights->added, data_to_free);
  add_visible (weights, view);
  return view;
}

const char *
agc_weights_path (const AgcWeights *weights)
{
  g_return_val_if_fail (weights != NULL, NULL);
  return weights->path;
}

const AgcTensorView *
agc_weights_find (const AgcWeights *weights, const char *name)
{
  g_return_val_if_fail (weights != NULL && name != NULL, NULL);
  return g_hash_table_lookup (weights->by_name, name);
}

int
agc_weights_n_tensors (const AgcWeights *weights)
{
  g_return_val_if_fail (weights != NULL, 0);
  return (int) weights->order->len;
}

const AgcTensorView *
agc_weights_tensor (const AgcWeights *weights, int index)
{
  g_return_val_if_fail (weights != NULL, NULL);
  g_return_val_if_fail (index >= 0 && (guint) index < weights->order->len, NULL);
  return g_ptr_array_index (weights->order, index);
}

float *
agc_weights_take_f32 (const AgcWeights *weights, const char *name, int n_dims,
                      const int64_t *shape, GError **error)
{
  g_return_val_if_fail (weights != NULL && name != NULL, NULL);
  g_return_val_if_fail (n_dims >= 0 && n_dims <= AGC_MAX_DIMS, NULL);
  g_return_val_if_fail (n_dims == 0 || shape != NULL, NULL);

  const AgcTensorView *tensor = agc_weights_find (weights, name);
  if (tensor == NULL)
    {
      g_set_error (error, AGC_ERROR, AGC_ERROR_MODEL, "%s: missing tensor '%s'", weights->path,
                   name);
      return NULL;
    }
  if (!agc_dtype_is_float (tensor->dtype))
    {
      g_set_error (error, AGC_ERROR, AGC_ERROR_MODEL,
                   "%s: tensor '%s' has dtype %s, expected a floating-point type", tensor->file,
                   name, agc_dtype_name (tensor->dtype));
      return NULL;
    }
  gboolean same = tensor->n_dims == n_dims;
  for (int d = 0; same && d < n_dims; d++)
    same = tensor->shape[d] == shape[d];
  if (!same)
    {
      g_autofree char *have = agc_shape_text (tensor->n_dims, tensor->shape);
      g_autofree char *want = agc_shape_text (n_dims, shape);
      g_set_error (error, AGC_ERROR, AGC_ERROR_MODEL, "%s: tensor '%s' has shape %s, expected %s",
                   tensor->file, name, have, want);
      return NULL;
    }

  if (!agc_tensor_check_finite (tensor, name, error))
    return NULL;
  // the reader bounded n by the file size, so this cannot overflow
  size_t n = (size_t) agc_tensor_n_elements (tensor);
  float *out = g_try_new (float, MAX (n, 1));
  if (out == NULL)
    {
      g_set_error (error, AGC_ERROR, AGC_ERROR_IO,
                   "%s: not enough memory for tensor '%s' (%zu bytes)",
                   tensor->file, name, n * sizeof (float));
      return NULL;
    }
  agc_tensor_to_f32 (tensor, out);
  return out;
}

float *
agc_weights_take_1d (const AgcWeights *weights, const char *name, int64_t n, GError **error)
{
  return agc_weights_take_f32 (weights, name, 1, &n, error);
}

float *
agc_weights_take_2d (const AgcWeights *weights, const char *name, int64_t rows, int64_t cols,
                     GError **error)
{
  int64_t shape[2] = { rows, cols };
  return agc_weights_take_f32 (weights, name, 2, shape, error);
}
