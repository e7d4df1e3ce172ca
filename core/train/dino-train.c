/* dino-train.c — the "dino" method of agc_train (trainer.h): DINO
 * self-distillation (dino-step.h) of an AgriCLIP model's ResNet-50 or a
 * CLIP model's ViT image tower (dino-backbone.h) on the unlabelled photos
 * under DATA.  Every epoch visits the images in a seeded
 * order, batch_size per micro-batch, dino_accumulate micro-batches per
 * AdamW step; each image's crops (dino-crops.h) are seeded by (seed, image,
 * epoch).  Schedules per step: dino-schedule.h.  No validation: the last
 * epoch is kept.  The adapter holds the teacher's backbone under the
 * model's names: torchvision's (no prefix) for the ResNet, Hugging Face's
 * (vision_model.*, visual_projection.weight) for a ViT.  A ViT's crops are
 * all at its input size, normalised as its preprocessing (dino-vit.c). */
#include "train/train-common.h"

#include "models/agriclip-manifest.h"
#include "models/agriclip-model.h"
#include "models/embedding-cache.h"
#include "models/vit-encoder.h"
#include "formats/safetensors-write.h"
#include "train/checkpoint.h"
#include "train/dino-crops.h"
#include "train/dino-schedule.h"
#include "train/dino-step.h"
#include "train/trainer.h"

#include <math.h>
#include <string.h>

/* The reference's head and schedule (main_dino.py defaults for ResNet-50). */
#define HEAD_HIDDEN 2048
#define HEAD_BOTTLENECK 256
#define STUDENT_TEMP 0.1
#define CENTER_MOMENTUM 0.9
#define CLIP_GRAD 3.0
#define LOCAL_SIZE_SHARE (96.0 / 224.0)

typedef struct
{
  const AgcTrainParams *params;
  AgcDinoBackbone *original; /* the model's backbone, the start of every run */
  int vit_blocks;            /* a ViT's trained blocks; 0 for the ResNet */
  AgcDino *dino;
  GPtrArray *files; /* the images kept, in list order */
  AgcDinoCropParams crops;
  /* where the current epoch is (a checkpoint taken on cancelling resumes there) */
  int step_done, micro_done;
  double loss_sum;
} Fit;

static gboolean
dino_prepare (gpointer self, AgcTrainerRun *run, AgcTrainResult *result, GString *images,
              AgcDataset *data, GCancellable *cancellable, GError **error)
{
  Fit *fit = self;
  const AgcTrainParams *params = fit->params;
  g_autoptr (GPtrArray) found = g_ptr_array_new_with_free_func (g_free);
  const char *dirs[] = { data->dir };
  agc_image_collect (dirs, 1, TRUE, found, params->report, params->user_data);
  int n_skipped = 0;
  for (guint i = 0; i < found->len; i++)
    {
      if (g_cancellable_set_error_if_cancelled (cancellable, error))
        return FALSE;
      const char *path = g_ptr_array_index (found, i);
      char hash[AGC_SHA256_HEX];
      GError *problem = NULL;
      if (!agc_file_sha256 (hash, path, &problem))
        {
          n_skipped++;
          agc_train_report_problem (params, problem);
          g_error_free (problem);
          continue;
        }
      g_ptr_array_add (fit->files, g_strdup (path));
      g_string_append_printf (images, "image %s\n", hash);
    }
  if (fit->files->len < 2)
    {
      g_autofree char *shown = g_filename_display_name (data->dir);
      g_set_error (error, AGC_ERROR, AGC_ERROR_INPUT,
                   "%s: DINO needs at least two photos (found %u)", shown, fit->files->len);
      return FALSE;
    }
  result->n_images = result->n_train = (int) fit->files->len;
  result->n_skipped = n_skipped;
  run->judged = FALSE;
  return TRUE;
}

static gboolean
dino_validate (gpointer self, AgcTrainerWeights which, double *loss, double *accuracy,
               GError **error)
{
  (void) self, (void) which, (void) error;
  *loss = *accuracy = NAN;
  return TRUE;
}

static void
dino_start (gpointer self)
{
  Fit *fit = self;
  agc_dino_free (fit->dino);
  fit->dino = agc_dino_new (fit->original->ops->copy (fit->original), HEAD_HIDDEN,
                            HEAD_BOTTLENECK, fit->params->dino_out_dim, fit->params->seed);
  fit->step_done = fit->micro_done = 0;
  fit->loss_sum = 0.0;
}

/* The crops of the images order[first .. first + n) of epoch into
 * global[2 n, 3, G, G] crop-major and local[n_local n, 3, L, L]; an
 * unreadable image is refused (it was read when listed). */
