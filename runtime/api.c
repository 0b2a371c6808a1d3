/*
 * api.c: the public allocation entry points (include/mgc.h).
 *
 * gc_alloc and gc_alloc_atomic are the fast paths: the calling thread's
 * mcache, a table lookup for the size class, and mcache_alloc.  Everything
 * else (an unregistered thread, a size over SMALL_SIZE_MAX, a large
 * object, an impossible size) goes through alloc_slow.
 *
 * When the heap cannot grow, every path ends in oom_alloc_failed
 * (runtime/oom.c): small objects from mcache_refill, large ones from
 * alloc_large, which hands it a way to retry.
 *
 * gc_free validates before it touches anything: the pointer must be the
 * start of a live object in an mgc span; otherwise one "mgc:" line says
 * what was wrong and the heap is left as it was.  A free into a span the
 * thread caches is the owner's (mcache_free_local); into another span,
 * while the collector is not marking, it is held back and applied with
 * the thread's next frees into that span (mcache_free_held), so a ring or
 * a batch of frees takes the class's lock once per span, not per object.
 * A run of held frees into one span goes through the thread's free memo,
 * which skips the lookup and most tests that hold for the whole span
 * (alloc/mcache.c, "The free memo").
 */
#include <errno.h>
#include <string.h>

#include "mgc.h"

#include "alloc/arena.h"
#include "alloc/heaplive.h"
#include "alloc/mcache.h"
#include "alloc/mcentral.h"
#include "alloc/mheap.h"
#include "gc/barrier.h"
#include "gc/finalizer.h"
#include "gc/mark.h"
#include "gc/sweep.h"
#include "gc/types.h"
#include "runtime/forkguard.h"
#include "runtime/init.h"
#include "runtime/lookup.h"
#include "runtime/oom.h"
#include "runtime/thread.h"
#include "runtime/throw.h"

/* Requests above this are refused outright: no heap can hold them, and
 * page arithmetic on them could overflow. */
#define ALLOC_SIZE_MAX ((size_t)1 << (HEAP_ADDR_BITS - 1))

/* Counts of large objects, in the process (atomic). */
atomic_word large_mallocs, large_frees, large_bytes_allocated;

static struct mcache *current_mcache_slow(void) {
  init_once();
  struct mthread *t = thread_register_current();
  return t ? &t->mcache : NULL;
}

/* A large object is its own span, never cached, so it is allocated black
 * explicitly: while the collector marks, its mark bit is set at once.  The
 * thread is "in mark work" meanwhile, so no mark can start or end (both
 * wait for that) between taking the span and holding its address where
 * the root scan sees it. */
struct large_request {
  size_t n;
  unsigned spc;
  bool zero;
};

static void *retry_large(void *ctx);

static void *alloc_large(size_t n, unsigned spc, bool zero) {
  uintptr_t npages = (n + PAGE_SIZE - 1) >> PAGE_SHIFT;
  struct mthread *t = thread_current;
  if (!t && !(current_mcache_slow() && (t = thread_current))) {
    errno = ENOMEM;
    return NULL;
  }
  heap_before_slow_alloc();
  heap_check_trigger();
  atomic_store_release(&t->in_mark_work, 1);
  atomic_fence();
  /* The span and its bytes in heap_live together: a fork between the two
   * would leave the child counting the object in no heap_live, and short
   * by it for ever once it dies (runtime/forkguard.h). */
  fork_guard_enter();
  struct mspan *s = mheap_alloc_span(npages, spc);
  if (s) heap_live_add(npages * PAGE_SIZE);
  fork_guard_leave();
  if (!s) {
    atomic_store_release(&t->in_mark_work, 0);
    struct large_request r = {n, spc, zero};
    return oom_alloc_failed(n, retry_large, &r);
  }
  if (atomic_load_relaxed(&alloc_black) || span_needs_sweep(s)) atomic_or(&s->markbits[0], 1);
  atomic_fetch_add(&large_mallocs, 1);
  atomic_fetch_add(&large_bytes_allocated, npages * PAGE_SIZE);
  void *volatile obj = (void *)s->base; /* a root from here on: on our stack */
  if (zero && s->needzero) memset(obj, 0, npages * PAGE_SIZE);
  /* Only now may a mark start or end: the object is reachable from this
   * frame (stopped-world marking and mark setup wait for in_mark_work). */
  atomic_store_release(&t->in_mark_work, 0);
  heap_after_slow_alloc(npages * PAGE_SIZE);
  return obj;
}

