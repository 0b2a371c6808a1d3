/*
 * test_lifetime.c: finalizers, weak references and ephemerons (mgc.h),
 * through the public API.
 *
 * Every test runs twice: with the concurrent collector under MGC_VERIFY=1
 * (and then no cycle may report a miss), and with MGC_CONCURRENT=0.  Each
 * test is a fresh forked process (Check's default), so the environment
 * set by main() before the run is what gc_init reads.
 *
 * Conservative roots may keep a dropped object alive by accident, so
 * "reclaimed" or "finalized" is always measured over many objects against
 * a threshold; "never early" (a reachable object finalized, a weak
 * reference to a reachable object cleared, a value of a live key lost) is
 * checked for every object.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>

#include "gctest.h"

#define NOBJ 400
#define OBJ_BYTES 64
#define FIN_ENOUGH (NOBJ * GCTEST_RECLAIM_PERCENT / 100)

static pthread_t main_thread;

/* Finalizer bookkeeping, indexed by the object number passed as data
 * (small integers, never heap addresses). */
static atomic_int fin_count[NOBJ];
static atomic_int fin_bad_thread, fin_bad_contents, fin_total;
static atomic_int fin_seq[NOBJ];
static atomic_int seq_counter;

static void reset_fin(void) {
  for (int i = 0; i < NOBJ; i++) {
    atomic_store(&fin_count[i], 0);
    atomic_store(&fin_seq[i], 0);
  }
  atomic_store(&fin_bad_thread, 0);
  atomic_store(&fin_bad_contents, 0);
  atomic_store(&fin_total, 0);
  atomic_store(&seq_counter, 0);
}

static void note_run(void *obj, void *data, size_t check_bytes) {
  uintptr_t i = (uintptr_t)data;
  if (pthread_equal(pthread_self(), main_thread)) atomic_fetch_add(&fin_bad_thread, 1);
  if (check_bytes && pattern_check(obj, check_bytes, i) != check_bytes) atomic_fetch_add(&fin_bad_contents, 1);
  atomic_fetch_add(&fin_count[i], 1);
  atomic_store(&fin_seq[i], atomic_fetch_add(&seq_counter, 1) + 1);
  atomic_fetch_add(&fin_total, 1);
  /* A finalizer may allocate: it runs on an ordinary registered thread. */
  void *scratch = gc_alloc(48);
  if (!scratch) atomic_fetch_add(&fin_bad_thread, 1);
}

static void fin_check_contents(void *obj, void *data) { note_run(obj, data, OBJ_BYTES); }

static int count_ran(void) {
  int n = 0;
  for (int i = 0; i < NOBJ; i++) n += atomic_load(&fin_count[i]) > 0;
  return n;
}

/* Allocate and drop objects of the test's size: the main thread's
 * allocation moves on from the span word that held the test's objects
 * (the sweep keeps the word a thread allocates from whole). */
static void churn(size_t bytes) {
  for (int j = 0; j < 20000; j++) memset(gc_alloc(bytes), 0xEE, bytes);
}

static void settle(void) {
  churn(OBJ_BYTES);
  collect_clean();
  gc_wait_finalizers();
}

/* One cycle only, for tests that count cycles. */
static void settle_one(void) {
  churn(OBJ_BYTES);
  clobber_stack();
  gc_collect();
  gc_wait_finalizers();
}

static void teardown_verify(void) {
  struct gc_stats s = stats_now();
  ck_assert_msg(s.verify_misses == 0, "MGC_VERIFY reported %llu misses", (unsigned long long)s.verify_misses);
}

/* ---- finalizers ---------------------------------------------------------- */

static GCTEST_NOINLINE void make_finalizable(uintptr_t *hidden) {
  for (uintptr_t i = 0; i < NOBJ; i++) {
    void *p = gc_alloc(OBJ_BYTES);
    ck_assert_ptr_nonnull(p);
    pattern_fill(p, OBJ_BYTES, i);
    ck_assert_int_eq(gc_set_finalizer(p, fin_check_contents, (void *)i), 0);
    hidden[i] = hide(p);
  }
}

