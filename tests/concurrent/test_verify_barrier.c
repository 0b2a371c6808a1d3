/*
 * test_verify_barrier.c: MGC_VERIFY finds an object that the concurrent
 * mark missed because a pointer store skipped GC_WRITE, and finds nothing
 * when the same stores use it.  Internal suite: it holds the collector
 * between mark setup and draining with the collector_hold_after_setup hold point
 * (gc/collector.h) so the stores land in the middle of marking every time.
 *
 * The scenario, in snapshot-at-the-beginning terms:
 *   before marking   global_c -> C -> B   (B reachable only through C)
 *   mark setup       roots scanned: C is grey, B white (no root names B)
 *   held             D = new object (allocated black: never scanned this
 *                    cycle), global_d = D, D->f = B, C->f = NULL
 *   drain            C is scanned and holds NULL; D is black; B stays white
 * Without a barrier on the deletion C->f = NULL nothing ever greys B, so the
 * verify re-mark (world stopped) finds B through global_d -> D and reports
 * it: one "mgc: verify:" line and verify_misses >= 1.  The re-mark marks B,
 * so B survives the sweep with its contents.  With GC_WRITE the old value
 * of C->f (B) goes into the barrier buffer and the mark greys it: no miss.
 *
 * D must really be black: the word a thread allocates from at mark setup
 * is greyed whole, free slots included (gc/mark.c, grey_current_word), so
 * D is allocated after FILLERS objects of its class, in a later word.
 *
 * B must not be covered some other way: it is not on any stack or in a
 * register at mark setup (it is built by a thread that has exited by
 * then, and kept as a hidden integer afterwards), and it is not in the
 * current allocation word of a cached span (which mark setup greys and
 * verify treats as black): for small B, FILLERS objects of its size class
 * are allocated after it; the large variant has a span of its own.  Built
 * on the test thread in a noinline function, with the stack clobbered
 * after, B's address still stayed in a live frame of the test thread in
 * some builds (ThreadSanitizer, depending on the binary's layout): the
 * conservative stack scan at mark setup marked B, and verify found no
 * miss.
 */
#include <pthread.h>
#include <stdlib.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include "conctest.h"
#include "gctest.h"
#include "mgc.h"

#include "gc/collector.h"

#define SMALL_B_BYTES 48
#define LARGE_B_BYTES (40 * 1024)   /* over 32 KiB: a large object */
#define FILLERS 256                 /* 4 bitmap words of SMALL_B_BYTES objects */
#define B_SEED 0xB0B0u
#define HOLD_POLL_NS 100000
#define REUSE_PROBES 2048
#define LARGE_REUSE_PROBES 64

struct obj {
  struct obj *f;
  uint64_t tag;
};

/* The only roots of the scenario's objects. */
static struct obj *volatile global_c;
static struct obj *volatile global_d;
static uintptr_t hidden_b;
static size_t b_bytes;

static const struct conc_env verify_env[] = {
  {"MGC_CONCURRENT", "1", 1},
  {"MGC_VERIFY", "1", 1},
  {"MGC_GOGC", "off", 1},   /* no cycle but the one the test starts */
  {"MGC_TRACE", "0", 1},
};

/* count rounds of garbage fillers, each a scanned object of `scanned`
 * bytes and an atomic one of `atomic` bytes (0: none of that kind): they
 * move the cached allocation words on (see the top). */
static void allocate_fillers(int count, size_t scanned, size_t atomic) {
  for (int i = 0; i < count; i++) {
    void *volatile filler = NULL;
    if (scanned) filler = gc_alloc(scanned);
    if (atomic) filler = gc_alloc_atomic(atomic);
    (void)filler;
  }
}

static void sleep_ns(long ns) {
  struct timespec ts = {0, ns};
  nanosleep(&ts, NULL);
}

/* global_c -> C -> B, B filled with its pattern; B kept only hidden. */
static GCTEST_NOINLINE void build_c_and_b(size_t bytes) {
  struct obj *c = gc_alloc(sizeof(struct obj));
  unsigned char *b = gc_alloc_atomic(bytes);
  ck_assert_ptr_nonnull(c);
  ck_assert_ptr_nonnull(b);
  pattern_fill(b, bytes, B_SEED);
  c->tag = 0xC;
  GC_WRITE(&c->f, (struct obj *)b);
  global_c = c;
  hidden_b = hide(b);
  b_bytes = bytes;
  /* Move the allocation point past B's bitmap word (see the top). */
  allocate_fillers(FILLERS, 0, bytes < LARGE_B_BYTES ? bytes : SMALL_B_BYTES);
}

