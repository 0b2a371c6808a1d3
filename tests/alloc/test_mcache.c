/*
 * test_mcache.c: unit tests for alloc/mcache.{h,c}, the per-thread cache,
 * and its hand-offs to alloc/mcentral.c.
 *
 * Concerns, one TCase each:
 *   fastpath     slots of a cached span come out distinct and in address
 *                order; a used-up span is filed full and the next comes in;
 *   kinds        gc_alloc and gc_alloc_atomic pick span classes of their
 *                kind, and gc_realloc keeps the kind;
 *   local_free   gc_free by the owner makes the slot reusable (zeroed),
 *                also behind the allocation cursor;
 *   remote_free  gc_free from another thread: of a cached span it is
 *                folded in when the owner gives the span back, of an
 *                uncached one it takes effect at once; either way the span
 *                and its mcentral stay valid and the slot comes back zeroed;
 *                an emptied span stays with its class up to a quota, until
 *                the next sweep;
 *   held_frees   gc_free into a span the thread does not cache is held
 *                back and applied at the next refill or free into another
 *                span, and dropped if a collection came between; a
 *                refill passes over the span the thread is freeing into
 *                (of 64 objects or more) while objects remain in it;
 *   free_memo    a run of held frees into one span goes through the
 *                thread's memo of that span once its frees have come in
 *                runs, and not while they alternate or the memo refuses
 *                them; the frees it takes are held and applied like
 *                others, bad ones are left to the usual path (reported),
 *                and the memo is forgotten when its entry is applied and
 *                when a mark starts;
 *   free_key     an owner's free keys its span, a held free an uncached
 *                one; the frees after it go by the key (debug builds
 *                count them), still refusing bad ones; a mark start, a
 *                finalizer added, another thread caching the span, giving
 *                it back and applying the held frees each take the key
 *                away, and the next free goes the usual way;
 *   tiny         gc_alloc_atomic of fewer than TINY_SIZE bytes packs
 *                objects into 16-byte blocks, each aligned to its size (up
 *                to 8); one of TINY_SIZE bytes takes a block alone.
 *
 * A fresh span (never allocated from, first object at its base) is found
 * by allocating until one comes in (fresh_span_first), so the tests do not
 * depend on what earlier ones left in mcentral when run with CK_FORK=no.
 * Automatic collection is off (gc_disable) so a cycle cannot sweep under a
 * test; every object a test holds is kept in a static array anyway.
 */
#include <check.h>
#include <pthread.h>
#include <sched.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "mgc.h"

#include "alloc/arena.h"
#include "alloc/heaplive.h"
#include "alloc/mcache.h"
#include "alloc/mcentral.h"
#include "alloc/mheap.h"
#include "alloc/mspan.h"
#include "alloc/sizeclasses.h"
#include "gc/collector.h"
#include "gc/stats.h"
#include "gc/sweep.h"
#include "runtime/thread.h"
#include "capture.h"

#define MAX_PARKED 200000
#define MAX_OBJS 4096
#define TINY_RANDOM_COUNT 20000
#define FILL 0xAA

static void *parked[MAX_PARKED]; /* objects left behind while looking for a fresh span */
static size_t nparked;
static void *objs[MAX_OBJS];     /* the objects a test works with */

/* ---- helpers ---- */

static struct mcache *my_mcache(void) {
  struct mcache *c = thread_mcache();
  ck_assert_msg(c != NULL, "the test thread is not registered");
  return c;
}

static void *alloc_kind(size_t n, bool noscan) { return noscan ? gc_alloc_atomic(n) : gc_alloc(n); }

/* CLOCK_MONOTONIC in nanoseconds, for the tests that run for a set time. */
static uint64_t now_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (uint64_t)t.tv_sec * 1000000000ull + (uint64_t)t.tv_nsec;
}

static unsigned spanclass_for(size_t n, bool noscan) { return spanclass_make(sizeclass_of(n), noscan); }

static struct mspan *span_at(const void *p) {
  struct mspan *s = span_of_heap((uintptr_t)p);
  ck_assert_msg(s != NULL, "%p is not in an in-use span", p);
  return s;
}

/* The first object of a span that came into the mcache with no slot
 * allocated; objects allocated on the way are parked. */
static void *fresh_span_first(size_t n, bool noscan) {
  for (;;) {
    void *p = alloc_kind(n, noscan);
    ck_assert(p != NULL);
    struct mspan *s = span_at(p);
    if ((uintptr_t)p == s->base && s->count_at_cache == 0) return p;
    ck_assert_msg(nparked < MAX_PARKED, "no fresh span of %zu-byte objects", n);
    parked[nparked++] = p;
  }
}

/* objs[at .. at + count): the first count objects of a fresh span of
 * n-byte objects, allocated in order (they may run on into the next span
 * if count exceeds it).  Returns the span of objs[at]. */
static struct mspan *fresh_span_with(size_t at, size_t n, bool noscan, unsigned count) {
  objs[at] = fresh_span_first(n, noscan);
  for (unsigned i = 1; i < count; i++) objs[at + i] = alloc_kind(n, noscan);
  return span_at(objs[at]);
}

static bool is_all(const void *p, size_t n, unsigned char v) {
  const unsigned char *b = p;
  for (size_t i = 0; i < n; i++)
    if (b[i] != v) return false;
  return true;
}

static void *free_main(void *p) {
  gc_thread_register();
  gc_free(p);
  gc_thread_unregister();
  return NULL;
}

/* gc_free(p) from a registered thread that does not cache p's span. */
static void free_from_other_thread(void *p) {
  pthread_t t;
  ck_assert_int_eq(pthread_create(&t, NULL, free_main, p), 0);
  ck_assert_int_eq(pthread_join(t, NULL), 0);
}

static bool span_holds_slot(const struct mspan *s, uintptr_t idx) { return bitmap_get(s->allocbits, idx); }

/* Linked with -Wl,--wrap=mcentral_free_held: counts the applications of
 * held frees that found the caller's entry for them not yet emptied. */
static atomic_word applied_from_full_entry;
void __real_mcentral_free_held(struct mspan *s, unsigned spc, uintptr_t sweepgen, uintptr_t incarnation,
                               uint64_t *bits);
void __wrap_mcentral_free_held(struct mspan *s, unsigned spc, uintptr_t sweepgen, uintptr_t incarnation,
                               uint64_t *bits) {
  struct mcache *c = thread_mcache();
  const struct held_frees *h = c ? &c->held[spanclass_sizeclass(spc)] : NULL;
  if (h && (h->span || h->count || bits == &c->held_bits[h->bits_at])) atomic_fetch_add(&applied_from_full_entry, 1);
  __real_mcentral_free_held(s, spc, sweepgen, incarnation, bits);
}

/* Linked with -Wl,--wrap=mheap_alloc_span: while heap_cannot_grow is set,
 * the page heap has no span to give. */
static bool heap_cannot_grow;
static atomic_word heap_span_requests; /* calls, counted (atomic: threads of the ring tests refill too) */
struct mspan *__real_mheap_alloc_span(uintptr_t npages, unsigned spc);
struct mspan *__wrap_mheap_alloc_span(uintptr_t npages, unsigned spc) {
  atomic_fetch_add(&heap_span_requests, 1);
  return heap_cannot_grow ? NULL : __real_mheap_alloc_span(npages, spc);
}

/* Linked with -Wl,--wrap=mcentral_cache_span: while watch_spanclass is
 * set, counts the spans of that class a refill takes and how many of them
 * came with objects already in them. */
static unsigned watch_spanclass, cached_spans, cached_spans_not_empty;
struct mspan *__real_mcentral_cache_span(struct mcache *c, unsigned spc, const struct mspan *freeing_into);
struct mspan *__wrap_mcentral_cache_span(struct mcache *c, unsigned spc, const struct mspan *freeing_into) {
  struct mspan *s = __real_mcentral_cache_span(c, spc, freeing_into);
  if (s && watch_spanclass && spc == watch_spanclass) {
    cached_spans++;
    if (s->count_at_cache != 0) cached_spans_not_empty++;
  }
  return s;
}

static uintptr_t slot_of(const struct mspan *s, const void *p) { return span_object_index(s, (uintptr_t)p); }

static void check_span_and_mcentral(const struct mspan *s) {
  ck_assert(mspan_is_valid(s));
  ck_assert(mcentral_is_valid(&mcentrals[s->spanclass]));
  ck_assert(mheap_is_valid());
}

/* Overwrite the stack below the caller so stale copies of pointers the
 * test dropped do not keep objects alive. */
static __attribute__((noinline)) void scrub_stack(void) {
  volatile char buf[32768];
  memset((char *)buf, 0, sizeof(buf));
}


/* The proportional-sweep hook, while a test has turned it off. */
static void (*saved_sweep_assist)(void);

static void setup(void) {
  gc_init();
  gc_disable();
}

static void teardown(void) {
  if (saved_sweep_assist) heap_sweep_assist_hook = saved_sweep_assist; /* a failed test may have left it off */
  saved_sweep_assist = NULL;
  heap_cannot_grow = false;
  watch_spanclass = 0;
  test_hold_set(&sweep_hold_before_span, false); /* a failed test may have left them on (CK_FORK=no) */
  test_hold_set(&sweep_hold_in_recycled_claim, false);
  test_hold_set(&sweep_hold_after_claim, false);
  test_hold_set(&collector_hold_after_setup, false);
  memset(objs, 0, sizeof(objs));
  gc_enable();
}

/* ---- fastpath ---- */

START_TEST(test_fast_path_hands_out_distinct_slots_in_address_order) {
  const size_t n = 48; /* several bitmap words */
  objs[0] = fresh_span_first(n, false);
  struct mspan *s = span_at(objs[0]);
  ck_assert_uint_eq(s->cached_by, (uintptr_t)my_mcache());
  ck_assert_uint_gt(s->nelems, 64);
  for (unsigned i = 1; i < s->nelems; i++) {
    objs[i] = gc_alloc(n);
    ck_assert_msg((uintptr_t)objs[i] == s->base + i * s->elemsize, "slot %u: %p, expected %p", i,
                  objs[i], (void *)(s->base + i * s->elemsize));
  }
}
END_TEST

START_TEST(test_refill_moves_to_next_span_and_files_used_up_span_full) {
  const size_t n = 96;
  unsigned spc = spanclass_for(n, false);
  objs[0] = fresh_span_first(n, false);
  struct mspan *s = span_at(objs[0]);
  for (unsigned i = 1; i < s->nelems; i++) objs[i] = gc_alloc(n);
  ck_assert_ptr_eq(my_mcache()->slots[spc].span, s);

  objs[s->nelems] = gc_alloc(n);
  struct mspan *next = span_at(objs[s->nelems]);
  ck_assert_ptr_ne(next, s);
  ck_assert_ptr_eq(my_mcache()->slots[spc].span, next);
  ck_assert_uint_eq(next->cached_by, (uintptr_t)my_mcache());
  ck_assert_uint_eq(s->cached_by, 0);
  ck_assert_uint_eq(s->alloccount, s->nelems);
  check_span_and_mcentral(s);
}
END_TEST

START_TEST(test_release_all_returns_every_cached_span) {
  objs[0] = gc_alloc(64);
  objs[1] = gc_alloc_atomic(5000);
  struct mspan *a = span_at(objs[0]), *b = span_at(objs[1]);
  mcache_release_all(my_mcache());
  for (unsigned spc = 0; spc < SPANCLASS_COUNT; spc++) ck_assert_ptr_null(my_mcache()->slots[spc].span);
  ck_assert_uint_eq(a->cached_by, 0);
  ck_assert_uint_eq(b->cached_by, 0);
  check_span_and_mcentral(a);
  check_span_and_mcentral(b);
}
END_TEST

/* A thread gives back the spans it caches at its first refill after a
 * collection, so a class it no longer uses does not keep a span counted
 * as allocated (alloc/mcache.c, "Giving spans back each cycle"). */
START_TEST(test_first_refill_after_a_collection_gives_back_every_cached_span) {
  mcache_release_all(my_mcache());
  objs[0] = gc_alloc(64);
  objs[1] = gc_alloc_atomic(5000);
  struct mspan *a = span_at(objs[0]), *b = span_at(objs[1]);
  unsigned spc_a = a->spanclass, spc_b = b->spanclass;
  gc_collect();
  /* Nothing happens before the thread refills. */
  ck_assert_ptr_eq(my_mcache()->slots[spc_a].span, a);
  ck_assert_ptr_eq(my_mcache()->slots[spc_b].span, b);
  objs[2] = gc_alloc(1500); /* a class with no span cached: a refill */
  ck_assert_ptr_null(my_mcache()->slots[spc_a].span);
  ck_assert_ptr_null(my_mcache()->slots[spc_b].span);
  ck_assert_uint_eq(a->cached_by, 0);
  ck_assert_uint_eq(b->cached_by, 0);
  ck_assert_ptr_eq(my_mcache()->slots[span_at(objs[2])->spanclass].span, span_at(objs[2]));
  check_span_and_mcentral(a);
  check_span_and_mcentral(b);
  /* The objects are still there, and a second refill in the same cycle
   * gives nothing back. */
  ck_assert_ptr_eq(gc_base(objs[0]), objs[0]);
  ck_assert_ptr_eq(gc_base(objs[1]), objs[1]);
  objs[3] = gc_alloc(64);
  objs[4] = gc_alloc(3000);
  ck_assert_ptr_eq(my_mcache()->slots[span_at(objs[2])->spanclass].span, span_at(objs[2]));
  ck_assert_ptr_eq(my_mcache()->slots[span_at(objs[3])->spanclass].span, span_at(objs[3]));
}
END_TEST

/* heap_cache_slack (alloc/heaplive.h), which the pacer adds to the heap
 * goal: for each span the thread caches, the slots it came with free or
 * that a sweep freed while it was cached, by the slot size. */
static uintptr_t my_cache_slack(void) {
  const struct mcache *c = my_mcache();
  uintptr_t sum = 0;
  for (unsigned spc = 0; spc < SPANCLASS_COUNT; spc++) {
    const struct mspan *s = c->slots[spc].span;
    if (s) sum += (uintptr_t)(s->nelems - s->count_at_cache) * s->elemsize;
  }
  return sum;
}

static void assert_cache_slack_is_mine(const char *when) {
  uintptr_t slack = atomic_load_relaxed(&heap_cache_slack), mine = my_cache_slack();
  ck_assert_msg(slack == mine, "%s: heap_cache_slack %zu, the cached spans' free slots %zu", when, (size_t)slack,
                (size_t)mine);
}

START_TEST(test_cache_slack_follows_caching_sweeps_and_giving_back) {
  mcache_release_all(my_mcache());
  assert_cache_slack_is_mine("nothing cached");
  ck_assert_uint_eq(atomic_load_relaxed(&heap_cache_slack), 0);
  /* A fresh span, partly used, then given back: it is partial. */
  fresh_span_with(0, 64, false, 100);
  objs[100] = gc_alloc_atomic(5000);
  objs[101] = gc_alloc(1500);
  assert_cache_slack_is_mine("fresh spans cached");
  ck_assert_uint_ge(atomic_load_relaxed(&heap_cache_slack), 64u * (sizeclass_nelems[sizeclass_of(64)] - 100u));
  mcache_release_all(my_mcache());
  ck_assert_uint_eq(atomic_load_relaxed(&heap_cache_slack), 0);
  /* Cached again with objects in it, which then die: the sweep of the
   * cached span frees them, and they join the slack. */
  objs[102] = gc_alloc(64);
  struct mspan *s = span_at(objs[102]);
  ck_assert_msg(s->count_at_cache > 0, "the refill took a span with no objects");
  assert_cache_slack_is_mine("partial span cached");
  uintptr_t before = atomic_load_relaxed(&heap_cache_slack);
  memset(objs, 0, sizeof(objs));
  memset(parked, 0, sizeof(parked));
  nparked = 0;
  gc_collect();
  while (span_needs_sweep(s)) sweep_finish(); /* another sweeper may hold it a moment */
  assert_cache_slack_is_mine("after the sweep");
  ck_assert_msg(atomic_load_relaxed(&heap_cache_slack) > before,
                "heap_cache_slack %zu -> %zu: the sweep freed none of the span's dead objects", (size_t)before,
                (size_t)atomic_load_relaxed(&heap_cache_slack));
  mcache_release_all(my_mcache());
  ck_assert_uint_eq(atomic_load_relaxed(&heap_cache_slack), 0);
}
END_TEST

/* ---- kinds ---- */

