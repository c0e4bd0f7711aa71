/*
 * wire.c -- encoder and decoder of Quilt datagrams (layout in docs/wire.md).
 *
 * Decoding reads through a cursor whose getters check every access against
 * the datagram: a read past the end returns zero and sets a sticky flag, so
 * a decoder reads a group of fields and then asks once whether they were all
 * there.  Values are checked only after that, so a short datagram is
 * reported as TRUNCATED rather than as a field out of range.
 *
 * Encoding validates the whole message first (the same rules the decoder
 * applies, so that anything we send a peer would accept), computes its exact
 * size, and only then writes: a refused call leaves out untouched.
 */
#include "wire.h"

#include <assert.h>
#include <string.h>

#include "quilt.h"

/* Sizes on the wire of the pieces of a body. */
#define WIRE_ADDR_LEN 6                   /* ip u32, port u16 */
#define WIRE_NODE_LEN (8 + WIRE_ADDR_LEN) /* id u64, addr */
#define WIRE_JOIN_LEN (WIRE_ADDR_LEN + QUILT_EUID_WIRE_LEN + 1)
#define WIRE_PATCH_INFO_FIXED (4 + 1 + 1 + 4 + WIRE_ADDR_LEN + 2 + 1)
#define WIRE_HEARTBEAT_FIXED                                                   \
  (WIRE_ADDR_LEN + QUILT_EUID_WIRE_LEN + 4 + 1 + 1 + 4 + 4 + 1)
#define WIRE_PING_LEN 8
#define WIRE_LANDMARKS_FIXED (4 + 1)
#define WIRE_TREE_FIXED (8 + 4 + 4 + WIRE_NODE_LEN + WIRE_NODE_LEN + 1 + 1)
#define WIRE_ORPHAN_LEN (4 + 4 + 8)
#define WIRE_PEERS_FIXED (4 + 2 + 2 + 1)
#define WIRE_PEER_LEN (4 + WIRE_NODE_LEN)
#define WIRE_DATA_FIXED (8 + 8 + 8 + 4 + 1 + 2)
#define WIRE_NACK_FIXED (8 + 1)
#define WIRE_NACK_RANGE_LEN (8 + 4)
#define WIRE_SESSION_FIXED 1
#define WIRE_SESSION_ENTRY_LEN (8 + 8)

_Static_assert(QUILT_WIRE_HEADER_LEN + WIRE_DATA_FIXED ==
                   QUILT_WIRE_DATA_OVERHEAD,
               "DATA overhead in wire.h disagrees with the layout");
_Static_assert(QUILT_WIRE_MAX_PAYLOAD <= UINT16_MAX,
               "DATA length field is 16 bits");
/* Every list at its limit still fits one datagram. */
_Static_assert(QUILT_WIRE_HEADER_LEN + WIRE_PATCH_INFO_FIXED +
                       QUILT_WIRE_MAX_REPS * WIRE_NODE_LEN <=
                   QUILT_WIRE_MAX_DATAGRAM,
               "PATCH_INFO at QUILT_WIRE_MAX_REPS does not fit");
_Static_assert(QUILT_WIRE_HEADER_LEN + WIRE_PEERS_FIXED +
                       QUILT_WIRE_MAX_PEERS * WIRE_PEER_LEN <=
                   QUILT_WIRE_MAX_DATAGRAM,
               "PEERS at QUILT_WIRE_MAX_PEERS does not fit");
_Static_assert(QUILT_WIRE_HEADER_LEN + WIRE_TREE_FIXED +
                       QUILT_WIRE_MAX_CHILDREN * WIRE_NODE_LEN <=
                   QUILT_WIRE_MAX_DATAGRAM,
               "a full TREE must fit a datagram");
_Static_assert(QUILT_WIRE_HEADER_LEN + WIRE_HEARTBEAT_FIXED +
                       QUILT_WIRE_MAX_LANDMARKS * 4 <=
                   QUILT_WIRE_MAX_DATAGRAM,
               "a full HEARTBEAT must fit a datagram");
_Static_assert(QUILT_WIRE_HEADER_LEN + WIRE_NACK_FIXED +
                       QUILT_WIRE_MAX_NACK * WIRE_NACK_RANGE_LEN <=
                   QUILT_WIRE_MAX_DATAGRAM,
               "NACK at QUILT_WIRE_MAX_NACK does not fit");
_Static_assert(QUILT_WIRE_HEADER_LEN + WIRE_SESSION_FIXED +
                       QUILT_WIRE_MAX_SESSION * WIRE_SESSION_ENTRY_LEN <=
                   QUILT_WIRE_MAX_DATAGRAM,
               "SESSION at QUILT_WIRE_MAX_SESSION does not fit");