/* During marking: D = new (black), global_d = D, D->f = B, C->f = NULL.
 * `barrier` says whether the two heap stores use GC_WRITE. */
static GCTEST_NOINLINE void move_b_into_new_object(bool barrier) {
  /* Leave the word that was current at mark setup: mark setup greyed its
   * free slots too, so an object allocated there now would be scanned. */
  allocate_fillers(FILLERS, sizeof(struct obj), 0);
  struct obj *d = gc_alloc(sizeof(struct obj));
  ck_assert_ptr_nonnull(d);
  d->tag = 0xD;
  global_d = d;
  struct obj *c = global_c;
  struct obj *b = c->f;
  if (barrier) {
    GC_WRITE(&d->f, b);
    GC_WRITE(&c->f, NULL);
  } else {
    __asm__ __volatile__("" : : "r"(b) : "memory");
    *(struct obj *volatile *)&d->f = b;
    *(struct obj *volatile *)&c->f = NULL;
  }
}

static void *collect_thread(void *arg) {
  (void)arg;
  gc_collect();
  return NULL;
}

/* Run one held cycle doing the move in the middle; returns its misses. */
static GCTEST_NOINLINE uint64_t held_cycle_with_move(bool barrier) {
  uint64_t misses0 = stats_now().verify_misses;
  uint64_t cycles0 = cycles_now();
  clobber_stack();
  test_hold_set(&collector_hold_after_setup, true);
  pthread_t t;
  ck_assert_int_eq(gc_pthread_create(&t, NULL, collect_thread, NULL), 0);
  while (!test_hold_is_holding(&collector_hold_after_setup)) sleep_ns(HOLD_POLL_NS);
  move_b_into_new_object(barrier);
  clobber_stack();
  test_hold_set(&collector_hold_after_setup, false);
  gc_blocking_begin();
  pthread_join(t, NULL);
  gc_blocking_end();
  ck_assert_uint_eq(cycles_now(), cycles0 + 1);
  return stats_now().verify_misses - misses0;
}

/* B still allocated, still holding its pattern, still D's child, even
 * after its size class was reused heavily and another collection. */
static void check_b_intact(void) {
  unsigned char *b = unhide(hidden_b);
  ck_assert_ptr_eq(global_d->f, (struct obj *)b);
  ck_assert_ptr_null(global_c->f);
  for (int round = 0; round < 2; round++) {
    ck_assert_ptr_eq(gc_base(b), b);
    ck_assert_uint_ge(gc_size(b), b_bytes);
    int probes = b_bytes >= LARGE_B_BYTES ? LARGE_REUSE_PROBES : REUSE_PROBES;
    for (int i = 0; i < probes; i++) {
      unsigned char *p = gc_alloc_atomic(b_bytes);
      ck_assert_ptr_nonnull(p);
      memset(p, 0xEE, b_bytes);
    }
    ck_assert_uint_eq(pattern_check(b, b_bytes, B_SEED), b_bytes);
    gc_collect();
  }
}

static void *build_c_and_b_thread(void *bytes) {
  build_c_and_b(*(const size_t *)bytes);
  return NULL; /* the gc_pthread_create trampoline unregisters */
}

/* build_c_and_b on a thread of its own, gone when this returns. */
static void build_c_and_b_elsewhere(size_t bytes) {
  pthread_t t;
  ck_assert_int_eq(gc_pthread_create(&t, NULL, build_c_and_b_thread, &bytes), 0);
  gc_blocking_begin();
  pthread_join(t, NULL);
  gc_blocking_end();
}

static void run_missing_barrier_case(size_t bytes) {
  conc_init(verify_env, CONC_LEN(verify_env));
  build_c_and_b_elsewhere(bytes);
  struct capture_text cap;
  capture_text_begin(&cap);
  uint64_t misses = held_cycle_with_move(false);
  char *err = capture_text_end(&cap);
  ck_assert_msg(misses >= 1, "verify counted %llu misses for a store without GC_WRITE",
                (unsigned long long)misses);
  ck_assert_msg(strstr(err, "mgc: verify:") != NULL, "no \"mgc: verify:\" line on stderr");
  char b_text[32];
  snprintf(b_text, sizeof(b_text), "object %p", unhide(hidden_b));
  ck_assert_msg(strstr(err, b_text) != NULL, "verify did not name B (%s) in:\n%s", b_text, err);
  free(err);
  check_b_intact();
}

