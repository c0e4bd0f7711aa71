/*
 * mesh_test.c -- the `mesh` patch protocol (lib/mesh.c) with the host core
 * and the bootstrap server, on a small fake network: per-pair latencies, an
 * optional restrictive NAT filter, no bandwidth limit.  Partnerships form
 * (never between two restrictive hosts), a stream's segments flow to every
 * host exactly once and in order, nearly all in time, through one mesh or
 * through two mesh patches bridged by their representatives; bad mesh
 * datagrams are counted and dropped; the profile is checked.
 */
// clang-format off
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
// clang-format on

#include <stdlib.h>
#include <string.h>

#include "bootstrap.h"
#include "mesh.h"
#include "node.h"
#include "proto.h"
#include "quilt.h"
#include "rng.h"
#include "rules.h"
#include "wire.h"

#define MS 1000000ULL
#define S 1000000000ULL
#define MAXN 24         /* hosts; slot MAXN is the bootstrap server */
#define MAXQ (1u << 18) /* datagrams in flight */
#define SEGMENTS 500    /* 10 s of 20 ms segments */
#define SEG_BYTES 1000

typedef struct pkt {
  uint64_t t, seq;
  uint16_t from, to;
  uint32_t len;
  uint8_t data[QUILT_WIRE_MAX_DATAGRAM];
} pkt;

typedef struct net net;

typedef struct host {
  net *w;
  uint16_t idx;
  quilt_node *node;
  uint8_t nat; /* quilt_nat */
  uint32_t region;
  uint64_t delivered, last_seq, losses, order_errors;
  uint64_t in_time; /* segments whose first copy came by ts + 10 s */
  uint8_t seen[SEGMENTS + 1];
} host;

struct net {
  uint32_t n;
  host h[MAXN];
  quilt_bootstrap *boot;
  quilt_rules *rules;
  pkt *heap; /* min-heap on (t, seq) */
  size_t nheap;
  uint64_t seq, now;
  uint8_t sent_to[MAXN + 1][MAXN + 1]; /* [a][b]: a has sent to b */
  uint64_t nat_drops;
  quilt_rng rng;
};

static quilt_addr addr_of(uint32_t i) {
  quilt_addr a = {0x0A000001u + i, 7000};
  return a;
}

static uint32_t index_of(const net *w, const quilt_addr *a) {
  uint32_t i = a->ip - 0x0A000001u;
  return i <= w->n ? i : UINT32_MAX;
}

/* One way latency: 5 ms within a region, 40 ms across, plus a little. */
static uint64_t latency(const net *w, uint32_t a, uint32_t b) {
  if (a == w->n || b == w->n)
    return 2 * MS;
  uint64_t base = w->h[a].region == w->h[b].region ? 5 * MS : 40 * MS;
  return base + ((a * 7 + b * 13) % 5) * MS;
}

static int pkt_less(const pkt *x, const pkt *y) {
  return x->t < y->t || (x->t == y->t && x->seq < y->seq);
}

static void heap_push(net *w, const pkt *p) {
  assert_true(w->nheap < MAXQ);
  size_t i = w->nheap++;
  while (i > 0 && pkt_less(p, &w->heap[(i - 1) / 2])) {
    w->heap[i] = w->heap[(i - 1) / 2];
    i = (i - 1) / 2;
  }
  w->heap[i] = *p;
}

static void heap_pop(net *w, pkt *out) {
  *out = w->heap[0];
  pkt last = w->heap[--w->nheap];
  size_t i = 0;
  for (;;) {
    size_t l = 2 * i + 1, r = l + 1, m = i;
    const pkt *best = &last;
    if (l < w->nheap && pkt_less(&w->heap[l], best))
      m = l, best = &w->heap[l];
    if (r < w->nheap && pkt_less(&w->heap[r], best))
      m = r;
    if (m == i)
      break;
    w->heap[i] = w->heap[m];
    i = m;
  }
  if (w->nheap > 0)
    w->heap[i] = last;
}

