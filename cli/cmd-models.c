/* cmd-models.c — `agriclip models list | show NAME | pull NAME`: the model
 * catalogue (models/catalogue.json), and fetching a model into the folder
 * where `--model NAME` finds it.
 *
 * The catalogue and the pull are the library's (agriclip.h, "model hub");
 * this file prints them: tables, the messages of a pull as it goes, and a
 * progress bar on a terminal (a line every few seconds otherwise). */
#include "cli.h"

#include <unistd.h>

extern const CliCommand cli_models_command;

#define BAR_INTERVAL_US (G_USEC_PER_SEC / 5)
#define LINE_INTERVAL_US (5 * G_USEC_PER_SEC)

static const char *
or_unknown (const char *s)
{
  return s ? s : _("unknown");
}

/* ---- list and show ----------------------------------------------------- */

static int
list_models (const AgcCatalogue *catalogue, const char *dir)
{
  printf ("%-24s %-10s %-7s %s\n", _("NAME"), _("FAMILY"), _("PULLED"), _("TITLE"));
  for (guint i = 0; i < catalogue->models->len; i++)
    {
      const AgcCatalogueModel *m = catalogue->models->pdata[i];
      g_autofree char *folder = g_build_filename (dir, m->name, NULL);
      printf ("%-24s %-10s %-7s %s\n", m->name, m->family,
              g_file_test (folder, G_FILE_TEST_IS_DIR) ? _("yes") : _("no"), m->title);
    }
  return CLI_EXIT_OK;
}

static void
show_field (const AgcCatalogueModel *m, const char *label, const char *field, const char *value)
{
  if (value == NULL)
    return;
  printf ("%-10s %s%s\n", label, value,
          agc_catalogue_model_unverified (m, field) ? _("  [unverified]") : "");
}

