/*
 * mesh.c -- the `mesh` patch protocol: a DONet core (lib/donet.h) per
 * member, glued to the host core (docs/mesh.md says why each choice).
 *
 *   - Segments are DATA messages of one origin (the stream); seq is the
 *     segment id.  The core holds no data: when a partner asks for a
 *     segment, it is sent from the node's retention buffer.
 *   - What arrives goes through the node's delivery layer first (exactly
 *     once, in order); a new segment is then given to the core
 *     (on_data).  The host core's send_all, for a message published here or
 *     bridged in from the overlay by a representative, means "this segment
 *     is now held here": a local source.  DONet pulls (DESIGN.md 3), with
 *     two pushes at the stream's entry points: a publisher that is not its
 *     patch's primary sends each segment to the primary, which bridges it;
 *     and an entry point sends what it injects to a few partners at once
 *     (donet.h, push_max).  Everything else is pulled.
 *   - Repair is DONet's: a missing segment is pulled again from another
 *     partner before its deadline, so NACKs are not sent inside the patch
 *     and SESSION bursts are not sent to it (buffer maps say what is held).
 *     A representative still repairs across the overlay as for any patch
 *     (the host core sends those NACKs itself).
 *   - Delivery holds at most QUILT_DELIVERY_REORDER_MAX messages behind a
 *     gap, and a message beyond that makes it give up the oldest gap.  A
 *     mesh fetches out of order (rarest first), so the core is told never to
 *     ask for a segment that far past the oldest one it still wants
 *     (fetch_span); before the first segment, QUILT_DELIVERY_CATCHUP, since
 *     delivery's first contact at seq s starts at s - CATCHUP.  Nothing that
 *     arrives early within the window is then dropped.
 *   - Initial contacts: the patch's representatives (PATCH_INFO), and the
 *     static members when a driver gave some; gossip and the referrals in
 *     partner replies do the rest (the server's member lists stop at 256
 *     hosts, so a mesh does not ask for them).
 */
#include "mesh.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "delivery.h"
#include "proto.h"
#include "quilt.h"

#define NS_PER_MS 1000000ull
#define NS_PER_S 1000000000ull
/* While short of partners, the representatives are offered to the core
 * again this often (their mCache entries may have expired), every second
 * while it has none. */
#define MESH_RECONTACT_NS (10 * NS_PER_S)
/* Static members offered as contacts at start, at most. */
#define MESH_MEMBER_CONTACTS 16

typedef struct mesh_state {
  quilt_node *n;
  quilt_donet *d;
  quilt_mesh_config cfg;
  uint32_t window; /* segments */
  uint64_t origin; /* the stream, 0 until the first segment */
  int spanned;     /* fetch span widened after the first segment */
  uint64_t recontact_ns;
  uint64_t now;        /* time of the entry point running (for the callbacks) */
  quilt_mesh_stats st; /* donet, origin and partners filled on demand */
} mesh_state;

void quilt_mesh_config_default(quilt_mesh_config *c) {
  memset(c, 0, sizeof *c);
  c->segment_period_ns = 20 * NS_PER_MS;
  c->segment_bytes = 1000;
  c->window_ns = 10 * NS_PER_S;
  c->playback_delay_ns = 10 * NS_PER_S;
  c->partners = 3;
  c->partners_max = 6;
  c->bm_period_ns = NS_PER_S;
  c->sched_period_ns = NS_PER_S;
}

static uint64_t window_segments(const quilt_mesh_config *c) {
  return (c->window_ns + c->segment_period_ns - 1) / c->segment_period_ns;
}

static int config_ok(const quilt_mesh_config *c) {
  if (c->segment_period_ns == 0 || c->segment_bytes == 0 ||
      c->segment_bytes > QUILT_WIRE_MAX_PAYLOAD || c->window_ns == 0 ||
      c->partners == 0 || c->partners > c->partners_max ||
      c->partners_max > QUILT_DONET_MAX_PARTNERS || c->bm_period_ns == 0 ||
      c->sched_period_ns == 0)
    return 0;
  uint64_t w = window_segments(c);
  return w >= 1 && w <= QUILT_DONET_MAX_WINDOW;
}

int quilt_mesh_configure(quilt_node *n, const quilt_mesh_config *c) {
  if (!n || !c || !config_ok(c))
    return QUILT_ERR_INVAL;
  return quilt__node_set_proto_config(n, QUILT_PROTO_MESH, c, sizeof *c);
}

/* ---- the core's callbacks ---- */

