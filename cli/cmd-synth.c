/* cmd-synth.c — `agriclip synth`: the command line of the synthetic leaf
 * set (synth/synth.h writes it): options, a progress line, Ctrl-C, and the
 * messages. */
#include "cli.h"
#include "interrupt.h"
#include "synth.h"

extern const CliCommand cli_synth_command;

/* One line per part, rewritten after each batch. */
static void
show_progress (SynthSplit split, int done, int total, gpointer user_data)
{
  CliProgress *line = user_data;
  const char *what = split == SYNTH_SPLIT_PRETRAIN ? _("pre-training images")
                     : split == SYNTH_SPLIT_EVAL   ? _("evaluation images")
                                                   : _("fine-tuning images");
  cli_progress_printf (line, "%s %d/%d", what, done, total);
  if (done == total)
    cli_progress_end (line);
}

static int
run (int argc, char **argv)
{
  SynthOptions o = synth_default_options ();
  g_autofree char *out = NULL, *seed_text = NULL;
  const GOptionEntry entries[] = {
    { "out", 'o', 0, G_OPTION_ARG_FILENAME, &out,
      N_("Folder to write (new, empty, or an earlier output of this command)"), N_("DIR") },
    { "seed", 0, 0, G_OPTION_ARG_STRING, &seed_text,
      N_("Seed: the same seed gives the same files (default 0)"), N_("N") },
    { "size", 0, 0, G_OPTION_ARG_INT, &o.size, N_("Image side in pixels (default 64)"),
      N_("PX") },
    { "pretrain", 0, 0, G_OPTION_ARG_INT, &o.n_pretrain,
      N_("Captioned images for pre-training (default 20000)"), N_("N") },
    { "eval-per-class", 0, 0, G_OPTION_ARG_INT, &o.eval_per_class,
      N_("Evaluation images per class (default 40)"), N_("N") },
    { "finetune-per-class", 0, 0, G_OPTION_ARG_INT, &o.finetune_per_class,
      N_("Fine-tuning images per class (default 40)"), N_("N") },
    { NULL },
  };
  const CliCommand *command = &cli_synth_command;
  g_autoptr (GOptionContext) context = cli_option_context_new (command, entries);
  g_option_context_set_description (
      context, _("Draws leaves whose shape, colour and marks follow their captions: "
                 "DIR/pretrain (images and captions.jsonl), DIR/eval and DIR/finetune "
                 "(one folder per class, with labels.json)."));
  if (!cli_parse (context, command, &argc, &argv))
    return CLI_EXIT_USAGE;
  if (!out)
    return cli_usage (command, _("--out is required"));
  if (argc > 1)
    return cli_usage (command, _("unexpected argument '%s'"), argv[1]);
  if (seed_text && !g_ascii_string_to_unsigned (seed_text, 10, 0, G_MAXUINT64, &o.seed, NULL))
    return cli_usage (command, _("--seed must be a non-negative integer, not '%s'"), seed_text);
  if (o.size < 16 || o.size > 1024)
    return cli_usage (command, _("--size must be between 16 and 1024"));
  if (o.n_pretrain < 0 || o.n_pretrain > 10000000)
    return cli_usage (command, _("--pretrain must be between 0 and 10000000"));
  if (o.eval_per_class < 1 || o.eval_per_class > 100000 || o.finetune_per_class < 1
      || o.finetune_per_class > 100000)
    return cli_usage (command, _("images per class must be between 1 and 100000"));
  o.out = out;
  CliProgress line;
  cli_progress_init (&line);
  o.progress = show_progress;
  o.progress_data = &line;
  // Ctrl-C stops after the images being drawn; a second one ends it at once
  o.cancel = cli_interrupt_begin ();
  GError *error = NULL;
  gboolean ok = synth_run (&o, &error);
  cli_interrupt_end (o.cancel);
  cli_progress_end (&line);
  g_autofree char *shown = g_filename_display_name (out);
  if (!ok && cli_interrupt_matches (error))
    {
      g_autofree char *how = g_strdup_printf (_("%s is incomplete (run the command again to "
                                                "start over)"), shown);
      return cli_interrupted (error, how);
    }
  if (!ok)
    return cli_fail (error);
  printf (_("wrote %d pre-training images with captions, and %d evaluation and %d fine-tuning "
            "images of %d classes to %s\n"),
          o.n_pretrain, o.eval_per_class * synth_n_classes,
          o.finetune_per_class * synth_n_classes, synth_n_classes, shown);
  return CLI_EXIT_OK;
}

const CliCommand cli_synth_command = {
  .name = "synth",
  .parameters = "",
  .summary = N_("Write a synthetic image-text set of leaves (training and test data)"),
  .run = run,
};
