/*
 * test_collect.c: what a collection keeps and frees, how it is paced and
 * switched off, and what it reports (public API only).
 *
 * TCases:
 *   large     objects over 1 MiB survive while referenced and give their
 *             pages back (heap_in_use falls) when dropped;
 *   noscan    gc_alloc_atomic memory is never scanned: pointer-like words
 *             in it keep nothing alive;
 *   shape     a 10-million-node list (marking must not recurse or grow
 *             without bound) and a million-pointer array survive whole and
 *             are reclaimed when dropped;
 *   pacing    gc_set_percent returns the old value and a negative value
 *             stops automatic cycles; gc_disable/gc_enable nest;
 *   stats     gc_get_stats fields move as documented in mgc.h;
 *   trace     MGC_TRACE=1 prints one "gc N @" line per cycle on stderr
 *             (checked in a child process started with the variable set,
 *             since the environment is read once by gc_init).
 *
 * main() makes no mgc call before the runner forks, so every test starts
 * with a fresh heap and fresh counters.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "gctest.h"
#include "mgc.h"

#define MIB ((size_t)1 << 20)
#define LARGE_SIZE (2 * MIB)
#define NLARGE 8
#define MANY 1000
#define SMALL_SIZE 64
#define DEEP_NODES 10000000u
#define WIDE_POINTERS 1000000u
#define GARBAGE_BYTES (100 * MIB)
#define GARBAGE_CHUNK ((size_t)64 << 10)
#define GOGC_DEFAULT 100
#define HEAP_GOAL_MIN (4 * MIB)
/* The scavenger releases pages free for 3 s; give it this long. */
#define RELEASE_WAIT_S 10

/* ---- helpers ------------------------------------------------------------ */

static GCTEST_NOINLINE uintptr_t new_patterned(size_t n, uint64_t seed, bool atomic) {
  void *p = atomic ? gc_alloc_atomic(n) : gc_alloc(n);
  GCTEST_REQUIRE(p != NULL, "out of memory");
  pattern_fill(p, n, seed);
  return hide(p);
}

static void assert_intact(const void *p, size_t n, uint64_t seed) {
  GCTEST_REQUIRE(gc_base(p) == p, "object %p was reclaimed (gc_base %p)", p, gc_base(p));
  GCTEST_REQUIRE(gc_size(p) >= n, "object %p: gc_size %zu < %zu", p, gc_size(p), n);
  size_t bad = pattern_check(p, n, seed);
  GCTEST_REQUIRE(bad == n, "object %p of %zu bytes: byte %zu overwritten", p, n, bad);
}

/* Allocate `bytes` of unreachable memory: scanned small objects, and
 * noscan 64 KiB chunks (large objects).  Nothing is kept. */
static GCTEST_NOINLINE void make_garbage(size_t bytes) {
  size_t done = 0;
  for (unsigned i = 0; done < bytes; i++) {
    if (i % 2) {
      void *p = gc_alloc_atomic(GARBAGE_CHUNK);
      if (!p) abort(); /* no ck_assert: the trace child runs outside Check */
      done += GARBAGE_CHUNK;
    } else {
      for (int k = 0; k < 64; k++) {
        void **p = gc_alloc(256);
        if (!p) abort();
        p[0] = p;
      }
      done += 64 * 256;
    }
  }
}

/* Checked fixture, run in each test's process before the test: the first
 * object of a fresh heap sits at the heap's lowest address, which mgc's
 * own globals hold when it is linked statically, so it is never reclaimed
 * (test_roots: test_first_object_of_heap_is_reclaimed_when_dropped proves
 * that bug once).  Allocating it here keeps the bug out of every other
 * test's figures. */
static void *first_object;

static void setup_fresh_heap(void) { first_object = gc_alloc(SMALL_SIZE); }

static void assert_reclaimed_most(const uintptr_t *hidden, size_t n) {
  size_t dead = count_reclaimed(hidden, n);
  ck_assert_msg(dead * 100 >= n * GCTEST_RECLAIM_PERCENT, "only %zu of %zu reclaimed", dead, n);
}

/* ---- large -------------------------------------------------------------- */

static void *large_slots[NLARGE];

static GCTEST_NOINLINE void make_large(uintptr_t *hidden, bool atomic) {
  for (int i = 0; i < NLARGE; i++) {
    size_t n = LARGE_SIZE + (size_t)i * 4096 + 8;
    hidden[i] = new_patterned(n, 70 + i, atomic);
    large_slots[i] = unhide(hidden[i]);
  }
}