START_TEST(test_allocation_kind_picks_span_class) {
  static const size_t sizes[] = {17, 100, 1000, 5000, SMALL_SIZE_MAX, SMALL_SIZE_MAX + 1, 100000};
  for (size_t i = 0; i < MGC_ARRAY_LEN(sizes); i++) {
    size_t n = sizes[i];
    unsigned sc = n > SMALL_SIZE_MAX ? 0 : sizeclass_of(n);
    objs[0] = gc_alloc(n);
    objs[1] = gc_alloc_atomic(n);
    ck_assert_uint_eq(span_at(objs[0])->spanclass, spanclass_make(sc, false));
    ck_assert_uint_eq(span_at(objs[1])->spanclass, spanclass_make(sc, true));
    gc_free(objs[0]);
    gc_free(objs[1]);
  }
}
END_TEST

START_TEST(test_realloc_keeps_kind) {
  static const size_t steps[] = {100, 5000, 100000, 300, 40};
  for (int noscan = 0; noscan <= 1; noscan++) {
    objs[0] = alloc_kind(20, noscan);
    for (size_t i = 0; i < MGC_ARRAY_LEN(steps); i++) {
      objs[0] = gc_realloc(objs[0], steps[i]);
      ck_assert(objs[0] != NULL);
      ck_assert_msg(spanclass_noscan(span_at(objs[0])->spanclass) == (bool)noscan,
                    "%s object realloc'd to %zu bytes changed kind", noscan ? "atomic" : "scanned",
                    steps[i]);
    }
    gc_free(objs[0]);
  }
}
END_TEST

/* ---- local_free ---- */

/* A slot freed in the word the thread is allocating from is reused once the
 * thread has moved past that word (alloc/mcache.c: cur_freed), zeroed. */
START_TEST(test_owner_free_makes_slot_reusable_and_zeroed) {
  const size_t n = 64; /* several words of slots */
  unsigned per_span = sizeclass_nelems[sizeclass_of(n)];
  objs[0] = fresh_span_first(n, false);
  objs[1] = gc_alloc(n);
  void *freed = objs[1];
  memset(freed, FILL, n);
  gc_free(freed);
  ck_assert_ptr_null(gc_base(freed));
  void *again = NULL;
  for (unsigned i = 0; i < per_span && !again; i++) {
    void *p = gc_alloc(n);
    ck_assert(p != NULL);
    if (p == freed) again = p;
    else objs[2 + (i % 8)] = p; /* keep some reachable; the rest are garbage */
  }
  ck_assert_msg(again == freed, "the freed slot was not reused before the span ran out");
  ck_assert(is_all(again, n, 0));
  objs[1] = again;
  mcache_release_all(my_mcache());
  check_span_and_mcentral(span_at(objs[0]));
}
END_TEST

START_TEST(test_owner_free_behind_cursor_is_reused_before_span_is_given_back) {
  const size_t n = 8; /* 1024 slots, 16 words */
  const unsigned behind = 3, ahead = 100;
  objs[0] = fresh_span_first(n, false);
  struct mspan *s = span_at(objs[0]);
  for (unsigned i = 1; i <= ahead; i++) objs[i] = gc_alloc(n);
  ck_assert_uint_gt(s->cur_word, behind / 64);
  memset(objs[behind], FILL, n);
  gc_free(objs[behind]);
  void *hole = objs[behind];
  objs[behind] = NULL;

  for (unsigned i = ahead + 1; i < s->nelems; i++) ck_assert_ptr_eq(span_at(gc_alloc(n)), s);
  void *p = gc_alloc(n); /* span used up but for the hole: the walk restarts */
  ck_assert_ptr_eq(p, hole);
  ck_assert(is_all(p, n, 0));
  ck_assert_uint_eq(s->cached_by, (uintptr_t)my_mcache());
}
END_TEST

static void *collect_main(void *arg) {
  (void)arg;
  gc_collect();
  return NULL;
}

/* A collection in another thread, its closing sweep held back: returns
 * once its mark has ended and left s unswept.  release_the_sweep ends it.
 * Inline: under AddressSanitizer a frame of its own, scanned while the
 * mark ran, held a stale copy of an object a test needs dead. */
static inline __attribute__((always_inline)) pthread_t collect_holding_the_sweep(const struct mspan *s) {
  test_hold_set(&sweep_hold_before_span, true);
  pthread_t t;
  ck_assert_int_eq(gc_pthread_create(&t, NULL, collect_main, NULL), 0);
  for (int i = 0; !span_needs_sweep(s); i++) {
    ck_assert_msg(i < 100000, "no mark ended within 10 s");
    nanosleep(&(struct timespec){0, 100000}, NULL);
  }
  return t;
}

/* A collection in another thread, held right after its mark setup (the
 * barrier on, the world running): returns once it is held.  Inline, as
 * collect_holding_the_sweep. */
static inline __attribute__((always_inline)) pthread_t collect_holding_after_mark_setup(void) {
  test_hold_set(&collector_hold_after_setup, true);
  pthread_t t;
  ck_assert_int_eq(gc_pthread_create(&t, NULL, collect_main, NULL), 0);
  for (int i = 0; !test_hold_is_holding(&collector_hold_after_setup); i++) {
    ck_assert_msg(i < 100000, "no mark started within 10 s");
    nanosleep(&(struct timespec){0, 100000}, NULL);
  }
  return t;
}

static void release_the_mark(pthread_t t) {
  test_hold_set(&collector_hold_after_setup, false);
  gc_blocking_begin();
  ck_assert_int_eq(pthread_join(t, NULL), 0);
  gc_blocking_end();
}

static void release_the_sweep(pthread_t t) {
  test_hold_set(&sweep_hold_before_span, false);
  gc_blocking_begin();
  ck_assert_int_eq(pthread_join(t, NULL), 0);
  gc_blocking_end();
}

/* The owner frees into words other than the one it allocates from with a
 * plain read and write of allocbits; a sweeper of the span works on the
 * same words under the class lock only.  So an owner's free into a span
 * the last mark left unswept sweeps the span first.  Here the collection
 * runs in another thread whose closing sweep is held back, and the free
 * comes between the mark and that sweep. */
START_TEST(test_owner_free_into_a_span_left_unswept_sweeps_it_first) {
  const size_t n = 64; /* two words or more */
  struct mspan *s = fresh_span_with(0, n, false, 70);
  ck_assert_uint_eq(s->cur_word, 1);
  pthread_t t = collect_holding_the_sweep(s);
  ck_assert_uint_eq(s->cached_by, (uintptr_t)my_mcache());
  void *x = objs[3];
  objs[3] = NULL;
  gc_free(x); /* in word 0 */
  bool swept = !span_needs_sweep(s);
  release_the_sweep(t);
  ck_assert_msg(swept, "the owner freed into a span left unswept without sweeping it");
  ck_assert(!span_holds_slot(s, 3));
  ck_assert(span_holds_slot(s, 2) && span_holds_slot(s, 4));
  mcache_release_all(my_mcache());
  check_span_and_mcentral(s);
}
END_TEST

/* ---- remote_free ---- */

START_TEST(test_remote_free_of_cached_span_is_folded_when_span_is_given_back) {
  const size_t n = 112;
  objs[0] = fresh_span_first(n, false);
  objs[1] = gc_alloc(n);
  objs[2] = gc_alloc(n);
  struct mspan *s = span_at(objs[0]);
  uintptr_t y = slot_of(s, objs[1]);

  free_from_other_thread(objs[1]);
  objs[1] = NULL;
  ck_assert_uint_eq(s->cached_by, (uintptr_t)my_mcache());
  ck_assert(bitmap_get(s->freedbits, y));

  mcache_release_all(my_mcache());
  ck_assert_uint_eq(s->cached_by, 0);
  ck_assert(!span_holds_slot(s, y));
  ck_assert(!bitmap_get(s->freedbits, y));
  ck_assert(span_holds_slot(s, 0) && span_holds_slot(s, 2));
  ck_assert_uint_eq(s->alloccount, 2);
  check_span_and_mcentral(s);
}
END_TEST

START_TEST(test_remote_free_of_uncached_span_takes_effect_at_once) {
  const size_t n = 128;
  struct mspan *s = fresh_span_with(0, n, false, 2);
  mcache_release_all(my_mcache());
  ck_assert_uint_eq(s->alloccount, 2);

  free_from_other_thread(objs[0]);
  objs[0] = NULL;
  ck_assert(!span_holds_slot(s, 0));
  ck_assert_uint_eq(s->alloccount, 1);
  check_span_and_mcentral(s);
}
END_TEST

/* Frees all objects of the n-byte class held in objs[0..count) from
 * another thread (registered, caching nothing of the class). */
static void *free_objs_main(void *arg) {
  size_t count = *(const size_t *)arg;
  gc_thread_register();
  for (size_t i = 0; i < count; i++) gc_free(objs[i]);
  gc_thread_unregister();
  return NULL;
}

static void free_objs_from_other_thread(size_t count) {
  pthread_t t;
  ck_assert_int_eq(pthread_create(&t, NULL, free_objs_main, &count), 0);
  ck_assert_int_eq(pthread_join(t, NULL), 0);
  memset(objs, 0, count * sizeof(objs[0]));
}

/* The class's count of kept empty spans, read under its lock (the
 * background sweeper changes it). */
static unsigned class_nempty(unsigned spc) {
  lock_acquire(&mcentrals[spc].lock);
  unsigned n = mcentrals[spc].nempty;
  lock_release(&mcentrals[spc].lock);
  return n;
}

/* How many of the spans at bases[0 .. n) are on their class's lists, empty
 * (kept), read under the lock. */
static size_t kept_among(unsigned spc, const uintptr_t *bases, size_t n) {
  struct mcentral *mc = &mcentrals[spc];
  size_t kept = 0;
  lock_acquire(&mc->lock);
  for (unsigned gen = 0; gen < 2; gen++)
    for (struct mspan *s = mc->partial[gen]; s; s = s->next)
      for (size_t i = 0; i < n; i++) kept += s->base == bases[i] && s->alloccount == 0;
  lock_release(&mc->lock);
  return kept;
}

/* An emptied span stays with its class (while the class keeps fewer than
 * its quota of empty spans), and the class's next refill takes it: no
 * round trip through the page heap. */
START_TEST(test_remote_free_of_last_object_keeps_span_for_its_class) {
  const size_t n = 144;
  unsigned spc = spanclass_for(n, false);
  gc_collect(); /* the sweep gives back the empty spans earlier tests left */
  ck_assert_uint_eq(class_nempty(spc), 0);
  objs[0] = fresh_span_first(n, false);
  uintptr_t base = (uintptr_t)objs[0];
  struct mspan *s = span_at(objs[0]);
  mcache_release_all(my_mcache());
  free_from_other_thread(objs[0]);
  objs[0] = NULL;
  ck_assert_uint_eq(kept_among(spc, &base, 1), 1);
  ck_assert_uint_eq(class_nempty(spc), 1);
  check_span_and_mcentral(s);

  objs[0] = gc_alloc(n);
  ck_assert_ptr_eq(objs[0], (void *)base);
  ck_assert_ptr_eq(span_at(objs[0]), s);
  ck_assert_uint_eq(class_nempty(spc), 0);
  check_span_and_mcentral(s);
}
END_TEST

/* Beyond the quota, an emptied span goes back to the page heap at once;
 * and the sweep after a collection gives back the empty spans kept. */
START_TEST(test_emptied_spans_beyond_the_quota_return_to_page_heap) {
  const size_t n = 4096;
  unsigned spc = spanclass_for(n, false);
  size_t per_span = sizeclass_nelems[spanclass_sizeclass(spc)];
  unsigned keep = mcentral_empty_keep(spc);
  size_t count = per_span * ((size_t)keep + 4);
  ck_assert_uint_le(count, MAX_OBJS);
  gc_collect();
  objs[0] = fresh_span_first(n, false);
  for (size_t i = 1; i < count; i++) objs[i] = gc_alloc(n);
  uintptr_t bases[MAX_OBJS];
  size_t nspans = 0;
  for (size_t i = 0; i < count; i += per_span) bases[nspans++] = span_at(objs[i])->base;
  mcache_release_all(my_mcache());
  free_objs_from_other_thread(count);

  /* Every span emptied; the first `keep` stayed, the rest went back. */
  ck_assert_uint_eq(kept_among(spc, bases, nspans), keep);
  ck_assert_uint_eq(class_nempty(spc), keep);
  ck_assert(mcentral_is_valid(&mcentrals[spc]));
  ck_assert(mheap_is_valid());

  gc_collect();
  ck_assert_uint_eq(class_nempty(spc), 0);
  ck_assert_uint_eq(kept_among(spc, bases, nspans), 0);
  ck_assert(mcentral_is_valid(&mcentrals[spc]));
  ck_assert(mheap_is_valid());
}
END_TEST

START_TEST(test_remote_double_free_of_cached_span_is_refused) {
  const size_t n = 176;
  objs[0] = fresh_span_first(n, false);
  objs[1] = gc_alloc(n);
  struct mspan *s = span_at(objs[0]);
  void *x = objs[1];
  objs[1] = NULL;
  free_from_other_thread(x);
  capture_begin();
  free_from_other_thread(x);
  const char *report = capture_end();
  ck_assert_msg(report != NULL, "a second remote free was not reported");
  mcache_release_all(my_mcache());
  ck_assert_uint_eq(s->alloccount, 1);
  check_span_and_mcentral(s);
}
END_TEST

/* A span fresh from the OS has needzero == 0.  A slot freed remotely while
 * the span was cached holds old data after the fold, so the span must be
 * marked needzero before the next mcache hands the slot out. */
START_TEST(test_remotely_freed_slot_is_zeroed_when_reused) {
  const size_t n = 160;
  objs[0] = fresh_span_first(n, false);
  objs[1] = gc_alloc(n); /* keeps the span from going back to the mheap */
  struct mspan *s = span_at(objs[0]);
  void *x = objs[0];
  memset(x, FILL, n);
  free_from_other_thread(x);
  objs[0] = NULL;
  mcache_release_all(my_mcache()); /* fold; the span is the partial one */

  objs[0] = gc_alloc(n);
  ck_assert_ptr_eq(span_at(objs[0]), s);
  ck_assert_ptr_eq(objs[0], x);
  ck_assert_msg(is_all(objs[0], n, 0),
                "gc_alloc returned a remotely freed slot with its old contents (needzero %u)",
                s->needzero);
}
END_TEST

START_TEST(test_owner_sees_remote_free_in_its_current_word) {
  const size_t n = 192;
  objs[0] = fresh_span_first(n, false);
  objs[1] = gc_alloc(n);
  void *x = objs[0];
  free_from_other_thread(x);
  objs[0] = NULL;
  /* mcache.h: mcache_slot_is_allocated is exact for the caller's own spans. */
  ck_assert_msg(gc_base(x) == NULL, "gc_base of an object freed by another thread still finds it");
  ck_assert_uint_eq(gc_size(x), 0);
}
END_TEST

/* Free slot `idx` of s from another thread; no pointer to it stays here. */
static __attribute__((noinline)) void free_slot_from_other_thread(const struct mspan *s, uintptr_t idx) {
  free_from_other_thread((void *)span_object_addr(s, idx));
}

/* A remote free sets a freed bit; if a collection then finds the object
 * dead (nothing points to a freed object) and sweeps it, the fold must not
 * call the one legitimate free a double free. */
START_TEST(test_remote_free_of_object_swept_before_fold_is_not_reported) {
  const size_t n = 8; /* 1024 slots: the victim's word is not the current one */
  const unsigned victim = 3, count = 100;
  objs[0] = fresh_span_first(n, false);
  for (unsigned i = 1; i < count; i++) objs[i] = gc_alloc(n);
  struct mspan *s = span_at(objs[0]);
  ck_assert_uint_gt(s->cur_word, victim / 64);
  objs[victim] = NULL;
  free_slot_from_other_thread(s, victim);
  scrub_stack();

  capture_begin();
  gc_collect(); /* sweeps the cached span but its current word */
  mcache_release_all(my_mcache());
  const char *report = capture_end();
  ck_assert_msg(report == NULL, "a single remote free was reported: %s", report);
  check_span_and_mcentral(s);
}
END_TEST

/* The victim is ahead of the owner's cursor: after the sweep its slot is
 * free in allocbits, so the owner hands it out again when it gets there;
 * folding the earlier remote free in must not free that new object. */