static int
show_model (const AgcCatalogueModel *m, const char *dir)
{
  g_autofree char *folder = g_build_filename (dir, m->name, NULL);
  show_field (m, "name:", "name", m->name);
  show_field (m, "title:", "title", m->title);
  show_field (m, "family:", "family", m->family);
  if (m->repository)
    {
      g_autofree char *base = agc_hub_url ();
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
          agc_catalogue_model_unverified (m, "files")
            ? _("  [unverified: names and places not checked at the source]")
            : "");
  gboolean unknown = FALSE;
  for (guint i = 0; i < m->files->len; i++)
    {
      const AgcCatalogueFile *f = m->files->pdata[i];
      g_autofree char *url = agc_catalogue_file_url (f);
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
print_by_hand (const AgcCatalogueModel *m, const char *folder, gboolean default_dir)
{
  fprintf (stderr, _("agriclip: to install %s by hand, fetch these files and put them in "
                     "place:\n"), m->name);
  for (guint i = 0; i < m->files->len; i++)
    {
      const AgcCatalogueFile *f = m->files->pdata[i];
      g_autofree char *dest = agc_catalogue_file_dest (f, folder);
      g_autofree char *url = agc_catalogue_file_url (f);
      fprintf (stderr, "agriclip:   %s  <-  %s\n", dest, url ? url : f->manual);
    }
  if (default_dir)
    fprintf (stderr, _("agriclip: then '--model %s' finds the folder.\n"), m->name);
  else
    fprintf (stderr, _("agriclip: then give '--model %s'.\n"), folder);
}

/* What the pull's progress reports turn into on stderr. */
typedef struct
{
  gboolean tty;
  gint64 request_start_us, last_report_us;
  gboolean bar_drawn;
} PullView;

/* A redrawn bar on a terminal, a line every few seconds otherwise. */
static void
show_bytes (PullView *view, const char *label, gint64 have, gint64 total, gint64 request_bytes)
{
  gint64 now = g_get_monotonic_time ();
  if (now - view->last_report_us < (view->tty ? BAR_INTERVAL_US : LINE_INTERVAL_US))
    return;
  view->last_report_us = now;
  g_autofree char *have_text = g_format_size (have);
  g_autofree char *total_text = total > 0 ? g_format_size (total) : NULL;
  int percent = total > 0 ? (int) (100 * have / total) : -1;
  if (!view->tty)
    {
      if (total > 0)
        fprintf (stderr, "agriclip: %s: %s of %s (%d%%)\n", label, have_text, total_text,
                 percent);
      else
        fprintf (stderr, "agriclip: %s: %s so far\n", label, have_text);
      return;
    }
  double seconds = (now - view->request_start_us) / (double) G_USEC_PER_SEC;
  g_autofree char *speed = g_format_size ((guint64) (seconds > 0 ? request_bytes / seconds : 0));
  char bar[21];
  int filled = percent < 0 ? 0 : percent / 5;
  for (int i = 0; i < 20; i++)
    bar[i] = i < filled ? '#' : '.';
  bar[20] = '\0';
  if (total > 0)
    fprintf (stderr, "\r%s [%s] %3d%%  %s of %s  %s/s\033[K", label, bar, percent, have_text,
             total_text, speed);
  else
    fprintf (stderr, "\r%s  %s  %s/s\033[K", label, have_text, speed);
  view->bar_drawn = TRUE;
}

/* Ends a drawn bar's line. */
static void
end_bar (PullView *view)
{
  if (view->bar_drawn)
    fputc ('\n', stderr);
  view->bar_drawn = FALSE;
}

/* How far a file in place is known to be the right one. */
static const char *
check_text (AgcPullCheck check)
{
  switch (check)
    {
    case AGC_PULL_CHECK_CATALOGUE_SHA256:
      return _("matches the catalogue");
    case AGC_PULL_CHECK_CATALOGUE_SIZE:
      return _("size matches the catalogue, which has no SHA-256 for it");
    case AGC_PULL_CHECK_SERVER_SHA256:
      return _("matches the SHA-256 the server announced");
    case AGC_PULL_CHECK_SERVER_SIZE:
      return _("size matches what the server announced; no SHA-256 to check");
    case AGC_PULL_CHECK_NONE:
    default:
      return _("nothing says what it should hold: unchecked");
    }
}

static void
on_pull_progress (const AgcPullProgress *p, gpointer user_data)
{
  PullView *view = user_data;
  const char *label = p->file->path;
  switch (p->stage)
    {
    case AGC_PULL_CHECKED:
      fprintf (stderr, "agriclip: %s: %" G_GINT64_FORMAT " bytes, sha256 %s (%s)\n", label,
               p->bytes, p->sha256, check_text (p->check));
      break;
    case AGC_PULL_MISMATCH:
      fprintf (stderr, "agriclip: %s: does not match the catalogue; downloading it again\n",
               p->dest);
      break;
    case AGC_PULL_DOWNLOAD:
      fprintf (stderr, "agriclip: %s: downloading %s\n", label, p->url);
      break;
    case AGC_PULL_RESUME:
      fprintf (stderr, "agriclip: %s: resuming after %" G_GINT64_FORMAT " bytes\n", label,
               p->bytes);
      break;
    case AGC_PULL_REQUEST:
      view->request_start_us = view->last_report_us = g_get_monotonic_time ();
      break;
    case AGC_PULL_BYTES:
      show_bytes (view, label, p->bytes, p->total, p->request_bytes);
      break;
    case AGC_PULL_RETRY:
      end_bar (view);
      fprintf (stderr, "agriclip: %s; trying again (%d of %d)\n", p->message, p->attempt,
               p->max_attempts);
      break;
    case AGC_PULL_TRANSFERRED:
      if (view->bar_drawn && p->ok)
        {
          view->last_report_us = 0; // the bar's last state: the whole file
          show_bytes (view, label, p->bytes, p->bytes, p->request_bytes);
        }
      end_bar (view);
      break;
    }
}

static int
pull_model (const AgcCatalogueModel *m, const char *dir, gboolean default_dir)
{
  PullView view = { .tty = isatty (STDERR_FILENO) };
  AgcPullResult result;
  GError *error = NULL;
  if (!agc_model_pull (m, dir, on_pull_progress, &view, &result, NULL, &error))
    {
      gboolean offline = g_error_matches (error, AGC_HUB_ERROR, AGC_HUB_ERROR_OFFLINE);
      int status = cli_fail (error);
      if (offline)
        {
          g_autofree char *folder = g_build_filename (dir, m->name, NULL);
          print_by_hand (m, folder, default_dir);
        }
      return status;
    }
  int status = CLI_EXIT_OK;
  if (result.was_present)
    {
      fprintf (stderr, _("agriclip: %s is already pulled (delete the folder to pull it "
                         "again)\n"), result.folder);
      printf ("%s\n", result.folder);
    }
  else if (result.manual->len > 0)
    {
      fprintf (stderr, _("agriclip: %s: %u file(s) cannot be downloaded by agriclip; fetch them "
                         "by hand, put them here, then run 'agriclip models pull %s' again:\n"),
               m->name, result.manual->len, m->name);
      for (guint i = 0; i < result.manual->len; i++)
        {
          const AgcCatalogueFile *f = result.manual->pdata[i];
          g_autofree char *dest = agc_catalogue_file_dest (f, result.staging);
          fprintf (stderr, "agriclip:   %s  <-  %s\n", dest, f->manual);
        }
      status = CLI_EXIT_ERROR;
    }
  else
    printf ("%s\n", result.folder);
  agc_pull_result_clear (&result);
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
  g_autoptr (AgcCatalogue) catalogue = agc_catalogue_open (&error);
  if (!catalogue)
    return cli_fail (error);
  g_autofree char *dir = dir_option ? g_strdup (dir_option) : agc_models_dir ();
  if (!wants_name)
    return list_models (catalogue, dir);
  const AgcCatalogueModel *model = agc_catalogue_find (catalogue, argv[2]);
  if (!model)
    {
      g_autoptr (GString) names = g_string_new ("");
      for (guint i = 0; i < catalogue->models->len; i++)
        g_string_append_printf (names, "%s%s", i ? ", " : "",
                                ((AgcCatalogueModel *) catalogue->models->pdata[i])->name);
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
