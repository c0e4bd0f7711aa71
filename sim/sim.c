/*
 * sim.c -- the discrete-event engine, the network model and the scenario
 * driver (see sim.h).
 *
 * Determinism: the only inputs are the parameters and the seed.  Events
 * are popped in (time, insertion sequence) order from a binary heap; every
 * random draw comes from generators seeded from the one seed (the engine's
 * own for the network and the workload, one per host for the cores); no
 * iteration depends on addresses or hash order.  A running FNV-1a hash of
 * every processed event (time, kind, host) is reported so that tests can
 * check that a replay took exactly the same path.
 */
#include "sim.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bootstrap.h"
#include "map.h"
#include "mesh.h"
#include "node.h"
#include "quilt.h"
#include "rng.h"
#include "wire.h"

#define NS_PER_MS 1000000ULL
#define NS_PER_S 1000000000ULL
#define SIM_ADDR_BASE ((198u << 24) | (18u << 16)) /* 198.18/15, RFC 2544 */
#define SIM_PORT 7000
#define SIM_BOOT_ID (1ULL << 62)
#define SIM_MAX_MESSAGES 10000000u

/* ---- events ---- */

typedef struct pkt {
  uint32_t refs;
  uint32_t len;
  uint8_t data[];
} pkt;

enum ev_kind {
  EV_PACKET,
  EV_TIMER,
  EV_PUBLISH,
  EV_CRASH_REPS,
  EV_RESTART,
  EV_BOOT_CRASH,
  EV_BOOT_RESTART,
  EV_CHURN
};

typedef struct ev {
  uint64_t t;
  uint64_t seq;
  pkt *p;        /* EV_PACKET */
  uint32_t host; /* destination / subject */
  uint32_t from; /* EV_PACKET: sender host */
  uint32_t gen;  /* EV_TIMER: generation */
  uint8_t kind;
} ev;

typedef struct heap {
  ev *a;
  size_t n, cap;
} heap;

static int ev_less(const ev *x, const ev *y) {
  return x->t < y->t || (x->t == y->t && x->seq < y->seq);
}

static int heap_push(heap *h, const ev *e) {
  if (h->n == h->cap) {
    size_t cap = h->cap ? h->cap * 2 : 4096;
    ev *a = realloc(h->a, cap * sizeof *a);
    if (!a)
      return QUILT_ERR_NOMEM;
    h->a = a;
    h->cap = cap;
  }
  size_t i = h->n++;
  while (i > 0) {
    size_t parent = (i - 1) / 2;
    if (!ev_less(e, &h->a[parent]))
      break;
    h->a[i] = h->a[parent];
    i = parent;
  }
  h->a[i] = *e;
  return 0;
}

static ev heap_pop(heap *h) {
  assert(h->n > 0);
  ev top = h->a[0];
  ev last = h->a[--h->n];
  size_t i = 0;
  for (;;) {
    size_t l = 2 * i + 1, r = l + 1, m = i;
    const ev *best = &last;
    if (l < h->n && ev_less(&h->a[l], best)) {
      m = l;
      best = &h->a[l];
    }
    if (r < h->n && ev_less(&h->a[r], best))
      m = r;
    if (m == i)
      break;
    h->a[i] = h->a[m];
    i = m;
  }
  if (h->n > 0)
    h->a[i] = last;
  return top;
}

/* ---- the world ---- */

typedef struct shost {
  struct sim *sim;
  uint32_t index;
  quilt_node *node; /* NULL for the bootstrap slot or a crashed host */
  int alive;
  uint64_t uplink_free_ns;
  uint64_t timer_ns; /* currently scheduled expiry, UINT64_MAX = none */
  uint32_t timer_gen;
  uint32_t mcast_group; /* joined group ip, 0 = none */
  quilt_map last_seq;   /* origin id -> last delivered seq (order check) */
  uint64_t delivered;   /* deliveries recorded at this host */
  uint64_t joined_ns;   /* first got a patch; UINT64_MAX = not yet */
  uint32_t incarnation; /* restarts so far: part of the node id */
  uint64_t uplink_bps;  /* this host's uplink and queue (p->uplink_bps and */
  uint64_t queue_bytes; /*   p->queue_bytes unless the Internet mix) */
  uint8_t nat;          /* quilt_nat of its EUID (QUILT_NAT_NONE: public) */
  uint32_t region;      /* EUID region (Internet: nearest landmark + 1) */
} shost;

typedef struct msgrec {
  uint32_t origin; /* host index */
  uint32_t incarnation; /* of the origin when it published */
  uint64_t sent_ns;
} msgrec;

typedef struct sim {
  const quilt_sim_params *p;
  const quilt_topo *topo;
  uint32_t n;          /* hosts; index n is the bootstrap server */
  shost *hosts;        /* n + 1 */
  quilt_bootstrap *boot;
  quilt_rng rng;
  heap q;
  uint64_t seq;
  uint64_t now;
  uint64_t events;
  uint64_t trace;
  int failed;
  char *err;
  size_t errlen;

  msgrec *msgs;
  uint32_t nmsgs;
  /* The messages of each origin (a host incarnation), by seq - 1. */
  struct olist {
    uint32_t *msgs;
    uint32_t n, cap;
  } *olists;
  uint32_t nolists, cap_olists;
  quilt_map olist_index; /* node id -> index in olists */
  uint64_t boot_down_until; /* the server is down until then, or 0 */
  uint32_t boot_incarnation;
  uint64_t failovers_before; /* counted by servers that crashed since */
  uint8_t *got;           /* n x messages bitmap: delivered */
  uint8_t *seen;          /* n x messages bitmap: a copy arrived */
  double *lat_ms;         /* per delivery, for the CDF */
  double *lb_ms;
  size_t nsamples, cap_samples;

  quilt_sim_result *r;
  double *reattach_ms;    /* re-attachment times, for the report */
  size_t nreattach, cap_reattach;
  uint32_t *tree_mark;    /* scratch for the tree-cycle check */
  uint64_t *excess_hist; /* debugging: latency above the bound, binned */
  uint64_t trace_origin;  /* debugging: origin whose packets are printed */

  /* The Internet scenario and streams. */
  uint32_t publisher;     /* stream: the publishing host */
  uint8_t *contacted;     /* (n+1)^2 bits: [a][b] a has sent to b (NAT
                             filters), or NULL when nobody is behind one */
  float *first_ms;        /* stream: n x messages, arrival of the first copy
                             - segment time, ms; < 0 = none yet */
  uint64_t stream_end_ns; /* stream: bytes counted apart until then */
  uint64_t type_bytes[256]; /* debugging: bytes sent per message type */
  uint64_t nat_drops[256];  /* debugging: NAT drops per message type */
  uint64_t queue_drops[256]; /* debugging: uplink drops per message type */
} sim;

static void fail(sim *s, const char *what, uint32_t host) {
  if (s->failed)
    return;
  s->failed = 1;
  snprintf(s->err, s->errlen,
           "invariant violated: %s (seed %llu, t=%.6f s, event %llu, host "
           "%u)",
           what, (unsigned long long)s->p->seed, (double)s->now / 1e9,
           (unsigned long long)s->events, host);
}

/* A host's node id: its index + 1, with its incarnation above bit 32 (a
 * restarted host is a new member with a fresh sequence space). */
static uint64_t node_id(const sim *s, uint32_t i) {
  return ((uint64_t)s->hosts[i].incarnation << 32) | ((uint64_t)i + 1);
}

static quilt_addr host_addr(uint32_t i) {
  quilt_addr a = {SIM_ADDR_BASE + i + 1, SIM_PORT};
  return a;
}

/* Topology position of a host slot (the bootstrap server sits beside host
 * 0). */
static uint32_t topo_host(const sim *s, uint32_t i) {
  return i < s->n ? i : 0;
}

static uint64_t one_way_ns(const sim *s, uint32_t a, uint32_t b) {
  if (a == b)
    return 0;
  uint32_t ta = topo_host(s, a), tb = topo_host(s, b);
  if (s->p->matrix) /* the server sits 0.5 ms from host 0 */
    return ta == tb ? 500000
                    : (uint64_t)quilt_matrix_one_way_us(s->p->matrix, ta, tb) *
                          1000;
  uint32_t rtt_us = ta == tb ? s->topo->clusters[s->topo->host_cluster[ta]]
                                   .rtt_us
                             : quilt_topo_rtt_us(s->topo, ta, tb);
  return (uint64_t)rtt_us * 1000 / 2;
}

static void trace_mix(sim *s, uint64_t v) {
  for (int i = 0; i < 8; i++) {
    s->trace ^= (v >> (8 * i)) & 0xff;
    s->trace *= 0x100000001b3ULL;
  }
}

static int push(sim *s, ev *e) {
  e->seq = s->seq++;
  int rc = heap_push(&s->q, e);
  if (rc < 0)
    fail(s, "out of memory in the event queue", e->host);
  return rc;
}

/* ---- network ---- */

static int is_data(const uint8_t *buf, size_t len) {
  return len > 3 && buf[3] == QUILT_MSG_DATA;
}

/* Puts a datagram on host `from`'s uplink; returns its departure time (end
 * of serialisation) or UINT64_MAX when the queue is full. */
