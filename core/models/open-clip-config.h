/* open-clip-config.h — open_clip's open_clip_config.json: the CLIP
 * hyper-parameters and preprocessing of an open_clip checkpoint (BioCLIP,
 * LAION CLIPs), whose weights use OpenAI's names (weight-names.h). */
#pragma once

#include "models/clip-config.h"

/* Reads open_clip_config.json: {"model_cfg": {…}, "preprocess_cfg": {…}}
 * (a bare model_cfg, as in open_clip's model_configs/, is accepted too).
 * model_cfg: embed_dim (required), quick_gelu (absent: exact GELU, as
 * open_clip), vision_cfg {image_size, layers, width, patch_size, head_width,
 * mlp_ratio}, text_cfg {context_length, vocab_size, width, heads, layers,
 * mlp_ratio}, custom_text (CustomTextCLIP: the same text tower under
 * "text.", which weight-names.h reads); missing keys take open_clip's defaults (vision: 12 layers,
 * width 768, head_width 64, mlp_ratio 4, patch 16, image 224; text: 77, 49408,
 * 512, 8 heads, 12 layers, mlp_ratio 4).  preprocess_cfg: size (default
 * image_size; must equal it), mean and std (3 numbers or one), interpolation
 * bicubic / bilinear ("random" is bicubic at inference), resize_mode
 * shortest.
 * AGC_ERROR_UNSUPPORTED, naming the key, for what the towers cannot run: a
 * ResNet (vision_cfg.layers a list), timm / Hugging Face / other custom
 * towers, attentional pooling, pooling other than the class token (image)
 * and the end-of-text token (text), layer scale, no pre-LayerNorm, a
 * projection bias, CoCa's multimodal_cfg, SigLIP's logit bias, custom
 * activation or norm settings, a non-square image, resize modes other than
 * shortest.  AGC_ERROR_FORMAT for malformed JSON or values. */
gboolean agc_open_clip_config_load (const char *path, AgcClipConfig *config, AgcPreprocess *pre,
                                    GError **error);
