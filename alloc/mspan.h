/*
 * mspan.h: a span is a run of pages, the unit the page heap hands out.
 *
 * An in-use span either holds objects of one size class (a small-object
 * span, carved into nelems slots of elemsize bytes) or is one large object.
 * Span records live in metadata memory (alloc/fixalloc.h), apart from the
 * objects, and are found from any address through the arena index
 * (alloc/arena.h).
 *
 * Span class: spanclass = sizeclass << 1 | noscan, or a typed class (see
 * below).  Size class 0 is a large object; the noscan bit says the objects
 * hold no pointers and are never scanned.
 *
 * Bitmaps, one bit per slot, nwords = ceil(nelems / 64) words each:
 *   allocbits  1 = slot allocated.  Exact for every word of an uncached
 *              span.  While an mcache holds the span, the word the mcache
 *              is allocating from (cur_word) is kept in the mcache and
 *              allocbits[cur_word] is stale; every other word is exact.
 *   markbits   1 = object reached by the current or last mark.  Set with
 *              atomic OR by parallel markers.
 *   freedbits  1 = freed by gc_free from a thread that does not own the span
 *              while it was cached; folded into allocbits, under the
 *              mcentral lock, when the span leaves the mcache.
 *
 * Invariants (uncached small span):
 *   allocbits & freedbits == 0 after a fold
 *   alloccount == popcount(allocbits) <= nelems
 *   bits at positions >= nelems are 0 in every bitmap
 *
 * A cached span and the collector: the collector never writes to an
 * mcache (a stopped thread may be in the middle of its allocation fast
 * path).  It treats every slot of the cached span's cur_word as allocated
 * (so it neither frees nor ignores them) and uses allocbits for the other
 * words.  The owner writes allocbits[cur_word] back before it release-
 * stores a new cur_word, so a reader that acquire-loads cur_word and then
 * reads allocbits never sees an allocated slot as free.
 *
 * Ownership: span fields other than the bitmaps and the atomics are
 * written under the mheap lock while the span is free, under its mcentral
 * lock while it is uncached, and by the owning thread while it is cached
 * (cached_by != NULL).  `state` is read without locks by span_of_heap().
 */
#ifndef MGC_MSPAN_H
#define MGC_MSPAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "alloc/sizeclasses.h"
#include "runtime/atomics.h"
#include "runtime/compiler.h"

_Static_assert(sizeof(uintptr_t) == 8, "mgc needs a 64-bit platform: bitmaps are 64-bit words");

/* Span classes: [0, 2 * SIZECLASS_COUNT) are sizeclass << 1 | noscan
 * (conservatively scanned or never scanned objects); from
 * SPANCLASS_TYPED_BASE on, one class per size class for typed objects
 * (scanned precisely from a type header, gc/types.c). */
#define SPANCLASS_TYPED_BASE (SIZECLASS_COUNT * 2)
#define SPANCLASS_COUNT (SIZECLASS_COUNT * 3)
#define SPANCLASS_NOSCAN 1u

MGC_INLINE unsigned spanclass_make(unsigned sizeclass, bool noscan) {
  return sizeclass << 1 | (noscan ? SPANCLASS_NOSCAN : 0);
}
MGC_INLINE unsigned spanclass_make_typed(unsigned sizeclass) { return SPANCLASS_TYPED_BASE + sizeclass; }
MGC_INLINE bool spanclass_typed(unsigned spc) { return spc >= SPANCLASS_TYPED_BASE; }
MGC_INLINE unsigned spanclass_sizeclass(unsigned spc) {
  return spc >= SPANCLASS_TYPED_BASE ? spc - SPANCLASS_TYPED_BASE : spc >> 1;
}
MGC_INLINE bool spanclass_noscan(unsigned spc) {
  return spc < SPANCLASS_TYPED_BASE && (spc & SPANCLASS_NOSCAN);
}

/* The tiny allocator packs noscan objects of fewer than TINY_SIZE bytes
 * into blocks of the 16-byte noscan class, and a noscan object of
 * TINY_SIZE bytes takes a block of its own; nothing else uses that class,
 * so gc_free can tell a tiny block (which it leaves to the collector). */
#define TINY_SIZE 16
#define TINY_SPANCLASS (2u << 1 | SPANCLASS_NOSCAN)  /* class 2 is 16 bytes */
_Static_assert(TINY_SIZE == 16, "the tiny class is the 16-byte class");

enum mspan_state {
  MSPAN_DEAD = 0,  /* record not describing any pages */
  MSPAN_FREE,      /* free pages in the mheap */
  MSPAN_IN_USE,    /* objects: a small-object span or a large object */
};

struct mcache;

