/* finetune.c — one contrastive fine-tuning step of the vision tower's top
 * (finetune.h): the tower's training forward and backward for its top
 * (vision-tower.h) with the loss, then the optimiser (optimizer.h):
 * clipping, AdamW. */
#include "train/finetune.h"

#include "nn/backward.h"
#include "formats/safetensors-write.h"
#include "formats/safetensors.h"
#include "train/checkpoint.h"

#include <math.h>
#include <string.h>

AgcFinetuneWeights *
agc_finetune_weights_new (const AgcTowerConfig *config, int n_blocks, int embed_dim)
{
  AgcFinetuneWeights *w = g_new0 (AgcFinetuneWeights, 1);
  w->n_blocks = n_blocks;
  w->top.blocks = g_new0 (AgcBlock, MAX (n_blocks, 1));
  AgcCarver k = { 0 };
  agc_vision_params_carve (&w->top, &k, config, embed_dim, n_blocks, FALSE);
  w->memory = agc_carver_allocate (&k);
  agc_vision_params_carve (&w->top, &k, config, embed_dim, n_blocks, FALSE);
  w->n_floats = k.n_floats;
  return w;
}

void
agc_finetune_weights_free (AgcFinetuneWeights *w)
{
  if (w == NULL)
    return;
  g_free (w->top.blocks);
  g_free (w->memory);
  g_free (w);
}

int
agc_tower_top_arrays (float **arrays, size_t *sizes, gboolean *decays, AgcBlock *blocks,
                      int n_blocks, const AgcTowerConfig *config, float *norm_weight,
                      float *norm_bias, float *projection, int embed_dim)
{
  int n = 0;
  for (int k = 0; k < n_blocks; k++)
    n += agc_block_train_arrays (arrays + n, sizes + n, decays != NULL ? decays + n : NULL,
                                 &blocks[k], config);
  float *head[3] = { norm_weight, norm_bias, projection };
  size_t head_sizes[3] = { config->width, config->width, (size_t) embed_dim * config->width };
  for (int i = 0; i < 3; i++, n++)
    {
      arrays[n] = head[i];
      sizes[n] = head_sizes[i];
      if (decays != NULL)
        decays[n] = i == 2;
    }
  return n;
}

int
agc_finetune_weights_arrays (float **arrays, size_t *sizes, gboolean *decays,
                             AgcFinetuneWeights *w, const AgcTowerConfig *config, int embed_dim)
{
  return agc_tower_top_arrays (arrays, sizes, decays, w->top.blocks, w->n_blocks, config,
                               w->top.post_ln_weight, w->top.post_ln_bias, w->top.projection,
                               embed_dim);
}

AgcFinetuneParams
agc_finetune_default_params (void)
{
  AgcAdamWParams adamw = agc_adamw_params (1e-5, 0.1);
  adamw.total_steps = 1;
  adamw.clip_norm = 1.0;
  return (AgcFinetuneParams){ .adamw = adamw, .logit_scale = 100.0f };
}

void
agc_finetune_weights_copy (AgcFinetuneWeights *dst, AgcFinetuneWeights *src,
                           const AgcTowerConfig *c, int e)
{
  float *to[12 * 64 + 3], *from[12 * 64 + 3];
  size_t sizes[12 * 64 + 3];
  int n = agc_finetune_weights_arrays (to, sizes, NULL, dst, c, e);
  agc_finetune_weights_arrays (from, sizes, NULL, src, c, e);
  for (int i = 0; i < n; i++)
    memcpy (to[i], from[i], sizes[i] * sizeof (float));
}

AgcFinetune *
agc_finetune_new (const AgcTowerConfig *config, int embed_dim, const AgcFinetuneWeights *start,
                  const AgcFinetuneParams *params)
{
  g_return_val_if_fail (config != NULL && start != NULL && params != NULL, NULL);
  int n_blocks = start->n_blocks;
  g_return_val_if_fail (n_blocks >= 0 && n_blocks <= 64, NULL);
  AgcFinetune *ft = g_new0 (AgcFinetune, 1);
  ft->config = *config;
  ft->embed_dim = embed_dim;
  ft->params = *params;
  ft->weights = agc_finetune_weights_new (config, n_blocks, embed_dim);
  ft->grads = agc_finetune_weights_new (config, n_blocks, embed_dim);
  agc_finetune_weights_copy (ft->weights, (AgcFinetuneWeights *) start, config, embed_dim);
  ft->trainable = agc_trainable_new (ft->weights->memory, ft->grads->memory,
                                     ft->weights->n_floats);
  // matrices decay, biases and norm weights do not
  float *arrays[12 * 64 + 3];
  size_t sizes[12 * 64 + 3];
  gboolean decays[12 * 64 + 3];
  int n_arrays = agc_finetune_weights_arrays (arrays, sizes, decays, ft->weights, config,
                                              embed_dim);
  for (int i = 0; i < n_arrays; i++)
    for (size_t j = 0; j < sizes[i]; j++)
      ft->trainable->decay[AGC_TRAINABLE_AT (ft->trainable, arrays[i]) + j] = decays[i];
  return ft;
}

