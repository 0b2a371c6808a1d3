/*
 * heap.c: the mgc types of mgscheme's objects and one allocator per kind.
 *
 * Every object comes from mgc: typed objects from gc_alloc_typed with a type
 * naming exactly their pointer words, pointer-free ones from
 * gc_alloc_atomic.  Variable-length objects with pointers (vectors,
 * environment frames) use one traced type whose callback visits every word
 * after the header; the callback reads the object's size from the collector
 * rather than its header, so an object still being initialised (zeroed,
 * header not yet written) is scanned safely.
 *
 * Invariant: each allocator writes the header with a plain store (it is not
 * a pointer) and every pointer field with set_field (value.h), even though
 * the object is fresh.
 */
#include <errno.h>
#include <string.h>

#include "scheme.h"

static const gc_type *pair_type, *symbol_type, *closure_type, *port_type,
    *table_type, *entry_type, *tail_type;

/* Visit every word after the header: vectors and frames. */
static void trace_tail(void *obj, size_t size, gc_visit_fn visit, void *ctx) {
  void **words = obj;
  for (size_t i = 1; i < size / sizeof(void *); i++) visit(&words[i], ctx);
}

#define OFF(type, field) offsetof(struct type, field)

static const gc_type *typed(size_t size, const size_t *offsets, size_t n) {
  const gc_type *t = gc_type_new(size, offsets, n);
  if (!t) {
    fprintf(stderr, "mgscheme: cannot create a gc type\n");
    exit(70);
  }
  return t;
}

void heap_init(void) {
  static const size_t pair_off[] = {OFF(pair, car), OFF(pair, cdr)};
  static const size_t sym_off[] = {OFF(symbol, name), OFF(symbol, global)};
  static const size_t clo_off[] = {OFF(closure, params), OFF(closure, body),
                                   OFF(closure, env), OFF(closure, name)};
  static const size_t port_off[] = {OFF(port, name)};
  static const size_t table_off[] = {OFF(table, buckets)};
  static const size_t entry_off[] = {OFF(entry, next), OFF(entry, a), OFF(entry, b)};
  pair_type = typed(sizeof(struct pair), pair_off, 2);
  symbol_type = typed(sizeof(struct symbol), sym_off, 2);
  closure_type = typed(sizeof(struct closure), clo_off, 4);
  port_type = typed(sizeof(struct port), port_off, 1);
  table_type = typed(sizeof(struct table), table_off, 1);
  entry_type = typed(sizeof(struct entry), entry_off, 3);
  tail_type = gc_type_new_traced(trace_tail);
  if (!tail_type) exit(70);
}

void *heap_alloc_typed(size_t n, const gc_type *t) {
  void *p = gc_alloc_typed(n, t);
  if (!p) scheme_error("out of memory (%zu bytes)", n);
  return p;
}

void *heap_alloc_atomic(size_t n) {
  void *p = gc_alloc_atomic(n);
  if (!p) scheme_error("out of memory (%zu bytes)", n);
  return p;
}

val cons(val a, val d) {
  struct pair *p = heap_alloc_typed(sizeof *p, pair_type);
  p->hdr = OBJ_HDR(K_PAIR, 0);
  set_field(&p->car, a);
  set_field(&p->cdr, d);
  return (val)p;
}

val make_flonum(double d) {
  struct flonum *f = heap_alloc_atomic(sizeof *f);
  f->hdr = OBJ_HDR(K_FLONUM, 0);
  f->d = d;
  return (val)f;
}

val make_string_uninit(size_t len) {
  struct string *s = heap_alloc_atomic(sizeof *s + len + 1);
  s->hdr = OBJ_HDR(K_STRING, len);
  s->bytes[len] = '\0';
  return (val)s;
}

val make_string(const char *bytes, size_t len) {
  val s = make_string_uninit(len);
  memcpy(AS(string, s)->bytes, bytes, len);
  return s;
}

