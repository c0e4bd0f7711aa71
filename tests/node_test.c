/*
 * node_test.c -- the host core on its own: what it sends, what it refuses,
 * and how it treats bad input.  Two hosts and a bootstrap server are wired
 * together through an in-memory queue (no simulator), so each step can be
 * checked.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "bootstrap.h"
#include "node.h"
#include "proto.h"
#include "quilt.h"
#include "rules.h"
#include "wire.h"

#define MS 1000000ULL
#define MAXQ 4096

typedef struct dgram {
  quilt_addr from, to;
  uint32_t len;
  uint8_t data[QUILT_WIRE_MAX_DATAGRAM];
} dgram;

typedef struct world {
  quilt_bootstrap *boot;
  quilt_rules *rules;
  quilt_node *node[2];
  quilt_addr addr[3]; /* hosts 0, 1, bootstrap */
  dgram *q;
  size_t nq;
  uint64_t delivered[2];
  uint64_t last_seq[2];
  uint64_t losses[2];
  uint32_t group_ip[2];
  uint64_t now;
  /* SESSIONs host 0 sent, to host 1's address and to any other host's;
   * SESSIONs host 1 sent to host 0 */
  uint32_t sessions0_to_1, sessions0_to_other, sessions1_to_0;
} world;

typedef struct endpoint {
  world *w;
  int index;
} endpoint;

static endpoint ep[3];

static void enqueue(world *w, int from, const quilt_addr *to,
                    const uint8_t *buf, size_t len) {
  assert_true(len <= QUILT_WIRE_MAX_DATAGRAM);
  assert_true(w->nq < MAXQ);
  dgram *d = &w->q[w->nq++];
  d->from = w->addr[from];
  d->to = *to;
  d->len = (uint32_t)len;
  memcpy(d->data, buf, len);
  if (from == 0 && len > 3 && buf[3] == QUILT_MSG_SESSION &&
      !quilt_addr_is_multicast(to) && !quilt_addr_eq(to, &w->addr[2])) {
    if (quilt_addr_eq(to, &w->addr[1]))
      w->sessions0_to_1++;
    else
      w->sessions0_to_other++;
  }
  if (from == 1 && len > 3 && buf[3] == QUILT_MSG_SESSION &&
      quilt_addr_eq(to, &w->addr[0]))
    w->sessions1_to_0++;
}

static void node_send(void *user, const quilt_addr *to, const uint8_t *buf,
                      size_t len) {
  endpoint *e = user;
  enqueue(e->w, e->index, to, buf, len);
}

static void boot_send(void *user, const quilt_addr *to, const uint8_t *buf,
                      size_t len) {
  world *w = user;
  enqueue(w, 2, to, buf, len);
}

static void mjoin(void *user, const quilt_addr *g) {
  endpoint *e = user;
  e->w->group_ip[e->index] = g->ip;
}

static void mleave(void *user, const quilt_addr *g) {
  endpoint *e = user;
  if (e->w->group_ip[e->index] == g->ip)
    e->w->group_ip[e->index] = 0;
}

static void on_deliver(void *user, const quilt_msg_data *d, uint64_t now) {
  endpoint *e = user;
  (void)now;
  e->w->delivered[e->index]++;
  e->w->last_seq[e->index] = d->seq;
}

static void on_loss(void *user, uint64_t origin, uint64_t first,
                    uint64_t count, uint64_t now) {
  endpoint *e = user;
  (void)origin;
  (void)first;
  (void)now;
  e->w->losses[e->index] += count;
}

/* Delivers every queued datagram (and what they cause) to its receivers. */
static void pump(world *w) {
  for (size_t i = 0; i < w->nq; i++) {
    dgram d = w->q[i];
    if (quilt_addr_is_multicast(&d.to)) {
      for (int h = 0; h < 2; h++)
        if (w->group_ip[h] == d.to.ip && !quilt_addr_eq(&d.from, &w->addr[h]))
          quilt_node_read(w->node[h], &d.from, d.data, d.len, w->now);
    } else if (quilt_addr_eq(&d.to, &w->addr[2])) {
      quilt_bootstrap_read(w->boot, &d.from, d.data, d.len, w->now);
    } else {
      for (int h = 0; h < 2; h++)
        if (quilt_addr_eq(&d.to, &w->addr[h]))
          quilt_node_read(w->node[h], &d.from, d.data, d.len, w->now);
    }
  }
  w->nq = 0;
}

