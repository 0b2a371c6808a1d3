/*
 * test_threads_gc.c: collections while other threads run (public API only).
 *
 * What runtime/thread.c, runtime/stw.c and the public thread entry points
 * promise: a collection stops every registered thread and scans its stack
 * and registers, whether it was started by gc_pthread_create or registered
 * itself; a thread inside gc_blocking_begin/end is not waited for, yet its
 * stack still counts; threads may start and exit (even without
 * unregistering) while collections run; the argument of gc_pthread_create
 * may be the only pointer to its object.
 *
 * Every thread checks its own objects (seeded patterns, gctest.h) after the
 * collections it lived through.  TCases: allocating, blocking,
 * churn, arguments, fork.
 */
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "gctest.h"
#include "mgc.h"

#define OBJ_SIZE 128
#define LIST_LEN 2000
#define MUTATORS 4
#define COLLECTIONS 50
#define CHURN_THREADS 200
#define STOP_SIGNAL_DEFAULT SIGPWR

static atomic_int stop_flag;

/* ---- helpers ------------------------------------------------------------ */

struct item {
  struct item *next;
  uint64_t seed;
  unsigned char payload[OBJ_SIZE - 2 * sizeof(void *)];
};

static struct item *new_item(struct item *next, uint64_t seed) {
  struct item *x = gc_alloc(sizeof(*x));
  if (!x) return NULL;
  x->next = next;
  x->seed = seed;
  pattern_fill(x->payload, sizeof(x->payload), seed);
  return x;
}

/* A list of n items with seeds base .. base+n-1, the last first. */
static struct item *new_list(unsigned n, uint64_t base) {
  struct item *head = NULL;
  for (unsigned i = 0; i < n; i++) head = new_item(head, base + i);
  return head;
}

/* 0 if the list is whole, else the index of the first bad item plus one. */
static unsigned list_check(const struct item *x, unsigned n, uint64_t base) {
  for (unsigned i = 0; i < n; i++, x = x->next) {
    uint64_t want = base + n - 1 - i;
    if (!x || gc_base(x) != x || x->seed != want ||
        pattern_check(x->payload, sizeof(x->payload), want) != sizeof(x->payload))
      return i + 1;
  }
  return x == NULL ? 0 : n + 1;
}

/* What list_check found wrong at item i (its return value less one). */
static void describe_damage(char *out, size_t len, const struct item *x, unsigned i, unsigned n, uint64_t base) {
  for (unsigned k = 0; k < i && x; k++) x = x->next;
  uint64_t want = base + n - 1 - i;
  if (i >= n) snprintf(out, len, "list longer than %u items", n);
  else if (!x) snprintf(out, len, "item %u of %u is NULL", i, n);
  else if (gc_base(x) != x) snprintf(out, len, "item %u of %u at %p is not a live object (gc_base %p)", i, n, (void *)x, gc_base(x));
  else if (x->seed != want) snprintf(out, len, "item %u of %u at %p has seed %llu, want %llu", i, n, (void *)x,
                                     (unsigned long long)x->seed, (unsigned long long)want);
  else snprintf(out, len, "item %u of %u at %p: payload differs from byte %zu", i, n, (void *)x,
                pattern_check(x->payload, sizeof(x->payload), want));
}