static void run_with_barrier_case(size_t bytes) {
  conc_init(verify_env, CONC_LEN(verify_env));
  build_c_and_b_elsewhere(bytes);
  struct capture_text cap;
  capture_text_begin(&cap);
  uint64_t misses = held_cycle_with_move(true);
  char *err = capture_text_end(&cap);
  ck_assert_msg(misses == 0, "verify counted %llu misses though every store used GC_WRITE",
                (unsigned long long)misses);
  ck_assert_msg(strstr(err, "mgc: verify:") == NULL, "unexpected verify report:\n%s", err);
  free(err);
  check_b_intact();
  ck_assert_uint_eq(stats_now().verify_misses, 0);
}

START_TEST(test_verify_catches_missing_barrier) { run_missing_barrier_case(SMALL_B_BYTES); }
END_TEST

START_TEST(test_verify_catches_missing_barrier_on_large_object) { run_missing_barrier_case(LARGE_B_BYTES); }
END_TEST

START_TEST(test_verify_quiet_when_deletion_uses_gc_write) { run_with_barrier_case(SMALL_B_BYTES); }
END_TEST

START_TEST(test_verify_quiet_when_deletion_uses_gc_write_large) { run_with_barrier_case(LARGE_B_BYTES); }
END_TEST

/* ---- allocate black ------------------------------------------------------
 * An object allocated while marking runs must survive the sweep that
 * follows, though the mark never sees it (alloc/mcache.c): here it is
 * allocated in the middle of a held cycle and kept only by a global, which
 * was scanned at mark setup (before it held the object) and is not scanned
 * again.  The next gc_collect sweeps what the held cycle left unswept
 * before it marks (sweep_finish), so an object the held cycle did not keep
 * is gone by then. */

static uintptr_t hidden_new;
static void *volatile global_new;

static const struct conc_env plain_env[] = {
  {"MGC_CONCURRENT", "1", 1},
  {"MGC_VERIFY", "0", 1},
  {"MGC_GOGC", "off", 1},
  {"MGC_TRACE", "0", 1},
};

static GCTEST_NOINLINE void alloc_new_object_now(size_t bytes) {
  allocate_fillers(FILLERS, 0, SMALL_B_BYTES); /* out of the word greyed at setup */
  unsigned char *p = gc_alloc_atomic(bytes);
  ck_assert_ptr_nonnull(p);
  pattern_fill(p, bytes, B_SEED + 1);
  global_new = p;
  hidden_new = hide(p);
  b_bytes = bytes;
}

static GCTEST_NOINLINE void held_cycle_allocating(size_t bytes) {
  clobber_stack();
  test_hold_set(&collector_hold_after_setup, true);
  pthread_t t;
  ck_assert_int_eq(gc_pthread_create(&t, NULL, collect_thread, NULL), 0);
  while (!test_hold_is_holding(&collector_hold_after_setup)) sleep_ns(HOLD_POLL_NS);
  alloc_new_object_now(bytes);
  clobber_stack();
  test_hold_set(&collector_hold_after_setup, false);
  gc_blocking_begin();
  pthread_join(t, NULL);
  gc_blocking_end();
}

static void check_new_object_survives(size_t bytes, const struct conc_env *env, size_t nenv) {
  conc_init(env, nenv);
  held_cycle_allocating(bytes);
  gc_collect(); /* sweeps the held cycle's garbage first */
  unsigned char *p = unhide(hidden_new);
  ck_assert_ptr_eq(global_new, p);
  ck_assert_msg(gc_base(p) == p, "object of %zu bytes allocated during marking was freed "
                "though a global holds it", bytes);
  for (int i = 0; i < 8; i++) {
    unsigned char *q = gc_alloc_atomic(bytes); /* would reuse its memory */
    ck_assert_ptr_nonnull(q);
    memset(q, 0xEE, bytes);
  }
  ck_assert_uint_eq(pattern_check(p, bytes, B_SEED + 1), bytes);
}

START_TEST(test_small_object_allocated_during_mark_survives) {
  check_new_object_survives(SMALL_B_BYTES, plain_env, CONC_LEN(plain_env));
}
END_TEST

