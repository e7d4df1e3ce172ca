/* test-regions-window.c — the regions window (ui/agc-regions-window.h) on a
 * real tiny model under Xvfb, on a 480 x 320 image (left half red, right
 * half blue) cut into 96-px tiles every 64 px: the tiles are the library's
 * grid and their probabilities what the model and classifier give for each
 * crop; moving the threshold slider changes the selected area monotonically
 * (and it equals the pixels whose mean covering-tile probability reaches
 * it); the action mnemonics emit their signals; "Recompute" with another
 * tile size classifies again, and Cancel keeps the tiles of before; the
 * labels of "Add layers" never collide. */
#include "agc-region-labels.h"
#include "agc-regions-window.h"
#include "ui-test-util.h"

#define W 480
#define H 320

static char *model_dir;
static const char *colours_json
  = "{\"id\": \"colours\", \"title\": \"Colours\", \"templates\": [\"a {} square\"],"
    " \"classes\": [{\"name\": \"red\", \"display\": \"Red\"},"
    " {\"name\": \"blue\", \"display\": \"Blue\"},"
    " {\"name\": \"green\", \"display\": \"Green\"}]}";
static const char *const names[] = { "red", "blue", "green", NULL };
static const char *const displays[] = { "Red", "Blue", "Green", NULL };

static AgcImage *
two_halves (void)
{
  AgcImage *image = agc_image_new (W, H);
  for (int y = 0; y < H; y++)
    for (int x = 0; x < W; x++)
      {
        guint8 *p = image->pixels + ((gsize) y * W + x) * 3;
        p[0] = x < W / 2 ? 0xd0 : 0x20;
        p[1] = 0x20;
        p[2] = x < W / 2 ? 0x20 : 0xd0;
      }
  return image;
}

static AgcClassifier *
classifier_for (AgcModel *model)
{
  AgcLabelSet *set = agc_label_set_open ("colours", NULL);
  g_assert_nonnull (set);
  GError *error = NULL;
  AgcClassifier *classifier = agc_classifier_new (model, set, NULL, &error);
  g_assert_no_error (error);
  agc_label_set_free (set);
  return classifier;
}

static void
on_count (AgcRegionsWindow *window, int *count)
{
  (void) window;
  (*count)++;
}

/* Pixels whose mean probability of class c over the covering tiles reaches t. */
static gsize
expected_selected (const AgcRect *tiles, int n_tiles, const float *probs, int c, double t)
{
  g_autofree float *sum = g_new0 (float, W * H);
  g_autofree int *count = g_new0 (int, W * H);
  for (int i = 0; i < n_tiles; i++)
    for (int y = tiles[i].y; y < tiles[i].y + tiles[i].height; y++)
      for (int x = tiles[i].x; x < tiles[i].x + tiles[i].width; x++)
        sum[y * W + x] += probs[i * 3 + c], count[y * W + x]++;
  gsize n = 0;
  for (int i = 0; i < W * H; i++)
    n += count[i] && sum[i] / count[i] >= (float) t;
  return n;
}