/* The count fields are one byte. */
_Static_assert(QUILT_WIRE_MAX_REPS <= UINT8_MAX &&
                   QUILT_WIRE_MAX_PEERS <= UINT8_MAX &&
                   QUILT_WIRE_MAX_NACK <= UINT8_MAX &&
                   QUILT_WIRE_MAX_SESSION <= UINT8_MAX &&
                   QUILT_WIRE_MAX_LANDMARKS <= UINT8_MAX &&
                   QUILT_WIRE_MAX_CHILDREN <= UINT8_MAX,
               "a list limit exceeds its u8 count field");

/* ---- reading ---------------------------------------------------------- */

typedef struct wire_reader {
  const uint8_t *buf;
  size_t len;
  size_t pos;
  int short_read; /* a read ran past len; every later read fails too */
} wire_reader;

/* Returns a pointer to the next n bytes and advances, or NULL (and sets
 * short_read) when fewer than n remain. */
static const uint8_t *take(wire_reader *r, size_t n) {
  if (r->short_read || n > r->len - r->pos) {
    r->short_read = 1;
    return NULL;
  }
  const uint8_t *p = r->buf + r->pos;
  r->pos += n;
  assert(r->pos <= r->len);
  return p;
}

static uint8_t get_u8(wire_reader *r) {
  const uint8_t *p = take(r, 1);
  return p ? p[0] : 0;
}

static uint16_t get_u16(wire_reader *r) {
  const uint8_t *p = take(r, 2);
  if (!p)
    return 0;
  return (uint16_t)((unsigned)p[0] << 8 | p[1]);
}

static uint32_t get_u32(wire_reader *r) {
  const uint8_t *p = take(r, 4);
  if (!p)
    return 0;
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 |
         (uint32_t)p[3];
}

static uint64_t get_u64(wire_reader *r) {
  uint64_t hi = get_u32(r);
  uint64_t lo = get_u32(r);
  return hi << 32 | lo;
}

static quilt_addr get_addr(wire_reader *r) {
  quilt_addr a;
  a.ip = get_u32(r);
  a.port = get_u16(r);
  return a;
}

static quilt_wire_node get_node(wire_reader *r) {
  quilt_wire_node n;
  n.id = get_u64(r);
  n.addr = get_addr(r);
  return n;
}

/* The EUID's own rules (reserved bits, ranges) live in euid.c. */
static int get_euid(wire_reader *r, quilt_euid *e) {
  const uint8_t *p = take(r, QUILT_EUID_WIRE_LEN);
  if (!p)
    return QUILT_ERR_TRUNCATED;
  if (quilt_euid_decode(e, p, QUILT_EUID_WIRE_LEN) != 0)
    return QUILT_ERR_MALFORMED;
  return 0;
}

static int decode_join(wire_reader *r, quilt_msg_join *j) {
  j->addr = get_addr(r);
  int rc = get_euid(r, &j->euid);
  if (rc != 0)
    return rc;
  j->flags = get_u8(r);
  if (r->short_read)
    return QUILT_ERR_TRUNCATED;
  if (j->flags != 0)
    return QUILT_ERR_MALFORMED;
  return 0;
}

static int decode_patch_info(wire_reader *r, quilt_msg_patch_info *pi) {
  pi->patch_id = get_u32(r);
  pi->protocol = get_u8(r);
  pi->role = get_u8(r);
  pi->epoch = get_u32(r);
  pi->mcast = get_addr(r);
  pi->heartbeat_ms = get_u16(r);
  pi->nreps = get_u8(r);
  if (r->short_read)
    return QUILT_ERR_TRUNCATED;
  if (pi->role > QUILT_ROLE_BACKUP || pi->nreps > QUILT_WIRE_MAX_REPS)
    return QUILT_ERR_MALFORMED;
  for (unsigned i = 0; i < pi->nreps; i++)
    pi->reps[i] = get_node(r);
  return r->short_read ? QUILT_ERR_TRUNCATED : 0;
}

static int decode_heartbeat(wire_reader *r, quilt_msg_heartbeat *hb) {
  hb->addr = get_addr(r);
  int rc = get_euid(r, &hb->euid);
  if (rc != 0)
    return rc;
  hb->patch_id = get_u32(r);
  hb->role = get_u8(r);
  hb->flags = get_u8(r);
  hb->epoch = get_u32(r);
  hb->lm_epoch = get_u32(r);
  hb->nrtt = get_u8(r);
  if (r->short_read)
    return QUILT_ERR_TRUNCATED;
  if (hb->role > QUILT_ROLE_BACKUP || hb->nrtt > QUILT_WIRE_MAX_LANDMARKS ||
      (hb->flags & ~QUILT_HB_FLAGS_KNOWN) != 0)
    return QUILT_ERR_MALFORMED;
  for (unsigned i = 0; i < hb->nrtt; i++)
    hb->rtt_us[i] = get_u32(r);
  return r->short_read ? QUILT_ERR_TRUNCATED : 0;
}

static int decode_landmarks(wire_reader *r, quilt_msg_landmarks *l) {
  l->epoch = get_u32(r);
  l->count = get_u8(r);
  if (r->short_read)
    return QUILT_ERR_TRUNCATED;
  if (l->count > QUILT_WIRE_MAX_LANDMARKS)
    return QUILT_ERR_MALFORMED;
  for (unsigned i = 0; i < l->count; i++)
    l->nodes[i] = get_node(r);
  return r->short_read ? QUILT_ERR_TRUNCATED : 0;
}

