/* resnet-open.c — a ResNet-50 backbone straight from a weights file, for
 * front ends that have no AgcWeights (agriclip.h, "ResNet-50 backbone"). */
#include "nn/resnet.h"

AgcResNet *
agc_resnet_open (const char *weights_path, const char *prefix, GError **error)
{
  g_return_val_if_fail (weights_path != NULL, NULL);
  AgcWeights *weights = agc_weights_open (weights_path, error);
  if (weights == NULL)
    return NULL;
  AgcResNet *net = agc_resnet_load (weights, prefix ? prefix : "", error);
  agc_weights_free (weights); // the backbone holds its own (folded) copies
  return net;
}
