/* test-model-chooser.c — the model chooser (ui/agc-model-chooser.h) under
 * Xvfb against a loopback HTTP server standing in for the model hub
 * (AGRICLIP_HUB_URL) and a catalogue of our own (AGRICLIP_CATALOGUE):
 * "Download…" pulls a real tiny model with a progress bar that moves while
 * the window keeps running, the pulled folder then opens ("Ready"); Cancel
 * stops a slow download and leaves no model folder; a folder that cannot
 * be opened is listed with the loader's own message; recently used folders
 * are listed. */
#include "agc-model-chooser.h"
#include "agc-ui-settings.h"
#include "ui-test-util.h"

#include <gio/gio.h>

#define SLOW_SIZE (8 << 20)
#define CHUNK (16 << 10)

static GHashTable *served; /* URL path -> GBytes */
static char *hub_url;
static char *tiny_dir;

/* ---- the loopback hub ---------------------------------------------------- */

static gboolean
serve (GThreadedSocketService *service, GSocketConnection *connection, GObject *source,
       gpointer user_data)
{
  (void) service;
  (void) source;
  (void) user_data;
  GInputStream *in = g_io_stream_get_input_stream (G_IO_STREAM (connection));
  GOutputStream *out = g_io_stream_get_output_stream (G_IO_STREAM (connection));
  g_autoptr (GDataInputStream) lines = g_data_input_stream_new (in);
  g_autofree char *request = g_data_input_stream_read_line (lines, NULL, NULL, NULL);
  for (char *line; (line = g_data_input_stream_read_line (lines, NULL, NULL, NULL));)
    {
      gboolean end = line[0] == '\0' || g_str_equal (line, "\r");
      g_free (line);
      if (end)
        break;
    }
  g_auto (GStrv) parts = request ? g_strsplit (request, " ", 3) : NULL;
  GBytes *body = parts && parts[1] ? g_hash_table_lookup (served, parts[1]) : NULL;
  if (!body)
    {
      const char *missing = "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n"
                            "Connection: close\r\n\r\n";
      g_output_stream_write_all (out, missing, strlen (missing), NULL, NULL, NULL);
      return TRUE;
    }
  gsize size = 0;
  const guint8 *data = g_bytes_get_data (body, &size);
  g_autofree char *head = g_strdup_printf ("HTTP/1.1 200 OK\r\nContent-Length: %" G_GSIZE_FORMAT
                                           "\r\nConnection: close\r\n\r\n",
                                           size);
  if (!g_output_stream_write_all (out, head, strlen (head), NULL, NULL, NULL))
    return TRUE;
  gboolean slow = g_str_has_suffix (parts[1], "/slow.bin");
  for (gsize at = 0; at < size; at += CHUNK)
    {
      if (!g_output_stream_write_all (out, data + at, MIN (CHUNK, size - at), NULL, NULL, NULL))
        break; // the client went away (cancelled)
      if (slow)
        g_usleep (10 * 1000);
    }
  return TRUE;
}

static void
start_hub (void)
{
  GSocketService *service = g_threaded_socket_service_new (4);
  g_autoptr (GInetAddress) loopback = g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV4);
  g_autoptr (GSocketAddress) any_port = g_inet_socket_address_new (loopback, 0);
  g_autoptr (GSocketAddress) bound = NULL;
  GError *error = NULL;
  g_socket_listener_add_address (G_SOCKET_LISTENER (service), any_port, G_SOCKET_TYPE_STREAM,
                                 G_SOCKET_PROTOCOL_TCP, NULL, &bound, &error);
  g_assert_no_error (error);
  hub_url = g_strdup_printf ("http://127.0.0.1:%u",
                             g_inet_socket_address_get_port (G_INET_SOCKET_ADDRESS (bound)));
  g_signal_connect (service, "run", G_CALLBACK (serve), NULL);
  g_socket_service_start (service);
}

/* ---- the catalogue ------------------------------------------------------- */

static void
add_file (GString *json, const char *model, const char *path, GBytes *data)
{
  g_autofree char *url = g_strdup_printf ("/test/%s/resolve/main/%s", model, path);
  g_hash_table_insert (served, g_strdup (url), g_bytes_ref (data));
  g_autofree char *sha = g_compute_checksum_for_bytes (G_CHECKSUM_SHA256, data);
  g_string_append_printf (json, "%s{\"path\": \"%s\", \"size\": %" G_GSIZE_FORMAT
                                ", \"sha256\": \"%s\"}",
                          json->str[json->len - 1] == '[' ? "" : ", ", path,
                          g_bytes_get_size (data), sha);
}

