/*
 * test_roots.c: every kind of root keeps its objects alive, and nothing
 * else does (public API only).
 *
 * Roots, as design.md lists them: registered threads' stacks and saved
 * registers, the writable data segments of the executable and of shared
 * objects, and explicit roots (gc_add_roots).  An interior pointer keeps
 * the whole object.  Each survival test holds an object (filled with a
 * seeded pattern) by one kind of root only, runs many collections with the
 * stack clobbered in between, and checks gc_base and every byte.  Each
 * reclamation test drops many objects whose addresses it keeps hidden
 * (gctest.h) and checks that at least 90% are gone, that the collector
 * counted the frees, and that new allocations reuse the memory.
 *
 * TCases: stack, registers, globals, shared_library, explicit, interior,
 * unreachable.
 */
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "gctest.h"
#include "mgc.h"
#include "slotlib.h"

/* Collections per survival test: enough for several sweep generations. */
#define ROUNDS 20
#define OBJ_SIZE 256
#define MANY 1000
#define SMALL_SIZE 64
#define STACK_DEPTH 64

/* ---- helpers ------------------------------------------------------------ */

/* A fresh object of n bytes holding the pattern of seed, hidden; no copy of
 * its address stays in this frame once it returns. */
static GCTEST_NOINLINE uintptr_t new_patterned_kind(size_t n, uint64_t seed, bool atomic) {
  void *p = atomic ? gc_alloc_atomic(n) : gc_alloc(n);
  GCTEST_REQUIRE(p != NULL, "out of memory");
  pattern_fill(p, n, seed);
  return hide(p);
}

static uintptr_t new_patterned(size_t n, uint64_t seed) { return new_patterned_kind(n, seed, false); }

static GCTEST_NOINLINE void new_many(uintptr_t *hidden, size_t count, size_t n) {
  for (size_t i = 0; i < count; i++) hidden[i] = new_patterned(n, i + 1);
}

/* p is a live object of n bytes with the pattern of seed. */
static void assert_intact(const void *p, size_t n, uint64_t seed) {
  GCTEST_REQUIRE(gc_base(p) == p, "object %p was reclaimed (gc_base %p)", p, gc_base(p));
  GCTEST_REQUIRE(gc_size(p) >= n, "object %p: gc_size %zu < %zu", p, gc_size(p), n);
  size_t bad = pattern_check(p, n, seed);
  GCTEST_REQUIRE(bad == n, "object %p of %zu bytes: byte %zu overwritten", p, n, bad);
}

static int cmp_uintptr(const void *a, const void *b) {
  uintptr_t x = *(const uintptr_t *)a, y = *(const uintptr_t *)b;
  return x < y ? -1 : x > y;
}

/* ---- stack -------------------------------------------------------------- */

static GCTEST_NOINLINE void collect_deep(int depth) {
  volatile char pad[128];
  memset((char *)pad, 0, sizeof(pad));
  if (depth > 0) {
    collect_deep(depth - 1);
  } else {
    for (int i = 0; i < ROUNDS; i++) collect_clean();
  }
  __asm__ __volatile__("" : : "r"(pad) : "memory");
}

START_TEST(test_object_reachable_only_from_stack_variable_in_outer_frame_survives) {
  void *volatile held = unhide(new_patterned(OBJ_SIZE, 11));
  collect_deep(STACK_DEPTH);
  assert_intact(held, OBJ_SIZE, 11);
}
END_TEST

/* Many objects, each held by its own frame of a deep recursion. */
static GCTEST_NOINLINE void hold_in_frames(int depth, uint64_t seed) {
  void *volatile mine = unhide(new_patterned(SMALL_SIZE, seed));
  if (depth > 0) hold_in_frames(depth - 1, seed + 1);
  else
    for (int i = 0; i < ROUNDS / 4; i++) collect_clean();
  assert_intact(mine, SMALL_SIZE, seed);
}

