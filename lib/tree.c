/*
 * tree.c -- the `tree` patch protocol: the patch's members form one OMNI
 * tree (Banerjee et al., INFOCOM 2003; lib/omni.h), computed by the
 * bootstrap server and handed to each member as a view (TREE: parent,
 * grandparent, children).
 *
 * Many sources, one shared tree.  A message from any member floods the
 * tree: its origin sends it to its parent and children, and every member
 * that accepts it new sends it on to its tree neighbours except the one it
 * came from.  One tree per source would give each source a tree rooted at
 * itself, but a group of n publishers would cost every member n views and
 * the server n trees to keep; the shared tree costs one view per member and
 * the server picks its root at the 1-median of the members, so paths stay
 * short for every source (docs/design.md, "Trees").
 *
 * Repair is hop by hop: every member that accepts a message announces it
 * to its neighbours (a SESSION burst), so a neighbour that lost the copy
 * NACKs the member that announced it and gets it from its retention
 * buffer, at once and to itself alone.
 *
 * Failure: a member pings its parent every TREE_PING_NS; after
 * TREE_DEAD_NS without an answer the parent is taken as failed and the
 * member, now an orphan, asks the server for a new place (ORPHAN, repeated
 * until a view names another parent).  The server re-attaches the failed
 * node's children grandparent first, then to the nearest node with a free
 * slot (quilt_omni_remove), and sends the new views.  A member that gets a
 * new neighbour tells it what it holds (quilt__node_announce_all_to), so
 * the orphan NACKs what it missed from its new parent's retention buffer,
 * and passes it on down its own subtree.
 */
#include <stdlib.h>
#include <string.h>

#include "node.h"
#include "proto.h"

#define NS_PER_MS 1000000ull
/* Keepalive with the parent: a PING every 100 ms; once two in a row go
 * unanswered, every 25 ms; the parent is declared failed after 500 ms
 * without a PONG and at least TREE_DEAD_PINGS unanswered PINGs.  At 5%
 * loss on each way a PING is unanswered with probability 0.0975, so a false
 * alarm needs 0.0975^12, about 10^-12, per episode: a parent alive is not
 * taken out of the tree for a few lost datagrams (each removal moves a
 * whole subtree). */
#define TREE_PING_NS (100 * NS_PER_MS)
#define TREE_PING_FAST_NS (25 * NS_PER_MS)
#define TREE_DEAD_NS (500 * NS_PER_MS)
#define TREE_DEAD_PINGS 12
/* Messages passed up to the parent and not yet covered by its answer to a
 * later PING, kept to be sent again to a new parent (oldest dropped past
 * this; those are left to the announcements). */
#define TREE_RECENT_MAX 4096
/* After a new parent, first contacts with origins recover their whole
 * retained history for this long (the announcements of the new
 * neighbours come within it). */
#define TREE_CATCHUP_NS (2000 * NS_PER_MS)
/* An orphan repeats its ORPHAN this often until it has a new parent. */
#define TREE_ORPHAN_RETRY_NS (250 * NS_PER_MS)

typedef struct tree_state {
  quilt_msg_tree view;
  int has_view;
  uint64_t server; /* node id of the server that sent the view */
  uint64_t last_pong_ns; /* last sign of life of the parent */
  uint32_t unanswered;   /* PINGs sent since then */
  uint64_t ping_due_ns;
  int orphan;             /* the parent is silent */
  uint64_t orphan_parent; /* ...this one */
  uint64_t orphan_due_ns; /* next ORPHAN */
  /* This host's own messages published while it had no view or no live
   * parent: [unsent_first, unsent_last] went to no one (or only down), and
   * are sent from the retention buffer to the neighbours of the next view.
   * (Announcing them would not do: a receiver that first hears of an
   * origin at seq s recovers only s-64..s, the late joiner's rule.) */
  uint64_t unsent_first, unsent_last;
  /* Other origins' messages sent up to the parent since the PING its last
   * PONG answered (a ring): had the parent died with them, the rest of the
   * tree would only hear of them by announcement, and a member that first
   * hears of an origin that way recovers only its last 64. */
  struct recent {
    uint64_t origin, seq, at_ns;
  } *recent;
  uint32_t recent_head, nrecent, cap_recent;
  uint64_t own_seq;   /* this host's last message sent */
  uint64_t own_acked; /* own_seq when the parent last answered a PING:
                         what came after may have died with the parent */
} tree_state;

