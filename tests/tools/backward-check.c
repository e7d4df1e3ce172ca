/* backward-check.c — runs one training forward and its backward
 * (core/nn/backward.h, core/nn/block-train.h) for tests/reference/test_backward.py,
 * which compares them with PyTorch autograd.
 *
 *   backward-check IN.safetensors OUT.safetensors
 *
 * IN's metadata "op" picks the layer; its tensors are the inputs (F32) and
 * dout, the gradient of the loss w.r.t. the output:
 *   layernorm    x [N, C], weight [C], bias [C], dout  (metadata eps)
 *   linear       x [N, I], weight [O, I], bias [O], dout
 *   act          x [N], dout  (metadata act: gelu | quick_gelu)
 *   attention    qkv [B*T, 3D], dout [B*T, D]  (metadata batch, heads, causal 0/1)
 *   l2norm       x [N, E], dout
 *   contrastive  image [N, E], text [C, E], labels I64 [N], class_weights [C]
 *                (metadata logit_scale); no dout, the output is the loss
 *   block        x [B*T, D], the twelve AgcBlock arrays by field name
 *                (qkv_weight fused [3D, D]), dout  (metadata batch, heads,
 *                act, causal, eps)
 * OUT holds "out" (or "loss" F64 [1]) and "d" + the name of every input
 * that gets a gradient (dx, dweight, dqkv_weight, ...), written with the
 * project's safetensors writer.  Errors: "error: ..." on stderr, exit 1. */
#include "nn/backward.h"
#include "nn/block-train.h"
#include "kernels/attention.h"
#include "kernels/ops.h"
#include "formats/safetensors-write.h"
#include "formats/safetensors.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct
{
  AgcSafetensors *in;
  GHashTable *meta;
  GPtrArray *owned; // arrays and names to free
  GArray *out;      // AgcTensorView
} Check;

static float *
input (Check *c, const char *name, int64_t *rows, int64_t *cols)
{
  const AgcTensorView *t = agc_safetensors_find (c->in, name);
  if (t == NULL || t->dtype != AGC_DTYPE_F32)
    {
      fprintf (stderr, "error: IN lacks F32 tensor %s\n", name);
      exit (1);
    }
  float *x = g_new (float, t->n_bytes / 4);
  agc_tensor_to_f32 (t, x);
  g_ptr_array_add (c->owned, x);
  if (rows != NULL)
    *rows = t->shape[0];
  if (cols != NULL)
    *cols = t->n_dims > 1 ? t->shape[1] : 0;
  return x;
}

static const char *
meta (Check *c, const char *key)
{
  const char *value = c->meta != NULL ? g_hash_table_lookup (c->meta, key) : NULL;
  if (value == NULL)
    {
      fprintf (stderr, "error: IN lacks metadata %s\n", key);
      exit (1);
    }
  return value;
}

// a zeroed output array of rows x cols (cols 0: a vector) named name
static float *
output (Check *c, const char *name, int64_t rows, int64_t cols)
{
  size_t n = (size_t) rows * (cols > 0 ? cols : 1);
  float *x = g_new0 (float, n);
  char *owned_name = g_strdup (name);
  g_ptr_array_add (c->owned, x);
  g_ptr_array_add (c->owned, owned_name);
  AgcTensorView v = { .name = owned_name, .dtype = AGC_DTYPE_F32, .n_dims = cols > 0 ? 2 : 1,
                      .shape = { rows, cols }, .data = (const guint8 *) x, .n_bytes = n * 4 };
  g_array_append_val (c->out, v);
  return x;
}

static AgcActivation
activation (Check *c)
{
  return strcmp (meta (c, "act"), "gelu") == 0 ? AGC_ACT_GELU : AGC_ACT_QUICK_GELU;
}