/* A symbol is made only by intern (symbol.c); declared there. */
val make_symbol_object(val name);
val make_symbol_object(val name) {
  struct symbol *s = heap_alloc_typed(sizeof *s, symbol_type);
  s->hdr = OBJ_HDR(K_SYMBOL, SF_NONE);
  set_field(&s->name, name);
  set_field(&s->global, UNBOUND);
  return (val)s;
}

val make_vector(size_t n, val fill) {
  if (n > ((size_t)1 << 40)) scheme_error("make-vector: length %zu too large", n);
  struct vector *v = heap_alloc_typed(sizeof *v + n * sizeof(val), tail_type);
  v->hdr = OBJ_HDR(K_VECTOR, n);
  for (size_t i = 0; i < n; i++) set_field(&v->items[i], fill);
  return (val)v;
}

val make_closure(val params, val body, val env, val name) {
  struct closure *c = heap_alloc_typed(sizeof *c, closure_type);
  c->hdr = OBJ_HDR(K_CLOSURE, 0);
  set_field(&c->params, params);
  set_field(&c->body, body);
  set_field(&c->env, env);
  set_field(&c->name, name);
  return (val)c;
}

val make_primitive(prim_fn fn, const char *name, int min_args, int max_args) {
  struct primitive *p = heap_alloc_atomic(sizeof *p);
  p->hdr = OBJ_HDR(K_PRIMITIVE, (unsigned)min_args | (unsigned)max_args << 8);
  p->fn = fn;
  p->name = name;
  return (val)p;
}

/* Slots start as (UNBOUND, UNBOUND); the caller fills them in. */
val make_frame(size_t nslots, val parent) {
  struct frame *f = heap_alloc_typed(sizeof *f + 2 * nslots * sizeof(val), tail_type);
  f->hdr = OBJ_HDR(K_FRAME, nslots);
  set_field(&f->parent, parent);
  set_field(&f->extra, NIL);
  return (val)f;
}

val make_port(FILE *fp, unsigned flags, val name) {
  struct port *p = heap_alloc_typed(sizeof *p, port_type);
  p->hdr = OBJ_HDR(K_PORT, flags);
  p->fp = fp;
  set_field(&p->name, name);
  return (val)p;
}

val make_table(bool weak, size_t nbuckets) {
  val buckets = make_vector(nbuckets, NIL);
  struct table *t = heap_alloc_typed(sizeof *t, table_type);
  t->hdr = OBJ_HDR(K_TABLE, weak ? TABLE_WEAK : 0);
  t->n = 0;
  set_field(&t->buckets, buckets);
  return (val)t;
}

val make_entry(bool ephemeron, val next, val a, val b) {
  struct entry *e = heap_alloc_typed(sizeof *e, entry_type);
  e->hdr = OBJ_HDR(K_ENTRY, ephemeron ? ENTRY_EPHEMERON : 0);
  set_field(&e->next, next);
  set_field(&e->a, a);
  set_field(&e->b, b);
  return (val)e;
}

/* mgc marks a thread's newly allocated objects black a 64-slot word at a
 * time, when the thread moves on from the word (docs/internals.md, "black
 * allocation"), so up to 63 dead objects per size class that were
 * allocated last survive a collection.  (gc) calls this first so that
 * garbage made just before it -- weak table keys, dropped ports -- is
 * really collected: 64 throwaway objects of every small size, typed and
 * atomic, push each class's allocation on to a fresh word. */
#define RETIRE_MAX_BYTES 512
#define RETIRE_SLOTS_PER_WORD 64
void heap_retire_alloc_words(void) {
  for (size_t n = sizeof(void *); n <= RETIRE_MAX_BYTES; n += sizeof(void *)) {
    for (int i = 0; i < RETIRE_SLOTS_PER_WORD; i++) {
      (void)!gc_alloc_typed(n, tail_type);
      (void)!gc_alloc_atomic(n);
    }
  }
}
