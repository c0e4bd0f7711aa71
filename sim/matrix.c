/*
 * matrix.c -- the RTT matrix parser, the filling of unknown entries, and
 * the statistics of a matrix (format and rules in matrix.h).
 *
 * Text is fed one line at a time to one parser, from memory or from a
 * file read in a fixed-size line buffer, so that both paths accept and
 * refuse exactly the same inputs and a large file is never held whole.
 * While parsing, an unknown entry is held as MATRIX_UNSET; the values a
 * file can give are below 10^7 us, so the sentinel and the sum of two
 * entries (a detour) both fit a uint32_t.
 */
#include "matrix.h"

#include <assert.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "quilt.h"
#include "rng.h"

#define MATRIX_UNSET UINT32_MAX

/* PCG32 stream of the statistics sample ("mtrx" in ASCII). */
#define MATRIX_RNG_STREAM 0x6d747278u

/* Longest excerpt of a bad field quoted in an error message. */
#define MATRIX_QUOTE_MAX 32
#define MATRIX_QUOTE_LEN (MATRIX_QUOTE_MAX * 4 + 4)

_Static_assert((uint64_t)QUILT_MATRIX_RTT_MS_MAX * 1000 * 2 < MATRIX_UNSET,
               "a detour of two RTTs must fit below the unknown sentinel");
_Static_assert((uint64_t)QUILT_MATRIX_MAX_HOSTS *QUILT_MATRIX_MAX_HOSTS <=
                   SIZE_MAX / sizeof(uint32_t),
               "the largest matrix must be addressable");

#if defined(__GNUC__)
#define MATRIX_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define MATRIX_PRINTF(f, a)
#endif

struct quilt_matrix {
  uint32_t n;
  uint32_t *rtt_us; /* n x n, row-major: rtt_us[i * n + j] is i -> j */
  uint8_t *unknown; /* n x n bits: entry was -1 in the file */
  uint64_t unknown_count;
  uint64_t filled_symmetric;
  uint64_t filled_detour;
  uint64_t filled_median;
  uint64_t asymmetric_pairs;
};

typedef struct matrix_parser {
  const char *name;
  char *err;
  size_t errlen;
  uint32_t line;      /* 1-based number of the current line */
  quilt_matrix *m;    /* allocated by the first row */
  uint32_t rows;      /* rows read so far */
  uint32_t *row_line; /* line of each row, for errors found after reading */
} matrix_parser;

/* ---- errors ------------------------------------------------------------ */

static int matrix_errorv(char *err, size_t errlen, int code, const char *fmt,
                         va_list ap) {
  if (err && errlen > 0)
    vsnprintf(err, errlen, fmt, ap);
  return code;
}

/* Writes fmt to err; returns code. */
MATRIX_PRINTF(4, 5)
static int matrix_error(char *err, size_t errlen, int code, const char *fmt,
                        ...) {
  va_list ap;
  va_start(ap, fmt);
  matrix_errorv(err, errlen, code, fmt, ap);
  va_end(ap);
  return code;
}

/* "NAME:LINE:COL: message" at line; returns code. */
MATRIX_PRINTF(5, 6)
static int matrix_line_error(const matrix_parser *p, int code, uint32_t line,
                             size_t col, const char *fmt, ...) {
  char msg[QUILT_MATRIX_ERR_LEN];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  return matrix_error(p->err, p->errlen, code, "%s:%u:%zu: %s", p->name,
                      (unsigned)line, col, msg);
}

/* Copies at most MATRIX_QUOTE_MAX bytes of s[0..len) into buf for an error
 * message, non-printable bytes as \xHH and "..." when cut. */
static const char *matrix_quote(char buf[MATRIX_QUOTE_LEN], const char *s,
                                size_t len) {
  size_t o = 0;
  for (size_t i = 0; i < len && i < MATRIX_QUOTE_MAX; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c >= 0x20 && c < 0x7f && c != '\\') {
      buf[o++] = (char)c;
    } else {
      snprintf(buf + o, 5, "\\x%02x", c);
      o += 4;
    }
  }
  if (len > MATRIX_QUOTE_MAX) {
    memcpy(buf + o, "...", 3);
    o += 3;
  }
  buf[o] = '\0';
  assert(o < MATRIX_QUOTE_LEN);
  return buf;
}

/* ---- one entry --------------------------------------------------------- */

static int matrix_is_blank(char c) { return c == ' ' || c == '\t'; }

static int matrix_lower(char c) {
  return c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c;
}

