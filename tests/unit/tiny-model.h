/* tiny-model.h — coloured squares in tagged folders and a tiny CLIP model
 * made from them with agc_pretrain (a second or so), for tests that need a
 * real model through the public calls alone (tests/unit, tests/ui): what
 * its numbers are is not the point, that the library opens and runs it is. */
#pragma once

#include "agriclip.h"

#include <gdk-pixbuf/gdk-pixbuf.h>

static const char *const tiny_colours[] = { "red", "blue", "green" };
static const guint32 tiny_rgbs[] = { 0xd02020, 0x2020d0, 0x20d020 };

/* A 20 x 20 PNG of one colour (0xRRGGBB) at path, its folder made. */
static inline void
tiny_save_square (const char *path, guint32 rgb)
{
  g_autofree char *parent = g_path_get_dirname (path);
  g_assert_cmpint (g_mkdir_with_parents (parent, 0700), ==, 0);
  GdkPixbuf *pixbuf = gdk_pixbuf_new (GDK_COLORSPACE_RGB, FALSE, 8, 20, 20);
  gdk_pixbuf_fill (pixbuf, rgb << 8 | 0xff);
  GError *error = NULL;
  g_assert_true (gdk_pixbuf_save (pixbuf, path, "png", &error, NULL));
  g_assert_no_error (error);
  g_object_unref (pixbuf);
}

/* dir/COLOUR/N.png for the first n_classes colours, n_per_class each, each
 * image step (0xRRGGBB) brighter than the one before. */
static inline void
tiny_write_tagged (const char *dir, int n_classes, int n_per_class, guint32 step)
{
  for (int c = 0; c < n_classes; c++)
    for (int i = 0; i < n_per_class; i++)
      {
        g_autofree char *file = g_strdup_printf ("%d.png", i);
        g_autofree char *path = g_build_filename (dir, tiny_colours[c], file, NULL);
        tiny_save_square (path, tiny_rgbs[c] + (guint32) i * step);
      }
}

/* root/NAME: one epoch on six squares captioned "a COLOUR square" (written
 * to root/captions).  g_free the path. */
static inline char *
tiny_model_new (const char *root, const char *name)
{
  g_autofree char *data = g_build_filename (root, "captions", NULL);
  g_autoptr (GString) lines = g_string_new ("");
  for (int i = 0; i < 6; i++)
    {
      g_autofree char *file = g_strdup_printf ("%d.png", i);
      g_autofree char *path = g_build_filename (data, file, NULL);
      tiny_save_square (path, tiny_rgbs[i % 3]);
      g_string_append_printf (lines, "{\"image\": \"%s\", \"caption\": \"a %s square\"}\n", file,
                              tiny_colours[i % 3]);
    }
  g_autofree char *captions = g_build_filename (data, "captions.jsonl", NULL);
  g_assert_true (g_file_set_contents (captions, lines->str, -1, NULL));

  AgcPretrainParams params = agc_pretrain_default_params ();
  AgcPretrainTower tower = { .width = 8, .layers = 1, .heads = 2, .mlp_width = 32 };
  params.vision = params.text = tower;
  params.image_size = 16;
  params.patch_size = 8;
  params.context_length = 8;
  params.embed_dim = 4;
  params.epochs = 1;
  params.batch_size = 3;
  char *out = g_build_filename (root, name, NULL);
  g_autofree char *vocab = g_build_filename (g_getenv ("AGC_SHARED_DIR"), "clip-vocab", NULL);
  GError *error = NULL;
  AgcPretrainResult result;
  g_assert_true (agc_pretrain (data, vocab, out, &params, &result, NULL, &error));
  g_assert_no_error (error);
  g_assert_cmpint (result.n_pairs, ==, 6);
  g_assert_cmpint (result.steps, ==, 2);
  return out;
}
