/*
 * test_pause_stats.c: the pause history in gc_stats and the MGC_TRACE line
 * (public API only; suite "unit").
 *
 * Every concurrent cycle stops the world at least twice (mark setup and
 * mark termination), so after N collections pauses >= N; the percentiles
 * are ordered (p50 <= p99 <= max) and every ring entry written so far is a
 * real, nonzero duration.  With MGC_TRACE=1 each cycle prints
 *   gc N @T s C%: A+B+C ms clock, X->Y->Z MB, G MB goal, W workers [flags]
 * checked here with a regular expression, for concurrent and stopped-world
 * marking (where B and C are 0 and the flags say (stw)).
 */
#include <regex.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "conctest.h"
#include "gctest.h"
#include "mgc.h"

#define COLLECTIONS 40
#define LIVE_NODES 2000
#define TRACE_RE                                                                        \
  "^gc ([0-9]+) @[0-9]+\\.[0-9]{3}s [0-9]+%: ([0-9]+\\.[0-9]{3})\\+([0-9]+\\.[0-9]{3})\\+" \
  "([0-9]+\\.[0-9]{3}) ms clock, [0-9]+\\.[0-9]->[0-9]+\\.[0-9]->[0-9]+\\.[0-9] MB, "       \
  "[0-9]+\\.[0-9] MB goal, [0-9]+ workers"

static void *volatile keep[LIVE_NODES];

static void some_live_data(void) {
  for (int i = 0; i < LIVE_NODES; i++) keep[i] = gc_alloc(64 + (size_t)(i % 7) * 32);
}

START_TEST(test_pause_history_counts_and_orders_pauses) {
  static const struct conc_env env[] = {{"MGC_CONCURRENT", "1", 1}, {"MGC_TRACE", "0", 1}};
  conc_init(env, CONC_LEN(env));
  some_live_data();
  for (int i = 0; i < COLLECTIONS; i++) gc_collect();
  struct gc_stats s = stats_now();
  ck_assert_uint_ge(s.cycles, COLLECTIONS);
  ck_assert_uint_ge(s.forced_cycles, COLLECTIONS);
  ck_assert_uint_ge(s.pauses, 2 * COLLECTIONS);
  ck_assert_uint_le(s.pause_p50_ns, s.pause_p99_ns);
  ck_assert_uint_le(s.pause_p99_ns, s.max_pause_ns);
  ck_assert_uint_gt(s.pause_p50_ns, 0);
  ck_assert_uint_ge(s.total_pause_ns, s.max_pause_ns);
  ck_assert_uint_le(s.last_pause_ns, s.max_pause_ns);
  uint64_t n = s.pauses < GC_PAUSE_HISTORY ? s.pauses : GC_PAUSE_HISTORY, sum = 0;
  for (uint64_t k = 0; k < n; k++) {
    ck_assert_msg(s.pause_ns[k] > 0, "pause ring entry %llu is 0", (unsigned long long)k);
    ck_assert_uint_le(s.pause_ns[k], s.max_pause_ns);
    sum += s.pause_ns[k];
  }
  ck_assert_uint_le(sum, s.total_pause_ns);
  ck_assert_uint_eq(s.pause_ns[(s.pauses - 1) % GC_PAUSE_HISTORY], s.last_pause_ns);
}
END_TEST

/* Collect `cycles` times with stderr captured; check every trace line. */
static void check_trace_lines(int cycles, bool stw) {
  some_live_data();
  struct capture_text cap;
  capture_text_begin(&cap);
  for (int i = 0; i < cycles; i++) gc_collect();
  char *err = capture_text_end(&cap);
  regex_t re;
  ck_assert_int_eq(regcomp(&re, TRACE_RE, REG_EXTENDED | REG_NEWLINE), 0);
  int lines = 0;
  for (char *line = strtok(err, "\n"); line; line = strtok(NULL, "\n")) {
    if (strncmp(line, "gc ", 3) != 0) continue;
    regmatch_t m[5];
    ck_assert_msg(regexec(&re, line, 5, m, 0) == 0, "trace line has the wrong shape: %s", line);
    ck_assert_msg(strstr(line, "(forced)") != NULL, "gc_collect's cycle not flagged: %s", line);
    if (stw) {
      ck_assert_msg(strstr(line, "(stw)") != NULL, "stopped-world cycle not flagged: %s", line);
      ck_assert_double_eq(strtod(line + m[3].rm_so, NULL), 0.0);
      ck_assert_double_eq(strtod(line + m[4].rm_so, NULL), 0.0);
    } else {
      ck_assert_msg(strstr(line, "(stw)") == NULL, "concurrent cycle flagged (stw): %s", line);
    }
    lines++;
  }
  regfree(&re);
  free(err);
  ck_assert_int_ge(lines, cycles);
}

START_TEST(test_trace_line_has_clock_and_heap_shape) {
  static const struct conc_env env[] = {{"MGC_CONCURRENT", "1", 1}, {"MGC_TRACE", "1", 1}};
  conc_init(env, CONC_LEN(env));
  check_trace_lines(5, false);
}
END_TEST

START_TEST(test_trace_line_for_stopped_world_marking) {
  static const struct conc_env env[] = {{"MGC_CONCURRENT", "0", 1}, {"MGC_TRACE", "1", 1}};
  conc_init(env, CONC_LEN(env));
  check_trace_lines(5, true);
}
END_TEST

START_TEST(test_trace_line_reports_verify_result) {
  static const struct conc_env env[] = {
    {"MGC_CONCURRENT", "1", 1}, {"MGC_TRACE", "1", 1}, {"MGC_VERIFY", "1", 1}};
  conc_init(env, CONC_LEN(env));
  some_live_data();
  struct capture_text cap;
  capture_text_begin(&cap);
  gc_collect();
  char *err = capture_text_end(&cap);
  ck_assert_msg(strstr(err, ", verify: ") != NULL && strstr(err, " missed") != NULL,
                "no verify result in the trace line: %s", err);
  free(err);
}
END_TEST

static Suite *pause_stats_suite(void) {
  Suite *s = suite_create("pause_stats");
  TCase *tc = tcase_create("stats");
  tcase_add_test(tc, test_pause_history_counts_and_orders_pauses);
  tcase_add_test(tc, test_trace_line_has_clock_and_heap_shape);
  tcase_add_test(tc, test_trace_line_for_stopped_world_marking);
  tcase_add_test(tc, test_trace_line_reports_verify_result);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) { return run_suite_in_children(pause_stats_suite()); }
