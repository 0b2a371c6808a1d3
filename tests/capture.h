/*
 * capture.h: catch what mgc reports on stderr, for tests that check that a
 * user mistake is reported ("mgc: ..." lines, runtime/throw.h).  Shared by
 * the suites; each test process uses one capture at a time.
 */
#ifndef MGC_TESTS_CAPTURE_H
#define MGC_TESTS_CAPTURE_H

#include <check.h>
#include <stdio.h>
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

#endif /* MGC_TESTS_CAPTURE_H */
