/*
 * finalizer.h: finalizers (gc_set_finalizer), as the collector and the
 * sweeper see them.  The design is described in finalizer.c.
 */
#ifndef MGC_FINALIZER_H
#define MGC_FINALIZER_H

#include <stdint.h>

#include "gc/workbuf.h"

struct mspan;

/* Marking roots: the contents (not the object itself) of every object
 * with a finalizer, each finalizer's data, and every queued object and
 * its data.  Runs on the collector thread, world running (concurrent
 * mark) or stopped (MGC_CONCURRENT=0: every mutator is then outside the
 * finalizer lock, see finalizer.c). */
void finalizers_mark_roots(struct gcwork *w);

/* Sweep of s, before its mark bits are read (sweeps_in_progress counted):
 * every object of s with a finalizer that the mark did not reach is
 * marked now, so this sweep keeps it, and its finalizer is queued.  Slots
 * in bitmap word keep_word (the current word of a cached span, kept whole
 * by the sweep; UINT32_MAX for none) are left alone. */
void finalizers_sweep_span(struct mspan *s, unsigned keep_word);

/* gc_free(obj) of a live object: drop its finalizer, unrun. */
void finalizers_forget(struct mspan *s, uintptr_t obj);

/* After each cycle (collector thread): start the finalizer thread if
 * finalizers exist and it is not running (the first time, and in a forked
 * child). */
void finalizers_after_cycle(void);

/* fork(): the prepare handler takes the finalizer lock (after the mheap
 * lock); parent and child release it; the child has no finalizer thread. */
void finalizers_fork_prepare(void);
void finalizers_fork_parent(void);
void finalizers_after_fork_child(void);

#endif /* MGC_FINALIZER_H */
