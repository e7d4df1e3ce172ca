/* cmd-models.c — `agriclip models list | show NAME | pull NAME`: the model
 * catalogue (models/catalogue.json), and fetching a model into the folder
 * where `--model NAME` finds it.
 *
 * A pull downloads into DIR/.NAME.partial/ and renames that folder to
 * DIR/NAME only when every file is there and checked, so a folder named
 * after a model is always complete; an interrupted pull resumes. */
#include "hub/catalogue.h"
#include "cli.h"
#include "hub/download.h"

#include <errno.h>
#include <fcntl.h>
#include <glib/gstdio.h>
#include <string.h>
#include <unistd.h>

extern const CliCommand cli_models_command;

#define DEFAULT_HUB "https://huggingface.co"

/* ---- where files come from and go to ----------------------------------- */

/* $AGRICLIP_HUB_URL (tests, mirrors) or the Hugging Face Hub, without a trailing '/'. */
static char *
hub_base (void)
{
  const char *env = g_getenv ("AGRICLIP_HUB_URL");
  char *base = g_strdup (env && *env ? env : DEFAULT_HUB);
  for (gsize n = strlen (base); n > 0 && base[n - 1] == '/'; n--)
    base[n - 1] = '\0';
  return base;
}

/* The download address of a file, NULL for one fetched by hand.  Hub
 * layout: {base}/{repository}/resolve/{revision}/{path}. */
static char *
file_url (const CliCatalogueFile *f)
{
  if (f->url)
    return g_strdup (f->url);
  if (!f->repository)
    return NULL;
  g_autofree char *base = hub_base ();
  g_autofree char *repository = g_uri_escape_string (f->repository, "/", FALSE);
  g_autofree char *revision = g_uri_escape_string (f->revision, NULL, FALSE);
  g_autofree char *path = g_uri_escape_string (f->remote_path, "/", FALSE);
  return g_strdup_printf ("%s/%s/resolve/%s/%s", base, repository, revision, path);
}

static char *
file_dest (const char *folder, const CliCatalogueFile *f)
{
  g_auto (GStrv) parts = g_strsplit (f->path, "/", -1);
  g_autofree char *relative = g_build_filenamev (parts);
  return g_build_filename (folder, relative, NULL);
}

static char *
staging_folder (const char *dir, const char *name)
{
  g_autofree char *hidden = g_strdup_printf (".%s.partial", name);
  return g_build_filename (dir, hidden, NULL);
}

static const char *
or_unknown (const char *s)
{
  return s ? s : _("unknown");
}

/* ---- list and show ----------------------------------------------------- */

static int
list_models (const CliCatalogue *catalogue, const char *dir)
{
  printf ("%-24s %-10s %-7s %s\n", _("NAME"), _("FAMILY"), _("PULLED"), _("TITLE"));
  for (guint i = 0; i < catalogue->models->len; i++)
    {
      const CliCatalogueModel *m = catalogue->models->pdata[i];
      g_autofree char *folder = g_build_filename (dir, m->name, NULL);
      printf ("%-24s %-10s %-7s %s\n", m->name, m->family,
              g_file_test (folder, G_FILE_TEST_IS_DIR) ? _("yes") : _("no"), m->title);
    }
  return CLI_EXIT_OK;
}

static void
show_field (const CliCatalogueModel *m, const char *label, const char *field, const char *value)
{
  if (value == NULL)
    return;
  printf ("%-10s %s%s\n", label, value,
          cli_catalogue_model_unverified (m, field) ? _("  [unverified]") : "");
}

