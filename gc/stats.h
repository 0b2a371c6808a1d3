/*
 * stats.h: what the collector has done, for gc_get_stats and MGC_TRACE.
 */
#ifndef MGC_STATS_H
#define MGC_STATS_H

#include <stdbool.h>
#include <stdint.h>

/* One finished cycle, as the collector measured it. */
struct cycle_record {
  uint64_t start_ns, end_ns;       /* os_nanotime */
  uint64_t mark_start_ns, mark_end_ns;
  uint64_t pause_setup_ns;         /* mark setup stop (all marking if stopped-world) */
  uint64_t pause_term_ns;          /* mark termination stops, summed */
  uint64_t cpu_ns;                 /* collector CPU: its thread, helpers, assists */
  uint64_t assist_ns;              /* of which assists */
  uint64_t assists;                /* assists that scanned or waited */
  uint64_t assist_wall_ns;         /* their wall time: threads held up */
  uint64_t assist_max_ns;          /* the longest one */
  uint64_t max_stop_latency_ns;    /* longest wait for threads to stop */
  uintptr_t heap_before;           /* heap_live when the cycle started */
  uintptr_t heap_at_mark_start;
  uintptr_t heap_at_mark_end;
  uintptr_t cache_slack_at_mark_end; /* heap_cache_slack then */
  uintptr_t heap_marked;           /* live after mark */
  uintptr_t heap_goal;             /* goal for the next cycle */
  uintptr_t verify_misses;         /* MGC_VERIFY */
  uintptr_t ephemerons_cleared;    /* weak refs and ephemerons cleared */
  unsigned workers;                /* mark workers used */
  unsigned termination_attempts;
  bool forced;
  bool concurrent;
};

void stats_init(void);
/* Record a finished cycle (world running; called under the gc lock). */
void stats_record_cycle(const struct cycle_record *c);
/* Record one stop of the world (its length). */
void stats_record_pause(uint64_t ns);
/* Print the MGC_TRACE line for it. */
void stats_trace_cycle(const struct cycle_record *c, uint64_t cycle);

/* fork(): stats_lock is held across it, then released (parent) or made
 * anew (child). */
void stats_fork_prepare(void);
void stats_fork_parent(void);
void stats_after_fork_child(void);
uint64_t stats_cycles(void);

#endif /* MGC_STATS_H */
