/* model.c — a CLIP model loaded from a Hugging Face, open_clip or OpenAI
 * checkpoint (model-files.h): both towers, the tokenizer, the preprocessing
 * and the logit scale, and the batched embedding calls of the public API.
 * The image side is an image encoder (image-encoder.h) of the checkpoint's
 * family: CLIP's ViT (vit-encoder.h), or AgriCLIP's ResNet-50 and aligner
 * (agriclip-model.h); nothing here depends on which.
 *
 * The tokenizer is read when text is first encoded, not on opening: parsing
 * its 1.5 MB of vocabulary and merges is most of the time a model takes to
 * open, and classifying with cached class embeddings (class-cache.h) or
 * embedding images needs no text.  Its files are checked on opening
 * (model-files.h), their contents on first use. */
#include "agriclip.h"

#include "models/adapter.h"
#include "models/image-pipeline.h"
#include "models/agriclip-model.h"
#include "kernels/arena.h"
#include "models/class-cache.h"
#include "models/vit-encoder.h"
#include "models/clip-config.h"
#include "models/model-files.h"
#include "kernels/ops.h"
#include "nn/text-tower.h"
#include "text/tokenizer.h"
#include "formats/weights.h"

#include <math.h>
#include <string.h>

// inputs per forward pass: enough rows for thick GEMMs, little memory.  Texts
// are packed to their own lengths, so a text batch is also capped in tokens.
enum
{
  TEXT_BATCH = 64,
  TEXT_BATCH_TOKENS = 2048,
  IMAGE_BATCH = 8,
};

struct AgcModel
{
  char *path;
  AgcClipConfig config;
  AgcWeights *weights; // mapped for the model's life: the towers read it in place
  AgcTextTower *text;
  AgcImageEncoder *image;
  char *text_source;         // the CLIP checkpoint or folder of the text side and tokenizer
  AgcTokenizer *tokenizer;   // NULL until text is first encoded (ensure_tokenizer)
  GMutex tokenizer_lock;     // agc_model_tokenize takes a const model: loading is guarded
  int n_texts_encoded;       // by the text tower, for tests (agc_model_n_texts_encoded)
  AgcPreprocess preprocess;
  float logit_scale; // exp of the stored value
  AgcArena pixels;   // preprocessed images of one batch, reused from call to call
  char *adapter_digest;       // the finetune/aligner adapter applied, NULL: none
  AgcEngineOptions options;   // as the towers were last given them
  gboolean fast_decode;       // agc_model_set_fast_decode
};

// "DIR: " before a message, unless it already starts with the folder's path
static void
prefix_dir (GError **error, const char *dir)
{
  if (error != NULL && *error != NULL && !g_str_has_prefix ((*error)->message, dir))
    g_prefix_error (error, "%s: ", dir);
}

static gboolean
load_logit_scale (float *out, const AgcWeights *weights, GError **error)
{
  const AgcTensorView *t = agc_weights_find (weights, "logit_scale");
  if (t == NULL)
    {
      g_set_error (error, AGC_ERROR, AGC_ERROR_MODEL, "tensor logit_scale is missing");
      return FALSE;
    }
  if (!agc_dtype_is_float (t->dtype) || agc_tensor_n_elements (t) != 1 || t->n_dims > 1)
    {
      g_set_error (error, AGC_ERROR, AGC_ERROR_MODEL,
                   "%s: tensor logit_scale must be one floating-point value (%s, %d dims)",
                   t->file, agc_dtype_name (t->dtype), t->n_dims);
      return FALSE;
    }
  float log_scale;
  agc_tensor_to_f32 (t, &log_scale);
  *out = expf (log_scale);
  if (!isfinite (*out)) // a finite log scale of 89 overflows too
    {
      g_set_error (error, AGC_ERROR, AGC_ERROR_MODEL,
                   "%s: tensor logit_scale is %g: its exponential is not a finite number",
                   t->file, (double) log_scale);
      return FALSE;
    }
  return TRUE;
}

