/* weight-names.c — OpenAI / open_clip tensor names translated to the
 * Hugging Face names of CLIPModel, as a derived weights set (weights.h). */
#include "formats/weight-names.h"

#include "agriclip.h"

#include <stdlib.h>
#include <string.h>

enum
{
  TEXT = 1 << 0,      /* under the text prefix ("" or "text.") */
  TRANSPOSE = 1 << 1, /* OpenAI applies it as x @ proj, HF as x @ weight^T */
};

typedef struct
{
  const char *openai;
  const char *hf;
  int flags;
} Rename;

static const Rename top_level[] = {
  { "visual.conv1.weight", "vision_model.embeddings.patch_embedding.weight", 0 },
  { "visual.class_embedding", "vision_model.embeddings.class_embedding", 0 },
  { "visual.positional_embedding", "vision_model.embeddings.position_embedding.weight", 0 },
  { "visual.ln_pre.weight", "vision_model.pre_layrnorm.weight", 0 },
  { "visual.ln_pre.bias", "vision_model.pre_layrnorm.bias", 0 },
  { "visual.ln_post.weight", "vision_model.post_layernorm.weight", 0 },
  { "visual.ln_post.bias", "vision_model.post_layernorm.bias", 0 },
  { "visual.proj", "visual_projection.weight", TRANSPOSE },
  { "token_embedding.weight", "text_model.embeddings.token_embedding.weight", TEXT },
  { "positional_embedding", "text_model.embeddings.position_embedding.weight", TEXT },
  { "ln_final.weight", "text_model.final_layer_norm.weight", TEXT },
  { "ln_final.bias", "text_model.final_layer_norm.bias", TEXT },
  { "text_projection", "text_projection.weight", TEXT | TRANSPOSE },
  { "logit_scale", "logit_scale", 0 },
};

/* Inside a residual block, after "…resblocks.N."; attn.in_proj_* is split
 * apart (split_in_proj). */
static const Rename in_block[] = {
  { "ln_1.weight", "layer_norm1.weight", 0 },
  { "ln_1.bias", "layer_norm1.bias", 0 },
  { "attn.out_proj.weight", "self_attn.out_proj.weight", 0 },
  { "attn.out_proj.bias", "self_attn.out_proj.bias", 0 },
  { "ln_2.weight", "layer_norm2.weight", 0 },
  { "ln_2.bias", "layer_norm2.bias", 0 },
  { "mlp.c_fc.weight", "mlp.fc1.weight", 0 },
  { "mlp.c_fc.bias", "mlp.fc1.bias", 0 },
  { "mlp.c_proj.weight", "mlp.fc2.weight", 0 },
  { "mlp.c_proj.bias", "mlp.fc2.bias", 0 },
};

/* Buffers of OpenAI's modules that are not weights: the causal mask (the
 * towers build their own) and sizes kept as tensors by TorchScript. */
static const char *const ignored[] = { "attn_mask", "input_resolution", "context_length",
                                       "vocab_size" };

gboolean
agc_weights_has_openai_names (const AgcWeights *weights)
{
  g_return_val_if_fail (weights != NULL, FALSE);
  for (int i = 0; i < agc_weights_n_tensors (weights); i++)
    {
      const char *name = agc_weights_tensor (weights, i)->name;
      if (g_str_has_prefix (name, "visual.") || strcmp (name, "token_embedding.weight") == 0
          || strcmp (name, "text.token_embedding.weight") == 0)
        return TRUE;
    }
  return FALSE;
}

const char *
agc_weights_openai_text_prefix (const AgcWeights *weights)
{
  g_return_val_if_fail (weights != NULL, "");
  return agc_weights_find (weights, "text.token_embedding.weight") != NULL ? "text." : "";
}

static gboolean
wrong_shape (GError **error, const char *path, const AgcTensorView *t, const char *expected)
{
  g_autofree char *shape = agc_shape_text (t->n_dims, t->shape);
  g_set_error (error, AGC_ERROR, AGC_ERROR_MODEL, "%s: tensor '%s' has shape %s (%s), expected %s",
               path, t->name, shape, agc_dtype_name (t->dtype), expected);
  return FALSE;
}

/* "…resblocks.N.rest" -> rest, *layer = N; NULL when name is not in a block
 * under prefix.  N is a plain decimal number: "01" would alias "1". */
static const char *
block_rest (const char *name, const char *prefix, int *layer)
{
  if (!g_str_has_prefix (name, prefix))
    return NULL;
  const char *p = name + strlen (prefix);
  size_t n_digits = strspn (p, "0123456789");
  if (n_digits == 0 || n_digits > 6 || (p[0] == '0' && n_digits > 1) || p[n_digits] != '.')
    return NULL;
  *layer = atoi (p);
  return p + n_digits + 1;
}

/* in_proj_weight [3D, D] / in_proj_bias [3D] -> q, k, v views of D rows each. */
static gboolean
split_in_proj (AgcWeights *hf, const AgcTensorView *t, const char *hf_block, gboolean is_weight,
               GError **error)
{
  const char *path = agc_weights_path (hf);
  gboolean ok = agc_dtype_is_float (t->dtype)
                && (is_weight ? t->n_dims == 2 && t->shape[0] % 3 == 0
                                    && t->shape[0] / 3 == t->shape[1]
                              : t->n_dims == 1 && t->shape[0] % 3 == 0);
  if (!ok)
    return wrong_shape (error, path, t,
                        is_weight ? "a floating-point [3D, D] (q, k, v stacked)"
                                  : "a floating-point [3D] (q, k, v stacked)");
  size_t part = t->n_bytes / 3;
  for (int i = 0; i < 3; i++)
    {
      AgcTensorView v = *t;
      v.shape[0] = t->shape[0] / 3;
      v.data = t->data + i * part;
      v.n_bytes = part;
      g_autofree char *name = g_strdup_printf ("%sself_attn.%c_proj.%s", hf_block, "qkv"[i],
                                               is_weight ? "weight" : "bias");
      agc_weights_add (hf, name, &v, NULL);
    }
  return TRUE;
}