static void check_large_lifecycle(bool atomic) {
  uintptr_t hidden[NLARGE];
  make_large(hidden, atomic);
  for (int r = 0; r < 5; r++) collect_clean();
  for (int i = 0; i < NLARGE; i++) assert_intact(large_slots[i], LARGE_SIZE + (size_t)i * 4096 + 8, 70 + i);
  uint64_t in_use0 = stats_now().heap_in_use;
  ck_assert_uint_ge(in_use0, (uint64_t)NLARGE * LARGE_SIZE);
  memset(large_slots, 0, sizeof(large_slots));
  collect_clean();
  size_t dead = count_reclaimed(hidden, NLARGE);
  ck_assert_msg(dead >= NLARGE - 1, "only %zu of %d large objects reclaimed", dead, NLARGE);
  uint64_t in_use1 = stats_now().heap_in_use;
  ck_assert_msg(in_use0 - in_use1 >= (uint64_t)dead * LARGE_SIZE,
                "heap_in_use fell by %llu bytes only, %zu objects of 2 MiB freed",
                (unsigned long long)(in_use0 - in_use1), dead);
}

START_TEST(test_large_objects_survive_when_referenced_and_are_reclaimed_when_dropped) {
  check_large_lifecycle(false);
}
END_TEST

START_TEST(test_large_noscan_objects_survive_when_referenced_and_are_reclaimed_when_dropped) {
  check_large_lifecycle(true);
}
END_TEST

START_TEST(test_memory_of_reclaimed_large_object_is_reused) {
  uintptr_t hidden[NLARGE];
  make_large(hidden, false);
  memset(large_slots, 0, sizeof(large_slots));
  collect_clean();
  uint64_t sys0 = stats_now().heap_sys;
  /* Ten times over: without reuse the heap would grow by 160 MiB. */
  for (int r = 0; r < 10; r++) {
    make_large(hidden, false);
    memset(large_slots, 0, sizeof(large_slots));
    collect_clean();
  }
  uint64_t sys1 = stats_now().heap_sys;
  ck_assert_msg(sys1 - sys0 <= (uint64_t)2 * NLARGE * (LARGE_SIZE + 64 * 1024),
                "heap_sys grew from %llu to %llu", (unsigned long long)sys0, (unsigned long long)sys1);
}
END_TEST

/* ---- noscan ------------------------------------------------------------- */

static void *noscan_holder;

/* An atomic block of n words, each the only pointer to a small object. */
static GCTEST_NOINLINE void make_noscan_holder(uintptr_t *hidden, size_t n) {
  void **block = gc_alloc_atomic(n * sizeof(void *));
  GCTEST_REQUIRE(block != NULL, "out of memory");
  for (size_t i = 0; i < n; i++) {
    hidden[i] = new_patterned(SMALL_SIZE, i, false);
    block[i] = unhide(hidden[i]);
  }
  noscan_holder = block;
}

static void check_noscan_keeps_nothing(size_t n) {
  uintptr_t *hidden = malloc(n * sizeof(*hidden));
  make_noscan_holder(hidden, n);
  collect_clean();
  ck_assert_ptr_eq(gc_base(noscan_holder), noscan_holder); /* the block itself is live */
  assert_reclaimed_most(hidden, n);
  /* The block still holds the (now stale) words: the collector did not
   * touch the contents of a noscan object. */
  for (size_t i = 0; i < n; i++)
    GCTEST_REQUIRE(((void **)noscan_holder)[i] == unhide(hidden[i]), "word %zu of the noscan object changed", i);
  noscan_holder = NULL;
  free(hidden);
}

START_TEST(test_pointers_stored_in_small_noscan_object_do_not_keep_targets_alive) {
  check_noscan_keeps_nothing(MANY); /* 8000 bytes: a small size class */
}
END_TEST

START_TEST(test_pointers_stored_in_large_noscan_object_do_not_keep_targets_alive) {
  check_noscan_keeps_nothing(8 * MANY); /* 64000 bytes: a large object */
}
END_TEST

START_TEST(test_pointers_stored_in_tiny_noscan_objects_do_not_keep_targets_alive) {
  /* 8-byte atomic objects are packed by the tiny allocator. */
  void **holders = malloc(MANY * sizeof(void *));
  uintptr_t *hidden = malloc(MANY * sizeof(*hidden));
  ck_assert_int_eq(gc_add_roots(holders, MANY * sizeof(void *)), 0);
  for (size_t i = 0; i < MANY; i++) {
    void **tiny = gc_alloc_atomic(sizeof(void *));
    hidden[i] = new_patterned(SMALL_SIZE, i, false);
    *tiny = unhide(hidden[i]);
    holders[i] = tiny;
  }
  collect_clean();
  assert_reclaimed_most(hidden, MANY);
  for (size_t i = 0; i < MANY; i++) GCTEST_REQUIRE(gc_base(holders[i]), "tiny holder %zu reclaimed", i);
  gc_remove_roots(holders, MANY * sizeof(void *));
  free(holders);
  free(hidden);
}
END_TEST

