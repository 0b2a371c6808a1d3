/*
 * test_thread_life.c: the beginning and end of threads (runtime/init.c,
 * runtime/thread.c).
 *
 * Concerns, one TCase each:
 *   init    gc_init called twice, and by many threads at once in a process
 *           that has not started mgc: exactly one initialisation (the
 *           environment is read once, the background threads start once),
 *           every caller registered (its stack is scanned), and the heap
 *           works;
 *   exit    a registered thread that exits without gc_thread_unregister
 *           (returning from its start routine, or pthread_exit from a
 *           gc_pthread_create thread) is unregistered by the thread-exit
 *           destructor: its record leaves the registry, the spans its
 *           mcache held go back (none is left cached by it), and its stack
 *           is no longer scanned, so what only it pointed to is reclaimed;
 *           threads doing so by the hundred while collections run back to
 *           back never make a stop signal a thread that is gone.
 *
 * Links the internal library to read the registry (threads_count) and the
 * span map; each test that starts mgc runs in a child of its own.
 */
#include <check.h>
#include <dirent.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "mgc.h"

#include "alloc/arena.h"
#include "runtime/thread.h"

#include "../gc/gctest.h"
#include "childtest.h"

#define RACERS 8
#define RACER_OBJECTS 100
#define RACER_OBJ_BYTES 80
#define GARBAGE_ROUNDS 200000
#define EXITERS 200
#define EXITER_OBJECTS 1000



static int task_count(void) {
  DIR *d = opendir("/proc/self/task");
  if (!d) return -1;
  int n = 0;
  struct dirent *e;
  while ((e = readdir(d)))
    if (e->d_name[0] != '.') n++;
  closedir(d);
  return n;
}

static GCTEST_NOINLINE void make_garbage(void) {
  for (int i = 0; i < GARBAGE_ROUNDS; i++) GCTEST_REQUIRE(gc_alloc(RACER_OBJ_BYTES) != NULL, "out of memory");
}

/* ---- init ---- */

static pthread_barrier_t start_line, objects_made, checked;
static volatile int racer_failures;

/* Calls gc_init with the others, keeps objects only on its own stack
 * while the main thread collects, then checks them. */
static GCTEST_NOINLINE void *racer_main(void *arg) {
  (void)arg;
  void *volatile mine[RACER_OBJECTS];
  pthread_barrier_wait(&start_line);
  gc_init();
  if (!thread_current) __atomic_add_fetch(&racer_failures, 1, __ATOMIC_RELAXED);
  for (int i = 0; i < RACER_OBJECTS; i++) {
    mine[i] = gc_alloc(RACER_OBJ_BYTES);
    if (!mine[i]) __atomic_add_fetch(&racer_failures, 1, __ATOMIC_RELAXED);
    else pattern_fill(mine[i], RACER_OBJ_BYTES, (uint64_t)(uintptr_t)&mine[i]);
  }
  gc_blocking_begin();
  pthread_barrier_wait(&objects_made);
  pthread_barrier_wait(&checked); /* the main thread collects meanwhile */
  gc_blocking_end();
  for (int i = 0; i < RACER_OBJECTS; i++) {
    void *p = mine[i];
    if (!p || gc_base(p) != p || pattern_check(p, RACER_OBJ_BYTES, (uint64_t)(uintptr_t)&mine[i]) != RACER_OBJ_BYTES)
      __atomic_add_fetch(&racer_failures, 1, __ATOMIC_RELAXED);
  }
  gc_thread_unregister();
  return NULL;
}

