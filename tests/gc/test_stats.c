/*
 * test_stats.c: gc_get_stats and the MGC_TRACE lines against known
 * allocation volumes (public API only; suite "unit").
 *
 * Every test runs in its own child process (forced, even with CK_FORK=no)
 * and sets its MGC_* environment before gc_init, which reads it once.
 * MGC_GOGC=off: only gc_collect runs cycles, so between two gc_get_stats
 * calls nothing but the test allocates or frees, and the counts must move
 * by exactly what the test did:
 *
 *   counts     N objects of S bytes raise total_alloc_objects, heap_objects
 *              and by_size[class of S].alloc_objects by exactly N (bytes by
 *              N * class size) and nothing else; collecting them raises the
 *              free counts by exactly the objects gc_base no longer finds
 *              (at least 90% of N); gc_free counts at once, from the
 *              owning thread and from another, and frees held back by a
 *              thread count once across a collection; large objects count whole
 *              pages; heap_marked moves by the size of what is kept;
 *   invariants identities between fields (sums over classes, heap_sys =
 *              in use + idle, heap_alloc <= heap_live, the CPU fraction),
 *              and an old, smaller struct is filled only up to its size;
 *   trace      the MGC_TRACE=1 line and the MGC_TRACE=2 detail line are
 *              parsed and their numbers compared with gc_get_stats taken
 *              around the cycles (docs/trace.md).
 */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "capture.h"
#include "gctest.h"
#include "mgc.h"

#define MIB ((size_t)1 << 20)
#define NOBJ 20000
#define OBJ_SIZE 100           /* the 112-byte class */
#define NLARGE 20
#define LARGE_SIZE (100 * 1024) /* 13 pages of 8 KiB */
#define PAGE 8192
#define KEEP 30000
#define KEEP_SIZE 200          /* the 208-byte class */

static void init_env(const char *trace, const char *concurrent) {
  setenv("MGC_GOGC", "off", 1);
  unsetenv("MGC_MEMLIMIT"); /* a limit would start cycles of its own */
  setenv("MGC_TRACE", trace, 1);
  setenv("MGC_CONCURRENT", concurrent, 1);
  gc_init();
}

/* Index in by_size of the class that holds n bytes. */
static int class_of(const struct gc_stats *s, size_t n) {
  for (uint64_t i = 0; i < s->size_classes; i++)
    if (s->by_size[i].size >= n) return (int)i;
  ck_abort_msg("no size class holds %zu bytes", n);
  return -1;
}

/* Allocate n objects of size bytes; their addresses go to hidden[] only. */
static GCTEST_NOINLINE void alloc_dropped(uintptr_t *hidden, size_t n, size_t size, bool atomic) {
  for (size_t i = 0; i < n; i++) {
    void *p = atomic ? gc_alloc_atomic(size) : gc_alloc(size);
    GCTEST_REQUIRE(p != NULL, "allocation %zu failed", i);
    hidden[i] = hide(p);
  }
}

/* Only the class at index `only` moved, by (allocs, frees). */
static void check_class_deltas(const struct gc_stats *a, const struct gc_stats *b, int only, uint64_t allocs,
                               uint64_t frees) {
  for (uint64_t i = 0; i < b->size_classes; i++) {
    uint64_t da = b->by_size[i].alloc_objects - a->by_size[i].alloc_objects;
    uint64_t df = b->by_size[i].free_objects - a->by_size[i].free_objects;
    ck_assert_msg(da == ((int)i == only ? allocs : 0), "class %llu (%llu bytes): %llu allocated, expected %llu",
                  (unsigned long long)i, (unsigned long long)b->by_size[i].size, (unsigned long long)da,
                  (unsigned long long)((int)i == only ? allocs : 0));
    ck_assert_msg(df == ((int)i == only ? frees : 0), "class %llu (%llu bytes): %llu freed, expected %llu",
                  (unsigned long long)i, (unsigned long long)b->by_size[i].size, (unsigned long long)df,
                  (unsigned long long)((int)i == only ? frees : 0));
  }
}

