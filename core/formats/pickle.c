/* pickle.c — a restricted unpickler (see pickle.h).
 *
 * The pickle machine: a stack of values, a stack of MARK positions (items
 * above the top mark form the current frame; popping below it is an
 * underflow, as in CPython), and a memo of values by index.  Each opcode
 * makes at most one new value, so memory stays proportional to the input.
 * Multi-byte operands are little-endian except BINFLOAT's big-endian double. */
#include "formats/pickle.h"

#include "agriclip.h"
#include "support/error.h"

#include <string.h>

struct AgcPickle
{
  GPtrArray *values; /* every AgcPickleValue made, owned */
  GStringChunk *strings;
  const AgcPickleValue *root;
};

typedef struct
{
  AgcPickle *pickle;
  const guint8 *data;
  size_t size;
  size_t pos;       /* next byte to read */
  size_t op_offset; /* of the opcode being run */
  guint8 op;
  const char *name;
  const AgcPickleRules *rules;
  GPtrArray *stack; /* AgcPickleValue* */
  GArray *marks;    /* guint: stack length at each MARK */
  GHashTable *memo; /* index -> AgcPickleValue* */
} Machine;

/* ---- opcodes ------------------------------------------------------------ */

enum
{
  OP_MARK = '(',
  OP_STOP = '.',
  OP_BININT = 'J',
  OP_BININT1 = 'K',
  OP_BININT2 = 'M',
  OP_NONE = 'N',
  OP_BINPERSID = 'Q',
  OP_REDUCE = 'R',
  OP_BINUNICODE = 'X',
  OP_APPEND = 'a',
  OP_BUILD = 'b',
  OP_GLOBAL = 'c',
  OP_EMPTY_DICT = '}',
  OP_APPENDS = 'e',
  OP_BINGET = 'h',
  OP_LONG_BINGET = 'j',
  OP_EMPTY_LIST = ']',
  OP_BINPUT = 'q',
  OP_LONG_BINPUT = 'r',
  OP_SETITEM = 's',
  OP_TUPLE = 't',
  OP_EMPTY_TUPLE = ')',
  OP_SETITEMS = 'u',
  OP_BINFLOAT = 'G',
  OP_BINBYTES = 'B',
  OP_SHORT_BINBYTES = 'C',
  OP_PROTO = 0x80,
  OP_NEWOBJ = 0x81,
  OP_TUPLE1 = 0x85,
  OP_TUPLE2 = 0x86,
  OP_TUPLE3 = 0x87,
  OP_NEWTRUE = 0x88,
  OP_NEWFALSE = 0x89,
  OP_LONG1 = 0x8a,
  OP_SHORT_BINUNICODE = 0x8c,
  OP_BINUNICODE8 = 0x8d,
  OP_STACK_GLOBAL = 0x93,
  OP_MEMOIZE = 0x94,
  OP_FRAME = 0x95,
};

