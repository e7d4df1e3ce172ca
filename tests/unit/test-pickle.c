/* test-pickle.c — the restricted unpickler on pickles written by CPython's
 * pickle module (the byte strings below are pickle.dumps output, the
 * expected values its input) and on hand-made hostile or broken ones. */
#include "agriclip.h"
#include "formats/pickle.h"

#include <math.h>
#include <string.h>

static const char *const torch_globals[] = {
  "collections.OrderedDict", "torch._utils._rebuild_tensor_v2", "torch.FloatStorage",
  "_codecs.encode", NULL,
};
static const AgcPickleRules rules = { torch_globals, NULL };
static const AgcPickleRules torchscript_rules = { torch_globals, "__torch__." };

static AgcPickle *
load_ok (const char *bytes, size_t size, const AgcPickleRules *r)
{
  GError *error = NULL;
  AgcPickle *pickle = agc_pickle_load ((const guint8 *) bytes, size, "test.pkl", r, &error);
  g_assert_no_error (error);
  g_assert_nonnull (pickle);
  return pickle;
}

/* Loads a pickle that must fail with code and a message containing fragment. */
static void
load_fails (const char *bytes, size_t size, int code, const char *fragment)
{
  GError *error = NULL;
  AgcPickle *pickle = agc_pickle_load ((const guint8 *) bytes, size, "test.pkl",
                                       &torchscript_rules, &error);
  g_assert_null (pickle);
  g_assert_error (error, AGC_ERROR, code);
  if (strstr (error->message, fragment) == NULL || !g_str_has_prefix (error->message, "test.pkl: "))
    g_error ("message \"%s\" lacks \"%s\"", error->message, fragment);
  g_error_free (error);
}

#define LOAD_OK(literal, r) load_ok (literal, sizeof literal - 1, r)
#define LOAD_FAILS(literal, code, fragment) load_fails (literal, sizeof literal - 1, code, fragment)

static const AgcPickleValue *
get (const AgcPickleValue *dict, const char *key)
{
  const AgcPickleValue *value = agc_pickle_dict_get (dict, key);
  g_assert_nonnull (value);
  return value;
}

static void
check_int (const AgcPickleValue *value, gint64 expected)
{
  g_assert_cmpint (value->kind, ==, AGC_PICKLE_INT);
  g_assert_cmpint (value->integer, ==, expected);
}

/* {"a": [1, 2.5, None, True, False, "é", b"xy", (1, 2, 3), ()], "n": -2**40,
 *  "big": 2**63 - 1, "m": 255, "k": 65535, "neg": -1} */