START_TEST(test_stats_count_allocation_and_collection_of_one_class) {
  init_env("0", "1");
  uintptr_t *hidden = malloc(NOBJ * sizeof(uintptr_t));
  ck_assert_ptr_nonnull(hidden);
  collect_clean();
  struct gc_stats s0 = stats_now();
  int c = class_of(&s0, OBJ_SIZE);
  uint64_t size = s0.by_size[c].size;
  ck_assert_uint_eq(size, 112);

  alloc_dropped(hidden, NOBJ, OBJ_SIZE, false);
  struct gc_stats s1 = stats_now();
  ck_assert_uint_eq(s1.total_alloc_objects - s0.total_alloc_objects, NOBJ);
  ck_assert_uint_eq(s1.total_alloc_bytes - s0.total_alloc_bytes, NOBJ * size);
  ck_assert_uint_eq(s1.heap_objects - s0.heap_objects, NOBJ);
  ck_assert_uint_eq(s1.heap_alloc - s0.heap_alloc, NOBJ * size);
  ck_assert_uint_eq(s1.total_free_objects, s0.total_free_objects);
  ck_assert_uint_eq(s1.total_free_bytes, s0.total_free_bytes);
  check_class_deltas(&s0, &s1, c, NOBJ, 0);

  collect_clean();
  struct gc_stats s2 = stats_now();
  size_t dead = count_reclaimed(hidden, NOBJ);
  ck_assert_uint_ge(dead, NOBJ * GCTEST_RECLAIM_PERCENT / 100);
  ck_assert_uint_eq(s2.total_free_objects - s1.total_free_objects, dead);
  ck_assert_uint_eq(s2.total_free_bytes - s1.total_free_bytes, dead * size);
  ck_assert_uint_eq(s2.total_alloc_objects, s1.total_alloc_objects);
  ck_assert_uint_eq(s1.heap_objects - s2.heap_objects, dead);
  ck_assert_uint_eq(s1.heap_alloc - s2.heap_alloc, dead * size);
  check_class_deltas(&s1, &s2, c, 0, dead);
  ck_assert_uint_eq(s2.cycles - s1.cycles, 2);
  ck_assert_uint_eq(s2.forced_cycles - s1.forced_cycles, 2);
  free(hidden);
}
END_TEST

struct free_job {
  uintptr_t *hidden;
  size_t n;
};

static void *free_all(void *arg) {
  struct free_job *j = arg;
  for (size_t i = 0; i < j->n; i++) gc_free(unhide(j->hidden[i]));
  return NULL;
}

START_TEST(test_stats_count_gc_free_at_once_from_any_thread) {
  init_env("0", "1");
  uintptr_t *hidden = malloc(NOBJ * sizeof(uintptr_t));
  ck_assert_ptr_nonnull(hidden);
  struct gc_stats s0 = stats_now();
  int c = class_of(&s0, OBJ_SIZE);
  uint64_t size = s0.by_size[c].size;

  /* Freed by the allocating thread, whose cached spans hold them. */
  alloc_dropped(hidden, NOBJ, OBJ_SIZE, true);
  struct free_job job = {hidden, NOBJ};
  free_all(&job);
  struct gc_stats s1 = stats_now();
  ck_assert_uint_eq(s1.total_alloc_objects - s0.total_alloc_objects, NOBJ);
  ck_assert_uint_eq(s1.total_free_objects - s0.total_free_objects, NOBJ);
  ck_assert_uint_eq(s1.total_free_bytes - s0.total_free_bytes, NOBJ * size);
  ck_assert_uint_eq(s1.heap_objects, s0.heap_objects);
  ck_assert_uint_eq(s1.heap_alloc, s0.heap_alloc);
  check_class_deltas(&s0, &s1, c, NOBJ, NOBJ);

  /* Freed by another thread. */
  alloc_dropped(hidden, NOBJ, OBJ_SIZE, true);
  pthread_t t;
  ck_assert_int_eq(gc_pthread_create(&t, NULL, free_all, &job), 0);
  ck_assert_int_eq(pthread_join(t, NULL), 0);
  struct gc_stats s2 = stats_now();
  ck_assert_uint_eq(s2.total_alloc_objects - s1.total_alloc_objects, NOBJ);
  ck_assert_uint_eq(s2.total_free_objects - s1.total_free_objects, NOBJ);
  ck_assert_uint_eq(s2.heap_objects, s1.heap_objects);
  check_class_deltas(&s1, &s2, c, NOBJ, NOBJ);

  /* A collection while this thread still caches the spans those remote
   * frees hit: the sweep applies them, and nothing may be counted twice
   * or taken back. */
  gc_collect();
  struct gc_stats s3 = stats_now();
  ck_assert_uint_eq(s3.total_alloc_objects, s2.total_alloc_objects);
  ck_assert_uint_eq(s3.total_free_objects, s2.total_free_objects);
  check_class_deltas(&s2, &s3, c, 0, 0);
  free(hidden);
}
END_TEST

