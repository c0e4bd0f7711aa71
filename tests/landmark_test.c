/* landmark_test.c -- regions by landmark binning (lib/landmark.h): the
 * region ids, the nearest landmark, completeness, hysteresis; and, on the
 * measured king951 and planetlab490 matrices, how many regions 8
 * landmarks chosen as the server chooses them make, how large they are and
 * how near their hosts are (printed). */
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

#include "landmark.h"
#include "matrix.h"
#include "quilt.h"

#ifndef QUILT_SOURCE_DIR
#error "QUILT_SOURCE_DIR must name the source tree"
#endif
#define KING951 QUILT_SOURCE_DIR "/data/internet/king951.matrix"
#define PLANETLAB490 QUILT_SOURCE_DIR "/data/internet/planetlab490.matrix"

/* A position that measured the set's landmarks with these RTTs, in the
 * order of the list; QUILT_WIRE_RTT_UNKNOWN leaves one out. */
static quilt_lm_pos pos_of(const quilt_lm_set *s, const uint32_t *rtt) {
  quilt_lm_pos p;
  memset(&p, 0, sizeof p);
  for (uint32_t i = 0; i < s->count; i++) {
    uint32_t slot = s->order[i];
    p.serial[slot] = s->serial[slot];
    p.rtt_us[slot] = rtt[i];
  }
  return p;
}

static void test_region_id(void **state) {
  (void)state;
  for (uint64_t id = 0; id < 10000; id++) {
    uint32_t r = quilt_lm_region_id(id * 0x100000001ULL, 0);
    assert_true(r >= QUILT_LM_REGION_MIN && r <= QUILT_LM_REGION_MAX);
    assert_int_equal(r, quilt_lm_region_id(id * 0x100000001ULL, 0));
    assert_true(r != quilt_lm_region_id(id * 0x100000001ULL, 1));
  }
  /* Neighbouring ids are far apart. */
  assert_true(quilt_lm_region_id(1, 0) != quilt_lm_region_id(2, 0));
}

static int cmp_pair(const void *a, const void *b) {
  const uint64_t *x = a, *y = b;
  return *x < *y ? -1 : *x > *y;
}

/* A landmark names quilt_lm_region_id(id, 0), or the next try when that
 * is taken (two ids found to collide by a birthday search). */
static void test_add_regions(void **state) {
  (void)state;
  quilt_lm_set s;
  quilt_lm_set_init(&s);
  assert_int_equal(quilt_lm_add(&s, 0, 11, 1), 0);
  assert_int_equal(quilt_lm_add(&s, 1, 22, 2), 1);
  assert_int_equal(s.region[0], quilt_lm_region_id(11, 0));
  assert_int_equal(s.region[1], quilt_lm_region_id(22, 0));
  assert_int_equal(quilt_lm_find_region(&s, s.region[1]), 1);
  assert_int_equal(quilt_lm_find_region(&s, 12345), -1);

  enum { N = 200000 };
  uint64_t *v = malloc(N * sizeof *v);
  assert_non_null(v);
  for (uint64_t id = 1; id <= N; id++)
    v[id - 1] = ((uint64_t)quilt_lm_region_id(id, 0) << 32) | id;
  qsort(v, N, sizeof *v, cmp_pair);
  uint64_t a = 0, b = 0;
  for (size_t i = 1; i < N && !a; i++)
    if (v[i] >> 32 == v[i - 1] >> 32) {
      a = v[i - 1] & 0xFFFFFFFFu;
      b = v[i] & 0xFFFFFFFFu;
    }
  free(v);
  assert_true(a != 0); /* about 9 collisions are expected among 200000 */
  quilt_lm_set_init(&s);
  int sa = quilt_lm_add(&s, 5, a, 1);
  int sb = quilt_lm_add(&s, 6, b, 2);
  assert_int_equal(s.region[sa], quilt_lm_region_id(a, 0));
  assert_int_equal(s.region[sb], quilt_lm_region_id(b, 1));
  assert_true(s.region[sa] != s.region[sb]);
  /* The first leaves; its slot's next landmark names its own region. */
  assert_int_equal(quilt_lm_forget(&s, 5), 1);
  assert_int_equal(quilt_lm_add(&s, 7, 99, 3), sa);
  assert_int_equal(s.region[sa], quilt_lm_region_id(99, 0));
}