static int tree_start(quilt_node *n, void **state,
                      const quilt_msg_patch_info *pi, uint64_t now) {
  (void)n;
  (void)pi;
  tree_state *t = calloc(1, sizeof *t);
  if (!t)
    return -1;
  t->ping_due_ns = UINT64_MAX;
  t->orphan_due_ns = UINT64_MAX;
  t->last_pong_ns = now;
  *state = t;
  return 0;
}

static void tree_stop(quilt_node *n, void *state) {
  (void)n;
  tree_state *t = state;
  free(t->recent);
  free(t);
}

static void recent_add(tree_state *t, uint64_t origin, uint64_t seq,
                       uint64_t now) {
  if (t->nrecent == t->cap_recent && t->cap_recent < TREE_RECENT_MAX) {
    /* Grow (unrolled into the new array, oldest first). */
    uint32_t cap = t->cap_recent ? t->cap_recent * 2 : 64;
    struct recent *a = malloc(cap * sizeof *a);
    if (a) {
      for (uint32_t i = 0; i < t->nrecent; i++)
        a[i] = t->recent[(t->recent_head + i) % t->cap_recent];
      free(t->recent);
      t->recent = a;
      t->recent_head = 0;
      t->cap_recent = cap;
    }
  }
  if (t->cap_recent == 0)
    return; /* out of memory: the announcements remain */
  uint32_t at = (t->recent_head + t->nrecent) % t->cap_recent;
  if (t->nrecent == t->cap_recent)
    t->recent_head = (t->recent_head + 1) % t->cap_recent; /* oldest out */
  else
    t->nrecent++;
  t->recent[at].origin = origin;
  t->recent[at].seq = seq;
  t->recent[at].at_ns = now;
}

/* The parent answered a PING sent at `sent`: what went up before it got
 * there. */
static void recent_ack(tree_state *t, uint64_t sent) {
  while (t->nrecent > 0 && t->recent[t->recent_head].at_ns < sent) {
    t->recent_head = (t->recent_head + 1) % t->cap_recent;
    t->nrecent--;
  }
}

static int same_node(const quilt_wire_node *a, const quilt_wire_node *b) {
  return a->id == b->id && quilt_addr_eq(&a->addr, &b->addr);
}

/* Sends dg to the tree neighbours except `except` (NULL: none). */
static void flood(quilt_node *n, tree_state *t, const uint8_t *dg,
                  size_t len, const quilt_addr *except) {
  if (!t->has_view)
    return;
  const quilt_msg_tree *v = &t->view;
  if (v->parent.id != 0 && !t->orphan &&
      !(except && quilt_addr_eq(except, &v->parent.addr)))
    quilt__node_send(n, &v->parent.addr, dg, len);
  for (unsigned i = 0; i < v->nchildren; i++)
    if (!(except && quilt_addr_eq(except, &v->children[i].addr)))
      quilt__node_send(n, &v->children[i].addr, dg, len);
}

static void note_unsent(tree_state *t, uint64_t first, uint64_t last) {
  if (first == 0 || last < first)
    return;
  if (t->unsent_first == 0 || first < t->unsent_first)
    t->unsent_first = first;
  if (last > t->unsent_last)
    t->unsent_last = last;
}

static void tree_send_all(quilt_node *n, void *state, const uint8_t *dg,
                          size_t len, uint64_t now) {
  (void)now;
  tree_state *t = state;
  quilt_msg m;
  if (len >= QUILT_WIRE_DATA_OVERHEAD && dg[3] == QUILT_MSG_DATA &&
      quilt_wire_decode(&m, dg, len) == 0 &&
      m.u.data.origin == quilt__node_id(n)) {
    /* One of this host's own messages: remember how far they go, and
     * which went to no one (no view yet, or a silent parent). */
    if (m.u.data.seq > t->own_seq)
      t->own_seq = m.u.data.seq;
    if (!t->has_view || (t->orphan && t->view.parent.id != 0))
      note_unsent(t, m.u.data.seq, m.u.data.seq);
  }
  flood(n, state, dg, len, NULL);
}

/* Sends the own messages that went to no one to the parent and children
 * of a new view (those that already have them drop the copies). */
/* Sends the messages of other origins that went up to a parent that then
 * fell silent to the new parent. */
static void send_recent(quilt_node *n, tree_state *t, uint64_t now) {
  if (t->orphan || t->view.parent.id == 0 || t->nrecent == 0)
    return;
  for (uint32_t i = 0; i < t->nrecent; i++) {
    const struct recent *r = &t->recent[(t->recent_head + i) % t->cap_recent];
    quilt__node_resend(n, r->origin, r->seq, &t->view.parent.addr, NULL, 0,
                       now);
  }
  t->nrecent = 0;
}

