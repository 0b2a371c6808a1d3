/*
 * symbol.c: interned symbols.
 *
 * The symbol table is a heap vector (R.symtab, a root) of buckets, each a
 * list of symbols.  Interned symbols are never collected: the table holds
 * them.  The table doubles when it holds twice as many symbols as buckets;
 * the new vector is filled with set_field like any heap object before it
 * replaces the old one in R.
 */
#include <string.h>

#include "scheme.h"

val make_symbol_object(val name);

static size_t nsymbols;

static size_t hash_bytes(const char *s, size_t len) {
  size_t h = 1469598103934665603u;   /* FNV-1a */
  for (size_t i = 0; i < len; i++) h = (h ^ (unsigned char)s[i]) * 1099511628211u;
  return h;
}

static void symtab_grow(void) {
  size_t old_n = vector_length(R.symtab), n = old_n * 2;
  val table = make_vector(n, NIL);
  for (size_t i = 0; i < old_n; i++) {
    for (val l = AS(vector, R.symtab)->items[i]; l != NIL; l = cdr(l)) {
      val sym = car(l);
      val name = AS(symbol, sym)->name;
      size_t b = hash_bytes(AS(string, name)->bytes, string_length(name)) % n;
      set_field(&AS(vector, table)->items[b], cons(sym, AS(vector, table)->items[b]));
    }
  }
  R.symtab = table;
}

val intern(const char *name, size_t len) {
  if (R.symtab == 0) R.symtab = make_vector(256, NIL);
  size_t n = vector_length(R.symtab);
  size_t b = hash_bytes(name, len) % n;
  for (val l = AS(vector, R.symtab)->items[b]; l != NIL; l = cdr(l)) {
    val s = AS(symbol, car(l))->name;
    if (string_length(s) == len && memcmp(AS(string, s)->bytes, name, len) == 0) return car(l);
  }
  val sym = make_symbol_object(make_string(name, len));
  val *bucket = &AS(vector, R.symtab)->items[b];
  set_field(bucket, cons(sym, *bucket));
  if (++nsymbols > 2 * n) symtab_grow();
  return sym;
}

val intern_cstr(const char *name) { return intern(name, strlen(name)); }