static void
check_mixed (const AgcPickleValue *root, gboolean bytes_as_call)
{
  g_assert_cmpint (root->kind, ==, AGC_PICKLE_DICT);
  g_assert_cmpuint (agc_pickle_n_items (root), ==, 12);
  const AgcPickleValue *a = get (root, "a");
  g_assert_cmpint (a->kind, ==, AGC_PICKLE_LIST);
  g_assert_cmpuint (agc_pickle_n_items (a), ==, 9);
  check_int (agc_pickle_item (a, 0), 1);
  g_assert_cmpint (agc_pickle_item (a, 1)->kind, ==, AGC_PICKLE_FLOAT);
  g_assert_cmpfloat (agc_pickle_item (a, 1)->number, ==, 2.5);
  g_assert_cmpint (agc_pickle_item (a, 2)->kind, ==, AGC_PICKLE_NONE);
  g_assert_cmpint (agc_pickle_item (a, 3)->kind, ==, AGC_PICKLE_BOOL);
  g_assert_cmpint (agc_pickle_item (a, 3)->integer, ==, 1);
  g_assert_cmpint (agc_pickle_item (a, 4)->integer, ==, 0);
  g_assert_cmpint (agc_pickle_item (a, 5)->kind, ==, AGC_PICKLE_STRING);
  g_assert_cmpstr (agc_pickle_item (a, 5)->text, ==, "\xc3\xa9");
  const AgcPickleValue *xy = agc_pickle_item (a, 6);
  if (bytes_as_call) // protocol 2 writes bytes as _codecs.encode("xy", "latin1")
    {
      g_assert_cmpint (xy->kind, ==, AGC_PICKLE_CALL);
      g_assert_true (agc_pickle_is_global (xy->callable, "_codecs.encode"));
      g_assert_cmpstr (agc_pickle_item (xy->args, 0)->text, ==, "xy");
      g_assert_cmpstr (agc_pickle_item (xy->args, 1)->text, ==, "latin1");
    }
  else
    {
      g_assert_cmpint (xy->kind, ==, AGC_PICKLE_BYTES);
      g_assert_cmpuint (xy->length, ==, 2);
      g_assert_cmpmem (xy->text, 2, "xy", 2);
    }
  const AgcPickleValue *t = agc_pickle_item (a, 7);
  g_assert_cmpint (t->kind, ==, AGC_PICKLE_TUPLE);
  g_assert_cmpuint (agc_pickle_n_items (t), ==, 3);
  check_int (agc_pickle_item (t, 2), 3);
  g_assert_cmpint (agc_pickle_item (a, 8)->kind, ==, AGC_PICKLE_TUPLE);
  g_assert_cmpuint (agc_pickle_n_items (agc_pickle_item (a, 8)), ==, 0);
  check_int (get (root, "n"), -(G_GINT64_CONSTANT (1) << 40));
  check_int (get (root, "big"), G_MAXINT64);
  check_int (get (root, "m"), 255);
  check_int (get (root, "k"), 65535);
  check_int (get (root, "neg"), -1);
}

static void
test_protocol_2 (void)
{
  static const char bytes[] =
    "\x80\x02\x7d\x71\x00\x28\x58\x01\x00\x00\x00\x61\x71\x01\x5d\x71\x02\x28\x4b\x01\x47\x40"
    "\x04\x00\x00\x00\x00\x00\x00\x4e\x88\x89\x58\x02\x00\x00\x00\xc3\xa9\x71\x03\x63\x5f\x63"
    "\x6f\x64\x65\x63\x73\x0a\x65\x6e\x63\x6f\x64\x65\x0a\x71\x04\x58\x02\x00\x00\x00\x78\x79"
    "\x71\x05\x58\x06\x00\x00\x00\x6c\x61\x74\x69\x6e\x31\x71\x06\x86\x71\x07\x52\x71\x08\x4b"
    "\x01\x4b\x02\x4b\x03\x87\x71\x09\x29\x65\x58\x01\x00\x00\x00\x6e\x71\x0a\x8a\x06\x00\x00"
    "\x00\x00\x00\xff\x58\x03\x00\x00\x00\x62\x69\x67\x71\x0b\x8a\x08\xff\xff\xff\xff\xff\xff"
    "\xff\x7f\x58\x01\x00\x00\x00\x6d\x71\x0c\x4b\xff\x58\x01\x00\x00\x00\x6b\x71\x0d\x4d\xff"
    "\xff\x58\x03\x00\x00\x00\x6e\x65\x67\x71\x0e\x4a\xff\xff\xff\xff\x75\x2e";
  AgcPickle *pickle = LOAD_OK (bytes, &rules);
  check_mixed (agc_pickle_root (pickle), TRUE);
  agc_pickle_free (pickle);
}

static void
test_protocol_4 (void)
{
  // FRAME, SHORT_BINUNICODE, SHORT_BINBYTES, MEMOIZE
  static const char bytes[] =
    "\x80\x04\x95\x62\x00\x00\x00\x00\x00\x00\x00\x7d\x94\x28\x8c\x01\x61\x94\x5d\x94\x28\x4b"
    "\x01\x47\x40\x04\x00\x00\x00\x00\x00\x00\x4e\x88\x89\x8c\x02\xc3\xa9\x94\x43\x02\x78\x79"
    "\x94\x4b\x01\x4b\x02\x4b\x03\x87\x94\x29\x65\x8c\x01\x6e\x94\x8a\x06\x00\x00\x00\x00\x00"
    "\xff\x8c\x03\x62\x69\x67\x94\x8a\x08\xff\xff\xff\xff\xff\xff\xff\x7f\x8c\x01\x6d\x94\x4b"
    "\xff\x8c\x01\x6b\x94\x4d\xff\xff\x8c\x03\x6e\x65\x67\x94\x4a\xff\xff\xff\xff\x75\x2e";
  AgcPickle *pickle = LOAD_OK (bytes, &rules);
  check_mixed (agc_pickle_root (pickle), FALSE);
  agc_pickle_free (pickle);
}

