/*
 * test_config.c: the MGC_* environment variables (runtime/config.c).
 *
 * Contract (runtime/config.h, docs/tuning.md): a bad value is never taken
 * and never crashes; mgc prints exactly one line on stderr that starts
 * with "mgc: " and names the variable, the value, the accepted forms and
 * the default, and the default is used.  Good values are taken silently.
 *
 * Concerns, one TCase each:
 *   bad       every variable with every kind of bad value (empty, blank,
 *             garbage, negative, overflow, out of range, trailing junk,
 *             decimals, embedded newline, huge);
 *   good      accepted forms of each variable, silently;
 *   process   gc_init in a forked child with bad values everywhere: one
 *             line per variable, and the heap works (collections with the
 *             default stop signal).
 *
 * Links the internal library: config_load() is called directly in a
 * process that never starts mgc (the process TCase forks for that).
 */
#include <check.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "mgc.h"
#include "runtime/config.h"
#include "childtest.h"

#define REPORT_MAX 8192
#define HUGE_VALUE_BYTES 5000

static const char *const variables[] = {
  "MGC_GOGC", "MGC_MEMLIMIT", "MGC_MARK_WORKERS", "MGC_CONCURRENT",
  "MGC_TRACE", "MGC_VERIFY", "MGC_STOP_SIGNAL",
};
#define NVARIABLES (sizeof(variables) / sizeof(variables[0]))

/* Bad for every variable. */
static const char *const bad_for_all[] = {
  "", " ", "abc", "1x", "x1", "0x10", "1.5", "1e3", "1 2", "--1", "+", "-", "\n",
  "1\nmgc: injected", "99999999999999999999999", "-99999999999999999999999",
  "18446744073709551616", "\"1\"", "1;2",
};

struct bad_value {
  const char *name;
  const char *value;
};

/* Bad for one variable (out of its range, or a form another accepts). */
static const struct bad_value bad_specific[] = {
  {"MGC_GOGC", "-2"}, {"MGC_GOGC", "1000001"}, {"MGC_GOGC", "OFF"}, {"MGC_GOGC", "off1"},
  {"MGC_GOGC", "2147483648"}, {"MGC_GOGC", "100%"}, {"MGC_GOGC", "9223372036854775808"},
  {"MGC_MARK_WORKERS", "9223372036854775808"}, {"MGC_STOP_SIGNAL", "-9223372036854775809"},
  {"MGC_MEMLIMIT", "-1"}, {"MGC_MEMLIMIT", " -5"}, {"MGC_MEMLIMIT", "+5"}, {"MGC_MEMLIMIT", "10mib"},
  {"MGC_MEMLIMIT", "10 MiB"}, {"MGC_MEMLIMIT", "1.5GiB"}, {"MGC_MEMLIMIT", "KiB"},
  {"MGC_MEMLIMIT", "10KiBx"}, {"MGC_MEMLIMIT", "17000000TiB"}, {"MGC_MEMLIMIT", "10MB"},
  {"MGC_MEMLIMIT", "off"},
  {"MGC_MARK_WORKERS", "0"}, {"MGC_MARK_WORKERS", "-1"}, {"MGC_MARK_WORKERS", "257"},
  {"MGC_CONCURRENT", "2"}, {"MGC_CONCURRENT", "-1"}, {"MGC_CONCURRENT", "yes"},
  {"MGC_TRACE", "3"}, {"MGC_TRACE", "-1"},
  {"MGC_VERIFY", "2"}, {"MGC_VERIFY", "true"},
  {"MGC_STOP_SIGNAL", "0"}, {"MGC_STOP_SIGNAL", "-1"}, {"MGC_STOP_SIGNAL", "9"},
  {"MGC_STOP_SIGNAL", "19"}, {"MGC_STOP_SIGNAL", "11"}, {"MGC_STOP_SIGNAL", "7"},
  {"MGC_STOP_SIGNAL", "4"}, {"MGC_STOP_SIGNAL", "8"}, {"MGC_STOP_SIGNAL", "32"},
  {"MGC_STOP_SIGNAL", "33"}, {"MGC_STOP_SIGNAL", "65"}, {"MGC_STOP_SIGNAL", "SIGUSR2"},
};

struct good_value {
  const char *name;
  const char *value;
};

