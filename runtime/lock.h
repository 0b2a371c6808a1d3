/*
 * lock.h: mgc's mutex, a pthread mutex carrying a rank from lockrank.h.
 *
 * A registered thread waits for a contended lock inside a blocking region
 * (lock.c): it cannot run mutator code while it waits, so a stop of the
 * world need not signal it, and under ThreadSanitizer, which holds back a
 * signal's handler while the thread sits in pthread_mutex_lock, it could
 * not acknowledge one (runtime/stw.c).
 *
 * A lock counts the threads waiting for it (only on the contended path,
 * so an uncontended lock costs what a pthread mutex does).  A background
 * thread that holds a lock the program's threads need, in many short
 * stretches, checks lock_has_waiters between steps and, between holds,
 * lets the waiters have the lock first with lock_wait_for_waiters (the
 * scavenger and the mheap lock, background sweeps and class locks).
 *
 * Debug builds keep, per thread, the highest rank held (as a stack of up to
 * LOCK_MAX_HELD entries) and throw when a lock is taken out of order or
 * released by a thread that does not hold it.  Release builds compile to
 * plain pthread calls.
 */
#ifndef MGC_LOCK_H
#define MGC_LOCK_H

#include <pthread.h>
#include <stdbool.h>

#include "runtime/atomics.h"
#include "runtime/compiler.h"
#include "runtime/lockrank.h"
#include "runtime/throw.h"

struct mgc_lock {
  pthread_mutex_t mutex;
  enum lock_rank rank;
  atomic_word waiters; /* threads blocked in lock_acquire on it */
};

#define MGC_LOCK_INITIALIZER(r) { PTHREAD_MUTEX_INITIALIZER, (r), 0 }

void lock_init(struct mgc_lock *l, enum lock_rank rank);

#if MGC_DEBUG >= 1
void lock_rank_acquire(const struct mgc_lock *l);
void lock_rank_release(const struct mgc_lock *l);
bool lock_is_held(const struct mgc_lock *l);
#define lock_assert_held(l) mgc_assert(lock_is_held(l))
#else
#define lock_rank_acquire(l) ((void)0)
#define lock_rank_release(l) ((void)0)
#define lock_assert_held(l) ((void)0)
#endif

/* Lock mutex m; if it is taken, wait parked in a blocking region when the
 * caller is a registered thread.  Also for the plain pthread mutexes that
 * registered threads take (request and statistics locks). */
void lock_mutex(pthread_mutex_t *m);

/* The contended path of lock_acquire: counted in l->waiters. */
void lock_acquire_slow(struct mgc_lock *l);

MGC_INLINE void lock_acquire(struct mgc_lock *l) {
  lock_rank_acquire(l);
  if (unlikely(pthread_mutex_trylock(&l->mutex) != 0)) lock_acquire_slow(l);
}

/* Whether some thread is blocked waiting for l (a hint, read relaxed). */
MGC_INLINE bool lock_has_waiters(const struct mgc_lock *l) { return atomic_load_relaxed(&l->waiters) != 0; }

MGC_INLINE void lock_release(struct mgc_lock *l) {
  lock_rank_release(l);
  pthread_mutex_unlock(&l->mutex);
}

/* Wait, not holding l, until no thread waits for it: a background thread
 * that takes l again and again (a sweep of span after span) calls this
 * between holds, because a woken waiter needs tens of microseconds to run
 * (longer when its CPU was idle) and relocking sooner would win the lock
 * back from it and send it back to sleep.  Waits at most about
 * LOCK_YIELD_MAX_NS, so the caller progresses under constant contention. */
void lock_wait_for_waiters(const struct mgc_lock *l);

/* After fork() the child re-initialises locks that another thread may have
 * held at the moment of the fork. */
MGC_INLINE void lock_reinit_after_fork(struct mgc_lock *l) {
  pthread_mutex_init(&l->mutex, NULL);
  atomic_store_relaxed(&l->waiters, 0);
}

#endif /* MGC_LOCK_H */