START_TEST(test_objects_held_by_each_frame_of_deep_recursion_survive) {
  hold_in_frames(STACK_DEPTH * 4, 100);
}
END_TEST

/* ---- registers ---------------------------------------------------------- */

/* p is used after every call, so at -O2 it lives in a callee-saved
 * register for the whole loop and is never stored in this frame. */
static GCTEST_NOINLINE uint64_t sum_across_collections(uintptr_t h) {
  const unsigned char *p = unhide(h);
  uint64_t sum = 0;
  for (int i = 0; i < ROUNDS; i++) {
    clobber_stack();
    gc_collect();
    sum += p[i % OBJ_SIZE];
    p += 0; /* keep the pointer itself, not an index, live */
  }
  assert_intact(p, OBJ_SIZE, 22);
  return sum;
}

START_TEST(test_object_held_in_register_local_across_collections_survives) {
  uintptr_t h = new_patterned(OBJ_SIZE, 22);
  uint64_t sum = sum_across_collections(h);
  const unsigned char *p = unhide(h);
  uint64_t want = 0;
  for (int i = 0; i < ROUNDS; i++) want += p[i % OBJ_SIZE];
  ck_assert_uint_eq(sum, want);
}
END_TEST

#if defined(__x86_64__)
/* Another thread holds the only pointer in r15 while it spins in a loop
 * with no call and no memory copy: the stop signal's saved register file
 * is the only place the collector can find it. */
static volatile int spinner_ready, spinner_release;

static void *hold_in_r15(void *arg) {
  uintptr_t h = (uintptr_t)arg;
  uintptr_t mask = GCTEST_HIDE_MASK;
  uintptr_t out;
  __asm__ __volatile__(
      "mov %[h], %%r15\n\t"
      "xor %[mask], %%r15\n\t"
      "xor %[h], %[h]\n\t"
      "xor %[mask], %[mask]\n\t"
      "movl $1, %[ready]\n\t"
      "1: pause\n\t"
      "cmpl $0, %[rel]\n\t"
      "je 1b\n\t"
      "mov %%r15, %[out]\n\t"
      "xor %%r15, %%r15\n\t"
      : [out] "=&r"(out), [h] "+r"(h), [mask] "+r"(mask), [ready] "=m"(spinner_ready)
      : [rel] "m"(spinner_release)
      : "r15", "memory", "cc");
  return (void *)out;
}

START_TEST(test_object_held_only_in_stopped_threads_register_survives) {
  spinner_ready = spinner_release = 0;
  uintptr_t h = new_patterned(OBJ_SIZE, 33);
  pthread_t t;
  ck_assert_int_eq(gc_pthread_create(&t, NULL, hold_in_r15, (void *)h), 0);
  while (!spinner_ready) sched_yield();
  for (int i = 0; i < ROUNDS; i++) {
    collect_clean();
    ck_assert_msg(gc_base(unhide(h)) == unhide(h), "reclaimed after %d collections", i + 1);
  }
  spinner_release = 1;
  void *out;
  pthread_join(t, &out);
  ck_assert_ptr_eq(out, unhide(h));
  assert_intact(out, OBJ_SIZE, 33);
}
END_TEST
#endif

/* ---- globals ------------------------------------------------------------ */

static void *bss_slot;                  /* .bss */
void *data_slot = &data_slot;           /* .data (initialised) */
static struct { char pad[3]; void *p; } __attribute__((packed)) unaligned_slot;

START_TEST(test_object_reachable_only_from_global_survives) {
  bss_slot = unhide(new_patterned(OBJ_SIZE, 44));
  data_slot = unhide(new_patterned(OBJ_SIZE, 45));
  for (int i = 0; i < ROUNDS; i++) collect_clean();
  assert_intact(bss_slot, OBJ_SIZE, 44);
  assert_intact(data_slot, OBJ_SIZE, 45);
  bss_slot = NULL;
  data_slot = &data_slot;
}
END_TEST