/* Frees a thread holds back (alloc/mcache.c) count at once, and still
 * once after a collection: a mark drops them (it takes the objects as
 * allocated), and the sweep that follows frees and counts the ones that are
 * dead.  Statistics must then stop counting the held entry, though its
 * thread, asleep, has not touched it since. */
#define HELD_OBJECTS 40 /* fewer than one span of the class holds */

struct held_job {
  uintptr_t hidden[HELD_OBJECTS];
  pthread_mutex_t mu;
  pthread_cond_t cv;
  bool freed, may_exit;
};

static void *alloc_held_objects(void *arg) {
  struct held_job *j = arg;
  alloc_dropped(j->hidden, HELD_OBJECTS, OBJ_SIZE, true);
  return NULL; /* exiting gives the span back: another thread's frees are held */
}

static void *free_and_sleep(void *arg) {
  struct held_job *j = arg;
  for (size_t i = 0; i < HELD_OBJECTS; i++) gc_free(unhide(j->hidden[i]));
  gc_blocking_begin();
  pthread_mutex_lock(&j->mu);
  j->freed = true;
  pthread_cond_broadcast(&j->cv);
  while (!j->may_exit) pthread_cond_wait(&j->cv, &j->mu);
  pthread_mutex_unlock(&j->mu);
  gc_blocking_end();
  return NULL;
}

START_TEST(test_stats_count_held_frees_once_across_a_collection) {
  init_env("0", "1");
  static struct held_job job = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};
  collect_clean();
  struct gc_stats s0 = stats_now();
  int c = class_of(&s0, OBJ_SIZE);
  pthread_t t;
  ck_assert_int_eq(gc_pthread_create(&t, NULL, alloc_held_objects, &job), 0);
  ck_assert_int_eq(pthread_join(t, NULL), 0);
  ck_assert_int_eq(gc_pthread_create(&t, NULL, free_and_sleep, &job), 0);
  gc_blocking_begin();
  pthread_mutex_lock(&job.mu);
  while (!job.freed) pthread_cond_wait(&job.cv, &job.mu);
  pthread_mutex_unlock(&job.mu);
  gc_blocking_end();
  struct gc_stats s1 = stats_now();
  check_class_deltas(&s0, &s1, c, HELD_OBJECTS, HELD_OBJECTS);

  collect_clean();
  struct gc_stats s2 = stats_now();
  size_t dead = count_reclaimed(job.hidden, HELD_OBJECTS);
  ck_assert_uint_ge(dead, HELD_OBJECTS * GCTEST_RECLAIM_PERCENT / 100);
  /* The held frees no longer count; the sweep counted the dead objects. */
  ck_assert_msg(s2.by_size[c].free_objects + HELD_OBJECTS == s1.by_size[c].free_objects + dead,
                "%llu frees of the class counted in all, expected %llu (the dead objects)",
                (unsigned long long)(s2.by_size[c].free_objects - s0.by_size[c].free_objects),
                (unsigned long long)(dead));

  pthread_mutex_lock(&job.mu);
  job.may_exit = true;
  pthread_cond_broadcast(&job.cv);
  pthread_mutex_unlock(&job.mu);
  ck_assert_int_eq(pthread_join(t, NULL), 0);
  struct gc_stats s3 = stats_now();
  check_class_deltas(&s2, &s3, c, 0, 0); /* its exit drops them uncounted */
}
END_TEST