/* ---- shape: deep and wide ------------------------------------------------ */

struct node {
  struct node *next;
  uintptr_t value;
};

static struct node *deep_head;

static GCTEST_NOINLINE void build_deep_list(unsigned n) {
  struct node *head = NULL;
  for (unsigned i = 0; i < n; i++) {
    struct node *x = gc_alloc(sizeof(*x));
    GCTEST_REQUIRE(x != NULL, "out of memory");
    x->next = head;
    x->value = i ^ 0xabcdu;
    head = x;
  }
  deep_head = head;
}

static GCTEST_NOINLINE void check_deep_list(unsigned n) {
  unsigned count = 0;
  uintptr_t expect = n;
  for (struct node *x = deep_head; x; x = x->next, count++) {
    expect--;
    if (x->value != (expect ^ 0xabcdu))
      ck_abort_msg("node %u from the head holds %lu, expected %lu", count,
                   (unsigned long)x->value, (unsigned long)(expect ^ 0xabcdu));
  }
  ck_assert_uint_eq(count, n);
}

START_TEST(test_ten_million_node_list_survives_and_is_reclaimed_when_dropped) {
  build_deep_list(DEEP_NODES);
  clobber_stack();
  for (int r = 0; r < 2; r++) {
    gc_collect();
    check_deep_list(DEEP_NODES);
  }
  struct gc_stats s0 = stats_now();
  deep_head = NULL;
  collect_clean();
  struct gc_stats s1 = stats_now();
  uint64_t freed = s1.total_free_objects - s0.total_free_objects;
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
  /* Under ASan the walk in check_deep_list leaves a node address in a
   * callee-saved register or spill slot that the conservative stack scan
   * finds, and every node after it stays reachable: a property of
   * conservative scanning, not of the collector.  Under TSan a word keeps
   * the list from about its 1.6 millionth node on, the same each run
   * (where that word lives was not tracked down).  Only survival is
   * checked there (above); reclamation is checked in the normal build. */
  (void)freed;
  return;
#endif
  ck_assert_msg(freed * 100 >= (uint64_t)DEEP_NODES * GCTEST_RECLAIM_PERCENT,
                "%llu of %u nodes freed", (unsigned long long)freed, DEEP_NODES);
  uint64_t list_bytes = (uint64_t)DEEP_NODES * sizeof(struct node);
  ck_assert_msg(s0.heap_in_use - s1.heap_in_use >= list_bytes * GCTEST_RECLAIM_PERCENT / 100,
                "heap_in_use fell from %llu to %llu", (unsigned long long)s0.heap_in_use,
                (unsigned long long)s1.heap_in_use);
}
END_TEST

static uintptr_t **wide_array;

static GCTEST_NOINLINE void build_wide_array(unsigned n) {
  uintptr_t **a = gc_alloc(n * sizeof(*a));
  GCTEST_REQUIRE(a != NULL, "out of memory");
  for (unsigned i = 0; i < n; i++) {
    uintptr_t *x = gc_alloc(4 * sizeof(uintptr_t));
    GCTEST_REQUIRE(x != NULL, "out of memory");
    x[0] = i;
    x[1] = hide(x);
    x[2] = ~(uintptr_t)i;
    a[i] = x;
  }
  wide_array = a;
}

START_TEST(test_million_pointer_array_keeps_all_its_targets) {
  build_wide_array(WIDE_POINTERS);
  clobber_stack();
  for (int r = 0; r < 3; r++) {
    gc_collect();
    for (unsigned i = 0; i < WIDE_POINTERS; i++) {
      uintptr_t *x = wide_array[i];
      if (x[0] != i || x[1] != hide(x) || x[2] != ~(uintptr_t)i || gc_base(x) != x)
        ck_abort_msg("target %u of the array was reclaimed or overwritten", i);
    }
  }
  uint64_t frees0 = stats_now().total_free_objects;
  wide_array = NULL;
  collect_clean();
  uint64_t freed = stats_now().total_free_objects - frees0;
#if defined(__SANITIZE_ADDRESS__)
  /* As for the deep list: under ASan a stale copy of the array's address
   * can stay in a register or spill slot the conservative scan sees, and
   * then the whole array lives on.  Reclamation is checked in the normal
   * build. */
  (void)freed;
  return;
#endif
  ck_assert_msg(freed * 100 >= (uint64_t)WIDE_POINTERS * GCTEST_RECLAIM_PERCENT,
                "%llu of %u targets freed", (unsigned long long)freed, WIDE_POINTERS);
}
END_TEST

/* ---- pacing ------------------------------------------------------------- */

