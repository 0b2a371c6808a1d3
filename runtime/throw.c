/*
 * throw.c: fatal errors and user-facing reports (see throw.h).
 *
 * Output goes straight to file descriptor 2 with write(2): no stdio buffers,
 * no allocation, safe in a signal handler and with the heap lock held.
 */
#include "runtime/throw.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void mgc_write_stderr(const char *s) {
  size_t len = strlen(s);
  while (len > 0) {
    ssize_t n = write(STDERR_FILENO, s, len);
    if (n <= 0) return;
    s += n;
    len -= (size_t)n;
  }
}

void mgc_throw(const char *msg) {
  mgc_write_stderr("mgc: fatal: ");
  mgc_write_stderr(msg);
  mgc_write_stderr("\n");
  abort();
}

static void write_decimal(int value) {
  char buf[16];
  int i = (int)sizeof(buf) - 1;
  buf[i] = '\0';
  unsigned v = value < 0 ? 0u : (unsigned)value;
  do {
    buf[--i] = (char)('0' + v % 10);
    v /= 10;
  } while (v && i > 0);
  mgc_write_stderr(&buf[i]);
}

void mgc_throw_at(const char *file, int line, const char *msg) {
  mgc_write_stderr("mgc: fatal: ");
  mgc_write_stderr(file);
  mgc_write_stderr(":");
  write_decimal(line);
  mgc_write_stderr(": ");
  mgc_write_stderr(msg);
  mgc_write_stderr("\n");
  abort();
}

/* vsnprintf into a stack buffer does not allocate for the formats mgc uses
 * (%s, %d, %zu, %p, %lx). */
void mgc_report(const char *fmt, ...) {
  char line[512];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(line, sizeof(line) - 1, fmt, ap);
  va_end(ap);
  if (n < 0) return;
  if ((size_t)n > sizeof(line) - 2) n = (int)sizeof(line) - 2;
  mgc_write_stderr("mgc: ");
  line[n] = '\n';
  line[n + 1] = '\0';
  mgc_write_stderr(line);
}
