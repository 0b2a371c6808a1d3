/*
 * stats.c: cycle and pause history, gc_get_stats and the MGC_TRACE lines.
 *
 * Records are written by the collector thread; readers (gc_get_stats) take
 * stats_lock, a leaf mutex, for a consistent copy.  Pauses are recorded
 * while the world runs again (the lock may be held by a stopped reader).
 * Heap figures come from the mheap, allocation counts from the per-class
 * mcentral counters and the large-object counters.
 *
 * Allocation counts (read_alloc, under threads_lock).  mcentral counts a
 * span's free slots as allocated when an mcache takes the span, and takes
 * back the unused ones when it gives the span back; the owner's gc_free of
 * an object in a span it caches (local_frees) reaches the free count only
 * then.  read_alloc makes both exact for the moment of the call by
 * correcting for every cached span:
 *   allocated = mallocs - free slots - owner-freed slots of the current word
 *               + local_frees
 *   freed     = frees + local_frees
 * (a slot the owner freed in a word it has left shows as a free slot; one
 * in its current word does not, until it leaves the word).  Another
 * thread's cache is read without its cooperation: exact when that thread
 * is not inside an allocation slow path or gc_free at that instant, off by
 * at most a span's slots otherwise.  Large objects: frees are counted by
 * gc_free and the sweeper; freed bytes are allocated bytes less the pages
 * of large spans in use.
 *
 * MGC_TRACE=1 prints one line per cycle, after it, with the world running:
 *   gc N @T s C%: A+B+C ms clock, X->Y->Z MB, G MB goal, W workers [flags]
 * MGC_TRACE=2 adds a detail line:
 *   gc N detail: stops A+C ms, S termination stops, longest stop wait L ms;
 *   clock P+M+E ms; cpu U ms, assist V ms; n assists held threads W ms,
 *   longest J ms; heap H MB at mark start,
 *   K ephemerons cleared; since gc N-1: a objects (x MB) allocated,
 *   f objects (y MB) freed, o objects (h MB) in use; pages I MB in use,
 *   D MB idle, R MB released, Q spans
 * Every field is described in docs/trace.md; tools/mgc-plot parses the
 * first line, so its shape stays.
 */
#include "gc/stats.h"

#include <errno.h>
#include <math.h>
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

_Static_assert(SIZECLASS_COUNT - 1 <= GC_SIZE_CLASSES, "gc_stats.by_size is too small for the size classes");

/* Allocation counts at one moment (read_alloc); by size class, [0] unused. */
struct alloc_snapshot {
  uint64_t mallocs[SIZECLASS_COUNT], frees[SIZECLASS_COUNT];
  uint64_t large_mallocs, large_bytes, large_frees, large_free_bytes;
  uint64_t alloc_objects, alloc_bytes, free_objects, free_bytes;
};

/* What the cycle records keep for the detail line: the counts at the end
 * of the previous cycle. */
struct cycle_extra {
  struct alloc_snapshot now, prev;
  struct mheap_stats heap;
};

/* Taken with lock_mutex: a registered thread waits for it parked. */
static pthread_mutex_t stats_lock = PTHREAD_MUTEX_INITIALIZER;
static struct gc_stats cur;        /* the cycle fields; under stats_lock */
static struct cycle_extra extra;   /* collector thread only (gc lock) */
static uint64_t start_ns;
static uint64_t start_cpu_ns;

void stats_init(void) {
  start_ns = os_nanotime();
  start_cpu_ns = os_process_cpu_ns();
}

void stats_fork_prepare(void) { pthread_mutex_lock(&stats_lock); }
void stats_fork_parent(void) { pthread_mutex_unlock(&stats_lock); }
void stats_after_fork_child(void) { pthread_mutex_init(&stats_lock, NULL); }

uint64_t stats_cycles(void) {
  lock_mutex(&stats_lock);
  uint64_t n = cur.cycles;
  pthread_mutex_unlock(&stats_lock);
  return n;
}

