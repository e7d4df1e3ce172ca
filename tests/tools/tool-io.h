/* tool-io.h — what the training-step tools (finetune-step, clip-train-step)
 * share: reading IN.safetensors (tensors by name, F32 arrays, I64 ids,
 * numbers in its metadata) and collecting OUT's tensors.  Any problem is
 * "error: ..." on stderr and exit 1; a wrong command line exits 2.
 *
 * One tool is one file, so the state is file-scope, as in the tools. */
#pragma once

#include "formats/safetensors-write.h"
#include "formats/safetensors.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static AgcSafetensors *in;
static GHashTable *meta; // IN's metadata; NULL without
static GArray *out;      // AgcTensorView: OUT's tensors
static GPtrArray *owned; // arrays and names freed at the end

static inline void
die (const char *what, const char *name)
{
  fprintf (stderr, "error: %s %s\n", what, name);
  exit (1);
}

/* Opens IN = argv[1]; OUT = argv[2] is written by tool_io_finish. */
static inline void
tool_io_open (int argc, char **argv, const char *tool)
{
  if (argc != 3)
    {
      fprintf (stderr, "usage: %s IN.safetensors OUT.safetensors\n", tool);
      exit (2);
    }
  GError *error = NULL;
  if ((in = agc_safetensors_open (argv[1], &error)) == NULL)
    die ("", error->message);
  meta = agc_safetensors_metadata (in);
  out = g_array_new (FALSE, TRUE, sizeof (AgcTensorView));
  owned = g_ptr_array_new_with_free_func (g_free);
}

static inline const AgcTensorView *
tensor (const char *name)
{
  const AgcTensorView *t = agc_safetensors_find (in, name);
  if (t == NULL)
    die ("IN lacks tensor", name);
  return t;
}

/* An F32 tensor of IN as floats (freed at the end); *n (if not NULL) gets
 * its count. */
static inline float *
input (const char *name, size_t *n)
{
  const AgcTensorView *t = tensor (name);
  if (t->dtype != AGC_DTYPE_F32)
    die ("not F32:", name);
  float *x = g_new (float, t->n_bytes / 4);
  agc_tensor_to_f32 (t, x);
  g_ptr_array_add (owned, x);
  if (n != NULL)
    *n = t->n_bytes / 4;
  return x;
}

/* An I64 tensor of IN (token ids, labels) as int32 (freed at the end). */
static inline int32_t *
input_ids (const char *name, size_t *n)
{
  const AgcTensorView *t = tensor (name);
  if (t->dtype != AGC_DTYPE_I64)
    die ("not I64:", name);
  size_t count = t->n_bytes / 8;
  int32_t *ids = g_new (int32_t, count);
  for (size_t i = 0; i < count; i++)
    {
      gint64 v;
      memcpy (&v, t->data + 8 * i, 8);
      ids[i] = (int32_t) v;
    }
  g_ptr_array_add (owned, ids);
  if (n != NULL)
    *n = count;
  return ids;
}

static inline double
number (const char *key)
{
  const char *value = meta != NULL ? g_hash_table_lookup (meta, key) : NULL;
  if (value == NULL)
    die ("IN lacks metadata", key);
  return g_ascii_strtod (value, NULL);
}

/* Adds data[n] to OUT as a flat tensor; data must live until
 * tool_io_finish. */
static inline void
emit (const char *name, AgcDType dtype, const void *data, size_t n)
{
  char *copy = g_strdup (name);
  g_ptr_array_add (owned, copy);
  AgcTensorView v = { .name = copy, .dtype = dtype, .n_dims = 1, .shape = { (int64_t) n },
                      .data = data, .n_bytes = n * agc_dtype_size (dtype) };
  g_array_append_val (out, v);
}

static inline void
emit_f64 (const char *name, double value)
{
  double *x = g_new (double, 1);
  *x = value;
  g_ptr_array_add (owned, x);
  emit (name, AGC_DTYPE_F64, x, 1);
}

/* Writes the emitted tensors to path, then frees what was read and emitted. */
static inline void
tool_io_finish (const char *path)
{
  GError *error = NULL;
  if (!agc_safetensors_write (path, (AgcTensorView *) out->data, (int) out->len, NULL, FALSE,
                              &error))
    die ("", error->message);
  agc_safetensors_free (in);
  g_ptr_array_unref (owned);
  g_array_unref (out);
}
