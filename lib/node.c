/*
 * node.c -- the host core: join, heartbeats, delivery, repair, bridging.
 *
 * Repair follows SRM (Floyd et al., "A Reliable Multicast Framework for
 * Light-weight Sessions and Application Level Framing", SIGCOMM 1995): a
 * receiver that sees a gap waits a random time before it NACKs, and a NACK
 * heard from another member postpones its own (suppression); holders answer
 * after a random time too, representatives first, and an answer heard from
 * another holder cancels theirs.  A lost tail (no later message reveals the
 * gap) is noticed from SESSION messages, which a sender repeats a few times
 * with doubling intervals after it last sent (as PGM's SPMs do, RFC 3208
 * section 5.1.1).
 *
 * Bridging (DESIGN.md section 2): the primary representative of a patch
 * forwards every new message of its patch's origins to the primaries of the
 * other patches (the wide-area overlay; direct unicast for now), and
 * injects every new message arriving from the overlay into its patch.
 * Repair across the overlay is hop by hop: a primary missing a message of
 * another patch's origin NACKs that patch's primary.  A newly promoted
 * primary, and every primary that learns of a new peer, announces what it
 * holds, so that messages lost with a failed primary are repaired.
 */
#include "node.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "map.h"
#include "proto.h"
#include "quilt.h"
#include "rng.h"

#define NS_PER_MS 1000000ULL

/* Limits. */
#define QUILT_NODE_MAX_PEERS 4096      /* patches on the overlay */
#define QUILT_NODE_REPAIR_MAX 4096     /* repairs waiting to be sent */
#define QUILT_NODE_REPAIRS_PER_NACK 64 /* seqs answered for one NACK */
#define QUILT_NODE_ANNOUNCE_MAX 8192   /* origins in a session burst */
#define QUILT_NODE_SESSION_MAX_INTERVAL_NS (2000 * NS_PER_MS)
/* A primary greets every other primary this often, so that the NATs in
 * front of either keep their mappings and filters open (UDP mappings live
 * for 30 s or more: RFC 4787 REQ-5). */
#define QUILT_NODE_PUNCH_INTERVAL_NS (15000 * NS_PER_MS)
#define QUILT_NODE_PUNCH_RETRY_NS (1000 * NS_PER_MS)
/* A primary says its patch is a source (HEARTBEAT flags) this long after
 * it last sent one of the patch's messages onto the overlay. */
#define QUILT_NODE_SOURCE_HOLD_NS (60000 * NS_PER_MS)
/* Landmarks are pinged this often; the smallest RTT seen is kept (queueing
 * only ever adds to a sample). */
#define QUILT_NODE_LM_PING_NS (5000 * NS_PER_MS)
#define QUILT_NODE_LM_RETRY_NS (200 * NS_PER_MS)
/* A PONG whose token is older than this is not an answer to us. */
#define QUILT_NODE_PONG_MAX_AGE_NS (10000 * NS_PER_MS)
/* Overlay trees a primary keeps a view of (one per patch). */
#define QUILT_NODE_MAX_WAO_TREES 4096

typedef struct nack_entry {
  uint64_t origin;
  uint64_t due_ns;
  uint64_t interval_ns;
  quilt_addr holder; /* who last sent or announced the origin's data; a
                        place to ask where NACKs are not heard by all */
} nack_entry;

typedef struct repair_entry {
  uint64_t origin;
  uint64_t seq;
  uint64_t due_ns;
  quilt_addr to; /* requester, when !to_all */
  int to_all;
  int overlay; /* asked for across the overlay: relayed data, FORWARDED */
} repair_entry;

/* A table the bootstrap server sends in pages (PEERS, MEMBERS): a newer
 * epoch replaces the table once all of its pages have arrived. */
typedef struct paged {
  quilt_wire_peer *entries;
  uint32_t n;
  uint32_t epoch;
  int complete; /* entries hold a whole table of `epoch` */
  quilt_wire_peer *staging;
  uint8_t *staged;
  uint32_t staging_epoch;
  uint16_t staging_total;
  uint32_t staging_have;
} paged;

/* A burst of SESSION messages for a set of origins, to the patch or to the
 * overlay. */
typedef struct announcer {
  uint64_t *origins;
  uint8_t *remaining;
  uint32_t n, cap;
  uint64_t interval_ns;
  uint64_t due_ns; /* UINT64_MAX when idle */
} announcer;

struct quilt_node {
  quilt_node_config cfg;
  quilt_node_callbacks cb;
  void *user;
  quilt_rng rng;
  quilt_delivery *dlv;

  int started;
  int left;
  int joined;
  quilt_msg_patch_info pi;
  const quilt_proto_ops *proto;
  void *pstate;
  uint64_t ctl_due_ns; /* next JOIN retry or HEARTBEAT */
  uint64_t seq;        /* last published */
  unsigned join_backoff;
  uint64_t server_id; /* node id of the bootstrap server we hear from */
  uint64_t punch_due_ns; /* next greeting of the other primaries */
  uint64_t punch_full_ns; /* next greeting of all of them */
  uint8_t *greeted;      /* per entry of wao: a greeting came from it */
  uint32_t ngreeted;
  quilt_addr *wao_server_addr; /* per entry of wao: the address the server
                                  gave, when a greeting taught us another */
  uint32_t nwao_server_addr;

  /* Landmarks (LANDMARKS): the host measures its RTT to each and reports
   * the vector in its heartbeats, its position for the server's trees. */
  quilt_msg_landmarks lm;
  uint32_t lm_rtt_us[QUILT_WIRE_MAX_LANDMARKS];
  uint64_t lm_due_ns;   /* next PINGs */
  uint64_t lm_full_ns;  /* next PINGs to every landmark */
  uint64_t source_until_ns;  /* a primary whose patch published onto the
                                overlay: its heartbeats say so till then */
  uint64_t catchup_until_ns; /* till then, a first contact with an origin
                                recovers all it can (quilt__node_catch_up) */
  int lm_reported;      /* the full vector went out in a heartbeat */

  /* This host's place in the wide-area overlay trees, one per root patch
   * (TREE for QUILT_WIRE_TREE_WAO | root), used while it is its patch's
   * primary.  Without the view rooted at its own patch, a primary sends its
   * patch's messages directly to every other primary. */
  struct wao_view {
    uint32_t root;
    quilt_msg_tree view;
  } *wviews;
  uint32_t nwviews, cap_wviews;

  paged wao;     /* PEERS: the primaries of all patches */
  paged mtab;    /* MEMBERS: the members of this host's patch */

  nack_entry *nacks;
  uint32_t nnacks, cap_nacks;
  repair_entry *repairs;
  uint32_t nrepairs, cap_repairs;
  announcer patch_ann, wao_ann;

  quilt_wire_node *members;
  uint32_t nmembers, cap_members;

  quilt_node_counters ctr;
  /* quilt__node_set_proto_config: per protocol, its settings */
  uint8_t proto_cfg[QUILT_PROTO__COUNT][QUILT_NODE_PROTO_CONFIG_MAX];
  uint16_t proto_cfg_len[QUILT_PROTO__COUNT];
  uint8_t buf[QUILT_WIRE_MAX_DATAGRAM];
};

void quilt_node_config_default(quilt_node_config *c) {
  memset(c, 0, sizeof *c);
  c->delivery.retention_bytes = 4u << 20;
  c->delivery.retention_ns = 60000 * NS_PER_MS;
  c->delivery.repair_timeout_ns = 20000 * NS_PER_MS;
  c->join_retry_ns = 250 * NS_PER_MS;
  /* Timers sized for a data-centre patch (RTT well under 1 ms); a patch
   * with longer RTTs repairs correctly, only less eagerly suppressed. */
  c->nack_delay_min_ns = NS_PER_MS / 10;
  c->nack_delay_max_ns = NS_PER_MS / 2;
  c->nack_retry_ns = 20 * NS_PER_MS;
  c->nack_retry_max_ns = 1000 * NS_PER_MS;
  c->repair_delay_rep_max_ns = NS_PER_MS / 20;
  c->repair_delay_min_ns = NS_PER_MS / 4;
  c->repair_delay_max_ns = NS_PER_MS;
  /* SESSION bursts: 2, 4, 8 ... 64 ms after the last send.  Six chances
   * make a lost tail that goes unnoticed as unlikely as 0.05^6 at 5% loss;
   * starting early keeps repair latency near one patch RTT. */
  c->session_interval_ns = NS_PER_MS / 2;
  c->session_count = 6;
}

/* ---- small helpers ---- */

void quilt__node_send(quilt_node *n, const quilt_addr *to, const uint8_t *buf,
                      size_t len) {
  n->cb.send(n->user, to, buf, len);
}

