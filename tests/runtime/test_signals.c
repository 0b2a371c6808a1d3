/*
 * test_signals.c: the program's own signals and blocking system calls
 * while mgc stops the world (include/mgc.h, gc_blocking_begin; the stop
 * signal is SIGPWR unless MGC_STOP_SIGNAL says otherwise).
 *
 * What mgc promises, and each test proves:
 *   handlers    handlers the program installs for its own signals
 *               (SIGUSR1, SIGALRM) keep running while collections stop
 *               the world again and again: none is lost or kept back;
 *   restart     mgc's stop handler is installed with SA_RESTART, so a
 *               registered thread blocked in read() on a pipe (or in
 *               waitpid()) while hundreds of collections stop it never
 *               sees EINTR: the kernel restarts the call;
 *   blocking    calls the kernel never restarts after a handler
 *               (nanosleep, poll, select, epoll_wait) return EINTR when
 *               the stop signal lands in them; a thread that makes them
 *               inside gc_blocking_begin/end is not signalled, and never
 *               sees EINTR, even when it enters the region while a stop
 *               is in progress.
 *
 * Every test forks: it installs handlers and timers, and starts threads.
 */
#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "mgc.h"

#include "gctest.h"
#include "childtest.h"

#define COLLECTIONS 300             /* stops of the world per test, at least */
#define READ_ROUNDS 10              /* bytes the reader waits for */
#define SIGUSR1_SENDS 200
#define SIGNAL_WAIT_NS 5000000000ull /* a sent signal must arrive within 5 s */
#define ALARM_INTERVAL_US 2000
#define SLEEP_NS 20000              /* 20 us naps in the blocking test */
#define SLEEPER_ALLOCS 20           /* work between two naps */
#define BLOCKING_COLLECTIONS 1500   /* the race it checks is rare: more stops */
#define CHURN_BYTES 48


static volatile int stop_threads;

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}


static void install(int sig, void (*fn)(int)) {
  struct sigaction sa;
  memset(&sa, 0, sizeof(sa));
  sa.sa_handler = fn;
  sa.sa_flags = SA_RESTART;
  sigemptyset(&sa.sa_mask);
  CHILD_REQUIRE(sigaction(sig, &sa, NULL) == 0, "sigaction(%d): %s", sig, strerror(errno));
}

/* Allocates garbage until told to stop: collections keep coming. */
static void *churn_main(void *arg) {
  (void)arg;
  while (!__atomic_load_n(&stop_threads, __ATOMIC_ACQUIRE)) {
    void *p = gc_alloc(CHURN_BYTES);
    GCTEST_REQUIRE(p != NULL, "out of memory");
  }
  return NULL;
}

static void collect_many(int n) {
  for (int i = 0; i < n; i++) gc_collect();
}

/* ---- handlers ---- */

static volatile int usr1_seen, alrm_seen;
static void on_usr1(int sig) {
  (void)sig;
  __atomic_add_fetch(&usr1_seen, 1, __ATOMIC_RELAXED);
}
static void on_alrm(int sig) {
  (void)sig;
  __atomic_add_fetch(&alrm_seen, 1, __ATOMIC_RELAXED);
}

static void *collector_loop(void *arg) {
  (void)arg;
  while (!__atomic_load_n(&stop_threads, __ATOMIC_ACQUIRE)) gc_collect();
  return NULL;
}