static const struct good_value good_values[] = {
  {"MGC_GOGC", "50"}, {"MGC_GOGC", "0"}, {"MGC_GOGC", "-1"}, {"MGC_GOGC", "off"}, {"MGC_GOGC", " 200 "},
  {"MGC_GOGC", "1000000"}, {"MGC_GOGC", "+7"},
  {"MGC_MEMLIMIT", "0"}, {"MGC_MEMLIMIT", "1024"}, {"MGC_MEMLIMIT", "64MiB"}, {"MGC_MEMLIMIT", "3GiB"},
  {"MGC_MEMLIMIT", "2TiB"}, {"MGC_MEMLIMIT", "5B"}, {"MGC_MEMLIMIT", "18446744073709551615"},
  {"MGC_MARK_WORKERS", "1"}, {"MGC_MARK_WORKERS", "256"},
  {"MGC_CONCURRENT", "0"}, {"MGC_CONCURRENT", "1"},
  {"MGC_TRACE", "0"}, {"MGC_TRACE", "2"},
  {"MGC_VERIFY", "0"}, {"MGC_VERIFY", "1"},
  {"MGC_STOP_SIGNAL", "12"}, {"MGC_STOP_SIGNAL", "10"}, {"MGC_STOP_SIGNAL", "40"},
};

static struct mgc_config defaults;

/* ---- helpers ---- */

static void unset_all(void) {
  for (size_t i = 0; i < NVARIABLES; i++) unsetenv(variables[i]);
}

static void setup(void) {
  unset_all();
  config_load();
  defaults = config;
}

/* Run config_load with stderr in a buffer; returns the text. */
static const char *load_capturing(void) {
  static char text[REPORT_MAX];
  fflush(stderr);
  FILE *f = tmpfile();
  ck_assert(f != NULL);
  int saved = dup(STDERR_FILENO);
  ck_assert(saved >= 0);
  ck_assert(dup2(fileno(f), STDERR_FILENO) >= 0);
  config_load();
  fflush(stderr);
  dup2(saved, STDERR_FILENO);
  close(saved);
  rewind(f);
  size_t n = fread(text, 1, sizeof(text) - 1, f);
  text[n] = '\0';
  fclose(f);
  return text;
}

static size_t count_lines(const char *text) {
  size_t n = 0;
  for (const char *p = text; *p; p++)
    if (*p == '\n') n++;
  return n;
}

static bool same_config(const struct mgc_config *a, const struct mgc_config *b) {
  return a->gogc == b->gogc && a->memlimit == b->memlimit && a->mark_workers == b->mark_workers &&
         a->mark_workers_set == b->mark_workers_set && a->concurrent == b->concurrent &&
         a->trace == b->trace && a->verify == b->verify && a->stop_signal == b->stop_signal;
}

/* The default of variable `name`, as the report must state it. */
static void default_text(const char *name, char *buf, size_t size) {
  if (strcmp(name, "MGC_GOGC") == 0) snprintf(buf, size, "%d", defaults.gogc);
  else if (strcmp(name, "MGC_MEMLIMIT") == 0) snprintf(buf, size, "(no limit)");
  else if (strcmp(name, "MGC_MARK_WORKERS") == 0) snprintf(buf, size, "%d", defaults.mark_workers);
  else if (strcmp(name, "MGC_CONCURRENT") == 0) snprintf(buf, size, "%d", defaults.concurrent);
  else if (strcmp(name, "MGC_TRACE") == 0) snprintf(buf, size, "%d", defaults.trace);
  else if (strcmp(name, "MGC_VERIFY") == 0) snprintf(buf, size, "%d", defaults.verify);
  else snprintf(buf, size, "%d", defaults.stop_signal);
}

/* The printable start of value, as it must appear in the report. */
static void printable_prefix(const char *value, char *buf, size_t size) {
  size_t o = 0;
  for (size_t i = 0; value[i] && o + 1 < size && i < 20; i++) {
    unsigned char c = (unsigned char)value[i];
    if (c < 0x20 || c >= 0x7f || c == '"' || c == '\\') break;
    buf[o++] = (char)c;
  }
  buf[o] = '\0';
}

