/*
 * donet.c -- the DONet / CoolStreaming core (see donet.h).
 *
 * Paper sections cited below are those of PAPERS.md section 3 (the paper
 * itself was read through a literature note; [R] marks our reconstruction
 * where the paper leaves a parameter or rule open).
 */
#include "donet.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "quilt.h"
#include "rng.h"

#define NS_PER_S 1000000000ull
#define NONE UINT32_MAX

/* ======================================================================
 * Codec
 * ====================================================================== */

typedef struct reader {
  const uint8_t *buf;
  size_t len;
  size_t pos;
  int short_read; /* a read ran past len; every later read fails too */
} reader;

static const uint8_t *take(reader *r, size_t n) {
  if (r->short_read || n > r->len - r->pos) {
    r->short_read = 1;
    return NULL;
  }
  const uint8_t *p = r->buf + r->pos;
  r->pos += n;
  return p;
}

static uint8_t get_u8(reader *r) {
  const uint8_t *p = take(r, 1);
  return p ? p[0] : 0;
}

static uint16_t get_u16(reader *r) {
  const uint8_t *p = take(r, 2);
  return p ? (uint16_t)((unsigned)p[0] << 8 | p[1]) : 0;
}

static uint32_t get_u32(reader *r) {
  const uint8_t *p = take(r, 4);
  if (!p)
    return 0;
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 |
         (uint32_t)p[3];
}

static uint64_t get_u64(reader *r) {
  uint64_t hi = get_u32(r);
  return hi << 32 | get_u32(r);
}

typedef struct writer {
  uint8_t *buf;
  size_t pos;
} writer; /* the encoder sizes the message first, so writes always fit */

static void put_u8(writer *w, uint8_t v) { w->buf[w->pos++] = v; }

static void put_u16(writer *w, uint16_t v) {
  put_u8(w, (uint8_t)(v >> 8));
  put_u8(w, (uint8_t)v);
}

static void put_u32(writer *w, uint32_t v) {
  put_u16(w, (uint16_t)(v >> 16));
  put_u16(w, (uint16_t)v);
}

static void put_u64(writer *w, uint64_t v) {
  put_u32(w, (uint32_t)(v >> 32));
  put_u32(w, (uint32_t)v);
}

static int record_ok(const quilt_donet_record *r) {
  return r->id != 0 && r->nat < QUILT_DONET_NAT__COUNT;
}

static int get_record(reader *r, quilt_donet_record *rec) {
  rec->id = get_u64(r);
  rec->addr.ip = get_u32(r);
  rec->addr.port = get_u16(r);
  rec->seq = get_u32(r);
  rec->nat = get_u8(r);
  rec->partners = get_u8(r);
  rec->ttl_s = get_u16(r);
  rec->hops = get_u8(r);
  if (r->short_read)
    return QUILT_ERR_TRUNCATED;
  return record_ok(rec) ? 0 : QUILT_ERR_MALFORMED;
}

static void put_record(writer *w, const quilt_donet_record *rec) {
  put_u64(w, rec->id);
  put_u32(w, rec->addr.ip);
  put_u16(w, rec->addr.port);
  put_u32(w, rec->seq);
  put_u8(w, rec->nat);
  put_u8(w, rec->partners);
  put_u16(w, rec->ttl_s);
  put_u8(w, rec->hops);
}

static size_t bitmap_bytes(uint16_t nbits) { return ((size_t)nbits + 7) / 8; }

/* The rules decode enforces on a bitmap, shared with the encoder. */
static int bitmap_ok(const quilt_donet_bitmap *b) {
  if (b->nbits > QUILT_DONET_MAX_WINDOW)
    return 0;
  if ((uint64_t)b->first + b->nbits > (uint64_t)UINT32_MAX + 1)
    return 0; /* segment ids do not wrap */
  unsigned tail = b->nbits % 8;
  if (tail && (b->bits[b->nbits / 8] & (0xFFu >> tail)))
    return 0; /* one encoding: padding bits are zero */
  return 1;
}

int quilt_donet_bitmap_get(const quilt_donet_bitmap *b, uint32_t i) {
  if (i >= b->nbits)
    return 0;
  return (b->bits[i / 8] >> (7 - i % 8)) & 1;
}

static void bitmap_set(quilt_donet_bitmap *b, uint32_t i) {
  assert(i < b->nbits);
  b->bits[i / 8] |= (uint8_t)(0x80u >> (i % 8));
}

int quilt_donet_decode(uint8_t type, const uint8_t *body, size_t len,
                       quilt_donet_msg *out) {
  quilt_donet_msg m;
  memset(&m, 0, sizeof m);
  m.type = type;
  reader r = {body, body ? len : 0, 0, 0};
  int rc = 0;
  switch (type) {
  case QUILT_DONET_MSG_GOSSIP: {
    quilt_donet_msg_gossip *g = &m.u.gossip;
    g->count = get_u8(&r);
    if (r.short_read)
      return QUILT_ERR_TRUNCATED;
    if (g->count == 0 || g->count > QUILT_DONET_MAX_RECORDS)
      return QUILT_ERR_MALFORMED;
    for (unsigned i = 0; i < g->count && rc == 0; i++)
      rc = get_record(&r, &g->records[i]);
    break;
  }
  case QUILT_DONET_MSG_PARTNER_REQ:
    m.u.req.nat = get_u8(&r);
    m.u.req.partners = get_u8(&r);
    m.u.req.uplink_kbps = get_u32(&r);
    if (r.short_read)
      return QUILT_ERR_TRUNCATED;
    if (m.u.req.nat >= QUILT_DONET_NAT__COUNT)
      return QUILT_ERR_MALFORMED;
    break;
  case QUILT_DONET_MSG_PARTNER_REPLY: {
    quilt_donet_msg_partner_reply *p = &m.u.reply;
    p->accept = get_u8(&r);
    p->nat = get_u8(&r);
    p->partners = get_u8(&r);
    p->uplink_kbps = get_u32(&r);
    p->count = get_u8(&r);
    if (r.short_read)
      return QUILT_ERR_TRUNCATED;
    if (p->accept > 1 || p->nat >= QUILT_DONET_NAT__COUNT ||
        p->count > QUILT_DONET_MAX_REFERRALS)
      return QUILT_ERR_MALFORMED;
    for (unsigned i = 0; i < p->count && rc == 0; i++)
      rc = get_record(&r, &p->records[i]);
    break;
  }
  case QUILT_DONET_MSG_PARTNER_DROP:
    m.u.drop.reason = get_u8(&r);
    if (r.short_read)
      return QUILT_ERR_TRUNCATED;
    if (m.u.drop.reason >= QUILT_DONET_DROP__COUNT)
      return QUILT_ERR_MALFORMED;
    break;
  case QUILT_DONET_MSG_BUFFER_MAP:
  case QUILT_DONET_MSG_REQUEST: {
    quilt_donet_bitmap *b = &m.u.bm;
    b->first = get_u32(&r);
    b->nbits = get_u16(&r);
    if (r.short_read)
      return QUILT_ERR_TRUNCATED;
    if (b->nbits > QUILT_DONET_MAX_WINDOW)
      return QUILT_ERR_MALFORMED;
    const uint8_t *p = take(&r, bitmap_bytes(b->nbits));
    if (!p)
      return QUILT_ERR_TRUNCATED;
    memcpy(b->bits, p, bitmap_bytes(b->nbits));
    if (!bitmap_ok(b))
      return QUILT_ERR_MALFORMED;
    break;
  }
  default:
    return QUILT_ERR_MALFORMED;
  }
  if (rc != 0)
    return rc;
  if (r.pos != r.len)
    return QUILT_ERR_MALFORMED; /* one encoding per message */
  *out = m;
  return 0;
}

/* Body length of a valid message, or QUILT_ERR_INVAL. */
static int encoded_len(const quilt_donet_msg *m) {
  switch (m->type) {
  case QUILT_DONET_MSG_GOSSIP: {
    const quilt_donet_msg_gossip *g = &m->u.gossip;
    if (g->count == 0 || g->count > QUILT_DONET_MAX_RECORDS)
      return QUILT_ERR_INVAL;
    for (unsigned i = 0; i < g->count; i++)
      if (!record_ok(&g->records[i]))
        return QUILT_ERR_INVAL;
    return 1 + g->count * QUILT_DONET_RECORD_LEN;
  }
  case QUILT_DONET_MSG_PARTNER_REQ:
    return m->u.req.nat < QUILT_DONET_NAT__COUNT ? 6 : QUILT_ERR_INVAL;
  case QUILT_DONET_MSG_PARTNER_REPLY: {
    const quilt_donet_msg_partner_reply *p = &m->u.reply;
    if (p->accept > 1 || p->nat >= QUILT_DONET_NAT__COUNT ||
        p->count > QUILT_DONET_MAX_REFERRALS)
      return QUILT_ERR_INVAL;
    for (unsigned i = 0; i < p->count; i++)
      if (!record_ok(&p->records[i]))
        return QUILT_ERR_INVAL;
    return 8 + p->count * QUILT_DONET_RECORD_LEN;
  }
  case QUILT_DONET_MSG_PARTNER_DROP:
    return m->u.drop.reason < QUILT_DONET_DROP__COUNT ? 1 : QUILT_ERR_INVAL;
  case QUILT_DONET_MSG_BUFFER_MAP:
  case QUILT_DONET_MSG_REQUEST:
    if (!bitmap_ok(&m->u.bm))
      return QUILT_ERR_INVAL;
    return 6 + (int)bitmap_bytes(m->u.bm.nbits);
  default:
    return QUILT_ERR_INVAL;
  }
}

int quilt_donet_encoded_len(const quilt_donet_msg *m) { return encoded_len(m); }

int quilt_donet_encode(const quilt_donet_msg *m, uint8_t *buf, size_t cap) {
  int n = encoded_len(m);
  if (n < 0)
    return n;
  assert(n <= (int)QUILT_DONET_MAX_BODY);
  if ((size_t)n > cap || !buf)
    return QUILT_ERR_TOO_BIG;
  writer w = {buf, 0};
  switch (m->type) {
  case QUILT_DONET_MSG_GOSSIP:
    put_u8(&w, m->u.gossip.count);
    for (unsigned i = 0; i < m->u.gossip.count; i++)
      put_record(&w, &m->u.gossip.records[i]);
    break;
  case QUILT_DONET_MSG_PARTNER_REQ:
    put_u8(&w, m->u.req.nat);
    put_u8(&w, m->u.req.partners);
    put_u32(&w, m->u.req.uplink_kbps);
    break;
  case QUILT_DONET_MSG_PARTNER_REPLY:
    put_u8(&w, m->u.reply.accept);
    put_u8(&w, m->u.reply.nat);
    put_u8(&w, m->u.reply.partners);
    put_u32(&w, m->u.reply.uplink_kbps);
    put_u8(&w, m->u.reply.count);
    for (unsigned i = 0; i < m->u.reply.count; i++)
      put_record(&w, &m->u.reply.records[i]);
    break;
  case QUILT_DONET_MSG_PARTNER_DROP:
    put_u8(&w, m->u.drop.reason);
    break;
  default: /* BUFFER_MAP, REQUEST (encoded_len refused anything else) */
    put_u32(&w, m->u.bm.first);
    put_u16(&w, m->u.bm.nbits);
    memcpy(buf + w.pos, m->u.bm.bits, bitmap_bytes(m->u.bm.nbits));
    w.pos += bitmap_bytes(m->u.bm.nbits);
    break;
  }
  assert(w.pos == (size_t)n);
  return n;
}

