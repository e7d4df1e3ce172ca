/* clip-train.c — the parameters of a whole CLIP, their initialisation, and
 * one training step over shards of the batch (clip-train.h). */
#include "train/clip-train.h"

#include "nn/backward.h"
#include "kernels/ops.h"
#include "kernels/threads.h"

#include <math.h>
#include <string.h>

enum
{
  SEEN_EVER = 1, // token_seen flags
  SEEN_NOW = 2,
};

#define MAX_LOG_SCALE 4.605170185988091 // ln 100, CLIP's clamp

/* ---- parameters ----------------------------------------------------------- */

// takes every array of p from k, the token table last
static void
carve_params (AgcClipParams *p, AgcCarver *k)
{
  const AgcClipConfig *c = &p->config;
  agc_vision_params_carve (&p->vision, k, &c->vision, c->projection_dim, c->vision.layers, TRUE);
  agc_text_params_carve (&p->text, k, &c->text, c->projection_dim, c->text.layers, TRUE);
  p->log_scale = agc_carve_take (k, 1);
  p->n_dense = k->n_floats;
  p->text.token_embedding
    = agc_carve_take (k, (size_t) c->text.vocab_size * c->text.width);
}

AgcClipParams *
agc_clip_params_new (const AgcClipConfig *config)
{
  g_return_val_if_fail (config != NULL, NULL);
  AgcClipParams *p = g_new0 (AgcClipParams, 1);
  p->config = *config;
  p->vision.blocks = g_new0 (AgcBlock, MAX (config->vision.layers, 1));
  p->text.blocks = g_new0 (AgcBlock, MAX (config->text.layers, 1));
  AgcCarver k = { 0 };
  carve_params (p, &k);
  p->memory = agc_carver_allocate (&k);
  carve_params (p, &k);
  return p;
}

void
agc_clip_params_free (AgcClipParams *p)
{
  if (p == NULL)
    return;
  g_free (p->vision.blocks);
  g_free (p->text.blocks);
  g_free (p->memory);
  g_free (p);
}

int
agc_clip_params_n_tensors (const AgcClipConfig *config)
{
  return 16 * (config->vision.layers + config->text.layers) + 14;
}

typedef struct
{
  AgcClipTensor *t;
  int n;
} Table;

static void
add (Table *table, float *data, gboolean decay, int n_dims, const int64_t *shape,
     const char *format, ...) G_GNUC_PRINTF (6, 7);

static void
add (Table *table, float *data, gboolean decay, int n_dims, const int64_t *shape,
     const char *format, ...)
{
  AgcClipTensor *t = &table->t[table->n++];
  va_list args;
  va_start (args, format);
  g_vsnprintf (t->name, sizeof t->name, format, args);
  va_end (args);
  t->data = data;
  t->decay = decay;
  t->n_dims = n_dims;
  t->size = 1;
  for (int i = 0; i < n_dims; i++)
    {
      t->shape[i] = shape[i];
      t->size *= shape[i];
    }
}

#define SHAPE(...) ((const int64_t[]){ __VA_ARGS__ })