/* A tree view names no node twice, and its children fit its degree. */
static int tree_ok(const quilt_msg_tree *t) {
  if (t->to == 0 || t->degree == 0 || t->nchildren > QUILT_WIRE_MAX_CHILDREN ||
      t->nchildren > t->degree)
    return 0;
  if (t->parent.id == 0 && t->grandparent.id != 0)
    return 0;
  for (unsigned i = 0; i < t->nchildren; i++) {
    uint64_t c = t->children[i].id;
    if (c == 0 || c == t->parent.id || c == t->grandparent.id)
      return 0;
    for (unsigned j = 0; j < i; j++)
      if (t->children[j].id == c)
        return 0;
  }
  return t->parent.id == 0 || t->parent.id != t->grandparent.id;
}

static int decode_tree(wire_reader *r, quilt_msg_tree *t) {
  t->to = get_u64(r);
  t->tree = get_u32(r);
  t->epoch = get_u32(r);
  t->parent = get_node(r);
  t->grandparent = get_node(r);
  t->degree = get_u8(r);
  t->nchildren = get_u8(r);
  if (r->short_read)
    return QUILT_ERR_TRUNCATED;
  if (t->nchildren > QUILT_WIRE_MAX_CHILDREN)
    return QUILT_ERR_MALFORMED;
  for (unsigned i = 0; i < t->nchildren; i++)
    t->children[i] = get_node(r);
  if (r->short_read)
    return QUILT_ERR_TRUNCATED;
  return tree_ok(t) ? 0 : QUILT_ERR_MALFORMED;
}

static int decode_orphan(wire_reader *r, quilt_msg_orphan *o) {
  o->tree = get_u32(r);
  o->epoch = get_u32(r);
  o->parent = get_u64(r);
  if (r->short_read)
    return QUILT_ERR_TRUNCATED;
  return o->parent != 0 ? 0 : QUILT_ERR_MALFORMED;
}

static int decode_peers(wire_reader *r, quilt_msg_peers *p) {
  p->epoch = get_u32(r);
  p->total = get_u16(r);
  p->offset = get_u16(r);
  p->count = get_u8(r);
  if (r->short_read)
    return QUILT_ERR_TRUNCATED;
  if (p->count > QUILT_WIRE_MAX_PEERS ||
      (uint32_t)p->offset + p->count > p->total)
    return QUILT_ERR_MALFORMED;
  for (unsigned i = 0; i < p->count; i++) {
    p->entries[i].patch_id = get_u32(r);
    p->entries[i].node = get_node(r);
  }
  return r->short_read ? QUILT_ERR_TRUNCATED : 0;
}

static int decode_data(wire_reader *r, quilt_msg_data *d) {
  d->origin = get_u64(r);
  d->seq = get_u64(r);
  d->ts_ns = get_u64(r);
  d->origin_patch = get_u32(r);
  d->flags = get_u8(r);
  d->len = get_u16(r);
  if (r->short_read)
    return QUILT_ERR_TRUNCATED;
  if (d->seq == 0 ||
      (d->flags & ~(QUILT_DATA_REPAIR | QUILT_DATA_FORWARDED)) != 0 ||
      d->len > QUILT_WIRE_MAX_PAYLOAD)
    return QUILT_ERR_MALFORMED;
  d->payload = take(r, d->len);
  return d->payload ? 0 : QUILT_ERR_TRUNCATED;
}

/* A range is [first, first + count): seq 0 does not exist, and the end must
 * be representable so that receivers can compute it without overflow. */
static int nack_range_ok(const quilt_nack_range *rg) {
  return rg->first >= 1 && rg->count >= 1 &&
         rg->first <= UINT64_MAX - rg->count;
}

static int decode_nack(wire_reader *r, quilt_msg_nack *n) {
  n->origin = get_u64(r);
  n->count = get_u8(r);
  if (r->short_read)
    return QUILT_ERR_TRUNCATED;
  if (n->count == 0 || n->count > QUILT_WIRE_MAX_NACK)
    return QUILT_ERR_MALFORMED;
  for (unsigned i = 0; i < n->count; i++) {
    n->ranges[i].first = get_u64(r);
    n->ranges[i].count = get_u32(r);
    if (r->short_read)
      return QUILT_ERR_TRUNCATED;
    if (!nack_range_ok(&n->ranges[i]))
      return QUILT_ERR_MALFORMED;
  }
  return 0;
}

static int decode_session(wire_reader *r, quilt_msg_session *s) {
  s->count = get_u8(r);
  if (r->short_read)
    return QUILT_ERR_TRUNCATED;
  if (s->count == 0 || s->count > QUILT_WIRE_MAX_SESSION)
    return QUILT_ERR_MALFORMED;
  for (unsigned i = 0; i < s->count; i++) {
    s->entries[i].origin = get_u64(r);
    s->entries[i].seq = get_u64(r);
  }
  return r->short_read ? QUILT_ERR_TRUNCATED : 0;
}