/* The nearest landmark's region, ties to the lower node id; 0 until every
 * landmark of the list has been measured for the list's serials. */
static void test_region_nearest(void **state) {
  (void)state;
  quilt_lm_set s;
  quilt_lm_set_init(&s);
  quilt_lm_pos p;
  memset(&p, 0, sizeof p);
  assert_int_equal(quilt_lm_region(&s, &p, 0), 0); /* no landmark */
  assert_false(quilt_lm_complete(&s, &p));
  quilt_lm_add(&s, 0, 30, 1);
  quilt_lm_add(&s, 1, 20, 2);
  quilt_lm_add(&s, 2, 10, 3);
  uint32_t r30 = s.region[0], r20 = s.region[1], r10 = s.region[2];
  p = pos_of(&s, (const uint32_t[]){40000, 9000, 25000});
  assert_true(quilt_lm_complete(&s, &p));
  assert_int_equal(quilt_lm_min_rtt_us(&s, &p), 9000);
  assert_int_equal(quilt_lm_region(&s, &p, 0), r20);
  p = pos_of(&s, (const uint32_t[]){7000, 9000, 7000});
  assert_int_equal(quilt_lm_region(&s, &p, 0), r10); /* tie: id 10 < 30 */
  p = pos_of(&s, (const uint32_t[]){0, 9000, 7000});
  assert_int_equal(quilt_lm_region(&s, &p, 0), r30); /* a landmark itself */
  /* Not complete: one unknown, or measured to an older landmark of the
   * slot (another serial). */
  p = pos_of(&s, (const uint32_t[]){7000, QUILT_WIRE_RTT_UNKNOWN, 8000});
  assert_false(quilt_lm_complete(&s, &p));
  assert_int_equal(quilt_lm_region(&s, &p, 0), 0);
  assert_int_equal(quilt_lm_min_rtt_us(&s, &p), UINT32_MAX);
  p = pos_of(&s, (const uint32_t[]){7000, 9000, 8000});
  p.serial[1] = 99;
  assert_int_equal(quilt_lm_region(&s, &p, 0), 0);
  /* A landmark that leaves: the others still bin. */
  quilt_lm_forget(&s, 0);
  p = pos_of(&s, (const uint32_t[]){9000, 8000});
  assert_int_equal(quilt_lm_region(&s, &p, 0), r10);
  assert_int_equal(quilt_lm_region(&s, &p, r30), r10); /* r30 is gone */
}

/* The region a host has is kept while its landmark is no more than an
 * eighth (or 100 us) farther than the nearest. */
static void test_region_hysteresis(void **state) {
  (void)state;
  quilt_lm_set s;
  quilt_lm_set_init(&s);
  quilt_lm_add(&s, 0, 1, 1);
  quilt_lm_add(&s, 1, 2, 2);
  uint32_t r1 = s.region[0], r2 = s.region[1];
  quilt_lm_pos p = pos_of(&s, (const uint32_t[]){40000, 45000});
  assert_int_equal(quilt_lm_region(&s, &p, 0), r1);
  assert_int_equal(quilt_lm_region(&s, &p, r2), r2); /* 5000 <= 40000/8 */
  p = pos_of(&s, (const uint32_t[]){40000, 45001});
  assert_int_equal(quilt_lm_region(&s, &p, r2), r1);
  p = pos_of(&s, (const uint32_t[]){300, 400});
  assert_int_equal(quilt_lm_region(&s, &p, r2), r2); /* the 100 us floor */
  p = pos_of(&s, (const uint32_t[]){300, 401});
  assert_int_equal(quilt_lm_region(&s, &p, r2), r1);
  /* A region that is no landmark's (0, provisional, gone): the nearest. */
  p = pos_of(&s, (const uint32_t[]){40000, 41000});
  assert_int_equal(quilt_lm_region(&s, &p, 0x80000005u), r1);
  assert_int_equal(quilt_lm_region(&s, &p, 7), r1);
}