static int record_equal(const quilt_donet_record *a,
                        const quilt_donet_record *b) {
  return a->id == b->id && quilt_addr_eq(&a->addr, &b->addr) &&
         a->seq == b->seq && a->nat == b->nat && a->partners == b->partners &&
         a->ttl_s == b->ttl_s && a->hops == b->hops;
}

int quilt_donet_msg_equal(const quilt_donet_msg *a, const quilt_donet_msg *b) {
  if (a->type != b->type)
    return 0;
  switch (a->type) {
  case QUILT_DONET_MSG_GOSSIP:
    if (a->u.gossip.count != b->u.gossip.count ||
        a->u.gossip.count > QUILT_DONET_MAX_RECORDS)
      return 0;
    for (unsigned i = 0; i < a->u.gossip.count; i++)
      if (!record_equal(&a->u.gossip.records[i], &b->u.gossip.records[i]))
        return 0;
    return 1;
  case QUILT_DONET_MSG_PARTNER_REQ:
    return a->u.req.nat == b->u.req.nat &&
           a->u.req.partners == b->u.req.partners &&
           a->u.req.uplink_kbps == b->u.req.uplink_kbps;
  case QUILT_DONET_MSG_PARTNER_REPLY: {
    const quilt_donet_msg_partner_reply *x = &a->u.reply, *y = &b->u.reply;
    if (x->accept != y->accept || x->nat != y->nat ||
        x->partners != y->partners || x->uplink_kbps != y->uplink_kbps ||
        x->count != y->count || x->count > QUILT_DONET_MAX_REFERRALS)
      return 0;
    for (unsigned i = 0; i < x->count; i++)
      if (!record_equal(&x->records[i], &y->records[i]))
        return 0;
    return 1;
  }
  case QUILT_DONET_MSG_PARTNER_DROP:
    return a->u.drop.reason == b->u.drop.reason;
  case QUILT_DONET_MSG_BUFFER_MAP:
  case QUILT_DONET_MSG_REQUEST:
    return a->u.bm.first == b->u.bm.first && a->u.bm.nbits == b->u.bm.nbits &&
           a->u.bm.nbits <= QUILT_DONET_MAX_WINDOW &&
           memcmp(a->u.bm.bits, b->u.bm.bits, bitmap_bytes(a->u.bm.nbits)) == 0;
  default:
    return 1;
  }
}

/* ======================================================================
 * NAT rules
 * ====================================================================== */

quilt_donet_nat quilt_donet_nat_from_euid(quilt_nat nat) {
  switch (nat) {
  case QUILT_NAT_NONE:
    return QUILT_DONET_NAT_PUBLIC;
  case QUILT_NAT_FULL_CONE:
  case QUILT_NAT_RESTRICTED:
  case QUILT_NAT_PORT_RESTRICTED:
    return QUILT_DONET_NAT_CONE;
  default:
    return QUILT_DONET_NAT_RESTRICTIVE;
  }
}

/* DESIGN.md 3: "A host behind NAT opens its partnerships itself."  A public
 * node is reached by anyone; a cone NAT lets a NAT'd peer punch through,
 * but a public node has no reason to (the NAT'd node will come); a
 * restrictive NAT is only reached by those it contacted first. */
int quilt_donet_may_request(quilt_donet_nat self, quilt_donet_nat cand) {
  if (!quilt_donet_may_partner(self, cand))
    return 0;
  switch (cand) {
  case QUILT_DONET_NAT_PUBLIC:
    return 1;
  case QUILT_DONET_NAT_CONE:
    return self != QUILT_DONET_NAT_PUBLIC;
  default:
    return 0;
  }
}

int quilt_donet_may_partner(quilt_donet_nat a, quilt_donet_nat b) {
  return !(a == QUILT_DONET_NAT_RESTRICTIVE &&
           b == QUILT_DONET_NAT_RESTRICTIVE);
}

/* ======================================================================
 * Scheduler (paper 3.5)
 * ====================================================================== */

static unsigned popcount32(uint32_t x) {
  unsigned n = 0;
  for (; x; x &= x - 1)
    n++;
  return n;
}

