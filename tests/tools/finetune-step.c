/* finetune-step.c — runs agc_finetune_step (core/train/finetune.h) for
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
#include "train/finetune.h"
#include "tool-io.h"

static const char *const block_names[12]
  = { "ln1_weight", "ln1_bias", "qkv_weight", "qkv_bias", "out_weight", "out_bias",
      "ln2_weight", "ln2_bias", "fc1_weight", "fc1_bias", "fc2_weight", "fc2_bias" };

int
main (int argc, char **argv)
{
  tool_io_open (argc, argv, "finetune-step");
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
  params.adamw.lr = number ("lr");
  params.adamw.weight_decay = number ("weight_decay");
  params.adamw.warmup_steps = (int) number ("warmup");
  params.adamw.total_steps = (int) number ("total_steps");
  params.adamw.clip_norm = number ("clip_norm");
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
    memcpy (arrays[i], input (names->pdata[i], NULL), sizes[i] * sizeof (float));
  AgcFinetune *ft = agc_finetune_new (&config, e, init, &params);

  const float *hidden = input ("hidden", NULL), *text = input ("text", NULL);
  const float *cw = input ("class_weights", NULL);
  const int32_t *labels = input_ids ("labels", NULL);
  if (tensor ("labels")->shape[0] != batch)
    die ("labels must be I64 [batch]", "");
  double *losses = g_new (double, steps), *norms = g_new (double, steps);
  g_ptr_array_add (owned, losses);
  g_ptr_array_add (owned, norms);
  for (int s = 0; s < steps; s++)
    losses[s] = agc_finetune_step (ft, &norms[s], hidden, batch, n_tokens, text, labels, cw,
                                   n_classes);

  float *trained[12 * 64 + 3];
  agc_finetune_weights_arrays (trained, sizes, NULL, ft->weights, &config, e);
  emit ("loss", AGC_DTYPE_F64, losses, steps);
  emit ("grad_norm", AGC_DTYPE_F64, norms, steps);
  for (int i = 0; i < n_arrays; i++)
    {
      emit (names->pdata[i], AGC_DTYPE_F32, trained[i], sizes[i]);
      float *wise = g_new (float, sizes[i]);
      g_ptr_array_add (owned, wise);
      agc_finetune_interpolate (wise, arrays[i], trained[i], sizes[i], alpha);
      g_autofree char *wise_name = g_strconcat ("wise.", (char *) names->pdata[i], NULL);
      emit (wise_name, AGC_DTYPE_F32, wise, sizes[i]);
    }
  tool_io_finish (argv[2]);
  g_ptr_array_unref (names);
  agc_finetune_free (ft);
  agc_finetune_weights_free (init);
  return 0;
}
