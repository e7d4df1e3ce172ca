/* resnet-winograd.h — a ResNet's stride-1 3x3 convolutions as Winograd
 * F(4x4, 3x3) or F(2x2, 3x3) on the packed kernels (Lavin and Gray, 2016).
 *
 * Each 4 x 4 block of output pixels is computed from the 6 x 6 input pixels
 * around it: the input tile d goes to V = B^T d B, the weights g to
 * U = G g G^T (on load), and the output is Y = A^T (U . V) A, where the
 * elementwise product over the 36 positions is, for all tiles and channels
 * at once, 36 GEMMs M_x[tiles, c_out] = V_x[tiles, c_in] @ U_x[c_in, c_out]:
 * 36 multiplications where the direct convolution does 9 x 16 = 144, at
 * the cost of the transforms (per channel, not per channel pair) and of
 * weights 4 times larger.  The result differs from the direct sum by
 * rounding only (the transforms' constants are exact in float but for G's).
 * F(2x2, 3x3) is the same with 4 x 4 input tiles: 16 products where the
 * direct convolution does 36, smaller transforms, weights 16 / 9 times the
 * direct conv's, 4 times as many tiles: it pays where F(4x4)'s tiles are
 * too few for its weights (small images, small batches).
 *
 * Activations are pixel-major (NHWC) as in resnet.c; the output gets the
 * conv's bias and optionally ReLU.  Needs agc_packed_gemm_available (),
 * hence AVX2 and FMA. */
#pragma once

#include "kernels/gemm-packed.h"

#include <glib.h>

enum
{
  AGC_WINOGRAD_POSITIONS = 36, // 6 x 6
};

typedef struct
{
  int c_in, c_out;
  int tile;                                  // output tile side: 4 or 2
  AgcPackedMatrix u[AGC_WINOGRAD_POSITIONS]; // U_x as [c_out, c_in] in panels; (tile + 2)^2
} AgcWinograd;

/* TRUE when a conv of these channel counts can run here (multiples of 8). */
gboolean agc_winograd_supports (int c_in, int c_out);

/* U of F(tile x tile, 3x3), tile 4 or 2, from weight[3][3][c_in][c_out]
 * (taps, then the GEMM's [in, out]); FALSE with error set when memory is
 * short. */
gboolean agc_winograd_init (AgcWinograd *w, const float *weight, int c_in, int c_out, int tile,
                            GError **error);
void agc_winograd_clear (AgcWinograd *w);

/* tile x tile output tiles of a batch x height x width input. */
int agc_winograd_tiles (int tile, int batch, int height, int width);

/* Floats of scratch agc_winograd_forward needs for this input. */
size_t agc_winograd_scratch_floats (int c_in, int c_out, int tile, int batch, int height,
                                    int width);

/* out[B*H*W, c_out] = max (0, conv3x3 (in[B, H, W, c_in]) + bias) (no max
 * unless relu), padding 1, over the pool. */
void agc_winograd_forward (float *out, const float *in, float *scratch, const AgcWinograd *w,
                           const float *bias, int batch, int height, int width, gboolean relu);