START_TEST(test_stats_count_large_objects_in_whole_pages) {
  init_env("0", "1");
  uintptr_t hidden[NLARGE];
  const uint64_t bytes = (LARGE_SIZE + PAGE - 1) / PAGE * PAGE;
  struct gc_stats s0 = stats_now();
  alloc_dropped(hidden, NLARGE, LARGE_SIZE, true);
  struct gc_stats s1 = stats_now();
  ck_assert_uint_eq(s1.large_alloc_objects - s0.large_alloc_objects, NLARGE);
  ck_assert_uint_eq(s1.large_alloc_bytes - s0.large_alloc_bytes, NLARGE * bytes);
  ck_assert_uint_eq(s1.total_alloc_objects - s0.total_alloc_objects, NLARGE);
  ck_assert_uint_eq(s1.total_alloc_bytes - s0.total_alloc_bytes, NLARGE * bytes);
  ck_assert_uint_eq(s1.heap_spans - s0.heap_spans, NLARGE);
  ck_assert_uint_eq(s1.heap_in_use - s0.heap_in_use, NLARGE * bytes);
  check_class_deltas(&s0, &s1, -1, 0, 0);

  collect_clean();
  struct gc_stats s2 = stats_now();
  size_t dead = count_reclaimed(hidden, NLARGE);
  ck_assert_uint_ge(dead, NLARGE * GCTEST_RECLAIM_PERCENT / 100);
  ck_assert_uint_eq(s2.large_free_objects - s1.large_free_objects, dead);
  ck_assert_uint_eq(s2.large_free_bytes - s1.large_free_bytes, dead * bytes);
  ck_assert_uint_eq(s2.total_free_objects - s1.total_free_objects, dead);
  ck_assert_uint_eq(s2.total_free_bytes - s1.total_free_bytes, dead * bytes);
  ck_assert_uint_eq(s1.heap_spans - s2.heap_spans, dead);
  ck_assert_uint_eq(s1.heap_in_use - s2.heap_in_use, dead * bytes);
}
END_TEST

static void *volatile *kept;

START_TEST(test_stats_heap_marked_is_the_kept_volume) {
  init_env("0", "1");
  kept = malloc(KEEP * sizeof(void *));
  ck_assert_ptr_nonnull((void *)kept);
  ck_assert_int_eq(gc_add_roots((void *)kept, KEEP * sizeof(void *)), 0);
  memset((void *)kept, 0, KEEP * sizeof(void *));
  collect_clean();
  struct gc_stats s0 = stats_now();
  uint64_t size = s0.by_size[class_of(&s0, KEEP_SIZE)].size;
  for (size_t i = 0; i < KEEP; i++) kept[i] = gc_alloc(KEEP_SIZE);
  collect_clean();
  struct gc_stats s1 = stats_now();
  uint64_t want = KEEP * size, got = s1.heap_marked - s0.heap_marked;
  /* Conservative roots may keep a few more; nothing kept may be missed. */
  ck_assert_msg(got >= want && got <= want + want / 50, "heap_marked rose by %llu for %llu bytes kept",
                (unsigned long long)got, (unsigned long long)want);
  ck_assert_uint_ge(s1.heap_alloc, s1.heap_marked - s0.heap_marked);
  memset((void *)kept, 0, KEEP * sizeof(void *));
  collect_clean();
  struct gc_stats s2 = stats_now();
  ck_assert_msg(s2.heap_marked <= s0.heap_marked + want / 50, "heap_marked %llu after dropping, %llu before",
                (unsigned long long)s2.heap_marked, (unsigned long long)s0.heap_marked);
}
END_TEST

