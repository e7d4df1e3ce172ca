/* finetune-step.c — runs agc_finetune_step (core/finetune.h) for
 * tests/reference/test_finetune.py, which repeats it with PyTorch autograd,
 * torch.optim.AdamW and clip_grad_norm_.
 *
 *   finetune-step IN.safetensors OUT.safetensors
 *
 * IN (F32 unless said): hidden [B*T, D], blocks.K.NAME for K < n_blocks and
 * the twelve AgcBlock names (qkv_weight fused [3D, D]), post_ln_weight,
 * post_ln_bias [D], projection [E, D], text [C, E], labels I64 [B],
 * class_weights [C]; metadata batch, heads, act (gelu | quick_gelu), eps,
 * lr, weight_decay, warmup, total_steps, clip_norm, logit_scale, steps,
 * alpha.  OUT: loss and grad_norm F64 [steps], every trained tensor under its
 * IN name after the last step, and wise.NAME: the WiSE-FT interpolation of
 * each with its IN value at alpha.  Errors: "error: ..." on stderr, exit 1. */
#include "finetune.h"
#include "safetensors-write.h"
#include "safetensors.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const block_names[12]
  = { "ln1_weight", "ln1_bias", "qkv_weight", "qkv_bias", "out_weight", "out_bias",
      "ln2_weight", "ln2_bias", "fc1_weight", "fc1_bias", "fc2_weight", "fc2_bias" };

static AgcSafetensors *in;
static GHashTable *meta;

static void
die (const char *what, const char *name)
{
  fprintf (stderr, "error: %s %s\n", what, name);
  exit (1);
}

static const AgcTensorView *
tensor (const char *name)
{
  const AgcTensorView *t = agc_safetensors_find (in, name);
  if (t == NULL)
    die ("IN lacks tensor", name);
  return t;
}

static float *
input (const char *name)
{
  const AgcTensorView *t = tensor (name);
  if (t->dtype != AGC_DTYPE_F32)
    die ("not F32:", name);
  float *x = g_new (float, t->n_bytes / 4);
  agc_tensor_to_f32 (t, x);
  return x;
}

static double
number (const char *key)
{
  const char *value = meta != NULL ? g_hash_table_lookup (meta, key) : NULL;
  if (value == NULL)
    die ("IN lacks metadata", key);
  return g_ascii_strtod (value, NULL);
}

static AgcTensorView
view (const char *name, AgcDType dtype, const void *data, size_t n)
{
  return (AgcTensorView){ .name = name, .dtype = dtype, .n_dims = 1, .shape = { (int64_t) n },
                          .data = data, .n_bytes = n * agc_dtype_size (dtype) };
}

