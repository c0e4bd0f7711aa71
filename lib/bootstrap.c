/*
 * bootstrap.c -- rendezvous, patch table, representatives.
 *
 * Tables, each bounded by the config:
 *   hosts    stable slots with a free list, indexed by node id (map.h);
 *   patches  stable slots, each with its member list (host slots) and its
 *            k representatives (host slots, [0] the primary).
 * A host's slot never moves while it is admitted, so a patch can refer to
 * its members by slot.
 *
 * Representatives are ranked by connectivity (no NAT first), then uplink
 * bandwidth, then RTT (DESIGN.md section 2); ties keep the earlier choice,
 * so that the primary does not change while nothing is wrong.
 *
 *   groups   stable slots, one per group with hosts: its landmarks
 *            (landmark.h);
 *   trees    one per patch of the tree protocol over its members, and
 *            one per patch over all the patches of its group, rooted at
 *            it: the wide-area overlay tree its origins' messages travel
 *            (the Quilt paper's WAO, an OMNI tree rooted at the source's
 *            representative).  An OMNI tree (omni.h) whose node i stands
 *            for a host (a patch, in the overlay trees) recorded in
 *            nodes[i], with a snapshot of its position so that the
 *            latencies stay fixed between optimisations (omni.h needs a
 *            pure latency function).
 *
 * Trees follow the patch table lazily: any change to a patch's members
 * marks the patch dirty, any change to the primaries marks the overlay
 * dirty, and at the end of each event (settle) every dirty tree is brought
 * in line -- nodes whose host or patch is gone removed, new ones inserted
 * as leaves -- and the views that changed are sent.  Rebuilds and
 * re-optimisations run from a timer, at most once per tree_rebuild_ns per
 * tree, so the work per event stays O(tree size).
 *
 * Regions follow the same pattern: a heartbeat whose vector gives its host
 * another region than the one it was placed with lists the host's patch
 * (O(QUILT_LM_MAX) per heartbeat); a timer every REGION_TICK_NS looks at
 * the listed patches (a bounded number of members per tick), re-keys or
 * moves at most the tick's share of region_moves_per_sec hosts, and lists
 * again what it had to put off, with the time it may be done.
 */
#include "bootstrap.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "landmark.h"
#include "map.h"
#include "omni.h"
#include "proto.h"
#include "quilt.h"
#include "rng.h"

#define NS_PER_MS 1000000ULL
#define NO_SLOT UINT32_MAX
/* Degree bound of a tree node: what a TREE can list and omni allows. */
#define TREE_MAX_DEGREE                                                        \
  (QUILT_WIRE_MAX_CHILDREN < QUILT_OMNI_MAX_DEGREE ? QUILT_WIRE_MAX_CHILDREN   \
                                                   : QUILT_OMNI_MAX_DEGREE)
#define TREE_MIN_CAP 16        /* omni nodes allocated for a small tree */
#define TREE_MEDIAN_SAMPLE 128 /* others summed per root candidate */
#define TREE_REFRESH_SLICES 16 /* views re-sent in this many slices */
#define REGION_TICK_NS (50 * NS_PER_MS) /* moves are made in ticks */
#define REGION_SCAN_MAX                                                        \
  8192 /* members looked at per tick (a patch is                               \
          looked at whole, so one more patch) */

typedef struct host {
  uint64_t id;
  uint32_t group;
  quilt_addr addr;
  quilt_euid euid;
  uint32_t patch; /* patch slot */
  uint64_t last_seen_ns;
  int used;
  int rep_acked;    /* its heartbeats say it knows it is a representative */
  int claimed;      /* was a representative of its patch under a previous
                       server (said so in the heartbeat that admitted it) */
  uint32_t gslot;   /* its group */
  quilt_lm_pos pos; /* latest position (landmark RTTs of its heartbeats) */
  uint32_t pos_gen; /* changes whenever pos or the uplink changes */
  uint32_t tidx;    /* its node in its patch's tree, if there (check it) */
  int tree_out;     /* taken out of its patch's tree after an ORPHAN named
                       it, until it is heard from again */
  /* Regions, for a host whose EUID region is 0: the region the rules see
   * for it (the one its patch was chosen with): 0 until its vector is
   * known, provisional after a restart (QUILT_BOOTSTRAP_REGION_PROVISIONAL
   * | the patch its heartbeat named), then the region of a landmark. */
  uint32_t region;
  uint32_t region_bad; /* a region no rule or patch could take it in:
                          not tried again */
  uint64_t moved_ns;   /* its last region move, 0 = never */
  uint32_t lm_epoch;   /* the landmark list its vector became complete
                          for, and when: the choice of landmarks has seen
                          it if it ran later */
  uint64_t complete_ns;
} host;

typedef struct tree tree;

typedef struct patch {
  uint32_t id;
  uint32_t group;
  unsigned rule;
  unsigned protocol;
  unsigned nkeys;
  uint32_t keys[QUILT_RULES_MAX_KEYS];
  uint32_t max_members;
  uint32_t *members; /* host slots */
  uint32_t nmembers, cap_members;
  uint32_t reps[QUILT_BOOTSTRAP_MAX_REPS];
  uint32_t nreps;
  uint32_t epoch;
  uint32_t members_epoch; /* version of the member list sent */
  int members_dirty;      /* members changed since the last MEMBERS */
  int used;
  uint32_t gslot;    /* its group */
  tree *tree;        /* QUILT_PROTO_TREE: the members' tree */
  tree *wao;         /* the overlay tree rooted at this patch */
  int dirty;         /* listed in b->dirty: members changed */
  int wao_out;       /* taken out of the overlay trees after an ORPHAN named
                        its primary, until that primary is heard from */
  int source;        /* its primary said the patch publishes (HEARTBEAT
                        QUILT_HB_SOURCE): it roots an overlay tree */
  int region_listed; /* in b->rlist: 1; 2 while kept by a tick */
  uint64_t region_due_ns; /* when the region tick may look at it */
} patch;

typedef struct grp {
  int used;
  uint32_t id;
  uint32_t nhosts;
  quilt_lm_set lm;
  uint32_t lm_epoch;
  int lm_dirty;           /* the list changed: new epoch at settle */
  uint64_t lm_changed_ns; /* when the epoch last changed */
  uint64_t lm_idle_ns;    /* when the last choice since then found no one
                             to add (0: none did) */
  uint32_t nprimaries;    /* patches with a primary, as of the last
                             wao_settle */
} grp;

/* A node of a tree: who it stands for, and what the latencies and the
 * degree bound were computed from. */
typedef struct tnode {
  uint32_t ref;     /* host slot (patch tree) or patch slot (overlay
                       tree); NO_SLOT: a free index */
  uint64_t key;     /* host id or patch id: ref still means the same */
  uint64_t who;     /* node id of the host the view goes to (in the
                       overlay: the patch's primary when last looked) */
  uint32_t pos_gen; /* that host's pos_gen when last looked at */
  uint32_t degree;
  uint32_t weight;    /* c_i: 1, or the patch's members in the overlay */
  uint64_t sent_hash; /* hash of the view last sent, 0 = none */
  quilt_lm_pos pos;   /* snapshot the latencies come from */
} tnode;

struct tree {
  quilt_bootstrap *b;
  uint32_t id; /* patch id, or QUILT_WIRE_TREE_WAO | the root's id */
  uint32_t gslot;
  uint32_t pslot; /* the patch: whose members, or the overlay's root */
  quilt_omni *t;  /* NULL while empty */
  tnode *nodes;   /* cap entries, indexed like the omni nodes */
  uint32_t cap, live;
  quilt_map slot_idx; /* overlay trees: patch slot -> node (check it) */
  uint32_t epoch;
  uint32_t built_lm_epoch; /* the group's landmark epoch at the last build */
  uint64_t last_build_ns, last_improve_ns;
  uint64_t rebuild_due_ns; /* a fuller build after the first, or none */
  int changed;             /* structure or positions changed since optimised */
  int views_dirty;         /* some view may have changed */
};

struct quilt_bootstrap {
  quilt_bootstrap_config cfg;
  quilt_bootstrap_callbacks cb;
  void *user;

  host *hosts;
  uint32_t nhosts_slots, cap_hosts;
  uint32_t *free_hosts;
  uint32_t nfree_hosts;
  quilt_map host_index;
  uint32_t nhosts;

  patch *patches;
  uint32_t npatch_slots, cap_patches;
  uint32_t npatches;
  uint32_t next_patch_id;

  uint32_t peers_epoch;
  int peers_dirty;
  uint64_t peers_due_ns;
  uint64_t members_due_ns; /* next MEMBERS round, UINT64_MAX = none */
  uint64_t sweep_due_ns;

  grp *groups;
  uint32_t ngroup_slots, cap_groups;

  uint32_t *dirty; /* patch slots whose members changed, for settle */
  uint32_t ndirty, cap_dirty;
  int dirty_all; /* the list could not grow: look at every patch */
  int wao_dirty; /* the primaries changed */
  uint32_t lm_serial;
  uint32_t pos_gen;
  uint32_t epoch_clock; /* low 24 bits of the latest epoch (next_epoch) */
  uint64_t lm_due_ns, tree_due_ns, refresh_due_ns;
  uint32_t refresh_slice;
  uint32_t *rlist; /* patch slots with hosts bound for another region */
  uint32_t nrlist, cap_rlist;
  uint64_t region_due_ns;  /* next region tick, UINT64_MAX = none */
  uint64_t region_tick_ns; /* the last one */
  quilt_rng rng;
  uint32_t scratch[QUILT_OMNI_MAX_NODES];

  quilt_bootstrap_counters ctr;
  uint8_t buf[QUILT_WIRE_MAX_DATAGRAM];
};

void quilt_bootstrap_config_default(quilt_bootstrap_config *c) {
  memset(c, 0, sizeof *c);
  c->id = 1;
  c->reps_per_patch = 2;
  c->heartbeat_ms = 1000;
  c->miss_limit = 3;
  c->rep_heartbeat_ms = 20;
  c->rep_miss_limit = 5;
  c->mcast_base = (239u << 24) | (192u << 16); /* 239.192/14: org-local */
  c->mcast_port = 7400;
  c->max_hosts = 1000000;
  c->max_patches = 65535;
  c->peers_refresh_ns = 2000 * NS_PER_MS;
  c->peers_batch_ns = 200 * NS_PER_MS;
  c->members_max = 256;
  c->send_members = 1;
  c->seed = 1;
  c->landmarks_max = 8;
  c->landmark_period_ns = 500 * NS_PER_MS;
  c->landmark_min_rtt_us = 1000;
  c->wao_tree = 1;
  c->wao_eager_patches = 4;
  c->wao_max_patches = 128;
  c->tree_hop_us = 50;
  c->tree_rate_kbps = 100000;
  c->tree_rebuild_ns = 1000 * NS_PER_MS;
  c->tree_rebuild_rounds = 32;
  c->tree_improve_rounds = 4;
  c->tree_refresh_ns = 5000 * NS_PER_MS;
  c->region_settle_ns = 2000 * NS_PER_MS;
  c->region_move_min_ns = 10000 * NS_PER_MS;
  c->region_moves_per_sec = 200;
}

/* Every epoch the server announces -- of a patch (PATCH_INFO), a member
 * list, a landmark list, a tree -- comes from this one clock: the
 * incarnation in the top byte, a counter below.  So a patch, group or
 * tree made anew under an id that was used before (a host heard from
 * again after it was dropped brings its old patch id back) still counts
 * up for every host that knew the old one. */
static uint32_t next_epoch(quilt_bootstrap *b) {
  b->epoch_clock = (b->epoch_clock + 1) & 0xFFFFFFu;
  return ((uint32_t)b->cfg.incarnation << 24) | b->epoch_clock;
}

/* ---- the EUID as the rules see it ---- */

/* h's EUID with the server's region where the host gave none. */
static quilt_euid rules_euid(const host *h) {
  quilt_euid e = h->euid;
  if (e.region == 0)
    e.region = h->region;
  return e;
}

/* Whether a match gives p's rule and key (p is one of its shards). */
static int same_key(const quilt_rule_match *m, const patch *p) {
  return m->rule == p->rule && m->nkeys == p->nkeys &&
         memcmp(m->keys, p->keys, m->nkeys * sizeof m->keys[0]) == 0;
}

/* ---- sending ---- */

static void msg_init(const quilt_bootstrap *b, quilt_msg *m, unsigned type,
                     uint32_t group) {
  memset(m, 0, sizeof *m);
  m->hdr.version = QUILT_WIRE_VERSION;
  m->hdr.type = (uint8_t)type;
  m->hdr.sender = b->cfg.id;
  m->hdr.group = group;
}

static void send_msg(quilt_bootstrap *b, const quilt_addr *to,
                     const quilt_msg *m) {
  int len = quilt_wire_encode(m, b->buf, sizeof b->buf);
  assert(len > 0);
  if (len > 0)
    b->cb.send(b->user, to, b->buf, (size_t)len);
}

static unsigned role_of(const patch *p, uint32_t slot) {
  for (uint32_t i = 0; i < p->nreps; i++)
    if (p->reps[i] == slot)
      return i == 0 ? QUILT_ROLE_PRIMARY : QUILT_ROLE_BACKUP;
  return QUILT_ROLE_MEMBER;
}

static void send_patch_info(quilt_bootstrap *b, uint32_t slot) {
  const host *h = &b->hosts[slot];
  const patch *p = &b->patches[h->patch];
  quilt_msg m;
  msg_init(b, &m, QUILT_MSG_PATCH_INFO, h->group);
  quilt_msg_patch_info *pi = &m.u.patch_info;
  pi->patch_id = p->id;
  pi->protocol = (uint8_t)p->protocol;
  pi->role = (uint8_t)role_of(p, slot);
  pi->epoch = p->epoch;
  if (p->protocol == QUILT_PROTO_IPMC) {
    pi->mcast.ip = b->cfg.mcast_base + p->id;
    pi->mcast.port = b->cfg.mcast_port;
  }
  pi->heartbeat_ms = pi->role == QUILT_ROLE_MEMBER ? b->cfg.heartbeat_ms
                                                   : b->cfg.rep_heartbeat_ms;
  pi->nreps = (uint8_t)p->nreps;
  for (uint32_t i = 0; i < p->nreps; i++) {
    pi->reps[i].id = b->hosts[p->reps[i]].id;
    pi->reps[i].addr = b->hosts[p->reps[i]].addr;
  }
  send_msg(b, &h->addr, &m);
}