/* ---- measured matrices ---- */

/* The host's position against the set's landmarks (rtt(host, landmark),
 * the way a host measures it; 0 to itself). */
static quilt_lm_pos matrix_pos(const quilt_matrix *m, const quilt_lm_set *s,
                               uint32_t host) {
  quilt_lm_pos p;
  memset(&p, 0, sizeof p);
  for (uint32_t i = 0; i < s->count; i++) {
    uint32_t slot = s->order[i];
    p.serial[slot] = s->serial[slot];
    p.rtt_us[slot] =
        s->host[slot] == host ? 0 : quilt_matrix_rtt_us(m, host, s->host[slot]);
  }
  return p;
}

/* The server's choice (bootstrap.c, lm_tick): the first host, then every
 * period one more, measured by every host before the next is chosen. */
static uint32_t pick_landmarks(const quilt_matrix *m, quilt_lm_set *s,
                               uint32_t max, uint32_t min_rtt_us) {
  uint32_t n = quilt_matrix_n(m), serial = 0, rounds = 0;
  quilt_lm_set_init(s);
  quilt_lm_add(s, 0, 1, ++serial);
  while (s->count < max) {
    quilt_lm_clear_candidates(s);
    for (uint32_t i = 0; i < n; i++) {
      quilt_lm_pos p = matrix_pos(m, s, i);
      quilt_lm_report(s, i, (uint64_t)i + 1, &p, 1);
    }
    uint32_t pick[QUILT_LM_MAX], hs[QUILT_LM_MAX];
    uint32_t k = quilt_lm_pick(s, 1, min_rtt_us, pick);
    if (k == 0)
      break;
    rounds++;
    for (uint32_t j = 0; j < k; j++)
      hs[j] = s->cand[pick[j]].host;
    for (uint32_t j = 0; j < k; j++)
      quilt_lm_add(s, hs[j], (uint64_t)hs[j] + 1, ++serial);
  }
  return rounds;
}

static int cmp_desc(const void *a, const void *b) {
  uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
  return x > y ? -1 : x < y;
}

static int cmp_u32(const void *a, const void *b) {
  uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
  return x < y ? -1 : x > y;
}

/* Median of v[0..n) (sorts it). */
static uint32_t median(uint32_t *v, size_t n) {
  qsort(v, n, sizeof *v, cmp_u32);
  return n ? v[n / 2] : 0;
}

/* Regions of 8 landmarks on a matrix: printed, with the median RTT
 * between two hosts of one region against that of any two hosts, and
 * what the refinement by the two nearest landmarks (ordered) would make. */
