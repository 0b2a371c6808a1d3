/*
 * test_mheap.c: unit tests for alloc/mheap.c (the page heap) and the span
 * map of alloc/arena.h that it maintains.
 *
 * Concerns, one TCase each:
 *   split      a span is carved from the front of a free run; the rest of
 *              the run stays free, right after it;
 *   coalesce   freed neighbours merge into one run, which a later allocation
 *              of their combined size gets whole (same base);
 *   large      objects over SMALL_SIZE_MAX get a span of their own;
 *   large_gc   gc_free of a large object against the collector: it takes
 *              the span's sweep from the sweepers, and an object freed
 *              while the collector marks can no longer get a finalizer;
 *   spanmap    every page of an in-use span maps to it; free pages are no
 *              heap object (span_of_heap == NULL) and map as arena.h says;
 *   zero       needzero is clear for pages fresh from the OS or released
 *              to it, set for reused pages, and clear pages read as zero;
 *   scavenge   freed pages go back to the OS (RSS drops, stats.released
 *              grows), on request and by the background scavenger.
 *
 * Layout-sensitive tests first call drain_free_runs(): it takes one-page
 * spans until the heap has to grow, so afterwards the only free run is the
 * fresh rest of that growth, right after the last drained page.  Whatever
 * earlier tests left behind (with CK_FORK=no), the layout is then known.
 * The background scavenger is held off (age "never") in those TCases so it
 * cannot take a run out of the lists while a test looks at it.
 *
 * Automatic collection is off (gc_disable): these tests are about the page
 * heap, and a cycle would free or sweep spans under them.  Spans taken
 * straight from mheap_alloc_span are large noscan spans whose bases are
 * kept in static arrays anyway, so a conservative collector would see them
 * as reachable.
 */
#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mgc.h"

#include "alloc/arena.h"
#include "alloc/mcache.h"
#include "alloc/mcentral.h"
#include "alloc/mheap.h"
#include "alloc/mspan.h"
#include "alloc/scavenger.h"
#include "alloc/sizeclasses.h"
#include "gc/collector.h"
#include "gc/sweep.h"
#include "runtime/os.h"
#include "capture.h"

#define LARGE_NOSCAN spanclass_make(0, true)
/* Mirrors SCAVENGE_DEFAULT_AGE_NS in alloc/scavenger.c (private there). */
#define SCAVENGER_DEFAULT_AGE_NS 3000000000ull
#define SCAVENGER_NEVER UINT64_MAX
#define MAX_DRAINED 65536
#define MAX_KEPT 64

#define MIB ((size_t)1 << 20)
/* Scavenge tests: this much in large objects, touched then freed; RSS must
 * drop by at least SCAVENGE_MIN_DROP of it. */
#define SCAVENGE_BYTES (64 * MIB)
#define SCAVENGE_OBJECT (1 * MIB)
#define SCAVENGE_NOBJECTS (SCAVENGE_BYTES / SCAVENGE_OBJECT)
#define SCAVENGE_MIN_DROP (48 * MIB)
#define BACKGROUND_AGE_NS 1000000ull     /* 1 ms */
#define BACKGROUND_WAIT_NS 5000000000ull /* poll RSS for up to 5 s */
#define POLL_NS 20000000L                /* every 20 ms */
#define RECENT_AGE_NS 60000000000ull     /* 60 s: longer than any test runs */

/* Spans held by a test: record and base (the base keeps it reachable). */
struct held {
  struct mspan *span;
  void *base;
};

static struct held drained[MAX_DRAINED];
static size_t ndrained;
static struct held kept[MAX_KEPT];
static size_t nkept;
static void *large_objects[SCAVENGE_NOBJECTS];

/* ---- helpers ---- */

static struct mheap_stats read_stats(void) {
  struct mheap_stats st;
  mheap_read_stats(&st);
  return st;
}

static bool span_is_free(const struct mspan *s) {
  return s && atomic_load_relaxed(&s->state) == MSPAN_FREE;
}

/* npages pages as one large noscan span; checks the heap afterwards. */
static struct mspan *span_alloc(uintptr_t npages) {
  struct mspan *s = mheap_alloc_span(npages, LARGE_NOSCAN);
  ck_assert_msg(s != NULL, "mheap_alloc_span(%lu) failed", (unsigned long)npages);
  ck_assert_msg(nkept < MAX_KEPT, "test holds too many spans");
  kept[nkept++] = (struct held){s, (void *)s->base};
  ck_assert_uint_eq(s->npages, npages);
  ck_assert(mheap_is_valid());
  return s;
}

static void span_free(struct mspan *s) {
  for (size_t i = 0; i < nkept; i++)
    if (kept[i].span == s) kept[i] = (struct held){NULL, NULL};
  mheap_free_span(s);
  ck_assert(mheap_is_valid());
}

/* Take one-page spans until the heap grows.  Returns the address where
 * the only free run now starts: right after the last drained page. */
static uintptr_t drain_free_runs(void) {
  size_t sys_before = read_stats().sys;
  for (;;) {
    ck_assert_msg(ndrained < MAX_DRAINED, "more than %d free pages to drain", MAX_DRAINED);
    struct mspan *s = mheap_alloc_span(1, LARGE_NOSCAN);
    ck_assert(s != NULL);
    drained[ndrained++] = (struct held){s, (void *)s->base};
    if (read_stats().sys > sys_before) {
      uintptr_t run = s->base + PAGE_SIZE;
      struct mspan *r = span_of(run);
      ck_assert_msg(span_is_free(r) && r->base == run,
                    "growth did not leave a free run right after the new span");
      ck_assert(mheap_is_valid());
      return run;
    }
  }
}

static bool is_all_zero(const void *p, size_t n) {
  const unsigned char *b = p;
  for (size_t i = 0; i < n; i++)
    if (b[i]) return false;
  return true;
}

static void setup(void) {
  gc_init();
  gc_disable();
  scavenger_set_age(SCAVENGER_NEVER);
}

static void teardown(void) {
  test_hold_set(&sweep_hold_before_span, false); /* a failed test may have left them on (CK_FORK=no) */
  test_hold_set(&mheap_hold_before_publish, false);
  test_hold_set(&collector_hold_after_setup, false);
  test_hold_set(&sweep_hold_in_recycled_claim, false);
  test_hold_set(&sweep_hold_after_claim, false);
  for (size_t i = 0; i < nkept; i++)
    if (kept[i].span) mheap_free_span(kept[i].span);
  nkept = 0;
  for (size_t i = 0; i < ndrained; i++) mheap_free_span(drained[i].span);
  ndrained = 0;
  scavenger_set_age(SCAVENGER_DEFAULT_AGE_NS);
  gc_enable();
  ck_assert(mheap_is_valid());
}

static void sleep_ns(long ns) {
  struct timespec ts = {ns / 1000000000L, ns % 1000000000L};
  nanosleep(&ts, NULL);
}

