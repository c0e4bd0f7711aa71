/* matrix_test.c -- the RTT matrix parser, the filling of -1 entries and the
 * statistics (sim/matrix.h), on the real files and on small texts. */
// clang-format off
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
// clang-format on

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "matrix.h"
#include "quilt.h"

#ifndef QUILT_SOURCE_DIR
#error "QUILT_SOURCE_DIR must name the source tree"
#endif
#define KING951 QUILT_SOURCE_DIR "/data/internet/king951.matrix"
#define PLANETLAB490 QUILT_SOURCE_DIR "/data/internet/planetlab490.matrix"

#define MS(x) ((uint32_t)((x)*1000))

static quilt_matrix *parse_ok(const char *text) {
  quilt_matrix *m = NULL;
  char err[QUILT_MATRIX_ERR_LEN] = "";
  int rc = quilt_matrix_parse(&m, "m", text, strlen(text), err, sizeof err);
  if (rc != 0)
    fail_msg("rc %d: %s", rc, err);
  assert_non_null(m);
  return m;
}

/* Parses text, expects code want and an error message starting with
 * prefix ("m:LINE:COL: ..."); the message is returned in err. */
static void parse_bad(const char *text, size_t len, int want,
                      const char *prefix, char err[QUILT_MATRIX_ERR_LEN]) {
  quilt_matrix *m = (quilt_matrix *)&m; /* must be reset to NULL */
  err[0] = '\0';
  int rc = quilt_matrix_parse(&m, "m", text, len, err, QUILT_MATRIX_ERR_LEN);
  if (rc != want || strncmp(err, prefix, strlen(prefix)) != 0)
    fail_msg("text '%.40s': rc %d, want %d; err '%s', want '%s...'", text, rc,
             want, err, prefix);
  assert_null(m);
}

static void expect_bad(const char *text, int want, const char *prefix) {
  char err[QUILT_MATRIX_ERR_LEN];
  parse_bad(text, strlen(text), want, prefix, err);
}

static char *read_all(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  assert_non_null(f);
  assert_int_equal(fseek(f, 0, SEEK_END), 0);
  long size = ftell(f);
  assert_true(size > 0);
  rewind(f);
  char *buf = malloc((size_t)size);
  assert_non_null(buf);
  assert_int_equal(fread(buf, 1, (size_t)size, f), (size_t)size);
  fclose(f);
  *len = (size_t)size;
  return buf;
}

/* Writes len bytes to a new temporary file; returns its path (free it). */
static char *write_temp(const char *text, size_t len) {
  char *path = strdup("/tmp/quilt_matrix_test_XXXXXX");
  assert_non_null(path);
  int fd = mkstemp(path);
  assert_true(fd >= 0);
  FILE *f = fdopen(fd, "wb");
  assert_non_null(f);
  assert_int_equal(fwrite(text, 1, len, f), len);
  assert_int_equal(fclose(f), 0);
  return path;
}

static quilt_matrix *load_ok(const char *path) {
  quilt_matrix *m = NULL;
  char err[QUILT_MATRIX_ERR_LEN] = "";
  int rc = quilt_matrix_load(&m, path, err, sizeof err);
  if (rc != 0)
    fail_msg("rc %d: %s", rc, err);
  return m;
}

static void assert_symmetric(const quilt_matrix *m) {
  uint32_t n = quilt_matrix_n(m);
  for (uint32_t i = 0; i < n; i++) {
    assert_int_equal(quilt_matrix_rtt_us(m, i, i), 0);
    for (uint32_t j = i + 1; j < n; j++) {
      uint32_t v = quilt_matrix_rtt_us(m, i, j);
      assert_true(v >= 1);
      assert_int_equal(v, quilt_matrix_rtt_us(m, j, i));
      assert_false(quilt_matrix_was_unknown(m, i, j));
    }
  }
}

/* ---- the real files ---------------------------------------------------- */

