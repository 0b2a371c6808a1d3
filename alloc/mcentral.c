/*
 * mcentral.c: central span lists per span class (see mcentral.h).
 *
 * A small-object span is, at any time, in exactly one place:
 *   cached     held by one mcache (cached_by != 0), in no list;
 *   partial    uncached, alloccount < nelems       (in_list == SPAN_LIST_PARTIAL)
 *   full       uncached, alloccount == nelems      (in_list == SPAN_LIST_FULL)
 * An uncached span that becomes empty goes back to the mheap at once.
 *
 * Lock: mcentral.lock guards the lists and every field of its uncached
 * spans; caching and uncaching happen under it, so a thread that holds it
 * sees cached_by stable.  The owning mcache changes a cached span's words
 * without the lock (see mspan.h).  Remote frees of a cached span only set
 * freedbits (atomic OR) under the lock; the owner folds them when it gives
 * the span back.
 */
#include "alloc/mcentral.h"

#include "alloc/heaplive.h"
#include "alloc/mheap.h"
#include "runtime/throw.h"

enum { SPAN_LIST_NONE = 0, SPAN_LIST_PARTIAL = 1, SPAN_LIST_FULL = 2 };

struct mcentral mcentrals[SPANCLASS_COUNT];

void mcentral_init(void) {
  for (unsigned i = 0; i < SPANCLASS_COUNT; i++) {
    lock_init(&mcentrals[i].lock, LOCK_MCENTRAL);
    mcentrals[i].spanclass = i;
  }
}

static struct mspan **list_head(struct mcentral *mc, unsigned which) {
  return which == SPAN_LIST_FULL ? &mc->full : &mc->partial;
}

void mcentral_list_remove_locked(struct mcentral *mc, struct mspan *s) {
  mgc_assert(s->in_list != SPAN_LIST_NONE);
  if (s->prev) s->prev->next = s->next;
  else *list_head(mc, s->in_list) = s->next;
  if (s->next) s->next->prev = s->prev;
  s->next = s->prev = NULL;
  s->in_list = SPAN_LIST_NONE;
}

void mcentral_list_insert_locked(struct mcentral *mc, struct mspan *s) {
  unsigned which = s->alloccount == s->nelems ? SPAN_LIST_FULL : SPAN_LIST_PARTIAL;
  struct mspan **head = list_head(mc, which);
  s->prev = NULL;
  s->next = *head;
  if (*head) (*head)->prev = s;
  *head = s;
  s->in_list = (uint8_t)which;
}

struct mspan *mcentral_cache_span(struct mcache *c, unsigned spc) {
  struct mcentral *mc = &mcentrals[spc];
  lock_acquire(&mc->lock);
  struct mspan *s = mc->partial;
  if (s) {
    mcentral_list_remove_locked(mc, s);
  } else {
    lock_release(&mc->lock);
    unsigned sc = spanclass_sizeclass(spc);
    s = mheap_alloc_span(sizeclass_npages[sc], spc);
    if (!s) return NULL;
    lock_acquire(&mc->lock);
  }
  mgc_assert(s->alloccount < s->nelems);
  s->count_at_cache = s->alloccount;
  s->local_frees = 0;
  s->has_holes = 0;
  atomic_store_relaxed(&s->cached_by, (uintptr_t)c);
  lock_release(&mc->lock);
  heap_live_add((uintptr_t)(s->nelems - s->alloccount) * s->elemsize);
  return s;
}

/* Apply remote frees to allocbits; called with the lock held and the span
 * not being allocated from. */
static void fold_freed_locked(struct mspan *s) {
  if (!atomic_load_relaxed(&s->has_freed)) return;
  atomic_store_relaxed(&s->has_freed, 0);
  for (unsigned w = 0; w < s->nwords; w++) {
    uintptr_t f = atomic_exchange(&s->freedbits[w], 0);
    if (!f) continue;
    uintptr_t a = atomic_load_relaxed(&s->allocbits[w]);
    if (f & ~a) {
      /* The owner freed (or never allocated) these slots too: a double free
       * that could only be seen now. */
      mgc_report("gc_free: double free of an object of %u bytes in span %p, found late; ignored",
                 s->elemsize, (void *)s->base);
      atomic_fetch_sub(&mcentrals[s->spanclass].counts.frees,
                       (uintptr_t)__builtin_popcountll(f & ~a));
    }
    atomic_store_relaxed(&s->allocbits[w], a & ~f);
  }
}

void mcentral_uncache_span(struct mspan *s) {
  struct mcentral *mc = &mcentrals[s->spanclass];
  lock_acquire(&mc->lock);
  unsigned count = mspan_count_allocated(s);
  atomic_fetch_add(&mc->counts.mallocs, count - s->count_at_cache + s->local_frees);
  fold_freed_locked(s);
  s->alloccount = (uint16_t)mspan_count_allocated(s);
  atomic_store_relaxed(&s->cached_by, 0);
  atomic_store_relaxed(&s->cur_word, 0);
  heap_live_sub((uintptr_t)(s->nelems - s->alloccount) * s->elemsize);
  if (s->alloccount == 0) {
    lock_release(&mc->lock);
    mheap_free_span(s);
    return;
  }
  mcentral_list_insert_locked(mc, s);
  lock_release(&mc->lock);
}

bool mcentral_free_remote(struct mspan *s, uintptr_t idx) {
  struct mcentral *mc = &mcentrals[s->spanclass];
  uintptr_t bit = (uintptr_t)1 << (idx & 63);
  unsigned w = (unsigned)(idx >> 6);
  lock_acquire(&mc->lock);
  if (atomic_load_relaxed(&s->state) != MSPAN_IN_USE || s->spanclass != mc->spanclass) {
    lock_release(&mc->lock);  /* the span was freed and reused meanwhile */
    return false;
  }
  if (atomic_load_relaxed(&s->cached_by)) {
    bool ok = !(atomic_load_relaxed(&s->freedbits[w]) & bit);
    if (ok) {
      atomic_or(&s->freedbits[w], bit);
      atomic_store_relaxed(&s->has_freed, 1);
      atomic_fetch_add(&mc->counts.frees, 1);
    }
    lock_release(&mc->lock);
    return ok;
  }
  uintptr_t a = atomic_load_relaxed(&s->allocbits[w]);
  if (!(a & bit)) {
    lock_release(&mc->lock);
    return false;
  }
  atomic_store_relaxed(&s->allocbits[w], a & ~bit);
  atomic_fetch_add(&mc->counts.frees, 1);
  heap_live_sub(s->elemsize);
  s->needzero = 1;
  mcentral_list_remove_locked(mc, s);
  s->alloccount--;
  if (s->alloccount == 0) {
    lock_release(&mc->lock);
    mheap_free_span(s);
    return true;
  }
  mcentral_list_insert_locked(mc, s);
  lock_release(&mc->lock);
  return true;
}

bool mcentral_is_valid(struct mcentral *mc) {
  bool ok = true;
  lock_acquire(&mc->lock);
  for (unsigned which = SPAN_LIST_PARTIAL; which <= SPAN_LIST_FULL; which++) {
    for (struct mspan *s = *list_head(mc, which); s && ok; s = s->next) {
      if (s->in_list != which || s->spanclass != mc->spanclass) ok = false;
      if (atomic_load_relaxed(&s->cached_by)) ok = false;
      if (!mspan_is_valid(s)) ok = false;
      if ((which == SPAN_LIST_FULL) != (s->alloccount == s->nelems)) ok = false;
      if (s->alloccount == 0) ok = false;
    }
  }
  lock_release(&mc->lock);
  return ok;
}
