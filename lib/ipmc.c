/*
 * ipmc.c -- the `ipmc` patch protocol: IP multicast to the patch's group.
 *
 * Data and session messages go to the patch's multicast address (the
 * driver scopes it with a TTL and binds it to the patch's interface).
 * NACKs are multicast too, so that every member hears them and holds back
 * its own NACK for the same messages (SRM suppression); a repair is
 * multicast after a random delay that is shorter for representatives, so
 * that they answer first and their answer cancels everyone else's.
 */
#include <stdlib.h>

#include "node.h"
#include "proto.h"
#include "quilt.h"

typedef struct ipmc_state {
  quilt_addr group;
} ipmc_state;

static int ipmc_start(quilt_node *n, void **state,
                      const quilt_msg_patch_info *pi, uint64_t now) {
  (void)now;
  if (!quilt_addr_is_multicast(&pi->mcast))
    return QUILT_ERR_INVAL;
  ipmc_state *s = calloc(1, sizeof *s);
  if (!s)
    return QUILT_ERR_NOMEM;
  s->group = pi->mcast;
  quilt__node_mcast_join(n, &s->group);
  *state = s;
  return 0;
}

static void ipmc_stop(quilt_node *n, void *state) {
  ipmc_state *s = state;
  if (!s)
    return;
  quilt__node_mcast_leave(n, &s->group);
  free(s);
}

static void ipmc_send_all(quilt_node *n, void *state, const uint8_t *dg,
                          size_t len, uint64_t now) {
  (void)now;
  ipmc_state *s = state;
  quilt__node_send(n, &s->group, dg, len);
}

static void ipmc_send_nack(quilt_node *n, void *state, uint64_t origin,
                           const quilt_addr *holder, const uint8_t *dg,
                           size_t len, uint64_t now) {
  (void)origin;
  (void)holder; /* every member hears a multicast NACK */
  (void)now;
  ipmc_state *s = state;
  quilt__node_send(n, &s->group, dg, len);
}

static void ipmc_repair_policy(quilt_node *n, void *state,
                               const quilt_addr *from, uint64_t *delay_ns,
                               int *to_all) {
  (void)state;
  (void)from;
  const quilt_node_config *c = quilt__node_config(n);
  if (quilt__node_role(n) != QUILT_ROLE_MEMBER)
    *delay_ns = quilt__node_random(n, 0, c->repair_delay_rep_max_ns);
  else
    *delay_ns = quilt__node_random(n, c->repair_delay_min_ns,
                                   c->repair_delay_max_ns);
  *to_all = 1;
}

const quilt_proto_ops quilt_proto_ipmc = {
    .name = "ipmc",
    .start = ipmc_start,
    .stop = ipmc_stop,
    .send_all = ipmc_send_all,
    .send_nack = ipmc_send_nack,
    .repair_policy = ipmc_repair_policy,
    .nack_suppression = 1,
    .multicast = 1,
};
