/* cmd-tag.c — `agriclip tag`: labels every image of some folders into a
 * run folder that a killed run resumes, that shards of a Slurm array fill
 * in parts (agriclip merge joins them) and that `agriclip export` reads.
 * The work is the library's agc_tag. */
#include "cli.h"
#include "interrupt.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct
{
  CliProgress line; /* first: cli_progress_report takes this struct */
} TagDisplay;

static void
show_progress (const AgcTagProgress *p, gpointer user_data)
{
  TagDisplay *display = user_data;
  if (p->eta_seconds >= 0)
    cli_progress_printf (&display->line, _("%d/%d images, %.1f images/s, %d:%02d left   "),
                         p->done, p->total, p->images_per_second, (int) p->eta_seconds / 60,
                         (int) p->eta_seconds % 60);
  else
    cli_progress_printf (&display->line, _("%d/%d images   "), p->done, p->total);
}

/* "A/B" with 0 <= a, 0 < b: --shard I/N and --regions TILE/STRIDE. */
static gboolean
parse_pair (const char *text, int *a, int *b)
{
  char *end;
  long first = strtol (text, &end, 10);
  if (end == text || *end != '/')
    return FALSE;
  const char *second_text = end + 1;
  long second = strtol (second_text, &end, 10);
  if (end == second_text || *end != '\0' || first < 0 || second < 1 || first > G_MAXINT
      || second > G_MAXINT)
    return FALSE;
  *a = (int) first;
  *b = (int) second;
  return TRUE;
}