/* The owner's frees in the spans c caches, per span class, not yet in the
 * mcentral counts: all of them (local_frees), and those in the current
 * word (not shown as free slots); and the frees c holds back for spans it
 * does not cache (alloc/mcache.c), in held: frees whose slots are still
 * allocated in the span.  Racy on purpose, as mcache_add_unused_slots;
 * the caller holds threads_lock. */
MGC_NO_SANITIZE_SCAN static void add_owner_frees(const struct mcache *c, uint64_t local[SPANCLASS_COUNT],
                                                 uint64_t in_word[SPANCLASS_COUNT], uint64_t held[SPANCLASS_COUNT]) {
  for (unsigned spc = 0; spc < SPANCLASS_COUNT; spc++) {
    const struct mspan *s = c->slots[spc].span;
    if (!s || atomic_load_relaxed(&s->cached_by) != (uintptr_t)c) continue;
    local[spc] += *(const volatile uint32_t *)&s->local_frees;
    in_word[spc] += (uint64_t)mgc_popcount64(atomic_load_relaxed(&s->cur_freed));
  }
  for (unsigned sc = 1; sc < SIZECLASS_COUNT; sc++) {
    unsigned held_spc = *(const volatile uint8_t *)&c->held[sc].spanclass;
    /* Frees held in an older sweep generation will be dropped, and the
     * sweep counts those objects itself when it frees them. */
    bool current = *(const volatile uintptr_t *)&c->held[sc].sweepgen == atomic_load_relaxed(&mheap_sweepgen);
    if (held_spc < SPANCLASS_COUNT && current) held[held_spc] += *(const volatile uint32_t *)&c->held[sc].count;
  }
}

/* Exact allocation counts now (see the top of the file).  Takes
 * threads_lock and the mheap lock. */
static void read_alloc(struct alloc_snapshot *a, struct mheap_stats *h) {
  static uint64_t unused[SPANCLASS_COUNT], local[SPANCLASS_COUNT], in_word[SPANCLASS_COUNT],
      held[SPANCLASS_COUNT]; /* threads_lock */
  memset(a, 0, sizeof(*a));
  mheap_read_stats(h);
  lock_acquire(&threads_lock);
  memset(unused, 0, sizeof(unused));
  memset(local, 0, sizeof(local));
  memset(in_word, 0, sizeof(in_word));
  memset(held, 0, sizeof(held));
  for (struct mthread *t = threads_head; t; t = t->next) {
    mcache_add_unused_slots(&t->mcache, unused);
    add_owner_frees(&t->mcache, local, in_word, held);
  }
  for (unsigned spc = 0; spc < SPANCLASS_COUNT; spc++) {
    unsigned sc = spanclass_sizeclass(spc);
    if (sc == 0) continue;
    uint64_t m = atomic_load_relaxed(&mcentrals[spc].counts.mallocs) + local[spc];
    uint64_t pending = unused[spc] + in_word[spc];
    a->mallocs[sc] += m > pending ? m - pending : 0; /* below only in a race */
    a->frees[sc] += atomic_load_relaxed(&mcentrals[spc].counts.frees) + local[spc] + held[spc];
  }
  lock_release(&threads_lock);
  struct sweep_counts sc;
  sweep_read_counts(&sc);
  a->large_mallocs = atomic_load_relaxed(&large_mallocs);
  a->large_bytes = atomic_load_relaxed(&large_bytes_allocated);
  a->large_frees = atomic_load_relaxed(&large_frees) + sc.large_freed;
  a->large_free_bytes = a->large_bytes > h->large_in_use ? a->large_bytes - h->large_in_use : 0;
  a->alloc_objects = a->large_mallocs;
  a->alloc_bytes = a->large_bytes;
  a->free_objects = a->large_frees;
  a->free_bytes = a->large_free_bytes;
  for (unsigned c = 1; c < SIZECLASS_COUNT; c++) {
    a->alloc_objects += a->mallocs[c];
    a->alloc_bytes += a->mallocs[c] * sizeclass_size[c];
    a->free_objects += a->frees[c];
    a->free_bytes += a->frees[c] * sizeclass_size[c];
  }
}

