/*
 * topo.c -- parsers for clusters.csv and site_rtt.csv, and the RTT model.
 *
 * The CSV dialect is deliberately small: fields separated by commas, no
 * quoting, spaces and tabs around fields ignored, CRLF or LF line ends, a
 * leading UTF-8 byte order mark skipped, blank lines and lines whose first
 * non-blank character is '#' ignored, and a header line required before the
 * first row.  Every error names the file, the line and the 1-based column
 * (in bytes) of the offending field, so that a person can fix it.
 */
#include "topo.h"

#include <assert.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "quilt.h"
#include "rng.h"

/* PCG32 stream of the intra-cluster RTT draws ("topo" in ASCII), so that
 * they never share a sequence with another user of the same seed. */
#define TOPO_RNG_STREAM 0x746f706fu

/* Longest excerpt of a bad field quoted in an error message. */
#define TOPO_QUOTE_MAX 32

#if defined(__GNUC__)
#define TOPO_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define TOPO_PRINTF(f, a)
#endif

typedef struct topo_field {
  const char *p; /* first byte after trimming */
  size_t len;    /* bytes after trimming */
  size_t col;    /* 1-based column of p in its line */
} topo_field;

/* At most this many fields are kept per line; more are only counted. */
#define TOPO_FIELDS 4

typedef struct topo_reader {
  const char *name;
  const char *text;
  size_t len;
  size_t pos;    /* offset of the next unread line */
  uint32_t line; /* 1-based number of the current line */
  const char *lp;
  size_t llen; /* current line, without CR LF */
  char *err;
  size_t errlen;
} topo_reader;

static void topo_reader_init(topo_reader *rd, const char *name,
                             const char *text, size_t len, char *err,
                             size_t errlen) {
  memset(rd, 0, sizeof *rd);
  rd->name = name;
  rd->text = text ? text : "";
  rd->len = text ? len : 0;
  rd->err = err;
  rd->errlen = errlen;
  if (rd->len >= 3 && memcmp(rd->text, "\xEF\xBB\xBF", 3) == 0)
    rd->pos = 3;
}

static int topo_errorv(char *err, size_t errlen, int code, const char *fmt,
                       va_list ap) {
  if (err && errlen > 0)
    vsnprintf(err, errlen, fmt, ap);
  return code;
}

/* "NAME: message"; returns code. */
TOPO_PRINTF(4, 5)
static int topo_file_error(char *err, size_t errlen, int code, const char *fmt,
                           ...) {
  va_list ap;
  va_start(ap, fmt);
  topo_errorv(err, errlen, code, fmt, ap);
  va_end(ap);
  return code;
}

/* "NAME:LINE:COL: message" at the reader's current line; returns code. */
TOPO_PRINTF(4, 5)
static int topo_line_error(const topo_reader *rd, int code, size_t col,
                           const char *fmt, ...) {
  char msg[QUILT_TOPO_ERR_LEN];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  return topo_file_error(rd->err, rd->errlen, code, "%s:%u:%zu: %s", rd->name,
                         (unsigned)rd->line, col, msg);
}

/* Copies at most TOPO_QUOTE_MAX bytes of p[0..len) into buf for an error
 * message, non-printable bytes as \xHH and "..." when cut. */
#define TOPO_QUOTE_LEN (TOPO_QUOTE_MAX * 4 + 4)
static const char *topo_quote(char buf[TOPO_QUOTE_LEN], const char *p,
                              size_t len) {
  size_t o = 0;
  for (size_t i = 0; i < len && i < TOPO_QUOTE_MAX; i++) {
    unsigned char c = (unsigned char)p[i];
    if (c >= 0x20 && c < 0x7f && c != '\\') {
      buf[o++] = (char)c;
    } else {
      snprintf(buf + o, 5, "\\x%02x", c);
      o += 4;
    }
  }
  if (len > TOPO_QUOTE_MAX) {
    memcpy(buf + o, "...", 3);
    o += 3;
  }
  buf[o] = '\0';
  assert(o < TOPO_QUOTE_LEN);
  return buf;
}

static int topo_is_blank(char c) { return c == ' ' || c == '\t'; }

/* Moves to the next line that is neither blank nor a comment.  Returns 1
 * with rd->lp/llen set, 0 at the end of the text, or QUILT_ERR_LIMIT for a
 * line longer than QUILT_TOPO_MAX_LINE. */
