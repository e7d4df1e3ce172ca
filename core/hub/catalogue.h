/* catalogue.h — the models agriclip knows how to fetch: models/catalogue.json
 * (format in models/README.md), read once and validated, so that `agriclip
 * models list | show | pull` never meet a half-valid entry.
 *
 * Found at $AGRICLIP_CATALOGUE when set (a file), else as
 * agriclip/catalogue.json in the user's and the system's data folders, else
 * in the install prefix's data folder.  Everything is owned by the
 * CliCatalogue and freed with it. */
#pragma once

#include <glib.h>

typedef struct
{
  char *path;        /* in the model folder, '/'-separated, never ".." */
  char *repository;  /* Hugging Face repository, or NULL */
  char *revision;    /* with repository */
  char *remote_path; /* with repository: the path inside it */
  char *url;         /* a direct address instead of a repository, or NULL */
  char *manual;      /* how a person gets it when agriclip cannot, or NULL */
  gint64 size;       /* bytes, -1 when unknown */
  char *sha256;      /* 64 lower-case hex digits, NULL when unknown */
} CliCatalogueFile;

typedef struct
{
  char *name; /* folder name and the NAME of --model NAME */
  char *title;
  char *family; /* hf-clip, open_clip, openai or agriclip */
  char *homepage, *repository, *revision, *licence, *good_for, *notes; /* NULL when absent */
  char **unverified; /* field names whose values were not checked at the source */
  GPtrArray *files;  /* of CliCatalogueFile */
} CliCatalogueModel;

typedef struct
{
  char *path;        /* the file read */
  GPtrArray *models; /* of CliCatalogueModel, file order */
} CliCatalogue;

CliCatalogue *cli_catalogue_load (const char *path, GError **error);
/* The catalogue of the search order above; the error lists the places tried. */
CliCatalogue *cli_catalogue_open (GError **error);
void cli_catalogue_free (CliCatalogue *catalogue);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (CliCatalogue, cli_catalogue_free)

/* NULL when the catalogue has no model of that name. */
const CliCatalogueModel *cli_catalogue_find (const CliCatalogue *catalogue, const char *name);
/* TRUE when field (e.g. "licence", "files") is listed as unverified. */
gboolean cli_catalogue_model_unverified (const CliCatalogueModel *model, const char *field);
