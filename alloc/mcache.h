/*
 * mcache.h: the per-thread allocation cache and its fast path.
 *
 * Each registered thread owns one mcache.  For every span class it holds at
 * most one span and, in a slot, the free bits of the 64-slot word of that
 * span it is allocating from.  Allocation is a count-trailing-zeros over
 * those bits: no lock, no atomic read-modify-write, and the span itself is
 * not touched.  When the word is used up, mcache_refill (mcache.c) writes
 * it back to the span's allocbits and moves to the next word with room, or
 * trades the span for another with mcentral.
 *
 * Owner: only the owning thread reads or writes its mcache, except that the
 * thread registry releases a dead thread's mcache (mcache_release_all) once
 * that thread can no longer run.  The collector writes only free_memo, with
 * the world stopped (see "The free memo" in alloc/mcache.c).
 *
 * Fast-path budget: gc_alloc of a small object is about 20 instructions
 * (tools/bench/callgrind_fastpath.sh keeps it honest).
 */
#ifndef MGC_MCACHE_H
#define MGC_MCACHE_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "mgc.h"

#include "alloc/mspan.h"
#include "runtime/compiler.h"
#include "runtime/throw.h"

/* 32 bytes, so the fast path indexes the slot array with a shift. */
struct mcache_slot {
  uint64_t freebits;     /* 1 = free slot in the current word */
  uintptr_t word_addr;   /* address of slot 0 of the current word */
  uint32_t elemsize;
  uint32_t unused;
  struct mspan *span;    /* NULL: nothing cached (freebits == 0) */
};
_Static_assert(sizeof(struct mcache_slot) == 32, "mcache_slot should stay 32 bytes");
/* size_to_class8's entries are the byte offsets of a class's pair of slots
 * (runtime/api.c, the allocation fast paths). */
_Static_assert(2 * sizeof(struct mcache_slot) == (size_t)1 << SIZECLASS_LOOKUP_SHIFT,
               "a span class pair of mcache slots must span 1 << SIZECLASS_LOOKUP_SHIFT bytes");

/* Remote frees held back (alloc/mcache.c): gc_free of objects in a span
 * the thread does not cache, applied together under one lock hold.  One
 * entry per size class (spans of its scan, noscan and typed classes take
 * turns in it); the entry's bits are the words of mcache.held_bits from
 * bits_at on, as many as a span of the class has. */
struct held_frees {
  struct mspan *span;      /* NULL: nothing held */
  uintptr_t sweepgen;      /* mheap_sweepgen when the first was held */
  uintptr_t incarnation;   /* span->incarnation then */
  uint8_t spanclass;       /* span's class (read racily by statistics) */
  uint8_t nwords;          /* words of bits in use (the span's nwords) */
  uint16_t bits_at;        /* set once by mcache_init */
  uint32_t count;          /* bits set in its bits */
};
_Static_assert(sizeof(struct held_frees) == 32, "held_frees should stay 32 bytes");
#define HELD_WORDS_MAX ((SIZECLASS_MAX_NELEMS + 63) / 64) /* bits of one entry */
_Static_assert(SPANCLASS_COUNT <= 256 && SIZECLASS_MAX_NELEMS / 64 <= 255 && SIZECLASS_BITMAP_WORDS_SUM <= 65535,
               "held_frees fields are too narrow for the size classes");

/* The free memo is turned off when refills have handed out this many
 * slots with it on and no review since (a thread whose held frees
 * stopped; alloc/mcache.c, "The free memo"). */
#define FREE_MEMO_ALLOC_BUDGET 65536

struct mcache {
  struct mcache_slot slots[SPANCLASS_COUNT];
  /* The free memo (alloc/mcache.c, "The free memo"): the span of the last
   * held free, or &mcache_no_memo.  Written by the owner, and by the
   * collector with the world stopped (mcache_forget_free_memo). */
  atomic_word free_memo;
  uint32_t free_memo_switches; /* held frees into another span than the last,
                                  or the slow way (mcache_note_held_free) */
  bool free_memo_on;           /* gc_free tries the memo first */
  int32_t free_memo_alloc_budget; /* slots refills may still hand out,
                                     the memo on, before a review must
                                     come (mcache_refill) */
  uintptr_t tiny;          /* current tiny block, or 0 */
  uintptr_t tiny_offset;   /* bytes of it handed out */
  /* Held frees since the memo was last reviewed, through the memo (hits)
   * and the usual way (held).  Not next to free_memo_switches: side by
   * side, compilers add to the two with vector instructions, several more
   * on gc_free's path. */
  uintptr_t free_memo_hits;
  uintptr_t free_memo_held;
#if MGC_DEBUG >= 1
  /* Frees done by a free key (runtime/api.c, "Free keys"), owner's and
   * held: for tests to tell the keyed path was taken.  Debug builds only,
   * off the release fast path. */
  uintptr_t debug_keyed_frees;
#endif
  struct held_frees held[SIZECLASS_COUNT];  /* by the span's size class */
  uint64_t held_bits[SIZECLASS_BITMAP_WORDS_SUM];
  /* mheap_sweepgen when the thread last gave all its spans back (see
   * "Giving spans back each cycle", alloc/mcache.c). */
  uintptr_t released_sweepgen;
  /* The placeholder a thread uses before it is registered: every slot is
   * empty, so its first allocation reaches mcache_refill, which registers
   * the thread instead. */
  bool is_placeholder;
};