START_TEST(test_fold_after_sweep_never_frees_slot_handed_out_again) {
  const size_t n = 8; /* 1024 slots, 64 per bitmap word */
  const unsigned hole = 10, victim = 100, count = 150;
  objs[0] = fresh_span_first(n, false);
  for (unsigned i = 1; i < count; i++) objs[i] = gc_alloc(n);
  struct mspan *s = span_at(objs[0]);
  mcache_release_all(my_mcache());
  gc_free(objs[hole]);            /* a hole in word 0: the span comes back at word 0 */
  mcache_flush_held(my_mcache()); /* (or the refill would pass s over, see held_frees) */
  objs[hole] = gc_alloc(n);
  ck_assert_ptr_eq(span_at(objs[hole]), s);
  ck_assert_uint_eq(s->cur_word, hole / 64);
  objs[victim] = NULL;
  free_slot_from_other_thread(s, victim);
  scrub_stack();
  gc_collect(); /* sweeps every word of s but the current one: the victim is garbage */

  capture_begin();
  void *again = gc_alloc(n); /* word 0 is full: the owner enters word 1 */
  objs[victim] = again;
  ck_assert_ptr_eq(again, (void *)span_object_addr(s, victim));
  mcache_release_all(my_mcache());
  capture_end();
  ck_assert_msg(span_holds_slot(s, victim), "the fold freed live object %p, handed out after the sweep", again);
  ck_assert_ptr_eq(gc_base(again), again);
  check_span_and_mcentral(s);
}
END_TEST

/* ---- held frees ---- */

/* gc_free into a span the thread does not cache is held back: the slot
 * stays allocated in the span, but the thread sees it free at once (a
 * second free is reported now), and the thread's next refill applies it. */
START_TEST(test_free_into_uncached_span_is_held_and_applied_at_refill) {
  const size_t n = 208;
  struct mspan *s = fresh_span_with(0, n, false, 2);
  mcache_release_all(my_mcache());
  void *x = objs[0];
  objs[0] = NULL;
  gc_free(x);
  struct held_frees *h = &my_mcache()->held[s->sizeclass];
  ck_assert_ptr_eq(h->span, s);
  ck_assert_uint_eq(h->count, 1);
  ck_assert(span_holds_slot(s, 0));
  ck_assert_uint_eq(s->alloccount, 2);
  ck_assert_ptr_null(gc_base(x));
  capture_begin();
  gc_free(x);
  const char *report = capture_end();
  ck_assert_msg(report != NULL, "a second free of a held object was not reported");
  ck_assert_uint_eq(h->count, 1);

  /* The refill applies the held free (and takes another span: s, the
   * span the thread is freeing into, still holds an object). */
  objs[0] = gc_alloc(n);
  ck_assert_ptr_null(h->span);
  ck_assert_ptr_ne(span_at(objs[0]), s);
  ck_assert_uint_eq(s->alloccount, 1);
  ck_assert(!span_holds_slot(s, 0));
  mcache_release_all(my_mcache());
  check_span_and_mcentral(s);
}
END_TEST

/* Frees held for one span are applied together when the thread frees into
 * another.  The entry is emptied before they are applied, from a copy: a
 * fork() between the two must leave the child an empty entry (the child
 * gives back every other thread's cache and would apply the frees again,
 * to slots perhaps handed out anew), never a full one. */
START_TEST(test_held_frees_are_applied_when_the_thread_frees_into_another_span) {
  const size_t n = 240;
  unsigned per_span = sizeclass_nelems[sizeclass_of(n)];
  objs[0] = fresh_span_first(n, false);
  for (unsigned i = 1; i < 2 * per_span; i++) objs[i] = gc_alloc(n);
  struct mspan *a = span_at(objs[0]), *b = span_at(objs[per_span]);
  ck_assert_ptr_ne(a, b);
  mcache_release_all(my_mcache());
  atomic_store_relaxed(&applied_from_full_entry, 0);
  for (unsigned i = 1; i < 4; i++) {
    gc_free(objs[i]);
    objs[i] = NULL;
  }
  ck_assert_uint_eq(a->alloccount, per_span);
  ck_assert_uint_eq(my_mcache()->held[a->sizeclass].count, 3);
  gc_free(objs[per_span]); /* into b: a's three are applied */
  objs[per_span] = NULL;
  ck_assert_uint_eq(a->alloccount, per_span - 3);
  ck_assert(!span_holds_slot(a, 1) && !span_holds_slot(a, 3));
  ck_assert_ptr_eq(my_mcache()->held[b->sizeclass].span, b);
  ck_assert_uint_eq(b->alloccount, per_span);
  check_span_and_mcentral(a);
  mcache_flush_held(my_mcache());
  ck_assert_uint_eq(b->alloccount, per_span - 1);
  check_span_and_mcentral(b);
  ck_assert_msg(atomic_load_relaxed(&applied_from_full_entry) == 0,
                "held frees were applied while their entry still held them (%lu times)",
                (unsigned long)atomic_load_relaxed(&applied_from_full_entry));
}
END_TEST

/* Frees that alternate between size classes (a FIFO of mixed sizes) are
 * held side by side, one entry per size class: a free of one class does
 * not apply those held for another, and neither does a refill of another
 * class. */
START_TEST(test_frees_alternating_between_size_classes_are_held_side_by_side) {
  const size_t na = 208, nb = 1024;
  struct mspan *a = fresh_span_with(0, na, false, 4), *b = fresh_span_with(4, nb, false, 4);
  ck_assert_uint_ne(a->sizeclass, b->sizeclass);
  mcache_release_all(my_mcache());
  for (unsigned i = 1; i < 4; i++) {
    gc_free(objs[i]);
    objs[i] = NULL;
    gc_free(objs[i + 4]);
    objs[i + 4] = NULL;
  }
  struct mcache *c = my_mcache();
  ck_assert_uint_eq(c->held[a->sizeclass].count, 3);
  ck_assert_uint_eq(c->held[b->sizeclass].count, 3);
  ck_assert_msg(a->alloccount == 4 && b->alloccount == 4,
                "frees held for one size class were applied by a free of another (%u, %u objects left)",
                a->alloccount, b->alloccount);
  objs[1] = gc_alloc(na); /* a refill of a's class applies a's frees only */
  ck_assert_ptr_null(c->held[a->sizeclass].span);
  ck_assert_ptr_eq(c->held[b->sizeclass].span, b);
  ck_assert_uint_eq(b->alloccount, 4);
  mcache_flush_held(c);
  ck_assert_uint_eq(b->alloccount, 1);
  mcache_release_all(c);
  check_span_and_mcentral(a);
  check_span_and_mcentral(b);
}
END_TEST

/* A full span A of n-byte objects (objs[0 .. per_span)), given back, with
 * no partial span left in its class: the objects allocated meanwhile are
 * parked.  Returns A. */
static struct mspan *full_span_alone_in_its_class(size_t n) {
  unsigned spc = spanclass_for(n, false), per_span = sizeclass_nelems[sizeclass_of(n)];
  struct mcentral *mc = &mcentrals[spc];
  while (mc->partial[0] || mc->partial[1]) { /* use them up */
    ck_assert_msg(nparked < MAX_PARKED, "the partial spans of %zu-byte objects never ran out", n);
    parked[nparked++] = gc_alloc(n);
  }
  struct mspan *a = fresh_span_with(0, n, false, per_span); /* from the page heap now */
  ck_assert_ptr_eq(span_at(objs[per_span - 1]), a);
  mcache_release_all(my_mcache());
  ck_assert_uint_eq(a->alloccount, per_span);
  ck_assert_msg(!mc->partial[0] && !mc->partial[1], "a partial span of %zu-byte objects was left", n);
  return a;
}

/* A refill applies the frees held for its class before it takes a span,
 * whichever span that is (here p: their own, which they make the first
 * partial one, is passed over while it holds objects): they count in
 * heap_live until applied, and
 * held across refills, a span's worth per size class of them made a ring
 * of mixed sizes (alloc_bench ring_mix) run some 20 collections instead
 * of none. */
START_TEST(test_refill_applies_the_frees_held_for_its_class) {
  const size_t n = 240;
  unsigned per_span = sizeclass_nelems[sizeclass_of(n)];
  struct mspan *a = full_span_alone_in_its_class(n);
  objs[per_span] = gc_alloc(n); /* into a new span p, left partial */
  struct mspan *p = span_at(objs[per_span]);
  ck_assert_ptr_ne(p, a);
  mcache_release_all(my_mcache());
  for (unsigned i = 1; i < 4; i++) {
    gc_free(objs[i]);
    objs[i] = NULL;
  }
  struct held_frees *h = &my_mcache()->held[a->sizeclass];
  ck_assert_ptr_eq(h->span, a);
  ck_assert_uint_eq(h->count, 3);

  objs[per_span + 1] = gc_alloc(n);
  ck_assert_ptr_eq(span_at(objs[per_span + 1]), p);
  ck_assert_ptr_null(h->span);
  ck_assert_msg(a->alloccount == per_span - 3, "the refill left frees held (%u of %u objects left in their span)",
                a->alloccount, per_span);
  mcache_release_all(my_mcache());
  check_span_and_mcentral(a);
  check_span_and_mcentral(p);
}
END_TEST

/* The span a thread is freeing into is not the one its next refill
 * allocates from while objects remain in it, even with no other partial
 * span in the class: the refill takes a new span, and the old one, freed
 * whole meanwhile (a queue frees in the order of allocation), is taken
 * whole at the refill after.  Taken at once, it was allocated from while
 * its last objects were being freed, a few slots per word visit, and a
 * ring of 64-byte objects stayed cut up so for good (see the next test). */
START_TEST(test_refill_takes_a_new_span_over_the_one_the_thread_is_freeing_into) {
  /* One bitmap word to a span: b is used up before its next refill, which
   * therefore comes with a's frees still held (a move to another word of
   * b would apply them early). */
  const size_t n = 1024;
  unsigned per_span = sizeclass_nelems[sizeclass_of(n)];
  ck_assert_uint_eq(per_span, 64);
  struct mspan *a = full_span_alone_in_its_class(n);
  for (unsigned i = 1; i < 4; i++) {
    gc_free(objs[i]);
    objs[i] = NULL;
  }
  objs[per_span] = gc_alloc(n);
  struct mspan *b = span_at(objs[per_span]);
  ck_assert_msg(b != a, "the refill took the span the thread was freeing into, with %u objects left in it",
                a->alloccount);
  ck_assert_uint_eq(b->count_at_cache, 0);
  ck_assert_uint_eq(a->alloccount, per_span - 3); /* the held frees were applied all the same */
  check_span_and_mcentral(a);
  /* The rest of a is freed while b fills up; the refill after takes a. */
  gc_free(objs[0]);
  objs[0] = NULL;
  for (unsigned i = 4; i < per_span; i++) {
    gc_free(objs[i]);
    objs[i] = NULL;
  }
  for (unsigned i = 1; i < per_span; i++) objs[per_span + i] = gc_alloc(n);
  ck_assert_ptr_eq(span_at(objs[2 * per_span - 1]), b);
  ck_assert_ptr_eq(my_mcache()->held[a->sizeclass].span, a);
  void *next = gc_alloc(n);
  ck_assert_msg(span_at(next) == a, "the refill after did not take the emptied span back (took %p, not %p)",
                (void *)span_at(next), (void *)a);
  ck_assert_ptr_eq(next, (void *)a->base);
  objs[0] = next;
  mcache_release_all(my_mcache());
  check_span_and_mcentral(a);
  check_span_and_mcentral(b);
}
END_TEST

/* Passing over the span the thread is freeing into, a refill sweeps for
 * another partial span before it grows the heap: here the last mark left
 * u1 and u2 full of garbage, and the background sweep is held back; the
 * first refill after the mark sweeps for room (one of them, or a span an
 * earlier test left, with CK_FORK=no), and the one after that, passing
 * over a, must sweep again rather than take a span from the page heap. */
START_TEST(test_refill_sweeps_for_room_before_growing_the_heap_to_pass_over_a_span) {
  const size_t n = 1024; /* one bitmap word to a span, see above */
  unsigned per_span = sizeclass_nelems[sizeclass_of(n)];
  ck_assert_uint_eq(per_span, 64);
  struct mspan *a = full_span_alone_in_its_class(n);
  struct mspan *u1 = fresh_span_with(per_span, n, false, per_span);
  struct mspan *u2 = fresh_span_with(2 * per_span, n, false, per_span);
  ck_assert(u1 != a && u2 != a && u1 != u2);
  mcache_release_all(my_mcache());
  /* All garbage but their first objects (a span swept empty goes back to
   * the page heap). */
  for (unsigned i = 1; i < per_span; i++) objs[per_span + i] = objs[2 * per_span + i] = NULL;
  scrub_stack();
  pthread_t t = collect_holding_the_sweep(u1);
  /* This thread's refills would do some of the sweep first (proportional
   * sweeping) and hold there too: not while the hold is on. */
  saved_sweep_assist = heap_sweep_assist_hook;
  heap_sweep_assist_hook = NULL;

  void **fresh = &objs[3 * per_span];
  fresh[0] = gc_alloc(n);
  struct mspan *first = span_at(fresh[0]);
  ck_assert_msg(span_needs_sweep(u1) || span_needs_sweep(u2), "the first refill after the mark swept both u1 and u2");
  gc_free(objs[1]); /* held for a (swept first: a free into an unswept span sweeps it) */
  objs[1] = NULL;
  /* Use up `first` (one word: no refill until then); the allocation after
   * it comes from the refill that passes over a. */
  atomic_store_relaxed(&heap_span_requests, 0);
  unsigned i = 1;
  for (; i <= per_span; i++) {
    fresh[i] = gc_alloc(n);
    ck_assert(fresh[i] != NULL);
    if (span_at(fresh[i]) != first) break;
  }
  ck_assert_msg(i <= per_span, "the span the first refill took had room for more than %u objects", per_span);
  ck_assert_uint_eq(a->alloccount, per_span - 1); /* the refill applied the held free */
  struct mspan *next = span_at(fresh[i]);
  ck_assert_msg(next != a && atomic_load_relaxed(&heap_span_requests) == 0,
                "passing over the span it was freeing into, the refill %s, with an unswept span of room left",
                next == a ? "took that span" : "took a span from the page heap");
  heap_sweep_assist_hook = saved_sweep_assist;
  saved_sweep_assist = NULL;
  release_the_sweep(t);
  mcache_release_all(my_mcache());
  check_span_and_mcentral(a);
  check_span_and_mcentral(next);
}
END_TEST

/* A span of fewer than 64 objects is taken though the thread is freeing
 * into it: one word visit uses it up either way, and the thread's further
 * frees into it stay local ones. */
START_TEST(test_refill_takes_a_small_span_the_thread_is_freeing_into) {
  const size_t n = 4096;
  unsigned per_span = sizeclass_nelems[sizeclass_of(n)];
  ck_assert_uint_lt(per_span, 64);
  struct mspan *a = full_span_alone_in_its_class(n);
  gc_free(objs[1]);
  objs[1] = NULL;
  objs[per_span] = gc_alloc(n);
  ck_assert_msg(span_at(objs[per_span]) == a, "the refill passed over a span of %u objects", per_span);
  mcache_release_all(my_mcache());
  check_span_and_mcentral(a);
}
END_TEST

/* A ring (a queue of objects: each operation allocates one and frees the
 * oldest) is allocated a whole empty span at a time once it runs: every
 * span a refill takes after the first turns came empty.  When the span
 * being freed into was taken as soon as its held frees were applied, each
 * came with 104 of its 128 slots still in use (64-byte objects, when
 * their spans held 128). */
#define RING_OBJECTS 1000
#define RING_TURNS 20
START_TEST(test_a_ring_of_objects_is_allocated_whole_spans_at_a_time) {
  const size_t n = 64;
  static void *ring[RING_OBJECTS];
  for (size_t i = 0; i < RING_OBJECTS; i++) ring[i] = gc_alloc_atomic(n);
  for (unsigned turn = 0; turn < RING_TURNS; turn++) {
    if (turn == 2) watch_spanclass = spanclass_for(n, true);
    for (size_t i = 0; i < RING_OBJECTS; i++) {
      void *p = gc_alloc_atomic(n);
      ck_assert(p != NULL);
      gc_free(ring[i]);
      ring[i] = p;
    }
  }
  watch_spanclass = 0;
  unsigned per_span = sizeclass_nelems[sizeclass_of(n)];
  ck_assert_msg(cached_spans >= (RING_TURNS - 2) * RING_OBJECTS / per_span - 1,
                "only %u spans taken in %u turns of %u objects", cached_spans, RING_TURNS - 2, RING_OBJECTS);
  ck_assert_msg(cached_spans_not_empty == 0, "%u of the %u spans the ring took held objects already",
                cached_spans_not_empty, cached_spans);
  for (size_t i = 0; i < RING_OBJECTS; i++) gc_free(ring[i]);
  mcache_release_all(my_mcache());
  ck_assert(mcentral_is_valid(&mcentrals[spanclass_for(n, true)]));
}
END_TEST

/* With no other partial span in the class and no span to be had from the
 * page heap, the refill finds room in the span the thread held frees for
 * after all; a slot whose held free was applied is free to the thread, so
 * freeing it again is reported. */