/* Advances time to t, running every timer that falls due on the way. */
static void run_until(world *w, uint64_t t) {
  for (;;) {
    pump(w);
    uint64_t next = quilt_bootstrap_expiry(w->boot);
    for (int h = 0; h < 2; h++) {
      uint64_t e = quilt_node_expiry(w->node[h]);
      if (e < next)
        next = e;
    }
    if (next > t)
      break;
    if (next > w->now)
      w->now = next;
    if (quilt_bootstrap_expiry(w->boot) <= w->now)
      quilt_bootstrap_handle_expiry(w->boot, w->now);
    for (int h = 0; h < 2; h++)
      if (quilt_node_expiry(w->node[h]) <= w->now)
        quilt_node_handle_expiry(w->node[h], w->now);
  }
  w->now = t;
  pump(w);
}

/* Host h's node (ids 1 and 2), on IP multicast in `domain`. */
static void make_node(world *w, int h, unsigned nat, uint32_t domain) {
  quilt_node_callbacks cb = {node_send, mjoin,   mleave,
                             on_deliver, on_loss, NULL, NULL};
  quilt_node_config nc;
  quilt_node_config_default(&nc);
  nc.id = (uint64_t)h + 1;
  nc.addr = w->addr[h];
  nc.bootstrap = w->addr[2];
  nc.group = quilt_group_id("test");
  nc.seed = 7;
  nc.euid.nat = (uint8_t)nat;
  nc.euid.ipmc = 1;
  nc.euid.domain = domain;
  nc.euid.region = 1;
  nc.euid.bw_kbps = 1000000;
  assert_int_equal(quilt_node_new(&w->node[h], &nc, &cb, &ep[h]), 0);
}

static int setup(void **state) {
  world *w = calloc(1, sizeof *w);
  assert_non_null(w);
  w->q = calloc(MAXQ, sizeof *w->q);
  assert_non_null(w->q);
  size_t np;
  const char *const *names = quilt_proto_names(&np);
  const char *text = quilt_rules_default_text();
  char err[QUILT_RULES_ERR_LEN];
  assert_int_equal(quilt_rules_parse(&w->rules, "default", text, strlen(text),
                                     names, np, err, sizeof err),
                   0);
  for (int i = 0; i < 3; i++) {
    w->addr[i].ip = 0x7f000001;
    w->addr[i].port = (uint16_t)(7000 + i);
    ep[i].w = w;
    ep[i].index = i;
  }
  quilt_bootstrap_config bc;
  quilt_bootstrap_config_default(&bc);
  bc.id = 99;
  bc.rules = w->rules;
  quilt_bootstrap_callbacks bcb = {boot_send};
  assert_int_equal(quilt_bootstrap_new(&w->boot, &bc, &bcb, w), 0);
  for (int h = 0; h < 2; h++)
    make_node(w, h, QUILT_NAT_NONE, 5);
  *state = w;
  return 0;
}

static int teardown(void **state) {
  world *w = *state;
  for (int h = 0; h < 2; h++)
    quilt_node_del(w->node[h]);
  quilt_bootstrap_del(w->boot);
  quilt_rules_del(w->rules);
  free(w->q);
  free(w);
  return 0;
}

static void join_both(world *w) {
  for (int h = 0; h < 2; h++)
    assert_int_equal(quilt_node_start(w->node[h], w->now), 0);
  run_until(w, 10 * MS);
  for (int h = 0; h < 2; h++) {
    quilt_node_status st;
    quilt_node_status_get(w->node[h], &st);
    assert_true(st.joined);
    assert_int_equal(st.protocol, QUILT_PROTO_IPMC);
    assert_int_not_equal(w->group_ip[h], 0);
  }
}

static void test_publish_before_join_refused(void **state) {
  world *w = *state;
  uint8_t p[4] = {1, 2, 3, 4};
  assert_int_equal(quilt_node_publish(w->node[0], p, sizeof p, 0),
                   QUILT_ERR_STATE);
}

static void test_join_and_deliver(void **state) {
  world *w = *state;
  join_both(w);
  quilt_node_status a, b;
  quilt_node_status_get(w->node[0], &a);
  quilt_node_status_get(w->node[1], &b);
  assert_int_equal(a.patch_id, b.patch_id);
  assert_true((a.role == QUILT_ROLE_PRIMARY) != (b.role == QUILT_ROLE_PRIMARY));
  uint8_t p[100];
  memset(p, 0xab, sizeof p);
  for (int i = 1; i <= 5; i++)
    assert_int_equal(quilt_node_publish(w->node[0], p, sizeof p, w->now), i);
  run_until(w, 20 * MS);
  assert_int_equal(w->delivered[1], 5);
  assert_int_equal(w->last_seq[1], 5);
  assert_int_equal(w->delivered[0], 0); /* no self-delivery */
}