/* Whether s[0..len) starts with the lowercase word w, in any case. */
static int matrix_starts_ci(const char *s, size_t len, const char *w) {
  size_t n = strlen(w);
  if (len < n)
    return 0;
  for (size_t i = 0; i < n; i++)
    if (matrix_lower(s[i]) != w[i])
      return 0;
  return 1;
}

/* Whether s[0..len) is -1, -1., -1.0, -1.00, ... */
static int matrix_is_minus_one(const char *s, size_t len) {
  if (len < 2 || s[0] != '-' || s[1] != '1')
    return 0;
  if (len == 2)
    return 1;
  if (s[2] != '.')
    return 0;
  for (size_t i = 3; i < len; i++)
    if (s[i] != '0')
      return 0;
  return 1;
}

/* Reads one entry: MATRIX_UNSET for -1, else the RTT in whole microseconds
 * (half up), with integer arithmetic only, so that the result does not
 * depend on the locale or on floating-point rounding. */
static int matrix_entry(const matrix_parser *p, const char *s, size_t len,
                        size_t col, uint32_t *out) {
  char q[MATRIX_QUOTE_LEN];
  if (matrix_is_minus_one(s, len)) {
    *out = MATRIX_UNSET;
    return 0;
  }
  size_t sign = len > 0 && (s[0] == '-' || s[0] == '+');
  if (matrix_starts_ci(s + sign, len - sign, "nan") ||
      matrix_starts_ci(s + sign, len - sign, "inf"))
    return matrix_line_error(p, QUILT_ERR_SYNTAX, p->line, col,
                             "'%s' is not a finite number of milliseconds",
                             matrix_quote(q, s, len));
  if (len > 0 && s[0] == '-')
    return matrix_line_error(p, QUILT_ERR_SYNTAX, p->line, col,
                             "negative RTT '%s' (only -1, for not measured, "
                             "may be negative)",
                             matrix_quote(q, s, len));
  uint64_t ms = 0, frac_us = 0;
  size_t i = 0, int_digits = 0, frac_digits = 0;
  int round_up = 0;
  while (i < len && s[i] >= '0' && s[i] <= '9') {
    if (ms < 1000000) /* past the limit already; stop growing */
      ms = ms * 10 + (uint64_t)(s[i] - '0');
    int_digits++;
    i++;
  }
  if (i < len && s[i] == '.') {
    i++;
    while (i < len && s[i] >= '0' && s[i] <= '9') {
      unsigned d = (unsigned)(s[i] - '0');
      if (frac_digits < 3)
        frac_us = frac_us * 10 + d;
      else if (frac_digits == 3)
        round_up = d >= 5;
      frac_digits++;
      i++;
    }
  }
  if (i != len || int_digits + frac_digits == 0)
    return matrix_line_error(p, QUILT_ERR_SYNTAX, p->line, col,
                             "expected an RTT in milliseconds "
                             "(DIGITS[.DIGITS]) or -1, got '%s'",
                             matrix_quote(q, s, len));
  if (ms >= QUILT_MATRIX_RTT_MS_MAX)
    return matrix_line_error(p, QUILT_ERR_SYNTAX, p->line, col,
                             "RTT '%s' ms is not below %d ms",
                             matrix_quote(q, s, len), QUILT_MATRIX_RTT_MS_MAX);
  for (size_t k = frac_digits; k < 3; k++)
    frac_us *= 10;
  uint64_t us = ms * 1000 + frac_us + (uint64_t)round_up;
  assert(us <= (uint64_t)QUILT_MATRIX_RTT_MS_MAX * 1000);
  *out = (uint32_t)us;
  return 0;
}

/* ---- rows -------------------------------------------------------------- */

/* Number of blank-separated fields of lp[0..llen), and the column of field
 * number `which` (0-based) in *col, or of the end of the line if fewer. */
static uint32_t matrix_count_fields(const char *lp, size_t llen, uint32_t which,
                                    size_t *col) {
  uint32_t nf = 0;
  size_t i = 0;
  *col = llen + 1;
  while (i < llen) {
    while (i < llen && matrix_is_blank(lp[i]))
      i++;
    if (i == llen)
      break;
    if (nf == which)
      *col = i + 1;
    nf++;
    while (i < llen && !matrix_is_blank(lp[i]))
      i++;
  }
  return nf;
}