/* Implemented by runtime/thread.c: register the calling thread (its first
 * allocation) and allocate from its new mcache. */
void *mcache_refill_unregistered(unsigned spc, bool zero);
/* Implemented by runtime/oom.c: mcentral had no span for class spc (the
 * heap cannot grow); collect, call the out-of-memory handler and retry.
 * The object, or NULL with errno ENOMEM. */
void *mcache_refill_failed(unsigned spc, bool zero);

/* The owner's free bits of its current word of class spc, read by another
 * thread (remote gc_free validation): racy by nature, so the fast path
 * stores them with a plain word store that this relaxed load pairs with. */
MGC_INLINE uint64_t mcache_slot_free_bits(const struct mcache *c, unsigned spc) {
  return atomic_load_relaxed((const atomic_word *)&c->slots[spc].freebits);
}

/* Debug builds (MGC_DEBUG >= 2): throw if memory handed out as zeroed
 * is not. */
void mcache_check_zeroed(const void *p, size_t n);

/* Slow path: refill slot spc and allocate from it; NULL when out of memory. */
void *mcache_refill(struct mcache *c, unsigned spc, bool zero);

/* Index of the lowest set bit of bits (nonzero), as a full-width value:
 * __builtin_ctzll's int result costs a sign extension (and a
 * dependency-breaking clear) on the fast path. */
MGC_INLINE uintptr_t lowest_bit_index(uint64_t bits) {
#if defined(__x86_64__)
  uintptr_t idx;
  __asm__("tzcnt %1, %0" : "=r"(idx) : "r"(bits) : "cc");
  return idx;
#else
  return (uintptr_t)(unsigned)__builtin_ctzll(bits);
#endif
}

/* One object of span class spc (small).  The free slots of a word are
 * zeroed when the mcache enters it, for the span classes whose objects are
 * handed out zeroed (scan and typed; `zero` says which, a constant at every
 * call site), so the fast path has no zeroing test. */
MGC_INLINE void *mcache_alloc_from(struct mcache *c, struct mcache_slot *sl, bool zero) {
  uint64_t bits = sl->freebits;
  if (unlikely(bits == 0)) return mcache_refill(c, (unsigned)(sl - c->slots), zero);
  void *p = (void *)(sl->word_addr + lowest_bit_index(bits) * sl->elemsize);
  /* The address is in a register before the slot is taken: a stop at any
   * point finds the object either still free (then it is allocated after
   * the collector's snapshot, black) or held in a register (a root). */
  __asm__ __volatile__("" : : "r"(p) : "memory");
  atomic_store_relaxed((atomic_word *)&sl->freebits, bits & (bits - 1));
#if MGC_DEBUG >= 2
  if (zero) mcache_check_zeroed(p, sl->elemsize);
#endif
  return p;
}

MGC_INLINE void *mcache_alloc(struct mcache *c, uintptr_t spc, bool zero) {
  return mcache_alloc_from(c, &c->slots[spc], zero);
}

void mcache_init(struct mcache *c);
/* The slot's part of mcache_free_local (below): free slot idx of s, or
 * return false when it is free already; the span's flags are the
 * caller's.  gc_free's keyed path calls it alone, as the owner's key is
 * only given to a span whose flags are set ("Free keys", runtime/api.c). */
