/*
 * mcache.c: the slow paths of the per-thread cache (see mcache.h).
 *
 * Word walk: a cached span is consumed word by word in address order from
 * the first word with a free slot.  Leaving a word writes its allocation
 * state back (allocbits[w] = ~freebits) and then release-stores the new
 * cur_word; see mspan.h for why the order matters to the collector.  A slot
 * freed by the owner behind the walk sets has_holes, and the walk restarts
 * from word 0 once before the span is given back.
 *
 * Allocating black.  While the collector marks (alloc_black), objects a
 * thread allocates must survive the sweep that follows, though the marker
 * may never see them.  Leaving a word therefore sets the mark bits of the
 * slots allocated since marking started: since the word was entered, or,
 * for the word that was current when marking started, since the snapshot
 * of its free bits the collector took then (snap_free, valid while
 * snap_visit equals the owner's visit count).  The
 * same is done when the span has not been swept since the last mark
 * (alloc_black may have just been switched off).  Objects allocated in that
 * word before the snapshot are left to the marker, which counts every slot
 * of a current word as allocated.  The sweeper never sweeps a cached
 * span's current word.
 *
 * A slot the owner frees in its current word is not reused during this
 * visit of the word (cur_freed): reusing it would make an object allocated
 * after the snapshot indistinguishable from the one freed.  Leaving the
 * word frees it and sets has_holes, so the walk comes back.
 *
 * Sweeping before entering.  Words other than the current one may hold
 * objects the last mark found dead, so a span the last mark termination
 * left unswept is swept before the owner enters another of its words.  The
 * test and the entry happen with the mark phase held still
 * (thread_mark_phase_enter): were a termination to fall between them, the
 * owner would enter a word of a span it just took for swept while a
 * sweeper frees slots in it, and could hand out a freed slot without the
 * zeroing that sweeper asked for.
 *
 * Zeroing.  A scanned span that may hold old data (needzero) has the free
 * slots of a word zeroed when the word is entered, except those the last
 * visit of that same word left free (clean_slots): they were zeroed then
 * and nobody has used them since.  Without that, a thread coming back to
 * one word over and over (a ring of frees and allocations) zeroed every
 * free slot of it at each visit.
 *
 * Held frees.  gc_free of an object in a span the thread does not cache
 * (a ring or a batch of frees reaches spans the thread has given back)
 * would take the class's mcentral lock once per object.  Instead, while
 * the barrier is off, the thread holds such frees back, in a bitmap of
 * slots per size class (held[sizeclass], one span at a time each): the
 * slots stay allocated in the span meanwhile, but gc_free, gc_base and
 * gc_size of this thread see them free (mcache_slot_is_allocated), so a
 * second free is reported at once.  One entry per size class, not one for
 * the whole thread, because frees in the order of allocation (a FIFO of
 * mixed sizes) alternate between classes: a single entry was applied, under
 * a lock, at nearly every free.  An entry's frees are applied under one
 * lock hold (mcentral_free_held) when the thread frees into another span
 * of that size class, when a new sweep generation has started, when it
 * takes a new span of that span class (which then sees them) and when it gives
 * its spans back; the sweep generation and the span's incarnation they
 * were held under are checked then, and if either moved, or the collector
 * marks, they are dropped: a mark has taken the objects as allocated, and
 * the sweep after it frees them unless something still points to them.
 * A thread holds at most one span's worth of frees per size class, so
 * heap_live (which drops when they are applied) runs ahead by at most
 * that, and slots held for a class the thread stops using wait for the
 * next sweep; statistics count them as frees at once (gc/stats.c).
 * Invariants, per entry h: h->count == popcount of its bits;
 * h->count > 0 => h->span != NULL; h->span is of h's size class and is
 * never cached by this thread (a refill of h->spanclass that takes a span
 * flushes h first).
 *
 * The free memo.  A program that frees objects of one size in the order
 * it allocated them (a queue, a list torn down, an array of records freed
 * in a loop) frees one span's objects one after the other.  For those
 * runs the thread remembers the span of its last held free (free_memo):
 * gc_free of an address inside it skips the page-map lookup and most
 * tests that hold for the whole span, and goes straight to the held bits
 * (mcache_free_in_memo; 120-127 instructions per allocation + free of 64
 * to 256 bytes in alloc_bench's ring against 144-151).  What a held free
 * needs and the memo does not check again holds while it names span s:
 *   - the collector is not marking and the sweep generation is the one s
 *     was held in: the memo is set only by held frees, which happen while
 *     the barrier is off, in the mark-phase bracket, and the collector
 *     forgets every thread's memo with the world stopped at mark start,
 *     which no thread's bracket can straddle;
 *   - s's entry holds frees for s: flush_held_entry forgets the memo when
 *     it empties the entry, and nothing else changes an entry's span;
 *   - s is in use, small and swept: its entry holds at least one free, so
 *     s cannot be given back (short of another thread freeing the same
 *     objects, the double free the entry's incarnation check catches);
 *   - not the tiny class (its frees are never held), not typed (never
 *     made the memo: its objects start after their slots' headers).
 * Finalizers, another thread caching s, the object's start and the slot
 * being allocated and not yet held are checked at every free, and so is
 * the entry's span, against double frees (see mcache_free_in_memo).
 * But with sizes mixed, whether a free lands in the span of the one
 * before is a coin toss, and testing it first cost a mispredicted branch
 * at every other free (ring_mix and batch_mix 20% slower).  So the memo
 * is tried only while it pays.  At the first application of held frees
 * after FREE_MEMO_REVIEW_AFTER of them, the thread reviews how many went
 * to another span than the one before, or the slow way
 * (free_memo_switches, counted without a branch), and tries the memo while
 * at most one in FREE_MEMO_MAX_SWITCH_SHARE did.  The slow way
 * (mcache_free_held) is the first free into a span and every free into
 * one whose frees the memo refuses (finalizers, cached by another thread),
 * so a run of those turns it off.  For most programs free_memo_on then
 * changes rarely and gc_free's test of it is predicted (a class of 8
 * objects to a span, freed in runs, sits at the limit and may flip at
 * each review); a thread of mixed sizes pays that test and the counting,
 * about 10 instructions per free.  Not counted: frees into the thread's
 * own cached span, tiny and large objects.  A thread whose memo is on and
 * then frees only those gets no review, and would pay the memo's bracket
 * and range test at each free for good, about 8 instructions; so once
 * its refills have handed out FREE_MEMO_ALLOC_BUDGET slots with no review
 * between, the memo is turned off (mcache_refill: a count in gc_free
 * itself, even a decrement of memory, cost every gc_free path a push and
 * a pop, GCC no longer deferring its saving of a register).  A thread
 * that holds runs of frees reviews every FREE_MEMO_REVIEW_AFTER of them,
 * a few hundred allocations apart when it allocates as much as it frees;
 * one that frees without allocating keeps the memo until its next held
 * free or refill.
 *
 * Giving spans back each cycle.  A cached span counts in heap_live as
 * fully allocated, and a held free counts until it is applied.  A thread
 * that stops using a size class (a program moving from one phase to the
 * next) would keep that class's span and held frees forever: heap_live
 * would stay above the live heap by up to a span per class, and where that
 * is near the trigger, cycles would follow one another with nothing to
 * free.  So the first refill of a new sweep generation (one per completed
 * mark) gives every cached span back and applies or drops the held frees
 * (mcache_release_all), as at thread exit, before it takes a span: the
 * phantom lasts one cycle at most for a thread that allocates.  The spans
 * in use are taken again at their next refill, a lock or two per class
 * per cycle.
 *
 * visit is odd from the moment a thread starts leaving a word until it has
 * entered the next one, and even while (cur_word, free bits) describe the
 * word it allocates from.  Entering records enter_free, sets the free bits,
 * publishes cur_word and then makes visit even.  A snapshot taken while
 * visit is odd is void (the whole visit then follows the snapshot, so
 * enter_free is the right measure); one taken while it is even is exact
 * for the visit in progress, and a later entry changes visit and retires
 * it.
 */