static int
run (int argc, char **argv)
{
  g_autofree char *model_name = NULL, *labels_path = NULL, *adapter_path = NULL;
  g_autofree char *out = NULL, *regions = NULL, *shard = NULL;
  int top_k = 5, workers = 0;
  double review_below = -1;
  gboolean recursive = FALSE, int8 = FALSE, fast_decode = FALSE;
  const GOptionEntry entries[] = {
    { "model", 'm', 0, G_OPTION_ARG_FILENAME, &model_name,
      N_("Model folder, or the NAME of a pulled model"), N_("M") },
    { "labels", 'l', 0, G_OPTION_ARG_FILENAME, &labels_path,
      N_("Label-set file, or the id of an installed set such as plantvillage"), N_("L") },
    { "adapter", 'a', 0, G_OPTION_ARG_FILENAME, &adapter_path,
      N_("Label with the classes of an adapter made by 'agriclip train' for this model, "
         "instead of --labels"), N_("A") },
    { "recursive", 'r', 0, G_OPTION_ARG_NONE, &recursive,
      N_("Also tag the images in sub-folders of SRC"), NULL },
    { "top", 'k', 0, G_OPTION_ARG_INT, &top_k, N_("How many labels per image (default 5)"),
      N_("K") },
    { "review-below", 0, 0, G_OPTION_ARG_DOUBLE, &review_below,
      N_("Mark images whose top probability is below P as \"review\": true"), N_("P") },
    { "regions", 0, 0, G_OPTION_ARG_STRING, &regions,
      N_("Also classify square tiles of TILE pixels every STRIDE pixels and keep the boxes of "
         "tiles whose top probability is at least 0.5, overlapping ones of a class merged by "
         "non-maximum suppression"), N_("TILE/STRIDE") },
    { "shard", 0, 0, G_OPTION_ARG_STRING, &shard,
      N_("Tag only shard I (from 0) of N: the images whose relative path hashes to I "
         "(FNV-1a 64 modulo N); 'agriclip merge' joins the shards' folders"), N_("I/N") },
    { "out", 'o', 0, G_OPTION_ARG_FILENAME, &out,
      N_("Run folder: run.json, results.jsonl (one line per image) and a journal.  "
         "Started again with the same command, an interrupted run resumes"), N_("RUN") },
    { "workers", 0, 0, G_OPTION_ARG_INT, &workers,
      N_("Threads decoding images ahead of the encoder (default: one per core)"), N_("N") },
    { "int8", 0, 0, G_OPTION_ARG_NONE, &int8,
      N_("Encode images with 8-bit integer weights (see 'agriclip classify --help'); recorded "
         "in run.json: a run is resumed and merged only with the same choice"), NULL },
    { "fast-decode", 0, 0, G_OPTION_ARG_NONE, &fast_decode,
      N_("Decode JPEGs at a reduced DCT scale (see 'agriclip classify --help'); recorded in "
         "run.json: a run is resumed and merged only with the same choice"), NULL },
    { NULL },
  };
  const CliCommand *command = &cli_tag_command;
  g_autoptr (GOptionContext) context = cli_option_context_new (command, entries);
  g_option_context_set_description (context, _(
    "Labels every image under each SRC folder (or SRC image) into RUN/results.jsonl:\n"
    "  {\"image\": PATH relative to its folder, \"source\": index into run.json's sources,\n"
    "   \"width\": W, \"height\": H, \"labels\": [{\"label\": NAME, \"p\": P}, ...],\n"
    "   \"review\": true|false, \"boxes\": [{\"x\", \"y\", \"width\", \"height\", \"label\", \"p\"}]}\n"
    "(boxes with --regions only).  Files that cannot be read are reported and skipped;\n"
    "the exit status is then 1 once the others are done.  A RUN made with another model,\n"
    "label set or option is refused.  On Slurm: packaging/slurm/agriclip-tag.sbatch."));
  if (!cli_parse (context, command, &argc, &argv))
    return CLI_EXIT_USAGE;
  if (!model_name)
    return cli_usage (command, _("--model is required"));
  if (!!labels_path + !!adapter_path != 1)
    return cli_usage (command, _("give one of --labels L or --adapter A"));
  if (!out)
    return cli_usage (command, _("--out RUN is required"));
  if (top_k < 1)
    return cli_usage (command, _("--top must be at least 1"));
  if (review_below != -1 && !(review_below >= 0 && review_below <= 1))
    return cli_usage (command, _("--review-below must be between 0 and 1"));
  int tile = 0, stride = 0, shard_index = 0, shard_count = 0;
  if (regions && (!parse_pair (regions, &tile, &stride) || tile < 1))
    return cli_usage (command, _("--regions takes TILE/STRIDE in pixels, e.g. 224/112"));
  if (shard && (!parse_pair (shard, &shard_index, &shard_count) || shard_index >= shard_count))
    return cli_usage (command, _("--shard takes I/N with 0 <= I < N, e.g. 0/4"));
  if (argc < 2)
    return cli_usage (command, _("no SRC folder or image given"));

  GError *error = NULL;
  AgcLabelSet *labels = NULL;
  AgcAdapter *adapter = NULL;
  if (adapter_path ? !(adapter = agc_adapter_load (adapter_path, &error))
                   : !(labels = agc_label_set_open (labels_path, &error)))
    return cli_fail (error);
  g_autofree char *model_dir = g_strdup (model_name);
  agc_model_resolve_path_in_place (&model_dir);
  AgcModel *model = agc_model_load (model_dir, &error);
  AgcClassifier *classifier = NULL;
  AgcTagRun *tag_run = NULL;
  if (model && (!int8 || agc_model_set_int8 (model, TRUE, &error)))
    classifier = adapter ? agc_classifier_new_from_adapter (model, adapter, &error)
                         : agc_classifier_new (model, labels, NULL, &error);
  if (classifier)
    tag_run = agc_tag_run_new (model, model_name, labels, adapter,
                               adapter ? adapter_path : labels_path, &error);
  int status = CLI_EXIT_OK;
  if (!tag_run)
    status = cli_fail (error);
  else
    {
      tag_run->top = top_k;
      tag_run->review_below = review_below;
      tag_run->tile = tile;
      tag_run->stride = stride;
      tag_run->shard_index = shard_index;
      tag_run->shard_count = shard_count;
      tag_run->fast_decode = fast_decode;
      TagDisplay display;
      cli_progress_init (&display.line);
      AgcTagOptions options = agc_tag_default_options ();
      options.recursive = recursive;
      options.n_workers = workers;
      options.progress = show_progress;
      options.report = cli_progress_report;
      options.user_data = &display;
      GCancellable *interrupt = cli_interrupt_begin ();
      int skipped = agc_tag (model, classifier, tag_run, (const char *const *) argv + 1, argc - 1,
                             out, &options, interrupt, &error);
      cli_interrupt_end (interrupt);
      cli_progress_end (&display.line);
      if (skipped < 0 && cli_interrupt_matches (error))
        status = cli_interrupted (error, _("the same command resumes the run"));
      else if (skipped < 0)
        status = cli_fail (error);
      else if (skipped > 0)
        {
          fprintf (stderr, g_dngettext (GETTEXT_PACKAGE, "agriclip: %d file was skipped\n",
                                        "agriclip: %d files were skipped\n", skipped), skipped);
          status = CLI_EXIT_ERROR;
        }
    }
  agc_tag_run_free (tag_run);
  agc_classifier_free (classifier);
  agc_model_free (model);
  agc_label_set_free (labels);
  agc_adapter_free (adapter);
  return status;
}

const CliCommand cli_tag_command = {
  .name = "tag",
  .parameters = "SRC...",
  .summary = N_("Label every image of folders into a resumable run folder"),
  .run = run,
};