static void tell_patch(quilt_bootstrap *b, const patch *p) {
  for (uint32_t i = 0; i < p->nmembers; i++)
    send_patch_info(b, p->members[i]);
}

/* Sends the table of primaries of `group` to every primary in it.  A
 * backup has no use for it (only the primary bridges), and one the server
 * promotes is in the round that the promotion starts within 5 ms
 * (patch_remove_member): sending it to the backups too made PEERS three
 * times as large with three representatives a patch. */
static void send_peers_group(quilt_bootstrap *b, uint32_t group) {
  uint32_t total = 0;
  for (uint32_t i = 0; i < b->npatch_slots; i++) {
    const patch *p = &b->patches[i];
    if (p->used && p->group == group && p->nreps > 0)
      total++;
  }
  if (total > UINT16_MAX)
    total = UINT16_MAX;
  /* One page at a time (an empty table is one empty page), each sent to
   * every representative of the group. */
  quilt_msg page;
  quilt_msg *m = &page;
  uint32_t at = 0, i = 0;
  do {
    msg_init(b, m, QUILT_MSG_PEERS, group);
    m->u.peers.epoch = b->peers_epoch;
    m->u.peers.total = (uint16_t)total;
    m->u.peers.offset = (uint16_t)at;
    for (; i < b->npatch_slots && m->u.peers.count < QUILT_WIRE_MAX_PEERS &&
           at < total;
         i++) {
      const patch *p = &b->patches[i];
      if (!p->used || p->group != group || p->nreps == 0)
        continue;
      quilt_wire_peer *e = &m->u.peers.entries[m->u.peers.count++];
      e->patch_id = p->id;
      e->node.id = b->hosts[p->reps[0]].id;
      e->node.addr = b->hosts[p->reps[0]].addr;
      at++;
    }
    for (uint32_t j = 0; j < b->npatch_slots; j++) {
      const patch *p = &b->patches[j];
      if (!p->used || p->group != group)
        continue;
      if (p->nreps > 0)
        send_msg(b, &b->hosts[p->reps[0]].addr, m);
    }
  } while (at < total);
}

static void send_peers(quilt_bootstrap *b, uint64_t now) {
  /* One pass per distinct group. */
  for (uint32_t i = 0; i < b->npatch_slots; i++) {
    const patch *p = &b->patches[i];
    if (!p->used)
      continue;
    int seen = 0;
    for (uint32_t j = 0; j < i && !seen; j++)
      seen = b->patches[j].used && b->patches[j].group == p->group;
    if (!seen)
      send_peers_group(b, p->group);
  }
  b->peers_dirty = 0;
  b->peers_due_ns = now + b->cfg.peers_refresh_ns;
}

/* The table of primaries changed.  Every change goes out in one PEERS
 * round to every representative (O(patches^2) bytes), so changes are
 * coalesced: a replaced primary (`urgent`) within 5 ms, since traffic to
 * the old one is lost until the round arrives; a patch that forms or goes
 * away within peers_batch_ns, so that a join wave that makes a patch after
 * another costs a round per batch, not one per patch. */
static void peers_changed(quilt_bootstrap *b, uint64_t now, int urgent) {
  b->peers_epoch++;
  b->peers_dirty = 1;
  b->wao_dirty = 1; /* the overlay tree follows the primaries */
  uint64_t within = urgent ? 5 * NS_PER_MS : b->cfg.peers_batch_ns;
  if (b->peers_due_ns > now + within)
    b->peers_due_ns = now + within;
}

/* ---- groups and landmarks ---- */

/* Slot of the group with this id, created if new; NO_SLOT when out of
 * memory.  Linear in the number of groups, on admission only. */
static uint32_t group_get(quilt_bootstrap *b, uint32_t id) {
  uint32_t slot = NO_SLOT;
  for (uint32_t i = 0; i < b->ngroup_slots; i++) {
    if (b->groups[i].used && b->groups[i].id == id)
      return i;
    if (!b->groups[i].used && slot == NO_SLOT)
      slot = i;
  }
  if (slot == NO_SLOT) {
    if (b->ngroup_slots == b->cap_groups) {
      uint32_t cap = b->cap_groups ? b->cap_groups * 2 : 4;
      grp *ng = realloc(b->groups, cap * sizeof *ng);
      if (!ng)
        return NO_SLOT;
      b->groups = ng;
      b->cap_groups = cap;
    }
    slot = b->ngroup_slots++;
  }
  grp *g = &b->groups[slot];
  memset(g, 0, sizeof *g);
  g->used = 1;
  g->id = id;
  quilt_lm_set_init(&g->lm);
  g->lm_epoch = next_epoch(b);
  return slot;
}

static void tree_del(tree *tr);

static void group_put(quilt_bootstrap *b, uint32_t gslot) {
  grp *g = &b->groups[gslot];
  assert(g->used && g->nhosts > 0);
  if (--g->nhosts > 0)
    return;
  memset(g, 0, sizeof *g); /* its patches are gone with its hosts */
}

static void pos_touch(quilt_bootstrap *b, host *h) {
  if (++b->pos_gen == 0)
    b->pos_gen = 1; /* 0 is never a host's, so a new node always looks */
  h->pos_gen = b->pos_gen;
}

/* Whether a host may be a landmark: every host of the group PINGs it, so
 * it must take datagrams from anyone (no NAT, or a full-cone one).  Hosts
 * behind filtering NATs drop the PINGs of hosts they have not sent to. */
static int can_lead(const host *h) {
  return h->euid.nat == QUILT_NAT_NONE || h->euid.nat == QUILT_NAT_FULL_CONE;
}

static void lm_add(quilt_bootstrap *b, uint32_t gslot, uint32_t hslot) {
  grp *g = &b->groups[gslot];
  host *h = &b->hosts[hslot];
  if (++b->lm_serial == 0)
    b->lm_serial = 1;
  int s = quilt_lm_add(&g->lm, hslot, h->id, b->lm_serial);
  if (s < 0)
    return;
  /* A landmark is at distance 0 from itself. */
  h->pos.rtt_us[s] = 0;
  h->pos.serial[s] = b->lm_serial;
  pos_touch(b, h);
  g->lm_dirty = 1;
}

static void lm_msg(const quilt_bootstrap *b, const grp *g, quilt_msg *m) {
  msg_init(b, m, QUILT_MSG_LANDMARKS, g->id);
  m->u.landmarks.epoch = g->lm_epoch;
  m->u.landmarks.count = (uint8_t)g->lm.count;
  for (uint32_t i = 0; i < g->lm.count; i++) {
    uint32_t s = g->lm.order[i];
    m->u.landmarks.nodes[i].id = g->lm.id[s];
    m->u.landmarks.nodes[i].addr = b->hosts[g->lm.host[s]].addr;
  }
}

static void send_landmarks(quilt_bootstrap *b, uint32_t hslot) {
  quilt_msg m;
  lm_msg(b, &b->groups[b->hosts[hslot].gslot], &m);
  send_msg(b, &b->hosts[hslot].addr, &m);
}

/* The list changed: a new epoch, sent to every host of the group (one
 * round per change, and changes are rare: a landmark joins at most every
 * landmark_period, leaves only with its host). */
static void lm_broadcast(quilt_bootstrap *b, uint32_t gslot, uint64_t now) {
  grp *g = &b->groups[gslot];
  g->lm_epoch = next_epoch(b);
  g->lm_dirty = 0;
  g->lm_changed_ns = now;
  g->lm_idle_ns = 0;
  quilt_lm_clear_candidates(&g->lm); /* measured against the old list */
  b->ctr.landmark_changes++;
  quilt_msg m;
  lm_msg(b, g, &m);
  int len = quilt_wire_encode(&m, b->buf, sizeof b->buf);
  assert(len > 0);
  if (len <= 0)
    return;
  for (uint32_t i = 0; i < b->nhosts_slots; i++)
    if (b->hosts[i].used && b->hosts[i].gslot == gslot) {
      b->hosts[i].region_bad = 0; /* other regions now: try again */
      b->cb.send(b->user, &b->hosts[i].addr, b->buf, (size_t)len);
    }
}

/* A heartbeat's RTTs.  They answer the list of hb->lm_epoch; only the
 * current list's are taken (by slot, so that the RTTs to landmarks that
 * stay are kept when the list grows or shrinks); a host that answers
 * another list is sent the current one. */
static void on_rtts(quilt_bootstrap *b, uint32_t slot,
                    const quilt_msg_heartbeat *hb, uint64_t now) {
  host *h = &b->hosts[slot];
  grp *g = &b->groups[h->gslot];
  if (hb->lm_epoch != g->lm_epoch) {
    if (!g->lm_dirty) /* else the new list is on its way */
      send_landmarks(b, slot);
    return;
  }
  quilt_lm_pos np = h->pos;
  for (uint32_t i = 0; i < g->lm.count && i < hb->nrtt; i++) {
    uint32_t s = g->lm.order[i];
    uint32_t rtt = g->lm.host[s] == slot ? 0 : hb->rtt_us[i];
    if (rtt == QUILT_WIRE_RTT_UNKNOWN)
      continue;
    np.rtt_us[s] = rtt;
    np.serial[s] = g->lm.serial[s];
  }
  if (memcmp(&np, &h->pos, sizeof np) != 0) {
    h->pos = np;
    pos_touch(b, h);
  }
  if (h->lm_epoch != g->lm_epoch && quilt_lm_complete(&g->lm, &h->pos)) {
    h->lm_epoch = g->lm_epoch;
    h->complete_ns = now;
  }
  quilt_lm_report(&g->lm, slot, h->id, &h->pos, can_lead(h));
}

/* Once per landmark_period each group adds one landmark: the sampled host
 * that brings the most hosts nearer to a landmark (landmark.h,
 * quilt_lm_pick, a greedy k-median).  One at a time, so that each is
 * chosen from RTTs measured to all those before it: picking several from
 * one round of measurements chooses them from bounds of few dimensions,
 * and two picks may then look apart while they are not (with the
 * Grid'5000 topology that costs the OMNI tree over all hosts half again
 * its latency).  Up to 8 landmarks thus take 3.5 s. */
static void lm_tick(quilt_bootstrap *b, uint64_t now) {
  for (uint32_t gs = 0; gs < b->ngroup_slots; gs++) {
    grp *g = &b->groups[gs];
    if (!g->used || g->lm.count >= b->cfg.landmarks_max)
      continue;
    if (g->lm.count == 0) {
      /* No landmark (every one left, or the first host could not be
       * one): the lowest id that others can reach starts again, or the
       * lowest id if no one can be reached (O(hosts), only in this
       * case). */
      uint32_t best = NO_SLOT;
      for (uint32_t i = 0; i < b->nhosts_slots; i++) {
        const host *h = &b->hosts[i];
        if (!h->used || h->gslot != gs)
          continue;
        if (best == NO_SLOT || can_lead(h) > can_lead(&b->hosts[best]) ||
            (can_lead(h) == can_lead(&b->hosts[best]) &&
             h->id < b->hosts[best].id))
          best = i;
      }
      if (best != NO_SLOT)
        lm_add(b, gs, best);
      continue;
    }
    uint32_t pick[QUILT_LM_MAX];
    uint32_t n = quilt_lm_pick(&g->lm, 1, b->cfg.landmark_min_rtt_us, pick);
    if (n == 1)
      lm_add(b, gs, g->lm.cand[pick[0]].host);
    else if (g->lm.ncand > 0)
      g->lm_idle_ns = now; /* hosts reported, and none would help */
  }
}

/* ---- trees ---- */

static uint32_t host_degree(const quilt_bootstrap *b, const host *h) {
  uint32_t d = b->cfg.tree_rate_kbps ? h->euid.bw_kbps / b->cfg.tree_rate_kbps
                                     : TREE_MAX_DEGREE;
  if (d < 2)
    d = 2;
  return d > TREE_MAX_DEGREE ? TREE_MAX_DEGREE : d;
}

static int is_wao(const tree *tr) { return QUILT_WIRE_TREE_IS_WAO(tr->id); }

/* The host a node stands for (the primary, in the overlay tree). */
static uint32_t node_host(const quilt_bootstrap *b, const tree *tr,
                          uint32_t i) {
  uint32_t ref = tr->nodes[i].ref;
  if (ref == NO_SLOT || !is_wao(tr))
    return ref;
  const patch *p = &b->patches[ref];
  return p->used && p->nreps > 0 ? p->reps[0] : NO_SLOT;
}

static uint64_t ref_key(const quilt_bootstrap *b, const tree *tr,
                        uint32_t ref) {
  return is_wao(tr) ? b->patches[ref].id : b->hosts[ref].id;
}

/* Whether ref (with this key) belongs in the tree now. */
static int ref_valid(const quilt_bootstrap *b, const tree *tr, uint32_t ref,
                     uint64_t key) {
  if (is_wao(tr)) {
    if (ref >= b->npatch_slots)
      return 0;
    const patch *p = &b->patches[ref];
    return p->used && p->id == key && p->gslot == tr->gslot && p->nreps > 0 &&
           !p->wao_out;
  }
  if (ref >= b->nhosts_slots)
    return 0;
  const host *h = &b->hosts[ref];
  return h->used && h->id == key && h->patch == tr->pslot && !h->tree_out;
}

/* Where ref's node index is noted: in the host (a host is in one patch
 * tree), or in the overlay tree (a patch is in all of its group's): a map
 * of the tree's own nodes, so O(tree size) memory per tree. */
static uint32_t get_index(const quilt_bootstrap *b, const tree *tr,
                          uint32_t ref) {
  if (!is_wao(tr))
    return b->hosts[ref].tidx;
  uint32_t i;
  return quilt_map_get(&tr->slot_idx, ref, &i) ? i : NO_SLOT;
}