MGC_INLINE bool mcache_free_local_slot(struct mcache *c, struct mspan *s, uintptr_t idx) {
  struct mcache_slot *sl = &c->slots[s->spanclass];
  unsigned w = (unsigned)(idx >> 6);
  uint64_t bit = (uint64_t)1 << (idx & 63);
  /* Freed remotely?  freedbits is looked at only when some slot was. */
  if (unlikely(atomic_load_relaxed(&s->has_freed)) && (atomic_load_relaxed(&s->freedbits[w]) & bit)) return false;
  /* Two cases, taken by selects rather than a branch: where frees of mixed
   * sizes land, in the word the thread allocates from or not, is as good
   * as random, and a branch on it mispredicted at every third free.
   *   In the current word, a slot is allocated when it is neither free in
   *   the slot's bits nor in cur_freed; the free sets its cur_freed bit
   *   (reused after the word is left, alloc/mcache.c).
   *   In another word, allocbits says; the free clears the bit.
   * Either way the free flips the slot's bit in the chosen word v, and the
   * slot is allocated iff it is clear in (v | freebits) (current word) or
   * set in v (another): set in (v | (freebits & in_cur)) ^ in_cur.  The
   * selects are masks: compilers turn a ?: on this back into the branch. */
  uintptr_t cur = atomic_load_relaxed(&s->cur_word);
  uint64_t in_cur = -(uint64_t)(w == cur); /* all ones or zero */
  uintptr_t other = (uintptr_t)&s->allocbits[w];
  atomic_word *word = (atomic_word *)(other ^ ((other ^ (uintptr_t)&s->cur_freed) & in_cur));
  uintptr_t v = atomic_load_relaxed(word);
  if (!(((v | (sl->freebits & in_cur)) ^ in_cur) & bit)) return false;
  atomic_store_relaxed(word, v ^ bit);
  s->local_frees++;
  return true;
}

/* gc_free of slot idx of span s, cached by c (the calling thread's).
 * Returns false when the slot is already free.  Inline: it is gc_free's
 * fast path (runtime/api.c).  The caller holds the mark phase still
 * (thread_mark_phase_enter) and s is swept: a slot in a word other than
 * the current one is freed by a plain read and write of allocbits, words
 * a sweeper of s rewrites under the class lock. */
MGC_INLINE bool mcache_free_local(struct mcache *c, struct mspan *s, uintptr_t idx) {
  if (!mcache_free_local_slot(c, s, idx)) return false;
  /* Maybe behind the word in use: the walk comes back once (a free ahead
   * of it costs that walk a look at words without free slots). */
  s->has_holes = 1;
  atomic_store_byte_relaxed(&s->needzero, 1); /* zeroed when a word holding it is entered again */
  return true;
}

/* gc_free of slot idx of small span s, which c does not cache, by c's
 * thread while the barrier is off: held back in the entry of s's size
 * class, applied with the other frees held for s when the thread frees
 * into another span of that size class, takes a new span of s's span
 * class or gives its spans back.  Returns false when the slot is already free
 * (or held).  The caller keeps the mark phase from changing
 * (thread_mark_phase_enter). */
bool mcache_free_held(struct mcache *c, struct mspan *s, uintptr_t idx);
/* The free memo's "nothing": a span record no address lies in (base above
 * limit), never in any list or map. */
extern struct mspan mcache_no_memo;

/* A held free into s: counted for the memo's review, and s is the memo.
 * A typed span never is (its objects start after their slots' headers,
 * which the memo path does not allow for), so its frees all count as
 * switches and a run of them leaves the memo off.  A free that took the
 * slow way (mcache_free_held: the first into a span, or into one whose
 * frees the memo refuses, with finalizers or cached by another thread)
 * counts as a switch too. */
MGC_INLINE void mcache_note_held_free(struct mcache *c, struct mspan *s, bool slow) {
  c->free_memo_switches += slow || atomic_load_relaxed(&c->free_memo) != (uintptr_t)s;
  c->free_memo_held++;
  atomic_store_relaxed(&c->free_memo, spanclass_typed(s->spanclass) ? (uintptr_t)&mcache_no_memo : (uintptr_t)s);
}

/* Forget the memo (its span's entry is applied, or a mark starts). */
MGC_INLINE void mcache_forget_free_memo(struct mcache *c) {
  atomic_store_relaxed(&c->free_memo, (uintptr_t)&mcache_no_memo);
}

/* Free keys (runtime/api.c, "Free keys"): a span's free_key is c, its
 * owner's mcache, or c | FREE_KEY_HELD for the thread that holds frees
 * for it, or 0. */
#define FREE_KEY_HELD ((uintptr_t)1)
MGC_INLINE uintptr_t mcache_held_key(const struct mcache *c) { return (uintptr_t)c | FREE_KEY_HELD; }

