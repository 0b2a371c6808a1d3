/*
 * test_fork.c: a child made by fork() keeps a working heap with its one
 * thread, in both marking modes: it can allocate and collect (stopped-world
 * marking then runs on helper threads the child must start anew), and what
 * the parent had allocated survives in it.
 */
#include <check.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "mgc.h"

#include "gctest.h"

#define KEPT 1000
#define OBJ_BYTES 64
#define ROUNDS 200000

static void *kept[KEPT];

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
  return s;
}

int main(void) { return run_suite(fork_suite()); }