static int set_index(quilt_bootstrap *b, tree *tr, uint32_t ref, uint32_t i) {
  if (!is_wao(tr)) {
    b->hosts[ref].tidx = i;
    return 0;
  }
  return quilt_map_put(&tr->slot_idx, ref, i);
}

/* The index of ref's node, or NO_SLOT when it is not in the tree. */
static uint32_t node_of(const quilt_bootstrap *b, const tree *tr,
                        uint32_t ref) {
  uint32_t i = get_index(b, tr, ref);
  if (i >= tr->cap || tr->nodes[i].ref != ref ||
      tr->nodes[i].key != ref_key(b, tr, ref))
    return NO_SLOT;
  return i;
}

static uint32_t ref_weight(const quilt_bootstrap *b, const tree *tr,
                           uint32_t ref) {
  if (!is_wao(tr))
    return 1;
  uint32_t n = b->patches[ref].nmembers; /* the paper's c_i: clients */
  return n > QUILT_OMNI_MAX_WEIGHT ? QUILT_OMNI_MAX_WEIGHT : n;
}

static void node_fill(const quilt_bootstrap *b, const tree *tr, tnode *nd,
                      uint32_t ref) {
  memset(nd, 0, sizeof *nd);
  nd->ref = ref;
  nd->key = ref_key(b, tr, ref);
  uint32_t hs = is_wao(tr) ? b->patches[ref].reps[0] : ref;
  const host *h = &b->hosts[hs];
  nd->who = h->id;
  nd->pos = h->pos;
  nd->pos_gen = h->pos_gen;
  nd->degree = host_degree(b, h);
  nd->weight = ref_weight(b, tr, ref);
}

/* The omni latency callback: the estimate on the nodes' snapshots, which
 * change only between optimisations (then quilt_omni_refresh). */
static uint32_t tree_lat(void *arg, uint32_t a, uint32_t c) {
  const tree *tr = arg;
  return quilt_lm_est_us(&tr->nodes[a].pos, &tr->nodes[c].pos,
                         tr->b->cfg.tree_hop_us);
}

static tree *tree_new(quilt_bootstrap *b, uint32_t id, uint32_t gslot,
                      uint32_t pslot) {
  tree *tr = calloc(1, sizeof *tr);
  if (!tr)
    return NULL;
  tr->b = b;
  tr->id = id;
  tr->gslot = gslot;
  tr->pslot = pslot;
  tr->epoch = next_epoch(b);
  tr->rebuild_due_ns = UINT64_MAX;
  quilt_map_init(&tr->slot_idx);
  return tr;
}

static void tree_del(tree *tr) {
  if (!tr)
    return;
  quilt_omni_del(tr->t);
  free(tr->nodes);
  quilt_map_free(&tr->slot_idx);
  free(tr);
}

/* Who should be in the tree now, into b->scratch: the patch's members but
 * those taken out (a tree patch is kept to QUILT_OMNI_MAX_NODES); or, in
 * an overlay tree, its root patch first and then the other patches of the
 * group with a primary, but those taken out (settle keeps the overlay
 * trees to groups of at most wao_max_patches). */
static uint32_t tree_collect(quilt_bootstrap *b, const tree *tr) {
  uint32_t n = 0;
  if (!is_wao(tr)) {
    const patch *p = &b->patches[tr->pslot];
    for (uint32_t k = 0; k < p->nmembers && n < QUILT_OMNI_MAX_NODES; k++)
      if (!b->hosts[p->members[k]].tree_out)
        b->scratch[n++] = p->members[k];
    return n;
  }
  if (!ref_valid(b, tr, tr->pslot, b->patches[tr->pslot].id))
    return 0; /* no root */
  b->scratch[n++] = tr->pslot;
  for (uint32_t i = 0; i < b->npatch_slots && n < QUILT_OMNI_MAX_NODES; i++)
    if (i != tr->pslot && ref_valid(b, tr, i, b->patches[i].id))
      b->scratch[n++] = i;
  return n;
}

/* Builds the tree anew over tree_collect(): the root of a patch's tree is
 * the 1-median (the node with the least c-weighted sum of estimated
 * latencies to the others, summed over a sample of at most
 * TREE_MEDIAN_SAMPLE of them), so that a shared tree that every member
 * publishes into has short paths from everywhere; an overlay tree's root
 * is its patch, the source of what travels it (the paper's tree, rooted at
 * the source); then OMNI's initial tree and tree_rebuild_rounds rounds of
 * its transformations (omni.h).  O(n * TREE_MEDIAN_SAMPLE) estimates and
 * the bounded optimiser.  Views already sent are remembered, so only the
 * changed ones go out. */
static int tree_rebuild(quilt_bootstrap *b, tree *tr, uint64_t now) {
  uint32_t n = tree_collect(b, tr);
  b->ctr.tree_builds++;
  tr->last_build_ns = tr->last_improve_ns = now;
  tr->rebuild_due_ns = UINT64_MAX;
  tr->built_lm_epoch = b->groups[tr->gslot].lm_epoch;
  tr->changed = 0;
  tr->views_dirty = 1;
  if (n == 0) {
    quilt_omni_del(tr->t);
    free(tr->nodes);
    quilt_map_free(&tr->slot_idx);
    tr->t = NULL;
    tr->nodes = NULL;
    tr->cap = tr->live = 0;
    return 0;
  }
  uint32_t cap = 2 * n < TREE_MIN_CAP ? TREE_MIN_CAP : 2 * n;
  if (cap > QUILT_OMNI_MAX_NODES)
    cap = QUILT_OMNI_MAX_NODES;
  tnode *nn = calloc(cap, sizeof *nn);
  if (!nn)
    return QUILT_ERR_NOMEM;
  for (uint32_t k = 0; k < n; k++) {
    uint32_t ref = b->scratch[k];
    node_fill(b, tr, &nn[k], ref);
    uint32_t old = tr->nodes ? node_of(b, tr, ref) : NO_SLOT;
    if (old != NO_SLOT && tr->nodes[old].who == nn[k].who)
      nn[k].sent_hash = tr->nodes[old].sent_hash;
  }
  for (uint32_t k = n; k < cap; k++)
    nn[k].ref = NO_SLOT;
  uint32_t stride = (n + TREE_MEDIAN_SAMPLE - 1) / TREE_MEDIAN_SAMPLE;
  uint32_t root = 0;
  uint64_t best = UINT64_MAX;
  for (uint32_t i = 0; i < n && !is_wao(tr); i++) {
    uint64_t sum = 0;
    for (uint32_t j = 0; j < n; j += stride)
      if (j != i)
        sum += (uint64_t)nn[j].weight *
               quilt_lm_est_us(&nn[i].pos, &nn[j].pos, b->cfg.tree_hop_us);
    if (sum < best || (sum == best && nn[i].key < nn[root].key)) {
      best = sum;
      root = i;
    }
  }
  tnode tmp = nn[0];
  nn[0] = nn[root];
  nn[root] = tmp;
  quilt_omni *t = NULL;
  quilt_map idx;
  quilt_map_init(&idx);
  int rc = quilt_omni_new(&t, cap, tree_lat, tr);
  for (uint32_t k = 0; rc == 0 && is_wao(tr) && k < n; k++)
    rc = quilt_map_put(&idx, nn[k].ref, k);
  if (rc < 0) {
    quilt_omni_del(t);
    quilt_map_free(&idx);
    free(nn);
    return rc;
  }
  quilt_omni_del(tr->t);
  free(tr->nodes);
  quilt_map_free(&tr->slot_idx);
  tr->slot_idx = idx; /* (empty for a patch tree) */
  tr->t = t;
  tr->nodes = nn;
  tr->cap = cap;
  tr->live = n;
  for (uint32_t k = 0; k < cap; k++) {
    if (k >= n) {
      quilt_omni_remove(t, k); /* spare: not yet built, only marked */
      continue;
    }
    quilt_omni_set_weight(t, k, nn[k].weight);
    quilt_omni_set_degree(t, k, nn[k].degree);
    if (!is_wao(tr))
      b->hosts[nn[k].ref].tidx = k;
  }
  quilt_omni_build_initial(t);
  quilt_omni_improve(t, &b->rng, b->cfg.tree_rebuild_rounds);
  return 0;
}

/* Adds ref as a leaf where it adds the least latency (quilt_omni_insert).
 * The first node of an empty tree builds it, and a fuller build follows
 * after tree_rebuild_ns, once the first wave of joins is in. */
static int tree_add(quilt_bootstrap *b, tree *tr, uint32_t ref, uint64_t now) {
  if (!tr->t) {
    int rc = tree_rebuild(b, tr, now);
    tr->rebuild_due_ns = now + b->cfg.tree_rebuild_ns;
    return rc;
  }
  uint32_t i = 1;
  while (i < tr->cap && tr->nodes[i].ref != NO_SLOT)
    i++;
  if (i == tr->cap) {
    if (tr->cap >= QUILT_OMNI_MAX_NODES)
      return QUILT_ERR_LIMIT;
    uint32_t cap =
        tr->cap * 2 > QUILT_OMNI_MAX_NODES ? QUILT_OMNI_MAX_NODES : tr->cap * 2;
    tnode *nn = realloc(tr->nodes, cap * sizeof *nn);
    if (!nn)
      return QUILT_ERR_NOMEM;
    tr->nodes = nn;
    int rc = quilt_omni_grow(tr->t, cap);
    if (rc < 0)
      return rc;
    for (uint32_t k = tr->cap; k < cap; k++)
      nn[k].ref = NO_SLOT;
    tr->cap = cap;
  }
  int rc = set_index(b, tr, ref, i);
  if (rc < 0)
    return rc;
  node_fill(b, tr, &tr->nodes[i], ref);
  quilt_omni_set_weight(tr->t, i, tr->nodes[i].weight);
  quilt_omni_set_degree(tr->t, i, tr->nodes[i].degree);
  rc = quilt_omni_insert(tr->t, i);
  assert(rc == 0);
  tr->live++;
  tr->changed = tr->views_dirty = 1;
  b->ctr.tree_inserts++;
  return 0;
}

/* Takes node i out, its children re-attached grandparent first
 * (quilt_omni_remove).  The root cannot be taken out: the tree is built
 * anew around another root. */
static void tree_drop(quilt_bootstrap *b, tree *tr, uint32_t i, uint64_t now) {
  if (i == 0) {
    tree_rebuild(b, tr, now);
    return;
  }
  int rc = quilt_omni_remove(tr->t, i);
  assert(rc == 0);
  (void)rc;
  if (is_wao(tr))
    quilt_map_del(&tr->slot_idx, tr->nodes[i].ref);
  tr->nodes[i].ref = NO_SLOT;
  tr->live--;
  tr->changed = tr->views_dirty = 1;
  b->ctr.tree_removes++;
}

/* Names node j in a view. */
static void name_node(const quilt_bootstrap *b, const tree *tr, uint32_t j,
                      quilt_wire_node *out) {
  uint32_t hs = node_host(b, tr, j);
  if (hs == NO_SLOT)
    return;
  out->id = b->hosts[hs].id;
  out->addr = b->hosts[hs].addr;
}

static uint64_t fnv_u64(uint64_t h, uint64_t v) {
  for (int k = 0; k < 8; k++) {
    h ^= (v >> (8 * k)) & 0xFF;
    h *= 0x100000001B3ULL;
  }
  return h;
}

static uint64_t fnv_node(uint64_t h, const quilt_wire_node *n) {
  h = fnv_u64(h, n->id);
  return fnv_u64(h, ((uint64_t)n->addr.ip << 16) | n->addr.port);
}

/* Fills m with node i's view and returns its hash (never 0; the epoch is
 * left out, so that a view that did not change is not sent again).
 * Children are listed by id, so that the order of omni's sibling lists
 * does not show. */
static uint64_t view_of(const quilt_bootstrap *b, const tree *tr, uint32_t i,
                        quilt_msg *m) {
  msg_init(b, m, QUILT_MSG_TREE, b->groups[tr->gslot].id);
  quilt_msg_tree *v = &m->u.tree;
  v->tree = tr->id;
  v->epoch = tr->epoch;
  uint32_t self = node_host(b, tr, i);
  v->to = self != NO_SLOT ? b->hosts[self].id : 0;
  uint32_t p = quilt_omni_parent(tr->t, i);
  if (p != QUILT_OMNI_NONE) {
    name_node(b, tr, p, &v->parent);
    uint32_t g = quilt_omni_parent(tr->t, p);
    if (g != QUILT_OMNI_NONE)
      name_node(b, tr, g, &v->grandparent);
  }
  v->degree = (uint8_t)quilt_omni_degree(tr->t, i);
  uint32_t kids[QUILT_WIRE_MAX_CHILDREN];
  uint32_t nk = quilt_omni_children(tr->t, i, kids, QUILT_WIRE_MAX_CHILDREN);
  assert(nk <= v->degree && nk <= QUILT_WIRE_MAX_CHILDREN);
  v->nchildren = (uint8_t)nk;
  for (uint32_t k = 0; k < nk; k++) {
    quilt_wire_node c = {0, {0, 0}};
    name_node(b, tr, kids[k], &c);
    uint32_t at = k;
    for (; at > 0 && v->children[at - 1].id > c.id; at--)
      v->children[at] = v->children[at - 1];
    v->children[at] = c;
  }
  uint64_t h = 0xCBF29CE484222325ULL;
  h = fnv_node(h, &v->parent);
  h = fnv_node(h, &v->grandparent);
  h = fnv_u64(h, ((uint64_t)v->degree << 8) | v->nchildren);
  for (uint32_t k = 0; k < nk; k++)
    h = fnv_node(h, &v->children[k]);
  return h ? h : 1;
}

static void send_view(quilt_bootstrap *b, tree *tr, uint32_t i,
                      const quilt_msg *m, uint64_t hash) {
  uint32_t hs = node_host(b, tr, i);
  if (hs == NO_SLOT)
    return;
  send_msg(b, &b->hosts[hs].addr, m);
  tr->nodes[i].sent_hash = hash;
  b->ctr.tree_msgs++;
}

