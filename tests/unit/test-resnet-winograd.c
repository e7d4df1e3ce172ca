/* Winograd F(4x4, 3x3) and F(2x2, 3x3) (core/nn/resnet-winograd.c), on
 * the AVX-512 and the AVX2 kernels, against a float64 direct
 * 3x3 convolution (stride 1, padding 1) written here: sizes that are not
 * multiples of the 4 x 4 tile (partial tiles at the right and bottom
 * edges), images of one pixel, batches, ReLU on and off, channel counts
 * whose row strides resnet-winograd.c pads, and more tiles than one chunk. */
#include "nn/resnet-winograd.h"

#include <agriclip.h>
#include <math.h>

static float
random_float (guint32 *state)
{
  *state = *state * 1664525u + 1013904223u;
  return (float) (*state >> 8) / (float) (1u << 24) - 0.5f;
}

typedef struct
{
  int batch, height, width, c_in, c_out;
  gboolean relu;
} Case;

static void
check_case (const Case *k, int tile)
{
  guint32 state = (guint32) (k->height * 7919 + k->width * 31 + k->c_in);
  size_t n_in = (size_t) k->batch * k->height * k->width * k->c_in;
  size_t n_out = (size_t) k->batch * k->height * k->width * k->c_out;
  size_t n_weight = (size_t) 9 * k->c_in * k->c_out;
  float *in = g_new (float, n_in), *weight = g_new (float, n_weight);
  float *bias = g_new (float, k->c_out), *out = g_new (float, n_out);
  for (size_t i = 0; i < n_in; i++)
    in[i] = random_float (&state);
  for (size_t i = 0; i < n_weight; i++) // [ky][kx][c_in][c_out]
    weight[i] = random_float (&state);
  for (int o = 0; o < k->c_out; o++)
    bias[o] = random_float (&state);

  AgcWinograd w;
  GError *error = NULL;
  g_assert_true (agc_winograd_init (&w, weight, k->c_in, k->c_out, tile, &error));
  g_assert_no_error (error);
  float *scratch
    = g_new (float, agc_winograd_scratch_floats (k->c_in, k->c_out, tile, k->batch, k->height, k->width));
  agc_winograd_forward (out, in, scratch, &w, bias, k->batch, k->height, k->width, k->relu);

  double worst = 0;
  for (int b = 0; b < k->batch; b++)
    for (int y = 0; y < k->height; y++)
      for (int x = 0; x < k->width; x++)
        for (int o = 0; o < k->c_out; o++)
          {
            double sum = bias[o];
            for (int ky = 0; ky < 3; ky++)
              for (int kx = 0; kx < 3; kx++)
                {
                  int iy = y + ky - 1, ix = x + kx - 1;
                  if (iy < 0 || iy >= k->height || ix < 0 || ix >= k->width)
                    continue;
                  const float *pixel
                    = in + (((size_t) b * k->height + iy) * k->width + ix) * k->c_in;
                  for (int c = 0; c < k->c_in; c++)
                    sum += (double) pixel[c]
                           * weight[((size_t) (ky * 3 + kx) * k->c_in + c) * k->c_out + o];
                }
            if (k->relu && sum < 0)
              sum = 0;
            size_t i = (((size_t) b * k->height + y) * k->width + x) * k->c_out + o;
            worst = MAX (worst, fabs (out[i] - sum) / sqrt (9.0 * k->c_in));
          }
  // the direct float32 sum rounds ~6e-8 x sqrt(n); F(4, 3)'s transforms
  // (entries up to 8 and 5, G's sixths) amplify that some 10-50 times,
  // within the 1e-4 relative that the ResNet's reference test allows;
  // F(2, 3)'s (entries 1 and 1/2) hardly at all
  double bound = tile == 4 ? 1e-5 : 1e-6;
  g_test_message ("F(%d): %d x %dx%d, %d -> %d: error %g x sqrt(9 c_in)", tile, k->batch,
                  k->height, k->width, k->c_in, k->c_out, worst);
  if (worst > bound)
    g_error ("F(%d): %d x %dx%d, %d -> %d: error %g x sqrt(9 c_in)", tile, k->batch, k->height,
             k->width, k->c_in, k->c_out, worst);
  agc_winograd_clear (&w);
  g_free (scratch);
  g_free (in);
  g_free (weight);
  g_free (bias);
  g_free (out);
}

static const Case cases[] = {
  { 1, 4, 4, 8, 8, TRUE },       // one whole tile
  { 2, 5, 7, 16, 24, FALSE },    // partial tiles, a batch
  { 3, 1, 1, 8, 16, TRUE },      // one pixel: all padding but the centre
  { 1, 14, 14, 128, 32, TRUE },  // strides padded (128 -> 144), layer3's 16 tiles
  { 1, 61, 58, 128, 8, FALSE },  // 240 (F(4x4)) or 899 tiles
  { 3, 50, 50, 256, 8, FALSE },  // in chunks: 507 F(4x4) tiles by 416, 1875 F(2x2) by 936
  { 2, 7, 7, 512, 40, TRUE },    // layer4's channels and 7 x 7 (partial tiles)
};

static void
check_all (void)
{
  if (!agc_winograd_supports (8, 8))
    {
      g_test_skip ("no packed kernel on this CPU");
      return;
    }
  for (int avx2 = 0; avx2 < 2; avx2++) // the AVX-512 kernel where present, then AVX2's
    {
      agc_packed_gemm_limit_to_avx2 (avx2);
      for (size_t i = 0; i < G_N_ELEMENTS (cases); i++)
        {
          check_case (&cases[i], 4);
          check_case (&cases[i], 2);
        }
    }
  agc_packed_gemm_limit_to_avx2 (FALSE);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/resnet-winograd/direct-convolution", check_all);
  return g_test_run ();
}
