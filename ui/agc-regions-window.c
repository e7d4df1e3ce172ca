/* agc-regions-window.c — the regions window, see agc-regions-window.h. */
#include "agc-regions-window.h"

#include "agc-close-on-escape.h"
#include "agc-ui-progress.h"
#include "agc-ui-settings.h"

#include <glib/gi18n-lib.h>
#include <string.h>

/* Longest side of the picture drawn on screen (the mask stays full size). */
#define DISPLAY_MAX 1024

struct _AgcRegionsWindow
{
  GtkWindow parent_instance;

  AgcModel *model;
  AgcClassifier *classifier;
  char **names, **displays;
  int n_classes;
  AgcImage *image;
  guint8 *coverage; /* [H, W] or NULL */

  /* the classified tiling */
  AgcRect *tiles; /* [n_tiles] */
  float *probs;   /* [n_tiles, C] */
  int n_tiles, tile, stride;
  guint16 *count; /* [H, W] tiles covering each pixel */
  float *heat;    /* [H, W] of the chosen class, NULL until needed */
  int heat_class;

  GdkPixbuf *display;          /* the image, at most DISPLAY_MAX on its longer side */
  cairo_surface_t *overlay;    /* the heatmap at the display's size, NULL until drawn */
  GCancellable *cancellable;   /* of the running classification, or NULL */

  GtkWidget *picture, *class_combo, *threshold, *opacity, *tile_spin, *stride_spin;
  GtkWidget *recompute, *cancel, *progress, *status;
  GtkWidget *selection_button, *paths_button, *layers_button;
};

enum
{
  SIGNAL_COMPUTED,
  SIGNAL_PROGRESS,
  SIGNAL_SELECTION,
  SIGNAL_PATHS,
  SIGNAL_LAYERS,
  N_SIGNALS
};
static guint signals[N_SIGNALS];

G_DEFINE_FINAL_TYPE (AgcRegionsWindow, agc_regions_window, GTK_TYPE_WINDOW)

/* ---- the heatmap ---------------------------------------------------------- */

static void
forget_heat (AgcRegionsWindow *self)
{
  g_clear_pointer (&self->heat, g_free);
  g_clear_pointer (&self->overlay, cairo_surface_destroy);
}

/* heat[H, W]: the chosen class's probability averaged over covering tiles. */
static const float *
heat (AgcRegionsWindow *self)
{
  int c = agc_regions_window_get_class (self);
  if (self->heat && self->heat_class == c)
    return self->heat;
  forget_heat (self);
  int w = self->image->width, h = self->image->height;
  self->heat = g_new0 (float, (gsize) w * h);
  self->heat_class = c;
  for (int t = 0; t < self->n_tiles && c >= 0; t++)
    {
      const AgcRect *r = &self->tiles[t];
      float p = self->probs[(gsize) t * self->n_classes + c];
      for (int y = r->y; y < r->y + r->height; y++)
        for (int x = r->x; x < r->x + r->width; x++)
          self->heat[(gsize) y * w + x] += p;
    }
  for (gsize i = 0; i < (gsize) w * h; i++)
    self->heat[i] = self->count[i] ? self->heat[i] / self->count[i] : 0.0f;
  return self->heat;
}

static gboolean
counts (AgcRegionsWindow *self, gsize i)
{
  return self->count[i] > 0 && (!self->coverage || self->coverage[i] > 0);
}

guint8 *
agc_regions_window_get_mask (AgcRegionsWindow *self, gsize *n_selected)
{
  g_return_val_if_fail (AGC_IS_REGIONS_WINDOW (self), NULL);
  gsize n = (gsize) self->image->width * self->image->height, selected = 0;
  guint8 *mask = g_new0 (guint8, n);
  const float *values = heat (self);
  float threshold = (float) agc_regions_window_get_threshold (self);
  for (gsize i = 0; i < n && self->n_tiles > 0; i++)
    if (counts (self, i) && values[i] >= threshold)
      mask[i] = 255, selected++;
  if (n_selected)
    *n_selected = selected;
  return mask;
}