/* Give s the free key of c, its owner, after an owner's free into it
 * the usual way (which set has_holes and needzero), when the tests the
 * key stands for that the free did not make hold: s is not typed.  The
 * caller (free_general) is c's thread, inside the mark-phase bracket
 * (thread_mark_phase_enter), and has seen c cache s, s swept, the barrier
 * off, s not tiny: none of these can change before the bracket is left.
 * Finalizers are not stood for by the key (free_by_key tests them). */
MGC_INLINE void mcache_stamp_free_key(struct mcache *c, struct mspan *s) {
  mgc_assert(atomic_load_relaxed(&s->cached_by) == (uintptr_t)c && !span_needs_sweep(s) && !gc_barrier_on &&
             s->spanclass != TINY_SPANCLASS);
  if (!spanclass_typed(s->spanclass)) atomic_store_relaxed(&s->free_key, (uintptr_t)c);
}

/* Give s c's held key after a free held for it the usual way, when the
 * key's tests hold (mcache.c). */
void mcache_stamp_held_key(struct mcache *c, struct mspan *s);

/* Clear the free keys of every span c caches or holds frees for (a mark
 * starts; the world is stopped). */
void mcache_revoke_free_keys(struct mcache *c);

/* Hold back the free of slot idx of s in h, s's entry (h->span == s),
 * unless the slot is held already or free in allocbits: the test and the
 * update of both inline held paths (mcache_free_held_fast and
 * mcache_free_in_memo; both have seen s uncached).  No look at freedbits:
 * an uncached span has none set (remote frees go to its allocbits, and
 * uncaching folds them in).  Were s cached by another thread meanwhile and
 * the slot freed remotely as well, that double free is reported when
 * these frees are applied. */
MGC_INLINE bool held_entry_add(struct mcache *c, struct held_frees *h, const struct mspan *s, uintptr_t idx) {
  unsigned w = (unsigned)(idx >> 6);
  uint64_t bit = (uint64_t)1 << (idx & 63);
  uint64_t *held = &c->held_bits[h->bits_at + w];
  if ((*held & bit) || !(atomic_load_relaxed(&s->allocbits[w]) & bit)) return false;
  *held |= bit;
  h->count++;
  return true;
}

/* gc_free(p) through the memo: when p is an object of the memo's span that
 * can be held like the frees before it, hold it and return true; false
 * means nothing was done (the caller takes the usual path, which also
 * reports a bad p).  The caller holds the mark phase still
 * (thread_mark_phase_enter) and c->free_memo_on is set.  What a held free
 * needs and is not checked here holds while the memo names the span (see
 * "The free memo" in alloc/mcache.c): the collector is not marking, the
 * sweep generation is the one the entry was opened in, and the span is
 * swept, in use and small, neither tiny nor typed. */
MGC_INLINE bool mcache_free_in_memo(struct mcache *c, uintptr_t p) {
  struct mspan *s = (struct mspan *)atomic_load_relaxed(&c->free_memo);
  if (p < s->base || p >= s->limit) return false;
  /* Finalizers: gc_free drops the object's (free_slow).  Cached: by
   * another thread now, whose current word allocbits does not describe. */
  if (atomic_load_relaxed(&s->finalizers) || atomic_load_acquire(&s->cached_by)) return false;
  uintptr_t idx;
  if (!span_slot_of(s, p - s->base, &idx)) return false;
  /* h->span is s whenever the memo is, barring double frees: another
   * thread's second free of objects held here can empty s and have its
   * record reused, for another size class or a large object, while the
   * memo still names it.  The test keeps such a record from sending bits
   * into an entry that holds frees for another span; the usual path takes
   * the free.  (A record left free, or reused for the same class, passes:
   * the free joins the old entry, which is dropped when applied, and the
   * object waits for the collector.) */
  struct held_frees *h = &c->held[s->sizeclass];
  if (h->span != s || !held_entry_add(c, h, s, idx)) return false;
  c->free_memo_hits++;
  return true;
}

/* mcache_free_held's common case, inline for gc_free's fast path: s is
 * the span c holds frees for, in the same sweep generation.  The entry was
 * opened on s swept (mcache_free_held's caller sweeps first), and in the
 * same generation s stays swept, so s's own sweepgen is not looked at.
 * The caller has read s's cached_by as 0: s is uncached, so allocbits is
 * exact for the slot (a thread caching s meanwhile only takes free slots).
 * The record's incarnation is not checked either: while the entry holds
 * slots they stay allocated, so s cannot go back to the mheap and be
 * reused in this generation unless another thread frees those same
 * objects (a double free); a free into the reused record would then join
 * the entry and be dropped when applied, kept until the next sweep.
 * 1: held; 0: the slot is already free; -1: not the common case, call
 * mcache_free_held. */
