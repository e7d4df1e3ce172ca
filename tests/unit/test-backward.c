/* test-backward.c — every backward of backward.h and block-train.h against
 * central finite differences of its own forward, and the training forward
 * of a block against transformer.c's inference forward.
 *
 * The scalar differentiated is L = Σ g · forward(inputs) with a random
 * fixed g, accumulated in double.  Entries are perturbed one at a time
 * (a spread sample of big tensors); the check fails when the largest
 * difference exceeds 1% of the largest gradient entry. */
#include "nn/backward.h"
#include "nn/block-train.h"
#include "kernels/attention.h"
#include "kernels/ops.h"
#include "unit-util.h"

#include <glib.h>
#include <math.h>
#include <string.h>

static GRand *rng;

static double
dot (const float *a, const float *b, size_t n)
{
  double s = 0.0;
  for (size_t i = 0; i < n; i++)
    s += (double) a[i] * b[i];
  return s;
}

typedef double (*LossFunc) (void *ctx);

/* Compares analytic[n] with (L(p + h) - L(p - h)) / 2h for entries of param. */
static void
fd_check (const char *what, float *param, const float *analytic, size_t n, LossFunc loss,
          void *ctx)
{
  const float h = 1e-2f;
  size_t stride = n > 60 ? n / 60 : 1;
  double max_grad = 0.0, max_err = 0.0;
  for (size_t i = 0; i < n; i += stride)
    {
      size_t at = stride > 1 ? (i + g_rand_int_range (rng, 0, (gint32) stride)) % n : i;
      float saved = param[at];
      param[at] = saved + h;
      double up = loss (ctx);
      param[at] = saved - h;
      double down = loss (ctx);
      param[at] = saved;
      double fd = (up - down) / (2.0 * h);
      max_grad = MAX (max_grad, fabs (analytic[at]));
      max_err = MAX (max_err, fabs (fd - analytic[at]));
    }
  g_test_message ("%s: max |grad| %.3g, max |fd - grad| %.3g", what, max_grad, max_err);
  g_assert_cmpfloat (max_grad, >, 1e-3); // a gradient that is all 0 checks nothing
  g_assert_cmpfloat (max_err, <=, 1e-2 * max_grad);
}

/* ---- layer norm, linear, activations, L2 ---- */

typedef struct
{
  int rows, width, n_out;
  AgcActivation act;
  float *x, *w, *b, *g, *out, *mean, *rstd;
} Layer;

static double
layernorm_loss (void *ctx)
{
  Layer *l = ctx;
  agc_bias_layernorm_forward (l->out, l->mean, l->rstd, l->x, NULL, l->w, l->b, l->rows,
                              l->width, 1e-5f);
  return dot (l->g, l->out, (size_t) l->rows * l->width);
}

static void
test_layernorm (void)
{
  Layer l = { .rows = 5, .width = 24 };
  size_t n = (size_t) l.rows * l.width;
  l.x = random_floats (rng, n, 2.0, 0.5), l.w = random_floats (rng, l.width, 0.5, 1.0);
  l.b = random_floats (rng, l.width, 0.5, 0.0), l.g = random_floats (rng, n, 1.0, 0.0);
  l.out = g_new (float, n), l.mean = g_new (float, l.rows), l.rstd = g_new (float, l.rows);
  float *dx = g_new0 (float, n), *dw = g_new0 (float, l.width), *db = g_new0 (float, l.width);
  layernorm_loss (&l);
  agc_layernorm_backward (dx, dw, db, l.g, l.x, l.w, l.mean, l.rstd, l.rows, l.width);
  fd_check ("layernorm dx", l.x, dx, n, layernorm_loss, &l);
  fd_check ("layernorm dweight", l.w, dw, l.width, layernorm_loss, &l);
  fd_check ("layernorm dbias", l.b, db, l.width, layernorm_loss, &l);
  // backward adds: a second call doubles every gradient
  float *dx2 = g_memdup2 (dx, n * sizeof (float));
  agc_layernorm_backward (dx2, dw, db, l.g, l.x, l.w, l.mean, l.rstd, l.rows, l.width);
  for (size_t i = 0; i < n; i++)
    g_assert_cmpfloat (fabsf (dx2[i] - 2 * dx[i]), <=, 1e-6f * (1 + fabsf (dx[i])));
  g_free (l.x), g_free (l.w), g_free (l.b), g_free (l.g), g_free (l.out), g_free (l.mean);
  g_free (l.rstd), g_free (dx), g_free (dx2), g_free (dw), g_free (db);
}