static void
add_blocks (Table *table, AgcBlock *blocks, const AgcTowerConfig *c, const char *tower)
{
  int64_t d = c->width, m = c->mlp_width;
  static const char *const qkv[3] = { "q", "k", "v" };
  for (int l = 0; l < c->layers; l++)
    {
      AgcBlock *b = &blocks[l];
      char p[48];
      g_snprintf (p, sizeof p, "%s.encoder.layers.%d.", tower, l);
      add (table, b->ln1_weight, FALSE, 1, SHAPE (d), "%slayer_norm1.weight", p);
      add (table, b->ln1_bias, FALSE, 1, SHAPE (d), "%slayer_norm1.bias", p);
      for (int i = 0; i < 3; i++) // rows q, k, v of the fused arrays
        {
          add (table, b->qkv_weight + i * d * d, TRUE, 2, SHAPE (d, d),
               "%sself_attn.%s_proj.weight", p, qkv[i]);
          add (table, b->qkv_bias + i * d, FALSE, 1, SHAPE (d), "%sself_attn.%s_proj.bias", p,
               qkv[i]);
        }
      add (table, b->out_weight, TRUE, 2, SHAPE (d, d), "%sself_attn.out_proj.weight", p);
      add (table, b->out_bias, FALSE, 1, SHAPE (d), "%sself_attn.out_proj.bias", p);
      add (table, b->ln2_weight, FALSE, 1, SHAPE (d), "%slayer_norm2.weight", p);
      add (table, b->ln2_bias, FALSE, 1, SHAPE (d), "%slayer_norm2.bias", p);
      add (table, b->fc1_weight, TRUE, 2, SHAPE (m, d), "%smlp.fc1.weight", p);
      add (table, b->fc1_bias, FALSE, 1, SHAPE (m), "%smlp.fc1.bias", p);
      add (table, b->fc2_weight, TRUE, 2, SHAPE (d, m), "%smlp.fc2.weight", p);
      add (table, b->fc2_bias, FALSE, 1, SHAPE (d), "%smlp.fc2.bias", p);
    }
}

int
agc_clip_params_tensors (AgcClipTensor *tensors, const AgcClipParams *p)
{
  const AgcTowerConfig *vc = &p->config.vision, *tc = &p->config.text;
  int64_t d = vc->width, w = tc->width, e = p->config.projection_dim, ps = vc->patch_size;
  int64_t grid = vc->image_size / vc->patch_size;
  Table t = { tensors, 0 };
  add (&t, p->vision.patch_weight, TRUE, 4, SHAPE (d, 3, ps, ps),
       "vision_model.embeddings.patch_embedding.weight");
  add (&t, p->vision.class_embedding, FALSE, 1, SHAPE (d), "vision_model.embeddings.class_embedding");
  add (&t, p->vision.position, FALSE, 2, SHAPE (grid * grid + 1, d),
       "vision_model.embeddings.position_embedding.weight");
  add (&t, p->vision.pre_ln_weight, FALSE, 1, SHAPE (d), "vision_model.pre_layrnorm.weight");
  add (&t, p->vision.pre_ln_bias, FALSE, 1, SHAPE (d), "vision_model.pre_layrnorm.bias");
  add_blocks (&t, p->vision.blocks, vc, "vision_model");
  add (&t, p->vision.post_ln_weight, FALSE, 1, SHAPE (d), "vision_model.post_layernorm.weight");
  add (&t, p->vision.post_ln_bias, FALSE, 1, SHAPE (d), "vision_model.post_layernorm.bias");
  add (&t, p->vision.projection, TRUE, 2, SHAPE (e, d), "visual_projection.weight");
  add (&t, p->text.position, FALSE, 2, SHAPE (tc->context_length, w),
       "text_model.embeddings.position_embedding.weight");
  add_blocks (&t, p->text.blocks, tc, "text_model");
  add (&t, p->text.final_ln_weight, FALSE, 1, SHAPE (w), "text_model.final_layer_norm.weight");
  add (&t, p->text.final_ln_bias, FALSE, 1, SHAPE (w), "text_model.final_layer_norm.bias");
  add (&t, p->text.projection, TRUE, 2, SHAPE (e, w), "text_projection.weight");
  add (&t, p->log_scale, FALSE, 0, NULL, "logit_scale");
  // last, as in memory: the dense tensors are those before it
  add (&t, p->text.token_embedding, FALSE, 2, SHAPE (tc->vocab_size, w),
       "text_model.embeddings.token_embedding.weight");
  g_assert (t.n == agc_clip_params_n_tensors (&p->config));
  return t.n;
}

static void
fill_normal (float *x, size_t n, double std, GRand *rng)
{
  // Box-Muller on GRand's Mersenne twister: the same numbers on every platform
  for (size_t i = 0; i < n; i += 2)
    {
      double u1 = 1.0 - g_rand_double (rng), u2 = g_rand_double (rng);
      double r = sqrt (-2.0 * log (u1)) * std;
      x[i] = (float) (r * cos (2.0 * G_PI * u2));
      if (i + 1 < n)
        x[i + 1] = (float) (r * sin (2.0 * G_PI * u2));
    }
}

