/*
 * unicast.c -- the `unicast` patch protocol: the sender sends one copy to
 * every member it knows (quilt_node_add_member).
 *
 * The naive baseline of the data-centre scenario, and the fallback for a
 * small patch without multicast.  A NACK goes to the origin, which holds
 * every message it sent, or for a message from another patch to the
 * patch's primary, which bridged it; the repair goes back to the requester
 * alone.
 */
#include "node.h"
#include "proto.h"

static int unicast_start(quilt_node *n, void **state,
                         const quilt_msg_patch_info *pi, uint64_t now) {
  (void)n;
  (void)pi;
  (void)now;
  *state = NULL;
  return 0;
}

static void unicast_stop(quilt_node *n, void *state) {
  (void)n;
  (void)state;
}

static void unicast_send_all(quilt_node *n, void *state, const uint8_t *dg,
                             size_t len, uint64_t now) {
  (void)state;
  (void)now;
  const quilt_wire_node *m;
  size_t count = quilt__node_members(n, &m);
  for (size_t i = 0; i < count; i++)
    quilt__node_send(n, &m[i].addr, dg, len);
}

static void unicast_send_nack(quilt_node *n, void *state, uint64_t origin,
                              const quilt_addr *holder, const uint8_t *dg,
                              size_t len, uint64_t now) {
  (void)state;
  (void)now;
  /* The origin holds all it sent; a message from another patch came
   * through this patch's primary, which holds it or gets it upstream (the
   * host that last announced it is asked when no primary is known). */
  const quilt_addr *to = quilt__node_member_addr(n, origin);
  if (!to)
    to = quilt__node_primary_addr(n);
  if (!to)
    to = holder;
  if (to)
    quilt__node_send(n, to, dg, len);
}

static void unicast_repair_policy(quilt_node *n, void *state,
                                  const quilt_addr *from, uint64_t *delay_ns,
                                  int *to_all) {
  (void)n;
  (void)state;
  (void)from;
  *delay_ns = 0;
  *to_all = 0;
}

const quilt_proto_ops quilt_proto_unicast = {
    .name = "unicast",
    .start = unicast_start,
    .stop = unicast_stop,
    .send_all = unicast_send_all,
    .send_nack = unicast_send_nack,
    .repair_policy = unicast_repair_policy,
    .nack_suppression = 0,
    .needs_members = 1,
};