void
agc_finetune_free (AgcFinetune *ft)
{
  if (ft == NULL)
    return;
  agc_tower_acts_free (ft->acts);
  agc_finetune_weights_free (ft->weights);
  agc_finetune_weights_free (ft->grads);
  agc_trainable_free (ft->trainable);
  g_free (ft);
}

static void
size_acts (AgcFinetune *ft, int batch, int n_tokens)
{
  if (ft->acts != NULL && ft->batch == batch && ft->n_tokens == n_tokens)
    return;
  agc_tower_acts_free (ft->acts);
  ft->acts = agc_vision_acts_new_top (&ft->config, ft->embed_dim, ft->weights->n_blocks, batch,
                                      n_tokens);
  ft->batch = batch;
  ft->n_tokens = n_tokens;
}

double
agc_finetune_step (AgcFinetune *ft, double *grad_norm, const float *hidden, int batch,
                   int n_tokens, const float *text, const int *labels,
                   const float *class_weights, int n_classes)
{
  g_return_val_if_fail (ft != NULL && hidden != NULL && batch > 0 && n_tokens > 0, 0.0);
  const AgcTowerConfig *c = &ft->config;
  AgcFinetuneWeights *w = ft->weights, *g = ft->grads;
  int e = ft->embed_dim;
  size_t be = (size_t) batch * e;
  size_acts (ft, batch, n_tokens);

  // the embeddings before and after L2, with their gradients [B, E]
  float *scratch = g_new0 (float, 4 * be);
  float *emb = scratch, *normed = emb + be, *dnormed = normed + be, *demb = dnormed + be;

  // ---- forward: the tower's top, then L2 ----
  agc_vision_tower_forward_top (emb, ft->acts, hidden, &w->top);
  agc_l2_normalize_forward_train (normed, emb, batch, e);

  // ---- backward: zero the gradients first, every backward adds ----
  float *grads[12 * 64 + 3];
  size_t sizes[12 * 64 + 3];
  int n_arrays = agc_finetune_weights_arrays (grads, sizes, NULL, g, c, e);
  for (int i = 0; i < n_arrays; i++)
    memset (grads[i], 0, sizes[i] * sizeof (float));
  double loss = agc_contrastive_loss_backward (dnormed, NULL, normed, text, labels,
                                               class_weights, ft->params.logit_scale, batch, e,
                                               n_classes);
  // normed = emb / ||emb||
  agc_l2_normalize_backward (demb, dnormed, emb, batch, e);
  agc_vision_tower_backward (&g->top, demb, ft->acts, &w->top);

  // ---- clip the global norm, as torch.nn.utils.clip_grad_norm_ ----
  const AgcAdamWParams *opt = &ft->params.adamw;
  double norm = agc_grad_norm (grads, sizes, n_arrays);
  if (grad_norm != NULL)
    *grad_norm = norm;
  agc_grad_scale (grads, sizes, n_arrays, agc_clip_factor (norm, opt->clip_norm));

  // ---- AdamW at the scheduled learning rate ----
  ft->step++;
  double lr = agc_adamw_lr (opt, ft->step);
  agc_trainable_adamw_step (ft->trainable, 0, ft->trainable->n, opt, lr, ft->step);
  g_free (scratch);
  return loss;
}

void
agc_finetune_interpolate (float *out, const float *original, const float *finetuned, size_t n,
                          double alpha)
{
  for (size_t i = 0; i < n; i++)
    out[i] = (float) ((1.0 - alpha) * original[i] + alpha * finetuned[i]);
}

/* ---- adapters' tensors ------------------------------------------------------------ */

void
agc_tensor_views_add (GArray *views, const char *name, const float *data, int64_t rows,
                      int64_t cols)
{
  AgcTensorView v = { .name = name, .dtype = AGC_DTYPE_F32, .n_dims = cols ? 2 : 1,
                      .shape = { rows, cols }, .data = (const guint8 *) data,
                      .n_bytes = (size_t) rows * (cols ? cols : 1) * sizeof (float) };
  g_array_append_val (views, v);
}