/* Every opcode of protocols 0 to 5, for messages. */
static const char *
opcode_name (guint8 op)
{
  switch (op)
    {
    case '(': return "MARK";
    case '.': return "STOP";
    case '0': return "POP";
    case '1': return "POP_MARK";
    case '2': return "DUP";
    case 'F': return "FLOAT";
    case 'I': return "INT";
    case 'J': return "BININT";
    case 'K': return "BININT1";
    case 'L': return "LONG";
    case 'M': return "BININT2";
    case 'N': return "NONE";
    case 'P': return "PERSID";
    case 'Q': return "BINPERSID";
    case 'R': return "REDUCE";
    case 'S': return "STRING";
    case 'T': return "BINSTRING";
    case 'U': return "SHORT_BINSTRING";
    case 'V': return "UNICODE";
    case 'X': return "BINUNICODE";
    case 'a': return "APPEND";
    case 'b': return "BUILD";
    case 'c': return "GLOBAL";
    case 'd': return "DICT";
    case '}': return "EMPTY_DICT";
    case 'e': return "APPENDS";
    case 'g': return "GET";
    case 'h': return "BINGET";
    case 'i': return "INST";
    case 'j': return "LONG_BINGET";
    case 'l': return "LIST";
    case ']': return "EMPTY_LIST";
    case 'o': return "OBJ";
    case 'p': return "PUT";
    case 'q': return "BINPUT";
    case 'r': return "LONG_BINPUT";
    case 's': return "SETITEM";
    case 't': return "TUPLE";
    case ')': return "EMPTY_TUPLE";
    case 'u': return "SETITEMS";
    case 'G': return "BINFLOAT";
    case 'B': return "BINBYTES";
    case 'C': return "SHORT_BINBYTES";
    case 0x80: return "PROTO";
    case 0x81: return "NEWOBJ";
    case 0x82: return "EXT1";
    case 0x83: return "EXT2";
    case 0x84: return "EXT4";
    case 0x85: return "TUPLE1";
    case 0x86: return "TUPLE2";
    case 0x87: return "TUPLE3";
    case 0x88: return "NEWTRUE";
    case 0x89: return "NEWFALSE";
    case 0x8a: return "LONG1";
    case 0x8b: return "LONG4";
    case 0x8c: return "SHORT_BINUNICODE";
    case 0x8d: return "BINUNICODE8";
    case 0x8e: return "BINBYTES8";
    case 0x8f: return "EMPTY_SET";
    case 0x90: return "ADDITEMS";
    case 0x91: return "FROZENSET";
    case 0x92: return "NEWOBJ_EX";
    case 0x93: return "STACK_GLOBAL";
    case 0x94: return "MEMOIZE";
    case 0x95: return "FRAME";
    case 0x96: return "BYTEARRAY8";
    case 0x97: return "NEXT_BUFFER";
    case 0x98: return "READONLY_BUFFER";
    }
  return NULL;
}

/* ---- machine helpers ---------------------------------------------------- */

static gboolean
fail (Machine *m, GError **error, int code, const char *format, ...) G_GNUC_PRINTF (4, 5);

/* Sets "name: byte N: message". */
static gboolean
fail (Machine *m, GError **error, int code, const char *format, ...)
{
  g_autofree char *where = g_strdup_printf ("%s: byte %zu", m->name, m->op_offset);
  va_list args;
  va_start (args, format);
  agc_fail_at_valist (error, code, where, format, args);
  va_end (args);
  return FALSE;
}

static gboolean
need (Machine *m, size_t n, GError **error)
{
  if (m->size - m->pos >= n)
    return TRUE;
  return fail (m, error, AGC_ERROR_FORMAT, "%s needs %zu bytes, the pickle ends after %zu",
               opcode_name (m->op), n, m->size - m->pos);
}

static guint64
take_le (Machine *m, size_t n) // after need()
{
  guint64 v = 0;
  for (size_t i = 0; i < n; i++)
    v |= (guint64) m->data[m->pos + i] << (8 * i);
  m->pos += n;
  return v;
}

static AgcPickleValue *
new_value (Machine *m, AgcPickleKind kind)
{
  AgcPickleValue *value = g_new0 (AgcPickleValue, 1);
  value->kind = kind;
  value->offset = m->op_offset;
  if (kind == AGC_PICKLE_TUPLE || kind == AGC_PICKLE_LIST || kind == AGC_PICKLE_DICT)
    value->items = g_ptr_array_new ();
  g_ptr_array_add (m->pickle->values, value);
  return value;
}

static void
free_value (gpointer data)
{
  AgcPickleValue *value = data;
  if (value->items != NULL)
    g_ptr_array_unref (value->items);
  g_free (value);
}

/* The stack length below which the current frame may not pop. */
static guint
frame_floor (const Machine *m)
{
  return m->marks->len > 0 ? g_array_index (m->marks, guint, m->marks->len - 1) : 0;
}

static void
push (Machine *m, AgcPickleValue *value)
{
  g_ptr_array_add (m->stack, value);
}

static AgcPickleValue *
pop (Machine *m, GError **error)
{
  if (m->stack->len <= frame_floor (m))
    {
      fail (m, error, AGC_ERROR_FORMAT, "%s finds the stack empty", opcode_name (m->op));
      return NULL;
    }
  return g_ptr_array_steal_index (m->stack, m->stack->len - 1);
}

static AgcPickleValue *
top (Machine *m, GError **error)
{
  if (m->stack->len <= frame_floor (m))
    {
      fail (m, error, AGC_ERROR_FORMAT, "%s finds the stack empty", opcode_name (m->op));
      return NULL;
    }
  return g_ptr_array_index (m->stack, m->stack->len - 1);
}

