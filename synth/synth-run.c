/* synth-run.c — synth_run (): the folder, then the three parts, then the
 * marker that says the set is complete. */
#include "synth.h"

#include "agriclip.h"

#include "synth-classes.h"
#include "synth-folder.h"
#include "synth-job.h"
#include "synth-output.h"

#include <string.h>

SynthOptions
synth_default_options (void)
{
  return (SynthOptions) { .size = 64, .n_pretrain = 20000, .eval_per_class = 40,
                          .finetune_per_class = 40 };
}

/* captions.jsonl: one {"image": NAME, "caption": TEXT} per line. */
static gboolean
write_captions (const SynthJob *job, const char *dir, GError **error)
{
  g_autoptr (GString) text = g_string_new (NULL);
  for (int i = 0; i < job->n; i++)
    {
      g_autofree char *name = g_path_get_basename (job->paths[i]);
      g_string_append (text, "{\"image\": ");
      agc_json_append_string (text, name);
      g_string_append (text, ", \"caption\": ");
      agc_json_append_string (text, job->captions[i]);
      g_string_append (text, "}\n");
    }
  g_autofree char *path = g_build_filename (dir, "captions.jsonl", NULL);
  return synth_write_file (path, text->str, text->len, error);
}

static gboolean
write_pretrain (const SynthOptions *o, GError **error)
{
  g_autofree char *dir = g_build_filename (o->out, "pretrain", NULL);
  if (!synth_folder_make (dir, error))
    return FALSE;
  SynthJob job;
  synth_job_init (&job, o, SYNTH_SPLIT_PRETRAIN, o->n_pretrain, TRUE);
  for (int i = 0; i < job.n; i++)
    {
      char name[32];
      g_snprintf (name, sizeof name, "%06d.png", i);
      job.paths[i] = g_build_filename (dir, name, NULL);
      job.klass[i] = -1;
      job.index[i] = i;
    }
  gboolean ok = synth_job_run (&job, error) && write_captions (&job, dir, error);
  synth_job_clear (&job);
  return ok;
}

/* eval/ or finetune/: one folder per class and the label set. */
static gboolean
write_classes (const SynthOptions *o, SynthSplit split, GError **error)
{
  gboolean eval = split == SYNTH_SPLIT_EVAL;
  int per_class = eval ? o->eval_per_class : o->finetune_per_class;
  g_autofree char *dir = g_build_filename (o->out, eval ? "eval" : "finetune", NULL);
  SynthJob job;
  synth_job_init (&job, o, split, per_class * synth_n_classes, FALSE);
  gboolean ok = TRUE;
  for (int c = 0, i = 0; c < synth_n_classes && ok; c++)
    {
      g_autofree char *class_dir = g_build_filename (dir, synth_classes[c].name, NULL);
      ok = synth_folder_make (class_dir, error);
      for (int k = 0; k < per_class; k++, i++)
        {
          char name[32];
          g_snprintf (name, sizeof name, "%03d.png", k);
          job.paths[i] = g_build_filename (class_dir, name, NULL);
          job.klass[i] = c;
          job.index[i] = k;
        }
    }
  ok = ok && synth_job_run (&job, error);
  synth_job_clear (&job);
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

gboolean
synth_run (const SynthOptions *o, GError **error)
{
  g_return_val_if_fail (o != NULL && o->out != NULL, FALSE);
  g_return_val_if_fail (o->size >= 16 && o->size <= 1024, FALSE);
  g_return_val_if_fail (o->n_pretrain >= 0 && o->n_pretrain <= 10000000, FALSE);
  g_return_val_if_fail (o->eval_per_class >= 1 && o->eval_per_class <= 100000, FALSE);
  g_return_val_if_fail (o->finetune_per_class >= 1 && o->finetune_per_class <= 100000, FALSE);
  return synth_folder_prepare (o->out, error) && synth_folder_mark (o, FALSE, error)
         && write_pretrain (o, error) && write_classes (o, SYNTH_SPLIT_EVAL, error)
         && write_classes (o, SYNTH_SPLIT_FINETUNE, error) && synth_folder_mark (o, TRUE, error);
}