START_TEST(test_set_percent_returns_old_value_and_negative_disables_automatic_collection) {
  int first = gc_set_percent(50);
  if (!getenv("MGC_GOGC")) ck_assert_int_eq(first, GOGC_DEFAULT);
  ck_assert_int_eq(gc_set_percent(-7), 50);
  uint64_t c0 = cycles_now();
  make_garbage(GARBAGE_BYTES);
  ck_assert_msg(cycles_now() == c0, "%llu cycles ran with collection off",
                (unsigned long long)(cycles_now() - c0));
  int old = gc_set_percent(100);
  ck_assert_msg(old < 0, "gc_set_percent(-7) then read back %d", old);
  make_garbage(GARBAGE_BYTES);
  ck_assert_msg(cycles_now() >= c0 + 2, "only %llu cycles while allocating 100 MB at GOGC=100",
                (unsigned long long)(cycles_now() - c0));
}
END_TEST

START_TEST(test_gc_collect_still_collects_when_percent_is_negative) {
  gc_set_percent(-1);
  uint64_t c0 = cycles_now();
  gc_collect();
  ck_assert_uint_eq(cycles_now(), c0 + 1);
}
END_TEST

START_TEST(test_disable_and_enable_nest) {
  gc_disable();
  gc_disable();
  uint64_t c0 = cycles_now();
  make_garbage(GARBAGE_BYTES / 2);
  ck_assert_uint_eq(cycles_now(), c0);
  gc_enable();
  make_garbage(GARBAGE_BYTES / 2);
  ck_assert_msg(cycles_now() == c0, "collection resumed after one gc_enable of two gc_disable");
  gc_collect();
  ck_assert_uint_eq(cycles_now(), c0 + 1); /* gc_collect collects even when disabled */
  make_garbage(GARBAGE_BYTES / 2);
  ck_assert_uint_eq(cycles_now(), c0 + 1);
  gc_enable();
  make_garbage(GARBAGE_BYTES / 2);
  ck_assert_msg(cycles_now() >= c0 + 2, "no automatic cycle after the matching gc_enable");
}
END_TEST

/* ---- stats -------------------------------------------------------------- */

START_TEST(test_get_stats_rejects_null_and_too_small_size) {
  ck_assert_int_eq(gc_get_stats(NULL), EINVAL);
  struct gc_stats s;
  memset(&s, 0, sizeof(s));
  s.size = offsetof(struct gc_stats, cycles) - 1;
  ck_assert_int_eq(gc_get_stats(&s), EINVAL);
}
END_TEST

START_TEST(test_get_stats_with_older_smaller_struct_writes_only_its_size) {
  gc_collect();
  struct gc_stats s;
  memset(&s, 0xee, sizeof(s));
  s.size = offsetof(struct gc_stats, forced_cycles);
  ck_assert_int_eq(gc_get_stats(&s), 0);
  ck_assert_uint_eq(s.cycles, 1);
  unsigned char *rest = (unsigned char *)&s + offsetof(struct gc_stats, forced_cycles);
  for (size_t i = 0; i < sizeof(s) - offsetof(struct gc_stats, forced_cycles); i++)
    ck_assert_msg(rest[i] == 0xee, "byte %zu past the caller's size was written", i);
}
END_TEST

START_TEST(test_collection_advances_cycles_and_records_pause) {
  gc_set_percent(-1);
  struct gc_stats s0 = stats_now();
  ck_assert_uint_eq(s0.cycles, 0);
  gc_collect();
  gc_collect();
  struct gc_stats s1 = stats_now();
  ck_assert_uint_eq(s1.cycles, 2);
  ck_assert_uint_eq(s1.forced_cycles, 2);
  ck_assert_uint_gt(s1.last_pause_ns, 0);
  ck_assert_uint_ge(s1.total_pause_ns, s1.last_pause_ns);
  ck_assert_uint_ge(s1.max_pause_ns, s1.last_pause_ns);
  ck_assert_uint_le(s1.max_pause_ns, s1.total_pause_ns);
  /* pause_ns is a ring of stops of the world (one or more per cycle). */
  ck_assert_uint_ge(s1.pauses, s1.cycles);
  ck_assert_uint_eq(s1.pause_ns[(s1.pauses - 1) % GC_PAUSE_HISTORY], s1.last_pause_ns);
  ck_assert_uint_gt(s1.pause_ns[0], 0);
  ck_assert_uint_gt(s1.last_gc_ns, 0);
  ck_assert_uint_ge(s1.heap_goal, HEAP_GOAL_MIN);
  ck_assert_uint_gt(s1.gc_cpu_ns, 0);
}
END_TEST

/* A program that moves on from a phase that used many size classes: the
 * spans its thread cached then count as allocated in heap_live until they
 * are given back, which happens at the first refill after a collection
 * (alloc/mcache.c, "Giving spans back each cycle").  The next phase stays
 * far under the heap goal and must not collect over and over; before the
 * release, it ran a collection at nearly every refill. */
