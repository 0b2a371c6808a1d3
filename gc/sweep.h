/*
 * sweep.h: turning the last mark into free space, concurrently with the
 * program (see sweep.c).
 */
#ifndef MGC_SWEEP_H
#define MGC_SWEEP_H

#include <stdbool.h>
#include <stdint.h>

#include "alloc/mspan.h"
#include "runtime/testhold.h"

/* Start the background sweeper (once). */
int sweep_init(void);
/* Begin a sweep generation: world stopped, marking done. */
void sweep_start_cycle_stw(void);
/* Sweep every span still unswept, from the calling thread, handing each
 * class lock to waiting threads.  World running. */
void sweep_finish(void);
/* The last sweep generation a heap walk went through while it lasted:
 * equal to mheap_sweepgen when heap_live holds little of the last mark's
 * garbage any more. */
uintptr_t sweep_walked_generation(void);
/* Is every in-use span swept?  (World stopped, no sweep in progress;
 * reports each span that is not.) */
bool sweep_all_done_stw(void);
/* Wake the background sweeper for the new generation; world running. */
void sweep_wake_background(void);
/* Sweep one span found by a heap walk, if it needs it.  hand_over: a
 * background walk, which lets threads waiting for the class lock have it
 * first (mcentral_sweep_any). */
void sweep_span(struct mspan *s, bool hand_over);
/* Sweep s, which a heap walk found as an unswept large span: the record
 * may have been reused since, even for a small span (sweep_span calls it;
 * tests call it directly to make that happen). */
void sweep_large_span(struct mspan *s, bool hand_over);
/* gc_free of the large object of s, just marked freed (has_freed won):
 * take s's sweep from the sweepers, who would find nothing to do, before
 * s is released.  Checking only that no sweeper held it was not enough: one
 * could claim it after the check, and if the record was released and
 * reused for a new object meanwhile, it swept that object away.  Waits
 * while a sweeper holds s.  The caller holds the mark phase still
 * (thread_mark_phase_enter), so the generation cannot move meanwhile. */
void sweep_take_large_for_free(struct mspan *s);
/* Spans swept by the last sweep generation that freed objects, etc. */
struct sweep_counts {
  uintptr_t large_freed;
  uintptr_t large_freed_bytes;
};
void sweep_read_counts(struct sweep_counts *out);
/* Hold point (runtime/testhold.h) in the heap walks that sweep (the
 * background sweeper, sweep_finish, allocation's proportional sweeping),
 * before each span they would sweep.  Spans the allocator sweeps itself
 * (mcentral before handing one out, the owner of a cached span) are still
 * swept meanwhile. */
extern MGC_HIDDEN struct test_hold sweep_hold_before_span;
/* Hold point in sweep_large_span between claiming a span that turned out
 * to be small (a recycled record) and giving the claim back. */
extern MGC_HIDDEN struct test_hold sweep_hold_in_recycled_claim;
/* Hold point in sweep_large_span right after it has claimed a span, before
 * it looks at what the record has become. */
extern MGC_HIDDEN struct test_hold sweep_hold_after_claim;
void sweep_after_fork_child(void);

#endif /* MGC_SWEEP_H */