#include "alloc/mcache.h"

#include "alloc/heaplive.h"
#include "alloc/mcentral.h"
#include "runtime/thread.h"
#include "runtime/throw.h"

/* Reviewed after this many held frees: enough that one review's verdict
 * lasts a span's worth of frees or more (spans of classes up to 1 KiB
 * hold 64 to 1024 objects). */
#define FREE_MEMO_REVIEW_AFTER 256
/* Tried while at most 1 held free in this many went to another span than
 * the free before it. */
#define FREE_MEMO_MAX_SWITCH_SHARE 8

struct mspan mcache_no_memo = {.base = UINTPTR_MAX, .limit = 0};

static void review_free_memo(struct mcache *c) {
  uintptr_t held = c->free_memo_hits + c->free_memo_held;
  if (held < FREE_MEMO_REVIEW_AFTER) return;
  c->free_memo_on = c->free_memo_switches <= held / FREE_MEMO_MAX_SWITCH_SHARE;
  c->free_memo_alloc_budget = FREE_MEMO_ALLOC_BUDGET;
  c->free_memo_switches = 0;
  c->free_memo_hits = 0;
  c->free_memo_held = 0;
}

void mcache_init(struct mcache *c) {
  memset(c, 0, sizeof(*c));
  mcache_forget_free_memo(c);
  c->released_sweepgen = atomic_load_relaxed(&mheap_sweepgen);
  unsigned at = 0;
  for (unsigned sc = 1; sc < SIZECLASS_COUNT; sc++) {
    c->held[sc].bits_at = (uint16_t)at;
    at += (sizeclass_nelems[sc] + 63u) / 64u;
  }
  mgc_assert(at == SIZECLASS_BITMAP_WORDS_SUM);
}

