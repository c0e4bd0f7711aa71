/*
 * tree.c -- the `tree` patch protocol (OMNI): work in progress.
 */
#include "node.h"
#include "proto.h"

static int tree_start(quilt_node *n, void **state,
                      const quilt_msg_patch_info *pi, uint64_t now) {
  (void)n;
  (void)pi;
  (void)now;
  *state = NULL;
  return 0;
}

static void tree_stop(quilt_node *n, void *state) {
  (void)n;
  (void)state;
}

static void tree_send_all(quilt_node *n, void *state, const uint8_t *dg,
                          size_t len, uint64_t now) {
  (void)n;
  (void)state;
  (void)dg;
  (void)len;
  (void)now;
}

static void tree_send_nack(quilt_node *n, void *state, uint64_t origin,
                           const quilt_addr *holder, const uint8_t *dg,
                           size_t len, uint64_t now) {
  (void)state;
  (void)origin;
  (void)now;
  if (holder)
    quilt__node_send(n, holder, dg, len);
}

static void tree_repair_policy(quilt_node *n, void *state,
                               const quilt_addr *from, uint64_t *delay_ns,
                               int *to_all) {
  (void)n;
  (void)state;
  (void)from;
  *delay_ns = 0;
  *to_all = 0;
}

const quilt_proto_ops quilt_proto_tree = {
    .name = "tree",
    .start = tree_start,
    .stop = tree_stop,
    .send_all = tree_send_all,
    .send_nack = tree_send_nack,
    .repair_policy = tree_repair_policy,
};
