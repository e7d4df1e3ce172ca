/* torch-checkpoint.c — tensors of a PyTorch checkpoint (see torch-checkpoint.h).
 *
 * A tensor in data.pkl is a call that was never made:
 *   torch._utils._rebuild_tensor_v2(storage, storage_offset, size, stride,
 *                                   requires_grad, backward_hooks[, metadata])
 * where storage is a persistent id ('storage', torch.FloatStorage, key,
 * location, numel) naming the entry NAME/data/key.  Parameters wrap it in
 * _rebuild_parameter(tensor, requires_grad, hooks[, state]); tensors with
 * Python attributes in _rebuild_from_type_v2(func, type, args, state); new
 * dtypes (float8, uint16) use _rebuild_tensor_v3(…, dtype) over an
 * UntypedStorage whose numel counts bytes. */
#include "formats/torch-checkpoint.h"

#include "agriclip.h"
#include "formats/pickle.h"
#include "formats/zip-archive.h"
#include "formats/name-index.h"
#include "support/error.h"

#include <string.h>

#define MAX_WRAPPERS 4       /* parameter(from_type(tensor)) needs 3 */
#define MAX_DICT_LEVELS 4    /* {"model": {"state_dict": …}} */
#define MAX_MODULE_DEPTH 64  /* TorchScript module nesting */

struct AgcTorchCheckpoint
{
  char *path; /* display name, for messages */
  AgcZipArchive *archive;
  AgcNameIndex index;   /* name -> AgcTensorView* (built when complete) */
  GArray *tensors;      /* AgcTensorView */
  GPtrArray *copies;    /* contiguous copies of strided views, owned */
  guint64 copied_bytes;
};

/* ---- storage and dtype names --------------------------------------------- */

typedef struct
{
  const char *storage; /* the legacy typed storage class */
  const char *dtype;   /* the torch.dtype, as _rebuild_tensor_v3 names it */
  AgcDType agc;
} DTypeName;

static const DTypeName dtype_names[] = {
  { "torch.FloatStorage", "torch.float32", AGC_DTYPE_F32 },
  { "torch.HalfStorage", "torch.float16", AGC_DTYPE_F16 },
  { "torch.BFloat16Storage", "torch.bfloat16", AGC_DTYPE_BF16 },
  { "torch.DoubleStorage", "torch.float64", AGC_DTYPE_F64 },
  { "torch.LongStorage", "torch.int64", AGC_DTYPE_I64 },
  { "torch.IntStorage", "torch.int32", AGC_DTYPE_I32 },
  { "torch.ShortStorage", "torch.int16", AGC_DTYPE_I16 },
  { "torch.CharStorage", "torch.int8", AGC_DTYPE_I8 },
  { "torch.ByteStorage", "torch.uint8", AGC_DTYPE_U8 },
  { "torch.BoolStorage", "torch.bool", AGC_DTYPE_BOOL },
};

static const char untyped_storage[] = "torch.UntypedStorage";

/* What the pickle may name.  Storage types and dtypes we cannot convert are
 * listed too, so that the message names the dtype rather than calling the
 * file a pickled Python object. */
static const char *const allowed_globals[] = {
  "collections.OrderedDict",
  "torch._utils._rebuild_tensor_v2",
  "torch._utils._rebuild_tensor_v3",
  "torch._utils._rebuild_parameter",
  "torch._utils._rebuild_parameter_with_state",
  "torch._tensor._rebuild_from_type_v2",
  "torch.Tensor",
  "torch.nn.parameter.Parameter",
  "torch.FloatStorage", "torch.HalfStorage", "torch.BFloat16Storage", "torch.DoubleStorage",
  "torch.LongStorage", "torch.IntStorage", "torch.ShortStorage", "torch.CharStorage",
  "torch.ByteStorage", "torch.BoolStorage", "torch.UntypedStorage",
  "torch.ComplexFloatStorage", "torch.ComplexDoubleStorage", "torch.QInt8Storage",
  "torch.QUInt8Storage", "torch.QInt32Storage", "torch.QUInt4x2Storage", "torch.QUInt2x4Storage",
  "torch.float32", "torch.float16", "torch.bfloat16", "torch.float64", "torch.int64",
  "torch.int32", "torch.int16", "torch.int8", "torch.uint8", "torch.bool",
  "torch.uint16", "torch.uint32", "torch.uint64", "torch.complex32", "torch.complex64",
  "torch.complex128", "torch.float8_e4m3fn", "torch.float8_e5m2", "torch.float8_e4m3fnuz",
  "torch.float8_e5m2fnuz",
  NULL,
};

/* TorchScript adds its module classes and these identity functions, which
 * only attach static types to lists and dicts. */
static const char *const torchscript_identity[] = {
  "torch.jit._pickle.build_intlist",
  "torch.jit._pickle.build_tensorlist",
  "torch.jit._pickle.build_doublelist",
  "torch.jit._pickle.build_boollist",
  "torch.jit._pickle.restore_type_tag",
  NULL,
};

static const char *const state_dict_keys[] = {
  "state_dict", "model_state_dict", "model", "module", "state_dict_ema", "model_ema",
};

