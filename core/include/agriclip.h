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

/* Loads a model: a Hugging Face CLIP folder (config.json + model.safetensors,
 * a sharded index or pytorch_model.bin), an open_clip folder
 * (open_clip_config.json + its weights), a folder or file holding an OpenAI
 * .pt/.pth checkpoint (tokenizer files beside it), or an AgriCLIP folder
 * (agriclip.json, or the released Weights/ layout: models/README.md), whose
 * images go through a ResNet-50 and a linear aligner into the text space of
 * CLIP ViT-B/16. */
AgcModel *agc_model_load (const char *path, GError **error);
void agc_model_free (AgcModel *model);

int agc_model_embed_dim (const AgcModel *model);      /* E: length of every embedding */
int agc_model_image_size (const AgcModel *model);     /* S: side of the square model input */
int agc_model_context_length (const AgcModel *model); /* tokens per text, 77 for CLIP */
/* exp(logit_scale), e.g. 100; AgriCLIP: its manifest's temperature, 100 by default. */
float agc_model_logit_scale (const AgcModel *model);
const char *agc_model_path (const AgcModel *model);

/* How a class embedding is made from the embeddings of its prompts. */
typedef enum
{
  AGC_CLASS_MEAN_OF_NORMALIZED, /* open_clip: normalise each, average, normalise (CLIP) */
  AGC_CLASS_MEAN_OF_RAW,        /* average the projections as they are, normalise (AgriCLIP) */
} AgcClassRecipe;

/* The recipe the model was evaluated with by its authors. */
AgcClassRecipe agc_model_class_recipe (const AgcModel *model);

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

/* ---- speed ------------------------------------------------------------- */

/* Threads used for encoding by every model of the process: OpenBLAS's for
 * the matrix products and the library's own for the rest (layer norms,
 * activations, attention heads), never both at once.  n_threads <= 0: one
 * per core.  Until called, OpenBLAS's default count is used (its
 * OPENBLAS_NUM_THREADS or OMP_NUM_THREADS, else one per core). */
void agc_set_threads (int n_threads);
int agc_get_threads (void);

/* How a model runs its encoders.  Each model has its own (two models with
 * different options can work side by side in one process); the thread count
 * stays process-wide (agc_set_threads).  Start from
 * agc_engine_default_options () (all FALSE), change fields, then
 * agc_model_set_options. */
typedef struct
{
  /* The encoders' matrix products (weights and attention) on OpenBLAS
   * instead of the library's own kernels (used where the CPU has AVX2 and
   * FMA).  For benchmarks and comparisons. */
  gboolean use_openblas;
  /* For benchmarks: the embed functions run only their matrix products
   * (same shapes, same threads) and skip all other work, so their time is
   * the floor the kernels allow; the embeddings they return are then
   * meaningless. */
  gboolean products_only;
  /* int8 weights for the image tower's transformer blocks, as
   * agc_model_set_int8 (below) describes. */
  gboolean int8;
} AgcEngineOptions;

AgcEngineOptions agc_engine_default_options (void);

/* Applies options to model from its next call on.  FALSE, and the model's
 * options unchanged, with AGC_ERROR_UNSUPPORTED where int8 cannot be turned
 * on (see agc_model_set_int8). */
gboolean agc_model_set_options (AgcModel *model, const AgcEngineOptions *options,
                                GError **error);
AgcEngineOptions agc_model_get_options (const AgcModel *model);

/* Opt-in 8-bit integer weights for the image tower's transformer blocks:
 * their four matrix products (fused q/k/v, out_proj, fc1, fc2) run on int8
 * (weights quantised per output row, symmetrically, once on first use and
 * kept: a quarter of their float32 size; activations per row,
 * asymmetrically, at every call), everything else stays float32.  Faster on
 * CPUs with AVX-512 VNNI or AVX-VNNI, and embeddings stay within a cosine of
 * about 0.999 of the float32 ones.  Adapters applied before or after are
 * honoured; texts are not affected.  FALSE with AGC_ERROR_UNSUPPORTED when
 * the CPU has no int8 kernel (AVX2 at least) or the model's image encoder is
 * not a ViT (AgriCLIP's ResNet-50).  Turning it off always succeeds.  The
 * int8 field of the model's options (agc_model_set_options), the others
 * unchanged. */
