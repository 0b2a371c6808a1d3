/*
 * stats.c: cycle history, gc_get_stats and the MGC_TRACE line.
 *
 * Cycle records are written by the collector under the gc lock; readers
 * (gc_get_stats) take stats_lock, a leaf mutex, for a consistent copy.
 * Allocation counts come from the mcentral counters and the large-object
 * counters, heap figures from the mheap.
 *
 * MGC_TRACE=1 prints, after each cycle, with the world running:
 *   gc N @T s C%: P ms pause, M ms mark, X->L MB, G MB goal, W workers [(forced)]
 * N cycle number; T seconds since gc_init; C collector CPU as a percentage
 * of the process's CPU time since start; P the cycle's stopped time; M its
 * whole duration; X heap_live when the cycle started; L live bytes found by
 * the mark; G the goal for the next cycle; W mark workers.
 */
#include "gc/stats.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "mgc.h"

#include "alloc/heaplive.h"
#include "alloc/mcentral.h"
#include "alloc/mheap.h"
#include "gc/sweep.h"
#include "runtime/init.h"
#include "runtime/os.h"
#include "runtime/throw.h"

extern atomic_word large_mallocs, large_frees, large_bytes_allocated;

static pthread_mutex_t stats_lock = PTHREAD_MUTEX_INITIALIZER;
static struct gc_stats cur;   /* the cycle fields; under stats_lock */
static uint64_t start_ns;
static uint64_t start_cpu_ns;

void stats_init(void) {
  start_ns = os_nanotime();
  start_cpu_ns = os_process_cpu_ns();
}

uint64_t stats_cycles(void) {
  pthread_mutex_lock(&stats_lock);
  uint64_t n = cur.cycles;
  pthread_mutex_unlock(&stats_lock);
  return n;
}

void stats_record_cycle(const struct cycle_record *c) {
  pthread_mutex_lock(&stats_lock);
  cur.pause_ns[cur.cycles % GC_PAUSE_HISTORY] = c->pause_ns;
  cur.cycles++;
  if (c->forced) cur.forced_cycles++;
  cur.last_gc_ns = c->end_ns - start_ns;
  cur.heap_marked = c->heap_marked;
  cur.heap_goal = c->heap_goal;
  cur.last_pause_ns = c->pause_ns;
  cur.total_pause_ns += c->pause_ns;
  if (c->pause_ns > cur.max_pause_ns) cur.max_pause_ns = c->pause_ns;
  cur.gc_cpu_ns += c->cpu_ns;
  pthread_mutex_unlock(&stats_lock);
}

static double mb(uint64_t bytes) { return (double)bytes / (1024.0 * 1024.0); }

void stats_trace_cycle(const struct cycle_record *c, uint64_t cycle) {
  pthread_mutex_lock(&stats_lock);
  uint64_t gc_cpu = cur.gc_cpu_ns;
  pthread_mutex_unlock(&stats_lock);
  uint64_t cpu = os_process_cpu_ns() - start_cpu_ns;
  char line[256];
  snprintf(line, sizeof(line),
           "gc %llu @%.3fs %.0f%%: %.3f ms pause, %.3f ms mark, %.1f->%.1f MB, %.1f MB goal, %u workers%s\n",
           (unsigned long long)cycle, (double)(c->end_ns - start_ns) / 1e9,
           cpu ? 100.0 * (double)gc_cpu / (double)cpu : 0.0, (double)c->pause_ns / 1e6,
           (double)(c->end_ns - c->start_ns) / 1e6, mb(c->heap_before), mb(c->heap_marked),
           mb(c->heap_goal), c->workers, c->forced ? " (forced)" : "");
  mgc_write_stderr(line);
}

GC_API int gc_get_stats(struct gc_stats *out) {
  if (!out || out->size < offsetof(struct gc_stats, cycles)) return EINVAL;
  init_once();
  struct gc_stats s;
  pthread_mutex_lock(&stats_lock);
  s = cur;
  pthread_mutex_unlock(&stats_lock);
  struct mheap_stats h;
  mheap_read_stats(&h);
  s.heap_live = atomic_load_relaxed(&heap_live);
  s.heap_in_use = h.in_use;
  s.heap_sys = h.sys;
  s.heap_released = h.released;
  s.metadata_sys = h.metadata;
  uint64_t objs = atomic_load_relaxed(&large_mallocs), bytes = atomic_load_relaxed(&large_bytes_allocated);
  uint64_t frees = atomic_load_relaxed(&large_frees);
  for (unsigned spc = 2; spc < SPANCLASS_COUNT; spc++) {
    uint64_t n = atomic_load_relaxed(&mcentrals[spc].counts.mallocs);
    objs += n;
    bytes += n * sizeclass_size[spanclass_sizeclass(spc)];
    frees += atomic_load_relaxed(&mcentrals[spc].counts.frees);
  }
  struct sweep_counts sc;
  sweep_read_counts(&sc);
  frees += sc.large_freed;
  s.total_alloc_objects = objs;
  s.total_alloc_bytes = bytes;
  s.total_free_objects = frees;
  size_t n = out->size < sizeof(s) ? out->size : sizeof(s);
  s.size = n;
  memcpy(out, &s, n);
  return 0;
}
