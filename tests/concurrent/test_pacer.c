/*
 * test_pacer.c: while one worker marks concurrently, the heap stays near
 * its goal (public API only; suite "unit").
 *
 * A live binary tree of 32 MiB gives every mark real work;
 * the program then builds and drops small trees as fast as it can for
 * CYCLES collections.  Mark assists must hold the heap near the goal: a
 * thread that allocates while the collector marks scans grey work in
 * proportion.  With a single mark worker (MGC_MARK_WORKERS=1) that worker
 * holds the grey work in its own buffers unless it shares it; when it did
 * not, every assist found the pool empty, was forgiven, and the heap at
 * the end of each mark was about twice the goal.
 *
 * Read from the MGC_TRACE=1 lines: Y (heap at mark end) and G (the goal
 * the cycle marked against, i.e. the previous line's goal), for the cycles
 * after the first few (the goal settles once the live set is built).  The
 * median of Y / G must stay under MAX_MEDIAN_OVERSHOOT.
 *
 * The same run checks where marks start: X (heap at mark start) as a
 * fraction of the way from the previous mark's live heap Z to G.  This
 * program allocates faster than one worker marks, so the runway the pacer
 * learns is longer than the whole way and the trigger sits at its lower
 * bound (gc/pacer.c, TRIGGER_MIN_FRACTION, 0.95).  At Go's 0.70 the
 * objects allocated black during the longer mark filled the next cycle's
 * room: binary-trees ran 1.2-1.3x the cycles of the stop-the-world mode,
 * and took that much longer; at 0.85, 1.15x the cycles.  The median
 * fraction must reach MIN_MEDIAN_START_FRACTION.  A mark starts a little
 * after its trigger (the collector thread wakes, stops the world): with
 * the bound at 0.85 this test measured 0.91-0.93, at 0.95 at least 1.0.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conctest.h"
#include "gctest.h"
#include "mgc.h"

#define LIVE_DEPTH 18            /* 2^19 - 1 nodes of 64 bytes: 32 MiB */
#define CYCLES 30
#define SKIP_CYCLES 5
#define TREE_DEPTH 10
#define TREES_PER_CHECK 16      /* gc_get_stats is not free */
/* The failure this guards against (assists finding no work, forgiven)
 * put the heap at about twice the goal (a normal build).  A normal build
 * measures 1.08-1.10 here; ThreadSanitizer, under which the allocating
 * threads and the runtime around the marker run 5-20 times slower,
 * 1.18-1.29 with another suite beside it, and once 1.39 on a loaded
 * machine, so it gets a wider bound that still catches the 2x. */
#if defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define PACER_UNDER_TSAN 1
#endif
#endif
#if defined(__SANITIZE_THREAD__) || defined(PACER_UNDER_TSAN)
#define MAX_MEDIAN_OVERSHOOT 1.6
#else
#define MAX_MEDIAN_OVERSHOOT 1.35
#endif
#define MIN_MEDIAN_START_FRACTION 0.94

struct node {
  struct node *left, *right;
  uint64_t payload[6];
};

static struct node *volatile live_head;

/* No ck_assert in the loop: each one is a write() to Check's pipe. */
static struct node *tree(int depth) {
  struct node *x = gc_alloc(sizeof(struct node));
  if (!x) ck_abort_msg("gc_alloc failed");
  if (depth > 0) {
    GC_WRITE(&x->left, tree(depth - 1));
    GC_WRITE(&x->right, tree(depth - 1));
  }
  return x;
}

/* A wide graph: a list would leave the marker one grey object at a time,
 * nothing to share with assists. */
static void build_live_set(void) { live_head = tree(LIVE_DEPTH); }