AgcTagBox *
agc_regions_window_get_boxes (AgcRegionsWindow *self, int *n_boxes)
{
  g_return_val_if_fail (AGC_IS_REGIONS_WINDOW (self) && n_boxes, NULL);
  int c = agc_regions_window_get_class (self);
  double threshold = agc_regions_window_get_threshold (self);
  AgcTagBox *boxes = g_new0 (AgcTagBox, MAX (self->n_tiles, 1));
  int n = 0;
  for (int t = 0; t < self->n_tiles && c >= 0; t++)
    {
      float p = self->probs[(gsize) t * self->n_classes + c];
      if (p < threshold)
        continue;
      const AgcRect *r = &self->tiles[t];
      boxes[n++] = (AgcTagBox) { r->x, r->y, r->width, r->height, g_strdup (self->names[c]), p };
    }
  *n_boxes = agc_boxes_suppress (boxes, n, AGC_TAG_BOX_MAX_IOU);
  return boxes;
}

void
agc_regions_window_free_boxes (AgcTagBox *boxes, int n_boxes)
{
  for (int i = 0; i < n_boxes; i++)
    g_free (boxes[i].label);
  g_free (boxes);
}

/* The overlay at the display's size: the heat in colours from dark blue
 * (0) through red to yellow (1); below the threshold at a third of the
 * opacity, so the threshold shows as an edge. */
static cairo_surface_t *
overlay (AgcRegionsWindow *self)
{
  if (self->overlay)
    return self->overlay;
  int dw = gdk_pixbuf_get_width (self->display), dh = gdk_pixbuf_get_height (self->display);
  int w = self->image->width, h = self->image->height;
  const float *values = heat (self); // first: a new class forgets the old overlay
  self->overlay = cairo_image_surface_create (CAIRO_FORMAT_ARGB32, dw, dh);
  cairo_surface_flush (self->overlay);
  guint8 *data = cairo_image_surface_get_data (self->overlay);
  int stride = cairo_image_surface_get_stride (self->overlay);
  float threshold = (float) agc_regions_window_get_threshold (self);
  double opacity = agc_regions_window_get_opacity (self);
  for (int y = 0; y < dh; y++)
    for (int x = 0; x < dw; x++)
      {
        gsize i = (gsize) MIN (h - 1, y * h / dh) * w + MIN (w - 1, x * w / dw);
        guint32 *pixel = (guint32 *) (void *) (data + (gsize) y * stride + x * 4);
        if (!self->n_tiles || !counts (self, i))
          {
            *pixel = 0;
            continue;
          }
        double v = CLAMP (values[i], 0.0f, 1.0f);
        double a = opacity * (v >= threshold ? 1.0 : 1.0 / 3.0);
        double r = MIN (1.0, 2.0 * v), g = MAX (0.0, 2.0 * v - 1.0), b = 0.5 * (1.0 - v);
        // premultiplied ARGB
        *pixel = (guint32) (255 * a) << 24 | (guint32) (255 * a * r) << 16
                 | (guint32) (255 * a * g) << 8 | (guint32) (255 * a * b);
      }
  cairo_surface_mark_dirty (self->overlay);
  return self->overlay;
}

static gboolean
draw_picture (GtkWidget *area, cairo_t *cr, AgcRegionsWindow *self)
{
  double w = gtk_widget_get_allocated_width (area), h = gtk_widget_get_allocated_height (area);
  double pw = gdk_pixbuf_get_width (self->display), ph = gdk_pixbuf_get_height (self->display);
  double scale = MIN (w / pw, h / ph);
  cairo_translate (cr, (w - pw * scale) / 2, (h - ph * scale) / 2);
  cairo_scale (cr, scale, scale);
  gdk_cairo_set_source_pixbuf (cr, self->display, 0, 0);
  cairo_pattern_set_filter (cairo_get_source (cr), CAIRO_FILTER_GOOD);
  cairo_paint (cr);
  cairo_set_source_surface (cr, overlay (self), 0, 0);
  cairo_pattern_set_filter (cairo_get_source (cr), CAIRO_FILTER_GOOD);
  cairo_paint (cr);
  return FALSE;
}