static const char *const stripped_prefixes[] = { "module.", "_orig_mod." };

/* ---- loading context ------------------------------------------------------ */

typedef struct
{
  const char *type; /* storage class, e.g. "torch.FloatStorage" */
  const guint8 *data;
  guint64 n_bytes;
} Storage;

typedef struct
{
  AgcTorchCheckpoint *checkpoint;
  char *prefix;          /* the archive's folder, e.g. "model" */
  GHashTable *storages;  /* key -> Storage* (owned) */
  GHashTable *index;     /* name -> index in tensors + 1, while collecting */
  GHashTable *visited;   /* TorchScript objects already walked */
  gboolean dry;          /* the first pass: everything checked, nothing read or copied */
  guint64 deflated_bytes; /* what the deflated storages inflate to, together (dry pass) */
} Loader;

static gboolean
is_identity_call (const AgcPickleValue *value)
{
  if (value->kind != AGC_PICKLE_CALL || agc_pickle_n_items (value->args) < 1)
    return FALSE;
  for (const char *const *f = torchscript_identity; *f != NULL; f++)
    if (agc_pickle_is_global (value->callable, *f))
      return TRUE;
  return FALSE;
}

/* Skips TorchScript's type-tagging wrappers. */
static const AgcPickleValue *
unwrap (const AgcPickleValue *value)
{
  for (int i = 0; i < MAX_WRAPPERS && is_identity_call (value); i++)
    value = agc_pickle_item (value->args, 0);
  return value;
}

static gboolean
is_tensor_function (const AgcPickleValue *callable)
{
  return agc_pickle_is_global (callable, "torch._utils._rebuild_tensor_v2")
         || agc_pickle_is_global (callable, "torch._utils._rebuild_tensor_v3")
         || agc_pickle_is_global (callable, "torch._utils._rebuild_parameter")
         || agc_pickle_is_global (callable, "torch._utils._rebuild_parameter_with_state")
         || agc_pickle_is_global (callable, "torch._tensor._rebuild_from_type_v2");
}

static gboolean
is_tensor (const AgcPickleValue *value)
{
  return value->kind == AGC_PICKLE_CALL && is_tensor_function (value->callable);
}

/* ---- storages ------------------------------------------------------------- */

static const DTypeName *
dtype_by_storage (const char *storage)
{
  for (size_t i = 0; i < G_N_ELEMENTS (dtype_names); i++)
    if (strcmp (storage, dtype_names[i].storage) == 0)
      return &dtype_names[i];
  return NULL;
}

static const DTypeName *
dtype_by_name (const char *dtype)
{
  for (size_t i = 0; i < G_N_ELEMENTS (dtype_names); i++)
    if (strcmp (dtype, dtype_names[i].dtype) == 0)
      return &dtype_names[i];
  return NULL;
}

/* Resolves a persistent id ('storage', type, key, location, numel) to the
 * bytes of NAME/data/key, read and checked once per key. */
static const Storage *
resolve_storage (Loader *loader, const char *tensor, const AgcPickleValue *pid, GError **error)
{
  AgcTorchCheckpoint *checkpoint = loader->checkpoint;
  const AgcPickleValue *id = pid->kind == AGC_PICKLE_PERSID ? pid->args : NULL;
  if (id == NULL || id->kind != AGC_PICKLE_TUPLE || agc_pickle_n_items (id) != 5
      || agc_pickle_item (id, 0)->kind != AGC_PICKLE_STRING
      || strcmp (agc_pickle_item (id, 0)->text, "storage") != 0
      || agc_pickle_item (id, 1)->kind != AGC_PICKLE_GLOBAL
      || agc_pickle_item (id, 2)->kind != AGC_PICKLE_STRING
      || agc_pickle_item (id, 4)->kind != AGC_PICKLE_INT || agc_pickle_item (id, 4)->integer < 0)
    {
      agc_fail_at (error, AGC_ERROR_FORMAT, checkpoint->path,
            "tensor '%s': storage is not a persistent id ('storage', type, key, location, "
            "size)",
            tensor);
      return NULL;
    }
  const char *type = agc_pickle_item (id, 1)->text;
  const char *key = agc_pickle_item (id, 2)->text;
  gint64 numel = agc_pickle_item (id, 4)->integer;

  Storage *storage = g_hash_table_lookup (loader->storages, key);
  if (storage != NULL)
    {
      if (strcmp (storage->type, type) != 0)
        {
          agc_fail_at (error, AGC_ERROR_FORMAT, checkpoint->path,
                "tensor '%s': storage '%s' is used both as %s and as %s", tensor, key,
                storage->type, type);
          return NULL;
        }
      return storage;
    }

  const DTypeName *dtype = dtype_by_storage (type);
  if (dtype == NULL && strcmp (type, untyped_storage) != 0)
    {
      agc_fail_at (error, AGC_ERROR_UNSUPPORTED, checkpoint->path,
            "tensor '%s': storage type %s is not supported", tensor, type);
      return NULL;
    }
  guint64 n_bytes;
  size_t element_size = dtype != NULL ? agc_dtype_size (dtype->agc) : 1; // untyped: bytes
  if (!g_uint64_checked_mul (&n_bytes, (guint64) numel, element_size))
    {
      agc_fail_at (error, AGC_ERROR_FORMAT, checkpoint->path,
                   "tensor '%s': storage '%s' of %" G_GINT64_FORMAT " elements is too large",
                   tensor, key, numel);
      return NULL;
    }
  g_autofree char *entry_name = g_strdup_printf ("%s/data/%s", loader->prefix, key);
  const AgcZipEntry *entry = agc_zip_archive_find (checkpoint->archive, entry_name);
  if (entry == NULL)
    {
      agc_fail_at (error, AGC_ERROR_FORMAT, checkpoint->path,
            "tensor '%s': storage '%s' is missing (no entry '%s')", tensor, key, entry_name);
      return NULL;
    }
  if (entry->size != n_bytes)
    {
      agc_fail_at (error, AGC_ERROR_FORMAT, checkpoint->path,
            "tensor '%s': storage '%s' holds %" G_GINT64_FORMAT " %s elements (%" G_GUINT64_FORMAT
            " bytes), but entry '%s' has %" G_GUINT64_FORMAT " bytes",
            tensor, key, numel, type, n_bytes, entry_name, entry->size);
      return NULL;
    }
  const guint8 *data = NULL;
  if (loader->dry)
    loader->deflated_bytes += entry->method != 0 ? entry->size : 0;
  else if ((data = agc_zip_archive_read (checkpoint->archive, entry, error)) == NULL)
    return NULL;
  storage = g_new0 (Storage, 1);
  storage->type = type; // lives in the pickle, which outlives the loader
  storage->data = data;
  storage->n_bytes = n_bytes;
  g_hash_table_insert (loader->storages, (char *) key, storage);
  return storage;
}