static void
test_regions (void)
{
  AgcModel *model = agc_model_load (model_dir, NULL);
  g_assert_nonnull (model);
  AgcImage *image = two_halves ();
  GtkWidget *widget = agc_regions_window_new (model, classifier_for (model), names, displays,
                                              image, NULL, 96, 64);
  AgcRegionsWindow *window = AGC_REGIONS_WINDOW (widget);
  UiTestEnded computed = { 0 };
  g_signal_connect (window, "computed", G_CALLBACK (ui_test_on_ended), &computed);
  ui_test_show (widget);
  ui_test_wait_for (&computed.done);
  g_assert_null (computed.message);

  // the tiles: the library's grid; their probabilities: the model's, crop by crop
  g_autoptr (GArray) grid = agc_tile_grid (W, H, 96, 64);
  int n_tiles;
  const AgcRect *tiles = agc_regions_window_get_tiles (window, &n_tiles);
  g_assert_cmpint (n_tiles, ==, (int) grid->len);
  const float *probs = agc_regions_window_get_probabilities (window);
  AgcModel *own = agc_model_load (model_dir, NULL);
  AgcClassifier *reference = classifier_for (own);
  AgcImage *again = two_halves ();
  for (int t = 0; t < n_tiles; t += 7)
    {
      g_assert_cmpmem (&tiles[t], sizeof (AgcRect), &g_array_index (grid, AgcRect, t),
                       sizeof (AgcRect));
      AgcImage *crop = agc_image_crop (again, &tiles[t]);
      float embedding[64], p[3];
      g_assert_true (agc_model_embed_images (own, &crop, 1, TRUE, embedding, NULL, NULL));
      agc_classifier_probabilities (reference, embedding, p);
      for (int c = 0; c < 3; c++)
        g_assert_cmpfloat_with_epsilon (p[c], probs[t * 3 + c], 1e-4);
      agc_image_free (crop);
    }

  // the threshold slider, as a person moves it: the area only shrinks
  GtkWidget *threshold = ui_test_get (widget, "Threshold");
  GtkWidget *class_combo = ui_test_get (widget, "Class");
  for (int c = 0; c < 2; c++)
    {
      gtk_combo_box_set_active (GTK_COMBO_BOX (class_combo), c);
      gsize previous = G_MAXSIZE, first = 0, last = 0;
      int changes = 0;
      for (int step = 0; step <= 20; step++)
        {
          double t = step / 20.0;
          gtk_range_set_value (GTK_RANGE (threshold), t);
          ui_test_settle (10);
          gsize selected;
          g_autofree guint8 *mask = agc_regions_window_get_mask (window, &selected);
          g_assert_cmpuint (selected, ==, expected_selected (tiles, n_tiles, probs, c, t));
          g_assert_cmpuint (selected, <=, previous);
          changes += previous != G_MAXSIZE && selected != previous;
          if (step == 0)
            first = selected;
          last = selected;
          previous = selected;
        }
      g_assert_cmpuint (first, ==, W * H); // threshold 0: everything
      g_assert_cmpuint (last, <, first);
      g_assert_cmpint (changes, >=, 1);
    }

  // the actions, by their mnemonics
  int selections = 0, paths = 0, layers = 0;
  g_signal_connect (window, "selection-from-heatmap", G_CALLBACK (on_count), &selections);
  g_signal_connect (window, "boxes-to-paths", G_CALLBACK (on_count), &paths);
  g_signal_connect (window, "add-layers", G_CALLBACK (on_count), &layers);
  ui_test_press_mnemonic (widget, GDK_KEY_h);
  ui_test_press_mnemonic (widget, GDK_KEY_b);
  ui_test_press_mnemonic (widget, GDK_KEY_l);
  g_assert_cmpint (selections, ==, 1);
  g_assert_cmpint (paths, ==, 1);
  g_assert_cmpint (layers, ==, 1);

  // boxes: tiles reaching the threshold, no two of a class overlapping above the IoU limit
  int n_boxes, c = gtk_combo_box_get_active (GTK_COMBO_BOX (class_combo)), n_reaching = 0;
  float low = 1, high = 0;
  for (int t = 0; t < n_tiles; t++)
    low = MIN (low, probs[t * 3 + c]), high = MAX (high, probs[t * 3 + c]);
  float middle = (float) (int) (100 * (low + high) / 2) / 100; // on the slider's 0.01 steps
  gtk_range_set_value (GTK_RANGE (threshold), middle);
  for (int t = 0; t < n_tiles; t++)
    n_reaching += probs[t * 3 + c] >= middle;
  AgcTagBox *boxes = agc_regions_window_get_boxes (window, &n_boxes);
  g_assert_cmpint (n_boxes, >, 0);
  g_assert_cmpint (n_boxes, <=, n_reaching);
  for (int i = 0; i < n_boxes; i++)
    {
      g_assert_cmpfloat (boxes[i].p, >=, middle);
      g_assert_cmpstr (boxes[i].label, ==, names[c]);
      g_assert_true (i == 0 || boxes[i].p <= boxes[i - 1].p);
      for (int j = 0; j < i; j++)
        {
          int w = MIN (boxes[i].x + boxes[i].width, boxes[j].x + boxes[j].width)
                  - MAX (boxes[i].x, boxes[j].x);
          int h = MIN (boxes[i].y + boxes[i].height, boxes[j].y + boxes[j].height)
                  - MAX (boxes[i].y, boxes[j].y);
          double inter = w > 0 && h > 0 ? (double) w * h : 0;
          g_assert_cmpfloat (inter / (2.0 * 96 * 96 - inter), <=, AGC_TAG_BOX_MAX_IOU);
        }
    }
  agc_regions_window_free_boxes (boxes, n_boxes);

  // Recompute with 160-px tiles every 160 px
  gtk_spin_button_set_value (GTK_SPIN_BUTTON (ui_test_get (widget, "Tile size (px)")), 160);
  gtk_spin_button_set_value (GTK_SPIN_BUTTON (ui_test_get (widget, "Stride (px)")), 160);
  computed.done = FALSE;
  ui_test_press_mnemonic (widget, GDK_KEY_r);
  ui_test_wait_for (&computed.done);
  g_assert_null (computed.message);
  g_autoptr (GArray) coarse = agc_tile_grid (W, H, 160, 160);
  agc_regions_window_get_tiles (window, &n_tiles);
  g_assert_cmpint (n_tiles, ==, (int) coarse->len);

  // Cancel: the tiles of before stay
  computed.done = FALSE;
  agc_regions_window_compute (window, 16, 8);
  g_assert_true (agc_regions_window_is_computing (window));
  gtk_button_clicked (GTK_BUTTON (ui_test_get (widget, "Cancel")));
  ui_test_wait_for (&computed.done);
  g_assert_nonnull (computed.message);
  agc_regions_window_get_tiles (window, &n_tiles);
  g_assert_cmpint (n_tiles, ==, (int) coarse->len);
  int tile, stride;
  agc_regions_window_get_tiling (window, &tile, &stride);
  g_assert_cmpint (tile, ==, 160);

  if (g_getenv ("AGC_SCREENSHOT_DIR"))
    {
      gtk_range_set_value (GTK_RANGE (threshold), middle);
      ui_test_settle (100);
      GdkWindow *gdk = gtk_widget_get_window (widget);
      GdkPixbuf *shot = gdk_pixbuf_get_from_window (gdk, 0, 0, gdk_window_get_width (gdk),
                                                    gdk_window_get_height (gdk));
      g_autofree char *name = g_strdup_printf ("regions-window-scale%d.png",
                                               gdk_window_get_scale_factor (gdk));
      g_autofree char *path = g_build_filename (g_getenv ("AGC_SCREENSHOT_DIR"), name, NULL);
      gdk_pixbuf_save (shot, path, "png", NULL, NULL);
      g_object_unref (shot);
    }
  agc_image_free (again);
  agc_classifier_free (reference);
  agc_model_free (own);
  g_free (computed.message);
  gtk_widget_destroy (widget);
}

