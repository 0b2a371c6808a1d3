/*
 * config.c: the MGC_* environment variables (see config.h).
 */
#include "runtime/config.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/os.h"
#include "runtime/throw.h"

/* Defaults.  SIGPWR is rarely used by programs and, unlike the real-time
 * signals, exists on every Linux libc; MGC_STOP_SIGNAL changes it. */
#define GOGC_DEFAULT 100
#define STOP_SIGNAL_DEFAULT SIGPWR
#define MARK_WORKERS_MAX 256

struct mgc_config config;

bool config_parse_int(const char *s, long lo, long hi, long *out) {
  if (!s || !*s) return false;
  char *end;
  errno = 0;
  long v = strtol(s, &end, 10);
  while (isspace((unsigned char)*end)) end++;
  if (errno || *end || end == s || v < lo || v > hi) return false;
  *out = v;
  return true;
}

bool config_parse_gogc(const char *s, int *out) {
  if (s && strcmp(s, "off") == 0) {
    *out = -1;
    return true;
  }
  long v;
  if (!config_parse_int(s, -1, 1000000, &v)) return false;
  *out = (int)v;
  return true;
}

bool config_parse_bytes(const char *s, uint64_t *out) {
  if (!s || !*s || *s == '-') return false;
  char *end;
  errno = 0;
  unsigned long long v = strtoull(s, &end, 10);
  if (errno || end == s) return false;
  static const struct { const char *suffix; unsigned shift; } units[] = {
    {"", 0}, {"B", 0}, {"KiB", 10}, {"MiB", 20}, {"GiB", 30}, {"TiB", 40},
  };
  for (size_t i = 0; i < MGC_ARRAY_LEN(units); i++) {
    if (strcmp(end, units[i].suffix) == 0) {
      if (units[i].shift && v > (UINT64_MAX >> units[i].shift)) return false;
      *out = (uint64_t)v << units[i].shift;
      return true;
    }
  }
  return false;
}

static void bad_value(const char *name, const char *value, const char *forms) {
  mgc_report("ignoring %s=\"%s\": expected %s; using the default", name, value, forms);
}

static void load_int(const char *name, long lo, long hi, const char *forms, long *inout) {
  const char *s = getenv(name);
  if (!s) return;
  long v;
  if (config_parse_int(s, lo, hi, &v)) *inout = v;
  else bad_value(name, s, forms);
}

void config_load(void) {
  int cpus = os_cpu_count();
  config.gogc = GOGC_DEFAULT;
  config.memlimit = UINT64_MAX;
  config.mark_workers = cpus / 4 > 1 ? cpus / 4 : 1;
  config.concurrent = true;
  config.trace = 0;
  config.verify = false;
  config.stop_signal = STOP_SIGNAL_DEFAULT;

  const char *s = getenv("MGC_GOGC");
  if (s && !config_parse_gogc(s, &config.gogc))
    bad_value("MGC_GOGC", s, "a percentage from -1 to 1000000, or \"off\"");
  s = getenv("MGC_MEMLIMIT");
  if (s && !config_parse_bytes(s, &config.memlimit))
    bad_value("MGC_MEMLIMIT", s, "a byte count with an optional B, KiB, MiB, GiB or TiB suffix");

  long v = config.mark_workers;
  config.mark_workers_set = getenv("MGC_MARK_WORKERS") != NULL;
  load_int("MGC_MARK_WORKERS", 1, MARK_WORKERS_MAX, "a number of threads from 1 to 256", &v);
  config.mark_workers = (int)v;
  v = config.concurrent;
  load_int("MGC_CONCURRENT", 0, 1, "0 or 1", &v);
  config.concurrent = v != 0;
  v = config.trace;
  load_int("MGC_TRACE", 0, 2, "0, 1 or 2", &v);
  config.trace = (int)v;
  v = config.verify;
  load_int("MGC_VERIFY", 0, 1, "0 or 1", &v);
  config.verify = v != 0;
  v = config.stop_signal;
  load_int("MGC_STOP_SIGNAL", 1, SIGRTMAX, "a signal number other than SIGKILL, SIGSTOP, SIGSEGV or SIGBUS", &v);
  if (v == SIGKILL || v == SIGSTOP || v == SIGSEGV || v == SIGBUS) {
    bad_value("MGC_STOP_SIGNAL", getenv("MGC_STOP_SIGNAL"),
              "a signal number other than SIGKILL, SIGSTOP, SIGSEGV or SIGBUS");
    v = STOP_SIGNAL_DEFAULT;
  }
  config.stop_signal = (int)v;
}