static uint64_t uplink(sim *s, uint32_t from, size_t len) {
  shost *h = &s->hosts[from];
  uint64_t start = h->uplink_free_ns > s->now ? h->uplink_free_ns : s->now;
  uint64_t backlog_bytes = (start - s->now) * h->uplink_bps / (8 * NS_PER_S);
  if (backlog_bytes + len > h->queue_bytes) {
    s->r->packets_lost++;
    return UINT64_MAX;
  }
  uint64_t ser = (uint64_t)len * 8 * NS_PER_S / h->uplink_bps;
  h->uplink_free_ns = start + ser;
  return start + ser;
}

static void deliver_pkt(sim *s, uint32_t from, uint32_t to, pkt *p,
                        uint64_t depart) {
  if (s->p->loss_ppm && quilt_rng_chance_ppm(&s->rng, s->p->loss_ppm)) {
    s->r->packets_lost++;
    return;
  }
  ev e = {0};
  e.kind = EV_PACKET;
  e.t = depart + one_way_ns(s, from, to);
  e.host = to;
  e.from = from;
  e.p = p;
  p->refs++;
  push(s, &e);
}

static void net_send(sim *s, uint32_t from, const quilt_addr *to,
                     const uint8_t *buf, size_t len) {
  int data = is_data(buf, len);
  if (len > 3 && (!s->p->stream || (s->now >= s->p->warmup_ns &&
                                     s->now <= s->stream_end_ns))) {
    s->type_bytes[buf[3]] += len; /* (a stream: while it runs) */
    if (buf[3] == QUILT_DONET_MSG_BUFFER_MAP)
      s->type_bytes[len < 40 ? 250 : 251] += len; /* partial / whole maps */
  }
  if (data)
    s->r->data_bytes += len;
  else
    s->r->control_bytes += len;
  if (s->p->stream && s->now >= s->p->warmup_ns && s->now <= s->stream_end_ns) {
    if (data)
      s->r->stream_data_bytes += len;
    else
      s->r->stream_control_bytes += len;
  }
  if (s->contacted && !quilt_addr_is_multicast(to)) {
    /* A NAT's filter opens for where its host sends (RFC 4787). */
    uint32_t idx = to->ip - SIM_ADDR_BASE - 1;
    if (to->ip > SIM_ADDR_BASE && idx <= s->n) {
      uint64_t bit = (uint64_t)from * (s->n + 1) + idx;
      s->contacted[bit / 8] |= (uint8_t)(1u << (bit % 8));
    }
  }
  uint64_t depart = uplink(s, from, len);
  if (depart == UINT64_MAX) {
    if (len > 3)
      s->queue_drops[buf[3]]++;
    return;
  }
  pkt *p = malloc(sizeof *p + len);
  if (!p) {
    fail(s, "out of memory for a packet", from);
    return;
  }
  p->refs = 1; /* held by this function until the end */
  p->len = (uint32_t)len;
  memcpy(p->data, buf, len);
  if (quilt_addr_is_multicast(to)) {
    if (from < s->n && s->topo) {
      const quilt_topo_cluster *c =
          &s->topo->clusters[s->topo->host_cluster[from]];
      for (uint32_t i = c->first_host; i < c->first_host + c->hosts; i++) {
        const shost *h = &s->hosts[i];
        if (i != from && h->alive && h->mcast_group == to->ip)
          deliver_pkt(s, from, i, p, depart);
      }
    }
  } else {
    uint32_t idx = to->ip - SIM_ADDR_BASE - 1;
    if (to->ip > SIM_ADDR_BASE && idx <= s->n)
      deliver_pkt(s, from, idx, p, depart);
    else
      s->r->packets_lost++;
  }
  if (--p->refs == 0)
    free(p);
}

/* ---- host callbacks ---- */

static void cb_send(void *user, const quilt_addr *to, const uint8_t *buf,
                    size_t len) {
  shost *h = user;
  net_send(h->sim, h->index, to, buf, len);
}

static void cb_mcast_join(void *user, const quilt_addr *group) {
  shost *h = user;
  h->mcast_group = group->ip;
}

static void cb_mcast_leave(void *user, const quilt_addr *group) {
  shost *h = user;
  if (h->mcast_group == group->ip)
    h->mcast_group = 0;
}

static void cb_patch_changed(void *user, uint32_t patch_id, unsigned protocol,
                             unsigned role) {
  shost *h = user;
  (void)patch_id;
  (void)protocol;
  (void)role;
  if (h->joined_ns == UINT64_MAX)
    h->joined_ns = h->sim->now;
}

static void add_sample(sim *s, double lat, double lb) {
  if (s->nsamples == s->cap_samples) {
    size_t cap = s->cap_samples ? s->cap_samples * 2 : 65536;
    double *a = realloc(s->lat_ms, cap * sizeof *a);
    if (!a) {
      fail(s, "out of memory for samples", 0);
      return;
    }
    s->lat_ms = a;
    double *b = realloc(s->lb_ms, cap * sizeof *b);
    if (!b) {
      fail(s, "out of memory for samples", 0);
      return;
    }
    s->lb_ms = b;
    s->cap_samples = cap;
  }
  s->lat_ms[s->nsamples] = lat;
  s->lb_ms[s->nsamples] = lb;
  s->nsamples++;
}

static void cb_deliver(void *user, const quilt_msg_data *d, uint64_t now) {
  shost *h = user;
  sim *s = h->sim;
  uint32_t li;
  if (!quilt_map_get(&s->olist_index, d->origin, &li) || d->seq == 0 ||
      d->seq > s->olists[li].n) {
    fail(s, "delivery of a message that was never published", h->index);
    return;
  }
  uint32_t m = s->olists[li].msgs[d->seq - 1];
  uint32_t o = s->msgs[m].origin;
  uint64_t bit = (uint64_t)h->index * s->p->messages + m;
  if (s->got[bit / 8] & (1u << (bit % 8))) {
    s->r->duplicate_deliveries++;
    fail(s, "duplicate delivery", h->index);
    return;
  }
  uint32_t last = 0;
  (void)quilt_map_get(&h->last_seq, d->origin, &last);
  if (d->seq <= last) {
    fail(s, "delivery out of per-origin order", h->index);
    return;
  }
  quilt_map_put(&h->last_seq, d->origin, (uint32_t)d->seq);
  s->got[bit / 8] |= (uint8_t)(1u << (bit % 8));
  h->delivered++;
  double lat = (double)(now - s->msgs[m].sent_ns) / 1e6;
  double lb = (double)one_way_ns(s, o, h->index) / 1e6;
  add_sample(s, lat, lb);
  if (s->excess_hist) {
    double x = lat - lb;
    int b = x < 0.25 ? 0 : x < 0.5 ? 1 : x < 1 ? 2 : x < 2 ? 3 : x < 4 ? 4
          : x < 8 ? 5 : x < 16 ? 6 : x < 32 ? 7 : x < 64 ? 8 : 9;
    s->excess_hist[b]++;
  }
}

static void cb_loss(void *user, uint64_t origin, uint64_t first,
                    uint64_t count, uint64_t now) {
  shost *h = user;
  (void)origin;
  (void)now;
  h->sim->r->loss_events++;
  (void)first;
  (void)count;
}

static void boot_send(void *user, const quilt_addr *to, const uint8_t *buf,
                      size_t len) {
  sim *s = user;
  net_send(s, s->n, to, buf, len);
}

/* ---- timers ---- */

static uint64_t expiry_of(const sim *s, uint32_t i) {
  if (i == s->n)
    return s->boot ? quilt_bootstrap_expiry(s->boot) : UINT64_MAX;
  const shost *h = &s->hosts[i];
  return h->node ? quilt_node_expiry(h->node) : UINT64_MAX;
}

static void rearm(sim *s, uint32_t i) {
  shost *h = &s->hosts[i];
  uint64_t t = expiry_of(s, i);
  if (t == h->timer_ns)
    return;
  h->timer_ns = t;
  h->timer_gen++;
  if (t == UINT64_MAX)
    return;
  ev e = {0};
  e.kind = EV_TIMER;
  e.t = t < s->now ? s->now : t;
  e.host = i;
  e.gen = h->timer_gen;
  push(s, &e);
}

/* ---- workload ---- */

static uint32_t pick_origin(sim *s) {
  for (int tries = 0; tries < 1000; tries++) {
    uint32_t i = quilt_rng_below(&s->rng, s->n);
    quilt_node_status st;
    if (!s->hosts[i].alive)
      continue;
    quilt_node_status_get(s->hosts[i].node, &st);
    if (st.joined)
      return i;
  }
  return UINT32_MAX;
}

