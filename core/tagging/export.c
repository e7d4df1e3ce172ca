/* export.c — agc_tag_export: reads a run, writes one format into a
 * staging folder beside DEST and puts it in place of DEST when complete, so
 * that DEST is the old export or the new one, never half of one. */
#define _GNU_SOURCE /* renameat2 */
#include "tagging/export.h"

#include "support/json-file.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <glib/gstdio.h>
#include <stdio.h>
#include <string.h>

/* Marks a folder as an export, with its format: the only kind of existing
 * DEST an export replaces. */
#define MARKER ".agriclip-export"

static const struct
{
  const char *name;
  AgcExportFunc write;
} formats[] = {
  [AGC_EXPORT_FOLDERS] = { "folders", agc_export_folders },
  [AGC_EXPORT_CSV] = { "csv", agc_export_csv },
  [AGC_EXPORT_COCO] = { "coco", agc_export_coco },
  [AGC_EXPORT_YOLO] = { "yolo", agc_export_yolo },
  [AGC_EXPORT_LABEL_STUDIO] = { "label-studio", agc_export_label_studio },
  [AGC_EXPORT_XMP] = { "xmp", agc_export_xmp },
};

gboolean
agc_export_format_from_name (const char *name, AgcExportFormat *format)
{
  for (gsize i = 0; i < G_N_ELEMENTS (formats); i++)
    if (g_strcmp0 (name, formats[i].name) == 0)
      {
        *format = (AgcExportFormat) i;
        return TRUE;
      }
  return FALSE;
}

const char *
agc_export_format_name (AgcExportFormat format)
{
  return (gsize) format < G_N_ELEMENTS (formats) ? formats[format].name : NULL;
}

int
agc_export_class_index (const AgcTagRun *run, const char *label)
{
  for (int c = 0; c < run->n_classes; c++)
    if (g_strcmp0 (run->labels[c], label) == 0)
      return c;
  return -1;
}

char *
agc_export_label_folder (const char *label)
{
  if (g_str_equal (label, ".") || g_str_equal (label, ".."))
    return g_strconcat ("_", label, NULL);
  return g_strdelimit (g_strdup (label), "/", '_');
}

gboolean
agc_export_check_label_folders (const AgcTagRun *run, const char *reserved, GError **error)
{
  g_autoptr (GHashTable) seen = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  for (int c = 0; c < run->n_classes; c++)
    {
      char *folder = agc_export_label_folder (run->labels[c]);
      if (g_hash_table_contains (seen, folder) || g_strcmp0 (folder, reserved) == 0)
        {
          g_set_error (error, AGC_ERROR, AGC_ERROR_INPUT,
                       "the class \"%s\" would have the folder \"%s\" of another class or of "
                       "the review images", run->labels[c], folder);
          g_free (folder);
          return FALSE;
        }
      g_hash_table_add (seen, folder);
    }
  return TRUE;
}

char *
agc_export_display (const char *path)
{
  return g_filename_display_name (path);
}

void
agc_export_problem (AgcExport *export, int code, const char *format, ...)
{
  va_list args;
  va_start (args, format);
  GError *problem = g_error_new_valist (AGC_ERROR, code, format, args);
  va_end (args);
  export->n_problems++;
  if (export->report)
    export->report (problem, export->user_data);
  g_error_free (problem);
}

gboolean
agc_export_write (AgcExport *export, const char *name, const GString *text, GError **error)
{
  g_autofree char *path = g_build_filename (export->stage, name, NULL);
  GError *local = NULL;
  if (g_file_set_contents (path, text->str, (gssize) text->len, &local))
    return TRUE;
  g_set_error (error, AGC_ERROR, AGC_ERROR_IO, "%s", local->message);
  g_error_free (local);
  return FALSE;
}

static gboolean
copy_file (const char *from, const char *to, GError **error)
{
  g_autoptr (GFile) source = g_file_new_for_path (from);
  g_autoptr (GFile) target = g_file_new_for_path (to);
  // an original that is a link is copied as the photo it points to
  return g_file_copy (source, target, G_FILE_COPY_NONE, NULL, NULL, NULL, error);
}