/* A remote gc_free and the owner's own gc_free of the same object can both
 * pass their checks when they race.  Before slots the owner freed become
 * reusable, their pending remote frees are dropped (and reported): folding
 * them later would free whatever the slot holds by then. */
static void drop_double_frees(struct mspan *s, unsigned w, uint64_t slots) {
  if (!atomic_load_relaxed(&s->has_freed)) return;
  uintptr_t dup = atomic_clear_bits(&s->freedbits[w], slots);
  if (dup)
    mgc_report("gc_free: object of %u bytes at %p freed twice (by two threads); ignored",
               s->elemsize, (void *)(s->base + ((uintptr_t)w * 64 + (uintptr_t)__builtin_ctzll(dup)) * s->elemsize));
}

/* Leave the current word of slot sl: write its state back to the span. */
static void leave_word(struct mcache_slot *sl, struct mspan *s) {
  unsigned w = (unsigned)atomic_load_relaxed(&s->cur_word);
  uint64_t own_freed = atomic_load_relaxed(&s->cur_freed);
  uint64_t allocated = ~sl->freebits & span_word_mask(s, w) & ~own_freed;
  if (atomic_load_relaxed(&alloc_black) || span_needs_sweep(s)) {
    /* Under the mcentral lock, which the sweeper holds: marks set after a
     * sweep cleared them would still be set when the next mark starts, and
     * that mark would take the objects for scanned ones. */
    struct mgc_lock *lock = &mcentrals[s->spanclass].lock;
    lock_acquire(lock);
    if (atomic_load_relaxed(&alloc_black) || span_needs_sweep(s)) {
      uint64_t since = atomic_load_acquire(&s->snap_visit) == atomic_load_relaxed(&s->visit)
                         ? atomic_load_relaxed(&s->snap_free)
                         : atomic_load_relaxed(&s->enter_free);
      uint64_t fresh = since & allocated;
      if (fresh) atomic_or(&s->markbits[w], fresh);
    }
    atomic_store_relaxed(&s->allocbits[w], allocated);
    lock_release(lock);
  } else {
    atomic_store_relaxed(&s->allocbits[w], allocated);
  }
  /* Between words now: cur_word and the free bits no longer describe a
   * visit (the collector and MGC_VERIFY check the parity; so do remote
   * frees, mcentral.c's free_cached_locked, which read it while this runs,
   * as a seqlock: allocbits before the odd count, the odd count before
   * the steps below). */
  atomic_store_release(&s->visit, atomic_load_relaxed(&s->visit) | 1);
  atomic_fence_stores();
  if (own_freed) {
    atomic_store_relaxed(&s->cur_freed, 0);
    s->has_holes = 1;
    drop_double_frees(s, w, own_freed);
  }
  /* Slots never handed out during this visit are still zero. */
  s->clean_word = (uint16_t)w;
  s->clean_slots = sl->freebits;
  /* Atomic like the fast path's store: other threads read the free bits
   * (remote gc_free, statistics; mcache_slot_free_bits). */
  atomic_store_relaxed((atomic_word *)&sl->freebits, 0);
}

/* Zero the free slots of word w (runs of adjacent slots at once).  The
 * marker may be reading them meanwhile (it counts a cached span's current
 * word as allocated): it sees old words or zeroes, both harmless. */
