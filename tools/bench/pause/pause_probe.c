/*
 * pause_probe.c: measure the pauses a garbage collector inflicts on a
 * mutator, as the mutator sees them.
 *
 * The program builds a live heap of LIVE_MIB MiB of 64-byte nodes (56 bytes
 * asked, which every heap here rounds to a 64-byte slot: mgc and Go by size
 * class, bdwgc by adding its one extra byte and rounding to 16), kept in
 * singly linked lists of LIST_LEN nodes whose heads sit in one "spine"
 * array, itself a heap object reachable from a global pointer.  It then runs
 * a mutator loop for SECONDS seconds.  One iteration is tiny:
 *
 *   - GARBAGE_PER_ITER short-lived objects of 64 to 1024 bytes (sizes
 *     cycling through GARBAGE_SIZES; about 4 KiB per iteration, so that
 *     even a 1 GiB live heap sees a collection every few seconds), linked
 *     into a chain and dropped;
 *   - REPLACE_PER_ITER nodes of the live lists replaced by fresh copies
 *     (a random list, a random position): the predecessor's `next` (or the
 *     spine slot) is overwritten, a pointer store into an existing heap
 *     object, so the live size stays constant while collections keep
 *     coming.
 *
 * All pointer stores into heap objects go through STORE, which is GC_WRITE
 * for mgc (needed while it marks concurrently).  The time between the ends
 * of consecutive iterations (CLOCK_MONOTONIC) goes into a log-linear
 * histogram (HIST_SUB_BITS: 32 buckets per power of two, about 3 %
 * resolution); the maximum is exact.  A normal gap is the cost of one
 * iteration (about a microsecond); a collector pause, a mark assist, a
 * sweep of a big span or the OS descheduling the thread shows up as a long
 * gap.
 *
 * One source, one binary per heap, chosen at compile time:
 *   -DPAUSE_MGC     gc_alloc + GC_WRITE; MGC_CONCURRENT=0 in the environment
 *                   gives the stop-the-world variant (label mgc-stw)
 *   -DPAUSE_BDWGC   GC_MALLOC after GC_INIT; --incremental calls
 *                   GC_enable_incremental() (label bdwgc-incremental)
 *   -DPAUSE_MALLOC  malloc/free, no collector: the noise floor of the
 *                   machine (scheduling, page faults) for this loop
 *
 * --busy-sibling runs, beside the mutator, a thread that keeps a CPU busy
 * at nice 10 and yields it every 100 µs, as a collector's background
 * marker does.  With malloc it is the floor for a program whose other CPU
 * is taken (label malloc-busy): on a 2-CPU machine the kernel's own
 * threads (kworker, kdamond) must then preempt either the mutator or the
 * sibling, where a lone mutator leaves them the idle CPU.
 *
 * --spin (meant for the malloc binary, label spin) replaces each iteration
 * with about a microsecond of arithmetic that touches no memory: the
 * floor of any loop on this machine, allocator or not.
 *
 * usage: pause_probe_<heap> [LIVE_MIB [SECONDS]] [--incremental] [--busy-sibling] [--spin]
 *
 * Output: one "key value" per line on stdout (run_pause_probe parses it):
 * gap percentiles in microseconds, iterations, collections during the loop,
 * peak RSS (getrusage, whole run including the build of the live heap) and
 * what the collector says about its own pauses during the loop ("self_*";
 * for bdwgc the time from stopping to restarting the world, measured with
 * GC_set_on_collection_event).  go/pause_probe.go is the Go counterpart and
 * prints the same keys.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <sched.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

/* ---- the heap under test -------------------------------------------------- */

#if defined(PAUSE_MGC)
#include <mgc.h>
#define HEAP_NAME "mgc"
#define heap_alloc(n) gc_alloc(n)
#define heap_alloc_big(n) gc_alloc(n)
#define heap_release(p) ((void)(p))
#define STORE(slot, value) GC_WRITE(slot, value)

#elif defined(PAUSE_BDWGC)
/* The Debian library is built with threads; GC_THREADS declares its thread
 * API (GC_get_parallel) and routes pthread_create through it. */
#define GC_THREADS
#include <gc/gc.h>
#define HEAP_NAME "bdwgc"
#define heap_alloc(n) GC_MALLOC(n)
/* The spine is only ever reached through its base pointer. */
#define heap_alloc_big(n) GC_MALLOC_IGNORE_OFF_PAGE(n)
#define heap_release(p) ((void)(p))
/* Set when incremental mode uses manual dirty bits (no mprotect): then the
 * collector must be told about every pointer store.  With mprotect or
 * soft-dirty bits plain stores are tracked by the OS. */
