/*
 * fixalloc.c: fixed-size metadata records (see fixalloc.h).
 *
 * A reused record is zeroed a word at a time with relaxed atomic stores,
 * not memset: lock-free readers holding a stale pointer to it (the span
 * walk, the marker) may be loading its atomic fields (state, sweepgen,
 * bitmap words) at that very moment.  They then see the old value or 0.
 * For the same reason the free list's link, kept in a freed record's first
 * word, is stored atomically.
 */
#include "alloc/fixalloc.h"

#include <string.h>

#include "runtime/atomics.h"
#include "runtime/os.h"
#include "runtime/throw.h"

/* Chunk size: large enough that a heap of many spans makes few mmap calls,
 * small enough that a tiny program does not reserve much metadata. */
#define FIXALLOC_CHUNK ((size_t)256 << 10)

void fixalloc_init(struct fixalloc *f, size_t size) {
  memset(f, 0, sizeof(*f));
  f->size = (size + 7) & ~(size_t)7;
  mgc_assert(f->size >= sizeof(void *) && f->size <= FIXALLOC_CHUNK);
}

void *fixalloc_alloc(struct fixalloc *f) {
  void *p = f->free_list;
  if (p) {
    f->free_list = (void *)atomic_load_relaxed((atomic_word *)p);
    atomic_word *w = p;
    for (size_t i = 0; i < f->size / sizeof(*w); i++) atomic_store_relaxed(&w[i], 0);
  } else {
    if (f->chunk_left < f->size) {
      void *chunk = os_alloc_metadata(FIXALLOC_CHUNK);
      if (!chunk) return NULL;
      f->chunk = chunk;
      f->chunk_left = FIXALLOC_CHUNK;
      f->sys_bytes += FIXALLOC_CHUNK;
    }
    p = f->chunk; /* fresh from the OS: already zero */
    f->chunk += f->size;
    f->chunk_left -= f->size;
  }
  f->in_use++;
  return p;
}

void fixalloc_free(struct fixalloc *f, void *p) {
  mgc_assert(f->in_use > 0);
  atomic_store_relaxed((atomic_word *)p, (uintptr_t)f->free_list); /* see the top */
  f->free_list = p;
  f->in_use--;
}
