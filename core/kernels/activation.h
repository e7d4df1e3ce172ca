/* activation.h — the MLP activations CLIP checkpoints use (hidden_act). */
#pragma once

typedef enum
{
  AGC_ACT_QUICK_GELU, /* x * sigmoid(1.702 x) */
  AGC_ACT_GELU,       /* exact, erf */
} AgcActivation;