static void publish(sim *s) {
  uint32_t o = s->p->stream ? s->publisher : pick_origin(s);
  if (s->p->stream) {
    quilt_node_status st;
    if (s->hosts[o].alive)
      quilt_node_status_get(s->hosts[o].node, &st);
    if (!s->hosts[o].alive || !st.joined)
      o = UINT32_MAX;
  }
  if (o == UINT32_MAX) {
    fail(s,
         s->p->stream ? "the stream's publisher is not in a patch"
                      : "no host has joined a patch by the first publication",
         s->p->stream ? s->publisher : 0);
    return;
  }
  uint32_t m = s->nmsgs;
  uint8_t payload[QUILT_WIRE_MAX_PAYLOAD];
  for (uint32_t i = 0; i < s->p->payload_bytes; i++)
    payload[i] = (uint8_t)(m + i);
  /* Record first: the origin's own delivery bookkeeping runs inside. */
  uint64_t id = node_id(s, o);
  uint32_t li;
  if (!quilt_map_get(&s->olist_index, id, &li)) {
    if (s->nolists == s->cap_olists) {
      uint32_t cap = s->cap_olists ? s->cap_olists * 2 : 256;
      struct olist *nl = realloc(s->olists, cap * sizeof *nl);
      if (!nl) {
        fail(s, "out of memory", o);
        return;
      }
      s->olists = nl;
      s->cap_olists = cap;
    }
    li = s->nolists++;
    memset(&s->olists[li], 0, sizeof s->olists[li]);
    if (quilt_map_put(&s->olist_index, id, li) != 0) {
      fail(s, "out of memory", o);
      return;
    }
  }
  struct olist *l = &s->olists[li];
  if (l->n == l->cap) {
    uint32_t cap = l->cap ? l->cap * 2 : 4;
    uint32_t *nm = realloc(l->msgs, cap * sizeof *nm);
    if (!nm) {
      fail(s, "out of memory", o);
      return;
    }
    l->msgs = nm;
    l->cap = cap;
  }
  l->msgs[l->n++] = m;
  s->msgs[m].origin = o;
  s->msgs[m].incarnation = s->hosts[o].incarnation;
  s->msgs[m].sent_ns = s->now;
  s->nmsgs++;
  int64_t seq =
      quilt_node_publish(s->hosts[o].node, payload, s->p->payload_bytes,
                         s->now);
  if (seq != (int64_t)l->n)
    fail(s, "publish refused or sequence numbers out of step", o);
  rearm(s, o);
}

static void crash(sim *s, uint32_t i) {
  shost *h = &s->hosts[i];
  if (!h->alive)
    return;
  quilt_node_counters nc;
  quilt_node_counters_get(h->node, &nc);
  s->r->orphaned += nc.orphaned;
  quilt_node_del(h->node);
  h->node = NULL;
  h->alive = 0;
  h->mcast_group = 0;
  h->timer_ns = UINT64_MAX;
  h->timer_gen++;
}

/* Crashes every host that is a primary representative (as the hosts
 * themselves believe: the server may be down). */
static void crash_primaries(sim *s) {
  for (uint32_t h = 0; h < s->n; h++) {
    if (!s->hosts[h].alive)
      continue;
    quilt_node_status st;
    quilt_node_status_get(s->hosts[h].node, &st);
    if (!st.joined || st.role != QUILT_ROLE_PRIMARY)
      continue;
    crash(s, h);
    if (s->p->restart_reps_ns) {
      ev e = {0};
      e.kind = EV_RESTART;
      e.host = h;
      e.t = s->now + s->p->restart_reps_ns;
      push(s, &e);
    }
  }
}

static void cb_reattached(void *user, uint64_t silent_ns) {
  shost *h = user;
  sim *s = h->sim;
  if (s->nreattach == s->cap_reattach) {
    size_t cap = s->cap_reattach ? s->cap_reattach * 2 : 256;
    double *a = realloc(s->reattach_ms, cap * sizeof *a);
    if (!a)
      return; /* a sample fewer in the report */
    s->reattach_ms = a;
    s->cap_reattach = cap;
  }
  s->reattach_ms[s->nreattach++] = (double)silent_ns / 1e6;
}

static quilt_node_callbacks node_callbacks(void) {
  quilt_node_callbacks cb = {cb_send,    cb_mcast_join, cb_mcast_leave,
                             cb_deliver, cb_loss,       cb_patch_changed,
                             cb_reattached};
  return cb;
}

/* Creates host i's node (a new incarnation after a restart). */
static int host_create(sim *s, uint32_t i) {
  const quilt_sim_params *p = s->p;
  shost *h = &s->hosts[i];
  quilt_node_config nc;
  quilt_node_config_default(&nc);
  nc.id = node_id(s, i);
  nc.addr = host_addr(i);
  nc.bootstrap = host_addr(s->n);
  nc.group = quilt_group_id("sim");
  nc.seed = p->seed ^ (0x9E3779B97F4A7C15ULL * nc.id);
  nc.euid.nat = h->nat;
  if (s->topo) {
    /* The OMNI baseline runs where no IPMC is available. */
    nc.euid.ipmc = p->protocol == QUILT_SIM_OMNI ? 0 : 1;
    nc.euid.domain = s->topo->host_cluster[i] + 1;
    nc.euid.region =
        s->topo->clusters[s->topo->host_cluster[i]].site + 1;
  } else {
    nc.euid.ipmc = 0; /* the Internet: no IPMC anywhere */
    nc.euid.domain = i + 1;
    nc.euid.region = h->region; /* 0 unless kmedoid_regions */
  }
  nc.euid.rtt_us = (uint32_t)(2 * one_way_ns(s, i, s->n) / 1000);
  nc.euid.bw_kbps = (uint32_t)(h->uplink_bps / 1000);
  /* Keep every message of the run for repairs: the bounds stay, sized for
   * the workload. */
  nc.delivery.retention_bytes =
      (size_t)p->messages * (p->payload_bytes + 1) + (1u << 16);
  if (p->matrix) {
    /* The node's repair timers are sized for a data centre (RTTs under a
     * millisecond): across the Internet a NACK repeated every 20 ms is
     * repeated several times before the repair can be back, and each copy
     * is answered.  Retries after 500 ms (above the p90 RTT of either
     * matrix), doubling to 4 s; SESSION bursts 500 ms and 1.5 s after a
     * send (a stream's next segment reveals a gap sooner; the bursts only
     * guard its tail, well within a playback delay). */
    nc.nack_delay_min_ns = NS_PER_MS;
    nc.nack_delay_max_ns = 5 * NS_PER_MS;
    nc.nack_retry_ns = 500 * NS_PER_MS;
    nc.nack_retry_max_ns = 4 * NS_PER_S;
    nc.session_interval_ns = 500 * NS_PER_MS;
    nc.session_count = 2;
  }
  if (p->stream) {
    /* A stream needs its playback buffer and a little more (a mesh
     * supplies partners from it); a gap still open at the deadline is a
     * loss. */
    uint64_t keep_ns = p->playback_delay_ns + 5 * NS_PER_S;
    uint64_t segs = keep_ns / (p->message_interval_ns ? p->message_interval_ns
                                                      : 1) + 1;
    if (segs < p->messages)
      nc.delivery.retention_bytes =
          (size_t)segs * (p->payload_bytes + 1) + (1u << 16);
    nc.delivery.retention_ns = keep_ns;
    nc.delivery.repair_timeout_ns = p->playback_delay_ns;
  }
  quilt_node_callbacks cb = node_callbacks();
  int rc = quilt_node_new(&h->node, &nc, &cb, h);
  if (rc < 0)
    return rc;
  if (p->stream) {
    quilt_mesh_config mc;
    quilt_mesh_config_default(&mc);
    mc.segment_period_ns = p->message_interval_ns;
    mc.segment_bytes = p->payload_bytes ? p->payload_bytes : 1;
    mc.playback_delay_ns = p->playback_delay_ns;
    mc.window_ns = p->playback_delay_ns;
    if (mc.window_ns / mc.segment_period_ns > QUILT_DONET_MAX_WINDOW)
      mc.window_ns = QUILT_DONET_MAX_WINDOW * mc.segment_period_ns;
    mc.partners =
        p->protocol == QUILT_SIM_MESH ? p->partners : p->patch_partners;
    /* Room for NAT'd hosts' requests: twice M. */
    mc.partners_max = 2 * mc.partners;
    if (mc.partners_max > QUILT_DONET_MAX_PARTNERS)
      mc.partners_max = QUILT_DONET_MAX_PARTNERS;
    rc = quilt_mesh_configure(h->node, &mc);
    if (rc < 0)
      return rc;
  }
  h->alive = 1;
  h->joined_ns = UINT64_MAX;
  if (p->protocol == QUILT_SIM_UNICAST) {
    /* The baseline knows every host from the start (no membership protocol
     * is charged to it). */
    for (uint32_t j = 0; j < s->n; j++)
      if (j != i) {
        quilt_addr a = host_addr(j);
        rc = quilt_node_add_member(h->node, node_id(s, j), &a);
        if (rc < 0)
          return rc;
      }
  }
  return 0;
}

/* A crashed host comes back as a new incarnation with empty state: it
 * joins again and expects only what is published after that. */
static void restart(sim *s, uint32_t i) {
  shost *h = &s->hosts[i];
  if (h->alive)
    return;
  h->incarnation++;
  quilt_map_free(&h->last_seq);
  for (uint32_t m = 0; m < s->p->messages; m++) {
    uint64_t bit = (uint64_t)i * s->p->messages + m;
    s->got[bit / 8] &= (uint8_t) ~(1u << (bit % 8));
    s->seen[bit / 8] &= (uint8_t) ~(1u << (bit % 8));
    if (s->first_ms)
      s->first_ms[(uint64_t)i * s->p->messages + m] = -1;
  }
  if (s->contacted) /* a new NAT state: nothing opened yet */
    for (uint32_t j = 0; j <= s->n; j++) {
      uint64_t bit = (uint64_t)i * (s->n + 1) + j;
      s->contacted[bit / 8] &= (uint8_t) ~(1u << (bit % 8));
    }
  if (host_create(s, i) < 0) {
    fail(s, "out of memory restarting a host", i);
    return;
  }
  quilt_node_start(h->node, s->now);
  rearm(s, i);
}