static int bdw_manual_vdb;
#define STORE(slot, value)                                      \
  do {                                                          \
    if (__builtin_expect(bdw_manual_vdb, 0))                    \
      GC_PTR_STORE_AND_DIRTY((void *)(slot), (value));          \
    else                                                        \
      *(slot) = (value);                                        \
  } while (0)

#elif defined(PAUSE_MALLOC)
#define HEAP_NAME "malloc"
#define heap_alloc(n) calloc(1, n)
#define heap_alloc_big(n) calloc(1, n)
#define heap_release(p) free(p)
#define STORE(slot, value) (*(slot) = (value))

#else
#error "define one of PAUSE_MGC, PAUSE_BDWGC, PAUSE_MALLOC"
#endif

/* ---- workload shape -------------------------------------------------------- */

/* 7 words: asks 56 bytes so that bdwgc's extra byte still fits a 64-byte
 * slot; mgc and Go round 56 up to their 64-byte class. */
struct node {
  struct node *next;
  uint64_t payload[6];
};

#define NODE_SLOT_BYTES 64     /* what a node occupies in every heap */
#define LIST_LEN 16            /* nodes per list: a replacement walks at most 15 */
#define GARBAGE_PER_ITER 12    /* short-lived objects per iteration */
/* Garbage object g is GARBAGE_MIN_BYTES << (g % GARBAGE_SIZES) bytes
 * (64..1024): several size classes, 4160 bytes per iteration in all. */
#define GARBAGE_MIN_BYTES 64
#define GARBAGE_SIZES 5
#define REPLACE_PER_ITER 4     /* live nodes replaced per iteration */

/* The live structure: spine[i] heads list i.  The global pointer is the
 * only root; the spine itself is a heap object. */
static struct node **spine;
static size_t nlists;

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

/* xorshift64*: cheap, good enough to spread replacements over the heap. */
static inline uint64_t rng_next(void) {
  uint64_t x = rng_state;
  x ^= x >> 12;
  x ^= x << 25;
  x ^= x >> 27;
  rng_state = x;
  return x * 0x2545f4914f6cdd1dull;
}

static struct node *node_new(size_t bytes, uint64_t tag) {
  struct node *n = heap_alloc(bytes);
  if (n == NULL) {
    fprintf(stderr, "pause_probe: out of memory\n");
    exit(1);
  }
  n->payload[0] = tag;
  return n;
}

static void live_build(size_t live_mib) {
  size_t nodes = live_mib * (size_t)1024 * 1024 / NODE_SLOT_BYTES;
  nlists = nodes / LIST_LEN;
  spine = heap_alloc_big(nlists * sizeof *spine);
  if (spine == NULL) {
    fprintf(stderr, "pause_probe: out of memory for the spine\n");
    exit(1);
  }
  for (size_t i = 0; i < nlists; i++) {
    struct node *head = NULL;
    for (int k = 0; k < LIST_LEN; k++) {
      struct node *n = node_new(sizeof *n, i * LIST_LEN + k);
      STORE(&n->next, head);
      head = n;
    }
    STORE(&spine[i], head);
  }
}

/* Sum of the payloads of the garbage chain: keeps the chain honest (the
 * compiler cannot drop the allocations) without leaking it anywhere. */
static uint64_t sink;

/* One iteration: GARBAGE_PER_ITER + REPLACE_PER_ITER allocations.  A
 * garbage object starts with a struct node; the rest stays zero. */
static __attribute__((noinline)) void mutate_once(void) {
  struct node *chain = NULL;
  for (int g = 0; g < GARBAGE_PER_ITER; g++) {
    struct node *n = node_new((size_t)GARBAGE_MIN_BYTES << (g % GARBAGE_SIZES), g);
    STORE(&n->next, chain);
    chain = n;
  }
  uint64_t sum = 0;
  while (chain != NULL) {
    struct node *next = chain->next;
    sum += chain->payload[0];
    heap_release(chain);
    chain = next;
  }
  sink += sum;

  for (int r = 0; r < REPLACE_PER_ITER; r++) {
    uint64_t x = rng_next();
    struct node **slot = &spine[x % nlists];
    for (unsigned k = (unsigned)(x >> 40) % LIST_LEN; k > 0; k--)
      slot = &(*slot)->next;
    struct node *old = *slot;
    struct node *n = node_new(sizeof *n, old->payload[0]);
    memcpy(&n->payload[1], &old->payload[1], sizeof n->payload - sizeof n->payload[0]);
    STORE(&n->next, old->next);
    STORE(slot, n);      /* into the spine or an existing live node */
    heap_release(old);
  }
}

