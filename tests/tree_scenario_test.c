/*
 * tree_scenario_test.c -- OMNI trees end to end in the simulator: the
 * `omni` baseline (one tree patch over all hosts), Quilt with the overlay
 * trees between patches, the direct overlay for reference; with loss and
 * churn.  The topology is data/topologies/small (314 hosts, 16 clusters on
 * 8 sites; bench/gen-topo.py), small enough for the sanitizer build.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "proto.h"
#include "quilt.h"
#include "report.h"
#include "rules.h"
#include "sim.h"
#include "topo.h"

#ifndef QUILT_SOURCE_DIR
#error "QUILT_SOURCE_DIR must name the source tree"
#endif
#define TOPO_DIR QUILT_SOURCE_DIR "/data/topologies/small"

typedef struct fixture {
  quilt_topo topo;
  quilt_rules *rules_default;
  quilt_rules *rules_omni;
} fixture;

static quilt_rules *parse(const char *text) {
  size_t nproto;
  const char *const *names = quilt_proto_names(&nproto);
  quilt_rules *r = NULL;
  char err[QUILT_RULES_ERR_LEN];
  if (quilt_rules_parse(&r, "<test>", text, strlen(text), names, nproto, err,
                        sizeof err) != 0)
    fail_msg("%s", err);
  return r;
}

static int setup(void **state) {
  fixture *f = calloc(1, sizeof *f);
  assert_non_null(f);
  char err[QUILT_TOPO_ERR_LEN];
  if (quilt_topo_load(&f->topo, TOPO_DIR "/clusters.csv",
                      TOPO_DIR "/site_rtt.csv", 7, err, sizeof err) != 0)
    fail_msg("%s", err);
  f->rules_default = parse(quilt_rules_default_text());
  f->rules_omni = parse("* -> tree max 4096\n");
  *state = f;
  return 0;
}

static int teardown(void **state) {
  fixture *f = *state;
  quilt_rules_del(f->rules_default);
  quilt_rules_del(f->rules_omni);
  quilt_topo_free(&f->topo);
  free(f);
  return 0;
}

static quilt_sim_params params(const fixture *f, quilt_sim_protocol proto,
                               uint64_t seed) {
  quilt_sim_params p;
  quilt_sim_params_default(&p);
  p.scenario = "tree-test";
  p.protocol = proto;
  p.seed = seed;
  p.topo = &f->topo;
  p.rules = proto == QUILT_SIM_OMNI ? f->rules_omni : f->rules_default;
  p.messages = 60;
  return p;
}

static void run(const quilt_sim_params *p, quilt_sim_result *r) {
  char err[512] = "";
  int rc = quilt_sim_run(p, r, err, sizeof err);
  if (rc != 0) {
    quilt_sim_result_free(r);
    fail_msg("%s, seed %llu: %s (%s)", quilt_sim_protocol_name(p->protocol),
             (unsigned long long)p->seed, err, quilt_strerror(rc));
  }
}

/* Everything owed was delivered, once, and no loop among tree views. */
static void check_clean(const quilt_sim_result *r) {
  if (r->delivery_ratio != 1.0 || r->duplicate_deliveries != 0 ||
      r->tree_cycles != 0)
    fail_msg("%s seed %llu: ratio %.6f (%llu of %llu), %llu duplicates, "
             "%llu tree cycles",
             r->protocol, (unsigned long long)r->seed, r->delivery_ratio,
             (unsigned long long)r->delivered,
             (unsigned long long)r->expected,
             (unsigned long long)r->duplicate_deliveries,
             (unsigned long long)r->tree_cycles);
  assert_true(r->expected > 0);
}

/* The three protocols on the same inputs: all deliver everything; Quilt
 * (IPMC inside clusters, overlay trees rooted at each source's patch) stays
 * within 1.5x of the lower bound at p99 and beats OMNI over all hosts at
 * p50, and the direct overlay is no faster than Quilt's trees by more than
 * a tenth at p50 (the trees cost at most a relay hop). */