static void send_from(net *w, uint32_t from, const quilt_addr *to,
                      const uint8_t *buf, size_t len) {
  uint32_t t = index_of(w, to);
  assert_true(t != UINT32_MAX); /* nobody sends to a multicast group here */
  w->sent_to[from][t] = 1;
  pkt p;
  p.t = w->now + latency(w, from, t);
  p.seq = w->seq++;
  p.from = (uint16_t)from;
  p.to = (uint16_t)t;
  p.len = (uint32_t)len;
  memcpy(p.data, buf, len);
  heap_push(w, &p);
}

static void cb_send(void *user, const quilt_addr *to, const uint8_t *buf,
                    size_t len) {
  host *h = user;
  send_from(h->w, h->idx, to, buf, len);
}

static void boot_send(void *user, const quilt_addr *to, const uint8_t *buf,
                      size_t len) {
  net *w = user;
  send_from(w, w->n, to, buf, len);
}

static void cb_deliver(void *user, const quilt_msg_data *d, uint64_t now) {
  host *h = user;
  (void)now;
  if (d->seq <= h->last_seq)
    h->order_errors++;
  h->last_seq = d->seq;
  h->delivered++;
}

static void cb_loss(void *user, uint64_t origin, uint64_t first, uint64_t count,
                    uint64_t now) {
  host *h = user;
  (void)origin;
  (void)first;
  (void)now;
  h->losses += count;
}

/* The first copy of each segment, as the wire delivers it. */
static void note_arrival(net *w, host *h, const pkt *p) {
  if (p->len < QUILT_WIRE_DATA_OVERHEAD || p->data[3] != QUILT_MSG_DATA)
    return;
  quilt_msg m;
  if (quilt_wire_decode(&m, p->data, p->len) != 0)
    return;
  uint64_t seq = m.u.data.seq;
  if (seq == 0 || seq > SEGMENTS || h->seen[seq])
    return;
  h->seen[seq] = 1;
  if (w->now <= m.u.data.ts_ns + 10 * S)
    h->in_time++;
}

static int restrictive(uint8_t nat) {
  return nat == QUILT_NAT_SYMMETRIC || nat == QUILT_NAT_UNKNOWN;
}

static void deliver(net *w, const pkt *p) {
  if (p->to == w->n) {
    quilt_addr from = addr_of(p->from);
    quilt_bootstrap_read(w->boot, &from, p->data, p->len, w->now);
    return;
  }
  host *h = &w->h[p->to];
  if (restrictive(h->nat) && !w->sent_to[p->to][p->from]) {
    w->nat_drops++; /* its NAT opens only for where it sent */
    return;
  }
  note_arrival(w, h, p);
  quilt_addr from = addr_of(p->from);
  quilt_node_read(h->node, &from, p->data, p->len, w->now);
}

/* Runs every packet and timer due up to t. */
static void run_until(net *w, uint64_t t) {
  for (;;) {
    uint64_t next = quilt_bootstrap_expiry(w->boot);
    int who = -1; /* -1 server timer, -2 packet, else host */
    for (uint32_t i = 0; i < w->n; i++) {
      uint64_t e = quilt_node_expiry(w->h[i].node);
      if (e < next) {
        next = e;
        who = (int)i;
      }
    }
    if (w->nheap > 0 && w->heap[0].t <= next) {
      next = w->heap[0].t;
      who = -2;
    }
    if (next > t)
      break;
    if (next > w->now)
      w->now = next;
    if (who == -2) {
      pkt p;
      heap_pop(w, &p);
      deliver(w, &p);
    } else if (who == -1) {
      quilt_bootstrap_handle_expiry(w->boot, w->now);
    } else {
      quilt_node_handle_expiry(w->h[who].node, w->now);
    }
  }
  w->now = t;
}

