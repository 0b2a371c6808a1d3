/*
 * prim_list.c: pairs, lists, vectors, type predicates and equivalence.
 * Mutators (set-car!, vector-set!, ...) and list builders store into heap
 * objects through set_field.
 */
#include <string.h>

#include "scheme.h"

#define UNUSED_ARGC (void)argc

size_t list_length(val l) {
  size_t n = 0;
  val start = l;
  for (; is_pair(l); l = cdr(l)) n++;
  if (l != NIL) scheme_error_val("expected a proper list, got", start);
  return n;
}

val list_from(int n, const val *items) {
  val l = NIL;
  for (int i = n - 1; i >= 0; i--) l = cons(items[i], l);
  return l;
}

bool eqv(val a, val b) {
  if (a == b) return true;
  if (is_flonum(a) && is_flonum(b)) return flonum_value(a) == flonum_value(b);
  return false;
}

bool equal(val a, val b) {
  for (;;) {
    if (eqv(a, b)) return true;
    if (is_pair(a) && is_pair(b)) {
      if (!equal(car(a), car(b))) return false;
      a = cdr(a);
      b = cdr(b);
      continue;
    }
    if (is_string(a) && is_string(b))
      return string_length(a) == string_length(b) &&
             memcmp(AS(string, a)->bytes, AS(string, b)->bytes, string_length(a)) == 0;
    if (is_vector(a) && is_vector(b)) {
      if (vector_length(a) != vector_length(b)) return false;
      for (size_t i = 0; i < vector_length(a); i++)
        if (!equal(AS(vector, a)->items[i], AS(vector, b)->items[i])) return false;
      return true;
    }
    return false;
  }
}

static val check_pair(const char *who, val v) {
  if (!is_pair(v)) type_error(who, "a pair", v);
  return v;
}

static val p_cons(int argc, val *argv) { UNUSED_ARGC; return cons(argv[0], argv[1]); }
static val p_car(int argc, val *argv) { UNUSED_ARGC; return car(check_pair("car", argv[0])); }
static val p_cdr(int argc, val *argv) { UNUSED_ARGC; return cdr(check_pair("cdr", argv[0])); }
static val p_cadr(int argc, val *argv) { UNUSED_ARGC; return car(check_pair("cadr", cdr(check_pair("cadr", argv[0])))); }
static val p_cddr(int argc, val *argv) { UNUSED_ARGC; return cdr(check_pair("cddr", cdr(check_pair("cddr", argv[0])))); }
static val p_caar(int argc, val *argv) { UNUSED_ARGC; return car(check_pair("caar", car(check_pair("caar", argv[0])))); }
static val p_cdar(int argc, val *argv) { UNUSED_ARGC; return cdr(check_pair("cdar", car(check_pair("cdar", argv[0])))); }
static val p_caddr(int argc, val *argv) {
  UNUSED_ARGC;
  return car(check_pair("caddr", cdr(check_pair("caddr", cdr(check_pair("caddr", argv[0]))))));
}
static val p_set_car(int argc, val *argv) {
  UNUSED_ARGC;
  set_field(&AS(pair, check_pair("set-car!", argv[0]))->car, argv[1]);
  return UNSPEC;
}
static val p_set_cdr(int argc, val *argv) {
  UNUSED_ARGC;
  set_field(&AS(pair, check_pair("set-cdr!", argv[0]))->cdr, argv[1]);
  return UNSPEC;
}
static val p_list(int argc, val *argv) { return list_from(argc, argv); }
static val p_length(int argc, val *argv) { UNUSED_ARGC; return make_fixnum((intptr_t)list_length(argv[0])); }

/* Copy every list but the last, which is shared. */
static val p_append(int argc, val *argv) {
  if (argc == 0) return NIL;
  val head = NIL, tail = NIL;
  for (int i = 0; i < argc - 1; i++) {
    list_length(argv[i]);
    for (val l = argv[i]; is_pair(l); l = cdr(l)) {
      val cell = cons(car(l), NIL);
      if (head == NIL) head = cell; else set_field(&AS(pair, tail)->cdr, cell);
      tail = cell;
    }
  }
  if (head == NIL) return argv[argc - 1];
  set_field(&AS(pair, tail)->cdr, argv[argc - 1]);
  return head;
}

static val p_reverse(int argc, val *argv) {
  UNUSED_ARGC;
  list_length(argv[0]);
  val r = NIL;
  for (val l = argv[0]; is_pair(l); l = cdr(l)) r = cons(car(l), r);
  return r;
}

static val p_list_tail(int argc, val *argv) {
  UNUSED_ARGC;
  val l = argv[0];
  for (intptr_t k = check_fixnum("list-tail", argv[1]); k > 0; k--) l = cdr(check_pair("list-tail", l));
  return l;
}
static val p_list_ref(int argc, val *argv) {
  UNUSED_ARGC;
  val l = argv[0];
  for (intptr_t k = check_fixnum("list-ref", argv[1]); k > 0; k--) l = cdr(check_pair("list-ref", l));
  return car(check_pair("list-ref", l));
}