struct mspan {
  /* Line 0: what the marker reads for every pointer it follows
   * (mark_pointer: span_of_heap, the index, the mark bit, the allocated
   * test), so a mark touches one line of the record, two with has_freed.
   * Records are 64-byte aligned (the size is a multiple of 64 and
   * fixalloc's chunks are page-aligned).  `next` stays first: fixalloc
   * keeps its free list in the first word of a free record. */
  struct mspan *next;       /* list links: mheap free list or mcentral list */
  uintptr_t base;           /* first byte */
  atomic_word state;        /* enum mspan_state; read lock-free */
  uintptr_t limit;          /* end of the last slot (in use) */
  uint32_t elemsize;        /* slot size; npages * PAGE_SIZE for large */
  uint32_t divmul;          /* slot index = (offset * divmul) >> 32 */
  atomic_word *markbits;
  atomic_word *allocbits;
  atomic_word cached_by;    /* struct mcache * holding it, or 0 */

  /* Line 1: the rest of the marker's and gc_free's reads. */
  atomic_word has_freed;    /* small: freedbits may be nonzero; large:
                               LARGE_FREED* below */
  atomic_word *freedbits;
  atomic_word cur_word;     /* word the owning mcache allocates from;
                               release-stored after allocbits[old] */
  atomic_word cur_freed;    /* slots of cur_word the owner freed; reused
                               only after it leaves the word (written by
                               the owner, read by remote frees) */
  atomic_word finalizers;   /* struct finalizer * list of its objects'
                               finalizers (gc/finalizer.c, fin_lock) */
  uint8_t spanclass;
  uint8_t sizeclass;        /* spanclass_sizeclass(spanclass) */
  uint8_t needzero;         /* free slots may hold old data; while cached,
                               set by the owner and by sweeps (atomic) */
  uint8_t has_holes;        /* owner freed slots, maybe behind cur_word:
                               its walk comes back once */
  uint32_t local_frees;     /* gc_free by the owner while cached */
  uint16_t nelems;
  uint16_t nwords;          /* words per bitmap */
  uint16_t alloccount;      /* allocated slots; exact when uncached */
  uint16_t count_at_cache;  /* alloccount when the mcache took it */
  atomic_word sweepgen;     /* see gc/sweep.c */

  struct mspan *prev;
  uintptr_t npages;
  uint8_t in_list;          /* which mcentral list holds it (mcentral.c) */
  uint16_t clean_word;      /* clean_slots are slots of this word ... */
  uint64_t clean_slots;     /* ... left free, and zero, by the last visit
                               (alloc/mcache.c); owner or mcentral lock */
  atomic_word enter_free;   /* free slots of cur_word when the owner entered
                               it; written before cur_word is published */
  atomic_word visit;        /* owner's count of word visits: odd from
                               leaving a word to having entered the next,
                               even while in one (alloc/mcache.c) */
  atomic_word snap_visit;   /* visit seen by the last mark start, or
                               SNAP_NONE if it was odd (written by the
                               collector with the world stopped) */
  atomic_word snap_free;    /* the owner's free bits of cur_word then */
  uint64_t *bitmap_block;   /* the 4 * nwords words the bitmaps live in */
  atomic_word *checkbits;   /* MGC_VERIFY's second mark (gc/verify.c) */
  atomic_word incarnation;  /* unique to this use of the record as an
                               in-use span (mspan_init_in_use_locked): a
                               thread that held frees for it tells a reuse
                               of the record (alloc/mcache.c, held frees) */
  /* Free key (runtime/api.c, "Free keys"): the struct mcache * caching
   * the span while its owner may free into it with no other test, or
   * that pointer | FREE_KEY_HELD while an uncached span's frees may join
   * that thread's held entry with none, else 0.  Set by that thread;
   * cleared by it, by a thread caching the span, by gc_set_finalizer, by
   * mspan_init_in_use_locked, and at every mark start with the world
   * stopped. */
  atomic_word free_key;

  /* free span */
  uint8_t scavenged;        /* pages were released to the OS */
  uint64_t free_since;      /* os_nanotime() when it became free */
} __attribute__((aligned(64)));
_Static_assert(offsetof(struct mspan, cached_by) < 64 && offsetof(struct mspan, markbits) < 64,
               "the marker's reads of a span record should stay in its first cache line");
_Static_assert(offsetof(struct mspan, sweepgen) < 128 && sizeof(struct mspan) == 256,
               "span records: the marker's and gc_free's fields in two lines, 256 bytes");

/* Is s in use, with p among its slots?  The test that makes a record read
 * from the span map without a lock the span of p.  Two comparisons, not
 * one with wrap-around: a record being reused may be read with a new base
 * and an old, lower limit, which must cover nothing. */
MGC_INLINE bool span_covers(const struct mspan *s, uintptr_t p) {
  return atomic_load_acquire(&s->state) == MSPAN_IN_USE && p >= s->base && p < s->limit;
}

MGC_INLINE uintptr_t span_object_index(const struct mspan *s, uintptr_t p) {
  return (uintptr_t)(((uint64_t)(p - s->base) * s->divmul) >> 32);
}