static void
init_blocks (AgcBlock *blocks, const AgcTowerConfig *c, GRand *rng)
{
  double d = c->width;
  double attn_std = pow (d, -0.5), proj_std = attn_std * pow (2.0 * c->layers, -0.5);
  double fc_std = pow (2.0 * d, -0.5);
  for (int l = 0; l < c->layers; l++)
    {
      AgcBlock *b = &blocks[l];
      size_t dd = (size_t) c->width * c->width, md = (size_t) c->mlp_width * c->width;
      for (int i = 0; i < c->width; i++)
        b->ln1_weight[i] = b->ln2_weight[i] = 1.0f;
      fill_normal (b->qkv_weight, 3 * dd, attn_std, rng);
      fill_normal (b->out_weight, dd, proj_std, rng);
      fill_normal (b->fc1_weight, md, fc_std, rng);
      fill_normal (b->fc2_weight, md, proj_std, rng);
    }
}

void
agc_clip_params_init (AgcClipParams *p, guint64 seed)
{
  g_return_if_fail (p != NULL);
  const AgcTowerConfig *vc = &p->config.vision, *tc = &p->config.text;
  size_t d = vc->width, w = tc->width, e = p->config.projection_dim;
  size_t grid = vc->image_size / vc->patch_size, pp = (size_t) 3 * vc->patch_size * vc->patch_size;
  memset (p->memory, 0, (p->n_dense + (size_t) tc->vocab_size * w) * sizeof (float));
  guint32 seed_words[2] = { (guint32) seed, (guint32) (seed >> 32) };
  GRand *rng = g_rand_new_with_seed_array (seed_words, 2);
  double scale_v = pow ((double) d, -0.5), scale_t = pow ((double) w, -0.5);

  fill_normal (p->vision.patch_weight, d * pp, sqrt (1.0 / (3.0 * pp)), rng);
  fill_normal (p->vision.class_embedding, d, scale_v, rng);
  fill_normal (p->vision.position, (grid * grid + 1) * d, scale_v, rng);
  for (size_t i = 0; i < d; i++)
    p->vision.pre_ln_weight[i] = p->vision.post_ln_weight[i] = 1.0f;
  init_blocks (p->vision.blocks, vc, rng);
  fill_normal (p->vision.projection, e * d, scale_v, rng);

  fill_normal (p->text.token_embedding, (size_t) tc->vocab_size * w, 0.02, rng);
  fill_normal (p->text.position, (size_t) tc->context_length * w, 0.01, rng);
  init_blocks (p->text.blocks, tc, rng);
  for (size_t i = 0; i < w; i++)
    p->text.final_ln_weight[i] = 1.0f;
  fill_normal (p->text.projection, e * w, scale_t, rng);
  *p->log_scale = (float) log (1.0 / 0.07);
  g_rand_free (rng);
}

/* ---- training ---------------------------------------------------------------- */

struct AgcClipShard
{
  int begin, count;          // samples [begin, begin + count) of the batch
  AgcVisionActs *vision;
  AgcTextActs *text;
  AgcClipParams *grads;      // dense part used; its token table stays untouched
  const float *dtokens;      // [n_token_rows, W] from agc_text_tower_backward
  const int32_t *token_ids;  // [n_token_rows]
  int n_token_rows;
};

typedef struct
{
  AgcClipTrain *t;
  const float *pixels;  // [B, 3, S, S]
  const int32_t *ids;   // [B, ctx]
  float *image_emb;     // [B, E]
  float *text_emb;      // [B, E]
  const float *dimage;  // [B, E]
  const float *dtext;   // [B, E]
} StepCtx;

static void
shard_free (AgcClipShard *s)
{
  if (s == NULL)
    return;
  agc_tower_acts_free (s->vision);
  agc_tower_acts_free (s->text);
  agc_clip_params_free (s->grads);
  g_free (s);
}

