/*
 * test_alloc_api.c: the allocation half of the public API (include/mgc.h),
 * through that header only.
 *
 * Concerns, one TCase each:
 *   zeroing    gc_alloc memory is zero, also when it reuses freed memory
 *              (freed by the same thread or by another one);
 *   base_size  gc_base and gc_size for every byte of an object of every
 *              size class, scanned and atomic, and of large objects;
 *              addresses mgc never handed out have no base and no size;
 *   realloc    gc_realloc keeps contents and kind, zeroes a scanned
 *              object's new tail, NULL allocates, 0 frees; gc_strdup.
 *
 * Every size class is reached without knowing the table: allocate n bytes,
 * ask gc_size, and go on with gc_size + 1, until SMALL_MAX.
 *
 * Objects the tests hold live in static arrays or on the stack, where a
 * conservative collector finds them.
 */
#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mgc.h"

#define KIB ((size_t)1 << 10)
#define MIB ((size_t)1 << 20)
#define SMALL_MAX (32 * KIB)   /* largest small object (docs/internals.md) */
#define TINY_MAX 16            /* atomic objects up to this are packed */
#define MAX_KEPT 4096
#define FILL 0xAA

static void *kept[MAX_KEPT];
static size_t nkept;
static int static_word;

/* ---- helpers ---- */

static void keep(void *p) {
  ck_assert_msg(nkept < MAX_KEPT, "test keeps too many objects");
  kept[nkept++] = p;
}

static bool is_all(const void *p, size_t n, unsigned char v) {
  const unsigned char *b = p;
  for (size_t i = 0; i < n; i++)
    if (b[i] != v) return false;
  return true;
}

static void fill_pattern(void *p, size_t n, unsigned seed) {
  unsigned char *b = p;
  for (size_t i = 0; i < n; i++) b[i] = (unsigned char)(seed + i * 31 + (i >> 8));
}

static bool has_pattern(const void *p, size_t n, unsigned seed) {
  const unsigned char *b = p;
  for (size_t i = 0; i < n; i++)
    if (b[i] != (unsigned char)(seed + i * 31 + (i >> 8))) return false;
  return true;
}

/* gc_alloc(n) until it returns `want` (keeping the others); NULL if it
 * does not within `tries`. */
static void *alloc_until(size_t n, void *want, size_t tries) {
  for (size_t i = 0; i < tries; i++) {
    void *q = gc_alloc(n);
    ck_assert(q != NULL);
    if (q == want) return q;
    keep(q);
  }
  return NULL;
}

static void *free_main(void *p) {
  gc_thread_register();
  gc_free(p);
  gc_thread_unregister();
  return NULL;
}

static void free_from_other_thread(void *p) {
  pthread_t t;
  ck_assert_int_eq(pthread_create(&t, NULL, free_main, p), 0);
  ck_assert_int_eq(pthread_join(t, NULL), 0);
}

static void setup(void) { gc_init(); }

static void teardown(void) {
  for (size_t i = 0; i < nkept; i++) gc_free(kept[i]);
  memset(kept, 0, sizeof(kept));
  nkept = 0;
}

/* ---- zeroing ---- */

START_TEST(test_alloc_returns_zeroed_memory) {
  static const size_t sizes[] = {0, 1, 8, 24, 100, 1000, 5000, SMALL_MAX, SMALL_MAX + 1, 1 * MIB};
  for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
    void *p = gc_alloc(sizes[i]);
    ck_assert(p != NULL);
    keep(p);
    ck_assert_msg(is_all(p, sizes[i], 0), "gc_alloc(%zu) not zeroed", sizes[i]);
  }
}
END_TEST

START_TEST(test_alloc_returns_zeroed_memory_when_reusing_freed_memory) {
  static const size_t sizes[] = {8, 24, 100, 1000, 5000, SMALL_MAX, 40000, 1 * MIB};
  for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
    size_t n = sizes[i];
    void *p = gc_alloc(n);
    ck_assert(p != NULL);
    memset(p, FILL, n);
    gc_free(p);
    void *q = alloc_until(n, p, n > SMALL_MAX ? 64 : 2048);
    ck_assert_msg(q != NULL, "freed %zu-byte object at %p never handed out again", n, p);
    keep(q);
    ck_assert_msg(is_all(q, n, 0), "reused %zu-byte object at %p holds old data", n, q);
  }
}
END_TEST

/* The freed object shares a span with a live one the allocating thread
 * is still using, so the span is reused rather than returned. */
