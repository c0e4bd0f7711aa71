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
 */
#include "bootstrap.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "map.h"
#include "proto.h"
#include "quilt.h"

#define NS_PER_MS 1000000ULL
#define NO_SLOT UINT32_MAX

typedef struct host {
  uint64_t id;
  uint32_t group;
  quilt_addr addr;
  quilt_euid euid;
  uint32_t patch; /* patch slot */
  uint64_t last_seen_ns;
  int used;
  int rep_acked; /* its heartbeats say it knows it is a representative */
  int claimed;   /* was a representative of its patch under a previous
                    server (said so in the heartbeat that admitted it) */
} host;

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
} patch;

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
  c->members_max = 256;
  c->send_members = 1;
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

/* Sends the table of primaries of `group` to every representative in it. */
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
      for (uint32_t r = 0; r < p->nreps; r++)
        send_msg(b, &b->hosts[p->reps[r]].addr, m);
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

static void peers_changed(quilt_bootstrap *b, uint64_t now) {
  b->peers_epoch++;
  b->peers_dirty = 1;
  /* Coalesce the bursts of changes of a join wave (or of several patches
   * failing over together) into one PEERS round, but send it soon: until
   * it arrives, traffic to a replaced primary is lost. */
  if (b->peers_due_ns > now + 5 * NS_PER_MS)
    b->peers_due_ns = now + 5 * NS_PER_MS;
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
  p->members_epoch++;
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
  p->epoch = (uint32_t)b->cfg.incarnation << 24;
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
  return 0;
}

/* Removes a host from its patch; replaces it if it was a representative
 * and tells the patch.  `failed` counts it as a failover. */
static void patch_remove_member(quilt_bootstrap *b, uint32_t hslot,
                                int failed, uint64_t now) {
  uint32_t pslot = b->hosts[hslot].patch;
  patch *p = &b->patches[pslot];
  for (uint32_t i = 0; i < p->nmembers; i++)
    if (p->members[i] == hslot) {
      p->members[i] = p->members[--p->nmembers];
      break;
    }
  b->hosts[hslot].patch = NO_SLOT;
  members_changed(b, p, now);
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
    memset(p, 0, sizeof *p);
    b->npatches--;
    peers_changed(b, now);
    return;
  }
  if (!was_rep)
    return;
  fill_reps(b, p);
  p->epoch++;
  if (failed)
    b->ctr.failovers++;
  tell_patch(b, p);
  if (was_primary)
    peers_changed(b, now);
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
    patch_remove_member(b, slot, failed, now);
  quilt_map_del(&b->host_index, h->id);
  h->used = 0;
  b->free_hosts[b->nfree_hosts++] = slot;
  b->nhosts--;
}

/* Puts an admitted host into the patch its EUID maps to.  Returns 0 or a
 * negative code (no rule matched, patch limit).  The hints are what the
 * host believes (from its heartbeat), used when the server rebuilds its
 * table after a restart. */
