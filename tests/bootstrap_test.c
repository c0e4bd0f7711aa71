/*
 * bootstrap_test.c -- the bootstrap server core (lib/bootstrap.h), driven
 * by encoded JOIN / HEARTBEAT / LEAVE datagrams.
 *
 * A small harness plays the hosts: each remembers the last PATCH_INFO the
 * server sent it (patch, role, epoch, heartbeat interval) and, while alive,
 * heartbeats at that interval with that patch and role, as a real host
 * does.  Time moves from event to event: the hosts' heartbeats and the
 * server's own expiry (quilt_bootstrap_expiry / _handle_expiry).  Every
 * datagram the server sends is decoded and recorded, and
 * quilt_bootstrap_check() runs after every step.
 *
 * For the landmark and tree tests each host also has a place in a plane
 * (x, y in us): the RTT between two hosts is 200 us plus twice their
 * Manhattan distance (a metric), and a host answers the latest LANDMARKS
 * with those RTTs in its next heartbeat, sent at once as a real host does
 * when its vector is complete.  Each host keeps the latest TREE view of
 * its patch's tree and of each overlay tree (one per root patch), so that
 * the trees can be checked from what the hosts were told.
 *
 * For the region tests hosts leave their EUID region 0 and the server
 * derives it from their landmark RTTs; run_until notes when the server
 * moved hosts, so that the rate of moves can be checked.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bootstrap.h"
#include "euid.h"
#include "landmark.h"
#include "proto.h"
#include "quilt.h"
#include "rng.h"
#include "rules.h"
#include "wire.h"

#define MS 1000000ULL
#define T0 (1000 * MS)
#define MAX_HOSTS 256
#define SERVER_ID 0xB0075u
#define MAX_WAO 128 /* overlay trees a test host keeps views of */

/* ---- hosts ---- */

typedef struct bhost {
  uint64_t id;
  quilt_addr addr;
  quilt_euid euid;
  uint32_t group;
  int joined; /* sent a JOIN (or is known to a previous server) */
  int alive;  /* heartbeats */
  /* From the latest PATCH_INFO received. */
  uint32_t patch;
  uint8_t role;
  uint8_t protocol;
  uint32_t epoch;
  uint16_t hb_ms;
  quilt_addr mcast;
  uint8_t nreps;
  uint64_t reps[QUILT_WIRE_MAX_REPS];
  unsigned npi;    /* PATCH_INFOs received */
  unsigned npeers; /* PEERS datagrams received */
  quilt_msg last_peers;
  uint64_t next_hb_ns, last_hb_ns;
  /* Positions and trees. */
  int32_t x, y;
  quilt_msg_landmarks lm; /* latest LANDMARKS */
  unsigned nlm;
  quilt_msg_tree view[2]; /* latest TREE of its patch's tree: [1] */
  unsigned ntree[2];
  quilt_msg_tree wao[MAX_WAO]; /* latest TREE of each overlay tree */
  unsigned nwao;
  unsigned lose_trees; /* TREE datagrams to drop (lost on the way) */
} bhost;

typedef struct sent {
  quilt_addr to;
  quilt_msg m;
} sent;

typedef struct fx {
  quilt_rules *rules;
  quilt_bootstrap_config cfg;
  quilt_bootstrap *b;
  uint64_t now;
  bhost h[MAX_HOSTS];
  size_t nh;
  sent *log;
  size_t nlog, caplog;
  unsigned undecodable, to_nobody, epoch_went_back;
  uint32_t group;
  int rtts; /* hosts measure and report landmark RTTs */
  int silent_sources; /* primaries do not say their patch publishes (by
                         default they do, QUILT_HB_SOURCE, so that every
                         patch roots an overlay tree) */
  /* Region moves, as run_until saw them (one entry per move). */
  uint64_t moves_seen;
  unsigned most_moves_per_event;
  uint64_t move_at[1024];
  size_t nmove_at;
} fx;

static bhost *host_by_addr(fx *f, const quilt_addr *a) {
  for (size_t i = 0; i < f->nh; i++)
    if (quilt_addr_eq(&f->h[i].addr, a))
      return &f->h[i];
  return NULL;
}

static void on_send(void *user, const quilt_addr *to, const uint8_t *buf,
                    size_t len) {
  fx *f = user;
  quilt_msg m;
  if (quilt_wire_decode(&m, buf, len) != 0) {
    f->undecodable++;
    return;
  }
  if (f->nlog == f->caplog) {
    f->caplog = f->caplog ? f->caplog * 2 : 256;
    f->log = realloc(f->log, f->caplog * sizeof *f->log);
    if (!f->log)
      abort();
  }
  f->log[f->nlog].to = *to;
  f->log[f->nlog].m = m;
  f->nlog++;
  bhost *h = host_by_addr(f, to);
  if (!h) {
    f->to_nobody++;
    return;
  }
  if (m.hdr.type == QUILT_MSG_PATCH_INFO) {
    const quilt_msg_patch_info *pi = &m.u.patch_info;
    if (pi->patch_id == h->patch && pi->epoch < h->epoch)
      f->epoch_went_back++;
    h->patch = pi->patch_id;
    h->role = pi->role;
    h->protocol = pi->protocol;
    h->epoch = pi->epoch;
    h->hb_ms = pi->heartbeat_ms;
    h->mcast = pi->mcast;
    h->nreps = pi->nreps;
    for (unsigned i = 0; i < pi->nreps; i++)
      h->reps[i] = pi->reps[i].id;
    h->npi++;
    uint64_t due = f->now + (uint64_t)pi->heartbeat_ms * MS;
    if (h->next_hb_ns == 0 || due < h->next_hb_ns)
      h->next_hb_ns = due;
  } else if (m.hdr.type == QUILT_MSG_PEERS) {
    h->npeers++;
    h->last_peers = m;
  } else if (m.hdr.type == QUILT_MSG_LANDMARKS) {
    if (h->nlm > 0 && m.u.landmarks.epoch < h->lm.epoch)
      f->epoch_went_back++;
    if (h->nlm == 0 || m.u.landmarks.epoch > h->lm.epoch) {
      h->lm = m.u.landmarks;
      if (f->rtts && h->alive) /* measured at once; reported at once */
        h->next_hb_ns = f->now + 1 * MS;
    }
    h->nlm++;
  } else if (m.hdr.type == QUILT_MSG_TREE) {
    if (h->lose_trees > 0) {
      h->lose_trees--;
      return;
    }
    if (QUILT_WIRE_TREE_IS_WAO(m.u.tree.tree)) {
      unsigned i = 0;
      while (i < h->nwao && h->wao[i].tree != m.u.tree.tree)
        i++;
      if (i < h->nwao && m.u.tree.epoch < h->wao[i].epoch)
        f->epoch_went_back++;
      if (i == h->nwao) {
        if (h->nwao == MAX_WAO)
          abort();
        h->nwao++;
      }
      h->wao[i] = m.u.tree;
      return;
    }
    if (h->ntree[1] > 0 && m.u.tree.epoch < h->view[1].epoch &&
        m.u.tree.tree == h->view[1].tree)
      f->epoch_went_back++;
    h->view[1] = m.u.tree;
    h->ntree[1]++;
  }
}

/* h's latest view of tree `tree`, or NULL. */
static const quilt_msg_tree *view_in(const bhost *h, uint32_t tree) {
  if (QUILT_WIRE_TREE_IS_WAO(tree)) {
    for (unsigned i = 0; i < h->nwao; i++)
      if (h->wao[i].tree == tree)
        return &h->wao[i];
    return NULL;
  }
  return h->ntree[1] && h->view[1].tree == tree ? &h->view[1] : NULL;
}

static bhost *host_by_id(fx *f, uint64_t id) {
  for (size_t i = 0; i < f->nh; i++)
    if (f->h[i].id == id)
      return &f->h[i];
  return NULL;
}

/* The plane's RTT model (see the top of the file). */
static uint32_t rtt_of(const bhost *a, const bhost *b) {
  if (a == b)
    return 0;
  uint32_t dx = (uint32_t)(a->x > b->x ? a->x - b->x : b->x - a->x);
  uint32_t dy = (uint32_t)(a->y > b->y ? a->y - b->y : b->y - a->y);
  return 200 + 2 * (dx + dy);
}

static void check(fx *f) {
  char err[256] = "";
  int rc = quilt_bootstrap_check(f->b, err, sizeof err);
  if (rc != 0)
    fail_msg("bootstrap check at %llu ns: %d %s", (unsigned long long)f->now,
             rc, err);
  assert_int_equal(f->undecodable, 0);
  assert_int_equal(f->to_nobody, 0);
  assert_int_equal(f->epoch_went_back, 0);
}

static quilt_euid mk_euid(unsigned nat, unsigned ipmc, uint32_t domain,
                          uint32_t region, uint32_t rtt_us, uint32_t bw_kbps) {
  quilt_euid e = {(uint8_t)nat, (uint8_t)ipmc, domain, region, rtt_us, bw_kbps};
  return e;
}

/* A LAN host: open, multicast in `domain`. */
static quilt_euid lan(uint32_t domain) {
  return mk_euid(QUILT_NAT_NONE, 1, domain, 1, 500, 100000);
}

/* A host without multicast in `region`. */
static quilt_euid wan(uint32_t region) {
  return mk_euid(QUILT_NAT_PORT_RESTRICTED, 0, 0, region, 30000, 20000);
}

static bhost *add_host(fx *f, uint64_t id, quilt_euid e) {
  assert_true(f->nh < MAX_HOSTS);
  bhost *h = &f->h[f->nh++];
  memset(h, 0, sizeof *h);
  h->id = id;
  h->addr.ip = (10u << 24) | (uint32_t)id;
  h->addr.port = (uint16_t)(5000 + id % 1000);
  h->euid = e;
  h->group = f->group;
  return h;
}

static int send_dg(fx *f, const quilt_msg *m) {
  uint8_t buf[QUILT_WIRE_MAX_DATAGRAM];
  int len = quilt_wire_encode(m, buf, sizeof buf);
  assert_true(len > 0);
  /* The datagram comes from the sending host's address (unknown senders:
   * a driver that cannot tell, 0.0.0.0:0). */
  quilt_addr from = {0, 0};
  for (size_t i = 0; i < f->nh; i++)
    if (f->h[i].id == m->hdr.sender)
      from = f->h[i].addr;
  int rc = quilt_bootstrap_read(f->b, &from, buf, (size_t)len, f->now);
  check(f);
  return rc;
}

static void hdr(quilt_msg *m, const bhost *h, unsigned type) {
  memset(m, 0, sizeof *m);
  m->hdr.version = QUILT_WIRE_VERSION;
  m->hdr.type = (uint8_t)type;
  m->hdr.sender = h->id;
  m->hdr.group = h->group;
}

static int join(fx *f, bhost *h) {
  quilt_msg m;
  hdr(&m, h, QUILT_MSG_JOIN);
  m.u.join.addr = h->addr;
  m.u.join.euid = h->euid;
  int rc = send_dg(f, &m);
  if (rc == 0) {
    h->joined = 1;
    h->alive = 1;
  }
  return rc;
}

static void join_ok(fx *f, bhost *h) {
  unsigned before = h->npi;
  int rc = join(f, h);
  if (rc != 0)
    fail_msg("JOIN of host %llu refused: %d", (unsigned long long)h->id, rc);
  assert_int_equal(h->npi, before + 1); /* answered at once */
}

static int heartbeat(fx *f, bhost *h) {
  quilt_msg m;
  hdr(&m, h, QUILT_MSG_HEARTBEAT);
  m.u.heartbeat.addr = h->addr;
  m.u.heartbeat.euid = h->euid;
  m.u.heartbeat.patch_id = h->patch;
  m.u.heartbeat.role = h->role;
  if (h->role == QUILT_ROLE_PRIMARY && !f->silent_sources)
    m.u.heartbeat.flags = QUILT_HB_SOURCE;
  m.u.heartbeat.epoch = h->epoch;
  m.u.heartbeat.lm_epoch = h->lm.epoch;
  m.u.heartbeat.nrtt = h->lm.count;
  for (unsigned i = 0; i < h->lm.count; i++) {
    const bhost *l = host_by_id(f, h->lm.nodes[i].id);
    m.u.heartbeat.rtt_us[i] =
        f->rtts && l ? rtt_of(h, l) : QUILT_WIRE_RTT_UNKNOWN;
  }
  h->last_hb_ns = f->now;
  return send_dg(f, &m);
}

static int leave(fx *f, bhost *h) {
  quilt_msg m;
  hdr(&m, h, QUILT_MSG_LEAVE);
  h->alive = 0;
  return send_dg(f, &m);
}

/* Moves time to t_end: live hosts heartbeat when due (before the server's
 * timer at the same instant), the server handles its expiry when due. */
static void run_until(fx *f, uint64_t t_end) {
  for (;;) {
    uint64_t t = quilt_bootstrap_expiry(f->b);
    for (size_t i = 0; i < f->nh; i++)
      if (f->h[i].alive && f->h[i].next_hb_ns && f->h[i].next_hb_ns < t)
        t = f->h[i].next_hb_ns;
    if (t > t_end)
      break;
    if (t > f->now)
      f->now = t;
    for (size_t i = 0; i < f->nh; i++) {
      bhost *h = &f->h[i];
      if (h->alive && h->next_hb_ns && h->next_hb_ns <= f->now) {
        h->next_hb_ns = f->now + (uint64_t)(h->hb_ms ? h->hb_ms : 1000) * MS;
        assert_int_equal(heartbeat(f, h), 0);
      }
    }
    if (quilt_bootstrap_expiry(f->b) <= f->now) {
      quilt_bootstrap_handle_expiry(f->b, f->now);
      check(f);
      quilt_bootstrap_counters c;
      quilt_bootstrap_counters_get(f->b, &c);
      if (c.region_moves < f->moves_seen) /* a new server */
        f->moves_seen = 0;
      uint64_t d = c.region_moves - f->moves_seen;
      if (d > f->most_moves_per_event)
        f->most_moves_per_event = (unsigned)d;
      for (; f->moves_seen < c.region_moves; f->moves_seen++)
        if (f->nmove_at < sizeof f->move_at / sizeof f->move_at[0])
          f->move_at[f->nmove_at++] = f->now;
      /* The timer moved on: no busy loop at one instant. */
      assert_true(quilt_bootstrap_expiry(f->b) > f->now);
    }
  }
  f->now = t_end;
}

static quilt_bootstrap_counters counters(const fx *f) {
  quilt_bootstrap_counters c;
  quilt_bootstrap_counters_get(f->b, &c);
  return c;
}

/* The patch with this id, from the server's table. */
static quilt_bootstrap_patch patch_by_id(const fx *f, uint32_t id) {
  quilt_bootstrap_patch p;
  size_t n = quilt_bootstrap_patch_count(f->b);
  for (size_t i = 0; i < n; i++) {
    quilt_bootstrap_patch_get(f->b, i, &p);
    if (p.patch_id == id)
      return p;
  }
  fail_msg("no patch %u", id);
  memset(&p, 0, sizeof p);
  return p;
}

static int proto_id(const char *name) {
  size_t n = 0;
  const char *const *names = quilt_proto_names(&n);
  for (size_t i = 0; i < n; i++)
    if (strcmp(names[i], name) == 0)
      return (int)i;
  fail_msg("no protocol %s", name);
  return -1;
}

