/* report_test.c -- statistics, table, JSON and plot of a run
 * (sim/report.h). */
// clang-format off
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
// clang-format on

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "quilt.h"
#include "report.h"

/* --- helpers -------------------------------------------------------------- */

static char *read_all(const char *path) {
  FILE *f = fopen(path, "rb");
  assert_non_null(f);
  char *buf = NULL;
  size_t len = 0, cap = 0, got;
  do {
    if (len + 4096 + 1 > cap) {
      cap = (len + 4096 + 1) * 2;
      buf = realloc(buf, cap);
      assert_non_null(buf);
    }
    got = fread(buf + len, 1, 4096, f);
    len += got;
  } while (got > 0);
  fclose(f);
  buf[len] = '\0';
  return buf;
}

/* A path for an output file that does not exist yet. */
static void temp_path(char *buf, size_t len, const char *suffix) {
  char tmpl[] = "/tmp/quilt-report-test-XXXXXX";
  int fd = mkstemp(tmpl);
  assert_true(fd >= 0);
  close(fd);
  unlink(tmpl);
  snprintf(buf, len, "%s%s", tmpl, suffix);
}

static char *table_text(const quilt_sim_result *r, size_t n) {
  char *text = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&text, &len);
  assert_non_null(f);
  quilt_report_table(f, r, n);
  assert_int_equal(fclose(f), 0);
  return text;
}

/* Deterministic pseudo-random shuffle (xorshift), no rand(). */
static void shuffle(double *v, size_t n, uint64_t x) {
  for (size_t i = n; i > 1; i--) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    size_t j = (size_t)(x % i);
    double t = v[i - 1];
    v[i - 1] = v[j];
    v[j] = t;
  }
}

/* A filled result with owned, unsorted samples. */
static void make_result(quilt_sim_result *r, const char *protocol, double scale,
                        size_t nsamples) {
  memset(r, 0, sizeof *r);
  snprintf(r->scenario, sizeof r->scenario, "datacenter");
  snprintf(r->protocol, sizeof r->protocol, "%s", protocol);
  r->seed = 12345678901234567ULL;
  r->hosts = 1528;
  r->hosts_alive = 1500;
  r->messages = 100;
  r->expected = 150000;
  r->delivered = 149850;
  r->delivery_ratio = 0.999;
  r->duplicate_deliveries = 3;
  r->loss_events = 2;
  r->malformed_dropped = 1;
  r->data_bytes = 15000000;
  r->control_bytes = 123456;
  r->packets_lost = 77;
  r->events = 9876543;
  r->sim_seconds = 60.0;
  r->wall_seconds = 1.5;
  r->failovers = 4;
  r->nsamples = nsamples;
  r->latency_samples_ms = malloc(nsamples * sizeof(double));
  r->lower_bound_samples_ms = malloc(nsamples * sizeof(double));
  assert_non_null(r->latency_samples_ms);
  assert_non_null(r->lower_bound_samples_ms);
  for (size_t i = 0; i < nsamples; i++) {
    double lb = 0.05 + 8.0 * (double)i / (double)nsamples;
    r->lower_bound_samples_ms[i] = lb;
    r->latency_samples_ms[i] = lb * scale + 0.2;
  }
  shuffle(r->latency_samples_ms, nsamples, 1);
  shuffle(r->lower_bound_samples_ms, nsamples, 2);
  double *tmp = malloc(nsamples * sizeof(double));
  assert_non_null(tmp);
  memcpy(tmp, r->latency_samples_ms, nsamples * sizeof(double));
  quilt_stats_compute(&r->latency_ms, tmp, nsamples);
  memcpy(tmp, r->lower_bound_samples_ms, nsamples * sizeof(double));
  quilt_stats_compute(&r->lower_bound_ms, tmp, nsamples);
  free(tmp);
}

/* --- statistics ------------------------------------------------------------
 */

static void test_stats_empty_and_one(void **state) {
  quilt_stats s;
  memset(&s, 0xff, sizeof s);
  quilt_stats_compute(&s, NULL, 0);
  assert_int_equal(s.n, 0);
  assert_true(s.p50 == 0 && s.p90 == 0 && s.p99 == 0 && s.max == 0 &&
              s.mean == 0);
  double one = 4.25;
  quilt_stats_compute(&s, &one, 1);
  assert_int_equal(s.n, 1);
  assert_true(s.p50 == 4.25 && s.p90 == 4.25 && s.p99 == 4.25 &&
              s.max == 4.25 && s.mean == 4.25);
}

