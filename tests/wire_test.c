/*
 * wire_test.c -- the datagram codec: round trips, golden DATA and TREE
 * datagrams, every truncation, every out-of-range field, encoder refusals;
 * the mesh protocol's messages (types 20..25) through the same codec.
 *
 * Decoded buffers are copied into exact-size heap blocks first so that an
 * AddressSanitizer build catches any read past the datagram.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "quilt.h"
#include "wire.h"

/* Byte offsets used to corrupt encoded datagrams (docs/wire.md). */
#define OFF_TYPE 3
#define OFF_BODY QUILT_WIRE_HEADER_LEN

static uint8_t payload_store[QUILT_WIRE_MAX_PAYLOAD];

/* xorshift64: varied field values so that byte-order mistakes show. */
static uint64_t rnd_state;
static uint64_t rnd(void) {
  rnd_state ^= rnd_state << 13;
  rnd_state ^= rnd_state >> 7;
  rnd_state ^= rnd_state << 17;
  return rnd_state;
}

static quilt_addr rnd_addr(void) {
  quilt_addr a = {(uint32_t)rnd(), (uint16_t)rnd()};
  return a;
}

static quilt_euid rnd_euid(void) {
  quilt_euid e;
  e.nat = (uint8_t)(rnd() % QUILT_NAT__COUNT);
  e.ipmc = (uint8_t)(rnd() & 1);
  e.domain = (uint32_t)rnd();
  e.region = (uint32_t)rnd();
  e.rtt_us = (uint32_t)rnd();
  e.bw_kbps = (uint32_t)rnd();
  return e;
}

static quilt_wire_node rnd_node(void) {
  quilt_wire_node n = {rnd(), rnd_addr()};
  return n;
}

/* A valid message of the given type: typical contents, or every list at its
 * limit and extreme values where the rules allow them. */
static void make_sample(quilt_msg *m, unsigned type, int maximal) {
  memset(m, 0, sizeof *m);
  rnd_state = 0x9E3779B97F4A7C15ull + type * 7919u + (unsigned)maximal;
  m->hdr.version = QUILT_WIRE_VERSION;
  m->hdr.type = (uint8_t)type;
  m->hdr.sender = maximal ? UINT64_MAX : rnd();
  m->hdr.group = maximal ? UINT32_MAX : quilt_group_id("quotes");
  switch (type) {
  case QUILT_MSG_JOIN:
    m->u.join.addr = rnd_addr();
    m->u.join.euid = rnd_euid();
    if (maximal) {
      m->u.join.euid.nat = QUILT_NAT__COUNT - 1;
      m->u.join.euid.ipmc = 1;
      m->u.join.euid.bw_kbps = UINT32_MAX;
    }
    break;
  case QUILT_MSG_PATCH_INFO: {
    quilt_msg_patch_info *pi = &m->u.patch_info;
    pi->patch_id = (uint32_t)rnd();
    pi->protocol = (uint8_t)(maximal ? 255 : 2);
    pi->role = maximal ? QUILT_ROLE_BACKUP : QUILT_ROLE_PRIMARY;
    pi->epoch = (uint32_t)rnd();
    pi->mcast.ip = 0xEF010203u;
    pi->mcast.port = 5000;
    pi->heartbeat_ms = (uint16_t)(maximal ? UINT16_MAX : 1000);
    pi->nreps = maximal ? QUILT_WIRE_MAX_REPS : 2;
    for (unsigned i = 0; i < pi->nreps; i++)
      pi->reps[i] = rnd_node();
    break;
  }
  case QUILT_MSG_HEARTBEAT: {
    quilt_msg_heartbeat *hb = &m->u.heartbeat;
    hb->addr = rnd_addr();
    hb->euid = rnd_euid();
    hb->patch_id = maximal ? UINT32_MAX : 7;
    hb->role = maximal ? QUILT_ROLE_BACKUP : QUILT_ROLE_MEMBER;
    hb->flags = maximal ? QUILT_HB_SOURCE : 0;
    hb->epoch = maximal ? UINT32_MAX : 3;
    hb->lm_epoch = maximal ? UINT32_MAX : 2;
    hb->nrtt = maximal ? QUILT_WIRE_MAX_LANDMARKS : 3;
    for (unsigned i = 0; i < hb->nrtt; i++)
      hb->rtt_us[i] = (uint32_t)rnd();
    /* Not measured yet, and a measured 0 (same host), are both legal. */
    hb->rtt_us[1] = QUILT_WIRE_RTT_UNKNOWN;
    if (maximal)
      hb->rtt_us[2] = 0;
    break;
  }
  case QUILT_MSG_PING:
  case QUILT_MSG_PONG:
    m->u.ping.token = maximal ? UINT64_MAX : rnd();
    break;
  case QUILT_MSG_LANDMARKS: {
    quilt_msg_landmarks *l = &m->u.landmarks;
    l->epoch = maximal ? UINT32_MAX : (uint32_t)rnd();
    l->count = maximal ? QUILT_WIRE_MAX_LANDMARKS : 4;
    for (unsigned i = 0; i < l->count; i++)
      l->nodes[i] = rnd_node();
    break;
  }
  case QUILT_MSG_TREE: {
    quilt_msg_tree *t = &m->u.tree;
    t->to = maximal ? UINT64_MAX - 2 : 99;
    t->tree = maximal ? UINT32_MAX : (uint32_t)rnd();
    t->epoch = maximal ? UINT32_MAX : (uint32_t)rnd();
    t->parent = rnd_node();
    t->grandparent = rnd_node();
    t->degree = maximal ? UINT8_MAX : 4;
    t->nchildren = maximal ? QUILT_WIRE_MAX_CHILDREN : 2;
    /* Ids from xorshift are nonzero and, for this seed, all distinct
     * (test_roundtrip_* would fail otherwise); the extremes are set by hand. */
    for (unsigned i = 0; i < t->nchildren; i++)
      t->children[i] = rnd_node();
    if (maximal) {
      t->parent.id = UINT64_MAX;
      t->grandparent.id = UINT64_MAX - 1;
      t->children[0].id = 1;
    }
    break;
  }
  case QUILT_MSG_ORPHAN:
    m->u.orphan.tree = maximal ? UINT32_MAX : (uint32_t)rnd();
    m->u.orphan.epoch = maximal ? UINT32_MAX : (uint32_t)rnd();
    m->u.orphan.parent = maximal ? UINT64_MAX : rnd();
    break;
  case QUILT_MSG_LEAVE:
  case QUILT_MSG_REJOIN:
    break;
  case QUILT_MSG_PEERS:
  case QUILT_MSG_MEMBERS: {
    quilt_msg_peers *p = &m->u.peers;
    p->epoch = (uint32_t)rnd();
    p->count = maximal ? QUILT_WIRE_MAX_PEERS : 3;
    p->offset = maximal ? (uint16_t)(UINT16_MAX - QUILT_WIRE_MAX_PEERS) : 10;
    p->total = maximal ? UINT16_MAX : 13;
    for (unsigned i = 0; i < p->count; i++) {
      p->entries[i].patch_id = (uint32_t)rnd();
      p->entries[i].node = rnd_node();
    }
    break;
  }
  case QUILT_MSG_DATA: {
    quilt_msg_data *d = &m->u.data;
    for (size_t i = 0; i < sizeof payload_store; i++)
      payload_store[i] = (uint8_t)rnd();
    d->origin = rnd();
    d->seq = maximal ? UINT64_MAX : 42;
    d->ts_ns = rnd();
    d->origin_patch = (uint32_t)rnd();
    d->flags = maximal ? (QUILT_DATA_REPAIR | QUILT_DATA_FORWARDED) : 0;
    d->len = maximal ? QUILT_WIRE_MAX_PAYLOAD : 100;
    d->payload = payload_store;
    break;
  }
  case QUILT_MSG_NACK: {
    quilt_msg_nack *n = &m->u.nack;
    n->origin = rnd();
    n->count = maximal ? QUILT_WIRE_MAX_NACK : 2;
    for (unsigned i = 0; i < n->count; i++) {
      n->ranges[i].first = 1 + rnd() % 1000000;
      n->ranges[i].count = 1 + (uint32_t)(rnd() % 100);
    }
    if (maximal) {
      /* The largest range whose end first + count is still representable. */
      n->ranges[0].first = UINT64_MAX - UINT32_MAX;
      n->ranges[0].count = UINT32_MAX;
      n->ranges[1].first = 1;
      n->ranges[1].count = 1;
    }
    break;
  }
  case QUILT_MSG_SESSION: {
    quilt_msg_session *s = &m->u.session;
    s->count = maximal ? QUILT_WIRE_MAX_SESSION : 3;
    for (unsigned i = 0; i < s->count; i++) {
      s->entries[i].origin = rnd();
      s->entries[i].seq = rnd();
    }
    if (maximal)
      s->entries[0].seq = 0; /* nothing sent yet is a legal report */
    break;
  }
  case QUILT_DONET_MSG_GOSSIP: {
    quilt_donet_msg_gossip *g = &m->u.donet.u.gossip;
    g->count = maximal ? QUILT_DONET_MAX_RECORDS : 3;
    for (unsigned i = 0; i < g->count; i++) {
      quilt_donet_record *r = &g->records[i];
      r->id = maximal && i == 0 ? UINT64_MAX : rnd() | 1;
      r->addr = rnd_addr();
      r->seq = (uint32_t)rnd();
      r->nat = (uint8_t)(rnd() % QUILT_DONET_NAT__COUNT);
      r->partners = (uint8_t)rnd();
      r->ttl_s = (uint16_t)rnd();
      r->hops = (uint8_t)rnd();
    }
    break;
  }
  case QUILT_DONET_MSG_PARTNER_REQ:
    m->u.donet.u.req.nat = maximal ? QUILT_DONET_NAT_RESTRICTIVE : 1;
    m->u.donet.u.req.partners = maximal ? UINT8_MAX : 3;
    m->u.donet.u.req.uplink_kbps = maximal ? UINT32_MAX : 2000;
    break;
  case QUILT_DONET_MSG_PARTNER_REPLY: {
    quilt_donet_msg_partner_reply *r = &m->u.donet.u.reply;
    r->accept = 1;
    r->nat = maximal ? QUILT_DONET_NAT_RESTRICTIVE : 0;
    r->partners = 4;
    r->uplink_kbps = maximal ? UINT32_MAX : 1000;
    r->count = maximal ? QUILT_DONET_MAX_REFERRALS : 2;
    for (unsigned i = 0; i < r->count; i++) {
      r->records[i].id = rnd() | 1;
      r->records[i].addr = rnd_addr();
      r->records[i].ttl_s = 60;
    }
    break;
  }
  case QUILT_DONET_MSG_PARTNER_DROP:
    m->u.donet.u.drop.reason = maximal ? QUILT_DONET_DROP__COUNT - 1 : 0;
    break;
  case QUILT_DONET_MSG_BUFFER_MAP:
  case QUILT_DONET_MSG_REQUEST: {
    quilt_donet_bitmap *b = &m->u.donet.u.bm;
    b->nbits = maximal ? QUILT_DONET_MAX_WINDOW : 13;
    b->first = maximal ? UINT32_MAX - QUILT_DONET_MAX_WINDOW + 1 : 500;
    for (unsigned i = 0; i < b->nbits / 8; i++)
      b->bits[i] = (uint8_t)rnd();
    if (b->nbits % 8) /* padding bits stay 0 */
      b->bits[b->nbits / 8] = (uint8_t)(0xFF00u >> (b->nbits % 8));
    break;
  }
  default:
    fail_msg("no sample for type %u", type);
  }
  if (QUILT_MSG_IS_MESH(type))
    m->u.donet.type = (uint8_t)type;
}

