/* dino-crops.c — DINO's multi-crop augmentation (dino-crops.h). */
#include "train/dino-crops.h"

#include "images/resize.h"

#include <math.h>
#include <string.h>


AgcDinoCropParams
agc_dino_crop_defaults (void)
{
  return (AgcDinoCropParams) { .global_size = 224, .local_size = 96, .n_local = 6,
                               .global_scale = { 0.4, 1.0 }, .local_scale = { 0.05, 0.4 },
                               .mean = { 0.485f, 0.456f, 0.406f },
                               .std = { 0.229f, 0.224f, 0.225f } };
}

// torchvision RandomResizedCrop.get_params: (x, y, w, h) of the crop
static void
crop_box (GRand *rand, int width, int height, const double scale[2], int box[4])
{
  double area = (double) width * height;
  for (int attempt = 0; attempt < 10; attempt++)
    {
      double target = area * g_rand_double_range (rand, scale[0], scale[1]);
      double aspect = exp (g_rand_double_range (rand, log (3.0 / 4.0), log (4.0 / 3.0)));
      int w = (int) lround (sqrt (target * aspect)), h = (int) lround (sqrt (target / aspect));
      if (w > 0 && w <= width && h > 0 && h <= height)
        {
          box[0] = g_rand_int_range (rand, 0, width - w + 1);
          box[1] = g_rand_int_range (rand, 0, height - h + 1);
          box[2] = w, box[3] = h;
          return;
        }
    }
  // the centre crop, its aspect clamped to the range
  double ratio = (double) width / height;
  int w = width, h = height;
  if (ratio < 3.0 / 4.0)
    h = (int) lround (w / (3.0 / 4.0));
  else if (ratio > 4.0 / 3.0)
    w = (int) lround (h * (4.0 / 3.0));
  box[0] = (width - w) / 2, box[1] = (height - h) / 2, box[2] = w, box[3] = h;
}

static guint8
clip8 (double v)
{
  return (guint8) (v <= 0.0 ? 0 : v >= 255.0 ? 255 : (int) (v + 0.5));
}

static double
luma (const guint8 *p)
{
  return (p[0] * 299 + p[1] * 587 + p[2] * 114) / 1000.0;
}

// out = other + factor (img - other): Pillow's ImageEnhance blend
static void
blend (guint8 *img, size_t n_pixels, double factor, int mode)
{
  double mean = 0.0;
  if (mode == 1) // contrast: the grey image's mean, rounded as Pillow
    {
      for (size_t i = 0; i < n_pixels; i++)
        mean += (int) luma (img + 3 * i);
      mean = (int) (mean / n_pixels + 0.5);
    }
  for (size_t i = 0; i < n_pixels; i++)
    {
      guint8 *p = img + 3 * i;
      double other = mode == 0 ? 0.0 : mode == 1 ? mean : (int) luma (p);
      for (int c = 0; c < 3; c++)
        p[c] = clip8 (other + factor * (p[c] - other));
    }
}

static void
hue_shift (guint8 *img, size_t n_pixels, double shift)
{
  for (size_t i = 0; i < n_pixels; i++)
    {
      guint8 *p = img + 3 * i;
      double r = p[0] / 255.0, g = p[1] / 255.0, b = p[2] / 255.0;
      double max = MAX (r, MAX (g, b)), min = MIN (r, MIN (g, b)), d = max - min, h = 0.0;
      if (d > 0)
        h = max == r ? fmod ((g - b) / d, 6.0) : max == g ? (b - r) / d + 2 : (r - g) / d + 4;
      h = fmod (h / 6.0 + shift + 1.0, 1.0) * 6.0;
      double s = max > 0 ? d / max : 0.0, v = max, c = v * s;
      double x = c * (1 - fabs (fmod (h, 2.0) - 1)), m = v - c;
      double rgb[6][3] = { { c, x, 0 }, { x, c, 0 }, { 0, c, x },
                           { 0, x, c }, { x, 0, c }, { c, 0, x } };
      int k = MIN ((int) h, 5);
      for (int ch = 0; ch < 3; ch++)
        p[ch] = clip8 ((rgb[k][ch] + m) * 255.0);
    }
}

static void
color_jitter (GRand *rand, guint8 *img, size_t n_pixels)
{
  int order[4] = { 0, 1, 2, 3 };
  for (int i = 3; i > 0; i--) // a random order, as torchvision's randperm
    {
      int j = g_rand_int_range (rand, 0, i + 1), t = order[i];
      order[i] = order[j], order[j] = t;
    }
  double brightness = g_rand_double_range (rand, 0.6, 1.4);
  double contrast = g_rand_double_range (rand, 0.6, 1.4);
  double saturation = g_rand_double_range (rand, 0.8, 1.2);
  double hue = g_rand_double_range (rand, -0.1, 0.1);
  for (int i = 0; i < 4; i++)
    switch (order[i])
      {
      case 0: blend (img, n_pixels, brightness, 0); break;
      case 1: blend (img, n_pixels, contrast, 1); break;
      case 2: blend (img, n_pixels, saturation, 2); break;
      default: hue_shift (img, n_pixels, hue); break;
      }
}