static void test_king951(void **state) {
  quilt_matrix *m = load_ok(KING951);
  assert_int_equal(quilt_matrix_n(m), 951);
  /* First row: 0.000 21.662 28.597 20.455 ... */
  assert_int_equal(quilt_matrix_rtt_us(m, 0, 1), 21662);
  assert_int_equal(quilt_matrix_rtt_us(m, 0, 2), 28597);
  assert_int_equal(quilt_matrix_rtt_us(m, 1, 2), 35130);
  assert_int_equal(quilt_matrix_one_way_us(m, 0, 1), 10831);
  assert_symmetric(m);

  quilt_matrix_stats st;
  assert_int_equal(quilt_matrix_get_stats(m, 1, 100000, &st), 0);
  assert_int_equal(st.n, 951);
  assert_int_equal(st.entries, 951u * 950u);
  assert_int_equal(st.unknown, 0);
  assert_int_equal(st.asymmetric_pairs, 0);
  assert_true(st.unknown_share == 0.0);
  assert_int_equal(st.rtt_us_min, 461);
  assert_int_equal(st.rtt_us_max, 639265);
  /* Derived from coordinates: a metric, no violation at all. */
  assert_int_equal(st.triangles, 100000);
  assert_int_equal(st.violated, 0);
  /* data/internet/README.md: median 80 ms, p90 168 ms (sampled here). */
  assert_in_range(st.rtt_us_median, 78000, 82000);
  assert_in_range(st.rtt_us_p90, 165000, 171000);
  quilt_matrix_free(m);
}

static void test_planetlab490(void **state) {
  quilt_matrix *m = load_ok(PLANETLAB490);
  assert_int_equal(quilt_matrix_n(m), 490);
  /* First rows: 0.000 0.164 2.546 121.650 / 0.164 0.000 2.532 ... */
  assert_int_equal(quilt_matrix_rtt_us(m, 0, 1), 164);
  assert_int_equal(quilt_matrix_rtt_us(m, 0, 3), 121650);
  assert_int_equal(quilt_matrix_rtt_us(m, 1, 2), 2532);
  assert_symmetric(m);

  quilt_matrix_stats a, b;
  assert_int_equal(quilt_matrix_get_stats(m, 7, 200000, &a), 0);
  assert_int_equal(a.n, 490);
  assert_int_equal(a.unknown, 0);
  assert_int_equal(a.rtt_us_min, 87);
  assert_int_equal(a.rtt_us_max, 675175);
  /* Measured: about 6% of triangles violated (data/internet/README.md). */
  assert_int_equal(a.triangles, 200000);
  assert_true(a.violated_share > 0.045 && a.violated_share < 0.075);
  assert_in_range(a.rtt_us_median, 130000, 138000);
  assert_in_range(a.rtt_us_p90, 285000, 297000);

  /* The sample is a function of the seed alone. */
  assert_int_equal(quilt_matrix_get_stats(m, 7, 200000, &b), 0);
  assert_memory_equal(&a, &b, sizeof a);
  assert_int_equal(quilt_matrix_get_stats(m, 8, 200000, &b), 0);
  assert_int_not_equal(a.violated, b.violated);
  /* No sample asked: no sampled fields. */
  assert_int_equal(quilt_matrix_get_stats(m, 7, 0, &b), 0);
  assert_int_equal(b.triangles, 0);
  assert_int_equal(b.rtt_us_median, 0);
  assert_int_equal(b.rtt_us_max, 675175);
  quilt_matrix_free(m);
}

/* quilt_matrix_parse on the bytes and quilt_matrix_load on the file give
 * the same matrix. */
static void test_parse_equals_load(void **state) {
  size_t len;
  char *text = read_all(PLANETLAB490, &len);
  quilt_matrix *a = NULL, *b = load_ok(PLANETLAB490);
  char err[QUILT_MATRIX_ERR_LEN];
  assert_int_equal(quilt_matrix_parse(&a, "p", text, len, err, sizeof err), 0);
  uint32_t n = quilt_matrix_n(a);
  assert_int_equal(n, quilt_matrix_n(b));
  for (uint32_t i = 0; i < n; i++)
    for (uint32_t j = 0; j < n; j++)
      assert_int_equal(quilt_matrix_rtt_us(a, i, j),
                       quilt_matrix_rtt_us(b, i, j));
  quilt_matrix_free(a);
  quilt_matrix_free(b);
  free(text);
}