static void cb_send(void *ctx, uint64_t to, const quilt_addr *addr,
                    uint8_t type, const uint8_t *body, size_t len) {
  mesh_state *ms = ctx;
  (void)to;
  const quilt_node_config *nc = quilt__node_config(ms->n);
  quilt_msg m;
  memset(&m, 0, sizeof m);
  m.hdr.version = QUILT_WIRE_VERSION;
  m.hdr.type = type;
  m.hdr.sender = nc->id;
  m.hdr.group = nc->group;
  /* The core hands over an encoded body; the one encoder frames it (a
   * decode of a few dozen bytes, a few times a second). */
  if (quilt_donet_decode(type, body, len, &m.u.donet) != 0) {
    assert(0 && "the core sent a body it cannot decode");
    return;
  }
  uint8_t buf[QUILT_WIRE_MAX_DATAGRAM];
  int n = quilt_wire_encode(&m, buf, sizeof buf);
  assert(n > 0);
  if (n > 0)
    quilt__node_send(ms->n, addr, buf, (size_t)n);
}

/* Supplying = sending the segment's DATA from the retention buffer. */
static void cb_send_segment(void *ctx, uint64_t to, const quilt_addr *addr,
                            uint32_t seg) {
  mesh_state *ms = ctx;
  (void)to;
  const quilt_node_config *nc = quilt__node_config(ms->n);
  quilt_msg m;
  memset(&m, 0, sizeof m);
  m.hdr.version = QUILT_WIRE_VERSION;
  m.hdr.type = QUILT_MSG_DATA;
  m.hdr.sender = nc->id;
  m.hdr.group = nc->group;
  if (ms->origin == 0 ||
      !quilt__node_lookup(ms->n, ms->origin, seg, ms->now, &m.u.data)) {
    ms->st.supply_missing++;
    return;
  }
  m.u.data.flags = 0; /* plain data: a receiving primary bridges it */
  uint8_t buf[QUILT_WIRE_MAX_DATAGRAM];
  int n = quilt_wire_encode(&m, buf, sizeof buf);
  if (n <= 0) {
    ms->st.supply_missing++;
    return;
  }
  quilt__node_send(ms->n, addr, buf, (size_t)n);
  ms->st.supplied++;
}

/* ---- helpers ---- */

/* Whether d is a segment of the stream this mesh carries (the first origin
 * seen, whose segments are numbered 1..2^32-1). */
static int stream_ok(mesh_state *ms, const quilt_msg_data *d) {
  if (d->seq == 0 || d->seq > UINT32_MAX) {
    ms->st.bad_seq++;
    return 0;
  }
  if (ms->origin == 0)
    ms->origin = d->origin;
  if (d->origin != ms->origin) {
    ms->st.other_streams++;
    return 0;
  }
  return 1;
}

static void note_segment(mesh_state *ms, uint64_t from, const quilt_msg_data *d,
                         uint64_t now) {
  if (quilt_donet_segment_received(ms->d, from, (uint32_t)d->seq, d->ts_ns,
                                   now) == 1 &&
      from == 0)
    ms->st.local_segments++;
  if (!ms->spanned) {
    /* Delivery now knows the origin: it holds up to REORDER_MAX behind its
     * oldest gap. */
    ms->spanned = 1;
    quilt_donet_set_fetch_span(ms->d, QUILT_DELIVERY_REORDER_MAX);
  }
}

static uint64_t partner_at(const mesh_state *ms, const quilt_addr *addr) {
  if (!addr)
    return 0;
  quilt_donet_partner_info p[QUILT_DONET_MAX_PARTNERS];
  size_t np = quilt_donet_partners(ms->d, p, QUILT_DONET_MAX_PARTNERS);
  for (size_t i = 0; i < np; i++)
    if (quilt_addr_eq(&p[i].addr, addr))
      return p[i].id;
  return 0;
}

/* The patch's current representatives (the first host of a patch starts
 * alone; the others come with later PATCH_INFOs, which do not restart the
 * protocol).  Their NAT class is not in PATCH_INFO: the server ranks public
 * hosts first, so they are taken as public (a wrong guess costs a partner
 * request that times out). */
static void add_contacts(mesh_state *ms, uint64_t now) {
  uint64_t self = quilt__node_id(ms->n);
  const quilt_msg_patch_info *pi = quilt__node_patch_info(ms->n);
  for (uint32_t i = 0; pi && i < pi->nreps && i < QUILT_WIRE_MAX_REPS; i++)
    if (pi->reps[i].id != self)
      (void)quilt_donet_add_contact(ms->d, pi->reps[i].id, &pi->reps[i].addr,
                                    QUILT_DONET_NAT_PUBLIC, now);
  ms->recontact_ns =
      now + (quilt_donet_partner_count(ms->d) ? MESH_RECONTACT_NS : NS_PER_S);
}

/* ---- the protocol ---- */