static gboolean
load_parts (AgcModel *m, GError **error)
{
  if (!agc_model_files_open (m->path, &m->weights, &m->config, &m->preprocess, error))
    return FALSE;
  const AgcWeights *weights = m->weights;
  // float32 and half-precision matrices stay in the mapped files, so a model
  // opens without copying its weights and keeps half-precision ones compact
  AgcVisionTower *vision = agc_vision_tower_load (weights, &m->config, error);
  if (vision != NULL)
    m->image = agc_vit_encoder_new (vision);
  gboolean ok = vision != NULL
                && (m->text = agc_text_tower_load (weights, &m->config, error))
                && load_logit_scale (&m->logit_scale, weights, error);
  m->text_source = g_strdup (m->path);
  return ok;
}

// an AgriCLIP folder: its own image path, the text side of a CLIP
static gboolean
load_agriclip (AgcModel *m, GError **error)
{
  AgcAgriclipParts p;
  if (!agc_agriclip_load (&p, m->path, error))
    return FALSE;
  m->image = agc_agriclip_image_encoder (p.image);
  m->config = p.config;
  m->weights = p.text_weights;
  m->text = p.text;
  m->text_source = p.text_model;
  m->preprocess = p.preprocess;
  m->logit_scale = p.temperature;
  return TRUE;
}

AgcModel *
agc_model_load (const char *path, GError **error)
{
  g_return_val_if_fail (path != NULL, NULL);

  // a file or a folder of another layout: model-files.h finds out which
  gboolean agriclip = g_file_test (path, G_FILE_TEST_IS_DIR) && agc_agriclip_is_folder (path);
  g_autoptr (AgcModel) m = g_new0 (AgcModel, 1);
  m->path = g_strdup (path);
  g_mutex_init (&m->tokenizer_lock);
  if (agriclip ? load_agriclip (m, error) : load_parts (m, error))
    return g_steal_pointer (&m);
  prefix_dir (error, path);
  return NULL;
}

void
agc_model_free (AgcModel *model)
{
  if (model == NULL)
    return;
  agc_text_tower_free (model->text);
  if (model->image != NULL)
    model->image->klass->free (model->image);
  agc_weights_free (model->weights);
  agc_arena_clear (&model->pixels);
  agc_tokenizer_free (model->tokenizer);
  g_mutex_clear (&model->tokenizer_lock);
  g_free (model->text_source);
  g_free (model->adapter_digest);
  g_free (model->path);
  g_free (model);
}

int
agc_model_embed_dim (const AgcModel *model)
{
  g_return_val_if_fail (model != NULL, 0);
  return model->config.projection_dim;
}

int
agc_model_image_size (const AgcModel *model)
{
  g_return_val_if_fail (model != NULL, 0);
  return model->config.vision.image_size;
}

int
agc_model_context_length (const AgcModel *model)
{
  g_return_val_if_fail (model != NULL, 0);
  return model->config.text.context_length;
}

float
agc_model_logit_scale (const AgcModel *model)
{
  g_return_val_if_fail (model != NULL, 0.0f);
  return model->logit_scale;
}

AgcClassRecipe
agc_model_class_recipe (const AgcModel *model)
{
  g_return_val_if_fail (model != NULL, AGC_CLASS_MEAN_OF_NORMALIZED);
  return model->image->klass->class_recipe;
}

const char *
agc_model_path (const AgcModel *model)
{
  g_return_val_if_fail (model != NULL, NULL);
  return model->path;
}

const char *
agc_model_text_source (const AgcModel *model)
{
  g_return_val_if_fail (model != NULL, NULL);
  return model->text_source;
}

int
agc_model_n_texts_encoded (const AgcModel *model)
{
  g_return_val_if_fail (model != NULL, 0);
  return g_atomic_int_get (&model->n_texts_encoded);
}

