/* linear.c — one weight matrix, five ways to multiply by it (linear.h). */
#include "kernels/linear.h"

#include "kernels/arena.h"
#include "kernels/gemm.h"
#include "kernels/gemm-train.h"
#include "kernels/ops.h"
#include "kernels/threads.h"

#include <string.h>

enum
{
  CONVERT_CHUNK = 1 << 16, // elements per task when converting half-precision parts
};

void
agc_linear_init (AgcLinear *lin, const AgcParam *parts, const int *rows, int n_parts, int n_in,
                 float *bias, const AgcWeights *weights)
{
  g_return_if_fail (lin != NULL && parts != NULL && rows != NULL);
  g_return_if_fail (n_parts >= 1 && n_parts <= AGC_LINEAR_MAX_PARTS && n_in > 0);
  *lin = (AgcLinear){ .n_in = n_in, .bias = bias, .n_parts = n_parts, .weights = weights };
  for (int i = 0; i < n_parts; i++)
    {
      lin->parts[i] = parts[i];
      lin->part_rows[i] = rows[i];
      lin->n_out += rows[i];
    }
}

void
agc_linear_view (AgcLinear *lin, const float *const *parts, const int *rows, int n_parts,
                 int n_in, float *bias)
{
  g_return_if_fail (parts != NULL && rows != NULL && n_parts <= AGC_LINEAR_MAX_PARTS);
  AgcParam params[AGC_LINEAR_MAX_PARTS];
  for (int i = 0; i < n_parts; i++)
    params[i] = (AgcParam){ AGC_DTYPE_F32, parts[i], (size_t) rows[i] * n_in };
  agc_linear_init (lin, params, rows, n_parts, n_in, bias, NULL);
  lin->is_view = TRUE;
}

void
agc_linear_drop_int8 (AgcLinear *lin)
{
  g_clear_pointer (&lin->int8, agc_int8_matrix_free);
}

void
agc_linear_clear (AgcLinear *lin)
{
  agc_packed_matrix_clear (&lin->packed);
  agc_linear_drop_int8 (lin);
}

void
agc_linear_set_part (AgcLinear *lin, int i, const AgcParam *param)
{
  g_return_if_fail (lin != NULL && i >= 0 && i < lin->n_parts && param != NULL);
  g_return_if_fail (param->n == (size_t) lin->part_rows[i] * lin->n_in);
  lin->parts[i] = *param;
  agc_linear_clear (lin);
}

static gboolean
is_float32 (const AgcLinear *lin)
{
  for (int i = 0; i < lin->n_parts; i++)
    if (lin->parts[i].dtype != AGC_DTYPE_F32)
      return FALSE;
  return TRUE;
}

static gboolean
uses_int8 (const AgcLinear *lin, const AgcEngineOptions *options)
{
  return options->int8 && !lin->is_view;
}

static gboolean
uses_own_kernels (const AgcLinear *lin, const AgcEngineOptions *options)
{
  return !options->use_openblas && !lin->is_view && agc_packed_gemm_available ();
}

size_t
agc_linear_scratch_floats (const AgcLinear *lin, const AgcEngineOptions *options)
{
  g_return_val_if_fail (lin != NULL && options != NULL, 0);
  if (uses_int8 (lin, options) || is_float32 (lin))
    return 0;
  if (uses_own_kernels (lin, options))
    return agc_arena_size (agc_packed_floats (lin->n_out, lin->n_in));
  return agc_arena_size ((size_t) lin->n_out * lin->n_in);
}

// the kept form is what is read from now on: the file's pages of the
// stored parts can go
static void
release_parts (const AgcLinear *lin)
{
  for (int i = 0; lin->weights != NULL && i < lin->n_parts; i++)
    agc_weights_release (lin->weights, lin->parts[i].data,
                         lin->parts[i].n * agc_dtype_size (lin->parts[i].dtype));
}

