/*
 * heaplive.h: the live-heap counter that drives collection.
 *
 * heap_live counts the bytes of allocated objects, with every slot of a
 * span held by an mcache counted as allocated from the moment the span is
 * cached (so the fast path needs no counting).  Updated atomically by:
 *   mcentral   +free slots when a span is cached, -free slots when it is
 *              given back, -size for a remote gc_free of an uncached span
 *   large      +/- the span size
 *   sweep      -size of each object it frees in an uncached span
 * When an allocation slow path pushes heap_live over heap_trigger, it calls
 * the trigger hook, which the collector installs (alloc/ does not depend on
 * gc/).  The hook runs with no lock held.
 */
#ifndef MGC_HEAPLIVE_H
#define MGC_HEAPLIVE_H

#include "runtime/atomics.h"

extern MGC_HIDDEN atomic_word heap_live;
/* The caches' slack: of the bytes heap_live counts for the spans mcaches
 * hold, those that were free slots when the spans were cached (or were
 * freed by a sweep while cached), so not objects the program had.  Kept
 * by mcentral beside heap_live (+ when a span is cached or a sweep frees
 * slots of a cached span, - when it is given back); the pacer adds it to
 * the goal (gc/pacer.c).  With spans of 64 KiB and more for objects of
 * 240 bytes and up, a thread that allocates objects of every size holds
 * up to 4 MiB of it per kind (scanned, atomic).  Changed only under the
 * class lock, as the span's count_at_cache. */
extern MGC_HIDDEN atomic_word heap_cache_slack;
/* Nonzero while the collector marks concurrently: objects allocated then
 * are allocated black (alloc/mcache.c marks them when it leaves a word). */
extern MGC_HIDDEN atomic_word alloc_black;
extern MGC_HIDDEN atomic_word heap_trigger;   /* UINTPTR_MAX: never */

MGC_INLINE void heap_live_add(uintptr_t bytes) { atomic_fetch_add(&heap_live, bytes); }
MGC_INLINE void heap_live_sub(uintptr_t bytes) { atomic_fetch_sub(&heap_live, bytes); }

void heap_set_trigger_hook(void (*hook)(void));
/* Installed by the collector: called after an allocation slow path added
 * `bytes` to heap_live while alloc_black is set (mark assists). */
extern MGC_HIDDEN void (*heap_assist_hook)(uintptr_t bytes);

/* Installed by the collector: sweep a little of the heap before an
 * allocation slow path takes new memory (proportional sweeping). */
extern MGC_HIDDEN void (*heap_sweep_assist_hook)(void);

MGC_INLINE void heap_before_slow_alloc(void) {
  if (heap_sweep_assist_hook) heap_sweep_assist_hook();
}

MGC_INLINE void heap_after_slow_alloc(uintptr_t bytes) {
  if (unlikely(atomic_load_relaxed(&alloc_black)) && heap_assist_hook) heap_assist_hook(bytes);
}
/* Call the hook if heap_live has reached heap_trigger. */
void heap_check_trigger(void);

#endif /* MGC_HEAPLIVE_H */