/* The first row fixes n and allocates the matrix. */
static int matrix_start(matrix_parser *p, const char *lp, size_t llen) {
  size_t col;
  uint32_t n = matrix_count_fields(lp, llen, QUILT_MATRIX_MAX_HOSTS, &col);
  if (n > QUILT_MATRIX_MAX_HOSTS)
    return matrix_line_error(p, QUILT_ERR_LIMIT, p->line, col,
                             "more than %d hosts (entries in the first row)",
                             QUILT_MATRIX_MAX_HOSTS);
  if (n < QUILT_MATRIX_MIN_HOSTS)
    return matrix_line_error(p, QUILT_ERR_SYNTAX, p->line, 1,
                             "a matrix needs at least %d hosts, the first row "
                             "has %u entries",
                             QUILT_MATRIX_MIN_HOSTS, (unsigned)n);
  quilt_matrix *m = calloc(1, sizeof *m);
  size_t cells = (size_t)n * n;
  if (m) {
    m->n = n;
    m->rtt_us = malloc(cells * sizeof *m->rtt_us);
    m->unknown = calloc((cells + 7) / 8, 1);
  }
  p->row_line = malloc((size_t)n * sizeof *p->row_line);
  p->m = m;
  if (!m || !m->rtt_us || !m->unknown || !p->row_line)
    return matrix_error(p->err, p->errlen, QUILT_ERR_NOMEM,
                        "%s: out of memory for %u hosts", p->name, (unsigned)n);
  return 0;
}

static int matrix_row(matrix_parser *p, const char *lp, size_t llen) {
  int rc;
  if (!p->m && (rc = matrix_start(p, lp, llen)) != 0)
    return rc;
  quilt_matrix *m = p->m;
  uint32_t n = m->n;
  if (p->rows == n) {
    size_t col;
    (void)matrix_count_fields(lp, llen, 0, &col);
    return matrix_line_error(p, QUILT_ERR_SYNTAX, p->line, col,
                             "more than %u rows (the first row has %u "
                             "entries)",
                             (unsigned)n, (unsigned)n);
  }
  uint32_t i = p->rows;
  uint32_t *row = m->rtt_us + (size_t)i * n;
  uint32_t j = 0;
  size_t k = 0;
  while (k < llen) {
    while (k < llen && matrix_is_blank(lp[k]))
      k++;
    if (k == llen)
      break;
    size_t s = k;
    while (k < llen && !matrix_is_blank(lp[k]))
      k++;
    if (j == n)
      return matrix_line_error(p, QUILT_ERR_SYNTAX, p->line, s + 1,
                               "row %u has more than %u entries", (unsigned)i,
                               (unsigned)n);
    uint32_t v = 0;
    if ((rc = matrix_entry(p, lp + s, k - s, s + 1, &v)) != 0)
      return rc;
    if (i == j && v != 0) {
      char q[MATRIX_QUOTE_LEN];
      return matrix_line_error(p, QUILT_ERR_SYNTAX, p->line, s + 1,
                               "diagonal entry (%u, %u) must be 0, got '%s'",
                               (unsigned)i, (unsigned)j,
                               matrix_quote(q, lp + s, k - s));
    }
    if (i != j && v == 0) {
      char q[MATRIX_QUOTE_LEN];
      return matrix_line_error(
          p, QUILT_ERR_SYNTAX, p->line, s + 1,
          "RTT between distinct hosts %u and %u must be above 0 us, got '%s' "
          "(-1 means not measured)",
          (unsigned)i, (unsigned)j, matrix_quote(q, lp + s, k - s));
    }
    if (v == MATRIX_UNSET) {
      size_t bit = (size_t)i * n + j;
      m->unknown[bit / 8] |= (uint8_t)(1u << (bit % 8));
      m->unknown_count++;
    }
    row[j++] = v;
  }
  if (j < n)
    return matrix_line_error(p, QUILT_ERR_SYNTAX, p->line, llen + 1,
                             "row %u has %u entries, expected %u", (unsigned)i,
                             (unsigned)j, (unsigned)n);
  p->row_line[p->rows++] = p->line;
  return 0;
}

/* One line of text, without its LF (a CR before it is dropped here). */
static int matrix_feed_line(matrix_parser *p, const char *lp, size_t llen) {
  p->line++;
  if (llen > 0 && lp[llen - 1] == '\r')
    llen--;
  if (llen > QUILT_MATRIX_MAX_LINE)
    return matrix_line_error(
        p, QUILT_ERR_LIMIT, p->line, QUILT_MATRIX_MAX_LINE + 1,
        "line longer than %d bytes", QUILT_MATRIX_MAX_LINE);
  if (p->line == 1 && llen >= 3 && memcmp(lp, "\xEF\xBB\xBF", 3) == 0) {
    lp += 3; /* columns count from after the byte order mark */
    llen -= 3;
  }
  size_t i = 0;
  while (i < llen && matrix_is_blank(lp[i]))
    i++;
  if (i == llen || lp[i] == '#')
    return 0;
  return matrix_row(p, lp, llen);
}

