/*
 * test_bad_input.c: user mistakes through the public API (include/mgc.h).
 *
 * The contract (docs/design.md, "Failures"): gc_free of a pointer mgc did
 * not hand out, of an interior pointer or of a freed object is reported on
 * stderr with one line starting "mgc: " and otherwise ignored: it never
 * corrupts the heap.  An impossible size makes gc_alloc and gc_realloc
 * return NULL with errno ENOMEM, leaving the old object as it was.
 *
 * Concerns, one TCase each:
 *   bad_free     every kind of bad gc_free is reported and the heap still
 *                works afterwards (check_heap_works: many objects of many
 *                sizes, patterns intact, no two overlapping);
 *   remote_free  the same for bad frees from a thread that does not own
 *                the object's span;
 *   good_free    correct frees print nothing;
 *   enomem       impossible sizes.
 *
 * stderr is captured by pointing file descriptor 2 at a temporary file
 * (mgc writes its reports straight to fd 2).
 */
#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mgc.h"
#include "capture.h"

#define KIB ((size_t)1 << 10)
#define MIB ((size_t)1 << 20)
#define TINY_MAX 16            /* atomic objects up to this are packed */
#define CHECK_OBJECTS 3000     /* objects check_heap_works allocates */
#define SPAN_FILL_OBJECTS 3000 /* enough 8-byte objects to use up a few spans */

struct obj {
  char *p;
  size_t n;
};

static struct obj objs[CHECK_OBJECTS + SPAN_FILL_OBJECTS + 16];
static size_t nobjs;
static char static_bytes[64];

/* ---- helpers ---- */


/* gc_free(p) must print an "mgc: " line. */
static void expect_reported_free(void *p, const char *what) {
  capture_begin();
  gc_free(p);
  const char *report = capture_end();
  ck_assert_msg(report != NULL, "gc_free of %s (%p) was not reported", what, p);
}

static unsigned char pattern_byte(size_t serial, size_t i) { return (unsigned char)(serial * 131 + i * 7 + 1); }

static void fill(char *p, size_t n, size_t serial) {
  for (size_t i = 0; i < n; i++) p[i] = (char)pattern_byte(serial, i);
}

static bool intact(const char *p, size_t n, size_t serial) {
  for (size_t i = 0; i < n; i++)
    if ((unsigned char)p[i] != pattern_byte(serial, i)) return false;
  return true;
}

static void add_obj(char *p, size_t n) {
  ck_assert(p != NULL);
  objs[nobjs++] = (struct obj){p, n};
}

static int cmp_obj(const void *a, const void *b) {
  uintptr_t x = (uintptr_t)((const struct obj *)a)->p, y = (uintptr_t)((const struct obj *)b)->p;
  return x < y ? -1 : x > y;
}

/* No two objects in objs[] share a byte, and each is a live object. */
static void check_no_overlap(void) {
  qsort(objs, nobjs, sizeof(objs[0]), cmp_obj);
  for (size_t i = 0; i < nobjs; i++) {
    ck_assert_msg(gc_base(objs[i].p) == objs[i].p, "live object %p has no base", (void *)objs[i].p);
    if (i > 0) {
      char *prev_end = objs[i - 1].p + gc_size(objs[i - 1].p);
      ck_assert_msg(prev_end <= objs[i].p, "objects %p (%zu bytes) and %p overlap: handed out twice",
                    (void *)objs[i - 1].p, gc_size(objs[i - 1].p), (void *)objs[i].p);
    }
  }
}

static void free_objs(void) {
  capture_begin();
  for (size_t i = 0; i < nobjs; i++) gc_free(objs[i].p);
  const char *report = capture_end();
  memset(objs, 0, sizeof(objs));
  nobjs = 0;
  ck_assert_msg(report == NULL, "freeing live objects was reported: %s", report);
}

/* Allocate many objects of many sizes and kinds, check that their
 * contents survive and that none overlaps another, free them. */
static void check_heap_works(void) {
  unsigned seed = 4242;
  size_t first = nobjs;
  for (size_t i = 0; i < CHECK_OBJECTS; i++) {
    size_t n = 1 + (size_t)rand_r(&seed) % (rand_r(&seed) % 8 ? 512 : 70000);
    bool atomic = n > TINY_MAX && i % 3 == 0;
    char *p = atomic ? gc_alloc_atomic(n) : gc_alloc(n);
    add_obj(p, n);
    ck_assert_uint_ge(gc_size(p), n);
    fill(p, n, i);
  }
  for (size_t i = first; i < nobjs; i++)
    ck_assert_msg(intact(objs[i].p, objs[i].n, i - first), "object %p overwritten", (void *)objs[i].p);
  check_no_overlap();
  free_objs();
}

