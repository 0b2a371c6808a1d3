/*
 * mcentral.c: central span lists per span class, and small-span sweeping
 * (see mcentral.h).
 *
 * A small-object span is, at any time, in exactly one place:
 *   cached     held by one mcache (cached_by != 0), in no list;
 *   partial    uncached, alloccount < nelems    (in_list = LIST_PARTIAL | gen)
 *   full       uncached, alloccount == nelems   (in_list = LIST_FULL | gen)
 * where gen is the list generation (sweepgen / 2 % 2) it was filed under.
 * An uncached span that becomes empty (alloccount == 0) stays on the
 * partial list, flagged LIST_EMPTY, while the class keeps fewer than
 * mcentral_empty_keep() of them (so a ring or a batch of frees and
 * allocations does not take spans apart and build them again at every
 * turn), or while the collector marks (release_empty_locked); otherwise
 * it goes back to the mheap at once.  The sweep after the next mark gives
 * every kept empty span back (sweep_locked): outside a mark a class holds
 * at most mcentral_empty_keep() empty spans, and only until the next
 * collection (they are in use, so the scavenger does not see them).
 *   nempty == number of listed spans flagged LIST_EMPTY
 *   a listed span is flagged LIST_EMPTY <=> its alloccount == 0
 *
 * Allocating apart from freeing.  A refill does not take the span the
 * refilling thread is freeing into (the one whose held frees it just
 * applied) while that span still holds objects: another partial span is
 * taken, or else a new one from the mheap.  In a queue (frees in the
 * order of allocation) the oldest objects are freed a span at a time, and
 * the span being freed into is the first partial one; taken, it was
 * allocated from while its last objects were being freed, a few slots per
 * word visit, and the objects allocated there went on to interleave spans
 * the same way a turn later: with 64-byte objects a word was entered every
 * 18 allocations instead of every 64, for good.  Left alone, it is empty
 * by the next refill and is taken whole.  The heap grows by at most that
 * span per thread and class, and only when sweeping (within the refill's
 * budget) finds no other partial span; if the mheap cannot give one, the
 * span is taken after all.  "The span being freed into" is the one the
 * thread held frees for since it last took a span of the class (the
 * refill that takes one applies them first).
 * Spans of fewer than 64 objects (classes over 1 KiB) are taken as
 * before: one word visit uses them up either way, and passing them over
 * only turned the thread's frees into them from local frees into held
 * ones (alloc_bench ring_4096, 16 objects to a span: 224 -> 235
 * instructions per operation).
 *
 * Lock: mcentral.lock guards the lists, nempty, the fields of its
 * uncached spans, and every write to counts (plain adds, not locked
 * read-modify-writes; statistics read them without the lock).  Caching,
 * uncaching and sweeping happen under it, so a thread that
 * holds it sees cached_by stable and no span of the class half-swept.  The
 * owning mcache changes a cached span's words without the lock (see
 * mspan.h): sweeping a cached span skips its current word, and the owner
 * sweeps (through mcentral_sweep_cached) before it enters another word.
 * Remote frees of a cached span only set freedbits under the lock; the
 * owner folds them when it gives the span back.
 *
 * Sweeping a small span: for each word (but a cached span's current one),
 *   allocbits &= markbits, markbits = 0,
 * counting the freed slots; then sweepgen = sg.  Claiming (sweepgen sg-2
 * -> sg-1) happens under the lock, so lock holders see sg-1 only for the
 * moment a heap walk's sweep of large spans holds a claim on a record
 * since recycled as a small span; the sweeps that must leave the span
 * swept wait that out (wait_out_claim_locked).
 *
 * A small span stops being in use (mheap_free_span) only under its class
 * lock.  mcentral_free_remote, mcentral_free_held and mcentral_sweep_any
 * are handed a span found without a lock; they check its state and class
 * under the lock and then work on it, which is sound only because nobody
 * can free (and the mheap reuse) the span while they hold the lock.
 * Freeing an emptied span after dropping the lock, to shorten the
 * sweeper's hold, broke that: ThreadSanitizer caught a walk reading a
 * record the mheap was recycling (test_phase_races), and a gc_free of a
 * stale pointer could then have cleared a bit of the span's next use.
 */
#include "alloc/mcentral.h"