static double
linear_loss (void *ctx)
{
  Layer *l = ctx;
  agc_linear_forward (l->out, l->x, l->w, l->b, l->rows, l->width, l->n_out);
  return dot (l->g, l->out, (size_t) l->rows * l->n_out);
}

static void
test_linear (void)
{
  Layer l = { .rows = 7, .width = 12, .n_out = 9 };
  size_t nx = (size_t) l.rows * l.width, nw = (size_t) l.n_out * l.width,
         no = (size_t) l.rows * l.n_out;
  l.x = random_floats (rng, nx, 1.0, 0.0), l.w = random_floats (rng, nw, 0.5, 0.0);
  l.b = random_floats (rng, l.n_out, 0.5, 0.0), l.g = random_floats (rng, no, 1.0, 0.0);
  l.out = g_new (float, no);
  float *dx = g_new0 (float, nx), *dw = g_new0 (float, nw), *db = g_new0 (float, l.n_out);
  agc_linear_backward (dx, dw, db, l.g, l.x, l.w, l.rows, l.width, l.n_out);
  fd_check ("linear dx", l.x, dx, nx, linear_loss, &l);
  fd_check ("linear dweight", l.w, dw, nw, linear_loss, &l);
  fd_check ("linear dbias", l.b, db, l.n_out, linear_loss, &l);
  g_free (l.x), g_free (l.w), g_free (l.b), g_free (l.g), g_free (l.out);
  g_free (dx), g_free (dw), g_free (db);
}

static double
act_loss (void *ctx)
{
  Layer *l = ctx;
  memcpy (l->out, l->x, l->width * sizeof (float));
  agc_bias_act_forward (l->out, NULL, 1, l->width, l->act);
  return dot (l->g, l->out, l->width);
}

static void
check_act (AgcActivation act, const char *what)
{
  Layer l = { .width = 50, .act = act };
  l.x = random_floats (rng, l.width, 4.0, 0.0), l.g = random_floats (rng, l.width, 1.0, 0.0);
  l.out = g_new (float, l.width);
  float *dx = g_new0 (float, l.width);
  agc_act_backward (dx, l.g, l.x, l.width, act);
  fd_check (what, l.x, dx, l.width, act_loss, &l);
  g_free (l.x), g_free (l.g), g_free (l.out), g_free (dx);
}

static void
test_gelu (void)
{
  check_act (AGC_ACT_GELU, "gelu dx");
}

static void
test_quick_gelu (void)
{
  check_act (AGC_ACT_QUICK_GELU, "quick_gelu dx");
}

static double
l2_loss (void *ctx)
{
  Layer *l = ctx;
  agc_l2_normalize_forward_train (l->out, l->x, l->rows, l->width);
  return dot (l->g, l->out, (size_t) l->rows * l->width);
}

static void
test_l2_normalize (void)
{
  Layer l = { .rows = 4, .width = 16 };
  size_t n = (size_t) l.rows * l.width;
  l.x = random_floats (rng, n, 1.0, 0.2), l.g = random_floats (rng, n, 1.0, 0.0);
  l.out = g_new (float, n);
  float *dx = g_new0 (float, n);
  agc_l2_normalize_backward (dx, l.g, l.x, l.rows, l.width);
  fd_check ("l2_normalize dx", l.x, dx, n, l2_loss, &l);
  g_free (l.x), g_free (l.g), g_free (l.out), g_free (dx);
}

