/*
 * test_sizeclasses.c: unit tests for alloc/sizeclasses.{h,c}, the tables
 * made by tools/gen_sizeclasses.py.
 *
 * The generator checks its own output; these tests check the compiled tables
 * the allocator actually links, independently of the generator's code, so a
 * hand edit or a generator bug cannot slip through.  Each test proves one
 * property the allocator relies on:
 *
 *   mapping   sizeclass_of(n) is the smallest class whose size is >= n;
 *   shape     sizes are aligned and strictly increasing up to SMALL_SIZE_MAX,
 *             class 0 is the empty "large object" class;
 *   waste     rounding a request up, and the room left at a span's end, each
 *             waste at most 1/8;
 *   layout    nelems objects fill the span as far as they can, no two classes
 *             share a span layout, SIZECLASS_MAX_NELEMS bounds every span;
 *   division  divmul turns a byte offset in a span into an object index.
 */
#include <check.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>

#include "alloc/sizeclasses.h"

#define WORD_SIZE 8         /* class 1: the smallest object */
#define OBJECT_ALIGN 16     /* alignment of classes above WORD_ALIGNED_MAX */
#define WORD_ALIGNED_MAX 24 /* classes up to here are word-aligned (8, 16, 24) */
#define WASTE_DIV 8         /* both waste bounds are 1/WASTE_DIV = 12.5% */
#define MAX_SPAN_PAGES 16
/* Every span holds this many objects at least: with fewer, a program that
 * keeps a handful of objects of a large class alive trades spans with
 * mcentral at nearly every allocation (tools/gen_sizeclasses.py). */
#define MIN_SPAN_OBJECTS_ANY 4
#define DIVMUL_SHIFT 32

/*
 * The tail-waste bound holds for requests above TAIL_WASTE_FLOOR bytes.
 * Below, classes are at most OBJECT_ALIGN apart, and a step of 16 is more than 1/8
 * of any class under 128 bytes: a 97-byte request in the 112-byte class
 * wastes 15/112 = 13.4%.  No 16-aligned table can do better there, so those
 * requests are held to the step instead (waste < OBJECT_ALIGN bytes).
 */
#define TAIL_WASTE_FLOOR 112

static uint64_t span_bytes(unsigned c) {
  return (uint64_t)sizeclass_npages[c] * PAGE_SIZE;
}

/* The reference answer, by linear search. */
static unsigned smallest_class_holding(size_t n) {
  for (unsigned c = 1; c < SIZECLASS_COUNT; c++)
    if (sizeclass_size[c] >= n) return c;
  return 0;
}

/* ---- mapping ---- */

START_TEST(test_every_size_maps_to_smallest_class_that_fits) {
  for (size_t n = 1; n <= SMALL_SIZE_MAX; n++) {
    unsigned c = sizeclass_of(n);
    ck_assert_msg(c >= 1 && c < SIZECLASS_COUNT, "n=%zu: class %u", n, c);
    ck_assert_msg(sizeclass_size[c] >= n, "n=%zu: class %u holds only %u", n,
                  c, (unsigned)sizeclass_size[c]);
    ck_assert_msg(c == 1 || sizeclass_size[c - 1] < n,
                  "n=%zu: class %u is not the smallest, %u fits", n, c,
                  (unsigned)sizeclass_size[c - 1]);
    ck_assert_uint_eq(c, smallest_class_holding(n));
  }
}
END_TEST

START_TEST(test_zero_byte_request_gets_smallest_class) {
  ck_assert_uint_eq(size_to_class8[0], 1u << SIZECLASS_LOOKUP_SHIFT);
  ck_assert_uint_eq(sizeclass_of(0), 1);
}
END_TEST

/* ---- shape ---- */

START_TEST(test_class_zero_is_empty_large_class) {
  ck_assert_uint_eq(sizeclass_size[0], 0);
  ck_assert_uint_eq(sizeclass_npages[0], 0);
  ck_assert_uint_eq(sizeclass_nelems[0], 0);
  ck_assert_uint_eq(sizeclass_divmul[0], 0);
}
END_TEST

