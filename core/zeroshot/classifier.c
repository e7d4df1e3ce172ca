/* classifier.c — zero-shot classification with the open_clip recipe
 * (REFERENCE.md §5): each class is the normalised mean of its normalised
 * prompt embeddings (AgriCLIP: of the raw ones, agc_model_class_recipe);
 * an image's probabilities are the softmax of logit_scale · cos(image,
 * class).  A probe adapter replaces the class embeddings with its trained
 * head: softmax(W x + b); a finetune or aligner adapter changes the model's
 * image side and keeps zero-shot classes of its own prompts. */
#include "agriclip.h"
#include "models/adapter.h"
#include "models/class-cache.h"
#include "kernels/ops.h"

#include <math.h>
#include <stdlib.h>

/* Prompts per agc_model_embed_texts call: a label set may hold thousands of
 * prompts, and the model allocates its activations per call. */
#define PROMPTS_PER_CALL 256

struct AgcClassifier
{
  int n_classes;
  int dim;           /* E */
  float logit_scale; /* zero-shot: the model's exp(logit_scale), e.g. 100; probe: 1 */
  float *classes;    /* [n_classes, E]: zero-shot, L2-normalised rows; probe, the head W */
  float *bias;       /* [n_classes] the head's b; NULL for zero-shot */
};

/* A classifier whose arrays (classes, and bias when with_bias) follow it in
 * the same allocation: one owner, freed by one g_free. */
static AgcClassifier *
classifier_new (int n_classes, int dim, float logit_scale, gboolean with_bias)
{
  size_t n_floats = (size_t) n_classes * dim + (with_bias ? n_classes : 0);
  AgcClassifier *classifier = g_malloc0 (sizeof *classifier + MAX (n_floats, 1) * sizeof (float));
  *classifier = (AgcClassifier){ .n_classes = n_classes, .dim = dim,
                                 .logit_scale = logit_scale, .classes = (float *) (classifier + 1) };
  if (with_bias)
    classifier->bias = classifier->classes + (size_t) n_classes * dim;
  return classifier;
}

/* sums[n_classes, E] += the prompt embeddings[n, E], each to its class. */
static void
accumulate (double *sums, const float *embeddings, const int *owners, int n, int dim)
{
  for (int i = 0; i < n; i++)
    {
      double *sum = sums + (size_t) owners[i] * dim;
      const float *e = embeddings + (size_t) i * dim;
      for (int d = 0; d < dim; d++)
        sum[d] += e[d];
    }
}

/* out[dim] = sum / ||sum||, in double because a class may average many prompts. */
static void
normalize_into (float *out, const double *sum, int dim)
{
  double norm2 = 0.0;
  for (int d = 0; d < dim; d++)
    norm2 += sum[d] * sum[d];
  double scale = norm2 > 0.0 ? 1.0 / sqrt (norm2) : 0.0;
  for (int d = 0; d < dim; d++)
    out[d] = (float) (sum[d] * scale);
}

/* The zero-shot classifier of the per-class sums[C, E] of prompt embeddings. */
static AgcClassifier *
from_sums (const AgcModel *model, const double *sums, int n_classes, int dim)
{
  AgcClassifier *classifier = classifier_new (n_classes, dim, agc_model_logit_scale (model), FALSE);
  for (int c = 0; c < n_classes; c++)
    normalize_into (classifier->classes + (size_t) c * dim, sums + (size_t) c * dim, dim);
  return classifier;
}