static int decode_exact(quilt_msg *m, const uint8_t *buf, size_t len,
                        uint8_t **keep) {
  uint8_t *copy = malloc(len ? len : 1);
  assert_non_null(copy);
  if (len)
    memcpy(copy, buf, len);
  int rc = quilt_wire_decode(m, copy, len);
  if (keep)
    *keep = copy;
  else
    free(copy);
  return rc;
}

static int encode_sample(unsigned type, int maximal, quilt_msg *m,
                         uint8_t *out) {
  make_sample(m, type, maximal);
  int n = quilt_wire_encode(m, out, QUILT_WIRE_MAX_DATAGRAM);
  assert_true(n >= QUILT_WIRE_HEADER_LEN);
  assert_true(n <= QUILT_WIRE_MAX_DATAGRAM);
  return n;
}

static void check_roundtrip(unsigned type, int maximal, int expect_len) {
  quilt_msg m, d;
  uint8_t buf[QUILT_WIRE_MAX_DATAGRAM], again[QUILT_WIRE_MAX_DATAGRAM];
  int n = encode_sample(type, maximal, &m, buf);
  if (expect_len >= 0)
    assert_int_equal(n, expect_len);
  uint8_t *keep;
  assert_int_equal(decode_exact(&d, buf, (size_t)n, &keep), 0);
  assert_true(quilt_msg_equal(&m, &d));
  if (type == QUILT_MSG_DATA) /* zero copy: payload points into the buffer */
    assert_ptr_equal(d.u.data.payload, keep + QUILT_WIRE_DATA_OVERHEAD);
  assert_int_equal(quilt_wire_encode(&d, again, sizeof again), n);
  assert_memory_equal(buf, again, (size_t)n);
  free(keep);
}

static void test_roundtrip_typical(void **state) {
  for (unsigned t = 1; t < QUILT_MSG__MAX; t++)
    check_roundtrip(t, 0, -1);
}

/* Sizes at the limits, worked out in docs/wire.md. */
static void test_roundtrip_max(void **state) {
  check_roundtrip(QUILT_MSG_JOIN, 1, 43);
  check_roundtrip(QUILT_MSG_PATCH_INFO, 1, 147);
  check_roundtrip(QUILT_MSG_HEARTBEAT, 1, 121);
  check_roundtrip(QUILT_MSG_LEAVE, 1, 16);
  check_roundtrip(QUILT_MSG_REJOIN, 1, 16);
  check_roundtrip(QUILT_MSG_PEERS, 1, 1177);
  check_roundtrip(QUILT_MSG_DATA, 1, 1400);
  check_roundtrip(QUILT_MSG_NACK, 1, 409);
  check_roundtrip(QUILT_MSG_SESSION, 1, 1041);
  check_roundtrip(QUILT_MSG_MEMBERS, 1, 1177);
  check_roundtrip(QUILT_MSG_PING, 1, 24);
  check_roundtrip(QUILT_MSG_PONG, 1, 24);
  check_roundtrip(QUILT_MSG_LANDMARKS, 1, 245);
  check_roundtrip(QUILT_MSG_TREE, 1, 958);
  check_roundtrip(QUILT_MSG_ORPHAN, 1, 32);
}

/* Typical sizes of the variable-length new messages (docs/wire.md). */
static void test_roundtrip_typical_sizes(void **state) {
  check_roundtrip(QUILT_MSG_HEARTBEAT, 0, 16 + 41 + 3 * 4);
  check_roundtrip(QUILT_MSG_PING, 0, 24);
  check_roundtrip(QUILT_MSG_PONG, 0, 24);
  check_roundtrip(QUILT_MSG_LANDMARKS, 0, 16 + 5 + 4 * 14);
  check_roundtrip(QUILT_MSG_TREE, 0, 16 + 46 + 2 * 14);
  check_roundtrip(QUILT_MSG_ORPHAN, 0, 32);
}

