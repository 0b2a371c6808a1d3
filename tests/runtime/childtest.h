/*
 * childtest.h: running a test body in a forked child (runtime suites).
 *
 * Tests that change process state (resource limits, signal handlers,
 * thread counts, mgc's settings) run in a child of their own.  A check in
 * the child prints what failed on stderr and exits non-zero
 * (CHILD_REQUIRE); the parent turns that into a Check failure.  Tests
 * that expect the child to fail, and what mgc says then, use
 * child_run_captured.
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

/* What a child said and how it ended (child_run_captured). */
struct child_outcome {
  int status;     /* as waitpid gives it */
  char err[8192]; /* the start of its stderr */
};

/* Run body(arg) in a child with its stderr captured; body ends the child
 * (_exit, or a crash).  The parent's tests judge the outcome. */
__attribute__((unused)) static struct child_outcome child_run_captured(void (*body)(void *), void *arg) {
  struct child_outcome r = {0};
  int fds[2];
  ck_assert_int_eq(pipe(fds), 0);
  fflush(NULL);
  pid_t pid = fork();
  ck_assert_int_ge(pid, 0);
  if (pid == 0) {
    dup2(fds[1], STDERR_FILENO);
    close(fds[0]);
    body(arg);
    _exit(CHILD_EXIT_OK);
  }
  close(fds[1]);
  size_t n = 0;
  ssize_t k;
  while (n < sizeof r.err - 1 && (k = read(fds[0], r.err + n, sizeof r.err - 1 - n)) > 0) n += (size_t)k;
  r.err[n] = '\0';
  close(fds[0]);
  ck_assert_int_eq(waitpid(pid, &r.status, 0), pid);
  return r;
}

#endif /* MGC_TESTS_CHILDTEST_H */