START_TEST(test_stats_fields_agree_with_each_other) {
  init_env("0", "1");
  uintptr_t *hidden = malloc(NOBJ * sizeof(uintptr_t));
  ck_assert_ptr_nonnull(hidden);
  for (size_t sz = 8; sz <= 40000; sz = sz * 3 / 2 + 8) alloc_dropped(hidden, 200, sz, (sz & 8) != 0);
  gc_collect();
  alloc_dropped(hidden, NOBJ, 48, false);
  struct gc_stats s = stats_now();
  ck_assert_uint_eq(s.size, sizeof(s));
  ck_assert_uint_eq(s.size_classes, 72);
  ck_assert_uint_eq(s.by_size[0].size, 8);
  ck_assert_uint_eq(s.by_size[s.size_classes - 1].size, 32768);
  uint64_t objs = s.large_alloc_objects, bytes = s.large_alloc_bytes;
  uint64_t frees = s.large_free_objects, free_bytes = s.large_free_bytes;
  for (uint64_t i = 0; i < s.size_classes; i++) {
    if (i) ck_assert_uint_gt(s.by_size[i].size, s.by_size[i - 1].size);
    ck_assert_uint_le(s.by_size[i].free_objects, s.by_size[i].alloc_objects);
    objs += s.by_size[i].alloc_objects;
    bytes += s.by_size[i].alloc_objects * s.by_size[i].size;
    frees += s.by_size[i].free_objects;
    free_bytes += s.by_size[i].free_objects * s.by_size[i].size;
  }
  for (uint64_t i = s.size_classes; i < GC_SIZE_CLASSES; i++) ck_assert_uint_eq(s.by_size[i].size, 0);
  ck_assert_uint_eq(objs, s.total_alloc_objects);
  ck_assert_uint_eq(bytes, s.total_alloc_bytes);
  ck_assert_uint_eq(frees, s.total_free_objects);
  ck_assert_uint_eq(free_bytes, s.total_free_bytes);
  ck_assert_uint_eq(s.heap_objects, s.total_alloc_objects - s.total_free_objects);
  ck_assert_uint_eq(s.heap_alloc, s.total_alloc_bytes - s.total_free_bytes);
  ck_assert_uint_le(s.heap_alloc, s.heap_live);
  ck_assert_uint_le(s.heap_alloc, s.heap_in_use);
  ck_assert_uint_eq(s.heap_in_use + s.heap_idle, s.heap_sys);
  ck_assert_uint_le(s.heap_released, s.heap_idle);
  ck_assert_uint_ge(s.heap_spans, 1);
  ck_assert_uint_gt(s.uptime_ns, 0);
  ck_assert_uint_gt(s.process_cpu_ns, 0);
  ck_assert_uint_le(s.gc_cpu_ns, s.process_cpu_ns);
  ck_assert_double_eq_tol(s.gc_cpu_fraction, (double)s.gc_cpu_ns / (double)s.process_cpu_ns, 1e-9);
  free(hidden);
}
END_TEST

START_TEST(test_stats_fill_only_an_old_smaller_struct) {
  init_env("0", "1");
  gc_collect();
  struct gc_stats s;
  memset(&s, 0xab, sizeof(s));
  size_t old = offsetof(struct gc_stats, total_free_bytes);
  s.size = old;
  ck_assert_int_eq(gc_get_stats(&s), 0);
  ck_assert_uint_eq(s.size, old);
  ck_assert_uint_eq(s.cycles, 1);
  const unsigned char *tail = (const unsigned char *)&s + old;
  for (size_t i = 0; i < sizeof(s) - old; i++) ck_assert_uint_eq(tail[i], 0xab);
  s.size = 4;
  ck_assert_int_eq(gc_get_stats(&s), EINVAL);
  ck_assert_int_eq(gc_get_stats(NULL), EINVAL);
}
END_TEST

/* A program built when by_size held fewer entries (68) gets the classes
 * its struct has room for: size_classes says how many, and nothing is
 * written past its end. */
START_TEST(test_stats_by_size_of_an_older_build_is_filled_to_its_capacity) {
  init_env("0", "1");
  enum { OLD_CAPACITY = 68 };
  struct gc_stats full = stats_now();
  ck_assert_uint_gt(full.size_classes, OLD_CAPACITY); /* or the test shows nothing */
  struct gc_stats s;
  memset(&s, 0xab, sizeof(s));
  size_t old = offsetof(struct gc_stats, by_size) + OLD_CAPACITY * sizeof(s.by_size[0]);
  s.size = old;
  ck_assert_int_eq(gc_get_stats(&s), 0);
  ck_assert_uint_eq(s.size, old);
  ck_assert_uint_eq(s.size_classes, OLD_CAPACITY);
  ck_assert_uint_eq(s.by_size[0].size, 8);
  ck_assert_uint_eq(s.by_size[OLD_CAPACITY - 1].size, full.by_size[OLD_CAPACITY - 1].size);
  const unsigned char *tail = (const unsigned char *)&s + old;
  for (size_t i = 0; i < sizeof(s) - old; i++) ck_assert_uint_eq(tail[i], 0xab);
  /* Room for no entry at all: none. */
  s.size = offsetof(struct gc_stats, by_size);
  ck_assert_int_eq(gc_get_stats(&s), 0);
  ck_assert_uint_eq(s.size_classes, 0);
}
END_TEST