static void sleep_ms(long ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

/* ---- allocating ---------------------------------------------------------- */

/* Build lists, drop most, keep one, check it after every round. */
static void *mutator(void *arg) {
  uintptr_t id = (uintptr_t)arg;
  unsigned rounds = 0, bad = 0;
  struct item *keep = new_list(LIST_LEN, id << 32);
  while (!atomic_load(&stop_flag) || rounds < 20) {
    struct item *garbage = new_list(LIST_LEN / 4, (id << 32) | 0x80000000u);
    (void)garbage;
    if ((bad = list_check(keep, LIST_LEN, id << 32)) != 0) break;
    rounds++;
  }
  return (void *)(uintptr_t)(bad ? bad : 0);
}

/* A plain pthread: registers itself, allocates, unregisters. */
static void *plain_mutator(void *arg) {
  gc_thread_register();
  void *r = mutator(arg);
  gc_thread_unregister();
  return r;
}

START_TEST(test_collections_while_threads_allocate_keep_every_threads_objects) {
  gc_init();
  atomic_store(&stop_flag, 0);
  pthread_t t[MUTATORS];
  for (uintptr_t i = 0; i < MUTATORS; i++) {
    if (i % 2) ck_assert_int_eq(pthread_create(&t[i], NULL, plain_mutator, (void *)(i + 1)), 0);
    else ck_assert_int_eq(gc_pthread_create(&t[i], NULL, mutator, (void *)(i + 1)), 0);
  }
  uint64_t c0 = cycles_now();
  for (int i = 0; i < COLLECTIONS; i++) {
    gc_collect();
    sleep_ms(1);
  }
  atomic_store(&stop_flag, 1);
  for (int i = 0; i < MUTATORS; i++) {
    void *bad;
    pthread_join(t[i], &bad);
    ck_assert_msg(bad == NULL, "thread %d: item %lu of its list was lost or overwritten", i,
                  (unsigned long)(uintptr_t)bad - 1);
  }
  ck_assert_uint_ge(cycles_now() - c0, COLLECTIONS);
}
END_TEST

START_TEST(test_threads_collecting_concurrently_do_not_deadlock) {
  gc_init();
  atomic_store(&stop_flag, 0);
  pthread_t t[MUTATORS];
  for (uintptr_t i = 0; i < MUTATORS; i++)
    ck_assert_int_eq(gc_pthread_create(&t[i], NULL, mutator, (void *)(i + 1)), 0);
  for (int i = 0; i < COLLECTIONS; i++) gc_collect();
  atomic_store(&stop_flag, 1);
  for (int i = 0; i < MUTATORS; i++) {
    void *bad;
    pthread_join(t[i], &bad);
    ck_assert_ptr_null(bad);
  }
}
END_TEST

/* ---- blocking ------------------------------------------------------------ */

struct blocker {
  int fd;              /* read end of the pipe it waits on, or -1: sleep */
  atomic_int blocked;  /* set once inside the blocking region */
  atomic_int release;  /* sleep variant: leave when set */
  uintptr_t hidden;    /* hidden address of its object, for the main thread */
  int result;          /* 0: object intact afterwards */
};

static int stop_signal(void) {
  const char *s = getenv("MGC_STOP_SIGNAL");
  return s ? atoi(s) : STOP_SIGNAL_DEFAULT;
}

static void *blocker_main(void *arg) {
  struct blocker *b = arg;
  struct item *volatile mine = new_item(NULL, 4242);      /* on the stack */
  struct item *reg = new_item(NULL, 4343);                /* likely a register */
  b->hidden = hide(mine);
  /* Block the stop signal: if the collector signalled this thread while
   * it is in the blocking region, gc_collect would hang. */
  sigset_t set, old;
  sigemptyset(&set);
  sigaddset(&set, stop_signal());
  gc_blocking_begin();
  pthread_sigmask(SIG_BLOCK, &set, &old);
  atomic_store(&b->blocked, 1);
  if (b->fd >= 0) {
    char c;
    while (read(b->fd, &c, 1) < 0) {
    }
  } else {
    while (!atomic_load(&b->release)) sleep_ms(5);
  }
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  gc_blocking_end();
  b->result = list_check(mine, 1, 4242) != 0 || list_check(reg, 1, 4343) != 0;
  return NULL;
}

static void check_blocked_thread(bool use_pipe) {
  gc_init();
  int fds[2] = {-1, -1};
  if (use_pipe) ck_assert_int_eq(pipe(fds), 0);
  struct blocker b = {.fd = fds[0]};
  pthread_t t;
  ck_assert_int_eq(gc_pthread_create(&t, NULL, blocker_main, &b), 0);
  while (!atomic_load(&b.blocked)) sleep_ms(1);
  uint64_t c0 = cycles_now();
  for (int i = 0; i < COLLECTIONS; i++) {
    collect_clean();
    ck_assert_msg(gc_base(unhide(b.hidden)) == unhide(b.hidden),
                  "the blocked thread's stack object was reclaimed");
  }
  ck_assert_uint_ge(cycles_now() - c0, COLLECTIONS);
  if (use_pipe) ck_assert_int_eq(write(fds[1], "x", 1), 1);
  else atomic_store(&b.release, 1);
  pthread_join(t, NULL);
  ck_assert_msg(b.result == 0, "the blocked thread's objects were lost");
  if (use_pipe) {
    close(fds[0]);
    close(fds[1]);
  }
}

START_TEST(test_thread_blocked_in_read_does_not_hold_up_collection_and_keeps_its_objects) {
  check_blocked_thread(true);
}
END_TEST

START_TEST(test_thread_sleeping_in_blocking_region_does_not_hold_up_collection_and_keeps_its_objects) {
  check_blocked_thread(false);
}
END_TEST

static void *nested_blocker(void *arg) {
  struct blocker *b = arg;
  struct item *volatile mine = new_item(NULL, 77);
  b->hidden = hide(mine);
  gc_blocking_begin();
  gc_blocking_begin();
  gc_blocking_end(); /* still inside the outer region */
  atomic_store(&b->blocked, 1);
  while (!atomic_load(&b->release)) sleep_ms(2);
  gc_blocking_end();
  /* Out of the region: allocate and be stopped like anyone else. */
  struct item *more = new_list(LIST_LEN, 500);
  gc_collect();
  b->result = list_check(mine, 1, 77) != 0 || list_check(more, LIST_LEN, 500) != 0;
  return NULL;
}

START_TEST(test_nested_blocking_regions_end_at_the_outer_end) {
  gc_init();
  struct blocker b = {.fd = -1};
  pthread_t t;
  ck_assert_int_eq(gc_pthread_create(&t, NULL, nested_blocker, &b), 0);
  while (!atomic_load(&b.blocked)) sleep_ms(1);
  for (int i = 0; i < 10; i++) collect_clean();
  ck_assert_ptr_eq(gc_base(unhide(b.hidden)), unhide(b.hidden));
  atomic_store(&b.release, 1);
  for (int i = 0; i < 10; i++) gc_collect();
  pthread_join(t, NULL);
  ck_assert_int_eq(b.result, 0);
}
END_TEST

/* Six lists whose heads a thread keeps in locals across its blocking
 * region: with optimization they live in callee-saved registers (six on
 * x86-64), which the region's roots must hold as the caller left them.
 * The collector frees any list it misses, and the main thread's fillers
 * then take its slots. */
#define HELD_LISTS 6
#define HELD_LEN 300

struct register_holder {
  atomic_int blocked;
  atomic_int release;
  unsigned damaged[HELD_LISTS]; /* list_check of each list afterwards */
};

static GCTEST_NOINLINE void wait_for_release(struct register_holder *h) {
  atomic_store(&h->blocked, 1);
  while (!atomic_load(&h->release)) sleep_ms(1);
}

static GCTEST_NOINLINE struct item *new_held_list(uint64_t base) { return new_list(HELD_LEN, base); }

static void *hold_lists_in_registers(void *arg) {
  struct register_holder *h = arg;
  struct item *l0 = new_held_list(10000), *l1 = new_held_list(20000), *l2 = new_held_list(30000),
              *l3 = new_held_list(40000), *l4 = new_held_list(50000), *l5 = new_held_list(60000);
  clobber_stack(); /* no stale copies of the heads below this frame */
  gc_blocking_begin();
  wait_for_release(h);
  gc_blocking_end();
  struct item *lists[HELD_LISTS] = {l0, l1, l2, l3, l4, l5};
  for (unsigned i = 0; i < HELD_LISTS; i++) h->damaged[i] = list_check(lists[i], HELD_LEN, 10000 * (i + 1));
  return NULL;
}

START_TEST(test_blocked_thread_keeps_objects_its_caller_holds_in_registers) {
  gc_init();
  struct register_holder h = {0};
  pthread_t t;
  ck_assert_int_eq(gc_pthread_create(&t, NULL, hold_lists_in_registers, &h), 0);
  while (!atomic_load(&h.blocked)) sleep_ms(1);
  for (int i = 0; i < 5; i++) collect_clean();
  for (int i = 0; i < 4 * HELD_LISTS * HELD_LEN; i++) new_item(NULL, 0xF111E5);
  atomic_store(&h.release, 1);
  pthread_join(t, NULL);
  for (unsigned i = 0; i < HELD_LISTS; i++)
    ck_assert_msg(h.damaged[i] == 0, "list %u, held in a local across gc_blocking_begin, was damaged at item %u", i,
                  h.damaged[i] - 1);
}
END_TEST

/* The same lists, held across many gc_collect calls and empty blocking
 * regions while other threads allocate and collect: leaving a region must
 * not lose them either.  A function that ends with the call (gc_collect's
 * wait does) restores its caller's registers from its frame and jumps,
 * and the region's roots then held those values nowhere once the slots
 * they came from were overwritten (the old code lost a list about twice a
 * second here). */
#define CROSSING_HOLDERS 3
#define CROSSING_LEN 50
#define CROSSING_SECONDS 2

static atomic_int crossing_stop, crossing_damaged;

static GCTEST_NOINLINE struct item *new_crossing_list(uint64_t base) { return new_list(CROSSING_LEN, base); }

static void *hold_lists_across_regions(void *arg) {
  uint64_t id = (uintptr_t)arg * 1000000;
  while (!atomic_load(&crossing_stop)) {
    struct item *l0 = new_crossing_list(id + 10000), *l1 = new_crossing_list(id + 20000),
                *l2 = new_crossing_list(id + 30000), *l3 = new_crossing_list(id + 40000),
                *l4 = new_crossing_list(id + 50000), *l5 = new_crossing_list(id + 60000);
    clobber_stack();
    for (int r = 0; r < 20; r++) {
      if (r & 1) {
        gc_collect();
      } else {
        gc_blocking_begin();
        gc_blocking_end();
      }
    }
    struct item *lists[HELD_LISTS] = {l0, l1, l2, l3, l4, l5};
    for (unsigned i = 0; i < HELD_LISTS; i++)
      if (list_check(lists[i], CROSSING_LEN, id + 10000 * (i + 1))) atomic_fetch_add(&crossing_damaged, 1);
  }
  return NULL;
}

static void *allocate_and_collect(void *arg) {
  (void)arg;
  while (!atomic_load(&crossing_stop)) {
    for (int i = 0; i < 2000; i++) new_item(NULL, 0xF111E5);
    gc_collect();
  }
  return NULL;
}

START_TEST(test_objects_held_in_registers_survive_leaving_blocking_regions) {
  gc_init();
  atomic_store(&crossing_stop, 0);
  atomic_store(&crossing_damaged, 0);
  pthread_t holders[CROSSING_HOLDERS], churner;
  for (uintptr_t i = 0; i < CROSSING_HOLDERS; i++)
    ck_assert_int_eq(gc_pthread_create(&holders[i], NULL, hold_lists_across_regions, (void *)(i + 1)), 0);
  ck_assert_int_eq(gc_pthread_create(&churner, NULL, allocate_and_collect, NULL), 0);
  gc_blocking_begin();
  sleep_ms(CROSSING_SECONDS * 1000);
  gc_blocking_end();
  atomic_store(&crossing_stop, 1);
  gc_blocking_begin();
  for (int i = 0; i < CROSSING_HOLDERS; i++) pthread_join(holders[i], NULL);
  pthread_join(churner, NULL);
  gc_blocking_end();
  ck_assert_msg(atomic_load(&crossing_damaged) == 0, "%d lists held in locals were damaged",
                atomic_load(&crossing_damaged));
}
END_TEST

/* ---- churn: threads come and go while collections run -------------------- */

static void *collector_loop(void *arg) {
  (void)arg;
  while (!atomic_load(&stop_flag)) gc_collect();
  return NULL;
}

static atomic_int churn_failures;
static char churn_first_failure[200]; /* written by the thread that counts the first */

static void *short_lived(void *arg) {
  uintptr_t mode = (uintptr_t)arg;
  if (mode != 0) gc_thread_register();
  struct item *l = new_list(200, mode * 1000);
  sched_yield();
  unsigned bad = list_check(l, 200, mode * 1000);
  if (bad) {
    char what[160];
    describe_damage(what, sizeof what, l, bad - 1, 200, mode * 1000);
    if (atomic_fetch_add(&churn_failures, 1) == 0)
      snprintf(churn_first_failure, sizeof churn_first_failure, "thread of mode %u: %s", (unsigned)mode, what);
  }
  if (mode == 1) gc_thread_unregister();
  /* mode 2: exit while registered; the thread-exit destructor
   * unregisters, possibly in the middle of a cycle. */
  return NULL;
}

START_TEST(test_threads_starting_and_exiting_during_collections_are_handled) {
  gc_init();
  atomic_store(&stop_flag, 0);
  atomic_store(&churn_failures, 0);
  pthread_t coll;
  ck_assert_int_eq(gc_pthread_create(&coll, NULL, collector_loop, NULL), 0);
  uint64_t c0 = cycles_now();
  for (int i = 0; i < CHURN_THREADS; i++) {
    pthread_t t[3];
    ck_assert_int_eq(gc_pthread_create(&t[0], NULL, short_lived, (void *)0), 0);
    ck_assert_int_eq(pthread_create(&t[1], NULL, short_lived, (void *)1), 0);
    ck_assert_int_eq(pthread_create(&t[2], NULL, short_lived, (void *)2), 0);
    for (int k = 0; k < 3; k++) pthread_join(t[k], NULL);
  }
  atomic_store(&stop_flag, 1);
  pthread_join(coll, NULL);
  ck_assert_msg(atomic_load(&churn_failures) == 0, "%d threads found their list damaged; the first: %s",
                atomic_load(&churn_failures), churn_first_failure);
  ck_assert_uint_gt(cycles_now(), c0);
}
END_TEST

static void *exit_registered(void *arg) {
  (void)arg;
  gc_thread_register();
  struct item *l = new_list(50, 1);
  (void)l;
  return NULL; /* no gc_thread_unregister */
}

START_TEST(test_thread_exiting_without_unregistering_mid_cycle_does_not_break_collection) {
  gc_init();
  atomic_store(&stop_flag, 0);
  pthread_t coll;
  ck_assert_int_eq(gc_pthread_create(&coll, NULL, collector_loop, NULL), 0);
  for (int i = 0; i < CHURN_THREADS * 2; i++) {
    pthread_t t;
    ck_assert_int_eq(pthread_create(&t, NULL, exit_registered, NULL), 0);
    pthread_detach(t); /* exits whenever, possibly while the world stops */
  }
  sleep_ms(200);
  atomic_store(&stop_flag, 1);
  pthread_join(coll, NULL);
  struct item *l = new_list(100, 9);
  collect_clean();
  ck_assert_int_eq(list_check(l, 100, 9), 0);
}
END_TEST

/* ---- arguments ------------------------------------------------------------ */

static void *check_argument(void *arg) {
  struct item *x = arg;
  /* Let the creator return and collections run before touching it. */
  for (int i = 0; i < 3; i++) {
    clobber_stack();
    gc_collect();
  }
  return (void *)(uintptr_t)(list_check(x, 1, x ? 0 : 1) == 0 ? 0 : 1);
}

static GCTEST_NOINLINE int spawn_with_only_reference(pthread_t *t) {
  struct item *x = new_item(NULL, 0);
  return gc_pthread_create(t, NULL, check_argument, x);
}

START_TEST(test_gc_pthread_create_argument_that_is_only_reference_survives) {
  gc_init();
  atomic_store(&stop_flag, 0);
  pthread_t coll;
  ck_assert_int_eq(gc_pthread_create(&coll, NULL, collector_loop, NULL), 0);
  pthread_t t[20];
  for (int i = 0; i < 20; i++) ck_assert_int_eq(spawn_with_only_reference(&t[i]), 0);
  clobber_stack();
  for (int i = 0; i < 20; i++) {
    void *bad;
    pthread_join(t[i], &bad);
    ck_assert_msg(bad == NULL, "thread %d found its argument reclaimed or overwritten", i);
  }
  atomic_store(&stop_flag, 1);
  pthread_join(coll, NULL);
}
END_TEST

/* ---- fork ------------------------------------------------------------------ */

START_TEST(test_child_can_allocate_and_collect_after_fork) {
  gc_init();
  struct item *l = new_list(100, 3);
  gc_collect();
  pid_t pid = fork();
  ck_assert_int_ge(pid, 0);
  if (pid == 0) {
    struct item *m = new_list(100, 4);
    gc_collect();
    _exit(list_check(l, 100, 3) == 0 && list_check(m, 100, 4) == 0 ? 0 : 1);
  }
  int status;
  waitpid(pid, &status, 0);
  ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
                "the child of fork() failed (status %#x)", status);
  ck_assert_int_eq(list_check(l, 100, 3), 0);
}
END_TEST