AgcClassifier *
agc_classifier_new (AgcModel *model, const AgcLabelSet *labels, GCancellable *cancellable,
                    GError **error)
{
  g_return_val_if_fail (model != NULL, NULL);
  g_return_val_if_fail (labels != NULL, NULL);
  int n_classes = agc_label_set_n_classes (labels);
  int dim = agc_model_embed_dim (model);

  /* The same model and prompts as before: no text work (class-cache.h).  The
   * cache is an optimisation only, so its problems are not errors. */
  g_autofree char *cache_key = agc_class_cache_key (model, labels, NULL);
  AgcClassifier *cached = classifier_new (n_classes, dim, agc_model_logit_scale (model), FALSE);
  if (cache_key != NULL && agc_class_cache_load (cached->classes, cache_key, n_classes, dim))
    return cached;
  g_free (cached);

  /* Every prompt of every class in one flat list, with the class it belongs to. */
  g_autoptr (GPtrArray) prompts = g_ptr_array_new ();
  g_autoptr (GArray) owners = g_array_new (FALSE, FALSE, sizeof (int));
  for (int c = 0; c < n_classes; c++)
    for (const char *const *p = agc_label_set_class_prompts (labels, c); *p != NULL; p++)
      {
        g_ptr_array_add (prompts, (gpointer) *p);
        g_array_append_val (owners, c);
      }
  int n_prompts = (int) prompts->len;

  gboolean normalize_prompts = agc_model_class_recipe (model) == AGC_CLASS_MEAN_OF_NORMALIZED;
  double *sums = g_new0 (double, (size_t) n_classes * dim);
  float *embeddings = g_new (float, (size_t) MIN (n_prompts, PROMPTS_PER_CALL) * dim);
  gboolean ok = TRUE;
  for (int start = 0; ok && start < n_prompts; start += PROMPTS_PER_CALL)
    {
      int n = MIN (PROMPTS_PER_CALL, n_prompts - start);
      if (g_cancellable_is_cancelled (cancellable))
        {
          g_set_error (error, AGC_ERROR, AGC_ERROR_CANCELLED,
                       "%s: cancelled while encoding the prompts", agc_model_path (model));
          ok = FALSE;
          break;
        }
      ok = agc_model_embed_texts (model, (const char *const *) prompts->pdata + start, n,
                                  normalize_prompts, embeddings, cancellable, error);
      if (ok)
        accumulate (sums, embeddings, (const int *) owners->data + start, n, dim);
    }
  g_free (embeddings);

  AgcClassifier *classifier = ok ? from_sums (model, sums, n_classes, dim) : NULL;
  if (classifier != NULL && cache_key != NULL)
    agc_class_cache_store (cache_key, classifier->classes, n_classes, dim, NULL);
  g_free (sums);
  return classifier;
}

void
agc_classifier_free (AgcClassifier *classifier)
{
  g_free (classifier); // its arrays with it (classifier_new)
}

/* finetune and aligner adapters: zero-shot over the adapter's own classes
 * and prompts, by the model's recipe, with the adapted image side. */
static AgcClassifier *
zero_shot_from_adapter (AgcModel *model, const AgcAdapter *adapter, GError **error)
{
  int n_classes = agc_adapter_n_classes (adapter), dim = agc_model_embed_dim (model);
  gboolean normalize_prompts = agc_model_class_recipe (model) == AGC_CLASS_MEAN_OF_NORMALIZED;
  double *sums = g_new0 (double, (size_t) n_classes * dim);
  gboolean ok = TRUE;
  for (int c = 0; ok && c < n_classes; c++)
    {
      const char *const *prompts = agc_adapter_class_prompts (adapter, c);
      int n = (int) g_strv_length ((char **) prompts);
      float *embeddings = g_new (float, (size_t) MAX (n, 1) * dim);
      int *owners = g_new (int, MAX (n, 1));
      for (int i = 0; i < n; i++)
        owners[i] = c;
      ok = agc_model_embed_texts (model, prompts, n, normalize_prompts, embeddings, NULL, error);
      if (ok)
        accumulate (sums, embeddings, owners, n, dim);
      g_free (owners);
      g_free (embeddings);
    }
  AgcClassifier *classifier = ok ? from_sums (model, sums, n_classes, dim) : NULL;
  g_free (sums);
  return classifier;
}