static gboolean
crop_batch (Fit *fit, const int *order, int n, int epoch, float *global, float *local,
            float *one_global, float *one_local, GError **error)
{
  const AgcDinoCropParams *c = &fit->crops;
  size_t g_len = (size_t) 3 * c->global_size * c->global_size;
  size_t l_len = (size_t) 3 * c->local_size * c->local_size;
  for (int j = 0; j < n; j++)
    {
      const char *path = g_ptr_array_index (fit->files, order[j]);
      AgcImage *image = agc_image_load (path, error);
      if (image == NULL)
        return FALSE;
      gboolean ok = agc_dino_crops (c, image->pixels, image->width, image->height,
                                    fit->params->seed, (guint64) order[j], (guint64) epoch,
                                    one_global, one_local);
      agc_image_free (image);
      if (!ok)
        {
          g_set_error (error, AGC_ERROR, AGC_ERROR_INPUT, "%s: out of memory for its crops",
                       path);
          return FALSE;
        }
      for (int k = 0; k < 2; k++) // crop-major: crop k of image j at row k n + j
        memcpy (global + ((size_t) k * n + j) * g_len, one_global + k * g_len,
                g_len * sizeof (float));
      for (int k = 0; k < c->n_local; k++)
        memcpy (local + ((size_t) k * n + j) * l_len, one_local + k * l_len,
                l_len * sizeof (float));
    }
  return TRUE;
}

static gboolean
dino_epoch (gpointer self, const AgcTrainerRun *run, double *train_loss,
            GCancellable *cancellable, GError **error)
{
  Fit *fit = self;
  const AgcTrainParams *p = fit->params;
  const AgcDinoCropParams *c = &fit->crops;
  int n = (int) fit->files->len, epoch = run->epoch;
  int batch = MIN (p->batch_size, n);
  int per_step = batch * p->dino_accumulate;
  int steps_per_epoch = MAX (n / per_step, 1); // the reference drops the last partial batch
  g_autofree int *order = g_new (int, n);
  for (int i = 0; i < n; i++)
    order[i] = i;
  agc_shuffle (order, n, p->seed, (guint64) epoch);
  size_t g_len = (size_t) 3 * c->global_size * c->global_size;
  size_t l_len = (size_t) 3 * c->local_size * c->local_size;
  g_autofree float *global = g_try_new (float, 2 * batch * g_len);
  g_autofree float *local = g_try_new (float, MAX (c->n_local * batch * l_len, 1));
  g_autofree float *one_global = g_try_new (float, 2 * g_len);
  g_autofree float *one_local = g_try_new (float, MAX (c->n_local * l_len, 1));
  if (global == NULL || local == NULL || one_global == NULL || one_local == NULL)
    {
      g_set_error (error, AGC_ERROR, AGC_ERROR_INPUT,
                   "out of memory for the crops of %d images (lower the batch size)", batch);
      return FALSE;
    }
  AgcDinoLossParams loss_params = {
    .student_temp = STUDENT_TEMP,
    .teacher_temp = agc_dino_teacher_temp (p->dino_teacher_temp, p->dino_teacher_temp, 0, epoch),
    .center_momentum = CENTER_MOMENTUM,
    .scale = 1.0 / p->dino_accumulate,
  };
  for (int s = fit->step_done; s < steps_per_epoch; s++)
    {
      // stops only between steps: no gradients are pending then, so a checkpoint is whole
      if (g_cancellable_set_error_if_cancelled (cancellable, error))
        return FALSE;
      for (int m = 0; m < p->dino_accumulate; m++)
        {
          int first = (s * p->dino_accumulate + m) * batch;
          double loss;
          if (!crop_batch (fit, order + first, batch, epoch, global, local, one_global,
                           one_local, error)
              || !agc_dino_accumulate (fit->dino, global, batch, c->global_size,
                                       c->n_local > 0 ? local : NULL, c->n_local,
                                       c->local_size, &loss_params, &loss, error))
            return FALSE;
          fit->loss_sum += loss, fit->micro_done++;
        }
      gint64 it = (gint64) epoch * steps_per_epoch + s;
      AgcDinoSchedule at = agc_dino_schedule (p, per_step, run->n_epochs, steps_per_epoch, it);
      AgcAdamWParams adamw = agc_adamw_params (at.learning_rate, at.weight_decay);
      agc_dino_update (fit->dino, &adamw, at.learning_rate, CLIP_GRAD, at.freeze_last_layer,
                       at.teacher_momentum);
      fit->step_done = s + 1;
      agc_train_report (p, AGC_TRAIN_STAGE_STEP, s + 1, steps_per_epoch,
                        fit->loss_sum / fit->micro_done, NAN, NAN);
    }
  *train_loss = fit->loss_sum / MAX (fit->micro_done, 1);
  fit->step_done = fit->micro_done = 0;
  fit->loss_sum = 0.0;
  return TRUE;
}

