/* test-class-cache.c — the class-embedding cache (core/models/class-cache.h):
 * entries come back exactly as stored and damaged ones are misses; a
 * classifier built again for the same model and prompts runs no text (the
 * model's count of encoded texts stays 0) and is bit-identical; changing a
 * prompt, the weights or the tokenizer, or turning the cache off, encodes
 * again; a copy of the model folder elsewhere still hits (content, not
 * paths).  The models are tiny random CLIPs written here in the Hugging Face
 * layout with the real CLIP vocabulary. */
#include "models/class-cache.h"
#include "formats/safetensors-write.h"
#include "unit-util.h"

#include <glib/gstdio.h>
#include <math.h>
#include <stdarg.h>
#include <string.h>

static char *cache_root;

enum
{
  WIDTH = 8,        // both towers
  PROJECTION = 4,   // E
  IMAGE = 16,
  PATCH = 8,
  VOCAB = 49408,
  CONTEXT = 77,
};

/* ---- a tiny random CLIP ---- */

typedef struct
{
  GRand *rng;
  GPtrArray *views; // AgcTensorView *
  GPtrArray *owned; // names and data
} Tensors;

static void
add_tensor (Tensors *t, const char *name, double mean, double std, int n_dims, ...)
{
  AgcTensorView *v = g_new0 (AgcTensorView, 1);
  v->name = g_strdup (name);
  v->dtype = AGC_DTYPE_F32;
  v->n_dims = n_dims;
  size_t n = 1;
  va_list args;
  va_start (args, n_dims);
  for (int d = 0; d < n_dims; d++)
    n *= (size_t) (v->shape[d] = va_arg (args, int));
  va_end (args);
  float *data = g_new (float, n);
  for (size_t i = 0; i < n; i++)
    data[i] = (float) (mean + std * g_rand_double_range (t->rng, -1.7, 1.7));
  v->data = (const guint8 *) data;
  v->n_bytes = n * sizeof (float);
  g_ptr_array_add (t->views, v);
  g_ptr_array_add (t->owned, (gpointer) v->name);
  g_ptr_array_add (t->owned, data);
}

static void
add_norm (Tensors *t, const char *prefix)
{
  g_autofree char *w = g_strconcat (prefix, ".weight", NULL);
  g_autofree char *b = g_strconcat (prefix, ".bias", NULL);
  add_tensor (t, w, 1.0, 0.2, 1, WIDTH);
  add_tensor (t, b, 0.0, 0.1, 1, WIDTH);
}

static void
add_linear (Tensors *t, const char *prefix, int n_out, int n_in)
{
  g_autofree char *w = g_strconcat (prefix, ".weight", NULL);
  g_autofree char *b = g_strconcat (prefix, ".bias", NULL);
  add_tensor (t, w, 0.0, 1.0 / sqrt (n_in), 2, n_out, n_in);
  add_tensor (t, b, 0.0, 0.1, 1, n_out);
}

static void
add_layer (Tensors *t, const char *tower)
{
  static const char *const attention[] = { "q_proj", "k_proj", "v_proj", "out_proj" };
  g_autofree char *p = g_strconcat (tower, ".encoder.layers.0.", NULL);
  g_autofree char *ln1 = g_strconcat (p, "layer_norm1", NULL);
  g_autofree char *ln2 = g_strconcat (p, "layer_norm2", NULL);
  g_autofree char *fc1 = g_strconcat (p, "mlp.fc1", NULL);
  g_autofree char *fc2 = g_strconcat (p, "mlp.fc2", NULL);
  add_norm (t, ln1);
  for (int i = 0; i < 4; i++)
    {
      g_autofree char *name = g_strconcat (p, "self_attn.", attention[i], NULL);
      add_linear (t, name, WIDTH, WIDTH);
    }
  add_norm (t, ln2);
  add_linear (t, fc1, 4 * WIDTH, WIDTH);
  add_linear (t, fc2, WIDTH, 4 * WIDTH);
}