/* Allocate enough objects of n bytes to use up the current span and a few
 * more, so spans are given back and taken again; keep them in objs[]. */
static void cycle_spans(size_t n) {
  for (size_t i = 0; i < SPAN_FILL_OBJECTS; i++) add_obj(gc_alloc(n), n);
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

/* gc_free(p) from another thread; returns whether it was reported. */
static bool remote_free_is_reported(void *p) {
  capture_begin();
  free_from_other_thread(p);
  return capture_end() != NULL;
}

/* After a bad remote free of an 8-byte object: the owner goes on
 * allocating through several spans without handing anything out twice,
 * and the bad free was reported. */
static void check_bad_remote_free_was_harmless(bool reported, const char *what) {
  cycle_spans(8);
  check_no_overlap();
  free_objs();
  check_heap_works();
  ck_assert_msg(reported, "gc_free of %s from another thread was not reported", what);
}

static void setup(void) { gc_init(); }

static void teardown(void) {
  memset(objs, 0, sizeof(objs));
  nobjs = 0;
}

/* ---- bad_free ---- */

START_TEST(test_double_free_of_small_object_is_reported_and_ignored) {
  char *p = gc_alloc(64);
  gc_free(p);
  expect_reported_free(p, "a freed 64-byte object");
  check_heap_works();
}
END_TEST

START_TEST(test_double_free_of_small_object_behind_allocation_cursor_is_reported_and_ignored) {
  char *first = gc_alloc(8);
  for (int i = 0; i < 200; i++) add_obj(gc_alloc(8), 8); /* the cursor moves on */
  gc_free(first);
  expect_reported_free(first, "a freed 8-byte object");
  cycle_spans(8);
  check_no_overlap();
  free_objs();
  check_heap_works();
}
END_TEST

/* The slot after a fresh 8-byte object, still free in the word its thread
 * allocates from (8-byte spans are one page, 64 slots to a word): the
 * owner's free checks the thread's own free bits there, not allocbits. */
START_TEST(test_owner_free_of_never_allocated_slot_in_its_current_word_is_reported_and_ignored) {
  char *p = gc_alloc(8);
  add_obj(p, 8);
  while (((uintptr_t)p & 8191) / 8 % 64 == 63) { /* the next slot is in the next word */
    p = gc_alloc(8);
    add_obj(p, 8);
  }
  char *next = p + 8;
  ck_assert_ptr_null(gc_base(next));
  expect_reported_free(next, "a slot never handed out");
  char *q = gc_alloc(8); /* the slot is handed out once, and intact */
  add_obj(q, 8);
  ck_assert_ptr_eq(q, next);
  cycle_spans(8);
  check_no_overlap();
  free_objs();
  check_heap_works();
}
END_TEST

START_TEST(test_double_free_of_large_object_is_reported_and_ignored) {
  char *p = gc_alloc(5 * MIB + 1);
  gc_free(p);
  expect_reported_free(p, "a freed large object");
  check_heap_works();
}
END_TEST

START_TEST(test_free_of_stack_address_is_reported_and_ignored) {
  char local[16];
  expect_reported_free(local, "a stack address");
  check_heap_works();
}
END_TEST

START_TEST(test_free_of_static_address_is_reported_and_ignored) {
  expect_reported_free(static_bytes, "a static address");
  check_heap_works();
}
END_TEST

START_TEST(test_free_of_malloced_memory_is_reported_and_ignored) {
  char *m = malloc(100);
  ck_assert(m != NULL);
  expect_reported_free(m, "malloc'd memory");
  free(m);
  check_heap_works();
}
END_TEST

START_TEST(test_free_of_wild_pointers_is_reported_and_ignored) {
  expect_reported_free((void *)1, "(void *)1");
  expect_reported_free((void *)UINTPTR_MAX, "(void *)UINTPTR_MAX");
  check_heap_works();
}
END_TEST

START_TEST(test_free_of_interior_pointer_is_reported_and_object_stays) {
  static const size_t sizes[] = {64, 5000, 40000, 3 * MIB};
  for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
    size_t n = sizes[i];
    char *p = gc_alloc(n);
    add_obj(p, n);
    fill(p, n, i);
    expect_reported_free(p + 8, "an interior pointer");
    expect_reported_free(p + n - 1, "a pointer to the last byte");
    ck_assert_ptr_eq(gc_base(p), p);
    ck_assert(intact(p, n, i));
  }
  check_heap_works();
}
END_TEST