static void
update_picture (AgcRegionsWindow *self)
{
  g_clear_pointer (&self->overlay, cairo_surface_destroy);
  gtk_widget_queue_draw (self->picture);
  gboolean any = self->n_tiles > 0 && !self->cancellable;
  gtk_widget_set_sensitive (self->selection_button, any);
  gtk_widget_set_sensitive (self->paths_button, any);
  gtk_widget_set_sensitive (self->layers_button, any);
}

/* ---- settings ----------------------------------------------------------- */

void
agc_regions_window_set_class (AgcRegionsWindow *self, int class_index)
{
  g_return_if_fail (AGC_IS_REGIONS_WINDOW (self));
  gtk_combo_box_set_active (GTK_COMBO_BOX (self->class_combo), class_index);
}

int
agc_regions_window_get_class (AgcRegionsWindow *self)
{
  return gtk_combo_box_get_active (GTK_COMBO_BOX (self->class_combo));
}

void
agc_regions_window_set_threshold (AgcRegionsWindow *self, double threshold)
{
  gtk_range_set_value (GTK_RANGE (self->threshold), threshold);
}

double
agc_regions_window_get_threshold (AgcRegionsWindow *self)
{
  return gtk_range_get_value (GTK_RANGE (self->threshold));
}

double
agc_regions_window_get_opacity (AgcRegionsWindow *self)
{
  return gtk_range_get_value (GTK_RANGE (self->opacity));
}

const AgcRect *
agc_regions_window_get_tiles (AgcRegionsWindow *self, int *n_tiles)
{
  *n_tiles = self->n_tiles;
  return self->tiles;
}

const float *
agc_regions_window_get_probabilities (AgcRegionsWindow *self)
{
  return self->probs;
}

void
agc_regions_window_get_tiling (AgcRegionsWindow *self, int *tile, int *stride)
{
  *tile = self->tile;
  *stride = self->stride;
}

gboolean
agc_regions_window_is_computing (AgcRegionsWindow *self)
{
  return self->cancellable != NULL;
}

/* ---- classifying the tiles on a worker thread ----------------------------- */

typedef struct
{
  AgcRegionsWindow *self; /* a reference: progress may arrive after Cancel */
  int done, total;
} Progress;

typedef struct
{
  AgcModel *model;
  const AgcClassifier *classifier;
  const AgcImage *image;
  const guint8 *coverage;
  int width, tile, stride, n_classes;
  GArray *tiles; /* AgcRect, covered ones */
  float *probs;  /* [n_tiles, C] */
  AgcRegionsWindow *self;
} Tiling;

static void
tiling_free (Tiling *t)
{
  if (t->tiles)
    g_array_unref (t->tiles);
  g_free (t->probs);
  g_free (t);
}

static gboolean
show_progress (gpointer data)
{
  Progress *p = data;
  if (p->self->cancellable)
    {
      /* Translators: tiles classified so far, of all */
      g_autofree char *text = g_strdup_printf (_("%d of %d tiles"), p->done, p->total);
      agc_ui_progress_show (p->self->progress, p->done, p->total, text);
      g_signal_emit (p->self, signals[SIGNAL_PROGRESS], 0,
                     p->total ? (double) p->done / p->total : 0.0);
    }
  g_object_unref (p->self);
  g_free (p);
  return G_SOURCE_REMOVE;
}

static gboolean
covered (const Tiling *t, const AgcRect *r)
{
  if (!t->coverage)
    return TRUE;
  for (int y = r->y; y < r->y + r->height; y++)
    for (int x = r->x; x < r->x + r->width; x++)
      if (t->coverage[(gsize) y * t->width + x])
        return TRUE;
  return FALSE;
}

