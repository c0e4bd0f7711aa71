/*
 * omni_test.c -- the OMNI tree core (lib/omni.h).
 *
 * Small random instances (n <= 8; metric latencies from points in a plane
 * and non-metric random matrices; degree bounds 1..3; random weights) are
 * compared with the optimum of an exhaustive search over all parent
 * assignments written here; quilt_omni_check() runs after every improve
 * round and every removal; large instances (n = 500, 1500) must improve on
 * the initial tree quickly.  Every instance comes from a fixed seed through
 * lib/rng.h and is printed when an assertion fails.
 *
 * QUILT_TEST_SCALE=small (the sanitizer builds) runs fewer instances.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "omni.h"
#include "quilt.h"
#include "rng.h"

#define MAX_N 1500
#define SMALL_MAX 8

static int small_scale(void) {
  const char *s = getenv("QUILT_TEST_SCALE");
  return s && strcmp(s, "small") == 0;
}

/* ---- instances ---- */

typedef struct inst {
  uint32_t n;
  int metric;           /* 1: points in a plane, 0: random matrix */
  double x[MAX_N], y[MAX_N];
  uint32_t *mat;        /* n*n, non-metric kind only */
  uint32_t w[MAX_N], d[MAX_N];
} inst;

static uint32_t lat_cb(void *arg, uint32_t a, uint32_t b) {
  const inst *in = arg;
  if (!in->metric)
    return in->mat[a * in->n + b];
  double dx = in->x[a] - in->x[b], dy = in->y[a] - in->y[b];
  return 100 + (uint32_t)lrint(sqrt(dx * dx + dy * dy)); /* 100 us floor */
}

static void gen(inst *in, quilt_rng *r, uint32_t n, int metric) {
  in->n = n;
  in->metric = metric;
  free(in->mat);
  in->mat = NULL;
  for (uint32_t i = 0; i < n; i++) {
    in->x[i] = quilt_rng_below(r, 50000);
    in->y[i] = quilt_rng_below(r, 50000);
    in->w[i] = quilt_rng_below(r, 11);  /* 0..10 clients */
    in->d[i] = 1 + quilt_rng_below(r, 3); /* 1..3; sum >= n > n-1 */
  }
  if (!metric) {
    in->mat = malloc((size_t)n * n * sizeof(uint32_t));
    assert_non_null(in->mat);
    for (uint32_t i = 0; i < n * n; i++)
      in->mat[i] = 100 + quilt_rng_below(r, 50000);
  }
}

static quilt_omni *make(inst *in) {
  quilt_omni *t = NULL;
  assert_int_equal(quilt_omni_new(&t, in->n, lat_cb, in), 0);
  for (uint32_t i = 0; i < in->n; i++) {
    assert_int_equal(quilt_omni_set_weight(t, i, in->w[i]), 0);
    assert_int_equal(quilt_omni_set_degree(t, i, in->d[i]), 0);
  }
  quilt_omni_build_initial(t);
  return t;
}

static void check(const quilt_omni *t) {
  char err[200];
  int rc = quilt_omni_check(t, err, sizeof(err));
  if (rc != 0)
    fail_msg("quilt_omni_check: %s", err);
  for (uint32_t i = 0; i < quilt_omni_size(t); i++)
    assert_true(quilt_omni_nchildren(t, i) <= quilt_omni_degree(t, i));
}

/* ---- exhaustive search (n <= 8) ---- */

typedef struct ex {
  const inst *in;
  uint32_t par[SMALL_MAX], kids[SMALL_MAX];
  uint64_t best;
} ex;

static uint64_t ex_cost(const ex *e) {
  uint64_t cost = 0;
  for (uint32_t v = 1; v < e->in->n; v++) {
    uint64_t l = 0;
    for (uint32_t u = v; u != 0; u = e->par[u])
      l += lat_cb((void *)e->in, e->par[u], u);
    cost += e->in->w[v] * l;
  }
  return cost;
}