/* Guards the black allocation of large objects: a new large span gets the
 * current sweepgen, so without a mark bit set at allocation (runtime/api.c
 * alloc_large) a large object allocated during concurrent marking would be
 * white and the sweep after mark termination would free it. */
START_TEST(test_large_object_allocated_during_mark_survives) {
  check_new_object_survives(LARGE_B_BYTES, plain_env, CONC_LEN(plain_env));
}
END_TEST

/* The same object under MGC_VERIFY: not a miss (it was never white in the
 * snapshot's sense), so no report blaming a missing GC_WRITE. */
START_TEST(test_large_object_allocated_during_mark_is_not_a_verify_miss) {
  conc_init(verify_env, CONC_LEN(verify_env));
  struct capture_text cap;
  capture_text_begin(&cap);
  held_cycle_allocating(LARGE_B_BYTES);
  char *err = capture_text_end(&cap);
  uint64_t misses = stats_now().verify_misses;
  ck_assert_msg(misses == 0, "verify counted %llu misses for a large object allocated during "
                "marking:\n%s", (unsigned long long)misses, err);
  free(err);
}
END_TEST

/* ---- the tiny allocator ----------------------------------------------------
 * Atomic objects of at most TINY_BYTES share 16-byte blocks: the thread's
 * cache keeps the block it is carving (mcache.tiny) across cycles.  If the
 * objects carved from it before were dropped, the block is white when a
 * mark starts, and objects carved from it afterwards must survive anyway.
 * tiny_block_ready leaves a cached block with room (its first object
 * dead) and moves the tiny span's allocation word past it: 16-byte
 * atomic objects are whole blocks, handed out without replacing the
 * cached one, which has more room. */
#define TINY_BYTES 16
#define TINY_FIRST 8
#define TINY_SECOND 8

static GCTEST_NOINLINE void tiny_block_ready(void) {
  /* After a 12-byte object the cached block has at most 4 bytes left, so
   * the next TINY_FIRST-byte object takes a fresh block, which becomes the
   * cached one (it has more room): the block is new, its one object dead. */
  void *volatile first = gc_alloc_atomic(TINY_BYTES - 4);
  first = gc_alloc_atomic(TINY_FIRST);
  ck_assert_ptr_nonnull(first);
  first = NULL;
  for (int i = 0; i < FILLERS; i++) {
    void *volatile whole = gc_alloc_atomic(TINY_BYTES);
    (void)whole;
  }
}

static GCTEST_NOINLINE void carve_tiny_now(void) {
  unsigned char *p = gc_alloc_atomic(TINY_SECOND);
  ck_assert_ptr_nonnull(p);
  pattern_fill(p, TINY_SECOND, B_SEED + 2);
  global_new = p;
  hidden_new = hide(p);
}

static GCTEST_NOINLINE void held_cycle_carving_tiny(void) {
  clobber_stack();
  test_hold_set(&collector_hold_after_setup, true);
  pthread_t t;
  ck_assert_int_eq(gc_pthread_create(&t, NULL, collect_thread, NULL), 0);
  while (!test_hold_is_holding(&collector_hold_after_setup)) sleep_ns(HOLD_POLL_NS);
  carve_tiny_now();
  clobber_stack();
  test_hold_set(&collector_hold_after_setup, false);
  gc_blocking_begin();
  pthread_join(t, NULL);
  gc_blocking_end();
}

static GCTEST_NOINLINE void churn_tiny_span(void) {
  for (int i = 0; i < REUSE_PROBES; i++) {
    unsigned char *q = gc_alloc_atomic(TINY_BYTES);
    ck_assert_ptr_nonnull(q);
    memset(q, 0xEE, TINY_BYTES);
  }
}

/* The tiny object is live and no later 16-byte object overlaps it. */
static void check_tiny_survives(void) {
  unsigned char *p = unhide(hidden_new);
  ck_assert_ptr_eq(global_new, p);
  ck_assert_msg(gc_base(p) != NULL, "tiny object %p carved from a white block was freed", (void *)p);
  for (int i = 0; i < REUSE_PROBES; i++) {
    unsigned char *q = gc_alloc_atomic(TINY_BYTES);
    ck_assert_ptr_nonnull(q);
    ck_assert_msg(p < q || p >= q + TINY_BYTES, "new object %p overlaps live tiny object %p",
                  (void *)q, (void *)p);
    memset(q, 0xEE, TINY_BYTES);
  }
  ck_assert_uint_eq(pattern_check(p, TINY_SECOND, B_SEED + 2), TINY_SECOND);
}