static void
tiling_thread (GTask *task, gpointer source, gpointer data, GCancellable *cancellable)
{
  (void) source;
  Tiling *t = data;
  g_autoptr (GArray) grid = agc_tile_grid (t->image->width, t->image->height, t->tile, t->stride);
  t->tiles = g_array_new (FALSE, FALSE, sizeof (AgcRect));
  for (guint i = 0; i < grid->len; i++)
    if (covered (t, &g_array_index (grid, AgcRect, i)))
      g_array_append_val (t->tiles, g_array_index (grid, AgcRect, i));
  int n = (int) t->tiles->len, dim = agc_model_embed_dim (t->model);
  t->probs = g_new (float, (gsize) MAX (n, 1) * t->n_classes);
  g_autofree float *embeddings = g_new (float, (gsize) AGC_TAG_BATCH * dim);
  GError *error = NULL;
  for (int start = 0; start < n; start += AGC_TAG_BATCH)
    {
      int batch = MIN (AGC_TAG_BATCH, n - start);
      AgcImage *crops[AGC_TAG_BATCH];
      for (int i = 0; i < batch; i++)
        crops[i] = agc_image_crop (t->image, &g_array_index (t->tiles, AgcRect, start + i));
      gboolean ok = !g_cancellable_set_error_if_cancelled (cancellable, &error)
                    && agc_model_embed_images (t->model, crops, batch, TRUE, embeddings,
                                               cancellable, &error);
      for (int i = 0; i < batch; i++)
        agc_image_free (crops[i]);
      if (!ok)
        {
          g_task_return_error (task, error);
          return;
        }
      for (int i = 0; i < batch; i++)
        agc_classifier_probabilities (t->classifier, embeddings + (gsize) i * dim,
                                      t->probs + (gsize) (start + i) * t->n_classes);
      Progress *p = g_new (Progress, 1);
      *p = (Progress) { g_object_ref (t->self), start + batch, n };
      g_idle_add (show_progress, p);
    }
  g_task_return_boolean (task, TRUE);
}

static void
set_computing (AgcRegionsWindow *self, gboolean computing)
{
  agc_ui_progress_set_busy (self->progress, self->cancel, computing);
  gtk_widget_set_sensitive (self->recompute, !computing);
  gtk_widget_set_sensitive (self->tile_spin, !computing);
  gtk_widget_set_sensitive (self->stride_spin, !computing);
  update_picture (self);
}

static void
set_status (AgcRegionsWindow *self, const char *text)
{
  gtk_label_set_text (GTK_LABEL (self->status), text);
}

static void
tiling_done (GObject *source, GAsyncResult *result, gpointer user_data)
{
  (void) user_data;
  AgcRegionsWindow *self = AGC_REGIONS_WINDOW (source);
  Tiling *t = g_task_get_task_data (G_TASK (result));
  GError *error = NULL;
  g_clear_object (&self->cancellable);
  if (g_task_propagate_boolean (G_TASK (result), &error))
    {
      g_free (self->tiles);
      g_free (self->probs);
      self->n_tiles = (int) t->tiles->len;
      self->tiles = (AgcRect *) (void *) g_array_free (g_steal_pointer (&t->tiles), FALSE);
      self->probs = g_steal_pointer (&t->probs);
      self->tile = t->tile;
      self->stride = t->stride;
      int w = self->image->width, h = self->image->height;
      memset (self->count, 0, sizeof (guint16) * (gsize) w * h);
      for (int i = 0; i < self->n_tiles; i++)
        for (int y = self->tiles[i].y; y < self->tiles[i].y + self->tiles[i].height; y++)
          for (int x = self->tiles[i].x; x < self->tiles[i].x + self->tiles[i].width; x++)
            if (self->count[(gsize) y * w + x] < G_MAXUINT16)
              self->count[(gsize) y * w + x]++;
      forget_heat (self);
      /* Translators: how the image was cut: number of tiles, their side, their spacing */
      g_autofree char *text = g_strdup_printf (_("%d tiles of %d px, every %d px"),
                                               self->n_tiles, self->tile, self->stride);
      set_status (self, self->n_tiles ? text : _("Nothing selected to classify"));
    }
  else
    {
      // the tiles of before stay: show them again in the controls
      gtk_spin_button_set_value (GTK_SPIN_BUTTON (self->tile_spin), self->tile);
      gtk_spin_button_set_value (GTK_SPIN_BUTTON (self->stride_spin), self->stride);
      set_status (self, g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED)
                            || g_error_matches (error, AGC_ERROR, AGC_ERROR_CANCELLED)
                          ? _("Cancelled: the tiles of before are shown")
                          : error->message);
    }
  set_computing (self, FALSE);
  g_signal_emit (self, signals[SIGNAL_COMPUTED], 0, error ? error->message : NULL);
  g_clear_error (&error);
}

