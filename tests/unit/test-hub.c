/* test-hub.c — the public calls that find things by name and fetch models,
 * without a network: agc_model_resolve_path (a pulled model's NAME, paths
 * untouched), agc_label_set_find (the file agc_label_set_open reads),
 * agc_model_dir_context_length, the catalogue's file addresses, and
 * agc_model_pull of a model whose files are placed by hand (missing ones
 * listed, a wrong one refused, a complete one renamed into place, a second
 * pull finding it there).  HTTP transfers are tests/reference/test_models_pull.py's. */
#include "agriclip.h"
#include "unit-util.h"

#include <string.h>

static char *root; // XDG_DATA_HOME is root/data

static void
write_file (const char *path, const char *text)
{
  g_autofree char *parent = g_path_get_dirname (path);
  g_assert_cmpint (g_mkdir_with_parents (parent, 0700), ==, 0);
  GError *error = NULL;
  g_assert_true (g_file_set_contents (path, text, -1, &error));
  g_assert_no_error (error);
}

static void
test_resolve (void)
{
  g_autofree char *models = agc_models_dir ();
  g_autofree char *expected = g_build_filename (root, "data", "agriclip", "models", NULL);
  g_assert_cmpstr (models, ==, expected);
  g_autofree char *pulled = g_build_filename (models, "tiny", NULL);
  g_assert_cmpint (g_mkdir_with_parents (pulled, 0700), ==, 0);

  g_autofree char *by_name = agc_model_resolve_path ("tiny");
  g_assert_cmpstr (by_name, ==, pulled);
  g_autofree char *unknown = agc_model_resolve_path ("no-such-model");
  g_assert_cmpstr (unknown, ==, "no-such-model"); // loading it names what was typed
  g_autofree char *path = agc_model_resolve_path ("somewhere/tiny"); // a path, not a name
  g_assert_cmpstr (path, ==, "somewhere/tiny");
  g_autofree char *existing = agc_model_resolve_path (root);
  g_assert_cmpstr (existing, ==, root);

  char *option = g_strdup ("tiny"), *unset = NULL;
  agc_model_resolve_path_in_place (&option);
  agc_model_resolve_path_in_place (&unset);
  g_assert_cmpstr (option, ==, pulled);
  g_assert_null (unset);
  g_free (option);
}

static void
test_label_set_find (void)
{
  g_autofree char *folder = g_build_filename (root, "labels", NULL);
  g_autofree char *file = g_build_filename (folder, "leaves.json", NULL);
  write_file (file, "{}");
  g_setenv ("AGRICLIP_LABELS_PATH", folder, TRUE);
  GError *error = NULL;
  g_autofree char *found = agc_label_set_find ("leaves", &error);
  g_assert_no_error (error);
  g_assert_cmpstr (found, ==, file);
  g_autofree char *as_path = agc_label_set_find ("other/leaves.json", &error);
  g_assert_no_error (error);
  g_assert_cmpstr (as_path, ==, "other/leaves.json"); // loading reports a missing file
  g_assert_null (agc_label_set_find ("no-such-set", &error));
  g_assert_error (error, AGC_ERROR, AGC_ERROR_IO);
  g_assert_nonnull (strstr (error->message, "leaves")); // the installed ids are listed
  g_clear_error (&error);
  g_unsetenv ("AGRICLIP_LABELS_PATH");
}

static void
test_context_length (void)
{
  g_autofree char *dir = g_build_filename (root, "tokenizer-only", NULL);
  g_assert_cmpint (g_mkdir_with_parents (dir, 0700), ==, 0);
  GError *error = NULL;
  int context_length = 0;
  g_assert_true (agc_model_dir_context_length (dir, &context_length, &error));
  g_assert_no_error (error);
  g_assert_cmpint (context_length, ==, 77); // CLIP's, without a config.json
  g_autofree char *config = g_build_filename (dir, "config.json", NULL);
  write_file (config, "{\"model_type\": \"clip\", \"text_config\": "
                      "{\"max_position_embeddings\": 32}}");
  g_assert_true (agc_model_dir_context_length (dir, &context_length, &error));
  g_assert_no_error (error);
  g_assert_cmpint (context_length, ==, 32);
  write_file (config, "{broken");
  g_assert_false (agc_model_dir_context_length (dir, &context_length, &error));
  g_assert_nonnull (error);
  g_clear_error (&error);
}

/* sha256 of "hello\n" */
#define HELLO_SHA256 "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03"

static AgcCatalogue *
write_catalogue (void)
{
  g_autofree char *path = g_build_filename (root, "catalogue.json", NULL);
  write_file (path,
              "{\"format\": 1, \"models\": [{\"name\": \"handmade\", \"title\": \"t\", "
              "\"family\": \"hf-clip\", \"files\": ["
              "{\"path\": \"weights/a.bin\", \"manual\": \"ask the authors\", \"size\": 6, "
              "\"sha256\": \"" HELLO_SHA256 "\"},"
              "{\"path\": \"b.txt\", \"manual\": \"write it\"},"
              "{\"path\": \"vocab.json\", \"repository\": \"org/repo\", "
              "\"revision\": \"main\", \"remote_path\": \"sub dir/vocab.json\"}]}]}");
  GError *error = NULL;
  AgcCatalogue *catalogue = agc_catalogue_load (path, &error);
  g_assert_no_error (error);
  return catalogue;
}

