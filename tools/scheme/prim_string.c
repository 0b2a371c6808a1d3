/*
 * prim_string.c: strings, characters and symbol names.  Strings are atomic
 * objects (no pointers), so filling or mutating their bytes needs no
 * barrier; string builders that return lists still use set_field.
 */
#include <ctype.h>
#include <string.h>

#include "scheme.h"

#define UNUSED_ARGC (void)argc

static val check_string(const char *who, val v) {
  if (!is_string(v)) type_error(who, "a string", v);
  return v;
}
static unsigned check_char(const char *who, val v) {
  if (!is_char(v)) type_error(who, "a character", v);
  return char_value(v);
}
static const char *bytes(val s) { return AS(string, s)->bytes; }

static val p_stringp(int argc, val *argv) { UNUSED_ARGC; return make_bool(is_string(argv[0])); }
static val p_charp(int argc, val *argv) { UNUSED_ARGC; return make_bool(is_char(argv[0])); }
static val p_string_length(int argc, val *argv) {
  UNUSED_ARGC;
  return make_fixnum((intptr_t)string_length(check_string("string-length", argv[0])));
}
static val p_string_ref(int argc, val *argv) {
  UNUSED_ARGC;
  val s = check_string("string-ref", argv[0]);
  return make_char((unsigned char)bytes(s)[check_index("string-ref", argv[1], string_length(s))]);
}
static val p_string_set(int argc, val *argv) {
  UNUSED_ARGC;
  val s = check_string("string-set!", argv[0]);
  AS(string, s)->bytes[check_index("string-set!", argv[1], string_length(s))] = (char)check_char("string-set!", argv[2]);
  return UNSPEC;
}
static val p_make_string(int argc, val *argv) {
  intptr_t n = check_fixnum("make-string", argv[0]);
  if (n < 0) scheme_error("make-string: negative length");
  val s = make_string_uninit((size_t)n);
  memset(AS(string, s)->bytes, argc > 1 ? (int)check_char("make-string", argv[1]) : ' ', (size_t)n);
  return s;
}
static val p_string(int argc, val *argv) {
  val s = make_string_uninit((size_t)argc);
  for (int i = 0; i < argc; i++) AS(string, s)->bytes[i] = (char)check_char("string", argv[i]);
  return s;
}
static val p_substring(int argc, val *argv) {
  val s = check_string("substring", argv[0]);
  size_t len = string_length(s);
  size_t start = check_index("substring", argv[1], len + 1);
  size_t end = argc > 2 ? check_index("substring", argv[2], len + 1) : len;
  if (end < start) scheme_error("substring: end %zu before start %zu", end, start);
  return make_string(bytes(s) + start, end - start);
}
static val p_string_append(int argc, val *argv) {
  size_t total = 0;
  for (int i = 0; i < argc; i++) total += string_length(check_string("string-append", argv[i]));
  val s = make_string_uninit(total);
  char *p = AS(string, s)->bytes;
  for (int i = 0; i < argc; i++) {
    memcpy(p, bytes(argv[i]), string_length(argv[i]));
    p += string_length(argv[i]);
  }
  return s;
}
static val p_string_copy(int argc, val *argv) {
  UNUSED_ARGC;
  val s = check_string("string-copy", argv[0]);
  return make_string(bytes(s), string_length(s));
}

static int string_compare(const char *who, val a, val b) {
  check_string(who, a);
  check_string(who, b);
  size_t la = string_length(a), lb = string_length(b);
  int c = memcmp(bytes(a), bytes(b), la < lb ? la : lb);
  return c ? c : (la > lb) - (la < lb);
}
static val p_string_eq(int argc, val *argv) { UNUSED_ARGC; return make_bool(string_compare("string=?", argv[0], argv[1]) == 0); }
static val p_string_lt(int argc, val *argv) { UNUSED_ARGC; return make_bool(string_compare("string<?", argv[0], argv[1]) < 0); }
static val p_string_gt(int argc, val *argv) { UNUSED_ARGC; return make_bool(string_compare("string>?", argv[0], argv[1]) > 0); }

static val p_string_to_list(int argc, val *argv) {
  UNUSED_ARGC;
  val s = check_string("string->list", argv[0]);
  val l = NIL;
  for (size_t i = string_length(s); i > 0; i--) l = cons(make_char((unsigned char)bytes(s)[i - 1]), l);
  return l;
}
static val p_list_to_string(int argc, val *argv) {
  UNUSED_ARGC;
  val l = argv[0];
  val s = make_string_uninit(list_length(l));
  for (size_t i = 0; is_pair(l); i++, l = cdr(l)) AS(string, s)->bytes[i] = (char)check_char("list->string", car(l));
  return s;
}
static val change_case(const char *who, val s, int (*fn)(int)) {
  check_string(who, s);
  val r = make_string(bytes(s), string_length(s));
  for (size_t i = 0; i < string_length(r); i++) AS(string, r)->bytes[i] = (char)fn((unsigned char)bytes(r)[i]);
  return r;
}
static val p_string_upcase(int argc, val *argv) { UNUSED_ARGC; return change_case("string-upcase", argv[0], toupper); }
static val p_string_downcase(int argc, val *argv) { UNUSED_ARGC; return change_case("string-downcase", argv[0], tolower); }

