/*
 * sweep.c: sweep generations, the background sweeper, and large objects.
 *
 * After a mark, every in-use span is unswept (mark termination adds 2 to
 * mheap_sweepgen; see mspan.h).  Three kinds of sweepers then race, and the
 * sweepgen claim (sg-2 -> sg-1) lets exactly one sweep each span:
 *   - the allocator, lazily: mcentral sweeps unswept spans before it hands
 *     one out, and the owner of a cached span sweeps it before entering a
 *     new word (alloc/mcentral.c);
 *   - the background sweeper thread, which walks the heap after each cycle;
 *   - sweep_finish, called before the next cycle starts, which walks the
 *     heap to sweep whatever is left (usually nothing).
 * A large span is swept by a CAS on its sweepgen alone: unmarked, it is
 * freed (unless gc_free got there first: the has_freed exchange decides);
 * marked, its mark bit is cleared.
 *
 * Heap walk: arenas in address order, a span at a time, using the span map
 * without a lock; sweepers re-check a span's state after claiming it.
 */
#include "gc/sweep.h"

#include <pthread.h>

#include "alloc/arena.h"
#include "alloc/heaplive.h"
#include "alloc/mcentral.h"
#include "alloc/mheap.h"
#include "alloc/scavenger.h"
#include "gc/finalizer.h"
#include "runtime/forkguard.h"
#include "runtime/os.h"
#include "runtime/throw.h"

/* The background sweeper runs at this niceness and yields the CPU every
 * SWEEPER_YIELD_NS (the reason is in gc/mark.c, "Marking in the
 * background"). */
#define SWEEPER_NICE 10
#define SWEEPER_YIELD_NS 100000

static atomic_word large_freed, large_freed_bytes;

struct test_hold sweep_hold_before_span, sweep_hold_in_recycled_claim, sweep_hold_after_claim;

/* The sweep generation a heap walk (the background sweeper's or
 * sweep_finish's) last went through from start to end while it lasted:
 * then every span unswept at its start has been swept, or is being swept
 * by whoever claimed it. */
static atomic_word walked_generation = SWEEPGEN_START; /* nothing to sweep yet */

static void walk_and_sweep(void (*cb)(struct mspan *, void *), void *ctx) {
  uintptr_t sg = atomic_load_acquire(&mheap_sweepgen);
  arena_walk_spans(atomic_load_relaxed(&arena_lo), atomic_load_relaxed(&arena_hi), cb, ctx);
  if (atomic_load_acquire(&mheap_sweepgen) != sg) return;
  /* Only forward: a walk of an older generation that ends late (the
   * sweeper preempted) must not undo a newer one's record. */
  for (uintptr_t w = atomic_load_acquire(&walked_generation); w < sg; w = atomic_load_acquire(&walked_generation))
    if (atomic_cas(&walked_generation, w, sg)) break;
}

uintptr_t sweep_walked_generation(void) { return atomic_load_acquire(&walked_generation); }

static pthread_mutex_t sweeper_mutex = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t sweeper_cond = PTHREAD_COND_INITIALIZER;
static uint64_t sweeper_requested;   /* under sweeper_mutex */

