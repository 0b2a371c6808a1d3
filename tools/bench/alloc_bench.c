/*
 * alloc_bench.c: allocation micro-benchmark, mgc against malloc-style heaps.
 *
 * One source, one executable per allocator, chosen by a preprocessor switch:
 *
 *   -DBENCH_MGC       gc_alloc + gc_free      link libmgc (meson: mgc_dep)
 *   -DBENCH_GLIBC     malloc + free           link NO other allocator
 *   -DBENCH_MIMALLOC  mi_malloc + mi_free     link -lmimalloc
 *   -DBENCH_JEMALLOC  malloc + free           link -ljemalloc
 *
 * Debian's libmimalloc.so and libjemalloc.so both export malloc/free, so
 * merely linking one of them replaces glibc's malloc in the whole process.
 * With -DBENCH_CALLOC as well, the glibc and mimalloc variants allocate
 * with calloc(1, n) / mi_calloc(1, n) and are named glibc_calloc and
 * mimalloc_calloc: zeroed memory, as gc_alloc hands out, for reference.
 * With -DBENCH_MGC -DBENCH_ATOMIC the mgc variant allocates with
 * gc_alloc_atomic instead and is named mgc_atomic: memory that is neither
 * zeroed nor scanned, as malloc's, so against mimalloc it shows the
 * allocator apart from gc_alloc's zeroing.  Objects of at most 16 bytes
 * come from the tiny allocator there, and gc_free leaves them to the
 * collector, so its *_16 rows measure allocation plus collection.
 *
 * The glibc binary therefore must link neither, and the mimalloc binary calls
 * mi_malloc/mi_free by name.  At start-up each malloc-based variant looks up
 * which shared object really provides malloc and refuses to run when it is
 * not the expected one, so a mislabelled number cannot be printed.
 *
 * Workloads (one "op" is one allocation plus one free):
 *
 *   ring_<size>   a window of RING_LEN live objects; each op allocates one,
 *                 writes its first and last byte, frees the oldest and puts
 *                 the new one in its slot.
 *   batch_<size>  allocate BATCH_LEN objects (touching each), then free them
 *                 all in allocation order; repeat.
 *   xthread_<size>  frees by another thread: this thread allocates (and
 *                 touches) each object and passes it through a queue of
 *                 XQUEUE_LEN slots to a second thread, which frees it; one
 *                 op is one object through the queue.  Run only when
 *                 named (not by default, nor listed by -l): two threads
 *                 spin, which valgrind serialises, and on a machine of two
 *                 CPUs they want both.
 *
 * <size> is 16, 64, 256, 4096 bytes or "mix": a fixed xorshift sequence of
 * sizes skewed toward small ones (see mix_size()), the same for every
 * allocator.
 *
 * Each workload is calibrated to run about target_ms per measurement, then
 * measured reps times with clock_gettime(CLOCK_MONOTONIC).  Output on stdout,
 * one line per workload, nothing else:
 *
 *   <allocator> <workload> <median_ns_per_op> <min_ns_per_op>
 *
 * Diagnostics (which library provides malloc, debug builds) go to stderr as
 * lines starting with '#'.
 *
 * The live objects are held in static arrays (ring, batch): for mgc these
 * live in the data segment, which the collector scans as a root, so a
 * collection cycle cannot reclaim an object the benchmark will still free.
 * The same arrays also keep the compiler from eliding malloc/free pairs, and
 * every result is finally folded into a volatile sink.
 *
 * With -n ops, each workload instead runs once, exactly ops operations
 * (batch: rounded down to whole rounds), without calibration: for
 * instruction counts under callgrind (tools/bench/callgrind_alloc.sh),
 * where wall time means nothing.
 *
 * Usage: alloc_bench [-r reps] [-t target_ms] [-n ops] [-l] [workload...]
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define BENCH_UNLIKELY(x) __builtin_expect(!!(x), 0)

/* ---- the allocator under test ------------------------------------------ */

#if defined(BENCH_MGC) + defined(BENCH_GLIBC) + defined(BENCH_MIMALLOC) + \
        defined(BENCH_JEMALLOC) != 1