static void
write_weights (const char *dir, guint32 seed)
{
  Tensors t = { g_rand_new_with_seed (seed), g_ptr_array_new_with_free_func (g_free),
                g_ptr_array_new_with_free_func (g_free) };
  int n_pos = (IMAGE / PATCH) * (IMAGE / PATCH) + 1;
  add_tensor (&t, "text_model.embeddings.token_embedding.weight", 0.0, 0.5, 2, VOCAB, WIDTH);
  add_tensor (&t, "text_model.embeddings.position_embedding.weight", 0.0, 0.5, 2, CONTEXT, WIDTH);
  add_layer (&t, "text_model");
  add_norm (&t, "text_model.final_layer_norm");
  add_tensor (&t, "text_projection.weight", 0.0, 0.35, 2, PROJECTION, WIDTH);
  add_tensor (&t, "vision_model.embeddings.class_embedding", 0.0, 0.5, 1, WIDTH);
  add_tensor (&t, "vision_model.embeddings.patch_embedding.weight", 0.0, 0.1, 4, WIDTH, 3, PATCH,
              PATCH);
  add_tensor (&t, "vision_model.embeddings.position_embedding.weight", 0.0, 0.5, 2, n_pos, WIDTH);
  add_norm (&t, "vision_model.pre_layrnorm");
  add_layer (&t, "vision_model");
  add_norm (&t, "vision_model.post_layernorm");
  add_tensor (&t, "visual_projection.weight", 0.0, 0.35, 2, PROJECTION, WIDTH);
  add_tensor (&t, "logit_scale", log (4.0), 0.0, 0, 0); // soft: every probability counts

  int n = (int) t.views->len;
  AgcTensorView *views = g_new (AgcTensorView, n);
  for (int i = 0; i < n; i++)
    views[i] = *(AgcTensorView *) t.views->pdata[i];
  g_autofree char *path = g_build_filename (dir, "model.safetensors", NULL);
  GError *error = NULL;
  g_assert_true (agc_safetensors_write (path, views, n, NULL, FALSE, &error));
  g_assert_no_error (error);
  g_free (views);
  g_ptr_array_unref (t.views);
  g_ptr_array_unref (t.owned);
  g_rand_free (t.rng);
}

static void
copy_file (const char *from_dir, const char *to_dir, const char *name)
{
  g_autofree char *from = g_build_filename (from_dir, name, NULL);
  g_autofree char *to = g_build_filename (to_dir, name, NULL);
  g_autofree char *data = NULL;
  gsize size;
  GError *error = NULL;
  g_assert_true (g_file_get_contents (from, &data, &size, &error));
  g_assert_true (g_file_set_contents (to, data, (gssize) size, &error));
  g_assert_no_error (error);
}

static char *
write_model (const char *name, guint32 seed)
{
  char *dir = g_build_filename (cache_root, name, NULL);
  g_assert_cmpint (g_mkdir_with_parents (dir, 0700), ==, 0);
  g_autofree char *config = g_strdup_printf (
      "{\"model_type\": \"clip\", \"projection_dim\": %d,\n"
      " \"text_config\": {\"hidden_size\": %d, \"intermediate_size\": %d, "
      "\"num_hidden_layers\": 1, \"num_attention_heads\": 2},\n"
      " \"vision_config\": {\"hidden_size\": %d, \"intermediate_size\": %d, "
      "\"num_hidden_layers\": 1, \"num_attention_heads\": 2, \"image_size\": %d, "
      "\"patch_size\": %d}}\n",
      PROJECTION, WIDTH, 4 * WIDTH, WIDTH, 4 * WIDTH, IMAGE, PATCH);
  g_autofree char *config_path = g_build_filename (dir, "config.json", NULL);
  g_assert_true (g_file_set_contents (config_path, config, -1, NULL));
  g_autofree char *vocab = g_build_filename (g_getenv ("AGC_SHARED_DIR"), "clip-vocab", NULL);
  copy_file (vocab, dir, "vocab.json");
  copy_file (vocab, dir, "merges.txt");
  write_weights (dir, seed);
  return dir;
}

/* ---- classifiers through the cache ---- */

typedef struct
{
  int n_encoded; // texts the text tower ran on
  float head[8 * PROJECTION];
  float probs[8];
} Built;

static const char *const names[] = { "wheat rust", "healthy leaf", "aphids" };

static Built
build (const char *model_dir, const char *const *templates, int n_templates)
{
  GError *error = NULL;
  AgcModel *model = agc_model_load (model_dir, &error);
  g_assert_no_error (error);
  AgcLabelSet *labels = agc_label_set_new_from_names (names, 3, templates, n_templates, &error);
  g_assert_no_error (error);
  AgcClassifier *classifier = agc_classifier_new (model, labels, NULL, &error);
  g_assert_no_error (error);
  Built b = { .n_encoded = agc_model_n_texts_encoded (model) };
  float bias[8];
  agc_classifier_head (classifier, b.head, bias);
  float image[PROJECTION] = { 0.5f, -0.5f, 0.5f, 0.5f }; // unit length
  agc_classifier_probabilities (classifier, image, b.probs);
  agc_classifier_free (classifier);
  agc_label_set_free (labels);
  agc_model_free (model);
  return b;
}