// per output row, so stacking the parts changes nothing in the values; a
// lone float32 part is read in place, others go through a float32 copy
static gboolean
quantise (AgcLinear *lin, GError **error)
{
  if (lin->n_parts == 1 && lin->parts[0].dtype == AGC_DTYPE_F32)
    lin->int8 = agc_int8_matrix_new (lin->parts[0].data, lin->n_out, lin->n_in, error);
  else
    {
      float *buffer = g_try_new (float, (size_t) lin->n_out * lin->n_in);
      if (buffer == NULL)
        {
          g_set_error (error, AGC_ERROR, AGC_ERROR_INPUT,
                       "int8 weights: cannot allocate a %d x %d float32 matrix to quantise",
                       lin->n_out, lin->n_in);
          return FALSE;
        }
      size_t at = 0;
      for (int i = 0; i < lin->n_parts; i++)
        {
          agc_param_convert (buffer + at, &lin->parts[i], 0, lin->parts[i].n);
          at += lin->parts[i].n;
        }
      lin->int8 = agc_int8_matrix_new (buffer, lin->n_out, lin->n_in, error);
      g_free (buffer);
    }
  if (lin->int8 == NULL)
    return FALSE;
  release_parts (lin);
  return TRUE;
}

// the panels to multiply by: kept (float32, made now if not yet), or made
// into scratch for this call (half precision stays half-sized in memory)
static const AgcPackedMatrix *
panels (AgcLinear *lin, AgcPackedMatrix *per_call, float *scratch, GError **error)
{
  const AgcParam *parts[AGC_LINEAR_MAX_PARTS];
  for (int i = 0; i < lin->n_parts; i++)
    parts[i] = &lin->parts[i];
  if (!is_float32 (lin))
    return agc_packed_matrix_init (per_call, scratch, parts, lin->part_rows, lin->n_parts,
                                   lin->n_in, error)
               ? per_call
               : NULL;
  if (lin->packed.panels != NULL)
    return &lin->packed;
  if (!agc_packed_matrix_init (&lin->packed, NULL, parts, lin->part_rows, lin->n_parts,
                               lin->n_in, error))
    return NULL;
  release_parts (lin);
  return &lin->packed;
}

/* ---- the epilogue as a pass of its own (int8, OpenBLAS) ---- */

typedef struct
{
  float *out;
  const float *bias;
  int width;
  gboolean apply_act;
  AgcActivation act;
  float *pre_act;
} Epilogue;

static void
epilogue_rows (void *ctx, int begin, int end, int thread)
{
  (void) thread;
  const Epilogue *e = ctx;
  int w = e->width;
  size_t n = (size_t) (end - begin) * w;
  float *out = e->out + (size_t) begin * w;
  const float *bias = e->bias;
  if (e->pre_act != NULL) // the bias first, then the values kept, then act
    {
      for (int r = 0; bias != NULL && r < end - begin; r++)
        for (int i = 0; i < w; i++)
          out[(size_t) r * w + i] += bias[i];
      memcpy (e->pre_act + (size_t) begin * w, out, n * sizeof (float));
      bias = NULL;
    }
  if (e->apply_act)
    agc_bias_act_forward (out, bias, end - begin, w, e->act);
  else if (bias != NULL)
    for (int r = 0; r < end - begin; r++)
      for (int i = 0; i < w; i++)
        out[(size_t) r * w + i] += bias[i];
}

static void
epilogue_pass (float *out, int rows, int width, const float *bias, const AgcLinearEpilogue *e)
{
  if (bias == NULL && !e->apply_act)
    return;
  Epilogue pass = { out, bias, width, e->apply_act, e->act, e->apply_act ? e->pre_act : NULL };
  agc_parallel_for (rows, agc_threads_row_grain (rows, width), epilogue_rows, &pass);
}

/* ---- half precision converted for OpenBLAS ---- */

typedef struct
{
  const AgcLinear *lin;
  float *out;
} Convert;