#include <sched.h>

#include "mgc.h"

#include "alloc/arena.h"
#include "alloc/heaplive.h"
#include "alloc/mcache.h"
#include "alloc/mheap.h"
#include "gc/finalizer.h"
#include "runtime/thread.h"
#include "runtime/throw.h"

#define LIST_PARTIAL 2u
#define LIST_FULL 4u
#define LIST_GEN 1u
#define LIST_EMPTY 8u  /* on the partial list with no slot allocated */
/* Bytes of empty spans a class keeps outside a mark (at least one span):
 * enough to catch the churn of a ring or a batch of frees and
 * allocations without taking pages from the mheap each time, little
 * enough to be nothing next to the 4 MiB minimum heap goal, summed over
 * the classes that churn. */
#define EMPTY_KEEP_BYTES (64 * 1024)
/* cache_span sweeps at most this many unswept spans looking for room before
 * it grows the heap instead, bounding its latency. */
#define CACHE_SWEEP_BUDGET 100
/* cache_span passes over the span the thread is freeing into only if it
 * has at least a bitmap word of slots (see the top). */
#define AVOID_MIN_OBJECTS 64

struct mcentral mcentrals[SPANCLASS_COUNT];

void mcentral_init(void) {
  for (unsigned i = 0; i < SPANCLASS_COUNT; i++) {
    lock_init(&mcentrals[i].lock, LOCK_MCENTRAL);
    mcentrals[i].spanclass = i;
  }
}

static unsigned swept_gen(void) { return (unsigned)(atomic_load_relaxed(&mheap_sweepgen) / 2 % 2); }

/* counts are written only under the class's lock (and read without it). */
static void count_add_locked(atomic_word *count, uintptr_t n) {
  atomic_store_relaxed(count, atomic_load_relaxed(count) + n);
}

unsigned mcentral_empty_keep(unsigned spc) {
  uintptr_t span_bytes = (uintptr_t)sizeclass_npages[spanclass_sizeclass(spc)] * PAGE_SIZE;
  return span_bytes >= EMPTY_KEEP_BYTES ? 1 : (unsigned)(EMPTY_KEEP_BYTES / span_bytes);
}

static struct mspan **list_head(struct mcentral *mc, unsigned in_list) {
  unsigned gen = in_list & LIST_GEN;
  return (in_list & LIST_FULL) ? &mc->full[gen] : &mc->partial[gen];
}

static void list_remove_locked(struct mcentral *mc, struct mspan *s) {
  mgc_assert(s->in_list != 0);
  if (s->prev) s->prev->next = s->next;
  else *list_head(mc, s->in_list) = s->next;
  if (s->next) s->next->prev = s->prev;
  if (s->in_list & LIST_EMPTY) mc->nempty--;
  s->next = s->prev = NULL;
  s->in_list = 0;
}

/* File an uncached span by its fullness and sweep state. */
static void list_insert_locked(struct mcentral *mc, struct mspan *s) {
  unsigned gen = span_needs_sweep(s) ? 1 - swept_gen() : swept_gen();
  unsigned which = (s->alloccount == s->nelems ? LIST_FULL : LIST_PARTIAL) | gen;
  struct mspan **head = list_head(mc, which);
  s->prev = NULL;
  s->next = *head;
  if (*head) (*head)->prev = s;
  *head = s;
  if (s->alloccount == 0) {
    which |= LIST_EMPTY;
    mc->nempty++;
  }
  s->in_list = (uint8_t)which;
}

/* Sweep s (in use, of this class, sweepgen == sg - 2); the lock is held.
 * An uncached span is re-filed, or freed to the mheap if now empty (then
 * the function returns false and s must not be touched). */