static int boot_create(sim *s) {
  quilt_bootstrap_config bc;
  quilt_bootstrap_config_default(&bc);
  bc.id = SIM_BOOT_ID + s->boot_incarnation; /* a new server, a new id */
  bc.rules = s->p->rules;
  bc.incarnation = (uint8_t)s->boot_incarnation;
  bc.wao_tree = s->p->protocol != QUILT_SIM_DIRECT;
  if (s->p->matrix) {
    /* Internet hosts send through access links whose queues hold up to
     * QUILT_SIM_QUEUE_NS of data, so a representative's heartbeat can be
     * that late: the data centre's 20 ms x 5 would replace primaries that
     * are only busy.  Representatives heartbeat as members do, every
     * second, and are replaced after 3 missed (3.5 s), well inside a
     * stream's 10 s buffer. */
    bc.rep_heartbeat_ms = 1000;
    bc.rep_miss_limit = 3;
    /* Three representatives: a mesh member's first contacts are its
     * patch's representatives, and the server keeps the first hosts of a
     * patch as representatives even when they turn out to be behind
     * restrictive NATs that no member can reach first (docs/mesh.md);
     * with 10% of hosts restrictive, two such out of two happened in one
     * patch in 31 on planetlab490, out of three it is ten times rarer. */
    bc.reps_per_patch = 3;
    /* Soft state re-sent to heal a lost copy: every 30 s rather than 2 s
     * (PEERS) and 5 s (TREE views), since both tables grow with the square
     * of the number of patches, and a stream's patches are many (changes
     * are still sent at once). */
    bc.peers_refresh_ns = 30 * NS_PER_S;
    bc.tree_refresh_ns = 30 * NS_PER_S;
  }
  if (s->p->stream && s->p->message_interval_ns) {
    /* A tree node's degree bound is its uplink over tree_rate_kbps: here
     * twice the stream, so that a representative keeps half its uplink for
     * its own patch's mesh. */
    uint64_t kbps = (uint64_t)s->p->payload_bytes * 8 * 1000000 /
                    s->p->message_interval_ns;
    bc.tree_rate_kbps = (uint32_t)(2 * (kbps ? kbps : 1));
  }
  if (s->p->protocol == QUILT_SIM_UNICAST) {
    /* The baseline is one patch of every host, whose members the simulator
     * hands out itself. */
    bc.send_members = 0;
    bc.members_max = 0;
  }
  quilt_bootstrap_callbacks bcb = {boot_send};
  return quilt_bootstrap_new(&s->boot, &bc, &bcb, s);
}

/* ---- the Internet scenario ---- */

/* Whether host i's NAT filters what comes from hosts it never sent to.  A
 * full-cone NAT admits anyone once its host has sent anything (every host
 * starts by sending JOIN), so only the restrictive classes filter here. */
static int nat_filters(const sim *s, uint32_t i) {
  return i < s->n && quilt_donet_nat_from_euid((quilt_nat)s->hosts[i].nat) ==
                         QUILT_DONET_NAT_RESTRICTIVE;
}

static uint32_t rtt_us_of(const sim *s, uint32_t a, uint32_t b) {
  return quilt_matrix_rtt_us(s->p->matrix, a, b);
}

/* Regions: k-medoids over the RTT matrix (PAM's BUILD, then Voronoi
 * iteration), each host in the region of its nearest medoid by RTT [R].  The landmark vectors the hosts measure are
 * meant to give this region (docs/mesh.md); until the server derives it,
 * the simulator hands it out in the EUID.  O(n^2) per iteration. */
static int internet_regions(sim *s) {
  uint32_t n = s->n, k = s->p->regions;
  if (k == 0)
    k = 1;
  if (k > n)
    k = n;
  if (k > 255)
    k = 255;
  uint32_t *med = calloc(k, sizeof *med);
  uint32_t *of = calloc(n, sizeof *of);
  uint64_t *best = calloc(n, sizeof *best);
  if (!med || !of || !best) {
    free(med);
    free(of);
    free(best);
    return QUILT_ERR_NOMEM;
  }
  /* Start: PAM's BUILD (Kaufman and Rousseeuw): the 1-median, then
   * repeatedly the host that lowers the sum of every host's RTT to its
   * nearest medoid the most.  (Farthest-point sampling would pick outliers:
   * a host with a slow access link is far from everyone, and near no one.)
   * O(k n^2). */
  uint64_t least = UINT64_MAX;
  for (uint32_t i = 0; i < n; i++) {
    uint64_t sum = 0;
    for (uint32_t j = 0; j < n; j++)
      sum += rtt_us_of(s, j, i);
    if (sum < least) {
      least = sum;
      med[0] = i;
    }
  }
  for (uint32_t i = 0; i < n; i++)
    best[i] = rtt_us_of(s, i, med[0]);
  for (uint32_t c = 1; c < k; c++) {
    uint64_t top = 0;
    uint32_t arg = med[0];
    for (uint32_t cand = 0; cand < n; cand++) {
      uint64_t gain = 0;
      for (uint32_t j = 0; j < n; j++) {
        uint32_t d = rtt_us_of(s, j, cand);
        if (d < best[j])
          gain += best[j] - d;
      }
      if (gain > top) {
        top = gain;
        arg = cand;
      }
    }
    med[c] = arg;
    for (uint32_t j = 0; j < n; j++)
      if (rtt_us_of(s, j, arg) < best[j])
        best[j] = rtt_us_of(s, j, arg);
  }
  for (int iter = 0; iter < 20; iter++) {
    for (uint32_t i = 0; i < n; i++) {
      of[i] = 0;
      for (uint32_t c = 1; c < k; c++)
        if (rtt_us_of(s, i, med[c]) < rtt_us_of(s, i, med[of[i]]))
          of[i] = c;
    }
    int moved = 0;
    for (uint32_t c = 0; c < k; c++) {
      /* The member with the least total RTT to the others of c. */
      uint64_t low = UINT64_MAX;
      uint32_t arg = med[c];
      for (uint32_t i = 0; i < n; i++) {
        if (of[i] != c)
          continue;
        uint64_t sum = 0;
        for (uint32_t j = 0; j < n; j++)
          if (of[j] == c)
            sum += rtt_us_of(s, i, j);
        if (sum < low) {
          low = sum;
          arg = i;
        }
      }
      moved |= arg != med[c];
      med[c] = arg;
    }
    if (!moved)
      break;
  }
  for (uint32_t i = 0; i < n; i++) {
    of[i] = 0;
    for (uint32_t c = 1; c < k; c++)
      if (rtt_us_of(s, i, med[c]) < rtt_us_of(s, i, med[of[i]]))
        of[i] = c;
    s->hosts[i].region = of[i] + 1;
  }
  free(med);
  free(of);
  free(best);
  return 0;
}

static void set_uplink(shost *h, uint64_t bps) {
  h->uplink_bps = bps;
  uint64_t q = bps / 8 * QUILT_SIM_QUEUE_NS / NS_PER_S;
  h->queue_bytes = q < 32768 ? 32768 : q;
}

/* Hosts of the Internet scenario: regions, NAT classes, uplinks (see
 * sim.h), from their own generator so that the engine's draws stay those of
 * the data-centre scenario. */
static int internet_hosts(sim *s) {
  const quilt_sim_params *p = s->p;
  quilt_rng rng;
  quilt_rng_init(&rng, p->seed, 0x1E7);
  if (p->kmedoid_regions) {
    int rc = internet_regions(s);
    if (rc < 0)
      return rc;
  }
  uint32_t *idx = malloc((size_t)s->n * sizeof *idx);
  if (!idx)
    return QUILT_ERR_NOMEM;
  for (uint32_t i = 0; i < s->n; i++)
    idx[i] = i;
  uint32_t nat = (uint32_t)(p->nat_share * s->n + 0.5);
  if (nat > s->n)
    nat = s->n;
  int filtering = 0;
  for (uint32_t j = 0; j < nat; j++) {
    uint32_t r = j + quilt_rng_below(&rng, s->n - j);
    uint32_t t = idx[j];
    idx[j] = idx[r];
    idx[r] = t;
    /* Of the hosts behind NAT, a third restrictive (symmetric: two of them
     * can never be partners), the others cone [R]. */
    s->hosts[idx[j]].nat = quilt_rng_below(&rng, 3) == 0
                               ? QUILT_NAT_SYMMETRIC
                               : QUILT_NAT_FULL_CONE;
    filtering |= s->hosts[idx[j]].nat == QUILT_NAT_SYMMETRIC;
  }
  free(idx);
  for (uint32_t i = 0; i < s->n; i++) {
    uint32_t u = quilt_rng_below(&rng, 100);
    if (p->uplinks == QUILT_SIM_UPLINKS_RESIDENTIAL)
      set_uplink(&s->hosts[i], u < 20   ? 10000000ull
                               : u < 70 ? 2000000ull
                                        : 1000000ull);
    else
      set_uplink(&s->hosts[i], 10000000ull);
  }
  if (filtering) {
    uint64_t bits = (uint64_t)(s->n + 1) * (s->n + 1);
    s->contacted = calloc(bits / 8 + 1, 1);
    if (!s->contacted)
      return QUILT_ERR_NOMEM;
  }
  return 0;
}

