/*
 * lookup.h: the live object that contains an address.
 *
 * gc_base, gc_size, gc_realloc and gc_set_finalizer take any pointer, and
 * promise not to fault even while another thread frees the object and its
 * span is reused: object_find_live reads the span map and span records
 * without a lock, as the marker does, and each step re-checks what the one
 * before found (the span's state, its bounds, the slot's bits).  A value
 * read mid-change makes the answer stale, never a crash, so it is hidden
 * from ThreadSanitizer (the plain reads that race are span fields such as
 * spanclass and sizeclass of a record being recycled); a program that asks
 * about an object another thread frees at the same moment gets whichever
 * answer was true.
 */
#ifndef MGC_RUNTIME_LOOKUP_H
#define MGC_RUNTIME_LOOKUP_H

#include <stdint.h>

#include "alloc/mspan.h"
#include "gc/types.h"
#include "runtime/compiler.h"

/* The span and slot index of the live object containing p, or NULL: not
 * in an in-use span, in a free slot (or one this thread holds a free of),
 * or a large object already freed.  A typed object's header counts as
 * part of its slot here; callers compare p with object_user_start. */
struct mspan *object_find_live(const void *p, uintptr_t *idx);

/* Where the program's part of the object in the slot at slot_addr of s
 * starts: after the header of a typed object. */
MGC_INLINE uintptr_t object_user_start(const struct mspan *s, uintptr_t slot_addr) {
  return slot_addr + (spanclass_typed(s->spanclass) ? TYPED_HEADER : 0);
}

#endif