/* ---- attention ---- */

typedef struct
{
  int batch, n_tokens, width, heads, causal;
  float *qkv, *g, *out, *att;
} Attention;

static double
attention_loss (void *ctx)
{
  Attention *a = ctx;
  AgcAttention attention;
  AgcArena scratch = { 0 };
  g_assert_true (agc_attention_init_batch (&attention, &scratch, a->batch, a->n_tokens, a->width,
                                           a->heads, a->causal, NULL));
  attention.qkv = a->qkv;
  attention.out = a->out;
  attention.probs = a->att;
  agc_attention_forward (&attention);
  agc_arena_clear (&scratch);
  return dot (a->g, a->out, (size_t) a->batch * a->n_tokens * a->width);
}

static void
check_attention (int causal)
{
  Attention a = { .batch = 2, .n_tokens = 5, .width = 12, .heads = 3, .causal = causal };
  size_t r = (size_t) a.batch * a.n_tokens;
  a.qkv = random_floats (rng, r * 3 * a.width, 1.5, 0.0);
  a.g = random_floats (rng, r * a.width, 1.0, 0.0);
  a.out = g_new (float, r * a.width);
  a.att = g_new (float, (size_t) a.batch * a.heads * a.n_tokens * a.n_tokens);
  float *dqkv = g_new0 (float, r * 3 * a.width);
  attention_loss (&a);
  agc_attention_backward (dqkv, a.g, a.qkv, a.att, a.batch, a.n_tokens, a.width, a.heads);
  fd_check (causal ? "causal attention dqkv" : "attention dqkv", a.qkv, dqkv, r * 3 * a.width,
            attention_loss, &a);
  if (causal)
    {
      // the future never leaks: with a gradient on token 0 only, the keys and
      // values of later tokens get none
      memset (a.g, 0, r * a.width * sizeof (float));
      for (int t = 0; t < a.width; t++)
        a.g[t] = 1.0f;
      memset (dqkv, 0, r * 3 * a.width * sizeof (float));
      attention_loss (&a);
      agc_attention_backward (dqkv, a.g, a.qkv, a.att, 1, a.n_tokens, a.width, a.heads);
      g_assert_cmpfloat (fabsf (dqkv[2 * a.width]), >, 0.0f); // v of token 0
      for (int t = 1; t < a.n_tokens; t++)
        for (int i = a.width; i < 3 * a.width; i++)
          g_assert_cmpfloat (dqkv[(size_t) t * 3 * a.width + i], ==, 0.0f);
    }
  g_free (a.qkv), g_free (a.g), g_free (a.out), g_free (a.att), g_free (dqkv);
}

static void
test_attention (void)
{
  check_attention (FALSE);
}

static void
test_attention_causal (void)
{
  check_attention (TRUE);
}

/* ---- contrastive loss ---- */

typedef struct
{
  int n, dim, n_classes;
  float *image, *text, *cw;
  int *labels;
} Contrastive;

static double
contrastive_loss (void *ctx)
{
  Contrastive *c = ctx;
  float *sink = g_new0 (float, (size_t) c->n * c->dim);
  double loss = agc_contrastive_loss_backward (sink, NULL, c->image, c->text, c->labels, c->cw,
                                               20.0f, c->n, c->dim, c->n_classes);
  g_free (sink);
  return loss;
}

