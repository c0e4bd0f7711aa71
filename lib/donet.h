/*
 * donet.h -- the DONet / CoolStreaming core: a data-driven mesh for one live
 * stream, sans I/O.
 *
 * Zhang, Liu, Li, Yum, "CoolStreaming/DONet: a data-driven overlay network
 * for peer-to-peer live media streaming", INFOCOM 2005 (PAPERS.md section
 * 3).  Each node runs the paper's three modules:
 *   - membership: SCAM-style gossip of <seq, id, address, NAT class,
 *     partner count, time to live> records into a bounded partial view, the
 *     mCache (PAPERS.md 3.2);
 *   - partnership: M partners (default 4), a node behind NAT opens its
 *     partnerships itself, two restrictive NATs are never partners, and
 *     periodic refinement drops the least useful partner (PAPERS.md 3.3);
 *   - scheduling: buffer maps over a sliding window of segments are
 *     exchanged with the partners every period; missing segments are pulled,
 *     single-supplier segments first, then rarest first, each from the
 *     supplier with the highest estimated bandwidth that still meets the
 *     segment's playback deadline (PAPERS.md 3.4, 3.5).
 *
 * The core never opens a socket, reads a clock or draws a random number
 * outside its private quilt_rng (seeded once from the config).  A driver:
 *   - passes the current time (ns, any epoch, never decreasing) to every
 *     entry point;
 *   - feeds it the mesh messages it receives (quilt_donet_recv, or
 *     quilt_donet_handle after its own decode) and the stream segments it
 *     receives (quilt_donet_segment_received);
 *   - calls quilt_donet_handle_expiry at quilt_donet_expiry();
 *   - carries what the core asks for through the callbacks: control message
 *     bodies (types 20..25, to be wrapped in Quilt's header) and segments
 *     (the driver holds the segment data and sends it, e.g. in a DATA
 *     message with origin = stream, seq = segment id).
 *
 * Segment time and deadline.  Segment s of the stream has the time
 *   seg_time(s) = ts(r) + (s - r) * segment_period_ns
 * where ts(r) is the origin timestamp of any one segment r (the first one
 * the node publishes or receives, or quilt_donet_set_clock).  Its playback
 * deadline is seg_time(s) + playback_delay_ns.  The driver's clocks must
 * agree with the source's to well under the playback delay (the same
 * assumption as the DATA timestamps).
 *
 * A new node starts fetching at the newest segment its partners hold (a
 * live viewer joins at the live edge), or with cfg.start_oldest at the
 * oldest one.  Its playback starts once the clock
 * is known (its first segment's timestamp): at that segment, or later if
 * that one's deadline leaves less than one buffer map period plus one
 * scheduling period to fetch it.  From there on every segment is reported
 * exactly once, as IN_TIME when it arrives by its deadline or as MISSED
 * when its deadline passes without it (a later arrival is also reported,
 * as LATE).  The continuity index is IN_TIME / (IN_TIME + MISSED).
 *
 * Bounds: every table has a limit (QUILT_DONET_MAX_* below and the config);
 * each entry point does work bounded by window x partners or the mCache
 * size.  The core holds no segment data: a REQUEST from a partner makes it
 * call send_segment for at most one window of segments, so the driver must
 * bound its own send queue (and drop what does not fit, as an uplink
 * would).
 *
 * Not thread-safe.  Callbacks run synchronously from inside the entry
 * points and must not call back into the same core.  Bad input from the
 * network is counted in the stats and dropped, never asserted on.
 */
#ifndef QUILT_DONET_H
#define QUILT_DONET_H

#include <stddef.h>
#include <stdint.h>

#include "addr.h"
#include "euid.h"

/* ---- limits (each bounds a table or a message; see where it is used) -- */