static void
dino_keep (gpointer self, int epoch)
{
  (void) self, (void) epoch; // the last epoch is the one kept
}

static void
add_settings (JsonBuilder *b, const AgcTrainParams *p)
{
  agc_json_add_int (b, "local_crops", p->dino_local_crops);
  agc_json_add_int (b, "out_dim", p->dino_out_dim);
  agc_json_add_int (b, "accumulate", p->dino_accumulate);
  agc_json_add_int (b, "crop_size", p->dino_crop_size);
  agc_json_add_number (b, "teacher_momentum", p->dino_teacher_momentum);
  agc_json_add_number (b, "teacher_temp", p->dino_teacher_temp);
  if (p->dino_blocks > 0)
    agc_json_add_int (b, "blocks", p->dino_blocks);
}

/* The teacher's backbone (dino-backbone.h's export). */
static char *
dino_adapter (gpointer self, GArray *views, GPtrArray *names, const char *data_dir)
{
  Fit *fit = self;
  fit->dino->teacher->ops->export (fit->dino->teacher, views, names);
  return agc_train_settings_json (fit->params, data_dir, "adamw", "dino", add_settings);
}

static void
dino_fingerprint (gpointer self, GString *text)
{
  const AgcTrainParams *p = ((Fit *) self)->params;
  g_string_append_printf (text, "local_crops %d\nout_dim %d\naccumulate %d\ncrop_size %d\n",
                          p->dino_local_crops, p->dino_out_dim, p->dino_accumulate,
                          p->dino_crop_size);
  // only when not the reference's: checkpoints of earlier runs still resume
  if (p->dino_teacher_momentum != 0.996 || p->dino_teacher_temp != 0.04)
    g_string_append_printf (text, "teacher_momentum %.17g\nteacher_temp %.17g\n",
                            p->dino_teacher_momentum, p->dino_teacher_temp);
  if (((Fit *) self)->vit_blocks > 0)
    g_string_append_printf (text, "blocks %d\n", ((Fit *) self)->vit_blocks);
}

static gint64
dino_steps (gpointer self)
{
  return ((Fit *) self)->dino->steps;
}

/* The run's numbers, then every array of the state: both backbones'
 * parameters and running statistics, both heads, the centre, the AdamW
 * moments.  The crops and the order are seeded by (seed, image, epoch):
 * the epoch and step are their whole random state. */
enum { RUN_EPOCH, RUN_STEP, RUN_MICRO, RUN_LOSS, RUN_BEST_EPOCH, RUN_BEST_LOSS, RUN_STEPS,
       RUN_LAST_LAYER_STEPS, RUN_STUDENT_BATCHES, RUN_TEACHER_BATCHES, N_RUN };
#define N_STATE 11

static int
state_arrays (AgcDino *d, float **arrays, size_t *sizes)
{
  float *a[N_STATE] = { d->student->params, d->student->buffers, d->teacher->params,
                        d->teacher->buffers, d->student_head->params, d->teacher_head->params,
                        d->center, d->backbone->m, d->backbone->v, d->head->m, d->head->v };
  size_t n[N_STATE] = { d->student->n_params, d->student->n_buffers, d->teacher->n_params,
                        d->teacher->n_buffers, d->student_head->n_params,
                        d->teacher_head->n_params, (size_t) d->student_head->out_dim,
                        d->student->n_params, d->student->n_params, d->student_head->n_params,
                        d->student_head->n_params };
  memcpy (arrays, a, sizeof a);
  memcpy (sizes, n, sizeof n);
  return N_STATE;
}

static gint64
batches_tracked (const AgcDinoBackbone *b)
{
  return b->num_batches_tracked != NULL ? *b->num_batches_tracked : 0;
}

