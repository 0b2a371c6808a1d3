/*
 * finalizer.c: finalizers (gc_set_finalizer, gc_wait_finalizers).
 *
 * A finalizer is a record {obj, fn, data} in malloc'd memory (which mgc
 * never scans, so the record alone keeps nothing alive).  Each record is
 * on two lists: its span's (mspan.finalizers, for the sweep) and the
 * global list of all records (for marking).  A record whose object died
 * moves to the finalizer queue, which the finalizer thread empties.
 *
 * Lifetime of a finalizable object X, the way the Go runtime does it:
 *  1. Every mark greys the contents of X, but not X itself, and the
 *     record's data (finalizers_mark_roots).  So everything X reaches
 *     survives while X waits, and if X is otherwise unreachable its mark
 *     bit stays clear.
 *  2. The sweep of X's span finds X unmarked: it marks X (so this sweep
 *     keeps it) and moves the record to the queue.
 *  3. While queued, X and data are roots of every mark.
 *  4. The finalizer thread pops the record and calls fn(X, data); from
 *     then on X is only as alive as the program (or fn) keeps it, and the
 *     next cycle that finds it unreachable frees it.
 * Consequences, documented in mgc.h: if A points to B and both have
 * finalizers, B is kept alive by A's contents and is finalized in a later
 * cycle than A; a cycle of finalizable objects is never collected.
 *
 * Locking.  fin_lock (rank LOCK_FINALIZERS, above the mheap lock) guards
 * both lists, the queue and the records.  The sweep takes it under an
 * mcentral lock.  A mutator holds it only with in_mark_work set
 * (gc_set_finalizer, gc_free, the finalizer thread's pop), and a sweeper
 * only with sweeps_in_progress counted; mark setup waits for both to be
 * clear, so with the world stopped nobody holds fin_lock and stopped-world
 * marking may take it.
 *
 * Races with concurrent marking.  Marking reads the lists under fin_lock
 * once, after mark setup.  A finalizer set during marking is for an object
 * the program holds, so the snapshot marks it (and its contents); removing
 * one drops nothing the program can still reach.  Popping a queued record
 * moves X and data from the queue (a root read under the lock) to the
 * finalizer thread's stack (a root read at setup): when marking is on,
 * the pop records both in the thread's barrier buffer, as a deletion, and
 * in_mark_work keeps mark setup and termination from falling between the
 * pop and that record.  Queued records are added only by the sweep, which
 * is finished before mark setup.
 */
#include "gc/finalizer.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>

#include "mgc.h"

#include "alloc/arena.h"
#include "alloc/mcache.h"
#include "gc/mark.h"
#include "runtime/init.h"
#include "runtime/lock.h"
#include "runtime/lookup.h"
#include "runtime/os.h"
#include "runtime/thread.h"
#include "runtime/throw.h"

struct finalizer {
  struct finalizer *span_next;  /* span's list, or the queue */
  struct finalizer *all_prev;   /* global list (not while queued) */
  struct finalizer *all_next;
  uintptr_t obj;                /* the object's user address */
  gc_finalizer_fn fn;
  void *data;
};

static struct mgc_lock fin_lock = MGC_LOCK_INITIALIZER(LOCK_FINALIZERS);
static struct finalizer *all_head;                 /* under fin_lock */
static struct finalizer *queue_head, *queue_tail;  /* under fin_lock */
static uintptr_t queued_total;                     /* under fin_lock */

/* The finalizer thread's wake-up and progress, under finq_mutex (a leaf). */
static pthread_mutex_t finq_mutex = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t finq_wake = PTHREAD_COND_INITIALIZER;
static pthread_cond_t finq_done = PTHREAD_COND_INITIALIZER;
static bool finq_signalled;
static uintptr_t run_total;
static atomic_word thread_started;
/* Set once the program has set a finalizer, never cleared (a fork child
 * inherits it): the lock-free "is there any finalizer at all" test of the
 * collector's hooks (all_head and queue_head are the lock's).  A child of
 * a process that ever set one therefore starts its own finalizer thread
 * after its first cycle, with or without finalizers left. */
static atomic_word finalizers_in_use;
static struct mthread *finalizer_mthread;

static struct finalizer *span_list(const struct mspan *s) {
  return (struct finalizer *)atomic_load_relaxed(&s->finalizers);
}

/* ---- marking and sweeping ---------------------------------------------- */

static void mark_data(struct gcwork *w, const void *data) {
  uintptr_t v = (uintptr_t)data;
  if (arena_in_range(v)) mark_pointer(w, v);
}