static fx *fx_new_rules(const char *rules_text, uint32_t max_hosts) {
  fx *f = calloc(1, sizeof *f);
  assert_non_null(f);
  size_t n = 0;
  const char *const *names = quilt_proto_names(&n);
  char err[QUILT_RULES_ERR_LEN];
  int rc = quilt_rules_parse(&f->rules, "test.rules", rules_text,
                             strlen(rules_text), names, n, err, sizeof err);
  if (rc != 0)
    fail_msg("rules: %s", err);
  quilt_bootstrap_config_default(&f->cfg);
  f->cfg.id = SERVER_ID;
  f->cfg.rules = f->rules;
  if (max_hosts)
    f->cfg.max_hosts = max_hosts;
  quilt_bootstrap_callbacks cb = {on_send};
  assert_int_equal(quilt_bootstrap_new(&f->b, &f->cfg, &cb, f), 0);
  f->now = T0;
  f->group = quilt_group_id("bootstrap-test");
  return f;
}

static void fx_del(fx *f) {
  quilt_bootstrap_del(f->b);
  quilt_rules_del(f->rules);
  free(f->log);
  free(f);
}

static int setup(void **state) {
  *state = fx_new_rules(quilt_rules_default_text(), 0);
  return 0;
}

static int teardown(void **state) {
  fx_del(*state);
  return 0;
}

/* PATCH_INFOs sent to h from log position `from` on. */
static size_t patch_infos_since(const fx *f, size_t from, const bhost *h) {
  size_t n = 0;
  for (size_t i = from; i < f->nlog; i++)
    if (f->log[i].m.hdr.type == QUILT_MSG_PATCH_INFO &&
        quilt_addr_eq(&f->log[i].to, &h->addr))
      n++;
  return n;
}

/* ---- config ---- */

static void test_config(void **state) {
  fx *f = *state;
  quilt_bootstrap_config c;
  quilt_bootstrap_config_default(&c);
  assert_int_equal(c.reps_per_patch, 2);
  assert_int_equal(c.heartbeat_ms, 1000);
  assert_int_equal(c.miss_limit, 3);
  assert_int_equal(c.rep_miss_limit, 5);
  assert_true(c.rep_heartbeat_ms > 0 && c.rep_heartbeat_ms < c.heartbeat_ms);
  assert_int_equal(c.mcast_base, (239u << 24) | (192u << 16));
  assert_int_equal(c.mcast_port, 7400);
  assert_int_equal(c.max_hosts, 1000000);
  assert_int_equal(c.max_patches, 65535);
  assert_int_equal(c.peers_refresh_ns, 2000 * MS);

  quilt_bootstrap_callbacks cb = {on_send};
  quilt_bootstrap *b = NULL;
  c.rules = f->rules;
  c.reps_per_patch = 0;
  assert_int_equal(quilt_bootstrap_new(&b, &c, &cb, f), QUILT_ERR_INVAL);
  c.reps_per_patch = QUILT_BOOTSTRAP_MAX_REPS + 1;
  assert_int_equal(quilt_bootstrap_new(&b, &c, &cb, f), QUILT_ERR_INVAL);
  c.reps_per_patch = 2;
  c.rules = NULL;
  assert_int_equal(quilt_bootstrap_new(&b, &c, &cb, f), QUILT_ERR_INVAL);
  c.rules = f->rules;
  c.max_patches = 0;
  assert_int_equal(quilt_bootstrap_new(&b, &c, &cb, f), QUILT_ERR_INVAL);
  c.max_patches = QUILT_BOOTSTRAP_MAX_PATCH_ID + 1;
  assert_int_equal(quilt_bootstrap_new(&b, &c, &cb, f), QUILT_ERR_INVAL);
  c.max_patches = 65535;
  quilt_bootstrap_callbacks nocb = {NULL};
  assert_int_equal(quilt_bootstrap_new(&b, &c, &nocb, f), QUILT_ERR_INVAL);
  assert_null(b);
  assert_int_equal(quilt_bootstrap_new(&b, &c, &cb, f), 0);
  quilt_bootstrap_del(b);
}

/* ---- joining ---- */

static void test_join_patch_info(void **state) {
  fx *f = *state;
  bhost *a = add_host(f, 100, lan(0x1a));
  size_t mark = f->nlog;
  join_ok(f, a);
  /* The answer: PATCH_INFO first, then the landmarks (a is the first). */
  const sent *s = &f->log[mark];
  assert_int_equal(s->m.hdr.type, QUILT_MSG_PATCH_INFO);
  assert_int_equal(f->log[mark + 1].m.hdr.type, QUILT_MSG_LANDMARKS);
  assert_true(quilt_addr_eq(&f->log[mark + 1].to, &a->addr));
  assert_int_equal(a->lm.count, 1);
  assert_int_equal(a->lm.nodes[0].id, a->id);
  assert_true(quilt_addr_eq(&s->to, &a->addr));
  assert_int_equal(s->m.hdr.sender, SERVER_ID);
  assert_int_equal(s->m.hdr.group, f->group);
  assert_int_equal(a->protocol, proto_id("ipmc"));
  assert_true(a->patch != 0);
  assert_int_equal(a->mcast.ip, f->cfg.mcast_base + a->patch);
  assert_int_equal(a->mcast.ip >> 16, (239u << 8) | 192u); /* 239.192/16 */
  assert_int_equal(a->mcast.port, f->cfg.mcast_port);
  assert_int_equal(a->role, QUILT_ROLE_PRIMARY); /* alone: primary */
  assert_int_equal(a->hb_ms, f->cfg.rep_heartbeat_ms);
  assert_int_equal(a->nreps, 1);
  assert_int_equal(a->reps[0], a->id);
  assert_int_equal(s->m.u.patch_info.reps[0].addr.ip, a->addr.ip);
  assert_int_equal(s->m.u.patch_info.reps[0].addr.port, a->addr.port);

  bhost *w = add_host(f, 101, wan(3));
  join_ok(f, w);
  assert_int_equal(w->protocol, proto_id("unicast"));
  assert_true(w->patch != 0 && w->patch != a->patch);
  assert_int_equal(w->mcast.ip, 0); /* no group for a unicast patch */
  assert_int_equal(w->mcast.port, 0);
  assert_int_equal(w->role, QUILT_ROLE_PRIMARY);

  quilt_bootstrap_counters c = counters(f);
  assert_int_equal(c.joins, 2);
  assert_int_equal(c.hosts, 2);
  assert_int_equal(c.patches, 2);
  assert_int_equal(c.refused, 0);
  assert_int_equal(quilt_bootstrap_patch_count(f->b), 2);
  quilt_bootstrap_patch p;
  quilt_bootstrap_patch_get(f->b, 0, &p); /* creation order */
  assert_int_equal(p.patch_id, a->patch);
  assert_int_equal(p.protocol, (unsigned)proto_id("ipmc"));
  assert_int_equal(p.rule, 0);
  assert_int_equal(p.group, f->group);
  assert_int_equal(p.members, 1);
  assert_int_equal(p.nreps, 1);
  assert_int_equal(p.reps[0], a->id);
  assert_int_equal(p.epoch, a->epoch);
  quilt_bootstrap_patch_get(f->b, 1, &p);
  assert_int_equal(p.patch_id, w->patch);
  assert_int_equal(p.rule, 1);

  /* A second JOIN from the same host is answered, not counted twice. */
  join_ok(f, a);
  assert_int_equal(counters(f).hosts, 2);
  assert_int_equal(patch_by_id(f, a->patch).members, 1);
}

static void test_placement(void **state) {
  fx *f = *state;
  bhost *d1[3], *d2[2], *r5[2], *r6, *nomc;
  for (int i = 0; i < 3; i++) {
    d1[i] = add_host(f, 10 + i, lan(0x11));
    join_ok(f, d1[i]);
  }
  for (int i = 0; i < 2; i++) {
    d2[i] = add_host(f, 20 + i, lan(0x22));
    join_ok(f, d2[i]);
  }
  for (int i = 0; i < 2; i++) {
    r5[i] = add_host(f, 30 + i, wan(5));
    join_ok(f, r5[i]);
  }
  r6 = add_host(f, 40, wan(6));
  join_ok(f, r6);
  /* Same domain as d1, but multicast does not work for it: unicast, by
   * its region (1, as for lan hosts). */
  nomc = add_host(f, 41, mk_euid(QUILT_NAT_NONE, 0, 0x11, 1, 500, 100000));
  join_ok(f, nomc);

  assert_int_equal(d1[0]->patch, d1[1]->patch);
  assert_int_equal(d1[0]->patch, d1[2]->patch);
  assert_int_equal(d2[0]->patch, d2[1]->patch);
  assert_int_equal(r5[0]->patch, r5[1]->patch);
  uint32_t ids[5] = {d1[0]->patch, d2[0]->patch, r5[0]->patch, r6->patch,
                     nomc->patch};
  for (int i = 0; i < 5; i++)
    for (int j = i + 1; j < 5; j++)
      assert_true(ids[i] != ids[j]);
  assert_int_equal(counters(f).patches, 5);
  const int ipmc = proto_id("ipmc"), uni = proto_id("unicast");
  assert_int_equal(d1[2]->protocol, ipmc);
  assert_int_equal(d2[1]->protocol, ipmc);
  assert_int_equal(r5[1]->protocol, uni);
  assert_int_equal(r6->protocol, uni);
  assert_int_equal(nomc->protocol, uni);
  /* Each ipmc patch has its own group, base + patch id. */
  for (int i = 0; i < 3; i++)
    assert_int_equal(d1[i]->mcast.ip, f->cfg.mcast_base + d1[i]->patch);
  assert_int_equal(d2[0]->mcast.ip, f->cfg.mcast_base + d2[0]->patch);
  assert_true(d1[0]->mcast.ip != d2[0]->mcast.ip);
  assert_int_equal(patch_by_id(f, d1[0]->patch).members, 3);
  assert_int_equal(patch_by_id(f, r5[0]->patch).members, 2);

  /* Another group never shares a patch with this one. */
  f->group = quilt_group_id("another-group");
  bhost *x = add_host(f, 50, lan(0x11));
  join_ok(f, x);
  assert_true(x->patch != d1[0]->patch);
  assert_int_equal(x->role, QUILT_ROLE_PRIMARY);
  assert_int_equal(patch_by_id(f, x->patch).group, f->group);
}

/* k = 2: the first member is primary, the second backup, the rest
 * members, each told the interval that goes with its role. */
static void test_reps_k2(void **state) {
  fx *f = *state;
  bhost *a = add_host(f, 1000, lan(7));
  bhost *b = add_host(f, 1001, lan(7));
  bhost *c = add_host(f, 1002, lan(7));
  b->euid.bw_kbps = a->euid.bw_kbps / 2;
  c->euid.bw_kbps = b->euid.bw_kbps / 2;
  join_ok(f, a);
  uint32_t e1 = a->epoch;
  size_t mark = f->nlog;
  join_ok(f, b);
  assert_int_equal(b->role, QUILT_ROLE_BACKUP);
  assert_int_equal(b->hb_ms, f->cfg.rep_heartbeat_ms);
  assert_int_equal(b->nreps, 2);
  assert_int_equal(b->reps[0], a->id);
  assert_int_equal(b->reps[1], b->id);
  /* The primary hears about its new backup, with a newer epoch. */
  assert_int_equal(patch_infos_since(f, mark, a), 1);
  assert_true(a->epoch > e1);
  assert_int_equal(a->epoch, b->epoch);
  assert_int_equal(a->role, QUILT_ROLE_PRIMARY);
  assert_int_equal(a->nreps, 2);

  join_ok(f, c);
  assert_int_equal(c->role, QUILT_ROLE_MEMBER);
  assert_int_equal(c->hb_ms, f->cfg.heartbeat_ms);
  assert_int_equal(c->nreps, 2);
  assert_int_equal(c->reps[0], a->id);
  assert_int_equal(c->reps[1], b->id);
  quilt_bootstrap_patch p = patch_by_id(f, a->patch);
  assert_int_equal(p.members, 3);
  assert_int_equal(p.nreps, 2);
  assert_int_equal(p.reps[0], a->id);
  assert_int_equal(p.reps[1], b->id);
}

/* Replacements are ranked by NAT, then bandwidth, then RTT. */
static void test_rank_replacement(void **state) {
  fx *f = *state;
  bhost *a = add_host(f, 1, wan(9));
  bhost *b = add_host(f, 2, wan(9));
  a->euid.nat = b->euid.nat = QUILT_NAT_NONE;
  a->euid.bw_kbps = b->euid.bw_kbps = 1000000;
  join_ok(f, a);
  join_ok(f, b);
  /* Candidates, joined worst first so that join order cannot explain the
   * outcome. */
  bhost *c = add_host(f, 3, wan(9)); /* symmetric NAT, huge bandwidth */
  c->euid.nat = QUILT_NAT_SYMMETRIC;
  c->euid.bw_kbps = 900000;
  c->euid.rtt_us = 1000;
  bhost *dd = add_host(f, 4, wan(9)); /* open, little bandwidth */
  dd->euid.nat = QUILT_NAT_NONE;
  dd->euid.bw_kbps = 10000;
  dd->euid.rtt_us = 1000;
  bhost *e = add_host(f, 5, wan(9)); /* open, 100 Mbit/s, far */
  e->euid.nat = QUILT_NAT_NONE;
  e->euid.bw_kbps = 100000;
  e->euid.rtt_us = 90000;
  bhost *g = add_host(f, 6, wan(9)); /* open, 100 Mbit/s, near */
  g->euid.nat = QUILT_NAT_NONE;
  g->euid.bw_kbps = 100000;
  g->euid.rtt_us = 20000;
  bhost *order[] = {c, dd, e, g};
  for (int i = 0; i < 4; i++) {
    join_ok(f, order[i]);
    assert_int_equal(order[i]->role, QUILT_ROLE_MEMBER);
  }
  /* Expected succession: b, g, e, dd, c. */
  bhost *chain[] = {a, b, g, e, dd, c};
  bhost *all[] = {a, b, c, dd, e, g};
  for (int step = 0; step < 4; step++) {
    bhost *gone = chain[step];
    uint32_t epoch = chain[step + 1]->epoch;
    size_t mark = f->nlog;
    assert_int_equal(leave(f, gone), 0);
    quilt_bootstrap_patch p = patch_by_id(f, a->patch);
    assert_int_equal(p.reps[0], chain[step + 1]->id);
    assert_int_equal(p.reps[1], chain[step + 2]->id);
    /* Every remaining member is told, with a newer epoch. */
    for (int i = 0; i < 6; i++) {
      bhost *h = all[i];
      int left = 0;
      for (int j = 0; j <= step; j++)
        left |= chain[j] == h;
      if (left) {
        assert_int_equal(patch_infos_since(f, mark, h), 0);
        continue;
      }
      assert_int_equal(patch_infos_since(f, mark, h), 1);
      assert_true(h->epoch > epoch);
      assert_int_equal(h->epoch, p.epoch);
      assert_int_equal(h->reps[0], chain[step + 1]->id);
      assert_int_equal(h->reps[1], chain[step + 2]->id);
      unsigned want = h == chain[step + 1]   ? QUILT_ROLE_PRIMARY
                      : h == chain[step + 2] ? QUILT_ROLE_BACKUP
                                             : QUILT_ROLE_MEMBER;
      assert_int_equal(h->role, want);
    }
  }
  /* A LEAVE is not a failure. */
  assert_int_equal(counters(f).failovers, 0);
  assert_int_equal(counters(f).leaves, 4);
}

/* ---- PEERS ---- */

static void expect_peers(const fx *f, const bhost *rep, size_t n,
                         const bhost *const *primaries) {
  const quilt_msg_peers *pe = &rep->last_peers.u.peers;
  assert_true(rep->npeers > 0);
  assert_int_equal(rep->last_peers.hdr.group, rep->group);
  assert_int_equal(pe->total, n);
  assert_int_equal(pe->offset, 0);
  assert_int_equal(pe->count, n);
  for (size_t i = 0; i < n; i++) {
    int found = 0;
    for (size_t j = 0; j < pe->count; j++)
      if (pe->entries[j].node.id == primaries[i]->id) {
        found++;
        assert_int_equal(pe->entries[j].patch_id, primaries[i]->patch);
        assert_int_equal(pe->entries[j].node.addr.ip, primaries[i]->addr.ip);
        assert_int_equal(pe->entries[j].node.addr.port,
                         primaries[i]->addr.port);
      }
    assert_int_equal(found, 1);
  }
  (void)f;
}

