/*
 * printer.c: the external representation of values, for display (strings
 * and characters raw) and write (readable: quoted strings, #\ characters).
 * Printing reads the heap and never allocates, so it is safe inside error
 * reporting.
 */
#include <math.h>
#include <string.h>

#include "scheme.h"

static void print_string(FILE *out, val s, bool write) {
  const char *b = AS(string, s)->bytes;
  size_t n = string_length(s);
  if (!write) {
    fwrite(b, 1, n, out);
    return;
  }
  putc('"', out);
  for (size_t i = 0; i < n; i++) {
    switch (b[i]) {
    case '"': fputs("\\\"", out); break;
    case '\\': fputs("\\\\", out); break;
    case '\n': fputs("\\n", out); break;
    case '\t': fputs("\\t", out); break;
    default: putc(b[i], out);
    }
  }
  putc('"', out);
}

static void print_char(FILE *out, unsigned c, bool write) {
  if (!write) { putc((int)c, out); return; }
  switch (c) {
  case ' ': fputs("#\\space", out); break;
  case '\n': fputs("#\\newline", out); break;
  case '\t': fputs("#\\tab", out); break;
  case 0: fputs("#\\nul", out); break;
  default: fprintf(out, "#\\%c", (int)c);
  }
}

/* Shortest form that reads back as the same double, with a ".0" when it
 * would otherwise look like an integer. */
void print_flonum(FILE *out, double d);
void print_flonum(FILE *out, double d) {
  if (isnan(d)) { fputs("+nan.0", out); return; }
  if (isinf(d)) { fputs(d > 0 ? "+inf.0" : "-inf.0", out); return; }
  char buf[40];
  for (int prec = 1; prec <= 17; prec++) {
    snprintf(buf, sizeof buf, "%.*g", prec, d);
    if (strtod(buf, NULL) == d) break;
  }
  fputs(buf, out);
  if (!strpbrk(buf, ".e")) fputs(".0", out);
}

static void print_imm(FILE *out, val v) {
  if (v == NIL) fputs("()", out);
  else if (v == TRUE_V) fputs("#t", out);
  else if (v == FALSE_V) fputs("#f", out);
  else if (v == EOF_V) fputs("#<eof>", out);
  else if (v == UNBOUND) fputs("#<unbound>", out);
  else fputs("#<unspecified>", out);
}

static void print_list(FILE *out, val v, bool write) {
  putc('(', out);
  for (bool first = true; ; first = false) {
    if (!first) putc(' ', out);
    print_value(out, car(v), write);
    v = cdr(v);
    if (v == NIL) break;
    if (!is_pair(v)) {
      fputs(" . ", out);
      print_value(out, v, write);
      break;
    }
  }
  putc(')', out);
}

void print_value(FILE *out, val v, bool write) {
  if (is_fixnum(v)) { fprintf(out, "%ld", (long)fixnum_value(v)); return; }
  if (is_char(v)) { print_char(out, char_value(v), write); return; }
  if (!is_ptr(v)) { print_imm(out, v); return; }
  switch (HDR_KIND(as_obj(v)->hdr)) {
  case K_PAIR: print_list(out, v, write); break;
  case K_FLONUM: print_flonum(out, flonum_value(v)); break;
  case K_STRING: print_string(out, v, write); break;
  case K_SYMBOL: fputs(symbol_name(v), out); break;
  case K_VECTOR:
    fputs("#(", out);
    for (size_t i = 0; i < vector_length(v); i++) {
      if (i) putc(' ', out);
      print_value(out, AS(vector, v)->items[i], write);
    }
    putc(')', out);
    break;
  case K_CLOSURE: {
    val name = AS(closure, v)->name;
    if (is_symbol(name)) fprintf(out, "#<procedure %s>", symbol_name(name));
    else fputs("#<procedure>", out);
    break;
  }
  case K_PRIMITIVE: fprintf(out, "#<primitive %s>", AS(primitive, v)->name); break;
  case K_PORT: {
    unsigned fl = (unsigned)HDR_COUNT(as_obj(v)->hdr);
    fprintf(out, "#<%s-port %s%s>", fl & PORT_INPUT ? "input" : "output",
            AS(string, AS(port, v)->name)->bytes, AS(port, v)->fp ? "" : " (closed)");
    break;
  }
  case K_TABLE:
    fprintf(out, "#<%shash-table>", HDR_COUNT(as_obj(v)->hdr) & TABLE_WEAK ? "weak-" : "");
    break;
  case K_FRAME: fputs("#<environment>", out); break;
  default: fputs("#<object>", out); break;
  }
}
