/*
 * mheap.h: the page heap.  Hands out spans of whole pages (for mcentral's
 * small-object spans and for large objects), takes them back, coalesces
 * free runs, grows the heap from the OS and releases long-free pages
 * (alloc/scavenger.c).
 */
#ifndef MGC_MHEAP_H
#define MGC_MHEAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "alloc/mspan.h"
#include "runtime/lock.h"
#include "runtime/testhold.h"

/* Byte counts of the page heap, protected by the mheap lock (readers of a
 * snapshot use mheap_read_stats). */
struct mheap_stats {
  size_t sys;        /* committed from the OS (includes released) */
  size_t in_use;     /* pages in in-use spans */
  size_t released;   /* bytes of free pages given back to the OS */
  size_t metadata;   /* span records, bitmaps, arena records */
  size_t large_in_use; /* pages in large-object spans */
  size_t spans_in_use; /* number of in-use spans (small-object and large) */
  size_t scavenge_walked; /* page-map entries the scavenger has looked at, ever */
};

/* The largest kernel page the heap can work with (a power of two, as the
 * kernel's page size must be; alloc/mheap.c, "Kernel pages"). */
#define MHEAP_OS_PAGE_MAX ((size_t)1 << 20)

int mheap_init(void);

/* A new in-use span of `npages` pages for span class spc, with bitmaps
 * cleared and needzero telling whether its memory may hold old data.
 * Returns NULL when the heap cannot grow. */
struct mspan *mheap_alloc_span(uintptr_t npages, unsigned spc);
/* Hold point (runtime/testhold.h) in every mheap_alloc_span after it has
 * set the span up and before it publishes it (the mheap lock held). */
extern MGC_HIDDEN struct test_hold mheap_hold_before_publish;
/* Give an in-use span's pages back to the free pool. */
void mheap_free_span(struct mspan *s);

/* Release to the OS up to `bytes` of free pages that have been free for at
 * least `min_age_ns`; returns the bytes released. */
size_t mheap_scavenge(size_t bytes, uint64_t min_age_ns);

void mheap_read_stats(struct mheap_stats *out);
/* Checker: free lists, span map and byte counts agree. Takes the lock. */
bool mheap_is_valid(void);
/* Free pages out of the lists while the scavenger releases them (0 when
 * no release is under way).  Takes the lock. */
uintptr_t mheap_pages_in_release(void);

/* The lock, for fork handling. */
extern MGC_HIDDEN struct mgc_lock mheap_lock;

#endif /* MGC_MHEAP_H */
