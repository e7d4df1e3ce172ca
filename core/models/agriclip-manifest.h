/* agriclip-manifest.h — which files make up an AgriCLIP model folder.
 *
 * A folder is an AgriCLIP model when it holds agriclip.json, or, without
 * it, the released layout: Weights/dino_pretrain.pth or a
 * Weights/Agri_Dino_aligner_*.pth (what `agriclip models pull agriclip`
 * leaves).  The manifest (format in models/README.md, "AgriCLIP model
 * folders"):
 *
 *   {"family": "agriclip",
 *    "image_encoder": {"type": "resnet50", "weights": "Weights/dino_pretrain.pth",
 *                      "prefix": "backbone."},
 *    "aligner": "Weights/Agri_Dino_aligner_DPT_CPT.pth",
 *    "text_model": ".",
 *    "temperature": 100,
 *    "image_size": 224}
 *
 * Only "family" is required; every other field defaults to the released
 * layout: the weights above, no prefix given (it is detected), the one
 * Weights/Agri_Dino_aligner_*.pth there is, the folder itself as text model,
 * temperature 100, image size 224 (the side of the square the ResNet sees,
 * preprocessing included: a model trained on smaller photos says so).  Relative paths are relative to the folder.  Unknown
 * keys are refused, so that a misspelt one does not silently fall back to a
 * default. */
#pragma once

#include <glib.h>

#define AGC_AGRICLIP_MANIFEST "agriclip.json"
#define AGC_AGRICLIP_DEFAULT_TEMPERATURE 100.0
#define AGC_AGRICLIP_DEFAULT_IMAGE_SIZE 224
/* The ResNet-50's five stride-2 stages need at least 32 pixels. */
#define AGC_AGRICLIP_MIN_IMAGE_SIZE 32
#define AGC_AGRICLIP_MAX_IMAGE_SIZE 1024

typedef struct
{
  char *image_weights; /* the ResNet-50 checkpoint, a path */
  char *image_prefix;  /* prefix of its tensor names; NULL: detect */
  char *aligner;       /* the {'W', 'b'} checkpoint, a path */
  char *text_model;    /* a CLIP model (model-files.h) whose text tower is used */
  double temperature;  /* > 0: probabilities are softmax(temperature * cos) */
  int image_size;      /* S: the ResNet's input is [3, S, S]; 224 */
} AgcAgriclipManifest;

/* TRUE when dir is an AgriCLIP folder (see above). */
gboolean agc_agriclip_is_folder (const char *dir);

/* Reads dir's agriclip.json, or the released layout's defaults without it,
 * and checks that every file named exists.  Errors: AGC_ERROR_FORMAT (not
 * JSON, wrong types, unknown keys), AGC_ERROR_UNSUPPORTED (another family or
 * image encoder type), AGC_ERROR_IO (a file named does not exist, no
 * aligner or several to choose from); messages name agriclip.json and the
 * key.  On failure *manifest is left cleared. */
gboolean agc_agriclip_manifest_load (AgcAgriclipManifest *manifest, const char *dir,
                                     GError **error);
void agc_agriclip_manifest_clear (AgcAgriclipManifest *manifest);
