/* clip-train-step.c — exposes whole-CLIP training (core/train/clip-train.h) and
 * its new layers (core/nn/backward.h) to tests/reference/test_pretrain.py,
 * which repeats them with PyTorch autograd and torch.optim.AdamW.
 *
 *   clip-train-step IN.safetensors OUT.safetensors
 *
 * IN's metadata "op" picks what runs:
 *   init         metadata: the model (below) and seed.  OUT: every tensor
 *                of agc_clip_params_init under its Hugging Face name.
 *   step         every model tensor (F32, Hugging Face names), pixels
 *                [B, 3, S, S], ids I64 [B, ctx]; metadata: the model, lr,
 *                weight_decay, warmup, total_steps, clip_norm, steps,
 *                shards.  OUT: loss and grad_norm F64 [steps], every tensor
 *                after the last step, and grad.NAME, its clipped gradient
 *                of the last step.
 *   clip_loss    image [N, E], text [N, E] (L2-normalised), log_scale [1].
 *                OUT: loss F64 [1], dimage, dtext, dlog_scale (dloss/d...).
 *   embedding    table [V, W], ids I64 [N], dout [N, W].  OUT: out, dtable.
 *   gather       x [R, W], rows I64 [N], dout [N, W].  OUT: out, dx.
 *   patch_embed  pixels [B, 3, S, S], weight [D, 3, p, p], dout [B, T, D].
 *                OUT: out, dweight.
 * The model metadata: image_size, patch, width, layers, heads, text_width,
 * text_layers, text_heads, context, vocab, embed_dim, act (gelu |
 * quick_gelu); MLPs are 4 x wide, layer-norm eps 1e-5.
 * Errors: "error: ..." on stderr, exit 1. */
#include "nn/backward.h"
#include "train/clip-train.h"
#include "tool-io.h"

static AgcClipConfig
model_config (void)
{
  const char *act = g_hash_table_lookup (meta, "act");
  AgcActivation a = act != NULL && strcmp (act, "gelu") == 0 ? AGC_ACT_GELU : AGC_ACT_QUICK_GELU;
  AgcTowerConfig v = { .width = (int) number ("width"), .layers = (int) number ("layers"),
                       .heads = (int) number ("heads"), .layer_norm_eps = 1e-5f, .act = a,
                       .image_size = (int) number ("image_size"),
                       .patch_size = (int) number ("patch") };
  AgcTowerConfig t = { .width = (int) number ("text_width"),
                       .layers = (int) number ("text_layers"),
                       .heads = (int) number ("text_heads"), .layer_norm_eps = 1e-5f, .act = a,
                       .vocab_size = (int) number ("vocab"),
                       .context_length = (int) number ("context") };
  v.mlp_width = 4 * v.width;
  t.mlp_width = 4 * t.width;
  return (AgcClipConfig){ .text = t, .vision = v, .projection_dim = (int) number ("embed_dim") };
}

static void
emit_params (const char *prefix, const AgcClipParams *p)
{
  int n = agc_clip_params_n_tensors (&p->config);
  AgcClipTensor *t = g_new (AgcClipTensor, n);
  g_ptr_array_add (owned, t);
  agc_clip_params_tensors (t, p);
  for (int i = 0; i < n; i++)
    {
      char *name = g_strconcat (prefix, t[i].name, NULL);
      emit (name, AGC_DTYPE_F32, t[i].data, t[i].size);
      g_free (name);
    }
}

// returns the training state, which the emitted tensors point into
static AgcClipTrain *
op_step (void)
{
  AgcClipConfig config = model_config ();
  AgcClipParams *w = agc_clip_params_new (&config);
  int n = agc_clip_params_n_tensors (&config);
  AgcClipTensor *t = g_new (AgcClipTensor, n);
  g_ptr_array_add (owned, t);
  agc_clip_params_tensors (t, w);
  for (int i = 0; i < n; i++)
    {
      size_t size;
      float *x = input (t[i].name, &size);
      if (size != t[i].size)
        die ("wrong size:", t[i].name);
      memcpy (t[i].data, x, size * sizeof (float));
    }
  AgcAdamWParams opt = agc_adamw_params (number ("lr"), number ("weight_decay"));
  opt.warmup_steps = (int) number ("warmup");
  opt.total_steps = (int) number ("total_steps");
  opt.clip_norm = number ("clip_norm");
  int steps = (int) number ("steps");
  size_t n_ids;
  const float *pixels = input ("pixels", NULL);
  const int32_t *ids = input_ids ("ids", &n_ids);
  int batch = (int) (n_ids / config.text.context_length);
  AgcClipTrain *train = agc_clip_train_new (w, &opt, (int) number ("shards"));
  double *losses = g_new (double, steps), *norms = g_new (double, steps);
  g_ptr_array_add (owned, losses);
  g_ptr_array_add (owned, norms);
  for (int s = 0; s < steps; s++)
    losses[s] = agc_clip_train_step (train, &norms[s], pixels, ids, batch);
  emit ("loss", AGC_DTYPE_F64, losses, steps);
  emit ("grad_norm", AGC_DTYPE_F64, norms, steps);
  emit_params ("", train->weights);
  emit_params ("grad.", train->grads);
  return train;
}