/* ---- filling unknown entries (matrix.h) -------------------------------- */

static int matrix_cmp_u32(const void *a, const void *b) {
  uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
  return (x > y) - (x < y);
}

/* Lower median of row i's known off-diagonal entries, or MATRIX_UNSET when
 * there are none; scratch holds n values. */
static uint32_t matrix_row_median(const quilt_matrix *m, uint32_t i,
                                  uint32_t *scratch) {
  const uint32_t *row = m->rtt_us + (size_t)i * m->n;
  size_t c = 0;
  for (uint32_t j = 0; j < m->n; j++)
    if (j != i && row[j] != MATRIX_UNSET)
      scratch[c++] = row[j];
  if (c == 0)
    return MATRIX_UNSET;
  qsort(scratch, c, sizeof *scratch, matrix_cmp_u32);
  return scratch[(c - 1) / 2];
}

static int matrix_fill(matrix_parser *p) {
  quilt_matrix *m = p->m;
  uint32_t n = m->n;
  uint32_t *r = m->rtt_us;

  /* 1. symmetric: only from entries the file gave, so order-free. */
  for (uint32_t i = 0; i < n; i++)
    for (uint32_t j = 0; j < n; j++)
      if (r[(size_t)i * n + j] == MATRIX_UNSET &&
          r[(size_t)j * n + i] != MATRIX_UNSET &&
          quilt_matrix_was_unknown(m, j, i) == 0) {
        r[(size_t)i * n + j] = r[(size_t)j * n + i];
        m->filled_symmetric++;
      }

  uint64_t left = m->unknown_count - m->filled_symmetric;
  if (left == 0)
    return 0;
  if (left * n > QUILT_MATRIX_MAX_DETOUR_WORK)
    return matrix_error(p->err, p->errlen, QUILT_ERR_LIMIT,
                        "%s: %llu unknown (-1) entries without a measured "
                        "reverse direction; at most %llu for %u hosts",
                        p->name, (unsigned long long)left,
                        (unsigned long long)(QUILT_MATRIX_MAX_DETOUR_WORK / n),
                        (unsigned)n);

  /* 2. and 3. read the matrix of step 1 only: the estimates are kept
   * aside and written back at the end. */
  uint32_t *est = malloc((size_t)left * sizeof *est);
  uint32_t *median = malloc((size_t)n * sizeof *median);
  uint32_t *scratch = malloc((size_t)n * sizeof *scratch);
  int rc = 0;
  if (!est || !median || !scratch) {
    rc = matrix_error(p->err, p->errlen, QUILT_ERR_NOMEM, "%s: out of memory",
                      p->name);
    goto out;
  }
  for (uint32_t i = 0; i < n; i++)
    median[i] = 0; /* not computed yet; a median is >= 1 */
  size_t t = 0;
  for (uint32_t i = 0; i < n && rc == 0; i++) {
    const uint32_t *ri = r + (size_t)i * n;
    for (uint32_t j = 0; j < n; j++) {
      if (ri[j] != MATRIX_UNSET)
        continue;
      uint32_t best = MATRIX_UNSET;
      for (uint32_t k = 0; k < n; k++) {
        uint32_t a = ri[k], b = r[(size_t)k * n + j];
        if (k != i && k != j && a != MATRIX_UNSET && b != MATRIX_UNSET &&
            a + b < best)
          best = a + b;
      }
      if (best != MATRIX_UNSET) {
        m->filled_detour++;
      } else {
        if (median[i] == 0)
          median[i] = matrix_row_median(m, i, scratch);
        if (median[i] == MATRIX_UNSET) {
          rc = matrix_line_error(p, QUILT_ERR_SYNTAX, p->row_line[i], 1,
                                 "host %u has no measured RTT (its row and "
                                 "its column are all -1)",
                                 (unsigned)i);
          break;
        }
        best = median[i];
        m->filled_median++;
      }
      assert(t < left && best >= 1);
      est[t++] = best;
    }
  }
  if (rc == 0) {
    assert(t == left);
    t = 0;
    for (size_t c = 0; c < (size_t)n * n; c++)
      if (r[c] == MATRIX_UNSET)
        r[c] = est[t++];
  }
out:
  free(est);
  free(median);
  free(scratch);
  return rc;
}

