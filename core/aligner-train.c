/* aligner-train.c — placeholder until the method lands. */
#include "train-common.h"

gboolean
agc_train_aligner (AgcModel *model, const char *data_dir, const char *out_path,
              const AgcTrainParams *params, AgcTrainResult *result, GCancellable *cancellable,
              GError **error)
{
  (void) model, (void) data_dir, (void) out_path, (void) params, (void) result,
      (void) cancellable;
  g_set_error (error, AGC_ERROR, AGC_ERROR_UNSUPPORTED, "training method \"aligner\" is not available yet");
  return FALSE;
}
