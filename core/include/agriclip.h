/* agriclip.h — the public interface of libagriclip.
 *
 * libagriclip turns pixels and words into CLIP embeddings and zero-shot labels,
 * on the CPU, with OpenBLAS.  It reads Hugging Face CLIP folders (config.json,
 * model.safetensors or a sharded index, vocab.json + merges.txt,
 * preprocessor_config.json).
 *
 * Typical use:
 *
 *   GError *error = NULL;
 *   AgcModel *model = agc_model_load ("clip-vit-base-patch16", &error);
 *   AgcLabelSet *labels = agc_label_set_load ("plantvillage.json", &error);
 *   AgcClassifier *classifier = agc_classifier_new (model, labels, NULL, &error);
 *   AgcImage *image = agc_image_load ("leaf.jpg", &error);
 *   float embedding[agc_model_embed_dim (model)], probs[agc_label_set_n_classes (labels)];
 *   agc_model_embed_images (model, &image, 1, TRUE, embedding, NULL, &error);
 *   agc_classifier_probabilities (classifier, embedding, probs);
 *
 * Rules:
 * - Every function that can fail returns FALSE/NULL and sets a GError in the
 *   AGC_ERROR domain whose message names the file and the problem.  Nothing
 *   aborts the host program and nothing is printed behind the caller's back.
 * - Objects are owned by the caller and freed with their *_free function
 *   (NULL is accepted).  Arrays are filled by the caller: sizes are given in
 *   the comments, in floats, [rows, columns].
 * - A model is not thread-safe: use one per thread.  Functions taking a
 *   GCancellable check it between inputs and return AGC_ERROR_CANCELLED.
 */
#pragma once

#include <glib.h>
#include <gio/gio.h>
#include <stdint.h>

G_BEGIN_DECLS

/* ---- errors ------------------------------------------------------------ */

#define AGC_ERROR (agc_error_quark ())
GQuark agc_error_quark (void);

typedef enum
{
  AGC_ERROR_IO,          /* a file or folder cannot be opened or read */
  AGC_ERROR_FORMAT,      /* a file is malformed, truncated or inconsistent */
  AGC_ERROR_UNSUPPORTED, /* well-formed, but not something we can run (dtype, architecture) */
  AGC_ERROR_MODEL,       /* a checkpoint disagrees with its config: missing tensor, wrong shape */
  AGC_ERROR_INPUT,       /* bad caller input: invalid UTF-8, empty image, unknown label */
  AGC_ERROR_CANCELLED,
} AgcErrorCode;

/* ---- images ------------------------------------------------------------ */

/* An 8-bit RGB image, rows packed without padding: pixels[(y * width + x) * 3 + c]. */
typedef struct
{
  int width;
  int height;
  guint8 *pixels;
} AgcImage;

/* Decodes JPEG, PNG, TIFF, WebP … (whatever gdk-pixbuf has loaders for),
 * applies the EXIF orientation, expands grayscale to RGB and drops alpha (as
 * PIL's convert("RGB") does, which the reference preprocessing uses). */
AgcImage *agc_image_load (const char *path, GError **error);
/* A zero-filled image; width and height must be positive. */
AgcImage *agc_image_new (int width, int height);
void agc_image_free (AgcImage *image);

/* ---- models ------------------------------------------------------------ */

typedef struct AgcModel AgcModel;

/* Loads a model folder.  Currently: a Hugging Face CLIP folder. */
AgcModel *agc_model_load (const char *path, GError **error);
void agc_model_free (AgcModel *model);

int agc_model_embed_dim (const AgcModel *model);      /* E: length of every embedding */
int agc_model_image_size (const AgcModel *model);     /* S: side of the square model input */
int agc_model_context_length (const AgcModel *model); /* tokens per text, 77 for CLIP */
float agc_model_logit_scale (const AgcModel *model);  /* exp(logit_scale), e.g. 100 */
const char *agc_model_path (const AgcModel *model);

