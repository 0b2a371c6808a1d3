/*
 * test_page_size.c: mgc on kernels with other page sizes (runtime/init.c).
 *
 * The heap commits and releases memory in 8 KiB pages.  Kernels whose
 * pages divide that (4 KiB, 8 KiB) are fine; on one with larger pages
 * (16 or 64 KiB, found on some AArch64 and POWER systems) the first commit
 * would fail and every allocation look like running out of memory, so
 * gc_init stops the program at once and says why.  os_page_size is
 * replaced here (-Wl,--wrap) by one that reports the size a test sets, and
 * each test starts mgc in a child of its own.
 */
#include <check.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "mgc.h"

#include "runtime/os.h"
#include "childtest.h"

size_t __real_os_page_size(void);
static size_t fake_page_size; /* 0: the real one */

size_t __wrap_os_page_size(void) { return fake_page_size ? fake_page_size : __real_os_page_size(); }

/* In a child: start mgc believing pages are *page_size bytes, allocate
 * and collect. */
static void start_mgc(void *page_size) {
  fake_page_size = *(const size_t *)page_size;
  gc_init();
  void *p = gc_alloc(100);
  void *big = gc_alloc(1 << 20);
  gc_collect();
  _exit(p && big ? CHILD_EXIT_OK : CHILD_EXIT_FAILED);
}

static struct child_outcome start_with_page_size(size_t page_size) {
  return child_run_captured(start_mgc, &page_size);
}

START_TEST(test_pages_that_divide_mgcs_pages_work) {
  static const size_t sizes[] = {4096, 8192};
  for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
    struct child_outcome r = start_with_page_size(sizes[i]);
    ck_assert_msg(WIFEXITED(r.status) && WEXITSTATUS(r.status) == 0,
                  "pages of %zu bytes: the child failed (status %#x): %s", sizes[i], r.status, r.err);
    ck_assert_msg(r.err[0] == '\0', "pages of %zu bytes: mgc said: %s", sizes[i], r.err);
  }
}
END_TEST

START_TEST(test_larger_pages_stop_the_program_at_start_with_the_reason) {
  static const size_t sizes[] = {16384, 65536};
  for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
    struct child_outcome r = start_with_page_size(sizes[i]);
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
  tcase_add_test(tc, test_pages_that_divide_mgcs_pages_work);
  tcase_add_test(tc, test_larger_pages_stop_the_program_at_start_with_the_reason);
  suite_add_tcase(suite, tc);
  SRunner *runner = srunner_create(suite);
  srunner_run_all(runner, CK_NORMAL);
  int failed = srunner_ntests_failed(runner);
  srunner_free(runner);
  return failed ? 1 : 0;
}