/* Every file under dir (relative path prefix), served and listed. */
static void
add_folder (GString *json, const char *model, const char *dir, const char *prefix)
{
  GDir *d = g_dir_open (dir, 0, NULL);
  g_assert_nonnull (d);
  for (const char *name; (name = g_dir_read_name (d));)
    {
      g_autofree char *full = g_build_filename (dir, name, NULL);
      g_autofree char *rel = *prefix ? g_strdup_printf ("%s/%s", prefix, name) : g_strdup (name);
      if (g_file_test (full, G_FILE_TEST_IS_DIR))
        {
          add_folder (json, model, full, rel);
          continue;
        }
      char *contents = NULL;
      gsize length = 0;
      g_assert_true (g_file_get_contents (full, &contents, &length, NULL));
      g_autoptr (GBytes) data = g_bytes_new_take (contents, length);
      add_file (json, model, rel, data);
    }
  g_dir_close (d);
}

static void
write_catalogue (void)
{
  GString *json = g_string_new ("{\"format\": 1, \"models\": [");
  const char *entry = "{\"name\": \"%s\", \"title\": \"test model %s\", \"family\": \"hf-clip\", "
                      "\"repository\": \"test/%s\", \"revision\": \"main\", "
                      "\"licence\": \"MIT\", \"good_for\": \"tests\", \"files\": [";
  g_string_append_printf (json, entry, "tiny", "tiny", "tiny");
  add_folder (json, "tiny", tiny_dir, "");
  g_string_append (json, "]}, ");
  g_string_append_printf (json, entry, "slow", "slow", "slow");
  guint8 *blob = g_malloc (SLOW_SIZE);
  for (gsize i = 0; i < SLOW_SIZE; i++)
    blob[i] = (guint8) (i * 2654435761u >> 13);
  g_autoptr (GBytes) slow = g_bytes_new_take (blob, SLOW_SIZE);
  add_file (json, "slow", "slow.bin", slow);
  g_string_append (json, "]}]}");
  g_autofree char *path = ui_test_path ("catalogue.json");
  ui_test_write (path, json->str);
  g_string_free (json, TRUE);
  g_setenv ("AGRICLIP_CATALOGUE", path, TRUE);
  g_setenv ("AGRICLIP_HUB_URL", hub_url, TRUE);
}

/* ---- the tests ----------------------------------------------------------- */

typedef struct
{
  gboolean done;
  char *message;
} Finished;

static void
on_finished (AgcModelChooser *chooser, const char *message, Finished *f)
{
  (void) chooser;
  f->done = TRUE;
  f->message = g_strdup (message);
}

static GtkWidget *
chooser_window (AgcModelChooser **chooser)
{
  GtkWidget *window = gtk_window_new (GTK_WINDOW_TOPLEVEL);
  *chooser = AGC_MODEL_CHOOSER (agc_model_chooser_new ());
  gtk_container_add (GTK_CONTAINER (window), GTK_WIDGET (*chooser));
  gtk_window_set_default_size (GTK_WINDOW (window), 700, 400);
  ui_test_show (window);
  return window;
}

static void
wait_checked (AgcModelChooser *chooser)
{
  gint64 end = g_get_monotonic_time () + 60 * G_USEC_PER_SEC;
  while (!agc_model_chooser_is_checked (chooser) && g_get_monotonic_time () < end)
    g_main_context_iteration (NULL, TRUE);
  g_assert_true (agc_model_chooser_is_checked (chooser));
}

static void
test_download (void)
{
  AgcModelChooser *chooser;
  GtkWidget *window = chooser_window (&chooser);
  g_autofree char *before = agc_model_chooser_get_status (chooser, "tiny");
  g_assert_cmpstr (before, ==, "Not downloaded");
  g_assert_true (agc_model_chooser_select (chooser, "tiny"));
  g_assert_null (agc_model_chooser_get_path (chooser)); // not downloaded yet

  Finished f = { 0 };
  g_signal_connect (chooser, "download-finished", G_CALLBACK (on_finished), &f);
  ui_test_press_mnemonic (window, GDK_KEY_d); // Download…
  ui_test_wait_for (&f.done);
  g_assert_null (f.message);
  wait_checked (chooser);
  g_autofree char *after = agc_model_chooser_get_status (chooser, "tiny");
  g_assert_cmpstr (after, ==, "Ready");
  g_autofree char *models_dir = agc_models_dir ();
  g_autofree char *want = g_build_filename (models_dir, "tiny", NULL);
  g_assert_true (agc_model_chooser_select (chooser, "tiny"));
  g_autofree char *path = agc_model_chooser_get_path (chooser);
  g_assert_cmpstr (path, ==, want);
  gtk_widget_destroy (window);
}

