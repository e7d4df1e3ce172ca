/* image-encoder.h — a model's image side, whatever its family: preprocessed
 * pixels in, embeddings out, plus what the family allows (engine options
 * such as int8 mode, the adapter method that replaces its weights, the class recipe).  model.c and
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
  /* the engine options (agriclip.h) from the next call on; may refuse
   * them.  NULL: the family runs one way only and ignores them, but
   * refuses int8 mode with int8_refusal */
  gboolean (*set_options) (AgcImageEncoder *encoder, const AgcEngineOptions *options,
                           GError **error);
  const char *int8_refusal;
  /* what besides the weights decides an embedding under options, for cache
   * keys ("" if nothing): int8 mode, for instance, changes the numbers */
  const char *(*cache_variant) (const AgcImageEncoder *encoder, const AgcEngineOptions *options);
  /* the adapter method whose tensors replace this family's weights, and
   * the call that applies them: every tensor is checked before the first is
   * set, so a bad adapter leaves the encoder as it was */
  const char *adapter_method;
  /* another method whose adapters it applies (AgriCLIP: dino), or NULL */
  const char *adapter_method_too;
  gboolean (*apply_adapter) (AgcImageEncoder *encoder, const AgcAdapter *adapter,
                             GError **error);
  AgcClassRecipe class_recipe;
  void (*free) (AgcImageEncoder *encoder);
} AgcImageEncoderClass;

/* A cache_variant for the families whose only variant is int8 mode ("",
 * "-int8", or "-int8-7bit" where the activations are 7-bit). */
const char *agc_image_encoder_int8_variant (const AgcImageEncoder *encoder,
                                            const AgcEngineOptions *options);

/* The first member of every family's encoder struct. */
struct AgcImageEncoder
{
  const AgcImageEncoderClass *klass;
};