/* Start of line `line` (1-based) of text, and of its field `field`. */
static char *field_at(char *text, size_t len, unsigned line, unsigned field,
                      size_t *col) {
  char *p = text;
  for (unsigned l = 1; l < line; l++) {
    p = memchr(p, '\n', len - (size_t)(p - text));
    assert_non_null(p);
    p++;
  }
  char *s = p;
  for (unsigned f = 0;; f++) {
    while (*s == ' ' || *s == '\t')
      s++;
    if (f == field)
      break;
    while (*s != ' ' && *s != '\t')
      s++;
  }
  *col = (size_t)(s - p) + 1;
  return s;
}

/* A bad entry deep in a real file is reported at its line and column:
 * 3 comment lines, so host i is on line i + 4. */
static void test_planetlab_error_position(void **state) {
  size_t len, col;
  char *text = read_all(PLANETLAB490, &len);
  char *s = field_at(text, len, 104, 17, &col);
  char saved = s[0];
  s[0] = 'x';
  char err[QUILT_MATRIX_ERR_LEN], want[64];
  snprintf(want, sizeof want, "m:104:%zu: expected an RTT", col);
  parse_bad(text, len, QUILT_ERR_SYNTAX, want, err);
  s[0] = saved;

  /* A 0 on the diagonal of host 200, replaced by an RTT. */
  s = field_at(text, len, 204, 200, &col);
  assert_memory_equal(s, "0.000", 5);
  s[0] = '1';
  snprintf(want, sizeof want, "m:204:%zu: diagonal entry (200, 200)", col);
  parse_bad(text, len, QUILT_ERR_SYNTAX, want, err);
  s[0] = '0';

  /* The last row (host 489, line 493) cut off. */
  s = field_at(text, len, 493, 0, &col);
  snprintf(want, sizeof want, "m:493:1: expected 490 rows, found 489");
  parse_bad(text, (size_t)(s - text), QUILT_ERR_SYNTAX, want, err);
  free(text);
}

/* ---- asymmetric matrices ----------------------------------------------- */

static void test_asymmetric_kept(void **state) {
  quilt_matrix *m = parse_ok("0 10 20\n"
                             "30 0 40.5\n"
                             "20 60 0\n");
  assert_int_equal(quilt_matrix_n(m), 3);
  assert_int_equal(quilt_matrix_rtt_us(m, 0, 1), MS(10));
  assert_int_equal(quilt_matrix_rtt_us(m, 1, 0), MS(30));
  assert_int_equal(quilt_matrix_rtt_us(m, 1, 2), 40500);
  assert_int_equal(quilt_matrix_rtt_us(m, 2, 1), MS(60));
  /* One way i -> j is half of rtt(i, j), whichever direction is asked. */
  assert_int_equal(quilt_matrix_one_way_us(m, 0, 1), MS(5));
  assert_int_equal(quilt_matrix_one_way_us(m, 1, 0), MS(15));
  assert_int_equal(quilt_matrix_one_way_us(m, 1, 2), 20250);
  assert_int_equal(quilt_matrix_one_way_us(m, 2, 2), 0);
  quilt_matrix_stats st;
  assert_int_equal(quilt_matrix_get_stats(m, 1, 1000, &st), 0);
  assert_int_equal(st.asymmetric_pairs, 2); /* (0,2) agree */
  assert_int_equal(st.rtt_us_min, MS(10));
  assert_int_equal(st.rtt_us_max, MS(60));
  quilt_matrix_free(m);
}

/* ---- filling -1 entries ------------------------------------------------ */

static void test_fill_symmetric(void **state) {
  quilt_matrix *m = parse_ok("0 -1 5\n"
                             "7 0 3\n"
                             "5 -1.000 0\n");
  assert_int_equal(quilt_matrix_rtt_us(m, 0, 1), MS(7));
  assert_int_equal(quilt_matrix_rtt_us(m, 2, 1), MS(3));
  assert_true(quilt_matrix_was_unknown(m, 0, 1));
  assert_true(quilt_matrix_was_unknown(m, 2, 1));
  assert_false(quilt_matrix_was_unknown(m, 1, 0));
  quilt_matrix_stats st;
  assert_int_equal(quilt_matrix_get_stats(m, 1, 0, &st), 0);
  assert_int_equal(st.unknown, 2);
  assert_int_equal(st.filled_symmetric, 2);
  assert_int_equal(st.filled_detour + st.filled_median, 0);
  assert_true(st.unknown_share == 2.0 / 6.0);
  /* Pairs with a -1 side are not compared for symmetry. */
  assert_int_equal(st.asymmetric_pairs, 0);
  quilt_matrix_free(m);
}