static int topo_next_line(topo_reader *rd) {
  while (rd->pos < rd->len) {
    const char *start = rd->text + rd->pos;
    size_t rest = rd->len - rd->pos;
    const char *nl = memchr(start, '\n', rest);
    size_t n = nl ? (size_t)(nl - start) : rest;
    rd->pos += nl ? n + 1 : n;
    rd->line++;
    if (n > 0 && start[n - 1] == '\r')
      n--;
    rd->lp = start;
    rd->llen = n;
    if (n > QUILT_TOPO_MAX_LINE)
      return topo_line_error(rd, QUILT_ERR_LIMIT, QUILT_TOPO_MAX_LINE + 1,
                             "line longer than %d bytes", QUILT_TOPO_MAX_LINE);
    size_t i = 0;
    while (i < n && topo_is_blank(start[i]))
      i++;
    if (i == n || start[i] == '#')
      continue;
    return 1;
  }
  /* Report the end of the text on the line after the last one. */
  rd->line++;
  rd->lp = rd->text + rd->len;
  rd->llen = 0;
  return 0;
}

/* Splits the current line at commas into trimmed fields; returns how many
 * fields the line has (only the first TOPO_FIELDS are stored). */
static size_t topo_split(const topo_reader *rd, topo_field f[TOPO_FIELDS]) {
  size_t nf = 0, i = 0;
  for (;;) {
    size_t s = i;
    while (i < rd->llen && rd->lp[i] != ',')
      i++;
    size_t e = i;
    while (s < e && topo_is_blank(rd->lp[s]))
      s++;
    while (e > s && topo_is_blank(rd->lp[e - 1]))
      e--;
    if (nf < TOPO_FIELDS) {
      f[nf].p = rd->lp + s;
      f[nf].len = e - s;
      f[nf].col = s + 1;
    }
    nf++;
    if (i == rd->llen)
      return nf;
    i++; /* the comma */
  }
}

static int topo_field_is(const topo_field *f, const char *s) {
  size_t n = strlen(s);
  return f->len == n && memcmp(f->p, s, n) == 0;
}

/* Checks that the current line holds 3 fields and returns them in f. */
static int topo_three_fields(const topo_reader *rd, topo_field f[TOPO_FIELDS],
                             const char *what) {
  size_t nf = topo_split(rd, f);
  if (nf == 3)
    return 0;
  size_t col = nf > 3 ? f[3].col : rd->llen + 1;
  return topo_line_error(rd, QUILT_ERR_SYNTAX, col,
                         "expected 3 fields (%s), found %zu", what, nf);
}

/* Reads the header: the first line that is not blank or a comment must be
 * exactly the three names of header (comma-separated). */
static int topo_header(topo_reader *rd, const char *const names[3]) {
  char header[64];
  snprintf(header, sizeof header, "%s,%s,%s", names[0], names[1], names[2]);
  int rc = topo_next_line(rd);
  if (rc < 0)
    return rc;
  if (rc == 0)
    return topo_line_error(rd, QUILT_ERR_SYNTAX, 1, "missing header '%s'",
                           header);
  topo_field f[TOPO_FIELDS];
  size_t nf = topo_split(rd, f);
  for (size_t i = 0; i < 3; i++) {
    if (i >= nf)
      return topo_line_error(rd, QUILT_ERR_SYNTAX, rd->llen + 1,
                             "expected header '%s'", header);
    if (!topo_field_is(&f[i], names[i]))
      return topo_line_error(rd, QUILT_ERR_SYNTAX, f[i].col,
                             "expected header '%s'", header);
  }
  if (nf > 3)
    return topo_line_error(rd, QUILT_ERR_SYNTAX, f[3].col,
                           "expected header '%s'", header);
  return 0;
}

/* Site and cluster names: 1 to QUILT_TOPO_MAX_NAME - 1 bytes of
 * [A-Za-z0-9_.-], so that they are safe in file names, JSON and plots. */