enum eqkind { EQ, EQV, EQUAL };
static bool same(enum eqkind k, val a, val b) { return k == EQ ? a == b : k == EQV ? eqv(a, b) : equal(a, b); }
static val member(enum eqkind k, val x, val l) {
  for (; is_pair(l); l = cdr(l)) if (same(k, x, car(l))) return l;
  return FALSE_V;
}
static val assoc(enum eqkind k, val x, val l) {
  for (; is_pair(l); l = cdr(l)) if (is_pair(car(l)) && same(k, x, car(car(l)))) return car(l);
  return FALSE_V;
}
static val p_memq(int argc, val *argv) { UNUSED_ARGC; return member(EQ, argv[0], argv[1]); }
static val p_memv(int argc, val *argv) { UNUSED_ARGC; return member(EQV, argv[0], argv[1]); }
static val p_member(int argc, val *argv) { UNUSED_ARGC; return member(EQUAL, argv[0], argv[1]); }
static val p_assq(int argc, val *argv) { UNUSED_ARGC; return assoc(EQ, argv[0], argv[1]); }
static val p_assv(int argc, val *argv) { UNUSED_ARGC; return assoc(EQV, argv[0], argv[1]); }
static val p_assoc(int argc, val *argv) { UNUSED_ARGC; return assoc(EQUAL, argv[0], argv[1]); }

/* (map f l1 l2 ...) and (for-each f l1 l2 ...): up to 8 lists, stopping
 * at the shortest.  The lists advance in a C array on the stack. */
#define MAP_MAX_LISTS 8
static val map_or_for_each(const char *who, bool collect, int argc, val *argv) {
  int nl = argc - 1;
  if (nl > MAP_MAX_LISTS) scheme_error("%s: at most %d lists", who, MAP_MAX_LISTS);
  val lists[MAP_MAX_LISTS], args[MAP_MAX_LISTS];
  for (int i = 0; i < nl; i++) lists[i] = argv[i + 1];
  val head = NIL, tail = NIL;
  for (;;) {
    for (int i = 0; i < nl; i++) {
      if (!is_pair(lists[i])) return collect ? head : UNSPEC;
      args[i] = car(lists[i]);
      lists[i] = cdr(lists[i]);
    }
    val r = apply_procedure(argv[0], nl, args);
    if (!collect) continue;
    val cell = cons(r, NIL);
    if (head == NIL) head = cell; else set_field(&AS(pair, tail)->cdr, cell);
    tail = cell;
  }
}
static val p_map(int argc, val *argv) { return map_or_for_each("map", true, argc, argv); }
static val p_for_each(int argc, val *argv) { return map_or_for_each("for-each", false, argc, argv); }

/* ---- vectors ------------------------------------------------------------------ */

static val check_vector(const char *who, val v) {
  if (!is_vector(v)) type_error(who, "a vector", v);
  return v;
}

size_t check_index(const char *who, val v, size_t limit) {
  intptr_t k = check_fixnum(who, v);
  if (k < 0 || (size_t)k >= limit) scheme_error("%s: index %ld out of range [0, %zu)", who, (long)k, limit);
  return (size_t)k;
}

static val p_make_vector(int argc, val *argv) {
  intptr_t n = check_fixnum("make-vector", argv[0]);
  if (n < 0) scheme_error("make-vector: negative length");
  return make_vector((size_t)n, argc > 1 ? argv[1] : FALSE_V);
}
static val p_vector(int argc, val *argv) {
  val v = make_vector((size_t)argc, FALSE_V);
  for (int i = 0; i < argc; i++) set_field(&AS(vector, v)->items[i], argv[i]);
  return v;
}
static val p_vector_length(int argc, val *argv) {
  UNUSED_ARGC;
  return make_fixnum((intptr_t)vector_length(check_vector("vector-length", argv[0])));
}
static val p_vector_ref(int argc, val *argv) {
  UNUSED_ARGC;
  val v = check_vector("vector-ref", argv[0]);
  return AS(vector, v)->items[check_index("vector-ref", argv[1], vector_length(v))];
}
static val p_vector_set(int argc, val *argv) {
  UNUSED_ARGC;
  val v = check_vector("vector-set!", argv[0]);
  set_field(&AS(vector, v)->items[check_index("vector-set!", argv[1], vector_length(v))], argv[2]);
  return UNSPEC;
}
static val p_vector_fill(int argc, val *argv) {
  UNUSED_ARGC;
  val v = check_vector("vector-fill!", argv[0]);
  for (size_t i = 0; i < vector_length(v); i++) set_field(&AS(vector, v)->items[i], argv[1]);
  return UNSPEC;
}
static val p_vector_to_list(int argc, val *argv) {
  UNUSED_ARGC;
  val v = check_vector("vector->list", argv[0]);
  val l = NIL;
  for (size_t i = vector_length(v); i > 0; i--) l = cons(AS(vector, v)->items[i - 1], l);
  return l;
}
static val p_list_to_vector(int argc, val *argv) {
  UNUSED_ARGC;
  val l = argv[0];
  val v = make_vector(list_length(l), FALSE_V);
  for (size_t i = 0; is_pair(l); i++, l = cdr(l)) set_field(&AS(vector, v)->items[i], car(l));
  return v;
}
/* (vector-grow v n): a longer copy, the new tail #f.  gc_copy_pointers
 * copies the old items with the barrier applied. */
