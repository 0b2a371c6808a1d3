/*
 * conctest.h: helpers for the concurrent-collector suites (tests/concurrent).
 *
 * Settings.  mgc reads its MGC_* environment once, in gc_init, so every
 * test here runs in its own forked child (Check's fork mode, forced by
 * run_suite_in_children in gctest.h even when CK_FORK=no is set) and
 * starts with conc_init, which sets the variables the test needs and only
 * then calls gc_init.
 * The parent process never touches the heap.
 *
 * Capturing stderr (MGC_VERIFY and MGC_TRACE lines): capture_text_begin
 * and capture_text_end, from tests/capture.h.
 *
 * Also: process CPU time, resident set size, a small xorshift generator
 * and a seconds clock.  Public API only (mgc.h) beside gctest.h.
 */
#ifndef MGC_TESTS_CONCTEST_H
#define MGC_TESTS_CONCTEST_H

#include <check.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "capture.h"
#include "gctest.h"
#include "mgc.h"

#define CONC_MIB ((size_t)1 << 20)
#define CONC_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* One environment setting for conc_init; overwrite = 0 lets the caller's
 * environment win (for sizes and GOGC a developer may want to change). */
struct conc_env {
  const char *name;
  const char *value;
  int overwrite;
};

GCTEST_UNUSED static void conc_init(const struct conc_env *env, size_t n) {
  for (size_t i = 0; i < n; i++) setenv(env[i].name, env[i].value, env[i].overwrite);
  gc_init();
}

GCTEST_UNUSED static uint64_t conc_process_cpu_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

GCTEST_UNUSED static double conc_seconds(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Lock a mutex that registered threads share.  Under ThreadSanitizer the
 * wait happens in a blocking region: TSan runs the stop signal's handler
 * only when a thread leaves pthread_mutex_lock, so a thread waiting for a
 * lock whose holder is stopped would hold up the stop for good
 * (docs/internals.md). */
GCTEST_UNUSED static void conc_mutex_lock(pthread_mutex_t *m) {
#if defined(__SANITIZE_THREAD__)
  if (pthread_mutex_trylock(m) == 0) return;
  gc_blocking_begin();
  pthread_mutex_lock(m);
  gc_blocking_end();
#else
  pthread_mutex_lock(m);
#endif
}

/* An unsigned value from the environment, or dflt. */
GCTEST_UNUSED static unsigned long conc_env_ulong(const char *name, unsigned long dflt) {
  const char *s = getenv(name);
  if (!s || !*s) return dflt;
  char *end;
  unsigned long v = strtoul(s, &end, 10);
  return *end ? dflt : v;
}

GCTEST_UNUSED static uint64_t conc_rand(uint64_t *state) {
  uint64_t x = *state;
  x ^= x << 13;
  x ^= x >> 7;
  x ^= x << 17;
  return *state = x;
}

GCTEST_UNUSED static uint64_t conc_below(uint64_t *state, uint64_t n) { return conc_rand(state) % n; }


#endif /* MGC_TESTS_CONCTEST_H */