/* Sends every view that differs from the one last sent, all with one new
 * epoch.  O(tree size). */
static void flush_views(quilt_bootstrap *b, tree *tr) {
  if (!tr->t || !tr->views_dirty)
    return;
  tr->views_dirty = 0;
  int bumped = 0;
  for (uint32_t i = 0; i < tr->cap; i++) {
    if (tr->nodes[i].ref == NO_SLOT)
      continue;
    quilt_msg m;
    uint64_t h = view_of(b, tr, i, &m);
    if (h == tr->nodes[i].sent_hash)
      continue;
    if (!bumped) {
      tr->epoch = next_epoch(b);
      bumped = 1;
    }
    m.u.tree.epoch = tr->epoch;
    send_view(b, tr, i, &m, h);
  }
}

/* Re-sends node i the view it was last sent.  A view that changed since
 * is left to flush_views(), which sends it under a new epoch: sent now
 * under the current one, it would stand beside older views of the same
 * epoch that it contradicts (a loop among the members' parents). */
static void resend_view(quilt_bootstrap *b, tree *tr, uint32_t i) {
  quilt_msg m;
  uint64_t h = view_of(b, tr, i, &m);
  if (h != tr->nodes[i].sent_hash)
    return;
  send_view(b, tr, i, &m, h);
}

/* Brings the tree in line with the table: nodes whose host (patch) is gone
 * or taken out are removed, new ones inserted as leaves; in the overlay
 * tree a node whose patch has a new primary takes the new primary's
 * position and degree bound in place.  Then the changed views go out.
 * O(tree size) plus the removals and insertions. */
static void tree_sync(quilt_bootstrap *b, tree *tr, uint64_t now) {
  int refresh = 0, rebuild = 0;
  for (uint32_t i = 0; tr->t && i < tr->cap && !rebuild; i++) {
    tnode *nd = &tr->nodes[i];
    if (nd->ref == NO_SLOT)
      continue;
    if (!ref_valid(b, tr, nd->ref, nd->key)) {
      if (i == 0)
        rebuild = 1;
      else
        tree_drop(b, tr, i, now);
      continue;
    }
    uint32_t hs = node_host(b, tr, i);
    if (b->hosts[hs].id == nd->who)
      continue;
    const host *h = &b->hosts[hs];
    nd->who = h->id;
    nd->sent_hash = 0; /* the new primary has not seen its view */
    nd->pos = h->pos;
    nd->pos_gen = h->pos_gen;
    refresh = 1;
    uint32_t d = host_degree(b, h);
    if (d != nd->degree) {
      if (quilt_omni_set_degree(tr->t, i, d) == 0)
        nd->degree = d;
      else
        rebuild = 1; /* the new one has fewer slots than children */
    }
    tr->changed = tr->views_dirty = 1;
  }
  if (rebuild) {
    tree_rebuild(b, tr, now);
  } else {
    if (refresh && tr->t)
      quilt_omni_refresh(tr->t);
    uint32_t n = tree_collect(b, tr);
    for (uint32_t k = 0; k < n; k++) {
      uint32_t ref = b->scratch[k];
      if (!tr->t || node_of(b, tr, ref) == NO_SLOT) {
        if (tree_add(b, tr, ref, now) < 0)
          break;
        if (tr->live == n)
          break; /* the first add built it whole */
      }
    }
  }
  flush_views(b, tr);
}

/* The periodic part: positions that moved and degree bounds that changed
 * are taken into the snapshots; a rebuild when the landmarks changed (once
 * the hosts have had tree_rebuild_ns to measure the new ones) or after the
 * first build; otherwise, if anything changed, a few greedy rounds of
 * OMNI's transformations.  Each at most once per tree_rebuild_ns. */
static void tree_tick(quilt_bootstrap *b, tree *tr, uint64_t now) {
  if (!tr->t)
    return;
  const grp *g = &b->groups[tr->gslot];
  int moved = 0, rebuild = 0;
  for (uint32_t i = 0; i < tr->cap; i++) {
    tnode *nd = &tr->nodes[i];
    uint32_t hs = node_host(b, tr, i);
    if (hs == NO_SLOT)
      continue;
    if (is_wao(tr)) {
      uint32_t w = ref_weight(b, tr, nd->ref);
      if (w != nd->weight) {
        quilt_omni_set_weight(tr->t, i, w);
        nd->weight = w;
        tr->changed = 1;
      }
    }
    const host *h = &b->hosts[hs];
    if (h->pos_gen == nd->pos_gen)
      continue;
    nd->pos_gen = h->pos_gen;
    if (quilt_lm_pos_moved(&nd->pos, &h->pos)) {
      nd->pos = h->pos;
      moved = 1;
    }
    uint32_t d = host_degree(b, h);
    if (d != nd->degree) {
      if (quilt_omni_set_degree(tr->t, i, d) == 0) {
        nd->degree = d;
        tr->changed = tr->views_dirty = 1;
      } else {
        rebuild = 1;
      }
    }
  }
  if (moved) {
    quilt_omni_refresh(tr->t);
    tr->changed = 1;
  }
  /* After a landmark change the hosts need a moment to measure the new
   * landmark, and the next change may come a landmark_period later: wait
   * for a quiet tree_rebuild_ns, but not for ever while landmarks keep
   * being added one by one. */
  uint64_t period = b->cfg.tree_rebuild_ns;
  int due = (tr->built_lm_epoch != g->lm_epoch &&
             (now >= g->lm_changed_ns + period ||
              now >= tr->last_build_ns + 2 * period)) ||
            tr->rebuild_due_ns <= now;
  if (rebuild || (due && now >= tr->last_build_ns + period)) {
    tree_rebuild(b, tr, now);
  } else if (tr->changed && now >= tr->last_improve_ns + period) {
    quilt_omni_set_temperature(tr->t, 0);
    quilt_omni_improve(tr->t, &b->rng, b->cfg.tree_improve_rounds);
    tr->changed = 0;
    tr->last_improve_ns = now;
    tr->views_dirty = 1;
  }
  flush_views(b, tr);
}

/* Trees in a fixed order: by patch slot, the patch's own, then the
 * overlay tree rooted at it. */
static uint32_t tree_count(const quilt_bootstrap *b) {
  return 2 * b->npatch_slots;
}

static tree *tree_nth(const quilt_bootstrap *b, uint32_t k) {
  const patch *p = &b->patches[k / 2];
  return !p->used ? NULL : k % 2 ? p->wao : p->tree;
}

/* Every view is re-sent every tree_refresh_ns, in case a TREE was lost:
 * in TREE_REFRESH_SLICES slices, a node in the slice of its key (host or
 * patch id), which a rebuild does not change as it does node indices. */
static void tree_refresh(quilt_bootstrap *b) {
  uint32_t slice = b->refresh_slice++ % TREE_REFRESH_SLICES;
  for (uint32_t k = 0; k < tree_count(b); k++) {
    tree *tr = tree_nth(b, k);
    if (!tr || !tr->t)
      continue;
    for (uint32_t i = 0; i < tr->cap; i++)
      if (tr->nodes[i].ref != NO_SLOT &&
          tr->nodes[i].key % TREE_REFRESH_SLICES == slice)
        resend_view(b, tr, i);
  }
}

/* Marks p's members changed, for settle. */
static void patch_dirty(quilt_bootstrap *b, uint32_t pslot) {
  patch *p = &b->patches[pslot];
  if (p->dirty)
    return;
  if (b->ndirty == b->cap_dirty) {
    uint32_t cap = b->cap_dirty ? b->cap_dirty * 2 : 16;
    uint32_t *nd = realloc(b->dirty, cap * sizeof *nd);
    if (!nd) {
      b->dirty_all = 1;
      return;
    }
    b->dirty = nd;
    b->cap_dirty = cap;
  }
  b->dirty[b->ndirty++] = pslot;
  p->dirty = 1;
}

static void patch_settle(quilt_bootstrap *b, uint32_t pslot, uint64_t now) {
  patch *p = &b->patches[pslot];
  p->dirty = 0;
  if (p->protocol != QUILT_PROTO_TREE)
    return;
  if (!p->tree)
    p->tree = tree_new(b, p->id, p->gslot, pslot);
  if (p->tree)
    tree_sync(b, p->tree, now);
}

/* Patches with a primary, per group. */
static void count_primaries(quilt_bootstrap *b) {
  for (uint32_t gs = 0; gs < b->ngroup_slots; gs++)
    b->groups[gs].nprimaries = 0;
  for (uint32_t i = 0; i < b->npatch_slots; i++) {
    const patch *p = &b->patches[i];
    if (p->used && p->nreps > 0)
      b->groups[p->gslot].nprimaries++;
  }
}

/* The overlay trees follow the primaries: each source patch (one whose
 * primary said it publishes) with a working primary roots one over its
 * group's patches (a patch that never publishes needs none: with one
 * stream over 64 patches, the other 63 trees were most of the TREE
 * traffic).  A patch that has a primary while its group has at most
 * wao_eager_patches counts as a source from then on, so that a small
 * group's first messages find their trees built (in `quilt demo`, two
 * patches, a third of the runs had a 1-1.5 s tail when the trees were
 * built on the first messages, against none).  All in a group of at most
 * wao_max_patches (the trees cost the server, and each primary, that many
 * views each; beyond it no one gets an overlay view, and primaries send
 * to each other directly).  O(patches) per tree. */
static void wao_settle(quilt_bootstrap *b, uint64_t now) {
  count_primaries(b);
  for (uint32_t ps = 0; ps < b->npatch_slots; ps++) {
    patch *p = &b->patches[ps];
    if (!p->used)
      continue;
    uint32_t np = b->groups[p->gslot].nprimaries;
    if (p->nreps > 0 && np <= b->cfg.wao_eager_patches)
      p->source = 1; /* a small group: as if it published (for good) */
    if (p->nreps == 0 || p->wao_out || !p->source ||
        np > b->cfg.wao_max_patches) {
      tree_del(p->wao);
      p->wao = NULL;
      continue;
    }
    if (!p->wao)
      p->wao = tree_new(b, QUILT_WIRE_TREE_WAO | p->id, p->gslot, ps);
    if (p->wao)
      tree_sync(b, p->wao, now);
  }
}

/* End of every event: new landmark lists out, trees in line with the
 * table, changed views out. */
static void settle(quilt_bootstrap *b, uint64_t now) {
  for (uint32_t gs = 0; gs < b->ngroup_slots; gs++)
    if (b->groups[gs].used && b->groups[gs].lm_dirty)
      lm_broadcast(b, gs, now);
  for (uint32_t k = 0; k < b->ndirty; k++) {
    uint32_t ps = b->dirty[k];
    if (ps < b->npatch_slots && b->patches[ps].used && b->patches[ps].dirty)
      patch_settle(b, ps, now);
  }
  b->ndirty = 0;
  if (b->dirty_all) {
    b->dirty_all = 0;
    for (uint32_t ps = 0; ps < b->npatch_slots; ps++)
      if (b->patches[ps].used)
        patch_settle(b, ps, now);
  }
  if (b->wao_dirty && b->cfg.wao_tree) {
    b->wao_dirty = 0;
    wao_settle(b, now);
  }
}

/* ---- ranking and representatives ---- */

/* Negative when host a makes a better representative than host b. */
static int rank_cmp(const host *a, const host *b) {
  if (a->euid.nat != b->euid.nat)
    return a->euid.nat < b->euid.nat ? -1 : 1;
  if (a->euid.bw_kbps != b->euid.bw_kbps)
    return a->euid.bw_kbps > b->euid.bw_kbps ? -1 : 1;
  if (a->euid.rtt_us != b->euid.rtt_us)
    return a->euid.rtt_us < b->euid.rtt_us ? -1 : 1;
  return 0;
}

static int is_rep(const patch *p, uint32_t slot) {
  return role_of(p, slot) != QUILT_ROLE_MEMBER;
}

/* Whether others can reach the host first (no NAT, or a full-cone one). */
static int reachable(const host *h) {
  return h->euid.nat == QUILT_NAT_NONE || h->euid.nat == QUILT_NAT_FULL_CONE;
}

/* Whether host a is so much better a primary than b that b should step
 * down: reachable where b is not, or, as reachable, twice its uplink.  The
 * margin keeps measurement noise from moving a primary, and bounds the
 * moves of a patch to a few (the uplink doubles each time). */
static int much_better(const host *a, const host *b) {
  if (reachable(a) != reachable(b))
    return reachable(a);
  return a->euid.bw_kbps / 2 >= b->euid.bw_kbps && a->euid.bw_kbps > 0;
}

/* Fills the patch's representative slots from its best members.  Returns
 * the number added. */
static uint32_t fill_reps(quilt_bootstrap *b, patch *p) {
  uint32_t k = b->cfg.reps_per_patch;
  uint32_t added = 0;
  while (p->nreps < k && p->nreps < p->nmembers) {
    uint32_t best = NO_SLOT;
    for (uint32_t i = 0; i < p->nmembers; i++) {
      uint32_t s = p->members[i];
      if (is_rep(p, s))
        continue;
      if (best == NO_SLOT || rank_cmp(&b->hosts[s], &b->hosts[best]) < 0 ||
          (rank_cmp(&b->hosts[s], &b->hosts[best]) == 0 &&
           b->hosts[s].id < b->hosts[best].id))
        best = s;
    }
    if (best == NO_SLOT)
      break;
    p->reps[p->nreps++] = best;
    added++;
  }
  return added;
}

/* ---- patches ---- */

static int needs_members(const patch *p) {
  const quilt_proto_ops *ops = quilt_proto_get(p->protocol);
  return ops && ops->needs_members;
}

/* The member list of p changed: schedule a MEMBERS round soon (coalesced
 * with the other changes of a join wave). */
static void members_changed(quilt_bootstrap *b, patch *p, uint64_t now) {
  if (!needs_members(p) || !b->cfg.send_members)
    return;
  p->members_dirty = 1;
  if (b->members_due_ns > now + 5 * NS_PER_MS)
    b->members_due_ns = now + 5 * NS_PER_MS;
}