/* Guards the marking of each thread's cached tiny block at mark start
 * (gc/mark.c mark_snapshot_cached_words_stw): objects carved from it later
 * would otherwise live in a white block. */
START_TEST(test_tiny_object_carved_during_mark_survives) {
  conc_init(plain_env, CONC_LEN(plain_env));
  collect_clean();
  tiny_block_ready();
  held_cycle_carving_tiny();
  churn_tiny_span(); /* the owner sweeps the span as it moves through it */
  gc_collect();
  check_tiny_survives();
}
END_TEST

/* Stopped-world marking: the cached block, white at the mark, is swept
 * while the cache still carves from it. */
START_TEST(test_tiny_object_carved_after_collection_is_not_shared) {
  static const struct conc_env stw_env[] = {
    {"MGC_CONCURRENT", "0", 1}, {"MGC_VERIFY", "0", 1}, {"MGC_GOGC", "off", 1}};
  conc_init(stw_env, CONC_LEN(stw_env));
  tiny_block_ready();
  collect_clean();
  carve_tiny_now();
  clobber_stack();
  gc_collect();
  check_tiny_survives();
}
END_TEST

/* ---- a thread that exits during marking ----------------------------------
 * The same move as above, done by a thread that then exits before the mark
 * terminates: D comes from its fresh cache (black), the deletion C->f =
 * NULL goes through GC_WRITE, so B sits only in that thread's barrier
 * buffer.  Unregistering must hand the buffer to the collector. */

static void *move_and_exit_thread(void *arg) {
  (void)arg;
  move_b_into_new_object(true);
  clobber_stack();
  return NULL; /* the gc_pthread_create trampoline unregisters */
}

static GCTEST_NOINLINE void held_cycle_with_exiting_mover(void) {
  clobber_stack();
  test_hold_set(&collector_hold_after_setup, true);
  pthread_t t, mover;
  ck_assert_int_eq(gc_pthread_create(&t, NULL, collect_thread, NULL), 0);
  while (!test_hold_is_holding(&collector_hold_after_setup)) sleep_ns(HOLD_POLL_NS);
  ck_assert_int_eq(gc_pthread_create(&mover, NULL, move_and_exit_thread, NULL), 0);
  gc_blocking_begin();
  pthread_join(mover, NULL);
  gc_blocking_end();
  test_hold_set(&collector_hold_after_setup, false);
  gc_blocking_begin();
  pthread_join(t, NULL);
  gc_blocking_end();
}

/* Guards runtime/thread.c thread_unregister_current, which must flush the
 * thread's write-barrier buffer before the thread leaves the registry. */
START_TEST(test_barrier_buffer_of_exiting_thread_is_not_lost) {
  conc_init(verify_env, CONC_LEN(verify_env));
  build_c_and_b_elsewhere(SMALL_B_BYTES);
  struct capture_text cap;
  capture_text_begin(&cap);
  held_cycle_with_exiting_mover();
  char *err = capture_text_end(&cap);
  uint64_t misses = stats_now().verify_misses;
  ck_assert_msg(misses == 0, "verify counted %llu misses: the exiting thread's GC_WRITE record "
                "was lost:\n%s", (unsigned long long)misses, err);
  free(err);
}
END_TEST

START_TEST(test_object_deleted_by_exiting_thread_survives) {
  conc_init(plain_env, CONC_LEN(plain_env));
  build_c_and_b_elsewhere(SMALL_B_BYTES);
  held_cycle_with_exiting_mover();
  gc_collect(); /* sweeps the held cycle's garbage first */
  unsigned char *b = unhide(hidden_b);
  ck_assert_ptr_eq(global_d->f, (struct obj *)b);
  ck_assert_msg(gc_base(b) == b, "object moved by a thread that exited during marking was freed");
}
END_TEST

