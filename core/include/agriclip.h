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

/* The domain of every GError the library sets (codes below). */
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

/* A problem that does not stop the work (a skipped file, an unreadable
 * folder, a cache that cannot be written), for the caller to report. */
typedef void (*AgcReportFunc) (const GError *problem, gpointer user_data);

/* ---- JSON text --------------------------------------------------------- */

/* Appends s to out as a JSON string literal (RFC 8259), quotes included:
 * '"', '\\' and control characters (and DEL) escaped, the rest as it is.
 * A byte of s that starts no valid UTF-8 sequence becomes \udcXX (XX the
 * byte: a lone low surrogate, Python's "surrogateescape"), so that a file
 * name that is not UTF-8 keeps its exact bytes.  Every JSON text the
 * library and its programs write quotes strings with this call. */
void agc_json_append_string (GString *out, const char *s);
/* Appends ["a", "b", ...]: strings NULL-terminated (n < 0) or its first n,
 * each as agc_json_append_string; NULL strings: []. */
void agc_json_append_string_array (GString *out, const char *const *strings, int n);

/* ---- images ------------------------------------------------------------ */

/* An 8-bit RGB image, rows packed without padding: pixels[(y * width + x) * 3 + c]. */
typedef struct
{
  int width;
  int height;
  guint8 *pixels;
} AgcImage;

/* Decodes JPEG (libjpeg-turbo, as PIL), PNG, TIFF, WebP … (whatever
 * gdk-pixbuf has loaders for), applies the EXIF orientation, expands grayscale to RGB and drops alpha (as
 * PIL's convert("RGB") does, which the reference preprocessing uses).
 * Only regular files are read (a FIFO or device: AGC_ERROR_IO).  Images of
 * more than 2^27 pixels (134 MP, e.g. 11585 x 11585) are refused from their
 * header with AGC_ERROR_UNSUPPORTED, before decoding: decoding takes 7 bytes a
 * pixel, 0.9 GiB at the limit (no loader decodes at a reduced size exactly
 * as the full-size resize would). */
AgcImage *agc_image_load (const char *path, GError **error);
/* agc_image_load, but a JPEG is decoded at the smallest of the DCT scales
 * 1, 1/2, 1/4, 1/8 at which both sides stay at least width x height: the
 * pixels of Pillow's Image.draft("RGB", (width, height)) (then the EXIF
 * orientation), which users can reproduce in Python.  Several times faster
 * on large photos; embeddings differ slightly from the full decode's.
 * Other formats and CMYK JPEGs are decoded at full size.  width or height
 * <= 0: agc_image_load. */
AgcImage *agc_image_load_draft (const char *path, int width, int height, GError **error);
/* A zero-filled image; width and height must be positive. */
AgcImage *agc_image_new (int width, int height);
void agc_image_free (AgcImage *image);

/* The image files named by paths[n_paths], appended to files as newly
 * allocated names: a file as given (it is always tried); a folder's files
 * whose extension an image loader claims, sorted by name, hidden ones left
 * out, descending into sub-folders when recursive (each folder once, however
 * many links lead to it: a link to . or .. ends).  A folder that cannot
 * be read is reported (report may be NULL) and skipped.  Returns the
 * number of problems reported. */
int agc_image_collect (const char *const *paths, int n_paths, gboolean recursive,
                       GPtrArray *files, AgcReportFunc report, gpointer user_data);

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
G_DEFINE_AUTOPTR_CLEANUP_FUNC (AgcModel, agc_model_free) /* g_autoptr (AgcModel) */

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
/* An image file for this model: agc_image_load, or with fast_decode
 * agc_image_load_draft at the model's resize size (a JPEG decoded at the
 * largest DCT scale whose shorter side still reaches it; several times
 * faster on photos, embeddings a little different from the full decode's). */
AgcImage *agc_model_load_image (const AgcModel *model, const char *path, gboolean fast_decode,
                                GError **error);

/* Image files decoded and preprocessed on worker threads ahead of the
 * encoder, handed out in the order given.  Memory is bounded whatever the
 * number of files: `ahead` model inputs plus one decoded file per worker. */
typedef struct AgcImagePipeline AgcImagePipeline;

typedef struct
{
  int n_workers;        /* decoding threads; <= 0: agc_get_threads () */
  int ahead;            /* images decoded before the caller takes them; <= 0: 32 */
  gboolean fast_decode; /* agc_model_load_image's fast_decode */
  /* Optional more work per decoded image on the worker (e.g. tiles):
   * *extra is handed out with the image and freed with extra_free. */
  gboolean (*extra) (const AgcImage *image, gpointer *extra, gpointer user_data,
                     GError **error);
  void (*extra_free) (gpointer extra);
  gpointer user_data;
} AgcImagePipelineOptions;

typedef struct
{
  GError *error;     /* the file could not be read, decoded or preprocessed (names it) */
  int width, height; /* of the decoded image */
  float *pixels;     /* [3, S, S] model input */
  gpointer extra;    /* AgcImagePipelineOptions.extra's result */
} AgcPipelineImage;

/* Starts the workers over paths[n_paths] (kept by the caller until freed);
 * options may be NULL (the defaults). */
AgcImagePipeline *agc_image_pipeline_new (const AgcModel *model, const char *const *paths,
                                          int n_paths, const AgcImagePipelineOptions *options);
/* The next image in order (waits for it), valid until the next call; NULL
 * after the last. */
const AgcPipelineImage *agc_image_pipeline_next (AgcImagePipeline *pipeline);
/* Stops the workers and frees everything. */
void agc_image_pipeline_free (AgcImagePipeline *pipeline);

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

/* All fields FALSE: the library's own kernels, whole encoders, float32. */
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
 * the CPU has no int8 kernel (AVX2 at least).  AgriCLIP models: the ResNet-50's
 * convolutions run on int8 the same way (agc_resnet_set_options), the
 * aligner stays float32.  Turning it off always succeeds.  The
 * int8 field of the model's options (agc_model_set_options), the others
 * unchanged. */
gboolean agc_model_set_int8 (AgcModel *model, gboolean int8, GError **error);
gboolean agc_model_get_int8 (const AgcModel *model);

/* Whether the model's own passes over image files (the embedding caches of
 * agc_evaluate and agc_train) decode them as agc_model_load_image's
 * fast_decode; their cached embeddings are then kept apart from the full
 * decode's.  Off by default. */
void agc_model_set_fast_decode (AgcModel *model, gboolean fast_decode);
gboolean agc_model_get_fast_decode (const AgcModel *model);

/* ---- label sets -------------------------------------------------------- */

/* A set of classes, each with an export name (stable, written to files), a
 * display name (shown to people) and the prompts that describe it.  The file
 * format is documented in models/labels/README.md. */
typedef struct AgcLabelSet AgcLabelSet;

/* Reads a label-set file.  AGC_ERROR_IO when it cannot be read,
 * AGC_ERROR_FORMAT (naming the file and the offending key) when it is not a
 * valid label set. */
AgcLabelSet *agc_label_set_load (const char *path, GError **error);
/* A label-set file, or the id of an installed set ("plantvillage") looked up
 * as ID.json in: the folders of $AGRICLIP_LABELS_PATH (':'-separated), then
 * labels/ in each agriclip data folder: the user's $XDG_DATA_HOME/agriclip;
 * in an uninstalled build (the library runs from its build folder), the
 * source tree's models/; the system data folders' agriclip/; the install
 * prefix's share/agriclip.  An installed library never looks at the source
 * tree. */
AgcLabelSet *agc_label_set_open (const char *file_or_id, GError **error);
/* The ids of the installed sets, sorted, without duplicates (g_strfreev). */
char **agc_label_set_list_installed (void);
/* Classes named on the command line: each name is put into every template
 * ("a photo of a {}."); templates may be NULL for the default one. */
AgcLabelSet *agc_label_set_new_from_names (const char *const *names, int n_names,
                                           const char *const *templates, int n_templates,
                                           GError **error);
