/* cmd-pretrain.c — `agriclip pretrain`: trains a small CLIP from scratch on
 * a folder of captioned images and writes a model folder that every other
 * command loads. */
#include "cli.h"
#include "interrupt.h"

#include <inttypes.h>
#include <unistd.h>

extern const CliCommand cli_pretrain_command;

typedef struct
{
  gboolean tty;      /* the progress line only goes to a terminal */
  gboolean started;
} PretrainView;

static void
on_progress (const AgcPretrainProgress *p, gpointer user_data)
{
  PretrainView *view = user_data;
  if (!view->started && p->resumed_epochs > 0)
    fprintf (stderr, _("resuming from the checkpoint after epoch %d of %d\n"), p->resumed_epochs,
             p->n_epochs);
  view->started = TRUE;
  gboolean epoch_done = p->step % (p->n_steps / p->n_epochs) == 0;
  if (!view->tty && !epoch_done)
    return;
  /* \r: the line rewrites itself on a terminal; one line per epoch stays. */
  if (view->tty)
    fputc ('\r', stderr);
  // PRId64, not G_GINT64_FORMAT: xgettext expands only the former in msgids
  fprintf (stderr, _("epoch %d/%d, step %" PRId64 "/%" PRId64
                     ": loss %.4f, logit scale %.1f, %.0f images/s   "),
           p->epoch, p->n_epochs, (int64_t) p->step, (int64_t) p->n_steps, p->loss, p->logit_scale,
           p->images_per_second);
  if (epoch_done)
    fputc ('\n', stderr);
  fflush (stderr);
}