/* Removes the top mark; *first is the stack index of the first item above it. */
static gboolean
pop_mark (Machine *m, guint *first, GError **error)
{
  if (m->marks->len == 0)
    return fail (m, error, AGC_ERROR_FORMAT, "%s without a MARK", opcode_name (m->op));
  *first = g_array_index (m->marks, guint, m->marks->len - 1);
  g_array_set_size (m->marks, m->marks->len - 1);
  return TRUE;
}

/* Moves stack[first..] into items. */
static void
move_items (Machine *m, guint first, GPtrArray *items)
{
  for (guint i = first; i < m->stack->len; i++)
    g_ptr_array_add (items, g_ptr_array_index (m->stack, i));
  g_ptr_array_set_size (m->stack, first);
}

static gboolean
expect_kind (Machine *m, const AgcPickleValue *value, AgcPickleKind kind, const char *role,
             GError **error)
{
  if (value->kind == kind)
    return TRUE;
  return fail (m, error, AGC_ERROR_FORMAT, "%s expects %s to be a %s, found a %s",
               opcode_name (m->op), role, agc_pickle_kind_name (kind),
               agc_pickle_kind_name (value->kind));
}

/* ---- opcodes with operands ---------------------------------------------- */

static gboolean
op_string (Machine *m, size_t length_bytes, AgcPickleKind kind, GError **error)
{
  if (!need (m, length_bytes, error))
    return FALSE;
  guint64 length = take_le (m, length_bytes);
  if (length > m->size - m->pos)
    return fail (m, error, AGC_ERROR_FORMAT,
                 "%s of %" G_GUINT64_FORMAT " bytes runs past the end of the pickle",
                 opcode_name (m->op), length);
  const char *text = (const char *) m->data + m->pos;
  if (kind == AGC_PICKLE_STRING && !g_utf8_validate_len (text, length, NULL))
    return fail (m, error, AGC_ERROR_FORMAT, "string is not valid UTF-8 or contains NUL");
  AgcPickleValue *value = new_value (m, kind);
  value->text = g_string_chunk_insert_len (m->pickle->strings, text, (gssize) length);
  value->length = length;
  m->pos += length;
  push (m, value);
  return TRUE;
}

static gboolean
op_long1 (Machine *m, GError **error)
{
  if (!need (m, 1, error))
    return FALSE;
  size_t n = m->data[m->pos++];
  if (!need (m, n, error))
    return FALSE;
  if (n > 8)
    return fail (m, error, AGC_ERROR_UNSUPPORTED, "LONG1 integer of %zu bytes is too large", n);
  guint64 bits = take_le (m, n);
  if (n > 0 && n < 8 && (bits >> (8 * n - 1)) != 0) // negative: sign-extend
    bits |= ~(guint64) 0 << (8 * n);
  AgcPickleValue *value = new_value (m, AGC_PICKLE_INT);
  value->integer = (gint64) bits;
  push (m, value);
  return TRUE;
}

static gboolean
op_binfloat (Machine *m, GError **error)
{
  if (!need (m, 8, error))
    return FALSE;
  guint64 bits = 0;
  for (int i = 0; i < 8; i++)
    bits = bits << 8 | m->data[m->pos++];
  AgcPickleValue *value = new_value (m, AGC_PICKLE_FLOAT);
  memcpy (&value->number, &bits, sizeof bits);
  push (m, value);
  return TRUE;
}

/* Pushes a GLOBAL value for module.name when the rules allow it. */
static gboolean
push_global (Machine *m, const char *module, size_t module_len, const char *name,
             size_t name_len, GError **error)
{
  g_autofree char *full = g_strdup_printf ("%.*s.%.*s", (int) module_len, module,
                                           (int) name_len, name);
  gboolean allowed = m->rules->class_prefix != NULL
                     && g_str_has_prefix (full, m->rules->class_prefix);
  for (const char *const *g = m->rules->globals; !allowed && g != NULL && *g != NULL; g++)
    allowed = strcmp (full, *g) == 0;
  if (!allowed)
    return fail (m, error, AGC_ERROR_UNSUPPORTED,
                 "global '%s' is not allowed: only tensors, dicts, lists, tuples, strings and "
                 "numbers can be read (a file that pickles other Python objects, such as a "
                 "whole model, must be re-saved as a state dict)",
                 full);
  AgcPickleValue *value = new_value (m, AGC_PICKLE_GLOBAL);
  value->length = strlen (full);
  value->text = g_string_chunk_insert (m->pickle->strings, full);
  push (m, value);
  return TRUE;
}