static void *retry_large(void *ctx) {
  const struct large_request *r = ctx;
  return alloc_large(r->n, r->spc, r->zero);
}

static void *alloc_tiny(struct mcache *c, size_t n) {
  if (n == 0) n = 1;
  uintptr_t off = c->tiny_offset;
  if (!(n & 7)) off = MGC_ROUND_UP(off, 8);
  else if (!(n & 3)) off = MGC_ROUND_UP(off, 4);
  else if (!(n & 1)) off = MGC_ROUND_UP(off, 2);
  if (c->tiny && off + n <= TINY_SIZE) {
    c->tiny_offset = off + n;
    return (void *)(c->tiny + off);
  }
  void *block = mcache_alloc(c, TINY_SPANCLASS, false);
  if (!block) {
    errno = ENOMEM;
    return NULL;
  }
  c = mcache_current; /* the placeholder's refill registered the thread */
  /* Keep whichever block has more room for the next tiny object. */
  if (!c->tiny || n < c->tiny_offset) {
    c->tiny = (uintptr_t)block;
    c->tiny_offset = n;
  }
  return block;
}

static MGC_NOINLINE void *alloc_slow(size_t n, bool noscan) {
  struct mcache *c = thread_mcache();
  if (!c && !(c = current_mcache_slow())) {
    errno = ENOMEM;
    return NULL;
  }
  if (unlikely(n > ALLOC_SIZE_MAX)) {
    errno = ENOMEM;
    return NULL;
  }
  if (n > SMALL_SIZE_MAX) return alloc_large(n, spanclass_make(0, noscan), !noscan);
  if (noscan && n <= TINY_SIZE) return alloc_tiny(c, n);
  void *p = mcache_alloc(c, spanclass_make(sizeclass_of(n), noscan), !noscan);
  if (!p) errno = ENOMEM;
  return p;
}

/* The pair of slots (scan, noscan) of c for an n-byte request, n <=
 * SMALL_SIZE_MAX: the size table holds their byte offset. */
MGC_INLINE struct mcache_slot *mcache_slot_pair(struct mcache *c, size_t n) {
  return (struct mcache_slot *)((char *)c->slots + sizeclass_of_shifted(n));
}

/* Small requests are taken from the mcache here, without a call, by one
 * lookup in size_to_class8 (a shift, no branch, and no arithmetic on the
 * entry: it is the slots' offset). */
GC_API void *gc_alloc(size_t n) {
  if (likely(n <= SMALL_SIZE_MAX)) {
    struct mcache *c = mcache_current;
    return mcache_alloc_from(c, mcache_slot_pair(c, n), true);
  }
  return alloc_slow(n, false);
}

/* An atomic object of exactly TINY_SIZE bytes fills a tiny block alone:
 * the class lookup below gives TINY_SPANCLASS, the tiny blocks' class, so
 * it takes a whole block without alloc_tiny's bookkeeping (41
 * instructions against 17 here, alloc_bench batch_16) and is a tiny
 * object as any other (gc_free leaves it to the collector). */
GC_API void *gc_alloc_atomic(size_t n) {
  if (likely(n <= SMALL_SIZE_MAX)) {
    struct mcache *c = mcache_current;
    if (n < TINY_SIZE) return alloc_tiny(c, n);
    return mcache_alloc_from(c, mcache_slot_pair(c, n) + SPANCLASS_NOSCAN, false);
  }
  return alloc_slow(n, true);
}

GC_API void *gc_alloc_typed(size_t n, const gc_type *type) {
  if (!types_is_valid(type)) {
    mgc_report("gc_alloc_typed(%zu, %p): not a type made by gc_type_new; nothing allocated", n, (const void *)type);
    errno = EINVAL;
    return NULL;
  }
  if (unlikely(n > ALLOC_SIZE_MAX)) {
    errno = ENOMEM;
    return NULL;
  }
  size_t total = n + TYPED_HEADER;
  void *p = total <= SMALL_SIZE_MAX
                ? mcache_alloc(mcache_current, spanclass_make_typed(sizeclass_of(total)), true)
                : alloc_large(total, spanclass_make_typed(0), true);
  if (!p) {
    errno = ENOMEM;
    return NULL;
  }
  atomic_store_release((atomic_word *)p, (uintptr_t)type);
  return (char *)p + TYPED_HEADER;
}