void quilt__node_mcast_join(quilt_node *n, const quilt_addr *group) {
  if (n->cb.mcast_join)
    n->cb.mcast_join(n->user, group);
}

void quilt__node_mcast_leave(quilt_node *n, const quilt_addr *group) {
  if (n->cb.mcast_leave)
    n->cb.mcast_leave(n->user, group);
}

unsigned quilt__node_role(const quilt_node *n) {
  return n->joined ? n->pi.role : QUILT_ROLE_MEMBER;
}

uint64_t quilt__node_id(const quilt_node *n) { return n->cfg.id; }

const quilt_node_config *quilt__node_config(const quilt_node *n) {
  return &n->cfg;
}

uint64_t quilt__node_random(quilt_node *n, uint64_t lo, uint64_t hi) {
  return lo >= hi ? lo : quilt_rng_range(&n->rng, lo, hi);
}

size_t quilt__node_members(const quilt_node *n, const quilt_wire_node **out) {
  *out = n->members;
  return n->nmembers;
}

const quilt_addr *quilt__node_primary_addr(const quilt_node *n) {
  if (!n->joined || n->pi.nreps == 0 || n->pi.reps[0].id == n->cfg.id)
    return NULL;
  return &n->pi.reps[0].addr;
}

const quilt_addr *quilt__node_member_addr(const quilt_node *n, uint64_t id) {
  for (uint32_t i = 0; i < n->nmembers; i++)
    if (n->members[i].id == id)
      return &n->members[i].addr;
  return NULL;
}

static void msg_init(const quilt_node *n, quilt_msg *m, unsigned type) {
  memset(m, 0, sizeof *m);
  m->hdr.version = QUILT_WIRE_VERSION;
  m->hdr.type = (uint8_t)type;
  m->hdr.sender = n->cfg.id;
  m->hdr.group = n->cfg.group;
}

/* Encodes m into n->buf; returns the length, or 0 when it cannot be
 * encoded (a bug: every message built here fits by construction). */
static size_t encode(quilt_node *n, const quilt_msg *m) {
  int len = quilt_wire_encode(m, n->buf, sizeof n->buf);
  assert(len > 0);
  return len > 0 ? (size_t)len : 0;
}

static int is_primary(const quilt_node *n) {
  return n->joined && n->pi.role == QUILT_ROLE_PRIMARY;
}

static const quilt_wire_peer *peer_by_patch(const quilt_node *n,
                                            uint32_t patch) {
  for (uint32_t i = 0; i < n->wao.n; i++)
    if (n->wao.entries[i].patch_id == patch)
      return &n->wao.entries[i];
  return NULL;
}

static const quilt_wire_peer *peer_by_node(const quilt_node *n, uint64_t id) {
  for (uint32_t i = 0; i < n->wao.n; i++)
    if (n->wao.entries[i].node.id == id)
      return &n->wao.entries[i];
  return NULL;
}

static struct wao_view *wao_view_of(const quilt_node *n, uint32_t root) {
  for (uint32_t i = 0; i < n->nwviews; i++)
    if (n->wviews[i].root == root)
      return &n->wviews[i];
  return NULL;
}

/* Sends buf down the overlay tree rooted at `root` (to this primary's
 * children in it) except to `except` (NULL: none); returns the copies
 * sent. */
static uint32_t send_to_wao_tree(quilt_node *n, const struct wao_view *w,
                                 const uint8_t *buf, size_t len,
                                 const quilt_addr *except) {
  const quilt_msg_tree *v = &w->view;
  uint32_t sent = 0;
  for (unsigned i = 0; i < v->nchildren; i++) {
    if (v->children[i].id == n->cfg.id ||
        (except && quilt_addr_eq(except, &v->children[i].addr)))
      continue;
    quilt__node_send(n, &v->children[i].addr, buf, len);
    sent++;
  }
  return sent;
}

/* Sends buf to the primary of every other patch (the direct wide-area
 * overlay); returns how many copies went out. */
static uint32_t send_to_overlay(quilt_node *n, const uint8_t *buf,
                                size_t len) {
  uint32_t sent = 0;
  for (uint32_t p = 0; p < n->wao.n; p++) {
    const quilt_wire_peer *e = &n->wao.entries[p];
    if (e->patch_id == n->pi.patch_id || e->node.id == n->cfg.id)
      continue;
    quilt__node_send(n, &e->node.addr, buf, len);
    sent++;
  }
  return sent;
}

/* ---- session announcements ---- */

static void ann_touch(quilt_node *n, announcer *a, uint64_t origin,
                      uint64_t now) {
  uint32_t i;
  for (i = 0; i < a->n; i++)
    if (a->origins[i] == origin)
      break;
  if (i == a->n) {
    if (a->n == QUILT_NODE_ANNOUNCE_MAX)
      return; /* the next burst will carry it */
    if (a->n == a->cap) {
      uint32_t cap = a->cap ? a->cap * 2 : 16;
      uint64_t *o = realloc(a->origins, cap * sizeof *o);
      if (!o)
        return;
      a->origins = o;
      uint8_t *r = realloc(a->remaining, cap);
      if (!r)
        return;
      a->remaining = r;
      a->cap = cap;
    }
    a->origins[a->n++] = origin;
  }
  a->remaining[i] = (uint8_t)(n->cfg.session_count ? n->cfg.session_count
                                                   : 1);
  a->interval_ns = n->cfg.session_interval_ns;
  if (a->due_ns == UINT64_MAX || a->due_ns > now + a->interval_ns)
    a->due_ns = now + a->interval_ns;
}

static uint64_t held_upto(const quilt_node *n, uint64_t origin) {
  if (origin == n->cfg.id)
    return n->seq;
  quilt_origin_view v;
  if (!quilt_delivery_origin(n->dlv, origin, &v))
    return 0;
  return v.next - 1;
}

static void ann_fire(quilt_node *n, announcer *a, int wao, uint64_t now) {
  quilt_msg m;
  msg_init(n, &m, QUILT_MSG_SESSION);
  uint32_t i = 0;
  while (i < a->n) {
    m.u.session.count = 0;
    for (; i < a->n && m.u.session.count < QUILT_WIRE_MAX_SESSION; i++) {
      uint64_t seq = held_upto(n, a->origins[i]);
      if (seq == 0)
        continue;
      quilt_session_entry *e = &m.u.session.entries[m.u.session.count++];
      e->origin = a->origins[i];
      e->seq = seq;
    }
    if (m.u.session.count == 0)
      continue;
    size_t len = encode(n, &m);
    if (!len)
      break;
    if (wao) {
      send_to_overlay(n, n->buf, len);
    } else if (n->proto) {
      n->proto->send_all(n, n->pstate, n->buf, len, now);
    }
    n->ctr.sessions_sent++;
  }
  uint32_t k = 0;
  for (i = 0; i < a->n; i++) {
    if (--a->remaining[i] > 0) {
      a->origins[k] = a->origins[i];
      a->remaining[k] = a->remaining[i];
      k++;
    }
  }
  a->n = k;
  if (a->n > 0) {
    a->interval_ns *= 2;
    if (a->interval_ns > QUILT_NODE_SESSION_MAX_INTERVAL_NS)
      a->interval_ns = QUILT_NODE_SESSION_MAX_INTERVAL_NS;
    a->due_ns = now + a->interval_ns;
  } else {
    a->due_ns = UINT64_MAX;
  }
}

static void touch_own_patch_origins(quilt_node *n, uint64_t now);
static void paged_reset(paged *t);
static void send_heartbeat(quilt_node *n, uint64_t now);

/* ---- NACK scheduling ---- */

static nack_entry *nack_find(quilt_node *n, uint64_t origin) {
  for (uint32_t i = 0; i < n->nnacks; i++)
    if (n->nacks[i].origin == origin)
      return &n->nacks[i];
  return NULL;
}

/* Makes sure an origin with an open gap has a NACK scheduled; `from`
 * (NULL when unknown) sent or announced the origin's data just now. */
static void nack_ensure(quilt_node *n, uint64_t origin,
                        const quilt_addr *from, uint64_t now) {
  quilt_origin_view v;
  if (origin == n->cfg.id || !quilt_delivery_origin(n->dlv, origin, &v) ||
      v.highest < v.next)
    return;
  nack_entry *have = nack_find(n, origin);
  if (have) {
    if (from)
      have->holder = *from;
    return;
  }
  if (n->nnacks == n->cap_nacks) {
    uint32_t cap = n->cap_nacks ? n->cap_nacks * 2 : 16;
    nack_entry *e = realloc(n->nacks, cap * sizeof *e);
    if (!e)
      return; /* noticed again at the next data or session */
    n->nacks = e;
    n->cap_nacks = cap;
  }
  nack_entry *e = &n->nacks[n->nnacks++];
  e->origin = origin;
  e->due_ns = now + quilt__node_random(n, n->cfg.nack_delay_min_ns,
                                       n->cfg.nack_delay_max_ns);
  e->interval_ns = n->cfg.nack_retry_ns;
  if (from)
    e->holder = *from;
  else
    memset(&e->holder, 0, sizeof e->holder);
}

