/* pickle.h — a restricted unpickler: it turns a Python pickle into a tree of
 * plain values and never runs or imports anything.
 *
 * Only the opcodes that state dicts and TorchScript archives use are read
 * (protocols 2 to 5): PROTO FRAME STOP, MARK, NONE NEWTRUE NEWFALSE, BININT
 * BININT1 BININT2 LONG1 BINFLOAT, BINUNICODE BINUNICODE8 SHORT_BINUNICODE
 * SHORT_BINBYTES BINBYTES, EMPTY_TUPLE TUPLE TUPLE1-3 EMPTY_LIST APPEND(S)
 * EMPTY_DICT SETITEM(S), BINPUT LONG_BINPUT MEMOIZE BINGET LONG_BINGET,
 * GLOBAL STACK_GLOBAL, REDUCE NEWOBJ BUILD BINPERSID.  Any other opcode is
 * AGC_ERROR_UNSUPPORTED (a known pickle opcode) or AGC_ERROR_FORMAT (not a
 * pickle opcode), naming the opcode and its byte offset.
 *
 * Python callables are never called: a GLOBAL becomes a GLOBAL value (its
 * "module.name"), REDUCE a CALL value (callable + arguments), NEWOBJ an
 * OBJECT value, BINPERSID a PERSID value; the caller interprets them.  Which
 * globals may appear at all is the caller's allow-list (AgcPickleRules); any
 * other is refused where it appears.  The one REDUCE the unpickler
 * itself understands is collections.OrderedDict(), which makes a dict, since
 * SETITEMS must then fill it; BUILD on a dict (OrderedDict's _metadata) is
 * dropped, BUILD on a CALL or OBJECT stores the state.
 *
 * The tree may share values (the memo) and may even contain cycles (a list
 * appended to itself): walk it with a depth limit or a visited set.
 * Everything belongs to the AgcPickle and is freed with it. */
#pragma once

#include <glib.h>

typedef enum
{
  AGC_PICKLE_NONE,
  AGC_PICKLE_BOOL,   /* integer 0 or 1 */
  AGC_PICKLE_INT,    /* integer */
  AGC_PICKLE_FLOAT,  /* number */
  AGC_PICKLE_STRING, /* text, length bytes of valid UTF-8, NUL-terminated (may contain NULs) */
  AGC_PICKLE_BYTES,  /* text, length bytes */
  AGC_PICKLE_TUPLE,  /* items */
  AGC_PICKLE_LIST,   /* items */
  AGC_PICKLE_DICT,   /* items: key0, value0, key1, value1, … in insertion order; a key may repeat */
  AGC_PICKLE_GLOBAL, /* text: "module.name" */
  AGC_PICKLE_CALL,   /* callable (a GLOBAL) applied to args (a TUPLE); state from BUILD or NULL */
  AGC_PICKLE_OBJECT, /* NEWOBJ: callable is the class (a GLOBAL), args, state from BUILD or NULL */
  AGC_PICKLE_PERSID, /* args: the persistent id */
} AgcPickleKind;

typedef struct AgcPickleValue AgcPickleValue;
struct AgcPickleValue
{
  AgcPickleKind kind;
  size_t offset; /* of the opcode that made it, for messages */
  gint64 integer;
  double number;
  const char *text;
  size_t length;
  GPtrArray *items; /* of AgcPickleValue*, for TUPLE, LIST and DICT */
  const AgcPickleValue *callable;
  const AgcPickleValue *args;
  const AgcPickleValue *state;
};

typedef struct
{
  /* "module.name" of each global that may appear, NULL-terminated. */
  const char *const *globals;
  /* Classes whose "module.name" starts with this prefix may be created with
   * NEWOBJ (TorchScript's "__torch__."); NULL for none. */
  const char *class_prefix;
} AgcPickleRules;

typedef struct AgcPickle AgcPickle;

/* Reads one pickle: data[size] must end with its STOP.  name starts every
 * message: "model.pt: archive/data.pkl: byte 47: global 'os.system' is not
 * allowed …". */
AgcPickle *agc_pickle_load (const guint8 *data, size_t size, const char *name,
                            const AgcPickleRules *rules, GError **error);
void agc_pickle_free (AgcPickle *pickle);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (AgcPickle, agc_pickle_free)

const AgcPickleValue *agc_pickle_root (const AgcPickle *pickle);

/* "dict", "tuple", "global", … for messages. */
const char *agc_pickle_kind_name (AgcPickleKind kind);
size_t agc_pickle_n_items (const AgcPickleValue *value); /* 0 unless TUPLE, LIST or DICT */
const AgcPickleValue *agc_pickle_item (const AgcPickleValue *value, size_t index);
/* The value of a string key in a dict (the last one when it repeats), or NULL. */
const AgcPickleValue *agc_pickle_dict_get (const AgcPickleValue *dict, const char *key);
/* TRUE when value is a GLOBAL named exactly "module.name". */
gboolean agc_pickle_is_global (const AgcPickleValue *value, const char *name);
