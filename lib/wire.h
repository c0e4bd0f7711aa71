/*
 * wire.h -- Quilt's datagram format: one versioned header, every message.
 *
 * Every datagram starts with the same 16-byte header (network byte order):
 *
 *    0      2        3      4                 12        16
 *   +------+--------+------+-----------------+---------+
 *   | 'QL' | version| type | sender node id  | group   |
 *   +------+--------+------+-----------------+---------+
 *
 * followed by a body whose layout depends on the type (docs/wire.md).  The
 * one decode entry point, quilt_wire_decode(), checks every length and count
 * against the datagram and never reads past it; a datagram that fails is
 * counted and dropped by the caller, never asserted on.  Decoded messages
 * point into the datagram for their payload (zero copy): the datagram must
 * outlive the decoded struct.
 */
#ifndef QUILT_WIRE_H
#define QUILT_WIRE_H

#include <stddef.h>
#include <stdint.h>

#include "addr.h"
#include "donet.h"
#include "euid.h"

#define QUILT_WIRE_MAGIC 0x514Cu /* "QL" */
#define QUILT_WIRE_VERSION 3
#define QUILT_WIRE_HEADER_LEN 16
/* Largest datagram Quilt sends or accepts: fits a 1500-byte Ethernet MTU
 * with IPv4/IPv6 and UDP headers to spare. */
#define QUILT_WIRE_MAX_DATAGRAM 1400
/* DATA body before the payload: origin 8, seq 8, ts 8, origin_patch 4,
 * flags 1, payload length 2. */
#define QUILT_WIRE_DATA_OVERHEAD (QUILT_WIRE_HEADER_LEN + 31)
#define QUILT_WIRE_MAX_PAYLOAD                                                 \
  (QUILT_WIRE_MAX_DATAGRAM - QUILT_WIRE_DATA_OVERHEAD)

/* Limits on list fields: a decoder refuses a count above these. */
#define QUILT_WIRE_MAX_REPS 8     /* representatives in one PATCH_INFO */
#define QUILT_WIRE_MAX_PEERS 64   /* entries in one PEERS datagram */
#define QUILT_WIRE_MAX_SESSION 64 /* (origin, seq) pairs in one SESSION */
#define QUILT_WIRE_MAX_NACK 32    /* ranges in one NACK */
#define QUILT_WIRE_MAX_LANDMARKS 16 /* landmarks, and RTTs in a HEARTBEAT */
#define QUILT_WIRE_MAX_CHILDREN 64  /* children in one TREE */
#define QUILT_WIRE_RTT_UNKNOWN UINT32_MAX /* an RTT not measured (yet) */

typedef enum quilt_msg_type {
  QUILT_MSG_JOIN = 1,       /* host -> bootstrap: I want in, here is my EUID */
  QUILT_MSG_PATCH_INFO = 2, /* bootstrap -> host: your patch, its reps */
  QUILT_MSG_HEARTBEAT = 3,  /* host -> bootstrap: still here (soft state) */
  QUILT_MSG_LEAVE = 4,      /* host -> bootstrap: gone for good */
  QUILT_MSG_REJOIN = 5,     /* bootstrap -> host: unknown to me, join again */
  QUILT_MSG_PEERS = 6,      /* bootstrap -> reps: primaries of the patches */
  QUILT_MSG_DATA = 7,       /* anyone: one application message */
  QUILT_MSG_NACK = 8,       /* receiver -> holders: these seqs are missing */
  QUILT_MSG_SESSION = 9,    /* sender -> receivers: highest seq per origin */
  QUILT_MSG_MEMBERS = 10,   /* bootstrap -> members: the members of a patch
                               (same body as PEERS) */
  QUILT_MSG_PING = 11,      /* anyone -> anyone: answer with PONG */
  QUILT_MSG_PONG = 12,      /* the answer, echoing the token */
  QUILT_MSG_LANDMARKS = 13, /* bootstrap -> hosts: measure your RTT to these */
  QUILT_MSG_TREE = 14,      /* bootstrap -> host: its place in a tree */
  QUILT_MSG_ORPHAN = 15,    /* host -> bootstrap: my tree parent is silent */
  QUILT_MSG__MAX
} quilt_msg_type;

/* Types 20..25 are the mesh protocol's messages (GOSSIP, PARTNER_REQ,
 * PARTNER_REPLY, PARTNER_DROP, BUFFER_MAP, REQUEST): the body layouts and
 * their checks are lib/donet.h's (quilt_donet_decode), and a decoded one is
 * in quilt_msg.u.donet.  16..19 and 26..255 are unassigned. */
#define QUILT_MSG_MESH_FIRST QUILT_DONET_MSG_FIRST
#define QUILT_MSG_MESH_LAST QUILT_DONET_MSG_LAST
#define QUILT_MSG_IS_MESH(t)                                                   \
  ((t) >= QUILT_MSG_MESH_FIRST && (t) <= QUILT_MSG_MESH_LAST)

