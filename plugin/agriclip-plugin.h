/* agriclip-plugin.h — what the files of the GIMP plug-in share.
 *
 * plugin/ is glue: GIMP objects in, libagriclip in the middle, GIMP objects
 * out.  agriclip-plugin.c registers the procedures; label-procedure.c and
 * regions-procedure.c declare and run one procedure each; engine.c opens a
 * model and a label set; pixels.c reads what the classifier sees; results.c
 * writes parasites, metadata and layers; label-dialog.c and
 * label-results.c put the GTK widgets of ui/ in front of Label…. */
#pragma once

#include <libgimp/gimp.h>
#include <libgimp/gimpui.h>
#include <glib/gi18n-lib.h>
#include <json-glib/json-glib.h>

#include "agriclip.h"
#include "agc-label-set-chooser.h"
#include "agc-model-chooser.h"
#include "agc-region-labels.h"
#include "agc-regions-window.h"
#include "agc-results-window.h"
#include "agc-training-window.h"
#include "agc-ui-settings.h"

#define PLUG_IN_BINARY "agriclip"
#define LABEL_PROC "plug-in-agriclip-label"
#define REGIONS_PROC "plug-in-agriclip-regions"
#define TRAIN_PROC "plug-in-agriclip-train"
#define MENU_PATH "<Image>/Filters/Analysis/AgriCLIP"

/* Masked pixels become this neutral grey (see pixels.c). */
#define AGC_PLUGIN_MASK_GREY 128

/* ---- procedures -------------------------------------------------------- */

GimpProcedure *label_procedure_new (GimpPlugIn *plug_in);
GimpProcedure *regions_procedure_new (GimpPlugIn *plug_in);
GimpProcedure *train_procedure_new (GimpPlugIn *plug_in);

/* Arguments both procedures have: model, labels, top-k. */
void engine_add_arguments (GimpProcedure *procedure);
/* Shows the procedure's dialog; FALSE when the user cancelled. */
gboolean plugin_dialog_run (GimpProcedure *procedure, GimpProcedureConfig *config,
                            const char *title);
/* Execution-error return values carrying error (consumed). */
GimpValueArray *plugin_fail (GimpProcedure *procedure, GError *error);
/* Makes sure an error message names path, whatever the layer that failed wrote. */
void plugin_name_path (GError **error, const char *path);
/* The local path of a file argument (g_free); NULL and an error naming
 * what to set (nick) when it is unset or not a local file. */
char *plugin_file_path (GimpProcedureConfig *config, const char *name, const char *nick,
                        GError **error);
/* The folder a "model" argument means (takes path, returns a g_free'd one):
 * path itself when it exists; else, when its last component is the NAME of
 * a pulled model (agc_model_resolve_path), that model's folder.  GIMP turns
 * a bare NAME typed in the Model field or passed by a script into a file of
 * the current folder, so the NAME comes back as the last component. */
char *plugin_resolve_model (char *path);

/* ---- engine.c: a model and a label set, ready to classify -------------- */

typedef struct
{
  AgcModel *model;
  AgcLabelSet *labels;   /* NULL when the classes come from an adapter */
  AgcAdapter *adapter;   /* NULL for zero-shot classification */
  AgcClassifier *classifier;
  char *model_path;  /* as given, for results and messages */
  char *labels_path; /* the file the label set came from, or NULL */
  char *adapter_path; /* the adapter file, or NULL */
} Engine;

/* Opens the model and label set named by the config's "model" and "labels",
 * or, when the config has a non-empty "adapter", the model and the classes
 * of that adapter (which must have been trained on this model). */
Engine *engine_open (GimpProcedureConfig *config, GError **error);
void engine_free (Engine *engine);
/* The class's export name and display name, from the label set or adapter
 * (what parasites and metadata keep), and the display name in the user's
 * language (agc_label_set_class_translated_name: what people read in text
 * layers, channel and path names). */
const char *engine_class_name (const Engine *engine, int class_index);
const char *engine_class_display_name (const Engine *engine, int class_index);
const char *engine_class_translated_name (const Engine *engine, int class_index);
/* probs[n, n_classes] for n images, in batches, with progress from
 * progress_from to progress_to. */
gboolean engine_classify (float *probs, Engine *engine, AgcImage *const *images, int n_images,
                          double progress_from, double progress_to, GError **error);
/* The same, also keeping the L2-normalised image embeddings[n, E] (for the
 * results window, which labels them again without re-encoding). */