static void
run_layernorm (Check *c)
{
  int64_t n, w;
  float *x = input (c, "x", &n, &w), *weight = input (c, "weight", NULL, NULL);
  float *bias = input (c, "bias", NULL, NULL), *dout = input (c, "dout", NULL, NULL);
  float *out = output (c, "out", n, w), *mean = output (c, "mean", n, 0);
  float *rstd = output (c, "rstd", n, 0);
  agc_bias_layernorm_forward (out, mean, rstd, x, NULL, weight, bias, n, w,
                              (float) g_ascii_strtod (meta (c, "eps"), NULL));
  agc_layernorm_backward (output (c, "dx", n, w), output (c, "dweight", w, 0),
                          output (c, "dbias", w, 0), dout, x, weight, mean, rstd, n, w);
}

static void
run_linear (Check *c)
{
  int64_t n, n_in, n_out;
  float *x = input (c, "x", &n, &n_in), *weight = input (c, "weight", &n_out, NULL);
  float *bias = input (c, "bias", NULL, NULL), *dout = input (c, "dout", NULL, NULL);
  agc_linear_forward (output (c, "out", n, n_out), x, weight, bias, n, n_in, n_out);
  agc_linear_backward (output (c, "dx", n, n_in), output (c, "dweight", n_out, n_in),
                       output (c, "dbias", n_out, 0), dout, x, weight, n, n_in, n_out);
}

static void
run_act (Check *c)
{
  int64_t n;
  float *x = input (c, "x", &n, NULL), *dout = input (c, "dout", NULL, NULL);
  float *out = output (c, "out", n, 0);
  memcpy (out, x, n * sizeof (float));
  agc_bias_act_forward (out, NULL, 1, n, activation (c));
  agc_act_backward (output (c, "dx", n, 0), dout, x, n, activation (c));
}

static void
run_attention (Check *c)
{
  int64_t rows, d3;
  float *qkv = input (c, "qkv", &rows, &d3), *dout = input (c, "dout", NULL, NULL);
  int batch = atoi (meta (c, "batch")), heads = atoi (meta (c, "heads"));
  int causal = atoi (meta (c, "causal")), d = (int) d3 / 3, n = (int) rows / batch;
  float *att = output (c, "att", (int64_t) batch * heads * n, n);
  AgcAttention attention;
  AgcArena scratch = { 0 };
  if (!agc_attention_init_batch (&attention, &scratch, batch, n, d, heads, causal, NULL))
    g_error ("out of memory");
  attention.qkv = qkv;
  attention.out = output (c, "out", rows, d);
  attention.probs = att;
  agc_attention_forward (&attention);
  agc_arena_clear (&scratch);
  agc_attention_backward (output (c, "dqkv", rows, d3), dout, qkv, att, batch, n, d, heads);
}

static void
run_l2norm (Check *c)
{
  int64_t n, e;
  float *x = input (c, "x", &n, &e), *dout = input (c, "dout", NULL, NULL);
  agc_l2_normalize_forward_train (output (c, "out", n, e), x, n, e);
  agc_l2_normalize_backward (output (c, "dx", n, e), dout, x, n, e);
}

static void
run_contrastive (Check *c)
{
  int64_t n, e, n_classes;
  float *image = input (c, "image", &n, &e), *text = input (c, "text", &n_classes, NULL);
  float *cw = input (c, "class_weights", NULL, NULL);
  const AgcTensorView *l = agc_safetensors_find (c->in, "labels");
  if (l == NULL || l->dtype != AGC_DTYPE_I64 || l->shape[0] != n)
    {
      fprintf (stderr, "error: IN lacks I64 labels [N]\n");
      exit (1);
    }
  int *labels = g_new (int, n);
  g_ptr_array_add (c->owned, labels);
  for (int64_t i = 0; i < n; i++)
    {
      gint64 label;
      memcpy (&label, l->data + 8 * i, 8);
      labels[i] = (int) label;
    }
  float scale = (float) g_ascii_strtod (meta (c, "logit_scale"), NULL);
  float *dimage = output (c, "dimage", n, e), *dtext = output (c, "dtext", n_classes, e);
  double *loss = g_new (double, 1);
  g_ptr_array_add (c->owned, loss);
  *loss = agc_contrastive_loss_backward (dimage, dtext, image, text, labels, cw, scale, n, e,
                                         n_classes);
  AgcTensorView v = { .name = "loss", .dtype = AGC_DTYPE_F64, .n_dims = 1, .shape = { 1 },
                      .data = (const guint8 *) loss, .n_bytes = 8 };
  g_array_append_val (c->out, v);
}