static void test_peers(void **state) {
  fx *f = *state;
  bhost *p1[3], *p2[2], *p3;
  for (int i = 0; i < 3; i++)
    p1[i] = add_host(f, 10 + i, lan(1));
  for (int i = 0; i < 2; i++)
    p2[i] = add_host(f, 20 + i, lan(2));
  p3 = add_host(f, 30, wan(4));
  for (int i = 0; i < 3; i++)
    join_ok(f, p1[i]);
  for (int i = 0; i < 2; i++)
    join_ok(f, p2[i]);
  join_ok(f, p3);
  /* A host of another group, in the same IPMC domain as p1. */
  f->group = quilt_group_id("other");
  bhost *x = add_host(f, 40, lan(1));
  join_ok(f, x);

  run_until(f, T0 + 200 * MS);
  const bhost *prim[] = {p1[0], p2[0], p3};
  for (int i = 0; i < 3; i++)
    expect_peers(f, prim[i], 3, prim);
  /* Backups and members do not get PEERS: only the primary bridges. */
  assert_int_equal(p1[1]->npeers, 0);
  assert_int_equal(p2[1]->npeers, 0);
  assert_int_equal(p1[2]->npeers, 0);
  const bhost *xprim[] = {x};
  expect_peers(f, x, 1, xprim);
  uint32_t epoch = p1[0]->last_peers.u.peers.epoch;

  /* Re-sent now and then (every peers_refresh_ns). */
  unsigned n0 = p2[0]->npeers;
  run_until(f, T0 + 200 * MS + f->cfg.peers_refresh_ns + 100 * MS);
  assert_true(p2[0]->npeers > n0);
  assert_true(p3->npeers > n0 - 1);
  assert_int_equal(p1[2]->npeers, 0);

  /* A primary leaves: a newer table goes out at once (within 5 ms), to
   * the new primary too. */
  assert_int_equal(leave(f, p1[0]), 0);
  run_until(f, f->now + 6 * MS);
  const bhost *prim2[] = {p1[1], p2[0], p3};
  for (int i = 0; i < 3; i++) {
    expect_peers(f, prim2[i], 3, prim2);
    assert_true(prim2[i]->last_peers.u.peers.epoch > epoch);
  }
  expect_peers(f, x, 1, xprim);
}

/* More primaries than one datagram holds: PEERS is paged. */
static void test_peers_paged(void **state) {
  fx *f = *state;
  enum { N = 100 };
  /* A join wave: a patch forms every millisecond.  They all go out in one
   * round (peers_batch_ns), not in one per patch. */
  size_t mark = f->nlog;
  for (int i = 0; i < N; i++) {
    join_ok(f, add_host(f, 1000 + (uint64_t)i, wan(100 + (uint32_t)i)));
    run_until(f, f->now + 1 * MS);
  }
  assert_int_equal(counters(f).patches, N);
  run_until(f, T0 + f->cfg.peers_batch_ns + 10 * MS);
  /* What host 0 received: pages that cover every primary exactly once. */
  const bhost *h0 = &f->h[0];
  int seen[N] = {0};
  unsigned pages = 0;
  for (size_t i = mark; i < f->nlog; i++) {
    const sent *s = &f->log[i];
    if (s->m.hdr.type != QUILT_MSG_PEERS || !quilt_addr_eq(&s->to, &h0->addr))
      continue;
    const quilt_msg_peers *pe = &s->m.u.peers;
    assert_int_equal(pe->total, N);
    assert_true(pe->count <= QUILT_WIRE_MAX_PEERS);
    assert_true(pe->offset + pe->count <= N);
    pages++;
    for (unsigned j = 0; j < pe->count; j++) {
      uint64_t k = pe->entries[j].node.id - 1000;
      assert_true(k < N);
      seen[k]++;
      assert_int_equal(pe->entries[j].patch_id, f->h[k].patch);
    }
  }
  assert_int_equal(pages, 2);
  for (int i = 0; i < N; i++)
    assert_int_equal(seen[i], 1);
}

/* A primary that moves to another patch (its EUID changed) is alive: the
 * table without it waits for the next batch (peers_batch_ns), where a
 * primary that leaves is out within 5 ms (test_peers). */
static void test_peers_moved_primary_batched(void **state) {
  fx *f = *state;
  bhost *a = add_host(f, 1, lan(1));
  bhost *a2 = add_host(f, 2, lan(1));
  bhost *b = add_host(f, 3, lan(2));
  join_ok(f, a);
  join_ok(f, a2);
  join_ok(f, b);
  run_until(f, T0 + 500 * MS);
  assert_int_equal(a->role, QUILT_ROLE_PRIMARY);
  assert_int_equal(b->role, QUILT_ROLE_PRIMARY);
  uint32_t epoch = b->last_peers.u.peers.epoch;
  a->euid = lan(2); /* a moves to b's patch */
  assert_int_equal(heartbeat(f, a), 0);
  assert_int_equal(a->patch, b->patch);
  assert_int_equal(a2->role, QUILT_ROLE_PRIMARY);
  run_until(f, f->now + 6 * MS);
  assert_int_equal(b->last_peers.u.peers.epoch, epoch); /* not yet */
  run_until(f, f->now + f->cfg.peers_batch_ns);
  assert_true(b->last_peers.u.peers.epoch > epoch);
  const bhost *prim[] = {a2, b};
  expect_peers(f, b, 2, prim);
  expect_peers(f, a2, 2, prim);
}

/* ---- soft state ---- */

static void test_member_expiry(void **state) {
  fx *f = *state;
  bhost *a = add_host(f, 1, lan(3));
  bhost *b = add_host(f, 2, lan(3));
  bhost *c = add_host(f, 3, lan(3));
  join_ok(f, a);
  join_ok(f, b);
  join_ok(f, c);
  run_until(f, T0 + 5000 * MS);
  /* Heartbeating hosts stay. */
  assert_int_equal(counters(f).hosts, 3);
  assert_int_equal(counters(f).expired, 0);
  assert_true(counters(f).heartbeats > 3);

  c->alive = 0;
  uint64_t last = c->last_hb_ns;
  uint64_t hb = (uint64_t)f->cfg.heartbeat_ms * MS;
  uint64_t miss = f->cfg.miss_limit;
  /* Still there after miss_limit intervals... */
  run_until(f, last + miss * hb);
  assert_int_equal(counters(f).hosts, 3);
  /* ...gone within one more. */
  size_t mark = f->nlog;
  run_until(f, last + (miss + 1) * hb);
  quilt_bootstrap_counters k = counters(f);
  assert_int_equal(k.hosts, 2);
  assert_int_equal(k.expired, 1);
  assert_int_equal(k.failovers, 0); /* a member, not a representative */
  quilt_bootstrap_patch p = patch_by_id(f, a->patch);
  assert_int_equal(p.members, 2);
  assert_int_equal(p.reps[0], a->id);
  assert_int_equal(p.reps[1], b->id);
  assert_int_equal(patch_infos_since(f, mark, a), 0);

  /* A host that heartbeats again after being dropped is taken back. */
  c->alive = 1;
  c->next_hb_ns = f->now + 1;
  run_until(f, f->now + 10 * MS);
  assert_int_equal(counters(f).hosts, 3);
  assert_int_equal(c->patch, a->patch);
  assert_int_equal(c->role, QUILT_ROLE_MEMBER);
}

/* Runs in 1 ms steps until pred says stop; returns the time it did. */
static uint64_t run_until_failovers(fx *f, uint64_t failovers, uint64_t limit) {
  while (f->now < limit) {
    run_until(f, f->now + 1 * MS);
    if (counters(f).failovers >= failovers)
      return f->now;
  }
  fail_msg("no failover by %llu", (unsigned long long)limit);
  return 0;
}

static void test_primary_failover(void **state) {
  fx *f = *state;
  bhost *a = add_host(f, 1, lan(5)); /* primary */
  bhost *b = add_host(f, 2, lan(5)); /* backup */
  bhost *c = add_host(f, 3, lan(5)); /* the better member */
  bhost *d = add_host(f, 4, lan(5));
  c->euid.bw_kbps = 90000;
  d->euid.bw_kbps = 80000;
  join_ok(f, a);
  join_ok(f, b);
  join_ok(f, c);
  join_ok(f, d);
  run_until(f, T0 + 1000 * MS);
  assert_int_equal(a->role, QUILT_ROLE_PRIMARY);
  assert_int_equal(b->role, QUILT_ROLE_BACKUP);
  assert_int_equal(counters(f).failovers, 0);
  /* The primary acknowledged its role: it heartbeats at the short
   * interval, with its patch and role. */
  assert_int_equal(a->hb_ms, f->cfg.rep_heartbeat_ms);

  a->alive = 0;
  uint64_t last = a->last_hb_ns;
  uint32_t epoch = b->epoch;
  size_t mark = f->nlog;
  uint64_t rep_hb = (uint64_t)f->cfg.rep_heartbeat_ms * MS;
  uint64_t bound = f->cfg.rep_miss_limit * rep_hb + rep_hb;
  uint64_t t = run_until_failovers(f, 1, last + 10 * bound);
  /* Dead only after rep_miss_limit missed heartbeats; replaced within one
   * interval more.  (The tighter bound, rep_miss_limit * interval + half
   * an interval, is not met: the sweep runs every half interval and needs
   * now > last + limit, so a deadline that falls on a sweep is caught one
   * sweep later, at + a whole interval.  Reported, not asserted.) */
  assert_true(t - last > f->cfg.rep_miss_limit * rep_hb);
  if (t - last > bound)
    fail_msg("failover %llu ms after the last heartbeat, bound %llu ms",
             (unsigned long long)((t - last) / MS),
             (unsigned long long)(bound / MS));
  quilt_bootstrap_counters k = counters(f);
  assert_int_equal(k.failovers, 1);
  assert_int_equal(k.expired, 1);
  assert_int_equal(k.hosts, 3);
  quilt_bootstrap_patch p = patch_by_id(f, b->patch);
  assert_int_equal(p.nreps, 2);
  assert_int_equal(p.reps[0], b->id); /* the backup takes over */
  assert_int_equal(p.reps[1], c->id); /* the best member stands by */
  /* Every member is told, with a newer epoch. */
  bhost *rest[] = {b, c, d};
  for (int i = 0; i < 3; i++) {
    assert_true(patch_infos_since(f, mark, rest[i]) >= 1);
    assert_true(rest[i]->epoch > epoch);
    assert_int_equal(rest[i]->epoch, p.epoch);
    assert_int_equal(rest[i]->nreps, 2);
    assert_int_equal(rest[i]->reps[0], b->id);
    assert_int_equal(rest[i]->reps[1], c->id);
  }
  assert_int_equal(b->role, QUILT_ROLE_PRIMARY);
  assert_int_equal(c->role, QUILT_ROLE_BACKUP);
  assert_int_equal(c->hb_ms, f->cfg.rep_heartbeat_ms);
  assert_int_equal(d->role, QUILT_ROLE_MEMBER);
  assert_int_equal(patch_infos_since(f, mark, a), 0);

  /* The overlay learns the new primary (within 5 ms of a failure); the
   * new backup gets no table. */
  unsigned cpeers = c->npeers;
  run_until(f, f->now + 6 * MS);
  const bhost *prim[] = {b};
  expect_peers(f, b, 1, prim);
  assert_int_equal(c->npeers, cpeers);

  /* The new primary fails too (after acknowledging): c takes over, d is
   * the only one left to stand by. */
  run_until(f, f->now + 500 * MS);
  b->alive = 0;
  last = b->last_hb_ns;
  t = run_until_failovers(f, 2, last + 10 * bound);
  assert_true(t - last > f->cfg.rep_miss_limit * rep_hb);
  assert_true(t - last <= bound);
  p = patch_by_id(f, c->patch);
  assert_int_equal(p.reps[0], c->id);
  assert_int_equal(p.reps[1], d->id);
  assert_int_equal(c->role, QUILT_ROLE_PRIMARY);
  assert_int_equal(d->role, QUILT_ROLE_BACKUP);
  assert_int_equal(counters(f).failovers, 2);
  /* The remaining two keep the patch going. */
  run_until(f, f->now + 5000 * MS);
  assert_int_equal(counters(f).hosts, 2);
  assert_int_equal(counters(f).failovers, 2);
}

/* A newcomer much better than the primary takes its place: reachable
 * where the primary is behind a filtering NAT, or, as reachable, twice its
 * uplink.  The old primary becomes the backup, the old backup a member;
 * members are told, the primaries within 5 ms.  A slightly better one
 * changes nothing. */
static void test_promote_much_better(void **state) {
  fx *f = *state;
  bhost *a = add_host(f, 1, wan(8)); /* port-restricted, 20 Mbit/s */
  bhost *b = add_host(f, 2, wan(8));
  bhost *c = add_host(f, 3, wan(8));
  join_ok(f, a);
  join_ok(f, b);
  join_ok(f, c);
  run_until(f, T0 + 500 * MS);
  assert_int_equal(a->role, QUILT_ROLE_PRIMARY);
  assert_int_equal(b->role, QUILT_ROLE_BACKUP);
  uint32_t epoch = a->epoch;
  bhost *d = add_host(f, 4, wan(8));
  d->euid.nat = QUILT_NAT_FULL_CONE; /* reachable */
  join_ok(f, d);
  assert_int_equal(counters(f).promotions, 1);
  assert_int_equal(d->role, QUILT_ROLE_PRIMARY);
  assert_int_equal(a->role, QUILT_ROLE_BACKUP);
  assert_int_equal(b->role, QUILT_ROLE_MEMBER);
  assert_true(c->epoch > epoch); /* told */
  assert_int_equal(c->reps[0], d->id);
  run_until(f, f->now + 6 * MS);
  const bhost *prim[] = {d};
  expect_peers(f, d, 1, prim);
  /* Reachable too, and twice d's uplink: promoted; 1.5 times: not. */
  bhost *e = add_host(f, 5, wan(8));
  e->euid.nat = QUILT_NAT_NONE;
  e->euid.bw_kbps = 30000;
  join_ok(f, e);
  assert_int_equal(d->role, QUILT_ROLE_PRIMARY);
  bhost *g = add_host(f, 6, wan(8));
  g->euid.nat = QUILT_NAT_NONE;
  g->euid.bw_kbps = 40000;
  join_ok(f, g);
  assert_int_equal(g->role, QUILT_ROLE_PRIMARY);
  assert_int_equal(d->role, QUILT_ROLE_BACKUP);
  assert_int_equal(counters(f).promotions, 2);
  char why[256];
  assert_int_equal(quilt_bootstrap_check(f->b, why, sizeof why), 0);
}

/* The backup fails: the best member replaces it; the primary stays. */
static void test_backup_failover(void **state) {
  fx *f = *state;
  bhost *a = add_host(f, 1, wan(8));
  bhost *b = add_host(f, 2, wan(8));
  bhost *c = add_host(f, 3, wan(8));
  bhost *d = add_host(f, 4, wan(8));
  d->euid.bw_kbps = 30000; /* better than c, not enough to displace a */
  join_ok(f, a);
  join_ok(f, b);
  join_ok(f, c);
  join_ok(f, d);
  run_until(f, T0 + 1000 * MS);
  b->alive = 0;
  uint64_t last = b->last_hb_ns;
  uint64_t rep_hb = (uint64_t)f->cfg.rep_heartbeat_ms * MS;
  uint64_t bound = f->cfg.rep_miss_limit * rep_hb + rep_hb;
  uint64_t t = run_until_failovers(f, 1, last + 10 * bound);
  assert_true(t - last <= bound);
  quilt_bootstrap_patch p = patch_by_id(f, a->patch);
  assert_int_equal(p.reps[0], a->id);
  assert_int_equal(p.reps[1], d->id);
  assert_int_equal(a->role, QUILT_ROLE_PRIMARY);
  assert_int_equal(d->role, QUILT_ROLE_BACKUP);
  assert_int_equal(c->role, QUILT_ROLE_MEMBER);
}