// reads the tokenizer on first use; its errors name the model and the file
static gboolean
ensure_tokenizer (const AgcModel *model, GError **error)
{
  AgcModel *m = (AgcModel *) model; // the lazily filled cache of a logically const model
  g_mutex_lock (&m->tokenizer_lock);
  if (m->tokenizer == NULL)
    {
      g_autofree char *folder = agc_model_files_folder (m->text_source);
      AgcTokenizer *tokenizer = agc_tokenizer_load_dir (folder, error);
      if (tokenizer != NULL && agc_tokenizer_eot (tokenizer) >= m->config.text.vocab_size)
        {
          g_set_error (error, AGC_ERROR, AGC_ERROR_MODEL,
                       "%s: the tokenizer's end-of-text id %d is outside the text tower's "
                       "vocabulary of %d",
                       folder, agc_tokenizer_eot (tokenizer), m->config.text.vocab_size);
          g_clear_pointer (&tokenizer, agc_tokenizer_free);
        }
      if (tokenizer == NULL)
        prefix_dir (error, m->path);
      m->tokenizer = tokenizer;
    }
  gboolean ok = m->tokenizer != NULL;
  g_mutex_unlock (&m->tokenizer_lock);
  return ok;
}

gboolean
agc_model_tokenize (const AgcModel *model, const char *text, int32_t *ids, GError **error)
{
  g_return_val_if_fail (model != NULL && text != NULL && ids != NULL, FALSE);
  if (!ensure_tokenizer (model, error))
    return FALSE;
  return agc_tokenizer_encode (model->tokenizer, text, model->config.text.context_length, ids,
                               error);
}

static gboolean
check_cancelled (GCancellable *cancellable, GError **error)
{
  if (cancellable != NULL && g_cancellable_is_cancelled (cancellable))
    {
      g_set_error (error, AGC_ERROR, AGC_ERROR_CANCELLED, "cancelled");
      return TRUE;
    }
  return FALSE;
}

static void
normalize_rows (float *out, int n_rows, int width)
{
  for (int r = 0; r < n_rows; r++)
    agc_l2_normalize (out + (size_t) r * width, width);
}

// the tokens a text costs the text tower: up to and with its end-of-text
static int
text_length (const int32_t *ids, int ctx)
{
  int eot = 0;
  for (int i = 1; i < ctx; i++)
    if (ids[i] > ids[eot])
      eot = i;
  return eot + 1;
}

gboolean
agc_model_embed_texts (AgcModel *model, const char *const *texts, int n_texts,
                       gboolean normalize, float *out, GCancellable *cancellable, GError **error)
{
  g_return_val_if_fail (model != NULL && n_texts >= 0, FALSE);
  g_return_val_if_fail (n_texts == 0 || (texts != NULL && out != NULL), FALSE);

  // a tokenizer that cannot be read is the model's error, not the first text's
  if (n_texts > 0 && !ensure_tokenizer (model, error))
    return FALSE;
  int ctx = model->config.text.context_length, e = model->config.projection_dim;
  int32_t *ids = g_new (int32_t, (size_t) TEXT_BATCH * ctx); // [TEXT_BATCH, ctx]
  gboolean ok = TRUE;
  int start = 0;
  while (ok && start < n_texts)
    {
      if (check_cancelled (cancellable, error))
        {
          ok = FALSE;
          break;
        }
      // as many texts as fit the batch, in texts and in tokens (one at least)
      int n = 0, tokens = 0;
      while (ok && n < TEXT_BATCH && start + n < n_texts)
        {
          int32_t *row = ids + (size_t) n * ctx;
          if (!agc_model_tokenize (model, texts[start + n], row, error))
            {
              g_prefix_error (error, "text %d: ", start + n + 1);
              ok = FALSE;
              break;
            }
          tokens += text_length (row, ctx);
          if (n > 0 && tokens > TEXT_BATCH_TOKENS)
            break; // tokenized again as the first of the next batch
          n++;
        }
      float *batch_out = out + (size_t) start * e;
      ok = ok && agc_text_tower_forward (model->text, ids, n, batch_out, error);
      if (ok)
        g_atomic_int_add (&model->n_texts_encoded, n);
      if (ok && normalize)
        normalize_rows (batch_out, n, e);
      start += n;
    }
  g_free (ids);
  return ok;
}