#define QUILT_DONET_MAX_PARTNERS 32u /* partners_max; bitmask width */
/* segments in the window and in one buffer map (128 bytes of bits) */
#define QUILT_DONET_MAX_WINDOW 1024u
#define QUILT_DONET_MAX_MCACHE 256u  /* mCache entries */
#define QUILT_DONET_MAX_RECORDS 16u  /* records in one GOSSIP */
#define QUILT_DONET_MAX_REFERRALS 8u /* records in one PARTNER_REPLY */
#define QUILT_DONET_MAX_SEGMENT_BYTES (16u << 20) /* keeps bytes*8e9 < 2^64 */
#define QUILT_DONET_MAX_TTL_S 65535u   /* record time to live, seconds */
#define QUILT_DONET_RATE_MIN_BPS 8000u /* floor of a bandwidth estimate */
#define QUILT_DONET_RATE_MAX_BPS 100000000000ull /* ceiling, 100 Gbit/s */

/* ---- wire messages (body only; Quilt's 16-byte header goes in front) --- */

/* Message types, in the range Quilt's wire decoder reserves for the mesh
 * protocol (20..29; 26..29 are unused). */
enum {
  QUILT_DONET_MSG_GOSSIP = 20,        /* membership records (SCAM) */
  QUILT_DONET_MSG_PARTNER_REQ = 21,   /* be my partner */
  QUILT_DONET_MSG_PARTNER_REPLY = 22, /* accept or reject, with referrals */
  QUILT_DONET_MSG_PARTNER_DROP = 23,  /* partnership over */
  QUILT_DONET_MSG_BUFFER_MAP = 24,    /* segments I hold */
  QUILT_DONET_MSG_REQUEST = 25,       /* send me these segments */
  QUILT_DONET_MSG_FIRST = 20,
  QUILT_DONET_MSG_LAST = 25
};

/* Connectivity class, as far as partnership cares (a small enum over the
 * EUID's NAT classes, see quilt_donet_nat_from_euid). */
typedef enum quilt_donet_nat {
  QUILT_DONET_NAT_PUBLIC = 0,      /* reachable by anyone */
  QUILT_DONET_NAT_CONE = 1,        /* endpoint-independent mapping: hole
                                      punching works */
  QUILT_DONET_NAT_RESTRICTIVE = 2, /* symmetric or unknown: only reachable
                                      by those it contacted first */
  QUILT_DONET_NAT__COUNT
} quilt_donet_nat;

/* Why a partnership ended (PARTNER_DROP). */
typedef enum quilt_donet_drop_reason {
  QUILT_DONET_DROP_REFINE = 0, /* least useful partner (refinement) */
  QUILT_DONET_DROP_LEAVE = 1,  /* the sender leaves the overlay */
  QUILT_DONET_DROP_FULL = 2,   /* an accept arrived when the sender was full */
  QUILT_DONET_DROP__COUNT
} quilt_donet_drop_reason;

/* A membership record (PAPERS.md 3.2: <seq_num, node_id, num_partner,
 * time_to_live>, plus the address and NAT class).  23 bytes on the wire:
 * id 8, ip 4, port 2, seq 4, nat 1, partners 1, ttl_s 2, hops 1.  ttl_s is
 * the time the record has left to live (0 = the node left); hops how many
 * more times it may be gossiped on. */
typedef struct quilt_donet_record {
  uint64_t id; /* nonzero */
  quilt_addr addr;
  uint32_t seq;
  uint8_t nat; /* quilt_donet_nat */
  uint8_t partners;
  uint16_t ttl_s;
  uint8_t hops;
} quilt_donet_record;
#define QUILT_DONET_RECORD_LEN 23

/* GOSSIP: count u8 (1..QUILT_DONET_MAX_RECORDS), then the records. */
typedef struct quilt_donet_msg_gossip {
  uint8_t count;
  quilt_donet_record records[QUILT_DONET_MAX_RECORDS];
} quilt_donet_msg_gossip;

/* PARTNER_REQ: nat u8, partners u8, uplink_kbps u32 (6 bytes).  From an
 * existing partner it asks for nothing new: the accept that answers it
 * carries fresh referrals (a node short of candidates asks this way). */