/* Assigns parents to nodes k..n-1; a parent j is allowed when it has a
 * free slot and following the assigned parents from j never reaches k (no
 * cycle).  Depth is at most 8. */
static void ex_search(ex *e, uint32_t k) {
  uint32_t n = e->in->n;
  if (k == n) {
    uint64_t c = ex_cost(e);
    if (c < e->best)
      e->best = c;
    return;
  }
  for (uint32_t j = 0; j < n; j++) {
    if (j == k || e->kids[j] >= e->in->d[j])
      continue;
    uint32_t u = j;
    while (u != 0 && u != k && u < k)
      u = e->par[u];
    if (u == k)
      continue;
    e->par[k] = j;
    e->kids[j]++;
    ex_search(e, k + 1);
    e->kids[j]--;
  }
}

static uint64_t optimum(const inst *in) {
  ex e;
  memset(&e, 0, sizeof(e));
  e.in = in;
  e.best = UINT64_MAX;
  ex_search(&e, 1);
  return e.best;
}

/* ---- tests ---- */

static void test_api_errors(void **state) {
  (void)state;
  static inst in;
  quilt_rng r;
  quilt_rng_init(&r, 7, 0);
  gen(&in, &r, 5, 1);
  quilt_omni *t = NULL;
  assert_int_equal(quilt_omni_new(&t, 0, lat_cb, &in), QUILT_ERR_INVAL);
  assert_int_equal(quilt_omni_new(&t, QUILT_OMNI_MAX_NODES + 1, lat_cb, &in),
                   QUILT_ERR_INVAL);
  assert_null(t);
  assert_int_equal(quilt_omni_new(&t, 5, lat_cb, &in), 0);
  assert_int_equal(quilt_omni_improve(t, &r, 1), QUILT_ERR_STATE);
  assert_int_equal(quilt_omni_check(t, NULL, 0), QUILT_ERR_STATE);
  assert_int_equal(quilt_omni_set_degree(t, 1, 0), QUILT_ERR_INVAL);
  assert_int_equal(quilt_omni_set_degree(t, 1, QUILT_OMNI_MAX_DEGREE + 1),
                   QUILT_ERR_INVAL);
  assert_int_equal(quilt_omni_set_weight(t, 5, 1), QUILT_ERR_INVAL);
  assert_int_equal(
      quilt_omni_set_weight(t, 1, QUILT_OMNI_MAX_WEIGHT + 1), QUILT_ERR_INVAL);
  assert_int_equal(quilt_omni_set_degree(t, 0, 1), 0);
  quilt_omni_build_initial(t); /* a chain: every bound 2 but the root's 1 */
  check(t);
  assert_int_equal(quilt_omni_nchildren(t, 0), 1);
  assert_int_equal(quilt_omni_parent(t, 0), QUILT_OMNI_NONE);
  /* The root's only child is the node nearest the root (paper 2.3). */
  uint32_t nearest = 1;
  for (uint32_t i = 2; i < 5; i++)
    if (lat_cb(&in, 0, i) < lat_cb(&in, 0, nearest))
      nearest = i;
  assert_int_equal(quilt_omni_parent(t, nearest), 0);
  /* Weights follow incrementally. */
  assert_int_equal(quilt_omni_set_weight(t, 3, 1000), 0);
  check(t);
  assert_int_equal(quilt_omni_subtree_clients(t, 0), 1000 + 4);
  /* A full node cannot lose capacity below its children. */
  assert_int_equal(quilt_omni_nchildren(t, nearest), 2);
  assert_int_equal(quilt_omni_set_degree(t, nearest, 1), QUILT_ERR_STATE);
  assert_int_equal(quilt_omni_set_degree(t, 0, 1), 0);
  assert_int_equal(quilt_omni_remove(t, 0), QUILT_ERR_INVAL);
  assert_int_equal(quilt_omni_remove(t, 9), QUILT_ERR_INVAL);
  assert_int_equal(quilt_omni_remove(t, 2), 0);
  assert_int_equal(quilt_omni_remove(t, 2), QUILT_ERR_NOT_FOUND);
  check(t);
  quilt_omni_del(t);
  free(in.mat);
  in.mat = NULL;
}