START_TEST(test_refill_with_no_partial_span_and_no_heap_to_grow_reuses_the_held_slots) {
  const size_t n = 240;
  unsigned per_span = sizeclass_nelems[sizeclass_of(n)];
  struct mspan *a = full_span_alone_in_its_class(n);
  void *freed[3];
  for (unsigned i = 1; i < 4; i++) {
    freed[i - 1] = objs[i];
    gc_free(objs[i]);
    objs[i] = NULL;
  }
  uint64_t cycles = stats_cycles(); /* (gc_get_stats would apply the held frees) */
  heap_cannot_grow = true;
  objs[1] = gc_alloc(n);
  /* Had the refill failed, the out-of-memory path would have collected
   * and tried again. */
  ck_assert_msg(objs[1] != NULL && stats_cycles() == cycles,
                "the refill failed though the span the thread freed into had room");
  ck_assert_msg(span_at(objs[1]) == a, "the refill took another span (%p) over the one with held frees (%p)",
                (void *)span_at(objs[1]), (void *)a);
  ck_assert_ptr_eq(objs[1], freed[0]);
  ck_assert(is_all(objs[1], n, 0));
  capture_begin();
  gc_free(freed[1]);
  const char *report = capture_end();
  ck_assert_msg(report != NULL, "a second free of a slot whose held free was applied was not reported");
  objs[2] = gc_alloc(n);
  objs[3] = gc_alloc(n);
  ck_assert(objs[2] != objs[3] && span_at(objs[2]) == a && span_at(objs[3]) == a);
  mcache_release_all(my_mcache());
  ck_assert_uint_eq(a->alloccount, per_span);
  check_span_and_mcentral(a);
}
END_TEST

/* Spans of the scan and the noscan class of one size share its entry: a
 * free into the one applies what was held for the other. */
START_TEST(test_scan_and_noscan_spans_of_a_size_class_take_turns_in_its_entry) {
  const size_t n = 208;
  struct mspan *a = fresh_span_with(0, n, false, 2), *b = fresh_span_with(2, n, true, 2);
  ck_assert_uint_eq(a->sizeclass, b->sizeclass);
  ck_assert_uint_ne(a->spanclass, b->spanclass);
  mcache_release_all(my_mcache());
  gc_free(objs[1]);
  objs[1] = NULL;
  struct held_frees *h = &my_mcache()->held[a->sizeclass];
  ck_assert_ptr_eq(h->span, a);
  gc_free(objs[3]);
  objs[3] = NULL;
  ck_assert_uint_eq(a->alloccount, 1);
  ck_assert_ptr_eq(h->span, b);
  ck_assert_uint_eq(h->spanclass, b->spanclass);
  ck_assert_uint_eq(h->count, 1);
  mcache_flush_held(my_mcache());
  ck_assert_uint_eq(b->alloccount, 1);
  check_span_and_mcentral(a);
  check_span_and_mcentral(b);
}
END_TEST

/* A collection between holding a free and applying it: the sweep frees the
 * (unreachable) object itself and may hand the slot out again, so the held
 * free is dropped, not applied to whatever the slot holds by then. */
#define HIDE ((uintptr_t)0x5a5a5a5a5a5a5a5a) /* no root may name the object */

/* A fresh span of n-byte objects with two allocated, given back; the second
 * freed (held).  Returns its address XOR HIDE.  (Not the first: the span's
 * base address stays in the mcache slot's word address, a root.) */
static __attribute__((noinline)) uintptr_t hold_free_of_fresh_first(size_t n, struct mspan **s) {
  objs[0] = fresh_span_first(n, false);
  objs[1] = gc_alloc(n);
  *s = span_at(objs[0]);
  uintptr_t x = (uintptr_t)objs[1] ^ HIDE;
  mcache_release_all(my_mcache());
  gc_free(objs[1]);
  objs[1] = NULL;
  return x;
}

struct realloc_job {
  size_t n;
  uintptr_t want; /* address XOR HIDE */
};

/* Another thread allocates n-byte objects (kept in parked) until it is
 * handed the slot `want` again. */
static void *alloc_until_main(void *arg) {
  const struct realloc_job *j = arg;
  gc_thread_register();
  for (;;) {
    ck_assert_msg(nparked < MAX_PARKED, "the swept slot was never handed out again");
    void *p = gc_alloc(j->n);
    if ((uintptr_t)p == (j->want ^ HIDE)) {
      objs[1] = p;
      break;
    }
    parked[nparked++] = p;
  }
  gc_thread_unregister();
  return NULL;
}

START_TEST(test_held_free_is_dropped_after_a_collection) {
  const size_t n = 272;
  struct mspan *s;
  uintptr_t x = hold_free_of_fresh_first(n, &s);
  ck_assert_uint_eq(my_mcache()->held[s->sizeclass].count, 1);
  scrub_stack();
  gc_collect(); /* sweeps the object: nothing points to it */
  ck_assert(!span_holds_slot(s, 1));
  /* The slot again, for a new object, from a thread that holds nothing. */
  struct realloc_job job = {n, x};
  pthread_t t;
  ck_assert_int_eq(pthread_create(&t, NULL, alloc_until_main, &job), 0);
  ck_assert_int_eq(pthread_join(t, NULL), 0);
  ck_assert_uint_eq(my_mcache()->held[s->sizeclass].count, 1);

  capture_begin();
  mcache_flush_held(my_mcache());
  const char *report = capture_end();
  ck_assert_msg(report == NULL, "a held free was applied after the sweep: %s", report);
  mcache_release_all(my_mcache());
  ck_assert_msg(span_holds_slot(s, 1), "the held free freed the object handed out after the sweep");
  ck_assert_ptr_eq(gc_base(objs[1]), objs[1]);
  check_span_and_mcentral(s);
}
END_TEST

/* A free of a fresh object held (hold_free_of_fresh_first), then a
 * collection in another thread whose mark found the object dead, its sweep
 * of *s held back (release_the_sweep ends it).  The object's address XOR
 * HIDE goes to *x.  A stale copy of the address (a register, a frame the
 * scrub missed) sometimes keeps the object alive: then it tries again.
 * Inline, as collect_holding_the_sweep. */
static inline __attribute__((always_inline)) pthread_t held_free_dead_at_a_mark(size_t n, struct mspan **s,
                                                                                 uintptr_t *x) {
  for (int attempt = 0;; attempt++) {
    ck_assert_msg(attempt < 10, "the object survived every mark: something still points to it");
    *x = hold_free_of_fresh_first(n, s);
    scrub_stack();
    pthread_t t = collect_holding_the_sweep(*s);
    if (!bitmap_get((*s)->markbits, slot_of(*s, (void *)(*x ^ HIDE)))) return t;
    release_the_sweep(t);
    mcache_release_all(my_mcache());
  }
}

/* A second gc_free of an object whose first free was held, after a mark
 * that dropped the held free and before the sweep: the object is garbage
 * the sweep frees, but its bits still say allocated.  Held again, the free
 * would be applied after the sweep handed the slot out anew; the span is
 * swept first, so the second free is reported at once. */
START_TEST(test_second_free_between_a_mark_and_its_sweep_is_reported) {
  const size_t n = 272;
  struct mspan *s;
  uintptr_t x;
  pthread_t t = held_free_dead_at_a_mark(n, &s, &x);
  capture_begin();
  gc_free((void *)(x ^ HIDE));
  const char *report = capture_end();
  bool held = my_mcache()->held[s->sizeclass].count != 0 && my_mcache()->held[s->sizeclass].sweepgen == mheap_sweepgen;
  release_the_sweep(t);
  ck_assert_msg(report != NULL && !held, "a second free after the mark was held, not reported");
  mcache_release_all(my_mcache());
  check_span_and_mcentral(s);
}
END_TEST

/* A heap walk's sweep of large spans may claim a record since recycled as
 * a small span (sweepgen sg - 1) before it sees that the record is small;
 * it then gives the claim back and sweeps the span as a small one
 * (gc/sweep.c).  A gc_free into the span meanwhile must find it swept.
 * Taken for swept, the span had held frees opened on it while unswept, a
 * second free of an object the last mark had found dead was held without
 * a report, and once the sweep had handed that slot to a new object,
 * applying the held frees freed the new one. */
static void *sweep_as_large(void *arg) {
  sweep_large_span(arg, false);
  return NULL;
}

static atomic_word freeing_under_claim;

/* Ends the claim 0.1 s after the test thread starts freeing: long enough
 * for both frees to run meanwhile, were the first not to wait. */
static void *end_the_claim_later(void *arg) {
  (void)arg;
  while (!atomic_load_acquire(&freeing_under_claim)) nanosleep(&(struct timespec){0, 100000}, NULL);
  nanosleep(&(struct timespec){0, 100000000}, NULL);
  test_hold_set(&sweep_hold_in_recycled_claim, false);
  return NULL;
}

START_TEST(test_free_during_a_stale_large_claim_finds_the_span_swept) {
  const size_t n = 272;
  struct mspan *s;
  uintptr_t x;
  pthread_t t = held_free_dead_at_a_mark(n, &s, &x);
  uintptr_t x_slot = slot_of(s, (void *)(x ^ HIDE));
  test_hold_set(&sweep_hold_in_recycled_claim, true);
  pthread_t claimer, ender;
  ck_assert_int_eq(gc_pthread_create(&claimer, NULL, sweep_as_large, s), 0);
  for (int i = 0; !test_hold_is_holding(&sweep_hold_in_recycled_claim); i++) {
    ck_assert_msg(i < 100000, "the large sweep never claimed the span");
    nanosleep(&(struct timespec){0, 100000}, NULL);
  }
  ck_assert_uint_eq(atomic_load_relaxed(&s->sweepgen), atomic_load_relaxed(&mheap_sweepgen) - 1);
  atomic_store_relaxed(&freeing_under_claim, 0);
  ck_assert_int_eq(pthread_create(&ender, NULL, end_the_claim_later, NULL), 0);
  void *a = objs[0];
  objs[0] = NULL;
  capture_begin();
  atomic_store_release(&freeing_under_claim, 1);
  gc_free(a); /* waits out the claim and sweeps the span */
  bool unswept = span_needs_sweep(s);
  gc_free((void *)(x ^ HIDE)); /* a second free: its first was dropped by the mark */
  const char *report = capture_end();
  ck_assert_int_eq(pthread_join(ender, NULL), 0);
  gc_blocking_begin();
  ck_assert_int_eq(pthread_join(claimer, NULL), 0);
  gc_blocking_end();
  release_the_sweep(t);
  ck_assert_msg(!unswept, "gc_free went on with the span still claimed and unswept");
  ck_assert_msg(report != NULL, "the second free was held, not reported");
  /* The slot again, for a new object, from another thread; then the frees
   * this thread holds are applied: they must leave the new object alone. */
  ck_assert(!span_holds_slot(s, x_slot));
  struct realloc_job job = {n, x};
  pthread_t again;
  ck_assert_int_eq(pthread_create(&again, NULL, alloc_until_main, &job), 0);
  ck_assert_int_eq(pthread_join(again, NULL), 0);
  capture_begin();
  mcache_flush_held(my_mcache());
  capture_end();
  ck_assert_msg(span_holds_slot(s, x_slot), "applying the held frees freed the object handed out after the sweep");
  mcache_release_all(my_mcache());
  check_span_and_mcentral(s);
}
END_TEST

/* A free after a mark, into the span the thread held frees for before it:
 * that entry belongs to the old sweep generation and is dropped when next
 * applied, so the new free must not join it (gc_free's fast path trusts
 * an entry of the current generation to name a swept span, and checks
 * only the entry's generation).  Joined, it was lost: the object stayed
 * allocated, and gc_base still found it. */
START_TEST(test_free_after_a_mark_does_not_join_the_frees_held_before_it) {
  const size_t n = 272;
  struct mspan *s;
  hold_free_of_fresh_first(n, &s); /* objs[0] stays live */
  const struct held_frees *h = &my_mcache()->held[s->sizeclass];
  ck_assert_ptr_eq(h->span, s);
  pthread_t t = collect_holding_the_sweep(s);
  void *p = objs[0];
  objs[0] = NULL;
  gc_free(p);
  bool gone = gc_base(p) == NULL;
  bool current = h->span == s && h->count == 1 && h->sweepgen == atomic_load_relaxed(&mheap_sweepgen);
  release_the_sweep(t);
  ck_assert_msg(gone && current, "the free after the mark joined the old entry (base %s, %u held, %s generation)",
                gone ? "gone" : "still found", h->count, h->sweepgen == mheap_sweepgen ? "current" : "old");
  mcache_flush_held(my_mcache());
  ck_assert_msg(!span_holds_slot(s, 0), "the free after the mark was never applied");
  mcache_release_all(my_mcache());
  check_span_and_mcentral(s);
}
END_TEST

/* ---- free_memo ---- */

#define MEMO_RUN 1024
static void *memo_run[MEMO_RUN];

/* memo_run[0 .. count) freed in order from spans the thread does not
 * cache (held frees), then applied: a review follows. */
static void free_memo_run(unsigned count) {
  mcache_release_all(my_mcache());
  for (unsigned i = 0; i < count; i++) {
    gc_free(memo_run[i]);
    ck_assert_ptr_null(gc_base(memo_run[i]));
    memo_run[i] = NULL;
  }
  mcache_flush_held(my_mcache());
}

/* Held frees of n-byte objects, count of them, a span's objects after
 * another's, and their application: the review that follows turns the
 * memo on. */
static void free_a_run(size_t n, bool noscan, unsigned count) {
  ck_assert_uint_le(count, MEMO_RUN);
  for (unsigned i = 0; i < count; i++) memo_run[i] = alloc_kind(n, noscan);
  free_memo_run(count);
}

/* A type of 56 bytes, its first word a pointer (objects of the 64-byte
 * typed class, header included). */
static const gc_type *type_56(void) {
  const size_t offsets[] = {0};
  const gc_type *type = gc_type_new(56, offsets, 1);
  ck_assert_ptr_nonnull(type);
  return type;
}

static void turn_the_free_memo_on(void) {
  free_a_run(64, true, 512);
  ck_assert_msg(my_mcache()->free_memo_on, "512 frees in runs of whole spans did not turn the free memo on");
}

static struct mspan *free_memo(void) { return (struct mspan *)atomic_load_relaxed(&my_mcache()->free_memo); }

/* objs[0 .. count) fill a fresh span of n-byte objects the thread does
 * not cache; objs[0] is freed (held), which makes the span the memo. */
static struct mspan *memo_span_with(size_t n, bool noscan, unsigned count) {
  struct mspan *s = fresh_span_with(0, n, noscan, count);
  ck_assert_ptr_eq(span_at(objs[count - 1]), s);
  mcache_release_all(my_mcache());
  gc_free(objs[0]);
  objs[0] = NULL;
  ck_assert_ptr_eq(free_memo(), s);
  return s;
}

/* Frees alternating between two size classes: every one goes to another
 * span than the one before; the review after them turns the memo off. */
static void free_alternating(void) {
  for (unsigned i = 0; i < MEMO_RUN; i++) memo_run[i] = gc_alloc_atomic(i % 2 ? 64 : 1024);
  free_memo_run(MEMO_RUN);
}

START_TEST(test_free_memo_is_tried_for_runs_and_not_for_alternating_spans) {
  free_alternating();
  ck_assert_msg(!my_mcache()->free_memo_on, "frees alternating between two spans left the free memo on");
  turn_the_free_memo_on();
  free_alternating();
  ck_assert_msg(!my_mcache()->free_memo_on, "frees alternating between two spans left the free memo on");
  turn_the_free_memo_on();
}
END_TEST

/* A run of frees into typed spans (never the memo) turns it off. */
START_TEST(test_a_run_of_frees_of_typed_objects_turns_the_memo_off) {
  turn_the_free_memo_on();
  const gc_type *type = type_56();
  for (unsigned i = 0; i < 512; i++) memo_run[i] = gc_alloc_typed(56, type);
  free_memo_run(512);
  ck_assert_msg(!my_mcache()->free_memo_on, "a run of frees of typed objects left the memo on");
}
END_TEST