static void test_fill_detour(void **state) {
  /* (0, 1) unknown both ways: the best detour is through 3 (2 + 1), not
   * through 2 (2 + 3). */
  quilt_matrix *m = parse_ok("0 -1 2 2\n"
                             "-1 0 3 1\n"
                             "2 3 0 9\n"
                             "2 1 9 0\n");
  assert_int_equal(quilt_matrix_rtt_us(m, 0, 1), MS(3));
  assert_int_equal(quilt_matrix_rtt_us(m, 1, 0), MS(3));
  quilt_matrix_stats st;
  assert_int_equal(quilt_matrix_get_stats(m, 1, 0, &st), 0);
  assert_int_equal(st.filled_detour, 2);
  quilt_matrix_free(m);

  /* An asymmetric detour: 0 -> 2 -> 1 and 1 -> 2 -> 0 differ. */
  m = parse_ok("0 -1 2\n"
               "-1 0 5\n"
               "4 3 0\n");
  assert_int_equal(quilt_matrix_rtt_us(m, 0, 1), MS(2 + 3));
  assert_int_equal(quilt_matrix_rtt_us(m, 1, 0), MS(5 + 4));
  quilt_matrix_free(m);
}

/* Worked by hand from the rules in matrix.h. */
static void test_fill_median(void **state) {
  quilt_matrix *m = parse_ok("# host 0 and host 1 share no neighbour\n"
                             "0  -1  4  -1\n"
                             "-1  0 -1   6\n"
                             "4  -1  0   3\n"
                             "-1  6  3   0\n");
  /* (0, 1): via 2, rtt(2, 1) unknown; via 3, rtt(0, 3) unknown: the median
   * of row 0 after step 1, {4}.  (1, 0): the median of row 1, {6}. */
  assert_int_equal(quilt_matrix_rtt_us(m, 0, 1), MS(4));
  assert_int_equal(quilt_matrix_rtt_us(m, 1, 0), MS(6));
  /* The others have a detour: 0 -> 2 -> 3, 1 -> 3 -> 2 and back. */
  assert_int_equal(quilt_matrix_rtt_us(m, 0, 3), MS(7));
  assert_int_equal(quilt_matrix_rtt_us(m, 3, 0), MS(7));
  assert_int_equal(quilt_matrix_rtt_us(m, 1, 2), MS(9));
  assert_int_equal(quilt_matrix_rtt_us(m, 2, 1), MS(9));
  quilt_matrix_stats st;
  assert_int_equal(quilt_matrix_get_stats(m, 1, 0, &st), 0);
  assert_int_equal(st.unknown, 6);
  assert_int_equal(st.filled_symmetric, 0);
  assert_int_equal(st.filled_detour, 4);
  assert_int_equal(st.filled_median, 2);
  quilt_matrix_free(m);

  /* Host 1 knows only host 5: (0, 1) goes through it, 9 + 1. */
  m = parse_ok("0 -1 2 8 5 9\n"
               "-1 0 -1 -1 -1 1\n"
               "2 -1 0 1 1 1\n"
               "8 -1 1 0 1 1\n"
               "5 -1 1 1 0 1\n"
               "9 1 1 1 1 0\n");
  assert_int_equal(quilt_matrix_rtt_us(m, 0, 1), MS(10));
  quilt_matrix_free(m);
  m = parse_ok("0 -1 2 8 5 -1\n"
               "-1 0 -1 -1 -1 1\n"
               "2 -1 0 1 1 1\n"
               "8 -1 1 0 1 1\n"
               "5 -1 1 1 0 1\n"
               "-1 1 1 1 1 0\n");
  /* Now 0 and 1 share no neighbour: row 0 known {2, 8, 5} -> 5. */
  assert_int_equal(quilt_matrix_rtt_us(m, 0, 1), MS(5));
  quilt_matrix_free(m);
  m = parse_ok("0 -1 2 8 5 9 -1\n"
               "-1 0 -1 -1 -1 -1 1\n"
               "2 -1 0 1 1 1 1\n"
               "8 -1 1 0 1 1 1\n"
               "5 -1 1 1 0 1 1\n"
               "9 -1 1 1 1 0 1\n"
               "-1 1 1 1 1 1 0\n");
  /* Row 0 known {2, 8, 5, 9}: the lower median is 5 (not 8, not 6.5). */
  assert_int_equal(quilt_matrix_rtt_us(m, 0, 1), MS(5));
  quilt_matrix_free(m);
}