static int mesh_start(quilt_node *n, void **state,
                      const quilt_msg_patch_info *pi, uint64_t now) {
  mesh_state *ms = calloc(1, sizeof *ms);
  if (!ms)
    return QUILT_ERR_NOMEM;
  ms->n = n;
  size_t len;
  const void *given = quilt__node_proto_config(n, QUILT_PROTO_MESH, &len);
  if (given && len == sizeof ms->cfg)
    memcpy(&ms->cfg, given, sizeof ms->cfg);
  else
    quilt_mesh_config_default(&ms->cfg);
  assert(config_ok(&ms->cfg));
  ms->window = (uint32_t)window_segments(&ms->cfg);

  const quilt_node_config *nc = quilt__node_config(n);
  quilt_donet_config dc;
  quilt_donet_config_default(&dc);
  dc.id = nc->id;
  dc.addr = nc->addr;
  dc.nat = (uint8_t)quilt_donet_nat_from_euid((quilt_nat)nc->euid.nat);
  dc.uplink_kbps = nc->euid.bw_kbps;
  dc.seed = nc->seed ^ 0x6D657368ull; /* "mesh": not the node's stream */
  dc.partners = ms->cfg.partners;
  dc.partners_max = ms->cfg.partners_max;
  dc.window_segments = ms->window;
  /* What moving a segment costs: its whole datagram. */
  dc.segment_bytes = ms->cfg.segment_bytes + QUILT_WIRE_DATA_OVERHEAD;
  dc.segment_period_ns = ms->cfg.segment_period_ns;
  dc.playback_delay_ns = ms->cfg.playback_delay_ns;
  dc.bm_period_ns = ms->cfg.bm_period_ns;
  dc.sched_period_ns = ms->cfg.sched_period_ns;
  dc.sched_horizon_ns = ms->cfg.sched_period_ns;
  /* Room for four scheduling rounds of new segments in flight. */
  uint64_t per_round = ms->cfg.sched_period_ns / ms->cfg.segment_period_ns + 1;
  uint64_t rmax = 4 * per_round < 64 ? 64 : 4 * per_round;
  dc.requests_max = rmax > ms->window ? ms->window : (uint32_t)rmax;
  dc.fetch_span = QUILT_DELIVERY_CATCHUP;
  dc.sched_on_bm = 1;
  /* No faster maps at the entry points (donet.h, local_bm_period_ns): with
   * the push below, they bought 1% of latency for 1% more control. */
  dc.local_bm_period_ns = 0;
  /* An entry point also pushes what it injects to a few partners: as many
   * as a quarter of its uplink carries at the stream's rate (a
   * representative relays the overlay with half of it; the rest serves
   * its patch's pulls).  Ten Mbit/s and 400 kbit/s push to 5. */
  uint64_t stream_bps = (uint64_t)dc.segment_bytes * 8u * 1000000000u /
                        dc.segment_period_ns;
  uint64_t push = stream_bps ? (uint64_t)nc->euid.bw_kbps * 1000u /
                                   (4u * stream_bps)
                             : 0;
  dc.push_max = push > ms->cfg.partners_max ? ms->cfg.partners_max
                                            : (uint32_t)push;
  dc.start_oldest = 1;
  /* Three buffer-map periods without a new segment: starving. */
  dc.starve_ns = 3 * ms->cfg.bm_period_ns;
  int rc = quilt_donet_new(
      &ms->d, &dc,
      &(quilt_donet_callbacks){cb_send, cb_send_segment, NULL, NULL}, ms, now);
  if (rc != 0) {
    free(ms);
    return rc;
  }
  (void)pi; /* the node's copy is read as it changes (add_contacts) */
  ms->recontact_ns = now; /* PATCH_INFO is stored after start returns */
  const quilt_wire_node *members;
  size_t nm = quilt__node_members(n, &members);
  for (size_t k = 0; k < nm && k < MESH_MEMBER_CONTACTS; k++) {
    size_t i = nm <= MESH_MEMBER_CONTACTS
                   ? k
                   : (size_t)quilt__node_random(n, 0, nm - 1);
    /* Their class is unknown: as a cone NAT, so that a public host leaves
     * them to come to it and a NAT'd host may still try. */
    (void)quilt_donet_add_contact(ms->d, members[i].id, &members[i].addr,
                                  QUILT_DONET_NAT_CONE, now);
  }
  *state = ms;
  return 0;
}

/* No goodbye: a host that stops may be crashing (the simulator deletes a
 * crashed node), and its partners notice the silence within
 * partner_timeout anyway. */
static void mesh_stop(quilt_node *n, void *state) {
  (void)n;
  mesh_state *ms = state;
  if (!ms)
    return;
  quilt_donet_del(ms->d);
  free(ms);
}

/* A segment published here, or bridged in by this representative, becomes
 * one the core advertises.  One push besides: a segment published here
 * goes at once to the patch's primary, which bridges it to the other
 * patches; pulled like any other, it would reach the primary a map period
 * later, and every other patch that much later too.  (In a mesh of one
 * patch the primary is one more early holder; it changes nothing else.) */