int
main (int argc, char **argv)
{
  if (argc != 3)
    {
      fprintf (stderr, "usage: finetune-step IN.safetensors OUT.safetensors\n");
      return 2;
    }
  GError *error = NULL;
  if ((in = agc_safetensors_open (argv[1], &error)) == NULL)
    die ("", error->message);
  meta = agc_safetensors_metadata (in);
  const AgcTensorView *hidden_t = tensor ("hidden"), *proj_t = tensor ("projection");
  const AgcTensorView *text_t = tensor ("text"), *fc1_t = tensor ("blocks.0.fc1_weight");
  const char *act = meta != NULL ? g_hash_table_lookup (meta, "act") : NULL;
  int batch = (int) number ("batch"), steps = (int) number ("steps");
  int d = (int) hidden_t->shape[1], n_tokens = (int) hidden_t->shape[0] / batch;
  int e = (int) proj_t->shape[0], n_classes = (int) text_t->shape[0];
  int n_blocks = (int) number ("n_blocks");
  AgcTowerConfig config = { .width = d, .layers = n_blocks, .heads = (int) number ("heads"),
                            .mlp_width = (int) fc1_t->shape[0],
                            .layer_norm_eps = (float) number ("eps"),
                            .act = act != NULL && strcmp (act, "gelu") == 0 ? AGC_ACT_GELU
                                                                             : AGC_ACT_QUICK_GELU };
  AgcFinetuneParams params = agc_finetune_default_params ();
  params.lr = number ("lr");
  params.weight_decay = number ("weight_decay");
  params.warmup_steps = (int) number ("warmup");
  params.total_steps = (int) number ("total_steps");
  params.clip_norm = number ("clip_norm");
  params.logit_scale = (float) number ("logit_scale");
  double alpha = number ("alpha");

  // the initial weights, read into a weights layout, with their IN names
  AgcFinetuneWeights *init = agc_finetune_weights_new (&config, n_blocks, e);
  float *arrays[12 * 64 + 3];
  size_t sizes[12 * 64 + 3];
  int n_arrays = agc_finetune_weights_arrays (arrays, sizes, NULL, init, &config, e);
  GPtrArray *names = g_ptr_array_new_with_free_func (g_free);
  for (int k = 0; k < n_blocks; k++)
    for (int i = 0; i < 12; i++)
      g_ptr_array_add (names, g_strdup_printf ("blocks.%d.%s", k, block_names[i]));
  g_ptr_array_add (names, g_strdup ("post_ln_weight"));
  g_ptr_array_add (names, g_strdup ("post_ln_bias"));
  g_ptr_array_add (names, g_strdup ("projection"));
  for (int i = 0; i < n_arrays; i++)
    {
      float *x = input (names->pdata[i]);
      memcpy (arrays[i], x, sizes[i] * sizeof (float));
      g_free (x);
    }
  AgcFinetune *ft = agc_finetune_new (&config, e, n_blocks, (const AgcBlock *const *) init->blocks,
                                      init->post_ln_weight, init->post_ln_bias, init->projection,
                                      &params);

  float *hidden = input ("hidden"), *text = input ("text"), *cw = input ("class_weights");
  const AgcTensorView *l = tensor ("labels");
  if (l->dtype != AGC_DTYPE_I64 || l->shape[0] != batch)
    die ("labels must be I64 [batch]", "");
  int *labels = g_new (int, batch);
  for (int i = 0; i < batch; i++)
    {
      gint64 label;
      memcpy (&label, l->data + 8 * i, 8);
      labels[i] = (int) label;
    }
  double *losses = g_new (double, steps), *norms = g_new (double, steps);
  for (int s = 0; s < steps; s++)
    losses[s] = agc_finetune_step (ft, &norms[s], hidden, batch, n_tokens, text, labels, cw,
                                   n_classes);

  float *trained[12 * 64 + 3];
  agc_finetune_weights_arrays (trained, sizes, NULL, ft->weights, &config, e);
  GArray *out = g_array_new (FALSE, TRUE, sizeof (AgcTensorView));
  GPtrArray *owned = g_ptr_array_new_with_free_func (g_free);
  AgcTensorView v = view ("loss", AGC_DTYPE_F64, losses, steps);
  g_array_append_val (out, v);
  v = view ("grad_norm", AGC_DTYPE_F64, norms, steps);
  g_array_append_val (out, v);
  for (int i = 0; i < n_arrays; i++)
    {
      v = view (names->pdata[i], AGC_DTYPE_F32, trained[i], sizes[i]);
      g_array_append_val (out, v);
      float *wise = g_new (float, sizes[i]);
      agc_finetune_interpolate (wise, arrays[i], trained[i], sizes[i], alpha);
      char *wise_name = g_strconcat ("wise.", (char *) names->pdata[i], NULL);
      g_ptr_array_add (owned, wise);
      g_ptr_array_add (owned, wise_name);
      v = view (wise_name, AGC_DTYPE_F32, wise, sizes[i]);
      g_array_append_val (out, v);
    }
  if (!agc_safetensors_write (argv[2], (AgcTensorView *) out->data, (int) out->len, NULL, FALSE,
                              &error))
    die ("", error->message);
  g_array_free (out, TRUE);
  g_ptr_array_unref (owned);
  g_ptr_array_unref (names);
  agc_finetune_free (ft);
  agc_finetune_weights_free (init);
  g_free (hidden), g_free (text), g_free (cw), g_free (labels), g_free (losses), g_free (norms);
  agc_safetensors_free (in);
  return 0;
}