#error "define exactly one of BENCH_{MGC,GLIBC,MIMALLOC,JEMALLOC}"
#endif

#if defined(BENCH_MGC)
#include "mgc.h"
#if defined(BENCH_ATOMIC)
#define BENCH_NAME "mgc_atomic"
static inline void *bench_alloc(size_t n) { return gc_alloc_atomic(n); }
#else
#define BENCH_NAME "mgc"
static inline void *bench_alloc(size_t n) { return gc_alloc(n); }
#endif
static inline void bench_free(void *p) { gc_free(p); }
/* A thread that allocates or frees must be registered with mgc. */
static void bench_thread_enter(void) { gc_thread_register(); }
static void bench_thread_leave(void) { gc_thread_unregister(); }

/* meson passes the library's debug_level so that numbers taken with the
 * internal assertions on are flagged. */
static void bench_setup(void) {
  gc_init();
#if defined(BENCH_MGC_DEBUG_LEVEL) && BENCH_MGC_DEBUG_LEVEL > 0
  fprintf(stderr, "# mgc: built with debug_level=%d (assertions on); "
          "configure with -Ddebug_level=0 for representative numbers\n",
          BENCH_MGC_DEBUG_LEVEL);
#endif
}

#elif defined(BENCH_MIMALLOC)
#include <mimalloc.h>
#if defined(BENCH_CALLOC)
#define BENCH_NAME "mimalloc_calloc"
static inline void *bench_alloc(size_t n) { return mi_calloc(1, n); }
#else
#define BENCH_NAME "mimalloc"
static inline void *bench_alloc(size_t n) { return mi_malloc(n); }
#endif
static inline void bench_free(void *p) { mi_free(p); }
static void bench_thread_enter(void) {}
static void bench_thread_leave(void) {}

static void bench_setup(void) {
  int v = mi_version();
  fprintf(stderr, "# mimalloc %d.%d.%d\n", v / 100, v / 10 % 10, v % 10);
}

#else /* BENCH_GLIBC or BENCH_JEMALLOC: plain malloc, told apart by linking */
#include <dlfcn.h>
#if defined(BENCH_GLIBC)
#if defined(BENCH_CALLOC)
#define BENCH_NAME "glibc_calloc"
#else
#define BENCH_NAME "glibc"
#endif
#define BENCH_MALLOC_LIB "libc.so" /* substring of the providing object */
#else
#include <jemalloc/jemalloc.h>
#define BENCH_NAME "jemalloc"
#define BENCH_MALLOC_LIB "libjemalloc"
#endif
#if defined(BENCH_CALLOC)
static inline void *bench_alloc(size_t n) { return calloc(1, n); }
#else
static inline void *bench_alloc(size_t n) { return malloc(n); }
#endif
static inline void bench_free(void *p) { free(p); }
static void bench_thread_enter(void) {}
static void bench_thread_leave(void) {}

/* The definition of malloc that calls bind to is the first one in global
 * lookup order, which is what dlsym(RTLD_DEFAULT) returns. */
static void bench_setup(void) {
  Dl_info info;
  void *sym = dlsym(RTLD_DEFAULT, "malloc");
  const char *lib = sym && dladdr(sym, &info) ? info.dli_fname : "(unknown)";
  fprintf(stderr, "# " BENCH_NAME ": malloc is provided by %s\n", lib);
  if (!strstr(lib, BENCH_MALLOC_LIB)) {
    fprintf(stderr, "alloc_bench: malloc comes from %s, expected %s; "
            "check what this binary links or LD_PRELOADs\n",
            lib, BENCH_MALLOC_LIB);
    exit(2);
  }
#if defined(BENCH_JEMALLOC)
  const char *version = "?";
  size_t len = sizeof version;
  mallctl("version", &version, &len, NULL, 0);
  fprintf(stderr, "# jemalloc %s\n", version);
#endif
}
#endif

/* ---- workloads ---------------------------------------------------------- */

/* Live objects in the ring pattern: enough that the allocator cannot simply
 * hand back the object just freed, few enough to stay mostly in cache. */
#define RING_LEN 1000
/* Slots of the queue between the two threads of xthread_*: a few spans'
 * worth of small objects in flight. */