int quilt_wire_decode(quilt_msg *m, const uint8_t *buf, size_t len) {
  assert(m != NULL);
  assert(buf != NULL || len == 0);
  /* Magic and version first, even on a short datagram: a packet from a
   * newer Quilt is VERSION (worth a distinct counter), not MALFORMED. */
  if (len >= 2 && ((unsigned)buf[0] << 8 | buf[1]) != QUILT_WIRE_MAGIC)
    return QUILT_ERR_MALFORMED;
  if (len >= 3 && buf[2] != QUILT_WIRE_VERSION)
    return QUILT_ERR_VERSION;
  if (len < QUILT_WIRE_HEADER_LEN)
    return QUILT_ERR_TRUNCATED;
  /* No conforming sender produces more; refuse before looking further. */
  if (len > QUILT_WIRE_MAX_DATAGRAM)
    return QUILT_ERR_MALFORMED;

  memset(m, 0, sizeof *m);
  wire_reader r = {buf, len, 0, 0};
  (void)get_u16(&r); /* magic, checked above */
  m->hdr.version = get_u8(&r);
  m->hdr.type = get_u8(&r);
  m->hdr.sender = get_u64(&r);
  m->hdr.group = get_u32(&r);
  assert(!r.short_read && r.pos == QUILT_WIRE_HEADER_LEN);

  int rc;
  switch (m->hdr.type) {
  case QUILT_MSG_JOIN:
    rc = decode_join(&r, &m->u.join);
    break;
  case QUILT_MSG_PATCH_INFO:
    rc = decode_patch_info(&r, &m->u.patch_info);
    break;
  case QUILT_MSG_HEARTBEAT:
    rc = decode_heartbeat(&r, &m->u.heartbeat);
    break;
  case QUILT_MSG_LEAVE:
  case QUILT_MSG_REJOIN:
    rc = 0;
    break;
  case QUILT_MSG_PEERS:
  case QUILT_MSG_MEMBERS:
    rc = decode_peers(&r, &m->u.peers);
    break;
  case QUILT_MSG_DATA:
    rc = decode_data(&r, &m->u.data);
    break;
  case QUILT_MSG_NACK:
    rc = decode_nack(&r, &m->u.nack);
    break;
  case QUILT_MSG_SESSION:
    rc = decode_session(&r, &m->u.session);
    break;
  case QUILT_MSG_PING:
  case QUILT_MSG_PONG:
    m->u.ping.token = get_u64(&r);
    rc = r.short_read ? QUILT_ERR_TRUNCATED : 0;
    break;
  case QUILT_MSG_LANDMARKS:
    rc = decode_landmarks(&r, &m->u.landmarks);
    break;
  case QUILT_MSG_TREE:
    rc = decode_tree(&r, &m->u.tree);
    break;
  case QUILT_MSG_ORPHAN:
    rc = decode_orphan(&r, &m->u.orphan);
    break;
  default:
    if (!QUILT_MSG_IS_MESH(m->hdr.type))
      return QUILT_ERR_MALFORMED;
    /* The mesh's bodies: the same rules (every length and count checked,
     * one encoding, no trailing bytes), enforced by their own codec. */
    rc = quilt_donet_decode(m->hdr.type, buf + r.pos, r.len - r.pos,
                            &m->u.donet);
    if (rc == 0)
      r.pos = r.len;
    break;
  }
  if (rc != 0)
    return rc;
  /* One encoding per message: trailing bytes would let two different
   * datagrams decode to the same message. */
  if (r.pos != r.len)
    return QUILT_ERR_MALFORMED;
  return 0;
}

/* ---- writing ---------------------------------------------------------- */

typedef struct wire_writer {
  uint8_t *buf;
  size_t cap;
  size_t pos;
  int overflow; /* a write did not fit; nothing more is written */
} wire_writer;

/* Returns where the next n bytes go and advances, or NULL.  The encoder
 * sizes the message before writing, so NULL means a bug in that sum. */
static uint8_t *room(wire_writer *w, size_t n) {
  if (w->overflow || n > w->cap - w->pos) {
    w->overflow = 1;
    return NULL;
  }
  uint8_t *p = w->buf + w->pos;
  w->pos += n;
  return p;
}

static void put_u8(wire_writer *w, uint8_t v) {
  uint8_t *p = room(w, 1);
  if (p)
    p[0] = v;
}

static void put_u16(wire_writer *w, uint16_t v) {
  uint8_t *p = room(w, 2);
  if (p) {
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
  }
}

static void put_u32(wire_writer *w, uint32_t v) {
  uint8_t *p = room(w, 4);
  if (p) {
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
  }
}

static void put_u64(wire_writer *w, uint64_t v) {
  put_u32(w, (uint32_t)(v >> 32));
  put_u32(w, (uint32_t)v);
}