/* The stream's publisher: a random public host, with the top uplink of the
 * mix when the hosts have one (a streaming server). */
static int choose_publisher(sim *s) {
  quilt_rng rng;
  quilt_rng_init(&rng, s->p->seed, 0x9B1);
  uint32_t pub = 0;
  for (uint32_t i = 0; i < s->n; i++)
    pub += s->hosts[i].nat == QUILT_NAT_NONE;
  if (pub == 0)
    return QUILT_ERR_INVAL;
  uint32_t pick = quilt_rng_below(&rng, pub);
  for (uint32_t i = 0; i < s->n; i++)
    if (s->hosts[i].nat == QUILT_NAT_NONE && pick-- == 0) {
      s->publisher = i;
      break;
    }
  if (s->p->matrix)
    set_uplink(&s->hosts[s->publisher], 10000000ull);
  return 0;
}

/* ---- the run ---- */

static int setup(sim *s) {
  const quilt_sim_params *p = s->p;
  s->n = p->matrix ? quilt_matrix_n(p->matrix) : s->topo->nhosts;
  s->hosts = calloc((size_t)s->n + 1, sizeof *s->hosts);
  s->msgs = calloc(p->messages ? p->messages : 1, sizeof *s->msgs);
  s->got = calloc(((size_t)s->n * p->messages + 7) / 8 + 1, 1);
  s->seen = calloc(((size_t)s->n * p->messages + 7) / 8 + 1, 1);
  quilt_map_init(&s->olist_index);
  if (!s->hosts || !s->msgs || !s->got || !s->seen)
    return QUILT_ERR_NOMEM;
  quilt_rng_init(&s->rng, p->seed, 0x51A7);
  for (uint32_t i = 0; i <= s->n; i++) {
    s->hosts[i].uplink_bps = p->uplink_bps;
    s->hosts[i].queue_bytes = p->queue_bytes;
  }
  if (p->stream) {
    size_t pairs = (size_t)s->n * p->messages;
    s->first_ms = malloc((pairs ? pairs : 1) * sizeof *s->first_ms);
    if (!s->first_ms)
      return QUILT_ERR_NOMEM;
    for (size_t k = 0; k < pairs; k++)
      s->first_ms[k] = -1;
    /* While the stream is published: from its first segment to its last
     * (the drain after it, where no protocol moves data but maps may go
     * on, is not streaming). */
    s->stream_end_ns = p->warmup_ns +
                       (p->messages ? (uint64_t)(p->messages - 1) : 0) *
                           p->message_interval_ns;
  }
  if (p->matrix) {
    int rc = internet_hosts(s);
    if (rc < 0)
      return rc;
  }

  int rc = boot_create(s);
  if (rc < 0)
    return rc;

  for (uint32_t i = 0; i <= s->n; i++) {
    shost *h = &s->hosts[i];
    h->sim = s;
    h->index = i;
    h->timer_ns = UINT64_MAX;
    h->joined_ns = UINT64_MAX;
    quilt_map_init(&h->last_seq);
  }
  s->hosts[s->n].alive = 1;
  if (p->stream && (rc = choose_publisher(s)) < 0)
    return rc;
  for (uint32_t i = 0; i < s->n; i++) {
    rc = host_create(s, i);
    if (rc < 0)
      return rc;
  }
  /* Joins spread over the first half of the warm-up. */
  for (uint32_t i = 0; i < s->n; i++) {
    ev e = {0};
    e.kind = EV_TIMER;
    e.host = i;
    e.t = quilt_rng_range(&s->rng, 0, p->warmup_ns / 2);
    e.gen = UINT32_MAX; /* start marker */
    push(s, &e);
  }
  rearm(s, s->n);
  for (uint32_t m = 0; m < p->messages; m++) {
    ev e = {0};
    e.kind = EV_PUBLISH;
    e.t = p->warmup_ns + (uint64_t)m * p->message_interval_ns;
    push(s, &e);
  }
  if (p->fail_reps) {
    ev e = {0};
    e.kind = EV_CRASH_REPS;
    e.t = p->warmup_ns + (uint64_t)p->messages * p->message_interval_ns / 2;
    push(s, &e);
  }
  if (p->churn > 0) {
    /* Distinct hosts, any role, crash at uniform times over the
     * publications (partial Fisher-Yates over the host indices). */
    uint32_t k = (uint32_t)(p->churn * s->n + 0.5);
    /* A stream's publisher is never churned (the stream would end). */
    uint32_t pool = s->n;
    uint32_t *idx = malloc((size_t)s->n * sizeof *idx);
    if (!idx)
      return QUILT_ERR_NOMEM;
    for (uint32_t i = 0; i < s->n; i++)
      idx[i] = i;
    if (p->stream) {
      idx[s->publisher] = s->n - 1;
      idx[s->n - 1] = s->publisher;
      pool = s->n - 1;
    }
    if (k > pool)
      k = pool;
    uint64_t span = (uint64_t)p->messages * p->message_interval_ns;
    for (uint32_t j = 0; j < k; j++) {
      uint32_t r = j + quilt_rng_below(&s->rng, pool - j);
      uint32_t t = idx[j];
      idx[j] = idx[r];
      idx[r] = t;
      ev e = {0};
      e.kind = EV_CHURN;
      e.host = idx[j];
      e.t = p->warmup_ns + quilt_rng_range(&s->rng, 0, span ? span - 1 : 0);
      push(s, &e);
    }
    free(idx);
  }
  if (p->restart_bootstrap) {
    ev e = {0};
    e.kind = EV_BOOT_CRASH;
    e.t = p->warmup_ns + (uint64_t)p->messages * p->message_interval_ns / 4;
    push(s, &e);
  }
  return 0;
}

static int bit_get(const uint8_t *bits, uint64_t bit) {
  return (bits[bit / 8] >> (bit % 8)) & 1u;
}

/* Notes that a copy of a DATA message reached host `to` (read straight
 * from the wire layout: origin at byte 16, seq at byte 24). */
static void note_seen(sim *s, uint32_t to, const pkt *p) {
  if (p->len < QUILT_WIRE_DATA_OVERHEAD || p->data[3] != QUILT_MSG_DATA)
    return;
  uint64_t origin = 0, seq = 0;
  for (int i = 0; i < 8; i++) {
    origin = origin << 8 | p->data[16 + i];
    seq = seq << 8 | p->data[24 + i];
  }
  uint32_t li;
  if (!quilt_map_get(&s->olist_index, origin, &li) || seq == 0 ||
      seq > s->olists[li].n)
    return;
  uint32_t m = s->olists[li].msgs[seq - 1];
  uint64_t bit = (uint64_t)to * s->p->messages + m;
  s->seen[bit / 8] |= (uint8_t)(1u << (bit % 8));
  if (s->first_ms && s->first_ms[bit] < 0 && s->msgs[m].origin != to)
    s->first_ms[bit] = (float)((double)(s->now - s->msgs[m].sent_ns) / 1e6);
}

/* Whether message m still exists somewhere: its origin (that incarnation)
 * is alive, or a copy reached a host alive now.  A message whose origin
 * crashed before any copy reached a survivor cannot be delivered by any
 * protocol; it is reported apart, not counted as owed. */
static int message_survives(const sim *s, uint32_t m) {
  const msgrec *r = &s->msgs[m];
  const shost *o = &s->hosts[r->origin];
  if (o->alive && o->incarnation == r->incarnation)
    return 1;
  for (uint32_t i = 0; i < s->n; i++)
    if (s->hosts[i].alive &&
        bit_get(s->seen, (uint64_t)i * s->p->messages + m))
      return 1;
  return 0;
}

/* The delivery contract covers a surviving message for every host that
 * was in a patch when it was published and is alive at the end (its
 * origin excepted).  Counts those (host, message) pairs and how many of
 * them were delivered, and the messages that did not survive. */
static void count_pairs(const sim *s, uint64_t *expected, uint64_t *delivered,
                        uint32_t *alive_out, uint32_t *orphans_out) {
  uint64_t e = 0, d = 0;
  uint32_t alive = 0, orphans = 0;
  for (uint32_t i = 0; i < s->n; i++)
    alive += s->hosts[i].alive ? 1 : 0;
  for (uint32_t m = 0; m < s->nmsgs; m++) {
    if (!message_survives(s, m)) {
      orphans++;
      continue;
    }
    for (uint32_t i = 0; i < s->n; i++) {
      const shost *h = &s->hosts[i];
      if (!h->alive || s->msgs[m].origin == i ||
          h->joined_ns > s->msgs[m].sent_ns)
        continue;
      e++;
      d += bit_get(s->got, (uint64_t)i * s->p->messages + m);
    }
  }
  *expected = e;
  *delivered = d;
  if (alive_out)
    *alive_out = alive;
  if (orphans_out)
    *orphans_out = orphans;
}

