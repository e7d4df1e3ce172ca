/* dino-vit.c — a CLIP ViT image tower as DINO's backbone (dino-backbone.h).
 *
 * Trained: the last K blocks, ln_post and the projection (nn/vision-tower.h
 * training mode for its top), above blocks run frozen with the tower's
 * inference forward (shared by student and teacher: neither trains them);
 * K = L trains the whole tower, the embeddings too.
 *
 * Features: the tower's output, ln_post(class token) @ projection^T [E].
 * DINO's ViT feature is the class token after the final norm; CLIP's tower
 * ends with the projection, so the projection counts as part of the
 * backbone here: it is what the model's embeddings (zero-shot, probes,
 * aligners) are made of, and DINO then shapes that space itself.
 *
 * Crops: every crop at the tower's input size S (local ones resized up,
 * not DINO's smaller crops with interpolated position embeddings): the
 * tower's position embedding is trained at S alone, and the
 * bicubic-interpolation backward would be a new pass of its own.  Cost: a
 * local crop costs a global one, (2 + n) / (2 + n (96/224)^2) of DINO's
 * compute per image (2 local crops: 1.9x).
 *
 * Tensors are listed as PyTorch (Hugging Face CLIPVisionModel) holds
 * them: q, k and v apart (clipped apart), the adapter under their names. */
#include "train/dino-backbone.h"

#include "train/finetune.h"

#include <string.h>

typedef struct
{
  AgcDinoBackbone base;
  AgcVisionTower *tower;  /* borrowed: the frozen blocks below the top */
  AgcTowerConfig config;  /* the tower's, layers = K */
  AgcClipConfig clip;     /* vision: the tower's whole config (the whole tower's acts) */
  int embed_dim, n_blocks, first_layer, n_tokens;
  gboolean embeds;        /* K = L: the embeddings train too */
  AgcVisionParams w, g;   /* views into params and grads */
  AgcBlock *w_blocks, *g_blocks; /* [K] each, one allocation (w_blocks owns it) */
  float *hidden;          /* [hidden_batch, T, D] the frozen blocks' output */
  int hidden_batch;
} DinoVit;

/* One tensor: its array, length, shape, decay and Hugging Face name. */
typedef struct
{
  float *data;
  size_t n;
  int n_dims;
  int64_t shape[4];
  gboolean decay;
  char name[80];
} Tensor;

static const AgcDinoBackboneOps vit_ops;

static void
add (Tensor *t, int *n, float *data, gboolean decay, const char *name, int n_dims, int64_t d0,
     int64_t d1)
{
  Tensor *x = &t[(*n)++];
  *x = (Tensor){ .data = data, .n_dims = n_dims, .shape = { d0, d1 }, .decay = decay };
  x->n = (size_t) d0 * (n_dims == 2 ? (size_t) d1 : 1);
  g_strlcpy (x->name, name, sizeof x->name);
}

/* p's tensors (weights or gradients) in PyTorch's terms; t holds at most
 * 5 + 16 K + 3. */
static int
tensors (const DinoVit *v, const AgcVisionParams *p, Tensor *t)
{
  int n = 0;
  int64_t d = v->config.width, e = v->embed_dim;
  int64_t ps = v->config.patch_size;
  if (v->embeds)
    {
      // the conv kernel [D, 3, p, p]: counted as [D, 3pp], then given its four dimensions
      add (t, &n, p->patch_weight, TRUE, "vision_model.embeddings.patch_embedding.weight", 2, d,
           3 * ps * ps);
      Tensor *kernel = &t[n - 1];
      kernel->n_dims = 4;
      kernel->shape[1] = 3, kernel->shape[2] = kernel->shape[3] = ps;
      add (t, &n, p->class_embedding, FALSE, "vision_model.embeddings.class_embedding", 1, d, 0);
      add (t, &n, p->position, TRUE, "vision_model.embeddings.position_embedding.weight", 2,
           v->n_tokens, d);
      add (t, &n, p->pre_ln_weight, FALSE, "vision_model.pre_layrnorm.weight", 1, d, 0);
      add (t, &n, p->pre_ln_bias, FALSE, "vision_model.pre_layrnorm.bias", 1, d, 0);
    }
  for (int k = 0; k < v->n_blocks; k++)
    {
      AgcBlockTensor parts[AGC_BLOCK_TENSORS];
      agc_block_tensors (parts, &p->blocks[k], &v->config);
      for (size_t i = 0; i < AGC_BLOCK_TENSORS; i++)
        {
          char name[80];
          g_snprintf (name, sizeof name, "vision_model.encoder.layers.%d.%s",
                      v->first_layer + k, parts[i].suffix);
          add (t, &n, parts[i].data, parts[i].cols != 0, name, parts[i].cols ? 2 : 1,
               parts[i].rows, parts[i].cols);
        }
    }
  add (t, &n, p->post_ln_weight, FALSE, "vision_model.post_layernorm.weight", 1, d, 0);
  add (t, &n, p->post_ln_bias, FALSE, "vision_model.post_layernorm.bias", 1, d, 0);
  add (t, &n, p->projection, TRUE, "visual_projection.weight", 2, e, d);
  return n;
}