static void put_addr(wire_writer *w, const quilt_addr *a) {
  put_u32(w, a->ip);
  put_u16(w, a->port);
}

static void put_node(wire_writer *w, const quilt_wire_node *n) {
  put_u64(w, n->id);
  put_addr(w, &n->addr);
}

static void put_euid(wire_writer *w, const quilt_euid *e) {
  uint8_t *p = room(w, QUILT_EUID_WIRE_LEN);
  if (p)
    quilt_euid_encode(e, p);
}

static void put_bytes(wire_writer *w, const uint8_t *src, size_t n) {
  uint8_t *p = room(w, n);
  if (p && n > 0)
    memcpy(p, src, n);
}

/* Whether e is an EUID that quilt_euid_encode() accepts (it asserts this)
 * and quilt_euid_decode() would give back unchanged: the ranges of euid.h. */
static int euid_ok(const quilt_euid *e) {
  return e->nat < QUILT_NAT__COUNT && e->ipmc <= 1;
}

/* Checks *m against the rules the decoder enforces and sets *body_len to the
 * size of its body.  Returns 0, QUILT_ERR_INVAL or QUILT_ERR_TOO_BIG. */
static int check_msg(const quilt_msg *m, size_t *body_len) {
  switch (m->hdr.type) {
  case QUILT_MSG_JOIN:
    if (m->u.join.flags != 0 || !euid_ok(&m->u.join.euid))
      return QUILT_ERR_INVAL;
    *body_len = WIRE_JOIN_LEN;
    return 0;
  case QUILT_MSG_PATCH_INFO: {
    const quilt_msg_patch_info *pi = &m->u.patch_info;
    if (pi->role > QUILT_ROLE_BACKUP || pi->nreps > QUILT_WIRE_MAX_REPS)
      return QUILT_ERR_INVAL;
    *body_len = WIRE_PATCH_INFO_FIXED + (size_t)pi->nreps * WIRE_NODE_LEN;
    return 0;
  }
  case QUILT_MSG_HEARTBEAT:
    if (m->u.heartbeat.role > QUILT_ROLE_BACKUP ||
        (m->u.heartbeat.flags & ~QUILT_HB_FLAGS_KNOWN) != 0 ||
        !euid_ok(&m->u.heartbeat.euid) ||
        m->u.heartbeat.nrtt > QUILT_WIRE_MAX_LANDMARKS)
      return QUILT_ERR_INVAL;
    *body_len = WIRE_HEARTBEAT_FIXED + (size_t)m->u.heartbeat.nrtt * 4;
    return 0;
  case QUILT_MSG_PING:
  case QUILT_MSG_PONG:
    *body_len = WIRE_PING_LEN;
    return 0;
  case QUILT_MSG_LANDMARKS:
    if (m->u.landmarks.count > QUILT_WIRE_MAX_LANDMARKS)
      return QUILT_ERR_INVAL;
    *body_len = WIRE_LANDMARKS_FIXED + (size_t)m->u.landmarks.count *
                                           WIRE_NODE_LEN;
    return 0;
  case QUILT_MSG_TREE:
    if (!tree_ok(&m->u.tree))
      return QUILT_ERR_INVAL;
    *body_len = WIRE_TREE_FIXED + (size_t)m->u.tree.nchildren * WIRE_NODE_LEN;
    return 0;
  case QUILT_MSG_ORPHAN:
    if (m->u.orphan.parent == 0)
      return QUILT_ERR_INVAL;
    *body_len = WIRE_ORPHAN_LEN;
    return 0;
  case QUILT_MSG_LEAVE:
  case QUILT_MSG_REJOIN:
    *body_len = 0;
    return 0;
  case QUILT_MSG_PEERS:
  case QUILT_MSG_MEMBERS: {
    const quilt_msg_peers *p = &m->u.peers;
    if (p->count > QUILT_WIRE_MAX_PEERS ||
        (uint32_t)p->offset + p->count > p->total)
      return QUILT_ERR_INVAL;
    *body_len = WIRE_PEERS_FIXED + (size_t)p->count * WIRE_PEER_LEN;
    return 0;
  }
  case QUILT_MSG_DATA: {
    const quilt_msg_data *d = &m->u.data;
    if (d->seq == 0 ||
        (d->flags & ~(QUILT_DATA_REPAIR | QUILT_DATA_FORWARDED)) != 0 ||
        (d->len > 0 && d->payload == NULL))
      return QUILT_ERR_INVAL;
    if (d->len > QUILT_WIRE_MAX_PAYLOAD)
      return QUILT_ERR_TOO_BIG;
    *body_len = WIRE_DATA_FIXED + (size_t)d->len;
    return 0;
  }
  case QUILT_MSG_NACK: {
    const quilt_msg_nack *n = &m->u.nack;
    if (n->count == 0 || n->count > QUILT_WIRE_MAX_NACK)
      return QUILT_ERR_INVAL;
    for (unsigned i = 0; i < n->count; i++)
      if (!nack_range_ok(&n->ranges[i]))
        return QUILT_ERR_INVAL;
    *body_len = WIRE_NACK_FIXED + (size_t)n->count * WIRE_NACK_RANGE_LEN;
    return 0;
  }
  case QUILT_MSG_SESSION: {
    const quilt_msg_session *s = &m->u.session;
    if (s->count == 0 || s->count > QUILT_WIRE_MAX_SESSION)
      return QUILT_ERR_INVAL;
    *body_len = WIRE_SESSION_FIXED + (size_t)s->count * WIRE_SESSION_ENTRY_LEN;
    return 0;
  }
  default: {
    if (!QUILT_MSG_IS_MESH(m->hdr.type) || m->u.donet.type != m->hdr.type)
      return QUILT_ERR_INVAL;
    int n = quilt_donet_encoded_len(&m->u.donet);
    if (n < 0)
      return QUILT_ERR_INVAL;
    *body_len = (size_t)n;
    return 0;
  }
  }
}