AgcClassifier *
agc_classifier_new_from_adapter (AgcModel *model, const AgcAdapter *adapter, GError **error)
{
  g_return_val_if_fail (model != NULL && adapter != NULL, NULL);
  if (!agc_adapter_check_model (adapter, model, error))
    return NULL;
  const float *weight, *bias;
  int dim;
  if (!agc_adapter_probe_head (adapter, &weight, &bias, &dim))
    {
      // a weight adapter: the model itself changes, the classes stay zero-shot
      if (!agc_model_apply_adapter (model, adapter, error))
        return NULL;
      return zero_shot_from_adapter (model, adapter, error);
    }
  // a probe trained on a base adapter: the base's tensors first (a plain probe: nothing)
  if (!agc_model_apply_adapter (model, adapter, error))
    return NULL;
  int n_classes = agc_adapter_n_classes (adapter);
  AgcClassifier *classifier = classifier_new (n_classes, dim, 1.0f, TRUE);
  memcpy (classifier->classes, weight, sizeof (float) * n_classes * dim);
  memcpy (classifier->bias, bias, sizeof (float) * n_classes);
  return classifier;
}

void
agc_classifier_head (const AgcClassifier *classifier, float *weight, float *bias)
{
  g_return_if_fail (classifier != NULL && weight != NULL && bias != NULL);
  size_t n = (size_t) classifier->n_classes * classifier->dim;
  for (size_t i = 0; i < n; i++)
    weight[i] = classifier->logit_scale * classifier->classes[i];
  for (int c = 0; c < classifier->n_classes; c++)
    bias[c] = classifier->bias != NULL ? classifier->bias[c] : 0.0f;
}

int
agc_classifier_n_classes (const AgcClassifier *classifier)
{
  g_return_val_if_fail (classifier != NULL, 0);
  return classifier->n_classes;
}

void
agc_classifier_probabilities (const AgcClassifier *classifier, const float *image_embedding,
                              float *probs)
{
  g_return_if_fail (classifier != NULL && image_embedding != NULL && probs != NULL);
  int dim = classifier->dim;
  for (int c = 0; c < classifier->n_classes; c++)
    {
      const float *class = classifier->classes + (size_t) c * dim;
      double dot = 0.0;
      for (int d = 0; d < dim; d++)
        dot += (double) image_embedding[d] * class[d];
      probs[c] = (float) (classifier->logit_scale * dot)
                 + (classifier->bias != NULL ? classifier->bias[c] : 0.0f);
    }
  agc_softmax_rows (probs, 1, classifier->n_classes); /* subtracts the max: stable */
}

/* ---- ranking ---------------------------------------------------------------- */

typedef struct
{
  float p;
  int index;
} Ranked;

/* Most probable first; equal probabilities keep class order so that results
 * do not depend on the sort; NaN (a broken model) goes last. */
static int
compare_ranked (const void *pa, const void *pb)
{
  const Ranked *a = pa, *b = pb;
  int a_nan = isnan (a->p), b_nan = isnan (b->p);
  if (a_nan != b_nan)
    return a_nan - b_nan;
  if (!a_nan && a->p != b->p)
    return a->p > b->p ? -1 : 1;
  return (a->index > b->index) - (a->index < b->index);
}

int
agc_top_k (const float *probs, int n_classes, int k, int *indices)
{
  g_return_val_if_fail (probs != NULL || n_classes <= 0, 0);
  k = MIN (k, n_classes);
  if (k <= 0)
    return 0;
  g_return_val_if_fail (indices != NULL, 0);
  Ranked *ranked = g_new (Ranked, n_classes);
  for (int i = 0; i < n_classes; i++)
    ranked[i] = (Ranked){ probs[i], i };
  qsort (ranked, n_classes, sizeof *ranked, compare_ranked);
  for (int i = 0; i < k; i++)
    indices[i] = ranked[i].index;
  g_free (ranked);
  return k;
}