static void *global_chain;

START_TEST(test_objects_reachable_through_chain_from_global_survive) {
  /* global -> n0 -> n1 -> ... -> n99, each node OBJ_SIZE bytes: word 0 is
   * the next pointer, the rest the pattern of its index. */
  void **prev = NULL;
  for (int i = 0; i < 100; i++) {
    void **n = unhide(new_patterned(OBJ_SIZE, 500 + i));
    n[0] = NULL;
    if (prev) prev[0] = n;
    else global_chain = n;
    prev = n;
  }
  prev = NULL;
  for (int r = 0; r < ROUNDS / 2; r++) collect_clean();
  int i = 0;
  for (void **n = global_chain; n; n = n[0], i++) {
    ck_assert_ptr_eq(gc_base(n), n);
    /* word 0 holds the link; the rest must still be the pattern */
    unsigned char want[OBJ_SIZE];
    pattern_fill(want, OBJ_SIZE, 500 + i);
    ck_assert_msg(memcmp((char *)n + sizeof(void *), want + sizeof(void *),
                         OBJ_SIZE - sizeof(void *)) == 0, "node %d changed", i);
  }
  ck_assert_int_eq(i, 100);
  global_chain = NULL;
}
END_TEST

START_TEST(test_unaligned_global_word_does_not_crash_collection) {
  /* Only aligned words are candidates (design.md): an unaligned copy may
   * or may not keep the object; the collection must simply work. */
  void *p = unhide(new_patterned(SMALL_SIZE, 46));
  memcpy(&unaligned_slot.p, &p, sizeof(p));
  p = NULL;
  for (int i = 0; i < 4; i++) collect_clean();
  memset(&unaligned_slot, 0, sizeof(unaligned_slot));
}
END_TEST

/* ---- shared library ----------------------------------------------------- */

START_TEST(test_object_reachable_only_from_shared_library_static_survives) {
  lib_set(unhide(new_patterned(OBJ_SIZE, 55)));
  for (int i = 0; i < ROUNDS; i++) collect_clean();
  assert_intact(lib_get(), OBJ_SIZE, 55);
  lib_set(NULL);
}
END_TEST

/* MANY objects chained through word 0, the newest first; the library
 * slot is their only root.  Built here so that no copy of the head stays
 * in the test's frame. */
static GCTEST_NOINLINE void park_chain_in_library(uintptr_t *hidden) {
  void **head = NULL;
  for (size_t i = 0; i < MANY; i++) {
    void **n = unhide(new_patterned(SMALL_SIZE, i));
    n[0] = head;
    head = n;
    hidden[i] = hide(n);
  }
  lib_set(head);
}

START_TEST(test_object_dropped_from_shared_library_static_is_reclaimed) {
  uintptr_t *hidden = malloc(MANY * sizeof(*hidden));
  park_chain_in_library(hidden);
  collect_clean();
  ck_assert_uint_eq(count_reclaimed(hidden, MANY), 0);
  lib_set(NULL);
  collect_clean();
  /* A stray word pointing at node k would keep k and everything older;
   * hold the usual threshold. */
  size_t dead = count_reclaimed(hidden, MANY);
  ck_assert_msg(dead * 100 >= MANY * GCTEST_RECLAIM_PERCENT, "only %zu of %d reclaimed", dead, MANY);
  free(hidden);
}
END_TEST

/* ---- explicit roots ----------------------------------------------------- */

static GCTEST_NOINLINE void fill_root_block(void **block, uintptr_t *hidden, size_t n) {
  new_many(hidden, n, SMALL_SIZE);
  for (size_t i = 0; i < n; i++) block[i] = unhide(hidden[i]);
}