START_TEST(test_alloc_returns_zeroed_memory_when_reusing_memory_freed_by_another_thread) {
  static const size_t sizes[] = {48, 3000, 20000};
  for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
    size_t n = sizes[i];
    void *x = gc_alloc(n), *y = gc_alloc(n);
    ck_assert(x && y);
    keep(y);
    memset(x, FILL, n);
    free_from_other_thread(x);
    void *q = alloc_until(n, x, 2048);
    ck_assert_msg(q != NULL, "%zu-byte object freed by another thread never handed out again", n);
    keep(q);
    ck_assert_msg(is_all(q, n, 0), "reused %zu-byte object at %p (freed by another thread) holds old data",
                  n, q);
  }
}
END_TEST

START_TEST(test_alloc_of_zero_bytes_returns_distinct_objects) {
  void *a = gc_alloc(0), *b = gc_alloc(0);
  ck_assert(a && b);
  ck_assert_ptr_ne(a, b);
  keep(a);
  keep(b);
}
END_TEST

/* ---- base_size ---- */

/* Every byte offset of p: gc_base gives p, gc_size gives size only at p. */
static void check_every_offset(char *p, size_t size) {
  for (size_t off = 0; off < size; off++) {
    void *b = gc_base(p + off);
    if (b != p) ck_abort_msg("gc_base(%p + %zu) = %p, expected %p (size %zu)", (void *)p, off, b, (void *)p, size);
    size_t sz = gc_size(p + off);
    if (sz != (off ? 0 : size)) ck_abort_msg("gc_size(%p + %zu) = %zu (size %zu)", (void *)p, off, sz, size);
  }
  ck_assert_ptr_ne(gc_base(p + size), p);
}

/* One object of every size class of the kind, from `first` bytes up;
 * returns the number of classes seen. */
static unsigned check_every_small_class(bool atomic, size_t first) {
  unsigned classes = 0;
  size_t n = first, last = 0;
  while (n <= SMALL_MAX) {
    char *p = atomic ? gc_alloc_atomic(n) : gc_alloc(n);
    ck_assert(p != NULL);
    keep(p);
    size_t size = gc_size(p);
    ck_assert_msg(size >= n, "gc_size(gc_alloc(%zu)) = %zu", n, size);
    ck_assert_msg(size > last, "class sizes do not increase: %zu after %zu", size, last);
    check_every_offset(p, size);
    classes++;
    last = size;
    n = size + 1;
  }
  ck_assert_uint_eq(last, SMALL_MAX);
  return classes;
}

START_TEST(test_base_and_size_at_every_offset_of_every_scanned_small_class) {
  unsigned classes = check_every_small_class(false, 1);
  ck_assert_uint_ge(classes, 60);
}
END_TEST

START_TEST(test_base_and_size_at_every_offset_of_every_atomic_small_class) {
  /* Atomic objects of at most TINY_MAX bytes share blocks (mgc.h). */
  unsigned classes = check_every_small_class(true, TINY_MAX + 1);
  ck_assert_uint_ge(classes, 58);
}
END_TEST

START_TEST(test_base_and_size_at_every_offset_of_large_objects) {
  static const size_t sizes[] = {SMALL_MAX + 1, 40000, 1 * MIB, 5 * MIB + 1};
  for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
    for (int atomic = 0; atomic <= 1; atomic++) {
      char *p = atomic ? gc_alloc_atomic(sizes[i]) : gc_alloc(sizes[i]);
      ck_assert(p != NULL);
      keep(p);
      size_t size = gc_size(p);
      ck_assert_msg(size >= sizes[i], "gc_size(gc_alloc(%zu)) = %zu", sizes[i], size);
      check_every_offset(p, size);
    }
  }
}
END_TEST

START_TEST(test_addresses_mgc_never_handed_out_have_no_base_or_size) {
  int local = 0;
  char *heap = malloc(64);
  ck_assert(heap != NULL);
  const void *foreign[] = {&local, &static_word, heap, heap + 10, NULL, (void *)1, (void *)UINTPTR_MAX,
                           "a string literal"};
  for (size_t i = 0; i < sizeof(foreign) / sizeof(foreign[0]); i++) {
    ck_assert_msg(gc_base(foreign[i]) == NULL, "gc_base(%p) is not NULL", foreign[i]);
    ck_assert_msg(gc_size(foreign[i]) == 0, "gc_size(%p) is not 0", foreign[i]);
  }
  free(heap);
}
END_TEST

START_TEST(test_freed_objects_have_no_base_or_size) {
  static const size_t sizes[] = {8, 100, 5000, 40000, 5 * MIB + 1};
  for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
    char *p = gc_alloc(sizes[i]);
    ck_assert(p != NULL);
    gc_free(p);
    ck_assert_msg(gc_base(p) == NULL, "gc_base of a freed %zu-byte object", sizes[i]);
    ck_assert_msg(gc_base(p + sizes[i] / 2) == NULL, "gc_base inside a freed %zu-byte object", sizes[i]);
    ck_assert_uint_eq(gc_size(p), 0);
  }
}
END_TEST