static net *net_new(uint32_t n, const char *rules, const uint8_t *nat,
                    uint32_t regions, uint32_t partners) {
  net *w = calloc(1, sizeof *w);
  assert_non_null(w);
  w->heap = malloc(MAXQ * sizeof *w->heap);
  assert_non_null(w->heap);
  w->n = n;
  quilt_rng_init(&w->rng, 7, 1);
  size_t np;
  const char *const *names = quilt_proto_names(&np);
  char err[256];
  assert_int_equal(quilt_rules_parse(&w->rules, "test", rules, strlen(rules),
                                     names, np, err, sizeof err),
                   0);
  quilt_bootstrap_config bc;
  quilt_bootstrap_config_default(&bc);
  bc.id = 1ull << 62;
  bc.rules = w->rules;
  bc.rep_heartbeat_ms = 500;
  bc.rep_miss_limit = 4;
  quilt_bootstrap_callbacks bcb = {boot_send};
  assert_int_equal(quilt_bootstrap_new(&w->boot, &bc, &bcb, w), 0);
  for (uint32_t i = 0; i < n; i++) {
    host *h = &w->h[i];
    h->w = w;
    h->idx = (uint16_t)i;
    h->nat = nat ? nat[i] : QUILT_NAT_NONE;
    h->region = regions ? i % regions + 1 : 1;
    quilt_node_config nc;
    quilt_node_config_default(&nc);
    nc.id = i + 1;
    nc.addr = addr_of(i);
    nc.bootstrap = addr_of(n);
    nc.group = quilt_group_id("mesh");
    nc.seed = 100 + i;
    nc.euid.nat = h->nat;
    nc.euid.region = h->region;
    nc.euid.domain = i + 1;
    nc.euid.bw_kbps = 10000;
    nc.euid.rtt_us = 4000;
    nc.nack_retry_ns = 500 * MS;
    nc.nack_retry_max_ns = 4 * S;
    nc.delivery.repair_timeout_ns = 10 * S;
    quilt_node_callbacks cb = {cb_send, NULL, NULL, cb_deliver,
                               cb_loss, NULL, NULL};
    assert_int_equal(quilt_node_new(&h->node, &nc, &cb, h), 0);
    quilt_mesh_config mc;
    quilt_mesh_config_default(&mc);
    mc.partners = partners;
    mc.partners_max = 2 * partners;
    assert_int_equal(quilt_mesh_configure(h->node, &mc), 0);
  }
  /* Joins over the first second. */
  for (uint32_t i = 0; i < n; i++) {
    run_until(w, w->now + S / n);
    assert_int_equal(quilt_node_start(w->h[i].node, w->now), 0);
  }
  run_until(w, 5 * S);
  return w;
}

static void net_del(net *w) {
  for (uint32_t i = 0; i < w->n; i++)
    quilt_node_del(w->h[i].node);
  quilt_bootstrap_del(w->boot);
  quilt_rules_del(w->rules);
  free(w->heap);
  free(w);
}

/* Host `pub` streams SEGMENTS segments of 20 ms, then the network drains
 * for a playback delay. */
static void stream(net *w, uint32_t pub) {
  uint8_t payload[SEG_BYTES];
  for (uint32_t s = 1; s <= SEGMENTS; s++) {
    memset(payload, (int)s, sizeof payload);
    int64_t seq =
        quilt_node_publish(w->h[pub].node, payload, sizeof payload, w->now);
    assert_int_equal(seq, s);
    run_until(w, w->now + 20 * MS);
  }
  run_until(w, w->now + 11 * S);
}

static void check_stream(net *w, uint32_t pub, double min_ci) {
  uint64_t in_time = 0, owed = 0;
  for (uint32_t i = 0; i < w->n; i++) {
    host *h = &w->h[i];
    assert_int_equal(h->order_errors, 0);
    if (i == pub)
      continue;
    owed += SEGMENTS;
    in_time += h->in_time;
    /* Exactly once, in order: every segment delivered or reported lost. */
    assert_int_equal(h->delivered + h->losses, SEGMENTS);
    assert_true(h->delivered >= SEGMENTS * 95 / 100);
  }
  double ci = (double)in_time / (double)owed;
  print_message("continuity %.4f\n", ci);
  assert_true(ci >= min_ci);
}

/* Twelve hosts in one mesh: M partners each soon after joining, segments
 * supplied from retention, every host gets the stream in time. */