/* ---- gc_realloc and gc_free while marking ----------------------------------
 * global_c -> C -> V -> X, with X reachable only through V.  While the
 * collector is held after mark setup (C grey, V and X white), gc_realloc
 * moves V: its copy W is allocated black and never scanned this cycle, V
 * is freed, and C->f = W records V in the barrier buffer, too late: a freed
 * object is no longer marked.  Unless gc_free greys what V held (its
 * deletion barrier), X is freed while W points to it.  REALLOC_SIZE is far
 * from V's class, so W is a new object.
 *
 * W must really be black before the collector resumes.  Allocation black
 * is settled when the thread leaves a word (alloc/mcache.c): until then W
 * has no mark bit, and the marker counts every slot of a cached span's
 * current word as allocated, so when the drain scans C it finds W white,
 * greys and scans it, and marks X through it, barrier or not.  With 8
 * objects of REALLOC_SIZE after W (16 to a span, one word) the test passed
 * with gc_free's deletion barrier taken out: W's word was still current.
 * FILLERS objects of its class (a word has at most 64 slots) leave it.
 *
 * V and X must not be covered some other way: they are built by a thread
 * that has exited by mark setup (no stack or register of the test thread
 * can name them; see the top for B), so their spans are no thread's and
 * the marker goes by their allocation bits alone. */
#define REALLOC_SIZE 4096
#define V_BYTES 64

static GCTEST_NOINLINE void build_v_and_x(void) {
  struct obj *v = gc_alloc(V_BYTES);
  unsigned char *x = gc_alloc_atomic(SMALL_B_BYTES);
  ck_assert_ptr_nonnull(v);
  ck_assert_ptr_nonnull(x);
  struct obj *c = gc_alloc(sizeof(struct obj));
  ck_assert_ptr_nonnull(c);
  pattern_fill(x, SMALL_B_BYTES, B_SEED + 3);
  GC_WRITE(&v->f, (struct obj *)x);
  GC_WRITE(&c->f, v);
  global_c = c;
  hidden_b = hide(x);
}

static void *build_v_and_x_thread(void *arg) {
  (void)arg;
  build_v_and_x();
  return NULL; /* the gc_pthread_create trampoline unregisters */
}

/* build_v_and_x on a thread of its own, gone when this returns. */
static void build_v_and_x_elsewhere(void) {
  pthread_t t;
  ck_assert_int_eq(gc_pthread_create(&t, NULL, build_v_and_x_thread, NULL), 0);
  gc_blocking_begin();
  pthread_join(t, NULL);
  gc_blocking_end();
}

static GCTEST_NOINLINE void move_v_now(void) {
  struct obj *w = gc_realloc(global_c->f, REALLOC_SIZE);
  ck_assert_ptr_nonnull(w);
  GC_WRITE(&global_c->f, w);
  allocate_fillers(FILLERS, REALLOC_SIZE, 0); /* leave W's word: W black (see above) */
}

/* One cycle held after mark setup while `during` runs. */
static GCTEST_NOINLINE void held_cycle_running(void (*during)(void)) {
  uint64_t cycles0 = cycles_now();
  clobber_stack();
  test_hold_set(&collector_hold_after_setup, true);
  pthread_t t;
  ck_assert_int_eq(gc_pthread_create(&t, NULL, collect_thread, NULL), 0);
  while (!test_hold_is_holding(&collector_hold_after_setup)) sleep_ns(HOLD_POLL_NS);
  during();
  clobber_stack();
  test_hold_set(&collector_hold_after_setup, false);
  gc_blocking_begin();
  pthread_join(t, NULL);
  gc_blocking_end();
  ck_assert_uint_eq(cycles_now(), cycles0 + 1);
}

static void check_realloc_during_mark(const struct conc_env *env, size_t nenv) {
  conc_init(env, nenv);
  build_v_and_x_elsewhere();
  struct capture_text cap;
  capture_text_begin(&cap);
  held_cycle_running(move_v_now);
  char *err = capture_text_end(&cap);
  gc_collect(); /* sweeps the held cycle's garbage first */
  unsigned char *x = unhide(hidden_b);
  ck_assert_ptr_eq(global_c->f->f, (struct obj *)x);
  ck_assert_msg(gc_base(x) == x, "object held by a block that gc_realloc moved during marking was freed");
  for (int i = 0; i < REUSE_PROBES; i++) memset(gc_alloc_atomic(SMALL_B_BYTES), 0xEE, SMALL_B_BYTES);
  ck_assert_uint_eq(pattern_check(x, SMALL_B_BYTES, B_SEED + 3), SMALL_B_BYTES);
  uint64_t misses = stats_now().verify_misses;
  ck_assert_msg(misses == 0, "verify counted %llu misses for gc_realloc during marking:\n%s",
                (unsigned long long)misses, err);
  free(err);
}

