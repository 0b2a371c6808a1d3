/*
 * test_threads_alloc.c: many threads allocating and freeing at once,
 * through the public API (include/mgc.h) only.  Suite "stress".
 *
 * Concerns, one TCase each:
 *   churn       NTHREADS threads allocate and free random sizes (8 B to
 *               100 KiB, scanned and atomic) for RUN_NS each.  Every object
 *               carries a pattern derived from (thread, serial), checked
 *               before it is freed; a fresh gc_alloc object must be zero.
 *               Objects are also handed to another thread, which checks and
 *               frees them (remote frees).  One thread exits without
 *               gc_thread_unregister (its thread-exit destructor must
 *               release its cache); the objects it leaves are checked and
 *               freed by the main thread.  At the end no two live objects
 *               overlap, and a correct program got no "mgc: " report.
 *   collect     objects allocated while another thread collects in a loop
 *               survive (new spans and large objects around a cycle);
 *   rings       RING_THREADS threads each run a ring of their own (allocate
 *               one object, free the oldest) in one size class, so spans
 *               pass from thread to thread while frees held for them are
 *               applied; every object is checked before it is freed, and
 *               none of these correct frees may be reported;
 *   lookup      gc_base and gc_size from one thread on objects another
 *               thread is allocating and freeing (large objects, whose
 *               spans go back to the heap, and small ones) never fault and
 *               give either a right answer or "not an object".
 *
 * Bookkeeping lives in static arrays (roots the collector scans); a
 * pointer in transit between them is in a local variable of a registered
 * thread.  Worker threads never call Check (not thread-safe): they count
 * failures and keep the first message, which the main thread asserts on.
 */
#include <check.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "mgc.h"

#define NTHREADS 6
#define ORPHAN (NTHREADS - 1)         /* exits without gc_thread_unregister */
#define RUN_NS 3000000000ull          /* each worker: 3 s */
#define ORPHAN_RUN_NS 1000000000ull   /* the orphan leaves early */
#define MAX_LIVE 512                  /* objects a worker holds at most */
#define INBOX_CAP 256
#define MIN_SIZE 8
#define MAX_SIZE (100 * 1024)
#define TINY_MAX 16                   /* atomic objects up to this are packed */
#define DRAIN_EVERY 16                /* iterations between inbox drains */
#define ECHO_REPORTS 20                /* "mgc: " lines echoed; the rest are counted */
#define COLLECT_RUN_NS 3000000000ull
#define COLLECT_BATCH 64
#define RING_THREADS 4
#define RING_OBJECTS 150
#define RING_OBJECT_SIZE 64
#define RING_RUN_NS 2000000000ull
#define LOOKUP_RUN_NS 2000000000ull
#define LOOKUP_SIZE 40000             /* a large object: a span of its own */
#define LOOKUP_SMALL_SIZE 200         /* and a small one */

struct rec {
  char *p;
  size_t n;
  uint32_t tid;
  uint32_t serial;
};

struct inbox {
  pthread_mutex_t mu;
  size_t n;
  struct rec items[INBOX_CAP];
};

static struct rec live[NTHREADS][MAX_LIVE];      /* owner: thread t */
static size_t nlive[NTHREADS];
static struct inbox inboxes[NTHREADS];
static struct rec all[NTHREADS * (MAX_LIVE + INBOX_CAP)];

static atomic_uint failures, nonzero_allocs;
static atomic_ulong allocs, local_frees, remote_frees;
static char first_failure[512];

/* ---- helpers ---- */