/* Sends p's member list, in pages, to each of its members. */
static void send_members(quilt_bootstrap *b, patch *p) {
  p->members_epoch = next_epoch(b);
  uint32_t total = p->nmembers > UINT16_MAX ? UINT16_MAX : p->nmembers;
  for (uint32_t at = 0; at < total;) {
    quilt_msg m;
    msg_init(b, &m, QUILT_MSG_MEMBERS, p->group);
    m.u.peers.epoch = p->members_epoch;
    m.u.peers.total = (uint16_t)total;
    m.u.peers.offset = (uint16_t)at;
    while (at < total && m.u.peers.count < QUILT_WIRE_MAX_PEERS) {
      const host *h = &b->hosts[p->members[at]];
      quilt_wire_peer *e = &m.u.peers.entries[m.u.peers.count++];
      e->patch_id = p->id;
      e->node.id = h->id;
      e->node.addr = h->addr;
      at++;
    }
    for (uint32_t i = 0; i < p->nmembers; i++)
      send_msg(b, &b->hosts[p->members[i]].addr, &m);
  }
  p->members_dirty = 0;
}

static uint32_t patch_find(const quilt_bootstrap *b, uint32_t group,
                           const quilt_rule_match *mt) {
  for (uint32_t i = 0; i < b->npatch_slots; i++) {
    const patch *p = &b->patches[i];
    if (!p->used || p->group != group || p->rule != mt->rule ||
        p->nkeys != mt->nkeys ||
        memcmp(p->keys, mt->keys, mt->nkeys * sizeof mt->keys[0]) != 0)
      continue;
    if (p->max_members && p->nmembers >= p->max_members)
      continue; /* full: look for (or make) another shard */
    if (needs_members(p) && b->cfg.members_max &&
        p->nmembers >= b->cfg.members_max)
      continue;
    if (p->protocol == QUILT_PROTO_TREE && p->nmembers >= QUILT_OMNI_MAX_NODES)
      continue; /* the largest tree omni keeps */
    return i;
  }
  return NO_SLOT;
}

static int patch_id_used(const quilt_bootstrap *b, uint32_t id) {
  for (uint32_t i = 0; i < b->npatch_slots; i++)
    if (b->patches[i].used && b->patches[i].id == id)
      return 1;
  return 0;
}

/* Creates a patch.  id_hint is the patch id the first host believes it is
 * in (after a restart of the server): reusing it spares every host of the
 * patch a move to a new multicast group. */
static uint32_t patch_new(quilt_bootstrap *b, uint32_t group,
                          const quilt_rule_match *mt, uint32_t id_hint) {
  if (b->npatches >= b->cfg.max_patches)
    return NO_SLOT;
  uint32_t slot = NO_SLOT;
  for (uint32_t i = 0; i < b->npatch_slots; i++)
    if (!b->patches[i].used) {
      slot = i;
      break;
    }
  if (slot == NO_SLOT) {
    if (b->npatch_slots == b->cap_patches) {
      uint32_t cap = b->cap_patches ? b->cap_patches * 2 : 16;
      patch *np = realloc(b->patches, cap * sizeof *np);
      if (!np)
        return NO_SLOT;
      b->patches = np;
      b->cap_patches = cap;
    }
    slot = b->npatch_slots++;
  }
  patch *p = &b->patches[slot];
  memset(p, 0, sizeof *p);
  if (id_hint != 0 && id_hint <= QUILT_BOOTSTRAP_MAX_PATCH_ID &&
      !patch_id_used(b, id_hint)) {
    p->id = id_hint;
    if (id_hint > b->next_patch_id)
      b->next_patch_id = id_hint;
  } else {
    /* max_patches is far below the id space, so a free id exists. */
    do {
      if (++b->next_patch_id > QUILT_BOOTSTRAP_MAX_PATCH_ID)
        b->next_patch_id = 1;
      p->id = b->next_patch_id;
    } while (patch_id_used(b, p->id));
  }
  p->group = group;
  p->rule = mt->rule;
  p->protocol = mt->protocol;
  p->nkeys = mt->nkeys;
  memcpy(p->keys, mt->keys, sizeof p->keys);
  p->max_members = mt->max_members;
  p->epoch = next_epoch(b);
  p->members_epoch = p->epoch;
  p->used = 1;
  b->npatches++;
  return slot;
}

static int patch_add_member(quilt_bootstrap *b, uint32_t pslot,
                            uint32_t hslot) {
  patch *p = &b->patches[pslot];
  if (p->nmembers == p->cap_members) {
    uint32_t cap = p->cap_members ? p->cap_members * 2 : 8;
    uint32_t *m = realloc(p->members, cap * sizeof *m);
    if (!m)
      return QUILT_ERR_NOMEM;
    p->members = m;
    p->cap_members = cap;
  }
  p->members[p->nmembers++] = hslot;
  b->hosts[hslot].patch = pslot;
  b->hosts[hslot].tree_out = 0;
  patch_dirty(b, pslot);
  return 0;
}

/* How a host leaves its patch (patch_remove_member). */
enum { GONE_LEFT, GONE_FAILED, GONE_MOVED };

/* Removes a host from its patch; replaces it if it was a representative
 * and tells the patch.  GONE_FAILED counts it as a failover.  A primary
 * that left or failed is out of the table of primaries within 5 ms (what
 * the overlay sends it is lost until then); one that moved to another
 * patch (its region became known, its EUID changed) is alive, and waits
 * for the next batch of changes: the patch it left misses the overlay's
 * traffic that long and its new primary NACKs it, but a startup wave that
 * moves every primary once costs one PEERS round per batch, not one per
 * primary (with derived regions on king951, 10 MB of PEERS against 3). */
static void patch_remove_member(quilt_bootstrap *b, uint32_t hslot, int how,
                                uint64_t now) {
  uint32_t pslot = b->hosts[hslot].patch;
  patch *p = &b->patches[pslot];
  for (uint32_t i = 0; i < p->nmembers; i++)
    if (p->members[i] == hslot) {
      p->members[i] = p->members[--p->nmembers];
      break;
    }
  b->hosts[hslot].patch = NO_SLOT;
  b->hosts[hslot].tree_out = 0;
  members_changed(b, p, now);
  patch_dirty(b, pslot);
  int was_rep = 0, was_primary = 0;
  for (uint32_t i = 0; i < p->nreps; i++)
    if (p->reps[i] == hslot) {
      was_rep = 1;
      was_primary = i == 0;
      /* Keep the order: the backup moves up to primary. */
      memmove(&p->reps[i], &p->reps[i + 1],
              (p->nreps - i - 1) * sizeof p->reps[0]);
      p->nreps--;
      break;
    }
  if (p->nmembers == 0) {
    free(p->members);
    tree_del(p->tree);
    tree_del(p->wao);
    memset(p, 0, sizeof *p);
    b->npatches--;
    peers_changed(b, now, 0);
    return;
  }
  if (!was_rep)
    return;
  fill_reps(b, p);
  p->epoch = next_epoch(b);
  if (how == GONE_FAILED)
    b->ctr.failovers++;
  tell_patch(b, p);
  if (was_primary)
    peers_changed(b, now, how != GONE_MOVED);
}

/* ---- hosts ---- */

static uint32_t host_slot(const quilt_bootstrap *b, uint64_t id) {
  uint32_t v;
  return quilt_map_get(&b->host_index, id, &v) ? v : NO_SLOT;
}

static void host_remove(quilt_bootstrap *b, uint32_t slot, int failed,
                        uint64_t now) {
  host *h = &b->hosts[slot];
  if (h->patch != NO_SLOT)
    patch_remove_member(b, slot, failed ? GONE_FAILED : GONE_LEFT, now);
  grp *g = &b->groups[h->gslot];
  if (quilt_lm_forget(&g->lm, slot))
    g->lm_dirty = 1; /* a landmark that leaves is replaced in time */
  group_put(b, h->gslot);
  quilt_map_del(&b->host_index, h->id);
  h->used = 0;
  b->free_hosts[b->nfree_hosts++] = slot;
  b->nhosts--;
}

/* A newcomer much better than the patch's primary (much_better) takes its
 * place: the patch keeps its first hosts as representatives while nothing
 * is wrong, and with residential uplinks those were 1 Mbit/s hosts, or
 * hosts behind NATs that members cannot reach first, a third of the time.
 * The old primary becomes the first backup, the last backup a member;
 * every member is told (the newcomer by the caller, as always after
 * host_place), and every primary within 5 ms (the old one stops bridging
 * at once).  A primary kept from before a restart of the server
 * (claimed) is left alone. */
static void promote_if_better(quilt_bootstrap *b, patch *p, uint32_t slot,
                              uint64_t now) {
  if (p->nreps == 0 || p->reps[0] == slot ||
      b->hosts[p->reps[0]].claimed ||
      !much_better(&b->hosts[slot], &b->hosts[p->reps[0]]))
    return;
  uint32_t k = b->cfg.reps_per_patch;
  uint32_t keep[QUILT_BOOTSTRAP_MAX_REPS];
  uint32_t n = 0;
  keep[n++] = slot;
  for (uint32_t i = 0; i < p->nreps && n < k; i++)
    if (p->reps[i] != slot)
      keep[n++] = p->reps[i];
  for (uint32_t i = 0; i < p->nreps; i++) {
    int stays = 0;
    for (uint32_t j = 0; j < n; j++)
      stays |= keep[j] == p->reps[i];
    if (!stays)
      b->hosts[p->reps[i]].rep_acked = 0; /* now a member */
  }
  b->hosts[slot].rep_acked = 0; /* until its heartbeats show its role */
  memcpy(p->reps, keep, n * sizeof keep[0]);
  p->nreps = n;
  p->epoch = next_epoch(b);
  b->ctr.promotions++;
  for (uint32_t i = 0; i < p->nmembers; i++)
    if (p->members[i] != slot) /* the caller answers the newcomer */
      send_patch_info(b, p->members[i]);
  peers_changed(b, now, 1);
}

/* Puts an admitted host into the patch its EUID maps to.  Returns 0 or a
 * negative code (no rule matched, patch limit).  The hints are what the
 * host believes (from its heartbeat), used when the server rebuilds its
 * table after a restart. */
static int host_place(quilt_bootstrap *b, uint32_t slot, uint32_t patch_hint,
                      unsigned role_hint, uint64_t now) {
  host *h = &b->hosts[slot];
  quilt_rule_match mt;
  quilt_euid e = rules_euid(h);
  int rc = quilt_rules_match(b->cfg.rules, &e, &mt);
  if (rc < 0)
    return rc;
  if (quilt_proto_get(mt.protocol) == NULL)
    return QUILT_ERR_INVAL;
  uint32_t pslot = patch_find(b, h->group, &mt);
  if (pslot == NO_SLOT) {
    pslot = patch_new(b, h->group, &mt, patch_hint);
    if (pslot != NO_SLOT)
      b->patches[pslot].gslot = h->gslot;
  }
  if (pslot == NO_SLOT)
    return QUILT_ERR_LIMIT;
  rc = patch_add_member(b, pslot, slot);
  if (rc < 0)
    return rc;
  patch *p = &b->patches[pslot];
  members_changed(b, p, now);
  int had_primary = p->nreps > 0;
  /* A host that was a representative of this very patch stays one: a
   * rebuilt table keeps the representatives that are working.  It takes
   * the place of one the rebuilt table chose in the meantime (a member
   * whose heartbeat happened to arrive first), never of one that also was
   * a representative before. */
  if (role_hint != QUILT_ROLE_MEMBER && patch_hint == p->id) {
    h->claimed = 1;
    if (p->nreps == b->cfg.reps_per_patch) {
      for (int r = (int)p->nreps - 1; r >= 0; r--) {
        uint32_t victim = p->reps[r];
        if (victim == slot || b->hosts[victim].claimed)
          continue;
        memmove(&p->reps[r], &p->reps[r + 1],
                (p->nreps - (uint32_t)r - 1) * sizeof p->reps[0]);
        p->nreps--;
        b->hosts[victim].rep_acked = 0;
        if (r == 0)
          had_primary = 0;
        send_patch_info(b, victim); /* now a member */
        break;
      }
    }
    if (p->nreps < b->cfg.reps_per_patch) {
      if (role_hint == QUILT_ROLE_PRIMARY ||
          (p->nreps > 0 && !b->hosts[p->reps[0]].claimed)) {
        /* Back in first place: the primary that worked before. */
        memmove(&p->reps[1], &p->reps[0], p->nreps * sizeof p->reps[0]);
        p->reps[0] = slot;
        p->nreps++;
        if (p->nreps > 1)
          send_patch_info(b, p->reps[1]);
      } else {
        p->reps[p->nreps++] = slot;
      }
      p->epoch = next_epoch(b);
      if (!had_primary || p->reps[0] == slot)
        peers_changed(b, now, had_primary);
      had_primary = 1;
    }
  }
  if (fill_reps(b, p) > 0) {
    p->epoch = next_epoch(b);
    /* The existing representatives learn of the newcomer. */
    for (uint32_t i = 0; i + 1 < p->nreps; i++)
      send_patch_info(b, p->reps[i]);
    if (!had_primary)
      peers_changed(b, now, 0);
  }
  promote_if_better(b, p, slot, now);
  return 0;
}