static void expect_roundtrip(const quilt_msg *m, int expect_len) {
  uint8_t buf[QUILT_WIRE_MAX_DATAGRAM], again[QUILT_WIRE_MAX_DATAGRAM];
  quilt_msg d;
  int n = quilt_wire_encode(m, buf, sizeof buf);
  assert_int_equal(n, expect_len);
  assert_int_equal(decode_exact(&d, buf, (size_t)n, NULL), 0);
  assert_true(quilt_msg_equal(m, &d));
  assert_int_equal(quilt_wire_encode(&d, again, sizeof again), n);
  assert_memory_equal(buf, again, (size_t)n);
}

/* The tree views at the edges of tree_ok's rules that are legal. */
static void test_roundtrip_tree_shapes(void **state) {
  quilt_msg m;

  /* The root: no parent, no grandparent, no children yet. */
  make_sample(&m, QUILT_MSG_TREE, 0);
  memset(&m.u.tree.parent, 0, sizeof m.u.tree.parent);
  memset(&m.u.tree.grandparent, 0, sizeof m.u.tree.grandparent);
  m.u.tree.nchildren = 0;
  m.u.tree.degree = 1;
  expect_roundtrip(&m, 16 + 46);

  /* A root with as many children as its degree allows. */
  make_sample(&m, QUILT_MSG_TREE, 1);
  memset(&m.u.tree.parent, 0, sizeof m.u.tree.parent);
  memset(&m.u.tree.grandparent, 0, sizeof m.u.tree.grandparent);
  m.u.tree.degree = QUILT_WIRE_MAX_CHILDREN;
  expect_roundtrip(&m, 958);

  /* A child of the root: a parent, no grandparent; nchildren == degree. */
  make_sample(&m, QUILT_MSG_TREE, 0);
  memset(&m.u.tree.grandparent, 0, sizeof m.u.tree.grandparent);
  m.u.tree.degree = 2;
  expect_roundtrip(&m, 16 + 46 + 2 * 14);

  /* A "none" node keeps whatever address it was given. */
  make_sample(&m, QUILT_MSG_TREE, 0);
  m.u.tree.grandparent.id = 0;
  assert_true(m.u.tree.grandparent.addr.ip != 0);
  expect_roundtrip(&m, 16 + 46 + 2 * 14);

  /* A leaf with a degree above the list limit (the bound is the host's,
   * the list is what it has now). */
  make_sample(&m, QUILT_MSG_TREE, 0);
  m.u.tree.nchildren = 0;
  m.u.tree.degree = UINT8_MAX;
  expect_roundtrip(&m, 16 + 46);
}

static void test_roundtrip_empty_lists(void **state) {
  quilt_msg m, d;
  uint8_t buf[QUILT_WIRE_MAX_DATAGRAM];

  make_sample(&m, QUILT_MSG_PATCH_INFO, 0);
  m.u.patch_info.nreps = 0;
  int n = quilt_wire_encode(&m, buf, sizeof buf);
  assert_int_equal(n, 35);
  assert_int_equal(decode_exact(&d, buf, (size_t)n, NULL), 0);
  assert_true(quilt_msg_equal(&m, &d));

  make_sample(&m, QUILT_MSG_PEERS, 0);
  m.u.peers.count = 0;
  m.u.peers.total = 0;
  m.u.peers.offset = 0;
  n = quilt_wire_encode(&m, buf, sizeof buf);
  assert_int_equal(n, 25);
  assert_int_equal(decode_exact(&d, buf, (size_t)n, NULL), 0);
  assert_true(quilt_msg_equal(&m, &d));

  make_sample(&m, QUILT_MSG_DATA, 0);
  m.u.data.len = 0;
  m.u.data.payload = NULL;
  n = quilt_wire_encode(&m, buf, sizeof buf);
  assert_int_equal(n, QUILT_WIRE_DATA_OVERHEAD);
  uint8_t *keep;
  assert_int_equal(decode_exact(&d, buf, (size_t)n, &keep), 0);
  assert_int_equal(d.u.data.len, 0);
  free(keep);

  make_sample(&m, QUILT_MSG_HEARTBEAT, 0);
  m.u.heartbeat.nrtt = 0;
  n = quilt_wire_encode(&m, buf, sizeof buf);
  assert_int_equal(n, 16 + 41);
  assert_int_equal(decode_exact(&d, buf, (size_t)n, NULL), 0);
  assert_true(quilt_msg_equal(&m, &d));

  make_sample(&m, QUILT_MSG_LANDMARKS, 0);
  m.u.landmarks.count = 0;
  n = quilt_wire_encode(&m, buf, sizeof buf);
  assert_int_equal(n, 16 + 5);
  assert_int_equal(decode_exact(&d, buf, (size_t)n, NULL), 0);
  assert_true(quilt_msg_equal(&m, &d));
}

static void test_data_golden(void **state) {
  static const uint8_t payload[3] = {'a', 'b', 'c'};
  static const uint8_t golden[] = {
      0x51, 0x4C,                                     /* magic "QL" */
      0x03,                                           /* version */
      0x07,                                           /* type DATA */
      0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, /* sender */
      0xA1, 0xB2, 0xC3, 0xD4,                         /* group */
      0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18, /* origin */
      0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x02, /* seq 258 */
      0x31, 0x32, 0x33, 0x34, 0x35, 0x36, 0x37, 0x38, /* ts_ns */
      0x41, 0x42, 0x43, 0x44,                         /* origin_patch */
      0x03,                                           /* REPAIR|FORWARDED */
      0x00, 0x03,                                     /* len */
      'a',  'b',  'c',                                /* payload */
  };
  quilt_msg m;
  memset(&m, 0, sizeof m);
  m.hdr.type = QUILT_MSG_DATA;
  m.hdr.sender = 0x0102030405060708ull;
  m.hdr.group = 0xA1B2C3D4u;
  m.u.data.origin = 0x1112131415161718ull;
  m.u.data.seq = 258;
  m.u.data.ts_ns = 0x3132333435363738ull;
  m.u.data.origin_patch = 0x41424344u;
  m.u.data.flags = QUILT_DATA_REPAIR | QUILT_DATA_FORWARDED;
  m.u.data.len = 3;
  m.u.data.payload = payload;

  uint8_t buf[64];
  int n = quilt_wire_encode(&m, buf, sizeof buf);
  assert_int_equal(n, sizeof golden);
  assert_memory_equal(buf, golden, sizeof golden);

  /* golden is a static array of its exact size: ASan guards its end too. */
  quilt_msg d;
  assert_int_equal(quilt_wire_decode(&d, golden, sizeof golden), 0);
  assert_ptr_equal(d.u.data.payload, golden + QUILT_WIRE_DATA_OVERHEAD);
  m.hdr.version = QUILT_WIRE_VERSION; /* encode ignores it, decode sets it */
  assert_true(quilt_msg_equal(&m, &d));
}

