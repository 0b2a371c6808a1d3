/*
 * stw.h: stopping and restarting the world.
 *
 * stw_stop() stops every registered thread but the caller: threads that are
 * running get the stop signal (config.stop_signal), whose handler records
 * the thread's stack pointer (its registers are in the signal frame below
 * it) and waits; threads inside gc_blocking_begin/end are already parked
 * and are not signalled.  When stw_stop returns, no registered thread runs
 * mutator code until stw_start().
 *
 * Callers hold the heap locks (gc/collector.c takes them first) so that no
 * stopped thread holds a lock the collector needs.  Code between stw_stop and
 * stw_start must not call malloc, stdio or the dynamic loader: a stopped
 * thread may hold their locks.
 */
#ifndef MGC_STW_H
#define MGC_STW_H

#include <stdint.h>

#include "runtime/thread.h"

int stw_init(void);
/* Needs threads_lock held; it stays held until stw_start. */
void stw_stop(void);
/* Returns the time (os_nanotime) the world was released: the end of the
 * pause as the program sees it (waking threads takes longer). */
uint64_t stw_start(void);
/* How long the last stw_stop waited for every thread to stop. */
extern MGC_HIDDEN uint64_t stw_last_stop_latency_ns;
/* True between stw_stop and stw_start (read by the blocking-region code). */
int stw_world_stopped(void);


/* gc_blocking_begin/end for t (NULL: the calling thread, if registered).
 * stw_blocking_begin saves the caller's registers and stack pointer: a
 * caller that waits in the region keeps its frame, so what it and its
 * callers hold is scanned. */
void stw_blocking_begin(struct mthread *t);
void stw_blocking_end(struct mthread *t);

#endif /* MGC_STW_H */