/* memory_limit follows gc_set_memory_limit, not only MGC_MEMLIMIT. */
START_TEST(test_stats_memory_limit_follows_the_setter) {
  init_env("0", "1");
  ck_assert_uint_eq(stats_now().memory_limit, UINT64_MAX);
  ck_assert_uint_eq(gc_set_memory_limit((size_t)300 << 20), SIZE_MAX);
  ck_assert_uint_eq(stats_now().memory_limit, (uint64_t)300 << 20);
  gc_set_memory_limit(SIZE_MAX);
  ck_assert_uint_eq(stats_now().memory_limit, UINT64_MAX);
}
END_TEST

/* ---- trace lines ---- */

/* The line starting with prefix, copied into out. */
static bool find_line(const char *text, const char *prefix, char *out, size_t cap) {
  size_t n = strlen(prefix);
  for (const char *p = text; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL) {
    if (strncmp(p, prefix, n) != 0) continue;
    const char *end = strchr(p, '\n');
    size_t len = end ? (size_t)(end - p) : strlen(p);
    if (len >= cap) len = cap - 1;
    memcpy(out, p, len);
    out[len] = '\0';
    return true;
  }
  return false;
}

static void fmt_ms(char *buf, size_t cap, uint64_t ns) { snprintf(buf, cap, "%.3f", (double)ns / 1e6); }
static void fmt_mb(char *buf, size_t cap, uint64_t b) { snprintf(buf, cap, "%.1f", (double)b / (double)MIB); }

/* The first line of cycle `n`, checked against s_before (taken just before
 * the cycle's gc_collect) and s_after (just after). */
static void check_trace_line(const char *text, uint64_t n, const struct gc_stats *before,
                             const struct gc_stats *after, bool concurrent) {
  char prefix[32], line[512];
  snprintf(prefix, sizeof(prefix), "gc %llu @", (unsigned long long)n);
  ck_assert_msg(find_line(text, prefix, line, sizeof(line)), "no trace line for cycle %llu in:\n%s",
                (unsigned long long)n, text);
  double t, cpu;
  char a[32], b[32], c[32], x[32], y[32], z[32], g[32];
  unsigned long long num;
  unsigned workers;
  int got = sscanf(line, "gc %llu @%lfs %lf%%: %31[0-9.]+%31[0-9.]+%31[0-9.] ms clock, %31[0-9.]->%31[0-9.]->%31[0-9.] "
                   "MB, %31[0-9.inf] MB goal, %u workers",
                   &num, &t, &cpu, a, b, c, x, y, z, g, &workers);
  ck_assert_msg(got == 11, "trace line has the wrong shape (%d fields): %s", got, line);
  ck_assert_uint_eq(num, after->cycles);
  ck_assert_double_le(t, (double)after->uptime_ns / 1e9 + 0.0005); /* printed to the ms */
  ck_assert_double_ge(t, (double)before->uptime_ns / 1e9 - 0.0005);
  ck_assert_double_ge(cpu, 0.0);
  ck_assert_double_le(cpu, 100.0);
  ck_assert_uint_ge(workers, 1);
  ck_assert_msg(strstr(line, "(forced)") != NULL, "gc_collect's cycle not flagged: %s", line);
  /* Stops: the first is the setup stop, the rest termination stops. */
  uint64_t first = before->pauses, stops = after->pauses - before->pauses, term = 0;
  ck_assert_uint_le(stops, GC_PAUSE_HISTORY);
  for (uint64_t k = first + 1; k < after->pauses; k++) term += after->pause_ns[k % GC_PAUSE_HISTORY];
  char want[32];
  fmt_ms(want, sizeof(want), after->pause_ns[first % GC_PAUSE_HISTORY]);
  ck_assert_str_eq(a, want);
  fmt_ms(want, sizeof(want), term);
  ck_assert_str_eq(c, want);
  if (!concurrent) {
    ck_assert_uint_eq(stops, 1);
    ck_assert_str_eq(b, "0.000");
    ck_assert_msg(strstr(line, "(stw)") != NULL, "stopped-world cycle not flagged: %s", line);
  } else {
    ck_assert_uint_ge(stops, 2);
  }
  /* X: heap_live at the start (no allocation since before). */
  fmt_mb(want, sizeof(want), before->heap_live);
  ck_assert_str_eq(x, want);
  fmt_mb(want, sizeof(want), after->heap_marked);
  ck_assert_str_eq(z, want);
  /* GOGC off without a limit: no goal, printed as inf. */
  if (after->heap_goal == UINT64_MAX) snprintf(want, sizeof(want), "inf");
  else fmt_mb(want, sizeof(want), after->heap_goal);
  ck_assert_str_eq(g, want);
}