typedef struct quilt_donet_msg_partner_req {
  uint8_t nat;          /* the requester's class */
  uint8_t partners;     /* how many partners it has now */
  uint32_t uplink_kbps; /* its uplink estimate (EUID bw_kbps) */
} quilt_donet_msg_partner_req;

/* PARTNER_REPLY: accept u8 (0/1), nat u8, partners u8, uplink_kbps u32,
 * count u8 (<= QUILT_DONET_MAX_REFERRALS), then the records: other
 * candidates from the replier's mCache (the paper's deputy answer). */
typedef struct quilt_donet_msg_partner_reply {
  uint8_t accept;
  uint8_t nat;
  uint8_t partners;
  uint32_t uplink_kbps;
  uint8_t count;
  quilt_donet_record records[QUILT_DONET_MAX_REFERRALS];
} quilt_donet_msg_partner_reply;

/* PARTNER_DROP: reason u8 (quilt_donet_drop_reason). */
typedef struct quilt_donet_msg_partner_drop {
  uint8_t reason;
} quilt_donet_msg_partner_drop;

/* BUFFER_MAP and REQUEST: first u32, nbits u16 (<= QUILT_DONET_MAX_WINDOW),
 * then ceil(nbits / 8) bytes.  Bit i (segment first + i) is bit 7 - i % 8
 * of byte i / 8 (most significant first); the unused low bits of the last
 * byte are 0.  A buffer map says which segments the sender holds; a request
 * (PAPERS.md 3.4: same format) which ones the sender asks for. */
typedef struct quilt_donet_bitmap {
  uint32_t first;
  uint16_t nbits;
  uint8_t bits[QUILT_DONET_MAX_WINDOW / 8];
} quilt_donet_bitmap;

typedef struct quilt_donet_msg {
  uint8_t type; /* QUILT_DONET_MSG_* */
  union {
    quilt_donet_msg_gossip gossip;
    quilt_donet_msg_partner_req req;
    quilt_donet_msg_partner_reply reply;
    quilt_donet_msg_partner_drop drop;
    quilt_donet_bitmap bm; /* BUFFER_MAP and REQUEST */
  } u;
} quilt_donet_msg;

/* Largest body any message encodes to (a full GOSSIP, 369 bytes). */
#define QUILT_DONET_MAX_BODY                                                   \
  (1 + QUILT_DONET_MAX_RECORDS * QUILT_DONET_RECORD_LEN)

/* Decodes the body of a message of |type|.  Checks every length, count and
 * field range against the buffer and never reads past body[len - 1];
 * trailing bytes, nonzero padding bits and out-of-range fields are refused,
 * so each message has one encoding.  Returns 0, QUILT_ERR_TRUNCATED or
 * QUILT_ERR_MALFORMED (also for a type outside 20..25).  *out is fully
 * written on success only (unused array slots are zero). */
int quilt_donet_decode(uint8_t type, const uint8_t *body, size_t len,
                       quilt_donet_msg *out);

/* Encodes m->u for m->type into buf.  Returns the body length (at most
 * QUILT_DONET_MAX_BODY), QUILT_ERR_INVAL for a message decode would refuse,
 * or QUILT_ERR_TOO_BIG when cap is too small.  Nothing useful is in buf on
 * error. */
int quilt_donet_encode(const quilt_donet_msg *m, uint8_t *buf, size_t cap);

/* Body length quilt_donet_encode would produce for m, or QUILT_ERR_INVAL
 * for a message decode would refuse. */
int quilt_donet_encoded_len(const quilt_donet_msg *m);

/* Whether two decoded messages are equal (the fields the type uses). */
int quilt_donet_msg_equal(const quilt_donet_msg *a, const quilt_donet_msg *b);

/* Bit i of a bitmap (0 when i >= nbits). */
int quilt_donet_bitmap_get(const quilt_donet_bitmap *b, uint32_t i);

/* The partnership class of an EUID NAT class: none -> public; full-cone,
 * restricted and port-restricted -> cone; symmetric and unknown ->
 * restrictive. */
