/*
 * test_oom.c: running out of memory (gc_set_oom_handler, include/mgc.h;
 * docs/design.md, "Failures").
 *
 * Each test runs in a child made by fork() that caps its address space
 * with RLIMIT_AS a little above what it has mapped once mgc's first arena
 * is reserved: the heap can fill that arena but cannot reserve another,
 * so mheap growth fails for certain.  The child fills the heap with data
 * it keeps reachable (in a malloc'd array registered with gc_add_roots),
 * and then:
 *   enomem      every allocation entry point returns NULL with errno
 *               ENOMEM, and calls the handler once per failed request,
 *               on the allocating thread;
 *   recover     a handler that drops data (and whose own allocations fail
 *               without recursing) turns the failure into a success, and
 *               the program goes on allocating, collecting, and finding
 *               the data it kept intact;
 *   no_handler  without a handler: NULL and ENOMEM, and after the program
 *               drops data itself, allocation works again.
 */
#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "mgc.h"

#include "gctest.h"
#include "childtest.h"

#define MIB ((size_t)1 << 20)
/* Address space the child may map beyond what it has after start-up:
 * room for mgc's metadata and libc, but less than one 64 MiB arena. */
#define AS_HEADROOM (40 * MIB)
/* Pointers the keep array holds: more objects than the capped heap fits
 * (64 MiB of 24-byte objects). */
#define KEEP_MAX ((size_t)4 << 20)
#define CHUNK_BYTES (64 * 1024)       /* large objects that fill the heap */
#define BIG_BYTES (200 * 1024)        /* a large request that cannot fit */

static void **keep;       /* malloc'd, a root: everything kept reachable */
static size_t nkeep;
static size_t nchunks;    /* keep[0 .. nchunks): pattern-filled chunks */

static volatile int handler_calls;
static volatile size_t handler_request;
static pthread_t handler_thread;
static volatile int handler_nested_alloc_failed;


static size_t mapped_bytes(void) {
  FILE *f = fopen("/proc/self/statm", "r");
  unsigned long pages = 0;
  if (f) {
    if (fscanf(f, "%lu", &pages) != 1) pages = 0;
    fclose(f);
  }
  return pages * (size_t)sysconf(_SC_PAGESIZE);
}

/* Start mgc, reserve its first arena, then cap the address space. */
static void child_start(void) {
  gc_init();
  keep = calloc(KEEP_MAX, sizeof(void *));
  CHILD_REQUIRE(keep != NULL, "no memory for the keep array");
  CHILD_REQUIRE(gc_add_roots(keep, KEEP_MAX * sizeof(void *)) == 0, "gc_add_roots failed");
  void *warm = gc_alloc(CHUNK_BYTES);
  CHILD_REQUIRE(warm != NULL, "first allocation failed");
  gc_collect(); /* starts whatever helper threads collections use */
  size_t mapped = mapped_bytes();
  CHILD_REQUIRE(mapped > 0, "cannot read /proc/self/statm");
  struct rlimit rl = {mapped + AS_HEADROOM, mapped + AS_HEADROOM};
  CHILD_REQUIRE(setrlimit(RLIMIT_AS, &rl) == 0, "setrlimit: %s", strerror(errno));
}

/* Fill the heap with pattern-filled chunks until an allocation fails;
 * returns errno of the failure. */
static int fill_with_chunks(void) {
  for (;;) {
    CHILD_REQUIRE(nkeep < KEEP_MAX, "the heap never filled up");
    errno = 0;
    void *p = gc_alloc(CHUNK_BYTES);
    if (!p) return errno;
    pattern_fill(p, CHUNK_BYTES, nkeep);
    keep[nkeep++] = p;
    nchunks = nkeep;
  }
}

/* Then the room left for objects of n bytes from alloc. */
static int fill_small(void *(*alloc)(size_t), size_t n) {
  for (;;) {
    CHILD_REQUIRE(nkeep < KEEP_MAX, "the heap never filled up with %zu-byte objects", n);
    errno = 0;
    void *p = alloc(n);
    if (!p) return errno;
    keep[nkeep++] = p;
  }
}

static bool chunk_intact(size_t i) {
  return !keep[i] || pattern_check(keep[i], CHUNK_BYTES, i) == CHUNK_BYTES;
}

static void require_chunks_intact(void) {
  for (size_t i = 0; i < nchunks; i++) CHILD_REQUIRE(chunk_intact(i), "chunk %zu was overwritten", i);
}