static void test_small_vs_optimum(void **state) {
  (void)state;
  static inst in;
  uint32_t count = small_scale() ? 60 : 200;
  double gap_sum = 0, gap_max = 0;
  uint32_t at_opt = 0;
  for (uint32_t k = 0; k < count; k++) {
    quilt_rng r;
    quilt_rng_init(&r, 1000 + k, 1);
    uint32_t n = 2 + quilt_rng_below(&r, SMALL_MAX - 1); /* 2..8 */
    gen(&in, &r, n, (int)(k & 1));
    quilt_omni *t = make(&in);
    check(t);
    uint64_t init = quilt_omni_cost(t);
    int rounds = quilt_omni_improve(t, &r, 500);
    assert_true(rounds >= 1);
    check(t);
    uint64_t got = quilt_omni_cost(t), opt = optimum(&in);
    if (got > init || got < opt)
      fail_msg("instance %u (n %u, %s): initial %llu improved %llu opt %llu",
               k, n, in.metric ? "metric" : "matrix",
               (unsigned long long)init, (unsigned long long)got,
               (unsigned long long)opt);
    double gap = opt ? (double)(got - opt) / (double)opt : 0.0;
    gap_sum += gap;
    if (gap > gap_max)
      gap_max = gap;
    at_opt += got == opt;
    quilt_omni_del(t);
  }
  double mean = gap_sum / count;
  printf("omni: %u small instances: mean gap to optimum %.3f%%, max %.2f%%, "
         "optimal in %u\n",
         count, 100 * mean, 100 * gap_max, at_opt);
  /* Measured: 0.07% mean (max 6.7%) over the 200 instances, 196 optimal. */
  assert_true(mean <= 0.01);
  free(in.mat);
  in.mat = NULL;
}

/* One improve round at a time, the check after each. */
static void test_invariants_every_round(void **state) {
  (void)state;
  static inst in;
  uint32_t count = small_scale() ? 4 : 12;
  for (uint32_t k = 0; k < count; k++) {
    quilt_rng r;
    quilt_rng_init(&r, 2000 + k, 2);
    gen(&in, &r, 8 + quilt_rng_below(&r, 60), (int)(k & 1));
    quilt_omni *t = make(&in);
    check(t);
    uint64_t prev = quilt_omni_cost(t);
    for (int i = 0; i < 150; i++) {
      assert_true(quilt_omni_improve(t, &r, 1) >= 0);
      check(t);
      assert_true(quilt_omni_cost(t) <= prev);
      prev = quilt_omni_cost(t);
    }
    quilt_omni_stats st;
    quilt_omni_get_stats(t, &st);
    assert_true(st.promote + st.pc_swap + st.iso_swap + st.aniso_swap > 0);
    quilt_omni_del(t);
  }
  free(in.mat);
  in.mat = NULL;
}

/* Remove nodes one by one (improving in between); the tree stays valid and
 * the removed node is gone. */
static void test_remove(void **state) {
  (void)state;
  static inst in;
  for (uint32_t k = 0; k < 6; k++) {
    quilt_rng r;
    quilt_rng_init(&r, 3000 + k, 3);
    uint32_t n = 40 + quilt_rng_below(&r, 40);
    gen(&in, &r, n, (int)(k & 1));
    quilt_omni *t = make(&in);
    assert_true(quilt_omni_improve(t, &r, 20) >= 0);
    for (uint32_t left = n; left > 2; left--) {
      uint32_t v;
      do
        v = 1 + quilt_rng_below(&r, n - 1);
      while (!quilt_omni_alive(t, v));
      uint32_t p = quilt_omni_parent(t, v);
      uint32_t kids = quilt_omni_nchildren(t, v);
      assert_int_equal(quilt_omni_remove(t, v), 0);
      check(t);
      assert_int_equal(quilt_omni_parent(t, v), QUILT_OMNI_NONE);
      /* The grandparent took at least one orphan when there was one. */
      if (kids > 0)
        assert_true(quilt_omni_nchildren(t, p) >= 1);
      if (left % 7 == 0) {
        assert_true(quilt_omni_improve(t, &r, 3) >= 0);
        check(t);
      }
    }
    quilt_omni_build_initial(t); /* leaves removed nodes out */
    check(t);
    quilt_omni_del(t);
  }
  free(in.mat);
  in.mat = NULL;
}