static void test_stats_nearest_rank(void **state) {
  double v[100];
  for (int i = 0; i < 100; i++)
    v[i] = i + 1;
  shuffle(v, 100, 99);
  quilt_stats s;
  quilt_stats_compute(&s, v, 100);
  assert_int_equal(s.n, 100);
  assert_true(s.p50 == 50);
  assert_true(s.p90 == 90);
  assert_true(s.p99 == 99);
  assert_true(s.max == 100);
  assert_true(s.mean == 50.5);
  for (int i = 0; i < 100; i++) /* sorted in place */
    assert_true(v[i] == i + 1);

  /* 10 values: ranks ceil(5) = 5, ceil(9) = 9, ceil(9.9) = 10. */
  double w[10] = {10, 9, 8, 7, 6, 5, 4, 3, 2, 1};
  quilt_stats_compute(&s, w, 10);
  assert_true(s.p50 == 5 && s.p90 == 9 && s.p99 == 10 && s.max == 10);
  /* 3 values: ranks 2, 3, 3. */
  double x[3] = {0.3, 0.1, 0.2};
  quilt_stats_compute(&s, x, 3);
  assert_true(s.p50 == 0.2 && s.p90 == 0.3 && s.p99 == 0.3);
  assert_true(fabs(s.mean - 0.2) < 1e-12);
  /* 1000 values: p99 is the 990th. */
  double *y = malloc(1000 * sizeof *y);
  assert_non_null(y);
  for (int i = 0; i < 1000; i++)
    y[i] = 1000 - i;
  quilt_stats_compute(&s, y, 1000);
  assert_true(s.p50 == 500 && s.p90 == 900 && s.p99 == 990 && s.max == 1000);
  free(y);
}

static void test_result_free(void **state) {
  quilt_sim_result r;
  make_result(&r, "quilt", 1.0, 10);
  quilt_sim_result_free(&r);
  assert_null(r.latency_samples_ms);
  assert_null(r.lower_bound_samples_ms);
  assert_int_equal(r.nsamples, 0);
  assert_int_equal(r.hosts, 1528); /* the metrics stay */
  quilt_sim_result_free(&r);
  quilt_sim_result_free(NULL);
}

/* --- table -----------------------------------------------------------------
 */

static void test_table(void **state) {
  quilt_sim_result r[2];
  make_result(&r[0], "quilt", 1.2, 1000);
  make_result(&r[1], "omni-over-all-hosts", 3.0, 1000);
  r[1].delivery_ratio = 1.0;
  r[1].data_bytes = 0;
  char *a = table_text(r, 2);
  assert_non_null(strstr(a, "quilt"));
  assert_non_null(strstr(a, "omni-over-all-hosts"));
  assert_non_null(strstr(a, "\ndelivery ratio "));
  assert_non_null(strstr(a, " 0.999000 "));
  assert_non_null(strstr(a, " 1.000000\n"));
  assert_non_null(strstr(a, "\nlatency p99 (ms) "));
  assert_non_null(strstr(a, "\nlower bound mean (ms) "));
  assert_non_null(strstr(a, "\np50 / lower bound p50 "));
  assert_non_null(strstr(a, "\ncontrol / data bytes "));
  assert_non_null(strstr(a, "0.0082 ")); /* 123456 / 15000000 */
  assert_non_null(strstr(a, "\nsimulated seconds "));
  assert_non_null(strstr(a, "\ntrace hash "));

  /* Every line above the last has the same width (aligned columns); the
   * last one holds the wall time. */
  char *last = strstr(a, "wall seconds:");
  assert_non_null(last);
  assert_non_null(strstr(last, "quilt 1.500 (6584362 events/s)"));
  size_t width = strcspn(a, "\n"), lines = 0;
  for (char *line = a; line < last; line += width + 1, lines++)
    assert_int_equal(strcspn(line, "\n"), width);
  assert_int_equal(lines, 35); /* the names and 34 metrics */
  assert_int_equal(strchr(last, '\n')[1], '\0');

  /* Another wall time changes the last line only. */
  r[0].wall_seconds = 7.25;
  r[1].wall_seconds = 0;
  char *b = table_text(r, 2);
  size_t above = (size_t)(last - a);
  assert_memory_equal(a, b, above);
  assert_string_not_equal(a + above, b + above);
  assert_non_null(strstr(b + above, "quilt 7.250 ("));
  assert_non_null(strstr(b + above, "omni-over-all-hosts 0.000\n"));
  free(a);
  free(b);

  /* A name that fills its array without a NUL is printed, not overrun. */
  memset(r[1].protocol, 'x', sizeof r[1].protocol);
  char *c = table_text(r, 2);
  assert_non_null(strstr(c, "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\n"));
  free(c);
  char *none = table_text(r, 0);
  assert_string_equal(none, "");
  free(none);
  quilt_sim_result_free(&r[0]);
  quilt_sim_result_free(&r[1]);
}