/* Naive fill, written from the rules of matrix.h, against the parser's on
 * random small matrices (entries in whole ms, so the text is exact). */
static int naive_fill(int n, const int file[8][8], int out[8][8]) {
  int s1[8][8];
  for (int i = 0; i < n; i++)
    for (int j = 0; j < n; j++)
      s1[i][j] = file[i][j] >= 0 ? file[i][j] : file[j][i];
  for (int i = 0; i < n; i++)
    for (int j = 0; j < n; j++) {
      out[i][j] = s1[i][j];
      if (s1[i][j] >= 0)
        continue;
      int best = -1;
      for (int k = 0; k < n; k++)
        if (k != i && k != j && s1[i][k] >= 0 && s1[k][j] >= 0 &&
            (best < 0 || s1[i][k] + s1[k][j] < best))
          best = s1[i][k] + s1[k][j];
      if (best < 0) {
        int v[8], c = 0;
        for (int k = 0; k < n; k++)
          if (k != i && s1[i][k] >= 0)
            v[c++] = s1[i][k];
        if (c == 0)
          return -1;
        for (int a = 1; a < c; a++) /* insertion sort */
          for (int b = a; b > 0 && v[b - 1] > v[b]; b--) {
            int t = v[b];
            v[b] = v[b - 1];
            v[b - 1] = t;
          }
        best = v[(c - 1) / 2];
      }
      out[i][j] = best;
    }
  return 0;
}

static void test_fill_against_naive(void **state) {
  uint64_t x = 0x2545F4914F6CDD1Dull;
  int refused = 0;
  uint64_t by_step[3] = {0, 0, 0};
  for (int round = 0; round < 500; round++) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    int n = 2 + (int)(x % 7);
    unsigned unknown_pct = (unsigned)(x >> 8) % 90;
    int file[8][8], want[8][8];
    char text[8 * 8 * 5 + 16];
    size_t o = 0;
    for (int i = 0; i < n; i++) {
      for (int j = 0; j < n; j++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        file[i][j] = i == j                          ? 0
                     : (x >> 20) % 100 < unknown_pct ? -1
                                                     : 1 + (int)(x % 99);
        o += (size_t)snprintf(text + o, sizeof text - o, "%d%c", file[i][j],
                              j + 1 < n ? ' ' : '\n');
      }
    }
    int nrc = naive_fill(n, file, want);
    quilt_matrix *m = NULL;
    char err[QUILT_MATRIX_ERR_LEN];
    int rc = quilt_matrix_parse(&m, "m", text, o, err, sizeof err);
    if (nrc != 0) {
      assert_int_equal(rc, QUILT_ERR_SYNTAX);
      assert_non_null(strstr(err, "has no measured RTT"));
      refused++;
      continue;
    }
    if (rc != 0)
      fail_msg("round %d: %s\n%s", round, err, text);
    for (int i = 0; i < n; i++)
      for (int j = 0; j < n; j++) {
        if (quilt_matrix_rtt_us(m, (uint32_t)i, (uint32_t)j) != MS(want[i][j]))
          fail_msg("round %d: (%d, %d) = %u, naive %d ms\n%s", round, i, j,
                   quilt_matrix_rtt_us(m, (uint32_t)i, (uint32_t)j), want[i][j],
                   text);
        assert_int_equal(quilt_matrix_was_unknown(m, (uint32_t)i, (uint32_t)j),
                         file[i][j] < 0);
      }
    quilt_matrix_stats st;
    assert_int_equal(quilt_matrix_get_stats(m, 1, 0, &st), 0);
    by_step[0] += st.filled_symmetric;
    by_step[1] += st.filled_detour;
    by_step[2] += st.filled_median;
    quilt_matrix_free(m);
  }
  /* Both outcomes, and every step of the fill, were exercised. */
  assert_true(refused > 0 && refused < 250);
  assert_true(by_step[0] > 100 && by_step[1] > 100 && by_step[2] > 10);
}