/* ---- entry points ------------------------------------------------------ */

static void matrix_parser_init(matrix_parser *p, const char *name, char *err,
                               size_t errlen) {
  memset(p, 0, sizeof *p);
  p->name = name ? name : "matrix";
  p->err = err;
  p->errlen = errlen;
  if (err && errlen > 0)
    err[0] = '\0';
}

/* After the last line: checks the row count, fills, and hands the matrix
 * over (rc != 0: a line already failed). */
static int matrix_finish(matrix_parser *p, int rc, quilt_matrix **out) {
  if (rc == 0 && !p->m)
    rc = matrix_line_error(p, QUILT_ERR_SYNTAX, p->line + 1, 1,
                           "no matrix (only comments and blank lines)");
  if (rc == 0 && p->rows < p->m->n)
    rc = matrix_line_error(p, QUILT_ERR_SYNTAX, p->line + 1, 1,
                           "expected %u rows, found %u", (unsigned)p->m->n,
                           (unsigned)p->rows);
  if (rc == 0)
    rc = matrix_fill(p);
  free(p->row_line);
  p->row_line = NULL;
  if (rc != 0) {
    quilt_matrix_free(p->m);
    p->m = NULL;
    return rc;
  }
  quilt_matrix *m = p->m;
  uint32_t n = m->n;
  for (uint32_t i = 0; i < n; i++)
    for (uint32_t j = i + 1; j < n; j++)
      if (!quilt_matrix_was_unknown(m, i, j) &&
          !quilt_matrix_was_unknown(m, j, i) &&
          m->rtt_us[(size_t)i * n + j] != m->rtt_us[(size_t)j * n + i])
        m->asymmetric_pairs++;
  assert(m->filled_symmetric + m->filled_detour + m->filled_median ==
         m->unknown_count);
  *out = m;
  return 0;
}

int quilt_matrix_parse(quilt_matrix **out, const char *name, const char *text,
                       size_t len, char *err, size_t errlen) {
  assert(out != NULL);
  assert(text != NULL || len == 0);
  *out = NULL;
  matrix_parser p;
  matrix_parser_init(&p, name, err, errlen);
  size_t pos = 0;
  int rc = 0;
  while (rc == 0 && pos < len) {
    const char *start = text + pos;
    const char *nl = memchr(start, '\n', len - pos);
    size_t n = nl ? (size_t)(nl - start) : len - pos;
    pos += nl ? n + 1 : n;
    rc = matrix_feed_line(&p, start, n);
  }
  return matrix_finish(&p, rc, out);
}

int quilt_matrix_load(quilt_matrix **out, const char *path, char *err,
                      size_t errlen) {
  assert(out != NULL && path != NULL);
  *out = NULL;
  matrix_parser p;
  matrix_parser_init(&p, path, err, errlen);
  FILE *f = fopen(path, "rb");
  if (!f)
    return matrix_error(err, errlen, QUILT_ERR_IO, "%s: cannot read: %s", path,
                        strerror(errno));
  /* A line of QUILT_MATRIX_MAX_LINE bytes and its CR; one more byte before
   * the LF makes it too long whatever that byte is. */
  size_t cap = (size_t)QUILT_MATRIX_MAX_LINE + 1;
  char *buf = malloc(cap);
  if (!buf) {
    fclose(f);
    return matrix_error(err, errlen, QUILT_ERR_NOMEM, "%s: out of memory",
                        path);
  }
  size_t llen = 0;
  uint64_t total = 0;
  int rc = 0, c;
  while (rc == 0 && (c = getc(f)) != EOF) {
    if (++total > QUILT_MATRIX_MAX_FILE_BYTES) {
      rc =
          matrix_error(err, errlen, QUILT_ERR_LIMIT, "%s: larger than %u bytes",
                       path, (unsigned)QUILT_MATRIX_MAX_FILE_BYTES);
    } else if (c == '\n') {
      rc = matrix_feed_line(&p, buf, llen);
      llen = 0;
    } else if (llen == cap) {
      rc = matrix_line_error(
          &p, QUILT_ERR_LIMIT, p.line + 1, QUILT_MATRIX_MAX_LINE + 1,
          "line longer than %d bytes", QUILT_MATRIX_MAX_LINE);
    } else {
      buf[llen++] = (char)c;
    }
  }
  if (rc == 0 && ferror(f))
    rc = matrix_error(err, errlen, QUILT_ERR_IO, "%s: cannot read: %s", path,
                      strerror(errno));
  if (rc == 0 && llen > 0) /* a last line without LF */
    rc = matrix_feed_line(&p, buf, llen);
  free(buf);
  fclose(f);
  return matrix_finish(&p, rc, out);
}

