/*
 * prim_num.c: numbers.  Integers are fixnums; an operation whose result
 * does not fit a fixnum (checked with the compiler's overflow builtins)
 * gives a flonum instead, as does any operation with a flonum argument.
 * Numbers hold no pointers: flonums are atomic objects.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "scheme.h"

void print_flonum(FILE *out, double d);

static double to_double(const char *who, val v) {
  if (is_fixnum(v)) return (double)fixnum_value(v);
  if (is_flonum(v)) return flonum_value(v);
  type_error(who, "a number", v);
}

intptr_t check_fixnum(const char *who, val v) {
  if (!is_fixnum(v)) type_error(who, "an integer", v);
  return fixnum_value(v);
}

static val make_integer(intptr_t n) {
  if (n < FIXNUM_MIN || n > FIXNUM_MAX) return make_flonum((double)n);
  return make_fixnum(n);
}

enum op { OP_ADD, OP_SUB, OP_MUL };

static val arith2(enum op op, const char *who, val a, val b) {
  if (is_fixnum(a) && is_fixnum(b)) {
    intptr_t x = fixnum_value(a), y = fixnum_value(b), r;
    bool overflow = op == OP_ADD ? __builtin_add_overflow(x, y, &r)
                  : op == OP_SUB ? __builtin_sub_overflow(x, y, &r)
                                 : __builtin_mul_overflow(x, y, &r);
    if (!overflow) return make_integer(r);
  }
  double x = to_double(who, a), y = to_double(who, b);
  return make_flonum(op == OP_ADD ? x + y : op == OP_SUB ? x - y : x * y);
}

static val p_add(int argc, val *argv) {
  val acc = make_fixnum(0);
  for (int i = 0; i < argc; i++) acc = arith2(OP_ADD, "+", acc, argv[i]);
  return acc;
}

static val p_mul(int argc, val *argv) {
  val acc = make_fixnum(1);
  for (int i = 0; i < argc; i++) acc = arith2(OP_MUL, "*", acc, argv[i]);
  return acc;
}

static val p_sub(int argc, val *argv) {
  if (argc == 1) return arith2(OP_SUB, "-", make_fixnum(0), argv[0]);
  val acc = argv[0];
  for (int i = 1; i < argc; i++) acc = arith2(OP_SUB, "-", acc, argv[i]);
  return acc;
}

static val p_div(int argc, val *argv) {
  val acc = argc == 1 ? make_fixnum(1) : argv[0];
  for (int i = argc == 1 ? 0 : 1; i < argc; i++) {
    val b = argv[i];
    if (is_fixnum(acc) && is_fixnum(b) && fixnum_value(b) != 0 &&
        fixnum_value(acc) % fixnum_value(b) == 0) {
      acc = make_integer(fixnum_value(acc) / fixnum_value(b));
      continue;
    }
    double y = to_double("/", b);
    if (y == 0 && is_fixnum(b)) scheme_error("/: division by zero");
    acc = make_flonum(to_double("/", acc) / y);
  }
  return acc;
}

enum divop { DIV_QUOTIENT, DIV_REMAINDER, DIV_MODULO };
static val integer_division(enum divop op, const char *who, val a, val b) {
  intptr_t x = check_fixnum(who, a), y = check_fixnum(who, b);
  if (y == 0) scheme_error("%s: division by zero", who);
  if (op == DIV_QUOTIENT) return make_integer(x / y);   /* FIXNUM_MIN / -1 fits intptr_t */
  intptr_t r = x % y;
  if (op == DIV_MODULO && r != 0 && ((r < 0) != (y < 0))) r += y;
  return make_fixnum(r);
}
static val p_quotient(int argc, val *argv) { (void)argc; return integer_division(DIV_QUOTIENT, "quotient", argv[0], argv[1]); }
static val p_remainder(int argc, val *argv) { (void)argc; return integer_division(DIV_REMAINDER, "remainder", argv[0], argv[1]); }
static val p_modulo(int argc, val *argv) { (void)argc; return integer_division(DIV_MODULO, "modulo", argv[0], argv[1]); }

/* -1, 0, 1 */
static int compare(const char *who, val a, val b) {
  if (is_fixnum(a) && is_fixnum(b)) {
    intptr_t x = fixnum_value(a), y = fixnum_value(b);
    return (x > y) - (x < y);
  }
  double x = to_double(who, a), y = to_double(who, b);
  return (x > y) - (x < y);
}