/* A representative that never showed it knows its role is held to the
 * members' limit, but still dropped in the end. */
static void test_unacknowledged_rep_expires(void **state) {
  fx *f = *state;
  bhost *a = add_host(f, 1, lan(6));
  bhost *b = add_host(f, 2, lan(6));
  join_ok(f, a);
  join_ok(f, b);
  a->alive = 0; /* never heartbeats */
  uint64_t hb = (uint64_t)f->cfg.heartbeat_ms * MS;
  run_until(f, T0 + (f->cfg.miss_limit + 1) * hb);
  assert_int_equal(counters(f).hosts, 1);
  assert_int_equal(b->role, QUILT_ROLE_PRIMARY);
  assert_int_equal(patch_by_id(f, b->patch).reps[0], b->id);
}

static void test_leave(void **state) {
  fx *f = *state;
  bhost *a = add_host(f, 1, lan(9));
  bhost *b = add_host(f, 2, lan(9));
  bhost *c = add_host(f, 3, lan(9));
  join_ok(f, a);
  join_ok(f, b);
  join_ok(f, c);
  /* A member leaves: gone at once. */
  assert_int_equal(leave(f, c), 0);
  assert_int_equal(counters(f).hosts, 2);
  assert_int_equal(patch_by_id(f, a->patch).members, 2);
  /* LEAVE of an unknown host is harmless. */
  bhost *u = add_host(f, 77, lan(9));
  assert_int_equal(leave(f, u), 0);
  assert_int_equal(counters(f).hosts, 2);
  /* A LEAVE in another group's name does not remove the host. */
  b->group = quilt_group_id("not-mine");
  assert_int_equal(leave(f, b), 0);
  b->group = f->group;
  assert_int_equal(counters(f).hosts, 2);
  /* The primary leaves: replaced at once, not counted as a failure. */
  uint32_t epoch = b->epoch;
  assert_int_equal(leave(f, a), 0);
  assert_int_equal(counters(f).hosts, 1);
  assert_int_equal(b->role, QUILT_ROLE_PRIMARY);
  assert_true(b->epoch > epoch);
  assert_int_equal(counters(f).failovers, 0);
  /* The last one leaves: the patch is gone. */
  assert_int_equal(leave(f, b), 0);
  assert_int_equal(counters(f).hosts, 0);
  assert_int_equal(counters(f).patches, 0);
  assert_int_equal(quilt_bootstrap_patch_count(f->b), 0);
  assert_int_equal(counters(f).leaves, 5);
  /* And it all still works. */
  join_ok(f, a);
  assert_int_equal(a->role, QUILT_ROLE_PRIMARY);
  run_until(f, f->now + 5000 * MS);
  assert_int_equal(counters(f).hosts, 1);
}

/* "max N": a full patch is split, the overflow gets a new patch. */
static void test_max_split(void **state) {
  (void)state;
  fx *f = fx_new_rules("* -> unicast by region max 3\n", 0);
  bhost *h[7];
  for (int i = 0; i < 7; i++) {
    h[i] = add_host(f, 100 + (uint64_t)i, wan(1));
    join_ok(f, h[i]);
  }
  assert_int_equal(h[0]->patch, h[1]->patch);
  assert_int_equal(h[0]->patch, h[2]->patch);
  assert_true(h[3]->patch != h[0]->patch);
  assert_int_equal(h[3]->role, QUILT_ROLE_PRIMARY);
  assert_int_equal(h[3]->protocol, proto_id("unicast"));
  assert_int_equal(h[4]->patch, h[3]->patch);
  assert_int_equal(h[5]->patch, h[3]->patch);
  assert_true(h[6]->patch != h[0]->patch && h[6]->patch != h[3]->patch);
  assert_int_equal(counters(f).patches, 3);
  assert_int_equal(patch_by_id(f, h[0]->patch).members, 3);
  assert_int_equal(patch_by_id(f, h[3]->patch).members, 3);
  assert_int_equal(patch_by_id(f, h[6]->patch).members, 1);
  /* Another region is not affected by the first one's shards. */
  bhost *o = add_host(f, 200, wan(2));
  join_ok(f, o);
  assert_int_equal(patch_by_id(f, o->patch).members, 1);
  run_until(f, f->now + 3000 * MS);
  assert_int_equal(counters(f).hosts, 8);
  fx_del(f);
}

/* A restarted server learns the whole table from the next heartbeats. */
static void test_restart(void **state) {
  fx *f = *state;
  bhost *a = add_host(f, 1, lan(1));
  bhost *b = add_host(f, 2, lan(1));
  bhost *c = add_host(f, 3, lan(1));
  bhost *d = add_host(f, 4, wan(2));
  bhost *e = add_host(f, 5, wan(2));
  bhost *all[] = {a, b, c, d, e};
  for (int i = 0; i < 5; i++)
    join_ok(f, all[i]);
  run_until(f, T0 + 500 * MS);

  uint32_t old_patch[5], old_epoch[5];
  uint8_t old_role[5];
  for (int i = 0; i < 5; i++) {
    old_patch[i] = all[i]->patch;
    old_role[i] = all[i]->role;
    old_epoch[i] = all[i]->epoch;
  }
  uint32_t old_peers_epoch = a->last_peers.u.peers.epoch;
  assert_true(a->npeers > 0);

  /* A new incarnation: its epochs must read as newer to the hosts (the
   * harness's check() fails on any PATCH_INFO that goes back). */
  quilt_bootstrap_del(f->b);
  f->cfg.incarnation++;
  quilt_bootstrap_callbacks cb = {on_send};
  assert_int_equal(quilt_bootstrap_new(&f->b, &f->cfg, &cb, f), 0);
  assert_int_equal(counters(f).hosts, 0);
  unsigned npi[5];
  for (int i = 0; i < 5; i++)
    npi[i] = all[i]->npi;
  /* The hosts do not know: they keep heartbeating as before. */
  run_until(f, f->now + 2 * (uint64_t)f->cfg.heartbeat_ms * MS);
  quilt_bootstrap_counters k = counters(f);
  assert_int_equal(k.hosts, 5);
  assert_int_equal(k.joins, 0);
  assert_true(k.heartbeats >= 5);
  assert_int_equal(k.patches, 2);
  assert_int_equal(k.refused, 0);
  for (int i = 0; i < 5; i++)
    assert_true(all[i]->npi > npi[i]); /* each got a PATCH_INFO */
  assert_int_equal(a->patch, b->patch);
  assert_int_equal(a->patch, c->patch);
  assert_int_equal(d->patch, e->patch);
  assert_true(a->patch != d->patch);
  assert_int_equal(a->mcast.ip, f->cfg.mcast_base + a->patch);
  assert_int_equal(patch_by_id(f, a->patch).members, 3);
  assert_int_equal(patch_by_id(f, a->patch).nreps, 2);
  assert_int_equal(patch_by_id(f, d->patch).nreps, 2);
  /* The patches keep their ids (and so their multicast groups), the
   * working representatives their roles, and the epochs move forward. */
  for (int i = 0; i < 5; i++) {
    assert_int_equal(all[i]->patch, old_patch[i]);
    assert_int_equal(all[i]->role, old_role[i]);
    assert_true(all[i]->epoch > old_epoch[i]);
  }
  run_until(f, f->now + 200 * MS);
  assert_true(a->last_peers.u.peers.epoch > old_peers_epoch);
  const bhost *prim[] = {a, d};
  expect_peers(f, a, 2, prim);
  /* Roles told match the table. */
  for (int i = 0; i < 5; i++) {
    quilt_bootstrap_patch p = patch_by_id(f, all[i]->patch);
    unsigned want = p.reps[0] == all[i]->id   ? QUILT_ROLE_PRIMARY
                    : p.reps[1] == all[i]->id ? QUILT_ROLE_BACKUP
                                              : QUILT_ROLE_MEMBER;
    assert_int_equal(all[i]->role, want);
  }
  /* And it runs on from there. */
  run_until(f, f->now + 5000 * MS);
  assert_int_equal(counters(f).hosts, 5);
}

/* ---- refusals ---- */

static int read_raw(fx *f, const uint8_t *buf, size_t len) {
  quilt_addr from = {0x0a000001u, 9};
  /* Exact-size copy so that a sanitizer sees any over-read. */
  uint8_t *copy = malloc(len ? len : 1);
  assert_non_null(copy);
  if (len)
    memcpy(copy, buf, len);
  int rc = quilt_bootstrap_read(f->b, &from, copy, len, f->now);
  free(copy);
  check(f);
  return rc;
}

static void test_refused(void **state) {
  fx *f = *state;
  bhost *a = add_host(f, 1, lan(1));
  join_ok(f, a);
  size_t nlog = f->nlog;
  uint64_t refused = 0;

  uint8_t buf[QUILT_WIRE_MAX_DATAGRAM + 8];
  quilt_msg m;
  hdr(&m, a, QUILT_MSG_JOIN);
  m.u.join.addr = a->addr;
  m.u.join.euid = a->euid;
  int len = quilt_wire_encode(&m, buf, sizeof buf);
  assert_true(len > QUILT_WIRE_HEADER_LEN);

  /* Malformed: empty, truncated, bad magic, other version, trailing byte. */
  assert_true(read_raw(f, buf, 0) < 0);
  refused++;
  for (int cut = 1; cut < len; cut += 5) {
    assert_true(read_raw(f, buf, (size_t)cut) < 0);
    refused++;
  }
  uint8_t bad[QUILT_WIRE_MAX_DATAGRAM + 8];
  memcpy(bad, buf, (size_t)len);
  bad[0] ^= 0xFF;
  assert_true(read_raw(f, bad, (size_t)len) < 0);
  refused++;
  memcpy(bad, buf, (size_t)len);
  bad[2] = QUILT_WIRE_VERSION + 1;
  assert_true(read_raw(f, bad, (size_t)len) < 0);
  refused++;
  memcpy(bad, buf, (size_t)len);
  bad[len] = 0;
  assert_true(read_raw(f, bad, (size_t)len + 1) < 0);
  refused++;
  for (size_t i = 0; i < sizeof bad; i++)
    bad[i] = (uint8_t)(i * 37u + 11u);
  assert_true(read_raw(f, bad, 100) < 0);
  refused++;

  /* Well-formed, but not for the server. */
  const unsigned types[] = {QUILT_MSG_DATA,    QUILT_MSG_NACK,
                            QUILT_MSG_SESSION, QUILT_MSG_PATCH_INFO,
                            QUILT_MSG_PEERS,   QUILT_MSG_REJOIN,
                            QUILT_MSG_MEMBERS};
  static const uint8_t payload[4] = {1, 2, 3, 4};
  for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
    hdr(&m, a, types[i]);
    if (types[i] == QUILT_MSG_DATA) {
      m.u.data.origin = a->id;
      m.u.data.seq = 1;
      m.u.data.len = sizeof payload;
      m.u.data.payload = payload;
    }
    if (types[i] == QUILT_MSG_SESSION) {
      m.u.session.count = 1;
      m.u.session.entries[0].origin = a->id;
      m.u.session.entries[0].seq = 5;
    }
    if (types[i] == QUILT_MSG_NACK) {
      m.u.nack.origin = a->id;
      m.u.nack.count = 1;
      m.u.nack.ranges[0].first = 1;
      m.u.nack.ranges[0].count = 1;
    }
    int rc = send_dg(f, &m);
    if (rc >= 0)
      fail_msg("%s accepted", quilt_msg_type_name(types[i]));
    refused++;
  }
  /* Sender 0, or the server's own id. */
  bhost zero = *a;
  zero.id = 0;
  hdr(&m, &zero, QUILT_MSG_JOIN);
  m.u.join.addr = a->addr;
  m.u.join.euid = a->euid;
  assert_true(send_dg(f, &m) < 0);
  refused++;
  m.hdr.sender = SERVER_ID;
  assert_true(send_dg(f, &m) < 0);
  refused++;
  /* One node id, one group. */
  m.hdr.sender = a->id;
  m.hdr.group = quilt_group_id("elsewhere");
  assert_true(send_dg(f, &m) < 0);
  refused++;

  quilt_bootstrap_counters k = counters(f);
  assert_int_equal(k.refused, refused);
  assert_int_equal(k.hosts, 1);
  assert_int_equal(f->nlog, nlog); /* nothing answered */
  /* Still working. */
  bhost *b = add_host(f, 2, lan(1));
  join_ok(f, b);
  assert_int_equal(b->role, QUILT_ROLE_BACKUP);
  run_until(f, f->now + 3000 * MS);
  assert_int_equal(counters(f).hosts, 2);
  assert_int_equal(counters(f).refused, refused);
}

static void test_max_hosts(void **state) {
  (void)state;
  fx *f = fx_new_rules(quilt_rules_default_text(), 3);
  bhost *h[4];
  for (int i = 0; i < 4; i++)
    h[i] = add_host(f, 10 + (uint64_t)i, lan(1));
  for (int i = 0; i < 3; i++)
    join_ok(f, h[i]);
  size_t nlog = f->nlog;
  int rc = join(f, h[3]);
  assert_int_equal(rc, QUILT_ERR_LIMIT);
  assert_int_equal(f->nlog, nlog); /* no PATCH_INFO */
  assert_int_equal(h[3]->npi, 0);
  quilt_bootstrap_counters k = counters(f);
  assert_int_equal(k.hosts, 3);
  assert_int_equal(k.refused, 1);
  /* A heartbeat from the extra host is refused the same way. */
  assert_true(heartbeat(f, h[3]) < 0);
  assert_int_equal(counters(f).refused, 2);
  /* Known hosts still refresh. */
  assert_int_equal(heartbeat(f, h[0]), 0);
  /* Room again after a LEAVE. */
  assert_int_equal(leave(f, h[1]), 0);
  join_ok(f, h[3]);
  assert_int_equal(counters(f).hosts, 3);
  fx_del(f);
}

/* A host whose environment changed re-joins and moves patch. */
static void test_rejoin_moves(void **state) {
  fx *f = *state;
  bhost *a = add_host(f, 1, lan(1));
  bhost *b = add_host(f, 2, lan(1));
  join_ok(f, a);
  join_ok(f, b);
  uint32_t old = a->patch;
  b->euid = lan(2);
  join_ok(f, b);
  assert_true(b->patch != old);
  assert_int_equal(b->role, QUILT_ROLE_PRIMARY);
  assert_int_equal(b->mcast.ip, f->cfg.mcast_base + b->patch);
  assert_int_equal(patch_by_id(f, old).members, 1);
  assert_int_equal(counters(f).hosts, 2);
  assert_int_equal(counters(f).patches, 2);
  /* Its old patch's primary learns it lost its backup. */
  assert_int_equal(a->nreps, 1);
}

/* Many hosts joining, heartbeating, some dying, some leaving: the table
 * stays consistent throughout (check() after every step). */