static void mesh_send_all(quilt_node *n, void *state, const uint8_t *dg,
                          size_t len, uint64_t now) {
  mesh_state *ms = state;
  ms->now = now;
  quilt_msg m;
  if (quilt_wire_decode(&m, dg, len) != 0)
    return;
  if (m.hdr.type == QUILT_MSG_SESSION) {
    ms->st.sessions_dropped++;
    return;
  }
  if (m.hdr.type != QUILT_MSG_DATA || !stream_ok(ms, &m.u.data))
    return;
  if (!quilt_donet_has_segment(ms->d, (uint32_t)m.u.data.seq))
    note_segment(ms, 0, &m.u.data, now);
  const quilt_addr *primary = quilt__node_primary_addr(n); /* NULL: us */
  if (m.u.data.origin == quilt__node_id(n) && primary) {
    quilt__node_send(n, primary, dg, len);
    ms->st.pushed++;
  }
}

static void mesh_on_data(quilt_node *n, void *state, const quilt_addr *from,
                         const quilt_msg_data *d, const uint8_t *dg, size_t len,
                         uint64_t now) {
  (void)n;
  (void)dg;
  (void)len;
  mesh_state *ms = state;
  ms->now = now;
  if (!stream_ok(ms, d))
    return;
  note_segment(ms, partner_at(ms, from), d, now);
}

/* DONet repairs by pulling: a segment not received is asked of another
 * partner while its deadline allows. */
static void mesh_send_nack(quilt_node *n, void *state, uint64_t origin,
                           const quilt_addr *holder, const uint8_t *dg,
                           size_t len, uint64_t now) {
  (void)n;
  (void)origin;
  (void)holder;
  (void)dg;
  (void)len;
  (void)now;
  ((mesh_state *)state)->st.nacks_dropped++;
}

/* A NACK that does reach a member (from outside the patch) is answered at
 * once, to the requester alone. */
static void mesh_repair_policy(quilt_node *n, void *state,
                               const quilt_addr *from, uint64_t *delay_ns,
                               int *to_all) {
  (void)n;
  (void)state;
  (void)from;
  *delay_ns = 0;
  *to_all = 0;
}

static void mesh_handle(quilt_node *n, void *state, const quilt_addr *from,
                        const quilt_msg *m, uint64_t now) {
  (void)n;
  mesh_state *ms = state;
  if (!QUILT_MSG_IS_MESH(m->hdr.type) || !from)
    return;
  ms->now = now;
  (void)quilt_donet_handle(ms->d, m->hdr.sender, from, &m->u.donet, now);
}

static uint64_t mesh_expiry(const void *state) {
  const mesh_state *ms = state;
  uint64_t t = quilt_donet_expiry(ms->d);
  return ms->recontact_ns < t ? ms->recontact_ns : t;
}

static void mesh_handle_expiry(quilt_node *n, void *state, uint64_t now) {
  (void)n;
  mesh_state *ms = state;
  ms->now = now;
  if (ms->recontact_ns <= now) {
    if (quilt_donet_partner_count(ms->d) < ms->cfg.partners)
      add_contacts(ms, now);
    else
      ms->recontact_ns = now + MESH_RECONTACT_NS;
  }
  if (quilt_donet_expiry(ms->d) <= now)
    quilt_donet_handle_expiry(ms->d, now);
}

int quilt_mesh_stats_get(const quilt_node *n, quilt_mesh_stats *out) {
  memset(out, 0, sizeof *out);
  const mesh_state *ms = quilt__node_proto_state(n, QUILT_PROTO_MESH);
  if (!ms)
    return 0;
  *out = ms->st;
  quilt_donet_get_stats(ms->d, &out->donet);
  out->origin = ms->origin;
  out->partners = quilt_donet_partner_count(ms->d);
  return 1;
}

const quilt_proto_ops quilt_proto_mesh = {
    .name = "mesh",
    .start = mesh_start,
    .stop = mesh_stop,
    .send_all = mesh_send_all,
    .send_nack = mesh_send_nack,
    .repair_policy = mesh_repair_policy,
    .nack_suppression = 0,
    .multicast = 0,
    .needs_members = 0,
    .on_data = mesh_on_data,
    .handle = mesh_handle,
    .expiry = mesh_expiry,
    .handle_expiry = mesh_handle_expiry,
};

size_t quilt_mesh_partners(const quilt_node *n, quilt_donet_partner_info *out,
                           size_t max) {
  const mesh_state *ms = quilt__node_proto_state(n, QUILT_PROTO_MESH);
  return ms ? quilt_donet_partners(ms->d, out, max) : 0;
}
