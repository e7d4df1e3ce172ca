/* checkpoint.h — what every training checkpoint file carries beside the
 * method's state: agriclip.kind "checkpoint" (so that it is never taken for
 * an adapter), agriclip.method, and the fingerprint of what produced it
 * (model, data, settings); and the checks before resuming from one. */
#pragma once

#include "agriclip.h"
#include "formats/safetensors.h"

/* The metadata of a checkpoint of method; the method adds its own keys.
 * Keys and values are not owned: they must outlive the table. */
GHashTable *agc_checkpoint_metadata_new (const char *method, const char *fingerprint);

/* Opens path when it is a checkpoint of method with this fingerprint;
 * otherwise NULL with AGC_ERROR_FORMAT naming the file and the reason
 * (agc_checkpoint_refuse). */
AgcSafetensors *agc_checkpoint_open (const char *path, const char *method,
                                     const char *fingerprint, GError **error);

/* AGC_ERROR_FORMAT "PATH: reason", for a checkpoint that does not fit. */
void agc_checkpoint_refuse (GError **error, const char *path, const char *reason);