START_TEST(test_free_of_interior_pointer_of_freed_large_object_is_reported) {
  char *p = gc_alloc(3 * MIB);
  gc_free(p);
  expect_reported_free(p + 20 * KIB, "inside a freed large object");
  check_heap_works();
}
END_TEST

START_TEST(test_bad_frees_of_typed_objects_are_reported_and_ignored) {
  static const size_t offsets[] = {0, 8};
  const gc_type *t = gc_type_new(24, offsets, 2);
  ck_assert(t != NULL);
  static const size_t sizes[] = {24, 240, 48000};
  for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
    char *p = gc_alloc_typed(sizes[i], t);
    ck_assert(p != NULL);
    fill(p + 16, 8, i);
    expect_reported_free(p - sizeof(void *), "the header word before a typed object");
    expect_reported_free(p + 8, "inside a typed object");
    ck_assert_ptr_eq(gc_base(p), p);
    ck_assert(intact(p + 16, 8, i));
    gc_free(p);
    expect_reported_free(p, "a freed typed object");
  }
  check_heap_works();
}
END_TEST

/* ---- remote_free ---- */

START_TEST(test_double_free_by_another_thread_is_reported_and_ignored) {
  char *keep = gc_alloc(8);
  add_obj(keep, 8);
  char *x = gc_alloc(8);
  free_from_other_thread(x);
  check_bad_remote_free_was_harmless(remote_free_is_reported(x), "a freed object");
}
END_TEST

/* The slot after a fresh object has never been handed out.  A thread that
 * does not own the span cannot see that slot's state (it is in the word
 * the owner allocates from); if it accepts the free, the owner hands the
 * slot out, then folds the free in and hands it out a second time. */
START_TEST(test_free_of_never_allocated_slot_by_another_thread_is_reported_and_harmless) {
  char *p = gc_alloc(8);
  add_obj(p, 8);
  char *next = p + gc_size(p);
  if (gc_base(next) != NULL) {
    /* p was the last slot of its span, or the next one is taken: retry once */
    p = gc_alloc(8);
    add_obj(p, 8);
    next = p + gc_size(p);
  }
  ck_assert_ptr_null(gc_base(next));
  check_bad_remote_free_was_harmless(remote_free_is_reported(next), "a slot never handed out");
}
END_TEST

START_TEST(test_free_by_another_thread_of_object_its_owner_freed_is_reported_and_harmless) {
  char *keep = gc_alloc(8);
  add_obj(keep, 8);
  char *x = gc_alloc(8);
  gc_free(x); /* by the owner */
  check_bad_remote_free_was_harmless(remote_free_is_reported(x), "an object its owner freed");
}
END_TEST

/* ---- good_free ---- */

START_TEST(test_correct_frees_print_nothing) {
  static const size_t tiny[] = {1, 3, 4, 8, 2, 16, 5, 12};
  char *small = gc_alloc(100), *atomic = gc_alloc_atomic(100), *large = gc_alloc(40000);
  char *remote = gc_alloc(100);
  char *packed[sizeof(tiny) / sizeof(tiny[0])];
  for (size_t i = 0; i < sizeof(tiny) / sizeof(tiny[0]); i++) packed[i] = gc_alloc_atomic(tiny[i]);
  capture_begin();
  gc_free(small);
  gc_free(atomic);
  gc_free(large);
  gc_free(NULL);
  free_from_other_thread(remote);
  for (size_t i = 0; i < sizeof(tiny) / sizeof(tiny[0]); i++) gc_free(packed[i]);
  const char *report = capture_end();
  ck_assert_msg(report == NULL, "a correct gc_free was reported: %s", report);
}
END_TEST

/* ---- enomem ---- */