/* The slot of small span s that byte offset off (below s->limit - s->base)
 * lies in, in *idx, and whether off is that slot's start: the product's
 * low half is below divmul exactly then (size * divmul = 2^32 + e, and
 * the division's exactness bounds the error q * e below divmul; both
 * proved for every class by tools/gen_sizeclasses.py and tested in
 * test_sizeclasses).  One multiplication where the index and a second
 * multiplication back took two; false for a large span (divmul 0). */
MGC_INLINE bool span_slot_of(const struct mspan *s, uintptr_t off, uintptr_t *idx) {
  uint64_t product = (uint64_t)off * s->divmul;
  *idx = (uintptr_t)(product >> 32);
  return (uint32_t)product < s->divmul;
}

MGC_INLINE uintptr_t span_object_addr(const struct mspan *s, uintptr_t idx) {
  return s->base + idx * s->elemsize;
}

MGC_INLINE bool bitmap_get(const atomic_word *bits, uintptr_t i) {
  return (atomic_load_relaxed(&bits[i >> 6]) >> (i & 63)) & 1;
}

MGC_INLINE bool span_is_large(const struct mspan *s) {
  return spanclass_sizeclass(s->spanclass) == 0;
}

/* The class of a span found without a lock (the span walk): the record
 * may be recycled meanwhile, so this is a guess the caller confirms by
 * claiming the span's sweepgen or under the class's mcentral lock. */
MGC_NO_SANITIZE_THREAD static inline unsigned span_class_unlocked(const struct mspan *s) {
  return s->spanclass;
}

/* has_freed of a large span: the object was freed by gc_free, and the
 * span is either released by it or, when it was freed while the collector
 * marked, left for the sweep to release (runtime/api.c, gc/sweep.c). */
#define LARGE_FREED 1
#define LARGE_FREED_RELEASE_AT_SWEEP 2

/* Bytes of one slot: the class size, or the whole span for a large object. */
MGC_INLINE uintptr_t span_slot_size(const struct mspan *s) {
  return span_is_large(s) ? s->npages * PAGE_SIZE : s->elemsize;
}

MGC_INLINE bool span_is_marked(const struct mspan *s, uintptr_t idx) {
  return (atomic_load_relaxed(&s->markbits[idx >> 6]) >> (idx & 63)) & 1;
}

/* Sets the mark bit of slot idx; returns true when it was clear (the
 * caller is the one that greyed the object). */
MGC_INLINE bool span_try_mark(struct mspan *s, uintptr_t idx) {
  atomic_word *w = &s->markbits[idx >> 6];
  uintptr_t bit = (uintptr_t)1 << (idx & 63);
  if (atomic_load_relaxed(w) & bit) return false;
  return !atomic_test_and_set_bit(w, (unsigned)(idx & 63));
}

/* Mask of valid slots in word w. */
MGC_INLINE uint64_t span_word_mask(const struct mspan *s, unsigned w) {
  unsigned left = s->nelems - w * 64u;
  return left >= 64 ? ~(uint64_t)0 : (((uint64_t)1 << left) - 1);
}

#define SNAP_NONE UINTPTR_MAX

/* Sweep generations (see gc/sweep.c).  mheap_sweepgen goes up by 2 at
 * every mark termination; for an in-use span, relative to sg:
 *   s->sweepgen == sg - 2   marked by the last cycle, not yet swept
 *   s->sweepgen == sg - 1   being swept
 *   s->sweepgen == sg       swept (or allocated since the last mark)
 * A span record that is not in use has SWEEPGEN_NONE, which is odd and so
 * never equals sg - 2: a sweeper that finds a stale record cannot claim it. */
#define SWEEPGEN_START 4
#define SWEEPGEN_NONE 1
extern MGC_HIDDEN atomic_word mheap_sweepgen;
/* Spans being swept right now (any sweeper).  Marking must not start
 * while a sweep is half done: the collector checks this with the world
 * stopped and retries (gc/collector.c). */
extern MGC_HIDDEN atomic_word sweeps_in_progress;

MGC_INLINE bool span_needs_sweep(const struct mspan *s) {
  return atomic_load_acquire(&s->sweepgen) != atomic_load_acquire(&mheap_sweepgen);
}

/* Set up a span record for `npages` pages at `base` as a span of class
 * `spc` (0 or 1 = one large object) and allocate its bitmaps.  Called with
 * the mheap lock held.  Returns false when metadata memory is exhausted. */
bool mspan_init_in_use_locked(struct mspan *s, unsigned spc);
void mspan_free_bitmaps_locked(struct mspan *s);
struct mspan *mspan_record_alloc_locked(void);
void mspan_record_free_locked(struct mspan *s);
/* Number of allocated slots according to allocbits. */
unsigned mspan_count_allocated(const struct mspan *s);
/* Bytes of metadata obtained from the OS for span records and bitmaps. */
size_t mspan_metadata_sys_locked(void);

/* Checker: the invariants above, for an uncached in-use small span. */
bool mspan_is_valid(const struct mspan *s);

#endif /* MGC_MSPAN_H */