static gboolean
dino_checkpoint_write (gpointer self, const char *path, const AgcTrainerRun *run,
                       const char *fingerprint, GError **error)
{
  Fit *fit = self;
  AgcDino *d = fit->dino;
  double numbers[N_RUN] = {
    [RUN_EPOCH] = run->epoch, [RUN_STEP] = fit->step_done, [RUN_MICRO] = fit->micro_done,
    [RUN_LOSS] = fit->loss_sum, [RUN_BEST_EPOCH] = run->best_epoch,
    [RUN_BEST_LOSS] = run->best_val_loss, [RUN_STEPS] = (double) d->steps,
    [RUN_LAST_LAYER_STEPS] = (double) d->last_layer_steps,
    [RUN_STUDENT_BATCHES] = (double) batches_tracked (d->student),
    [RUN_TEACHER_BATCHES] = (double) batches_tracked (d->teacher),
  };
  AgcTensorView views[1 + N_STATE];
  char names[N_STATE][16];
  views[0] = (AgcTensorView){ .name = "run", .dtype = AGC_DTYPE_F64, .n_dims = 1,
                              .shape = { N_RUN }, .data = (const guint8 *) numbers,
                              .n_bytes = sizeof numbers };
  float *arrays[N_STATE];
  size_t sizes[N_STATE];
  state_arrays (d, arrays, sizes);
  for (int i = 0; i < N_STATE; i++)
    {
      g_snprintf (names[i], sizeof names[i], "state.%d", i);
      views[1 + i] = (AgcTensorView){ .name = names[i], .dtype = AGC_DTYPE_F32, .n_dims = 1,
                                      .shape = { (int64_t) sizes[i] },
                                      .data = (const guint8 *) arrays[i],
                                      .n_bytes = sizes[i] * sizeof (float) };
    }
  g_autoptr (GHashTable) meta = agc_checkpoint_metadata_new ("dino", fingerprint);
  return agc_safetensors_write (path, views, 1 + N_STATE, meta, TRUE, error);
}

static const char *
read_state (Fit *fit, AgcTrainerRun *run, const AgcSafetensors *file)
{
  AgcDino *d = fit->dino;
  const AgcTensorView *t = agc_safetensors_find (file, "run");
  if (t == NULL || t->dtype != AGC_DTYPE_F64 || t->n_dims != 1 || t->shape[0] != N_RUN)
    return "its run state is missing";
  float *arrays[N_STATE];
  size_t sizes[N_STATE];
  state_arrays (d, arrays, sizes);
  for (int i = 0; i < N_STATE; i++)
    {
      char name[16];
      g_snprintf (name, sizeof name, "state.%d", i);
      const AgcTensorView *a = agc_safetensors_find (file, name);
      if (a == NULL || a->dtype != AGC_DTYPE_F32 || a->n_dims != 1
          || a->shape[0] != (int64_t) sizes[i])
        return "its tensors do not fit these settings";
    }
  double numbers[N_RUN];
  memcpy (numbers, t->data, sizeof numbers);
  for (int i = 0; i < N_STATE; i++)
    {
      char name[16];
      g_snprintf (name, sizeof name, "state.%d", i);
      if (sizes[i] > 0) // a ViT keeps no running statistics: that array is NULL
        memcpy (arrays[i], agc_safetensors_find (file, name)->data, sizes[i] * sizeof (float));
    }
  run->epoch = (int) numbers[RUN_EPOCH];
  run->best_epoch = (int) numbers[RUN_BEST_EPOCH];
  run->best_val_loss = numbers[RUN_BEST_LOSS];
  fit->step_done = (int) numbers[RUN_STEP];
  fit->micro_done = (int) numbers[RUN_MICRO];
  fit->loss_sum = numbers[RUN_LOSS];
  d->steps = (gint64) numbers[RUN_STEPS];
  d->last_layer_steps = (gint64) numbers[RUN_LAST_LAYER_STEPS];
  if (d->student->num_batches_tracked != NULL)
    {
      *d->student->num_batches_tracked = (gint64) numbers[RUN_STUDENT_BATCHES];
      *d->teacher->num_batches_tracked = (gint64) numbers[RUN_TEACHER_BATCHES];
    }
  return NULL;
}

static gboolean
dino_checkpoint_read (gpointer self, const char *path, AgcTrainerRun *run,
                      const char *fingerprint, GError **error)
{
  AgcSafetensors *file = agc_checkpoint_open (path, "dino", fingerprint, error);
  if (file == NULL)
    return FALSE;
  const char *reason = read_state (self, run, file);
  agc_safetensors_free (file);
  if (reason != NULL)
    agc_checkpoint_refuse (error, path, reason);
  return reason == NULL;
}

static const AgcTrainerMethod dino_method = {
  .name = "dino",
  .unlabelled = TRUE,
  .prepare = dino_prepare,
  .validate = dino_validate,
  .start = dino_start,
  .epoch = dino_epoch,
  .keep = dino_keep,
  .adapter = dino_adapter,
  .fingerprint = dino_fingerprint,
  .steps = dino_steps,
  .checkpoint_write = dino_checkpoint_write,
  .checkpoint_read = dino_checkpoint_read,
};