/* ---- split ---- */

START_TEST(test_allocation_is_carved_from_front_of_run_and_rest_stays_free) {
  uintptr_t run = drain_free_runs();
  uintptr_t run_pages = span_of(run)->npages;
  ck_assert_uint_gt(run_pages, 3);
  struct mheap_stats before = read_stats();

  struct mspan *a = span_alloc(3);
  ck_assert_uint_eq(a->base, run);
  struct mspan *rest = span_of(run + 3 * PAGE_SIZE);
  ck_assert(span_is_free(rest));
  ck_assert_uint_eq(rest->base, run + 3 * PAGE_SIZE);
  ck_assert_uint_eq(rest->npages, run_pages - 3);

  struct mheap_stats after = read_stats();
  ck_assert_uint_eq(after.sys, before.sys);
  ck_assert_uint_eq(after.in_use, before.in_use + 3 * PAGE_SIZE);
}
END_TEST

START_TEST(test_consecutive_allocations_are_adjacent_in_one_run) {
  uintptr_t run = drain_free_runs();
  struct mspan *a = span_alloc(2);
  struct mspan *b = span_alloc(5);
  struct mspan *c = span_alloc(1);
  ck_assert_uint_eq(a->base, run);
  ck_assert_uint_eq(b->base, a->base + 2 * PAGE_SIZE);
  ck_assert_uint_eq(c->base, b->base + 5 * PAGE_SIZE);
}
END_TEST

/* ---- coalesce ---- */

START_TEST(test_two_freed_neighbours_coalesce_and_are_reused_whole) {
  drain_free_runs();
  struct mspan *a = span_alloc(3);
  struct mspan *b = span_alloc(5);
  span_alloc(1); /* fence: keeps a and b apart from the rest of the run */
  uintptr_t base = a->base;

  span_free(a);
  span_free(b);
  struct mspan *merged = span_of(base);
  ck_assert(span_is_free(merged));
  ck_assert_uint_eq(merged->base, base);
  ck_assert_uint_eq(merged->npages, 8);
  ck_assert_ptr_eq(span_of(base + 7 * PAGE_SIZE), merged);

  struct mspan *c = span_alloc(8);
  ck_assert_uint_eq(c->base, base);
}
END_TEST

/* A record merged into its free neighbour goes back to the record pool,
 * which hands it out again zeroed.  Its next use as an in-use span must
 * still get an incarnation it never had: a thread holding frees for its
 * last use tells the two apart by it (alloc/mcache.c, held frees), and a
 * count kept in the record started over at each reuse. */
START_TEST(test_reused_span_record_gets_an_incarnation_it_never_had) {
  drain_free_runs();
  struct mspan *a = span_alloc(3);
  struct mspan *b = span_alloc(5);
  span_alloc(1); /* fence */
  uintptr_t ia = a->incarnation, ib = b->incarnation;
  span_free(a);
  span_free(b); /* b's record is merged into a's and freed */
  struct mspan *c = span_alloc(3);
  struct mspan *d = span_alloc(5); /* the rest of the run, in a record from the pool */
  ck_assert_msg(c == b || d == b, "the freed record was not reused (a %p, b %p, c %p, d %p)", (void *)a,
                (void *)b, (void *)c, (void *)d);
  struct mspan *spans[2] = {c, d};
  for (int i = 0; i < 2; i++) {
    if (spans[i] == a) ck_assert_uint_ne(spans[i]->incarnation, ia);
    if (spans[i] == b)
      ck_assert_msg(spans[i]->incarnation != ib, "the record of b came back with b's incarnation %lu",
                    (unsigned long)ib);
  }
}
END_TEST

START_TEST(test_free_coalesces_with_both_neighbours) {
  drain_free_runs();
  struct mspan *a = span_alloc(2);
  struct mspan *b = span_alloc(3);
  struct mspan *c = span_alloc(4);
  span_alloc(1); /* fence */
  uintptr_t base = a->base;

  span_free(a);
  span_free(c);
  span_free(b); /* joins a (before) and c (after) */
  struct mspan *merged = span_of(base);
  ck_assert(span_is_free(merged));
  ck_assert_uint_eq(merged->npages, 9);
  ck_assert_ptr_eq(span_of(base + 8 * PAGE_SIZE), merged);
  ck_assert_uint_eq(span_alloc(9)->base, base);
}
END_TEST

START_TEST(test_freed_span_is_reused_for_same_size) {
  drain_free_runs();
  struct mspan *a = span_alloc(4);
  span_alloc(1); /* fence */
  uintptr_t base = a->base;
  span_free(a);
  ck_assert_uint_eq(span_alloc(4)->base, base);
}
END_TEST

START_TEST(test_free_run_is_split_again_after_coalescing) {
  drain_free_runs();
  struct mspan *a = span_alloc(6);
  span_alloc(1); /* fence */
  uintptr_t base = a->base;
  span_free(a);
  struct mspan *x = span_alloc(2);
  struct mspan *y = span_alloc(4);
  ck_assert_uint_eq(x->base, base);
  ck_assert_uint_eq(y->base, base + 2 * PAGE_SIZE);
}
END_TEST

/* ---- large ---- */

START_TEST(test_large_objects_get_spans_of_their_own) {
  static const size_t sizes[] = {SMALL_SIZE_MAX + 1, 40000, 1 * MIB, 5 * MIB + 1};
  static void *objs[2 * MGC_ARRAY_LEN(sizes)];
  for (size_t i = 0; i < MGC_ARRAY_LEN(sizes); i++) {
    size_t n = sizes[i];
    uintptr_t npages = (n + PAGE_SIZE - 1) / PAGE_SIZE;
    size_t large_before = read_stats().large_in_use;
    void *p = objs[2 * i] = gc_alloc(n);
    void *q = objs[2 * i + 1] = gc_alloc(n);
    ck_assert(p && q);
    struct mspan *s = span_of_heap((uintptr_t)p);
    ck_assert_msg(s && span_is_large(s), "%zu bytes: not in a large span", n);
    ck_assert_uint_eq(s->base, (uintptr_t)p);
    ck_assert_uint_eq(s->npages, npages);
    ck_assert_uint_eq(s->nelems, 1);
    ck_assert_uint_eq(s->limit, s->base + npages * PAGE_SIZE);
    struct mspan *t = span_of_heap((uintptr_t)q);
    ck_assert(t && t != s && span_is_large(t));
    ck_assert(t->base >= s->limit || t->limit <= s->base);
    ck_assert_uint_ge(read_stats().large_in_use, large_before + 2 * npages * PAGE_SIZE);
    ck_assert(mheap_is_valid());
  }
  for (size_t i = 0; i < MGC_ARRAY_LEN(objs); i++) {
    gc_free(objs[i]);
    ck_assert_ptr_null(span_of_heap((uintptr_t)objs[i]));
    objs[i] = NULL;
    ck_assert(mheap_is_valid());
  }
}
END_TEST

