/* contrastive.c — one contrastive step of both towers' tops (contrastive.h):
 * the towers' training forwards and backwards for their tops
 * (vision-tower.h, text-tower.h), CLIP's symmetric loss, then the
 * optimiser (optimizer.h): clipping, AdamW, the scale's clamp. */
#include "train/contrastive.h"

#include "nn/backward.h"
#include "train/finetune.h"

#include <math.h>
#include <string.h>

#define MAX_LOG_SCALE 4.605170185988091 // ln 100, CLIP's clamp (clip-train.c)

// takes every array of w from k, in the order of the struct
static void
carve (AgcContrastiveWeights *w, AgcCarver *k, const AgcContrastiveShape *s)
{
  agc_vision_params_carve (&w->vision, k, &s->vision, s->embed_dim, s->vision.layers, FALSE);
  agc_text_params_carve (&w->text, k, &s->text, s->embed_dim, s->text.layers, FALSE);
  w->log_scale = agc_carve_take (k, 1);
  w->n_floats = k->n_floats;
}

AgcContrastiveWeights *
agc_contrastive_weights_new (const AgcContrastiveShape *shape)
{
  AgcContrastiveWeights *w = g_new0 (AgcContrastiveWeights, 1);
  w->vision.blocks = g_new0 (AgcBlock, MAX (shape->vision.layers, 1));
  w->text.blocks = g_new0 (AgcBlock, MAX (shape->text.layers, 1));
  AgcCarver k = { 0 };
  carve (w, &k, shape);
  w->memory = agc_carver_allocate (&k);
  carve (w, &k, shape);
  return w;
}

void
agc_contrastive_weights_free (AgcContrastiveWeights *w)
{
  if (w == NULL)
    return;
  g_free (w->vision.blocks);
  g_free (w->text.blocks);
  g_free (w->memory);
  g_free (w);
}

void
agc_contrastive_weights_copy (AgcContrastiveWeights *dst, const AgcContrastiveWeights *src)
{
  g_return_if_fail (dst->n_floats == src->n_floats);
  memcpy (dst->memory, src->memory, src->n_floats * sizeof (float));
}

int
agc_contrastive_weights_arrays (float **arrays, size_t *sizes, gboolean *decays,
                                AgcContrastiveWeights *w, const AgcContrastiveShape *s)
{
  int n = agc_tower_top_arrays (arrays, sizes, decays, w->vision.blocks, s->vision.layers,
                                &s->vision, w->vision.post_ln_weight, w->vision.post_ln_bias,
                                w->vision.projection, s->embed_dim);
  n += agc_tower_top_arrays (arrays + n, sizes + n, decays != NULL ? decays + n : NULL,
                             w->text.blocks, s->text.layers, &s->text, w->text.final_ln_weight,
                             w->text.final_ln_bias, w->text.projection, s->embed_dim);
  arrays[n] = w->log_scale;
  sizes[n] = 1;
  if (decays != NULL)
    decays[n] = FALSE;
  return n + 1;
}

AgcContrastive *
agc_contrastive_new (const AgcContrastiveShape *shape, const AgcContrastiveWeights *start,
                     const AgcAdamWParams *adamw)
{
  g_return_val_if_fail (shape != NULL && start != NULL && adamw != NULL, NULL);
  g_return_val_if_fail (shape->vision.layers <= 64 && shape->text.layers <= 64, NULL);
  AgcContrastive *cs = g_new0 (AgcContrastive, 1);
  cs->shape = *shape;
  cs->adamw = *adamw;
  cs->weights = agc_contrastive_weights_new (shape);
  cs->grads = agc_contrastive_weights_new (shape);
  agc_contrastive_weights_copy (cs->weights, start);
  cs->trainable = agc_trainable_new (cs->weights->memory, cs->grads->memory,
                                     cs->weights->n_floats);
  // matrices decay; biases, norm weights and the scale do not
  float *arrays[AGC_CONTRASTIVE_MAX_ARRAYS];
  size_t sizes[AGC_CONTRASTIVE_MAX_ARRAYS];
  gboolean decays[AGC_CONTRASTIVE_MAX_ARRAYS];
  int n_arrays = agc_contrastive_weights_arrays (arrays, sizes, decays, cs->weights, shape);
  for (int i = 0; i < n_arrays; i++)
    for (size_t j = 0; j < sizes[i]; j++)
      cs->trainable->decay[AGC_TRAINABLE_AT (cs->trainable, arrays[i]) + j] = decays[i];
  return cs;
}

void
agc_contrastive_free (AgcContrastive *cs)
{
  if (cs == NULL)
    return;
  agc_tower_acts_free (cs->vision_acts);
  agc_tower_acts_free (cs->text_acts);
  agc_contrastive_weights_free (cs->weights);
  agc_contrastive_weights_free (cs->grads);
  agc_trainable_free (cs->trainable);
  g_free (cs);
}

