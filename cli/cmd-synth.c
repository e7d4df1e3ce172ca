/* cmd-synth.c — `agriclip synth`: writes a synthetic image-text set of
 * leaves for training a small CLIP from scratch and testing it:
 *
 *   DIR/pretrain/NNNNNN.png, captions.jsonl   random leaves and captions
 *   DIR/eval/TAG/NNN.png, labels.json         held-out classes, zero-shot test
 *   DIR/finetune/TAG/NNN.png, labels.json     the same classes shot with
 *                                             another camera (synth-camera.h)
 *   DIR/.agriclip-synth                       marks DIR as ours
 *
 * Images are drawn in parallel, each from its own seeded generator, so the
 * output is the same byte for byte for a seed whatever the thread count. */
#include "cli.h"
#include "synth-camera.h"
#include "synth-caption.h"
#include "synth-classes.h"
#include "synth-draw.h"
#include "synth-output.h"
#include "kernels/threads.h"

#include <errno.h>
#include <glib/gstdio.h>
#include <signal.h>
#include <sys/stat.h>

extern const CliCommand cli_synth_command;

#define MARKER ".agriclip-synth"
#define CHUNK 256 /* images between progress reports */

enum
{
  SPLIT_PRETRAIN,
  SPLIT_EVAL,
  SPLIT_FINETUNE,
};

static volatile sig_atomic_t interrupted;

static void
on_signal (int signum)
{
  (void) signum;
  interrupted = 1;
}

/* A list of images to draw. */
typedef struct
{
  guint64 seed;
  int size;
  int split;
  int n;
  char **paths;    /* [n] */
  int *klass;      /* [n] class index; -1: a random kind (pre-training) */
  int *index;      /* [n] index within the class: the generator's stream */
  char **captions; /* [n] pre-training captions, filled by the workers */
  int offset;      /* first item of the chunk being drawn */
  gint failed;
  GMutex lock;
  GError *error;   /* the first failure */
} Job;

static SynthLeafKind
kind_of (const Job *job, int i, SynthRng *rng)
{
  if (job->klass[i] < 0)
    return synth_kind_random (rng);
  return synth_class_kind (&synth_classes[job->klass[i]], synth_below (rng, SYNTH_N_SHAPES));
}

static gboolean
draw_one (Job *job, int i, float *rgb, guint8 *bytes, GError **error)
{
  SynthRng rng = synth_rng_for (job->seed, (guint64) job->split, (guint64) (job->klass[i] + 1),
                                (guint64) job->index[i]);
  SynthLeafKind kind = kind_of (job, i, &rng);
  SynthScene scene;
  synth_scene_sample (&scene, &rng, kind, job->size, job->split == SPLIT_FINETUNE);
  synth_draw (rgb, &scene);
  if (job->split == SPLIT_FINETUNE)
    {
      SynthCamera camera;
      synth_camera_sample (&camera, &rng);
      synth_camera_apply (rgb, job->size, &camera, &rng);
    }
  if (job->captions)
    job->captions[i] = synth_caption (kind, &rng);
  synth_to_bytes (bytes, rgb, job->size * job->size * 3);
  return synth_write_png (job->paths[i], bytes, job->size, job->size, error);
}

static void
draw_range (void *ctx, int begin, int end, int thread)
{
  (void) thread;
  Job *job = ctx;
  gsize n_values = (gsize) job->size * job->size * 3;
  float *rgb = g_new (float, n_values);
  guint8 *bytes = g_new (guint8, n_values);
  for (int i = job->offset + begin; i < job->offset + end; i++)
    {
      GError *error = NULL;
      if (interrupted || g_atomic_int_get (&job->failed))
        break;
      if (!draw_one (job, i, rgb, bytes, &error))
        {
          g_mutex_lock (&job->lock);
          if (!job->error)
            job->error = error, error = NULL;
          g_atomic_int_set (&job->failed, 1);
          g_mutex_unlock (&job->lock);
          g_clear_error (&error);
        }
    }
  g_free (rgb);
  g_free (bytes);
}

/* Draws every image of the job, chunk by chunk, with progress on a
 * terminal.  FALSE on a write error or when interrupted (error unset). */
static gboolean
run_job (Job *job, const char *what, GError **error)
{
  CliProgress line;
  cli_progress_init (&line);
  for (job->offset = 0; job->offset < job->n && !interrupted; job->offset += CHUNK)
    {
      agc_parallel_for (MIN (CHUNK, job->n - job->offset), 4, draw_range, job);
      if (job->error)
        {
          g_propagate_error (error, job->error);
          job->error = NULL;
          return FALSE;
        }
      cli_progress_printf (&line, "%s %d/%d", what, MIN (job->offset + CHUNK, job->n), job->n);
    }
  cli_progress_end (&line);
  return !interrupted;
}