/* ---- gap histogram --------------------------------------------------------- */

/* Values below 2^HIST_SUB_BITS+1 ns have a bucket each; above, every power
 * of two is split into 2^HIST_SUB_BITS buckets.  2^40 ns (18 minutes) is
 * more than any gap can be. */
#define HIST_SUB_BITS 5
#define HIST_SUB (1u << HIST_SUB_BITS)
#define HIST_MAX_EXP 40
#define HIST_BUCKETS (2 * HIST_SUB + (HIST_MAX_EXP - HIST_SUB_BITS) * HIST_SUB)

static uint64_t hist[HIST_BUCKETS];

static unsigned hist_bucket(uint64_t v) {
  if (v < 2 * HIST_SUB)
    return (unsigned)v;
  unsigned e = 63 - (unsigned)__builtin_clzll(v);     /* >= HIST_SUB_BITS + 1 */
  if (e >= HIST_MAX_EXP)
    return HIST_BUCKETS - 1;
  unsigned shift = e - HIST_SUB_BITS;
  return 2 * HIST_SUB + (shift - 1) * HIST_SUB + (unsigned)((v >> shift) - HIST_SUB);
}

/* Largest value that falls into bucket b. */
static uint64_t hist_bucket_top(unsigned b) {
  if (b < 2 * HIST_SUB)
    return b;
  unsigned shift = (b - 2 * HIST_SUB) / HIST_SUB + 1;
  uint64_t mant = HIST_SUB + (b - 2 * HIST_SUB) % HIST_SUB;
  return ((mant + 1) << shift) - 1;
}

/* The smallest bucket top t with at least q of the n gaps <= t. */
static uint64_t hist_quantile(uint64_t n, double q, uint64_t max) {
  uint64_t rank = (uint64_t)(q * (double)n);
  if (rank >= n)
    rank = n - 1;
  uint64_t seen = 0;
  for (unsigned b = 0; b < HIST_BUCKETS; b++) {
    seen += hist[b];
    if (seen > rank)
      return hist_bucket_top(b) < max ? hist_bucket_top(b) : max;
  }
  return max;
}

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* ---- what the collector says about itself --------------------------------- */

static const char *variant = HEAP_NAME;

#if defined(PAUSE_MGC)
static struct gc_stats stats0;

static void heap_setup(int incremental) {
  (void)incremental;
  gc_init();
  const char *c = getenv("MGC_CONCURRENT");
  if (c != NULL && strcmp(c, "0") == 0)
    variant = "mgc-stw";
}

static void heap_loop_start(void) {
  stats0.size = sizeof stats0;
  gc_get_stats(&stats0);
}

/* The largest of entries [from, to) of a gc_stats ring (entry k at
 * k % GC_PAUSE_HISTORY), of those it still holds: the last
 * GC_PAUSE_HISTORY. */
static uint64_t ring_max(const uint64_t ring[GC_PAUSE_HISTORY], uint64_t from, uint64_t to) {
  if (to - from > GC_PAUSE_HISTORY)
    from = to - GC_PAUSE_HISTORY;
  uint64_t max = 0;
  for (uint64_t k = from; k < to; k++)
    if (ring[k % GC_PAUSE_HISTORY] > max)
      max = ring[k % GC_PAUSE_HISTORY];
  return max;
}

static void heap_report(void) {
  struct gc_stats s = {.size = sizeof s};
  gc_get_stats(&s);
  uint64_t stops = s.pauses - stats0.pauses;
  uint64_t max = ring_max(s.pause_ns, stats0.pauses, s.pauses);
  printf("collections %llu\n", (unsigned long long)(s.cycles - stats0.cycles));
  printf("self_stops %llu\n", (unsigned long long)stops);
  printf("self_max_pause_us %.1f\n", max / 1e3);
  printf("self_total_pause_ms %.2f\n", (s.total_pause_ns - stats0.total_pause_ns) / 1e6);
  printf("self_run_max_pause_us %.1f\n", s.max_pause_ns / 1e3);
  printf("self_p50_pause_us %.1f\n", s.pause_p50_ns / 1e3);
  printf("self_p99_pause_us %.1f\n", s.pause_p99_ns / 1e3);
  printf("self_gc_cpu_ms %.1f\n", (s.gc_cpu_ns - stats0.gc_cpu_ns) / 1e6);
  printf("self_assist_cpu_ms %.1f\n", (s.assist_cpu_ns - stats0.assist_cpu_ns) / 1e6);
  /* Mark assists hold the mutator too: the longest one in the cycles of
   * the loop (cycle k, counting from 1, is entry k - 1). */
  uint64_t assist_max = ring_max(s.cycle_assist_max_ns, stats0.cycles, s.cycles);
  printf("self_assists %llu\n", (unsigned long long)(s.assists - stats0.assists));
  printf("self_assist_wall_ms %.2f\n", (s.assist_wall_ns - stats0.assist_wall_ns) / 1e6);
  printf("self_max_assist_us %.1f\n", assist_max / 1e3);
  printf("heap_marked_mib %.1f\n", s.heap_marked / 1048576.0);
  printf("heap_sys_mib %.1f\n", s.heap_sys / 1048576.0);
  printf("heap_released_mib %.1f\n", s.heap_released / 1048576.0);
}

