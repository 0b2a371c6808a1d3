/*
 * lockrank.h: every lock in mgc, in the one order in which they may be
 * taken.  A thread holding a lock of rank r may only take locks of a rank
 * greater than r.  Debug builds check this on every acquire (runtime/lock.h).
 *
 *   LOCK_GC          one cycle at a time: held by the collector thread for
 *                    a whole cycle, and by the GOGC / limit / disable setters
 *   LOCK_THREADS     the registry of threads (runtime/thread.c)
 *   LOCK_ROOTS       explicit roots and data segments (runtime/roots.c)
 *   LOCK_MCENTRAL    one per span class (alloc/mcentral.c); never two at once
 *   LOCK_MHEAP       the page heap (alloc/mheap.c): free runs, arenas,
 *                    span metadata allocation
 *   LOCK_FINALIZERS  finalizer records and queue (gc/finalizer.c); taken by
 *                    the sweep under an mcentral lock, and by mutators only
 *                    with in_mark_work set
 *
 * THREADS and ROOTS are held while the world is stopped: the collector
 * takes both before it stops the world, since a stopped thread might hold
 * one.  Marking takes no lock a mutator holds; sweeping happens under the
 * span's mcentral lock.  Leaf locks outside this order (each a few
 * instructions, never held while taking another, but by fork's prepare
 * handler, which takes stats_lock then types_lock last of all): the work
 * pool's spin lock, stats_lock, types_lock, the scavenger's and sweeper's
 * wake mutexes.
 * The fork guard (runtime/forkguard.h), a reader-writer lock, ranks
 * between LOCK_ROOTS and LOCK_MCENTRAL.
 */
#ifndef MGC_LOCKRANK_H
#define MGC_LOCKRANK_H

enum lock_rank {
  LOCK_RANK_NONE = 0,
  LOCK_GC,
  LOCK_THREADS,
  LOCK_ROOTS,
  LOCK_MCENTRAL,
  LOCK_MHEAP,
  LOCK_FINALIZERS,
  LOCK_RANK_COUNT
};

#endif /* MGC_LOCKRANK_H */
