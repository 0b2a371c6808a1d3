/*
 * test_types.c: typed objects (gc_type_new, gc_type_new_bitmap,
 * gc_type_new_traced, gc_alloc_typed) are scanned precisely: their pointer
 * words keep objects alive, their other words never do, and they behave as
 * ordinary objects for gc_size, gc_base, gc_free and gc_realloc.
 */
#include <check.h>
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "mgc.h"

#include "gctest.h"

#define COUNT 1000
#define TARGET_BYTES 48
#define SEED 0x7e57

/* An element: a pointer word, then a word that holds a heap address as an
 * integer (say, a hash of it), then a plain integer. */
struct pair {
  void *ptr;
  uintptr_t not_a_pointer;
  uintptr_t n;
};

static void unexpected_finalizer(void *obj, void *data) {
  (void)data;
  ck_abort_msg("finalizer ran for %p, which should have had none", obj);
}

static const gc_type *pair_type(void) {
  static const size_t offsets[] = {offsetof(struct pair, ptr)};
  const gc_type *t = gc_type_new(sizeof(struct pair), offsets, 1);
  ck_assert_ptr_nonnull(t);
  return t;
}

static struct pair *holders[COUNT];      /* a root: the holders themselves */
static uintptr_t hidden_kept[COUNT];     /* targets of pointer words */
static uintptr_t hidden_unkept[COUNT];   /* targets of non-pointer words */

static GCTEST_NOINLINE void *new_target(uint64_t seed) {
  void *p = gc_alloc(TARGET_BYTES);
  ck_assert_ptr_nonnull(p);
  pattern_fill(p, TARGET_BYTES, seed);
  return p;
}

static GCTEST_NOINLINE void build_pairs(const gc_type *t) {
  for (int i = 0; i < COUNT; i++) {
    struct pair *h = gc_alloc_typed(sizeof(struct pair), t);
    ck_assert_ptr_nonnull(h);
    void *kept = new_target(SEED + (uint64_t)i);
    void *unkept = new_target(SEED + COUNT + (uint64_t)i);
    GC_WRITE(&h->ptr, kept);
    h->not_a_pointer = (uintptr_t)unkept;
    h->n = (uintptr_t)i;
    holders[i] = h;
    hidden_kept[i] = hide(kept);
    hidden_unkept[i] = hide(unkept);
  }
}

START_TEST(test_pointer_words_keep_targets_and_other_words_do_not) {
  build_pairs(pair_type());
  collect_clean();
  for (int i = 0; i < COUNT; i++) {
    ck_assert_ptr_eq(holders[i]->ptr, unhide(hidden_kept[i]));
    ck_assert_uint_eq(pattern_check(holders[i]->ptr, TARGET_BYTES, SEED + (uint64_t)i), TARGET_BYTES);
    ck_assert_uint_eq(holders[i]->n, (uintptr_t)i);
  }
  size_t dead = count_reclaimed(hidden_unkept, COUNT);
  ck_assert_msg(dead * 100 >= (size_t)COUNT * GCTEST_RECLAIM_PERCENT,
                "only %zu of %d objects named by non-pointer words were reclaimed", dead, COUNT);
}
END_TEST

/* An array of COUNT elements in one typed object: every element's pointer
 * word is scanned with the element's layout. */
static struct pair *array;

static GCTEST_NOINLINE void build_array(void) {
  array = gc_alloc_typed(COUNT * sizeof(struct pair), pair_type());
  ck_assert_ptr_nonnull(array);
  ck_assert_uint_ge(gc_size(array), COUNT * sizeof(struct pair));
  for (int i = 0; i < COUNT; i++) {
    void *kept = new_target(SEED + (uint64_t)i);
    void *unkept = new_target(SEED + COUNT + (uint64_t)i);
    GC_WRITE(&array[i].ptr, kept);
    array[i].not_a_pointer = (uintptr_t)unkept;
    hidden_kept[i] = hide(kept);
    hidden_unkept[i] = hide(unkept);
  }
}

START_TEST(test_typed_array_is_scanned_element_by_element) {
  build_array();
  collect_clean();
  for (int i = 0; i < COUNT; i++)
    ck_assert_uint_eq(pattern_check(array[i].ptr, TARGET_BYTES, SEED + (uint64_t)i), TARGET_BYTES);
  size_t dead = count_reclaimed(hidden_unkept, COUNT);
  ck_assert_msg(dead * 100 >= (size_t)COUNT * GCTEST_RECLAIM_PERCENT,
                "only %zu of %d objects named by non-pointer words were reclaimed", dead, COUNT);
}
END_TEST

START_TEST(test_bitmap_type_matches_offset_type) {
  uint64_t bits = 1; /* word 0 */
  const gc_type *t = gc_type_new_bitmap(sizeof(struct pair), &bits);
  ck_assert_ptr_nonnull(t);
  build_pairs(t);
  collect_clean();
  for (int i = 0; i < COUNT; i++)
    ck_assert_uint_eq(pattern_check(holders[i]->ptr, TARGET_BYTES, SEED + (uint64_t)i), TARGET_BYTES);
  ck_assert_uint_ge(count_reclaimed(hidden_unkept, COUNT) * 100, (size_t)COUNT * GCTEST_RECLAIM_PERCENT);
}
END_TEST

