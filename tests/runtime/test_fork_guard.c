/*
 * test_fork_guard.c: what a thread is in the middle of when another forks
 * is finished or undone in the child (runtime/forkguard.h, and the child's
 * sweep for spans cached by threads it does not have, alloc/mcentral.c).
 *
 * The suite links with --wrap for mheap_free_span, mheap_alloc_span,
 * os_release and mcentral_uncache_span: once armed, the wrapped call says so and waits,
 * before going on, until the fork has begun (a pthread_atfork prepare
 * handler of the test, which runs before mgc's) and HOLD_AFTER_FORK_MS
 * more, time for an unguarded fork to finish.  The child then checks what
 * a cut would break:
 *   sweep     the background sweeper frees a dead large object: the
 *             child's next collections must finish (cut, its mark waits
 *             for ever for the sweep the parent had counted in progress);
 *   free      gc_free of a large object: the span must be free in the
 *             child (cut, it was marked freed but never handed back);
 *   scavenge  the scavenger returns a free span to the OS: no pages may be
 *             out of the free lists in the child (cut, nobody puts the
 *             span being released back);
 *   alloc     a thread allocates a large object: the child's heap_live
 *             must count it (cut, the span is taken but not yet counted);
 *   cached    a thread gives back a span it has taken out of its slot: in
 *             the child no span may be marked cached by any mcache but the
 *             forking thread's (cut, no slot names it and it is lost, or
 *             worse, a new thread whose record lands on the old one's
 *             finds it "cached").
 * A child that hangs is killed by an alarm and the test fails.  Each test
 * needs a process of its own (CK_FORK is forced).
 */
#include <check.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "mgc.h"

#include "alloc/arena.h"
#include "alloc/heaplive.h"
#include "alloc/mcentral.h"
#include "alloc/mheap.h"
#include "alloc/mspan.h"
#include "alloc/scavenger.h"
#include "runtime/thread.h"

#include "../gc/gctest.h"

#define WATCHED_PAGES 37 /* no other span of the test has this size */
#define WATCHED_BYTES ((size_t)(WATCHED_PAGES - 1) * PAGE_SIZE + 1)
#define CHILD_ALARM_S 20
/* A held sequence goes on this long after the fork began (the test's own
 * prepare handler ran): long enough for an unguarded fork to finish, so
 * that the child is made in the middle of the sequence. */
#define HOLD_AFTER_FORK_MS 100
#define WAIT_LIMIT_MS 10000

static int armed, release_armed, uncache_armed, holding, fork_began;

