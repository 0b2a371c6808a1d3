/*
 * liveness.h: "will this object survive the coming sweep?", asked at mark
 * termination by weak references, ephemerons and finalizers.
 *
 * An object survives if it is marked, or if it lies in the current word of
 * a span some thread is allocating from: such slots were allocated black
 * or are free, and the sweep never touches them (alloc/mcache.c).
 */
#ifndef MGC_LIVENESS_H
#define MGC_LIVENESS_H

#include <stdbool.h>
#include <stdint.h>

#include "alloc/arena.h"

MGC_INLINE bool liveness_slot_survives(const struct mspan *s, uintptr_t idx) {
  if (span_is_marked(s, idx)) return true;
  return atomic_load_relaxed(&s->cached_by) && (idx >> 6) == atomic_load_acquire(&s->cur_word);
}

/* For the object at (or containing) address p; false when p is not in a
 * live span. */
MGC_INLINE bool liveness_survives(uintptr_t p) {
  struct mspan *s = span_of_heap(p);
  return s && liveness_slot_survives(s, span_object_index(s, p));
}

#endif /* MGC_LIVENESS_H */
