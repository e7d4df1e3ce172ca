/* activation.h — the MLP activations CLIP checkpoints use (hidden_act), and
 * the ReLU of the ResNet-50's convolutions. */
#pragma once

typedef enum
{
  AGC_ACT_QUICK_GELU, /* x * sigmoid(1.702 x) */
  AGC_ACT_GELU,       /* exact, erf */
  AGC_ACT_RELU,       /* max(x, 0) */
} AgcActivation;