START_TEST(finalizer_runs_once_off_the_main_thread) {
  reset_fin();
  uintptr_t hidden[NOBJ];
  make_finalizable(hidden);
  settle();
  int ran = count_ran();
  ck_assert_msg(ran >= FIN_ENOUGH, "only %d of %d finalizers ran", ran, NOBJ);
  for (int round = 0; round < 3; round++) settle();
  for (int i = 0; i < NOBJ; i++) ck_assert_int_le(atomic_load(&fin_count[i]), 1);
  ck_assert_int_eq(atomic_load(&fin_bad_thread), 0);
  ck_assert_int_eq(atomic_load(&fin_bad_contents), 0);
  /* After its finalizer ran, an object is freed by a later cycle: its slot
   * is free now, or taken again by the churn (so its pattern is gone). */
  size_t gone = 0;
  for (int i = 0; i < NOBJ; i++) {
    void *p = unhide(hidden[i]);
    gone += gc_base(p) != p || pattern_check(p, OBJ_BYTES, (uint64_t)i) != OBJ_BYTES;
  }
  ck_assert_msg(gone >= (size_t)FIN_ENOUGH, "only %zu of %d finalized objects freed", gone, NOBJ);
}
END_TEST

START_TEST(finalizer_never_runs_for_reachable_objects) {
  reset_fin();
  void **keep = gc_alloc(NOBJ * sizeof(void *));
  for (uintptr_t i = 0; i < NOBJ; i++) {
    void *p = gc_alloc(OBJ_BYTES);
    pattern_fill(p, OBJ_BYTES, i);
    GC_WRITE(&keep[i], p);
    ck_assert_int_eq(gc_set_finalizer(p, fin_check_contents, (void *)i), 0);
  }
  for (int round = 0; round < 4; round++) {
    for (int j = 0; j < 20000; j++) memset(gc_alloc(64), 0xEE, 64); /* churn: reuse freed slots */
    settle();
  }
  ck_assert_int_eq(atomic_load(&fin_total), 0);
  for (uintptr_t i = 0; i < NOBJ; i++) ck_assert_uint_eq(pattern_check(keep[i], OBJ_BYTES, i), OBJ_BYTES);
  /* Removing the finalizer (fn NULL) means it never runs. */
  for (int i = 0; i < NOBJ; i++) ck_assert_int_eq(gc_set_finalizer(keep[i], NULL, NULL), 0);
  keep = NULL;
  for (int round = 0; round < 2; round++) settle();
  ck_assert_int_eq(atomic_load(&fin_total), 0);
}
END_TEST

/* An object waiting for its finalizer keeps what it points to: the child's
 * contents must still be intact when the finalizer reads them. */
struct parent {
  void *child;
  uintptr_t index;
};

static void fin_check_child(void *obj, void *data) {
  struct parent *p = obj;
  if (gc_base(p->child) != p->child) atomic_fetch_add(&fin_bad_contents, 1); /* freed */
  note_run(p->child, data, OBJ_BYTES);
}

static GCTEST_NOINLINE void make_parents(void) {
  for (uintptr_t i = 0; i < NOBJ; i++) {
    struct parent *p = gc_alloc(sizeof(*p));
    void *child = gc_alloc(OBJ_BYTES);
    pattern_fill(child, OBJ_BYTES, i);
    GC_WRITE(&p->child, child);
    p->index = i;
    ck_assert_int_eq(gc_set_finalizer(p, fin_check_child, (void *)i), 0);
  }
}

START_TEST(finalizable_object_keeps_its_children) {
  reset_fin();
  make_parents();
  /* Churn between the cycles so that a wrongly freed child is reused. */
  for (int round = 0; round < 3; round++) {
    for (int j = 0; j < 50000; j++) memset(gc_alloc(OBJ_BYTES), 0xEE, OBJ_BYTES);
    settle();
  }
  ck_assert_int_ge(count_ran(), FIN_ENOUGH);
  ck_assert_int_eq(atomic_load(&fin_bad_contents), 0);
}
END_TEST

/* Resurrection: the finalizer stores the object in a global (a root); it
 * stays intact, and a finalizer set again from inside runs again later. */
static void *resurrected[NOBJ];

static void fin_resurrect(void *obj, void *data) {
  uintptr_t i = (uintptr_t)data;
  note_run(obj, data, OBJ_BYTES);
  if (atomic_load(&fin_count[i]) == 1) {
    resurrected[i] = obj;
    if (gc_set_finalizer(obj, fin_resurrect, data) != 0) atomic_fetch_add(&fin_bad_thread, 1);
  }
}