quilt_donet_nat quilt_donet_nat_from_euid(quilt_nat nat);

/* Whether a node of class |self| may send a partner request to a node of
 * class |cand|: never to a restrictive node (it must open itself), to a
 * cone node only from behind a NAT (a public node waits for the NAT'd node
 * to come), always to a public node. */
int quilt_donet_may_request(quilt_donet_nat self, quilt_donet_nat cand);
/* Whether two nodes may be partners at all: not both restrictive. */
int quilt_donet_may_partner(quilt_donet_nat a, quilt_donet_nat b);

/* ---- the scheduler (PAPERS.md 3.5), a pure function ------------------------
 */

typedef struct quilt_donet_sched_seg {
  uint32_t seg;         /* segment id */
  uint64_t deadline_ns; /* playback deadline; UINT64_MAX when unknown */
  uint32_t suppliers;   /* bit k: supplier k holds the segment */
  uint32_t tiebreak;    /* order among segments with as many suppliers,
                           lower first (the core draws it at random) */
} quilt_donet_sched_seg;

typedef struct quilt_donet_sched_supplier {
  uint64_t rate_bps; /* estimated bandwidth from this supplier; 0 = unusable */
  uint64_t free_ns;  /* t[k]: when what was already asked of it should have
                        arrived (values below now mean now); updated */
} quilt_donet_sched_supplier;

typedef struct quilt_donet_sched_assign {
  uint32_t index;      /* into the segs array */
  uint32_t supplier;   /* index into the suppliers array */
  uint64_t arrival_ns; /* expected arrival */
} quilt_donet_sched_assign;

/* Assigns segments to suppliers, DONet's heuristic:
 *   1. order the segments by number of suppliers (those with exactly one
 *      first, then rarest first), ties by tiebreak, then earlier deadline,
 *      then lower id.  The core's tiebreak is random [R: the paper leaves
 *      ties open]: partners that see the same rare segments at the same
 *      supplier (the newest ones, at the source) then ask for different
 *      ones and can trade them, instead of all queueing for the oldest;
 *      in our simulation this turned a collapse (continuity 0.45 with a
 *      source uplink of 4x the stream) into 0.91;
 *   2. for each, among the suppliers that hold it, whose budget is not
 *      spent (free_ns - now < horizon_ns) and whose expected arrival
 *      max(free_ns, now) + segment_bytes * 8 / rate still meets the
 *      deadline, pick the one with the highest rate (ties: lower index);
 *      assign it and move that supplier's free_ns to the expected arrival;
 *      a segment no supplier can deliver in time is left out.
 * Writes at most max_out assignments to out, in the order they were made,
 * and returns their number.  nsup <= QUILT_DONET_MAX_PARTNERS, nsegs <=
 * QUILT_DONET_MAX_WINDOW and segment_bytes <= QUILT_DONET_MAX_SEGMENT_BYTES
 * (larger values are clamped).  Allocates nothing. */
size_t quilt_donet_schedule(const quilt_donet_sched_seg *segs, size_t nsegs,
                            quilt_donet_sched_supplier *sup, size_t nsup,
                            uint32_t segment_bytes, uint64_t now_ns,
                            uint64_t horizon_ns, quilt_donet_sched_assign *out,
                            size_t max_out);

/* ---- the core ----------------------------------------------------------- */

typedef struct quilt_donet quilt_donet;

/* Outcome of one playback slot (see the header comment). */
typedef enum quilt_donet_seg_status {
  QUILT_DONET_SEG_IN_TIME = 0, /* arrived by its deadline */
  QUILT_DONET_SEG_MISSED = 1,  /* deadline passed without it */
  QUILT_DONET_SEG_LATE = 2,    /* arrived after MISSED was reported */
} quilt_donet_seg_status;