START_TEST(test_largest_small_object_is_not_large) {
  void *p = gc_alloc(SMALL_SIZE_MAX);
  struct mspan *s = span_of_heap((uintptr_t)p);
  ck_assert(s != NULL);
  ck_assert(!span_is_large(s));
  ck_assert_uint_eq(spanclass_sizeclass(s->spanclass), SIZECLASS_COUNT - 1);
  gc_free(p);
}
END_TEST

START_TEST(test_freeing_large_object_returns_its_pages) {
  size_t before = read_stats().large_in_use;
  void *p = gc_alloc(3 * MIB);
  ck_assert(p != NULL);
  ck_assert_uint_eq(read_stats().large_in_use, before + 3 * MIB);
  gc_free(p);
  ck_assert_uint_eq(read_stats().large_in_use, before);
  ck_assert(mheap_is_valid());
}
END_TEST

/* ---- spanmap ---- */

START_TEST(test_every_page_of_in_use_span_maps_to_it) {
  static const uintptr_t sizes[] = {1, 2, 3, 17, 200};
  drain_free_runs();
  for (size_t i = 0; i < MGC_ARRAY_LEN(sizes); i++) {
    struct mspan *s = span_alloc(sizes[i]);
    for (uintptr_t pg = 0; pg < s->npages; pg++) {
      uintptr_t a = s->base + pg * PAGE_SIZE;
      ck_assert_ptr_eq(span_of(a), s);
      ck_assert_ptr_eq(span_of_heap(a), s);
      ck_assert_ptr_eq(span_of_heap(a + 1), s);
      ck_assert_ptr_eq(span_of_heap(a + PAGE_SIZE - 1), s);
    }
  }
}
END_TEST

/* arena_walk_spans visits each in-use span once, at its first page, in
 * address order, whatever its length (the sweeps rely on it: a span the
 * walk passed over would stay unswept). */
struct walk_log {
  struct mspan *seen[8];
  unsigned nseen;
  uintptr_t last_base;
  bool out_of_order;
};

static void log_span(struct mspan *s, void *ctx) {
  struct walk_log *w = ctx;
  if (s->base < w->last_base) w->out_of_order = true;
  w->last_base = s->base;
  if (w->nseen < MGC_ARRAY_LEN(w->seen)) w->seen[w->nseen++] = s;
}

START_TEST(test_span_walk_visits_each_in_use_span_once_at_its_first_page) {
  static const uintptr_t sizes[] = {1, 3, 1, 200, 2};
  uintptr_t lo = drain_free_runs();
  struct mspan *spans[MGC_ARRAY_LEN(sizes)];
  for (size_t i = 0; i < MGC_ARRAY_LEN(sizes); i++) spans[i] = span_alloc(sizes[i]);
  span_free(spans[2]); /* a hole of one free page between two in-use spans */
  struct mspan *want[] = {spans[0], spans[1], spans[3], spans[4]};
  uintptr_t hi = spans[4]->base + spans[4]->npages * PAGE_SIZE;
  struct walk_log w = {0};
  arena_walk_spans(lo, hi, log_span, &w);
  ck_assert(!w.out_of_order);
  ck_assert_uint_eq(w.nseen, MGC_ARRAY_LEN(want));
  for (size_t i = 0; i < MGC_ARRAY_LEN(want); i++) ck_assert_ptr_eq(w.seen[i], want[i]);
  /* A range starting inside the long span does not visit it. */
  w = (struct walk_log){0};
  arena_walk_spans(spans[3]->base + PAGE_SIZE, hi, log_span, &w);
  ck_assert_uint_eq(w.nseen, 1);
  ck_assert_ptr_eq(w.seen[0], spans[4]);
}
END_TEST

/* The walk reads the span map without the mheap lock while other threads
 * take and give back spans.  Spans that exist throughout must be visited
 * once each per walk, in address order, however the spans between them
 * come and go (a walk skipping ahead by a record's length, read after the
 * record was reused, passed over them: a sweep would have left them
 * unswept). */
#define WALK_LASTING 48    /* spans that exist throughout the walks */
#define WALK_HOLE_PAGES 8  /* free pages between two of them, for the churn */
#define WALK_CHURNERS 2
#define WALK_CHURN_LIVE 8  /* spans a churning thread holds at a time */
#define WALK_ROUNDS 60000
#define WALK_LINGER 2000 /* loop turns in the walk's callback per churned span */

static uintptr_t lasting_base[WALK_LASTING]; /* ascending */
static unsigned lasting_visits[WALK_LASTING];
static atomic_word churn_stop;

struct churn_walk {
  uintptr_t last;
  bool out_of_order;
  uint64_t others; /* in-use spans seen that are not lasting ones */
};

static int lasting_index(uintptr_t base) {
  int lo = 0, hi = WALK_LASTING - 1;
  while (lo <= hi) {
    int mid = (lo + hi) / 2;
    if (lasting_base[mid] == base) return mid;
    if (lasting_base[mid] < base) lo = mid + 1;
    else hi = mid - 1;
  }
  return -1;
}

/* Reads records another thread may be reusing, as the walk does. */
MGC_NO_SANITIZE_SCAN static void count_lasting(struct mspan *s, void *ctx) {
  struct churn_walk *cw = ctx;
  uintptr_t base = s->base;
  int i = lasting_index(base);
  if (i < 0) {
    /* Linger, as a sweep of the span would: a churning thread may free
     * the span and reuse its record meanwhile. */
    for (volatile int k = 0; k < WALK_LINGER; k++) {
    }
    cw->others++;
    return;
  }
  lasting_visits[i]++;
  if (base <= cw->last) cw->out_of_order = true;
  cw->last = base;
}

static void *churn_main(void *arg) {
  uint64_t x = (uintptr_t)arg * 0x9e3779b97f4a7c15ull + 1;
  struct mspan *live[WALK_CHURN_LIVE] = {0};
  while (!atomic_load_relaxed(&churn_stop)) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    unsigned i = (unsigned)(x % WALK_CHURN_LIVE);
    if (live[i]) {
      mheap_free_span(live[i]);
      live[i] = NULL;
    } else {
      live[i] = mheap_alloc_span(1 + (x >> 8) % WALK_HOLE_PAGES, LARGE_NOSCAN);
    }
  }
  for (unsigned i = 0; i < WALK_CHURN_LIVE; i++)
    if (live[i]) mheap_free_span(live[i]);
  return NULL;
}

