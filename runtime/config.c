/*
 * config.c: the MGC_* environment variables (see config.h).
 *
 * One table row per variable: its name, how its text is parsed, the range
 * it must fall in and the accepted forms as the report states them.
 * config_load sets the defaults, then reads each variable through
 * load_setting, which either takes the value or prints exactly one line:
 *
 *   mgc: ignoring MGC_GOGC="fast": expected a percentage from -1 to
 *        1000000, or "off"; using the default 100
 *
 * (one line on stderr).  The value is quoted as given, cut to
 * VALUE_SHOWN_MAX bytes and with control and non-ASCII bytes written as
 * \xNN, so that no value can break the line in two or flood the log.
 *
 * Parsing is strict: surrounding spaces are allowed, anything else that is
 * not the accepted form (an empty value, trailing junk, a sign where none
 * belongs, decimals, a value that overflows or lies out of range) is bad.
 */
#include "runtime/config.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/os.h"
#include "runtime/throw.h"

/* Defaults.  SIGPWR is rarely used by programs and, unlike the real-time
 * signals, exists on every Linux libc; MGC_STOP_SIGNAL changes it. */
#define GOGC_DEFAULT 100
#define GOGC_MAX 1000000
#define STOP_SIGNAL_DEFAULT SIGPWR
#define MARK_WORKERS_MAX 256
/* Bytes of a bad value quoted in its report: enough to recognise it. */
#define VALUE_SHOWN_MAX 40

struct mgc_config config;

enum setting_kind {
  SETTING_INT,     /* a decimal integer in [lo, hi] */
  SETTING_GOGC,    /* the same, or "off" (-1) */
  SETTING_BYTES,   /* a byte count with an optional binary unit */
  SETTING_SIGNAL,  /* a signal number mgc can stop threads with */
};

struct setting {
  const char *name;
  enum setting_kind kind;
  long lo, hi;          /* SETTING_INT, SETTING_GOGC */
  const char *forms;    /* what is accepted, for the report */
};

enum { GOGC, MEMLIMIT, MARK_WORKERS, CONCURRENT, TRACE, VERIFY, STOP_SIGNAL };

static const struct setting settings[] = {
  [GOGC] = {"MGC_GOGC", SETTING_GOGC, -1, GOGC_MAX, "a percentage from -1 to 1000000, or \"off\""},
  [MEMLIMIT] = {"MGC_MEMLIMIT", SETTING_BYTES, 0, 0,
                "a byte count with an optional B, KiB, MiB, GiB or TiB suffix"},
  [MARK_WORKERS] = {"MGC_MARK_WORKERS", SETTING_INT, 1, MARK_WORKERS_MAX, "a number of threads from 1 to 256"},
  [CONCURRENT] = {"MGC_CONCURRENT", SETTING_INT, 0, 1, "0 or 1"},
  [TRACE] = {"MGC_TRACE", SETTING_INT, 0, 2, "0, 1 or 2"},
  [VERIFY] = {"MGC_VERIFY", SETTING_INT, 0, 1, "0 or 1"},
  [STOP_SIGNAL] = {"MGC_STOP_SIGNAL", SETTING_SIGNAL, 0, 0,
                   "a signal number from 1 to SIGRTMAX, not SIGKILL, SIGSTOP, SIGSEGV, SIGBUS, SIGILL, "
                   "SIGFPE or one the C library reserves"},
};

/* [*s, *end) without surrounding white space. */
static void trim(const char **s, const char **end) {
  while (*s < *end && isspace((unsigned char)**s)) (*s)++;
  while (*end > *s && isspace((unsigned char)(*end)[-1])) (*end)--;
}

/* Does [s, end) hold exactly the text t? */
static bool text_is(const char *s, const char *end, const char *t) {
  size_t n = strlen(t);
  return (size_t)(end - s) == n && memcmp(s, t, n) == 0;
}

/* Unsigned decimal digits only, no overflow: [s, *stop) is the number. */
static bool parse_digits(const char *s, const char *end, uint64_t *out, const char **stop) {
  uint64_t v = 0;
  const char *p = s;
  for (; p < end && *p >= '0' && *p <= '9'; p++) {
    unsigned d = (unsigned)(*p - '0');
    if (v > (UINT64_MAX - d) / 10) return false;
    v = v * 10 + d;
  }
  if (p == s) return false;
  *out = v;
  *stop = p;
  return true;
}

static bool parse_int_range(const char *s, const char *end, long lo, long hi, long *out) {
  trim(&s, &end);
  bool negative = s < end && *s == '-';
  if (s < end && (*s == '-' || *s == '+')) s++;
  uint64_t mag;
  const char *stop;
  if (!parse_digits(s, end, &mag, &stop) || stop != end) return false;
  if (mag > (uint64_t)LONG_MAX) return false;
  long v = negative ? -(long)mag : (long)mag;
  if (v < lo || v > hi) return false;
  *out = v;
  return true;
}

bool config_parse_int(const char *s, long lo, long hi, long *out) {
  return s && parse_int_range(s, s + strlen(s), lo, hi, out);
}

