/*
 * scheme.h: the interfaces between mgscheme's files.
 *
 *   heap.c      mgc types and the allocator for each kind of object
 *   roots.c     the interpreter's global heap pointers, registered as roots
 *   symbol.c    interning
 *   error.c     Scheme errors (longjmp to the innermost handler)
 *   reader.c    text -> values
 *   printer.c   values -> text (display and write)
 *   env.c       environment frames and variable lookup
 *   eval.c      the evaluator: special forms, application, tail calls
 *   prim_*.c    primitives, each file registering its own
 *   port.c      file ports and their finalizer
 *   table.c     strong and weak (ephemeron) hash tables
 *   main.c      REPL and script mode
 */
#ifndef SCHEME_H
#define SCHEME_H

#include <setjmp.h>

#include "value.h"

/* ---- heap.c -------------------------------------------------------------- */
void heap_init(void);
void heap_retire_alloc_words(void);   /* see heap.c; used by (gc) */
val cons(val a, val d);
val make_flonum(double d);
val make_string(const char *bytes, size_t len);
val make_string_uninit(size_t len);          /* bytes filled by the caller */
val make_vector(size_t n, val fill);
val make_closure(val params, val body, val env, val name);
val make_primitive(prim_fn fn, const char *name, int min_args, int max_args);
val make_frame(size_t nslots, val parent);
val make_port(FILE *fp, unsigned flags, val name);
val make_table(bool weak, size_t nbuckets);
val make_entry(bool ephemeron, val next, val a, val b);
/* Allocation that reports failure as a Scheme error. */
void *heap_alloc_typed(size_t n, const gc_type *t);
void *heap_alloc_atomic(size_t n);

/* ---- roots.c --------------------------------------------------------------- */
/* The interpreter's heap pointers that live outside the stack.  One block,
 * registered once with gc_add_roots (it would also be found in the data
 * segment, but saying so keeps the contract explicit and survives a move of
 * the block to malloc memory). */
struct roots {
  val symtab;        /* vector of symbol chains (lists), see symbol.c */
  val stdin_port, stdout_port, stderr_port;
  val sym_quote, sym_quasiquote, sym_unquote, sym_unquote_splicing;
  val sym_else, sym_arrow, sym_define, sym_lambda;
};
extern struct roots R;
void scheme_roots_init(void);

/* ---- symbol.c ------------------------------------------------------------- */
val intern(const char *name, size_t len);
val intern_cstr(const char *name);
static inline const char *symbol_name(val s) { return AS(string, AS(symbol, s)->name)->bytes; }

/* ---- error.c -------------------------------------------------------------- */
/* An error handler: scheme_error() longjmps to the innermost one.  Handlers
 * live on the C stack (their jmp_buf and message are plain data). */
struct handler {
  jmp_buf jb;
  struct handler *prev;
  char message[512];
};
extern struct handler *error_handler;
_Noreturn void scheme_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* An error whose message ends with the written form of `irritant`. */
_Noreturn void scheme_error_val(const char *msg, val irritant);
_Noreturn void type_error(const char *who, const char *expected, val got);
/* The C stack is finite: deep non-tail recursion raises an error rather
 * than crashing.  stack_check_init records the stack's base. */
void stack_check_init(void *base);
extern char *stack_base;      /* set once by stack_check_init */
extern size_t stack_budget;
_Noreturn void stack_overflow(void);
static inline void stack_check(void) {
  char here;
  if (__builtin_expect((size_t)(stack_base - &here) > stack_budget, 0)) stack_overflow();
}
void stack_scrub(void);

/* ---- reader.c ------------------------------------------------------------- */
/* A character source: a whole buffer (scripts), or lines fetched on demand
 * from a stream (the REPL, read-line from ports). */
struct source {
  FILE *fp;            /* NULL: buf is all there is */
  char *buf;           /* malloc'd */
  size_t len, pos;
  int line;
  const char *prompt;  /* printed before each line is fetched, or NULL */
};
void source_init_string(struct source *s, char *buf, size_t len);
void source_init_stream(struct source *s, FILE *fp, const char *prompt);
void source_free(struct source *s);
/* The next datum, or EOF_V at end of input. */
val read_datum(struct source *s);

/* ---- printer.c ------------------------------------------------------------ */
void print_value(FILE *out, val v, bool write);

/* ---- env.c ---------------------------------------------------------------- */
/* env is a frame, or NIL for the global environment (symbol->global). */
val *env_lookup_slot(val env, val sym);   /* NULL when unbound */
val env_lookup(val env, val sym);         /* error when unbound */
void env_define(val env, val sym, val value);
void define_global(const char *name, val value);

/* ---- eval.c --------------------------------------------------------------- */
val eval(val x, val env);
val apply_procedure(val f, int argc, val *argv);
val list_to_argv_checked(val list, int *argc);  /* unused outside eval.c */
/* Special form ids, stored in their symbol's header count. */
enum special {
  SF_NONE = 0, SF_QUOTE, SF_QUASIQUOTE, SF_IF, SF_DEFINE, SF_SET, SF_LAMBDA,
  SF_BEGIN, SF_LET, SF_LETSTAR, SF_LETREC, SF_COND, SF_CASE, SF_AND, SF_OR,
  SF_WHEN, SF_UNLESS, SF_DO,
};
void eval_init(void);

/* ---- main.c ----------------------------------------------------------------- */
/* The exit status to use: `status`, or 3 when MGC_VERIFY found objects the
 * concurrent mark missed.  Flushes stdout. */
int verify_status(int status);

/* ---- primitives ----------------------------------------------------------- */
void defprim(const char *name, prim_fn fn, int min_args, int max_args);
#define ANY_ARGS 255
void prim_num_init(void);
void prim_list_init(void);
void prim_string_init(void);
void prim_sys_init(void);
void port_init(void);
void table_init(void);

/* Helpers shared by primitives. */
intptr_t check_fixnum(const char *who, val v);
size_t check_index(const char *who, val v, size_t limit);
bool eqv(val a, val b);
bool equal(val a, val b);
size_t list_length(val l);     /* error if not a proper list */
val list_from(int n, const val *items);
/* The output port for display/write: argv[i] if given, else stdout. */
FILE *port_out(const char *who, int argc, val *argv, int i);

#endif /* SCHEME_H */