/* The ResNet-50 of an AgriCLIP model folder: its aligner's backbone, or the
 * one of a base adapter that carries a whole ResNet (an earlier DINO run,
 * under torchvision's names), so that DINO continues from it. */
static AgcDinoBackbone *
resnet_backbone (AgcModel *model, const char *base_adapter, GError **error)
{
  AgcAgriclipManifest manifest;
  if (!agc_agriclip_manifest_load (&manifest, agc_model_path (model), error))
    return NULL;
  AgcWeights *weights = NULL;
  const char *prefix_wanted = manifest.image_prefix;
  if (base_adapter != NULL)
    {
      weights = agc_weights_open (base_adapter, error);
      if (weights == NULL)
        {
          agc_agriclip_manifest_clear (&manifest);
          return NULL;
        }
      if (agc_weights_find (weights, "conv1.weight") != NULL)
        prefix_wanted = "";
      else // an aligner or another adapter without a ResNet: the model's own
        g_clear_pointer (&weights, agc_weights_free);
    }
  if (weights == NULL)
    weights = agc_weights_open (manifest.image_weights, error);
  g_autofree char *prefix =
      weights != NULL ? agc_agriclip_resnet_prefix (weights, prefix_wanted, error) : NULL;
  AgcResNetTrain *net = prefix != NULL ? agc_resnet_train_load (weights, prefix, error) : NULL;
  agc_weights_free (weights);
  agc_agriclip_manifest_clear (&manifest);
  return net != NULL ? agc_dino_resnet_new (net) : NULL;
}

/* A CLIP model's ViT tower: its last dino_blocks blocks (0: all). */
static AgcDinoBackbone *
vit_backbone (Fit *fit, AgcModel *model, AgcVisionTower *tower, GError **error)
{
  const AgcTowerConfig *tc = agc_vision_tower_config (tower);
  int blocks = fit->params->dino_blocks > 0 ? fit->params->dino_blocks : tc->layers;
  if (blocks > tc->layers)
    {
      g_set_error (error, AGC_ERROR, AGC_ERROR_INPUT,
                   "training settings: the number of blocks to train must be between 1 and "
                   "the image tower's layers (blocks %d, the model has %d)",
                   fit->params->dino_blocks, tc->layers);
      return NULL;
    }
  fit->vit_blocks = blocks;
  fit->crops.global_size = fit->crops.local_size = tc->image_size;
  agc_model_normalisation (model, fit->crops.mean, fit->crops.std);
  return agc_dino_vit_new (tower, blocks);
}

gboolean
agc_train_dino (AgcModel *model, const char *data_dir, const char *out_path,
                const AgcTrainParams *params, AgcTrainResult *result,
                GCancellable *cancellable, GError **error)
{
  AgcVisionTower *tower = agc_model_vision_tower (model);
  if (tower == NULL && !agc_agriclip_is_folder (agc_model_path (model)))
    {
      g_autofree char *shown = g_filename_display_name (agc_model_path (model));
      g_set_error (error, AGC_ERROR, AGC_ERROR_INPUT,
                   "%s: DINO trains an AgriCLIP model's ResNet-50 or a CLIP model's ViT image "
                   "tower; this model has neither", shown);
      return FALSE;
    }
  g_autofree char *identity = agc_model_identity (model, error);
  if (identity == NULL)
    return FALSE;
  AgcTrainParams resolved = *params; // crop size 0: the model's input size
  if (resolved.dino_crop_size == 0)
    resolved.dino_crop_size = agc_model_image_size (model);
  params = &resolved;
  Fit fit = { .params = params, .files = g_ptr_array_new_with_free_func (g_free),
              .crops = agc_dino_crop_defaults () };
  fit.crops.n_local = params->dino_local_crops;
  fit.crops.global_size = params->dino_crop_size;
  fit.crops.local_size = MAX ((int) lround (params->dino_crop_size * LOCAL_SIZE_SHARE), 16);
  fit.original = tower != NULL ? vit_backbone (&fit, model, tower, error)
                               : resnet_backbone (model, params->base_adapter, error);
  gboolean ok = fit.original != NULL
                && agc_trainer_run (&dino_method, &fit, model, identity, data_dir, out_path,
                                    params, result, cancellable, error);
  agc_dino_free (fit.dino);
  agc_dino_backbone_free (fit.original);
  g_ptr_array_unref (fit.files);
  return ok;
}