static void
convert_chunks (void *ctx, int begin, int end, int thread)
{
  (void) thread;
  const Convert *c = ctx;
  for (int chunk = begin; chunk < end; chunk++)
    {
      size_t first = (size_t) chunk * CONVERT_CHUNK;
      float *out = c->out;
      for (int i = 0; i < c->lin->n_parts; i++)
        {
          const AgcParam *param = &c->lin->parts[i];
          if (first < param->n)
            {
              agc_param_convert (out + first, param, first,
                                 MIN ((size_t) CONVERT_CHUNK, param->n - first));
              break;
            }
          first -= (param->n + CONVERT_CHUNK - 1) / CONVERT_CHUNK * CONVERT_CHUNK;
          out += param->n;
        }
    }
}

// the parts stacked as float32 into scratch[n_out, n_in]
static void
convert (const AgcLinear *lin, float *scratch)
{
  int n_chunks = 0;
  for (int i = 0; i < lin->n_parts; i++)
    n_chunks += (int) ((lin->parts[i].n + CONVERT_CHUNK - 1) / CONVERT_CHUNK);
  Convert c = { lin, scratch };
  agc_parallel_for (n_chunks, 1, convert_chunks, &c);
}

/* ---- the call ---- */

gboolean
agc_linear_apply (AgcLinear *lin, const AgcEngineOptions *options, float *out, const float *x,
                  int rows, const AgcLinearEpilogue *epilogue, float *scratch, GError **error)
{
  g_return_val_if_fail (lin != NULL && options != NULL && out != NULL && x != NULL, FALSE);
  g_return_val_if_fail (is_float32 (lin) || uses_int8 (lin, options) || scratch != NULL, FALSE);
  static const AgcLinearEpilogue bare = { 0 };
  const AgcLinearEpilogue *e = epilogue != NULL ? epilogue : &bare;
  const float *bias = e->add_bias ? lin->bias : NULL;
  float beta = e->residual ? 1.0f : 0.0f;
  int n_out = lin->n_out, n_in = lin->n_in;
  if (rows <= 0)
    return TRUE;

  if (uses_int8 (lin, options))
    {
      if ((lin->int8 == NULL && !quantise (lin, error))
          || !agc_gemm_int8 (out, n_out, x, n_in, lin->int8, rows, beta, error))
        return FALSE;
    }
  else if (uses_own_kernels (lin, options) && e->pre_act == NULL)
    {
      // the bias and activation on each tile of out while it is in cache
      AgcPackedMatrix per_call;
      const AgcPackedMatrix *w = panels (lin, &per_call, scratch, error);
      if (w == NULL)
        return FALSE;
      AgcGemmEpilogue tile = { .bias = bias, .apply_act = e->apply_act, .act = e->act };
      agc_gemm_packed (out, n_out, x, n_in, w, rows, beta,
                       options->products_only ? NULL : &tile);
      return TRUE;
    }
  else if (!is_float32 (lin))
    {
      if (!options->products_only)
        convert (lin, scratch);
      agc_gemm_nt (out, n_out, x, n_in, scratch, rows, n_out, n_in, beta);
    }
  else if (lin->is_view && !options->use_openblas) // training's arrays, changing every step
    for (int i = 0, col = 0; i < lin->n_parts; col += lin->part_rows[i], i++)
      agc_gemm_train (FALSE, TRUE, rows, lin->part_rows[i], n_in, x, n_in, lin->parts[i].data,
                      n_in, beta, out + col, n_out);
  else // in place, each part writing its block of columns of out
    for (int i = 0, col = 0; i < lin->n_parts; col += lin->part_rows[i], i++)
      agc_gemm_nt (out + col, n_out, x, n_in, lin->parts[i].data, rows, lin->part_rows[i], n_in,
                   beta);
  if (!options->products_only)
    epilogue_pass (out, rows, n_out, bias, e);
  return TRUE;
}