static void test_fill_unplaceable_host(void **state) {
  expect_bad("0 -1\n-1 0\n", QUILT_ERR_SYNTAX,
             "m:1:1: host 0 has no measured RTT");
  /* Host 2 (line 4) is measured by nobody. */
  expect_bad("# c\n"
             "0 1 -1\n"
             "1 0 -1\n"
             "-1 -1 0\n",
             QUILT_ERR_SYNTAX, "m:4:1: host 2 has no measured RTT");
}

/* ---- the text format --------------------------------------------------- */

static void test_format_leniency(void **state) {
  /* BOM, CRLF, tabs, trailing blanks, comments and blank lines anywhere,
   * no LF at the end, ".5" and "1." forms. */
  quilt_matrix *m = parse_ok("\xEF\xBB\xBF# comment\r\n"
                             "\r\n"
                             "  0\t.5 \t1.\r\n"
                             "   # between rows\n"
                             "\n"
                             "0.5 0 2.0004  \n"
                             "1 2.0005 0.000");
  assert_int_equal(quilt_matrix_n(m), 3);
  assert_int_equal(quilt_matrix_rtt_us(m, 0, 1), 500);
  assert_int_equal(quilt_matrix_rtt_us(m, 0, 2), 1000);
  assert_int_equal(quilt_matrix_rtt_us(m, 1, 2), 2000); /* rounded down */
  assert_int_equal(quilt_matrix_rtt_us(m, 2, 1), 2001); /* half up */
  quilt_matrix_free(m);

  /* The smallest and largest RTTs. */
  m = parse_ok("0 0.0005\n9999.999 0\n");
  assert_int_equal(quilt_matrix_rtt_us(m, 0, 1), 1);
  assert_int_equal(quilt_matrix_rtt_us(m, 1, 0), 9999999);
  quilt_matrix_free(m);
}