static void nack_send(quilt_node *n, nack_entry *e, uint64_t now) {
  quilt_msg m;
  msg_init(n, &m, QUILT_MSG_NACK);
  m.u.nack.origin = e->origin;
  m.u.nack.count = (uint8_t)quilt_delivery_missing(
      n->dlv, e->origin, m.u.nack.ranges, QUILT_WIRE_MAX_NACK);
  if (m.u.nack.count == 0)
    return;
  size_t len = encode(n, &m);
  if (!len)
    return;
  /* A primary asks the primary of the origin's patch across the overlay;
   * everyone else asks inside the patch.  When the origin's patch is not
   * known (it was announced by a primary missing from an older table of
   * primaries), the announcer, once the table lists it, says which. */
  quilt_origin_view v;
  const quilt_wire_peer *up = NULL;
  if (is_primary(n) && quilt_delivery_origin(n->dlv, e->origin, &v)) {
    if (v.origin_patch == 0 && e->holder.ip) {
      for (uint32_t i = 0; i < n->wao.n && !up; i++)
        if (quilt_addr_eq(&n->wao.entries[i].node.addr, &e->holder))
          up = &n->wao.entries[i];
      if (up) {
        if (up->patch_id == n->pi.patch_id)
          up = NULL;
        else
          quilt_delivery_announce(n->dlv, e->origin, 1, up->patch_id, now);
      }
    } else if (v.origin_patch != 0 && v.origin_patch != n->pi.patch_id) {
      up = peer_by_patch(n, v.origin_patch);
    }
  }
  if (up && up->node.id != n->cfg.id)
    quilt__node_send(n, &up->node.addr, n->buf, len);
  else if (n->proto)
    n->proto->send_nack(n, n->pstate, e->origin,
                        e->holder.ip ? &e->holder : NULL, n->buf, len, now);
  n->ctr.nacks_sent++;
}

static void nacks_run(quilt_node *n, uint64_t now) {
  for (uint32_t i = 0; i < n->nnacks;) {
    nack_entry *e = &n->nacks[i];
    quilt_origin_view v;
    if (!quilt_delivery_origin(n->dlv, e->origin, &v) || v.highest < v.next) {
      n->nacks[i] = n->nacks[--n->nnacks]; /* gap closed */
      continue;
    }
    if (e->due_ns <= now) {
      nack_send(n, e, now);
      e->due_ns = now + e->interval_ns;
      e->interval_ns *= 2;
      if (e->interval_ns > n->cfg.nack_retry_max_ns)
        e->interval_ns = n->cfg.nack_retry_max_ns;
    }
    i++;
  }
}

/* ---- repairs ---- */

static repair_entry *repair_find(quilt_node *n, uint64_t origin,
                                 uint64_t seq) {
  for (uint32_t i = 0; i < n->nrepairs; i++)
    if (n->repairs[i].origin == origin && n->repairs[i].seq == seq)
      return &n->repairs[i];
  return NULL;
}

static void repair_schedule(quilt_node *n, uint64_t origin, uint64_t seq,
                            uint64_t delay, int to_all, int overlay,
                            const quilt_addr *to, uint64_t now) {
  if (repair_find(n, origin, seq))
    return;
  if (n->nrepairs == QUILT_NODE_REPAIR_MAX) {
    n->ctr.repair_queue_full++;
    return;
  }
  if (n->nrepairs == n->cap_repairs) {
    uint32_t cap = n->cap_repairs ? n->cap_repairs * 2 : 16;
    repair_entry *r = realloc(n->repairs, cap * sizeof *r);
    if (!r) {
      n->ctr.repair_queue_full++;
      return;
    }
    n->repairs = r;
    n->cap_repairs = cap;
  }
  repair_entry *r = &n->repairs[n->nrepairs++];
  r->origin = origin;
  r->seq = seq;
  r->due_ns = now + delay;
  r->to_all = to_all;
  r->overlay = overlay;
  r->to = *to;
}

static void repair_cancel(quilt_node *n, uint64_t origin, uint64_t seq) {
  repair_entry *r = repair_find(n, origin, seq);
  if (r && r->to_all) {
    *r = n->repairs[--n->nrepairs];
    n->ctr.repairs_suppressed++;
  }
}

static void repairs_run(quilt_node *n, uint64_t now) {
  for (uint32_t i = 0; i < n->nrepairs;) {
    repair_entry *r = &n->repairs[i];
    if (r->due_ns > now) {
      i++;
      continue;
    }
    quilt_msg m;
    msg_init(n, &m, QUILT_MSG_DATA);
    if (quilt_delivery_lookup(n->dlv, r->origin, r->seq, now, &m.u.data)) {
      /* An answer across the overlay is relayed data as well: the primary
       * that asked injects it into its patch (bridge()), while a repair
       * among members never is. */
      m.u.data.flags = (uint8_t)(QUILT_DATA_REPAIR |
                                 (r->overlay ? QUILT_DATA_FORWARDED : 0));
      size_t len = encode(n, &m);
      if (len) {
        if (r->to_all && n->proto)
          n->proto->send_all(n, n->pstate, n->buf, len, now);
        else
          quilt__node_send(n, &r->to, n->buf, len);
        n->ctr.repairs_sent++;
      }
    }
    *r = n->repairs[--n->nrepairs];
  }
}

/* ---- bridging ---- */

/* Encodes d, relayed by this host, into n->buf; returns the length. */
static size_t encode_forwarded(quilt_node *n, const quilt_msg_data *d) {
  quilt_msg m;
  msg_init(n, &m, QUILT_MSG_DATA);
  m.u.data = *d;
  m.u.data.flags = QUILT_DATA_FORWARDED;
  return encode(n, &m);
}

/* Sends a message of this primary's patch onto the wide-area overlay: down
 * the overlay tree rooted here, or, without that tree's view, directly to
 * every other primary.  Its SESSION bursts go to every primary directly in
 * both cases, so that a primary under a relay that failed learns of the
 * message from its root within milliseconds and NACKs the root. */
static void forward_to_overlay(quilt_node *n, const quilt_msg_data *d,
                               uint64_t now) {
  size_t len = encode_forwarded(n, d);
  if (!len)
    return;
  /* The server keeps an overlay tree rooted at a primary only while its
   * patch publishes (QUILT_HB_SOURCE): the first message in a while is
   * told at once, so that the tree is there for the next ones. */
  int was_source = now < n->source_until_ns;
  n->source_until_ns = now + QUILT_NODE_SOURCE_HOLD_NS;
  if (!was_source) {
    send_heartbeat(n, now);
    len = encode_forwarded(n, d); /* n->buf held the heartbeat */
    if (!len)
      return;
  }
  const struct wao_view *w = wao_view_of(n, n->pi.patch_id);
  if (w)
    n->ctr.forwarded += send_to_wao_tree(n, w, n->buf, len, NULL);
  else
    n->ctr.forwarded += send_to_overlay(n, n->buf, len);
  ann_touch(n, &n->wao_ann, d->origin, now);
}

/* Relays a message of another patch down the overlay tree rooted at that
 * patch (nothing when this primary has no view of it: a leaf, or a view
 * not yet received, whose children learn of the message from the root's
 * SESSIONs). */
static void relay_on_overlay(quilt_node *n, const quilt_msg_data *d,
                             const quilt_addr *from) {
  const struct wao_view *w = wao_view_of(n, d->origin_patch);
  if (!w || w->view.nchildren == 0)
    return;
  size_t len = encode_forwarded(n, d);
  if (len)
    n->ctr.forwarded += send_to_wao_tree(n, w, n->buf, len, from);
}

static void inject_into_patch(quilt_node *n, const quilt_msg_data *d,
                              uint64_t now) {
  size_t len = encode_forwarded(n, d);
  if (!len || !n->proto)
    return;
  n->proto->send_all(n, n->pstate, n->buf, len, now);
  n->ctr.injected++;
  ann_touch(n, &n->patch_ann, d->origin, now);
}

typedef struct touch_ctx {
  quilt_node *n;
  uint64_t now;
} touch_ctx;

static void touch_one(void *arg, const quilt_origin_view *v) {
  touch_ctx *t = arg;
  if (v->origin_patch == t->n->pi.patch_id && v->next > 1)
    ann_touch(t->n, &t->n->wao_ann, v->origin, t->now);
}

