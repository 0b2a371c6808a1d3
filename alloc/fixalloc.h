/*
 * fixalloc.h: a free-list allocator for fixed-size metadata records (span
 * structs, span bitmaps, per-thread records), kept apart from object memory.
 *
 * Memory comes from the OS in chunks and is never given back, so a pointer
 * to a freed record still points at readable memory: lock-free readers of
 * the span map (the marker, gc_base) may see a stale span and must check its
 * state and bounds, but never fault.  A fixalloc is not thread-safe; each
 * user protects it with its own lock (see the owner's comment).
 */
#ifndef MGC_FIXALLOC_H
#define MGC_FIXALLOC_H

#include <stddef.h>
#include <stdint.h>

struct fixalloc {
  size_t size;            /* bytes per record, a multiple of 8 */
  void *free_list;        /* freed records, linked through their first word */
  uint8_t *chunk;         /* unused tail of the current chunk */
  size_t chunk_left;      /* bytes left in it */
  size_t in_use;          /* records handed out and not freed */
  size_t sys_bytes;       /* bytes obtained from the OS */
};

void fixalloc_init(struct fixalloc *f, size_t size);
/* A zeroed record, or NULL when the OS refuses memory. */
void *fixalloc_alloc(struct fixalloc *f);
void fixalloc_free(struct fixalloc *f, void *p);

#endif /* MGC_FIXALLOC_H */