static void test_bad_values(void **state) {
  expect_bad("0 1\nx 0\n", QUILT_ERR_SYNTAX, "m:2:1: expected an RTT");
  expect_bad("# c\n\n0 1\n1 nan\n", QUILT_ERR_SYNTAX,
             "m:4:3: 'nan' is not a finite");
  expect_bad("0 NaN\n1 0\n", QUILT_ERR_SYNTAX, "m:1:3: 'NaN' is not a finite");
  expect_bad("0 inf\n1 0\n", QUILT_ERR_SYNTAX, "m:1:3: 'inf' is not a finite");
  expect_bad("0 1\n-Infinity 0\n", QUILT_ERR_SYNTAX,
             "m:2:1: '-Infinity' is not a finite");
  expect_bad("0 -2\n1 0\n", QUILT_ERR_SYNTAX, "m:1:3: negative RTT '-2'");
  expect_bad("0 -1.5\n1 0\n", QUILT_ERR_SYNTAX, "m:1:3: negative RTT '-1.5'");
  expect_bad("0 -0\n1 0\n", QUILT_ERR_SYNTAX, "m:1:3: negative RTT");
  expect_bad("0 -10\n1 0\n", QUILT_ERR_SYNTAX, "m:1:3: negative RTT");
  expect_bad("0 10000\n1 0\n", QUILT_ERR_SYNTAX,
             "m:1:3: RTT '10000' ms is not below 10000");
  expect_bad("0 1\n99999999999999999999999 0\n", QUILT_ERR_SYNTAX,
             "m:2:1: RTT '99999999999999999999999' ms is not below");
  expect_bad("0 1e3\n1 0\n", QUILT_ERR_SYNTAX, "m:1:3: expected an RTT");
  expect_bad("0 +5\n1 0\n", QUILT_ERR_SYNTAX, "m:1:3: expected an RTT");
  expect_bad("0 1,5\n1 0\n", QUILT_ERR_SYNTAX, "m:1:3: expected an RTT");
  expect_bad("0 0x10\n1 0\n", QUILT_ERR_SYNTAX, "m:1:3: expected an RTT");
  expect_bad("0 1..2\n1 0\n", QUILT_ERR_SYNTAX, "m:1:3: expected an RTT");
  expect_bad("0 .\n1 0\n", QUILT_ERR_SYNTAX, "m:1:3: expected an RTT");
  expect_bad("0 1\n1 0\r\r\n", QUILT_ERR_SYNTAX,
             "m:2:3: expected an RTT in milliseconds (DIGITS[.DIGITS]) or -1, "
             "got '0\\x0d'");
  char err[QUILT_MATRIX_ERR_LEN];
  parse_bad("0 1\n1\0 0\n", 9, QUILT_ERR_SYNTAX,
            "m:2:1: expected an RTT in milliseconds (DIGITS[.DIGITS]) or -1, "
            "got '1\\x00'",
            err);
  /* Diagonal: 0 only. */
  expect_bad("0 1\n1 2\n", QUILT_ERR_SYNTAX,
             "m:2:3: diagonal entry (1, 1) must be 0, got '2'");
  expect_bad("-1 1\n1 0\n", QUILT_ERR_SYNTAX,
             "m:1:1: diagonal entry (0, 0) must be 0, got '-1'");
  /* Off the diagonal: above 0 us. */
  expect_bad("0 0\n1 0\n", QUILT_ERR_SYNTAX,
             "m:1:3: RTT between distinct hosts 0 and 1 must be above 0 us");
  expect_bad("0 1\n0.0004 0\n", QUILT_ERR_SYNTAX,
             "m:2:1: RTT between distinct hosts 1 and 0 must be above 0 us");
}

static void test_bad_shapes(void **state) {
  expect_bad("0 1 2\n1 0\n2 1 0\n", QUILT_ERR_SYNTAX,
             "m:2:4: row 1 has 2 entries, expected 3");
  expect_bad("0 1\n1 0 3\n", QUILT_ERR_SYNTAX,
             "m:2:5: row 1 has more than 2 entries");
  expect_bad("0 1\n1 0\n  1 1\n", QUILT_ERR_SYNTAX,
             "m:3:3: more than 2 rows (the first row has 2 entries)");
  expect_bad("# three hosts\n0 1 2\n1 0 2\n", QUILT_ERR_SYNTAX,
             "m:4:1: expected 3 rows, found 2");
  expect_bad("0 1 2\n1 0 2\n\n# end\n", QUILT_ERR_SYNTAX,
             "m:5:1: expected 3 rows, found 2");
  expect_bad("", QUILT_ERR_SYNTAX, "m:1:1: no matrix");
  expect_bad("# only\n\n# comments\n", QUILT_ERR_SYNTAX, "m:4:1: no matrix");
  expect_bad("0\n", QUILT_ERR_SYNTAX,
             "m:1:1: a matrix needs at least 2 hosts, the first row has 1");
  char err[QUILT_MATRIX_ERR_LEN];
  parse_bad(NULL, 0, QUILT_ERR_SYNTAX, "m:1:1: no matrix", err);
}