void finalizers_mark_roots(struct gcwork *w) {
  if (!atomic_load_relaxed(&finalizers_in_use)) return;
  lock_acquire(&fin_lock);
  for (struct finalizer *f = all_head; f; f = f->all_next) {
    struct mspan *s = span_of_heap(f->obj);
    if (!s) continue;
    uintptr_t idx = span_object_index(s, f->obj);
    mark_push_object(w, s, span_object_addr(s, idx), span_slot_size(s));
    mark_data(w, f->data);
  }
  for (struct finalizer *f = queue_head; f; f = f->span_next) {
    mark_pointer(w, f->obj);
    mark_data(w, f->data);
  }
  lock_release(&fin_lock);
}

static void wake_thread(void) {
  lock_mutex(&finq_mutex); /* parked if taken (runtime/lock.h) */
  finq_signalled = true;
  pthread_cond_signal(&finq_wake);
  pthread_mutex_unlock(&finq_mutex);
}

/* Take *link's record off its span's list and the global list. */
static void unlink_locked(struct finalizer **link) {
  struct finalizer *f = *link;
  *link = f->span_next;
  if (f->all_prev) f->all_prev->all_next = f->all_next;
  else all_head = f->all_next;
  if (f->all_next) f->all_next->all_prev = f->all_prev;
}

void finalizers_sweep_span(struct mspan *s, unsigned keep_word) {
  if (!span_list(s)) return;
  unsigned queued = 0;
  lock_acquire(&fin_lock);
  struct finalizer **link = (struct finalizer **)&s->finalizers;
  while (*link) {
    struct finalizer *f = *link;
    uintptr_t idx = span_object_index(s, f->obj);
    if (span_is_marked(s, idx) || (idx >> 6) == keep_word) {
      link = &f->span_next;
      continue;
    }
    span_try_mark(s, idx); /* kept by this sweep: it waits for fn */
    unlink_locked(link);
    f->all_prev = f->all_next = f->span_next = NULL;
    if (queue_tail) queue_tail->span_next = f;
    else queue_head = f;
    queue_tail = f;
    queued++;
  }
  queued_total += queued;
  lock_release(&fin_lock);
  if (queued) wake_thread();
}

/* ---- the program's side ------------------------------------------------ */

/* Set in_mark_work around a section under fin_lock (see the top). */
static struct mthread *enter_locked_section(void) {
  struct mthread *t = thread_current;
  if (unlikely(!t)) {
    init_once();
    t = thread_register_current();
  }
  /* Never nested: the sections are entered from mgc's API functions and
   * the finalizer thread's loop, never from inside another section. */
  (void)thread_mark_phase_enter(t);
  lock_acquire(&fin_lock);
  return t;
}

static void leave_locked_section(struct mthread *t) {
  lock_release(&fin_lock);
  thread_mark_phase_leave(t, 0);
}

static struct finalizer **find_locked(struct mspan *s, uintptr_t obj) {
  struct finalizer **link = (struct finalizer **)&s->finalizers;
  while (*link && (*link)->obj != obj) link = &(*link)->span_next;
  return link;
}

void finalizers_forget(struct mspan *s, uintptr_t obj) {
  if (!span_list(s)) return;
  struct mthread *t = enter_locked_section();
  struct finalizer **link = find_locked(s, obj);
  struct finalizer *f = *link;
  if (f) unlink_locked(link);
  leave_locked_section(t);
  free(f);
}

static void ensure_thread(void);

GC_API int gc_set_finalizer(void *obj, gc_finalizer_fn fn, void *data) {
  init_once();
  uintptr_t p = (uintptr_t)obj, idx;
  struct mspan *s = object_find_live(obj, &idx);
  if (!s || object_user_start(s, span_object_addr(s, idx)) != p) {
    mgc_report("gc_set_finalizer(%p): not the start of a live mgc object; no finalizer set", obj);
    return EINVAL;
  }
  if (s->spanclass == spanclass_make(sizeclass_of(TINY_SIZE), true)) {
    mgc_report("gc_set_finalizer(%p): an atomic object of %d bytes or less shares its block "
               "and cannot be finalized alone; no finalizer set", obj, TINY_SIZE);
    return EINVAL;
  }
  struct finalizer *fresh = NULL;
  if (fn && !(fresh = calloc(1, sizeof(*fresh)))) return ENOMEM;
  struct mthread *t = enter_locked_section();
  struct finalizer **link = find_locked(s, p);
  struct finalizer *old = *link;
  if (old && fn) {
    old->fn = fn;
    old->data = data;
  } else if (old) {
    unlink_locked(link);
  } else if (fn) {
    atomic_store_relaxed(&finalizers_in_use, 1);
    fresh->obj = p;
    fresh->fn = fn;
    fresh->data = data;
    fresh->span_next = span_list(s);
    atomic_store_relaxed(&s->finalizers, (uintptr_t)fresh);
    /* No free into s by a key made before this finalizer (runtime/api.c,
     * "Free keys"). */
    atomic_store_relaxed(&s->free_key, 0);
    fresh->all_next = all_head;
    if (all_head) all_head->all_prev = fresh;
    all_head = fresh;
    fresh = NULL;
  }
  leave_locked_section(t);
  free(fresh);
  if (old && !fn) free(old);
  if (fn) ensure_thread();
  return 0;
}

