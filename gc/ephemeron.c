/*
 * ephemeron.c: weak references and ephemerons (gc_weak_*, gc_ephemeron_*).
 *
 * Both are small typed heap objects of one internal type, {key, value}; a
 * weak reference is an ephemeron whose value is NULL.  They live and die
 * like any object; only the marker treats their words specially.  When it
 * reaches one (types_scan_object calls ephemeron_scan):
 *   - key NULL, outside the heap, or already marked: the value is marked
 *     like any pointer word;
 *   - otherwise the ephemeron goes on the pending list and its value is
 *     left alone for now.
 * When the grey work has drained, ephemerons_resolve revisits the pending
 * list: ephemerons whose key has been marked since get their value marked
 * (which may mark further keys: the collector drains and resolves again
 * until nothing changes).  At mark termination, with the world stopped,
 * the final resolve also counts as alive a key allocated black in the word
 * some thread allocates from (not marked until the thread leaves the word,
 * see alloc/mcache.c), and every ephemeron still pending has a dead key:
 * ephemerons_clear_dead_stw sets its key and value to NULL before the
 * world restarts.  From then on it reads NULL, and the sweep may free the
 * key and the value.
 *
 * Invariant after termination: no ephemeron reachable by the program names
 * an object that the coming sweep frees.  An ephemeron the marker never
 * scanned this cycle was either unreachable (freed with its key) or
 * allocated during marking, and then its key and value were reachable
 * when it was made, so they are marked (snapshot-at-the-beginning).
 *
 * Reading a key or a value while the collector marks hands the program a
 * pointer the mark may not have covered (its object may be unreachable
 * but not yet found so).  The reader records it in its write-barrier
 * buffer, which termination flushes before the final resolve.  The load
 * and the record happen with in_mark_work set, so neither mark setup nor
 * termination (both wait for in_mark_work to clear) can fall between them.
 *
 * The pending list is a growable array in metadata memory under
 * pending_lock, a spin lock taken only by marking code: the collector's
 * workers, and mutators inside in_mark_work (assists), which no stop of
 * the world interrupts mid-section.
 */
#include "gc/ephemeron.h"

#include <errno.h>
#include <pthread.h>
#include <string.h>

#include "mgc.h"

#include "alloc/arena.h"
#include "alloc/mcache.h"
#include "gc/mark.h"
#include "runtime/init.h"
#include "runtime/os.h"
#include "runtime/thread.h"

struct ephemeron {
  atomic_word key;
  atomic_word value;
};

#define EPHEMERON_WORDS (sizeof(struct ephemeron) / sizeof(void *))

static const gc_type *ephemeron_type;
static pthread_once_t type_once = PTHREAD_ONCE_INIT;

static void make_type(void) { ephemeron_type = types_new_ephemeron(EPHEMERON_WORDS); }

struct pending {
  uintptr_t obj;  /* user part of the ephemeron */
  uintptr_t key;  /* its key when it was scanned */
};

static atomic_word pending_lock;
static struct pending *pending;   /* under pending_lock */
static size_t pending_len, pending_cap;

static void lock_pending(void) {
  while (!atomic_cas(&pending_lock, 0, 1)) cpu_relax();
}
static void unlock_pending(void) { atomic_store_release(&pending_lock, 0); }

static bool pending_grow_locked(void) {
  size_t cap = pending_cap ? pending_cap * 2 : 1024;
  struct pending *p = os_alloc_metadata(cap * sizeof(*p));
  if (!p) return false;
  if (pending) {
    memcpy(p, pending, pending_len * sizeof(*p));
    os_free_metadata(pending, pending_cap * sizeof(*p));
  }
  pending = p;
  pending_cap = cap;
  return true;
}

/* Is the object holding `key` alive for this cycle?  Outside any in-use
 * span: yes (not the heap's to free).  Marked: yes.  Allocated black in a
 * word some thread allocates from: only the final answer, at termination
 * with the world stopped, can tell (from the owner's view, alloc/mcache.h).  Anything else
 * is dead: an old unmarked object in such a word is not freed by this
 * cycle's sweep (which keeps the word whole), but clearing references to
 * it is right all the same, and it cannot leave them dangling whichever
 * word the owner is in when the sweep comes. */
static bool key_alive(uintptr_t key, bool final) {
  struct mspan *s = span_of_heap(key);
  if (!s) return true;
  uintptr_t idx = span_object_index(s, key);
  if (span_is_marked(s, idx)) return true;
  return final && mcache_current_word_coverage_stw(s, idx) == WORD_BLACK;
}

