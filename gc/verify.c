/*
 * verify.c: the MGC_VERIFY re-mark (see verify.h).
 *
 * After concurrent marking has terminated, with the world still stopped,
 * every object reachable from the current roots must be covered by the
 * concurrent mark: marked, or in the current word of a span some thread is
 * allocating from (allocated black there and never swept this cycle; see
 * alloc/mcache.c).  An object that is neither is what a missing GC_WRITE
 * produces: the concurrent mark never saw the pointer.
 *
 * The re-mark uses each span's check bitmap, so it does not disturb the
 * real marks, and walks depth-first with the same work buffers.  When it
 * finds a pointer to an uncovered object it reports the object and the
 * address of the word that points to it (and the object holding that word,
 * if it is in the heap), then marks the object so the sweep keeps it: a
 * verified program loses nothing even when the check fails.
 *
 * Cost: a whole stop-the-world mark per cycle.  A debugging mode.
 */
#include "gc/verify.h"

#include <stdio.h>

#include "alloc/arena.h"
#include "alloc/mcache.h"
#include "gc/types.h"
#include "gc/workbuf.h"
#include "runtime/roots.h"
#include "runtime/throw.h"

/* Report at most this many misses per cycle; the count is exact. */
#define VERIFY_REPORT_MAX 20

static uintptr_t misses;

static void clear_check_bits(void) {
  uintptr_t lo = arena_lo, hi = arena_hi;
  for (uintptr_t a = lo; a < hi; a += ARENA_SIZE) {
    struct heap_arena *ha = arena_of(a);
    if (!ha) continue;
    for (uintptr_t i = 0; i < PAGES_PER_ARENA;) {
      struct mspan *s = ha->spans[i];
      if (s && s->base == a + i * PAGE_SIZE && atomic_load_acquire(&s->state) == MSPAN_IN_USE) {
        for (unsigned w = 0; w < s->nwords; w++) atomic_store_relaxed(&s->checkbits[w], 0);
        i += s->npages ? s->npages : 1;
      } else {
        i++;
      }
    }
  }
}

static bool covered(const struct mspan *s, uintptr_t idx) {
  if (span_is_marked(s, idx)) return true;
  if (atomic_load_relaxed(&s->cached_by) && (idx >> 6) == atomic_load_relaxed(&s->cur_word)) return true;
  return false;
}

static void report_miss(const struct mspan *s, uintptr_t idx, uintptr_t slot) {
  if (++misses > VERIFY_REPORT_MAX) return;
  uintptr_t obj = span_object_addr(s, idx);
  struct mspan *hs = span_of_heap(slot);
  char line[200];
  if (hs) {
    uintptr_t holder = span_object_addr(hs, span_object_index(hs, slot));
    snprintf(line, sizeof(line),
             "mgc: verify: object %p (%u bytes) reachable but missed by the concurrent mark; "
             "pointed to by the word at %p in object %p (a store without GC_WRITE?)\n",
             (void *)obj, s->elemsize, (void *)slot, (void *)holder);
  } else {
    snprintf(line, sizeof(line),
             "mgc: verify: object %p (%u bytes) reachable but missed by the concurrent mark; "
             "pointed to by the root word at %p\n",
             (void *)obj, s->elemsize, (void *)slot);
  }
  mgc_write_stderr(line);
}

MGC_NO_SANITIZE_SCAN static void check_word(struct gcwork *w, uintptr_t slot, uintptr_t v) {
  struct mspan *s = span_of_heap(v);
  if (!s) return;
  uintptr_t idx = span_object_index(s, v);
  if (!mcache_slot_is_allocated(NULL, s, idx)) return;
  atomic_word *cw = &s->checkbits[idx >> 6];
  uintptr_t bit = (uintptr_t)1 << (idx & 63);
  if (atomic_load_relaxed(cw) & bit) return;
  atomic_store_relaxed(cw, atomic_load_relaxed(cw) | bit);
  if (!covered(s, idx)) {
    report_miss(s, idx, slot);
    span_try_mark(s, idx);
  }
  if (spanclass_noscan(s->spanclass)) return;
  uintptr_t base = span_object_addr(s, idx);
  uintptr_t size = span_is_large(s) ? s->npages * PAGE_SIZE : s->elemsize;
  if (spanclass_typed(s->spanclass)) {
    gcwork_push(w, base, size | GREY_TYPED);
    return;
  }
  for (uintptr_t off = 0; off < size; off += OBLET_BYTES)
    gcwork_push(w, base + off, size - off < OBLET_BYTES ? size - off : OBLET_BYTES);
}

static void check_typed_value(struct gcwork *w, uintptr_t v, uintptr_t slot) {
  if (v - arena_lo < arena_hi - arena_lo) check_word(w, slot, v);
}

MGC_NO_SANITIZE_SCAN static void check_range(uintptr_t lo, uintptr_t hi, void *ctx) {
  struct gcwork *w = ctx;
  uintptr_t alo = arena_lo, span = arena_hi - arena_lo;
  for (uintptr_t p = MGC_ROUND_UP(lo, sizeof(uintptr_t)); p + sizeof(uintptr_t) <= hi; p += sizeof(uintptr_t)) {
    uintptr_t v = *(const uintptr_t *)p;
    if (v - alo < span) check_word(w, p, v);
  }
}

uintptr_t verify_mark_stw(void) {
  misses = 0;
  clear_check_bits();
  struct gcwork w = {0};
  roots_enumerate_stw(check_range, &w);
  struct grey g;
  while (gcwork_pop(&w, &g)) {
    if (g.len & GREY_TYPED) types_scan_object(&w, g.addr, g.len & ~GREY_TYPED, check_typed_value);
    else check_range(g.addr, g.addr + g.len, &w);
  }
  gcwork_dispose(&w);
  if (misses > VERIFY_REPORT_MAX) {
    char line[120];
    snprintf(line, sizeof(line), "mgc: verify: %lu misses in this cycle (%d reported)\n",
             (unsigned long)misses, VERIFY_REPORT_MAX);
    mgc_write_stderr(line);
  }
  return misses;
}
