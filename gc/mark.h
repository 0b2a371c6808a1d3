/*
 * mark.h: marking.  Greys objects reachable from root ranges and scans
 * them conservatively, in parallel on the mark workers.
 *
 * Colours: white = mark bit clear; grey = mark bit set and the object (or a
 * piece of it) in some worker's or the pool's work buffers; black = mark
 * bit set and scanned.  A noscan object goes straight from white to black.
 * Invariant at the end of a mark: no black object holds a pointer to a
 * white allocated object.
 */
#ifndef MGC_MARK_H
#define MGC_MARK_H

#include <stdbool.h>
#include <stdint.h>

#include "gc/workbuf.h"

/* Grey a root range (split into pieces of at most OBLET_BYTES). */
void mark_grey_range(struct gcwork *w, uintptr_t lo, uintptr_t hi);
/* Mark the object containing the word value v, if it is one. */
void mark_pointer(struct gcwork *w, uintptr_t v);

/* Grey an object just marked: queue it for scanning as its kind wants
 * (conservatively in oblets, precisely by type, or not at all). */
struct mspan;
void mark_push_object(struct gcwork *w, const struct mspan *s, uintptr_t base, uintptr_t size);

/* Grey now what the object in slot `base` of s points to, as its kind is
 * scanned (an ephemeron's key and value both, as plain words): gc_free's
 * deletion barrier, before the slot is freed. */
void mark_object_words_now(struct gcwork *w, const struct mspan *s, uintptr_t base);

/* Drain all grey work with `nworkers` threads, starting from what is in
 * the pool and in w.  Returns the bytes of objects greyed, by all workers
 * (w's count included and reset).  With the world stopped (background
 * false) the caller and nworkers-1 helpers drain; while it runs
 * (background true) nworkers helpers drain at a lower priority, yielding
 * the CPU often, and the caller waits (mark.c explains why). */
uintptr_t mark_drain_parallel(struct gcwork *w, unsigned nworkers, bool background);

/* Mark setup: copy the root words that may be heap pointers (world
 * stopped), then grey what they name (world running). */
void mark_record_root_range(struct gcwork *w, uintptr_t lo, uintptr_t hi);
void mark_grey_recorded_roots(struct gcwork *w);
/* Scan grey work from w (and the pool) until `budget` bytes are scanned,
 * os_nanotime() passes deadline_ns (UINT64_MAX: no deadline) or there is
 * none; returns the bytes scanned.  For assists. */
uintptr_t mark_drain_budget(struct gcwork *w, uintptr_t budget, uint64_t deadline_ns);
/* Bracket an assist from before it takes grey work until it has flushed
 * what it leaves: a lone background worker that runs dry waits for those
 * leftovers instead of ending its drain. */
void mark_assist_begin(void);
void mark_assist_end(void);
/* Record, for every cached span, its current word and the owner's free
 * bits of it, so objects allocated there from now on can be told from
 * older ones, and mark each thread's current tiny block (mark start, world
 * stopped; see alloc/mcache.c). */
void mark_snapshot_cached_words_stw(void);

/* Scan work done by background drains during a concurrent mark, banked for
 * assists (gc/pacer.c): mark_take_background_credit claims up to `want`
 * bytes of it and returns how much it got; mark_reset_background_credit
 * empties the bank (mark start and end). */
uintptr_t mark_take_background_credit(uintptr_t want);
uintptr_t mark_background_credit(void); /* what the bank holds */
void mark_reset_background_credit(void);
/* Whether a background drain is running (a worker marking, or holding
 * grey work it may yet share). */
bool mark_background_draining(void);

/* Mutators mark too (barrier flushes, assists): they hand their counts to
 * the cycle with mark_account_mutator; the collector takes the sum. */
void mark_account_mutator(struct gcwork *w);
uintptr_t mark_take_mutator_marked(uintptr_t *scanned);

/* After fork(): the child has no helper threads. */
void mark_after_fork_child(void);

/* CPU time the helpers spent marking since the last call. */
uintptr_t mark_take_helper_cpu_ns(void);

#endif /* MGC_MARK_H */