AgcClipTrain *
agc_clip_train_new (AgcClipParams *weights, const AgcAdamWParams *opt, int n_shards)
{
  g_return_val_if_fail (weights != NULL && opt != NULL, NULL);
  AgcClipTrain *t = g_new0 (AgcClipTrain, 1);
  t->config = weights->config;
  t->opt = *opt;
  t->weights = weights;
  t->grads = agc_clip_params_new (&t->config);
  size_t n = weights->n_dense + (size_t) t->config.text.vocab_size * t->config.text.width;
  t->trainable = agc_trainable_new (weights->memory, t->grads->memory, n);
  int n_tensors = agc_clip_params_n_tensors (&t->config);
  AgcClipTensor *tensors = g_new (AgcClipTensor, n_tensors);
  agc_clip_params_tensors (tensors, weights);
  for (int i = 0; i < n_tensors; i++)
    for (size_t j = 0; j < tensors[i].size; j++)
      t->trainable->decay[AGC_TRAINABLE_AT (t->trainable, tensors[i].data) + j] = tensors[i].decay;
  g_free (tensors);
  t->n_shards = n_shards > 0 ? n_shards : agc_threads_count ();
  t->shards = g_new0 (AgcClipShard *, t->n_shards);
  t->token_seen = g_new0 (guint8, t->config.text.vocab_size);
  t->seen_rows = g_array_new (FALSE, FALSE, sizeof (int));
  t->step_rows = g_array_new (FALSE, FALSE, sizeof (int));
  return t;
}

void
agc_clip_train_free (AgcClipTrain *t)
{
  if (t == NULL)
    return;
  for (int s = 0; s < t->n_shards; s++)
    shard_free (t->shards[s]);
  g_free (t->shards);
  agc_clip_params_free (t->weights);
  agc_trainable_free (t->trainable);
  agc_clip_params_free (t->grads);
  g_free (t->token_seen);
  g_array_unref (t->seen_rows);
  g_array_unref (t->step_rows);
  g_free (t);
}

// shards for this batch size (a smaller last batch gets new ones)
static void
size_shards (AgcClipTrain *t, int batch)
{
  int n = MIN (t->n_shards, batch);
  for (int s = 0; s < t->n_shards; s++)
    {
      int begin = (int) ((gint64) s * batch / n), end = (int) ((gint64) (s + 1) * batch / n);
      AgcClipShard *sh = t->shards[s];
      if (s >= n)
        {
          shard_free (sh);
          t->shards[s] = NULL;
          continue;
        }
      if (sh != NULL && sh->count == end - begin)
        {
          sh->begin = begin;
          continue;
        }
      shard_free (sh);
      sh = t->shards[s] = g_new0 (AgcClipShard, 1);
      sh->begin = begin;
      sh->count = end - begin;
      sh->vision = agc_vision_acts_new (&t->config, sh->count);
      sh->text = agc_text_acts_new (&t->config, sh->count);
      sh->grads = agc_clip_params_new (&t->config);
    }
}

static void
shards_forward (void *ctx, int begin, int end, int thread)
{
  (void) thread;
  StepCtx *c = ctx;
  const AgcClipConfig *cfg = &c->t->config;
  size_t e = cfg->projection_dim, s2 = (size_t) cfg->vision.image_size * cfg->vision.image_size;
  for (int i = begin; i < end; i++)
    {
      AgcClipShard *sh = c->t->shards[i];
      if (sh == NULL)
        continue;
      agc_vision_tower_forward_train (c->image_emb + sh->begin * e, sh->vision,
                                      c->pixels + (size_t) sh->begin * 3 * s2,
                                      &c->t->weights->vision);
      agc_text_tower_forward_train (c->text_emb + sh->begin * e, sh->text,
                                    c->ids + (size_t) sh->begin * cfg->text.context_length,
                                    &c->t->weights->text);
    }
}

