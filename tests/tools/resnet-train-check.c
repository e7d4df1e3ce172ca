/* resnet-train-check.c — one training forward and backward of ResNet-50
 * (core/nn/resnet-train.h) for tests/reference/test_resnet_train.py, which
 * compares them with torchvision's ResNet-50 in train mode under autograd.
 *
 *   resnet-train-check IN.safetensors OUT.safetensors
 *
 * IN: torchvision's state dict (fc excluded), "pixels" [B, 3, H, W] and
 * "dfeatures" [B, 2048], the gradient of the loss w.r.t. the features.
 * OUT: "features" [B, 2048]; every parameter's gradient under "grad." +
 * its name; the moved running statistics under their own names.
 * Errors: "error: ..." on stderr, exit 1. */
#include "formats/safetensors-write.h"
#include "nn/resnet-train.h"

#include <stdio.h>
#include <string.h>

static void
die (GError *error)
{
  fprintf (stderr, "error: %s\n", error->message);
  exit (1);
}

int
main (int argc, char **argv)
{
  if (argc != 3)
    {
      fprintf (stderr, "usage: resnet-train-check IN.safetensors OUT.safetensors\n");
      return 2;
    }
  GError *error = NULL;
  AgcWeights *in = agc_weights_open (argv[1], &error);
  if (in == NULL)
    die (error);
  const AgcTensorView *p = agc_weights_find (in, "pixels");
  if (p == NULL || p->n_dims != 4)
    {
      fprintf (stderr, "error: IN lacks pixels [B, 3, H, W]\n");
      return 1;
    }
  int batch = (int) p->shape[0], height = (int) p->shape[2], width = (int) p->shape[3];
  int64_t pshape[4] = { batch, 3, height, width }, fshape[2] = { batch, 2048 };
  float *pixels = agc_weights_take_f32 (in, "pixels", 4, pshape, &error);
  float *dfeatures = pixels ? agc_weights_take_f32 (in, "dfeatures", 2, fshape, &error) : NULL;
  AgcResNetTrain *net = dfeatures ? agc_resnet_train_load (in, "", &error) : NULL;
  if (net == NULL)
    die (error);
  float *features = g_new (float, (size_t) batch * 2048);
  AgcResNetActs *acts = NULL;
  if (!agc_resnet_train_forward (net, &acts, pixels, batch, height, width, features, TRUE,
                                 &error)
      || !agc_resnet_train_backward (net, acts, dfeatures, &error))
    die (error);

  GArray *views = g_array_new (FALSE, TRUE, sizeof (AgcTensorView));
  GPtrArray *owned = g_ptr_array_new_with_free_func (g_free);
  AgcTensorView f = { .name = "features", .dtype = AGC_DTYPE_F32, .n_dims = 2,
                      .shape = { batch, 2048 }, .data = (const guint8 *) features,
                      .n_bytes = (size_t) batch * 2048 * sizeof (float) };
  g_array_append_val (views, f);
  agc_resnet_train_export (net, "", views, owned);
  // the gradients have the parameters' layout: exported as if they were them
  AgcResNetTrain *grads = agc_resnet_train_copy (net);
  memcpy (grads->params, net->grads, net->n_params * sizeof (float));
  agc_resnet_train_export (grads, "grad.", views, owned);
  if (!agc_safetensors_write (argv[2], (AgcTensorView *) views->data, (int) views->len, NULL,
                              FALSE, &error))
    die (error);
  agc_resnet_train_free (grads);
  g_ptr_array_unref (owned);
  g_array_unref (views);
  agc_resnet_acts_free (acts);
  agc_resnet_train_free (net);
  g_free (features);
  g_free (dfeatures);
  g_free (pixels);
  agc_weights_free (in);
  return 0;
}