MGC_INLINE int mcache_free_held_fast(struct mcache *c, struct mspan *s, uintptr_t idx) {
  struct held_frees *h = &c->held[s->sizeclass];
  if (h->span != s || h->sweepgen != atomic_load_relaxed(&mheap_sweepgen)) return -1;
  if (!held_entry_add(c, h, s, idx)) return 0;
  mcache_note_held_free(c, s, false);
  return 1;
}
/* A free held for s by its held key: s->free_key was c's held key, read
 * inside the mark-phase bracket, so c's entry for s's size class is open
 * for s in this sweep generation and s is uncached (barring a double free:
 * -1 when the entry names another span).  1: held; 0: the slot
 * is already free (or held). */
MGC_INLINE int mcache_free_held_keyed(struct mcache *c, struct mspan *s, uintptr_t idx) {
  struct held_frees *h = &c->held[s->sizeclass];
  /* After a double free the record may be in another use, its key not
   * yet cleared (mspan_init_in_use_locked): as the memo, never add to an
   * entry for another span. */
  if (h->span != s) return -1;
  if (!held_entry_add(c, h, s, idx)) return 0;
  mcache_note_held_free(c, s, false);
  return 1;
}

/* Apply all the frees c holds back (mcentral_free_held). */
void mcache_flush_held(struct mcache *c);
/* Does c hold back a free of slot idx of s (that will still be applied:
 * same sweep generation, same use of the record)? */
MGC_INLINE bool mcache_holds_free(const struct mcache *c, const struct mspan *s, uintptr_t idx) {
  const struct held_frees *h = &c->held[s->sizeclass];
  return h->span == s && (c->held_bits[h->bits_at + (idx >> 6)] >> (idx & 63) & 1) &&
         h->sweepgen == atomic_load_relaxed(&mheap_sweepgen) &&
         h->incarnation == atomic_load_relaxed(&s->incarnation);
}
/* Is slot idx of s allocated?  Exact for c's own spans and uncached spans
 * (a slot whose free c holds back is free); for another thread's cached
 * span, slots of its current word count as allocated. */
MGC_INLINE bool mcache_slot_is_allocated(const struct mcache *c, const struct mspan *s, uintptr_t idx) {
  unsigned w = (unsigned)(idx >> 6);
  uint64_t bit = (uint64_t)1 << (idx & 63);
  if (atomic_load_relaxed(&s->freedbits[w]) & bit) return false;
  if (c && mcache_holds_free(c, s, idx)) return false;
  /* Acquire: allocbits below must be at least as new as the uncaching
   * that wrote cached_by = 0 (mcentral_uncache_span). */
  struct mcache *owner = (struct mcache *)atomic_load_acquire(&s->cached_by);
  if (owner && w == atomic_load_acquire(&s->cur_word)) {
    if (owner != c) return true; /* another thread's word in use */
    return !(c->slots[s->spanclass].freebits & bit) && !(atomic_load_relaxed(&s->cur_freed) & bit);
  }
  return (atomic_load_relaxed(&s->allocbits[w]) & bit) != 0;
}
/* World stopped, marking on: an unmarked slot idx of s in the word its
 * owner allocates from, read from the owner's own (stopped, so exact) view.
 * The marker's view of such a word is "all allocated"; this tells apart
 * what the owner allocated since marking started (black, though marked only
 * when it leaves the word) from older objects. */
enum word_coverage {
  WORD_WHITE,   /* not in a cached span's current word, or allocated before
                   the mark: alive only if marked */
  WORD_BLACK,   /* allocated black since the mark started */
  WORD_UNSURE,  /* a free slot there (stale contents), or a word its owner
                   was leaving or entering (its black objects are marked
                   already), or a span it had just cached */
};
enum word_coverage mcache_current_word_coverage_stw(const struct mspan *s, uintptr_t idx);
/* Add, per span class, the free slots of c's cached spans: allocation
 * statistics count them as allocated from caching on, and subtract these
 * for an exact figure.  Another thread's mcache may be read (racily, so
 * approximately): the caller keeps it registered (threads_lock). */
void mcache_add_unused_slots(const struct mcache *c, uint64_t unused[SPANCLASS_COUNT]);
/* Give every cached span back to mcentral (thread exit). */
void mcache_release_all(struct mcache *c);

#endif /* MGC_MCACHE_H */
