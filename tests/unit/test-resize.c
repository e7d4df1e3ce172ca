/* test-resize.c — invariants of agc_resize_rgb8 and of the preprocessing
 * geometry.  Bit-exact agreement with Pillow and torchvision is checked in
 * tests/reference/test_preprocess.py. */
#include "agriclip.h"
#include "images/preprocess.h"
#include "images/resize.h"

#include <math.h>
#include <string.h>

static const AgcFilter filters[] = { AGC_FILTER_BILINEAR, AGC_FILTER_BICUBIC };

static guint8 *
random_pixels (int width, int height, guint32 seed)
{
  GRand *rand = g_rand_new_with_seed (seed);
  guint8 *pixels = g_new (guint8, (gsize) width * height * 3);
  for (int i = 0; i < width * height * 3; i++)
    pixels[i] = (guint8) g_rand_int_range (rand, 0, 256);
  g_rand_free (rand);
  return pixels;
}

static guint8 *
resize (const guint8 *src, int src_w, int src_h, int dst_w, int dst_h, AgcFilter filter)
{
  guint8 *dst = g_new (guint8, (gsize) dst_w * dst_h * 3);
  g_assert_true (agc_resize_rgb8 (src, src_w, src_h, dst, dst_w, dst_h, filter));
  return dst;
}

/* Normalised weights: a flat colour stays exactly that colour, whatever the
 * sizes, including the clipped borders and the extreme values. */
static void
test_constant (void)
{
  static const int sizes[][4] = {
    { 37, 23, 224, 150 }, { 500, 300, 7, 5 }, { 1, 1, 5, 3 }, { 4500, 3000, 300, 200 },
    { 1, 40, 9, 2 }, { 40, 1, 3, 11 }, { 224, 300, 224, 224 },
  };
  static const guint8 colours[][3] = { { 0, 0, 0 }, { 255, 255, 255 }, { 230, 20, 131 } };
  for (gsize f = 0; f < G_N_ELEMENTS (filters); f++)
    for (gsize s = 0; s < G_N_ELEMENTS (sizes); s++)
      for (gsize c = 0; c < G_N_ELEMENTS (colours); c++)
        {
          int sw = sizes[s][0], sh = sizes[s][1], dw = sizes[s][2], dh = sizes[s][3];
          guint8 *src = g_new (guint8, (gsize) sw * sh * 3);
          for (int i = 0; i < sw * sh; i++)
            memcpy (src + i * 3, colours[c], 3);
          guint8 *dst = resize (src, sw, sh, dw, dh, filters[f]);
          for (int i = 0; i < dw * dh; i++)
            g_assert_cmpmem (dst + i * 3, 3, colours[c], 3);
          g_free (src);
          g_free (dst);
        }
}

static void
test_identity (void)
{
  guint8 *src = random_pixels (31, 17, 1);
  for (gsize f = 0; f < G_N_ELEMENTS (filters); f++)
    {
      guint8 *dst = resize (src, 31, 17, 31, 17, filters[f]);
      g_assert_cmpmem (dst, 31 * 17 * 3, src, 31 * 17 * 3);
      g_free (dst);
    }
  g_free (src);
}

/* Changing only the height must leave every column's own values: resizing
 * a one-row image vertically repeats that row. */
static void
test_single_row_and_pixel (void)
{
  guint8 *row = random_pixels (13, 1, 2);
  for (gsize f = 0; f < G_N_ELEMENTS (filters); f++)
    {
      guint8 *dst = resize (row, 13, 1, 13, 40, filters[f]);
      for (int y = 0; y < 40; y++)
        g_assert_cmpmem (dst + y * 13 * 3, 13 * 3, row, 13 * 3);
      g_free (dst);

      dst = resize (row, 1, 1, 7, 9, filters[f]);
      for (int i = 0; i < 7 * 9; i++)
        g_assert_cmpmem (dst + i * 3, 3, row, 3);
      g_free (dst);
    }
  g_free (row);
}

/* Worked by hand from Pillow's definition: 2 -> 4 bilinear, output centres
 * 0.25, 0.75, 1.25, 1.75; the outer two see one input, the inner two weigh
 * 0.75/0.25, so 0 255 -> 0 64 191 255 (63.75 and 191.25 rounded). */