static void zero_free_slots(const struct mspan *s, unsigned w, uint64_t free_bits) {
  uintptr_t word_addr = s->base + (uintptr_t)w * 64 * s->elemsize;
  while (free_bits) {
    unsigned first = (unsigned)__builtin_ctzll(free_bits);
    uint64_t rest = free_bits >> first;
    unsigned run = ~rest ? (unsigned)__builtin_ctzll(~rest) : 64 - first;
    memset((void *)(word_addr + (uintptr_t)first * s->elemsize), 0, (size_t)run * s->elemsize);
    free_bits = run + first >= 64 ? 0 : free_bits & ~((((uint64_t)1 << run) - 1) << first);
  }
}

/* Make word w of s current in slot sl, if it has a free slot. */
static bool enter_word(struct mcache_slot *sl, struct mspan *s, unsigned w) {
  uint64_t free_bits = ~atomic_load_relaxed(&s->allocbits[w]) & span_word_mask(s, w);
  if (!free_bits) return false;
  drop_double_frees(s, w, free_bits);
  if (atomic_load_byte_relaxed(&s->needzero) && !spanclass_noscan(s->spanclass))
    zero_free_slots(s, w, free_bits & ~(s->clean_word == w ? s->clean_slots : 0));
  uintptr_t visit = atomic_load_relaxed(&s->visit) | 1;
  atomic_store_relaxed(&s->visit, visit);     /* odd: entering */
  atomic_fence_stores();                      /* a stop or a remote free sees the steps in order */
  atomic_store_relaxed(&s->enter_free, free_bits);
  sl->word_addr = s->base + (uintptr_t)w * 64 * s->elemsize;
  atomic_store_relaxed((atomic_word *)&sl->freebits, free_bits);
  atomic_store_release(&s->cur_word, w);
  atomic_store_release(&s->visit, visit + 1); /* even: entered */
  return true;
}

/* Move slot sl to the next word of its span with a free slot.  The caller
 * holds the mark phase still (see the top). */
static bool advance_word(struct mcache_slot *sl, struct mspan *s) {
  if (span_needs_sweep(s)) mcentral_sweep_cached(s);
  unsigned cur = (unsigned)atomic_load_relaxed(&s->cur_word);
  leave_word(sl, s);
  for (unsigned w = cur + 1; w < s->nwords; w++)
    if (enter_word(sl, s, w)) return true;
  if (s->has_holes) {
    s->has_holes = 0;
    /* The owner's key stands for has_holes ("Free keys", runtime/api.c). */
    atomic_store_relaxed(&s->free_key, 0);
    for (unsigned w = 0; w <= cur && w < s->nwords; w++)
      if (enter_word(sl, s, w)) return true;
  }
  return false;
}

/* Start allocating from s, just taken from mcentral.  The caller holds the
 * mark phase still (see the top). */
static void enter_first_word(struct mcache_slot *sl, struct mspan *s) {
  if (span_needs_sweep(s)) mcentral_sweep_cached(s);
  sl->span = s;
  sl->elemsize = s->elemsize;
  unsigned w = 0;
  while (!enter_word(sl, s, w)) {
    w++;
    mgc_assert(w < s->nwords);
  }
}

static void uncache_slot(struct mcache_slot *sl) {
  struct mspan *s = sl->span;
  leave_word(sl, s);
  sl->span = NULL;
  mcentral_uncache_span(s);
}

/* Apply (or drop) the frees held in h, and empty it.  The entry is
 * emptied first, from a copy: a fork() between the two then leaves the
 * child without these frees (dropped: the objects stay allocated until a
 * sweep finds them unreachable), where emptying it after the frees were
 * applied left a child that gives back every other thread's cache
 * (runtime/thread.c) to apply them a second time, to slots perhaps handed
 * out again meanwhile. */
