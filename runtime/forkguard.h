/*
 * forkguard.h: sequences a fork() must not cut in two.
 *
 * The fork handlers (runtime/init.c) take every heap lock, so a child
 * never inherits a structure half changed under a lock.  A few sequences
 * change shared state with atomics and no lock, and a child inheriting one
 * half done would wait for its end for ever, since the thread running it
 * does not exist in the child:
 *   - the sweep of a large span (gc/sweep.c), from the sweepgen claim to
 *     the release, with sweeps_in_progress raised: the child's next mark
 *     waits for that count to drop;
 *   - gc_free of a large object (runtime/api.c), from the has_freed
 *     exchange to handing the span back: cut, the span is lost to the child;
 *   - the allocation of a large object (runtime/api.c), from taking its
 *     span to adding it to heap_live: cut, the child's count is short;
 *   - the scavenger's release of a free span (alloc/mheap.c), out of the
 *     free lists while madvise runs: cut, its pages are lost to the child.
 *     It holds the guard over a window of its walk and lets a waiting
 *     fork through after the span (fork_guard_wanted).
 * They run inside fork_guard_enter / fork_guard_leave, a shared hold of a
 * reader-writer lock that the prepare handler takes exclusively.
 *
 * Rank: a holder takes mcentral, mheap and finalizer locks, so the prepare
 * handler takes the guard before those (after LOCK_ROOTS); nobody enters
 * it holding a heap lock (the collector may, holding LOCK_GC, which the
 * forking thread takes first), and it is never nested.  Readers do not
 * wait for one another; a fork waits for the sequences in flight to end
 * (the default glibc lock lets new readers in meanwhile: a stream of large
 * frees could delay a fork, never deadlock it).
 */
#ifndef MGC_FORKGUARD_H
#define MGC_FORKGUARD_H

#include <pthread.h>
#include <stdbool.h>

#include "runtime/atomics.h"
#include "runtime/compiler.h"

extern MGC_HIDDEN pthread_rwlock_t fork_guard;
/* Set by the prepare handler while it waits for (and holds) the guard. */
extern MGC_HIDDEN atomic_word fork_guard_wanted_flag;

MGC_INLINE void fork_guard_enter(void) { pthread_rwlock_rdlock(&fork_guard); }
MGC_INLINE void fork_guard_leave(void) { pthread_rwlock_unlock(&fork_guard); }

/* A holder that goes on for long (the scavenger's walk) checks this
 * between steps: readers are let in while a writer waits, so a fork would
 * wait for the whole walk. */
MGC_INLINE bool fork_guard_wanted(void) { return atomic_load_relaxed(&fork_guard_wanted_flag) != 0; }

/* Leave the guard, wait while a fork wants it, enter again.  Hold no lock. */
void fork_guard_let_fork_through(void);

#endif /* MGC_FORKGUARD_H */