START_TEST(test_span_walk_under_churn_visits_each_lasting_span_once) {
  drain_free_runs();
  struct mspan *lasting[WALK_LASTING], *holes[WALK_LASTING];
  for (unsigned i = 0; i < WALK_LASTING; i++) {
    lasting[i] = mheap_alloc_span(1 + i % 3, LARGE_NOSCAN);
    holes[i] = mheap_alloc_span(WALK_HOLE_PAGES, LARGE_NOSCAN);
    ck_assert(lasting[i] && holes[i]);
    lasting_base[i] = lasting[i]->base;
    ck_assert(i == 0 || lasting_base[i] > lasting_base[i - 1]);
  }
  uintptr_t hi = holes[WALK_LASTING - 1]->base;
  for (unsigned i = 0; i < WALK_LASTING; i++) mheap_free_span(holes[i]);

  atomic_store_relaxed(&churn_stop, 0);
  pthread_t churners[WALK_CHURNERS];
  for (uintptr_t t = 0; t < WALK_CHURNERS; t++)
    ck_assert_int_eq(pthread_create(&churners[t], NULL, churn_main, (void *)(t + 1)), 0);
  uint64_t others = 0;
  int bad_round = -1;
  unsigned bad_span = 0, bad_visits = 0;
  bool out_of_order = false;
  for (int r = 0; r < WALK_ROUNDS && bad_round < 0; r++) {
    memset(lasting_visits, 0, sizeof lasting_visits);
    struct churn_walk cw = {0};
    arena_walk_spans(lasting_base[0], hi, count_lasting, &cw);
    others += cw.others;
    out_of_order |= cw.out_of_order;
    for (unsigned i = 0; i < WALK_LASTING && bad_round < 0; i++)
      if (lasting_visits[i] != 1 || cw.out_of_order) {
        bad_round = r;
        bad_span = i;
        bad_visits = lasting_visits[i];
      }
  }
  atomic_store_relaxed(&churn_stop, 1);
  for (unsigned t = 0; t < WALK_CHURNERS; t++) ck_assert_int_eq(pthread_join(churners[t], NULL), 0);
  for (unsigned i = 0; i < WALK_LASTING; i++) mheap_free_span(lasting[i]);
  ck_assert_msg(bad_round < 0, "walk %d visited lasting span %u %u times%s", bad_round, bad_span, bad_visits,
                out_of_order ? ", out of address order" : "");
  /* The churn reached the holes: the walks met spans between the lasting ones. */
  ck_assert_msg(others > 0, "no churned span was ever between the lasting ones");
  ck_assert(mheap_is_valid());
}
END_TEST

START_TEST(test_free_pages_are_no_heap_object_and_map_as_arena_says) {
  drain_free_runs();
  struct mspan *s = span_alloc(20);
  uintptr_t base = s->base;
  span_free(s); /* merges with the rest of the run after it */
  for (uintptr_t pg = 0; pg < 20; pg++)
    ck_assert_ptr_null(span_of_heap(base + pg * PAGE_SIZE + 8));
  struct mspan *f = span_of(base);
  ck_assert(span_is_free(f));
  ck_assert_uint_eq(f->base, base);
  ck_assert_uint_ge(f->npages, 20);
  /* First and last page map to the free span, the pages between to NULL. */
  ck_assert_ptr_eq(span_of(base + (f->npages - 1) * PAGE_SIZE), f);
  for (uintptr_t pg = 1; pg + 1 < f->npages; pg++)
    ck_assert_ptr_null(span_of(base + pg * PAGE_SIZE));
}
END_TEST

START_TEST(test_small_object_span_maps_all_pages_but_not_its_tail) {
  /* The first class of more than one page whose objects leave a tail. */
  size_t size = 0;
  for (unsigned c = 1; c < SIZECLASS_COUNT && !size; c++)
    if (sizeclass_npages[c] > 1 && sizeclass_npages[c] * PAGE_SIZE > sizeclass_nelems[c] * sizeclass_size[c])
      size = sizeclass_size[c];
  ck_assert_uint_gt(size, 0);
  void *p = gc_alloc(size);
  struct mspan *s = span_of_heap((uintptr_t)p);
  ck_assert(s != NULL && !span_is_large(s));
  ck_assert_uint_gt(s->npages, 1);
  for (uintptr_t pg = 0; pg < s->npages; pg++) ck_assert_ptr_eq(span_of(s->base + pg * PAGE_SIZE), s);
  uintptr_t end = s->base + s->npages * PAGE_SIZE;
  ck_assert_uint_lt(s->limit, end);
  ck_assert_ptr_eq(span_of_heap(s->limit - 1), s);
  ck_assert_ptr_null(span_of_heap(s->limit));
  ck_assert_ptr_null(span_of_heap(end - 1));
  gc_free(p);
}
END_TEST

/* ---- zero ---- */

START_TEST(test_span_fresh_from_os_has_needzero_clear_and_reads_zero) {
  drain_free_runs();
  struct mspan *s = span_alloc(4);
  ck_assert_uint_eq(s->needzero, 0);
  ck_assert(is_all_zero((void *)s->base, 4 * PAGE_SIZE));
}
END_TEST

START_TEST(test_reused_span_has_needzero_set) {
  drain_free_runs();
  struct mspan *s = span_alloc(4);
  span_alloc(1); /* fence */
  uintptr_t base = s->base;
  memset((void *)base, 0xAA, 4 * PAGE_SIZE);
  span_free(s);
  s = span_alloc(4);
  ck_assert_uint_eq(s->base, base);
  ck_assert_uint_eq(s->needzero, 1);
}
END_TEST

START_TEST(test_released_span_has_needzero_clear_and_reads_zero) {
  drain_free_runs();
  struct mspan *s = span_alloc(4);
  uintptr_t base = s->base;
  memset((void *)base, 0xAA, 4 * PAGE_SIZE);
  span_free(s); /* merges with the rest: the only free run again */
  ck_assert_uint_gt(mheap_scavenge(SIZE_MAX, 0), 0);
  ck_assert(mheap_is_valid());
  size_t released = read_stats().released;
  s = span_alloc(4);
  ck_assert_uint_eq(s->base, base);
  ck_assert_uint_eq(s->needzero, 0);
  ck_assert(is_all_zero((void *)base, 4 * PAGE_SIZE));
  ck_assert_uint_eq(read_stats().released, released - 4 * PAGE_SIZE);
}
END_TEST

/* ---- scavenge ---- */

/* Allocate SCAVENGE_BYTES of large objects and touch every page.  Returns
 * the RSS with them resident. */
static size_t fill_large_objects(void) {
  for (size_t i = 0; i < SCAVENGE_NOBJECTS; i++) {
    large_objects[i] = gc_alloc(SCAVENGE_OBJECT);
    ck_assert(large_objects[i] != NULL);
    memset(large_objects[i], 0x5A, SCAVENGE_OBJECT);
  }
  ck_assert(mheap_is_valid());
  return os_rss_bytes();
}

static void free_large_objects(void) {
  for (size_t i = 0; i < SCAVENGE_NOBJECTS; i++) {
    gc_free(large_objects[i]);
    large_objects[i] = NULL;
  }
  ck_assert(mheap_is_valid());
}