/* The node with a free slot where c adds the least latency, by a direct
 * walk (l_q from the parents), for comparison with quilt_omni_insert. */
static uint64_t best_attach_cost(const quilt_omni *t, const inst *in,
                                 uint32_t c) {
  uint64_t best = UINT64_MAX;
  for (uint32_t q = 0; q < quilt_omni_size(t); q++) {
    if (!quilt_omni_alive(t, q) || q == c ||
        quilt_omni_nchildren(t, q) >= quilt_omni_degree(t, q))
      continue;
    uint64_t l = 0;
    for (uint32_t u = q; u != 0; u = quilt_omni_parent(t, u))
      l += lat_cb((void *)in, quilt_omni_parent(t, u), u);
    uint64_t cost = l + lat_cb((void *)in, q, c);
    if (cost < best)
      best = cost;
  }
  return best;
}

/* Removing and inserting again, growing and inserting into the new room:
 * invariants and degree bounds after every step, each insert at the
 * cheapest free slot, and a leaf. */
static void test_insert(void **state) {
  (void)state;
  static inst in;
  for (uint32_t k = 0; k < 8; k++) {
    quilt_rng r;
    quilt_rng_init(&r, 5000 + k, 5);
    uint32_t n = 20 + quilt_rng_below(&r, 60);
    gen(&in, &r, n, (int)(k & 1));
    quilt_omni *t = make(&in);
    assert_true(quilt_omni_improve(t, &r, 10) >= 0);
    check(t);
    assert_int_equal(quilt_omni_insert(t, 0), QUILT_ERR_INVAL);
    assert_int_equal(quilt_omni_insert(t, n), QUILT_ERR_INVAL);
    assert_int_equal(quilt_omni_insert(t, 1), QUILT_ERR_DUPLICATE);
    for (uint32_t step = 0; step < 4 * n; step++) {
      uint32_t v = 1 + quilt_rng_below(&r, n - 1);
      if (quilt_omni_alive(t, v)) {
        assert_int_equal(quilt_omni_remove(t, v), 0);
      } else {
        /* Degree and weight may change while out. */
        assert_int_equal(
            quilt_omni_set_degree(t, v, 1 + quilt_rng_below(&r, 4)), 0);
        assert_int_equal(quilt_omni_set_weight(t, v, quilt_rng_below(&r, 5)),
                         0);
        uint64_t want = best_attach_cost(t, &in, v);
        assert_int_equal(quilt_omni_insert(t, v), 0);
        assert_int_equal(quilt_omni_nchildren(t, v), 0);
        uint32_t q = quilt_omni_parent(t, v);
        assert_true(q != QUILT_OMNI_NONE);
        uint64_t l = 0;
        for (uint32_t u = q; u != 0; u = quilt_omni_parent(t, u))
          l += lat_cb(&in, quilt_omni_parent(t, u), u);
        assert_int_equal(l + lat_cb(&in, q, v), want);
      }
      check(t);
      if (step % 11 == 0) {
        quilt_omni_set_temperature(t, 0);
        assert_true(quilt_omni_improve(t, &r, 2) >= 0);
        check(t);
      }
    }
    quilt_omni_del(t);
  }
  free(in.mat);
  in.mat = NULL;
}

/* Grown trees: new nodes start out, come in with insert, and a tree of
 * degree-1 nodes still takes them (a chain). */
