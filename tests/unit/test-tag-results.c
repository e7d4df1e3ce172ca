/* test-tag-results.c — the run folder's files (agriclip.h, "tagging runs"):
 * written, checked as plain JSON by json-glib's generic reader, read back
 * field by field; hostile names (quotes, commas, newlines, non-UTF-8 bytes)
 * keep their exact bytes. */
#include "agriclip.h"

#include <glib/gstdio.h>
#include <json-glib/json-glib.h>
#include <string.h>

/* "a \"b\",\nc" then the Latin-1 byte of 'é', which is not UTF-8 */
static const char hostile_name[] = "dir, 1/a \"b\",\nc\\\t\xe9.jpg";

static AgcTagResult
sample_result (const char *image, gboolean boxes)
{
  static AgcTagLabel labels[] = { { "rust", 0.8125f }, { "leaf \"spot\"", 0.125f } };
  static AgcTagBox box[] = { { 0, 16, 64, 64, "rust", 0.75f } };
  return (AgcTagResult) { .image = (char *) image, .source = 1, .width = 640, .height = 480,
                          .n_labels = 2, .labels = labels, .review = TRUE,
                          .has_boxes = boxes, .n_boxes = boxes ? 1 : 0,
                          .boxes = boxes ? box : NULL };
}

static void
assert_same_result (const AgcTagResult *a, const AgcTagResult *b)
{
  g_assert_cmpstr (a->image, ==, b->image);
  g_assert_cmpint (a->source, ==, b->source);
  g_assert_cmpint (a->width, ==, b->width);
  g_assert_cmpint (a->height, ==, b->height);
  g_assert_cmpint (a->review, ==, b->review);
  g_assert_cmpint (a->n_labels, ==, b->n_labels);
  for (int k = 0; k < a->n_labels; k++)
    {
      g_assert_cmpstr (a->labels[k].label, ==, b->labels[k].label);
      g_assert_cmpfloat (a->labels[k].p, ==, b->labels[k].p); /* exact in 6 decimals */
    }
  g_assert_cmpint (a->has_boxes, ==, b->has_boxes);
  g_assert_cmpint (a->n_boxes, ==, b->n_boxes);
  for (int i = 0; i < a->n_boxes; i++)
    {
      g_assert_cmpint (a->boxes[i].x, ==, b->boxes[i].x);
      g_assert_cmpint (a->boxes[i].y, ==, b->boxes[i].y);
      g_assert_cmpint (a->boxes[i].width, ==, b->boxes[i].width);
      g_assert_cmpint (a->boxes[i].height, ==, b->boxes[i].height);
      g_assert_cmpstr (a->boxes[i].label, ==, b->boxes[i].label);
      g_assert_cmpfloat (a->boxes[i].p, ==, b->boxes[i].p);
    }
}

static void
test_result_line (void)
{
  const char *utf8_name = "sub dir/a \"b\",\nc.jpg";
  for (int boxes = 0; boxes < 2; boxes++)
    {
      AgcTagResult r = sample_result (utf8_name, boxes);
      g_autofree char *line = agc_tag_result_to_json (&r);
      g_assert_null (strchr (line, '\n')); /* one line */
      /* an independent reading: the generic JSON object */
      g_autoptr (JsonParser) parser = json_parser_new ();
      GError *error = NULL;
      g_assert_true (json_parser_load_from_data (parser, line, -1, &error));
      JsonObject *o = json_node_get_object (json_parser_get_root (parser));
      g_assert_cmpstr (json_object_get_string_member (o, "image"), ==, utf8_name);
      g_assert_cmpint (json_object_get_int_member (o, "source"), ==, 1);
      g_assert_true (json_object_get_boolean_member (o, "review"));
      JsonArray *labels = json_object_get_array_member (o, "labels");
      g_assert_cmpstr (json_object_get_string_member (json_array_get_object_element (labels, 1),
                                                      "label"), ==, "leaf \"spot\"");
      g_assert_cmpint (json_object_has_member (o, "boxes"), ==, boxes);
      AgcTagResult back = { 0 };
      g_assert_true (agc_tag_result_from_json (line, -1, "test", &back, &error));
      g_assert_no_error (error);
      assert_same_result (&r, &back);
      agc_tag_result_clear (&back);
    }
}

static void
test_non_utf8_name (void)
{
  AgcTagResult r = sample_result (hostile_name, FALSE);
  g_autofree char *line = agc_tag_result_to_json (&r);
  g_assert_true (g_utf8_validate (line, -1, NULL)); /* valid JSON text */
  AgcTagResult back = { 0 };
  GError *error = NULL;
  g_assert_true (agc_tag_result_from_json (line, -1, "test", &back, &error));
  g_assert_cmpmem (back.image, strlen (back.image) + 1, hostile_name, sizeof hostile_name);
  agc_tag_result_clear (&back);
}