int
main (int argc, char **argv)
{
  tool_io_open (argc, argv, "clip-train-step");
  if (meta == NULL)
    die ("IN lacks metadata", "op");
  const char *op = g_hash_table_lookup (meta, "op");
  op = op != NULL ? op : "";
  AgcClipParams *init = NULL;
  AgcClipTrain *train = NULL;
  if (strcmp (op, "step") == 0)
    train = op_step ();
  else if (strcmp (op, "init") == 0)
    {
      AgcClipConfig config = model_config ();
      init = agc_clip_params_new (&config);
      agc_clip_params_init (init, (guint64) number ("seed"));
      emit_params ("", init);
    }
  else if (strcmp (op, "clip_loss") == 0)
    {
      const AgcTensorView *image_t = tensor ("image");
      int n = (int) image_t->shape[0], e = (int) image_t->shape[1];
      const float *image = input ("image", NULL), *text = input ("text", NULL);
      float log_scale = input ("log_scale", NULL)[0];
      float *dimage = g_new0 (float, (size_t) n * e), *dtext = g_new0 (float, (size_t) n * e);
      float *dlog = g_new0 (float, 1);
      g_ptr_array_add (owned, dimage), g_ptr_array_add (owned, dtext), g_ptr_array_add (owned, dlog);
      emit_f64 ("loss", agc_clip_loss_backward (dimage, dtext, dlog, image, text, log_scale, n, e));
      emit ("dimage", AGC_DTYPE_F32, dimage, (size_t) n * e);
      emit ("dtext", AGC_DTYPE_F32, dtext, (size_t) n * e);
      emit ("dlog_scale", AGC_DTYPE_F32, dlog, 1);
    }
  else if (strcmp (op, "embedding") == 0 || strcmp (op, "gather") == 0)
    {
      gboolean embedding = strcmp (op, "embedding") == 0;
      const char *source = embedding ? "table" : "x";
      const AgcTensorView *src_t = tensor (source);
      size_t n_src, n;
      const float *src = input (source, &n_src), *dout = input ("dout", NULL);
      const int32_t *ids = input_ids (embedding ? "ids" : "rows", &n);
      int width = (int) src_t->shape[1];
      float *o = g_new0 (float, n * width), *d = g_new0 (float, n_src);
      g_ptr_array_add (owned, o), g_ptr_array_add (owned, d);
      if (embedding)
        {
          agc_embedding_forward (o, ids, src, (int) n, width);
          agc_embedding_backward (d, dout, ids, (int) n, width);
        }
      else
        {
          agc_rows_gather (o, src, ids, (int) n, width);
          agc_rows_gather_backward (d, dout, ids, (int) n, width);
        }
      emit ("out", AGC_DTYPE_F32, o, n * width);
      emit (embedding ? "dtable" : "dx", AGC_DTYPE_F32, d, n_src);
    }
  else if (strcmp (op, "patch_embed") == 0)
    {
      const AgcTensorView *px = tensor ("pixels"), *wt = tensor ("weight");
      int batch = (int) px->shape[0], s = (int) px->shape[2], d = (int) wt->shape[0];
      int p = (int) wt->shape[2], n_tok = (s / p) * (s / p) + 1;
      size_t n_w;
      const float *pixels = input ("pixels", NULL), *weight = input ("weight", &n_w);
      const float *dout = input ("dout", NULL);
      float *o = g_new0 (float, (size_t) batch * n_tok * d);
      float *patches = g_new0 (float, (size_t) batch * n_tok * 3 * p * p);
      float *dw = g_new0 (float, n_w);
      g_ptr_array_add (owned, o), g_ptr_array_add (owned, patches), g_ptr_array_add (owned, dw);
      agc_patch_embed_forward_train (o, patches, pixels, weight, batch, s, p, d);
      agc_patch_embed_backward (dw, dout, patches, batch, s, p, d);
      emit ("out", AGC_DTYPE_F32, o, (size_t) batch * n_tok * d);
      emit ("dweight", AGC_DTYPE_F32, dw, n_w);
    }
  else
    die ("unknown op", op);
  tool_io_finish (argv[2]);
  agc_clip_params_free (init);
  agc_clip_train_free (train);
  return 0;
}