static void
size_acts (AgcContrastive *cs, int batch)
{
  if (cs->vision_acts != NULL && cs->batch == batch)
    return;
  const AgcContrastiveShape *s = &cs->shape;
  agc_tower_acts_free (cs->vision_acts);
  agc_tower_acts_free (cs->text_acts);
  cs->vision_acts = agc_vision_acts_new_top (&s->vision, s->embed_dim, s->vision.layers, batch,
                                             s->image_tokens);
  cs->text_acts = agc_text_acts_new_top (&s->text, s->embed_dim, s->text.layers, batch);
  cs->batch = batch;
}

void
agc_contrastive_embed (AgcContrastive *cs, const AgcContrastiveWeights *w, float *image_out,
                       const float *image_hidden, float *text_out, const float *text_hidden,
                       const int *text_lengths, int batch)
{
  g_return_if_fail (cs != NULL && w != NULL && batch > 0);
  int e = cs->shape.embed_dim;
  size_acts (cs, batch);
  float *emb = g_new (float, (size_t) batch * e);
  if (image_out != NULL)
    {
      agc_vision_tower_forward_top (emb, cs->vision_acts, image_hidden, &w->vision);
      agc_l2_normalize_forward_train (image_out, emb, batch, e);
    }
  if (text_out != NULL)
    {
      agc_text_tower_forward_top (emb, cs->text_acts, text_hidden, text_lengths, &w->text);
      agc_l2_normalize_forward_train (text_out, emb, batch, e);
    }
  g_free (emb);
}

double
agc_contrastive_step (AgcContrastive *cs, double *grad_norm, const float *image_hidden,
                      const float *text_hidden, const int *text_lengths, int batch)
{
  g_return_val_if_fail (cs != NULL && image_hidden != NULL && text_hidden != NULL && batch > 0,
                        0.0);
  const AgcContrastiveShape *s = &cs->shape;
  AgcContrastiveWeights *w = cs->weights, *g = cs->grads;
  int e = s->embed_dim;
  size_t be = (size_t) batch * e;
  size_acts (cs, batch);

  // the embeddings before and after L2, and their gradients [B, E]
  float *scratch = g_new0 (float, 8 * be);
  float *image_emb = scratch, *text_emb = image_emb + be, *image_n = text_emb + be;
  float *text_n = image_n + be, *dimage_n = text_n + be, *dtext_n = dimage_n + be;
  float *dimage = dtext_n + be, *dtext = dimage + be;

  // ---- forward: both tops, L2, the loss over the batch ----
  agc_vision_tower_forward_top (image_emb, cs->vision_acts, image_hidden, &w->vision);
  agc_text_tower_forward_top (text_emb, cs->text_acts, text_hidden, text_lengths, &w->text);
  agc_l2_normalize_forward_train (image_n, image_emb, batch, e);
  agc_l2_normalize_forward_train (text_n, text_emb, batch, e);

  // ---- backward: zero the gradients first, every backward adds ----
  memset (g->memory, 0, g->n_floats * sizeof (float));
  float dlog_scale = 0.0f;
  double loss = agc_clip_loss_backward (dimage_n, dtext_n, &dlog_scale, image_n, text_n,
                                        *w->log_scale, batch, e);
  *g->log_scale = dlog_scale;
  agc_l2_normalize_backward (dimage, dimage_n, image_emb, batch, e);
  agc_l2_normalize_backward (dtext, dtext_n, text_emb, batch, e);
  agc_vision_tower_backward (&g->vision, dimage, cs->vision_acts, &w->vision);
  const float *dtokens;
  const int32_t *row_ids;
  int n_rows;
  agc_text_tower_backward (&g->text, dtext, cs->text_acts, &w->text, &dtokens, &row_ids, &n_rows);
  g_free (scratch);

  // ---- clip the global norm, as torch.nn.utils.clip_grad_norm_ ----
  float *grads[AGC_CONTRASTIVE_MAX_ARRAYS];
  size_t sizes[AGC_CONTRASTIVE_MAX_ARRAYS];
  int n_arrays = agc_contrastive_weights_arrays (grads, sizes, NULL, g, s);
  double norm = agc_grad_norm (grads, sizes, n_arrays);
  if (grad_norm != NULL)
    *grad_norm = norm;
  // rounded to float as torch's float32 coefficient (clip-train.c)
  agc_grad_scale (grads, sizes, n_arrays, (float) agc_clip_factor (norm, cs->adamw.clip_norm));

  // ---- AdamW at the scheduled learning rate, then CLIP's clamp of the scale ----
  cs->step++;
  double lr = agc_adamw_lr (&cs->adamw, cs->step);
  agc_trainable_adamw_step (cs->trainable, 0, cs->trainable->n, &cs->adamw, lr, cs->step);
  *w->log_scale = CLAMP (*w->log_scale, 0.0f, (float) MAX_LOG_SCALE);
  return loss;
}