static uint64_t minus(uint64_t a, uint64_t b) { return a > b ? a - b : 0; }

void stats_record_pause(uint64_t ns) {
  lock_mutex(&stats_lock);
  cur.pause_ns[cur.pauses % GC_PAUSE_HISTORY] = ns;
  cur.pauses++;
  cur.last_pause_ns = ns;
  cur.total_pause_ns += ns;
  if (ns > cur.max_pause_ns) cur.max_pause_ns = ns;
  pthread_mutex_unlock(&stats_lock);
}

void stats_record_cycle(const struct cycle_record *c) {
  if (config.trace >= 2) {
    extra.prev = extra.now;
    read_alloc(&extra.now, &extra.heap);
  }
  lock_mutex(&stats_lock);
  cur.cycles++;
  if (c->forced) cur.forced_cycles++;
  cur.last_gc_ns = c->end_ns - start_ns;
  cur.heap_marked = c->heap_marked;
  cur.heap_goal = c->heap_goal;
  cur.heap_goal_cache_slack = c->cache_slack_at_mark_end;
  cur.gc_cpu_ns += c->cpu_ns;
  cur.assist_cpu_ns += c->assist_ns;
  cur.assists += c->assists;
  cur.assist_wall_ns += c->assist_wall_ns;
  if (c->assist_max_ns > cur.assist_max_ns) cur.assist_max_ns = c->assist_max_ns;
  cur.cycle_assist_max_ns[(cur.cycles - 1) % GC_PAUSE_HISTORY] = c->assist_max_ns;
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
static double ms(uint64_t ns) { return (double)ns / 1e6; }

/* The MGC_TRACE=2 line (see docs/trace.md). */
static void trace_detail(const struct cycle_record *c, uint64_t cycle) {
  const struct alloc_snapshot *now = &extra.now, *prev = &extra.prev;
  const struct mheap_stats *h = &extra.heap;
  char line[720];
  snprintf(line, sizeof(line),
           "gc %llu detail: stops %.3f+%.3f ms, %u termination stops, longest stop wait %.3f ms; "
           "clock %.3f+%.3f+%.3f ms; cpu %.3f ms, assist %.3f ms; %llu assists held threads %.3f ms, "
           "longest %.3f ms; heap %.1f MB at mark start, "
           "%lu ephemerons cleared; since gc %llu: %llu objects (%.1f MB) allocated, "
           "%llu objects (%.1f MB) freed, %llu objects (%.1f MB) in use; "
           "pages %.1f MB in use, %.1f MB idle, %.1f MB released, %zu spans\n",
           (unsigned long long)cycle, ms(c->pause_setup_ns), ms(c->pause_term_ns),
           c->termination_attempts, ms(c->max_stop_latency_ns), ms(minus(c->mark_start_ns, c->start_ns)),
           ms(minus(c->mark_end_ns, c->mark_start_ns)), ms(minus(c->end_ns, c->mark_end_ns)), ms(c->cpu_ns),
           ms(c->assist_ns), (unsigned long long)c->assists, ms(c->assist_wall_ns), ms(c->assist_max_ns),
           mb(c->heap_at_mark_start), (unsigned long)c->ephemerons_cleared,
           (unsigned long long)(cycle - 1), (unsigned long long)minus(now->alloc_objects, prev->alloc_objects),
           mb(minus(now->alloc_bytes, prev->alloc_bytes)),
           (unsigned long long)minus(now->free_objects, prev->free_objects),
           mb(minus(now->free_bytes, prev->free_bytes)),
           (unsigned long long)minus(now->alloc_objects, now->free_objects),
           mb(minus(now->alloc_bytes, now->free_bytes)), mb(h->in_use), mb(minus(h->sys, h->in_use)),
           mb(h->released), h->spans_in_use);
  mgc_write_stderr(line);
}

void stats_trace_cycle(const struct cycle_record *c, uint64_t cycle) {
  lock_mutex(&stats_lock);
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
           cpu ? 100.0 * (double)gc_cpu / (double)cpu : 0.0, ms(c->pause_setup_ns), ms(concurrent_ns),
           ms(c->pause_term_ns), mb(c->heap_before), mb(c->heap_at_mark_end), mb(c->heap_marked),
           c->heap_goal == UINTPTR_MAX ? INFINITY : mb(c->heap_goal), c->workers, c->forced ? " (forced)" : "", pacer_limit_bound() ? " (limit)" : "",
           c->concurrent ? "" : " (stw)", verify);
  mgc_write_stderr(line);
  if (config.trace >= 2) trace_detail(c, cycle);
}