static void program_handlers_keep_working(void) {
  install(SIGUSR1, on_usr1);
  install(SIGALRM, on_alrm);
  pthread_t churn, coll;
  CHILD_REQUIRE(gc_pthread_create(&churn, NULL, churn_main, NULL) == 0, "cannot start a thread");
  CHILD_REQUIRE(gc_pthread_create(&coll, NULL, collector_loop, NULL) == 0, "cannot start a thread");
  struct itimerval it = {{0, ALARM_INTERVAL_US}, {0, ALARM_INTERVAL_US}};
  CHILD_REQUIRE(setitimer(ITIMER_REAL, &it, NULL) == 0, "setitimer: %s", strerror(errno));
  uint64_t cycles0 = cycles_now();
  /* One SIGUSR1 at a time to the allocating thread (a standard signal
   * sent twice before delivery counts once): each must be handled. */
  for (int i = 0; i < SIGUSR1_SENDS; i++) {
    int before = __atomic_load_n(&usr1_seen, __ATOMIC_RELAXED);
    CHILD_REQUIRE(pthread_kill(churn, SIGUSR1) == 0, "pthread_kill failed");
    uint64_t deadline = now_ns() + SIGNAL_WAIT_NS;
    while (__atomic_load_n(&usr1_seen, __ATOMIC_RELAXED) == before)
      CHILD_REQUIRE(now_ns() < deadline, "SIGUSR1 %d was not handled within 5 s", i);
  }
  while (cycles_now() < cycles0 + COLLECTIONS) {
    struct timespec nap = {0, 1000000};
    gc_blocking_begin();
    nanosleep(&nap, NULL); /* EINTR from SIGALRM is ours: ignored */
    gc_blocking_end();
  }
  struct itimerval off = {{0, 0}, {0, 0}};
  setitimer(ITIMER_REAL, &off, NULL);
  __atomic_store_n(&stop_threads, 1, __ATOMIC_RELEASE);
  pthread_join(churn, NULL);
  pthread_join(coll, NULL);
  uint64_t cycles = cycles_now() - cycles0;
  CHILD_REQUIRE(usr1_seen == SIGUSR1_SENDS, "SIGUSR1 handled %d times, sent %d", usr1_seen, SIGUSR1_SENDS);
  /* The timer ran for as long as the collections took; at least a few
   * alarms per hundred collections must have come through. */
  CHILD_REQUIRE(alrm_seen >= 10, "SIGALRM handled only %d times over %llu collections", alrm_seen,
                (unsigned long long)cycles);
}

START_TEST(test_program_signal_handlers_keep_working_during_collections) {
  child_run(program_handlers_keep_working, true);
}
END_TEST

/* ---- restart ---- */

static int pipe_fds[2];
static volatile int reader_eintr, reader_got;

/* A registered thread, outside any blocking region: every stop of the
 * world signals it while it sits in read(). */
static void *reader_main(void *arg) {
  (void)arg;
  char c;
  for (;;) {
    ssize_t n = read(pipe_fds[0], &c, 1);
    if (n < 0 && errno == EINTR) {
      __atomic_add_fetch(&reader_eintr, 1, __ATOMIC_RELAXED);
      continue;
    }
    if (n <= 0 || c == 'q') break;
    __atomic_add_fetch(&reader_got, 1, __ATOMIC_RELEASE);
  }
  return NULL;
}

static pid_t waited_child;
static volatile int waiter_eintr, waiter_done;

static void *waiter_main(void *arg) {
  (void)arg;
  int status;
  pid_t r;
  while ((r = waitpid(waited_child, &status, 0)) < 0 && errno == EINTR)
    __atomic_add_fetch(&waiter_eintr, 1, __ATOMIC_RELAXED);
  __atomic_store_n(&waiter_done, r == waited_child ? 1 : -1, __ATOMIC_RELEASE);
  return NULL;
}

static void blocked_read_and_waitpid_restart(void) {
  CHILD_REQUIRE(pipe(pipe_fds) == 0, "pipe: %s", strerror(errno));
  int release[2];
  CHILD_REQUIRE(pipe(release) == 0, "pipe: %s", strerror(errno));
  waited_child = fork();
  CHILD_REQUIRE(waited_child >= 0, "fork: %s", strerror(errno));
  if (waited_child == 0) {
    /* Exits when the test closes its end of `release`. */
    char c;
    close(release[1]);
    while (read(release[0], &c, 1) < 0 && errno == EINTR) {
    }
    _exit(0);
  }
  close(release[0]);
  pthread_t reader, waiter;
  CHILD_REQUIRE(gc_pthread_create(&reader, NULL, reader_main, NULL) == 0, "cannot start the reader");
  CHILD_REQUIRE(gc_pthread_create(&waiter, NULL, waiter_main, NULL) == 0, "cannot start the waiter");
  uint64_t cycles0 = cycles_now();
  for (int r = 0; r < READ_ROUNDS; r++) {
    collect_many(COLLECTIONS / READ_ROUNDS);
    CHILD_REQUIRE(write(pipe_fds[1], "x", 1) == 1, "write: %s", strerror(errno));
    uint64_t deadline = now_ns() + SIGNAL_WAIT_NS;
    while (__atomic_load_n(&reader_got, __ATOMIC_ACQUIRE) <= r)
      CHILD_REQUIRE(now_ns() < deadline, "the reader did not get byte %d", r);
  }
  CHILD_REQUIRE(cycles_now() - cycles0 >= COLLECTIONS, "fewer collections than asked for");
  CHILD_REQUIRE(__atomic_load_n(&waiter_done, __ATOMIC_ACQUIRE) == 0, "waitpid returned early");
  close(release[1]);
  CHILD_REQUIRE(write(pipe_fds[1], "q", 1) == 1, "write: %s", strerror(errno));
  pthread_join(reader, NULL);
  pthread_join(waiter, NULL);
  CHILD_REQUIRE(reader_eintr == 0, "read() returned EINTR %d times", reader_eintr);
  CHILD_REQUIRE(waiter_eintr == 0, "waitpid() returned EINTR %d times", waiter_eintr);
  CHILD_REQUIRE(waiter_done == 1, "waitpid() failed");
}