static bool sweep_locked(struct mcentral *mc, struct mspan *s) {
  atomic_fetch_add(&sweeps_in_progress, 1);
  uintptr_t sg = atomic_load_acquire(&mheap_sweepgen);
  atomic_store_relaxed(&s->sweepgen, sg - 1);
  bool cached = atomic_load_relaxed(&s->cached_by) != 0;
  unsigned keep = cached ? (unsigned)atomic_load_acquire(&s->cur_word) : UINT32_MAX;
  finalizers_sweep_span(s, keep); /* may mark objects: before the bits are read */
  unsigned freed = 0, applied = 0; /* applied: remote frees, counted when made */
  bool freed_left = false;
  for (unsigned w = 0; w < s->nwords; w++) {
    uintptr_t m = atomic_load_relaxed(&s->markbits[w]);
    atomic_store_relaxed(&s->markbits[w], 0);
    if (w == keep) {
      freed_left |= atomic_load_relaxed(&s->freedbits[w]) != 0;
      continue;
    }
    /* Remote frees pending on this word are applied now, so that a slot
     * freed twice over (by gc_free and by this sweep) is neither reported
     * nor freed again after the owner hands it out anew. */
    uintptr_t f = atomic_load_relaxed(&s->has_freed) ? atomic_exchange(&s->freedbits[w], 0) : 0;
    uintptr_t a = atomic_load_relaxed(&s->allocbits[w]);
    uintptr_t dead = a & ~m & ~f;
    if (dead | (a & f)) atomic_store_relaxed(&s->allocbits[w], a & m & ~f);
    freed += (unsigned)mgc_popcount64(dead);
    applied += (unsigned)mgc_popcount64(a & f);
    if (a & f) atomic_store_byte_relaxed(&s->needzero, 1);
  }
  if (atomic_load_relaxed(&s->has_freed) && !freed_left) atomic_store_relaxed(&s->has_freed, 0);
  if (freed) {
    atomic_store_byte_relaxed(&s->needzero, 1);
    count_add_locked(&mc->counts.frees, freed);
  }
  atomic_store_release(&s->sweepgen, sg);
  /* sweeps_in_progress stays raised until the span is re-filed or freed:
   * a mark must not start while its bitmaps go back (gc/collector.c). */
  bool kept = true;
  if (cached) {
    /* Counted as full in heap_live while cached.  Uncaching takes back
     * the slots then free from the malloc count; every slot this sweep
     * freed (dead or freed remotely) was allocated, so it is counted
     * again now, as a free slot to be used (gc/stats.c relies on it). */
    unsigned reusable = freed + applied;
    unsigned now_free = s->count_at_cache > reusable ? reusable : s->count_at_cache;
    s->count_at_cache = (uint16_t)(s->count_at_cache - now_free);
    if (reusable) count_add_locked(&mc->counts.mallocs, reusable);
    if (now_free) atomic_fetch_add(&heap_cache_slack, (uintptr_t)now_free * s->elemsize);
  } else {
    if (freed) heap_live_sub((uintptr_t)freed * s->elemsize);
    s->alloccount = (uint16_t)(s->alloccount - freed);
    mgc_assert(s->alloccount == mspan_count_allocated(s));
    if (s->in_list) list_remove_locked(mc, s);
    if (s->alloccount == 0) {
      /* Kept empty spans go back here too: the surplus of the cycle. */
      mheap_free_span(s); /* LOCK_MHEAP ranks above LOCK_MCENTRAL */
      kept = false;
    } else {
      list_insert_locked(mc, s);
    }
  }
  atomic_fetch_sub(&sweeps_in_progress, 1);
  return kept;
}

static bool needs_sweep_now(const struct mspan *s) {
  return atomic_load_relaxed(&s->sweepgen) == atomic_load_acquire(&mheap_sweepgen) - 2;
}

/* Wait, with the lock dropped, while someone outside this lock holds a
 * claim on small span s (sweepgen sg - 1).  Only a heap walk's sweep of
 * large spans does (gc/sweep.c, sweep_large_guarded): it claims a record
 * before it can tell that the record was recycled as a small span, then
 * gives the claim back and sweeps the span through mcentral_sweep_any.
 * The callers of the two functions below rely on s being swept when they
 * return (a free judged by allocbits, a held free, a word entered), so a
 * claim is waited out rather than taken for a sweep: taken so, a thread
 * opened held frees on the unswept span and held a second free of an
 * object the last mark had found dead, and applied it after the sweep
 * handed the slot to a new object.  The claim is short (a CAS and back, no
 * lock taken between), and keeps a mark from starting meanwhile (none runs
 * while a span is at sg - 2).  Waits only while s is an in-use span of
 * mc's class (the record may be reused while the lock is dropped).  Lock
 * held on entry and on return. */
