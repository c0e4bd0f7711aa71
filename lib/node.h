/*
 * node.h -- one Quilt host, sans I/O: joins through the bootstrap server,
 * runs its patch protocol, delivers exactly once, repairs losses and, when
 * it is a patch representative, bridges its patch to the others.
 *
 * Driving it (the real driver and the simulator do exactly this):
 *   - quilt_node_start() once;
 *   - quilt_node_read() for every datagram received;
 *   - quilt_node_handle_expiry() when the time from quilt_node_expiry()
 *     has come;
 *   - quilt_node_publish() to send application data.
 * Every call takes the current time in nanoseconds (any epoch, monotonic).
 * Datagrams leave through the send callback, deliveries and loss events
 * through their callbacks; callbacks must not call back into the node.
 */
#ifndef QUILT_NODE_H
#define QUILT_NODE_H

#include <stddef.h>
#include <stdint.h>

#include "addr.h"
#include "delivery.h"
#include "euid.h"
#include "wire.h"

typedef struct quilt_node quilt_node;

typedef struct quilt_node_callbacks {
  /* Sends buf[0..len) to `to` (a host, or the patch's multicast group). */
  void (*send)(void *user, const quilt_addr *to, const uint8_t *buf,
               size_t len);
  /* Joins / leaves a multicast group on the patch's interface. */
  void (*mcast_join)(void *user, const quilt_addr *group);
  void (*mcast_leave)(void *user, const quilt_addr *group);
  /* One message, delivered exactly once and in order per origin.  A host
   * does not receive its own messages. */
  void (*deliver)(void *user, const quilt_msg_data *d, uint64_t now_ns);
  /* Messages [first, first+count) of origin will never be delivered. */
  void (*loss)(void *user, uint64_t origin, uint64_t first, uint64_t count,
               uint64_t now_ns);
  /* Optional: the host's patch or role changed. */
  void (*patch_changed)(void *user, uint32_t patch_id, unsigned protocol,
                        unsigned role);
  /* Optional: in a tree patch, the host's parent went silent and the host
   * has a new one; silent_ns is the time from the last sign of life of the
   * old parent to the new parent's view. */
  void (*reattached)(void *user, uint64_t silent_ns);
} quilt_node_callbacks;

typedef struct quilt_node_config {
  uint64_t id;            /* nonzero, unique in the group */
  quilt_addr addr;        /* where this host receives unicast */
  quilt_addr bootstrap;   /* the bootstrap server */
  uint32_t group;         /* quilt_group_id() of the group name */
  quilt_euid euid;
  uint64_t seed;          /* for the private random generator */
  quilt_delivery_config delivery;
  uint64_t join_retry_ns;      /* JOIN again if no PATCH_INFO by then */
  uint64_t nack_delay_min_ns;  /* first NACK after a random delay in */
  uint64_t nack_delay_max_ns;  /*   [min, max] (suppression window) */
  uint64_t nack_retry_ns;      /* then again after this, doubling... */
  uint64_t nack_retry_max_ns;  /*   ...up to this */
  uint64_t repair_delay_rep_max_ns; /* reps answer a NACK in [0, this] */
  uint64_t repair_delay_min_ns;     /* other members in [min, max] */
  uint64_t repair_delay_max_ns;
  uint64_t session_interval_ns; /* first SESSION this long after sending */
  uint32_t session_count;       /* SESSIONs per burst, interval doubling */
} quilt_node_config;

/* Fills c with the defaults (documented in node.c); the caller sets id,
 * addr, bootstrap, group, euid and seed. */
void quilt_node_config_default(quilt_node_config *c);

int quilt_node_new(quilt_node **out, const quilt_node_config *cfg,
                   const quilt_node_callbacks *cb, void *user);
void quilt_node_del(quilt_node *n);

/* Sends JOIN; the host is active once the bootstrap server answers. */
int quilt_node_start(quilt_node *n, uint64_t now_ns);

/* Tells the bootstrap server the host is leaving and stops its protocol. */
void quilt_node_leave(quilt_node *n, uint64_t now_ns);

/* Publishes payload[0..len) to the group.  Returns the message's sequence
 * number (>= 1), or QUILT_ERR_TOO_BIG (len > QUILT_WIRE_MAX_PAYLOAD),
 * QUILT_ERR_STATE (not in a patch yet). */
int64_t quilt_node_publish(quilt_node *n, const uint8_t *payload, size_t len,
                           uint64_t now_ns);

/* Handles one received datagram.  Returns 0, or the decoder's negative code
 * for a malformed datagram (counted and dropped; the node is unharmed). */
int quilt_node_read(quilt_node *n, const quilt_addr *from, const uint8_t *buf,
                    size_t len, uint64_t now_ns);

/* When the node next needs quilt_node_handle_expiry(), or UINT64_MAX. */
uint64_t quilt_node_expiry(const quilt_node *n);
void quilt_node_handle_expiry(quilt_node *n, uint64_t now_ns);

/* Static membership for protocols that address members one by one
 * (unicast): adds one peer.  QUILT_ERR_LIMIT past QUILT_NODE_MAX_MEMBERS. */
#define QUILT_NODE_MAX_MEMBERS 65536
int quilt_node_add_member(quilt_node *n, uint64_t id, const quilt_addr *addr);

typedef struct quilt_node_counters {
  uint64_t published;
  uint64_t malformed;      /* datagrams refused by the decoder */
  uint64_t foreign;        /* datagrams of another group, dropped */
  uint64_t nacks_sent;
  uint64_t repairs_sent;
  uint64_t repairs_suppressed;
  uint64_t forwarded;      /* DATA copies sent on the wide-area overlay */
  uint64_t injected;       /* DATA bridged from the overlay into the patch */
  uint64_t sessions_sent;
  uint64_t repair_queue_full; /* repairs not scheduled: queue at its limit */
  uint64_t orphaned;       /* tree parents found silent */
  uint64_t reattached;     /* ... and replaced */
  quilt_delivery_counters delivery;
} quilt_node_counters;

