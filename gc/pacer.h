/*
 * pacer.h: when to start a cycle and how much marking allocating threads
 * must do (see pacer.c).
 */
#ifndef MGC_PACER_H
#define MGC_PACER_H

#include <stdbool.h>
#include <stdint.h>

struct pacer_cycle {
  uintptr_t marked;           /* live bytes found by the mark */
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
