/*
 * workbuf.h: grey work for the marker.
 *
 * A grey entry is a range [addr, addr + len) still to be scanned: an
 * object, a piece of a large object (an "oblet" of at most OBLET_BYTES, so
 * that parallel workers share a big array), or a root range.  Entries live
 * in work buffers of WORKBUF_ENTRIES; each mark worker keeps two buffers
 * (struct gcwork, hysteresis so it does not trade a buffer with the pool
 * at every push and pop) and exchanges full buffers with a global pool.
 *
 * Buffers come from metadata memory, are recycled through the pool's empty
 * list and are never unmapped, so marking needs no malloc and may run with
 * the world stopped.  Scanning is depth-first (LIFO), which keeps a long
 * linked list at a single grey entry.
 */
#ifndef MGC_WORKBUF_H
#define MGC_WORKBUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "runtime/atomics.h"

/* 4 KiB buffers: one page of metadata each. */
#define WORKBUF_ENTRIES 255
/* Large objects are scanned in pieces of this size: a drain checks its
 * deadline (assists) and yields (background) between pieces, and a piece
 * whose every word names a cold object costs 0.1-0.15 µs per word (a
 * 128 KiB piece of a big pointer array took 1.6 ms; 8 KiB is ~0.15 ms). */
#define OBLET_BYTES ((uintptr_t)8 << 10)

struct grey {
  uintptr_t addr;
  uintptr_t len;          /* | GREY_TYPED: a typed object, scanned precisely */
};

#define GREY_TYPED ((uintptr_t)1 << 63)

struct workbuf {
  struct workbuf *next;     /* pool list link */
  uintptr_t n;              /* entries in use */
  struct grey entries[WORKBUF_ENTRIES];
};

/* One mark worker's local work.  Owner: that worker. */
struct gcwork {
  struct workbuf *cur;      /* push/pop here */
  struct workbuf *spare;    /* full or empty, swapped in when cur runs out */
  uintptr_t marked_bytes;   /* bytes of objects this worker greyed */
  uintptr_t scanned_bytes;  /* bytes it scanned */
};

/* Returns false when metadata memory is exhausted (then marking throws:
 * a collector that cannot record grey objects cannot be correct). */
void gcwork_push(struct gcwork *w, uintptr_t addr, uintptr_t len);
bool gcwork_pop(struct gcwork *w, struct grey *out);
/* Hand all local work to the pool (end of a worker's turn). */
void gcwork_flush(struct gcwork *w);
/* Give half of a full local buffer to the pool if others are idle. */
void gcwork_balance(struct gcwork *w);
bool workpool_has_work(void);
/* Take a full buffer from the pool into w; false when the pool is empty. */
bool gcwork_get_from_pool(struct gcwork *w);
/* Release w's buffers to the pool (must be empty). */
void gcwork_dispose(struct gcwork *w);

/* After fork(). */
void workpool_after_fork_child(void);

/* Workers waiting for work, for balance decisions. */
extern MGC_HIDDEN atomic_word workpool_waiting;
/* Set by a mark assist that found the pool empty while it owed work: the
 * next balance shares work even when no worker waits (gc/pacer.c). */
extern MGC_HIDDEN atomic_word workpool_assist_wanted;

#endif /* MGC_WORKBUF_H */