void quilt_matrix_free(quilt_matrix *m) {
  if (!m)
    return;
  free(m->rtt_us);
  free(m->unknown);
  free(m);
}

uint32_t quilt_matrix_n(const quilt_matrix *m) {
  assert(m != NULL);
  return m->n;
}

uint32_t quilt_matrix_rtt_us(const quilt_matrix *m, uint32_t i, uint32_t j) {
  assert(m != NULL && i < m->n && j < m->n);
  uint32_t v = m->rtt_us[(size_t)i * m->n + j];
  assert((v == 0) == (i == j) && v != MATRIX_UNSET);
  return v;
}

uint32_t quilt_matrix_one_way_us(const quilt_matrix *m, uint32_t i,
                                 uint32_t j) {
  return quilt_matrix_rtt_us(m, i, j) / 2;
}

int quilt_matrix_was_unknown(const quilt_matrix *m, uint32_t i, uint32_t j) {
  assert(m != NULL && i < m->n && j < m->n);
  size_t bit = (size_t)i * m->n + j;
  return (m->unknown[bit / 8] >> (bit % 8)) & 1;
}

/* ---- statistics -------------------------------------------------------- */

int quilt_matrix_get_stats(const quilt_matrix *m, uint64_t seed,
                           uint32_t samples, quilt_matrix_stats *st) {
  assert(m != NULL && st != NULL);
  memset(st, 0, sizeof *st);
  uint32_t n = m->n;
  st->n = n;
  st->entries = (uint64_t)n * (n - 1);
  st->unknown = m->unknown_count;
  st->filled_symmetric = m->filled_symmetric;
  st->filled_detour = m->filled_detour;
  st->filled_median = m->filled_median;
  st->unknown_share =
      st->entries ? (double)st->unknown / (double)st->entries : 0.0;
  st->asymmetric_pairs = m->asymmetric_pairs;
  st->rtt_us_min = UINT32_MAX;
  for (uint32_t i = 0; i < n; i++)
    for (uint32_t j = 0; j < n; j++) {
      uint32_t v = m->rtt_us[(size_t)i * n + j];
      if (i == j)
        continue;
      if (v < st->rtt_us_min)
        st->rtt_us_min = v;
      if (v > st->rtt_us_max)
        st->rtt_us_max = v;
    }

  if (samples > QUILT_MATRIX_MAX_SAMPLES)
    samples = QUILT_MATRIX_MAX_SAMPLES;
  if (samples == 0)
    return 0;
  uint32_t *pair_rtt = malloc((size_t)samples * sizeof *pair_rtt);
  if (!pair_rtt)
    return QUILT_ERR_NOMEM;
  quilt_rng rng;
  quilt_rng_init(&rng, seed, MATRIX_RNG_STREAM);
  for (uint32_t s = 0; s < samples; s++) {
    /* Distinct i, j, k without rejection: draw from the smaller ranges and
     * step over the hosts already taken. */
    uint32_t i = quilt_rng_below(&rng, n);
    uint32_t j = quilt_rng_below(&rng, n - 1);
    if (j >= i)
      j++;
    uint32_t ij = m->rtt_us[(size_t)i * n + j];
    pair_rtt[s] = ij;
    if (n < 3)
      continue;
    uint32_t lo = i < j ? i : j, hi = i < j ? j : i;
    uint32_t k = quilt_rng_below(&rng, n - 2);
    if (k >= lo)
      k++;
    if (k >= hi)
      k++;
    assert(k != i && k != j && k < n);
    st->triangles++;
    /* Entries are below 2 * 10^7 us, so the sum cannot overflow. */
    if (ij > m->rtt_us[(size_t)i * n + k] + m->rtt_us[(size_t)k * n + j])
      st->violated++;
  }
  qsort(pair_rtt, samples, sizeof *pair_rtt, matrix_cmp_u32);
  st->rtt_us_median = pair_rtt[(samples - 1) / 2];
  /* Nearest rank: the smallest value at or above 90% of the sample. */
  st->rtt_us_p90 = pair_rtt[((uint64_t)samples * 9 + 9) / 10 - 1];
  free(pair_rtt);
  st->violated_share =
      st->triangles ? (double)st->violated / (double)st->triangles : 0.0;
  return 0;
}