/* ---- tensors -------------------------------------------------------------- */

/* Reads a tuple of non-negative integers (size or stride). */
static gboolean
read_dims (AgcTorchCheckpoint *checkpoint, const char *tensor, const char *what,
           const AgcPickleValue *tuple, int *n, int64_t *dims, GError **error)
{
  if (tuple->kind != AGC_PICKLE_TUPLE)
    return agc_fail_at (error, AGC_ERROR_FORMAT, checkpoint->path,
                        "tensor '%s': %s is a %s, expected a tuple", tensor, what,
                        agc_pickle_kind_name (tuple->kind));
  size_t count = agc_pickle_n_items (tuple);
  if (count > AGC_MAX_DIMS)
    return agc_fail_at (error, AGC_ERROR_UNSUPPORTED, checkpoint->path,
                 "tensor '%s' has %zu dimensions, at most %d are supported", tensor, count,
                 AGC_MAX_DIMS);
  for (size_t d = 0; d < count; d++)
    {
      const AgcPickleValue *v = agc_pickle_item (tuple, d);
      if (v->kind != AGC_PICKLE_INT || v->integer < 0)
        return agc_fail_at (error, AGC_ERROR_FORMAT, checkpoint->path,
                     "tensor '%s': %s[%zu] is not a non-negative integer", tensor, what, d);
      dims[d] = v->integer;
    }
  *n = (int) count;
  return TRUE;
}

/* Copies a strided view into contiguous memory, element by element, with
 * an odometer over the indices. */
static void
gather (guint8 *out, const guint8 *base, size_t element_size, int n_dims, const int64_t *shape,
        const int64_t *stride, guint64 n_elements)
{
  int64_t index[AGC_MAX_DIMS] = { 0 };
  guint64 source = 0; // in elements, from base
  for (guint64 i = 0; i < n_elements; i++)
    {
      memcpy (out + i * element_size, base + source * element_size, element_size);
      for (int d = n_dims - 1; d >= 0; d--)
        {
          if (++index[d] < shape[d])
            {
              source += (guint64) stride[d];
              break;
            }
          source -= (guint64) stride[d] * (guint64) (shape[d] - 1);
          index[d] = 0;
        }
    }
}