START_TEST(test_sizes_are_aligned_and_strictly_increasing) {
  ck_assert_uint_eq(sizeclass_size[1], WORD_SIZE);
  for (unsigned c = 1; c < SIZECLASS_COUNT; c++) {
    uint32_t size = sizeclass_size[c];
    uint32_t align = size <= WORD_ALIGNED_MAX ? WORD_SIZE : OBJECT_ALIGN;
    ck_assert_msg(size % align == 0, "class %u: size %u not a multiple of %u",
                  c, (unsigned)size, (unsigned)align);
    ck_assert_msg(size > sizeclass_size[c - 1], "class %u: size %u <= %u", c,
                  (unsigned)size, (unsigned)sizeclass_size[c - 1]);
  }
}
END_TEST

START_TEST(test_last_class_is_small_size_max) {
  ck_assert_uint_eq(sizeclass_size[SIZECLASS_COUNT - 1], SMALL_SIZE_MAX);
}
END_TEST

/* ---- waste ---- */

/* For class c the worst request is one byte above the class below. */
START_TEST(test_tail_waste_at_most_one_eighth_above_floor) {
  for (unsigned c = 2; c < SIZECLASS_COUNT; c++) {
    uint32_t lower = sizeclass_size[c - 1], size = sizeclass_size[c];
    if (lower < TAIL_WASTE_FLOOR) continue;
    for (uint32_t n = lower + 1; n <= size; n++)
      ck_assert_msg((uint64_t)(size - n) * WASTE_DIV <= size,
                    "request %u in class %u (%u bytes) wastes %u", (unsigned)n,
                    c, (unsigned)size, (unsigned)(size - n));
  }
}
END_TEST

START_TEST(test_tail_waste_below_floor_is_under_one_step) {
  for (size_t n = 1; n <= TAIL_WASTE_FLOOR; n++) {
    uint32_t size = sizeclass_size[sizeclass_of(n)];
    ck_assert_msg(size - n < OBJECT_ALIGN, "request %zu wastes %u bytes", n,
                  (unsigned)(size - n));
  }
}
END_TEST

START_TEST(test_span_end_waste_at_most_one_eighth) {
  for (unsigned c = 1; c < SIZECLASS_COUNT; c++) {
    uint64_t span = span_bytes(c);
    uint64_t waste = span - (uint64_t)sizeclass_nelems[c] * sizeclass_size[c];
    ck_assert_msg(waste * WASTE_DIV <= span,
                  "class %u: %u of %u span bytes unused", c, (unsigned)waste,
                  (unsigned)span);
  }
}
END_TEST

/* ---- layout ---- */

START_TEST(test_objects_fill_span_without_overflowing_it) {
  for (unsigned c = 1; c < SIZECLASS_COUNT; c++) {
    uint64_t span = span_bytes(c);
    ck_assert_msg(sizeclass_npages[c] >= 1 &&
                      sizeclass_npages[c] <= MAX_SPAN_PAGES,
                  "class %u: %u pages", c, (unsigned)sizeclass_npages[c]);
    ck_assert_msg(sizeclass_nelems[c] >= MIN_SPAN_OBJECTS_ANY, "class %u: %u objects to a span", c,
                  (unsigned)sizeclass_nelems[c]);
    ck_assert_msg((uint64_t)sizeclass_nelems[c] * sizeclass_size[c] <= span,
                  "class %u: objects overflow the span", c);
    ck_assert_msg(span / sizeclass_size[c] == sizeclass_nelems[c],
                  "class %u: room for more than %u objects", c,
                  (unsigned)sizeclass_nelems[c]);
  }
}
END_TEST

START_TEST(test_no_two_classes_share_span_layout) {
  for (unsigned a = 1; a < SIZECLASS_COUNT; a++)
    for (unsigned b = a + 1; b < SIZECLASS_COUNT; b++)
      ck_assert_msg(sizeclass_npages[a] != sizeclass_npages[b] ||
                        sizeclass_nelems[a] != sizeclass_nelems[b],
                    "classes %u and %u both have %u pages, %u objects", a, b,
                    (unsigned)sizeclass_npages[a],
                    (unsigned)sizeclass_nelems[a]);
}
END_TEST

/* npages[c] / nelems[c] < npages[c+1] / nelems[c+1]: otherwise class c's
 * objects would take as much span room as class c+1's. */
