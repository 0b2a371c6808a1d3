/*
 * arena.h: heap address space and the arena index.
 *
 * The heap lives in arenas of ARENA_SIZE bytes, reserved from the OS
 * aligned to their size.  Each arena has an off-heap record with one span
 * pointer per page, so any address maps to its span in O(1):
 *
 *   arena_index[addr >> ARENA_SHIFT]->spans[(addr >> PAGE_SHIFT) % PAGES_PER_ARENA]
 *
 * The index is a flat table covering the 48-bit user address space
 * (ARENA_INDEX_LEN entries, reserved lazily by the OS: untouched parts cost
 * nothing).  Entries go from NULL to an arena record once and never back.
 *
 * Span map invariant (maintained by alloc/mheap.c under the mheap lock):
 *   an in-use span: every page maps to it;
 *   a free span: its first and last page map to it, the pages between to NULL;
 *   a page never handed to the heap: NULL.
 * Readers without the lock (span_of_heap, the marker) may see a stale span
 * record, so they check its state and bounds; records are never unmapped.
 */
#ifndef MGC_ARENA_H
#define MGC_ARENA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "alloc/mspan.h"
#include "runtime/compiler.h"

/* 64 MiB: large enough that few arenas cover a big heap (the index stays
 * small and hot in cache), small enough to reserve cheaply. */
#define ARENA_SHIFT 26
#define ARENA_SIZE ((uintptr_t)1 << ARENA_SHIFT)
#define PAGES_PER_ARENA (ARENA_SIZE / PAGE_SIZE)
/* User space addresses fit in 48 bits on x86-64 and arm64 (4-level pages). */
#define HEAP_ADDR_BITS 48
#define ARENA_INDEX_LEN ((uintptr_t)1 << (HEAP_ADDR_BITS - ARENA_SHIFT))

struct heap_arena {
  struct mspan *spans[PAGES_PER_ARENA];  /* see the span map invariant */
};

extern MGC_HIDDEN struct heap_arena **arena_index;

MGC_INLINE struct heap_arena *arena_of(uintptr_t p) {
  uintptr_t i = p >> ARENA_SHIFT;
  if (unlikely(i >= ARENA_INDEX_LEN)) return NULL;
  return arena_index[i];
}

/* The span record a page maps to (any state), or NULL. */
MGC_INLINE struct mspan *span_of(uintptr_t p) {
  struct heap_arena *ha = arena_of(p);
  if (!ha) return NULL;
  return ha->spans[(p >> PAGE_SHIFT) & (PAGES_PER_ARENA - 1)];
}

/* The in-use span whose objects cover p, or NULL: the lookup conservative
 * scanning and gc_base use for arbitrary words. */
MGC_INLINE struct mspan *span_of_heap(uintptr_t p) {
  struct mspan *s = span_of(p);
  return s && span_covers(s, p) ? s : NULL;
}

/* Set up the index (once, from gc_init).  Returns 0 or an errno. */
int arena_index_init(void);
/* Reserve `size` bytes (a multiple of ARENA_SIZE) of new arenas, preferably
 * right after the last ones, and create their records.  Called with the
 * mheap lock held.  Returns NULL when address space or metadata runs out. */
void *arena_reserve_locked(size_t size);
/* Lowest and highest heap address reserved so far (for quick rejection of
 * words that cannot be heap pointers).  Stored under the mheap lock, loaded
 * without it (relaxed): the range only widens, and a thread holding an
 * address in a new arena got it through some synchronisation that follows
 * the reservation, so it sees the wider range as well. */
extern MGC_HIDDEN atomic_word arena_lo, arena_hi;

/* Is v inside [arena_lo, arena_hi)?  One compare (unsigned wrap). */
MGC_INLINE bool arena_in_range(uintptr_t v) {
  uintptr_t lo = atomic_load_relaxed(&arena_lo);
  return v - lo < atomic_load_relaxed(&arena_hi) - lo;
}

/* Call fn(s, ctx) for every in-use span whose first page lies in
 * [lo, hi), in address order.  Lock-free: the span map may change under
 * the walk, so fn must re-check what it relies on (state, sweepgen). */
void arena_walk_spans(uintptr_t lo, uintptr_t hi, void (*fn)(struct mspan *s, void *ctx), void *ctx);

/* Point every page of [base, base + npages pages) at s. */
void arena_set_spans(uintptr_t base, uintptr_t npages, struct mspan *s);

#endif /* MGC_ARENA_H */