/* (string-index s ch): the first index of ch in s, or #f. */
static val p_string_index(int argc, val *argv) {
  UNUSED_ARGC;
  val s = check_string("string-index", argv[0]);
  unsigned c = check_char("string-index", argv[1]);
  const char *hit = memchr(bytes(s), (int)c, string_length(s));
  return hit ? make_fixnum(hit - bytes(s)) : FALSE_V;
}

static val p_symbol_to_string(int argc, val *argv) {
  UNUSED_ARGC;
  if (!is_symbol(argv[0])) type_error("symbol->string", "a symbol", argv[0]);
  val name = AS(symbol, argv[0])->name;
  return make_string(bytes(name), string_length(name));   /* a copy: names are immutable */
}
static val p_string_to_symbol(int argc, val *argv) {
  UNUSED_ARGC;
  val s = check_string("string->symbol", argv[0]);
  return intern(bytes(s), string_length(s));
}

static val p_char_to_integer(int argc, val *argv) { UNUSED_ARGC; return make_fixnum(check_char("char->integer", argv[0])); }
static val p_integer_to_char(int argc, val *argv) {
  UNUSED_ARGC;
  intptr_t n = check_fixnum("integer->char", argv[0]);
  if (n < 0 || n > 255) scheme_error("integer->char: %ld is not a byte", (long)n);
  return make_char((unsigned)n);
}
static val p_char_eq(int argc, val *argv) { UNUSED_ARGC; return make_bool(check_char("char=?", argv[0]) == check_char("char=?", argv[1])); }
static val p_char_lt(int argc, val *argv) { UNUSED_ARGC; return make_bool(check_char("char<?", argv[0]) < check_char("char<?", argv[1])); }
static val p_char_upcase(int argc, val *argv) { UNUSED_ARGC; return make_char((unsigned)toupper((int)check_char("char-upcase", argv[0]))); }
static val p_char_downcase(int argc, val *argv) { UNUSED_ARGC; return make_char((unsigned)tolower((int)check_char("char-downcase", argv[0]))); }
static val p_char_alphabetic(int argc, val *argv) { UNUSED_ARGC; return make_bool(isalpha((int)check_char("char-alphabetic?", argv[0]))); }
static val p_char_numeric(int argc, val *argv) { UNUSED_ARGC; return make_bool(isdigit((int)check_char("char-numeric?", argv[0]))); }
static val p_char_whitespace(int argc, val *argv) { UNUSED_ARGC; return make_bool(isspace((int)check_char("char-whitespace?", argv[0]))); }

void prim_string_init(void) {
  defprim("string?", p_stringp, 1, 1);
  defprim("char?", p_charp, 1, 1);
  defprim("string-length", p_string_length, 1, 1);
  defprim("string-ref", p_string_ref, 2, 2);
  defprim("string-set!", p_string_set, 3, 3);
  defprim("make-string", p_make_string, 1, 2);
  defprim("string", p_string, 0, ANY_ARGS);
  defprim("substring", p_substring, 2, 3);
  defprim("string-append", p_string_append, 0, ANY_ARGS);
  defprim("string-copy", p_string_copy, 1, 1);
  defprim("string=?", p_string_eq, 2, 2);
  defprim("string<?", p_string_lt, 2, 2);
  defprim("string>?", p_string_gt, 2, 2);
  defprim("string->list", p_string_to_list, 1, 1);
  defprim("list->string", p_list_to_string, 1, 1);
  defprim("string-upcase", p_string_upcase, 1, 1);
  defprim("string-downcase", p_string_downcase, 1, 1);
  defprim("string-index", p_string_index, 2, 2);
  defprim("symbol->string", p_symbol_to_string, 1, 1);
  defprim("string->symbol", p_string_to_symbol, 1, 1);
  defprim("char->integer", p_char_to_integer, 1, 1);
  defprim("integer->char", p_integer_to_char, 1, 1);
  defprim("char=?", p_char_eq, 2, 2);
  defprim("char<?", p_char_lt, 2, 2);
  defprim("char-upcase", p_char_upcase, 1, 1);
  defprim("char-downcase", p_char_downcase, 1, 1);
  defprim("char-alphabetic?", p_char_alphabetic, 1, 1);
  defprim("char-numeric?", p_char_numeric, 1, 1);
  defprim("char-whitespace?", p_char_whitespace, 1, 1);
}