void agc_label_set_free (AgcLabelSet *set);

/* The id the file declares ("plantvillage"); "custom" for a set made from
 * names. */
const char *agc_label_set_id (const AgcLabelSet *set);
/* For pickers and tooltips: the title, and the description ("" when the file has none). */
const char *agc_label_set_title (const AgcLabelSet *set);
const char *agc_label_set_description (const AgcLabelSet *set);
int agc_label_set_n_classes (const AgcLabelSet *set);
const char *agc_label_set_class_name (const AgcLabelSet *set, int class_index);
const char *agc_label_set_class_display_name (const AgcLabelSet *set, int class_index);
/* The display name in the user's language, for people (pickers, results
 * windows): for an installed set (its id names one, see
 * agc_label_set_list_installed) the translation from the "agriclip" message
 * catalogue, else the display name itself.  Files, exports and adapters
 * keep agc_label_set_class_display_name and the export name.  Owned by the
 * set or the catalogue; the program binds the catalogue (bindtextdomain). */
const char *agc_label_set_class_translated_name (const AgcLabelSet *set, int class_index);
/* The prompts of one class, NULL-terminated, owned by the set: the exact
 * sentences the text encoder reads (templates filled, then the class's own
 * prompts). */
const char *const *agc_label_set_class_prompts (const AgcLabelSet *set, int class_index);

/* The fields as the file wrote them, for editors that write a set back:
 * the source ("" when none), the templates with their {} (NULL-terminated;
 * for a set made from names, the templates it was given), and per class
 * its "text" (NULL when the file has none: the display name fills the
 * templates), its own "prompts" (NULL-terminated, maybe empty) and
 * "use_templates".  All owned by the set. */
const char *agc_label_set_source (const AgcLabelSet *set);
const char *const *agc_label_set_templates (const AgcLabelSet *set);
const char *agc_label_set_class_text (const AgcLabelSet *set, int class_index);
const char *const *agc_label_set_class_own_prompts (const AgcLabelSet *set, int class_index);
gboolean agc_label_set_class_uses_templates (const AgcLabelSet *set, int class_index);
/* For captions (agc_captions_write): the class's "domain" ("crop",
 * "livestock" or "fish"; the file's top-level "domain" when the class has
 * none; "" when neither has one) and its "attributes" (NULL-terminated,
 * maybe empty).  Owned by the set. */
const char *agc_label_set_class_domain (const AgcLabelSet *set, int class_index);
const char *const *agc_label_set_class_attributes (const AgcLabelSet *set, int class_index);

/* ---- zero-shot classification ------------------------------------------ */

typedef struct AgcClassifier AgcClassifier;

/* Encodes every prompt of every class and combines them by the model's
 * recipe (agc_model_class_recipe; CLIP: the open_clip one, normalise each
 * prompt embedding, average per class, normalise again). */
AgcClassifier *agc_classifier_new (AgcModel *model, const AgcLabelSet *labels,
                                   GCancellable *cancellable, GError **error);
void agc_classifier_free (AgcClassifier *classifier);

/* The classes it scores: the label set's or the adapter's, in their order. */
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
 * Method "contrastive" (ViT models; issue 16): DATA holds image-text pairs,
 * DATA/captions.jsonl as agc_captions_write writes it (the format of
 * agc_pretrain).  The last finetune_blocks blocks of both towers (0: every
 * block), ln_post and visual_projection, final_layer_norm and
 * text_projection, and the logit scale are trained with CLIP's symmetric
 * contrastive loss at the learned scale (clamped to [0, ln 100]); AdamW
 * (weight decay on matrices only), warm-up and cosine decay as finetune,
 * the gradient norm of all of them clipped at 1.  A seeded val_fraction of
 * the images is held out with every caption of theirs; the validation loss
 * is the same loss over the held-out pairs (in chunks of 256), the accuracy
 * image-to-caption retrieval among them, and they pick the epoch kept as
 * for the other methods.  The frozen blocks run once per image and caption
 * at the start (in memory, as finetune).  The adapter ("contrastive", see
 * agc_model_apply_adapter) holds both towers' new tensors and logit_scale;
 * its classes are those of DATA/photos when that is a tagged folder (as
 * agc_captions_write leaves it), else none (use it as the base of another
 * method).
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
  AGC_TRAIN_DINO,     /* the ResNet-50 (AgriCLIP) or ViT tower by DINO on unlabelled photos */
  AGC_TRAIN_CONTRASTIVE, /* ViT models: the last blocks of both towers on image-text pairs */
} AgcTrainMethod;

/* "probe", "aligner", "finetune", "dino", "contrastive"; NULL for an
 * unknown value (agc_train_methods lists the methods in the order a
 * front end shows them). */
const char *agc_train_method_name (AgcTrainMethod method);
/* FALSE for an unknown name. */
gboolean agc_train_method_from_name (AgcTrainMethod *method, const char *name);
/* The method's own AdamW learning rate, which learning_rate 0 stands for
 * (AgcTrainParams); 0 for an unknown method.  dino: per 256 images of a
 * step (the reference's linear scaling rule, see AgcTrainParams). */
double agc_train_method_learning_rate (AgcTrainMethod method);
/* The method's own weight decay (0.01; dino 0.04, the start of its
 * schedule); what agc_train_default_params gives is the probe's. */
double agc_train_method_weight_decay (AgcTrainMethod method);

/* The methods agc_train knows, in the order a chooser lists them;
 * *n_methods gets their number.  Static: not freed. */
const AgcTrainMethod *agc_train_methods (int *n_methods);
/* A line naming the method and what it trains, for a chooser, in English:
 * translated by the "agriclip" gettext domain (g_dgettext ("agriclip",
 * name)); NULL for an unknown value. */
const char *agc_train_method_display_name (AgcTrainMethod method);

/* What a method learns from. */
typedef enum
{
  AGC_TRAIN_DATA_TAGGED, /* one sub-folder of photos per class (probe, aligner, finetune) */
  AGC_TRAIN_DATA_PHOTOS, /* any photos under the folder, no labels (dino) */
  AGC_TRAIN_DATA_PAIRS,  /* image-text pairs: FOLDER/captions.jsonl (agc_captions_write) */
} AgcTrainData;

/* The data the method needs; AGC_TRAIN_DATA_TAGGED for an unknown value. */
AgcTrainData agc_train_method_data (AgcTrainMethod method);