static int topo_name(const topo_reader *rd, const topo_field *f,
                     const char *what, char out[QUILT_TOPO_MAX_NAME]) {
  char q[TOPO_QUOTE_LEN], qc[TOPO_QUOTE_LEN];
  if (f->len == 0)
    return topo_line_error(rd, QUILT_ERR_SYNTAX, f->col, "empty %s", what);
  if (f->len >= QUILT_TOPO_MAX_NAME)
    return topo_line_error(rd, QUILT_ERR_SYNTAX, f->col,
                           "%s longer than %d bytes", what,
                           QUILT_TOPO_MAX_NAME - 1);
  for (size_t i = 0; i < f->len; i++) {
    char c = f->p[i];
    int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
             (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-';
    if (!ok)
      return topo_line_error(
          rd, QUILT_ERR_SYNTAX, f->col,
          "invalid character '%s' in %s '%s' (allowed: A-Z a-z 0-9 _ . -)",
          topo_quote(qc, &f->p[i], 1), what, topo_quote(q, f->p, f->len));
  }
  memcpy(out, f->p, f->len);
  out[f->len] = '\0';
  return 0;
}

/* hosts: a decimal integer in [1, QUILT_TOPO_MAX_HOSTS]. */
static int topo_hosts(const topo_reader *rd, const topo_field *f,
                      uint32_t *out) {
  uint64_t v = 0;
  int ok = f->len > 0 && f->len <= 12;
  for (size_t i = 0; ok && i < f->len; i++) {
    if (f->p[i] < '0' || f->p[i] > '9')
      ok = 0;
    else
      v = v * 10 + (uint64_t)(f->p[i] - '0');
  }
  if (!ok || v < 1 || v > QUILT_TOPO_MAX_HOSTS) {
    char q[TOPO_QUOTE_LEN];
    return topo_line_error(rd, QUILT_ERR_SYNTAX, f->col,
                           "hosts must be an integer from 1 to %d, got '%s'",
                           QUILT_TOPO_MAX_HOSTS, topo_quote(q, f->p, f->len));
  }
  *out = (uint32_t)v;
  return 0;
}

/* rtt_ms: DIGITS[.DIGITS] or .DIGITS, > 0 and < 10000, converted to whole
 * microseconds (half up) with integer arithmetic, so that the result does
 * not depend on the locale or on floating-point rounding. */
static int topo_rtt(const topo_reader *rd, const topo_field *f,
                    uint32_t *out_us) {
  char q[TOPO_QUOTE_LEN];
  uint64_t ms = 0, frac_us = 0;
  size_t i = 0, int_digits = 0, frac_digits = 0;
  int round_up = 0, nonzero = 0;
  while (i < f->len && f->p[i] >= '0' && f->p[i] <= '9') {
    if (ms < 100000) /* past the limit already; stop growing */
      ms = ms * 10 + (uint64_t)(f->p[i] - '0');
    nonzero |= f->p[i] != '0';
    int_digits++;
    i++;
  }
  if (i < f->len && f->p[i] == '.') {
    i++;
    while (i < f->len && f->p[i] >= '0' && f->p[i] <= '9') {
      unsigned d = (unsigned)(f->p[i] - '0');
      if (frac_digits < 3)
        frac_us = frac_us * 10 + d;
      else if (frac_digits == 3)
        round_up = d >= 5;
      nonzero |= d != 0;
      frac_digits++;
      i++;
    }
  }
  for (size_t k = frac_digits; k < 3; k++)
    frac_us *= 10;
  int ok = i == f->len && int_digits + frac_digits > 0;
  if (!ok || !nonzero || ms >= 10000)
    return topo_line_error(rd, QUILT_ERR_SYNTAX, f->col,
                           "rtt_ms must be a decimal number greater than 0 "
                           "and less than 10000, got '%s'",
                           topo_quote(q, f->p, f->len));
  uint64_t us = ms * 1000 + frac_us + (uint64_t)round_up;
  if (us == 0)
    return topo_line_error(rd, QUILT_ERR_SYNTAX, f->col,
                           "rtt_ms '%s' rounds to 0 microseconds",
                           topo_quote(q, f->p, f->len));
  assert(us <= 10000000u);
  *out_us = (uint32_t)us;
  return 0;
}

static int topo_find_site(const quilt_topo *t, const char *name) {
  for (uint32_t i = 0; i < t->nsites; i++)
    if (strcmp(t->site_names[i], name) == 0)
      return (int)i;
  return -1;
}

/* Returns p (an array of *cap elements of size sz) grown to hold at least
 * want elements, at most limit; NULL when out of memory (p is then still
 * valid and unchanged). */
static void *topo_grow(void *p, uint32_t *cap, uint32_t want, uint32_t limit,
                       size_t sz) {
  assert(want <= limit);
  if (want <= *cap)
    return p;
  uint32_t ncap = *cap ? *cap : 16;
  while (ncap < want)
    ncap *= 2;
  if (ncap > limit)
    ncap = limit;
  void *np = realloc(p, (size_t)ncap * sz);
  if (np)
    *cap = ncap;
  return np;
}

static int topo_nomem(char *err, size_t errlen, const char *name) {
  return topo_file_error(err, errlen, QUILT_ERR_NOMEM, "%s: out of memory",
                         name);
}

static int topo_parse_clusters(quilt_topo *t, topo_reader *rd) {
  static const char *const header[3] = {"site", "cluster", "hosts"};
  uint32_t *cluster_line = NULL; /* line of each cluster, for duplicates */
  uint32_t ccap = 0, scap = 0, lcap = 0;
  uint64_t nhosts = 0;
  int rc = topo_header(rd, header);
  while (rc == 0 && (rc = topo_next_line(rd)) == 1) {
    topo_field f[TOPO_FIELDS];
    quilt_topo_cluster c;
    memset(&c, 0, sizeof c);
    if ((rc = topo_three_fields(rd, f, "site,cluster,hosts")) != 0 ||
        (rc = topo_name(rd, &f[0], "site name", c.site_name)) != 0 ||
        (rc = topo_name(rd, &f[1], "cluster name", c.name)) != 0 ||
        (rc = topo_hosts(rd, &f[2], &c.hosts)) != 0)
      break;
    for (uint32_t i = 0; i < t->nclusters; i++) {
      if (strcmp(t->clusters[i].name, c.name) == 0) {
        rc = topo_line_error(rd, QUILT_ERR_SYNTAX, f[1].col,
                             "duplicate cluster '%s' (first on line %u)",
                             c.name, (unsigned)cluster_line[i]);
        break;
      }
    }
    if (rc != 0)
      break;
    if (t->nclusters == QUILT_TOPO_MAX_CLUSTERS) {
      rc = topo_line_error(rd, QUILT_ERR_LIMIT, f[0].col,
                           "more than %d clusters", QUILT_TOPO_MAX_CLUSTERS);
      break;
    }
    nhosts += c.hosts;
    if (nhosts > QUILT_TOPO_MAX_HOSTS) {
      rc = topo_line_error(rd, QUILT_ERR_LIMIT, f[2].col,
                           "more than %d hosts in total", QUILT_TOPO_MAX_HOSTS);
      break;
    }
    int site = topo_find_site(t, c.site_name);
    if (site < 0) {
      if (t->nsites == QUILT_TOPO_MAX_SITES) {
        rc = topo_line_error(rd, QUILT_ERR_LIMIT, f[0].col,
                             "more than %d sites", QUILT_TOPO_MAX_SITES);
        break;
      }
      void *np = topo_grow(t->site_names, &scap, t->nsites + 1,
                           QUILT_TOPO_MAX_SITES, sizeof t->site_names[0]);
      if (!np) {
        rc = topo_nomem(rd->err, rd->errlen, rd->name);
        break;
      }
      t->site_names = np;
      memcpy(t->site_names[t->nsites], c.site_name, QUILT_TOPO_MAX_NAME);
      site = (int)t->nsites++;
    }
    void *nc = topo_grow(t->clusters, &ccap, t->nclusters + 1,
                         QUILT_TOPO_MAX_CLUSTERS, sizeof t->clusters[0]);
    if (nc)
      t->clusters = nc;
    void *nl = nc ? topo_grow(cluster_line, &lcap, t->nclusters + 1,
                              QUILT_TOPO_MAX_CLUSTERS, sizeof cluster_line[0])
                  : NULL;
    if (nl)
      cluster_line = nl;
    if (!nc || !nl) {
      rc = topo_nomem(rd->err, rd->errlen, rd->name);
      break;
    }
    c.site = (uint32_t)site;
    c.first_host = (uint32_t)(nhosts - c.hosts);
    cluster_line[t->nclusters] = rd->line;
    t->clusters[t->nclusters++] = c;
  }
  free(cluster_line);
  if (rc < 0)
    return rc;
  if (t->nclusters == 0)
    return topo_file_error(rd->err, rd->errlen, QUILT_ERR_SYNTAX,
                           "%s: no clusters", rd->name);
  t->nhosts = (uint32_t)nhosts;
  return 0;
}

static int topo_parse_rtt(quilt_topo *t, topo_reader *rd,
                          const char *clusters_name) {
  static const char *const header[3] = {"site_a", "site_b", "rtt_ms"};
  size_t ns = t->nsites;
  uint32_t *pair_line = calloc(ns * ns, sizeof *pair_line);
  t->site_rtt_us = calloc(ns * ns, sizeof *t->site_rtt_us);
  if (!pair_line || !t->site_rtt_us) {
    free(pair_line);
    return topo_nomem(rd->err, rd->errlen, rd->name);
  }
  int rc = topo_header(rd, header);
  while (rc == 0 && (rc = topo_next_line(rd)) == 1) {
    topo_field f[TOPO_FIELDS];
    char a[QUILT_TOPO_MAX_NAME], b[QUILT_TOPO_MAX_NAME];
    uint32_t us = 0;
    if ((rc = topo_three_fields(rd, f, "site_a,site_b,rtt_ms")) != 0 ||
        (rc = topo_name(rd, &f[0], "site name", a)) != 0 ||
        (rc = topo_name(rd, &f[1], "site name", b)) != 0)
      break;
    int ia = topo_find_site(t, a), ib = topo_find_site(t, b);
    if (ia < 0 || ib < 0) {
      rc = topo_line_error(rd, QUILT_ERR_SYNTAX, ia < 0 ? f[0].col : f[1].col,
                           "unknown site '%s' (not in %s)", ia < 0 ? a : b,
                           clusters_name);
      break;
    }
    if (ia == ib) {
      rc = topo_line_error(rd, QUILT_ERR_SYNTAX, f[1].col,
                           "site '%s' paired with itself", a);
      break;
    }
    size_t ab = (size_t)ia * ns + (size_t)ib;
    if (pair_line[ab] != 0) {
      rc = topo_line_error(rd, QUILT_ERR_SYNTAX, f[0].col,
                           "duplicate RTT for sites '%s' and '%s' (first on "
                           "line %u)",
                           a, b, (unsigned)pair_line[ab]);
      break;
    }
    if ((rc = topo_rtt(rd, &f[2], &us)) != 0)
      break;
    size_t ba = (size_t)ib * ns + (size_t)ia;
    pair_line[ab] = pair_line[ba] = rd->line;
    t->site_rtt_us[ab] = t->site_rtt_us[ba] = us;
  }
  if (rc == 0) {
    for (size_t i = 0; i < ns && rc == 0; i++)
      for (size_t j = i + 1; j < ns && rc == 0; j++)
        if (pair_line[i * ns + j] == 0)
          rc = topo_file_error(rd->err, rd->errlen, QUILT_ERR_SYNTAX,
                               "%s: no RTT for sites '%s' and '%s'", rd->name,
                               t->site_names[i], t->site_names[j]);
  }
  free(pair_line);
  return rc;
}

/* Numbers the hosts cluster by cluster and draws each cluster's RTT. */
static int topo_finish(quilt_topo *t, uint64_t seed) {
  quilt_rng rng;
  quilt_rng_init(&rng, seed, TOPO_RNG_STREAM);
  t->host_cluster = malloc((size_t)t->nhosts * sizeof *t->host_cluster);
  if (!t->host_cluster)
    return QUILT_ERR_NOMEM;
  for (uint32_t c = 0; c < t->nclusters; c++) {
    quilt_topo_cluster *cl = &t->clusters[c];
    cl->rtt_us =
        (uint32_t)quilt_rng_range(&rng, QUILT_TOPO_INTRA_CLUSTER_RTT_MIN_US,
                                  QUILT_TOPO_INTRA_CLUSTER_RTT_MAX_US);
    for (uint32_t h = 0; h < cl->hosts; h++)
      t->host_cluster[cl->first_host + h] = c;
  }
  return 0;
}

int quilt_topo_parse(quilt_topo *t, const char *clusters_name,
                     const char *clusters_text, size_t clusters_len,
                     const char *rtt_name, const char *rtt_text, size_t rtt_len,
                     uint64_t seed, char *err, size_t errlen) {
  assert(t != NULL);
  memset(t, 0, sizeof *t);
  if (err && errlen > 0)
    err[0] = '\0';
  if (!clusters_name)
    clusters_name = "clusters.csv";
  if (!rtt_name)
    rtt_name = "site_rtt.csv";
  topo_reader rd;
  topo_reader_init(&rd, clusters_name, clusters_text, clusters_len, err,
                   errlen);
  int rc = topo_parse_clusters(t, &rd);
  if (rc == 0) {
    topo_reader_init(&rd, rtt_name, rtt_text, rtt_len, err, errlen);
    rc = topo_parse_rtt(t, &rd, clusters_name);
  }
  if (rc == 0 && topo_finish(t, seed) != 0)
    rc = topo_nomem(err, errlen, clusters_name);
  if (rc != 0) {
    quilt_topo_free(t);
    return rc;
  }
  assert(t->nclusters > 0 && t->nhosts > 0);
  return 0;
}

/* Reads a whole file of at most QUILT_TOPO_MAX_FILE_BYTES into *out. */
static int topo_read_file(const char *path, char **out, size_t *outlen,
                          char *err, size_t errlen) {
  *out = NULL;
  *outlen = 0;
  FILE *f = fopen(path, "rb");
  if (!f)
    return topo_file_error(err, errlen, QUILT_ERR_IO, "%s: cannot read: %s",
                           path, strerror(errno));
  char *buf = NULL;
  size_t len = 0, cap = 0;
  int rc = 0;
  for (;;) {
    if (len == cap) {
      if (cap > QUILT_TOPO_MAX_FILE_BYTES) {
        rc = topo_file_error(err, errlen, QUILT_ERR_LIMIT,
                             "%s: larger than %u bytes", path,
                             (unsigned)QUILT_TOPO_MAX_FILE_BYTES);
        break;
      }
      /* One byte past the limit tells a file of exactly the limit from a
       * longer one. */
      size_t ncap = cap ? cap * 2 : 64 * 1024;
      if (ncap > (size_t)QUILT_TOPO_MAX_FILE_BYTES + 1)
        ncap = (size_t)QUILT_TOPO_MAX_FILE_BYTES + 1;
      char *nb = realloc(buf, ncap);
      if (!nb) {
        rc = topo_nomem(err, errlen, path);
        break;
      }
      buf = nb;
      cap = ncap;
    }
    size_t n = fread(buf + len, 1, cap - len, f);
    len += n;
    if (n == 0) {
      if (ferror(f))
        rc = topo_file_error(err, errlen, QUILT_ERR_IO, "%s: cannot read: %s",
                             path, strerror(errno));
      break;
    }
    if (len > QUILT_TOPO_MAX_FILE_BYTES) {
      rc = topo_file_error(err, errlen, QUILT_ERR_LIMIT,
                           "%s: larger than %u bytes", path,
                           (unsigned)QUILT_TOPO_MAX_FILE_BYTES);
      break;
    }
  }
  fclose(f);
  if (rc != 0) {
    free(buf);
    return rc;
  }
  *out = buf;
  *outlen = len;
  return 0;
}

int quilt_topo_load(quilt_topo *t, const char *clusters_path,
                    const char *rtt_path, uint64_t seed, char *err,
                    size_t errlen) {
  assert(t != NULL && clusters_path != NULL && rtt_path != NULL);
  memset(t, 0, sizeof *t);
  char *ctext = NULL, *rtext = NULL;
  size_t clen = 0, rlen = 0;
  int rc = topo_read_file(clusters_path, &ctext, &clen, err, errlen);
  if (rc == 0)
    rc = topo_read_file(rtt_path, &rtext, &rlen, err, errlen);
  if (rc == 0)
    rc = quilt_topo_parse(t, clusters_path, ctext, clen, rtt_path, rtext, rlen,
                          seed, err, errlen);
  free(ctext);
  free(rtext);
  return rc;
}

void quilt_topo_free(quilt_topo *t) {
  if (!t)
    return;
  free(t->site_names);
  free(t->site_rtt_us);
  free(t->clusters);
  free(t->host_cluster);
  memset(t, 0, sizeof *t);
}

uint32_t quilt_topo_rtt_us(const quilt_topo *t, uint32_t a, uint32_t b) {
  assert(a < t->nhosts && b < t->nhosts);
  if (a == b)
    return 0;
  uint32_t ca = t->host_cluster[a], cb = t->host_cluster[b];
  if (ca == cb)
    return t->clusters[ca].rtt_us;
  uint32_t sa = t->clusters[ca].site, sb = t->clusters[cb].site;
  if (sa == sb)
    return QUILT_TOPO_INTRA_SITE_RTT_US;
  return t->site_rtt_us[(size_t)sa * t->nsites + sb];
}