static int
max_tensors (const DinoVit *v)
{
  return 5 + 16 * v->n_blocks + 3;
}

// params and grads carved alike (vision-tower.h's layout), zeroed
static void
carve (DinoVit *v)
{
  v->w_blocks = g_new0 (AgcBlock, 2 * v->n_blocks);
  v->g_blocks = v->w_blocks + v->n_blocks;
  v->w.blocks = v->w_blocks, v->g.blocks = v->g_blocks;
  AgcCarver k = { 0 };
  agc_vision_params_carve (&v->w, &k, &v->config, v->embed_dim, v->n_blocks, v->embeds);
  v->base.n_params = k.n_floats;
  for (int i = 0; i < 2; i++)
    {
      AgcVisionParams *p = i == 0 ? &v->w : &v->g;
      AgcCarver c = { 0 };
      agc_vision_params_carve (p, &c, &v->config, v->embed_dim, v->n_blocks, v->embeds);
      float *memory = agc_carver_allocate (&c);
      agc_vision_params_carve (p, &c, &v->config, v->embed_dim, v->n_blocks, v->embeds);
      if (i == 0)
        v->base.params = memory;
      else
        v->base.grads = memory;
    }
}

static DinoVit *
vit_alloc (AgcVisionTower *tower, int n_blocks)
{
  const AgcTowerConfig *tc = agc_vision_tower_config (tower);
  DinoVit *v = g_new0 (DinoVit, 1);
  v->tower = tower;
  v->config = *tc;
  v->config.layers = n_blocks;
  v->clip.vision = *tc;
  v->embed_dim = v->clip.projection_dim = agc_vision_tower_embed_dim (tower);
  v->n_blocks = n_blocks;
  v->first_layer = tc->layers - n_blocks;
  v->embeds = v->first_layer == 0;
  v->n_tokens = agc_vision_tower_n_tokens (tower);
  v->base = (AgcDinoBackbone){ .ops = &vit_ops, .features = v->embed_dim };
  carve (v);
  return v;
}

AgcDinoBackbone *
agc_dino_vit_new (AgcVisionTower *tower, int n_blocks)
{
  g_return_val_if_fail (tower != NULL, NULL);
  g_return_val_if_fail (n_blocks >= 1 && n_blocks <= agc_vision_tower_config (tower)->layers,
                        NULL);
  DinoVit *v = vit_alloc (tower, n_blocks);
  agc_vision_tower_copy_top (tower, v->first_layer, &v->w);
  if (v->embeds)
    agc_vision_tower_copy_embeddings (tower, &v->w);
  return &v->base;
}

static DinoVit *
vit_of (const AgcDinoBackbone *b)
{
  return (DinoVit *) b;
}

static AgcDinoBackbone *
vit_copy (const AgcDinoBackbone *b)
{
  const DinoVit *v = vit_of (b);
  DinoVit *c = vit_alloc (v->tower, v->n_blocks);
  memcpy (c->base.params, b->params, b->n_params * sizeof (float));
  return &c->base;
}

static void
vit_free (AgcDinoBackbone *b)
{
  DinoVit *v = vit_of (b);
  g_free (b->params);
  g_free (b->grads);
  g_free (v->w_blocks); // and g_blocks
  g_free (v->hidden);
  g_free (v);
}

