/* dino-step.c — one whole DINO iteration (core/train/dino-step.h) for
 * tests/reference/test_dino.py, which runs the same iteration in PyTorch.
 *
 *   dino-step IN.safetensors OUT.safetensors [MODEL]
 *
 * The backbone: without MODEL, a ResNet-50 from IN (torchvision's state
 * dict, fc excluded); with MODEL (a CLIP folder), its ViT image tower, the
 * last "blocks" blocks trained (metadata; all when it equals the layers).
 * IN: the head under
 * "head." (mlp.0.weight ... last_layer.weight_v); "center" [K]; the crops
 * "global" [2B, 3, G, G] and "local" [nB, 3, L, L] (crop-major).  Metadata:
 * batch, lr, weight_decay, teacher_temp, momentum, clip, freeze (0/1).
 * OUT: "loss" [1], the gradients before the update ("grad." + backbone
 * name, "grad.head." + head name), the student after it ("student.",
 * "student.head."), the teacher ("teacher.", "teacher.head."), "center";
 * backbone names as the adapter's (dino-backbone.h export). */
#include "formats/safetensors-write.h"
#include "formats/safetensors.h"
#include "models/vit-encoder.h"
#include "train/dino-step.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void
die (const char *what)
{
  fprintf (stderr, "error: %s\n", what);
  exit (1);
}

static float *
take (AgcWeights *in, const char *name, int n_dims, int64_t *shape)
{
  const AgcTensorView *t = agc_weights_find (in, name);
  if (t == NULL || t->n_dims != n_dims)
    die (name);
  memcpy (shape, t->shape, sizeof (int64_t) * n_dims);
  GError *error = NULL;
  float *x = agc_weights_take_f32 (in, name, n_dims, shape, &error);
  if (x == NULL)
    die (error->message);
  return x;
}

static double
meta (GHashTable *m, const char *key)
{
  const char *v = m != NULL ? g_hash_table_lookup (m, key) : NULL;
  if (v == NULL)
    die (key);
  return g_ascii_strtod (v, NULL);
}

static void
add (GArray *views, GPtrArray *owned, const char *name, const float *data, size_t n)
{
  AgcTensorView v = { .name = g_strdup (name), .dtype = AGC_DTYPE_F32, .n_dims = 1,
                      .shape = { (int64_t) n }, .n_bytes = n * sizeof (float) };
  float *copy = g_memdup2 (data, n * sizeof (float));
  v.data = (const guint8 *) copy;
  g_ptr_array_add (owned, (gpointer) v.name);
  g_ptr_array_add (owned, copy);
  g_array_append_val (views, v);
}

static void
add_head (GArray *views, GPtrArray *owned, const char *prefix, const AgcDinoHead *h,
          gboolean grads)
{
  float *a[AGC_DINO_HEAD_TENSORS], *g[AGC_DINO_HEAD_TENSORS];
  size_t s[AGC_DINO_HEAD_TENSORS];
  agc_dino_head_tensors (h, a, g, s);
  for (int i = 0; i < AGC_DINO_HEAD_TENSORS; i++)
    {
      g_autofree char *name = g_strconcat (prefix, agc_dino_head_tensor_names[i], NULL);
      add (views, owned, name, grads ? g[i] : a[i], s[i]);
    }
}

// the backbone's adapter tensors, copied, under prefix
static void
add_backbone (GArray *views, GPtrArray *owned, const char *prefix, const AgcDinoBackbone *b)
{
  g_autoptr (GArray) all = g_array_new (FALSE, TRUE, sizeof (AgcTensorView));
  GPtrArray *names = g_ptr_array_new_with_free_func (g_free);
  b->ops->export (b, all, names);
  for (guint i = 0; i < all->len; i++)
    {
      const AgcTensorView *v = &g_array_index (all, AgcTensorView, i);
      g_autofree char *name = g_strconcat (prefix, v->name, NULL);
      add (views, owned, name, (const float *) v->data, v->n_bytes / sizeof (float));
    }
  g_ptr_array_unref (names);
}