START_TEST(test_scavenge_returns_freed_pages_to_os) {
  ck_assert_msg(os_rss_bytes() > 0, "RSS unknown (/proc/self/statm)");
  size_t rss_full = fill_large_objects();
  size_t released_before = read_stats().released;
  free_large_objects();

  size_t done = mheap_scavenge(SIZE_MAX, 0);
  ck_assert_uint_ge(done, SCAVENGE_BYTES);
  ck_assert(mheap_is_valid());
  size_t rss = os_rss_bytes();
  ck_assert_msg(rss + SCAVENGE_MIN_DROP <= rss_full, "RSS %zu -> %zu: dropped less than %zu",
                rss_full, rss, SCAVENGE_MIN_DROP);
  ck_assert_uint_ge(read_stats().released, released_before + SCAVENGE_BYTES);
}
END_TEST

/* Linked with -Wl,--wrap=os_release (tests/alloc/meson.build): every
 * release of pages to the OS passes here. */
int __real_os_release(void *p, size_t size);
int __wrap_os_release(void *p, size_t size);
static atomic_word release_calls, largest_release;

/* Called once, after the first release of memory in [hook_lo, hook_hi). */
static void (*release_hook)(void);
static uintptr_t hook_lo, hook_hi;

int __wrap_os_release(void *p, size_t size) {
  atomic_fetch_add(&release_calls, 1);
  if (size > atomic_load_relaxed(&largest_release)) atomic_store_relaxed(&largest_release, size);
  int err = __real_os_release(p, size);
  if (release_hook && (uintptr_t)p >= hook_lo && (uintptr_t)p < hook_hi) {
    void (*hook)(void) = release_hook;
    release_hook = NULL;
    hook();
  }
  return err;
}

/* Mirrors SCAVENGE_RELEASE_CHUNK in alloc/mheap.c (private there). */
#define RELEASE_CHUNK (2 * MIB)
#define LONG_RUN (16 * MIB)

/* A long free run goes back to the OS in chunks: madvise holds the
 * address space's lock while it works, and the heap growing (mprotect)
 * waits for it; one call for the whole run made that wait as long as the
 * run took to release. */
START_TEST(test_scavenge_releases_a_long_run_in_chunks) {
  (void)mheap_scavenge(SIZE_MAX, 0); /* what was free before: released */
  char *p = gc_alloc(LONG_RUN);
  ck_assert(p != NULL);
  memset(p, 0x5A, LONG_RUN);
  gc_free(p);
  atomic_store_relaxed(&release_calls, 0);
  atomic_store_relaxed(&largest_release, 0);
  ck_assert_uint_ge(mheap_scavenge(SIZE_MAX, 0), LONG_RUN);
  ck_assert(mheap_is_valid());
  ck_assert_msg(atomic_load_relaxed(&largest_release) <= RELEASE_CHUNK,
                "%zu bytes released in one call (chunks of %zu expected)",
                (size_t)atomic_load_relaxed(&largest_release), (size_t)RELEASE_CHUNK);
  ck_assert_uint_ge(atomic_load_relaxed(&release_calls), LONG_RUN / RELEASE_CHUNK);
}
END_TEST

/* Spans of the fragmented heap of the next test: every other one is freed,
 * so no two free ones coalesce. */
#define FRAGMENT_SPANS 64

/* mheap_scavenge walks the heap in address order from a cursor kept
 * between calls (a window of pages per lock hold): asked each time for one
 * span's worth, successive calls must release different spans, all of
 * them in the end, however the cursor starts. */
START_TEST(test_scavenge_in_steps_releases_every_free_span) {
  (void)mheap_scavenge(SIZE_MAX, 0); /* what was free before: released */
  struct mspan *spans[FRAGMENT_SPANS];
  for (int i = 0; i < FRAGMENT_SPANS; i++) spans[i] = span_alloc(2);
  for (int i = 0; i < FRAGMENT_SPANS; i += 2) span_free(spans[i]);
  size_t released_before = read_stats().released;
  int steps = 0;
  size_t done;
  while ((done = mheap_scavenge(2 * PAGE_SIZE, 0)) > 0) {
    ck_assert_uint_eq(done, 2 * PAGE_SIZE);
    if (++steps > FRAGMENT_SPANS) break;
  }
  ck_assert_int_eq(steps, FRAGMENT_SPANS / 2);
  ck_assert_uint_eq(read_stats().released, released_before + FRAGMENT_SPANS / 2 * 2 * PAGE_SIZE);
  ck_assert(mheap_is_valid());
  for (int i = 1; i < FRAGMENT_SPANS; i += 2) span_free(spans[i]);
}
END_TEST

START_TEST(test_scavenge_leaves_recently_freed_pages_alone) {
  fill_large_objects();
  free_large_objects();
  size_t released_before = read_stats().released;
  ck_assert_uint_eq(mheap_scavenge(SIZE_MAX, RECENT_AGE_NS), 0);
  ck_assert_uint_eq(read_stats().released, released_before);
}
END_TEST

/* Walks overlap (the scavenger thread's periodic pass, a release above
 * the memory limit, gc_release_memory), each dropping the lock between
 * windows and for its madvise.  Each must cover the whole heap for the
 * spans of its own age: here a walk for any age is inside its first
 * madvise when a walk for old spans starts, releases one and stops,
 * having passed a span too young for it.  When walks shared one cursor,
 * the first walk went on from where the second stopped and, its lap
 * counted from its own start, ended before it came back to that span:
 * OVERLAP_PADS one-page spans in front make the part of the lap it lost
 * longer than the window it may overrun its lap by. */
#define OVERLAP_AGE_NS 100000000ull
#define OVERLAP_PADS 400
static size_t overlap_released;

static void release_one_old_span(void) { overlap_released = mheap_scavenge(1, OVERLAP_AGE_NS); }

START_TEST(test_overlapping_scavenge_walks_each_cover_the_whole_heap) {
  (void)mheap_scavenge(SIZE_MAX, 0); /* what was free: released */
  static struct mspan *pads[OVERLAP_PADS];
  for (int i = 0; i < OVERLAP_PADS; i++) {
    pads[i] = mheap_alloc_span(1, LARGE_NOSCAN);
    ck_assert(pads[i] != NULL);
  }
  /* first, kept, young, kept, old, kept */
  static const uintptr_t pages[] = {2, 40, 2, 1, 2, 1};
  enum { FIRST = 0, YOUNG = 2, OLD = 4, ROW = 6 };
  struct mspan *row[ROW];
  for (int i = 0; i < ROW; i++) {
    row[i] = span_alloc(pages[i]);
    uintptr_t expected =
        i == 0 ? pads[OVERLAP_PADS - 1]->base + PAGE_SIZE : row[i - 1]->base + pages[i - 1] * PAGE_SIZE;
    ck_assert_msg(row[i]->base == expected, "span %d of the row is not next to the one before: the test needs it", i);
  }
  uintptr_t first = row[FIRST]->base, young = row[YOUNG]->base;
  span_free(row[OLD]);
  sleep_ns(OVERLAP_AGE_NS + OVERLAP_AGE_NS / 2);
  span_free(row[FIRST]);
  span_free(row[YOUNG]);
  hook_lo = first;
  hook_hi = first + pages[FIRST] * PAGE_SIZE;
  release_hook = release_one_old_span;
  (void)mheap_scavenge(SIZE_MAX, 0);
  ck_assert_msg(release_hook == NULL, "the first free span was not released first");
  ck_assert_uint_ge(overlap_released, pages[OLD] * PAGE_SIZE);
  struct mspan *y = span_of(young);
  ck_assert_msg(y && y->base == young && atomic_load_relaxed(&y->state) == MSPAN_FREE && y->scavenged,
                "the young free span was not released by the walk for any age");
  ck_assert(mheap_is_valid());
  for (int i = 0; i < OVERLAP_PADS; i++) mheap_free_span(pads[i]);
}
END_TEST