/* GLOBAL: "module\nname\n", printable ASCII. */
static gboolean
op_global (Machine *m, GError **error)
{
  const char *parts[2];
  size_t lengths[2];
  for (int k = 0; k < 2; k++)
    {
      const guint8 *start = m->data + m->pos;
      const guint8 *newline = memchr (start, '\n', m->size - m->pos);
      if (newline == NULL)
        return fail (m, error, AGC_ERROR_FORMAT, "GLOBAL name runs past the end of the pickle");
      for (const guint8 *c = start; c < newline; c++)
        if (*c < 0x20 || *c > 0x7e)
          return fail (m, error, AGC_ERROR_FORMAT, "GLOBAL name has a byte 0x%02x", *c);
      parts[k] = (const char *) start;
      lengths[k] = (size_t) (newline - start);
      m->pos += lengths[k] + 1;
    }
  return push_global (m, parts[0], lengths[0], parts[1], lengths[1], error);
}

static gboolean
op_stack_global (Machine *m, GError **error)
{
  AgcPickleValue *name = pop (m, error);
  AgcPickleValue *module = name != NULL ? pop (m, error) : NULL;
  if (module == NULL)
    return FALSE;
  if (!expect_kind (m, module, AGC_PICKLE_STRING, "the module", error)
      || !expect_kind (m, name, AGC_PICKLE_STRING, "the name", error))
    return FALSE;
  return push_global (m, module->text, module->length, name->text, name->length, error);
}

static gboolean
is_allowed_exactly (const Machine *m, const char *full)
{
  for (const char *const *g = m->rules->globals; g != NULL && *g != NULL; g++)
    if (strcmp (full, *g) == 0)
      return TRUE;
  return FALSE;
}

/* Pops a callable (a GLOBAL, what) and its argument tuple, as REDUCE and
 * NEWOBJ find them: ... callable args. */
static gboolean
pop_call (Machine *m, const char *what, AgcPickleValue **callable, AgcPickleValue **args,
          GError **error)
{
  *args = pop (m, error);
  *callable = *args != NULL ? pop (m, error) : NULL;
  return *callable != NULL && expect_kind (m, *callable, AGC_PICKLE_GLOBAL, what, error)
         && expect_kind (m, *args, AGC_PICKLE_TUPLE, "the arguments", error);
}

/* REDUCE: callable(*args).  Only allow-listed functions; classes that the
 * class prefix admits may only be made by NEWOBJ. */
static gboolean
op_reduce (Machine *m, GError **error)
{
  AgcPickleValue *callable, *args;
  if (!pop_call (m, "the callable", &callable, &args, error))
    return FALSE;
  if (!is_allowed_exactly (m, callable->text))
    return fail (m, error, AGC_ERROR_UNSUPPORTED, "REDUCE cannot call '%s'", callable->text);
  if (strcmp (callable->text, "collections.OrderedDict") == 0)
    {
      if (args->items->len != 0)
        return fail (m, error, AGC_ERROR_UNSUPPORTED,
                     "collections.OrderedDict is called with arguments");
      push (m, new_value (m, AGC_PICKLE_DICT));
      return TRUE;
    }
  AgcPickleValue *call = new_value (m, AGC_PICKLE_CALL);
  call->callable = callable;
  call->args = args;
  push (m, call);
  return TRUE;
}

static gboolean
op_newobj (Machine *m, GError **error)
{
  AgcPickleValue *cls, *args;
  if (!pop_call (m, "the class", &cls, &args, error))
    return FALSE;
  if (m->rules->class_prefix == NULL || !g_str_has_prefix (cls->text, m->rules->class_prefix))
    return fail (m, error, AGC_ERROR_UNSUPPORTED, "NEWOBJ cannot create a '%s'", cls->text);
  AgcPickleValue *object = new_value (m, AGC_PICKLE_OBJECT);
  object->callable = cls;
  object->args = args;
  push (m, object);
  return TRUE;
}

