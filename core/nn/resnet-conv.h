/* resnet-conv.h — the convolution of resnet.c, which the training mode
 * (resnet-train.c) runs too, with BatchNorm kept apart instead of folded.
 *
 * Activations are pixel-major, [B*H*W, C]; a conv is the GEMM
 * out[P, c_out] = col[P, k*k*c_in] @ weight[k*k*c_in, c_out] over its P
 * output pixels, a col row holding the k*k input pixels one output pixel
 * sees (tap by tap, c_in floats each, zeros in the padding). */
#pragma once

#include <glib.h>
#include <stddef.h>

typedef struct
{
  int c_in, c_out, kernel, stride, padding;
  float *weight; // [kernel, kernel, c_in, c_out]: the GEMM's right-hand matrix
  float *bias;   // [c_out], or NULL: none
} AgcConv;

/* Output height (or width) of an input of size pixels. */
int agc_conv_out_size (const AgcConv *c, int size);

/* Floats of the col scratch agc_conv_forward needs with threads threads
 * (0 for a 1x1 stride-1 conv, which reads its input as col). */
size_t agc_conv_col_floats (const AgcConv *c, int batch, int height, int width, int threads);

/* out[B*H'*W', c_out] = conv(in[B, H, W, c_in]) + bias (+ out when
 * accumulate), then ReLU if relu.  col: scratch of at least
 * agc_conv_col_floats floats, col_stride = that / threads.  Runs on the
 * pool: call between agc_threads_blas_serial_begin and _end. */
void agc_conv_forward (float *out, const float *in, float *col, size_t col_stride,
                       const AgcConv *c, int batch, int height, int width, gboolean accumulate,
                       gboolean relu);

/* col[P, k*k*c_in] of in[B, H, W, c_in] for all P = B*H'*W' output pixels,
 * on the pool. */
void agc_conv_im2col (float *col, const AgcConv *c, const float *in, int batch, int height,
                      int width);

/* ResNet-50's shape (resnet.h): bottlenecks per layer and their widths
 * (the output has 4 times as many channels). */
extern const int agc_resnet_blocks_per_layer[4];
extern const int agc_resnet_layer_width[4];
