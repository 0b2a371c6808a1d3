/*
 * gc_bench_heap.h: the heap under test for the garbage-collection benchmarks
 * (binarytrees.c, gcbench.c), chosen by one preprocessor switch:
 *
 *   -DBENCH_MGC    gc_alloc / gc_alloc_atomic, never freed   link libmgc
 *   -DBENCH_BDWGC  GC_MALLOC / GC_MALLOC_ATOMIC, never freed link -lgc
 *   -DBENCH_GLIBC  malloc, and every object freed explicitly link nothing
 *
 * The benchmarks call only the bh_* names below, so the three variants run
 * the same code apart from the allocator and (glibc only) the free walks,
 * which the benchmarks guard with BH_MANUAL_FREE.
 *
 * bh_thread_create starts a thread the collector knows about:
 * gc_pthread_create for mgc, GC_pthread_create for bdwgc (GC_THREADS is
 * defined before gc.h, so its pthread_join wrapper is used too).
 *
 * bh_report() writes one line to stderr, read by run_gc_bench:
 *
 *   bench-gc: collections <n> max_pause_ms <x> heap_mb <y>
 *
 * for mgc from gc_get_stats (heap_mb is heap_sys), for bdwgc from
 * GC_get_gc_no, GC_get_heap_size and the collection-event callback (the
 * pause is GC_EVENT_START to GC_EVENT_END, i.e. one whole stop-the-world
 * collection; sweeping is lazy and not in it) plus "mark_helpers <k>",
 * GC_get_parallel() (0 until the first thread creation starts the helper
 * markers), and "-" for glibc.
 *
 * Heap stores: the benchmarks store heap pointers with BH_STORE, which for
 * mgc is GC_WRITE, the SATB write barrier that mgc.h requires for every
 * such store while the concurrent collector may run (the default), so the
 * mgc numbers include what a correct program pays (as Go's include its
 * compiler-inserted barrier; bdwgc needs none).  Every store in these
 * benchmarks overwrites a NULL, which a deletion barrier has nothing to
 * record for, so -DBENCH_NO_GC_WRITE (the mgc_nowb build) makes them plain
 * stores to measure the barrier's cost without making the program wrong.
 * For bdwgc and glibc BH_STORE is always a plain store.
 */
#ifndef GC_BENCH_HEAP_H
#define GC_BENCH_HEAP_H

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#if defined(BENCH_MGC) + defined(BENCH_BDWGC) + defined(BENCH_GLIBC) != 1
#error "define exactly one of BENCH_MGC, BENCH_BDWGC, BENCH_GLIBC"
#endif

static void bh_oom(const char *who) {
  fprintf(stderr, "%s: out of memory\n", who);
  abort();
}

#if defined(BENCH_MGC)

#include <mgc.h>
#define BH_MANUAL_FREE 0
static inline void bh_init(void) { gc_init(); }
static inline void *bh_alloc(size_t n) {
  void *p = gc_alloc(n);
  if (__builtin_expect(!p, 0)) bh_oom("gc_alloc");
  return p;
}
static inline void *bh_alloc_atomic(size_t n) {
  void *p = gc_alloc_atomic(n);
  if (__builtin_expect(!p, 0)) bh_oom("gc_alloc_atomic");
  return p;
}
static inline void bh_free(void *p) { (void)p; }
static inline int bh_thread_create(pthread_t *t, void *(*fn)(void *), void *arg) {
  return gc_pthread_create(t, NULL, fn, arg);
}
#if !defined(BENCH_NO_GC_WRITE)
#define BH_STORE(slot, value) GC_WRITE(slot, value)
#endif
static void bh_report(void) {
  struct gc_stats s = {.size = sizeof s};
  if (gc_get_stats(&s) != 0) return;
  fprintf(stderr, "bench-gc: collections %llu max_pause_ms %.2f heap_mb %.1f\n",
          (unsigned long long)s.cycles, s.max_pause_ns / 1e6, s.heap_sys / 1048576.0);
}

#elif defined(BENCH_BDWGC)

#define GC_THREADS
#include <gc.h>
#define BH_MANUAL_FREE 0

/* Longest collection, from the collector's event callback (called with the
 * allocation lock held, so plain variables suffice). */
static struct timespec bh_gc_start;
static double bh_max_pause_ms;

static void bh_on_gc_event(GC_EventType e) {
  struct timespec now;
  if (e != GC_EVENT_START && e != GC_EVENT_END) return;
  clock_gettime(CLOCK_MONOTONIC, &now);
  if (e == GC_EVENT_START) {
    bh_gc_start = now;
    return;
  }
  double ms = (now.tv_sec - bh_gc_start.tv_sec) * 1e3 +
              (now.tv_nsec - bh_gc_start.tv_nsec) / 1e6;
  if (ms > bh_max_pause_ms) bh_max_pause_ms = ms;
}

/* GC_INIT must be expanded in main's translation unit before any thread is
 * started, hence a macro. */
#define bh_init()                                 \
  do {                                            \
    GC_INIT();                                    \
    GC_set_on_collection_event(bh_on_gc_event);   \
  } while (0)
static inline void *bh_alloc(size_t n) {
  void *p = GC_MALLOC(n);
  if (__builtin_expect(!p, 0)) bh_oom("GC_MALLOC");
  return p;
}
static inline void *bh_alloc_atomic(size_t n) {
  void *p = GC_MALLOC_ATOMIC(n);
  if (__builtin_expect(!p, 0)) bh_oom("GC_MALLOC_ATOMIC");
  return p;
}
static inline void bh_free(void *p) { (void)p; }
static inline int bh_thread_create(pthread_t *t, void *(*fn)(void *), void *arg) {
  return GC_pthread_create(t, NULL, fn, arg);
}
static void bh_report(void) {
  fprintf(stderr, "bench-gc: collections %lu max_pause_ms %.2f heap_mb %.1f mark_helpers %d\n",
          (unsigned long)GC_get_gc_no(), bh_max_pause_ms,
          GC_get_heap_size() / 1048576.0, GC_get_parallel());
}

#else /* BENCH_GLIBC */

#define BH_MANUAL_FREE 1
static inline void bh_init(void) {}
static inline void *bh_alloc(size_t n) {
  void *p = malloc(n);
  if (__builtin_expect(!p, 0)) bh_oom("malloc");
  return p;
}
static inline void *bh_alloc_atomic(size_t n) { return bh_alloc(n); }
static inline void bh_free(void *p) { free(p); }
static inline int bh_thread_create(pthread_t *t, void *(*fn)(void *), void *arg) {
  return pthread_create(t, NULL, fn, arg);
}
static void bh_report(void) {
  fprintf(stderr, "bench-gc: collections - max_pause_ms - heap_mb -\n");
}

#endif

#ifndef BH_STORE
#define BH_STORE(slot, value) (*(slot) = (value))
#endif

#endif /* GC_BENCH_HEAP_H */