void
agc_regions_window_compute (AgcRegionsWindow *self, int tile, int stride)
{
  g_return_if_fail (AGC_IS_REGIONS_WINDOW (self) && tile > 0 && stride > 0);
  g_return_if_fail (self->cancellable == NULL); // one at a time: they share the model
  Tiling *t = g_new0 (Tiling, 1);
  *t = (Tiling) { .model = self->model, .classifier = self->classifier, .image = self->image,
                  .coverage = self->coverage, .width = self->image->width, .tile = tile,
                  .stride = stride, .n_classes = self->n_classes, .self = self };
  gtk_spin_button_set_value (GTK_SPIN_BUTTON (self->tile_spin), tile);
  gtk_spin_button_set_value (GTK_SPIN_BUTTON (self->stride_spin), stride);
  self->cancellable = g_cancellable_new ();
  agc_ui_progress_show (self->progress, 0, 0, _("Classifying the tiles…"));
  set_status (self, _("Classifying the tiles…"));
  set_computing (self, TRUE);
  GTask *task = g_task_new (self, self->cancellable, tiling_done, NULL);
  g_task_set_task_data (task, t, (GDestroyNotify) tiling_free);
  g_task_run_in_thread (task, tiling_thread);
  g_object_unref (task);
}

void
agc_regions_window_cancel (AgcRegionsWindow *self)
{
  if (self->cancellable)
    g_cancellable_cancel (self->cancellable);
}

/* ---- controls ----------------------------------------------------------- */

static void
on_recompute (GtkButton *button, AgcRegionsWindow *self)
{
  (void) button;
  agc_regions_window_compute (
    self, gtk_spin_button_get_value_as_int (GTK_SPIN_BUTTON (self->tile_spin)),
    gtk_spin_button_get_value_as_int (GTK_SPIN_BUTTON (self->stride_spin)));
}

static void
on_view_changed (GtkWidget *widget, AgcRegionsWindow *self)
{
  (void) widget;
  update_picture (self);
}

static void
on_action (GtkButton *button, AgcRegionsWindow *self)
{
  g_signal_emit (self, GPOINTER_TO_UINT (g_object_get_data (G_OBJECT (button), "signal")), 0);
}

/* The plain text of a mnemonic label ("_Close" reads "Close"). */
static char *
plain_text (const char *mnemonic)
{
  char *plain = g_strdup (mnemonic), *w = plain;
  for (const char *r = plain; *r; r++)
    if (*r != '_')
      *w++ = *r;
  *w = '\0';
  return plain;
}

static GtkWidget *
button (const char *mnemonic, const char *tooltip)
{
  GtkWidget *b = gtk_button_new_with_mnemonic (mnemonic);
  gtk_widget_set_tooltip_text (b, tooltip);
  g_autofree char *plain = plain_text (mnemonic);
  atk_object_set_name (gtk_widget_get_accessible (b), plain);
  return b;
}