static uint64_t sat_add(uint64_t a, uint64_t b) {
  return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

/* Time to move one segment at rate_bps, rounded up (rate_bps > 0). */
static uint64_t transfer_ns(uint32_t segment_bytes, uint64_t rate_bps) {
  assert(rate_bps > 0);
  /* segment_bytes <= 2^24, so bytes * 8e9 < 2^64 */
  uint64_t bits_ns = (uint64_t)segment_bytes * 8u * NS_PER_S;
  return (bits_ns + rate_bps - 1) / rate_bps;
}

typedef struct sched_key {
  uint32_t nsup;
  uint32_t tb;
  uint64_t deadline;
  uint32_t seg;
  uint32_t index;
} sched_key;

static int sched_key_cmp(const void *pa, const void *pb) {
  const sched_key *a = pa, *b = pb;
  if (a->nsup != b->nsup)
    return a->nsup < b->nsup ? -1 : 1;
  if (a->tb != b->tb)
    return a->tb < b->tb ? -1 : 1;
  if (a->deadline != b->deadline)
    return a->deadline < b->deadline ? -1 : 1;
  if (a->seg != b->seg)
    return a->seg < b->seg ? -1 : 1;
  return a->index < b->index ? -1 : a->index > b->index;
}

size_t quilt_donet_schedule(const quilt_donet_sched_seg *segs, size_t nsegs,
                            quilt_donet_sched_supplier *sup, size_t nsup,
                            uint32_t segment_bytes, uint64_t now_ns,
                            uint64_t horizon_ns, quilt_donet_sched_assign *out,
                            size_t max_out) {
  if (nsup > QUILT_DONET_MAX_PARTNERS)
    nsup = QUILT_DONET_MAX_PARTNERS;
  if (nsegs > QUILT_DONET_MAX_WINDOW)
    nsegs = QUILT_DONET_MAX_WINDOW;
  if (segment_bytes > QUILT_DONET_MAX_SEGMENT_BYTES)
    segment_bytes = QUILT_DONET_MAX_SEGMENT_BYTES;
  uint32_t usable = nsup == 32 ? UINT32_MAX : (1u << nsup) - 1;
  uint64_t xfer[QUILT_DONET_MAX_PARTNERS];
  for (size_t k = 0; k < nsup; k++) {
    if (sup[k].rate_bps == 0)
      usable &= ~(1u << k);
    else
      xfer[k] = transfer_ns(segment_bytes, sup[k].rate_bps);
  }

  /* Step 1: suppliers per segment; steps 2-3 share one order, since a
   * single-supplier segment is simply the rarest kind. */
  sched_key keys[QUILT_DONET_MAX_WINDOW];
  size_t nkeys = 0;
  for (size_t i = 0; i < nsegs; i++) {
    uint32_t mask = segs[i].suppliers & usable;
    if (!mask)
      continue;
    keys[nkeys].nsup = popcount32(mask);
    keys[nkeys].deadline = segs[i].deadline_ns;
    keys[nkeys].tb = segs[i].tiebreak;
    keys[nkeys].seg = segs[i].seg;
    keys[nkeys].index = (uint32_t)i;
    nkeys++;
  }
  if (nkeys > 1)
    qsort(keys, nkeys, sizeof keys[0], sched_key_cmp);

  size_t n = 0;
  for (size_t j = 0; j < nkeys && n < max_out; j++) {
    const quilt_donet_sched_seg *s = &segs[keys[j].index];
    uint32_t mask = s->suppliers & usable;
    size_t best = NONE;
    uint64_t best_arrival = 0;
    for (size_t k = 0; k < nsup; k++) {
      if (!(mask & (1u << k)))
        continue;
      uint64_t start = sup[k].free_ns > now_ns ? sup[k].free_ns : now_ns;
      if (start - now_ns >= horizon_ns)
        continue; /* its budget for this period is spent */
      uint64_t arrival = sat_add(start, xfer[k]);
      if (arrival > s->deadline_ns)
        continue; /* would miss the playback deadline */
      if (best == NONE || sup[k].rate_bps > sup[best].rate_bps) {
        best = k;
        best_arrival = arrival;
      }
    }
    if (best == NONE)
      continue;
    sup[best].free_ns = best_arrival;
    out[n].index = keys[j].index;
    out[n].supplier = (uint32_t)best;
    out[n].arrival_ns = best_arrival;
    n++;
  }
  assert(n <= max_out);
  return n;
}

/* ======================================================================
 * The core
 * ====================================================================== */

/* An mCache entry: the latest record heard for a node. */
typedef struct mentry {
  quilt_donet_record r; /* ttl_s unused: expires_ns holds it */
  uint64_t expires_ns;
  uint64_t backoff_until_ns; /* not asked to partner before this */
} mentry;

typedef struct partner {
  int used;
  uint64_t id;
  quilt_addr addr;
  uint8_t nat;
  uint64_t since_ns;
  uint64_t last_heard_ns;
  /* usefulness since the last refinement (paper 3.3) */
  uint64_t score_since_ns;
  uint32_t score_from, score_to;
  uint64_t segs_from, segs_to;
  /* bandwidth estimate from it [R: PAPERS 3.7 leaves this open] */
  uint64_t rate_bps;
  uint64_t rate_hint_bps; /* the first estimate, which an idle estimate
                             drifts back to */
  uint64_t last_arrival_ns;
  uint64_t free_ns; /* expected end of what was asked of it */
  uint32_t outstanding;
  int has_bm;
  quilt_donet_bitmap bm; /* its latest buffer map */
  uint64_t bm_sent_ns;   /* when we last sent it a map */
} partner;

typedef struct pending {
  uint64_t id;
  quilt_addr addr;
  uint64_t expires_ns;
} pending;

/* An outstanding segment request; the table is a ring indexed by
 * seg % window, so it holds at most one request per window slot. */
typedef struct request {
  uint32_t seg;
  uint8_t active;
  uint8_t slot; /* partner slot */
  uint64_t sent_ns;
  uint64_t expires_ns;
} request;

struct quilt_donet {
  quilt_donet_config cfg;
  quilt_donet_callbacks cb;
  void *ctx;
  quilt_rng rng;
  uint32_t W; /* window, segments */

  /* membership: at most cfg.mcache_max entries */
  mentry *mc;
  uint32_t nmc;
  uint32_t own_seq;

  /* partnership: at most partners_max partners, as many pending requests */
  partner p[QUILT_DONET_MAX_PARTNERS];
  uint32_t np;
  pending pend[QUILT_DONET_MAX_PARTNERS];
  uint32_t npend;

  /* stream clock: segment ref_seg has time ref_ts */
  int clock_known;
  uint32_t ref_seg;
  uint64_t ref_ts;

  /* window [base, base + W) of held segments (started: base is set);
   * playback from play_start (playing: the clock is known and
   * play_start final) */
  int started, playing;
  uint32_t play_start;
  uint64_t play_next; /* up to 2^32: every segment id played */
  uint32_t base, head;
  int have_any;
  uint8_t have[QUILT_DONET_MAX_WINDOW / 8]; /* bit s % W */

  request *req; /* W entries */
  uint32_t nreq;

  uint64_t next_sched, next_bm, next_gossip, next_refine;
  uint64_t next_ask_ns;    /* referrals asked of a partner not before this */
  uint64_t progress_ns;    /* last new segment (or creation) */
  uint64_t local_ns;       /* last segment injected here (publish, or received
                              from node 0); 0 = never */
  uint64_t full_bm_ns;     /* last regular (whole-window) buffer map round */
  uint64_t next_starve_ns; /* a starving node drops a partner not before */
  quilt_donet_stats st;
};

/* ---- helpers ---- */

static uint64_t rand_below64(quilt_donet *d, uint64_t bound) {
  return bound ? quilt_rng_range(&d->rng, 0, bound - 1) : 0;
}

static uint64_t clamp_rate(uint64_t r) {
  if (r < QUILT_DONET_RATE_MIN_BPS)
    return QUILT_DONET_RATE_MIN_BPS;
  if (r > QUILT_DONET_RATE_MAX_BPS)
    return QUILT_DONET_RATE_MAX_BPS;
  return r;
}

static void send_msg(quilt_donet *d, uint64_t to, const quilt_addr *addr,
                     const quilt_donet_msg *m) {
  uint8_t buf[QUILT_DONET_MAX_BODY];
  int n = quilt_donet_encode(m, buf, sizeof buf);
  assert(n > 0); /* the core builds only valid messages */
  if (n <= 0)
    return;
  unsigned t = m->type - QUILT_DONET_MSG_FIRST;
  d->st.msgs_sent[t]++;
  d->st.bytes_sent[t] += (uint64_t)n;
  d->cb.send(d->ctx, to, addr, m->type, buf, (size_t)n);
}

static void report(quilt_donet *d, uint64_t seg, uint64_t count,
                   quilt_donet_seg_status status, uint64_t now) {
  assert(seg + count <= (uint64_t)UINT32_MAX + 1);
  /* a run of 2^32 does not fit the callback's count: split it */
  while (count > UINT32_MAX) {
    report(d, seg, UINT32_MAX, status, now);
    seg += UINT32_MAX;
    count -= UINT32_MAX;
  }
  if (count == 0)
    return;
  switch (status) {
  case QUILT_DONET_SEG_IN_TIME:
    d->st.in_time += count;
    break;
  case QUILT_DONET_SEG_MISSED:
    d->st.missed += count;
    break;
  case QUILT_DONET_SEG_LATE:
    d->st.late += count;
    break;
  }
  if (d->cb.segment)
    d->cb.segment(d->ctx, (uint32_t)seg, (uint32_t)count, status, now);
}

/* ---- stream clock and deadlines ---- */

/* Playback deadline of seg, UINT64_MAX when the clock is unknown.  Clamped
 * to [0, UINT64_MAX - 1]. */
static uint64_t deadline_of(const quilt_donet *d, uint32_t seg) {
  if (!d->clock_known)
    return UINT64_MAX;
  int64_t diff = (int64_t)seg - (int64_t)d->ref_seg; /* |diff| < 2^32 */
  uint64_t mag = (uint64_t)(diff < 0 ? -diff : diff);
  uint64_t period = d->cfg.segment_period_ns;
  uint64_t off =
      mag > (UINT64_MAX / 2) / period ? UINT64_MAX / 2 : mag * period;
  uint64_t t;
  if (diff < 0)
    t = d->ref_ts > off ? d->ref_ts - off : 0;
  else
    t = sat_add(d->ref_ts, off);
  t = sat_add(t, d->cfg.playback_delay_ns);
  return t == UINT64_MAX ? UINT64_MAX - 1 : t;
}

/* ---- the window ---- */

static uint64_t win_end(const quilt_donet *d) { /* one past the last slot */
  return (uint64_t)d->base + d->W;
}

static int in_window(const quilt_donet *d, uint32_t seg) {
  return d->started && seg >= d->base && seg < win_end(d);
}

static int have(const quilt_donet *d, uint32_t seg) {
  if (!in_window(d, seg))
    return 0;
  uint32_t i = seg % d->W;
  return (d->have[i / 8] >> (i % 8)) & 1;
}

static void set_have(quilt_donet *d, uint32_t seg, int on) {
  assert(in_window(d, seg));
  uint32_t i = seg % d->W;
  if (on)
    d->have[i / 8] |= (uint8_t)(1u << (i % 8));
  else
    d->have[i / 8] &= (uint8_t) ~(1u << (i % 8));
}

static void cancel_request(quilt_donet *d, request *r) {
  assert(r->active && d->nreq > 0);
  partner *p = &d->p[r->slot];
  if (p->used && p->outstanding > 0 && --p->outstanding == 0)
    p->free_ns = 0;
  r->active = 0;
  d->nreq--;
}

static void start_at(quilt_donet *d, uint32_t seg) {
  assert(!d->started);
  d->started = 1;
  d->playing = 0;
  d->play_start = d->play_next = d->base = d->head = seg;
  d->have_any = 0;
  memset(d->have, 0, sizeof d->have);
}

/* Reports segments [from, to) of the playback range as MISSED where not
 * held, in runs; at most W + 1 runs. */
static void report_missed_range(quilt_donet *d, uint64_t from, uint64_t to,
                                uint64_t now) {
  uint64_t s = from;
  while (s < to) {
    if (s >= win_end(d) || s < d->base) {
      /* outside the window nothing is held: one run up to the window or
       * the end */
      uint64_t stop = s < d->base ? (d->base < to ? d->base : to) : to;
      report(d, s, stop - s, QUILT_DONET_SEG_MISSED, now);
      s = stop;
      continue;
    }
    if (have(d, (uint32_t)s)) {
      s++;
      continue;
    }
    uint64_t run = s;
    while (s < to && s < win_end(d) && !have(d, (uint32_t)s))
      s++;
    report(d, run, s - run, QUILT_DONET_SEG_MISSED, now);
  }
}

/* The first segment at or after |from| whose deadline is after t (2^32
 * when none is): an exponential then a binary search, so no signed
 * division of times.  The clock must be known. */
static uint64_t first_due_after(const quilt_donet *d, uint64_t from,
                                uint64_t t) {
  assert(d->clock_known);
  if (from > UINT32_MAX || deadline_of(d, (uint32_t)from) > t)
    return from;
  uint64_t lo = from, step = 1, hi;
  for (;;) { /* find hi with deadline(hi) > t, or hi = 2^32 */
    hi = lo + step;
    if (hi > UINT32_MAX) {
      hi = (uint64_t)UINT32_MAX + 1; /* past every id */
      break;
    }
    if (deadline_of(d, (uint32_t)hi) > t)
      break;
    lo = hi;
    step *= 2;
  }
  while (hi - lo > 1) { /* invariant: deadline(lo) <= t < deadline(hi) */
    uint64_t mid = lo + (hi - lo) / 2;
    if (deadline_of(d, (uint32_t)mid) <= t)
      lo = mid;
    else
      hi = mid;
  }
  return hi;
}

/* Playback accounting: every segment whose deadline passed and was not
 * received is MISSED (paper 3.6's continuity index).  Playback starts once
 * the clock is known, at the first segment fetched or, if that one is too
 * close to its deadline, at the first one that leaves a round of buffer
 * maps and scheduling to fetch it (the paper's node buffers before it
 * plays; [R] for the margin). */
static void advance_play(quilt_donet *d, uint64_t now) {
  if (!d->started || d->cfg.is_source || !d->clock_known)
    return;
  if (!d->playing) {
    uint64_t margin = sat_add(d->cfg.sched_period_ns, d->cfg.bm_period_ns);
    uint64_t first = first_due_after(d, d->play_start, sat_add(now, margin));
    d->play_start = first > UINT32_MAX ? UINT32_MAX : (uint32_t)first;
    d->play_next = first;
    d->playing = 1;
    return;
  }
  uint64_t next = first_due_after(d, d->play_next, now);
  report_missed_range(d, d->play_next, next, now);
  d->play_next = next;
}

/* Slides the window so that it starts at new_base: segments below it are
 * forgotten (and those not yet played and not held are MISSED), their
 * requests cancelled. */
static void slide(quilt_donet *d, uint32_t new_base, uint64_t now) {
  assert(new_base > d->base);
  if (!d->cfg.is_source && d->playing && d->play_next < new_base) {
    report_missed_range(d, d->play_next, new_base, now);
    d->play_next = new_base;
  }
  uint64_t stop = (uint64_t)new_base < win_end(d) ? new_base : win_end(d);
  for (uint64_t s = d->base; s < stop; s++) {
    set_have(d, (uint32_t)s, 0);
    request *r = &d->req[s % d->W];
    if (r->active && r->seg == s)
      cancel_request(d, r);
  }
  if ((uint64_t)new_base >= win_end(d))
    memset(d->have, 0, sizeof d->have);
  d->base = new_base;
  if (d->have_any && d->head < new_base)
    d->have_any = 0;
  if (d->play_next < d->base)
    d->play_next = d->base; /* the source, or not playing yet */
  if (!d->playing && d->play_start < d->base)
    d->play_start = d->base;
}

/* Makes room for seg in the window (seg >= base). */
static void window_take(quilt_donet *d, uint32_t seg, uint64_t now) {
  if ((uint64_t)seg >= win_end(d))
    slide(d, seg - d->W + 1, now);
  set_have(d, seg, 1);
  if (!d->have_any || seg > d->head)
    d->head = seg;
  d->have_any = 1;
}

/* ---- membership (paper 3.2) ---- */

static mentry *mc_find(quilt_donet *d, uint64_t id) {
  for (uint32_t i = 0; i < d->nmc; i++)
    if (d->mc[i].r.id == id)
      return &d->mc[i];
  return NULL;
}

static const mentry *mc_find_const(const quilt_donet *d, uint64_t id) {
  for (uint32_t i = 0; i < d->nmc; i++)
    if (d->mc[i].r.id == id)
      return &d->mc[i];
  return NULL;
}

static void mc_remove_at(quilt_donet *d, uint32_t i) {
  assert(i < d->nmc);
  d->mc[i] = d->mc[--d->nmc];
}

static void mc_remove(quilt_donet *d, uint64_t id) {
  mentry *e = mc_find(d, id);
  if (e)
    mc_remove_at(d, (uint32_t)(e - d->mc));
}

/* Merges a record heard at now.  ttl_s 0 is a departure.  Returns 0 or
 * QUILT_ERR_LIMIT (no room for it). */
static int mc_merge(quilt_donet *d, const quilt_donet_record *r, uint64_t now) {
  if (!record_ok(r) || r->id == d->cfg.id)
    return 0; /* (a driver's own decoder may pass what ours refuses) */
  if (r->ttl_s == 0) {
    mc_remove(d, r->id);
    return 0;
  }
  uint64_t ttl = (uint64_t)r->ttl_s * NS_PER_S;
  if (ttl > d->cfg.mcache_ttl_ns)
    ttl = d->cfg.mcache_ttl_ns; /* nobody extends a record past our TTL */
  uint64_t expires = sat_add(now, ttl);
  mentry *e = mc_find(d, r->id);
  if (e) {
    if (r->seq > e->r.seq) {
      e->r = *r;
      e->expires_ns = expires;
      d->st.gossip_records_updated++;
    } else if (r->seq == e->r.seq && expires > e->expires_ns) {
      e->expires_ns = expires; /* same record by another path */
    }
    return 0;
  }
  if (d->nmc == d->cfg.mcache_max) {
    /* Full: replace the entry closest to expiry if the new one outlives
     * it (bounded partial view, SCAM). */
    uint32_t victim = 0;
    for (uint32_t i = 1; i < d->nmc; i++)
      if (d->mc[i].expires_ns < d->mc[victim].expires_ns)
        victim = i;
    if (d->mc[victim].expires_ns >= expires)
      return QUILT_ERR_LIMIT;
    mc_remove_at(d, victim);
    d->st.mcache_evicted++;
  }
  e = &d->mc[d->nmc++];
  e->r = *r;
  e->expires_ns = expires;
  e->backoff_until_ns = 0;
  d->st.gossip_records_new++;
  return 0;
}

static void mc_backoff(quilt_donet *d, uint64_t id, uint64_t now) {
  mentry *e = mc_find(d, id);
  if (e)
    e->backoff_until_ns = sat_add(now, d->cfg.reject_backoff_ns);
}

static quilt_donet_record own_record(const quilt_donet *d, uint8_t hops) {
  quilt_donet_record r;
  memset(&r, 0, sizeof r);
  r.id = d->cfg.id;
  r.addr = d->cfg.addr;
  r.seq = d->own_seq;
  r.nat = d->cfg.nat;
  r.partners = d->np > 255 ? 255 : (uint8_t)d->np;
  r.ttl_s = (uint16_t)(d->cfg.mcache_ttl_ns / NS_PER_S);
  r.hops = hops;
  return r;
}

static quilt_donet_record entry_record(const mentry *e, uint64_t now,
                                       uint8_t hops) {
  quilt_donet_record r = e->r;
  uint64_t left = e->expires_ns > now ? (e->expires_ns - now) / NS_PER_S : 0;
  if (left > QUILT_DONET_MAX_TTL_S)
    left = QUILT_DONET_MAX_TTL_S;
  r.ttl_s = left ? (uint16_t)left : 1; /* 0 would mean "left" */
  r.hops = hops;
  return r;
}

static void mc_expire(quilt_donet *d, uint64_t now) {
  for (uint32_t i = 0; i < d->nmc;) {
    if (d->mc[i].expires_ns <= now) {
      mc_remove_at(d, i);
      d->st.mcache_expired++;
    } else {
      i++;
    }
  }
}

/* Picks up to max distinct random indexes of mCache entries that pass
 * keep(); returns how many.  idx has room for QUILT_DONET_MAX_MCACHE. */
typedef int (*mc_pred)(const quilt_donet *d, const mentry *e, const void *arg,
                       uint64_t now);

static uint32_t mc_sample(quilt_donet *d, mc_pred keep, const void *arg,
                          uint64_t now, uint32_t *idx, uint32_t max) {
  uint32_t n = 0;
  for (uint32_t i = 0; i < d->nmc; i++)
    if (keep(d, &d->mc[i], arg, now))
      idx[n++] = i;
  /* partial Fisher-Yates */
  uint32_t k = n < max ? n : max;
  for (uint32_t i = 0; i < k; i++) {
    uint32_t j = i + quilt_rng_below(&d->rng, n - i);
    uint32_t t = idx[i];
    idx[i] = idx[j];
    idx[j] = t;
  }
  return k;
}

/* ---- partners (paper 3.3) ---- */

static int find_partner(const quilt_donet *d, uint64_t id) {
  if (id == 0)
    return -1;
  for (int i = 0; i < (int)QUILT_DONET_MAX_PARTNERS; i++)
    if (d->p[i].used && d->p[i].id == id)
      return i;
  return -1;
}

static int find_pending(const quilt_donet *d, uint64_t id) {
  for (uint32_t i = 0; i < d->npend; i++)
    if (d->pend[i].id == id)
      return (int)i;
  return -1;
}

static void remove_pending(quilt_donet *d, int i) {
  assert(i >= 0 && (uint32_t)i < d->npend);
  d->pend[i] = d->pend[--d->npend];
}

/* A buffer map of [base, head], or with `recent` of its newest part only:
 * the segments of one regular period (a receiver merges maps, see
 * merge_bm, so a partial map adds to what it knew). */
/* Whether partner p's latest map shows every segment we hold that it can
 * still use (within its window): then it has nothing to pull from us, and
 * a map from us tells it nothing.  (Checked when its map arrives instead,
 * this skipped twice as many maps, and cost both meshes a fifth more
 * latency: a partner ahead then may not be by our next map.)  O(window). */
static int partner_ahead(const quilt_donet *d, const partner *p) {
  if (!p->has_bm || !d->started || !d->have_any)
    return 0;
  const quilt_donet_bitmap *b = &p->bm;
  for (uint64_t seg = d->base; seg <= d->head; seg++) {
    if (!have(d, (uint32_t)seg) || seg < b->first)
      continue; /* not ours, or slid out of its window */
    if (seg >= (uint64_t)b->first + b->nbits ||
        !quilt_donet_bitmap_get(b, (uint32_t)(seg - b->first)))
      return 0;
  }
  return 1;
}

static void send_bm(quilt_donet *d, partner *p, int recent, uint64_t now) {
  quilt_donet_msg m;
  memset(&m, 0, sizeof m);
  m.type = QUILT_DONET_MSG_BUFFER_MAP;
  quilt_donet_bitmap *b = &m.u.bm;
  if (d->started && d->have_any) {
    /* Only [base, head]: nothing is held past the newest segment. */
    b->first = d->base;
    if (recent) {
      uint64_t span = d->cfg.bm_period_ns / d->cfg.segment_period_ns + 1;
      if ((uint64_t)d->head - d->base + 1 > span)
        b->first = (uint32_t)(d->head - span + 1);
    }
    b->nbits = (uint16_t)(d->head - b->first + 1);
    assert(b->nbits <= d->W);
    for (uint32_t i = 0; i < b->nbits; i++)
      if (have(d, b->first + i))
        bitmap_set(b, i);
  } else {
    b->first =
        d->started && d->play_next <= UINT32_MAX ? (uint32_t)d->play_next : 0;
  }
  p->bm_sent_ns = now;
  send_msg(d, p->id, &p->addr, &m);
}

static int add_partner(quilt_donet *d, uint64_t id, const quilt_addr *addr,
                       uint8_t nat, uint32_t uplink_kbps,
                       uint8_t their_partners, uint64_t now) {
  assert(find_partner(d, id) < 0);
  if (d->np >= d->cfg.partners_max)
    return -1;
  int slot = -1;
  for (int i = 0; i < (int)QUILT_DONET_MAX_PARTNERS && slot < 0; i++)
    if (!d->p[i].used)
      slot = i;
  assert(slot >= 0);
  partner *p = &d->p[slot];
  memset(p, 0, sizeof *p);
  p->used = 1;
  p->id = id;
  p->addr = *addr;
  p->nat = nat;
  p->since_ns = p->last_heard_ns = p->score_since_ns = now;
  /* First estimate [R]: its uplink shared among its partners and us; with
   * no uplink known, the stream rate. */
  uint64_t rate = uplink_kbps ? (uint64_t)uplink_kbps * 1000u /
                                    ((uint64_t)their_partners + 1)
                              : (uint64_t)d->cfg.segment_bytes * 8u * NS_PER_S /
                                    d->cfg.segment_period_ns;
  p->rate_bps = p->rate_hint_bps = clamp_rate(rate);
  d->np++;
  d->st.partners_added++;
  int pi = find_pending(d, id);
  if (pi >= 0)
    remove_pending(d, pi);
  if (d->cb.partner)
    d->cb.partner(d->ctx, id, addr, nat, 1);
  send_bm(d, p, 0, now); /* so that it can schedule at once */
  return slot;
}

static void remove_partner(quilt_donet *d, int slot) {
  partner *p = &d->p[slot];
  assert(p->used && d->np > 0);
  for (uint32_t i = 0; i < d->W; i++)
    if (d->req[i].active && d->req[i].slot == slot)
      cancel_request(d, &d->req[i]); /* re-requested elsewhere */
  p->used = 0;
  d->np--;
  if (d->cb.partner)
    d->cb.partner(d->ctx, p->id, &p->addr, p->nat, 0);
}

static void send_drop(quilt_donet *d, uint64_t to, const quilt_addr *addr,
                      uint8_t reason) {
  quilt_donet_msg m;
  memset(&m, 0, sizeof m);
  m.type = QUILT_DONET_MSG_PARTNER_DROP;
  m.u.drop.reason = reason;
  send_msg(d, to, addr, &m);
}

static int eligible_candidate(const quilt_donet *d, const mentry *e,
                              const void *arg, uint64_t now) {
  (void)arg;
  return e->backoff_until_ns <= now &&
         quilt_donet_may_request(d->cfg.nat, e->r.nat) &&
         find_partner(d, e->r.id) < 0 && find_pending(d, e->r.id) < 0;
}

/* Sends partner requests until partners + pending reach M.  Among the
 * eligible mCache entries, two are drawn at random and the one with fewer
 * partners (the num_partner of the membership record) is asked [R]. */
static quilt_donet_msg partner_req(const quilt_donet *d) {
  quilt_donet_msg m;
  memset(&m, 0, sizeof m);
  m.type = QUILT_DONET_MSG_PARTNER_REQ;
  m.u.req.nat = d->cfg.nat;
  m.u.req.partners = d->np > 255 ? 255 : (uint8_t)d->np;
  m.u.req.uplink_kbps = d->cfg.uplink_kbps;
  return m;
}

static void acquire_partners(quilt_donet *d, uint64_t now) {
  if (d->np + d->npend >= d->cfg.partners)
    return;
  uint32_t idx[QUILT_DONET_MAX_MCACHE];
  uint32_t n = mc_sample(d, eligible_candidate, NULL, now, idx, d->nmc);
  uint32_t next = 0;
  while (d->np + d->npend < d->cfg.partners && next < n &&
         d->npend < QUILT_DONET_MAX_PARTNERS) {
    const mentry *e = &d->mc[idx[next]];
    if (next + 1 < n && d->mc[idx[next + 1]].r.partners < e->r.partners)
      e = &d->mc[idx[next + 1]], idx[next + 1] = idx[next];
    next++;
    quilt_donet_msg m = partner_req(d);
    pending *pe = &d->pend[d->npend++];
    pe->id = e->r.id;
    pe->addr = e->r.addr;
    pe->expires_ns = sat_add(now, d->cfg.partner_req_timeout_ns);
    d->st.partner_reqs_sent++;
    send_msg(d, pe->id, &pe->addr, &m);
  }
  /* Out of candidates: ask a partner for referrals with a repeated
   * request (its reply, an accept, carries some), at most once per backoff
   * period [R: the gossip alone is slow to reach a new NAT'd node]. */
  if (d->np + d->npend < d->cfg.partners && d->np > 0 &&
      now >= d->next_ask_ns) {
    uint32_t pick = quilt_rng_below(&d->rng, d->np);
    for (uint32_t k = 0; k < QUILT_DONET_MAX_PARTNERS; k++)
      if (d->p[k].used && pick-- == 0) {
        quilt_donet_msg m = partner_req(d);
        send_msg(d, d->p[k].id, &d->p[k].addr, &m);
        break;
      }
    d->next_ask_ns = sat_add(now, d->cfg.reject_backoff_ns);
  }
}

typedef struct referral_arg {
  uint64_t exclude;
  uint8_t nat; /* the requester's class */
} referral_arg;

static int referral_ok(const quilt_donet *d, const mentry *e, const void *arg,
                       uint64_t now) {
  const referral_arg *a = arg;
  (void)d;
  return e->expires_ns > now && e->r.id != a->exclude &&
         quilt_donet_may_request(a->nat, e->r.nat);
}

static void send_reply(quilt_donet *d, uint64_t to, const quilt_addr *addr,
                       uint8_t nat, int accept, uint64_t now) {
  quilt_donet_msg m;
  memset(&m, 0, sizeof m);
  m.type = QUILT_DONET_MSG_PARTNER_REPLY;
  quilt_donet_msg_partner_reply *r = &m.u.reply;
  r->accept = (uint8_t)accept;
  r->nat = d->cfg.nat;
  r->partners = d->np > 255 ? 255 : (uint8_t)d->np;
  r->uplink_kbps = d->cfg.uplink_kbps;
  /* Candidates the requester may ask (the deputy's answer, paper 3.1):
   * this node's own partners first, in random order, then random mCache
   * entries [R].  A partner is attached to the overlay already, so a
   * newcomer referred to it joins the connected part of the mesh; random
   * mCache entries alone let the late joiners of a small mesh, all
   * referred to one another once the first ones are full, form a component
   * with no path to the source (seen with 32-host patches). */
  uint32_t want = d->cfg.gossip_records < QUILT_DONET_MAX_REFERRALS
                      ? d->cfg.gossip_records
                      : QUILT_DONET_MAX_REFERRALS;
  uint32_t pk[QUILT_DONET_MAX_PARTNERS], npk = 0;
  for (uint32_t k = 0; k < QUILT_DONET_MAX_PARTNERS; k++)
    if (d->p[k].used && d->p[k].id != to &&
        quilt_donet_may_request((quilt_donet_nat)nat,
                                (quilt_donet_nat)d->p[k].nat))
      pk[npk++] = k;
  for (uint32_t i = 0; i < npk && r->count < want; i++) {
    uint32_t j = i + quilt_rng_below(&d->rng, npk - i);
    uint32_t t = pk[i];
    pk[i] = pk[j];
    pk[j] = t;
    const partner *p = &d->p[pk[i]];
    quilt_donet_record *rec = &r->records[r->count++];
    const mentry *e = mc_find_const(d, p->id);
    if (e) {
      *rec = entry_record(e, now, 0);
    } else {
      memset(rec, 0, sizeof *rec);
      rec->id = p->id;
      rec->nat = p->nat;
      rec->ttl_s = (uint16_t)(d->cfg.mcache_ttl_ns / NS_PER_S);
    }
    rec->addr = p->addr; /* where it is reached from here */
  }
  uint32_t idx[QUILT_DONET_MAX_MCACHE];
  referral_arg a = {to, nat};
  uint32_t n = mc_sample(d, referral_ok, &a, now, idx, want - r->count);
  for (uint32_t i = 0; i < n; i++) {
    if (find_partner(d, d->mc[idx[i]].r.id) >= 0)
      continue; /* given above */
    r->records[r->count++] = entry_record(&d->mc[idx[i]], now, 0);
  }
  send_msg(d, to, addr, &m);
}

/* ---- message handlers ---- */

static void on_partner_req(quilt_donet *d, uint64_t from,
                           const quilt_addr *addr,
                           const quilt_donet_msg_partner_req *q, uint64_t now) {
  /* Learn the requester (seq 0: any gossip of it is newer). */
  quilt_donet_record rec;
  memset(&rec, 0, sizeof rec);
  rec.id = from;
  rec.addr = *addr;
  rec.nat = q->nat;
  rec.partners = q->partners;
  rec.ttl_s = (uint16_t)(d->cfg.mcache_ttl_ns / NS_PER_S);
  /* first-hand news, worth gossiping on */
  rec.hops = d->cfg.gossip_hops > 0 ? d->cfg.gossip_hops - 1 : 0;
  (void)mc_merge(d, &rec, now);

  int slot = find_partner(d, from);
  if (slot >= 0) { /* a repeat: our accept was lost */
    d->p[slot].addr = *addr;
    send_reply(d, from, addr, q->nat, 1, now);
    return;
  }
  if (!quilt_donet_may_partner(d->cfg.nat, q->nat)) {
    d->st.rejected_nat++;
    send_reply(d, from, addr, q->nat, 0, now);
    return;
  }
  /* A node that has its own request out to the requester answers as
   * well: the crossing requests then meet in one partnership. */
  int pi = find_pending(d, from);
  if (pi >= 0)
    remove_pending(d, pi);
  if (d->np >= d->cfg.partners_max) {
    send_reply(d, from, addr, q->nat, 0, now);
    return;
  }
  send_reply(d, from, addr, q->nat, 1, now);
  (void)add_partner(d, from, addr, q->nat, q->uplink_kbps, q->partners, now);
}

static void on_partner_reply(quilt_donet *d, uint64_t from,
                             const quilt_addr *addr,
                             const quilt_donet_msg_partner_reply *r,
                             uint64_t now) {
  for (unsigned i = 0; i < r->count; i++)
    (void)mc_merge(d, &r->records[i], now);
  int pi = find_pending(d, from);
  if (pi >= 0)
    remove_pending(d, pi);
  if (!r->accept) {
    d->st.partner_rejects++;
    mc_backoff(d, from, now);
    return;
  }
  d->st.partner_accepts++;
  if (find_partner(d, from) >= 0)
    return;
  /* An accept we did not ask for (or after giving up) is refused with a
   * DROP, so that neither side keeps half a partnership. */
  if (pi < 0 || !quilt_donet_may_partner(d->cfg.nat, r->nat) ||
      add_partner(d, from, addr, r->nat, r->uplink_kbps, r->partners, now) <
          0) {
    d->st.ignored_msgs++;
    send_drop(d, from, addr, QUILT_DONET_DROP_FULL);
  }
}

static void on_drop(quilt_donet *d, uint64_t from,
                    const quilt_donet_msg_partner_drop *m, uint64_t now) {
  int slot = find_partner(d, from);
  if (slot < 0) {
    d->st.ignored_msgs++;
    return;
  }
  remove_partner(d, slot);
  d->st.partners_dropped_remote++;
  if (m->reason == QUILT_DONET_DROP_LEAVE)
    mc_remove(d, from);
  else
    mc_backoff(d, from, now); /* it did not want us: ask others first */
}

static void on_request(quilt_donet *d, partner *p,
                       const quilt_donet_bitmap *b) {
  /* Serve in segment order (paper 3.4); the driver paces its uplink. */
  for (uint32_t i = 0; i < b->nbits; i++) {
    if (!quilt_donet_bitmap_get(b, i))
      continue;
    uint32_t seg = b->first + i; /* no wrap: checked by the decoder */
    if (!have(d, seg)) {
      d->st.segs_unavailable++;
      continue;
    }
    d->st.segs_sent++;
    p->segs_to++;
    if (p->score_to < UINT32_MAX)
      p->score_to++;
    d->cb.send_segment(d->ctx, p->id, &p->addr, seg);
  }
}

static void pull(quilt_donet *d, uint64_t now);
static void merge_bm(quilt_donet *d, partner *p, const quilt_donet_bitmap *b);

static int partner_has(const partner *p, uint32_t seg);

/* A segment that became available here from outside the mesh (published
 * here, or bridged in by a representative) goes at once to up to push_max
 * partners that do not show it [R]: pulled, it would wait for our next map
 * and their next request, a round trip and half a map period, and every
 * host below them as long.  The same partners each time (by slot), so
 * that they are the stream's first hop and the others pull from them.
 * Each is then taken to hold it: no map or request for it is needed. */
static void push_local(quilt_donet *d, uint32_t seg) {
  uint32_t sent = 0;
  for (uint32_t k = 0; k < QUILT_DONET_MAX_PARTNERS && sent < d->cfg.push_max;
       k++) {
    partner *p = &d->p[k];
    if (!p->used || partner_has(p, seg))
      continue;
    d->st.segs_sent++;
    d->st.segs_pushed++;
    p->segs_to++;
    if (p->score_to < UINT32_MAX)
      p->score_to++;
    d->cb.send_segment(d->ctx, p->id, &p->addr, seg);
    quilt_donet_bitmap one;
    memset(&one, 0, sizeof one);
    one.first = seg;
    one.nbits = 1;
    bitmap_set(&one, 0);
    merge_bm(d, p, &one);
    sent++;
  }
}

/* A partner's holdings only grow, but for what slides out of its window
 * (the same window as ours), so a new map adds to the last one [R]: the
 * merged map keeps the newest W segments of both.  This lets a sender
 * send the newest part alone (send_bm's `recent`), and makes a map that
 * arrives out of order harmless. */
static void merge_bm(quilt_donet *d, partner *p, const quilt_donet_bitmap *b) {
  if (!p->has_bm || p->bm.nbits == 0) {
    p->bm = *b;
    p->has_bm = 1;
    return;
  }
  if (b->nbits == 0)
    return; /* nothing new; keep what it held */
  const quilt_donet_bitmap *o = &p->bm;
  uint64_t end_o = (uint64_t)o->first + o->nbits;
  uint64_t end_n = (uint64_t)b->first + b->nbits;
  uint64_t end = end_o > end_n ? end_o : end_n;
  uint64_t start = o->first < b->first ? o->first : b->first;
  if (end - start > d->W)
    start = end - d->W;
  quilt_donet_bitmap mg;
  memset(&mg, 0, sizeof mg);
  mg.first = (uint32_t)start;
  mg.nbits = (uint16_t)(end - start);
  for (uint32_t i = 0; i < mg.nbits; i++) {
    uint64_t sg = start + i;
    if ((sg >= o->first && sg < end_o &&
         quilt_donet_bitmap_get(o, (uint32_t)(sg - o->first))) ||
        (sg >= b->first && sg < end_n &&
         quilt_donet_bitmap_get(b, (uint32_t)(sg - b->first))))
      bitmap_set(&mg, i);
  }
  p->bm = mg;
}

int quilt_donet_handle(quilt_donet *d, uint64_t from, const quilt_addr *addr,
                       const quilt_donet_msg *m, uint64_t now) {
  assert(d && m && addr);
  if (from == 0 || from == d->cfg.id || m->type < QUILT_DONET_MSG_FIRST ||
      m->type > QUILT_DONET_MSG_LAST) {
    d->st.ignored_msgs++;
    return QUILT_ERR_INVAL;
  }
  unsigned t = m->type - QUILT_DONET_MSG_FIRST;
  d->st.msgs_recv[t]++;
  int slot = find_partner(d, from);
  if (slot >= 0)
    d->p[slot].last_heard_ns = now;
  switch (m->type) {
  case QUILT_DONET_MSG_GOSSIP:
    for (unsigned i = 0; i < m->u.gossip.count && i < QUILT_DONET_MAX_RECORDS;
         i++)
      (void)mc_merge(d, &m->u.gossip.records[i], now);
    break;
  case QUILT_DONET_MSG_PARTNER_REQ:
    if (m->u.req.nat >= QUILT_DONET_NAT__COUNT) {
      d->st.ignored_msgs++;
      break;
    }
    on_partner_req(d, from, addr, &m->u.req, now);
    break;
  case QUILT_DONET_MSG_PARTNER_REPLY:
    if (m->u.reply.nat >= QUILT_DONET_NAT__COUNT ||
        m->u.reply.count > QUILT_DONET_MAX_REFERRALS) {
      d->st.ignored_msgs++;
      break;
    }
    on_partner_reply(d, from, addr, &m->u.reply, now);
    break;
  case QUILT_DONET_MSG_PARTNER_DROP:
    on_drop(d, from, &m->u.drop, now);
    break;
  case QUILT_DONET_MSG_BUFFER_MAP:
  case QUILT_DONET_MSG_REQUEST:
    if (slot < 0 || !bitmap_ok(&m->u.bm)) {
      d->st.ignored_msgs++; /* only partners exchange maps and segments */
      break;
    }
    if (m->type == QUILT_DONET_MSG_BUFFER_MAP) {
      merge_bm(d, &d->p[slot], &m->u.bm);
      /* The scheduler runs "after each round of BM exchange" (paper 3.5):
       * a new map is acted on at once rather than at the next tick, which
       * takes half a period off every hop. */
      if (d->cfg.sched_on_bm && !d->cfg.is_source) {
        advance_play(d, now);
        pull(d, now);
      }
    } else {
      on_request(d, &d->p[slot], &m->u.bm);
    }
    break;
  }
  return 0;
}

int quilt_donet_recv(quilt_donet *d, uint64_t from, const quilt_addr *addr,
                     uint8_t type, const uint8_t *body, size_t len,
                     uint64_t now) {
  quilt_donet_msg m;
  int rc = quilt_donet_decode(type, body, len, &m);
  if (rc != 0) {
    d->st.bad_msgs++;
    return rc;
  }
  if (type >= QUILT_DONET_MSG_FIRST && type <= QUILT_DONET_MSG_LAST)
    d->st.bytes_recv[type - QUILT_DONET_MSG_FIRST] += len;
  return quilt_donet_handle(d, from, addr, &m, now);
}

/* ---- segments ---- */

void quilt_donet_set_clock(quilt_donet *d, uint32_t seg, uint64_t ts_ns) {
  d->clock_known = 1;
  d->ref_seg = seg;
  d->ref_ts = ts_ns;
}

int quilt_donet_publish(quilt_donet *d, uint32_t seg, uint64_t now) {
  if (!d->cfg.is_source)
    return QUILT_ERR_STATE;
  if (d->started && d->have_any && seg <= d->head)
    return QUILT_ERR_INVAL;
  if (!d->clock_known)
    quilt_donet_set_clock(d, seg, now);
  if (!d->started)
    start_at(d, seg);
  window_take(d, seg, now);
  d->progress_ns = now;
  d->local_ns = now;
  return 0;
}

/* A bandwidth sample from a requested segment's service time [R]: the time
 * since it was asked for, or since the previous segment from the same
 * supplier if later (they queue there); EWMA with gain 1/4. */
static void rate_sample(quilt_donet *d, partner *p, const request *r,
                        uint64_t now) {
  uint64_t start =
      r->sent_ns > p->last_arrival_ns ? r->sent_ns : p->last_arrival_ns;
  uint64_t service = now > start ? now - start : 0;
  if (service < 1000000)
    service = 1000000; /* 1 ms floor: same-instant arrivals */
  uint64_t sample = (uint64_t)d->cfg.segment_bytes * 8u * NS_PER_S / service;
  p->rate_bps = clamp_rate((3 * p->rate_bps + clamp_rate(sample)) / 4);
}

int quilt_donet_segment_received(quilt_donet *d, uint64_t from, uint32_t seg,
                                 uint64_t ts_ns, uint64_t now) {
  if (d->cfg.is_source) {
    d->st.ignored_msgs++;
    return 0;
  }
  if (!d->clock_known)
    quilt_donet_set_clock(d, seg, ts_ns);
  if (!d->started)
    start_at(d, seg);
  advance_play(d, now);
  int slot = find_partner(d, from);
  if (slot >= 0)
    d->p[slot].last_heard_ns = now;
  if (seg < d->base) {
    d->st.segs_stale++;
    return 0;
  }
  request *r = &d->req[seg % d->W];
  int requested = r->active && r->seg == seg;
  if (have(d, seg)) {
    d->st.segs_duplicate++;
    if (requested)
      cancel_request(d, r);
    return 0;
  }
  window_take(d, seg, now);
  /* window_take may have cancelled requests, never this one (seg is in
   * the new window) */
  if (requested && r->active && r->seg == seg) {
    partner *q = &d->p[r->slot];
    if (q->used && q->id == from)
      rate_sample(d, q, r, now);
    cancel_request(d, r);
    if (q->used && q->id == from)
      q->last_arrival_ns = now;
  }
  if (slot >= 0) {
    partner *p = &d->p[slot];
    p->segs_from++;
    if (p->score_from < UINT32_MAX)
      p->score_from++;
  }
  d->st.segs_received++;
  d->progress_ns = now;
  if (from == 0) {
    d->local_ns = now;
    push_local(d, seg);
  }
  if (d->playing && seg >= d->play_start)
    report(d, seg, 1,
           seg < d->play_next ? QUILT_DONET_SEG_LATE : QUILT_DONET_SEG_IN_TIME,
           now);
  return 1;
}

/* ---- periodic work ---- */

static uint32_t partner_head(const partner *p, int *any) {
  *any = 0;
  if (!p->has_bm)
    return 0;
  for (uint32_t i = p->bm.nbits; i-- > 0;)
    if (quilt_donet_bitmap_get(&p->bm, i)) {
      *any = 1;
      return p->bm.first + i;
    }
  return 0;
}

/* The oldest segment partner p holds (*any = 0 when none). */
static uint32_t partner_tail(const partner *p, int *any) {
  *any = 0;
  if (!p->has_bm)
    return 0;
  for (uint32_t i = 0; i < p->bm.nbits; i++)
    if (quilt_donet_bitmap_get(&p->bm, i)) {
      *any = 1;
      return p->bm.first + i;
    }
  return 0;
}

static int partner_has(const partner *p, uint32_t seg) {
  return p->has_bm && seg >= p->bm.first &&
         quilt_donet_bitmap_get(&p->bm, seg - p->bm.first);
}

static uint32_t oldest_held(const quilt_donet *d) {
  uint32_t lo = 0;
  int any = 0;
  for (uint32_t k = 0; k < QUILT_DONET_MAX_PARTNERS; k++) {
    if (!d->p[k].used)
      continue;
    int a;
    uint32_t t = partner_tail(&d->p[k], &a);
    if (a && (!any || t < lo))
      lo = t, any = 1;
  }
  return lo;
}

/* One scheduling round (paper 3.5): candidates are the segments of the
 * window that this node lacks, no request covers, whose deadline has not
 * passed and that some partner holds. */
static void pull(quilt_donet *d, uint64_t now) {
  uint32_t hi = 0;
  int any = 0;
  for (uint32_t k = 0; k < QUILT_DONET_MAX_PARTNERS; k++) {
    if (!d->p[k].used)
      continue;
    int a;
    uint32_t h = partner_head(&d->p[k], &a);
    if (a && (!any || h > hi))
      hi = h, any = 1;
  }
  if (!any)
    return;
  if (!d->started)
    start_at(d, d->cfg.start_oldest ? oldest_held(d) : hi); /* see
                                                                 donet.h */
  if (hi < d->play_next || d->nreq >= d->cfg.requests_max)
    return;
  uint64_t lo = d->play_next;
  if (hi - lo >= d->W)
    lo = (uint64_t)hi - d->W + 1;
  if (d->cfg.fetch_span) {
    /* Nothing at or past the oldest wanted segment + fetch_span. */
    uint64_t want = lo;
    while (want <= hi && have(d, (uint32_t)want))
      want++;
    if ((uint64_t)hi >= want + d->cfg.fetch_span)
      hi = (uint32_t)(want + d->cfg.fetch_span - 1);
  }

  quilt_donet_sched_seg segs[QUILT_DONET_MAX_WINDOW];
  size_t nsegs = 0;
  for (uint64_t s = lo; s <= hi; s++) {
    uint32_t seg = (uint32_t)s;
    const request *r = &d->req[seg % d->W];
    if (have(d, seg) || (r->active && r->seg >= seg))
      continue; /* held, asked for, or its slot serves a newer request */
    uint64_t dl = deadline_of(d, seg);
    if (dl <= now)
      continue;
    uint32_t mask = 0;
    for (uint32_t k = 0; k < QUILT_DONET_MAX_PARTNERS; k++)
      if (d->p[k].used && partner_has(&d->p[k], seg))
        mask |= 1u << k;
    if (!mask)
      continue;
    segs[nsegs].seg = seg;
    segs[nsegs].deadline_ns = dl;
    segs[nsegs].tiebreak = quilt_rng_u32(&d->rng); /* random among equals */
    segs[nsegs].suppliers = mask;
    nsegs++;
  }
  if (nsegs == 0)
    return;
  quilt_donet_sched_supplier sup[QUILT_DONET_MAX_PARTNERS];
  for (uint32_t k = 0; k < QUILT_DONET_MAX_PARTNERS; k++) {
    sup[k].rate_bps = d->p[k].used ? d->p[k].rate_bps : 0;
    sup[k].free_ns =
        d->p[k].used && d->p[k].outstanding ? d->p[k].free_ns : now;
  }
  quilt_donet_sched_assign as[QUILT_DONET_MAX_WINDOW];
  size_t n = quilt_donet_schedule(
      segs, nsegs, sup, QUILT_DONET_MAX_PARTNERS, d->cfg.segment_bytes, now,
      d->cfg.sched_horizon_ns, as, d->cfg.requests_max - d->nreq);
  if (n == 0)
    return;

  /* Step 4: one request bitmap per partner. */
  quilt_donet_bitmap rq[QUILT_DONET_MAX_PARTNERS];
  uint32_t lo_k[QUILT_DONET_MAX_PARTNERS];
  uint32_t used = 0;
  for (size_t i = 0; i < n; i++) {
    uint32_t k = as[i].supplier, seg = segs[as[i].index].seg;
    if (!(used & (1u << k)) || seg < lo_k[k])
      lo_k[k] = seg;
    used |= 1u << k;
  }
  for (uint32_t k = 0; k < QUILT_DONET_MAX_PARTNERS; k++)
    if (used & (1u << k)) {
      memset(&rq[k], 0, sizeof rq[k]);
      rq[k].first = lo_k[k];
    }
  for (size_t i = 0; i < n; i++) {
    uint32_t k = as[i].supplier, seg = segs[as[i].index].seg;
    request *r = &d->req[seg % d->W];
    if (r->active)
      cancel_request(d, r); /* an older segment in the same slot: expired */
    r->seg = seg;
    r->active = 1;
    r->slot = (uint8_t)k;
    r->sent_ns = now;
    r->expires_ns = sat_add(as[i].arrival_ns, d->cfg.request_timeout_ns);
    d->nreq++;
    d->p[k].outstanding++;
    d->st.requests++;
    uint32_t bit = seg - lo_k[k];
    assert(bit < d->W);
    if (bit + 1 > rq[k].nbits)
      rq[k].nbits = (uint16_t)(bit + 1);
    bitmap_set(&rq[k], bit);
  }
  for (uint32_t k = 0; k < QUILT_DONET_MAX_PARTNERS; k++)
    if (used & (1u << k)) {
      quilt_donet_msg m;
      m.type = QUILT_DONET_MSG_REQUEST;
      m.u.bm = rq[k];
      d->p[k].free_ns = sup[k].free_ns;
      send_msg(d, d->p[k].id, &d->p[k].addr, &m);
    }
  assert(d->nreq <= d->cfg.requests_max);
}

/* A starving node [R]: it has partners, yet no new segment has come for
 * starve_ns.  Partners that hold nothing it wants can belong to a part of
 * the mesh with no path to the source: in a small mesh whose first members
 * filled one another's slots, the late joiners, referred to one another,
 * form such a component, and the paper's refinement (every 30 s) is too
 * slow to join it to the rest while the deadlines run.  So the least
 * useful partner older than starve_ns is dropped, at most once per
 * starve_ns, and the next request goes to another candidate.  Before a
 * stream exists every node "starves": the cost is a partner changed per
 * starve_ns, a few hundred bytes. */
static void starve_check(quilt_donet *d, uint64_t now) {
  /* Never the last partner: a node with fewer than M partners looks for
   * more anyway, and in a patch of two (a primary and its backup, before
   * the stream) the last one was the only one it could have.  Nor when
   * no one else is there to ask (below). */
  if (!d->cfg.starve_ns || d->cfg.is_source || d->np <= 1 ||
      now < d->next_starve_ns ||
      sat_add(d->progress_ns, d->cfg.starve_ns) > now)
    return;
  int worst = -1;
  uint64_t worst_score = 0;
  uint32_t ties = 0;
  for (int k = 0; k < (int)QUILT_DONET_MAX_PARTNERS; k++) {
    const partner *p = &d->p[k];
    if (!p->used || sat_add(p->since_ns, d->cfg.starve_ns) > now)
      continue;
    uint64_t score = p->score_from > p->score_to ? p->score_from : p->score_to;
    if (worst < 0 || score < worst_score) {
      worst = k;
      worst_score = score;
      ties = 1;
    } else if (score == worst_score && quilt_rng_below(&d->rng, ++ties) == 0) {
      worst = k;
    }
  }
  d->next_starve_ns = sat_add(now, d->cfg.starve_ns);
  if (worst < 0)
    return;
  /* Only if there is someone else to ask: in a patch of three whose
   * members are all partners already, a drop (with its back-off) only cut
   * the members off their primary when the stream came. */
  int other = 0;
  for (uint32_t i = 0; i < d->nmc && !other; i++)
    other = eligible_candidate(d, &d->mc[i], NULL, now);
  if (!other)
    return;
  uint64_t id = d->p[worst].id;
  quilt_addr addr = d->p[worst].addr;
  send_drop(d, id, &addr, QUILT_DONET_DROP_REFINE);
  remove_partner(d, worst);
  mc_backoff(d, id, now);
  d->st.partners_dropped_starving++;
}

static void sched_tick(quilt_donet *d, uint64_t now) {
  advance_play(d, now);
  /* Requests that did not arrive in time are dropped and so re-issued by
   * this round's pull [R: PAPERS 3.7]; the supplier's estimate halves. */
  for (uint32_t i = 0; i < d->W; i++) {
    request *r = &d->req[i];
    if (r->active && r->expires_ns <= now) {
      partner *p = &d->p[r->slot];
      if (p->used)
        p->rate_bps = clamp_rate(p->rate_bps / 2);
      cancel_request(d, r);
      d->st.request_timeouts++;
    }
  }
  for (uint32_t i = 0; i < d->npend;) {
    if (d->pend[i].expires_ns <= now) {
      mc_backoff(d, d->pend[i].id, now);
      remove_pending(d, (int)i);
    } else {
      i++;
    }
  }
  for (int k = 0; k < (int)QUILT_DONET_MAX_PARTNERS; k++) {
    partner *p = &d->p[k];
    /* An idle estimate drifts back to the first one (1/8 a round), so that
     * a supplier that timed out is tried again [R]. */
    if (p->used && p->outstanding == 0 && p->rate_bps < p->rate_hint_bps)
      p->rate_bps += (p->rate_hint_bps - p->rate_bps) / 8 + 1;
    if (p->used &&
        sat_add(p->last_heard_ns, d->cfg.partner_timeout_ns) <= now) {
      uint64_t id = p->id;
      remove_partner(d, k);
      mc_remove(d, id); /* presumed gone */
      d->st.partners_timed_out++;
    }
  }
  mc_expire(d, now);
  starve_check(d, now);
  acquire_partners(d, now);
  if (!d->cfg.is_source && d->np > 0)
    pull(d, now);
}

static int gossip_ok(const quilt_donet *d, const mentry *e, const void *arg,
                     uint64_t now) {
  (void)d;
  (void)arg;
  return e->r.hops > 0 && e->expires_ns > now;
}

static int reachable(const quilt_donet *d, const mentry *e, const void *arg,
                     uint64_t now) {
  (void)arg;
  return e->expires_ns > now && quilt_donet_may_request(d->cfg.nat, e->r.nat);
}

/* SCAM-style push [R: fanout and period, PAPERS 3.7]: one GOSSIP a period
 * to a random partner (a random reachable mCache entry when the node has
 * none), with a fresh record of this node and a random sample of records
 * that still have hops left, each sent with one hop less. */
static void gossip_tick(quilt_donet *d, uint64_t now) {
  d->own_seq++;
  uint64_t to = 0;
  quilt_addr addr = {0, 0};
  if (d->np > 0) {
    uint32_t pick = quilt_rng_below(&d->rng, d->np);
    for (uint32_t k = 0; k < QUILT_DONET_MAX_PARTNERS; k++)
      if (d->p[k].used && pick-- == 0) {
        to = d->p[k].id;
        addr = d->p[k].addr;
        break;
      }
  } else {
    uint32_t idx[QUILT_DONET_MAX_MCACHE];
    if (mc_sample(d, reachable, NULL, now, idx, 1) == 1) {
      to = d->mc[idx[0]].r.id;
      addr = d->mc[idx[0]].r.addr;
    }
  }
  if (to == 0)
    return;
  quilt_donet_msg m;
  memset(&m, 0, sizeof m);
  m.type = QUILT_DONET_MSG_GOSSIP;
  m.u.gossip.records[m.u.gossip.count++] = own_record(d, d->cfg.gossip_hops);
  uint32_t idx[QUILT_DONET_MAX_MCACHE];
  uint32_t n =
      mc_sample(d, gossip_ok, NULL, now, idx, d->cfg.gossip_records - 1);
  for (uint32_t i = 0; i < n; i++) {
    const mentry *e = &d->mc[idx[i]];
    if (e->r.id == to)
      continue; /* it knows itself */
    m.u.gossip.records[m.u.gossip.count++] =
        entry_record(e, now, (uint8_t)(e->r.hops - 1));
  }
  send_msg(d, to, &addr, &m);
}

/* Partner refinement (paper 3.3 [M]): with M partners or more, drop the
 * one with the lowest max(segments from it, segments to it) per unit time
 * since the last refinement; partners younger than one period are spared.
 * The next scheduling round asks a random mCache node to replace it. */
static void refine_tick(quilt_donet *d, uint64_t now) {
  if (d->np >= d->cfg.partners) {
    int worst = -1;
    uint64_t worst_score = 0;
    uint32_t ties = 0;
    for (int k = 0; k < (int)QUILT_DONET_MAX_PARTNERS; k++) {
      partner *p = &d->p[k];
      if (!p->used || sat_add(p->since_ns, d->cfg.refine_period_ns) > now)
        continue;
      uint64_t segs = p->score_from > p->score_to ? p->score_from : p->score_to;
      uint64_t dt = now - p->score_since_ns;
      if (dt == 0)
        dt = 1;
      /* millisegments per second; segs <= 2^32 so no overflow below */
      uint64_t score = segs * 1000000u / (dt / 1000000u + 1);
      if (worst < 0 || score < worst_score) {
        worst = k;
        worst_score = score;
        ties = 1;
      } else if (score == worst_score &&
                 quilt_rng_below(&d->rng, ++ties) == 0) {
        worst = k; /* uniform among equals */
      }
    }
    if (worst >= 0) {
      partner *p = &d->p[worst];
      uint64_t id = p->id;
      quilt_addr addr = p->addr;
      send_drop(d, id, &addr, QUILT_DONET_DROP_REFINE);
      remove_partner(d, worst);
      mc_backoff(d, id, now);
      d->st.partners_dropped_refine++;
    }
  }
  for (int k = 0; k < (int)QUILT_DONET_MAX_PARTNERS; k++) {
    d->p[k].score_from = d->p[k].score_to = 0;
    d->p[k].score_since_ns = now;
  }
  acquire_partners(d, now);
}

static uint64_t next_tick(uint64_t next, uint64_t period, uint64_t now) {
  next = sat_add(next, period);
  return next <= now ? sat_add(now, period) : next;
}

uint64_t quilt_donet_expiry(const quilt_donet *d) {
  uint64_t t = d->next_sched;
  if (d->next_bm < t)
    t = d->next_bm;
  if (d->next_gossip < t)
    t = d->next_gossip;
  if (d->next_refine < t)
    t = d->next_refine;
  return t;
}

void quilt_donet_handle_expiry(quilt_donet *d, uint64_t now) {
  if (now >= d->next_sched) {
    sched_tick(d, now);
    d->next_sched = next_tick(d->next_sched, d->cfg.sched_period_ns, now);
  }
  if (now >= d->next_refine) {
    refine_tick(d, now);
    d->next_refine = next_tick(d->next_refine, d->cfg.refine_period_ns, now);
  }
  if (now >= d->next_bm) {
    /* Between two regular maps, a fast one carries only the newest part. */
    int recent = sat_add(d->full_bm_ns, d->cfg.bm_period_ns) > now;
    if (!recent)
      d->full_bm_ns = now;
    /* A partner that holds all we hold needs no map from us [R]: in a
     * stream most partnerships carry data one way, and the maps sent
     * upstream (to the source, to an entry point, to a partner nearer
     * them) were half of all maps.  It still gets one every
     * bm_keepalive_ns, since maps are what tells it we are alive. */
    for (uint32_t k = 0; k < QUILT_DONET_MAX_PARTNERS; k++) {
      partner *p = &d->p[k];
      if (!p->used)
        continue;
      if (d->cfg.bm_keepalive_ns &&
          sat_add(p->bm_sent_ns, d->cfg.bm_keepalive_ns) > now &&
          partner_ahead(d, p)) {
        d->st.maps_skipped++;
        continue;
      }
      send_bm(d, p, recent, now);
    }
    /* A node that injects segments (the source, or a driver's local
     * source) advertises them faster while it does [R]. */
    uint64_t period = d->cfg.local_bm_period_ns &&
                              sat_add(d->local_ns, d->cfg.bm_period_ns) > now
                          ? d->cfg.local_bm_period_ns
                          : d->cfg.bm_period_ns;
    d->next_bm = next_tick(d->next_bm, period, now);
  }
  if (now >= d->next_gossip) {
    gossip_tick(d, now);
    d->next_gossip = next_tick(d->next_gossip, d->cfg.gossip_period_ns, now);
  }
  assert(quilt_donet_expiry(d) > now);
}

void quilt_donet_set_fetch_span(quilt_donet *d, uint32_t segments) {
  d->cfg.fetch_span = segments;
}

void quilt_donet_leave(quilt_donet *d, uint64_t now) {
  (void)now;
  for (int k = 0; k < (int)QUILT_DONET_MAX_PARTNERS; k++)
    if (d->p[k].used) {
      send_drop(d, d->p[k].id, &d->p[k].addr, QUILT_DONET_DROP_LEAVE);
      remove_partner(d, k);
    }
  d->npend = 0;
}

/* ---- lifecycle ---- */

void quilt_donet_config_default(quilt_donet_config *c) {
  memset(c, 0, sizeof *c);
  c->nat = QUILT_DONET_NAT_PUBLIC;
  c->uplink_kbps = 1000;
  c->partners = 4;                 /* paper 3.3: M = 4 */
  c->partners_max = 6;             /* [R] room for NAT'd nodes' requests */
  c->window_segments = 120;        /* paper 3.4: 120 segments */
  c->segment_bytes = 62500;        /* 1 s of a 500 kbit/s stream (paper 3.6) */
  c->segment_period_ns = NS_PER_S; /* paper 3.4: 1 s segments */
  c->playback_delay_ns = 10 * NS_PER_S; /* paper 3.4: playback after 10 s */
  c->bm_period_ns = NS_PER_S;           /* [R] 1 s, as Denacast (PAPERS 3.4) */
  c->sched_period_ns = NS_PER_S;
  c->sched_horizon_ns = NS_PER_S; /* one period of its bandwidth */
  c->requests_max = 64;
  c->request_timeout_ns = 2 * NS_PER_S;
  c->gossip_period_ns = 10 * NS_PER_S; /* [R] */
  c->gossip_records = 4;
  c->gossip_hops = 3;
  c->mcache_ttl_ns = 60 * NS_PER_S;
  c->mcache_max = 64;
  c->partner_timeout_ns = 5 * NS_PER_S;
  c->bm_keepalive_ns = 2 * NS_PER_S;
  c->partner_req_timeout_ns = 2 * NS_PER_S;
  c->reject_backoff_ns = 10 * NS_PER_S;
  c->refine_period_ns = 30 * NS_PER_S; /* [R] */
}

static int config_ok(const quilt_donet_config *c) {
  return c->id != 0 && c->nat < QUILT_DONET_NAT__COUNT && c->is_source <= 1 &&
         c->partners >= 1 && c->partners <= c->partners_max &&
         c->partners_max <= QUILT_DONET_MAX_PARTNERS &&
         c->window_segments >= 1 &&
         c->window_segments <= QUILT_DONET_MAX_WINDOW &&
         c->segment_bytes >= 1 &&
         c->segment_bytes <= QUILT_DONET_MAX_SEGMENT_BYTES &&
         c->segment_period_ns > 0 && c->bm_period_ns > 0 &&
         c->sched_period_ns > 0 && c->sched_horizon_ns > 0 &&
         c->requests_max >= 1 && c->requests_max <= c->window_segments &&
         c->gossip_period_ns > 0 && c->gossip_records >= 1 &&
         c->gossip_records <= QUILT_DONET_MAX_RECORDS &&
         c->mcache_ttl_ns >= NS_PER_S &&
         c->mcache_ttl_ns <= (uint64_t)QUILT_DONET_MAX_TTL_S * NS_PER_S &&
         c->mcache_max >= 1 && c->mcache_max <= QUILT_DONET_MAX_MCACHE &&
         c->partner_timeout_ns > 0 && c->partner_req_timeout_ns > 0 &&
         c->bm_keepalive_ns < c->partner_timeout_ns;
}

int quilt_donet_new(quilt_donet **out, const quilt_donet_config *cfg,
                    const quilt_donet_callbacks *cb, void *ctx, uint64_t now) {
  if (!out || !cfg || !cb || !cb->send || !cb->send_segment || !config_ok(cfg))
    return QUILT_ERR_INVAL;
  quilt_donet *d = calloc(1, sizeof *d);
  if (!d)
    return QUILT_ERR_NOMEM;
  d->cfg = *cfg;
  d->cb = *cb;
  d->ctx = ctx;
  d->W = cfg->window_segments;
  d->mc = calloc(cfg->mcache_max, sizeof *d->mc);
  d->req = calloc(d->W, sizeof *d->req);
  if (!d->mc || !d->req) {
    quilt_donet_del(d);
    return QUILT_ERR_NOMEM;
  }
  quilt_rng_init(&d->rng, cfg->seed, cfg->id);
  /* Random phases so that nodes do not tick in step. */
  d->next_sched = now;
  d->progress_ns = now;
  d->next_bm = sat_add(now, rand_below64(d, cfg->bm_period_ns));
  d->next_gossip = sat_add(now, rand_below64(d, cfg->gossip_period_ns));
  d->next_refine = cfg->refine_period_ns
                       ? sat_add(sat_add(now, cfg->refine_period_ns),
                                 rand_below64(d, cfg->refine_period_ns / 4 + 1))
                       : UINT64_MAX;
  *out = d;
  return 0;
}

void quilt_donet_del(quilt_donet *d) {
  if (!d)
    return;
  free(d->mc);
  free(d->req);
  free(d);
}

int quilt_donet_add_contact(quilt_donet *d, uint64_t id, const quilt_addr *addr,
                            uint8_t nat, uint64_t now) {
  if (id == 0 || id == d->cfg.id || nat >= QUILT_DONET_NAT__COUNT || !addr)
    return QUILT_ERR_INVAL;
  quilt_donet_record r;
  memset(&r, 0, sizeof r);
  r.id = id;
  r.addr = *addr;
  r.nat = nat;
  r.ttl_s = (uint16_t)(d->cfg.mcache_ttl_ns / NS_PER_S);
  r.hops = d->cfg.gossip_hops > 0; /* pass it on once */
  return mc_merge(d, &r, now);
}

/* ---- inspection ---- */

size_t quilt_donet_partner_count(const quilt_donet *d) { return d->np; }

size_t quilt_donet_partners(const quilt_donet *d, quilt_donet_partner_info *out,
                            size_t max) {
  size_t n = 0;
  for (uint32_t k = 0; k < QUILT_DONET_MAX_PARTNERS && n < max; k++) {
    const partner *p = &d->p[k];
    if (!p->used)
      continue;
    out[n].id = p->id;
    out[n].addr = p->addr;
    out[n].nat = p->nat;
    out[n].rate_bps = p->rate_bps;
    out[n].since_ns = p->since_ns;
    out[n].segs_from = p->segs_from;
    out[n].segs_to = p->segs_to;
    out[n].outstanding = p->outstanding;
    n++;
  }
  return n;
}

int quilt_donet_is_partner(const quilt_donet *d, uint64_t id) {
  return find_partner(d, id) >= 0;
}

size_t quilt_donet_mcache_count(const quilt_donet *d) { return d->nmc; }

int quilt_donet_in_mcache(const quilt_donet *d, uint64_t id) {
  for (uint32_t i = 0; i < d->nmc; i++)
    if (d->mc[i].r.id == id)
      return 1;
  return 0;
}

int quilt_donet_has_segment(const quilt_donet *d, uint32_t seg) {
  return have(d, seg);
}

void quilt_donet_get_stats(const quilt_donet *d, quilt_donet_stats *out) {
  *out = d->st;
}