START_TEST(test_objects_in_explicit_root_survive_and_are_reclaimed_after_removal) {
  void **block = malloc(MANY * sizeof(void *));
  uintptr_t *hidden = malloc(MANY * sizeof(*hidden));
  ck_assert_int_eq(gc_add_roots(block, MANY * sizeof(void *)), 0);
  fill_root_block(block, hidden, MANY);
  for (int r = 0; r < ROUNDS / 2; r++) collect_clean();
  for (size_t i = 0; i < MANY; i++) assert_intact(block[i], SMALL_SIZE, i + 1);

  uint64_t frees0 = stats_now().total_free_objects;
  gc_remove_roots(block, MANY * sizeof(void *));
  collect_clean();
  size_t dead = count_reclaimed(hidden, MANY);
  ck_assert_msg(dead * 100 >= MANY * GCTEST_RECLAIM_PERCENT, "only %zu of %d reclaimed", dead, MANY);
  ck_assert_uint_ge(stats_now().total_free_objects - frees0, dead);
  free(block);
  free(hidden);
}
END_TEST

START_TEST(test_removing_part_of_explicit_root_keeps_the_rest) {
  void **block = malloc(MANY * sizeof(void *));
  uintptr_t *hidden = malloc(MANY * sizeof(*hidden));
  ck_assert_int_eq(gc_add_roots(block, MANY * sizeof(void *)), 0);
  fill_root_block(block, hidden, MANY);
  /* Remove the middle half: [MANY/4, 3*MANY/4). */
  gc_remove_roots(block + MANY / 4, MANY / 2 * sizeof(void *));
  for (int r = 0; r < 4; r++) collect_clean();
  size_t dead_mid = 0;
  for (size_t i = 0; i < MANY; i++) {
    bool mid = i >= MANY / 4 && i < 3 * MANY / 4;
    if (!mid) assert_intact(unhide(hidden[i]), SMALL_SIZE, i + 1);
    else if (gc_base(unhide(hidden[i])) == NULL) dead_mid++;
  }
  ck_assert_msg(dead_mid * 100 >= MANY / 2 * GCTEST_RECLAIM_PERCENT, "only %zu of %d reclaimed",
                dead_mid, MANY / 2);
  gc_remove_roots(block, MANY * sizeof(void *));
  free(block);
  free(hidden);
}
END_TEST

/* ---- interior pointers -------------------------------------------------- */

static const size_t interior_sizes[] = {16, 48, 200, 1000, 5000, 30000, 40000, (size_t)2 << 20};
#define NSIZES (sizeof(interior_sizes) / sizeof(interior_sizes[0]))
#define NOFFSETS 4
static char *interior[NSIZES][NOFFSETS];  /* the only references */

static size_t interior_offset(size_t size, int k) {
  const size_t offs[NOFFSETS] = {1, 7, size / 2, size - 1};
  return offs[k];
}

static GCTEST_NOINLINE void make_interior_objects(uintptr_t *hidden) {
  for (size_t s = 0; s < NSIZES; s++)
    for (int k = 0; k < NOFFSETS; k++) {
      uintptr_t h = new_patterned(interior_sizes[s], s * 10 + k);
      hidden[s * NOFFSETS + k] = h;
      interior[s][k] = (char *)unhide(h) + interior_offset(interior_sizes[s], k);
    }
}

START_TEST(test_object_reachable_only_through_interior_pointer_survives) {
  uintptr_t hidden[NSIZES * NOFFSETS];
  make_interior_objects(hidden);
  for (int r = 0; r < ROUNDS; r++) collect_clean();
  for (size_t s = 0; s < NSIZES; s++)
    for (int k = 0; k < NOFFSETS; k++) {
      void *base = unhide(hidden[s * NOFFSETS + k]);
      ck_assert_ptr_eq(gc_base(interior[s][k]), base);
      assert_intact(base, interior_sizes[s], s * 10 + k);
    }
  memset(interior, 0, sizeof(interior));
}
END_TEST

