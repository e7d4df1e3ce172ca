/* export.h — what the exporters of a tagging run share (public entry:
 * agc_tag_export, agriclip.h "exporting a run").  Each format is one file,
 * export-FORMAT.c, writing into a staging folder that export.c puts in
 * place of DEST once it is complete. */
#pragma once

#include "tagging/tag-results.h"

typedef struct
{
  const AgcTagRun *run;
  GPtrArray *results;   /* AgcTagResult *, sorted by (source, image) */
  char **originals;     /* [results->len] absolute paths of the images */
  char **names;         /* [results->len] file names unique in the export, same order */
  const char *dest;     /* DEST, absolute */
  const char *stage;    /* the folder being written, renamed to DEST at the end */
  gboolean copy;        /* copies of the originals instead of symbolic links */
  gboolean has_boxes;   /* the run has regions */
  AgcReportFunc report; /* for problems that skip one image */
  gpointer user_data;
  int n_problems;
} AgcExport;

typedef gboolean (*AgcExportFunc) (AgcExport *export, GError **error);

gboolean agc_export_folders (AgcExport *export, GError **error);
gboolean agc_export_csv (AgcExport *export, GError **error);
gboolean agc_export_coco (AgcExport *export, GError **error);
gboolean agc_export_yolo (AgcExport *export, GError **error);
gboolean agc_export_label_studio (AgcExport *export, GError **error);
gboolean agc_export_xmp (AgcExport *export, GError **error);

/* The class index of an export name in the run, or -1. */
int agc_export_class_index (const AgcTagRun *run, const char *label);

/* A folder name for a label: the label, with '/' as '_' and "." or ".."
 * prefixed with '_' (labels are free text, file names are not). */
char *agc_export_label_folder (const char *label);
/* AGC_ERROR_INPUT when two classes would share a folder, or one would be
 * called reserved (NULL: none). */
gboolean agc_export_check_label_folders (const AgcTagRun *run, const char *reserved,
                                         GError **error);

/* Places the image of result i as dir/name: a symbolic link to the
 * original, or a copy.  A copy that fails is reported (the image is left
 * out, FALSE returned without error); a folder that cannot be made is an
 * error. */
gboolean agc_export_place_image (AgcExport *export, guint i, const char *dir, GError **error);

/* Writes text as stage/name (the stage is renamed into place as a whole). */
gboolean agc_export_write (AgcExport *export, const char *name, const GString *text,
                           GError **error);

/* Reports a problem that leaves one image out of the export. */
void agc_export_problem (AgcExport *export, int code, const char *format, ...)
  G_GNUC_PRINTF (3, 4);

/* A path or name as UTF-8 for text formats (invalid bytes as U+FFFD). */
char *agc_export_display (const char *path);

/* Appends value formatted with a printf format such as "%.6f", with a '.'
 * whatever the locale of the host program. */
void agc_export_append_number (GString *out, const char *format, double value);
/* Appends s as a JSON string literal (agc_export_display'ed). */
void agc_export_append_json (GString *out, const char *s);