static int host_admit(quilt_bootstrap *b, uint64_t id, uint32_t group,
                      const quilt_addr *addr, const quilt_euid *euid,
                      uint32_t patch_hint, unsigned role_hint, uint64_t now,
                      uint32_t *out) {
  if (b->nhosts >= b->cfg.max_hosts)
    return QUILT_ERR_LIMIT;
  uint32_t slot;
  if (b->nfree_hosts > 0) {
    slot = b->free_hosts[--b->nfree_hosts];
  } else {
    if (b->nhosts_slots == b->cap_hosts) {
      uint32_t cap = b->cap_hosts ? b->cap_hosts * 2 : 64;
      host *nh = realloc(b->hosts, cap * sizeof *nh);
      if (!nh)
        return QUILT_ERR_NOMEM;
      b->hosts = nh;
      uint32_t *nf = realloc(b->free_hosts, cap * sizeof *nf);
      if (!nf)
        return QUILT_ERR_NOMEM;
      b->free_hosts = nf;
      b->cap_hosts = cap;
    }
    slot = b->nhosts_slots++;
  }
  host *h = &b->hosts[slot];
  memset(h, 0, sizeof *h);
  h->id = id;
  h->group = group;
  h->addr = *addr;
  h->euid = *euid;
  h->patch = NO_SLOT;
  h->last_seen_ns = now;
  h->used = 1;
  h->tidx = NO_SLOT;
  h->pos.fallback_rtt_us = euid->rtt_us;
  pos_touch(b, h);
  /* After a restart: kept with the hosts that name the same patch until
   * its vector is measured again (see region_eval).  Without landmarks
   * there will be no vector, and no provisional region either. */
  if (euid->region == 0 && patch_hint != 0 &&
      patch_hint <= QUILT_BOOTSTRAP_MAX_PATCH_ID && b->cfg.landmarks_max > 0)
    h->region = QUILT_BOOTSTRAP_REGION_PROVISIONAL | patch_hint;
  h->gslot = group_get(b, group);
  if (h->gslot == NO_SLOT || quilt_map_put(&b->host_index, id, slot) != 0) {
    if (h->gslot != NO_SLOT && b->groups[h->gslot].nhosts == 0)
      b->groups[h->gslot].used = 0;
    h->used = 0;
    b->free_hosts[b->nfree_hosts++] = slot;
    return QUILT_ERR_NOMEM;
  }
  b->nhosts++;
  grp *g = &b->groups[h->gslot];
  g->nhosts++;
  /* The first host of a group is its first landmark, if others can reach
   * it (else lm_tick finds one).  A landmark that others cannot reach (the
   * group had only hosts behind filtering NATs when lm_tick took it: their
   * PINGs to it are dropped) gives way to the first host they can. */
  if (b->cfg.landmarks_max > 0 && can_lead(h)) {
    if (g->lm.count == 1) {
      uint32_t only = g->lm.host[g->lm.order[0]];
      if (!can_lead(&b->hosts[only]) && quilt_lm_forget(&g->lm, only))
        g->lm_dirty = 1;
    }
    if (g->lm.count == 0)
      lm_add(b, h->gslot, slot);
  }
  int rc = host_place(b, slot, patch_hint, role_hint, now);
  if (rc < 0) {
    host_remove(b, slot, 0, now);
    return rc;
  }
  *out = slot;
  return 0;
}

/* JOIN, or a HEARTBEAT from a host this server does not know (after a
 * restart): admit or refresh, and answer with PATCH_INFO. */
static int on_hello(quilt_bootstrap *b, const quilt_msg *m,
                    const quilt_addr *addr, const quilt_euid *euid,
                    uint32_t believed_patch, unsigned believed_role,
                    uint32_t believed_epoch, int is_join, uint64_t now) {
  uint32_t slot = host_slot(b, m->hdr.sender);
  if (slot != NO_SLOT && b->hosts[slot].group != m->hdr.group)
    return QUILT_ERR_DUPLICATE; /* one node id, one group */
  if (slot == NO_SLOT) {
    int rc = host_admit(b, m->hdr.sender, m->hdr.group, addr, euid,
                        believed_patch, believed_role, now, &slot);
    if (rc < 0)
      return rc;
    send_patch_info(b, slot);
    return 0;
  }
  host *h = &b->hosts[slot];
  h->last_seen_ns = now;
  int moved = 0;
  if (!quilt_addr_eq(&h->addr, addr)) {
    /* A new address (a NAT rebinding, a restart on another port): where
     * the host is a representative, the patch and, for a primary, the
     * other primaries must learn it. */
    h->addr = *addr;
    patch *hp = &b->patches[h->patch];
    /* Its tree neighbours and, for a landmark, the whole group must
     * learn it too. */
    patch_dirty(b, h->patch);
    grp *g = &b->groups[h->gslot];
    if (quilt_lm_find(&g->lm, slot) >= 0)
      g->lm_dirty = 1;
    if (is_rep(hp, slot)) {
      hp->epoch = next_epoch(b);
      tell_patch(b, hp);
      if (role_of(hp, slot) == QUILT_ROLE_PRIMARY)
        peers_changed(b, now, 1);
    }
  }
  if (!quilt_euid_equal(&h->euid, euid)) {
    /* A changed environment may map to another patch (DESIGN.md 1); a
     * change the rules do not look at (a new RTT or bandwidth measure
     * under the default rules) only updates the record, so measurement
     * noise never moves a representative. */
    h->euid = *euid;
    h->pos.fallback_rtt_us = euid->rtt_us;
    pos_touch(b, h); /* the fallback estimate or the degree bound moved */
    const patch *cur = &b->patches[h->patch];
    quilt_rule_match mt;
    quilt_euid e = rules_euid(h); /* the server's region, if not its own */
    int same =
        quilt_rules_match(b->cfg.rules, &e, &mt) == 0 && same_key(&mt, cur);
    if (!same) {
      patch_remove_member(b, slot, GONE_MOVED, now);
      int rc = host_place(b, slot, 0, QUILT_ROLE_MEMBER, now);
      if (rc < 0) {
        host_remove(b, slot, 0, now);
        return rc;
      }
      moved = 1;
    }
  }
  const patch *p = &b->patches[h->patch];
  unsigned role = role_of(p, slot);
  h->rep_acked = role != QUILT_ROLE_MEMBER && !is_join &&
                 believed_patch == p->id && believed_role == role;
  /* A host whose view is stale (a PATCH_INFO lost on the way) is told
   * again: its patch, its role, and the representatives of this epoch. */
  if (is_join || moved || believed_patch != p->id || believed_role != role ||
      (!is_join && believed_epoch != p->epoch))
    send_patch_info(b, slot);
  return 0;
}

/* ---- regions ---- */

/* Landmark binning (Ratnasamy et al., INFOCOM 2002): the region of a host
 * that gives none is its nearest landmark's (quilt_lm_region).  Why
 * binning and not network coordinates (Vivaldi, GNP): the vectors are
 * measured already, binning needs no fitting and no rounds to converge,
 * the server can recompute a host's region at once from its latest
 * heartbeat (after a restart too), and what the rules' `by region` needs
 * is a grouping key, not a distance. */

/* From when the group's regions may be derived: its landmark list
 * unchanged for region_settle_ns (the hosts had that long to measure it,
 * and the choice of landmarks that long to add to it).  UINT64_MAX while
 * it has no landmark. */
static uint64_t region_ready_ns(const quilt_bootstrap *b, const grp *g) {
  if (g->lm.count == 0 || g->lm_dirty)
    return UINT64_MAX;
  return g->lm_changed_ns + b->cfg.region_settle_ns;
}

/* The region h's vector gives it now (with the hysteresis of
 * quilt_lm_region around the one it has), or 0: it gives its own, its
 * vector is not complete, or the list has not settled.  Also 0 for a host
 * farther than landmark_min_rtt_us from every landmark while the group
 * has room for more, until a choice of landmarks that had its vector
 * found no one to add: a landmark near it (or itself) may be next, and
 * binning it to a far one now would move it twice.  (A lone host far from
 * everyone is never a landmark, so it is binned after one choice.) */
static uint32_t region_want(const quilt_bootstrap *b, const host *h,
                            uint64_t now) {
  if (h->euid.region != 0)
    return 0;
  const grp *g = &b->groups[h->gslot];
  if (now < region_ready_ns(b, g))
    return 0;
  uint32_t r = quilt_lm_region(&g->lm, &h->pos, h->region);
  int seen = g->lm_idle_ns != 0 && h->lm_epoch == g->lm_epoch &&
             h->complete_ns < g->lm_idle_ns;
  if (r != 0 && g->lm.count < b->cfg.landmarks_max && !seen &&
      quilt_lm_min_rtt_us(&g->lm, &h->pos) > b->cfg.landmark_min_rtt_us)
    return 0;
  return r;
}

/* Lists patch ps for the region tick, to be looked at from `due` on.  A
 * list that cannot grow leaves it out: the next heartbeat lists it. */
static void region_list(quilt_bootstrap *b, uint32_t ps, uint64_t due) {
  patch *p = &b->patches[ps];
  if (p->region_listed) {
    if (due < p->region_due_ns)
      p->region_due_ns = due;
  } else {
    if (b->nrlist == b->cap_rlist) {
      /* At most one entry per slot after a tick, two between ticks (a
       * slot freed and used again); more is left out. */
      if (b->cap_rlist >= 2 * b->npatch_slots + 16)
        return;
      uint32_t cap = b->cap_rlist ? b->cap_rlist * 2 : 16;
      uint32_t *nl = realloc(b->rlist, cap * sizeof *nl);
      if (!nl)
        return;
      b->rlist = nl;
      b->cap_rlist = cap;
    }
    b->rlist[b->nrlist++] = ps;
    p->region_listed = 1;
    p->region_due_ns = due;
  }
  uint64_t t = b->region_tick_ns + REGION_TICK_NS;
  if (due > t)
    t = due;
  if (t < b->region_due_ns)
    b->region_due_ns = t;
}

/* A heartbeat: if the host's vector now gives it another region, its
 * patch is looked at in the next tick.  O(QUILT_LM_MAX). */
static void region_note(quilt_bootstrap *b, uint32_t slot, uint64_t now) {
  const host *h = &b->hosts[slot];
  uint32_t w = region_want(b, h, now);
  if (w != 0 && w != h->region && w != h->region_bad)
    region_list(b, h->patch, now);
}

static int same_match(const quilt_rule_match *a, const quilt_rule_match *c) {
  return a->rule == c->rule && a->nkeys == c->nkeys &&
         memcmp(a->keys, c->keys, a->nkeys * sizeof a->keys[0]) == 0;
}

/* Hosts patch q can still take. */
static uint32_t patch_room(const quilt_bootstrap *b, const patch *q) {
  uint32_t cap = UINT32_MAX;
  if (q->max_members)
    cap = q->max_members;
  if (needs_members(q) && b->cfg.members_max && b->cfg.members_max < cap)
    cap = b->cfg.members_max;
  if (q->protocol == QUILT_PROTO_TREE && QUILT_OMNI_MAX_NODES < cap)
    cap = QUILT_OMNI_MAX_NODES;
  return cap > q->nmembers ? cap - q->nmembers : 0;
}

/* Gives patch ps, whole, the key of `region`, for which `bound` of its
 * members are bound, when that moves no one and makes no needless patch:
 * every member leaves the region to the server and maps, with `region`,
 * to one rule (p's) and one key (not p's), and no patch of that key has
 * room for the `bound` (else they move into it, as newcomers do).  This
 * is what keeps a cluster together when its landmark is replaced by
 * another of the cluster, what gives a new cluster's first patch its
 * region, and what keeps a patch in place after a restart of the server.
 * O(members x rules + patches). */
static int region_rekey(quilt_bootstrap *b, uint32_t ps, uint32_t region,
                        uint32_t bound) {
  patch *p = &b->patches[ps];
  quilt_rule_match mt, m2;
  for (uint32_t i = 0; i < p->nmembers; i++) {
    const host *h = &b->hosts[p->members[i]];
    if (h->euid.region != 0)
      return 0;
    quilt_euid e = h->euid;
    e.region = region;
    if (quilt_rules_match(b->cfg.rules, &e, i == 0 ? &mt : &m2) != 0)
      return 0;
    if (i == 0 ? mt.rule != p->rule || same_key(&mt, p) : !same_match(&m2, &mt))
      return 0;
  }
  uint32_t q = p->nmembers ? patch_find(b, p->group, &mt) : NO_SLOT;
  if (p->nmembers == 0 ||
      (q != NO_SLOT && patch_room(b, &b->patches[q]) >= bound))
    return 0;
  memcpy(p->keys, mt.keys, sizeof p->keys);
  for (uint32_t i = 0; i < p->nmembers; i++)
    b->hosts[p->members[i]].region = region;
  b->ctr.region_rekeys++;
  return 1;
}

/* Moves host `slot` to the patch the rules give with `region`: out of its
 * patch as for a departure (a representative is replaced and the patch
 * told), into the new one, and told with a PATCH_INFO. */
static void region_move(quilt_bootstrap *b, uint32_t slot, uint32_t region,
                        uint64_t now) {
  host *h = &b->hosts[slot];
  uint32_t old = h->region;
  patch_remove_member(b, slot, GONE_MOVED, now);
  h->region = region;
  h->moved_ns = now ? now : 1;
  h->rep_acked = 0; /* until its heartbeats show its new role */
  h->claimed = 0;
  int rc = host_place(b, slot, 0, QUILT_ROLE_MEMBER, now);
  if (rc < 0) {
    /* No room (max_patches, memory): back where it was keyed before,
     * and not tried again for this region; out if even that fails (its
     * next heartbeat re-admits it). */
    h->region = old;
    h->region_bad = region;
    if (host_place(b, slot, 0, QUILT_ROLE_MEMBER, now) < 0) {
      host_remove(b, slot, 0, now);
      return;
    }
  } else {
    b->ctr.region_moves++;
  }
  send_patch_info(b, slot);
}

static uint64_t earlier(uint64_t a, uint64_t t) {
  return a == 0 || t < a ? t : a;
}

/* Moves of one tick, at most. */
#define REGION_TICK_MOVES_MAX                                                  \
  ((uint32_t)((uint64_t)QUILT_BOOTSTRAP_REGION_MOVES_MAX * REGION_TICK_NS /    \
              (1000 * NS_PER_MS)))

/* Looks at the members of patch ps bound for another region: when more
 * than half are bound for one region, the patch may take it whole
 * (region_rekey); the others move, each at most once per
 * region_move_min_ns, and at most *moves of them (the tick's share; what
 * is made is taken off).  A member whose region does not change its
 * patch's key takes the region in place.  Returns 0 when nothing is left
 * to do, else when to look again.  O(members x (QUILT_LM_MAX + rules)). */
