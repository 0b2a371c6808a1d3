/*
 * test_lock.c: mgc's lock (runtime/lock.c): the count of waiting threads
 * and the hand-over to them that background threads use.
 *
 * Concerns, one TCase:
 *   waiters   an uncontended lock has no waiters; a thread blocked in
 *             lock_acquire is counted until it holds the lock;
 *             lock_wait_for_waiters returns only after a waiting thread
 *             had the lock (a plain release and relock wins it back at
 *             once), and the thread no longer counts as waiting.
 *
 * Threads here are not registered with mgc: they wait in plain
 * pthread_mutex_lock (the registered case only adds a blocking region).
 */
#include <check.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "runtime/atomics.h"
#include "runtime/lock.h"
#include "runtime/os.h"

/* How long the test waits for a thread to block on the lock. */
#define WAIT_FOR_WAITER_NS 5000000000ull
/* How long the waiter holds the lock once it has it. */
#define WAITER_HOLD_NS 5000000L

static struct mgc_lock lock = MGC_LOCK_INITIALIZER(LOCK_MHEAP);
static atomic_word waiter_has_held;

static void sleep_ns(long ns) {
  struct timespec t = {ns / 1000000000L, ns % 1000000000L};
  nanosleep(&t, NULL);
}

static void *waiter(void *arg) {
  (void)arg;
  lock_acquire(&lock);
  atomic_store_relaxed(&waiter_has_held, 1);
  sleep_ns(WAITER_HOLD_NS);
  lock_release(&lock);
  return NULL;
}

/* Start a thread that blocks on `lock` (held by the caller); returns once
 * it is counted as a waiter. */
static pthread_t start_waiter(void) {
  atomic_store_relaxed(&waiter_has_held, 0);
  pthread_t t;
  ck_assert_int_eq(pthread_create(&t, NULL, waiter, NULL), 0);
  uint64_t deadline = os_nanotime() + WAIT_FOR_WAITER_NS;
  while (!lock_has_waiters(&lock) && os_nanotime() < deadline) sleep_ns(100000);
  ck_assert_msg(lock_has_waiters(&lock), "a thread blocked in lock_acquire is not counted as waiting");
  sleep_ns(1000000); /* past its spinning: asleep in the mutex */
  ck_assert(lock_has_waiters(&lock));
  return t;
}

START_TEST(test_uncontended_lock_has_no_waiters) {
  ck_assert(!lock_has_waiters(&lock));
  lock_acquire(&lock);
  ck_assert(!lock_has_waiters(&lock));
  lock_release(&lock);
  ck_assert(!lock_has_waiters(&lock));
}
END_TEST

START_TEST(test_wait_for_waiters_returns_after_the_waiter_had_the_lock) {
  lock_acquire(&lock);
  pthread_t t = start_waiter();
  /* As the scavenger does between windows: release, wait, take again. */
  lock_release(&lock);
  lock_wait_for_waiters(&lock);
  lock_acquire(&lock);
  ck_assert_msg(atomic_load_relaxed(&waiter_has_held),
                "lock_wait_for_waiters returned before the waiting thread had the lock");
  ck_assert(!lock_has_waiters(&lock));
  lock_release(&lock);
  pthread_join(t, NULL);
}
END_TEST

static Suite *lock_suite(void) {
  Suite *s = suite_create("lock");
  TCase *tc = tcase_create("waiters");
  tcase_set_timeout(tc, 30);
  tcase_add_test(tc, test_uncontended_lock_has_no_waiters);
  tcase_add_test(tc, test_wait_for_waiters_returns_after_the_waiter_had_the_lock);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  SRunner *sr = srunner_create(lock_suite());
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? 1 : 0;
}