void ephemeron_scan(struct gcwork *w, uintptr_t obj, types_mark_fn mark) {
  struct ephemeron *e = (struct ephemeron *)obj;
  uintptr_t key = atomic_load_relaxed(&e->key);
  if (!key || key_alive(key, false)) {
    uintptr_t v = atomic_load_relaxed(&e->value);
    if (v) mark(w, v, (uintptr_t)&e->value);
    return;
  }
  lock_pending();
  bool room = pending_len < pending_cap || pending_grow_locked();
  if (room) pending[pending_len++] = (struct pending){obj, key};
  unlock_pending();
  if (!room) {
    /* No memory to wait for the key: hold both strongly this cycle. */
    mark(w, key, (uintptr_t)&e->key);
    uintptr_t v = atomic_load_relaxed(&e->value);
    if (v) mark(w, v, (uintptr_t)&e->value);
  }
}

void ephemeron_visit_value(struct gcwork *w, uintptr_t obj, types_mark_fn mark) {
  struct ephemeron *e = (struct ephemeron *)obj;
  uintptr_t v = atomic_load_relaxed(&e->value);
  if (v) mark(w, v, (uintptr_t)&e->value);
}

bool ephemerons_resolve(struct gcwork *w, bool final) {
  uintptr_t marked_before = w->marked_bytes;
  lock_pending();
  for (size_t i = 0; i < pending_len;) {
    if (!key_alive(pending[i].key, final)) {
      i++;
      continue;
    }
    uintptr_t v = atomic_load_relaxed(&((struct ephemeron *)pending[i].obj)->value);
    if (v) mark_pointer(w, v);
    pending[i] = pending[--pending_len];
  }
  unlock_pending();
  return w->marked_bytes != marked_before;
}

uintptr_t ephemerons_clear_dead_stw(void) {
  uintptr_t cleared = 0;
  for (size_t i = 0; i < pending_len; i++) {
    struct ephemeron *e = (struct ephemeron *)pending[i].obj;
    /* The program may have freed the ephemeron with gc_free since it was
     * scanned, and the slot may hold another object now. */
    const gc_type *t = (const gc_type *)atomic_load_relaxed((atomic_word *)(pending[i].obj - TYPED_HEADER));
    if (t != ephemeron_type || atomic_load_relaxed(&e->key) != pending[i].key) continue;
    atomic_store_relaxed(&e->key, 0);
    atomic_store_relaxed(&e->value, 0);
    cleared++;
  }
  pending_len = 0;
  return cleared;
}

/* ---- the program's side ------------------------------------------------ */

static struct ephemeron *ephemeron_new(void *key, void *value) {
  init_once();
  pthread_once(&type_once, make_type);
  if (!ephemeron_type) {
    errno = ENOMEM;
    return NULL;
  }
  struct ephemeron *e = gc_alloc_typed(sizeof(struct ephemeron), ephemeron_type);
  if (!e) return NULL;
  /* A new object: allocated black while marking, so these first stores
   * overwrite nothing the snapshot needs. */
  atomic_store_relaxed(&e->key, (uintptr_t)key);
  atomic_store_relaxed(&e->value, (uintptr_t)value);
  return e;
}

/* Load *field for the program (see the top of the file). */
static void *read_field(const atomic_word *field) {
  struct mthread *t = thread_current;
  if (unlikely(!t)) {
    init_once();
    t = thread_register_current();
    if (!t) return (void *)atomic_load_acquire(field);
  }
  uintptr_t phase = thread_mark_phase_enter(t);
  uintptr_t v = atomic_load_relaxed(field);
  if (v && gc_barrier_on) gc_barrier_record((void *)v);
  thread_mark_phase_leave(t, phase);
  return (void *)v;
}

GC_API gc_weak *gc_weak_new(void *obj) { return (gc_weak *)ephemeron_new(obj, NULL); }

GC_API void *gc_weak_get(const gc_weak *w) {
  return w ? read_field(&((const struct ephemeron *)(const void *)w)->key) : NULL;
}

GC_API gc_ephemeron *gc_ephemeron_new(void *key, void *value) {
  return (gc_ephemeron *)ephemeron_new(key, value);
}

GC_API void *gc_ephemeron_key(const gc_ephemeron *e) {
  return e ? read_field(&((const struct ephemeron *)(const void *)e)->key) : NULL;
}

GC_API void *gc_ephemeron_value(const gc_ephemeron *e) {
  return e ? read_field(&((const struct ephemeron *)(const void *)e)->value) : NULL;
}