typedef struct quilt_donet_callbacks {
  /* Send a control message body of |type| to node |to| at |addr|.  body is
   * valid only during the call.  Required. */
  void (*send)(void *ctx, uint64_t to, const quilt_addr *addr, uint8_t type,
               const uint8_t *body, size_t len);
  /* Send segment |seg| (which the driver holds: the core asks only for
   * segments it was told about) to partner |to|.  Required. */
  void (*send_segment)(void *ctx, uint64_t to, const quilt_addr *addr,
                       uint32_t seg);
  /* Segments [seg, seg + count) have |status| (count > 1 only for MISSED,
   * when the deadlines of many passed at once).  Optional. */
  void (*segment)(void *ctx, uint32_t seg, uint32_t count,
                  quilt_donet_seg_status status, uint64_t now_ns);
  /* A partnership with |id| (class nat) began (up = 1) or ended (up = 0).
   * Optional. */
  void (*partner)(void *ctx, uint64_t id, const quilt_addr *addr, uint8_t nat,
                  int up);
} quilt_donet_callbacks;

typedef struct quilt_donet_config {
  uint64_t id;          /* this node, nonzero */
  quilt_addr addr;      /* where others reach it (advertised in gossip) */
  uint8_t nat;          /* quilt_donet_nat of this node */
  uint8_t is_source;    /* 1: the stream's origin (publishes, never pulls) */
  uint32_t uplink_kbps; /* advertised uplink; first bandwidth estimate */
  uint64_t seed;        /* seeds the private generator (stream = id) */

  uint32_t partners;     /* M: partners the node seeks (1..partners_max) */
  uint32_t partners_max; /* most partners it accepts (<= MAX_PARTNERS) */

  uint32_t window_segments;   /* buffer map window (1..MAX_WINDOW) */
  uint32_t segment_bytes;     /* bytes of one segment (1..MAX_SEGMENT_BYTES) */
  uint64_t segment_period_ns; /* media time of one segment (> 0) */
  uint64_t playback_delay_ns; /* deadline = segment time + this */

  uint64_t bm_period_ns;       /* buffer map exchange period */
  uint32_t push_max;           /* a segment from outside the mesh (the
                                  driver's from = 0) is pushed at once to
                                  this many partners; 0 = pull only [R] */
  uint64_t bm_keepalive_ns;    /* 0, or: a partner whose latest map shows
                                  all we hold (nothing to pull from us) is
                                  sent a map only this often, as a sign of
                                  life (< partner_timeout_ns) [R] */
  uint64_t local_bm_period_ns; /* 0, or the period of a node that injected
                                  a segment (published it, or got it from
                                  node 0) within the last bm_period_ns: a
                                  stream's entry points advertise faster
                                  [R] */
  uint64_t sched_period_ns;    /* scheduling and housekeeping period */
  uint64_t sched_horizon_ns;   /* a supplier busy this far ahead gets no more
                                  requests (its per-period budget) */
  uint32_t requests_max;       /* outstanding segment requests (<= window) */
  uint64_t request_timeout_ns; /* a request expires this long after its
                                  expected arrival, and is re-issued */

  uint64_t gossip_period_ns; /* one GOSSIP datagram per period */
  uint32_t gossip_records;   /* records per GOSSIP (1..MAX_RECORDS) */
  uint8_t gossip_hops;       /* hops of a fresh record */
  uint64_t mcache_ttl_ns;    /* lifetime of a fresh record (<= MAX_TTL_S s) */
  uint32_t mcache_max;       /* mCache entries (1..MAX_MCACHE) */

  uint64_t partner_timeout_ns;     /* silent partner is dropped after this */
  uint64_t partner_req_timeout_ns; /* unanswered partner request expires */
  uint64_t reject_backoff_ns;      /* a candidate that rejected or did not
                                      answer is not asked again before this */
  uint64_t refine_period_ns;       /* partner refinement period; 0 = never */

  uint64_t starve_ns;   /* 0, or: a node that got no new segment for this
                           long drops its least useful partner (at most once
                           per starve_ns) so as to find one that has data
                           [R]; see donet.c, starve_check */
  uint8_t start_oldest; /* 1: a new node starts at the oldest segment its
                           partners hold (playback then skips those whose
                           deadline is too close), not at the newest: a
                           host that joined before a stream began, or a
                           few seconds after a segment, is owed it, and
                           starting at a partner's live edge loses the
                           segments that partner got before the node first
                           heard of it [R: PAPERS 3.7 leaves the start open] */
  uint8_t sched_on_bm;  /* 1: also schedule on every buffer map received
                           (paper 3.5: after each round of BM exchange),
                           not only every sched_period_ns */
  uint32_t fetch_span;  /* 0, or: segments are requested only below the
                           oldest one the node still wants (not held, not
                           yet played) + fetch_span, so that a driver whose
                           delivery holds at most that many messages behind
                           a gap never receives one it must drop (lib/mesh.c)
                           [R] */
} quilt_donet_config;

