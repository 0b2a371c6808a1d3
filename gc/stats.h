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
  uint64_t pause_ns;               /* total stopped time of the cycle */
  uint64_t cpu_ns;                 /* collector CPU, all its threads */
  uintptr_t heap_before;           /* heap_live when the cycle started */
  uintptr_t heap_marked;           /* live after mark */
  uintptr_t heap_goal;             /* goal for the next cycle */
  unsigned workers;                /* mark workers used */
  bool forced;
};

void stats_init(void);
/* Record a finished cycle (world running; called under the gc lock). */
void stats_record_cycle(const struct cycle_record *c);
/* Print the MGC_TRACE line for it. */
void stats_trace_cycle(const struct cycle_record *c, uint64_t cycle);
uint64_t stats_cycles(void);

#endif /* MGC_STATS_H */