struct detail {
  char setup[32], term[32], cpu[32], assist[32], assist_wall[32], assist_max[32];
  unsigned stops;
  unsigned long long assists;
  unsigned long long since, allocs, frees, in_use, spans;
};

static struct detail parse_detail(const char *text, uint64_t n) {
  char prefix[32], line[1024];
  snprintf(prefix, sizeof(prefix), "gc %llu detail: ", (unsigned long long)n);
  ck_assert_msg(find_line(text, prefix, line, sizeof(line)), "no detail line for cycle %llu in:\n%s",
                (unsigned long long)n, text);
  struct detail d;
  double wait, p, m, e, h, amb, fmb, umb, pin, pidle, prel;
  unsigned long eph;
  unsigned long long num;
  int got = sscanf(line,
                   "gc %llu detail: stops %31[0-9.]+%31[0-9.] ms, %u termination stops, longest stop wait %lf ms; "
                   "clock %lf+%lf+%lf ms; cpu %31[0-9.] ms, assist %31[0-9.] ms; %llu assists held threads %31[0-9.] ms, "
                   "longest %31[0-9.] ms; heap %lf MB at mark start, "
                   "%lu ephemerons cleared; since gc %llu: %llu objects (%lf MB) allocated, "
                   "%llu objects (%lf MB) freed, %llu objects (%lf MB) in use; "
                   "pages %lf MB in use, %lf MB idle, %lf MB released, %llu spans",
                   &num, d.setup, d.term, &d.stops, &wait, &p, &m, &e, d.cpu, d.assist, &d.assists, d.assist_wall,
                   d.assist_max, &h, &eph, &d.since,
                   &d.allocs, &amb, &d.frees, &fmb, &d.in_use, &umb, &pin, &pidle, &prel, &d.spans);
  ck_assert_msg(got == 26, "detail line has the wrong shape (%d fields): %s", got, line);
  ck_assert_uint_eq(num, n);
  ck_assert_uint_eq(d.since, n - 1);
  return d;
}