/* Fills cfg with the defaults (id, addr, seed and source flag zero): the
 * paper's M = 4, a 120-segment window of 1 s segments of 62500 bytes (a
 * 500 kbit/s stream), 10 s playback delay, buffer maps and scheduling every
 * 1 s, refinement every 30 s; partners_max 6; gossip every 10 s with 4
 * records, 3 hops, 60 s TTL; 64 mCache entries; partner timeout 5 s,
 * partner requests time out after 2 s, 10 s backoff; 1 s horizon (each
 * supplier's budget is one period of its estimated bandwidth), requests
 * expire 2 s after their expected arrival, 64 outstanding requests. */
void quilt_donet_config_default(quilt_donet_config *cfg);

/* Creates a core.  cfg and cb are copied; ctx is passed to every callback.
 * Timers start at now_ns with a random phase.  Returns 0, QUILT_ERR_INVAL
 * (a field out of range, a required callback missing) or QUILT_ERR_NOMEM;
 * *out is set on success only. */
int quilt_donet_new(quilt_donet **out, const quilt_donet_config *cfg,
                    const quilt_donet_callbacks *cb, void *ctx,
                    uint64_t now_ns);
/* Frees the core (no message is sent: call quilt_donet_leave first for a
 * graceful leave).  NULL is allowed. */
void quilt_donet_del(quilt_donet *d);

/* Adds a contact (from the bootstrap server) to the mCache.  Returns 0,
 * QUILT_ERR_INVAL (id 0 or this node, bad class) or QUILT_ERR_LIMIT (the
 * mCache is full of fresher entries). */
int quilt_donet_add_contact(quilt_donet *d, uint64_t id, const quilt_addr *addr,
                            uint8_t nat, uint64_t now_ns);

/* Decodes and handles one mesh message body from node |from| (the sender
 * id of the Quilt header) at |addr| (the datagram's source address, which
 * replies go to).  Returns 0, or the decode error (counted and dropped). */
int quilt_donet_recv(quilt_donet *d, uint64_t from, const quilt_addr *addr,
                     uint8_t type, const uint8_t *body, size_t len,
                     uint64_t now_ns);
/* Handles a message already decoded by quilt_donet_decode.  Returns 0 or
 * QUILT_ERR_INVAL (from = 0 or this node; counted and dropped).  Messages
 * that make no sense in the current state are counted and ignored. */
int quilt_donet_handle(quilt_donet *d, uint64_t from, const quilt_addr *addr,
                       const quilt_donet_msg *m, uint64_t now_ns);

/* The driver received segment |seg| with origin timestamp |ts_ns| from node
 * |from| (0 when unknown).  Returns 1 when the segment is new (the driver
 * keeps its data: partners may ask for it while it is in the window), 0
 * for a duplicate, a segment older than the window, or on the source. */
int quilt_donet_segment_received(quilt_donet *d, uint64_t from, uint32_t seg,
                                 uint64_t ts_ns, uint64_t now_ns);

/* Source only: segment |seg| now exists (its time is now_ns).  Segments must
 * be published in increasing order.  Returns 0, QUILT_ERR_STATE (not the
 * source) or QUILT_ERR_INVAL (not newer than the last one). */