START_TEST(test_spans_cached_in_an_earlier_phase_do_not_keep_collections_coming) {
  gc_set_percent(100);
  /* Phase 1: one object of each size class, scanned and atomic, freed at
   * once: the spans stay cached, over 8 MiB of them. */
  for (size_t n = 32; n <= 32768; n += 16) { /* every small size class */
    gc_free(gc_alloc(n));
    gc_free(gc_alloc_atomic(n));
  }
  /* Phase 2: batches of 1 MiB of 256-byte objects, allocated and freed. */
  enum { BATCH = 4096, ROUNDS = 50 };
  static void *batch[BATCH];
  uint64_t before = stats_now().cycles;
  for (int r = 0; r < ROUNDS; r++) {
    for (int i = 0; i < BATCH; i++) batch[i] = gc_alloc(256);
    for (int i = 0; i < BATCH; i++) {
      gc_free(batch[i]);
      batch[i] = NULL;
    }
  }
  uint64_t cycles = stats_now().cycles - before;
  ck_assert_msg(cycles <= 4, "%llu collections while the live heap stayed under 1 MiB",
                (unsigned long long)cycles);
}
END_TEST

/* A thread that allocates objects of every size holds a span of each
 * size class, scanned and atomic: some 8.4 MiB of free slots that
 * heap_live counts as allocated.  The goal carries that slack
 * (gc/pacer.c), so the program still makes about the minimum goal's worth
 * of garbage between collections; without it, heap_live sat over the
 * 4 MiB goal from the caches alone and the program collected at nearly
 * every refill. */
START_TEST(test_spans_cached_for_every_size_class_leave_the_minimum_goal_to_garbage) {
  gc_set_percent(GOGC_DEFAULT);
  enum { ROUNDS = 256, GARBAGE_OBJECTS = 1024, GARBAGE_SIZE = 256 }; /* 64 MiB of garbage in all */
  uint64_t before = stats_now().cycles;
  for (int r = 0; r < ROUNDS; r++) {
    for (size_t n = 32; n <= 32768; n += 16) { /* every small size class */
      gc_free(gc_alloc(n));
      gc_free(gc_alloc_atomic(n));
    }
    for (int i = 0; i < GARBAGE_OBJECTS; i++) GCTEST_REQUIRE(gc_alloc(GARBAGE_SIZE), "out of memory");
  }
  struct gc_stats s = stats_now();
  uint64_t cycles = s.cycles - before;
  uint64_t garbage = (uint64_t)ROUNDS * GARBAGE_OBJECTS * GARBAGE_SIZE;
  /* About 64 MiB / 4 MiB = 16 collections; fewer than 2 MiB a collection
   * is a goal that left the garbage no room. */
  ck_assert_msg(cycles * 2 * MIB <= garbage, "%llu collections for %llu MiB of garbage",
                (unsigned long long)cycles, (unsigned long long)(garbage / MIB));
  ck_assert_uint_gt(cycles, 0);
  /* The slack the last mark found: most of a span of each class of each
   * kind, and no more than all of them, which a miscount would exceed
   * (4.20 MiB of slots a kind, in the spans of the classes from 32 bytes
   * up, alloc/sizeclasses.h). */
  ck_assert_msg(s.heap_goal_cache_slack >= 2 * MIB && s.heap_goal_cache_slack <= 8 * MIB + MIB / 2,
                "cache slack %llu bytes at the last mark end", (unsigned long long)s.heap_goal_cache_slack);
  uint64_t base = 2 * s.heap_marked > HEAP_GOAL_MIN ? 2 * s.heap_marked : HEAP_GOAL_MIN;
  ck_assert_uint_eq(s.heap_goal, base + s.heap_goal_cache_slack);
}
END_TEST

START_TEST(test_heap_sys_covers_in_use_and_released) {
  uintptr_t hidden[NLARGE];
  make_large(hidden, false);
  struct gc_stats s = stats_now();
  ck_assert_uint_ge(s.heap_sys, s.heap_in_use);
  ck_assert_uint_ge(s.heap_in_use, (uint64_t)NLARGE * LARGE_SIZE);
  ck_assert_uint_le(s.heap_released, s.heap_sys - s.heap_in_use);
  ck_assert_uint_gt(s.metadata_sys, 0);
  memset(large_slots, 0, sizeof(large_slots));
}
END_TEST