enum cmp { CMP_EQ, CMP_LT, CMP_GT, CMP_LE, CMP_GE };
static val compare_chain(enum cmp cmp, const char *who, int argc, val *argv) {
  for (int i = 0; i + 1 < argc; i++) {
    int c = compare(who, argv[i], argv[i + 1]);
    bool ok = cmp == CMP_EQ ? c == 0 : cmp == CMP_LT ? c < 0 : cmp == CMP_GT ? c > 0 : cmp == CMP_LE ? c <= 0 : c >= 0;
    if (!ok) return FALSE_V;
  }
  if (argc == 1) to_double(who, argv[0]);
  return TRUE_V;
}
static val p_num_eq(int argc, val *argv) { return compare_chain(CMP_EQ, "=", argc, argv); }
static val p_lt(int argc, val *argv) { return compare_chain(CMP_LT, "<", argc, argv); }
static val p_gt(int argc, val *argv) { return compare_chain(CMP_GT, ">", argc, argv); }
static val p_le(int argc, val *argv) { return compare_chain(CMP_LE, "<=", argc, argv); }
static val p_ge(int argc, val *argv) { return compare_chain(CMP_GE, ">=", argc, argv); }

static val p_min(int argc, val *argv) {
  val best = argv[0];
  bool inexact = is_flonum(best);
  for (int i = 1; i < argc; i++) {
    inexact |= is_flonum(argv[i]);
    if (compare("min", argv[i], best) < 0) best = argv[i];
  }
  return inexact && is_fixnum(best) ? make_flonum((double)fixnum_value(best)) : best;
}
static val p_max(int argc, val *argv) {
  val best = argv[0];
  bool inexact = is_flonum(best);
  for (int i = 1; i < argc; i++) {
    inexact |= is_flonum(argv[i]);
    if (compare("max", argv[i], best) > 0) best = argv[i];
  }
  return inexact && is_fixnum(best) ? make_flonum((double)fixnum_value(best)) : best;
}

static val p_abs(int argc, val *argv) {
  (void)argc;
  if (is_fixnum(argv[0])) return make_integer(labs((long)fixnum_value(argv[0])));
  return make_flonum(fabs(to_double("abs", argv[0])));
}

static val p_numberp(int argc, val *argv) { (void)argc; return make_bool(is_number(argv[0])); }
static val p_integerp(int argc, val *argv) {
  (void)argc;
  return make_bool(is_fixnum(argv[0]) || (is_flonum(argv[0]) && flonum_value(argv[0]) == floor(flonum_value(argv[0]))));
}
static val p_exactp(int argc, val *argv) { (void)argc; to_double("exact?", argv[0]); return make_bool(is_fixnum(argv[0])); }
static val p_inexactp(int argc, val *argv) { (void)argc; to_double("inexact?", argv[0]); return make_bool(is_flonum(argv[0])); }
static val p_zerop(int argc, val *argv) { (void)argc; return make_bool(to_double("zero?", argv[0]) == 0); }
static val p_positivep(int argc, val *argv) { (void)argc; return make_bool(to_double("positive?", argv[0]) > 0); }
static val p_negativep(int argc, val *argv) { (void)argc; return make_bool(to_double("negative?", argv[0]) < 0); }
static val p_oddp(int argc, val *argv) { (void)argc; return make_bool(check_fixnum("odd?", argv[0]) & 1); }
static val p_evenp(int argc, val *argv) { (void)argc; return make_bool(!(check_fixnum("even?", argv[0]) & 1)); }

static val p_exact_to_inexact(int argc, val *argv) { (void)argc; return make_flonum(to_double("exact->inexact", argv[0])); }
static val p_inexact_to_exact(int argc, val *argv) {
  (void)argc;
  if (is_fixnum(argv[0])) return argv[0];
  double d = to_double("inexact->exact", argv[0]);
  if (d != floor(d) || d < (double)FIXNUM_MIN || d > (double)FIXNUM_MAX)
    scheme_error_val("inexact->exact: no exact integer for", argv[0]);
  return make_fixnum((intptr_t)d);
}

static val rounding(const char *who, val v, double (*fn)(double)) {
  if (is_fixnum(v)) return v;
  return make_flonum(fn(to_double(who, v)));
}
static val p_floor(int argc, val *argv) { (void)argc; return rounding("floor", argv[0], floor); }
static val p_ceiling(int argc, val *argv) { (void)argc; return rounding("ceiling", argv[0], ceil); }
static val p_round(int argc, val *argv) { (void)argc; return rounding("round", argv[0], nearbyint); }
static val p_truncate(int argc, val *argv) { (void)argc; return rounding("truncate", argv[0], trunc); }

