/*
 * mgc-demo: a program that allocates a lot and never frees, to show mgc
 * collecting.  It keeps a table of 20,000 live strings and trees, and keeps
 * replacing random entries with new ones, so the live heap stays constant
 * while gigabytes go through the allocator.  With MGC_TRACE=1 (tools/demo
 * sets it) every collection prints a line; every half second the demo
 * prints its resident memory, which stays flat.
 *
 *   mgc-demo [seconds]      (default 4)
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "mgc.h"

#define TABLE_SIZE 20000
#define TREE_DEPTH 6

struct tree {
  struct tree *left, *right;
  char *label;
};

static void *table[TABLE_SIZE];  /* a global: a root the collector scans */
static uint64_t tree_id[TABLE_SIZE]; /* id + 1 of the tree in a slot, 0 = a buffer */

static struct tree *make_tree(int depth, uint64_t id) {
  struct tree *t = gc_alloc(sizeof(*t));
  char buf[32];
  snprintf(buf, sizeof(buf), "node-%llu-%d", (unsigned long long)id, depth);
  t->label = gc_strdup(buf);
  if (depth > 0) {
    t->left = make_tree(depth - 1, id * 2);
    t->right = make_tree(depth - 1, id * 2 + 1);
  }
  return t;
}

static int check_tree(const struct tree *t, int depth, uint64_t id) {
  char buf[32];
  snprintf(buf, sizeof(buf), "node-%llu-%d", (unsigned long long)id, depth);
  if (strcmp(t->label, buf) != 0) return 0;
  if (depth == 0) return 1;
  return check_tree(t->left, depth - 1, id * 2) && check_tree(t->right, depth - 1, id * 2 + 1);
}

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static long rss_kib(void) {
  FILE *f = fopen("/proc/self/statm", "r");
  long size = 0, resident = 0;
  if (f) {
    if (fscanf(f, "%ld %ld", &size, &resident) != 2) resident = 0;
    fclose(f);
  }
  return resident * (sysconf(_SC_PAGESIZE) / 1024);
}

int main(int argc, char **argv) {
  double seconds = argc > 1 ? atof(argv[1]) : 4.0;
  gc_init();
  uint64_t rng = 88172645463325252ull, made = 0;
  double start = now(), next_report = start;
  while (now() - start < seconds) {
    for (int i = 0; i < 1000; i++) {
      rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
      uint64_t id = made++;
      size_t slot = (size_t)(rng % TABLE_SIZE);
      if (rng & 1) {
        table[slot] = make_tree(TREE_DEPTH, id);
        tree_id[slot] = id + 1;
      } else {
        table[slot] = gc_alloc_atomic(64 + (size_t)(rng >> 40) % 4096);
        tree_id[slot] = 0;
      }
    }
    if (now() >= next_report) {
      struct gc_stats st = {.size = sizeof(st)};
      gc_get_stats(&st);
      printf("demo: %6.1fs  allocated %7.1f MB  collections %4llu  live %5.1f MB  RSS %5.1f MB\n",
             now() - start, (double)st.total_alloc_bytes / 1048576.0, (unsigned long long)st.cycles,
             (double)st.heap_marked / 1048576.0, (double)rss_kib() / 1024.0);
      fflush(stdout);
      next_report += 0.5;
    }
  }
  /* Every tree still in the table must be intact. */
  long trees = 0, broken = 0;
  for (size_t i = 0; i < TABLE_SIZE; i++) {
    if (!tree_id[i]) continue;
    trees++;
    if (!check_tree(table[i], TREE_DEPTH, tree_id[i] - 1)) broken++;
  }
  struct gc_stats st = {.size = sizeof(st)};
  gc_get_stats(&st);
  printf("demo: done: %llu objects allocated in %.1f GB, %llu collections, longest pause %.3f ms\n",
         (unsigned long long)st.total_alloc_objects, (double)st.total_alloc_bytes / 1073741824.0,
         (unsigned long long)st.cycles, (double)st.max_pause_ns / 1e6);
  printf("demo: checked %ld live trees: %s\n", trees, broken ? "SOME ARE BROKEN" : "all intact");
  return broken ? 1 : 0;
}
