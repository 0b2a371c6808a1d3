/*
 * lock.c: rank checking for mgc's locks (see lock.h, lockrank.h).
 *
 * Each thread records the locks it holds in a small stack.  Acquiring a lock
 * whose rank is not above the top of that stack throws: that is the order
 * violation that could deadlock against another thread taking the same two
 * locks the right way round.
 *
 * Contended locks.  A registered thread waiting for a lock enters a
 * blocking region (runtime/stw.c) for the wait: it saves its registers and
 * stack pointer, the stopper scans it like a stopped thread without
 * signalling it, and if it gets the lock while the world is stopped it
 * waits for the restart before running on.  The collector's stopped-world
 * code takes no lock (gc/collector.c), so holding one there is harmless,
 * as it is for a thread stopped inside a critical section.
 */
#include "runtime/lock.h"

#include <time.h>

#include "runtime/stw.h"
#include "runtime/thread.h"

void lock_mutex(pthread_mutex_t *m) {
  if (pthread_mutex_trylock(m) == 0) return;
  struct mthread *t = thread_current;
  if (!t) {
    pthread_mutex_lock(m);
    return;
  }
  stw_blocking_begin(t);
  pthread_mutex_lock(m);
  stw_blocking_end(t);
}

/* A contended acquire first spins this many trylocks (a few µs): a
 * holder that watches lock_has_waiters lets go within that, and taking the
 * lock without sleeping saves the futex wake-up, 50 µs or more when the
 * waiter's CPU went idle meanwhile (gap-profile, pause probe). */
#define LOCK_SPIN_TRIES 64

void lock_acquire_slow(struct mgc_lock *l) {
  atomic_fetch_add(&l->waiters, 1);
  for (int i = 0; i < LOCK_SPIN_TRIES; i++) {
    cpu_relax();
    if (pthread_mutex_trylock(&l->mutex) == 0) goto locked;
  }
  lock_mutex(&l->mutex);
locked:
  atomic_fetch_sub(&l->waiters, 1);
}

#define LOCK_YIELD_POLL_NS 20000
#define LOCK_YIELD_MAX_NS 2000000

void lock_wait_for_waiters(const struct mgc_lock *l) {
  const struct timespec poll = {0, LOCK_YIELD_POLL_NS};
  for (int i = 0; i < LOCK_YIELD_MAX_NS / LOCK_YIELD_POLL_NS && lock_has_waiters(l); i++)
    nanosleep(&poll, NULL);
}

void lock_init(struct mgc_lock *l, enum lock_rank rank) {
  pthread_mutex_init(&l->mutex, NULL);
  l->rank = rank;
  atomic_store_relaxed(&l->waiters, 0);
}

#if MGC_DEBUG >= 1

#define LOCK_MAX_HELD 8

static MGC_TLS const struct mgc_lock *held_locks[LOCK_MAX_HELD];
static MGC_TLS int held_count;

void lock_rank_acquire(const struct mgc_lock *l) {
  if (held_count > 0 && held_locks[held_count - 1]->rank >= l->rank)
    mgc_throw("lock taken out of rank order (see runtime/lockrank.h)");
  if (held_count == LOCK_MAX_HELD) mgc_throw("too many locks held at once");
  held_locks[held_count++] = l;
}

void lock_rank_release(const struct mgc_lock *l) {
  for (int i = held_count - 1; i >= 0; i--) {
    if (held_locks[i] == l) {
      for (int j = i; j < held_count - 1; j++) held_locks[j] = held_locks[j + 1];
      held_count--;
      return;
    }
  }
  mgc_throw("lock released by a thread that does not hold it");
}

bool lock_is_held(const struct mgc_lock *l) {
  for (int i = 0; i < held_count; i++)
    if (held_locks[i] == l) return true;
  return false;
}

#endif
