/*
 * stats.c: cycle and pause history, gc_get_stats and the MGC_TRACE line.
 *
 * Records are written by the collector thread; readers (gc_get_stats) take
 * stats_lock, a leaf mutex, for a consistent copy.  Pauses are recorded
 * while the world runs again (the lock may be held by a stopped reader).
 * Allocation counts come from the mcentral and large-object counters,
 * heap figures from the mheap.
 *
 * MGC_TRACE=1 prints one line per cycle, after it, with the world running:
 *   gc N @T s C%: A+B+C ms clock, X->Y->Z MB, G MB goal, W workers [flags]
 * N cycle number; T seconds since gc_init; C collector CPU (its threads
 * and assists) as a percentage of the process's CPU time since start;
 * A the mark-setup stop; B the concurrent phase (marking with the world
 * running); C the mark-termination stops, summed (with stopped-world
 * marking A is the whole mark and B and C are 0); X heap_live when the
 * cycle started, Y heap_live when marking ended, Z live bytes found by the
 * mark; G the goal for the next cycle; W mark workers.  Flags: (forced)
 * for gc_collect, (limit) when the memory limit set the goal, (stw) for
 * stopped-world marking, and "verify: M missed" with MGC_VERIFY=1.
 * MGC_TRACE=2 adds a second line with the CPU split and the termination
 * attempts.
 */
#include "gc/stats.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mgc.h"

#include "alloc/heaplive.h"
#include "alloc/mcentral.h"
#include "alloc/mheap.h"
#include "gc/pacer.h"
#include "gc/sweep.h"
#include "runtime/config.h"
#include "runtime/init.h"
#include "runtime/os.h"
#include "runtime/thread.h"
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

void stats_record_pause(uint64_t ns) {
  pthread_mutex_lock(&stats_lock);
  cur.pause_ns[cur.pauses % GC_PAUSE_HISTORY] = ns;
  cur.pauses++;
  cur.last_pause_ns = ns;
  cur.total_pause_ns += ns;
  if (ns > cur.max_pause_ns) cur.max_pause_ns = ns;
  pthread_mutex_unlock(&stats_lock);
}

void stats_record_cycle(const struct cycle_record *c) {
  pthread_mutex_lock(&stats_lock);
  cur.cycles++;
  if (c->forced) cur.forced_cycles++;
  cur.last_gc_ns = c->end_ns - start_ns;
  cur.heap_marked = c->heap_marked;
  cur.heap_goal = c->heap_goal;
  cur.gc_cpu_ns += c->cpu_ns;
  cur.assist_cpu_ns += c->assist_ns;
  cur.verify_misses += c->verify_misses;
  pthread_mutex_unlock(&stats_lock);
}

static int cmp_u64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

/* Nearest-rank percentile of the pause ring. */
static void pause_percentiles(const struct gc_stats *s, uint64_t *p50, uint64_t *p99) {
  uint64_t n = s->pauses < GC_PAUSE_HISTORY ? s->pauses : GC_PAUSE_HISTORY;
  *p50 = *p99 = 0;
  if (!n) return;
  uint64_t sorted[GC_PAUSE_HISTORY];
  memcpy(sorted, s->pause_ns, n * sizeof(uint64_t));
  qsort(sorted, n, sizeof(uint64_t), cmp_u64);
  *p50 = sorted[(n * 50 + 99) / 100 - 1];
  *p99 = sorted[(n * 99 + 99) / 100 - 1];
}

static double mb(uint64_t bytes) { return (double)bytes / (1024.0 * 1024.0); }

void stats_trace_cycle(const struct cycle_record *c, uint64_t cycle) {
  pthread_mutex_lock(&stats_lock);
  uint64_t gc_cpu = cur.gc_cpu_ns;
  pthread_mutex_unlock(&stats_lock);
  uint64_t cpu = os_process_cpu_ns() - start_cpu_ns;
  uint64_t wall = c->end_ns - c->start_ns;
  uint64_t stopped = c->pause_setup_ns + c->pause_term_ns;
  uint64_t concurrent_ns = c->concurrent && wall > stopped ? wall - stopped : 0;
  char verify[48] = "";
  if (config.verify)
    snprintf(verify, sizeof(verify), ", verify: %lu missed", (unsigned long)c->verify_misses);
  char line[320];
  snprintf(line, sizeof(line),
           "gc %llu @%.3fs %.0f%%: %.3f+%.3f+%.3f ms clock, %.1f->%.1f->%.1f MB, %.1f MB goal, "
           "%u workers%s%s%s%s\n",
           (unsigned long long)cycle, (double)(c->end_ns - start_ns) / 1e9,
           cpu ? 100.0 * (double)gc_cpu / (double)cpu : 0.0, (double)c->pause_setup_ns / 1e6,
           (double)concurrent_ns / 1e6, (double)c->pause_term_ns / 1e6, mb(c->heap_before),
           mb(c->heap_at_mark_end), mb(c->heap_marked), mb(c->heap_goal), c->workers,
           c->forced ? " (forced)" : "", pacer_limit_bound() ? " (limit)" : "",
           c->concurrent ? "" : " (stw)", verify);
  mgc_write_stderr(line);
  if (config.trace >= 2) {
    snprintf(line, sizeof(line),
             "gc %llu detail: cpu %.3f ms (assist %.3f ms), %u termination attempts, "
             "longest stop wait %.3f ms, heap at mark start %.1f MB\n",
             (unsigned long long)cycle, (double)c->cpu_ns / 1e6, (double)c->assist_ns / 1e6,
             c->termination_attempts, (double)c->max_stop_latency_ns / 1e6, mb(c->heap_at_mark_start));
    mgc_write_stderr(line);
  }
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
  static uint64_t unused[SPANCLASS_COUNT]; /* under threads_lock */
  lock_acquire(&threads_lock);
  memset(unused, 0, sizeof(unused));
  for (struct mthread *t = threads_head; t; t = t->next) mcache_add_unused_slots(&t->mcache, unused);
  for (unsigned spc = 2; spc < SPANCLASS_COUNT; spc++) {
    uint64_t n = atomic_load_relaxed(&mcentrals[spc].counts.mallocs) - unused[spc];
    objs += n;
    bytes += n * sizeclass_size[spanclass_sizeclass(spc)];
    frees += atomic_load_relaxed(&mcentrals[spc].counts.frees);
  }
  lock_release(&threads_lock);
  struct sweep_counts sc;
  sweep_read_counts(&sc);
  frees += sc.large_freed;
  s.total_alloc_objects = objs;
  s.total_alloc_bytes = bytes;
  s.total_free_objects = frees;
  s.memory_limit = config.memlimit;
  pause_percentiles(&s, &s.pause_p50_ns, &s.pause_p99_ns);
  size_t n = out->size < sizeof(s) ? out->size : sizeof(s);
  s.size = n;
  memcpy(out, &s, n);
  return 0;
}