/* Debugging aid: prints every DATA, NACK and SESSION about one origin as
 * it arrives (QUILT_SIM_TRACE_ORIGIN=<node id>). */
static void trace_packet(const sim *s, const ev *e) {
  quilt_msg m;
  if (quilt_wire_decode(&m, e->p->data, e->p->len) != 0)
    return;
  double t = (double)s->now / 1e9;
  if (m.hdr.type == QUILT_MSG_DATA && m.u.data.origin == s->trace_origin)
    fprintf(stderr, "%.6f DATA seq %llu flags %u: %u -> %u\n", t,
            (unsigned long long)m.u.data.seq, m.u.data.flags, e->from,
            e->host);
  if (m.hdr.type == QUILT_MSG_NACK && m.u.nack.origin == s->trace_origin)
    fprintf(stderr, "%.6f NACK from %llu: %u -> %u\n", t,
            (unsigned long long)m.u.nack.ranges[0].first, e->from, e->host);
  if (m.hdr.type == QUILT_MSG_SESSION)
    for (unsigned k = 0; k < m.u.session.count; k++)
      if (m.u.session.entries[k].origin == s->trace_origin)
        fprintf(stderr, "%.6f SESSION seq %llu: %u -> %u\n", t,
                (unsigned long long)m.u.session.entries[k].seq, e->from,
                e->host);
}

static void handle(sim *s, const ev *e) {
  switch (e->kind) {
  case EV_PACKET: {
    shost *h = &s->hosts[e->host];
    if (e->host == s->n) {
      if (s->boot) {
        quilt_addr src = host_addr(e->from);
        quilt_bootstrap_read(s->boot, &src, e->p->data,
                             e->p->len, s->now);
        rearm(s, s->n);
      }
    } else if (h->alive && s->contacted && nat_filters(s, e->host) &&
               !bit_get(s->contacted,
                        (uint64_t)e->host * (s->n + 1) + e->from)) {
      s->r->nat_dropped++; /* its NAT never opened for the sender */
      if (e->p->len > 3)
        s->nat_drops[e->p->data[3]]++;
    } else if (h->alive) {
      quilt_addr from = host_addr(e->from);
      note_seen(s, e->host, e->p);
      if (s->trace_origin)
        trace_packet(s, e);
      int rc = quilt_node_read(h->node, &from, e->p->data, e->p->len, s->now);
      if (rc < 0)
        s->r->malformed_dropped++;
      rearm(s, e->host);
    }
    if (--e->p->refs == 0)
      free(e->p);
    break;
  }
  case EV_TIMER: {
    shost *h = &s->hosts[e->host];
    if (e->gen == UINT32_MAX) { /* the host boots */
      if (h->alive) {
        quilt_node_start(h->node, s->now);
        rearm(s, e->host);
      }
      break;
    }
    if (e->gen != h->timer_gen)
      break; /* superseded */
    h->timer_ns = UINT64_MAX;
    if (e->host == s->n) {
      if (s->boot)
        quilt_bootstrap_handle_expiry(s->boot, s->now);
    } else if (h->alive)
      quilt_node_handle_expiry(h->node, s->now);
    rearm(s, e->host);
    break;
  }
  case EV_PUBLISH:
    publish(s);
    break;
  case EV_CRASH_REPS:
    crash_primaries(s);
    break;
  case EV_RESTART:
    restart(s, e->host);
    break;
  case EV_CHURN:
    if (!s->hosts[e->host].alive)
      break;
    crash(s, e->host);
    s->r->churned++;
    if (quilt_rng_below(&s->rng, 2) == 0) {
      ev r = {0};
      r.kind = EV_RESTART;
      r.host = e->host;
      r.t = s->now + quilt_rng_range(&s->rng, 200 * NS_PER_MS, 2 * NS_PER_S);
      push(s, &r);
      s->r->churn_restarts++;
    }
    break;
  case EV_BOOT_CRASH: {
    /* The server loses all its state; hosts carry on meanwhile. */
    if (s->boot) {
      quilt_bootstrap_counters bc;
      quilt_bootstrap_counters_get(s->boot, &bc);
      s->failovers_before += bc.failovers;
    }
    quilt_bootstrap_del(s->boot);
    s->boot = NULL;
    s->hosts[s->n].timer_ns = UINT64_MAX;
    s->hosts[s->n].timer_gen++;
    ev r = {0};
    r.kind = EV_BOOT_RESTART;
    r.t = s->now + s->p->bootstrap_down_ns;
    push(s, &r);
    break;
  }
  case EV_BOOT_RESTART:
    s->boot_incarnation++;
    if (boot_create(s) < 0)
      fail(s, "out of memory restarting the bootstrap server", s->n);
    rearm(s, s->n);
    break;
  }
}

/* The tree invariant: following the parents that members' views name
 * never loops.  Views change one member at a time (TREE messages arrive at
 * different times), so a loop through views of different epochs can exist
 * for a moment; a loop among views all of one epoch is a bug in the
 * server's tree or in how members apply it, and stops the run. */
static void check_trees(sim *s) {
  if (!s->tree_mark) {
    s->tree_mark = calloc(s->n, sizeof *s->tree_mark);
    if (!s->tree_mark)
      return;
  }
  memset(s->tree_mark, 0, s->n * sizeof *s->tree_mark);
  for (uint32_t i = 0; i < s->n; i++) {
    if (s->tree_mark[i] || !s->hosts[i].alive)
      continue;
    /* Walk up from i, marking with i + 1; meeting our own mark is a loop. */
    uint32_t h = i, steps = 0;
    uint32_t epoch = 0;
    int one_epoch = 1;
    while (steps++ <= s->n) {
      if (s->tree_mark[h] == i + 1) {
        s->r->tree_cycles += one_epoch;
        if (one_epoch)
          fail(s, "a cycle among tree views of one epoch", h);
        break;
      }
      if (s->tree_mark[h])
        break; /* joins a path already walked */
      s->tree_mark[h] = i + 1;
      quilt_node_status st;
      quilt_node_status_get(s->hosts[h].node, &st);
      if (!st.in_tree || st.tree_parent == 0 || st.tree_orphan)
        break;
      if (h != i && st.tree_epoch != epoch)
        one_epoch = 0;
      epoch = st.tree_epoch;
      uint32_t up = (uint32_t)(st.tree_parent & 0xFFFFFFFFu) - 1;
      if (up >= s->n || !s->hosts[up].alive ||
          node_id(s, up) != st.tree_parent)
        break; /* a parent that crashed or restarted: no loop through it */
      h = up;
    }
  }
}

static double wall_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

const char *quilt_sim_protocol_name(quilt_sim_protocol p) {
  switch (p) {
  case QUILT_SIM_QUILT:
    return "quilt";
  case QUILT_SIM_UNICAST:
    return "unicast";
  case QUILT_SIM_DIRECT:
    return "direct";
  case QUILT_SIM_OMNI:
    return "omni";
  case QUILT_SIM_MESH:
    return "mesh";
  }
  return "?";
}

void quilt_sim_params_default(quilt_sim_params *p) {
  memset(p, 0, sizeof *p);
  p->scenario = "datacenter";
  p->protocol = QUILT_SIM_QUILT;
  p->seed = 1;
  p->messages = 200;
  p->payload_bytes = 256;
  p->message_interval_ns = 10 * NS_PER_MS;
  /* Long enough for the landmarks to be chosen and measured and the trees
   * built from them before the first publication. */
  p->warmup_ns = 6 * NS_PER_S;
  p->drain_max_ns = 60 * NS_PER_S;
  p->uplink_bps = 1000000000ULL;
  p->queue_bytes = 4u << 20;
  p->check_interval_ns = 100 * NS_PER_MS;
  p->bootstrap_down_ns = 500 * NS_PER_MS;
}

void quilt_sim_params_internet(quilt_sim_params *p) {
  p->scenario = "internet";
  p->stream = 1;
  p->messages = 3000; /* 60 s of 20 ms segments */
  p->payload_bytes = 1000; /* 400 kbit/s */
  p->message_interval_ns = 20 * NS_PER_MS;
  p->playback_delay_ns = 10 * NS_PER_S;
  p->drain_max_ns = p->playback_delay_ns + 2 * NS_PER_S;
  p->partners = 4;
  p->patch_partners = 3;
  p->nat_share = 0.3;
  p->regions = 8;
  p->warmup_ns = 12 * NS_PER_S;
}

/* The stream's numbers over the owed pairs (as count_pairs owes them). */
static void stream_results(sim *s) {
  const quilt_sim_params *p = s->p;
  quilt_sim_result *r = s->r;
  r->streaming = 1;
  double *v = NULL;
  size_t nv = 0, cap = 0;
  float deadline_ms = (float)((double)p->playback_delay_ns / 1e6);
  for (uint32_t m = 0; m < s->nmsgs; m++) {
    if (!message_survives(s, m))
      continue;
    for (uint32_t i = 0; i < s->n; i++) {
      const shost *h = &s->hosts[i];
      if (!h->alive || s->msgs[m].origin == i ||
          h->joined_ns > s->msgs[m].sent_ns)
        continue;
      r->stream_pairs++;
      float f = s->first_ms[(uint64_t)i * p->messages + m];
      if (f < 0)
        continue;
      if (f <= deadline_ms)
        r->stream_in_time++;
      if (nv == cap) {
        size_t nc = cap ? cap * 2 : 65536;
        double *a = realloc(v, nc * sizeof *a);
        if (!a)
          continue; /* a sample fewer */
        v = a;
        cap = nc;
      }
      v[nv++] = f;
    }
  }
  r->continuity_index =
      r->stream_pairs ? (double)r->stream_in_time / (double)r->stream_pairs
                      : 0.0;
  quilt_stats_compute(&r->first_copy_ms, v, nv);
  free(v);
}

