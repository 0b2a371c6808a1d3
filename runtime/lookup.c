/*
 * lookup.c: the live object that contains an address (see lookup.h).
 */
#include "runtime/lookup.h"

#include "alloc/arena.h"
#include "alloc/mcache.h"
#include "runtime/atomics.h"
#include "runtime/thread.h"

MGC_NO_SANITIZE_THREAD struct mspan *object_find_live(const void *p, uintptr_t *idx) {
  struct mspan *s = span_of_heap((uintptr_t)p);
  if (!s) return NULL;
  *idx = span_object_index(s, (uintptr_t)p);
  /* has_freed is also "freed" for a large span: set by gc_free, which
   * leaves the span in place until the sweep while the collector marks. */
  if (span_is_large(s) && atomic_load_acquire(&s->has_freed)) return NULL;
  if (!mcache_slot_is_allocated(thread_mcache(), s, *idx)) return NULL;
  return s;
}