static int
n_entries (void)
{
  g_autofree char *dir = g_build_filename (cache_root, "cache", "agriclip", "classes", NULL);
  int n = 0;
  GDir *d = g_dir_open (dir, 0, NULL);
  for (const char *ab; d != NULL && (ab = g_dir_read_name (d)) != NULL;)
    {
      g_autofree char *sub = g_build_filename (dir, ab, NULL);
      GDir *s = g_dir_open (sub, 0, NULL);
      for (const char *name; s != NULL && (name = g_dir_read_name (s)) != NULL;)
        n += g_str_has_suffix (name, ".f32");
      if (s != NULL)
        g_dir_close (s);
    }
  if (d != NULL)
    g_dir_close (d);
  return n;
}

static void
assert_same_bits (const Built *a, const Built *b)
{
  g_assert_cmpmem (a->head, 3 * PROJECTION * sizeof (float), b->head,
                   3 * PROJECTION * sizeof (float));
  g_assert_cmpmem (a->probs, 3 * sizeof (float), b->probs, 3 * sizeof (float));
}

static void
test_classifier_hits (void)
{
  static const char *const templates[] = { "a photo of {}.", "a field with {}." };
  g_autofree char *model = write_model ("model-a", 1);
  int entries = n_entries ();

  Built first = build (model, templates, 2);
  g_assert_cmpint (first.n_encoded, ==, 6); // 3 classes x 2 templates
  g_assert_cmpint (n_entries (), ==, entries + 1);
  // the probabilities are not degenerate: the comparison below means something
  g_assert_cmpfloat (fabsf (first.probs[0] - first.probs[1]), >, 1e-3);
  g_assert_cmpfloat (fabsf (first.probs[1] - first.probs[2]), >, 1e-3);

  Built again = build (model, templates, 2); // a new process would do the same
  g_assert_cmpint (again.n_encoded, ==, 0);
  assert_same_bits (&first, &again);
  g_assert_cmpint (n_entries (), ==, entries + 1);

  // turned off: the text tower runs, and the result is the same
  g_setenv ("AGRICLIP_NO_CLASS_CACHE", "1", TRUE);
  Built off = build (model, templates, 2);
  g_unsetenv ("AGRICLIP_NO_CLASS_CACHE");
  g_assert_cmpint (off.n_encoded, ==, 6);
  assert_same_bits (&first, &off);

  // the same files in another folder: the key is their content
  g_autofree char *copy = g_build_filename (cache_root, "copy-of-a", NULL);
  g_assert_cmpint (g_mkdir_with_parents (copy, 0700), ==, 0);
  for (const char *const *f = (const char *const[]) { "config.json", "vocab.json", "merges.txt",
                                                      "model.safetensors", NULL };
       *f != NULL; f++)
    copy_file (model, copy, *f);
  Built copied = build (copy, templates, 2);
  g_assert_cmpint (copied.n_encoded, ==, 0);
  assert_same_bits (&first, &copied);
}

static void
test_classifier_misses (void)
{
  static const char *const templates[] = { "a photo of {}.", "a field with {}." };
  static const char *const other[] = { "a photo of {}.", "a field full of {}." };
  g_autofree char *model = write_model ("model-b", 2);
  Built first = build (model, templates, 2);
  g_assert_cmpint (first.n_encoded, ==, 6);

  // one prompt changed: encoded again, and the unchanged classes' other
  // prompt alone does not make the result equal
  Built prompt = build (model, other, 2);
  g_assert_cmpint (prompt.n_encoded, ==, 6);
  g_assert_true (memcmp (prompt.head, first.head, sizeof first.head) != 0);
  g_assert_cmpint (build (model, other, 2).n_encoded, ==, 0);

  // other weights in the same file: a new key
  write_weights (model, 3);
  Built weights = build (model, templates, 2);
  g_assert_cmpint (weights.n_encoded, ==, 6);
  g_assert_true (memcmp (weights.head, first.head, sizeof first.head) != 0);
  g_assert_cmpint (build (model, templates, 2).n_encoded, ==, 0);

  // the tokenizer's files count too, though the model identity leaves them out
  g_autofree char *vocab = g_build_filename (model, "vocab.json", NULL);
  g_autofree char *text = NULL;
  g_assert_true (g_file_get_contents (vocab, &text, NULL, NULL));
  g_autofree char *spaced = g_strconcat (text, "\n", NULL);
  g_assert_true (g_file_set_contents (vocab, spaced, -1, NULL));
  Built tokenizer = build (model, templates, 2);
  g_assert_cmpint (tokenizer.n_encoded, ==, 6);
  assert_same_bits (&weights, &tokenizer); // same vocabulary, so the same result
}