static void
test_bilinear_by_hand (void)
{
  const guint8 src[] = { 0, 0, 0, 255, 255, 255 };
  guint8 *dst = resize (src, 2, 1, 4, 1, AGC_FILTER_BILINEAR);
  const guint8 expected[] = { 0, 0, 0, 64, 64, 64, 191, 191, 191, 255, 255, 255 };
  g_assert_cmpmem (dst, sizeof expected, expected, sizeof expected);
  g_free (dst);
}

/* The filters are symmetric, so mirroring commutes with resizing, up to the
 * last bit of the fixed-point rounding. */
static void
test_mirror (void)
{
  int sw = 57, sh = 41, dw = 23, dh = 66;
  guint8 *src = random_pixels (sw, sh, 3);
  guint8 *flipped = g_new (guint8, (gsize) sw * sh * 3);
  for (int y = 0; y < sh; y++)
    for (int x = 0; x < sw; x++)
      memcpy (flipped + (y * sw + x) * 3, src + (y * sw + (sw - 1 - x)) * 3, 3);
  for (gsize f = 0; f < G_N_ELEMENTS (filters); f++)
    {
      guint8 *a = resize (src, sw, sh, dw, dh, filters[f]);
      guint8 *b = resize (flipped, sw, sh, dw, dh, filters[f]);
      for (int y = 0; y < dh; y++)
        for (int x = 0; x < dw; x++)
          for (int c = 0; c < 3; c++)
            {
              int va = a[(y * dw + x) * 3 + c], vb = b[(y * dw + (dw - 1 - x)) * 3 + c];
              g_assert_cmpint (ABS (va - vb), <=, 1);
            }
      g_free (a);
      g_free (b);
    }
  g_free (src);
  g_free (flipped);
}

/* torchvision Resize(224): 640 x 427 -> int(224 * 640 / 427) = int(335.74) = 335. */
static void
test_preprocess_resize_size (void)
{
  AgcPreprocess config = agc_preprocess_clip_defaults (224);
  static const int cases[][4] = {
    { 640, 427, 335, 224 }, { 427, 640, 224, 335 }, { 224, 224, 224, 224 },
    { 1, 1, 224, 224 }, { 5, 7, 224, 313 }, { 3000, 200, 3360, 224 },
  };
  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      AgcImage *image = agc_image_new (cases[i][0], cases[i][1]);
      GError *error = NULL;
      AgcImage *resized = agc_preprocess_resize (&config, image, &error);
      g_assert_no_error (error);
      g_assert_cmpint (resized->width, ==, cases[i][2]);
      g_assert_cmpint (resized->height, ==, cases[i][3]);
      agc_image_free (resized);
      agc_image_free (image);
    }
}

static void
test_preprocess_too_elongated (void)
{
  AgcPreprocess config = agc_preprocess_clip_defaults (224);
  AgcImage *image = agc_image_new (1, 2000000);
  GError *error = NULL;
  float pixels[3 * 224 * 224];
  g_assert_false (agc_preprocess_image (&config, image, pixels, &error));
  g_assert_error (error, AGC_ERROR, AGC_ERROR_INPUT);
  g_error_free (error);
  agc_image_free (image);
}

/* A constant image gives (v / 255 - mean) / std everywhere; a crop larger
 * than the resized image is padded with byte 0, split (crop - size) // 2
 * before and the rest after, as torchvision's CenterCrop does. */
static void
test_preprocess_values_and_padding (void)
{
  AgcPreprocess config = agc_preprocess_clip_defaults (10);
  config.crop_width = 15; /* resized 20 x 10 -> crop 15 of 20 wide, pad 10 -> 15 tall */
  config.crop_height = 15;
  AgcImage *image = agc_image_new (40, 20);
  const guint8 colour[3] = { 200, 100, 50 };
  for (int i = 0; i < 40 * 20; i++)
    memcpy (image->pixels + i * 3, colour, 3);
  float pixels[3 * 15 * 15];
  GError *error = NULL;
  g_assert_true (agc_preprocess_image (&config, image, pixels, &error));
  g_assert_no_error (error);
  for (int c = 0; c < 3; c++)
    for (int y = 0; y < 15; y++)
      for (int x = 0; x < 15; x++)
        {
          gboolean padded = y < 2 || y >= 12; /* (15 - 10) // 2 = 2 rows before, 3 after */
          float v = padded ? 0.0f : colour[c] / 255.0f;
          float expected = (v - config.mean[c]) / config.std[c];
          g_assert_cmpfloat_with_epsilon (pixels[(c * 15 + y) * 15 + x], expected, 1e-6);
        }
  agc_image_free (image);
}