static void expect_rejected(const char *name, const char *value) {
  unset_all();
  ck_assert_int_eq(setenv(name, value, 1), 0);
  const char *text = load_capturing();
  unsetenv(name);
  ck_assert_msg(count_lines(text) == 1 && strncmp(text, "mgc: ", 5) == 0,
                "%s=\"%s\": expected one \"mgc: \" line, got: %s", name, value, text);
  ck_assert_msg(strstr(text, name) != NULL, "%s: the report does not name the variable: %s", name, text);
  char prefix[32], def[64], tail[96];
  printable_prefix(value, prefix, sizeof(prefix));
  ck_assert_msg(strstr(text, prefix) != NULL, "%s=\"%s\": the report does not quote the value: %s", name,
                value, text);
  ck_assert_msg(strstr(text, "expected ") != NULL, "%s: the report does not say what is accepted: %s", name,
                text);
  default_text(name, def, sizeof(def));
  snprintf(tail, sizeof(tail), "using the default %s\n", def);
  ck_assert_msg(strlen(text) >= strlen(tail) && strcmp(text + strlen(text) - strlen(tail), tail) == 0,
                "%s=\"%s\": the report does not end with \"%s\": %s", name, value, tail, text);
  ck_assert_msg(same_config(&config, &defaults), "%s=\"%s\": a setting changed from its default", name, value);
}

/* ---- bad ---- */

START_TEST(test_bad_value_of_any_form_gives_one_line_and_the_default) {
  const char *name = variables[_i];
  for (size_t v = 0; v < sizeof(bad_for_all) / sizeof(bad_for_all[0]); v++) expect_rejected(name, bad_for_all[v]);
}
END_TEST

START_TEST(test_value_out_of_a_variables_range_gives_one_line_and_the_default) {
  for (size_t i = 0; i < sizeof(bad_specific) / sizeof(bad_specific[0]); i++)
    expect_rejected(bad_specific[i].name, bad_specific[i].value);
}
END_TEST

START_TEST(test_huge_value_is_reported_on_one_short_line) {
  static char huge[HUGE_VALUE_BYTES + 1];
  memset(huge, '7', HUGE_VALUE_BYTES);
  for (size_t i = 0; i < NVARIABLES; i++) {
    expect_rejected(variables[i], huge);
    unset_all();
    setenv(variables[i], huge, 1);
    const char *text = load_capturing();
    unsetenv(variables[i]);
    ck_assert_msg(strlen(text) < 400, "%s: a huge value made a %zu-byte report", variables[i], strlen(text));
  }
}
END_TEST

START_TEST(test_control_bytes_in_a_value_are_escaped) {
  expect_rejected("MGC_TRACE", "1\nmgc: injected\r\x1b[2J");
  unset_all();
  setenv("MGC_TRACE", "1\nmgc: injected", 1);
  const char *text = load_capturing();
  unsetenv("MGC_TRACE");
  ck_assert_msg(strstr(text, "\\x0a") != NULL, "the newline was not written as \\x0a: %s", text);
}
END_TEST

START_TEST(test_every_variable_bad_at_once_gives_one_line_each) {
  unset_all();
  for (size_t i = 0; i < NVARIABLES; i++) setenv(variables[i], "bad", 1);
  const char *text = load_capturing();
  unset_all();
  ck_assert_msg(count_lines(text) == NVARIABLES, "expected %zu lines, got: %s", NVARIABLES, text);
  for (size_t i = 0; i < NVARIABLES; i++)
    ck_assert_msg(strstr(text, variables[i]) != NULL, "no line for %s: %s", variables[i], text);
  ck_assert(same_config(&config, &defaults));
}
END_TEST

/* ---- good ---- */

START_TEST(test_accepted_values_are_taken_silently) {
  for (size_t i = 0; i < sizeof(good_values) / sizeof(good_values[0]); i++) {
    unset_all();
    setenv(good_values[i].name, good_values[i].value, 1);
    const char *text = load_capturing();
    ck_assert_msg(text[0] == '\0', "%s=\"%s\" was reported: %s", good_values[i].name, good_values[i].value, text);
  }
  unset_all();
}
END_TEST