static GtkWidget *
action_button (AgcRegionsWindow *self, const char *mnemonic, const char *tooltip, guint signal)
{
  GtkWidget *b = button (mnemonic, tooltip);
  g_object_set_data (G_OBJECT (b), "signal", GUINT_TO_POINTER (signals[signal]));
  g_signal_connect (b, "clicked", G_CALLBACK (on_action), self);
  return b;
}

/* A mnemonic label for control in row of grid; control reads as its text. */
static void
attach (GtkGrid *grid, int column, int row, const char *mnemonic, GtkWidget *control)
{
  GtkWidget *label = gtk_label_new_with_mnemonic (mnemonic);
  gtk_label_set_xalign (GTK_LABEL (label), 0.0f);
  gtk_label_set_mnemonic_widget (GTK_LABEL (label), control);
  g_autofree char *plain = plain_text (mnemonic);
  g_strchomp (g_strdelimit (plain, ":", ' '));
  atk_object_set_name (gtk_widget_get_accessible (control), plain);
  gtk_widget_set_hexpand (control, TRUE);
  gtk_grid_attach (grid, label, column, row, 1, 1);
  gtk_grid_attach (grid, control, column + 1, row, 1, 1);
}

static GtkWidget *
scale (double value)
{
  GtkWidget *s = gtk_scale_new_with_range (GTK_ORIENTATION_HORIZONTAL, 0.0, 1.0, 0.01);
  gtk_scale_set_digits (GTK_SCALE (s), 2);
  gtk_scale_set_value_pos (GTK_SCALE (s), GTK_POS_RIGHT);
  gtk_range_set_value (GTK_RANGE (s), value);
  gtk_widget_set_size_request (s, 160, -1);
  return s;
}

