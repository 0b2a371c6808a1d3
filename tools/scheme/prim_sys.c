/*
 * prim_sys.c: defining primitives, and the system primitives: apply,
 * error, exit, eval, the collector ((gc), (gc-stats)), time and a
 * deterministic random generator.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "scheme.h"

#define UNUSED_ARGC (void)argc

void defprim(const char *name, prim_fn fn, int min_args, int max_args) {
  val sym = intern_cstr(name);
  set_field(&AS(symbol, sym)->global, make_primitive(fn, name, min_args, max_args));
}

val prim_apply(int argc, val *argv);   /* eval.c: also called in tail position there */

/* (error message irritant ...): message and the irritants written after
 * it, separated by spaces. */
static val p_error(int argc, val *argv) {
  char *text = NULL;
  size_t len = 0;
  FILE *mem = open_memstream(&text, &len);
  if (!mem) scheme_error("error: (and out of memory formatting it)");
  print_value(mem, argv[0], false);
  for (int i = 1; i < argc; i++) {
    putc(' ', mem);
    print_value(mem, argv[i], true);
  }
  fclose(mem);
  char msg[480];
  snprintf(msg, sizeof msg, "%s", text);
  free(text);
  scheme_error("%s", msg);
}

static val p_exit(int argc, val *argv) {
  int code = 0;
  if (argc > 0) code = is_fixnum(argv[0]) ? (int)fixnum_value(argv[0]) : argv[0] == FALSE_V ? 1 : 0;
  exit(verify_status(code));
}

static val p_eval(int argc, val *argv) { UNUSED_ARGC; return eval(argv[0], NIL); }

/* (gc): a full collection, then wait for the finalizers it queued.  The
 * stack scrub and retiring the allocation words make garbage made just
 * before the call collectable now (tests count on it). */
static val p_gc(int argc, val *argv) {
  (void)argc; (void)argv;
  heap_retire_alloc_words();
  stack_scrub();
  gc_collect();
  gc_wait_finalizers();
  return UNSPEC;
}

/* (gc-stats): an alist of a few collector counters. */
static val p_gc_stats(int argc, val *argv) {
  (void)argc; (void)argv;
  struct gc_stats st = {.size = sizeof st};
  gc_get_stats(&st);
  val l = NIL;
  l = cons(cons(intern_cstr("verify-misses"), make_fixnum((intptr_t)st.verify_misses)), l);
  l = cons(cons(intern_cstr("max-pause-ns"), make_fixnum((intptr_t)st.max_pause_ns)), l);
  l = cons(cons(intern_cstr("heap-live"), make_fixnum((intptr_t)st.heap_live)), l);
  l = cons(cons(intern_cstr("total-alloc-bytes"), make_fixnum((intptr_t)st.total_alloc_bytes)), l);
  l = cons(cons(intern_cstr("cycles"), make_fixnum((intptr_t)st.cycles)), l);
  return l;
}

static val p_current_time_ms(int argc, val *argv) {
  (void)argc; (void)argv;
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return make_fixnum((intptr_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000);
}

/* (random n): 0 <= r < n from a fixed-seed xorshift, so programs (and
 * their expected output) are reproducible. */
static uint64_t random_state = 0x9e3779b97f4a7c15ull;
static val p_random(int argc, val *argv) {
  UNUSED_ARGC;
  intptr_t n = check_fixnum("random", argv[0]);
  if (n <= 0) scheme_error("random: bound must be positive");
  random_state ^= random_state << 13;
  random_state ^= random_state >> 7;
  random_state ^= random_state << 17;
  return make_fixnum((intptr_t)(random_state % (uint64_t)n));
}

void prim_sys_init(void) {
  defprim("apply", prim_apply, 2, ANY_ARGS);
  defprim("error", p_error, 1, ANY_ARGS);
  defprim("exit", p_exit, 0, 1);
  defprim("eval", p_eval, 1, 2);
  defprim("gc", p_gc, 0, 0);
  defprim("gc-stats", p_gc_stats, 0, 0);
  defprim("current-time-ms", p_current_time_ms, 0, 0);
  defprim("random", p_random, 1, 1);
}
