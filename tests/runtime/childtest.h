/*
 * childtest.h: running a test body in a forked child (runtime suites).
 *
 * Tests that change process state (resource limits, signal handlers,
 * thread counts, mgc's settings) run in a child of their own.  A check in
 * the child prints what failed on stderr and exits non-zero
 * (CHILD_REQUIRE); the parent turns that into a Check failure.
 */
#ifndef MGC_TESTS_CHILDTEST_H
#define MGC_TESTS_CHILDTEST_H

#include <check.h>
#include <stdbool.h>
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

#include "mgc.h"

#define CHILD_EXIT_OK 0
#define CHILD_EXIT_FAILED 1

/* A check in the child: say what failed and exit non-zero. */
#define CHILD_REQUIRE(cond, ...)                                       \
  do {                                                                 \
    if (!(cond)) {                                                     \
      fprintf(stderr, "child: %s:%d: ", __FILE__, __LINE__);           \
      fprintf(stderr, __VA_ARGS__);                                    \
      fprintf(stderr, "\n");                                           \
      _exit(CHILD_EXIT_FAILED);                                        \
    }                                                                  \
  } while (0)

/* Run body in a child (calling gc_init first if init_first) and fail the
 * test unless the child exits cleanly. */
__attribute__((unused)) static void child_run(void (*body)(void), bool init_first) {
  fflush(NULL);
  pid_t pid = fork();
  ck_assert_int_ge(pid, 0);
  if (pid == 0) {
    if (init_first) gc_init();
    body();
    _exit(CHILD_EXIT_OK);
  }
  int status = 0;
  ck_assert_int_eq(waitpid(pid, &status, 0), pid);
  ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == CHILD_EXIT_OK,
                "the child failed (status 0x%x; its stderr says why)", status);
}

#endif /* MGC_TESTS_CHILDTEST_H */