/* A primary greets every other primary with a SESSION about its own stream
 * (seq 0 when it has published nothing: a greeting that announces nothing).
 * Sending first is what lets a primary behind a NAT receive: a
 * port-restricted NAT admits packets only from where its host has sent
 * (RFC 4787), so this punches the hole the overlay's traffic comes
 * through. */
static size_t encode_greeting(quilt_node *n) {
  quilt_msg m;
  msg_init(n, &m, QUILT_MSG_SESSION);
  m.u.session.count = 1;
  m.u.session.entries[0].origin = n->cfg.id;
  m.u.session.entries[0].seq = n->seq;
  return encode(n, &m);
}

/* Whether datagrams from a primary this host never sent to may be dropped
 * on their way in: behind a NAT that filters by address (RFC 4787:
 * restricted, port-restricted, symmetric), or one not measured.  A host
 * with a public address needs no hole, and one behind a full-cone NAT
 * keeps its one mapping open with its heartbeats to the server: neither
 * greets (both answer a greeting, which is how a filtered primary opens
 * its own NAT to them). */
static int filtered(const quilt_node *n) {
  return n->cfg.euid.nat != QUILT_NAT_NONE &&
         n->cfg.euid.nat != QUILT_NAT_FULL_CONE;
}

/* Greets the other primaries: all of them every QUILT_NODE_PUNCH_INTERVAL_NS
 * (full), and, every QUILT_NODE_PUNCH_RETRY_NS in between, those not yet
 * heard from since the table changed: a greeting lost, or dropped by the
 * peer's NAT before the peer's own greeting opened it, is retried within a
 * second instead of at the next full round. */
static void punch_peers_ex(quilt_node *n, uint64_t now, int full) {
  if (full)
    n->punch_full_ns = now + QUILT_NODE_PUNCH_INTERVAL_NS;
  n->punch_due_ns = n->punch_full_ns;
  if (!is_primary(n) || !filtered(n))
    return;
  size_t len = encode_greeting(n);
  if (!len)
    return;
  int silent = 0;
  for (uint32_t p = 0; p < n->wao.n; p++) {
    const quilt_wire_peer *e = &n->wao.entries[p];
    if (e->patch_id == n->pi.patch_id || e->node.id == n->cfg.id)
      continue;
    int heard = p < n->ngreeted && n->greeted[p];
    if (!full && heard)
      continue;
    if (!heard)
      silent = 1;
    quilt__node_send(n, &e->node.addr, n->buf, len);
  }
  if (silent && now + QUILT_NODE_PUNCH_RETRY_NS < n->punch_due_ns)
    n->punch_due_ns = now + QUILT_NODE_PUNCH_RETRY_NS;
}

static void punch_peers(quilt_node *n, uint64_t now) {
  punch_peers_ex(n, now, 1);
}

/* A primary (new, or with new peers) tells the overlay what it holds of
 * its patch's origins, so that peers can NACK what they missed. */
static void touch_own_patch_origins(quilt_node *n, uint64_t now) {
  touch_ctx t = {n, now};
  quilt_delivery_foreach(n->dlv, touch_one, &t);
  if (n->seq > 0)
    ann_touch(n, &n->wao_ann, n->cfg.id, now);
}

/* ---- delivery callbacks ---- */

static void on_deliver(void *user, const quilt_msg_data *d, uint64_t now) {
  quilt_node *n = user;
  if (d->origin != n->cfg.id && n->cb.deliver)
    n->cb.deliver(n->user, d, now);
}

static void on_loss(void *user, uint64_t origin, uint64_t first,
                    uint64_t count, uint64_t now) {
  quilt_node *n = user;
  if (n->cb.loss)
    n->cb.loss(n->user, origin, first, count, now);
}

/* ---- control plane ---- */

static void send_join(quilt_node *n) {
  quilt_msg m;
  msg_init(n, &m, QUILT_MSG_JOIN);
  m.u.join.addr = n->cfg.addr;
  m.u.join.euid = n->cfg.euid;
  size_t len = encode(n, &m);
  if (len)
    quilt__node_send(n, &n->cfg.bootstrap, n->buf, len);
}

static void send_heartbeat(quilt_node *n, uint64_t now) {
  quilt_msg m;
  msg_init(n, &m, QUILT_MSG_HEARTBEAT);
  m.u.heartbeat.addr = n->cfg.addr;
  m.u.heartbeat.euid = n->cfg.euid;
  m.u.heartbeat.patch_id = n->joined ? n->pi.patch_id : 0;
  m.u.heartbeat.role = (uint8_t)quilt__node_role(n);
  if (is_primary(n) && now < n->source_until_ns)
    m.u.heartbeat.flags = QUILT_HB_SOURCE;
  m.u.heartbeat.epoch = n->joined ? n->pi.epoch : 0;
  m.u.heartbeat.lm_epoch = n->lm.epoch;
  m.u.heartbeat.nrtt = n->lm.count;
  memcpy(m.u.heartbeat.rtt_us, n->lm_rtt_us,
         n->lm.count * sizeof n->lm_rtt_us[0]);
  size_t len = encode(n, &m);
  if (len)
    quilt__node_send(n, &n->cfg.bootstrap, n->buf, len);
}

static uint64_t heartbeat_ns(const quilt_node *n) {
  uint64_t ms = n->pi.heartbeat_ms ? n->pi.heartbeat_ms : 1000;
  return ms * NS_PER_MS;
}

static void leave_patch(quilt_node *n) {
  if (n->joined && n->proto)
    n->proto->stop(n, n->pstate);
  n->pstate = NULL;
  n->proto = NULL;
  n->joined = 0;
}

/* A bootstrap server that restarted is a new server (a new node id): the
 * epochs it announces start afresh, so the ones kept from the old server
 * must not make its PATCH_INFO and PEERS look stale. */
static void note_server(quilt_node *n, uint64_t sender) {
  if (sender == n->server_id)
    return;
  n->server_id = sender;
  n->pi.epoch = 0;
  n->wao.epoch = 0;
  n->wao.complete = 0;
  n->mtab.epoch = 0;
  n->mtab.complete = 0;
  n->lm.epoch = 0;
  n->nwviews = 0; /* the new server sends its own trees */
}

static void handle_patch_info(quilt_node *n, const quilt_msg_patch_info *pi,
                              uint64_t now) {
  const quilt_proto_ops *ops = quilt_proto_get(pi->protocol);
  if (!ops) {
    n->ctr.malformed++;
    return;
  }
  unsigned old_role = quilt__node_role(n);
  if (n->joined && pi->patch_id == n->pi.patch_id &&
      pi->protocol == n->pi.protocol) {
    if (pi->epoch < n->pi.epoch)
      return; /* stale */
    uint64_t old_hb = heartbeat_ns(n);
    n->pi = *pi;
    if (heartbeat_ns(n) < old_hb)
      n->ctl_due_ns = now; /* a new representative confirms at once */
  } else {
    leave_patch(n);
    paged_reset(&n->mtab); /* another patch: its own member list */
    n->pi = *pi;
    n->proto = ops;
    if (ops->start(n, &n->pstate, pi, now) != 0) {
      n->proto = NULL;
      n->pstate = NULL;
      n->ctl_due_ns = now + n->cfg.join_retry_ns;
      return;
    }
    n->joined = 1;
    n->join_backoff = 0;
    n->ctl_due_ns = now + heartbeat_ns(n);
  }
  if (n->pi.role == QUILT_ROLE_PRIMARY && old_role != QUILT_ROLE_PRIMARY) {
    punch_peers(n, now);
    touch_own_patch_origins(n, now);
  }
  if (n->cb.patch_changed)
    n->cb.patch_changed(n->user, n->pi.patch_id, n->pi.protocol, n->pi.role);
}

static void paged_reset(paged *t) {
  free(t->entries);
  free(t->staging);
  free(t->staged);
  memset(t, 0, sizeof *t);
}

/* Takes one page; returns 1 when it completed a newer table, now in
 * t->entries. */
