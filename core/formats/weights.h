/* weights.h — the named tensors of one checkpoint, possibly spread over
 * several files (a sharded model.safetensors.index.json), with typed,
 * shape-checked access.  Errors name the file and the tensor. */
#pragma once

#include "formats/tensor.h"

typedef struct AgcWeights AgcWeights;

/* A single checkpoint file, or (path ending in .json) a
 * model.safetensors.index.json / pytorch_model.bin.index.json whose
 * weight_map names the shards, relative to the index's folder; each shard is
 * opened once and only the tensors the map lists are visible.  The format of
 * each file is told by its first bytes, not its name: a PyTorch ZIP
 * checkpoint (.pt, .pth, .bin, .ckpt: torch-checkpoint.h) or safetensors;
 * a legacy PyTorch file (torch < 1.6, or _use_new_zipfile_serialization=
 * False) or another pickle is AGC_ERROR_UNSUPPORTED with a hint to re-save.
 * Tensor data stay memory-mapped until agc_weights_free. */
AgcWeights *agc_weights_open (const char *path, GError **error);
void agc_weights_free (AgcWeights *weights);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (AgcWeights, agc_weights_free)

/* Derived sets, for renaming layers (weight-names.h): an empty set that owns
 * base (freed with it) and shows only the tensors added to it.  Its path is
 * base's. */
AgcWeights *agc_weights_new_derived (AgcWeights *base);
/* An empty set to fill with agc_weights_add (tensors held in memory, as an
 * adapter's); path names it in messages. */
AgcWeights *agc_weights_new_empty (const char *path);
/* Shows tensor under name (both copied; the view's other fields, data
 * included, are kept).  tensor->data must live as long as weights: in base,
 * or in data_to_free, a g_malloc'd block weights frees (NULL: none).  A name
 * added again replaces the earlier tensor. */
const AgcTensorView *agc_weights_add (AgcWeights *weights, const char *name,
                                      const AgcTensorView *tensor, gpointer data_to_free);
/* Display name of the file opened (of the base's, for derived sets). */
const char *agc_weights_path (const AgcWeights *weights);

/* Gives the memory of the pages wholly inside [data, data + n) back to the
 * system when they map a safetensors file of weights (touched again, they
 * are read from the file); does nothing otherwise.  For tensors that were
 * copied into another form and are no longer read, so that a model does not
 * hold its weights twice. */
void agc_weights_release (const AgcWeights *weights, const void *data, size_t n);

/* NULL when absent. */
const AgcTensorView *agc_weights_find (const AgcWeights *weights, const char *name);
/* Every visible tensor, in file order (index order for shards). */
int agc_weights_n_tensors (const AgcWeights *weights);
const AgcTensorView *agc_weights_tensor (const AgcWeights *weights, int index);

/* Checks that the tensor exists, is floating point and has exactly the given
 * shape (n_dims values), then returns a new float32 copy (g_free it).
 * AGC_ERROR_MODEL otherwise, e.g. "model.safetensors: tensor
 * 'vision_model.pre_layrnorm.weight' has shape [512], expected [768]" or
 * "model.safetensors: missing tensor 'text_projection.weight'". */
float *agc_weights_take_f32 (const AgcWeights *weights, const char *name,
                             int n_dims, const int64_t *shape, GError **error);
/* Same, for the convenience of 1-D and 2-D tensors. */
float *agc_weights_take_1d (const AgcWeights *weights, const char *name, int64_t n, GError **error);
float *agc_weights_take_2d (const AgcWeights *weights, const char *name, int64_t rows,
                            int64_t cols, GError **error);