/* A walk of the whole heap sets a bound under which no free span was
 * freed; until the age cutoff passes it, calls walk nothing.  Spans freed
 * later are released once old enough, and an age of 0 always walks. */
#define BOUND_AGE_NS 150000000ull

START_TEST(test_scavenge_skips_walks_until_a_span_can_be_old_enough) {
  (void)mheap_scavenge(SIZE_MAX, 0); /* a whole lap: the bound is now */
  struct mspan *a = span_alloc(2), *kept = span_alloc(2), *b = span_alloc(2);
  span_free(a);
  sleep_ns(BOUND_AGE_NS + BOUND_AGE_NS / 2);
  size_t walked = read_stats().scavenge_walked;
  ck_assert_uint_ge(mheap_scavenge(SIZE_MAX, BOUND_AGE_NS), 2 * PAGE_SIZE);
  ck_assert_uint_gt(read_stats().scavenge_walked, walked);

  span_free(b);
  walked = read_stats().scavenge_walked;
  ck_assert_uint_eq(mheap_scavenge(SIZE_MAX, BOUND_AGE_NS), 0);
  ck_assert_msg(read_stats().scavenge_walked == walked,
                "walked %zu page-map entries again with nothing old enough",
                read_stats().scavenge_walked - walked);
  ck_assert_uint_ge(mheap_scavenge(SIZE_MAX, 0), 2 * PAGE_SIZE);
  ck_assert(mheap_is_valid());
  span_free(kept);
}
END_TEST

START_TEST(test_background_scavenger_returns_freed_pages_by_itself) {
  size_t rss_full = fill_large_objects();
  size_t released_before = read_stats().released;
  scavenger_set_age(BACKGROUND_AGE_NS);
  free_large_objects();

  /* A run released while its neighbours were still being freed merges
   * with them and counts as unreleased until the next pass releases it
   * again, so wait for both signs. */
  uint64_t deadline = os_nanotime() + BACKGROUND_WAIT_NS;
  size_t rss = os_rss_bytes(), released = read_stats().released;
  while ((rss + SCAVENGE_MIN_DROP > rss_full || released < released_before + SCAVENGE_MIN_DROP) &&
         os_nanotime() < deadline) {
    sleep_ns(POLL_NS);
    rss = os_rss_bytes();
    released = read_stats().released;
  }
  ck_assert_msg(rss + SCAVENGE_MIN_DROP <= rss_full,
                "RSS %zu -> %zu within %llu ms: the scavenger did not release freed pages",
                rss_full, rss, (unsigned long long)(BACKGROUND_WAIT_NS / 1000000));
  ck_assert_msg(released >= released_before + SCAVENGE_MIN_DROP,
                "stats.released %zu -> %zu: the scavenger's releases are not counted",
                released_before, released);
  ck_assert(mheap_is_valid());
}
END_TEST

/* ---- large_gc ---- */

#define LARGE_GC_BYTES 100000
#define HIDE ((uintptr_t)0x5a5a5a5a5a5a5a5a) /* no root may name the object */

static void *collect_main(void *arg) {
  (void)arg;
  gc_collect();
  return NULL;
}

static void nap(void) { nanosleep(&(struct timespec){0, 100000}, NULL); }

/* Turn hold point h on, run fn(arg) on a new registered thread, and wait
 * (up to 10 s) until a thread holds at h; `not_reached` says what failed
 * to happen otherwise. */
static pthread_t start_held(struct test_hold *h, void *(*fn)(void *), void *arg, const char *not_reached) {
  test_hold_set(h, true);
  pthread_t t;
  ck_assert_int_eq(gc_pthread_create(&t, NULL, fn, arg), 0);
  for (int i = 0; !test_hold_is_holding(h); i++) {
    ck_assert_msg(i < 100000, "%s within 10 s", not_reached);
    nap();
  }
  return t;
}

static __attribute__((noinline)) uintptr_t hidden_large_object(struct mspan **s) {
  void *p = gc_alloc_atomic(LARGE_GC_BYTES);
  ck_assert_ptr_nonnull(p);
  *s = span_of_heap((uintptr_t)p);
  ck_assert(*s && span_is_large(*s));
  return (uintptr_t)p ^ HIDE;
}

/* gc_free of a large object takes its span's sweep (sweep_take_large_for_free)
 * before it releases the span.  Checking only that no sweeper held it let
 * a sweeper claim it in between, and sweep whatever object the reused
 * record held by then.  Here a collection's closing sweep is held back
 * (sweep_hold_before_span) with the span unswept; once taken, the sweepers leave
 * it alone even though nothing points to its object. */
START_TEST(test_gc_free_of_a_large_object_takes_its_sweep_from_the_sweepers) {
  struct mspan *s;
  uintptr_t hidden = hidden_large_object(&s);
  test_hold_set(&sweep_hold_before_span, true);
  pthread_t t;
  ck_assert_int_eq(gc_pthread_create(&t, NULL, collect_main, NULL), 0);
  for (int i = 0; !span_needs_sweep(s); i++) {
    ck_assert_msg(i < 100000, "no mark ended within 10 s");
    nap();
  }
  sweep_take_large_for_free(s);
  bool taken = !span_needs_sweep(s);
  test_hold_set(&sweep_hold_before_span, false);
  gc_blocking_begin();
  ck_assert_int_eq(pthread_join(t, NULL), 0);
  gc_blocking_end();
  ck_assert_msg(taken, "sweep_take_large_for_free left the span to the sweepers");
  ck_assert_msg(atomic_load_relaxed(&s->state) == MSPAN_IN_USE && span_of_heap(hidden ^ HIDE) == s,
                "a sweeper swept a span whose sweep was taken");
  gc_free((void *)(hidden ^ HIDE));
  ck_assert_ptr_null(span_of_heap(hidden ^ HIDE));
  ck_assert(mheap_is_valid());
}
END_TEST

