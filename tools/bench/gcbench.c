/*
 * gcbench.c: a GCBench-style workload (after Hans Boehm's GCBench idea,
 * written anew) over the heap chosen in gc_bench_heap.h.
 *
 *   1. build and drop a stretch tree of depth STRETCH_DEPTH;
 *   2. build a long-lived tree of depth LONG_LIVED_DEPTH top-down and a
 *      long-lived pointer-free array of ARRAY_LEN doubles (half filled);
 *   3. for d = 4, 6, ..., 16 build iters(d) trees top-down (allocate the
 *      root, then populate children into the zeroed fields) and as many
 *      bottom-up (children first), counting the nodes of each and dropping
 *      it.  iters(d) = scale * 2 * size(STRETCH_DEPTH) / size(d), so every
 *      depth allocates about the same number of nodes:
 *      4 * scale * 2^19 nodes of 24 bytes, ~50 MB * scale per depth and
 *      ~350 MB * scale in all (glibc rounds a node up to 32 bytes);
 *   4. check the long-lived tree and array.
 *
 * A node is two pointers and two ints (24 bytes on LP64).  Output on stdout
 * is the same for every heap; the glibc variant frees each tree with a
 * recursive walk, the collected variants drop it.
 *
 * Usage: gcbench [scale]     (default 1; run_gc_bench uses 4 for ~1.4 GB)
 */
#include "gc_bench_heap.h"

#include <stdlib.h>

enum {
  STRETCH_DEPTH = 18,
  LONG_LIVED_DEPTH = 16,
  ARRAY_LEN = 500000,
  MIN_DEPTH = 4,
  MAX_DEPTH = 16,
};

struct gnode {
  struct gnode *left, *right;
  int i, j;
};

static long tree_size(int depth) { return (1L << (depth + 1)) - 1; }

static struct gnode *new_node(int depth) {
  struct gnode *n = bh_alloc(sizeof *n);
  n->left = n->right = NULL;  /* malloc does not zero; the GCs already did */
  n->i = depth;
  n->j = 0;
  return n;
}

/* Top-down: n exists; give it children, then fill them in. */
static void populate(int depth, struct gnode *n) {
  if (depth <= 0) return;
  BH_STORE(&n->left, new_node(depth - 1));
  BH_STORE(&n->right, new_node(depth - 1));
  populate(depth - 1, n->left);
  populate(depth - 1, n->right);
}

/* Bottom-up: children first, then the node that holds them. */
static struct gnode *make_tree(int depth) {
  if (depth <= 0) return new_node(0);
  struct gnode *l = make_tree(depth - 1);
  struct gnode *r = make_tree(depth - 1);
  struct gnode *n = new_node(depth);
  BH_STORE(&n->left, l);
  BH_STORE(&n->right, r);
  return n;
}

/* Node count; also checks each node's recorded depth. */
static long count(const struct gnode *n, int depth) {
  if (n->i != depth) {
    fprintf(stderr, "gcbench: node of depth %d says %d: heap corrupted\n", depth, n->i);
    abort();
  }
  if (!n->left) return 1;
  return 1 + count(n->left, depth - 1) + count(n->right, depth - 1);
}

static void delete_tree(struct gnode *n) {
  if (n->left) {
    delete_tree(n->left);
    delete_tree(n->right);
  }
  bh_free(n);
}

static long one_top_down(int depth) {
  struct gnode *t = new_node(depth);
  populate(depth, t);
  long c = count(t, depth);
  if (BH_MANUAL_FREE) delete_tree(t);
  return c;
}

static long one_bottom_up(int depth) {
  struct gnode *t = make_tree(depth);
  long c = count(t, depth);
  if (BH_MANUAL_FREE) delete_tree(t);
  return c;
}

int main(int argc, char **argv) {
  long scale = argc > 1 ? atol(argv[1]) : 1;
  if (scale < 1) {
    fprintf(stderr, "gcbench: scale must be a positive integer\n");
    return 2;
  }
  bh_init();

  printf("stretch tree of depth %d\t check: %ld\n", STRETCH_DEPTH,
         one_bottom_up(STRETCH_DEPTH));

  struct gnode *long_lived = new_node(LONG_LIVED_DEPTH);
  populate(LONG_LIVED_DEPTH, long_lived);
  double *array = bh_alloc_atomic(ARRAY_LEN * sizeof *array);
  for (int i = 0; i < ARRAY_LEN / 2; i++) array[i] = 1.0 / (i + 1);

  for (int d = MIN_DEPTH; d <= MAX_DEPTH; d += 2) {
    long iters = scale * 2 * tree_size(STRETCH_DEPTH) / tree_size(d);
    long td = 0, bu = 0;
    for (long k = 0; k < iters; k++) td += one_top_down(d);
    for (long k = 0; k < iters; k++) bu += one_bottom_up(d);
    printf("%ld\t trees of depth %d\t top-down check: %ld\t bottom-up check: %ld\n",
           iters, d, td, bu);
  }

  printf("long lived tree of depth %d\t check: %ld\n", LONG_LIVED_DEPTH,
         count(long_lived, LONG_LIVED_DEPTH));
  printf("long lived array\t %s\n",
         array[1000] == 1.0 / 1001 && array[ARRAY_LEN / 2 - 1] == 1.0 / (ARRAY_LEN / 2)
             ? "ok" : "CORRUPTED");
  if (BH_MANUAL_FREE) {
    delete_tree(long_lived);
    bh_free(array);
  }
  bh_report();
  return 0;
}
