/*
 * test_page_size.c: mgc on kernels with other page sizes (runtime/init.c,
 * alloc/mheap.c "Kernel pages").
 *
 * The heap manages 8 KiB pages, but mprotect and madvise take whole
 * kernel pages, which may be larger (16 or 64 KiB on some AArch64 and
 * POWER kernels).  os_page_size is replaced here (-Wl,--wrap) by one that
 * reports the size a test sets, and os_commit and os_release by ones that
 * check each range is whole pages of that size before passing it on: on
 * this machine's smaller pages a misaligned range would not fail, so the
 * wrapper fails it.  Each test starts mgc in a child of its own.
 *
 * What larger pages must not break, each checked in the child:
 *   every commit and release is whole (fake) kernel pages;
 *   releasing a free span never clears its neighbours' objects (on this
 *   kernel a release rounded outward would zero a neighbour's 4 KiB
 *   pages: the objects around the freed ones keep a pattern);
 *   memory from gc_alloc reads as zero even where a released span's
 *   edges, which are not released, held freed objects;
 *   the heap's byte counts and lists stay consistent (mheap_is_valid).
 * Page sizes it cannot work with stop the program at gc_init, saying why.
 */
#include <check.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "mgc.h"

#include "alloc/mheap.h"
#include "runtime/os.h"
#include "childtest.h"
#include "gctest.h"

size_t __real_os_page_size(void);
int __real_os_commit(void *p, size_t size);
int __real_os_release(void *p, size_t size);

static size_t fake_page_size; /* 0: the real one */
static size_t commits, releases;

size_t __wrap_os_page_size(void) { return fake_page_size ? fake_page_size : __real_os_page_size(); }

static void require_whole_pages(const char *what, void *p, size_t size) {
  size_t page = fake_page_size ? fake_page_size : __real_os_page_size();
  CHILD_REQUIRE((uintptr_t)p % page == 0 && size % page == 0 && size > 0,
                "%s of %zu bytes at %p is not whole kernel pages of %zu bytes", what, size, p, page);
}

int __wrap_os_commit(void *p, size_t size) {
  require_whole_pages("a commit", p, size);
  commits++;
  return __real_os_commit(p, size);
}

/* Called once, after the first release of memory in [hook_lo, hook_hi). */
static void (*during_release)(void);
static uintptr_t hook_lo, hook_hi;

int __wrap_os_release(void *p, size_t size) {
  require_whole_pages("a release", p, size);
  releases++;
  int err = __real_os_release(p, size);
  if (during_release && (uintptr_t)p >= hook_lo && (uintptr_t)p < hook_hi) {
    void (*hook)(void) = during_release;
    during_release = NULL;
    hook();
  }
  return err;
}

/* A byte of object i's pattern, never 0. */
static unsigned char pattern(size_t i) { return (unsigned char)(0x5a ^ (i * 37)) | 1; }

static void fill(void *p, size_t size, unsigned char b) { memset(p, b, size); }

static void require_filled(const void *p, size_t size, unsigned char b, const char *what, size_t i) {
  const unsigned char *c = p;
  for (size_t k = 0; k < size; k++)
    CHILD_REQUIRE(c[k] == b, "%s %zu: byte %zu of %zu is %#x, not %#x", what, i, k, size, c[k], b);
}

#define LARGE_OBJECTS 96
#define LARGE_SIZE ((size_t)40 << 10) /* 5 of mgc's pages: not whole kernel pages above 8 KiB */
#define HUGE_SIZE (((size_t)5 << 20) + (24 << 10)) /* holds whole pages of any size mgc accepts */
#define SMALL_OBJECTS 4000

/* In a child: start mgc believing pages are *page_size bytes, then free
 * runs of large objects between kept ones, release what is free, and
 * check the kept objects and what is allocated next. */