START_TEST(test_frees_through_the_memo_are_held_and_applied) {
  turn_the_free_memo_on();
  const size_t n = 64;
  unsigned per_span = sizeclass_nelems[sizeclass_of(n)];
  struct mspan *s = memo_span_with(n, true, per_span);
  uint32_t switches_before = my_mcache()->free_memo_switches;
  uintptr_t hits_before = my_mcache()->free_memo_hits;
  for (unsigned i = 1; i < per_span - 1; i++) { /* the last stays: s is not emptied */
    gc_free(objs[i]);
    ck_assert_ptr_null(gc_base(objs[i]));
    objs[i] = NULL;
  }
  const struct held_frees *h = &my_mcache()->held[s->sizeclass];
  ck_assert_ptr_eq(h->span, s);
  ck_assert_uint_eq(h->count, per_span - 1);
  ck_assert_uint_eq(s->alloccount, per_span); /* held, not yet applied */
  ck_assert_uint_eq(my_mcache()->free_memo_switches, switches_before);
  ck_assert_msg(my_mcache()->free_memo_hits - hits_before == per_span - 2,
                "%lu of the %u frees after the first went through the memo",
                (unsigned long)(my_mcache()->free_memo_hits - hits_before), per_span - 2);
  mcache_flush_held(my_mcache());
  ck_assert_uint_eq(s->alloccount, 1);
  ck_assert_ptr_eq(free_memo(), &mcache_no_memo);
  check_span_and_mcentral(s);
}
END_TEST

/* A second free, a pointer into an object and a slot never handed out,
 * in the memo's span: each is reported and changes nothing. */
START_TEST(test_bad_frees_into_the_memo_span_are_reported_and_ignored) {
  turn_the_free_memo_on();
  const size_t n = 64;
  unsigned per_span = sizeclass_nelems[sizeclass_of(n)];
  unsigned count = per_span / 2;
  struct mspan *s = memo_span_with(n, true, count);
  gc_free(objs[1]);
  const struct held_frees *h = &my_mcache()->held[s->sizeclass];
  ck_assert_uint_eq(h->count, 2);

  capture_begin();
  gc_free(objs[1]);
  const char *report = capture_end();
  ck_assert_msg(report != NULL, "a second free of an object freed through the memo was not reported");
  objs[1] = NULL;
  capture_begin();
  gc_free((char *)objs[2] + 8);
  report = capture_end();
  ck_assert_msg(report != NULL, "a free of a pointer into an object was not reported");
  ck_assert_ptr_eq(gc_base(objs[2]), objs[2]);
  char *never = (char *)s->base + (count + 1) * n;
  ck_assert_uint_lt((uintptr_t)never, s->limit);
  capture_begin();
  gc_free(never);
  report = capture_end();
  ck_assert_msg(report != NULL, "a free of a slot never handed out was not reported");
  ck_assert_uint_eq(h->count, 2);

  mcache_flush_held(my_mcache());
  ck_assert_uint_eq(s->alloccount, count - 2);
  ck_assert(span_holds_slot(s, 2) && !span_holds_slot(s, count + 1));
  check_span_and_mcentral(s);
}
END_TEST

static void never_called(void *obj, void *data) {
  (void)obj;
  (void)data;
  ck_abort_msg("the finalizer of a freed object ran");
}

/* A run of frees into spans that hold an object with a finalizer: the
 * memo refuses them all (free_slow must drop the finalizer), and counts
 * each refusal as a switch, so the review turns it off. */
START_TEST(test_a_run_of_frees_the_memo_refuses_turns_it_off) {
  turn_the_free_memo_on();
  for (unsigned i = 0; i < 512; i++) memo_run[i] = gc_alloc(64);
  for (unsigned i = 0; i < 512; i++) /* the last object of each span, freed last */
    if (i == 511 || span_at(memo_run[i + 1]) != span_at(memo_run[i]))
      ck_assert_int_eq(gc_set_finalizer(memo_run[i], never_called, NULL), 0);
  free_memo_run(512);
  ck_assert_msg(!my_mcache()->free_memo_on, "a run of frees the memo refused left it on");
}
END_TEST

/* A thread whose memo is on and whose frees then all go elsewhere (into
 * its own cached span here: none is held, so no review comes) has it
 * turned off once its refills have handed out FREE_MEMO_ALLOC_BUDGET
 * slots, not before; a review turns it on again. */
START_TEST(test_a_memo_left_on_without_reviews_is_turned_off_by_refills) {
  turn_the_free_memo_on();
  ck_assert_int_eq(my_mcache()->free_memo_alloc_budget, FREE_MEMO_ALLOC_BUDGET);
  unsigned n = 0;
  for (; n < 2 * FREE_MEMO_ALLOC_BUDGET && my_mcache()->free_memo_on; n++) {
    void *p = gc_alloc_atomic(48);
    ck_assert_ptr_eq((void *)atomic_load_relaxed(&span_at(p)->cached_by), my_mcache());
    gc_free(p);
    ck_assert_ptr_null(gc_base(p));
  }
  ck_assert_msg(!my_mcache()->free_memo_on, "%u allocations and frees elsewhere left the memo on", n);
  /* Counted a word at a time, when the next is entered. */
  ck_assert_msg(n + 64 >= FREE_MEMO_ALLOC_BUDGET && n <= FREE_MEMO_ALLOC_BUDGET + 64,
                "the memo was turned off after %u allocations, with a budget of %u", n, FREE_MEMO_ALLOC_BUDGET);
  turn_the_free_memo_on();
}
END_TEST

/* The start of a typed object's slot is its header, not the object: a
 * typed span is never the memo, so a free there is judged (and reported)
 * the usual way. */
START_TEST(test_typed_objects_are_not_freed_at_their_slot_start_through_the_memo) {
  turn_the_free_memo_on();
  const gc_type *type = type_56();
  /* Two objects in one span: of three in a row, two share a span. */
  for (unsigned i = 0; i < 3; i++) objs[i] = gc_alloc_typed(56, type);
  unsigned a = span_at(objs[0]) == span_at(objs[1]) ? 0 : 1;
  struct mspan *s = span_at(objs[a]);
  ck_assert_ptr_eq(span_at(objs[a + 1]), s);
  ck_assert(spanclass_typed(s->spanclass));
  mcache_release_all(my_mcache());
  gc_free(objs[a + 1]);
  objs[a + 1] = NULL;
  ck_assert_ptr_eq(free_memo(), &mcache_no_memo);
  uintptr_t slot = span_object_addr(s, slot_of(s, objs[a]));
  ck_assert_uint_ne(slot, (uintptr_t)objs[a]);
  capture_begin();
  gc_free((void *)slot);
  const char *report = capture_end();
  ck_assert_msg(report != NULL, "a free of a typed object's header was not reported");
  ck_assert_ptr_eq(gc_base(objs[a]), objs[a]);
  gc_free(objs[a]);
  objs[a] = NULL;
  ck_assert_uint_eq(my_mcache()->held[s->sizeclass].count, 2);
  mcache_flush_held(my_mcache());
  check_span_and_mcentral(s);
}
END_TEST

/* gc_free of an object drops its finalizer, memo or not. */
START_TEST(test_a_free_through_the_memo_drops_the_objects_finalizer) {
  turn_the_free_memo_on();
  struct mspan *s = memo_span_with(64, false, 8);
  ck_assert_int_eq(gc_set_finalizer(objs[3], never_called, NULL), 0);
  ck_assert(atomic_load_relaxed(&s->finalizers) != 0);
  gc_free(objs[3]);
  objs[3] = NULL;
  ck_assert_msg(atomic_load_relaxed(&s->finalizers) == 0, "the freed object kept its finalizer");
  mcache_flush_held(my_mcache());
  check_span_and_mcentral(s);
}
END_TEST

/* The memo's span, cached by another thread since: allocbits does not
 * describe that thread's current word (slots freed remotely there are in
 * freedbits until it gives the span back), so frees go the usual way,
 * which reports a second free of such a slot. */
struct cache_job {
  struct mspan *s;
  size_t n;
  atomic_word cached; /* 1: caching s; 2: gave up */
  atomic_word release;
};

static void *cache_span_main(void *arg) {
  struct cache_job *job = arg;
  gc_thread_register();
  for (int i = 0; i < 100000 && span_at(gc_alloc_atomic(job->n)) != job->s; i++) {}
  atomic_store_release(&job->cached, job->s->cached_by == (uintptr_t)thread_mcache() ? 1 : 2);
  while (!atomic_load_acquire(&job->release)) nanosleep(&(struct timespec){0, 100000}, NULL);
  gc_thread_unregister();
  return NULL;
}

START_TEST(test_frees_into_the_memo_span_cached_by_another_thread_go_the_usual_way) {
  turn_the_free_memo_on();
  const size_t n = 64;
  unsigned per_span = sizeclass_nelems[sizeclass_of(n)];
  struct mspan *s = memo_span_with(n, true, per_span);
  mcache_flush_held(my_mcache()); /* slot 0 free: s is partial, for the other thread to take */
  struct cache_job job = {.s = s, .n = n};
  pthread_t t;
  ck_assert_int_eq(pthread_create(&t, NULL, cache_span_main, &job), 0);
  while (!atomic_load_acquire(&job.cached)) nanosleep(&(struct timespec){0, 100000}, NULL);
  if (atomic_load_relaxed(&job.cached) != 1) {
    atomic_store_release(&job.release, 1);
    ck_assert_int_eq(pthread_join(t, NULL), 0);
    ck_abort_msg("the other thread never cached the span");
  }
  gc_free(objs[2]);
  mcache_flush_held(my_mcache()); /* applied to the cached span: freedbits */
  ck_assert(bitmap_get(s->freedbits, 2));
  gc_free(objs[3]);
  ck_assert_ptr_eq(free_memo(), s);
  bool on = my_mcache()->free_memo_on;
  capture_begin();
  gc_free(objs[2]);
  const char *report = capture_end();
  objs[2] = objs[3] = NULL;
  mcache_flush_held(my_mcache());
  atomic_store_release(&job.release, 1);
  ck_assert_int_eq(pthread_join(t, NULL), 0);
  ck_assert_msg(on, "the memo was off: the test tried nothing");
  ck_assert_msg(report != NULL, "a second free into a span another thread caches was not reported");
  check_span_and_mcentral(s);
}
END_TEST

START_TEST(test_applying_the_held_frees_forgets_the_memo) {
  turn_the_free_memo_on();
  struct mspan *s = memo_span_with(64, true, 8);
  mcache_flush_held(my_mcache());
  ck_assert_ptr_eq(free_memo(), &mcache_no_memo);
  gc_free(objs[1]);
  objs[1] = NULL;
  const struct held_frees *h = &my_mcache()->held[s->sizeclass];
  ck_assert_msg(h->span == s && h->count == 1, "a free after the entry was applied was not held in it anew");
  mcache_flush_held(my_mcache());
  ck_assert(!span_holds_slot(s, 1));
  ck_assert_uint_eq(s->alloccount, 6);
  check_span_and_mcentral(s);
}
END_TEST

/* A memo whose span's entry holds nothing for it (as after another
 * thread's double frees emptied the span and its record was reused) is
 * refused: the free goes the usual way and opens the entry anew. */
START_TEST(test_a_memo_whose_entry_does_not_name_its_span_is_refused) {
  turn_the_free_memo_on();
  struct mspan *s = memo_span_with(64, true, 8);
  mcache_flush_held(my_mcache());
  atomic_store_relaxed(&my_mcache()->free_memo, (uintptr_t)s); /* stale */
  gc_free(objs[1]);
  objs[1] = NULL;
  const struct held_frees *h = &my_mcache()->held[s->sizeclass];
  ck_assert_msg(h->span == s && h->count == 1, "the free was held in an entry for %p, %u held", (void *)h->span,
                h->count);
  mcache_flush_held(my_mcache());
  ck_assert(!span_holds_slot(s, 1));
  check_span_and_mcentral(s);
}
END_TEST

/* While the collector marks, frees are not held (free_slow greys what the
 * object points to and frees it at once), memo or not. */
START_TEST(test_mark_start_forgets_the_free_memo) {
  turn_the_free_memo_on();
  struct mspan *s = memo_span_with(64, true, 8);
  pthread_t t = collect_holding_after_mark_setup();
  bool forgotten = free_memo() == &mcache_no_memo;
  gc_free(objs[5]);
  bool held = mcache_holds_free(my_mcache(), s, 5);
  bool freed = !span_holds_slot(s, 5);
  objs[5] = NULL;
  release_the_mark(t);
  ck_assert_msg(forgotten, "the mark started with the free memo still set");
  ck_assert_msg(!held && freed, "a free while the collector marked was %s", held ? "held" : "not applied");
  mcache_release_all(my_mcache());
}
END_TEST

/* Threads running rings of one size each (their frees in runs, through
 * their memos) while another thread collects over and over: every object
 * holds its pattern until its free, no correct free is reported, and
 * each ring made frees into its memo's span with the memo on.  A memo that outlived a mark start would hold frees while
 * the collector marks, or after the sweep that freed their objects.  The
 * sizes differ: rings of one size share spans, and frees into a span
 * another thread caches take the slow way, which turns the memo off. */
#define MEMO_RING_THREADS 3
#define MEMO_RING 300
#define MEMO_RING_NS 1000000000ull

struct memo_ring_job {
  unsigned tid;
  atomic_word bad;       /* objects found overwritten */
  atomic_word hits;      /* frees through the memo since its last review */
  atomic_word memo_frees; /* frees made while the memo was on and named their span */
  atomic_word ops;
};

static atomic_word memo_rings_done;

static uint64_t ring_fill_word(unsigned tid, uint64_t serial) { return (uint64_t)tid << 56 ^ serial * 0x9e3779b97f4a7c15ull; }
static size_t memo_ring_words(unsigned tid) { return (size_t)8 << tid; } /* 64, 128, 256 bytes */

static void *memo_ring_main(void *arg) {
  struct memo_ring_job *job = arg;
  gc_thread_register();
  uint64_t *ring[MEMO_RING]; /* on this thread's stack: a root */
  uint64_t serial[MEMO_RING];
  uint64_t next = 0;
  size_t words = memo_ring_words(job->tid);
  for (unsigned i = 0; i < MEMO_RING; i++) {
    ring[i] = gc_alloc_atomic(words * 8);
    serial[i] = next++;
    for (size_t k = 0; k < words; k++) ring[i][k] = ring_fill_word(job->tid, serial[i]);
  }
  uint64_t start = now_ns(), ops = 0, memo_frees = 0;
  struct mcache *c = thread_mcache();
  for (unsigned slot = 0;; slot = (slot + 1) % MEMO_RING, ops++) {
    if ((ops & 1023) == 0 && now_ns() - start > MEMO_RING_NS) break;
    uint64_t *p = gc_alloc_atomic(words * 8);
    for (size_t k = 0; k < words; k++)
      if (ring[slot][k] != ring_fill_word(job->tid, serial[slot])) {
        atomic_fetch_add(&job->bad, 1);
        break;
      }
    /* span_of_heap, not span_at: no Check call in these threads (Check's
     * lock, held by a thread a stop parks, deadlocked the stop under
     * ThreadSanitizer, which delivers signals only outside its
     * interceptors). */
    memo_frees += c->free_memo_on && atomic_load_relaxed(&c->free_memo) == (uintptr_t)span_of_heap((uintptr_t)ring[slot]);
    gc_free(ring[slot]);
    ring[slot] = p;
    serial[slot] = next++;
    for (size_t k = 0; k < words; k++) p[k] = ring_fill_word(job->tid, serial[slot]);
  }
  for (unsigned i = 0; i < MEMO_RING; i++) gc_free(ring[i]);
  atomic_store_relaxed(&job->hits, c->free_memo_hits);
  atomic_store_relaxed(&job->memo_frees, memo_frees);
  atomic_store_relaxed(&job->ops, ops);
  gc_thread_unregister();
  atomic_fetch_add(&memo_rings_done, 1);
  return NULL;
}

START_TEST(test_rings_freed_through_memos_while_collections_run_stay_intact) {
  struct memo_ring_job jobs[MEMO_RING_THREADS];
  pthread_t threads[MEMO_RING_THREADS];
  atomic_store_relaxed(&memo_rings_done, 0);
  capture_begin();
  for (unsigned t = 0; t < MEMO_RING_THREADS; t++) {
    jobs[t] = (struct memo_ring_job){.tid = t};
    ck_assert_int_eq(pthread_create(&threads[t], NULL, memo_ring_main, &jobs[t]), 0);
  }
  unsigned cycles = 0;
  while (atomic_load_relaxed(&memo_rings_done) < MEMO_RING_THREADS) {
    gc_collect();
    cycles++;
  }
  for (unsigned t = 0; t < MEMO_RING_THREADS; t++) ck_assert_int_eq(pthread_join(threads[t], NULL), 0);
  const char *report = capture_end();
  uintptr_t bad = 0, hits = 0, ops = 0, tried = 0, least = UINTPTR_MAX;
  for (unsigned t = 0; t < MEMO_RING_THREADS; t++) {
    bad += atomic_load_relaxed(&jobs[t].bad);
    uintptr_t m = atomic_load_relaxed(&jobs[t].memo_frees);
    tried += m;
    if (m < least) least = m;
    hits += atomic_load_relaxed(&jobs[t].hits);
    ops += atomic_load_relaxed(&jobs[t].ops);
  }
  fprintf(stderr,
          "memo rings: %lu operations, %lu frees into the memo's span with the memo on, %lu through memos since the "
          "last review, %u collections\n",
          (unsigned long)ops, (unsigned long)tried, (unsigned long)hits, cycles);
  ck_assert_msg(bad == 0, "%lu ring objects were overwritten before their free", (unsigned long)bad);
  ck_assert_msg(report == NULL, "correct frees were reported: %s", report);
  ck_assert_msg(cycles >= 3, "only %u collections ran beside the rings", cycles);
  ck_assert_msg(least >= MEMO_RING, "a ring made only %lu frees into its memo's span with the memo on: the test tried less than it says",
                (unsigned long)least);
}
END_TEST