static uint64_t region_eval(quilt_bootstrap *b, uint32_t ps, uint64_t now,
                            uint32_t *moves) {
  patch *p = &b->patches[ps];
  uint64_t ready = region_ready_ns(b, &b->groups[p->gslot]);
  if (ready == UINT64_MAX)
    return 0; /* no landmark (the hosts list it again once there is) */
  if (now < ready)
    return ready;
  /* Where the members are bound: regions of landmarks, so at most
   * QUILT_LM_MAX of them. */
  uint32_t rr[QUILT_LM_MAX], rn[QUILT_LM_MAX], nr = 0;
  int own = 0;
  for (uint32_t i = 0; i < p->nmembers; i++) {
    const host *h = &b->hosts[p->members[i]];
    own |= h->euid.region != 0;
    uint32_t w = region_want(b, h, now);
    if (w == 0 || w == h->region)
      continue;
    uint32_t k = 0;
    while (k < nr && rr[k] != w)
      k++;
    if (k == nr) {
      if (nr == QUILT_LM_MAX)
        continue;
      rr[nr] = w;
      rn[nr++] = 0;
    }
    rn[k]++;
  }
  if (nr == 0)
    return 0;
  for (uint32_t k = 0; k < nr && !own; k++)
    if (2 * rn[k] > p->nmembers && region_rekey(b, ps, rr[k], rn[k]))
      break;
  uint32_t mv[REGION_TICK_MOVES_MAX], mr[REGION_TICK_MOVES_MAX], nmv = 0;
  uint64_t due = 0;
  for (uint32_t i = 0; i < p->nmembers; i++) {
    uint32_t slot = p->members[i];
    host *h = &b->hosts[slot];
    uint32_t w = region_want(b, h, now);
    if (w == 0 || w == h->region || w == h->region_bad)
      continue;
    quilt_euid e = h->euid;
    e.region = w;
    quilt_rule_match mt;
    if (quilt_rules_match(b->cfg.rules, &e, &mt) != 0 ||
        quilt_proto_get(mt.protocol) == NULL) {
      h->region_bad = w; /* no rule takes it there: it stays */
      continue;
    }
    if (same_key(&mt, p)) {
      h->region = w; /* its patch is not keyed by region */
      continue;
    }
    if (h->moved_ns != 0 && now < h->moved_ns + b->cfg.region_move_min_ns) {
      due = earlier(due, h->moved_ns + b->cfg.region_move_min_ns);
      continue;
    }
    if (nmv < *moves) {
      mv[nmv] = slot;
      mr[nmv++] = w;
    } else {
      b->ctr.region_deferred++;
      due = earlier(due, now + 1); /* the next tick */
    }
  }
  *moves -= nmv;
  /* After the look: moving changes p's member list, and may free p. */
  for (uint32_t k = 0; k < nmv; k++)
    region_move(b, mv[k], mr[k], now);
  return due;
}

/* Every REGION_TICK_NS while patches are listed: each listed patch that
 * is due is looked at, up to REGION_SCAN_MAX members in all, with the
 * tick's share of region_moves_per_sec; the others wait for the next. */
static void region_tick(quilt_bootstrap *b, uint64_t now) {
  uint64_t share = (uint64_t)b->cfg.region_moves_per_sec * REGION_TICK_NS /
                   (1000 * NS_PER_MS);
  uint32_t moves = share == 0 ? 1 : (uint32_t)share;
  assert(moves <= REGION_TICK_MOVES_MAX);
  uint32_t scanned = 0, keep = 0, n = b->nrlist;
  uint64_t next = UINT64_MAX;
  for (uint32_t k = 0; k < n; k++) {
    uint32_t ps = b->rlist[k];
    if (ps >= b->npatch_slots || !b->patches[ps].used ||
        b->patches[ps].region_listed != 1)
      continue; /* freed, or listed twice */
    uint64_t due = b->patches[ps].region_due_ns;
    if (due <= now && scanned < REGION_SCAN_MAX) {
      uint32_t id = b->patches[ps].id;
      scanned += b->patches[ps].nmembers;
      due = region_eval(b, ps, now, &moves);
      if (!b->patches[ps].used || b->patches[ps].id != id)
        continue; /* emptied by the moves */
    }
    patch *p = &b->patches[ps];
    if (due == 0) {
      p->region_listed = 0;
      continue;
    }
    p->region_due_ns = due;
    p->region_listed = 2;
    b->rlist[keep++] = ps;
    if (due < next)
      next = due;
  }
  /* The region_list calls of region_eval's moves (none today) would have
   * appended past n. */
  assert(b->nrlist == n);
  for (uint32_t k = 0; k < keep; k++)
    b->patches[b->rlist[k]].region_listed = 1;
  b->nrlist = keep;
  b->region_tick_ns = now;
  if (next != UINT64_MAX && next < now + REGION_TICK_NS)
    next = now + REGION_TICK_NS;
  b->region_due_ns = next;
}

/* After a JOIN or HEARTBEAT from a host the server now holds: landmarks,
 * positions, and a host (a primary) taken out of a tree back in. */
static void after_hello(quilt_bootstrap *b, uint64_t id,
                        const quilt_msg_heartbeat *hb, uint64_t now) {
  uint32_t slot = host_slot(b, id);
  if (slot == NO_SLOT)
    return;
  host *h = &b->hosts[slot];
  if (hb) {
    on_rtts(b, slot, hb, now);
    region_note(b, slot, now);
  } else if (!b->groups[h->gslot].lm_dirty)
    send_landmarks(b, slot); /* right after its PATCH_INFO */
  if (h->tree_out) {
    h->tree_out = 0;
    patch_dirty(b, h->patch);
  }
  patch *p = &b->patches[h->patch];
  if (p->wao_out && p->nreps > 0 && p->reps[0] == slot) {
    p->wao_out = 0;
    b->wao_dirty = 1;
  }
  if (hb && (hb->flags & QUILT_HB_SOURCE) && !p->source && p->nreps > 0 &&
      p->reps[0] == slot) {
    p->source = 1; /* for as long as the patch lives */
    b->ctr.wao_sources++;
    b->wao_dirty = 1;
  }
}

/* The overlay tree `id` (QUILT_WIRE_TREE_WAO | root patch id) of group
 * gslot, or NULL.  O(patches). */
static tree *wao_of(const quilt_bootstrap *b, uint32_t gslot, uint32_t id) {
  for (uint32_t i = 0; i < b->npatch_slots; i++) {
    const patch *p = &b->patches[i];
    if (p->used && p->gslot == gslot && p->wao && p->wao->id == id)
      return p->wao;
  }
  return NULL;
}

/* ORPHAN: host `slot` says its parent in tree o->tree went silent.  If the
 * server's tree agrees on who the parent is, that node is taken out of
 * this tree only (its own heartbeats decide whether it lives; heard from
 * again, it comes back as a leaf) and its children re-attached, with the
 * new views sent at once; a root taken out means a new tree around another
 * root.  Otherwise the host has an old view: it is sent its current one.
 * In the overlay tree the nodes are patches, named by their primaries. */
static void on_orphan(quilt_bootstrap *b, uint32_t slot,
                      const quilt_msg_orphan *o, uint64_t now) {
  host *h = &b->hosts[slot];
  patch *p = &b->patches[h->patch];
  tree *tr;
  uint32_t i;
  if (QUILT_WIRE_TREE_IS_WAO(o->tree)) {
    tr = wao_of(b, h->gslot, o->tree);
    if (!tr || !tr->t || p->nreps == 0 || p->reps[0] != slot)
      return; /* not a primary: no view to fix */
    i = node_of(b, tr, h->patch);
  } else {
    tr = p->tree;
    if (p->id != o->tree || !tr)
      return;          /* an old patch's tree */
    if (h->tree_out) { /* it lives: back in, and told where */
      h->tree_out = 0;
      patch_dirty(b, h->patch);
      return;
    }
    i = node_of(b, tr, slot);
  }
  if (i == NO_SLOT || !tr->t)
    return;
  uint32_t pi = quilt_omni_parent(tr->t, i);
  uint32_t ps = pi == QUILT_OMNI_NONE ? NO_SLOT : node_host(b, tr, pi);
  if (ps == NO_SLOT || b->hosts[ps].id != o->parent) {
    resend_view(b, tr, i);
    return;
  }
  if (is_wao(tr)) {
    /* Out of every overlay tree of the group (settle, before this event
     * ends), as a failed primary would be, until it is heard from. */
    b->patches[tr->nodes[pi].ref].wao_out = 1;
    b->wao_dirty = 1;
    return;
  }
  b->hosts[ps].tree_out = 1;
  tree_sync(b, tr, now);
}

int quilt_bootstrap_read(quilt_bootstrap *b, const quilt_addr *from,
                         const uint8_t *buf, size_t len, uint64_t now) {
  quilt_msg m;
  int rc = quilt_wire_decode(&m, buf, len);
  if (rc < 0) {
    b->ctr.refused++;
    return rc;
  }
  if (m.hdr.sender == 0 || m.hdr.sender == b->cfg.id) {
    b->ctr.refused++;
    return QUILT_ERR_MALFORMED;
  }
  /* A host is reached at the address its datagrams come from: behind a
   * NAT that is the NAT's outer address, not the one the host believes it
   * has (RFC 5389's server-reflexive address).  A driver that cannot tell
   * passes 0.0.0.0:0 and the claimed address is used. */
  if (from && from->ip) {
    if (m.hdr.type == QUILT_MSG_JOIN)
      m.u.join.addr = *from;
    else if (m.hdr.type == QUILT_MSG_HEARTBEAT)
      m.u.heartbeat.addr = *from;
  }
  switch (m.hdr.type) {
  case QUILT_MSG_JOIN:
    b->ctr.joins++;
    rc = on_hello(b, &m, &m.u.join.addr, &m.u.join.euid, 0, QUILT_ROLE_MEMBER,
                  0, 1, now);
    if (rc == 0)
      after_hello(b, m.hdr.sender, NULL, now);
    break;
  case QUILT_MSG_HEARTBEAT:
    b->ctr.heartbeats++;
    rc = on_hello(b, &m, &m.u.heartbeat.addr, &m.u.heartbeat.euid,
                  m.u.heartbeat.patch_id, m.u.heartbeat.role,
                  m.u.heartbeat.epoch, 0, now);
    if (rc == 0)
      after_hello(b, m.hdr.sender, &m.u.heartbeat, now);
    break;
  case QUILT_MSG_LEAVE: {
    b->ctr.leaves++;
    uint32_t slot = host_slot(b, m.hdr.sender);
    if (slot != NO_SLOT && b->hosts[slot].group == m.hdr.group)
      host_remove(b, slot, 0, now);
    rc = 0;
    break;
  }
  case QUILT_MSG_ORPHAN: {
    uint32_t slot = host_slot(b, m.hdr.sender);
    if (slot == NO_SLOT || b->hosts[slot].group != m.hdr.group) {
      rc = QUILT_ERR_NOT_FOUND; /* not one of ours */
      break;
    }
    b->ctr.orphans++;
    on_orphan(b, slot, &m.u.orphan, now);
    rc = 0;
    break;
  }
  default:
    rc = QUILT_ERR_MALFORMED;
    break;
  }
  settle(b, now);
  if (rc < 0)
    b->ctr.refused++;
  return rc;
}

uint64_t quilt_bootstrap_expiry(const quilt_bootstrap *b) {
  uint64_t t = b->sweep_due_ns;
  if (b->members_due_ns < t)
    t = b->members_due_ns;
  if (b->npatches > 0 && b->peers_due_ns < t)
    t = b->peers_due_ns;
  if (b->nhosts > 0) {
    if (b->lm_due_ns < t)
      t = b->lm_due_ns;
    if (b->tree_due_ns < t)
      t = b->tree_due_ns;
    if (b->refresh_due_ns < t)
      t = b->refresh_due_ns;
  }
  if (b->nrlist > 0 && b->region_due_ns < t)
    t = b->region_due_ns;
  return t;
}

void quilt_bootstrap_handle_expiry(quilt_bootstrap *b, uint64_t now) {
  uint64_t hb = (uint64_t)b->cfg.heartbeat_ms * NS_PER_MS;
  uint64_t rep_hb = (uint64_t)b->cfg.rep_heartbeat_ms * NS_PER_MS;
  if (b->sweep_due_ns <= now) {
    /* A host is dead once its heartbeats have been missing miss_limit
     * times in a row; the extra half interval absorbs jitter.  The short
     * representative limit applies only once the host's heartbeats show
     * that it knows its role (and so its faster interval). */
    uint64_t limit = hb * b->cfg.miss_limit + hb / 2;
    uint64_t rep_limit = rep_hb * b->cfg.rep_miss_limit + rep_hb / 2;
    for (uint32_t i = 0; i < b->nhosts_slots; i++) {
      host *h = &b->hosts[i];
      if (!h->used)
        continue;
      uint64_t l =
          h->rep_acked && is_rep(&b->patches[h->patch], i) ? rep_limit : limit;
      if (now > h->last_seen_ns + l) {
        b->ctr.expired++;
        host_remove(b, i, 1, now);
      }
    }
    b->sweep_due_ns = now + (rep_hb < hb ? rep_hb : hb) / 2;
    settle(b, now); /* trees without the dead, before they are ticked */
  }
  if (b->nhosts > 0 && b->lm_due_ns <= now) {
    lm_tick(b, now);
    b->lm_due_ns = now + b->cfg.landmark_period_ns;
    settle(b, now);
  }
  if (b->nrlist > 0 && b->region_due_ns <= now) {
    region_tick(b, now);
    settle(b, now); /* the moved hosts' trees, before they are ticked */
  }
  if (b->nhosts > 0 && b->tree_due_ns <= now) {
    /* A quarter period, so that a tree due for work waits at most that
     * long past its tree_rebuild_ns. */
    for (uint32_t k = 0; k < tree_count(b); k++) {
      tree *tr = tree_nth(b, k);
      if (tr)
        tree_tick(b, tr, now);
    }
    b->tree_due_ns = now + b->cfg.tree_rebuild_ns / 4;
  }
  if (b->nhosts > 0 && b->refresh_due_ns <= now) {
    tree_refresh(b);
    b->refresh_due_ns = now + b->cfg.tree_refresh_ns / TREE_REFRESH_SLICES;
  }
  if (b->npatches > 0 && b->peers_due_ns <= now) {
    send_peers(b, now);
    /* Member lists are refreshed with the table of primaries, so that a
     * lost MEMBERS datagram heals. */
    for (uint32_t i = 0; i < b->npatch_slots; i++)
      if (b->patches[i].used)
        members_changed(b, &b->patches[i], now);
  }
  if (b->members_due_ns <= now) {
    b->members_due_ns = UINT64_MAX;
    for (uint32_t i = 0; i < b->npatch_slots; i++)
      if (b->patches[i].used && b->patches[i].members_dirty)
        send_members(b, &b->patches[i]);
  }
  settle(b, now);
}