bool config_parse_gogc(const char *s, int *out) {
  if (!s) return false;
  const char *b = s, *e = s + strlen(s);
  trim(&b, &e);
  long v;
  if (text_is(b, e, "off")) v = -1;
  else if (!parse_int_range(b, e, -1, GOGC_MAX, &v)) return false;
  *out = (int)v;
  return true;
}

bool config_parse_bytes(const char *s, uint64_t *out) {
  if (!s) return false;
  const char *b = s, *e = s + strlen(s);
  trim(&b, &e);
  uint64_t v;
  const char *unit;
  if (!parse_digits(b, e, &v, &unit)) return false;
  static const struct { const char *suffix; unsigned shift; } units[] = {
    {"", 0}, {"B", 0}, {"KiB", 10}, {"MiB", 20}, {"GiB", 30}, {"TiB", 40},
  };
  for (size_t i = 0; i < MGC_ARRAY_LEN(units); i++) {
    if (text_is(unit, e, units[i].suffix)) {
      if (units[i].shift && v > (UINT64_MAX >> units[i].shift)) return false;
      *out = v << units[i].shift;
      return true;
    }
  }
  return false;
}

/* Signals mgc cannot stop threads with: uncatchable ones, synchronous
 * faults (a real fault would be taken for a stop), and the ones between
 * 32 and SIGRTMIN that glibc's threads use itself. */
bool config_signal_is_usable(long sig) {
  if (sig < 1 || sig > SIGRTMAX) return false;
  if (sig == SIGKILL || sig == SIGSTOP || sig == SIGSEGV || sig == SIGBUS || sig == SIGILL || sig == SIGFPE)
    return false;
  return sig < 32 || sig >= SIGRTMIN;
}

bool config_parse_signal(const char *s, int *out) {
  long v;
  if (!config_parse_int(s, 1, SIGRTMAX, &v) || !config_signal_is_usable(v)) return false;
  *out = (int)v;
  return true;
}

/* value, quoted for a report line (see the top of the file). */
static void quote_value(const char *value, char *buf, size_t size) {
  size_t o = 0, i = 0;
  for (; value[i] && i < VALUE_SHOWN_MAX && o + 5 < size; i++) {
    unsigned char c = (unsigned char)value[i];
    if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') buf[o++] = (char)c;
    else o += (size_t)snprintf(buf + o, size - o, "\\x%02x", c);
  }
  if (value[i] && o + 4 < size) o += (size_t)snprintf(buf + o, size - o, "...");
  buf[o] = '\0';
}

static void report_bad_value(const struct setting *st, const char *value, const char *default_text) {
  char quoted[VALUE_SHOWN_MAX * 4 + 8];
  quote_value(value, quoted, sizeof(quoted));
  mgc_report("ignoring %s=\"%s\": expected %s; using the default %s", st->name, quoted, st->forms,
             default_text);
}

/* Read variable `which` into *inout (left alone, with one report, when the
 * value is bad).  Returns whether the variable was set to a good value. */
static bool load_long(int which, long *inout) {
  const struct setting *st = &settings[which];
  const char *s = getenv(st->name);
  if (!s) return false;
  bool ok;
  long v = 0;
  int i = 0;
  switch (st->kind) {
  case SETTING_GOGC:
    ok = config_parse_gogc(s, &i);
    v = i;
    break;
  case SETTING_SIGNAL:
    ok = config_parse_signal(s, &i);
    v = i;
    break;
  default:
    ok = config_parse_int(s, st->lo, st->hi, &v);
    break;
  }
  if (ok) {
    *inout = v;
    return true;
  }
  char def[32];
  if (st->kind == SETTING_GOGC && *inout < 0) snprintf(def, sizeof(def), "\"off\"");
  else snprintf(def, sizeof(def), "%ld", *inout);
  report_bad_value(st, s, def);
  return false;
}

static void load_bytes(int which, uint64_t *inout) {
  const struct setting *st = &settings[which];
  const char *s = getenv(st->name);
  if (!s) return;
  uint64_t v;
  if (config_parse_bytes(s, &v)) {
    *inout = v;
    return;
  }
  char def[32];
  if (*inout == UINT64_MAX) snprintf(def, sizeof(def), "(no limit)");
  else snprintf(def, sizeof(def), "%llu", (unsigned long long)*inout);
  report_bad_value(st, s, def);
}

void config_load(void) {
  int cpus = os_cpu_count();
  long v;
  v = GOGC_DEFAULT;
  load_long(GOGC, &v);
  config.gogc = (int)v;
  config.memlimit = UINT64_MAX;
  load_bytes(MEMLIMIT, &config.memlimit);
  v = cpus / 4 > 1 ? cpus / 4 : 1;
  config.mark_workers_set = load_long(MARK_WORKERS, &v);
  config.mark_workers = (int)v;
  v = 1;
  load_long(CONCURRENT, &v);
  config.concurrent = v != 0;
  v = 0;
  load_long(TRACE, &v);
  config.trace = (int)v;
  v = 0;
  load_long(VERIFY, &v);
  config.verify = v != 0;
  v = STOP_SIGNAL_DEFAULT;
  load_long(STOP_SIGNAL, &v);
  config.stop_signal = (int)v;
}