/* ---- free_key ---- */

static uintptr_t free_key(const struct mspan *s) { return atomic_load_relaxed(&s->free_key); }

/* A span of n-byte objects whose tail past its last slot is at least one
 * slot's size short of the span's end (so a pointer there is no object). */
static size_t size_with_a_tail(void) {
  for (unsigned sc = 1; sc < SIZECLASS_COUNT; sc++) {
    uintptr_t span_bytes = (uintptr_t)sizeclass_npages[sc] * PAGE_SIZE;
    if (sizeclass_size[sc] <= 1024 && span_bytes - (uintptr_t)sizeclass_nelems[sc] * sizeclass_size[sc] >= 8)
      return sizeclass_size[sc];
  }
  ck_abort_msg("no size class of 1 KiB or less leaves a tail in its span");
  return 0;
}

/* gc_free(p), which must be reported with a line saying `says`. */
static void free_expecting_report(void *p, const char *says, const char *what) {
  capture_begin();
  gc_free(p);
  const char *report = capture_end();
  ck_assert_msg(report != NULL && strstr(report, says), "%s was not reported", what);
}

/* gc_free(p), which must go (keyed) or must not go by a free key of this
 * thread's: the two ways give the same visible result, and only the count
 * debug builds keep of keyed frees (mcache.h) tells them apart.  A free by
 * a key that finds the slot free already is not counted.  Without the
 * count (MGC_DEBUG 0) the free is made and nothing is asserted. */
#if MGC_DEBUG >= 1
#define KEYED_FREES_COUNTED true
static uintptr_t keyed_frees(void) { return my_mcache()->debug_keyed_frees; }
#else
#define KEYED_FREES_COUNTED false
static uintptr_t keyed_frees(void) { return 0; }
#endif

static void free_expecting_key(void *p, bool keyed, const char *what) {
  uintptr_t before = keyed_frees();
  gc_free(p);
  uintptr_t by_key = keyed_frees() - before;
  if (KEYED_FREES_COUNTED) ck_assert_msg(by_key == (keyed ? 1 : 0), "%s was %sfreed by a key", what, keyed ? "not " : "");
}

/* The free_key TCase's fixture: the free memo off, so that held frees
 * reach the key rather than the memo, which gc_free tries first (with
 * CK_FORK=no an earlier test may have turned it on). */
static void free_memo_off(void) { my_mcache()->free_memo_on = false; }

/* objs[0 .. count): objects of a fresh span of n-byte objects the thread
 * caches, objs[1] freed: the owner's first free, which keys the span. */
static struct mspan *owner_keyed_span(size_t n, bool noscan, unsigned count) {
  struct mspan *s = fresh_span_with(0, n, noscan, count);
  free_expecting_key(objs[1], false, "the owner's first free into a fresh span");
  objs[1] = NULL;
  ck_assert_msg(free_key(s) == (uintptr_t)my_mcache(), "the owner's free did not key its span");
  return s;
}

/* objs[at .. at + count): objects of a fresh span of n-byte objects that the thread gave back, two of them (objs[at], objs[at + 1])
 * freed: the first opens the thread's entry for the span, the second is
 * held the usual way and gives the span the thread's held key. */
static struct mspan *held_keyed_span(size_t at, size_t n, bool noscan, unsigned count) {
  struct mspan *s = fresh_span_with(at, n, noscan, count);
  mcache_release_all(my_mcache());
  ck_assert_uint_eq(s->cached_by, 0);
  free_expecting_key(objs[at], false, "the free that opens the entry");
  free_expecting_key(objs[at + 1], false, "the first free held in the open entry");
  objs[at] = objs[at + 1] = NULL;
  ck_assert_ptr_eq(my_mcache()->held[s->sizeclass].span, s);
  ck_assert_msg(free_key(s) == mcache_held_key(my_mcache()), "a held free did not give the span the held key");
  return s;
}

/* Frees by the held key are held like the others (and refused when the
 * slot is free or held already, or the pointer is no object's start);
 * applying the entry takes the key away. */
START_TEST(test_frees_by_the_held_key_are_held_and_applied) {
  struct mspan *s = held_keyed_span(0, 208, false, 6);
  const struct held_frees *h = &my_mcache()->held[s->sizeclass];
  ck_assert_uint_eq(h->count, 2);
  free_expecting_key(objs[2], true, "a free into the span with the held key");
  ck_assert_uint_eq(h->count, 3);
  ck_assert(span_holds_slot(s, 2));
  ck_assert_ptr_null(gc_base(objs[2]));
  free_expecting_report(objs[2], "already freed", "a second free by the held key");
  objs[2] = NULL;
  free_expecting_report((char *)objs[3] + 8, "inside an object", "a free by the held key of a pointer into an object");
  ck_assert_uint_eq(h->count, 3);
  ck_assert_uint_eq(free_key(s), mcache_held_key(my_mcache()));
  mcache_flush_held(my_mcache());
  ck_assert_uint_eq(free_key(s), 0);
  ck_assert_uint_eq(s->alloccount, 3);
  ck_assert(!span_holds_slot(s, 2) && span_holds_slot(s, 3));
  check_span_and_mcentral(s);
}
END_TEST

/* A thread caching the span takes the held key away: allocbits no longer
 * tells a held free whether the slot is free (the new owner's current
 * word is in its cache), so the frees go the usual way again. */
START_TEST(test_caching_a_span_takes_its_held_key_away) {
  const size_t n = 208;
  struct mspan *s = held_keyed_span(0, n, true, 6); /* the other thread allocates atomic objects */
  struct cache_job job = {.s = s, .n = n};
  pthread_t t;
  ck_assert_int_eq(pthread_create(&t, NULL, cache_span_main, &job), 0);
  while (!atomic_load_acquire(&job.cached)) nanosleep(&(struct timespec){0, 100000}, NULL);
  bool cached = atomic_load_relaxed(&job.cached) == 1;
  uintptr_t key = free_key(s);
  uintptr_t keyed = 0;
  if (cached) {
    uintptr_t before = keyed_frees();
    gc_free(objs[3]);
    keyed = keyed_frees() - before;
    objs[3] = NULL;
    mcache_flush_held(my_mcache()); /* applied to the cached span: freedbits */
  }
  bool remote = cached && bitmap_get(s->freedbits, 3);
  atomic_store_release(&job.release, 1);
  ck_assert_int_eq(pthread_join(t, NULL), 0);
  ck_assert_msg(cached, "the other thread never cached the span");
  ck_assert_msg(key == 0, "the span kept the held key once another thread cached it");
  ck_assert_msg(keyed == 0, "a free into the span another thread cached went by the held key");
  ck_assert_msg(remote, "a free into the span another thread cached was not made a remote free");
  check_span_and_mcentral(s);
}
END_TEST

/* Giving the span back takes the owner's key away: the thread no longer
 * allocates from it, and a free by its key would write the slot's word (or
 * judge it by the slot's bits in the thread's cache, which now describe no
 * word of it).  The frees after it are held like any free into an
 * uncached span.  One object in the span's first word, one in its
 * second: the keyed free treats the word the walk stood on differently. */
START_TEST(test_giving_a_keyed_span_back_takes_the_owners_key_away) {
  const unsigned count = 70; /* two words of 64-byte objects */
  struct mspan *s = owner_keyed_span(64, false, count);
  free_expecting_key(objs[2], true, "the owner's free after the span was keyed");
  objs[2] = NULL;
  mcache_release_all(my_mcache());
  ck_assert_uint_eq(free_key(s), 0);
  ck_assert_uint_eq(s->alloccount, count - 2);
  capture_begin();
  uintptr_t before = keyed_frees();
  gc_free(objs[66]);
  gc_free(objs[3]);
  uintptr_t keyed = keyed_frees() - before;
  const char *report = capture_end();
  ck_assert_msg(report == NULL, "a correct free into the span given back was reported: %s", report);
  if (KEYED_FREES_COUNTED) ck_assert_msg(keyed == 0, "%lu frees into the span given back went by a key", (unsigned long)keyed);
  ck_assert_msg(mcache_holds_free(my_mcache(), s, 66) && mcache_holds_free(my_mcache(), s, 3),
                "a free into the span given back was not held");
  ck_assert_ptr_null(gc_base(objs[66]));
  free_expecting_report(objs[66], "already freed", "a second free into the span given back");
  objs[3] = objs[66] = NULL;
  mcache_flush_held(my_mcache());
  ck_assert(!span_holds_slot(s, 3) && !span_holds_slot(s, 66) && span_holds_slot(s, 4));
  ck_assert_uint_eq(s->alloccount, count - 4);
  check_span_and_mcentral(s);
}
END_TEST

/* Applying the held frees takes the held key away: the entry no longer
 * holds frees for the span.  The free after it opens the entry anew the
 * usual way, and only a free held in the open entry the usual way gives
 * the key again. */
START_TEST(test_applying_the_held_frees_takes_the_held_key_away) {
  struct mspan *s = held_keyed_span(0, 208, false, 8);
  free_expecting_key(objs[2], true, "a free into the span with the held key");
  mcache_flush_held(my_mcache());
  ck_assert_uint_eq(free_key(s), 0);
  ck_assert_uint_eq(s->alloccount, 5);
  free_expecting_key(objs[3], false, "the free that opens the entry again");
  free_expecting_key(objs[4], false, "the first free held in the entry opened again");
  ck_assert_uint_eq(free_key(s), mcache_held_key(my_mcache()));
  free_expecting_key(objs[5], true, "a free after the held key was given again");
  free_expecting_report(objs[5], "already freed", "a second free by the held key given again");
  const struct held_frees *h = &my_mcache()->held[s->sizeclass];
  ck_assert(h->span == s && h->count == 3);
  objs[2] = objs[3] = objs[4] = objs[5] = NULL;
  mcache_flush_held(my_mcache());
  ck_assert_uint_eq(s->alloccount, 2);
  ck_assert(!span_holds_slot(s, 5) && span_holds_slot(s, 6));
  check_span_and_mcentral(s);
}
END_TEST

/* The owner's first free into a span it caches keys the span; the frees
 * after it take the key, and still refuse a second free, a pointer into
 * an object and a pointer past the last slot; giving the span back clears
 * the key. */
START_TEST(test_an_owner_free_keys_its_span_and_keyed_frees_refuse_bad_pointers) {
  const size_t n = size_with_a_tail();
  struct mspan *s = fresh_span_with(0, n, false, 8);
  ck_assert_uint_eq(free_key(s), 0);
  free_expecting_key(objs[1], false, "the owner's first free into a fresh span");
  objs[1] = NULL;
  ck_assert_msg(free_key(s) == (uintptr_t)my_mcache(), "the owner's free did not key its span");
  free_expecting_key(objs[2], true, "the owner's free after the span was keyed");
  ck_assert_ptr_null(gc_base(objs[2]));
  ck_assert_uint_eq(free_key(s), (uintptr_t)my_mcache());

  free_expecting_report(objs[2], "already freed", "a second keyed free");
  objs[2] = NULL;
  free_expecting_report((char *)objs[3] + 8, "inside an object", "a keyed free of a pointer into an object");
  ck_assert_ptr_eq(gc_base(objs[3]), objs[3]);
  free_expecting_report((void *)s->limit, "not an object", "a keyed free past the last slot");

  for (unsigned i = 3; i < 8; i++) {
    free_expecting_key(objs[i], true, "an owner's free into its keyed span");
    ck_assert_ptr_null(gc_base(objs[i]));
    objs[i] = NULL;
  }
  mcache_release_all(my_mcache());
  ck_assert_uint_eq(free_key(s), 0);
  ck_assert_uint_eq(s->alloccount, 1);
  check_span_and_mcentral(s);
}
END_TEST

/* gc_set_finalizer clears the key: the free of that object must take the
 * way that drops its finalizer.  The key stays away once the finalizer is
 * gone, until a free the usual way gives it again. */
START_TEST(test_a_finalizer_on_a_keyed_span_takes_its_key_away) {
  struct mspan *s = owner_keyed_span(64, true, 8);
  ck_assert_int_eq(gc_set_finalizer(objs[3], never_called, NULL), 0);
  ck_assert_uint_eq(free_key(s), 0);
  free_expecting_key(objs[3], false, "the object with a finalizer");
  ck_assert_msg(atomic_load_relaxed(&s->finalizers) == 0, "the freed object kept its finalizer");
  ck_assert_ptr_null(gc_base(objs[3]));
  free_expecting_key(objs[4], false, "the first free after a finalizer was added to the span");
  free_expecting_key(objs[5], true, "a free after the span was keyed again");
  free_expecting_report(objs[5], "already freed", "a second free into the span keyed again");
  objs[3] = objs[4] = objs[5] = NULL;

  struct mspan *held = held_keyed_span(16, 208, false, 6);
  ck_assert_int_eq(gc_set_finalizer(objs[19], never_called, NULL), 0);
  ck_assert_uint_eq(free_key(held), 0);
  free_expecting_key(objs[19], false, "the object with a finalizer in a span with the held key");
  ck_assert_msg(atomic_load_relaxed(&held->finalizers) == 0, "the object freed into a held span kept its finalizer");
  free_expecting_key(objs[20], false, "the first held free after a finalizer was added to the span");
  free_expecting_key(objs[21], true, "a held free after the span was given the held key again");
  ck_assert_uint_eq(my_mcache()->held[held->sizeclass].count, 5);
  objs[19] = objs[20] = objs[21] = NULL;
  mcache_flush_held(my_mcache());
  ck_assert(!span_holds_slot(held, 3) && !span_holds_slot(held, 5));
  gc_collect(); /* never_called would run here */
}
END_TEST

/* A stamp that read no finalizers may land after gc_set_finalizer's clear
 * (its thread between that read and its store while another thread adds
 * the finalizer), and leave a key on a span with a finalizer: free_by_key
 * tests the span's finalizers itself.  The key is put back here as that
 * late stamp would; the object's free must still go the way that drops
 * its finalizer. */
START_TEST(test_a_key_stamped_after_a_finalizer_was_added_does_not_free_that_object) {
  struct mspan *s = owner_keyed_span(64, true, 8);
  ck_assert_int_eq(gc_set_finalizer(objs[3], never_called, NULL), 0);
  atomic_store_relaxed(&s->free_key, (uintptr_t)my_mcache()); /* the late stamp */
  free_expecting_key(objs[3], false, "the object with a finalizer in a span keyed late");
  ck_assert_msg(atomic_load_relaxed(&s->finalizers) == 0, "the freed object kept its finalizer");
  ck_assert_ptr_null(gc_base(objs[3]));
  objs[3] = NULL;

  struct mspan *held = held_keyed_span(16, 208, false, 6);
  ck_assert_int_eq(gc_set_finalizer(objs[19], never_called, NULL), 0);
  atomic_store_relaxed(&held->free_key, mcache_held_key(my_mcache())); /* the late stamp */
  free_expecting_key(objs[19], false, "the object with a finalizer in a span given the held key late");
  ck_assert_msg(atomic_load_relaxed(&held->finalizers) == 0, "the object freed into a held span kept its finalizer");
  ck_assert(mcache_holds_free(my_mcache(), held, 3));
  objs[19] = NULL;
  mcache_flush_held(my_mcache());
  ck_assert(!span_holds_slot(held, 3));
  gc_collect(); /* never_called would run here */
}
END_TEST

/* Typed objects start after a header the keyed free does not allow for,
 * and tiny blocks are left to the collector: neither kind of span gets a
 * key. */
