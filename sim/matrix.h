/*
 * matrix.h -- host-to-host RTT matrices for the Internet scenarios.
 *
 * The file format (data/internet/README.md): lines whose first non-blank
 * character is '#' are comments, blank lines are ignored; then N lines of N
 * numbers separated by spaces or tabs, LF or CRLF line ends, a leading UTF-8
 * byte order mark skipped.  Entry (i, j) -- row i, column j, from 0 -- is
 * the RTT from host i to host j in milliseconds, DIGITS[.DIGITS] or
 * .DIGITS, read to the nearest microsecond (half up) with integer
 * arithmetic.  The diagonal must be 0; any other entry must be > 0 after
 * rounding and < QUILT_MATRIX_RTT_MS_MAX, or -1 (also -1.0, -1.00...) for
 * "not measured".  NaN, infinities, exponents, other negative numbers and
 * anything else are refused.  The first error is reported as
 * "FILE:LINE:COL: what is wrong" (1-based line and byte column).
 *
 * Asymmetric matrices.  Both directions are kept as given: rtt(i, j) is row
 * i, column j, and need not equal rtt(j, i).  The simulator's one-way delay
 * from i to j is rtt(i, j) / 2 (quilt_matrix_one_way_us), so a request i->j
 * answered j->i takes rtt(i, j) / 2 + rtt(j, i) / 2 in the simulation.
 *
 * Unknown (-1) entries are filled once, after the whole file is read, in
 * three steps, each reading only what the previous ones produced (so the
 * result does not depend on the order in which entries are visited):
 *   1. symmetric: rtt(i, j) = rtt(j, i) when the file gives that one;
 *   2. detour: otherwise the best one-hop detour
 *        min over k != i, j of rtt(i, k) + rtt(k, j)
 *      over the k for which both are known after step 1 -- an upper bound
 *      on the latency wherever the triangle inequality holds;
 *   3. median: otherwise the median of row i after step 1 (its known
 *      off-diagonal entries; the lower median for an even count).
 * A host with no known RTT at all after step 1 (its row and its column all
 * -1) cannot be placed and the file is refused, naming its row.  Step 2
 * costs n operations per entry left unknown by step 1; more than
 * QUILT_MATRIX_MAX_DETOUR_WORK in total is refused as QUILT_ERR_LIMIT.
 */
#ifndef QUILT_SIM_MATRIX_H
#define QUILT_SIM_MATRIX_H

#include <stddef.h>
#include <stdint.h>

#define QUILT_MATRIX_MAX_HOSTS 8192 /* n; the matrix takes 4 n^2 bytes */
#define QUILT_MATRIX_MIN_HOSTS 2
/* Bytes in a line, without its CR LF: room for QUILT_MATRIX_MAX_HOSTS
 * entries of up to 15 bytes and a blank each. */
#define QUILT_MATRIX_MAX_LINE (QUILT_MATRIX_MAX_HOSTS * 16)
/* Bytes quilt_matrix_load reads: N lines of the longest length (comments
 * included); a file can only be that long by being mostly comments. */
#define QUILT_MATRIX_MAX_FILE_BYTES (1u << 30)
#define QUILT_MATRIX_RTT_MS_MAX 10000 /* exclusive: 10 s is not a latency */
#define QUILT_MATRIX_MAX_DETOUR_WORK (1ull << 31)
/* Triangles quilt_matrix_get_stats samples at most. */
#define QUILT_MATRIX_MAX_SAMPLES (1u << 24)
#define QUILT_MATRIX_ERR_LEN 512

typedef struct quilt_matrix quilt_matrix;

/* Parses a matrix from text[0..len) (need not be NUL-terminated; NULL with
 * len 0 is an empty text); name is the file name used in error messages
 * (NULL: "matrix").  On success returns 0 and sets *out to a new matrix the
 * caller frees with quilt_matrix_free.  On failure *out is NULL and the
 * return is QUILT_ERR_SYNTAX (bad text), QUILT_ERR_LIMIT (a limit above)
 * or QUILT_ERR_NOMEM, with a one-line reason in err (when errlen > 0). */
int quilt_matrix_parse(quilt_matrix **out, const char *name, const char *text,
                       size_t len, char *err, size_t errlen);

/* Reads the file at path and parses it as quilt_matrix_parse does, without
 * holding the whole text in memory.  A file that cannot be opened or read
 * is QUILT_ERR_IO ("PATH: cannot read: REASON"); one longer than
 * QUILT_MATRIX_MAX_FILE_BYTES is QUILT_ERR_LIMIT.  Compressed files are not
 * read. */
int quilt_matrix_load(quilt_matrix **out, const char *path, char *err,
                      size_t errlen);

/* Frees a matrix; NULL is allowed. */
void quilt_matrix_free(quilt_matrix *m);

/* Number of hosts, QUILT_MATRIX_MIN_HOSTS..QUILT_MATRIX_MAX_HOSTS. */
uint32_t quilt_matrix_n(const quilt_matrix *m);

/* RTT from host i to host j in microseconds, after filling: 0 when i == j,
 * else >= 1.  Requires i, j < n. */
uint32_t quilt_matrix_rtt_us(const quilt_matrix *m, uint32_t i, uint32_t j);

/* One-way delay from i to j: rtt(i, j) / 2, rounded down.  Requires
 * i, j < n. */
uint32_t quilt_matrix_one_way_us(const quilt_matrix *m, uint32_t i, uint32_t j);

/* Whether entry (i, j) was -1 in the file (and so is an estimate). */
int quilt_matrix_was_unknown(const quilt_matrix *m, uint32_t i, uint32_t j);

/* What a report says about a matrix.  Shares are counts over their
 * denominators (0 when the denominator is 0). */
typedef struct quilt_matrix_stats {
  uint32_t n;
  uint64_t entries;          /* off-diagonal entries, n (n - 1) */
  uint64_t unknown;          /* of them, -1 in the file */
  uint64_t filled_symmetric; /* unknown entries filled by step 1 */
  uint64_t filled_detour;    /* ... by step 2 */
  uint64_t filled_median;    /* ... by step 3 */
  double unknown_share;      /* unknown / entries: the share filled */
  uint64_t asymmetric_pairs; /* unordered pairs given both ways, unequal */
  uint32_t rtt_us_min;       /* over all off-diagonal entries, filled */
  uint32_t rtt_us_max;
  uint32_t rtt_us_median; /* over the sampled (i, j) pairs below */
  uint32_t rtt_us_p90;
  uint64_t triangles;    /* ordered triples of distinct hosts sampled */
  uint64_t violated;     /* of them, rtt(i, j) > rtt(i, k) + rtt(k, j) */
  double violated_share; /* violated / triangles */
} quilt_matrix_stats;

/* Fills *st for m.  The triangle sample draws `samples` ordered triples
 * (i, j, k) of distinct hosts uniformly, with replacement, from a PCG32
 * seeded with seed, so equal arguments give equal statistics on every
 * platform; the median and p90 are over rtt(i, j) of the same triples.
 * samples is capped at QUILT_MATRIX_MAX_SAMPLES; 0 skips the sample.
 * Returns 0, or QUILT_ERR_NOMEM (then *st holds everything but the sampled
 * fields, which are 0). */
int quilt_matrix_get_stats(const quilt_matrix *m, uint64_t seed,
                           uint32_t samples, quilt_matrix_stats *st);

#endif /* QUILT_SIM_MATRIX_H */