static gboolean
op_build (Machine *m, GError **error)
{
  AgcPickleValue *state = pop (m, error);
  AgcPickleValue *target = state != NULL ? top (m, error) : NULL;
  if (target == NULL)
    return FALSE;
  if (target->kind == AGC_PICKLE_DICT) // OrderedDict's _metadata: not needed
    return TRUE;
  if (target->kind != AGC_PICKLE_CALL && target->kind != AGC_PICKLE_OBJECT)
    return fail (m, error, AGC_ERROR_UNSUPPORTED, "BUILD on a %s",
                 agc_pickle_kind_name (target->kind));
  target->state = state;
  return TRUE;
}

static gboolean
op_tuple_n (Machine *m, guint n, GError **error)
{
  AgcPickleValue *popped[3];
  for (guint i = 0; i < n; i++)
    if ((popped[n - 1 - i] = pop (m, error)) == NULL)
      return FALSE;
  AgcPickleValue *tuple = new_value (m, AGC_PICKLE_TUPLE);
  for (guint i = 0; i < n; i++)
    g_ptr_array_add (tuple->items, popped[i]);
  push (m, tuple);
  return TRUE;
}

/* APPENDS, SETITEMS, TUPLE: the items above the top mark. */
static gboolean
op_marked (Machine *m, GError **error)
{
  guint first = 0;
  if (!pop_mark (m, &first, error))
    return FALSE;
  if (m->op == OP_TUPLE)
    {
      AgcPickleValue *tuple = new_value (m, AGC_PICKLE_TUPLE);
      move_items (m, first, tuple->items);
      push (m, tuple);
      return TRUE;
    }
  // the items are at [first, len); the list or dict they go to is just below
  AgcPickleKind kind = m->op == OP_APPENDS ? AGC_PICKLE_LIST : AGC_PICKLE_DICT;
  AgcPickleValue *target = first > frame_floor (m) ? g_ptr_array_index (m->stack, first - 1)
                                                   : NULL;
  if (target == NULL)
    return fail (m, error, AGC_ERROR_FORMAT, "%s finds no %s below its MARK",
                 opcode_name (m->op), agc_pickle_kind_name (kind));
  if (!expect_kind (m, target, kind, "its target", error))
    return FALSE;
  if (kind == AGC_PICKLE_DICT && (m->stack->len - first) % 2 != 0)
    return fail (m, error, AGC_ERROR_FORMAT, "SETITEMS has an odd number of items");
  move_items (m, first, target->items);
  return TRUE;
}

static gboolean
op_memo_put (Machine *m, guint64 index, GError **error)
{
  AgcPickleValue *value = top (m, error);
  if (value == NULL)
    return FALSE;
  g_hash_table_insert (m->memo, GSIZE_TO_POINTER ((gsize) index), value);
  return TRUE;
}

static gboolean
op_memo_get (Machine *m, guint64 index, GError **error)
{
  AgcPickleValue *value = g_hash_table_lookup (m->memo, GSIZE_TO_POINTER ((gsize) index));
  if (value == NULL)
    return fail (m, error, AGC_ERROR_FORMAT, "memo entry %" G_GUINT64_FORMAT " is missing",
                 index);
  push (m, value);
  return TRUE;
}

/* ---- the loop ------------------------------------------------------------ */

