/* tag-merge.c — agc_tag_merge: the shards of one run joined into the run
 * folder a single process would have written. */
#include "tagging/tag-journal.h"
#include "tagging/tag-order.h"
#include "tagging/tag-results.h"

#include "formats/safetensors-write.h"

#include <errno.h>
#include <glib/gstdio.h>
#include <string.h>

static gboolean
refuse (GError **error, const char *run_dir, const char *what)
{
  g_autofree char *shown = g_filename_display_name (run_dir);
  g_set_error (error, AGC_ERROR, AGC_ERROR_INPUT, "%s: %s", shown, what);
  return FALSE;
}

/* The first shard's description with the shard left out, as text: shards of
 * one run have equal ones. */
static char *
unsharded_text (AgcTagRun *run)
{
  int index = run->shard_index, count = run->shard_count;
  char *model = run->model;
  run->shard_index = run->shard_count = 0;
  run->model = (char *) ""; /* the name as given may differ between shards */
  char *text = agc_tag_run_to_json (run);
  run->shard_index = index;
  run->shard_count = count;
  run->model = model;
  return text;
}

static int
compare_results (gconstpointer pa, gconstpointer pb)
{
  const AgcTagResult *a = *(AgcTagResult *const *) pa, *b = *(AgcTagResult *const *) pb;
  if (a->source != b->source)
    return a->source < b->source ? -1 : 1;
  return agc_tag_path_compare (a->image, b->image);
}

/* Checks every run and gathers their results (of AgcTagResult, borrowed
 * from the arrays in loaded). */
static gboolean
gather (const char *const *run_dirs, int n_runs, AgcTagRun **first, GPtrArray *loaded,
        GPtrArray *all, int *skipped, GError **error)
{
  g_autofree char *reference = NULL;
  g_autofree gboolean *seen = NULL;
  for (int i = 0; i < n_runs; i++)
    {
      AgcTagRun *run = agc_tag_run_load (run_dirs[i], error);
      if (!run)
        return FALSE;
      g_autofree char *text = unsharded_text (run);
      if (i == 0)
        {
          *first = run;
          reference = g_steal_pointer (&text);
          if (run->shard_count != n_runs)
            {
              g_autofree char *what = g_strdup_printf (
                "is shard %d of %d, but %d runs are given: merge needs every shard once",
                run->shard_index, run->shard_count, n_runs);
              return refuse (error, run_dirs[i], what);
            }
          seen = g_new0 (gboolean, n_runs);
        }
      else
        {
          gboolean same = strcmp (text, reference) == 0 && run->shard_count == n_runs;
          int index = run->shard_index;
          gboolean other_decode = run->fast_decode != (*first)->fast_decode;
          gboolean other_precision = run->int8 != (*first)->int8;
          agc_tag_run_free (run);
          if (other_decode) // the labels of one image would depend on its shard
            return refuse (error, run_dirs[i], (*first)->fast_decode
                                                 ? "was made without --fast-decode, the first "
                                                   "run given with it"
                                                 : "was made with --fast-decode, the first run "
                                                   "given without it");
          if (other_precision) // as for the decode
            return refuse (error, run_dirs[i], (*first)->int8
                                                 ? "was made without --int8, the first run "
                                                   "given with it"
                                                 : "was made with --int8, the first run given "
                                                   "without it");
          if (!same)
            return refuse (error, run_dirs[i], "was made with other settings, model, labels or "
                                               "sources than the first run given");
          if (seen[index])
            return refuse (error, run_dirs[i], "is a shard given twice");
          seen[index] = TRUE;
          continue;
        }
      seen[run->shard_index] = TRUE;
    }
  for (int i = 0; i < n_runs; i++)
    {
      AgcTagJournalState journal;
      if (!agc_tag_journal_read (run_dirs[i], &journal, error))
        return FALSE;
      if (!journal.complete)
        return refuse (error, run_dirs[i], "is not finished: run its `agriclip tag` command "
                                           "again, which resumes it");
      *skipped += journal.skipped;
      GPtrArray *results = agc_tag_results_load (run_dirs[i], error);
      if (!results)
        return FALSE;
      g_ptr_array_add (loaded, results);
      for (guint r = 0; r < results->len; r++)
        g_ptr_array_add (all, results->pdata[r]);
    }
  g_ptr_array_sort (all, compare_results);
  for (guint r = 1; r < all->len; r++)
    if (compare_results (&all->pdata[r - 1], &all->pdata[r]) == 0)
      {
        const AgcTagResult *twice = all->pdata[r];
        g_autofree char *shown = g_filename_display_name (twice->image);
        g_set_error (error, AGC_ERROR, AGC_ERROR_INPUT,
                     "%s is in two of the runs given: they overlap", shown);
        return FALSE;
      }
  return TRUE;
}

gboolean
agc_tag_merge (const char *out_dir, const char *const *run_dirs, int n_runs, GError **error)
{
  g_return_val_if_fail (n_runs > 0, FALSE);
  if (g_file_test (out_dir, G_FILE_TEST_EXISTS))
    return refuse (error, out_dir, "exists already: merge writes a new folder");
  AgcTagRun *first = NULL;
  g_autoptr (GPtrArray) loaded = g_ptr_array_new_with_free_func ((GDestroyNotify) g_ptr_array_unref);
  g_autoptr (GPtrArray) all = g_ptr_array_new ();
  int skipped = 0;
  gboolean ok = gather (run_dirs, n_runs, &first, loaded, all, &skipped, error);
  /* built in a hidden folder beside out_dir, renamed when complete */
  g_autofree char *parent = g_path_get_dirname (out_dir);
  g_autofree char *base = g_path_get_basename (out_dir);
  g_autofree char *staging = g_strdup_printf ("%s%s.%s.partial", parent, G_DIR_SEPARATOR_S, base);
  if (ok && g_mkdir_with_parents (staging, 0755) != 0)
    ok = refuse (error, staging, g_strerror (errno));
  if (ok)
    {
      first->shard_index = first->shard_count = 0;
      g_autofree char *text = agc_tag_run_to_json (first);
      g_autoptr (GString) lines = g_string_new (NULL);
      for (guint r = 0; r < all->len; r++)
        {
          g_autofree char *line = agc_tag_result_to_json (all->pdata[r]);
          g_string_append (lines, line);
          g_string_append_c (lines, '\n');
        }
      g_autofree char *journal = g_strdup_printf ("committed %" G_GSIZE_FORMAT " %u\n"
                                                  "complete %d\n", lines->len, all->len,
                                                  skipped);
      g_autofree char *run_json = g_build_filename (staging, AGC_TAG_RUN_FILE, NULL);
      g_autofree char *results = g_build_filename (staging, AGC_TAG_RESULTS_FILE, NULL);
      g_autofree char *journal_path = g_build_filename (staging, AGC_TAG_JOURNAL_FILE, NULL);
      ok = agc_write_file_atomic (run_json, text, strlen (text), TRUE, error)
           && agc_write_file_atomic (results, lines->str, lines->len, TRUE, error)
           && agc_write_file_atomic (journal_path, journal, strlen (journal), TRUE, error);
      if (ok && g_rename (staging, out_dir) != 0)
        ok = refuse (error, out_dir, g_strerror (errno));
    }
  agc_tag_run_free (first);
  return ok;
}