/* Usable bytes of an object of s (the typed header excluded). */
MGC_INLINE size_t object_size(const struct mspan *s) {
  size_t slot = span_slot_size(s);
  return slot - (spanclass_typed(s->spanclass) ? TYPED_HEADER : 0);
}

/* An address inside a typed object's header is not inside the object the
 * program sees: NULL, so that gc_base(p) <= p always. */
GC_API MGC_NO_SANITIZE_THREAD void *gc_base(const void *p) {
  uintptr_t idx;
  struct mspan *s = object_find_live(p, &idx);
  if (!s) return NULL;
  uintptr_t start = object_user_start(s, span_object_addr(s, idx));
  return (uintptr_t)p >= start ? (void *)start : NULL;
}

GC_API MGC_NO_SANITIZE_THREAD size_t gc_size(const void *p) {
  uintptr_t idx;
  struct mspan *s = object_find_live(p, &idx);
  if (!s) return 0;
  uintptr_t start = object_user_start(s, span_object_addr(s, idx));
  if (s->spanclass == TINY_SPANCLASS) return start + TINY_SIZE - (uintptr_t)p;
  return start == (uintptr_t)p ? object_size(s) : 0;
}

/* Returns false when the object was already freed.  The caller keeps the
 * mark phase from changing (thread_mark_phase_enter); the caller keeps a
 * fork out (runtime/forkguard.h). */
static bool free_large_guarded(struct mspan *s) {
  /* has_freed doubles as "freed" for a large span: a second gc_free racing
   * with the first loses the exchange. */
  if (!atomic_cas(&s->has_freed, 0, LARGE_FREED)) return false;
  sweep_take_large_for_free(s);
  heap_live_sub(s->npages * PAGE_SIZE);
  atomic_fetch_add(&large_frees, 1);
  /* While the collector marks, grey work may name the object; the pages
   * must not hold another object before it is scanned (the marker would
   * read them with this one's layout and type header): the sweep after the
   * mark frees the span (gc/sweep.c). */
  if (gc_barrier_on) atomic_store_release(&s->has_freed, LARGE_FREED_RELEASE_AT_SWEEP);
  else mheap_free_span(s);
  return true;
}

static bool free_large(struct mspan *s) {
  fork_guard_enter();
  bool ok = free_large_guarded(s);
  fork_guard_leave();
  return ok;
}

static MGC_NOINLINE void free_slow(void *p, struct mspan *s, uintptr_t idx);

/* Free keys.  Most frees in a program land in a span its thread caches
 * (the owner's free), or in an uncached span it is already holding frees
 * for (a held free), and the tests gc_free makes before either (the span
 * in use, neither tiny nor typed, without finalizers, the collector not
 * marking, the span swept or the entry open in this sweep generation,
 * who caches the span) give the same answers from one free to the next.
 * The thread records that they held in the span's free_key, and the next
 * free into the span tests only that, with the pointer's bounds and
 * alignment and the slot itself.
 *
 * Invariants:
 *   s->free_key == c (the owner's key) only while c caches s, s is swept
 *   in the current sweep generation, the collector is not marking, s is
 *   neither tiny nor typed, and s->has_holes and s->needzero are set (so
 *   the keyed free leaves them be);
 *   s->free_key == c | FREE_KEY_HELD (the held key) only while s is
 *   uncached, c's entry for s's size class is open for s in the current
 *   sweep generation (barring a double free), the collector is not
 *   marking, and s is not typed.
 * Finalizers are not among them: a stamp that read none may land after
 * gc_set_finalizer's clear, so free_by_key tests them itself.
 * They hold because
 *   - only c's thread sets them (free_general), inside the mark-phase
 *     bracket, after testing each of these;
 *   - the owner clears its key before giving the span back
 *     (mcentral_uncache_span) and when its walk clears has_holes
 *     (advance_word; needzero stays set while the span is cached); c
 *     clears its held key when it applies the entry (flush_held_entry),
 *     and a thread caching the span clears any key (mcentral_cache_span,
 *     mcache_stamp_held_key for the race);
 *     gc_set_finalizer clears the key with each finalizer it adds, and a
 *     new span record starts at 0;
 *   - a mark start clears every thread's keys with the world stopped
 *     (mcache_revoke_free_keys), and no stamp follows before the mark
 *     ends (the barrier is on meanwhile), and then only in the new sweep
 *     generation.
 * A key naming c is read once outside the bracket, to keep other frees
 * off it, and again inside: no mark can start between that read and the
 * free (the mark start waits until no thread is inside the bracket). */