static void
test_ordered_dict_and_memo (void)
{
  // OrderedDict([("x", 1)]) then BUILD with {"_metadata": {}}, which is dropped
  static const char od[] = "\x80\x02\x63\x63\x6f\x6c\x6c\x65\x63\x74\x69\x6f\x6e\x73\x0a\x4f"
                           "\x72\x64\x65\x72\x65\x64\x44\x69\x63\x74\x0a\x71\x00\x29\x52\x71"
                           "\x01\x58\x01\x00\x00\x00\x78\x71\x02\x4b\x01\x73"
                           "}X\x09\x00\x00\x00_metadata}sb.";
  AgcPickle *pickle = LOAD_OK (od, &rules);
  const AgcPickleValue *root = agc_pickle_root (pickle);
  g_assert_cmpint (root->kind, ==, AGC_PICKLE_DICT);
  g_assert_cmpuint (agc_pickle_n_items (root), ==, 2);
  check_int (get (root, "x"), 1);
  agc_pickle_free (pickle);

  // l = []; l.append(l): a cycle through the memo
  static const char cycle[] = "\x80\x02\x5d\x71\x00\x68\x00\x61\x2e";
  pickle = LOAD_OK (cycle, &rules);
  root = agc_pickle_root (pickle);
  g_assert_cmpuint (agc_pickle_n_items (root), ==, 1);
  g_assert_true (agc_pickle_item (root, 0) == root);
  agc_pickle_free (pickle);

  // a repeated key: the last value wins, as in Python; LONG_BINPUT / LONG_BINGET
  static const char repeat[] = "\x80\x02}(X\x01\x00\x00\x00kr\x00\x00\x01\x00K\x01"
                               "j\x00\x00\x01\x00K\x02u.";
  pickle = LOAD_OK (repeat, &rules);
  check_int (get (agc_pickle_root (pickle), "k"), 2);
  g_assert_cmpuint (agc_pickle_n_items (agc_pickle_root (pickle)), ==, 4);
  agc_pickle_free (pickle);
}

static void
test_calls_objects_persids (void)
{
  // STACK_GLOBAL, REDUCE, BINPERSID, NEWOBJ (class prefix) and BUILD
  static const char bytes[] = "\x80\x04"
                              "\x8c\x0ctorch._utils\x8c\x12_rebuild_tensor_v2\x93"
                              "X\x01\x00\x00\x00\x30\x85Q\x85R"   // f((persid('0'),))
                              "c__torch__.M\nN\n)\x81"              // __torch__.M.N()
                              "}X\x01\x00\x00\x00wK\x07sb"          // .__setstate__({'w': 7})
                              "\x86.";
  AgcPickle *pickle = LOAD_OK (bytes, &torchscript_rules);
  const AgcPickleValue *root = agc_pickle_root (pickle);
  g_assert_cmpint (root->kind, ==, AGC_PICKLE_TUPLE);
  const AgcPickleValue *call = agc_pickle_item (root, 0);
  g_assert_cmpint (call->kind, ==, AGC_PICKLE_CALL);
  g_assert_true (agc_pickle_is_global (call->callable, "torch._utils._rebuild_tensor_v2"));
  const AgcPickleValue *persid = agc_pickle_item (call->args, 0);
  g_assert_cmpint (persid->kind, ==, AGC_PICKLE_PERSID);
  g_assert_cmpstr (agc_pickle_item (persid->args, 0)->text, ==, "0");
  const AgcPickleValue *object = agc_pickle_item (root, 1);
  g_assert_cmpint (object->kind, ==, AGC_PICKLE_OBJECT);
  g_assert_true (agc_pickle_is_global (object->callable, "__torch__.M.N"));
  check_int (get (object->state, "w"), 7);
  agc_pickle_free (pickle);
}