#define XQUEUE_LEN 1024

/* Objects allocated before the batch pattern frees them all. */
#define BATCH_LEN 10000

/* Sizes are read from a table indexed by op number modulo its length, so
 * the size sequence costs one load and is identical for every allocator. */
#define SIZE_TABLE_LEN 4096 /* power of two */
#define SIZE_TABLE_MASK (SIZE_TABLE_LEN - 1)

/* The size mix, in percent of allocations per band (sizes uniform within a
 * band): mostly small objects, some medium, a few large ones up to 32 KiB. */
#define MIX_SMALL_PCT 75   /* 8 .. 256 bytes */
#define MIX_MEDIUM_PCT 20  /* 257 .. 2048 bytes */
#define MIX_SMALL_MIN 8
#define MIX_SMALL_MAX 256
#define MIX_MEDIUM_MAX 2048
#define MIX_LARGE_MAX (32 * 1024) /* the remaining 5% */
#define MIX_SEED 0x9e3779b97f4a7c15ull

#define NS_PER_SEC 1000000000.0
#define DEFAULT_REPS 7
#define DEFAULT_TARGET_MS 200
#define MAX_REPS 101

enum pattern { PATTERN_RING, PATTERN_BATCH, PATTERN_XTHREAD };

struct workload {
  const char *name;
  enum pattern pattern;
  size_t size;       /* 0: the size mix */
  bool when_named;   /* run only when named on the command line */
};

static const struct workload workloads[] = {
  {"ring_16", PATTERN_RING, 16, false},       {"ring_64", PATTERN_RING, 64, false},
  {"ring_256", PATTERN_RING, 256, false},     {"ring_4096", PATTERN_RING, 4096, false},
  {"ring_mix", PATTERN_RING, 0, false},       {"batch_16", PATTERN_BATCH, 16, false},
  {"batch_64", PATTERN_BATCH, 64, false},     {"batch_256", PATTERN_BATCH, 256, false},
  {"batch_4096", PATTERN_BATCH, 4096, false}, {"batch_mix", PATTERN_BATCH, 0, false},
  {"xthread_64", PATTERN_XTHREAD, 64, true},  {"xthread_mix", PATTERN_XTHREAD, 0, true},
};
#define WORKLOAD_COUNT (sizeof workloads / sizeof workloads[0])

static void *ring[RING_LEN];
static void *_Atomic xqueue[XQUEUE_LEN]; /* NULL: an empty slot */
static void *batch[BATCH_LEN];
static uint32_t size_table[SIZE_TABLE_LEN];
static volatile uintptr_t bench_sink;

static uint64_t xorshift64(uint64_t *state) {
  uint64_t x = *state;
  x ^= x << 13;
  x ^= x >> 7;
  x ^= x << 17;
  return *state = x;
}

static uint32_t uniform(uint64_t *state, uint32_t lo, uint32_t hi) {
  return lo + (uint32_t)(xorshift64(state) % (hi - lo + 1));
}

static uint32_t mix_size(uint64_t *state) {
  uint32_t band = (uint32_t)(xorshift64(state) % 100);
  if (band < MIX_SMALL_PCT) return uniform(state, MIX_SMALL_MIN, MIX_SMALL_MAX);
  if (band < MIX_SMALL_PCT + MIX_MEDIUM_PCT)
    return uniform(state, MIX_SMALL_MAX + 1, MIX_MEDIUM_MAX);
  return uniform(state, MIX_MEDIUM_MAX + 1, MIX_LARGE_MAX);
}

static void size_table_fill(size_t size) {
  uint64_t state = MIX_SEED;
  for (size_t i = 0; i < SIZE_TABLE_LEN; i++)
    size_table[i] = size ? (uint32_t)size : mix_size(&state);
}

static __attribute__((cold, noinline)) void bench_oom(size_t n) {
  fprintf(stderr, "alloc_bench: allocating %zu bytes failed: %s\n", n,
          strerror(errno));
  exit(1);
}

/* Allocate n bytes and write the first and last byte, so the memory is
 * really touched (a lazily mapped page faults in here, not in the free). */