static int paged_accept(paged *t, const quilt_msg_peers *p,
                        uint32_t max_total) {
  if (p->epoch < t->epoch || (p->epoch == t->epoch && t->complete))
    return 0;
  if (p->total > max_total)
    return 0;
  if (!t->staging || p->epoch != t->staging_epoch ||
      p->total != t->staging_total) {
    free(t->staging);
    free(t->staged);
    t->staging = calloc(p->total ? p->total : 1, sizeof *t->staging);
    t->staged = calloc(p->total ? p->total : 1, 1);
    if (!t->staging || !t->staged) {
      free(t->staging);
      free(t->staged);
      t->staging = NULL;
      t->staged = NULL;
      return 0;
    }
    t->staging_epoch = p->epoch;
    t->staging_total = p->total;
    t->staging_have = 0;
  }
  for (uint32_t i = 0; i < p->count; i++) {
    uint32_t at = (uint32_t)p->offset + i;
    if (at >= p->total)
      break;
    if (!t->staged[at]) {
      t->staged[at] = 1;
      t->staging_have++;
    }
    t->staging[at] = p->entries[i];
  }
  if (t->staging_have < t->staging_total)
    return 0;
  free(t->entries);
  free(t->staged);
  t->entries = t->staging;
  t->n = t->staging_total;
  t->epoch = t->staging_epoch;
  t->complete = 1;
  t->staging = NULL;
  t->staged = NULL;
  return 1;
}

/* Before the first address of the table of primaries is replaced by one
 * learnt from a greeting, keeps the addresses the server gave.  Returns 0
 * when out of memory (then nothing is replaced). */
static int remember_server_addrs(quilt_node *n) {
  if (n->wao_server_addr)
    return 1;
  n->wao_server_addr =
      malloc((n->wao.n ? n->wao.n : 1) * sizeof *n->wao_server_addr);
  if (!n->wao_server_addr)
    return 0;
  for (uint32_t k = 0; k < n->wao.n; k++)
    n->wao_server_addr[k] = n->wao.entries[k].node.addr;
  n->nwao_server_addr = n->wao.n;
  return 1;
}

static void handle_peers(quilt_node *n, const quilt_msg_peers *p,
                         uint64_t now) {
  if (p->total > QUILT_NODE_MAX_PEERS) {
    n->ctr.malformed++;
    return;
  }
  /* Addresses learnt from greetings, to carry over to the new table. */
  quilt_wire_peer *old = NULL;
  uint32_t nold = 0;
  if (n->wao_server_addr && n->nwao_server_addr == n->wao.n) {
    old = malloc((n->wao.n ? n->wao.n : 1) * sizeof *old);
    if (old) {
      memcpy(old, n->wao.entries, n->wao.n * sizeof *old);
      nold = n->wao.n;
    }
  }
  /* The primaries we have heard greet us, to carry over too: a new table
   * (every patch that forms or fails over sends one to every primary)
   * greets only the primaries that are new to it. */
  quilt_wire_peer *heard = NULL;
  uint32_t nheard = 0;
  if (n->ngreeted == n->wao.n && n->wao.n > 0) {
    heard = malloc(n->wao.n * sizeof *heard);
    for (uint32_t k = 0; heard && k < n->wao.n; k++)
      if (n->greeted[k])
        heard[nheard++] = n->wao.entries[k];
  }
  quilt_addr *old_server = n->wao_server_addr;
  uint32_t old_nserver = n->nwao_server_addr;
  n->wao_server_addr = NULL;
  n->nwao_server_addr = 0;
  if (!paged_accept(&n->wao, p, QUILT_NODE_MAX_PEERS)) {
    n->wao_server_addr = old_server; /* the table did not change */
    n->nwao_server_addr = old_nserver;
    free(old);
    free(heard);
    return;
  }
  for (uint32_t i = 0; i < nold; i++) {
    if (quilt_addr_eq(&old_server[i], &old[i].node.addr))
      continue; /* nothing learnt for this one */
    for (uint32_t j = 0; j < n->wao.n; j++)
      if (n->wao.entries[j].node.id == old[i].node.id &&
          quilt_addr_eq(&n->wao.entries[j].node.addr, &old_server[i])) {
        /* The server still gives the same address: keep the one that
         * works, and remember the server's. */
        if (!remember_server_addrs(n))
          break;
        n->wao.entries[j].node.addr = old[i].node.addr;
      }
  }
  free(old);
  free(old_server);
  /* A new table: greetings count anew, but for the primaries that greeted
   * us at the address the table still gives them. */
  free(n->greeted);
  n->greeted = NULL;
  n->ngreeted = 0;
  if (nheard > 0 && (n->greeted = calloc(n->wao.n ? n->wao.n : 1, 1))) {
    n->ngreeted = n->wao.n;
    quilt_map by_id;
    quilt_map_init(&by_id);
    int ok = 1;
    for (uint32_t k = 0; ok && k < nheard; k++)
      ok = quilt_map_put(&by_id, heard[k].node.id, k) == 0;
    uint32_t k;
    for (uint32_t j = 0; ok && j < n->wao.n; j++)
      if (quilt_map_get(&by_id, n->wao.entries[j].node.id, &k) &&
          quilt_addr_eq(&heard[k].node.addr, &n->wao.entries[j].node.addr))
        n->greeted[j] = 1;
    quilt_map_free(&by_id);
  }
  free(heard);
  if (is_primary(n)) {
    /* The others keep their 15 s rhythm: greet the ones not heard. */
    punch_peers_ex(n, now, n->punch_full_ns == 0);
    touch_own_patch_origins(n, now);
  }
}

/* Tells a member this host just learnt of how far its own stream goes, so
 * that messages published before the two knew of each other are noticed
 * and repaired rather than silently missed. */
static void announce_self_to(quilt_node *n, const quilt_addr *to) {
  if (n->seq == 0)
    return;
  quilt_msg m;
  msg_init(n, &m, QUILT_MSG_SESSION);
  m.u.session.count = 1;
  m.u.session.entries[0].origin = n->cfg.id;
  m.u.session.entries[0].seq = n->seq;
  size_t len = encode(n, &m);
  if (len) {
    quilt__node_send(n, to, n->buf, len);
    n->ctr.sessions_sent++;
  }
}

/* Tells a new neighbour (in a tree) how far this host holds every
 * origin's stream, so that each side NACKs what it missed before the two
 * were linked: a re-attached orphan gets what its old parent never passed
 * on, from its new parent's retention buffer. */
typedef struct announce_ctx {
  quilt_node *n;
  const quilt_addr *to;
  quilt_msg m;
} announce_ctx;

static void announce_flush(announce_ctx *a) {
  if (a->m.u.session.count == 0)
    return;
  size_t len = encode(a->n, &a->m);
  if (len) {
    quilt__node_send(a->n, a->to, a->n->buf, len);
    a->n->ctr.sessions_sent++;
  }
  a->m.u.session.count = 0;
}

static void announce_add(announce_ctx *a, uint64_t origin, uint64_t seq) {
  if (seq == 0)
    return;
  quilt_session_entry *e = &a->m.u.session.entries[a->m.u.session.count++];
  e->origin = origin;
  e->seq = seq;
  if (a->m.u.session.count == QUILT_WIRE_MAX_SESSION)
    announce_flush(a);
}

static void announce_one(void *arg, const quilt_origin_view *v) {
  announce_ctx *a = arg;
  if (v->origin != a->n->cfg.id)
    announce_add(a, v->origin, v->next - 1);
}

void quilt__node_announce_all_to(quilt_node *n, const quilt_addr *to) {
  announce_ctx a;
  a.n = n;
  a.to = to;
  msg_init(n, &a.m, QUILT_MSG_SESSION);
  announce_add(&a, n->cfg.id, n->seq);
  quilt_delivery_foreach(n->dlv, announce_one, &a);
  announce_flush(&a);
}

void quilt__node_announce(quilt_node *n, uint64_t origin, uint64_t now) {
  ann_touch(n, &n->patch_ann, origin, now);
}

static void announce_touch_one(void *arg, const quilt_origin_view *v) {
  touch_ctx *t = arg;
  if (v->next > 1 && v->origin != t->n->cfg.id)
    ann_touch(t->n, &t->n->patch_ann, v->origin, t->now);
}

void quilt__node_announce_all(quilt_node *n, uint64_t now) {
  touch_ctx t = {n, now};
  quilt_delivery_foreach(n->dlv, announce_touch_one, &t);
  if (n->seq > 0)
    ann_touch(n, &n->patch_ann, n->cfg.id, now);
}

const quilt_addr *quilt__node_bootstrap_addr(const quilt_node *n) {
  return &n->cfg.bootstrap;
}

void quilt__node_orphaned(quilt_node *n) { n->ctr.orphaned++; }

void quilt__node_catch_up(quilt_node *n, uint64_t until_ns) {
  if (until_ns > n->catchup_until_ns)
    n->catchup_until_ns = until_ns;
}

void quilt__node_resend(quilt_node *n, uint64_t origin, uint64_t seq,
                        const quilt_addr *to, const quilt_wire_node *nodes,
                        size_t count, uint64_t now) {
  quilt_msg m;
  msg_init(n, &m, QUILT_MSG_DATA);
  if (!quilt_delivery_lookup(n->dlv, origin, seq, now, &m.u.data))
    return;
  size_t len = encode(n, &m);
  if (!len)
    return;
  if (to)
    quilt__node_send(n, to, n->buf, len);
  for (size_t i = 0; i < count; i++)
    quilt__node_send(n, &nodes[i].addr, n->buf, len);
}