static void wait_out_claim_locked(struct mcentral *mc, const struct mspan *s) {
  for (unsigned spins = 0; atomic_load_acquire(&s->state) == MSPAN_IN_USE && s->spanclass == mc->spanclass &&
                           atomic_load_relaxed(&s->sweepgen) == atomic_load_acquire(&mheap_sweepgen) - 1;
       spins++) {
    lock_release(&mc->lock);
    if (spins < 64) cpu_relax();
    else sched_yield(); /* the claimer may be waiting for this CPU */
    lock_acquire(&mc->lock);
  }
}

void mcentral_sweep_cached(struct mspan *s) {
  struct mcentral *mc = &mcentrals[s->spanclass];
  lock_acquire(&mc->lock);
  wait_out_claim_locked(mc, s);
  if (needs_sweep_now(s)) sweep_locked(mc, s);
  lock_release(&mc->lock);
}

bool mcentral_sweep_any(struct mspan *s, bool hand_over) {
  unsigned spc = span_class_unlocked(s);
  /* Read without a lock: the record may have become a large span since
   * the caller looked, and a large span is not swept here. */
  if (spc >= SPANCLASS_COUNT || spanclass_sizeclass(spc) == 0) return false;
  struct mcentral *mc = &mcentrals[spc];
  bool swept = false;
  lock_acquire(&mc->lock);
  /* The record may have been freed or reused since the caller found it. */
  wait_out_claim_locked(mc, s);
  if (atomic_load_acquire(&s->state) == MSPAN_IN_USE && s->spanclass == spc && needs_sweep_now(s)) {
    sweep_locked(mc, s);
    swept = true;
  }
  lock_release(&mc->lock);
  if (hand_over) lock_wait_for_waiters(&mc->lock);
  return swept;
}

/* An uncached swept span with a free slot, sweeping unswept spans to find
 * one; NULL if the budget runs out first.  The span the caller is freeing
 * into is passed over while it holds objects (see "Allocating apart from
 * freeing" at the top), and returned in *passed if it was.  Lock held. */
static struct mspan *find_partial_locked(struct mcentral *mc, const struct mspan *freeing_into,
                                         struct mspan **passed) {
  unsigned sw = swept_gen(), un = 1 - sw;
  *passed = NULL;
  for (int budget = CACHE_SWEEP_BUDGET;; budget--) {
    struct mspan *s = mc->partial[sw];
    if (s && s == freeing_into && s->alloccount != 0 && s->nelems >= AVOID_MIN_OBJECTS) {
      *passed = s;
      s = s->next; /* swept and partial too */
    }
    if (s || budget == 0) return s;
    struct mspan *u = mc->partial[un] ? mc->partial[un] : mc->full[un];
    if (!u) return NULL;
    sweep_locked(mc, u); /* re-files (at the head of its list) or frees it */
  }
}

struct mspan *mcentral_cache_span(struct mcache *c, unsigned spc, const struct mspan *freeing_into) {
  struct mcentral *mc = &mcentrals[spc];
  lock_acquire(&mc->lock);
  struct mspan *passed;
  struct mspan *s = find_partial_locked(mc, freeing_into, &passed);
  /* Keep the lock: a new span is in use but in no list and not yet
   * cached, and a sweeper (which takes this lock) must not see it so. */
  struct mspan *fresh = s ? NULL : mheap_alloc_span(sizeclass_npages[spanclass_sizeclass(spc)], spc);
  if (!s && !fresh) s = passed; /* no room elsewhere: the span passed over after all */
  if (fresh) {
    s = fresh;
  } else if (s) {
    list_remove_locked(mc, s);
  } else {
    lock_release(&mc->lock);
    return NULL;
  }
  /* Swept when found, but a mark termination may have started a new sweep
   * generation since (the world stops without this lock): the owner then
   * sweeps it itself before using it. */
  mgc_assert(s->alloccount < s->nelems);
  s->count_at_cache = s->alloccount;
  s->local_frees = 0;
  s->has_holes = 0;
  atomic_store_relaxed(&s->cached_by, (uintptr_t)c);
  /* A held key another thread stamped must not outlive the caching (see
   * mcache_stamp_held_key). */
  atomic_fence();
  atomic_store_relaxed(&s->free_key, 0);
  /* Count every free slot as allocated now (statistics stay current while
   * the span is cached); uncaching takes back what was not used. */
  count_add_locked(&mc->counts.mallocs, (uintptr_t)(s->nelems - s->alloccount));
  /* Under the lock, as the uncaching that takes them back: a fork()
   * (which holds every class lock) then finds both done or neither; a
   * child that gives back the span of a thread it lost (orphans) must
   * not take back what was never added. */
  uintptr_t free_bytes = (uintptr_t)(s->nelems - s->alloccount) * s->elemsize;
  heap_live_add(free_bytes);
  atomic_fetch_add(&heap_cache_slack, free_bytes);
  lock_release(&mc->lock);
  return s;
}