static void record_failure(const char *fmt, ...) {
  if (atomic_fetch_add(&failures, 1) != 0) return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(first_failure, sizeof(first_failure), fmt, ap);
  va_end(ap);
}

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint64_t mix(uint64_t x) { /* splitmix64 finaliser */
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

static uint64_t word_for(const struct rec *r, size_t i) { return mix((uint64_t)r->tid << 32 | r->serial) + i; }

static void fill(const struct rec *r) {
  size_t words = r->n / 8;
  for (size_t i = 0; i < words; i++) {
    uint64_t w = word_for(r, i);
    memcpy(r->p + i * 8, &w, 8);
  }
  uint64_t t = word_for(r, words);
  memcpy(r->p + words * 8, &t, r->n % 8);
}

static bool intact(const struct rec *r) {
  size_t words = r->n / 8;
  for (size_t i = 0; i < words; i++) {
    uint64_t w;
    memcpy(&w, r->p + i * 8, 8);
    if (w != word_for(r, i)) return false;
  }
  uint64_t t = word_for(r, words), have = 0;
  memcpy(&have, r->p + words * 8, r->n % 8);
  return r->n % 8 == 0 || memcmp(&have, &t, r->n % 8) == 0;
}

static bool is_zero(const char *p, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (p[i]) return false;
  return true;
}

/* 8 B .. 100 KiB, about evenly spread over powers of two. */
static size_t random_size(unsigned *seed) {
  unsigned e = 3 + (unsigned)rand_r(seed) % 14;
  size_t n = ((size_t)1 << e) + (size_t)rand_r(seed) % ((size_t)1 << e);
  return n < MIN_SIZE ? MIN_SIZE : n > MAX_SIZE ? MAX_SIZE : n;
}

static void check_and_free(const struct rec *r, unsigned by) {
  if (!intact(r))
    record_failure("object %p (%zu bytes, thread %u serial %u) overwritten before thread %u freed it",
                   (void *)r->p, r->n, r->tid, r->serial, by);
  gc_free(r->p);
}

/* ---- worker ---- */

static void worker_alloc(unsigned tid, unsigned *seed, uint32_t serial) {
  size_t n = random_size(seed);
  bool atomic = n > TINY_MAX && rand_r(seed) % 4 == 0;
  char *p = atomic ? gc_alloc_atomic(n) : gc_alloc(n);
  if (!p) {
    record_failure("thread %u: gc_alloc%s(%zu) returned NULL", tid, atomic ? "_atomic" : "", n);
    return;
  }
  atomic_fetch_add(&allocs, 1);
  if (!atomic && !is_zero(p, n)) atomic_fetch_add(&nonzero_allocs, 1);
  if (gc_size(p) < n || gc_base(p + n - 1) != p)
    record_failure("thread %u: %zu-byte object %p: gc_size %zu, gc_base(end) %p", tid, n, (void *)p,
                   gc_size(p), gc_base(p + n - 1));
  struct rec *r = &live[tid][nlive[tid]];
  *r = (struct rec){p, n, tid, serial};
  fill(r);
  nlive[tid]++;
}

/* Take a random object out of the thread's table. */
static struct rec take_random(unsigned tid, unsigned *seed) {
  size_t i = (size_t)rand_r(seed) % nlive[tid];
  struct rec r = live[tid][i];
  live[tid][i] = live[tid][--nlive[tid]];
  memset(&live[tid][nlive[tid]], 0, sizeof(struct rec));
  return r;
}

static void worker_free_own(unsigned tid, unsigned *seed) {
  struct rec r = take_random(tid, seed);
  check_and_free(&r, tid);
  atomic_fetch_add(&local_frees, 1);
}

static void worker_send(unsigned tid, unsigned *seed) {
  unsigned to = (tid + 1 + (unsigned)rand_r(seed) % (NTHREADS - 1)) % NTHREADS;
  struct rec r = take_random(tid, seed);
  struct inbox *in = &inboxes[to];
  pthread_mutex_lock(&in->mu);
  bool sent = in->n < INBOX_CAP;
  if (sent) in->items[in->n++] = r;
  pthread_mutex_unlock(&in->mu);
  if (!sent) {
    check_and_free(&r, tid);
    atomic_fetch_add(&local_frees, 1);
  }
}

/* Free what other threads sent; the objects are copied out first so no
 * heap call happens under the inbox lock. */
static void worker_drain(unsigned tid) {
  struct rec got[INBOX_CAP];
  struct inbox *in = &inboxes[tid];
  pthread_mutex_lock(&in->mu);
  size_t n = in->n;
  memcpy(got, in->items, n * sizeof(got[0]));
  memset(in->items, 0, n * sizeof(got[0]));
  in->n = 0;
  pthread_mutex_unlock(&in->mu);
  for (size_t i = 0; i < n; i++) {
    check_and_free(&got[i], tid);
    atomic_fetch_add(&remote_frees, 1);
  }
}

static void *worker_main(void *arg) {
  unsigned tid = (unsigned)(uintptr_t)arg;
  gc_thread_register();
  unsigned seed = 7919u * tid + 17;
  uint64_t deadline = now_ns() + (tid == ORPHAN ? ORPHAN_RUN_NS : RUN_NS);
  uint32_t serial = 0;
  for (unsigned iter = 1; (iter & 63) || now_ns() < deadline; iter++) {
    unsigned op = (unsigned)rand_r(&seed) % 100;
    if (nlive[tid] == 0 || (op < 50 && nlive[tid] < MAX_LIVE)) worker_alloc(tid, &seed, serial++);
    else if (op < 75) worker_free_own(tid, &seed);
    else worker_send(tid, &seed);
    if (iter % DRAIN_EVERY == 0) worker_drain(tid);
  }
  worker_drain(tid);
  if (tid != ORPHAN) gc_thread_unregister();
  return NULL;
}

/* ---- final checks (main thread) ---- */

static size_t gather_live(void) {
  size_t n = 0;
  for (unsigned t = 0; t < NTHREADS; t++) {
    for (size_t i = 0; i < nlive[t]; i++) all[n++] = live[t][i];
    for (size_t i = 0; i < inboxes[t].n; i++) all[n++] = inboxes[t].items[i];
  }
  return n;
}

static int cmp_rec(const void *a, const void *b) {
  uintptr_t x = (uintptr_t)((const struct rec *)a)->p, y = (uintptr_t)((const struct rec *)b)->p;
  return x < y ? -1 : x > y;
}

static void check_live_objects(size_t n) {
  for (size_t i = 0; i < n; i++) {
    const struct rec *r = &all[i];
    ck_assert_msg(intact(r), "live object %p (%zu bytes, thread %u serial %u) overwritten", (void *)r->p, r->n,
                  r->tid, r->serial);
    ck_assert_msg(gc_base(r->p) == r->p, "live object %p has no base", (void *)r->p);
    ck_assert_uint_ge(gc_size(r->p), r->n);
  }
  qsort(all, n, sizeof(all[0]), cmp_rec);
  for (size_t i = 1; i < n; i++)
    ck_assert_msg(all[i - 1].p + gc_size(all[i - 1].p) <= all[i].p,
                  "live objects %p (%zu bytes, thread %u) and %p (thread %u) overlap", (void *)all[i - 1].p,
                  gc_size(all[i - 1].p), all[i - 1].tid, (void *)all[i].p, all[i].tid);
}

/* stderr through a pipe for the whole run: a reader thread (not known to
 * mgc) echoes every line to the real stderr at once, so nothing is lost if
 * the process dies, and counts the "mgc: " lines (echoing the first
 * ECHO_REPORTS of them). */
static int saved_stderr = -1;
static int pipe_fds[2];
static pthread_t echo_thread;
static atomic_uint reports;

static void *echo_main(void *arg) {
  (void)arg;
  FILE *in = fdopen(pipe_fds[0], "r");
  char line[1024];
  bool at_line_start = true;
  while (fgets(line, sizeof(line), in)) {
    bool report = at_line_start && strncmp(line, "mgc: ", 5) == 0;
    at_line_start = strchr(line, '\n') != NULL;
    if (report && atomic_fetch_add(&reports, 1) >= ECHO_REPORTS) continue;
    if (write(saved_stderr, line, strlen(line)) < 0) break;
  }
  fclose(in);
  return NULL;
}

static void capture_begin(void) {
  fflush(stderr);
  atomic_store(&reports, 0);
  ck_assert_int_eq(pipe(pipe_fds), 0);
  saved_stderr = dup(STDERR_FILENO);
  ck_assert(saved_stderr >= 0);
  ck_assert_int_eq(pthread_create(&echo_thread, NULL, echo_main, NULL), 0);
  ck_assert(dup2(pipe_fds[1], STDERR_FILENO) >= 0);
  close(pipe_fds[1]);
}

/* Restores stderr; returns the number of "mgc: " lines seen. */
static unsigned capture_end(void) {
  fflush(stderr);
  dup2(saved_stderr, STDERR_FILENO); /* closes the last write end: EOF */
  pthread_join(echo_thread, NULL);
  close(saved_stderr);
  return atomic_load(&reports);
}

static void setup(void) {
  gc_init();
  for (unsigned t = 0; t < NTHREADS; t++) {
    pthread_mutex_init(&inboxes[t].mu, NULL);
    inboxes[t].n = 0;
    nlive[t] = 0;
  }
}

/* ---- churn ---- */

START_TEST(test_threads_allocating_and_freeing_never_share_or_corrupt_objects) {
  pthread_t threads[NTHREADS];
  capture_begin();
  for (unsigned t = 0; t < NTHREADS; t++)
    ck_assert_int_eq(pthread_create(&threads[t], NULL, worker_main, (void *)(uintptr_t)t), 0);
  for (unsigned t = 0; t < NTHREADS; t++) ck_assert_int_eq(pthread_join(threads[t], NULL), 0);

  size_t n = gather_live();
  check_live_objects(n);
  for (size_t i = 0; i < n; i++) check_and_free(&all[i], NTHREADS);
  unsigned reports = capture_end();
  fprintf(stderr, "churn: %lu allocations, %lu local and %lu remote frees, %zu left at the end\n",
          atomic_load(&allocs), atomic_load(&local_frees), atomic_load(&remote_frees), n);

  ck_assert_msg(atomic_load(&failures) == 0, "%u failures; first: %s", atomic_load(&failures), first_failure);
  ck_assert_msg(atomic_load(&nonzero_allocs) == 0, "%u gc_alloc results were not zeroed",
                atomic_load(&nonzero_allocs));
  ck_assert_msg(reports == 0, "a correct program got %u \"mgc:\" reports (the first ones echoed above)", reports);
}
END_TEST

/* ---- collect ---- */

static atomic_bool collect_stop;
static char *batch[COLLECT_BATCH];

static void *collect_loop_main(void *arg) {
  (void)arg;
  gc_thread_register();
  while (!atomic_load(&collect_stop)) gc_collect();
  gc_thread_unregister();
  return NULL;
}

/* Small objects of ten classes and large ones, so new spans keep coming
 * from the page heap while cycles start and end. */
static size_t batch_size(unsigned i) { return i & 1 ? 40000 : (size_t)8 << (i / 2 % 10); }

START_TEST(test_objects_allocated_while_another_thread_collects_survive) {
  pthread_t t;
  atomic_store(&collect_stop, false);
  ck_assert_int_eq(pthread_create(&t, NULL, collect_loop_main, NULL), 0);
  uint64_t deadline = now_ns() + COLLECT_RUN_NS;
  unsigned long rounds = 0;
  while (now_ns() < deadline && atomic_load(&failures) == 0) {
    for (unsigned i = 0; i < COLLECT_BATCH; i++) {
      struct rec r = {gc_alloc(batch_size(i)), batch_size(i), i, (uint32_t)rounds};
      if (!r.p) record_failure("gc_alloc(%zu) returned NULL", r.n);
      else fill(&r);
      batch[i] = r.p;
    }
    for (unsigned i = 0; i < COLLECT_BATCH && batch[i]; i++) {
      struct rec r = {batch[i], batch_size(i), i, (uint32_t)rounds};
      if (gc_base(r.p) != r.p || !intact(&r))
        record_failure("round %lu: %zu-byte object %p, allocated during collections, "
                       "was freed or overwritten (gc_base %p)",
                       rounds, r.n, (void *)r.p, gc_base(r.p));
    }
    if (atomic_load(&failures)) break;
    for (unsigned i = 0; i < COLLECT_BATCH; i++) {
      gc_free(batch[i]);
      batch[i] = NULL;
    }
    rounds++;
  }
  atomic_store(&collect_stop, true);
  ck_assert_int_eq(pthread_join(t, NULL), 0);
  ck_assert_msg(atomic_load(&failures) == 0, "%s", first_failure);
  ck_assert_uint_gt(rounds, 0);
}
END_TEST

/* ---- lookup ---- */

static atomic_uintptr_t published, published_small;
static atomic_bool lookup_stop;

static void *churn_large_main(void *arg) {
  (void)arg;
  gc_thread_register();
  while (!atomic_load(&lookup_stop)) {
    char *p = gc_alloc(LOOKUP_SIZE);
    atomic_store(&published, (uintptr_t)p);
    char *q = gc_alloc(LOOKUP_SMALL_SIZE);
    atomic_store(&published_small, (uintptr_t)q);
    gc_free(p);
    gc_free(q);
  }
  gc_thread_unregister();
  return NULL;
}

/* gc_base and gc_size may be asked about any address (mgc.h): one whose
 * object another thread frees meanwhile gets its answer as of before or
 * after the free (base or NULL; the size or 0), never a crash. */
static void look_up(uintptr_t p, size_t size) {
  void *b = gc_base((void *)(p + size / 2));
  if (b != NULL && (uintptr_t)b > p + size / 2) record_failure("gc_base(%p + %zu) = %p", (void *)p, size / 2, b);
  size_t n = gc_size((void *)p);
  if (n != 0 && n < size) record_failure("gc_size(%p) = %zu for a %zu-byte object", (void *)p, n, size);
}

START_TEST(test_gc_base_and_gc_size_never_fault_while_another_thread_frees) {
  pthread_t t;
  atomic_store(&lookup_stop, false);
  ck_assert_int_eq(pthread_create(&t, NULL, churn_large_main, NULL), 0);
  uint64_t deadline = now_ns() + LOOKUP_RUN_NS;
  unsigned long lookups = 0;
  while (now_ns() < deadline) {
    for (int i = 0; i < 1000; i++) {
      uintptr_t p = atomic_load(&published), q = atomic_load(&published_small);
      if (!p || !q) continue;
      look_up(p, LOOKUP_SIZE);
      look_up(q, LOOKUP_SMALL_SIZE);
      lookups++;
    }
  }
  atomic_store(&lookup_stop, true);
  ck_assert_int_eq(pthread_join(t, NULL), 0);
  ck_assert_uint_gt(lookups, 0);
  ck_assert_msg(atomic_load(&failures) == 0, "%s", first_failure);
}
END_TEST

/* ---- rings ---- */

static atomic_ulong ring_ops;

static void *ring_main(void *arg) {
  uint32_t tid = (uint32_t)(uintptr_t)arg, serial = 0;
  gc_thread_register();
  struct rec ring[RING_OBJECTS]; /* on this thread's stack: a root */
  for (size_t i = 0; i < RING_OBJECTS; i++) {
    ring[i] = (struct rec){gc_alloc_atomic(RING_OBJECT_SIZE), RING_OBJECT_SIZE, tid, serial++};
    if (!ring[i].p) {
      record_failure("ring %u: gc_alloc_atomic failed", tid);
      return NULL;
    }
    fill(&ring[i]);
  }
  uint64_t end = now_ns() + RING_RUN_NS, ops = 0;
  for (size_t slot = 0; (ops & 1023) != 0 || now_ns() < end; ops++, slot = (slot + 1) % RING_OBJECTS) {
    struct rec r = {gc_alloc_atomic(RING_OBJECT_SIZE), RING_OBJECT_SIZE, tid, serial++};
    if (!r.p) {
      record_failure("ring %u: gc_alloc_atomic failed after %llu operations", tid, (unsigned long long)ops);
      break;
    }
    fill(&r);
    if (!intact(&ring[slot]))
      record_failure("ring %u: object %p (serial %u) overwritten", tid, (void *)ring[slot].p, ring[slot].serial);
    gc_free(ring[slot].p);
    ring[slot] = r;
  }
  for (size_t i = 0; i < RING_OBJECTS; i++) gc_free(ring[i].p);
  atomic_fetch_add(&ring_ops, ops);
  gc_thread_unregister();
  return NULL;
}

/* Each thread frees only objects it allocated, once: any report is
 * wrong.  A free held for a span that another thread has cached since is
 * judged by that thread's view of the span, which moves word by word
 * meanwhile; judged from a half-made move, such frees were refused as
 * second ones (dozens of reports a run before the fix, in
 * mcentral.c's free_cached_locked). */
START_TEST(test_threads_running_rings_of_their_own_get_no_reports) {
  pthread_t threads[RING_THREADS];
  capture_begin();
  for (unsigned t = 0; t < RING_THREADS; t++)
    ck_assert_int_eq(pthread_create(&threads[t], NULL, ring_main, (void *)(uintptr_t)t), 0);
  for (unsigned t = 0; t < RING_THREADS; t++) ck_assert_int_eq(pthread_join(threads[t], NULL), 0);
  unsigned reports = capture_end();
  fprintf(stderr, "rings: %lu operations in %u threads\n", atomic_load(&ring_ops), RING_THREADS);
  ck_assert_msg(atomic_load(&failures) == 0, "%u failures; first: %s", atomic_load(&failures), first_failure);
  ck_assert_msg(reports == 0, "correct frees got %u \"mgc:\" reports (the first ones echoed above)", reports);
}
END_TEST

/* ---- runner ---- */

static Suite *threads_alloc_suite(void) {
  Suite *s = suite_create("threads_alloc");

  TCase *churn = tcase_create("churn");
  tcase_add_checked_fixture(churn, setup, NULL);
  tcase_set_timeout(churn, 240);
  tcase_add_test(churn, test_threads_allocating_and_freeing_never_share_or_corrupt_objects);
  suite_add_tcase(s, churn);

  TCase *collect = tcase_create("collect");
  tcase_add_checked_fixture(collect, setup, NULL);
  tcase_set_timeout(collect, 60);
  tcase_add_test(collect, test_objects_allocated_while_another_thread_collects_survive);
  suite_add_tcase(s, collect);

  TCase *rings = tcase_create("rings");
  tcase_add_checked_fixture(rings, setup, NULL);
  tcase_set_timeout(rings, 60);
  tcase_add_test(rings, test_threads_running_rings_of_their_own_get_no_reports);
  suite_add_tcase(s, rings);

  TCase *lookup = tcase_create("lookup");
  tcase_add_checked_fixture(lookup, setup, NULL);
  tcase_set_timeout(lookup, 60);
  tcase_add_test(lookup, test_gc_base_and_gc_size_never_fault_while_another_thread_frees);
  suite_add_tcase(s, lookup);

  return s;
}

int main(void) {
  SRunner *sr = srunner_create(threads_alloc_suite());
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
