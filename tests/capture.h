/*
 * capture.h: catch what mgc writes on stderr.  capture_begin/capture_end
 * find the first "mgc: ..." line, for tests that check that a user mistake
 * is reported (runtime/throw.h); capture_text_begin/capture_text_end
 * return everything written (MGC_VERIFY and MGC_TRACE lines, say) and echo
 * it to the real stderr, so a failing run shows it.  Shared by the suites;
 * each test process uses one capture at a time.
 */
#ifndef MGC_TESTS_CAPTURE_H
#define MGC_TESTS_CAPTURE_H

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int capture_saved_stderr = -1;
static FILE *capture_file;

/* From now on stderr goes to a temporary file. */
__attribute__((unused)) static void capture_begin(void) {
  fflush(stderr);
  capture_file = tmpfile();
  ck_assert(capture_file != NULL);
  capture_saved_stderr = dup(STDERR_FILENO);
  ck_assert(capture_saved_stderr >= 0);
  ck_assert(dup2(fileno(capture_file), STDERR_FILENO) >= 0);
}

/* Restores stderr; returns the first line starting with "mgc: " (in a
 * static buffer), or NULL. */
__attribute__((unused)) static const char *capture_end(void) {
  static char line[1024];
  fflush(stderr);
  dup2(capture_saved_stderr, STDERR_FILENO);
  close(capture_saved_stderr);
  rewind(capture_file);
  const char *found = NULL;
  while (!found && fgets(line, sizeof(line), capture_file))
    if (strncmp(line, "mgc: ", 5) == 0) found = line;
  fclose(capture_file);
  return found;
}

/* Captured text longer than this is cut (the tests look for lines). */
#define CAPTURE_TEXT_MAX (1u << 20)

struct capture_text {
  int saved_fd;
  int file_fd;
};

/* From now on file descriptor 2 goes to an unlinked temporary file. */
__attribute__((unused)) static void capture_text_begin(struct capture_text *c) {
  char path[] = "/tmp/mgc-test-stderr-XXXXXX";
  c->file_fd = mkstemp(path);
  ck_assert_int_ge(c->file_fd, 0);
  unlink(path);
  fflush(stderr);
  c->saved_fd = dup(2);
  ck_assert_int_ge(c->saved_fd, 0);
  ck_assert_int_eq(dup2(c->file_fd, 2), 2);
}

/* Restores stderr; returns the captured text (malloc'd, NUL-terminated). */
__attribute__((unused)) static char *capture_text_end(struct capture_text *c) {
  fflush(stderr);
  ck_assert_int_eq(dup2(c->saved_fd, 2), 2);
  close(c->saved_fd);
  off_t len = lseek(c->file_fd, 0, SEEK_END);
  if (len < 0) len = 0;
  if ((size_t)len > CAPTURE_TEXT_MAX) len = CAPTURE_TEXT_MAX;
  char *text = malloc((size_t)len + 1);
  ck_assert_ptr_nonnull(text);
  ssize_t got = pread(c->file_fd, text, (size_t)len, 0);
  text[got > 0 ? got : 0] = '\0';
  close(c->file_fd);
  if (got > 0 && write(2, text, (size_t)got) < 0) { /* best effort echo */
  }
  return text;
}

#endif /* MGC_TESTS_CAPTURE_H */