START_TEST(test_accepted_values_are_used) {
  unset_all();
  setenv("MGC_GOGC", "off", 1);
  setenv("MGC_MEMLIMIT", "64MiB", 1);
  setenv("MGC_MARK_WORKERS", "3", 1);
  setenv("MGC_CONCURRENT", "0", 1);
  setenv("MGC_TRACE", "2", 1);
  setenv("MGC_VERIFY", "1", 1);
  setenv("MGC_STOP_SIGNAL", "12", 1);
  ck_assert_str_eq(load_capturing(), "");
  unset_all();
  ck_assert_int_eq(config.gogc, -1);
  ck_assert_uint_eq(config.memlimit, (uint64_t)64 << 20);
  ck_assert_int_eq(config.mark_workers, 3);
  ck_assert(config.mark_workers_set);
  ck_assert(!config.concurrent);
  ck_assert_int_eq(config.trace, 2);
  ck_assert(config.verify);
  ck_assert_int_eq(config.stop_signal, 12);
}
END_TEST

START_TEST(test_bad_mark_workers_does_not_count_as_set) {
  unset_all();
  setenv("MGC_MARK_WORKERS", "lots", 1);
  load_capturing();
  unset_all();
  ck_assert(!config.mark_workers_set);
  ck_assert_int_eq(config.mark_workers, defaults.mark_workers);
}
END_TEST

START_TEST(test_parsers_reject_null) {
  long l;
  int i;
  uint64_t u;
  ck_assert(!config_parse_int(NULL, 0, 1, &l));
  ck_assert(!config_parse_gogc(NULL, &i));
  ck_assert(!config_parse_bytes(NULL, &u));
  ck_assert(!config_parse_signal(NULL, &i));
}
END_TEST

/* ---- process ---- */

/* In a child: every variable bad, then start mgc and use it. */
static void start_with_every_variable_bad(void *arg) {
  (void)arg;
  unset_all();
  for (size_t i = 0; i < NVARIABLES; i++) setenv(variables[i], "-99999999999999999999junk", 1);
  setenv("MGC_STOP_SIGNAL", "33", 1); /* reserved by the C library: sigaction would fail */
  gc_init();
  for (int i = 0; i < 20000; i++)
    if (!gc_alloc(64)) _exit(2);
  gc_collect();
  gc_collect();
  struct gc_stats s;
  memset(&s, 0, sizeof(s));
  s.size = sizeof(s);
  _exit(gc_get_stats(&s) == 0 && s.cycles >= 2 ? 0 : 3);
}

START_TEST(test_gc_init_with_every_variable_bad_reports_each_once_and_works) {
  struct child_outcome r = child_run_captured(start_with_every_variable_bad, NULL);
  const char *text = r.err;
  int status = r.status;
  ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the child failed (status 0x%x): %s", status, text);
  ck_assert_msg(count_lines(text) == NVARIABLES, "expected %zu lines, got: %s", NVARIABLES, text);
  for (size_t i = 0; i < NVARIABLES; i++)
    ck_assert_msg(strstr(text, variables[i]) != NULL, "no line for %s: %s", variables[i], text);
}
END_TEST

static Suite *config_suite(void) {
  Suite *s = suite_create("config");
  TCase *bad = tcase_create("bad");
  tcase_add_unchecked_fixture(bad, setup, NULL);
  tcase_add_loop_test(bad, test_bad_value_of_any_form_gives_one_line_and_the_default, 0, (int)NVARIABLES);
  tcase_add_test(bad, test_value_out_of_a_variables_range_gives_one_line_and_the_default);
  tcase_add_test(bad, test_huge_value_is_reported_on_one_short_line);
  tcase_add_test(bad, test_control_bytes_in_a_value_are_escaped);
  tcase_add_test(bad, test_every_variable_bad_at_once_gives_one_line_each);
  suite_add_tcase(s, bad);
  TCase *good = tcase_create("good");
  tcase_add_unchecked_fixture(good, setup, NULL);
  tcase_add_test(good, test_accepted_values_are_taken_silently);
  tcase_add_test(good, test_accepted_values_are_used);
  tcase_add_test(good, test_bad_mark_workers_does_not_count_as_set);
  tcase_add_test(good, test_parsers_reject_null);
  suite_add_tcase(s, good);
  TCase *process = tcase_create("process");
  tcase_set_timeout(process, 60);
  tcase_add_test(process, test_gc_init_with_every_variable_bad_reports_each_once_and_works);
  suite_add_tcase(s, process);
  return s;
}

int main(void) {
  SRunner *sr = srunner_create(config_suite());
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