static void flush_held_entry(struct mcache *c, struct held_frees *h) {
  struct mspan *s = h->span;
  if (!s) return;
  if (atomic_load_relaxed(&s->free_key) == mcache_held_key(c)) atomic_cas(&s->free_key, mcache_held_key(c), 0);
  if (atomic_load_relaxed(&c->free_memo) == (uintptr_t)s) mcache_forget_free_memo(c);
  review_free_memo(c);
  uint64_t bits[HELD_WORDS_MAX];
  uint32_t count = h->count;
  if (count) {
    memcpy(bits, &c->held_bits[h->bits_at], h->nwords * sizeof(bits[0]));
    memset(&c->held_bits[h->bits_at], 0, h->nwords * sizeof(bits[0]));
    h->count = 0;
  }
  h->span = NULL;
  __asm__ __volatile__("" ::: "memory");
  /* From an older sweep generation they would be dropped under the lock
   * anyway (mcentral_free_held); the generation only moves on. */
  if (count && h->sweepgen == atomic_load_relaxed(&mheap_sweepgen)) {
    struct mthread *t = thread_current;
    uintptr_t phase = thread_mark_phase_enter(t);
    mcentral_free_held(s, h->spanclass, h->sweepgen, h->incarnation, bits);
    thread_mark_phase_leave(t, phase);
  }
}

bool mcache_free_held(struct mcache *c, struct mspan *s, uintptr_t idx) {
  /* Checked before the entry is touched: a bad free must not leave it
   * pointing at s with nothing held. */
  if (!mcache_slot_is_allocated(c, s, idx)) return false; /* also when held */
  struct held_frees *h = &c->held[s->sizeclass];
  uintptr_t sg = atomic_load_relaxed(&mheap_sweepgen);
  uintptr_t incarnation = atomic_load_relaxed(&s->incarnation);
  if (h->span != s || h->sweepgen != sg || h->incarnation != incarnation) {
    flush_held_entry(c, h);
    h->span = s;
    h->sweepgen = sg;
    h->incarnation = incarnation;
    h->spanclass = s->spanclass;
    h->nwords = (uint8_t)s->nwords;
  }
  c->held_bits[h->bits_at + (idx >> 6)] |= (uint64_t)1 << (idx & 63);
  h->count++;
  mcache_note_held_free(c, s, true);
  return true;
}

void mcache_revoke_free_keys(struct mcache *c) {
  for (unsigned spc = 0; spc < SPANCLASS_COUNT; spc++) {
    struct mspan *s = c->slots[spc].span;
    if (s) atomic_store_relaxed(&s->free_key, 0);
  }
  /* An entry's span record may be in another use by now (after a double
   * free): a key cleared there costs that span one free the usual way. */
  for (unsigned sc = 1; sc < SIZECLASS_COUNT; sc++) {
    struct mspan *s = c->held[sc].span;
    if (s) atomic_store_relaxed(&s->free_key, 0);
  }
}

/* The held key stands for the tests mcache_free_held_fast makes and for
 * those gc_free makes before it: the span uncached, without finalizers,
 * not typed, the collector not marking.  A thread caching s meanwhile
 * (mcentral_cache_span) stores cached_by, fences and clears the key;
 * this side stores the key, fences and reads cached_by: one of the two
 * sees the other, and no held key outlives the caching. */
void mcache_stamp_held_key(struct mcache *c, struct mspan *s) {
  const struct held_frees *h = &c->held[s->sizeclass];
  if (h->span != s || h->sweepgen != atomic_load_relaxed(&mheap_sweepgen) || gc_barrier_on ||
      atomic_load_relaxed(&s->finalizers) || spanclass_typed(s->spanclass) || atomic_load_relaxed(&s->cached_by))
    return;
  uintptr_t key = mcache_held_key(c);
  atomic_store_relaxed(&s->free_key, key);
  atomic_fence();
  if (atomic_load_relaxed(&s->cached_by)) atomic_cas(&s->free_key, key, 0);
}

void mcache_flush_held(struct mcache *c) {
  for (unsigned sc = 1; sc < SIZECLASS_COUNT; sc++) flush_held_entry(c, &c->held[sc]);
}

/* A refill with the memo on: the slots it hands out come off the memo's
 * budget (see "The free memo" at the top).  Called before the refill, so
 * it is the previous word's slots that are counted (all of them: the
 * refill comes when they are used up). */
static void spend_free_memo_budget(struct mcache *c, const struct mcache_slot *sl) {
  if (!sl->span) return;
  c->free_memo_alloc_budget -= (int32_t)mgc_popcount64(atomic_load_relaxed(&sl->span->enter_free));
  if (c->free_memo_alloc_budget <= 0) c->free_memo_on = false;
}