/* "Add layers" labels on 480 x 320 with 96-px tiles every 64 px: local
 * maxima only, none colliding with another or with the whole-image label. */
static void
test_labels_readable (void)
{
  g_autoptr (GArray) grid = agc_tile_grid (W, H, 96, 64);
  int n = (int) grid->len;
  g_autofree AgcTagBox *boxes = g_new0 (AgcTagBox, n);
  g_autofree const char **texts = g_new0 (const char *, n);
  for (int i = 0; i < n; i++)
    {
      const AgcRect *r = &g_array_index (grid, AgcRect, i);
      // one class everywhere, a little more probable towards the centre
      boxes[i] = (AgcTagBox) { r->x, r->y, r->width, r->height, (char *) "mildew",
                               0.85f - 0.001f * (float) (abs (r->x - 192) + abs (r->y - 112)) };
      texts[i] = "Powdery mildew 85%";
    }
  AgcRect corner = { 0, 0, 200, 30 };
  g_autoptr (GArray) placed = agc_region_labels_place (boxes, texts, n, W, H, &corner, 1);
  g_assert_cmpuint (placed->len, >=, 1);
  g_assert_cmpuint (placed->len, <, (guint) n);
  double size = agc_region_label_size (W, H);
  g_assert_cmpfloat (size, >=, 10.0);
  for (guint i = 0; i < placed->len; i++)
    {
      const AgcRegionLabel *a = &g_array_index (placed, AgcRegionLabel, i);
      g_assert_cmpint (a->x, >=, 0);
      g_assert_cmpint (a->x + a->width, <=, W);
      g_assert_false (a->x < corner.x + corner.width && a->y < corner.y + corner.height);
      for (guint j = i + 1; j < placed->len; j++)
        {
          const AgcRegionLabel *b = &g_array_index (placed, AgcRegionLabel, j);
          gboolean overlap = a->x < b->x + b->width && b->x < a->x + a->width
                             && a->y < b->y + b->height && b->y < a->y + a->height;
          g_assert_false (overlap);
        }
    }
  // the most probable box (nearest the centre) is labelled
  g_assert_cmpint (boxes[g_array_index (placed, AgcRegionLabel, 0).box].x, ==, 192);
}

int
main (int argc, char **argv)
{
  ui_test_init (&argc, &argv, "test-regions-window");
  model_dir = ui_test_tiny_model ("tiny");
  g_autofree char *labels = ui_test_path ("labels/colours.json");
  ui_test_write (labels, colours_json);
  g_test_add_func ("/regions-window/threshold-and-tiles", test_regions);
  g_test_add_func ("/regions-window/labels-readable", test_labels_readable);
  int status = g_test_run ();
  g_free (model_dir);
  ui_test_cleanup ();
  return status;
}