START_TEST(test_each_class_packs_denser_than_next) {
  for (unsigned c = 1; c + 1 < SIZECLASS_COUNT; c++)
    ck_assert_msg((uint32_t)sizeclass_npages[c] * sizeclass_nelems[c + 1] <
                      (uint32_t)sizeclass_npages[c + 1] * sizeclass_nelems[c],
                  "class %u spends no fewer span bytes per object than %u", c,
                  c + 1);
}
END_TEST

START_TEST(test_max_nelems_is_largest_span_population) {
  unsigned max = 0;
  for (unsigned c = 1; c < SIZECLASS_COUNT; c++)
    if (sizeclass_nelems[c] > max) max = sizeclass_nelems[c];
  ck_assert_uint_eq(max, SIZECLASS_MAX_NELEMS);
}
END_TEST

/* ---- division ---- */

START_TEST(test_divmul_divides_every_span_offset_exactly) {
  for (unsigned c = 1; c < SIZECLASS_COUNT; c++) {
    uint32_t size = sizeclass_size[c];
    uint64_t divmul = sizeclass_divmul[c];
    ck_assert_uint_eq(divmul, (uint64_t)UINT32_MAX / size + 1);
    for (uint64_t off = 0; off < span_bytes(c); off++) {
      uint64_t got = (off * divmul) >> DIVMUL_SHIFT;
      if (got != off / size)
        ck_abort_msg("class %u: offset %u gives index %u, want %u", c,
                     (unsigned)off, (unsigned)got, (unsigned)(off / size));
    }
  }
}
END_TEST

/* gc_free tests a pointer's alignment by the product's low half
 * (span_slot_of): below divmul exactly at a slot's start.  This holds
 * wherever the division is exact (size * divmul = 2^32 + e, and exactness
 * at the last byte of each slot bounds (q + 1) * e below divmul), but the
 * free path depends on it, so every offset is tried. */
START_TEST(test_divmul_low_bits_tell_slot_starts) {
  for (unsigned c = 1; c < SIZECLASS_COUNT; c++) {
    uint32_t size = sizeclass_size[c];
    uint64_t divmul = sizeclass_divmul[c];
    for (uint64_t off = 0; off < span_bytes(c); off++) {
      bool says_start = (uint32_t)(off * divmul) < divmul;
      if (says_start != (off % size == 0))
        ck_abort_msg("class %u: offset %u %s a slot start by the low bits", c, (unsigned)off,
                     says_start ? "passes for" : "fails as");
    }
  }
}
END_TEST

static Suite *sizeclasses_suite(void) {
  Suite *s = suite_create("sizeclasses");

  TCase *mapping = tcase_create("mapping");
  tcase_add_test(mapping, test_every_size_maps_to_smallest_class_that_fits);
  tcase_add_test(mapping, test_zero_byte_request_gets_smallest_class);
  suite_add_tcase(s, mapping);

  TCase *shape = tcase_create("shape");
  tcase_add_test(shape, test_class_zero_is_empty_large_class);
  tcase_add_test(shape, test_sizes_are_aligned_and_strictly_increasing);
  tcase_add_test(shape, test_last_class_is_small_size_max);
  suite_add_tcase(s, shape);

  TCase *waste = tcase_create("waste");
  tcase_add_test(waste, test_tail_waste_at_most_one_eighth_above_floor);
  tcase_add_test(waste, test_tail_waste_below_floor_is_under_one_step);
  tcase_add_test(waste, test_span_end_waste_at_most_one_eighth);
  suite_add_tcase(s, waste);

  TCase *layout = tcase_create("layout");
  tcase_add_test(layout, test_objects_fill_span_without_overflowing_it);
  tcase_add_test(layout, test_no_two_classes_share_span_layout);
  tcase_add_test(layout, test_each_class_packs_denser_than_next);
  tcase_add_test(layout, test_max_nelems_is_largest_span_population);
  suite_add_tcase(s, layout);

  TCase *division = tcase_create("division");
  tcase_add_test(division, test_divmul_divides_every_span_offset_exactly);
  tcase_add_test(division, test_divmul_low_bits_tell_slot_starts);
  suite_add_tcase(s, division);

  return s;
}

int main(void) {
  SRunner *sr = srunner_create(sizeclasses_suite());
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