START_TEST(test_blocked_read_and_waitpid_never_return_eintr_across_collections) {
  child_run(blocked_read_and_waitpid_restart, true);
}
END_TEST

/* ---- blocking ---- */

static volatile int sleeper_eintr, sleeper_naps;

/* Short naps, each in its own blocking region, with a little work
 * between them: the thread enters regions thousands of times, often just
 * as a stop begins.  A stopper that found it running a moment before has
 * signalled it; before mgc waited for that stop to end inside
 * gc_blocking_begin, the signal could land in the nanosleep (about one
 * nap in a thousand here). */
static void *sleeper_main(void *arg) {
  (void)arg;
  while (!__atomic_load_n(&stop_threads, __ATOMIC_ACQUIRE)) {
    struct timespec nap = {0, SLEEP_NS};
    gc_blocking_begin();
    int r = nanosleep(&nap, NULL);
    int err = errno;
    gc_blocking_end();
    if (r != 0 && err == EINTR) __atomic_add_fetch(&sleeper_eintr, 1, __ATOMIC_RELAXED);
    __atomic_add_fetch(&sleeper_naps, 1, __ATOMIC_RELAXED);
    for (int k = 0; k < SLEEPER_ALLOCS; k++) { /* between naps the thread runs */
      void *p = gc_alloc(CHURN_BYTES);
      GCTEST_REQUIRE(p != NULL, "out of memory");
    }
  }
  return NULL;
}

static void nanosleep_in_blocking_region_is_not_interrupted(void) {
  enum { SLEEPERS = 2 };
  pthread_t t[SLEEPERS];
  for (int i = 0; i < SLEEPERS; i++)
    CHILD_REQUIRE(gc_pthread_create(&t[i], NULL, sleeper_main, NULL) == 0, "cannot start a thread");
  uint64_t cycles0 = cycles_now();
  collect_many(BLOCKING_COLLECTIONS);
  __atomic_store_n(&stop_threads, 1, __ATOMIC_RELEASE);
  for (int i = 0; i < SLEEPERS; i++) pthread_join(t[i], NULL);
  CHILD_REQUIRE(cycles_now() - cycles0 >= BLOCKING_COLLECTIONS, "fewer collections than asked for");
  CHILD_REQUIRE(sleeper_naps > 0, "the sleepers never slept");
  CHILD_REQUIRE(sleeper_eintr == 0, "nanosleep in a blocking region returned EINTR %d times in %d naps",
                sleeper_eintr, sleeper_naps);
}

START_TEST(test_nanosleep_inside_blocking_region_is_never_interrupted) {
  child_run(nanosleep_in_blocking_region_is_not_interrupted, true);
}
END_TEST

static Suite *signals_suite(void) {
  Suite *s = suite_create("signals");
  TCase *tc = tcase_create("handlers");
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, test_program_signal_handlers_keep_working_during_collections);
  suite_add_tcase(s, tc);
  tc = tcase_create("restart");
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, test_blocked_read_and_waitpid_never_return_eintr_across_collections);
  suite_add_tcase(s, tc);
  tc = tcase_create("blocking");
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, test_nanosleep_inside_blocking_region_is_never_interrupted);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) { return run_suite(signals_suite()); }