static void send_unsent(quilt_node *n, tree_state *t, uint64_t now) {
  if (t->unsent_first == 0 || t->orphan)
    return;
  for (uint64_t s = t->unsent_first; s <= t->unsent_last; s++)
    quilt__node_resend_own(n, s, t->view.parent.id != 0 ? &t->view.parent.addr
                                                        : NULL,
                           t->view.children, t->view.nchildren, now);
  t->unsent_first = t->unsent_last = 0;
}

static void tree_on_data(quilt_node *n, void *state, const quilt_addr *from,
                         const quilt_msg_data *d, const uint8_t *dg,
                         size_t len, uint64_t now) {
  tree_state *t = state;
  /* Kept for a new parent: what went up (or, while the parent is silent,
   * should have). */
  if (t->has_view && t->view.parent.id != 0 &&
      !(from && quilt_addr_eq(from, &t->view.parent.addr)))
    recent_add(t, d->origin, d->seq, now);
  flood(n, state, dg, len, from);
  quilt__node_announce(n, d->origin, now);
}

/* A NACK goes to the neighbour that sent or announced the data; without
 * one, to the parent (which got everything this member should have). */
static void tree_send_nack(quilt_node *n, void *state, uint64_t origin,
                           const quilt_addr *holder, const uint8_t *dg,
                           size_t len, uint64_t now) {
  (void)origin;
  (void)now;
  tree_state *t = state;
  if (holder)
    quilt__node_send(n, holder, dg, len);
  else if (t->has_view && t->view.parent.id != 0)
    quilt__node_send(n, &t->view.parent.addr, dg, len);
}

static void tree_repair_policy(quilt_node *n, void *state,
                               const quilt_addr *from, uint64_t *delay_ns,
                               int *to_all) {
  (void)n;
  (void)state;
  (void)from;
  *delay_ns = 0;
  *to_all = 0;
}

static int in_view(const quilt_msg_tree *v, const quilt_wire_node *x) {
  if (v->parent.id != 0 && same_node(&v->parent, x))
    return 1;
  for (unsigned i = 0; i < v->nchildren; i++)
    if (same_node(&v->children[i], x))
      return 1;
  return 0;
}

static void handle_view(quilt_node *n, tree_state *t, uint64_t server,
                        const quilt_msg_tree *v, uint64_t now) {
  if (t->has_view && t->server == server && v->epoch < t->view.epoch)
    return; /* stale */
  quilt_msg_tree old = t->view;
  int had = t->has_view;
  t->view = *v;
  t->has_view = 1;
  t->server = server;
  int parent_changed = had && (old.parent.id != v->parent.id ||
                               !quilt_addr_eq(&old.parent.addr,
                                              &v->parent.addr));
  if (!had || parent_changed) {
    if (t->orphan && v->parent.id != t->orphan_parent) {
      t->orphan = 0;
      t->orphan_due_ns = UINT64_MAX;
      quilt__node_reattached(n, now - t->last_pong_ns);
    }
    t->last_pong_ns = now;
    t->unanswered = 0;
    t->ping_due_ns = v->parent.id != 0 ? now : UINT64_MAX;
  }
  if (v->parent.id == 0) {
    t->orphan = 0; /* the root has no parent to miss */
    t->orphan_due_ns = UINT64_MAX;
    t->ping_due_ns = UINT64_MAX;
  }
  /* Own messages that went nowhere go first: a neighbour that first hears
   * of this origin from an announcement of seq s would take s-64 as the
   * start of the stream and refuse the older ones. */
  if (parent_changed) {
    /* What this member missed while cut off is announced by its new
     * neighbours; an origin it first hears of then is recovered whole. */
    quilt__node_catch_up(n, now + TREE_CATCHUP_NS);
    /* Whatever went to the old parent after its last answer may have died
     * with it (the server can move a member before it notices). */
    note_unsent(t, t->own_acked + 1, t->own_seq);
    t->own_acked = t->own_seq;
  }
  send_unsent(n, t, now);
  if (parent_changed)
    send_recent(n, t, now);
  /* New neighbours learn what this member holds, and tell what they do:
   * at once, then in a SESSION burst to all neighbours (a lost
   * announcement would leave a neighbour unaware of messages that no
   * later traffic mentions). */
  int fresh = 0;
  if (v->parent.id != 0 && (!had || !in_view(&old, &v->parent))) {
    quilt__node_announce_all_to(n, &v->parent.addr);
    fresh = 1;
  }
  for (unsigned i = 0; i < v->nchildren; i++)
    if (!had || !in_view(&old, &v->children[i])) {
      quilt__node_announce_all_to(n, &v->children[i].addr);
      fresh = 1;
    }
  if (fresh)
    quilt__node_announce_all(n, now);
}

