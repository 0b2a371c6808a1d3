/*
 * error.c: Scheme errors and the C stack limit.
 *
 * scheme_error formats a message into the innermost handler and longjmps
 * to it.  Handlers are pushed by the REPL/script loop (main.c) and removed
 * by whoever pushed them.  Unwinding by longjmp leaves no heap state
 * half-written that matters: every heap store is a complete set_field, and
 * abandoned objects are simply garbage.
 */
#include <stdarg.h>
#include <string.h>
#include <sys/resource.h>

#include "scheme.h"

struct handler *error_handler;

_Noreturn static void raise_handler(void) {
  if (!error_handler) {
    fprintf(stderr, "mgscheme: uncaught error\n");
    exit(70);
  }
  longjmp(error_handler->jb, 1);
}

void scheme_error(const char *fmt, ...) {
  if (!error_handler) raise_handler();
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(error_handler->message, sizeof error_handler->message, fmt, ap);
  va_end(ap);
  raise_handler();
}

void scheme_error_val(const char *msg, val irritant) {
  if (!error_handler) raise_handler();
  /* Render the irritant with the printer into a memory stream. */
  char *text = NULL;
  size_t len = 0;
  FILE *mem = open_memstream(&text, &len);
  if (mem) {
    print_value(mem, irritant, true);
    fclose(mem);
  }
  snprintf(error_handler->message, sizeof error_handler->message, "%s: %s", msg,
           text ? text : "?");
  free(text);
  raise_handler();
}

void type_error(const char *who, const char *expected, val got) {
  char msg[128];
  snprintf(msg, sizeof msg, "%s: expected %s, got", who, expected);
  scheme_error_val(msg, got);
}

/* ---- stack depth ----------------------------------------------------------- */

char *stack_base;
size_t stack_budget;

void stack_check_init(void *base) {
  struct rlimit rl;
  size_t limit = 8u << 20;
  if (getrlimit(RLIMIT_STACK, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY) limit = rl.rlim_cur;
  stack_base = base;
  /* Leave room for primitives, stdio and mgc's own frames (a stop-the-world
   * signal handler runs on this stack too). */
  stack_budget = limit > (1u << 20) ? limit - (512u << 10) : limit / 2;
}

void stack_overflow(void) {
  scheme_error("recursion too deep (the C stack is nearly exhausted)");
}

/* Zero the dead part of the C stack below the caller, so that stale copies
 * of heap pointers left there by earlier, deeper calls do not keep garbage
 * alive through mgc's conservative stack scan.  Only a matter of
 * promptness: the collector is correct either way.  main.c calls it before
 * each top-level form, so a (gc) form runs on a clean stack. */
#define STACK_SCRUB_BYTES (64u << 10)
__attribute__((noinline)) void stack_scrub(void) {
  char zeroes[STACK_SCRUB_BYTES];
  explicit_bzero(zeroes, sizeof zeroes);   /* a plain memset would be elided as a dead store */
}