/* ---- entries ---- */

static const char key[] = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
static const char other_key[] = "f123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

static char *
entry_file (const char *k)
{
  g_autofree char *name = g_strconcat (k, ".f32", NULL);
  char ab[3] = { k[0], k[1], '\0' };
  return g_build_filename (cache_root, "cache", "agriclip", "classes", ab, name, NULL);
}

static void
test_roundtrip (void)
{
  int n_classes = 3, dim = 5;
  float classes[15], back[15] = { 0 };
  for (int i = 0; i < 15; i++)
    classes[i] = (float) sin (i + 0.5);
  g_autofree char *path = entry_file (key);
  g_remove (path);
  g_assert_false (agc_class_cache_load (back, key, n_classes, dim)); // empty cache
  GError *error = NULL;
  g_assert_true (agc_class_cache_store (key, classes, n_classes, dim, &error));
  g_assert_no_error (error);
  g_assert_true (agc_class_cache_load (back, key, n_classes, dim));
  g_assert_cmpmem (back, sizeof back, classes, sizeof classes);
  // other sizes are a miss, never a misread
  g_assert_false (agc_class_cache_load (back, key, n_classes + 1, dim));
  g_assert_false (agc_class_cache_load (back, key, n_classes, dim - 1));
}

static void
test_damaged_entries (void)
{
  int n_classes = 2, dim = 3;
  float classes[6] = { 1, 0, 0, 0, 0.6f, 0.8f }, back[6];
  float untouched[6] = { 7, 7, 7, 7, 7, 7 };
  g_autofree char *path = entry_file (key);
  g_assert_true (agc_class_cache_store (key, classes, n_classes, dim, NULL));
  g_autofree char *good = NULL;
  gsize size;
  g_assert_true (g_file_get_contents (path, &good, &size, NULL));

  // one bit of a value flipped: a miss, the output left alone
  g_autofree char *bad = g_memdup2 (good, size);
  bad[size - 1] ^= 1;
  g_assert_true (g_file_set_contents (path, bad, (gssize) size, NULL));
  memcpy (back, untouched, sizeof back);
  g_assert_false (agc_class_cache_load (back, key, n_classes, dim));
  g_assert_cmpmem (back, sizeof back, untouched, sizeof untouched);
  // cut short, empty, or only the header
  for (gsize cut = 0; cut < size; cut += 4)
    {
      g_assert_true (g_file_set_contents (path, good, (gssize) cut, NULL));
      g_assert_false (agc_class_cache_load (back, key, n_classes, dim));
    }
  // a good entry under another key's name
  g_autofree char *other = entry_file (other_key);
  g_autofree char *other_dir = g_path_get_dirname (other);
  g_assert_cmpint (g_mkdir_with_parents (other_dir, 0700), ==, 0);
  g_assert_true (g_file_set_contents (other, good, (gssize) size, NULL));
  g_assert_false (agc_class_cache_load (back, other_key, n_classes, dim));
  // written again: whole and usable
  g_assert_true (agc_class_cache_store (key, classes, n_classes, dim, NULL));
  g_assert_true (agc_class_cache_load (back, key, n_classes, dim));
  g_assert_cmpmem (back, sizeof back, classes, sizeof classes);
}

int
main (int argc, char **argv)
{
  // the cache goes to a throwaway folder, set before GLib reads it
  cache_root = temp_cache_root_new (NULL, "agc-test-class-cache-XXXXXX");
  g_unsetenv ("AGRICLIP_NO_CLASS_CACHE");
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/class-cache/roundtrip", test_roundtrip);
  g_test_add_func ("/class-cache/damaged-entries", test_damaged_entries);
  if (g_getenv ("AGC_SHARED_DIR") != NULL)
    {
      g_test_add_func ("/class-cache/classifier-hits", test_classifier_hits);
      g_test_add_func ("/class-cache/classifier-misses", test_classifier_misses);
    }
  int status = g_test_run ();
  remove_tree (cache_root);
  g_free (cache_root);
  return status;
}
