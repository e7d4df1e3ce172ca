/* agriclip-plugin.c — the GimpPlugIn subclass: registers the AgriCLIP
 * procedures and their translations, plus helpers both procedures use.
 *
 * Menu entries must appear even before a model is configured (a missing
 * menu entry is what users of AI plug-ins report most), so nothing here
 * touches models: they are opened when a procedure runs. */
#include "agriclip-plugin.h"

#include <string.h>

#define AGC_TYPE_PLUG_IN (agc_plug_in_get_type ())
G_DECLARE_FINAL_TYPE (AgcPlugIn, agc_plug_in, AGC, PLUG_IN, GimpPlugIn)

struct _AgcPlugIn
{
  GimpPlugIn parent_instance;
};

G_DEFINE_TYPE (AgcPlugIn, agc_plug_in, GIMP_TYPE_PLUG_IN)

static GList *
query_procedures (GimpPlugIn *plug_in)
{
  (void) plug_in;
  GList *names = g_list_append (NULL, g_strdup (LABEL_PROC));
  names = g_list_append (names, g_strdup (REGIONS_PROC));
  return g_list_append (names, g_strdup (TRAIN_PROC));
}

static GimpProcedure *
create_procedure (GimpPlugIn *plug_in, const char *name)
{
  if (g_str_equal (name, LABEL_PROC))
    return label_procedure_new (plug_in);
  if (g_str_equal (name, REGIONS_PROC))
    return regions_procedure_new (plug_in);
  if (g_str_equal (name, TRAIN_PROC))
    return train_procedure_new (plug_in);
  return NULL;
}

/* GIMP only accepts catalogs inside the plug-in's folder: plugin/meson.build
 * installs <plug-in folder>/locale as a link to the project's locale dir. */
static gboolean
set_i18n (GimpPlugIn *plug_in, const char *procedure_name, char **gettext_domain,
          char **catalog_dir)
{
  (void) plug_in;
  (void) procedure_name;
  *gettext_domain = g_strdup (GETTEXT_PACKAGE);
  *catalog_dir = g_strdup ("locale");
  return TRUE;
}

static void
agc_plug_in_class_init (AgcPlugInClass *klass)
{
  GimpPlugInClass *plug_in_class = GIMP_PLUG_IN_CLASS (klass);
  plug_in_class->query_procedures = query_procedures;
  plug_in_class->create_procedure = create_procedure;
  plug_in_class->set_i18n = set_i18n;
}

static void
agc_plug_in_init (AgcPlugIn *self)
{
  (void) self;
}

/* ---- helpers shared by the procedures ---------------------------------- */

gboolean
plugin_dialog_run (GimpProcedure *procedure, GimpProcedureConfig *config, const char *title)
{
  gimp_ui_init (PLUG_IN_BINARY);
  GtkWidget *dialog = gimp_procedure_dialog_new (procedure, config, title);
  gimp_procedure_dialog_fill (GIMP_PROCEDURE_DIALOG (dialog), NULL);
  gboolean ok = gimp_procedure_dialog_run (GIMP_PROCEDURE_DIALOG (dialog));
  gtk_widget_destroy (dialog);
  return ok;
}

GimpValueArray *
plugin_fail (GimpProcedure *procedure, GError *error)
{
  return gimp_procedure_new_return_values (procedure, GIMP_PDB_EXECUTION_ERROR, error);
}

void
plugin_name_path (GError **error, const char *path)
{
  if (error && *error && !strstr ((*error)->message, path))
    g_prefix_error (error, "%s: ", path);
}

char *
plugin_file_path (GimpProcedureConfig *config, const char *name, const char *nick,
                  GError **error)
{
  g_autoptr (GFile) file = NULL;
  g_object_get (config, name, &file, NULL);
  if (!file)
    {
      g_set_error (error, AGC_ERROR, AGC_ERROR_IO, _("No \"%s\" chosen"), nick);
      return NULL;
    }
  char *path = g_file_get_path (file);
  if (!path)
    {
      g_autofree char *uri = g_file_get_uri (file);
      g_set_error (error, AGC_ERROR, AGC_ERROR_IO, _("%s: \"%s\" must be a local file"), uri,
                   nick);
    }
  return path;
}

char *
plugin_resolve_model (char *path)
{
  if (path == NULL || g_file_test (path, G_FILE_TEST_EXISTS))
    return path;
  g_autofree char *name = g_path_get_basename (path);
  char *pulled = agc_model_resolve_path (name);
  // unchanged: no pulled model of that name (or a file of that name in the
  // plug-in's own working folder, which is not what the user chose)
  if (g_str_equal (pulled, name))
    {
      g_free (pulled);
      return path;
    }
  g_free (path);
  return pulled;
}

GIMP_MAIN (AGC_TYPE_PLUG_IN)