int quilt_sim_run(const quilt_sim_params *p, quilt_sim_result *r, char *err,
                  size_t errlen) {
  memset(r, 0, sizeof *r);
  uint32_t nhosts = p->matrix ? quilt_matrix_n(p->matrix)
                    : p->topo ? p->topo->nhosts
                              : 0;
  if (nhosts < 2 || p->messages > SIM_MAX_MESSAGES ||
      p->payload_bytes > QUILT_WIRE_MAX_PAYLOAD || p->uplink_bps == 0 ||
      (p->protocol != QUILT_SIM_UNICAST && !p->rules) || p->churn < 0 ||
      p->churn > 1 || p->nat_share < 0 || p->nat_share > 1 ||
      (p->stream && (p->message_interval_ns == 0 || p->partners == 0 ||
                     p->partners > QUILT_DONET_MAX_PARTNERS * 2 / 3 ||
                     p->patch_partners == 0 ||
                     p->patch_partners > QUILT_DONET_MAX_PARTNERS * 2 / 3 ||
                     p->playback_delay_ns == 0)) ||
      (p->matrix && p->protocol == QUILT_SIM_UNICAST)) {
    snprintf(err, errlen, "invalid simulation parameters");
    return QUILT_ERR_INVAL;
  }
  double wall0 = wall_now();
  sim s;
  memset(&s, 0, sizeof s);
  s.p = p;
  s.topo = p->matrix ? NULL : p->topo;
  s.err = err;
  s.errlen = errlen;
  s.r = r;
  s.trace = 0xcbf29ce484222325ULL;
  if (getenv("QUILT_SIM_TRACE_ORIGIN"))
    s.trace_origin = strtoull(getenv("QUILT_SIM_TRACE_ORIGIN"), NULL, 10);
  if (getenv("QUILT_SIM_DEBUG_EXCESS"))
    s.excess_hist = calloc(10, sizeof *s.excess_hist);
  int rc = setup(&s);
  if (rc < 0 && !s.failed)
    snprintf(err, errlen, "simulation set-up failed: %s", quilt_strerror(rc));

  uint64_t last_pub =
      p->warmup_ns + (p->messages ? (uint64_t)(p->messages - 1) : 0) *
                         p->message_interval_ns;
  uint64_t end = last_pub + p->drain_max_ns;
  uint64_t next_check = p->check_interval_ns;
  uint64_t next_done_check = last_pub + NS_PER_S;
  while (rc == 0 && !s.failed && s.q.n > 0) {
    ev e = heap_pop(&s.q);
    if (e.t > end) {
      if (e.kind == EV_PACKET && --e.p->refs == 0)
        free(e.p);
      break;
    }
    assert(e.t >= s.now);
    s.now = e.t;
    s.events++;
    trace_mix(&s, e.t);
    trace_mix(&s, ((uint64_t)e.kind << 32) | e.host);
    handle(&s, &e);
    if (s.now >= next_check) {
      char why[256];
      if (s.boot && quilt_bootstrap_check(s.boot, why, sizeof why) != 0)
        fail(&s, why, s.n);
      check_trees(&s);
      next_check = s.now + p->check_interval_ns;
    }
    /* Stop once every alive host has every message (checked once per
     * simulated second after the last publication).  A stream runs its
     * whole drain: each protocol is then measured over the same time, and
     * one that delivered everything early does not leave its control
     * traffic of the drain uncounted. */
    if (!p->stream && s.now >= next_done_check) {
      uint64_t want, have;
      count_pairs(&s, &want, &have, NULL, NULL);
      if (s.nmsgs == p->messages && have == want)
        break;
      next_done_check = s.now + NS_PER_S;
    }
  }
  if (s.failed)
    rc = QUILT_ERR_STATE;
  if (s.excess_hist) {
    static const char *const bins[] = {"<0.25", "<0.5", "<1", "<2", "<4",
                                       "<8", "<16", "<32", "<64", ">=64"};
    for (int b = 0; b < 10; b++)
      fprintf(stderr, "excess %s ms: %llu\n", bins[b],
              (unsigned long long)s.excess_hist[b]);
    free(s.excess_hist);
  }
  if (getenv("QUILT_SIM_DEBUG_MISSING") && s.hosts) {
    for (uint32_t i = 0; i < s.n; i++)
      if (s.hosts[i].alive && s.hosts[i].joined_ns > p->warmup_ns)
        fprintf(stderr, "late: host %u joined at %.3f s\n", i,
                s.hosts[i].joined_ns == UINT64_MAX
                    ? -1.0
                    : (double)s.hosts[i].joined_ns / 1e9);
    unsigned shown = 0;
    for (size_t i = 0; i < quilt_bootstrap_patch_count(s.boot); i++) {
      quilt_bootstrap_patch bp;
      quilt_bootstrap_patch_get(s.boot, i, &bp);
      fprintf(stderr, "patch %u: %u members, primary %llu\n", bp.patch_id,
              bp.members, (unsigned long long)bp.reps[0]);
    }
    for (uint32_t i = 0; i < s.n && shown < 400; i++) {
      if (!s.hosts[i].alive)
        continue;
      for (uint32_t m = 0; m < s.nmsgs && shown < 400; m++) {
        uint64_t bit = (uint64_t)i * p->messages + m;
        if (s.msgs[m].origin == i || (s.got[bit / 8] & (1u << (bit % 8))) ||
            s.hosts[i].joined_ns > s.msgs[m].sent_ns ||
            !message_survives(&s, m))
          continue;
        quilt_node_status st;
        quilt_node_status_get(s.hosts[i].node, &st);
        uint32_t o = s.msgs[m].origin;
        quilt_node_status ost;
        if (s.hosts[o].node)
          quilt_node_status_get(s.hosts[o].node, &ost);
        else
          memset(&ost, 0, sizeof ost);
        fprintf(stderr,
                "missing: host %u (cluster %u patch %u role %u) msg %u from "
                "host %u (cluster %u patch %u role %u) sent %.3f s\n",
                i, s.topo ? s.topo->host_cluster[i] : s.hosts[i].region,
                st.patch_id, st.role, m, o,
                s.topo ? s.topo->host_cluster[o] : s.hosts[o].region,
                ost.patch_id, ost.role,
                (double)s.msgs[m].sent_ns / 1e9);
        quilt_origin_view v;
        if (quilt_node_origin_get(s.hosts[i].node, node_id(&s, o), &v))
          fprintf(stderr, "  view: next %llu highest %llu gap_since %.3f "
                  "patch %u; peers %zu epoch %u\n",
                  (unsigned long long)v.next, (unsigned long long)v.highest,
                  v.gap_since_ns / 1e9, v.origin_patch, st.npeers, st.epoch);
        else
          fprintf(stderr, "  view: origin unknown; joined %d peers %zu\n",
                  st.joined, st.npeers);
        shown++;
      }
    }
  }

  if (getenv("QUILT_SIM_DEBUG_MESH") && s.hosts) {
    /* Debugging aid: the mesh cores' counters, summed over the alive
     * hosts. */
    quilt_mesh_stats sum, one;
    memset(&sum, 0, sizeof sum);
    uint32_t meshes = 0, hist[8] = {0};
    for (uint32_t i = 0; i < s.n; i++) {
      if (!s.hosts[i].node || !quilt_mesh_stats_get(s.hosts[i].node, &one))
        continue;
      meshes++;
      hist[one.partners < 7 ? one.partners : 7]++;
      quilt_node_status hs;
      quilt_node_status_get(s.hosts[i].node, &hs);
      if (strcmp(getenv("QUILT_SIM_DEBUG_MESH"), "3") == 0) {
        quilt_donet_partner_info pi[QUILT_DONET_MAX_PARTNERS];
        const quilt_mesh_stats *os = &one;
        (void)os;
        size_t np = 0;
        /* partners, by host index (ids are index + 1 in the low bits) */
        np = quilt_mesh_partners(s.hosts[i].node, pi, QUILT_DONET_MAX_PARTNERS);
        fprintf(stderr, "graph %u %u %u %llu:", hs.patch_id, i, hs.role,
                (unsigned long long)one.donet.segs_received);
        for (size_t k = 0; k < np; k++)
          fprintf(stderr, " %u", (unsigned)(pi[k].id & 0xFFFFFFFFu) - 1);
        fputc('\n', stderr);
      }
      if (strcmp(getenv("QUILT_SIM_DEBUG_MESH"), "2") == 0)
        fprintf(stderr,
                "patch %u role %u host %u nat %u up %llu region %u partners %zu in %llu "
                "missed %llu late %llu recv %llu sent %llu req %llu to %llu "
                "preq %llu acc %llu rej %llu mc %zu maps %llu local %llu starving %llu\n",
                hs.patch_id, hs.role, i, s.hosts[i].nat,
                (unsigned long long)s.hosts[i].uplink_bps / 1000,
                s.hosts[i].region, one.partners,
                (unsigned long long)one.donet.in_time,
                (unsigned long long)one.donet.missed,
                (unsigned long long)one.donet.late,
                (unsigned long long)one.donet.segs_received,
                (unsigned long long)one.donet.segs_sent,
                (unsigned long long)one.donet.requests,
                (unsigned long long)one.donet.request_timeouts,
                (unsigned long long)one.donet.partner_reqs_sent,
                (unsigned long long)one.donet.partner_accepts,
                (unsigned long long)one.donet.partner_rejects,
                (size_t)one.donet.gossip_records_new,
                (unsigned long long)one.donet.msgs_sent[4],
                (unsigned long long)one.local_segments,
                (unsigned long long)one.donet.partners_dropped_starving);
      const uint64_t *a = (const uint64_t *)&one.donet;
      uint64_t *b = (uint64_t *)&sum.donet;
      for (size_t k = 0; k < sizeof one.donet / sizeof(uint64_t); k++)
        b[k] += a[k];
      sum.supplied += one.supplied;
      sum.supply_missing += one.supply_missing;
      sum.other_streams += one.other_streams;
      sum.nacks_dropped += one.nacks_dropped;
    }
    uint64_t fwd = 0, inj = 0, nacks = 0, sess = 0, prim = 0, peers = 0;
    for (uint32_t i = 0; i < s.n; i++) {
      if (!s.hosts[i].node)
        continue;
      quilt_node_counters nc;
      quilt_node_counters_get(s.hosts[i].node, &nc);
      quilt_node_status st;
      quilt_node_status_get(s.hosts[i].node, &st);
      fwd += nc.forwarded;
      inj += nc.injected;
      if (st.joined && st.role == QUILT_ROLE_PRIMARY &&
          strcmp(getenv("QUILT_SIM_DEBUG_MESH"), "2") == 0)
        fprintf(stderr,
                "primary %u patch %u up %llu: forwarded %llu injected %llu "
                "nacks %llu repairs %llu delivered %llu lost %llu\n",
                i, st.patch_id,
                (unsigned long long)s.hosts[i].uplink_bps / 1000,
                (unsigned long long)nc.forwarded,
                (unsigned long long)nc.injected,
                (unsigned long long)nc.nacks_sent,
                (unsigned long long)nc.repairs_sent,
                (unsigned long long)nc.delivery.delivered,
                (unsigned long long)nc.delivery.lost_messages);
      nacks += nc.nacks_sent;
      sess += nc.sessions_sent;
      if (st.joined && st.role == QUILT_ROLE_PRIMARY) {
        prim++;
        peers += st.npeers;
      }
    }
    for (int t = 0; t < 256; t++)
      if (s.type_bytes[t])
        fprintf(stderr, "bytes of %s: %llu (NAT drops %llu, queue drops %llu)\n",
                quilt_msg_type_name((unsigned)t),
                (unsigned long long)s.type_bytes[t],
                (unsigned long long)s.nat_drops[t],
                (unsigned long long)s.queue_drops[t]);
    fprintf(stderr,
            "nodes: forwarded %llu injected %llu nacks %llu sessions %llu; "
            "%llu primaries knowing %llu peers in all\n",
            (unsigned long long)fwd, (unsigned long long)inj,
            (unsigned long long)nacks, (unsigned long long)sess,
            (unsigned long long)prim, (unsigned long long)peers);
    if (s.first_ms) {
      /* first-copy latency by role: p50 over the hosts' pairs */
      double acc[3] = {0}, cnt[3] = {0};
      for (uint32_t i = 0; i < s.n; i++) {
        if (!s.hosts[i].node)
          continue;
        quilt_node_status st;
        quilt_node_status_get(s.hosts[i].node, &st);
        unsigned ro = st.role < 3 ? st.role : 0;
        for (uint32_t m = 0; m < s.nmsgs; m++) {
          float f = s.first_ms[(uint64_t)i * p->messages + m];
          if (f >= 0) {
            acc[ro] += f;
            cnt[ro]++;
          }
        }
      }
      fprintf(stderr, "first copy mean ms: members %.0f primaries %.0f "
              "backups %.0f\n", cnt[0] ? acc[0] / cnt[0] : 0,
              cnt[1] ? acc[1] / cnt[1] : 0, cnt[2] ? acc[2] / cnt[2] : 0);
    }
    const quilt_donet_stats *d = &sum.donet;
    fprintf(stderr,
            "mesh: %u cores; partners 0..7+: %u %u %u %u %u %u %u %u\n"
            "  segs received %llu dup %llu stale %llu sent %llu unavailable "
            "%llu; supplied %llu missing %llu\n"
            "  in time %llu missed %llu late %llu; requests %llu timeouts "
            "%llu\n"
            "  partner reqs %llu accepts %llu rejects %llu added %llu refined "
            "%llu timed out %llu dropped by remote %llu starving %llu "
            "nat-rejected %llu\n"
            "  bytes sent by type 20..25: %llu %llu %llu %llu %llu %llu\n"
            "  maps sent %llu, requests sent %llu\n",
            meshes, hist[0], hist[1], hist[2], hist[3], hist[4], hist[5],
            hist[6], hist[7], (unsigned long long)d->segs_received,
            (unsigned long long)d->segs_duplicate,
            (unsigned long long)d->segs_stale,
            (unsigned long long)d->segs_sent,
            (unsigned long long)d->segs_unavailable,
            (unsigned long long)sum.supplied,
            (unsigned long long)sum.supply_missing,
            (unsigned long long)d->in_time, (unsigned long long)d->missed,
            (unsigned long long)d->late, (unsigned long long)d->requests,
            (unsigned long long)d->request_timeouts,
            (unsigned long long)d->partner_reqs_sent,
            (unsigned long long)d->partner_accepts,
            (unsigned long long)d->partner_rejects,
            (unsigned long long)d->partners_added,
            (unsigned long long)d->partners_dropped_refine,
            (unsigned long long)d->partners_timed_out,
            (unsigned long long)d->partners_dropped_remote,
            (unsigned long long)d->partners_dropped_starving,
            (unsigned long long)d->rejected_nat,
            (unsigned long long)d->bytes_sent[0],
            (unsigned long long)d->bytes_sent[1],
            (unsigned long long)d->bytes_sent[2],
            (unsigned long long)d->bytes_sent[3],
            (unsigned long long)d->bytes_sent[4],
            (unsigned long long)d->bytes_sent[5],
            (unsigned long long)d->msgs_sent[4],
            (unsigned long long)d->msgs_sent[5]);
  }

  /* Results. */
  snprintf(r->scenario, sizeof r->scenario, "%s",
           p->scenario ? p->scenario : "datacenter");
  snprintf(r->protocol, sizeof r->protocol, "%s",
           quilt_sim_protocol_name(p->protocol));
  r->seed = p->seed;
  r->hosts = s.n;
  r->messages = s.nmsgs;
  if (s.hosts)
    count_pairs(&s, &r->expected, &r->delivered, &r->hosts_alive,
                &r->messages_orphaned);
  if (s.hosts && s.first_ms)
    stream_results(&s);
  r->delivery_ratio =
      r->expected ? (double)r->delivered / (double)r->expected : 0.0;
  r->events = s.events;
  r->sim_seconds = (double)s.now / 1e9;
  r->trace_hash = s.trace;
  quilt_stats_compute(&r->latency_ms, s.lat_ms, s.nsamples);
  quilt_stats_compute(&r->lower_bound_ms, s.lb_ms, s.nsamples);
  r->latency_samples_ms = s.lat_ms;
  r->lower_bound_samples_ms = s.lb_ms;
  r->nsamples = s.nsamples;
  if (s.boot) {
    quilt_bootstrap_counters bc;
    quilt_bootstrap_counters_get(s.boot, &bc);
    r->failovers = (uint32_t)(bc.failovers + s.failovers_before);
  }
  if (s.hosts)
    for (uint32_t i = 0; i < s.n; i++)
      if (s.hosts[i].node) {
        quilt_node_counters nc;
        quilt_node_counters_get(s.hosts[i].node, &nc);
        r->orphaned += nc.orphaned;
      }
  quilt_stats_compute(&r->reattach_ms, s.reattach_ms, s.nreattach);
  free(s.reattach_ms);
  free(s.tree_mark);

  /* Tear down. */
  while (s.q.n > 0) {
    ev e = heap_pop(&s.q);
    if (e.kind == EV_PACKET && --e.p->refs == 0)
      free(e.p);
  }
  free(s.q.a);
  if (s.hosts) {
    for (uint32_t i = 0; i <= s.n; i++) {
      quilt_node_del(s.hosts[i].node);
      quilt_map_free(&s.hosts[i].last_seq);
    }
  }
  for (uint32_t i = 0; i < s.nolists; i++)
    free(s.olists[i].msgs);
  free(s.olists);
  quilt_map_free(&s.olist_index);
  free(s.hosts);
  free(s.msgs);
  free(s.got);
  free(s.seen);
  free(s.first_ms);
  free(s.contacted);
  quilt_bootstrap_del(s.boot);
  r->wall_seconds = wall_now() - wall0;
  return rc;
}
