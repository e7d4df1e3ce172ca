/* name-index.c — entries of a file by name (name-index.h). */
#include "formats/name-index.h"

void
agc_name_index_init (AgcNameIndex *index)
{
  index->names = g_string_chunk_new (4096);
  index->by_name = g_hash_table_new (g_str_hash, g_str_equal);
}

void
agc_name_index_clear (AgcNameIndex *index)
{
  g_clear_pointer (&index->by_name, g_hash_table_unref);
  g_clear_pointer (&index->names, g_string_chunk_free);
}

const char *
agc_name_index_intern (AgcNameIndex *index, const char *name, gssize len)
{
  return g_string_chunk_insert_len (index->names, name, len);
}

void
agc_name_index_add (AgcNameIndex *index, const char *name, gpointer entry)
{
  g_hash_table_insert (index->by_name, (char *) name, entry);
}

gpointer
agc_name_index_find (const AgcNameIndex *index, const char *name)
{
  return g_hash_table_lookup (index->by_name, name);
}