MGC_INLINE struct mthread *mcache_owner(struct mcache *c) {
  return (struct mthread *)((char *)c - offsetof(struct mthread, mcache));
}

/* thread_mark_phase_enter for gc_free's fast paths, which are never
 * entered inside the bracket: gc_free is not called from inside mgc while
 * a thread holds it (nor from a signal handler, docs/api.md), the same
 * rule alloc_large, barrier_flush_own and the finalizer sections keep.
 * So there is no earlier value to keep in a register, where one more
 * made the compiler save a register on every path, nor to test (debug
 * builds assert it). */
MGC_INLINE void free_bracket_enter(struct mthread *t) {
  mgc_assert(atomic_load_relaxed(&t->in_mark_work) == 0);
  atomic_store_relaxed(&t->in_mark_work, 1);
  __asm__ __volatile__("" ::: "memory"); /* a stop landing after here sees the flag */
}

MGC_INLINE void free_bracket_leave(struct mthread *t) { thread_mark_phase_leave(t, 0); }

/* gc_free(p) through the free memo of c, a registered thread's (the
 * placeholder's memo is never on; alloc/mcache.c, "The free memo"); true
 * when done. */
MGC_INLINE bool free_through_memo(struct mcache *c, void *p) {
  struct mthread *t = mcache_owner(c);
  free_bracket_enter(t);
  bool done = mcache_free_in_memo(c, (uintptr_t)p);
  free_bracket_leave(t);
  return done;
}

static MGC_NOINLINE void free_general(void *p, struct mspan *s);

/* The slot of s that a starts (in *idx), when a is the start of one.
 * (The memo path, mcache_free_in_memo, makes the same tests with its
 * finalizer and cache tests between them: calling this there instead cost
 * ring_64 two instructions per operation.) */
MGC_INLINE bool keyed_slot(const struct mspan *s, uintptr_t a, uintptr_t *idx) {
  if (a < s->base || a >= s->limit) return false;
  return span_slot_of(s, a - s->base, idx);
}

/* gc_free(p) where p's page maps to s and s->free_key named c when read:
 * true when done (freed, or reported as a second free); false sends p the
 * general way. */
MGC_INLINE bool free_by_key(struct mcache *c, struct mspan *s, void *p) {
  struct mthread *t = mcache_owner(c); /* c is a registered thread's: only those stamp keys */
  free_bracket_enter(t);
  int r = -1;
  uintptr_t idx;
  uintptr_t key = atomic_load_relaxed(&s->free_key);
  /* Finalizers are tested here, not stood for by the key: a stamp that
   * read none could land after gc_set_finalizer's clear (the program
   * orders its own free after gc_set_finalizer, so this read sees it). */
  if (unlikely(atomic_load_relaxed(&s->finalizers))) key = 0;
  if (key == (uintptr_t)c) {
    if (likely(keyed_slot(s, (uintptr_t)p, &idx))) r = mcache_free_local_slot(c, s, idx);
  } else if (key == mcache_held_key(c)) {
    if (likely(keyed_slot(s, (uintptr_t)p, &idx))) r = mcache_free_held_keyed(c, s, idx);
  }
  free_bracket_leave(t);
#if MGC_DEBUG >= 1
  c->debug_keyed_frees += r > 0;
#endif
  if (unlikely(r == 0)) mgc_report("gc_free(%p): object already freed; ignored", p);
  return r >= 0;
}