static void
test_contrastive (void)
{
  Contrastive c = { .n = 6, .dim = 10, .n_classes = 4 };
  c.image = random_floats (rng, (size_t) c.n * c.dim, 0.3, 0.0);
  c.text = random_floats (rng, (size_t) c.n_classes * c.dim, 0.3, 0.0);
  c.cw = random_floats (rng, c.n_classes, 0.5, 1.0);
  int labels[] = { 0, 3, 1, 1, 2, 0 };
  c.labels = labels;
  float *di = g_new0 (float, (size_t) c.n * c.dim), *dt = g_new0 (float, (size_t) c.n_classes * c.dim);
  double loss = agc_contrastive_loss_backward (di, dt, c.image, c.text, c.labels, c.cw, 20.0f, c.n,
                                               c.dim, c.n_classes);
  g_assert_cmpfloat (loss, >, 0.0);
  fd_check ("contrastive dimage", c.image, di, (size_t) c.n * c.dim, contrastive_loss, &c);
  fd_check ("contrastive dtext", c.text, dt, (size_t) c.n_classes * c.dim, contrastive_loss, &c);
  g_free (c.image), g_free (c.text), g_free (c.cw), g_free (di), g_free (dt);
}

/* ---- a whole block ---- */

typedef struct
{
  AgcTowerConfig c;
  AgcBlock *w;
  AgcBlockActs *acts;
  float *x, *g, *out;
  gboolean causal;
} Block;

static double
block_loss (void *ctx)
{
  Block *b = ctx;
  AgcLayer layer;
  agc_layer_view (&layer, b->w, &b->c);
  size_t n = (size_t) b->acts->batch * b->acts->n_tokens * b->c.width;
  memcpy (b->out, b->x, n * sizeof (float));
  agc_block_forward (b->out, b->acts, &layer, &b->c, b->causal);
  return dot (b->g, b->out, (size_t) b->acts->batch * b->acts->n_tokens * b->c.width);
}

static AgcBlock *
random_block (const AgcTowerConfig *c)
{
  AgcBlock *w = agc_block_train_new (c);
  float *arrays[12];
  size_t sizes[12];
  gboolean decays[12];
  int n = agc_block_train_arrays (arrays, sizes, decays, w, c);
  for (int i = 0; i < n; i++)
    {
      // norm weights near 1 (arrays 0 and 6), matrices ~ 1/sqrt(fan in), biases small
      gboolean norm_weight = i == 0 || i == 6;
      double scale = decays[i] ? 1.5 / sqrt (c->width) : 0.2;
      for (size_t j = 0; j < sizes[i]; j++)
        arrays[i][j] = (float) ((norm_weight ? 1.0 : 0.0)
                                + scale * g_rand_double_range (rng, -1.0, 1.0));
    }
  return w;
}

static void
check_block (AgcActivation act, gboolean causal)
{
  Block b = { .c = { .width = 16, .layers = 1, .heads = 4, .mlp_width = 24,
                     .layer_norm_eps = 1e-5f, .act = act },
              .causal = causal };
  int batch = 2, n_tokens = 5;
  size_t r = (size_t) batch * n_tokens, n = r * b.c.width;
  b.w = random_block (&b.c);
  b.acts = agc_block_acts_new (&b.c, batch, n_tokens);
  b.x = random_floats (rng, n, 1.0, 0.0), b.g = random_floats (rng, n, 1.0, 0.0);
  b.out = g_new (float, n);
  AgcBlock *grads = agc_block_train_new (&b.c);
  float *dx = g_new0 (float, n);
  block_loss (&b);
  AgcLayer layer;
  agc_layer_view (&layer, b.w, &b.c);
  agc_block_backward (dx, grads, b.g, b.acts, &layer, &b.c);
  fd_check ("block dx", b.x, dx, n, block_loss, &b);
  float *params[12], *grad_arrays[12];
  size_t sizes[12];
  static const char *const names[12]
    = { "ln1_weight", "ln1_bias", "qkv_weight", "qkv_bias", "out_weight", "out_bias",
        "ln2_weight", "ln2_bias", "fc1_weight", "fc1_bias", "fc2_weight", "fc2_bias" };
  int count = agc_block_train_arrays (params, sizes, NULL, b.w, &b.c);
  agc_block_train_arrays (grad_arrays, sizes, NULL, grads, &b.c);
  for (int i = 0; i < count; i++)
    {
      g_autofree char *what = g_strdup_printf ("block d%s", names[i]);
      fd_check (what, params[i], grad_arrays[i], sizes[i], block_loss, &b);
    }
  // dx NULL: the weights' gradients are the same
  AgcBlock *grads2 = agc_block_train_new (&b.c);
  block_loss (&b);
  agc_block_backward (NULL, grads2, b.g, b.acts, &layer, &b.c);
  agc_block_train_arrays (params, sizes, NULL, grads2, &b.c);
  for (int i = 0; i < count; i++)
    for (size_t j = 0; j < sizes[i]; j++)
      g_assert_cmpfloat (params[i][j], ==, grad_arrays[i][j]);
  agc_block_train_free (b.w), agc_block_train_free (grads), agc_block_train_free (grads2);
  agc_block_acts_free (b.acts);
  g_free (b.x), g_free (b.g), g_free (b.out), g_free (dx);
}