static GCTEST_NOINLINE void make_interior_root_block(char **block, uintptr_t *hidden, size_t n) {
  new_many(hidden, n, SMALL_SIZE);
  for (size_t i = 0; i < n; i++) block[i] = (char *)unhide(hidden[i]) + 1 + i % (SMALL_SIZE - 1);
}

START_TEST(test_objects_held_by_interior_pointers_are_reclaimed_when_dropped) {
  char **block = malloc(MANY * sizeof(char *));
  uintptr_t *hidden = malloc(MANY * sizeof(*hidden));
  ck_assert_int_eq(gc_add_roots(block, MANY * sizeof(char *)), 0);
  make_interior_root_block(block, hidden, MANY);
  collect_clean();
  for (size_t i = 0; i < MANY; i++) assert_intact(unhide(hidden[i]), SMALL_SIZE, i + 1);
  memset(block, 0, MANY * sizeof(char *));
  collect_clean();
  size_t dead = count_reclaimed(hidden, MANY);
  ck_assert_msg(dead * 100 >= MANY * GCTEST_RECLAIM_PERCENT, "only %zu of %d reclaimed", dead, MANY);
  gc_remove_roots(block, MANY * sizeof(char *));
  free(block);
  free(hidden);
}
END_TEST

/* ---- unreachable -------------------------------------------------------- */

START_TEST(test_unreachable_objects_are_reclaimed_and_memory_reused) {
  uintptr_t *hidden = malloc(MANY * sizeof(*hidden));
  uintptr_t *again = malloc(MANY * sizeof(*again));
  collect_clean();
  uint64_t frees0 = stats_now().total_free_objects;
  new_many(hidden, MANY, SMALL_SIZE);
  collect_clean();
  size_t dead = count_reclaimed(hidden, MANY);
  ck_assert_msg(dead * 100 >= MANY * GCTEST_RECLAIM_PERCENT, "only %zu of %d reclaimed", dead, MANY);
  uint64_t freed = stats_now().total_free_objects - frees0;
  ck_assert_msg(freed >= dead, "total_free_objects rose by %llu, %zu reclaimed",
                (unsigned long long)freed, dead);

  /* Allocate as many again: most should land in the memory just freed. */
  new_many(again, MANY, SMALL_SIZE);
  for (size_t i = 0; i < MANY; i++) {
    hidden[i] = (uintptr_t)unhide(hidden[i]);
    again[i] = (uintptr_t)unhide(again[i]);
  }
  qsort(hidden, MANY, sizeof(*hidden), cmp_uintptr);
  size_t reused = 0;
  for (size_t i = 0; i < MANY; i++)
    if (bsearch(&again[i], hidden, MANY, sizeof(*hidden), cmp_uintptr)) reused++;
  memset(again, 0, MANY * sizeof(*again));
  memset(hidden, 0, MANY * sizeof(*hidden));
  ck_assert_msg(reused * 2 >= MANY, "only %zu of %d new objects reuse freed memory", reused, MANY);
  free(hidden);
  free(again);
}
END_TEST

/* Is the object hidden in h still allocated?  Out of line, so that its
 * address is never left in a register of the caller, which collects
 * again when it is. */
static GCTEST_NOINLINE bool hidden_object_is_allocated(uintptr_t h) { return gc_base(unhide(h)) != NULL; }

START_TEST(test_first_object_of_heap_is_reclaimed_when_dropped) {
  /* This test's process has a fresh heap (no mgc call before the runner
   * forks), so this large object is the first in the heap and starts at
   * its lowest address.  Nothing refers to it: no mgc-internal global
   * (such as the arena bounds) may keep it alive.  A stray copy of its
   * address that the stack clobbering missed kept it through one
   * collect_clean in about 3% of runs under ASan with two suites at once,
   * so it gets up to four; a global would keep it through all of them. */
  uintptr_t h = new_patterned_kind((size_t)1 << 20, 9, false);
  int cleans = 0;
  do collect_clean();
  while (hidden_object_is_allocated(h) && ++cleans < 4);
  ck_assert_msg(!hidden_object_is_allocated(h),
                "the heap's first object at %p survives %d collections with no reference", unhide(h),
                2 * cleans);
}
END_TEST