static void encode_body(wire_writer *w, const quilt_msg *m) {
  switch (m->hdr.type) {
  case QUILT_MSG_JOIN:
    put_addr(w, &m->u.join.addr);
    put_euid(w, &m->u.join.euid);
    put_u8(w, m->u.join.flags);
    break;
  case QUILT_MSG_PATCH_INFO: {
    const quilt_msg_patch_info *pi = &m->u.patch_info;
    put_u32(w, pi->patch_id);
    put_u8(w, pi->protocol);
    put_u8(w, pi->role);
    put_u32(w, pi->epoch);
    put_addr(w, &pi->mcast);
    put_u16(w, pi->heartbeat_ms);
    put_u8(w, pi->nreps);
    for (unsigned i = 0; i < pi->nreps; i++)
      put_node(w, &pi->reps[i]);
    break;
  }
  case QUILT_MSG_HEARTBEAT:
    put_addr(w, &m->u.heartbeat.addr);
    put_euid(w, &m->u.heartbeat.euid);
    put_u32(w, m->u.heartbeat.patch_id);
    put_u8(w, m->u.heartbeat.role);
    put_u8(w, m->u.heartbeat.flags);
    put_u32(w, m->u.heartbeat.epoch);
    put_u32(w, m->u.heartbeat.lm_epoch);
    put_u8(w, m->u.heartbeat.nrtt);
    for (unsigned i = 0; i < m->u.heartbeat.nrtt; i++)
      put_u32(w, m->u.heartbeat.rtt_us[i]);
    break;
  case QUILT_MSG_PING:
  case QUILT_MSG_PONG:
    put_u64(w, m->u.ping.token);
    break;
  case QUILT_MSG_LANDMARKS:
    put_u32(w, m->u.landmarks.epoch);
    put_u8(w, m->u.landmarks.count);
    for (unsigned i = 0; i < m->u.landmarks.count; i++)
      put_node(w, &m->u.landmarks.nodes[i]);
    break;
  case QUILT_MSG_TREE: {
    const quilt_msg_tree *t = &m->u.tree;
    put_u64(w, t->to);
    put_u32(w, t->tree);
    put_u32(w, t->epoch);
    put_node(w, &t->parent);
    put_node(w, &t->grandparent);
    put_u8(w, t->degree);
    put_u8(w, t->nchildren);
    for (unsigned i = 0; i < t->nchildren; i++)
      put_node(w, &t->children[i]);
    break;
  }
  case QUILT_MSG_ORPHAN:
    put_u32(w, m->u.orphan.tree);
    put_u32(w, m->u.orphan.epoch);
    put_u64(w, m->u.orphan.parent);
    break;
  case QUILT_MSG_PEERS:
  case QUILT_MSG_MEMBERS: {
    const quilt_msg_peers *p = &m->u.peers;
    put_u32(w, p->epoch);
    put_u16(w, p->total);
    put_u16(w, p->offset);
    put_u8(w, p->count);
    for (unsigned i = 0; i < p->count; i++) {
      put_u32(w, p->entries[i].patch_id);
      put_node(w, &p->entries[i].node);
    }
    break;
  }
  case QUILT_MSG_DATA: {
    const quilt_msg_data *d = &m->u.data;
    put_u64(w, d->origin);
    put_u64(w, d->seq);
    put_u64(w, d->ts_ns);
    put_u32(w, d->origin_patch);
    put_u8(w, d->flags);
    put_u16(w, d->len);
    put_bytes(w, d->payload, d->len);
    break;
  }
  case QUILT_MSG_NACK: {
    const quilt_msg_nack *n = &m->u.nack;
    put_u64(w, n->origin);
    put_u8(w, n->count);
    for (unsigned i = 0; i < n->count; i++) {
      put_u64(w, n->ranges[i].first);
      put_u32(w, n->ranges[i].count);
    }
    break;
  }
  case QUILT_MSG_SESSION: {
    const quilt_msg_session *s = &m->u.session;
    put_u8(w, s->count);
    for (unsigned i = 0; i < s->count; i++) {
      put_u64(w, s->entries[i].origin);
      put_u64(w, s->entries[i].seq);
    }
    break;
  }
  default: /* LEAVE, REJOIN: empty body; mesh messages (checked) */
    if (QUILT_MSG_IS_MESH(m->hdr.type)) {
      size_t left = w->cap - w->pos;
      int n = quilt_donet_encode(&m->u.donet, w->buf + w->pos, left);
      if (n < 0 || (size_t)n != left)
        w->overflow = 1; /* check_msg sized it: cannot happen */
      else
        w->pos += (size_t)n;
    }
    break;
  }
}

