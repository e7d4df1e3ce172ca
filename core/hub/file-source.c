/* file-source.c — where a catalogue file is downloaded from and where it
 * goes in a model folder (agriclip.h, "model hub"). */
#include "agriclip.h"

#include <string.h>

#define DEFAULT_HUB "https://huggingface.co"

/* $AGRICLIP_HUB_URL (tests, mirrors) or the Hugging Face Hub. */
char *
agc_hub_url (void)
{
  const char *env = g_getenv ("AGRICLIP_HUB_URL");
  char *base = g_strdup (env && *env ? env : DEFAULT_HUB);
  for (gsize n = strlen (base); n > 0 && base[n - 1] == '/'; n--)
    base[n - 1] = '\0';
  return base;
}

/* Hub layout: {base}/{repository}/resolve/{revision}/{path}. */
char *
agc_catalogue_file_url (const AgcCatalogueFile *f)
{
  g_return_val_if_fail (f != NULL, NULL);
  if (f->url)
    return g_strdup (f->url);
  if (!f->repository)
    return NULL;
  g_autofree char *base = agc_hub_url ();
  g_autofree char *repository = g_uri_escape_string (f->repository, "/", FALSE);
  g_autofree char *revision = g_uri_escape_string (f->revision, NULL, FALSE);
  g_autofree char *path = g_uri_escape_string (f->remote_path, "/", FALSE);
  return g_strdup_printf ("%s/%s/resolve/%s/%s", base, repository, revision, path);
}

char *
agc_catalogue_file_dest (const AgcCatalogueFile *f, const char *folder)
{
  g_return_val_if_fail (f != NULL && folder != NULL, NULL);
  g_auto (GStrv) parts = g_strsplit (f->path, "/", -1);
  g_autofree char *relative = g_build_filenamev (parts);
  return g_build_filename (folder, relative, NULL);
}