START_TEST(test_typed_and_tiny_spans_get_no_key) {
  const gc_type *type = type_56();
  for (unsigned i = 0; i < 3; i++) objs[i] = gc_alloc_typed(56, type);
  unsigned a = span_at(objs[0]) == span_at(objs[1]) ? 0 : 1;
  struct mspan *typed = span_at(objs[a]);
  ck_assert_uint_eq(typed->cached_by, (uintptr_t)my_mcache());
  gc_free(objs[a]);
  objs[a] = NULL;
  ck_assert_uint_eq(free_key(typed), 0);
  capture_begin();
  gc_free((void *)span_object_addr(typed, slot_of(typed, objs[a + 1])));
  const char *report = capture_end();
  ck_assert_msg(report != NULL, "a free of a typed object's header was not reported");
  ck_assert_ptr_eq(gc_base(objs[a + 1]), objs[a + 1]);

  ck_assert_uint_eq(TINY_SPANCLASS, spanclass_make(sizeclass_of(TINY_SIZE), true));
  objs[4] = gc_alloc_atomic(TINY_SIZE);
  objs[5] = gc_alloc_atomic(TINY_SIZE);
  struct mspan *tiny = span_at(objs[4]);
  ck_assert_uint_eq(tiny->spanclass, TINY_SPANCLASS);
  gc_free(objs[5]);
  ck_assert_uint_eq(free_key(tiny), 0);
  ck_assert_ptr_eq(gc_base(objs[5]), objs[5]); /* left to the collector */
}
END_TEST

/* A mark start clears every key with the world stopped, and no free while
 * the collector marks keys a span again: the keyed free has no deletion
 * barrier and no sweep, and a held free would be applied after the sweep
 * had handed the slot out anew.  The frees meanwhile go the usual way
 * (freed at once, a second one reported); the first free after the cycle
 * sweeps the span and keys it again. */
START_TEST(test_a_mark_takes_the_keys_away_until_it_ends) {
  struct mspan *held = held_keyed_span(8, 208, false, 4);
  struct mspan *s = owner_keyed_span(64, false, 8);
  ck_assert_uint_eq(free_key(held), mcache_held_key(my_mcache()));
  free_expecting_key(objs[2], true, "the owner's free before the mark");
  objs[2] = NULL;
  pthread_t t = collect_holding_after_mark_setup();
  uintptr_t key_at_mark = free_key(s), held_key_at_mark = free_key(held);
  uintptr_t before = keyed_frees();
  gc_free(objs[3]);
  gc_free(objs[10]);
  uintptr_t keyed_in_mark = keyed_frees() - before;
  uintptr_t key_after_free = free_key(s), held_key_after_free = free_key(held);
  bool freed = gc_base(objs[3]) == NULL && gc_base(objs[10]) == NULL;
  bool held_back = mcache_holds_free(my_mcache(), held, 2);
  capture_begin();
  gc_free(objs[3]);
  const char *report = capture_end();
  objs[3] = objs[10] = NULL;
  release_the_mark(t);
  ck_assert_msg(key_at_mark == 0, "the mark started with a span still keyed");
  ck_assert_msg(held_key_at_mark == 0, "the mark started with a span still keyed for held frees");
  ck_assert_msg(keyed_in_mark == 0, "%lu frees while the collector marked went by a key", (unsigned long)keyed_in_mark);
  ck_assert_msg(key_after_free == 0 && held_key_after_free == 0, "a free while the collector marked keyed its span");
  ck_assert_msg(freed && !held_back, "a free while the collector marked was %s", held_back ? "held" : "not made");
  ck_assert_msg(report != NULL, "a second free while the collector marked was not reported");
  ck_assert_uint_eq(s->cached_by, (uintptr_t)my_mcache());
  ck_assert_uint_eq(free_key(s), 0);
  free_expecting_key(objs[4], false, "the first free after the mark");
  ck_assert(!span_needs_sweep(s));
  ck_assert_uint_eq(free_key(s), (uintptr_t)my_mcache());
  free_expecting_key(objs[5], true, "the owner's free after the span was keyed again");
  objs[4] = objs[5] = NULL;
  mcache_release_all(my_mcache());
  ck_assert(!span_holds_slot(held, 2));
  check_span_and_mcentral(s);
  check_span_and_mcentral(held);
}
END_TEST

/* Another thread never takes the owner's key: its frees into the keyed
 * span are remote frees, and a second one is refused. */
START_TEST(test_frees_by_another_thread_into_a_keyed_span_are_remote) {
  struct mspan *s = owner_keyed_span(64, true, 8);
  free_from_other_thread(objs[4]);
  ck_assert(bitmap_get(s->freedbits, 4));
  ck_assert_uint_eq(free_key(s), (uintptr_t)my_mcache());
  capture_begin();
  gc_free(objs[4]);
  const char *report = capture_end();
  ck_assert_msg(report != NULL, "the owner's keyed free of an object freed remotely was not reported");
  objs[4] = NULL;
  mcache_release_all(my_mcache());
  ck_assert(!span_holds_slot(s, 4));
  check_span_and_mcentral(s);
}
END_TEST

/* The owner's key stands for has_holes (a keyed free does not set it):
 * the walk coming back over the span clears has_holes and must take the
 * key away, or a free behind the walk afterwards would go by the key and
 * leave its slot unused until the span is given back. */
START_TEST(test_the_walk_coming_back_takes_the_owners_key_away) {
  const size_t n = 64;
  unsigned per_span = sizeclass_nelems[sizeclass_of(n)];
  struct mspan *s = fresh_span_with(0, n, true, per_span); /* the whole span */
  ck_assert_uint_ge(s->nwords, 2);
  free_expecting_key(objs[0], false, "the owner's first free into a fresh span");
  ck_assert_msg(free_key(s) == (uintptr_t)my_mcache(), "the owner's free did not key its span");
  /* The span is full but for objs[0]'s slot: the walk comes back to it. */
  void *again = gc_alloc_atomic(n);
  ck_assert_ptr_eq(again, objs[0]);
  objs[0] = again;
  ck_assert_uint_eq(s->cur_word, 0);
  ck_assert_uint_eq(s->has_holes, 0);
  ck_assert_msg(free_key(s) == 0, "the walk came back over the span and left the owner's key");
  unsigned behind = 64; /* word 1: not the word in use */
  free_expecting_key(objs[behind], false, "the owner's free after the walk came back");
  objs[behind] = NULL;
  ck_assert_msg(s->has_holes, "an owner's free after the walk came back left has_holes clear");
  for (unsigned i = 0; i < per_span; i++) {
    if (objs[i]) gc_free(objs[i]);
    objs[i] = NULL;
  }
  mcache_release_all(my_mcache());
  check_span_and_mcentral(s);
}
END_TEST

/* A span record can go back to the page heap with a key on it, after a
 * double free: a held key stays while the thread's entry names the span,
 * and other threads' second frees of the objects held there can empty
 * the span (their frees find them allocated: held frees stay in
 * allocbits until applied), which beyond its class's quota of empty spans
 * goes back to the page heap at once.  Each of those frees is the only
 * one its thread makes, so none of them stamps a held key of its own
 * over the first thread's.  The record's next use must start without
 * the key (mspan_init_in_use_locked): here a large object's span, which
 * no thread caches (caching a small span clears the key as well).  The
 * stale key, left, would only send the large object's frees to a held
 * entry that never names a large span; the test pins the state. */
START_TEST(test_a_record_reused_after_double_frees_emptied_it_starts_without_a_key) {
  const size_t n = 144; /* 5 pages a span: a large object can take the record */
  unsigned spc = spanclass_for(n, false);
  size_t per_span = sizeclass_nelems[spanclass_sizeclass(spc)];
  unsigned keep = mcentral_empty_keep(spc);
  size_t quota = per_span * keep;
  ck_assert_uint_le(quota + 2, MAX_OBJS);
  gc_collect(); /* the sweep gives back the empty spans earlier tests left */
  /* keep spans of the class, emptied by another thread: the quota filled. */
  objs[0] = fresh_span_first(n, false);
  for (size_t i = 1; i < quota + 2; i++) objs[i] = gc_alloc(n);
  struct mspan *s = span_at(objs[quota]);
  ck_assert_msg(objs[quota] == (void *)s->base && span_at(objs[quota + 1]) == s, "the objects did not fill whole spans");
  objs[MAX_OBJS - 1] = gc_alloc(s->npages * PAGE_SIZE); /* in use after s: s's pages do not merge with the rest */
  mcache_release_all(my_mcache());
  free_objs_from_other_thread(quota);
  ck_assert_uint_eq(class_nempty(spc), keep);

  void *a = objs[quota], *b = objs[quota + 1];
  free_expecting_key(a, false, "the free that opens the entry");
  free_expecting_key(b, false, "the first free held in the open entry");
  ck_assert_uint_eq(free_key(s), mcache_held_key(my_mcache()));
  uintptr_t incarnation = atomic_load_relaxed(&s->incarnation);
  free_from_other_thread(a); /* the double frees */
  free_from_other_thread(b);
  objs[quota] = objs[quota + 1] = NULL;
  ck_assert_msg(atomic_load_relaxed(&s->state) != MSPAN_IN_USE || atomic_load_relaxed(&s->incarnation) != incarnation,
                "the span emptied by the double frees stayed in use");

  void *large = gc_alloc(s->npages * PAGE_SIZE);
  ck_assert_msg(span_at(large) == s, "the large object did not take the record: the test tried nothing");
  ck_assert_msg(free_key(s) == 0, "the record was put to use again with the key it had when freed");
  gc_free(large);
  mcache_flush_held(my_mcache()); /* the frees held for the record's old use: dropped */
  ck_assert(mheap_is_valid());
}
END_TEST

/* mcache_stamp_held_key and mcentral_cache_span race: the stamp reads the
 * span uncached, then stores the held key; the caching stores cached_by,
 * then clears the key.  Without the stamp's second look at cached_by
 * after its store, a stamp whose first look came before the caching and
 * whose store came after the clear leaves the held key on a span another
 * thread caches.  Here one thread's held frees into an uncached span and
 * another thread's caching of it (its refill, the class's only partial
 * span) start together, at delays that sweep across each other, round
 * after round; after each round, the span cached, no key of the freeing
 * thread's may be on it.  The caching thread frees what it allocated and
 * gives the span back, which clears the key for the next round.  The two
 * threads are pinned to two CPUs: sharing one, they never met in the
 * window (with the second look removed, 0 in 400000 rounds, where on two
 * CPUs it was 7 to 650 in a million, and 2 s run 300000 to 1300000). */
#define STAMP_RACE_NS 2000000000ull
#define STAMP_RACE_SIZE 16 /* 512 to a span, scanned (not tiny) */
#define STAMP_RACE_DELAYS 256 /* the freeing thread's delays, against 4 of the caching thread's */

struct stamp_race {
  struct mspan *s;
  int cpu;              /* the caching thread's, or -1: not pinned */
  atomic_word round;    /* started by the freeing thread */
  atomic_word freed;    /* its free of the round made */
  atomic_word done;     /* the caching thread's round ended */
  atomic_word stop;
  atomic_word cached;   /* rounds in which the caching thread cached s */
  atomic_word outlived; /* rounds that ended with s cached and the held key on it */
};

static void spin_for(unsigned n) {
  for (volatile unsigned i = 0; i < n; i++) {}
}

/* Until *w reaches v: spinning, so that both threads start a round
 * together, but yielding after a while: with as many threads as CPUs, a
 * spinner can otherwise burn its time slice while the other waits for a
 * CPU.  false if stop was set first. */
static bool await_round(const atomic_word *w, uintptr_t v, const atomic_word *stop) {
  for (unsigned spins = 0; atomic_load_acquire(w) < v; spins++) {
    if (stop && atomic_load_relaxed(stop)) return false;
    if (spins > 2000) sched_yield();
  }
  return true;
}

/* Pin the calling thread to cpu (when not -1). */
static void pin_to_cpu(int cpu) {
  if (cpu < 0) return;
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  ck_assert_int_eq(pthread_setaffinity_np(pthread_self(), sizeof(set), &set), 0);
}

/* The first and second CPUs the calling thread may run on, or -1. */
static void two_cpus(const cpu_set_t *allowed, int cpu[2]) {
  cpu[0] = cpu[1] = -1;
  for (int i = 0, found = 0; i < CPU_SETSIZE && found < 2; i++)
    if (CPU_ISSET(i, allowed)) cpu[found++] = i;
  if (cpu[1] < 0) cpu[0] = -1;
}

static void *stamp_race_cacher(void *arg) {
  struct stamp_race *r = arg;
  gc_thread_register();
  pin_to_cpu(r->cpu);
  struct mcache *c = thread_mcache();
  for (uintptr_t i = 1;; i++) {
    if (!await_round(&r->round, i, &r->stop)) break;
    spin_for((unsigned)(i / STAMP_RACE_DELAYS % 4) * 40);
    void *x = gc_alloc(STAMP_RACE_SIZE);
    await_round(&r->freed, i, NULL);
    if (span_of_heap((uintptr_t)x) == r->s && atomic_load_relaxed(&r->s->cached_by) == (uintptr_t)c) {
      atomic_fetch_add(&r->cached, 1);
      if (free_key(r->s) != 0) atomic_fetch_add(&r->outlived, 1);
    }
    gc_free(x);
    mcache_release_all(c);
    atomic_store_release(&r->done, i);
  }
  gc_thread_unregister();
  return NULL;
}

START_TEST(test_a_held_key_stamped_while_another_thread_caches_the_span_does_not_outlive_the_caching) {
  unsigned per_span = sizeclass_nelems[sizeclass_of(STAMP_RACE_SIZE)];
  struct stamp_race r = {0};
  cpu_set_t allowed;
  ck_assert_int_eq(pthread_getaffinity_np(pthread_self(), sizeof(allowed), &allowed), 0);
  int cpu[2];
  two_cpus(&allowed, cpu);
  pin_to_cpu(cpu[0]);
  r.cpu = cpu[1];
  pthread_t t;
  ck_assert_int_eq(pthread_create(&t, NULL, stamp_race_cacher, &r), 0);
  uint64_t start = now_ns();
  uintptr_t round = 0;
  unsigned spans = 0;
  while (now_ns() - start < STAMP_RACE_NS) {
    /* A fresh span, all but its last slot allocated, given back; the first
     * free opens the entry, each later one is held in it and stamps. */
    struct mspan *s = fresh_span_with(0, STAMP_RACE_SIZE, false, per_span - 1);
    mcache_release_all(my_mcache());
    r.s = s;
    spans++;
    gc_free(objs[0]);
    for (unsigned k = 1; k < per_span - 1 && now_ns() - start < STAMP_RACE_NS; k++) {
      round++;
      atomic_store_release(&r.round, round);
      spin_for((unsigned)(round % STAMP_RACE_DELAYS) * 2);
      gc_free(objs[k]);
      atomic_store_release(&r.freed, round);
      await_round(&r.done, round, NULL);
    }
    mcache_flush_held(my_mcache());
    my_mcache()->free_memo_on = false; /* the review at the flush may turn it on: frees through it stamp nothing */
    memset(objs, 0, per_span * sizeof(objs[0]));
  }
  atomic_store_release(&r.stop, 1);
  ck_assert_int_eq(pthread_join(t, NULL), 0);
  ck_assert_int_eq(pthread_setaffinity_np(pthread_self(), sizeof(allowed), &allowed), 0);
  fprintf(stderr,
          "stamp race: %lu rounds over %u spans%s, span cached in %lu, key outlived the caching in %lu\n",
          (unsigned long)round, spans, cpu[0] < 0 ? " (one CPU: the threads could not race)" : "",
          (unsigned long)r.cached, (unsigned long)r.outlived);
  ck_assert_msg(r.outlived == 0, "in %lu rounds the held key outlived another thread's caching of the span",
                (unsigned long)r.outlived);
  ck_assert_msg(r.cached * 2 >= round, "the other thread cached the span in only %lu of %lu rounds: the test tried less than it says",
                (unsigned long)r.cached, (unsigned long)round);
}
END_TEST

/* Owner's frees spread over a full span of scanned objects holding
 * garbage, all but the first by the key, then as many allocations: each
 * must come from the same span (no freed slot left behind for want of
 * has_holes) and be zero (none handed out dirty for want of needzero,
 * which the keyed free no longer sets). */
static void keyed_frees_come_back_zeroed(size_t n, unsigned stride, unsigned first) {
  unsigned per_span = sizeclass_nelems[sizeclass_of(n)];
  ck_assert_uint_le(per_span, MAX_OBJS);
  struct mspan *s = fresh_span_with(0, n, false, per_span);
  for (unsigned i = 0; i < per_span; i++) memset(objs[i], 0xEE, n);
  unsigned freed = 0;
  uintptr_t before = keyed_frees();
  for (unsigned i = first % per_span; i < per_span; i += stride) {
    gc_free(objs[i]);
    objs[i] = NULL;
    freed++;
  }
  uintptr_t keyed = keyed_frees() - before;
  if (KEYED_FREES_COUNTED)
    ck_assert_msg(keyed + 1 == freed, "%lu of %u frees went by the key, want all but the first", (unsigned long)keyed, freed);
  for (unsigned k = 0; k < freed; k++) {
    void *p = gc_alloc(n);
    ck_assert_msg(span_at(p) == s, "allocation %u of %u left the span: a freed slot was passed over", k, freed);
    ck_assert_msg(is_all(p, n, 0), "allocation %u of %u handed out memory that is not zero", k, freed);
    unsigned idx = (unsigned)(((uintptr_t)p - s->base) / s->elemsize);
    ck_assert_ptr_null(objs[idx]);
    objs[idx] = p;
  }
  for (unsigned i = 0; i < per_span; i++) {
    gc_free(objs[i]);
    objs[i] = NULL;
  }
  mcache_release_all(my_mcache());
}