/* Byte for byte as docs/wire.md lays it out. */
static void test_tree_golden(void **state) {
  static const uint8_t golden[] = {
      0x51, 0x4C, 0x03, 0x0E,                         /* "QL", v3, TREE */
      0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, /* sender */
      0xA1, 0xB2, 0xC3, 0xD4,                         /* group */
      0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x0E, /* to 14 */
      0x00, 0x00, 0x00, 0x05,                         /* tree 5 */
      0x00, 0x00, 0x01, 0x00,                         /* epoch 256 */
      0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x0B, /* parent id 11 */
      0x0A, 0x00, 0x00, 0x0B, 0x1F, 0x90,             /* 10.0.0.11:8080 */
      0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x0C, /* grandparent 12 */
      0x0A, 0x00, 0x00, 0x0C, 0x1F, 0x90,             /* 10.0.0.12:8080 */
      0x03,                                           /* degree */
      0x01,                                           /* nchildren */
      0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x0D, /* child id 13 */
      0x0A, 0x00, 0x00, 0x0D, 0x1F, 0x90,             /* 10.0.0.13:8080 */
  };
  quilt_msg m;
  memset(&m, 0, sizeof m);
  m.hdr.version = QUILT_WIRE_VERSION;
  m.hdr.type = QUILT_MSG_TREE;
  m.hdr.sender = 0x0102030405060708ull;
  m.hdr.group = 0xA1B2C3D4u;
  m.u.tree.to = 14;
  m.u.tree.tree = 5;
  m.u.tree.epoch = 256;
  m.u.tree.parent.id = 11;
  m.u.tree.parent.addr.ip = 0x0A00000Bu;
  m.u.tree.parent.addr.port = 8080;
  m.u.tree.grandparent.id = 12;
  m.u.tree.grandparent.addr.ip = 0x0A00000Cu;
  m.u.tree.grandparent.addr.port = 8080;
  m.u.tree.degree = 3;
  m.u.tree.nchildren = 1;
  m.u.tree.children[0].id = 13;
  m.u.tree.children[0].addr.ip = 0x0A00000Du;
  m.u.tree.children[0].addr.port = 8080;

  uint8_t buf[128];
  assert_int_equal(quilt_wire_encode(&m, buf, sizeof buf), sizeof golden);
  assert_memory_equal(buf, golden, sizeof golden);
  quilt_msg d;
  assert_int_equal(quilt_wire_decode(&d, golden, sizeof golden), 0);
  assert_true(quilt_msg_equal(&m, &d));
}

/* Version 3: the flags after the role; the landmark fields after them. */
static void test_heartbeat_golden(void **state) {
  static const uint8_t golden[] = {
      0x51, 0x4C, 0x03, 0x03,                         /* "QL", v3, HEARTBEAT */
      0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x2A, /* sender 42 */
      0x00, 0x00, 0x00, 0x07,                         /* group */
      0x7F, 0x00, 0x00, 0x01, 0x1B, 0x58,             /* 127.0.0.1:7000 */
      0x00, 0x01, 0x00, 0x00,                         /* nat 0, ipmc 1, rsvd */
      0x00, 0x00, 0x00, 0x03,                         /* euid domain 3 */
      0x00, 0x00, 0x00, 0x00,                         /* euid region 0 */
      0x00, 0x00, 0x03, 0xE8,                         /* euid rtt_us 1000 */
      0x00, 0x00, 0x00, 0x05,                         /* euid bw_kbps 5 */
      0x00, 0x00, 0x00, 0x09,                         /* patch_id 9 */
      0x01,                                           /* role primary */
      0x01,                                           /* flags: SOURCE */
      0x00, 0x00, 0x00, 0x04,                         /* epoch 4 */
      0x00, 0x00, 0x00, 0x06,                         /* lm_epoch 6 */
      0x02,                                           /* nrtt */
      0x00, 0x00, 0x30, 0x39,                         /* 12345 us */
      0xFF, 0xFF, 0xFF, 0xFF,                         /* unknown */
  };
  quilt_msg m;
  memset(&m, 0, sizeof m);
  m.hdr.version = QUILT_WIRE_VERSION;
  m.hdr.type = QUILT_MSG_HEARTBEAT;
  m.hdr.sender = 42;
  m.hdr.group = 7;
  m.u.heartbeat.addr.ip = 0x7F000001u;
  m.u.heartbeat.addr.port = 7000;
  m.u.heartbeat.euid.ipmc = 1;
  m.u.heartbeat.euid.domain = 3;
  m.u.heartbeat.euid.rtt_us = 1000;
  m.u.heartbeat.euid.bw_kbps = 5;
  m.u.heartbeat.patch_id = 9;
  m.u.heartbeat.role = QUILT_ROLE_PRIMARY;
  m.u.heartbeat.flags = QUILT_HB_SOURCE;
  m.u.heartbeat.epoch = 4;
  m.u.heartbeat.lm_epoch = 6;
  m.u.heartbeat.nrtt = 2;
  m.u.heartbeat.rtt_us[0] = 12345;
  m.u.heartbeat.rtt_us[1] = QUILT_WIRE_RTT_UNKNOWN;

  uint8_t buf[128];
  assert_int_equal(quilt_wire_encode(&m, buf, sizeof buf), sizeof golden);
  assert_memory_equal(buf, golden, sizeof golden);
  quilt_msg d;
  assert_int_equal(quilt_wire_decode(&d, golden, sizeof golden), 0);
  assert_true(quilt_msg_equal(&m, &d));

  /* A heartbeat of the layout before the landmark fields (35-byte body) is
   * short. */
  assert_int_equal(quilt_wire_decode(&d, golden, 16 + 35), QUILT_ERR_TRUNCATED);
  /* Unknown flags are refused. */
  uint8_t bad[sizeof golden];
  memcpy(bad, golden, sizeof bad);
  bad[16 + 31] = 0x02;
  assert_int_equal(quilt_wire_decode(&d, bad, sizeof bad), QUILT_ERR_MALFORMED);
  m.u.heartbeat.flags = 0x80;
  assert_true(quilt_wire_encode(&m, buf, sizeof buf) < 0);
}

/* A valid datagram cut anywhere is TRUNCATED: the header is checked only
 * for what is there, and each body is read in full before any of its values
 * is checked (lib/wire.c), so no cut can look like a bad field. */
static void test_truncation(void **state) {
  for (unsigned t = 1; t < QUILT_MSG__MAX; t++) {
    for (int maximal = 0; maximal <= 1; maximal++) {
      quilt_msg m, d;
      uint8_t buf[QUILT_WIRE_MAX_DATAGRAM];
      int n = encode_sample(t, maximal, &m, buf);
      for (int cut = 0; cut < n; cut++) {
        int rc = decode_exact(&d, buf, (size_t)cut, NULL);
        if (rc != QUILT_ERR_TRUNCATED)
          fail_msg("type %u maximal %d cut at %d of %d: rc %d", t, maximal, cut,
                   n, rc);
      }
    }
  }
}

static void test_trailing_byte(void **state) {
  for (unsigned t = 1; t < QUILT_MSG__MAX; t++) {
    quilt_msg m, d;
    uint8_t buf[QUILT_WIRE_MAX_DATAGRAM + 1];
    int n = encode_sample(t, 0, &m, buf);
    buf[n] = 0;
    assert_int_equal(decode_exact(&d, buf, (size_t)n + 1, NULL),
                     QUILT_ERR_MALFORMED);
  }
}

static void test_bad_header(void **state) {
  quilt_msg m, d;
  uint8_t buf[QUILT_WIRE_MAX_DATAGRAM + 8];
  int n = encode_sample(QUILT_MSG_LEAVE, 0, &m, buf);
  assert_int_equal(n, QUILT_WIRE_HEADER_LEN);

  assert_int_equal(decode_exact(&d, buf, 0, NULL), QUILT_ERR_TRUNCATED);
  buf[0] = 'q';
  assert_int_equal(decode_exact(&d, buf, (size_t)n, NULL), QUILT_ERR_MALFORMED);
  assert_int_equal(decode_exact(&d, buf, 2, NULL), QUILT_ERR_MALFORMED);
  buf[0] = 'Q';
  buf[1] = 'K';
  assert_int_equal(decode_exact(&d, buf, (size_t)n, NULL), QUILT_ERR_MALFORMED);
  buf[1] = 'L';

  buf[2] = 0;
  assert_int_equal(decode_exact(&d, buf, (size_t)n, NULL), QUILT_ERR_VERSION);
  buf[2] = QUILT_WIRE_VERSION + 1;
  assert_int_equal(decode_exact(&d, buf, (size_t)n, NULL), QUILT_ERR_VERSION);
  /* A short datagram of another version is still reported as VERSION. */
  assert_int_equal(decode_exact(&d, buf, 3, NULL), QUILT_ERR_VERSION);
  buf[2] = QUILT_WIRE_VERSION;

  static const uint8_t bad_types[] = {0, QUILT_MSG__MAX, 16, 17, 0x80, 0xFF};
  for (size_t i = 0; i < sizeof bad_types; i++) {
    buf[OFF_TYPE] = bad_types[i];
    assert_int_equal(decode_exact(&d, buf, (size_t)n, NULL),
                     QUILT_ERR_MALFORMED);
  }
  buf[OFF_TYPE] = QUILT_MSG_LEAVE;
  assert_int_equal(decode_exact(&d, buf, (size_t)n, NULL), 0);

  /* Longer than any conforming sender produces: MALFORMED. */
  n = encode_sample(QUILT_MSG_DATA, 1, &m, buf);
  assert_int_equal(n, QUILT_WIRE_MAX_DATAGRAM);
  buf[n] = 0;
  assert_int_equal(decode_exact(&d, buf, (size_t)n + 1, NULL),
                   QUILT_ERR_MALFORMED);
}