static void sweep_large_guarded(struct mspan *s, bool hand_over) {
  uintptr_t sg = atomic_load_acquire(&mheap_sweepgen);
  uintptr_t incarnation = atomic_load_acquire(&s->incarnation);
  atomic_fetch_add(&sweeps_in_progress, 1);
  if (!atomic_cas(&s->sweepgen, sg - 2, sg - 1)) {
    atomic_fetch_sub(&sweeps_in_progress, 1);
    return;
  }
  test_hold_point(&sweep_hold_after_claim);
  /* A claim on a small span does not keep the class from sweeping it (a
   * refill sweeps the spans of its lists whatever their sweepgen) and
   * freeing it, and the record from being reused, perhaps for a large
   * span, before the check below: a new use of the record (at sg,
   * unmarked) is not ours, and sweeping it as ours freed a live large
   * object.  Within one incarnation a record keeps its class, so an
   * unchanged incarnation and a large class say the claim was on this
   * large span.  The class is read once, before the incarnation, and that
   * one reading decides both here and below. */
  bool large = span_is_large(s);
  if (large && atomic_load_acquire(&s->incarnation) != incarnation) {
    atomic_cas(&s->sweepgen, sg - 1, sg - 2); /* fails: the new use is at sg */
    atomic_fetch_sub(&sweeps_in_progress, 1);
    return;
  }
  /* The class was read before the claim, from a record the walk found
   * without a lock: had the record been recycled as a small span since
   * (the background sweeper is not stopped for marks, and whole cycles may
   * pass between its look and this claim), it is not ours to sweep here.
   * The claim is given back by a CAS: a class's sweeper takes a listed
   * span without looking at its sweepgen, and may have swept it
   * meanwhile; storing sg - 2 over its sg had it swept twice, the second
   * time with the marks cleared.  sweeps_in_progress stays raised until
   * the span is swept, so no mark starts with it unswept.  Meanwhile the
   * class's own sweeps of the span wait for the claim to be given back
   * (alloc/mcentral.c, wait_out_claim_locked): nothing may take a span at
   * sg - 1 for swept.  A claimed large span of the incarnation checked
   * above can change no more (gc_free waits for the claim, see
   * sweep_take_large_for_free). */
  if (!large) {
    test_hold_point(&sweep_hold_in_recycled_claim);
    atomic_cas(&s->sweepgen, sg - 1, sg - 2);
    mcentral_sweep_any(s, hand_over);
    atomic_fetch_sub(&sweeps_in_progress, 1);
    return;
  }
  finalizers_sweep_span(s, UINT32_MAX); /* may mark it */
  bool marked = atomic_load_relaxed(&s->markbits[0]) & 1;
  atomic_store_relaxed(&s->markbits[0], 0);
  /* Freed by gc_free during the mark: counted as freed then, released now. */
  /* sweeps_in_progress stays raised until the span is freed: a mark must
   * not start while its record and bitmaps go back (gc/collector.c). */
  if (atomic_load_acquire(&s->has_freed) == LARGE_FREED_RELEASE_AT_SWEEP) {
    atomic_store_relaxed(&s->has_freed, LARGE_FREED);
    atomic_store_release(&s->sweepgen, sg);
    mheap_free_span(s);
    atomic_fetch_sub(&sweeps_in_progress, 1);
    return;
  }
  /* Dead.  gc_free may race to free it too: one exchange wins.  A gc_free
   * that won took the sweep first (sweep_take_large_for_free) or is waiting
   * for this one to end, so the record is still ours here. */
  bool ours = !marked && atomic_cas(&s->has_freed, 0, LARGE_FREED);
  atomic_store_release(&s->sweepgen, sg);
  if (ours) {
    uintptr_t bytes = s->npages * PAGE_SIZE;
    heap_live_sub(bytes);
    atomic_fetch_add(&large_freed, 1);
    atomic_fetch_add(&large_freed_bytes, bytes);
    mheap_free_span(s);
  }
  atomic_fetch_sub(&sweeps_in_progress, 1);
}

void sweep_take_large_for_free(struct mspan *s) {
  uintptr_t sg = atomic_load_relaxed(&mheap_sweepgen);
  for (;;) {
    uintptr_t g = atomic_load_acquire(&s->sweepgen);
    if (g == sg) return;
    if (g == sg - 2 && atomic_cas(&s->sweepgen, sg - 2, sg)) return;
    cpu_relax(); /* sg - 1: a sweeper has it, and will leave it to us */
  }
}

/* No fork in the middle: the child would wait for sweeps_in_progress to
 * drop for ever (runtime/forkguard.h). */
void sweep_large_span(struct mspan *s, bool hand_over) {
  fork_guard_enter();
  sweep_large_guarded(s, hand_over);
  fork_guard_leave();
}

void sweep_span(struct mspan *s, bool hand_over) {
  if (atomic_load_acquire(&s->state) != MSPAN_IN_USE) return;
  if (atomic_load_relaxed(&s->sweepgen) != atomic_load_acquire(&mheap_sweepgen) - 2) return;
  test_hold_point(&sweep_hold_before_span);
  if (spanclass_sizeclass(span_class_unlocked(s)) == 0) sweep_large_span(s, hand_over);
  else mcentral_sweep_any(s, hand_over);
}

static void sweep_span_cb(struct mspan *s, void *ctx) {
  (void)ctx;
  sweep_span(s, false);
}

static void sweep_span_handing_over_cb(struct mspan *s, void *ctx) {
  (void)ctx;
  sweep_span(s, true);
}

static void sweep_span_yielding_cb(struct mspan *s, void *last_yield) {
  sweep_span(s, true);
  os_yield_if_due(last_yield, SWEEPER_YIELD_NS);
}

/* Span after span, class lock after class lock: waiting allocators get
 * each lock first (hand_over).  Without it, the collector finishing a
 * sweep before a mark relocked a class lock before the thread its unlock
 * woke could run, and that thread slept again and again (gap-profile:
 * the pause probe's mutator asleep in mcentral_uncache_span for 3-5 ms,
 * mgc-collect sweeping). */
