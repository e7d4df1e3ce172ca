/* synth-camera.c — optics, light and compression of the "own photos". */
#include "synth-camera.h"

#include <math.h>
#include <string.h>

void
synth_camera_sample (SynthCamera *camera, SynthRng *rng)
{
  static const float warm[3] = { 1.28f, 1.02f, 0.58f };
  for (int c = 0; c < 3; c++)
    camera->gain[c] = warm[c] * synth_uniform (rng, 0.94f, 1.06f);
  camera->exposure = synth_uniform (rng, 0.7f, 0.85f);
  camera->gamma = synth_uniform (rng, 1.05f, 1.2f);
  camera->blur_passes = 1;
  camera->noise = synth_uniform (rng, 0.025f, 0.045f);
  camera->blocking = 0.03f;
}

/* One [1 2 1] / 4 pass along rows (step 3) or columns (step 3 * size),
 * edges clamped; line is scratch of size * 3 floats. */
static void
blur_lines (float *rgb, int size, gboolean columns, float *line)
{
  gsize step = columns ? (gsize) size * 3 : 3, start_step = columns ? 3 : (gsize) size * 3;
  for (int l = 0; l < size; l++)
    {
      float *p = rgb + l * start_step;
      for (int i = 0; i < size; i++)
        memcpy (line + i * 3, p + i * step, 3 * sizeof (float));
      for (int i = 0; i < size; i++)
        {
          int a = i > 0 ? i - 1 : 0, b = i < size - 1 ? i + 1 : size - 1;
          for (int c = 0; c < 3; c++)
            p[i * step + c] = 0.25f * line[a * 3 + c] + 0.5f * line[i * 3 + c]
                              + 0.25f * line[b * 3 + c];
        }
    }
}

/* Keeps each pixel's brightness but shares colour within 2 x 2 cells,
 * as 4:2:0 JPEG does. */
static void
subsample_chroma (float *rgb, int size)
{
  for (int y = 0; y + 1 < size; y += 2)
    for (int x = 0; x + 1 < size; x += 2)
      {
        float *p[4] = { rgb + (gsize) (y * size + x) * 3, rgb + (gsize) (y * size + x + 1) * 3,
                        rgb + (gsize) ((y + 1) * size + x) * 3,
                        rgb + (gsize) ((y + 1) * size + x + 1) * 3 };
        float luma[4], chroma[3] = { 0, 0, 0 };
        for (int i = 0; i < 4; i++)
          {
            luma[i] = 0.299f * p[i][0] + 0.587f * p[i][1] + 0.114f * p[i][2];
            for (int c = 0; c < 3; c++)
              chroma[c] += 0.25f * (p[i][c] - luma[i]);
          }
        for (int i = 0; i < 4; i++)
          for (int c = 0; c < 3; c++)
            p[i][c] = luma[i] + chroma[c];
      }
}

/* Roughly normal with unit variance: a sum of three uniforms. */
static float
gaussish (SynthRng *rng)
{
  return (synth_uniform (rng, -1, 1) + synth_uniform (rng, -1, 1) + synth_uniform (rng, -1, 1));
}

void
synth_camera_apply (float *rgb, int size, const SynthCamera *camera, SynthRng *rng)
{
  float *line = g_new (float, (gsize) size * 3);
  for (int pass = 0; pass < camera->blur_passes; pass++)
    {
      blur_lines (rgb, size, FALSE, line);
      blur_lines (rgb, size, TRUE, line);
    }
  g_free (line);
  gsize n = (gsize) size * size;
  for (gsize i = 0; i < n * 3; i++)
    {
      float v = fmaxf (0.0f, rgb[i] * camera->gain[i % 3] * camera->exposure);
      rgb[i] = powf (fminf (v, 1.0f), camera->gamma);
    }
  subsample_chroma (rgb, size);
  int block = MAX (2, size / 8); // 8 x 8 blocks of a 64-pixel image
  int n_blocks = (size + block - 1) / block;
  float *offsets = g_new (float, (gsize) n_blocks * n_blocks);
  for (int b = 0; b < n_blocks * n_blocks; b++)
    offsets[b] = synth_uniform (rng, -camera->blocking, camera->blocking);
  for (int y = 0; y < size; y++)
    for (int x = 0; x < size; x++)
      {
        float offset = offsets[(y / block) * n_blocks + x / block];
        for (int c = 0; c < 3; c++)
          rgb[(gsize) (y * size + x) * 3 + c] += offset + camera->noise * gaussish (rng);
      }
  g_free (offsets);
}