/* An uncached span just emptied (in no list): kept on the partial list
 * while the class holds fewer than mcentral_empty_keep() empty spans,
 * else given back to the heap, unless the collector is marking: grey work may still
 * name an object that was freed in it after being greyed, and the marker
 * scans that entry with the class's layout (and, for a typed class, reads
 * the object's type header).  Were the pages reused by another class
 * meanwhile, it would read another object's words as a type.  So while
 * marking the span stays on the list, usable by its own class, and the
 * sweep after the mark frees it.  The caller keeps the mark phase from
 * changing (thread_mark_phase_enter). */
static void release_empty_locked(struct mcentral *mc, struct mspan *s) {
  if (gc_barrier_on || mc->nempty < mcentral_empty_keep(mc->spanclass)) list_insert_locked(mc, s);
  else mheap_free_span(s); /* LOCK_MHEAP ranks above LOCK_MCENTRAL */
}

/* Apply remote frees to allocbits; lock held, span not being allocated
 * from. */
static void fold_freed_locked(struct mspan *s) {
  if (!atomic_load_relaxed(&s->has_freed)) return;
  atomic_store_relaxed(&s->has_freed, 0);
  for (unsigned w = 0; w < s->nwords; w++) {
    uintptr_t f = atomic_exchange(&s->freedbits[w], 0);
    if (!f) continue;
    uintptr_t a = atomic_load_relaxed(&s->allocbits[w]);
    if (f & ~a) {
      /* Freed by the owner too (or swept as garbage): a double free that
       * could only be seen now. */
      mgc_report("gc_free: double free of an object of %u bytes in span %p, found late; ignored",
                 s->elemsize, (void *)s->base);
      count_add_locked(&mcentrals[s->spanclass].counts.frees, -(uintptr_t)mgc_popcount64(f & ~a));
    }
    atomic_store_relaxed(&s->allocbits[w], a & ~f);
    if (a & f) atomic_store_byte_relaxed(&s->needzero, 1);
  }
}

void mcentral_uncache_span(struct mspan *s) {
  struct mcentral *mc = &mcentrals[s->spanclass];
  struct mthread *t = thread_current;
  uintptr_t phase = thread_mark_phase_enter(t);
  lock_acquire(&mc->lock);
  unsigned count = mspan_count_allocated(s);
  /* Counted at cache time: nelems - count_at_cache slots.  Used: count -
   * count_at_cache + local_frees (freed slots may be used twice). */
  count_add_locked(&mc->counts.mallocs, -((uintptr_t)s->nelems - count - s->local_frees));
  count_add_locked(&mc->counts.frees, s->local_frees);
  fold_freed_locked(s);
  s->alloccount = (uint16_t)mspan_count_allocated(s);
  s->local_frees = 0;
  atomic_store_relaxed(&s->free_key, 0);
  atomic_store_release(&s->cached_by, 0); /* after allocbits: gc_free reads them lock-free */
  atomic_store_relaxed(&s->cur_word, 0);
  atomic_store_relaxed(&s->snap_visit, SNAP_NONE);
  heap_live_sub((uintptr_t)(s->nelems - s->alloccount) * s->elemsize);
  atomic_fetch_sub(&heap_cache_slack, (uintptr_t)(s->nelems - s->count_at_cache) * s->elemsize);
  if (s->alloccount == 0) release_empty_locked(mc, s);
  else list_insert_locked(mc, s);
  lock_release(&mc->lock);
  thread_mark_phase_leave(t, phase);
}