void
agc_block_tensors (AgcBlockTensor parts[AGC_BLOCK_TENSORS], const AgcBlock *b,
                   const AgcTowerConfig *config)
{
  int64_t d = config->width, m = config->mlp_width;
  const AgcBlockTensor all[AGC_BLOCK_TENSORS] = {
    { "layer_norm1.weight", b->ln1_weight, d, 0 },
    { "layer_norm1.bias", b->ln1_bias, d, 0 },
    // the fused qkv rows go back to HF's three tensors
    { "self_attn.q_proj.weight", b->qkv_weight, d, d },
    { "self_attn.k_proj.weight", b->qkv_weight + d * d, d, d },
    { "self_attn.v_proj.weight", b->qkv_weight + 2 * d * d, d, d },
    { "self_attn.q_proj.bias", b->qkv_bias, d, 0 },
    { "self_attn.k_proj.bias", b->qkv_bias + d, d, 0 },
    { "self_attn.v_proj.bias", b->qkv_bias + 2 * d, d, 0 },
    { "self_attn.out_proj.weight", b->out_weight, d, d },
    { "self_attn.out_proj.bias", b->out_bias, d, 0 },
    { "layer_norm2.weight", b->ln2_weight, d, 0 },
    { "layer_norm2.bias", b->ln2_bias, d, 0 },
    { "mlp.fc1.weight", b->fc1_weight, m, d },
    { "mlp.fc1.bias", b->fc1_bias, m, 0 },
    { "mlp.fc2.weight", b->fc2_weight, d, m },
    { "mlp.fc2.bias", b->fc2_bias, d, 0 },
  };
  memcpy (parts, all, sizeof all);
}

void
agc_block_tensor_views (GArray *views, GPtrArray *names, const AgcBlock *b,
                        const AgcTowerConfig *config, const char *prefix, int layer)
{
  AgcBlockTensor parts[AGC_BLOCK_TENSORS];
  agc_block_tensors (parts, b, config);
  for (size_t i = 0; i < AGC_BLOCK_TENSORS; i++)
    {
      char *name = g_strdup_printf ("%s.%d.%s", prefix, layer, parts[i].suffix);
      g_ptr_array_add (names, name);
      agc_tensor_views_add (views, name, parts[i].data, parts[i].rows, parts[i].cols);
    }
}

const AgcTowerNames agc_vision_tower_names = {
  "vision_model.encoder.layers", "vision_model.post_layernorm.weight",
  "vision_model.post_layernorm.bias", "visual_projection.weight"
};
const AgcTowerNames agc_text_tower_names = {
  "text_model.encoder.layers", "text_model.final_layer_norm.weight",
  "text_model.final_layer_norm.bias", "text_projection.weight"
};

void
agc_tower_top_tensor_views (GArray *views, GPtrArray *names, const AgcTowerNames *hf,
                            const AgcTowerConfig *config, const AgcBlock *blocks, int n_blocks,
                            int first_layer, const float *norm_weight, const float *norm_bias,
                            const float *projection, int64_t embed_dim)
{
  int64_t d = config->width;
  for (int k = 0; k < n_blocks; k++)
    agc_block_tensor_views (views, names, &blocks[k], config, hf->layers, first_layer + k);
  agc_tensor_views_add (views, hf->norm_weight, norm_weight, d, 0);
  agc_tensor_views_add (views, hf->norm_bias, norm_bias, d, 0);
  agc_tensor_views_add (views, hf->projection, projection, embed_dim, d);
}

/* ---- training a tower's top ------------------------------------------------------ */

AgcAdamWParams
agc_top_adamw (const AgcTrainParams *p, int batches_per_epoch)
{
  AgcAdamWParams opt = agc_adamw_params (p->learning_rate, p->weight_decay);
  opt.total_steps = MAX (p->max_epochs * batches_per_epoch, 1);
  // a fraction of the steps below 1, else a count
  opt.warmup_steps = p->finetune_warmup < 1.0
                         ? (int) lround (p->finetune_warmup * opt.total_steps)
                         : (int) MIN (p->finetune_warmup, (double) opt.total_steps);
  opt.clip_norm = 1.0;
  return opt;
}

void
agc_top_fingerprint (GString *text, const AgcTrainParams *p)
{
  g_string_append_printf (text, "blocks %d\nwarmup %a\nmax_epochs %d\n", p->finetune_blocks,
                          p->finetune_warmup, p->max_epochs);
}

/* ---- checkpoints ---------------------------------------------------------------- */

enum
{
  MAX_ARRAYS = 12 * 64 + 3,
  N_RUN = 6, // epoch, batch_done, loss_sum, best_epoch, best_val_loss, step
};

static const char *const set_names[4] = { "weights", "m", "v", "best" };