/* ---- realloc ---- */

START_TEST(test_realloc_of_null_allocates) {
  char *p = gc_realloc(NULL, 100);
  ck_assert(p != NULL);
  keep(p);
  ck_assert_uint_ge(gc_size(p), 100);
  ck_assert(is_all(p, 100, 0));
}
END_TEST

START_TEST(test_realloc_grow_keeps_contents_and_zeroes_new_tail) {
  /* small -> small, small -> large, large -> larger large */
  static const size_t steps[] = {24, 100, 3000, 30000, 50000, 3 * MIB};
  char *p = gc_alloc(steps[0]);
  fill_pattern(p, steps[0], 7);
  for (size_t i = 1; i < sizeof(steps) / sizeof(steps[0]); i++) {
    p = gc_realloc(p, steps[i]);
    ck_assert(p != NULL);
    ck_assert_uint_ge(gc_size(p), steps[i]);
    ck_assert_msg(has_pattern(p, steps[i - 1], 7), "contents lost growing to %zu", steps[i]);
    ck_assert_msg(is_all(p + steps[i - 1], steps[i] - steps[i - 1], 0), "new tail not zeroed at %zu", steps[i]);
    fill_pattern(p, steps[i], 7);
  }
  keep(p);
}
END_TEST

START_TEST(test_realloc_shrink_keeps_contents) {
  /* large -> smaller large, large -> small, small -> smaller small */
  static const size_t steps[] = {3 * MIB, 100000, 20000, 1000, 40, 20};
  char *p = gc_alloc(steps[0]);
  fill_pattern(p, steps[0], 3);
  for (size_t i = 1; i < sizeof(steps) / sizeof(steps[0]); i++) {
    p = gc_realloc(p, steps[i]);
    ck_assert(p != NULL);
    ck_assert_uint_ge(gc_size(p), steps[i]);
    ck_assert_msg(has_pattern(p, steps[i], 3), "contents lost shrinking to %zu", steps[i]);
  }
  keep(p);
}
END_TEST

/* Shrinking in place to a size inside the last word, then growing: the
 * bytes past the smaller size read as zeroes (64 -> 61 stays in the 64-byte
 * slot; 61 -> 4000 copies the slot). */
START_TEST(test_realloc_shrink_within_a_word_then_grow_zeroes_the_dropped_bytes) {
  char *p = gc_alloc(64);
  memset(p, 0x77, 64);
  char *q = gc_realloc(p, 61);
  ck_assert_ptr_eq(q, p);
  q = gc_realloc(q, 4000);
  ck_assert(q != NULL);
  ck_assert_msg(is_all(q, 61, 0x77), "contents lost");
  ck_assert_msg(is_all(q + 61, 4000 - 61, 0), "bytes dropped by the shrink came back");
  keep(q);
}
END_TEST

START_TEST(test_realloc_of_atomic_object_keeps_contents) {
  static const size_t steps[] = {40, 500, 70000, 300, 17};
  char *p = gc_alloc_atomic(steps[0]);
  fill_pattern(p, steps[0], 5);
  for (size_t i = 1; i < sizeof(steps) / sizeof(steps[0]); i++) {
    size_t keep_n = steps[i] < steps[i - 1] ? steps[i] : steps[i - 1];
    p = gc_realloc(p, steps[i]);
    ck_assert(p != NULL);
    ck_assert_msg(has_pattern(p, keep_n, 5), "contents lost resizing to %zu", steps[i]);
    fill_pattern(p, steps[i], 5);
  }
  keep(p);
}
END_TEST

/* Kind is visible through the API in one place: gc_free leaves packed
 * tiny (atomic, <= TINY_MAX bytes) objects to the collector (mgc.h), so
 * an atomic object shrunk to 8 bytes outlives gc_free; a scanned one
 * does not. */
START_TEST(test_realloc_keeps_kind) {
  char *atomic = gc_realloc(gc_alloc_atomic(100), 8);
  char *scanned = gc_realloc(gc_alloc(100), 8);
  ck_assert(atomic && scanned);
  gc_free(atomic);
  gc_free(scanned);
  ck_assert_msg(gc_base(atomic) != NULL, "an atomic object realloc'd to 8 bytes is not a tiny atomic object");
  ck_assert_msg(gc_base(scanned) == NULL, "a scanned object realloc'd to 8 bytes was packed as a tiny one");
}
END_TEST

START_TEST(test_realloc_to_zero_frees) {
  static const size_t sizes[] = {100, 40000};
  for (size_t i = 0; i < 2; i++) {
    void *p = gc_alloc(sizes[i]);
    ck_assert_ptr_null(gc_realloc(p, 0));
    ck_assert_ptr_null(gc_base(p));
  }
}
END_TEST