static gboolean
vit_forward (AgcDinoBackbone *b, AgcDinoBackboneActs **acts_io, const float *pixels, int batch,
             int size, float *features, GError **error)
{
  DinoVit *v = vit_of (b);
  if (size != v->config.image_size)
    {
      g_set_error (error, AGC_ERROR, AGC_ERROR_INPUT,
                   "DINO: crops of %d pixels for an image tower of %d", size,
                   v->config.image_size);
      return FALSE;
    }
  AgcVisionActs *acts = (AgcVisionActs *) *acts_io;
  if (acts == NULL || acts->batch != batch)
    {
      agc_tower_acts_free (acts);
      acts = v->embeds ? agc_vision_acts_new (&v->clip, batch)
                       : agc_vision_acts_new_top (&v->config, v->embed_dim, v->n_blocks, batch,
                                                  v->n_tokens);
      *acts_io = (AgcDinoBackboneActs *) acts;
    }
  if (v->embeds)
    {
      agc_vision_tower_forward_train (features, acts, pixels, &v->w);
      return TRUE;
    }
  if (v->hidden_batch < batch)
    {
      g_free (v->hidden);
      v->hidden = g_try_new (float, (size_t) batch * v->n_tokens * v->config.width);
      v->hidden_batch = v->hidden != NULL ? batch : 0;
      if (v->hidden == NULL)
        {
          g_set_error (error, AGC_ERROR, AGC_ERROR_INPUT,
                       "DINO: out of memory for the hidden states of %d crops", batch);
          return FALSE;
        }
    }
  if (!agc_vision_tower_forward_hidden (v->tower, pixels, batch, v->first_layer, v->hidden,
                                        error))
    return FALSE;
  agc_vision_tower_forward_top (features, acts, v->hidden, &v->w);
  return TRUE;
}

static gboolean
vit_backward (AgcDinoBackbone *b, AgcDinoBackboneActs *acts, const float *dfeatures,
              GError **error)
{
  (void) error;
  DinoVit *v = vit_of (b);
  agc_vision_tower_backward (&v->g, dfeatures, (AgcVisionActs *) acts, &v->w);
  return TRUE;
}

static void
vit_acts_free (AgcDinoBackboneActs *acts)
{
  agc_tower_acts_free ((AgcVisionActs *) acts);
}

static int
vit_tensor_grads (AgcDinoBackbone *b, float **grads, size_t *sizes, int max)
{
  DinoVit *v = vit_of (b);
  Tensor *t = g_new (Tensor, max_tensors (v));
  int n = tensors (v, &v->g, t);
  n = MIN (n, max);
  for (int i = 0; i < n; i++)
    grads[i] = t[i].data, sizes[i] = t[i].n;
  g_free (t);
  return n;
}

static void
vit_decay_mask (const AgcDinoBackbone *b, gboolean *mask)
{
  const DinoVit *v = vit_of (b);
  Tensor *t = g_new (Tensor, max_tensors (v));
  int n = tensors (v, &v->w, t);
  for (int i = 0; i < n; i++)
    {
      size_t at = (size_t) (t[i].data - b->params);
      for (size_t j = 0; j < t[i].n; j++)
        mask[at + j] = t[i].decay;
    }
  g_free (t);
}

/* The trained tensors under their Hugging Face names; data points into
 * params (the backbone outlives the views). */
static void
vit_export (const AgcDinoBackbone *b, GArray *views, GPtrArray *owned)
{
  const DinoVit *v = vit_of (b);
  Tensor *t = g_new (Tensor, max_tensors (v));
  int n = tensors (v, &v->w, t);
  for (int i = 0; i < n; i++)
    {
      char *name = g_strdup (t[i].name);
      g_ptr_array_add (owned, name);
      AgcTensorView view = { .name = name, .dtype = AGC_DTYPE_F32, .n_dims = t[i].n_dims,
                             .data = (const guint8 *) t[i].data,
                             .n_bytes = t[i].n * sizeof (float) };
      memcpy (view.shape, t[i].shape, sizeof t[i].shape);
      g_array_append_val (views, view);
    }
  g_free (t);
}

static const AgcDinoBackboneOps vit_ops = {
  .copy = vit_copy,
  .free = vit_free,
  .forward = vit_forward,
  .backward = vit_backward,
  .acts_free = vit_acts_free,
  .tensor_grads = vit_tensor_grads,
  .decay_mask = vit_decay_mask,
  .export = vit_export,
};
