/*
 * proto.h -- the interface every patch protocol implements, and the table
 * that lists them (DESIGN.md section 6).
 *
 * A patch protocol moves data among the members of one patch.  The host
 * core (node.c) owns everything that is the same for every protocol:
 * joining, heartbeats, exactly-once delivery, retention, loss detection,
 * bridging.  A protocol decides only how datagrams travel inside its patch:
 * to whom a datagram for "the whole patch" goes, where a NACK is sent, and
 * how a repair is answered.  Adding a protocol is one new file and one line
 * in the table in proto.c.
 *
 * Every hook gets the current time; none may block or do I/O other than
 * through quilt__node_send().
 */
#ifndef QUILT_PROTO_H
#define QUILT_PROTO_H

#include <stddef.h>
#include <stdint.h>

#include "addr.h"
#include "wire.h"

typedef struct quilt_node quilt_node;

/* Protocol ids carried in PATCH_INFO (index in the table). */
enum {
  QUILT_PROTO_IPMC = 0,
  QUILT_PROTO_UNICAST = 1,
  QUILT_PROTO_TREE = 2,
  QUILT_PROTO_MESH = 3,
  QUILT_PROTO__COUNT
};

typedef struct quilt_proto_ops {
  const char *name; /* as written in rules files */

  /* Starts the protocol for this host in the patch described by pi.  May
   * allocate *state.  Returns 0 or a negative code. */
  int (*start)(quilt_node *n, void **state, const quilt_msg_patch_info *pi,
               uint64_t now_ns);

  /* Stops it and frees state (the host leaves the patch). */
  void (*stop)(quilt_node *n, void *state);

  /* Sends one datagram (DATA or SESSION) to every member of the patch. */
  void (*send_all)(quilt_node *n, void *state, const uint8_t *dg, size_t len,
                   uint64_t now_ns);

  /* Sends a NACK datagram for origin to whoever in the patch can repair.
   * holder, when not NULL, is the host that last sent or announced the
   * origin's data here (it holds what it announced). */
  void (*send_nack)(quilt_node *n, void *state, uint64_t origin,
                    const quilt_addr *holder, const uint8_t *dg, size_t len,
                    uint64_t now_ns);

  /* How to answer a NACK heard from `from`: after a delay (so that others
   * may answer first and be heard, suppressing this answer) and either to
   * the whole patch (*to_all = 1) or to the requester alone. */
  void (*repair_policy)(quilt_node *n, void *state, const quilt_addr *from,
                        uint64_t *delay_ns, int *to_all);

  /* Whether hearing a NACK from another member should postpone this
   * host's own NACK for the same messages (true where NACKs are heard by
   * all, as with multicast). */
  int nack_suppression;

  /* Whether send_all is one datagram that every member hears (multicast),
   * so that extra announcements to the whole patch are cheap. */
  int multicast;

  /* Whether members need the list of their patch's members (MEMBERS from
   * the bootstrap server), as a protocol that addresses them one by one
   * does.  Such a patch is kept to the server's members_max hosts. */
  int needs_members;

  /* Optional: a new data message was accepted from `from` (tree protocols
   * forward it on). */
  void (*on_data)(quilt_node *n, void *state, const quilt_addr *from,
                  const quilt_msg_data *d, const uint8_t *dg, size_t len,
                  uint64_t now_ns);

  /* Optional: a message the host core does not handle itself. */
  void (*handle)(quilt_node *n, void *state, const quilt_addr *from,
                 const quilt_msg *m, uint64_t now_ns);

  /* Optional, for tree protocols: the host's current view (parent node id,
   * 0 for the root or before any view; the view's epoch; whether the parent
   * is silent). */
  void (*tree_view)(const void *state, uint64_t *parent, uint32_t *epoch,
                    int *orphan);

  /* Optional: the protocol's own timer. */
  uint64_t (*expiry)(const void *state);
  void (*handle_expiry)(quilt_node *n, void *state, uint64_t now_ns);
} quilt_proto_ops;

/* The table: QUILT_PROTO__COUNT entries, indexed by protocol id. */
const quilt_proto_ops *quilt_proto_get(unsigned id);

/* Looks a protocol up by name; returns its id or -1. */
int quilt_proto_find(const char *name);

/* Names of all protocols, in id order (for the rules parser). */
const char *const *quilt_proto_names(size_t *count);

extern const quilt_proto_ops quilt_proto_ipmc;
extern const quilt_proto_ops quilt_proto_unicast;
extern const quilt_proto_ops quilt_proto_tree;
extern const quilt_proto_ops quilt_proto_mesh;

#endif /* QUILT_PROTO_H */
