/* vit-encoder.h — CLIP's ViT image tower (nn/vision-tower.h) as a model's
 * image encoder (image-encoder.h): int8 mode, "finetune" adapters. */
#pragma once

#include "models/image-encoder.h"
#include "nn/text-tower.h"
#include "nn/vision-tower.h"

/* Takes ownership of tower. */
AgcImageEncoder *agc_vit_encoder_new (AgcVisionTower *tower);

/* The tower of a ViT encoder; NULL for an encoder of another family. */
AgcVisionTower *agc_vit_encoder_tower (AgcImageEncoder *encoder);

/* The model's ViT image tower, NULL for another family (model.c); training
 * a ViT's last blocks reads and replaces its weights. */
AgcVisionTower *agc_model_vision_tower (AgcModel *model);
/* The model's text tower (NULL for a model without one): contrastive
 * training reads its weights. */
const AgcTextTower *agc_model_text_tower (const AgcModel *model);
/* The model's input normalisation (model.c): DINO's crops of a ViT model
 * are normalised as its preprocessing does. */
void agc_model_normalisation (const AgcModel *model, float mean[3], float std[3]);