static void put16(uint8_t *p, uint16_t v) {
  p[0] = (uint8_t)(v >> 8);
  p[1] = (uint8_t)v;
}

static void put32(uint8_t *p, uint32_t v) {
  put16(p, (uint16_t)(v >> 16));
  put16(p + 2, (uint16_t)v);
}

static void put64(uint8_t *p, uint64_t v) {
  put32(p, (uint32_t)(v >> 32));
  put32(p + 4, (uint32_t)v);
}

/* Encodes a sample of type t, lets corrupt() change it, and expects the
 * decoder to answer want. */
static void expect_decode(unsigned t, int maximal,
                          void (*corrupt)(uint8_t *buf), int want) {
  quilt_msg m, d;
  uint8_t buf[QUILT_WIRE_MAX_DATAGRAM];
  int n = encode_sample(t, maximal, &m, buf);
  corrupt(buf);
  assert_int_equal(decode_exact(&d, buf, (size_t)n, NULL), want);
}

static void nreps_9(uint8_t *b) { b[OFF_BODY + 18] = QUILT_WIRE_MAX_REPS + 1; }
static void patch_role_3(uint8_t *b) { b[OFF_BODY + 5] = 3; }
static void peers_count_65(uint8_t *b) {
  b[OFF_BODY + 8] = QUILT_WIRE_MAX_PEERS + 1;
}
static void peers_total_small(uint8_t *b) {
  /* typical sample: offset 10, count 3, total 13 -> total 12 */
  put16(b + OFF_BODY + 4, 12);
}
static void peers_offset_big(uint8_t *b) { put16(b + OFF_BODY + 6, 11); }
static void nack_count_0(uint8_t *b) { b[OFF_BODY + 8] = 0; }
static void nack_count_33(uint8_t *b) {
  b[OFF_BODY + 8] = QUILT_WIRE_MAX_NACK + 1;
}
static void nack_first_0(uint8_t *b) { put64(b + OFF_BODY + 9, 0); }
static void nack_rcount_0(uint8_t *b) { put32(b + OFF_BODY + 17, 0); }
static void nack_overflow(uint8_t *b) {
  /* second range: first + count = 2^64 */
  put64(b + OFF_BODY + 21, UINT64_MAX - 4);
  put32(b + OFF_BODY + 29, 5);
}
static void nack_edge(uint8_t *b) {
  /* first + count = 2^64 - 1: the largest legal end */
  put64(b + OFF_BODY + 21, UINT64_MAX - 5);
  put32(b + OFF_BODY + 29, 5);
}
static void session_count_0(uint8_t *b) { b[OFF_BODY] = 0; }
static void session_count_65(uint8_t *b) {
  b[OFF_BODY] = QUILT_WIRE_MAX_SESSION + 1;
}
static void data_seq_0(uint8_t *b) { put64(b + OFF_BODY + 8, 0); }
static void data_flags_4(uint8_t *b) { b[OFF_BODY + 28] = 0x04; }
static void data_flags_80(uint8_t *b) { b[OFF_BODY + 28] = 0x81; }
static void data_len_over(uint8_t *b) {
  put16(b + OFF_BODY + 29, QUILT_WIRE_MAX_PAYLOAD + 1);
}
static void data_len_short(uint8_t *b) { put16(b + OFF_BODY + 29, 99); }
static void data_len_long(uint8_t *b) { put16(b + OFF_BODY + 29, 101); }
static void join_flags_1(uint8_t *b) { b[OFF_BODY + 26] = 1; }
static void join_nat_bad(uint8_t *b) { b[OFF_BODY + 6] = QUILT_NAT__COUNT; }
static void join_ipmc_bad(uint8_t *b) { b[OFF_BODY + 7] = 2; }
static void join_reserved_bad(uint8_t *b) { b[OFF_BODY + 9] = 1; }
static void hb_role_3(uint8_t *b) { b[OFF_BODY + 30] = 3; }
static void hb_nat_bad(uint8_t *b) { b[OFF_BODY + 6] = 0xFF; }
static void hb_nrtt_17(uint8_t *b) {
  b[OFF_BODY + 40] = QUILT_WIRE_MAX_LANDMARKS + 1;
}
static void hb_nrtt_255(uint8_t *b) { b[OFF_BODY + 40] = 0xFF; }
static void hb_nrtt_short(uint8_t *b) { b[OFF_BODY + 40] = 2; }
static void hb_nrtt_long(uint8_t *b) { b[OFF_BODY + 40] = 4; }
static void lm_count_17(uint8_t *b) {
  b[OFF_BODY + 4] = QUILT_WIRE_MAX_LANDMARKS + 1;
}
static void lm_count_short(uint8_t *b) { b[OFF_BODY + 4] = 3; }
static void lm_count_long(uint8_t *b) { b[OFF_BODY + 4] = 5; }

/* TREE body offsets: tree 0, epoch 4, parent 8, grandparent 22, degree 36,
 * nchildren 37, children from 38, 14 bytes each (id first). */
#define OFF_TREE_PARENT (OFF_BODY + 16)
#define OFF_TREE_GRANDPARENT (OFF_BODY + 30)
#define OFF_TREE_DEGREE (OFF_BODY + 44)
#define OFF_TREE_NCHILDREN (OFF_BODY + 45)
#define OFF_TREE_CHILD(i) (OFF_BODY + 46 + 14 * (i))

static void tree_nchildren_65(uint8_t *b) {
  b[OFF_TREE_NCHILDREN] = QUILT_WIRE_MAX_CHILDREN + 1;
}
static void tree_nchildren_255(uint8_t *b) { b[OFF_TREE_NCHILDREN] = 0xFF; }
static void tree_degree_0(uint8_t *b) { b[OFF_TREE_DEGREE] = 0; }
static void tree_to_0(uint8_t *b) { put64(b + OFF_BODY, 0); }
static void tree_degree_1(uint8_t *b) {
  b[OFF_TREE_DEGREE] = 1; /* typical sample has 2 children */
}
static void tree_degree_63(uint8_t *b) {
  b[OFF_TREE_DEGREE] = QUILT_WIRE_MAX_CHILDREN - 1; /* maximal: 64 children */
}
static void tree_child_twice(uint8_t *b) {
  memcpy(b + OFF_TREE_CHILD(1), b + OFF_TREE_CHILD(0), 8);
}
static void tree_last_child_twice(uint8_t *b) {
  /* the maximal sample: last child equals child 0 */
  memcpy(b + OFF_TREE_CHILD(QUILT_WIRE_MAX_CHILDREN - 1), b + OFF_TREE_CHILD(0),
         8);
}
static void tree_child_is_parent(uint8_t *b) {
  memcpy(b + OFF_TREE_CHILD(1), b + OFF_TREE_PARENT, 8);
}
static void tree_child_is_grandparent(uint8_t *b) {
  memcpy(b + OFF_TREE_CHILD(0), b + OFF_TREE_GRANDPARENT, 8);
}
static void tree_parent_is_grandparent(uint8_t *b) {
  memcpy(b + OFF_TREE_GRANDPARENT, b + OFF_TREE_PARENT, 8);
}
static void tree_grandparent_no_parent(uint8_t *b) {
  put64(b + OFF_TREE_PARENT, 0);
}
static void tree_child_0(uint8_t *b) { put64(b + OFF_TREE_CHILD(1), 0); }
static void tree_root_child_0(uint8_t *b) {
  /* a root (no parent, no grandparent) with a child of id 0: the child may
   * not be taken for the absent parent */
  put64(b + OFF_TREE_PARENT, 0);
  put64(b + OFF_TREE_GRANDPARENT, 0);
  put64(b + OFF_TREE_CHILD(0), 0);
}
static void tree_root(uint8_t *b) {
  put64(b + OFF_TREE_PARENT, 0);
  put64(b + OFF_TREE_GRANDPARENT, 0);
}
static void orphan_parent_0(uint8_t *b) { put64(b + OFF_BODY + 8, 0); }
static void orphan_parent_1(uint8_t *b) { put64(b + OFF_BODY + 8, 1); }