static inline void *alloc_touched(size_t n) {
  char *p = bench_alloc(n);
  if (BENCH_UNLIKELY(!p)) bench_oom(n);
  p[0] = (char)n;
  p[n - 1] = (char)n;
  return p;
}

static void ring_fill(void) {
  for (size_t i = 0; i < RING_LEN; i++)
    ring[i] = alloc_touched(size_table[i & SIZE_TABLE_MASK]);
}

static void ring_empty(void) {
  for (size_t i = 0; i < RING_LEN; i++) {
    bench_sink += (uintptr_t)ring[i];
    bench_free(ring[i]);
    ring[i] = NULL;
  }
}

/* ops iterations of: allocate, free the oldest, keep the new one. */
static void ring_run(uint64_t ops) {
  size_t slot = 0;
  for (uint64_t i = 0; i < ops; i++) {
    void *p = alloc_touched(size_table[i & SIZE_TABLE_MASK]);
    bench_free(ring[slot]);
    ring[slot] = p;
    if (++slot == RING_LEN) slot = 0;
  }
}

/* ops / BATCH_LEN rounds of: allocate BATCH_LEN, free them all. */
static void batch_run(uint64_t ops) {
  uint64_t k = 0;
  for (uint64_t round = 0; round < ops / BATCH_LEN; round++) {
    for (size_t i = 0; i < BATCH_LEN; i++)
      batch[i] = alloc_touched(size_table[k++ & SIZE_TABLE_MASK]);
    bench_sink += (uintptr_t)batch[BATCH_LEN - 1];
    for (size_t i = 0; i < BATCH_LEN; i++) bench_free(batch[i]);
  }
}

static inline void cpu_pause(void) {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}

/* The second thread of xthread_*: frees the ops objects the first puts in
 * the queue, in queue order. */
static void *xthread_free_main(void *arg) {
  uint64_t ops = *(const uint64_t *)arg;
  bench_thread_enter();
  size_t slot = 0;
  for (uint64_t i = 0; i < ops; i++) {
    void *p;
    while (!(p = atomic_load_explicit(&xqueue[slot], memory_order_acquire))) cpu_pause();
    atomic_store_explicit(&xqueue[slot], NULL, memory_order_relaxed);
    bench_free(p);
    if (++slot == XQUEUE_LEN) slot = 0;
  }
  bench_thread_leave();
  return NULL;
}

/* ops objects allocated here and freed by a second thread.  The objects in
 * flight are in xqueue, a static array: a root for mgc's collector. */
static void xthread_run(uint64_t ops) {
  pthread_t freer;
  int err = pthread_create(&freer, NULL, xthread_free_main, &ops);
  if (err) {
    fprintf(stderr, "alloc_bench: pthread_create: %s\n", strerror(err));
    exit(1);
  }
  size_t slot = 0;
  for (uint64_t i = 0; i < ops; i++) {
    void *p = alloc_touched(size_table[i & SIZE_TABLE_MASK]);
    while (atomic_load_explicit(&xqueue[slot], memory_order_relaxed)) cpu_pause();
    atomic_store_explicit(&xqueue[slot], p, memory_order_release);
    if (++slot == XQUEUE_LEN) slot = 0;
  }
  pthread_join(freer, NULL);
}

static double now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * NS_PER_SEC + (double)ts.tv_nsec;
}

/* Wall time of ops operations of w, in ns; set-up and tear-down of the
 * ring are outside the timed region. */
static double time_ops(const struct workload *w, uint64_t ops) {
  if (w->pattern == PATTERN_RING) ring_fill();
  double start = now_ns();
  if (w->pattern == PATTERN_RING)
    ring_run(ops);
  else if (w->pattern == PATTERN_BATCH)
    batch_run(ops);
  else
    xthread_run(ops); /* includes starting and joining the second thread */
  double elapsed = now_ns() - start;
  if (w->pattern == PATTERN_RING) ring_empty();
  return elapsed;
}

/* Grow the op count until one run takes a tenth of the target, then scale
 * it to the target.  Doubles as the warm-up.  Batch counts stay whole
 * rounds. */