/* The tree of patch slot `owner` (wao: the overlay tree rooted at it);
 * tr is NULL while it has no one to hold.  omni's invariants, and exactly
 * the nodes tree_collect() would take, the root first. */
static int tree_check(const quilt_bootstrap *b, const tree *tr, int wao,
                      uint32_t owner, char *err, size_t errlen) {
  const char *what = wao ? "overlay tree rooted at patch" : "tree of patch";
  const patch *op = &b->patches[owner];
  uint32_t oid = op->id;
  uint32_t want = 0;
  if (wao) {
    uint32_t prim = 0, in = 0;
    for (uint32_t i = 0; i < b->npatch_slots; i++) {
      const patch *p = &b->patches[i];
      if (!p->used || p->gslot != op->gslot || p->nreps == 0)
        continue;
      prim++;
      in += !p->wao_out;
    }
    if (op->nreps > 0 && !op->wao_out && op->source &&
        prim <= b->cfg.wao_max_patches)
      want = in;
    if (tr && tr->t && node_of(b, tr, owner) != 0) {
      snprintf(err, errlen, "%s %u: not the root", what, oid);
      return QUILT_ERR_STATE;
    }
  } else {
    const patch *p = &b->patches[owner];
    for (uint32_t k = 0; k < p->nmembers; k++)
      want += !b->hosts[p->members[k]].tree_out;
  }
  uint32_t live = tr && tr->t ? tr->live : 0;
  if (live != want) {
    snprintf(err, errlen, "%s %u holds %u, should hold %u", what, oid, live,
             want);
    return QUILT_ERR_STATE;
  }
  if (!tr || !tr->t)
    return 0;
  char oerr[160];
  if (quilt_omni_check(tr->t, oerr, sizeof oerr) != 0) {
    snprintf(err, errlen, "%s %u: %s", what, oid, oerr);
    return QUILT_ERR_STATE;
  }
  uint32_t n = 0;
  for (uint32_t i = 0; i < tr->cap; i++) {
    const tnode *nd = &tr->nodes[i];
    if ((nd->ref != NO_SLOT) != (quilt_omni_alive(tr->t, i) != 0)) {
      snprintf(err, errlen, "%s %u: node %u in use %d, in the tree %d", what,
               oid, i, nd->ref != NO_SLOT, quilt_omni_alive(tr->t, i));
      return QUILT_ERR_STATE;
    }
    if (nd->ref == NO_SLOT)
      continue;
    n++;
    if (!ref_valid(b, tr, nd->ref, nd->key) || node_of(b, tr, nd->ref) != i) {
      snprintf(err, errlen, "%s %u: node %u stands for %llu, gone or elsewhere",
               what, oid, i, (unsigned long long)nd->key);
      return QUILT_ERR_STATE;
    }
    if (quilt_omni_degree(tr->t, i) != nd->degree ||
        nd->degree > TREE_MAX_DEGREE || nd->degree < 2) {
      snprintf(err, errlen, "%s %u: node %u degree bound %u, recorded %u", what,
               oid, i, quilt_omni_degree(tr->t, i), nd->degree);
      return QUILT_ERR_STATE;
    }
  }
  if (n != live) {
    snprintf(err, errlen, "%s %u: %u nodes in use, %u counted", what, oid, n,
             live);
    return QUILT_ERR_STATE;
  }
  return 0;
}

int quilt_bootstrap_check(const quilt_bootstrap *b, char *err, size_t errlen) {
  uint32_t placed = 0;
  for (uint32_t i = 0; i < b->npatch_slots; i++) {
    const patch *p = &b->patches[i];
    if (!p->used)
      continue;
    if (p->nmembers == 0) {
      snprintf(err, errlen, "patch %u is empty", p->id);
      return QUILT_ERR_STATE;
    }
    if (p->max_members && p->nmembers > p->max_members) {
      snprintf(err, errlen, "patch %u has %u members, limit %u", p->id,
               p->nmembers, p->max_members);
      return QUILT_ERR_STATE;
    }
    if (needs_members(p) && b->cfg.members_max &&
        p->nmembers > b->cfg.members_max) {
      snprintf(err, errlen, "patch %u has %u members, member-list limit %u",
               p->id, p->nmembers, b->cfg.members_max);
      return QUILT_ERR_STATE;
    }
    uint32_t want = b->cfg.reps_per_patch < p->nmembers ? b->cfg.reps_per_patch
                                                        : p->nmembers;
    if (p->nreps != want) {
      snprintf(err, errlen, "patch %u has %u representatives, expected %u",
               p->id, p->nreps, want);
      return QUILT_ERR_STATE;
    }
    for (uint32_t r = 0; r < p->nreps; r++) {
      const host *h = &b->hosts[p->reps[r]];
      if (!h->used || h->patch != i) {
        snprintf(err, errlen, "patch %u: representative %u is not a member",
                 p->id, r);
        return QUILT_ERR_STATE;
      }
      for (uint32_t q = 0; q < r; q++)
        if (p->reps[q] == p->reps[r]) {
          snprintf(err, errlen, "patch %u: representative listed twice", p->id);
          return QUILT_ERR_STATE;
        }
    }
    for (uint32_t j = 0; j < p->nmembers; j++) {
      const host *h = &b->hosts[p->members[j]];
      if (!h->used || h->patch != i) {
        snprintf(err, errlen, "patch %u: member %u points elsewhere", p->id, j);
        return QUILT_ERR_STATE;
      }
    }
    placed += p->nmembers;
  }
  if (placed != b->nhosts) {
    snprintf(err, errlen, "%u hosts admitted but %u placed in patches",
             b->nhosts, placed);
    return QUILT_ERR_STATE;
  }
  /* Each host where the rules put it, with the region the server gave
   * it (a patch's key is what its members map to; region_rekey changes
   * both at once). */
  for (uint32_t i = 0; i < b->nhosts_slots; i++) {
    const host *h = &b->hosts[i];
    if (!h->used)
      continue;
    uint32_t r = h->region;
    if (h->euid.region == 0 && r != 0 &&
        !(r & QUILT_BOOTSTRAP_REGION_PROVISIONAL) &&
        (r < QUILT_LM_REGION_MIN || r > QUILT_LM_REGION_MAX)) {
      snprintf(err, errlen, "host %llu: region %u is no landmark's",
               (unsigned long long)h->id, r);
      return QUILT_ERR_STATE;
    }
    quilt_euid e = rules_euid(h);
    quilt_rule_match mt;
    if (h->patch >= b->npatch_slots ||
        quilt_rules_match(b->cfg.rules, &e, &mt) != 0 ||
        !same_key(&mt, &b->patches[h->patch])) {
      snprintf(err, errlen,
               "host %llu (region %u) is in patch %u, its EUID maps elsewhere",
               (unsigned long long)h->id, e.region,
               h->patch < b->npatch_slots ? b->patches[h->patch].id : 0);
      return QUILT_ERR_STATE;
    }
  }
  for (uint32_t i = 0; i < b->npatch_slots; i++) {
    const patch *p = &b->patches[i];
    if (p->used && p->protocol == QUILT_PROTO_TREE &&
        tree_check(b, p->tree, 0, i, err, errlen) != 0)
      return QUILT_ERR_STATE;
  }
  for (uint32_t i = 0; i < b->npatch_slots; i++) {
    const patch *p = &b->patches[i];
    if (p->used && (b->cfg.wao_tree || p->wao) &&
        tree_check(b, p->wao, 1, i, err, errlen) != 0)
      return QUILT_ERR_STATE;
  }
  return 0;
}

size_t quilt_bootstrap_patch_count(const quilt_bootstrap *b) {
  return b->npatches;
}

void quilt_bootstrap_patch_get(const quilt_bootstrap *b, size_t idx,
                               quilt_bootstrap_patch *out) {
  memset(out, 0, sizeof *out);
  size_t seen = 0;
  for (uint32_t i = 0; i < b->npatch_slots; i++) {
    const patch *p = &b->patches[i];
    if (!p->used)
      continue;
    if (seen++ != idx)
      continue;
    out->patch_id = p->id;
    out->group = p->group;
    out->protocol = p->protocol;
    out->rule = p->rule;
    out->members = p->nmembers;
    out->nreps = p->nreps;
    out->epoch = p->epoch;
    for (uint32_t r = 0; r < p->nreps; r++)
      out->reps[r] = b->hosts[p->reps[r]].id;
    return;
  }
}

void quilt_bootstrap_counters_get(const quilt_bootstrap *b,
                                  quilt_bootstrap_counters *c) {
  *c = b->ctr;
  c->hosts = b->nhosts;
  c->patches = b->npatches;
}

int quilt_bootstrap_host_get(const quilt_bootstrap *b, uint64_t id,
                             quilt_bootstrap_host *out) {
  uint32_t slot = host_slot(b, id);
  if (slot == NO_SLOT)
    return QUILT_ERR_NOT_FOUND;
  const host *h = &b->hosts[slot];
  const patch *p = &b->patches[h->patch];
  memset(out, 0, sizeof *out);
  out->id = h->id;
  out->group = h->group;
  out->addr = h->addr;
  out->euid = rules_euid(h);
  out->own_region = h->euid.region;
  out->region_derived = h->euid.region == 0 &&
                        h->region >= QUILT_LM_REGION_MIN &&
                        h->region <= QUILT_LM_REGION_MAX;
  out->patch_id = p->id;
  out->role = role_of(p, slot);
  out->moved_ns = h->moved_ns;
  return 0;
}

uint32_t quilt_bootstrap_est_us(const quilt_bootstrap *b, uint64_t a,
                                uint64_t b_id) {
  uint32_t sa = host_slot(b, a), sb = host_slot(b, b_id);
  if (sa == NO_SLOT || sb == NO_SLOT)
    return UINT32_MAX;
  return quilt_lm_est_us(&b->hosts[sa].pos, &b->hosts[sb].pos,
                         b->cfg.tree_hop_us);
}

int quilt_bootstrap_tree_parent(const quilt_bootstrap *b, uint32_t tree_id,
                                uint64_t host_id, uint64_t *parent) {
  uint32_t slot = host_slot(b, host_id);
  if (slot == NO_SLOT)
    return QUILT_ERR_NOT_FOUND;
  const host *h = &b->hosts[slot];
  const patch *p = &b->patches[h->patch];
  const tree *tr;
  uint32_t i;
  if (QUILT_WIRE_TREE_IS_WAO(tree_id)) {
    tr = wao_of(b, h->gslot, tree_id);
    if (!tr || !tr->t || p->nreps == 0 || p->reps[0] != slot)
      return QUILT_ERR_NOT_FOUND;
    i = node_of(b, tr, h->patch);
  } else {
    tr = p->tree;
    if (p->id != tree_id || !tr || !tr->t)
      return QUILT_ERR_NOT_FOUND;
    i = node_of(b, tr, slot);
  }
  if (i == NO_SLOT)
    return QUILT_ERR_NOT_FOUND;
  uint32_t pi = quilt_omni_parent(tr->t, i);
  *parent = pi == QUILT_OMNI_NONE ? 0 : b->hosts[node_host(b, tr, pi)].id;
  return 0;
}

int quilt_bootstrap_new(quilt_bootstrap **out,
                        const quilt_bootstrap_config *cfg,
                        const quilt_bootstrap_callbacks *cb, void *user) {
  if (!cfg || !cfg->rules || !cb || !cb->send || cfg->reps_per_patch == 0 ||
      cfg->reps_per_patch > QUILT_BOOTSTRAP_MAX_REPS ||
      cfg->heartbeat_ms == 0 || cfg->miss_limit == 0 ||
      cfg->rep_heartbeat_ms == 0 || cfg->rep_miss_limit == 0 ||
      cfg->max_patches == 0 ||
      cfg->max_patches > QUILT_BOOTSTRAP_MAX_PATCH_ID ||
      cfg->landmarks_max > QUILT_WIRE_MAX_LANDMARKS ||
      cfg->landmark_period_ns == 0 || cfg->tree_rebuild_ns < 4 ||
      cfg->tree_refresh_ns < TREE_REFRESH_SLICES ||
      cfg->wao_max_patches > QUILT_OMNI_MAX_NODES ||
      cfg->region_moves_per_sec == 0 ||
      cfg->region_moves_per_sec > QUILT_BOOTSTRAP_REGION_MOVES_MAX)
    return QUILT_ERR_INVAL;
  quilt_bootstrap *b = calloc(1, sizeof *b);
  if (!b)
    return QUILT_ERR_NOMEM;
  b->cfg = *cfg;
  b->cb = *cb;
  b->user = user;
  quilt_map_init(&b->host_index);
  b->peers_due_ns = UINT64_MAX;
  b->members_due_ns = UINT64_MAX;
  b->region_due_ns = UINT64_MAX;
  b->sweep_due_ns = 0;
  b->peers_epoch = (uint32_t)cfg->incarnation << 24;
  quilt_rng_init(&b->rng, cfg->seed, cfg->id);
  *out = b;
  return 0;
}

void quilt_bootstrap_del(quilt_bootstrap *b) {
  if (!b)
    return;
  for (uint32_t i = 0; i < b->npatch_slots; i++) {
    free(b->patches[i].members);
    tree_del(b->patches[i].tree);
    tree_del(b->patches[i].wao);
  }
  free(b->groups);
  free(b->dirty);
  free(b->rlist);
  free(b->patches);
  free(b->hosts);
  free(b->free_hosts);
  quilt_map_free(&b->host_index);
  free(b);
}