static void test_churn(void **state) {
  fx *f = *state;
  enum { N = 120 };
  for (int i = 0; i < N; i++) {
    quilt_euid e = i % 3 ? lan((uint32_t)(i % 5)) : wan((uint32_t)(i % 4));
    e.bw_kbps = 1000u + (uint32_t)(i * 7919 % 100000);
    e.nat = (uint8_t)(i % 4 == 0 ? QUILT_NAT_SYMMETRIC : QUILT_NAT_NONE);
    join_ok(f, add_host(f, 1 + (uint64_t)i, e));
    f->now += 1 * MS;
  }
  run_until(f, f->now + 2000 * MS);
  assert_int_equal(counters(f).hosts, N);
  for (int i = 0; i < N; i += 4)
    f->h[i].alive = 0; /* a quarter die */
  for (int i = 1; i < N; i += 10)
    assert_int_equal(leave(f, &f->h[i]), 0);
  run_until(f, f->now + 6000 * MS);
  quilt_bootstrap_counters k = counters(f);
  assert_int_equal(k.hosts, N - N / 4 - N / 10);
  assert_int_equal(k.expired, N / 4);
  /* Every survivor's last PATCH_INFO matches the table. */
  for (int i = 0; i < N; i++) {
    bhost *h = &f->h[i];
    if (!h->alive)
      continue;
    quilt_bootstrap_patch p = patch_by_id(f, h->patch);
    assert_int_equal(h->epoch, p.epoch);
    assert_int_equal(h->nreps, p.nreps);
    for (unsigned r = 0; r < p.nreps; r++)
      assert_int_equal(h->reps[r], p.reps[r]);
  }
}

/* A representative heard from a new address: every member of the patch
 * learns it, and the other primaries too when it is the primary. */
static void test_rep_address_change(void **state) {
  fx *f = *state;
  bhost *a = add_host(f, 1, lan(3));
  bhost *b = add_host(f, 2, lan(3));
  bhost *c = add_host(f, 3, lan(3));
  join_ok(f, a);
  join_ok(f, b);
  join_ok(f, c);
  assert_int_equal(b->role, QUILT_ROLE_BACKUP);
  uint32_t epoch = c->epoch;
  unsigned before = c->npi;
  b->addr.port = (uint16_t)(b->addr.port + 1);
  assert_int_equal(heartbeat(f, b), 0);
  assert_true(c->npi > before);
  assert_true(c->epoch > epoch);
  assert_int_equal(c->reps[1], b->id);
  assert_int_equal(b->role, QUILT_ROLE_BACKUP);
}

/* A new RTT or bandwidth measure that the rules do not look at changes
 * nothing about a host's patch or role. */
/* Behind a NAT a host is reached where its datagrams come from, not at the
 * address it claims. */
static void test_observed_address(void **state) {
  fx *f = *state;
  bhost *a = add_host(f, 1, wan(2));
  quilt_addr claimed = {(192u << 24) | (168u << 16) | 5, 7000};
  quilt_msg m;
  hdr(&m, a, QUILT_MSG_JOIN);
  m.u.join.addr = claimed; /* a private address; a->addr is the outer one */
  m.u.join.euid = a->euid;
  unsigned before = a->npi;
  assert_int_equal(send_dg(f, &m), 0);
  assert_int_equal(a->npi, before + 1); /* answered at the outer address */
  assert_int_equal(a->nreps, 1);
}

static void test_measure_noise_keeps_roles(void **state) {
  fx *f = *state;
  bhost *a = add_host(f, 1, lan(4));
  bhost *b = add_host(f, 2, lan(4));
  join_ok(f, a);
  join_ok(f, b);
  assert_int_equal(a->role, QUILT_ROLE_PRIMARY);
  uint32_t patch = a->patch, epoch = a->epoch;
  size_t mark = f->nlog;
  a->euid.rtt_us += 1;
  a->euid.bw_kbps -= 7;
  assert_int_equal(heartbeat(f, a), 0);
  assert_int_equal(patch_infos_since(f, mark, a), 0);
  assert_int_equal(patch_infos_since(f, mark, b), 0);
  quilt_bootstrap_patch p = patch_by_id(f, patch);
  assert_int_equal(p.reps[0], a->id);
  assert_int_equal(p.epoch, epoch);
  assert_int_equal(counters(f).failovers, 0);
}

/* ---- landmarks and trees ---- */

static fx *fx_rtts(const char *rules) {
  fx *f = fx_new_rules(rules, 0);
  f->rtts = 1;
  return f;
}

/* A host at (x, y) in the plane. */
static bhost *add_at(fx *f, uint64_t id, quilt_euid e, int32_t x, int32_t y) {
  bhost *h = add_host(f, id, e);
  h->x = x;
  h->y = y;
  return h;
}

/* A host of a tree patch: no multicast, region 1, uplink bw_kbps. */
static quilt_euid treeh(uint32_t bw_kbps) {
  return mk_euid(QUILT_NAT_NONE, 0, 0, 1, 20000, bw_kbps);
}

static const char tree_rules[] = "* -> tree by region\n";

static uint32_t want_degree(const fx *f, const bhost *h) {
  uint32_t d = h->euid.bw_kbps / f->cfg.tree_rate_kbps;
  return d < 2 ? 2 : d > QUILT_WIRE_MAX_CHILDREN ? QUILT_WIRE_MAX_CHILDREN : d;
}

static int in_set(bhost *const *set, size_t n, uint64_t id) {
  for (size_t i = 0; i < n; i++)
    if (set[i]->id == id)
      return (int)i;
  return -1;
}

/* The latest views the hosts in set[] hold of tree `tree` (a patch's, or
 * an overlay tree) form one tree over exactly them: one root, parents and
 * children that agree, grandparents that agree, degree bounds as the
 * uplinks say and kept, no cycle; and the server's
 * quilt_bootstrap_tree_parent says the same.  Returns the root. */
static bhost *check_views(fx *f, uint32_t tree, bhost *const *set, size_t n) {
  bhost *root = NULL;
  for (size_t i = 0; i < n; i++) {
    const bhost *h = set[i];
    const quilt_msg_tree *v = view_in(h, tree);
    if (!v)
      fail_msg("host %llu has no view of tree %x", (unsigned long long)h->id,
               tree);
    assert_int_equal(v->degree, want_degree(f, h));
    assert_true(v->nchildren <= v->degree);
    uint64_t sp = 1;
    assert_int_equal(quilt_bootstrap_tree_parent(f->b, tree, h->id, &sp), 0);
    assert_int_equal(sp, v->parent.id);
    if (v->parent.id == 0) {
      if (root)
        fail_msg("two roots: %llu and %llu", (unsigned long long)root->id,
                 (unsigned long long)h->id);
      root = set[i];
      assert_int_equal(v->grandparent.id, 0);
    } else {
      int p = in_set(set, n, v->parent.id);
      if (p < 0)
        fail_msg("host %llu: parent %llu not in the tree",
                 (unsigned long long)h->id, (unsigned long long)v->parent.id);
      const quilt_msg_tree *pv = view_in(set[p], tree);
      assert_non_null(pv);
      assert_int_equal(v->parent.addr.ip, set[p]->addr.ip);
      assert_int_equal(v->parent.addr.port, set[p]->addr.port);
      assert_int_equal(v->grandparent.id, pv->parent.id);
      int found = 0;
      for (unsigned c = 0; c < pv->nchildren; c++)
        found += pv->children[c].id == h->id;
      if (found != 1)
        fail_msg("host %llu not among its parent %llu's children",
                 (unsigned long long)h->id, (unsigned long long)v->parent.id);
    }
    for (unsigned c = 0; c < v->nchildren; c++) {
      int ci = in_set(set, n, v->children[c].id);
      assert_true(ci >= 0);
      assert_int_equal(view_in(set[ci], tree)->parent.id, h->id);
      assert_int_equal(v->children[c].addr.ip, set[ci]->addr.ip);
    }
    /* Up to the root in fewer than n steps. */
    const bhost *u = h;
    size_t steps = 0;
    while (view_in(u, tree)->parent.id != 0) {
      assert_true(++steps < n);
      u = set[in_set(set, n, view_in(u, tree)->parent.id)];
    }
  }
  assert_non_null(root);
  return root;
}

/* The overlay trees among the primaries in prim[]: one rooted at each
 * one's patch, over all of them. */
static void check_wao(fx *f, bhost *const *prim, size_t n) {
  for (size_t r = 0; r < n; r++) {
    bhost *root = check_views(f, QUILT_WIRE_TREE_WAO | prim[r]->patch, prim, n);
    assert_ptr_equal(root, prim[r]);
  }
}

/* The alive hosts of patch `patch`, into set[]; returns how many. */
static size_t members_of(fx *f, uint32_t patch, bhost **set) {
  size_t n = 0;
  for (size_t i = 0; i < f->nh; i++)
    if (f->h[i].alive && f->h[i].patch == patch)
      set[n++] = &f->h[i];
  return n;
}

static size_t msgs_to(const fx *f, size_t from, const bhost *h, unsigned type) {
  size_t n = 0;
  for (size_t i = from; i < f->nlog; i++)
    if (f->log[i].m.hdr.type == type && quilt_addr_eq(&f->log[i].to, &h->addr))
      n++;
  return n;
}

static int orphan(fx *f, bhost *h, uint32_t tree, uint64_t parent) {
  quilt_msg m;
  hdr(&m, h, QUILT_MSG_ORPHAN);
  m.u.orphan.tree = tree;
  m.u.orphan.epoch = h->view[tree != 0].epoch;
  m.u.orphan.parent = parent;
  return send_dg(f, &m);
}

static int lm_index(const bhost *h, uint64_t id) {
  for (unsigned i = 0; i < h->lm.count; i++)
    if (h->lm.nodes[i].id == id)
      return (int)i;
  return -1;
}

/* Four clusters 20 ms apart, five hosts each within 100 us of its centre:
 * the choice of landmarks takes one per cluster, never two in one; a
 * landmark that leaves is replaced from its cluster; the limit holds. */
static void test_landmarks_far(void **state) {
  (void)state;
  for (int limited = 0; limited < 2; limited++) {
    fx *f = fx_rtts(quilt_rules_default_text());
    if (limited) {
      quilt_bootstrap_del(f->b);
      f->cfg.landmarks_max = 3;
      quilt_bootstrap_callbacks cb = {on_send};
      assert_int_equal(quilt_bootstrap_new(&f->b, &f->cfg, &cb, f), 0);
    }
    static const int32_t cx[4] = {0, 10000, 0, 10000};
    static const int32_t cy[4] = {0, 0, 10000, 10000};
    for (int i = 0; i < 20; i++) {
      bhost *h = add_at(f, 100 + (uint64_t)i, lan((uint32_t)(i % 4) + 1),
                        cx[i % 4] + (i * 7) % 50, cy[i % 4] + (i * 13) % 50);
      join_ok(f, h);
      f->now += 1 * MS;
    }
    assert_int_equal(f->h[0].lm.nodes[0].id, 100); /* the first */
    run_until(f, f->now + 3000 * MS);
    unsigned want = limited ? 3 : 4;
    const bhost *last = &f->h[19];
    assert_int_equal(last->lm.count, want);
    int per[4] = {0};
    for (unsigned i = 0; i < last->lm.count; i++)
      per[(last->lm.nodes[i].id - 100) % 4]++;
    for (int c = 0; c < 4; c++)
      assert_true(per[c] <= 1);
    /* Every host holds the current list. */
    for (int i = 0; i < 20; i++)
      assert_int_equal(f->h[i].lm.epoch, last->lm.epoch);
    assert_true(counters(f).landmark_changes >= 2);

    if (!limited) {
      /* The landmark of cluster 1 leaves: another of cluster 1 follows. */
      bhost *gone = NULL;
      for (unsigned i = 0; i < last->lm.count; i++)
        if ((last->lm.nodes[i].id - 100) % 4 == 1)
          gone = host_by_id(f, last->lm.nodes[i].id);
      assert_non_null(gone);
      assert_int_equal(leave(f, gone), 0);
      assert_int_equal(last->lm.count, 3); /* told at once */
      assert_true(lm_index(last, gone->id) < 0);
      run_until(f, f->now + 2000 * MS);
      assert_int_equal(last->lm.count, 4);
      memset(per, 0, sizeof per);
      for (unsigned i = 0; i < last->lm.count; i++)
        per[(last->lm.nodes[i].id - 100) % 4]++;
      for (int c = 0; c < 4; c++)
        assert_int_equal(per[c], 1);
    }
    fx_del(f);
  }
  /* One LAN: no host is 1 ms from the first: one landmark. */
  fx *f = fx_rtts(quilt_rules_default_text());
  for (int i = 0; i < 10; i++)
    join_ok(f, add_at(f, 1 + (uint64_t)i, lan(1), i * 20, 0));
  run_until(f, f->now + 3000 * MS);
  assert_int_equal(f->h[9].lm.count, 1);
  assert_int_equal(counters(f).landmark_changes, 1);
  fx_del(f);
}

/* A host that answers an old list is sent the current one, once per
 * heartbeat. */
static void test_landmarks_resent(void **state) {
  fx *f = *state;
  f->rtts = 1;
  bhost *a = add_at(f, 1, lan(1), 0, 0);
  bhost *b = add_at(f, 2, lan(1), 5000, 0);
  join_ok(f, a);
  join_ok(f, b);
  run_until(f, f->now + 2000 * MS);
  assert_int_equal(b->lm.count, 2);
  b->lm.epoch--; /* as if the latest LANDMARKS were lost */
  size_t mark = f->nlog;
  assert_int_equal(heartbeat(f, b), 0);
  assert_int_equal(msgs_to(f, mark, b, QUILT_MSG_LANDMARKS), 1);
  mark = f->nlog;
  assert_int_equal(heartbeat(f, b), 0); /* now current */
  assert_int_equal(msgs_to(f, mark, b, QUILT_MSG_LANDMARKS), 0);
}

/* est(): exact (plus the hop) from a landmark, the hop alone between two
 * hosts at one place, the fallback with no landmarks. */
static void test_est(void **state) {
  (void)state;
  fx *f = fx_rtts(quilt_rules_default_text());
  bhost *l0 = add_at(f, 1, lan(1), 0, 0);
  bhost *far = add_at(f, 2, lan(2), 8000, 3000);
  bhost *a = add_at(f, 3, lan(3), 2000, 7000);
  bhost *a2 = add_at(f, 4, lan(3), 2000, 7000);
  bhost *a3 = add_at(f, 5, lan(3), 2000, 7000);
  bhost *all[] = {l0, far, a, a2, a3};
  for (int i = 0; i < 5; i++)
    join_ok(f, all[i]);
  run_until(f, f->now + 3000 * MS);
  assert_true(lm_index(a, l0->id) >= 0);
  uint32_t hop = f->cfg.tree_hop_us;
  for (int i = 1; i < 5; i++) {
    assert_int_equal(quilt_bootstrap_est_us(f->b, l0->id, all[i]->id),
                     rtt_of(l0, all[i]) / 2 + hop);
    assert_int_equal(quilt_bootstrap_est_us(f->b, all[i]->id, l0->id),
                     rtt_of(l0, all[i]) / 2 + hop);
  }
  /* a is the landmark of its place (the lower id); a2 and a3, both at
   * the same place and neither a landmark, have the same vector. */
  assert_true(lm_index(a, a->id) >= 0);
  assert_true(lm_index(a, a2->id) < 0 && lm_index(a, a3->id) < 0);
  assert_int_equal(quilt_bootstrap_est_us(f->b, a2->id, a3->id), hop);
  /* A lower bound (plus the hop) for any pair. */
  for (int i = 0; i < 5; i++)
    for (int j = 0; j < 5; j++)
      assert_true(quilt_bootstrap_est_us(f->b, all[i]->id, all[j]->id) <=
                  rtt_of(all[i], all[j]) / 2 + hop);
  assert_int_equal(quilt_bootstrap_est_us(f->b, a->id, 999), UINT32_MAX);
  fx_del(f);

  /* No landmarks: the RTTs to the server, (a + b) / 4, plus the hop. */
  f = fx_new_rules(quilt_rules_default_text(), 0);
  quilt_bootstrap_del(f->b);
  f->cfg.landmarks_max = 0;
  quilt_bootstrap_callbacks cb = {on_send};
  assert_int_equal(quilt_bootstrap_new(&f->b, &f->cfg, &cb, f), 0);
  bhost *x = add_host(f, 1, wan(1));
  bhost *y = add_host(f, 2, lan(1));
  join_ok(f, x);
  join_ok(f, y);
  assert_int_equal(x->lm.count, 0);
  assert_int_equal(quilt_bootstrap_est_us(f->b, x->id, y->id),
                   (x->euid.rtt_us + y->euid.rtt_us) / 4 + hop);
  fx_del(f);
}