/* proj [R, C], applied as x @ proj -> a float32 [C, R] owned by hf. */
static gboolean
add_transposed (AgcWeights *hf, const AgcTensorView *t, const char *hf_name, GError **error)
{
  const char *path = agc_weights_path (hf);
  if (!agc_dtype_is_float (t->dtype) || t->n_dims != 2)
    return wrong_shape (error, path, t, "a floating-point matrix [width, embed_dim]");
  int64_t rows = t->shape[0], cols = t->shape[1];
  size_t n = (size_t) rows * (size_t) cols; // bounded by the file size by the readers
  float *out = g_try_new (float, MAX (n, 1));
  float *row = g_try_new (float, MAX (cols, 1));
  if (out == NULL || row == NULL)
    {
      g_free (out);
      g_free (row);
      g_set_error (error, AGC_ERROR, AGC_ERROR_IO, "%s: not enough memory for tensor '%s'",
                   path, t->name);
      return FALSE;
    }
  size_t row_bytes = (size_t) cols * agc_dtype_size (t->dtype);
  for (int64_t r = 0; r < rows; r++)
    {
      AgcTensorView source_row = *t;
      source_row.n_dims = 1;
      source_row.shape[0] = cols;
      source_row.data = t->data + (size_t) r * row_bytes;
      source_row.n_bytes = row_bytes;
      agc_tensor_to_f32 (&source_row, row);
      for (int64_t c = 0; c < cols; c++)
        out[(size_t) c * rows + r] = row[c];
    }
  g_free (row);
  AgcTensorView v = *t;
  v.dtype = AGC_DTYPE_F32;
  v.shape[0] = cols;
  v.shape[1] = rows;
  v.data = (const guint8 *) out;
  v.n_bytes = n * sizeof (float);
  agc_weights_add (hf, hf_name, &v, out);
  return TRUE;
}

static gboolean
unsupported_name (GError **error, const char *path, const char *name)
{
  if (g_str_has_prefix (name, "visual.layer") || g_str_has_prefix (name, "visual.attnpool."))
    g_set_error (error, AGC_ERROR, AGC_ERROR_UNSUPPORTED,
                 "%s: tensor '%s' belongs to a ResNet image tower (OpenAI's RN50, RN101, "
                 "RN50x4 …), which is not supported; only ViT CLIP models are",
                 path, name);
  else
    g_set_error (error, AGC_ERROR, AGC_ERROR_UNSUPPORTED,
                 "%s: tensor '%s' is not part of a plain OpenAI / open_clip ViT CLIP (layer "
                 "scale, attentional pooling, another text tower?); this variant is not supported",
                 path, name);
  return FALSE;
}

static gboolean
translate (AgcWeights *hf, const AgcTensorView *t, const char *text_prefix, GError **error)
{
  const char *name = t->name;
  const char *last = strrchr (name, '.');
  last = last != NULL ? last + 1 : name;
  for (size_t i = 0; i < G_N_ELEMENTS (ignored); i++)
    if (strcmp (last, ignored[i]) == 0)
      return TRUE;

  for (size_t i = 0; i < G_N_ELEMENTS (top_level); i++)
    {
      const Rename *r = &top_level[i];
      if ((r->flags & TEXT) ? !(g_str_has_prefix (name, text_prefix)
                                && strcmp (name + strlen (text_prefix), r->openai) == 0)
                            : strcmp (name, r->openai) != 0)
        continue;
      if (r->flags & TRANSPOSE)
        return add_transposed (hf, t, r->hf, error);
      agc_weights_add (hf, r->hf, t, NULL);
      return TRUE;
    }

  g_autofree char *text_blocks = g_strconcat (text_prefix, "transformer.resblocks.", NULL);
  int layer = 0;
  const char *hf_tower = "vision_model";
  const char *rest = block_rest (name, "visual.transformer.resblocks.", &layer);
  if (rest == NULL)
    {
      hf_tower = "text_model";
      rest = block_rest (name, text_blocks, &layer);
    }
  if (rest == NULL)
    return unsupported_name (error, agc_weights_path (hf), name);

  g_autofree char *hf_block = g_strdup_printf ("%s.encoder.layers.%d.", hf_tower, layer);
  if (strcmp (rest, "attn.in_proj_weight") == 0 || strcmp (rest, "attn.in_proj_bias") == 0)
    return split_in_proj (hf, t, hf_block, strcmp (rest, "attn.in_proj_weight") == 0, error);
  for (size_t i = 0; i < G_N_ELEMENTS (in_block); i++)
    if (strcmp (rest, in_block[i].openai) == 0)
      {
        g_autofree char *hf_name = g_strconcat (hf_block, in_block[i].hf, NULL);
        agc_weights_add (hf, hf_name, t, NULL);
        return TRUE;
      }
  return unsupported_name (error, agc_weights_path (hf), name);
}

AgcWeights *
agc_weights_new_hf_view (AgcWeights *openai, GError **error)
{
  g_return_val_if_fail (openai != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  const char *text_prefix = agc_weights_openai_text_prefix (openai);
  AgcWeights *hf = agc_weights_new_derived (openai);
  for (int i = 0; i < agc_weights_n_tensors (openai); i++)
    if (!translate (hf, agc_weights_tensor (openai, i), text_prefix, error))
      {
        agc_weights_free (hf);
        return NULL;
      }
  return hf;
}
