/*
 * lockrank.h: every lock in mgc, in the one order in which they may be
 * taken.  A thread holding a lock of rank r may only take locks of a rank
 * greater than r.  Debug builds check this on every acquire (runtime/lock.h).
 *
 *   LOCK_INIT        gc_init's one-time setup
 *   LOCK_GC          the collector's cycle lock: one cycle at a time, held by
 *                    whoever drives a collection (gc_collect, the trigger)
 *   LOCK_THREADS     the registry of threads (runtime/thread.c); held while
 *                    the world is stopped, and so are ROOTS, FINALIZERS and
 *                    WEAK: the collector takes all four before it stops the
 *                    world, since a stopped thread might hold one
 *   LOCK_ROOTS       explicit root ranges (gc_add_roots)
 *   LOCK_FINALIZERS  the finalizer table and queue (gc/finalizer.c)
 *   LOCK_WEAK        weak reference and ephemeron registries (gc/weak.c)
 *   LOCK_MCENTRAL    one per span class (alloc/mcentral.c)
 *   LOCK_MHEAP       the page heap (alloc/mheap.c): free runs, arenas,
 *                    span metadata allocation
 *   LOCK_SCAVENGER   the scavenger's sleep/wake state
 */
#ifndef MGC_LOCKRANK_H
#define MGC_LOCKRANK_H

enum lock_rank {
  LOCK_RANK_NONE = 0,
  LOCK_INIT,
  LOCK_GC,
  LOCK_THREADS,
  LOCK_ROOTS,
  LOCK_FINALIZERS,
  LOCK_WEAK,
  LOCK_MCENTRAL,
  LOCK_MHEAP,
  LOCK_SCAVENGER,
  LOCK_RANK_COUNT
};

#endif /* MGC_LOCKRANK_H */