static void never_runs(void *obj, void *data) {
  (void)obj;
  (void)data;
  ck_abort_msg("the finalizer of a freed object ran");
}

/* A large object freed while the collector marks keeps its span until the
 * sweep, allocated by its bits; gc_set_finalizer must still see it freed. */
START_TEST(test_large_object_freed_while_marking_gets_no_finalizer) {
  void *p = gc_alloc(LARGE_GC_BYTES);
  ck_assert_ptr_nonnull(p);
  pthread_t t = start_held(&collector_hold_after_setup, collect_main, NULL, "no mark started");
  gc_free(p);
  capture_begin();
  int r = gc_set_finalizer(p, never_runs, NULL);
  const char *report = capture_end();
  test_hold_set(&collector_hold_after_setup, false);
  gc_blocking_begin();
  ck_assert_int_eq(pthread_join(t, NULL), 0);
  gc_blocking_end();
  ck_assert_int_eq(r, EINVAL);
  ck_assert_msg(report != NULL, "gc_set_finalizer on a freed large object said nothing");
  gc_collect();
  gc_wait_finalizers();
}
END_TEST

#define RECYCLED_OBJECT_BYTES 1000 /* a noscan class no other test here uses */
#define RECYCLED_LIVE 4             /* fewer than the span holds */

static void *recycled_live[RECYCLED_LIVE]; /* a root: the objects stay marked */

static void *alloc_recycled_live(void *arg) {
  (void)arg;
  for (int i = 0; i < RECYCLED_LIVE; i++) recycled_live[i] = gc_alloc_atomic(RECYCLED_OBJECT_BYTES);
  return NULL; /* the thread's exit gives its span back to the class */
}

static void *sweep_as_large(void *arg) {
  sweep_large_span(arg, false);
  return NULL;
}

/* A heap walk reads a span's class before it claims the span, and the
 * background sweeper may find the record recycled as a small span by the
 * time it claims it (sweep_large_span).  It then gives the claim back and
 * leaves the span to the class.  Meanwhile a class's sweeper, which takes
 * listed spans without looking at sweepgen, may have swept it: giving the
 * claim back by a plain store of sg - 2 made the span unswept again, and
 * the second sweep, with the marks cleared by the first, freed every live
 * object in it.  Here the large sweep is held just after its claim of a
 * small span while the class sweeps the span (mcentral_cache_span); the
 * objects the span holds must all be allocated still afterwards. */
START_TEST(test_large_sweep_of_a_recycled_record_does_not_undo_a_class_sweep) {
  pthread_t t;
  ck_assert_int_eq(gc_pthread_create(&t, NULL, alloc_recycled_live, NULL), 0);
  gc_blocking_begin();
  ck_assert_int_eq(pthread_join(t, NULL), 0);
  gc_blocking_end();
  struct mspan *s = span_of_heap((uintptr_t)recycled_live[0]);
  ck_assert(s && !span_is_large(s));
  for (int i = 1; i < RECYCLED_LIVE; i++) ck_assert_ptr_eq(span_of_heap((uintptr_t)recycled_live[i]), s);
  ck_assert_uint_eq(atomic_load_relaxed(&s->cached_by), 0);

  /* A mark that finds the objects live, with every heap walk held before
   * it sweeps anything: s stays unswept, on its class's list. */
  sweep_finish();
  test_hold_set(&sweep_hold_before_span, true);
  pthread_t coll;
  ck_assert_int_eq(gc_pthread_create(&coll, NULL, collect_main, NULL), 0);
  for (int i = 0; !span_needs_sweep(s); i++) {
    ck_assert_msg(i < 100000, "no mark ended within 10 s");
    nap();
  }

  pthread_t large_sweeper =
      start_held(&sweep_hold_in_recycled_claim, sweep_as_large, s, "the large sweep did not claim the span");
  struct mcache *other = malloc(sizeof *other);
  ck_assert_ptr_nonnull(other);
  mcache_init(other);
  struct mspan *taken = mcentral_cache_span(other, s->spanclass, NULL);
  bool swept = !span_needs_sweep(s);
  if (taken) mcentral_uncache_span(taken);
  free(other);

  test_hold_set(&sweep_hold_in_recycled_claim, false);
  gc_blocking_begin();
  ck_assert_int_eq(pthread_join(large_sweeper, NULL), 0);
  gc_blocking_end();
  test_hold_set(&sweep_hold_before_span, false);
  gc_blocking_begin();
  ck_assert_int_eq(pthread_join(coll, NULL), 0);
  gc_blocking_end();

  ck_assert_msg(taken == s && swept, "set-up: the class did not sweep the span (took %p, not %p)", (void *)taken,
                (void *)s);
  for (int i = 0; i < RECYCLED_LIVE; i++)
    ck_assert_msg(gc_size(recycled_live[i]) > 0, "live object %d of the span was freed by a second sweep", i);
  ck_assert_uint_eq(atomic_load_relaxed(&s->sweepgen), atomic_load_relaxed(&mheap_sweepgen));
  ck_assert(mheap_is_valid());
  for (int i = 0; i < RECYCLED_LIVE; i++) {
    gc_free(recycled_live[i]);
    recycled_live[i] = NULL;
  }
}
END_TEST

/* The large sweep claims a small span (a stale look at a recycled
 * record), and before it looks at what the record has become, the class
 * sweeps the span (over the claim), finds it empty and frees it, and a
 * large allocation reuses the record.  The new large span is not the one
 * claimed: swept as if it were (unmarked, as a new span is), its live
 * object was freed.  Here the class's sweep and free are done by hand
 * under the class lock, with the large sweep held right after its claim. */
START_TEST(test_large_sweep_leaves_alone_a_record_reused_after_its_claim) {
  unsigned sc = sizeclass_of(3072);
  unsigned spc = spanclass_make(sc, false);
  struct mcentral *mc = &mcentrals[spc];
  uintptr_t sg = atomic_load_acquire(&mheap_sweepgen);
  lock_acquire(&mc->lock);
  struct mspan *s = mheap_alloc_span(sizeclass_npages[sc], spc);
  lock_release(&mc->lock);
  ck_assert_ptr_nonnull(s);
  atomic_store_release(&s->sweepgen, sg - 2); /* as a span the last mark left unswept */

  pthread_t claimer = start_held(&sweep_hold_after_claim, sweep_as_large, s, "the large sweep did not claim the span");
  ck_assert_uint_eq(atomic_load_relaxed(&s->sweepgen), sg - 1);
  lock_acquire(&mc->lock);
  atomic_store_release(&s->sweepgen, sg); /* what sweep_locked leaves */
  mheap_free_span(s);
  lock_release(&mc->lock);
  struct mspan *l = mheap_alloc_span(1, LARGE_NOSCAN);
  bool reused = l == s;
  test_hold_set(&sweep_hold_after_claim, false);
  gc_blocking_begin();
  ck_assert_int_eq(pthread_join(claimer, NULL), 0);
  gc_blocking_end();

  ck_assert_msg(reused, "set-up: the large span did not reuse the record (%p, not %p)", (void *)l, (void *)s);
  ck_assert_msg(atomic_load_acquire(&l->state) == MSPAN_IN_USE && atomic_load_relaxed(&l->has_freed) == 0,
                "the large sweep freed the span that reused the record it had claimed");
  ck_assert_uint_eq(atomic_load_relaxed(&l->sweepgen), sg);
  mheap_free_span(l);
  ck_assert(mheap_is_valid());
}
END_TEST