static int
show_model (const CliCatalogueModel *m, const char *dir)
{
  g_autofree char *folder = g_build_filename (dir, m->name, NULL);
  show_field (m, "name:", "name", m->name);
  show_field (m, "title:", "title", m->title);
  show_field (m, "family:", "family", m->family);
  if (m->repository)
    {
      g_autofree char *base = hub_base ();
      g_autofree char *source = g_strdup_printf ("%s/%s (revision %s)", base, m->repository,
                                                 m->revision ? m->revision : "main");
      show_field (m, "source:", "repository", source);
    }
  show_field (m, "homepage:", "homepage", m->homepage);
  show_field (m, "licence:", "licence", m->licence ? m->licence : _("not recorded"));
  show_field (m, "good for:", "good_for", m->good_for);
  show_field (m, "notes:", "notes", m->notes);
  printf ("%-10s %s (%s)\n", "folder:", folder,
          g_file_test (folder, G_FILE_TEST_IS_DIR) ? _("pulled") : _("not pulled"));
  printf ("%-10s %u%s\n", "files:", m->files->len,
          cli_catalogue_model_unverified (m, "files")
            ? _("  [unverified: names and places not checked at the source]")
            : "");
  gboolean unknown = FALSE;
  for (guint i = 0; i < m->files->len; i++)
    {
      const CliCatalogueFile *f = m->files->pdata[i];
      g_autofree char *url = file_url (f);
      g_autofree char *size = f->size >= 0 ? g_strdup_printf ("%" G_GINT64_FORMAT " bytes",
                                                              f->size)
                                           : NULL;
      printf ("  %s\n", f->path);
      if (url)
        printf ("      from    %s\n", url);
      else
        printf ("      by hand %s\n", f->manual);
      printf ("      size    %s\n      sha256  %s\n", or_unknown (size), or_unknown (f->sha256));
      unknown |= f->size < 0 || f->sha256 == NULL;
    }
  if (unknown)
    printf (_("\nSizes and checksums marked unknown are not in the catalogue: pull cannot check "
              "those files against them; it prints the SHA-256 of what it received.\n"));
  if (m->unverified[0] != NULL)
    printf (_("Values marked [unverified] were written without checking them at the source; "
              "a file that is not there makes pull fail with HTTP 404 naming its address.\n"));
  return CLI_EXIT_OK;
}

/* ---- pull -------------------------------------------------------------- */

/* Prints how to install the model without agriclip's downloads. */
static void
print_by_hand (const CliCatalogueModel *m, const char *folder, gboolean default_dir)
{
  fprintf (stderr, _("agriclip: to install %s by hand, fetch these files and put them in "
                     "place:\n"), m->name);
  for (guint i = 0; i < m->files->len; i++)
    {
      const CliCatalogueFile *f = m->files->pdata[i];
      g_autofree char *dest = file_dest (folder, f);
      g_autofree char *url = file_url (f);
      fprintf (stderr, "agriclip:   %s  <-  %s\n", dest, url ? url : f->manual);
    }
  if (default_dir)
    fprintf (stderr, _("agriclip: then '--model %s' finds the folder.\n"), m->name);
  else
    fprintf (stderr, _("agriclip: then give '--model %s'.\n"), folder);
}

/* Holds an exclusive lock on staging/.lock so that two pulls of one model
 * do not write the same files.  Returns the descriptor, -1 on error. */
