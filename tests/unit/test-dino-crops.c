/* test-dino-crops.c — DINO's multi-crop augmentation (train/dino-crops.h):
 * the same seed, image and epoch give the same crops, another epoch other
 * ones; a flat photo stays flat through every operation (crop, resize,
 * flip, jitter, grey, blur, solarize) and its normalised values are those
 * of some 8-bit colour. */
#include "train/dino-crops.h"
#include "unit-util.h"

#include <string.h>

static guint8 *
picture (int width, int height)
{
  guint8 *rgb = g_new (guint8, (size_t) width * height * 3);
  for (int y = 0; y < height; y++)
    for (int x = 0; x < width; x++)
      {
        guint8 *p = rgb + ((size_t) y * width + x) * 3;
        p[0] = (guint8) (x * 255 / width), p[1] = (guint8) (y * 255 / height);
        p[2] = (guint8) ((x ^ y) & 0xff);
      }
  return rgb;
}

static void
test_deterministic (void)
{
  AgcDinoCropParams p = agc_dino_crop_defaults ();
  p.global_size = 32, p.local_size = 16, p.n_local = 3;
  size_t ng = (size_t) 2 * 3 * 32 * 32, nl = (size_t) 3 * 3 * 16 * 16;
  guint8 *rgb = picture (57, 41);
  float *g1 = g_new (float, ng), *g2 = g_new (float, ng), *g3 = g_new (float, ng);
  float *l1 = g_new (float, nl), *l2 = g_new (float, nl), *l3 = g_new (float, nl);
  g_assert_true (agc_dino_crops (&p, rgb, 57, 41, 7, 3, 0, g1, l1));
  g_assert_true (agc_dino_crops (&p, rgb, 57, 41, 7, 3, 0, g2, l2));
  g_assert_true (agc_dino_crops (&p, rgb, 57, 41, 7, 3, 1, g3, l3));
  g_assert_cmpmem (g1, ng * sizeof (float), g2, ng * sizeof (float));
  g_assert_cmpmem (l1, nl * sizeof (float), l2, nl * sizeof (float));
  g_assert_true (memcmp (g1, g3, ng * sizeof (float)) != 0);
  g_assert_true (memcmp (l1, l3, nl * sizeof (float)) != 0);
  g_free (rgb);
  g_free (g1), g_free (g2), g_free (g3), g_free (l1), g_free (l2), g_free (l3);
}

static void
test_flat (void)
{
  AgcDinoCropParams p = agc_dino_crop_defaults ();
  p.global_size = 24, p.local_size = 12, p.n_local = 2;
  int w = 40, h = 30;
  guint8 *rgb = g_new (guint8, (size_t) w * h * 3);
  for (int i = 0; i < w * h; i++)
    rgb[3 * i] = 200, rgb[3 * i + 1] = 90, rgb[3 * i + 2] = 30;
  size_t ng = (size_t) 2 * 3 * 24 * 24, nl = (size_t) 2 * 3 * 12 * 12;
  float *g = g_new (float, ng), *l = g_new (float, nl);
  static const float mean[3] = { 0.485f, 0.456f, 0.406f }, std[3] = { 0.229f, 0.224f, 0.225f };
  for (guint64 seed = 0; seed < 20; seed++)
    {
      g_assert_true (agc_dino_crops (&p, rgb, w, h, seed, 0, 0, g, l));
      float *crops[2] = { g, l };
      int sizes[2] = { 24, 12 }, counts[2] = { 2, 2 };
      for (int k = 0; k < 2; k++)
        for (int c = 0; c < counts[k] * 3; c++)
          {
            size_t n = (size_t) sizes[k] * sizes[k];
            const float *plane = crops[k] + c * n;
            for (size_t i = 1; i < n; i++)
              g_assert_cmpfloat (plane[i], ==, plane[0]);
            double v = (plane[0] * std[c % 3] + mean[c % 3]) * 255.0;
            g_assert_cmpfloat (fabs (v - round (v)), <, 1e-3);
            g_assert_cmpfloat (v, >, -0.5);
            g_assert_cmpfloat (v, <, 255.5);
          }
    }
  g_free (rgb);
  g_free (g);
  g_free (l);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/dino-crops/deterministic", test_deterministic);
  g_test_add_func ("/dino-crops/flat", test_flat);
  return g_test_run ();
}
