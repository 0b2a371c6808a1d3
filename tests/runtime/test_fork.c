/*
 * test_fork.c: a child made by fork() keeps a working heap with its one
 * thread, in both marking modes: it can allocate and collect (stopped-world
 * marking then runs on helper threads the child must start anew), and what
 * the parent had allocated survives in it.
 *
 * Concerns, one TCase each:
 *   child    fork from a quiet single-threaded program;
 *   busy     fork again and again while other threads allocate, free and
 *            publish pattern-filled objects, and while collections run back
 *            to back on a heap large enough that a cycle takes a while (the
 *            fork waits for the cycle in progress; the child inherits a heap
 *            swept only in part, and the records of threads it does not
 *            have).  Each child checks every object published before the
 *            fork, allocates, collects, checks them again and its own, and
 *            forks a grandchild that does the same.
 */
#include <check.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "mgc.h"

#include "gctest.h"

#define KEPT 1000
#define OBJ_BYTES 64
#define ROUNDS 200000

/* Threads allocating while the main thread forks, and what they publish:
 * slot i of a thread holds NULL or an object filled with pattern
 * (seed_of(t, i, serial)), its size and serial beside it; the pointer is
 * published last (release), so a child sees either NULL or a full object. */
#define BUSY_THREADS 3
#define BUSY_SLOTS 256
#define BUSY_FORKS 6
#define BUSY_LARGE_BYTES (40 * 1024)
#define BUSY_RETAINED_NODES 100000   /* a live list that makes marking take a while */
#define BUSY_NODE_BYTES 48

struct busy_slot {
  void *volatile obj;
  size_t size;
  uint64_t seed;
};

static void *kept[KEPT];
static struct busy_slot busy[BUSY_THREADS][BUSY_SLOTS];
static volatile int busy_stop;
static void *volatile retained_list;

static GCTEST_NOINLINE void churn(uint64_t seed) {
  for (int i = 0; i < ROUNDS; i++) {
    void *p = gc_alloc(OBJ_BYTES);
    GCTEST_REQUIRE(p != NULL, "out of memory");
    if (i % 200 == 0) {
      pattern_fill(p, OBJ_BYTES, seed + (uint64_t)(i / 200) % KEPT);
      kept[(i / 200) % KEPT] = p;
    }
  }
}

static bool kept_intact(uint64_t seed) {
  for (int k = 0; k < KEPT; k++)
    if (!kept[k] || pattern_check(kept[k], OBJ_BYTES, seed + (uint64_t)k) != OBJ_BYTES) return false;
  return true;
}

static void child_collects_after_fork(const char *concurrent) {
  setenv("MGC_CONCURRENT", concurrent, 1);
  gc_init();
  churn(1);
  gc_collect();
  pid_t pid = fork();
  ck_assert_int_ge(pid, 0);
  if (pid == 0) {
    /* The child: the parent's objects, then a heap of its own. */
    int ok = kept_intact(1);
    for (int r = 0; r < 3 && ok; r++) {
      churn(100 + (uint64_t)r);
      gc_collect();
      ok = kept_intact(100 + (uint64_t)r);
    }
    _exit(ok ? 0 : 1);
  }
  int status = 0;
  /* Waiting may take a while under sanitizers; let collections go on. */
  gc_blocking_begin();
  pid_t got = waitpid(pid, &status, 0);
  gc_blocking_end();
  ck_assert_int_eq(got, pid);
  ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
                "the child could not allocate and collect (status %d)", status);
  ck_assert(kept_intact(1));
}

static uint64_t busy_seed(int t, int slot, uint64_t serial) {
  return ((uint64_t)t << 48) ^ ((uint64_t)slot << 32) ^ serial;
}

static GCTEST_NOINLINE void *busy_main(void *arg) {
  int t = (int)(intptr_t)arg;
  uint64_t x = 0x9E3779B97F4A7C15ull * (uint64_t)(t + 1), serial = 0;
  while (!__atomic_load_n(&busy_stop, __ATOMIC_ACQUIRE)) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    struct busy_slot *sl = &busy[t][x % BUSY_SLOTS];
    void *old = sl->obj;
    __atomic_store_n(&sl->obj, NULL, __ATOMIC_RELEASE);
    if (old && x % 3 == 0) gc_free(old);
    size_t n = x % 61 == 0 ? BUSY_LARGE_BYTES : 1 + (size_t)(x >> 40) % 700;
    void *p = x % 5 == 0 ? gc_alloc_atomic(n) : gc_alloc(n);
    GCTEST_REQUIRE(p != NULL, "out of memory");
    sl->size = n;
    sl->seed = busy_seed(t, (int)(x % BUSY_SLOTS), ++serial);
    pattern_fill(p, n, sl->seed);
    __atomic_store_n(&sl->obj, p, __ATOMIC_RELEASE);
    for (int k = 0; k < 8; k++) GCTEST_REQUIRE(gc_alloc(32) != NULL, "out of memory"); /* garbage */
  }
  return NULL;
}