/* --- JSON ------------------------------------------------------------------
 */

/* Brackets and braces balance outside strings, strings end, and nothing
 * but white space follows the value. */
static void assert_json_shape(const char *s) {
  int depth = 0, in_string = 0;
  char stack[16];
  for (const char *p = s; *p; p++) {
    unsigned char c = (unsigned char)*p;
    if (in_string) {
      assert_true(c >= 0x20);
      if (c == '\\')
        p++;
      else if (c == '"')
        in_string = 0;
      continue;
    }
    if (c == '"')
      in_string = 1;
    else if (c == '[' || c == '{') {
      assert_true(depth < 16);
      stack[depth++] = (char)c;
    } else if (c == ']' || c == '}') {
      assert_true(depth > 0);
      assert_int_equal(stack[--depth], c == ']' ? '[' : '{');
    } else {
      assert_true(strchr("0123456789.-+eE,: \n\ttruefalsn", c) != NULL);
    }
  }
  assert_false(in_string);
  assert_int_equal(depth, 0);
}

static void test_json(void **state) {
  quilt_sim_result r[2];
  make_result(&r[0], "quilt", 1.2, 100);
  make_result(&r[1], "o\"m\\n\ni\xff\xc3\xa9", 3.0, 100);
  r[1].sim_seconds = NAN;
  r[1].wall_seconds = INFINITY;
  char path[64], err[256] = "";
  temp_path(path, sizeof path, ".json");
  if (quilt_report_json(path, r, 2, err, sizeof err) != 0)
    fail_msg("%s", err);
  char *j = read_all(path);
  unlink(path);
  assert_json_shape(j);
  assert_int_equal(j[0], '[');
  static const char *const keys[] = {
      "\"scenario\": \"datacenter\"",
      "\"protocol\": \"quilt\"",
      "\"seed\": 12345678901234567,",
      "\"hosts\": 1528,",
      "\"hosts_alive\": 1500,",
      "\"messages\": 100,",
      "\"expected\": 150000,",
      "\"delivered\": 149850,",
      "\"delivery_ratio\": 0.999,",
      "\"duplicate_deliveries\": 3,",
      "\"loss_events\": 2,",
      "\"malformed_dropped\": 1,",
      "\"latency_ms\": {\"p50\": ",
      "\"lower_bound_ms\": {\"p50\": ",
      "\"p90\": ",
      "\"p99\": ",
      "\"max\": ",
      "\"mean\": ",
      "\"data_bytes\": 15000000,",
      "\"control_bytes\": 123456,",
      "\"control_per_data\": 0.0082304,",
      "\"packets_lost\": 77,",
      "\"failovers\": 4,",
      "\"events\": 9876543,",
      "\"sim_seconds\": 60,",
      "\"wall_seconds\": 1.5,",
      "\"events_per_second\": 6584362\n",
      /* The second result: escapes, U+FFFD for a stray byte, UTF-8 kept,
       * and 0 for what JSON cannot hold. */
      "\"protocol\": \"o\\\"m\\\\n\\u000ai\\ufffd\xc3\xa9\"",
      "\"sim_seconds\": 0,",
      "\"wall_seconds\": 0,",
      "\"events_per_second\": 0\n",
  };
  for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
    if (!strstr(j, keys[i]))
      fail_msg("missing %s in\n%s", keys[i], j);
  free(j);

  /* No results: an empty array. */
  assert_int_equal(quilt_report_json(path, r, 0, err, sizeof err), 0);
  j = read_all(path);
  unlink(path);
  assert_string_equal(j, "[]\n");
  free(j);

  /* Errors name the path and the reason, including one that appears only
   * when the buffer is flushed at fclose. */
  assert_int_equal(
      quilt_report_json("/nonexistent-dir/x.json", r, 2, err, sizeof err),
      QUILT_ERR_IO);
  assert_string_equal(err,
                      "/nonexistent-dir/x.json: No such file or directory");
  if (access("/dev/full", W_OK) == 0) {
    assert_int_equal(quilt_report_json("/dev/full", r, 2, err, sizeof err),
                     QUILT_ERR_IO);
    assert_string_equal(err, "/dev/full: No space left on device");
  }
  quilt_sim_result_free(&r[0]);
  quilt_sim_result_free(&r[1]);
}