void sweep_finish(void) { walk_and_sweep(sweep_span_handing_over_cb, NULL); }

/* Every in-use span swept (sweepgen == sg): true at mark start, with the
 * world stopped and no sweep in progress, once sweep_finish has walked
 * the heap.  A span left unswept would be swept during the mark, with
 * mark bits half set, and lose live objects. */
static void check_swept_cb(struct mspan *s, void *ctx) {
  uintptr_t sg = atomic_load_relaxed(&mheap_sweepgen), g = atomic_load_relaxed(&s->sweepgen);
  if (g == sg) return;
  mgc_report("sweep: span %p (%zu pages, class %u, cached by %p, %u allocated) has sweepgen %zu at mark start, heap's %zu",
             (void *)s->base, (size_t)s->npages, s->spanclass, (void *)atomic_load_relaxed(&s->cached_by),
             mspan_count_allocated(s), (size_t)g, (size_t)sg);
  *(bool *)ctx = false;
}

bool sweep_all_done_stw(void) {
  bool ok = true;
  arena_walk_spans(atomic_load_relaxed(&arena_lo), atomic_load_relaxed(&arena_hi), check_swept_cb, &ok);
  return ok;
}

/* Proportional sweeping.  Allocation slow paths sweep the next chunk of
 * the heap (SWEEP_CHUNK_PAGES pages, claimed from a shared cursor) before
 * they take new memory, so freed spans are back in the mheap before the
 * heap grows; the background sweeper and sweep_finish cover the rest. */
#define SWEEP_CHUNK_PAGES 64

/* Kept as offsets from arena_lo, not addresses: mgc's own globals are
 * scanned as roots when it is linked statically, and a heap address here
 * would keep whatever object it lands on alive. */
static atomic_word sweep_cursor;   /* next offset to claim */
static atomic_word sweep_end;      /* heap size when the generation began */

static void sweep_assist(void) {
  uintptr_t end = atomic_load_relaxed(&sweep_end);
  if (atomic_load_relaxed(&sweep_cursor) >= end) return;
  uintptr_t lo = atomic_fetch_add(&sweep_cursor, SWEEP_CHUNK_PAGES * PAGE_SIZE);
  if (lo >= end) return;
  uintptr_t hi = lo + SWEEP_CHUNK_PAGES * PAGE_SIZE;
  uintptr_t base = atomic_load_relaxed(&arena_lo);
  arena_walk_spans(base + lo, base + (hi < end ? hi : end), sweep_span_cb, NULL);
}

static void *sweeper_main(void *arg) {
  (void)arg;
  /* Background work: yield the CPU to the program's threads, whose prompt
   * answer to a stop signal is what keeps pauses short on a busy machine,
   * and who should not wait behind a sweep for a whole scheduler slice. */
  os_name_thread("mgc-sweep");
  os_lower_thread_priority(SWEEPER_NICE);
  uint64_t done = 0;
  pthread_mutex_lock(&sweeper_mutex);
  for (;;) {
    while (sweeper_requested == done) pthread_cond_wait(&sweeper_cond, &sweeper_mutex);
    done = sweeper_requested;
    pthread_mutex_unlock(&sweeper_mutex);
    uint64_t last_yield = os_nanotime();
    walk_and_sweep(sweep_span_yielding_cb, &last_yield);
    scavenger_wake();
    pthread_mutex_lock(&sweeper_mutex);
  }
  return NULL;
}

int sweep_init(void) {
  heap_sweep_assist_hook = sweep_assist;
  return os_start_background_thread(sweeper_main, NULL);
}

void sweep_start_cycle_stw(void) {
  atomic_store_release(&mheap_sweepgen, atomic_load_relaxed(&mheap_sweepgen) + 2);
  atomic_store_relaxed(&sweep_end, atomic_load_relaxed(&arena_hi) - atomic_load_relaxed(&arena_lo));
  atomic_store_relaxed(&sweep_cursor, 0);
}

void sweep_wake_background(void) {
  pthread_mutex_lock(&sweeper_mutex);
  sweeper_requested++;
  pthread_cond_signal(&sweeper_cond);
  pthread_mutex_unlock(&sweeper_mutex);
}

void sweep_read_counts(struct sweep_counts *out) {
  out->large_freed = atomic_load_relaxed(&large_freed);
  out->large_freed_bytes = atomic_load_relaxed(&large_freed_bytes);
}

void sweep_after_fork_child(void) {
  pthread_mutex_init(&sweeper_mutex, NULL);
  pthread_cond_init(&sweeper_cond, NULL);
  sweep_init();
}
