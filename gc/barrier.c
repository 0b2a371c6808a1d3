/*
 * barrier.c: the snapshot-at-the-beginning (Yuasa deletion) write barrier.
 *
 * Invariant it maintains: every object reachable when marking started (the
 * snapshot) is marked by mark termination.  Roots are scanned with the
 * world stopped at the start; afterwards the only way to hide a snapshot
 * object from the marker is to overwrite the last heap pointer to it, and
 * GC_WRITE records that pointer (the slot's old value) before the store.
 * Objects allocated during marking are allocated black (alloc/mcache.c),
 * so new values need no barrier and no stack is ever rescanned.
 *
 * Fast path (mgc.h): load the old value, test gc_barrier_on, store, test
 * again.  One test is not enough with signal-based stops (see mgc.h): a
 * test before the store alone misses marking that starts between the test
 * and the store; a test after it alone misses mark termination landing
 * between the store and the test.  Slow path:
 * append the old value, if it can be a heap pointer, to the thread's
 * buffer; a full buffer is greyed into the thread's gcwork and handed to
 * the pool.  Mark termination greys what is left in every buffer with the
 * world stopped.
 *
 * A stop signal can land between appending an entry and bumping the count:
 * the slot then still holds the old value (the store comes after), so the
 * object stays reachable through the heap and nothing is lost.
 */
#include "gc/barrier.h"

#include <string.h>

#include "mgc.h"

#include "alloc/arena.h"
#include "gc/mark.h"
#include "runtime/init.h"

GC_API volatile int gc_barrier_on;

void barrier_set_stw(int on) { gc_barrier_on = on; }

static void grey_buffer(struct mthread *t, struct gcwork *w) {
  uintptr_t n = atomic_load_relaxed(&t->wbbuf_n);
  if (n > WBBUF_ENTRIES) n = WBBUF_ENTRIES;
  for (uintptr_t i = 0; i < n; i++) mark_pointer(w, t->wbbuf[i]);
  atomic_store_relaxed(&t->wbbuf_n, 0);
}

void barrier_flush_own(struct mthread *t) {
  atomic_store_release(&t->in_mark_work, 1);
  atomic_fence();
  if (gc_barrier_on) grey_buffer(t, &t->gcw);
  else atomic_store_relaxed(&t->wbbuf_n, 0);
  gcwork_flush(&t->gcw);
  mark_account_mutator(&t->gcw);
  atomic_store_release(&t->in_mark_work, 0);
}

void barrier_flush_all_stw(struct gcwork *w) {
  for (struct mthread *t = threads_head; t; t = t->next) grey_buffer(t, w);
}

GC_API void gc_barrier_record(void *old_value) {
  uintptr_t old = (uintptr_t)old_value;
  if (!arena_in_range(old)) return; /* NULL, or not a heap address */
  struct mthread *t = thread_current;
  if (unlikely(!t)) {
    init_once();
    t = thread_register_current();
    if (!t) return;
  }
  uintptr_t n = atomic_load_relaxed(&t->wbbuf_n);
  t->wbbuf[n] = old;
  __asm__ __volatile__("" ::: "memory"); /* entry before count (see above) */
  atomic_store_relaxed(&t->wbbuf_n, n + 1);
  if (n + 1 == WBBUF_ENTRIES) barrier_flush_own(t);
}

/* One word at a time, in the same order as GC_WRITE (old value, store,
 * flag), in the direction memmove would take for overlapping ranges. */
GC_API void gc_copy_pointers(void *dst, const void *src, size_t nwords) {
  void **d = dst;
  void *const *s = src;
  if (d <= s || d >= s + nwords) {
    for (size_t i = 0; i < nwords; i++) GC_WRITE(&d[i], s[i]);
  } else {
    for (size_t i = nwords; i-- > 0;) GC_WRITE(&d[i], s[i]);
  }
}
