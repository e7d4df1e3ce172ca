/* test-resnet-packed.c — ResNet-50 on the packed kernels (core/nn/resnet.c):
 * its convolutions are cut into jobs, blocks of output pixels (whole tiles)
 * by blocks of channels, planned from the thread count, that must cover
 * every output once.  The jobs never change the arithmetic of an output, so
 * the features are the same bit for bit on 1, 2, 3 and 5 threads, and they
 * agree with the OpenBLAS engine; on the AVX-512 kernel and on the AVX2 one.
 * Odd sizes leave partial tiles; small images put layer4 on a few rows split
 * by channels.  (The comparison with torchvision is tests/reference/test_resnet.py.) */
#include "agriclip.h"
#include "formats/weights.h"
#include "kernels/gemm-packed.h"
#include "nn/resnet.h"
#include "unit-util.h"

#include <string.h>

// a random ResNet-50 loaded as from a checkpoint; *weights and *owned hold
// the tensors
static AgcResNet *
random_inference_resnet (AgcWeights **weights, GPtrArray **owned)
{
  g_autoptr (GRand) rng = g_rand_new_with_seed (11);
  AgcResNetTrain *train = random_resnet (rng);
  g_autoptr (GArray) views = g_array_new (FALSE, TRUE, sizeof (AgcTensorView));
  *owned = g_ptr_array_new_with_free_func (g_free);
  agc_resnet_train_export (train, "", views, *owned);
  *weights = agc_weights_new_empty ("random ResNet-50");
  for (guint i = 0; i < views->len; i++)
    {
      const AgcTensorView *v = &g_array_index (views, AgcTensorView, i);
      agc_weights_add (*weights, v->name, v, NULL);
    }
  GError *error = NULL;
  AgcResNet *net = agc_resnet_load (*weights, "", &error);
  g_assert_no_error (error);
  agc_resnet_train_free (train);
  return net;
}

static float *
features_of (AgcResNet *net, const float *pixels, int batch, int height, int width)
{
  float *f = g_new (float, (size_t) batch * AGC_RESNET_FEATURES);
  GError *error = NULL;
  g_assert_true (agc_resnet_forward (net, pixels, batch, height, width, f, &error));
  g_assert_no_error (error);
  return f;
}

// the features of pixels after a pass over other ones, so that an output a
// job would miss holds other values (the scratch memory is reused)
static float *
features (AgcResNet *net, const float *pixels, const float *other, int batch, int height,
          int width)
{
  g_free (features_of (net, other, batch, height, width));
  return features_of (net, pixels, batch, height, width);
}

static void
test_jobs_cover_the_output (void)
{
  if (!agc_packed_gemm_available ())
    {
      g_test_skip ("no packed kernel on this CPU");
      return;
    }
  AgcWeights *weights = NULL;
  GPtrArray *owned = NULL;
  AgcResNet *net = random_inference_resnet (&weights, &owned);
  g_autoptr (GRand) rng = g_rand_new_with_seed (12);
  // batch, height, width: partial tiles; at 2 threads the stem in row
  // blocks alone, layer1-4 in blocks of rows and channels
  static const int sizes[][3] = { { 3, 37, 53 } };
  int saved_threads = agc_get_threads ();
  for (gsize s = 0; s < G_N_ELEMENTS (sizes); s++)
    {
      int batch = sizes[s][0], h = sizes[s][1], w = sizes[s][2];
      size_t n = (size_t) batch * AGC_RESNET_FEATURES;
      g_autofree float *pixels = random_floats (rng, (size_t) batch * 3 * h * w, 1.0, 0.0);
      g_autofree float *other = random_floats (rng, (size_t) batch * 3 * h * w, 1.0, 0.0);
      AgcEngineOptions options = agc_engine_default_options ();
      options.use_openblas = TRUE;
      g_assert_true (agc_resnet_set_options (net, &options, NULL));
      agc_set_threads (2);
      g_autofree float *blas = features (net, pixels, other, batch, h, w);
      options.use_openblas = FALSE;
      g_assert_true (agc_resnet_set_options (net, &options, NULL));
      double scale = 0.0;
      for (size_t i = 0; i < n; i++)
        scale = MAX (scale, fabs (blas[i]));
      g_assert_cmpfloat (scale, >, 0.0);
      for (int avx2 = 0; avx2 < 2; avx2++)
        {
          agc_packed_gemm_limit_to_avx2 (avx2);
          agc_set_threads (1);
          g_autofree float *one = features (net, pixels, other, batch, h, w);
          double worst = 0.0;
          for (size_t i = 0; i < n; i++)
            worst = MAX (worst, fabs (one[i] - blas[i]));
          g_test_message ("%d x %d x %d, %s: max |packed - OpenBLAS| / max |OpenBLAS| = %.2g",
                          batch, h, w, avx2 ? "AVX2" : "AVX-512", worst / scale);
          g_assert_cmpfloat (worst / scale, <, 1e-4);
          static const int threads[] = { 2, 3, 5 };
          for (gsize t = 0; t < G_N_ELEMENTS (threads); t++)
            {
              agc_set_threads (threads[t]);
              g_autofree float *f = features (net, pixels, other, batch, h, w);
              g_test_message ("%d x %d x %d, %s: %d threads", batch, h, w,
                              avx2 ? "AVX2" : "AVX-512", threads[t]);
              g_assert_cmpint (memcmp (f, one, n * sizeof (float)), ==, 0);
            }
        }
      agc_packed_gemm_limit_to_avx2 (FALSE);
    }
  agc_set_threads (saved_threads);
  agc_resnet_free (net);
  agc_weights_free (weights);
  g_ptr_array_unref (owned);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/resnet-packed/jobs-cover-the-output", test_jobs_cover_the_output);
  return g_test_run ();
}