static void test_oversized_publish_refused(void **state) {
  world *w = *state;
  join_both(w);
  static uint8_t big[QUILT_WIRE_MAX_PAYLOAD + 1];
  assert_int_equal(
      quilt_node_publish(w->node[0], big, sizeof big, w->now),
      QUILT_ERR_TOO_BIG);
  assert_int_equal(
      quilt_node_publish(w->node[0], big, QUILT_WIRE_MAX_PAYLOAD, w->now), 1);
}

static void test_malformed_counted_and_dropped(void **state) {
  world *w = *state;
  join_both(w);
  static const uint8_t garbage[] = {0x51, 0x4c, 1, 7, 0, 0};
  static const uint8_t wrong_version[] = {0x51, 0x4c, 9, 7, 0, 0, 0, 0,
                                          0,    0,    0, 0, 0, 0, 0, 1};
  quilt_addr from = {0x7f000001, 9999};
  assert_true(quilt_node_read(w->node[1], &from, garbage, sizeof garbage,
                              w->now) < 0);
  assert_int_equal(quilt_node_read(w->node[1], &from, wrong_version,
                                   sizeof wrong_version, w->now),
                   QUILT_ERR_VERSION);
  assert_true(quilt_node_read(w->node[1], &from, garbage, 0, w->now) < 0);
  quilt_node_counters c;
  quilt_node_counters_get(w->node[1], &c);
  assert_int_equal(c.malformed, 3);
  /* Still works. */
  uint8_t p[8] = {0};
  assert_int_equal(quilt_node_publish(w->node[0], p, sizeof p, w->now), 1);
  run_until(w, w->now + 5 * MS);
  assert_int_equal(w->delivered[1], 1);
}

static void test_foreign_group_dropped(void **state) {
  world *w = *state;
  join_both(w);
  quilt_msg m;
  memset(&m, 0, sizeof m);
  m.hdr.type = QUILT_MSG_DATA;
  m.hdr.sender = 42;
  m.hdr.group = quilt_group_id("another group");
  m.u.data.origin = 42;
  m.u.data.seq = 1;
  uint8_t buf[QUILT_WIRE_MAX_DATAGRAM];
  int len = quilt_wire_encode(&m, buf, sizeof buf);
  assert_true(len > 0);
  assert_int_equal(quilt_node_read(w->node[1], &w->addr[0], buf, (size_t)len,
                                   w->now),
                   0);
  quilt_node_counters c;
  quilt_node_counters_get(w->node[1], &c);
  assert_int_equal(c.foreign, 1);
  assert_int_equal(w->delivered[1], 0);
}

/* A DATA message that never reaches host 1 is noticed from the origin's
 * SESSION announcements, NACKed and repaired. */
static void test_lost_tail_repaired(void **state) {
  world *w = *state;
  join_both(w);
  uint8_t p[16] = {0};
  assert_int_equal(quilt_node_publish(w->node[0], p, sizeof p, w->now), 1);
  pump(w);
  assert_int_equal(w->delivered[1], 1);
  assert_int_equal(quilt_node_publish(w->node[0], p, sizeof p, w->now), 2);
  w->nq = 0; /* the network loses seq 2 */
  run_until(w, w->now + 100 * MS);
  assert_int_equal(w->delivered[1], 2);
  assert_int_equal(w->last_seq[1], 2);
  quilt_node_counters c0, c1;
  quilt_node_counters_get(w->node[0], &c0);
  quilt_node_counters_get(w->node[1], &c1);
  assert_true(c1.nacks_sent >= 1);
  assert_true(c0.repairs_sent >= 1);
  assert_int_equal(w->losses[1], 0);
}

