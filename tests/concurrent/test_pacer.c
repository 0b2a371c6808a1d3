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
#define MAX_MEDIAN_OVERSHOOT 1.35

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

START_TEST(test_heap_stays_near_goal_with_one_mark_worker) {
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

  double ratios[CYCLES + 8];
  int n = 0, seen = 0;
  double goal = 0;
  for (char *line = strtok(err, "\n"); line; line = strtok(NULL, "\n")) {
    double x, y, z, g;
    const char *at = strstr(line, " ms clock, ");
    if (strncmp(line, "gc ", 3) != 0 || !at) continue;
    if (sscanf(at, " ms clock, %lf->%lf->%lf MB, %lf MB goal", &x, &y, &z, &g) != 4) continue;
    if (++seen > SKIP_CYCLES && goal > 0 && n < (int)(sizeof(ratios) / sizeof(ratios[0])))
      ratios[n++] = y / goal;
    goal = g;
  }
  ck_assert_msg(n >= CYCLES / 2, "only %d usable trace lines in:\n%s", n, err);
  qsort(ratios, (size_t)n, sizeof(double), compare_doubles);
  double median = ratios[n / 2];
  ck_assert_msg(median <= MAX_MEDIAN_OVERSHOOT,
                "heap at mark end is %.2fx the goal (median of %d cycles; at most %.2f expected):\n%s",
                median, n, MAX_MEDIAN_OVERSHOOT, err);
  free(err);
  live_head = NULL;
}
END_TEST

static Suite *pacer_suite(void) {
  Suite *s = suite_create("pacer");
  TCase *tc = tcase_create("goal");
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, test_heap_stays_near_goal_with_one_mark_worker);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) { return conc_run_suite(pacer_suite()); }