START_TEST(test_impossible_sizes_return_null_with_enomem) {
  static const size_t sizes[] = {SIZE_MAX, SIZE_MAX / 2, SIZE_MAX - 4096, (size_t)1 << 62};
  for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
    errno = 0;
    ck_assert_msg(gc_alloc(sizes[i]) == NULL, "gc_alloc(%zu) succeeded", sizes[i]);
    ck_assert_int_eq(errno, ENOMEM);
    errno = 0;
    ck_assert_msg(gc_alloc_atomic(sizes[i]) == NULL, "gc_alloc_atomic(%zu) succeeded", sizes[i]);
    ck_assert_int_eq(errno, ENOMEM);
  }
  check_heap_works();
}
END_TEST

START_TEST(test_realloc_to_impossible_size_leaves_object_intact) {
  static const size_t sizes[] = {100, 40000};
  static const size_t huge[] = {SIZE_MAX, SIZE_MAX / 2};
  for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
    for (int atomic = 0; atomic <= 1; atomic++) {
      size_t n = sizes[i];
      char *p = atomic ? gc_alloc_atomic(n) : gc_alloc(n);
      ck_assert(p != NULL);
      fill(p, n, i);
      size_t size = gc_size(p);
      for (size_t h = 0; h < 2; h++) {
        errno = 0;
        ck_assert_ptr_null(gc_realloc(p, huge[h]));
        ck_assert_int_eq(errno, ENOMEM);
        ck_assert_ptr_eq(gc_base(p), p);
        ck_assert_uint_eq(gc_size(p), size);
        ck_assert_msg(intact(p, n, i), "gc_realloc(p, %zu) changed p", huge[h]);
      }
      capture_begin();
      gc_free(p);
      ck_assert_ptr_null(capture_end());
    }
  }
  check_heap_works();
}
END_TEST

START_TEST(test_realloc_of_foreign_pointer_is_reported_and_returns_null) {
  char local[32];
  capture_begin();
  void *q = gc_realloc(local, 64);
  const char *report = capture_end();
  ck_assert_ptr_null(q);
  ck_assert_msg(report != NULL, "gc_realloc of a stack address was not reported");
  check_heap_works();
}
END_TEST

/* ---- runner ---- */

static TCase *tcase(const char *name) {
  TCase *tc = tcase_create(name);
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_set_timeout(tc, 60);
  return tc;
}

static Suite *bad_input_suite(void) {
  Suite *s = suite_create("bad_input");

  TCase *bad = tcase("bad_free");
  tcase_add_test(bad, test_double_free_of_small_object_is_reported_and_ignored);
  tcase_add_test(bad, test_double_free_of_small_object_behind_allocation_cursor_is_reported_and_ignored);
  tcase_add_test(bad, test_owner_free_of_never_allocated_slot_in_its_current_word_is_reported_and_ignored);
  tcase_add_test(bad, test_double_free_of_large_object_is_reported_and_ignored);
  tcase_add_test(bad, test_free_of_stack_address_is_reported_and_ignored);
  tcase_add_test(bad, test_free_of_static_address_is_reported_and_ignored);
  tcase_add_test(bad, test_free_of_malloced_memory_is_reported_and_ignored);
  tcase_add_test(bad, test_free_of_wild_pointers_is_reported_and_ignored);
  tcase_add_test(bad, test_free_of_interior_pointer_is_reported_and_object_stays);
  tcase_add_test(bad, test_free_of_interior_pointer_of_freed_large_object_is_reported);
  tcase_add_test(bad, test_bad_frees_of_typed_objects_are_reported_and_ignored);
  suite_add_tcase(s, bad);

  TCase *remote = tcase("remote_free");
  tcase_add_test(remote, test_double_free_by_another_thread_is_reported_and_ignored);
  tcase_add_test(remote, test_free_of_never_allocated_slot_by_another_thread_is_reported_and_harmless);
  tcase_add_test(remote, test_free_by_another_thread_of_object_its_owner_freed_is_reported_and_harmless);
  suite_add_tcase(s, remote);

  TCase *good = tcase("good_free");
  tcase_add_test(good, test_correct_frees_print_nothing);
  suite_add_tcase(s, good);

  TCase *enomem = tcase("enomem");
  tcase_add_test(enomem, test_impossible_sizes_return_null_with_enomem);
  tcase_add_test(enomem, test_realloc_to_impossible_size_leaves_object_intact);
  tcase_add_test(enomem, test_realloc_of_foreign_pointer_is_reported_and_returns_null);
  suite_add_tcase(s, enomem);

  return s;
}

int main(void) {
  SRunner *sr = srunner_create(bad_input_suite());
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