static GCTEST_NOINLINE void make_resurrectable(void) {
  for (uintptr_t i = 0; i < NOBJ; i++) {
    void *p = gc_alloc(OBJ_BYTES);
    pattern_fill(p, OBJ_BYTES, i);
    ck_assert_int_eq(gc_set_finalizer(p, fin_resurrect, (void *)i), 0);
  }
}

START_TEST(resurrection) {
  reset_fin();
  memset(resurrected, 0, sizeof(resurrected));
  make_resurrectable();
  settle();
  int back = 0;
  for (int i = 0; i < NOBJ; i++) back += resurrected[i] != NULL;
  ck_assert_int_ge(back, FIN_ENOUGH);
  for (int round = 0; round < 3; round++) {
    for (int j = 0; j < 20000; j++) memset(gc_alloc(OBJ_BYTES), 0xEE, OBJ_BYTES);
    settle();
  }
  for (uintptr_t i = 0; i < NOBJ; i++) {
    if (!resurrected[i]) continue;
    ck_assert_uint_eq(pattern_check(resurrected[i], OBJ_BYTES, i), OBJ_BYTES);
    ck_assert_int_eq(atomic_load(&fin_count[i]), 1); /* still reachable: not run again */
  }
  /* Drop them again: the finalizer set from inside runs a second time. */
  memset(resurrected, 0, sizeof(resurrected));
  settle();
  settle();
  int twice = 0;
  for (int i = 0; i < NOBJ; i++) {
    ck_assert_int_le(atomic_load(&fin_count[i]), 2);
    twice += atomic_load(&fin_count[i]) == 2;
  }
  ck_assert_msg(twice >= FIN_ENOUGH * 9 / 10, "only %d finalizers ran a second time", twice);
  ck_assert_int_eq(atomic_load(&fin_bad_contents), 0);
  ck_assert_int_eq(atomic_load(&fin_bad_thread), 0);
}
END_TEST

/* A points to B, both finalizable: A's finalizer runs in an earlier
 * cycle than B's (B is kept by A's contents until A is gone). */
#define NPAIR (NOBJ / 2)
static atomic_int ran_in_round[NOBJ];
static atomic_int current_round;

static void fin_round(void *obj, void *data) {
  (void)obj;
  uintptr_t i = (uintptr_t)data;
  atomic_fetch_add(&fin_count[i], 1);
  atomic_store(&ran_in_round[i], atomic_load(&current_round));
}

static GCTEST_NOINLINE void make_pairs(void) {
  for (uintptr_t i = 0; i < NPAIR; i++) {
    void **a = gc_alloc(2 * sizeof(void *));
    void *b = gc_alloc(OBJ_BYTES);
    GC_WRITE(&a[0], b);
    ck_assert_int_eq(gc_set_finalizer(a, fin_round, (void *)i), 0);
    ck_assert_int_eq(gc_set_finalizer(b, fin_round, (void *)(NPAIR + i)), 0);
  }
}

START_TEST(finalizer_order_follows_pointers) {
  reset_fin();
  make_pairs();
  for (int round = 1; round <= 8; round++) {
    atomic_store(&current_round, round);
    settle_one();
  }
  int ordered = 0;
  for (int i = 0; i < NPAIR; i++) {
    int ra = atomic_load(&ran_in_round[i]), rb = atomic_load(&ran_in_round[NPAIR + i]);
    if (rb) ck_assert_msg(ra && ra < rb, "pair %d: B finalized in round %d, A in %d", i, rb, ra);
    ordered += ra && rb;
  }
  ck_assert_msg(ordered >= NPAIR * GCTEST_RECLAIM_PERCENT / 100, "only %d of %d pairs finalized", ordered, NPAIR);
}
END_TEST