/* _rebuild_tensor_v2 / _v3 arguments -> a view (name and file set by the caller). */
static gboolean
build_view (Loader *loader, const char *name, const AgcPickleValue *args, gboolean v3,
            AgcTensorView *view, GError **error)
{
  AgcTorchCheckpoint *checkpoint = loader->checkpoint;
  size_t n_args = agc_pickle_n_items (args);
  if (n_args < (v3 ? 7u : 4u))
    return agc_fail_at (error, AGC_ERROR_FORMAT, checkpoint->path,
                 "tensor '%s': %s has %zu arguments, expected at least %d", name,
                 v3 ? "_rebuild_tensor_v3" : "_rebuild_tensor_v2", n_args, v3 ? 7 : 4);
  const Storage *storage = resolve_storage (loader, name, agc_pickle_item (args, 0), error);
  if (storage == NULL)
    return FALSE;

  const DTypeName *dtype = dtype_by_storage (storage->type);
  if (v3)
    {
      const AgcPickleValue *dtype_value = agc_pickle_item (args, 6);
      if (dtype_value->kind != AGC_PICKLE_GLOBAL)
        return agc_fail_at (error, AGC_ERROR_FORMAT, checkpoint->path, "tensor '%s': dtype is a %s",
                            name, agc_pickle_kind_name (dtype_value->kind));
      const DTypeName *named = dtype_by_name (dtype_value->text);
      if (named == NULL)
        return agc_fail_at (error, AGC_ERROR_UNSUPPORTED, checkpoint->path,
                     "tensor '%s' has dtype %s, which is not supported", name, dtype_value->text);
      if (dtype != NULL && dtype != named)
        return agc_fail_at (error, AGC_ERROR_FORMAT, checkpoint->path,
                     "tensor '%s': dtype %s does not match its %s", name, named->dtype,
                     storage->type);
      dtype = named;
    }
  else if (dtype == NULL)
    return agc_fail_at (error, AGC_ERROR_FORMAT, checkpoint->path,
                 "tensor '%s': an %s needs _rebuild_tensor_v3 and its dtype", name,
                 storage->type);

  const AgcPickleValue *offset_value = agc_pickle_item (args, 1);
  if (offset_value->kind != AGC_PICKLE_INT || offset_value->integer < 0)
    return agc_fail_at (error, AGC_ERROR_FORMAT, checkpoint->path,
                 "tensor '%s': storage offset is not a non-negative integer", name);
  guint64 offset = (guint64) offset_value->integer;
  int n_dims, n_strides;
  int64_t stride[AGC_MAX_DIMS];
  if (!read_dims (checkpoint, name, "size", agc_pickle_item (args, 2), &n_dims, view->shape, error)
      || !read_dims (checkpoint, name, "stride", agc_pickle_item (args, 3), &n_strides, stride,
                     error))
    return FALSE;
  if (n_strides != n_dims)
    return agc_fail_at (error, AGC_ERROR_FORMAT, checkpoint->path,
                 "tensor '%s' has %d sizes but %d strides", name, n_dims, n_strides);
  view->dtype = dtype->agc;
  view->n_dims = n_dims;
  size_t element_size = agc_dtype_size (dtype->agc);

  // element count, and the last element reached: offset + sum (size - 1) * stride
  guint64 n_elements = 1, last = offset;
  gboolean overflow = FALSE;
  for (int d = 0; d < n_dims; d++)
    overflow |= !g_uint64_checked_mul (&n_elements, n_elements, (guint64) view->shape[d]);
  for (int d = 0; d < n_dims && n_elements > 0; d++)
    {
      guint64 reach;
      overflow |= !g_uint64_checked_mul (&reach, (guint64) view->shape[d] - 1, (guint64) stride[d]);
      overflow |= !g_uint64_checked_add (&last, last, reach);
    }
  guint64 n_bytes, end;
  overflow |= !g_uint64_checked_mul (&n_bytes, n_elements, element_size);
  overflow |= !g_uint64_checked_add (&end, last, 1);
  overflow |= !g_uint64_checked_mul (&end, end, element_size);
  if (overflow)
    return agc_fail_at (error, AGC_ERROR_FORMAT, checkpoint->path,
                        "tensor '%s': size or strides overflow", name);
  if (n_elements == 0)
    {
      view->data = storage->data;
      view->n_bytes = 0;
      return TRUE;
    }
  if (end > storage->n_bytes)
    {
      g_autofree char *shape = agc_shape_text (n_dims, view->shape);
      g_autofree char *strides = agc_shape_text (n_dims, stride);
      return agc_fail_at (error, AGC_ERROR_FORMAT, checkpoint->path,
                   "tensor '%s' (offset %" G_GUINT64_FORMAT ", shape %s, strides %s) reaches "
                   "byte %" G_GUINT64_FORMAT " of a storage of %" G_GUINT64_FORMAT " bytes",
                   name, offset, shape, strides, end, storage->n_bytes);
    }

  gboolean contiguous = TRUE;
  guint64 expected = 1;
  for (int d = n_dims - 1; d >= 0; d--)
    if (view->shape[d] != 1)
      {
        contiguous &= (guint64) stride[d] == expected;
        expected *= (guint64) view->shape[d];
      }
  view->n_bytes = (size_t) n_bytes;
  if (loader->dry)
    return TRUE;
  if (contiguous)
    {
      view->data = storage->data + offset * element_size;
      return TRUE;
    }
  // a strided view: copied, within a budget of the file size in total
  guint64 budget = agc_zip_archive_size (checkpoint->archive);
  guint8 *copy = n_bytes <= budget - checkpoint->copied_bytes ? g_try_malloc (n_bytes) : NULL;
  if (copy == NULL)
    {
      g_autofree char *shape = agc_shape_text (n_dims, view->shape);
      g_autofree char *strides = agc_shape_text (n_dims, stride);
      return agc_fail_at (error, AGC_ERROR_UNSUPPORTED, checkpoint->path,
                   "tensor '%s' is a strided view (shape %s, strides %s) whose %" G_GUINT64_FORMAT
                   "-byte copy does not fit in memory or within the file size; save "
                   "tensor.contiguous() instead",
                   name, shape, strides, n_bytes);
    }
  gather (copy, storage->data + offset * element_size, element_size, n_dims, view->shape, stride,
          n_elements);
  g_ptr_array_add (checkpoint->copies, copy);
  checkpoint->copied_bytes += n_bytes;
  view->data = copy;
  return TRUE;
}