// separable Gaussian, sigma, cut at 3 sigma, edges repeated
static void
gaussian_blur (guint8 *img, int size, double sigma)
{
  int radius = MAX (1, (int) ceil (3.0 * sigma));
  double *kernel = g_new (double, 2 * radius + 1), sum = 0.0;
  for (int k = -radius; k <= radius; k++)
    sum += kernel[k + radius] = exp (-0.5 * k * k / (sigma * sigma));
  double *tmp = g_new (double, (size_t) size * size * 3);
  for (int pass = 0; pass < 2; pass++)
    for (int y = 0; y < size; y++)
      for (int x = 0; x < size; x++)
        for (int c = 0; c < 3; c++)
          {
            double acc = 0.0;
            for (int k = -radius; k <= radius; k++)
              {
                int xx = pass == 0 ? CLAMP (x + k, 0, size - 1) : x;
                int yy = pass == 1 ? CLAMP (y + k, 0, size - 1) : y;
                size_t at = ((size_t) yy * size + xx) * 3 + c;
                acc += kernel[k + radius] * (pass == 0 ? img[at] : tmp[at]);
              }
            size_t at = ((size_t) y * size + x) * 3 + c;
            if (pass == 0)
              tmp[at] = acc / sum;
            else
              img[at] = clip8 (acc / sum);
          }
  // tmp read in pass 1 is pass 0's output: pass 1 writes img only
  g_free (tmp);
  g_free (kernel);
}

static gboolean
one_crop (GRand *rand, const AgcDinoCropParams *p, const guint8 *rgb, int width, int height,
          int size, const double scale[2], double blur_p, double solarize_p, float *out)
{
  int box[4];
  crop_box (rand, width, height, scale, box);
  guint8 *crop = g_new (guint8, (size_t) box[2] * box[3] * 3);
  for (int y = 0; y < box[3]; y++)
    memcpy (crop + (size_t) y * box[2] * 3, rgb + ((size_t) (box[1] + y) * width + box[0]) * 3,
            (size_t) box[2] * 3);
  size_t n = (size_t) size * size;
  guint8 *img = g_new (guint8, n * 3);
  gboolean ok = agc_resize_rgb8 (crop, box[2], box[3], img, size, size, AGC_FILTER_BICUBIC);
  g_free (crop);
  if (ok)
    {
      if (g_rand_double (rand) < 0.5) // flip
        for (int y = 0; y < size; y++)
          for (int x = 0; x < size / 2; x++)
            for (int c = 0; c < 3; c++)
              {
                guint8 *a = img + ((size_t) y * size + x) * 3 + c;
                guint8 *b = img + ((size_t) y * size + size - 1 - x) * 3 + c;
                guint8 t = *a;
                *a = *b, *b = t;
              }
      if (g_rand_double (rand) < 0.8)
        color_jitter (rand, img, n);
      if (g_rand_double (rand) < 0.2)
        for (size_t i = 0; i < n; i++)
          img[3 * i] = img[3 * i + 1] = img[3 * i + 2] = (guint8) luma (img + 3 * i);
      if (g_rand_double (rand) < blur_p)
        gaussian_blur (img, size, g_rand_double_range (rand, 0.1, 2.0));
      if (g_rand_double (rand) < solarize_p)
        for (size_t i = 0; i < 3 * n; i++)
          img[i] = img[i] >= 128 ? 255 - img[i] : img[i];
      for (int c = 0; c < 3; c++)
        for (size_t i = 0; i < n; i++)
          out[c * n + i] = (img[3 * i + c] / 255.0f - p->mean[c]) / p->std[c];
    }
  g_free (img);
  return ok;
}

gboolean
agc_dino_crops (const AgcDinoCropParams *p, const guint8 *rgb, int width, int height,
                guint64 seed, guint64 image, guint64 epoch, float *global, float *local)
{
  guint32 key[6] = { (guint32) seed, (guint32) (seed >> 32), (guint32) image,
                     (guint32) (image >> 32), (guint32) epoch, (guint32) (epoch >> 32) };
  GRand *rand = g_rand_new_with_seed_array (key, 6);
  size_t g = (size_t) 3 * p->global_size * p->global_size;
  size_t l = (size_t) 3 * p->local_size * p->local_size;
  gboolean ok = one_crop (rand, p, rgb, width, height, p->global_size, p->global_scale, 1.0, 0.0,
                          global)
                && one_crop (rand, p, rgb, width, height, p->global_size, p->global_scale, 0.1,
                             0.2, global + g);
  for (int i = 0; ok && i < p->n_local; i++)
    ok = one_crop (rand, p, rgb, width, height, p->local_size, p->local_scale, 0.5, 0.0,
                   local + i * l);
  g_rand_free (rand);
  return ok;
}