static int
lock_staging (const char *staging, GError **error)
{
  g_autofree char *path = g_build_filename (staging, ".lock", NULL);
  int fd = open (path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  struct flock lock = { .l_type = F_WRLCK, .l_whence = SEEK_SET };
  if (fd >= 0 && fcntl (fd, F_SETLK, &lock) == 0)
    return fd;
  int e = errno;
  if (fd >= 0)
    close (fd);
  if (e == EACCES || e == EAGAIN)
    g_set_error (error, AGC_ERROR, AGC_ERROR_IO,
                 "%s: another agriclip is pulling into this folder; wait for it to finish",
                 staging);
  else
    g_set_error (error, AGC_ERROR, AGC_ERROR_IO, "%s: %s", path, g_strerror (e));
  return -1;
}

static void
report_file (const CliCatalogueFile *f, const char *dest, const char *sha256)
{
  GStatBuf st;
  gint64 size = g_stat (dest, &st) == 0 ? (gint64) st.st_size : -1;
  fprintf (stderr, "agriclip: %s: %" G_GINT64_FORMAT " bytes, sha256 %s (%s)\n", f->path, size,
           sha256, f->sha256 ? _("matches the catalogue") : _("not in the catalogue: unchecked"));
}

/* A file already in the staging folder (an earlier pull, or placed by
 * hand): kept when it matches what the catalogue knows, deleted otherwise. */
static gboolean
check_present (const CliCatalogueFile *f, const char *dest, gboolean *present, GError **error)
{
  *present = g_file_test (dest, G_FILE_TEST_IS_REGULAR);
  if (!*present)
    return TRUE;
  char sha256[CLI_SHA256_HEX];
  if (!cli_file_sha256 (sha256, dest, error))
    return FALSE;
  GStatBuf st;
  gboolean size_ok = f->size < 0 || (g_stat (dest, &st) == 0 && st.st_size == f->size);
  if (size_ok && (f->sha256 == NULL || strcmp (sha256, f->sha256) == 0))
    {
      report_file (f, dest, sha256);
      return TRUE;
    }
  unlink (dest);
  *present = FALSE;
  if (f->repository || f->url)
    {
      fprintf (stderr, "agriclip: %s: does not match the catalogue; downloading it again\n",
               dest);
      return TRUE;
    }
  g_set_error (error, CLI_DOWNLOAD_ERROR, CLI_DOWNLOAD_ERROR_CHECKSUM,
               "%s: size or SHA-256 differs from the catalogue's (%s); it was deleted: fetch "
               "it again (%s)",
               dest, f->sha256 ? f->sha256 : "size only", f->manual);
  return FALSE;
}

static gboolean
download_file (const CliCatalogueFile *f, const char *dest, GError **error)
{
  g_autofree char *url = file_url (f);
  const char *token = f->repository ? g_getenv ("HF_TOKEN") : NULL;
  if (token && !*token)
    token = NULL;
  g_autofree char *hint
    = f->repository == NULL ? NULL
      : token ? g_strdup_printf ("HF_TOKEN was sent: check that its account may read %s",
                                 f->repository)
              : g_strdup_printf ("if %s is gated or private, accept its terms on the Hub and "
                                 "set HF_TOKEN to an access token",
                                 f->repository);
  CliDownload download = {
    .url = url, .bearer_token = token, .dest = dest, .label = f->path,
    .size = f->size, .sha256 = f->sha256, .denied_hint = hint,
  };
  fprintf (stderr, "agriclip: %s: downloading %s\n", f->path, url);
  char sha256[CLI_SHA256_HEX];
  if (!cli_download (sha256, &download, error))
    return FALSE;
  report_file (f, dest, sha256);
  return TRUE;
}

/* Fetches every file of m into staging; *manual_missing lists the files a
 * person has to put there. */
static gboolean
fill_staging (const CliCatalogueModel *m, const char *staging, GPtrArray *manual_missing,
              GError **error)
{
  for (guint i = 0; i < m->files->len; i++)
    {
      const CliCatalogueFile *f = m->files->pdata[i];
      g_autofree char *dest = file_dest (staging, f);
      g_autofree char *parent = g_path_get_dirname (dest);
      if (g_mkdir_with_parents (parent, 0755) != 0)
        {
          int e = errno;
          g_set_error (error, AGC_ERROR, AGC_ERROR_IO, "%s: %s", parent, g_strerror (e));
          return FALSE;
        }
      gboolean present;
      if (!check_present (f, dest, &present, error))
        return FALSE;
      if (present)
        continue;
      if (f->repository == NULL && f->url == NULL)
        g_ptr_array_add (manual_missing, (gpointer) f);
      else if (!download_file (f, dest, error))
        return FALSE;
    }
  return TRUE;
}

static int
pull_model (const CliCatalogueModel *m, const char *dir, gboolean default_dir)
{
  g_autofree char *folder = g_build_filename (dir, m->name, NULL);
  if (g_file_test (folder, G_FILE_TEST_EXISTS))
    {
      fprintf (stderr, _("agriclip: %s is already pulled (delete the folder to pull it "
                         "again)\n"), folder);
      printf ("%s\n", folder);
      return CLI_EXIT_OK;
    }
  g_autofree char *staging = staging_folder (dir, m->name);
  GError *error = NULL;
  if (g_mkdir_with_parents (staging, 0755) != 0)
    {
      int e = errno;
      g_set_error (&error, AGC_ERROR, AGC_ERROR_IO, "%s: %s", staging, g_strerror (e));
      return cli_fail (error);
    }
  int lock = lock_staging (staging, &error);
  if (lock < 0)
    return cli_fail (error);

  g_autoptr (GPtrArray) manual_missing = g_ptr_array_new ();
  int status = CLI_EXIT_OK;
  if (!fill_staging (m, staging, manual_missing, &error))
    {
      gboolean offline = g_error_matches (error, CLI_DOWNLOAD_ERROR, CLI_DOWNLOAD_ERROR_OFFLINE);
      status = cli_fail (error);
      if (offline)
        print_by_hand (m, folder, default_dir);
    }
  else if (manual_missing->len > 0)
    {
      fprintf (stderr, _("agriclip: %s: %u file(s) cannot be downloaded by agriclip; fetch them "
                         "by hand, put them here, then run 'agriclip models pull %s' again:\n"),
               m->name, manual_missing->len, m->name);
      for (guint i = 0; i < manual_missing->len; i++)
        {
          const CliCatalogueFile *f = manual_missing->pdata[i];
          g_autofree char *dest = file_dest (staging, f);
          fprintf (stderr, "agriclip:   %s  <-  %s\n", dest, f->manual);
        }
      status = CLI_EXIT_ERROR;
    }
  else
    {
      // complete and checked: make it visible in one step
      g_autofree char *lock_path = g_build_filename (staging, ".lock", NULL);
      unlink (lock_path);
      if (rename (staging, folder) != 0)
        {
          int e = errno;
          g_set_error (&error, AGC_ERROR, AGC_ERROR_IO, "%s: cannot rename to %s: %s", staging,
                       folder, g_strerror (e));
          status = cli_fail (error);
        }
      else
        printf ("%s\n", folder);
    }
  if (status != CLI_EXIT_OK && manual_missing->len == 0)
    {
      // leave no empty staging folder behind (one with files stays, to resume)
      g_autofree char *lock_path = g_build_filename (staging, ".lock", NULL);
      unlink (lock_path);
      g_rmdir (staging);
    }
  close (lock);
  return status;
}

/* ---- the command ------------------------------------------------------- */

static int
run (int argc, char **argv)
{
  g_autofree char *dir_option = NULL;
  const GOptionEntry entries[] = {
    { "dir", 'd', 0, G_OPTION_ARG_FILENAME, &dir_option,
      N_("Folder of pulled models (default: $XDG_DATA_HOME/agriclip/models)"), N_("DIR") },
    { NULL },
  };
  const CliCommand *command = &cli_models_command;
  g_autoptr (GOptionContext) context = cli_option_context_new (command, entries);
  g_option_context_set_description (
    context, _("Actions:\n"
               "  list         the models of the catalogue, and which are pulled\n"
               "  show NAME    what a model is, its licence and its files\n"
               "  pull NAME    download it into DIR/NAME (resumes an interrupted pull)\n\n"
               "Environment: HF_TOKEN (Hugging Face access token), AGRICLIP_HUB_URL (a Hub "
               "mirror), AGRICLIP_CATALOGUE (another catalogue file).\n"
               "'--model NAME' of the other commands finds a model pulled to the default "
               "folder.\n"));
  if (!cli_parse (context, command, &argc, &argv))
    return CLI_EXIT_USAGE;
  if (argc < 2)
    return cli_usage (command, _("no action given: list, show NAME or pull NAME"));
  const char *action = argv[1];
  gboolean wants_name = g_str_equal (action, "show") || g_str_equal (action, "pull");
  if (!wants_name && !g_str_equal (action, "list"))
    return cli_usage (command, _("unknown action '%s' (list, show or pull)"), action);
  if (argc != (wants_name ? 3 : 2))
    return cli_usage (command, wants_name ? _("'%s' takes one model NAME")
                                          : _("'%s' takes no arguments"), action);

  GError *error = NULL;
  g_autoptr (CliCatalogue) catalogue = cli_catalogue_open (&error);
  if (!catalogue)
    return cli_fail (error);
  g_autofree char *dir = dir_option ? g_strdup (dir_option) : agc_models_dir ();
  if (!wants_name)
    return list_models (catalogue, dir);
  const CliCatalogueModel *model = cli_catalogue_find (catalogue, argv[2]);
  if (!model)
    {
      g_autoptr (GString) names = g_string_new ("");
      for (guint i = 0; i < catalogue->models->len; i++)
        g_string_append_printf (names, "%s%s", i ? ", " : "",
                                ((CliCatalogueModel *) catalogue->models->pdata[i])->name);
      g_set_error (&error, AGC_ERROR, AGC_ERROR_INPUT, "%s: no model of that name in %s (known: %s)",
                   argv[2], catalogue->path, names->str);
      return cli_fail (error);
    }
  if (g_str_equal (action, "show"))
    return show_model (model, dir);
  return pull_model (model, dir, dir_option == NULL);
}

const CliCommand cli_models_command = {
  .name = "models",
  .parameters = "list | show NAME | pull NAME",
  .summary = N_("List, describe and download the models agriclip knows"),
  .run = run,
};