/* Follows parameter and subclass wrappers down to _rebuild_tensor_v2/v3. */
static gboolean
build_tensor (Loader *loader, const char *name, const AgcPickleValue *callable,
              const AgcPickleValue *args, int depth, AgcTensorView *view, GError **error)
{
  AgcTorchCheckpoint *checkpoint = loader->checkpoint;
  if (depth >= MAX_WRAPPERS || args->kind != AGC_PICKLE_TUPLE)
    return agc_fail_at (error, AGC_ERROR_FORMAT, checkpoint->path, "tensor '%s' is malformed",
                        name);
  if (agc_pickle_is_global (callable, "torch._utils._rebuild_tensor_v2"))
    return build_view (loader, name, args, FALSE, view, error);
  if (agc_pickle_is_global (callable, "torch._utils._rebuild_tensor_v3"))
    return build_view (loader, name, args, TRUE, view, error);

  const AgcPickleValue *inner = agc_pickle_n_items (args) > 0 ? agc_pickle_item (args, 0) : NULL;
  if (agc_pickle_is_global (callable, "torch._tensor._rebuild_from_type_v2"))
    {
      // (func, type, args, state): a plain Tensor or Parameter with attributes
      const AgcPickleValue *type = agc_pickle_n_items (args) >= 3 ? agc_pickle_item (args, 1)
                                                                  : NULL;
      if (type == NULL || inner->kind != AGC_PICKLE_GLOBAL || !is_tensor_function (inner)
          || !(agc_pickle_is_global (type, "torch.Tensor")
               || agc_pickle_is_global (type, "torch.nn.parameter.Parameter")))
        return agc_fail_at (error, AGC_ERROR_UNSUPPORTED, checkpoint->path,
                     "tensor '%s' is a tensor subclass, which is not supported", name);
      return build_tensor (loader, name, inner, agc_pickle_item (args, 2), depth + 1, view, error);
    }
  // _rebuild_parameter(_with_state): (tensor, requires_grad, hooks[, state])
  if (inner == NULL || !is_tensor (inner))
    return agc_fail_at (error, AGC_ERROR_FORMAT, checkpoint->path,
                        "tensor '%s': parameter holds no tensor", name);
  return build_tensor (loader, name, inner->callable, inner->args, depth + 1, view, error);
}

/* Adds name -> tensor; a repeated name (a dict key set twice) replaces the
 * earlier tensor, as in Python. */
static gboolean
add_tensor (Loader *loader, const char *name, const AgcPickleValue *value, GError **error)
{
  AgcTorchCheckpoint *checkpoint = loader->checkpoint;
  AgcTensorView view = { 0 };
  if (!build_tensor (loader, name, value->callable, value->args, 0, &view, error))
    return FALSE;
  view.name = agc_name_index_intern (&checkpoint->index, name, -1);
  view.file = checkpoint->path;
  guint index = GPOINTER_TO_UINT (g_hash_table_lookup (loader->index, view.name));
  if (index > 0)
    g_array_index (checkpoint->tensors, AgcTensorView, index - 1) = view;
  else
    {
      g_array_append_val (checkpoint->tensors, view);
      g_hash_table_insert (loader->index, (char *) view.name,
                           GUINT_TO_POINTER (checkpoint->tensors->len));
    }
  return TRUE;
}

/* ---- finding the state dict ---------------------------------------------- */

static gboolean
has_tensor_values (const AgcPickleValue *dict)
{
  for (size_t i = 0; i + 1 < agc_pickle_n_items (dict); i += 2)
    if (agc_pickle_item (dict, i)->kind == AGC_PICKLE_STRING
        && is_tensor (unwrap (agc_pickle_item (dict, i + 1))))
      return TRUE;
  return FALSE;
}

/* The prefix every tensor key has, among stripped_prefixes ("" if none). */
static size_t
common_prefix_length (const AgcPickleValue *dict)
{
  size_t total = 0;
  for (gboolean again = TRUE; again;)
    {
      again = FALSE;
      for (size_t p = 0; p < G_N_ELEMENTS (stripped_prefixes) && !again; p++)
        {
          gboolean all = TRUE;
          for (size_t i = 0; i + 1 < agc_pickle_n_items (dict) && all; i += 2)
            {
              const AgcPickleValue *key = agc_pickle_item (dict, i);
              if (key->kind == AGC_PICKLE_STRING
                  && is_tensor (unwrap (agc_pickle_item (dict, i + 1))))
                all = g_str_has_prefix (key->text + total, stripped_prefixes[p]);
            }
          if (all)
            {
              total += strlen (stripped_prefixes[p]);
              again = TRUE;
            }
        }
    }
  return total;
}

