/* cmd-train.c — `agriclip train`: teaches a model the classes of a folder
 * of tagged photos and writes an adapter for `agriclip classify --adapter`. */
#include "cli.h"
#include "interrupt.h"

#include <math.h>

typedef struct
{
  CliProgress line; /* first: user_data of cli_progress_report */
  const char *out;
} TrainView;

static void
on_progress (const AgcTrainProgress *p, gpointer user_data)
{
  TrainView *view = user_data;
  switch (p->stage)
    {
    case AGC_TRAIN_STAGE_RESUME:
      cli_progress_end (&view->line);
      fprintf (stderr, _("agriclip: resuming from %s.checkpoint after epoch %d\n"), view->out,
               p->done);
      break;
    case AGC_TRAIN_STAGE_EMBED:
      cli_progress_printf (&view->line, _("images %d/%d"), p->done, p->total);
      break;
    case AGC_TRAIN_STAGE_STEP:
      cli_progress_printf (&view->line, _("step %d/%d: training loss %.4f   "), p->done, p->total,
                           p->train_loss);
      break;
    case AGC_TRAIN_STAGE_EPOCH:
      if (isnan (p->val_loss))
        cli_progress_printf (&view->line, _("epoch %d/%d: training loss %.4f   "), p->done,
                             p->total, p->train_loss);
      else
        cli_progress_printf (&view->line,
                             _("epoch %d/%d: training loss %.4f, validation loss %.4f, "
                               "accuracy %.1f %%   "),
                             p->done, p->total, p->train_loss, p->val_loss,
                             100.0 * p->val_accuracy);
      break;
    }
  fflush (stderr);
}

static void
print_summary (const AgcTrainResult *r, AgcTrainMethod method, const char *out)
{
  if (method == AGC_TRAIN_CONTRASTIVE) // pairs: n_train and n_val count pairs
    printf (_("%d images, image-text pairs: %d for training, %d for validation (%d images "
              "skipped)\n"),
            r->n_images, r->n_train, r->n_val, r->n_skipped);
  else
    printf (_("%d classes, %d images: %d for training, %d for validation (%d from the cache, "
              "%d skipped)\n"),
            r->n_classes, r->n_images, r->n_train, r->n_val, r->n_cached, r->n_skipped);
  if (r->n_val > 0 && method == AGC_TRAIN_CONTRASTIVE)
    printf (_("validation retrieval accuracy (image to caption): before %.1f %%, trained "
              "%.1f %% (epoch %d of %d)\n"),
            100.0 * r->zero_shot_val_accuracy, 100.0 * r->val_accuracy, r->best_epoch,
            r->epochs);
  else if (r->n_val > 0)
    printf (_("validation accuracy: zero-shot %.1f %%, trained %.1f %% (epoch %d of %d)\n"),
            100.0 * r->zero_shot_val_accuracy, 100.0 * r->val_accuracy, r->best_epoch,
            r->epochs);
  else
    printf (_("no validation images: kept the last epoch (%d)\n"), r->epochs);
  g_autofree char *shown = g_filename_display_name (out);
  printf (_("adapter written to %s\n"), shown);
}

