/*
 * scavenger.c: a background thread that releases free pages to the OS.
 *
 * With a memory limit (scavenger_set_retain_limit, set by the pacer) it
 * also releases, at once, whatever free memory is held above the limit;
 * it is woken after each sweep for that.
 *
 * Policy: every SCAVENGE_PERIOD_NS the thread releases (madvise
 * MADV_DONTNEED) every free run that has been free for at least the
 * scavenge age (SCAVENGE_DEFAULT_AGE_NS).  A heap that shrinks thus gives
 * its memory back within a few seconds, while pages that are freed and
 * reused at once (the steady state of a program that allocates and
 * collects) are never released and re-faulted.  The work itself is
 * mheap_scavenge(); this file only decides when.  gc_release_memory, a
 * program's request to release everything free now, is here too.
 *
 * The thread sleeps on a condition variable so it can be woken early
 * (scavenger_wake) and costs nothing while it sleeps.
 */
#include "alloc/scavenger.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdbool.h>
#include <time.h>

#include "alloc/mcache.h"
#include "alloc/mheap.h"
#include "mgc.h"
#include "runtime/atomics.h"
#include "runtime/os.h"
#include "runtime/thread.h"

#define SCAVENGE_PERIOD_NS 500000000ull        /* 0.5 s between passes */
#define SCAVENGE_DEFAULT_AGE_NS 3000000000ull  /* released after 3 s free */
/* Background work at a lower priority, as the sweeper and mark workers:
 * at the program's priority a lap of the page map (milliseconds at
 * 512 MiB) shared a CPU with a program thread for whole scheduler slices
 * (gap-profile: the pause probe's mutator preempted by mgc-scavenge for
 * 2-5 ms).  A program thread that needs the mheap lock meanwhile is handed
 * it (mheap_scavenge). */
#define SCAVENGER_NICE 10

static pthread_mutex_t wake_mutex = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t wake_cond;
static bool wake_pending;               /* protected by wake_mutex */
static atomic_word scavenge_age = SCAVENGE_DEFAULT_AGE_NS;
static atomic_word retain_limit = UINTPTR_MAX;

void scavenger_set_retain_limit(uint64_t bytes) { atomic_store_relaxed(&retain_limit, bytes); }

void scavenger_set_age(uint64_t ns) { atomic_store_relaxed(&scavenge_age, ns); }

GC_API size_t gc_release_memory(void) {
  /* The caller's cached spans go back first, as at thread exit (it takes
   * spans again as it allocates): the sweep then frees the dead objects of
   * the words it was allocating from, which count as allocated while a
   * thread caches them, and gives the spans left empty to the page heap. */
  struct mcache *c = thread_mcache();
  if (c) mcache_release_all(c);
  gc_collect(); /* marked and swept: the pages of everything unreachable are free */
  size_t released = mheap_scavenge(SIZE_MAX, 0);
  /* The walk passes over free runs the scavenger thread has out of the
   * lists for its madvise, and one may have merged with pages freed just
   * now: wait for those releases to end, then look again. */
  if (mheap_pages_in_release()) {
    while (mheap_pages_in_release()) sched_yield();
    released += mheap_scavenge(SIZE_MAX, 0);
  }
  return released;
}

void scavenger_wake(void) {
  pthread_mutex_lock(&wake_mutex);
  wake_pending = true;
  pthread_cond_signal(&wake_cond);
  pthread_mutex_unlock(&wake_mutex);
}

static void sleep_period(void) {
  struct timespec until;
  clock_gettime(CLOCK_MONOTONIC, &until);
  until.tv_nsec += (long)(SCAVENGE_PERIOD_NS % 1000000000ull);
  until.tv_sec += (time_t)(SCAVENGE_PERIOD_NS / 1000000000ull) + until.tv_nsec / 1000000000L;
  until.tv_nsec %= 1000000000L;
  pthread_mutex_lock(&wake_mutex);
  while (!wake_pending) {
    if (pthread_cond_timedwait(&wake_cond, &wake_mutex, &until) == ETIMEDOUT) break;
  }
  wake_pending = false;
  pthread_mutex_unlock(&wake_mutex);
}

static void *scavenger_main(void *arg) {
  (void)arg;
  os_name_thread("mgc-scavenge");
  os_lower_thread_priority(SCAVENGER_NICE);
  for (;;) {
    sleep_period();
    uintptr_t limit = atomic_load_relaxed(&retain_limit);
    if (limit != UINTPTR_MAX) {
      struct mheap_stats h;
      mheap_read_stats(&h);
      uint64_t held = h.sys - h.released + h.metadata;
      if (held > limit) mheap_scavenge(held - limit, 0);
    }
    mheap_scavenge(SIZE_MAX, atomic_load_relaxed(&scavenge_age));
  }
  return NULL;
}

int scavenger_start(void) {
  pthread_condattr_t ca;
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  pthread_cond_init(&wake_cond, &ca);
  pthread_condattr_destroy(&ca);
  /* The thread holds no heap pointers and is never stopped by the
   * collector. */
  return os_start_background_thread(scavenger_main, NULL);
}

void scavenger_after_fork_child(void) {
  pthread_mutex_init(&wake_mutex, NULL);
  wake_pending = false;
  scavenger_start();
}