/* A tree patch: every member gets a view; the views form one tree over
 * all members, degree bounds from the uplinks, kept; a member in the
 * middle of two clusters' worth of hosts is the root. */
static void test_tree_patch(void **state) {
  (void)state;
  fx *f = fx_rtts(tree_rules);
  enum { N = 60 };
  bhost *set[N];
  for (int i = 0; i < N; i++) {
    uint32_t bw = 100000u + (uint32_t)(i * 37 % 10) * 100000u; /* 1..10 */
    int32_t x = (i % 3) * 6000 + (i * 31) % 400;
    bhost *h = add_at(f, 1 + (uint64_t)i, treeh(bw), x, (i * 17) % 300);
    join_ok(f, h);
    assert_int_equal(h->protocol, proto_id("tree"));
    f->now += 2 * MS;
  }
  run_until(f, f->now + 4000 * MS);
  size_t n = members_of(f, f->h[0].patch, set);
  assert_int_equal(n, N);
  bhost *root = check_views(f, f->h[0].patch, set, n);
  /* The 1-median of three clusters on a line is in the middle one. */
  assert_true(root->x >= 6000 && root->x < 7000);
  quilt_bootstrap_counters k = counters(f);
  assert_true(k.tree_builds >= 1);
  assert_true(k.tree_msgs >= N);
  assert_int_equal(k.refused, 0);
  /* Not in another tree; unknown hosts are in none. */
  uint64_t par;
  assert_int_equal(quilt_bootstrap_tree_parent(f->b, 12345, 1, &par),
                   QUILT_ERR_NOT_FOUND);
  assert_int_equal(quilt_bootstrap_tree_parent(f->b, f->h[0].patch, 999, &par),
                   QUILT_ERR_NOT_FOUND);
  /* Quiet: the views stay as they are, and still hold. */
  size_t mark = f->nlog;
  run_until(f, f->now + 3000 * MS);
  check_views(f, f->h[0].patch, set, n);
  (void)mark;
  fx_del(f);
}

/* The overlay tree: one node per patch, the views to the primaries naming
 * the other primaries; a failed primary's successor takes its place. */
static void test_wao_tree(void **state) {
  (void)state;
  fx *f = fx_rtts(quilt_rules_default_text());
  enum { P = 8, PER = 3 };
  for (int d = 0; d < P; d++)
    for (int i = 0; i < PER; i++) {
      bhost *h = add_at(f, 100 + (uint64_t)(d * PER + i), lan(1 + (uint32_t)d),
                        d * 3000 + i * 10, (d % 2) * 5000);
      h->euid.bw_kbps = 300000u - (uint32_t)i * 50000u; /* [0] primary */
      join_ok(f, h);
    }
  run_until(f, f->now + 3000 * MS);
  bhost *prim[P];
  for (int d = 0; d < P; d++) {
    prim[d] = &f->h[d * PER];
    assert_int_equal(prim[d]->role, QUILT_ROLE_PRIMARY);
    for (int i = 1; i < PER; i++)
      assert_int_equal(f->h[d * PER + i].nwao, 0); /* primaries only */
  }
  check_wao(f, prim, P);
  uint64_t par;
  uint32_t t0 = QUILT_WIRE_TREE_WAO | prim[0]->patch;
  assert_int_equal(quilt_bootstrap_tree_parent(f->b, t0, f->h[1].id, &par),
                   QUILT_ERR_NOT_FOUND); /* a backup */
  assert_int_equal(quilt_bootstrap_tree_parent(f->b, 0, prim[0]->id, &par),
                   QUILT_ERR_NOT_FOUND); /* no tree 0 */

  /* Patch 3's primary fails: the backup takes over, and its place. */
  bhost *old = prim[3];
  old->alive = 0;
  uint64_t lim = f->now + 2000 * MS;
  run_until_failovers(f, 1, lim);
  run_until(f, f->now + 100 * MS);
  prim[3] = &f->h[3 * PER + 1];
  assert_int_equal(prim[3]->role, QUILT_ROLE_PRIMARY);
  check_wao(f, prim, P);
  assert_int_equal(quilt_bootstrap_tree_parent(f->b, t0, old->id, &par),
                   QUILT_ERR_NOT_FOUND);
  fx_del(f);
}

/* The server of a tree patch with every degree bound 2. */
static fx *tree_fx(int n, int improve) {
  fx *f = fx_rtts(tree_rules);
  quilt_bootstrap_del(f->b);
  if (!improve)
    f->cfg.tree_improve_rounds = 0; /* keep what the repair did */
  quilt_bootstrap_callbacks cb = {on_send};
  assert_int_equal(quilt_bootstrap_new(&f->b, &f->cfg, &cb, f), 0);
  for (int i = 0; i < n; i++) {
    join_ok(f, add_at(f, 1 + (uint64_t)i, treeh(100000), (i % 4) * 3000,
                      (i / 4) * 500));
    f->now += 1 * MS;
  }
  run_until(f, f->now + 5000 * MS);
  return f;
}

/* An interior node of the tree whose parent is not the root, and its
 * parent; a plain member, not a landmark (whose loss would change the
 * landmarks, and so rebuild the tree). */
static bhost *interior(fx *f, bhost **set, size_t n, bhost **parent) {
  for (size_t i = 0; i < n; i++) {
    const quilt_msg_tree *v = &set[i]->view[1];
    if (set[i]->role != QUILT_ROLE_MEMBER || lm_index(set[i], set[i]->id) >= 0)
      continue;
    if (v->nchildren > 0 && v->parent.id != 0 && v->grandparent.id != 0) {
      *parent = host_by_id(f, v->parent.id);
      return set[i];
    }
  }
  fail_msg("no interior node");
  return NULL;
}

/* A member that expires leaves the tree; its children are re-attached,
 * the heaviest to the grandparent (which has the slot the dead one had),
 * and told at once. */
static void test_tree_member_expiry(void **state) {
  (void)state;
  fx *f = tree_fx(30, 0);
  bhost *set[64];
  uint32_t patch = f->h[0].patch;
  size_t n = members_of(f, patch, set);
  check_views(f, patch, set, n);
  bhost *g;
  bhost *v = interior(f, set, n, &g);
  quilt_msg_tree old = v->view[1];
  uint64_t removes = counters(f).tree_removes;
  v->alive = 0;
  size_t mark = f->nlog;
  uint64_t builds = counters(f).tree_builds;
  run_until(f, v->last_hb_ns + 4000 * MS);
  assert_int_equal(counters(f).tree_builds, builds); /* repaired in place */
  assert_int_equal(counters(f).hosts, 29);
  assert_true(counters(f).tree_removes > removes);
  n = members_of(f, patch, set);
  check_views(f, patch, set, n);
  int to_gp = 0;
  for (unsigned c = 0; c < old.nchildren; c++) {
    bhost *ch = host_by_id(f, old.children[c].id);
    assert_true(msgs_to(f, mark, ch, QUILT_MSG_TREE) >= 1); /* told */
    assert_true(ch->view[1].parent.id != v->id);
    to_gp += ch->view[1].parent.id == g->id;
  }
  assert_true(to_gp >= 1);
  fx_del(f);
}

/* ORPHAN naming the right parent takes it out of the tree (not out of
 * the patch) and re-attaches its children at once; naming another gets
 * the host its current view again; the parent comes back as a leaf when
 * it heartbeats; a root named is replaced by a rebuild. */
static void test_orphan(void **state) {
  (void)state;
  fx *f = tree_fx(24, 0);
  bhost *set[64];
  uint32_t patch = f->h[0].patch;
  size_t n = members_of(f, patch, set);
  bhost *p;
  bhost *c = interior(f, set, n, &p); /* c's parent p is not the root */
  c = host_by_id(f, p->view[1].children[0].id);
  assert_int_equal(c->view[1].parent.id, p->id);
  uint64_t orphans = counters(f).orphans;

  /* Someone else named: the view again, nothing changed. */
  quilt_msg_tree before = c->view[1];
  size_t mark = f->nlog;
  assert_int_equal(orphan(f, c, patch, p->view[1].parent.id), 0);
  assert_int_equal(msgs_to(f, mark, c, QUILT_MSG_TREE), 1);
  assert_int_equal(f->nlog, mark + 1);
  assert_int_equal(c->view[1].parent.id, before.parent.id);
  assert_int_equal(counters(f).orphans, orphans + 1);

  /* The right parent: out of the tree, children re-attached. */
  mark = f->nlog;
  assert_int_equal(orphan(f, c, patch, p->id), 0);
  uint64_t par;
  assert_int_equal(quilt_bootstrap_tree_parent(f->b, patch, p->id, &par),
                   QUILT_ERR_NOT_FOUND);
  assert_true(c->view[1].parent.id != p->id);
  assert_true(msgs_to(f, mark, c, QUILT_MSG_TREE) >= 1);
  assert_int_equal(counters(f).hosts, 24); /* still a member */
  bhost *rest[64];
  size_t m = 0;
  for (size_t i = 0; i < n; i++)
    if (set[i] != p)
      rest[m++] = set[i];
  check_views(f, patch, rest, m);

  /* p heartbeats: back in, as a leaf. */
  assert_int_equal(heartbeat(f, p), 0);
  assert_int_equal(quilt_bootstrap_tree_parent(f->b, patch, p->id, &par), 0);
  assert_true(par != 0);
  assert_int_equal(p->view[1].nchildren, 0);
  assert_int_equal(p->view[1].parent.id, par);
  check_views(f, patch, set, n);

  /* The root named by its child: a new tree around another root. */
  bhost *root = NULL;
  for (size_t i = 0; i < n; i++)
    if (set[i]->view[1].parent.id == 0)
      root = set[i];
  bhost *rc = host_by_id(f, root->view[1].children[0].id);
  uint64_t builds = counters(f).tree_builds;
  assert_int_equal(orphan(f, rc, patch, root->id), 0);
  assert_int_equal(counters(f).tree_builds, builds + 1);
  assert_int_equal(quilt_bootstrap_tree_parent(f->b, patch, root->id, &par),
                   QUILT_ERR_NOT_FOUND);
  m = 0;
  for (size_t i = 0; i < n; i++)
    if (set[i] != root)
      rest[m++] = set[i];
  assert_true(check_views(f, patch, rest, m) != root);

  /* From a host the server does not know: refused. */
  uint64_t refused = counters(f).refused;
  bhost *stranger = add_host(f, 777, treeh(100000));
  assert_true(orphan(f, stranger, patch, root->id) < 0);
  assert_int_equal(counters(f).refused, refused + 1);
  fx_del(f);
}

/* Only a source patch roots an overlay tree: with no primary saying its
 * patch publishes there is none; once one says so (QUILT_HB_SOURCE), the
 * tree rooted at its patch spans every primary, and no other tree exists;
 * it stays while the patch lives. */
static void test_wao_sources_only(void **state) {
  (void)state;
  fx *f = fx_rtts(quilt_rules_default_text());
  quilt_bootstrap_del(f->b);
  f->cfg.wao_eager_patches = 0; /* no group small enough to root a tree
                                   at every patch (below) */
  quilt_bootstrap_callbacks cb = {on_send};
  assert_int_equal(quilt_bootstrap_new(&f->b, &f->cfg, &cb, f), 0);
  f->silent_sources = 1;
  enum { P = 5 };
  bhost *prim[P];
  for (int d = 0; d < P; d++) {
    prim[d] = add_at(f, 100 + (uint64_t)d, lan(1 + (uint32_t)d), d * 3000, 0);
    join_ok(f, prim[d]);
  }
  run_until(f, f->now + 3000 * MS);
  uint64_t par;
  for (int d = 0; d < P; d++) {
    assert_int_equal(prim[d]->role, QUILT_ROLE_PRIMARY);
    assert_int_equal(prim[d]->nwao, 0);
    assert_int_equal(quilt_bootstrap_tree_parent(
                         f->b, QUILT_WIRE_TREE_WAO | prim[d]->patch,
                         prim[d]->id, &par),
                     QUILT_ERR_NOT_FOUND);
  }
  assert_int_equal(counters(f).wao_sources, 0);

  /* prim[2]'s patch starts publishing. */
  f->silent_sources = 0;
  assert_int_equal(heartbeat(f, prim[2]), 0);
  f->silent_sources = 1;
  run_until(f, f->now + 2000 * MS);
  assert_int_equal(counters(f).wao_sources, 1);
  uint32_t t = QUILT_WIRE_TREE_WAO | prim[2]->patch;
  for (int d = 0; d < P; d++) {
    assert_int_equal(prim[d]->nwao, 1);
    assert_int_equal(prim[d]->wao[0].tree, t);
    assert_int_equal(
        quilt_bootstrap_tree_parent(f->b, t, prim[d]->id, &par) == 0, 1);
    if (d != 2)
      assert_int_equal(quilt_bootstrap_tree_parent(
                           f->b, QUILT_WIRE_TREE_WAO | prim[d]->patch,
                           prim[d]->id, &par),
                       QUILT_ERR_NOT_FOUND);
  }
  /* Its later heartbeats without the flag do not take the tree away. */
  run_until(f, f->now + 3000 * MS);
  assert_int_equal(quilt_bootstrap_tree_parent(f->b, t, prim[0]->id, &par), 0);
  char why[256];
  assert_int_equal(quilt_bootstrap_check(f->b, why, sizeof why), 0);
  fx_del(f);

  /* With wao_eager_patches 4 (the default): the first four patches root a
   * tree each, source or not, and keep it once the group is larger; the
   * fifth does not. */
  f = fx_rtts(quilt_rules_default_text());
  f->silent_sources = 1;
  for (int d = 0; d < P; d++) {
    prim[d] = add_at(f, 100 + (uint64_t)d, lan(1 + (uint32_t)d), d * 3000, 0);
    join_ok(f, prim[d]);
    run_until(f, f->now + 300 * MS);
  }
  run_until(f, f->now + 3000 * MS);
  for (int d = 0; d < P; d++)
    assert_int_equal(quilt_bootstrap_tree_parent(
                         f->b, QUILT_WIRE_TREE_WAO | prim[d]->patch,
                         prim[d]->id, &par),
                     d < 4 ? 0 : QUILT_ERR_NOT_FOUND);
  assert_int_equal(counters(f).wao_sources, 0);
  assert_int_equal(quilt_bootstrap_check(f->b, why, sizeof why), 0);
  fx_del(f);
}

/* ORPHAN in an overlay tree: the patch whose primary was named is out of
 * every overlay tree of the group (its own too) until that primary
 * heartbeats again. */
