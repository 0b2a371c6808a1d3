/*
 * test_memlimit.c: the soft memory limit with GOGC off (public API only;
 * suite "stress").
 *
 *   under the limit   ~16 MiB live, 64 MiB limit, 2 GiB of garbage: the
 *                     limit alone triggers collections, and heap_sys -
 *                     heap_released and the RSS stay under
 *                     LIMIT_SLACK_PERCENT of the limit throughout;
 *   over the limit    ~96 MiB live, 64 MiB limit, 512 MiB of garbage: the
 *                     program completes, and the collector's CPU stays
 *                     under MAX_GC_CPU_PERCENT of the process's CPU (the
 *                     limit must not make it collect back to back).
 *
 * The live data is a gc_alloc'd array of LIVE_CHUNK-byte objects hung from
 * a global and checked at the end; garbage is a mix of sizes, some over
 * 32 KiB.  Settings: MGC_LIMIT_GARBAGE_MIB scales the first test's garbage.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "conctest.h"
#include "gctest.h"
#include "mgc.h"

#define LIMIT (64 * CONC_MIB)
#define LIVE_SMALL (16 * CONC_MIB)
#define LIVE_BIG (96 * CONC_MIB)
#define LIVE_CHUNK 4096
#define GARBAGE_SMALL_MIB 2048
#define GARBAGE_BIG_MIB 512
#define LARGE_GARBAGE 40000
#define LARGE_ONE_IN 64
#define SAMPLE_EVERY 4096
#define LIMIT_SLACK_PERCENT 130
#define MAX_GC_CPU_PERCENT 75

static void **volatile live;

static void build_live(size_t bytes) {
  size_t n = bytes / LIVE_CHUNK;
  void **arr = gc_alloc(n * sizeof(void *));
  ck_assert_ptr_nonnull(arr);
  live = arr;
  for (size_t i = 0; i < n; i++) {
    void *p = gc_alloc_atomic(LIVE_CHUNK);
    ck_assert_ptr_nonnull(p);
    pattern_fill(p, LIVE_CHUNK, i);
    GC_WRITE(&arr[i], p);
  }
}

static void check_live(size_t bytes) {
  size_t n = bytes / LIVE_CHUNK;
  for (size_t i = 0; i < n; i++)
    ck_assert_uint_eq(pattern_check(live[i], LIVE_CHUNK, i), LIVE_CHUNK);
}

struct peaks {
  uint64_t held, rss, cycles;
};

static void sample(struct peaks *pk) {
  struct gc_stats s = stats_now();
  uint64_t held = s.heap_sys - s.heap_released;
  uint64_t rss = gctest_rss_bytes();
  if (held > pk->held) pk->held = held;
  if (rss > pk->rss) pk->rss = rss;
  pk->cycles = s.cycles;
}

static void churn(size_t mib, struct peaks *pk) {
  uint64_t rng = 12345, total = 0, goal = (uint64_t)mib * CONC_MIB;
  for (uint64_t i = 0; total < goal; i++) {
    size_t n = conc_below(&rng, LARGE_ONE_IN) == 0 ? LARGE_GARBAGE : 16 + conc_below(&rng, 1024);
    char *p = conc_below(&rng, 2) ? gc_alloc(n) : gc_alloc_atomic(n);
    ck_assert_ptr_nonnull(p);
    p[0] = 1;
    total += n;
    if (i % SAMPLE_EVERY == 0) sample(pk);
  }
  sample(pk);
}

static void start_with_limit(void) {
  static const struct conc_env env[] = {{"MGC_CONCURRENT", "1", 0}, {"MGC_VERIFY", "0", 1}};
  conc_init(env, CONC_LEN(env));
  gc_set_percent(-1);
  gc_set_memory_limit(LIMIT);
}

START_TEST(test_memory_limit_bounds_heap_with_gogc_off) {
  start_with_limit();
  build_live(LIVE_SMALL);
  gc_collect();
  uint64_t cycles0 = cycles_now();
  struct peaks pk = {0};
  size_t mib = conc_env_ulong("MGC_LIMIT_GARBAGE_MIB", GARBAGE_SMALL_MIB);
  double t0 = conc_seconds();
  churn(mib, &pk);
  check_live(LIVE_SMALL);
  fprintf(stderr, "memlimit: %zu MiB garbage, %llu cycles, peak held %.1f MiB, peak RSS %.1f MiB, "
          "%.1f s\n", mib, (unsigned long long)(pk.cycles - cycles0), (double)pk.held / CONC_MIB,
          (double)pk.rss / CONC_MIB, conc_seconds() - t0);
  ck_assert_uint_gt(pk.cycles - cycles0, 1);
  ck_assert_uint_le(pk.held, LIMIT / 100 * LIMIT_SLACK_PERCENT);
#if !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__)
  /* A sanitizer's shadow memory counts in the RSS; the held figure above
   * is what the limit governs. */
  ck_assert_uint_le(pk.rss, LIMIT / 100 * LIMIT_SLACK_PERCENT);
#endif
}
END_TEST

START_TEST(test_live_heap_over_limit_completes_without_collecting_back_to_back) {
  start_with_limit();
  build_live(LIVE_BIG);
  uint64_t cpu0 = conc_process_cpu_ns(), gc0 = stats_now().gc_cpu_ns, cycles0 = cycles_now();
  struct peaks pk = {0};
  double t0 = conc_seconds();
  churn(GARBAGE_BIG_MIB, &pk);
  check_live(LIVE_BIG);
  uint64_t cpu = conc_process_cpu_ns() - cpu0, gc = stats_now().gc_cpu_ns - gc0;
  double share = cpu ? 100.0 * (double)gc / (double)cpu : 0;
  fprintf(stderr, "memlimit over: %llu cycles, collector CPU %.0f%% of %.2f s, peak held %.1f MiB, "
          "%.1f s\n", (unsigned long long)(pk.cycles - cycles0), share, (double)cpu / 1e9,
          (double)pk.held / CONC_MIB, conc_seconds() - t0);
  ck_assert_uint_gt(pk.cycles - cycles0, 0);
  ck_assert_msg(share < MAX_GC_CPU_PERCENT, "collector took %.0f%% of the CPU", share);
}
END_TEST

static Suite *memlimit_suite(void) {
  Suite *s = suite_create("memlimit");
  TCase *tc = tcase_create("limit");
  tcase_set_timeout(tc, 300);
  tcase_add_test(tc, test_memory_limit_bounds_heap_with_gogc_off);
  tcase_add_test(tc, test_live_heap_over_limit_completes_without_collecting_back_to_back);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) { return run_suite_in_children(memlimit_suite()); }
