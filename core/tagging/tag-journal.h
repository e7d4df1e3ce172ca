/* tag-journal.h — RUN/journal: how much of results.jsonl is complete.
 *
 * One line per event, appended with a single write:
 *   committed BYTES IMAGES   results.jsonl is complete up to BYTES (IMAGES lines),
 *                            flushed to disk before this line was written
 *   complete SKIPPED         the run ended; SKIPPED files could not be read
 * A line without its newline (a killed writer) does not count. */
#pragma once

#include "agriclip.h"

#define AGC_TAG_JOURNAL_FILE "journal"

typedef struct
{
  gint64 committed_bytes; /* of results.jsonl */
  gint64 committed_images;
  gboolean complete;      /* the last line is "complete" */
  int skipped;            /* with complete */
  gint64 journal_bytes;   /* the journal's complete lines */
} AgcTagJournalState;

/* Reads run_dir's journal (a missing one is empty). */
gboolean agc_tag_journal_read (const char *run_dir, AgcTagJournalState *state, GError **error);

/* Cuts results.jsonl back to the last committed length and the journal to
 * its last complete line, so that appending continues a consistent run. */
gboolean agc_tag_journal_recover (const char *run_dir, AgcTagJournalState *state,
                                  GError **error);

/* Appends one line (with its newline) to run_dir's journal. */
gboolean agc_tag_journal_append (const char *run_dir, const char *line, GError **error);