static int
run (int argc, char **argv)
{
  AgcPretrainParams params = agc_pretrain_default_params ();
  AgcPretrainTower *v = &params.vision, *t = &params.text;
  g_autofree char *data_dir = NULL, *tokenizer_dir = NULL, *out = NULL, *seed_text = NULL;
  const GOptionEntry entries[] = {
    { "data", 'd', 0, G_OPTION_ARG_FILENAME, &data_dir,
      N_("Folder with captions.jsonl ({\"image\": FILE, \"caption\": TEXT} per line) and the "
         "images"), N_("DIR") },
    { "tokenizer", 0, 0, G_OPTION_ARG_FILENAME, &tokenizer_dir,
      N_("Folder with the CLIP vocabulary (vocab.json and merges.txt), copied into the model"),
      N_("DIR") },
    { "out", 'o', 0, G_OPTION_ARG_FILENAME, &out,
      N_("Model folder to create (must not exist)"), N_("DIR") },
    { "epochs", 0, 0, G_OPTION_ARG_INT, &params.epochs, N_("Passes over the data"), N_("N") },
    { "batch", 0, 0, G_OPTION_ARG_INT, &params.batch_size,
      N_("Image-caption pairs per step"), N_("N") },
    { "lr", 0, 0, G_OPTION_ARG_DOUBLE, &params.lr, N_("Peak AdamW learning rate"), N_("X") },
    { "weight-decay", 0, 0, G_OPTION_ARG_DOUBLE, &params.weight_decay,
      N_("AdamW weight decay of the matrices"), N_("X") },
    { "warmup", 0, 0, G_OPTION_ARG_INT, &params.warmup_steps,
      N_("Steps of linear learning-rate warm-up (default: a tenth of all)"), N_("N") },
    { "stop-after", 0, 0, G_OPTION_ARG_INT, &params.stop_after_epoch,
      N_("Stop after this epoch, keeping the checkpoint (the same command without it "
         "continues)"), N_("N") },
    { "seed", 0, 0, G_OPTION_ARG_STRING, &seed_text,
      N_("Seed of the initial weights and the batch order"), N_("N") },
    { "image-size", 0, 0, G_OPTION_ARG_INT, &params.image_size, N_("Image side in pixels"),
      N_("N") },
    { "patch", 0, 0, G_OPTION_ARG_INT, &params.patch_size, N_("Patch side in pixels"), N_("N") },
    { "width", 0, 0, G_OPTION_ARG_INT, &v->width, N_("Width of the image tower"), N_("N") },
    { "layers", 0, 0, G_OPTION_ARG_INT, &v->layers, N_("Blocks of the image tower"), N_("N") },
    { "heads", 0, 0, G_OPTION_ARG_INT, &v->heads, N_("Attention heads of the image tower"),
      N_("N") },
    { "text-width", 0, 0, G_OPTION_ARG_INT, &t->width, N_("Width of the text tower"), N_("N") },
    { "text-layers", 0, 0, G_OPTION_ARG_INT, &t->layers, N_("Blocks of the text tower"),
      N_("N") },
    { "text-heads", 0, 0, G_OPTION_ARG_INT, &t->heads, N_("Attention heads of the text tower"),
      N_("N") },
    { "context", 0, 0, G_OPTION_ARG_INT, &params.context_length,
      N_("Tokens per caption, start and end included"), N_("N") },
    { "embed-dim", 0, 0, G_OPTION_ARG_INT, &params.embed_dim,
      N_("Size of the shared embedding"), N_("N") },
    { NULL },
  };
  const CliCommand *command = &cli_pretrain_command;
  g_autoptr (GOptionContext) context = cli_option_context_new (command, entries);
  AgcPretrainParams defaults = agc_pretrain_default_params ();
  const AgcPretrainTower *dv = &defaults.vision, *dt = &defaults.text;
  g_autofree char *description = g_strdup_printf (
    _("Defaults: %d epochs, batches of %d, lr %g, weight decay %g; images %d px in patches of "
      "%d, image tower width %d with %d layers and %d heads, text tower width %d with %d layers "
      "and %d heads, %d tokens, embeddings of %d. MLPs are 4 times as wide as their tower. "
      "After every epoch a checkpoint is written beside the output folder "
      "(OUT.checkpoint.safetensors): running the same command again after an interruption "
      "resumes from it and gives the same model."),
    defaults.epochs, defaults.batch_size, defaults.lr, defaults.weight_decay, defaults.image_size,
    defaults.patch_size, dv->width, dv->layers, dv->heads, dt->width, dt->layers, dt->heads,
    defaults.context_length, defaults.embed_dim);
  g_option_context_set_description (context, description);
  if (!cli_parse (context, command, &argc, &argv))
    return CLI_EXIT_USAGE;
  if (!data_dir || !tokenizer_dir || !out)
    return cli_usage (command, _("--data, --tokenizer and --out are required"));
  if (argc > 1)
    return cli_usage (command, _("unexpected argument '%s'"), argv[1]);
  if (seed_text
      && !g_ascii_string_to_unsigned (seed_text, 10, 0, G_MAXUINT64, &params.seed, NULL))
    return cli_usage (command, _("--seed must be a non-negative integer, not '%s'"), seed_text);
  v->mlp_width = 4 * v->width;
  t->mlp_width = 4 * t->width;

  PretrainView view = { .tty = isatty (STDERR_FILENO) };
  params.progress = on_progress;
  params.user_data = &view;
  GError *error = NULL;
  AgcPretrainResult result;
  GCancellable *interrupt = cli_interrupt_begin ();
  gboolean ok = agc_pretrain (data_dir, tokenizer_dir, out, &params, &result, interrupt, &error);
  gboolean interrupted = g_cancellable_is_cancelled (interrupt);
  cli_interrupt_end (interrupt);
  if (!ok)
    {
      if (view.tty)
        fputc ('\n', stderr);
      if (interrupted && cli_interrupt_matches (error))
        return cli_interrupted (error, _("the same command continues from the last epoch's "
                                         "checkpoint"));
      if (params.stop_after_epoch > 0 && g_error_matches (error, AGC_ERROR, AGC_ERROR_CANCELLED))
        {
          // the stop asked for: not a failure
          fprintf (stderr, _("stopped after epoch %d of %d; the same command without "
                             "--stop-after continues from the checkpoint\n"),
                   params.stop_after_epoch, params.epochs);
          g_clear_error (&error);
          return CLI_EXIT_OK;
        }
      return cli_fail (error);
    }
  g_autofree char *shown = g_filename_display_name (out);
  printf (_("%d image-caption pairs, %" PRId64 " steps in %.1f s (%.0f images/s); "
            "final loss %.4f, logit scale %.1f\n"),
          result.n_pairs, (int64_t) result.steps, result.seconds, result.images_per_second,
          result.final_loss, result.logit_scale);
  printf (_("model written to %s\n"), shown);
  return CLI_EXIT_OK;
}

const CliCommand cli_pretrain_command = {
  .name = "pretrain",
  .parameters = "",
  .summary = N_("Train a small CLIP from scratch on captioned images (writes a model folder)"),
  .run = run,
};