void quilt_node_counters_get(const quilt_node *n, quilt_node_counters *c);

/* What the host believes about its patch. */
typedef struct quilt_node_status {
  int joined;         /* has a patch */
  uint32_t patch_id;
  unsigned protocol;
  unsigned role;      /* quilt_role */
  uint32_t epoch;
  size_t npeers;      /* wide-area peers known (representatives) */
  int in_tree;        /* a tree patch: the three fields below are set */
  uint64_t tree_parent; /* parent in the patch's tree, 0 = root or none */
  uint32_t tree_epoch;  /* epoch of the view */
  int tree_orphan;      /* the parent is silent */
} quilt_node_status;

void quilt_node_status_get(const quilt_node *n, quilt_node_status *s);

/* What the host knows of one origin's stream; returns 0 when unknown. */
int quilt_node_origin_get(const quilt_node *n, uint64_t origin,
                          quilt_origin_view *v);

/* ---- for protocol implementations (proto.h), not for applications ---- */

void quilt__node_send(quilt_node *n, const quilt_addr *to, const uint8_t *buf,
                      size_t len);
void quilt__node_mcast_join(quilt_node *n, const quilt_addr *group);
void quilt__node_mcast_leave(quilt_node *n, const quilt_addr *group);
unsigned quilt__node_role(const quilt_node *n);
uint64_t quilt__node_id(const quilt_node *n);
const quilt_node_config *quilt__node_config(const quilt_node *n);
/* Uniform random integer in [lo, hi] from the node's generator. */
uint64_t quilt__node_random(quilt_node *n, uint64_t lo, uint64_t hi);
/* The static members (quilt_node_add_member). */
size_t quilt__node_members(const quilt_node *n, const quilt_wire_node **out);
/* Address of the patch's primary representative (NULL when unknown or
 * when this host is the primary). */
const quilt_addr *quilt__node_primary_addr(const quilt_node *n);
/* Address of a member by id, or NULL. */
const quilt_addr *quilt__node_member_addr(const quilt_node *n, uint64_t id);
/* Sends `to` SESSIONs saying how far this host holds every origin (a new
 * tree neighbour NACKs what it lacks). */
void quilt__node_announce_all_to(quilt_node *n, const quilt_addr *to);
/* Starts (or extends) a SESSION burst to the patch about origin. */
void quilt__node_announce(quilt_node *n, uint64_t origin, uint64_t now);
/* The same for every origin this host holds (a burst survives the loss of
 * a datagram or two, which a one-shot announcement does not). */
void quilt__node_announce_all(quilt_node *n, uint64_t now);
const quilt_addr *quilt__node_bootstrap_addr(const quilt_node *n);
/* Counts a tree re-attachment and reports it (callbacks.reattached). */
void quilt__node_reattached(quilt_node *n, uint64_t silent_ns);
void quilt__node_orphaned(quilt_node *n);
/* Until until_ns, a first contact with an origin (a DATA or an
 * announcement) recovers every message of it still held somewhere, not
 * just the last 64: for a tree member given a new parent, whose new
 * neighbours announce streams it may never have heard of although it was
 * there when they were published. */
void quilt__node_catch_up(quilt_node *n, uint64_t until_ns);
/* Sends message (origin, seq), from the retention buffer, to `to` (may be
 * NULL) and to each of the nodes; nothing if it is not retained. */
void quilt__node_resend(quilt_node *n, uint64_t origin, uint64_t seq,
                        const quilt_addr *to, const quilt_wire_node *nodes,
                        size_t count, uint64_t now);
/* Sends this host's own message seq, from its retention buffer, to `to`
 * (may be NULL) and to each of the nodes; nothing if it is not retained. */
void quilt__node_resend_own(quilt_node *n, uint64_t seq, const quilt_addr *to,
                            const quilt_wire_node *nodes, size_t count,
                            uint64_t now);

/* Settings a driver hands a protocol before the host joins (the mesh's
 * stream profile, lib/mesh.h): copied into the node (at most
 * QUILT_NODE_PROTO_CONFIG_MAX bytes per protocol), kept across patch
 * changes, read by the protocol when it starts.  Returns 0, or
 * QUILT_ERR_INVAL (unknown protocol id, len too large). */
#define QUILT_NODE_PROTO_CONFIG_MAX 256
int quilt__node_set_proto_config(quilt_node *n, unsigned protocol,
                                 const void *cfg, size_t len);
/* The settings given for protocol, or NULL (*len 0) when none were. */
const void *quilt__node_proto_config(const quilt_node *n, unsigned protocol,
                                     size_t *len);
/* The running protocol's state when the host is in a patch of `protocol`,
 * else NULL (for the protocol's own inspection functions). */
void *quilt__node_proto_state(const quilt_node *n, unsigned protocol);
/* A message from the retention buffer (lib/delivery.h,
 * quilt_delivery_lookup): returns 1 and fills *out (payload valid until the
 * node next changes), or 0 when it is not held. */
int quilt__node_lookup(quilt_node *n, uint64_t origin, uint64_t seq,
                       uint64_t now_ns, quilt_msg_data *out);
/* The latest PATCH_INFO of the host's patch (its representatives change
 * without the protocol being restarted), or NULL when not in a patch. */
const quilt_msg_patch_info *quilt__node_patch_info(const quilt_node *n);

#endif /* QUILT_NODE_H */