static void sleep_ms(long ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

/* Registered after gc_init, so it runs before mgc's prepare handler. */
static void note_fork_began(void) { __atomic_store_n(&fork_began, 1, __ATOMIC_RELEASE); }

/* In a wrapped call: say so, and go on only once the fork has begun and
 * had time to finish (or to wait for the sequence, if it is guarded). */
static void hold_until_forked(void) {
  __atomic_store_n(&holding, 1, __ATOMIC_RELEASE);
  for (int i = 0; i < WAIT_LIMIT_MS && !__atomic_load_n(&fork_began, __ATOMIC_ACQUIRE); i++) sleep_ms(1);
  sleep_ms(HOLD_AFTER_FORK_MS);
}

void __real_mheap_free_span(struct mspan *s);

void __wrap_mheap_free_span(struct mspan *s) {
  if (s->npages == WATCHED_PAGES && __atomic_exchange_n(&armed, 0, __ATOMIC_ACQ_REL)) hold_until_forked();
  __real_mheap_free_span(s);
}

int __real_os_release(void *p, size_t size);

int __wrap_os_release(void *p, size_t size) {
  if (__atomic_exchange_n(&release_armed, 0, __ATOMIC_ACQ_REL)) hold_until_forked();
  return __real_os_release(p, size);
}

static int alloc_armed;

struct mspan *__real_mheap_alloc_span(uintptr_t npages, unsigned spc);

/* Held after the span is taken, before the caller goes on. */
struct mspan *__wrap_mheap_alloc_span(uintptr_t npages, unsigned spc) {
  struct mspan *s = __real_mheap_alloc_span(npages, spc);
  if (npages == WATCHED_PAGES && __atomic_exchange_n(&alloc_armed, 0, __ATOMIC_ACQ_REL)) hold_until_forked();
  return s;
}

void __real_mcentral_uncache_span(struct mspan *s);

void __wrap_mcentral_uncache_span(struct mspan *s) {
  if (__atomic_exchange_n(&uncache_armed, 0, __ATOMIC_ACQ_REL)) hold_until_forked();
  __real_mcentral_uncache_span(s);
}

static bool wait_until_holding(void) {
  for (int i = 0; i < WAIT_LIMIT_MS && !__atomic_load_n(&holding, __ATOMIC_ACQUIRE); i++) sleep_ms(1);
  return __atomic_load_n(&holding, __ATOMIC_ACQUIRE);
}

/* Fork while the watched span is held; the child runs check and exits
 * with its result. */
static void fork_while_holding(int (*check)(void)) {
  ck_assert_msg(wait_until_holding(), "no watched sequence began within 10 s");
  ck_assert_int_eq(pthread_atfork(note_fork_began, NULL, NULL), 0);
  pid_t pid = fork();
  ck_assert_int_ge(pid, 0);
  if (pid == 0) {
    signal(SIGALRM, SIG_DFL); /* Check's own handler would kill the test */
    alarm(CHILD_ALARM_S);
    _exit(check());
  }
  int status = 0;
  gc_blocking_begin();
  pid_t got = waitpid(pid, &status, 0);
  gc_blocking_end();
  ck_assert_int_eq(got, pid);
  ck_assert_msg(!WIFSIGNALED(status) || WTERMSIG(status) != SIGALRM,
                "the child hung (killed by its alarm after %d s)", CHILD_ALARM_S);
  ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the child failed (status 0x%x)", status);
}

/* ---- sweep -------------------------------------------------------------- */

static GCTEST_NOINLINE void drop_watched_objects(void) {
  for (int i = 0; i < 8; i++) GCTEST_REQUIRE(gc_alloc_atomic(WATCHED_BYTES) != NULL, "out of memory");
}

static int child_collects(void) {
  gc_collect();
  gc_collect();
  return 0;
}

/* gc_collect sweeps the heap in its caller before it returns: here a
 * thread other than the one that forks. */
static void *collect_watched(void *arg) {
  (void)arg;
  drop_watched_objects();
  __atomic_store_n(&armed, 1, __ATOMIC_RELEASE);
  gc_collect();
  return NULL;
}

START_TEST(test_a_fork_waits_for_a_large_sweep_to_end) {
  setenv("MGC_CONCURRENT", "1", 1);
  gc_init();
  pthread_t th;
  ck_assert_int_eq(gc_pthread_create(&th, NULL, collect_watched, NULL), 0);
  fork_while_holding(child_collects);
  pthread_join(th, NULL);
}
END_TEST

/* ---- free --------------------------------------------------------------- */

static uintptr_t freed_addr;

static void *free_watched(void *arg) {
  (void)arg;
  void *p = gc_alloc_atomic(WATCHED_BYTES);
  GCTEST_REQUIRE(p != NULL, "out of memory");
  __atomic_store_n(&freed_addr, (uintptr_t)p, __ATOMIC_RELEASE);
  __atomic_store_n(&armed, 1, __ATOMIC_RELEASE);
  gc_free(p);
  return NULL;
}

static int child_finds_the_span_free(void) {
  struct mspan *s = span_of_heap(__atomic_load_n(&freed_addr, __ATOMIC_ACQUIRE));
  return s && __atomic_load_n(&s->state, __ATOMIC_ACQUIRE) == MSPAN_IN_USE ? 1 : 0;
}

START_TEST(test_a_fork_waits_for_a_large_free_to_end) {
  setenv("MGC_CONCURRENT", "0", 1); /* no barrier: gc_free hands the span back at once */
  gc_init();
  pthread_t th;
  ck_assert_int_eq(gc_pthread_create(&th, NULL, free_watched, NULL), 0);
  fork_while_holding(child_finds_the_span_free);
  pthread_join(th, NULL);
}
END_TEST

/* ---- scavenge ----------------------------------------------------------- */

static int child_finds_no_pages_in_release(void) { return mheap_pages_in_release() == 0 ? 0 : 1; }

START_TEST(test_a_fork_waits_for_a_scavenger_release_to_end) {
  setenv("MGC_CONCURRENT", "1", 1);
  gc_init();
  void *p = gc_alloc_atomic(WATCHED_BYTES);
  ck_assert_ptr_nonnull(p);
  gc_free(p); /* a free span for the scavenger */
  scavenger_set_age(0);
  __atomic_store_n(&release_armed, 1, __ATOMIC_RELEASE);
  scavenger_wake();
  fork_while_holding(child_finds_no_pages_in_release);
}
END_TEST

/* ---- large allocation ---------------------------------------------------- */

static uintptr_t live_before;

static void *allocate_watched(void *arg) {
  (void)arg;
  __atomic_store_n(&alloc_armed, 1, __ATOMIC_RELEASE);
  GCTEST_REQUIRE(gc_alloc_atomic(WATCHED_BYTES) != NULL, "out of memory");
  return NULL;
}

static int child_counts_the_object(void) {
  return atomic_load_relaxed(&heap_live) >= live_before + (uintptr_t)WATCHED_PAGES * PAGE_SIZE ? 0 : 1;
}

START_TEST(test_a_fork_waits_for_a_large_allocation_to_be_counted) {
  setenv("MGC_GOGC", "off", 1); /* no cycle changes heap_live meanwhile */
  gc_init();
  live_before = atomic_load_relaxed(&heap_live);
  pthread_t th;
  ck_assert_int_eq(gc_pthread_create(&th, NULL, allocate_watched, NULL), 0);
  fork_while_holding(child_counts_the_object);
  pthread_join(th, NULL);
}
END_TEST

/* ---- cached spans -------------------------------------------------------- */

/* A thread that runs through spans of one class: the first span it fills
 * leaves its slot and is given back (mcentral_uncache_span, held). */
static void *allocate_through_spans(void *arg) {
  (void)arg;
  __atomic_store_n(&uncache_armed, 1, __ATOMIC_RELEASE);
  for (int i = 0; i < 100000 && __atomic_load_n(&uncache_armed, __ATOMIC_ACQUIRE); i++)
    GCTEST_REQUIRE(gc_alloc_atomic(48) != NULL, "out of memory");
  return NULL;
}

static uintptr_t forking_mcache;

static int child_finds_no_span_cached_by_others(void) {
  return mcentral_count_cached_by_others(forking_mcache) == 0 ? 0 : 1;
}

START_TEST(test_a_span_out_of_its_slot_at_the_fork_is_given_back_in_the_child) {
  setenv("MGC_CONCURRENT", "1", 1);
  gc_init();
  forking_mcache = (uintptr_t)thread_mcache();
  pthread_t th;
  ck_assert_int_eq(gc_pthread_create(&th, NULL, allocate_through_spans, NULL), 0);
  fork_while_holding(child_finds_no_span_cached_by_others);
  pthread_join(th, NULL);
}
END_TEST

/* One TCase per test, each with the time a held sequence and its child need. */
static void add_case(Suite *s, const char *name, const TTest *test) {
  TCase *tc = tcase_create(name);
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, test);
  suite_add_tcase(s, tc);
}

static Suite *fork_guard_suite(void) {
  Suite *s = suite_create("fork_guard");
  add_case(s, "sweep", test_a_fork_waits_for_a_large_sweep_to_end);
  add_case(s, "free", test_a_fork_waits_for_a_large_free_to_end);
  add_case(s, "scavenge", test_a_fork_waits_for_a_scavenger_release_to_end);
  add_case(s, "alloc", test_a_fork_waits_for_a_large_allocation_to_be_counted);
  add_case(s, "cached", test_a_span_out_of_its_slot_at_the_fork_is_given_back_in_the_child);
  return s;
}

/* Every test must start mgc afresh in a process of its own. */
int main(void) { return run_suite_in_children(fork_guard_suite()); }