static void test_grow(void **state) {
  (void)state;
  static inst in;
  quilt_rng r;
  quilt_rng_init(&r, 6000, 6);
  gen(&in, &r, 64, 1);
  quilt_omni *t = NULL;
  assert_int_equal(quilt_omni_new(&t, 8, lat_cb, &in), 0);
  assert_int_equal(quilt_omni_insert(t, 3), QUILT_ERR_STATE); /* unbuilt */
  for (uint32_t i = 0; i < 8; i++)
    assert_int_equal(quilt_omni_set_degree(t, i, 1), 0);
  quilt_omni_build_initial(t);
  check(t);
  assert_int_equal(quilt_omni_grow(t, 8), QUILT_ERR_INVAL);
  assert_int_equal(quilt_omni_grow(t, QUILT_OMNI_MAX_NODES + 1),
                   QUILT_ERR_INVAL);
  assert_int_equal(quilt_omni_grow(t, 64), 0);
  assert_int_equal(quilt_omni_size(t), 64);
  check(t); /* the new nodes are out */
  for (uint32_t i = 8; i < 64; i++) {
    assert_int_equal(quilt_omni_alive(t, i), 0);
    assert_int_equal(quilt_omni_set_degree(t, i, 1), 0);
    assert_int_equal(quilt_omni_insert(t, i), 0);
    check(t);
  }
  /* All degree 1: one chain through all 64. */
  uint32_t kids[4];
  for (uint32_t i = 0; i < 64; i++)
    assert_true(quilt_omni_children(t, i, kids, 4) <= 1);
  uint32_t depth = 0;
  for (uint32_t u = 0;; depth++) {
    uint32_t k = quilt_omni_children(t, u, kids, 4);
    if (k == 0)
      break;
    u = kids[0];
  }
  assert_int_equal(depth, 63);
  quilt_rng rr;
  quilt_rng_init(&rr, 1, 1);
  assert_true(quilt_omni_improve(t, &rr, 5) >= 0);
  check(t);
  quilt_omni_build_initial(t); /* inserted nodes are in for good */
  check(t);
  quilt_omni_del(t);
}

static void large(uint32_t n, int metric, uint64_t seed) {
  static inst in;
  quilt_rng r;
  quilt_rng_init(&r, seed, 4);
  gen(&in, &r, n, metric);
  clock_t c0 = clock();
  quilt_omni *t = make(&in);
  uint64_t init = quilt_omni_cost(t);
  int rounds = quilt_omni_improve(t, &r, 1000);
  double secs = (double)(clock() - c0) / CLOCKS_PER_SEC;
  check(t);
  uint64_t got = quilt_omni_cost(t);
  quilt_omni_stats st;
  quilt_omni_get_stats(t, &st);
  printf("omni: n %u %s: avg latency %.0f -> %.0f us (%.1f%% lower), "
         "%d rounds, moves promote %llu pc %llu iso %llu aniso %llu uphill "
         "%llu, %.2f s\n",
         n, metric ? "metric" : "matrix", (double)init / quilt_omni_subtree_clients(t, 0),
         quilt_omni_avg_latency_us(t), 100.0 * (double)(init - got) / (double)init,
         rounds, (unsigned long long)st.promote,
         (unsigned long long)st.pc_swap, (unsigned long long)st.iso_swap,
         (unsigned long long)st.aniso_swap, (unsigned long long)st.uphill,
         secs);
  assert_true(got < init);
  if (!small_scale())
    assert_true(secs < 2.0);
  quilt_omni_del(t);
  free(in.mat);
  in.mat = NULL;
}

static void test_large(void **state) {
  (void)state;
  large(500, 1, 41);
  large(500, 0, 42);
  large(1500, 1, 43);
  if (!small_scale())
    large(1500, 0, 44);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_api_errors),
      cmocka_unit_test(test_small_vs_optimum),
      cmocka_unit_test(test_invariants_every_round),
      cmocka_unit_test(test_remove),
      cmocka_unit_test(test_insert),
      cmocka_unit_test(test_grow),
      cmocka_unit_test(test_large),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
