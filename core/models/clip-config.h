/* clip-config.h — hyper-parameters of a CLIP model from a Hugging Face
 * config.json (missing keys take the transformers defaults, REFERENCE.md §2)
 * and preprocessing from preprocessor_config.json (integer and dict forms). */
#pragma once

#include "images/preprocess.h"
#include "nn/tower-config.h"

gboolean agc_clip_config_load (const char *config_json_path, AgcClipConfig *config,
                               GError **error);

/* Fills *pre from preprocessor_config.json; when path does not exist, the
 * CLIP defaults for image_size are used, and so are they for keys the file
 * leaves out.  size: n or {"shortest_edge": n}; crop_size: n or {"height",
 * "width"} and must equal image_size; resample 2 (bilinear) or 3 (bicubic);
 * do_normalize, do_rescale and rescale_factor are folded into mean/std.
 * AGC_ERROR_UNSUPPORTED for what the pipeline cannot do: size {"height",
 * "width"} (aspect-ignoring resize), do_resize or do_center_crop false, other
 * resample filters, size smaller than the crop. */
gboolean agc_preprocess_config_load (const char *path, int image_size, AgcPreprocess *pre,
                                     GError **error);