static gboolean
run (Machine *m, GError **error)
{
  while (m->pos < m->size)
    {
      m->op_offset = m->pos;
      m->op = m->data[m->pos++];
      gboolean ok = TRUE;
      AgcPickleValue *value, *key, *target;
      switch (m->op)
        {
        case OP_PROTO:
          if (!need (m, 1, error))
            return FALSE;
          if (m->data[m->pos] > 5)
            return fail (m, error, AGC_ERROR_UNSUPPORTED, "pickle protocol %u is not supported",
                         m->data[m->pos]);
          m->pos++;
          break;
        case OP_FRAME: // framing only groups I/O: the length is checked and dropped
          if (!need (m, 8, error))
            return FALSE;
          if (take_le (m, 8) > m->size - m->pos)
            return fail (m, error, AGC_ERROR_FORMAT, "FRAME runs past the end of the pickle");
          break;
        case OP_STOP:
          if ((value = pop (m, error)) == NULL)
            return FALSE;
          if (m->stack->len != 0 || m->marks->len != 0)
            return fail (m, error, AGC_ERROR_FORMAT, "STOP leaves %u values and %u marks behind",
                         m->stack->len, m->marks->len);
          if (m->pos != m->size)
            return fail (m, error, AGC_ERROR_FORMAT, "%zu bytes follow STOP", m->size - m->pos);
          m->pickle->root = value;
          return TRUE;
        case OP_MARK:
          g_array_append_val (m->marks, m->stack->len);
          break;
        case OP_NONE:
          push (m, new_value (m, AGC_PICKLE_NONE));
          break;
        case OP_NEWTRUE:
        case OP_NEWFALSE:
          value = new_value (m, AGC_PICKLE_BOOL);
          value->integer = m->op == OP_NEWTRUE;
          push (m, value);
          break;
        case OP_BININT:
        case OP_BININT1:
        case OP_BININT2:
          {
            size_t n = m->op == OP_BININT ? 4 : m->op == OP_BININT2 ? 2 : 1;
            if (!need (m, n, error))
              return FALSE;
            guint64 bits = take_le (m, n);
            value = new_value (m, AGC_PICKLE_INT);
            value->integer = n == 4 ? (gint64) (gint32) (guint32) bits : (gint64) bits;
            push (m, value);
          }
          break;
        case OP_LONG1:
          ok = op_long1 (m, error);
          break;
        case OP_BINFLOAT:
          ok = op_binfloat (m, error);
          break;
        case OP_SHORT_BINUNICODE:
          ok = op_string (m, 1, AGC_PICKLE_STRING, error);
          break;
        case OP_BINUNICODE:
          ok = op_string (m, 4, AGC_PICKLE_STRING, error);
          break;
        case OP_BINUNICODE8:
          ok = op_string (m, 8, AGC_PICKLE_STRING, error);
          break;
        case OP_SHORT_BINBYTES:
          ok = op_string (m, 1, AGC_PICKLE_BYTES, error);
          break;
        case OP_BINBYTES:
          ok = op_string (m, 4, AGC_PICKLE_BYTES, error);
          break;
        case OP_EMPTY_TUPLE:
          push (m, new_value (m, AGC_PICKLE_TUPLE));
          break;
        case OP_TUPLE1:
        case OP_TUPLE2:
        case OP_TUPLE3:
          ok = op_tuple_n (m, m->op - OP_TUPLE1 + 1, error);
          break;
        case OP_EMPTY_LIST:
          push (m, new_value (m, AGC_PICKLE_LIST));
          break;
        case OP_EMPTY_DICT:
          push (m, new_value (m, AGC_PICKLE_DICT));
          break;
        case OP_TUPLE:
        case OP_APPENDS:
        case OP_SETITEMS:
          ok = op_marked (m, error);
          break;
        case OP_APPEND:
          if ((value = pop (m, error)) == NULL || (target = top (m, error)) == NULL)
            return FALSE;
          if (!expect_kind (m, target, AGC_PICKLE_LIST, "its target", error))
            return FALSE;
          g_ptr_array_add (target->items, value);
          break;
        case OP_SETITEM:
          if ((value = pop (m, error)) == NULL || (key = pop (m, error)) == NULL
              || (target = top (m, error)) == NULL)
            return FALSE;
          if (!expect_kind (m, target, AGC_PICKLE_DICT, "its target", error))
            return FALSE;
          g_ptr_array_add (target->items, key);
          g_ptr_array_add (target->items, value);
          break;
        case OP_BINPUT:
          ok = need (m, 1, error) && op_memo_put (m, take_le (m, 1), error);
          break;
        case OP_LONG_BINPUT:
          ok = need (m, 4, error) && op_memo_put (m, take_le (m, 4), error);
          break;
        case OP_MEMOIZE:
          ok = op_memo_put (m, g_hash_table_size (m->memo), error);
          break;
        case OP_BINGET:
          ok = need (m, 1, error) && op_memo_get (m, take_le (m, 1), error);
          break;
        case OP_LONG_BINGET:
          ok = need (m, 4, error) && op_memo_get (m, take_le (m, 4), error);
          break;
        case OP_GLOBAL:
          ok = op_global (m, error);
          break;
        case OP_STACK_GLOBAL:
          ok = op_stack_global (m, error);
          break;
        case OP_REDUCE:
          ok = op_reduce (m, error);
          break;
        case OP_NEWOBJ:
          ok = op_newobj (m, error);
          break;
        case OP_BUILD:
          ok = op_build (m, error);
          break;
        case OP_BINPERSID:
          if ((key = pop (m, error)) == NULL)
            return FALSE;
          value = new_value (m, AGC_PICKLE_PERSID);
          value->args = key;
          push (m, value);
          break;
        default:
          if (opcode_name (m->op) != NULL)
            return fail (m, error, AGC_ERROR_UNSUPPORTED,
                         "opcode %s (0x%02x) is not supported: this reader only reads state "
                         "dicts",
                         opcode_name (m->op), m->op);
          return fail (m, error, AGC_ERROR_FORMAT, "0x%02x is not a pickle opcode", m->op);
        }
      if (!ok)
        return FALSE;
    }
  m->op_offset = m->size;
  return fail (m, error, AGC_ERROR_FORMAT, "the pickle ends without STOP (truncated?)");
}

