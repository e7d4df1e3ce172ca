/* adapter.h — writing adapter files, and the parts of a loaded adapter
 * that classifier.c and model.c apply.  The file format and the model identity are
 * described in agriclip.h ("adapters"). */
#pragma once

#include "agriclip.h"
#include "formats/tensor.h"

/* Writes a finished adapter, atomically and durably.  tensors: the trained
 * ones (probe: head.weight [C, E], head.bias [C]); metrics_json and
 * training_json: JSON objects, stored as they are; stack_json (may be NULL):
 * agriclip.stack of a stacked adapter (agriclip.h, "adapters"). */
gboolean agc_adapter_write (const char *path, const char *method, const AgcModel *model,
                            const char *identity, const AgcLabelSet *labels,
                            const AgcTensorView *tensors, int n_tensors,
                            const char *metrics_json, const char *training_json,
                            const char *stack_json, GError **error);

/* TRUE when path does not exist or is an agriclip adapter, which training may
 * replace; otherwise AGC_ERROR_INPUT naming the file: a model's weights, a
 * photo or a thesis given as --out is not overwritten. */
gboolean agc_adapter_check_destination (const char *path, GError **error);

/* The head of a probe adapter: weight[C, E] and bias[C], owned by the
 * adapter; *dim = E.  FALSE for other methods. */
gboolean agc_adapter_probe_head (const AgcAdapter *adapter, const float **weight,
                                 const float **bias, int *dim);

/* A tensor that replaces the model's (finetune, aligner, a probe's base) by name and dimension count
 * (shape[n_dims] filled when not NULL), or NULL.  Owned by the adapter. */
const float *agc_adapter_find_tensor (const AgcAdapter *adapter, const char *name, int n_dims,
                                      int64_t *shape);
/* SHA-256 of the tensors that replace the model's (names, shapes, values);
 * NULL for a probe on no base.  Two adapters with the same digest change a
 * model alike. */
const char *agc_adapter_digest (const AgcAdapter *adapter);
/* agriclip.stack of a stacked adapter (a JSON array), or NULL. */
const char *agc_adapter_stack (const AgcAdapter *adapter);
/* The method whose model family the adapter's tensors fit: its own for
 * finetune and aligner, its base's for a probe trained on one
 * (agriclip.stack); NULL when it replaces no tensors. */
const char *agc_adapter_tensors_method (const AgcAdapter *adapter);
/* The file, as given to agc_adapter_load, for messages. */
const char *agc_adapter_path (const AgcAdapter *adapter);

/* model.c: TRUE once a finetune or aligner adapter changed the model's
 * tensors (agc_model_apply_adapter); its embeddings are then not those of
 * its identity. */
gboolean agc_model_has_adapter (const AgcModel *model);
/* The digest of that adapter (agc_adapter_digest), or NULL: caches of image
 * embeddings key on it with the identity. */
const char *agc_model_adapter_digest (const AgcModel *model);
/* model.c: what besides the weights and the adapter decides the model's
 * image embeddings ("" or, in int8 mode, the int8 variant): cache keys
 * include it. */
const char *agc_model_cache_variant (const AgcModel *model);