static void test_decode_counts_over_limits(void **state) {
  expect_decode(QUILT_MSG_PATCH_INFO, 1, nreps_9, QUILT_ERR_MALFORMED);
  expect_decode(QUILT_MSG_PEERS, 1, peers_count_65, QUILT_ERR_MALFORMED);
  expect_decode(QUILT_MSG_MEMBERS, 1, peers_count_65, QUILT_ERR_MALFORMED);
  expect_decode(QUILT_MSG_PEERS, 0, peers_total_small, QUILT_ERR_MALFORMED);
  expect_decode(QUILT_MSG_MEMBERS, 0, peers_offset_big, QUILT_ERR_MALFORMED);
  expect_decode(QUILT_MSG_NACK, 0, nack_count_0, QUILT_ERR_MALFORMED);
  expect_decode(QUILT_MSG_NACK, 1, nack_count_33, QUILT_ERR_MALFORMED);
  expect_decode(QUILT_MSG_SESSION, 0, session_count_0, QUILT_ERR_MALFORMED);
  expect_decode(QUILT_MSG_SESSION, 1, session_count_65, QUILT_ERR_MALFORMED);
  expect_decode(QUILT_MSG_DATA, 1, data_len_over, QUILT_ERR_MALFORMED);
  /* A length that disagrees with the datagram. */
  expect_decode(QUILT_MSG_DATA, 0, data_len_short, QUILT_ERR_MALFORMED);
  expect_decode(QUILT_MSG_DATA, 0, data_len_long, QUILT_ERR_TRUNCATED);

  /* A count over its limit is refused before the list is read, so it is
   * MALFORMED even though the datagram is too short for it. */
  expect_decode(QUILT_MSG_HEARTBEAT, 1, hb_nrtt_17, QUILT_ERR_MALFORMED);
  expect_decode(QUILT_MSG_HEARTBEAT, 0, hb_nrtt_255, QUILT_ERR_MALFORMED);
  expect_decode(QUILT_MSG_LANDMARKS, 1, lm_count_17, QUILT_ERR_MALFORMED);
  expect_decode(QUILT_MSG_TREE, 1, tree_nchildren_65, QUILT_ERR_MALFORMED);
  expect_decode(QUILT_MSG_TREE, 0, tree_nchildren_255, QUILT_ERR_MALFORMED);
  /* A count that disagrees with the datagram. */
  expect_decode(QUILT_MSG_HEARTBEAT, 0, hb_nrtt_short, QUILT_ERR_MALFORMED);
  expect_decode(QUILT_MSG_HEARTBEAT, 0, hb_nrtt_long, QUILT_ERR_TRUNCATED);
  expect_decode(QUILT_MSG_LANDMARKS, 0, lm_count_short, QUILT_ERR_MALFORMED);
  expect_decode(QUILT_MSG_LANDMARKS, 0, lm_count_long, QUILT_ERR_TRUNCATED);
}

/* tree_ok in lib/wire.c: degree >= 1, nchildren <= degree, no node twice,
 * a grandparent only with a parent, no child of id 0. */
static void test_decode_tree_rules(void **state) {
  expect_decode(QUILT_MSG_TREE, 0, tree_degree_0, QUILT_ERR_MALFORMED);
  expect_decode(QUILT_MSG_TREE, 0, tree_degree_1, QUILT_ERR_MALFORMED);
  expect_decode(QUILT_MSG_TREE, 1, tree_to_0, QUILT_ERR_MALFORMED);
  expect_decode(QUILT_MSG_TREE, 1, tree_degree_63, QUILT_ERR_MALFORMED);
  expect_decode(QUILT_MSG_TREE, 0, tree_child_twice, QUILT_ERR_MALFORMED);
  expect_decode(QUILT_MSG_TREE, 1, tree_last_child_twice, QUILT_ERR_MALFORMED);
  expect_decode(QUILT_MSG_TREE, 0, tree_child_is_parent, QUILT_ERR_MALFORMED);
  expect_decode(QUILT_MSG_TREE, 0, tree_child_is_grandparent,
                QUILT_ERR_MALFORMED);
  expect_decode(QUILT_MSG_TREE, 0, tree_parent_is_grandparent,
                QUILT_ERR_MALFORMED);
  expect_decode(QUILT_MSG_TREE, 0, tree_grandparent_no_parent,
                QUILT_ERR_MALFORMED);
  expect_decode(QUILT_MSG_TREE, 0, tree_child_0, QUILT_ERR_MALFORMED);
  expect_decode(QUILT_MSG_TREE, 0, tree_root_child_0, QUILT_ERR_MALFORMED);
  /* The same datagram without the bad part is fine. */
  expect_decode(QUILT_MSG_TREE, 0, tree_root, 0);
}

static void test_decode_orphan(void **state) {
  expect_decode(QUILT_MSG_ORPHAN, 0, orphan_parent_0, QUILT_ERR_MALFORMED);
  expect_decode(QUILT_MSG_ORPHAN, 1, orphan_parent_0, QUILT_ERR_MALFORMED);
  expect_decode(QUILT_MSG_ORPHAN, 0, orphan_parent_1, 0);
}

static void test_decode_fields_out_of_range(void **state) {
  expect_decode(QUILT_MSG_PATCH_INFO, 0, patch_role_3, QUILT_ERR_MALFORMED);
  expect_decode(QUILT_MSG_HEARTBEAT, 0, hb_role_3, QUILT_ERR_MALFORMED);
  expect_decode(QUILT_MSG_HEARTBEAT, 0, hb_nat_bad, QUILT_ERR_MALFORMED);
  expect_decode(QUILT_MSG_JOIN, 0, join_flags_1, QUILT_ERR_MALFORMED);
  expect_decode(QUILT_MSG_JOIN, 0, join_nat_bad, QUILT_ERR_MALFORMED);
  expect_decode(QUILT_MSG_JOIN, 0, join_ipmc_bad, QUILT_ERR_MALFORMED);
  expect_decode(QUILT_MSG_JOIN, 0, join_reserved_bad, QUILT_ERR_MALFORMED);
  expect_decode(QUILT_MSG_DATA, 0, data_seq_0, QUILT_ERR_MALFORMED);
  expect_decode(QUILT_MSG_DATA, 0, data_flags_4, QUILT_ERR_MALFORMED);
  expect_decode(QUILT_MSG_DATA, 0, data_flags_80, QUILT_ERR_MALFORMED);
  expect_decode(QUILT_MSG_NACK, 0, nack_first_0, QUILT_ERR_MALFORMED);
  expect_decode(QUILT_MSG_NACK, 0, nack_rcount_0, QUILT_ERR_MALFORMED);
  expect_decode(QUILT_MSG_NACK, 0, nack_overflow, QUILT_ERR_MALFORMED);
  expect_decode(QUILT_MSG_NACK, 0, nack_edge, 0);
}

/* Encoding a sample changed by one field must fail with want and leave the
 * output buffer untouched. */
