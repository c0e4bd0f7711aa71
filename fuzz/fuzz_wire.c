/*
 * fuzz_wire.c -- libFuzzer target for the datagram codec.
 *
 * Any input: decode must return without reading outside it.  An input that
 * decodes is re-encoded; the encoding must be byte-identical to the input
 * (each message has exactly one encoding) and must decode to the same
 * message, field by field, payload bytes included.  Any difference aborts.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "quilt.h"
#include "wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int addr_eq(const quilt_addr *a, const quilt_addr *b) {
  return a->ip == b->ip && a->port == b->port;
}

static int euid_eq(const quilt_euid *a, const quilt_euid *b) {
  return a->nat == b->nat && a->ipmc == b->ipmc && a->domain == b->domain &&
         a->region == b->region && a->rtt_us == b->rtt_us &&
         a->bw_kbps == b->bw_kbps;
}

static int node_eq(const quilt_wire_node *a, const quilt_wire_node *b) {
  return a->id == b->id && addr_eq(&a->addr, &b->addr);
}

static int msg_eq(const quilt_msg *a, const quilt_msg *b) {
  if (a->hdr.version != b->hdr.version || a->hdr.type != b->hdr.type ||
      a->hdr.sender != b->hdr.sender || a->hdr.group != b->hdr.group)
    return 0;
  switch (a->hdr.type) {
  case QUILT_MSG_JOIN:
    return addr_eq(&a->u.join.addr, &b->u.join.addr) &&
           euid_eq(&a->u.join.euid, &b->u.join.euid) &&
           a->u.join.flags == b->u.join.flags;
  case QUILT_MSG_PATCH_INFO: {
    const quilt_msg_patch_info *x = &a->u.patch_info, *y = &b->u.patch_info;
    if (x->patch_id != y->patch_id || x->protocol != y->protocol ||
        x->role != y->role || x->epoch != y->epoch ||
        !addr_eq(&x->mcast, &y->mcast) || x->heartbeat_ms != y->heartbeat_ms ||
        x->nreps != y->nreps || x->nreps > QUILT_WIRE_MAX_REPS)
      return 0;
    for (unsigned i = 0; i < x->nreps; i++)
      if (!node_eq(&x->reps[i], &y->reps[i]))
        return 0;
    return 1;
  }
  case QUILT_MSG_HEARTBEAT:
    return addr_eq(&a->u.heartbeat.addr, &b->u.heartbeat.addr) &&
           euid_eq(&a->u.heartbeat.euid, &b->u.heartbeat.euid) &&
           a->u.heartbeat.patch_id == b->u.heartbeat.patch_id &&
           a->u.heartbeat.role == b->u.heartbeat.role &&
           a->u.heartbeat.epoch == b->u.heartbeat.epoch;
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
    return 0; /* decode accepted a type it should not have */
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static quilt_msg first, second;
  static uint8_t out[QUILT_WIRE_MAX_DATAGRAM];

  int rc = quilt_wire_decode(&first, data, size);
  if (rc != 0) {
    if (rc != QUILT_ERR_TRUNCATED && rc != QUILT_ERR_MALFORMED &&
        rc != QUILT_ERR_VERSION)
      abort(); /* an error code decode does not promise */
    return 0;
  }
  int n = quilt_wire_encode(&first, out, sizeof out);
  if (n < 0 || (size_t)n != size || memcmp(out, data, size) != 0)
    abort();
  if (quilt_wire_decode(&second, out, (size_t)n) != 0)
    abort();
  if (!msg_eq(&first, &second))
    abort();
  return 0;
}
