/*
 * mspan.c: span records and their bitmaps (see mspan.h).
 *
 * Records and bitmaps come from fixallocs protected by the mheap lock.  The
 * four bitmaps of a span (alloc, mark, freed, check) are one block of
 * 4 * nwords words from the fixalloc for that nwords, so a span costs one record and
 * one bitmap block of metadata.
 */
#include "alloc/mspan.h"

#include <string.h>

#include "alloc/fixalloc.h"
#include "runtime/throw.h"

#define BITMAP_MAX_WORDS ((SIZECLASS_MAX_NELEMS + 63) / 64)

/* All protected by the mheap lock. */
static struct fixalloc span_records;
static struct fixalloc bitmap_blocks[BITMAP_MAX_WORDS + 1];
static bool records_ready;
/* The last incarnation handed out, over all records: a record freed to
 * span_records comes back zeroed, so a count per record would start over. */
static uintptr_t last_incarnation;

atomic_word mheap_sweepgen = SWEEPGEN_START;
atomic_word sweeps_in_progress;

static void mspan_metadata_init_locked(void) {
  fixalloc_init(&span_records, sizeof(struct mspan));
  for (unsigned w = 1; w <= BITMAP_MAX_WORDS; w++)
    fixalloc_init(&bitmap_blocks[w], 4 * w * sizeof(uint64_t));
  records_ready = true;
}

struct mspan *mspan_record_alloc_locked(void) {
  if (unlikely(!records_ready)) mspan_metadata_init_locked();
  return fixalloc_alloc(&span_records);
}

void mspan_record_free_locked(struct mspan *s) {
  atomic_store_release(&s->sweepgen, SWEEPGEN_NONE);
  atomic_store_release(&s->state, MSPAN_DEAD);
  fixalloc_free(&span_records, s);
}

bool mspan_init_in_use_locked(struct mspan *s, unsigned spc) {
  unsigned sc = spanclass_sizeclass(spc);
  s->spanclass = (uint8_t)spc;
  s->sizeclass = (uint8_t)sc;
  if (sc == 0) {
    s->elemsize = (uint32_t)(s->npages * PAGE_SIZE);
    if ((uintptr_t)s->elemsize != s->npages * PAGE_SIZE) s->elemsize = 0; /* over 4 GiB: unused for large */
    s->divmul = 0; /* one object: index is always 0 */
    s->nelems = 1;
  } else {
    s->elemsize = sizeclass_size[sc];
    s->divmul = sizeclass_divmul[sc];
    s->nelems = sizeclass_nelems[sc];
  }
  s->nwords = (uint16_t)((s->nelems + 63) / 64);
  s->limit = sc == 0 ? s->base + s->npages * PAGE_SIZE
                     : s->base + (uintptr_t)s->nelems * s->elemsize;
  if (unlikely(!records_ready)) mspan_metadata_init_locked();
  uint64_t *bits = fixalloc_alloc(&bitmap_blocks[s->nwords]);
  if (!bits) return false;
  s->bitmap_block = bits;
  s->allocbits = (atomic_word *)bits;
  s->markbits = (atomic_word *)(bits + s->nwords);
  s->freedbits = (atomic_word *)(bits + 2 * s->nwords);
  s->checkbits = (atomic_word *)(bits + 3 * s->nwords);
  s->alloccount = 0;
  atomic_store_relaxed(&s->cur_word, 0);
  s->count_at_cache = 0;
  atomic_store_relaxed(&s->cur_freed, 0);
  atomic_store_relaxed(&s->snap_visit, SNAP_NONE);
  s->local_frees = 0;
  s->has_holes = 0;
  s->clean_slots = 0;
  s->in_list = 0;
  atomic_store_relaxed(&s->cached_by, 0);
  atomic_store_relaxed(&s->free_key, 0);
  atomic_store_relaxed(&s->finalizers, 0);
  atomic_store_relaxed(&s->has_freed, 0);
  atomic_store_relaxed(&s->sweepgen, atomic_load_relaxed(&mheap_sweepgen));
  atomic_store_relaxed(&s->incarnation, ++last_incarnation);
  if (sc == 0) {
    /* A large span is its object: allocated from birth. */
    atomic_store_relaxed(&s->allocbits[0], 1);
    s->alloccount = 1;
  }
  return true;
}

/* The bitmap pointers are left in place: a lock-free reader that found the
 * span in use just before it was freed may still read (or, a marker, set a
 * bit in) the block, which stays mapped; what it reads is meaningless but
 * harmless, and it re-checks the span's state where that matters. */
void mspan_free_bitmaps_locked(struct mspan *s) {
  if (!s->bitmap_block) return;
  fixalloc_free(&bitmap_blocks[s->nwords], s->bitmap_block);
  s->bitmap_block = NULL;
}

unsigned mspan_count_allocated(const struct mspan *s) {
  unsigned n = 0;
  for (unsigned w = 0; w < s->nwords; w++) n += (unsigned)mgc_popcount64(atomic_load_relaxed(&s->allocbits[w]));
  return n;
}

size_t mspan_metadata_sys_locked(void) {
  size_t n = span_records.sys_bytes;
  for (unsigned w = 1; w <= BITMAP_MAX_WORDS; w++) n += bitmap_blocks[w].sys_bytes;
  return n;
}

bool mspan_is_valid(const struct mspan *s) {
  if (atomic_load_relaxed(&s->state) != MSPAN_IN_USE) return false;
  if (s->nelems == 0 || s->nwords != (s->nelems + 63) / 64) return false;
  if (s->alloccount != mspan_count_allocated(s)) return false;
  if (s->alloccount > s->nelems) return false;
  for (unsigned w = 0; w < s->nwords; w++) {
    uint64_t outside = ~span_word_mask(s, w);
    if ((atomic_load_relaxed(&s->allocbits[w]) & outside) || (atomic_load_relaxed(&s->markbits[w]) & outside) ||
        (atomic_load_relaxed(&s->freedbits[w]) & outside))
      return false;
  }
  return true;
}