static void
test_broken_lines (void)
{
  const char *lines[] = {
    "{\"image\": \"a.jpg\"}",
    "[1, 2]",
    "{\"image\": \"a.jpg\", \"source\": 0, \"width\": 1, \"height\": 1, \"labels\": [], "
    "\"review\": 1}",
    "{\"image\": \"a.jpg\", \"source\": 0, \"width\": 1, \"height\": 1, "
    "\"labels\": [{\"label\": \"x\"}], \"review\": false}",
    "{\"image\": \"a.jpg\", \"sour",
  };
  for (guint i = 0; i < G_N_ELEMENTS (lines); i++)
    {
      AgcTagResult r = { 0 };
      GError *error = NULL;
      g_assert_false (agc_tag_result_from_json (lines[i], -1, "RUN/results.jsonl:3", &r, &error));
      g_assert_error (error, AGC_ERROR, AGC_ERROR_FORMAT);
      g_assert_nonnull (strstr (error->message, "RUN/results.jsonl:3"));
      g_assert_null (r.image);
      g_error_free (error);
    }
}

static void
test_run_folder (void)
{
  GError *error = NULL;
  g_autofree char *dir = g_dir_make_tmp ("agc-tag-results-XXXXXX", &error);
  g_assert_no_error (error);
  char *labels[] = { "rust", "leaf \"spot\"" }, *displays[] = { "Rust", "Leaf, spot" };
  char *sources[] = { "/data/field 1", (char *) "/data/\xe9t\xe9" };
  AgcTagRun run = { .model = "clip-vit-b32", .model_identity = "abc123",
                    .label_set = "plantvillage", .n_classes = 2, .labels = labels,
                    .displays = displays, .top = 2, .review_below = 0.5, .tile = 224,
                    .stride = 112, .n_sources = 2, .sources = sources, .shard_index = 1,
                    .shard_count = 4, .fast_decode = TRUE, .int8 = TRUE };
  g_autofree char *text = agc_tag_run_to_json (&run);
  g_autofree char *run_json = g_build_filename (dir, "run.json", NULL);
  g_assert_true (g_file_set_contents (run_json, text, -1, &error));
  g_autoptr (AgcTagRun) back = agc_tag_run_load (dir, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (back->model, ==, run.model);
  g_assert_cmpstr (back->model_identity, ==, run.model_identity);
  g_assert_cmpstr (back->label_set, ==, run.label_set);
  g_assert_cmpint (back->n_classes, ==, 2);
  g_assert_cmpstr (back->labels[1], ==, labels[1]);
  g_assert_cmpstr (back->displays[1], ==, displays[1]);
  g_assert_cmpint (back->top, ==, 2);
  g_assert_cmpfloat (back->review_below, ==, 0.5);
  g_assert_cmpint (back->tile, ==, 224);
  g_assert_cmpint (back->stride, ==, 112);
  g_assert_cmpint (back->n_sources, ==, 2);
  g_assert_cmpstr (back->sources[0], ==, sources[0]);
  g_assert_cmpstr (back->sources[1], ==, sources[1]);
  g_assert_cmpint (back->shard_index, ==, 1);
  g_assert_cmpint (back->shard_count, ==, 4);
  g_assert_true (back->fast_decode);
  g_assert_true (back->int8);

  /* results.jsonl: two lines, then a torn one of a killed run (left out) */
  AgcTagResult a = sample_result ("a.jpg", TRUE), b = sample_result (hostile_name, TRUE);
  g_autofree char *la = agc_tag_result_to_json (&a), *lb = agc_tag_result_to_json (&b);
  g_autofree char *content = g_strdup_printf ("%s\n%s\n{\"image\": \"c.j", la, lb);
  g_autofree char *results_path = g_build_filename (dir, "results.jsonl", NULL);
  g_assert_true (g_file_set_contents (results_path, content, -1, &error));
  g_autoptr (GPtrArray) results = agc_tag_results_load (dir, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (results->len, ==, 2);
  assert_same_result (&a, results->pdata[0]);
  assert_same_result (&b, results->pdata[1]);

  /* another format is refused, naming the file */
  g_assert_true (g_file_set_contents (run_json, "{\"format\": \"x\"}", -1, &error));
  g_assert_null (agc_tag_run_load (dir, &error));
  g_assert_error (error, AGC_ERROR, AGC_ERROR_FORMAT);
  g_assert_nonnull (strstr (error->message, "run.json"));
  g_clear_error (&error);
  g_remove (run_json);
  g_remove (results_path);
  g_rmdir (dir);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/tag-results/line", test_result_line);
  g_test_add_func ("/tag-results/non-utf8-name", test_non_utf8_name);
  g_test_add_func ("/tag-results/broken-lines", test_broken_lines);
  g_test_add_func ("/tag-results/run-folder", test_run_folder);
  return g_test_run ();
}
