/* image-encoder.h — a model's image side, whatever its family: preprocessed
 * pixels in, embeddings out, plus what the family allows (int8 mode, the
 * adapter method that replaces its weights, the class recipe).  model.c and
 * the caches see only this, so a new family (a SigLIP tower, say) is one
 * file that fills an AgcImageEncoderClass.
 *
 * Families: vit-encoder.c (CLIP's ViT, nn/vision-tower.h) and
 * agriclip-model.c (AgriCLIP's DINO ResNet-50 and its aligner). */
#pragma once

#include "agriclip.h"

#include "models/adapter.h"

typedef struct AgcImageEncoder AgcImageEncoder;

typedef struct
{
  /* pixels[batch, 3, S, S] (preprocessed) -> out[batch, E], not normalised */
  gboolean (*forward) (AgcImageEncoder *encoder, const float *pixels, int batch, float *out,
                       GError **error);
  /* int8 mode; NULL: the family has none (set_int8_refusal says why) */
  gboolean (*set_int8) (AgcImageEncoder *encoder, gboolean int8, GError **error);
  gboolean (*get_int8) (const AgcImageEncoder *encoder);
  const char *set_int8_refusal;
  /* what besides the weights decides an embedding, for cache keys ("" if
   * nothing): int8 mode, for instance, changes the numbers */
  const char *(*cache_variant) (const AgcImageEncoder *encoder);
  /* the adapter method whose tensors replace this family's weights, and
   * the call that applies them: every tensor is checked before the first is
   * set, so a bad adapter leaves the encoder as it was */
  const char *adapter_method;
  gboolean (*apply_adapter) (AgcImageEncoder *encoder, const AgcAdapter *adapter,
                             GError **error);
  AgcClassRecipe class_recipe;
  void (*free) (AgcImageEncoder *encoder);
} AgcImageEncoderClass;

/* The first member of every family's encoder struct. */
struct AgcImageEncoder
{
  const AgcImageEncoderClass *klass;
};