static void
job_free (Job *job)
{
  for (int i = 0; i < job->n; i++)
    {
      g_free (job->paths[i]);
      if (job->captions)
        g_free (job->captions[i]);
    }
  g_free (job->paths);
  g_free (job->klass);
  g_free (job->index);
  g_free (job->captions);
  g_mutex_clear (&job->lock);
}

static void
job_init (Job *job, guint64 seed, int size, int split, int n)
{
  *job = (Job) { .seed = seed, .size = size, .split = split, .n = n };
  job->paths = g_new0 (char *, n);
  job->klass = g_new (int, n);
  job->index = g_new (int, n);
  g_mutex_init (&job->lock);
}

/* ---- folders ------------------------------------------------------------ */

/* Removes path and, for a folder, everything in it; symbolic links are
 * removed, never followed. */
static gboolean
remove_tree (const char *path, GError **error)
{
  GStatBuf st;
  if (g_lstat (path, &st) != 0)
    return TRUE; // nothing there
  if (S_ISDIR (st.st_mode))
    {
      GDir *dir = g_dir_open (path, 0, error);
      if (!dir)
        return FALSE;
      const char *name;
      gboolean ok = TRUE;
      while (ok && (name = g_dir_read_name (dir)))
        {
          g_autofree char *child = g_build_filename (path, name, NULL);
          ok = remove_tree (child, error);
        }
      g_dir_close (dir);
      if (!ok)
        return FALSE;
    }
  if (g_remove (path) != 0)
    {
      int code = errno;
      g_autofree char *shown = g_filename_display_name (path);
      g_set_error (error, AGC_ERROR, AGC_ERROR_IO, _("%s: cannot remove: %s"), shown,
                   g_strerror (code));
      return FALSE;
    }
  return TRUE;
}

/* An empty or new folder, or the output of an earlier run (whose images
 * are removed, so that none of a larger run lingers). */
static gboolean
prepare_out_dir (const char *dir, GError **error)
{
  g_autofree char *shown = g_filename_display_name (dir);
  if (g_file_test (dir, G_FILE_TEST_EXISTS))
    {
      if (!g_file_test (dir, G_FILE_TEST_IS_DIR))
        {
          g_set_error (error, AGC_ERROR, AGC_ERROR_INPUT, _("%s: not a folder"), shown);
          return FALSE;
        }
      GDir *d = g_dir_open (dir, 0, error);
      if (!d)
        return FALSE;
      gboolean empty = g_dir_read_name (d) == NULL;
      g_dir_close (d);
      g_autofree char *marker = g_build_filename (dir, MARKER, NULL);
      if (!empty && !g_file_test (marker, G_FILE_TEST_IS_REGULAR))
        {
          g_set_error (error, AGC_ERROR, AGC_ERROR_INPUT,
                       _("%s: the folder is not empty and was not written by 'agriclip synth'; "
                         "give a new or empty folder"), shown);
          return FALSE;
        }
      const char *parts[] = { "pretrain", "eval", "finetune" };
      for (gsize i = 0; i < G_N_ELEMENTS (parts); i++)
        {
          g_autofree char *sub = g_build_filename (dir, parts[i], NULL);
          if (!remove_tree (sub, error))
            return FALSE;
        }
    }
  if (g_mkdir_with_parents (dir, 0777) != 0)
    {
      int code = errno;
      g_set_error (error, AGC_ERROR, AGC_ERROR_IO, _("%s: cannot create the folder: %s"), shown,
                   g_strerror (code));
      return FALSE;
    }
  return TRUE;
}

static gboolean
make_dir (const char *path, GError **error)
{
  if (g_mkdir_with_parents (path, 0777) == 0)
    return TRUE;
  int code = errno;
  g_autofree char *shown = g_filename_display_name (path);
  g_set_error (error, AGC_ERROR, AGC_ERROR_IO, _("%s: cannot create the folder: %s"), shown,
               g_strerror (code));
  return FALSE;
}

/* ---- the three parts ---------------------------------------------------- */

typedef struct
{
  const char *out;
  guint64 seed;
  int size;
  int n_pretrain;
  int eval_per_class;
  int finetune_per_class;
} SynthOptions;

static gboolean
write_marker (const SynthOptions *o, gboolean complete, GError **error)
{
  g_autofree char *text = g_strdup_printf (
      "{\"generator\": \"agriclip synth\", \"seed\": %" G_GUINT64_FORMAT ", \"size\": %d, "
      "\"pretrain\": %d, \"eval_per_class\": %d, \"finetune_per_class\": %d, "
      "\"complete\": %s}\n",
      o->seed, o->size, o->n_pretrain, o->eval_per_class, o->finetune_per_class,
      complete ? "true" : "false");
  g_autofree char *path = g_build_filename (o->out, MARKER, NULL);
  return synth_write_file (path, text, strlen (text), error);
}