gboolean agc_model_set_int8 (AgcModel *model, gboolean int8, GError **error);
gboolean agc_model_get_int8 (const AgcModel *model);

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

/* Encodes every prompt of every class and combines them by the model's
 * recipe (agc_model_class_recipe; CLIP: the open_clip one, normalise each
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

/* ---- training ------------------------------------------------------------
 *
 * Teaching a model the user's own classes from a folder of tagged photos:
 *
 *   DATA/rust/…  DATA/blight/…  DATA/healthy/…   one sub-folder per class
 *   DATA/labels.json                              optional
 *
 * The tag is the folder name and becomes the class's export name; files in
 * sub-folders of a tag folder belong to the tag; hidden files and folders
 * are ignored.  DATA/labels.json, when present, is a label set
 * (models/labels/README.md) with exactly one class per tag folder, named as
 * the folder: it gives the display names and prompts.  Without it each tag
 * is put into the default template ("a photo of a TAG.").  A file that
 * cannot be read or decoded is skipped and reported, never fatal; every
 * class needs at least one readable image.
 *
 * Method "probe": a linear head, logits = W x + b on the L2-normalised image
 * embedding x, starting from the zero-shot classifier (W = logit_scale ·
 * class embeddings of the prompts, b = 0), trained with class-weighted
 * cross-entropy (weight of class c = n_train / (n_classes · n_train_c), so
 * rare classes count as much as common ones) and AdamW (weight decay on W
 * only).  A seeded share of each class is held out for validation; the
 * epoch with the lowest validation loss is kept, and training stops after
 * `patience` epochs without improvement.  The same seed, data and settings
 * give the same adapter.
 *
 * Method "finetune" (ViT models): the last finetune_blocks vision blocks,
 * ln_post and the projection are trained with the same split, class
 * weights, early stopping and checkpoints, on the class-weighted cross-
 * entropy of logit_scale · cos(image, class) against the fixed zero-shot
 * class embeddings of the prompts; AdamW (weight decay on matrices only),
 * a linear warm-up then a cosine decay over the planned steps, gradient
 * norm clipped at 1.  The blocks below run once per image at the start and
 * their output stays in memory (T · D · 4 bytes per image, 150 KiB for
 * ViT-B/32; more than 4 GiB in all is refused).  The adapter holds the new
 * tensors, mixed with the original ones by finetune_mix (WiSE-FT).
 *
 * Image embeddings are cached under $XDG_CACHE_HOME/agriclip, keyed by the
 * file's content and the model's identity, so training again is quick.
 *
 * Robustness: training writes a checkpoint OUT.checkpoint every
 * checkpoint_every epochs (atomically).  A run stopped at any point (killed,
 * cancelled, power cut) and started again with the same model, data and
 * settings continues from the last checkpoint and ends with the same
 * adapter as an uninterrupted run.  OUT appears only when training is done:
 * it is written to a temporary file, flushed and renamed.
 */

typedef enum
{
  AGC_TRAIN_PROBE,    /* a linear head on image embeddings */
  AGC_TRAIN_ALIGNER,  /* AgriCLIP models: the DINO -> CLIP aligner fitted again */
  AGC_TRAIN_FINETUNE, /* ViT models: the last vision blocks, ln_post and the projection */
} AgcTrainMethod;

/* "probe", "aligner", "finetune"; NULL for an unknown value. */
const char *agc_train_method_name (AgcTrainMethod method);
/* FALSE for an unknown name. */
gboolean agc_train_method_from_name (AgcTrainMethod *method, const char *name);

