/*
 * value.h: how mgscheme represents Scheme values, and the one rule for
 * storing them.
 *
 * A value is one machine word (`val`):
 *
 *   ...xxxx1   fixnum: a 63-bit signed integer, value << 1 | 1
 *   ...xx010   immediate constant: the empty list, #t, #f, the unspecified
 *              value, the end-of-file object, the "unbound" marker
 *   ...xx110   character: code << 3 | CHAR_TAG
 *   ...xx000   pointer to a heap object allocated from mgc
 *
 * Every heap object starts with a header word (kind in the low 8 bits,
 * a kind-specific count above, see OBJ_HDR) and is allocated either with
 * gc_alloc_typed() and a type that names exactly its pointer words, or with
 * gc_alloc_atomic() when it holds none (strings, flonums, primitives).  So
 * the collector never reads a header, a length or a string byte as a
 * pointer.  The one impreciseness left: a fixnum sits in a pointer word, and
 * an odd word that happens to fall inside a heap object keeps that object
 * alive (mgc honours interior pointers).  That can only retain, never free.
 *
 * THE BARRIER RULE.  mgc marks concurrently with a snapshot-at-the-beginning
 * (deletion) barrier, so every store of a value into a field of a heap
 * object goes through set_field() (GC_WRITE), including the first store into
 * a freshly allocated object: it is cheap, and it keeps MGC_VERIFY's
 * "no missed barrier" check meaningful for the whole interpreter.  Stores
 * into C locals (the stack is scanned) and into the registered root block
 * (roots.h) need no barrier: the roots are scanned when marking starts, and
 * the snapshot keeps everything they held then.
 */
#ifndef SCHEME_VALUE_H
#define SCHEME_VALUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "mgc.h"

typedef uintptr_t val;

/* ---- immediates ---------------------------------------------------------- */

#define IMM_TAG 2u
#define IMM_MASK 7u
#define MAKE_IMM(n) ((val)(((uintptr_t)(n) << 3) | IMM_TAG))
#define NIL MAKE_IMM(0)
#define TRUE_V MAKE_IMM(1)
#define FALSE_V MAKE_IMM(2)
#define UNSPEC MAKE_IMM(3)
#define EOF_V MAKE_IMM(4)
#define UNBOUND MAKE_IMM(5)    /* a global or letrec slot not yet defined */
#define CHAR_TAG 6u

static inline bool is_fixnum(val v) { return v & 1; }
static inline intptr_t fixnum_value(val v) { return (intptr_t)v >> 1; }
static inline val make_fixnum(intptr_t n) { return ((uintptr_t)n << 1) | 1; }
#define FIXNUM_MAX (INTPTR_MAX >> 1)
#define FIXNUM_MIN (INTPTR_MIN >> 1)

static inline bool is_char(val v) { return (v & IMM_MASK) == CHAR_TAG; }
static inline val make_char(unsigned c) { return ((val)c << 3) | CHAR_TAG; }
static inline unsigned char_value(val v) { return (unsigned)(v >> 3); }

static inline bool is_ptr(val v) { return v != 0 && (v & IMM_MASK) == 0; }
static inline val make_bool(bool b) { return b ? TRUE_V : FALSE_V; }
static inline bool truthy(val v) { return v != FALSE_V; }

/* ---- heap objects --------------------------------------------------------- */

enum kind {
  K_PAIR = 1,
  K_FLONUM,
  K_STRING,
  K_SYMBOL,
  K_VECTOR,
  K_CLOSURE,
  K_PRIMITIVE,
  K_FRAME,
  K_PORT,
  K_TABLE,
  K_ENTRY,
};

/* Header word: kind in bits 0-7, a count (length, slots, flags) above. */
#define OBJ_HDR(kind, count) ((uintptr_t)(kind) | ((uintptr_t)(count) << 8))
#define HDR_KIND(h) ((enum kind)((h) & 0xff))
#define HDR_COUNT(h) ((h) >> 8)

struct obj { uintptr_t hdr; };

/* typed: car, cdr */
struct pair { uintptr_t hdr; val car, cdr; };
/* atomic */
struct flonum { uintptr_t hdr; double d; };
/* atomic; count = length in bytes; bytes[length] is a NUL for C's sake */
struct string { uintptr_t hdr; char bytes[]; };
/* typed: name, global.  count = special-form id (SF_NONE for variables). */
struct symbol { uintptr_t hdr; val name; val global; };
/* traced (every word after the header); count = length */
struct vector { uintptr_t hdr; val items[]; };
/* typed: params, body, env, name */
struct closure { uintptr_t hdr; val params, body, env, name; };
typedef val (*prim_fn)(int argc, val *argv);
/* atomic: fn is code and name a C string literal, neither on the heap.
 * count = min_args | max_args << 8 (max 255 = any) */
struct primitive { uintptr_t hdr; prim_fn fn; const char *name; };
/* traced (every word after the header): an environment frame.  count =
 * number of (symbol, value) slot pairs; `extra` is an alist of bindings
 * added later by internal defines. */
struct frame { uintptr_t hdr; val parent; val extra; val slots[]; };
/* typed: name.  fp is a malloc'd stdio stream, closed by close-port or, if
 * the program drops the port, by its finalizer. count = PORT_* flags. */
struct port { uintptr_t hdr; FILE *fp; val name; };
#define PORT_INPUT 1u
#define PORT_OUTPUT 2u
#define PORT_STD 4u      /* stdin/stdout/stderr: never closed */
/* typed: buckets.  count = TABLE_WEAK flag; n = live-or-not-yet-pruned
 * entries (a plain word: not a pointer). */
struct table { uintptr_t hdr; size_t n; val buckets; };
#define TABLE_WEAK 1u
/* typed: next, a, b.  A chain link of a hash table bucket.  Strong entry
 * (count 0): a = key, b = value.  Weak entry (count ENTRY_EPHEMERON): a is
 * a gc_ephemeron* holding key and value, b unused. */
struct entry { uintptr_t hdr; val next, a, b; };
#define ENTRY_EPHEMERON 1u

static inline struct obj *as_obj(val v) { return (struct obj *)v; }
static inline bool has_kind(val v, enum kind k) {
  return is_ptr(v) && HDR_KIND(as_obj(v)->hdr) == k;
}
#define AS(type, v) ((struct type *)(v))

static inline bool is_pair(val v) { return has_kind(v, K_PAIR); }
static inline bool is_symbol(val v) { return has_kind(v, K_SYMBOL); }
static inline bool is_string(val v) { return has_kind(v, K_STRING); }
static inline bool is_flonum(val v) { return has_kind(v, K_FLONUM); }
static inline bool is_vector(val v) { return has_kind(v, K_VECTOR); }
static inline bool is_number(val v) { return is_fixnum(v) || is_flonum(v); }
static inline bool is_procedure(val v) {
  return has_kind(v, K_CLOSURE) || has_kind(v, K_PRIMITIVE);
}

static inline val car(val p) { return AS(pair, p)->car; }
static inline val cdr(val p) { return AS(pair, p)->cdr; }
static inline size_t string_length(val s) { return HDR_COUNT(AS(string, s)->hdr); }
static inline size_t vector_length(val v) { return HDR_COUNT(AS(vector, v)->hdr); }
static inline double flonum_value(val v) { return AS(flonum, v)->d; }

/* The one way to store a value into a heap object's field (see the rule
 * above). */
static inline void set_field(val *field, val v) { GC_WRITE(field, v); }

#endif /* SCHEME_VALUE_H */
