/*
 * mcentral.h: one central list of small-object spans per span class,
 * shared by all threads; mcaches take spans from here and give them back.
 */
#ifndef MGC_MCENTRAL_H
#define MGC_MCENTRAL_H

#include <stdbool.h>
#include <stdint.h>

#include "alloc/mspan.h"
#include "runtime/lock.h"

struct mcache;

/* Per-class allocation counters (bytes are count * class size), updated
 * under the class's mcentral lock, read without it by statistics. */
struct mcentral_counts {
  atomic_word mallocs;
  atomic_word frees;
};

struct mcentral {
  struct mgc_lock lock;        /* rank LOCK_MCENTRAL */
  struct mspan *partial;       /* uncached spans with a free slot */
  struct mspan *full;          /* uncached spans without one */
  struct mcentral_counts counts;
  unsigned spanclass;
} MGC_ALIGNED(MGC_CACHELINE);

extern struct mcentral mcentrals[SPANCLASS_COUNT];

void mcentral_init(void);
/* A span of class spc with a free slot, now cached by c (cached_by set,
 * allocbits exact).  NULL when the heap cannot grow. */
struct mspan *mcentral_cache_span(struct mcache *c, unsigned spc);
/* Take back a span from its owning mcache, whose allocbits[cur_word] the
 * caller has written back.  Folds remote frees, files the span as partial
 * or full, or returns it to the mheap when empty. */
void mcentral_uncache_span(struct mspan *s);
/* gc_free of slot idx of small span s by a thread that does not cache s.
 * Returns false (and reports) when the slot is not allocated. */
bool mcentral_free_remote(struct mspan *s, uintptr_t idx);

/* Lists, for the sweeper and the checkers; call with the lock held. */
void mcentral_list_remove_locked(struct mcentral *mc, struct mspan *s);
void mcentral_list_insert_locked(struct mcentral *mc, struct mspan *s);
/* Checker: list membership agrees with counts; takes the lock. */
bool mcentral_is_valid(struct mcentral *mc);

#endif /* MGC_MCENTRAL_H */
