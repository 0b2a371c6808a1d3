/*
 * init.c: gc_init and process-level setup.
 *
 * The one-time part (pthread_once) reads the configuration, sets up the
 * arena index, mcentrals and the thread registry, starts the background
 * threads and installs the fork handlers.  gc_init then registers the
 * calling thread, which is what makes a second call useful from a new
 * thread.
 *
 * fork(): the prepare handler takes every heap lock in rank order, and the
 * fork guard (runtime/forkguard.h) between the roots and the class locks,
 * then the leaf locks of statistics and types, so the child inherits a
 * heap that no other thread was changing; both sides then release them,
 * and the child drops the records of threads it does not have and starts
 * its own background threads.
 */
#include "runtime/init.h"

#include <pthread.h>
#include <stdlib.h>
#include <time.h>

#include "alloc/mcentral.h"
#include "alloc/mheap.h"
#include "alloc/scavenger.h"
#include "gc/collector.h"
#include "gc/finalizer.h"
#include "gc/stats.h"
#include "gc/types.h"
#include "runtime/config.h"
#include "runtime/forkguard.h"
#include "runtime/os.h"
#include "runtime/roots.h"
#include "runtime/thread.h"
#include "runtime/throw.h"

atomic_word mgc_initialized;
pthread_rwlock_t fork_guard = PTHREAD_RWLOCK_INITIALIZER;
atomic_word fork_guard_wanted_flag;

#define FORK_GUARD_POLL_NS 100000

void fork_guard_let_fork_through(void) {
  fork_guard_leave();
  const struct timespec poll = {0, FORK_GUARD_POLL_NS};
  while (fork_guard_wanted()) nanosleep(&poll, NULL);
  fork_guard_enter();
}

static pthread_once_t init_control = PTHREAD_ONCE_INIT;

static void fork_prepare(void) {
  collector_fork_prepare();
  lock_acquire(&threads_lock);
  roots_lock_for_stw();
  atomic_store_relaxed(&fork_guard_wanted_flag, 1);
  pthread_rwlock_wrlock(&fork_guard);
  for (unsigned i = 0; i < SPANCLASS_COUNT; i++) pthread_mutex_lock(&mcentrals[i].lock.mutex);
  pthread_mutex_lock(&mheap_lock.mutex);
  finalizers_fork_prepare();
  stats_fork_prepare(); /* leaf locks last */
  types_fork_prepare();
}

static void fork_parent(void) {
  types_fork_parent();
  stats_fork_parent();
  finalizers_fork_parent();
  pthread_mutex_unlock(&mheap_lock.mutex);
  for (unsigned i = SPANCLASS_COUNT; i-- > 0;) pthread_mutex_unlock(&mcentrals[i].lock.mutex);
  atomic_store_relaxed(&fork_guard_wanted_flag, 0);
  pthread_rwlock_unlock(&fork_guard);
  roots_unlock_after_stw();
  lock_release(&threads_lock);
  collector_fork_parent();
}

static void fork_child(void) {
  types_after_fork_child();
  stats_after_fork_child();
  atomic_store_relaxed(&fork_guard_wanted_flag, 0);
  pthread_rwlock_init(&fork_guard, NULL);
  finalizers_after_fork_child();
  lock_reinit_after_fork(&mheap_lock);
  for (unsigned i = 0; i < SPANCLASS_COUNT; i++) lock_reinit_after_fork(&mcentrals[i].lock);
  roots_after_fork_child();
  lock_rank_release(&threads_lock);
  thread_registry_after_fork_child();
  scavenger_after_fork_child();
  collector_after_fork_child();
}

/* The heap commits and releases memory (mprotect, madvise) in whole pages
 * of the kernel's, which may be larger than its own 8 KiB pages (16 or 64
 * KiB on some AArch64 and POWER kernels; alloc/mheap.c, "Kernel pages"),
 * up to MHEAP_OS_PAGE_MAX.  A page size it cannot work with would make
 * the first commit fail and every allocation look like running out of
 * memory: said plainly instead, once. */
static void check_os_page_size(void) {
  size_t os_page = os_page_size();
  if (os_page && (os_page & (os_page - 1)) == 0 && os_page <= MHEAP_OS_PAGE_MAX) return;
  mgc_report("the kernel's pages are %zu bytes; mgc needs a power of two of at most %zu bytes", os_page,
             (size_t)MHEAP_OS_PAGE_MAX);
  mgc_throw("unsupported kernel page size");
}

static void init_process(void) {
  check_os_page_size();
  config_load();
  if (mheap_init() != 0) mgc_throw("cannot reserve the arena index");
  mcentral_init();
  if (thread_registry_init() != 0) mgc_throw("cannot create the thread-exit key");
  roots_init();
  if (collector_init() != 0) mgc_throw("cannot start the collector (stop signal or sweeper thread)");
  if (scavenger_start() != 0) mgc_report("cannot start the scavenger thread; free pages stay with the process");
  pthread_atfork(fork_prepare, fork_parent, fork_child);
  atomic_store_release(&mgc_initialized, 1);
}

void init_once(void) {
  if (likely(atomic_load_acquire(&mgc_initialized))) return;
  pthread_once(&init_control, init_process);
}