MGC_NOINLINE void *mcache_refill(struct mcache *c, unsigned spc, bool zero) {
  if (unlikely(c->is_placeholder)) return mcache_refill_unregistered(spc, zero);
  uintptr_t sweepgen = atomic_load_relaxed(&mheap_sweepgen);
  if (unlikely(c->released_sweepgen != sweepgen)) {
    c->released_sweepgen = sweepgen;
    mcache_release_all(c); /* see "Giving spans back each cycle" at the top */
  }
  struct mcache_slot *sl = &c->slots[spc];
  struct mspan *s = sl->span;
  struct mthread *t = thread_current;
  if (unlikely(c->free_memo_on)) spend_free_memo_budget(c, sl);
  if (s) {
    uintptr_t phase = thread_mark_phase_enter(t);
    bool advanced = advance_word(sl, s);
    thread_mark_phase_leave(t, phase);
    if (!advanced) {
      sl->span = NULL;
      mcentral_uncache_span(s); /* current word already written back */
      s = NULL;
    }
  }
  if (!s) {
    /* A new span: the frees this thread holds for the class are applied
     * first, so that the span taken sees them.  It may be the one they
     * were held for, which is passed over while it holds objects
     * (mcentral_cache_span).  Not at every refill: moving to the next
     * word of the span in use does not need them, and ring_64 applied an
     * entry of a quarter of a span at every word. */
    struct held_frees *h = &c->held[spanclass_sizeclass(spc)];
    const struct mspan *freeing_into = NULL;
    if (h->span && h->spanclass == spc) {
      freeing_into = h->span;
      flush_held_entry(c, h);
    }
    heap_before_slow_alloc();
    heap_check_trigger();
    s = mcentral_cache_span(c, spc, freeing_into);
    if (!s) return mcache_refill_failed(spc, zero);
    heap_after_slow_alloc((uintptr_t)(s->nelems - s->alloccount) * s->elemsize);
    uintptr_t phase = thread_mark_phase_enter(t);
    enter_first_word(sl, s);
    thread_mark_phase_leave(t, phase);
  }
  return mcache_alloc(c, spc, zero);
}

enum word_coverage mcache_current_word_coverage_stw(const struct mspan *s, uintptr_t idx) {
  const struct mcache *owner = (const struct mcache *)atomic_load_relaxed(&s->cached_by);
  if (!owner || (idx >> 6) != atomic_load_relaxed(&s->cur_word)) return WORD_WHITE;
  uintptr_t visit = atomic_load_relaxed(&s->visit);
  if ((visit & 1) || owner->slots[s->spanclass].span != s) return WORD_UNSURE;
  uint64_t bit = (uint64_t)1 << (idx & 63);
  if ((mcache_slot_free_bits(owner, s->spanclass) & bit) || (atomic_load_relaxed(&s->cur_freed) & bit))
    return WORD_UNSURE;
  /* Black only if allocated since marking started (the test leave_word
   * applies); an older object had to be marked. */
  uint64_t since = atomic_load_relaxed(&s->snap_visit) == visit ? atomic_load_relaxed(&s->snap_free)
                                                                : atomic_load_relaxed(&s->enter_free);
  return (since & bit) ? WORD_BLACK : WORD_WHITE;
}

void mcache_release_all(struct mcache *c) {
  mcache_flush_held(c);
  for (unsigned spc = 0; spc < SPANCLASS_COUNT; spc++)
    if (c->slots[spc].span) uncache_slot(&c->slots[spc]);
  c->tiny = 0;
  c->tiny_offset = 0;
}

/* Reads another thread's cache racily on purpose (statistics). */
MGC_NO_SANITIZE_SCAN void mcache_add_unused_slots(const struct mcache *c, uint64_t unused[SPANCLASS_COUNT]) {
  for (unsigned spc = 0; spc < SPANCLASS_COUNT; spc++) {
    const struct mspan *s = c->slots[spc].span;
    if (!s || atomic_load_relaxed(&s->cached_by) != (uintptr_t)c) continue;
    unsigned cur = (unsigned)atomic_load_acquire(&s->cur_word);
    uint64_t n = (uint64_t)mgc_popcount64(mcache_slot_free_bits(c, spc));
    for (unsigned w = 0; w < s->nwords; w++)
      if (w != cur) n += (uint64_t)mgc_popcount64(~atomic_load_relaxed(&s->allocbits[w]) & span_word_mask(s, w));
    unused[spc] += n;
  }
}

void mcache_check_zeroed(const void *p, size_t n) {
  const uint64_t *w = p;
  for (size_t i = 0; i < n / sizeof(uint64_t); i++)
    if (w[i]) mgc_throw("an object handed out as zeroed holds old data (needzero wrong)");
}