static int
run (int argc, char **argv)
{
  AgcTrainParams params = agc_train_default_params ();
  g_autofree char *model_dir = NULL, *data_dir = NULL, *out = NULL, *method = NULL;
  g_autofree char *seed_text = NULL, *base_adapter = NULL;
  gboolean restart = FALSE;
  int blocks = -1; // finetune's and dino's; unset: each method's default
  double weight_decay = -1.0; // not given: the method's own
  const GOptionEntry entries[] = {
    { "model", 'm', 0, G_OPTION_ARG_FILENAME, &model_dir, N_("Model folder"), N_("DIR") },
    { "data", 'd', 0, G_OPTION_ARG_FILENAME, &data_dir,
      N_("Folder with one sub-folder of images per class (the tag), and optionally "
         "labels.json; contrastive: a folder with captions.jsonl (agriclip captions)"),
      N_("DIR") },
    { "out", 'o', 0, G_OPTION_ARG_FILENAME, &out, N_("Adapter file to write"), N_("FILE") },
    { "adapter", 'a', 0, G_OPTION_ARG_FILENAME, &base_adapter,
      N_("Train on top of this adapter (e.g. finetune, then a probe or aligner): the model "
         "with it applied; FILE then holds both"), N_("BASE") },
    { "method", 0, 0, G_OPTION_ARG_STRING, &method,
      N_("What to train: probe (a linear head on image embeddings; default), finetune (the "
         "last vision blocks of a ViT model), aligner (an AgriCLIP model's aligner), dino "
         "(an AgriCLIP model's ResNet-50 or a ViT model's image tower, on unlabelled photos) or "
         "contrastive (the last blocks of both towers of a ViT model, on image-text pairs)"),
      N_("METHOD") },
    { "blocks", 0, 0, G_OPTION_ARG_INT, &blocks,
      N_("finetune, dino on a ViT: how many of the last vision blocks to train; contrastive: "
         "of each tower's blocks, 0 for all of them (default: finetune and contrastive 2, dino "
         "all)"), N_("K") },
    { "mix", 0, 0, G_OPTION_ARG_DOUBLE, &params.finetune_mix,
      N_("finetune: share of the trained weights in the adapter, the rest original "
         "(WiSE-FT; 0 to 1, default 1)"), N_("ALPHA") },
    { "warmup", 0, 0, G_OPTION_ARG_DOUBLE, &params.finetune_warmup,
      N_("finetune, contrastive: learning-rate warm-up, a share of all steps when below 1, "
         "else a number of steps (default 0.1)"), N_("X") },
    { "seed", 0, 0, G_OPTION_ARG_STRING, &seed_text,
      N_("Seed of the validation split and batch order (default 0)"), N_("N") },
    { "val-fraction", 0, 0, G_OPTION_ARG_DOUBLE, &params.val_fraction,
      N_("Share of each class held out for validation (default 0.2)"), N_("F") },
    { "epochs", 0, 0, G_OPTION_ARG_INT, &params.max_epochs,
      N_("Most epochs (default 100)"), N_("N") },
    { "patience", 0, 0, G_OPTION_ARG_INT, &params.patience,
      N_("Stop after this many epochs without a lower validation loss (default 10)"), N_("N") },
    { "batch-size", 0, 0, G_OPTION_ARG_INT, &params.batch_size,
      N_("Images per optimiser step (default 32)"), N_("N") },
    { "lr", 0, 0, G_OPTION_ARG_DOUBLE, &params.learning_rate,
      N_("AdamW learning rate (default: probe 0.05, aligner 0.001, finetune and contrastive "
         "0.00001; dino 0.0005 per 256 images of a step, warmed up then decayed)"),
      N_("X") },
    { "weight-decay", 0, 0, G_OPTION_ARG_DOUBLE, &weight_decay,
      N_("AdamW weight decay (default 0.01; dino 0.04, rising to 10 times that)"), N_("X") },
    { "ridge", 0, 0, G_OPTION_ARG_DOUBLE, &params.aligner_ridge,
      N_("aligner: ridge strength, in units of the features' mean variance times the number "
         "of images; 0 chooses it by validation (default 0)"), N_("X") },
    { "local-crops", 0, 0, G_OPTION_ARG_INT, &params.dino_local_crops,
      N_("dino: small crops per image besides the two large ones (default 2)"), N_("N") },
    { "out-dim", 0, 0, G_OPTION_ARG_INT, &params.dino_out_dim,
      N_("dino: outputs of the projection head (default 4096)"), N_("N") },
    { "accumulate", 0, 0, G_OPTION_ARG_INT, &params.dino_accumulate,
      N_("dino: batches whose gradients add up to one optimiser step (default 1)"), N_("N") },
    { "crop-size", 0, 0, G_OPTION_ARG_INT, &params.dino_crop_size,
      N_("dino: side of the large crops in pixels (default: the model's input size, 224 for "
         "AgriCLIP's ResNet-50; a ViT's crops are its input size)"), N_("PIXELS") },
    { "teacher-momentum", 0, 0, G_OPTION_ARG_DOUBLE, &params.dino_teacher_momentum,
      N_("dino: the EMA teacher's momentum at the first step, rising to 1 (default 0.996; "
         "lower for short runs from a random start)"), N_("M") },
    { "teacher-temp", 0, 0, G_OPTION_ARG_DOUBLE, &params.dino_teacher_temp,
      N_("dino: the teacher's sharpening temperature (default 0.04)"), N_("T") },
    { "checkpoint-every", 0, 0, G_OPTION_ARG_INT, &params.checkpoint_every,
      N_("Write FILE.checkpoint every N epochs; 0: never (default 5)"), N_("N") },
    { "restart", 0, 0, G_OPTION_ARG_NONE, &restart,
      N_("Start afresh even if FILE.checkpoint of an interrupted run matches"), NULL },
    { NULL },
  };
  const CliCommand *command = &cli_train_command;
  g_autoptr (GOptionContext) context = cli_option_context_new (command, entries);
  g_option_context_set_description (
      context, _("Image embeddings are cached in $XDG_CACHE_HOME/agriclip. An interrupted run "
                 "continues from its last checkpoint when started again with the same "
                 "options."));
  if (!cli_parse (context, command, &argc, &argv))
    return CLI_EXIT_USAGE;
  if (!model_dir || !data_dir || !out)
    return cli_usage (command, _("--model, --data and --out are required"));
  if (argc > 1)
    return cli_usage (command, _("unexpected argument '%s'"), argv[1]);
  if (method && !agc_train_method_from_name (&params.method, method))
    return cli_usage (command, _("unknown method '%s' (available: probe, aligner, finetune, dino, "
                                         "contrastive)"),
                      method);
  if (seed_text
      && !g_ascii_string_to_unsigned (seed_text, 10, 0, G_MAXUINT64, &params.seed, NULL))
    return cli_usage (command, _("--seed must be a non-negative integer, not '%s'"), seed_text);
  if (blocks != -1)
    params.finetune_blocks = params.dino_blocks = blocks;
  params.weight_decay = weight_decay >= 0.0 ? weight_decay
                                             : agc_train_method_weight_decay (params.method);
  params.resume = !restart;
  params.base_adapter = base_adapter;

  TrainView view = { .out = out };
  cli_progress_init (&view.line);
  params.progress = on_progress;
  params.report = cli_progress_report;
  params.user_data = &view;

  GError *error = NULL;
  AgcModel *model = agc_model_load (model_dir, &error);
  AgcTrainResult result;
  GCancellable *interrupt = cli_interrupt_begin ();
  gboolean ok = model && agc_train (model, data_dir, out, &params, &result, interrupt, &error);
  cli_interrupt_end (interrupt);
  cli_progress_end (&view.line);
  agc_model_free (model);
  if (!ok && cli_interrupt_matches (error))
    return cli_interrupted (error, params.checkpoint_every > 0
                                       ? _("the same command resumes from the checkpoint")
                                       : NULL);
  if (!ok)
    return cli_fail (error);
  print_summary (&result, params.method, out);
  return CLI_EXIT_OK;
}

const CliCommand cli_train_command = {
  .name = "train",
  .parameters = "",
  .summary = N_("Learn the classes of a folder of tagged photos (writes an adapter)"),
  .run = run,
};