static val p_sqrt(int argc, val *argv) {
  (void)argc;
  if (is_fixnum(argv[0]) && fixnum_value(argv[0]) >= 0) {
    intptr_t n = fixnum_value(argv[0]), r = (intptr_t)sqrt((double)n);
    while (r * r > n) r--;
    while ((r + 1) * (r + 1) <= n) r++;
    if (r * r == n) return make_fixnum(r);
  }
  return make_flonum(sqrt(to_double("sqrt", argv[0])));
}

static val p_expt(int argc, val *argv) {
  (void)argc;
  if (is_fixnum(argv[0]) && is_fixnum(argv[1]) && fixnum_value(argv[1]) >= 0) {
    val acc = make_fixnum(1), base = argv[0];
    for (intptr_t e = fixnum_value(argv[1]); e > 0; e--) acc = arith2(OP_MUL, "expt", acc, base);
    return acc;
  }
  return make_flonum(pow(to_double("expt", argv[0]), to_double("expt", argv[1])));
}

static val p_number_to_string(int argc, val *argv) {
  (void)argc;
  char *text = NULL;
  size_t len = 0;
  FILE *mem = open_memstream(&text, &len);
  if (!mem) scheme_error("number->string: out of memory");
  if (is_fixnum(argv[0])) fprintf(mem, "%ld", (long)fixnum_value(argv[0]));
  else print_flonum(mem, to_double("number->string", argv[0]));
  fclose(mem);
  val s = make_string(text, len);
  free(text);
  return s;
}

static val p_string_to_number(int argc, val *argv) {
  (void)argc;
  if (!is_string(argv[0])) type_error("string->number", "a string", argv[0]);
  const char *s = AS(string, argv[0])->bytes;
  char *end;
  long long n = strtoll(s, &end, 10);
  if (*s && *end == '\0' && n >= FIXNUM_MIN && n <= FIXNUM_MAX) return make_fixnum((intptr_t)n);
  double d = strtod(s, &end);
  if (*s && *end == '\0' && strpbrk(s, "0123456789")) return make_flonum(d);
  return FALSE_V;
}

void prim_num_init(void) {
  defprim("+", p_add, 0, ANY_ARGS);
  defprim("-", p_sub, 1, ANY_ARGS);
  defprim("*", p_mul, 0, ANY_ARGS);
  defprim("/", p_div, 1, ANY_ARGS);
  defprim("quotient", p_quotient, 2, 2);
  defprim("remainder", p_remainder, 2, 2);
  defprim("modulo", p_modulo, 2, 2);
  defprim("=", p_num_eq, 1, ANY_ARGS);
  defprim("<", p_lt, 1, ANY_ARGS);
  defprim(">", p_gt, 1, ANY_ARGS);
  defprim("<=", p_le, 1, ANY_ARGS);
  defprim(">=", p_ge, 1, ANY_ARGS);
  defprim("min", p_min, 1, ANY_ARGS);
  defprim("max", p_max, 1, ANY_ARGS);
  defprim("abs", p_abs, 1, 1);
  defprim("number?", p_numberp, 1, 1);
  defprim("integer?", p_integerp, 1, 1);
  defprim("exact?", p_exactp, 1, 1);
  defprim("inexact?", p_inexactp, 1, 1);
  defprim("zero?", p_zerop, 1, 1);
  defprim("positive?", p_positivep, 1, 1);
  defprim("negative?", p_negativep, 1, 1);
  defprim("odd?", p_oddp, 1, 1);
  defprim("even?", p_evenp, 1, 1);
  defprim("exact->inexact", p_exact_to_inexact, 1, 1);
  defprim("inexact->exact", p_inexact_to_exact, 1, 1);
  defprim("floor", p_floor, 1, 1);
  defprim("ceiling", p_ceiling, 1, 1);
  defprim("round", p_round, 1, 1);
  defprim("truncate", p_truncate, 1, 1);
  defprim("sqrt", p_sqrt, 1, 1);
  defprim("expt", p_expt, 2, 2);
  defprim("number->string", p_number_to_string, 1, 1);
  defprim("string->number", p_string_to_number, 1, 1);
}