static void test_one_mesh(void **state) {
  (void)state;
  net *w = net_new(12, "* -> mesh\n", NULL, 0, 4);
  for (uint32_t i = 0; i < w->n; i++) {
    quilt_mesh_stats st;
    assert_int_equal(quilt_mesh_stats_get(w->h[i].node, &st), 1);
    assert_true(st.partners >= 2);
    assert_true(st.partners <= 8);
  }
  stream(w, 3);
  check_stream(w, 3, 0.99);
  uint64_t supplied = 0, sessions = 0, pushed = 0;
  for (uint32_t i = 0; i < w->n; i++) {
    quilt_mesh_stats st;
    assert_int_equal(quilt_mesh_stats_get(w->h[i].node, &st), 1);
    assert_int_equal(st.origin, 4); /* host 3's node id */
    assert_int_equal(st.other_streams, 0);
    assert_int_equal(st.supply_missing, 0);
    supplied += st.supplied;
    sessions += st.sessions_dropped;
    pushed += st.pushed;
  }
  /* The publisher pushed every segment to the patch's primary (when it is
   * not the primary itself), and nothing else was pushed; the others got
   * every segment by pulls. */
  quilt_node_status ps;
  quilt_node_status_get(w->h[3].node, &ps);
  uint64_t want_pushed = ps.role == QUILT_ROLE_PRIMARY ? 0 : SEGMENTS;
  assert_int_equal(pushed, want_pushed);
  assert_true(supplied >= (11 - (want_pushed ? 1 : 0)) * SEGMENTS * 95 / 100);
  assert_true(sessions > 0); /* the node's SESSIONs are not sent to a mesh */
  net_del(w);
}

/* A third of the hosts behind restrictive NATs: two of them are never
 * partners, a filter drops what they did not ask for, and they still get
 * the stream through public partners they opened themselves. */
static void test_nat(void **state) {
  (void)state;
  uint8_t nat[12];
  for (int i = 0; i < 12; i++)
    nat[i] = i % 3 == 1   ? QUILT_NAT_SYMMETRIC
             : i % 3 == 2 ? QUILT_NAT_PORT_RESTRICTED
                          : QUILT_NAT_NONE;
  net *w = net_new(12, "* -> mesh\n", nat, 0, 4);
  for (int round = 0; round < 2; round++) {
    for (uint32_t i = 0; i < w->n; i++) {
      quilt_donet_partner_info p[QUILT_DONET_MAX_PARTNERS];
      size_t np =
          quilt_mesh_partners(w->h[i].node, p, QUILT_DONET_MAX_PARTNERS);
      /* Before the stream, everyone has partners (after it, a node with no
       * new segment drops them now and then: donet.c, starve_check). */
      if (round == 0)
        assert_true(np >= 1);
      for (size_t k = 0; k < np && restrictive(nat[i]); k++)
        assert_int_not_equal(p[k].nat, QUILT_DONET_NAT_RESTRICTIVE);
    }
    if (round == 0)
      stream(w, 0);
  }
  assert_true(w->nat_drops > 0); /* the filter was in the way of someone */
  check_stream(w, 0, 0.99);
  net_del(w);
}

/* Two regions, mesh patches of at most 6: the representatives bridge the
 * stream over the overlay and make it available in their patches; every
 * host of every patch gets it. */
static void test_patches_bridged(void **state) {
  (void)state;
  net *w = net_new(16, "* -> mesh by region max 6\n", NULL, 2, 3);
  uint32_t patches[MAXN], np = 0;
  for (uint32_t i = 0; i < w->n; i++) {
    quilt_node_status st;
    quilt_node_status_get(w->h[i].node, &st);
    assert_true(st.joined);
    assert_int_equal(st.protocol, QUILT_PROTO_MESH);
    int known = 0;
    for (uint32_t k = 0; k < np; k++)
      known |= patches[k] == st.patch_id;
    if (!known)
      patches[np++] = st.patch_id;
  }
  assert_true(np >= 4); /* 8 hosts a region, 6 a patch */
  stream(w, 5);
  check_stream(w, 5, 0.99);
  uint64_t injected = 0;
  for (uint32_t i = 0; i < w->n; i++) {
    quilt_node_counters c;
    quilt_node_counters_get(w->h[i].node, &c);
    injected += c.injected;
  }
  assert_true(injected > 0); /* the overlay carried it between patches */
  net_del(w);
}

/* Mesh datagrams go through the one decoder: a bad one is counted as
 * malformed by the node and changes nothing; a good one from a stranger is
 * handled by the core (counted, ignored). */