static void check_trace(bool concurrent) {
  uintptr_t *hidden = malloc(NOBJ * sizeof(uintptr_t));
  ck_assert_ptr_nonnull(hidden);
  struct capture_text cap;
  capture_text_begin(&cap);
  struct gc_stats sa = stats_now();
  gc_collect();                                   /* cycle 1 */
  struct gc_stats s0 = stats_now();
  alloc_dropped(hidden, NOBJ, OBJ_SIZE, false);
  clobber_stack();
  struct gc_stats s1 = stats_now();
  gc_collect();                                   /* cycle 2: finds them dead */
  struct gc_stats s2 = stats_now();
  gc_collect();                                   /* cycle 3: counts their frees */
  struct gc_stats s3 = stats_now();
  char *text = capture_text_end(&cap);
  ck_assert_uint_eq(s3.cycles, 3);

  check_trace_line(text, 1, &sa, &s0, concurrent);
  check_trace_line(text, 2, &s1, &s2, concurrent);
  check_trace_line(text, 3, &s2, &s3, concurrent);

  /* Cycle 2 counts from cycle 1's end (= sa: nothing was allocated or
   * freed before cycle 1) to its own end (= s1: nothing changes between
   * s1 and the end of marking). */
  struct detail d2 = parse_detail(text, 2);
  ck_assert_uint_eq(d2.allocs, s1.total_alloc_objects - sa.total_alloc_objects);
  ck_assert_uint_ge(d2.allocs, NOBJ);
  ck_assert_uint_eq(d2.frees, s1.total_free_objects - sa.total_free_objects);
  ck_assert_uint_eq(d2.in_use, s1.heap_objects);
  ck_assert_uint_eq(d2.spans, s1.heap_spans);
  /* Cycle 3: the objects dropped were freed by the sweep after cycle 2,
   * which gc_collect finished before s2. */
  struct detail d3 = parse_detail(text, 3);
  ck_assert_uint_eq(d3.allocs, 0);
  ck_assert_uint_eq(d3.frees, s2.total_free_objects - s1.total_free_objects);
  ck_assert_uint_ge(d3.frees, NOBJ * GCTEST_RECLAIM_PERCENT / 100);
  ck_assert_uint_eq(d3.in_use, s2.heap_objects);
  ck_assert_uint_eq(d3.spans, s2.heap_spans);
  /* Stops and CPU of cycle 3, against the pause ring and the CPU totals. */
  char want[32];
  ck_assert_uint_eq(d3.stops, s3.pauses - s2.pauses - 1);
  fmt_ms(want, sizeof(want), s3.pause_ns[s2.pauses % GC_PAUSE_HISTORY]);
  ck_assert_str_eq(d3.setup, want);
  fmt_ms(want, sizeof(want), s3.gc_cpu_ns - s2.gc_cpu_ns);
  ck_assert_str_eq(d3.cpu, want);
  fmt_ms(want, sizeof(want), s3.assist_cpu_ns - s2.assist_cpu_ns);
  ck_assert_str_eq(d3.assist, want);
  ck_assert_uint_eq(d3.assists, s3.assists - s2.assists);
  fmt_ms(want, sizeof(want), s3.assist_wall_ns - s2.assist_wall_ns);
  ck_assert_str_eq(d3.assist_wall, want);
  fmt_ms(want, sizeof(want), s3.cycle_assist_max_ns[(3 - 1) % GC_PAUSE_HISTORY]);
  ck_assert_str_eq(d3.assist_max, want);
  free(text);
  free(hidden);
}

START_TEST(test_trace_lines_match_stats_concurrent) {
  init_env("2", "1");
  check_trace(true);
}
END_TEST

START_TEST(test_trace_lines_match_stats_stopped_world) {
  init_env("2", "0");
  check_trace(false);
}
END_TEST

START_TEST(test_trace_level_one_prints_no_detail) {
  init_env("1", "1");
  struct capture_text cap;
  capture_text_begin(&cap);
  gc_collect();
  char *text = capture_text_end(&cap);
  char line[512];
  ck_assert(find_line(text, "gc 1 @", line, sizeof(line)));
  ck_assert_msg(strstr(text, "detail") == NULL, "MGC_TRACE=1 printed a detail line:\n%s", text);
  free(text);
}
END_TEST

static Suite *stats_suite(void) {
  Suite *s = suite_create("stats");
  TCase *tc = tcase_create("counts");
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, test_stats_count_allocation_and_collection_of_one_class);
  tcase_add_test(tc, test_stats_count_gc_free_at_once_from_any_thread);
  tcase_add_test(tc, test_stats_count_held_frees_once_across_a_collection);
  tcase_add_test(tc, test_stats_count_large_objects_in_whole_pages);
  tcase_add_test(tc, test_stats_heap_marked_is_the_kept_volume);
  suite_add_tcase(s, tc);
  tc = tcase_create("invariants");
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, test_stats_fields_agree_with_each_other);
  tcase_add_test(tc, test_stats_fill_only_an_old_smaller_struct);
  tcase_add_test(tc, test_stats_by_size_of_an_older_build_is_filled_to_its_capacity);
  tcase_add_test(tc, test_stats_memory_limit_follows_the_setter);
  suite_add_tcase(s, tc);
  tc = tcase_create("trace");
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, test_trace_lines_match_stats_concurrent);
  tcase_add_test(tc, test_trace_lines_match_stats_stopped_world);
  tcase_add_test(tc, test_trace_level_one_prints_no_detail);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) { return run_suite_in_children(stats_suite()); } /* each test sets its own MGC_* first */