static gboolean
collect_dict (Loader *loader, const AgcPickleValue *dict, GError **error)
{
  size_t strip = common_prefix_length (dict);
  for (size_t i = 0; i + 1 < agc_pickle_n_items (dict); i += 2)
    {
      const AgcPickleValue *key = agc_pickle_item (dict, i);
      const AgcPickleValue *value = unwrap (agc_pickle_item (dict, i + 1));
      if (key->kind == AGC_PICKLE_STRING && is_tensor (value)
          && !add_tensor (loader, key->text + strip, value, error))
        return FALSE;
    }
  return TRUE;
}

/* "'epoch', 'optimizer', 'args'" (the first few string keys). */
static char *
describe_keys (const AgcPickleValue *dict)
{
  GString *out = g_string_new (NULL);
  size_t n = 0;
  for (size_t i = 0; i + 1 < agc_pickle_n_items (dict); i += 2)
    {
      const AgcPickleValue *key = agc_pickle_item (dict, i);
      if (key->kind != AGC_PICKLE_STRING)
        continue;
      if (n++ == 8)
        {
          g_string_append (out, ", …");
          break;
        }
      g_string_append_printf (out, "%s'%s'", out->len > 0 ? ", " : "", key->text);
    }
  if (out->len == 0)
    g_string_append (out, "no string keys");
  return g_string_free (out, FALSE);
}

static gboolean
collect_state_dict (Loader *loader, const AgcPickleValue *root, GError **error)
{
  AgcTorchCheckpoint *checkpoint = loader->checkpoint;
  const AgcPickleValue *dict = root;
  GString *path = g_string_new (NULL);
  for (int level = 0; level < MAX_DICT_LEVELS; level++)
    {
      if (has_tensor_values (dict))
        {
          g_string_free (path, TRUE);
          return collect_dict (loader, dict, error);
        }
      const AgcPickleValue *next = NULL;
      for (size_t k = 0; k < G_N_ELEMENTS (state_dict_keys) && next == NULL; k++)
        {
          const AgcPickleValue *value = agc_pickle_dict_get (dict, state_dict_keys[k]);
          if (value != NULL && (value = unwrap (value))->kind == AGC_PICKLE_DICT)
            {
              next = value;
              g_string_append_printf (path, "['%s']", state_dict_keys[k]);
            }
        }
      if (next == NULL)
        break;
      dict = next;
    }
  g_autofree char *keys = describe_keys (dict);
  agc_fail_at (error, AGC_ERROR_FORMAT, checkpoint->path,
        "no tensors found: the dict%s%s has keys %s; expected a state dict (a dict of tensors), "
        "or one under 'state_dict' or 'model'",
        path->len > 0 ? " at " : "", path->str, keys);
  g_string_free (path, TRUE);
  return FALSE;
}

/* TorchScript: a module is an OBJECT whose BUILD state is a dict of its
 * attributes; submodules are OBJECTs again. */
static gboolean
collect_module (Loader *loader, const AgcPickleValue *object, const char *path, int depth,
                GError **error)
{
  if (depth > MAX_MODULE_DEPTH)
    return agc_fail_at (error, AGC_ERROR_FORMAT, loader->checkpoint->path,
                 "TorchScript modules are nested more than %d deep at '%s'", MAX_MODULE_DEPTH,
                 path);
  g_hash_table_add (loader->visited, (gpointer) object);
  const AgcPickleValue *state = object->state;
  if (state == NULL || state->kind != AGC_PICKLE_DICT)
    return TRUE; // custom __setstate__ objects (e.g. packed params): no plain tensors
  for (size_t i = 0; i + 1 < agc_pickle_n_items (state); i += 2)
    {
      const AgcPickleValue *key = agc_pickle_item (state, i);
      const AgcPickleValue *value = unwrap (agc_pickle_item (state, i + 1));
      if (key->kind != AGC_PICKLE_STRING)
        continue;
      g_autofree char *name = g_strconcat (path, key->text, NULL);
      if (is_tensor (value))
        {
          if (!add_tensor (loader, name, value, error))
            return FALSE;
        }
      else if (value->kind == AGC_PICKLE_OBJECT && !g_hash_table_contains (loader->visited, value))
        {
          g_autofree char *child = g_strconcat (name, ".", NULL);
          if (!collect_module (loader, value, child, depth + 1, error))
            return FALSE;
        }
    }
  return TRUE;
}

/* ---- the archive ----------------------------------------------------------- */

static gboolean
has_entry_under (const AgcZipArchive *archive, const char *folder)
{
  for (int i = 0; i < agc_zip_archive_n_entries (archive); i++)
    if (g_str_has_prefix (agc_zip_archive_entry (archive, i)->name, folder))
      return TRUE;
  return FALSE;
}