static void
test_refused (void)
{
  LOAD_FAILS ("\x80\x02\x63os\nsystem\nX\x02\x00\x00\x00lsR.", AGC_ERROR_UNSUPPORTED,
              "byte 2: global 'os.system' is not allowed");
  LOAD_FAILS ("\x80\x02\x63__builtin__\neval\n.", AGC_ERROR_UNSUPPORTED,
              "global '__builtin__.eval' is not allowed");
  LOAD_FAILS ("\x80\x04\x8c\x08" "builtins\x8c\x04" "exec\x93.", AGC_ERROR_UNSUPPORTED,
              "global 'builtins.exec'");
  LOAD_FAILS ("\x80\x02(cos\nsystem\n.", AGC_ERROR_UNSUPPORTED, "global 'os.system'");
  LOAD_FAILS ("\x80\x02(i__torch__.M\nN\n.", AGC_ERROR_UNSUPPORTED,
              "byte 3: opcode INST (0x69) is not supported");
  LOAD_FAILS ("\x80\x02\x63__torch__.M\nN\n)R.", AGC_ERROR_UNSUPPORTED,
              "REDUCE cannot call '__torch__.M.N'");
  LOAD_FAILS ("\x80\x02\x63torch\nFloatStorage\n)\x81.", AGC_ERROR_UNSUPPORTED,
              "NEWOBJ cannot create a 'torch.FloatStorage'");
  LOAD_FAILS ("\x80\x02K\x01K\x02" "b.", AGC_ERROR_UNSUPPORTED, "BUILD on a int");
  LOAD_FAILS ("\x80\x06N.", AGC_ERROR_UNSUPPORTED, "pickle protocol 6");
  LOAD_FAILS ("\x80\x02\x8a\x09\x01\x02\x03\x04\x05\x06\x07\x08\x09.", AGC_ERROR_UNSUPPORTED,
              "LONG1 integer of 9 bytes is too large");
  LOAD_FAILS ("\x80\x02\x82\x01.", AGC_ERROR_UNSUPPORTED, "opcode EXT1 (0x82)");
  LOAD_FAILS ("\x80\x02N\xfe.", AGC_ERROR_FORMAT, "byte 3: 0xfe is not a pickle opcode");
}