static void test_compare(void **state) {
  const fixture *f = *state;
  quilt_sim_result q, o, d;
  quilt_sim_params pq = params(f, QUILT_SIM_QUILT, 11);
  quilt_sim_params po = params(f, QUILT_SIM_OMNI, 11);
  quilt_sim_params pd = params(f, QUILT_SIM_DIRECT, 11);
  run(&pq, &q);
  run(&po, &o);
  run(&pd, &d);
  check_clean(&q);
  check_clean(&o);
  check_clean(&d);
  if (!(q.latency_ms.p99 <= 1.5 * q.lower_bound_ms.p99))
    fail_msg("quilt p99 %.3f ms over 1.5 x the bound %.3f ms",
             q.latency_ms.p99, q.lower_bound_ms.p99);
  if (!(q.latency_ms.p50 < o.latency_ms.p50))
    fail_msg("quilt p50 %.3f ms not below omni's %.3f ms", q.latency_ms.p50,
             o.latency_ms.p50);
  if (!(q.latency_ms.p50 <= 1.1 * d.latency_ms.p50))
    fail_msg("quilt p50 %.3f ms over 1.1 x direct's %.3f ms",
             q.latency_ms.p50, d.latency_ms.p50);
  /* OMNI pays per host, Quilt per patch: IPMC carries the clusters. */
  assert_true(q.data_bytes < o.data_bytes);
  quilt_sim_result_free(&q);
  quilt_sim_result_free(&o);
  quilt_sim_result_free(&d);
}

/* A tenth of the hosts crash at random times (half come back): OMNI's
 * orphans re-attach, and everything owed to the hosts alive at the end is
 * delivered, in both designs. */
static void test_churn(void **state) {
  const fixture *f = *state;
  for (uint64_t seed = 1; seed <= 3; seed++) {
    quilt_sim_params po = params(f, QUILT_SIM_OMNI, seed);
    po.churn = 0.1;
    quilt_sim_params pq = params(f, QUILT_SIM_QUILT, seed);
    pq.churn = 0.1;
    quilt_sim_result o, q;
    run(&po, &o);
    run(&pq, &q);
    check_clean(&o);
    check_clean(&q);
    assert_true(o.churned >= 30);
    assert_true(o.hosts_alive < o.hosts);
    if (o.orphaned > 0) {
      /* Re-attachment takes the parent's 500 ms of silence, then one
       * round trip to the server. */
      assert_true(o.reattach_ms.n > 0);
      assert_true(o.reattach_ms.p50 >= 500.0);
      assert_true(o.reattach_ms.p99 < 2000.0);
    }
    quilt_sim_result_free(&o);
    quilt_sim_result_free(&q);
  }
}

/* Loss on every link: hop-by-hop repair in the tree. */
static void test_loss(void **state) {
  const fixture *f = *state;
  quilt_sim_params po = params(f, QUILT_SIM_OMNI, 5);
  po.loss_ppm = 20000;
  quilt_sim_result o;
  run(&po, &o);
  check_clean(&o);
  assert_true(o.packets_lost > 0);
  quilt_sim_result_free(&o);
}

/* The same seed replays the same run, trees included. */
static void test_replay(void **state) {
  const fixture *f = *state;
  quilt_sim_params p = params(f, QUILT_SIM_OMNI, 9);
  p.churn = 0.05;
  quilt_sim_result a, b;
  run(&p, &a);
  run(&p, &b);
  assert_int_equal(a.trace_hash, b.trace_hash);
  assert_int_equal(a.delivered, b.delivered);
  quilt_sim_result_free(&a);
  quilt_sim_result_free(&b);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_compare),
      cmocka_unit_test(test_churn),
      cmocka_unit_test(test_loss),
      cmocka_unit_test(test_replay),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