static void counting_handler(size_t request) {
  handler_calls++;
  handler_request = request;
  handler_thread = pthread_self();
}

/* Drops the second half of the chunks; its own allocation must fail
 * plainly (no recursion into the out-of-memory path), and it may collect:
 * it holds no mgc lock. */
static void dropping_handler(size_t request) {
  counting_handler(request);
  errno = 0;
  void *p = gc_alloc(BIG_BYTES);
  handler_nested_alloc_failed = p == NULL && errno == ENOMEM;
  for (size_t i = nchunks / 2; i < nchunks; i++) keep[i] = NULL;
  gc_collect();
}

static void *alloc_scanned(size_t n) { return gc_alloc(n); }
static void *alloc_atomic(size_t n) { return gc_alloc_atomic(n); }

static const gc_type *pair_type;
static void *alloc_typed(size_t n) { return gc_alloc_typed(n, pair_type); }
static void *alloc_weak(size_t n) {
  (void)n;
  return gc_weak_new(keep[0]);
}

/* Call one failing entry point; it must return NULL with ENOMEM after
 * calling the handler once, on this thread. */
#define EXPECT_OOM(call, what)                                                      \
  do {                                                                              \
    int before_ = handler_calls;                                                    \
    errno = 0;                                                                      \
    void *r_ = (void *)(call);                                                      \
    CHILD_REQUIRE(r_ == NULL, "%s succeeded on a full heap", what);                 \
    CHILD_REQUIRE(errno == ENOMEM, "%s: errno %d, not ENOMEM", what, errno);        \
    CHILD_REQUIRE(handler_calls == before_ + 1, "%s: handler called %d times", what, \
                  handler_calls - before_);                                         \
    CHILD_REQUIRE(pthread_equal(handler_thread, pthread_self()),                    \
                  "%s: handler ran on another thread", what);                       \
  } while (0)


/* ---- enomem ---- */

static void every_entry_point_fails_with_enomem(void) {
  child_start();
  static const size_t offsets[] = {0};
  pair_type = gc_type_new(2 * sizeof(void *), offsets, 1);
  CHILD_REQUIRE(pair_type != NULL, "gc_type_new failed");
  gc_set_oom_handler(counting_handler);

  CHILD_REQUIRE(fill_with_chunks() == ENOMEM, "filling the heap did not end in ENOMEM");
  CHILD_REQUIRE(handler_calls == 1 && handler_request == CHUNK_BYTES,
                "the failed chunk called the handler %d times, request %zu", handler_calls,
                (size_t)handler_request);

  /* Large requests: no free run fits them. */
  static char big_string[BIG_BYTES];
  memset(big_string, 'x', sizeof(big_string) - 1);
  EXPECT_OOM(gc_alloc(BIG_BYTES), "gc_alloc (large)");
  CHILD_REQUIRE(handler_request == BIG_BYTES, "handler told %zu bytes, not %d", (size_t)handler_request,
                BIG_BYTES);
  EXPECT_OOM(gc_alloc_atomic(BIG_BYTES), "gc_alloc_atomic (large)");
  EXPECT_OOM(gc_alloc_typed(BIG_BYTES, pair_type), "gc_alloc_typed (large)");
  EXPECT_OOM(gc_strdup(big_string), "gc_strdup");
  void *first = keep[0];
  EXPECT_OOM(gc_realloc(first, BIG_BYTES), "gc_realloc");
  CHILD_REQUIRE(gc_base(first) == first && chunk_intact(0), "a failed gc_realloc changed its object");

  /* Small requests: use up the room for each kind, then one more. */
  int before = handler_calls;
  CHILD_REQUIRE(fill_small(alloc_scanned, 40) == ENOMEM, "small gc_alloc did not end in ENOMEM");
  CHILD_REQUIRE(handler_calls == before + 1 && handler_request >= 40, "small gc_alloc: handler not called once");
  EXPECT_OOM(gc_alloc(40), "gc_alloc (small, again)");
  before = handler_calls;
  CHILD_REQUIRE(fill_small(alloc_atomic, 8) == ENOMEM, "tiny gc_alloc_atomic did not end in ENOMEM");
  CHILD_REQUIRE(handler_calls == before + 1, "tiny gc_alloc_atomic: handler not called once");
  before = handler_calls;
  CHILD_REQUIRE(fill_small(alloc_typed, 2 * sizeof(void *)) == ENOMEM, "small gc_alloc_typed did not end in ENOMEM");
  CHILD_REQUIRE(handler_calls == before + 1, "small gc_alloc_typed: handler not called once");
  before = handler_calls;
  CHILD_REQUIRE(fill_small(alloc_weak, 0) == ENOMEM, "gc_weak_new did not end in ENOMEM");
  CHILD_REQUIRE(handler_calls == before + 1, "gc_weak_new: handler not called once");
  EXPECT_OOM(gc_ephemeron_new(keep[0], keep[1]), "gc_ephemeron_new");

  require_chunks_intact();
  CHILD_REQUIRE(gc_set_oom_handler(NULL) == counting_handler, "gc_set_oom_handler did not return the old handler");
}

