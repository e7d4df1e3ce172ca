/* safetensors-write.h — writing safetensors files, atomically.
 *
 * The file is written to a hidden temporary file in the destination's folder
 * (".NAME.tmp-XXXXXX"), flushed and renamed over NAME, so that NAME is
 * either the old file, the complete new one, or absent: never a half-written
 * file that looks finished.  With durable, the data are fsync'ed before the
 * rename and the folder after it, so the new file also survives a crash of
 * the machine (adapters, checkpoints); without, a crash may lose the new
 * file but never leaves a torn one in its place (caches).
 *
 * Tensors are written in the order given, without gaps; the header is
 * padded with spaces to a multiple of 8 bytes.  Only the name, dtype,
 * n_dims, shape and data fields of the views are read: n_bytes must equal
 * the shape's element count times the dtype size (checked).  Errors:
 * AGC_ERROR_IO naming the file. */
#pragma once

#include "formats/tensor.h"

/* metadata: string -> string, or NULL; written as "__metadata__" with the
 * keys sorted, so that equal content gives equal files. */
gboolean agc_safetensors_write (const char *path, const AgcTensorView *tensors, int n_tensors,
                                GHashTable *metadata, gboolean durable, GError **error);

/* The same atomic replacement for any bytes (small files such as memos). */
gboolean agc_write_file_atomic (const char *path, const void *data, size_t n_bytes,
                                gboolean durable, GError **error);

/* Removes the temporary files of path left behind by writers that were
 * killed.  Only for a path no other process is writing at the moment. */
void agc_remove_stale_temporaries (const char *path);