void quilt__node_resend_own(quilt_node *n, uint64_t seq, const quilt_addr *to,
                            const quilt_wire_node *nodes, size_t count,
                            uint64_t now) {
  quilt__node_resend(n, n->cfg.id, seq, to, nodes, count, now);
}

void quilt__node_reattached(quilt_node *n, uint64_t silent_ns) {
  n->ctr.reattached++;
  if (n->cb.reattached)
    n->cb.reattached(n->user, silent_ns);
}

/* ---- landmarks and trees ---- */

/* PINGs the landmarks: all of them every QUILT_NODE_LM_PING_NS, and those
 * still unmeasured every QUILT_NODE_LM_RETRY_NS (a lost PING or PONG would
 * otherwise leave a hole in the vector for a whole round). */
static void lm_ping(quilt_node *n, uint64_t now) {
  int full = n->lm_full_ns <= now;
  if (full)
    n->lm_full_ns = now + QUILT_NODE_LM_PING_NS;
  quilt_msg m;
  msg_init(n, &m, QUILT_MSG_PING);
  m.u.ping.token = now;
  size_t len = encode(n, &m);
  int missing = 0;
  for (unsigned i = 0; len && i < n->lm.count; i++) {
    if (n->lm.nodes[i].id == n->cfg.id)
      continue;
    int unknown = n->lm_rtt_us[i] == QUILT_WIRE_RTT_UNKNOWN;
    missing |= unknown;
    if (full || unknown)
      quilt__node_send(n, &n->lm.nodes[i].addr, n->buf, len);
  }
  n->lm_due_ns = n->lm_full_ns;
  if (missing && now + QUILT_NODE_LM_RETRY_NS < n->lm_due_ns)
    n->lm_due_ns = now + QUILT_NODE_LM_RETRY_NS;
}

static void handle_landmarks(quilt_node *n, const quilt_msg_landmarks *l,
                             uint64_t now) {
  if (l->epoch <= n->lm.epoch && n->lm.epoch != 0)
    return; /* stale or known */
  uint32_t rtt[QUILT_WIRE_MAX_LANDMARKS];
  for (unsigned i = 0; i < l->count; i++) {
    rtt[i] = QUILT_WIRE_RTT_UNKNOWN;
    if (l->nodes[i].id == n->cfg.id)
      rtt[i] = 0;
    for (unsigned j = 0; j < n->lm.count; j++)
      if (n->lm.nodes[j].id == l->nodes[i].id &&
          quilt_addr_eq(&n->lm.nodes[j].addr, &l->nodes[i].addr))
        rtt[i] = n->lm_rtt_us[j]; /* measured already */
  }
  n->lm = *l;
  memcpy(n->lm_rtt_us, rtt, sizeof rtt);
  n->lm_reported = 0;
  n->lm_full_ns = now;
  lm_ping(n, now);
}

static void lm_check_complete(quilt_node *n, uint64_t now) {
  if (n->lm_reported || !n->joined)
    return;
  for (unsigned i = 0; i < n->lm.count; i++)
    if (n->lm_rtt_us[i] == QUILT_WIRE_RTT_UNKNOWN)
      return;
  n->lm_reported = 1;
  n->ctl_due_ns = now; /* the server gets the whole vector at once */
}

static void handle_pong(quilt_node *n, const quilt_msg *m, uint64_t now) {
  uint64_t token = m->u.ping.token;
  if (token > now || now - token > QUILT_NODE_PONG_MAX_AGE_NS)
    return;
  uint64_t us = (now - token) / 1000;
  if (us >= QUILT_WIRE_RTT_UNKNOWN)
    us = QUILT_WIRE_RTT_UNKNOWN - 1;
  for (unsigned i = 0; i < n->lm.count; i++)
    if (n->lm.nodes[i].id == m->hdr.sender &&
        (n->lm_rtt_us[i] == QUILT_WIRE_RTT_UNKNOWN ||
         us < n->lm_rtt_us[i])) {
      n->lm_rtt_us[i] = (uint32_t)us;
      lm_check_complete(n, now);
    }
}

/* A view of one overlay tree (kept whatever the role, used while
 * primary).  Children that are new in a tree rooted elsewhere are told
 * what this primary holds of that root's origins by the root's own SESSION
 * bursts; a new child in the tree rooted here is told now. */
static void handle_wao_tree(quilt_node *n, const quilt_msg_tree *t,
                            uint64_t now) {
  (void)now;
  uint32_t root = QUILT_WIRE_TREE_WAO_ROOT(t->tree);
  struct wao_view *w = wao_view_of(n, root);
  if (w && t->epoch < w->view.epoch)
    return; /* stale */
  if (!w) {
    if (n->nwviews == QUILT_NODE_MAX_WAO_TREES)
      return;
    if (n->nwviews == n->cap_wviews) {
      uint32_t cap = n->cap_wviews ? n->cap_wviews * 2 : 8;
      struct wao_view *a = realloc(n->wviews, cap * sizeof *a);
      if (!a)
        return; /* the server re-sends views */
      n->wviews = a;
      n->cap_wviews = cap;
    }
    w = &n->wviews[n->nwviews++];
    memset(w, 0, sizeof *w);
    w->root = root;
  }
  quilt_msg_tree old = w->view;
  w->view = *t;
  if (!is_primary(n) || root != n->pi.patch_id)
    return;
  for (unsigned i = 0; i < t->nchildren; i++) {
    int known = 0;
    for (unsigned j = 0; j < old.nchildren && !known; j++)
      known = old.children[j].id == t->children[i].id &&
              quilt_addr_eq(&old.children[j].addr, &t->children[i].addr);
    if (!known && t->children[i].id != n->cfg.id)
      quilt__node_announce_all_to(n, &t->children[i].addr);
  }
}

/* MEMBERS: the bootstrap server's list of this patch's members (for
 * protocols that address members one by one); it replaces the list. */
static void handle_members(quilt_node *n, const quilt_msg_peers *p) {
  if (!n->joined || (p->count > 0 && p->entries[0].patch_id != n->pi.patch_id))
    return;
  if (!paged_accept(&n->mtab, p, QUILT_NODE_MAX_MEMBERS))
    return;
  quilt_wire_node *m = calloc(n->mtab.n ? n->mtab.n : 1, sizeof *m);
  if (!m)
    return;
  uint32_t k = 0;
  for (uint32_t i = 0; i < n->mtab.n; i++)
    if (n->mtab.entries[i].node.id != n->cfg.id &&
        n->mtab.entries[i].patch_id == n->pi.patch_id) {
      const quilt_wire_node *w = &n->mtab.entries[i].node;
      if (!quilt__node_member_addr(n, w->id))
        announce_self_to(n, &w->addr);
      m[k++] = *w;
    }
  free(n->members);
  n->members = m;
  n->nmembers = k;
  n->cap_members = n->mtab.n ? n->mtab.n : 1;
}

/* ---- data plane ---- */

static int is_patch_rep(const quilt_node *n, uint64_t id) {
  for (uint32_t i = 0; i < n->pi.nreps; i++)
    if (n->pi.reps[i].id == id)
      return 1;
  return 0;
}

/* A new message, published here or received: bridge it.  A message of
 * another patch's origin came over the overlay, unless a representative
 * of this patch injected it or a member sent it as a repair; it is
 * injected even when its sender is missing from the table of primaries
 * (a table being rebuilt, a primary just replaced), since dropping it
 * here would leave the whole patch without it. */
static void bridge(quilt_node *n, const quilt_msg_data *d, uint64_t sender,
                   const quilt_addr *from, uint64_t now) {
  if (!is_primary(n)) {
    /* A backup that other primaries already send to has been made primary
     * by the server, and the PATCH_INFO saying so is late or lost: what
     * comes over the overlay must reach the patch all the same (a message
     * delivered here and not injected would never be injected later). */
    if (n->joined && n->pi.role == QUILT_ROLE_BACKUP &&
        d->origin_patch != n->pi.patch_id && peer_by_node(n, sender))
      inject_into_patch(n, d, now);
    return;
  }
  if (d->origin_patch == n->pi.patch_id) {
    forward_to_overlay(n, d, now);
    /* Where it is one datagram, the primary announces its patch's
     * messages in the patch too: should the origin die before its own
     * SESSIONs go out, members that lost the message still learn that it
     * exists, and NACK for it.  (Where announcing means a copy per member,
     * the origin's own announcements stay the only ones.) */
    if (sender != n->cfg.id && n->proto && n->proto->multicast)
      ann_touch(n, &n->patch_ann, d->origin, now);
  }
  else if (peer_by_node(n, sender) ||
           (!is_patch_rep(n, sender) &&
            (!(d->flags & QUILT_DATA_REPAIR) ||
             (d->flags & QUILT_DATA_FORWARDED)))) {
    inject_into_patch(n, d, now);
    /* In the overlay tree rooted at the message's patch, a primary is also
     * a relay: the message goes on to its children there (once, the first
     * time this primary gets it). */
    relay_on_overlay(n, d, from);
  }
}