START_TEST(finalizer_bad_input_and_free) {
  reset_fin();
  static char not_heap[64];
  ck_assert_int_eq(gc_set_finalizer(not_heap, fin_check_contents, NULL), EINVAL);
  char *p = gc_alloc(OBJ_BYTES);
  ck_assert_int_eq(gc_set_finalizer(p + 8, fin_check_contents, NULL), EINVAL);
  void *tiny = gc_alloc_atomic(8);
  ck_assert_int_eq(gc_set_finalizer(tiny, fin_check_contents, NULL), EINVAL);
  ck_assert_int_eq(gc_set_finalizer(NULL, fin_check_contents, NULL), EINVAL);
  /* gc_free drops the finalizer without running it, for small and large
   * objects and atomic ones over 16 bytes. */
  void *objs[3] = {gc_alloc(OBJ_BYTES), gc_alloc(100000), gc_alloc_atomic(40)};
  for (uintptr_t i = 0; i < 3; i++) {
    pattern_fill(objs[i], 16, i);
    ck_assert_int_eq(gc_set_finalizer(objs[i], fin_check_contents, (void *)i), 0);
    gc_free(objs[i]);
  }
  /* So does gc_realloc when it moves the object: the copy has none. */
  void *moved = gc_alloc(OBJ_BYTES);
  pattern_fill(moved, 16, 3);
  ck_assert_int_eq(gc_set_finalizer(moved, fin_check_contents, (void *)3), 0);
  void *copy = gc_realloc(moved, 4 * OBJ_BYTES);
  ck_assert_ptr_nonnull(copy);
  ck_assert_ptr_ne(copy, moved);
  ck_assert_int_eq(gc_set_finalizer(copy, NULL, NULL), 0); /* none to remove: no error either */
  settle();
  settle();
  ck_assert_int_eq(atomic_load(&fin_total), 0);
}
END_TEST

/* ---- weak references ------------------------------------------------------ */

static int static_target;

static GCTEST_NOINLINE void make_weak_targets(gc_weak **weak, void **keep, uintptr_t *hidden) {
  for (uintptr_t i = 0; i < NOBJ; i++) {
    void *p = gc_alloc(OBJ_BYTES);
    pattern_fill(p, OBJ_BYTES, i);
    GC_WRITE(&weak[i], gc_weak_new(p));
    ck_assert_ptr_nonnull(weak[i]);
    if (i % 2 == 0) GC_WRITE(&keep[i], p);
    hidden[i] = hide(p);
  }
}

START_TEST(weak_references) {
  gc_weak **weak = gc_alloc(NOBJ * sizeof(*weak));
  void **keep = gc_alloc(NOBJ * sizeof(*keep));
  uintptr_t hidden[NOBJ];
  make_weak_targets(weak, keep, hidden);
  gc_weak *to_null = gc_weak_new(NULL);
  gc_weak *to_static = gc_weak_new(&static_target);
  ck_assert_ptr_eq(gc_weak_get(weak[1]), unhide(hidden[1]));
  for (int round = 0; round < 3; round++) {
    for (int j = 0; j < 20000; j++) memset(gc_alloc(OBJ_BYTES), 0xEE, OBJ_BYTES);
    collect_clean();
  }
  int cleared = 0;
  for (uintptr_t i = 0; i < NOBJ; i++) {
    void *p = gc_weak_get(weak[i]);
    if (i % 2 == 0) {
      /* Never early: a reachable target is always there, intact. */
      ck_assert_ptr_eq(p, keep[i]);
      ck_assert_uint_eq(pattern_check(p, OBJ_BYTES, i), OBJ_BYTES);
    } else if (p == NULL) {
      cleared++;
    } else {
      ck_assert_ptr_eq(p, unhide(hidden[i])); /* retained by a stray word: still intact */
      ck_assert_uint_eq(pattern_check(p, OBJ_BYTES, i), OBJ_BYTES);
    }
  }
  ck_assert_msg(cleared >= NOBJ / 2 * GCTEST_RECLAIM_PERCENT / 100, "only %d of %d weak references cleared",
                cleared, NOBJ / 2);
  ck_assert_ptr_null(gc_weak_get(to_null));
  ck_assert_ptr_eq(gc_weak_get(to_static), &static_target);
  ck_assert_ptr_null(gc_weak_get(NULL));
  /* A cleared reference stays cleared. */
  collect_clean();
  for (uintptr_t i = 1; i < NOBJ; i += 2)
    if (gc_weak_get(weak[i]) == NULL) ck_assert_ptr_null(gc_weak_get(weak[i]));
}
END_TEST

/* Several threads make objects and weak references, keep some, drop the
 * rest, and read their references all the time while the main thread
 * collects: a reference to a kept object never reads NULL or anything
 * else, one to a dropped object reads it intact or NULL, and NULL stays. */
#define WEAK_THREADS 4
#define WEAK_SLOTS 256
#define WEAK_CYCLES 30

static atomic_int weak_threads_done, weak_stop;