START_TEST(test_keyed_frees_over_a_span_come_back_zeroed_in_it) {
  keyed_frees_come_back_zeroed(64, 1, 0);
  keyed_frees_come_back_zeroed(64, 3, 1);
  keyed_frees_come_back_zeroed(64, 7, 70);
  keyed_frees_come_back_zeroed(32, 5, 2);
  keyed_frees_come_back_zeroed(208, 2, 0);
  keyed_frees_come_back_zeroed(48, 11, 100);
}
END_TEST

/* The frees held for an uncached span x stay held while the thread moves
 * from word to word of its own span of the class, and are applied when it
 * takes a new span (mcache_refill), never letting it cache x while the
 * entry names x. */
START_TEST(test_held_frees_stay_held_across_word_moves_until_a_span_is_taken) {
  const size_t n = 64;
  unsigned per_span = sizeclass_nelems[sizeclass_of(n)];
  struct mspan *x = fresh_span_with(0, n, false, per_span);
  mcache_release_all(my_mcache());
  static void *more[3 * MAX_OBJS];
  ck_assert_uint_le(3 * per_span, 3 * MAX_OBJS);
  more[0] = gc_alloc(n); /* caches another span */
  struct mspan *cur = span_at(more[0]);
  ck_assert_ptr_ne(cur, x);
  for (unsigned i = 0; i + 1 < per_span; i++) { /* all but one of x: held */
    gc_free(objs[i]);
    objs[i] = NULL;
  }
  const struct held_frees *h = &my_mcache()->held[x->sizeclass];
  ck_assert_ptr_eq(h->span, x);
  ck_assert_uint_eq(h->count, per_span - 1);
  unsigned moves = 0, new_spans = 0;
  uintptr_t word = cur->cur_word;
  for (unsigned k = 1; k < 3 * per_span; k++) {
    more[k] = gc_alloc(n);
    ck_assert_ptr_nonnull(more[k]);
    struct mspan *s = span_at(more[k]);
    if (s != cur) {
      new_spans++;
      cur = s;
      ck_assert_msg(h->span == NULL, "a new span was taken with the entry not applied");
    } else if (s->cur_word != word) {
      moves++;
      ck_assert_msg(new_spans > 0 || h->span == x, "a move to the next word applied the held frees");
    }
    word = s->cur_word;
    ck_assert_msg(!(s == x && h->span == x), "x was cached while the entry names it");
    ck_assert(is_all(more[k], n, 0));
  }
  ck_assert_uint_gt(moves, 0);
  ck_assert_uint_gt(new_spans, 0);
  for (unsigned k = 0; k < 3 * per_span; k++) gc_free(more[k]);
  gc_free(objs[per_span - 1]);
  objs[per_span - 1] = NULL;
  mcache_release_all(my_mcache());
  ck_assert(mheap_is_valid());
}
END_TEST

/* ---- tiny ---- */

static void tiny_reset(void) { mcache_release_all(my_mcache()); }

START_TEST(test_tiny_allocator_packs_small_atomic_objects_into_one_block) {
  tiny_reset();
  for (int i = 0; i < 4; i++) objs[i] = gc_alloc_atomic(4);
  struct mspan *s = span_at(objs[0]);
  ck_assert_uint_eq(s->spanclass, TINY_SPANCLASS);
  for (int i = 0; i < 4; i++) {
    ck_assert_ptr_eq(objs[i], (char *)objs[0] + 4 * i);
    ck_assert_ptr_eq(gc_base(objs[i]), objs[0]);
  }
  objs[4] = gc_alloc_atomic(4); /* the block is full: a new one */
  ck_assert_ptr_ne(gc_base(objs[4]), objs[0]);
}
END_TEST

static uintptr_t tiny_align(size_t n) { return !(n & 7) ? 8 : !(n & 3) ? 4 : !(n & 1) ? 2 : 1; }

START_TEST(test_tiny_objects_are_aligned_to_their_size_and_packed_after_a_byte) {
  for (size_t n = 1; n <= TINY_SIZE; n++) {
    tiny_reset();
    objs[0] = gc_alloc_atomic(1);
    objs[1] = gc_alloc_atomic(n);
    uintptr_t p = (uintptr_t)objs[1];
    ck_assert_msg(p % tiny_align(n) == 0, "%zu-byte tiny object at %p", n, objs[1]);
    bool fits = tiny_align(n) + n <= TINY_SIZE; /* after 1 byte, n goes at offset align(n) */
    if (fits) ck_assert_msg(gc_base(objs[1]) == objs[0], "%zu-byte object not packed after a byte", n);
    ck_assert(p >= (uintptr_t)objs[0] + 1 || p + n <= (uintptr_t)objs[0]);
  }
}
END_TEST

START_TEST(test_tiny_block_with_less_room_is_replaced) {
  tiny_reset();
  objs[0] = gc_alloc_atomic(12); /* block A, 4 bytes left */
  objs[1] = gc_alloc_atomic(8);  /* does not fit: block B, 8 left */
  objs[2] = gc_alloc_atomic(4);  /* goes to B, which has more room */
  ck_assert_ptr_ne(gc_base(objs[1]), objs[0]);
  ck_assert_ptr_eq(objs[2], (char *)objs[1] + 8);
}
END_TEST

static struct tiny_obj {
  uintptr_t p;
  size_t n;
} tiny_objs[TINY_RANDOM_COUNT];

static int cmp_tiny(const void *a, const void *b) {
  uintptr_t x = ((const struct tiny_obj *)a)->p, y = ((const struct tiny_obj *)b)->p;
  return x < y ? -1 : x > y;
}

START_TEST(test_tiny_objects_never_overlap) {
  unsigned seed = 12345;
  for (size_t i = 0; i < TINY_RANDOM_COUNT; i++) {
    size_t n = 1 + (size_t)rand_r(&seed) % TINY_SIZE;
    void *p = gc_alloc_atomic(n);
    ck_assert(p != NULL);
    ck_assert((uintptr_t)p % tiny_align(n) == 0);
    memset(p, (int)(i & 0xFF), n);
    tiny_objs[i] = (struct tiny_obj){(uintptr_t)p, n};
  }
  for (size_t i = 0; i < TINY_RANDOM_COUNT; i++)
    ck_assert_msg(is_all((void *)tiny_objs[i].p, tiny_objs[i].n, (unsigned char)(i & 0xFF)),
                  "tiny object %zu overwritten", i);
  qsort(tiny_objs, TINY_RANDOM_COUNT, sizeof(tiny_objs[0]), cmp_tiny);
  for (size_t i = 1; i < TINY_RANDOM_COUNT; i++)
    ck_assert_msg(tiny_objs[i - 1].p + tiny_objs[i - 1].n <= tiny_objs[i].p, "tiny objects %p+%zu and %p overlap",
                  (void *)tiny_objs[i - 1].p, tiny_objs[i - 1].n, (void *)tiny_objs[i].p);
}
END_TEST

/* An atomic object of TINY_SIZE bytes takes a tiny block of its own
 * (gc_alloc_atomic skips alloc_tiny for it): the block being packed stays
 * the one the next small object goes to, and gc_free leaves the object to
 * the collector like any tiny object, silently. */
START_TEST(test_atomic_object_of_tiny_size_fills_a_block_alone) {
  tiny_reset();
  objs[0] = gc_alloc_atomic(4); /* block A, 12 bytes left */
  objs[1] = gc_alloc_atomic(TINY_SIZE);
  ck_assert_uint_eq(span_at(objs[1])->spanclass, TINY_SPANCLASS);
  ck_assert_ptr_ne(gc_base(objs[1]), objs[0]);
  ck_assert_ptr_eq(gc_base(objs[1]), objs[1]);
  objs[2] = gc_alloc_atomic(4);
  ck_assert_ptr_eq(objs[2], (char *)objs[0] + 4);
  memset(objs[1], 0x5A, TINY_SIZE);
  capture_begin();
  gc_free(objs[1]);
  const char *report = capture_end();
  ck_assert_msg(report == NULL, "gc_free of a tiny object reported: %s", report);
  ck_assert_ptr_eq(gc_base(objs[1]), objs[1]); /* still allocated: the collector frees it */
  ck_assert(is_all(objs[1], TINY_SIZE, 0x5A));
}
END_TEST

START_TEST(test_atomic_objects_above_tiny_size_are_not_packed) {
  objs[0] = gc_alloc_atomic(TINY_SIZE + 1);
  struct mspan *s = span_at(objs[0]);
  ck_assert_uint_eq(s->spanclass, spanclass_for(TINY_SIZE + 1, true));
  ck_assert_ptr_eq(gc_base(objs[0]), objs[0]);
  ck_assert_uint_eq(gc_size(objs[0]), sizeclass_size[sizeclass_of(TINY_SIZE + 1)]);
}
END_TEST

/* ---- runner ---- */

static TCase *tcase(const char *name) {
  TCase *tc = tcase_create(name);
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_set_timeout(tc, 60);
  return tc;
}

static Suite *mcache_suite(void) {
  Suite *s = suite_create("mcache");

  TCase *fastpath = tcase("fastpath");
  tcase_add_test(fastpath, test_fast_path_hands_out_distinct_slots_in_address_order);
  tcase_add_test(fastpath, test_refill_moves_to_next_span_and_files_used_up_span_full);
  tcase_add_test(fastpath, test_release_all_returns_every_cached_span);
  tcase_add_test(fastpath, test_first_refill_after_a_collection_gives_back_every_cached_span);
  tcase_add_test(fastpath, test_cache_slack_follows_caching_sweeps_and_giving_back);
  suite_add_tcase(s, fastpath);

  TCase *kinds = tcase("kinds");
  tcase_add_test(kinds, test_allocation_kind_picks_span_class);
  tcase_add_test(kinds, test_realloc_keeps_kind);
  suite_add_tcase(s, kinds);

  TCase *local = tcase("local_free");
  tcase_add_test(local, test_owner_free_makes_slot_reusable_and_zeroed);
  tcase_add_test(local, test_owner_free_behind_cursor_is_reused_before_span_is_given_back);
  tcase_add_test(local, test_owner_free_into_a_span_left_unswept_sweeps_it_first);
  suite_add_tcase(s, local);

  TCase *remote = tcase("remote_free");
  tcase_add_test(remote, test_remote_free_of_cached_span_is_folded_when_span_is_given_back);
  tcase_add_test(remote, test_remote_free_of_uncached_span_takes_effect_at_once);
  tcase_add_test(remote, test_remote_free_of_last_object_keeps_span_for_its_class);
  tcase_add_test(remote, test_emptied_spans_beyond_the_quota_return_to_page_heap);
  tcase_add_test(remote, test_remote_double_free_of_cached_span_is_refused);
  tcase_add_test(remote, test_remotely_freed_slot_is_zeroed_when_reused);
  tcase_add_test(remote, test_owner_sees_remote_free_in_its_current_word);
  tcase_add_test(remote, test_remote_free_of_object_swept_before_fold_is_not_reported);
  tcase_add_test(remote, test_fold_after_sweep_never_frees_slot_handed_out_again);
  suite_add_tcase(s, remote);

  TCase *held = tcase("held_frees");
  tcase_add_test(held, test_free_into_uncached_span_is_held_and_applied_at_refill);
  tcase_add_test(held, test_held_frees_are_applied_when_the_thread_frees_into_another_span);
  tcase_add_test(held, test_frees_alternating_between_size_classes_are_held_side_by_side);
  tcase_add_test(held, test_scan_and_noscan_spans_of_a_size_class_take_turns_in_its_entry);
  tcase_add_test(held, test_refill_applies_the_frees_held_for_its_class);
  tcase_add_test(held, test_refill_takes_a_new_span_over_the_one_the_thread_is_freeing_into);
  tcase_add_test(held, test_refill_sweeps_for_room_before_growing_the_heap_to_pass_over_a_span);
  tcase_add_test(held, test_refill_takes_a_small_span_the_thread_is_freeing_into);
  tcase_add_test(held, test_a_ring_of_objects_is_allocated_whole_spans_at_a_time);
  tcase_add_test(held, test_refill_with_no_partial_span_and_no_heap_to_grow_reuses_the_held_slots);
  tcase_add_test(held, test_held_free_is_dropped_after_a_collection);
  tcase_add_test(held, test_second_free_between_a_mark_and_its_sweep_is_reported);
  tcase_add_test(held, test_free_after_a_mark_does_not_join_the_frees_held_before_it);
  tcase_add_test(held, test_free_during_a_stale_large_claim_finds_the_span_swept);
  suite_add_tcase(s, held);

  TCase *memo = tcase("free_memo");
  tcase_add_test(memo, test_free_memo_is_tried_for_runs_and_not_for_alternating_spans);
  tcase_add_test(memo, test_a_run_of_frees_of_typed_objects_turns_the_memo_off);
  tcase_add_test(memo, test_a_memo_left_on_without_reviews_is_turned_off_by_refills);
  tcase_add_test(memo, test_a_run_of_frees_the_memo_refuses_turns_it_off);
  tcase_add_test(memo, test_frees_through_the_memo_are_held_and_applied);
  tcase_add_test(memo, test_bad_frees_into_the_memo_span_are_reported_and_ignored);
  tcase_add_test(memo, test_typed_objects_are_not_freed_at_their_slot_start_through_the_memo);
  tcase_add_test(memo, test_a_free_through_the_memo_drops_the_objects_finalizer);
  tcase_add_test(memo, test_frees_into_the_memo_span_cached_by_another_thread_go_the_usual_way);
  tcase_add_test(memo, test_applying_the_held_frees_forgets_the_memo);
  tcase_add_test(memo, test_a_memo_whose_entry_does_not_name_its_span_is_refused);
  tcase_add_test(memo, test_mark_start_forgets_the_free_memo);
  tcase_add_test(memo, test_rings_freed_through_memos_while_collections_run_stay_intact);
  suite_add_tcase(s, memo);

  TCase *key = tcase("free_key");
  tcase_add_checked_fixture(key, free_memo_off, NULL);
  tcase_add_test(key, test_an_owner_free_keys_its_span_and_keyed_frees_refuse_bad_pointers);
  tcase_add_test(key, test_a_finalizer_on_a_keyed_span_takes_its_key_away);
  tcase_add_test(key, test_a_key_stamped_after_a_finalizer_was_added_does_not_free_that_object);
  tcase_add_test(key, test_typed_and_tiny_spans_get_no_key);
  tcase_add_test(key, test_a_mark_takes_the_keys_away_until_it_ends);
  tcase_add_test(key, test_frees_by_another_thread_into_a_keyed_span_are_remote);
  tcase_add_test(key, test_the_walk_coming_back_takes_the_owners_key_away);
  tcase_add_test(key, test_frees_by_the_held_key_are_held_and_applied);
  tcase_add_test(key, test_caching_a_span_takes_its_held_key_away);
  tcase_add_test(key, test_giving_a_keyed_span_back_takes_the_owners_key_away);
  tcase_add_test(key, test_applying_the_held_frees_takes_the_held_key_away);
  tcase_add_test(key, test_a_record_reused_after_double_frees_emptied_it_starts_without_a_key);
  tcase_add_test(key, test_a_held_key_stamped_while_another_thread_caches_the_span_does_not_outlive_the_caching);
  tcase_add_test(key, test_keyed_frees_over_a_span_come_back_zeroed_in_it);
  tcase_add_test(key, test_held_frees_stay_held_across_word_moves_until_a_span_is_taken);
  suite_add_tcase(s, key);

  TCase *tiny = tcase("tiny");
  tcase_add_test(tiny, test_tiny_allocator_packs_small_atomic_objects_into_one_block);
  tcase_add_test(tiny, test_tiny_objects_are_aligned_to_their_size_and_packed_after_a_byte);
  tcase_add_test(tiny, test_tiny_block_with_less_room_is_replaced);
  tcase_add_test(tiny, test_tiny_objects_never_overlap);
  tcase_add_test(tiny, test_atomic_object_of_tiny_size_fills_a_block_alone);
  tcase_add_test(tiny, test_atomic_objects_above_tiny_size_are_not_packed);
  suite_add_tcase(s, tiny);

  return s;
}

int main(void) {
  SRunner *sr = srunner_create(mcache_suite());
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