START_TEST(test_reachable_objects_survive_while_unreachable_neighbours_are_reclaimed) {
  /* Alternate kept and dropped objects in the same spans. */
  void **keep = malloc(MANY / 2 * sizeof(void *));
  uintptr_t *drop = malloc(MANY / 2 * sizeof(*drop));
  ck_assert_int_eq(gc_add_roots(keep, MANY / 2 * sizeof(void *)), 0);
  for (size_t i = 0; i < MANY / 2; i++) {
    keep[i] = unhide(new_patterned(SMALL_SIZE, 2 * i));
    drop[i] = new_patterned(SMALL_SIZE, 2 * i + 1);
  }
  for (int r = 0; r < 4; r++) collect_clean();
  for (size_t i = 0; i < MANY / 2; i++) assert_intact(keep[i], SMALL_SIZE, 2 * i);
  size_t dead = count_reclaimed(drop, MANY / 2);
  ck_assert_msg(dead * 100 >= MANY / 2 * GCTEST_RECLAIM_PERCENT, "only %zu of %d reclaimed", dead,
                MANY / 2);
  /* Reusing the holes must not disturb the survivors. */
  uintptr_t *fill = malloc(MANY * sizeof(*fill));
  new_many(fill, MANY, SMALL_SIZE);
  collect_clean();
  for (size_t i = 0; i < MANY / 2; i++) assert_intact(keep[i], SMALL_SIZE, 2 * i);
  gc_remove_roots(keep, MANY / 2 * sizeof(void *));
  free(keep);
  free(drop);
  free(fill);
}
END_TEST

static Suite *roots_suite(void) {
  Suite *s = suite_create("roots");
  TCase *tc = tcase_create("stack");
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, test_object_reachable_only_from_stack_variable_in_outer_frame_survives);
  tcase_add_test(tc, test_objects_held_by_each_frame_of_deep_recursion_survive);
  suite_add_tcase(s, tc);

  tc = tcase_create("registers");
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, test_object_held_in_register_local_across_collections_survives);
#if defined(__x86_64__)
  tcase_add_test(tc, test_object_held_only_in_stopped_threads_register_survives);
#endif
  suite_add_tcase(s, tc);

  tc = tcase_create("globals");
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, test_object_reachable_only_from_global_survives);
  tcase_add_test(tc, test_objects_reachable_through_chain_from_global_survive);
  tcase_add_test(tc, test_unaligned_global_word_does_not_crash_collection);
  suite_add_tcase(s, tc);

  tc = tcase_create("shared_library");
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, test_object_reachable_only_from_shared_library_static_survives);
  tcase_add_test(tc, test_object_dropped_from_shared_library_static_is_reclaimed);
  suite_add_tcase(s, tc);

  tc = tcase_create("explicit");
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, test_objects_in_explicit_root_survive_and_are_reclaimed_after_removal);
  tcase_add_test(tc, test_removing_part_of_explicit_root_keeps_the_rest);
  suite_add_tcase(s, tc);

  tc = tcase_create("interior");
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, test_object_reachable_only_through_interior_pointer_survives);
  tcase_add_test(tc, test_objects_held_by_interior_pointers_are_reclaimed_when_dropped);
  suite_add_tcase(s, tc);

  tc = tcase_create("unreachable");
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, test_unreachable_objects_are_reclaimed_and_memory_reused);
  tcase_add_test(tc, test_first_object_of_heap_is_reclaimed_when_dropped);
  tcase_add_test(tc, test_reachable_objects_survive_while_unreachable_neighbours_are_reclaimed);
  suite_add_tcase(s, tc);
  return s;
}

/* No mgc call before the runner forks: each test starts its own heap in
 * its own process. */
int main(void) {
  return run_suite(roots_suite());
}