static void expect_encode(quilt_msg *m, int want) {
  uint8_t buf[QUILT_WIRE_MAX_DATAGRAM];
  memset(buf, 0xEE, sizeof buf);
  assert_int_equal(quilt_wire_encode(m, buf, sizeof buf), want);
  for (size_t i = 0; i < sizeof buf; i++)
    assert_int_equal(buf[i], 0xEE);
}

static void test_encode_refuses(void **state) {
  quilt_msg m;

  make_sample(&m, QUILT_MSG_LEAVE, 0);
  m.hdr.type = 0;
  expect_encode(&m, QUILT_ERR_INVAL);
  m.hdr.type = QUILT_MSG__MAX;
  expect_encode(&m, QUILT_ERR_INVAL);

  make_sample(&m, QUILT_MSG_PATCH_INFO, 1);
  m.u.patch_info.nreps = QUILT_WIRE_MAX_REPS + 1;
  expect_encode(&m, QUILT_ERR_INVAL);
  make_sample(&m, QUILT_MSG_PATCH_INFO, 0);
  m.u.patch_info.role = 3;
  expect_encode(&m, QUILT_ERR_INVAL);

  make_sample(&m, QUILT_MSG_PEERS, 1);
  m.u.peers.count = QUILT_WIRE_MAX_PEERS + 1;
  m.u.peers.offset = 0;
  expect_encode(&m, QUILT_ERR_INVAL);
  make_sample(&m, QUILT_MSG_MEMBERS, 0);
  m.u.peers.total = 12;
  expect_encode(&m, QUILT_ERR_INVAL);

  make_sample(&m, QUILT_MSG_NACK, 0);
  m.u.nack.count = 0;
  expect_encode(&m, QUILT_ERR_INVAL);
  m.u.nack.count = QUILT_WIRE_MAX_NACK + 1;
  expect_encode(&m, QUILT_ERR_INVAL);
  make_sample(&m, QUILT_MSG_NACK, 0);
  m.u.nack.ranges[1].first = 0;
  expect_encode(&m, QUILT_ERR_INVAL);
  make_sample(&m, QUILT_MSG_NACK, 0);
  m.u.nack.ranges[1].count = 0;
  expect_encode(&m, QUILT_ERR_INVAL);
  make_sample(&m, QUILT_MSG_NACK, 0);
  m.u.nack.ranges[0].first = UINT64_MAX;
  m.u.nack.ranges[0].count = 1;
  expect_encode(&m, QUILT_ERR_INVAL);

  make_sample(&m, QUILT_MSG_SESSION, 0);
  m.u.session.count = 0;
  expect_encode(&m, QUILT_ERR_INVAL);
  m.u.session.count = QUILT_WIRE_MAX_SESSION + 1;
  expect_encode(&m, QUILT_ERR_INVAL);

  make_sample(&m, QUILT_MSG_DATA, 0);
  m.u.data.seq = 0;
  expect_encode(&m, QUILT_ERR_INVAL);
  make_sample(&m, QUILT_MSG_DATA, 0);
  m.u.data.flags = 0x04;
  expect_encode(&m, QUILT_ERR_INVAL);
  make_sample(&m, QUILT_MSG_DATA, 0);
  m.u.data.payload = NULL;
  expect_encode(&m, QUILT_ERR_INVAL);
  make_sample(&m, QUILT_MSG_DATA, 1);
  m.u.data.len = QUILT_WIRE_MAX_PAYLOAD + 1;
  expect_encode(&m, QUILT_ERR_TOO_BIG);

  make_sample(&m, QUILT_MSG_JOIN, 0);
  m.u.join.flags = 1;
  expect_encode(&m, QUILT_ERR_INVAL);
  make_sample(&m, QUILT_MSG_JOIN, 0);
  m.u.join.euid.nat = QUILT_NAT__COUNT;
  expect_encode(&m, QUILT_ERR_INVAL);
  make_sample(&m, QUILT_MSG_HEARTBEAT, 0);
  m.u.heartbeat.euid.ipmc = 2;
  expect_encode(&m, QUILT_ERR_INVAL);
  make_sample(&m, QUILT_MSG_HEARTBEAT, 0);
  m.u.heartbeat.role = 3;
  expect_encode(&m, QUILT_ERR_INVAL);
  make_sample(&m, QUILT_MSG_HEARTBEAT, 1);
  m.u.heartbeat.nrtt = QUILT_WIRE_MAX_LANDMARKS + 1;
  expect_encode(&m, QUILT_ERR_INVAL);
  m.u.heartbeat.nrtt = UINT8_MAX;
  expect_encode(&m, QUILT_ERR_INVAL);

  make_sample(&m, QUILT_MSG_LANDMARKS, 1);
  m.u.landmarks.count = QUILT_WIRE_MAX_LANDMARKS + 1;
  expect_encode(&m, QUILT_ERR_INVAL);

  make_sample(&m, QUILT_MSG_ORPHAN, 0);
  m.u.orphan.parent = 0;
  expect_encode(&m, QUILT_ERR_INVAL);

  make_sample(&m, QUILT_MSG_ORPHAN, 0);
  m.hdr.type = 16; /* one past ORPHAN */
  expect_encode(&m, QUILT_ERR_INVAL);
}

/* The encoder applies tree_ok too, and writes nothing. */
static void test_encode_refuses_tree(void **state) {
  quilt_msg m;

  make_sample(&m, QUILT_MSG_TREE, 1);
  m.u.tree.nchildren = QUILT_WIRE_MAX_CHILDREN + 1;
  expect_encode(&m, QUILT_ERR_INVAL);
  make_sample(&m, QUILT_MSG_TREE, 1);
  m.u.tree.nchildren = UINT8_MAX;
  expect_encode(&m, QUILT_ERR_INVAL);

  make_sample(&m, QUILT_MSG_TREE, 0);
  m.u.tree.degree = 0;
  expect_encode(&m, QUILT_ERR_INVAL);
  make_sample(&m, QUILT_MSG_TREE, 0);
  m.u.tree.nchildren = 0;
  m.u.tree.degree = 0;
  expect_encode(&m, QUILT_ERR_INVAL);
  make_sample(&m, QUILT_MSG_TREE, 0);
  m.u.tree.degree = 1;
  expect_encode(&m, QUILT_ERR_INVAL);
  make_sample(&m, QUILT_MSG_TREE, 1);
  m.u.tree.degree = QUILT_WIRE_MAX_CHILDREN - 1;
  expect_encode(&m, QUILT_ERR_INVAL);

  make_sample(&m, QUILT_MSG_TREE, 0);
  m.u.tree.children[1].id = m.u.tree.children[0].id;
  expect_encode(&m, QUILT_ERR_INVAL);
  make_sample(&m, QUILT_MSG_TREE, 1);
  m.u.tree.children[QUILT_WIRE_MAX_CHILDREN - 1].id = m.u.tree.children[0].id;
  expect_encode(&m, QUILT_ERR_INVAL);
  make_sample(&m, QUILT_MSG_TREE, 0);
  m.u.tree.children[0].id = m.u.tree.parent.id;
  expect_encode(&m, QUILT_ERR_INVAL);
  make_sample(&m, QUILT_MSG_TREE, 0);
  m.u.tree.children[1].id = m.u.tree.grandparent.id;
  expect_encode(&m, QUILT_ERR_INVAL);
  make_sample(&m, QUILT_MSG_TREE, 0);
  m.u.tree.grandparent.id = m.u.tree.parent.id;
  expect_encode(&m, QUILT_ERR_INVAL);
  make_sample(&m, QUILT_MSG_TREE, 0);
  m.u.tree.parent.id = 0;
  expect_encode(&m, QUILT_ERR_INVAL);
  make_sample(&m, QUILT_MSG_TREE, 0);
  m.u.tree.children[1].id = 0;
  expect_encode(&m, QUILT_ERR_INVAL);
  make_sample(&m, QUILT_MSG_TREE, 0);
  m.u.tree.parent.id = 0;
  m.u.tree.grandparent.id = 0;
  m.u.tree.children[0].id = 0;
  expect_encode(&m, QUILT_ERR_INVAL);
}