static GCTEST_NOINLINE void *collect_main(void *arg) {
  (void)arg;
  while (!__atomic_load_n(&busy_stop, __ATOMIC_ACQUIRE)) gc_collect();
  return NULL;
}

/* Every published object holds its pattern. */
static bool busy_intact(void) {
  for (int t = 0; t < BUSY_THREADS; t++)
    for (int i = 0; i < BUSY_SLOTS; i++) {
      void *p = __atomic_load_n(&busy[t][i].obj, __ATOMIC_ACQUIRE);
      if (p && pattern_check(p, busy[t][i].size, busy[t][i].seed) != busy[t][i].size) return false;
    }
  return true;
}

static size_t retained_length(void) {
  size_t n = 0;
  for (void **p = retained_list; p; p = *p) n++;
  return n;
}

static GCTEST_NOINLINE void build_retained_list(void) {
  for (int i = 0; i < BUSY_RETAINED_NODES; i++) {
    void **node = gc_alloc(BUSY_NODE_BYTES);
    GCTEST_REQUIRE(node != NULL, "out of memory");
    *node = retained_list;
    retained_list = node;
  }
}

/* In a child: the inherited objects, then a heap of its own, then a
 * grandchild that does the same.  Exit status 0 when all held. */
static int busy_child(int depth) {
  if (!busy_intact() || retained_length() != BUSY_RETAINED_NODES) return 1;
  churn(300 + (uint64_t)depth);
  gc_collect();
  gc_collect();
  if (!busy_intact() || !kept_intact(300 + (uint64_t)depth) || retained_length() != BUSY_RETAINED_NODES) return 2;
  if (depth > 0) return 0;
  pid_t pid = fork();
  if (pid < 0) return 3;
  if (pid == 0) _exit(busy_child(depth + 1));
  int status = 0;
  if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status)) return 4;
  return WEXITSTATUS(status) ? 10 + WEXITSTATUS(status) : 0;
}

static void fork_while_busy(const char *concurrent) {
  setenv("MGC_CONCURRENT", concurrent, 1);
  gc_init();
  build_retained_list();
  pthread_t threads[BUSY_THREADS + 1];
  for (int t = 0; t < BUSY_THREADS; t++)
    ck_assert_int_eq(gc_pthread_create(&threads[t], NULL, busy_main, (void *)(intptr_t)t), 0);
  ck_assert_int_eq(gc_pthread_create(&threads[BUSY_THREADS], NULL, collect_main, NULL), 0);
  int during_cycle = 0;
  for (int f = 0; f < BUSY_FORKS; f++) {
    uint64_t before = cycles_now();
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) _exit(busy_child(0));
    if (cycles_now() > before) during_cycle++;
    int status = 0;
    gc_blocking_begin();
    pid_t got = waitpid(pid, &status, 0);
    gc_blocking_end();
    ck_assert_int_eq(got, pid);
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
                  "fork %d: the child's heap did not work (status 0x%x: 1 inherited objects damaged, "
                  "2 damaged after collecting, 1x in the grandchild)", f, status);
  }
  __atomic_store_n(&busy_stop, 1, __ATOMIC_RELEASE);
  for (int t = 0; t <= BUSY_THREADS; t++) pthread_join(threads[t], NULL);
  ck_assert(busy_intact());
  ck_assert_uint_eq(retained_length(), BUSY_RETAINED_NODES);
  /* Collections ran back to back: most forks waited for one to end. */
  ck_assert_msg(during_cycle > 0, "no fork overlapped a collection");
}

START_TEST(test_child_works_after_fork_while_threads_allocate_and_cycles_run_stopped_world) { fork_while_busy("0"); }
END_TEST

START_TEST(test_child_works_after_fork_while_threads_allocate_and_cycles_run_concurrent) { fork_while_busy("1"); }
END_TEST

START_TEST(test_child_collects_after_fork_with_stopped_world_marking) { child_collects_after_fork("0"); }
END_TEST

START_TEST(test_child_collects_after_fork_with_concurrent_marking) { child_collects_after_fork("1"); }
END_TEST

static Suite *fork_suite(void) {
  Suite *s = suite_create("fork");
  TCase *tc = tcase_create("child");
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, test_child_collects_after_fork_with_stopped_world_marking);
  tcase_add_test(tc, test_child_collects_after_fork_with_concurrent_marking);
  suite_add_tcase(s, tc);
  tc = tcase_create("busy");
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, test_child_works_after_fork_while_threads_allocate_and_cycles_run_stopped_world);
  tcase_add_test(tc, test_child_works_after_fork_while_threads_allocate_and_cycles_run_concurrent);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) { return run_suite(fork_suite()); }