static void *weak_worker(void *arg) {
  uintptr_t seed = (uintptr_t)arg;
  gc_weak **weak = gc_alloc(WEAK_SLOTS * sizeof(*weak));
  void **keep = gc_alloc(WEAK_SLOTS * sizeof(*keep));
  uintptr_t tags[WEAK_SLOTS] = {0};
  char cleared[WEAK_SLOTS] = {0};
  while (!atomic_load(&weak_stop)) {
    for (int k = 0; k < 16; k++) {
      unsigned i = (unsigned)((seed = seed * 6364136223846793005ull + 1442695040888963407ull) >> 33) % WEAK_SLOTS;
      void *p = gc_alloc(OBJ_BYTES);
      GCTEST_REQUIRE(p, "allocation failed");
      tags[i] = seed;
      pattern_fill(p, OBJ_BYTES, tags[i]);
      GC_WRITE(&weak[i], gc_weak_new(p));
      GC_WRITE(&keep[i], (seed >> 40) & 1 ? p : NULL);
      cleared[i] = 0;
    }
    for (unsigned i = 0; i < WEAK_SLOTS; i++) {
      if (!weak[i]) continue;
      void *p = gc_weak_get(weak[i]);
      if (keep[i]) {
        GCTEST_REQUIRE(p == keep[i], "weak reference to a reachable object read %p, not %p", p, keep[i]);
      } else if (!p) {
        cleared[i] = 1;
        continue;
      }
      GCTEST_REQUIRE(!cleared[i], "a cleared weak reference read non-NULL again");
      GCTEST_REQUIRE(pattern_check(p, OBJ_BYTES, tags[i]) == OBJ_BYTES, "weak target's contents changed");
    }
  }
  atomic_fetch_add(&weak_threads_done, 1);
  return NULL;
}

START_TEST(weak_references_from_threads_under_collection) {
  pthread_t th[WEAK_THREADS];
  for (uintptr_t i = 0; i < WEAK_THREADS; i++)
    ck_assert_int_eq(gc_pthread_create(&th[i], NULL, weak_worker, (void *)(i * 7919 + 1)), 0);
  uint64_t c0 = cycles_now();
  while (cycles_now() - c0 < WEAK_CYCLES) gc_collect();
  atomic_store(&weak_stop, 1);
  for (int i = 0; i < WEAK_THREADS; i++) pthread_join(th[i], NULL);
  ck_assert_int_eq(atomic_load(&weak_threads_done), WEAK_THREADS);
}
END_TEST

/* ---- ephemerons ------------------------------------------------------------ */

struct value {
  void *back;        /* points to its key: must not keep the key alive */
  uintptr_t tag;
  char payload[OBJ_BYTES];
};

static GCTEST_NOINLINE void make_ephemerons(gc_ephemeron **eph, void **keep, uintptr_t *hidden_keys) {
  for (uintptr_t i = 0; i < NOBJ; i++) {
    void *key = gc_alloc(32);
    struct value *v = gc_alloc(sizeof(*v));
    GC_WRITE(&v->back, key);
    v->tag = i;
    pattern_fill(v->payload, OBJ_BYTES, i);
    GC_WRITE(&eph[i], gc_ephemeron_new(key, v));
    ck_assert_ptr_nonnull(eph[i]);
    if (i % 2 == 0) GC_WRITE(&keep[i], key);
    hidden_keys[i] = hide(key);
  }
}

START_TEST(ephemerons) {
  gc_ephemeron **eph = gc_alloc(NOBJ * sizeof(*eph));
  void **keep = gc_alloc(NOBJ * sizeof(*keep));
  uintptr_t hidden_keys[NOBJ];
  make_ephemerons(eph, keep, hidden_keys);
  for (int round = 0; round < 3; round++) {
    for (int j = 0; j < 20000; j++) memset(gc_alloc(sizeof(struct value)), 0xEE, sizeof(struct value));
    collect_clean();
  }
  int cleared = 0;
  for (uintptr_t i = 0; i < NOBJ; i++) {
    void *key = gc_ephemeron_key(eph[i]);
    struct value *v = gc_ephemeron_value(eph[i]);
    if (i % 2 == 0) {
      /* Live key: the value, reachable only through the ephemeron, lives. */
      ck_assert_ptr_eq(key, keep[i]);
      ck_assert_ptr_nonnull(v);
      ck_assert_ptr_eq(v->back, key);
      ck_assert_uint_eq(v->tag, i);
      ck_assert_uint_eq(pattern_check(v->payload, OBJ_BYTES, i), OBJ_BYTES);
    } else if (!key) {
      ck_assert_ptr_null(v); /* both cleared together */
      cleared++;
    } else {
      ck_assert_ptr_eq(key, unhide(hidden_keys[i]));
      ck_assert_ptr_nonnull(v);
      ck_assert_uint_eq(pattern_check(v->payload, OBJ_BYTES, i), OBJ_BYTES);
    }
  }
  /* The value points back to the key, and still the key died. */
  ck_assert_msg(cleared >= NOBJ / 2 * GCTEST_RECLAIM_PERCENT / 100, "only %d of %d ephemerons cleared", cleared,
                NOBJ / 2);
  size_t gone = 0;
  for (uintptr_t i = 1; i < NOBJ; i += 2) gone += gc_base(unhide(hidden_keys[i])) == NULL;
  ck_assert_uint_ge(gone, (size_t)(NOBJ / 2 * GCTEST_RECLAIM_PERCENT / 100));
}
END_TEST