// The four sets of a checkpoint, in file order, all in the weights'
// layout: arrays[s][i] gets array i of set s; returns the count.
static int
checkpoint_sets (float *arrays[4][MAX_ARRAYS], size_t *sizes, AgcFinetune *ft,
                 AgcFinetuneWeights *best)
{
  AgcTrainable *t = ft->trainable;
  float *bases[4] = { t->weights, t->m, t->v, best->memory };
  float *layout[MAX_ARRAYS];
  int n = agc_finetune_weights_arrays (layout, sizes, NULL, ft->weights, &ft->config,
                                       ft->embed_dim);
  for (int s = 0; s < 4; s++)
    for (int i = 0; i < n; i++)
      arrays[s][i] = bases[s] + AGC_TRAINABLE_AT (t, layout[i]);
  return n;
}

gboolean
agc_finetune_checkpoint_write (const char *path, AgcFinetune *ft, AgcFinetuneWeights *best,
                               const AgcTrainerRun *run, const AgcFinetuneRun *in_epoch,
                               const char *fingerprint, GError **error)
{
  float *arrays[4][MAX_ARRAYS];
  size_t sizes[MAX_ARRAYS];
  int n_arrays = checkpoint_sets (arrays, sizes, ft, best);
  GArray *views = g_array_new (FALSE, TRUE, sizeof (AgcTensorView));
  GPtrArray *names = g_ptr_array_new_with_free_func (g_free);
  double numbers[N_RUN] = { run->epoch, in_epoch->batch_done, in_epoch->loss_sum, run->best_epoch,
                            run->best_val_loss, (double) ft->step };
  AgcTensorView v = { .name = "run", .dtype = AGC_DTYPE_F64, .n_dims = 1, .shape = { N_RUN },
                      .data = (const guint8 *) numbers, .n_bytes = sizeof numbers };
  g_array_append_val (views, v);
  for (int s = 0; s < 4; s++)
    {
      for (int i = 0; i < n_arrays; i++)
        {
          char *name = g_strdup_printf ("%s.%d", set_names[s], i);
          g_ptr_array_add (names, name);
          v = (AgcTensorView){ .name = name, .dtype = AGC_DTYPE_F32, .n_dims = 1,
                               .shape = { (int64_t) sizes[i] },
                               .data = (const guint8 *) arrays[s][i],
                               .n_bytes = sizes[i] * sizeof (float) };
          g_array_append_val (views, v);
        }
    }
  g_autoptr (GHashTable) meta = agc_checkpoint_metadata_new ("finetune", fingerprint);
  gboolean ok = agc_safetensors_write (path, (const AgcTensorView *) views->data, (int) views->len,
                                       meta, TRUE, error);
  g_ptr_array_unref (names);
  g_array_unref (views);
  return ok;
}

static gboolean
read_parts (AgcFinetune *ft, AgcFinetuneWeights *best, AgcTrainerRun *run,
            AgcFinetuneRun *in_epoch, const AgcSafetensors *file, const char **reason)
{
  const AgcTensorView *t = agc_safetensors_find (file, "run");
  if (t == NULL || t->dtype != AGC_DTYPE_F64 || t->n_dims != 1 || t->shape[0] != N_RUN)
    return *reason = "its run state is missing", FALSE;
  double numbers[N_RUN];
  memcpy (numbers, t->data, sizeof numbers);
  run->epoch = (int) numbers[0];
  *in_epoch = (AgcFinetuneRun){ .batch_done = (int) numbers[1], .loss_sum = numbers[2] };
  run->best_epoch = (int) numbers[3];
  run->best_val_loss = numbers[4];
  ft->step = (gint64) numbers[5];
  float *arrays[4][MAX_ARRAYS];
  size_t sizes[MAX_ARRAYS];
  int n = checkpoint_sets (arrays, sizes, ft, best);
  for (int s = 0; s < 4; s++)
    {
      for (int i = 0; i < n; i++)
        {
          g_autofree char *name = g_strdup_printf ("%s.%d", set_names[s], i);
          t = agc_safetensors_find (file, name);
          if (t == NULL || t->dtype != AGC_DTYPE_F32 || t->n_dims != 1
              || t->shape[0] != (int64_t) sizes[i])
            return *reason = "its tensors do not fit these settings", FALSE;
          memcpy (arrays[s][i], t->data, sizes[i] * sizeof (float));
        }
    }
  return TRUE;
}

gboolean
agc_finetune_checkpoint_read (const char *path, AgcFinetune *ft, AgcFinetuneWeights *best,
                              AgcTrainerRun *run, AgcFinetuneRun *in_epoch,
                              const char *fingerprint, GError **error)
{
  AgcSafetensors *file = agc_checkpoint_open (path, "finetune", fingerprint, error);
  if (file == NULL)
    return FALSE;
  const char *reason = NULL;
  gboolean ok = read_parts (ft, best, run, in_epoch, file, &reason);
  agc_safetensors_free (file);
  if (!ok)
    agc_checkpoint_refuse (error, path, reason);
  return ok;
}