int
main (int argc, char **argv)
{
  if (argc != 3 && argc != 4)
    {
      fprintf (stderr, "usage: dino-step IN.safetensors OUT.safetensors [MODEL]\n");
      return 2;
    }
  GError *error = NULL;
  AgcWeights *in = agc_weights_open (argv[1], &error);
  AgcSafetensors *file = in != NULL ? agc_safetensors_open (argv[1], &error) : NULL;
  if (file == NULL)
    die (error->message);
  GHashTable *m = agc_safetensors_metadata (file);
  int batch = (int) meta (m, "batch");
  int64_t gs[4], ls[4], ws[2], vs[2], cs[1];
  float *global = take (in, "global", 4, gs);
  float *local = agc_weights_find (in, "local") ? take (in, "local", 4, ls) : NULL;
  int n_local = local != NULL ? (int) ls[0] / batch : 0;
  float *w1 = take (in, "head.mlp.0.weight", 2, ws);
  float *v = take (in, "head.last_layer.weight_v", 2, vs);
  float *center = take (in, "center", 1, cs);
  AgcModel *model = NULL;
  AgcDinoBackbone *backbone = NULL;
  if (argc == 4)
    {
      model = agc_model_load (argv[3], &error);
      AgcVisionTower *tower = model != NULL ? agc_model_vision_tower (model) : NULL;
      if (tower == NULL)
        die (error != NULL ? error->message : "no ViT image tower");
      backbone = agc_dino_vit_new (tower, (int) meta (m, "blocks"));
    }
  else
    {
      AgcResNetTrain *net = agc_resnet_train_load (in, "", &error);
      if (net == NULL)
        die (error->message);
      backbone = agc_dino_resnet_new (net);
    }
  AgcDino *d = agc_dino_new (backbone, (int) ws[0], (int) vs[1], (int) vs[0], 1);
  float *arrays[AGC_DINO_HEAD_TENSORS];
  size_t sizes[AGC_DINO_HEAD_TENSORS];
  agc_dino_head_tensors (d->student_head, arrays, NULL, sizes);
  for (int i = 0; i < AGC_DINO_HEAD_TENSORS; i++)
    {
      g_autofree char *name = g_strconcat ("head.", agc_dino_head_tensor_names[i], NULL);
      GError *e = NULL;
      int64_t shape[1] = { (int64_t) sizes[i] };
      const AgcTensorView *t = agc_weights_find (in, name);
      if (t == NULL)
        die (name);
      float *x = g_new (float, sizes[i]);
      if (t->n_bytes != sizes[i] * 4)
        die (name);
      agc_tensor_to_f32 (t, x);
      memcpy (arrays[i], x, sizes[i] * sizeof (float));
      g_free (x);
      (void) e, (void) shape;
    }
  memcpy (d->teacher_head->params, d->student_head->params,
          d->student_head->n_params * sizeof (float));
  memcpy (d->center, center, cs[0] * sizeof (float));

  AgcDinoLossParams lp = { .student_temp = 0.1, .teacher_temp = meta (m, "teacher_temp"),
                           .center_momentum = 0.9, .scale = 1.0 };
  double loss;
  if (!agc_dino_accumulate (d, global, batch, (int) gs[2], local, n_local,
                            local ? (int) ls[2] : 0, &lp, &loss, &error))
    die (error->message);
  GArray *views = g_array_new (FALSE, TRUE, sizeof (AgcTensorView));
  GPtrArray *owned = g_ptr_array_new_with_free_func (g_free);
  float loss_f = (float) loss;
  add (views, owned, "loss", &loss_f, 1);
  AgcDinoBackbone *grads = d->student->ops->copy (d->student);
  memcpy (grads->params, d->student->grads, d->student->n_params * sizeof (float));
  add_backbone (views, owned, "grad.", grads);
  agc_dino_backbone_free (grads);
  add_head (views, owned, "grad.head.", d->student_head, TRUE);

  AgcAdamWParams adamw = agc_adamw_params (meta (m, "lr"), meta (m, "weight_decay"));
  agc_dino_update (d, &adamw, meta (m, "lr"), meta (m, "clip"), meta (m, "freeze") != 0,
                   meta (m, "momentum"));
  add_backbone (views, owned, "student.", d->student);
  add_backbone (views, owned, "teacher.", d->teacher);
  add_head (views, owned, "student.head.", d->student_head, FALSE);
  add_head (views, owned, "teacher.head.", d->teacher_head, FALSE);
  add (views, owned, "center", d->center, cs[0]);
  if (!agc_safetensors_write (argv[2], (AgcTensorView *) views->data, (int) views->len, NULL,
                              FALSE, &error))
    die (error->message);
  g_array_unref (views);
  g_ptr_array_unref (owned);
  agc_dino_free (d);
  agc_model_free (model);
  g_free (global);
  g_free (local);
  g_free (w1);
  g_free (v);
  g_free (center);
  agc_safetensors_free (file);
  agc_weights_free (in);
  return 0;
}