static gboolean
check_byteorder (Loader *loader, GError **error)
{
  AgcTorchCheckpoint *checkpoint = loader->checkpoint;
  g_autofree char *name = g_strconcat (loader->prefix, "/byteorder", NULL);
  const AgcZipEntry *entry = agc_zip_archive_find (checkpoint->archive, name);
  if (entry == NULL) // written since torch 2.1; older files are little-endian
    return TRUE;
  const guint8 *text = agc_zip_archive_read (checkpoint->archive, entry, error);
  if (text == NULL)
    return FALSE;
  if (entry->size == 6 && memcmp (text, "little", 6) == 0)
    return TRUE;
  return agc_fail_at (error, AGC_ERROR_UNSUPPORTED, checkpoint->path,
               "tensors are stored in '%.*s' byte order; only little-endian checkpoints are "
               "supported",
               (int) MIN (entry->size, 16), (const char *) text);
}

/* Unpickles data.pkl with the allow-list (and, for TorchScript, its identity
 * functions and module classes). */
static AgcPickle *
read_pickle (Loader *loader, const AgcZipEntry *pkl, gboolean torchscript, GError **error)
{
  AgcTorchCheckpoint *checkpoint = loader->checkpoint;
  const guint8 *bytes = agc_zip_archive_read (checkpoint->archive, pkl, error);
  if (bytes == NULL)
    return NULL;
  g_autoptr (GPtrArray) globals = g_ptr_array_new ();
  for (const char *const *g = allowed_globals; *g != NULL; g++)
    g_ptr_array_add (globals, (gpointer) *g);
  for (const char *const *g = torchscript_identity; torchscript && *g != NULL; g++)
    g_ptr_array_add (globals, (gpointer) *g);
  g_ptr_array_add (globals, NULL);
  AgcPickleRules rules = {
    .globals = (const char *const *) globals->pdata,
    .class_prefix = torchscript ? "__torch__." : NULL,
  };
  g_autofree char *name = g_strconcat (checkpoint->path, ": ", pkl->name, NULL);
  return agc_pickle_load (bytes, pkl->size, name, &rules, error);
}

/* The tensors of the pickle into checkpoint->tensors. */
static gboolean
collect_tensors (Loader *loader, AgcPickle *pickle, GError **error)
{
  AgcTorchCheckpoint *checkpoint = loader->checkpoint;
  gboolean ok = FALSE;
  const AgcPickleValue *root = unwrap (agc_pickle_root (pickle));
  if (root->kind == AGC_PICKLE_OBJECT)
    ok = collect_module (loader, root, "", 0, error);
  else if (root->kind == AGC_PICKLE_DICT)
    ok = collect_state_dict (loader, root, error);
  else if (is_tensor (root))
    agc_fail_at (error, AGC_ERROR_FORMAT, checkpoint->path,
          "holds a single tensor, not a dict of named tensors");
  else
    agc_fail_at (error, AGC_ERROR_FORMAT, checkpoint->path,
                 "holds a %s, expected a dict of tensors", agc_pickle_kind_name (root->kind));
  if (ok && checkpoint->tensors->len == 0)
    ok = agc_fail_at (error, AGC_ERROR_FORMAT, checkpoint->path, "holds no tensors");
  return ok;
}

static gboolean
collect (Loader *loader, GError **error)
{
  AgcTorchCheckpoint *checkpoint = loader->checkpoint;
  const AgcZipArchive *archive = checkpoint->archive;
  g_autofree char *pkl_name = g_strconcat (loader->prefix, "/data.pkl", NULL);
  g_autofree char *code_folder = g_strconcat (loader->prefix, "/code/", NULL);
  g_autofree char *constants = g_strconcat (loader->prefix, "/constants.pkl", NULL);
  const AgcZipEntry *pkl = agc_zip_archive_find (archive, pkl_name);
  gboolean torchscript = agc_zip_archive_find (archive, constants) != NULL
                         || has_entry_under (archive, code_folder);
  if (pkl == NULL)
    {
      g_autofree char *model_json = g_strconcat (loader->prefix, "/model.json", NULL);
      if (agc_zip_archive_find (archive, model_json) != NULL)
        return agc_fail_at (error, AGC_ERROR_UNSUPPORTED, checkpoint->path,
                     "is a TorchScript archive of the pre-1.4 format (model.json); re-save it "
                     "with a newer torch");
      return agc_fail_at (error, AGC_ERROR_FORMAT, checkpoint->path,
                   "is a ZIP archive but not a PyTorch checkpoint: no entry '%s'", pkl_name);
    }
  if (!check_byteorder (loader, error))
    return FALSE;
  AgcPickle *pickle = read_pickle (loader, pkl, torchscript, error);
  if (pickle == NULL)
    return FALSE;

  // twice: first every name, shape and storage is checked without reading
  // a byte of tensor data, and what inflating would take is added up; only
  // then are the storages read (a ZIP bomb is refused before it inflates)
  gboolean ok = TRUE;
  for (int pass = 0; ok && pass < 2; pass++)
    {
      loader->dry = pass == 0;
      g_array_set_size (checkpoint->tensors, 0);
      g_hash_table_remove_all (loader->index);
      g_hash_table_remove_all (loader->visited);
      g_hash_table_remove_all (loader->storages);
      ok = collect_tensors (loader, pickle, error);
      guint64 budget = agc_zip_archive_inflate_budget (archive);
      if (ok && loader->dry && loader->deflated_bytes > budget)
        ok = agc_fail_at (error, AGC_ERROR_FORMAT, checkpoint->path,
                   "its compressed storages would inflate to %" G_GUINT64_FORMAT " bytes, more "
                   "than %d times the file's size (a ZIP bomb?); save it with torch.save, which "
                   "does not compress",
                   loader->deflated_bytes, AGC_ZIP_INFLATE_RATIO);
    }
  // storage types and keys point into the pickle: forget them with it
  g_hash_table_remove_all (loader->storages);
  agc_pickle_free (pickle);
  return ok;
}

