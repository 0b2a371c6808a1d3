/*
 * api_runtime.c: public entry points for threads and roots
 * (include/mgc.h): gc_pthread_create, gc_blocking_begin/end,
 * gc_add_roots/gc_remove_roots.
 */
#include <errno.h>
#include <stdlib.h>

#include "mgc.h"

#include "runtime/init.h"
#include "runtime/roots.h"
#include "runtime/stw.h"
#include "runtime/thread.h"
#include "runtime/throw.h"

/* The start routine and its argument travel in a metadata-free way: a
 * small malloc'd block, freed by the new thread before it runs user code.
 * The argument itself may be the only pointer to a heap object, so the
 * creating thread keeps it on its stack until the new thread has copied
 * it onto its own (registered) stack. */
struct start_block {
  void *(*start)(void *);
  void *arg;
  volatile int taken;
};

static void *thread_trampoline(void *p) {
  struct start_block *b = p;
  void *(*start)(void *) = b->start;
  void *arg = b->arg;
  gc_thread_register();
  __atomic_store_n(&b->taken, 1, __ATOMIC_RELEASE);
  void *result = start(arg);
  gc_thread_unregister();
  return result;
}

GC_API int gc_pthread_create(pthread_t *thread, const pthread_attr_t *attr,
                             void *(*start)(void *), void *arg) {
  init_once();
  struct start_block *b = malloc(sizeof(*b));
  if (!b) return EAGAIN;
  b->start = start;
  b->arg = arg;
  b->taken = 0;
  int err = pthread_create(thread, attr, thread_trampoline, b);
  if (err) {
    free(b);
    return err;
  }
  /* Keep `arg` alive here until the new thread holds it; block-aware so a
   * collection does not wait for us. */
  struct mthread *self = thread_current;
  if (self) stw_blocking_begin(self);
  while (!__atomic_load_n(&b->taken, __ATOMIC_ACQUIRE)) sched_yield();
  if (self) stw_blocking_end(self);
  free(b);
  __asm__ __volatile__("" : : "r"(arg) : "memory");
  return 0;
}

/* gc_blocking_begin and gc_blocking_end are in runtime/stw.c: they must
 * take the caller's registers before any C code runs. */

GC_API int gc_add_roots(void *start, size_t len) {
  init_once();
  if (!start || len == 0) return 0;
  int err = roots_add((uintptr_t)start, (uintptr_t)start + len);
  if (err == EINVAL) mgc_report("gc_add_roots(%p, %zu): range wraps around; ignored", start, len);
  return err;
}

GC_API void gc_remove_roots(void *start, size_t len) {
  init_once();
  if (!start || len == 0) return;
  roots_remove((uintptr_t)start, (uintptr_t)start + len);
}