gboolean
agc_export_place_image (AgcExport *export, guint i, const char *dir, GError **error)
{
  if (g_mkdir_with_parents (dir, 0777) != 0)
    {
      int saved = errno;
      g_autofree char *shown = agc_export_display (dir);
      g_set_error (error, AGC_ERROR, AGC_ERROR_IO, "%s: %s", shown, g_strerror (saved));
      return FALSE;
    }
  g_autofree char *path = g_build_filename (dir, export->names[i], NULL);
  const char *original = export->originals[i];
  if (!export->copy)
    {
      if (symlink (original, path) == 0)
        return TRUE;
      int saved = errno;
      g_autofree char *shown = agc_export_display (path);
      g_set_error (error, AGC_ERROR, AGC_ERROR_IO, "%s: %s", shown, g_strerror (saved));
      return FALSE;
    }
  GError *local = NULL;
  if (copy_file (original, path, &local))
    return TRUE;
  g_autofree char *shown = agc_export_display (original);
  agc_export_problem (export, AGC_ERROR_IO, "%s: %s (left out of the export)", shown,
                      local->message);
  g_error_free (local);
  return FALSE;
}

static int
compare_results (gconstpointer a, gconstpointer b)
{
  const AgcTagResult *x = *(const AgcTagResult *const *) a;
  const AgcTagResult *y = *(const AgcTagResult *const *) b;
  if (x->source != y->source)
    return x->source < y->source ? -1 : 1;
  return strcmp (x->image, y->image);
}

/* name.ext, then name-2.ext, name-3.ext…, unique without their extensions
 * (YOLO pairs images/NAME.jpg with labels/NAME.txt); the first image in
 * (source, path) order keeps its name, so that exports of a run are equal. */
static char *
unique_name (GHashTable *used_stems, const char *image)
{
  g_autofree char *base = g_path_get_basename (image);
  const char *dot = strrchr (base, '.');
  int stem = (int) (dot && dot != base ? dot - base : (gssize) strlen (base));
  for (int n = 1;; n++)
    {
      char *name = n == 1 ? g_strdup (base)
                          : g_strdup_printf ("%.*s-%d%s", stem, base, n, base + stem);
      char *name_stem = g_strndup (name, strlen (name) - strlen (base + stem));
      if (!g_hash_table_contains (used_stems, name_stem))
        {
          g_hash_table_add (used_stems, name_stem);
          return name;
        }
      g_free (name_stem);
      g_free (name);
    }
}

static gboolean
check_results (const char *run_dir, const AgcTagRun *run, GPtrArray *results, GError **error)
{
  g_autofree char *file = g_build_filename (run_dir, "results.jsonl", NULL);
  g_autofree char *shown = agc_export_display (file);
  for (guint i = 0; i < results->len; i++)
    {
      const AgcTagResult *r = results->pdata[i];
      g_autofree char *image = agc_export_display (r->image);
      if (r->source < 0 || r->source >= run->n_sources)
        return g_set_error (error, AGC_ERROR, AGC_ERROR_FORMAT,
                            "%s: %s: source %d is not one of the %d sources of run.json", shown,
                            image, r->source, run->n_sources), FALSE;
      if (r->width <= 0 || r->height <= 0)
        return g_set_error (error, AGC_ERROR, AGC_ERROR_FORMAT, "%s: %s: size %dx%d", shown,
                            image, r->width, r->height), FALSE;
      if (r->n_labels < 1)
        return g_set_error (error, AGC_ERROR, AGC_ERROR_FORMAT, "%s: %s: no labels", shown,
                            image), FALSE;
      for (int k = 0; k < r->n_labels; k++)
        if (agc_export_class_index (run, r->labels[k].label) < 0)
          return g_set_error (error, AGC_ERROR, AGC_ERROR_FORMAT,
                              "%s: %s: label \"%s\" is not a class of run.json", shown, image,
                              r->labels[k].label), FALSE;
      for (int b = 0; b < r->n_boxes; b++)
        {
          const AgcTagBox *box = &r->boxes[b];
          if (agc_export_class_index (run, box->label) < 0)
            return g_set_error (error, AGC_ERROR, AGC_ERROR_FORMAT,
                                "%s: %s: box label \"%s\" is not a class of run.json", shown,
                                image, box->label), FALSE;
          if (box->x < 0 || box->y < 0 || box->width <= 0 || box->height <= 0
              || box->x + box->width > r->width || box->y + box->height > r->height)
            return g_set_error (error, AGC_ERROR, AGC_ERROR_FORMAT,
                                "%s: %s: box %d,%d %dx%d is not inside the %dx%d image", shown,
                                image, box->x, box->y, box->width, box->height, r->width,
                                r->height), FALSE;
        }
    }
  return TRUE;
}