/* Roles a host can hold in its patch. */
typedef enum quilt_role {
  QUILT_ROLE_MEMBER = 0,
  QUILT_ROLE_PRIMARY = 1, /* representative that forwards */
  QUILT_ROLE_BACKUP = 2,  /* representative that stands by */
} quilt_role;

typedef struct quilt_wire_header {
  uint8_t version;  /* set by decode; encode always writes
                       QUILT_WIRE_VERSION */
  uint8_t type;     /* quilt_msg_type */
  uint64_t sender;  /* node id of the sender */
  uint32_t group;   /* group id (hash of the group name) */
} quilt_wire_header;

/* A host as named in a message. */
typedef struct quilt_wire_node {
  uint64_t id;
  quilt_addr addr;
} quilt_wire_node;

typedef struct quilt_msg_join {
  quilt_addr addr; /* where the host listens (as it believes) */
  quilt_euid euid;
  uint8_t flags;   /* reserved, 0 */
} quilt_msg_join;

typedef struct quilt_msg_patch_info {
  uint32_t patch_id;
  uint8_t protocol;          /* protocol id from the protocol table */
  uint8_t role;              /* quilt_role of the receiver */
  uint32_t epoch;            /* bumped whenever the reps change */
  quilt_addr mcast;          /* multicast group of an ipmc patch, else 0 */
  uint16_t heartbeat_ms;     /* how often to send HEARTBEAT */
  uint8_t nreps;             /* <= QUILT_WIRE_MAX_REPS, [0] is the primary */
  quilt_wire_node reps[QUILT_WIRE_MAX_REPS];
} quilt_msg_patch_info;

typedef struct quilt_msg_heartbeat {
  quilt_addr addr;
  quilt_euid euid;
  uint32_t patch_id; /* the patch the host believes it is in, 0 = none */
  uint8_t role;      /* the role it believes it holds */
  uint8_t flags;     /* QUILT_HB_* */
  uint32_t epoch;    /* epoch of its latest PATCH_INFO, so the server sees
                        a host that missed a change */
  uint32_t lm_epoch; /* epoch of the LANDMARKS the RTTs below answer */
  uint8_t nrtt;      /* <= QUILT_WIRE_MAX_LANDMARKS */
  uint32_t rtt_us[QUILT_WIRE_MAX_LANDMARKS]; /* RTT to landmark i, in us, or
                                                QUILT_WIRE_RTT_UNKNOWN */
} quilt_msg_heartbeat;

/* HEARTBEAT flags; the other bits must be 0. */
#define QUILT_HB_SOURCE 0x01u /* a primary whose patch has published onto
                                 the overlay lately: it needs an overlay
                                 tree rooted at it */
#define QUILT_HB_FLAGS_KNOWN QUILT_HB_SOURCE

/* PING / PONG: a PONG echoes the PING's token (the sender's clock, say). */
typedef struct quilt_msg_ping {
  uint64_t token;
} quilt_msg_ping;

/* LANDMARKS: the hosts every host measures its RTT to; the vector of RTTs
 * (in HEARTBEAT) is the host's network position.  A newer epoch replaces
 * the list. */
typedef struct quilt_msg_landmarks {
  uint32_t epoch;
  uint8_t count; /* <= QUILT_WIRE_MAX_LANDMARKS */
  quilt_wire_node nodes[QUILT_WIRE_MAX_LANDMARKS];
} quilt_msg_landmarks;

/* TREE: the receiver's neighbourhood in one tree, as the bootstrap server
 * computed it.  tree is the patch id of a tree patch, or
 * QUILT_WIRE_TREE_WAO | p for the wide-area overlay tree rooted at patch p
 * (its nodes are the patches' primaries).  A node id of 0 means none (the
 * root has no parent; a child of the root no grandparent).  A newer epoch
 * replaces the view. */
typedef struct quilt_msg_tree {
  uint64_t to;       /* the host the view is for, nonzero: a host drops a
                        view for another id (an address the server still
                        knows for an old incarnation, or a NAT port given
                        to another host, must not hand one host another's
                        place) */
  uint32_t tree;
  uint32_t epoch;
  quilt_wire_node parent;
  quilt_wire_node grandparent;
  uint8_t degree;    /* the receiver's degree bound, >= 1 */
  uint8_t nchildren; /* <= QUILT_WIRE_MAX_CHILDREN and <= degree */
  quilt_wire_node children[QUILT_WIRE_MAX_CHILDREN];
} quilt_msg_tree;

/* TREE.tree for the wide-area overlay: one tree per root patch, the tree
 * the messages of that patch's origins travel (the Quilt paper's WAO: an
 * OMNI tree whose root is the representative of the source's patch). */
#define QUILT_WIRE_TREE_WAO 0x80000000u
#define QUILT_WIRE_TREE_IS_WAO(t) (((t) & QUILT_WIRE_TREE_WAO) != 0)
#define QUILT_WIRE_TREE_WAO_ROOT(t) ((t) & ~QUILT_WIRE_TREE_WAO)

