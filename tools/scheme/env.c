/*
 * env.c: environments.
 *
 * The global environment is the symbols themselves: each symbol's `global`
 * field holds its top-level value (UNBOUND until defined).  A local
 * environment is a chain of frames (value.h, struct frame): the slots made
 * when a procedure is called or a let is entered, as (symbol, value) pairs
 * of words, plus an `extra` alist of bindings that internal defines add
 * later.  env == NIL means "global only".
 *
 * Every store into a frame slot, a binding pair or a symbol's global field
 * is a heap store and goes through set_field.
 */
#include "scheme.h"

static val *frame_find(val f, val sym) {
  struct frame *fr = AS(frame, f);
  size_t n = HDR_COUNT(fr->hdr);
  for (size_t i = 0; i < n; i++)
    if (fr->slots[2 * i] == sym) return &fr->slots[2 * i + 1];
  for (val l = fr->extra; l != NIL; l = cdr(l))
    if (car(car(l)) == sym) return &AS(pair, car(l))->cdr;
  return NULL;
}

val *env_lookup_slot(val env, val sym) {
  for (; env != NIL; env = AS(frame, env)->parent) {
    val *slot = frame_find(env, sym);
    if (slot) return slot;
  }
  val *g = &AS(symbol, sym)->global;
  return *g == UNBOUND ? NULL : g;
}

val env_lookup(val env, val sym) {
  val *slot = env_lookup_slot(env, sym);
  if (!slot) scheme_error("unbound variable: %s", symbol_name(sym));
  if (*slot == UNBOUND) scheme_error("variable used before its definition: %s", symbol_name(sym));
  return *slot;
}

void env_define(val env, val sym, val value) {
  if (env == NIL) {
    set_field(&AS(symbol, sym)->global, value);
    return;
  }
  val *slot = frame_find(env, sym);
  if (slot) {
    set_field(slot, value);
    return;
  }
  val binding = cons(sym, value);
  set_field(&AS(frame, env)->extra, cons(binding, AS(frame, env)->extra));
}

void define_global(const char *name, val value) {
  env_define(NIL, intern_cstr(name), value);
}
