/* test-image.c — agc_image_load: lossless round trips and every refusal.
 * Pixel-exact comparisons with PIL live in tests/reference/test_preprocess.py. */
#include "agriclip.h"

#include <string.h>
#include <glib/gstdio.h>
#include <gdk-pixbuf/gdk-pixbuf.h>

static char *tmp_dir;

static char *
tmp_path (const char *name)
{
  return g_build_filename (tmp_dir, name, NULL);
}

/* An asymmetric test picture: blue ground, red bar along the top-left edges,
 * a green block bottom right, alpha falling from left to right. */
static GdkPixbuf *
make_picture (int width, int height, gboolean alpha)
{
  GdkPixbuf *pixbuf = gdk_pixbuf_new (GDK_COLORSPACE_RGB, alpha, 8, width, height);
  int n = gdk_pixbuf_get_n_channels (pixbuf), stride = gdk_pixbuf_get_rowstride (pixbuf);
  guint8 *pixels = gdk_pixbuf_get_pixels (pixbuf);
  for (int y = 0; y < height; y++)
    for (int x = 0; x < width; x++)
      {
        guint8 *p = pixels + y * stride + x * n;
        gboolean red = x < width / 4 || y < height / 5;
        gboolean green = x > width * 2 / 3 && y > height / 2;
        p[0] = red ? 230 : (guint8) (x * 7);
        p[1] = green ? 210 : (guint8) (y * 3);
        p[2] = red || green ? 10 : 200;
        if (alpha)
          p[3] = (guint8) (255 - x * 255 / width);
      }
  return pixbuf;
}

static void
write_file (const char *path, const void *data, gsize size)
{
  GError *error = NULL;
  g_assert_true (g_file_set_contents (path, data, (gssize) size, &error));
  g_assert_no_error (error);
}

static void
assert_load_fails (const char *path, AgcErrorCode code, const char *words)
{
  GError *error = NULL;
  AgcImage *image = agc_image_load (path, &error);
  g_assert_null (image);
  g_assert_error (error, AGC_ERROR, (int) code);
  g_autofree char *base = g_path_get_basename (path);
  g_assert_nonnull (strstr (error->message, base));
  if (words != NULL)
    g_assert_nonnull (strstr (error->message, words));
  g_test_message ("%s", error->message);
  g_error_free (error);
}

static void
test_new (void)
{
  AgcImage *image = agc_image_new (5, 3);
  g_assert_nonnull (image);
  g_assert_cmpint (image->width, ==, 5);
  g_assert_cmpint (image->height, ==, 3);
  for (int i = 0; i < 5 * 3 * 3; i++)
    g_assert_cmpuint (image->pixels[i], ==, 0);
  agc_image_free (image);
  agc_image_free (NULL);
}

/* PNG is lossless: what gdk-pixbuf wrote must come back, alpha dropped. */
static void
test_png_round_trip (gconstpointer with_alpha)
{
  gboolean alpha = GPOINTER_TO_INT (with_alpha);
  GdkPixbuf *pixbuf = make_picture (37, 23, alpha);
  g_autofree char *path = tmp_path (alpha ? "rgba.png" : "rgb.png");
  GError *error = NULL;
  g_assert_true (gdk_pixbuf_save (pixbuf, path, "png", &error, NULL));
  g_assert_no_error (error);

  AgcImage *image = agc_image_load (path, &error);
  g_assert_no_error (error);
  g_assert_cmpint (image->width, ==, 37);
  g_assert_cmpint (image->height, ==, 23);
  int n = gdk_pixbuf_get_n_channels (pixbuf), stride = gdk_pixbuf_get_rowstride (pixbuf);
  const guint8 *src = gdk_pixbuf_read_pixels (pixbuf);
  for (int y = 0; y < 23; y++)
    for (int x = 0; x < 37; x++)
      for (int c = 0; c < 3; c++)
        g_assert_cmpuint (image->pixels[(y * 37 + x) * 3 + c], ==, src[y * stride + x * n + c]);
  agc_image_free (image);
  g_object_unref (pixbuf);
}