typedef enum
{
  AGC_TRAIN_STAGE_EMBED,  /* done/total images encoded or found in the cache */
  AGC_TRAIN_STAGE_RESUME, /* continuing after epoch `done` of a checkpoint */
  AGC_TRAIN_STAGE_EPOCH,  /* epoch `done` of at most `total` finished; losses set */
} AgcTrainStage;

typedef struct
{
  AgcTrainStage stage;
  int done;
  int total;
  double train_loss;   /* EPOCH: mean class-weighted loss of the epoch's batches */
  double val_loss;     /* EPOCH: class-balanced validation loss; NaN without validation images */
  double val_accuracy; /* EPOCH: share of validation images right; NaN without them */
} AgcTrainProgress;

typedef void (*AgcTrainProgressFunc) (const AgcTrainProgress *progress, gpointer user_data);
/* A problem that does not stop training: a skipped file, a cache that
 * cannot be written, a checkpoint made with other settings. */
typedef void (*AgcTrainReportFunc) (const GError *problem, gpointer user_data);

typedef struct
{
  AgcTrainMethod method;
  guint64 seed;           /* validation split and batch order */
  double val_fraction;    /* share of each class held out (0 .. 0.9), default 0.2 */
  int max_epochs;         /* default 100; 0 writes the zero-shot head */
  int patience;           /* epochs without a lower validation loss before stopping, 10 */
  int batch_size;         /* images per AdamW step, 32 */
  double learning_rate;   /* AdamW, 0.05 (the head starts at logit_scale scale) */
  double weight_decay;    /* AdamW, decoupled, on W only, 0.01 */
  int checkpoint_every;   /* epochs between checkpoints, 5; 0: none */
  gboolean resume;        /* continue from a matching OUT.checkpoint, TRUE */
  AgcTrainProgressFunc progress; /* may be NULL */
  AgcTrainReportFunc report;     /* may be NULL */
  gpointer user_data;            /* for both */
  /* finetune */
  int finetune_blocks;    /* K: the last K vision blocks are trained (1 .. L), 2 */
  double finetune_mix;    /* WiSE-FT: adapter = (1 - mix) original + mix trained, 0 .. 1; 1.0 */
  double finetune_warmup; /* learning-rate warm-up: < 1, a share of the planned steps; >= 1,
                           * steps; then a cosine decay to 0 at the last planned step.  0.1 */
  /* aligner (AgriCLIP): closed-form ridge regression of the ResNet features
   * f onto the targets, λ = aligner_ridge · trace(Fcᵀ Fc) / 2048 (Fc: the
   * centred training features, so 1 is the features' mean variance times
   * the number of images); 0: λ chosen by the validation loss among 10^-3 ..
   * 10^3 of that unit, the released aligner kept unless one does better.  0 */
  double aligner_ridge;
} AgcTrainParams;

AgcTrainParams agc_train_default_params (void);

typedef struct
{
  int n_classes;
  int n_images;  /* readable images */
  int n_skipped; /* files that could not be read or decoded */
  int n_cached;  /* embeddings found in the cache */
  int n_train;
  int n_val;
  int resumed_epoch; /* the checkpoint's epoch, 0 when started afresh */
  int epochs;        /* epochs run in all, resumed ones included */
  int best_epoch;    /* the epoch kept; 0 is the zero-shot head */
  double zero_shot_val_accuracy; /* NaN without validation images */
  double val_accuracy;           /* of the kept epoch; NaN without validation images */
  double val_loss;
} AgcTrainResult;

/* Trains on data_dir and writes the adapter to out_path (see "adapters").
 * result (may be NULL) receives the numbers.  Cancelling keeps the last
 * checkpoint (a new one is written first when checkpoints are on). */
gboolean agc_train (AgcModel *model, const char *data_dir, const char *out_path,
                    const AgcTrainParams *params, AgcTrainResult *result,
                    GCancellable *cancellable, GError **error);