static void
test_block_quick_gelu (void)
{
  check_block (AGC_ACT_QUICK_GELU, FALSE);
}

static void
test_block_gelu_causal (void)
{
  check_block (AGC_ACT_GELU, TRUE);
}

/* The training forward computes what transformer.c computes. */
static void
check_block_matches_transformer (gboolean causal)
{
  AgcTowerConfig c = { .width = 32, .layers = 1, .heads = 4, .mlp_width = 56,
                       .layer_norm_eps = 1e-5f, .act = AGC_ACT_QUICK_GELU };
  int batch = 3, n_tokens = 7;
  size_t n = (size_t) batch * n_tokens * c.width;
  AgcBlock *w = random_block (&c);
  AgcTransformer tr; // scratch NULL: per-call arena
  agc_transformer_view (&tr, w, &c);
  float *x = random_floats (rng, n, 1.0, 0.0), *ref = g_memdup2 (x, n * sizeof (float));
  float *out = g_new (float, n);
  g_assert_true (agc_transformer_forward (&tr, ref, batch, n_tokens, causal, NULL));
  AgcBlockActs *acts = agc_block_acts_new (&c, batch, n_tokens);
  AgcLayer layer;
  agc_layer_view (&layer, w, &c);
  memcpy (out, x, n * sizeof (float));
  agc_block_forward (out, acts, &layer, &c, causal);
  double max_err = 0.0, max_ref = 0.0;
  for (size_t i = 0; i < n; i++)
    {
      max_err = MAX (max_err, fabs (out[i] - ref[i]));
      max_ref = MAX (max_ref, fabs (ref[i]));
    }
  g_test_message ("block vs transformer: max |diff| %.3g of max %.3g", max_err, max_ref);
  g_assert_cmpfloat (max_ref, >, 0.5);
  g_assert_cmpfloat (max_err, <, 1e-5 * max_ref);
  agc_block_acts_free (acts);
  agc_transformer_clear (&tr);
  agc_block_train_free (w);
  g_free (x), g_free (ref), g_free (out);
}

static void
test_block_matches_transformer (void)
{
  check_block_matches_transformer (FALSE);
  check_block_matches_transformer (TRUE);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  rng = g_rand_new_with_seed (20240611);
  g_test_add_func ("/backward/layernorm", test_layernorm);
  g_test_add_func ("/backward/linear", test_linear);
  g_test_add_func ("/backward/gelu", test_gelu);
  g_test_add_func ("/backward/quick-gelu", test_quick_gelu);
  g_test_add_func ("/backward/l2-normalize", test_l2_normalize);
  g_test_add_func ("/backward/attention", test_attention);
  g_test_add_func ("/backward/attention-causal", test_attention_causal);
  g_test_add_func ("/backward/contrastive", test_contrastive);
  g_test_add_func ("/backward/block-quick-gelu", test_block_quick_gelu);
  g_test_add_func ("/backward/block-gelu-causal", test_block_gelu_causal);
  g_test_add_func ("/backward/block-matches-transformer", test_block_matches_transformer);
  int status = g_test_run ();
  g_rand_free (rng);
  return status;
}