gboolean
agc_model_embed_pixels (AgcModel *model, const float *pixels, int n_images, gboolean normalize,
                        float *out, GCancellable *cancellable, GError **error)
{
  g_return_val_if_fail (model != NULL && n_images >= 0, FALSE);
  g_return_val_if_fail (n_images == 0 || (pixels != NULL && out != NULL), FALSE);

  int s = model->config.vision.image_size, e = model->config.projection_dim;
  size_t image_len = (size_t) 3 * s * s;
  for (int start = 0; start < n_images; start += IMAGE_BATCH)
    {
      int n = MIN (IMAGE_BATCH, n_images - start);
      float *batch_out = out + (size_t) start * e;
      const float *batch_pixels = pixels + start * image_len;
      if (check_cancelled (cancellable, error)
          || !model->image->klass->forward (model->image, batch_pixels, n, batch_out, error))
        return FALSE;
      if (normalize)
        normalize_rows (batch_out, n, e);
    }
  return TRUE;
}

gboolean
agc_model_preprocess (const AgcModel *model, const AgcImage *image, float *pixels, GError **error)
{
  g_return_val_if_fail (model != NULL && image != NULL && pixels != NULL, FALSE);
  return agc_preprocess_image (&model->preprocess, image, pixels, error);
}

void
agc_model_set_fast_decode (AgcModel *model, gboolean fast_decode)
{
  g_return_if_fail (model != NULL);
  model->fast_decode = fast_decode != FALSE;
}

gboolean
agc_model_get_fast_decode (const AgcModel *model)
{
  g_return_val_if_fail (model != NULL, FALSE);
  return model->fast_decode;
}

/* What --fast-decode means: a JPEG drafted (scale 1/2, 1/4, 1/8) to no less
 * than the resize's shortest edge on both sides; 0: decoded whole. */
static int
draft_edge (const AgcModel *model, gboolean fast_decode)
{
  return fast_decode ? model->preprocess.shortest_edge : 0;
}

AgcImage *
agc_model_load_image (const AgcModel *model, const char *path, gboolean fast_decode,
                      GError **error)
{
  g_return_val_if_fail (model != NULL && path != NULL, NULL);
  int edge = draft_edge (model, fast_decode);
  return agc_image_load_draft (path, edge, edge, error);
}

gboolean
agc_model_load_input (const AgcModel *model, const char *path, gboolean fast_decode,
                      float *pixels, int *width, int *height, GError **error)
{
  g_return_val_if_fail (model != NULL && path != NULL && pixels != NULL, FALSE);
  return agc_preprocess_file (&model->preprocess, path, draft_edge (model, fast_decode), pixels,
                              width, height, error);
}

gboolean
agc_model_embed_images (AgcModel *model, AgcImage *const *images, int n_images,
                        gboolean normalize, float *out, GCancellable *cancellable, GError **error)
{
  g_return_val_if_fail (model != NULL && n_images >= 0, FALSE);
  g_return_val_if_fail (n_images == 0 || (images != NULL && out != NULL), FALSE);

  int s = model->config.vision.image_size, e = model->config.projection_dim;
  size_t image_len = (size_t) 3 * s * s;
  // [IMAGE_BATCH, 3, S, S]
  float *pixels = agc_arena_reserve (&model->pixels, IMAGE_BATCH * image_len,
                                     "a batch of preprocessed images", error);
  gboolean ok = pixels != NULL;
  for (int start = 0; ok && start < n_images; start += IMAGE_BATCH)
    {
      int n = MIN (IMAGE_BATCH, n_images - start);
      if (check_cancelled (cancellable, error))
        ok = FALSE;
      for (int i = 0; ok && i < n; i++)
        if (!agc_model_preprocess (model, images[start + i], pixels + i * image_len, error))
          {
            g_prefix_error (error, "image %d: ", start + i + 1);
            ok = FALSE;
          }
      // embed_pixels checks the cancellable again: harmless, and one code path
      ok = ok && agc_model_embed_pixels (model, pixels, n, normalize, out + (size_t) start * e,
                                         cancellable, error);
    }
  return ok;
}

