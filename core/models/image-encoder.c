/* image-encoder.c — what the families of image-encoder.h share. */
#include "models/image-encoder.h"

#include "kernels/gemm-int8.h"

// int8 mode in two ways: 7-bit activations on plain AVX2 give other numbers
const char *
agc_image_encoder_int8_variant (const AgcImageEncoder *encoder, const AgcEngineOptions *options)
{
  (void) encoder;
  if (!options->int8)
    return "";
  return agc_int8_activation_max () == 255 ? "-int8" : "-int8-7bit";
}