/* ---- sweepgen ---- */

#define FRESH_SPAN_BYTES 2500 /* of a size class no other test here uses */

static void *alloc_from_a_fresh_span(void *arg) {
  *(void **)arg = gc_alloc_atomic(FRESH_SPAN_BYTES);
  return NULL;
}

static void *collect_twice(void *arg) {
  (void)arg;
  gc_collect();
  gc_collect();
  return NULL;
}

/* The world stops anywhere, inside mheap_alloc_span too.  Marks that
 * ended between the moment a new span took its sweep generation and the
 * one it was published (after the heap walks that sweep had passed its
 * pages) left it behind: published at sg - 4, no sweeper ever took it
 * again, and its stale mark bits hid its objects' pointers from later
 * marks.  Now no mark starts or ends in between: two collections asked
 * for meanwhile wait, up to half a second here, and the span comes out
 * current. */
START_TEST(test_no_mark_ends_while_a_new_span_is_set_up) {
  void *obj = NULL;
  pthread_t alloc = start_held(&mheap_hold_before_publish, alloc_from_a_fresh_span, &obj,
                               "no span allocation reached the hold");
  pthread_t coll;
  uintptr_t sg_before = atomic_load_relaxed(&mheap_sweepgen);
  ck_assert_int_eq(gc_pthread_create(&coll, NULL, collect_twice, NULL), 0);
  for (int i = 0; i < 5000 && atomic_load_relaxed(&mheap_sweepgen) < sg_before + 4; i++) nap();
  uintptr_t sg_during = atomic_load_relaxed(&mheap_sweepgen);
  test_hold_set(&mheap_hold_before_publish, false);
  gc_blocking_begin();
  ck_assert_int_eq(pthread_join(alloc, NULL), 0);
  ck_assert_int_eq(pthread_join(coll, NULL), 0);
  gc_blocking_end();
  ck_assert_msg(sg_during == sg_before, "%zu marks ended while a new span was set up",
                (size_t)(sg_during - sg_before) / 2);
  ck_assert_ptr_nonnull(obj);
  struct mspan *s = span_of_heap((uintptr_t)obj);
  ck_assert_ptr_nonnull(s);
  ck_assert_uint_eq(atomic_load_relaxed(&s->sweepgen), atomic_load_relaxed(&mheap_sweepgen));
}
END_TEST

/* ---- runner ---- */

static TCase *tcase(const char *name) {
  TCase *tc = tcase_create(name);
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_set_timeout(tc, 60);
  return tc;
}

static Suite *mheap_suite(void) {
  Suite *s = suite_create("mheap");

  TCase *split = tcase("split");
  tcase_add_test(split, test_allocation_is_carved_from_front_of_run_and_rest_stays_free);
  tcase_add_test(split, test_consecutive_allocations_are_adjacent_in_one_run);
  suite_add_tcase(s, split);

  TCase *coalesce = tcase("coalesce");
  tcase_add_test(coalesce, test_two_freed_neighbours_coalesce_and_are_reused_whole);
  tcase_add_test(coalesce, test_free_coalesces_with_both_neighbours);
  tcase_add_test(coalesce, test_freed_span_is_reused_for_same_size);
  tcase_add_test(coalesce, test_free_run_is_split_again_after_coalescing);
  tcase_add_test(coalesce, test_reused_span_record_gets_an_incarnation_it_never_had);
  suite_add_tcase(s, coalesce);

  TCase *large = tcase("large");
  tcase_add_test(large, test_large_objects_get_spans_of_their_own);
  tcase_add_test(large, test_largest_small_object_is_not_large);
  tcase_add_test(large, test_freeing_large_object_returns_its_pages);
  suite_add_tcase(s, large);

  TCase *large_gc = tcase("large_gc");
  tcase_add_test(large_gc, test_gc_free_of_a_large_object_takes_its_sweep_from_the_sweepers);
  tcase_add_test(large_gc, test_large_object_freed_while_marking_gets_no_finalizer);
  tcase_add_test(large_gc, test_large_sweep_of_a_recycled_record_does_not_undo_a_class_sweep);
  tcase_add_test(large_gc, test_large_sweep_leaves_alone_a_record_reused_after_its_claim);
  suite_add_tcase(s, large_gc);

  TCase *sweepgen = tcase("sweepgen");
  tcase_add_test(sweepgen, test_no_mark_ends_while_a_new_span_is_set_up);
  suite_add_tcase(s, sweepgen);

  TCase *spanmap = tcase("spanmap");
  tcase_add_test(spanmap, test_every_page_of_in_use_span_maps_to_it);
  tcase_add_test(spanmap, test_span_walk_visits_each_in_use_span_once_at_its_first_page);
  tcase_add_test(spanmap, test_span_walk_under_churn_visits_each_lasting_span_once);
  tcase_add_test(spanmap, test_free_pages_are_no_heap_object_and_map_as_arena_says);
  tcase_add_test(spanmap, test_small_object_span_maps_all_pages_but_not_its_tail);
  suite_add_tcase(s, spanmap);

  TCase *zero = tcase("zero");
  tcase_add_test(zero, test_span_fresh_from_os_has_needzero_clear_and_reads_zero);
  tcase_add_test(zero, test_reused_span_has_needzero_set);
  tcase_add_test(zero, test_released_span_has_needzero_clear_and_reads_zero);
  suite_add_tcase(s, zero);

  TCase *scavenge = tcase("scavenge");
  tcase_add_test(scavenge, test_scavenge_returns_freed_pages_to_os);
  tcase_add_test(scavenge, test_scavenge_releases_a_long_run_in_chunks);
  tcase_add_test(scavenge, test_scavenge_in_steps_releases_every_free_span);
  tcase_add_test(scavenge, test_scavenge_leaves_recently_freed_pages_alone);
  tcase_add_test(scavenge, test_scavenge_skips_walks_until_a_span_can_be_old_enough);
  tcase_add_test(scavenge, test_overlapping_scavenge_walks_each_cover_the_whole_heap);
  tcase_add_test(scavenge, test_background_scavenger_returns_freed_pages_by_itself);
  suite_add_tcase(s, scavenge);

  return s;
}

int main(void) {
  SRunner *sr = srunner_create(mheap_suite());
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
