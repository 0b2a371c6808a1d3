/*
 * pacer.h: when to start a cycle and how much marking allocating threads
 * must do (see pacer.c).
 */
#ifndef MGC_PACER_H
#define MGC_PACER_H

#include <stdbool.h>
#include <stdint.h>

/* Bounds of mark assists that tests/concurrent/test_background.c checks
 * (the rest are pacer.c's). */

/* No assist for a debt under this many scan bytes. */
#define ASSIST_MIN_WORK ((intptr_t)64 << 10)
/* A thread's assists that follow one another with less than
 * ASSIST_BURST_REST_NS of its own running between them form a burst, and
 * a burst holds the thread at most ASSIST_BURST_MAX_NS (wall time, sleeps
 * included); then the thread runs ASSIST_BURST_REST_NS before it assists
 * again, past the goal too, its debt carried.  Past its goal the pause
 * probe at 256 MiB assisted at span after span with nothing between: with
 * the bound its 99.9th percentile gap went from 516-573 µs to 352-434
 * (4 interleaved runs each), speed and peak RSS the same.  It costs heap:
 * the program allocates unchecked while it rests, and test_pacer's
 * median heap at mark end went from 1.11-1.12x the goal to 1.12-1.17x
 * (5 runs each; 1.14-1.23x with a rest of 100 µs). */
#define ASSIST_BURST_MAX_NS 500000
#define ASSIST_BURST_REST_NS 50000
/* An assist past the goal that finds no grey work waits for some, in
 * polls of this length, at most this many times (400 µs): the next
 * allocation that needs a span parks again if the workers are still
 * behind, so the program is held to their pace all the same, in pieces
 * short enough for the pause goal.  (At 200 polls, 10 ms, single parks
 * made gaps of 1.4-1.6 ms in the pause probe at 256 MiB; binary-trees
 * and the probe kept their heap size and speed at 8.) */
#define ASSIST_PARK_POLL_NS 50000
#define ASSIST_PARK_POLLS 8

struct pacer_cycle {
  uintptr_t marked;           /* live bytes found by the mark */
  uintptr_t cache_slack;      /* heap_cache_slack at mark end */
  uintptr_t scanned;          /* bytes scanned by the mark */
  uintptr_t alloc_during_mark;/* heap_live growth from mark start to end */
  uint64_t gc_cpu_ns;         /* collector CPU of the cycle */
  uint64_t wall_ns;           /* since the previous cycle ended */
  uint64_t mark_wall_ns;      /* mark start to mark end */
  uint64_t mutator_ns;        /* previous cycle's end to this mark's start */
  uintptr_t alloc_before_mark;/* heap_live growth over mutator_ns */
};

void pacer_init(int gogc, uint64_t memlimit);
/* Recompute the goal and trigger after a cycle (gc lock held). */
void pacer_end_cycle(const struct pacer_cycle *c, bool concurrent);
/* Recompute after a setting changed (gc lock held). */
void pacer_settings_changed(void);
/* Mark start: set up assists for this cycle (world stopped). */
void pacer_start_mark_stw(uintptr_t heap_live_now);
void pacer_end_mark_stw(void);

int pacer_set_gogc(int gogc);          /* returns the old value */
uint64_t pacer_set_memlimit(uint64_t); /* returns the old value */
uint64_t pacer_memlimit(void);          /* UINT64_MAX if none */
void pacer_set_disabled(bool disabled);

uintptr_t pacer_goal(void);
uintptr_t pacer_marked(void);
bool pacer_limit_bound(void);          /* the memory limit set the last goal */

/* Allocation slow path during marking: this thread allocated `bytes`;
 * pay for it with scan work (installed as the heap assist hook). */
void pacer_assist(uintptr_t bytes);
/* The assists since the last call (and zero the counts): those that
 * scanned or waited, not those paid from background credit alone. */
struct pacer_assists {
  uint64_t cpu_ns;            /* CPU time of the assisting threads */
  uint64_t count;
  uint64_t wall_ns;           /* time the allocating threads were held */
  uint64_t max_wall_ns;       /* the longest single assist */
};
void pacer_take_assists(struct pacer_assists *out);
/* Sleeps of starved assists past the goal (park_assist) since the last
 * call. */
uint64_t pacer_take_park_polls(void);

#endif /* MGC_PACER_H */
