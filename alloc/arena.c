/*
 * arena.c: reserving arenas and maintaining the arena index (see arena.h).
 *
 * Arenas are reserved at hint addresses that grow upward from
 * ARENA_HINT_START so that consecutive arenas are usually contiguous (a
 * large object may then span two of them) and heap addresses are easy to
 * recognise in a debugger.  If the hint is taken, any aligned address the
 * OS gives us is fine.
 */
#include "alloc/arena.h"

#include <errno.h>

#include "runtime/os.h"
#include "runtime/throw.h"

/* 0x00c0 << 32: high enough to stay clear of the program's brk heap and
 * low enough to leave the address space above for mmap. */
#define ARENA_HINT_START ((uintptr_t)0x00c0 << 32)

struct heap_arena **arena_index;
atomic_word arena_lo = UINTPTR_MAX, arena_hi;

/* Protected by the mheap lock. */
static uintptr_t next_hint = ARENA_HINT_START;

int arena_index_init(void) {
  if (arena_index) return 0;
  void *p = os_alloc_metadata(ARENA_INDEX_LEN * sizeof(*arena_index));
  if (!p) return ENOMEM;
  arena_index = p;
  return 0;
}

void *arena_reserve_locked(size_t size) {
  mgc_assert(size % ARENA_SIZE == 0 && size > 0);
  void *base = os_reserve_aligned((void *)next_hint, size, ARENA_SIZE);
  if (!base) return NULL;
  uintptr_t b = (uintptr_t)base;
  if ((b + size - 1) >> HEAP_ADDR_BITS) {
    /* Outside what the index covers: unusable. */
    return NULL;
  }
  for (uintptr_t a = b; a < b + size; a += ARENA_SIZE) {
    struct heap_arena *ha = os_alloc_metadata(sizeof(*ha));
    if (!ha) return NULL;
    atomic_store_release((atomic_word *)&arena_index[a >> ARENA_SHIFT], (uintptr_t)ha);
  }
  if (b < atomic_load_relaxed(&arena_lo)) atomic_store_relaxed(&arena_lo, b);
  if (b + size > atomic_load_relaxed(&arena_hi)) atomic_store_relaxed(&arena_hi, b + size);
  next_hint = b + size;
  return base;
}

void arena_set_spans(uintptr_t base, uintptr_t npages, struct mspan *s) {
  for (uintptr_t i = 0; i < npages; i++) {
    uintptr_t p = base + i * PAGE_SIZE;
    struct heap_arena *ha = arena_of(p);
    mgc_assert(ha != NULL);
    ha->spans[(p >> PAGE_SHIFT) & (PAGES_PER_ARENA - 1)] = s;
  }
}

/* Reads the span map and span records without the mheap lock, on purpose
 * (see arena.h): exempt from the sanitizers like the scanning code.
 *
 * The walk steps one page at a time and visits a span at its first page
 * (the later pages of a span map to it too, with base elsewhere).  It does
 * not skip ahead by the span's npages: the record may be freed and reused
 * for a span elsewhere between the check of its state and the read of
 * npages, and a skip by that span's length would pass over spans that
 * existed all along (a sweep would leave them unswept).  A page costs two
 * loads. */
MGC_NO_SANITIZE_SCAN void arena_walk_spans(uintptr_t lo, uintptr_t hi, void (*fn)(struct mspan *s, void *ctx), void *ctx) {
  for (uintptr_t page = MGC_ROUND_DOWN(lo, PAGE_SIZE); page < hi;) {
    struct heap_arena *ha = arena_of(page);
    if (!ha) {
      page = MGC_ROUND_DOWN(page, ARENA_SIZE) + ARENA_SIZE;
      continue;
    }
    struct mspan *s = ha->spans[(page >> PAGE_SHIFT) & (PAGES_PER_ARENA - 1)];
    if (s && s->base == page && atomic_load_acquire(&s->state) == MSPAN_IN_USE) fn(s, ctx);
    page += PAGE_SIZE;
  }
}