/* Tiny atomic objects share a 16-byte block: growing one in place would
 * write over its neighbour. */
START_TEST(test_realloc_of_tiny_object_does_not_overlap_its_neighbour) {
  /* Take 4-byte objects until one starts a block: the next one follows
   * it in the same block. */
  char *a;
  do a = gc_alloc_atomic(4);
  while (gc_base(a) != a);
  char *b = gc_alloc_atomic(4);
  ck_assert_ptr_eq(b, a + 4);
  memset(b, 0x5B, 4);
  char *a2 = gc_realloc(a, 12);
  ck_assert(a2 != NULL);
  memset(a2, 0x11, 12);
  ck_assert_msg(is_all(b, 4, 0x5B), "gc_realloc(%p, 12) returned %p, overlapping the object at %p",
                (void *)a, (void *)a2, (void *)b);
}
END_TEST

/* The new object of a moved tiny one may be packed into the same block,
 * right after it: the copy must stop where the new object starts (ASan
 * reports an overlapping memcpy otherwise) and keep the old bytes. */
START_TEST(test_realloc_of_tiny_object_into_its_own_block_keeps_contents) {
  char *a;
  do a = gc_alloc_atomic(1);
  while (gc_base(a) != a);
  *a = 0x3C;
  char *a2 = gc_realloc(a, 9);
  ck_assert(a2 != NULL);
  ck_assert_ptr_eq(a2, a + 1); /* the case under test: packed after the old one */
  ck_assert_int_eq(*a2, 0x3C);
}
END_TEST

START_TEST(test_strdup_copies_string) {
  static char longer[50000];
  memset(longer, 'x', sizeof(longer) - 1);
  const char *strings[] = {"", "a", "fifteen chars..", "sixteen chars...", "a string longer than sixteen bytes",
                           longer};
  for (size_t i = 0; i < sizeof(strings) / sizeof(strings[0]); i++) {
    char *d = gc_strdup(strings[i]);
    ck_assert(d != NULL);
    ck_assert_ptr_ne(d, strings[i]);
    ck_assert_str_eq(d, strings[i]);
    ck_assert_ptr_nonnull(gc_base(d));
  }
}
END_TEST

/* ---- runner ---- */

static TCase *tcase(const char *name) {
  TCase *tc = tcase_create(name);
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_set_timeout(tc, 120);
  return tc;
}

static Suite *alloc_api_suite(void) {
  Suite *s = suite_create("alloc_api");

  TCase *zeroing = tcase("zeroing");
  tcase_add_test(zeroing, test_alloc_returns_zeroed_memory);
  tcase_add_test(zeroing, test_alloc_returns_zeroed_memory_when_reusing_freed_memory);
  tcase_add_test(zeroing, test_alloc_returns_zeroed_memory_when_reusing_memory_freed_by_another_thread);
  tcase_add_test(zeroing, test_alloc_of_zero_bytes_returns_distinct_objects);
  suite_add_tcase(s, zeroing);

  TCase *base_size = tcase("base_size");
  tcase_add_test(base_size, test_base_and_size_at_every_offset_of_every_scanned_small_class);
  tcase_add_test(base_size, test_base_and_size_at_every_offset_of_every_atomic_small_class);
  tcase_add_test(base_size, test_base_and_size_at_every_offset_of_large_objects);
  tcase_add_test(base_size, test_addresses_mgc_never_handed_out_have_no_base_or_size);
  tcase_add_test(base_size, test_freed_objects_have_no_base_or_size);
  suite_add_tcase(s, base_size);

  TCase *realloc_tc = tcase("realloc");
  tcase_add_test(realloc_tc, test_realloc_of_null_allocates);
  tcase_add_test(realloc_tc, test_realloc_grow_keeps_contents_and_zeroes_new_tail);
  tcase_add_test(realloc_tc, test_realloc_shrink_keeps_contents);
  tcase_add_test(realloc_tc, test_realloc_shrink_within_a_word_then_grow_zeroes_the_dropped_bytes);
  tcase_add_test(realloc_tc, test_realloc_of_atomic_object_keeps_contents);
  tcase_add_test(realloc_tc, test_realloc_keeps_kind);
  tcase_add_test(realloc_tc, test_realloc_to_zero_frees);
  tcase_add_test(realloc_tc, test_realloc_of_tiny_object_does_not_overlap_its_neighbour);
  tcase_add_test(realloc_tc, test_realloc_of_tiny_object_into_its_own_block_keeps_contents);
  tcase_add_test(realloc_tc, test_strdup_copies_string);
  suite_add_tcase(s, realloc_tc);

  return s;
}

int main(void) {
  SRunner *sr = srunner_create(alloc_api_suite());
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
