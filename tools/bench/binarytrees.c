/*
 * binarytrees.c: the Benchmarks Game "binary-trees" program over the heap
 * chosen in gc_bench_heap.h (mgc, bdwgc or glibc malloc/free).
 *
 * With max depth N (at least min_depth + 2):
 *   1. build and check a "stretch" tree of depth N + 1, then drop it;
 *   2. build a long-lived tree of depth N, kept until the end;
 *   3. for d = 4, 6, ..., N build 2^(N - d + 4) trees of depth d, bottom-up,
 *      checking (counting the nodes of) each and dropping it;
 *   4. check the long-lived tree.
 * A node is two pointers (16 bytes on LP64).  The output is the program's
 * usual text, identical for every heap and thread count, so run_gc_bench
 * compares it across variants:
 *
 *   stretch tree of depth 21	 check: 4194303
 *   1048576	 trees of depth 4	 check: 32505856
 *   ...
 *   long lived tree of depth 20	 check: 2097151
 *
 * The glibc variant frees every tree with a recursive walk; the collected
 * variants just drop the pointer.
 *
 * With T > 1 threads, each depth's trees are split evenly between T threads
 * (started with bh_thread_create for that depth and joined), while the main
 * thread holds the long-lived tree.
 *
 * Usage: binarytrees [max_depth [threads]]    (defaults 10 and 1)
 */
#include "gc_bench_heap.h"

#include <stdlib.h>

enum { MIN_DEPTH = 4, MAX_THREADS = 64 };

struct node {
  struct node *left, *right;
};

static struct node *bottom_up_tree(int depth) {
  struct node *n = bh_alloc(sizeof *n);
  if (depth > 0) {
    BH_STORE(&n->left, bottom_up_tree(depth - 1));
    BH_STORE(&n->right, bottom_up_tree(depth - 1));
  } else {
    n->left = n->right = NULL;
  }
  return n;
}

static long item_check(const struct node *n) {
  if (!n->left) return 1;
  return 1 + item_check(n->left) + item_check(n->right);
}

static void delete_tree(struct node *n) {
  if (n->left) {
    delete_tree(n->left);
    delete_tree(n->right);
  }
  bh_free(n);
}

/* Build, check and drop one tree: the unit of work of every phase. */
static long one_tree(int depth) {
  struct node *t = bottom_up_tree(depth);
  long c = item_check(t);
  if (BH_MANUAL_FREE) delete_tree(t);
  return c;
}

struct share {
  int depth;
  long iterations;
  long check;
};

static void *run_share(void *arg) {
  struct share *s = arg;
  long c = 0;
  for (long i = 0; i < s->iterations; i++) c += one_tree(s->depth);
  s->check = c;
  return NULL;
}

static long trees_of_depth(int depth, long iterations, int threads) {
  struct share sh[MAX_THREADS];
  pthread_t tid[MAX_THREADS];
  if (threads == 1) {
    sh[0] = (struct share){depth, iterations, 0};
    run_share(&sh[0]);
    return sh[0].check;
  }
  for (int t = 0; t < threads; t++) {
    long n = iterations / threads + (t < iterations % threads);
    sh[t] = (struct share){depth, n, 0};
    if (bh_thread_create(&tid[t], run_share, &sh[t]) != 0) {
      perror("binarytrees: thread create");
      exit(1);
    }
  }
  long c = 0;
  for (int t = 0; t < threads; t++) {
    pthread_join(tid[t], NULL);
    c += sh[t].check;
  }
  return c;
}

int main(int argc, char **argv) {
  int n = argc > 1 ? atoi(argv[1]) : 10;
  int threads = argc > 2 ? atoi(argv[2]) : 1;
  if (threads < 1 || threads > MAX_THREADS) {
    fprintf(stderr, "binarytrees: threads must be 1..%d\n", MAX_THREADS);
    return 2;
  }
  int max_depth = n > MIN_DEPTH + 2 ? n : MIN_DEPTH + 2;
  bh_init();

  int stretch = max_depth + 1;
  printf("stretch tree of depth %d\t check: %ld\n", stretch, one_tree(stretch));

  struct node *long_lived = bottom_up_tree(max_depth);

  for (int d = MIN_DEPTH; d <= max_depth; d += 2) {
    long iterations = 1L << (max_depth - d + MIN_DEPTH);
    long c = trees_of_depth(d, iterations, threads);
    printf("%ld\t trees of depth %d\t check: %ld\n", iterations, d, c);
  }

  printf("long lived tree of depth %d\t check: %ld\n", max_depth,
         item_check(long_lived));
  if (BH_MANUAL_FREE) delete_tree(long_lived);
  bh_report();
  return 0;
}
