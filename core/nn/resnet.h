/* resnet.h — torchvision's ResNet-50 without its fc head: pixels -> 2048
 * features, the global average pool of layer4.  AgriCLIP's image encoder is
 * a DINO-trained network of exactly this shape.
 *
 * Architecture (torchvision, "v1.5": the stride sits on the 3x3 conv):
 *   conv1 7x7/2 + bn1 + ReLU, max-pool 3x3/2 (padding 1),
 *   layer1..layer4: 3, 4, 6, 3 bottlenecks of width 64, 128, 256, 512
 *     (1x1 -> 3x3 -> 1x1 x4, each conv followed by BatchNorm), ReLU after the
 *     residual sum; block 0 of each layer projects the identity with
 *     downsample.0 (1x1 conv) + downsample.1 (BatchNorm) and, from layer2
 *     on, halves the resolution (stride 2 in conv2 and in the projection),
 *   global average pool -> [2048].
 *
 * Weights carry torchvision's names under an optional prefix:
 *   conv1.weight, bn1.{weight,bias,running_mean,running_var},
 *   layerL.N.{conv1,bn1,conv2,bn2,conv3,bn3}.*, layerL.0.downsample.{0,1}.*
 * Every shape is checked.  BatchNorm runs in eval mode (eps 1e-5) and is
 * folded into the conv before it on load; num_batches_tracked and fc.* are
 * ignored.  A file with more blocks per layer (ResNet-101/152) is refused
 * rather than silently truncated. */
#pragma once

#include "agriclip.h"
#include "formats/weights.h"

/* AgcResNet, AGC_RESNET_FEATURES, agc_resnet_open, agc_resnet_forward,
 * agc_resnet_set_options and agc_resnet_free are public (agriclip.h, "ResNet-50 backbone"). */

/* prefix: "" or e.g. "backbone." (prepended to every name).  When conv1.weight
 * is missing but the file has it under another prefix, the error names it. */
AgcResNet *agc_resnet_load (const AgcWeights *weights, const char *prefix, GError **error);

/* The options agc_resnet_set_options last set (the defaults until then). */
AgcEngineOptions agc_resnet_get_options (const AgcResNet *net);