static void test_bad_datagrams(void **state) {
  (void)state;
  net *w = net_new(4, "* -> mesh\n", NULL, 0, 2);
  quilt_node *n = w->h[0].node;
  quilt_node_counters before, after;
  quilt_node_counters_get(n, &before);
  quilt_mesh_stats s0, s1;
  assert_int_equal(quilt_mesh_stats_get(n, &s0), 1);
  quilt_msg m;
  memset(&m, 0, sizeof m);
  m.hdr.version = QUILT_WIRE_VERSION;
  m.hdr.type = QUILT_DONET_MSG_BUFFER_MAP;
  m.hdr.sender = 99;
  m.hdr.group = quilt_group_id("mesh");
  m.u.donet.type = QUILT_DONET_MSG_BUFFER_MAP;
  m.u.donet.u.bm.first = 1;
  m.u.donet.u.bm.nbits = 8;
  m.u.donet.u.bm.bits[0] = 0xFF;
  uint8_t buf[QUILT_WIRE_MAX_DATAGRAM];
  int len = quilt_wire_encode(&m, buf, sizeof buf);
  assert_true(len > 0);
  quilt_addr stranger = {0x0B000001u, 9};
  /* Valid, but not from a partner: ignored by the core. */
  assert_int_equal(quilt_node_read(n, &stranger, buf, (size_t)len, w->now), 0);
  /* Cut, or with a padding bit set: refused by the decoder. */
  assert_true(quilt_node_read(n, &stranger, buf, (size_t)len - 1, w->now) < 0);
  m.u.donet.u.bm.nbits = 7;
  m.u.donet.u.bm.bits[0] = 0xFE;
  len = quilt_wire_encode(&m, buf, sizeof buf);
  assert_true(len > 0);
  buf[len - 1] |= 1;
  assert_true(quilt_node_read(n, &stranger, buf, (size_t)len, w->now) < 0);
  quilt_node_counters_get(n, &after);
  assert_int_equal(after.malformed, before.malformed + 2);
  assert_int_equal(quilt_mesh_stats_get(n, &s1), 1);
  assert_int_equal(s1.donet.ignored_msgs, s0.donet.ignored_msgs + 1);
  assert_int_equal(s1.partners, s0.partners);
  net_del(w);
}

static void test_config(void **state) {
  (void)state;
  quilt_mesh_config c;
  quilt_mesh_config_default(&c);
  assert_int_equal(c.segment_period_ns, 20 * MS);
  assert_int_equal(c.window_ns, 10 * S);
  assert_int_equal(c.partners, 3); /* a patch's M (mesh.h) */
  quilt_node_config nc;
  quilt_node_config_default(&nc);
  nc.id = 1;
  quilt_node_callbacks cb = {cb_send, NULL, NULL, cb_deliver,
                             cb_loss, NULL, NULL};
  quilt_node *n;
  assert_int_equal(quilt_node_new(&n, &nc, &cb, NULL), 0);
  assert_int_equal(quilt_mesh_configure(n, &c), 0);
  quilt_mesh_config bad = c;
  bad.window_ns = (QUILT_DONET_MAX_WINDOW + 1) * c.segment_period_ns;
  assert_int_equal(quilt_mesh_configure(n, &bad), QUILT_ERR_INVAL);
  bad = c;
  bad.partners = bad.partners_max + 1;
  assert_int_equal(quilt_mesh_configure(n, &bad), QUILT_ERR_INVAL);
  bad = c;
  bad.segment_bytes = QUILT_WIRE_MAX_PAYLOAD + 1;
  assert_int_equal(quilt_mesh_configure(n, &bad), QUILT_ERR_INVAL);
  bad = c;
  bad.segment_period_ns = 0;
  assert_int_equal(quilt_mesh_configure(n, &bad), QUILT_ERR_INVAL);
  /* Not in a mesh patch: no stats. */
  quilt_mesh_stats st;
  assert_int_equal(quilt_mesh_stats_get(n, &st), 0);
  assert_int_equal(st.partners, 0);
  assert_int_equal(quilt_proto_find("mesh"), QUILT_PROTO_MESH);
  assert_ptr_equal(quilt_proto_get(QUILT_PROTO_MESH), &quilt_proto_mesh);
  quilt_node_del(n);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_config),
      cmocka_unit_test(test_bad_datagrams),
      cmocka_unit_test(test_one_mesh),
      cmocka_unit_test(test_nat),
      cmocka_unit_test(test_patches_bridged),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