static gboolean
write_captions (const Job *job, const char *dir, GError **error)
{
  char *text = NULL;
  size_t len = 0;
  FILE *out = open_memstream (&text, &len);
  for (int i = 0; i < job->n; i++)
    {
      g_autofree char *name = g_path_get_basename (job->paths[i]);
      fputs ("{\"image\": ", out);
      cli_write_json_string (out, name);
      fputs (", \"caption\": ", out);
      cli_write_json_string (out, job->captions[i]);
      fputs ("}\n", out);
    }
  fclose (out);
  g_autofree char *path = g_build_filename (dir, "captions.jsonl", NULL);
  gboolean ok = synth_write_file (path, text, len, error);
  free (text);
  return ok;
}

static gboolean
write_pretrain (const SynthOptions *o, GError **error)
{
  g_autofree char *dir = g_build_filename (o->out, "pretrain", NULL);
  if (!make_dir (dir, error))
    return FALSE;
  Job job;
  job_init (&job, o->seed, o->size, SPLIT_PRETRAIN, o->n_pretrain);
  job.captions = g_new0 (char *, o->n_pretrain);
  for (int i = 0; i < job.n; i++)
    {
      char name[32];
      g_snprintf (name, sizeof name, "%06d.png", i);
      job.paths[i] = g_build_filename (dir, name, NULL);
      job.klass[i] = -1;
      job.index[i] = i;
    }
  gboolean ok = run_job (&job, _("pre-training images"), error)
                && write_captions (&job, dir, error);
  job_free (&job);
  return ok;
}

/* eval/ or finetune/: one folder per class and the label set. */
static gboolean
write_classes (const SynthOptions *o, int split, GError **error)
{
  gboolean eval = split == SPLIT_EVAL;
  int per_class = eval ? o->eval_per_class : o->finetune_per_class;
  g_autofree char *dir = g_build_filename (o->out, eval ? "eval" : "finetune", NULL);
  Job job;
  job_init (&job, o->seed, o->size, split, per_class * synth_n_classes);
  gboolean ok = TRUE;
  for (int c = 0, i = 0; c < synth_n_classes && ok; c++)
    {
      g_autofree char *class_dir = g_build_filename (dir, synth_classes[c].name, NULL);
      ok = make_dir (class_dir, error);
      for (int k = 0; k < per_class; k++, i++)
        {
          char name[32];
          g_snprintf (name, sizeof name, "%03d.png", k);
          job.paths[i] = g_build_filename (class_dir, name, NULL);
          job.klass[i] = c;
          job.index[i] = k;
        }
    }
  ok = ok && run_job (&job, eval ? _("evaluation images") : _("fine-tuning images"), error);
  job_free (&job);
  if (!ok)
    return FALSE;
  /* Data, not interface: the label set stays in English like the captions. */
  g_autofree char *labels = synth_classes_labels_json (
      eval ? "synth-leaves" : "synth-leaves-photos",
      eval ? "Synthetic leaves: colour and condition" : "Synthetic leaves, own camera",
      eval ? "Held-out synthetic leaves of agriclip synth for zero-shot evaluation; shapes vary "
             "within a class."
           : "The same classes shot with another camera (warm light, dim, soft, noisy, "
             "cluttered ground), for training an adapter.");
  g_autofree char *path = g_build_filename (dir, "labels.json", NULL);
  return synth_write_file (path, labels, strlen (labels), error);
}

static gboolean
synthesize (const SynthOptions *o, GError **error)
{
  return prepare_out_dir (o->out, error) && write_marker (o, FALSE, error)
         && write_pretrain (o, error) && write_classes (o, SPLIT_EVAL, error)
         && write_classes (o, SPLIT_FINETUNE, error) && write_marker (o, TRUE, error);
}

static int
run (int argc, char **argv)
{
  SynthOptions o = { .size = 64, .n_pretrain = 20000, .eval_per_class = 40,
                     .finetune_per_class = 40 };
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

  /* Ctrl-C stops after the images being drawn; a second one kills at once. */
  struct sigaction action = { .sa_handler = on_signal, .sa_flags = SA_RESTART | SA_RESETHAND };
  struct sigaction old_int, old_term;
  sigemptyset (&action.sa_mask);
  sigaction (SIGINT, &action, &old_int);
  sigaction (SIGTERM, &action, &old_term);
  GError *error = NULL;
  gboolean ok = synthesize (&o, &error);
  sigaction (SIGINT, &old_int, NULL);
  sigaction (SIGTERM, &old_term, NULL);
  g_autofree char *shown = g_filename_display_name (out);
  if (!ok && error)
    return cli_fail (error);
  if (!ok)
    {
      fprintf (stderr, _("agriclip: interrupted; %s is incomplete (run the command again to "
                         "start over)\n"), shown);
      return 128 + SIGINT;
    }
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