/* JPEG is lossy: check the size and that the red and green regions stay put. */
static void
test_jpeg_loads (void)
{
  GdkPixbuf *pixbuf = make_picture (64, 48, FALSE);
  g_autofree char *path = tmp_path ("picture.jpg");
  GError *error = NULL;
  g_assert_true (gdk_pixbuf_save (pixbuf, path, "jpeg", &error, "quality", "95", NULL));
  g_object_unref (pixbuf);

  AgcImage *image = agc_image_load (path, &error);
  g_assert_no_error (error);
  g_assert_cmpint (image->width, ==, 64);
  g_assert_cmpint (image->height, ==, 48);
  const guint8 *red = image->pixels + (30 * 64 + 5) * 3;    /* left bar */
  const guint8 *green = image->pixels + (40 * 64 + 60) * 3; /* bottom-right block */
  g_assert_cmpuint (red[0], >, 180);
  g_assert_cmpuint (red[2], <, 60);
  g_assert_cmpuint (green[1], >, 160);
  g_assert_cmpuint (green[2], <, 60);
  agc_image_free (image);
}

static void
test_missing (void)
{
  g_autofree char *path = tmp_path ("no-such-leaf.jpg");
  assert_load_fails (path, AGC_ERROR_IO, "cannot open");
}

static void
test_folder (void)
{
  assert_load_fails (tmp_dir, AGC_ERROR_IO, "folder");
}

static void
test_zero_size (void)
{
  g_autofree char *path = tmp_path ("empty.png");
  write_file (path, "", 0);
  assert_load_fails (path, AGC_ERROR_FORMAT, "empty");
}

static void
test_text_named_jpg (void)
{
  g_autofree char *path = tmp_path ("leaf.jpg");
  const char *text = "Tomato leaf, early blight. Photographed 2024-05-01.\n";
  write_file (path, text, strlen (text));
  assert_load_fails (path, AGC_ERROR_UNSUPPORTED, "not a supported image");
}

/* Save a picture, keep the first two thirds of the file. */
static char *
truncated_copy (const char *type, const char *name)
{
  GdkPixbuf *pixbuf = make_picture (120, 90, FALSE);
  gchar *data = NULL;
  gsize size = 0;
  GError *error = NULL;
  g_assert_true (gdk_pixbuf_save_to_buffer (pixbuf, &data, &size, type, &error, NULL));
  g_object_unref (pixbuf);
  char *path = tmp_path (name);
  write_file (path, data, size * 2 / 3);
  g_free (data);
  return path;
}

static void
test_truncated_png (void)
{
  g_autofree char *path = truncated_copy ("png", "cut.png");
  assert_load_fails (path, AGC_ERROR_FORMAT, NULL);
}

/* libjpeg would fill the missing rows with grey and only warn. */
static void
test_truncated_jpeg (void)
{
  g_autofree char *path = truncated_copy ("jpeg", "cut.jpg");
  assert_load_fails (path, AGC_ERROR_FORMAT, "truncated");
}

/* A header claiming 40000 x 30000 pixels must be refused before decoding. */
static void
test_huge (void)
{
  g_autofree char *path = tmp_path ("huge.ppm");
  const char header[] = "P6\n40000 30000\n255\n\x01\x02\x03";
  write_file (path, header, sizeof header - 1);
  assert_load_fails (path, AGC_ERROR_UNSUPPORTED, "40000 x 30000");
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);

  GError *error = NULL;
  tmp_dir = g_dir_make_tmp ("agc-test-image-XXXXXX", &error);
  g_assert_no_error (error);

  g_test_add_func ("/image/new", test_new);
  g_test_add_data_func ("/image/png-rgb", GINT_TO_POINTER (FALSE), test_png_round_trip);
  g_test_add_data_func ("/image/png-rgba", GINT_TO_POINTER (TRUE), test_png_round_trip);
  g_test_add_func ("/image/jpeg", test_jpeg_loads);
  g_test_add_func ("/image/error/missing", test_missing);
  g_test_add_func ("/image/error/folder", test_folder);
  g_test_add_func ("/image/error/zero-size", test_zero_size);
  g_test_add_func ("/image/error/text-named-jpg", test_text_named_jpg);
  g_test_add_func ("/image/error/truncated-png", test_truncated_png);
  g_test_add_func ("/image/error/truncated-jpeg", test_truncated_jpeg);
  g_test_add_func ("/image/error/huge", test_huge);
  int status = g_test_run ();

  GDir *dir = g_dir_open (tmp_dir, 0, NULL);
  for (const char *name; dir != NULL && (name = g_dir_read_name (dir)) != NULL;)
    {
      g_autofree char *path = tmp_path (name);
      g_remove (path);
    }
  if (dir != NULL)
    g_dir_close (dir);
  g_rmdir (tmp_dir);
  g_free (tmp_dir);
  return status;
}