/* Remote free of slot w:bit of s, cached by owner: recorded in freedbits
 * if the slot is allocated.  Lock held. */
static bool free_cached_locked(struct mcentral *mc, struct mspan *s, struct mcache *owner, unsigned w, uintptr_t bit) {
  /* The slot must be allocated: by allocbits for a word the owner is not
   * in, by the owner's free bits (and own frees) for the one it is in.
   * The owner moves between words meanwhile, without this lock, and
   * counts its moves in visit (odd from the moment it starts leaving a
   * word until it has entered the next, alloc/mcache.c): while visit is
   * odd every word's allocbits is exact; while it is even, cur_word and
   * the owner's free bits describe the same word; a read that a move
   * overlapped is done again.  Pairing cur_word with the free bits alone
   * was not enough: entering a word stores its free bits before the new
   * cur_word, and a slot of the old word read in the new word's free
   * bits was taken for free, its free refused and reported as a second
   * one (threads each freeing their own objects got dozens of reports a
   * run, and the objects stayed allocated until a sweep). */
  bool allocated;
  for (;;) {
    uintptr_t visit = atomic_load_acquire(&s->visit);
    uintptr_t cw = atomic_load_acquire(&s->cur_word);
    if ((visit & 1) || cw != w)
      allocated = (atomic_load_relaxed(&s->allocbits[w]) & bit) != 0;
    else
      allocated = !(mcache_slot_free_bits(owner, s->spanclass) & bit) && !(atomic_load_relaxed(&s->cur_freed) & bit);
    atomic_fence_loads();
    if (atomic_load_relaxed(&s->visit) == visit) break;
  }
  bool ok = allocated && !(atomic_load_relaxed(&s->freedbits[w]) & bit);
  if (ok) {
    atomic_or(&s->freedbits[w], bit);
    atomic_store_relaxed(&s->has_freed, 1);
    count_add_locked(&mc->counts.frees, 1);
  }
  return ok;
}

/* Remote frees of the slots `bits` of word w of uncached s; returns the
 * slots that were not allocated (left alone).  The caller finishes with
 * finish_uncached_frees_locked.  Lock held. */
static uint64_t free_uncached_locked(struct mspan *s, unsigned w, uint64_t bits, unsigned *freed) {
  uintptr_t a = atomic_load_relaxed(&s->allocbits[w]);
  if (a & bits) atomic_store_relaxed(&s->allocbits[w], a & ~bits);
  *freed += (unsigned)mgc_popcount64(a & bits);
  return bits & ~a;
}

/* Account for `freed` slots just freed in uncached s, and move it between
 * lists (or out of them) as it became partial or empty.  Lock held. */
static void finish_uncached_frees_locked(struct mcentral *mc, struct mspan *s, unsigned freed) {
  count_add_locked(&mc->counts.frees, freed);
  heap_live_sub((uintptr_t)freed * s->elemsize);
  s->needzero = 1;
  /* A partial span that stays partial keeps its place in the list. */
  bool was_full = s->alloccount == s->nelems;
  s->alloccount = (uint16_t)(s->alloccount - freed);
  if (s->alloccount == 0) {
    list_remove_locked(mc, s);
    release_empty_locked(mc, s);
  } else if (was_full) {
    list_remove_locked(mc, s);
    list_insert_locked(mc, s);
  }
}

bool mcentral_free_remote(struct mspan *s, uintptr_t idx) {
  unsigned spc = s->spanclass;
  struct mcentral *mc = &mcentrals[spc];
  uintptr_t bit = (uintptr_t)1 << (idx & 63);
  unsigned w = (unsigned)(idx >> 6);
  lock_acquire(&mc->lock);
  if (atomic_load_relaxed(&s->state) != MSPAN_IN_USE || s->spanclass != spc) {
    lock_release(&mc->lock); /* the span was freed and reused meanwhile */
    return false;
  }
  struct mcache *owner = (struct mcache *)atomic_load_relaxed(&s->cached_by);
  bool ok;
  if (owner) {
    ok = free_cached_locked(mc, s, owner, w, bit);
  } else {
    unsigned freed = 0;
    ok = !free_uncached_locked(s, w, bit, &freed);
    if (ok) finish_uncached_frees_locked(mc, s, freed);
  }
  lock_release(&mc->lock);
  return ok;
}