/* ---- the finalizer thread ---------------------------------------------- */

/* Take the next queued finalizer into *out (on the caller's stack). */
static bool pop(struct finalizer *out) {
  struct mthread *t = enter_locked_section();
  struct finalizer *f = queue_head;
  if (f) {
    queue_head = f->span_next;
    if (!queue_head) queue_tail = NULL;
    *out = *f;
  }
  lock_release(&fin_lock);
  if (f && t && gc_barrier_on) {
    /* Grey both directly (not through the barrier buffer, whose flush
     * would clear in_mark_work between the two). */
    mark_pointer(&t->gcw, out->obj);
    mark_data(&t->gcw, out->data);
    gcwork_flush(&t->gcw);
    mark_account_mutator(&t->gcw);
  }
  thread_mark_phase_leave(t, 0);
  free(f);
  return f != NULL;
}

static void *finalizer_main(void *arg) {
  (void)arg;
  /* Started perhaps by the collector thread, which blocks every signal:
   * this thread must take the stop signal like any mutator. */
  sigset_t none;
  sigemptyset(&none);
  pthread_sigmask(SIG_SETMASK, &none, NULL);
  os_name_thread("mgc-finalize");
  gc_thread_register();
  finalizer_mthread = thread_current;
  for (;;) {
    struct finalizer f;
    while (pop(&f)) {
      f.fn((void *)f.obj, f.data);
      f.obj = 0;
      f.data = NULL;
      lock_mutex(&finq_mutex);
      run_total++;
      pthread_cond_broadcast(&finq_done);
      pthread_mutex_unlock(&finq_mutex);
    }
    gc_blocking_begin();
    pthread_mutex_lock(&finq_mutex);
    while (!finq_signalled) pthread_cond_wait(&finq_wake, &finq_mutex);
    finq_signalled = false;
    pthread_mutex_unlock(&finq_mutex);
    gc_blocking_end();
  }
  return NULL;
}

static void ensure_thread(void) {
  if (atomic_load_acquire(&thread_started) || !atomic_cas(&thread_started, 0, 1)) return;
  pthread_t th;
  if (pthread_create(&th, NULL, finalizer_main, NULL) != 0) {
    mgc_report("cannot start the finalizer thread; finalizers wait until it can be started");
    atomic_store_release(&thread_started, 0);
    return;
  }
  pthread_detach(th);
}

void finalizers_after_cycle(void) {
  if (atomic_load_relaxed(&finalizers_in_use)) ensure_thread();
}

GC_API void gc_wait_finalizers(void) {
  init_once();
  if (finalizer_mthread && thread_current == finalizer_mthread) {
    mgc_report("gc_wait_finalizers called from a finalizer; it would wait for itself; ignored");
    return;
  }
  struct mthread *t = enter_locked_section();
  uintptr_t target = queued_total;
  bool any = queue_head != NULL;
  leave_locked_section(t);
  if (any) ensure_thread();
  gc_blocking_begin();
  pthread_mutex_lock(&finq_mutex);
  while (run_total < target) pthread_cond_wait(&finq_done, &finq_mutex);
  pthread_mutex_unlock(&finq_mutex);
  gc_blocking_end();
}

/* ---- fork --------------------------------------------------------------- */

void finalizers_fork_prepare(void) { pthread_mutex_lock(&fin_lock.mutex); }
void finalizers_fork_parent(void) { pthread_mutex_unlock(&fin_lock.mutex); }

void finalizers_after_fork_child(void) {
  lock_reinit_after_fork(&fin_lock);
  pthread_mutex_init(&finq_mutex, NULL);
  pthread_cond_init(&finq_wake, NULL);
  pthread_cond_init(&finq_done, NULL);
  finq_signalled = false;
  finalizer_mthread = NULL;
  atomic_store_relaxed(&thread_started, 0);
  /* Finalizers the parent's thread had popped but not run are lost with
   * it; count them as run so gc_wait_finalizers does not wait for ever. */
  uintptr_t waiting = 0;
  for (struct finalizer *f = queue_head; f; f = f->span_next) waiting++;
  run_total = queued_total - waiting;
}