static void
agc_regions_window_init (AgcRegionsWindow *self)
{
  gtk_window_set_title (GTK_WINDOW (self), _("AgriCLIP: Regions"));
  gtk_window_set_default_size (GTK_WINDOW (self), 760, 600);
  agc_ui_remember_window_size (GTK_WINDOW (self), "regions-window");
  agc_ui_close_on_escape (GTK_WINDOW (self));

  GtkWidget *outer = gtk_box_new (GTK_ORIENTATION_VERTICAL, 12);
  g_object_set (outer, "margin", 12, NULL);
  self->picture = gtk_drawing_area_new ();
  gtk_widget_set_size_request (self->picture, 320, 220);
  g_signal_connect (self->picture, "draw", G_CALLBACK (draw_picture), self);
  atk_object_set_name (gtk_widget_get_accessible (self->picture),
                       _("The image with the heatmap of the chosen class"));
  gtk_box_pack_start (GTK_BOX (outer), self->picture, TRUE, TRUE, 0);

  GtkGrid *grid = GTK_GRID (gtk_grid_new ());
  gtk_grid_set_row_spacing (grid, 6);
  gtk_grid_set_column_spacing (grid, 12);
  self->class_combo = gtk_combo_box_text_new ();
  self->threshold = scale (AGC_TAG_BOX_THRESHOLD);
  self->opacity = scale (0.6);
  attach (grid, 0, 0, _("Cl_ass:"), self->class_combo);
  attach (grid, 0, 1, _("_Threshold:"), self->threshold);
  attach (grid, 0, 2, _("_Opacity:"), self->opacity);
  gtk_widget_set_tooltip_text (self->threshold,
                               _("Where the heatmap reaches this, the area is selected and "
                                 "tiles become boxes"));
  g_signal_connect (self->class_combo, "changed", G_CALLBACK (on_view_changed), self);
  g_signal_connect (self->threshold, "value-changed", G_CALLBACK (on_view_changed), self);
  g_signal_connect (self->opacity, "value-changed", G_CALLBACK (on_view_changed), self);

  self->tile_spin = gtk_spin_button_new_with_range (8, 8192, 8);
  self->stride_spin = gtk_spin_button_new_with_range (1, 8192, 8);
  attach (grid, 2, 0, _("Tile si_ze (px):"), self->tile_spin);
  attach (grid, 2, 1, _("_Stride (px):"), self->stride_spin);
  GtkWidget *compute_box = gtk_box_new (GTK_ORIENTATION_HORIZONTAL, 6);
  self->recompute = button (_("_Recompute"), _("Classify the tiles again with this tile size "
                                               "and stride"));
  g_signal_connect (self->recompute, "clicked", G_CALLBACK (on_recompute), self);
  self->cancel = button (_("Ca_ncel"), _("Stop classifying; the tiles of before stay"));
  g_signal_connect_swapped (self->cancel, "clicked", G_CALLBACK (agc_regions_window_cancel),
                            self);
  gtk_container_add (GTK_CONTAINER (compute_box), self->recompute);
  gtk_container_add (GTK_CONTAINER (compute_box), self->cancel);
  gtk_grid_attach (grid, compute_box, 3, 2, 1, 1);
  gtk_container_add (GTK_CONTAINER (outer), GTK_WIDGET (grid));

  self->progress = agc_ui_progress_new ();
  self->status = gtk_label_new (NULL);
  gtk_label_set_xalign (GTK_LABEL (self->status), 0.0f);
  gtk_label_set_line_wrap (GTK_LABEL (self->status), TRUE);
  gtk_container_add (GTK_CONTAINER (outer), self->progress);
  gtk_container_add (GTK_CONTAINER (outer), self->status);

  GtkWidget *actions = gtk_button_box_new (GTK_ORIENTATION_HORIZONTAL);
  gtk_button_box_set_layout (GTK_BUTTON_BOX (actions), GTK_BUTTONBOX_END);
  gtk_box_set_spacing (GTK_BOX (actions), 6);
  self->selection_button = action_button (
    self, _("Selection from _heatmap"),
    _("Select where the heatmap reaches the threshold"), SIGNAL_SELECTION);
  self->paths_button = action_button (self, _("_Boxes to paths"),
                                      _("A path around each tile that reaches the threshold, "
                                        "overlapping ones merged"),
                                      SIGNAL_PATHS);
  self->layers_button = action_button (self, _("Add _layers"),
                                       _("A layer group with heatmaps and labelled regions"),
                                       SIGNAL_LAYERS);
  GtkWidget *close = button (_("_Close"), _("Close this window"));
  g_signal_connect_swapped (close, "clicked", G_CALLBACK (gtk_window_close), self);
  gtk_container_add (GTK_CONTAINER (actions), self->selection_button);
  gtk_container_add (GTK_CONTAINER (actions), self->paths_button);
  gtk_container_add (GTK_CONTAINER (actions), self->layers_button);
  gtk_container_add (GTK_CONTAINER (actions), close);
  gtk_container_add (GTK_CONTAINER (outer), actions);
  gtk_container_add (GTK_CONTAINER (self), outer);
  gtk_widget_show_all (outer);
  agc_ui_progress_set_busy (self->progress, self->cancel, FALSE);
}

static void
agc_regions_window_dispose (GObject *object)
{
  AgcRegionsWindow *self = AGC_REGIONS_WINDOW (object);
  agc_regions_window_cancel (self);
  G_OBJECT_CLASS (agc_regions_window_parent_class)->dispose (object);
}

static void
agc_regions_window_finalize (GObject *object)
{
  AgcRegionsWindow *self = AGC_REGIONS_WINDOW (object);
  forget_heat (self);
  g_clear_object (&self->display);
  agc_classifier_free (self->classifier);
  agc_model_free (self->model);
  g_strfreev (self->names);
  g_strfreev (self->displays);
  agc_image_free (self->image);
  g_free (self->coverage);
  g_free (self->tiles);
  g_free (self->probs);
  g_free (self->count);
  G_OBJECT_CLASS (agc_regions_window_parent_class)->finalize (object);
}