/* --- plot ------------------------------------------------------------------
 */

static int gnuplot_on_path(void) {
  const char *path = getenv("PATH");
  if (!path)
    return 0;
  char *dirs = strdup(path), *save = NULL;
  assert_non_null(dirs);
  int found = 0;
  for (char *d = strtok_r(dirs, ":", &save); d && !found;
       d = strtok_r(NULL, ":", &save)) {
    char exe[4096];
    snprintf(exe, sizeof exe, "%s/gnuplot", *d ? d : ".");
    found = access(exe, X_OK) == 0;
  }
  free(dirs);
  return found;
}

static void test_plot(void **state) {
  if (!gnuplot_on_path())
    skip();
  quilt_sim_result r[2];
  make_result(&r[0], "quilt", 1.2, 50000); /* downsampled */
  make_result(&r[1], "omni's", 3.0, 300);
  /* A zero latency (the origin itself) cannot go on a log axis. */
  r[1].latency_samples_ms[0] = 0;
  double first = r[0].latency_samples_ms[0];
  char path[64], err[256] = "";
  temp_path(path, sizeof path, ".png");
  if (quilt_report_plot(path, r, 2, err, sizeof err) != 0)
    fail_msg("%s", err);
  assert_true(r[0].latency_samples_ms[0] == first); /* not sorted */
  FILE *f = fopen(path, "rb");
  assert_non_null(f);
  unsigned char sig[8];
  assert_int_equal(fread(sig, 1, 8, f), 8);
  fclose(f);
  unlink(path);
  assert_memory_equal(sig, "\x89PNG\r\n\x1a\n", 8);

  /* gnuplot cannot write there. */
  assert_int_equal(
      quilt_report_plot("/nonexistent-dir/x.png", r, 2, err, sizeof err),
      QUILT_ERR_IO);
  assert_non_null(strstr(err, "/nonexistent-dir/x.png: gnuplot failed"));
  assert_null(strchr(err, '\n'));
  assert_null(strstr(err, "quilt-plot")); /* not our temporary script */
  quilt_sim_result_free(&r[0]);
  quilt_sim_result_free(&r[1]);
}

static void test_plot_errors(void **state) {
  quilt_sim_result r;
  make_result(&r, "quilt", 1.0, 10);
  char err[256] = "";
  assert_int_equal(quilt_report_plot("x.png", &r, 0, err, sizeof err),
                   QUILT_ERR_IO);
  assert_string_equal(err, "x.png: no results to plot");
  assert_int_equal(quilt_report_plot("x\n.png", &r, 1, err, sizeof err),
                   QUILT_ERR_IO);
  assert_string_equal(err, "x\n.png: control character in file name");

  /* Without gnuplot on PATH. */
  const char *old = getenv("PATH");
  char *saved = old ? strdup(old) : NULL;
  assert_int_equal(setenv("PATH", "/nonexistent-dir", 1), 0);
  int rc = quilt_report_plot("/tmp/quilt-report-test-never.png", &r, 1, err,
                             sizeof err);
  if (saved) {
    setenv("PATH", saved, 1);
    free(saved);
  } else {
    unsetenv("PATH");
  }
  assert_int_equal(rc, QUILT_ERR_IO);
  assert_string_equal(err, "/tmp/quilt-report-test-never.png: gnuplot not "
                           "found (install gnuplot-nox)");

  /* Nothing positive to draw. */
  for (size_t i = 0; i < r.nsamples; i++)
    r.latency_samples_ms[i] = r.lower_bound_samples_ms[i] = 0;
  assert_int_equal(quilt_report_plot("x.png", &r, 1, err, sizeof err),
                   QUILT_ERR_IO);
  assert_string_equal(err, "x.png: no positive latency samples to plot");
  quilt_sim_result_free(&r);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_stats_empty_and_one),
      cmocka_unit_test(test_stats_nearest_rank),
      cmocka_unit_test(test_result_free),
      cmocka_unit_test(test_table),
      cmocka_unit_test(test_json),
      cmocka_unit_test(test_plot),
      cmocka_unit_test(test_plot_errors),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