static void
shards_backward (void *ctx, int begin, int end, int thread)
{
  (void) thread;
  StepCtx *c = ctx;
  size_t e = c->t->config.projection_dim;
  for (int i = begin; i < end; i++)
    {
      AgcClipShard *sh = c->t->shards[i];
      if (sh == NULL)
        continue;
      memset (sh->grads->memory, 0, sh->grads->n_dense * sizeof (float));
      agc_vision_tower_backward (&sh->grads->vision, c->dimage + sh->begin * e, sh->vision,
                                 &c->t->weights->vision);
      agc_text_tower_backward (&sh->grads->text, c->dtext + sh->begin * e, sh->text,
                               &c->t->weights->text, &sh->dtokens, &sh->token_ids,
                               &sh->n_token_rows);
    }
}

// runs fn on every shard, in parallel with single-threaded BLAS when several
static void
run_shards (AgcClipTrain *t, AgcRangeFn fn, StepCtx *ctx)
{
  if (t->n_shards == 1)
    {
      fn (ctx, 0, 1, 0);
      return;
    }
  agc_threads_blas_serial_begin ();
  agc_parallel_for (t->n_shards, 1, fn, ctx);
  agc_threads_blas_serial_end ();
}

// t->grads = the shards' sum; the token rows of this step (t->step_rows)
// get the scattered gradients of the looked-up embeddings
static void
reduce_grads (AgcClipTrain *t, float dlog_scale)
{
  AgcClipParams *g = t->grads;
  size_t w = t->config.text.width;
  memset (g->memory, 0, g->n_dense * sizeof (float));
  for (int s = 0; s < t->n_shards; s++)
    if (t->shards[s] != NULL)
      {
        const float *src = t->shards[s]->grads->memory;
        for (size_t i = 0; i < g->n_dense; i++)
          g->memory[i] += src[i];
      }
  *g->log_scale += dlog_scale;
  // clear the previous step's rows, then scatter this step's
  for (guint i = 0; i < t->step_rows->len; i++)
    {
      int row = g_array_index (t->step_rows, int, i);
      memset (g->text.token_embedding + row * w, 0, w * sizeof (float));
      t->token_seen[row] &= ~SEEN_NOW;
    }
  g_array_set_size (t->step_rows, 0);
  for (int s = 0; s < t->n_shards; s++)
    {
      AgcClipShard *sh = t->shards[s];
      if (sh == NULL)
        continue;
      for (int r = 0; r < sh->n_token_rows; r++)
        {
          int id = sh->token_ids[r];
          if (!(t->token_seen[id] & SEEN_NOW))
            g_array_append_val (t->step_rows, id);
          if (!(t->token_seen[id] & SEEN_EVER))
            g_array_append_val (t->seen_rows, id);
          t->token_seen[id] |= SEEN_NOW | SEEN_EVER;
        }
      agc_embedding_backward (g->text.token_embedding, sh->dtokens, sh->token_ids, sh->n_token_rows,
                              (int) w);
    }
}