#elif defined(PAUSE_BDWGC)
static uint64_t gc_no0;
static uint64_t stw_start_ns, stw_count, stw_total_ns, stw_max_ns;
static int loop_running;

/* Called with the allocation lock held: only timestamps, no allocation. */
static void GC_CALLBACK bdw_event(GC_EventType e) {
  if (e == GC_EVENT_PRE_STOP_WORLD) {
    stw_start_ns = now_ns();
  } else if (e == GC_EVENT_POST_START_WORLD && stw_start_ns != 0 && loop_running) {
    uint64_t d = now_ns() - stw_start_ns;
    stw_count++;
    stw_total_ns += d;
    if (d > stw_max_ns)
      stw_max_ns = d;
  }
}

static void heap_setup(int incremental) {
  GC_INIT();
  if (incremental) {
    GC_enable_incremental();
    variant = "bdwgc-incremental";
    if (!GC_is_incremental_mode()) {
      fprintf(stderr, "pause_probe: GC_enable_incremental did not turn incremental mode on\n");
      exit(1);
    }
    bdw_manual_vdb = GC_incremental_protection_needs() == GC_PROTECTS_NONE &&
                     GC_get_manual_vdb_allowed();
    printf("bdwgc_protection_needs %d\n", GC_incremental_protection_needs());
    printf("bdwgc_manual_vdb %d\n", bdw_manual_vdb);
  }
  GC_set_on_collection_event(bdw_event);
}

static void heap_loop_start(void) {
  gc_no0 = GC_get_gc_no();
  loop_running = 1;
}

static void heap_report(void) {
  loop_running = 0;
  printf("collections %llu\n", (unsigned long long)(GC_get_gc_no() - gc_no0));
  printf("self_stops %llu\n", (unsigned long long)stw_count);
  printf("self_max_pause_us %.1f\n", stw_max_ns / 1e3);
  printf("self_total_pause_ms %.2f\n", stw_total_ns / 1e6);
  printf("bdwgc_parallel %d\n", GC_get_parallel());
  printf("heap_sys_mib %.1f\n", GC_get_heap_size() / 1048576.0);
}

#else
static void heap_setup(int incremental) { (void)incremental; }
static void heap_loop_start(void) {}
static void heap_report(void) { printf("collections 0\n"); }
#endif

/* ---- busy sibling ----------------------------------------------------------- */

#define SIBLING_NICE 10
#define SIBLING_YIELD_NS 100000

static volatile int sibling_stop;

static void *busy_sibling(void *arg) {
  (void)arg;
  setpriority(PRIO_PROCESS, 0, SIBLING_NICE); /* on Linux, this thread only */
  uint64_t spins = 0;
  while (!sibling_stop) {
    uint64_t until = now_ns() + SIBLING_YIELD_NS;
    while (now_ns() < until)
      spins++;
    sched_yield();
  }
  return (void *)(uintptr_t)spins;
}

/* ---- spin ------------------------------------------------------------------- */

#define SPIN_STEPS 750

static volatile uint64_t spin_sink;

/* About a microsecond of dependent arithmetic, no loads or stores but
 * the last. */
static void spin_once(void) {
  uint64_t x = spin_sink | 1;
  for (int i = 0; i < SPIN_STEPS; i++)
    x = x * 6364136223846793005u + 1442695040888963407u;
  spin_sink = x;
}

/* ---- main ------------------------------------------------------------------- */

static long parse_arg(const char *s, const char *what, long lo, long hi) {
  char *end;
  errno = 0;
  long v = strtol(s, &end, 10);
  if (errno != 0 || *end != '\0' || v < lo || v > hi) {
    fprintf(stderr, "pause_probe: bad %s \"%s\", expected an integer from %ld to %ld\n",
            what, s, lo, hi);
    exit(2);
  }
  return v;
}