static void
test_malformed (void)
{
  LOAD_FAILS ("", AGC_ERROR_FORMAT, "byte 0: the pickle ends without STOP");
  LOAD_FAILS ("\x80\x02N", AGC_ERROR_FORMAT, "ends without STOP");
  LOAD_FAILS ("\x80\x02N.N", AGC_ERROR_FORMAT, "1 bytes follow STOP");
  LOAD_FAILS ("\x80\x02NN.", AGC_ERROR_FORMAT, "STOP leaves 1 values and 0 marks behind");
  LOAD_FAILS ("\x80\x02(N.", AGC_ERROR_FORMAT, "STOP leaves 0 values and 1 marks behind");
  LOAD_FAILS ("\x80\x02.", AGC_ERROR_FORMAT, "STOP finds the stack empty");
  LOAD_FAILS ("\x80\x02](a.", AGC_ERROR_FORMAT, "APPEND finds the stack empty");
  LOAD_FAILS ("\x80\x02}K\x01\x61.", AGC_ERROR_FORMAT, "APPEND expects its target to be a list");
  LOAD_FAILS ("\x80\x02(K\x01" "e.", AGC_ERROR_FORMAT, "APPENDS finds no list below its MARK");
  LOAD_FAILS ("\x80\x02}(K\x01u.", AGC_ERROR_FORMAT, "SETITEMS has an odd number of items");
  LOAD_FAILS ("\x80\x02t.", AGC_ERROR_FORMAT, "TUPLE without a MARK");
  LOAD_FAILS ("\x80\x02K\x01\x86.", AGC_ERROR_FORMAT, "TUPLE2 finds the stack empty");
  LOAD_FAILS ("\x80\x02h\x03.", AGC_ERROR_FORMAT, "memo entry 3 is missing");
  LOAD_FAILS ("\x80\x02q\x00.", AGC_ERROR_FORMAT, "BINPUT finds the stack empty");
  LOAD_FAILS ("\x80\x02X\xff\xff\xff\x7f.", AGC_ERROR_FORMAT,
              "BINUNICODE of 2147483647 bytes runs past the end");
  LOAD_FAILS ("\x80\x02X\x01\x00", AGC_ERROR_FORMAT, "BINUNICODE needs 4 bytes");
  LOAD_FAILS ("\x80\x02X\x02\x00\x00\x00\xc3\x28.", AGC_ERROR_FORMAT, "not valid UTF-8");
  LOAD_FAILS ("\x80\x02X\x01\x00\x00\x00\x00.", AGC_ERROR_FORMAT, "contains NUL");
  LOAD_FAILS ("\x80\x02\x63os\nsys", AGC_ERROR_FORMAT, "GLOBAL name runs past the end");
  LOAD_FAILS ("\x80\x02\x63o\x01s\nx\n.", AGC_ERROR_FORMAT, "GLOBAL name has a byte 0x01");
  LOAD_FAILS ("\x80\x04\x95\xff\x00\x00\x00\x00\x00\x00\x00N.", AGC_ERROR_FORMAT,
              "FRAME runs past the end");
  LOAD_FAILS ("\x80\x04K\x01\x8c\x01x\x93.", AGC_ERROR_FORMAT,
              "STACK_GLOBAL expects the module to be a string, found a int");
  LOAD_FAILS ("\x80\x02K\x01)R.", AGC_ERROR_FORMAT, "REDUCE expects the callable to be a global");
  LOAD_FAILS ("\x80\x02\x63torch\nFloatStorage\nK\x01R.", AGC_ERROR_FORMAT,
              "REDUCE expects the arguments to be a tuple, found a int");
  LOAD_FAILS ("\x80\x02Q.", AGC_ERROR_FORMAT, "BINPERSID finds the stack empty");
}

/* Every prefix of a valid pickle is refused, never read past its end (the
 * sanitizer build checks the latter). */
static void
test_truncations (void)
{
  static const char bytes[] = "\x80\x04\x95\x62\x00\x00\x00\x00\x00\x00\x00\x7d\x94\x28\x8c\x01"
                              "\x61\x94\x5d\x94\x28\x4b\x01\x47\x40\x04\x00\x00\x00\x00\x00\x00"
                              "\x4e\x88\x89\x8c\x02\xc3\xa9\x94\x43\x02\x78\x79\x94\x4b\x01\x4b"
                              "\x02\x4b\x03\x87\x94\x29\x65\x8c\x01\x6e\x94\x8a\x06\x00\x00\x00"
                              "\x00\x00\xff\x75\x2e";
  for (size_t n = 0; n + 1 < sizeof bytes - 1; n++)
    {
      guint8 *copy = g_memdup2 (bytes, n);
      GError *error = NULL;
      AgcPickle *pickle = agc_pickle_load (copy, n, "cut.pkl", &rules, &error);
      g_assert_null (pickle);
      g_assert_error (error, AGC_ERROR, AGC_ERROR_FORMAT);
      g_error_free (error);
      g_free (copy);
    }
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/pickle/protocol-2", test_protocol_2);
  g_test_add_func ("/pickle/protocol-4", test_protocol_4);
  g_test_add_func ("/pickle/ordered-dict-and-memo", test_ordered_dict_and_memo);
  g_test_add_func ("/pickle/calls-objects-persids", test_calls_objects_persids);
  g_test_add_func ("/pickle/refused", test_refused);
  g_test_add_func ("/pickle/malformed", test_malformed);
  g_test_add_func ("/pickle/truncations", test_truncations);
  return g_test_run ();
}