/* A traced type: a tagged cell whose second word is a pointer only when
 * the tag says so. */
struct cell {
  uintptr_t tag; /* 1: val is a pointer, 0: an integer */
  uintptr_t val;
};

static void trace_cell(void *obj, size_t size, gc_visit_fn visit, void *ctx) {
  struct cell *c = obj;
  for (size_t i = 0; i < size / sizeof(*c); i++)
    if (c[i].tag == 1) visit((void **)&c[i].val, ctx);
}

static struct cell *cells[COUNT];

static GCTEST_NOINLINE void build_cells(const gc_type *t) {
  for (int i = 0; i < COUNT; i++) {
    struct cell *c = gc_alloc_typed(sizeof(*c), t);
    ck_assert_ptr_nonnull(c);
    void *target = new_target(SEED + (uint64_t)i);
    c->tag = (uintptr_t)(i % 2);
    c->val = (uintptr_t)target;
    cells[i] = c;
    hidden_kept[i] = hide(target);
  }
}

START_TEST(test_traced_type_keeps_only_what_the_callback_visits) {
  const gc_type *t = gc_type_new_traced(trace_cell);
  ck_assert_ptr_nonnull(t);
  build_cells(t);
  collect_clean();
  size_t untagged_dead = 0;
  for (int i = 0; i < COUNT; i++) {
    if (i % 2) {
      ck_assert_ptr_eq((void *)cells[i]->val, unhide(hidden_kept[i]));
      ck_assert_uint_eq(pattern_check((void *)cells[i]->val, TARGET_BYTES, SEED + (uint64_t)i), TARGET_BYTES);
    } else if (gc_base(unhide(hidden_kept[i])) == NULL) {
      untagged_dead++;
    }
  }
  ck_assert_msg(untagged_dead * 100 >= (size_t)(COUNT / 2) * GCTEST_RECLAIM_PERCENT,
                "only %zu of %d integer-tagged targets were reclaimed", untagged_dead, COUNT / 2);
}
END_TEST

START_TEST(test_typed_objects_answer_size_base_free_and_realloc) {
  const gc_type *t = pair_type();
  struct pair *p = gc_alloc_typed(sizeof(*p), t);
  ck_assert_ptr_nonnull(p);
  ck_assert_uint_ge(gc_size(p), sizeof(*p));
  ck_assert_ptr_eq(gc_base((char *)p + 5), p);
  /* Inside the header: not inside the object the program sees. */
  ck_assert_ptr_null(gc_base((char *)p - 1));
  ck_assert_ptr_null(gc_base((char *)p - sizeof(void *)));
  ck_assert_uint_eq(gc_size((char *)p - sizeof(void *)), 0);
  ck_assert_int_eq(gc_set_finalizer((char *)p - sizeof(void *), unexpected_finalizer, NULL), EINVAL);
  ck_assert_uint_eq(gc_size((char *)p + 8), 0);
  p->n = 42;
  struct pair *q = gc_realloc(p, 64 * sizeof(*q));
  ck_assert_ptr_nonnull(q);
  ck_assert_uint_eq(q->n, 42);
  ck_assert_uint_ge(gc_size(q), 64 * sizeof(*q));
  /* The grown object is still typed: element 63's pointer word counts. */
  void *target = new_target(SEED);
  GC_WRITE(&q[63].ptr, target);
  holders[0] = q;
  hidden_kept[0] = hide(target);
  target = NULL;
  collect_clean();
  ck_assert_uint_eq(pattern_check(unhide(hidden_kept[0]), TARGET_BYTES, SEED), TARGET_BYTES);
  gc_free(holders[0]);
  holders[0] = NULL;
  ck_assert_ptr_null(gc_base(q));
}
END_TEST

START_TEST(test_bad_layouts_are_refused) {
  size_t misaligned = 3, outside = sizeof(struct pair);
  ck_assert_ptr_null(gc_type_new(sizeof(struct pair), &misaligned, 1));
  ck_assert_ptr_null(gc_type_new(sizeof(struct pair), &outside, 1));
  ck_assert_ptr_null(gc_type_new(0, NULL, 0));
  ck_assert_ptr_null(gc_type_new_traced(NULL));
  ck_assert_ptr_null(gc_alloc_typed(16, (const gc_type *)&misaligned));
}
END_TEST

static Suite *types_suite(void) {
  Suite *s = suite_create("types");
  TCase *tc = tcase_create("precise");
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, test_pointer_words_keep_targets_and_other_words_do_not);
  tcase_add_test(tc, test_typed_array_is_scanned_element_by_element);
  tcase_add_test(tc, test_bitmap_type_matches_offset_type);
  tcase_add_test(tc, test_traced_type_keeps_only_what_the_callback_visits);
  tcase_add_test(tc, test_typed_objects_answer_size_base_free_and_realloc);
  tcase_add_test(tc, test_bad_layouts_are_refused);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) { return run_suite(types_suite()); }
