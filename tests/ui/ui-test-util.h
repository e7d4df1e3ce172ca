/* ui-test-util.h — what the widget tests share: a throwaway home (config,
 * data and label-set folders), a tiny model made through the public API
 * (agc_pretrain on coloured squares, a second or so), and ways to drive a
 * window as a person would: find a control by its accessible name, press
 * its mnemonic with synthesised key events and wait for what follows. */
#pragma once

#include "agriclip.h"
#include "tiny-model.h"

#include <glib/gstdio.h>
#include <gtk/gtk.h>
#include <string.h>

static char *ui_test_root;

/* Removes path and everything under it (never following links). */
static inline void
ui_test_remove_tree (const char *path)
{
  if (g_file_test (path, G_FILE_TEST_IS_DIR) && !g_file_test (path, G_FILE_TEST_IS_SYMLINK))
    {
      GDir *dir = g_dir_open (path, 0, NULL);
      for (const char *name; dir && (name = g_dir_read_name (dir));)
        {
          g_autofree char *child = g_build_filename (path, name, NULL);
          ui_test_remove_tree (child);
        }
      if (dir)
        g_dir_close (dir);
      g_rmdir (path);
    }
  else
    g_unlink (path);
}

/* A fresh root folder whose config/ and data/ are the user's, and whose
 * labels/ is the only place installed label sets are looked up; then
 * gtk_test_init.  The system data folders stay: GIO finds MIME types there. */
static inline void
ui_test_init (int *argc, char ***argv, const char *name)
{
  g_autofree char *template = g_strdup_printf ("%s-XXXXXX", name);
  ui_test_root = g_dir_make_tmp (template, NULL);
  g_assert_nonnull (ui_test_root);
  const char *subs[][2] = { { "XDG_CONFIG_HOME", "config" },
                            { "XDG_DATA_HOME", "data" },
                            { "XDG_CACHE_HOME", "cache" },
                            { "AGRICLIP_LABELS_PATH", "labels" } };
  for (gsize i = 0; i < G_N_ELEMENTS (subs); i++)
    {
      g_autofree char *dir = g_build_filename (ui_test_root, subs[i][1], NULL);
      g_mkdir_with_parents (dir, 0700);
      g_setenv (subs[i][0], dir, TRUE);
    }
  g_setenv ("NO_AT_BRIDGE", "1", TRUE); // ATK objects stay; no AT-SPI bus needed
  gtk_test_init (argc, argv, NULL);
}

static inline void
ui_test_cleanup (void)
{
  ui_test_remove_tree (ui_test_root);
  g_free (ui_test_root);
}

static inline char *
ui_test_path (const char *name)
{
  return g_build_filename (ui_test_root, name, NULL);
}

static inline void
ui_test_write (const char *path, const char *text)
{
  g_autofree char *parent = g_path_get_dirname (path);
  g_mkdir_with_parents (parent, 0700);
  GError *error = NULL;
  g_assert_true (g_file_set_contents (path, text, -1, &error));
  g_assert_no_error (error);
}

static inline GdkPixbuf *
ui_test_square (guint32 rgb, int side)
{
  GdkPixbuf *pixbuf = gdk_pixbuf_new (GDK_COLORSPACE_RGB, FALSE, 8, side, side);
  gdk_pixbuf_fill (pixbuf, rgb << 8 | 0xff);
  return pixbuf;
}

/* A tiny CLIP folder (tests/unit/tiny-model.h) in the throwaway home. */
static inline char *
ui_test_tiny_model (const char *name)
{
  return tiny_model_new (ui_test_root, name);
}

static void
ui_test_collect (GtkWidget *widget, gpointer list)
{
  *(GList **) list = g_list_prepend (*(GList **) list, widget);
}

/* The widget under root whose accessible name is name (internal children
 * included), or NULL. */
static inline GtkWidget *
ui_test_find (GtkWidget *root, const char *name)
{
  const char *own = atk_object_get_name (gtk_widget_get_accessible (root));
  if (own && g_str_equal (own, name))
    return root;
  if (!GTK_IS_CONTAINER (root))
    return NULL;
  GList *children = NULL;
  gtk_container_forall (GTK_CONTAINER (root), ui_test_collect, &children);
  GtkWidget *found = NULL;
  for (GList *l = children; l && !found; l = l->next)
    found = ui_test_find (l->data, name);
  g_list_free (children);
  return found;
}