AgcPickle *
agc_pickle_load (const guint8 *data, size_t size, const char *name, const AgcPickleRules *rules,
                 GError **error)
{
  g_return_val_if_fail (data != NULL || size == 0, NULL);
  g_return_val_if_fail (name != NULL && rules != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  g_autoptr (AgcPickle) pickle = g_new0 (AgcPickle, 1);
  pickle->values = g_ptr_array_new_with_free_func (free_value);
  pickle->strings = g_string_chunk_new (4096);
  g_autoptr (GPtrArray) stack = g_ptr_array_new ();
  g_autoptr (GArray) marks = g_array_new (FALSE, FALSE, sizeof (guint));
  g_autoptr (GHashTable) memo = g_hash_table_new (g_direct_hash, g_direct_equal);
  Machine m = {
    .pickle = pickle,
    .data = data,
    .size = size,
    .name = name,
    .rules = rules,
    .stack = stack,
    .marks = marks,
    .memo = memo,
  };
  return run (&m, error) ? g_steal_pointer (&pickle) : NULL;
}

void
agc_pickle_free (AgcPickle *pickle)
{
  if (pickle == NULL)
    return;
  g_ptr_array_unref (pickle->values);
  g_string_chunk_free (pickle->strings);
  g_free (pickle);
}

const AgcPickleValue *
agc_pickle_root (const AgcPickle *pickle)
{
  return pickle->root;
}

/* ---- reading the tree ----------------------------------------------------- */

const char *
agc_pickle_kind_name (AgcPickleKind kind)
{
  switch (kind)
    {
    case AGC_PICKLE_NONE: return "None";
    case AGC_PICKLE_BOOL: return "bool";
    case AGC_PICKLE_INT: return "int";
    case AGC_PICKLE_FLOAT: return "float";
    case AGC_PICKLE_STRING: return "string";
    case AGC_PICKLE_BYTES: return "bytes";
    case AGC_PICKLE_TUPLE: return "tuple";
    case AGC_PICKLE_LIST: return "list";
    case AGC_PICKLE_DICT: return "dict";
    case AGC_PICKLE_GLOBAL: return "global";
    case AGC_PICKLE_CALL: return "call";
    case AGC_PICKLE_OBJECT: return "object";
    case AGC_PICKLE_PERSID: return "persistent id";
    }
  return "?";
}

size_t
agc_pickle_n_items (const AgcPickleValue *value)
{
  return value->items != NULL ? value->items->len : 0;
}

const AgcPickleValue *
agc_pickle_item (const AgcPickleValue *value, size_t index)
{
  g_return_val_if_fail (index < agc_pickle_n_items (value), NULL);
  return g_ptr_array_index (value->items, index);
}

const AgcPickleValue *
agc_pickle_dict_get (const AgcPickleValue *dict, const char *key)
{
  if (dict->kind != AGC_PICKLE_DICT)
    return NULL;
  size_t key_len = strlen (key);
  for (size_t i = dict->items->len; i >= 2; i -= 2)
    {
      const AgcPickleValue *k = g_ptr_array_index (dict->items, i - 2);
      if (k->kind == AGC_PICKLE_STRING && k->length == key_len
          && memcmp (k->text, key, key_len) == 0)
        return g_ptr_array_index (dict->items, i - 1);
    }
  return NULL;
}

gboolean
agc_pickle_is_global (const AgcPickleValue *value, const char *name)
{
  return value != NULL && value->kind == AGC_PICKLE_GLOBAL && strcmp (value->text, name) == 0;
}