int quilt_wire_encode(const quilt_msg *m, uint8_t *out, size_t outlen) {
  assert(m != NULL);
  assert(out != NULL || outlen == 0);
  size_t body_len = 0;
  int rc = check_msg(m, &body_len);
  if (rc != 0)
    return rc;
  size_t total = QUILT_WIRE_HEADER_LEN + body_len;
  if (total > QUILT_WIRE_MAX_DATAGRAM || total > outlen)
    return QUILT_ERR_TOO_BIG;

  wire_writer w = {out, total, 0, 0};
  put_u16(&w, QUILT_WIRE_MAGIC);
  /* This node speaks one version; hdr.version is informational on input. */
  put_u8(&w, QUILT_WIRE_VERSION);
  put_u8(&w, m->hdr.type);
  put_u64(&w, m->hdr.sender);
  put_u32(&w, m->hdr.group);
  encode_body(&w, m);
  assert(!w.overflow && w.pos == total);
  return (int)total;
}

const char *quilt_msg_type_name(unsigned type) {
  switch (type) {
  case QUILT_MSG_JOIN:
    return "JOIN";
  case QUILT_MSG_PATCH_INFO:
    return "PATCH_INFO";
  case QUILT_MSG_HEARTBEAT:
    return "HEARTBEAT";
  case QUILT_MSG_LEAVE:
    return "LEAVE";
  case QUILT_MSG_REJOIN:
    return "REJOIN";
  case QUILT_MSG_PEERS:
    return "PEERS";
  case QUILT_MSG_DATA:
    return "DATA";
  case QUILT_MSG_NACK:
    return "NACK";
  case QUILT_MSG_SESSION:
    return "SESSION";
  case QUILT_MSG_MEMBERS:
    return "MEMBERS";
  case QUILT_MSG_PING:
    return "PING";
  case QUILT_MSG_PONG:
    return "PONG";
  case QUILT_MSG_LANDMARKS:
    return "LANDMARKS";
  case QUILT_MSG_TREE:
    return "TREE";
  case QUILT_MSG_ORPHAN:
    return "ORPHAN";
  case QUILT_DONET_MSG_GOSSIP:
    return "GOSSIP";
  case QUILT_DONET_MSG_PARTNER_REQ:
    return "PARTNER_REQ";
  case QUILT_DONET_MSG_PARTNER_REPLY:
    return "PARTNER_REPLY";
  case QUILT_DONET_MSG_PARTNER_DROP:
    return "PARTNER_DROP";
  case QUILT_DONET_MSG_BUFFER_MAP:
    return "BUFFER_MAP";
  case QUILT_DONET_MSG_REQUEST:
    return "REQUEST";
  default:
    return "?";
  }
}

/* FNV-1a, 32 bits (Fowler, Noll, Vo; draft-eastlake-fnv): offset basis
 * 2166136261, prime 16777619.  A hash of 0 becomes 1, as wire.h promises. */
uint32_t quilt_group_id(const char *name) {
  assert(name != NULL);
  uint32_t h = 2166136261u;
  for (const unsigned char *p = (const unsigned char *)name; *p != 0; p++) {
    h ^= *p;
    h *= 16777619u;
  }
  return h != 0 ? h : 1;
}

static int node_eq(const quilt_wire_node *a, const quilt_wire_node *b) {
  return a->id == b->id && quilt_addr_eq(&a->addr, &b->addr);
}