static void test_wao_orphan(void **state) {
  (void)state;
  fx *f = fx_rtts(quilt_rules_default_text());
  enum { P = 6 };
  bhost *prim[P];
  for (int d = 0; d < P; d++) {
    prim[d] = add_at(f, 100 + (uint64_t)d, lan(1 + (uint32_t)d), d * 4000, 0);
    join_ok(f, prim[d]);
  }
  run_until(f, f->now + 3000 * MS);
  check_wao(f, prim, P);
  uint32_t t = 0;
  bhost *c = NULL, *p = NULL;
  for (int r = 0; r < P && !c; r++) {
    t = QUILT_WIRE_TREE_WAO | prim[r]->patch;
    for (int d = 0; d < P && !c; d++) {
      const quilt_msg_tree *v = view_in(prim[d], t);
      if (v->parent.id != 0 && v->grandparent.id != 0) {
        c = prim[d];
        p = host_by_id(f, v->parent.id);
      }
    }
  }
  assert_non_null(c);
  assert_int_equal(orphan(f, c, t, p->id), 0);
  uint64_t par;
  for (int r = 0; r < P; r++)
    assert_int_equal(
        quilt_bootstrap_tree_parent(f->b, QUILT_WIRE_TREE_WAO | prim[r]->patch,
                                    p->id, &par),
        QUILT_ERR_NOT_FOUND);
  assert_int_equal(quilt_bootstrap_tree_parent(
                       f->b, QUILT_WIRE_TREE_WAO | p->patch, c->id, &par),
                   QUILT_ERR_NOT_FOUND); /* p's own tree is gone */
  bhost *rest[P];
  size_t m = 0;
  for (int d = 0; d < P; d++)
    if (prim[d] != p)
      rest[m++] = prim[d];
  check_wao(f, rest, m);
  assert_int_equal(heartbeat(f, p), 0);
  assert_int_equal(quilt_bootstrap_tree_parent(f->b, t, p->id, &par), 0);
  check_wao(f, prim, P);
  fx_del(f);
}

/* A lost TREE is made good by the periodic re-send. */
static void test_tree_refresh(void **state) {
  (void)state;
  fx *f = tree_fx(24, 0);
  bhost *set[64];
  uint32_t patch = f->h[0].patch;
  size_t n = members_of(f, patch, set);
  bhost *p;
  bhost *c = interior(f, set, n, &p);
  c = host_by_id(f, p->view[1].children[0].id);
  c->lose_trees = 1000; /* every TREE lost for a while */
  assert_int_equal(orphan(f, c, patch, p->id), 0);
  run_until(f, f->now + 1500 * MS); /* p back in, as a leaf */
  c->lose_trees = 0;
  assert_int_equal(c->view[1].parent.id, p->id); /* stale */
  run_until(f, f->now + f->cfg.tree_refresh_ns + 100 * MS);
  check_views(f, patch, set, n);
  /* And a view that did not change is re-sent every tree_refresh_ns. */
  size_t mark = f->nlog;
  run_until(f, f->now + 2 * f->cfg.tree_refresh_ns);
  assert_true(msgs_to(f, mark, c, QUILT_MSG_TREE) >= 2);
  fx_del(f);
}

/* Work per event: a join into a large tree patch sends a handful of
 * datagrams (its PATCH_INFO and LANDMARKS, the views of the new leaf and
 * its parent); rebuilds stay at most one per tree_rebuild_ns, plus the
 * first; a steady heartbeat sends nothing. */
static void test_tree_bounded_work(void **state) {
  (void)state;
  fx *f = fx_rtts(tree_rules);
  enum { N = 250 };
  size_t most = 0;
  uint64_t t0 = f->now;
  for (int i = 0; i < N; i++) {
    bhost *h = add_at(f, 1 + (uint64_t)i, treeh(100000u * (1 + i % 4)),
                      (i % 5) * 4000 + i % 97, (i % 7) * 300);
    size_t mark = f->nlog;
    join_ok(f, h);
    /* From the fifth on: the first four (uplinks 1, 2, 3, 4 x 100 Mbit/s)
     * promote a much better primary twice, each time telling every
     * member. */
    if (i >= 4 && f->nlog - mark > most)
      most = f->nlog - mark;
    run_until(f, f->now + 5 * MS);
  }
  run_until(f, f->now + 3000 * MS);
  printf("bootstrap: joins into a tree of %d: at most %zu datagrams per "
         "join, %llu builds in %.1f s\n",
         N, most, (unsigned long long)counters(f).tree_builds,
         (double)(f->now - t0) / 1e9);
  /* PATCH_INFO, up to k PATCH_INFOs to the representatives, LANDMARKS,
   * two views, and an overlay view when the patch is new. */
  assert_true(most <= 6);
  uint64_t secs = (f->now - t0) / (1000 * MS) + 1;
  assert_true(counters(f).tree_builds <= secs + 2);
  bhost *set[N];
  size_t n = members_of(f, f->h[0].patch, set);
  assert_int_equal(n, N);
  check_views(f, f->h[0].patch, set, n);
  size_t mark = f->nlog;
  assert_int_equal(heartbeat(f, &f->h[N / 2]), 0);
  assert_int_equal(f->nlog, mark);
  fx_del(f);
}

/* A restarted server builds its trees again from the heartbeats; the
 * hosts take the new views (newer epochs: check() fails on any that goes
 * back). */
static void test_tree_restart(void **state) {
  (void)state;
  fx *f = tree_fx(16, 1);
  bhost *set[64];
  uint32_t patch = f->h[0].patch;
  size_t n = members_of(f, patch, set);
  check_views(f, patch, set, n);
  uint32_t epoch = f->h[0].view[1].epoch;
  quilt_bootstrap_del(f->b);
  f->cfg.incarnation++;
  quilt_bootstrap_callbacks cb = {on_send};
  assert_int_equal(quilt_bootstrap_new(&f->b, &f->cfg, &cb, f), 0);
  run_until(f, f->now + 5000 * MS);
  assert_int_equal(counters(f).hosts, 16);
  assert_int_equal(f->h[0].patch, patch);
  check_views(f, patch, set, n);
  assert_true(f->h[0].view[1].epoch > epoch);
  fx_del(f);
}

/* Trees under churn (fewer steps with QUILT_TEST_SCALE=small): two
 * groups, tree patches split at 12, ipmc patches for the overlay trees;
 * hosts join, die, leave, come back, change uplink
 * (degree bounds up and down) and move patch (region), send ORPHANs right
 * and wrong; check() -- omni's invariants and exact spans included --
 * after every step, and at the end every view the hosts hold agrees. */
static void test_tree_churn(void **state) {
  (void)state;
  fx *f = fx_rtts("ipmc == yes -> ipmc by domain\n"
                  "* -> tree by region max 12\n");
  enum { N = 90 };
  quilt_rng r;
  quilt_rng_init(&r, 77, 7);
  uint32_t g1 = f->group, g2 = quilt_group_id("churn-2");
  for (int i = 0; i < N; i++) {
    f->group = i % 3 == 2 ? g2 : g1;
    quilt_euid e = i % 4 == 0 ? lan((uint32_t)(i % 8)) : treeh(0);
    e.region = (uint32_t)(i % 2);
    e.bw_kbps = 50000u + quilt_rng_below(&r, 900000);
    bhost *h =
        add_at(f, 1 + (uint64_t)i, e, (int32_t)quilt_rng_below(&r, 20000),
               (int32_t)quilt_rng_below(&r, 20000));
    join_ok(f, h);
    run_until(f, f->now + 3 * MS);
  }
  const char *scale = getenv("QUILT_TEST_SCALE");
  int steps = scale && strcmp(scale, "small") == 0 ? 150 : 400;
  for (int step = 0; step < steps; step++) {
    bhost *h = &f->h[quilt_rng_below(&r, N)];
    switch (quilt_rng_below(&r, 8)) {
    case 0: /* dies */
      h->alive = 0;
      break;
    case 1: /* leaves or comes back */
      if (h->alive)
        assert_int_equal(leave(f, h), 0);
      else if (join(f, h) != 0)
        fail_msg("rejoin of %llu refused", (unsigned long long)h->id);
      break;
    case 2: /* another uplink: another degree bound */
      h->euid.bw_kbps = 50000u + quilt_rng_below(&r, 3000000);
      if (h->alive)
        assert_int_equal(heartbeat(f, h), 0);
      break;
    case 3: /* another region: another patch */
      if (!h->euid.ipmc && h->alive) {
        h->euid.region ^= 1;
        assert_int_equal(join(f, h), 0);
      }
      break;
    case 4: /* ORPHAN naming its parent */
    case 5:
      if (h->alive && h->ntree[1] && h->view[1].parent.id)
        assert_int_equal(orphan(f, h, h->view[1].tree, h->view[1].parent.id),
                         0);
      if (h->alive && h->nwao) {
        const quilt_msg_tree *v = &h->wao[quilt_rng_below(&r, h->nwao)];
        if (v->parent.id)
          assert_int_equal(orphan(f, h, v->tree, v->parent.id), 0);
      }
      break;
    case 6: /* ORPHAN naming anyone */
      if (h->alive && h->ntree[1])
        assert_int_equal(
            orphan(f, h, h->view[1].tree, 1 + quilt_rng_below(&r, N)), 0);
      break;
    default:
      break;
    }
    run_until(f, f->now + quilt_rng_below(&r, 300) * MS);
  }
  /* Quiet: the rest come back (heartbeats), and every view agrees. */
  for (int i = 0; i < N; i++)
    if (!f->h[i].alive && f->h[i].joined) {
      f->h[i].alive = 1;
      f->h[i].next_hb_ns = f->now + 1 * MS;
    }
  run_until(f, f->now + 2 * f->cfg.tree_refresh_ns);
  quilt_bootstrap_counters k = counters(f);
  printf("bootstrap churn: %llu builds, %llu inserts, %llu removes, %llu "
         "orphans, %llu TREE, %llu landmark lists\n",
         (unsigned long long)k.tree_builds, (unsigned long long)k.tree_inserts,
         (unsigned long long)k.tree_removes, (unsigned long long)k.orphans,
         (unsigned long long)k.tree_msgs,
         (unsigned long long)k.landmark_changes);
  assert_true(k.tree_removes > 0 && k.orphans > 0);
  for (size_t p = 0; p < quilt_bootstrap_patch_count(f->b); p++) {
    quilt_bootstrap_patch bp;
    quilt_bootstrap_patch_get(f->b, p, &bp);
    if (bp.protocol != (unsigned)proto_id("tree"))
      continue;
    bhost *set[N];
    size_t n = members_of(f, bp.patch_id, set);
    assert_int_equal(n, bp.members);
    check_views(f, bp.patch_id, set, n);
  }
  for (int gi = 0; gi < 2; gi++) {
    bhost *prim[N];
    size_t n = 0;
    for (size_t p = 0; p < quilt_bootstrap_patch_count(f->b); p++) {
      quilt_bootstrap_patch bp;
      quilt_bootstrap_patch_get(f->b, p, &bp);
      if (bp.group == (gi ? g2 : g1))
        prim[n++] = host_by_id(f, bp.reps[0]);
    }
    check_wao(f, prim, n);
  }
  fx_del(f);
}

/* ---- regions derived from the landmark vectors ---- */

/* A host that leaves its region to the server: open, no multicast. */
static quilt_euid noreg(void) {
  return mk_euid(QUILT_NAT_NONE, 0, 0, 0, 20000, 20000);
}

/* Cluster centres 40 ms (RTT) apart in the plane, 80 ms across. */
static const int32_t ccx[4] = {0, 20000, 0, 20000};
static const int32_t ccy[4] = {0, 0, 20000, 20000};

static int cluster_of(const bhost *h) {
  return (h->x >= 10000) + 2 * (h->y >= 10000);
}

/* per hosts in each of clusters c0..c0+nc-1, joined in turn (host i in
 * cluster c0 + i % nc, so that the patch they join first mixes them),
 * each within 100 us of its centre; ids from id0, 1 ms apart. */
static void join_clusters(fx *f, uint64_t id0, int c0, int nc, int per) {
  for (int i = 0; i < nc * per; i++) {
    int c = c0 + i % nc;
    bhost *h = add_at(f, id0 + (uint64_t)i, noreg(), ccx[c] + (i * 7) % 50,
                      ccy[c] + (i * 13) % 50);
    join_ok(f, h);
    f->now += 1 * MS;
  }
}

static quilt_bootstrap_host host_info(const fx *f, const bhost *h) {
  quilt_bootstrap_host hi;
  assert_int_equal(quilt_bootstrap_host_get(f->b, h->id, &hi), 0);
  assert_int_equal(hi.patch_id, h->patch); /* and the host was told */
  return hi;
}

/* The hosts that leave their region to the server (and have no IPMC):
 * those of one cluster share one region, the region of the cluster's
 * landmark, derived; clusters differ; no patch holds two clusters.
 * Returns the number of patches they are in. */
static size_t expect_regions(fx *f, uint32_t region[4]) {
  uint32_t seen_patch[MAX_HOSTS];
  int seen_cluster[MAX_HOSTS];
  size_t npatch = 0;
  memset(region, 0, 4 * sizeof region[0]);
  for (size_t i = 0; i < f->nh; i++) {
    const bhost *h = &f->h[i];
    if (!h->alive || h->euid.region != 0 || h->euid.ipmc)
      continue;
    quilt_bootstrap_host hi = host_info(f, h);
    int c = cluster_of(h);
    if (!hi.region_derived)
      fail_msg("host %llu: region %u not derived", (unsigned long long)h->id,
               hi.euid.region);
    assert_int_equal(hi.own_region, 0);
    if (region[c] == 0)
      region[c] = hi.euid.region;
    if (hi.euid.region != region[c])
      fail_msg("host %llu of cluster %d in region %u, the cluster's is %u",
               (unsigned long long)h->id, c, hi.euid.region, region[c]);
    size_t k = 0;
    while (k < npatch && seen_patch[k] != h->patch)
      k++;
    if (k == npatch) {
      seen_patch[npatch] = h->patch;
      seen_cluster[npatch++] = c;
    } else if (seen_cluster[k] != c) {
      fail_msg("patch %u holds clusters %d and %d", h->patch, seen_cluster[k],
               c);
    }
  }
  for (int c = 0; c < 4; c++)
    for (int d = 0; d < c; d++)
      assert_true(region[c] == 0 || region[c] != region[d]);
  /* Each region is a landmark's: the one in its cluster. */
  const bhost *any = NULL;
  for (size_t i = 0; i < f->nh && !any; i++)
    if (f->h[i].alive)
      any = &f->h[i];
  assert_non_null(any);
  for (unsigned i = 0; i < any->lm.count; i++) {
    const bhost *l = host_by_id(f, any->lm.nodes[i].id);
    assert_non_null(l);
    int c = cluster_of(l);
    if (region[c] != 0)
      assert_int_equal(region[c], quilt_lm_region_id(l->id, 0));
  }
  return npatch;
}

/* Three clusters, one landmark near each: the hosts join in the patch of
 * region 0 (no vector yet) and end up in three regions and, by region,
 * three patches; for unicast and mesh patches. */
static void test_region_clusters(void **state) {
  (void)state;
  static const char *const rules[] = {"* -> unicast by region\n",
                                      "* -> mesh by region\n"};
  for (int r = 0; r < 2; r++) {
    fx *f = fx_rtts(rules[r]);
    join_clusters(f, 1, 0, 3, 8);
    assert_int_equal(quilt_bootstrap_patch_count(f->b), 1);
    quilt_bootstrap_host hi = host_info(f, &f->h[5]);
    assert_int_equal(hi.euid.region, 0);
    assert_false(hi.region_derived);
    uint64_t t0 = f->now;
    /* Not before the landmark list has been stable for region_settle. */
    run_until(f, t0 + f->cfg.region_settle_ns);
    assert_int_equal(counters(f).region_moves, 0);
    assert_int_equal(f->h[0].lm.count, 3);
    run_until(f, t0 + 8000 * MS);
    uint32_t region[4];
    assert_int_equal(expect_regions(f, region), 3);
    assert_int_equal(quilt_bootstrap_patch_count(f->b), 3);
    quilt_bootstrap_counters k = counters(f);
    /* The first patch mixed the clusters a third each: every host moved
     * (once), none waited for the rate limit. */
    assert_int_equal(k.region_moves, 24);
    assert_int_equal(k.region_rekeys, 0);
    for (size_t i = 0; i < f->nh; i++)
      assert_true(host_info(f, &f->h[i]).moved_ns > t0);
    /* Quiet from then on. */
    run_until(f, f->now + 20000 * MS);
    assert_int_equal(counters(f).region_moves, 24);
    assert_int_equal(expect_regions(f, region), 3);
    fx_del(f);
  }
}

