/* tower-config.h — the hyper-parameters that define a CLIP tower's shape.
 * Read from checkpoints by models/clip-config.h (config.json),
 * models/clip-config-infer.h (tensor shapes) and models/open-clip-config.h. */
#pragma once

#include "kernels/activation.h"

typedef struct
{
  int width;         /* hidden_size, D */
  int layers;        /* num_hidden_layers */
  int heads;         /* num_attention_heads */
  int mlp_width;     /* intermediate_size */
  float layer_norm_eps;
  AgcActivation act; /* hidden_act */
  /* text tower */
  int vocab_size;
  int context_length; /* max_position_embeddings */
  /* vision tower */
  int image_size;
  int patch_size;
} AgcTowerConfig;

typedef struct
{
  AgcTowerConfig text;
  AgcTowerConfig vision;
  int projection_dim; /* E */
} AgcClipConfig;