static void tree_handle(quilt_node *n, void *state, const quilt_addr *from,
                        const quilt_msg *m, uint64_t now) {
  tree_state *t = state;
  switch (m->hdr.type) {
  case QUILT_MSG_TREE:
    handle_view(n, t, m->hdr.sender, &m->u.tree, now);
    break;
  case QUILT_MSG_PONG:
    if (t->has_view && t->view.parent.id == m->hdr.sender && from &&
        quilt_addr_eq(from, &t->view.parent.addr) && !t->orphan) {
      t->last_pong_ns = now;
      t->unanswered = 0;
      t->own_acked = t->own_seq;
      recent_ack(t, m->u.ping.token);
    }
    break;
  default:
    break;
  }
}

static uint64_t tree_expiry(const void *state) {
  const tree_state *t = state;
  return t->ping_due_ns < t->orphan_due_ns ? t->ping_due_ns
                                           : t->orphan_due_ns;
}

/* A message of `type` from this host, header filled, body zero. */
static void msg_start(quilt_node *n, quilt_msg *m, unsigned type) {
  memset(m, 0, sizeof *m);
  m->hdr.version = QUILT_WIRE_VERSION;
  m->hdr.type = (uint8_t)type;
  m->hdr.sender = quilt__node_id(n);
  m->hdr.group = quilt__node_config(n)->group;
}

/* Encodes m (a small control message) and sends it to `to`. */
static void msg_send(quilt_node *n, const quilt_msg *m,
                     const quilt_addr *to) {
  uint8_t buf[64];
  int len = quilt_wire_encode(m, buf, sizeof buf);
  if (len > 0)
    quilt__node_send(n, to, buf, (size_t)len);
}

static void send_orphan(quilt_node *n, tree_state *t, uint64_t now) {
  quilt_msg m;
  msg_start(n, &m, QUILT_MSG_ORPHAN);
  m.u.orphan.tree = t->view.tree;
  m.u.orphan.epoch = t->view.epoch;
  m.u.orphan.parent = t->orphan_parent;
  msg_send(n, &m, quilt__node_bootstrap_addr(n));
  t->orphan_due_ns = now + TREE_ORPHAN_RETRY_NS;
}

static void tree_handle_expiry(quilt_node *n, void *state, uint64_t now) {
  tree_state *t = state;
  if (t->orphan_due_ns <= now)
    send_orphan(n, t, now);
  if (t->ping_due_ns > now)
    return;
  t->ping_due_ns =
      now + (t->unanswered >= 2 ? TREE_PING_FAST_NS : TREE_PING_NS);
  if (!t->has_view || t->view.parent.id == 0)
    return;
  if (!t->orphan && now - t->last_pong_ns >= TREE_DEAD_NS &&
      t->unanswered >= TREE_DEAD_PINGS) {
    t->orphan = 1;
    t->orphan_parent = t->view.parent.id;
    note_unsent(t, t->own_acked + 1, t->own_seq);
    quilt__node_orphaned(n);
    send_orphan(n, t, now);
    return;
  }
  if (t->orphan)
    return;
  quilt_msg m;
  msg_start(n, &m, QUILT_MSG_PING);
  m.u.ping.token = now;
  msg_send(n, &m, &t->view.parent.addr);
  t->unanswered++;
}

static void tree_view(const void *state, uint64_t *parent, uint32_t *epoch,
                      int *orphan) {
  const tree_state *t = state;
  *parent = t->has_view ? t->view.parent.id : 0;
  *epoch = t->has_view ? t->view.epoch : 0;
  *orphan = t->orphan;
}

const quilt_proto_ops quilt_proto_tree = {
    .name = "tree",
    .start = tree_start,
    .stop = tree_stop,
    .send_all = tree_send_all,
    .send_nack = tree_send_nack,
    .repair_policy = tree_repair_policy,
    .nack_suppression = 0,
    .multicast = 0,
    .needs_members = 0,
    .on_data = tree_on_data,
    .handle = tree_handle,
    .tree_view = tree_view,
    .expiry = tree_expiry,
    .handle_expiry = tree_handle_expiry,
};