START_TEST(test_free_pages_are_released_to_the_os_after_heap_shrinks) {
  uintptr_t hidden[NLARGE];
  make_large(hidden, false);
  memset(large_slots, 0, sizeof(large_slots));
  collect_clean();
  uint64_t want = (uint64_t)(NLARGE / 2) * LARGE_SIZE;
  struct gc_stats s = stats_now();
  for (int i = 0; i < RELEASE_WAIT_S * 10 && s.heap_released < want; i++) {
    struct timespec ts = {0, 100 * 1000 * 1000};
    nanosleep(&ts, NULL);
    s = stats_now();
  }
  ck_assert_msg(s.heap_released >= want, "heap_released is %llu after %d s",
                (unsigned long long)s.heap_released, RELEASE_WAIT_S);
  ck_assert_uint_le(s.heap_released, s.heap_sys);
}
END_TEST

START_TEST(test_release_memory_gives_free_pages_back_at_once) {
  uintptr_t hidden[NLARGE];
  make_large(hidden, true); /* the pattern touched every page */
  size_t rss_full = gctest_rss_bytes();
  ck_assert_msg(rss_full > 0, "RSS unknown (/proc/self/statm)");
  uint64_t released_before = stats_now().heap_released;
  memset(large_slots, 0, sizeof(large_slots));
  clobber_stack();
  uint64_t cycles_before = cycles_now();
  size_t released = gc_release_memory();
  ck_assert_msg(cycles_now() > cycles_before, "gc_release_memory did not collect");
  size_t dead = count_reclaimed(hidden, NLARGE);
  ck_assert_msg(dead >= NLARGE - 1, "only %zu of %d large objects reclaimed", dead, NLARGE);
  /* Released by the call or, had they been free long enough, partly by
   * the scavenger thread meanwhile. */
  struct gc_stats s = stats_now();
  ck_assert_msg(s.heap_released >= released_before + dead * LARGE_SIZE,
                "heap_released %llu -> %llu (%zu by the call), %zu objects of 2 MiB freed",
                (unsigned long long)released_before, (unsigned long long)s.heap_released, released, dead);
  size_t rss = gctest_rss_bytes();
  ck_assert_msg(rss + dead * LARGE_SIZE / 2 <= rss_full, "RSS %zu -> %zu after releasing %zu bytes", rss_full, rss,
                released);
}
END_TEST

#define CACHED_CLASSES 8

/* One object in each of the CACHED_CLASSES largest size classes (dropped
 * at once: only this thread's cached spans hold them). */
static GCTEST_NOINLINE uint64_t allocate_in_largest_classes(void) {
  struct gc_stats s = stats_now();
  ck_assert_uint_ge(s.size_classes, CACHED_CLASSES);
  uint64_t least = 0;
  for (uint64_t i = s.size_classes - CACHED_CLASSES; i < s.size_classes; i++) {
    uint64_t size = s.by_size[i].size;
    GCTEST_REQUIRE(gc_alloc_atomic(size), "out of memory");
    if (i < s.size_classes - 2) least += size; /* a bound for all but two */
  }
  return least;
}

START_TEST(test_release_memory_gives_back_the_callers_cached_spans) {
  uint64_t least = allocate_in_largest_classes();
  clobber_stack();
  collect_clean();
  struct gc_stats before = stats_now(); /* the spans are still cached */
  size_t released = gc_release_memory();
  struct gc_stats after = stats_now();
  ck_assert_msg(after.heap_in_use + least <= before.heap_in_use, "heap_in_use %llu -> %llu: the cached spans stayed",
                (unsigned long long)before.heap_in_use, (unsigned long long)after.heap_in_use);
  /* Released by the call or, had they been free long enough, partly by
   * the scavenger thread meanwhile. */
  ck_assert_msg(after.heap_released >= before.heap_released + least,
                "heap_released %llu -> %llu (%zu by the call): less than %llu more",
                (unsigned long long)before.heap_released, (unsigned long long)after.heap_released, released,
                (unsigned long long)least);
}
END_TEST

static GCTEST_NOINLINE size_t allocate_counted(size_t small_count, size_t small_size,
                                               size_t large_count, size_t large_size) {
  for (size_t i = 0; i < small_count; i++) GCTEST_REQUIRE(gc_alloc(small_size), "out of memory");
  for (size_t i = 0; i < large_count; i++) GCTEST_REQUIRE(gc_alloc(large_size), "out of memory");
  return small_count * small_size + large_count * large_size;
}

START_TEST(test_total_alloc_bytes_grows_by_at_least_the_bytes_allocated) {
  gc_set_percent(-1);
  struct gc_stats s0 = stats_now();
  size_t bytes = allocate_counted(100 * MANY, SMALL_SIZE, 10, 100 * 1024);
  struct gc_stats s1 = stats_now();
  ck_assert_msg(s1.total_alloc_bytes - s0.total_alloc_bytes >= bytes,
                "total_alloc_bytes rose by %llu after %zu bytes were allocated",
                (unsigned long long)(s1.total_alloc_bytes - s0.total_alloc_bytes), bytes);
  ck_assert_uint_ge(s1.total_alloc_objects - s0.total_alloc_objects, 100 * MANY + 10);
}
END_TEST

