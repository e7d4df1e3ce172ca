/* safetensors.h — a validating reader of the safetensors format.
 *
 * The file is memory-mapped; tensor data are views into the mapping (not
 * aligned: read them with memcpy or the converters in tensor.h).  Every
 * header field is checked: header length within the file, JSON well formed
 * (strictly: no comments, hex or leading-zero numbers, duplicate keys, or
 * integers beyond int64), known dtype, shape x dtype size = byte length,
 * offsets inside the data section, tensors tiling it without gaps, overlap
 * or trailing bytes.  Errors: AGC_ERROR_IO (cannot open), AGC_ERROR_FORMAT
 * (malformed; the message names the file and the tensor),
 * AGC_ERROR_UNSUPPORTED (unknown dtype, more than AGC_MAX_DIMS dims).
 * Tensors are listed in data order. */
#pragma once

#include "formats/tensor.h"

typedef struct AgcSafetensors AgcSafetensors;

AgcSafetensors *agc_safetensors_open (const char *path, GError **error);
void agc_safetensors_free (AgcSafetensors *file);

const char *agc_safetensors_path (const AgcSafetensors *file);
int agc_safetensors_n_tensors (const AgcSafetensors *file);
const AgcTensorView *agc_safetensors_tensor (const AgcSafetensors *file, int index);
/* NULL when absent. */
const AgcTensorView *agc_safetensors_find (const AgcSafetensors *file, const char *name);
/* Whether [data, data + n) lies in the file's read-only mapping. */
gboolean agc_safetensors_maps (const AgcSafetensors *file, const void *data, size_t n);
/* The optional "__metadata__" string map, or NULL.  Owned by the file. */
GHashTable *agc_safetensors_metadata (const AgcSafetensors *file);