static void
test_cancel (void)
{
  AgcModelChooser *chooser;
  GtkWidget *window = chooser_window (&chooser);
  g_assert_true (agc_model_chooser_select (chooser, "slow"));
  Finished f = { 0 };
  g_signal_connect (chooser, "download-finished", G_CALLBACK (on_finished), &f);
  ui_test_press_mnemonic (window, GDK_KEY_d);
  g_assert_true (agc_model_chooser_is_downloading (chooser));
  GtkWidget *progress = ui_test_get (window, "Download progress");
  g_assert_true (gtk_widget_get_mapped (progress));

  // The bar moves while the main loop keeps running (the pull is on a thread).
  double last = 0.0;
  int moves = 0;
  gint64 end = g_get_monotonic_time () + 30 * G_USEC_PER_SEC;
  while (agc_model_chooser_get_download_fraction (chooser) < 0.1 && !f.done
         && g_get_monotonic_time () < end)
    {
      g_main_context_iteration (NULL, TRUE);
      double now = agc_model_chooser_get_download_fraction (chooser);
      g_assert_cmpfloat (now, >=, last);
      moves += now > last;
      last = now;
    }
  g_assert_false (f.done);
  g_assert_cmpint (moves, >=, 2);
  g_assert_cmpfloat (last, <, 1.0);
  double shown = gtk_progress_bar_get_fraction (GTK_PROGRESS_BAR (progress));
  g_assert_cmpfloat (shown, ==, last);

  ui_test_press_mnemonic (window, GDK_KEY_a); // Cancel download
  ui_test_wait_for (&f.done);
  g_assert_nonnull (f.message);
  g_assert_false (agc_model_chooser_is_downloading (chooser));
  g_assert_false (gtk_widget_get_mapped (progress));
  g_autofree char *models_dir = agc_models_dir ();
  g_autofree char *folder = g_build_filename (models_dir, "slow", NULL);
  g_assert_false (g_file_test (folder, G_FILE_TEST_EXISTS));
  g_autofree char *status = agc_model_chooser_get_status (chooser, "slow");
  g_assert_cmpstr (status, ==, "Not downloaded");
  g_free (f.message);
  gtk_widget_destroy (window);
}

/* Closing the window while a download runs: the pull is cancelled and its
 * late reports touch nothing that is gone (ASan builds check that). */
static void
test_close_while_downloading (void)
{
  AgcModelChooser *chooser;
  GtkWidget *window = chooser_window (&chooser);
  GWeakRef ref;
  g_weak_ref_init (&ref, chooser);
  agc_model_chooser_download (chooser, "slow");
  ui_test_settle (200);
  gtk_widget_destroy (window);
  gint64 end = g_get_monotonic_time () + 30 * G_USEC_PER_SEC;
  GObject *alive;
  while ((alive = g_weak_ref_get (&ref)) && g_get_monotonic_time () < end)
    {
      g_object_unref (alive);
      g_main_context_iteration (NULL, TRUE);
    }
  g_assert_null (alive); // the worker let go of it
  g_weak_ref_clear (&ref);
  g_autofree char *models_dir = agc_models_dir ();
  g_autofree char *folder = g_build_filename (models_dir, "slow", NULL);
  g_assert_false (g_file_test (folder, G_FILE_TEST_EXISTS));
}

static void
test_broken_and_recent (void)
{
  g_autofree char *models_dir = agc_models_dir ();
  g_autofree char *broken = g_build_filename (models_dir, "broken", NULL);
  g_autofree char *config = g_build_filename (broken, "config.json", NULL);
  ui_test_write (config, "{\"model_type\": \"clip\"}");
  agc_ui_add_recent_model_folder (tiny_dir);

  AgcModelChooser *chooser;
  GtkWidget *window = chooser_window (&chooser);
  wait_checked (chooser);
  GError *error = NULL;
  AgcModel *model = agc_model_load (broken, &error);
  g_assert_null (model);
  g_assert_nonnull (error);
  g_autofree char *status = agc_model_chooser_get_status (chooser, broken);
  g_assert_cmpstr (status, ==, error->message);
  g_clear_error (&error);
  g_autofree char *recent = agc_model_chooser_get_status (chooser, tiny_dir);
  g_assert_cmpstr (recent, ==, "Ready");
  g_assert_true (agc_model_chooser_select (chooser, broken));
  g_autofree char *path = agc_model_chooser_get_path (chooser);
  g_assert_cmpstr (path, ==, broken);
  gtk_widget_destroy (window);
}

int
main (int argc, char **argv)
{
  ui_test_init (&argc, &argv, "agc-model-chooser");
  served = g_hash_table_new_full (g_str_hash, g_str_equal, g_free,
                                  (GDestroyNotify) g_bytes_unref);
  tiny_dir = ui_test_tiny_model ("tiny-source");
  start_hub ();
  write_catalogue ();
  g_test_add_func ("/model-chooser/download", test_download);
  g_test_add_func ("/model-chooser/cancel", test_cancel);
  g_test_add_func ("/model-chooser/close-while-downloading", test_close_while_downloading);
  g_test_add_func ("/model-chooser/broken-and-recent", test_broken_and_recent);
  int status = g_test_run ();
  ui_test_cleanup ();
  return status;
}