START_TEST(test_realloc_during_mark_keeps_what_the_old_block_held) {
  check_realloc_during_mark(plain_env, CONC_LEN(plain_env));
}
END_TEST

START_TEST(test_realloc_during_mark_is_not_a_verify_miss) {
  check_realloc_during_mark(verify_env, CONC_LEN(verify_env));
}
END_TEST

/* gc_realloc shrinking in place while marking: global_c -> C (64 bytes)
 * holds X in its fifth word, and C is shrunk to 33 bytes, which keeps one
 * byte of that word and clears the rest.  Before that the program took X
 * from C into a new (black) object D.  The cut deletes the pointer, so it
 * must be recorded as GC_WRITE records an overwritten one: otherwise C is
 * scanned without X, D is never scanned, and X is freed while D holds it. */
#define SHRINK_C_BYTES 64
#define SHRINK_X_WORD 4
#define SHRINK_TO (SHRINK_X_WORD * sizeof(void *) + 1)

static GCTEST_NOINLINE void build_c_holding_x_in_its_fifth_word(void) {
  void **c = gc_alloc(SHRINK_C_BYTES);
  unsigned char *x = gc_alloc_atomic(SMALL_B_BYTES);
  ck_assert_ptr_nonnull(c);
  ck_assert_ptr_nonnull(x);
  pattern_fill(x, SMALL_B_BYTES, B_SEED + 5);
  GC_WRITE(&c[SHRINK_X_WORD], x);
  global_c = (struct obj *)c;
  hidden_b = hide(x);
  allocate_fillers(FILLERS, SHRINK_C_BYTES, SMALL_B_BYTES);
}

static GCTEST_NOINLINE void take_x_then_shrink_c(void) {
  allocate_fillers(FILLERS, sizeof(struct obj), 0); /* leave the words current at mark setup */
  void **c = (void **)global_c;
  struct obj *d = gc_alloc(sizeof(struct obj));
  ck_assert_ptr_nonnull(d);
  global_d = d;
  GC_WRITE(&d->f, (struct obj *)c[SHRINK_X_WORD]);
  ck_assert_ptr_eq(gc_realloc(c, SHRINK_TO), c); /* in place */
}

START_TEST(test_realloc_shrinking_during_mark_records_the_pointer_it_cuts) {
  conc_init(verify_env, CONC_LEN(verify_env));
  build_c_holding_x_in_its_fifth_word();
  struct capture_text cap;
  capture_text_begin(&cap);
  held_cycle_running(take_x_then_shrink_c);
  char *err = capture_text_end(&cap);
  uint64_t misses = stats_now().verify_misses;
  gc_collect(); /* sweeps the held cycle's garbage first */
  unsigned char *x = unhide(hidden_b);
  ck_assert_ptr_eq(global_d->f, (struct obj *)x);
  ck_assert_msg(misses == 0, "verify counted %llu misses for a shrink cutting a pointer:\n%s",
                (unsigned long long)misses, err);
  ck_assert_msg(gc_base(x) == x, "the object whose pointer a shrink cut was freed while still held");
  ck_assert_uint_eq(pattern_check(x, SMALL_B_BYTES, B_SEED + 5), SMALL_B_BYTES);
  free(err);
}
END_TEST

/* ---- spans emptied by gc_free while marking -------------------------------
 * Typed objects named by roots are grey after mark setup: their entries
 * (address, size, "typed") wait in the collector's work buffer.  While it
 * is held, the program frees every one of them, emptying their spans, and
 * allocates pointer-free junk of other sizes, every word a small integer.
 * Had the emptied spans gone back to the heap, the junk would take their
 * pages and the marker would read a junk word as the type header of a
 * grey entry (a crash, or "header overwritten").  They must stay with
 * their class until the sweep. */
#define FREED_TYPED_OBJECTS 2048        /* 48-byte slots: several spans */
#define FREED_TYPED_BYTES 40
#define FREED_LARGE_BYTES (64 * 1024)
#define JUNK_WORD ((uintptr_t)0xb6)     /* an address in page 0 */
#define JUNK_SMALL_BYTES 1024
#define JUNK_SMALL_COUNT 512
#define JUNK_LARGE_COUNT 16

static void *freed_typed[FREED_TYPED_OBJECTS];  /* roots: the data segment */
static void *freed_large;
static const gc_type *freed_type;