static int host_place(quilt_bootstrap *b, uint32_t slot, uint32_t patch_hint,
                      unsigned role_hint, uint64_t now) {
  host *h = &b->hosts[slot];
  quilt_rule_match mt;
  int rc = quilt_rules_match(b->cfg.rules, &h->euid, &mt);
  if (rc < 0)
    return rc;
  if (quilt_proto_get(mt.protocol) == NULL)
    return QUILT_ERR_INVAL;
  uint32_t pslot = patch_find(b, h->group, &mt);
  if (pslot == NO_SLOT)
    pslot = patch_new(b, h->group, &mt, patch_hint);
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
      p->epoch++;
      if (!had_primary || p->reps[0] == slot)
        peers_changed(b, now);
      had_primary = 1;
    }
  }
  if (fill_reps(b, p) > 0) {
    p->epoch++;
    /* The existing representatives learn of the newcomer. */
    for (uint32_t i = 0; i + 1 < p->nreps; i++)
      send_patch_info(b, p->reps[i]);
    if (!had_primary)
      peers_changed(b, now);
  }
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
  if (quilt_map_put(&b->host_index, id, slot) != 0) {
    h->used = 0;
    b->free_hosts[b->nfree_hosts++] = slot;
    return QUILT_ERR_NOMEM;
  }
  b->nhosts++;
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
    if (is_rep(hp, slot)) {
      hp->epoch++;
      tell_patch(b, hp);
      if (role_of(hp, slot) == QUILT_ROLE_PRIMARY)
        peers_changed(b, now);
    }
  }
  if (!quilt_euid_equal(&h->euid, euid)) {
    /* A changed environment may map to another patch (DESIGN.md 1); a
     * change the rules do not look at (a new RTT or bandwidth measure
     * under the default rules) only updates the record, so measurement
     * noise never moves a representative. */
    h->euid = *euid;
    const patch *cur = &b->patches[h->patch];
    quilt_rule_match mt;
    int same = quilt_rules_match(b->cfg.rules, euid, &mt) == 0 &&
               mt.rule == cur->rule && mt.nkeys == cur->nkeys &&
               memcmp(mt.keys, cur->keys, mt.nkeys * sizeof mt.keys[0]) == 0;
    if (!same) {
      patch_remove_member(b, slot, 0, now);
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
    rc = on_hello(b, &m, &m.u.join.addr, &m.u.join.euid, 0,
                  QUILT_ROLE_MEMBER, 0, 1, now);
    break;
  case QUILT_MSG_HEARTBEAT:
    b->ctr.heartbeats++;
    rc = on_hello(b, &m, &m.u.heartbeat.addr, &m.u.heartbeat.euid,
                  m.u.heartbeat.patch_id, m.u.heartbeat.role,
                  m.u.heartbeat.epoch, 0, now);
    break;
  case QUILT_MSG_LEAVE: {
    b->ctr.leaves++;
    uint32_t slot = host_slot(b, m.hdr.sender);
    if (slot != NO_SLOT && b->hosts[slot].group == m.hdr.group)
      host_remove(b, slot, 0, now);
    rc = 0;
    break;
  }
  default:
    rc = QUILT_ERR_MALFORMED;
    break;
  }
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
      uint64_t l = h->rep_acked && is_rep(&b->patches[h->patch], i)
                       ? rep_limit
                       : limit;
      if (now > h->last_seen_ns + l) {
        b->ctr.expired++;
        host_remove(b, i, 1, now);
      }
    }
    b->sweep_due_ns = now + (rep_hb < hb ? rep_hb : hb) / 2;
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
}

int quilt_bootstrap_check(const quilt_bootstrap *b, char *err,
                          size_t errlen) {
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
    uint32_t want = b->cfg.reps_per_patch < p->nmembers
                        ? b->cfg.reps_per_patch
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
          snprintf(err, errlen, "patch %u: representative listed twice",
                   p->id);
          return QUILT_ERR_STATE;
        }
    }
    for (uint32_t j = 0; j < p->nmembers; j++) {
      const host *h = &b->hosts[p->members[j]];
      if (!h->used || h->patch != i) {
        snprintf(err, errlen, "patch %u: member %u points elsewhere", p->id,
                 j);
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

int quilt_bootstrap_new(quilt_bootstrap **out,
                        const quilt_bootstrap_config *cfg,
                        const quilt_bootstrap_callbacks *cb, void *user) {
  if (!cfg || !cfg->rules || !cb || !cb->send || cfg->reps_per_patch == 0 ||
      cfg->reps_per_patch > QUILT_BOOTSTRAP_MAX_REPS ||
      cfg->heartbeat_ms == 0 || cfg->miss_limit == 0 ||
      cfg->rep_heartbeat_ms == 0 || cfg->rep_miss_limit == 0 ||
      cfg->max_patches == 0 || cfg->max_patches > QUILT_BOOTSTRAP_MAX_PATCH_ID)
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
  b->sweep_due_ns = 0;
  b->peers_epoch = (uint32_t)cfg->incarnation << 24;
  *out = b;
  return 0;
}

void quilt_bootstrap_del(quilt_bootstrap *b) {
  if (!b)
    return;
  for (uint32_t i = 0; i < b->npatch_slots; i++)
    free(b->patches[i].members);
  free(b->patches);
  free(b->hosts);
  free(b->free_hosts);
  quilt_map_free(&b->host_index);
  free(b);
}