static void test_encode_too_small(void **state) {
  for (unsigned t = 1; t < QUILT_MSG__MAX; t++) {
    quilt_msg m;
    uint8_t buf[QUILT_WIRE_MAX_DATAGRAM];
    int n = encode_sample(t, 1, &m, buf);
    for (int cap = 0; cap < n; cap++) {
      uint8_t *small = malloc(cap ? (size_t)cap : 1);
      assert_non_null(small);
      assert_int_equal(quilt_wire_encode(&m, small, (size_t)cap),
                       QUILT_ERR_TOO_BIG);
      free(small);
    }
    uint8_t *exact = malloc((size_t)n);
    assert_non_null(exact);
    assert_int_equal(quilt_wire_encode(&m, exact, (size_t)n), n);
    assert_memory_equal(exact, buf, (size_t)n);
    free(exact);
  }
}

static void test_type_names(void **state) {
  static const char *const names[] = {
      "?",     "JOIN",      "PATCH_INFO", "HEARTBEAT", "LEAVE",   "REJOIN",
      "PEERS", "DATA",      "NACK",       "SESSION",   "MEMBERS", "PING",
      "PONG",  "LANDMARKS", "TREE",       "ORPHAN",    "?"};
  for (unsigned t = 0; t < sizeof names / sizeof names[0]; t++)
    assert_string_equal(quilt_msg_type_name(t), names[t]);
  assert_string_equal(quilt_msg_type_name(255), "?");
  assert_string_equal(quilt_msg_type_name(0x10000u + QUILT_MSG_DATA), "?");
}

/* Mesh messages (types 20..25, bodies of lib/donet.h) go through the same
 * decoder and encoder: round trips at typical and limit sizes, every cut
 * TRUNCATED, a trailing byte MALFORMED, a short buffer TOO_BIG, a body the
 * DONet codec refuses MALFORMED / INVAL. */
static void test_mesh_messages(void **state) {
  static const int max_len[] = {16 + 1 + 16 * 23, 16 + 6,       16 + 8 + 8 * 23,
                                16 + 1,           16 + 6 + 128, 16 + 6 + 128};
  for (unsigned t = QUILT_MSG_MESH_FIRST; t <= QUILT_MSG_MESH_LAST; t++) {
    check_roundtrip(t, 0, -1);
    check_roundtrip(t, 1, max_len[t - QUILT_MSG_MESH_FIRST]);
    for (int maximal = 0; maximal <= 1; maximal++) {
      quilt_msg m, d;
      uint8_t buf[QUILT_WIRE_MAX_DATAGRAM + 1];
      int n = encode_sample(t, maximal, &m, buf);
      for (int cut = 0; cut < n; cut++) {
        int rc = decode_exact(&d, buf, (size_t)cut, NULL);
        if (rc != QUILT_ERR_TRUNCATED)
          fail_msg("type %u maximal %d cut at %d of %d: rc %d", t, maximal, cut,
                   n, rc);
      }
      buf[n] = 0;
      assert_int_equal(decode_exact(&d, buf, (size_t)n + 1, NULL),
                       QUILT_ERR_MALFORMED);
      for (int cap = 0; cap < n; cap++) {
        uint8_t *small = malloc(cap ? (size_t)cap : 1);
        assert_non_null(small);
        assert_int_equal(quilt_wire_encode(&m, small, (size_t)cap),
                         QUILT_ERR_TOO_BIG);
        free(small);
      }
    }
    quilt_msg m;
    make_sample(&m, t, 0);
    m.u.donet.type = (uint8_t)(t == QUILT_MSG_MESH_LAST ? t - 1 : t + 1);
    expect_encode(&m, QUILT_ERR_INVAL); /* body of another type */
  }
  /* Fields the DONet codec refuses. */
  quilt_msg m, d;
  uint8_t buf[QUILT_WIRE_MAX_DATAGRAM];
  int n = encode_sample(QUILT_DONET_MSG_PARTNER_REQ, 0, &m, buf);
  buf[OFF_BODY] = QUILT_DONET_NAT__COUNT; /* nat */
  assert_int_equal(decode_exact(&d, buf, (size_t)n, NULL), QUILT_ERR_MALFORMED);
  n = encode_sample(QUILT_DONET_MSG_GOSSIP, 0, &m, buf);
  buf[OFF_BODY] = QUILT_DONET_MAX_RECORDS + 1; /* count */
  assert_int_equal(decode_exact(&d, buf, (size_t)n, NULL), QUILT_ERR_MALFORMED);
  n = encode_sample(QUILT_DONET_MSG_BUFFER_MAP, 0, &m, buf);
  buf[n - 1] |= 1; /* a padding bit */
  assert_int_equal(decode_exact(&d, buf, (size_t)n, NULL), QUILT_ERR_MALFORMED);
  make_sample(&m, QUILT_DONET_MSG_PARTNER_DROP, 0);
  m.u.donet.u.drop.reason = QUILT_DONET_DROP__COUNT;
  expect_encode(&m, QUILT_ERR_INVAL);
  /* Types next to the range stay unknown. */
  n = encode_sample(QUILT_DONET_MSG_PARTNER_DROP, 0, &m, buf);
  buf[OFF_TYPE] = QUILT_MSG_MESH_FIRST - 1;
  assert_int_equal(decode_exact(&d, buf, (size_t)n, NULL), QUILT_ERR_MALFORMED);
  buf[OFF_TYPE] = QUILT_MSG_MESH_LAST + 1;
  assert_int_equal(decode_exact(&d, buf, (size_t)n, NULL), QUILT_ERR_MALFORMED);
  static const char *const names[] = {"GOSSIP",        "PARTNER_REQ",
                                      "PARTNER_REPLY", "PARTNER_DROP",
                                      "BUFFER_MAP",    "REQUEST"};
  for (unsigned t = QUILT_MSG_MESH_FIRST; t <= QUILT_MSG_MESH_LAST; t++)
    assert_string_equal(quilt_msg_type_name(t),
                        names[t - QUILT_MSG_MESH_FIRST]);
  assert_string_equal(quilt_msg_type_name(QUILT_MSG_MESH_FIRST - 1), "?");
  assert_string_equal(quilt_msg_type_name(QUILT_MSG_MESH_LAST + 1), "?");
}

static void test_group_id(void **state) {
  /* FNV-1a 32 reference values. */
  assert_int_equal(quilt_group_id(""), 0x811c9dc5u);
  assert_int_equal(quilt_group_id("a"), 0xe40c292cu);
  assert_int_equal(quilt_group_id("foobar"), 0xbf9cf968u);
  /* "akhnp9x" hashes to 0, which is mapped to 1. */
  assert_int_equal(quilt_group_id("akhnp9x"), 1);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_roundtrip_typical),
      cmocka_unit_test(test_roundtrip_max),
      cmocka_unit_test(test_roundtrip_typical_sizes),
      cmocka_unit_test(test_roundtrip_tree_shapes),
      cmocka_unit_test(test_roundtrip_empty_lists),
      cmocka_unit_test(test_data_golden),
      cmocka_unit_test(test_tree_golden),
      cmocka_unit_test(test_heartbeat_golden),
      cmocka_unit_test(test_truncation),
      cmocka_unit_test(test_trailing_byte),
      cmocka_unit_test(test_bad_header),
      cmocka_unit_test(test_decode_counts_over_limits),
      cmocka_unit_test(test_decode_fields_out_of_range),
      cmocka_unit_test(test_decode_tree_rules),
      cmocka_unit_test(test_decode_orphan),
      cmocka_unit_test(test_encode_refuses),
      cmocka_unit_test(test_encode_refuses_tree),
      cmocka_unit_test(test_encode_too_small),
      cmocka_unit_test(test_type_names),
      cmocka_unit_test(test_mesh_messages),
      cmocka_unit_test(test_group_id),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