static GCTEST_NOINLINE void build_typed_roots(void) {
  static const size_t offsets[] = {0, 16};
  freed_type = gc_type_new(FREED_TYPED_BYTES, offsets, 2);
  ck_assert_ptr_nonnull(freed_type);
  for (int i = 0; i < FREED_TYPED_OBJECTS; i++) {
    freed_typed[i] = gc_alloc_typed(FREED_TYPED_BYTES, freed_type);
    ck_assert_ptr_nonnull(freed_typed[i]);
    if (i) GC_WRITE((void **)freed_typed[i], freed_typed[i - 1]);
  }
  freed_large = gc_alloc_typed(FREED_LARGE_BYTES, freed_type);
  ck_assert_ptr_nonnull(freed_large);
}

static void fill_junk(void *p, size_t bytes) {
  for (size_t i = 0; i < bytes / sizeof(uintptr_t); i++) ((uintptr_t *)p)[i] = JUNK_WORD;
}

static GCTEST_NOINLINE void free_typed_roots_and_allocate_junk(void) {
  for (int i = 0; i < FREED_TYPED_OBJECTS; i++) {
    gc_free(freed_typed[i]);
    freed_typed[i] = NULL;
  }
  void *large = freed_large;
  freed_large = NULL;
  gc_free(large);
  ck_assert_ptr_null(gc_base(large)); /* freed, whenever its pages go back */
  for (int i = 0; i < JUNK_SMALL_COUNT; i++) fill_junk(gc_alloc_atomic(JUNK_SMALL_BYTES), JUNK_SMALL_BYTES);
  for (int i = 0; i < JUNK_LARGE_COUNT; i++) fill_junk(gc_alloc_atomic(FREED_LARGE_BYTES), FREED_LARGE_BYTES);
}

START_TEST(test_spans_emptied_during_mark_are_not_reused_by_other_classes) {
  conc_init(plain_env, CONC_LEN(plain_env));
  build_typed_roots();
  uint64_t before = stats_now().heap_in_use;
  held_cycle_running(free_typed_roots_and_allocate_junk);
  /* The sweeps give the spans back after all (the junk is garbage too). */
  gc_collect();
  gc_collect();
  uint64_t after = stats_now().heap_in_use;
  ck_assert_uint_le(after + FREED_LARGE_BYTES, before);
}
END_TEST

static Suite *verify_barrier_suite(void) {
  Suite *s = suite_create("verify_barrier");
  TCase *tc = tcase_create("missing_barrier");
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, test_verify_catches_missing_barrier);
  tcase_add_test(tc, test_verify_catches_missing_barrier_on_large_object);
  tcase_add_test(tc, test_verify_quiet_when_deletion_uses_gc_write);
  tcase_add_test(tc, test_verify_quiet_when_deletion_uses_gc_write_large);
  suite_add_tcase(s, tc);
  TCase *black = tcase_create("allocate_black");
  tcase_set_timeout(black, 60);
  tcase_add_test(black, test_small_object_allocated_during_mark_survives);
  tcase_add_test(black, test_large_object_allocated_during_mark_survives);
  tcase_add_test(black, test_large_object_allocated_during_mark_is_not_a_verify_miss);
  tcase_add_test(black, test_tiny_object_carved_during_mark_survives);
  tcase_add_test(black, test_tiny_object_carved_after_collection_is_not_shared);
  suite_add_tcase(s, black);
  TCase *exiting = tcase_create("thread_exit");
  tcase_set_timeout(exiting, 60);
  tcase_add_test(exiting, test_barrier_buffer_of_exiting_thread_is_not_lost);
  tcase_add_test(exiting, test_object_deleted_by_exiting_thread_survives);
  suite_add_tcase(s, exiting);
  TCase *moving = tcase_create("free_barrier");
  tcase_set_timeout(moving, 60);
  tcase_add_test(moving, test_realloc_during_mark_keeps_what_the_old_block_held);
  tcase_add_test(moving, test_realloc_during_mark_is_not_a_verify_miss);
  tcase_add_test(moving, test_realloc_shrinking_during_mark_records_the_pointer_it_cuts);
  tcase_add_test(moving, test_spans_emptied_during_mark_are_not_reused_by_other_classes);
  suite_add_tcase(s, moving);
  return s;
}

int main(void) { return run_suite_in_children(verify_barrier_suite()); }
