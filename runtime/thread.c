/*
 * thread.c: the thread registry (see thread.h).
 *
 * Records come from a fixalloc under threads_lock and are never unmapped,
 * so a stale pointer to one is safe to read.  A pthread key whose
 * destructor unregisters catches threads that exit while registered.
 */
#include "runtime/thread.h"

#include <errno.h>
#include <string.h>

#include "alloc/fixalloc.h"
#include "alloc/mcentral.h"
#include "gc/barrier.h"
#include "runtime/init.h"
#include "runtime/os.h"
#include "runtime/throw.h"

MGC_TLS struct mthread *thread_current;
static struct mcache placeholder_mcache = {.free_memo = (uintptr_t)&mcache_no_memo, .is_placeholder = true};
MGC_TLS struct mcache *mcache_current = &placeholder_mcache;
struct mgc_lock threads_lock = MGC_LOCK_INITIALIZER(LOCK_THREADS);
struct mthread *threads_head;
atomic_word threads_count;

static struct fixalloc thread_records;  /* under threads_lock */
static pthread_key_t exit_key;

static void thread_exit_destructor(void *arg) {
  struct mthread *t = arg;
  if (t && thread_current == t) thread_unregister_current();
}

int thread_registry_init(void) {
  fixalloc_init(&thread_records, sizeof(struct mthread));
  return pthread_key_create(&exit_key, thread_exit_destructor);
}

struct mthread *thread_register_current(void) {
  struct mthread *t = thread_current;
  if (t) return t;
  uintptr_t lo = 0, hi = 0;
  if (os_thread_stack_bounds(&lo, &hi) != 0) {
    mgc_report("gc_thread_register: cannot find the thread's stack; not registered");
    return NULL;
  }
  lock_acquire(&threads_lock);
  t = fixalloc_alloc(&thread_records);
  if (!t) {
    lock_release(&threads_lock);
    errno = ENOMEM;
    return NULL;
  }
  mcache_init(&t->mcache);
  t->pthread = pthread_self();
  t->stack_lo = lo;
  t->stack_hi = hi;
  t->next = threads_head;
  if (threads_head) threads_head->prev = t;
  threads_head = t;
  atomic_fetch_add(&threads_count, 1);
  thread_current = t;
  mcache_current = &t->mcache;
  lock_release(&threads_lock);
  pthread_setspecific(exit_key, t);
  return t;
}

void thread_unregister_current(void) {
  struct mthread *t = thread_current;
  if (!t) return;
  /* Old values this thread's barrier recorded must reach the marker, and
   * spans go back, before the record disappears from the registry. */
  barrier_flush_own(t);
  mcache_release_all(&t->mcache);
  lock_acquire(&threads_lock);
  if (t->prev) t->prev->next = t->next;
  else threads_head = t->next;
  if (t->next) t->next->prev = t->prev;
  atomic_fetch_sub(&threads_count, 1);
  thread_current = NULL;
  mcache_current = &placeholder_mcache;
  fixalloc_free(&thread_records, t);
  lock_release(&threads_lock);
  pthread_setspecific(exit_key, NULL);
}

void *mcache_refill_unregistered(unsigned spc, bool zero) {
  init_once();
  struct mthread *t = thread_register_current();
  if (!t) return NULL;
  return mcache_alloc(&t->mcache, spc, zero);
}

void thread_registry_after_fork_child(void) {
  struct mthread *self = thread_current;
  lock_reinit_after_fork(&threads_lock);
  /* Other threads' records describe threads that do not exist in the
   * child: give their cached spans back and drop them. */
  struct mthread *t = threads_head;
  while (t) {
    struct mthread *next = t->next;
    if (t != self) {
      mcache_release_all(&t->mcache);
      fixalloc_free(&thread_records, t);
      atomic_fetch_sub(&threads_count, 1);
    }
    t = next;
  }
  threads_head = self;
  if (self) {
    self->next = self->prev = NULL;
    self->pthread = pthread_self();
  }
  mcentral_uncache_orphans(self ? (uintptr_t)&self->mcache : 0);
}