static void many_threads_race_to_init(void) {
  setenv("MGC_GOGC", "not-a-number", 1); /* reported once per initialisation */
  pthread_barrier_init(&start_line, NULL, RACERS + 1);
  pthread_barrier_init(&objects_made, NULL, RACERS + 1);
  pthread_barrier_init(&checked, NULL, RACERS + 1);
  pthread_t t[RACERS];
  for (int i = 0; i < RACERS; i++) CHILD_REQUIRE(pthread_create(&t[i], NULL, racer_main, NULL) == 0, "pthread_create");
  int tasks_before = task_count();
  pthread_barrier_wait(&start_line);
  gc_init(); /* the main thread races too */
  pthread_barrier_wait(&objects_made);
  CHILD_REQUIRE(threads_count == RACERS + 1, "%lu threads registered, not %d", (unsigned long)threads_count,
                RACERS + 1);
  /* mgc's background threads started once: the same number as a single
   * gc_init starts (tests/runtime: the collector, sweeper, scavenger). */
  int background = task_count() - tasks_before;
  collect_clean();
  make_garbage();
  collect_clean();
  pthread_barrier_wait(&checked);
  for (int i = 0; i < RACERS; i++) pthread_join(t[i], NULL);
  CHILD_REQUIRE(racer_failures == 0, "%d racer checks failed (not registered, or objects lost)", racer_failures);
  CHILD_REQUIRE(threads_count == 1, "%lu threads registered after the racers left", (unsigned long)threads_count);
  printf("background=%d\n", background);
  fflush(stdout);
}

static void init_once_from_one_thread(void) {
  setenv("MGC_GOGC", "not-a-number", 1);
  int tasks_before = task_count();
  gc_init();
  gc_init(); /* twice: nothing more */
  CHILD_REQUIRE(threads_count == 1, "gc_init twice registered %lu threads", (unsigned long)threads_count);
  printf("background=%d\n", task_count() - tasks_before);
  fflush(stdout);
}

/* Run body in a child; return its stdout "background=N" and the number of
 * "mgc: " lines it printed on stderr. */
static int child_background_threads(void (*body)(void), int *report_lines) {
  int out[2], err[2];
  ck_assert_int_eq(pipe(out), 0);
  ck_assert_int_eq(pipe(err), 0);
  fflush(NULL);
  pid_t pid = fork();
  ck_assert_int_ge(pid, 0);
  if (pid == 0) {
    dup2(out[1], STDOUT_FILENO);
    dup2(err[1], STDERR_FILENO);
    close(out[0]);
    close(err[0]);
    body();
    _exit(CHILD_EXIT_OK);
  }
  close(out[1]);
  close(err[1]);
  static char text[2][4096];
  int fds[2] = {out[0], err[0]};
  for (int k = 0; k < 2; k++) {
    size_t n = 0;
    ssize_t r;
    while (n < sizeof(text[k]) - 1 && (r = read(fds[k], text[k] + n, sizeof(text[k]) - 1 - n)) > 0) n += (size_t)r;
    text[k][n] = '\0';
    close(fds[k]);
  }
  int status = 0;
  ck_assert_int_eq(waitpid(pid, &status, 0), pid);
  ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == CHILD_EXIT_OK, "the child failed (0x%x): %s", status,
                text[1]);
  *report_lines = 0;
  for (const char *p = text[1]; (p = strstr(p, "mgc: ")); p += 5) (*report_lines)++;
  int background = -1;
  const char *b = strstr(text[0], "background=");
  ck_assert_msg(b && sscanf(b, "background=%d", &background) == 1, "no count from the child: %s", text[0]);
  return background;
}

START_TEST(test_gc_init_twice_initialises_once_and_registers_once) {
  int lines;
  child_background_threads(init_once_from_one_thread, &lines);
  ck_assert_int_eq(lines, 1);
}
END_TEST

START_TEST(test_threads_racing_to_gc_init_make_one_initialisation_and_all_are_registered) {
  int single_lines, race_lines;
  int single = child_background_threads(init_once_from_one_thread, &single_lines);
  int race = child_background_threads(many_threads_race_to_init, &race_lines);
  ck_assert_msg(race_lines == 1, "the environment was read %d times", race_lines);
  ck_assert_msg(race == single, "%d background threads after racing gc_init calls, %d after one", race, single);
}
END_TEST

/* ---- exit ---- */

static uintptr_t exiter_hidden[EXITER_OBJECTS];
static struct mcache *exiter_mcache;

/* Registers, allocates objects it points to from its stack only, and
 * returns without gc_thread_unregister. */
static GCTEST_NOINLINE void *exiter_main(void *arg) {
  bool keep_objects = arg != NULL;
  gc_thread_register();
  exiter_mcache = &thread_current->mcache;
  void *volatile mine[EXITER_OBJECTS];
  for (int i = 0; i < EXITER_OBJECTS; i++) {
    mine[i] = gc_alloc(i % 10 ? 48 : 3000);
    if (keep_objects) exiter_hidden[i] = hide(mine[i]);
  }
  return NULL;
}