GC_API int gc_get_stats(struct gc_stats *out) {
  if (!out || out->size < offsetof(struct gc_stats, cycles)) return EINVAL;
  init_once();
  /* The caller's own frees count at once, held back or not. */
  struct mcache *own = thread_mcache();
  if (own) mcache_flush_held(own);
  struct gc_stats s;
  lock_mutex(&stats_lock);
  s = cur;
  pthread_mutex_unlock(&stats_lock);
  struct mheap_stats h;
  struct alloc_snapshot a;
  read_alloc(&a, &h);
  s.heap_live = atomic_load_relaxed(&heap_live);
  s.heap_in_use = h.in_use;
  s.heap_sys = h.sys;
  s.heap_released = h.released;
  s.metadata_sys = h.metadata;
  s.memory_limit = pacer_memlimit(); /* gc_set_memory_limit's too */
  s.total_alloc_bytes = a.alloc_bytes;
  s.total_alloc_objects = a.alloc_objects;
  s.total_free_objects = a.free_objects;
  pause_percentiles(&s, &s.pause_p50_ns, &s.pause_p99_ns);
  s.total_free_bytes = a.free_bytes;
  s.heap_alloc = minus(a.alloc_bytes, a.free_bytes);
  s.heap_objects = minus(a.alloc_objects, a.free_objects);
  s.heap_idle = minus(h.sys, h.in_use);
  s.heap_spans = h.spans_in_use;
  s.large_alloc_objects = a.large_mallocs;
  s.large_alloc_bytes = a.large_bytes;
  s.large_free_objects = a.large_frees;
  s.large_free_bytes = a.large_free_bytes;
  s.uptime_ns = os_nanotime() - start_ns;
  s.process_cpu_ns = os_process_cpu_ns() - start_cpu_ns;
  s.gc_cpu_fraction = s.process_cpu_ns ? (double)s.gc_cpu_ns / (double)s.process_cpu_ns : 0.0;
  /* A caller built with a smaller GC_SIZE_CLASSES gets the entries its
   * struct has room for, and size_classes says so. */
  size_t room = out->size > offsetof(struct gc_stats, by_size)
                  ? (out->size - offsetof(struct gc_stats, by_size)) / sizeof(s.by_size[0])
                  : 0;
  s.size_classes = room < SIZECLASS_COUNT - 1 ? room : SIZECLASS_COUNT - 1;
  for (unsigned c = 1; c < SIZECLASS_COUNT; c++) {
    s.by_size[c - 1].size = sizeclass_size[c];
    s.by_size[c - 1].alloc_objects = a.mallocs[c];
    s.by_size[c - 1].free_objects = a.frees[c];
  }
  for (unsigned i = SIZECLASS_COUNT - 1; i < GC_SIZE_CLASSES; i++) s.by_size[i] = (struct gc_size_class_stats){0};
  size_t n = out->size < sizeof(s) ? out->size : sizeof(s);
  s.size = n;
  memcpy(out, &s, n);
  return 0;
}