static void
agc_regions_window_class_init (AgcRegionsWindowClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  object_class->dispose = agc_regions_window_dispose;
  object_class->finalize = agc_regions_window_finalize;
  /* (message): a classification ended; NULL on success, else what went wrong */
  signals[SIGNAL_COMPUTED] = g_signal_new ("computed", G_TYPE_FROM_CLASS (klass),
                                           G_SIGNAL_RUN_LAST, 0, NULL, NULL, NULL, G_TYPE_NONE,
                                           1, G_TYPE_STRING);
  /* (fraction): tiles classified so far, 0..1 (e.g. for GIMP's progress bar) */
  signals[SIGNAL_PROGRESS] = g_signal_new ("progress", G_TYPE_FROM_CLASS (klass),
                                           G_SIGNAL_RUN_LAST, 0, NULL, NULL, NULL, G_TYPE_NONE,
                                           1, G_TYPE_DOUBLE);
  /* "Selection from heatmap": read agc_regions_window_get_mask */
  signals[SIGNAL_SELECTION] = g_signal_new ("selection-from-heatmap", G_TYPE_FROM_CLASS (klass),
                                            G_SIGNAL_RUN_LAST, 0, NULL, NULL, NULL, G_TYPE_NONE,
                                            0);
  /* "Boxes to paths": read agc_regions_window_get_boxes */
  signals[SIGNAL_PATHS] = g_signal_new ("boxes-to-paths", G_TYPE_FROM_CLASS (klass),
                                        G_SIGNAL_RUN_LAST, 0, NULL, NULL, NULL, G_TYPE_NONE, 0);
  /* "Add layers": read the tiles and probabilities */
  signals[SIGNAL_LAYERS] = g_signal_new ("add-layers", G_TYPE_FROM_CLASS (klass),
                                         G_SIGNAL_RUN_LAST, 0, NULL, NULL, NULL, G_TYPE_NONE, 0);
}

/* The image as a pixbuf of at most DISPLAY_MAX on its longer side. */
static GdkPixbuf *
display_pixbuf (const AgcImage *image)
{
  GdkPixbuf *full = gdk_pixbuf_new_from_data (image->pixels, GDK_COLORSPACE_RGB, FALSE, 8,
                                              image->width, image->height, image->width * 3,
                                              NULL, NULL);
  double scale = MIN (1.0, (double) DISPLAY_MAX / MAX (image->width, image->height));
  GdkPixbuf *display = gdk_pixbuf_scale_simple (full, MAX (1, (int) (image->width * scale)),
                                                MAX (1, (int) (image->height * scale)),
                                                GDK_INTERP_BILINEAR);
  g_object_unref (full);
  return display;
}

GtkWidget *
agc_regions_window_new (AgcModel *model, AgcClassifier *classifier, const char *const *names,
                        const char *const *displays, AgcImage *image, const guint8 *coverage,
                        int tile, int stride)
{
  g_return_val_if_fail (model && classifier && names && displays && image, NULL);
  AgcRegionsWindow *self = g_object_new (AGC_TYPE_REGIONS_WINDOW, NULL);
  self->model = model;
  self->classifier = classifier;
  self->n_classes = agc_classifier_n_classes (classifier);
  self->names = g_strdupv ((char **) names);
  self->displays = g_strdupv ((char **) displays);
  self->image = image;
  gsize n = (gsize) image->width * image->height;
  self->coverage = coverage ? g_memdup2 (coverage, n) : NULL;
  self->count = g_new0 (guint16, n);
  self->display = display_pixbuf (image);
  for (int c = 0; c < self->n_classes; c++)
    gtk_combo_box_text_append_text (GTK_COMBO_BOX_TEXT (self->class_combo), displays[c]);
  gtk_combo_box_set_active (GTK_COMBO_BOX (self->class_combo), 0);
  self->tile = tile;
  self->stride = stride;
  agc_regions_window_compute (self, tile, stride);
  return GTK_WIDGET (self);
}
