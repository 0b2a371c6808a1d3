/*
 * mcentral.h: one central list of small-object spans per span class,
 * shared by all threads; mcaches take spans from here and give them back.
 * Sweeping a small span (its mark bits becoming its allocation bits) is
 * done here too, because it moves spans between these lists.
 */
#ifndef MGC_MCENTRAL_H
#define MGC_MCENTRAL_H

#include <stdbool.h>
#include <stdint.h>

#include "alloc/mspan.h"
#include "runtime/lock.h"

struct mcache;

/* Per-class allocation counters (bytes are count * class size), updated
 * atomically, read without the lock by statistics. */
struct mcentral_counts {
  atomic_word mallocs;
  atomic_word frees;       /* explicit and swept */
};

/* Lists by sweep state: [mheap_sweepgen / 2 % 2] holds swept spans, the
 * other unswept ones; incrementing mheap_sweepgen by 2 at mark
 * termination turns every swept list into an unswept one at no cost. */
struct mcentral {
  struct mgc_lock lock;        /* rank LOCK_MCENTRAL */
  struct mspan *partial[2];    /* uncached spans with a free slot */
  struct mspan *full[2];       /* uncached spans without one */
  struct mcentral_counts counts;  /* written under lock, read without */
  unsigned spanclass;
  unsigned nempty;             /* listed spans with no slot allocated
                                  (mcentral.c: kept empty spans) */
} MGC_ALIGNED(MGC_CACHELINE);

extern MGC_HIDDEN struct mcentral mcentrals[SPANCLASS_COUNT];

void mcentral_init(void);
/* A span of class spc with a free slot, swept, now cached by c
 * (cached_by set, allocbits exact).  NULL when the heap cannot grow.
 * freeing_into (may be NULL) is the span whose held frees the caller
 * just applied: it is taken only if it is empty, has fewer than 64 slots,
 * or nothing else will do (see "Allocating apart from freeing" in
 * mcentral.c). */
struct mspan *mcentral_cache_span(struct mcache *c, unsigned spc, const struct mspan *freeing_into);
/* Take back a span from its owning mcache, whose allocbits[cur_word] the
 * caller has written back.  Folds remote frees, files the span as partial
 * or full, or, when empty, keeps it on the partial list (a few per class,
 * any number while the collector marks) or returns it to the mheap: see
 * release_empty_locked. */
void mcentral_uncache_span(struct mspan *s);
/* gc_free of slot idx of small span s by a thread that does not cache s.
 * Returns false when the slot is not allocated.  The caller keeps the mark
 * phase from changing (thread_mark_phase_enter). */
bool mcentral_free_remote(struct mspan *s, uintptr_t idx);

/* Apply the frees a thread held back for s (alloc/mcache.c): the slots
 * set in bits[0 .. s->nwords), of span class spc, held while
 * mheap_sweepgen was sweepgen and s->incarnation was incarnation.  If
 * either has changed since, or the collector now marks, they are dropped
 * (a sweep may have freed and reused the slots; a mark has taken them as
 * allocated): the objects are garbage, and the sweep frees them.  Frees of
 * slots already free are reported.  The caller keeps the mark phase from
 * changing (thread_mark_phase_enter). */
void mcentral_free_held(struct mspan *s, unsigned spc, uintptr_t sweepgen, uintptr_t incarnation, uint64_t *bits);

/* Sweep s if it still needs it.  For a span cached by the calling thread
 * (its current word is left alone) or an uncached one; takes the lock. */
void mcentral_sweep_cached(struct mspan *s);
/* Same for any small span found by a heap walk: checks under the lock that
 * s is still an in-use span of its class.  Returns true if it swept.
 * hand_over: the caller is a background sweep that will take class locks
 * again at once; after the sweep it lets threads waiting for this one have
 * it first (lock_wait_for_waiters). */
bool mcentral_sweep_any(struct mspan *s, bool hand_over);

/* Empty spans class spc keeps on its partial list outside a mark, for
 * reuse without the mheap (mcentral.c). */
unsigned mcentral_empty_keep(unsigned spc);

/* Checker: list membership agrees with counts; takes the lock. */
bool mcentral_is_valid(struct mcentral *mc);

/* In a child after fork(): give back every small span still marked cached
 * by an mcache other than keep's.  A thread caught by the fork between its
 * slot and the class lock (a span taken out of its slot, about to be given
 * back; or taken from mcentral, not yet in the slot) left one that no slot
 * names, and mcache_release_all cannot find it.  Returns how many. */
unsigned mcentral_uncache_orphans(uintptr_t keep);
/* Checker: small in-use spans marked cached by an mcache other than
 * keep's (a whole-heap walk). */
unsigned mcentral_count_cached_by_others(uintptr_t keep);

#endif /* MGC_MCENTRAL_H */