START_TEST(test_total_alloc_counts_objects_in_spans_still_cached_by_the_thread) {
  /* 100 objects of 64 bytes fit in the span the thread has cached: the
   * count must not wait for the span to go back to mcentral. */
  gc_set_percent(-1);
  struct gc_stats s0 = stats_now();
  size_t bytes = allocate_counted(100, SMALL_SIZE, 0, 0);
  struct gc_stats s1 = stats_now();
  ck_assert_msg(s1.total_alloc_bytes - s0.total_alloc_bytes >= bytes,
                "total_alloc_bytes rose by %llu after %zu bytes were allocated",
                (unsigned long long)(s1.total_alloc_bytes - s0.total_alloc_bytes), bytes);
  ck_assert_uint_ge(s1.total_alloc_objects - s0.total_alloc_objects, 100);
}
END_TEST

START_TEST(test_total_free_objects_counts_collected_objects) {
  uintptr_t *hidden = malloc(MANY * sizeof(*hidden));
  collect_clean();
  uint64_t f0 = stats_now().total_free_objects;
  for (size_t i = 0; i < MANY; i++) hidden[i] = new_patterned(SMALL_SIZE, i, false);
  collect_clean();
  size_t dead = count_reclaimed(hidden, MANY);
  ck_assert_uint_ge(dead * 100, MANY * GCTEST_RECLAIM_PERCENT);
  ck_assert_uint_ge(stats_now().total_free_objects - f0, dead);
  free(hidden);
}
END_TEST

/* ---- trace -------------------------------------------------------------- */

#define TRACE_CHILD_ENV "MGC_TEST_TRACE_CHILD"
#define TRACE_FORCED 3

/* The child: a few forced cycles and some automatic ones, then the cycle
 * counts on stdout as "cycles C forced F". */
static int trace_child_main(void) {
  for (int i = 0; i < TRACE_FORCED; i++) gc_collect();
  make_garbage(32 * MIB);
  /* No cycle may finish (and print) after the counts are read: gc_disable
   * waits for one in progress and stops new ones. */
  gc_disable();
  struct gc_stats s;
  memset(&s, 0, sizeof(s));
  s.size = sizeof(s);
  if (gc_get_stats(&s) != 0) return 1;
  printf("cycles %llu forced %llu\n", (unsigned long long)s.cycles,
         (unsigned long long)s.forced_cycles);
  return 0;
}

/* Read all of fd into a malloc'd string. */
static char *read_all(int fd) {
  size_t cap = 4096, len = 0;
  char *buf = malloc(cap);
  for (;;) {
    if (len + 1 == cap) buf = realloc(buf, cap *= 2);
    ssize_t n = read(fd, buf + len, cap - len - 1);
    if (n <= 0) break;
    len += (size_t)n;
  }
  buf[len] = 0;
  return buf;
}

START_TEST(test_trace_prints_one_numbered_line_per_cycle) {
  int out[2], err[2];
  ck_assert_int_eq(pipe(out), 0);
  ck_assert_int_eq(pipe(err), 0);
  pid_t pid = fork();
  ck_assert_int_ge(pid, 0);
  if (pid == 0) {
    dup2(out[1], 1);
    dup2(err[1], 2);
    setenv("MGC_TRACE", "1", 1);
    setenv(TRACE_CHILD_ENV, "1", 1);
    unsetenv("CK_RUN_CASE");
    unsetenv("CK_RUN_SUITE");
    execl("/proc/self/exe", "test_collect", (char *)NULL);
    _exit(127);
  }
  close(out[1]);
  close(err[1]);
  char *stdout_text = read_all(out[0]);
  char *stderr_text = read_all(err[0]);
  int status;
  waitpid(pid, &status, 0);
  ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child failed: %s", stderr_text);
  unsigned long long cycles = 0, forced = 0;
  ck_assert_int_eq(sscanf(stdout_text, "cycles %llu forced %llu", &cycles, &forced), 2);
  ck_assert_uint_ge(forced, TRACE_FORCED);
  ck_assert_uint_gt(cycles, forced); /* 32 MB of garbage ran automatic cycles too */

  unsigned long long lines = 0, forced_lines = 0;
  for (char *line = strtok(stderr_text, "\n"); line; line = strtok(NULL, "\n")) {
    unsigned long long n;
    double at;
    if (sscanf(line, "gc %llu @%lfs", &n, &at) != 2) continue;
    lines++;
    ck_assert_msg(n == lines, "trace line %llu is numbered %llu: %s", lines, n, line);
    if (strstr(line, "(forced)")) forced_lines++;
  }
  ck_assert_uint_eq(lines, cycles);
  ck_assert_uint_eq(forced_lines, forced);
  free(stdout_text);
  free(stderr_text);
}
END_TEST

