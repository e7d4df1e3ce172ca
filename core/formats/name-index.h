/* name-index.h — the entries of a file by name (tensors of a safetensors
 * file or a PyTorch checkpoint, members of a ZIP archive): the names
 * interned in one chunk that the index owns, and a hash from each name to
 * its entry (the file's own struct, owned by the file). */
#pragma once

#include <glib.h>

typedef struct
{
  GStringChunk *names;
  GHashTable *by_name; /* interned name -> entry */
} AgcNameIndex;

void agc_name_index_init (AgcNameIndex *index);
void agc_name_index_clear (AgcNameIndex *index);

/* A copy of name[len] (len -1: up to its NUL) that lives as long as index. */
const char *agc_name_index_intern (AgcNameIndex *index, const char *name, gssize len);

/* Files entry under name (interned by index); a name already there now
 * finds entry (callers that refuse twice-named entries ask
 * agc_name_index_find first). */
void agc_name_index_add (AgcNameIndex *index, const char *name, gpointer entry);

/* The entry under name, or NULL. */
gpointer agc_name_index_find (const AgcNameIndex *index, const char *name);