/* A host with a region of its own is never moved, and neither is one
 * whose patch is not keyed by region (it still gets its region). */
static void test_region_own(void **state) {
  (void)state;
  fx *f = fx_rtts("ipmc == yes -> ipmc by domain\n* -> unicast by region\n");
  join_clusters(f, 1, 0, 3, 4);
  bhost *own =
      add_at(f, 100, mk_euid(QUILT_NAT_NONE, 0, 0, 7, 20000, 20000), 30, 30);
  bhost *lan5 = add_at(f, 101, mk_euid(QUILT_NAT_NONE, 1, 5, 0, 500, 100000),
                       ccx[1] + 20, ccy[1] + 20);
  join_ok(f, own);
  join_ok(f, lan5);
  uint32_t own_patch = own->patch, lan_patch = lan5->patch;
  run_until(f, f->now + 10000 * MS);
  uint32_t region[4];
  assert_int_equal(expect_regions(f, region), 3);
  assert_int_equal(quilt_bootstrap_patch_count(f->b), 5);
  quilt_bootstrap_host hi = host_info(f, own);
  assert_int_equal(own->patch, own_patch);
  assert_int_equal(hi.euid.region, 7);
  assert_int_equal(hi.own_region, 7);
  assert_false(hi.region_derived);
  assert_int_equal(hi.moved_ns, 0);
  assert_int_equal(patch_by_id(f, own_patch).members, 1);
  hi = host_info(f, lan5);
  assert_int_equal(lan5->patch, lan_patch);
  assert_true(hi.region_derived);
  assert_int_equal(hi.euid.region, region[1]);
  assert_int_equal(hi.moved_ns, 0);
  assert_int_equal(counters(f).region_moves, 12);
  fx_del(f);
}

/* A host moves at most once per region_move_min: one that moved to its
 * region's patch and then finds itself in another cluster waits out the
 * rest of the ten seconds; it also keeps its region while it is only
 * slightly nearer another landmark (hysteresis).  Three landmarks at most,
 * so that a host between the clusters does not become a fourth. */
static void test_region_rate_limited(void **state) {
  (void)state;
  fx *f = fx_rtts("* -> unicast by region\n");
  quilt_bootstrap_del(f->b);
  f->cfg.landmarks_max = 3;
  quilt_bootstrap_callbacks cb = {on_send};
  assert_int_equal(quilt_bootstrap_new(&f->b, &f->cfg, &cb, f), 0);
  join_clusters(f, 1, 0, 3, 4);
  run_until(f, f->now + 6000 * MS);
  uint32_t region[4];
  assert_int_equal(expect_regions(f, region), 3);
  /* A host of cluster 0 that is not a landmark. */
  bhost *h = NULL;
  for (size_t i = 0; i < f->nh && !h; i++)
    if (cluster_of(&f->h[i]) == 0 && lm_index(&f->h[i], f->h[i].id) < 0)
      h = &f->h[i];
  assert_non_null(h);
  uint64_t moved = host_info(f, h).moved_ns;
  assert_true(moved > 0 &&
              f->now < moved + f->cfg.region_move_min_ns - 2000 * MS);
  uint32_t old_patch = h->patch;
  /* It goes to cluster 1 (a laptop on another network). */
  h->x = ccx[1] + 5;
  h->y = ccy[1] + 5;
  run_until(f, moved + f->cfg.region_move_min_ns - 100 * MS);
  assert_int_equal(h->patch, old_patch);
  assert_int_equal(host_info(f, h).euid.region, region[0]);
  run_until(f, moved + f->cfg.region_move_min_ns + 1500 * MS);
  assert_true(h->patch != old_patch);
  quilt_bootstrap_host hi = host_info(f, h);
  assert_int_equal(hi.euid.region, region[1]);
  assert_true(hi.moved_ns >= moved + f->cfg.region_move_min_ns);
  assert_int_equal(expect_regions(f, region), 3);
  /* Now 42.2 ms from cluster 1's landmark and 38.2 from 0's and 2's: it
   * stays in region 1 (an eighth of slack, 4.8 ms)... */
  moved = hi.moved_ns;
  h->x = 9000;
  h->y = 10000;
  run_until(f, moved + 2 * f->cfg.region_move_min_ns);
  hi = host_info(f, h);
  assert_int_equal(hi.euid.region, region[1]);
  assert_int_equal(hi.moved_ns, moved);
  /* ... and moves, once, when clearly nearer another (50.2 against
   * 30.2 ms; 0 and 2 tie, the lower landmark id wins). */
  h->x = 5000;
  run_until(f, f->now + 3000 * MS);
  hi = host_info(f, h);
  assert_true(hi.euid.region == region[0] || hi.euid.region == region[2]);
  assert_true(hi.moved_ns > moved);
  assert_int_equal(counters(f).region_moves, 12 + 2);
  fx_del(f);
}

/* No storm: with region_moves_per_sec = 20 a mixed start moves the hosts
 * one per tick, at most 20 a second; a landmark that leaves and is
 * replaced by another host of its cluster, or a new cluster with a
 * landmark of its own, moves no one (the patch takes the region whole). */
static void test_region_no_storm(void **state) {
  (void)state;
  fx *f = fx_rtts("* -> unicast by region max 10\n");
  quilt_bootstrap_del(f->b);
  f->cfg.region_moves_per_sec = 20;
  quilt_bootstrap_callbacks cb = {on_send};
  assert_int_equal(quilt_bootstrap_new(&f->b, &f->cfg, &cb, f), 0);
  join_clusters(f, 1, 0, 3, 20);
  assert_int_equal(quilt_bootstrap_patch_count(f->b), 6);
  run_until(f, f->now + 12000 * MS);
  uint32_t region[4];
  assert_int_equal(expect_regions(f, region), 6); /* two of 10 per cluster */
  assert_int_equal(counters(f).region_moves, 60);
  assert_true(counters(f).region_deferred > 0);
  assert_int_equal(f->most_moves_per_event, 1);
  assert_int_equal(f->nmove_at, 60);
  for (size_t i = 0; i + 20 < f->nmove_at; i++)
    assert_true(f->move_at[i + 20] - f->move_at[i] >= 1000 * MS);
  printf("bootstrap: 60 hosts to their regions in %.2f s at 20 moves/s\n",
         (double)(f->move_at[59] - f->move_at[0]) / 1e9);

  /* The landmark of cluster 1 leaves; the choice of landmarks takes
   * another host of cluster 1. */
  bhost *lm1 = NULL;
  for (unsigned i = 0; i < f->h[0].lm.count; i++) {
    bhost *l = host_by_id(f, f->h[0].lm.nodes[i].id);
    if (cluster_of(l) == 1)
      lm1 = l;
  }
  assert_non_null(lm1);
  uint32_t patch_of[MAX_HOSTS];
  for (size_t i = 0; i < f->nh; i++)
    patch_of[i] = f->h[i].patch;
  uint64_t rekeys = counters(f).region_rekeys;
  assert_int_equal(leave(f, lm1), 0);
  run_until(f, f->now + 6000 * MS);
  uint32_t after[4];
  assert_int_equal(expect_regions(f, after), 6);
  assert_true(after[1] != region[1]); /* the new landmark's */
  assert_int_equal(after[0], region[0]);
  assert_int_equal(after[2], region[2]);
  assert_int_equal(counters(f).region_moves, 60);
  assert_int_equal(counters(f).region_rekeys, rekeys + 2); /* both shards */
  for (size_t i = 0; i < f->nh; i++)
    if (f->h[i].alive)
      assert_int_equal(f->h[i].patch, patch_of[i]);

  /* A fourth cluster joins: it gets a landmark of its own, and a patch
   * (its first, re-keyed); the others stay where they are. */
  size_t first = f->nh;
  join_clusters(f, 1000, 3, 1, 8);
  run_until(f, f->now + 8000 * MS);
  assert_int_equal(expect_regions(f, after), 7);
  assert_true(after[3] != 0);
  assert_int_equal(counters(f).region_moves, 60);
  assert_int_equal(counters(f).region_rekeys, rekeys + 3);
  for (size_t i = 0; i < first; i++)
    if (f->h[i].alive)
      assert_int_equal(f->h[i].patch, patch_of[i]);
  fx_del(f);
}

/* A lone host far from everyone (behind a slow link, say) is not made a
 * landmark -- it would found a region of one -- and, once a choice of
 * landmarks has seen its vector, is binned to the nearest. */
static void test_region_lone_host(void **state) {
  (void)state;
  fx *f = fx_rtts("* -> unicast by region\n");
  join_clusters(f, 1, 0, 3, 22); /* a sample of 64: 2 hosts must gain */
  run_until(f, f->now + 6000 * MS);
  uint32_t region[4];
  assert_int_equal(expect_regions(f, region), 3);
  bhost *lone = add_at(f, 500, noreg(), 10000, 30000); /* 40 ms from 2 */
  join_ok(f, lone);
  uint32_t first = lone->patch;
  run_until(f, f->now + 6000 * MS);
  assert_int_equal(lone->lm.count, 3);
  quilt_bootstrap_host hi = host_info(f, lone);
  assert_int_equal(hi.euid.region, region[2]);
  assert_true(lone->patch != first);
  assert_int_equal(patch_by_id(f, lone->patch).members, 23);
  fx_del(f);
}

/* Only hosts others can reach are landmarks (every host PINGs them): not
 * one behind a filtering NAT, even the first to join; a cluster of such
 * hosts has no landmark of its own, and is binned to the nearest. */
static void test_region_landmarks_reachable(void **state) {
  (void)state;
  fx *f = fx_rtts("* -> unicast by region\n");
  static const unsigned nat[3] = {QUILT_NAT_PORT_RESTRICTED, QUILT_NAT_NONE,
                                  QUILT_NAT_SYMMETRIC};
  for (int i = 0; i < 18; i++) {
    int c = i % 3;
    unsigned n = c == 0 && i == 9 ? QUILT_NAT_FULL_CONE : nat[c];
    bhost *h = add_at(f, 1 + (uint64_t)i, mk_euid(n, 0, 0, 0, 20000, 20000),
                      ccx[c] + i, ccy[c] + i);
    join_ok(f, h);
    if (i == 0) { /* the first is behind a NAT: no landmark yet */
      assert_int_equal(h->lm.count, 0);
      /* Alone long enough for lm_tick to take it all the same (no one
       * else to take); the first open host replaces it. */
      run_until(f, f->now + 1000 * MS);
      assert_int_equal(h->lm.count, 1);
      assert_int_equal(h->lm.nodes[0].id, 1);
    }
    f->now += 1 * MS;
  }
  run_until(f, f->now + 8000 * MS);
  const bhost *any = &f->h[1];
  assert_int_equal(any->lm.count, 2);
  for (unsigned i = 0; i < any->lm.count; i++) {
    const bhost *l = host_by_id(f, any->lm.nodes[i].id);
    assert_true(l->euid.nat == QUILT_NAT_NONE ||
                l->euid.nat == QUILT_NAT_FULL_CONE);
  }
  assert_true(lm_index(any, 2) >= 0);  /* the first open host */
  assert_true(lm_index(any, 10) >= 0); /* the full-cone host of cluster 0 */
  /* Cluster 2 (symmetric NATs) is 80 ms from cluster 1's landmark and 40
   * from cluster 0's: it shares region 0's. */
  quilt_bootstrap_host h0 = host_info(f, &f->h[0]);
  quilt_bootstrap_host h2 = host_info(f, &f->h[2]);
  assert_true(h0.region_derived && h2.region_derived);
  assert_int_equal(h2.euid.region, h0.euid.region);
  assert_int_equal(f->h[2].patch, f->h[0].patch);
  assert_true(host_info(f, &f->h[1]).euid.region != h0.euid.region);
  fx_del(f);
}

/* A restarted server derives the regions again from the heartbeats'
 * vectors: until they are measured (against its own landmarks) each host
 * is kept with those that name the same patch, then each patch takes its
 * region whole: the same patches, no one moved. */
static void test_region_restart(void **state) {
  (void)state;
  fx *f = fx_rtts("* -> unicast by region max 10\n");
  join_clusters(f, 1, 0, 3, 7);
  run_until(f, f->now + 8000 * MS);
  uint32_t region[4];
  assert_int_equal(expect_regions(f, region), 3);
  uint32_t patch_of[MAX_HOSTS];
  for (size_t i = 0; i < f->nh; i++)
    patch_of[i] = f->h[i].patch;

  quilt_bootstrap_del(f->b);
  f->cfg.incarnation++;
  quilt_bootstrap_callbacks cb = {on_send};
  assert_int_equal(quilt_bootstrap_new(&f->b, &f->cfg, &cb, f), 0);
  run_until(f, f->now + 1500 * MS);
  assert_int_equal(counters(f).hosts, 21);
  quilt_bootstrap_host hi = host_info(f, &f->h[4]);
  assert_int_equal(hi.euid.region,
                   QUILT_BOOTSTRAP_REGION_PROVISIONAL | patch_of[4]);
  assert_false(hi.region_derived);
  assert_int_equal(quilt_bootstrap_patch_count(f->b), 3);
  run_until(f, f->now + 8000 * MS);
  uint32_t after[4];
  assert_int_equal(expect_regions(f, after), 3);
  quilt_bootstrap_counters k = counters(f);
  assert_int_equal(k.region_moves, 0);
  assert_int_equal(k.region_rekeys, 3);
  assert_int_equal(k.patches, 3);
  for (size_t i = 0; i < f->nh; i++)
    assert_int_equal(f->h[i].patch, patch_of[i]);
  /* New hosts of a cluster join its patch, as before the restart. */
  join_clusters(f, 500, 2, 1, 2);
  run_until(f, f->now + 5000 * MS);
  assert_int_equal(expect_regions(f, after), 3);
  assert_int_equal(counters(f).region_moves, 2);
  fx_del(f);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void) {
  const struct CMUnitTest tests[] = {
      T(test_config),
      T(test_join_patch_info),
      T(test_placement),
      T(test_reps_k2),
      T(test_rank_replacement),
      T(test_peers),
      T(test_peers_paged),
      T(test_peers_moved_primary_batched),
      T(test_member_expiry),
      T(test_primary_failover),
      T(test_backup_failover),
      T(test_promote_much_better),
      T(test_unacknowledged_rep_expires),
      T(test_leave),
      cmocka_unit_test(test_max_split),
      T(test_restart),
      T(test_refused),
      cmocka_unit_test(test_max_hosts),
      T(test_rejoin_moves),
      T(test_churn),
      T(test_rep_address_change),
      T(test_measure_noise_keeps_roles),
      T(test_observed_address),
      cmocka_unit_test(test_landmarks_far),
      T(test_landmarks_resent),
      cmocka_unit_test(test_est),
      cmocka_unit_test(test_tree_patch),
      cmocka_unit_test(test_wao_tree),
      cmocka_unit_test(test_wao_sources_only),
      cmocka_unit_test(test_tree_member_expiry),
      cmocka_unit_test(test_orphan),
      cmocka_unit_test(test_wao_orphan),
      cmocka_unit_test(test_tree_refresh),
      cmocka_unit_test(test_tree_bounded_work),
      cmocka_unit_test(test_tree_restart),
      cmocka_unit_test(test_tree_churn),
      cmocka_unit_test(test_region_clusters),
      cmocka_unit_test(test_region_own),
      cmocka_unit_test(test_region_rate_limited),
      cmocka_unit_test(test_region_no_storm),
      cmocka_unit_test(test_region_lone_host),
      cmocka_unit_test(test_region_landmarks_reachable),
      cmocka_unit_test(test_region_restart),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