double
agc_clip_train_step (AgcClipTrain *t, double *grad_norm, const float *pixels, const int32_t *ids,
                     int batch)
{
  g_return_val_if_fail (t != NULL && pixels != NULL && ids != NULL && batch > 0, 0.0);
  const AgcClipConfig *cfg = &t->config;
  int e = cfg->projection_dim;
  size_t w = cfg->text.width, be = (size_t) batch * e;
  size_shards (t, batch);

  float *scratch = g_new0 (float, 8 * be);
  float *image_emb = scratch, *text_emb = image_emb + be, *image_n = text_emb + be;
  float *text_n = image_n + be, *dimage_n = text_n + be, *dtext_n = dimage_n + be;
  float *dimage = dtext_n + be, *dtext = dimage + be;
  StepCtx ctx = { .t = t, .pixels = pixels, .ids = ids, .image_emb = image_emb,
                  .text_emb = text_emb, .dimage = dimage, .dtext = dtext };

  // ---- forward, per shard; the loss over the whole batch ----
  run_shards (t, shards_forward, &ctx);
  agc_l2_normalize_forward_train (image_n, image_emb, batch, e);
  agc_l2_normalize_forward_train (text_n, text_emb, batch, e);
  float dlog_scale = 0.0f;
  double loss = agc_clip_loss_backward (dimage_n, dtext_n, &dlog_scale, image_n, text_n,
                                        *t->weights->log_scale, batch, e);
  // image_n = image_emb / ||image_emb||, text_n likewise
  agc_l2_normalize_backward (dimage, dimage_n, image_emb, batch, e);
  agc_l2_normalize_backward (dtext, dtext_n, text_emb, batch, e);

  // ---- backward, per shard; sum ----
  run_shards (t, shards_backward, &ctx);
  reduce_grads (t, dlog_scale);
  g_free (scratch);

  // ---- clip the global norm, as torch.nn.utils.clip_grad_norm_ ----
  // the gradient arrays: the dense ones, then this step's token rows
  AgcClipParams *g = t->grads;
  int n_arrays = 1 + (int) t->step_rows->len;
  float **arrays = g_new (float *, n_arrays);
  size_t *sizes = g_new (size_t, n_arrays);
  arrays[0] = g->memory, sizes[0] = g->n_dense;
  for (guint i = 0; i < t->step_rows->len; i++)
    arrays[1 + i] = g->text.token_embedding + g_array_index (t->step_rows, int, i) * w, sizes[1 + i] = w;
  double norm = agc_grad_norm (arrays, sizes, n_arrays);
  if (grad_norm != NULL)
    *grad_norm = norm;
  // rounded to float as torch's float32 coefficient: a float times it is
  // exact in double, so the scaling is float arithmetic
  agc_grad_scale (arrays, sizes, n_arrays, (float) agc_clip_factor (norm, t->opt.clip_norm));
  g_free (sizes);
  g_free (arrays);

  // ---- AdamW at the scheduled learning rate, on clipped gradients ----
  t->step++;
  double lr = agc_adamw_lr (&t->opt, t->step);
  agc_trainable_adamw_step (t->trainable, 0, t->weights->n_dense, &t->opt, lr, t->step);
  // the token table: rows never used have zero moments and gradient, and no
  // decay, so AdamW would leave them as they are
  for (guint i = 0; i < t->seen_rows->len; i++)
    {
      size_t at = (size_t) g_array_index (t->seen_rows, int, i) * w;
      at += AGC_TRAINABLE_AT (t->trainable, t->weights->text.token_embedding);
      agc_trainable_adamw_step (t->trainable, at, at + w, &t->opt, lr, t->step);
    }
  // CLIP clamps the learned temperature after each step
  float *log_scale = t->weights->log_scale;
  *log_scale = CLAMP (*log_scale, 0.0f, (float) MAX_LOG_SCALE);
  return loss;
}

/* ---- checkpoints ---------------------------------------------------------------- */

void
agc_clip_train_seen_rows (guint8 *seen, const AgcClipTrain *t)
{
  g_return_if_fail (t != NULL && seen != NULL);
  for (int i = 0; i < t->config.text.vocab_size; i++)
    seen[i] = (t->token_seen[i] & SEEN_EVER) != 0;
}

void
agc_clip_train_restore (AgcClipTrain *t, gint64 step, const guint8 *seen)
{
  g_return_if_fail (t != NULL && seen != NULL && step >= 0);
  t->step = step;
  // the order of seen_rows does not matter: AdamW treats each row alone.
  // The gradients start from zero, so no row is pending from a last step.
  g_array_set_size (t->seen_rows, 0);
  g_array_set_size (t->step_rows, 0);
  memset (t->grads->memory, 0,
          (t->grads->n_dense + (size_t) t->config.text.vocab_size * t->config.text.width)
            * sizeof (float));
  for (int i = 0; i < t->config.text.vocab_size; i++)
    {
      t->token_seen[i] = seen[i] ? SEEN_EVER : 0;
      if (seen[i])
        g_array_append_val (t->seen_rows, i);
    }
}