/* Token ids of one text: ids[context_length], start/end tokens included, zero padded. */
gboolean agc_model_tokenize (const AgcModel *model, const char *text, int32_t *ids, GError **error);

/* Embeddings out[n, E]; L2-normalised when normalize is TRUE, otherwise the
 * projection output as is. */
gboolean agc_model_embed_texts (AgcModel *model, const char *const *texts, int n_texts,
                                gboolean normalize, float *out,
                                GCancellable *cancellable, GError **error);
gboolean agc_model_embed_images (AgcModel *model, AgcImage *const *images, int n_images,
                                 gboolean normalize, float *out,
                                 GCancellable *cancellable, GError **error);
/* Already preprocessed input: pixels[n, 3, S, S], normalised with the model's mean/std. */
gboolean agc_model_embed_pixels (AgcModel *model, const float *pixels, int n_images,
                                 gboolean normalize, float *out,
                                 GCancellable *cancellable, GError **error);
/* The model's preprocessing alone: image -> pixels[3, S, S]. */
gboolean agc_model_preprocess (const AgcModel *model, const AgcImage *image, float *pixels,
                               GError **error);

/* ---- label sets -------------------------------------------------------- */

/* A set of classes, each with an export name (stable, written to files), a
 * display name (shown to people) and the prompts that describe it.  The file
 * format is documented in models/labels/README.md. */
typedef struct AgcLabelSet AgcLabelSet;

AgcLabelSet *agc_label_set_load (const char *path, GError **error);
/* A label-set file, or the id of an installed set ("plantvillage") looked up
 * as ID.json in: the folders of $AGRICLIP_LABELS_PATH (':'-separated), the
 * user's $XDG_DATA_HOME/agriclip/labels, the system data folders'
 * agriclip/labels and the install prefix's. */
AgcLabelSet *agc_label_set_open (const char *file_or_id, GError **error);
/* The ids of the installed sets, sorted, without duplicates (g_strfreev). */
char **agc_label_set_list_installed (void);
/* Classes named on the command line: each name is put into every template
 * ("a photo of a {}."); templates may be NULL for the default one. */
AgcLabelSet *agc_label_set_new_from_names (const char *const *names, int n_names,
                                           const char *const *templates, int n_templates,
                                           GError **error);
void agc_label_set_free (AgcLabelSet *set);

const char *agc_label_set_id (const AgcLabelSet *set);
/* For pickers and tooltips: the title, and the description ("" when the file has none). */
const char *agc_label_set_title (const AgcLabelSet *set);
const char *agc_label_set_description (const AgcLabelSet *set);
int agc_label_set_n_classes (const AgcLabelSet *set);
const char *agc_label_set_class_name (const AgcLabelSet *set, int class_index);
const char *agc_label_set_class_display_name (const AgcLabelSet *set, int class_index);
/* The prompts of one class, NULL-terminated, owned by the set. */
const char *const *agc_label_set_class_prompts (const AgcLabelSet *set, int class_index);

/* ---- zero-shot classification ------------------------------------------ */

typedef struct AgcClassifier AgcClassifier;

/* Encodes every prompt of every class (open_clip recipe: normalise each
 * prompt embedding, average per class, normalise again). */
AgcClassifier *agc_classifier_new (AgcModel *model, const AgcLabelSet *labels,
                                   GCancellable *cancellable, GError **error);
void agc_classifier_free (AgcClassifier *classifier);

int agc_classifier_n_classes (const AgcClassifier *classifier);
/* probs[n_classes] = softmax(logit_scale * cos(image, class)) for one
 * L2-normalised image embedding[E]. */
void agc_classifier_probabilities (const AgcClassifier *classifier, const float *image_embedding,
                                   float *probs);
/* Indices of the k most probable classes, most probable first; k is clamped
 * to n_classes.  Returns the number written. */
int agc_top_k (const float *probs, int n_classes, int k, int *indices);

G_END_DECLS