static void
test_catalogue_addresses (void)
{
  g_autoptr (AgcCatalogue) catalogue = write_catalogue ();
  g_assert_null (agc_catalogue_find (catalogue, "nope"));
  const AgcCatalogueModel *m = agc_catalogue_find (catalogue, "handmade");
  g_assert_nonnull (m);
  g_assert_cmpuint (m->files->len, ==, 3);
  const AgcCatalogueFile *manual = m->files->pdata[0], *remote = m->files->pdata[2];
  g_setenv ("AGRICLIP_HUB_URL", "http://mirror.example//", TRUE);
  g_autofree char *hub = agc_hub_url ();
  g_assert_cmpstr (hub, ==, "http://mirror.example");
  g_autofree char *url = agc_catalogue_file_url (remote);
  g_assert_cmpstr (url, ==, "http://mirror.example/org/repo/resolve/main/sub%20dir/vocab.json");
  g_assert_null (agc_catalogue_file_url (manual));
  g_unsetenv ("AGRICLIP_HUB_URL");
  g_autofree char *dest = agc_catalogue_file_dest (manual, "/models/x");
  g_assert_cmpstr (dest, ==, "/models/x/weights/a.bin");
}

typedef struct
{
  int n_checked, n_other;
} Seen;

static void
on_progress (const AgcPullProgress *p, gpointer user_data)
{
  Seen *seen = user_data;
  g_assert_nonnull (p->file);
  g_assert_nonnull (p->dest);
  if (p->stage == AGC_PULL_CHECKED)
    {
      seen->n_checked++;
      g_assert_cmpint (p->bytes, >, 0);
      g_assert_cmpint (strlen (p->sha256), ==, 64);
      if (p->file->sha256 != NULL)
        g_assert_cmpint (p->check, ==, AGC_PULL_CHECK_CATALOGUE_SHA256);
    }
  else
    seen->n_other++;
}

/* The handmade model without its repository file: only files a person fetches. */
static void
test_pull_by_hand (void)
{
  g_autoptr (AgcCatalogue) catalogue = write_catalogue ();
  AgcCatalogueModel *m = (AgcCatalogueModel *) agc_catalogue_find (catalogue, "handmade");
  g_ptr_array_remove_index (m->files, 2);
  g_autofree char *dir = g_build_filename (root, "pulled", NULL);
  GError *error = NULL;
  AgcPullResult result;
  Seen seen = { 0 };

  // nothing there: both files listed, the staging folder kept for them
  g_assert_true (agc_model_pull (m, dir, on_progress, &seen, &result, NULL, &error));
  g_assert_no_error (error);
  g_assert_false (result.was_present);
  g_assert_cmpuint (result.manual->len, ==, 2);
  g_assert_true (g_file_test (result.staging, G_FILE_TEST_IS_DIR));
  g_assert_false (g_file_test (result.folder, G_FILE_TEST_EXISTS));
  g_autofree char *staging = g_strdup (result.staging);
  agc_pull_result_clear (&result);

  // a wrong file placed by hand is refused and deleted
  const AgcCatalogueFile *a = m->files->pdata[0], *b = m->files->pdata[1];
  g_autofree char *a_dest = agc_catalogue_file_dest (a, staging);
  g_autofree char *b_dest = agc_catalogue_file_dest (b, staging);
  write_file (a_dest, "hullo\n");
  g_assert_false (agc_model_pull (m, dir, on_progress, &seen, &result, NULL, &error));
  g_assert_error (error, AGC_HUB_ERROR, AGC_HUB_ERROR_CHECKSUM);
  g_clear_error (&error);
  g_assert_false (g_file_test (a_dest, G_FILE_TEST_EXISTS));

  // the right ones: checked, renamed into place in one step
  write_file (a_dest, "hello\n");
  write_file (b_dest, "any\ntext");
  seen = (Seen){ 0 };
  g_assert_true (agc_model_pull (m, dir, on_progress, &seen, &result, NULL, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (result.manual->len, ==, 0);
  g_assert_cmpint (seen.n_checked, ==, 2);
  g_assert_false (g_file_test (staging, G_FILE_TEST_EXISTS));
  g_autofree char *placed = agc_catalogue_file_dest (a, result.folder);
  g_assert_true (g_file_test (placed, G_FILE_TEST_IS_REGULAR));
  g_autofree char *lock = g_build_filename (result.folder, ".lock", NULL);
  g_assert_false (g_file_test (lock, G_FILE_TEST_EXISTS));
  agc_pull_result_clear (&result);

  // pulled already: nothing done
  g_assert_true (agc_model_pull (m, dir, NULL, NULL, &result, NULL, &error));
  g_assert_true (result.was_present);
  agc_pull_result_clear (&result);
}

int
main (int argc, char **argv)
{
  GError *error = NULL;
  root = g_dir_make_tmp ("agc-hub-XXXXXX", &error);
  g_assert_no_error (error);
  g_autofree char *data = g_build_filename (root, "data", NULL);
  g_setenv ("XDG_DATA_HOME", data, TRUE); // before GLib reads it
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/hub/resolve", test_resolve);
  g_test_add_func ("/hub/label-set-find", test_label_set_find);
  g_test_add_func ("/hub/context-length", test_context_length);
  g_test_add_func ("/hub/catalogue-addresses", test_catalogue_addresses);
  g_test_add_func ("/hub/pull-by-hand", test_pull_by_hand);
  int status = g_test_run ();
  remove_tree (root);
  g_free (root);
  return status;
}
