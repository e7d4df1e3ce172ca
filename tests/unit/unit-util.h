/* unit-util.h — helpers shared by the unit tests: seeded random inputs and
 * networks, the error measure of results against double references, and
 * throwaway folders (one of them as the user cache). */
#pragma once

#include "nn/resnet-train.h"
#include "nn/transformer.h"

#include <glib.h>
#include <glib/gstdio.h>
#include <math.h>

/* n floats offset + scale · U(-1, 1) from rng (seeded: runs repeat). */
static inline float *
random_floats (GRand *rng, size_t n, double scale, double offset)
{
  float *x = g_new (float, n);
  for (size_t i = 0; i < n; i++)
    x[i] = (float) (offset + scale * g_rand_double_range (rng, -1.0, 1.0));
  return x;
}

/* A transformer block of random weights from rng, each array its own
 * (free_random_blocks), scaled so that the activations keep about unit
 * variance through it. */
static inline void
fill_random_block (GRand *rng, AgcBlock *b, int d, int m)
{
  double s_d = 1.0 / sqrt (d), s_m = 1.0 / sqrt (m);
  b->ln1_weight = random_floats (rng, d, 0.3, 1.0);
  b->ln1_bias = random_floats (rng, d, 0.2, 0.0);
  b->qkv_weight = random_floats (rng, (size_t) 3 * d * d, 2.0 * s_d, 0.0);
  b->qkv_bias = random_floats (rng, (size_t) 3 * d, 0.2, 0.0);
  b->out_weight = random_floats (rng, (size_t) d * d, s_d, 0.0);
  b->out_bias = random_floats (rng, d, 0.2, 0.0);
  b->ln2_weight = random_floats (rng, d, 0.3, 1.0);
  b->ln2_bias = random_floats (rng, d, 0.2, 0.0);
  b->fc1_weight = random_floats (rng, (size_t) m * d, 1.7 * s_d, 0.0);
  b->fc1_bias = random_floats (rng, m, 0.2, 0.0);
  b->fc2_weight = random_floats (rng, (size_t) d * m, 1.7 * s_m, 0.0);
  b->fc2_bias = random_floats (rng, d, 0.2, 0.0);
}

/* c->layers random blocks (fill_random_block). */
static inline AgcBlock *
random_blocks (GRand *rng, const AgcTowerConfig *c)
{
  AgcBlock *blocks = g_new0 (AgcBlock, c->layers);
  for (int l = 0; l < c->layers; l++)
    fill_random_block (rng, &blocks[l], c->width, c->mlp_width);
  return blocks;
}

static inline void
free_random_blocks (AgcBlock *blocks, int n)
{
  for (int l = 0; l < n; l++)
    {
      AgcBlock *b = &blocks[l];
      float *arrays[] = { b->ln1_weight, b->ln1_bias, b->qkv_weight, b->qkv_bias,
                          b->out_weight, b->out_bias, b->ln2_weight, b->ln2_bias,
                          b->fc1_weight, b->fc1_bias, b->fc2_weight, b->fc2_bias };
      for (size_t i = 0; i < G_N_ELEMENTS (arrays); i++)
        g_free (arrays[i]);
    }
  g_free (blocks);
}

// max |got - want| / max |want|: error relative to the size of the output
static inline double
normalized_error (const float *got, const double *want, size_t n)
{
  double max_err = 0.0, max_ref = 0.0;
  for (size_t i = 0; i < n; i++)
    {
      g_assert_true (isfinite (got[i]));
      max_err = fmax (max_err, fabs (got[i] - want[i]));
      max_ref = fmax (max_ref, fabs (want[i]));
    }
  g_assert_cmpfloat (max_ref, >, 0.0);
  return max_err / max_ref;
}

/* Removes path and, for a folder, everything in it; symbolic links are
 * removed, never followed. */
static inline void
remove_tree (const char *path)
{
  if (g_file_test (path, G_FILE_TEST_IS_DIR) && !g_file_test (path, G_FILE_TEST_IS_SYMLINK))
    {
      GDir *dir = g_dir_open (path, 0, NULL);
      for (const char *name; dir != NULL && (name = g_dir_read_name (dir)) != NULL;)
        {
          g_autofree char *child = g_build_filename (path, name, NULL);
          remove_tree (child);
        }
      if (dir != NULL)
        g_dir_close (dir);
      g_rmdir (path);
    }
  else
    g_unlink (path);
}

/* A new throwaway folder (template "NAME-XXXXXX") whose sub-folder "cache"
 * becomes the user cache (XDG_CACHE_HOME), so that tests neither read nor
 * fill the real one.  GLib reads the variable once: call this before
 * anything asks for the cache folder.  *cache (if not NULL) gets the cache
 * folder.  Free the result after remove_tree. */
static inline char *
temp_cache_root_new (char **cache, const char *template)
{
  GError *error = NULL;
  char *root = g_dir_make_tmp (template, &error);
  g_assert_no_error (error);
  char *cache_dir = g_build_filename (root, "cache", NULL);
  g_setenv ("XDG_CACHE_HOME", cache_dir, TRUE);
  if (cache)
    *cache = cache_dir;
  else
    g_free (cache_dir);
  return root;
}

// a ResNet-50 conditioned as in test_resnet_train.py: He-scaled conv
// weights, small gammas closing each residual branch, positive biases
static inline AgcResNetTrain *
random_resnet (GRand *rng)
{
  AgcResNetTrain *net = agc_resnet_train_new ();
  for (int u = 0; u < AGC_RESNET_UNITS; u++)
    {
      AgcConvBN *cb = &net->units[u];
      const AgcConv *c = &cb->conv;
      if (c->c_out == 0)
        continue;
      int fan_in = c->kernel * c->kernel * c->c_in;
      size_t n = (size_t) fan_in * c->c_out;
      double bound = sqrt (6.0 / fan_in);
      for (size_t i = 0; i < n; i++)
        c->weight[i] = (float) g_rand_double_range (rng, -bound, bound);
      gboolean closing = g_str_has_suffix (cb->bn_name, "bn3");
      for (int o = 0; o < c->c_out; o++)
        {
          cb->gamma[o] = (float) (closing ? g_rand_double_range (rng, 0.05, 0.2)
                                          : g_rand_double_range (rng, 0.5, 1.5));
          cb->beta[o] = (float) g_rand_double_range (rng, 0.1, 0.5);
          cb->running_var[o] = 1.0f;
        }
    }
  return net;
}