gboolean engine_classify_embedded (float *probs, float *embeddings, Engine *engine,
                                   AgcImage *const *images, int n_images, double progress_from,
                                   double progress_to, GError **error);

/* ---- label-dialog.c, label-results.c: Label… for people ----------------- */

/* Interactive Label…: the model chooser, the label-set chooser, the
 * adapter, how many labels and what to classify; fills config.  FALSE when
 * the user cancelled. */
gboolean label_dialog_run (GimpProcedure *procedure, GimpProcedureConfig *config);

/* One thing Label… classified: the visible image (drawable NULL) or a
 * layer, the region looked at, whether a selection shaped it, its
 * embedding[E] and thumbnail (may be NULL), and the size of its text layer. */
typedef struct
{
  GimpDrawable *drawable;
  AgcRect region;
  gboolean masked;
  const float *embedding;
  GdkPixbuf *thumbnail;
  double text_size;
} LabelTarget;

/* Shows the results window for the n_targets classified targets (one item
 * per layer) and runs until it is closed.  Takes the engine's model, label
 * set or adapter and classifier (engine is freed).  A text layer goes at
 * its target's region; labelling again rewrites every target's
 * "agriclip-labels" parasite. */
void label_results_run (Engine *engine, GimpImage *image, const LabelTarget *targets,
                        int n_targets, int top_k);

/* ---- pixels.c: what the classifier sees -------------------------------- */

/* The visible image (all visible layers composited) or one drawable, with
 * the selection as coverage mask; image-sized, read once, cropped many times. */
typedef struct
{
  int x, y, width, height; /* covered rectangle, image coordinates */
  guint8 *rgba;            /* [height, width, 4] R'G'B'A u8 */
  guint8 *mask;            /* [height, width] selection coverage, Y u8; NULL: all selected */
} Pixels;

/* The region to look at: the selection's bounding box (intersected with the
 * drawable when one is given), or everything when nothing is selected.
 * FALSE when the selection does not touch the drawable. */
gboolean pixels_region (AgcRect *region, GimpImage *image, GimpDrawable *drawable);
/* Reads region from the composite image (drawable NULL) or the drawable. */
Pixels *pixels_read (GimpImage *image, GimpDrawable *drawable, const AgcRect *region,
                     GError **error);
void pixels_free (Pixels *pixels);
/* Crops rect (image coordinates, inside pixels) into an RGB image in which
 * unselected and transparent pixels are blended towards neutral grey. */
AgcImage *pixels_crop (const Pixels *pixels, const AgcRect *rect);
/* Fraction of rect that is selected and opaque, 0..1. */
double pixels_coverage (const Pixels *pixels, const AgcRect *rect);

/* ---- results.c: what the plug-in leaves in the image ------------------- */

/* Attaches parasite NAME with json to the image (item NULL) or an item,
 * persistent and undoable. */
void results_attach_parasite (GimpImage *image, GimpItem *item, const char *name,
                              const char *json);
/* Adds the labels to the image's Xmp.dc.subject keywords (no duplicates). */
gboolean results_add_keywords (GimpImage *image, const char *const *labels, int n_labels,
                               GError **error);
/* A text layer at (x, y) inside parent (NULL: top of the image); NULL when
 * GIMP has no usable font (it then says so through g_message). */
GimpLayer *results_add_text_layer (GimpImage *image, GimpGroupLayer *parent, const char *text,
                                   int x, int y, double size_px, const char *name);
/* Writes "model", then "adapter" or "label_set" (file) and "label_set_id":
 * where the labels came from. */
void results_json_source (JsonBuilder *builder, const Engine *engine);
/* The "agriclip-labels" parasite of one labelled target (g_free): the
 * source, whether a drawable (else the visible image) was classified, its
 * region, whether a selection masked it, and the top classes of
 * probs[n_classes]. */
char *results_label_json (const Engine *engine, gboolean drawable, const AgcRect *region,
                          gboolean masked, const float *probs, const int *top, int n_top);
/* Writes "labels": [{"label", "display", "p"}…] for the top classes. */
void results_json_labels (JsonBuilder *builder, const Engine *engine, const float *probs,
                          const int *top, int n_top);
void results_json_region (JsonBuilder *builder, const char *member, const AgcRect *region);
/* The builder's root as compact JSON text. */
char *results_json_text (JsonBuilder *builder);