static void handle_data(quilt_node *n, const quilt_addr *from,
                        const quilt_msg *m, const uint8_t *dg, size_t len,
                        uint64_t now) {
  const quilt_msg_data *d = &m->u.data;
  if (d->origin == n->cfg.id)
    return; /* our own message, come back */
  repair_cancel(n, d->origin, d->seq);
  int rc = quilt_delivery_offer(n->dlv, d, now);
  if (rc != QUILT_ACCEPT_NEW)
    return;
  if (n->proto && n->proto->on_data)
    n->proto->on_data(n, n->pstate, from, d, dg, len, now);
  bridge(n, d, m->hdr.sender, from, now);
  nack_ensure(n, d->origin, from, now);
}

static void handle_session(quilt_node *n, const quilt_addr *from,
                           const quilt_msg *m, uint64_t now) {
  const quilt_wire_peer *peer = peer_by_node(n, m->hdr.sender);
  uint32_t patch = peer ? peer->patch_id : 0;
  /* The first greeting from a primary (punch_peers) means it can now hear
   * us, if a NAT was in the way: announce again what we hold, since what
   * we sent it before may never have got in. */
  if (peer && is_primary(n) && m->u.session.count == 1 &&
      m->u.session.entries[0].origin == m->hdr.sender) {
    uint32_t at = (uint32_t)(peer - n->wao.entries);
    /* Answer a primary where its greeting came from: behind a NAT that is
     * the mapping this very flow got, which may differ from the one the
     * bootstrap server saw (a NAT that found the port taken, e.g. by our
     * own earlier packets it dropped, picks another: RFC 4787 section
     * 4.1). */
    if (from && from->ip &&
        !quilt_addr_eq(&n->wao.entries[at].node.addr, from)) {
      if (remember_server_addrs(n))
        n->wao.entries[at].node.addr = *from;
    }
    if (n->ngreeted != n->wao.n) {
      uint8_t *g = calloc(n->wao.n ? n->wao.n : 1, 1);
      if (g) {
        free(n->greeted);
        n->greeted = g;
        n->ngreeted = n->wao.n;
      }
    }
    if (at < n->ngreeted && !n->greeted[at]) {
      n->greeted[at] = 1;
      /* Answer a first greeting with one: the greeter then hears this
       * primary too and stops retrying. */
      size_t glen = encode_greeting(n);
      if (glen)
        quilt__node_send(n, &n->wao.entries[at].node.addr, n->buf, glen);
      touch_own_patch_origins(n, now);
    }
  }
  for (uint32_t i = 0; i < m->u.session.count; i++) {
    const quilt_session_entry *e = &m->u.session.entries[i];
    if (e->origin == n->cfg.id)
      continue;
    quilt_delivery_announce(n->dlv, e->origin, e->seq, patch, now);
    nack_ensure(n, e->origin, from, now);
  }
}

static void handle_nack(quilt_node *n, const quilt_addr *from,
                        const quilt_msg *m, uint64_t now) {
  const quilt_msg_nack *k = &m->u.nack;
  int from_overlay = is_primary(n) && peer_by_node(n, m->hdr.sender);
  uint64_t delay = 0;
  int to_all = 0;
  if (!from_overlay && n->proto) {
    n->proto->repair_policy(n, n->pstate, from, &delay, &to_all);
    nack_entry *mine = nack_find(n, k->origin);
    if (mine && n->proto->nack_suppression &&
        mine->due_ns < now + mine->interval_ns)
      mine->due_ns = now + mine->interval_ns;
  }
  unsigned answered = 0;
  for (uint32_t r = 0; r < k->count; r++) {
    for (uint64_t s = k->ranges[r].first;
         s < k->ranges[r].first + k->ranges[r].count; s++) {
      if (answered == QUILT_NODE_REPAIRS_PER_NACK)
        return;
      answered++;
      quilt_msg_data held;
      if (!quilt_delivery_lookup(n->dlv, k->origin, s, now, &held))
        continue;
      repair_schedule(n, k->origin, s, delay, to_all, from_overlay, from,
                      now);
    }
  }
  if (delay == 0)
    repairs_run(n, now);
}

int quilt_node_read(quilt_node *n, const quilt_addr *from, const uint8_t *buf,
                    size_t len, uint64_t now) {
  if (n->left)
    return 0;
  quilt_msg m;
  int rc = quilt_wire_decode(&m, buf, len);
  if (rc < 0) {
    n->ctr.malformed++;
    return rc;
  }
  if (m.hdr.group != n->cfg.group) {
    n->ctr.foreign++;
    return 0;
  }
  if (m.hdr.sender == n->cfg.id)
    return 0; /* our own multicast, looped back by the host's stack */
  quilt_delivery_set_catchup(n->dlv, now < n->catchup_until_ns
                                         ? QUILT_DELIVERY_MAX_SEQ
                                         : QUILT_DELIVERY_CATCHUP);
  switch (m.hdr.type) {
  case QUILT_MSG_PATCH_INFO:
    note_server(n, m.hdr.sender);
    handle_patch_info(n, &m.u.patch_info, now);
    break;
  case QUILT_MSG_REJOIN:
    leave_patch(n);
    send_join(n);
    n->ctl_due_ns = now + n->cfg.join_retry_ns;
    break;
  case QUILT_MSG_PEERS:
    note_server(n, m.hdr.sender);
    handle_peers(n, &m.u.peers, now);
    break;
  case QUILT_MSG_MEMBERS:
    handle_members(n, &m.u.peers);
    break;
  case QUILT_MSG_DATA:
    if (n->joined)
      handle_data(n, from, &m, buf, len, now);
    break;
  case QUILT_MSG_SESSION:
    if (n->joined)
      handle_session(n, from, &m, now);
    break;
  case QUILT_MSG_NACK:
    if (n->joined)
      handle_nack(n, from, &m, now);
    break;
  case QUILT_MSG_PING:
    if (from && from->ip) {
      m.hdr.type = QUILT_MSG_PONG;
      m.hdr.sender = n->cfg.id;
      size_t plen = encode(n, &m);
      if (plen)
        quilt__node_send(n, from, n->buf, plen);
    }
    break;
  case QUILT_MSG_PONG:
    handle_pong(n, &m, now);
    if (n->joined && n->proto && n->proto->handle)
      n->proto->handle(n, n->pstate, from, &m, now);
    break;
  case QUILT_MSG_LANDMARKS:
    note_server(n, m.hdr.sender);
    handle_landmarks(n, &m.u.landmarks, now);
    break;
  case QUILT_MSG_TREE:
    if (m.u.tree.to != n->cfg.id)
      break; /* another host's view, sent to an address now ours */
    note_server(n, m.hdr.sender);
    if (QUILT_WIRE_TREE_IS_WAO(m.u.tree.tree))
      handle_wao_tree(n, &m.u.tree, now);
    else if (n->joined && n->proto && n->proto->handle &&
             m.u.tree.tree == n->pi.patch_id)
      n->proto->handle(n, n->pstate, from, &m, now);
    break;
  default:
    if (n->joined && n->proto && n->proto->handle)
      n->proto->handle(n, n->pstate, from, &m, now);
    break;
  }
  return 0;
}

int64_t quilt_node_publish(quilt_node *n, const uint8_t *payload, size_t len,
                           uint64_t now) {
  if (len > QUILT_WIRE_MAX_PAYLOAD)
    return QUILT_ERR_TOO_BIG;
  if (!n->joined || n->left)
    return QUILT_ERR_STATE;
  quilt_msg m;
  msg_init(n, &m, QUILT_MSG_DATA);
  quilt_msg_data *d = &m.u.data;
  d->origin = n->cfg.id;
  d->seq = ++n->seq;
  d->ts_ns = now;
  d->origin_patch = n->pi.patch_id;
  d->len = (uint16_t)len;
  d->payload = payload;
  size_t dlen = encode(n, &m);
  if (!dlen)
    return QUILT_ERR_FATAL;
  (void)quilt_delivery_offer(n->dlv, d, now); /* retained for repairs */
  n->proto->send_all(n, n->pstate, n->buf, dlen, now);
  ann_touch(n, &n->patch_ann, n->cfg.id, now);
  bridge(n, d, n->cfg.id, NULL, now);
  n->ctr.published++;
  return (int64_t)d->seq;
}