int main(int argc, char **argv) {
  long live_mib = 256, seconds = 10;
  int incremental = 0, busy = 0, spin = 0, npos = 0;
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--incremental") == 0)
      incremental = 1;
    else if (strcmp(argv[i], "--busy-sibling") == 0)
      busy = 1;
    else if (strcmp(argv[i], "--spin") == 0)
      spin = 1;
    else if (npos == 0 && argv[i][0] != '-')
      live_mib = parse_arg(argv[npos++, i], "live size (MiB)", 1, 1 << 20);
    else if (npos == 1 && argv[i][0] != '-')
      seconds = parse_arg(argv[npos++, i], "duration (s)", 1, 86400);
    else {
      fprintf(stderr, "usage: %s [LIVE_MIB [SECONDS]] [--incremental] [--busy-sibling] [--spin]\n", argv[0]);
      return 2;
    }
  }

  heap_setup(incremental);
  uint64_t t0 = now_ns();
  live_build((size_t)live_mib);
  uint64_t t1 = now_ns();

  pthread_t sibling;
  if (busy) {
    if (pthread_create(&sibling, NULL, busy_sibling, NULL) != 0) {
      fprintf(stderr, "pause_probe: cannot start the busy sibling thread\n");
      return 1;
    }
    variant = strcmp(variant, "malloc") == 0 ? "malloc-busy" : variant;
  }
  if (spin)
    variant = busy ? "spin-busy" : "spin";
  heap_loop_start();
  uint64_t start = now_ns(), prev = start;
  uint64_t end = start + (uint64_t)seconds * 1000000000u;
  uint64_t iters = 0, max_gap = 0, over_1ms = 0, over_10ms = 0, sum_over_1ms = 0;
  /* PAUSE_PROBE_LOG_US=N: print every gap of N µs or more to stderr with
   * its CLOCK_MONOTONIC end, to line it up with a profiler's samples
   * (perf record -k mono) or the collector's trace. */
  const char *log_env = getenv("PAUSE_PROBE_LOG_US");
  uint64_t log_ns = log_env ? strtoull(log_env, NULL, 10) * 1000u : UINT64_MAX;
  for (;;) {
    if (spin)
      spin_once();
    else
      mutate_once();
    uint64_t t = now_ns(), gap = t - prev;
    prev = t;
    iters++;
    hist[hist_bucket(gap)]++;
    if (gap > max_gap)
      max_gap = gap;
    if (gap >= log_ns)
      fprintf(stderr, "gap %.1f us ending at %.6f s (monotonic), %.3f s into the loop\n",
              gap / 1e3, t / 1e9, (t - start) / 1e9);
    if (gap >= 1000000) {
      over_1ms++;
      sum_over_1ms += gap;
      if (gap >= 10000000)
        over_10ms++;
    }
    if (t >= end)
      break;
  }
  double loop_s = (prev - start) / 1e9;
  if (busy) {
    sibling_stop = 1;
    pthread_join(sibling, NULL);
  }

  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  printf("variant %s\n", variant);
  printf("live_mib %ld\n", live_mib);
  printf("build_s %.2f\n", (t1 - t0) / 1e9);
  printf("loop_s %.2f\n", loop_s);
  printf("iterations %llu\n", (unsigned long long)iters);
  printf("iters_per_s %.0f\n", iters / loop_s);
  printf("gap_p50_us %.2f\n", hist_quantile(iters, 0.5, max_gap) / 1e3);
  printf("gap_p99_us %.2f\n", hist_quantile(iters, 0.99, max_gap) / 1e3);
  printf("gap_p999_us %.2f\n", hist_quantile(iters, 0.999, max_gap) / 1e3);
  printf("gap_p9999_us %.2f\n", hist_quantile(iters, 0.9999, max_gap) / 1e3);
  printf("gap_max_us %.1f\n", max_gap / 1e3);
  printf("gaps_over_1ms %llu\n", (unsigned long long)over_1ms);
  printf("gaps_over_10ms %llu\n", (unsigned long long)over_10ms);
  printf("time_in_gaps_over_1ms_ms %.1f\n", sum_over_1ms / 1e6);
  printf("peak_rss_mib %.1f\n", ru.ru_maxrss / 1024.0);
  printf("cpu_s %.2f\n", ru.ru_utime.tv_sec + ru.ru_stime.tv_sec +
                             (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6);
  printf("ctx_involuntary %ld\n", ru.ru_nivcsw);
  printf("ctx_voluntary %ld\n", ru.ru_nvcsw);
  heap_report();
  fprintf(stderr, "pause_probe: sink %llu\n", (unsigned long long)sink);
  return 0;
}
