/*
 * fastpath.c: the smallest program that exercises the allocation fast path,
 * for counting instructions under callgrind (see callgrind_fastpath.sh).
 *
 *   fastpath scan K     K x gc_alloc(16)
 *   fastpath atomic K   K x gc_alloc_atomic(64)
 *
 * and nothing else: no frees, no timing, no output.  Running it for two K and
 * dividing the difference of the instruction totals by the difference of
 * the K cancels start-up and exit, leaving the cost of one allocation
 * (amortised over the refills and any collection the extra objects cause).
 *
 * The same source builds reference variants with the switches of
 * alloc_bench.c (-DBENCH_GLIBC, -DBENCH_MIMALLOC, -DBENCH_JEMALLOC), where
 * both modes call malloc of the same size, so the mgc count has something
 * to be read against.  The default is -DBENCH_MGC.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A small scanned object (scanned objects never use the tiny allocator),
 * and an atomic one above the 16-byte tiny limit, so both take the plain
 * size-class path. */
#define FASTPATH_SCAN_SIZE 16
#define FASTPATH_ATOMIC_SIZE 64

#if defined(BENCH_GLIBC) || defined(BENCH_JEMALLOC)
static inline void *alloc_scan(size_t n) { return malloc(n); }
static inline void *alloc_atomic(size_t n) { return malloc(n); }
#elif defined(BENCH_MIMALLOC)
#include <mimalloc.h>
static inline void *alloc_scan(size_t n) { return mi_malloc(n); }
static inline void *alloc_atomic(size_t n) { return mi_malloc(n); }
#else
#include "mgc.h"
static inline void *alloc_scan(size_t n) { return gc_alloc(n); }
static inline void *alloc_atomic(size_t n) { return gc_alloc_atomic(n); }
#endif

/* Every result lands here, so no allocation can be optimised away. */
static void *volatile fastpath_sink;

int main(int argc, char **argv) {
  if (argc != 3 || (strcmp(argv[1], "scan") && strcmp(argv[1], "atomic"))) {
    fprintf(stderr, "usage: fastpath scan|atomic K\n");
    return 64;
  }
  long k = strtol(argv[2], NULL, 10);
  if (!strcmp(argv[1], "scan"))
    for (long i = 0; i < k; i++) fastpath_sink = alloc_scan(FASTPATH_SCAN_SIZE);
  else
    for (long i = 0; i < k; i++)
      fastpath_sink = alloc_atomic(FASTPATH_ATOMIC_SIZE);
  return fastpath_sink ? 0 : 1;
}