static void run_heap_with_page_size(void *page_size) {
  fake_page_size = *(const size_t *)page_size;
  gc_init();
  static void *small[SMALL_OBJECTS];
  static void *large[LARGE_OBJECTS];
  for (size_t i = 0; i < SMALL_OBJECTS; i++) {
    size_t size = 16 + (i % 61) * 24;
    small[i] = gc_alloc(size);
    CHILD_REQUIRE(small[i], "gc_alloc(%zu) failed", size);
    fill(small[i], size, pattern(i));
  }
  for (size_t i = 0; i < LARGE_OBJECTS; i++) {
    large[i] = gc_alloc_atomic(LARGE_SIZE);
    CHILD_REQUIRE(large[i], "gc_alloc_atomic(%zu) failed", LARGE_SIZE);
    fill(large[i], LARGE_SIZE, pattern(i));
  }
  void *huge = gc_alloc_atomic(HUGE_SIZE);
  CHILD_REQUIRE(huge, "gc_alloc_atomic(%zu) failed", HUGE_SIZE);
  fill(huge, HUGE_SIZE, 0xee);

  /* Free runs of 1-7 large objects (7 x 40 KiB is more than two pages of
   * 64 KiB, fewer than one of 1 MiB) and every other small object; the
   * huge one goes too.  Freed memory keeps its bytes until released. */
  for (size_t i = 0; i < LARGE_OBJECTS; i++)
    if (i % 8 != 0 && i % 8 > (i / 8) % 7) {
      gc_free(large[i]);
      large[i] = NULL;
    }
  for (size_t i = 0; i < SMALL_OBJECTS; i += 2) {
    gc_free(small[i]);
    small[i] = NULL;
  }
  gc_free(huge);
  gc_collect(); /* large frees during a mark are finished by its sweep */
  size_t released = mheap_scavenge(SIZE_MAX, 0);
  CHILD_REQUIRE(released > 0 && releases > 0, "nothing was released (%zu bytes, %zu calls)", released, releases);
  CHILD_REQUIRE(mheap_is_valid(), "the page heap is inconsistent after releasing");
  struct mheap_stats st;
  mheap_read_stats(&st);
  CHILD_REQUIRE(st.released % fake_page_size == 0 && st.released >= released,
                "%zu bytes counted as released, %zu released by the call", st.released, released);

  for (size_t i = 0; i < LARGE_OBJECTS; i++)
    if (large[i]) require_filled(large[i], LARGE_SIZE, pattern(i), "kept large object", i);
  for (size_t i = 1; i < SMALL_OBJECTS; i += 2) require_filled(small[i], 16 + (i % 61) * 24, pattern(i), "kept small object", i);

  /* New objects come from the released runs, whose edges still hold the
   * freed objects' bytes: gc_alloc must clear them. */
  for (size_t i = 0; i < LARGE_OBJECTS; i++) {
    if (large[i]) continue;
    large[i] = gc_alloc(LARGE_SIZE);
    CHILD_REQUIRE(large[i], "gc_alloc(%zu) failed", LARGE_SIZE);
    require_filled(large[i], LARGE_SIZE, 0, "new large object", i);
  }
  huge = gc_alloc(HUGE_SIZE);
  CHILD_REQUIRE(huge, "gc_alloc(%zu) failed", HUGE_SIZE);
  require_filled(huge, HUGE_SIZE, 0, "new huge object", 0);
  CHILD_REQUIRE(mheap_is_valid(), "the page heap is inconsistent after reuse");
  CHILD_REQUIRE(commits > 0, "no commit went through os_commit");
  _exit(CHILD_EXIT_OK);
}

/* Two free spans that are both released and meet inside a kernel page
 * (neither released the page they share) must merge into one counted as
 * not released, so that the scavenger releases it whole later.  Free spans
 * merge as soon as they touch, so two released ones meet only when one is
 * freed and released while the scavenger has the other out of the lists
 * for its madvise: here the hook does that from inside that madvise. */
#define ROW 6
static void *row[ROW];
static size_t victim;

static void free_the_next_object_and_release_it(void) {
  gc_free(row[victim + 1]);
  CHILD_REQUIRE(mheap_scavenge(SIZE_MAX, 0) > 0, "the neighbour's span was not released");
}