/* ORPHAN: a host whose tree parent stopped answering asks the server for a
 * new place (the server re-attaches it, grandparent first). */
typedef struct quilt_msg_orphan {
  uint32_t tree;
  uint32_t epoch;  /* the epoch of the view that named the parent */
  uint64_t parent; /* the silent parent, nonzero */
} quilt_msg_orphan;

/* PEERS: the primaries of all patches, paged.  total is the number of
 * entries in the whole table, offset the index of entries[0]. */
typedef struct quilt_wire_peer {
  uint32_t patch_id;
  quilt_wire_node node;
} quilt_wire_peer;

typedef struct quilt_msg_peers {
  uint32_t epoch; /* table version; a newer epoch replaces an older one */
  uint16_t total;
  uint16_t offset;
  uint8_t count; /* <= QUILT_WIRE_MAX_PEERS */
  quilt_wire_peer entries[QUILT_WIRE_MAX_PEERS];
} quilt_msg_peers;

#define QUILT_DATA_REPAIR 0x01u    /* sent in answer to a NACK */
#define QUILT_DATA_FORWARDED 0x02u /* relayed by a representative */

typedef struct quilt_msg_data {
  uint64_t origin;       /* node id of the publisher */
  uint64_t seq;          /* per-origin sequence number, from 1 */
  uint64_t ts_ns;        /* origin timestamp */
  uint32_t origin_patch; /* patch of the publisher */
  uint8_t flags;         /* QUILT_DATA_* */
  uint16_t len;          /* payload bytes, <= QUILT_WIRE_MAX_PAYLOAD */
  const uint8_t *payload; /* points into the datagram */
} quilt_msg_data;

typedef struct quilt_nack_range {
  uint64_t first; /* first missing seq */
  uint32_t count; /* >= 1 */
} quilt_nack_range;

typedef struct quilt_msg_nack {
  uint64_t origin;
  uint8_t count; /* <= QUILT_WIRE_MAX_NACK */
  quilt_nack_range ranges[QUILT_WIRE_MAX_NACK];
} quilt_msg_nack;

typedef struct quilt_session_entry {
  uint64_t origin;
  uint64_t seq; /* highest seq the sender has sent or holds */
} quilt_session_entry;

typedef struct quilt_msg_session {
  uint8_t count; /* <= QUILT_WIRE_MAX_SESSION */
  quilt_session_entry entries[QUILT_WIRE_MAX_SESSION];
} quilt_msg_session;

typedef struct quilt_msg {
  quilt_wire_header hdr;
  union {
    quilt_msg_join join;
    quilt_msg_patch_info patch_info;
    quilt_msg_heartbeat heartbeat;
    quilt_msg_peers peers; /* PEERS and MEMBERS */
    quilt_msg_data data;
    quilt_msg_nack nack;
    quilt_msg_session session;
    quilt_msg_ping ping; /* PING and PONG */
    quilt_msg_landmarks landmarks;
    quilt_msg_tree tree;
    quilt_msg_orphan orphan;
    quilt_donet_msg donet; /* types 20..25; donet.type == hdr.type */
    /* LEAVE and REJOIN have an empty body */
  } u;
} quilt_msg;

/* Decodes one datagram.  Returns 0 and fills *m, or a negative code:
 * QUILT_ERR_TRUNCATED (shorter than a length or count says),
 * QUILT_ERR_MALFORMED (bad magic, unknown type, count over a limit, trailing
 * bytes, field out of range, longer than QUILT_WIRE_MAX_DATAGRAM),
 * QUILT_ERR_VERSION (other version).  Never reads outside buf[0..len).
 * After an error *m is unspecified. */
int quilt_wire_decode(quilt_msg *m, const uint8_t *buf, size_t len);

/* Encodes *m into out (capacity outlen).  Returns the number of bytes
 * written, or QUILT_ERR_TOO_BIG when it does not fit (or exceeds
 * QUILT_WIRE_MAX_DATAGRAM, e.g. a DATA len over QUILT_WIRE_MAX_PAYLOAD),
 * QUILT_ERR_INVAL for a count over a limit, an unknown type, or any field the
 * decoder would refuse.  Writes nothing when it fails. */
int quilt_wire_encode(const quilt_msg *m, uint8_t *out, size_t outlen);

/* Field-by-field equality of two decoded messages: the header, and each
 * list up to its count; DATA payloads compared byte for byte.  Returns 0
 * for counts over their limits or an unknown type. */
int quilt_msg_equal(const quilt_msg *a, const quilt_msg *b);

/* Name of a message type for logs ("DATA", ...), "?" when unknown. */
const char *quilt_msg_type_name(unsigned type);

/* Group id of a group name: FNV-1a 32-bit of its bytes (0 is mapped to 1). */
uint32_t quilt_group_id(const char *name);

#endif /* QUILT_WIRE_H */