/* What kind of export the folder dest is: its marker's format, or NULL. */
static char *
export_kind (const char *dest)
{
  g_autofree char *marker = g_build_filename (dest, MARKER, NULL);
  if (!g_file_test (marker, G_FILE_TEST_IS_REGULAR))
    return NULL;
  g_autoptr (JsonParser) parser = json_parser_new ();
  if (!agc_json_parse_file (parser, marker, marker, NULL))
    return NULL;
  JsonNode *root = json_parser_get_root (parser);
  if (!JSON_NODE_HOLDS_OBJECT (root))
    return NULL;
  JsonObject *object = json_node_get_object (root);
  const char *format = json_object_get_string_member_with_default (object, "format", "");
  if (!g_str_equal (format, "agriclip-export"))
    return NULL;
  return g_strdup (json_object_get_string_member_with_default (object, "kind", ""));
}

static int
remove_entry (const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
  (void) st, (void) flag, (void) ftw;
  remove (path);
  return 0;
}

/* Removes a folder this export made, never following a link. */
static void
remove_tree (const char *path)
{
  nftw (path, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static gboolean
io_error (GError **error, const char *path, int saved_errno, const char *what)
{
  g_autofree char *shown = agc_export_display (path);
  g_set_error (error, AGC_ERROR, AGC_ERROR_IO, "%s: %s: %s", shown, what,
               g_strerror (saved_errno));
  return FALSE;
}

/* Puts stage in place of dest: atomically swapped with an earlier export,
 * or renamed to a dest that must still not exist. */
static gboolean
install_stage (const char *stage, const char *dest, gboolean replace, GError **error)
{
  if (!replace)
    {
      if (renameat2 (AT_FDCWD, stage, AT_FDCWD, dest, RENAME_NOREPLACE) == 0)
        return TRUE;
      return io_error (error, dest, errno, "cannot create");
    }
  if (renameat2 (AT_FDCWD, stage, AT_FDCWD, dest, RENAME_EXCHANGE) != 0)
    return io_error (error, dest, errno, "cannot replace");
  remove_tree (stage); // the earlier export, now at the stage's name
  return TRUE;
}

static gboolean
is_empty (const char *folder)
{
  GDir *dir = g_dir_open (folder, 0, NULL);
  gboolean empty = dir && g_dir_read_name (dir) == NULL;
  if (dir)
    g_dir_close (dir);
  return empty;
}

/* DEST may be absent, an empty folder, or an earlier export of the same
 * format (replaced as a whole: what was added to it by hand goes with it). */
static gboolean
prepare_dest (const char *dest, AgcExportFormat format, gboolean *replace, GError **error)
{
  GStatBuf st;
  *replace = FALSE;
  if (g_lstat (dest, &st) != 0)
    return errno == ENOENT ? TRUE : io_error (error, dest, errno, "cannot read");
  g_autofree char *kind = S_ISDIR (st.st_mode) ? export_kind (dest) : NULL;
  if ((kind && g_str_equal (kind, formats[format].name))
      || (S_ISDIR (st.st_mode) && is_empty (dest)))
    return *replace = TRUE;
  g_autofree char *shown = agc_export_display (dest);
  g_set_error (error, AGC_ERROR, AGC_ERROR_INPUT,
               "%s: exists and is not an earlier %s export, which is all an export replaces; "
               "give a new folder", shown, formats[format].name);
  return FALSE;
}

static gboolean
write_marker (AgcExport *export, AgcExportFormat format, const char *run_dir, GError **error)
{
  g_autofree char *absolute = g_canonicalize_filename (run_dir, NULL);
  g_autofree char *shown = agc_export_display (absolute);
  g_autoptr (GString) text = g_string_new ("{\"format\": \"agriclip-export\", \"version\": 1, ");
  g_string_append_printf (text, "\"kind\": \"%s\", \"run\": ", formats[format].name);
  agc_json_append_string (text, shown);
  g_string_append (text, "}\n");
  return agc_export_write (export, MARKER, text, error);
}

gboolean
agc_tag_export (const char *run_dir, AgcExportFormat format, const char *dest, gboolean copy,
                AgcReportFunc report, gpointer user_data, int *n_problems, GError **error)
{
  g_return_val_if_fail ((gsize) format < G_N_ELEMENTS (formats), FALSE);
  if (n_problems)
    *n_problems = 0;
  g_autoptr (AgcTagRun) run = agc_tag_run_load (run_dir, error);
  if (!run)
    return FALSE;
  g_autoptr (GPtrArray) results = agc_tag_results_load (run_dir, error);
  if (!results || !check_results (run_dir, run, results, error))
    return FALSE;
  g_ptr_array_sort (results, compare_results);

  g_autofree char *target = g_strdup (dest);
  while (strlen (target) > 1 && g_str_has_suffix (target, G_DIR_SEPARATOR_S))
    target[strlen (target) - 1] = '\0';
  g_autofree char *absolute_dest = g_canonicalize_filename (target, NULL);
  gboolean replace;
  if (!prepare_dest (target, format, &replace, error))
    return FALSE;
  g_autofree char *parent = g_path_get_dirname (target);
  g_autofree char *base = g_path_get_basename (target);
  g_autofree char *template = g_strdup_printf (".%s.export-XXXXXX", base);
  g_autofree char *stage = g_build_filename (parent, template, NULL);
  if (!g_mkdtemp_full (stage, 0755)) // DEST is a folder to share, not a private one
    return io_error (error, parent, errno, "cannot write");

  guint n = results->len;
  AgcExport export = {
    .run = run,
    .results = results,
    .originals = g_new0 (char *, n + 1),
    .names = g_new0 (char *, n + 1),
    .stage = stage,
    .dest = absolute_dest,
    .copy = copy,
    .report = report,
    .user_data = user_data,
  };
  g_autoptr (GHashTable) used = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  for (guint i = 0; i < n; i++)
    {
      const AgcTagResult *r = results->pdata[i];
      export.originals[i] = g_build_filename (run->sources[r->source], r->image, NULL);
      export.names[i] = unique_name (used, r->image);
      export.has_boxes |= r->has_boxes || run->tile > 0;
    }
  gboolean ok = formats[format].write (&export, error)
                && write_marker (&export, format, run_dir, error)
                && install_stage (stage, target, replace, error);
  if (!ok)
    remove_tree (stage);
  if (n_problems)
    *n_problems = export.n_problems;
  g_strfreev (export.originals);
  g_strfreev (export.names);
  return ok;
}

void
agc_export_append_number (GString *out, const char *format, double value)
{
  char text[G_ASCII_DTOSTR_BUF_SIZE];
  g_string_append (out, g_ascii_formatd (text, sizeof text, format, value));
}

void
agc_export_append_json (GString *out, const char *s)
{
  g_autofree char *shown = agc_export_display (s);
  agc_json_append_string (out, shown);
}