/* ---- timers ---- */

uint64_t quilt_node_expiry(const quilt_node *n) {
  if (!n->started || n->left)
    return UINT64_MAX;
  uint64_t t = n->ctl_due_ns;
  for (uint32_t i = 0; i < n->nnacks; i++)
    if (n->nacks[i].due_ns < t)
      t = n->nacks[i].due_ns;
  for (uint32_t i = 0; i < n->nrepairs; i++)
    if (n->repairs[i].due_ns < t)
      t = n->repairs[i].due_ns;
  if (n->patch_ann.due_ns < t)
    t = n->patch_ann.due_ns;
  if (is_primary(n) && n->punch_due_ns < t)
    t = n->punch_due_ns;
  if (n->wao_ann.due_ns < t)
    t = n->wao_ann.due_ns;
  if (n->lm.count > 0 && n->lm_due_ns < t)
    t = n->lm_due_ns;
  uint64_t d = quilt_delivery_expiry(n->dlv);
  if (d < t)
    t = d;
  if (n->proto && n->proto->expiry) {
    uint64_t p = n->proto->expiry(n->pstate);
    if (p < t)
      t = p;
  }
  return t;
}

void quilt_node_handle_expiry(quilt_node *n, uint64_t now) {
  if (!n->started || n->left)
    return;
  if (n->ctl_due_ns <= now) {
    if (n->joined) {
      send_heartbeat(n, now);
      n->ctl_due_ns = now + heartbeat_ns(n);
    } else {
      send_join(n);
      /* Back off while the server does not answer: 1x, 2x, 4x (1 s with
       * the default 250 ms), no further: a member heartbeats every second
       * anyway, so a JOIN a second costs the server no more, and a host
       * on a lossy path that lost a few exchanges is not kept out for
       * seconds. */
      if (n->join_backoff < 2)
        n->join_backoff++;
      n->ctl_due_ns = now + (n->cfg.join_retry_ns << n->join_backoff);
    }
  }
  if (quilt_delivery_expiry(n->dlv) <= now)
    (void)quilt_delivery_expire(n->dlv, now);
  nacks_run(n, now);
  repairs_run(n, now);
  if (n->patch_ann.due_ns <= now)
    ann_fire(n, &n->patch_ann, 0, now);
  if (is_primary(n) && n->punch_due_ns <= now)
    punch_peers_ex(n, now, n->punch_full_ns <= now);
  if (n->wao_ann.due_ns <= now) {
    if (is_primary(n))
      ann_fire(n, &n->wao_ann, 1, now);
    else {
      n->wao_ann.n = 0;
      n->wao_ann.due_ns = UINT64_MAX;
    }
  }
  if (n->lm.count > 0 && n->lm_due_ns <= now)
    lm_ping(n, now);
  if (n->proto && n->proto->expiry && n->proto->handle_expiry &&
      n->proto->expiry(n->pstate) <= now)
    n->proto->handle_expiry(n, n->pstate, now);
}

/* ---- life cycle ---- */

int quilt_node_start(quilt_node *n, uint64_t now) {
  if (n->started)
    return QUILT_ERR_STATE;
  n->started = 1;
  send_join(n);
  n->ctl_due_ns = now + n->cfg.join_retry_ns;
  return 0;
}

void quilt_node_leave(quilt_node *n, uint64_t now) {
  (void)now;
  if (!n->started || n->left)
    return;
  quilt_msg m;
  msg_init(n, &m, QUILT_MSG_LEAVE);
  size_t len = encode(n, &m);
  if (len)
    quilt__node_send(n, &n->cfg.bootstrap, n->buf, len);
  leave_patch(n);
  n->left = 1;
}

int quilt_node_add_member(quilt_node *n, uint64_t id, const quilt_addr *addr) {
  if (id == n->cfg.id || quilt__node_member_addr(n, id))
    return QUILT_ERR_DUPLICATE;
  if (n->nmembers == QUILT_NODE_MAX_MEMBERS)
    return QUILT_ERR_LIMIT;
  if (n->nmembers == n->cap_members) {
    uint32_t cap = n->cap_members ? n->cap_members * 2 : 16;
    quilt_wire_node *m = realloc(n->members, cap * sizeof *m);
    if (!m)
      return QUILT_ERR_NOMEM;
    n->members = m;
    n->cap_members = cap;
  }
  n->members[n->nmembers].id = id;
  n->members[n->nmembers].addr = *addr;
  n->nmembers++;
  return 0;
}

void quilt_node_counters_get(const quilt_node *n, quilt_node_counters *c) {
  *c = n->ctr;
  quilt_delivery_counters_get(n->dlv, &c->delivery);
}

void quilt_node_status_get(const quilt_node *n, quilt_node_status *s) {
  memset(s, 0, sizeof *s);
  s->joined = n->joined;
  if (n->joined) {
    s->patch_id = n->pi.patch_id;
    s->protocol = n->pi.protocol;
    s->role = n->pi.role;
    s->epoch = n->pi.epoch;
    if (n->proto && n->proto->tree_view) {
      s->in_tree = 1;
      n->proto->tree_view(n->pstate, &s->tree_parent, &s->tree_epoch,
                          &s->tree_orphan);
    }
  }
  s->npeers = n->wao.n;
}

int quilt_node_origin_get(const quilt_node *n, uint64_t origin,
                          quilt_origin_view *v) {
  return quilt_delivery_origin(n->dlv, origin, v);
}

int quilt_node_new(quilt_node **out, const quilt_node_config *cfg,
                   const quilt_node_callbacks *cb, void *user) {
  if (!cfg || !cb || !cb->send || cfg->id == 0 ||
      cfg->nack_delay_min_ns > cfg->nack_delay_max_ns ||
      cfg->repair_delay_min_ns > cfg->repair_delay_max_ns)
    return QUILT_ERR_INVAL;
  quilt_node *n = calloc(1, sizeof *n);
  if (!n)
    return QUILT_ERR_NOMEM;
  n->cfg = *cfg;
  n->cb = *cb;
  n->user = user;
  quilt_rng_init(&n->rng, cfg->seed, cfg->id);
  quilt_delivery_callbacks dcb = {on_deliver, on_loss};
  int rc = quilt_delivery_new(&n->dlv, &cfg->delivery, &dcb, n);
  if (rc < 0) {
    free(n);
    return rc;
  }
  n->patch_ann.due_ns = UINT64_MAX;
  n->wao_ann.due_ns = UINT64_MAX;
  n->ctl_due_ns = UINT64_MAX;
  n->lm_due_ns = UINT64_MAX;
  *out = n;
  return 0;
}

void quilt_node_del(quilt_node *n) {
  if (!n)
    return;
  leave_patch(n);
  quilt_delivery_del(n->dlv);
  paged_reset(&n->wao);
  paged_reset(&n->mtab);
  free(n->greeted);
  free(n->wao_server_addr);
  free(n->wviews);
  free(n->nacks);
  free(n->repairs);
  free(n->patch_ann.origins);
  free(n->patch_ann.remaining);
  free(n->wao_ann.origins);
  free(n->wao_ann.remaining);
  free(n->members);
  free(n);
}

/* ---- for protocol implementations: settings, state, retention ---- */

int quilt__node_set_proto_config(quilt_node *n, unsigned protocol,
                                 const void *cfg, size_t len) {
  if (protocol >= QUILT_PROTO__COUNT || len > QUILT_NODE_PROTO_CONFIG_MAX ||
      (len > 0 && !cfg))
    return QUILT_ERR_INVAL;
  if (len > 0)
    memcpy(n->proto_cfg[protocol], cfg, len);
  n->proto_cfg_len[protocol] = (uint16_t)len;
  return 0;
}

const void *quilt__node_proto_config(const quilt_node *n, unsigned protocol,
                                     size_t *len) {
  if (protocol >= QUILT_PROTO__COUNT || n->proto_cfg_len[protocol] == 0) {
    *len = 0;
    return NULL;
  }
  *len = n->proto_cfg_len[protocol];
  return n->proto_cfg[protocol];
}

void *quilt__node_proto_state(const quilt_node *n, unsigned protocol) {
  if (!n->joined || !n->proto || n->pi.protocol != protocol)
    return NULL;
  return n->pstate;
}

int quilt__node_lookup(quilt_node *n, uint64_t origin, uint64_t seq,
                       uint64_t now, quilt_msg_data *out) {
  return quilt_delivery_lookup(n->dlv, origin, seq, now, out);
}

const quilt_msg_patch_info *quilt__node_patch_info(const quilt_node *n) {
  return n->joined ? &n->pi : NULL;
}