int quilt_msg_equal(const quilt_msg *a, const quilt_msg *b) {
  if (a->hdr.version != b->hdr.version || a->hdr.type != b->hdr.type ||
      a->hdr.sender != b->hdr.sender || a->hdr.group != b->hdr.group)
    return 0;
  switch (a->hdr.type) {
  case QUILT_MSG_JOIN:
    return quilt_addr_eq(&a->u.join.addr, &b->u.join.addr) &&
           quilt_euid_equal(&a->u.join.euid, &b->u.join.euid) &&
           a->u.join.flags == b->u.join.flags;
  case QUILT_MSG_PATCH_INFO: {
    const quilt_msg_patch_info *x = &a->u.patch_info, *y = &b->u.patch_info;
    if (x->patch_id != y->patch_id || x->protocol != y->protocol ||
        x->role != y->role || x->epoch != y->epoch ||
        !quilt_addr_eq(&x->mcast, &y->mcast) || x->heartbeat_ms != y->heartbeat_ms ||
        x->nreps != y->nreps || x->nreps > QUILT_WIRE_MAX_REPS)
      return 0;
    for (unsigned i = 0; i < x->nreps; i++)
      if (!node_eq(&x->reps[i], &y->reps[i]))
        return 0;
    return 1;
  }
  case QUILT_MSG_HEARTBEAT:
    return quilt_addr_eq(&a->u.heartbeat.addr, &b->u.heartbeat.addr) &&
           quilt_euid_equal(&a->u.heartbeat.euid, &b->u.heartbeat.euid) &&
           a->u.heartbeat.patch_id == b->u.heartbeat.patch_id &&
           a->u.heartbeat.role == b->u.heartbeat.role &&
           a->u.heartbeat.flags == b->u.heartbeat.flags &&
           a->u.heartbeat.epoch == b->u.heartbeat.epoch &&
           a->u.heartbeat.lm_epoch == b->u.heartbeat.lm_epoch &&
           a->u.heartbeat.nrtt == b->u.heartbeat.nrtt &&
           a->u.heartbeat.nrtt <= QUILT_WIRE_MAX_LANDMARKS &&
           memcmp(a->u.heartbeat.rtt_us, b->u.heartbeat.rtt_us,
                  a->u.heartbeat.nrtt * sizeof(uint32_t)) == 0;
  case QUILT_MSG_PING:
  case QUILT_MSG_PONG:
    return a->u.ping.token == b->u.ping.token;
  case QUILT_MSG_LANDMARKS: {
    const quilt_msg_landmarks *x = &a->u.landmarks, *y = &b->u.landmarks;
    if (x->epoch != y->epoch || x->count != y->count ||
        x->count > QUILT_WIRE_MAX_LANDMARKS)
      return 0;
    for (unsigned i = 0; i < x->count; i++)
      if (!node_eq(&x->nodes[i], &y->nodes[i]))
        return 0;
    return 1;
  }
  case QUILT_MSG_TREE: {
    const quilt_msg_tree *x = &a->u.tree, *y = &b->u.tree;
    if (x->to != y->to || x->tree != y->tree || x->epoch != y->epoch ||
        !node_eq(&x->parent, &y->parent) ||
        !node_eq(&x->grandparent, &y->grandparent) ||
        x->degree != y->degree || x->nchildren != y->nchildren ||
        x->nchildren > QUILT_WIRE_MAX_CHILDREN)
      return 0;
    for (unsigned i = 0; i < x->nchildren; i++)
      if (!node_eq(&x->children[i], &y->children[i]))
        return 0;
    return 1;
  }
  case QUILT_MSG_ORPHAN:
    return a->u.orphan.tree == b->u.orphan.tree &&
           a->u.orphan.epoch == b->u.orphan.epoch &&
           a->u.orphan.parent == b->u.orphan.parent;
  case QUILT_MSG_LEAVE:
  case QUILT_MSG_REJOIN:
    return 1;
  case QUILT_MSG_PEERS:
  case QUILT_MSG_MEMBERS: {
    const quilt_msg_peers *x = &a->u.peers, *y = &b->u.peers;
    if (x->epoch != y->epoch || x->total != y->total ||
        x->offset != y->offset || x->count != y->count ||
        x->count > QUILT_WIRE_MAX_PEERS)
      return 0;
    for (unsigned i = 0; i < x->count; i++)
      if (x->entries[i].patch_id != y->entries[i].patch_id ||
          !node_eq(&x->entries[i].node, &y->entries[i].node))
        return 0;
    return 1;
  }
  case QUILT_MSG_DATA: {
    const quilt_msg_data *x = &a->u.data, *y = &b->u.data;
    return x->origin == y->origin && x->seq == y->seq && x->ts_ns == y->ts_ns &&
           x->origin_patch == y->origin_patch && x->flags == y->flags &&
           x->len == y->len &&
           (x->len == 0 || memcmp(x->payload, y->payload, x->len) == 0);
  }
  case QUILT_MSG_NACK: {
    const quilt_msg_nack *x = &a->u.nack, *y = &b->u.nack;
    if (x->origin != y->origin || x->count != y->count ||
        x->count > QUILT_WIRE_MAX_NACK)
      return 0;
    for (unsigned i = 0; i < x->count; i++)
      if (x->ranges[i].first != y->ranges[i].first ||
          x->ranges[i].count != y->ranges[i].count)
        return 0;
    return 1;
  }
  case QUILT_MSG_SESSION: {
    const quilt_msg_session *x = &a->u.session, *y = &b->u.session;
    if (x->count != y->count || x->count > QUILT_WIRE_MAX_SESSION)
      return 0;
    for (unsigned i = 0; i < x->count; i++)
      if (x->entries[i].origin != y->entries[i].origin ||
          x->entries[i].seq != y->entries[i].seq)
        return 0;
    return 1;
  }
  default:
    if (QUILT_MSG_IS_MESH(a->hdr.type))
      return quilt_donet_msg_equal(&a->u.donet, &b->u.donet);
    return 0; /* not a message type */
  }
}