static void test_limits(void **state) {
  /* More than QUILT_MATRIX_MAX_HOSTS entries in the first row. */
  size_t n = QUILT_MATRIX_MAX_HOSTS + 1;
  char *text = malloc(2 * n + 1);
  assert_non_null(text);
  for (size_t i = 0; i < n; i++) {
    text[2 * i] = i == 0 ? '0' : '1';
    text[2 * i + 1] = i + 1 < n ? ' ' : '\n';
  }
  char want[64], err[QUILT_MATRIX_ERR_LEN];
  snprintf(want, sizeof want, "m:1:%zu: more than %d hosts",
           2 * (size_t)QUILT_MATRIX_MAX_HOSTS + 1, QUILT_MATRIX_MAX_HOSTS);
  parse_bad(text, 2 * n, QUILT_ERR_LIMIT, want, err);
  free(text);

  /* A line of QUILT_MATRIX_MAX_LINE bytes is fine (a comment here), one
   * more is not, CR aside; through the file reader as well. */
  size_t max = QUILT_MATRIX_MAX_LINE;
  const char *rows = "0 1\n1 0\n";
  text = malloc(max + 3 + strlen(rows) + 1);
  assert_non_null(text);
  for (int extra = 0; extra <= 1; extra++) {
    for (int cr = 0; cr <= 1; cr++) {
      size_t len = max + (size_t)extra;
      memset(text, '#', len);
      if (cr)
        text[len++] = '\r';
      text[len++] = '\n';
      memcpy(text + len, rows, strlen(rows));
      len += strlen(rows);
      text[len] = '\0';
      snprintf(want, sizeof want, "m:1:%zu: line longer than %d bytes", max + 1,
               QUILT_MATRIX_MAX_LINE);
      quilt_matrix *m = NULL;
      char *path = write_temp(text, len);
      if (extra) {
        parse_bad(text, len, QUILT_ERR_LIMIT, want, err);
        assert_int_equal(quilt_matrix_load(&m, path, err, sizeof err),
                         QUILT_ERR_LIMIT);
        assert_null(m);
        assert_non_null(strstr(err, want + 1)); /* path instead of "m" */
      } else {
        quilt_matrix_free(parse_ok(text));
        quilt_matrix_free(load_ok(path));
      }
      unlink(path);
      free(path);
    }
  }
  free(text);
}

/* The file reader reports what the text parser reports. */
static void test_load_errors(void **state) {
  static const char *const texts[] = {
      "0 1\n1 2\n", "0 1\n1 0\n1 1\n", "# c\n0 1 2\n1 0 2\n",
      "",           "0 -1\n-1 0",      "0 1\r\n1 0\r\n",
      "0 1\n1 0",
  };
  for (size_t t = 0; t < sizeof texts / sizeof texts[0]; t++) {
    size_t len = strlen(texts[t]);
    char *path = write_temp(texts[t], len);
    quilt_matrix *a = NULL, *b = NULL;
    char ea[QUILT_MATRIX_ERR_LEN] = "", eb[QUILT_MATRIX_ERR_LEN] = "";
    int ra = quilt_matrix_parse(&a, path, texts[t], len, ea, sizeof ea);
    int rb = quilt_matrix_load(&b, path, eb, sizeof eb);
    assert_int_equal(ra, rb);
    assert_string_equal(ea, eb);
    assert_true((a == NULL) == (ra != 0) && (b == NULL) == (rb != 0));
    quilt_matrix_free(a);
    quilt_matrix_free(b);
    unlink(path);
    free(path);
  }

  quilt_matrix *m = (quilt_matrix *)&m;
  char err[QUILT_MATRIX_ERR_LEN];
  assert_int_equal(quilt_matrix_load(&m,
                                     QUILT_SOURCE_DIR "/data/internet/"
                                                      "no-such.matrix",
                                     err, sizeof err),
                   QUILT_ERR_IO);
  assert_null(m);
  assert_non_null(strstr(err, "no-such.matrix: cannot read: "));
  assert_int_equal(
      quilt_matrix_load(&m, QUILT_SOURCE_DIR "/data/internet", err, sizeof err),
      QUILT_ERR_IO);
  assert_null(m);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_king951),
      cmocka_unit_test(test_planetlab490),
      cmocka_unit_test(test_parse_equals_load),
      cmocka_unit_test(test_planetlab_error_position),
      cmocka_unit_test(test_asymmetric_kept),
      cmocka_unit_test(test_fill_symmetric),
      cmocka_unit_test(test_fill_detour),
      cmocka_unit_test(test_fill_median),
      cmocka_unit_test(test_fill_against_naive),
      cmocka_unit_test(test_fill_unplaceable_host),
      cmocka_unit_test(test_format_leniency),
      cmocka_unit_test(test_bad_values),
      cmocka_unit_test(test_bad_shapes),
      cmocka_unit_test(test_limits),
      cmocka_unit_test(test_load_errors),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
