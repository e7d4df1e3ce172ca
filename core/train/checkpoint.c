/* checkpoint.c — the metadata and checks every training checkpoint shares
 * (checkpoint.h). */
#include "train/checkpoint.h"

GHashTable *
agc_checkpoint_metadata_new (const char *method, const char *fingerprint)
{
  // inserted in this order first: the header's key order follows the table's
  GHashTable *meta = g_hash_table_new (g_str_hash, g_str_equal);
  g_hash_table_insert (meta, "agriclip.kind", "checkpoint");
  g_hash_table_insert (meta, "agriclip.method", (gpointer) method);
  g_hash_table_insert (meta, "agriclip.fingerprint", (gpointer) fingerprint);
  return meta;
}

void
agc_checkpoint_refuse (GError **error, const char *path, const char *reason)
{
  g_autofree char *shown = g_filename_display_name (path);
  g_set_error (error, AGC_ERROR, AGC_ERROR_FORMAT, "%s: %s", shown, reason);
}

AgcSafetensors *
agc_checkpoint_open (const char *path, const char *method, const char *fingerprint,
                     GError **error)
{
  AgcSafetensors *file = agc_safetensors_open (path, error);
  if (file == NULL)
    return NULL;
  GHashTable *meta = agc_safetensors_metadata (file);
  const char *kind = meta != NULL ? g_hash_table_lookup (meta, "agriclip.kind") : NULL;
  const char *stored = meta != NULL ? g_hash_table_lookup (meta, "agriclip.method") : NULL;
  const char *print = meta != NULL ? g_hash_table_lookup (meta, "agriclip.fingerprint") : NULL;
  g_autofree char *reason = NULL;
  if (g_strcmp0 (kind, "checkpoint") != 0 || g_strcmp0 (stored, method) != 0)
    reason = g_strdup_printf ("not a %s training checkpoint", method);
  else if (g_strcmp0 (print, fingerprint) != 0)
    reason = g_strdup ("made with another model, other data or other settings");
  if (reason == NULL)
    return file;
  agc_safetensors_free (file);
  agc_checkpoint_refuse (error, path, reason);
  return NULL;
}