static uint64_t calibrate(const struct workload *w, double target_ns) {
  uint64_t quantum = w->pattern == PATTERN_BATCH ? BATCH_LEN : 1;
  uint64_t ops = quantum > 1024 ? quantum : 1024;
  double elapsed;
  while ((elapsed = time_ops(w, ops)) < target_ns / 10) ops *= 4;
  uint64_t scaled = (uint64_t)((double)ops * target_ns / elapsed);
  scaled = scaled / quantum * quantum;
  return scaled ? scaled : quantum;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

/* fixed_ops: 0, or the -n count (one run, no calibration). */
static void run_workload(const struct workload *w, int reps, double target_ns, uint64_t fixed_ops) {
  double ns_per_op[MAX_REPS];
  size_table_fill(w->size);
  uint64_t ops = fixed_ops ? fixed_ops : calibrate(w, target_ns);
  if (fixed_ops) {
    if (w->pattern == PATTERN_BATCH) ops = ops / BATCH_LEN * BATCH_LEN;
    reps = 1;
  }
  for (int r = 0; r < reps; r++)
    ns_per_op[r] = time_ops(w, ops) / (double)ops;
  qsort(ns_per_op, (size_t)reps, sizeof ns_per_op[0], cmp_double);
  printf("%s %s %.2f %.2f\n", BENCH_NAME, w->name, ns_per_op[reps / 2],
         ns_per_op[0]);
  fflush(stdout);
}

/* ---- command line ------------------------------------------------------- */

static void usage(FILE *out) {
  fprintf(out,
          "usage: alloc_bench [-r reps] [-t target_ms] [-n ops] [-l] [workload...]\n"
          "  -r reps       measurements per workload, median reported "
          "(default %d, max %d)\n"
          "  -t target_ms  duration of one measurement (default %d)\n"
          "  -n ops        run each workload once, exactly ops operations (for callgrind)\n"
          "  -l            list the workloads run by default and exit\n"
          "workloads run only when named: xthread_64 xthread_mix (frees by a second thread)\n"
          "output: <allocator> <workload> <median_ns_per_op> <min_ns_per_op>\n",
          DEFAULT_REPS, MAX_REPS, DEFAULT_TARGET_MS);
}

static long parse_positive(const char *s, const char *what, long max) {
  char *end;
  errno = 0;
  long v = strtol(s, &end, 10);
  if (errno || *end || v < 1 || v > max) {
    fprintf(stderr, "alloc_bench: bad %s '%s', expected 1..%ld\n", what, s,
            max);
    exit(64);
  }
  return v;
}

static const struct workload *workload_find(const char *name) {
  for (size_t i = 0; i < WORKLOAD_COUNT; i++)
    if (!strcmp(workloads[i].name, name)) return &workloads[i];
  fprintf(stderr, "alloc_bench: unknown workload '%s' (see -l)\n", name);
  exit(64);
}

int main(int argc, char **argv) {
  int reps = DEFAULT_REPS, opt;
  long target_ms = DEFAULT_TARGET_MS, fixed_ops = 0;
  while ((opt = getopt(argc, argv, "r:t:n:lh")) != -1) {
    switch (opt) {
    case 'r': reps = (int)parse_positive(optarg, "-r", MAX_REPS); break;
    case 't': target_ms = parse_positive(optarg, "-t", 60000); break;
    case 'n': fixed_ops = parse_positive(optarg, "-n", 1000000000); break;
    case 'l':
      for (size_t i = 0; i < WORKLOAD_COUNT; i++)
        if (!workloads[i].when_named) puts(workloads[i].name);
      return 0;
    case 'h': usage(stdout); return 0;
    default: usage(stderr); return 64;
    }
  }
  for (int i = optind; i < argc; i++) workload_find(argv[i]); /* validate */
  bench_setup();
  double target_ns = (double)target_ms * 1e6;
  if (optind == argc)
    for (size_t i = 0; i < WORKLOAD_COUNT; i++)
      if (!workloads[i].when_named) run_workload(&workloads[i], reps, target_ns, (uint64_t)fixed_ops);
  for (int i = optind; i < argc; i++)
    run_workload(workload_find(argv[i]), reps, target_ns, (uint64_t)fixed_ops);
  return 0;
}
