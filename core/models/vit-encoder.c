/* vit-encoder.c — the ViT image tower behind image-encoder.h. */
#include "models/vit-encoder.h"

#include "nn/text-tower.h"

#include <string.h>

typedef struct
{
  AgcImageEncoder base;
  AgcVisionTower *tower;
} VitEncoder;

static gboolean
forward (AgcImageEncoder *encoder, const float *pixels, int batch, float *out, GError **error)
{
  return agc_vision_tower_forward (((VitEncoder *) encoder)->tower, pixels, batch, out, error);
}

static gboolean
set_options (AgcImageEncoder *encoder, const AgcEngineOptions *options, GError **error)
{
  return agc_vision_tower_set_options (((VitEncoder *) encoder)->tower, options, error);
}

static gboolean
apply_adapter (AgcImageEncoder *encoder, const AgcAdapter *adapter, GError **error)
{
  AgcVisionTower *tower = ((VitEncoder *) encoder)->tower;
  int n = agc_adapter_n_tensors (adapter);
  for (int pass = 0; pass < 2; pass++)
    for (int i = 0; i < n; i++)
      {
        const char *name;
        int n_dims;
        int64_t shape[4];
        const float *data = agc_adapter_tensor (adapter, i, &name, &n_dims, shape);
        if (agc_text_tower_owns_tensor (name) || strcmp (name, "logit_scale") == 0)
          continue; // the model's (agc_model_apply_adapter)
        // pass 0 checks every tensor before pass 1 sets any
        gboolean ok = agc_vision_tower_set_tensor (tower, name, pass == 1 ? data : NULL, n_dims,
                                                   shape, error);
        if (!ok)
          {
            g_prefix_error (error, "%s: ", agc_adapter_path (adapter));
            return FALSE;
          }
      }
  return TRUE;
}

static void
encoder_free (AgcImageEncoder *encoder)
{
  agc_vision_tower_free (((VitEncoder *) encoder)->tower);
  g_free (encoder);
}

static const AgcImageEncoderClass vit_class = {
  .forward = forward,
  .set_options = set_options,
  .cache_variant = agc_image_encoder_int8_variant,
  .adapter_method = "finetune",
  .adapter_method_too = "dino", // a ViT DINO adapter: the same tensor names
  .apply_adapter = apply_adapter,
  .class_recipe = AGC_CLASS_MEAN_OF_NORMALIZED,
  .free = encoder_free,
};

AgcImageEncoder *
agc_vit_encoder_new (AgcVisionTower *tower)
{
  g_return_val_if_fail (tower != NULL, NULL);
  VitEncoder *vit = g_new0 (VitEncoder, 1);
  vit->base.klass = &vit_class;
  vit->tower = tower;
  return &vit->base;
}

AgcVisionTower *
agc_vit_encoder_tower (AgcImageEncoder *encoder)
{
  g_return_val_if_fail (encoder != NULL, NULL);
  return encoder->klass == &vit_class ? ((VitEncoder *) encoder)->tower : NULL;
}