START_TEST(test_no_trace_lines_without_mgc_trace) {
  /* This process was started without MGC_TRACE (meson's environment);
   * nothing should be printed.  Checked through a child as well so the
   * stderr of the test runner is not involved. */
  int err[2];
  ck_assert_int_eq(pipe(err), 0);
  pid_t pid = fork();
  if (pid == 0) {
    dup2(err[1], 2);
    unsetenv("MGC_TRACE");
    setenv(TRACE_CHILD_ENV, "1", 1);
    int devnull = open("/dev/null", O_WRONLY);
    dup2(devnull, 1);
    execl("/proc/self/exe", "test_collect", (char *)NULL);
    _exit(127);
  }
  close(err[1]);
  char *text = read_all(err[0]);
  int status;
  waitpid(pid, &status, 0);
  ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  ck_assert_msg(strstr(text, "gc 1 @") == NULL, "trace printed without MGC_TRACE: %s", text);
  free(text);
}
END_TEST

static TCase *tcase_with_fixture(const char *name) {
  TCase *tc = (tcase_create)(name);
  tcase_add_checked_fixture(tc, setup_fresh_heap, NULL);
  return tc;
}

static Suite *collect_suite(void) {
  Suite *s = suite_create("collect");
  TCase *tc;
#define tcase_create(name) tcase_with_fixture(name)
  tc = tcase_create("large");
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, test_large_objects_survive_when_referenced_and_are_reclaimed_when_dropped);
  tcase_add_test(tc, test_large_noscan_objects_survive_when_referenced_and_are_reclaimed_when_dropped);
  tcase_add_test(tc, test_memory_of_reclaimed_large_object_is_reused);
  suite_add_tcase(s, tc);

  tc = tcase_create("noscan");
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, test_pointers_stored_in_small_noscan_object_do_not_keep_targets_alive);
  tcase_add_test(tc, test_pointers_stored_in_large_noscan_object_do_not_keep_targets_alive);
  tcase_add_test(tc, test_pointers_stored_in_tiny_noscan_objects_do_not_keep_targets_alive);
  suite_add_tcase(s, tc);

  tc = tcase_create("shape");
  tcase_set_timeout(tc, 240);
  tcase_add_test(tc, test_ten_million_node_list_survives_and_is_reclaimed_when_dropped);
  tcase_add_test(tc, test_million_pointer_array_keeps_all_its_targets);
  suite_add_tcase(s, tc);

  tc = tcase_create("pacing");
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, test_set_percent_returns_old_value_and_negative_disables_automatic_collection);
  tcase_add_test(tc, test_gc_collect_still_collects_when_percent_is_negative);
  tcase_add_test(tc, test_disable_and_enable_nest);
  suite_add_tcase(s, tc);

  tc = tcase_create("stats");
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, test_get_stats_rejects_null_and_too_small_size);
  tcase_add_test(tc, test_get_stats_with_older_smaller_struct_writes_only_its_size);
  tcase_add_test(tc, test_collection_advances_cycles_and_records_pause);
  tcase_add_test(tc, test_spans_cached_in_an_earlier_phase_do_not_keep_collections_coming);
  tcase_add_test(tc, test_spans_cached_for_every_size_class_leave_the_minimum_goal_to_garbage);
  tcase_add_test(tc, test_heap_sys_covers_in_use_and_released);
  tcase_add_test(tc, test_free_pages_are_released_to_the_os_after_heap_shrinks);
  tcase_add_test(tc, test_release_memory_gives_free_pages_back_at_once);
  tcase_add_test(tc, test_release_memory_gives_back_the_callers_cached_spans);
  tcase_add_test(tc, test_total_alloc_bytes_grows_by_at_least_the_bytes_allocated);
  tcase_add_test(tc, test_total_alloc_counts_objects_in_spans_still_cached_by_the_thread);
  tcase_add_test(tc, test_total_free_objects_counts_collected_objects);
  suite_add_tcase(s, tc);

  tc = tcase_create("trace");
  tcase_set_timeout(tc, 60);
  tcase_set_tags(tc, "reexec"); /* runs /proc/self/exe: not under Valgrind (tools/memcheck) */
  tcase_add_test(tc, test_trace_prints_one_numbered_line_per_cycle);
  tcase_add_test(tc, test_no_trace_lines_without_mgc_trace);
  suite_add_tcase(s, tc);
  return s;
}

/* No mgc call before the runner forks: each test starts its own heap. */
int main(void) {
  if (getenv(TRACE_CHILD_ENV)) return trace_child_main();
  return run_suite(collect_suite());
}