static Suite *threads_gc_suite(void) {
  Suite *s = suite_create("threads_gc");
  TCase *tc = tcase_create("allocating");
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, test_collections_while_threads_allocate_keep_every_threads_objects);
  tcase_add_test(tc, test_threads_collecting_concurrently_do_not_deadlock);
  suite_add_tcase(s, tc);

  tc = tcase_create("blocking");
  tcase_set_timeout(tc, 30);
  tcase_add_test(tc, test_thread_blocked_in_read_does_not_hold_up_collection_and_keeps_its_objects);
  tcase_add_test(tc, test_thread_sleeping_in_blocking_region_does_not_hold_up_collection_and_keeps_its_objects);
  tcase_add_test(tc, test_nested_blocking_regions_end_at_the_outer_end);
  tcase_add_test(tc, test_blocked_thread_keeps_objects_its_caller_holds_in_registers);
  tcase_add_test(tc, test_objects_held_in_registers_survive_leaving_blocking_regions);
  suite_add_tcase(s, tc);

  tc = tcase_create("churn");
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, test_threads_starting_and_exiting_during_collections_are_handled);
  tcase_add_test(tc, test_thread_exiting_without_unregistering_mid_cycle_does_not_break_collection);
  suite_add_tcase(s, tc);

  tc = tcase_create("arguments");
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, test_gc_pthread_create_argument_that_is_only_reference_survives);
  suite_add_tcase(s, tc);

  tc = tcase_create("fork");
  tcase_set_timeout(tc, 30);
  tcase_add_test(tc, test_child_can_allocate_and_collect_after_fork);
  suite_add_tcase(s, tc);
  return s;
}

/* No mgc call before the runner forks: each test starts its own heap. */
int main(void) { return run_suite(threads_gc_suite()); }
