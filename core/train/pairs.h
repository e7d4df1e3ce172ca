/* pairs.h — the image-text pairs of DATA/captions.jsonl (one JSON object
 * a line: {"image": "photos/rust/1.jpg", "caption": "a photo of ..."}, as
 * agc_captions_write writes them), read by pretraining (clip-pretrain.c)
 * and contrastive fine-tuning (contrastive-train.c) alike. */
#pragma once

#include "agriclip.h"

/* *paths gets the images (DATA joined with each "image", which must name
 * a file inside DATA: a relative path without ".."), *captions the
 * captions, in file order; blank lines are skipped.  AGC_ERROR_FORMAT
 * naming the line for a bad one, AGC_ERROR_INPUT without pairs.  Both
 * arrays are set (the caller unrefs them) even on failure. */
gboolean agc_pairs_read (const char *data_dir, GPtrArray **paths, GPtrArray **captions,
                         GError **error);