/* A gap that nobody can repair becomes a loss event, never silence. */
static void test_unrepairable_gap_reported(void **state) {
  world *w = *state;
  join_both(w);
  uint8_t p[16] = {0};
  assert_int_equal(quilt_node_publish(w->node[0], p, sizeof p, w->now), 1);
  pump(w);
  assert_int_equal(quilt_node_publish(w->node[0], p, sizeof p, w->now), 2);
  w->nq = 0; /* seq 2 lost */
  /* The origin disappears for good: it will never repair. */
  quilt_node_del(w->node[0]);
  quilt_node_config nc;
  quilt_node_config_default(&nc);
  nc.id = 77;
  nc.addr = w->addr[0];
  nc.bootstrap = w->addr[2];
  nc.group = quilt_group_id("unused");
  quilt_node_callbacks cb = {node_send, NULL, NULL, NULL, NULL, NULL, NULL};
  assert_int_equal(quilt_node_new(&w->node[0], &nc, &cb, &ep[0]), 0);
  w->group_ip[0] = 0;
  /* Host 1 learns of seq 2 (as from a SESSION) and cannot get it. */
  quilt_msg m;
  memset(&m, 0, sizeof m);
  m.hdr.type = QUILT_MSG_SESSION;
  m.hdr.sender = 1;
  m.hdr.group = quilt_group_id("test");
  m.u.session.count = 1;
  m.u.session.entries[0].origin = 1;
  m.u.session.entries[0].seq = 3;
  uint8_t buf[QUILT_WIRE_MAX_DATAGRAM];
  int len = quilt_wire_encode(&m, buf, sizeof buf);
  assert_true(len > 0);
  quilt_node_read(w->node[1], &w->addr[0], buf, (size_t)len, w->now);
  run_until(w, w->now + 30000 * MS);
  assert_int_equal(w->losses[1], 2); /* seqs 2 and 3 */
}

/* Two primaries (hosts in two IPMC domains): host 0, behind a filtering
 * NAT, greets host 1, which has a public address and only answers.  A new
 * table of primaries (one more patch) greets the newcomer, not the primary
 * that greeted already: a join wave's tables would otherwise cost a round
 * of greetings each, O(patches^2) per table. */
static void test_new_table_greets_only_new_primaries(void **state) {
  world *w = *state;
  for (int h = 0; h < 2; h++) { /* two domains: two patches */
    quilt_node_del(w->node[h]);
    make_node(w, h, h == 0 ? QUILT_NAT_PORT_RESTRICTED : QUILT_NAT_NONE,
              5 + (uint32_t)h);
  }
  for (int h = 0; h < 2; h++)
    assert_int_equal(quilt_node_start(w->node[h], w->now), 0);
  run_until(w, 1000 * MS);
  quilt_node_status a, b;
  quilt_node_status_get(w->node[0], &a);
  quilt_node_status_get(w->node[1], &b);
  assert_int_equal(a.role, QUILT_ROLE_PRIMARY);
  assert_int_equal(b.role, QUILT_ROLE_PRIMARY);
  assert_int_not_equal(a.patch_id, b.patch_id);
  assert_true(w->sessions0_to_1 >= 1); /* greeted */
  assert_int_equal(w->sessions1_to_0, 1); /* answered once, never greeted */

  quilt_msg m;
  memset(&m, 0, sizeof m);
  m.hdr.type = QUILT_MSG_PEERS;
  m.hdr.sender = 99; /* the server */
  m.hdr.group = quilt_group_id("test");
  m.u.peers.epoch = 1u << 30;
  m.u.peers.total = m.u.peers.count = 3;
  m.u.peers.entries[0].patch_id = a.patch_id;
  m.u.peers.entries[0].node.id = 1;
  m.u.peers.entries[0].node.addr = w->addr[0];
  m.u.peers.entries[1].patch_id = b.patch_id;
  m.u.peers.entries[1].node.id = 2;
  m.u.peers.entries[1].node.addr = w->addr[1];
  m.u.peers.entries[2].patch_id = 4242;
  m.u.peers.entries[2].node.id = 77;
  m.u.peers.entries[2].node.addr = (quilt_addr){0x7f000001, 7777};
  uint8_t buf[QUILT_WIRE_MAX_DATAGRAM];
  int len = quilt_wire_encode(&m, buf, sizeof buf);
  assert_true(len > 0);
  w->sessions0_to_1 = w->sessions0_to_other = 0;
  assert_int_equal(quilt_node_read(w->node[0], &w->addr[2], buf, (size_t)len,
                                   w->now),
                   0);
  assert_int_equal(w->sessions0_to_other, 1); /* the new primary */
  assert_int_equal(w->sessions0_to_1, 0);     /* greeted us already */
  /* The newcomer stays silent: it is greeted again within a second,
   * host 1 is not. */
  run_until(w, w->now + 1100 * MS);
  assert_true(w->sessions0_to_other >= 2);
  assert_int_equal(w->sessions0_to_1, 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_publish_before_join_refused, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_join_and_deliver, setup, teardown),
      cmocka_unit_test_setup_teardown(test_oversized_publish_refused, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_malformed_counted_and_dropped,
                                      setup, teardown),
      cmocka_unit_test_setup_teardown(test_foreign_group_dropped, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_lost_tail_repaired, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_unrepairable_gap_reported, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_new_table_greets_only_new_primaries,
                                      setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