/* ---- adapters ------------------------------------------------------------
 *
 * An adapter is one safetensors file with the trained tensors (probe:
 * "head.weight" [C, E] and "head.bias" [C]; finetune: the replaced tensors
 * of the image tower under their Hugging Face names, e.g.
 * vision_model.encoder.layers.11.self_attn.q_proj.weight,
 * vision_model.post_layernorm.weight, visual_projection.weight; aligner:
 * "W" [E, F] and "b" [E]) and string metadata: agriclip.kind ("adapter"),
 * agriclip.method ("probe", "finetune", "aligner"), agriclip.base_model
 * (the identity below), agriclip.base_model_name (the folder name, for
 * messages), agriclip.classes (JSON: [{name, display, prompts}]),
 * agriclip.metrics and agriclip.training (JSON objects).
 *
 * Model identity: the SHA-256 of the list of (file name, SHA-256 of its
 * content) of everything in the model folder that decides an image
 * embedding: the configuration (config.json, preprocessor_config.json,
 * open_clip_config.json) and the weights (*.safetensors, *.bin, *.pt, *.pth,
 * *.index.json).  Tokenizer files and READMEs do not count, so adding a
 * tokenizer.json keeps adapters valid, while a fine-tuned copy of the same
 * architecture does not pass for the original (a hash of the tensor header
 * or of the sizes would).  Content hashes are remembered by file stat in
 * the cache, so only the first use of a model reads all of it. */

typedef struct AgcAdapter AgcAdapter;

AgcAdapter *agc_adapter_load (const char *path, GError **error);
void agc_adapter_free (AgcAdapter *adapter);

const char *agc_adapter_method (const AgcAdapter *adapter); /* "probe", "finetune", "aligner" */
int agc_adapter_n_classes (const AgcAdapter *adapter);
const char *agc_adapter_class_name (const AgcAdapter *adapter, int class_index);
const char *agc_adapter_class_display_name (const AgcAdapter *adapter, int class_index);
/* The prompts of a class, NULL-terminated, owned by the adapter (empty for
 * old probe adapters that stored none). */
const char *const *agc_adapter_class_prompts (const AgcAdapter *adapter, int class_index);
/* finetune and aligner adapters: the trained tensors (0 for probe), each as
 * float32 under its name, with n_dims (1 .. 4) and shape[n_dims] (both may
 * be NULL); the data are owned by the adapter. */
int agc_adapter_n_tensors (const AgcAdapter *adapter);
const float *agc_adapter_tensor (const AgcAdapter *adapter, int index, const char **name,
                                 int *n_dims, int64_t *shape);
/* A metadata value (e.g. "agriclip.metrics"), or NULL. */
const char *agc_adapter_metadata (const AgcAdapter *adapter, const char *key);

/* The identity described above, 64 hex digits (g_free). */
char *agc_model_identity (const AgcModel *model, GError **error);
/* AGC_ERROR_INPUT when the adapter was trained on another model. */
gboolean agc_adapter_check_model (const AgcAdapter *adapter, const AgcModel *model,
                                  GError **error);

/* Makes model compute what the adapter learned (after
 * agc_adapter_check_model): "finetune" and "aligner" adapters replace the
 * model's tensors of the same names with theirs, for every later embedding;
 * a "probe" adapter changes nothing here (its head is the classifier's).
 * Applying the same adapter again does nothing. */
gboolean agc_model_apply_adapter (AgcModel *model, const AgcAdapter *adapter, GError **error);

/* A classifier over the adapter's classes (checks the model first):
 * probs = softmax(W x + b) for the L2-normalised image embedding x. */
AgcClassifier *agc_classifier_new_from_adapter (AgcModel *model, const AgcAdapter *adapter,
                                                GError **error);
/* Any classifier as that linear head: weight[C, E] and bias[C], filled by
 * the caller.  Zero-shot: W = logit_scale · class embeddings, b = 0 (where
 * the probe starts). */
void agc_classifier_head (const AgcClassifier *classifier, float *weight, float *bias);

G_END_DECLS