static gboolean
load (AgcTorchCheckpoint *checkpoint, GError **error)
{
  const AgcZipArchive *archive = checkpoint->archive;
  if (agc_zip_archive_n_entries (archive) == 0)
    return agc_fail_at (error, AGC_ERROR_FORMAT, checkpoint->path,
                 "is an empty ZIP archive, not a PyTorch checkpoint");
  // like torch: the folder of the first entry holds everything
  const char *first = agc_zip_archive_entry (archive, 0)->name;
  const char *slash = strchr (first, '/');
  if (slash == NULL)
    return agc_fail_at (error, AGC_ERROR_FORMAT, checkpoint->path,
                 "is a ZIP archive but not a PyTorch checkpoint: its first entry '%s' is not in "
                 "a folder",
                 first);
  Loader loader = {
    .checkpoint = checkpoint,
    .prefix = g_strndup (first, (gsize) (slash - first)),
    .storages = g_hash_table_new_full (g_str_hash, g_str_equal, NULL, g_free),
    .index = g_hash_table_new (g_str_hash, g_str_equal),
    .visited = g_hash_table_new (NULL, NULL),
  };
  gboolean ok = collect (&loader, error);
  g_hash_table_unref (loader.storages);
  g_hash_table_unref (loader.index);
  g_hash_table_unref (loader.visited);
  g_free (loader.prefix);
  return ok;
}

static AgcTorchCheckpoint *
checkpoint_new (const char *display_name)
{
  AgcTorchCheckpoint *checkpoint = g_new0 (AgcTorchCheckpoint, 1);
  checkpoint->path = g_strdup (display_name);
  agc_name_index_init (&checkpoint->index);
  checkpoint->tensors = g_array_new (FALSE, TRUE, sizeof (AgcTensorView));
  checkpoint->copies = g_ptr_array_new_with_free_func (g_free);
  return checkpoint;
}

/* Takes the archive; NULL (and the checkpoint freed) on error. */
static AgcTorchCheckpoint *
checkpoint_finish (AgcTorchCheckpoint *checkpoint, AgcZipArchive *archive, GError **error)
{
  checkpoint->archive = archive;
  if (archive == NULL || !load (checkpoint, error))
    {
      agc_torch_checkpoint_free (checkpoint);
      return NULL;
    }
  for (guint i = 0; i < checkpoint->tensors->len; i++)
    {
      AgcTensorView *view = &g_array_index (checkpoint->tensors, AgcTensorView, i);
      agc_name_index_add (&checkpoint->index, view->name, view);
    }
  return checkpoint;
}

AgcTorchCheckpoint *
agc_torch_checkpoint_new_from_bytes (GBytes *bytes, const char *display_name, GError **error)
{
  g_return_val_if_fail (bytes != NULL && display_name != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);
  AgcTorchCheckpoint *checkpoint = checkpoint_new (display_name);
  return checkpoint_finish (checkpoint, agc_zip_archive_new_from_bytes (bytes, display_name, error),
                            error);
}

AgcTorchCheckpoint *
agc_torch_checkpoint_open (const char *path, GError **error)
{
  g_return_val_if_fail (path != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);
  g_autofree char *display_name = g_filename_display_name (path);
  AgcTorchCheckpoint *checkpoint = checkpoint_new (display_name);
  return checkpoint_finish (checkpoint, agc_zip_archive_open (path, error), error);
}

void
agc_torch_checkpoint_free (AgcTorchCheckpoint *checkpoint)
{
  if (checkpoint == NULL)
    return;
  agc_name_index_clear (&checkpoint->index);
  g_array_unref (checkpoint->tensors);
  g_ptr_array_unref (checkpoint->copies);
  agc_zip_archive_free (checkpoint->archive);
  g_free (checkpoint->path);
  g_free (checkpoint);
}

const char *
agc_torch_checkpoint_path (const AgcTorchCheckpoint *checkpoint)
{
  return checkpoint->path;
}

int
agc_torch_checkpoint_n_tensors (const AgcTorchCheckpoint *checkpoint)
{
  return (int) checkpoint->tensors->len;
}

const AgcTensorView *
agc_torch_checkpoint_tensor (const AgcTorchCheckpoint *checkpoint, int index)
{
  g_return_val_if_fail (index >= 0 && (guint) index < checkpoint->tensors->len, NULL);
  return &g_array_index (checkpoint->tensors, AgcTensorView, index);
}

const AgcTensorView *
agc_torch_checkpoint_find (const AgcTorchCheckpoint *checkpoint, const char *name)
{
  return agc_name_index_find (&checkpoint->index, name);
}