int quilt_donet_publish(quilt_donet *d, uint32_t seg, uint64_t now_ns);

/* Sets the stream clock: segment |seg| has time |ts_ns| (see above). */
void quilt_donet_set_clock(quilt_donet *d, uint32_t seg, uint64_t ts_ns);

/* Changes cfg.fetch_span (0: no limit but the window). */
void quilt_donet_set_fetch_span(quilt_donet *d, uint32_t segments);

/* When the core next needs quilt_donet_handle_expiry (absolute ns). */
uint64_t quilt_donet_expiry(const quilt_donet *d);
/* Runs whatever is due at now_ns: playback accounting, timeouts, partner
 * search, scheduling, buffer maps, gossip, refinement. */
void quilt_donet_handle_expiry(quilt_donet *d, uint64_t now_ns);

/* Graceful leave: PARTNER_DROP (LEAVE) to every partner, which then forget
 * this node.  The core stays usable (it will look for partners again). */
void quilt_donet_leave(quilt_donet *d, uint64_t now_ns);

/* ---- inspection --------------------------------------------------------- */

typedef struct quilt_donet_partner_info {
  uint64_t id;
  quilt_addr addr;
  uint8_t nat;
  uint64_t rate_bps;    /* current bandwidth estimate from it */
  uint64_t since_ns;    /* when the partnership began */
  uint64_t segs_from;   /* new segments received from it, all time */
  uint64_t segs_to;     /* segments sent to it, all time */
  uint32_t outstanding; /* requests to it not answered yet */
} quilt_donet_partner_info;

size_t quilt_donet_partner_count(const quilt_donet *d);
/* Copies up to max partners into out; returns how many were copied. */
size_t quilt_donet_partners(const quilt_donet *d, quilt_donet_partner_info *out,
                            size_t max);
int quilt_donet_is_partner(const quilt_donet *d, uint64_t id);
size_t quilt_donet_mcache_count(const quilt_donet *d);
int quilt_donet_in_mcache(const quilt_donet *d, uint64_t id);
/* Whether the node holds segment seg (in its window). */
int quilt_donet_has_segment(const quilt_donet *d, uint32_t seg);

typedef struct quilt_donet_stats {
  /* control traffic, per message type 20..25 (index type - 20) */
  uint64_t msgs_sent[6], bytes_sent[6]; /* bodies only */
  uint64_t msgs_recv[6], bytes_recv[6];
  uint64_t bad_msgs;     /* failed to decode */
  uint64_t ignored_msgs; /* valid but unexpected (not a partner, ...) */
  /* segments */
  uint64_t segs_received;         /* new segments */
  uint64_t segs_duplicate;        /* already held */
  uint64_t segs_stale;            /* older than the window */
  uint64_t segs_sent;             /* sent to partners (on request, or
                                     pushed) */
  uint64_t segs_pushed;           /* of which pushed (push_max) */
  uint64_t segs_unavailable;      /* requested but not held */
  uint64_t in_time, missed, late; /* playback outcomes */
  /* requests */
  uint64_t requests;         /* segment requests made */
  uint64_t request_timeouts; /* of which expired (re-requested later) */
  /* partnerships */
  uint64_t partner_reqs_sent, partner_accepts, partner_rejects;
  uint64_t partners_added, partners_dropped_refine, partners_timed_out;
  uint64_t partners_dropped_remote;   /* PARTNER_DROP received */
  uint64_t partners_dropped_starving; /* dropped by starve_check */
  uint64_t rejected_nat;              /* requests refused: both restrictive */
  uint64_t maps_skipped; /* maps not sent: the partner held all we held */
  /* membership */
  uint64_t gossip_records_new, gossip_records_updated, mcache_evicted;
  uint64_t mcache_expired;
} quilt_donet_stats;

void quilt_donet_get_stats(const quilt_donet *d, quilt_donet_stats *out);

#endif /* QUILT_DONET_H */