/* CenterCrop's offset is Python's round((size - crop) / 2): halves go to the
 * even neighbour.  Columns are marked by their x so the offset shows. */
static void
test_preprocess_crop_offset (void)
{
  static const int cases[][2] = { /* resized width, expected left offset */
    { 11, 0 }, { 12, 1 }, { 13, 2 }, { 14, 2 }, { 15, 2 }, { 17, 4 },
  };
  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      int width = cases[i][0];
      AgcPreprocess config = agc_preprocess_clip_defaults (10);
      AgcImage *image = agc_image_new (width, 10);
      for (int y = 0; y < 10; y++)
        for (int x = 0; x < width; x++)
          image->pixels[(y * width + x) * 3] = (guint8) (x * 10);
      float pixels[3 * 10 * 10];
      GError *error = NULL;
      g_assert_true (agc_preprocess_image (&config, image, pixels, &error));
      float expected = ((float) (cases[i][1] * 10) / 255.0f - config.mean[0]) / config.std[0];
      g_assert_cmpfloat_with_epsilon (pixels[0], expected, 1e-6);
      agc_image_free (image);
    }
}

static void
test_clip_defaults (void)
{
  AgcPreprocess config = agc_preprocess_clip_defaults (336);
  g_assert_cmpint (config.shortest_edge, ==, 336);
  g_assert_cmpint (config.crop_width, ==, 336);
  g_assert_cmpint (config.crop_height, ==, 336);
  g_assert_cmpint (config.filter, ==, AGC_FILTER_BICUBIC);
  g_assert_cmpfloat (config.mean[0], ==, 0.48145466f);
  g_assert_cmpfloat (config.std[2], ==, 0.27577711f);
}

/* The AVX2/AVX-512 passes give the plain loops' bytes (the plain loops are
 * the ones test_preprocess.py compares with Pillow on CPUs without them):
 * downscaling by large factors (many taps, odd and even counts), upscaling,
 * one-pixel images and widths whose last taps end at the buffer's end. */
static void
test_vector_equals_scalar (void)
{
  int available = agc_resize_limit_passes (2);
  if (available == 0)
    {
      g_test_skip ("no AVX2 on this CPU");
      return;
    }
  static const int sizes[][4] = {
    { 1003, 757, 224, 169 }, { 640, 480, 298, 224 }, { 37, 29, 224, 175 }, { 1, 1, 3, 5 },
    { 5, 300, 2, 224 },      { 300, 5, 224, 2 },     { 17, 13, 16, 12 },   { 401, 3, 7, 1 },
  };
  for (gsize s = 0; s < G_N_ELEMENTS (sizes); s++)
    for (gsize f = 0; f < G_N_ELEMENTS (filters); f++)
      {
        int sw = sizes[s][0], sh = sizes[s][1], dw = sizes[s][2], dh = sizes[s][3];
        guint8 *src = random_pixels (sw, sh, 7 + (guint32) s);
        agc_resize_limit_passes (0);
        guint8 *plain = resize (src, sw, sh, dw, dh, filters[f]);
        for (int level = 1; level <= available; level++)
          {
            agc_resize_limit_passes (level);
            guint8 *vector = resize (src, sw, sh, dw, dh, filters[f]);
            g_assert_cmpmem (vector, (gsize) dw * dh * 3, plain, (gsize) dw * dh * 3);
            g_free (vector);
          }
        agc_resize_limit_passes (2);
        g_free (plain);
        g_free (src);
      }
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/resize/constant", test_constant);
  g_test_add_func ("/resize/identity", test_identity);
  g_test_add_func ("/resize/single-row-and-pixel", test_single_row_and_pixel);
  g_test_add_func ("/resize/bilinear-by-hand", test_bilinear_by_hand);
  g_test_add_func ("/resize/mirror", test_mirror);
  g_test_add_func ("/resize/vector-equals-scalar", test_vector_equals_scalar);
  g_test_add_func ("/preprocess/resize-size", test_preprocess_resize_size);
  g_test_add_func ("/preprocess/too-elongated", test_preprocess_too_elongated);
  g_test_add_func ("/preprocess/values-and-padding", test_preprocess_values_and_padding);
  g_test_add_func ("/preprocess/crop-offset", test_preprocess_crop_offset);
  g_test_add_func ("/preprocess/clip-defaults", test_clip_defaults);
  return g_test_run ();
}