AgcEngineOptions
agc_engine_default_options (void)
{
  return (AgcEngineOptions){ 0 };
}

gboolean
agc_model_set_options (AgcModel *model, const AgcEngineOptions *options, GError **error)
{
  g_return_val_if_fail (model != NULL && options != NULL, FALSE);
  const AgcImageEncoderClass *klass = model->image->klass;
  if (klass->set_options == NULL && options->int8)
    {
      g_set_error (error, AGC_ERROR, AGC_ERROR_UNSUPPORTED, "%s: %s", model->path,
                   klass->int8_refusal);
      return FALSE;
    }
  // the image encoder first: only it can refuse (int8), and then nothing changed
  if ((klass->set_options != NULL && !klass->set_options (model->image, options, error))
      || (model->text != NULL && !agc_text_tower_set_options (model->text, options, error)))
    {
      prefix_dir (error, model->path);
      return FALSE;
    }
  model->options = *options;
  return TRUE;
}

AgcEngineOptions
agc_model_get_options (const AgcModel *model)
{
  g_return_val_if_fail (model != NULL, agc_engine_default_options ());
  return model->options;
}

gboolean
agc_model_set_int8 (AgcModel *model, gboolean int8, GError **error)
{
  g_return_val_if_fail (model != NULL, FALSE);
  AgcEngineOptions options = model->options;
  options.int8 = int8;
  return agc_model_set_options (model, &options, error);
}

gboolean
agc_model_get_int8 (const AgcModel *model)
{
  g_return_val_if_fail (model != NULL, FALSE);
  return model->options.int8;
}

const char *
agc_model_cache_variant (const AgcModel *model)
{
  g_return_val_if_fail (model != NULL, "");
  return model->image->klass->cache_variant (model->image, &model->options);
}

/* ---- adapters (agriclip.h) ----------------------------------------------------- */

void
agc_model_normalisation (const AgcModel *model, float mean[3], float std[3])
{
  memcpy (mean, model->preprocess.mean, 3 * sizeof (float));
  memcpy (std, model->preprocess.std, 3 * sizeof (float));
}

AgcVisionTower *
agc_model_vision_tower (AgcModel *model)
{
  g_return_val_if_fail (model != NULL, NULL);
  return agc_vit_encoder_tower (model->image);
}

const AgcTextTower *
agc_model_text_tower (const AgcModel *model)
{
  g_return_val_if_fail (model != NULL, NULL);
  return model->text;
}

// why an adapter of another family's method does not fit this model
static const struct
{
  const char *method, *needs, *lacks;
} adapter_needs[] = {
  { "finetune", "a finetune adapter needs a ViT CLIP model", "has no ViT image tower" },
  { "aligner", "an aligner adapter needs an AgriCLIP model", "is a CLIP model" },
  { "dino", "a dino adapter needs an AgriCLIP model", "is a CLIP model" },
};