typedef enum
{
  AGC_TRAIN_STAGE_EMBED,  /* done/total images encoded or found in the cache */
  AGC_TRAIN_STAGE_RESUME, /* continuing after epoch `done` of a checkpoint */
  AGC_TRAIN_STAGE_EPOCH,  /* epoch `done` of at most `total` finished; losses set */
  AGC_TRAIN_STAGE_STEP,   /* dino: step `done` of `total` of this epoch; train_loss its mean */
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
/* A problem that does not stop training (an AgcReportFunc): a skipped
 * file, a cache that cannot be written, a checkpoint made with other
 * settings. */
typedef AgcReportFunc AgcTrainReportFunc;

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
  int finetune_blocks;    /* K: the last K vision blocks are trained (1 .. L), 2;
                           * contrastive: the last K blocks of each tower (1 .. the smaller
                           * tower's L), or 0: every block of both */
  double finetune_mix;    /* WiSE-FT: adapter = (1 - mix) original + mix trained, 0 .. 1; 1.0 */
  double finetune_warmup; /* learning-rate warm-up: < 1, a share of the planned steps; >= 1,
                           * steps; then a cosine decay to 0 at the last planned step.  0.1 */
  /* aligner (AgriCLIP): closed-form ridge regression of the ResNet features
   * f onto the targets, λ = aligner_ridge · trace(Fcᵀ Fc) / 2048 (Fc: the
   * centred training features, so 1 is the features' mean variance times
   * the number of images); 0: λ chosen by the validation loss among 10^-3 ..
   * 10^3 of that unit, the released aligner kept unless one does better.  0 */
  double aligner_ridge;
  /* dino: self-distillation on unlabelled photos (every image under DATA,
   * sub-folders included, no labels.json): a student backbone and head
   * learn to match the EMA teacher on multi-crop views.  The backbone is an
   * AgriCLIP model's ResNet-50, or a CLIP model's ViT image tower (whole,
   * or its last dino_blocks blocks; its features the projected class token;
   * every crop at its input size, so a local crop costs a global one).  The
   * adapter holds the teacher's tensors under the model's names.  batch_size images per
   * micro-batch, dino_accumulate micro-batches per AdamW step; no
   * validation (val_fraction and patience unused), the last epoch kept.
   * Schedules as the reference's (main_dino.py, utils.cosine_scheduler,
   * per optimiser step): the learning rate learning_rate · batch_size ·
   * dino_accumulate / 256 (linear scaling), reached by a linear warm-up
   * over the first 10 epochs (a tenth of them, rounded down, in runs of
   * fewer than 100), then a cosine down to 1e-6;
   * the weight decay (weights only) a cosine from weight_decay up to 10 ·
   * weight_decay (the reference: 0.04 to 0.4); the teacher momentum a
   * cosine from dino_teacher_momentum to 1; the last layer frozen in the
   * first epoch. */
  int dino_local_crops; /* local crops per image, 2 (the reference: 6) */
  int dino_out_dim;     /* the head's outputs (prototypes), 4096 (the reference: 65536) */
  int dino_accumulate;  /* micro-batches per step, 1 */
  int dino_crop_size;   /* global crops' side; local ones 96/224 of it (the
                         * ResNet; a ViT's crops are all at its input size).
                         * 0 (default): the model's input size (agc_model_image_size) */
  /* The EMA teacher's momentum at the first step, 0.996 (main_dino.py's
   * --momentum_teacher; lower lets a short run's teacher leave its random
   * start sooner), 0 .. 1; its sharpening temperature, 0.04 (--teacher_temp,
   * no warm-up), > 0. */
  double dino_teacher_momentum;
  double dino_teacher_temp;
  int dino_blocks;      /* ViT models: the last K vision blocks, ln_post and the projection
                         * trained, the blocks below frozen; 0 (default): the whole tower */
  /* Stacking: an adapter file (finetune, aligner, or any that replaces the
   * model's tensors; NULL: none) applied to the model before training, so
   * that the method sees the adapted features.  The model keeps it applied
   * afterwards.  The adapter written holds the new tensors and the base's
   * others (one file, usable alone), its agriclip.stack metadata the bases'
   * method, digest and file name (see "adapters"). */
  const char *base_adapter;
} AgcTrainParams;

/* The defaults given in the comments above (method probe, seed 0). */
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
 * checkpoint (a new one is written first when checkpoints are on).  An
 * out_path that exists and is not an agriclip adapter (a model's weights, a
 * photo…) is refused with AGC_ERROR_INPUT before anything is trained. */
gboolean agc_train (AgcModel *model, const char *data_dir, const char *out_path,
                    const AgcTrainParams *params, AgcTrainResult *result,
                    GCancellable *cancellable, GError **error);

/* ---- captions ------------------------------------------------------------
 *
 * Image-text pairs for contrastive training (the format of agc_pretrain's
 * data) from a tagged folder (DATA/TAG/…, DATA/labels.json
 * as in "training"), by AgriCLIP's prompt generation: each class's label
 * becomes varied sentences through templates of its domain.  labels.json
 * may give each class a "domain" ("crop", "livestock", "fish"; or one for
 * the whole file) and "attributes" (what its photos show), see
 * models/labels/README.md; the template families are in docs/captions.md.
 *
 * OUT/captions.jsonl gets one {"image": "photos/TAG/FILE", "caption":
 * TEXT} per line, per_image lines per photo, and OUT/photos is a link to
 * DATA (absolute): the photos are named, never copied, and every image
 * path stays inside OUT, as pretraining demands (no "..", not absolute).
 * The same seed and folder give the same file. */

/* The most captions per photo. */
#define AGC_CAPTIONS_MAX_PER_IMAGE 100

typedef struct
{
  int per_image;                 /* captions per photo, 1 .. AGC_CAPTIONS_MAX_PER_IMAGE; 3 */
  guint64 seed;                  /* which templates each photo gets; 0 */
  AgcReportFunc report;          /* skipped files (names that are not UTF-8); may be NULL */
  gpointer user_data;
} AgcCaptionParams;

AgcCaptionParams agc_caption_default_params (void);

/* Writes OUT/captions.jsonl (atomically, replacing an earlier one) and the
 * link OUT/photos (made, or kept when it already leads to DATA; anything
 * else there is refused with AGC_ERROR_INPUT).  OUT is made when missing;
 * one inside DATA is refused.  Errors as agc_dataset: AGC_ERROR_FORMAT
 * naming labels.json when it is broken or does not match the folders.
 * *n_pairs (may be NULL) gets the number of lines. */
gboolean agc_captions_write (const char *data_dir, const char *out_dir,
                             const AgcCaptionParams *params, int *n_pairs, GError **error);

/* The sentences a photo of class class_index may get (g_strfreev): the
 * domain's templates filled with the class text, the attribute templates
 * with each attribute, then the class's own prompts. */