void mcentral_free_held(struct mspan *s, unsigned spc, uintptr_t sweepgen, uintptr_t incarnation, uint64_t *bits) {
  struct mcentral *mc = &mcentrals[spc];
  lock_acquire(&mc->lock);
  /* Under the mark-phase bracket neither the sweep generation nor the
   * barrier can change; a sweep of s needs this lock. */
  bool same = atomic_load_relaxed(&s->state) == MSPAN_IN_USE && s->spanclass == spc &&
              atomic_load_relaxed(&s->incarnation) == incarnation &&
              atomic_load_relaxed(&mheap_sweepgen) == sweepgen && !gc_barrier_on;
  struct mcache *owner = same ? (struct mcache *)atomic_load_relaxed(&s->cached_by) : NULL;
  unsigned freed = 0;
  for (unsigned w = 0; same && w < s->nwords; w++) {
    uint64_t held = bits[w], refused = 0;
    if (!held) continue;
    if (owner) {
      for (uint64_t b = held; b; b &= b - 1)
        if (!free_cached_locked(mc, s, owner, w, b & -b)) refused |= b & -b;
    } else {
      refused = free_uncached_locked(s, w, held, &freed);
    }
    if (refused)
      mgc_report("gc_free: object of %u bytes at %p freed twice (by two threads), found late; ignored",
                 s->elemsize, (void *)span_object_addr(s, (uintptr_t)w * 64 + (uintptr_t)__builtin_ctzll(refused)));
  }
  if (freed) finish_uncached_frees_locked(mc, s, freed);
  lock_release(&mc->lock);
}

struct orphan_walk {
  uintptr_t keep;
  bool uncache;
  unsigned found;
};

static void orphan_cb(struct mspan *s, void *ctx) {
  struct orphan_walk *ow = ctx;
  if (atomic_load_acquire(&s->state) != MSPAN_IN_USE || span_is_large(s)) return;
  uintptr_t by = atomic_load_relaxed(&s->cached_by);
  if (!by || by == ow->keep) return;
  ow->found++;
  if (ow->uncache) mcentral_uncache_span(s);
}

static unsigned walk_orphans(uintptr_t keep, bool uncache) {
  struct orphan_walk ow = {keep, uncache, 0};
  arena_walk_spans(atomic_load_relaxed(&arena_lo), atomic_load_relaxed(&arena_hi), orphan_cb, &ow);
  return ow.found;
}

unsigned mcentral_uncache_orphans(uintptr_t keep) { return walk_orphans(keep, true); }

unsigned mcentral_count_cached_by_others(uintptr_t keep) { return walk_orphans(keep, false); }

bool mcentral_is_valid(struct mcentral *mc) {
  bool ok = true;
  unsigned empty = 0;
  lock_acquire(&mc->lock);
  for (unsigned which = LIST_PARTIAL; which <= (LIST_FULL | LIST_GEN); which++) {
    if (!(which & (LIST_PARTIAL | LIST_FULL)) || (which & LIST_PARTIAL && which & LIST_FULL)) continue;
    for (struct mspan *s = *list_head(mc, which); s && ok; s = s->next) {
      if ((s->in_list & ~LIST_EMPTY) != which || s->spanclass != mc->spanclass) ok = false;
      if (atomic_load_relaxed(&s->cached_by)) ok = false;
      /* remote frees of an uncached span are in allocbits (gc_free's held
       * path relies on it) */
      if (atomic_load_relaxed(&s->has_freed)) ok = false;
      for (unsigned w = 0; w < s->nwords; w++)
        if (atomic_load_relaxed(&s->freedbits[w])) ok = false;
      if (!mspan_is_valid(s)) ok = false;
      if (!!(which & LIST_FULL) != (s->alloccount == s->nelems)) ok = false;
      if (!!(s->in_list & LIST_EMPTY) != (s->alloccount == 0)) ok = false;
      empty += !!(s->in_list & LIST_EMPTY);
      /* a span filed as swept must be swept */
      if ((which & LIST_GEN) == swept_gen() && span_needs_sweep(s)) ok = false;
    }
  }
  if (ok && empty != mc->nempty) ok = false;
  lock_release(&mc->lock);
  return ok;
}