START_TEST(test_every_allocation_returns_null_with_enomem_after_calling_the_handler) {
  child_run(every_entry_point_fails_with_enomem, false);
}
END_TEST

/* ---- recover ---- */

static void handler_that_drops_data_lets_allocation_succeed(void) {
  child_start();
  gc_set_oom_handler(dropping_handler);
  /* The chunk that does not fit calls the handler, which frees half of
   * the heap: that very allocation succeeds. */
  for (;;) {
    CHILD_REQUIRE(nkeep < KEEP_MAX, "the heap never filled up");
    int calls = handler_calls;
    errno = 0;
    void *p = gc_alloc(CHUNK_BYTES);
    CHILD_REQUIRE(p != NULL, "gc_alloc failed although the handler dropped half of the heap");
    if (handler_calls != calls) {
      keep[nkeep++] = p; /* not pattern-filled: outside keep[0 .. nchunks) */
      break;
    }
    pattern_fill(p, CHUNK_BYTES, nkeep);
    keep[nkeep++] = p;
    nchunks = nkeep;
  }
  CHILD_REQUIRE(handler_calls == 1, "the handler ran %d times", handler_calls);
  CHILD_REQUIRE(handler_nested_alloc_failed, "an allocation in the handler did not simply fail with ENOMEM");
  CHILD_REQUIRE(pthread_equal(handler_thread, pthread_self()), "the handler ran on another thread");

  /* The program goes on: churn through the freed room several times. */
  size_t kept = nchunks / 2;
  for (int round = 0; round < 4; round++) {
    for (size_t i = 0; i < nchunks - kept; i++) {
      void *p = gc_alloc(i % 2 ? CHUNK_BYTES : 512);
      CHILD_REQUIRE(p != NULL, "round %d: allocation %zu failed after recovering", round, i);
    }
    gc_collect();
    for (size_t i = 0; i < kept; i++) CHILD_REQUIRE(chunk_intact(i), "round %d: chunk %zu overwritten", round, i);
  }
  CHILD_REQUIRE(handler_calls <= 2, "the handler kept being called (%d times)", handler_calls);
}

START_TEST(test_handler_that_drops_data_makes_the_allocation_succeed_and_the_program_goes_on) {
  child_run(handler_that_drops_data_lets_allocation_succeed, false);
}
END_TEST

/* ---- no_handler ---- */

static void no_handler_then_program_drops_data(void) {
  child_start();
  CHILD_REQUIRE(gc_set_oom_handler(NULL) == NULL, "a handler was set at start-up");
  CHILD_REQUIRE(fill_with_chunks() == ENOMEM, "filling the heap did not end in ENOMEM");
  errno = 0;
  CHILD_REQUIRE(gc_alloc(CHUNK_BYTES) == NULL && errno == ENOMEM, "a second chunk did not fail with ENOMEM");
  CHILD_REQUIRE(handler_calls == 0, "a removed handler was called");
  for (size_t i = 0; i < nchunks; i += 2) keep[i] = NULL;
  for (size_t i = 0; i < nchunks / 4; i++) {
    void *p = gc_alloc(CHUNK_BYTES);
    CHILD_REQUIRE(p != NULL, "allocation %zu failed after the program dropped half of its data", i);
  }
  require_chunks_intact();
}

START_TEST(test_without_handler_allocation_fails_until_the_program_drops_data) {
  child_run(no_handler_then_program_drops_data, false);
}
END_TEST

static Suite *oom_suite(void) {
  Suite *s = suite_create("oom");
  TCase *tc = tcase_create("enomem");
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, test_every_allocation_returns_null_with_enomem_after_calling_the_handler);
  suite_add_tcase(s, tc);
  tc = tcase_create("recover");
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, test_handler_that_drops_data_makes_the_allocation_succeed_and_the_program_goes_on);
  tcase_add_test(tc, test_without_handler_allocation_fails_until_the_program_drops_data);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) { return run_suite(oom_suite()); }
