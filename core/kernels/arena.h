/* arena.h — scratch memory that the encoders reuse from one call to the
 * next: it grows to the largest request seen and is never shrunk, so a
 * steady stream of same-sized batches allocates nothing after the first. */
#pragma once

#include <glib.h>

typedef struct
{
  float *data;     /* 64-byte aligned */
  size_t n_floats; /* capacity */
} AgcArena;

/* Room for n_floats floats (contents not kept when it grows), or NULL with
 * AGC_ERROR_INPUT when memory is short; what names the user of the memory. */
float *agc_arena_reserve (AgcArena *arena, size_t n_floats, const char *what, GError **error);
void agc_arena_clear (AgcArena *arena);

/* Carves consecutive 64-byte aligned blocks out of a reserved region:
 * *cursor advances past n floats; returns the block's start. */
static inline float *
agc_arena_take (float **cursor, size_t n_floats)
{
  float *block = *cursor;
  *cursor += (n_floats + 15) & ~(size_t) 15;
  return block;
}

/* The floats agc_arena_take needs for a block of n floats. */
static inline size_t
agc_arena_size (size_t n_floats)
{
  return (n_floats + 15) & ~(size_t) 15;
}