/* Chains: e[i] maps key[i] to key[i+1]; only key[0] is held.  Every key
 * and the last value live as long as key[0] does, found only through the
 * ephemerons, one resolution round after another. */
#define CHAIN 200

static GCTEST_NOINLINE gc_ephemeron **make_chain(void **head) {
  gc_ephemeron **e = gc_alloc(CHAIN * sizeof(*e));
  void *key = gc_alloc(32);
  *head = key;
  /* Built from the far end, so the marker meets them in the worst order. */
  void *keys[CHAIN + 1];
  keys[0] = key;
  for (int i = 1; i <= CHAIN; i++) {
    keys[i] = gc_alloc(32);
    pattern_fill(keys[i], 32, (uint64_t)i);
  }
  for (int i = CHAIN; i-- > 0;) GC_WRITE(&e[i], gc_ephemeron_new(keys[i], keys[i + 1]));
  memset(keys, 0, sizeof(keys));
  return e;
}

START_TEST(ephemeron_chains) {
  void *head;
  gc_ephemeron **e = make_chain(&head);
  for (int round = 0; round < 3; round++) {
    for (int j = 0; j < 20000; j++) memset(gc_alloc(32), 0xEE, 32);
    collect_clean();
  }
  void *key = head;
  for (int i = 0; i < CHAIN; i++) {
    ck_assert_ptr_eq(gc_ephemeron_key(e[i]), key);
    void *next = gc_ephemeron_value(e[i]);
    ck_assert_ptr_nonnull(next);
    ck_assert_uint_eq(pattern_check(next, 32, (uint64_t)(i + 1)), 32);
    key = next;
  }
}
END_TEST

static Suite *lifetime_suite(const char *name) {
  Suite *s = suite_create(name);
  TCase *fin = tcase_create("finalizers");
  tcase_set_timeout(fin, 120);
  tcase_add_checked_fixture(fin, NULL, teardown_verify);
  tcase_add_test(fin, finalizer_runs_once_off_the_main_thread);
  tcase_add_test(fin, finalizer_never_runs_for_reachable_objects);
  tcase_add_test(fin, finalizable_object_keeps_its_children);
  tcase_add_test(fin, resurrection);
  tcase_add_test(fin, finalizer_order_follows_pointers);
  tcase_add_test(fin, finalizer_bad_input_and_free);
  suite_add_tcase(s, fin);
  TCase *weak = tcase_create("weak");
  tcase_set_timeout(weak, 120);
  tcase_add_checked_fixture(weak, NULL, teardown_verify);
  tcase_add_test(weak, weak_references);
  tcase_add_test(weak, weak_references_from_threads_under_collection);
  tcase_add_test(weak, ephemerons);
  tcase_add_test(weak, ephemeron_chains);
  suite_add_tcase(s, weak);
  return s;
}

int main(void) {
  main_thread = pthread_self();
  setenv("MGC_CONCURRENT", "1", 1);
  setenv("MGC_VERIFY", "1", 1);
  int concurrent = run_suite(lifetime_suite("lifetime, concurrent + verify"));
  setenv("MGC_CONCURRENT", "0", 1);
  setenv("MGC_VERIFY", "0", 1);
  int stopped = run_suite(lifetime_suite("lifetime, stopped-world"));
  return concurrent == EXIT_SUCCESS && stopped == EXIT_SUCCESS ? EXIT_SUCCESS : EXIT_FAILURE;
}