char **agc_caption_candidates (const AgcLabelSet *labels, int class_index);

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
 * Stacked adapters (trained with base_adapter): the tensors of the new
 * method (a probe's head.weight and head.bias; a finetune's or aligner's
 * tensors) plus every tensor of the base it does not replace, under the
 * same names; agriclip.method the new one's, and agriclip.stack a JSON
 * array of the bases, first applied first: [{"method": "finetune",
 * "digest": SHA-256 of the base's tensors, "file": "base.safetensors"}].
 * Applying a stacked adapter applies them all at once: the result equals
 * applying the base, then the new method.
 *
 * Model identity: the SHA-256 of the list of (file name, SHA-256 of its
 * content) of everything in the model folder that decides an image
 * embedding: the configuration (config.json, preprocessor_config.json,
 * open_clip_config.json) and the weights (*.safetensors, *.bin, *.pt, *.pth,
 * *.index.json).  Tokenizer files and READMEs do not count, so adding a
 * tokenizer.json keeps adapters valid, while a fine-tuned copy of the same
 * architecture does not pass for the original (a hash of the tensor header
 * or of the sizes would).  A model loaded from one weights file (model.pt)
 * lists that file alone, under its name.  Content hashes are remembered by file stat in
 * the cache, so only the first use of a model reads all of it. */

typedef struct AgcAdapter AgcAdapter;

/* Reads an adapter file (any method).  AGC_ERROR_IO when it cannot be
 * read, AGC_ERROR_FORMAT when it is not an agriclip adapter or is damaged. */
AgcAdapter *agc_adapter_load (const char *path, GError **error);
void agc_adapter_free (AgcAdapter *adapter);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (AgcAdapter, agc_adapter_free)

const char *agc_adapter_method (const AgcAdapter *adapter); /* "probe", "finetune", "aligner" */
int agc_adapter_n_classes (const AgcAdapter *adapter);
const char *agc_adapter_class_name (const AgcAdapter *adapter, int class_index);
const char *agc_adapter_class_display_name (const AgcAdapter *adapter, int class_index);
/* The prompts of a class, NULL-terminated, owned by the adapter (empty for
 * old probe adapters that stored none). */
const char *const *agc_adapter_class_prompts (const AgcAdapter *adapter, int class_index);
/* The tensors that replace the model's (finetune and aligner adapters: the
 * trained ones; a probe: none, or its base's when stacked), each as
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
 * a "contrastive" adapter (ViT CLIP models) does so in both towers: image
 * blocks and head, text blocks, position table, final_layer_norm and
 * text_projection, and logit_scale (stored as its log, as in the model), so
 * that class embeddings computed afterwards come from the adapted text
 * tower (the class cache's key includes the adapter's digest); a "probe"
 * adapter changes nothing here (its head is the classifier's).
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

/* ---- finding models and label sets --------------------------------------
 *
 * Front ends name models and label sets the same way: a path, or a bare
 * name that the library looks up.  A model pulled with agc_model_pull (see
 * "model hub") lives in agc_models_dir()/NAME, and any folder placed there
 * by hand resolves the same way; label sets are found as described at
 * agc_label_set_open. */

/* The folder of pulled models: $XDG_DATA_HOME/agriclip/models, by default
 * ~/.local/share/agriclip/models (g_free). */
char *agc_models_dir (void);

/* What a model argument means: an existing file or folder wins; otherwise a
 * bare name (no directory separator) that is a folder in agc_models_dir();
 * else name_or_path unchanged, so that loading it reports what the user
 * typed.  Never NULL (g_free). */
char *agc_model_resolve_path (const char *name_or_path);

/* The same for an option value: replaces *name_or_path (g_malloc'ed; NULL
 * is left alone) by its resolution, freeing the old string. */
void agc_model_resolve_path_in_place (char **name_or_path);

/* The file agc_label_set_open reads for file_or_id (g_free): file_or_id
 * itself when it is a path or an existing file, else the first ID.json of
 * the search path.  NULL and AGC_ERROR_IO, listing the installed ids, for
 * an id that is installed nowhere. */
char *agc_label_set_find (const char *file_or_id, GError **error);

/* ---- tokenizers ------------------------------------------------------------
 *
 * A model's tokenizer without its weights, for token ids alone (and for
 * folders that hold only vocab.json + merges.txt).  The CLIP byte-level BPE:
 * it encodes text exactly as OpenAI's simple_tokenizer does (clean: NFC,
 * quotes, HTML entities, whitespace, lower case; pre-tokenise, byte-encode,
 * merge by rank, wrap in <|startoftext|> … <|endoftext|>, truncate, pad). */

typedef struct AgcTokenizer AgcTokenizer;

/* A model folder: vocab.json + merges.txt, else bpe_simple_vocab_16e6.txt.gz;
 * an AGC_ERROR_IO error naming the folder and the files looked for otherwise. */
AgcTokenizer *agc_tokenizer_load_dir (const char *dir, GError **error);
void agc_tokenizer_free (AgcTokenizer *tokenizer);

/* ids[context_length]: SOT, the text's tokens, EOT, zeros.  A text too long
 * is truncated and its last id forced to EOT.  Invalid UTF-8 is an
 * AGC_ERROR_INPUT error. */
gboolean agc_tokenizer_encode (const AgcTokenizer *tokenizer, const char *text,
                               int context_length, int32_t *ids, GError **error);

/* The text context length of a model folder without loading its weights:
 * from its config.json when it has one, else 77 (CLIP's). */
gboolean agc_model_dir_context_length (const char *dir, int *context_length, GError **error);

/* ---- ResNet-50 backbone ----------------------------------------------------
 *
 * The image encoder of AgriCLIP models on its own, for benchmarks beside
 * torchvision: torchvision's ResNet-50 without its fc head, pixels -> 2048
 * features (the global average pool of layer4), BatchNorm folded on load. */

#define AGC_RESNET_FEATURES 2048

typedef struct AgcResNet AgcResNet;

/* torchvision ResNet-50 weights: a safetensors file or a PyTorch ZIP
 * checkpoint (.pt, .pth, .bin; told by its first bytes), or a sharded
 * index (.json), with the names under prefix ("" or e.g. "backbone."; NULL
 * is ""); when conv1.weight is missing but the file has it under another
 * prefix, the error names it.  Every shape is checked; deeper ResNets are
 * refused rather than truncated. */
AgcResNet *agc_resnet_open (const char *weights_path, const char *prefix, GError **error);
void agc_resnet_free (AgcResNet *net);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (AgcResNet, agc_resnet_free)

/* How the convolutions run (agc_engine_default_options (): the library's own
 * kernels, float32).  use_openblas: on OpenBLAS; int8: weights quantised per
 * output channel now (kept while int8 is on), activations per pixel at every
 * call, as for the ViT (agc_model_set_int8), features within a cosine of
 * about 0.999 of the float32 ones.  products_only is ignored.  FALSE, and
 * the options unchanged, with AGC_ERROR_UNSUPPORTED when int8 is asked for
 * on a CPU without an int8 kernel (AVX2 at least), or AGC_ERROR_INPUT when
 * memory for the int8 weights is short. */
gboolean agc_resnet_set_options (AgcResNet *net, const AgcEngineOptions *options,
                                 GError **error);

/* pixels[batch, 3, height, width] (any positive size; 224 is the trained
 * one) -> features[batch, 2048].  Scratch (about 10 MB per 224 x 224 image,
 * plus a few MB of im2col tiles per thread) is kept in the net from one call
 * to the next, grown when a batch needs more; the first call with 2 images
 * or more at 224 x 224 also builds layer4's Winograd weights (72 MB, kept):
 * one net must not run in two threads at once.  Failing to allocate it, or an input too large to index,
 * is AGC_ERROR_INPUT. */
gboolean agc_resnet_forward (const AgcResNet *net, const float *pixels, int batch, int height,
                             int width, float *features, GError **error);

/* ---- pretraining -----------------------------------------------------------
 *
 * Training a small CLIP from scratch on a folder of captioned images,
 * written as a Hugging Face CLIP folder that agc_model_load loads like any
 * model.
 *
 * Data: DATA/captions.jsonl, one JSON object per line,
 *   {"image": "file.png", "caption": "a red circle on a blue ground"}
 * with the image path relative to DATA.  Blank lines are skipped; a bad
 * line, a missing or undecodable image is an error naming the file and line.
 * Every image goes through the model's preprocessing (CLIP's, at the model's
 * input size) once and stays in memory as 8-bit pixels (3 S² bytes each),
 * normalised a batch at a time; every caption is tokenised once.
 *
 * Training: both towers (pre-norm transformers with QuickGELU, layer norm
 * eps 1e-5) from a seeded random initialisation, the symmetric contrastive
 * loss, AdamW with a linear warm-up and a cosine decay to 0, global-norm
 * clipping.  Batches are drawn from a seeded shuffle each epoch; the last
 * incomplete batch of an epoch is dropped.  The same data, settings, seed
 * and thread count give the same model.
 *
 * Output: OUT (which must not exist) with config.json, model.safetensors,
 * preprocessor_config.json and the tokenizer's vocab.json and merges.txt.
 * It is built in a temporary folder beside OUT and renamed into place at
 * the end, so OUT is either absent or complete.
 *
 * Checkpoint: after every epoch OUT.checkpoint.safetensors is replaced
 * atomically (weights, AdamW moments, the token rows seen, epochs and steps
 * done, and a SHA-256 fingerprint of the settings, the shard count and the
 * data as trained on).  A run that finds the checkpoint of the same
 * fingerprint resumes after its last epoch and ends with the same model,
 * byte for byte, as a run never interrupted; a checkpoint of another run is
 * ignored and replaced.  It is deleted once OUT is complete. */

typedef struct
{
  int epoch, n_epochs;      /* the epoch running, from 1 */
  gint64 step, n_steps;     /* steps taken, of all */
  double loss;              /* mean loss of the epoch's steps so far */
  double logit_scale;       /* exp of the learned log scale */
  double images_per_second; /* of this run (a resumed one counts from where it resumed) */
  int resumed_epochs;       /* epochs a checkpoint held when this run started, or 0 */
} AgcPretrainProgress;

typedef void (*AgcPretrainProgressFunc) (const AgcPretrainProgress *progress,
                                         gpointer user_data);

/* The shape of one tower. */
typedef struct
{
  int width;     /* D; a multiple of heads */
  int layers;    /* transformer blocks */
  int heads;     /* attention heads */
  int mlp_width; /* hidden units of each block's MLP (4 D in CLIP) */
} AgcPretrainTower;

typedef struct
{
  AgcPretrainTower vision;
  AgcPretrainTower text;   /* its vocabulary is the tokenizer's */
  int image_size;          /* S: image side in pixels, a multiple of patch_size */
  int patch_size;          /* patch side in pixels */
  int context_length;      /* tokens per caption, start and end included, >= 3 */
  int embed_dim;           /* E: the shared embedding */
  int epochs;
  int batch_size;
  double lr;               /* peak AdamW learning rate */
  double weight_decay;     /* on matrices only */
  int warmup_steps;        /* < 0: 10 % of the steps */
  double clip_norm;        /* <= 0: no clipping */
  guint64 seed;            /* initial weights and batch order */
  int n_shards;            /* <= 0: one per thread (agc_get_threads) */
  AgcPretrainProgressFunc progress; /* after every step; may be NULL */
  gpointer user_data;
  int stop_after_epoch;    /* > 0 and < epochs: stop once this epoch's checkpoint is
                            * written (AGC_ERROR_CANCELLED); the same call without it
                            * continues.  Not part of the fingerprint. */
} AgcPretrainParams;

/* The recipe of the demonstration model: `agriclip synth` (20000 pairs of
 * 64 px leaves) then these defaults give >= 90 % zero-shot accuracy on its
 * held-out eval/, in about 600 CPU seconds (how they were found: at the
 * definition, train/clip-pretrain.c).
 *
 *   64 px images in patches of 8; both towers width 64, 3 blocks, 2 heads,
 *   MLP 256; context 32; embeddings of 64; 16 epochs of batches of 64;
 *   AdamW lr 3e-3 (warm-up a tenth, cosine to 0), weight decay 0.1, clip
 *   norm 1; seed 0. */
AgcPretrainParams agc_pretrain_default_params (void);

typedef struct
{
  int n_pairs;
  gint64 steps;
  double final_loss;        /* mean loss of the last epoch */
  double logit_scale;       /* exp of the learned log scale */
  double seconds;           /* training alone, not loading */
  double images_per_second; /* training throughput */
  int resumed_epochs;       /* epochs taken from a checkpoint, or 0 */
} AgcPretrainResult;

/* Trains on data_dir/captions.jsonl with the tokenizer of tokenizer_dir
 * (vocab.json + merges.txt, agc_tokenizer_load_dir) and writes out_dir.
 * result may be NULL.  AGC_ERROR_INPUT for settings that make no model,
 * AGC_ERROR_CANCELLED when cancelled between steps. */
gboolean agc_pretrain (const char *data_dir, const char *tokenizer_dir, const char *out_dir,
                       const AgcPretrainParams *params, AgcPretrainResult *result,
                       GCancellable *cancellable, GError **error);

/* ---- evaluation ------------------------------------------------------------
 *
 * How often a classifier is right on a folder of tagged photos, laid out as
 * for training (DATA/TAG/…, DATA/labels.json optional: see "training"):
 * the top label of each image against its tag, overall, per class and as a
 * confusion matrix.  Images are encoded through the embedding cache (see
 * "training"), so evaluating and then training on the same photos encodes
 * them once.
 *
 *   AgcEvaluation *e = agc_evaluation_open ("DATA", NULL, NULL, &error);
 *   agc_evaluate (e, model, NULL, NULL, NULL, NULL, NULL, &error);
 *   printf ("%d of %d right\n", agc_evaluation_n_correct (e), agc_evaluation_n_images (e));
 */

typedef struct AgcEvaluation AgcEvaluation;

/* Lists the tag folders and their files (not decoded yet).  Files directly
 * in data_dir (other than labels.json) belong to no class: they go to
 * report (may be NULL) and are left out.  AGC_ERROR_IO when the folder
 * cannot be read, AGC_ERROR_FORMAT when labels.json is broken or does not
 * match the folders, AGC_ERROR_INPUT with fewer than two tag folders or an
 * empty one. */
AgcEvaluation *agc_evaluation_open (const char *data_dir, AgcTrainReportFunc report,
                                    gpointer user_data, GError **error);
void agc_evaluation_free (AgcEvaluation *evaluation);

/* The data's classes: one per tag folder, export name = tag, owned by the
 * evaluation. */
const AgcLabelSet *agc_evaluation_labels (const AgcEvaluation *evaluation);
/* The files agc_evaluation_open listed for the data's class class_index
 * (not decoded yet: some may turn out unreadable), and the path of the
 * i-th of them (0 .. n - 1, sorted), owned by the evaluation.  For front
 * ends that show a folder's classes before evaluating or training on it. */
int agc_evaluation_class_n_files (const AgcEvaluation *evaluation, int class_index);
const char *agc_evaluation_class_file (const AgcEvaluation *evaluation, int class_index,
                                       int i);

typedef void (*AgcEvaluateProgressFunc) (int done, int total, gpointer user_data);

/* Classifies every image: with the zero-shot classifier of model over the
 * data's classes, or, when adapter_path is not NULL, with that adapter's
 * head and classes (agc_classifier_new_from_adapter, which checks the
 * model).  A file that cannot be read or decoded is skipped and goes to
 * report; progress is called as images are encoded (both may be NULL).
 * When no image is readable the counts are all 0, which is not an error
 * here.  Running again (another model, another adapter) starts afresh. */
gboolean agc_evaluate (AgcEvaluation *evaluation, AgcModel *model, const char *adapter_path,
                       AgcEvaluateProgressFunc progress, AgcTrainReportFunc report,
                       gpointer user_data, GCancellable *cancellable, GError **error);

/* k-nearest-neighbour accuracy of the image features, as DINO's eval_knn.py
 * measures a backbone: each image's features (an AgriCLIP model's ResNet-50
 * features before the aligner, a CLIP model's image embeddings), scaled to
 * unit length, are compared with those of every readable image of bank (a
 * tagged folder: agc_evaluation_open); the k most cosine-similar vote for
 * their tag with weight exp(cos / temperature) (DINO: k 20, temperature
 * 0.07) and the tag with the most weight is the image's label.  The counts
 * below then hold these labels (columns: the data's classes, then the
 * bank's others, matched by export name).  With adapter_path the model
 * first takes that adapter (for good, as agc_evaluate); without it the
 * model must carry none.  Features go through the embedding cache.
 * AGC_ERROR_INPUT when k < 1, temperature <= 0 or the bank has no readable
 * image; otherwise agc_evaluate's errors. */
gboolean agc_evaluate_knn (AgcEvaluation *evaluation, const AgcEvaluation *bank,
                           AgcModel *model, const char *adapter_path, int k, double temperature,
                           AgcEvaluateProgressFunc progress, AgcTrainReportFunc report,
                           gpointer user_data, GCancellable *cancellable, GError **error);

int agc_evaluation_n_images (const AgcEvaluation *evaluation);  /* images classified */
int agc_evaluation_n_skipped (const AgcEvaluation *evaluation); /* files unreadable */
int agc_evaluation_n_correct (const AgcEvaluation *evaluation); /* top label = tag */
/* Images of the data's class (labels' index) that were classified. */
int agc_evaluation_class_n_images (const AgcEvaluation *evaluation, int class_index);
/* The predicted classes, the columns of the confusion matrix: the data's
 * classes in their order, then those the classifier has and the data has
 * not (an adapter may know more), matched by export name. */
int agc_evaluation_n_predicted (const AgcEvaluation *evaluation);
const char *agc_evaluation_predicted_name (const AgcEvaluation *evaluation, int predicted);
/* Images of the data's class class_index whose top label was predicted. */
int agc_evaluation_count (const AgcEvaluation *evaluation, int class_index, int predicted);

/* ---- model hub -------------------------------------------------------------
 *
 * The models agriclip knows how to fetch, and fetching them into the folder
 * where agc_model_resolve_path finds them by name.
 *
 * The catalogue is models/catalogue.json (format in models/README.md), read
 * once and validated, so that no caller meets a half-valid entry.  It is
 * found at $AGRICLIP_CATALOGUE when set (a file), else as catalogue.json in
 * the first agriclip data folder that has one, in the order label sets are
 * looked for (agc_label_set_open: the user's, the source tree's in an
 * uninstalled build, the system's, the install prefix's).  Everything in it is owned by the
 * AgcCatalogue and freed with it; callers only read.
 *
 * Files of a Hugging Face repository come from $AGRICLIP_HUB_URL (mirrors,
 * tests) or https://huggingface.co, with $HF_TOKEN, when set, sent as a
 * bearer token to that host only (never to the CDN it redirects to).
 *
 * A pull downloads into DIR/.NAME.partial/ and renames that folder to
 * DIR/NAME only when every file is there and checked, so a folder named
 * after a model is always complete; a lock file keeps two pulls of one
 * model apart.  Each file gathers in FILE.part and resumes with an HTTP
 * Range request where an interrupted one stopped (a server that ignores the
 * range restarts it); a broken connection is retried a few times; a file is
 * renamed into place only once its size and SHA-256 match what the
 * catalogue knows.  Files placed in the staging folder by hand are kept when
 * they match, deleted otherwise.
 *
 * Where the catalogue has no size or SHA-256, what the server announces is
 * checked instead (the Hub's X-Linked-Size and X-Linked-Etag, an ETag that
 * is a SHA-256, Content-Length); a body beyond the known size or a web page
 * (text/html) is refused at once; and before the rename every JSON file must
 * parse and every checkpoint (.safetensors, .bin, .pt, .pth, .ckpt) open, so
 * that a truncated file or an error page is never taken for the model (a
 * damaged file is deleted, to be fetched again).  Limits, from the
 * environment: AGRICLIP_PULL_TIME_LIMIT (seconds for the whole pull, default
 * 86400, 0 for none); a connection slower than AGRICLIP_PULL_MIN_RATE bytes/s
 * (default 1024) for AGRICLIP_PULL_MIN_RATE_TIME seconds (default 60) counts
 * as broken (retried, then kept to resume). */

typedef struct
{
  char *path;        /* in the model folder, '/'-separated, never ".." */
  char *repository;  /* Hugging Face repository, or NULL */
  char *revision;    /* with repository */
  char *remote_path; /* with repository: the path inside it */
  char *url;         /* a direct address instead of a repository, or NULL */
  char *manual;      /* how a person gets it when agriclip cannot, or NULL */
  gint64 size;       /* bytes, -1 when unknown */
  char *sha256;      /* 64 lower-case hex digits, NULL when unknown */
} AgcCatalogueFile;

typedef struct
{
  char *name; /* folder name, and the NAME agc_model_resolve_path finds */
  char *title;
  char *family; /* hf-clip, open_clip, openai or agriclip */
  char *homepage, *repository, *revision, *licence, *good_for, *notes; /* NULL when absent */
  char **unverified; /* field names whose values were not checked at the source */
  GPtrArray *files;  /* of AgcCatalogueFile */
} AgcCatalogueModel;

typedef struct
{
  char *path;            /* the file read */
  GPtrArray *models;     /* of AgcCatalogueModel, file order */
  GStringChunk *strings; /* every string of the entries above */
} AgcCatalogue;

/* Reads and validates the catalogue file at path; errors name the file and
 * the entry. */
AgcCatalogue *agc_catalogue_load (const char *path, GError **error);
/* The catalogue of the search order above; the error lists the places tried. */
AgcCatalogue *agc_catalogue_open (GError **error);
void agc_catalogue_free (AgcCatalogue *catalogue);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (AgcCatalogue, agc_catalogue_free)

/* NULL when the catalogue has no model of that name. */
const AgcCatalogueModel *agc_catalogue_find (const AgcCatalogue *catalogue, const char *name);
/* TRUE when field (e.g. "licence", "files") is listed as unverified. */
gboolean agc_catalogue_model_unverified (const AgcCatalogueModel *model, const char *field);

/* The hub's address, without a trailing '/' (g_free). */
char *agc_hub_url (void);
/* Where a file is downloaded from, NULL for one a person fetches by hand
 * (g_free).  Repository files: {hub}/{repository}/resolve/{revision}/{path}. */
char *agc_catalogue_file_url (const AgcCatalogueFile *file);
/* Where a file goes in a model folder (g_free). */
char *agc_catalogue_file_dest (const AgcCatalogueFile *file, const char *folder);

/* The domain of download and pull errors (codes below), apart from
 * AGC_ERROR's cancellation and I/O errors. */
#define AGC_HUB_ERROR (agc_hub_error_quark ())
GQuark agc_hub_error_quark (void);

typedef enum
{
  AGC_HUB_ERROR_OFFLINE,  /* the server cannot be reached at all */
  AGC_HUB_ERROR_NETWORK,  /* the connection broke or stalled; FILE.part is kept */
  AGC_HUB_ERROR_HTTP,     /* the server answered with an error status (404 ...) */
  AGC_HUB_ERROR_CHECKSUM, /* wrong size or SHA-256; the bytes were deleted */
  AGC_HUB_ERROR_DISK,     /* the file cannot be written (disk full ...); FILE.part is kept */
} AgcHubError;

/* What a pull is doing, for progress displays.  Every stage names the file
 * and where it goes (dest); the other members are set where said. */
typedef enum
{
  AGC_PULL_CHECKED,     /* the file is in place and checked: bytes (its size, -1 when
                         * unknown), sha256 (what it holds), check (against what) */
  AGC_PULL_MISMATCH,    /* a file left there earlier differs from the catalogue: it was
                         * deleted and is downloaded again */
  AGC_PULL_DOWNLOAD,    /* its download starts: url */
  AGC_PULL_RESUME,      /* an earlier download is continued after bytes */
  AGC_PULL_REQUEST,     /* a request (the first or a retry) is sent */
  AGC_PULL_BYTES,       /* bytes of total (-1: unknown) are in, request_bytes of them by
                         * this request; often: a display should throttle itself */
  AGC_PULL_RETRY,       /* a request failed (message); attempt of max_attempts follows */
  AGC_PULL_TRANSFERRED, /* the requests are over: ok, bytes in all, request_bytes by the
                         * last request (checking and renaming follow) */
} AgcPullStage;

/* What a file in place was checked against (AGC_PULL_CHECKED): the
 * catalogue's SHA-256 (and size), the catalogue's size alone, the SHA-256 the
 * server announced (the Hub's X-Linked-Etag, an LFS file's digest), the size
 * the server announced alone, or nothing that says what the file should be. */
typedef enum
{
  AGC_PULL_CHECK_NONE,
  AGC_PULL_CHECK_CATALOGUE_SHA256,
  AGC_PULL_CHECK_CATALOGUE_SIZE,
  AGC_PULL_CHECK_SERVER_SHA256,
  AGC_PULL_CHECK_SERVER_SIZE,
} AgcPullCheck;

typedef struct
{
  AgcPullStage stage;
  const AgcCatalogueFile *file;
  const char *dest;
  const char *url;
  const char *sha256;
  gint64 bytes;
  gint64 total;
  gint64 request_bytes;
  const char *message;
  int attempt, max_attempts;
  gboolean ok;
  AgcPullCheck check;
} AgcPullProgress;

typedef void (*AgcPullProgressFunc) (const AgcPullProgress *progress, gpointer user_data);

typedef struct
{
  char *folder;         /* DIR/NAME */
  gboolean was_present; /* DIR/NAME existed: nothing was fetched (delete it to pull again) */
  char *staging;        /* DIR/.NAME.partial */
  GPtrArray *manual;    /* of const AgcCatalogueFile, the model's: files agriclip cannot
                         * download and nobody has put in staging yet (their manual says
                         * how); empty when the pull is complete */
} AgcPullResult;

/* Fetches every file of model into dir/NAME as described above (dir: e.g.
 * agc_models_dir(), created when missing).  TRUE when the folder is complete
 * or was there, and also when only files a person has to fetch are missing
 * (result->manual; pull again once they are in place).  On failure the
 * files received so far stay in the staging folder for the next pull; the
 * error is AGC_HUB_ERROR (AGC_HUB_ERROR_OFFLINE: nothing could be reached),
 * AGC_ERROR_IO (folders, another pull of the same model running) or
 * AGC_ERROR_CANCELLED.  progress may be NULL.  result is filled on success
 * and must be cleared with agc_pull_result_clear. */
gboolean agc_model_pull (const AgcCatalogueModel *model, const char *dir,
                         AgcPullProgressFunc progress, gpointer user_data, AgcPullResult *result,
                         GCancellable *cancellable, GError **error);
void agc_pull_result_clear (AgcPullResult *result);

/* ---- tagging runs ----------------------------------------------------------
 *
 * `agriclip tag` labels every image of one or more folders into a run
 * folder RUN, which other tools (merge, export) read back:
 *
 *   RUN/run.json       what the run is: format "agriclip-tag-run", version 1,
 *                      the model, its identity, the classes, the label set,
 *                      the settings, the sources and the shard (AgcTagRun)
 *   RUN/results.jsonl  one JSON object per image (AgcTagResult), one per line
 *
 * A result line is the JSON-lines format of `agriclip classify` plus fields:
 *
 *   {"image": "sub/leaf 1.jpg", "source": 0, "width": 1024, "height": 768,
 *    "labels": [{"label": "rust", "p": 0.812345}, ...],  top K, best first
 *    "review": false,
 *    "boxes": [{"x": 0, "y": 0, "width": 512, "height": 512,
 *               "label": "rust", "p": 0.734}]}         only with regions
 *
 * "image" is relative to the source folder sources["source"] of run.json
 * (a file given as a source counts as its folder's: sources holds the
 * folder, image the file's name).  Paths are the bytes of the file
 * system: a name that is not UTF-8 is written as "image" in its display
 * form (invalid bytes as U+FFFD) plus "image_base64", the exact bytes in
 * base64, which the reader prefers.  Probabilities are written with 6
 * decimals, as classify does; box coordinates are pixels of the original
 * image (after its EXIF orientation).  The writer and the reader below are
 * the one definition of these files. */

/* One class among an image's labels or one box's label. */
typedef struct
{
  char *label; /* export name */
  float p;
} AgcTagLabel;

/* One region, in pixels of the original image. */
typedef struct
{
  int x, y, width, height;
  char *label; /* export name */
  float p;
} AgcTagBox;

/* One line of results.jsonl.  Strings and arrays are owned by the record
 * (agc_tag_result_clear frees them). */
typedef struct
{
  char *image;         /* relative to its source folder, file-system bytes */
  int source;          /* index into the run's sources */
  int width, height;   /* of the original image */
  int n_labels;
  AgcTagLabel *labels; /* top K, most probable first */
  gboolean review;     /* the top probability is below the run's review_below */
  gboolean has_boxes;  /* the run has regions ("boxes" written, maybe empty) */
  int n_boxes;
  AgcTagBox *boxes;
} AgcTagResult;

void agc_tag_result_clear (AgcTagResult *result);
/* Clears and frees a result made with g_new0 (the reader's). */
void agc_tag_result_free (AgcTagResult *result);
/* The result as one JSON object, without the newline (g_free). */
char *agc_tag_result_to_json (const AgcTagResult *result);
/* Reads one line written by agc_tag_result_to_json into *result (cleared
 * first by the caller: {0}).  AGC_ERROR_FORMAT naming `where` (e.g.
 * "RUN/results.jsonl:12") when it is not such an object. */
gboolean agc_tag_result_from_json (const char *line, gssize length, const char *where,
                                   AgcTagResult *result, GError **error);

/* run.json.  Strings and arrays are owned by the struct (agc_tag_run_free). */
typedef struct
{
  char *model;          /* as given on the command line (path or catalogue name) */
  char *model_identity; /* agc_model_identity, with the adapter's when there is one */
  char *label_set;      /* label-set file or id, or the adapter file, as given */
  int n_classes;
  char **labels;        /* [n_classes] export names, in the label set's order */
  char **displays;      /* [n_classes] display names */
  int top;              /* K */
  double review_below;  /* P, or < 0 for none */
  int tile, stride;     /* regions in pixels, or 0, 0 for none */
  int n_sources;
  char **sources;       /* [n_sources] absolute folder paths */
  int shard_index, shard_count; /* shard_count 0: not sharded */
  char *classes_sha256; /* of what makes the classifier (agc_tag_run_new), or NULL */
  gboolean fast_decode; /* images decoded as agc_model_load_image's fast_decode
                           (settings "decode": "fast"; "exact", the default, otherwise) */
  gboolean int8;        /* the image encoder ran on int8 weights (agc_model_get_int8 of
                           agc_tag's model, which sets it): settings "precision": "int8";
                           "float32", the default, otherwise */
} AgcTagRun;

void agc_tag_run_free (AgcTagRun *run);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (AgcTagRun, agc_tag_run_free)
/* run.json's text, indented, ending in a newline (g_free). */
char *agc_tag_run_to_json (const AgcTagRun *run);
/* Reads RUN/run.json.  AGC_ERROR_IO when it cannot be read,
 * AGC_ERROR_FORMAT when it is not a version-1 run description. */
AgcTagRun *agc_tag_run_load (const char *run_dir, GError **error);
/* Reads RUN/results.jsonl: AgcTagResult pointers, in file order, freed with
 * the array.  A last line without its newline (a run killed while writing)
 * is left out.  AGC_ERROR_IO / AGC_ERROR_FORMAT naming the file and line. */
GPtrArray *agc_tag_results_load (const char *run_dir, GError **error);

/* ---- tagging: running ------------------------------------------------------
 *
 *   AgcTagRun *run = agc_tag_run_new (model, "clip-b32", labels, NULL, "plantvillage", &error);
 *   run->top = 5;
 *   AgcTagOptions options = agc_tag_default_options ();
 *   int skipped = agc_tag (model, classifier, run, sources, n_sources, "RUN", &options,
 *                          NULL, &error);
 *
 * Images: agc_image_collect over each source (a folder, or a file, which
 * counts as its folder's), without duplicates, in the order of the sources
 * then of their relative paths compared component by component with strcmp
 * (the order of agc_image_collect within a folder).  With a shard, only
 * the images whose relative path falls into it (agc_tag_shard_of).
 *
 * Every image goes through the model at a batch of AGC_TAG_BATCH rows,
 * short batches padded, so that an image's probabilities do not depend on
 * which images share its batch: an interrupted, resumed or sharded run
 * gives the same numbers as one run.  Decoding and preprocessing run on
 * worker threads ahead of the encoder (agc_image_pipeline_new, with the
 * run's fast_decode).  run->int8 is set to the model's agc_model_get_int8:
 * run.json records the precision that ran.
 *
 * Resuming: results are appended a batch at a time; after each batch
 * results.jsonl is flushed to disk and RUN/journal gets a line
 * "committed BYTES IMAGES" (the length of results.jsonl that is complete);
 * a run that ends writes "complete SKIPPED".  Started again on the same
 * RUN, agc_tag cuts results.jsonl back to the last committed length (what
 * a killed run wrote after it is dropped) and tags only the images not in
 * it, so the file ends as an uninterrupted run's would, byte for byte.
 * A RUN whose run.json differs from run in anything but "model" (the name
 * as given) is refused with AGC_ERROR_INPUT naming the difference. */

/* Images encoded together (whole images and region tiles alike). */
#define AGC_TAG_BATCH 8
/* The top probability below which a box is not kept, and the overlap
 * (intersection over union) above which the less probable of two boxes of
 * one class is dropped. */
#define AGC_TAG_BOX_THRESHOLD 0.5
#define AGC_TAG_BOX_MAX_IOU 0.5

typedef struct
{
  int done;                 /* images tagged, resumed ones included */
  int total;                /* images of the run (this shard's) */
  int resumed;              /* of done, those an earlier run had tagged */
  int skipped;              /* files that could not be read or decoded */
  double images_per_second; /* of this run */
  double eta_seconds;       /* < 0 until known */
} AgcTagProgress;

typedef void (*AgcTagProgressFunc) (const AgcTagProgress *progress, gpointer user_data);

typedef struct
{
  gboolean recursive;          /* descend into sub-folders of sources */
  int n_workers;               /* decoding threads; <= 0: agc_get_threads () */
  AgcTagProgressFunc progress; /* after every batch; may be NULL */
  AgcReportFunc report;        /* a skipped file or folder; may be NULL */
  gpointer user_data;
} AgcTagOptions;

AgcTagOptions agc_tag_default_options (void);

/* The description of a run of model (named model_name on the command
 * line) with the classes of labels or of adapter (one of them NULL),
 * label_set_name being the file, id or adapter path given: model identity
 * (with the adapter's tensors), classes and a "classes_sha256" of
 * everything that makes the classifier (prompts, adapter tensors).
 * Settings are top 5, no review, no regions, no shard; sources are filled
 * by agc_tag. */
AgcTagRun *agc_tag_run_new (const AgcModel *model, const char *model_name,
                            const AgcLabelSet *labels, const AgcAdapter *adapter,
                            const char *label_set_name, GError **error);

/* Which of n_shards a relative path belongs to: the FNV-1a 64-bit hash of
 * its bytes, modulo n_shards. */
int agc_tag_shard_of (const char *relative_path, int n_shards);

/* Tags the images of sources[n_sources] into run_dir (created when
 * missing; an existing folder must be empty or a run of the same
 * description: see above), classifying with classifier (made for model and
 * run's classes).  Fills run->sources.  Files that cannot be read are
 * reported and skipped; returns how many, or -1 with error set (I/O on
 * RUN, a different run there, cancellation: the results so far stay and a
 * later call resumes). */
int agc_tag (AgcModel *model, const AgcClassifier *classifier, AgcTagRun *run,
             const char *const *sources, int n_sources, const char *run_dir,
             const AgcTagOptions *options, GCancellable *cancellable, GError **error);

/* Joins the complete runs run_dirs[n_runs], shards of one run (same
 * run.json but for the shard index; indices all different), into out_dir
 * (which must not exist): run.json without a shard, results.jsonl in the
 * order of one unsharded run, a complete journal.  AGC_ERROR_INPUT for
 * mismatched settings, a shard given twice or missing, an unfinished shard
 * or an image found in two shards. */
gboolean agc_tag_merge (const char *out_dir, const char *const *run_dirs, int n_runs,
                        GError **error);

/* ---- regions ------------------------------------------------------------- */

typedef struct
{
  int x, y, width, height;
} AgcRect;

/* Square tiles of tile pixels (clamped to the image's sides) every stride
 * pixels, plus a last one flush with the right and bottom edges, row by
 * row: an array of AgcRect (g_array_unref). */
GArray *agc_tile_grid (int width, int height, int tile, int stride);
/* A copy of rect of image (rect inside it). */
AgcImage *agc_image_crop (const AgcImage *image, const AgcRect *rect);
/* Non-maximum suppression: sorts boxes by p (most probable first) and
 * keeps a box unless a kept one of the same label overlaps it with an
 * intersection over union above max_iou; the labels of dropped boxes are
 * freed.  Returns the number kept, at the start of boxes. */
int agc_boxes_suppress (AgcTagBox *boxes, int n_boxes, double max_iou);

/* ---- exporting a run ---------------------------------------------------------
 *
 * agc_tag_export writes a run (RUN/run.json + RUN/results.jsonl) in a format
 * that dataset and photo tools read.  DEST is a folder; it is written under
 * a temporary name beside it and put in place when complete, so DEST is
 * never half an export.  An existing DEST is replaced only when it is empty
 * or an earlier export of the same format (DEST/.agriclip-export says which),
 * as a whole: files added to that export by hand go with it; anything else
 * is refused (AGC_ERROR_INPUT).  Originals are never moved
 * or changed.  Images are ordered by (source, path); image file names made
 * in DEST are the originals' names, "NAME-2.EXT", "NAME-3.EXT"… for later
 * images whose name (without extension) is taken, so an export of a run is
 * always the same.
 *
 *   folders       DEST/<label>/<image> for the most probable label, and
 *                 DEST/_review/<label>/<image> for images marked for review;
 *                 symbolic links to the originals, copies with copy.
 *                 Labels become folder names with '/' as '_'.
 *   csv           DEST/labels.csv: path,image,source,rank,label,display,p,review,
 *                 one row per image and label (RFC 4180 quoting); with regions
 *                 also DEST/boxes.csv: path,image,label,p,x,y,width,height.
 *   coco          DEST/annotations.json: images (file_name the absolute path;
 *                 agriclip_labels: the top K as category_id/score;
 *                 agriclip_review), categories (id 1…C in label-set order),
 *                 annotations: the boxes (bbox [x, y, w, h] in pixels, score);
 *                 without regions one per image for its most probable label,
 *                 with the whole image as bbox.
 *   yolo          without regions, ImageFolder: DEST/<label>/<image>; with
 *                 regions, DEST/images/<image>, DEST/labels/<stem>.txt
 *                 ("class cx cy w h", normalised) and DEST/data.yaml.
 *   label-studio  DEST/tasks.json (tasks with one prediction each: a "choices"
 *                 result from "label" and "rectanglelabels" results from
 *                 "box", to "image", in percent) and DEST/labeling-config.xml.
 *                 data.image is served by Label Studio's local files storage
 *                 with document root "/".
 *   xmp           a sidecar IMAGE.xmp (e.g. leaf.jpg.xmp, as darktable and
 *                 digiKam name them) beside each original: dc:subject gets
 *                 the most probable label, agriclip:Labels/agriclip:
 *                 Probabilities (namespace http://ns.agriclip.org/tag/1.0/)
 *                 the top K, agriclip:Review and agriclip:Model.  An existing
 *                 sidecar is merged: its other properties and keywords stay,
 *                 earlier agriclip properties are replaced; it is rewritten
 *                 atomically.  DEST/sidecars.json lists the sidecars written.
 */
typedef enum
{
  AGC_EXPORT_FOLDERS,
  AGC_EXPORT_CSV,
  AGC_EXPORT_COCO,
  AGC_EXPORT_YOLO,
  AGC_EXPORT_LABEL_STUDIO,
  AGC_EXPORT_XMP,
} AgcExportFormat;

/* The format called name ("folders", "csv", "coco", "yolo", "label-studio",
 * "xmp"); FALSE for another name. */
gboolean agc_export_format_from_name (const char *name, AgcExportFormat *format);
const char *agc_export_format_name (AgcExportFormat format);

/* Exports the run in run_dir to dest (see above).  copy: copies of the
 * images instead of symbolic links (folders, yolo).  An image that cannot be
 * copied or a sidecar that cannot be merged is reported (report may be NULL),
 * counted in *n_problems (may be NULL) and left out.  Errors: AGC_ERROR_IO /
 * AGC_ERROR_FORMAT naming the run's file that is missing or wrong,
 * AGC_ERROR_INPUT for a dest that is not an earlier export of format. */
gboolean agc_tag_export (const char *run_dir, AgcExportFormat format, const char *dest,
                         gboolean copy, AgcReportFunc report, gpointer user_data,
                         int *n_problems, GError **error);

G_END_DECLS
