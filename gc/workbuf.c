/*
 * workbuf.c: grey work buffers and the global pool (see workbuf.h).
 *
 * Pool lock: pool_mutex, a leaf, taken by mark workers, the collector and
 * assisting program threads (lock_mutex: a registered thread waits in a
 * blocking region).  Its critical sections are a few list operations, but
 * a spin lock was wrong here: a holder preempted on a busy machine (the
 * niced mark worker, two CPUs) kept an assisting thread spinning for the
 * rest of a scheduler tick (gap-profile: a 1.85 ms gap of the pause probe
 * at 1 GiB spent in gcwork_flush).  A stopped thread cannot hold it at a
 * drain with the world stopped: a thread holds it only inside mark work
 * (in_mark_work), and a stop that finds one there restarts the world.
 *
 * Invariant: every buffer is in exactly one place: a worker's cur or spare,
 * pool_full (n > 0) or pool_empty (n == 0).
 */
#include "gc/workbuf.h"

#include <pthread.h>

#include "runtime/lock.h"
#include "runtime/os.h"
#include "runtime/throw.h"

/* Buffers are carved from chunks of this many bytes. */
#define WORKBUF_CHUNK ((size_t)256 << 10)

static pthread_mutex_t pool_mutex = PTHREAD_MUTEX_INITIALIZER;
static struct workbuf *pool_full;    /* under pool_mutex */
static struct workbuf *pool_empty;   /* under pool_mutex */
static atomic_word pool_full_count;  /* written under pool_mutex, read freely */
atomic_word workpool_waiting;
atomic_word workpool_assist_wanted;

static void pool_acquire(void) { lock_mutex(&pool_mutex); }
static void pool_release(void) { pthread_mutex_unlock(&pool_mutex); }

static struct workbuf *new_empty_buffer(void) {
  pool_acquire();
  struct workbuf *b = pool_empty;
  if (b) pool_empty = b->next;
  pool_release();
  if (b) {
    b->n = 0;
    b->next = NULL;
    return b;
  }
  uint8_t *chunk = os_alloc_metadata(WORKBUF_CHUNK);
  if (!chunk) mgc_throw("out of memory for mark work buffers");
  size_t count = WORKBUF_CHUNK / sizeof(struct workbuf);
  /* Keep the first, put the rest on the empty list. */
  pool_acquire();
  for (size_t i = 1; i < count; i++) {
    struct workbuf *e = (struct workbuf *)(chunk + i * sizeof(struct workbuf));
    e->next = pool_empty;
    pool_empty = e;
  }
  pool_release();
  return (struct workbuf *)chunk;
}

static void put_full(struct workbuf *b) {
  pool_acquire();
  b->next = pool_full;
  pool_full = b;
  atomic_store_relaxed(&pool_full_count, atomic_load_relaxed(&pool_full_count) + 1);
  pool_release();
}

static void put_empty(struct workbuf *b) {
  pool_acquire();
  b->n = 0;
  b->next = pool_empty;
  pool_empty = b;
  pool_release();
}

static struct workbuf *take_full(void) {
  if (!atomic_load_relaxed(&pool_full_count)) return NULL;
  pool_acquire();
  struct workbuf *b = pool_full;
  if (b) {
    pool_full = b->next;
    atomic_store_relaxed(&pool_full_count, atomic_load_relaxed(&pool_full_count) - 1);
  }
  pool_release();
  if (b) b->next = NULL;
  return b;
}

bool workpool_has_work(void) { return atomic_load_relaxed(&pool_full_count) != 0; }

void gcwork_push(struct gcwork *w, uintptr_t addr, uintptr_t len) {
  struct workbuf *b = w->cur;
  if (unlikely(!b || b->n == WORKBUF_ENTRIES)) {
    if (b && w->spare && w->spare->n == 0) {
      /* swap in the empty spare */
      w->cur = w->spare;
      w->spare = b;
    } else {
      if (b && w->spare) put_full(w->spare); /* both full: share one */
      if (b) w->spare = b;
      w->cur = new_empty_buffer();
    }
    b = w->cur;
  }
  b->entries[b->n++] = (struct grey){addr, len};
}

bool gcwork_pop(struct gcwork *w, struct grey *out) {
  struct workbuf *b = w->cur;
  if (unlikely(!b || b->n == 0)) {
    if (w->spare && w->spare->n > 0) {
      w->cur = w->spare;
      w->spare = b;
    } else {
      struct workbuf *f = take_full();
      if (!f) return false;
      if (b) {
        if (w->spare) put_empty(b);
        else w->spare = b;
      }
      w->cur = f;
    }
    b = w->cur;
  }
  *out = b->entries[--b->n];
  return true;
}

bool gcwork_get_from_pool(struct gcwork *w) {
  struct workbuf *f = take_full();
  if (!f) return false;
  if (w->cur && w->cur->n > 0) put_full(w->cur);
  else if (w->cur) put_empty(w->cur);
  w->cur = f;
  return true;
}

void gcwork_balance(struct gcwork *w) {
  struct workbuf *b = w->cur;
  if (!b || b->n < 8 || workpool_has_work()) return;
  if (!atomic_load_relaxed(&workpool_waiting) && !atomic_load_relaxed(&workpool_assist_wanted)) return;
  atomic_store_relaxed(&workpool_assist_wanted, 0);
  struct workbuf *half = new_empty_buffer();
  uintptr_t move = b->n / 2;
  for (uintptr_t i = 0; i < move; i++) half->entries[i] = b->entries[b->n - move + i];
  half->n = move;
  b->n -= move;
  put_full(half);
}

void gcwork_flush(struct gcwork *w) {
  if (w->cur) {
    if (w->cur->n) put_full(w->cur);
    else put_empty(w->cur);
    w->cur = NULL;
  }
  if (w->spare) {
    if (w->spare->n) put_full(w->spare);
    else put_empty(w->spare);
    w->spare = NULL;
  }
}

void gcwork_dispose(struct gcwork *w) {
  mgc_assert(!w->cur || w->cur->n == 0);
  mgc_assert(!w->spare || w->spare->n == 0);
  gcwork_flush(w);
}

void workpool_after_fork_child(void) {
  /* A parent thread may have held the lock at the fork. */
  pthread_mutex_init(&pool_mutex, NULL);
  atomic_store_relaxed(&workpool_waiting, 0);
  atomic_store_relaxed(&workpool_assist_wanted, 0);
}
