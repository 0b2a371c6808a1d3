/*
 * gctest.h: helpers shared by the collector and runtime test suites.
 *
 * The collector scans stacks, registers and data segments conservatively,
 * so a test that wants to see an object reclaimed must make sure no copy
 * of its address survives anywhere the scanner looks.  These helpers give
 * the habits that make that work:
 *
 *   hide/unhide   keep an address as an integer the scanner cannot
 *                 recognise (xor with a mask that moves it out of the heap
 *                 range), so the test can ask about the object later
 *                 without keeping it alive;
 *   clobber_stack zero a large stack area below the caller, where dead
 *                 frames of allocation helpers left their locals;
 *   collect_clean clobber the stack, then collect (twice: objects kept by
 *                 a stale word in a span's current allocation word are
 *                 released by the next cycle).
 *
 * Reclamation is always measured over many objects, with a threshold
 * (at least 90%), never one by one: a stray word on the stack or in a
 * callee-saved register may legitimately keep one alive.
 *
 * Public API only (mgc.h), so the api-style suites may include it too.
 */
#ifndef MGC_TESTS_GCTEST_H
#define MGC_TESTS_GCTEST_H

#include <check.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mgc.h"

#define GCTEST_NOINLINE __attribute__((noinline))
#define GCTEST_UNUSED __attribute__((unused))

/* A cheap assertion for hot loops: Check's ck_assert records every
 * passing check through its message pipe, which costs a system call. */
#define GCTEST_REQUIRE(cond, ...)            \
  do {                                       \
    if (!(cond)) ck_abort_msg(__VA_ARGS__);  \
  } while (0)

/* Flips the top bits too, so a hidden heap address is far outside any
 * arena range the collector could reserve. */
#define GCTEST_HIDE_MASK ((uintptr_t)0x5555555555555555ull)

/* Bytes of stack zeroed by clobber_stack: more than any allocation or
 * collection path uses below a test's frame. */
#define GCTEST_CLOBBER_BYTES (64 * 1024)

/* Reclamation thresholds are this many percent of the objects dropped. */
#define GCTEST_RECLAIM_PERCENT 90

GCTEST_UNUSED static inline uintptr_t hide(const void *p) {
  return (uintptr_t)p ^ GCTEST_HIDE_MASK;
}

GCTEST_UNUSED static inline void *unhide(uintptr_t h) {
  return (void *)(h ^ GCTEST_HIDE_MASK);
}

GCTEST_UNUSED static GCTEST_NOINLINE void clobber_stack(void) {
  volatile char area[GCTEST_CLOBBER_BYTES];
  memset((char *)area, 0, sizeof(area));
  __asm__ __volatile__("" : : "r"(area) : "memory");
}

GCTEST_UNUSED static GCTEST_NOINLINE void collect_clean(void) {
  clobber_stack();
  gc_collect();
  clobber_stack();
  gc_collect();
}

GCTEST_UNUSED static struct gc_stats stats_now(void) {
  struct gc_stats s;
  memset(&s, 0, sizeof(s));
  s.size = sizeof(s);
  ck_assert_int_eq(gc_get_stats(&s), 0);
  return s;
}

GCTEST_UNUSED static uint64_t cycles_now(void) { return stats_now().cycles; }

/* Resident set size in bytes (from /proc/self/statm), or 0 if unknown. */
GCTEST_UNUSED static size_t gctest_rss_bytes(void) {
  FILE *f = fopen("/proc/self/statm", "r");
  if (!f) return 0;
  unsigned long size = 0, resident = 0;
  int n = fscanf(f, "%lu %lu", &size, &resident);
  fclose(f);
  return n == 2 ? (size_t)resident * (size_t)sysconf(_SC_PAGESIZE) : 0;
}

/* Fill / check n bytes with a pattern derived from seed (xorshift).  Every
 * byte has its top bit set: in a conservatively scanned object no payload
 * word (a full one, or one cut short by the object's zeroed tail) can then
 * read as a heap address, which MGC_VERIFY would rightly report as a miss
 * when it is written during a mark (docs/internals.md). */
GCTEST_UNUSED static void pattern_fill(void *p, size_t n, uint64_t seed) {
  unsigned char *b = p;
  uint64_t x = seed * 0x9E3779B97F4A7C15ull + 1;
  for (size_t i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    b[i] = (unsigned char)(x | 0x80);
  }
}

/* Index of the first byte that differs from the pattern, or n. */
GCTEST_UNUSED static size_t pattern_check(const void *p, size_t n, uint64_t seed) {
  const unsigned char *b = p;
  uint64_t x = seed * 0x9E3779B97F4A7C15ull + 1;
  for (size_t i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    if (b[i] != (unsigned char)(x | 0x80)) return i;
  }
  return n;
}

/* How many of the n hidden addresses no longer name a live object. */
GCTEST_UNUSED static size_t count_reclaimed(const uintptr_t *hidden, size_t n) {
  size_t dead = 0;
  for (size_t i = 0; i < n; i++)
    if (gc_base(unhide(hidden[i])) == NULL) dead++;
  return dead;
}

/* Run a Check suite (CK_NORMAL); the process exit status says whether
 * every test passed.  in_children: every test in a child process of its
 * own whatever CK_FORK says, for suites whose tests start mgc afresh (each
 * sets its own MGC_* first) or fork. */
GCTEST_UNUSED static int run_suite_with(Suite *s, bool in_children) {
  SRunner *sr = srunner_create(s);
  if (in_children) srunner_set_fork_status(sr, CK_FORK);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

GCTEST_UNUSED static int run_suite(Suite *s) { return run_suite_with(s, false); }
GCTEST_UNUSED static int run_suite_in_children(Suite *s) { return run_suite_with(s, true); }

#endif /* MGC_TESTS_GCTEST_H */