static int compare_doubles(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

START_TEST(test_heap_stays_near_goal_and_marks_start_late_with_one_mark_worker) {
  static const struct conc_env env[] = {
    {"MGC_CONCURRENT", "1", 1}, {"MGC_MARK_WORKERS", "1", 1}, {"MGC_GOGC", "100", 1},
    {"MGC_TRACE", "1", 1}};
  conc_init(env, CONC_LEN(env));
  build_live_set();
  struct capture_text cap;
  capture_text_begin(&cap);
  uint64_t first = stats_now().cycles;
  while (stats_now().cycles < first + CYCLES) {
    for (int i = 0; i < TREES_PER_CHECK; i++) {
      struct node *volatile t = tree(TREE_DEPTH);
      (void)t;
    }
  }
  char *err = capture_text_end(&cap);
  struct gc_stats st = stats_now();

  double ratios[CYCLES + 8], starts[CYCLES + 8];
  int n = 0, seen = 0;
  double goal = 0, marked = 0;
  for (char *line = strtok(err, "\n"); line; line = strtok(NULL, "\n")) {
    double x, y, z, g;
    const char *at = strstr(line, " ms clock, ");
    if (strncmp(line, "gc ", 3) != 0 || !at) continue;
    if (sscanf(at, " ms clock, %lf->%lf->%lf MB, %lf MB goal", &x, &y, &z, &g) != 4) continue;
    if (++seen > SKIP_CYCLES && goal > marked && n < (int)(sizeof(ratios) / sizeof(ratios[0]))) {
      starts[n] = (x - marked) / (goal - marked);
      ratios[n++] = y / goal;
    }
    goal = g;
    marked = z;
  }
  ck_assert_msg(n >= CYCLES / 2, "only %d usable trace lines in:\n%s", n, err);
  qsort(ratios, (size_t)n, sizeof(double), compare_doubles);
  double median = ratios[n / 2];
  ck_assert_msg(median <= MAX_MEDIAN_OVERSHOOT,
                "heap at mark end is %.2fx the goal (median of %d cycles; at most %.2f expected):\n%s",
                median, n, MAX_MEDIAN_OVERSHOOT, err);
  qsort(starts, (size_t)n, sizeof(double), compare_doubles);
  ck_assert_msg(starts[n / 2] >= MIN_MEDIAN_START_FRACTION,
                "marks start %.2f of the way from the live heap to the goal (median of %d cycles; "
                "at least %.2f expected):\n%s",
                starts[n / 2], n, MIN_MEDIAN_START_FRACTION, err);
  /* The program allocates faster than the worker marks: its thread
   * assists, and gc_stats counts the time it was held there. */
  ck_assert_uint_gt(st.assists, 0);
  ck_assert_uint_gt(st.assist_max_ns, 0);
  ck_assert_uint_le(st.assist_max_ns, st.assist_wall_ns);
  ck_assert_msg(st.assist_wall_ns / st.assists <= st.assist_max_ns, "%llu assists took %llu ns, the longest %llu",
                (unsigned long long)st.assists, (unsigned long long)st.assist_wall_ns,
                (unsigned long long)st.assist_max_ns);
  /* The ring of each cycle's longest assist holds every cycle here. */
  ck_assert_uint_le(st.cycles, GC_PAUSE_HISTORY);
  uint64_t ring_max = 0;
  for (uint64_t k = 1; k <= st.cycles; k++) {
    uint64_t longest = st.cycle_assist_max_ns[(k - 1) % GC_PAUSE_HISTORY];
    if (longest > ring_max) ring_max = longest;
  }
  ck_assert_uint_eq(ring_max, st.assist_max_ns);
  free(err);
  live_head = NULL;
}
END_TEST

static Suite *pacer_suite(void) {
  Suite *s = suite_create("pacer");
  TCase *tc = tcase_create("goal");
  tcase_set_timeout(tc, 120);
  /* Not under Valgrind (tools/memcheck): it runs one thread at a time, so
   * the mark worker hardly runs while the program allocates, and the heap
   * reaches twice its goal whatever the pacer does. */
  tcase_set_tags(tc, "pacing");
  tcase_add_test(tc, test_heap_stays_near_goal_and_marks_start_late_with_one_mark_worker);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) { return run_suite_in_children(pacer_suite()); }