static inline GtkWidget *
ui_test_get (GtkWidget *root, const char *name)
{
  GtkWidget *widget = ui_test_find (root, name);
  if (!widget)
    g_error ("no control named \"%s\"", name);
  return widget;
}

/* Runs the main loop until *flag is set (or 60 s pass: a failure). */
static inline void
ui_test_wait_for (const gboolean *flag)
{
  gint64 end = g_get_monotonic_time () + 60 * G_USEC_PER_SEC;
  while (!*flag && g_get_monotonic_time () < end)
    g_main_context_iteration (NULL, TRUE);
  g_assert_true (*flag);
}

static gboolean
ui_test_timeout_done (gpointer flag)
{
  *(gboolean *) flag = TRUE;
  return G_SOURCE_REMOVE;
}

/* Lets pending events and redraws happen. */
static inline void
ui_test_settle (int milliseconds)
{
  gboolean done = FALSE;
  g_timeout_add (milliseconds, ui_test_timeout_done, &done);
  ui_test_wait_for (&done);
}

/* Shows window and waits until it is drawn. */
static inline void
ui_test_show (GtkWidget *window)
{
  gtk_widget_show (window);
  gtk_test_widget_wait_for_draw (window);
  ui_test_settle (50);
}

/* A key press or release on window, as the X server would deliver it,
 * through GTK's own event dispatch (so mnemonics, focus and bindings act). */
static inline void
ui_test_key_event (GtkWidget *window, GdkEventType type, guint keyval, GdkModifierType state)
{
  GdkDisplay *display = gtk_widget_get_display (window);
  GdkEvent *event = gdk_event_new (type);
  event->key.window = g_object_ref (gtk_widget_get_window (window));
  event->key.send_event = TRUE;
  event->key.time = GDK_CURRENT_TIME;
  event->key.state = state;
  event->key.keyval = keyval;
  GdkKeymapKey *keys = NULL;
  int n_keys = 0;
  if (gdk_keymap_get_entries_for_keyval (gdk_keymap_get_for_display (display), keyval, &keys,
                                         &n_keys))
    {
      event->key.hardware_keycode = (guint16) keys[0].keycode;
      event->key.group = (guint8) keys[0].group;
    }
  g_free (keys);
  gdk_event_set_device (event, gdk_seat_get_keyboard (gdk_display_get_default_seat (display)));
  gtk_main_do_event (event);
  gdk_event_free (event);
}

/* Alt+key on window, as a person presses a mnemonic.  A button clicks
 * 250 ms after its mnemonic (GtkButton shows itself pressed meanwhile). */
static inline void
ui_test_press_mnemonic (GtkWidget *window, guint keyval)
{
  ui_test_key_event (window, GDK_KEY_PRESS, keyval, GDK_MOD1_MASK);
  ui_test_key_event (window, GDK_KEY_RELEASE, keyval, GDK_MOD1_MASK);
  ui_test_settle (400);
}

/* The accessible name of every row of a list box, in order (g_strfreev). */
static inline char **
ui_test_row_names (GtkWidget *list_box)
{
  g_autoptr (GPtrArray) names = g_ptr_array_new ();
  GList *rows = gtk_container_get_children (GTK_CONTAINER (list_box));
  for (GList *l = rows; l; l = l->next)
    g_ptr_array_add (names, g_strdup (atk_object_get_name (gtk_widget_get_accessible (l->data))));
  g_list_free (rows);
  g_ptr_array_add (names, NULL);
  return (char **) g_ptr_array_steal (names, NULL);
}

/* What a window's "(message)" signal said when its work ended: NULL on
 * success, else what went wrong. */
typedef struct
{
  gboolean done;
  char *message;
} UiTestEnded;

/* Connect to the signal with an UiTestEnded as data; g_free its message. */
static inline void
ui_test_on_ended (gpointer window, const char *message, UiTestEnded *ended)
{
  (void) window;
  g_free (ended->message);
  ended->message = g_strdup (message);
  ended->done = TRUE;
}