struct cached_count {
  uintptr_t mcache;
  int n;
};

static void count_cached(struct mspan *s, void *ctx) {
  struct cached_count *c = ctx;
  if (atomic_load_relaxed(&s->cached_by) == c->mcache) c->n++;
}

static void thread_exit_without_unregister(void) {
  gc_init();
  uintptr_t before = threads_count;
  pthread_t t;
  CHILD_REQUIRE(pthread_create(&t, NULL, exiter_main, (void *)1) == 0, "pthread_create");
  pthread_join(t, NULL);
  CHILD_REQUIRE(threads_count == before, "the exited thread is still registered (%lu threads)",
                (unsigned long)threads_count);
  struct cached_count c = {(uintptr_t)exiter_mcache, 0};
  arena_walk_spans(atomic_load_relaxed(&arena_lo), atomic_load_relaxed(&arena_hi), count_cached, &c);
  CHILD_REQUIRE(c.n == 0, "%d spans are still cached by the exited thread", c.n);
  /* Its stack (cached by the C library for the next thread, contents and
   * all) is no longer scanned: what only it pointed to goes. */
  collect_clean();
  size_t dead = count_reclaimed(exiter_hidden, EXITER_OBJECTS);
  CHILD_REQUIRE(dead * 100 >= EXITER_OBJECTS * GCTEST_RECLAIM_PERCENT,
                "only %zu of %d objects of the exited thread were reclaimed", dead, EXITER_OBJECTS);
  make_garbage();
  collect_clean();
}

START_TEST(test_thread_exiting_without_unregistering_is_unregistered_and_released) {
  child_run(thread_exit_without_unregister, false);
}
END_TEST

static GCTEST_NOINLINE void *pthread_exit_main(void *arg) {
  (void)arg;
  for (int i = 0; i < 100; i++) GCTEST_REQUIRE(gc_alloc(64) != NULL, "out of memory");
  pthread_exit(NULL);
}

static volatile int collecting_stop;

static void *collect_loop(void *arg) {
  (void)arg;
  while (!__atomic_load_n(&collecting_stop, __ATOMIC_ACQUIRE)) gc_collect();
  return NULL;
}

static void many_threads_exit_during_collections(void) {
  gc_init();
  uintptr_t before = threads_count;
  pthread_t coll;
  CHILD_REQUIRE(gc_pthread_create(&coll, NULL, collect_loop, NULL) == 0, "gc_pthread_create");
  uint64_t cycles0 = cycles_now();
  for (int i = 0; i < EXITERS; i++) {
    pthread_t t;
    if (i % 2) CHILD_REQUIRE(pthread_create(&t, NULL, exiter_main, NULL) == 0, "pthread_create");
    else CHILD_REQUIRE(gc_pthread_create(&t, NULL, pthread_exit_main, NULL) == 0, "gc_pthread_create");
    gc_blocking_begin();
    pthread_join(t, NULL);
    gc_blocking_end();
  }
  __atomic_store_n(&collecting_stop, 1, __ATOMIC_RELEASE);
  pthread_join(coll, NULL);
  CHILD_REQUIRE(threads_count == before, "%lu threads registered after all exited, %lu before",
                (unsigned long)threads_count, (unsigned long)before);
  CHILD_REQUIRE(cycles_now() > cycles0, "no collection ran");
}

START_TEST(test_threads_exiting_without_unregistering_during_collections_are_never_signalled) {
  child_run(many_threads_exit_during_collections, false);
}
END_TEST

static Suite *thread_life_suite(void) {
  Suite *s = suite_create("thread_life");
  TCase *tc = tcase_create("init");
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, test_gc_init_twice_initialises_once_and_registers_once);
  tcase_add_test(tc, test_threads_racing_to_gc_init_make_one_initialisation_and_all_are_registered);
  suite_add_tcase(s, tc);
  tc = tcase_create("exit");
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, test_thread_exiting_without_unregistering_is_unregistered_and_released);
  tcase_add_test(tc, test_threads_exiting_without_unregistering_during_collections_are_never_signalled);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) { return run_suite(thread_life_suite()); }