static val p_vector_grow(int argc, val *argv) {
  UNUSED_ARGC;
  val v = check_vector("vector-grow", argv[0]);
  intptr_t n = check_fixnum("vector-grow", argv[1]);
  if (n < (intptr_t)vector_length(v)) scheme_error("vector-grow: new length %ld is shorter", (long)n);
  val w = make_vector((size_t)n, FALSE_V);
  gc_copy_pointers(AS(vector, w)->items, AS(vector, v)->items, vector_length(v));
  return w;
}

/* ---- predicates ---------------------------------------------------------------- */

static val p_eq(int argc, val *argv) { UNUSED_ARGC; return make_bool(argv[0] == argv[1]); }
static val p_eqv(int argc, val *argv) { UNUSED_ARGC; return make_bool(eqv(argv[0], argv[1])); }
static val p_equal(int argc, val *argv) { UNUSED_ARGC; return make_bool(equal(argv[0], argv[1])); }
static val p_not(int argc, val *argv) { UNUSED_ARGC; return make_bool(argv[0] == FALSE_V); }
static val p_nullp(int argc, val *argv) { UNUSED_ARGC; return make_bool(argv[0] == NIL); }
static val p_pairp(int argc, val *argv) { UNUSED_ARGC; return make_bool(is_pair(argv[0])); }
static val p_listp(int argc, val *argv) {
  UNUSED_ARGC;
  val slow = argv[0], fast = argv[0];
  for (;;) {   /* Floyd: a circular list is not a list */
    if (fast == NIL) return TRUE_V;
    if (!is_pair(fast)) return FALSE_V;
    fast = cdr(fast);
    if (fast == NIL) return TRUE_V;
    if (!is_pair(fast)) return FALSE_V;
    fast = cdr(fast);
    slow = cdr(slow);
    if (fast == slow) return FALSE_V;
  }
}
static val p_symbolp(int argc, val *argv) { UNUSED_ARGC; return make_bool(is_symbol(argv[0])); }
static val p_vectorp(int argc, val *argv) { UNUSED_ARGC; return make_bool(is_vector(argv[0])); }
static val p_procedurep(int argc, val *argv) { UNUSED_ARGC; return make_bool(is_procedure(argv[0])); }
static val p_booleanp(int argc, val *argv) { UNUSED_ARGC; return make_bool(argv[0] == TRUE_V || argv[0] == FALSE_V); }

void prim_list_init(void) {
  defprim("cons", p_cons, 2, 2);
  defprim("car", p_car, 1, 1);
  defprim("cdr", p_cdr, 1, 1);
  defprim("cadr", p_cadr, 1, 1);
  defprim("cddr", p_cddr, 1, 1);
  defprim("caar", p_caar, 1, 1);
  defprim("cdar", p_cdar, 1, 1);
  defprim("caddr", p_caddr, 1, 1);
  defprim("set-car!", p_set_car, 2, 2);
  defprim("set-cdr!", p_set_cdr, 2, 2);
  defprim("list", p_list, 0, ANY_ARGS);
  defprim("length", p_length, 1, 1);
  defprim("append", p_append, 0, ANY_ARGS);
  defprim("reverse", p_reverse, 1, 1);
  defprim("list-tail", p_list_tail, 2, 2);
  defprim("list-ref", p_list_ref, 2, 2);
  defprim("memq", p_memq, 2, 2);
  defprim("memv", p_memv, 2, 2);
  defprim("member", p_member, 2, 2);
  defprim("assq", p_assq, 2, 2);
  defprim("assv", p_assv, 2, 2);
  defprim("assoc", p_assoc, 2, 2);
  defprim("map", p_map, 2, ANY_ARGS);
  defprim("for-each", p_for_each, 2, ANY_ARGS);
  defprim("make-vector", p_make_vector, 1, 2);
  defprim("vector", p_vector, 0, ANY_ARGS);
  defprim("vector-length", p_vector_length, 1, 1);
  defprim("vector-ref", p_vector_ref, 2, 2);
  defprim("vector-set!", p_vector_set, 3, 3);
  defprim("vector-fill!", p_vector_fill, 2, 2);
  defprim("vector->list", p_vector_to_list, 1, 1);
  defprim("list->vector", p_list_to_vector, 1, 1);
  defprim("vector-grow", p_vector_grow, 2, 2);
  defprim("eq?", p_eq, 2, 2);
  defprim("eqv?", p_eqv, 2, 2);
  defprim("equal?", p_equal, 2, 2);
  defprim("not", p_not, 1, 1);
  defprim("null?", p_nullp, 1, 1);
  defprim("pair?", p_pairp, 1, 1);
  defprim("list?", p_listp, 1, 1);
  defprim("symbol?", p_symbolp, 1, 1);
  defprim("vector?", p_vectorp, 1, 1);
  defprim("procedure?", p_procedurep, 1, 1);
  defprim("boolean?", p_booleanp, 1, 1);
}
