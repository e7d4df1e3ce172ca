/* model-files.h — the checkpoint layouts users hold, opened as one thing:
 * Hugging Face-named weights, CLIP hyper-parameters and preprocessing.
 *
 * path may be:
 * - a Hugging Face folder: config.json with model.safetensors,
 *   model.safetensors.index.json, pytorch_model.bin or
 *   pytorch_model.bin.index.json (looked for in this order), and optionally
 *   preprocessor_config.json;
 * - an open_clip folder: open_clip_config.json with open_clip_model.safetensors
 *   or open_clip_pytorch_model.bin (BioCLIP, LAION CLIPs);
 * - a folder holding exactly one checkpoint (.pt, .pth, .safetensors, .bin),
 *   e.g. OpenAI's ViT-B-16.pt (TorchScript) or a torch.save'd state dict;
 * - such a checkpoint file itself.
 * A folder with both a Hugging Face and an open_clip set (LAION's
 * repositories) is read as Hugging Face.
 *
 * The tensor names decide how the weights are read, not the file names:
 * Hugging Face names need config.json beside them (clip-config.h); OpenAI /
 * open_clip names (weight-names.h) are translated, with hyper-parameters
 * from open_clip_config.json when it is beside them and from the tensor
 * shapes otherwise, with OpenAI's conventions (clip-config-infer.h).  A file
 * named open_clip_* needs its open_clip_config.json: open_clip models differ
 * from OpenAI's in the activation, which shapes do not tell.
 *
 * Preprocessing: open_clip_config.json's preprocess_cfg when that file is
 * used, otherwise preprocessor_config.json, otherwise CLIP's defaults at the
 * model's image size.
 *
 * The tokenizer is not opened here, but its files must be in the model's
 * folder (agc_model_files_folder): vocab.json + merges.txt or
 * bpe_simple_vocab_16e6.txt.gz.  They are checked first, so that a bare .pt
 * is refused at once with the names of the files to put beside it.
 *
 * Typical use, in the model loader:
 *
 *   AgcWeights *weights;
 *   if (!agc_model_files_open (path, &weights, &config, &pre, error))
 *     return FALSE;
 *   g_autofree char *folder = agc_model_files_folder (path);
 *   tokenizer = agc_tokenizer_load_dir (folder, error);
 */
#pragma once

#include "models/clip-config.h"
#include "formats/weights.h"

/* On success *weights_hf_named (agc_weights_free it), *config and *pre are
 * set; the weights keep their files mapped, as agc_weights_open.  On failure
 * *weights_hf_named is NULL.  Errors: AGC_ERROR_IO for missing files (the
 * message says which ones a model needs), and the errors of the readers
 * named above; every message names the file concerned. */
gboolean agc_model_files_open (const char *path, AgcWeights **weights_hf_named,
                               AgcClipConfig *config, AgcPreprocess *pre, GError **error);

/* The folder of the model at path: path itself when it is a folder, the
 * file's folder otherwise (g_free it). */
char *agc_model_files_folder (const char *path);