static void measure(const char *path, const char *name) {
  quilt_matrix *m = NULL;
  char err[QUILT_MATRIX_ERR_LEN];
  if (quilt_matrix_load(&m, path, err, sizeof err) != 0) {
    printf("landmark: %s: skipped (%s)\n", name, err);
    return;
  }
  uint32_t n = quilt_matrix_n(m);
  quilt_lm_set s;
  uint32_t rounds = pick_landmarks(m, &s, 8, 1000);
  assert_int_equal(s.count, 8);
  uint32_t *slot_of = calloc(n, sizeof *slot_of);
  uint32_t *pair_of = calloc(n, sizeof *pair_of);
  assert_non_null(slot_of);
  assert_non_null(pair_of);
  uint32_t size[QUILT_LM_MAX] = {0};
  uint32_t pairs[QUILT_LM_MAX * QUILT_LM_MAX] = {0};
  for (uint32_t i = 0; i < n; i++) {
    quilt_lm_pos p = matrix_pos(m, &s, i);
    uint32_t r = quilt_lm_region(&s, &p, 0);
    int slot = quilt_lm_find_region(&s, r);
    assert_true(slot >= 0);
    slot_of[i] = (uint32_t)slot;
    size[slot]++;
    /* The second nearest, for the ordered-pair refinement. */
    int second = -1;
    for (uint32_t k = 0; k < s.count; k++) {
      uint32_t t = s.order[k];
      if ((int)t != slot && (second < 0 || p.rtt_us[t] < p.rtt_us[second]))
        second = (int)t;
    }
    pair_of[i] = (uint32_t)slot * QUILT_LM_MAX + (uint32_t)second;
    pairs[pair_of[i]]++;
  }
  uint32_t sorted[QUILT_LM_MAX];
  memcpy(sorted, size, sizeof sorted);
  qsort(sorted, QUILT_LM_MAX, sizeof sorted[0], cmp_desc);
  uint32_t nreg = 0, npatch32 = 0, total = 0;
  char line[256];
  size_t at = 0;
  for (uint32_t k = 0; k < QUILT_LM_MAX && sorted[k]; k++) {
    nreg++;
    total += sorted[k];
    npatch32 += (sorted[k] + 31) / 32;
    at += (size_t)snprintf(line + at, sizeof line - at, "%s%u", k ? " " : "",
                           sorted[k]);
  }
  assert_int_equal(total, n);
  uint32_t npairs = 0, largest_pair = 0;
  for (uint32_t k = 0; k < QUILT_LM_MAX * QUILT_LM_MAX; k++) {
    npairs += pairs[k] != 0;
    if (pairs[k] > largest_pair)
      largest_pair = pairs[k];
  }
  /* Median RTT of pairs in one region, and of all pairs. */
  size_t cap = (size_t)n * (n - 1) / 2;
  uint32_t *all = malloc(cap * sizeof *all), *in = malloc(cap * sizeof *in);
  assert_non_null(all);
  assert_non_null(in);
  size_t nall = 0, nin = 0;
  for (uint32_t i = 0; i < n; i++)
    for (uint32_t j = i + 1; j < n; j++) {
      uint32_t r = quilt_matrix_rtt_us(m, i, j);
      all[nall++] = r;
      if (slot_of[i] == slot_of[j])
        in[nin++] = r;
    }
  uint32_t med_in = median(in, nin), med_all = median(all, nall);
  /* What the trees' estimate makes of it: the lower bound over the true
   * RTT, in thousandths, over all pairs (above 1 where the matrix breaks
   * the triangle inequality). */
  size_t nr = 0;
  for (uint32_t i = 0; i < n; i++) {
    quilt_lm_pos pi = matrix_pos(m, &s, i);
    for (uint32_t j = i + 1; j < n; j++) {
      quilt_lm_pos pj = matrix_pos(m, &s, j);
      uint64_t b = quilt_lm_rtt_bound_us(&pi, &pj);
      all[nr++] = (uint32_t)(b * 1000 / quilt_matrix_rtt_us(m, i, j));
    }
  }
  uint32_t med_ratio = median(all, nr);
  printf("landmark: %s: %u hosts, 8 landmarks (the first and %u lists "
         "more) -> %u regions of %s hosts "
         "(%u patches of at most 32); median RTT within a region %.1f ms, "
         "between any two hosts %.1f ms; the two nearest landmarks, "
         "ordered, would make %u bins, the largest %u; lower bound / RTT "
         "median %.2f\n",
         name, n, rounds, nreg, line, npatch32, med_in / 1000.0,
         med_all / 1000.0, npairs, largest_pair, med_ratio / 1000.0);
  /* Binning groups nearby hosts: a region's pairs are nearer than
   * average. */
  assert_true(med_in < med_all);
  free(all);
  free(in);
  free(slot_of);
  free(pair_of);
  quilt_matrix_free(m);
}

static void test_matrices(void **state) {
  (void)state;
  measure(KING951, "king951");
  measure(PLANETLAB490, "planetlab490");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_region_id),
      cmocka_unit_test(test_add_regions),
      cmocka_unit_test(test_region_nearest),
      cmocka_unit_test(test_region_hysteresis),
      cmocka_unit_test(test_matrices),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
