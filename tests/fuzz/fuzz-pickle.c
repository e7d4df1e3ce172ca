/* fuzz-pickle.c — libFuzzer harness for the restricted unpickler: any input
 * must be read or refused with an error, never crash, leak or loop; a tree
 * that loads is walked completely (a visited set, since the memo can make
 * cycles).  Built and run by tests/fuzz/run.sh. */
#include "agriclip.h"
#include "formats/pickle.h"

#include <stdint.h>

static const char *const globals[] = {
  "collections.OrderedDict", "torch._utils._rebuild_tensor_v2",
  "torch._utils._rebuild_parameter", "torch.FloatStorage", "torch.HalfStorage",
  "torch.jit._pickle.restore_type_tag", NULL,
};

static size_t
walk (const AgcPickleValue *root)
{
  GHashTable *seen = g_hash_table_new (NULL, NULL);
  GPtrArray *todo = g_ptr_array_new ();
  g_ptr_array_add (todo, (gpointer) root);
  size_t total = 0;
  while (todo->len > 0)
    {
      const AgcPickleValue *v = g_ptr_array_steal_index (todo, todo->len - 1);
      if (v == NULL || !g_hash_table_add (seen, (gpointer) v))
        continue;
      total += v->length + (size_t) v->integer + (v->text != NULL ? (size_t) v->text[0] : 0);
      for (size_t i = 0; i < agc_pickle_n_items (v); i++)
        g_ptr_array_add (todo, (gpointer) agc_pickle_item (v, i));
      g_ptr_array_add (todo, (gpointer) v->callable);
      g_ptr_array_add (todo, (gpointer) v->args);
      g_ptr_array_add (todo, (gpointer) v->state);
      if (v->kind == AGC_PICKLE_DICT)
        total += agc_pickle_dict_get (v, "state_dict") != NULL;
    }
  g_ptr_array_unref (todo);
  g_hash_table_unref (seen);
  return total;
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  static const AgcPickleRules rules = { globals, "__torch__." };
  GError *error = NULL;
  AgcPickle *pickle = agc_pickle_load (data, size, "fuzz.pkl", &rules, &error);
  if (pickle == NULL)
    {
      if (error == NULL || error->domain != AGC_ERROR)
        __builtin_trap (); // every failure must say why
      g_error_free (error);
      return 0;
    }
  volatile size_t sink = walk (agc_pickle_root (pickle));
  (void) sink;
  agc_pickle_free (pickle);
  return 0;
}