/* gc_free(p) by a key of c's, or the general way. */
MGC_INLINE void free_keyed_or_general(struct mcache *c, void *p) {
  struct mspan *s = span_of((uintptr_t)p); /* NULL for p == NULL: page 0 is never heap */
  if (unlikely(s == NULL)) {
    if (p) mgc_report("gc_free(%p): not an object allocated by mgc (or already freed); ignored", p);
    return;
  }
  if ((atomic_load_relaxed(&s->free_key) ^ (uintptr_t)c) <= FREE_KEY_HELD && likely(free_by_key(c, s, p))) return;
  /* A packed tiny object may start anywhere in its block; the block is
   * shared, so the collector frees it. */
  if (s->spanclass == TINY_SPANCLASS && span_covers(s, (uintptr_t)p)) return;
  free_general(p, s);
}

GC_API void gc_free(void *p) {
  /* mcache_current, not thread_current: never NULL (an unregistered
   * thread's placeholder has the memo off and names no span's key), so
   * one test on the way. */
  struct mcache *c = mcache_current;
  if (unlikely(c->free_memo_on) && free_through_memo(c, p)) return;
  free_keyed_or_general(c, p);
}

/* gc_free(p) but for frees by a key and tiny objects; s is the record
 * p's page maps to. */
static MGC_NOINLINE void free_general(void *p, struct mspan *s) {
  if (unlikely(!span_covers(s, (uintptr_t)p))) {
    mgc_report("gc_free(%p): not an object allocated by mgc (or already freed); ignored", p);
    return;
  }
  uintptr_t idx = span_object_index(s, (uintptr_t)p);
  uintptr_t start = object_user_start(s, span_object_addr(s, idx));
  if (start != (uintptr_t)p) {
    mgc_report("gc_free(%p): points inside an object of %zu bytes at %p, not to its start; ignored",
               p, object_size(s), (void *)start);
    return;
  }
  /* Without calls, while the collector is not marking (read inside the
   * mark-phase bracket, see free_slow), the span is swept (see free_slow)
   * and no object of it has a finalizer: the owner frees into a span it
   * caches (only the owner uncaches it), or adds to the frees it holds
   * back for an uncached span, and gives the span its key for the next
   * free ("Free keys" above).  The held case needs no look at the span's
   * sweepgen: the entry was opened on a swept span (free_slow sweeps
   * first) in the sweep generation it records, and while that generation
   * lasts the span stays swept. */
  struct mthread *t = thread_current;
  if (likely(t != NULL) && likely(!atomic_load_relaxed(&s->finalizers))) {
    struct mcache *c = &t->mcache;
    uintptr_t phase = thread_mark_phase_enter(t);
    if (likely(!gc_barrier_on)) {
      uintptr_t owner = atomic_load_acquire(&s->cached_by);
      int r = -1;
      if (owner == 0) {
        r = mcache_free_held_fast(c, s, idx);
        if (r > 0) mcache_stamp_held_key(c, s);
      } else if (owner == (uintptr_t)c && !span_needs_sweep(s)) {
        r = mcache_free_local(c, s, idx);
        if (r > 0) mcache_stamp_free_key(c, s);
      }
      if (likely(r >= 0)) {
        thread_mark_phase_leave(t, phase);
        if (unlikely(!r)) mgc_report("gc_free(%p): object already freed; ignored", p);
        return;
      }
    }
    thread_mark_phase_leave(t, phase);
  }
  free_slow(p, s, idx);
}

