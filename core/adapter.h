/* adapter.h — writing adapter files, and the parts of a loaded adapter
 * that classifier.c applies.  The file format and the model identity are
 * described in agriclip.h ("adapters"). */
#pragma once

#include "agriclip.h"
#include "tensor.h"

/* Writes a finished adapter, atomically and durably.  tensors: the trained
 * ones (probe: head.weight [C, E], head.bias [C]); metrics_json and
 * training_json: JSON objects, stored as they are. */
gboolean agc_adapter_write (const char *path, const char *method, const AgcModel *model,
                            const char *identity, const AgcLabelSet *labels,
                            const AgcTensorView *tensors, int n_tensors,
                            const char *metrics_json, const char *training_json,
                            GError **error);

/* The head of a probe adapter: weight[C, E] and bias[C], owned by the
 * adapter; *dim = E.  FALSE for other methods. */
gboolean agc_adapter_probe_head (const AgcAdapter *adapter, const float **weight,
                                 const float **bias, int *dim);
