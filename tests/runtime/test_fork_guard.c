/*
 * test_fork_guard.c: a fork() waits for the lock-free sequences on large
 * spans to end (runtime/forkguard.h).
 *
 * The suite links with -Wl,--wrap=mheap_free_span,--wrap=os_release: once
 * armed, the first call on a span of WATCHED_PAGES pages (or, for the
 * scavenger, the first release) says so and sleeps HOLD_MS before going
 * on, the middle of the sequence a fork must not cut.  The test forks
 * during that sleep; the child then checks what a cut would break:
 *   sweep  the background sweeper frees a dead large object: the child's
 *          next collections must finish (cut, its mark waits for ever for
 *          the sweep the parent's sweeper had counted in progress);
 *   free   gc_free of a large object: the span must be free in the child
 *          (cut, the has_freed exchange was made but the span never goes
 *          back to the page heap);
 *   scavenge  the scavenger returns a free span to the OS: no pages may be
 *          out of the free lists in the child (cut, the span being
 *          released is in no list, and nobody puts it back).
 * A child that hangs is killed by an alarm and the test fails.
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
#include "alloc/mheap.h"
#include "alloc/mspan.h"
#include "alloc/scavenger.h"

#include "../gc/gctest.h"

#define WATCHED_PAGES 37 /* no other span of the test has this size */
#define WATCHED_BYTES ((size_t)(WATCHED_PAGES - 1) * PAGE_SIZE + 1)
#define HOLD_MS 300
#define CHILD_ALARM_S 20

static int armed, holding;

void __real_mheap_free_span(struct mspan *s);

void __wrap_mheap_free_span(struct mspan *s) {
  if (s->npages == WATCHED_PAGES && __atomic_exchange_n(&armed, 0, __ATOMIC_ACQ_REL)) {
    __atomic_store_n(&holding, 1, __ATOMIC_RELEASE);
    struct timespec ts = {0, HOLD_MS * 1000000L};
    nanosleep(&ts, NULL);
  }
  __real_mheap_free_span(s);
}

static int release_armed;

int __real_os_release(void *p, size_t size);

int __wrap_os_release(void *p, size_t size) {
  if (__atomic_exchange_n(&release_armed, 0, __ATOMIC_ACQ_REL)) {
    __atomic_store_n(&holding, 1, __ATOMIC_RELEASE);
    struct timespec ts = {0, HOLD_MS * 1000000L};
    nanosleep(&ts, NULL);
  }
  return __real_os_release(p, size);
}

static bool wait_until_holding(void) {
  for (int i = 0; i < 10000 && !__atomic_load_n(&holding, __ATOMIC_ACQUIRE); i++) usleep(1000);
  return __atomic_load_n(&holding, __ATOMIC_ACQUIRE);
}

/* Fork while the watched span is held; the child runs check and exits
 * with its result. */
static void fork_while_holding(int (*check)(void)) {
  ck_assert_msg(wait_until_holding(), "no watched sequence began within 10 s");
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

static Suite *fork_guard_suite(void) {
  Suite *s = suite_create("fork_guard");
  TCase *tc = tcase_create("sweep");
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, test_a_fork_waits_for_a_large_sweep_to_end);
  suite_add_tcase(s, tc);
  tc = tcase_create("free");
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, test_a_fork_waits_for_a_large_free_to_end);
  suite_add_tcase(s, tc);
  tc = tcase_create("scavenge");
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, test_a_fork_waits_for_a_scavenger_release_to_end);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) { return run_suite(fork_guard_suite()); }