/* gc_free of the object at p, slot idx of s, but for the fast path. */
static MGC_NOINLINE void free_slow(void *p, struct mspan *s, uintptr_t idx) {
  if (atomic_load_relaxed(&s->finalizers)) finalizers_forget(s, object_user_start(s, span_object_addr(s, idx)));
  struct mcache *c = thread_mcache();
  if (!c) c = current_mcache_slow();
  struct mthread *t = thread_current;
  /* The deletion barrier for gc_free.  Freeing an object deletes every
   * pointer it holds; while the collector marks, the snapshot may need them
   * (gc_realloc copies an object into a new, black one and frees the old:
   * the copies are never scanned), so the freed object's words are greyed
   * first, as GC_WRITE would grey each overwritten value.  No mark may
   * start or end between the barrier test and the free (both wait for
   * in_mark_work): marking off at the test, the object is freed before any
   * snapshot is taken. */
  uintptr_t phase = thread_mark_phase_enter(t);
  if (t && gc_barrier_on && !spanclass_noscan(s->spanclass) && mcache_slot_is_allocated(c, s, idx)) {
    mark_object_words_now(&t->gcw, s, span_object_addr(s, idx));
    gcwork_flush(&t->gcw);
    mark_account_mutator(&t->gcw);
  }
  bool ok;
  /* A small span the last mark left unswept is swept first (in the
   * mark-phase bracket no new generation can begin meanwhile):
   *   the owner frees into words other than its current one by a plain
   *   read and write of allocbits, and a sweeper of the span (it sweeps
   *   all but that word) would lose the free or bring back a slot it freed;
   *   a held free is judged by allocbits, where the last mark's garbage
   *   still looks allocated: a second free of an object whose first free
   *   was held (and dropped by that mark) would be held again, and applied
   *   after the sweep had handed the slot out anew. */
  if (span_is_large(s)) {
    ok = free_large(s);
  } else {
    if (span_needs_sweep(s)) mcentral_sweep_any(s, false);
    if (c && atomic_load_acquire(&s->cached_by) == (uintptr_t)c) ok = mcache_free_local(c, s, idx);
    else if (c && !gc_barrier_on) ok = mcache_free_held(c, s, idx); /* applied in batches */
    else ok = !(c && mcache_holds_free(c, s, idx)) && mcentral_free_remote(s, idx);
  }
  thread_mark_phase_leave(t, phase);
  if (!ok) mgc_report("gc_free(%p): object already freed; ignored", p);
}

GC_API void *gc_realloc(void *p, size_t n) {
  if (!p) return gc_alloc(n);
  if (n == 0) {
    gc_free(p);
    return NULL;
  }
  uintptr_t idx;
  struct mspan *s = object_find_live(p, &idx);
  if (!s || (s->spanclass != TINY_SPANCLASS && object_user_start(s, span_object_addr(s, idx)) != (uintptr_t)p)) {
    mgc_report("gc_realloc(%p): not the start of a live mgc object; nothing done", p);
    errno = EINVAL;
    return NULL;
  }
  bool noscan = spanclass_noscan(s->spanclass);
  size_t old = gc_size(p);
  /* A tiny object's size is unknown (gc_size is the room to the end of its
   * block, which neighbours may share): always move it. */
  bool tiny = s->spanclass == TINY_SPANCLASS;
  if (!tiny && n <= old && n > old / 2) {
    /* Shrink in place; a scanned object's dropped tail is cleared (through
     * the write barrier: these are pointer deletions) so that growing back
     * later finds zeroes and stale pointers keep nothing. */
    if (!noscan) {
      size_t first = MGC_ROUND_UP(n, sizeof(void *));
      if (first > n) {
        /* The last word kept, cut through: its bytes below n stay, the
         * rest become zero, through the barrier (a pointer it held is
         * deleted). */
        void **last = (void **)((char *)p + first - sizeof(void *));
        void *kept = NULL;
        memcpy(&kept, last, n % sizeof(void *));
        GC_WRITE(last, kept);
      }
      for (void **w = (void **)((char *)p + first); w < (void **)((char *)p + old); w++) GC_WRITE(w, NULL);
    }
    return p;
  }
  void *q;
  if (spanclass_typed(s->spanclass))
    q = gc_alloc_typed(n, (const gc_type *)atomic_load_acquire((atomic_word *)span_object_addr(s, idx)));
  else
    q = noscan ? gc_alloc_atomic(n) : gc_alloc(n);
  if (!q) return NULL;
  /* A tiny object's room may hold the new object, packed after it in the
   * same block; the old object ends before it. */
  if (tiny && (uintptr_t)q > (uintptr_t)p && (uintptr_t)q < (uintptr_t)p + old) old = (uintptr_t)q - (uintptr_t)p;
  memcpy(q, p, n < old ? n : old);
  gc_free(p);
  return q;
}

GC_API char *gc_strdup(const char *str) {
  if (!str) {
    mgc_report("gc_strdup(NULL): no string to copy; returning NULL");
    errno = EINVAL;
    return NULL;
  }
  size_t len = strlen(str);
  char *q = gc_alloc_atomic(len + 1);
  if (q) memcpy(q, str, len + 1);
  return q;
}

GC_API void gc_init(void) {
  init_once();
  thread_register_current();
}

GC_API void gc_thread_register(void) {
  init_once();
  thread_register_current();
}

GC_API void gc_thread_unregister(void) { thread_unregister_current(); }