static gboolean
check_adapter_family (const AgcModel *model, const AgcAdapter *adapter, GError **error)
{
  const char *method = agc_adapter_tensors_method (adapter);
  if (strcmp (method, "contrastive") == 0) // both CLIP towers' blocks: the finetune family
    method = "finetune";
  if (strcmp (method, model->image->klass->adapter_method) == 0
      || g_strcmp0 (method, model->image->klass->adapter_method_too) == 0)
    return TRUE;
  for (size_t i = 0; i < G_N_ELEMENTS (adapter_needs); i++)
    if (strcmp (method, adapter_needs[i].method) == 0)
      {
        g_set_error (error, AGC_ERROR, AGC_ERROR_UNSUPPORTED, "%s: %s; %s %s",
                     agc_adapter_path (adapter), adapter_needs[i].needs, model->path,
                     adapter_needs[i].lacks);
        return FALSE;
      }
  g_set_error (error, AGC_ERROR, AGC_ERROR_UNSUPPORTED, "%s: a %s adapter does not fit %s",
               agc_adapter_path (adapter), method, model->path);
  return FALSE;
}

/* A contrastive adapter's text-tower tensors and logit scale (the image
 * encoder takes the rest): pass 0 checks them, pass 1 (which then cannot
 * fail) sets them. */
static gboolean
text_tensors (AgcModel *model, const AgcAdapter *adapter, int pass, GError **error)
{
  int n = agc_adapter_n_tensors (adapter);
  for (int i = 0; i < n; i++)
    {
      const char *name;
      int n_dims;
      int64_t shape[4];
      const float *data = agc_adapter_tensor (adapter, i, &name, &n_dims, shape);
      gboolean ok = TRUE;
      if (strcmp (name, "logit_scale") == 0)
        {
          if (n_dims > 1 || (n_dims == 1 && shape[0] != 1))
            {
              g_set_error (error, AGC_ERROR, AGC_ERROR_MODEL,
                           "tensor 'logit_scale' must hold one number");
              ok = FALSE;
            }
          else if (pass == 1)
            model->logit_scale = expf (data[0]); // stored as its log, as in the model
        }
      else if (agc_text_tower_owns_tensor (name))
        ok = model->text != NULL // pass 0 checks every tensor before pass 1 sets any
             && agc_text_tower_set_tensor (model->text, name, pass == 1 ? data : NULL, n_dims,
                                           shape, error);
      if (!ok)
        {
          if (error != NULL && *error == NULL)
            g_set_error (error, AGC_ERROR, AGC_ERROR_MODEL, "%s has no text tower",
                         model->path);
          g_prefix_error (error, "%s: ", agc_adapter_path (adapter));
          return FALSE;
        }
    }
  return TRUE;
}

gboolean
agc_model_apply_adapter (AgcModel *model, const AgcAdapter *adapter, GError **error)
{
  g_return_val_if_fail (model != NULL && adapter != NULL, FALSE);
  if (!agc_adapter_check_model (adapter, model, error))
    return FALSE;
  const char *digest = agc_adapter_digest (adapter);
  if (digest == NULL) // probe: its head is the classifier's, the model stays
    return TRUE;
  if (model->adapter_digest != NULL)
    {
      if (strcmp (model->adapter_digest, digest) == 0)
        return TRUE; // already applied
      g_set_error (error, AGC_ERROR, AGC_ERROR_INPUT,
                   "%s: the model %s already carries another adapter; open the model again to "
                   "use this one",
                   agc_adapter_path (adapter), model->path);
      return FALSE;
    }
  gboolean ok = check_adapter_family (model, adapter, error)
                && text_tensors (model, adapter, 0, error)
                && model->image->klass->apply_adapter (model->image, adapter, error)
                && text_tensors (model, adapter, 1, error);
  if (ok)
    model->adapter_digest = g_strdup (digest);
  return ok;
}

gboolean
agc_model_has_adapter (const AgcModel *model)
{
  g_return_val_if_fail (model != NULL, FALSE);
  return model->adapter_digest != NULL;
}

const char *
agc_model_adapter_digest (const AgcModel *model)
{
  g_return_val_if_fail (model != NULL, NULL);
  return model->adapter_digest;
}