static const char *const block_names[12]
  = { "ln1_weight", "ln1_bias", "qkv_weight", "qkv_bias", "out_weight", "out_bias",
      "ln2_weight", "ln2_bias", "fc1_weight", "fc1_bias", "fc2_weight", "fc2_bias" };

static void
run_block (Check *c)
{
  int64_t rows, d, m;
  float *x = input (c, "x", &rows, &d), *dout = input (c, "dout", NULL, NULL);
  input (c, "fc1_weight", &m, NULL);
  AgcTowerConfig config = { .width = (int) d, .layers = 1, .heads = atoi (meta (c, "heads")),
                            .mlp_width = (int) m, .act = activation (c),
                            .layer_norm_eps = (float) g_ascii_strtod (meta (c, "eps"), NULL) };
  int batch = atoi (meta (c, "batch")), causal = atoi (meta (c, "causal"));
  AgcBlock *w = agc_block_train_new (&config), *g = agc_block_train_new (&config);
  float *params[12], *grads[12];
  size_t sizes[12];
  int count = agc_block_train_arrays (params, sizes, NULL, w, &config);
  agc_block_train_arrays (grads, sizes, NULL, g, &config);
  for (int i = 0; i < count; i++)
    memcpy (params[i], input (c, block_names[i], NULL, NULL), sizes[i] * sizeof (float));
  AgcBlockActs *acts = agc_block_acts_new (&config, batch, (int) rows / batch);
  AgcLayer layer;
  agc_layer_view (&layer, w, &config);
  float *out = output (c, "out", rows, d);
  memcpy (out, x, (size_t) rows * d * sizeof (float));
  agc_block_forward (out, acts, &layer, &config, causal);
  agc_block_backward (output (c, "dx", rows, d), g, dout, acts, &layer, &config);
  for (int i = 0; i < count; i++)
    {
      g_autofree char *name = g_strconcat ("d", block_names[i], NULL);
      memcpy (output (c, name, sizes[i], 0), grads[i], sizes[i] * sizeof (float));
    }
  agc_block_acts_free (acts);
  agc_block_train_free (w);
  agc_block_train_free (g);
}

int
main (int argc, char **argv)
{
  if (argc != 3)
    {
      fprintf (stderr, "usage: backward-check IN.safetensors OUT.safetensors\n");
      return 2;
    }
  GError *error = NULL;
  Check c = { .owned = g_ptr_array_new_with_free_func (g_free),
              .out = g_array_new (FALSE, TRUE, sizeof (AgcTensorView)) };
  c.in = agc_safetensors_open (argv[1], &error);
  if (c.in == NULL)
    {
      fprintf (stderr, "error: %s\n", error->message);
      return 1;
    }
  c.meta = agc_safetensors_metadata (c.in);
  static const struct
  {
    const char *op;
    void (*run) (Check *c);
  } ops[] = { { "layernorm", run_layernorm }, { "linear", run_linear }, { "act", run_act },
              { "attention", run_attention }, { "l2norm", run_l2norm },
              { "contrastive", run_contrastive }, { "block", run_block } };
  const char *op = meta (&c, "op");
  gboolean found = FALSE;
  for (size_t i = 0; i < G_N_ELEMENTS (ops); i++)
    if (strcmp (op, ops[i].op) == 0)
      {
        ops[i].run (&c);
        found = TRUE;
      }
  if (!found)
    {
      fprintf (stderr, "error: unknown op %s\n", op);
      return 1;
    }
  if (!agc_safetensors_write (argv[2], (AgcTensorView *) c.out->data, (int) c.out->len, NULL,
                              FALSE, &error))
    {
      fprintf (stderr, "error: %s\n", error->message);
      return 1;
    }
  g_array_free (c.out, TRUE);
  g_ptr_array_unref (c.owned);
  agc_safetensors_free (c.in);
  return 0;
}