static void run_released_neighbours_merge(void *page_size) {
  fake_page_size = *(const size_t *)page_size;
  gc_init();
  for (size_t i = 0; i < ROW; i++) {
    row[i] = gc_alloc_atomic(LARGE_SIZE);
    CHILD_REQUIRE(row[i], "gc_alloc_atomic(%zu) failed", LARGE_SIZE);
    CHILD_REQUIRE(i == 0 || (uintptr_t)row[i] == (uintptr_t)row[i - 1] + LARGE_SIZE,
                  "large objects %zu and %zu are not neighbours (%p, %p): the test needs them to be", i - 1, i,
                  row[i - 1], row[i]);
  }
  /* A boundary inside a kernel page: 40 KiB objects alternate. */
  victim = 1;
  while ((uintptr_t)row[victim + 1] % fake_page_size == 0) victim++;
  CHILD_REQUIRE(victim + 2 < ROW, "no object of the row starts inside a kernel page");
  gc_free(row[victim]);
  hook_lo = (uintptr_t)row[victim];
  hook_hi = hook_lo + LARGE_SIZE;
  during_release = free_the_next_object_and_release_it;
  CHILD_REQUIRE(mheap_scavenge(SIZE_MAX, 0) > 0, "nothing was released");
  CHILD_REQUIRE(during_release == NULL, "the free span of object %zu was never released", victim);
  CHILD_REQUIRE(mheap_is_valid(), "released bytes miscounted after two released spans merged");
  _exit(CHILD_EXIT_OK);
}

static void require_heap_works(size_t page_size) {
  struct child_outcome r = child_run_captured(run_heap_with_page_size, &page_size);
  ck_assert_msg(WIFEXITED(r.status) && WEXITSTATUS(r.status) == 0,
                "pages of %zu bytes: the child failed (status %#x): %s", page_size, r.status, r.err);
  ck_assert_msg(r.err[0] == '\0', "pages of %zu bytes: mgc said: %s", page_size, r.err);
}

START_TEST(test_pages_that_divide_mgcs_pages_work) {
  require_heap_works(4096);
  require_heap_works(8192);
}
END_TEST

START_TEST(test_larger_pages_work) {
  require_heap_works(16384);
  require_heap_works(65536);
  require_heap_works(MHEAP_OS_PAGE_MAX);
}
END_TEST

START_TEST(test_released_spans_meeting_inside_a_kernel_page_merge_unreleased) {
  size_t page_size = 16384;
  struct child_outcome r = child_run_captured(run_released_neighbours_merge, &page_size);
  ck_assert_msg(WIFEXITED(r.status) && WEXITSTATUS(r.status) == 0, "the child failed (status %#x): %s", r.status,
                r.err);
  ck_assert_msg(r.err[0] == '\0', "mgc said: %s", r.err);
}
END_TEST

static void start_mgc(void *page_size) {
  fake_page_size = *(const size_t *)page_size;
  gc_init();
  _exit(gc_alloc(100) ? CHILD_EXIT_OK : CHILD_EXIT_FAILED);
}

START_TEST(test_unusable_page_sizes_stop_the_program_at_start_with_the_reason) {
  static const size_t sizes[] = {12288, 2 * MHEAP_OS_PAGE_MAX};
  for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
    struct child_outcome r = child_run_captured(start_mgc, (void *)&sizes[i]);
    ck_assert_msg(WIFSIGNALED(r.status) && WTERMSIG(r.status) == SIGABRT,
                  "pages of %zu bytes: the child did not abort (status %#x): %s", sizes[i], r.status, r.err);
    char expected[128];
    snprintf(expected, sizeof expected, "the kernel's pages are %zu bytes", sizes[i]);
    ck_assert_msg(strstr(r.err, expected) && strstr(r.err, "unsupported kernel page size"),
                  "pages of %zu bytes: mgc said: %s", sizes[i], r.err);
  }
}
END_TEST

int main(void) {
  Suite *suite = suite_create("page_size");
  TCase *tc = tcase_create("page_size");
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, test_pages_that_divide_mgcs_pages_work);
  tcase_add_test(tc, test_larger_pages_work);
  tcase_add_test(tc, test_released_spans_meeting_inside_a_kernel_page_merge_unreleased);
  tcase_add_test(tc, test_unusable_page_sizes_stop_the_program_at_start_with_the_reason);
  suite_add_tcase(suite, tc);
  return run_suite(suite);
}
